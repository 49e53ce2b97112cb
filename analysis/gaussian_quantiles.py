"""Exact quantiles of the log-determinant ratio under ``replace``.

Under ``replace`` the fitted covariance is multiplied at every iteration by an
independent random matrix: ``Sigma_hat_t = A (W_t / nu) A^T`` with ``A A^T =
Sigma_hat_{t-1}``, ``W_t ~ Wishart_d(n - 1, I)`` and ``nu`` the divisor (``n`` for the
MLE, ``n - 1`` for the unbiased estimator).  By Bartlett's decomposition ``det W_t`` is
a product of ``d`` independent chi-square variables with ``n - 1, n - 2, ..., n - d``
degrees of freedom, so the log-determinant ratio of model ``t`` is a sum of ``t d``
independent terms::

    L_t = log(det Sigma_hat_t / det Sigma0)
        = sum_{s=1}^{t} sum_{i=1}^{d} [log chi^2_{n-i} - log nu]        (n - 1 >= d).

Its expectation is :func:`collapse.analysis.gaussian.gaussian_theory`'s
``log_cov_det_ratio``.  Its *law* is known too, through the characteristic function
of one term, ``E exp(i u log chi^2_k) = 2^{iu} Gamma(k/2 + iu) / Gamma(k/2)``::

    phi_t(u) = E exp(i u L_t)
             = exp(t sum_i [i u (log 2 - log nu) + log Gamma(a_i + i u) - log Gamma(a_i)]),

with ``a_i = (n - i)/2``.  The cumulants are ``t sum_i psi^{(j-1)}(a_i)`` (``j >= 2``;
``psi`` the digamma function), so the law is left-skewed with skewness
``sum_i psi''(a_i) / (sum_i psi'(a_i))^{3/2} / sqrt(t)``, and normal as ``t d`` grows.

The distribution function comes from the Gil-Pelaez inversion formula applied to the
standardised variable ``Z = (L_t - mean) / sd``::

    F(z) = 1/2 - (1/pi) int_0^inf Im[exp(-i u z) phi_Z(u)] / u du,
    f(z) = (1/pi) int_0^inf Re[exp(-i u z) phi_Z(u)] du.

Both integrands are smooth, even in ``u`` once extended to the whole line, and
analytic in a strip around the real axis, and ``phi_Z`` decays at least
exponentially, so the midpoint rule with step ``h`` is spectrally accurate: its error
is of the order of the probability that ``Z`` lies more than ``pi / h`` from ``z``, or
``exp(-2 pi w / h)`` with ``w`` the half-width of the strip, whichever is larger
(:data:`STEP` = 0.1 puts both below ``1e-15`` for every ``n >= 2``).
``method="quad"`` evaluates the same integrals with :func:`scipy.integrate.quad`
instead (an independent route, used by the tests).  Quantiles are found by a
safeguarded Newton iteration on ``F`` (``F`` is the distribution function of a sum of
log-concave variables, so ``f`` is log-concave and unimodal).

Functions here are pure (no randomness); the tests check them against the chi-square
quantile itself (``t = 1``, ``d = 1``), the duplication formula (``t = 1``,
``d = 2``: ``chi^2_{n-1} chi^2_{n-2}`` has the law of ``(chi^2_{2n-4})^2 / 4``), large
Monte Carlo samples (a binomial test of the count below each quantile) and the
normal limit for large ``t d``.

Examples
--------
>>> from scipy import stats
>>> import math
>>> q = log_det_ratio_quantile(0.5, t=1, n=5, dim=1)
>>> round(q, 6), round(math.log(stats.chi2.ppf(0.5, 4) / 5), 6)
(-0.398481, -0.398481)
>>> [round(v, 3) for v in replace_log_det_quantiles(n=20, dim=2, iterations=3)[0.5]]
[-0.248, -0.515, -0.781]
>>> round(float(log_det_ratio_cdf(-0.515, t=2, n=20, dim=2)), 3)
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special

from collapse.analysis.checks import check_int
from collapse.analysis.vocabulary import COVARIANCE_ESTIMATORS, MLE

__all__ = [
    "LogDetLaw",
    "log_det_law",
    "log_det_ratio_cf",
    "log_det_ratio_cdf",
    "log_det_ratio_pdf",
    "log_det_ratio_quantile",
    "replace_log_det_quantiles",
    "QUARTILES",
    "STEP",
]

#: The probabilities whose exact quantiles ``compare`` tests (the quartiles).
QUARTILES: tuple[float, ...] = (0.25, 0.5, 0.75)

#: Midpoint step of the inversion integrals, in units of ``1 / sd`` (see the module
#: docstring for why the rule is spectrally accurate).
STEP = 0.1

#: The characteristic function is integrated until its modulus falls below this.
_TAIL = 1e-17


@dataclass(frozen=True)
class LogDetLaw:
    """The law of ``L_t = log(det Sigma_hat_t / det Sigma0)`` under ``replace``.

    Attributes
    ----------
    t, n, dim : int
        Iteration (``t = 1``: fitted on the real data), sample size and dimension.
    covariance : str
        ``"mle"`` (divisor ``nu = n``) or ``"unbiased"`` (``nu = n - 1``).
    mean, sd, skewness : float
        Exact cumulant summaries: ``mean = t sum_i [psi(a_i) + log(2/nu)]``,
        ``sd^2 = t sum_i psi'(a_i)``, ``skewness = t sum_i psi''(a_i) / sd^3``, with
        ``a_i = (n - i)/2``.

    Examples
    --------
    >>> law = log_det_law(t=10, n=20, dim=2)
    >>> round(law.mean, 4), round(law.sd, 4), law.skewness < 0
    (-2.6679, 1.5117, True)
    """

    t: int
    n: int
    dim: int
    covariance: str
    mean: float
    sd: float
    skewness: float

    @property
    def shapes(self) -> np.ndarray:
        """``a_i = (n - i)/2`` for ``i = 1..dim``: half the degrees of freedom of each term."""
        return (self.n - np.arange(1, self.dim + 1)) / 2.0

    @property
    def divisor(self) -> int:
        """``nu``: ``n`` (MLE) or ``n - 1`` (unbiased)."""
        return self.n if self.covariance == MLE else self.n - 1

    def log_cf_standardised(self, u: np.ndarray) -> np.ndarray:
        """``log E exp(i u Z)`` for ``Z = (L_t - mean) / sd``, at real ``u`` (any shape).

        Written with the linear term removed analytically,
        ``t sum_i [log Gamma(a_i + i v) - log Gamma(a_i) - i v psi(a_i)]`` with
        ``v = u / sd``, so no large phases cancel.
        """
        u = np.asarray(u, dtype=float)
        v = (u / self.sd)[..., None]
        a = self.shapes
        terms = (special.loggamma(a + 1j * v) - special.loggamma(a + 0j)
                 - 1j * v * special.digamma(a))
        return self.t * terms.sum(axis=-1)


def _check(t: int, n: int, dim: int, covariance: str) -> tuple[int, int, int, str]:
    t = check_int("t", t, 1)
    n = check_int("n", n, 2)
    dim = check_int("dim", dim, 1)
    if covariance not in COVARIANCE_ESTIMATORS:
        raise ValueError(f"covariance must be one of {', '.join(COVARIANCE_ESTIMATORS)} "
                         f"(got {covariance!r})")
    if n - 1 < dim:
        raise ValueError(f"the log-determinant ratio is -inf with probability one when "
                         f"n - 1 < dim (got n = {n}, dim = {dim}): no quantiles")
    return t, n, dim, covariance


def log_det_law(t: int, n: int, dim: int, covariance: str = MLE) -> LogDetLaw:
    """The exact law of the replace log-determinant ratio of model ``t`` (:class:`LogDetLaw`).

    Parameters
    ----------
    t : int
        Model-fitting iteration, ``>= 1``.
    n : int
        Points drawn from every model, with ``n - 1 >= dim``.
    dim : int
        Dimension ``d``.
    covariance : {"mle", "unbiased"}
        The divisor of the fitted covariance.

    Returns
    -------
    LogDetLaw

    Raises
    ------
    ValueError
        For ``n - 1 < dim`` (the determinant is 0 with probability one) or bad input.

    Examples
    --------
    >>> law = log_det_law(t=1, n=2, dim=1)       # log chi^2_1 - log 2
    >>> round(law.mean, 6), round(law.sd ** 2, 6)  # psi(1/2) + log 2 - log 2, pi^2/2
    (-1.96351, 4.934802)
    """
    t, n, dim, covariance = _check(t, n, dim, covariance)
    nu = n if covariance == MLE else n - 1
    a = (n - np.arange(1, dim + 1)) / 2.0
    mean = t * float(np.sum(special.digamma(a) + math.log(2.0 / nu)))
    var = t * float(np.sum(special.polygamma(1, a)))
    third = t * float(np.sum(special.polygamma(2, a)))
    sd = math.sqrt(var)
    return LogDetLaw(t, n, dim, covariance, mean, sd, third / sd**3)


def log_det_ratio_cf(u, t: int, n: int, dim: int, covariance: str = MLE) -> np.ndarray:
    """Characteristic function ``E exp(i u L_t)`` of the replace log-determinant ratio.

    ``exp(t sum_i [i u log(2/nu) + log Gamma(a_i + i u) - log Gamma(a_i)])``,
    ``a_i = (n - i)/2``, at real ``u`` (any shape).

    Examples
    --------
    >>> complex(log_det_ratio_cf(0.0, t=3, n=10, dim=2))
    (1+0j)
    >>> round(float(abs(log_det_ratio_cf(1.0, t=1, n=2, dim=1)) ** 2), 12)  # 1 / cosh(pi)
    0.086266738334
    >>> round(1 / math.cosh(math.pi), 12)
    0.086266738334
    """
    t, n, dim, covariance = _check(t, n, dim, covariance)
    nu = n if covariance == MLE else n - 1
    u = np.asarray(u, dtype=float)
    a = (n - np.arange(1, dim + 1)) / 2.0
    iu = 1j * u[..., None]
    terms = iu * math.log(2.0 / nu) + special.loggamma(a + iu) - special.loggamma(a + 0j)
    return np.exp(t * terms.sum(axis=-1))


def _grid(law: LogDetLaw) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints ``u_k = (k - 1/2) h`` up to where ``|phi_Z|`` is negligible, and ``phi_Z``."""
    upper = 8.0
    while True:
        if law.log_cf_standardised(np.array([upper])).real[0] < math.log(_TAIL) or upper > 1e5:
            break
        upper *= 1.5
    u = (np.arange(int(math.ceil(upper / STEP))) + 0.5) * STEP
    return u, np.exp(law.log_cf_standardised(u))


def _standard_cdf_pdf(law: LogDetLaw, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, phi = _grid(law)
    phase = np.exp(-1j * np.multiply.outer(z, u)) * phi
    cdf = 0.5 - (STEP / math.pi) * (phase.imag / u).sum(axis=-1)
    pdf = (STEP / math.pi) * phase.real.sum(axis=-1)
    return np.clip(cdf, 0.0, 1.0), np.maximum(pdf, 0.0)


def _standard_cdf_quad(law: LogDetLaw, z: float) -> float:
    from scipy import integrate

    def integrand(u: float) -> float:
        if u == 0.0:
            return 0.0
        value = np.exp(-1j * u * z + law.log_cf_standardised(np.array([u]))[0])
        return value.imag / u

    upper = _grid(law)[0][-1]
    total, _ = integrate.quad(integrand, 0.0, upper, limit=400, epsabs=1e-14, epsrel=1e-12)
    return min(1.0, max(0.0, 0.5 - total / math.pi))


def log_det_ratio_cdf(x, t: int, n: int, dim: int, covariance: str = MLE, *,
                      method: str = "midpoint") -> np.ndarray:
    """``P(L_t <= x)`` for the replace log-determinant ratio (nats), by Gil-Pelaez inversion.

    Parameters
    ----------
    x : float or array
        Points (nats).
    t, n, dim, covariance
        As for :func:`log_det_law`.
    method : {"midpoint", "quad"}
        The vectorised midpoint rule (default) or :func:`scipy.integrate.quad` point
        by point (an independent route, slower).

    Returns
    -------
    numpy.ndarray
        The distribution function at ``x`` (same shape).

    Examples
    --------
    >>> from scipy import stats
    >>> x = math.log(stats.chi2.ppf(0.9, 9) / 10)   # t = 1, d = 1: log(chi^2_9 / 10)
    >>> round(float(log_det_ratio_cdf(x, t=1, n=10, dim=1)), 10)
    0.9
    >>> round(float(log_det_ratio_cdf(x, t=1, n=10, dim=1, method="quad")), 10)
    0.9
    """
    law = log_det_law(t, n, dim, covariance)
    z = (np.asarray(x, dtype=float) - law.mean) / law.sd
    if method == "midpoint":
        return _standard_cdf_pdf(law, z)[0]
    if method == "quad":
        flat = [_standard_cdf_quad(law, float(v)) for v in np.ravel(z)]
        return np.reshape(np.array(flat), np.shape(z))
    raise ValueError(f"method must be 'midpoint' or 'quad' (got {method!r})")


def log_det_ratio_pdf(x, t: int, n: int, dim: int, covariance: str = MLE) -> np.ndarray:
    """Density of the replace log-determinant ratio at ``x`` (per nat).

    Examples
    --------
    >>> from scipy import stats
    >>> y = 0.3   # t = 1, d = 1, n = 4: L = log(chi^2_3 / 4) has density e^y f_chi2(e^y) at y - log 4
    >>> round(float(log_det_ratio_pdf(y - math.log(4), t=1, n=4, dim=1)), 10)
    0.3185843713
    >>> round(float(math.exp(y) * stats.chi2.pdf(math.exp(y), 3)), 10)
    0.3185843713
    """
    law = log_det_law(t, n, dim, covariance)
    z = (np.asarray(x, dtype=float) - law.mean) / law.sd
    return _standard_cdf_pdf(law, z)[1] / law.sd


def _standard_quantiles(law: LogDetLaw, probabilities: np.ndarray) -> np.ndarray:
    """Safeguarded Newton iteration for ``F(z) = p``, vectorised over ``p``."""
    p = np.asarray(probabilities, dtype=float)
    zp = special.ndtri(p)
    z = zp + (zp**2 - 1.0) * law.skewness / 6.0  # Cornish-Fisher start
    lo = np.full(p.shape, -np.inf)
    hi = np.full(p.shape, np.inf)
    for _ in range(100):
        cdf, pdf = _standard_cdf_pdf(law, z)
        error = cdf - p
        lo = np.where(error < 0, np.maximum(lo, z), lo)
        hi = np.where(error >= 0, np.minimum(hi, z), hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(pdf > 0, error / pdf, np.sign(error))
        new = z - np.clip(step, -2.0, 2.0)
        # outside the bracket: bisect (or step out of a one-sided bracket)
        bad = ~((new > lo) & (new < hi))
        mid = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi),
                       np.where(np.isfinite(lo), lo + 2.0, hi - 2.0))
        new = np.where(bad, mid, new)
        done = (np.abs(error) < 1e-13) | (np.abs(new - z) < 1e-12)
        z = np.where(done, z, new)
        if done.all():
            return z
    raise ArithmeticError("the quantile iteration did not converge")  # pragma: no cover


def log_det_ratio_quantile(p, t: int, n: int, dim: int, covariance: str = MLE) -> np.ndarray:
    """The exact ``p``-quantile(s) of the replace log-determinant ratio of model ``t`` (nats).

    Parameters
    ----------
    p : float or array
        Probabilities in (0, 1).
    t, n, dim, covariance
        As for :func:`log_det_law`.

    Returns
    -------
    float or numpy.ndarray
        ``x`` with ``P(L_t <= x) = p`` (a float for scalar ``p``).

    Examples
    --------
    >>> from scipy import stats
    >>> round(float(log_det_ratio_quantile(0.25, t=1, n=2, dim=1)), 8)  # log(chi^2_1 / 2)
    -2.98053785
    >>> round(math.log(stats.chi2.ppf(0.25, 1) / 2), 8)
    -2.98053785
    """
    probabilities = np.asarray(p, dtype=float)
    if not np.all((probabilities > 0) & (probabilities < 1)):
        raise ValueError(f"probabilities must lie in (0, 1) (got {p!r})")
    law = log_det_law(t, n, dim, covariance)
    x = law.mean + law.sd * _standard_quantiles(law, np.atleast_1d(probabilities))
    return float(x[0]) if probabilities.ndim == 0 else x.reshape(probabilities.shape)


def replace_log_det_quantiles(n: int, dim: int, iterations: int, covariance: str = MLE,
                              probabilities: Sequence[float] = QUARTILES
                              ) -> dict[float, tuple[float, ...]]:
    """Exact quantiles of the replace log-determinant ratio for ``t = 1..iterations``.

    Parameters
    ----------
    n, dim, covariance
        As for :func:`log_det_law` (``n - 1 >= dim``).
    iterations : int
        Last model-fitting iteration.
    probabilities : sequence of float
        Default :data:`QUARTILES`.

    Returns
    -------
    dict
        ``{p: (q_1, ..., q_iterations)}`` in nats.

    Examples
    --------
    >>> q = replace_log_det_quantiles(n=100, dim=10, iterations=100)
    >>> [round(q[p][99], 2) for p in QUARTILES]    # quartiles at t = 100
    [-70.78, -67.66, -64.54]
    """
    iterations = check_int("iterations", iterations, 1)
    probs = np.asarray(list(probabilities), dtype=float)
    rows = [log_det_ratio_quantile(probs, t, n, dim, covariance) for t in range(1, iterations + 1)]
    return {float(p): tuple(float(row[j]) for row in rows) for j, p in enumerate(probs)}
