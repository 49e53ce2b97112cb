"""Fitting Gaussians to stacks of point sets, and what the engines record per iteration.

Helpers of :mod:`collapse.simulate.gaussian`: the validated configuration of a run,
the per-replicate record of raw quantities, the fitted model of a stack of training
sets (mean, covariance factor and the metrics' raw terms), and reusable buffers.
Every function works on whole stacks ``(R, ...)`` and the result for one replicate
never depends on the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from collapse.simulate._linalg import safe_cholesky, tri_inv


@dataclass(frozen=True)
class Config:
    """Validated arguments of one run; ``engine`` is resolved (never ``auto``).

    ``workflow`` is the rule's label (a preset name or its canonical spec) and ``rule``
    the :class:`~collapse.analysis.workflows.Workflow` itself.
    """

    workflow: str
    engine: str
    n: int
    dim: int
    iterations: int
    sigma2: float
    unbiased: bool
    rule: Any = None

    @property
    def singular(self) -> bool:
        """Every fitted covariance is singular (``n - 1 < d``)."""
        return self.n - 1 < self.dim

    @property
    def rank(self) -> int:
        """Dimension ``k`` of the subspace the models live in."""
        return min(self.dim, self.n - 1)

    def divisor(self, m: int) -> int:
        return m - 1 if self.unbiased else m


@dataclass
class Record:
    """Raw per-replicate quantities, arrays ``(replicates, iterations)``, standardised units.

    ``mu_sq = ||mu_hat||^2``, ``trace = tr Sigma_hat``, ``logdet = log det Sigma_hat``,
    ``trinv = tr Sigma_hat^{-1}``, ``quad = mu_hat^T Sigma_hat^{-1} mu_hat``.
    """

    mu_sq: np.ndarray
    trace: np.ndarray
    logdet: np.ndarray
    trinv: np.ndarray
    quad: np.ndarray

    @classmethod
    def empty(cls, replicates: int, iterations: int) -> "Record":
        return cls(*(np.empty((replicates, iterations)) for _ in range(5)))

    def put(self, rows: slice, t: int, mu_sq, trace, logdet, trinv, quad) -> None:
        self.mu_sq[rows, t - 1] = mu_sq
        self.trace[rows, t - 1] = trace
        self.logdet[rows, t - 1] = logdet
        self.trinv[rows, t - 1] = trinv
        self.quad[rows, t - 1] = quad

    def put_fit(self, rows: slice, t: int, fit: "Fit") -> None:
        self.put(rows, t, fit.mu_sq, fit.trace, fit.logdet, fit.trinv, fit.quad)


@dataclass
class Fit:
    """A model fitted to points, with what sampling and the stats engines need.

    A draw from the model is ``mu + g @ sampler`` with ``g ~ N(0, I_w)`` (row vectors),
    ``sampler`` ``(R, w, d)``.  ``lower`` (nonsingular fits) is the Cholesky factor of
    ``Sigma_hat`` (or a non-triangular square root where ``failed``), ``scatter`` the
    scatter matrix ``c_m Sigma_hat``.
    """

    mu: np.ndarray
    sampler: np.ndarray
    mu_sq: np.ndarray
    trace: np.ndarray
    logdet: np.ndarray
    trinv: np.ndarray
    quad: np.ndarray
    lower: np.ndarray | None = None
    scatter: np.ndarray | None = None


class Workspace:
    """Buffers reused from chunk to chunk: fresh memory is slow to touch the first time."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, type], np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get((name, dtype))
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name, dtype] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


def inverse_terms(lower: np.ndarray, mu: np.ndarray,
                  singular: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``tr Sigma^{-1} = ||L^{-1}||_F^2`` and ``mu^T Sigma^{-1} mu = ||L^{-1} mu||^2``.

    Slices flagged ``singular`` get ``+inf`` (their factor is not inverted).
    """
    if singular is not None and singular.any():
        lower = np.where(singular[:, None, None], np.eye(lower.shape[-1]), lower)
    inverse = tri_inv(lower)
    with np.errstate(over="ignore", invalid="ignore"):
        trinv = np.einsum("rij,rij->r", inverse, inverse)
        solved = np.einsum("rij,rj->ri", inverse, mu)
        quad = np.einsum("ri,ri->r", solved, solved)
    if singular is not None:
        trinv[singular] = np.inf
        quad[singular] = np.inf
    return trinv, quad


def cholesky_logdet(lower: np.ndarray, failed: np.ndarray | None) -> np.ndarray:
    """``log det(L L^T) = 2 sum_i log L_ii``; ``-inf`` for ``failed`` slices."""
    diagonal = np.diagonal(lower, axis1=1, axis2=2)
    if failed is not None:
        diagonal = np.where(failed[:, None], 1.0, diagonal)
    with np.errstate(divide="ignore"):
        logdet = 2.0 * np.sum(np.log(diagonal), axis=1)
    if failed is not None:
        logdet[failed] = -np.inf
    return logdet


def fit_points(data: np.ndarray, config: Config, centre: bool = True,
               singular: bool | None = None) -> Fit:
    """Fit mean and covariance to ``data`` ``(R, m, d)``; the metrics' raw terms.

    The scatter is ``sum (x - mu)(x - mu)^T`` from centred points, or with
    ``centre=False`` ``sum x x^T - m mu mu^T`` (one pass less; exact up to rounding
    of order ``eps m ||mu||^2``, harmless unless the covariance collapses, which
    only ``replace`` does).  float32 data (the subsample pool) are fitted in float32
    and the results widened to float64.  ``singular`` (default ``config.singular``)
    says that every covariance is singular by construction (the points span fewer
    than ``d`` dimensions): the sampler is then the centred points themselves.
    """
    reps, m, d = data.shape
    divisor = config.divisor(m)
    mu = np.matmul(np.full(m, 1.0 / m, dtype=data.dtype), data).astype(np.float64, copy=False)
    mu_sq = np.einsum("ri,ri->r", mu, mu)
    if config.singular if singular is None else singular:
        centred = data - mu[:, None, :]
        trace = np.einsum("rij,rij->r", centred, centred) / divisor
        centred *= 1.0 / math.sqrt(divisor)
        return Fit(mu=mu, sampler=centred, mu_sq=mu_sq, trace=trace,
                   logdet=np.full(reps, -np.inf), trinv=np.full(reps, np.inf),
                   quad=np.full(reps, np.inf))
    if centre:
        centred = data - mu.astype(data.dtype, copy=False)[:, None, :]
        scatter = np.matmul(centred.transpose(0, 2, 1), centred).astype(np.float64,
                                                                          copy=False)
    else:
        scatter = np.matmul(data.transpose(0, 2, 1), data).astype(np.float64, copy=False)
        scatter -= m * (mu[:, :, None] * mu[:, None, :])
    sigma = scatter / divisor
    lower, failed = safe_cholesky(sigma)
    trinv, quad = inverse_terms(lower, mu, failed)
    return Fit(mu=mu, sampler=lower.transpose(0, 2, 1), mu_sq=mu_sq,
               trace=np.einsum("rii->r", sigma), logdet=cholesky_logdet(lower, failed),
               trinv=trinv, quad=quad, lower=lower, scatter=scatter)


#: A covariance whose smallest eigenvalue is at most this fraction of its largest counts as
#: singular in :func:`fit_eigen`: rounding leaves exact null directions near
#: ``1e-16`` relative, while a sample covariance of points that span every direction falls
#: this low with probability of order ``1e-10`` (its smallest eigenvalue has a bounded
#: density near zero).
RANK_TOLERANCE = 1e-10


def fit_eigen(data: np.ndarray, config: Config) -> Fit:
    """Fit mean and covariance to ``data`` ``(R, m, d)`` whose rank is not known in advance.

    For rules whose training sets may or may not span every direction (fresh real
    batches added to points that live in a lower-dimensional subspace): the covariance
    is diagonalised, eigenvalues at most :data:`RANK_TOLERANCE` times the largest are
    null directions, and the sampler ``diag(sqrt(w)) V^T`` draws exactly from
    ``N(mu, Sigma_hat)`` whatever its rank (``d`` variates per point).  A fit with a
    null direction is singular: ``log det = -inf``, ``tr Sigma^{-1} = inf``.
    """
    reps, m, d = data.shape
    mu = np.matmul(np.full(m, 1.0 / m), data)
    mu_sq = np.einsum("ri,ri->r", mu, mu)
    centred = data - mu[:, None, :]
    sigma = np.matmul(centred.transpose(0, 2, 1), centred) / config.divisor(m)
    values, vectors = np.linalg.eigh(sigma)
    null = values <= RANK_TOLERANCE * np.maximum(values[:, -1:], 0.0)
    singular = null.any(axis=1)
    root = np.where(null, 0.0, np.sqrt(np.maximum(values, 0.0)))
    sampler = (vectors * root[:, None, :]).transpose(0, 2, 1)
    safe = np.where(null, 1.0, values)
    with np.errstate(divide="ignore"):
        logdet = np.where(singular, -np.inf, np.log(safe).sum(axis=1))
    projected = np.einsum("rdk,rd->rk", vectors, mu)
    trinv = np.where(singular, np.inf, (1.0 / safe).sum(axis=1))
    quad = np.where(singular, np.inf, (projected**2 / safe).sum(axis=1))
    return Fit(mu=mu, sampler=sampler, mu_sq=mu_sq, trace=np.einsum("rii->r", sigma),
               logdet=logdet, trinv=trinv, quad=quad)


@dataclass(frozen=True)
class Block:
    """Replicates ``lo:hi`` of a chunk (chunk-relative), their process generator and (for
    rules with ``real=fresh``) the generator of their fresh real batches."""

    lo: int
    hi: int
    rng: np.random.Generator
    fresh: np.random.Generator | None = None


def sample_block(block: Block, fit: Fit, count: int, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """``count`` draws from each model of the block: ``(B, count, d)`` (into ``out``).

    The normal variates are drawn in float64 whatever the output type, so a float32
    output is the rounding of what float64 arithmetic would give from the same draws.
    """
    sampler = fit.sampler[block.lo:block.hi]
    mu = fit.mu[block.lo:block.hi, None, :]
    noise = block.rng.standard_normal((block.hi - block.lo, count, sampler.shape[1]))
    if out is not None and out.dtype != noise.dtype:
        noise = noise.astype(out.dtype)
        sampler = sampler.astype(out.dtype)
        mu = mu.astype(out.dtype)
    points = np.matmul(noise, sampler, out=out)
    points += mu
    return points
