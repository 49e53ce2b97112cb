"""The ``discrete`` setting: fit the empirical frequencies of ``D_t``, draw ``n`` points.

Truth ``p0`` over ``K`` categories (:class:`collapse.analysis.problems.Discrete`); model
``t`` is the frequency vector of its training set (the MLE) and ``n`` points are drawn
from it, so a category that reaches zero never returns.  Exact expectations come from
:func:`collapse.analysis.discrete.discrete_theory` (``gini_diversity`` for every rule;
``entropy``, ``surviving_categories`` and ``collapsed`` where a dynamic programme or the
partition chain is exact and affordable; ``tv_distance`` is Monte Carlo only), replicates
from :func:`collapse.simulate.discrete.simulate_discrete`, which runs every rule.

Time to total collapse.  Under ``replace`` every replicate ends with one category left.
Its expected iteration ``E T = 1 + sum_{t >= 1} P(model t not collapsed)`` is stated in
the theory's notes, exactly where the partition chain is small enough
(:func:`collapse.analysis.discrete.collapse_time`) and always with Kimura's diffusion
approximation ``-2 n sum_i (1 - p_i) ln(1 - p_i)``; the Monte Carlo's notes give
``1 + sum_t (1 - mean collapsed_t)`` with its standard error beside them, once every
replicate has collapsed within the iterations run.

``collapsed`` is 0 or 1 per replicate, so ``compare`` tests it by the exact binomial test;
``gini_diversity``, ``entropy`` and ``tv_distance`` reach 0 as values (one category left,
or a model equal to the truth), which ``compare`` does not mistake for underflow.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> th = DiscreteSetting().theory(Discrete(n=10), Workflow.parse("replace"), 3)
>>> [round(v, 6) for v in th.values["gini_diversity"]]
[0.81, 0.729, 0.6561]
>>> [note for note in th.notes if note.startswith("expected time")][0][:52]
'expected time to total collapse (one category left):'
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from collapse.analysis.problems import Discrete
from collapse.analysis.vocabulary import (
    AUTO,
    COLLAPSED,
    DISCRETE,
    DISCRETE_METRICS,
    ENTROPY,
    GINI_DIVERSITY,
    REPLACE,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
)
from collapse.analysis.workflows import Workflow
from collapse.simulate.settings import Expectations, Setting, register


def collapse_time_notes(problem: Discrete) -> tuple[str, ...]:
    """The theory's notes on the expected time to total collapse under ``replace``.

    Examples
    --------
    >>> print(collapse_time_notes(Discrete(categories=2, n=2))[0])
    expected time to total collapse (one category left): exact E T = 2 (partition chain of n = 2); Kimura's approximation -2 n sum_i (1 - p_i) ln(1 - p_i) = 2.77259; Monte Carlo: 1 + sum_t (1 - mean collapsed_t) from collapse simulate
    """
    from collapse.analysis.discrete import collapse_time

    result = collapse_time(categories=problem.categories, n=problem.n, truth=problem.truth)
    exact = ("exact E T not computed (the partition chain is too large; Monte Carlo "
             "instead)" if result.exact is None
             else f"exact E T = {result.exact:.6g} (partition chain of n = {problem.n})")
    return (f"expected time to total collapse (one category left): {exact}; "
            f"Kimura's approximation -2 n sum_i (1 - p_i) ln(1 - p_i) = {result.kimura:.6g}; "
            f"Monte Carlo: 1 + sum_t (1 - mean collapsed_t) from collapse simulate",)


def simulated_collapse_time(collapsed: np.ndarray) -> tuple[float, float] | None:
    """Mean and standard error of the collapse iteration ``1 + sum_t (1 - collapsed_t)``.

    ``None`` unless every replicate has collapsed by the last iteration (the sum would
    be cut short).  A replicate's collapse iteration ``T`` is the first ``t`` with one
    category left, and ``T = 1 + sum_{t >= 1} [T > t]``.

    Examples
    --------
    >>> simulated_collapse_time(np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]))
    (1.5, 0.5)
    >>> simulated_collapse_time(np.array([[0.0, 0.0], [1.0, 1.0]])) is None
    True
    """
    collapsed = np.asarray(collapsed, dtype=np.float64)
    if collapsed.size == 0 or not (collapsed[:, -1] == 1.0).all():
        return None
    times = 1.0 + (1.0 - collapsed).sum(axis=1)
    sem = float(times.std(ddof=1) / math.sqrt(times.size)) if times.size > 1 else math.inf
    return float(times.mean()), sem


class DiscreteSetting(Setting):
    name = DISCRETE
    problem_type = Discrete
    metrics = DISCRETE_METRICS
    help = "empirical frequencies of a discrete distribution (categories die out)"
    binary_metrics = (COLLAPSED,)
    bound_attained = (GINI_DIVERSITY, ENTROPY, SURVIVING_CATEGORIES, TV_DISTANCE)

    def theory(self, problem: Discrete, workflow: Workflow, iterations: int) -> Expectations:
        from collapse.analysis.discrete import discrete_theory

        values, notes = discrete_theory(workflow, categories=problem.categories, n=problem.n,
                                        truth=problem.truth, iterations=iterations)
        if workflow.name == REPLACE:
            notes = tuple(notes) + collapse_time_notes(problem)
        return Expectations(values=values, notes=tuple(notes))

    def simulate(self, problem: Discrete, workflow: Workflow, *, iterations: int,
                 replicates: int, seed: int, chunk_size: int | None,
                 engine: str = AUTO) -> dict[str, np.ndarray]:
        from collapse.simulate.discrete import simulate_discrete

        return simulate_discrete(workflow, categories=problem.categories, n=problem.n,
                                 truth=problem.truth, iterations=iterations,
                                 replicates=replicates, seed=seed, chunk_size=chunk_size)

    def simulation_notes(self, problem: Discrete, workflow: Workflow,
                         samples: Mapping[str, np.ndarray]) -> tuple[str, ...]:
        # Without real data after model 1, and with every model fitted on its whole
        # pool, total collapse is absorbing: every replicate gets there, and its
        # iteration is the collapse time.  A model fitted on a subset of the pool can
        # have one category while the pool keeps several, and recover.
        if not _collapse_absorbs(workflow, problem.n) or COLLAPSED not in samples:
            return ()
        found = simulated_collapse_time(samples[COLLAPSED])
        if found is None:
            left = int((np.asarray(samples[COLLAPSED])[:, -1] != 1.0).sum())
            return (f"expected time to total collapse not estimated: {left} replicates still "
                    f"have two or more categories at the last iteration (more --iterations)",)
        mean, sem = found
        return (f"expected time to total collapse (Monte Carlo, every replicate collapsed): "
                f"1 + sum_t (1 - mean collapsed_t) = {mean:.6g} +- {sem:.2g}",)

    def check_monte_carlo(self, problem: Discrete, workflow: Workflow, iterations: int) -> None:
        from collapse.simulate.discrete import check_pool

        check_pool(workflow, categories=problem.categories, n=problem.n, iterations=iterations)

    def cost(self, problem: Discrete, workflow: Workflow, command: str, iterations: int,
             replicates: int):
        from collapse.simulate.budget import Cost, driver

        K, n, T, R = problem.categories, problem.n, iterations, replicates
        if command == "theory":
            # per iteration: a high-precision ratio, five metrics as Python floats, and
            # their table rows (about 1.5 kB measured); and the truth vector
            return Cost(1500.0 * T + 8.0 * 5 * K, _theory_seconds(problem, workflow, T),
                        driver(iterations=T / 1000, categories=K / 1e5, n=n / 1e3))
        from collapse.simulate.discrete import working_set

        m = workflow.subsample_size(n)
        if m is None:
            # a window longer than the run holds only the batches the run makes
            per_iteration = 1e-6 + 4e-8 * K * (1 + min(workflow.window or 1, T) / 4)
        elif m <= 2 * K:
            per_iteration = 1e-6 + 2e-8 * K * m
        else:
            per_iteration = 1e-6 + 1.5e-6 * K
        seconds = R * T * per_iteration
        return Cost(8.0 * len(DISCRETE_METRICS) * R * T
                    + working_set(workflow, categories=K, iterations=T, replicates=R),
                    seconds, driver(replicates=R / 1000, iterations=T / 100,
                                    categories=K / 1000, n=n / 1e6))

    def lower_bounds(self, problem: Discrete) -> dict[str, float | None]:
        # collapsed is an indicator (exact binomial test): no shape rule applies to it
        return {GINI_DIVERSITY: 0.0, ENTROPY: 0.0, SURVIVING_CATEGORIES: 1.0,
                TV_DISTANCE: 0.0, COLLAPSED: None}

    def upper_bounds(self, problem: Discrete, workflow: Workflow,
                     iterations: int) -> dict[str, np.ndarray]:
        # every replicate collapsed sits at the lower bounds, and with fewer points than
        # categories every replicate can sit at the top (all points distinct): compare
        # tests such rows against these ranges
        from collapse.analysis.discrete import check_truth, metric_maxima

        n, m = problem.n, workflow.subsample_size(problem.n)
        support = int((check_truth(problem.truth, problem.categories) > 0).sum())
        t = np.arange(1, iterations + 1)
        sizes = [n] + [m if m is not None else workflow.pool_size(n, s) for s in t[1:]]
        seen = n * t if workflow.real == "fresh" else np.full(iterations, n)
        return metric_maxima(support, np.array(sizes, dtype=np.int64), seen)


def _collapse_absorbs(workflow: Workflow, n: int) -> bool:
    """Whether a model with one category makes every later model equal to it: no real
    data after model 1, and every model fitted on its whole pool."""
    m = workflow.subsample_size(n)
    return workflow.real == "none" and (m is None or (workflow.window == 1 and m == n))


#: Iterations whose dynamic-programme cost is summed exactly; later ones are extrapolated.
_COSTED_ITERATIONS = 2000


def _theory_seconds(problem: Discrete, workflow: Workflow, iterations: int) -> float:
    """Estimated seconds of :func:`collapse.analysis.discrete.discrete_theory`, in time
    ``O(min(iterations, 2000))`` and without making the truth vector (``K`` may be huge)."""
    from collapse.analysis import discrete as exact

    K, n, T = problem.categories, problem.n, iterations
    if isinstance(problem.truth, str):
        levels, alive = (1 if problem.truth == "uniform" else K), K
    else:
        p0 = np.asarray(problem.truth)
        levels, alive = len(np.unique(p0)), int((p0 > 0).sum())
    # the truth's diversity in 50 digits, and the 50-digit Gini recursion
    seconds = 5e-6 * K + 5e-5 * T * (1 + min(workflow.window or 0, T) / 50)
    if exact._dp_mode(workflow) is not None:
        shown = min(T, _COSTED_ITERATIONS)
        dp = exact._dp_cost(workflow, n, shown)
        if T > shown:
            # the programme's per-iteration cost grows at most like t^2 (a pool of t n)
            step = dp - exact._dp_cost(workflow, n, shown - 1)
            dp += step * (T - shown) * (T / shown) ** 2
        # discrete_theory prices the programme in a loop over every iteration first; then
        # one chain per distinct probability, each iteration a few numpy calls
        if dp * levels <= exact.DP_BUDGET:
            seconds += 3e-9 * dp * levels + 7e-5 * levels * T
        seconds += 5e-6 * T
    if workflow.real == "none" and alive > 1:
        chain = exact._partition_cost(n, alive) if alive <= n else exact.PARTITION_BUDGET + 1
        if chain <= exact.PARTITION_BUDGET:
            seconds += 6e-7 * chain  # the chain is built for P(collapsed) and for E T
    return seconds


register(DiscreteSetting())
