"""Speed of exact theory and Monte Carlo for workflow rules, against the paper's presets.

Measures (wall-clock, median of ``--repeats`` runs; no assertion, a report):

1. ``collapse theory gaussian --workflow RULE --iterations 1000`` for every rule of
   :data:`RULES`: in-process (the :func:`collapse.theory` call alone) and as a fresh
   process of the installed console script (Python start-up and imports included: what a
   user waits for).  The project's target is an answer in under one second.
2. The Gaussian engines at ``n = 100, d = 10``, 100 iterations, per replicate: a rule
   against the preset it generalises, under ``stats`` and ``points``.
3. The KDE engine at ``n = 100, d = 2``, 30 iterations, 500 held-out points, per replicate.
4. ``collapse.value`` grids (theory only, and with Monte Carlo).

BLAS is pinned to ``--blas-threads`` (default 1) before numpy is imported, as in
``benchmarks/gaussian.py``: the engines issue many small matrix products.

Run: ``python benchmarks/rules.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RULES = ("replace", "accumulate", "accumulate-subsample", "fresh",
         "real=original,synthetic=window:3",
         "real=original,synthetic=all,size=50,real-fraction=0.2",
         "real=fresh,synthetic=all", "real=none,synthetic=window:50,size=30",
         "real=original,synthetic=window:999")
#: (rule, the preset it generalises) for the engine timings.
ENGINE_PAIRS = (("fresh", "replace"), ("real=original,synthetic=window:3", "accumulate"),
                ("real=fresh,synthetic=all", "accumulate"),
                ("real=original,synthetic=all,size=50,real-fraction=0.2",
                 "accumulate-subsample"))
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _median(repeats: int, fn, *args, **kwargs) -> float:
    """Median wall-clock seconds of ``fn(*args, **kwargs)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child_cpu(repeats: int, argv: list[str]) -> float:
    """Smallest CPU seconds (user + system) of the command over ``repeats`` runs: on a
    loaded machine, a better estimate of its wall time on an idle one."""
    import resource

    best = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def _console() -> str:
    return shutil.which("collapse") or str(Path(sys.executable).parent / "collapse")


def theory_timings(repeats: int) -> None:
    import collapse

    problem = collapse.Gaussian(n=100, dim=10)
    print("1. collapse theory gaussian --n 100 --dim 10 --iterations 1000 "
          f"(median of {repeats})")
    print(f"   {'rule':58s} {'in-process':>11s} {'command':>9s} {'its CPU':>8s}")
    for rule in RULES:
        inside = _median(repeats, collapse.theory, problem, rule, 1000)
        argv = [_console(), "theory", "gaussian", "--workflow", rule, "--n", "100", "--dim",
                "10", "--iterations", "1000", "--format", "csv"]
        outside = _median(repeats, subprocess.run, argv, check=True, capture_output=True)
        cpu = _child_cpu(repeats, argv)
        print(f"   {rule:58s} {inside:10.3f}s {outside:8.3f}s {cpu:7.3f}s")


def engine_timings(replicates: int, repeats: int) -> None:
    import collapse

    problem = collapse.Gaussian(n=100, dim=10)
    print(f"2. Gaussian engines, n=100, d=10, 100 iterations, {replicates} replicates: "
          "ms per replicate")
    for rule, preset in ENGINE_PAIRS:
        for name in (rule, preset):
            cells = []
            for engine in ("stats", "points"):
                try:
                    seconds = _median(repeats, collapse.simulate, problem, name, 100,
                                      replicates, 0, engine=engine)
                    cells.append(f"{engine} {1000 * seconds / replicates:7.2f}")
                except collapse.CollapseError:
                    cells.append(f"{engine}       -")
            print(f"   {name:58s} {'   '.join(cells)}")


def kde_timings(replicates: int, repeats: int) -> None:
    import collapse

    problem = collapse.KDE(n=100, dim=2, bandwidth=0.5)
    print(f"3. KDE engine, n=100, d=2, h=0.5, 30 iterations, 500 held-out points, "
          f"{replicates} replicates: ms per replicate")
    names = []
    for rule, preset in ENGINE_PAIRS:
        names += [rule, preset]
    for name in dict.fromkeys(names):
        seconds = _median(repeats, collapse.simulate, problem, name, 30, replicates, 0)
        print(f"   {name:58s} {1000 * seconds / replicates:8.2f}")


def value_timings(replicates: int, repeats: int) -> None:
    import collapse

    print("4. collapse.value grids")
    grids = (("gaussian, N=100, 9 x 8 cells, theory", collapse.Gaussian(),
              dict(generator_n=100, real_sizes=range(0, 101, 12),
                   synthetic_sizes=(0, 10, 25, 50, 100, 250, 1000, 10000))),
             (f"gaussian, N=100, d=10, 9 x 6 cells, {replicates} replicates",
              collapse.Gaussian(dim=10),
              dict(generator_n=100, real_sizes=range(0, 101, 12),
                   synthetic_sizes=(0, 10, 25, 50, 100, 400), replicates=replicates)),
             (f"kde, N=100, d=2, 9 x 6 cells, {replicates} replicates",
              collapse.KDE(dim=2, bandwidth=0.5),
              dict(generator_n=100, real_sizes=range(0, 101, 12),
                   synthetic_sizes=(0, 10, 25, 50, 100, 400), replicates=replicates)))
    for label, problem, kwargs in grids:
        seconds = _median(repeats, collapse.value, problem, **kwargs)
        print(f"   {label:58s} {seconds:8.3f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicates and repeats")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick 1)")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, str(args.blas_threads))
    repeats = args.repeats or (1 if args.quick else 3)
    replicates = 50 if args.quick else 200
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load average unavailable"
    print(f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; cpus: {os.cpu_count()}; {load}")
    theory_timings(repeats)
    engine_timings(replicates, repeats)
    kde_timings(max(10, replicates // 10), repeats)
    value_timings(replicates * 10, repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
