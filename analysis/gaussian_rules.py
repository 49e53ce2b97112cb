r"""Exact Gaussian theory for every workflow rule (:class:`~collapse.analysis.workflows.Workflow`).

Setting.  Truth ``N(mu0, Sigma0)`` in ``R^d``; model ``t`` is ``N(mu_hat_t, Sigma_hat_t)``,
the sample mean and sample covariance of its training set ``D_t`` (divisor ``m = |D_t|``,
``"mle"``, or ``m - 1``, ``"unbiased"``); ``n`` points are drawn from every model and model 1
is fitted on the ``n`` real points.  The procedure is affine equivariant, so every first and
second moment is a scalar times ``Sigma0`` and everything is stated per unit ``tr Sigma0``:

    a_t = E||mu_hat_t - mu0||^2 / tr Sigma0,        b_t = E tr Sigma_hat_t / tr Sigma0.

Batches.  The rule builds ``D_t`` (``t >= 2``) from batches of ``n`` points: a *real part*
(the first real batch ``R`` under ``real=original``, a fresh real batch ``F_t`` drawn from the
truth for model ``t`` under ``real=fresh``, nothing under ``real=none``) and the *synthetic
part*, the batches ``S_j`` drawn from the models ``j`` in the window ``W_t``
(``{1..t-1}``, or its ``K`` newest members).  For a batch ``B`` write ``e_B = xbar_B - mu0``
(its mean's error), ``w_B = E tr V_B / tr Sigma0`` for its within-batch scatter ``V_B``
(divisor ``n``) and ``G(B, C) = E<e_B, e_C> / tr Sigma0`` (the Gram matrix of the batch means).
Real batches have ``G(R, R) = 1/n``, ``w_R = (n-1)/n``; a fresh batch is independent of every
earlier batch, so ``G(F_t, S_j) = 0`` for ``j < t``.

The model's fit.  Let ``K_s = |W_t|``, ``Z_t = sum_{j in W_t} e_j`` and

* ``A_t = E||Z_t||^2``, ``X_t = E<Z_t, e_R>`` (0 unless ``real=original``),
* ``D_t = sum_{j in W_t} G(j, j)``, ``V_t = sum_{j in W_t} w_j``.

The synthetic part's population covariance ``P_S`` (divisor ``N_s = n K_s``) has
``p_S := E tr P_S / tr Sigma0 = (V_t + D_t - A_t / K_s) / K_s``; the real part's is the real
batch's scatter, ``p_R = (n-1)/n``; the whole pool (``N`` points, ``K`` batches) has
``p = (p_R + V_t + 1/n + D_t - E||e_R + Z_t||^2 / K) / K`` with a real part, ``p_S`` without.
Given the pool, ``E[mu_hat_t | pool] - mu0 = alpha e_R + beta Z_t`` and

* the whole union (``size=all``): ``alpha = beta = 1/K``; ``a_t = E||alpha e_R + beta Z_t||^2``,
  ``b_t = kappa(N) p``;
* a simple random ``m``-subsample without replacement: the same ``alpha, beta``;
  ``Cov(mu_hat | pool) = P (N - m)/(m (N - 1))`` and ``E[S_mle | pool] = ((m-1)/m)(N/(N-1)) P``,
  so ``a_t = E||alpha e_R + beta Z_t||^2 + p (N - m)/(m (N - 1))`` and
  ``b_t = kappa(m) ((m-1)/m) (N/(N-1)) p``;
* a stratified subsample, ``m_r = round-half-up(lambda m)`` of the ``N_r = n`` real points
  and ``m_s = m - m_r`` of the ``N_s`` synthetic ones, each without replacement:
  ``alpha = m_r/m``, ``beta = m_s/(m K_s)``, ``v_x = (N_x - m_x)/(m_x (N_x - 1))``, and::

      a_t = E||alpha e_R + beta Z_t||^2 + (m_r/m)^2 v_r p_R + (m_s/m)^2 v_s p_S,
      b_t / kappa(m) = [c_r p_R + c_s p_S] / m
                       + (m_r m_s / m^2) [1/n - 2 X_t/K_s + A_t/K_s^2 + v_r p_R + v_s p_S],

  with ``c_x = (m_x - 1) N_x / (N_x - 1)``: the pooled-variance identity of the union of the
  two strata, each of whose MLE scatters has ``E[m_x S_x | pool] = c_x P_x``, plus the spread
  between the two strata's means (terms with ``m_x = 0`` are absent).

Here ``kappa(m) = 1`` (MLE) or ``m / (m - 1)`` (unbiased).  Model 1: ``a_1 = 1/n``,
``b_1 = kappa(n) (n-1)/n``.

The new batch.  ``e_{S_t} = (mu_hat_t - mu0) + eps_t`` with ``E[eps_t | past] = 0``,
``E[eps_t eps_t^T | past] = Sigma_hat_t / n`` and ``E[V_{S_t} | past] = ((n-1)/n) Sigma_hat_t``.
The subsample's deviation of ``mu_hat_t`` from its pool-conditional mean has mean zero given
every batch, so for any batch ``B`` that exists before model ``t`` is fitted

    G(S_t, S_t) = a_t + b_t / n,      w_{S_t} = ((n-1)/n) b_t,
    G(S_t, B)  = alpha G(R, B) + beta sum_{j in W_t} G(j, B).

State and cost.  ``synthetic=all``: the scalars ``(A, X, D, V)`` close on themselves,

    A_{t+1} = A_t + 2 (alpha X_t + beta A_t) + a_t + b_t/n,
    X_{t+1} = X_t + alpha/n + beta X_t,
    D_{t+1} = D_t + a_t + b_t/n,     V_{t+1} = V_t + ((n-1)/n) b_t,

from ``A_2 = D_2 = a_1 + b_1/n``, ``X_2 = 1/n`` (original), ``V_2 = ((n-1)/n) b_1``: ``O(1)``
work per iteration, as for the paper's accumulate recursion.  ``synthetic=window:K``: the
state is the band ``G(i, j)`` of the ``K`` batches in the window with its row sums
``r(i) = sum_{j in W} G(i, j)`` and ``g(i) = G(i, R)``; the new row is
``G(S_t, S_i) = alpha g(i) + beta r(i)`` and the batch that leaves the window is subtracted
from the row sums: ``O(K)`` work per iteration.  Every coefficient is rational in ``n`` and
``t``, so ``a_t`` and ``b_t`` are exact rationals; :func:`rule_moment_sequences` returns them
as :class:`fractions.Fraction`, and :func:`rule_symbolic_moments` as rational functions of
``n``.  The three paper workflows give exactly the values of
:func:`collapse.analysis.gaussian.moment_sequences`.

Identities and limits.  For the MLE, ``a_t + b_t = 1`` for every rule and ``t``: the mean
squared distance to ``mu0`` of every batch is ``tr Sigma0`` in expectation, and the MLE fit
splits the training set's second moment about ``mu0`` exactly into ``||mu_hat - mu0||^2 +
tr Sigma_hat``.  With a bounded state (a window, a fixed subsample), the recursion is an affine
map with constant coefficients once ``t > K + 1``; its fixed point is the ``t -> infinity``
limit (:func:`rule_limits`; :func:`window_limits` in a symbolic ``K``).  ``fresh`` (MLE):
``a_inf = 2/(3n+1)``, ``b_inf = (3n-1)/(3n+1)``: fresh data keep the error bounded at about
two thirds of one real batch's.  ``real=original,synthetic=window:K`` (MLE):
``a_inf = 2(K+1)/((K+2) n + K)``.  With the covariance known (``covariance="known"``, ``b_t = 1``), accumulate gives
``a_t = (1/n) sum_{k<=t} 1/k^2 -> pi^2/(6n)``.

Units: ``mean_sq_error`` is in squared data units (``= d sigma2 a_t``), ``cov_trace_ratio`` is
dimensionless.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> a, b = rule_moment_sequences(Workflow.parse("fresh"), n=10, iterations=3)
>>> [str(x) for x in a]
['1/10', '29/400', '1061/16000']
>>> all(x + y == 1 for x, y in zip(a, b))
True
>>> values, notes = gaussian_rule_theory("real=original,synthetic=window:3", n=10, dim=2,
...                                      iterations=1000)
>>> round(values["cov_trace_ratio"][-1], 6), round(45 / 53, 6)  # the t -> infinity limit
(0.849057, 0.849057)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from collapse.analysis.checks import check_choice, check_int, check_real
from collapse.analysis.errors import CollapseError
from collapse.analysis.gaussian import gaussian_theory
from collapse.analysis.vocabulary import (
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    MLE,
    REPLACE,
    TEST_NLL,
    UNBIASED,
)
from collapse.analysis.workflows import Workflow

__all__ = [
    "COVARIANCES",
    "KNOWN",
    "as_workflow",
    "gaussian_rule_theory",
    "rule_limits",
    "rule_moment_ratio_recursion",
    "rule_moment_sequences",
    "rule_symbolic_moments",
    "window_limits",
]

#: ``covariance="known"``: every model uses ``Sigma0`` itself (only the mean is fitted), so
#: ``b_t = 1``; a textbook reference point, not a CLI option.
KNOWN = "known"
#: Accepted ``covariance`` values of this module.
COVARIANCES: tuple[str, ...] = (MLE, UNBIASED, KNOWN)

#: Private 50-digit mpmath context, so the global ``mpmath.mp`` is untouched.
_MP = mpmath.MPContext()
_MP.dps = 50

#: Above this much window work (``iterations * K`` row entries) the theory runs in float64
#: numpy instead of 50-digit mpmath, to stay well under a second at 1000 iterations.
_MPMATH_BAND_WORK = 3_000


# --------------------------------------------------------------------------- validation


def as_workflow(workflow: Workflow | str) -> Workflow:
    """A :class:`Workflow` from a rule or its spec / preset name (one rule only).

    Examples
    --------
    >>> as_workflow("accumulate").spec
    'real=original,synthetic=all'
    """
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, str):
        return Workflow.parse(workflow)
    raise CollapseError(f"workflow must be a Workflow, a preset name or a spec (got {workflow!r})")


def _check_rule(rule: Workflow, n: int | None, covariance: str) -> None:
    """Impossible rules raise :class:`CollapseError` naming the key."""
    if n is not None:
        rule.check(n)
    if covariance == UNBIASED and rule.size is not None and rule.size != "n" and rule.size < 2:
        raise CollapseError(f"workflow key size={rule.size}: the unbiased covariance (divisor "
                            f"m-1) needs training sets of at least 2 points")


# --------------------------------------------------------------------------- one model's fit


def _kappa(m: Any, covariance: str, one: Any) -> Any:
    """``Sigma_hat = kappa(m) * (divisor-m covariance)`` of ``m`` points."""
    return one if covariance != UNBIASED else m / (m - 1)


def _fit(rule: Workflow, n: Any, covariance: str, one: Any, k_s: int, big_a: Any, big_x: Any,
         big_d: Any, big_v: Any, counts: tuple[int, int] | None) -> tuple[Any, Any, Any, Any]:
    """``(a_t, b_t, alpha, beta)`` of a model ``t >= 2`` from its pool's scalars.

    ``k_s`` synthetic batches with ``A = E||Z||^2``, ``X = E<Z, e_R>``, ``D = sum G(j, j)``,
    ``V = sum w_j``; ``counts`` = the stratified ``(m_r, m_s)`` or ``None``.  See the module
    docstring for the formulas.
    """
    real = rule.real != "none"
    g_rr = one / n
    p_r = (n - 1) / n
    n_s = k_s * n
    p_s = (big_v + big_d - big_a / k_s) / k_s
    m = rule.subsample_size(n) if rule.size is not None else None
    if counts is None:
        k = k_s + (1 if real else 0)
        big_n = k * n
        beta = one / k
        alpha = beta if real else 0 * one
        quad = alpha * alpha * g_rr + 2 * alpha * beta * big_x + beta * beta * big_a
        if real:
            p = (p_r + big_v + g_rr + big_d - (g_rr + 2 * big_x + big_a) / k) / k
        else:
            p = p_s
        if m is None:
            a, b = quad, _kappa(big_n, covariance, one) * p
        else:
            m = one * m
            a = quad + p * (big_n - m) / (m * (big_n - 1))
            b = _kappa(m, covariance, one) * (m - 1) / m * big_n / (big_n - 1) * p
    else:
        m_r, m_s = counts
        m = one * (m_r + m_s)
        alpha = m_r / m
        beta = m_s / (m * k_s)
        quad = alpha * alpha * g_rr + 2 * alpha * beta * big_x + beta * beta * big_a
        # Strata with no point drawn contribute nothing (their v and c are 0/0 otherwise).
        v_r = (n - m_r) / (m_r * (n - 1)) if m_r else 0 * one
        v_s = (n_s - m_s) / (m_s * (n_s - 1)) if m_s else 0 * one
        c_r = (m_r - 1) * n / (n - 1) if m_r else 0 * one
        c_s = (m_s - 1) * n_s / (n_s - 1) if m_s else 0 * one
        a = quad + alpha * alpha * v_r * p_r + (m_s / m) ** 2 * v_s * p_s
        spread = (g_rr - 2 * big_x / k_s + big_a / (k_s * k_s)) if m_r and m_s else 0 * one
        b_mle = (c_r * p_r + c_s * p_s) / m + m_r * m_s / (m * m) * (spread + v_r * p_r
                                                                    + v_s * p_s)
        b = _kappa(m, covariance, one) * b_mle
    if covariance == KNOWN:
        b = one
    return a, b, alpha, beta


def _affine_fit(rule: Workflow, n: Any, covariance: str, one: Any, k_s: int,
                counts: tuple[int, int] | None, norm: Callable[[Any], Any]) -> tuple:
    """:func:`_fit` as an affine map: ``((a0, aA, aX, aD, aV), (b0, ...), alpha, beta)``.

    ``a_t`` and ``b_t`` are affine in ``(A, X, D, V)`` (every second moment enters linearly),
    so the coefficients are differences of five evaluations; the window recursion reuses
    them while ``k_s`` stays at ``K``.
    """
    zero = 0 * one
    a0, b0, alpha, beta = _fit(rule, n, covariance, one, k_s, zero, zero, zero, zero, counts)
    a_lin, b_lin = [norm(a0)], [norm(b0)]
    for i in range(4):
        unit = [zero] * 4
        unit[i] = one
        a, b, _, _ = _fit(rule, n, covariance, one, k_s, *unit, counts)
        a_lin.append(norm(a - a0))
        b_lin.append(norm(b - b0))
    return tuple(a_lin), tuple(b_lin), alpha, beta


# --------------------------------------------------------------------------- the recursion


def rule_moment_ratio_recursion(workflow: Workflow | str, n: Any, iterations: int,
                                covariance: str = MLE, one: Any = Fraction(1),
                                normalize: Callable[[Any], Any] | None = None,
                                array: bool = False) -> Iterator[tuple[Any, Any]]:
    r"""Yield ``(a_t, b_t)`` for ``t = 1..iterations`` by the recursion of the module docstring.

    Parameters
    ----------
    workflow : Workflow or str
        The rule (a preset name or spec is parsed).
    n : int, Fraction, mpf or sympy symbol
        Points per batch.  Not checked here (callers check it); with a symbol, the
        stratified counts need an integer ``size``.
    iterations : int
        Last model-fitting iteration.
    covariance : {"mle", "unbiased", "known"}
        Divisor ``m``, divisor ``m - 1``, or the true covariance (``b_t = 1``).
    one : Fraction, mpf, float or sympy.Integer
        Chooses the arithmetic (exact rationals, 50-digit floats, float64, rational
        functions).
    normalize : callable, optional
        Applied to each new state value (e.g. ``sympy.cancel``).
    array : bool
        Windows only: keep the band in a float64 numpy array (requires ``one`` a float).

    Yields
    ------
    (a_t, b_t)
        ``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0``, ``b_t = E tr Sigma_hat_t / tr Sigma0``.

    Notes
    -----
    ``synthetic=all`` (or a window that never drops a batch before ``iterations``) costs
    ``O(1)`` per iteration; ``synthetic=window:K`` costs ``O(K)``.

    Examples
    --------
    >>> [a for a, _ in rule_moment_ratio_recursion("real=none,synthetic=window:2", 4, 3)]
    [Fraction(1, 4), Fraction(7, 16), Fraction(121, 256)]
    """
    rule = as_workflow(workflow)
    norm = normalize if normalize is not None else (lambda x: x)
    # The stratified counts are integers: compute them before n takes the arithmetic's type.
    counts = rule.stratified_counts(n) if rule.real_fraction is not None else None
    n = one * n
    original = rule.real == "original"
    # Model 1: the n real points.
    a = one / n
    b = one if covariance == KNOWN else _kappa(n, covariance, one) * (n - 1) / n
    yield a, b
    if iterations <= 1:
        return
    g_new = norm(a + b / n)  # G(S_1, S_1)
    w_new = norm((n - 1) / n * b)
    x_new = one / n if original else 0 * one  # G(S_1, R)
    window = rule.window
    if window is None or window >= iterations - 1:
        # synthetic=all: the scalars A, X, D, V close on themselves.
        big_a, big_x, big_d, big_v = g_new, x_new, g_new, w_new
        for t in range(2, iterations + 1):
            a, b, alpha, beta = _fit(rule, n, covariance, one, t - 1, big_a, big_x, big_d, big_v,
                                     counts)
            a, b = norm(a), norm(b)
            yield a, b
            g_new = a + b / n
            cross = alpha * big_x + beta * big_a  # E<e_{S_t}, Z_t>
            if original:
                big_x = norm(big_x + alpha / n + beta * big_x)
            big_a = norm(big_a + 2 * cross + g_new)
            big_d = norm(big_d + g_new)
            big_v = norm(big_v + (n - 1) / n * b)
        return
    yield from _window_recursion(rule, n, iterations, covariance, one, norm, counts, g_new,
                                 w_new, x_new, array)


def _window_recursion(rule: Workflow, n: Any, iterations: int, covariance: str, one: Any,
                      norm: Callable[[Any], Any], counts: tuple[int, int] | None, g_new: Any,
                      w_new: Any, x_new: Any, array: bool) -> Iterator[tuple[Any, Any]]:
    """The band recursion for ``synthetic=window:K``: a ring of ``K`` slots, batch ``j`` in slot
    ``j mod K``, so the batch that leaves the window frees the slot the new batch takes."""
    k = rule.window
    original = rule.real == "original"
    dtype = float if array else object
    zero = 0.0 if array else 0 * one
    gram = np.full((k, k), zero, dtype=dtype)  # G(i, j) of the batches in the window
    rows = np.full(k, zero, dtype=dtype)  # r(i) = sum_{j in W} G(i, j)
    real_cross = np.full(k, zero, dtype=dtype)  # g(i) = G(i, R)
    diag = np.full(k, zero, dtype=dtype)  # G(i, i)
    scatter = np.full(k, zero, dtype=dtype)  # w_i
    slot = 1 % k
    gram[slot, slot] = rows[slot] = diag[slot] = g_new
    real_cross[slot], scatter[slot] = x_new, w_new
    fits: dict[int, tuple] = {}
    for t in range(2, iterations + 1):
        k_s = min(k, t - 1)
        if k_s not in fits:  # a_t, b_t are affine in (A, X, D, V) with coefficients set by k_s
            fits[k_s] = _affine_fit(rule, n, covariance, one, k_s, counts, norm)
        (a0, *a_lin), (b0, *b_lin), alpha, beta = fits[k_s]
        # Empty slots hold zeros, so sums over all slots are sums over the window.
        total = np.sum if array else sum  # builtin sum keeps the arithmetic's own type
        state = (norm(total(rows)), norm(total(real_cross)), norm(total(diag)),
                 norm(total(scatter)))
        big_x = state[1]
        a = norm(a0 + sum(c * s for c, s in zip(a_lin, state)))
        b = norm(b0 + sum(c * s for c, s in zip(b_lin, state)))
        yield a, b
        if t == iterations:
            return
        slot = t % k  # the new batch S_t; it frees the slot of S_{t-K} (if that exists)
        # ndarray on the left: mpf.__mul__ would first try (slowly) to convert the array.
        row = real_cross * alpha + rows * beta  # G(S_t, S_j) for j in W_t
        if t - 1 >= k:  # S_{t-K} leaves the window: remove it from the row sums
            rows = rows - gram[:, slot]
        row[slot] = zero
        gram[slot, :] = zero
        gram[:, slot] = zero
        if not array:
            row = np.array([norm(x) for x in row], dtype=object)
        g_new = norm(a + b / n)
        rows = rows + row
        gram[slot, :] = row
        gram[:, slot] = row
        gram[slot, slot] = g_new
        rows[slot] = norm(g_new + total(row))
        diag[slot] = g_new
        scatter[slot] = norm((n - 1) / n * b)
        real_cross[slot] = norm(alpha / n + beta * big_x) if original else zero
        if not array:
            rows = np.array([norm(x) for x in rows], dtype=object)


def rule_moment_sequences(workflow: Workflow | str, n: int, iterations: int,
                          covariance: str = MLE, one: Any = Fraction(1),
                          ) -> tuple[list[Any], list[Any]]:
    """``(a_t)`` and ``(b_t)``, ``t = 1..iterations``, exact by default.

    Parameters
    ----------
    workflow : Workflow or str
        The rule; impossible rules raise :class:`CollapseError` naming the key.
    n : int
        Points per batch, ``>= 2``.
    iterations : int
        ``>= 1``.
    covariance : {"mle", "unbiased", "known"}
    one : Fraction or mpf or float
        ``Fraction(1)`` (default) gives exact rationals.

    Returns
    -------
    (list, list)
        ``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0`` and ``b_t = E tr Sigma_hat_t / tr Sigma0``
        (dimensionless, per unit total variance).

    Examples
    --------
    >>> a, b = rule_moment_sequences("real=original,synthetic=all,size=6,real-fraction=0.5",
    ...                              n=4, iterations=2)
    >>> a[1], b[1]
    (Fraction(1, 3), Fraction(2, 3))
    """
    rule = as_workflow(workflow)
    n = check_int("n", n, 2)
    iterations = check_int("iterations", iterations, 1)
    check_choice("covariance", covariance, COVARIANCES)
    _check_rule(rule, n, covariance)
    pairs = list(rule_moment_ratio_recursion(rule, n, iterations, covariance, one))
    return [x for x, _ in pairs], [y for _, y in pairs]


def rule_symbolic_moments(workflow: Workflow | str, t: int, covariance: str = MLE):
    """``(a_t, b_t)`` as rational functions of the symbol ``n`` (factored sympy expressions).

    Valid for every ``n`` for which the rule is possible (``Workflow.check``).  A stratified
    rule needs an integer ``size`` (``round(lambda n)`` is not a rational function of ``n``).
    Cheap for ``t`` up to about 8.

    Examples
    --------
    >>> a, b = rule_symbolic_moments("fresh", 2)
    >>> a
    (3*n - 1)/(4*n**2)
    """
    import sympy as sp

    from collapse.analysis.gaussian_symbolic import n as n_symbol

    rule = as_workflow(workflow)
    t = check_int("t", t, 1)
    check_choice("covariance", covariance, COVARIANCES)
    _check_rule(rule, None, covariance)
    if rule.real_fraction is not None and rule.size == "n":
        raise CollapseError("workflow key real-fraction: symbolic results need an integer size "
                            "(round(lambda n) is not a rational function of n)")
    *_, (a, b) = rule_moment_ratio_recursion(rule, n_symbol, t, covariance, sp.Integer(1),
                                             sp.cancel)
    return sp.factor(a), sp.factor(b)


def _stationary(rule: Workflow, k: Any, nn: Any, covariance: str,
                counts: tuple[int, int] | None) -> tuple[Any, Any]:
    """Solve the stationary equations of :func:`rule_limits` for a window of ``k`` batches."""
    import sympy as sp

    gamma0, c, g, w = sp.symbols("gamma0 c g w")
    original = rule.real == "original"
    g_value = g if original else sp.Integer(0)  # a fresh batch is independent of the others
    big_a = k * gamma0 + k * (k - 1) * c
    a, b, alpha, beta = _fit(rule, nn, covariance, sp.Integer(1), k, big_a, k * g_value,
                             k * gamma0, k * w, counts)
    equations = [sp.Eq(gamma0, a + b / nn), sp.Eq(w, (nn - 1) / nn * b),
                 sp.Eq(c, alpha * g_value + beta * ((k - 1) * c + gamma0))]
    unknowns = [gamma0, c, w]
    if original:
        equations.append(sp.Eq(g, alpha / nn + beta * k * g))
        unknowns.append(g)
    solution = sp.solve(equations, unknowns, dict=True)
    if len(solution) != 1:  # pragma: no cover - real data make the fixed point unique
        raise ArithmeticError("the fixed point of the recursion is not unique")
    fixed = solution[0]
    return sp.factor(sp.cancel(a.subs(fixed))), sp.factor(sp.cancel(b.subs(fixed)))


def _limit_checks(rule: Workflow, covariance: str, n: Any) -> tuple[int, int] | None:
    from collapse.analysis.gaussian_symbolic import n as n_symbol

    check_choice("covariance", covariance, COVARIANCES)
    _check_rule(rule, n, covariance)
    if rule.real_fraction is not None and rule.size == "n" and n is None:
        raise CollapseError("workflow key real-fraction: symbolic limits need an integer size")
    counts = rule.stratified_counts(n_symbol if n is None else n) \
        if rule.real_fraction is not None else None
    if rule.real == "none" or (counts is not None and counts[0] == 0):
        raise CollapseError(f"workflow {rule.label}: no real data enter the training sets, so "
                            f"the recursion has no attracting fixed point (the MLE collapses, "
                            f"b_t -> 0; with divisor m-1, a_t grows without bound)")
    return counts


def rule_limits(workflow: Workflow | str, covariance: str = MLE, n: Any = None):
    r"""``t -> infinity`` limits ``(a_inf, b_inf)`` of a rule with a finite window.

    With ``synthetic=window:K`` the coefficients of the recursion are constant once
    ``t > K + 1``.  A stationary state has ``G(i, j) = gamma(|i - j|)``, ``G(i, R) = g`` and
    ``w_i = w``, and the row update gives, for every lag ``1 <= l <= K - 1``,

    .. math::

        \gamma(\ell) = \alpha g + \beta \sum_{q=1}^{K} \gamma(|q - \ell|)
                     = \alpha g + \beta \Big[\gamma(0) + \sum_{q \ne \ell} \gamma(|q-\ell|)\Big].

    A constant ``gamma(l) = c`` for ``l >= 1`` satisfies all of these at once, and the
    stationary system (linear, with a unique solution whenever real data enter every
    training set) reduces to four equations:

    .. math::

        \gamma(0) = a + b/n, \quad c = \alpha g + \beta [(K - 1) c + \gamma(0)], \quad
        w = \tfrac{n-1}{n} b, \quad g = \alpha / n + \beta K g,

    where ``a, b`` are the fit of the module docstring with ``A = K gamma(0) + K (K-1) c``,
    ``X = K g``, ``D = K gamma(0)``, ``V = K w`` (``g = 0`` unless ``real=original``).
    sympy solves them in ``n`` (the symbol of :mod:`collapse.analysis.gaussian_symbolic`
    unless ``n`` is given).  The exact sequences converge to this point (the tests check
    it).  Rules whose training sets hold no real point (``real=none`` or
    ``real-fraction=0``) have no attracting fixed point and raise :class:`CollapseError`,
    as does ``synthetic=all`` (whose coefficients keep changing with ``t``).  See
    :func:`window_limits` for the same in a symbolic ``K``.

    Examples
    --------
    >>> rule_limits("fresh")
    (2/(3*n + 1), (3*n - 1)/(3*n + 1))
    >>> rule_limits("real=original,synthetic=latest")
    (4/(3*n + 1), 3*(n - 1)/(3*n + 1))
    """
    import sympy as sp

    from collapse.analysis.gaussian_symbolic import n as n_symbol

    rule = as_workflow(workflow)
    if n is not None:
        n = check_int("n", n, 2)
    if rule.window is None:
        raise CollapseError("workflow key synthetic=all: the recursion's coefficients change "
                            "with t, so there is no fixed point to solve for (use a window)")
    counts = _limit_checks(rule, covariance, n)
    nn = n_symbol if n is None else sp.Integer(n)
    return _stationary(rule, rule.window, nn, covariance, counts)


def window_limits(real: str = "original", covariance: str = MLE, size: int | None = None,
                  real_fraction: float | None = None):
    r"""``t -> infinity`` limits of ``synthetic=window:K`` as functions of ``n`` and ``K``.

    The equations of :func:`rule_limits` with the window ``K`` a sympy symbol (positive
    integer), returned as ``((a_inf, b_inf), K)``.  Without subsampling they give

    * ``real=original``: ``a_inf = 2(K+1) / ((K+2) n + K)`` (MLE), ``2(K+1)/((K+2) n)``
      (known covariance), ``(2(K+1) n - (K+2)) / (n ((K+2) n - 2))`` (divisor ``m-1``);
    * ``real=fresh``: ``a_inf = (K^2 + K + 2) / ((K+1) ((K+2) n + K))`` (MLE),
      ``(K^2 + K + 2) / ((K+1)(K+2) n)`` (known covariance).

    So a window keeps the error bounded however long the loop runs: between ``4/(3n)`` and
    ``2/n`` when the original real batch is kept (``2(K+1)/(K+2)`` times the error of the
    real batch alone, ``1/n``, for large ``n``), between ``2/(3n)`` and ``1/n`` with fresh
    data.  Both grow with ``K``: stale synthetic batches add their sampling noise, so
    ``synthetic=latest`` gives the smallest limit.

    Examples
    --------
    >>> (a, b), k = window_limits("original")
    >>> a
    2*(K + 1)/(K*n + K + 2*n)
    """
    import sympy as sp

    from collapse.analysis.gaussian_symbolic import n as n_symbol

    rule = Workflow(real=real, window=1, size=size, real_fraction=real_fraction)
    counts = _limit_checks(rule, covariance, None)
    k = sp.Symbol("K", positive=True, integer=True)
    return _stationary(rule, k, n_symbol, covariance, counts), k


# --------------------------------------------------------------------------- theory adapter


def _to_float(x: Any) -> float:
    try:
        return float(x)
    except OverflowError:  # pragma: no cover - a_t, b_t stay far inside the float range
        return math.inf if x > 0 else -math.inf


def gaussian_rule_theory(workflow: Workflow | str, *, n: int, dim: int, iterations: int,
                         sigma2: float = 1, covariance: str = MLE,
                         ) -> tuple[dict[str, tuple[float, ...]], tuple[str, ...]]:
    """Exact expected metrics of a rule for truth ``N(0, sigma2 I_dim)``, ``t = 1..iterations``.

    Parameters
    ----------
    workflow : Workflow or str
        The rule.
    n : int
        Points per batch, ``>= 2``.
    dim : int
        Dimension ``d >= 1``.
    iterations : int
        ``>= 1``.
    sigma2 : float
        Truth variance per coordinate, ``> 0``.
    covariance : {"mle", "unbiased"}

    Returns
    -------
    values : dict of str to tuple of float
        ``mean_sq_error = d sigma2 a_t`` (squared data units) and ``cov_trace_ratio = b_t``
        for every rule; for ``replace`` also ``cov_det_ratio``, ``log_cov_det_ratio`` and
        ``test_nll`` (from :func:`collapse.analysis.gaussian.gaussian_theory`).
    notes : tuple of str
        Which arithmetic was used and why metrics are absent.

    Examples
    --------
    >>> values, notes = gaussian_rule_theory("fresh", n=10, dim=3, iterations=2)
    >>> values["mean_sq_error"]
    (0.3, 0.2175)
    """
    rule = as_workflow(workflow)
    n = check_int("n", n, 2)
    dim = check_int("dim", dim, 1)
    iterations = check_int("iterations", iterations, 1)
    sigma2 = check_real("sigma2", sigma2, low=0)
    check_choice("covariance", covariance, (MLE, UNBIASED))
    _check_rule(rule, n, covariance)
    if rule.name == REPLACE:
        theory = gaussian_theory(REPLACE, n=n, dim=dim, iterations=iterations, sigma2=sigma2,
                                 covariance=covariance)
        return dict(theory.values), theory.notes
    band_work = 0 if rule.window is None or rule.window >= iterations - 1 \
        else iterations * rule.window
    notes: list[str] = []
    if band_work > _MPMATH_BAND_WORK:
        pairs = list(rule_moment_ratio_recursion(rule, n, iterations, covariance, 1.0,
                                                 array=True))
        notes.append(f"{MEAN_SQ_ERROR}, {COV_TRACE_RATIO}: exact recursion evaluated in float64 "
                     f"(window of {rule.window} batches over {iterations} iterations)")
    else:
        pairs = list(rule_moment_ratio_recursion(rule, n, iterations, covariance, _MP.mpf(1)))
        notes.append(f"{MEAN_SQ_ERROR}, {COV_TRACE_RATIO}: exact recursion evaluated in 50-digit "
                     f"arithmetic")
    trace0 = dim * sigma2
    values = {
        MEAN_SQ_ERROR: tuple(_to_float(trace0 * a) for a, _ in pairs),
        COV_TRACE_RATIO: tuple(_to_float(b) for _, b in pairs),
    }
    notes.append(f"{COV_DET_RATIO}, {LOG_COV_DET_RATIO} and {TEST_NLL} have exact theory for "
                 f"replace only and are omitted for {rule.label}")
    return values, tuple(notes)
