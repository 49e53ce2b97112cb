"""Monte Carlo of iterated Gaussian fitting under any workflow rule, vectorised over replicates.

The algorithm (one replicate).  Truth ``N(0, sigma2 I_d)``.
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
    drawn afresh every iteration;
any other rule (:class:`~collapse.analysis.workflows.Workflow`, ``fresh`` included)
    what the rule says: a real part (the real batch, a fresh real batch ``F_t`` of ``n``
    new points, or nothing) and the synthetic batches of a window, their union, a uniform
    ``m``-subset of it or a stratified one.

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

No metric is ever NaN.  Under the paper's three workflows a covariance is singular
exactly when ``n - 1 < d``: the real points span an affine subspace of dimension
``n - 1``, every model's mean lies in it and its covariance lives on it, so every later
point does too; the same holds for every rule without fresh real data, and a subsample
of ``m`` points is singular whenever ``m - 1 < d``.  Fresh real batches add directions,
so under ``real=fresh`` with ``n - 1 < d`` the rank is read off the fitted covariance
(:func:`collapse.simulate.gaussian_fit.fit_eigen`).  Numerically, a covariance whose
Cholesky factorisation fails also counts as singular, and a test NLL whose inverse
terms overflow float64 is ``+inf``.

Engines (``engine=``):

``points``
    the reference, :mod:`collapse.simulate.gaussian_points`: draws the points and
    fits them, literally, for every rule (subsamples included).
``stats``
    sufficient statistics, :mod:`collapse.simulate.gaussian_stats`, for every rule that
    keeps whole batches (``size=all``: replace, accumulate, fresh, windows), except
    ``real=fresh`` with ``n - 1 < d``: a batch is its mean and scatter, an iteration
    costs ``O(K d^3)`` for a window of ``K`` batches whatever ``n``.
``auto``
    ``stats`` where valid (:func:`stats_valid`), else ``points``.

Iteration 1 is fitted from the real points by the same code in every engine, so it
is bit-for-bit identical across workflows and engines for one seed.  Engines agree
in law, not draw for draw.

Units: the engines simulate the standardised process ``x / sigma`` (truth
``N(0, I)``) and rescale ``mean_sq_error`` and ``test_nll``; ratios are scale free.

Randomness and memory.  Replicates are grouped in blocks (:mod:`collapse.simulate.streams`)
whose size depends on ``n`` and ``d`` only.  Block ``b``'s real points come from its
``REAL`` stream, so they are shared by all workflows and engines and do not depend on
the number of replicates; the fresh real batches of ``real=fresh`` come from its
``FRESH`` stream, and everything else from its ``PROCESS`` stream (bit generator
SFC64), each consumed iteration by iteration with a fixed amount of work per
iteration, so the first ``t`` iterations never depend on ``iterations``.  Replicates
run in chunks of whole blocks, each iteration a few batched array operations per
chunk (the Python loops run over iterations, chunks, blocks and the rows of small
triangular matrices, never over replicates); a chunk aims at a working set of about
256 MiB (at least 4 replicates while the chunks in flight stay under 1 GiB), and the
output is bit-for-bit identical whatever ``chunk_size`` and thread count, because no
slice of a batched operation depends on the others.

Speed.  Each iteration costs ``O(d^3)`` per replicate under ``stats`` and
``O(n d^2)`` under ``points``; the engines issue many small matrix products, which
a multi-threaded BLAS on a small shared machine can slow down several-fold, so
BLAS is limited to one thread while worker threads run (threadpoolctl).
"""

from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from collapse.analysis.checks import check_int
from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    AUTO,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    ENGINES,
    GAUSSIAN_METRICS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    POINTS,
    REPLACE,
    STATS,
    TEST_NLL,
    UNBIASED,
    WORKFLOWS,
)
from collapse.analysis.workflows import Workflow, as_rule
from collapse.simulate import streams
from collapse.simulate.gaussian_fit import Block, Config, Record, Workspace
from collapse.simulate.gaussian_points import points_chunk, rule_points_chunk
from collapse.simulate.gaussian_stats import accumulate_chunk, replace_chunk, rule_stats_chunk

# A chunk aims at a cache-friendly working set, grows to a few replicates (to amortise
# the per-operation overhead) while it stays under the hard limit.
_CHUNK_TARGET_BYTES = 256 * 2**20
_CHUNK_LIMIT_BYTES = 2**30
_CHUNK_MIN_REPLICATES = 4


def stats_valid(rule: Workflow, n: int, dim: int) -> bool:
    """Whether the sufficient-statistic engine can run ``rule``.

    It needs whole batches (no subsample), and, under ``real=fresh``, training sets that
    span every direction (``n - 1 >= d``): fresh batches leave the subspace in which the
    engine works when the real batch spans fewer dimensions.
    """
    if rule.size is not None:
        return False
    return rule.real != "fresh" or n - 1 >= dim


def _check_config(workflow, n, dim, iterations, replicates, sigma2, covariance, seed,
                  chunk_size, engine) -> tuple[Config, int, int, int | None]:
    rule = as_rule(workflow)
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
    rule.check(n)
    size = rule.subsample_size(n)
    if covariance == UNBIASED and size is not None and size < 2:
        raise CollapseError(f"workflow key size={rule.size}: the unbiased covariance (divisor "
                            f"m-1) needs training sets of at least 2 points")
    valid = stats_valid(rule, n, dim)
    if engine == STATS and not valid:
        raise CollapseError(f"engine {STATS!r} runs rules that keep whole batches (size=all; "
                            f"real=fresh only with n - 1 >= dim), not {rule.label}; use "
                            f"{POINTS!r} or {AUTO!r}")
    if engine == AUTO:
        engine = STATS if valid else POINTS
    config = Config(workflow=rule.label, engine=engine, n=n, dim=dim, iterations=iterations,
                    sigma2=float(sigma2), unbiased=covariance == UNBIASED, rule=rule)
    return config, replicates, seed, chunk_size


def block_size(n: int, dim: int) -> int:
    """Replicates per random-stream block: a function of ``n`` and ``d`` only.

    The same for every workflow and engine, so that the real points (and iteration
    1) are shared by all of them.
    """
    return streams.block_size(n * dim)


def bytes_per_replicate(config: Config) -> int:
    """Rough peak working set of one replicate (bytes), for the chunk size."""
    n, d, T, k = config.n, config.dim, config.iterations, config.rank
    real = 2 * n * d + (k * d if config.singular else 0)
    if config.workflow not in WORKFLOWS:
        rule = config.rule
        slots = T - 1 if rule.window is None else min(rule.window, T - 1)
        if config.engine == STATS:
            return 8 * (real + (slots + 4) * (k * k + k) + 20 * k * k)
        largest = rule.subsample_size(n) or (1 + slots) * n
        # the batches, the training set, its centred copy and a singular sampler
        return 8 * (real + (1 + slots) * n * d + 3 * largest * d + 2 * n * largest + 10 * d * d)
    if config.engine == STATS:
        words = real + 20 * k * k
    elif config.workflow == REPLACE:
        words = real + 2 * n * (n if config.singular else d) + 10 * d * d
    elif config.workflow == ACCUMULATE:
        width = T * n if config.singular else d
        words = real + 2 * T * n * d + 2 * n * width + 10 * d * d
    else:
        width = n if config.singular else d
        words = real + T * n * d + 4 * n + 2 * n * width + 10 * d * d
    return 8 * words


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


def _metrics(record: Record, config: Config) -> dict[str, np.ndarray]:
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
    workflow : str or Workflow
        A preset (``replace``, ``accumulate``, ``accumulate-subsample``, ``fresh``), a
        spec such as ``"real=original,synthetic=window:3"``, or a
        :class:`~collapse.analysis.workflows.Workflow`.
    n : int
        Points per model (``>= 2``).
    dim : int
        Dimension ``d`` (``>= 1``).
    iterations : int
        Model-fitting iterations ``T`` (``>= 1``).
    replicates : int
        Independent replicates (``>= 1``).
    sigma2 : float
        Truth ``N(0, sigma2 I_d)``, ``> 0`` (squared data units).
    covariance : {"mle", "unbiased"}
        Divisor ``m`` or ``m - 1``.
    seed : int
        Non-negative; the output is a function of the arguments except ``chunk_size``,
        and its first ``t`` columns do not depend on ``iterations``.
    chunk_size : int, optional
        Replicates per batched computation, rounded down to whole blocks (at least one
        block); ``None`` picks chunks of about 256 MiB.  The output does not depend on it.
    engine : {"auto", "stats", "points"}
        ``stats`` runs rules that keep whole batches (:func:`stats_valid`).

    Returns
    -------
    dict
        Every name of :data:`collapse.analysis.vocabulary.GAUSSIAN_METRICS` mapped to a
        float64 array ``(replicates, iterations)``; column ``t - 1`` is iteration ``t``.
        Never NaN (see the module docstring for ``inf``).

    Raises
    ------
    CollapseError
        Naming the bad parameter.

    Examples
    --------
    >>> out = simulate_gaussian("replace", n=10, dim=2, iterations=3, replicates=8)
    >>> out["cov_trace_ratio"].shape
    (8, 3)
    >>> window = simulate_gaussian("real=original,synthetic=window:3", n=10, dim=2,
    ...                            iterations=3, replicates=8)
    >>> bool((window["mean_sq_error"][:, 0] == out["mean_sq_error"][:, 0]).all())
    True
    """
    config, replicates, seed, chunk_size = _check_config(
        workflow, n, dim, iterations, replicates, sigma2, covariance, seed, chunk_size, engine)
    block = block_size(config.n, config.dim)
    threads = streams.thread_count()
    chunk = _chunk_size(chunk_size, bytes_per_replicate(config), block, replicates, threads)
    if config.workflow not in WORKFLOWS:
        # every other rule, fresh included (the paper's three keep their own engines)
        run = rule_points_chunk if config.engine == POINTS else rule_stats_chunk
    elif config.engine == POINTS:
        run = points_chunk
    elif config.workflow == REPLACE:
        run = replace_chunk
    else:
        run = accumulate_chunk
    fresh = config.rule.real == "fresh"
    record = Record.empty(replicates, config.iterations)
    local = threading.local()

    def run_chunk(part: list[streams.Block]) -> None:
        # each worker thread keeps its own buffers
        if not hasattr(local, "workspace"):
            local.workspace = Workspace()
        start, stop = part[0].start, part[-1].stop
        real = local.workspace.array("real", (stop - start, config.n, config.dim))
        for b in part:
            rng = streams.generator(seed, streams.REAL, b.index)
            real[b.start - start:b.stop - start] = rng.standard_normal((b.size, config.n,
                                                                        config.dim))
        blocks = [Block(b.start - start, b.stop - start,
                        streams.generator(seed, streams.PROCESS, b.index),
                        streams.generator(seed, streams.FRESH, b.index) if fresh else None)
                  for b in part]
        run(config, real, blocks, record, slice(start, stop), local.workspace)

    streams.run_chunks(run_chunk, streams.chunks(streams.blocks(replicates, block), chunk),
                       threads)
    return _metrics(record, config)
