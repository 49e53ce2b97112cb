"""Problems: what is fitted to what, as validated frozen dataclasses.

A problem names a setting and its parameters, with fields named as the command-line
options (``dim`` is ``--dim``, ``sigma2`` is ``--sigma2``).  It is checked once, when it
is made, by :mod:`collapse.analysis.checks`, and raises
:class:`~collapse.analysis.errors.CollapseError` naming the bad field otherwise.
Problems know nothing of the command line, of random numbers or of engines: the
functions :func:`collapse.theory`, :func:`collapse.simulate` and
:func:`collapse.compare` take a problem and a workflow.

Examples
--------
>>> Gaussian(dim=10, n=100)
Gaussian(dim=10, n=100, sigma2=1.0, covariance='mle')
>>> KDE(truth="blobs", n=100, bandwidth=0.5).dim
2
>>> Regression(dim=10, n=100)
Regression(dim=10, n=100, sigma2=1.0, design_seed=None)
>>> Discrete(truth=(0.5, 0.3, 0.2)).categories
3
>>> Gaussian(n=1)
Traceback (most recent call last):
...
collapse.analysis.errors.CollapseError: n must be an integer >= 2 (got 1)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

from collapse.analysis.checks import check_choice, check_int, check_real
from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import (
    BANDWIDTH_RULES,
    COVARIANCE_ESTIMATORS,
    DISCRETE,
    DISCRETE_TRUTHS,
    FIXED_DIMS,
    GAUSSIAN,
    GAUSSIAN_TRUTH,
    MLE,
    REGRESSION,
    TRUTHS,
    UNIFORM,
)
from collapse.analysis.vocabulary import (
    KDE as KDE_SETTING,
)

#: Largest ``|log10|`` of a density peak ``(2 pi v)^(-d/2)`` (float64 holds about 1e+-308).
MAX_PEAK_DECADES = 300.0

#: Largest ``|log10|`` of a variance-like parameter: squares and products of such
#: numbers stay inside float64 (about 1e-308 .. 1e308).
MAX_DECADES = 100.0


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Problem:
    """Base class of problems: ``setting`` names the setting (``"gaussian"``, ...).

    Examples
    --------
    >>> p = Gaussian(dim=3)
    >>> p.setting, p.options()["dim"], p.replace(dim=4).dim
    ('gaussian', 3, 4)
    """

    setting: ClassVar[str] = ""

    def options(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready), in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "Problem":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for figure titles and summaries."""
        inner = ", ".join(f"{k}={_show(v)}" for k, v in self.options().items())
        return f"{self.setting}: {inner}"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _scale(param: str, value: object) -> float:
    """A positive scale parameter whose powers stay inside float64."""
    # one message for every refusal (0 and -1 included): the range itself
    return check_real(param, value, low=10.0 ** -MAX_DECADES, high=10.0 ** MAX_DECADES,
                      low_open=False)


@dataclass(frozen=True)
class Gaussian(Problem):
    """Iterated fitting of a multivariate Gaussian.

    The truth is ``N(0, sigma2 I_dim)``; model ``t`` is the sample mean and sample
    covariance of its training set ``D_t`` (divisor ``|D_t|``, ``covariance="mle"``, as
    the paper's code, or ``|D_t| - 1``, ``"unbiased"``), and ``n`` points are drawn from
    every model.

    Parameters
    ----------
    dim : int
        Dimension ``d >= 1``.
    n : int
        Real points, and points drawn from every model (``>= 2``).
    sigma2 : float
        Variance of every coordinate of the truth, in squared data units
        (``1e-100 .. 1e100``).
    covariance : {"mle", "unbiased"}
        The covariance divisor.

    Examples
    --------
    >>> Gaussian(dim=2, n=20, sigma2=4).describe()
    'gaussian: dim=2, n=20, sigma2=4, covariance=mle'
    """

    setting: ClassVar[str] = GAUSSIAN
    dim: int = 1
    n: int = 100
    sigma2: float = 1.0
    covariance: str = MLE

    def __post_init__(self) -> None:
        _set(self, "dim", check_int("dim", self.dim, 1))
        _set(self, "n", check_int("n", self.n, 2))
        _set(self, "sigma2", _scale("sigma2", self.sigma2))
        _set(self, "covariance", check_choice("covariance", self.covariance,
                                              COVARIANCE_ESTIMATORS))


@dataclass(frozen=True)
class KDE(Problem):
    """Iterated Gaussian kernel density estimation.

    Model ``t`` is ``p_hat_t(x) = (1/|D_t|) sum_{y in D_t} phi_h(x - y)``, ``phi_h`` the
    ``N(0, h^2 I)`` density; sampling picks a uniform point of ``D_t`` and adds
    ``N(0, h^2 I)`` noise.

    Parameters
    ----------
    truth : str
        ``gaussian`` (``N(0, sigma0^2 I_dim)``), ``blobs`` (a fixed 3-blob 2-D mixture),
        ``moons``, ``circles`` (2-D) or ``swiss-roll`` (3-D), as in sklearn with noise
        0.05.  Exact theory exists for ``gaussian`` and ``blobs``.
    n : int
        Real points, and points drawn from every model (``>= 2``).
    bandwidth : float or {"scott", "silverman"}
        Kernel bandwidth ``h`` in data units, or a rule re-estimated on ``D_t`` at every
        iteration as sklearn does (Monte Carlo only).
    dim : int, optional
        Dimension: any ``>= 1`` for ``gaussian`` (default 1); fixed by the other truths
        (leave it out or give that value).
    sigma0 : float
        Standard deviation of the ``gaussian`` truth (data units); other truths take
        only the default 1.
    heldout : int
        Held-out real points for ``test_nll`` (default 500, as in the paper).

    Examples
    --------
    >>> KDE(n=32, bandwidth="scott").bandwidth
    'scott'
    """

    setting: ClassVar[str] = KDE_SETTING
    truth: str = GAUSSIAN_TRUTH
    n: int = 100
    bandwidth: float | str = 0.5
    dim: int | None = None
    sigma0: float = 1.0
    heldout: int = 500

    def __post_init__(self) -> None:
        truth = check_choice("truth", self.truth, TRUTHS)
        _set(self, "n", check_int("n", self.n, 2))
        if isinstance(self.bandwidth, str):
            check_choice("bandwidth", self.bandwidth, BANDWIDTH_RULES)
        else:
            try:
                _set(self, "bandwidth", _scale("bandwidth", self.bandwidth))
            except CollapseError:
                raise CollapseError(
                    f"bandwidth must be a number in [1e-{MAX_DECADES:g}, 1e{MAX_DECADES:g}] or "
                    f"one of {', '.join(BANDWIDTH_RULES)} (got {self.bandwidth!r})") from None
        fixed = FIXED_DIMS.get(truth)
        if fixed is None:
            dim = 1 if self.dim is None else check_int("dim", self.dim, 1)
        else:
            if self.dim is not None and check_int("dim", self.dim, 1) != fixed:
                raise CollapseError(f"dim must be {fixed} for truth {truth} (got {self.dim})")
            dim = fixed
        _set(self, "dim", dim)
        sigma0 = _scale("sigma0", self.sigma0)
        if truth != GAUSSIAN_TRUTH and sigma0 != 1.0:
            raise CollapseError(f"sigma0 applies only to truth {GAUSSIAN_TRUTH} "
                                f"(got sigma0={sigma0:g} for truth {truth})")
        _set(self, "sigma0", sigma0)
        _set(self, "heldout", check_int("heldout", self.heldout, 1))
        # Every density of the setting is a Gaussian with a peak (2 pi v)^(-d/2): it must
        # be a float64 number for the kernel (v = h^2) and the truth (v = sigma0^2).
        scales = [("sigma0", sigma0)] + ([("bandwidth", self.bandwidth)]
                                         if self.fixed_bandwidth else [])
        for name, value in scales:
            decades = 0.5 * dim * abs(math.log10(2.0 * math.pi * value * value))
            if decades > MAX_PEAK_DECADES:
                sign = "-" if 2.0 * math.pi * value * value > 1 else "+"
                raise CollapseError(
                    f"dim must satisfy d |log10(2 pi {name}^2)| <= {2 * MAX_PEAK_DECADES:g} with "
                    f"{name}={value:g} (got {dim}: the density peak (2 pi {name}^2)^(-d/2) is "
                    f"about 1e{sign}{decades:.0f}, outside float64)")

    @property
    def fixed_bandwidth(self) -> bool:
        """Whether ``h`` is a number (exact theory possible) rather than a rule."""
        return not isinstance(self.bandwidth, str)


@dataclass(frozen=True)
class Regression(Problem):
    """Iterated ordinary least squares on one fixed design (the paper's linear regression).

    A design ``X`` (``n`` rows, ``dim`` columns, iid ``N(0, 1)`` entries) is drawn once and
    reused by every model; the true weights are ``w ~ N(0, I_dim)``; the real labels are
    ``X w + N(0, sigma2 I_n)``.  Model ``t`` is the least-squares fit (pseudo-inverse) on
    its training set, and the labels it produces are ``X w_hat_t + N(0, sigma2 I_n)`` on
    the same design.  The metric ``test_mse`` is ``||w_hat_t - w||^2``, the excess test
    error on fresh isotropic inputs against noiseless labels.

    Parameters
    ----------
    dim : int
        Columns ``d >= 1`` of the design.
    n : int
        Rows of the design (labels per batch), ``>= 2``.  Where ``n <= dim + 1`` the exact
        expectation averaged over designs is infinite (``|n - dim| <= 1``) or includes
        the bias ``dim - n`` of the pseudo-inverse (``n <= dim - 2``); the Monte Carlo
        runs either way.
    sigma2 : float
        Label-noise variance, in squared label units (``1e-100 .. 1e100``).
    design_seed : int, optional
        ``None`` (default): every replicate draws its own design, and the theory is
        averaged over designs.  An integer ``>= 0``: one design, drawn from this seed
        and shared by every replicate; the theory is then conditional on it.

    Examples
    --------
    >>> Regression(dim=3, n=20, sigma2=0.5).describe()
    'regression: dim=3, n=20, sigma2=0.5, design_seed=None'
    >>> Regression(sigma2=-1)
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: sigma2 must be a number in [1e-100, 1e+100] (got -1.0)
    """

    setting: ClassVar[str] = REGRESSION
    dim: int = 1
    n: int = 100
    sigma2: float = 1.0
    design_seed: int | None = None

    def __post_init__(self) -> None:
        _set(self, "dim", check_int("dim", self.dim, 1))
        _set(self, "n", check_int("n", self.n, 2))
        _set(self, "sigma2", _scale("sigma2", self.sigma2))
        if self.design_seed is not None:
            _set(self, "design_seed", check_int("design_seed", self.design_seed, 0))


def _truth_error(truth: object) -> CollapseError:
    return CollapseError(f"truth must be one of {', '.join(DISCRETE_TRUTHS)} or a probability "
                         f"vector such as 0.5,0.3,0.2 (got {truth!r})")


@dataclass(frozen=True)
class Discrete(Problem):
    """Iterated fitting of a discrete distribution by its empirical frequencies.

    Model ``t`` is the vector of category frequencies of its training set (the
    maximum-likelihood estimate), and ``n`` points are drawn from every model.  A
    category that reaches frequency zero never returns.

    Parameters
    ----------
    categories : int, optional
        ``K >= 2``.  Default 10 for a named truth; for a probability vector, its length
        (give it or leave it out).
    n : int
        Real points, and points drawn from every model (``>= 2``).
    truth : str or sequence of float
        ``"uniform"`` (``p_i = 1/K``), ``"zipf"`` (``p_i`` proportional to ``1/i``), or
        the probabilities themselves: finite, non-negative, ``K`` of them, summing to one
        within ``1e-9``.  Kept as a tuple of floats.

    Examples
    --------
    >>> Discrete()
    Discrete(categories=10, n=10, truth='uniform')
    >>> Discrete(truth=[0.7, 0.2, 0.1], n=5).truth
    (0.7, 0.2, 0.1)
    >>> Discrete(truth=(0.5, 0.6))
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: truth must sum to one within 1e-9 (sums to 1.1)
    """

    setting: ClassVar[str] = DISCRETE
    categories: int | None = None
    n: int = 10
    truth: str | tuple[float, ...] = UNIFORM

    def __post_init__(self) -> None:
        truth = self.truth
        if isinstance(truth, str):
            if truth not in DISCRETE_TRUTHS:
                raise _truth_error(truth)
            implied = 10
        else:
            try:
                values = tuple(truth)  # type: ignore[arg-type]
            except TypeError:
                raise _truth_error(truth) from None
            if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                       for v in values):
                raise _truth_error(truth)
            truth = tuple(float(v) for v in values)
            implied = len(truth)
            if implied < 2:
                raise CollapseError(f"truth must give at least 2 probabilities (got {implied})")
        categories = implied if self.categories is None else self.categories
        categories = check_int("categories", categories, 2)
        if not isinstance(truth, str):
            # the one check of a truth vector (length, finite, non-negative, sums to one);
            # a named truth is made only where it is used (K may be too large to hold)
            from collapse.analysis.discrete import check_truth

            check_truth(truth, categories)
        _set(self, "categories", categories)
        _set(self, "n", check_int("n", self.n, 2))
        _set(self, "truth", truth)
