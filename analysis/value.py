r"""The value of synthetic data: a student trained on real points plus a generator's samples.

A generator is fitted once on ``N`` real points ``X_1..X_N`` drawn from the truth.  A
*student* is fitted on ``n_r <= N`` of those same real points (the first ``n_r``) plus
``n_s`` points sampled from the generator; ``M = n_r + n_s`` points in all.  ``n_r = 0`` is
a student of synthetic data only, ``n_s = 0`` one of real data only.  The question is for
which ``(n_r, n_s)`` the synthetic points help.

Gaussian (truth ``N(mu0, sigma2 I_d)``).  The generator is ``N(mu_g, Sigma_g)``, the mean and
covariance of its ``N`` points (divisor ``N``, or ``N - 1``); the student is the mean and
covariance of its ``M`` points with the same divisor rule.  Write ``U`` for the mean error of
the ``n_r`` shared real points, ``V`` for that of the other ``N - n_r`` (independent, with
``E||U||^2 = tr Sigma0 / n_r`` and ``E||V||^2 = tr Sigma0 / (N - n_r)``) and ``ebar`` for the
mean of the ``n_s`` sampling noises (``E[ebar | X] = 0``, ``E[||ebar||^2 | X] = tr Sigma_g / n_s``,
``E tr Sigma_g = kappa_g ((N-1)/N) tr Sigma0``).  Then ``mu_g - mu0 = (n_r U + (N - n_r) V)/N``
and

    mu_student - mu0 = [n_r U + n_s (mu_g - mu0) + n_s ebar] / M,

so ``E||mu_student - mu0||^2`` is the sum of the squared coefficients times those second
moments.  :func:`gaussian_value_formulas` runs this derivation in sympy; for the MLE it gives

    E||mu_student - mu0||^2 = sigma2 d [n_r + n_s (N-1)/N + (n_s^2 + 2 n_r n_s)/N] / (n_r + n_s)^2.

The student's covariance (MLE) is the pooled covariance of the two parts,
``Sigma_student = (n_r S_r + n_s S_y)/M + (n_r n_s / M^2)(xbar_r - ybar)(xbar_r - ybar)^T``,
with ``E tr(n_r S_r) = (n_r - 1) tr Sigma0``, ``E tr(n_s S_y) = (n_s - 1) E tr Sigma_g`` and
``E||xbar_r - ybar||^2 = tr Sigma0 (N - n_r)/(N n_r) + E tr Sigma_g / n_s``.

Consequences (derived in :func:`gaussian_crossover` and :func:`gaussian_break_even`):

* the derivative in ``n_s`` at ``n_s = 0`` is ``sigma2 d (2 n_r - N - 1)/(N n_r^2)``: a little
  synthetic data helps exactly when ``n_r < (N + 1)/2``;
* for ``(N+1)/2 < n_r < N`` the error first rises, then falls back to the real-only value
  ``sigma2 d / n_r`` at ``n_s* = n_r (2 n_r - N - 1)/(N - n_r)`` and below it after;
* as ``n_s -> infinity`` the error tends to ``sigma2 d / N`` (the generator's own mean
  error), always from above; at ``n_r = N`` synthetic data never help.

KDE (Gaussian kernel, fixed bandwidth ``h``, truth an isotropic Gaussian mixture).  The
generator is the KDE of the ``N`` points; a synthetic point is ``X_J + h Z`` with ``J``
uniform on ``1..N``.  Every ordered pair of distinct student points is one of

* real-real: distinct real points (``y - y' = r - r'``);
* real-synthetic: the synthetic point's parent is that real point with probability ``1/N``
  (``y - y' ~ N(0, h^2 I)``), otherwise another real point (``r - r' + N(0, h^2 I)``);
* synthetic-synthetic: the same parent with probability ``1/N`` (``N(0, 2 h^2 I)``), else two
  distinct parents (``r - r' + N(0, 2 h^2 I)``),

so with ``G(v) = (2 pi v)^(-d/2)`` and ``Omega(v) = E phi_{sqrt v}(r - r')`` (``r, r'`` iid from
the truth; :func:`collapse.analysis.kde.truth_overlap`) the exact expected MISE is::

    E int (p_student - p0)^2 = G(2h^2)/M + [n_r (n_r - 1) Omega(2h^2)
        + 2 n_r n_s (G(3h^2)/N + (1 - 1/N) Omega(3h^2))
        + n_s (n_s - 1) (G(4h^2)/N + (1 - 1/N) Omega(4h^2))] / M^2
        - (2/M) [n_r Omega(h^2) + n_s Omega(2h^2)] + Omega(0),

in units of inverse data volume (:func:`kde_value`).

Examples
--------
>>> gaussian_value(generator_n=10, real_size=3, synthetic_size=0, dim=2)["mean_sq_error"]
0.6666666666666666
>>> gaussian_crossover(10)
Fraction(11, 2)
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np

from collapse.analysis.checks import check_choice, check_int, check_real
from collapse.analysis.errors import CollapseError
from collapse.analysis.kde import truth_overlap
from collapse.analysis.truths import GaussianMixture
from collapse.analysis.vocabulary import (
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    MEAN_SQ_ERROR,
    MISE,
    MLE,
    UNBIASED,
)

__all__ = [
    "gaussian_break_even",
    "gaussian_crossover",
    "gaussian_value",
    "gaussian_value_formulas",
    "gaussian_value_ratios",
    "kde_crossover",
    "kde_value",
]


# --------------------------------------------------------------------------- checks


def _check_sizes(generator_n: Any, real_size: Any, synthetic_size: Any,
                 minimum_total: int = 1) -> tuple[int, int, int]:
    big_n = check_int("generator_n", generator_n, 2)
    n_r = check_int("real_size", real_size, 0, big_n)
    n_s = check_int("synthetic_size", synthetic_size, 0)
    if n_r + n_s < minimum_total:
        raise CollapseError(f"real_size + synthetic_size must be >= {minimum_total} (got "
                            f"{n_r} + {n_s})")
    return big_n, n_r, n_s


# --------------------------------------------------------------------------- Gaussian


def _student_moments(big_n: Any, n_r: Any, n_s: Any, covariance: str, one: Any,
                     general: bool = False) -> tuple[Any, Any]:
    """``(a, b)`` per unit ``tr Sigma0`` by the derivation of the module docstring.

    ``a = E||mu_student - mu0||^2 / tr Sigma0``, ``b = E tr Sigma_student / tr Sigma0``.
    Numbers: atoms with no points (``n_r = 0``, ``n_r = N``, ``n_s = 0``) are left out.
    ``general=True`` (sympy symbols) keeps every atom, the generic case ``0 < n_r < N``,
    ``n_s > 0``.
    """
    big_m = n_r + n_s
    kappa_g = one if covariance == MLE else one * big_n / (big_n - 1)
    generator_trace = kappa_g * (big_n - 1) / big_n  # E tr Sigma_g / tr Sigma0
    has_u = general or n_r > 0
    has_v = general or n_r < big_n
    has_e = general or n_s > 0
    # Second moments (per unit tr Sigma0) of the three independent atoms.
    second = {"U": one / n_r if has_u else 0, "V": one / (big_n - n_r) if has_v else 0,
              "e": generator_trace / n_s if has_e else 0}
    # mu_g - mu0 = (n_r U + (N - n_r) V) / N.
    generator_mean = {"U": n_r * one / big_n, "V": (big_n - n_r) * one / big_n, "e": 0 * one}

    def norm2(coefficients: dict[str, Any]) -> Any:
        return sum(coefficients[k] ** 2 * second[k] for k in coefficients)

    mean = {k: (n_r * int(k == "U") + n_s * generator_mean[k] + n_s * int(k == "e")) / big_m
            for k in second}
    a = norm2(mean)
    # xbar_r - ybar = U - (mu_g - mu0) - ebar.
    spread = norm2({k: int(k == "U") - generator_mean[k] - int(k == "e") for k in second}) \
        if (general or (n_r > 0 and n_s > 0)) else 0 * one
    within = one * ((n_r - 1) if has_u else 0) + ((n_s - 1) * generator_trace if has_e else 0)
    b_mle = within / big_m + n_r * n_s * spread / big_m ** 2
    kappa_s = one if covariance == MLE else one * big_m / (big_m - 1)
    return a, kappa_s * b_mle


def gaussian_value_ratios(generator_n: int, real_size: int, synthetic_size: int,
                          covariance: str = MLE) -> tuple[Fraction, Fraction]:
    """Exact ``(a, b)``: ``E||mu_student - mu0||^2`` and ``E tr Sigma_student`` per unit ``tr Sigma0``.

    Examples
    --------
    >>> gaussian_value_ratios(10, 4, 6)
    (Fraction(89, 500), Fraction(411, 500))
    """
    check_choice("covariance", covariance, COVARIANCE_ESTIMATORS)
    minimum = 2 if covariance == UNBIASED else 1
    big_n, n_r, n_s = _check_sizes(generator_n, real_size, synthetic_size, minimum)
    return _student_moments(big_n, n_r, n_s, covariance, Fraction(1))


def gaussian_value(*, generator_n: int, real_size: int, synthetic_size: int, dim: int,
                   sigma2: float = 1, covariance: str = MLE) -> dict[str, float]:
    """Exact expected errors of the Gaussian student (truth ``N(mu0, sigma2 I_dim)``).

    Parameters
    ----------
    generator_n : int
        ``N >= 2``, real points of the generator.
    real_size : int
        ``0 <= n_r <= N``, the student's real points (shared with the generator).
    synthetic_size : int
        ``n_s >= 0``, the student's points sampled from the generator.
    dim : int
    sigma2 : float
    covariance : {"mle", "unbiased"}
        Divisor of both the generator's and the student's covariance.

    Returns
    -------
    dict
        ``mean_sq_error = E||mu_student - mu0||^2`` (squared data units) and
        ``cov_trace_ratio = E tr Sigma_student / tr Sigma0``.  ``n_r + n_s >= 1``
        (``>= 2`` with ``covariance="unbiased"``); with one point the MLE covariance is 0.

    Examples
    --------
    >>> gaussian_value(generator_n=100, real_size=100, synthetic_size=10**9, dim=1)
    {'mean_sq_error': 0.010000000989999803, 'cov_trace_ratio': 0.9899999990100002}
    """
    dim = check_int("dim", dim, 1)
    sigma2 = check_real("sigma2", sigma2, low=0)
    a, b = gaussian_value_ratios(generator_n, real_size, synthetic_size, covariance)
    return {MEAN_SQ_ERROR: float(dim * sigma2 * a), COV_TRACE_RATIO: float(b)}


@cache
def gaussian_value_formulas(covariance: str = MLE):
    """The derivation of the module docstring in sympy: ``(a, b, (N, n_r, n_s))``.

    ``a`` and ``b`` are rational functions of the symbols ``N``, ``n_r``, ``n_s`` (per unit
    ``tr Sigma0``), derived with every atom present and valid at ``n_r = 0``, ``n_r = N``
    and ``n_s = 0`` too (they cancel to polynomials there).

    Examples
    --------
    >>> a, b, (N, n_r, n_s) = gaussian_value_formulas()
    >>> a.subs(n_s, 0)
    1/n_r
    """
    import sympy as sp

    check_choice("covariance", covariance, COVARIANCE_ESTIMATORS)
    big_n, n_r, n_s = sp.symbols("N n_r n_s", positive=True)
    a, b = _student_moments(big_n, n_r, n_s, covariance, sp.Integer(1), general=True)
    return sp.factor(sp.cancel(a)), sp.factor(sp.cancel(b)), (big_n, n_r, n_s)


def gaussian_crossover(generator_n: int | None = None, synthetic_size: int | None = None):
    """Where synthetic data stop helping the Gaussian student's mean (MLE generator).

    With ``synthetic_size=None``: the real size at which the derivative of the mean error in
    ``n_s`` at ``n_s = 0`` changes sign, solved by sympy from :func:`gaussian_value_formulas`:
    ``(N + 1)/2`` (a sympy expression in ``N``, or a :class:`Fraction` for a given
    ``generator_n``).  Adding a little synthetic data lowers the error iff ``n_r`` is below it.

    With an integer ``synthetic_size = s``: the smallest ``n_r`` in ``1..N`` at which adding
    ``s`` synthetic points no longer lowers the error (exact comparison), or ``None`` if they
    lower it for every ``n_r <= N``.

    Examples
    --------
    >>> gaussian_crossover()
    N/2 + 1/2
    >>> gaussian_crossover(100, synthetic_size=1)
    51
    """
    import sympy as sp

    if synthetic_size is None:
        a, _, (big_n, n_r, n_s) = gaussian_value_formulas(MLE)
        slope = sp.factor(sp.diff(a, n_s).subs(n_s, 0))
        roots = sp.solve(sp.numer(sp.together(slope)), n_r)
        if len(roots) != 1:  # pragma: no cover - the slope's numerator is linear in n_r
            raise ArithmeticError("expected one root of the slope")
        root = sp.expand(roots[0])
        if generator_n is None:
            return root
        value = root.subs(big_n, check_int("generator_n", generator_n, 2))
        return Fraction(int(value.p), int(value.q))
    big_n = check_int("generator_n", generator_n, 2)
    s = check_int("synthetic_size", synthetic_size, 1)
    for n_r in range(1, big_n + 1):
        with_synthetic, _ = _student_moments(big_n, n_r, s, MLE, Fraction(1))
        alone, _ = _student_moments(big_n, n_r, 0, MLE, Fraction(1))
        if with_synthetic >= alone:
            return n_r
    return None  # pragma: no cover - at n_r = N synthetic data never help


def gaussian_break_even(generator_n: int, real_size: int) -> float:
    """The synthetic size ``n_s*`` beyond which synthetic data lower the mean error (MLE).

    For ``n_r < (N+1)/2`` synthetic data help from the start (returns ``0.0``); for
    ``(N+1)/2 <= n_r < N`` the error returns to the real-only value ``sigma2 d / n_r`` at
    ``n_s* = n_r (2 n_r - N - 1)/(N - n_r)`` (the nonzero root of
    ``a(n_r, n_s) = a(n_r, 0)``, solved by sympy) and stays below it beyond; at ``n_r = N``
    they never help (``inf``).

    Examples
    --------
    >>> gaussian_break_even(100, 80)
    236.0
    """
    import sympy as sp

    big_n = check_int("generator_n", generator_n, 2)
    n_r_value = check_int("real_size", real_size, 1, big_n)
    if n_r_value == big_n:
        return math.inf
    a, _, (sym_n, n_r, n_s) = gaussian_value_formulas(MLE)
    roots = [r for r in sp.solve(sp.numer(sp.together(a - a.subs(n_s, 0))), n_s) if r != 0]
    if len(roots) != 1:  # pragma: no cover - one nonzero root
        raise ArithmeticError("expected one nonzero root")
    value = roots[0].subs({sym_n: big_n, n_r: n_r_value})
    return max(0.0, float(value))


# --------------------------------------------------------------------------- KDE


def kde_value(*, generator_n: int, real_size: int, synthetic_size: int, bandwidth: float,
              truth: GaussianMixture) -> dict[str, float]:
    """Exact expected MISE of the student KDE (module docstring), units ``length^-d``.

    Parameters
    ----------
    generator_n : int
        ``N >= 2`` real points of the generator KDE.
    real_size : int
        ``0 <= n_r <= N`` real points of the student (the generator's first ``n_r``).
    synthetic_size : int
        ``n_s >= 0`` points sampled from the generator; ``n_r + n_s >= 1``.
    bandwidth : float
        ``h > 0``, shared by the generator and the student.
    truth : GaussianMixture

    Returns
    -------
    dict
        ``{"mise": E int (p_student - p0)^2 dx}``.

    Examples
    --------
    >>> from collapse.analysis.truths import gaussian_truth
    >>> round(kde_value(generator_n=20, real_size=20, synthetic_size=0, bandwidth=0.5,
    ...                 truth=gaussian_truth(1))["mise"], 6)
    0.018079
    """
    big_n, n_r, n_s = _check_sizes(generator_n, real_size, synthetic_size)
    h = check_real("bandwidth", bandwidth, low=0)
    if not isinstance(truth, GaussianMixture):
        raise CollapseError(f"truth must be a GaussianMixture (got {type(truth).__name__})")
    d = truth.dim
    h2 = h * h

    def g(v: float) -> float:
        return (2 * math.pi * v) ** (-d / 2)

    omega = truth_overlap(truth, np.array([0.0, 1.0, 2.0, 3.0, 4.0]) * h2)
    big_m = n_r + n_s
    shared = 1.0 / big_n  # P(a synthetic point's parent is a given real point)
    pairs = (n_r * (n_r - 1) * omega[2]
             + 2 * n_r * n_s * (shared * g(3 * h2) + (1 - shared) * omega[3])
             + n_s * (n_s - 1) * (shared * g(4 * h2) + (1 - shared) * omega[4]))
    square = g(2 * h2) / big_m + pairs / big_m ** 2
    cross = (n_r * omega[1] + n_s * omega[2]) / big_m
    return {MISE: float(square - 2 * cross + omega[0])}


def kde_crossover(*, generator_n: int, bandwidth: float, truth: GaussianMixture,
                  synthetic_size: int = 1) -> int | None:
    """The smallest ``n_r`` in ``1..N`` at which ``synthetic_size`` generator samples no longer
    lower the student's expected MISE, or ``None`` if they lower it for every ``n_r <= N``
    (a synthetic point is a real point plus kernel noise, so with a bandwidth that is too
    small for the truth the extra smoothing can help even a student with all ``N`` points).

    Examples
    --------
    >>> from collapse.analysis.truths import gaussian_truth
    >>> kde_crossover(generator_n=50, bandwidth=0.5, truth=gaussian_truth(1))
    24
    """
    big_n = check_int("generator_n", generator_n, 2)
    s = check_int("synthetic_size", synthetic_size, 1)
    for n_r in range(1, big_n + 1):
        kwargs = {"generator_n": big_n, "real_size": n_r, "bandwidth": bandwidth,
                  "truth": truth}
        if kde_value(synthetic_size=s, **kwargs)[MISE] >= kde_value(synthetic_size=0,
                                                                     **kwargs)[MISE]:
            return n_r
    return None
