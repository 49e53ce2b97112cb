"""Pair genealogies of iterated Gaussian-kernel density estimation.

Notation as in :mod:`collapse.analysis.kde_lineage`: ``B_0`` = the ``n`` real points,
``B_i`` = the ``n`` points drawn from model ``i``, pool ``P_i = B_0 u ... u B_{i-1}``
(``i n`` points).  Each point of ``B_i`` has one parent, picked uniformly from
``D_i``, independently of every position; noise increments are independent
``N(0, h^2 I)``.

**The pair law.**  Pick two *distinct* points ``y, y'`` of ``D_t`` uniformly at random
(without replacement).  Follow both lineages back.  Either

* ``coalesced = True``: they share an ancestor point; let ``z`` be the most recent
  one (possibly ``y'`` itself when ``y`` descends from ``y'``).  ``S >= 1`` is the
  number of noise steps from ``y`` to ``z`` plus from ``y'`` to ``z``.  The steps
  above ``z`` are disjoint, so ``y - y' ~ N(0, S h^2 I)`` whatever the truth; or
* ``coalesced = False``: they descend from two distinct real points ``r != r'``
  (iid from ``p0``); ``S = K + K'`` is the total number of steps to the two roots,
  and ``y - y' = r - r' + N(0, S h^2 I)``.

:func:`pair_law` gives the exact law of ``(coalesced, S)``.

**Dynamic programme.**  ``F(i, j)`` is the law of ``(coalesced, S)`` for two distinct
points in generations ``i >= j`` (generation = batch index).  It depends on the
generations only, because every point's parent choice is independent of everything
outside its own lineage and points of one batch are exchangeable.
``F(0, 0) = (False, 0)``.  For ``i > j``, step the younger point ``a`` (generation
``i``) to its parent:

* ``accumulate``: the parent is uniform on the ``i n`` points of ``P_i``;
* ``accumulate-subsample``: it is uniform on a uniform ``n``-subset ``D_i`` of ``P_i``,
  so it equals the other point ``b`` (which lies in ``P_i``) with probability
  ``(n / (i n)) (1/n) = 1/(i n)``, and by exchangeability any other pool point
  equally often: the same law as ``accumulate``.

Either way ``F(i, j) = (1/(i n)) delta(True, 1) + sum_{k<i} ((n - [k=j])/(i n))
shift_1 F(k v j, k ^ j)``.  Same generation ``i = j >= 1``:

* ``accumulate``: the parent of ``a`` lies in ``P_i``, which does not contain ``b``:
  ``F(i, i) = (1/i) sum_{k<i} shift_1 F(i, k)``;
* ``accumulate-subsample``: both points were drawn from model ``i``, i.e. both parents
  are picked from the same subsample ``D_i``: the same parent with probability
  ``1/n``, otherwise a uniform distinct pair of ``D_i``, which is a uniform distinct
  pair of ``P_i``: ``F(i, i) = (1/n) delta(True, 2) + (1 - 1/n) shift_2 U_i``;
* ``replace`` (only same-generation pairs occur): parents are picked from ``B_{i-1}``:
  ``F(i, i) = (1/n) delta(True, 2) + (1 - 1/n) shift_2 F(i-1, i-1)``.

``U_t`` = law for a uniform distinct pair of ``P_t``: generations ``(g, g)`` with
probability ``n (n-1) / (N (N-1))`` each and ``{g > g'}`` with ``2 n^2 / (N (N-1))``,
``N = t n``.  The answer: ``replace`` ``F(t-1, t-1)``; ``accumulate`` ``U_t``
(``D_t = P_t``); ``accumulate-subsample`` also ``U_t``, since a uniform distinct pair of
a uniform ``n``-subset of the pool is a uniform distinct pair of the pool.

Two implementations share this recursion: an exact one over dictionaries (Fractions,
or sympy rational functions of a symbol ``n``) in :func:`pair_law` /
:func:`pair_law_symbolic`, and a float64 numpy one in :func:`pair_law_table`
(``O(T^2 L)`` work for ``T`` iterations, ``L = 2T - 1`` values of ``S``, using running
column sums), which the MISE uses; the tests check that they agree to ``1e-12``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from collapse.analysis.checks import check_int, check_workflow
from collapse.analysis.kde_lineage import check_iteration
from collapse.analysis.vocabulary import ACCUMULATE, REPLACE

if TYPE_CHECKING:  # sympy is imported where it is used: the CLI path never needs it
    import sympy

PairKey = tuple[bool, int]


def check_n(n: int) -> int:
    """Return ``n`` if it is an integer ``>= 2`` (points per batch), else raise ValueError.

    ``n >= 2`` because the pair law needs two distinct points of ``D_t``.
    """
    return check_int("n", n, 2)


def _accumulate_into(target: dict, law: dict, weight: Any, shift: int) -> None:
    for (coalesced, steps), p in law.items():
        key = (coalesced, steps + shift)
        target[key] = target.get(key, 0) + weight * p


def _pair_law_generic(workflow: str, n: Any, t: int, one: Any) -> dict[PairKey, Any]:
    """The recursion of the module docstring in exact arithmetic (``one`` sets the type)."""
    if workflow == REPLACE:
        law: dict[PairKey, Any] = {(False, 0): one}
        for _ in range(t - 1):
            new: dict[PairKey, Any] = {(True, 2): one / n}
            _accumulate_into(new, law, 1 - one / n, 2)
            law = new
        return law
    table: dict[tuple[int, int], dict[PairKey, Any]] = {(0, 0): {(False, 0): one}}
    uniform: dict[int, dict[PairKey, Any]] = {1: table[(0, 0)]}
    for i in range(1, t):
        for j in range(i):
            law = {(True, 1): one / (i * n)}
            for k in range(i):
                weight = ((n - 1) if k == j else n) * one / (i * n)
                _accumulate_into(law, table[(max(k, j), min(k, j))], weight, 1)
            table[(i, j)] = law
        if workflow == ACCUMULATE:
            law = {}
            for k in range(i):
                _accumulate_into(law, table[(i, k)], one / i, 1)
        else:
            law = {(True, 2): one / n}
            _accumulate_into(law, uniform[i], 1 - one / n, 2)
        table[(i, i)] = law
        pool = (i + 1) * n
        law = {}
        for a in range(i + 1):
            for b in range(a + 1):
                weight = (n * (n - 1) if a == b else 2 * n * n) * one / (pool * (pool - 1))
                _accumulate_into(law, table[(a, b)], weight, 0)
        uniform[i + 1] = law
    return uniform[t]


def pair_law(workflow: str, n: int, t: int) -> dict[PairKey, Fraction]:
    """Exact law of ``(coalesced, S)`` for two distinct points of ``D_t``.

    The two points are picked uniformly at random without replacement from the
    training set ``D_t`` of model ``t`` (``t = 1``: the real points).
    ``coalesced = True``: they share an ancestor point and ``S >= 1`` is the number of
    noise steps between them along the genealogy (up to the most recent common
    ancestor and down again), so ``y - y' ~ N(0, S h^2 I)``.  ``coalesced = False``:
    their real roots are distinct points and ``S`` is the total number of steps from
    both to their roots, so ``y - y' = r - r' + N(0, S h^2 I)`` with ``r, r'`` iid
    from the truth.  Returns ``{(coalesced, S): probability}`` (zero entries
    omitted), by the dynamic programme of the module docstring in Fractions.
    Cost grows like ``t^4`` Fraction operations; use :func:`pair_law_table` for
    large ``t``.
    """
    check_workflow(workflow)
    n, t = check_n(n), check_iteration(t)
    law = _pair_law_generic(workflow, n, t, Fraction(1))
    return {key: p for key, p in sorted(law.items()) if p != 0}


def pair_law_symbolic(workflow: str, t: int, n: sympy.Symbol | None = None) -> dict[PairKey, sympy.Expr]:
    """:func:`pair_law` with ``n`` a sympy symbol: probabilities are rational functions of ``n``."""
    import sympy

    check_workflow(workflow)
    t = check_iteration(t)
    n = sympy.Symbol("n", positive=True, integer=True) if n is None else n
    law = _pair_law_generic(workflow, n, t, sympy.Integer(1))
    return {key: sympy.factor(sympy.cancel(p)) for key, p in sorted(law.items())}


@dataclass(frozen=True)
class PairLawTable:
    """Float64 pair laws for ``t = 1..iterations``.

    ``coalesced[t-1, S] = P(coalesced, S)`` and ``distinct[t-1, S] = P(not coalesced, S)``
    for ``S = 0..2*iterations - 2``; each row of ``coalesced + distinct`` sums to 1.
    """

    workflow: str
    n: int
    iterations: int
    coalesced: np.ndarray
    distinct: np.ndarray


def pair_law_table(workflow: str, n: int, iterations: int) -> PairLawTable:
    """The pair law of :func:`pair_law` for every ``t <= iterations``, in float64.

    Same recursion, vectorised: with ``C'_i[j] = sum_{k<i, k != j} F(k, j)`` kept as a
    running sum, row ``i`` is ``F(i, j) = (1/i) shift_1 C'_i[j] + ((n-1)/(i n)) shift_1
    F(j, j) + (1/(i n)) delta(True, 1)`` for all ``j < i`` at once, so the whole table
    costs ``O(T^2 L)`` with only nonnegative combinations (no cancellation).
    """
    check_workflow(workflow)
    return _pair_law_table(workflow, check_n(n), check_iteration(iterations, "iterations"))


@functools.lru_cache(maxsize=8)
def _pair_law_table(workflow: str, n: int, T: int) -> PairLawTable:
    """:func:`pair_law_table` after validation, kept for the last few ``(workflow, n, T)``:
    the law does not depend on the bandwidth or the truth, so a bandwidth sweep (the
    docs' 1,000-iteration one costs ~15 s per table) computes it once.  The arrays are
    read-only, so a caller cannot alter the cached table."""
    width = 2 * T - 1
    out = np.zeros((T, 2, width))  # [t-1, coalesced, S]
    out[0, 0, 0] = 1.0
    if workflow == REPLACE:
        for m in range(1, T):
            out[m, 1, 2] = 1.0 / n
            out[m, :, 2:] += (1.0 - 1.0 / n) * out[m - 1, :, :-2]
    else:
        diag = np.zeros((T, 2, width))  # F(j, j)
        diag[0, 0, 0] = 1.0
        col_off = np.zeros((T, 2, width))  # C'[j]
        off_sum = np.zeros((2, width))  # sum of F(i, j), i > j, over generations seen
        diag_sum = diag[0].copy()
        for i in range(1, T):
            w = 2 * i + 1  # a pair in generations <= i has S <= 2i: skip the zero tail
            row = np.zeros((i, 2, w))
            row[:, :, 1:] = col_off[:i, :, :w - 1]
            row /= i
            row[:, :, 1:] += ((n - 1) / (i * n)) * diag[:i, :, :w - 1]
            row[:, 1, 1] += 1.0 / (i * n)
            row_total = row.sum(axis=0)
            if workflow == ACCUMULATE:
                diag[i, :, 1:w] = row_total[:, :-1] / i
            else:
                diag[i, 1, 2] = 1.0 / n
                diag[i, :, 2:w] += (1.0 - 1.0 / n) * out[i - 1, :, :w - 2]
            col_off[:i, :, :w] += row
            col_off[i, :, :w] = row_total
            off_sum[:, :w] += row_total
            diag_sum += diag[i]
            pool = (i + 1) * n
            out[i] = (n * (n - 1) * diag_sum + 2.0 * n * n * off_sum) / (pool * (pool - 1.0))
    coalesced, distinct = out[:, 1, :].copy(), out[:, 0, :].copy()
    coalesced.flags.writeable = False
    distinct.flags.writeable = False
    return PairLawTable(workflow, n, T, coalesced, distinct)


__all__ = [
    "PairKey", "PairLawTable", "check_n", "pair_law",
    "pair_law_symbolic", "pair_law_table",
]
