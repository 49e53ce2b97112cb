"""Sufficient-statistic engines of the Gaussian setting (``engine="stats"``).

A batch of ``n`` points from ``N(mu, A A^T)`` has mean ``mu + A g / sqrt(n)`` and scatter
``A C C^T A^T``, ``C`` a Bartlett factor of ``Wishart_k(n-1, I)``, independent
(:mod:`collapse.simulate._wishart`), so an iteration costs ``O(d^3)`` per replicate
whatever ``n``.  ``replace`` keeps a triangular factor ``A_t = A_{t-1} C_t / sqrt(c_n)``
and its log-determinant as a running sum of ``log chi^2`` variates (no underflow
however far the covariance collapses); ``accumulate`` keeps the pool's count, mean and
scatter and merges each batch (Chan et al.:
``M <- M + W + (N n / (N + n)) (xbar - m)(xbar - m)^T``).  When ``n - 1 < d`` both run
in the ``k = n - 1`` dimensional span of the real points (coordinates ``w = Q^T x`` for
an orthonormal basis ``Q`` of it, with the constant part of the real mean orthogonal
to it added back to ``mean_sq_error``).

Every other rule that keeps whole batches (``size=all``) runs in :func:`rule_stats_chunk`:
each batch is its ``(mean, scatter)``, the synthetic batches of a window in a ring of
``K`` slots (batch ``S_j`` in slot ``(j - 1) mod K``) or, under ``synthetic=all``, merged
into one running pool, and the training set of model ``t`` is the merge of its parts by
Chan's formula, ``M = sum_p M_p + sum_p c_p (xbar_p - m)(xbar_p - m)^T``.  A fresh real
batch is ``(g / sqrt(n), C C^T)`` with ``g`` standard normal and ``C`` a Bartlett factor of
``Wishart_d(n - 1, I)``, drawn from the block's ``FRESH`` stream; fresh batches span new
directions, so rules with ``real=fresh`` run here only when ``n - 1 >= d``.

Each iteration draws a fixed number of variates per replicate from the block's
process stream (and, under ``real=fresh``, its fresh stream), so the first ``t``
iterations never depend on how many follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collapse.simulate._linalg import safe_cholesky
from collapse.simulate._wishart import draw_bartlett, helmert
from collapse.simulate.gaussian_fit import (
    Block,
    Config,
    Fit,
    Record,
    Workspace,
    cholesky_logdet,
    fit_points,
    inverse_terms,
)
from collapse.simulate.streams import check_interrupted


@dataclass
class _Reduced:
    """Model 1 in coordinates of the subspace the process lives in (dimension ``k``).

    ``mu`` ``(R, k)``, ``factor`` ``(R, k, k)`` with ``factor factor^T = Sigma_hat_1``,
    ``scatter = c_n Sigma_hat_1``, and ``offset_sq`` the squared norm of the part of the
    real mean orthogonal to the subspace (0 when ``n - 1 >= d``).
    """

    mu: np.ndarray
    factor: np.ndarray
    scatter: np.ndarray
    offset_sq: np.ndarray


def _reduce(real: np.ndarray, fit: Fit, config: Config) -> _Reduced:
    reps = real.shape[0]
    if not config.singular:
        return _Reduced(mu=fit.mu, factor=fit.lower, scatter=fit.scatter,
                        offset_sq=np.zeros(reps))
    # Y = H X has the real points' scatter, Y^T Y; Y^T = Q R spans their affine hull
    rows = np.matmul(helmert(config.n), real)
    basis, upper = np.linalg.qr(rows.transpose(0, 2, 1))
    mu = np.einsum("rdk,rd->rk", basis, fit.mu)
    orthogonal = fit.mu - np.einsum("rdk,rk->rd", basis, mu)
    scatter = np.matmul(upper, upper.transpose(0, 2, 1))
    return _Reduced(mu=mu, factor=upper * (1.0 / math.sqrt(config.divisor(config.n))),
                    scatter=scatter, offset_sq=np.einsum("rd,rd->r", orthogonal, orthogonal))


class _BatchDraws:
    """Per-iteration variates of a chunk for the stats engines, filled block by block.

    ``mean_noise`` ``(R, k)`` standard normal; ``bartlett`` ``(R, k, k)`` Bartlett factors
    of ``Wishart_k(n - 1, I)``; ``bartlett_logdet`` ``(R,)`` their ``log det(C C^T)``.
    """

    def __init__(self, reps: int, k: int, df: int) -> None:
        self.k, self.df = k, df
        self.mean_noise = np.empty((reps, k))
        self.bartlett = np.zeros((reps, k, k))
        self.bartlett_logdet = np.empty(reps)

    def draw(self, blocks: list[Block], fresh: bool = False) -> None:
        """Fill from each block's process stream (or, ``fresh=True``, its fresh stream)."""
        for block in blocks:
            part = slice(block.lo, block.hi)
            rng = block.fresh if fresh else block.rng
            rng.standard_normal(out=self.mean_noise[part])
            draw_bartlett(rng, block.hi - block.lo, self.k, self.df,
                          self.bartlett[part], self.bartlett_logdet[part])


def replace_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                         record: Record, rows: slice, workspace: Workspace) -> None:
    """Replace by ``mu_t = mu_{t-1} + A g / sqrt(n)``, ``A_t = A_{t-1} C_t / sqrt(c_n)``."""
    fit = fit_points(real, config)
    record.put_fit(rows, 1, fit)
    reduced = _reduce(real, fit, config)
    mu, factor, logdet = reduced.mu, reduced.factor, fit.logdet
    k, n = config.rank, config.n
    divisor = config.divisor(n)
    # a failed Cholesky factor is not triangular; such replicates stay singular
    dead = ~np.isfinite(logdet)
    draws = _BatchDraws(real.shape[0], k, n - 1)
    for t in range(2, config.iterations + 1):
        check_interrupted()
        draws.draw(blocks)
        mu = mu + np.einsum("rij,rj->ri", factor, draws.mean_noise) * (1.0 / math.sqrt(n))
        factor = np.matmul(factor, draws.bartlett)
        factor *= 1.0 / math.sqrt(divisor)
        logdet = logdet + (draws.bartlett_logdet - k * math.log(divisor))
        if config.singular:
            trinv = quad = np.full(real.shape[0], np.inf)
        else:
            trinv, quad = inverse_terms(factor, mu, dead if dead.any() else None)
        record.put(rows, t, np.einsum("ri,ri->r", mu, mu) + reduced.offset_sq,
                   np.einsum("rij,rij->r", factor, factor), logdet, trinv, quad)


def accumulate_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                            record: Record, rows: slice, workspace: Workspace) -> None:
    """Accumulate by merging each batch's (mean, Wishart scatter) into the pool's."""
    fit = fit_points(real, config)
    record.put_fit(rows, 1, fit)
    reduced = _reduce(real, fit, config)
    mean, scatter, factor = reduced.mu, reduced.scatter, reduced.factor
    k, n = config.rank, config.n
    reps = real.shape[0]
    size = n
    draws = _BatchDraws(reps, k, n - 1)
    for t in range(2, config.iterations + 1):
        check_interrupted()
        draws.draw(blocks)
        shift = np.einsum("rij,rj->ri", factor, draws.mean_noise) * (1.0 / math.sqrt(n))
        root = np.matmul(factor, draws.bartlett)
        merged = size + n
        scatter = (scatter + np.matmul(root, root.transpose(0, 2, 1))
                   + (size * n / merged) * shift[:, :, None] * shift[:, None, :])
        mean = mean + (n / merged) * shift
        size = merged
        sigma = scatter / config.divisor(size)
        factor, failed = safe_cholesky(sigma)
        if config.singular:
            logdet = np.full(reps, -np.inf)
            trinv = quad = np.full(reps, np.inf)
        else:
            logdet = cholesky_logdet(factor, failed)
            trinv, quad = inverse_terms(factor, mean, failed)
        record.put(rows, t, np.einsum("ri,ri->r", mean, mean) + reduced.offset_sq,
                   np.einsum("rii->r", sigma), logdet, trinv, quad)


def _merge(counts: np.ndarray, means: np.ndarray, scatters: np.ndarray
           ) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and scatter of the union of parts ``(R, P, k)``, ``(R, P, k, k)``."""
    total = int(counts.sum())
    weights = counts / total
    mean = np.einsum("p,rpk->rk", weights, means)
    deviation = means - mean[:, None, :]
    scatter = scatters.sum(axis=1) + np.einsum("p,rpi,rpj->rij", counts.astype(float),
                                               deviation, deviation)
    return total, mean, scatter


def rule_stats_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                     record: Record, rows: slice, workspace: Workspace) -> None:
    """Any rule with ``size=all``: merge the per-batch (mean, scatter) of ``D_t``."""
    rule = config.rule
    fit = fit_points(real, config)
    record.put_fit(rows, 1, fit)
    T = config.iterations
    if T == 1:
        return
    reduced = _reduce(real, fit, config)
    k, n = config.rank, config.n
    reps = real.shape[0]
    mean, factor = reduced.mu, reduced.factor  # model 1
    draws = _BatchDraws(reps, k, n - 1)
    fresh = _BatchDraws(reps, k, n - 1) if rule.real == "fresh" else None
    # A window always lives in a ring (never a function of T, so that the first t
    # iterations are the same arithmetic whatever the iteration count).
    ring = rule.window is not None
    slots = min(rule.window, T - 1) if ring else 1
    means = np.zeros((reps, 1 + slots, k))  # part 0: the real part; then the synthetic parts
    scatters = np.zeros((reps, 1 + slots, k, k))
    counts = np.zeros(1 + slots, dtype=np.int64)
    if rule.real == "original":
        means[:, 0], scatters[:, 0], counts[0] = reduced.mu, reduced.scatter, n
    for t in range(2, T + 1):
        check_interrupted()
        draws.draw(blocks)  # the batch S_{t-1} drawn from model t - 1
        batch_mean = mean + np.einsum("rij,rj->ri", factor, draws.mean_noise) / math.sqrt(n)
        root = np.matmul(factor, draws.bartlett)
        batch_scatter = np.matmul(root, root.transpose(0, 2, 1))
        if ring:
            slot = 1 + (t - 2) % slots
            means[:, slot], scatters[:, slot], counts[slot] = batch_mean, batch_scatter, n
        elif counts[1] == 0:
            means[:, 1], scatters[:, 1], counts[1] = batch_mean, batch_scatter, n
        else:  # synthetic=all: merge S_{t-1} into the running synthetic pool
            pair = np.array([counts[1], n])
            counts[1], means[:, 1], scatters[:, 1] = _merge(
                pair, np.stack([means[:, 1], batch_mean], axis=1),
                np.stack([scatters[:, 1], batch_scatter], axis=1))
        if fresh is not None:
            fresh.draw(blocks, fresh=True)
            means[:, 0] = fresh.mean_noise / math.sqrt(n)
            scatters[:, 0] = np.matmul(fresh.bartlett, fresh.bartlett.transpose(0, 2, 1))
            counts[0] = n
        live = counts > 0
        size, mean, scatter = _merge(counts[live], means[:, live], scatters[:, live])
        sigma = scatter / config.divisor(size)
        factor, failed = safe_cholesky(sigma)
        if config.singular:
            logdet = np.full(reps, -np.inf)
            trinv = quad = np.full(reps, np.inf)
        else:
            logdet = cholesky_logdet(factor, failed)
            trinv, quad = inverse_terms(factor, mean, failed)
        record.put(rows, t, np.einsum("ri,ri->r", mean, mean) + reduced.offset_sq,
                   np.einsum("rii->r", sigma), logdet, trinv, quad)
