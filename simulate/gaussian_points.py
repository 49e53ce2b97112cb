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

Every other rule (:class:`~collapse.analysis.workflows.Workflow`) runs in
:func:`rule_points_chunk`: the batches of a replicate live in one array, slot 0 for the
real part (the real batch ``R``, or the fresh batch ``F_t`` written over it for every
model under ``real=fresh``) and one slot per synthetic batch in the window (batch ``S_j`` in
slot ``(j - 1) mod K + 1``, so the batch that leaves the window frees the slot of the new
one and the pool of model ``t`` is always one contiguous run of slots).  ``D_t`` is that
run, a uniform ``m``-subset of it (:func:`draw_subset`), or a stratified subset: real and
synthetic parts subsampled separately.  Iteration ``t`` consumes, in this order, the batch
``S_{t-1}`` (process stream), ``F_t`` (the block's ``FRESH`` stream) and the subsets
(process stream).
"""

from __future__ import annotations

import numpy as np

from collapse.analysis.vocabulary import ACCUMULATE, ACCUMULATE_SUBSAMPLE, REPLACE
from collapse.simulate.gaussian_fit import (
    Block,
    Config,
    Fit,
    Record,
    Workspace,
    fit_eigen,
    fit_points,
    sample_block,
)
from collapse.simulate.streams import check_interrupted

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
        check_interrupted()
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
        check_interrupted()
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


def _rule_fit(data: np.ndarray, config: Config) -> Fit:
    """The fit of a training set of a general rule, by how its rank is known.

    Points that span fewer than ``d`` dimensions by construction (``m - 1 < d``, or
    everything in the ``n - 1`` dimensional hull of the real batch when no fresh real
    data arrive) take :func:`fit_points`'s singular path; points that span every
    direction almost surely (``n - 1 >= d`` and ``m - 1 >= d``) its Cholesky path; only
    fresh real batches added to a lower-dimensional hull leave the rank to the data
    (:func:`collapse.simulate.gaussian_fit.fit_eigen`).
    """
    m, d = data.shape[1], config.dim
    if m - 1 < d or (config.singular and config.rule.real != "fresh"):
        return fit_points(data, config, singular=True)
    if config.singular:
        return fit_eigen(data, config)
    return fit_points(data, config, singular=False)


def _subset_into(index: np.ndarray, block: Block, population: int, size: int,
                 offset: int) -> None:
    """Uniform ``size``-subsets of ``offset .. offset + population - 1`` into ``index``."""
    if size:
        index[block.lo:block.hi] = draw_subset(block.rng, block.hi - block.lo, population,
                                               size) + offset


def rule_points_chunk(config: Config, real: np.ndarray, blocks: list[Block],
                      record: Record, rows: slice, workspace: Workspace) -> None:
    """Any rule, literally: keep the batches, assemble ``D_t``, fit it, sample from it."""
    rule = config.rule
    reps, n, d = real.shape
    T = config.iterations
    fit = fit_points(real, config)
    record.put_fit(rows, 1, fit)
    if T == 1:
        return
    slots = T - 1 if rule.window is None else min(rule.window, T - 1)
    width = (1 + slots) * n
    store = workspace.array("rule_store", (reps, width, d))
    store[:, :n] = real
    flat_store = store.reshape(-1, d)
    offsets = np.arange(reps, dtype=np.intp)[:, None] * width
    start = 0 if rule.real != "none" else n  # the pool starts at the real slot, if kept
    size = rule.subsample_size(n)
    counts = rule.stratified_counts(n)
    index = np.empty((reps, size), dtype=np.intp) if size is not None else None
    for t in range(2, T + 1):
        check_interrupted()
        slot = (t - 2) % slots + 1  # S_{t-1}
        for block in blocks:
            sample_block(block, fit, n, out=store[block.lo:block.hi, slot * n:(slot + 1) * n])
        if rule.real == "fresh":
            for block in blocks:
                store[block.lo:block.hi, :n] = block.fresh.standard_normal(
                    (block.hi - block.lo, n, d))
        stop = (1 + min(t - 1, slots)) * n
        if size is None:
            data = store[:, start:stop]
        else:
            for block in blocks:
                if counts is None:
                    _subset_into(index, block, stop - start, size, start)
                else:
                    m_r, m_s = counts
                    _subset_into(index[:, :m_r], block, n, m_r, 0)
                    _subset_into(index[:, m_r:], block, stop - n, m_s, n)
            data = np.take(flat_store, index + offsets, axis=0)
        fit = _rule_fit(data, config)
        record.put_fit(rows, t, fit)
