"""Measure the false-alarm rate of `collapse compare` over many seeds.

Every run compares the exact theory with fresh Monte Carlo for all three
workflows (all metrics, all iterations, Holm over the lot) and counts the seeds
whose verdict is wrongly "inconsistent".  The claim under test: rate <= alpha.

    python benchmarks/false_alarm.py --seeds 200 --alpha 0.05
"""

from __future__ import annotations

import argparse
import gc
import time

from collapse import KDE, Gaussian
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.calibration import false_alarm_rate

CONFIGS = [
    # Heavy-tailed replace rows (n=10, d=1), a singular case (n=10, d=10), a roomy one.
    (Gaussian(n=10, dim=1, sigma2=1.0), 50, 1000),
    (Gaussian(n=10, dim=10, sigma2=1.0), 30, 500),
    (Gaussian(n=50, dim=3, sigma2=2.0), 50, 1000),
    (KDE(n=10, dim=1, bandwidth=0.5, truth="gaussian"), 15, 500),
    (KDE(n=20, dim=2, bandwidth=0.3, truth="blobs"), 10, 300),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    gc.collect = lambda *a, **k: 0  # statsmodels collects garbage on every call
    total_alarms = total = 0
    for problem, iterations, reps in CONFIGS:
        t0 = time.perf_counter()
        res = false_alarm_rate(problem, WORKFLOWS, iterations=iterations,
                               replicates=reps, seeds=range(1000, 1000 + args.seeds),
                               alpha=args.alpha)
        lo, hi = res.interval()
        total_alarms += res.alarms
        total += res.seeds
        print(f"{res.description:55s} T={iterations:<3d} R={reps:<5d} alarms {res.alarms:3d}/"
              f"{res.seeds}  rate {res.rate:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  "
              f"({time.perf_counter() - t0:.0f} s)")
    print(f"all: {total_alarms}/{total} = {total_alarms / total:.3f} at alpha = {args.alpha}")


if __name__ == "__main__":
    main()
