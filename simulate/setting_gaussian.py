"""The ``gaussian`` setting: fit ``N(mu_hat, Sigma_hat)`` to ``D_t``, sample ``n`` points.

Truth ``N(0, sigma2 I_dim)``.  Exact expectations come from
:func:`collapse.analysis.gaussian.gaussian_theory`, replicates from
:func:`collapse.simulate.gaussian.simulate_gaussian`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from collapse.analysis.vocabulary import COVARIANCE_ESTIMATORS, GAUSSIAN, MLE, TEST_NLL
from collapse.simulate.argtypes import int_at_least, positive_float
from collapse.analysis.errors import CollapseError
from collapse.simulate.settings import Setting, TheoryResult, register

ENGINES = ("auto", "stats", "points")


@dataclass(frozen=True)
class GaussianConfig:
    """Gaussian setting: ``n`` points per model, truth ``N(0, sigma2 I_dim)``."""

    n: int
    dim: int
    sigma2: float
    covariance: str = MLE
    engine: str = "auto"


class GaussianSetting(Setting):
    name = GAUSSIAN
    help = "multivariate Gaussian fitting (mean and covariance)"

    def add_arguments(self, parser: argparse.ArgumentParser, command: str) -> None:
        group = parser.add_argument_group("gaussian setting")
        group.add_argument("--dim", type=int_at_least(1), default=1,
                           help="dimension d of the data (default 1)")
        group.add_argument("--sigma2", type=positive_float, default=1.0,
                           help="truth is N(0, sigma2 I_d) (default 1)")
        group.add_argument("--covariance", choices=COVARIANCE_ESTIMATORS, default=MLE,
                           help="covariance divisor: m (mle, as in the paper's code) or m-1 "
                                "(unbiased) (default mle)")
        if command != "theory":
            group.add_argument("--engine", choices=ENGINES, default="auto",
                               help="Monte Carlo engine: sufficient statistics (stats, replace "
                                    "and accumulate), literal points (points), or auto")

    def configure(self, args: argparse.Namespace) -> GaussianConfig:
        engine = getattr(args, "engine", "auto")
        if engine == "stats" and "accumulate-subsample" in args.workflows:
            raise CollapseError("--engine stats supports replace and accumulate only; "
                             "use --engine points or auto for accumulate-subsample")
        return GaussianConfig(n=args.n, dim=args.dim, sigma2=args.sigma2,
                              covariance=args.covariance, engine=engine)

    def describe(self, config: GaussianConfig) -> str:
        return (f"Gaussian: d={config.dim}, n={config.n}, sigma2={config.sigma2:g}, "
                f"covariance={config.covariance}")

    def theory(self, config: GaussianConfig, workflow: str, iterations: int) -> TheoryResult:
        from collapse.analysis.gaussian import gaussian_theory

        result = gaussian_theory(workflow, n=config.n, dim=config.dim, iterations=iterations,
                                 sigma2=config.sigma2, covariance=config.covariance)
        return TheoryResult(values=result.values, notes=tuple(result.notes))

    def simulate(self, config: GaussianConfig, workflow: str, *, iterations: int,
                 replicates: int, seed: int, chunk_size: int | None) -> dict[str, np.ndarray]:
        from collapse.simulate.gaussian import simulate_gaussian

        return simulate_gaussian(workflow, n=config.n, dim=config.dim, iterations=iterations,
                                 replicates=replicates, sigma2=config.sigma2,
                                 covariance=config.covariance, seed=seed,
                                 chunk_size=chunk_size, engine=config.engine)

    def lower_bounds(self, config: GaussianConfig) -> dict[str, float | None]:
        # Cross-entropy >= entropy of the truth (Gibbs): test_nll - H(p0) = KL >= 0.
        entropy = 0.5 * config.dim * (1.0 + math.log(2.0 * math.pi * config.sigma2))
        return {"mean_sq_error": 0.0, "cov_trace_ratio": 0.0, "cov_det_ratio": 0.0,
                "log_cov_det_ratio": None, TEST_NLL: entropy}


register(GaussianSetting())
