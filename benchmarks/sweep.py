"""Speed of ``collapse sweep`` on a local Dask cluster against the same cells in one process.

Three grids, each run twice through the ``collapse sweep`` command into fresh
directories: once on a ``distributed.LocalCluster`` (``--workers N``, one thread and one
BLAS thread per worker), once with ``--scheduler synchronous`` (the same cells one after
another in one process, each as the single command runs it, with the engines' own
threads).  Both write and verify the same cell files and ``results.csv``; the script
checks that the two ``results.csv`` are identical, and reports wall-clock times, their
ratio (sequential / sweep: above 1 means the sweep is faster) and the CPU time of each
command with all its processes (on a shared machine the wall times move with the
load; the CPU times much less).

1. ``sweeps/gaussian-paper.toml``: the paper's full Gaussian grid (75 ``compare``
   cells, 100 iterations, 100 replicates); ``--quick``: ``d <= 10``, ``n <= 100``.
2. A KDE grid: truths blobs, moons, circles x bandwidths 0.1, 0.5, 1.0 x ``n`` in
   10, 32, 100 x 3 workflows (81 ``simulate`` cells), 30 iterations, 100 replicates,
   500 held-out points (the paper's full KDE grid takes hours in one process);
   ``--quick``: ``n`` in 10, 32.
3. Trivial cells, for the engine's own cost: ``collapse theory gaussian --iterations 1``
   for 200 sample sizes.  With ``R`` the wall time of a rerun that reuses every cell
   (the command's fixed cost) and ``U`` the cluster's start-up and stop (timed on its
   own, no task), per-task overhead = (sweep - R - U) x workers / cells - (sequential -
   R) / cells: the worker time a task costs beyond its computation (scheduling,
   serialisation, the worker's atomic write of the cell file and the client's check of
   it); ``U`` includes each worker's one-time import of collapse.

The load of the machine is printed with the numbers: on a shared machine they move.

Run: ``python benchmarks/sweep.py [--quick] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KDE_GRID = """\
command = "simulate"
setting = "kde"
[fixed]
iterations = 30
replicates = 100
heldout = 500
seed = 0
[grid]
truth = ["blobs", "moons", "circles"]
bandwidth = [0.1, 0.5, 1.0]
n = {ns}
workflow = ["replace", "accumulate", "accumulate-subsample"]
"""

TRIVIAL_GRID = """\
command = "theory"
setting = "gaussian"
[fixed]
iterations = 1
workflow = "replace"
[grid]
n = {ns}
"""


def _collapse(*args: str) -> tuple[float, float]:
    """Wall-clock seconds of one ``collapse`` command (it must complete: a ``compare``
    verdict, exit status 1 or 3, is a result here, not a failure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "collapse.simulate.cli", *args], cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the command's processes and theirs (the local cluster's workers are its children)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1, 3):
        sys.exit(f"failed ({done.returncode}): collapse {' '.join(args)}\n{done.stderr}")
    return seconds, cpu


def compare(name: str, grid: Path, workdir: Path, workers: int) -> tuple[float, float, float]:
    """(sequential, sweep, rerun) wall seconds of ``grid``; the results.csv of the first two
    must be identical; ``rerun`` is the sequential command again, every cell reused (the
    fixed cost of the command: start, import, validation, reading and writing files)."""
    sequential_dir, sweep_dir = workdir / f"{name}-sequential", workdir / f"{name}-sweep"
    for folder in (sequential_dir, sweep_dir):
        shutil.rmtree(folder, ignore_errors=True)
    sequential, sequential_cpu = _collapse("sweep", str(grid), "--output", str(sequential_dir),
                                           "--scheduler", "synchronous", "--quiet")
    swept, swept_cpu = _collapse("sweep", str(grid), "--output", str(sweep_dir), "--workers",
                                 str(workers), "--quiet")
    same = (sequential_dir / "results.csv").read_bytes() == (sweep_dir / "results.csv").read_bytes()
    if not same:
        sys.exit(f"{name}: the sweep's results.csv differs from the sequential one")
    from collapse.simulate.sweep import load_grid

    rerun, _ = _collapse("sweep", str(grid), "--output", str(sequential_dir), "--scheduler",
                         "synchronous", "--quiet")
    cells = len(load_grid(grid).cells)
    print(f"{name}: {cells} cells; sequential {sequential:.1f} s ({sequential_cpu:.1f} s CPU), "
          f"sweep on {workers} workers {swept:.1f} s ({swept_cpu:.1f} s CPU); ratio "
          f"{sequential / swept:.2f} (results.csv identical; a rerun that reuses every cell "
          f"takes {rerun:.1f} s)", flush=True)
    return sequential, swept, rerun


def _warm() -> None:
    """What a worker does once, before its first cell: import collapse, build the parser."""
    from collapse.simulate import sweep

    sweep._parser()


def startup(workers: int, repeats: int = 3) -> float:
    """Median seconds to start a LocalCluster of ``workers`` and its client, have every
    worker import collapse (each does before its first cell), and stop it."""
    from collapse.simulate.sweep import _client

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with _client(None, workers, None) as client:
            client.run(_warm)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller Gaussian and KDE grids")
    parser.add_argument("--workers", type=int, default=None,
                        help="local workers (default: the cores available)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("gaussian", "kde", "trivial"), help="leave a part out")
    args = parser.parse_args(argv)
    from collapse.simulate.sweep import _default_workers

    workers = args.workers or _default_workers()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at start; "
          f"{workers} workers", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="collapse-sweep-bench-"))
    try:
        if "gaussian" not in args.skip:
            grid = ROOT / "sweeps" / "gaussian-paper.toml"
            if args.quick:
                text = grid.read_text().replace("dim = [1, 3, 10, 31, 100]", "dim = [1, 3, 10]")
                grid = workdir / "gaussian-quick.toml"
                grid.write_text(text.replace("n = [10, 32, 100, 316, 1000]", "n = [10, 32, 100]"))
            compare("gaussian paper grid" + (" (quick)" if args.quick else ""), grid, workdir,
                    workers)
        if "kde" not in args.skip:
            grid = workdir / "kde.toml"
            grid.write_text(KDE_GRID.format(ns="[10, 32]" if args.quick else "[10, 32, 100]"))
            compare("kde grid" + (" (quick)" if args.quick else ""), grid, workdir, workers)
        if "trivial" not in args.skip:
            grid = workdir / "trivial.toml"
            cells = 200
            grid.write_text(TRIVIAL_GRID.format(ns=list(range(2, 2 + cells))))
            sequential, swept, rerun = compare("trivial cells", grid, workdir, workers)
            up = startup(workers)
            in_process = (sequential - rerun) / cells
            on_cluster = (swept - rerun - up) / cells
            overhead = on_cluster * workers - in_process
            print(f"cluster start-up, import of collapse in the workers, and stop: {up:.2f} s; "
                  f"per-task overhead of the engine: {overhead * 1000:.1f} ms of worker time "
                  f"per cell ({on_cluster * 1000:.1f} ms of wall time per cell on the cluster, "
                  f"{in_process * 1000:.1f} ms in one process)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
