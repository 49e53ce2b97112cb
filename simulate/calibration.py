"""Measured false-alarm rate and power of ``collapse compare``.

The verdict claims a family-wise false-alarm rate of at most ``alpha`` when the
theory is right.  That claim rests on the Student-t reference of every tested row,
its Edgeworth correction and the heavy-tail rule of :mod:`collapse.simulate.stats`,
so it is measured: run the whole comparison (all workflows, metrics and iterations,
as the command does) for many independent seeds with the exact theory, and count
the seeds whose verdict is "inconsistent".  The count is Binomial(seeds, rate); the
report gives a Clopper-Pearson interval for the rate.  Power is measured on the same
replicates against theories that are wrong by a relative error ``e`` (every exact
value multiplied by ``1 + e``, as ``--theory-scale`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from scipy import stats as sps

from collapse.analysis.problems import Problem
from collapse.analysis.workflows import WorkflowLike


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for a binomial probability.

    Parameters
    ----------
    successes, trials : int
        Observed count and number of independent trials (``0 <= successes <= trials``).
    level : float
        Coverage of the interval.

    Returns
    -------
    lo, hi : float
        ``Beta(tail; k, n - k + 1)`` and ``Beta(1 - tail; k + 1, n - k)`` quantiles,
        ``tail = (1 - level) / 2`` (0 and 1 at the ends).
    """
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"need 0 <= successes <= trials, trials >= 1 (got {successes}, {trials})")
    tail = (1.0 - level) / 2.0
    lo = 0.0 if successes == 0 else sps.beta.ppf(tail, successes, trials - successes + 1)
    hi = 1.0 if successes == trials else sps.beta.ppf(1 - tail, successes + 1, trials - successes)
    return float(lo), float(hi)


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
        return clopper_pearson(self.alarms, self.seeds, level)


@dataclass(frozen=True)
class CalibrationResult:
    """False alarms and power of one (configuration, replicate count) over many seeds.

    ``rejections[e]`` counts the seeds whose verdict was "inconsistent" against the
    theory multiplied by ``1 + e``; ``tested`` is the mean number of tested rows per
    seed (with the correct theory).
    """

    false_alarms: FalseAlarmResult
    replicates: int
    iterations: int
    rejections: dict[float, int]
    tested: float

    def power(self, error: float) -> float:
        """Fraction of seeds that rejected the theory wrong by ``error``."""
        return self.rejections[error] / self.false_alarms.seeds

    def power_interval(self, error: float, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval for :meth:`power`."""
        return clopper_pearson(self.rejections[error], self.false_alarms.seeds, level)


def calibrate(problem: Problem, workflows: WorkflowLike, *, iterations: int,
              replicates: int, seeds: Sequence[int], alpha: float = 0.01,
              errors: Sequence[float] = (0.02, 0.05), min_replicates: int | None = None,
              theory_scale: float = 1.0) -> CalibrationResult:
    """Run ``compare`` once per seed with the exact theory and with each wrong theory.

    Parameters
    ----------
    problem : Problem
        E.g. ``collapse.Gaussian(dim=2, n=25)``.
    workflows : str or list
        Workflows compared together (one Holm family per seed, as the command does).
    iterations, replicates : int
        Monte Carlo size of every comparison.
    seeds : sequence of int
        One independent comparison per seed.
    alpha : float
        Family-wise level of each verdict.
    errors : sequence of float
        Relative errors of the wrong theories whose rejection rate (power) is counted.
    min_replicates : int, optional
        Passed to :func:`collapse.simulate.stats.compare` to measure below its minimum.
    theory_scale : float
        Scale of the "correct" theory (1: exact, so every alarm is false; another value
        measures the power against that error instead).

    Returns
    -------
    CalibrationResult
    """
    from collapse.simulate import api
    from collapse.simulate.settings import setting_for
    from collapse.simulate.stats import compare

    setting = setting_for(problem)
    exact = api.theory(problem, workflows, iterations, scale=theory_scale, force=True)
    wrong = {e: {w: {m: tuple(v * (1.0 + e) for v in values) for m, values in per.items()}
                 for w, per in exact.values.items()} for e in errors}
    options = setting.compare_options(problem, exact.workflows, iterations)
    alarms = tested = 0
    rejections = {e: 0 for e in errors}
    seeds = list(seeds)
    for seed in seeds:
        samples = api.simulate(problem, exact.workflows, iterations, replicates, seed,
                               force=True).samples
        result = compare(setting.name, exact.values, samples, alpha=alpha,
                         min_replicates=min_replicates, **options)
        alarms += not result.consistent
        tested += sum(s == "tested" for s in result.status)
        for e in errors:
            rejections[e] += not compare(setting.name, wrong[e], samples, alpha=alpha,
                                         min_replicates=min_replicates, **options).consistent
    fa = FalseAlarmResult(setting.name, problem.describe(), len(seeds), alarms, alpha)
    return CalibrationResult(fa, replicates, iterations, rejections, tested / len(seeds))


def false_alarm_rate(problem: Problem, workflows: WorkflowLike, *, iterations: int,
                     replicates: int, seeds: Sequence[int], alpha: float = 0.05,
                     theory_scale: float = 1.0) -> FalseAlarmResult:
    """Run ``compare`` once per seed; count inconsistent verdicts.

    With ``theory_scale = 1`` the theory is exact, so every alarm is a false alarm;
    another scale measures power instead.
    """
    return calibrate(problem, workflows, iterations=iterations, replicates=replicates,
                     seeds=seeds, alpha=alpha, errors=(), theory_scale=theory_scale).false_alarms
