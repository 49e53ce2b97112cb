"""Monte Carlo of iterated kernel density estimation under any workflow rule, vectorised
over replicates.

The algorithm (one replicate).  ``D_1`` is ``n`` real points
from the truth ``p0``.  Model ``t`` is the Gaussian KDE::

    p_hat_t(x) = (1/m_t) sum_{y in D_t} phi_{h_t}(x - y),   m_t = |D_t|,
    phi_h(u)   = (2 pi h^2)^(-d/2) exp(-|u|^2 / (2 h^2))      (the N(0, h^2 I_d) density),

and sampling from model ``t`` picks a uniform point of ``D_t`` and adds ``N(0, h_t^2 I_d)``
noise, ``n`` times independently.  ``D_t`` for ``t >= 2``:

``replace``
    the ``n`` points drawn from model ``t-1``;
``accumulate``
    the real points plus all points drawn from models ``1..t-1`` (``t n``);
``accumulate-subsample``
    a uniform ``n``-subset, without replacement, of that pool, drawn
    afresh every iteration;
any other rule (:class:`~collapse.analysis.workflows.Workflow`, ``fresh`` included)
    the rule's pool of batches (the real batch or a fresh real batch, and the synthetic
    batches of a window), its union, a uniform ``m``-subset or a stratified subset
    (:func:`_run_rule_chunk`); every synthetic point keeps its parent in ``D_t``.

Bandwidth: a fixed ``h``, or ``scott`` / ``silverman`` re-estimated on ``D_t`` at every
iteration exactly as sklearn's ``KernelDensity(bandwidth=...)`` does, which depends on
``m = |D_t|`` and ``d`` only -- sklearn does *not* scale by the spread of the data:

    scott:     h = m^(-1/(d+4))
    silverman: h = (m (d+2) / 4)^(-1/(d+4))

So under ``replace`` and ``accumulate-subsample`` the rule gives one constant ``h``, and
under ``accumulate`` it shrinks as the pool grows; in general it is the rule at the
training-set size ``m = |D_t|`` of the rule.  As in the paper's ``fit_kdes.py``,
sampling from model ``t`` uses the bandwidth model ``t`` was fitted with.

Metrics per replicate and iteration ``t`` (names from :mod:`collapse.analysis.vocabulary`):

``mise``  (inverse data-volume units) the realised integrated squared error
    ``int (p_hat_t - p0)^2 dx``, exact for truths that are isotropic Gaussian mixtures
    ``p0 = sum_k w_k phi_{s_k}(. - mu_k)`` by ``int phi_a(x-u) phi_b(x-v) dx =
    phi_{sqrt(a^2+b^2)}(u-v)``:

        int p_hat^2    = (1/m^2) sum_{y,y' in D_t} phi_{h sqrt 2}(y - y')
        int p_hat p0   = (1/m)   sum_{y in D_t} sum_k w_k phi_{sqrt(h^2+s_k^2)}(y - mu_k)
        int p0^2       = sum_{k,l} w_k w_l phi_{sqrt(s_k^2+s_l^2)}(mu_k - mu_l)

    Absent (no key) for truths without a mixture density.
``test_nll``  (nats per point) the paper's metric: ``-(1/H) sum_x log p_hat_t(x)`` over
    ``H`` held-out real points drawn once per replicate and kept fixed across
    iterations (the paper's final code draws 500 once), by log-sum-exp so that it is
    finite even when every kernel underflows.

Speed.  Arrays are ``(replicates, points, d)``; the only Python loops run over
iterations, chunks of replicates and fixed-size pieces of kernel matrices.  Under
``accumulate`` with a fixed bandwidth the pool only grows, so the held-out log kernel
sums ``log sum_y exp(-|x-y|^2/(2h^2))`` are updated with each new batch (``logaddexp``,
stable) and the pair sum ``sum_{y,y'}`` gains only the new rows and columns: iteration
``t`` costs ``O(H n + t n^2)`` instead of ``O(H t n + t^2 n^2)``.  A rule bandwidth
changes with the pool size, so under ``accumulate`` the sums are rebuilt batch by batch
at every iteration (``O(H t n + t^2 n^2 / 2)``; symmetry halves the pair sum).

Randomness.  Replicates are grouped in blocks (:func:`block_size`, a function of ``n``
and ``d``) with the streams of :mod:`collapse.simulate.streams`: block ``b``'s ``REAL``
stream feeds the real and held-out data (shared by all workflows, so iteration 1 is
identical across workflows for one seed), its ``FRESH`` stream the fresh real batches of
``real=fresh``, its ``PROCESS`` stream the workflow's own draws, a fixed amount per
iteration, so the first ``t`` iterations never depend on how
many follow.  Chunks are whole blocks, and kernel matrices are split into pieces whose
size does not depend on the chunk, so results are bit-for-bit identical whatever
``chunk_size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from collapse.analysis.checks import check_int
from collapse.analysis.errors import CollapseError
from collapse.analysis.truths import GaussianMixture
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    BANDWIDTH_RULES,
    MISE,
    REPLACE,
    SCOTT,
    SILVERMAN,
    TEST_NLL,
    WORKFLOWS,
)
from collapse.analysis.workflows import as_rule
from collapse.simulate import streams
from collapse.simulate.datasets import (
    TRUTHS,
    Sampler,
    make_truth_sampler,
    truth_dim,
)

__all__ = [
    "BANDWIDTH_RULES",
    "block_size",
    "SCOTT",
    "SILVERMAN",
    "TRUTHS",
    "KDEConfig",
    "Sampler",
    "heldout_nll",
    "make_truth_sampler",
    "realised_mise",
    "rule_bandwidth",
    "simulate_kde",
    "truth_dim",
]


#: Default replicates per chunk (rounded up to whole blocks).
DEFAULT_CHUNK_SIZE = 32


def block_size(n: int, dim: int) -> int:
    """Replicates per random-stream block (:mod:`collapse.simulate.streams`): a function of
    ``n`` and ``d`` only, so results never depend on the chunk or the iteration count."""
    return streams.block_size(n * dim)
#: Kernel matrices are evaluated in pieces of at most this many entries *per replicate*,
#: so a chunk of ``c`` replicates holds at most ``8 c`` times this many bytes of kernel
#: values; the piece split never depends on the chunk, which keeps results chunk-invariant.
PIECE_ENTRIES = 1 << 16

# A row of kernel values whose sum is below this is recomputed by max-shifted
# log-sum-exp: above it the sum is a normal float and the terms lost to underflow are
# < 1e-300 relative.
_UNDERFLOW_GUARD = 1e-290


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class KDEConfig:
    """A validated Monte Carlo configuration (see :func:`simulate_kde` for meanings)."""

    workflow: str
    n: int
    iterations: int
    replicates: int
    truth: str
    dim: int
    sigma0: float
    bandwidth: float | str
    heldout: int
    seed: int
    chunk_size: int
    rule: Any = None  # the Workflow; ``workflow`` is its label

    def bandwidth_at(self, m: int) -> float:
        """Bandwidth of a model fitted on ``m`` points (fixed, or the rule at ``m``)."""
        if isinstance(self.bandwidth, str):
            return rule_bandwidth(self.bandwidth, m, self.dim)
        return self.bandwidth

    def training_size(self, t: int) -> int:
        """``m_t = |D_t|``: ``t n`` under accumulate, ``n`` under the other two presets, and
        what the rule says for any other rule."""
        if self.workflow not in WORKFLOWS:
            return self.rule.training_size(self.n, t)
        return t * self.n if self.workflow == ACCUMULATE else self.n


def rule_bandwidth(rule: str, m: int, d: int) -> float:
    """sklearn's rule-of-thumb bandwidth for ``m`` points in ``R^d`` (no scaling by spread).

    ``scott``: ``m^(-1/(d+4))``; ``silverman``: ``(m (d+2)/4)^(-1/(d+4))``.
    """
    if rule == SCOTT:
        return float(m) ** (-1.0 / (d + 4))
    if rule == SILVERMAN:
        return (m * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    raise CollapseError(f"bandwidth rule must be one of {', '.join(BANDWIDTH_RULES)} (got {rule!r})")




def _check_bandwidth(value: object) -> float | str:
    if isinstance(value, str):
        if value in BANDWIDTH_RULES:
            return value
        try:
            value = float(value)
        except ValueError:
            value = None
    valid = f"a positive number or one of {', '.join(BANDWIDTH_RULES)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CollapseError(f"bandwidth must be {valid} (got {value!r})")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise CollapseError(f"bandwidth must be {valid} (got {number!r})")
    return number


def _check_numeric_bandwidth(value: object) -> float:
    h = _check_bandwidth(value)
    if isinstance(h, str):
        raise CollapseError(f"bandwidth must be a positive number here (got {value!r})")
    return h


def make_config(
    workflow: str,
    *,
    n: int,
    iterations: int,
    replicates: int,
    truth: str = "gaussian",
    dim: int = 1,
    sigma0: float = 1.0,
    bandwidth: float | str = 0.5,
    heldout: int = 500,
    seed: int = 0,
    chunk_size: int | None = None,
) -> KDEConfig:
    """Validate arguments into a :class:`KDEConfig`; bad input raises :class:`CollapseError`."""
    rule = as_rule(workflow)
    n = check_int("n", n, 2)
    rule.check(n)
    iterations = check_int("iterations", iterations, 1)
    replicates = check_int("replicates", replicates, 1)
    heldout = check_int("heldout", heldout, 1)
    seed = check_int("seed", seed, 0)
    bandwidth = _check_bandwidth(bandwidth)
    sampler = make_truth_sampler(truth, dim=dim, sigma0=sigma0)  # validates truth, dim, sigma0
    if chunk_size is None:
        chunk = DEFAULT_CHUNK_SIZE
    else:
        chunk = check_int("chunk_size", chunk_size, 1)
    block = block_size(n, sampler.dim)
    chunk = -(-chunk // block) * block  # whole blocks
    return KDEConfig(
        rule.label, n, iterations, replicates, truth, sampler.dim, float(sigma0), bandwidth,
        heldout, seed, chunk, rule,
    )


# --------------------------------------------------------------------------- kernel sums


#: Above this scale (``1 / (2 h^2)`` or ``1 / (4 h^2)``: bandwidths below about 0.005 data
#: units) squared distances are computed from differences: the expansion
#: ``|x|^2 + |y|^2 - 2 x.y`` loses ``eps (|x|^2 + |y|^2)`` to cancellation, which the
#: scale would turn into a visible error (4% at h = 1e-7, infinite at 1e-9).  The
#: choice depends on the scale alone, never on the data, so results stay chunk-invariant.
DIRECT_SCALE = 1e4


def _neg_scaled_sqdist(x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """``g[..., i, j] = -scale |x_i - y_j|^2``.

    For moderate scales, one batched matrix product: augmented vectors
    ``[2 scale x, -scale |x|^2, 1]`` and ``[y, 1, -scale |y|^2]`` have exactly that inner
    product.  For large scales (tiny bandwidths, :data:`DIRECT_SCALE`), from the
    differences ``x_i - y_j`` themselves, without cancellation.
    """
    if scale > DIRECT_SCALE:
        diff = x[..., :, None, :] - y[..., None, :, :]
        g = np.einsum("...ijk,...ijk->...ij", diff, diff)
        g *= -scale
        return g
    xx = np.einsum("...i,...i->...", x, x)[..., None]
    yy = np.einsum("...i,...i->...", y, y)[..., None]
    xa = np.concatenate([(2.0 * scale) * x, -scale * xx, np.ones_like(xx)], axis=-1)
    ya = np.concatenate([y, np.ones_like(yy), -scale * yy], axis=-1)
    g = np.matmul(xa, np.swapaxes(ya, -1, -2))
    # rounding can make a distance slightly negative: a kernel value is never above 1
    np.minimum(g, 0.0, out=g)
    return g


def _pieces(a: int, b: int, d: int = 1, scale: float = 0.0) -> list[slice]:
    # the direct path holds a x piece x d differences: smaller pieces keep it in cache
    entries = PIECE_ENTRIES // d if scale > DIRECT_SCALE else PIECE_ENTRIES
    step = max(1, entries // max(a, 1))
    return [slice(start, min(start + step, b)) for start in range(0, b, step)]


def kernel_sums(x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """``S[..., i] = sum_j exp(-scale |x_i - y_j|^2)`` for ``x (..., a, d)``, ``y (..., b, d)``.

    Terms that underflow contribute 0; use where the sum is dominated by large terms
    (pair sums include the diagonal ``exp(0) = 1``).
    """
    total = np.zeros(x.shape[:-1])
    for piece in _pieces(x.shape[-2], y.shape[-2], x.shape[-1], scale):
        g = _neg_scaled_sqdist(x, y[..., piece, :], scale)
        np.exp(g, out=g)
        total += g.sum(axis=-1)
    return total


def log_kernel_sums(x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """``L[..., i] = log sum_j exp(-scale |x_i - y_j|^2)``, finite even if every term underflows.

    Fast path: exponentiate and sum; a piece in which some row sum falls below
    ``1e-290`` is redone with the row maximum factored out (log-sum-exp).
    """
    result = None
    for piece in _pieces(x.shape[-2], y.shape[-2], x.shape[-1], scale):
        yp = y[..., piece, :]
        g = _neg_scaled_sqdist(x, yp, scale)
        np.exp(g, out=g)
        s = g.sum(axis=-1)
        if s.min() >= _UNDERFLOW_GUARD:
            log_s = np.log(s)
        else:
            g = _neg_scaled_sqdist(x, yp, scale)
            top = g.max(axis=-1)
            g -= top[..., None]
            np.exp(g, out=g)
            log_s = np.log(g.sum(axis=-1)) + top
        result = log_s if result is None else np.logaddexp(result, log_s)
    assert result is not None
    return result


def _gauss_norm(var: float | np.ndarray, d: int) -> float | np.ndarray:
    """``(2 pi var)^(-d/2)``: the peak of the ``N(0, var I_d)`` density."""
    return (2.0 * np.pi * var) ** (-0.5 * d)


def mixture_kernel_sums(y: np.ndarray, h: float, mixture: GaussianMixture) -> np.ndarray:
    """``sum_{y in D} sum_k w_k phi_{sqrt(h^2+s_k^2)}(y - mu_k)`` for ``y (..., m, d)``: shape ``(...)``."""
    weights, means, scales = mixture.arrays()
    var = h * h + scales**2  # (K,)
    sq = ((y[..., None, :] - means) ** 2).sum(axis=-1)  # (..., m, K)
    vals = (weights * _gauss_norm(var, y.shape[-1])) * np.exp(-sq / (2.0 * var))
    return vals.sum(axis=(-1, -2))


def mixture_self_overlap(mixture: GaussianMixture) -> float:
    """``int p0^2 = sum_{k,l} w_k w_l phi_{sqrt(s_k^2+s_l^2)}(mu_k - mu_l)``."""
    weights, means, scales = mixture.arrays()
    var = scales[:, None] ** 2 + scales[None, :] ** 2
    sq = ((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1)
    vals = np.outer(weights, weights) * _gauss_norm(var, mixture.dim) * np.exp(-sq / (2.0 * var))
    return float(vals.sum())


def _mise_from_sums(pair_sum, cross_sum, m: int, h: float, d: int, self_overlap: float):
    # int p_hat^2 = (4 pi h^2)^(-d/2) pair_sum / m^2 with pair_sum = sum exp(-|y-y'|^2 / (4 h^2))
    return _gauss_norm(2.0 * h * h, d) * pair_sum / (m * m) - 2.0 * cross_sum / m + self_overlap


def _nll_from_log_sums(log_sums: np.ndarray, m: int, h: float, d: int) -> np.ndarray:
    # -log p_hat(x) = -log sum_y exp(-|x-y|^2/(2h^2)) + log m + (d/2) log(2 pi h^2)
    return -log_sums.mean(axis=-1) + math.log(m) + 0.5 * d * math.log(2.0 * math.pi * h * h)


def realised_mise(points: np.ndarray, bandwidth: float, mixture: GaussianMixture) -> np.ndarray:
    """Exact ``int (p_hat - p0)^2 dx`` of the KDE on ``points (..., m, d)`` with bandwidth ``h``.

    ``p0`` is the isotropic Gaussian mixture ``mixture``.  Returns shape ``(...)``.
    """
    points = np.asarray(points, dtype=float)
    m, d = points.shape[-2], points.shape[-1]
    h = _check_numeric_bandwidth(bandwidth)
    pair = kernel_sums(points, points, 1.0 / (4.0 * h * h)).sum(axis=-1)
    cross = mixture_kernel_sums(points, h, mixture)
    return _mise_from_sums(pair, cross, m, h, d, mixture_self_overlap(mixture))


def heldout_nll(points: np.ndarray, heldout: np.ndarray, bandwidth: float) -> np.ndarray:
    """Mean NLL (nats per point) of ``heldout (..., H, d)`` under the KDE on ``points (..., m, d)``."""
    points = np.asarray(points, dtype=float)
    heldout = np.asarray(heldout, dtype=float)
    h = _check_numeric_bandwidth(bandwidth)
    log_sums = log_kernel_sums(heldout, points, 1.0 / (2.0 * h * h))
    return _nll_from_log_sums(log_sums, points.shape[-2], h, points.shape[-1])


# --------------------------------------------------------------------------- engine

Observer = Callable[[int, np.ndarray, float, np.ndarray], None]


class _Streams:
    """The random generators of the blocks in one chunk; draws are concatenated by block.

    Block ``b`` draws its real and held-out points from its ``REAL`` stream (shared by
    every workflow, so iteration 1 is identical across them) and the loop's draws from
    its ``PROCESS`` stream (:mod:`collapse.simulate.streams`).
    """

    def __init__(self, seed: int, part: Sequence[streams.Block], fresh: bool = False) -> None:
        self.sizes = [b.size for b in part]
        self.data = [streams.generator(seed, streams.REAL, b.index) for b in part]
        self.proc = [streams.generator(seed, streams.PROCESS, b.index) for b in part]
        self.fresh = [streams.generator(seed, streams.FRESH, b.index) for b in part] \
            if fresh else []

    @staticmethod
    def _cat(rngs, sizes, fn) -> np.ndarray:
        parts = [fn(rng, size) for rng, size in zip(rngs, sizes)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def data_draw(self, fn) -> np.ndarray:
        return self._cat(self.data, self.sizes, fn)

    def proc_draw(self, fn) -> np.ndarray:
        return self._cat(self.proc, self.sizes, fn)

    def fresh_draw(self, fn) -> np.ndarray:
        """From the blocks' ``FRESH`` streams: the fresh real batches of ``real=fresh``."""
        return self._cat(self.fresh, self.sizes, fn)


class _PoolSums:
    """Running kernel sums over a growing pool at a fixed bandwidth ``h``.

    Holds, per replicate, ``log_heldout[x] = log sum_{y in pool} exp(-|x-y|^2/(2h^2))``
    for every held-out ``x``, ``pair = sum_{y,y' in pool} exp(-|y-y'|^2/(4h^2))`` and
    ``cross = sum_{y in pool} sum_k w_k phi_{sqrt(h^2+s_k^2)}(y - mu_k)``.  :meth:`add`
    appends a batch ``B`` using only the new terms:
    ``pair += 2 sum_{y in old, b in B} + sum_{b, b' in B}``.
    """

    def __init__(self, heldout: np.ndarray, h: float, mixture: GaussianMixture | None) -> None:
        self.heldout = heldout
        self.h = h
        self.mixture = mixture
        self.log_heldout: np.ndarray | None = None
        self.pair = np.zeros(heldout.shape[0])
        self.cross = np.zeros(heldout.shape[0])
        self.size = 0

    def add(self, batch: np.ndarray, old: np.ndarray | None) -> None:
        """Add ``batch (c, b, d)`` to a pool whose current points are ``old (c, size, d)``."""
        h = self.h
        log_new = log_kernel_sums(self.heldout, batch, 1.0 / (2.0 * h * h))
        self.log_heldout = log_new if self.log_heldout is None else np.logaddexp(self.log_heldout, log_new)
        if self.mixture is not None:
            scale = 1.0 / (4.0 * h * h)
            within = kernel_sums(batch, batch, scale).sum(axis=-1)
            between = 0.0 if old is None or old.shape[-2] == 0 else kernel_sums(batch, old, scale).sum(axis=-1)
            self.pair = self.pair + 2.0 * between + within
            self.cross = self.cross + mixture_kernel_sums(batch, h, self.mixture)
        self.size += batch.shape[-2]


def _metrics(
    d_t: np.ndarray,
    h: float,
    heldout: np.ndarray,
    mixture: GaussianMixture | None,
    self_overlap: float,
) -> tuple[np.ndarray | None, np.ndarray]:
    """``(mise, test_nll)`` of the KDE on ``d_t (c, m, d)``, computed from scratch."""
    m, d = d_t.shape[-2], d_t.shape[-1]
    nll = _nll_from_log_sums(log_kernel_sums(heldout, d_t, 1.0 / (2.0 * h * h)), m, h, d)
    if mixture is None:
        return None, nll
    pair = kernel_sums(d_t, d_t, 1.0 / (4.0 * h * h)).sum(axis=-1)
    cross = mixture_kernel_sums(d_t, h, mixture)
    return _mise_from_sums(pair, cross, m, h, d, self_overlap), nll


def _run_chunk(
    cfg: KDEConfig,
    sampler: Sampler,
    part: Sequence[streams.Block],
    observer: Observer | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Metrics ``(mise or None, test_nll)`` of shape ``(c, iterations)`` for one chunk of blocks.

    ``observer(t, D_t, h_t, heldout)``, if given, sees every training set (for tests).
    """
    draws = _Streams(cfg.seed, part)
    c, n, T, d = sum(b.size for b in part), cfg.n, cfg.iterations, cfg.dim
    mixture = sampler.mixture
    self_overlap = mixture_self_overlap(mixture) if mixture is not None else 0.0
    real = draws.data_draw(lambda rng, b: sampler.sample(rng, (b, n)))
    heldout = draws.data_draw(lambda rng, b: sampler.sample(rng, (b, cfg.heldout)))

    mise = np.full((c, T), np.nan) if mixture is not None else None
    nll = np.empty((c, T))
    accumulating = cfg.workflow in (ACCUMULATE, ACCUMULATE_SUBSAMPLE)
    if accumulating:
        pool = np.empty((c, n * T, d))
        pool[:, :n] = real
    sums: _PoolSums | None = None
    current = real

    for t in range(1, T + 1):
        streams.check_interrupted()
        m = cfg.training_size(t)
        h = cfg.bandwidth_at(m)
        if cfg.workflow == REPLACE:
            d_t = current
        elif cfg.workflow == ACCUMULATE:
            d_t = pool[:, : t * n]
        elif t == 1:
            d_t = real
        else:
            size = t * n
            keys = draws.proc_draw(lambda rng, b, size=size: rng.random((b, size)))
            chosen = np.argpartition(keys, n - 1, axis=1)[:, :n]
            d_t = np.take_along_axis(pool[:, :size], chosen[..., None], axis=1)
        if observer is not None:
            observer(t, d_t, h, heldout)

        if cfg.workflow == ACCUMULATE:
            if sums is None or sums.h != h:
                # a rule bandwidth changed with the pool size: rebuild the sums at the new h
                sums = _PoolSums(heldout, h, mixture)
            while sums.size < m:  # batch by batch, so pair sums only cover new rows
                sums.add(d_t[:, sums.size : sums.size + n], d_t[:, : sums.size])
            nll[:, t - 1] = _nll_from_log_sums(sums.log_heldout, m, h, d)
            if mise is not None:
                mise[:, t - 1] = _mise_from_sums(sums.pair, sums.cross, m, h, d, self_overlap)
        else:
            mise_t, nll[:, t - 1] = _metrics(d_t, h, heldout, mixture, self_overlap)
            if mise is not None:
                mise[:, t - 1] = mise_t

        if t == T:
            break
        parents = draws.proc_draw(lambda rng, b, m=m: rng.integers(0, m, size=(b, n)))
        noise = draws.proc_draw(lambda rng, b: rng.standard_normal((b, n, d)))
        new = np.take_along_axis(d_t, parents[..., None], axis=1)
        new += h * noise
        if accumulating:
            pool[:, t * n : (t + 1) * n] = new
        else:
            current = new
    return mise, nll


def _subset(draws: _Streams, pool: np.ndarray, size: int, offset: int) -> np.ndarray:
    """Indices (into the store) of a uniform ``size``-subset of ``pool`` points per replicate,
    which start at ``offset``: the ``size`` smallest of uniform keys."""
    keys = draws.proc_draw(lambda rng, b: rng.random((b, pool)))
    return np.argpartition(keys, size - 1, axis=1)[:, :size] + offset


def _run_rule_chunk(
    cfg: KDEConfig,
    sampler: Sampler,
    part: Sequence[streams.Block],
    observer: Observer | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`_run_chunk` for any rule (:class:`~collapse.analysis.workflows.Workflow`).

    The batches of a replicate live in one array: slot 0 holds the real part (the real
    batch, or the fresh batch ``F_t`` of model ``t``, drawn from the block's ``FRESH``
    stream, under ``real=fresh``) and slot ``(j - 1) mod K + 1`` the synthetic batch
    ``S_j`` (``K`` the window, or ``T - 1``), so the pool of model ``t`` is one contiguous
    run of slots.  ``D_t`` is that run, a uniform subset of it (the ``m`` smallest of
    uniform keys), or a stratified subset (real and synthetic parts separately).  With a
    fixed bandwidth and a pool that only grows (``synthetic=all``, no subsample) the kernel
    sums over the kept batches are updated batch by batch as under ``accumulate``, and a
    fresh batch's terms are added to them at every iteration.
    """
    rule = cfg.rule
    fresh = rule.real == "fresh"
    draws = _Streams(cfg.seed, part, fresh)
    c, n, T, d = sum(b.size for b in part), cfg.n, cfg.iterations, cfg.dim
    mixture = sampler.mixture
    self_overlap = mixture_self_overlap(mixture) if mixture is not None else 0.0
    real = draws.data_draw(lambda rng, b: sampler.sample(rng, (b, n)))
    heldout = draws.data_draw(lambda rng, b: sampler.sample(rng, (b, cfg.heldout)))

    mise = np.full((c, T), np.nan) if mixture is not None else None
    nll = np.empty((c, T))
    slots = max(1, T - 1 if rule.window is None else min(rule.window, T - 1))
    store = np.empty((c, (1 + slots) * n, d))
    store[:, :n] = real
    start = 0 if rule.real != "none" else n
    size = rule.subsample_size(n)
    counts = rule.stratified_counts(n)
    # Never a function of T: the path taken must not change with the iteration count.
    growing = not isinstance(cfg.bandwidth, str) and size is None and rule.window is None
    kept_start = 0 if rule.real == "original" else n  # what the running sums cover
    sums: _PoolSums | None = None

    for t in range(1, T + 1):
        streams.check_interrupted()
        m = cfg.training_size(t)
        h = cfg.bandwidth_at(m)
        stop = (1 + min(t - 1, slots)) * n
        if t == 1:
            d_t = real
        else:
            if fresh:
                store[:, :n] = draws.fresh_draw(lambda rng, b: sampler.sample(rng, (b, n)))
            if size is None:
                d_t = store[:, start:stop]
            else:
                if counts is None:
                    chosen = _subset(draws, stop - start, size, start)
                else:
                    m_r, m_s = counts
                    parts = []
                    if m_r:
                        parts.append(_subset(draws, n, m_r, 0))
                    if m_s:
                        parts.append(_subset(draws, stop - n, m_s, n))
                    chosen = np.concatenate(parts, axis=1)
                d_t = np.take_along_axis(store, chosen[..., None], axis=1)
        if observer is not None:
            observer(t, d_t, h, heldout)

        if growing and t >= 2:
            kept = store[:, kept_start:stop]
            if sums is None:
                sums = _PoolSums(heldout, h, mixture)
            while sums.size < kept.shape[1]:  # batch by batch, so pair sums only cover new rows
                sums.add(kept[:, sums.size:sums.size + n], kept[:, :sums.size])
            log_heldout, pair, cross = sums.log_heldout, sums.pair, sums.cross
            if fresh:  # D_t = F_t plus the kept synthetic batches
                batch = store[:, :n]
                log_heldout = np.logaddexp(log_heldout, log_kernel_sums(
                    heldout, batch, 1.0 / (2.0 * h * h)))
                if mixture is not None:
                    scale = 1.0 / (4.0 * h * h)
                    pair = pair + 2.0 * kernel_sums(batch, kept, scale).sum(axis=-1) \
                        + kernel_sums(batch, batch, scale).sum(axis=-1)
                    cross = cross + mixture_kernel_sums(batch, h, mixture)
            nll[:, t - 1] = _nll_from_log_sums(log_heldout, m, h, d)
            if mise is not None:
                mise[:, t - 1] = _mise_from_sums(pair, cross, m, h, d, self_overlap)
        else:
            mise_t, nll[:, t - 1] = _metrics(d_t, h, heldout, mixture, self_overlap)
            if mise is not None:
                mise[:, t - 1] = mise_t

        if t == T:
            break
        parents = draws.proc_draw(lambda rng, b, m=m: rng.integers(0, m, size=(b, n)))
        noise = draws.proc_draw(lambda rng, b: rng.standard_normal((b, n, d)))
        new = np.take_along_axis(d_t, parents[..., None], axis=1)
        new += h * noise
        slot = (t - 1) % slots + 1  # S_t takes the slot of S_{t-K}, which leaves the window
        store[:, slot * n:(slot + 1) * n] = new
    return mise, nll


def simulate_kde(
    workflow: str,
    *,
    n: int,
    iterations: int,
    replicates: int,
    truth: str = "gaussian",
    dim: int = 1,
    sigma0: float = 1.0,
    bandwidth: float | str = 0.5,
    heldout: int = 500,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Monte Carlo of iterated Gaussian KDE under ``workflow``; see the module docstring.

    Parameters
    ----------
    workflow : a preset name (``replace``, ``accumulate``, ``accumulate-subsample``,
        ``fresh``), a spec such as ``"real=original,synthetic=window:3"``, or a
        :class:`~collapse.analysis.workflows.Workflow`.
    n : real points, and points sampled from every model (``>= 2``).
    iterations : model-fitting iterations ``T`` (iteration 1 = fitted on real data).
    replicates : independent replicates ``R``.
    truth : one of :data:`TRUTHS`; ``dim`` must match a truth of fixed dimension
        (:func:`truth_dim`), ``sigma0`` applies to ``gaussian`` only.
    bandwidth : ``h > 0`` (data units), or ``"scott"`` / ``"silverman"`` (sklearn's rules,
        re-estimated on ``D_t`` every iteration).
    heldout : held-out real points per replicate, fixed across iterations.
    seed : non-negative integer; results depend on it and on the other arguments, never
        on ``chunk_size``.
    chunk_size : replicates processed together (rounded up to whole blocks of
        :func:`block_size`); bounds memory to about
        ``chunk * (8 iterations n d + 8 * 2^16 + 8 heldout d)`` bytes plus small terms.

    Returns
    -------
    dict
        ``{"mise": (R, T), "test_nll": (R, T)}`` float64 arrays (``mise`` only for the
        ``gaussian`` and ``blobs`` truths).

    Raises
    ------
    simulate.errors.CollapseError
        (a ``ValueError``) with a one-line message naming the bad parameter.
    """
    cfg = make_config(
        workflow, n=n, iterations=iterations, replicates=replicates, truth=truth, dim=dim,
        sigma0=sigma0, bandwidth=bandwidth, heldout=heldout, seed=seed, chunk_size=chunk_size,
    )
    return _simulate(cfg)


def _simulate(cfg: KDEConfig, observer: Observer | None = None) -> dict[str, np.ndarray]:
    sampler = make_truth_sampler(cfg.truth, dim=cfg.dim, sigma0=cfg.sigma0)
    mise_parts, nll_parts = [], []
    for part in streams.chunks(streams.blocks(cfg.replicates, block_size(cfg.n, cfg.dim)),
                               cfg.chunk_size):
        run = _run_chunk if cfg.workflow in WORKFLOWS else _run_rule_chunk
        mise, nll = run(cfg, sampler, part, observer)
        nll_parts.append(nll)
        if mise is not None:
            mise_parts.append(mise)
    out = {}
    if mise_parts:
        out[MISE] = np.concatenate(mise_parts, axis=0)
    out[TEST_NLL] = np.concatenate(nll_parts, axis=0)
    return out
