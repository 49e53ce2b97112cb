"""The reference engine of the Gaussian setting (``engine="points"``): every point drawn.

Sampling uses ``x = mu + L g`` with the Cholesky factor ``L`` of ``Sigma_hat``, or, for
singular covariances, ``x = mu + Xc^T g / sqrt(c_m)`` with the centred training points
``Xc`` and ``g ~ N(0, I_m)``, whose covariance is exactly ``Sigma_hat``
(:func:`collapse.simulate.gaussian_fit.fit_points`).

Each iteration ``t >= 2`` consumes, from the block's process stream and in this
order, the ``n`` points of the batch drawn from model ``t - 1`` and (under
accumulate-subsample) the subset of iteration ``t``; nothing is drawn ahead, so the
first ``t`` iterations never depend on how many follow.  Where ``n >= 2 (d + 1)`` the
accumulate-subsample pool is stored in float32 (:func:`pool_dtype`): the rounding moves
the metrics by about ``1e-6`` relative, checked against float64 on the same draws in
the tests.
"""

from __future__ import annotations

import numpy as np

from collapse.analysis.vocabulary import ACCUMULATE, ACCUMULATE_SUBSAMPLE, REPLACE
from collapse.simulate.gaussian_fit import (
    Block,
    Config,
    Record,
    Workspace,
    fit_points,
    sample_block,
)

#: Store the accumulate-subsample pool in float32 where that is harmless (pool_dtype).
FLOAT32_POOL = True


def draw_subset(rng: np.random.Generator, reps: int, population: int, size: int) -> np.ndarray:
    """Uniform ``size``-subsets of ``{0 .. population - 1}``, one per row: ``(reps, size)``.

    Draw ``size`` indices with replacement, then redraw every surplus copy of a
    repeated value until none is left.  Each round keeps the set of distinct values
    and redraws the surplus uniformly, a rule that commutes with every permutation of
    the population, so the final set is uniform over ``size``-subsets.  Rows come back
    sorted.
    """
    # int32 sorts about twice as fast as int64 (SIMD lanes)
    kind = np.int32 if population < 2**31 else np.int64
    subset = rng.integers(0, population, size=(reps, size), dtype=kind)
    subset.sort(axis=-1)
    rows = np.arange(reps)
    work = subset
    while True:
        row, col = np.nonzero(work[:, 1:] == work[:, :-1])
        if row.size == 0:
            return subset
        work[row, col + 1] = rng.integers(0, population, size=row.size, dtype=kind)
        work.sort(axis=-1)
        if work is not subset:
            subset[rows] = work
        pending = np.flatnonzero((work[:, 1:] == work[:, :-1]).any(axis=1))
        rows = rows[pending]
        work = subset[rows]


def pool_dtype(config: Config) -> type:
    """float32 for the subsample pool when its covariances are well conditioned.

    With ``n >= 2 (d + 1)`` a subsample covariance has its smallest eigenvalue within
    a modest factor of the largest, so rounding the points to float32 (relative
    error ``6e-8``) moves every metric by about ``1e-6`` relative at most, far below
    Monte Carlo error.  It halves the memory traffic and doubles the matrix-product
    speed of the engine's dominant cost.  Otherwise float64.
    """
    if FLOAT32_POOL and config.n >= 2 * (config.dim + 1):
        return np.float32
    return np.float64


def subsample_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                    record: Record, rows: slice, workspace: Workspace) -> None:
    """accumulate-subsample: a growing pool, a fresh uniform ``n``-subset every iteration."""
    reps, n, d = real.shape
    T = config.iterations
    fit = fit_points(real, config)
    record.put_fit(rows, 1, fit)
    if T == 1:
        return
    dtype = pool_dtype(config)
    pool = workspace.array("pool", (reps, T * n, d), dtype)
    pool[:, :n] = real
    flat_pool = pool.reshape(-1, d)
    data = workspace.array("data", (reps, n, d), dtype)
    offsets = np.arange(reps, dtype=np.intp)[:, None] * (T * n)
    index = np.empty((reps, n), dtype=np.intp)
    for t in range(2, T + 1):
        for block in blocks:
            sample_block(block, fit, n, out=pool[block.lo:block.hi, (t - 1) * n:t * n])
            index[block.lo:block.hi] = draw_subset(block.rng, block.hi - block.lo, t * n, n)
        np.take(flat_pool, index + offsets, axis=0, out=data)
        fit = fit_points(data, config, centre=dtype == np.float32)
        record.put_fit(rows, t, fit)


def points_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                 record: Record, rows: slice, workspace: Workspace) -> None:
    """The literal algorithm: draw every point, fit every training set."""
    if config.workflow == ACCUMULATE_SUBSAMPLE:
        subsample_chunk(config, real, blocks, record, rows, workspace)
        return
    reps, n, d = real.shape
    T = config.iterations
    if config.workflow == ACCUMULATE:
        pool = workspace.array("pool", (reps, T * n, d))
        pool[:, :n] = real
    data = real
    for t in range(1, T + 1):
        fit = fit_points(data, config)
        record.put_fit(rows, t, fit)
        if t == T:
            break
        batch = np.empty((reps, n, d))
        for block in blocks:
            batch[block.lo:block.hi] = sample_block(block, fit, n)
        if config.workflow == REPLACE:
            data = batch
        else:
            pool[:, t * n:(t + 1) * n] = batch
            data = pool[:, :(t + 1) * n]
