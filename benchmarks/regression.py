"""Benchmark of the vectorised regression engine against a plain per-replicate loop.

The reference grid: ``d in {1, 3, 10, 32, 100}`` x ``n in {10, 32, 100, 316, 1000}`` x
``sigma2 in {0.1, 1, 10}`` x the paper's three workflows, 100 iterations, 100 replicates
(cells with ``n <= d`` included: least squares by the pseudo-inverse runs there, as in
the reference code).  The target is a cost per replicate at least 30x below
:func:`plain_regression`, the reference algorithm run one replicate at a time (stacked
copies of the design, ``numpy.linalg.pinv`` on the whole stack, ``Generator.choice``
for the subsample).

The plain loop is far too slow to run over the whole grid (under accumulate its
iteration ``t`` takes the pseudo-inverse of a ``t n x d`` stack), so it runs one
replicate per ``(d, n)`` at ``sigma2 = 1`` (``sigma2`` changes no cost) and, where a
replicate would take long, only the first ``--plain-iterations`` iterations, then is
extrapolated to 100 by a straight line through its per-iteration times (the cost grows
with ``t`` under the accumulating workflows); such cells are marked ``*``.

BLAS threads are pinned to ``--blas-threads`` (default 1) before numpy is imported: the
engines issue many small matrix products, which a multi-threaded BLAS on a small shared
machine slows down.

Run: ``python benchmarks/regression.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

GRID_DIMS = (1, 3, 10, 32, 100)
GRID_NS = (10, 32, 100, 316, 1000)
GRID_SIGMA2 = (0.1, 1.0, 10.0)
QUICK_DIMS = (1, 10, 32)
QUICK_NS = (10, 100, 316)
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def plain_regression(workflow, *, dim, n, sigma2, iterations, rng, clock=None):
    """One replicate of the reference algorithm, as plainly as the reference code.

    Returns ``||w_hat_t - w||^2`` for ``t = 1..iterations`` (the engine's metric); if
    ``clock`` is a list, the time at the end of every iteration is appended to it.
    """
    import numpy as np

    sigma = np.sqrt(sigma2)
    w = rng.standard_normal(dim)
    x0 = rng.standard_normal((n, dim))
    x, y = x0, x0 @ w + sigma * rng.standard_normal(n)
    out = np.empty(iterations)
    for t in range(iterations):
        if clock is not None:
            clock.append(time.perf_counter())
        if workflow == "accumulate-subsample":
            pick = rng.choice(len(y), size=n, replace=False)
            w_hat = np.linalg.pinv(x[pick]) @ y[pick]
        else:
            w_hat = np.linalg.pinv(x) @ y
        out[t] = np.sum((w_hat - w) ** 2)
        new = x0 @ w_hat + sigma * rng.standard_normal(n)
        if workflow == "replace":
            y = new
        else:
            x, y = np.concatenate((x, x0)), np.concatenate((y, new))
    return out


def _time_plain(workflow, dim, n, iterations, limit_iterations, seed=0):
    """Seconds for one replicate of ``iterations`` (extrapolated if run shorter).

    A shortened run is extrapolated with a least-squares line through its per-iteration
    times (iteration ``t`` of accumulate takes the pseudo-inverse of a ``t n x d`` stack,
    and the reference code re-concatenates the stack every iteration under both
    accumulating workflows, so the cost grows with ``t``).
    """
    import numpy as np

    run = min(iterations, limit_iterations)
    rng = np.random.default_rng(seed)
    clock = [time.perf_counter()]
    plain_regression(workflow, dim=dim, n=n, sigma2=1.0, iterations=run, rng=rng,
                     clock=clock)
    clock.append(time.perf_counter())
    elapsed = clock[-1] - clock[0]
    if run == iterations:
        return elapsed, False
    steps = np.diff(np.array(clock[1:]))  # iteration t = 1..run
    ts = np.arange(1, run + 1)
    slope, intercept = np.polyfit(ts, steps, 1)
    slope = max(slope, 0.0)
    rest = np.arange(run + 1, iterations + 1)
    return elapsed + float(np.sum(np.maximum(intercept + slope * rest, steps.min()))), True


def _load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unavailable"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"d in {QUICK_DIMS}, n in {QUICK_NS}, sigma2 = 1, 20 replicates")
    parser.add_argument("--replicates", type=int, default=None, help="default 100 (quick 20)")
    parser.add_argument("--iterations", type=int, default=100, help="default 100")
    parser.add_argument("--plain-iterations", type=int, default=20,
                        help="plain-loop iterations actually run where a replicate is slow "
                             "(n d >= 10^4), the rest extrapolated (default 20)")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, str(args.blas_threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collapse.analysis.vocabulary import WORKFLOWS
    from collapse.simulate.regression import simulate_regression

    dims = QUICK_DIMS if args.quick else GRID_DIMS
    ns = QUICK_NS if args.quick else GRID_NS
    sigmas = (1.0,) if args.quick else GRID_SIGMA2
    reps = args.replicates or (20 if args.quick else 100)
    T = args.iterations
    print(f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; cpus: {os.cpu_count()}; "
          f"{_load()}")
    print(f"grid: d in {dims}, n in {ns}, sigma2 in {sigmas}, {T} iterations, {reps} "
          f"replicates; seconds per replicate (engine / plain loop)")
    grand_engine = grand_plain = 0.0
    for workflow in WORKFLOWS:
        engine_total = plain_total = 0.0
        print(f"\n{workflow}")
        for dim in dims:
            for n in ns:
                start = time.perf_counter()
                for sigma2 in sigmas:
                    simulate_regression(workflow, dim=dim, n=n, sigma2=sigma2, iterations=T,
                                        replicates=reps, seed=0)
                engine = (time.perf_counter() - start) / (reps * len(sigmas))
                limit = T if n * dim < 10**4 else args.plain_iterations
                plain, extrapolated = _time_plain(workflow, dim, n, T, limit)
                engine_total += engine * len(sigmas)
                plain_total += plain * len(sigmas)
                print(f"  d={dim:4d} n={n:5d}  engine {engine * 1e3:9.3f} ms  plain "
                      f"{plain * 1e3:10.1f} ms{'*' if extrapolated else ' '}  ratio "
                      f"{plain / engine:8.1f}")
        print(f"  {workflow}: engine {engine_total:.3f} s vs plain {plain_total:.1f} s per "
              f"replicate of every cell; ratio {plain_total / engine_total:.1f}")
        grand_engine += engine_total
        grand_plain += plain_total
    print(f"\nall workflows: ratio {grand_plain / grand_engine:.1f} per replicate "
          f"(target >= 30); whole grid at {reps} replicates: engine "
          f"{grand_engine * reps:.1f} s, plain loop about {grand_plain * reps:.0f} s; "
          f"{_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
