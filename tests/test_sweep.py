"""``collapse sweep``: grids of commands as Dask tasks, stored cell by cell, resumable.

Fast (default suite): grid validation (one line naming the key, exit 2, nothing
written), synchronous sweeps equal to the single commands, verified reuse of cell
files (damaged ones recomputed), a refused changed grid, a failed cell, and one real
``distributed.LocalCluster`` with 2 worker processes on a 12-cell Gaussian ``compare``
grid, cell by cell equal to the ``collapse compare gaussian`` commands, and an LM
grid of the ``micro`` preset (one resumable run directory per cell).

Slow (``pytest -m slow``): ``collapse sweep`` killed with SIGKILL part-way (its whole
process group, local workers included) and run again; a real ``dask scheduler`` and
two ``dask worker`` processes on 127.0.0.1, one of them killed while it runs a cell.
Every process a test starts is stopped and checked gone at its end.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import collapse
from collapse.simulate import sweep as sw
from collapse.simulate.cli import main, validate

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

GAUSSIAN12 = """\
command = "compare"
setting = "gaussian"
[fixed]
iterations = 8
replicates = 2000
seed = 3
[grid]
dim = [1, 10]
n = [10, 100]
workflow = ["replace", "accumulate", "accumulate-subsample"]
"""

THEORY = """\
command = "theory"
setting = "gaussian"
[fixed]
iterations = 4
[grid]
dim = [1, 3]
n = [10, 20, 40]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # the parser's own errors exit from main
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def single_command_rows(capsys, tmp_path: Path, argv: list[str]) -> list[list[str]]:
    """The CSV rows of the single ``collapse`` command ``argv``."""
    target = tmp_path / f"single-{abs(hash(tuple(argv)))}.csv"
    code, _, _ = run_cli(capsys, *argv, "--format", "csv", "--output", str(target))
    assert code in (0, 1, 3)
    return rows(target.read_text())


def assert_cells_equal_single_commands(capsys, tmp_path: Path, grid: sw.Grid, results: Path):
    """Every cell's rows of results.csv (command columns) equal its single command's."""
    table = rows(results.read_text())
    header, body = table[0], table[1:]
    base = list(sw._command_columns(grid.command))
    extra = [k for k in grid.keys if k not in base]
    assert header == base + extra
    position = {k: header.index(k) for k in grid.keys}
    seen = 0
    for cell in grid.cells:
        mine = [row[:len(base)] for row in body
                if all(row[position[k]] == sw._text(v) for k, v in cell.values.items())]
        theirs = single_command_rows(capsys, tmp_path, list(cell.argv))
        assert theirs[0] == base
        assert mine == theirs[1:], cell.label
        seen += len(mine)
    assert seen == len(body)


# --------------------------------------------------------------------------- bad grids

BAD_GRIDS = [
    ("unknown key", GAUSSIAN12.replace("seed = 3", "sede = 3"), "fixed.sede: unknown key"),
    ("unknown setting", GAUSSIAN12.replace('"gaussian"', '"gauss"'),
     "setting must be one of discrete, gaussian, kde, regression"),
    ("empty grid", GAUSSIAN12.split("[grid]")[0] + "[grid]\n", "grid: the grid is empty"),
    ("no grid", GAUSSIAN12.split("[grid]")[0], "grid: the grid is empty"),
    ("empty list", GAUSSIAN12.replace("dim = [1, 10]", "dim = []"),
     "grid.dim must be a non-empty list"),
    ("wrong type", GAUSSIAN12.replace("n = [10, 100]", 'n = [10, "100"]'),
     "grid.n must be an integer"),
    ("float for an integer", GAUSSIAN12.replace("iterations = 8", "iterations = 8.0"),
     "fixed.iterations must be an integer"),
    ("out of range", GAUSSIAN12.replace("n = [10, 100]", "n = [1, 100]"),
     "grid.n must be an integer >= 2 (got 1)"),
    ("bad choice", GAUSSIAN12.replace('"replace",', '"recycle",'), "grid.workflow"),
    ("scalar in grid", GAUSSIAN12.replace("dim = [1, 10]", "dim = 1"),
     "grid.dim must be a list of values"),
    ("list in fixed", GAUSSIAN12.replace("seed = 3", "seed = [3]"), "fixed.seed must be"),
    ("underscore spelling", GAUSSIAN12.replace("seed = 3", "theory_scale = 2.0"),
     "fixed.theory_scale: unknown key; keys are spelled as on the command line: theory-scale"),
    ("sweep-owned key", GAUSSIAN12.replace("seed = 3", 'format = "json"'),
     "fixed.format: not a cell option"),
    ("key twice", GAUSSIAN12.replace("seed = 3", "n = 10"), "grid.n: also set in [fixed]"),
    ("duplicate value", GAUSSIAN12.replace("dim = [1, 10]", "dim = [1, 1]"),
     "grid.dim lists 1 twice"),
    ("unknown command", GAUSSIAN12.replace('"compare"', '"fit"'), "command must be one of"),
    ("unknown top-level key", "title = 'x'\n" + GAUSSIAN12, "title: unknown key"),
    ("TOML syntax", GAUSSIAN12.replace("seed = 3", "seed = "), "not valid TOML"),
    ("identical cells", THEORY.replace("n = [10, 20, 40]", "seed = [0, 1]"),
     "grid.seed: cells"),
    ("combination", """command = "simulate"\nsetting = "kde"\n[fixed]\ntruth = "blobs"\n"""
                    """[grid]\ndim = [2, 3]\n""", "grid.dim must be 2 for truth blobs"),
    ("lm seeds", """command = "lm"\n[fixed]\niterations = 1\nseeds = 3\n[grid]\n"""
                 """seed = [0, 1]\n""", "fixed.seeds: not a cell option"),
    ("lm all workflows", """command = "lm"\n[fixed]\niterations = 1\n[grid]\n"""
                         """workflow = ["all"]\n""", "grid.workflow: an lm cell runs one workflow"),
    ("lm preset", """command = "lm"\n[fixed]\niterations = 1\n[grid]\n"""
                  """preset = ["huge"]\n""", "grid.preset: unknown preset"),
    ("lm no iterations", """command = "lm"\n[grid]\nseed = [0, 1]\n""",
     "iterations: missing"),
]


@pytest.mark.parametrize("name,text,expected", BAD_GRIDS, ids=[b[0] for b in BAD_GRIDS])
def test_malformed_grid_is_one_line_naming_the_key(capsys, tmp_path, name, text, expected):
    grid = write(tmp_path / "grid.toml", text)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "sweep", str(grid), "--output", str(out),
                                   "--scheduler", "synchronous")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"collapse: error: {grid}: "), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()
    # the same check without running (the docs validate the commands they show)
    assert validate(["sweep", str(grid), "--output", str(out)]) == lines[0]


def test_malformed_grid_leaves_an_existing_directory_untouched(capsys, tmp_path):
    grid = write(tmp_path / "grid.toml", GAUSSIAN12.replace("n = [10, 100]", "n = [0]"))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli(capsys, "sweep", str(grid), "--output", str(out))
    assert code == 2 and "grid.n" in err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("options,expected", [
    (["--workers", "0"], "collapse: error: --workers must be an integer >= 1 (got 0)"),
    (["--retries", "-1"], "collapse: error: --retries must be an integer >= 0 (got -1)"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "collapse: error: --workers: applies to the local cluster only"),
    (["--workers", "two"], "collapse: error: argument --workers: must be an integer"),
])
def test_bad_sweep_options_are_one_line(capsys, tmp_path, options, expected):
    grid = write(tmp_path / "theory.toml", THEORY)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "sweep", str(grid), "--output", str(out), *options)
    assert code == 2
    assert err.strip().startswith(expected) and len(err.strip().splitlines()) == 1
    assert validate(["sweep", str(grid), "--output", str(out), *options]).startswith(expected)
    assert not out.exists()


def test_api_raises_collapse_error_with_the_same_message(tmp_path):
    with pytest.raises(collapse.CollapseError, match=r"^grid: grid\.n must be an integer >= 2"):
        collapse.sweep({"command": "theory", "setting": "gaussian", "grid": {"n": [1]}},
                       tmp_path / "out")
    with pytest.raises(collapse.CollapseError, match="--workers: applies to the local cluster"):
        collapse.sweep({"command": "theory", "setting": "gaussian", "grid": {"n": [10]}},
                       tmp_path / "out", scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(collapse.CollapseError, match="workers must be an integer >= 1"):
        collapse.sweep({"command": "theory", "setting": "gaussian", "grid": {"n": [10]}},
                       tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(sw, "CONNECT_TIMEOUT", "2s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(collapse.CollapseError, match=f"--scheduler: cannot connect to 'tcp://127.0.0.1:{port}'"):
        collapse.sweep({"command": "theory", "setting": "gaussian", "grid": {"n": [10]}},
                       tmp_path / "out", scheduler=f"tcp://127.0.0.1:{port}")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- synchronous

def test_synchronous_kde_cells_equal_the_single_commands(capsys, tmp_path):
    text = """command = "simulate"\nsetting = "kde"\n[fixed]\nn = 10\niterations = 3\n""" \
           """replicates = 16\nseed = 7\n[grid]\ntruth = ["blobs", "moons"]\n""" \
           """bandwidth = [0.5, "scott"]\nworkflow = ["replace", "accumulate-subsample"]\n"""
    path = write(tmp_path / "kde.toml", text)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out),
                           "--scheduler", "synchronous", "--quiet")
    assert code == 0, err
    assert "8 cells computed, 0 reused" in err
    grid = sw.load_grid(path)
    assert_cells_equal_single_commands(capsys, tmp_path, grid, out / "results.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid_sha256"] == grid.fingerprint and manifest["status"] == "complete"
    assert [c["id"] for c in manifest["cells"]] == [c.id for c in grid.cells]
    assert manifest["versions"]["dask"] and manifest["versions"]["numpy"]
    assert set(manifest["timings"]["cell_seconds"]) == {c.id for c in grid.cells}
    # the equivalent command of each cell is recorded, and it is the one we compared with
    assert manifest["cells"][0]["command"] == "collapse " + " ".join(grid.cells[0].argv)


def test_damaged_cell_files_are_recomputed(capsys, tmp_path):
    path = write(tmp_path / "theory.toml", THEORY)
    out = tmp_path / "out"
    assert run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                   "synchronous")[0] == 0
    before = (out / "results.csv").read_bytes()
    grid = sw.load_grid(path)
    files = [out / "cells" / f"{c.id}.json" for c in grid.cells]
    text = files[0].read_text()
    files[0].write_text(text[: len(text) // 2])                       # truncated
    record = json.loads(files[1].read_text())
    record["csv"] = record["csv"].replace("0.", "1.", 1)               # a changed number
    files[1].write_text(json.dumps(record))
    files[2].write_text(files[3].read_text())                          # another cell's file
    files[4].unlink()                                                  # missing
    (out / "results.csv").write_text("garbage\n")
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                           "synchronous")
    assert code == 0
    assert "4 cells computed, 2 reused (3 damaged cell files recomputed)" in err
    assert err.count("is damaged") == 3
    assert "checksum" in err and "another cell" in err and "cannot be read" in err
    assert (out / "results.csv").read_bytes() == before
    for cell in grid.cells:
        assert sw.load_cell(out, cell)[0] is not None


def test_rerun_reuses_and_a_changed_grid_is_refused(capsys, tmp_path):
    path = write(tmp_path / "theory.toml", THEORY)
    out = tmp_path / "out"
    assert run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                   "synchronous")[0] == 0
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out))
    assert code == 0 and "0 cells computed, 6 reused" in err
    manifest = (out / "manifest.json").read_bytes()
    changed = write(tmp_path / "changed.toml", THEORY.replace("n = [10, 20, 40]", "n = [10, 20]"))
    code, _, err = run_cli(capsys, "sweep", str(changed), "--output", str(out))
    assert code == 2
    assert err.strip().splitlines() == [
        f"collapse: error: --output: {str(out)!r} holds a sweep of another grid (grid.n is "
        f"[10, 20, 40] there but [10, 20] now); use another --output directory or the same "
        f"grid"]
    assert (out / "manifest.json").read_bytes() == manifest
    # comments, spacing and the description are not the grid: still the same sweep
    same = write(tmp_path / "same.toml", "# a comment\ndescription = 'same'\n" + THEORY)
    assert run_cli(capsys, "sweep", str(same), "--output", str(out))[0] == 0
    # a directory that holds something else is refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(other))
    assert code == 2 and "is not empty and holds no sweep" in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_a_failed_cell_keeps_the_others_and_is_retried_on_rerun(capsys, tmp_path, monkeypatch):
    path = write(tmp_path / "theory.toml", THEORY)
    out = tmp_path / "out"
    original = sw._run_command

    def flaky(cell):
        if "--dim 3 --n 20" in " ".join(cell["argv"]):
            raise RuntimeError("disk on fire")
        return original(cell)

    monkeypatch.setattr(sw, "_run_command", flaky)
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                           "synchronous")
    assert code == 4
    assert "5 cells computed, 0 reused; 1 cells FAILED" in err
    assert "dim=3 n=20: RuntimeError: disk on fire" in err
    assert not (out / "results.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
    monkeypatch.setattr(sw, "_run_command", original)
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                           "synchronous")
    assert code == 0 and "1 cells computed, 5 reused" in err
    assert (out / "results.csv").is_file()


def test_compare_exit_status_follows_the_verdicts(capsys, tmp_path):
    # a negative control in one cell: the sweep must report the inconsistency (exit 1)
    text = """command = "compare"\nsetting = "gaussian"\n[fixed]\ndim = 2\nn = 20\n""" \
           """iterations = 5\nreplicates = 2000\nworkflow = "accumulate"\n[grid]\n""" \
           """theory-scale = [1.0, 1.05]\n"""
    path = write(tmp_path / "control.toml", text)
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(tmp_path / "out"),
                           "--scheduler", "synchronous")
    assert code == 1
    assert "verdicts: 1 CONSISTENT, 1 INCONSISTENT" in err
    assert "inconsistent cells: theory-scale=1.05" in err
    cells = json.loads((tmp_path / "out" / "manifest.json").read_text())["cells"]
    assert [c["verdict"] for c in cells] == ["CONSISTENT", "INCONSISTENT"]
    header = rows((tmp_path / "out" / "results.csv").read_text())[0]
    assert header[-1] == "theory-scale"


def test_progress_shows_cells_rate_and_time_left():
    stream = io.StringIO()
    bar = sw._Progress(total=20, reused=5, enabled=True, stream=stream)
    for _ in range(15):
        bar.update()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("collapse: sweep [") and "5/20 cells" in lines[0]
    assert "20/20 cells" in lines[-1] and "cells/s" in lines[-1] and "left" in lines[-1]
    assert len(lines) < 15  # not a line per cell when standard error is not a terminal

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bar = sw._Progress(total=3, reused=0, enabled=True, stream=terminal)
    for _ in range(3):
        bar.update()
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 4 and drawn.endswith("\n")  # one line, redrawn in place
    assert "3/3 cells" in drawn.splitlines()[-1].split("\r")[-1]


def test_ready_made_grids_validate_and_match_the_paper():
    found = sorted(p.name for p in (ROOT / "sweeps").glob("*.toml"))
    assert found == ["discrete-paper.toml", "gaussian-paper.toml", "kde-bandwidth-sweep.toml",
                     "kde-paper.toml", "lm-cpu.toml", "regression-paper.toml"]
    for name in found:
        assert validate(["sweep", str(ROOT / "sweeps" / name), "--output", "x"]) is None, name
    gaussian = sw.load_grid(ROOT / "sweeps" / "gaussian-paper.toml")
    namespace: dict = {}
    exec(compile((ROOT / "benchmarks" / "gaussian.py").read_text(), "gaussian.py", "exec"),
         namespace)
    axes = dict(gaussian.axes)
    assert axes["dim"] == namespace["GRID_DIMS"] and axes["n"] == namespace["GRID_NS"]
    assert len(gaussian.cells) == 75
    assert gaussian.fixed["iterations"] == 100 and gaussian.fixed["replicates"] == 100
    bandwidths = dict(sw.load_grid(ROOT / "sweeps" / "kde-bandwidth-sweep.toml").axes)
    assert len([h for h in bandwidths["bandwidth"] if not isinstance(h, str)]) == 9
    assert {"scott", "silverman"} <= set(bandwidths["bandwidth"])


def _benchmark_constants(name: str) -> dict:
    namespace: dict = {}
    exec(compile((ROOT / "benchmarks" / name).read_text(), name, "exec"), namespace)
    return namespace


def test_regression_and_discrete_grids_are_the_papers():
    regression = sw.load_grid(ROOT / "sweeps" / "regression-paper.toml")
    bench = _benchmark_constants("regression.py")
    axes = dict(regression.axes)
    assert axes["dim"] == bench["GRID_DIMS"] and axes["n"] == bench["GRID_NS"]
    assert axes["sigma2"] == bench["GRID_SIGMA2"]
    assert axes["workflow"] == ("replace", "accumulate", "accumulate-subsample")
    assert len(regression.cells) == 5 * 5 * 3 * 3 == 225
    assert regression.command == "compare" and regression.setting == "regression"
    assert regression.fixed["iterations"] == 100 and regression.fixed["replicates"] == 100
    # a cell is the single command, with the options of that cell
    cell = regression.cells[-1]
    assert cell.argv[:2] == ("compare", "regression")
    assert dict(zip(cell.argv[2::2], cell.argv[3::2]))["--dim"] == "100"

    discrete = sw.load_grid(ROOT / "sweeps" / "discrete-paper.toml")
    assert dict(discrete.axes)["n"] == _benchmark_constants("discrete.py")["NS"]
    assert discrete.fixed["workflow"] == "replace" and discrete.fixed["categories"] == 10
    # replace until collapse: the horizon is over five times Kimura's 1.9 n at the largest n
    kimura = -2 * max(dict(discrete.axes)["n"]) * 10 * 0.9 * math.log(0.9)
    assert discrete.fixed["iterations"] > 5 * kimura
    # negative control: the same validation refuses a bad value of the new settings
    with pytest.raises(collapse.CollapseError, match="categories"):
        sw.load_grid({"command": "simulate", "setting": "discrete",
                      "grid": {"categories": [1]}})
    with pytest.raises(collapse.CollapseError, match="sigma2"):
        sw.load_grid({"command": "compare", "setting": "regression",
                      "grid": {"sigma2": [-1.0]}})


# --------------------------------------------------------------------------- LocalCluster

def _live_children() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            # multiprocessing's resource tracker serves this process until it exits (it is
            # started once by the first spawned child, not by the cluster, and holds nothing)
            if child.status() != psutil.STATUS_ZOMBIE and not any(
                    "multiprocessing.resource_tracker" in part for part in child.cmdline()):
                out.append(child)
    return out


def test_local_cluster_of_two_workers_equals_the_single_commands(capsys, tmp_path):
    path = write(tmp_path / "gaussian12.toml", GAUSSIAN12)
    out = tmp_path / "out"
    before = {p.pid for p in _live_children()}
    done = collapse.sweep(path, out, workers=2)
    assert (done.computed, done.reused, done.exit_status) == (12, 0, 0)
    # every LocalCluster process is gone once the sweep returns
    deadline = time.monotonic() + 10
    while {p.pid for p in _live_children()} - before and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in _live_children() if p.pid not in before]
    assert not left, [p.cmdline() for p in left]
    grid = sw.load_grid(path)
    assert_cells_equal_single_commands(capsys, tmp_path, grid, out / "results.csv")
    records = [json.loads((out / "cells" / f"{c.id}.json").read_text()) for c in grid.cells]
    pids = {r["worker"]["pid"] for r in records}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # computed by the worker processes
    assert all(r["worker"]["blas_threads"] == 1 and r["worker"]["engine_threads"] == 1
               for r in records)
    # BLAS pinned before the workers start; Dask's malloc setting, costly here, unset
    assert all(r["worker"]["environment"]["OPENBLAS_NUM_THREADS"] == "1" for r in records)
    assert all(r["worker"]["environment"]["MALLOC_TRIM_THRESHOLD_"] is None for r in records)
    # a rerun computes nothing, and says so
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out))
    assert code == 0 and "0 cells computed, 12 reused" in err


# --------------------------------------------------------------------------- processes

class Processes:
    """Processes started by a test, each in its own session; all stopped at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        handle = open(log, "w")
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=env, start_new_session=True, **kwargs)
        handle.close()
        self.started.append(proc)
        return proc

    @staticmethod
    def kill_group(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def in_sessions(self) -> list[psutil.Process]:
        sessions = {p.pid for p in self.started}
        alive = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getsid(proc.pid) in sessions and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        return alive

    def stop_all(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5  # time to close cleanly, then SIGKILL
        while self.in_sessions() and time.monotonic() < deadline:
            time.sleep(0.2)
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        deadline = time.monotonic() + 15
        while self.in_sessions() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def processes():
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()
        assert not procs.in_sessions(), "a process the test started is still alive"


def collapse_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "collapse.simulate.cli", *args]


def wait_for_cells(cells: Path, at_least: int, proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(list(cells.glob("*.json"))) if cells.is_dir() else 0
        if count >= at_least:
            return count
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} cells after {timeout} s")


@pytest.fixture
def reference(tmp_path):
    """The 12-cell grid's results.csv from an uninterrupted synchronous sweep."""
    path = write(tmp_path / "gaussian12.toml", GAUSSIAN12)
    done = collapse.sweep(path, tmp_path / "reference", scheduler="synchronous")
    assert done.computed == 12
    return path, done.results.read_bytes()


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_reuses_every_finished_cell(tmp_path, processes,
                                                                  reference):
    path, expected = reference
    out = tmp_path / "killed"
    argv = collapse_argv("sweep", str(path), "--output", str(out), "--workers", "2")
    proc = processes.start(argv, tmp_path / "first.log")
    wait_for_cells(out / "cells", 3, proc, timeout=240)
    processes.kill_group(proc)  # the client, its scheduler and its worker processes
    deadline = time.monotonic() + 15
    while processes.in_sessions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.in_sessions()
    finished = [c for c in sw.load_grid(path).cells if sw.load_cell(out, c)[0] is not None]
    on_disk = sorted(p.name for p in (out / "cells").iterdir() if not p.name.startswith("."))
    assert len(on_disk) == len(finished)  # every cell file there is complete and verified
    assert 3 <= len(finished) < 12, "the kill came too late to test anything"
    assert not (out / "results.csv").exists()
    proc = processes.start(argv, tmp_path / "second.log")
    assert proc.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()
    log = (tmp_path / "second.log").read_text()
    assert f"{12 - len(finished)} cells computed, {len(finished)} reused" in log
    assert (out / "results.csv").read_bytes() == expected


def _dask(command: str) -> list[str]:
    script = BIN / "dask"
    return [str(script), command] if script.exists() else [
        sys.executable, "-m", f"distributed.cli.dask_{command}"]


@pytest.mark.slow
def test_external_scheduler_with_a_worker_killed_mid_sweep(tmp_path, processes, reference):
    path, expected = reference
    info = tmp_path / "scheduler.json"
    processes.start(_dask("scheduler") + ["--host", "127.0.0.1", "--port", "0",
                                           "--dashboard-address", "127.0.0.1:0",
                                           "--scheduler-file", str(info)],
                    tmp_path / "scheduler.log")
    deadline = time.monotonic() + 60
    while not info.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    address = json.loads(info.read_text())["address"]
    assert address.startswith("tcp://127.0.0.1:")
    workers = {f"w{k}": processes.start(
        _dask("worker") + [address, "--nthreads", "1", "--no-nanny", "--name", f"w{k}",
                           "--host", "127.0.0.1", "--no-dashboard"],
        tmp_path / f"worker{k}.log") for k in range(2)}
    out = tmp_path / "external"
    sweep = processes.start(collapse_argv("sweep", str(path), "--output", str(out),
                                          "--scheduler", address), tmp_path / "sweep.log")
    wait_for_cells(out / "cells", 2, sweep, timeout=240)
    from distributed import Client

    with Client(address, timeout="20s") as observer:  # to see which worker runs which cell
        victim = in_flight = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            names = {a: w["name"] for a, w in observer.scheduler_info()["workers"].items()}
            for worker, keys in observer.processing().items():
                cells = [str(k).split("-")[2] for k in keys if str(k).startswith("collapse-cell-")]
                if cells:
                    victim, in_flight = names[worker], cells
                    break
            time.sleep(0.02)
        assert victim is not None, "no cell was running"
        processes.kill_group(workers[victim])  # dies in the middle of a cell
        stored = {p.stem for p in (out / "cells").glob("*.json")}
    interrupted = [cell_id for cell_id in in_flight if cell_id not in stored]
    assert interrupted, "the cell finished before the kill"
    assert sweep.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()
    log = (tmp_path / "sweep.log").read_text()
    assert "12 cells computed, 0 reused" in log
    assert "dashboard: http://127.0.0.1:" in log
    assert (out / "results.csv").read_bytes() == expected
    for cell_id in interrupted:  # the cell of the dead worker was run again by the other one
        record = json.loads((out / "cells" / f"{cell_id}.json").read_text())
        assert record["worker"]["pid"] != workers[victim].pid
    assert not list((out / "cells").glob(".*.tmp"))


def test_lm_grid_runs_one_resumable_run_directory_per_cell(capsys, tmp_path):
    cache = tmp_path / "cache"
    text = f"""command = "lm"\n[fixed]\npreset = "micro"\niterations = 2\n""" \
           f"""cache-dir = "{cache}"\n[grid]\nworkflow = ["replace", "accumulate"]\n""" \
           f"""seed = [0, 1]\n"""
    path = write(tmp_path / "lm.toml", text)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                           "synchronous")
    assert code == 0, err
    assert "4 cells computed, 0 reused" in err
    grid = sw.load_grid(path)
    table = rows((out / "results.csv").read_text())
    assert table[0] == ["setting", "workflow", "iteration", "metric", "mean", "sem",
                        "replicates", "seed"]
    from collapse.lm import report

    for cell in grid.cells:
        run_dir = out / "lm" / cell.id
        assert (run_dir / "config.json").is_file()
        theirs = rows(report.summary_table(run_dir).to_csv())[1:]
        mine = [r[:7] for r in table[1:] if r[1] == cell.values["workflow"]
                and r[7] == str(cell.values["seed"])]
        assert mine == theirs and mine
    # a damaged cell file is recomputed from its run directory, which resumes (nothing refit)
    victim = out / "cells" / f"{grid.cells[0].id}.json"
    victim.write_text("{")
    before = (out / "results.csv").read_bytes()
    fits = sorted((out / "lm" / grid.cells[0].id).glob("*/seed-*/iter-*/metrics.json"))
    stamps = [p.stat().st_mtime_ns for p in fits]
    code, _, err = run_cli(capsys, "sweep", str(path), "--output", str(out), "--scheduler",
                           "synchronous")
    assert code == 0 and "1 cells computed, 3 reused" in err
    assert (out / "results.csv").read_bytes() == before
    assert len(fits) == 2 and [p.stat().st_mtime_ns for p in fits] == stamps


@pytest.mark.slow
def test_sigterm_stops_the_sweep_and_its_local_workers(tmp_path, processes):
    path = write(tmp_path / "gaussian12.toml", GAUSSIAN12)
    out = tmp_path / "out"
    proc = processes.start(collapse_argv("sweep", str(path), "--output", str(out),
                                         "--workers", "2"), tmp_path / "sweep.log")
    wait_for_cells(out / "cells", 1, proc, timeout=240)
    proc.send_signal(signal.SIGTERM)  # the client only, as a batch system would
    assert proc.wait(timeout=60) == 130
    deadline = time.monotonic() + 20
    while processes.in_sessions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.in_sessions(), "local workers outlived their sweep"
    log = (tmp_path / "sweep.log").read_text()
    assert "finished cells are kept" in log and "collapse: interrupted" in log
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
