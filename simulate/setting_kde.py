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

    def lower_bounds(self, problem: KDE) -> dict[str, float | None]:
        return {MISE: 0.0, TEST_NLL: None}


register(KDESetting())
