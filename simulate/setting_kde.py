"""The ``kde`` setting: Gaussian kernel density estimation with bandwidth ``h``.

Model ``t`` is ``p_hat_t(x) = (1/|D_t|) sum_{y in D_t} phi_h(x - y)``; sampling picks a
uniform point of ``D_t`` and adds ``N(0, h^2 I)`` noise
(:class:`collapse.analysis.problems.KDE`).  Exact expected MISE exists for a fixed
bandwidth and a Gaussian or Gaussian-mixture truth (``gaussian``, ``blobs``): for the
paper's three workflows from :func:`collapse.analysis.kde.kde_theory`, for every other
rule from :func:`collapse.analysis.kde_rules.kde_rule_theory`.  The paper's held-out NLL,
data-dependent bandwidths and the sklearn datasets are Monte Carlo only
(:func:`collapse.simulate.kde.simulate_kde`, which runs every rule).

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> th = KDESetting().theory(KDE(n=10), Workflow.parse("fresh"), 3)
>>> [round(v, 6) for v in th.values["mise"]]
[0.033673, 0.024704, 0.024805]
"""

from __future__ import annotations

import numpy as np

from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import KDE
from collapse.analysis.vocabulary import (
    AUTO,
    BLOBS,
    GAUSSIAN_TRUTH,
    KDE_METRICS,
    MISE,
    TEST_NLL,
    WORKFLOWS,
)
from collapse.analysis.vocabulary import KDE as KDE_NAME
from collapse.analysis.workflows import Workflow
from collapse.simulate.settings import Expectations, Setting, register


def truth_mixture(problem: KDE):
    """The truth as a Gaussian mixture, or ``None`` where it has no closed-form density."""
    from collapse.analysis.truths import blobs_truth, gaussian_truth

    if problem.truth == GAUSSIAN_TRUTH:
        return gaussian_truth(problem.dim, problem.sigma0)
    if problem.truth == BLOBS:
        return blobs_truth()
    return None


class KDESetting(Setting):
    name = KDE_NAME
    problem_type = KDE
    metrics = KDE_METRICS
    help = "Gaussian kernel density estimation (fixed bandwidth or scott/silverman)"

    def theory(self, problem: KDE, workflow: Workflow, iterations: int) -> Expectations:
        mixture = truth_mixture(problem)
        if mixture is None:
            return Expectations({}, (f"no exact theory for truth {problem.truth} "
                                     "(not a Gaussian mixture): Monte Carlo only",))
        if not problem.fixed_bandwidth:
            return Expectations({}, (f"no exact theory for bandwidth {problem.bandwidth} "
                                     "(data-dependent bandwidth): Monte Carlo only",))
        if workflow.name in WORKFLOWS:
            # The paper's three keep their own programme (same numbers as before rules).
            from collapse.analysis.kde import kde_theory

            result = kde_theory(workflow.name, n=problem.n, bandwidth=problem.bandwidth,
                                iterations=iterations, truth=mixture)
            return Expectations(values=result.values, notes=tuple(result.notes))
        from collapse.analysis.kde_rules import kde_rule_theory

        values, notes = kde_rule_theory(workflow, n=problem.n, bandwidth=problem.bandwidth,
                                        iterations=iterations, truth=mixture)
        return Expectations(values=values, notes=tuple(notes))

    def simulate(self, problem: KDE, workflow: Workflow, *, iterations: int, replicates: int,
                 seed: int, chunk_size: int | None, engine: str = AUTO) -> dict[str, np.ndarray]:
        from collapse.simulate.kde import simulate_kde

        return simulate_kde(workflow, n=problem.n, iterations=iterations,
                            replicates=replicates, truth=problem.truth, dim=problem.dim,
                            sigma0=problem.sigma0, bandwidth=problem.bandwidth,
                            heldout=problem.heldout, seed=seed, chunk_size=chunk_size)

    def check_simulation(self, problem: KDE) -> None:
        # A point of the loop is its parent plus h times a standard normal: in float64
        # that noise vanishes next to the data once h is below about 1e-8 of their scale.
        if problem.fixed_bandwidth and problem.bandwidth < 1e-8 * problem.sigma0:
            raise CollapseError(
                f"bandwidth must be >= {1e-8 * problem.sigma0:g} (1e-8 times sigma0) for Monte "
                f"Carlo: below it float64 cannot hold the kernel noise next to the data "
                f"(got {problem.bandwidth:g}); the exact theory has no such limit")

    def cost(self, problem: KDE, workflow: Workflow, command: str, iterations: int,
             replicates: int):
        from collapse.simulate.budget import Cost, driver

        n, d, T, R, H = problem.n, problem.dim, iterations, replicates, problem.heldout
        if command == "theory":
            # the pair-law dynamic programme over generation pairs costs O(T^3)
            return Cost(8.0 * 4 * T * T, 2e-8 * T ** 3 + 1e-6 * T * T,
                        driver(iterations=T / 100, n=n / 1e6))
        sizes = [workflow.training_size(n, t) for t in range(1, min(T, 2000) + 1)]
        scale = T / len(sizes)
        if problem.fixed_bandwidth and workflow.window is None and not workflow.subsamples(2):
            # a pool that only grows: its kernel sums gain one batch per iteration
            kernel = sum(H * n + m * n for m in sizes) * scale
        else:
            kernel = sum(H * m + m * m / 2 for m in sizes) * scale
        seconds = R * kernel * d * 4e-9
        from collapse.simulate.kde import block_size

        working = min(R, max(block_size(n, d), 32)) * 8.0 * (T * n * d + H * d + 2 * 65536)
        return Cost(8.0 * 4 * R * T + working, seconds,
                    driver(replicates=R / 1000, iterations=T / 100, heldout=H / 500,
                           n=n / 1000, dim=d / 100))

    def lower_bounds(self, problem: KDE) -> dict[str, float | None]:
        return {MISE: 0.0, TEST_NLL: None}


register(KDESetting())
