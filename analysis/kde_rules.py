r"""Exact expected MISE of iterated Gaussian-kernel density estimation under every workflow rule.

Setting.  Model ``t`` is the Gaussian KDE with fixed bandwidth ``h`` of its training set
``D_t``; sampling from it picks a uniform point of ``D_t`` (the *parent*) and adds
``N(0, h^2 I_d)`` noise.  The rule (:class:`~collapse.analysis.workflows.Workflow`) builds
``D_t`` (``t >= 2``) from batches of ``n`` points: the real part (the first real batch ``R``
under ``real=original``; a fresh real batch ``F_t``, ``n`` new points from the truth, under
``real=fresh``; nothing under ``real=none``), and the synthetic batches ``S_j`` of the models
``j`` in the window ``W_t`` (all of ``1..t-1`` or the ``K`` newest).  ``D_1`` = the ``n`` real
points.  Real points are *roots* (0 noise steps); following parents back, every synthetic point
reaches one root.

Parent probabilities.  With ``N_r`` real and ``N_s = n |W_t|`` synthetic points in the pool
(``N = N_r + N_s``) and ``m = |D_t|``, a given pool point is the parent of a point of ``S_t``
with probability ``pi = P(point in D_t) / m``:

* the whole pool: ``pi = 1/N``; a simple random ``m``-subsample: ``(m/N)/m = 1/N`` as well;
* stratified, ``m_r = round-half-up(lambda m)`` real and ``m_s = m - m_r`` synthetic points:
  ``pi_r = m_r/(N_r m)`` for a real point, ``pi_s = m_s/(N_s m)`` for a synthetic one.

Batch ``C`` of the pool holds the parent with probability ``rho(C) = n pi(C)``.  Two points of
``S_t`` pick their parents from the same ``D_t``: the same parent with probability ``1/m``,
otherwise a uniform distinct pair of ``D_t``, whose batches follow the pair weights below.

Lineages.  ``K`` = noise steps from a point to its root.  A uniform point of ``D_t`` has
``P(K_D = k) = rho_R [k = 0] + sum_{j in W_t} rho(S_j) P(K_{S_j} = k)`` and a point of ``S_t``
has ``K = 1 + K_D``.  Under accumulate this gives ``P(K = k) = |s(t, k)| / t!`` (unsigned
Stirling numbers of the first kind; see :mod:`collapse.analysis.kde_lineage`).

Pairs.  For two distinct points, ``F(B, C)`` = the law of ``(coalesced, S)`` (as in
:mod:`collapse.analysis.kde_pairs`: coalesced with ``S`` steps between them through their most
recent common ancestor point, or distinct roots with ``S`` steps in total), which depends only
on the batches ``B, C`` of the two points.  Two real points have ``(False, 0)``.  For a point of
``S_t`` and an earlier point ``y`` of batch ``C`` (step the younger point to its parent):

.. math::

    F(S_t, C) = \pi_t(C)\, \delta_{(\mathrm{True}, 1)} + \mathrm{shift}_1\Big[
        \sum_{C' \in \mathrm{pool}_t} \rho_t(C') F(C', C) - \pi_t(C) F(C, C)\Big],

where ``F(C, C)`` is the law of a distinct pair within ``C`` and the last term removes the
parent ``y`` itself (``pi_t(C) = 0`` if ``C`` is not in the pool).  A fresh batch ``F_t`` is
independent of everything before it, so ``F(F_t, C) = (False, K_C)``.  Within one synthetic
batch,

.. math::

    F(S_t, S_t) = \tfrac{1}{m}\, \delta_{(\mathrm{True}, 2)}
        + \big(1 - \tfrac{1}{m}\big)\, \mathrm{shift}_2\, U_t,

with ``U_t`` the law of a uniform distinct pair of ``D_t``: whole pool or simple subsample,
batch pair ``(C, C)`` with weight ``n(n-1)/(N(N-1))`` and ``{C, C'}`` with ``2 n^2/(N(N-1))``
(a uniform pair of a uniform subsample is a uniform pair of the pool); stratified, both real
with ``m_r(m_r-1)/(m(m-1))``, both synthetic with ``m_s(m_s-1)/(m(m-1))`` (then a uniform
pair of the synthetic part), one of each with ``2 m_r m_s/(m(m-1))``.

State and cost.  ``synthetic=all`` keeps, for every earlier synthetic batch ``j``, the running
column sum ``sum_{l != j} F(S_l, S_j)``, ``O(T L)`` numbers for ``T`` iterations and
``L = 2T + 1`` values of ``S``, and costs ``O(T^2 L)`` in all, as the paper's accumulate
programme; ``synthetic=window:K`` keeps the band ``F(S_i, S_j)`` of the ``K`` batches in the
window (``O(K^2 L)`` numbers) and costs ``O(T K^2 L)``.  The same code runs on float64 arrays
(the MISE) or on object arrays of :class:`fractions.Fraction` (exact laws).

Expected MISE.  As in :mod:`collapse.analysis.kde`, with ``Omega(v) = E phi_{sqrt v}(r - r')``
for ``r, r'`` iid from the truth and ``m = |D_t|``:

    E int (p_hat_t - p0)^2 = (1/m)(4 pi h^2)^(-d/2) + (1 - 1/m) E_{U_t}[coal (2 pi (S+2) h^2)^(-d/2)
        + (1 - coal) Omega((S+2) h^2)] - 2 E Omega((K_D + 1) h^2) + Omega(0)

in units of inverse data volume (``length^-d``).

Examples
--------
>>> from collapse.analysis.truths import gaussian_truth
>>> values = rule_expected_mise("fresh", n=10, bandwidth=0.5, iterations=3,
...                             truth=gaussian_truth(1))
>>> [round(v, 6) for v in values]
[0.033673, 0.024704, 0.024805]
>>> rule_pair_law("real=original,synthetic=latest", n=2, t=2)[(True, 1)]
Fraction(1, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from collapse.analysis.checks import check_int, check_real
from collapse.analysis.errors import CollapseError
from collapse.analysis.kde import truth_overlap
from collapse.analysis.truths import GaussianMixture
from collapse.analysis.vocabulary import KDE, MISE, TEST_NLL
from collapse.analysis.workflows import Workflow

__all__ = [
    "RuleGenealogy",
    "kde_rule_theory",
    "rule_data_point_law",
    "rule_expected_mise",
    "rule_genealogy",
    "rule_lineage_law",
    "rule_pair_law",
]


def _as_workflow(workflow: Workflow | str) -> Workflow:
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, str):
        return Workflow.parse(workflow)
    raise CollapseError(f"workflow must be a Workflow, a preset name or a spec (got {workflow!r})")


# --------------------------------------------------------------------------- pools


@dataclass(frozen=True)
class _Pool:
    """What model ``t`` fits: weights of its batches as parents and as pair members."""

    size: int  # m = |D_t|
    real: bool  # a real batch (R or F_t) is in the pool
    synthetic: range  # indices j of the synthetic batches S_j in the pool
    rho_r: Any  # P(parent in the real batch)
    rho_s: Any  # P(parent in a given synthetic batch)
    pi_r: Any  # P(parent = a given real point)
    pi_s: Any  # P(parent = a given synthetic point)
    c_rr: Any  # weight of a distinct real-real pair in U_t
    c_same: Any  # weight of each within-synthetic-batch pair law F(S_j, S_j)
    c_cross: Any  # weight of each F(S_i, S_j), i != j
    c_rs: Any  # weight of each F(S_j, R)


def _pool(rule: Workflow, n: int, t: int, one: Any) -> _Pool:
    zero = 0 * one
    if t == 1:
        return _Pool(n, True, range(0), one, zero, one / n, zero, one, zero, zero, zero)
    batches = rule.synthetic_batches(t)
    k_s = len(batches)
    real = rule.real != "none"
    n_r, n_s = (n if real else 0), n * k_s
    big_n = n_r + n_s
    counts = rule.stratified_counts(n)
    m = rule.training_size(n, t)
    if counts is None:
        pi = one / big_n
        same = one * n * (n - 1) / (big_n * (big_n - 1))
        cross = one * 2 * n * n / (big_n * (big_n - 1))
        return _Pool(m, real, batches, n * pi if real else zero, n * pi, pi if real else zero,
                     pi, same if real else zero, same, cross, cross if real else zero)
    m_r, m_s = counts
    pi_r = one * m_r / (n_r * m) if m_r else zero
    pi_s = one * m_s / (n_s * m)
    if m >= 2:
        pairs = one * m * (m - 1)
        w_rr, w_ss, w_rs = m_r * (m_r - 1) / pairs, m_s * (m_s - 1) / pairs, 2 * m_r * m_s / pairs
    else:  # one point: no distinct pair, and its pair law is never used
        w_rr = w_ss = w_rs = zero
    return _Pool(m, real, batches, n * pi_r, n * pi_s, pi_r, pi_s, w_rr,
                 w_ss * n * (n - 1) / (n_s * (n_s - 1)), w_ss * 2 * n * n / (n_s * (n_s - 1)),
                 w_rs / k_s)


# --------------------------------------------------------------------------- the programme


@dataclass(frozen=True)
class RuleGenealogy:
    """Lineage and pair laws of a rule for ``t = 1..iterations`` (arrays over ``t``).

    Float64 arrays, or object arrays of :class:`fractions.Fraction` with ``exact=True``.

    Attributes
    ----------
    sizes : tuple of int
        ``|D_t|``.
    drawn : ndarray, shape (T, T + 1)
        ``drawn[t-1, k] = P(K = k)`` for a point drawn from model ``t``.
    data_point : ndarray, shape (T, T + 1)
        ``P(K_D = k)`` for a uniform point of ``D_t``.
    distinct, coalesced : ndarray, shape (T, 2T + 1)
        ``P(not coalesced, S)`` and ``P(coalesced, S)`` for a uniform distinct pair of
        ``D_t`` (rows are zero where ``|D_t| = 1``: there is no pair).
    """

    sizes: tuple[int, ...]
    drawn: np.ndarray
    data_point: np.ndarray
    distinct: np.ndarray
    coalesced: np.ndarray


def _shift(law: np.ndarray, steps: int) -> np.ndarray:
    """Add ``steps`` noise steps: move the mass of ``S`` to ``S + steps`` (last axis)."""
    out = np.zeros_like(law)
    out[..., steps:] = law[..., :-steps]
    return out


def rule_genealogy(workflow: Workflow | str, n: int, iterations: int, *,
                   exact: bool = False) -> RuleGenealogy:
    """The exact lineage and pair laws of every model ``t <= iterations`` of a rule.

    Runs the dynamic programme of the module docstring, in float64 or (``exact=True``)
    in Fractions.  ``synthetic=all`` (or a window that drops no batch before
    ``iterations``) keeps running column sums; a window keeps the band of its ``K``
    batches in a ring of ``K`` slots (batch ``j`` in slot ``j mod K``).

    Parameters
    ----------
    workflow : Workflow or str
    n : int
        Points per batch, ``>= 2``.
    iterations : int
    exact : bool

    Returns
    -------
    RuleGenealogy

    Examples
    --------
    >>> g = rule_genealogy("accumulate", 3, 3, exact=True)
    >>> [str(p) for p in g.drawn[2]]
    ['0', '1/3', '1/2', '1/6']
    """
    rule = _as_workflow(workflow)
    n = check_int("n", n, 2)
    big_t = check_int("iterations", iterations, 1)
    rule.check(n)
    one: Any = Fraction(1) if exact else 1.0
    dtype = object if exact else float
    zero = Fraction(0) if exact else 0.0
    width_k, width_s = big_t + 1, 2 * big_t + 1

    def zeros(*shape: int) -> np.ndarray:
        return np.full(shape, zero, dtype=dtype)

    drawn, data_point = zeros(big_t, width_k), zeros(big_t, width_k)
    pair_laws = zeros(big_t, 2, width_s)  # [t-1, coalesced, S]
    root_pair = zeros(2, width_s)
    root_pair[0, 0] = one  # two distinct real points: distinct roots, no steps
    child = zeros(2, width_s)
    child[1, 1] = one  # the pair (point, its parent)
    siblings = zeros(2, width_s)
    siblings[1, 2] = one  # two children of one parent
    original, fresh = rule.real == "original", rule.real == "fresh"
    window = rule.window
    ring = window is not None and window < big_t - 1
    slots = window if ring else big_t  # synthetic batch j lives in slot j mod slots
    lineage = zeros(slots, width_k)  # K law of each synthetic batch in the state
    within = zeros(slots, 2, width_s)  # F(S_j, S_j)
    with_real = zeros(slots, 2, width_s)  # F(S_j, R) (real=original)
    if ring:
        band = zeros(slots, slots, 2, width_s)  # F(S_i, S_j), i != j, in the window
    else:
        off_column = zeros(slots, 2, width_s)  # sum_{l != j} F(S_l, S_j) over l so far
        off_total = zeros(2, width_s)  # sum_{l < l'} F(S_l, S_l')
    sizes = []
    for t in range(1, big_t + 1):
        pool = _pool(rule, n, t, one)
        sizes.append(pool.size)
        live = np.array([j % slots for j in pool.synthetic], dtype=int)
        # -- the model's training set: lineage of a uniform point, law of a uniform pair
        point = zeros(width_k)
        point[0] = pool.rho_r
        if live.size:
            point = point + lineage[live].sum(axis=0) * pool.rho_s
        data_point[t - 1] = point
        drawn[t - 1, 1:] = point[:-1]
        if ring:
            # Slots outside the window are empty (zero), and the band is symmetric with a
            # zero diagonal, so whole-array sums are sums over the window's pairs.
            band_column = band.sum(axis=0)  # sum_{l != j} F(S_l, S_j)
        if t == 1:
            uniform = root_pair.copy()
        else:
            if ring:
                cross_sum = band_column.sum(axis=0) / 2  # each unordered pair counted twice
            else:
                cross_sum = off_total
            uniform = root_pair * pool.c_rr + within[live].sum(axis=0) * pool.c_same \
                + cross_sum * pool.c_cross
            if original:
                uniform = uniform + with_real[live].sum(axis=0) * pool.c_rs
            elif fresh:  # F(S_j, F_t) = (False, K_j): the fresh points are new roots
                uniform[0, :width_k] += lineage[live].sum(axis=0) * pool.c_rs
        pair_laws[t - 1] = uniform
        if t == big_t:
            break
        # -- the batch S_t drawn from model t
        slot = t % slots
        same = siblings * (one / pool.size) + _shift(uniform, 2) * (1 - one / pool.size)
        new_real = zeros(2, width_s)
        if original:
            # F(S_t, R): parent is the real point itself, another real point, or synthetic.
            inner = root_pair * (pool.rho_r - pool.pi_r)
            if live.size:
                inner = inner + with_real[live].sum(axis=0) * pool.rho_s
            new_real = child * pool.pi_r + _shift(inner, 1)
        if live.size:
            # F(C', S_j) summed over the pool's batches C', for each S_j in the pool.
            if ring:
                column = band_column[live] + within[live]
            else:
                column = off_column[live] + within[live]
            inner = column * pool.rho_s - within[live] * pool.pi_s
            if original:
                inner = inner + with_real[live] * pool.rho_r
            elif fresh:
                inner[:, 0, :width_k] += lineage[live] * pool.rho_r
            row = child[None] * pool.pi_s + _shift(inner, 1)  # F(S_t, S_j), j in pool
        else:
            row = zeros(0, 2, width_s)
        if ring:
            band[slot, :] = zero
            band[:, slot] = zero
            keep = live != slot  # S_{t-K} leaves the window: its slot goes to S_t
            band[slot, live[keep]] = row[keep]
            band[live[keep], slot] = row[keep]
        else:
            if live.size:
                off_column[live] += row
                off_column[slot] = row.sum(axis=0)
                off_total = off_total + row.sum(axis=0)
        lineage[slot] = drawn[t - 1]
        within[slot] = same
        with_real[slot] = new_real
    return RuleGenealogy(tuple(sizes), drawn, data_point, pair_laws[:, 0, :].copy(),
                         pair_laws[:, 1, :].copy())


# --------------------------------------------------------------------------- exact laws


def _check_t(t: Any) -> int:
    return check_int("t", t, 1)


def rule_lineage_law(workflow: Workflow | str, n: int, t: int) -> dict[int, Fraction]:
    """Exact law ``{k: P(K = k)}`` of the steps from a point drawn from model ``t`` to its root.

    Examples
    --------
    >>> rule_lineage_law("fresh", n=4, t=3)
    {1: Fraction(1, 2), 2: Fraction(1, 4), 3: Fraction(1, 4)}
    """
    t = _check_t(t)
    row = rule_genealogy(workflow, n, t, exact=True).drawn[t - 1]
    return {k: p for k, p in enumerate(row) if p != 0}


def rule_data_point_law(workflow: Workflow | str, n: int, t: int) -> dict[int, Fraction]:
    """Exact law ``{k: P(K_D = k)}`` for a uniform point of the training set ``D_t``.

    Examples
    --------
    >>> rule_data_point_law("real=original,synthetic=window:2", n=3, t=4)
    {0: Fraction(1, 3), 1: Fraction(5, 18), 2: Fraction(1, 3), 3: Fraction(1, 18)}
    """
    t = _check_t(t)
    row = rule_genealogy(workflow, n, t, exact=True).data_point[t - 1]
    return {k: p for k, p in enumerate(row) if p != 0}


def rule_pair_law(workflow: Workflow | str, n: int, t: int) -> dict[tuple[bool, int], Fraction]:
    """Exact law ``{(coalesced, S): probability}`` of a uniform distinct pair of ``D_t``.

    ``coalesced = True``: the two points share an ancestor point and ``S`` steps separate
    them (``y - y' ~ N(0, S h^2 I)``); ``False``: distinct real roots and ``S`` steps in
    total (``y - y' = r - r' + N(0, S h^2 I)``).  Needs ``|D_t| >= 2``.

    Examples
    --------
    >>> law = rule_pair_law("replace", n=2, t=2)
    >>> law
    {(False, 2): Fraction(1, 2), (True, 2): Fraction(1, 2)}
    """
    t = _check_t(t)
    genealogy = rule_genealogy(workflow, n, t, exact=True)
    if genealogy.sizes[t - 1] < 2:
        raise CollapseError(f"workflow key size: D_{t} holds {genealogy.sizes[t - 1]} point, "
                            f"so it has no pair of distinct points")
    law = {(False, s): p for s, p in enumerate(genealogy.distinct[t - 1]) if p != 0}
    law.update({(True, s): p for s, p in enumerate(genealogy.coalesced[t - 1]) if p != 0})
    return dict(sorted(law.items()))


# --------------------------------------------------------------------------- expected MISE


def _check_bandwidth(bandwidth: Any) -> float:
    return check_real("bandwidth", bandwidth, low=0)


def rule_expected_mise(workflow: Workflow | str, *, n: int, bandwidth: float, iterations: int,
                       truth: GaussianMixture) -> list[float]:
    """Exact ``E int (p_hat_t - p0)^2 dx`` for ``t = 1..iterations`` (units ``length^-d``).

    Parameters
    ----------
    workflow : Workflow or str
        The rule; impossible rules raise :class:`CollapseError` naming the key.
    n : int
        Points per batch, ``>= 2``.
    bandwidth : float
        The fixed kernel bandwidth ``h > 0`` (data units).
    iterations : int
    truth : GaussianMixture
        An isotropic Gaussian mixture (exact overlaps).

    Returns
    -------
    list of float
        ``(1/m)(4 pi h^2)^(-d/2) + (1 - 1/m) E_pair[...] - 2 E Omega((K_D + 1) h^2) + Omega(0)``
        per model, from :func:`rule_genealogy` (float64) and
        :func:`collapse.analysis.kde.truth_overlap`.

    Examples
    --------
    >>> from collapse.analysis.truths import gaussian_truth
    >>> mise = rule_expected_mise("real=none,synthetic=window:2", n=20, bandwidth=0.3,
    ...                           iterations=50, truth=gaussian_truth(2))
    >>> mise[-1] > mise[0]
    True
    """
    return _mise(_genealogy_for_mise(workflow, n, bandwidth, iterations, truth), bandwidth,
                 truth)


def _genealogy_for_mise(workflow: Workflow | str, n: int, bandwidth: float, iterations: int,
                        truth: GaussianMixture) -> RuleGenealogy:
    n = check_int("n", n, 2)
    _check_bandwidth(bandwidth)
    big_t = check_int("iterations", iterations, 1)
    if not isinstance(truth, GaussianMixture):
        raise CollapseError(f"truth must be a GaussianMixture (got {type(truth).__name__})")
    return rule_genealogy(workflow, n, big_t)


def _mise(genealogy: RuleGenealogy, bandwidth: float, truth: GaussianMixture) -> list[float]:
    h = float(bandwidth)
    d = truth.dim
    steps = np.arange(genealogy.coalesced.shape[1])
    coalesced_overlap = (2 * np.pi * (steps + 2) * h * h) ** (-d / 2)
    distinct_overlap = truth_overlap(truth, (steps + 2) * h * h)
    pair_mean = genealogy.coalesced @ coalesced_overlap + genealogy.distinct @ distinct_overlap
    sizes = np.array(genealogy.sizes, dtype=float)
    square = (4 * np.pi * h * h) ** (-d / 2) / sizes + (1 - 1 / sizes) * pair_mean
    k = np.arange(genealogy.data_point.shape[1])
    cross = genealogy.data_point @ truth_overlap(truth, (k + 1) * h * h)
    mise = square - 2.0 * cross + float(truth_overlap(truth, 0.0)[0])
    return [float(x) for x in mise]


def kde_rule_theory(workflow: Workflow | str, *, n: int, bandwidth: float, iterations: int,
                    truth: GaussianMixture,
                    ) -> tuple[dict[str, tuple[float, ...]], tuple[str, ...]]:
    """:func:`rule_expected_mise` packaged as ``(values, notes)``, like ``kde_theory``.

    Examples
    --------
    >>> from collapse.analysis.truths import gaussian_truth
    >>> values, notes = kde_rule_theory("fresh", n=10, bandwidth=0.5, iterations=2,
    ...                                 truth=gaussian_truth(1))
    >>> sorted(values)
    ['mise']
    """
    rule = _as_workflow(workflow)
    genealogy = _genealogy_for_mise(rule, n, bandwidth, iterations, truth)
    values = {MISE: tuple(_mise(genealogy, bandwidth, truth))}
    steps = genealogy.drawn[-1]
    mean_steps = float(np.arange(steps.size) @ steps)
    h = float(bandwidth)
    notes = (
        (f"{KDE} {MISE}: exact E int (p_hat_t - p0)^2 dx for {rule.label} from Gaussian "
         f"overlaps and the exact lineage/pair laws of the rule's genealogy (float64 dynamic "
         f"programme)"),
        f"{TEST_NLL} has no closed form: Monte Carlo only",
        (f"expected model density = truth blurred by variance E K h^2 = "
         f"{mean_steps * h * h:.6g} at t={iterations}"),
    )
    if any(math.isnan(v) for v in values[MISE]):  # pragma: no cover - sums of finite terms
        raise ArithmeticError("NaN in the exact KDE theory")
    return values, notes
