"""The LM loop never trusts damaged work and refuses bad input with one line (micro preset).

Each damaged-directory check starts from a copy of one uninterrupted reference run,
damages one file the way a crash, a full disk or a careless hand would, and checks
both that the directory no longer counts the iteration as done and that resuming
gives exactly the reference results (recomputing only what was damaged).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from collapse.analysis.errors import CollapseError  # noqa: E402
from collapse.analysis.vocabulary import ACCUMULATE, REPLACE  # noqa: E402
from collapse.lm import report, rundir  # noqa: E402
from collapse.lm.presets import PRESETS  # noqa: E402
from collapse.lm.run import TRAINED, WRITTEN, RunConfig, run  # noqa: E402

MICRO = PRESETS["micro"]
T = 3
ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = (REPLACE, ACCUMULATE)


class Killed(Exception):
    """Stands in for the process being killed."""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lm-cache")


def go(out, cache, log=None, **kwargs):
    kwargs.setdefault("workflows_to_run", WORKFLOWS)
    kwargs.setdefault("iterations", T)
    return run(RunConfig(MICRO), out, cache_dir=cache, log=log, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("reference") / "run"
    go(out, cache)
    return out


def outcome(root, workflow, seed, t):
    d = rundir.iteration_dir(root, workflow, seed, t)
    record = rundir.read_json(d / rundir.METRICS)
    return (record["metrics"], record["training_set"], rundir.read_json(d / rundir.TRAINING_SET),
            rundir.read_jsonl(d / rundir.SAMPLES))


def same_as_reference(out, reference):
    for w in WORKFLOWS:
        for t in range(1, T + 1):
            assert outcome(out, w, 0, t) == outcome(reference, w, 0, t), (w, t)


@pytest.fixture
def copy_of(reference, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    return out


# -- interrupted and damaged iterations ------------------------------------------------------

def test_kill_between_samples_and_metrics_is_not_done_and_resumes_exactly(reference, cache, tmp_path):
    """The commit record is metrics.json alone: samples.jsonl on disk must not count."""
    out = tmp_path / "killed"

    def kill(stage, w, s, t):
        if (stage, w, s, t) == (WRITTEN, ACCUMULATE, 0, 2):
            raise Killed

    with pytest.raises(Killed):
        go(out, cache, hook=kill)
    directory = rundir.iteration_dir(out, ACCUMULATE, 0, 2)
    assert (directory / rundir.SAMPLES).is_file() and not (directory / rundir.METRICS).exists()
    assert not rundir.is_complete(directory)
    result = go(out, cache)
    assert result.computed == [(ACCUMULATE, 0, 2), (ACCUMULATE, 0, 3)]
    same_as_reference(out, reference)


def _lose_lines(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))


def _empty(path):
    path.write_text("")


def _cut_mid_line(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_lose_lines, _empty, _cut_mid_line], ids=["lost-lines", "emptied", "cut"])
def test_damaged_samples_are_recomputed_and_named(copy_of, reference, cache, damage):
    directory = rundir.iteration_dir(copy_of, REPLACE, 0, 2)
    damage(directory / rundir.SAMPLES)
    assert not rundir.is_complete(directory)
    messages = []
    result = go(copy_of, cache, log=messages.append)
    # the damaged iteration is recomputed; the later one was trained on the same texts
    # (the recomputation is exact), so it is verified and reused
    assert result.computed == [(REPLACE, 0, 2)]
    assert any(str(directory / rundir.SAMPLES) in m and "recomputing" in m for m in messages), messages
    same_as_reference(copy_of, reference)


def test_swapped_samples_are_recomputed(copy_of, reference, cache):
    a = rundir.iteration_dir(copy_of, REPLACE, 0, 2) / rundir.SAMPLES
    b = rundir.iteration_dir(copy_of, REPLACE, 0, 3) / rundir.SAMPLES
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    result = go(copy_of, cache)
    assert sorted(result.computed) == [(REPLACE, 0, 2), (REPLACE, 0, 3)]
    same_as_reference(copy_of, reference)


def test_an_earlier_iteration_that_changed_invalidates_the_later_ones(copy_of, reference, cache):
    """Samples edited *and* re-checksummed (a valid-looking but different history): every
    later iteration was trained on other texts, so it must be recomputed, not reused."""
    directory = rundir.iteration_dir(copy_of, ACCUMULATE, 0, 1)
    samples = rundir.read_jsonl(directory / rundir.SAMPLES)
    samples[0]["text"] = "an edited sample"
    rundir.write_jsonl(directory / rundir.SAMPLES, samples)
    record = rundir.read_json(directory / rundir.METRICS)
    record["files"][rundir.SAMPLES] = rundir.file_record(directory / rundir.SAMPLES)
    rundir.write_json(directory / rundir.METRICS, record)
    assert rundir.is_complete(directory)  # iteration 1 itself now looks fine
    messages = []
    result = go(copy_of, cache, log=messages.append)
    assert result.computed == [(ACCUMULATE, 0, 2), (ACCUMULATE, 0, 3)]
    assert any("trained on other texts" in m for m in messages)
    # iteration 2 trained on the edited sample: different from the reference
    assert outcome(copy_of, ACCUMULATE, 0, 2) != outcome(reference, ACCUMULATE, 0, 2)


@pytest.mark.parametrize("content", [b"garbage{", b"", b"{}", b"\xff\xfe not utf-8", b"[1, 2]"],
                         ids=["garbage", "empty", "braces", "binary", "list"])
def test_bad_metrics_json_is_not_done_and_report_leaves_it_out(copy_of, reference, cache, content):
    directory = rundir.iteration_dir(copy_of, ACCUMULATE, 0, 3)
    (directory / rundir.METRICS).write_bytes(content)
    assert not rundir.is_complete(directory)
    result = report.load_result(copy_of)
    assert any("left out accumulate seed 0 iteration 3" in note for note in result.notes)
    assert not result.table.select(workflow=ACCUMULATE, iteration=3).rows
    proc = lm_cli("report", copy_of)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert go(copy_of, cache).computed == [(ACCUMULATE, 0, 3)]
    same_as_reference(copy_of, reference)


def test_metrics_json_of_another_iteration_is_not_done(copy_of):
    a = rundir.iteration_dir(copy_of, REPLACE, 0, 2)
    b = rundir.iteration_dir(copy_of, REPLACE, 0, 3)
    shutil.copy(b / rundir.METRICS, a / rundir.METRICS)
    record, problem = rundir.check_iteration(a, REPLACE, 0, 2)
    assert record is None and "belongs to 'replace' seed 0 iteration 3" in problem


def test_damaged_real_set_file_is_rewritten(copy_of, reference, cache):
    path = rundir.real_path(copy_of, 0)
    path.write_text('{"index": 0, "text": "not the real set"}\n{"cut')
    messages = []
    assert go(copy_of, cache, log=messages.append).computed == []
    assert path.read_bytes() == rundir.real_path(reference, 0).read_bytes()
    assert any(str(path) in m and "rewriting" in m for m in messages)


# -- settings that change results --------------------------------------------------------------

def test_other_threads_are_refused_and_the_thread_count_is_restored(reference, cache):
    before = torch.get_num_threads()
    with pytest.raises(CollapseError, match="--threads is 1 there but 2 now"):
        go(reference, cache, threads=2)
    assert torch.get_num_threads() == before


def test_thread_count_is_restored_on_error_and_on_return(cache, tmp_path):
    torch.set_num_threads(2)
    try:
        def fail(stage, *key):
            assert torch.get_num_threads() == 1  # the run's own setting applies inside
            if stage == TRAINED:
                raise Killed

        with pytest.raises(Killed):
            go(tmp_path / "a", cache, hook=fail, iterations=1)
        assert torch.get_num_threads() == 2
        go(tmp_path / "b", cache, iterations=1, workflows_to_run=(REPLACE,))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_budget_and_learning_rate_are_part_of_the_identity(reference, cache):
    from collapse.lm.presets import with_overrides

    with pytest.raises(CollapseError, match="--budget"):
        run(RunConfig(MICRO, budget="matched"), reference, workflows_to_run=WORKFLOWS, iterations=T,
            cache_dir=cache, log=None)
    with pytest.raises(CollapseError, match="--lr"):
        run(RunConfig(with_overrides(MICRO, finetune_lr=1e-4)), reference, workflows_to_run=WORKFLOWS,
            iterations=T, cache_dir=cache, log=None)


@pytest.mark.parametrize("edit, needle", [
    (lambda c: c["extent"].update(iterations="3"), "extent.iterations"),
    (lambda c: c["extent"].update(seeds=5), "extent.seeds"),
    (lambda c: c["extent"].update(workflows="replace"), "extent.workflows"),
    (lambda c: c.update(settings=[]), "settings"),
    (lambda c: c.clear(), "format"),
])
def test_wrong_typed_config_is_one_line_for_run_and_report(copy_of, cache, edit, needle):
    config = json.loads((copy_of / rundir.CONFIG).read_text())
    edit(config)
    (copy_of / rundir.CONFIG).write_text(json.dumps(config))
    with pytest.raises(CollapseError, match=needle):
        go(copy_of, cache)
    for args in (("report", copy_of), ("run", "--iterations", 1, "--preset", "micro", "--output", copy_of,
                                       "--cache-dir", cache)):
        assert_usage_error(lm_cli(*args), "config.json is damaged", needle)


# -- the base-model cache ---------------------------------------------------------------------

def test_a_corrupted_cached_base_is_rebuilt_not_blamed_on_model(reference, cache, tmp_path):
    key = rundir.read_config(reference)["settings"]["base_key"]
    entry = Path(cache) / f"base-{key}"
    weights = next(p for p in entry.iterdir() if p.suffix == ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-100:] = bytes(100)  # flipped weights: the file still loads
    weights.write_bytes(bytes(data))
    messages = []
    out = tmp_path / "after-corruption"
    go(out, cache, log=messages.append, workflows_to_run=(REPLACE,), iterations=1)
    assert any("damaged" in m and "rebuilding" in m for m in messages), messages
    assert not any("--model" in m for m in messages)
    assert outcome(out, REPLACE, 0, 1) == outcome(reference, REPLACE, 0, 1)
    # and one that no longer loads at all
    (entry / "config.json").write_text("{ not json")
    out2 = tmp_path / "after-truncation"
    messages.clear()
    go(out2, cache, log=messages.append, workflows_to_run=(REPLACE,), iterations=1)
    assert any("damaged" in m for m in messages)
    assert outcome(out2, REPLACE, 0, 1) == outcome(reference, REPLACE, 0, 1)


# -- command line: one line, exit 2, before expensive work -------------------------------------

class Done:
    """What a command-line call returned: exit status, standard output and error."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def lm_cli(*args, env=None, timeout=300):
    """``python -m collapse.lm ARGS``: in this process (fast), or in a subprocess with ``env``."""
    if env is not None:
        full_env = dict(os.environ, **env)
        return subprocess.run([sys.executable, "-m", "collapse.lm", *map(str, args)], capture_output=True,
                              text=True, cwd=ROOT / "tests", env=full_env, timeout=timeout)
    import contextlib
    import io

    from collapse.lm.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return Done(code, out.getvalue(), err.getvalue())


def assert_usage_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_concurrent_run_into_one_directory_is_refused_with_the_holder(tmp_path, cache):
    out = tmp_path / "busy"
    with rundir.locked(out):
        proc = lm_cli("run", "--iterations", 1, "--preset", "micro", "--output", out, "--cache-dir", cache)
    assert_usage_error(proc, "--output", "in use by another collapse lm process", f"pid {os.getpid()}")
    assert not out.exists()  # the lock holder created it and nothing was written


def test_lock_is_released_when_the_holder_dies(tmp_path, cache):
    out = tmp_path / "dead-holder"
    code = ("import os, sys; from collapse.lm import rundir\n"
            f"with rundir.locked({str(out)!r}):\n"
            f"    open({str(out / 'x')!r}, 'w').close(); os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "tests")
    with rundir.locked(out):
        pass


@pytest.mark.parametrize("make, args, needles", [
    (None, ["--output", ""], ["--output", "empty"]),
    ("file", ["--cache-dir", "{tmp}/file"], ["--cache-dir", "is a file"]),
    ("latin1", ["--dataset", "{tmp}/latin1.txt"], ["--dataset", "not UTF-8"]),
    ("latin1-jsonl", ["--dataset", "{tmp}/latin1.jsonl"], ["--dataset", "not UTF-8"]),
    (None, ["--iterations", "1000000000"], ["--iterations", "would take about", "--force"]),
    (None, ["--budget", "sometimes"], ["--budget", "matched"]),
    (None, ["--budget", "1000000000"], ["--budget", "would take about"]),
    (None, ["--lr", "-1"], ["--lr"]),
    (None, ["--workflow", "real=fresh,size=500"], ["--workflow", "size=500"]),
    (None, ["--workflow", "real=sometimes"], ["--workflow", "real"]),
])
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(tmp_path, make, args, needles):
    if make == "file":
        (tmp_path / "file").write_text("I am a file")
    elif make == "latin1":
        (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n\nsecond\n".encode("latin-1"))
    elif make == "latin1-jsonl":
        (tmp_path / "latin1.jsonl").write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    args = [a.format(tmp=tmp_path) for a in args]
    base = {"--iterations": "2", "--preset": "micro", "--output": str(tmp_path / "out"),
            "--cache-dir": str(tmp_path / "cache")}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    proc = lm_cli("run", *[x for kv in base.items() for x in kv], timeout=120)
    assert_usage_error(proc, *needles)
    assert not (tmp_path / "out").exists()
    assert not any((tmp_path / "cache").glob("base-*")) if (tmp_path / "cache").is_dir() else True


def test_an_impossible_value_grid_is_refused_up_front(tmp_path):
    proc = lm_cli("value", "--real-sizes", "10", "--synthetic-sizes", "0,1000000000", "--preset", "micro",
                  "--output", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    assert_usage_error(proc, "--synthetic-sizes", "would take about")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_report_destinations_are_checked_and_formats_follow_the_extension(reference, tmp_path):
    assert_usage_error(lm_cli("report", reference, "--output", tmp_path), "--output", "directory")
    assert_usage_error(lm_cli("report", reference, "--plot", tmp_path / "c.jpg"), "--plot", ".png")
    for name, magic in (("c.pdf", b"%PDF"), ("c.svg", b"<?xml"), ("c.png", b"\x89PNG")):
        proc = lm_cli("report", reference, "--plot", tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).read_bytes().startswith(magic)


ASCII = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def test_report_in_an_ascii_locale_with_a_non_ascii_path(reference, tmp_path):
    folder = tmp_path / "donn\u00e9es"
    shutil.copytree(reference, folder / "run")
    proc = lm_cli("report", folder / "run", "--plot", folder / "p.png", env=ASCII)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "test_nll" in proc.stdout and (folder / "p.png").is_file()


@pytest.mark.slow
def test_run_in_an_ascii_locale_with_non_ascii_paths_and_texts(cache, tmp_path):
    from collapse.lm import corpus

    folder = tmp_path / "donn\u00e9es"
    folder.mkdir()
    (folder / "d.txt").write_text("\n\n".join(d + " \u00e9t\u00e9" for d in corpus.default_corpus().documents[:120]),
                                  encoding="utf-8")
    out = folder / "run"
    proc = lm_cli("run", "--iterations", 1, "--preset", "micro", "--workflow", "replace", "--dataset",
                  folder / "d.txt", "--output", out, "--cache-dir", cache, env=ASCII)
    assert proc.returncode == 0, proc.stderr
    proc = lm_cli("report", out, "--plot", folder / "p.png", env=ASCII)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_directories_of_the_earlier_format_are_reported_with_the_new_name_but_not_resumed(
        copy_of, reference, cache):
    expected = report.load_result(reference).table
    config = json.loads((copy_of / rundir.CONFIG).read_text())
    config["format"] = "collapse-lm-run/1"
    (copy_of / rundir.CONFIG).write_text(json.dumps(config))
    for path in copy_of.glob("*/seed-*/iter-*/metrics.json"):
        record = json.loads(path.read_text())
        record["metrics"]["heldout_ce_nats_per_token"] = record["metrics"].pop("test_nll")
        del record["files"]
        path.write_text(json.dumps(record))
    table = report.load_result(copy_of).table
    assert table.rows == expected.rows  # the same numbers, under the current metric name
    assert not table.select(metric="heldout_ce_nats_per_token").rows
    with pytest.raises(CollapseError, match="earlier version"):
        go(copy_of, cache)
