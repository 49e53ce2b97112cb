"""Benchmark of the vectorised Gaussian engines against a plain per-replicate loop.

Two acceptance targets of the project:

1. At ``n = 100``, ``d = 10``, 100 iterations, 2000 replicates, every workflow of
   :func:`collapse.simulate` costs at least 30x less per replicate
   than :func:`plain_gaussian`, the paper's algorithm run one replicate at a time.
2. The paper's grid, ``d in {1, 3, 10, 31, 100}`` x ``n in {10, 32, 100, 316, 1000}`` x
   3 workflows x 100 replicates x 100 iterations, runs in under 60 s.

The script times (a) the whole grid with the vectorised engines, (b) the plain loop
on a sample of the grid (every configuration at full size, ``--plain-replicates``
replicates each; ``--quick``: a few small configurations), extrapolated per
replicate to the grid, and (c) both engines at the target-1 configuration.

BLAS threads: on a small shared machine a multi-threaded BLAS spends more time
synchronising its threads than computing the many small matrix products of the
engines (measured 6x slower with 2 threads on a loaded 2-core machine), so the
script pins ``OPENBLAS_NUM_THREADS`` (and friends) to ``--blas-threads`` (default 1)
before numpy is imported, unless they are already set.

Run: ``python benchmarks/gaussian.py [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

GRID_DIMS = (1, 3, 10, 31, 100)
GRID_NS = (10, 32, 100, 316, 1000)
TARGET_N, TARGET_DIM, TARGET_REPLICATES = 100, 10, 2000
QUICK_PLAIN_CONFIGS = ((10, 1), (32, 3), (100, 10), (316, 10))
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def plain_gaussian(workflow, *, n, dim, iterations, rng, sigma2=1.0, covariance="mle"):
    """One replicate of the paper's algorithm, written as plainly as the paper's code.

    ``rng.multivariate_normal`` draws the points, ``np.mean`` / ``np.cov`` fit them;
    ``accumulate`` and ``accumulate-subsample`` keep concatenating the pool, and the
    subsample is ``rng.choice(pool size, n, replace=False)``.  Returns a dict of the
    five metrics of :data:`collapse.analysis.vocabulary.GAUSSIAN_METRICS`, arrays
    ``(iterations,)``, with the same definitions as the engines: a covariance is
    singular when ``n - 1 < d`` (structurally; rounding would otherwise give it a tiny
    determinant) or when its determinant is not positive.
    """
    import numpy as np

    from collapse.analysis.vocabulary import (
        ACCUMULATE,
        COV_DET_RATIO,
        COV_TRACE_RATIO,
        LOG_COV_DET_RATIO,
        MEAN_SQ_ERROR,
        MLE,
        REPLACE,
        TEST_NLL,
    )

    bias = covariance == MLE
    structurally_singular = n - 1 < dim
    data = rng.multivariate_normal(np.zeros(dim), sigma2 * np.eye(dim), size=n)
    pool = data
    out = {name: np.empty(iterations) for name in
           (MEAN_SQ_ERROR, COV_TRACE_RATIO, COV_DET_RATIO, LOG_COV_DET_RATIO, TEST_NLL)}
    for t in range(iterations):
        if workflow == REPLACE:
            train = data
        elif workflow == ACCUMULATE:
            train = pool
        else:
            train = pool[rng.choice(len(pool), size=n, replace=False)]
        mu = np.mean(train, axis=0)
        cov = np.cov(train, rowvar=False, bias=bias).reshape(dim, dim)
        sign, logdet = np.linalg.slogdet(cov)
        out[MEAN_SQ_ERROR][t] = mu @ mu
        out[COV_TRACE_RATIO][t] = np.trace(cov) / (dim * sigma2)
        if structurally_singular or sign <= 0:
            out[LOG_COV_DET_RATIO][t] = -np.inf
            out[COV_DET_RATIO][t] = 0.0
            out[TEST_NLL][t] = np.inf
        else:
            inverse = np.linalg.inv(cov)
            out[LOG_COV_DET_RATIO][t] = logdet - dim * np.log(sigma2)
            out[COV_DET_RATIO][t] = np.exp(out[LOG_COV_DET_RATIO][t])
            out[TEST_NLL][t] = 0.5 * (dim * np.log(2 * np.pi) + logdet
                                      + sigma2 * np.trace(inverse) + mu @ inverse @ mu)
        if t == iterations - 1:
            break
        new = rng.multivariate_normal(mu, cov, size=n, check_valid="ignore")
        if workflow == REPLACE:
            data = new
        else:
            pool = np.concatenate((pool, new))
    return out


def _time_engine(workflow, *, n, dim, iterations, replicates, seed=0, engine="auto"):
    """(wall, CPU) seconds of one :func:`collapse.simulate` call."""
    import collapse

    wall, cpu = time.perf_counter(), time.process_time()
    collapse.simulate(collapse.Gaussian(n=n, dim=dim), workflow, iterations, replicates, seed,
                      engine=engine)
    return time.perf_counter() - wall, time.process_time() - cpu


def _time_plain(workflow, *, n, dim, iterations, replicates, seed=0):
    """(wall, CPU) seconds per replicate of :func:`plain_gaussian`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(replicates):
        plain_gaussian(workflow, n=n, dim=dim, iterations=iterations, rng=rng)
    return ((time.perf_counter() - wall) / replicates,
            (time.process_time() - cpu) / replicates)


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unavailable"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sample: grid at 10 replicates, plain loop on a few "
                             "small configurations, target 1 at 200 replicates")
    parser.add_argument("--replicates", type=int, default=None,
                        help="grid replicates (default 100, quick 10)")
    parser.add_argument("--iterations", type=int, default=100, help="default 100")
    parser.add_argument("--plain-replicates", type=int, default=1,
                        help="plain-loop replicates per sampled configuration (default 1)")
    parser.add_argument("--target-replicates", type=int, default=None,
                        help=f"engine replicates at the target-1 configuration "
                             f"(default {TARGET_REPLICATES}, quick 200)")
    parser.add_argument("--target-plain-replicates", type=int, default=None,
                        help="plain-loop replicates at the target-1 configuration "
                             "(default 20, quick 4)")
    parser.add_argument("--skip-grid", action="store_true", help="skip (a)")
    parser.add_argument("--skip-plain-grid", action="store_true", help="skip (b)")
    parser.add_argument("--skip-target", action="store_true", help="skip (c)")
    parser.add_argument("--skip-plain", action="store_true",
                        help="skip everything that runs the plain loop: (b) and (c)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads, set before numpy is imported unless the "
                             "environment already sets them (default 1)")
    args = parser.parse_args(argv)
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, str(args.blas_threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collapse.analysis.vocabulary import WORKFLOWS

    grid_reps = args.replicates or (10 if args.quick else 100)
    iterations = args.iterations
    target_reps = args.target_replicates or (200 if args.quick else TARGET_REPLICATES)
    target_plain = args.target_plain_replicates or (4 if args.quick else 20)
    print(f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; cpus: {os.cpu_count()}; "
          f"{_load()}")

    engine_grid: dict[tuple[str, int, int], tuple[float, float]] = {}
    if not args.skip_grid:
        print(f"\n(a) grid with the vectorised engines: {len(GRID_DIMS) * len(GRID_NS)} "
              f"configurations x {len(WORKFLOWS)} workflows x {grid_reps} replicates x "
              f"{iterations} iterations (wall / CPU seconds)")
        total = total_cpu = 0.0
        for workflow in WORKFLOWS:
            subtotal = subtotal_cpu = 0.0
            for dim in GRID_DIMS:
                for n in GRID_NS:
                    wall, cpu = _time_engine(workflow, n=n, dim=dim, iterations=iterations,
                                             replicates=grid_reps)
                    engine_grid[workflow, n, dim] = (wall / grid_reps, cpu / grid_reps)
                    subtotal += wall
                    subtotal_cpu += cpu
            slowest = max((key for key in engine_grid if key[0] == workflow),
                          key=lambda key: engine_grid[key][0])
            print(f"  {workflow:22s} {subtotal:8.2f} / {subtotal_cpu:8.2f} s   (slowest "
                  f"n={slowest[1]}, d={slowest[2]}: {engine_grid[slowest][0] * grid_reps:.2f} s)")
            total += subtotal
            total_cpu += subtotal_cpu
        scaled = total * 100 / grid_reps
        print(f"  total                  {total:8.2f} / {total_cpu:8.2f} s   ({_load()})")
        if grid_reps != 100:
            print(f"  scaled to 100 replicates: {scaled:.1f} s")
        print(f"  TARGET 2 (grid < 60 s at 100 replicates): {scaled:.1f} s wall, "
              f"{total_cpu * 100 / grid_reps:.1f} s CPU -> "
              f"{'met' if scaled < 60 else 'NOT met'}")

    if not (args.skip_plain or args.skip_plain_grid):
        configs = QUICK_PLAIN_CONFIGS if args.quick else [(n, d) for d in GRID_DIMS
                                                         for n in GRID_NS]
        print(f"\n(b) plain per-replicate loop, {args.plain_replicates} replicate(s) per "
              f"configuration, {len(configs)} configuration(s) per workflow, per 100 "
              f"replicates of each (wall / CPU seconds)")
        plain_total = engine_total = 0.0
        for workflow in WORKFLOWS:
            plain = [0.0, 0.0]
            engine = [0.0, 0.0]
            for n, dim in configs:
                per_rep = _time_plain(workflow, n=n, dim=dim, iterations=iterations,
                                      replicates=args.plain_replicates)
                for i in (0, 1):
                    plain[i] += 100 * per_rep[i]
                    engine[i] += 100 * engine_grid.get((workflow, n, dim),
                                                       (math.nan, math.nan))[i]
            print(f"  {workflow:22s} plain {plain[0]:9.1f} / {plain[1]:9.1f}; engines "
                  f"{engine[0]:7.2f} / {engine[1]:7.2f}; ratio {plain[0] / engine[0]:6.1f} "
                  f"wall, {plain[1] / engine[1]:6.1f} CPU")
            plain_total += plain[0]
            engine_total += engine[0]
        print(f"  all workflows: plain {plain_total:.1f} s vs engines {engine_total:.2f} s "
              f"wall (ratio {plain_total / engine_total:.1f}); {_load()}")

    if not (args.skip_plain or args.skip_target):
        print(f"\n(c) target 1: n={TARGET_N}, d={TARGET_DIM}, {iterations} iterations; "
              f"engines at {target_reps} replicates, plain loop at {target_plain} "
              f"(ms per replicate, wall / CPU)")
        sums = [0.0, 0.0, 0.0, 0.0]
        worst = math.inf
        for workflow in WORKFLOWS:
            wall, cpu = _time_engine(workflow, n=TARGET_N, dim=TARGET_DIM,
                                     iterations=iterations, replicates=target_reps)
            engine = (wall / target_reps, cpu / target_reps)
            plain = _time_plain(workflow, n=TARGET_N, dim=TARGET_DIM, iterations=iterations,
                                replicates=target_plain)
            worst = min(worst, plain[0] / engine[0])
            for i, value in enumerate(engine + plain):
                sums[i] += value
            print(f"  {workflow:22s} engine {engine[0] * 1e3:7.3f} / {engine[1] * 1e3:7.3f}; "
                  f"plain {plain[0] * 1e3:7.2f} / {plain[1] * 1e3:7.2f}; ratio "
                  f"{plain[0] / engine[0]:6.1f} wall, {plain[1] / engine[1]:6.1f} CPU")
        print(f"  all three workflows together: ratio {sums[2] / sums[0]:.1f} wall, "
              f"{sums[3] / sums[1]:.1f} CPU; {_load()}")
        print(f"  TARGET 1 (>= 30x per replicate): worst workflow {worst:.1f}x, "
              f"combined {sums[2] / sums[0]:.1f}x (wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
