"""Measure the false-alarm rate and the power of `collapse compare` over many seeds.

Every run compares the exact theory with fresh Monte Carlo for all three workflows
(all metrics, all iterations, Holm over the lot) and counts the seeds whose verdict
is wrongly "inconsistent"; the same replicates are then compared with theories 2%
and 5% too high (every exact value times 1.02 or 1.05, as ``--theory-scale`` does)
and the seeds that reject them are counted (power).  Rates carry 95%
Clopper-Pearson intervals.  Replicate counts below
``collapse.simulate.stats.MIN_REPLICATES``, which ``compare`` refuses, are measured
through its ``min_replicates`` override to show why the minimum is where it is.

    nice python benchmarks/false_alarm.py --seeds 300 --alpha 0.01 --rst table.rst

The claim under test: false-alarm rate <= alpha at every accepted replicate count.
The full grid took about 23 minutes on a shared 2-core machine, most of it in the
1000-replicate cells; ``--configs`` and ``--replicates`` run parts of it (for
example ``--replicates 5 10 20 50 100`` took about 10 minutes).

``--discrete`` measures the discrete setting instead, over runs long enough for most
replicates to collapse (diversities exactly 0, rows constant at a bound), at 2,000
replicates unless ``--replicates`` says otherwise:

    nice python benchmarks/false_alarm.py --discrete --seeds 200
"""

from __future__ import annotations

import argparse
import gc
import time

from collapse import Discrete, Gaussian
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.calibration import CalibrationResult, calibrate
from collapse.simulate.stats import MIN_REPLICATES

#: (label for the table, problem).
CONFIGS = [
    ("Gaussian, :math:`n = 25`, :math:`d = 2`", Gaussian(n=25, dim=2, sigma2=1.0)),
    ("Gaussian, :math:`n = 100`, :math:`d = 10`", Gaussian(n=100, dim=10, sigma2=1.0)),
    ("Gaussian, :math:`n = 10`, :math:`d = 1` (heavy-tailed ``replace``)",
     Gaussian(n=10, dim=1, sigma2=1.0)),
]
#: (label, problem, iterations) of ``--discrete``: by the last iteration every one of
#: 2,000 replicates under ``replace`` has collapsed with probability 0.65 (K = 2) and
#: 0.88 (K = 10), so rows constant at the bound are common.
DISCRETE_CONFIGS = [
    ("discrete, :math:`K = 2`, :math:`n = 4`, 30 iterations", Discrete(categories=2, n=4), 30),
    ("discrete, :math:`K = 10`, :math:`n = 10`, 100 iterations",
     Discrete(categories=10, n=10), 100),
]
REPLICATES = (5, 10, 20, 50, 100, 1000)
ERRORS = (0.02, 0.05)


def _pct(k: int, n: int, interval: tuple[float, float]) -> str:
    return f"{100 * k / n:.1f}% ({100 * interval[0]:.1f} - {100 * interval[1]:.1f})"


def rst_table(cells: list[tuple[str, CalibrationResult]]) -> str:
    """The measured cells as an RST ``list-table`` for ``docs/compare.rst``."""
    lines = [".. list-table::", "   :header-rows: 1", "",
             "   * - configuration", "     - replicates", "     - tested rows per seed",
             "     - false alarms", "     - false-alarm rate (95% CI)",
             "     - power, 2% error", "     - power, 5% error"]
    for label, cell in cells:
        fa = cell.false_alarms
        below = cell.replicates < MIN_REPLICATES
        reps = f"{cell.replicates} (refused)" if below else str(cell.replicates)
        lines += [f"   * - {label}", f"     - {reps}", f"     - {cell.tested:.0f}",
                  f"     - {fa.alarms} / {fa.seeds}",
                  f"     - {_pct(fa.alarms, fa.seeds, fa.interval())}"]
        for e in ERRORS:
            lines.append(f"     - {_pct(cell.rejections[e], fa.seeds, cell.power_interval(e))}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300, help="seeds per cell (default 300)")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--replicates", type=int, nargs="+", default=None,
                        help=f"replicate counts (default {' '.join(map(str, REPLICATES))}; "
                             "2000 with --discrete)")
    parser.add_argument("--discrete", action="store_true",
                        help="measure the discrete configurations instead")
    parser.add_argument("--configs", type=int, nargs="+", default=list(range(len(CONFIGS))),
                        help="indices into CONFIGS (default all)")
    parser.add_argument("--rst", help="also write the table as an RST list-table to this file")
    args = parser.parse_args()
    gc.collect = lambda *a, **k: 0  # statsmodels collects garbage on every call
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"alpha = {args.alpha}, seeds {seeds.start}.."
          f"{seeds.stop - 1}, workflows {', '.join(WORKFLOWS)}; MIN_REPLICATES = "
          f"{MIN_REPLICATES}", flush=True)
    if args.discrete:
        runs = [(label, problem, iterations) for label, problem, iterations in DISCRETE_CONFIGS]
        counts = args.replicates or [2000]
    else:
        runs = [(*CONFIGS[index], args.iterations) for index in args.configs]
        counts = args.replicates or list(REPLICATES)
    cells = []
    for label, problem, iterations in runs:
        for reps in counts:
            t0 = time.perf_counter()
            cell = calibrate(problem, WORKFLOWS, iterations=iterations,
                             replicates=reps, seeds=seeds, alpha=args.alpha, errors=ERRORS,
                             min_replicates=min(reps, MIN_REPLICATES))
            cells.append((label, cell))
            fa = cell.false_alarms
            lo, hi = fa.interval()
            power = "  ".join(f"power@{100 * e:.0f}% {cell.power(e):.3f}" for e in ERRORS)
            flag = " (below MIN_REPLICATES: refused by compare)" if reps < MIN_REPLICATES else ""
            print(f"{fa.description:45s} R={reps:<5d} tested/seed {cell.tested:6.1f}  alarms "
                  f"{fa.alarms:3d}/{fa.seeds}  rate {fa.rate:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  "
                  f"{power}  ({time.perf_counter() - t0:.0f} s){flag}", flush=True)
    if args.rst:
        with open(args.rst, "w") as handle:
            handle.write(rst_table(cells))


if __name__ == "__main__":
    main()
