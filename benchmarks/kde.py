"""Speed of :func:`collapse.simulate` (KDE) against a plain per-replicate numpy loop.

Acceptance criterion (issue 4): for all three workflows with ``n = 100``, ``d = 2``,
30 iterations, 300 replicates, 500 held-out points and a fixed bandwidth, the engine must
cost at least 10x less *per replicate* than a plain per-replicate numpy loop of the
paper's algorithm that computes only the test NLL: for every replicate and iteration,
fit the KDE on ``D_t``, score the held-out points (log-sum-exp of the log kernel matrix),
sample ``n`` points.  The engine computes both ``mise`` and ``test_nll``.

The plain loop is slow per replicate, so it runs on ``--baseline-replicates`` replicates
and its cost is reported per replicate; both costs are wall-clock seconds on this
machine, measured in the same process one after the other.  A second, informational
loop (``loop-fast``) uses the engine's own kernel arithmetic (one matrix product per
kernel block, in-place exp) without vectorising over replicates or updating the
accumulated pool incrementally, to show where the gain comes from.

Run: ``.venv/bin/python benchmarks/kde.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import collapse  # noqa: E402
from collapse.analysis.vocabulary import ACCUMULATE_SUBSAMPLE, REPLACE, WORKFLOWS  # noqa: E402
from collapse.simulate.kde import heldout_nll, make_truth_sampler  # noqa: E402


def plain_nll(train: np.ndarray, heldout: np.ndarray, h: float) -> float:
    """Mean held-out NLL of the KDE on ``train (m, d)``: the straightforward way."""
    d = train.shape[1]
    sq = ((heldout[:, None, :] - train[None, :, :]) ** 2).sum(axis=-1)
    log_k = -sq / (2.0 * h * h) - 0.5 * d * np.log(2.0 * np.pi * h * h)
    return float(-np.mean(logsumexp(log_k, axis=1) - np.log(train.shape[0])))


def fast_nll(train: np.ndarray, heldout: np.ndarray, h: float) -> float:
    return float(heldout_nll(train, heldout, h))


def paper_loop(workflow: str, *, n: int, dim: int, iterations: int, replicates: int,
               truth: str, bandwidth: float, heldout: int, seed: int, nll=plain_nll) -> np.ndarray:
    """The paper's algorithm, one replicate at a time; returns test NLL ``(R, T)``."""
    sampler = make_truth_sampler(truth, dim=dim)
    rng = np.random.default_rng(seed)
    out = np.empty((replicates, iterations))
    h = bandwidth
    for r in range(replicates):
        real = sampler.sample(rng, n)
        test = sampler.sample(rng, heldout)
        data = real
        for t in range(iterations):
            if workflow == ACCUMULATE_SUBSAMPLE:
                train = data[rng.choice(data.shape[0], size=n, replace=False)]
            else:
                train = data
            out[r, t] = nll(train, test, h)
            new = train[rng.integers(0, train.shape[0], size=n)] + h * rng.standard_normal((n, dim))
            data = new if workflow == REPLACE else np.concatenate([data, new])
    return out


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--baseline-replicates", type=int, default=4)
    parser.add_argument("--truth", default="gaussian", choices=("gaussian", "blobs"))
    parser.add_argument("--bandwidth", type=float, default=0.5)
    parser.add_argument("--heldout", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    common = dict(n=args.n, dim=args.dim, iterations=args.iterations, truth=args.truth,
                  bandwidth=args.bandwidth, heldout=args.heldout, seed=args.seed)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"config: n={args.n} d={args.dim} iterations={args.iterations} "
          f"heldout={args.heldout} truth={args.truth} h={args.bandwidth}")

    rows = []
    totals = {"engine": 0.0, "plain": 0.0, "loop-fast": 0.0}
    for workflow in WORKFLOWS:
        problem = collapse.KDE(truth=args.truth, n=args.n, dim=args.dim,
                               bandwidth=args.bandwidth, heldout=args.heldout)
        t_eng, _ = timed(lambda p=problem, w=workflow: collapse.simulate(
            p, w, args.iterations, args.replicates, args.seed))
        t_plain, _ = timed(lambda w=workflow: paper_loop(
            w, replicates=args.baseline_replicates, **common))
        t_fast, _ = timed(lambda w=workflow: paper_loop(
            w, replicates=args.baseline_replicates, nll=fast_nll, **common))
        per = {
            "engine": t_eng / args.replicates,
            "plain": t_plain / args.baseline_replicates,
            "loop-fast": t_fast / args.baseline_replicates,
        }
        for key in totals:
            totals[key] += per[key]
        rows.append((workflow, per))

    print(f"\nper-replicate cost in ms (engine: {args.replicates} replicates, mise + test_nll; "
          f"loops: {args.baseline_replicates} replicates, test_nll only)")
    print(f"{'workflow':<22}{'engine':>10}{'plain loop':>12}{'loop-fast':>11}{'plain/engine':>14}")
    for workflow, per in rows + [("all three", totals)]:
        print(f"{workflow:<22}{per['engine'] * 1e3:>10.2f}{per['plain'] * 1e3:>12.1f}"
              f"{per['loop-fast'] * 1e3:>11.1f}{per['plain'] / per['engine']:>14.1f}")
    ratio = totals["plain"] / totals["engine"]
    print(f"\nspeed-up, all three workflows: {ratio:.1f}x (criterion >= 10x: "
          f"{'met' if ratio >= 10 else 'NOT met'}); vs loop-fast: "
          f"{totals['loop-fast'] / totals['engine']:.1f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
