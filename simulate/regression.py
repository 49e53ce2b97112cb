"""Monte Carlo of iterated least squares on one fixed design, vectorised over replicates.

The algorithm (one replicate).  Draw a design ``X`` (``n x d``, iid ``N(0, 1)``; or use
the given ``design``), true weights ``w ~ N(0, I_d)`` and real labels ``y_0 = X w +
N(0, sigma2 I_n)``.  Model ``t`` is ``w_hat_t = Z_t^+ y(D_t)``, the least-squares fit by
the pseudo-inverse on the rows ``Z_t`` of its training set ``D_t``; the batch it
produces has labels ``X w_hat_t + N(0, sigma2 I_n)`` on the same design.  ``D_1`` is the
real batch; for ``t >= 2`` the workflow rule (:mod:`collapse.analysis.workflows`) says
which batches are stacked (copies of ``X`` with their labels), and whether a random
subset of the stacked rows is fitted.  A fresh real batch is new labels
``X w + N(0, sigma2 I_n)``.  The metric is ``test_mse = ||w_hat_t - w||^2``, the excess
test error on isotropic inputs against noiseless labels (squared label units).

Two exact reductions make it fast, each equal in law to the literal algorithm:

whole batches (every rule without ``size``)
    with the thin SVD ``X = U S V^T``, the fit of ``c`` stacked copies is the average of
    the batch fits ``X^+ y_b = V S^+ U^T y_b``, and the noise of a batch enters only
    through ``U^T eps ~ N(0, sigma2 I_q)``, ``q = min(n, d)``.  So each replicate keeps
    row-space coordinates: the real batch fit from its literal labels, then one draw of
    ``q`` normals per new batch; the error is ``||delta_t||^2 + ||(I - P) w||^2``.  An
    iteration costs ``O(q)`` per replicate (times the window length).
subsamples (every rule with ``size``)
    the fitted rows are draws of rows of ``X`` with multiplicities ``c_i``, so
    ``Z^T Z = V S U^T diag(c) U S V^T`` and ``Z^T y = V S U^T (label sums per row)``;
    the fit ``(Z^T Z)^+ Z^T y`` comes from a batched symmetric eigen-decomposition of
    a ``q x q`` matrix (eigenvalues at most ``max(m, d) eps lambda_max`` count as zero,
    the normal-equations analogue of ``numpy.linalg.pinv``'s cutoff).  The labels of
    every pooled batch are kept; an iteration costs ``O(m log m + n q^2 + q^3)`` per
    replicate.  The subset is the ``m``
    smallest of one uniform key per pooled row while the pool is small, and ``m``
    draws with replacement whose repeats are redrawn once it is large (stratified: per
    part).

Model 1 is computed by the same code in both, so iteration 1 is identical across
workflows for one seed.  No value is ever NaN: rank-deficient designs or subsets are
fitted by the pseudo-inverse, as the reference code does.

Randomness (:mod:`collapse.simulate.streams`).  Block ``b`` of replicates draws its
design, weights and real labels from ``generator(seed, REAL, b)`` as one array (a
replicate's numbers are a row of it), then the fresh real batches in iteration order;
the subsets and the label noise of every synthetic batch come from
``generator(seed, PROCESS, b)``, in iteration order: a fixed number per iteration for
whole-batch rules; for subsets, one key per pooled row or ``m`` indices plus the redraws
of repeated ones, which depend on the block's own draws only.  So the first ``t``
iterations never depend on ``iterations``, and results do not depend on the chunk size
or the thread count.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> out = simulate_regression(Workflow.parse("replace"), dim=3, n=20, sigma2=1.0,
...                           iterations=4, replicates=8, seed=0)
>>> out["test_mse"].shape
(8, 4)
>>> bool((out["test_mse"] >= 0).all())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from collapse.analysis.checks import check_int, check_real, check_seed
from collapse.analysis.pooling import as_workflow
from collapse.analysis.regression import check_design
from collapse.analysis.vocabulary import TEST_MSE
from collapse.analysis.workflows import Workflow
from collapse.simulate.streams import (
    PROCESS,
    REAL,
    Block,
    block_size,
    blocks,
    check_interrupted,
    chunks,
    generator,
    run_chunks,
    thread_count,
)

__all__ = ["fit_rows", "simulate_regression", "working_set"]

_EPS = np.finfo(np.float64).eps
#: Default working set of a chunk.
_CHUNK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class _Config:
    workflow: Workflow
    dim: int
    n: int
    sigma: float
    iterations: int
    design: np.ndarray | None

    @property
    def q(self) -> int:
        return min(self.n, self.dim)


@dataclass
class _Real:
    """A chunk's real data: design ``x`` (R or 1, n, d), weights ``w`` (R, d), labels ``y0``."""

    x: np.ndarray
    w: np.ndarray
    y0: np.ndarray
    rngs: list[np.random.Generator]  # the REAL generators, for fresh batches


def _draw_real(config: _Config, part: list[Block], seed: int) -> _Real:
    n, d = config.n, config.dim
    xs, ws, ys, rngs = [], [], [], []
    for block in part:
        rng = generator(seed, REAL, block.index)
        # one array per block, a replicate per row: its numbers do not depend on how
        # many replicates follow it
        raw = rng.standard_normal((block.size, n * d + d + n))
        xs.append(raw[:, :n * d].reshape(block.size, n, d))
        ws.append(raw[:, n * d:n * d + d])
        ys.append(raw[:, n * d + d:] * config.sigma)
        rngs.append(rng)
    w = np.concatenate(ws)
    if config.design is not None:
        x = np.broadcast_to(config.design, (w.shape[0], n, d))
    else:
        x = np.concatenate(xs)
    y0 = np.einsum("rnd,rd->rn", x, w) + np.concatenate(ys)
    return _Real(x=x, w=w, y0=y0, rngs=rngs)


def _draw(rngs: list[np.random.Generator], part: list[Block], fill) -> np.ndarray:
    return np.concatenate([fill(rng, block.size) for rng, block in zip(rngs, part)])


@dataclass
class _Svd:
    """Thin SVD of each design with the pseudo-inverse cutoff: ``s`` and ``s_inv = 1/s``
    on the kept singular values, 0 on the others."""

    u: np.ndarray  # (R, n, q)
    s: np.ndarray  # (R, q)
    s_inv: np.ndarray  # (R, q)
    vt: np.ndarray  # (R, q, d)
    kept: np.ndarray  # (R, q) bool


def _svd(x: np.ndarray, shared: bool) -> _Svd:
    source = x[:1] if shared else x
    u, s, vt = np.linalg.svd(source, full_matrices=False)
    cutoff = max(x.shape[1], x.shape[2]) * _EPS * s[:, :1]
    kept = s > cutoff
    s_inv = np.where(kept, 1.0 / np.where(kept, s, 1.0), 0.0)
    s = np.where(kept, s, 0.0)
    if shared:
        reps = x.shape[0]
        u, s, s_inv, vt, kept = (np.broadcast_to(a, (reps,) + a.shape[1:])
                                 for a in (u, s, s_inv, vt, kept))
    return _Svd(u=u, s=s, s_inv=s_inv, vt=vt, kept=kept)


def _first_fit(real: _Real, svd: _Svd) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model 1 from the real labels: ``(coords, w_hat_1, test_mse_1)``.

    ``coords = S^+ U^T y_0`` are the fit's coordinates in the basis ``V``; both engines
    call this, so iteration 1 is identical across workflows.
    """
    coords = svd.s_inv * np.einsum("rnq,rn->rq", svd.u, real.y0)
    w_hat = np.einsum("rqd,rq->rd", svd.vt, coords)
    diff = w_hat - real.w
    return coords, w_hat, np.einsum("rd,rd->r", diff, diff)


# ----------------------------------------------------------------------------- whole batches


def _whole_chunk(config: _Config, part: list[Block], seed: int, out: np.ndarray,
                 rows: slice) -> None:
    """Rules without ``size``: row-space coordinates, ``q`` normals per new batch."""
    rule, T, q, sigma = config.workflow, config.iterations, config.q, config.sigma
    real = _draw_real(config, part, seed)
    svd = _svd(real.x, config.design is not None)
    process = [generator(seed, PROCESS, block.index) for block in part]
    coords, _, first = _first_fit(real, svd)
    out[rows, 0] = first
    # Row-space coordinates of w; the part of w outside the row space is the bias.
    target = np.einsum("rqd,rd->rq", svd.vt, real.w) * svd.kept
    outside = real.w - np.einsum("rqd,rq->rd", svd.vt, target)
    bias = np.einsum("rd,rd->r", outside, outside)
    e0 = (coords - target) * svd.kept  # deviation of the real batch's fit
    noise_scale = sigma * svd.s_inv

    delta = e0
    total = np.zeros_like(e0)  # sum of the synthetic deviations kept (synthetic=all)
    window: list[np.ndarray] = []  # the newest batches (synthetic=window:K)
    for t in range(1, T + 1):
        check_interrupted()
        if t >= 2:
            if rule.window is None:
                synthetic = total
            else:
                synthetic = window[0].copy()
                for batch in window[1:]:
                    synthetic += batch
            count = len(rule.synthetic_batches(t))
            if rule.real == "original":
                delta = (e0 + synthetic) / (count + 1)
            elif rule.real == "fresh":
                fresh = noise_scale * _draw(real.rngs, part,
                                            lambda rng, size: rng.standard_normal((size, q)))
                delta = (fresh + synthetic) / (count + 1)
            else:
                delta = synthetic / count
            out[rows, t - 1] = np.einsum("rq,rq->r", delta, delta) + bias
        if t == T:
            break
        batch = delta + noise_scale * _draw(process, part,
                                            lambda rng, size: rng.standard_normal((size, q)))
        if rule.window is None:
            total = total + batch
        else:
            window.append(batch)
            del window[:-rule.window]


# ----------------------------------------------------------------------------- subsamples


def fit_rows(x: np.ndarray, counts: np.ndarray, label_sums: np.ndarray) -> np.ndarray:
    """Least squares on a multiset of design rows: ``pinv(Z) y`` per replicate.

    ``x`` (R, n, d) designs, ``counts`` (R, n) how often each row is fitted,
    ``label_sums`` (R, n) the sum of the labels fitted at each row.  Equal to
    ``numpy.linalg.pinv(Z) @ y`` for the stacked rows ``Z`` and labels ``y`` up to
    rounding; see :func:`_fit_coordinates`.
    """
    return _fit_coordinates(_svd(np.asarray(x, dtype=np.float64), shared=False), counts,
                            label_sums)


def _fit_coordinates(svd: _Svd, counts: np.ndarray, label_sums: np.ndarray) -> np.ndarray:
    """``pinv(Z) y`` in the coordinates of the thin SVD ``X = U S V^T`` (``q = min(n, d)``).

    The fit lies in the row space of ``X``, ``w = V a``, and ``Z V = (rows of U) S``, so
    ``a = A^+ S U^T h`` with the ``q x q`` matrix ``A = S U^T diag(c) U S`` and ``h`` the
    label sums per row: ``O(n q^2 + q^3)`` per replicate, which for ``n < d`` is far
    below the ``d x d`` normal equations.  ``A`` has the eigenvalues of ``Z^T Z``; those
    at most ``max(m, d) eps lambda_max`` count as zero, the normal-equations analogue of
    ``numpy.linalg.pinv``'s cutoff.
    """
    u, s = svd.u, svd.s
    inner = np.matmul(u.transpose(0, 2, 1), u * counts[:, :, None])
    gram = inner * s[:, :, None] * s[:, None, :]
    rhs = s * np.einsum("rnq,rn->rq", u, label_sums)
    size = max(int(counts.sum(axis=1).max()), svd.vt.shape[2])
    coords = np.empty_like(rhs)
    # Where no eigenvalue can fall under the cutoff the pseudo-inverse is the inverse,
    # several times cheaper than the eigendecomposition; the test is per replicate.
    easy, inverse = _well_conditioned(gram, s, counts, size)
    if easy.size:
        coords[easy] = np.einsum("rqk,rk->rq", inverse, rhs[easy])
    hard = np.setdiff1d(np.arange(gram.shape[0]), easy)
    if hard.size:
        values, vectors = np.linalg.eigh(gram[hard])
        top = values[:, -1:]
        kept = values > np.maximum(top, 0.0) * size * _EPS
        inverse = np.where(kept, 1.0 / np.where(kept, values, 1.0), 0.0)
        coords[hard] = np.einsum("rqk,rk->rq", vectors,
                                 np.einsum("rqk,rq->rk", vectors, rhs[hard]) * inverse)
    return np.einsum("rqd,rq->rd", svd.vt, coords)


def _inverses(gram: np.ndarray) -> np.ndarray:
    """``numpy.linalg.inv`` of each matrix (one at a time where the batch has a singular
    one, so that no replicate's numbers depend on the others of its chunk)."""
    try:
        return np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        out = np.empty_like(gram)
        for r in range(gram.shape[0]):
            try:
                out[r] = np.linalg.inv(gram[r])
            except np.linalg.LinAlgError:
                out[r] = np.linalg.pinv(gram[r], hermitian=True)
        return out


def _well_conditioned(gram: np.ndarray, s: np.ndarray, counts: np.ndarray,
                      size: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicates whose ``gram`` keeps every eigenvalue above the pseudo-inverse cutoff,
    and their inverses.

    Candidates have every singular value of the design kept and at least ``q`` distinct
    rows chosen (full rank in exact arithmetic).  For a symmetric positive definite
    ``A``, ``lambda_max / lambda_min <= ||A||_1 ||A^-1||_1``; a 1-norm condition number
    below ``1 / (16 size eps)`` keeps the smallest eigenvalue 16 times above the cutoff
    ``size eps lambda_max``, beyond the rounding of either route.
    """
    q = gram.shape[1]
    candidates = np.flatnonzero((s[:, -1] > 0) & (np.count_nonzero(counts, axis=1) >= q))
    if not candidates.size:
        return candidates, gram[:0]
    chosen = gram[candidates]
    inverse = _inverses(chosen)
    norm = np.abs(chosen).sum(axis=1).max(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        norm_inverse = np.abs(inverse).sum(axis=1).max(axis=1)
        fine = np.isfinite(norm_inverse) & (norm * norm_inverse < 1.0 / (16 * size * _EPS))
    return candidates[fine], inverse[fine]


def _smallest(keys: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest keys of each row: a uniform ``count``-subset."""
    if count >= keys.shape[1]:
        return np.broadcast_to(np.arange(keys.shape[1]), keys.shape).copy()
    return np.argpartition(keys, count - 1, axis=1)[:, :count]


def _distinct(rng: np.random.Generator, rows: int, population: int, count: int) -> np.ndarray:
    """``count`` distinct indices of ``0..population-1`` per row, uniformly.

    Draw with replacement, then redraw every surplus copy of a repeated value until none
    is left.  Each round keeps the distinct values and redraws the surplus uniformly, a
    rule that commutes with every relabelling of the population, so the final set is a
    uniform ``count``-subset; with ``population > 4 count`` few values repeat, so this
    costs ``O(count log count)`` instead of the ``O(population)`` of one key per point.
    """
    # int32 sorts several times faster than int64 (SIMD lanes)
    kind = np.int32 if population < 2**31 else np.int64
    chosen = np.sort(rng.integers(0, population, size=(rows, count), dtype=kind), axis=1)
    pending = np.arange(rows)  # rows that may still repeat a value
    while pending.size:
        work = chosen[pending]
        row, col = np.nonzero(work[:, 1:] == work[:, :-1])
        if row.size == 0:
            break
        work[row, col + 1] = rng.integers(0, population, size=row.size, dtype=kind)
        work.sort(axis=1)
        chosen[pending] = work
        pending = pending[np.unique(row)]
    return chosen


def _choose(rngs: list[np.random.Generator], part: list[Block], population: int,
            count: int) -> np.ndarray:
    """A uniform ``count``-subset of ``0..population-1`` for every replicate: one key per
    point for small populations, :func:`_distinct` for large ones (``population > 4
    count``); the choice depends on the problem and ``t`` only."""
    if population > 4 * count:
        return _draw(rngs, part, lambda rng, size: _distinct(rng, size, population, count))
    keys = _draw(rngs, part, lambda rng, size: rng.random((size, population)))
    return _smallest(keys, count)


def _subsample_chunk(config: _Config, part: list[Block], seed: int, out: np.ndarray,
                     rows: slice) -> None:
    """Rules with ``size``: keep every pooled batch's labels, fit the chosen rows."""
    rule, T, n, sigma = config.workflow, config.iterations, config.n, config.sigma
    real = _draw_real(config, part, seed)
    svd = _svd(real.x, config.design is not None)
    process = [generator(seed, PROCESS, block.index) for block in part]
    _, w_hat, first = _first_fit(real, svd)
    out[rows, 0] = first
    reps = real.w.shape[0]
    m = rule.subsample_size(n)
    strata = rule.stratified_counts(n)
    kept = max(1, T - 1 if rule.window is None else min(rule.window, T - 1))
    # columns 0..n-1: the real labels of the current model; then a ring of ``kept``
    # synthetic batches, batch j in columns n + ((j - 1) % kept) n + (0..n-1)
    store = np.empty((reps, (kept + 1) * n))
    offsets = (np.arange(reps) * n)[:, None]
    flat_store = (np.arange(reps) * store.shape[1])[:, None]
    if rule.real == "original":
        store[:, :n] = real.y0
    for t in range(1, T + 1):
        check_interrupted()
        if t >= 2:
            if rule.real == "fresh":
                noise = _draw(real.rngs, part, lambda rng, size: rng.standard_normal((size, n)))
                store[:, :n] = np.einsum("rnd,rd->rn", real.x, real.w) + sigma * noise
            has_real = rule.real != "none"
            batches = np.array(list(rule.synthetic_batches(t)))
            synth_columns = (n + ((batches - 1) % kept)[:, None] * n + np.arange(n)).ravel()
            if strata is None:
                columns = (np.concatenate((np.arange(n), synth_columns)) if has_real
                           else synth_columns)
                chosen = columns[_choose(process, part, columns.size, m)]
            else:
                m_real, m_synth = strata
                chosen = synth_columns[_choose(process, part, synth_columns.size, m_synth)]
                if has_real:
                    chosen = np.concatenate((_choose(process, part, n, m_real), chosen), axis=1)
            labels = np.take(store.ravel(), flat_store + chosen)
            flat = (chosen % n + offsets).ravel()
            counts = np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(np.float64)
            sums = np.bincount(flat, weights=labels.ravel(), minlength=reps * n).reshape(reps, n)
            w_hat = _fit_coordinates(svd, counts, sums)
            diff = w_hat - real.w
            out[rows, t - 1] = np.einsum("rd,rd->r", diff, diff)
        if t == T:
            break
        noise = _draw(process, part, lambda rng, size: rng.standard_normal((size, n)))
        slot = n + ((t - 1) % kept) * n
        store[:, slot:slot + n] = np.einsum("rnd,rd->rn", real.x, w_hat) + sigma * noise


# ----------------------------------------------------------------------------- entry point


def _check(workflow, dim, n, sigma2, iterations, replicates, seed, chunk_size, design):
    dim = check_int("dim", dim, 1)
    n = check_int("n", n, 2)
    sigma2 = check_real("sigma2", sigma2, low=0)
    iterations = check_int("iterations", iterations, 1)
    replicates = check_int("replicates", replicates, 1)
    seed = check_seed(seed)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    workflow = as_workflow(workflow, n)
    if design is not None:
        design = check_design(design, n, dim)
        design.setflags(write=False)
    config = _Config(workflow=workflow, dim=dim, n=n, sigma=math.sqrt(sigma2),
                     iterations=iterations, design=design)
    return config, replicates, seed, chunk_size


def _sizes(rule: Workflow, dim: int, n: int, iterations: int, replicates: int
           ) -> tuple[int, int, int]:
    """``(block size, default chunk size, bytes per replicate of a chunk)``.

    The block size depends on the problem only (it fixes the random streams); the chunk
    bounds a chunk's working set near ``_CHUNK_BYTES`` and spreads the replicates over
    the worker threads.
    """
    q = min(n, dim)
    per_iteration = (n + (n * dim) // 100 + 1 if rule.size is not None
                     else q * (1 + (rule.window or 1)))
    size = block_size(per_iteration)
    per_replicate = 8 * (n * dim * 3 + per_iteration * iterations)
    chunk = max(size, min(_CHUNK_BYTES // per_replicate, -(-replicates // thread_count())))
    return size, chunk, per_replicate


def working_set(workflow: Workflow | str, *, dim: int, n: int, iterations: int,
                replicates: int) -> float:
    """Bytes the engine holds at once besides its output: every worker thread's chunk.

    For the up-front estimate of :mod:`collapse.simulate.budget`.

    Examples
    --------
    >>> working_set("replace", dim=10, n=100, iterations=100, replicates=1000) < 1e8
    True
    """
    rule = as_workflow(workflow)
    size, chunk, per_replicate = _sizes(rule, dim, n, iterations, replicates)
    chunk = min(chunk, replicates)
    running = min(thread_count(), max(1, -(-replicates // chunk)))
    return float(running * chunk * per_replicate)


def simulate_regression(workflow: Workflow | str, *, dim: int, n: int, sigma2: float,
                        iterations: int, replicates: int, seed: int,
                        chunk_size: int | None = None, design: Any = None,
                        ) -> dict[str, np.ndarray]:
    """Monte Carlo replicates of ``test_mse`` (see the module docstring).

    Parameters
    ----------
    workflow : Workflow or str
        The rule for ``D_t``; every rule of :mod:`collapse.analysis.workflows` runs.
    dim : int
        ``d >= 1`` columns of the design.
    n : int
        ``n >= 2`` rows (labels per batch).
    sigma2 : float
        Label-noise variance, ``> 0``.
    iterations : int
        Models per replicate, ``>= 1``.
    replicates : int
        Independent replicates, ``>= 1``.
    seed : int
        ``>= 0``; the output is a function of every argument except ``chunk_size``.
    chunk_size : int, optional
        Replicates computed together, rounded down to whole blocks (at least one); the
        output does not depend on it.
    design : array_like, optional
        A fixed ``(n, dim)`` design used by every replicate (the conditional setting);
        otherwise every replicate draws its own.

    Returns
    -------
    dict
        ``{"test_mse": array (replicates, iterations)}``, float64, column ``t - 1`` for
        model ``t``, in squared label units; never NaN.

    Raises
    ------
    CollapseError
        Naming the bad parameter.
    """
    config, replicates, seed, chunk_size = _check(workflow, dim, n, sigma2, iterations,
                                                  replicates, seed, chunk_size, design)
    size, default_chunk, _ = _sizes(config.workflow, config.dim, config.n, config.iterations,
                                    replicates)
    parts = blocks(replicates, size)
    if chunk_size is None:
        chunk_size = default_chunk
    out = np.empty((replicates, config.iterations))
    run = _subsample_chunk if config.workflow.size is not None else _whole_chunk

    def work(part: list[Block]) -> None:
        run(config, part, seed, out, slice(part[0].start, part[-1].stop))

    run_chunks(work, chunks(parts, chunk_size))
    return {TEST_MSE: out}
