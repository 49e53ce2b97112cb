"""The LM loop end to end on the `micro` preset (torch, CPU, offline).

Checks: determinism for a fixed seed, iteration 1 identical across workflows,
resume after a simulated kill equals an uninterrupted run, extending a run
computes only the new iterations, a different-settings directory is refused,
a model saved with save_pretrained in a temporary directory, local .txt and
.jsonl data sets.
"""

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from collapse.analysis.errors import CollapseError  # noqa: E402
from collapse.analysis.vocabulary import ACCUMULATE, ACCUMULATE_SUBSAMPLE, REPLACE, WORKFLOWS  # noqa: E402
from collapse.lm import corpus, metrics, rundir  # noqa: E402
from collapse.lm.presets import PRESETS, with_overrides  # noqa: E402
from collapse.lm.run import DONE, TRAINED, RunConfig, run  # noqa: E402

MICRO = PRESETS["micro"]
T = 3


class Killed(Exception):
    """Stands in for the process being killed mid-iteration."""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lm-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """An uninterrupted micro run: all workflows, T iterations, 2 seeds."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = run(RunConfig(MICRO), out, iterations=T, n_seeds=2, cache_dir=cache, log=None)
    assert len(result.computed) == len(WORKFLOWS) * T * 2 and not result.reused
    return out


def outcome(root: Path, workflow: str, seed: int, t: int) -> tuple:
    """What must be reproducible: the metrics, the training set and the samples (not timings)."""
    d = rundir.iteration_dir(root, workflow, seed, t)
    record = rundir.read_json(d / rundir.METRICS)
    return (record["metrics"], record["training_set"], record["heldout"],
            rundir.read_json(d / rundir.TRAINING_SET), rundir.read_jsonl(d / rundir.SAMPLES))


def test_reference_run_is_complete_and_finite(reference):
    for w in WORKFLOWS:
        for s in (0, 1):
            for t in range(1, T + 1):
                values, training_set, *_ , samples = outcome(reference, w, s, t)
                assert set(values) == set(metrics.LM_METRICS)
                assert math.isfinite(values[metrics.TEST_NLL]) and values[metrics.TEST_NLL] > 0
                assert math.isfinite(values[metrics.HELDOUT_BPB]) and values[metrics.HELDOUT_BPB] > 0
                assert len(samples) == MICRO.n
                expected = MICRO.n * t if (w == ACCUMULATE and t > 1) else MICRO.n
                assert training_set["documents"] == expected


def test_training_sets_follow_the_workflows(reference):
    for s in (0, 1):
        refs = {w: [tuple(r) for r in rundir.read_json(
            rundir.iteration_dir(reference, w, s, 3) / rundir.TRAINING_SET)["refs"]] for w in WORKFLOWS}
        assert {src for src, _ in refs[REPLACE]} == {2}
        assert set(refs[ACCUMULATE]) == {(k, i) for k in range(3) for i in range(MICRO.n)}
        assert set(refs[ACCUMULATE_SUBSAMPLE]) <= set(refs[ACCUMULATE])
        assert len(set(refs[ACCUMULATE_SUBSAMPLE])) == MICRO.n


def test_iteration_one_is_identical_across_workflows(reference):
    for s in (0, 1):
        first = outcome(reference, REPLACE, s, 1)
        for w in WORKFLOWS[1:]:
            assert outcome(reference, w, s, 1) == first
    # and the seeds really are different replicates
    assert outcome(reference, REPLACE, 0, 1) != outcome(reference, REPLACE, 1, 1)


def test_same_seed_gives_identical_results(reference, cache, tmp_path):
    out = tmp_path / "again"
    run(RunConfig(MICRO), out, workflows_to_run=(REPLACE,), iterations=T, n_seeds=1, cache_dir=cache, log=None)
    for t in range(1, T + 1):
        assert outcome(out, REPLACE, 0, t) == outcome(reference, REPLACE, 0, t)


def test_resume_after_a_kill_equals_an_uninterrupted_run(reference, cache, tmp_path):
    out = tmp_path / "killed"

    def kill_in_iteration_3(stage, workflow, seed, t):
        if (stage, workflow, seed, t) == (TRAINED, ACCUMULATE, 0, 3):
            raise Killed

    with pytest.raises(Killed):
        run(RunConfig(MICRO), out, iterations=T, n_seeds=1, cache_dir=cache, log=None,
            hook=kill_in_iteration_3)
    assert rundir.is_complete(rundir.iteration_dir(out, ACCUMULATE, 0, 2))
    assert not rundir.is_complete(rundir.iteration_dir(out, ACCUMULATE, 0, 3))

    done = []
    result = run(RunConfig(MICRO), out, iterations=T, n_seeds=1, cache_dir=cache, log=None,
                 hook=lambda stage, w, s, t: done.append((w, s, t)) if stage == DONE else None)
    # iterations 1-2 of accumulate (and all of replace) are not recomputed
    assert (ACCUMULATE, 0, 1) not in result.computed and (ACCUMULATE, 0, 2) not in result.computed
    assert {(REPLACE, 0, t) for t in range(1, T + 1)} <= set(result.reused)
    assert set(result.computed) == {(ACCUMULATE, 0, 3)} | {(ACCUMULATE_SUBSAMPLE, 0, t) for t in range(1, T + 1)}
    assert set(done) == set(result.computed)
    for w in WORKFLOWS:
        for t in range(1, T + 1):
            assert outcome(out, w, 0, t) == outcome(reference, w, 0, t)


def test_more_iterations_computes_only_the_new_ones(reference, cache, tmp_path):
    out = tmp_path / "grow"
    run(RunConfig(MICRO), out, workflows_to_run=(ACCUMULATE_SUBSAMPLE,), iterations=2, cache_dir=cache, log=None)
    result = run(RunConfig(MICRO), out, workflows_to_run=(ACCUMULATE_SUBSAMPLE,), iterations=T,
                 cache_dir=cache, log=None)
    assert result.computed == [(ACCUMULATE_SUBSAMPLE, 0, 3)]
    assert outcome(out, ACCUMULATE_SUBSAMPLE, 0, 3) == outcome(reference, ACCUMULATE_SUBSAMPLE, 0, 3)
    assert rundir.read_config(out)["extent"]["iterations"] == T


def test_directory_made_with_other_settings_is_refused(reference, cache):
    before = (reference / rundir.CONFIG).read_text()
    with pytest.raises(CollapseError, match="--n is 12 there but 13 now"):
        run(RunConfig(with_overrides(MICRO, n=13)), reference, iterations=1, cache_dir=cache, log=None)
    with pytest.raises(CollapseError, match="--seed"):
        run(RunConfig(MICRO, seed=5), reference, iterations=1, cache_dir=cache, log=None)
    assert (reference / rundir.CONFIG).read_text() == before


def test_base_model_is_cached_by_settings(reference, cache):
    key = rundir.read_config(reference)["settings"]["base_key"]
    meta = json.loads((Path(cache) / f"base-{key}" / "collapse-base.json").read_text())
    assert meta["settings"]["model"]["n_layer"] == MICRO.n_layer
    # every micro run on the default corpus reused that one pretrained base
    fingerprint = corpus.default_corpus().fingerprint
    same = [p for p in Path(cache).glob("base-*/collapse-base.json")
            if json.loads(p.read_text())["settings"]["corpus_sha256"] == fingerprint]
    assert len(same) == 1


def _save_tiny_model(directory: Path, context: int = MICRO.context) -> None:
    from collapse.lm.modeling import ENDOFTEXT, build_model, train_tokenizer

    texts = corpus.default_corpus().documents[:200]
    tokenizer = train_tokenizer(texts, 300)
    torch.manual_seed(0)
    model = build_model(with_overrides(MICRO, context=context), len(tokenizer),
                        tokenizer.convert_tokens_to_ids(ENDOFTEXT))
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)


def test_model_from_a_local_directory(tmp_path, cache):
    model_dir = tmp_path / "saved-model"
    _save_tiny_model(model_dir)
    out = tmp_path / "run"
    run(RunConfig(MICRO, model=str(model_dir)), out, workflows_to_run=(REPLACE,), iterations=2,
        cache_dir=cache, log=None)
    config = rundir.read_config(out)
    assert config["settings"]["model"] == str(model_dir.resolve())
    assert config["settings"]["base_key"] is None
    assert config["provenance"]["split_sizes"]["pretrain"] == 0  # --model skips pretraining
    for t in (1, 2):
        assert math.isfinite(outcome(out, REPLACE, 0, t)[0][metrics.TEST_NLL])


def test_local_txt_and_jsonl_datasets(tmp_path, cache):
    docs = corpus.default_corpus().documents[:150]
    txt = tmp_path / "docs.txt"
    txt.write_text("\n\n".join(docs) + "\n")
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"body": d}) + "\n" for d in docs))
    for spec, field in ((txt, None), (jsonl, "body")):
        out = tmp_path / f"run-{spec.suffix[1:]}"
        run(RunConfig(MICRO, dataset=str(spec), text_field=field), out, workflows_to_run=(ACCUMULATE,),
            iterations=2, cache_dir=cache, log=None)
        settings = rundir.read_config(out)["settings"]
        assert settings["dataset_sha256"] == corpus.fingerprint(docs)
        real = [r["text"] for r in rundir.read_jsonl(rundir.real_path(out, 0))]
        assert len(real) == MICRO.n and set(real) <= set(docs)
        assert math.isfinite(outcome(out, ACCUMULATE, 0, 2)[0][metrics.TEST_NLL])


@pytest.mark.slow
def test_resume_after_a_real_sigkill_equals_an_uninterrupted_run(reference, cache, tmp_path):
    """A separate process is killed with SIGKILL (no cleanup runs) while fine-tuning iteration 3."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "sigkill"
    script = (
        "import os, signal\n"
        "from lm.presets import PRESETS\n"
        "from lm.run import RunConfig, run, TRAINED\n"
        "def hook(stage, w, s, t):\n"
        "    if (stage, w, s, t) == (TRAINED, 'replace', 0, 3):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"run(RunConfig(PRESETS['micro']), {str(out)!r}, workflows_to_run=('replace',), iterations=3,\n"
        f"    cache_dir={str(cache)!r}, log=None, hook=hook)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert rundir.is_complete(rundir.iteration_dir(out, REPLACE, 0, 2))
    assert not rundir.is_complete(rundir.iteration_dir(out, REPLACE, 0, 3))
    result = run(RunConfig(MICRO), out, workflows_to_run=(REPLACE,), iterations=T, cache_dir=cache, log=None)
    assert result.computed == [(REPLACE, 0, 3)]
    for t in range(1, T + 1):
        assert outcome(out, REPLACE, 0, t) == outcome(reference, REPLACE, 0, t)


# -- workflow rules, budgets, the results object, the value grid, chat data -------------------

def test_fresh_and_stratified_specs_run_with_identical_first_iterations(reference, cache, tmp_path):
    from collapse.lm.workflows import fresh_source

    out = tmp_path / "rules"
    spec = "real=original,synthetic=all,size=12,real-fraction=0.25"
    result = run(RunConfig(MICRO), out, workflows_to_run="fresh", iterations=T, cache_dir=cache, log=None)
    run(RunConfig(MICRO), out, workflows_to_run=spec, iterations=T, cache_dir=cache, log=None)
    assert {w.label for w in result.metrics.workflows} == {"fresh"}
    for label in ("fresh", spec):
        assert outcome(out, label, 0, 1)[0] == outcome(reference, REPLACE, 0, 1)[0]
    real = [r["text"] for r in rundir.read_jsonl(rundir.real_path(out, 0))]
    for t in (2, 3):
        fresh = rundir.read_json(rundir.iteration_dir(out, "fresh", 0, t) / rundir.TRAINING_SET)["refs"]
        assert {s for s, _ in fresh} == {fresh_source(t), t - 1}
        record = rundir.read_json(rundir.iteration_dir(out, "fresh", 0, t) / rundir.METRICS)
        assert record["training_set"]["fresh_documents"] == MICRO.n
        stratified = rundir.read_json(rundir.iteration_dir(out, spec, 0, t) / rundir.METRICS)["training_set"]
        assert (stratified["real_documents"], stratified["synthetic_documents"]) == (3, 9)
    assert (out / rundir.workflow_dir(spec)).is_dir() and "," not in rundir.workflow_dir(spec)
    assert len(real) == MICRO.n


def test_matched_budget_gives_every_iteration_the_steps_of_iteration_one(reference, cache, tmp_path):
    out = tmp_path / "matched"
    run(RunConfig(MICRO, budget="matched"), out, iterations=T, cache_dir=cache, log=None)
    steps = {(w, t): rundir.read_json(rundir.iteration_dir(out, w, 0, t) / rundir.METRICS)
             ["training_set"]["optimiser_steps"] for w in WORKFLOWS for t in range(1, T + 1)}
    assert len(set(steps.values())) == 1
    # iteration 1 is the same model as under whole epochs; accumulate's later ones are not
    assert outcome(out, ACCUMULATE, 0, 1) == outcome(reference, ACCUMULATE, 0, 1)
    ref_steps = rundir.read_json(rundir.iteration_dir(reference, ACCUMULATE, 0, 3) / rundir.METRICS)
    assert ref_steps["training_set"]["optimiser_steps"] > steps[(ACCUMULATE, 3)]
    fixed = tmp_path / "fixed"
    run(RunConfig(MICRO, budget=2), fixed, workflows_to_run=(REPLACE,), iterations=2, cache_dir=cache, log=None)
    assert rundir.read_json(rundir.iteration_dir(fixed, REPLACE, 0, 2) / rundir.METRICS)[
        "training_set"]["optimiser_steps"] == 2


def test_run_returns_its_metrics_as_a_simulation_result(reference, cache):
    import numpy as np

    from collapse.lm import report
    from collapse.simulate.results import SimulationResult
    from collapse.simulate.tables import SIMULATE_COLUMNS

    result = run(RunConfig(MICRO), reference, iterations=T, n_seeds=2, cache_dir=cache, log=None)
    assert not result.computed
    m = result.metrics
    assert isinstance(m, SimulationResult) and m.setting == "lm"
    assert m.samples[ACCUMULATE][metrics.TEST_NLL].shape == (2, T)
    values = [rundir.read_json(rundir.iteration_dir(reference, ACCUMULATE, s, 2) / rundir.METRICS)
              ["metrics"][metrics.TEST_NLL] for s in (0, 1)]
    assert list(m.samples[ACCUMULATE][metrics.TEST_NLL][:, 1]) == values
    frame = m.to_frame()
    assert list(frame.columns) == list(SIMULATE_COLUMNS)
    row = frame[(frame.workflow == ACCUMULATE) & (frame.iteration == 2) & (frame.metric == metrics.TEST_NLL)]
    assert float(row["mean"].iloc[0]) == pytest.approx(np.mean(values), rel=1e-12)
    assert float(row["sem"].iloc[0]) == pytest.approx(np.std(values, ddof=1) / np.sqrt(2), rel=1e-9)
    # the same table as the report of the directory
    assert report.load_result(reference).table.rows == m.table.rows
    fig = m.plot()
    assert len(fig.axes) >= len(metrics.LM_METRICS)


def test_value_grid_cells_equal_the_loops_second_iteration(reference, cache, tmp_path):
    """A student on n real + n generated texts is accumulate's model 2 (same real set, same
    generator = model 1, same training seed); one on 0 real + n generated is replace's."""
    from collapse.lm import value

    out = tmp_path / "value"
    n = MICRO.n
    result = value.run_value(RunConfig(MICRO), out, real_sizes=(0, n // 2, n), synthetic_sizes=(0, n),
                             n_seeds=2, cache_dir=cache)
    table = {(r["real_size"], r["synthetic_size"], r["metric"]): r for r in result.table.records()}
    for seed in (0, 1):
        k = result.seeds.index(seed)
        acc = outcome(reference, ACCUMULATE, seed, 2)[0][metrics.TEST_NLL]
        rep = outcome(reference, REPLACE, seed, 2)[0][metrics.TEST_NLL]
        assert result.values[(n, n)][metrics.TEST_NLL][k] == acc
        assert result.values[(0, n)][metrics.TEST_NLL][k] == rep
    assert (0, 0, metrics.TEST_NLL) not in table and table[(n, 0, metrics.TEST_NLL)]["replicates"] == 2
    assert list(value.VALUE_COLUMNS) == list(result.table.columns)
    # resumable per cell: nothing recomputed; a damaged cell is recomputed alone
    again = value.run_value(RunConfig(MICRO), out, real_sizes=(0, n // 2, n), synthetic_sizes=(0, n),
                            n_seeds=2, cache_dir=cache)
    assert again.computed == [] and again.table.rows == result.table.rows
    cell = out / "seed-1" / f"real-{n // 2}-synthetic-{n}" / rundir.METRICS
    cell.write_text("{}")
    again = value.run_value(RunConfig(MICRO), out, real_sizes=(0, n // 2, n), synthetic_sizes=(0, n),
                            n_seeds=2, cache_dir=cache)
    assert again.computed == [(1, n // 2, n)] and again.table.rows == result.table.rows
    assert value.load_value(out).table.rows == result.table.rows
    with pytest.raises(CollapseError, match="--generator-n"):
        value.run_value(RunConfig(MICRO), out, real_sizes=(0, n // 2), synthetic_sizes=(0, n),
                        n_seeds=2, cache_dir=cache)
    value.save_heatmap(value.load_value(out), tmp_path / "heat.png")
    assert (tmp_path / "heat.png").read_bytes()[:4] == b"\x89PNG"


def _helpsteer_file(path: Path, k: int, chars: int | None = None) -> None:
    """A local file in HelpSteer2's layout, its texts real documentation paragraphs (cut to
    ``chars`` characters), every tenth response six times too long for a small context."""
    docs = [d[:chars] for d in corpus.default_corpus().documents]
    records = []
    for i in range(k):
        response = docs[2 * i + 1] * (6 if i % 10 == 0 else 1)
        records.append({"prompt": docs[2 * i], "response": response, "helpfulness": 3, "correctness": 3,
                        "coherence": 4, "complexity": 2, "verbosity": 2})
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_prompt_response_data_is_chat_formatted_and_overlong_examples_left_out(cache, tmp_path):
    from collapse.lm import modeling
    from collapse.lm.presets import with_overrides

    data = tmp_path / "helpsteer2.jsonl"
    _helpsteer_file(data, 200)
    preset = with_overrides(MICRO, context=256, max_new_tokens=60)
    out = tmp_path / "chat"
    messages = []
    run(RunConfig(preset, dataset=str(data)), out, workflows_to_run=(REPLACE,), iterations=2,
        cache_dir=cache, log=messages.append)
    config = rundir.read_config(out)
    dropped = config["provenance"]["chat_examples_over_context"]
    assert dropped > 0 and any(f"left out {dropped} of" in m for m in messages)
    real = [r["text"] for r in rundir.read_jsonl(rundir.real_path(out, 0))]
    assert all(t.startswith("user: ") and "\nassistant: " in t for t in real)
    key = config["settings"]["base_key"]
    tokenizer = modeling.load(str(Path(cache) / f"base-{key}")).tokenizer
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 2 <= 256 for t in real)


@pytest.mark.slow
def test_the_documented_helpsteer2_command_runs_on_a_local_model_and_file(cache, tmp_path):
    """The command of the reproducing page, on a tiny HelpSteer2-layout file and a model
    saved with save_pretrained (sizes cut down, options otherwise as documented)."""
    import subprocess
    import sys

    from collapse.lm import progress  # noqa: F401  (the CLI's own import path)

    model_dir = tmp_path / "gemma-2-2b"
    _save_tiny_model(model_dir, context=160)
    data = tmp_path / "helpsteer2.jsonl"
    _helpsteer_file(data, 60, chars=40)
    import re
    import shlex

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "reproducing.rst").read_text().replace("\\\n", " ")
    documented = re.search(r"collapse lm run [^\n]*--model \./gemma-2-2b[^\n]*", page)[0]
    argv = shlex.split(documented)[2:]
    assert "--text-field" not in argv and argv[argv.index("--dataset") + 1] == "helpsteer2.jsonl"
    smaller = {"--iterations": "2", "--seeds": "1"}
    argv = [smaller.get(argv[i - 1], a) if i else a for i, a in enumerate(argv)]
    cmd = [sys.executable, "-m", "collapse.lm", *argv, "--preset", "micro", "--n", "8", "--n-eval", "8", "--quiet"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "runs" / "gemma"
    for w in WORKFLOWS:
        assert math.isfinite(outcome(out, w, 0, 2)[0][metrics.TEST_NLL])
