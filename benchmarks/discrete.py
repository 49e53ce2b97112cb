"""Benchmark of the vectorised discrete engine against a plain per-replicate loop.

The reference runs: ``K = 10`` equally likely categories, ``n in {10, 100, 1000}``,
replace until total collapse (the reference code stops at entropy ``< 1e-8``).  The
plain loop is that code, one replicate at a time: draw ``n`` points with
``Generator.choice``, fit the frequencies with ``bincount``, stop at collapse.  The engine
runs ``--horizon`` times ``n`` iterations (far beyond the collapse of every replicate),
records all five metrics of every iteration, and stops a chunk when every replicate
in it has collapsed.

Both are measured the same way: CPU seconds per replicate in one thread (the engine
under :func:`collapse.simulate.streams.thread_limit`, as a sweep runs its cells),
after one untimed warm-up run each, in ``--repeats`` pairs of runs, the engine then
the plain loop.  The shared machine's speed drifts by tens of percent from one
minute to the next, and not equally for both (the plain loop is interpreter-bound,
the engine partly memory-bound), so the ratio is taken within each pair and its
median and range are printed, beside each side's least time.  The target is a ratio
of at least 30.  Also printed: the engine's wall time with its default threads, and
the mean collapse time ``1 + sum_t (1 - mean collapsed_t)`` beside the exact value
(small ``n``) and Kimura's approximation.

Run: ``python benchmarks/discrete.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

NS = (10, 100, 1000)
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def plain_discrete(*, categories, n, rng, limit):
    """One replicate of the reference replace loop; returns its collapse iteration."""
    import numpy as np

    proportions = np.full(categories, 1.0 / categories)
    data = rng.choice(categories, size=n, p=proportions)
    for t in range(1, limit + 1):
        proportions = np.bincount(data, minlength=categories) / data.size
        entropy = -np.sum(proportions[proportions > 0] * np.log(proportions[proportions > 0]))
        if entropy < 1e-8:
            return t
        data = rng.choice(categories, size=n, p=proportions)
    return limit


def _load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unavailable"


def _cpu(call):
    """``(CPU seconds, result)`` of ``call()``."""
    start = time.process_time()
    result = call()
    return time.process_time() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicates and repeats")
    parser.add_argument("--replicates", type=int, nargs=3, default=None,
                        help="engine replicates for n = 10, 100, 1000 (default 4096 each)")
    parser.add_argument("--plain-replicates", type=int, nargs=3, default=None,
                        help="plain-loop replicates (default 200 50 10)")
    parser.add_argument("--horizon", type=int, default=10,
                        help="iterations per n (default 10: ten times the collapse scale)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed pairs of runs (default 5)")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, str(args.blas_threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from collapse.analysis.discrete import collapse_time
    from collapse.analysis.vocabulary import COLLAPSED
    from collapse.simulate.discrete import simulate_discrete
    from collapse.simulate.streams import thread_limit

    reps = args.replicates or ([1024, 512, 256] if args.quick else [4096, 4096, 4096])
    plain_reps = args.plain_replicates or ([50, 20, 4] if args.quick else [200, 50, 10])
    repeats = args.repeats or (1 if args.quick else 5)
    print(f"K = 10 uniform, replace until collapse; cpus: {os.cpu_count()}; {_load()}")
    print(f"CPU ms per replicate, one thread, the least of {repeats} runs after a warm-up; "
          "ratios of the plain loop to the engine run just before it")
    for n, engine_reps, loop_reps in zip(NS, reps, plain_reps):
        limit = args.horizon * n

        def engine(n=n, limit=limit, replicates=engine_reps):
            with thread_limit(1):
                return simulate_discrete("replace", categories=10, n=n, truth="uniform",
                                         iterations=limit, replicates=replicates, seed=0)

        def plain(n=n, limit=limit, replicates=loop_reps):
            rng = np.random.default_rng(0)
            return [plain_discrete(categories=10, n=n, rng=rng, limit=limit)
                    for _ in range(replicates)]

        engine(), plain()  # warm-up: imports, caches, the allocator's first pages
        engine_cpu, plain_cpu, ratios = [], [], []
        for _ in range(repeats):
            seconds, out = _cpu(engine)
            engine_cpu.append(seconds / engine_reps)
            del out
            seconds, loop_times = _cpu(plain)
            plain_cpu.append(seconds / loop_reps)
            ratios.append(plain_cpu[-1] / engine_cpu[-1])
        start = time.perf_counter()
        out = simulate_discrete("replace", categories=10, n=n, truth="uniform",
                                iterations=limit, replicates=engine_reps, seed=0)
        wall = (time.perf_counter() - start) / engine_reps
        collapsed = out[COLLAPSED]
        simulated = 1.0 + (1.0 - collapsed).sum(axis=1)
        theory = collapse_time(categories=10, n=n, truth="uniform")
        exact = "n/a" if theory.exact is None else f"{theory.exact:.2f}"
        print(f"n={n:5d}: engine {min(engine_cpu) * 1e3:.4f} ({engine_reps} replicates, "
              f"{collapsed[:, -1].mean():.4f} collapsed by t={limit}; wall with "
              f"{os.cpu_count()} cpus {wall * 1e3:.4f}); plain {min(plain_cpu) * 1e3:.3f} "
              f"({loop_reps}); ratio of back-to-back runs: median "
              f"{statistics.median(ratios):.1f}, range {min(ratios):.1f}-{max(ratios):.1f}")
        print(f"         collapse time: engine {simulated.mean():.1f} +- "
              f"{simulated.std(ddof=1) / np.sqrt(simulated.size):.1f}, plain loop "
              f"{np.mean(loop_times):.1f}, exact {exact}, Kimura {theory.kimura:.1f}")
        del out, collapsed
    print(_load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
