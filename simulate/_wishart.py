"""Exact samplers for the sufficient statistics of a Gaussian sample.

Helpers of :mod:`collapse.simulate.gaussian`.  For ``m`` iid points ``x_i = mu + A z_i``,
``z_i ~ N(0, I_k)``, the sample mean and the scatter matrix about it are
independent, with

    mean     = mu + A zbar,                   zbar ~ N(0, I_k / m)
    scatter  = sum_i (x_i - mean)(x_i - mean)^T = A W A^T,   W ~ Wishart_k(m - 1, I_k)

(Cochran's theorem: rotate the ``m`` points by an orthogonal matrix whose first row
is ``1/sqrt(m)``; the other ``m - 1`` rows give ``m - 1`` iid ``N(0, I)`` vectors
whose outer products sum to the scatter).

Bartlett decomposition: for ``df >= k``, ``W = C C^T`` where ``C`` is lower
triangular with independent entries ``C_ii = sqrt(chi^2_{df - i})`` (``i = 0..k-1``)
and ``C_ij ~ N(0, 1)`` for ``i > j``.  Drawing ``C`` costs ``k(k+1)/2`` variates
instead of the ``(m - 1) k`` of the points, whatever ``m``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def _strict_lower(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column indices of the strict lower triangle of ``k x k``, and the
    chi-square degrees-of-freedom offsets ``0..k-1`` of the diagonal."""
    rows, cols = np.tril_indices(k, -1)
    return rows, cols, np.arange(k)


def draw_bartlett(rng: np.random.Generator, reps: int, k: int, df: int,
                  factor_out: np.ndarray, logdet_out: np.ndarray) -> None:
    """Draw ``reps`` Bartlett factors of ``Wishart_k(df, I)`` into preallocated arrays.

    ``factor_out`` (reps, k, k) must be zero above the diagonal on entry (it is
    reused between calls); its diagonal and strict lower triangle are overwritten.
    ``logdet_out`` (reps,) receives ``log det(C C^T) = sum_i log chi^2_{df-i}``,
    computed from the chi-square variates themselves so it never under- or
    overflows.  Requires ``df >= k``.
    """
    rows, cols, diagonal = _strict_lower(k)
    # chi^2_nu = 2 Gamma(nu / 2)
    chi2 = rng.standard_gamma((df - diagonal) / 2.0, size=(reps, k))
    chi2 *= 2.0
    factor_out[:, rows, cols] = rng.standard_normal((reps, rows.size))
    factor_out[:, diagonal, diagonal] = np.sqrt(chi2)
    np.sum(np.log(chi2), axis=1, out=logdet_out)


def helmert(m: int) -> np.ndarray:
    """The ``(m-1) x m`` Helmert matrix: orthonormal rows, each orthogonal to ``1``.

    Row ``j`` (``j = 1..m-1``) is ``(1, ..., 1, -j, 0, ..., 0) / sqrt(j (j+1))`` with
    ``j`` ones, so for data ``X`` (m x d) ``H X`` has ``m - 1`` rows and
    ``(H X)^T (H X)`` is the scatter of ``X`` about its mean.
    """
    h = np.zeros((m - 1, m))
    for j in range(1, m):
        h[j - 1, :j] = 1.0
        h[j - 1, j] = -float(j)
        h[j - 1] /= np.sqrt(j * (j + 1.0))
    return h
