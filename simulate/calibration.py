"""Measured false-alarm rate of ``collapse compare``.

The verdict claims a family-wise false-alarm rate of at most ``alpha`` when the
theory is right.  That claim rests on the normal approximation of every tested
row and on the heavy-tail rule of :mod:`collapse.simulate.stats`, so it is measured: run
the whole comparison (all workflows, metrics and iterations, as the command does)
for many independent seeds with the exact theory, and count the seeds whose
verdict is "inconsistent".  The count is Binomial(seeds, rate); the report gives
a Clopper-Pearson interval for the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from scipy import stats as sps

from collapse.analysis.problems import Problem
from collapse.analysis.workflows import WorkflowLike


@dataclass(frozen=True)
class FalseAlarmResult:
    """Alarms among ``seeds`` correct-theory comparisons, with a 95% interval."""

    setting: str
    description: str
    seeds: int
    alarms: int
    alpha: float

    @property
    def rate(self) -> float:
        return self.alarms / self.seeds

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval for the false-alarm rate."""
        tail = (1.0 - level) / 2.0
        lo = 0.0 if self.alarms == 0 else sps.beta.ppf(tail, self.alarms, self.seeds - self.alarms + 1)
        hi = 1.0 if self.alarms == self.seeds else sps.beta.ppf(1 - tail, self.alarms + 1, self.seeds - self.alarms)
        return float(lo), float(hi)


def false_alarm_rate(problem: Problem, workflows: WorkflowLike, *, iterations: int,
                     replicates: int, seeds: Sequence[int], alpha: float = 0.05,
                     theory_scale: float = 1.0) -> FalseAlarmResult:
    """Run :func:`collapse.compare` once per seed; count inconsistent verdicts.

    With ``theory_scale = 1`` the theory is exact, so every alarm is a false alarm;
    another scale measures power instead.
    """
    from collapse.simulate.api import compare

    alarms = 0
    for seed in seeds:
        result = compare(problem, workflows, iterations, replicates, seed, alpha=alpha,
                         theory_scale=theory_scale)
        alarms += result.verdict == "INCONSISTENT"
    return FalseAlarmResult(problem.setting, problem.describe(), len(seeds), alarms, alpha)
