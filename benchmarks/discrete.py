"""Benchmark of the vectorised discrete engine against a plain per-replicate loop.

The reference runs: ``K = 10`` equally likely categories, ``n in {10, 100, 1000}``,
replace until total collapse (the reference code stops at entropy ``< 1e-8``).  The
plain loop is that code, one replicate at a time: draw ``n`` points with
``Generator.choice``, fit the frequencies with ``bincount``, stop at collapse.  The engine
runs ``--horizon`` times ``n`` iterations (far beyond the collapse of every replicate)
and stops a chunk when every replicate in it has collapsed.  Both numbers are seconds
per replicate; the target is a ratio of at least 30.  Also printed: the mean collapse
time ``1 + sum_t (1 - mean collapsed_t)`` beside the exact value (small ``n``) and
Kimura's approximation.

Run: ``python benchmarks/discrete.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicates")
    parser.add_argument("--replicates", type=int, nargs=3, default=None,
                        help="engine replicates for n = 10, 100, 1000 (default 4096 each)")
    parser.add_argument("--plain-replicates", type=int, nargs=3, default=None,
                        help="plain-loop replicates (default 200 50 10)")
    parser.add_argument("--horizon", type=int, default=10,
                        help="iterations per n (default 10: ten times the collapse scale)")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, str(args.blas_threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from collapse.analysis.discrete import collapse_time
    from collapse.analysis.vocabulary import COLLAPSED
    from collapse.simulate.discrete import simulate_discrete

    reps = args.replicates or ([1024, 512, 256] if args.quick else [4096, 4096, 4096])
    plain_reps = args.plain_replicates or ([50, 20, 4] if args.quick else [200, 50, 10])
    print(f"K = 10 uniform, replace until collapse; cpus: {os.cpu_count()}; {_load()}")
    for n, engine_reps, loop_reps in zip(NS, reps, plain_reps):
        start, cpu = time.perf_counter(), time.process_time()
        out = simulate_discrete("replace", categories=10, n=n, truth="uniform",
                                iterations=args.horizon * n, replicates=engine_reps, seed=0)
        engine = (time.perf_counter() - start) / engine_reps
        engine_cpu = (time.process_time() - cpu) / engine_reps
        collapsed = out[COLLAPSED]
        simulated = 1.0 + (1.0 - collapsed).sum(axis=1)
        rng = np.random.default_rng(0)
        start, cpu = time.perf_counter(), time.process_time()
        loop_times = [plain_discrete(categories=10, n=n, rng=rng, limit=args.horizon * n)
                      for _ in range(loop_reps)]
        plain = (time.perf_counter() - start) / loop_reps
        plain_cpu = (time.process_time() - cpu) / loop_reps
        theory = collapse_time(categories=10, n=n, truth="uniform")
        exact = "n/a" if theory.exact is None else f"{theory.exact:.2f}"
        print(f"n={n:5d}: ms per replicate, wall / CPU: engine {engine * 1e3:.3f} / "
              f"{engine_cpu * 1e3:.3f} ({engine_reps} replicates, "
              f"{collapsed[:, -1].mean():.4f} collapsed by t={args.horizon * n}); plain "
              f"{plain * 1e3:.2f} / {plain_cpu * 1e3:.2f} ({loop_reps}); ratio "
              f"{plain / engine:.1f} wall, {plain_cpu / engine_cpu:.1f} CPU")
        print(f"         collapse time: engine {simulated.mean():.1f} +- "
              f"{simulated.std(ddof=1) / np.sqrt(simulated.size):.1f}, plain loop "
              f"{np.mean(loop_times):.1f}, exact {exact}, Kimura {theory.kimura:.1f}")
    print(_load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
