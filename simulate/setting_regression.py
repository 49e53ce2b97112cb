"""The ``regression`` setting: least squares on one fixed design, labels from the last fit.

The authors' semantics (:class:`collapse.analysis.problems.Regression`): a design ``X``
(``n x dim``, iid ``N(0, 1)``) drawn once and reused by every model, true weights
``w ~ N(0, I)``, real labels ``X w + N(0, sigma2 I)``; model ``t`` is ordinary least
squares (the pseudo-inverse) on its training set and produces the labels
``X w_hat_t + N(0, sigma2 I)``.  The metric ``test_mse`` is ``||w_hat_t - w||^2``.

Exact expectations come from :func:`collapse.analysis.regression.regression_theory`:
for every rule that keeps whole batches (replace, accumulate, fresh, windows), averaged
over random designs by default, or conditional on the one design drawn from
``design_seed`` when the problem gives one (see :func:`design_for`).  Rules that fit a
random subset of the stacked rows (accumulate-subsample and every ``size`` rule) have no
exact theory: Monte Carlo only, as the theory's notes say.  Replicates come from
:func:`collapse.simulate.regression.simulate_regression`, which runs every rule.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> th = RegressionSetting().theory(Regression(dim=10, n=100), Workflow.parse("replace"), 2)
>>> [round(v, 6) for v in th.values["test_mse"]]
[0.11236, 0.224719]
>>> RegressionSetting().theory(Regression(dim=10), Workflow.parse("accumulate-subsample"),
...                            2).values
{}
"""

from __future__ import annotations

import functools
import math

import numpy as np

from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import Regression
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    AUTO,
    REGRESSION,
    REGRESSION_METRICS,
    TEST_MSE,
)
from collapse.analysis.workflows import Workflow
from collapse.simulate.settings import Expectations, Setting, register

#: Smallest label-noise variance the Monte Carlo resolves (labels have unit-scale signal
#: ``X w``; see :meth:`RegressionSetting.check_simulation`).
MIN_SIMULATED_SIGMA2 = 1e-16


@functools.lru_cache(maxsize=32)
def _design(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed)))
    design = rng.standard_normal((n, dim))
    design.setflags(write=False)
    return design


def design_for(problem: Regression) -> np.ndarray | None:
    """The shared design of ``problem``, or ``None`` when every replicate draws its own.

    With ``design_seed = s`` the design is ``n x dim`` standard normals from
    ``Generator(SFC64(SeedSequence(s)))``, read-only: the same for theory and Monte Carlo,
    and for every ``seed`` of the Monte Carlo.

    Examples
    --------
    >>> design_for(Regression(dim=2, n=3)) is None
    True
    >>> design_for(Regression(dim=2, n=3, design_seed=7)).shape
    (3, 2)
    """
    if problem.design_seed is None:
        return None
    return _design(problem.n, problem.dim, problem.design_seed)


class RegressionSetting(Setting):
    name = REGRESSION
    problem_type = Regression
    metrics = REGRESSION_METRICS
    help = "least squares on one fixed design, labels resampled from the fitted model"

    def theory(self, problem: Regression, workflow: Workflow, iterations: int) -> Expectations:
        from collapse.analysis.regression import regression_theory

        values, notes = regression_theory(workflow, dim=problem.dim, n=problem.n,
                                          sigma2=problem.sigma2, iterations=iterations,
                                          design=design_for(problem))
        notes = list(notes)
        series = values.get(TEST_MSE)
        if workflow.name == ACCUMULATE and series and math.isfinite(series[0]):
            # sum_{i <= t} 1/i^2 < pi^2/6: the whole run stays below this bound
            bias = _bias(problem)
            limit = (series[0] - bias) * math.pi ** 2 / 6 + bias
            what = ("the bias plus (pi^2/6) times the first model's variance" if bias
                    else "(pi^2/6) times the first model's error")
            notes.append(f"{TEST_MSE} of accumulate rises to its limit {limit:.6g}, {what} "
                         f"(sum_i 1/i^2 -> pi^2/6), which bounds every t")
        return Expectations(values=values, notes=tuple(notes))

    def simulate(self, problem: Regression, workflow: Workflow, *, iterations: int,
                 replicates: int, seed: int, chunk_size: int | None,
                 engine: str = AUTO) -> dict[str, np.ndarray]:
        from collapse.simulate.regression import simulate_regression

        return simulate_regression(workflow, dim=problem.dim, n=problem.n,
                                   sigma2=problem.sigma2, iterations=iterations,
                                   replicates=replicates, seed=seed, chunk_size=chunk_size,
                                   design=design_for(problem))

    def check_simulation(self, problem: Regression) -> None:
        # The labels are X w (unit scale) plus noise of standard deviation sigma, and the
        # fit subtracts w back out: float64 rounding of X w (about 1e-16 of it) then
        # enters test_mse relative to sigma2.  Measured with the same random numbers at
        # sigma2 and at 1: a replicate's test_mse / sigma2 is off by at most about 1e-5
        # at sigma2 = 1e-16, 1e-3 at 1e-20 and 10% at 1e-24.
        if problem.sigma2 < MIN_SIMULATED_SIGMA2:
            raise CollapseError(
                f"sigma2 must be >= {MIN_SIMULATED_SIGMA2:g} for Monte Carlo: below it "
                f"float64 cannot hold the label noise next to the unit-scale signal X w "
                f"(got {problem.sigma2:g}); the exact theory has no such limit")

    def cost(self, problem: Regression, workflow: Workflow, command: str, iterations: int,
             replicates: int):
        from collapse.simulate.budget import Cost, driver

        n, d, T, R = problem.n, problem.dim, iterations, replicates
        q = min(n, d)
        if command == "theory":
            # the 50-digit pooled recursion: one Gram row per kept batch and iteration
            # the 50-digit pooled recursion (a Gram row per batch of a window), and the
            # SVD of a given design
            seconds = 4e-5 * T * (1 + (workflow.window or 0) / 50)
            held = 600.0 * T  # a 50-digit ratio, a Python float and a table row
            if problem.design_seed is not None:
                seconds += 3e-9 * n * d * q + 2e-8 * n * d
                held += 8.0 * 3 * n * d
            return Cost(held, seconds, driver(iterations=T / 1000, dim=d / 1e4, n=n / 1e5))
        from collapse.simulate.regression import working_set

        subsample = workflow.size is not None
        if subsample:
            per_iteration = 2.5e-10 * (n * q * q + 4 * q ** 3) + 1e-7 * n + 2e-6
        else:
            per_iteration = 1e-6 + 2e-8 * q * (1 + (workflow.window or 1))
        first = 3e-9 * n * d * q + 2e-8 * n * d
        seconds = R * (first + T * per_iteration)
        return Cost(8.0 * R * T + working_set(workflow, dim=d, n=n, iterations=T,
                                              replicates=R),
                    seconds, driver(replicates=R / 1000, iterations=T / 100, dim=d / 100,
                                    n=n / 1000))

    def lower_bounds(self, problem: Regression) -> dict[str, float | None]:
        return {TEST_MSE: 0.0}


def _bias(problem: Regression) -> float:
    """The part ``d - rank`` of ``E test_mse_t`` that no iteration changes (0 for full rank)."""
    from collapse.analysis.regression import design_inverse_trace

    design = design_for(problem)
    if design is not None:
        return float(problem.dim - design_inverse_trace(design)[1])
    return float(max(problem.dim - problem.n, 0))


register(RegressionSetting())
