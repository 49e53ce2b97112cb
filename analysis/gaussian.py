"""Exact expectations for the Gaussian setting under the three workflows.

Truth ``N(mu0, Sigma0)`` in ``R^d``.  Model ``t`` is ``N(mu_hat_t, Sigma_hat_t)``, the
sample mean and sample covariance of its training set ``D_t`` (divisor ``m = |D_t|``,
``"mle"``, or ``m - 1``, ``"unbiased"``); ``n`` points are drawn from every model.
Iteration 1 is fitted on the ``n`` real points.

Everything below is stated per unit ``tr Sigma0`` ("ratios"): every first and second
moment is a scalar times ``Sigma0`` because the whole procedure is affine equivariant,
so ``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0`` and ``b_t = E tr Sigma_hat_t / tr Sigma0``
do not depend on ``d`` or ``Sigma0``.

Scalar recursions (derivation)
------------------------------
Write ``e_j = xbar_j - mu0`` for the mean of batch ``j`` (batch 0 = the real points),
``S_j`` for its within-batch covariance (divisor ``n``), and, for model ``t``,

* ``A_t = E||M_t||^2`` with ``M_t = sum_{j<t} e_j``,
* ``Q_t = sum_{j<t} E||e_j||^2``,
* ``T_t = sum_{j<t} E tr S_j`` (all divided by ``tr Sigma0``).

The pool of ``N = t n`` points has mean ``m_t = M_t / t`` and population covariance
``P_t = (1/t) sum_j [S_j + (e_j - M_t/t)(e_j - M_t/t)^T]``, hence

    p_t := E tr P_t / tr Sigma0 = (T_t + Q_t - A_t / t) / t.

Given the pool, the fitted model has ``E[mu_hat_t | pool] = m_t``,
``Cov[mu_hat_t | pool] = h_t P_t`` and ``E[Sigma_hat_t | pool] = g_t P_t`` with

* accumulate (the whole pool, ``m = N``): ``h_t = 0``, ``g_t = kappa(N)``;
* accumulate-subsample (``n`` of the ``N`` points without replacement):
  ``h_t = (N - n) / (n (N - 1))``, ``g_t = kappa(n) ((n-1)/n) (N / (N - 1))``,

where ``kappa(m) = 1`` (MLE) or ``m / (m - 1)`` (unbiased).  So

    a_t = A_t / t^2 + h_t p_t,        b_t = g_t p_t.

The new batch has ``e_t = (mu_hat_t - mu0) + eps_t`` with ``E[eps_t | past] = 0``,
``E[eps_t eps_t^T | past] = Sigma_hat_t / n`` and ``E[S_t | past] = ((n-1)/n) Sigma_hat_t``;
because ``M_t`` is a function of the pool, ``E<M_t, e_t> = E<M_t, m_t - mu0> = A_t / t``:

    A_{t+1} = A_t (1 + 2/t) + a_t + b_t / n,
    Q_{t+1} = Q_t + a_t + b_t / n,
    T_{t+1} = T_t + ((n-1)/n) b_t,

from ``A_1 = Q_1 = 1/n`` and ``T_1 = (n-1)/n``.  Replace keeps only the last batch:
``a_{t+1} = a_t + b_t / n`` and ``b_{t+1} = c b_t`` with ``c = (n-1)/n`` (MLE) or 1
(unbiased), from ``a_1 = 1/n``, ``b_1 = c``.

Every coefficient is rational in ``n`` and ``t``, so the ratios are exact rationals
(:func:`moment_sequences`).  For the MLE, ``a_t + b_t = 1`` for every workflow and
``t``: the expected second moment about ``mu0`` of every training set equals that of
the truth.  The determinant, log-determinant and test-NLL results exist for replace
only (Wishart facts; see :mod:`collapse.analysis.gaussian_symbolic`).

Units: ``mean_sq_error`` is in squared data units (``= d sigma2 a_t``), ratios are
dimensionless, ``log_cov_det_ratio`` and ``test_nll`` are in nats (per point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator

import mpmath

from collapse.analysis.checks import check_int, check_workflow
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    MLE,
    REPLACE,
    TEST_NLL,
)

__all__ = [
    "GaussianTheory",
    "gaussian_theory",
    "moment_sequences",
    "moment_ratio_recursion",
    "pool_coefficients",
    "gaussian_entropy",
    "replace_one_step",
    "symbolic_moments",
    "replace_closed_forms",
    "accumulate_known_covariance_mean_error",
    "limits",
    "limit_values",
    "formula",
]

#: Private mpmath context (50 significant digits) so the global ``mpmath.mp`` is untouched.
_MP = mpmath.MPContext()
_MP.dps = 50


# --------------------------------------------------------------------------- validation


def _check_covariance(covariance: str) -> str:
    if covariance not in COVARIANCE_ESTIMATORS:
        raise ValueError(f"unknown covariance {covariance!r}; choose from "
                         f"{', '.join(COVARIANCE_ESTIMATORS)}")
    return covariance


# --------------------------------------------------------------------------- recursions


def _divisor_correction(m: Any, covariance: str, one: Any) -> Any:
    """``kappa(m)``: ``Sigma_hat = kappa(m) * (population covariance)`` of ``m`` points."""
    return one if covariance == MLE else m / (m - 1)


def pool_coefficients(workflow: str, n: Any, t: int, covariance: str = MLE,
                      one: Any = Fraction(1)) -> tuple[Any, Any]:
    """``(g_t, h_t)``: ``E[Sigma_hat_t | pool] = g_t P_t``, ``Cov[mu_hat_t | pool] = h_t P_t``.

    ``P_t`` is the population covariance (divisor ``N = t n``) of the accumulated pool.
    Accumulate fits the whole pool (``h_t = 0``); accumulate-subsample fits a simple
    random sample without replacement of ``n`` pool points, whose mean has covariance
    ``P_t (N-n)/(n(N-1))`` and whose divisor-``(n-1)`` covariance is unbiased for
    ``P_t N/(N-1)``.  ``n`` may be an int, a Fraction, an mpf or a sympy symbol.
    """
    n = one * n
    big_n = t * n
    if workflow == ACCUMULATE:
        return _divisor_correction(big_n, covariance, one), 0 * one
    if workflow == ACCUMULATE_SUBSAMPLE:
        g = _divisor_correction(n, covariance, one) * (n - 1) / n * big_n / (big_n - 1)
        h = (big_n - n) / (n * (big_n - 1))
        return g, h
    raise ValueError(f"pool coefficients are defined for {ACCUMULATE} and "
                     f"{ACCUMULATE_SUBSAMPLE} only (got {workflow!r})")


def moment_ratio_recursion(workflow: str, n: Any, iterations: int, covariance: str = MLE,
                           one: Any = Fraction(1),
                           normalize: Callable[[Any], Any] | None = None,
                           ) -> Iterator[tuple[Any, Any]]:
    """Yield ``(a_t, b_t)`` for ``t = 1..iterations`` by the scalar recursions above.

    ``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0`` and ``b_t = E tr Sigma_hat_t / tr Sigma0``.
    The arithmetic type is chosen by ``one`` (``Fraction(1)``: exact; an mpmath ``mpf``:
    high-precision floats; ``sympy.Integer(1)`` with a sympy ``n``: rational functions),
    and ``normalize`` (e.g. ``sympy.cancel``) is applied to the state after each step.
    """
    check_workflow(workflow)
    _check_covariance(covariance)
    norm = normalize if normalize is not None else (lambda x: x)
    n = one * n
    if workflow == REPLACE:
        divisor = n if covariance == MLE else n - 1
        c = (n - 1) / divisor
        a, b = one / n, c
        for _ in range(iterations):
            yield a, b
            a, b = norm(a + b / n), norm(c * b)
        return
    big_a, big_q, big_t = one / n, one / n, (n - 1) / n
    for t in range(1, iterations + 1):
        g, h = pool_coefficients(workflow, n, t, covariance, one)
        p = (big_t + big_q - big_a / t) / t
        a = norm(big_a / (t * t) + h * p)
        b = norm(g * p)
        yield a, b
        new_sq = a + b / n
        big_a = norm(big_a * (1 + one * 2 / t) + new_sq)
        big_q = norm(big_q + new_sq)
        big_t = norm(big_t + (n - 1) / n * b)


def moment_sequences(workflow: str, n: int, iterations: int, covariance: str = MLE,
                     ) -> tuple[list[Fraction], list[Fraction]]:
    """Exact ``(a_t)`` and ``(b_t)``, ``t = 1..iterations``, as :class:`fractions.Fraction`.

    ``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0`` (mean error per unit total variance) and
    ``b_t = E tr Sigma_hat_t / tr Sigma0``; see the module docstring for the recursion.
    """
    check_workflow(workflow)
    n = check_int("n", n, 2)
    iterations = check_int("iterations", iterations, 1)
    _check_covariance(covariance)
    pairs = list(moment_ratio_recursion(workflow, n, iterations, covariance, Fraction(1)))
    return [a for a, _ in pairs], [b for _, b in pairs]


def _moment_sequences_mp(workflow: str, n: int, iterations: int, covariance: str,
                         ) -> tuple[list[Any], list[Any]]:
    """The same recursion in 50-digit mpmath arithmetic (exact Fractions grow huge)."""
    pairs = list(moment_ratio_recursion(workflow, n, iterations, covariance, _MP.mpf(1)))
    return [a for a, _ in pairs], [b for _, b in pairs]


# --------------------------------------------------------------------------- replace: Wishart


@dataclass(frozen=True)
class ReplaceOneStep:
    """One replace step as Wishart facts, per iteration, for truth ``Sigma0``.

    With divisor ``nu`` (``n`` or ``n - 1``), ``Sigma_hat_t = A (W / nu) A^T`` where
    ``A A^T = Sigma_hat_{t-1}`` and ``W ~ Wishart_d(n - 1, I)`` is independent of the past:

    * ``det_factor = E det(W / nu) = prod_{i=1}^d (n - i) / nu`` (0 when ``n <= d``);
    * ``log_det_drift = E log det(W / nu) = sum_{i=1}^d [psi((n-i)/2) + log(2/nu)]``
      (``-inf`` when ``n - 1 < d``: ``W`` is singular);
    * ``inv_factor = r``: ``E (W/nu)^{-1} = r I``, ``r = nu / (n - d - 2)`` (``inf`` when
      ``n <= d + 2``, where the inverse-Wishart mean diverges).
    """

    n: int
    dim: int
    covariance: str
    det_factor: Fraction
    log_det_drift: Any  # mpmath mpf or -inf
    inv_factor: Fraction | float


def replace_one_step(n: int, dim: int, covariance: str = MLE) -> ReplaceOneStep:
    """The per-iteration Wishart factors of replace (see :class:`ReplaceOneStep`)."""
    n = check_int("n", n, 2)
    dim = check_int("dim", dim, 1)
    _check_covariance(covariance)
    nu = n if covariance == MLE else n - 1
    det_factor = Fraction(1)
    for i in range(1, dim + 1):
        det_factor *= Fraction(n - i, nu)
    if n - 1 < dim:
        drift: Any = _MP.ninf
    else:
        drift = _MP.fsum(_MP.digamma(_MP.mpf(n - i) / 2) + _MP.log(_MP.mpf(2) / nu)
                         for i in range(1, dim + 1))
    inv = Fraction(nu, n - dim - 2) if n > dim + 2 else math.inf
    return ReplaceOneStep(n, dim, covariance, det_factor, drift, inv)


def gaussian_entropy(dim: int, sigma2: float = 1) -> float:
    """Entropy of ``N(0, sigma2 I_dim)`` in nats: ``(d/2) log(2 pi e sigma2)``.

    By Gibbs' inequality it is a lower bound of ``test_nll`` (cross-entropy = entropy + KL).
    """
    dim = check_int("dim", dim, 1)
    sigma2 = _check_sigma2(sigma2)
    return 0.5 * dim * math.log(2.0 * math.pi * math.e * sigma2)


def _check_sigma2(sigma2: Any) -> float:
    try:
        value = float(sigma2)
    except (TypeError, ValueError):
        raise ValueError(f"sigma2 must be a positive finite number (got {sigma2!r})") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"sigma2 must be a positive finite number (got {sigma2!r})")
    return value


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class GaussianTheory:
    """Exact expectations per model-fitting iteration ``t = 1..iterations``.

    ``values[metric][t-1]`` is the expectation for model ``t``; a metric without exact
    theory for the workflow is absent.  Values are floats (``inf``/``-inf`` allowed,
    never NaN); ``notes`` explains infinities and omissions.
    """

    workflow: str
    n: int
    dim: int
    sigma2: float
    covariance: str
    iterations: int
    values: dict[str, tuple[float, ...]]
    notes: tuple[str, ...]


def _to_float(x: Any) -> float:
    """mpf/Fraction -> float; magnitudes beyond the float range become +-inf or 0."""
    try:
        return float(x)
    except OverflowError:  # Fraction beyond the float range (mpf already gives inf)
        return math.inf if x > 0 else -math.inf


def gaussian_theory(workflow: str, *, n: int, dim: int, iterations: int, sigma2: float = 1,
                    covariance: str = MLE) -> GaussianTheory:
    """Exact expected metrics for truth ``N(0, sigma2 I_dim)``, iterations ``1..iterations``.

    All workflows:

    * ``mean_sq_error = E||mu_hat_t - mu0||^2 = d sigma2 a_t`` (squared data units);
    * ``cov_trace_ratio = E tr Sigma_hat_t / tr Sigma0 = b_t``.

    Replace only (``nu`` = divisor, ``r = nu / (n - d - 2)``):

    * ``cov_det_ratio = (prod_{i=1}^d (n-i)/nu)^t``;
    * ``log_cov_det_ratio = t sum_{i=1}^d [psi((n-i)/2) + log(2/nu)]`` (``-inf`` if ``n <= d``);
    * ``test_nll = 1/2 [d log(2 pi) + d log sigma2 + E log det-ratio + d r^t + q_t]``
      nats per point, ``q_t = r (q_{t-1} + d/n)``, ``q_0 = 0``, i.e.
      ``q_t = d (r^t - 1)/(d + 2)`` (MLE) or ``d (n-1)(r^t - 1)/(n (d + 1))`` (unbiased);
      ``+inf`` when ``n <= d + 2``.

    Computed from the exact recursions in 50-digit arithmetic, then rounded to float.
    """
    check_workflow(workflow)
    n = check_int("n", n, 2)
    dim = check_int("dim", dim, 1)
    iterations = check_int("iterations", iterations, 1)
    sigma2 = _check_sigma2(sigma2)
    _check_covariance(covariance)

    notes: list[str] = []
    a_seq, b_seq = _moment_sequences_mp(workflow, n, iterations, covariance)
    trace0 = _MP.mpf(dim) * _MP.mpf(sigma2)
    values: dict[str, tuple[float, ...]] = {
        MEAN_SQ_ERROR: tuple(_to_float(trace0 * a) for a in a_seq),
        COV_TRACE_RATIO: tuple(_to_float(b) for b in b_seq),
    }
    if workflow == REPLACE:
        values.update(_replace_extra_metrics(n, dim, iterations, sigma2, covariance, notes))
    else:
        notes.append(f"{COV_DET_RATIO}, {LOG_COV_DET_RATIO} and {TEST_NLL} have no exact "
                     f"theory for {workflow} and are omitted")
    for name, seq in values.items():
        if any(math.isnan(v) for v in seq):  # pragma: no cover - guarded by construction
            raise ArithmeticError(f"NaN in exact theory for {name}")
    return GaussianTheory(workflow, n, dim, sigma2, covariance, iterations, values, tuple(notes))


def _replace_extra_metrics(n: int, dim: int, iterations: int, sigma2: float, covariance: str,
                           notes: list[str]) -> dict[str, tuple[float, ...]]:
    step = replace_one_step(n, dim, covariance)
    ts = range(1, iterations + 1)
    det_factor = _MP.mpf(step.det_factor.numerator) / step.det_factor.denominator
    out: dict[str, tuple[float, ...]] = {
        COV_DET_RATIO: tuple(_to_float(det_factor ** t) for t in ts),
    }
    if n - 1 < dim:
        out[LOG_COV_DET_RATIO] = tuple(-math.inf for _ in ts)
        out[TEST_NLL] = tuple(math.inf for _ in ts)
        notes.append(f"{LOG_COV_DET_RATIO} is -inf and {COV_DET_RATIO} is 0: with n-1 = {n - 1}"
                     f" < dim = {dim} the fitted covariance is singular with probability one")
        notes.append(f"{TEST_NLL} is +inf: a singular fitted covariance gives held-out real "
                     f"data zero density with probability one")
        return out
    out[LOG_COV_DET_RATIO] = tuple(_to_float(t * step.log_det_drift) for t in ts)
    if n <= dim + 2:
        out[TEST_NLL] = tuple(math.inf for _ in ts)
        notes.append(f"{TEST_NLL} is +inf: E tr(Sigma_hat_t^-1 Sigma0) diverges because "
                     f"n = {n} <= dim + 2 = {dim + 2} (the inverse-Wishart mean "
                     f"E W^-1 = I/(m-d-1) needs m = n-1 > d+1 degrees of freedom)")
        return out
    r = _MP.mpf(step.inv_factor.numerator) / step.inv_factor.denominator
    const = dim * _MP.log(2 * _MP.pi) + dim * _MP.log(_MP.mpf(sigma2))
    nll = []
    q = _MP.mpf(0)
    for t in ts:
        q = r * (q + _MP.mpf(dim) / n)
        nll.append(_to_float((const + t * step.log_det_drift + dim * r ** t + q) / 2))
    out[TEST_NLL] = tuple(nll)
    if any(math.isinf(v) for v in nll):
        notes.append(f"{TEST_NLL} exceeds the float range at large t (grows like r^t, "
                     f"r = {float(r):.6g}) and is reported as inf there")
    return out


# --------------------------------------------------------------------------- symbolic API
# Thin wrappers so that importing this module (the CLI path) does not import sympy.


def symbolic_moments(workflow: str, t: int, covariance: str = MLE):
    """``(a_t, b_t)`` as rational functions of the sympy symbol ``n``; see
    :func:`collapse.analysis.gaussian_symbolic.symbolic_moments`."""
    from collapse.analysis.gaussian_symbolic import symbolic_moments as impl

    return impl(workflow, t, covariance)


def replace_closed_forms(covariance: str = MLE):
    """Replace closed forms in ``n, d, t`` (sympy); see
    :func:`collapse.analysis.gaussian_symbolic.replace_closed_forms`."""
    from collapse.analysis.gaussian_symbolic import replace_closed_forms as impl

    return impl(covariance)


def accumulate_known_covariance_mean_error(t):
    """``(1/n) sum_{k=1}^t 1/k^2`` per unit ``tr Sigma0``; see
    :func:`collapse.analysis.gaussian_symbolic.accumulate_known_covariance_mean_error`."""
    from collapse.analysis.gaussian_symbolic import accumulate_known_covariance_mean_error as impl

    return impl(t)


def limits(workflow: str, covariance: str = MLE):
    """``t -> infinity`` limits of ``a_t`` and ``b_t`` in the symbol ``n``; see
    :func:`collapse.analysis.gaussian_symbolic.limits`."""
    from collapse.analysis.gaussian_symbolic import limits as impl

    return impl(workflow, covariance)


def limit_values(workflow: str, n: int, covariance: str = MLE) -> dict[str, float]:
    """The limits of :func:`limits` evaluated at an integer ``n`` (floats, ``inf`` allowed)."""
    from collapse.analysis.gaussian_symbolic import limit_values as impl

    return impl(workflow, n, covariance)


def formula(metric: str, workflow: str, covariance: str = MLE):
    """sympy expression of ``metric`` for ``workflow`` in ``n, d, t, sigma2``; see
    :func:`collapse.analysis.gaussian_symbolic.formula`."""
    from collapse.analysis.gaussian_symbolic import formula as impl

    return impl(metric, workflow, covariance)
