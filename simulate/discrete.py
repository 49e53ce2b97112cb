"""Monte Carlo of iterated fitting of a discrete distribution, vectorised over replicates.

The algorithm (one replicate).  Truth ``p0`` over ``K`` categories.  Model ``t`` is the
vector of empirical frequencies of its training set ``D_t`` (the MLE), and ``n`` points
are drawn from it.  ``D_1`` is ``n`` real points; for ``t >= 2`` the workflow rule
(:mod:`collapse.analysis.workflows`) says which batches ``D_t`` pools (the real batch, a
fresh real batch, the synthetic batches of the window) and whether it is a uniformly
random subset of them (stratified: of each part).

Everything is done with *counts*: a batch is a multinomial count vector (for small
batches each point placed by one uniform, :func:`inverse_cdf_counts`; otherwise
numpy's multinomial sampler, one binomial per category), a pool is the sum of its batches'
counts, and a uniform ``m``-subset of a pool with counts ``c`` has the
multivariate hypergeometric law, drawn category by category as
``s_k ~ Hypergeom(c_k, N_k - c_k, m_k)`` with ``N_k``, ``m_k`` what is left of the pool
and of the draw (numpy's own ``multivariate_hypergeometric`` takes one pool at a time),
or, for subsets of at most ``2 K`` points, point by point from an urn (:func:`urn_subset`).
An iteration costs ``O(K)`` per replicate whatever ``n``.

Metrics per replicate and model (names from :mod:`collapse.analysis.vocabulary`):
``gini_diversity`` ``1 - sum_i f_i^2``; ``entropy`` ``-sum_{f_i > 0} f_i log f_i``
(nats); ``surviving_categories`` ``#{f_i > 0}``; ``tv_distance`` ``(1/2) sum_i |f_i -
p0_i|``; ``collapsed`` 1 when one category is left.  Never NaN.  They are computed a
tile of iterations at a time (:mod:`collapse.simulate.discrete_metrics`).

Absorption.  Without real data after model 1 (``real=none``), once every category but
one has left a replicate's pool, every later model equals it: its remaining iterations
are filled in with the same arithmetic and it stops drawing.  Whether a replicate draws
at iteration ``t`` thus depends on its own history up to ``t`` only, which keeps every
invariance below, and a replace-until-collapse run costs the replicates' own collapse
times rather than the slowest one's.

Randomness (:mod:`collapse.simulate.streams`).  Block ``b`` draws its real counts from
``generator(seed, REAL, b)``, the fresh real batches of ``real=fresh`` (in iteration
order) from ``generator(seed, FRESH, b)``, and its subsets and synthetic batches from
``generator(seed, PROCESS, b)``, in iteration order with the same calls every
iteration, so the first ``t`` iterations never depend on ``iterations``, and results
do not depend on the chunk size or the thread count.
A block holds up to :data:`MAX_BLOCK` replicates: the samplers cost several
microseconds a call, one call per block and iteration.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> out = simulate_discrete(Workflow.parse("replace"), categories=10, n=10,
...                         truth="uniform", iterations=5, replicates=4, seed=0)
>>> sorted(out)
['collapsed', 'entropy', 'gini_diversity', 'surviving_categories', 'tv_distance']
>>> out["gini_diversity"].shape
(4, 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from collapse.analysis.checks import check_int, check_seed
from collapse.analysis.discrete import check_truth
from collapse.analysis.errors import CollapseError
from collapse.analysis.pooling import as_workflow
from collapse.analysis.vocabulary import DISCRETE_METRICS
from collapse.analysis.workflows import Workflow
from collapse.simulate.discrete_metrics import MetricTiles
from collapse.simulate.streams import (
    FRESH,
    PROCESS,
    REAL,
    Block,
    blocks,
    check_interrupted,
    chunks,
    generator,
    power_of_two_at_most,
    run_chunks,
    thread_count,
)

__all__ = [
    "inverse_cdf_counts",
    "multivariate_hypergeometric",
    "check_pool",
    "simulate_discrete",
    "urn_subset",
    "working_set",
]


@dataclass(frozen=True)
class _Config:
    workflow: Workflow
    categories: int
    n: int
    p0: np.ndarray
    iterations: int


def multivariate_hypergeometric(rng: np.random.Generator, pool: np.ndarray, draws: int
                                ) -> np.ndarray:
    """Counts of a uniform ``draws``-subset of each row's pool ``pool (R, K)``.

    Category by category: ``s_k ~ Hypergeom(pool_k, rest_k - pool_k, left_k)`` with
    ``rest_k`` the pool left after categories ``< k`` and ``left_k`` the draws left.
    """
    pool = np.asarray(pool, dtype=np.int64)
    out = np.zeros_like(pool)
    rest = pool.sum(axis=1)
    left = np.full(pool.shape[0], draws, dtype=np.int64)
    for k in range(pool.shape[1] - 1):
        good = pool[:, k]
        rest = rest - good
        out[:, k] = rng.hypergeometric(good, rest, left)
        left = left - out[:, k]
    out[:, -1] = left
    return out


def urn_subset(pool: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Counts of a uniform subset drawn one point at a time without replacement.

    Draw ``j`` takes the point of rank ``floor(u_j N_j)`` among the ``N_j`` left (points
    ordered by category), one uniform ``u_j`` per point drawn: the same law as
    :func:`multivariate_hypergeometric`, in ``draws`` vectorised steps over every row
    at once (no call per block), which is faster for small subsets.
    """
    left = np.array(pool, dtype=np.int64)
    out = np.zeros_like(left)
    remaining = left.sum(axis=1)
    rows = np.arange(left.shape[0])
    for j in range(uniforms.shape[1]):
        rank = np.floor(uniforms[:, j] * remaining).astype(np.int64)
        category = (np.cumsum(left, axis=1) > rank[:, None]).argmax(axis=1)
        left[rows, category] -= 1
        out[rows, category] += 1
        remaining -= 1
    return out


def inverse_cdf_counts(counts: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Counts of one point per uniform, each point of rank ``floor(u N)`` among the ``N``
    pooled points ordered by category (exact: ``floor(u N)`` is uniform on ``0..N-1``).

    Every row's counts must have the same total ``N``.  The category of a rank comes
    from a table of the ``N`` points when ``N`` is small, else from comparisons with the
    cumulative counts; both give the same category, so the choice changes nothing.
    """
    counts = np.asarray(counts, dtype=np.int64)
    reps, categories = counts.shape
    total = int(counts[0].sum()) if reps else 0
    ranks = np.floor(uniforms * total).astype(np.int64)
    if total <= 4 * categories * uniforms.shape[1]:
        table = np.repeat(np.tile(np.arange(categories), reps), counts.ravel())
        drawn = np.take(table, ranks + total * np.arange(reps)[:, None])
    else:
        cumulative = np.cumsum(counts, axis=1)
        drawn = (ranks[:, :, None] >= cumulative[:, None, :]).sum(axis=2)
    flat = (drawn + categories * np.arange(reps)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * categories).reshape(reps, categories)


def _draw_batches(rngs: list[np.random.Generator], live: _Live, counts: np.ndarray,
                  size: int, draws: int) -> np.ndarray:
    """A batch of ``draws`` points from every live row's model (frequencies ``counts``,
    each row of total ``size``).

    Small batches (``draws K <= 512``) place each point by one uniform, vectorised over
    every live row; larger ones use ``Generator.multinomial`` with one probability row
    per replicate.  The choice depends on the problem only.
    """
    if draws * counts.shape[1] <= 512:
        uniforms = _per_block(rngs, live, lambda rng, s: rng.random((s.stop - s.start, draws)))
        return inverse_cdf_counts(counts, uniforms)
    probs = counts / size
    return _per_block(rngs, live, lambda rng, s: rng.multinomial(draws, probs[s]))


def _subset(rngs: list[np.random.Generator], live: _Live, pool: np.ndarray,
            draws: int) -> np.ndarray:
    """A uniform ``draws``-subset of every row's pool, by the cheaper of the two methods.

    The choice depends on ``draws`` and ``K`` only, so it never changes the draws of a
    replicate between runs.
    """
    if draws <= 2 * pool.shape[1]:
        uniforms = _per_block(rngs, live, lambda rng, s: rng.random((s.stop - s.start, draws)))
        return urn_subset(pool, uniforms)
    return _per_block(rngs, live, lambda rng, s: multivariate_hypergeometric(rng, pool[s], draws))


class _Live:
    """The replicates of a chunk still drawing, in block order, and their block segments.

    Arrays of the chunk's state hold the live rows only; ``rows`` maps them to the
    chunk's rows.  A replicate leaves once its pool is absorbed (see :func:`_chunk`), a
    decision that depends on its own history only.
    """

    def __init__(self, part: list[Block]) -> None:
        self.part = part
        self.rows = np.arange(sum(block.size for block in part))
        self.owner = np.repeat(np.arange(len(part)), [block.size for block in part])
        self._segments = self._split()

    def _split(self) -> list[tuple[int, slice]]:
        counts = np.bincount(self.owner, minlength=len(self.part))
        stops = np.cumsum(counts)
        return [(b, slice(stop - count, stop))
                for b, (stop, count) in enumerate(zip(stops.tolist(), counts.tolist()))
                if count]

    def segments(self) -> list[tuple[int, slice]]:
        return self._segments

    def keep(self, mask: np.ndarray) -> None:
        self.rows, self.owner = self.rows[mask], self.owner[mask]
        self._segments = self._split()


def _per_block(rngs: list[np.random.Generator], live: _Live, draw) -> np.ndarray:
    """``draw(rng, segment)`` for every block with live rows, concatenated in row order."""
    parts = [draw(rngs[b], segment) for b, segment in live.segments()]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk(config: _Config, part: list[Block], seed: int, out: dict[str, np.ndarray],
           start: int) -> None:
    rule, n, p0, T = config.workflow, config.n, config.p0, config.iterations
    real_rngs = [generator(seed, REAL, block.index) for block in part]
    fresh_rngs = [generator(seed, FRESH, block.index) for block in part]
    process = [generator(seed, PROCESS, block.index) for block in part]
    live = _Live(part)
    m = rule.subsample_size(n)
    largest = max(n, rule.pool_size(n, T) if m is None else m)  # pool sizes never shrink
    metrics = MetricTiles(out, start, p0, live.rows.size, T, largest)
    real = _per_block(real_rngs, live, lambda rng, s: rng.multinomial(n, p0, size=s.stop
                                                                      - s.start))
    strata = rule.stratified_counts(n)
    model, size = real, n
    total = np.zeros_like(real)  # synthetic=all: the synthetic pool
    window: list[np.ndarray] = []  # synthetic=window:K: the newest batches
    for t in range(1, T + 1):
        check_interrupted()
        if t >= 2:
            synthetic = total if rule.window is None else sum(window[1:], window[0])
            if rule.real == "original":
                real_part = real
            elif rule.real == "fresh":
                real_part = _per_block(fresh_rngs, live, lambda rng, s: rng.multinomial(
                    n, p0, size=s.stop - s.start))
            else:
                real_part = None
            pool = synthetic if real_part is None else real_part + synthetic
            if m is None:
                model, size = pool, rule.pool_size(n, t)
            elif strata is None:
                model, size = _subset(process, live, pool, m), m
            else:
                m_real, m_synth = strata
                model = _subset(process, live, synthetic, m_synth)
                if real_part is not None:
                    model = model + _subset(process, live, real_part, m_real)
                size = m
        metrics.put(t, live.rows, model, size)
        if t == T:
            metrics.finish()
            return
        batch = _draw_batches(process, live, model, size, n)
        if rule.window is None:
            total = total + batch
        else:
            window.append(batch)
            del window[:-rule.window]
        if rule.real == "none":
            # a pool with one category left makes every later model equal to it
            following = total if rule.window is None else sum(window[1:], window[0])
            # categories down the rows: counting along a short last axis costs more
            done = np.count_nonzero(np.ascontiguousarray(following.T), axis=0) == 1
            if done.any():
                metrics.absorbed(t + 1, live.rows[done], following[done])
                keep = ~done
                if not keep.any():
                    metrics.finish()
                    return
                live.keep(keep)
                # without real data, the real batch is never used again
                if rule.window is None:
                    total = total[keep]
                else:
                    window = [counts[keep] for counts in window]


#: Most replicates in a block, and most bytes of state a block holds.  A replicate is a
#: few count vectors, so blocks can be far larger than in the engines that keep points;
#: every iteration calls numpy's samplers once per block, at several microseconds a
#: call, which at 64 replicates a block cost more than the draws themselves.
MAX_BLOCK, BLOCK_BYTES = 1024, 2**24
#: Batches of a window that count towards the block size (whatever the window).
WINDOW_WORDS = 64

#: Most points a pool may hold: counts are 64-bit integers, with room for their sums.
COUNT_LIMIT = 2**62

#: numpy's hypergeometric sampler needs fewer good and fewer bad items than this.
HYPERGEOMETRIC_LIMIT = 10**9


def check_pool(workflow: Workflow | str, *, categories: int, n: int, iterations: int) -> None:
    """Raise :class:`CollapseError` if a pool would hold more than :data:`COUNT_LIMIT`
    points, or a subset would be drawn from a pool too large for numpy's hypergeometric
    sampler (``HYPERGEOMETRIC_LIMIT`` points).

    Only subsets of more than ``2 K`` points use it (smaller ones are drawn point by
    point, :func:`urn_subset`), and the pool of a rule that keeps every batch grows
    with ``t``, so the limit is on ``n`` and ``iterations`` together.

    Examples
    --------
    >>> check_pool("accumulate-subsample", categories=10, n=10**8, iterations=10)
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: iterations must be at most 9 with n = 100000000 for Monte Carlo of accumulate-subsample: ...
    """
    rule = as_workflow(workflow)
    m = rule.subsample_size(n)
    per_point = max(1, rule.pool_size(1, iterations))  # a pool holds n times this many
    if max(n * per_point, m or 0) > COUNT_LIMIT:
        raise CollapseError(
            f"n must be at most {COUNT_LIMIT // per_point} for Monte Carlo of {rule.label} "
            f"over {iterations} iterations (got n={n}): a pool's counts are 64-bit "
            f"integers; the exact theory has no such limit")
    if m is None:
        return
    strata = rule.stratified_counts(n)
    if all(draws <= 2 * categories for draws in ([m] if strata is None else strata)):
        return
    if rule.pool_size(n, iterations) < HYPERGEOMETRIC_LIMIT:
        return
    low, high = 1, iterations  # pool_size is nondecreasing in t: the last t that fits
    while low < high:
        middle = (low + high + 1) // 2
        if rule.pool_size(n, middle) < HYPERGEOMETRIC_LIMIT:
            low = middle
        else:
            high = middle - 1
    head = (f"iterations must be at most {low} with n = {n}" if low >= 2 else
            f"n must be below {HYPERGEOMETRIC_LIMIT // max(1, rule.pool_size(1, 2)):d}")
    raise CollapseError(f"{head} for Monte Carlo of {rule.label}: its subsets are drawn by "
                        f"numpy's hypergeometric sampler, which takes pools of fewer than "
                        f"{HYPERGEOMETRIC_LIMIT:.0e} points (got iterations={iterations}); the "
                        f"exact theory has no such limit")


def _check(workflow, categories, n, truth, iterations, replicates, seed, chunk_size):
    categories = check_int("categories", categories, 2)
    n = check_int("n", n, 2)
    iterations = check_int("iterations", iterations, 1)
    replicates = check_int("replicates", replicates, 1)
    seed = check_seed(seed)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    p0 = check_truth(truth, categories)
    workflow = as_workflow(workflow, n)
    check_pool(workflow, categories=categories, n=n, iterations=iterations)
    config = _Config(workflow=workflow, categories=categories, n=n, p0=p0,
                     iterations=iterations)
    return config, replicates, seed, chunk_size


def _sizes(rule: Workflow, categories: int, replicates: int,
           iterations: int | None = None) -> tuple[int, int, int]:
    """``(block size, default chunk size, bytes per replicate of a chunk)``.

    The block size depends on the problem only (it fixes the random streams); a chunk
    spreads the replicates over the worker threads.  A replicate holds a few count
    vectors (real, pool, model, batch, subset), the window's batches and its share of
    the metrics' tile (:class:`MetricTiles`: at most one model's counts, or
    ``TILE_BYTES`` for the whole chunk, which :func:`working_set` adds).
    """
    # the block size may not depend on the run length (it fixes the streams), so a
    # window counts for at most WINDOW_WORDS batches there; the memory held counts
    # the batches a run of ``iterations`` really keeps (at most iterations - 1)
    window = rule.window or 1
    words = categories * (1 + min(window, WINDOW_WORDS)) + 5
    size = power_of_two_at_most(BLOCK_BYTES / (8 * words), MAX_BLOCK)
    chunk = max(size, -(-replicates // thread_count()))
    held = window if iterations is None else min(window, max(1, iterations - 1))
    return size, chunk, 8 * (categories * (1 + held) + 5 + 9 * categories)


def working_set(workflow: Workflow | str, *, categories: int, iterations: int,
                replicates: int) -> float:
    """Bytes the engine holds at once besides its output (every worker's chunk).

    For the up-front estimate of :mod:`collapse.simulate.budget`; a window longer than
    the run holds only the batches the run makes.

    Examples
    --------
    >>> working_set("replace", categories=10, iterations=100, replicates=1000) < 1e7
    True
    """
    rule = as_workflow(workflow)
    _, chunk, per_replicate = _sizes(rule, categories, replicates, iterations)
    chunk = min(chunk, replicates)
    running = min(thread_count(), max(1, -(-replicates // chunk)))
    return float(running * (chunk * per_replicate + MetricTiles.TILE_BYTES))


def simulate_discrete(workflow: Workflow | str, *, categories: int, n: int, truth: Any,
                      iterations: int, replicates: int, seed: int,
                      chunk_size: int | None = None) -> dict[str, np.ndarray]:
    """Monte Carlo replicates of the five discrete metrics (see the module docstring).

    Parameters
    ----------
    workflow : Workflow or str
        The rule for ``D_t``; every rule of :mod:`collapse.analysis.workflows` runs.
    categories : int
        ``K >= 2``.
    n : int
        Points drawn from every model, ``>= 2``.
    truth : str or array_like
        ``"uniform"``, ``"zipf"`` or a probability vector of length ``K``
        (:func:`collapse.analysis.discrete.check_truth`).
    iterations : int
        Models per replicate, ``>= 1``.
    replicates : int
        Independent replicates, ``>= 1``.
    seed : int
        ``>= 0``; the output is a function of every argument except ``chunk_size``.
    chunk_size : int, optional
        Replicates computed together, rounded down to whole blocks (at least one); the
        output does not depend on it.

    Returns
    -------
    dict
        Every name of :data:`collapse.analysis.vocabulary.DISCRETE_METRICS` to a float64
        array ``(replicates, iterations)``; column ``t - 1`` is model ``t``.

    Raises
    ------
    CollapseError
        Naming the bad parameter.
    """
    config, replicates, seed, chunk_size = _check(workflow, categories, n, truth, iterations,
                                                  replicates, seed, chunk_size)
    size, default_chunk, _ = _sizes(config.workflow, config.categories, replicates)
    parts = blocks(replicates, size)
    if chunk_size is None:
        chunk_size = default_chunk
    # one allocation: large enough for huge pages, which halves the page faults of
    # writing a long run out (they cost more than the arithmetic in small problems)
    block = np.empty((len(DISCRETE_METRICS), replicates, config.iterations))
    out = dict(zip(DISCRETE_METRICS, block))

    def work(part: list[Block]) -> None:
        _chunk(config, part, seed, out, part[0].start)

    run_chunks(work, chunks(parts, chunk_size))
    return out
