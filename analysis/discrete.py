"""Exact expectations for iterated fitting of a discrete distribution (the empirical MLE).

The setting.  A truth ``p0`` over ``K`` categories; model ``t`` is the vector of empirical
frequencies of its training set ``D_t`` (the maximum-likelihood estimate), and ``n``
points are drawn from every model (a multinomial count vector).  Model 1 is fitted on
``n`` real points; for ``t >= 2`` the workflow rule (:mod:`collapse.analysis.workflows`)
says which batches ``D_t`` pools and whether it is a random subset of them.  A category
whose probability reaches zero is never drawn again.

Metrics of model ``t`` (names from :mod:`collapse.analysis.vocabulary`):
``gini_diversity`` ``1 - sum_i p_i^2``; ``entropy`` ``-sum_i p_i log p_i`` (nats);
``surviving_categories`` ``#{i : p_i > 0}``; ``collapsed`` 1 when one category is left
(its mean is the probability of total collapse); ``tv_distance`` ``(1/2) sum_i |p_i -
p0_i|`` (Monte Carlo only here).

Gini-Simpson diversity (every rule, exact)
------------------------------------------
A model is the average of the frequency vectors of its batches, so
:mod:`collapse.analysis.pooling` applies with deviations from ``p0``.  Multinomial
sampling from ``p`` adds noise with ``E||q - p||^2 = (1 - ||p||^2)/n = H(p)/n``, and an
``m``-subset of a pool of ``N`` points with frequencies ``pi`` adds
``E||s - pi||^2 = H(pi) (N - m)/(m (N - 1))``; since every estimate is unbiased,
``E H = H0 - E||p_hat - p0||^2`` with ``H0 = 1 - sum_i p0_i^2``.  Per unit ``H0``:
``rho = 1/n``, ``v(D) = (1 - D)/n``, ``u(P, N, m) = (1 - P)(N - m)/(m (N - 1))``, and
``E H_t = H0 (1 - D_t)``.  This gives (with model 1 fitted on the real sample, so the
expectation is over it too)

    replace      E H_t = H0 (1 - 1/n)^t                              (Wright-Fisher)
    accumulate   E H_t = H0 prod_{s=1}^t (1 - 1/(n s^2)) -> H0 sin(pi/sqrt n)/(pi/sqrt n)

(:mod:`collapse.analysis.discrete_symbolic` derives these and the other
``synthetic=latest``/``all`` closed forms).

Entropy and surviving categories (one category's chain, exact)
--------------------------------------------------------------
Both are sums over categories of a function of one frequency, and one category's count
is a Markov chain of its own: the real count ``r ~ Bin(n, p0_i)``; a batch drawn from a
model with frequency ``f`` has ``Bin(n, f)`` points of the category; a subset of ``m`` of
a pool of ``N`` points of which ``x`` are in the category holds ``Hypergeom(N, x, m)``.
The state is the category's count in the pool (``synthetic=all``; under accumulate a
Polya-like urn that gains ``Bin(n, x/N)`` per step) or in the last batch
(``synthetic=latest``), joined with the real count where the rule keeps it apart
(``real=original`` with ``latest`` or a stratified subsample); a fresh real batch
enters as an independent ``Bin(n, p0_i)``.  A dynamic programme over that state
distribution gives ``E[-f log f]`` and ``P(f > 0)`` per iteration, in double precision
(binomial and hypergeometric probabilities from tables of ``log k!``, relative rounding
about ``1e-13`` times the log-factorial's size).  Windows ``synthetic=window:K`` with ``K >= 2`` need the last ``K`` batch
counts jointly and are Monte Carlo only.

Total collapse (``collapsed``)
------------------------------
Model 1 has one category with probability ``sum_i p0_i^n``.  Where the real sample stays
in every training set whole (``real=original`` without ``size``) the support of every
model contains that of the real sample, so ``P(collapsed_t) = sum_i p0_i^n`` for every
``t``.  Under replace the vector of category counts is a Markov chain whose law is
invariant under relabelling the categories, so it lumps to the chain of *partitions*
of ``n`` (sorted nonzero counts); that chain is built exactly for small ``K, n``
(:func:`collapse_time`) and gives ``P(collapsed_t)`` and the expected collapse time
``E T = 1 + sum_{t >= 1} P(model t not collapsed) = 1 + pi_1^T (I - Q)^{-1} 1``
(``Q``: the chain among the non-collapsed partitions).  With two categories alive the
one-category chain already decides collapse, for every rule it covers.  Kimura's
diffusion approximation ``E T ~ -2 n sum_i (1 - p0_i) ln(1 - p0_i)`` stands beside it
(about ``1.9 n`` for ten equally likely categories).

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> values, notes = discrete_theory(Workflow.parse("replace"), categories=10, n=10,
...                                 truth="uniform", iterations=3)
>>> [round(v, 6) for v in values["gini_diversity"]]
[0.81, 0.729, 0.6561]
>>> sorted(values)
['collapsed', 'entropy', 'gini_diversity', 'surviving_categories']
>>> round(collapse_time(categories=10, n=10, truth="uniform").kimura, 3)
18.965
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from collapse.analysis.checks import check_int
from collapse.analysis.errors import CollapseError
from collapse.analysis.pooling import as_workflow, pooled_moments
from collapse.analysis.vocabulary import (
    COLLAPSED,
    DISCRETE_TRUTHS,
    ENTROPY,
    GINI_DIVERSITY,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
    UNIFORM,
    ZIPF,
)
from collapse.analysis.workflows import Workflow

__all__ = [
    "CollapseTime",
    "category_chain",
    "check_truth",
    "collapse_time",
    "collapsed_probabilities",
    "discrete_theory",
    "gini_ratios",
    "kimura_collapse_time",
    "metric_maxima",
]

_MP = mpmath.MPContext()
_MP.dps = 50
#: Largest dynamic programme (state-times-outcome operations, all iterations) computed.
DP_BUDGET = 2 * 10**9
#: Largest partition chain (compositions times source partitions) built.
PARTITION_BUDGET = 2 * 10**7


# --------------------------------------------------------------------------- truths


def check_truth(truth: Any, categories: int) -> np.ndarray:
    """The truth ``p0`` as a float64 vector of length ``categories``.

    ``"uniform"`` (``1/K``), ``"zipf"`` (``p_i`` proportional to ``1/i``), or an explicit
    probability vector: finite, non-negative, of length ``categories``, summing to one
    within ``1e-9`` (then renormalised).  Otherwise :class:`CollapseError` naming
    ``truth``.

    Examples
    --------
    >>> check_truth("zipf", 3).round(4).tolist()
    [0.5455, 0.2727, 0.1818]
    """
    categories = check_int("categories", categories, 2)
    if isinstance(truth, str):
        if truth == UNIFORM:
            return np.full(categories, 1.0 / categories)
        if truth == ZIPF:
            weights = 1.0 / np.arange(1, categories + 1)
            return weights / weights.sum()
        raise CollapseError(f"truth must be one of {', '.join(DISCRETE_TRUTHS)} or a "
                            f"probability vector (got {truth!r})")
    try:
        vector = np.array(truth, dtype=np.float64)
    except (TypeError, ValueError):
        raise CollapseError(f"truth must be one of {', '.join(DISCRETE_TRUTHS)} or a "
                            f"probability vector (got {truth!r})") from None
    if vector.ndim != 1 or vector.size != categories:
        raise CollapseError(f"truth must be a probability vector of length categories = "
                            f"{categories} (got shape {vector.shape})")
    if not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise CollapseError("truth must hold finite, non-negative probabilities")
    total = math.fsum(vector.tolist())
    if abs(total - 1.0) > 1e-9:
        raise CollapseError(f"truth must sum to one within 1e-9 (sums to {total!r})")
    return vector / total


def _gini0(p0: np.ndarray) -> Any:
    return 1 - _MP.fsum(_MP.mpf(float(p)) ** 2 for p in p0)


# --------------------------------------------------------------------------- Gini diversity


def gini_ratios(workflow: Workflow, n: int, iterations: int, *, one: Any = Fraction(1)
                ) -> list[Any]:
    """``E H_t / H0`` for ``t = 1..iterations``, exactly, for every rule (module docstring).

    Examples
    --------
    >>> gini_ratios(Workflow.parse("accumulate"), 10, 2)
    [Fraction(9, 10), Fraction(351, 400)]
    """
    n = check_int("n", n, 2)
    second = pooled_moments(
        workflow, n, iterations, real_variance=one / n,
        noise_variance=lambda d: (one - d) / n,
        subsample_variance=lambda p, size, m: (one - p) * (size - m) / (m * (size - 1)))
    return [one - d for d in second]


def _precise_gini_ratios(workflow: Workflow, n: int, iterations: int) -> list[Any]:
    """:func:`gini_ratios` with every ratio correct to at least 30 significant digits.

    ``E H_t / H0 = 1 - D_t`` with ``D_t -> 1`` under replace: 50 digits keep only
    ``50 + log10(1 - D_t)`` of them (none left for ``(1 - 1/10)^1000 ~ 1e-46``), so the
    programme is rerun with enough digits for the smallest ratio it found, up to
    :data:`_GINI_DIGITS`: ratios below ``1e-360`` are 0 in float64 whatever their digits
    (and come out as 0 or a rounding error of either sign, which the caller clamps).
    """
    dps = 50
    while True:
        context = mpmath.MPContext()
        context.dps = dps
        ratios = gini_ratios(workflow, n, iterations, one=context.mpf(1))
        smallest = min((abs(r) for r in ratios if r != 0), default=context.mpf(1))
        lost = max(0, -int(context.floor(context.log10(smallest))))
        if dps - lost >= 30 or dps >= _GINI_DIGITS:
            return ratios
        dps = min(lost + 40, _GINI_DIGITS)


#: Most digits of the Gini recursion (float64 holds nothing below about 1e-324).
_GINI_DIGITS = 400


# --------------------------------------------------------------------------- one category


class _Tables:
    """Log-factorials and binomial kernels, kept across iterations of one programme."""

    def __init__(self) -> None:
        self._log_factorial = np.zeros(1)
        self._batches: dict[tuple[int, int], np.ndarray] = {}

    def log_factorial(self, top: int) -> np.ndarray:
        if self._log_factorial.size <= top:
            from scipy.special import gammaln

            self._log_factorial = gammaln(np.arange(2 * top + 2, dtype=np.float64) + 1.0)
        return self._log_factorial

    def log_choose(self, top: np.ndarray, k: np.ndarray) -> np.ndarray:
        """``log C(top, k)``, ``-inf`` outside ``0 <= k <= top``."""
        table = self.log_factorial(int(np.max(top)))
        valid = (k >= 0) & (k <= top)
        top_c, k_c = np.where(valid, top, 0), np.where(valid, k, 0)
        out = table[top_c] - table[k_c] - table[top_c - k_c]
        return np.where(valid, out, -np.inf)

    def binomial(self, trials: int, probs: np.ndarray) -> np.ndarray:
        """``B[i, b] = P(Bin(trials, probs[i]) = b)``."""
        probs = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
        b = np.arange(trials + 1)
        out = np.zeros((probs.size, trials + 1))
        inner = (probs > 0) & (probs < 1)
        f = probs[inner]
        logs = (self.log_choose(np.full_like(b, trials), b)[None, :]
                + np.log(f)[:, None] * b[None, :]
                + np.log1p(-f)[:, None] * (trials - b)[None, :])
        out[inner] = np.exp(logs)
        out[probs == 0, 0] = 1.0
        out[probs == 1, trials] = 1.0
        return out

    def batch(self, trials: int, den: int) -> np.ndarray:
        """``B[k, b] = P(Bin(trials, k/den) = b)``, cached (replace reuses one)."""
        key = (trials, den)
        if key not in self._batches:
            self._batches = {key: self.binomial(trials, np.arange(den + 1) / den)}
        return self._batches[key]

    def hypergeom(self, population: int, goods: np.ndarray, draws: int) -> np.ndarray:
        """``M[i, k] = P(k of ``draws`` are good | ``goods[i]`` good of ``population``)``."""
        goods = np.asarray(goods)[:, None]
        k = np.arange(draws + 1)[None, :]
        logs = (self.log_choose(goods, k) + self.log_choose(population - goods, draws - k)
                - self.log_choose(np.array(population), np.array(draws)))
        return np.exp(logs)


def _convolve_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row-wise convolution of ``left (..., a)`` and ``right (..., b)`` -> ``(..., a+b-1)``."""
    shape = np.broadcast_shapes(left.shape[:-1], right.shape[:-1])
    out = np.zeros(shape + (left.shape[-1] + right.shape[-1] - 1,))
    for j in range(left.shape[-1]):
        out[..., j:j + right.shape[-1]] += left[..., j:j + 1] * right
    return out


def _dp_mode(workflow: Workflow) -> str | None:
    """How one category's chain is kept, or ``None`` where it is not one-dimensional."""
    if workflow.window not in (None, 1):
        return None
    if workflow.real == "original":
        if workflow.window is None and workflow.real_fraction is None:
            return "merged"  # the pool count alone (real included) is the state
        return "joint"  # (real count, synthetic count)
    return workflow.real


def _dp_cost(workflow: Workflow, n: int, iterations: int) -> int:
    """Multiply-adds of :func:`category_chain`, to refuse programmes that would take long."""
    mode = _dp_mode(workflow)
    m = workflow.subsample_size(n)
    rows = n + 1 if mode == "joint" else 1
    cost = 0
    for t in range(2, iterations + 1):
        width = n * len(workflow.synthetic_batches(t)) + 1 + (n if mode == "merged" else 0)
        den = workflow.training_size(n, t)
        model = m is not None or mode == "fresh"
        per_state = (n + 1) * ((den + 1) if model else 1)
        if mode == "fresh":
            per_state += (n + 1) * (den + 1)
        # a binomial kernel entry (an exp) costs about five multiply-adds
        cost += rows * width * per_state + 5 * (den + 1) * (n + 1)
    return cost


def category_chain(workflow: Workflow, n: int, p: float, iterations: int
                   ) -> list[tuple[int, np.ndarray]]:
    """Law of one category's count in model ``t``: ``[(m_t, pmf over 0..m_t), ...]``.

    Model ``t`` gives the category frequency ``k / m_t`` with probability ``pmf[k]``;
    ``p`` is the category's truth probability.  Covers rules with ``synthetic=latest``
    or ``all`` (see the module docstring); :class:`CollapseError` otherwise.

    Examples
    --------
    >>> m, pmf = category_chain(Workflow.parse("replace"), 2, 0.5, 2)[1]
    >>> m, pmf.round(4).tolist()
    (2, [0.375, 0.25, 0.375])
    """
    mode = _dp_mode(workflow)
    if mode is None:
        raise CollapseError(f"workflow {workflow.label}: one category's count is not a "
                            f"one-dimensional chain (synthetic=window:K, K >= 2)")
    window = workflow.window
    m = workflow.subsample_size(n)
    strata = workflow.stratified_counts(n)
    tables = _Tables()
    real_pmf = tables.binomial(n, np.array([p]))[0]
    out = [(n, real_pmf)]
    if iterations == 1:
        return out
    first = tables.batch(n, n)  # batch 1 given the real count
    if mode == "merged":
        state = np.zeros((1, 2 * n + 1))
        for r in range(n + 1):
            state[0, r:r + n + 1] += real_pmf[r] * first[r]
    elif mode == "joint":
        state = real_pmf[:, None] * first
    else:
        state = (real_pmf @ first)[None, :]
    for t in range(2, iterations + 1):
        k_batches = len(workflow.synthetic_batches(t))
        synth_pool = k_batches * n
        width = state.shape[1]
        xs = np.arange(width)
        # model[r, x, k]: law of the model's count k (out of den) given the state
        if mode == "merged":
            pool = t * n
            if m is None:
                den, model = pool, None
            else:
                den, model = m, tables.hypergeom(pool, xs, m)[None]
        elif mode == "joint":
            rs = np.arange(n + 1)
            if strata is None and m is None:
                den, model = n + synth_pool, None
            elif strata is None:
                den = m
                full = tables.hypergeom(n + synth_pool, np.arange(n + synth_pool + 1), m)
                model = full[rs[:, None] + xs[None, :]]
            else:
                den = m
                model = _convolve_rows(tables.hypergeom(n, rs, strata[0])[:, None, :],
                                       tables.hypergeom(synth_pool, xs, strata[1])[None, :, :])
        elif mode == "fresh":
            fresh = real_pmf
            if m is None:
                den = n + synth_pool
                model = np.zeros((1, width, den + 1))
                for f in range(n + 1):
                    model[0, xs, xs + f] += fresh[f]
            elif strata is None:
                den = m
                full = tables.hypergeom(n + synth_pool, np.arange(n + synth_pool + 1), m)
                model = np.zeros((1, width, m + 1))
                for f in range(n + 1):
                    model[0] += fresh[f] * full[xs + f]
            else:
                den = m
                thinned = tables.binomial(strata[0], np.array([p]))  # a subset of a binomial sample
                model = _convolve_rows(thinned[:, None, :],
                                       tables.hypergeom(synth_pool, xs, strata[1])[None])
        else:  # real=none: the synthetic pool alone (a stratified subset has no real part)
            if m is None:
                den, model = synth_pool, None
            else:
                den, model = m, tables.hypergeom(synth_pool, xs, m)[None]
        batch = tables.batch(n, den)  # batch[k, b]
        # by_model[r, k]: the state's mass on model count k (the real count r kept apart)
        rows = state.shape[0]
        if model is None:
            by_model = np.zeros((rows, den + 1))
            for r in range(rows):
                shift = r if mode == "joint" else 0
                by_model[r, shift:shift + width] = state[r]
        else:
            weighted = state[:, :, None] * model
            by_model = weighted.sum(axis=1)
        out.append((den, by_model.sum(axis=0)))
        if t == iterations:
            break
        if window == 1:  # the next state is the new batch's count (with r)
            state = by_model @ batch
            continue
        # the pool gains the new batch: joint[r, x, b] = P(state (r, x), batch b)
        if model is None:
            joint = np.empty((rows, width, n + 1))
            for r in range(rows):
                shift = r if mode == "joint" else 0
                joint[r] = state[r][:, None] * batch[shift:shift + width]
        else:
            joint = weighted @ batch
        grown = np.zeros((rows, width + n))
        for b in range(n + 1):
            grown[:, b:b + width] += joint[:, :, b]
        state = grown
    return out


def _category_terms(chain: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Per model: ``E[-f log f]``, ``P(f > 0)``, ``P(f in {0, 1})``, ``E|f - p|``-ready pmfs."""
    entropy, alive, extreme = [], [], []
    for den, pmf in chain:
        f = np.arange(den + 1) / den
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(f > 0, -f * np.log(np.where(f > 0, f, 1.0)), 0.0)
        entropy.append(float(np.dot(pmf, h)))
        alive.append(float(1.0 - pmf[0]))
        extreme.append(float(pmf[0] + pmf[-1]))
    return np.array(entropy), np.array(alive), np.array(extreme)


def metric_maxima(support: int, sizes: np.ndarray, seen: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """The largest diversity, entropy and number of categories of a model fitted on
    ``sizes[t]`` points over at most ``k = min(support, sizes[t], seen[t])`` categories.

    ``seen[t]`` is the number of real points drawn up to model ``t``: generated points
    repeat categories of real ones, so no model has more categories than that.
    Gini-Simpson diversity and entropy are Schur-concave, so among count vectors of
    ``N`` points over ``k`` categories the most even one, ``r`` counts of ``q + 1`` and
    ``k - r`` of ``q`` (``N = q k + r``), maximises both:

        1 - (r (q+1)^2 + (k - r) q^2) / N^2,   -(r (q+1)/N) log((q+1)/N) - ((k-r) q/N) log(q/N).

    With ``N <= k`` that is ``N`` distinct points: ``1 - 1/N`` and ``log N``.

    Examples
    --------
    >>> out = metric_maxima(10, np.array([3, 10, 25]))
    >>> out["surviving_categories"].tolist()
    [3.0, 10.0, 10.0]
    >>> [round(v, 12) for v in out["gini_diversity"].tolist()]   # 1 - 1/3, 1 - 1/10, 1 - 65/625
    [0.666666666667, 0.9, 0.896]
    >>> metric_maxima(10, np.array([4]), seen=np.array([2]))["gini_diversity"].tolist()
    [0.5]
    """
    N = np.asarray(sizes, dtype=np.int64)
    k = np.minimum(support, N)
    if seen is not None:
        k = np.minimum(k, np.asarray(seen, dtype=np.int64))
    q, r = np.divmod(N, k)
    high, low = (q + 1) / N, q / N
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(r * high * np.log(high) + (k - r) * np.where(q > 0, low * np.log(low), 0.0))
    return {
        GINI_DIVERSITY: 1.0 - (r * high**2 + (k - r) * low**2),
        ENTROPY: entropy,
        SURVIVING_CATEGORIES: k.astype(np.float64),
    }


# --------------------------------------------------------------------------- partitions


def _compositions(total: int, parts: int) -> np.ndarray:
    """All vectors of ``parts`` non-negative integers summing to ``total`` (stars and bars)."""
    if parts == 1:
        return np.array([[total]], dtype=np.int64)
    bars = np.array(list(itertools.combinations(range(total + parts - 1), parts - 1)),
                    dtype=np.int64)
    padded = np.concatenate([np.full((len(bars), 1), -1), bars,
                             np.full((len(bars), 1), total + parts - 1)], axis=1)
    return np.diff(padded, axis=1) - 1


def _partitions(total: int, most: int) -> list[tuple[int, ...]]:
    """Partitions of ``total`` into at most ``most`` parts, parts in decreasing order."""
    out: list[tuple[int, ...]] = []

    def extend(rest: int, largest: int, prefix: tuple[int, ...]) -> None:
        if rest == 0:
            out.append(prefix)
            return
        if len(prefix) == most:
            return
        for part in range(min(rest, largest), 0, -1):
            extend(rest - part, part, prefix + (part,))

    extend(total, total, ())
    return out


def _lump(comps: np.ndarray, log_probs: np.ndarray, index: dict[tuple[int, ...], int]
          ) -> np.ndarray:
    """Sum ``exp(log_probs[c, s])`` over compositions ``c`` with the same partition."""
    ordered = -np.sort(-comps, axis=1)
    base = int(ordered.max()) + 1
    if base ** ordered.shape[1] < 2**62:  # one integer per row: faster than unique rows
        codes = ordered @ (base ** np.arange(ordered.shape[1], dtype=np.int64))
        _keys, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        unique = ordered[first]
    else:
        unique, inverse = np.unique(ordered, axis=0, return_inverse=True)
    target = np.array([index[tuple(int(v) for v in row if v > 0)] for row in unique])
    probs = np.exp(log_probs)
    rows = target[inverse.ravel()]
    out = np.zeros((log_probs.shape[1], len(index)))
    for s in range(log_probs.shape[1]):
        out[s] = np.bincount(rows, weights=probs[:, s], minlength=len(index))
    return out


def _log_multinomial(comps: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(comps.sum(axis=1) + 1.0) - gammaln(comps + 1.0).sum(axis=1)


def _partition_counts(total: int, most: int) -> list[int]:
    """``counts[j]``: partitions of ``total`` into exactly ``j`` parts, ``j = 0..most``.

    ``p(m, j) = p(m - 1, j - 1) + p(m - j, j)`` (remove a part equal to 1, or subtract 1
    from every part), without listing them.
    """
    table = [[0] * (most + 1) for _ in range(total + 1)]
    table[0][0] = 1
    for m in range(1, total + 1):
        for j in range(1, min(m, most) + 1):
            table[m][j] = table[m - 1][j - 1] + table[m - j][j]
    return table[total]


def _partition_cost(n: int, alive: int) -> int:
    """Numbers held to build the partition chain: every composition enumerated, times
    its length (the initial law), or times the source partitions it is weighed against
    (every row).

    Exact up to :data:`PARTITION_BUDGET`; beyond it a lower bound that already exceeds
    the budget, found in ``O(alive)`` steps (counting the partitions exactly takes
    ``O(n alive)``, which for ``n = 1e15`` would never end).  Counting compositions
    alone let ``K = 600``, ``n = 2`` (180,300 compositions of 600 numbers) take 3 GB.
    """
    cost = math.comb(n + alive - 1, alive - 1) * alive
    # p(n, j) >= C(n - 1, j - 1) / j!: every partition into j parts orders into at most
    # j! compositions into j positive parts
    bound = cost
    for j in range(1, min(alive, n) + 1):
        if bound > PARTITION_BUDGET:
            return bound
        bound += math.comb(n + j - 1, j - 1) * math.comb(n - 1, j - 1) // math.factorial(j)
    if bound > PARTITION_BUDGET:
        return bound
    most = min(alive, n)  # partitions of n have at most n parts
    counts = _partition_counts(n, most)
    for j in range(1, most + 1):
        cost += math.comb(n + j - 1, j - 1) * (counts[j] + j)
    return cost


@dataclass(frozen=True)
class _PartitionChain:
    states: list[tuple[int, ...]]
    initial: np.ndarray  # law of model 1's partition
    transition: np.ndarray  # row-stochastic


def _partition_chain(n: int, p0: np.ndarray) -> _PartitionChain:
    positive = p0[p0 > 0]
    alive = len(positive)
    states = _partitions(n, alive)
    index = {state: i for i, state in enumerate(states)}
    comps = _compositions(n, alive)
    initial = _lump(comps, (_log_multinomial(comps) + comps @ np.log(positive))[:, None],
                    index)[0]
    transition = np.zeros((len(states), len(states)))
    for j in range(1, alive + 1):
        sources = [i for i, state in enumerate(states) if len(state) == j]
        if not sources:
            continue
        comps = _compositions(n, j)
        logs = np.log(np.array([states[i] for i in sources], dtype=np.float64) / n)
        log_probs = _log_multinomial(comps)[:, None] + comps @ logs.T
        transition[sources] = _lump(comps, log_probs, index)
    return _PartitionChain(states, initial, transition)


def collapsed_probabilities(categories: int, n: int, truth: Any, iterations: int
                            ) -> np.ndarray | None:
    """``P(model t has one category)`` under replace, ``t = 1..iterations``, by the
    partition chain; ``None`` when the chain exceeds :data:`PARTITION_BUDGET`."""
    p0 = check_truth(truth, categories)
    n = check_int("n", n, 2)
    iterations = check_int("iterations", iterations, 1)
    alive = int((p0 > 0).sum())
    if alive == 1:
        return np.ones(iterations)
    if _partition_cost(n, alive) > PARTITION_BUDGET:
        return None
    chain = _partition_chain(n, p0)
    absorbed = chain.states.index((n,))
    law = chain.initial
    out = np.empty(iterations)
    for t in range(iterations):
        out[t] = law[absorbed]
        law = law @ chain.transition
    return np.minimum(out, 1.0)


@dataclass(frozen=True)
class CollapseTime:
    """Expected model-fitting iteration of total collapse under replace.

    ``exact`` is ``E T = 1 + sum_{t >= 1} P(model t not collapsed)`` from the partition
    chain (``None`` where it is too large to build); ``kimura`` is the diffusion
    approximation ``-2 n sum_i (1 - p0_i) ln(1 - p0_i)``.
    """

    exact: float | None
    kimura: float
    notes: tuple[str, ...]


def kimura_collapse_time(n: int, p0: np.ndarray) -> float:
    """Kimura's ``E T ~ -2 n sum_i (1 - p_i) ln(1 - p_i)`` (generations, ``p_i < 1``)."""
    terms = [(1 - p) * math.log1p(-p) for p in p0.tolist() if 0 < p < 1]
    return -2.0 * n * math.fsum(terms)


def collapse_time(*, categories: int, n: int, truth: Any) -> CollapseTime:
    """Expected time to total collapse under replace: exact (small ``K, n``) and Kimura's.

    Parameters
    ----------
    categories : int
        ``K >= 2``.
    n : int
        Points per model, ``>= 2``.
    truth : str or array_like
        See :func:`check_truth`.

    Returns
    -------
    CollapseTime
        ``exact`` solves ``(I - Q) tau = 1`` on the non-collapsed partitions of ``n``
        (double precision); ``kimura`` stands beside it.

    Examples
    --------
    >>> result = collapse_time(categories=2, n=2, truth="uniform")
    >>> round(result.exact, 12)  # P(T = 1) = 1/2, then 1/2 per step: E T = 1 + 1 = 2
    2.0
    """
    p0 = check_truth(truth, categories)
    n = check_int("n", n, 2)
    kimura = kimura_collapse_time(n, p0)
    notes = [(f"kimura = -2 n sum_i (1 - p_i) ln(1 - p_i) = {kimura:.6g} (diffusion "
             f"approximation, accurate for large n)")]
    alive = int((p0 > 0).sum())
    if alive == 1:
        return CollapseTime(1.0, kimura, tuple(notes + [("one category has all the mass: "
                                                        "model 1 is already collapsed")]))
    if _partition_cost(n, alive) > PARTITION_BUDGET:
        notes.append(f"exact collapse time not computed: the partition chain of n = {n} "
                     f"into {alive} categories exceeds {PARTITION_BUDGET:.0e} operations; "
                     f"use Monte Carlo (1 + sum_t (1 - mean collapsed_t))")
        return CollapseTime(None, kimura, tuple(notes))
    chain = _partition_chain(n, p0)
    absorbed = chain.states.index((n,))
    keep = [i for i in range(len(chain.states)) if i != absorbed]
    q = chain.transition[np.ix_(keep, keep)]
    tau = np.linalg.solve(np.eye(len(keep)) - q, np.ones(len(keep)))
    exact = 1.0 + float(chain.initial[keep] @ tau)
    notes.append(f"exact = 1 + pi_1^T (I - Q)^-1 1 over {len(keep)} non-collapsed "
                 f"partitions of n = {n} (double precision)")
    return CollapseTime(exact, kimura, tuple(notes))


# --------------------------------------------------------------------------- theory


def discrete_theory(workflow: Workflow | str, *, categories: int, n: int, truth: Any,
                    iterations: int) -> tuple[dict[str, tuple[float, ...]], tuple[str, ...]]:
    """Exact expected metrics of models ``t = 1..iterations`` (see the module docstring).

    Parameters
    ----------
    workflow : Workflow or str
        The rule for ``D_t``.
    categories : int
        ``K >= 2``.
    n : int
        Points drawn from every model, ``>= 2``.
    truth : str or array_like
        ``"uniform"``, ``"zipf"`` or a probability vector of length ``K``.
    iterations : int
        Number of models, ``>= 1``.

    Returns
    -------
    values : dict
        ``gini_diversity`` for every rule; ``entropy`` (nats) and
        ``surviving_categories`` for ``synthetic=latest``/``all`` (while the dynamic
        programme stays under :data:`DP_BUDGET`); ``collapsed`` where exact (see the
        module docstring).  ``tv_distance`` is never present (Monte Carlo only).
    notes : tuple of str
        Why a metric is absent.

    Examples
    --------
    >>> values, _ = discrete_theory("accumulate", categories=10, n=10, truth="uniform",
    ...                             iterations=2)
    >>> round(values["gini_diversity"][1] / 0.9, 6)  # (1 - 1/10)(1 - 1/40)
    0.8775
    """
    categories = check_int("categories", categories, 2)
    n = check_int("n", n, 2)
    iterations = check_int("iterations", iterations, 1)
    p0 = check_truth(truth, categories)
    workflow = as_workflow(workflow, n)
    notes: list[str] = []
    h0 = _gini0(p0)
    ratios = _precise_gini_ratios(workflow, n, iterations)
    values: dict[str, tuple[float, ...]] = {
        GINI_DIVERSITY: tuple(max(0.0, float(h0 * r)) for r in ratios)}

    extremes = None
    mode = _dp_mode(workflow)
    if mode is None:
        notes.append(f"{ENTROPY} and {SURVIVING_CATEGORIES} have no exact theory for "
                     f"{workflow.label}: a window of K >= 2 batches makes one category's "
                     f"count a chain in K dimensions; Monte Carlo only")
    elif _dp_cost(workflow, n, iterations) * len(np.unique(p0)) > DP_BUDGET:
        notes.append(f"{ENTROPY} and {SURVIVING_CATEGORIES} omitted: the exact dynamic "
                     f"programme for n = {n} over {iterations} iterations exceeds "
                     f"{DP_BUDGET:.0e} operations; Monte Carlo only")
        mode = None
    if mode is not None:
        entropy = np.zeros(iterations)
        alive = np.zeros(iterations)
        levels, multiplicity = np.unique(p0, return_counts=True)
        for p, count in zip(levels.tolist(), multiplicity.tolist()):
            if p == 0:
                continue
            h, a, e = _category_terms(category_chain(workflow, n, p, iterations))
            entropy += count * h
            alive += count * a
            extremes = e if extremes is None else extremes
        values[ENTROPY] = tuple(float(v) for v in np.maximum(entropy, 0.0))
        values[SURVIVING_CATEGORIES] = tuple(float(v) for v in alive)

    collapsed = _collapsed(workflow, n, p0, iterations, extremes, notes)
    if collapsed is not None:
        values[COLLAPSED] = tuple(float(v) for v in collapsed)
    notes.append(f"{TV_DISTANCE} has no exact theory here; Monte Carlo only")
    return values, tuple(notes)


def _collapsed(workflow: Workflow, n: int, p0: np.ndarray, iterations: int,
               extremes: np.ndarray | None, notes: list[str]) -> np.ndarray | None:
    alive = int((p0 > 0).sum())
    first = math.fsum(float(p) ** n for p in p0.tolist())
    if alive == 1:
        return np.ones(iterations)
    if workflow.real == "original" and workflow.size is None:
        notes.append(f"{COLLAPSED}: the real sample is in every training set, so a model "
                     f"collapses exactly when the real sample has one category "
                     f"(probability sum_i p_i^n), at every iteration")
        return np.full(iterations, first)
    if alive == 2 and extremes is not None:
        return np.clip(extremes, 0.0, 1.0)
    if workflow == Workflow.parse("replace") or (
            workflow.real == "none" and workflow.window == 1
            and workflow.subsample_size(n) in (None, n)):
        out = collapsed_probabilities(len(p0), n, p0, iterations)
        if out is None:
            notes.append(f"{COLLAPSED} omitted: the partition chain of n = {n} exceeds "
                         f"{PARTITION_BUDGET:.0e} operations; Monte Carlo only")
        return out
    notes.append(f"{COLLAPSED} has no exact theory for {workflow.label} with {alive} "
                 f"categories; Monte Carlo only")
    return None
