"""Exact expected test error of iterated least squares on one fixed design.

The setting.  A design ``X`` (``n`` rows, ``d`` columns, iid ``N(0, 1)`` entries) is drawn
once and reused by every model; the true weights are ``w ~ N(0, I_d)``; the real labels
are ``y = X w + e``, ``e ~ N(0, sigma2 I_n)``.  Model ``t`` is ordinary least squares
(the pseudo-inverse) on its training set ``D_t``, and the batch it produces has labels
``X w_hat_t + N(0, sigma2 I_n)`` on the same design.  ``D_t`` stacks the copies of ``X``
of the batches the workflow rule keeps (:mod:`collapse.analysis.workflows`); a fresh
real batch is new labels ``X w + N(0, sigma2 I_n)``.  The metric ``test_mse`` is
``||w_hat_t - w||^2``, the excess test error on fresh isotropic inputs
``x ~ N(0, I_d)`` against noiseless labels (``E_x (x^T (w_hat_t - w))^2``), in squared
label units.

Derivation.  Let ``X = U S V^T`` (thin SVD, rank ``r``), ``P = X^+ X`` the projection on
the row space.  The pseudo-inverse of ``c`` stacked copies of ``X`` is ``(1/c)[X^+ ...
X^+]``, so the fit on ``c`` whole batches is the *average of the batch fits*
``X^+ y_b``.  A synthetic batch from model ``j`` has fit ``P w_hat_j + X^+ eps =
w_hat_j + X^+ eps`` (``w_hat_j`` already lies in the row space); a real batch has fit
``P w + X^+ e``.  So ``w_hat_t - w = delta_t - (I - P) w`` with ``delta_t`` in the row
space, a linear combination of independent noises ``X^+ e ~ N(0, sigma2 (X^T X)^+)``,
whose coefficients do not depend on ``X``: ``E[||delta_t||^2 | X] = sigma2
tr((X^T X)^+) s_t`` with a rational sequence ``s_t`` fixed by the rule
(:func:`collapse.analysis.pooling.pooled_moments` with ``rho = v = 1``).  The bias is
orthogonal to the row space and ``E||(I - P) w||^2 = d - r`` for ``w ~ N(0, I_d)``:

    E[test_mse_t | X] = sigma2 tr((X^T X)^+) s_t + (d - r).

Averaged over ``X``: ``E tr (X^T X)^{-1} = d/(n - d - 1)`` for ``n >= d + 2`` (the mean
of an inverse Wishart matrix, ``E W^{-1} = I/(m - p - 1)`` for ``W ~ Wishart_p(m, I)``);
for ``n <= d - 2`` the design has rank ``n`` and ``E tr (X^T X)^+ = E tr (X X^T)^{-1} =
n/(d - n - 1)``, with bias ``d - n``; for ``n`` in ``{d - 1, d, d + 1}`` the expectation
is infinite (the smallest singular value of ``X`` has too much mass near zero).

Closed forms of ``s_t`` (see :mod:`collapse.analysis.pooling_symbolic`): replace ``t``;
accumulate ``sum_{i=1}^t 1/i^2`` (at most ``pi^2/6``); fresh ``2/3 + (1/3) 4^(1-t)``;
``real=original,synthetic=latest`` ``4/3 - (1/3) 4^(1-t)``; ``real=none,synthetic=all``
``1 + sum_{i=1}^{t-1} 1/i^2``; ``real=fresh,synthetic=all`` ``3 sum_{i=1}^t 1/i^2 - 4 +
2/t``.  Windows ``synthetic=window:K`` are exact through the Gram-matrix recursion.

A rule with ``size`` (accumulate-subsample and every subsampling rule) fits a random
subset of the stacked rows: rows of ``X`` repeat or drop out, so the subsample's design
differs from ``X`` and the error is no longer a linear function of batch second moments.
It has no exact theory here (Monte Carlo only; the published runs show about three times
the first error, levelling off).

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> values, notes = regression_theory(Workflow.parse("replace"), dim=10, n=100,
...                                   sigma2=1.0, iterations=3)
>>> [round(v, 4) for v in values["test_mse"]]
[0.1124, 0.2247, 0.3371]
>>> error_ratios(Workflow.parse("accumulate"), 3)
[Fraction(1, 1), Fraction(5, 4), Fraction(49, 36)]
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from collapse.analysis.checks import check_int, check_real
from collapse.analysis.errors import CollapseError
from collapse.analysis.pooling import as_workflow, pooled_moments
from collapse.analysis.vocabulary import TEST_MSE
from collapse.analysis.workflows import Workflow

__all__ = [
    "check_design",
    "design_inverse_trace",
    "error_ratios",
    "expected_inverse_trace",
    "regression_formula",
    "regression_limit",
    "regression_theory",
]

_MP = mpmath.MPContext()
_MP.dps = 50


def error_ratios(workflow: Workflow | str, iterations: int, *, one: Any = Fraction(1)
                 ) -> list[Any]:
    """``s_t = E[||delta_t||^2 | X] / (sigma2 tr (X^T X)^+)``, ``t = 1..iterations``, exactly.

    Defined for rules that keep whole batches (no ``size``); the arithmetic follows
    ``one`` (``Fraction(1)`` exact, an ``mpf`` for long runs).
    """
    workflow = as_workflow(workflow)
    iterations = check_int("iterations", iterations, 1)
    if workflow.size is not None:
        raise CollapseError(f"workflow {workflow.label} subsamples its pool: test_mse has no "
                            f"exact theory (Monte Carlo only)")
    return pooled_moments(workflow, 2, iterations, real_variance=one,
                          noise_variance=lambda _second: one)


def expected_inverse_trace(n: int, dim: int) -> Fraction | float:
    """``E tr (X^T X)^+`` for an ``n x d`` design of iid ``N(0, 1)`` entries.

    ``d/(n - d - 1)`` for ``n >= d + 2``, ``n/(d - n - 1)`` for ``n <= d - 2``, ``inf``
    for ``|n - d| <= 1``.

    Examples
    --------
    >>> expected_inverse_trace(100, 10)
    Fraction(10, 89)
    >>> expected_inverse_trace(11, 10)
    inf
    """
    n = check_int("n", n, 1)
    dim = check_int("dim", dim, 1)
    if n >= dim + 2:
        return Fraction(dim, n - dim - 1)
    if n <= dim - 2:
        return Fraction(n, dim - n - 1)
    return math.inf


def check_design(design: Any, n: int, dim: int) -> np.ndarray:
    """``design`` as a finite float64 array of shape ``(n, dim)``, else :class:`CollapseError`."""
    try:
        array = np.array(design, dtype=np.float64)
    except (TypeError, ValueError):
        raise CollapseError(f"design must be a numeric array of shape ({n}, {dim})") from None
    if array.shape != (n, dim):
        raise CollapseError(f"design must be an array of shape (n, dim) = ({n}, {dim}) "
                            f"(got shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise CollapseError("design must hold finite numbers (got NaN or inf)")
    return array


def design_inverse_trace(design: np.ndarray) -> tuple[float, int]:
    """``(tr (X^T X)^+, rank X)`` of a design, with numpy's ``pinv`` cutoff.

    Singular values at most ``max(n, d) eps s_max`` count as zero, as in
    ``numpy.linalg.pinv``; ``tr (X^T X)^+ = sum_{s_i > cutoff} 1/s_i^2``.
    """
    values = np.linalg.svd(np.asarray(design, dtype=np.float64), compute_uv=False)
    if values.size == 0 or values[0] == 0:
        return 0.0, 0
    cutoff = max(design.shape) * np.finfo(np.float64).eps * values[0]
    kept = values[values > cutoff]
    return float(_MP.fsum(1 / _MP.mpf(float(s)) ** 2 for s in kept)), int(kept.size)


def regression_theory(workflow: Workflow | str, *, dim: int, n: int, sigma2: float,
                      iterations: int, design: Any = None,
                      ) -> tuple[dict[str, tuple[float, ...]], tuple[str, ...]]:
    """Exact ``E test_mse`` of models ``t = 1..iterations`` (see the module docstring).

    Parameters
    ----------
    workflow : Workflow or str
        The rule for ``D_t``.
    dim : int
        ``d >= 1`` columns of the design.
    n : int
        ``n >= 2`` rows (labels per batch).
    sigma2 : float
        Label-noise variance, ``> 0``.
    iterations : int
        Number of models, ``>= 1``.
    design : array_like, optional
        A fixed ``(n, dim)`` design: the expectation is then conditional on it
        (over ``w ~ N(0, I_d)`` and the label noise); otherwise it is averaged over
        Gaussian designs as well.

    Returns
    -------
    values : dict
        ``{"test_mse": (E test_mse_1, ..., E test_mse_T)}`` in squared label units;
        empty where the rule subsamples (no exact theory).  ``inf`` where the
        expectation diverges, never NaN.
    notes : tuple of str
        What the values average over, and why a value is infinite or absent.

    Examples
    --------
    >>> values, notes = regression_theory("accumulate", dim=10, n=100, sigma2=1.0,
    ...                                   iterations=10)
    >>> round(values["test_mse"][-1], 4)
    0.1741
    >>> regression_theory("replace", dim=10, n=10, sigma2=1.0, iterations=2)[0]
    {'test_mse': (inf, inf)}
    """
    dim = check_int("dim", dim, 1)
    n = check_int("n", n, 2)
    sigma2 = check_real("sigma2", sigma2, low=0)
    iterations = check_int("iterations", iterations, 1)
    workflow = as_workflow(workflow, n)
    if design is not None:
        design = check_design(design, n, dim)
    notes: list[str] = []
    if workflow.size is not None:
        notes.append(f"{TEST_MSE} has no exact theory for {workflow.label}: a random subset of "
                     f"the stacked rows repeats some rows of the design and drops others, so "
                     f"the fit is not an average of batch fits; Monte Carlo only")
        return {}, tuple(notes)

    ratios = error_ratios(workflow, iterations, one=_MP.mpf(1))
    if design is not None:
        trace, rank = design_inverse_trace(design)
        bias = dim - rank
        notes.append(f"{TEST_MSE} is conditional on the given design (tr (X^T X)^+ = "
                     f"{trace:.6g}, rank {rank}), averaged over w ~ N(0, I_d) and the noise")
        scale: Any = _MP.mpf(trace)
    else:
        expected = expected_inverse_trace(n, dim)
        notes.append(f"{TEST_MSE} is averaged over designs with iid N(0, 1) entries, "
                     f"w ~ N(0, I_d) and the noise")
        if expected == math.inf:
            notes.append(f"{TEST_MSE} is inf: with n = {n} and dim = {dim} (|n - dim| <= 1) "
                         f"E tr (X^T X)^+ diverges, because the smallest singular value of "
                         f"the design has too much probability near zero")
            return {TEST_MSE: tuple(math.inf for _ in ratios)}, tuple(notes)
        rank = min(n, dim)
        bias = dim - rank
        scale = _MP.mpf(expected.numerator) / expected.denominator
    if bias:
        notes.append(f"{TEST_MSE} includes the bias d - rank = {bias}: the pseudo-inverse "
                     f"fit lies in the {rank}-dimensional row space of the design, which "
                     f"misses E||(I - P) w||^2 = {bias} of the true weights")
    values = tuple(float(sigma2 * scale * s + bias) for s in ratios)
    return {TEST_MSE: values}, tuple(notes)


def regression_formula(metric: str, workflow: Workflow | str, *, given_design: bool = False):
    """``E test_mse_t`` as a sympy expression; see
    :func:`collapse.analysis.regression_symbolic.regression_formula`."""
    from collapse.analysis.regression_symbolic import regression_formula as impl

    return impl(metric, workflow, given_design=given_design)


def regression_limit(metric: str, workflow: Workflow | str, *, given_design: bool = False):
    """``lim_{t -> oo} E test_mse_t`` (sympy); see
    :func:`collapse.analysis.regression_symbolic.regression_limit`."""
    from collapse.analysis.regression_symbolic import regression_limit as impl

    return impl(metric, workflow, given_design=given_design)

