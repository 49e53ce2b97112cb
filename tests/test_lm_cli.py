"""`python -m collapse.lm run|report` (the `collapse lm` subcommands): end to end, bad input, light imports."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collapse.analysis.vocabulary import WORKFLOWS
from collapse.lm import metrics, rundir
from collapse.simulate.tables import SIMULATE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def lm(*args, env=None, timeout=600):
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "lm", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


def assert_usage_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("python -m collapse.lm: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_importing_the_cli_does_not_import_torch():
    code = (
        "import argparse, sys, lm.cli\n"
        "p = argparse.ArgumentParser(); lm.cli.register(p.add_subparsers())\n"
        "heavy = [m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    out, cache = base / "run", base / "cache"
    proc = lm("run", "--workflow", "all", "--iterations", 2, "--seeds", 2, "--preset", "micro",
              "--output", out, "--cache-dir", cache, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet
    return out, cache


def test_report_csv_has_the_simulate_columns_and_finite_equal_first_iterations(run_dir, tmp_path):
    out, _ = run_dir
    csv_path, png = tmp_path / "r.csv", tmp_path / "r.png"
    proc = lm("report", out, "--format", "csv", "--output", csv_path, "--plot", png)
    assert proc.returncode == 0, proc.stderr
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == SIMULATE_COLUMNS
        rows = [dict(zip(SIMULATE_COLUMNS, r)) for r in reader]
    assert {r["setting"] for r in rows} == {"lm"}
    assert {r["metric"] for r in rows} == set(metrics.LM_METRICS)
    ce = {(r["workflow"], int(r["iteration"])): r for r in rows if r["metric"] == metrics.TEST_NLL}
    assert set(ce) == {(w, t) for w in WORKFLOWS for t in (1, 2)}
    assert all(math.isfinite(float(r["mean"])) and int(r["replicates"]) == 2 for r in ce.values())
    assert len({ce[(w, 1)]["mean"] for w in WORKFLOWS}) == 1
    # the mean and standard error over the 2 seeds, recomputed from the run's own files
    values = [rundir.read_json(rundir.iteration_dir(out, "replace", s, 2) / rundir.METRICS)["metrics"]
              [metrics.TEST_NLL] for s in (0, 1)]
    assert float(ce[("replace", 2)]["mean"]) == pytest.approx(sum(values) / 2, rel=1e-12)
    assert float(ce[("replace", 2)]["sem"]) == pytest.approx(abs(values[0] - values[1]) / 2, rel=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "growth of test_nll" in proc.stderr  # notes go to stderr with CSV


def test_report_json_and_table(run_dir):
    out, _ = run_dir
    proc = lm("report", out, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["columns"] == list(SIMULATE_COLUMNS)
    assert any("too short" in note for note in payload["notes"])  # 2 iterations cannot tell shapes apart
    table = lm("report", out)
    assert table.returncode == 0 and "test_nll" in table.stdout


def test_rerun_computes_nothing_new(run_dir):
    out, cache = run_dir
    proc = lm("run", "--workflow", "all", "--iterations", 2, "--seeds", 2, "--preset", "micro",
              "--output", out, "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert "0 iterations computed, 12 reused" in proc.stderr


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--iterations", 0], ["--iterations", ">= 1"]),
        (["--iterations", 2, "--seeds", 0], ["--seeds", ">= 1"]),
        (["--iterations", 2, "--n", 1], ["--n", ">= 2"]),
        (["--iterations", "two"], ["--iterations"]),
        (["--iterations", 2, "--preset", "huge"], ["--preset", "huge", "tiny", "small"]),
        (["--iterations", 2, "--workflow", "recycle"], ["--workflow", "recycle"]),
        (["--iterations", 2, "--dataset", "no/such/file.txt"], ["--dataset", "no such file"]),
        (["--iterations", 2, "--dataset", "./missing-dir/data.jsonl"], ["--dataset"]),
        (["--iterations", 2, "--model", "./no-such-model-dir"], ["--model", "no such model directory"]),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needles, tmp_path):
    out = tmp_path / "never"
    preset = [] if "--preset" in args else ["--preset", "micro"]
    assert_usage_error(lm("run", *args, *preset, "--output", out, "--cache-dir", tmp_path / "c"), *needles)
    assert not out.exists()


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_unreachable_hub_model_is_one_line_exit_2(env, tmp_path):
    proc = lm("run", "--iterations", 1, "--preset", "micro", "--model", "collapse-tests/no-such-model",
              "--output", tmp_path / "out", "--cache-dir", tmp_path / "c", env=env, timeout=120)
    assert_usage_error(proc, "--model", "cannot reach", "local directory")
    assert not (tmp_path / "out").exists()


def test_hub_dataset_without_datasets_package_or_hub_is_one_line_exit_2(tmp_path):
    import importlib.util

    proc = lm("run", "--iterations", 1, "--preset", "micro", "--dataset", "nvidia/HelpSteer2",
              "--output", tmp_path / "out", "--cache-dir", tmp_path / "c",
              env={"HF_ENDPOINT": "http://127.0.0.1:9"}, timeout=120)
    if importlib.util.find_spec("datasets") is None:
        assert_usage_error(proc, "--dataset", "pip install datasets")
    else:
        assert_usage_error(proc, "--dataset", "cannot reach")
    assert not (tmp_path / "out").exists()


def test_directory_made_with_other_settings_is_refused(run_dir):
    out, cache = run_dir
    before = (out / rundir.CONFIG).read_text()
    proc = lm("run", "--iterations", 2, "--preset", "micro", "--n", 20, "--output", out, "--cache-dir", cache)
    assert_usage_error(proc, "--output", "--n is 12 there but 20 now")
    proc = lm("run", "--iterations", 2, "--preset", "tiny", "--output", out, "--cache-dir", cache)
    assert_usage_error(proc, "--output", "--preset")
    assert (out / rundir.CONFIG).read_text() == before


def test_non_run_directories_are_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert_usage_error(lm("run", "--iterations", 1, "--preset", "micro", "--output", other,
                          "--cache-dir", tmp_path / "c"), "--output", "not an lm run directory")
    assert_usage_error(lm("report", other), "not an lm run directory")


def test_value_command_prints_the_value_columns_and_report_draws_the_heat_map(run_dir, tmp_path):
    _, cache = run_dir
    out = tmp_path / "value"
    proc = lm("value", "--real-sizes", "0,6,12", "--synthetic-sizes", "0,12", "--seeds", 1, "--preset", "micro",
              "--output", out, "--cache-dir", cache, "--format", "csv", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(proc.stdout.splitlines()))
    assert tuple(rows[0]) == ("setting", "real_size", "synthetic_size", "metric", "mean", "sem", "replicates")
    cells = {(int(r[1]), int(r[2])) for r in rows[1:] if r[3] == metrics.TEST_NLL}
    assert cells == {(0, 12), (6, 0), (6, 12), (12, 0), (12, 12)}
    again = lm("report", out, "--format", "csv", "--plot", tmp_path / "heat.svg")
    assert again.returncode == 0, again.stderr
    assert list(csv.reader(again.stdout.splitlines())) == rows
    assert (tmp_path / "heat.svg").read_bytes().startswith(b"<?xml")
    assert_usage_error(lm("value", "--real-sizes", "0", "--synthetic-sizes", "0", "--preset", "micro",
                          "--output", tmp_path / "none", "--cache-dir", cache), "--real-sizes")
