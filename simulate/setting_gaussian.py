"""The ``gaussian`` setting: fit ``N(mu_hat, Sigma_hat)`` to ``D_t``, sample ``n`` points.

Truth ``N(0, sigma2 I_dim)`` (:class:`collapse.analysis.problems.Gaussian`).  Exact
expectations: for the paper's three workflows
:func:`collapse.analysis.gaussian.gaussian_theory` (all five metrics under ``replace``),
for every other rule :func:`collapse.analysis.gaussian_rules.gaussian_rule_theory`
(``mean_sq_error`` and ``cov_trace_ratio``).  Replicates come from
:func:`collapse.simulate.gaussian.simulate_gaussian`, which runs every rule.

``compare`` also tests exact quantiles where the law is known
(:meth:`GaussianSetting.quantile_theory`): under ``replace`` the log-determinant
ratio is a sum of independent log-chi-square terms, so its quartiles are exact
(:mod:`collapse.analysis.gaussian_quantiles`) and the rows
``log_cov_det_ratio_q25``, ``log_cov_det_ratio_q50`` and ``log_cov_det_ratio_q75``
are tested by an exact binomial test at every replicate count, where the means of the
determinant, trace and test NLL are too heavy-tailed to test.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> setting = GaussianSetting()
>>> th = setting.theory(Gaussian(n=10), Workflow.parse("fresh"), 2)
>>> th.values["mean_sq_error"]
(0.1, 0.0725)
>>> q = setting.quantile_theory(Gaussian(n=10), Workflow.parse("replace"), 2)
>>> sorted(q), round(q["log_cov_det_ratio_q50"][0], 4)
(['log_cov_det_ratio_q25', 'log_cov_det_ratio_q50', 'log_cov_det_ratio_q75'], -0.1812)
"""

from __future__ import annotations

import math

import numpy as np

from collapse.analysis.problems import Gaussian
from collapse.analysis.vocabulary import (
    AUTO,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    ENGINES,
    GAUSSIAN,
    GAUSSIAN_METRICS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    REPLACE,
    TEST_NLL,
    UNBIASED,
    WORKFLOWS,
)
from collapse.analysis.workflows import Workflow
from collapse.simulate.settings import Expectations, Setting, register


class GaussianSetting(Setting):
    name = GAUSSIAN
    problem_type = Gaussian
    metrics = GAUSSIAN_METRICS
    engines = ENGINES
    help = "multivariate Gaussian fitting (mean and covariance)"

    def theory(self, problem: Gaussian, workflow: Workflow, iterations: int) -> Expectations:
        if workflow.name in WORKFLOWS:
            # The paper's three keep their closed forms (and their speed).
            from collapse.analysis.gaussian import gaussian_theory

            result = gaussian_theory(workflow.name, n=problem.n, dim=problem.dim,
                                     iterations=iterations, sigma2=problem.sigma2,
                                     covariance=problem.covariance)
            return Expectations(values=result.values, notes=tuple(result.notes))
        from collapse.analysis.gaussian_rules import gaussian_rule_theory

        values, notes = gaussian_rule_theory(workflow, n=problem.n, dim=problem.dim,
                                             iterations=iterations, sigma2=problem.sigma2,
                                             covariance=problem.covariance)
        return Expectations(values=values, notes=tuple(notes))

    def quantile_theory(self, problem: Gaussian, workflow: Workflow,
                        iterations: int) -> dict[str, tuple[float, ...]]:
        """Exact quantiles that ``compare`` tests, by row name (empty where none are known).

        ``replace`` with ``n - 1 >= dim``: the quartiles of ``log_cov_det_ratio``
        (:func:`collapse.analysis.gaussian_quantiles.replace_log_det_quantiles`), named
        ``log_cov_det_ratio_q25``, ``_q50`` and ``_q75``.  They do not depend on
        ``sigma2`` (the ratio is scale-free).
        """
        if workflow.name != REPLACE or problem.n - 1 < problem.dim:
            return {}
        from collapse.analysis.gaussian_quantiles import QUARTILES, replace_log_det_quantiles
        from collapse.simulate.stats import quantile_name

        found = replace_log_det_quantiles(problem.n, problem.dim, iterations,
                                          problem.covariance, QUARTILES)
        return {quantile_name(LOG_COV_DET_RATIO, p): values for p, values in found.items()}

    def simulate(self, problem: Gaussian, workflow: Workflow, *, iterations: int,
                 replicates: int, seed: int, chunk_size: int | None,
                 engine: str = AUTO) -> dict[str, np.ndarray]:
        from collapse.simulate.gaussian import simulate_gaussian

        return simulate_gaussian(workflow, n=problem.n, dim=problem.dim,
                                 iterations=iterations, replicates=replicates,
                                 sigma2=problem.sigma2, covariance=problem.covariance,
                                 seed=seed, chunk_size=chunk_size, engine=engine)

    def check(self, problem: Gaussian, workflow: Workflow) -> None:
        """Impossible rules, and subsamples too small for the unbiased divisor."""
        from collapse.analysis.errors import CollapseError

        super().check(problem, workflow)
        m = workflow.subsample_size(problem.n)
        if problem.covariance == UNBIASED and m is not None and m < 2:
            raise CollapseError(f"workflow key size={workflow.size}: the unbiased covariance "
                                f"(divisor m-1) needs training sets of at least 2 points")

    def cost(self, problem: Gaussian, workflow: Workflow, command: str, iterations: int,
             replicates: int):
        from collapse.simulate.budget import Cost, driver

        n, d, T, R = problem.n, problem.dim, iterations, replicates
        if command == "theory":
            # 50-digit recursion per iteration; replace's digamma sum runs over the dimension
            seconds = 1e-4 * T * (1 + (workflow.window or 0) / 50)
            if workflow.name == "replace":
                seconds += 3e-5 * d
            return Cost(8.0 * 5 * T, seconds, driver(iterations=T / 100, dim=d / 1e4))
        words_out = 10.0 * R * T  # the record and the metrics, float64
        if workflow.subsamples(2) or workflow.window is None and workflow.name != "accumulate":
            per_iteration = n * d * (d + 4) * 1e-9 + 2e-6
        elif workflow.name == "accumulate":
            per_iteration = d ** 3 * 1e-9 + 2e-6
        else:
            per_iteration = (workflow.window or 1) * d ** 3 * 1e-9 + 2e-6
        pool = 8.0 * T * n * d if workflow.name != "replace" else 16.0 * n * d
        from collapse.simulate.gaussian import block_size

        working = min(R, block_size(n, d)) * (pool + 80.0 * d * d + 32.0 * n * d)
        return Cost(8.0 * words_out + working, R * T * per_iteration,
                    driver(replicates=R / 1000, iterations=T / 100, dim=d / 100, n=n / 1000))

    def lower_bounds(self, problem: Gaussian) -> dict[str, float | None]:
        # Cross-entropy >= entropy of the truth (Gibbs): test_nll - H(p0) = KL >= 0.
        entropy = 0.5 * problem.dim * (1.0 + math.log(2.0 * math.pi * problem.sigma2))
        return {MEAN_SQ_ERROR: 0.0, COV_TRACE_RATIO: 0.0, COV_DET_RATIO: 0.0,
                LOG_COV_DET_RATIO: None, TEST_NLL: entropy}


register(GaussianSetting())
