"""Monte Carlo of the paper's iterated Gaussian fitting, vectorised over replicates.

The algorithm (one replicate; DESIGN.md sections 1 and 2).  Truth ``N(0, sigma2 I_d)``.
Model ``t`` is the sample mean and covariance of its training set ``D_t`` of ``m``
points,

    mu_hat_t = (1/m) sum_i x_i,   Sigma_hat_t = (1/c_m) sum_i (x_i - mu_hat_t)(x_i - mu_hat_t)^T,

with divisor ``c_m = m`` (``covariance="mle"``, the paper's code) or ``m - 1``
(``"unbiased"``), and ``n`` points are drawn from ``N(mu_hat_t, Sigma_hat_t)`` after each
fit.  ``D_1`` is ``n`` real points; for ``t >= 2``:

``replace``
    the ``n`` points drawn from model ``t-1``;
``accumulate``
    the real points and every point drawn from models ``1..t-1``
    (``t n`` points);
``accumulate-subsample``
    a uniform ``n``-subset, without replacement, of that pool,
    drawn afresh every iteration.

Metrics per replicate and iteration (names from :mod:`collapse.analysis.vocabulary`):

``mean_sq_error``
    ``||mu_hat_t||^2`` (squared data units; the truth's mean is 0);
``cov_trace_ratio``
    ``tr Sigma_hat_t / (d sigma2)`` (dimensionless);
``cov_det_ratio``
    ``det Sigma_hat_t / sigma2^d`` (dimensionless; 0 when singular);
``log_cov_det_ratio``
    its logarithm (nats; ``-inf`` when singular);
``test_nll``
    cross-entropy of the truth under model ``t`` (nats per point),
    ``1/2 [d log 2 pi + log det Sigma_hat + tr(Sigma_hat^{-1} Sigma0)
    + mu_hat^T Sigma_hat^{-1} mu_hat]`` with ``Sigma0 = sigma2 I``:
    the exact expected negative log-likelihood of a fresh real
    point, ``+inf`` when ``Sigma_hat`` is singular.

No metric is ever NaN.  A covariance is singular exactly when ``n - 1 < d``: the real
points span an affine subspace of dimension ``n - 1``, every model's mean lies in it
and its covariance lives on it, so every later point does too, under all three
workflows.  Numerically, a covariance whose Cholesky factorisation fails also counts
as singular, and a test NLL whose inverse terms overflow float64 is ``+inf``.

Engines (``engine=``):

``points``  the reference: draws the points and fits them, literally, for every
    workflow.  Sampling uses ``x = mu + L g`` with the Cholesky factor ``L`` of
    ``Sigma_hat``, or, for singular covariances, ``x = mu + Xc^T g / sqrt(c_m)`` with
    the centred training points ``Xc`` and ``g ~ N(0, I_m)``, whose covariance is
    exactly ``Sigma_hat``.  Under ``accumulate-subsample`` it draws the subsets of
    every iteration first (they do not depend on the points) and then generates
    only the pool points that some subset will use (on average about half of
    them); a point that is never used cannot influence any model.  Where
    ``n >= 2 (d + 1)`` that pool is stored in float32 (:func:`_pool_dtype`): the
    rounding moves the metrics by about ``1e-6`` relative, checked against float64
    on the same draws in the tests.
``stats``   sufficient statistics, for ``replace`` and ``accumulate`` only (see
    :mod:`collapse.simulate._wishart`): a batch of ``n`` points from ``N(mu, A A^T)`` has mean
    ``mu + A g / sqrt(n)`` and scatter ``A C C^T A^T``, ``C`` a Bartlett factor of
    ``Wishart_k(n-1, I)``, independent, so an iteration costs ``O(d^3)`` whatever
    ``n``.  ``replace`` keeps a triangular factor ``A_t = A_{t-1} C_t / sqrt(c_n)`` and
    its log-determinant as a running sum of ``log chi^2`` variates (no underflow
    however far the covariance collapses); ``accumulate`` keeps the pool's count,
    mean and scatter and merges each batch (Chan et al.:
    ``M <- M + W + (N n / (N + n)) (xbar - m)(xbar - m)^T``).  When ``n - 1 < d`` both
    run in the ``k = n - 1`` dimensional span of the real points (coordinates
    ``w = Q^T x`` for an orthonormal basis ``Q`` of it, with the constant part of the
    real mean orthogonal to it added back to ``mean_sq_error``).
``auto``
    ``stats`` where valid, else ``points``.

Iteration 1 is fitted from the real points by the same code in every engine, so it
is bit-for-bit identical across workflows and engines for one seed.  Engines agree
in law, not draw for draw.

Units: the engines simulate the standardised process ``x / sigma`` (truth
``N(0, I)``) and rescale ``mean_sq_error`` and ``test_nll``; ratios are scale free.

Randomness and memory.  Replicate ``r``'s real points come from stream
``SeedSequence(seed).spawn(2)[0].spawn(...)[r // b0]`` (fixed blocks of ``b0``
replicates, ``b0`` depending on ``n`` and ``d`` only), so they are shared by all
workflows and engines and do not depend on the number of replicates.  Everything
else comes from blocks of ``b`` replicates (``b`` a power of two, at most 64, from
the memory one replicate needs) with streams ``SeedSequence(seed).spawn(2)[1]
.spawn(...)``, bit generator SFC64.  Replicates run in chunks of whole blocks, each
iteration a few batched array operations per chunk (the Python loops run over
iterations, chunks, blocks and the rows of small triangular matrices, never over
replicates); a chunk aims at a working set of about 256 MiB (at least 4 replicates
while the chunks in flight stay under 1 GiB), and the output is bit-for-bit
identical whatever ``chunk_size``, because no slice of a batched operation depends
on the others.  Chunks run in one worker thread per core (at most 4); the output
does not depend on that either.

Speed.  Each iteration costs ``O(d^3)`` per replicate under ``stats`` and
``O(n d^2)`` under ``points``; the engines issue many small matrix products, which
a multi-threaded BLAS on a small shared machine can slow down several-fold, so
BLAS is limited to one thread while worker threads run (threadpoolctl).
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits
from dataclasses import dataclass

import numpy as np

from collapse.analysis.vocabulary import (
    ACCUMULATE,
    AUTO,
    ENGINES,
    POINTS,
    STATS,
    ACCUMULATE_SUBSAMPLE,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    GAUSSIAN_METRICS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    REPLACE,
    TEST_NLL,
    UNBIASED,
)
from collapse.simulate._linalg import safe_cholesky, tri_inv
from collapse.simulate._wishart import draw_bartlett, helmert
from collapse.analysis.errors import CollapseError
from collapse.analysis.checks import check_int, check_workflow

#: Workflows that the sufficient-statistic engine can run.
STATS_WORKFLOWS: tuple[str, ...] = (REPLACE, ACCUMULATE)

_MAX_BLOCK = 64
_BLOCK_BYTES = 64 * 2**20
# A chunk aims at a cache-friendly working set, grows to a few replicates (to amortise
# the per-operation overhead) while it stays under the hard limit.
_CHUNK_TARGET_BYTES = 256 * 2**20
_CHUNK_LIMIT_BYTES = 2**30
_CHUNK_MIN_REPLICATES = 4
_REAL_BYTES = 64 * 2**20
#: Store the accumulate-subsample pool in float32 where that is harmless (_pool_dtype).
_FLOAT32_POOL = True
_MAX_THREADS = 4
_REAL_STREAM, _SIM_STREAM = 0, 1


@dataclass(frozen=True)
class _Config:
    """Validated arguments; ``engine`` is resolved (never ``auto``)."""

    workflow: str
    engine: str
    n: int
    dim: int
    iterations: int
    sigma2: float
    unbiased: bool

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
class _Record:
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
    def empty(cls, replicates: int, iterations: int) -> "_Record":
        return cls(*(np.empty((replicates, iterations)) for _ in range(5)))

    def put(self, rows: slice, t: int, mu_sq, trace, logdet, trinv, quad) -> None:
        self.mu_sq[rows, t - 1] = mu_sq
        self.trace[rows, t - 1] = trace
        self.logdet[rows, t - 1] = logdet
        self.trinv[rows, t - 1] = trinv
        self.quad[rows, t - 1] = quad


@dataclass
class _Fit:
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


# ----------------------------------------------------------------------------- arguments


def _check_config(workflow, n, dim, iterations, replicates, sigma2, covariance, seed,
                  chunk_size, engine) -> tuple[_Config, int, int, int | None]:
    check_workflow(workflow)
    n = check_int("n", n, 2)
    dim = check_int("dim", dim, 1)
    iterations = check_int("iterations", iterations, 1)
    replicates = check_int("replicates", replicates, 1)
    seed = check_int("seed", seed, 0)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    if (not isinstance(sigma2, numbers.Real) or isinstance(sigma2, bool)
            or not math.isfinite(sigma2) or sigma2 <= 0):
        raise CollapseError(f"sigma2 must be a finite number > 0 (got {sigma2!r})")
    if covariance not in COVARIANCE_ESTIMATORS:
        raise CollapseError(f"covariance must be one of {', '.join(COVARIANCE_ESTIMATORS)} "
                         f"(got {covariance!r})")
    if engine not in ENGINES:
        raise CollapseError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if engine == STATS and workflow not in STATS_WORKFLOWS:
        raise CollapseError(f"engine {STATS!r} supports workflows {', '.join(STATS_WORKFLOWS)} "
                         f"only (got {workflow!r}); use {POINTS!r} or {AUTO!r}")
    if engine == AUTO:
        engine = STATS if workflow in STATS_WORKFLOWS else POINTS
    config = _Config(workflow=workflow, engine=engine, n=n, dim=dim, iterations=iterations,
                     sigma2=float(sigma2), unbiased=covariance == UNBIASED)
    return config, replicates, seed, chunk_size


# ----------------------------------------------------------------------------- chunks, streams


def _bytes_per_replicate(config: _Config) -> int:
    """Rough peak working set of one replicate (bytes), for block and chunk sizes."""
    n, d, T, k = config.n, config.dim, config.iterations, config.rank
    real = 4 * n * d + (k * d if config.singular else 0)
    if config.engine == STATS:
        words = real + 20 * k * k
    elif config.workflow == REPLACE:
        words = real + 2 * n * (n if config.singular else d) + 10 * d * d
    elif config.workflow == ACCUMULATE:
        width = T * n if config.singular else d
        words = real + 2 * T * n * d + 2 * n * width + 10 * d * d
    else:
        capacity = n + n * (T - 1) // 2 + 4 * math.isqrt(n * T) + 1
        width = n if config.singular else d
        words = real + capacity * d + 4 * T * n + 2 * n * width + 10 * d * d
    return 8 * words


def _power_of_two_at_most(limit: float, cap: int) -> int:
    size = 1
    while size * 2 <= min(limit, cap):
        size *= 2
    return size


def _block_size(per_replicate: int) -> int:
    return _power_of_two_at_most(_BLOCK_BYTES / per_replicate, _MAX_BLOCK)


def _chunk_size(requested: int | None, per_replicate: int, block: int, replicates: int,
                threads: int) -> int:
    """Replicates per chunk, whole blocks: ``requested`` rounded down (at least one block).

    By default a chunk aims at a working set of :data:`_CHUNK_TARGET_BYTES`, grows to
    a few replicates while the ``threads`` chunks in flight stay under
    :data:`_CHUNK_LIMIT_BYTES`, and is small enough to give every thread a chunk.
    """
    if requested is None:
        limit = _CHUNK_LIMIT_BYTES // threads
        budget = max(min(_CHUNK_TARGET_BYTES, limit),
                     min(limit, _CHUNK_MIN_REPLICATES * per_replicate))
        share = -(-replicates // threads)
        requested = min(budget // per_replicate, -(-share // block) * block)
    return max(block, requested // block * block)


def _thread_count() -> int:
    """Worker threads, one per available core (at most :data:`_MAX_THREADS`).

    Chunks are independent and write disjoint rows of the output, and numpy
    releases the GIL in the heavy operations (BLAS, LAPACK, random fills, gathers),
    so chunks run side by side; the output does not depend on the thread count.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on every platform
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_THREADS, cores))


def _generator(seed: int, stream: int, block: int) -> np.random.Generator:
    # SeedSequence(seed, spawn_key=(s, b)) == SeedSequence(seed).spawn(..)[s].spawn(..)[b]
    sequence = np.random.SeedSequence(seed, spawn_key=(stream, block))
    return np.random.Generator(np.random.SFC64(sequence))


class _RealData:
    """The real points of every replicate, standardised ``N(0, I_d)``, drawn by fixed blocks.

    Block ``b`` holds replicates ``b*size .. (b+1)*size - 1``; its generator fills an
    array ``(rows, n, d)`` in C order, so a replicate's points do not depend on how
    many replicates there are, nor on the workflow, engine or chunk.
    """

    def __init__(self, seed: int, replicates: int, n: int, dim: int) -> None:
        self.seed, self.replicates, self.n, self.dim = seed, replicates, n, dim
        self.size = _power_of_two_at_most(_REAL_BYTES / (8 * n * dim), _MAX_BLOCK)
        self._cached: tuple[int, np.ndarray] | None = None

    def _block(self, index: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != index:
            rows = min(self.size, self.replicates - index * self.size)
            rng = _generator(self.seed, _REAL_STREAM, index)
            self._cached = (index, rng.standard_normal((rows, self.n, self.dim)))
        return self._cached[1]

    def rows(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Replicates ``start:stop`` into ``out`` ``(stop - start, n, d)``."""
        for index in range(start // self.size, (stop - 1) // self.size + 1):
            lo = max(start, index * self.size)
            hi = min(stop, (index + 1) * self.size)
            out[lo - start:hi - start] = self._block(index)[lo - index * self.size:
                                                            hi - index * self.size]
        return out


@dataclass(frozen=True)
class _Block:
    """Replicates ``lo:hi`` of a chunk (chunk-relative) and their generator."""

    lo: int
    hi: int
    rng: np.random.Generator


class _Workspace:
    """Buffers reused from chunk to chunk: fresh memory is slow to touch the first time."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, type], np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get((name, dtype))
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name, dtype] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


# ----------------------------------------------------------------------------- fitting


def _inverse_terms(lower: np.ndarray, mu: np.ndarray,
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


def _cholesky_logdet(lower: np.ndarray, failed: np.ndarray | None) -> np.ndarray:
    """``log det(L L^T) = 2 sum_i log L_ii``; ``-inf`` for ``failed`` slices."""
    diagonal = np.diagonal(lower, axis1=1, axis2=2)
    if failed is not None:
        diagonal = np.where(failed[:, None], 1.0, diagonal)
    with np.errstate(divide="ignore"):
        logdet = 2.0 * np.sum(np.log(diagonal), axis=1)
    if failed is not None:
        logdet[failed] = -np.inf
    return logdet


def _fit_points(data: np.ndarray, config: _Config, centre: bool = True) -> _Fit:
    """Fit mean and covariance to ``data`` ``(R, m, d)``; the metrics' raw terms.

    The scatter is ``sum (x - mu)(x - mu)^T`` from centred points, or with
    ``centre=False`` ``sum x x^T - m mu mu^T`` (one pass less; exact up to rounding
    of order ``eps m ||mu||^2``, harmless unless the covariance collapses, which
    only ``replace`` does).  float32 data (the subsample pool) are fitted in float32
    and the results widened to float64.
    """
    reps, m, d = data.shape
    divisor = config.divisor(m)
    mu = np.matmul(np.full(m, 1.0 / m, dtype=data.dtype), data).astype(np.float64, copy=False)
    mu_sq = np.einsum("ri,ri->r", mu, mu)
    if config.singular:
        centred = data - mu[:, None, :]
        trace = np.einsum("rij,rij->r", centred, centred) / divisor
        centred *= 1.0 / math.sqrt(divisor)
        return _Fit(mu=mu, sampler=centred, mu_sq=mu_sq, trace=trace,
                    logdet=np.full(reps, -np.inf), trinv=np.full(reps, np.inf),
                    quad=np.full(reps, np.inf))
    if centre:
        centred = data - mu.astype(data.dtype, copy=False)[:, None, :]
        scatter = np.matmul(centred.transpose(0, 2, 1), centred).astype(np.float64,
                                                                          copy=False)
    else:
        scatter = np.matmul(data.transpose(0, 2, 1), data)
        scatter -= m * (mu[:, :, None] * mu[:, None, :])
    sigma = scatter / divisor
    lower, failed = safe_cholesky(sigma)
    trinv, quad = _inverse_terms(lower, mu, failed)
    return _Fit(mu=mu, sampler=lower.transpose(0, 2, 1), mu_sq=mu_sq,
                trace=np.einsum("rii->r", sigma), logdet=_cholesky_logdet(lower, failed),
                trinv=trinv, quad=quad, lower=lower, scatter=scatter)


def _put_fit(record: _Record, rows: slice, t: int, fit: _Fit) -> None:
    record.put(rows, t, fit.mu_sq, fit.trace, fit.logdet, fit.trinv, fit.quad)


# ----------------------------------------------------------------------------- points engine


def _draw_subsets(rng: np.random.Generator, reps: int, n: int, iterations: int) -> np.ndarray:
    """Uniform ``n``-subsets of ``{0..t n - 1}`` for ``t = 2..iterations``: ``(reps, T-1, n)``.

    Draw ``n`` indices with replacement, then redraw every surplus copy of a repeated
    value until none is left.  Each round keeps the set of distinct values and
    redraws the surplus uniformly, a rule that commutes with every permutation of
    the population, so the final set is uniform over ``n``-subsets.  Rows come back
    sorted.
    """
    # int32 sorts about twice as fast as int64 (SIMD lanes)
    kind = np.int32 if iterations * n < 2**31 else np.int64
    subsets = np.empty((reps, iterations - 1, n), dtype=kind)
    for t in range(2, iterations + 1):
        subsets[:, t - 2] = rng.integers(0, t * n, size=(reps, n), dtype=kind)
    subsets.sort(axis=-1)
    flat = subsets.reshape(-1, n)
    # first round in place on every row (most rows of small t repeat a value), then
    # only the few rows that still do
    rows = np.arange(flat.shape[0])
    work = flat
    while True:
        row, col = np.nonzero(work[:, 1:] == work[:, :-1])
        if row.size == 0:
            return subsets
        work[row, col + 1] = rng.integers(0, (rows[row] % (iterations - 1) + 2) * n,
                                          dtype=kind)
        work.sort(axis=-1)
        if work is not flat:
            flat[rows] = work
        pending = np.flatnonzero((work[:, 1:] == work[:, :-1]).any(axis=1))
        rows = rows[pending]
        work = flat[rows]


@dataclass
class _SubsamplePlan:
    """Which pool points some subset uses, and where they live in a compact pool.

    Pool position ``p = j n + i`` is point ``i`` of batch ``j`` (batch 0 = real; batch
    ``j`` is drawn from model ``j``).  Only the points of batch ``j`` that some later
    subset uses are generated, in position order, into rows ``start[j], start[j] + 1,
    ...`` of the replicate's compact pool of ``capacity`` rows.  ``start`` leaves room
    for the largest such count in the chunk; ``block_counts[b, j]`` is the largest in
    block ``b``, which is how many points block ``b`` draws (its draws thus do not
    depend on the chunk).  ``rows[r, t-2]`` are the rows of the flattened pool
    ``(R * capacity, d)`` holding the subset of iteration ``t`` in position order, so
    the data a model is fitted to do not depend on the chunk either.
    """

    rows: np.ndarray
    block_counts: np.ndarray
    start: np.ndarray
    capacity: int


def _subsample_plan(blocks: list[_Block], reps: int, n: int, iterations: int) -> _SubsamplePlan:
    positions = np.empty((reps, iterations - 1, n), dtype=np.intp)
    for block in blocks:
        positions[block.lo:block.hi] = _draw_subsets(block.rng, block.hi - block.lo, n,
                                                     iterations)
    size = iterations * n
    flat = positions.reshape(reps, -1)
    flat += (np.arange(reps, dtype=np.intp) * size)[:, None]
    rank = np.zeros((reps, iterations, n), dtype=np.int32)
    rank[:, 0] = 1
    rank.reshape(-1)[flat.reshape(-1)] = 1
    np.cumsum(rank, axis=2, out=rank)
    counts = rank[:, :, -1]
    widths = counts.max(axis=0)
    start = np.concatenate(([0], np.cumsum(widths)[:-1]))
    capacity = int(widths.sum())
    block_counts = np.stack([counts[block.lo:block.hi].max(axis=0) for block in blocks])
    # row of the flattened pool: r * capacity + start[j] + rank - 1
    location = rank.astype(np.intp)
    location += (start - 1)[None, :, None]
    location += (np.arange(reps, dtype=np.intp) * capacity)[:, None, None]
    rows = np.take(location.reshape(-1), flat).reshape(positions.shape)
    return _SubsamplePlan(rows=rows, block_counts=block_counts, start=start,
                          capacity=capacity)


def _sample_block(block: _Block, fit: _Fit, count: int, out: np.ndarray | None = None
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


def _pool_dtype(config: _Config) -> type:
    """float32 for the subsample pool when its covariances are well conditioned.

    With ``n >= 2 (d + 1)`` a subsample covariance has its smallest eigenvalue within
    a modest factor of the largest, so rounding the points to float32 (relative
    error ``6e-8``) moves every metric by about ``1e-6`` relative at most, far below
    Monte Carlo error (tests/test_gaussian_engine.py runs both precisions on the
    same draws).  It halves the memory traffic and doubles the matrix-product speed
    of the engine's dominant cost.  Otherwise float64.
    """
    if _FLOAT32_POOL and config.n >= 2 * (config.dim + 1):
        return np.float32
    return np.float64


def _subsample_chunk(config: _Config, real: np.ndarray, blocks: list[_Block],
                     record: _Record, rows: slice, workspace: _Workspace) -> None:
    """accumulate-subsample: fixed subsets first, then only the pool points they use."""
    reps, n, d = real.shape
    T = config.iterations
    fit = _fit_points(real, config)
    _put_fit(record, rows, 1, fit)
    if T == 1:
        return
    plan = _subsample_plan(blocks, reps, n, T)
    dtype = _pool_dtype(config)
    pool = workspace.array("pool", (reps, plan.capacity, d), dtype)
    pool[:, :n] = real
    flat_pool = pool.reshape(-1, d)
    data = workspace.array("data", (reps, n, d), dtype)
    for t in range(2, T + 1):
        # batch t-1, from model t-1: only the points some subset uses
        lo = plan.start[t - 1]
        for b, block in enumerate(blocks):
            count = int(plan.block_counts[b, t - 1])
            if count:
                _sample_block(block, fit, count, out=pool[block.lo:block.hi, lo:lo + count])
        np.take(flat_pool, plan.rows[:, t - 2], axis=0, out=data)
        fit = _fit_points(data, config, centre=dtype == np.float32)
        _put_fit(record, rows, t, fit)


def _points_chunk(config: _Config, real: np.ndarray, blocks: list[_Block],
                  record: _Record, rows: slice, workspace: _Workspace) -> None:
    """The reference engine: draw every point, fit every training set."""
    if config.workflow == ACCUMULATE_SUBSAMPLE:
        _subsample_chunk(config, real, blocks, record, rows, workspace)
        return
    reps, n, d = real.shape
    T = config.iterations
    if config.workflow == ACCUMULATE:
        pool = workspace.array("pool", (reps, T * n, d))
        pool[:, :n] = real
    data = real
    for t in range(1, T + 1):
        fit = _fit_points(data, config)
        _put_fit(record, rows, t, fit)
        if t == T:
            break
        batch = np.empty((reps, n, d))
        for block in blocks:
            batch[block.lo:block.hi] = _sample_block(block, fit, n)
        if config.workflow == REPLACE:
            data = batch
        else:
            pool[:, t * n:(t + 1) * n] = batch
            data = pool[:, :(t + 1) * n]


# ----------------------------------------------------------------------------- stats engines


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


def _reduce(real: np.ndarray, fit: _Fit, config: _Config) -> _Reduced:
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

    def draw(self, blocks: list[_Block]) -> None:
        for block in blocks:
            part = slice(block.lo, block.hi)
            block.rng.standard_normal(out=self.mean_noise[part])
            draw_bartlett(block.rng, block.hi - block.lo, self.k, self.df,
                          self.bartlett[part], self.bartlett_logdet[part])


def _replace_stats_chunk(config: _Config, real: np.ndarray, blocks: list[_Block],
                         record: _Record, rows: slice, workspace: _Workspace) -> None:
    """Replace by ``mu_t = mu_{t-1} + A g / sqrt(n)``, ``A_t = A_{t-1} C_t / sqrt(c_n)``."""
    fit = _fit_points(real, config)
    _put_fit(record, rows, 1, fit)
    reduced = _reduce(real, fit, config)
    mu, factor, logdet = reduced.mu, reduced.factor, fit.logdet
    k, n = config.rank, config.n
    divisor = config.divisor(n)
    # a failed Cholesky factor is not triangular; such replicates stay singular
    dead = ~np.isfinite(logdet)
    draws = _BatchDraws(real.shape[0], k, n - 1)
    for t in range(2, config.iterations + 1):
        draws.draw(blocks)
        mu = mu + np.einsum("rij,rj->ri", factor, draws.mean_noise) * (1.0 / math.sqrt(n))
        factor = np.matmul(factor, draws.bartlett)
        factor *= 1.0 / math.sqrt(divisor)
        logdet = logdet + (draws.bartlett_logdet - k * math.log(divisor))
        if config.singular:
            trinv = quad = np.full(real.shape[0], np.inf)
        else:
            trinv, quad = _inverse_terms(factor, mu, dead if dead.any() else None)
        record.put(rows, t, np.einsum("ri,ri->r", mu, mu) + reduced.offset_sq,
                   np.einsum("rij,rij->r", factor, factor), logdet, trinv, quad)


def _accumulate_stats_chunk(config: _Config, real: np.ndarray, blocks: list[_Block],
                            record: _Record, rows: slice, workspace: _Workspace) -> None:
    """Accumulate by merging each batch's (mean, Wishart scatter) into the pool's."""
    fit = _fit_points(real, config)
    _put_fit(record, rows, 1, fit)
    reduced = _reduce(real, fit, config)
    mean, scatter, factor = reduced.mu, reduced.scatter, reduced.factor
    k, n = config.rank, config.n
    reps = real.shape[0]
    size = n
    draws = _BatchDraws(reps, k, n - 1)
    for t in range(2, config.iterations + 1):
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
            logdet = _cholesky_logdet(factor, failed)
            trinv, quad = _inverse_terms(factor, mean, failed)
        record.put(rows, t, np.einsum("ri,ri->r", mean, mean) + reduced.offset_sq,
                   np.einsum("rii->r", sigma), logdet, trinv, quad)


# ----------------------------------------------------------------------------- public API


def _metrics(record: _Record, config: _Config) -> dict[str, np.ndarray]:
    d, sigma2 = config.dim, config.sigma2
    logdet = record.logdet
    with np.errstate(over="ignore", invalid="ignore"):
        det = np.exp(logdet)
        nll = 0.5 * (d * math.log(2.0 * math.pi * sigma2) + logdet + record.trinv + record.quad)
    # singular (log det = -inf) or inverse terms beyond float64: the cross-entropy is +inf
    nll[np.isnan(nll) | np.isneginf(logdet)] = np.inf
    values = {
        MEAN_SQ_ERROR: sigma2 * record.mu_sq,
        COV_TRACE_RATIO: record.trace / d,
        COV_DET_RATIO: det,
        LOG_COV_DET_RATIO: logdet,
        TEST_NLL: nll,
    }
    return {name: values[name] for name in GAUSSIAN_METRICS}


def simulate_gaussian(workflow: str, *, n: int, dim: int, iterations: int, replicates: int,
                      sigma2: float = 1.0, covariance: str = "mle", seed: int = 0,
                      chunk_size: int | None = None,
                      engine: str = "auto") -> dict[str, np.ndarray]:
    """Monte Carlo replicates of the Gaussian setting's metrics.

    Parameters
    ----------
    workflow : one of :data:`collapse.analysis.vocabulary.WORKFLOWS`.
    n : points per model (``>= 2``); dim : dimension ``d`` (``>= 1``);
    iterations : model-fitting iterations ``T`` (``>= 1``); replicates : ``>= 1``.
    sigma2 : truth ``N(0, sigma2 I_d)``, ``> 0``.
    covariance : ``"mle"`` (divisor ``m``) or ``"unbiased"`` (divisor ``m - 1``).
    seed : non-negative integer; the output is a function of the arguments except
        ``chunk_size``.
    chunk_size : replicates per batched computation, rounded down to whole blocks
        (at least one block); ``None`` picks chunks of about 256 MiB, keeping the
        chunks in flight (one per worker thread) under ~1 GiB.  The output does not
        depend on it.
    engine : ``"auto"``, ``"stats"`` (replace and accumulate only) or ``"points"``.

    Returns
    -------
    dict mapping every name of :data:`collapse.analysis.vocabulary.GAUSSIAN_METRICS` to a
    float64 array ``(replicates, iterations)``; column ``t - 1`` is iteration ``t``.
    Never NaN (see the module docstring for ``inf``).

    Raises
    ------
    simulate.errors.CollapseError (a ValueError) naming the bad parameter.
    """
    config, replicates, seed, chunk_size = _check_config(
        workflow, n, dim, iterations, replicates, sigma2, covariance, seed, chunk_size, engine)
    per_replicate = _bytes_per_replicate(config)
    block = _block_size(per_replicate)
    threads = _thread_count()
    chunk = _chunk_size(chunk_size, per_replicate, block, replicates, threads)
    if config.engine == POINTS:
        run = _points_chunk
    elif config.workflow == REPLACE:
        run = _replace_stats_chunk
    else:
        run = _accumulate_stats_chunk
    record = _Record.empty(replicates, config.iterations)
    local = threading.local()

    def run_chunk(start: int) -> None:
        # each worker thread keeps its own buffers and real-data cache
        if not hasattr(local, "workspace"):
            local.workspace = _Workspace()
            local.real_data = _RealData(seed, replicates, config.n, config.dim)
        stop = min(start + chunk, replicates)
        blocks = [_Block(lo - start, min(lo + block, stop) - start,
                         _generator(seed, _SIM_STREAM, lo // block))
                  for lo in range(start, stop, block)]
        real = local.real_data.rows(start, stop, local.workspace.array(
            "real", (stop - start, config.n, config.dim)))
        run(config, real, blocks, record, slice(start, stop), local.workspace)

    starts = range(0, replicates, chunk)
    if threads == 1 or len(starts) == 1:
        for start in starts:
            run_chunk(start)
    else:
        # The chunks already use every core; a multi-threaded BLAS inside each worker
        # oversubscribes a small machine and was measured several times slower.
        with threadpool_limits(limits=1, user_api="blas"):
            with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as executor:
                for future in [executor.submit(run_chunk, start) for start in starts]:
                    future.result()
    return _metrics(record, config)
