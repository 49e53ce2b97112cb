"""The value of synthetic data: exact theory and Monte Carlo over a grid of student sizes.

A generator is fitted once on ``N`` real points (``generator_n``); a *student* is fitted on
``n_r`` of those same real points (the first ``n_r``) plus ``n_s`` points sampled from the
generator, for every ``n_r`` in ``real_sizes`` and ``n_s`` in ``synthetic_sizes``.  Which
cells does synthetic data help?  (The paper's last question; its Gemma-2 grid found
that it helped only at small real sizes.)

Exact theory (:mod:`collapse.analysis.value`): the Gaussian student's ``mean_sq_error`` and
``cov_trace_ratio`` (:func:`~collapse.analysis.value.gaussian_value`), and the KDE student's
``mise`` for a fixed bandwidth and a Gaussian-mixture truth
(:func:`~collapse.analysis.value.kde_value`).  The KDE's held-out ``test_nll``, and the
KDE with a data-dependent bandwidth or an sklearn truth, are Monte Carlo only.

Monte Carlo (``replicates=R``), vectorised over replicates.  Per replicate: the ``N`` real
points (and the KDE's held-out points) from the ``REAL`` stream of
:mod:`collapse.simulate.streams`, then ``S = max(synthetic_sizes)`` generator samples from
the ``PROCESS`` stream; the student of cell ``(n_r, n_s)`` takes the first ``n_r`` real and
the first ``n_s`` synthetic points, so the cells of one replicate share their points
(common random numbers: differences between cells are estimated with less noise, and
each cell has exactly the law its theory describes).  Gaussian students need only prefix
sums of the points and of their squared norms; KDE students with a fixed bandwidth need
only kernel sums over the blocks between consecutive grid sizes (pair sums, truth
overlaps, held-out log sums), so a replicate costs ``O((N + S)^2 + H (N + S))`` for the
whole grid.  A data-dependent bandwidth (``scott``, ``silverman``, at the student's size
``n_r + n_s`` and the generator's ``N``) refits every cell.  Blocks of replicates are sized
from ``N d``; for a seed, the numbers depend on the problem, ``generator_n``, the grid, the
replicate's block and the seed, never on the chunk size or the thread count.

The problem's ``n`` is not used: the generator's size is ``generator_n``.

Examples
--------
>>> import collapse
>>> result = value(collapse.Gaussian(dim=2), generator_n=10, real_sizes=[2, 8],
...                synthetic_sizes=[0, 10])
>>> result.grid("mean_sq_error").round(4).tolist()  # 2 (2 + 9 + 14)/144, 2 (8 + 9 + 26)/324
[[1.0, 0.3472], [0.25, 0.2654]]
>>> result.exact_crossover()
5.5
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from collapse.analysis.checks import check_int, check_real, check_seed
from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import KDE, Gaussian, Problem
from collapse.analysis.vocabulary import (
    COV_TRACE_RATIO,
    MEAN_SQ_ERROR,
    MISE,
    MLE,
    POINTS,
    TEST_NLL,
    UNBIASED,
)
from collapse.simulate.results import ValueResult

__all__ = ["check_value_call", "value", "value_metrics"]

#: A chunk of replicates aims at about this much working memory.
_CHUNK_BYTES = 64 * 2**20
#: KDE students with a fixed bandwidth from kernel sums over blocks of the grid (False:
#: refit every cell from its points, as for a rule bandwidth; the tests compare the two).
PREFIX_SUMS = True


def value_metrics(problem: Problem) -> tuple[str, ...]:
    """The metrics of the value grid of ``problem``, the heat map's first.

    Examples
    --------
    >>> import collapse
    >>> value_metrics(collapse.KDE(truth="moons"))
    ('test_nll',)
    """
    if isinstance(problem, Gaussian):
        return (MEAN_SQ_ERROR, COV_TRACE_RATIO)
    if isinstance(problem, KDE):
        from collapse.simulate.setting_kde import truth_mixture

        return (MISE, TEST_NLL) if truth_mixture(problem) is not None else (TEST_NLL,)
    raise CollapseError(f"problem must be a Gaussian or a KDE for the value of synthetic data "
                        f"(got {problem!r})")


def _sizes(param: str, values: Any, minimum: int, maximum: int | None = None
           ) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise CollapseError(f"{param} must be a list of integers (got {values!r})")
    out = sorted({check_int(param, v, minimum, maximum) for v in values})
    if not out:
        raise CollapseError(f"{param} must hold at least one size")
    return tuple(out)


def check_value_call(problem: Problem, generator_n: Any, real_sizes: Any, synthetic_sizes: Any,
                     replicates: Any = None, seed: Any = 0, *, alpha: Any = 0.01,
                     theory_scale: Any = 1.0, chunk_size: Any = None
                     ) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Raise :class:`CollapseError` for any argument :func:`value` would refuse; compute nothing.

    Returns ``(generator_n, real_sizes, synthetic_sizes)`` normalised (sorted, distinct).

    Examples
    --------
    >>> import collapse
    >>> check_value_call(collapse.Gaussian(), 10, [4, 0, 4], [0, 5])
    (10, (0, 4), (0, 5))
    >>> check_value_call(collapse.Gaussian(), 10, [0, 12], [0, 5])
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: real_sizes must be an integer in [0, 10] (got 12)
    """
    metrics = value_metrics(problem)
    big_n = check_int("generator_n", generator_n, 2)
    real = _sizes("real_sizes", real_sizes, 0, big_n)
    synthetic = _sizes("synthetic_sizes", synthetic_sizes, 0)
    least = _least(problem)
    if real[-1] + synthetic[-1] < least:
        raise CollapseError(f"real_sizes and synthetic_sizes: every cell has fewer than "
                            f"{least} points (a student needs at least {least})")
    if replicates is None:
        if not _has_theory(problem):
            raise CollapseError(f"replicates: this {problem.setting} problem (truth "
                                f"{problem.truth}, bandwidth {problem.bandwidth}) has no exact "
                                f"theory of {', '.join(metrics)}; give replicates for Monte "
                                f"Carlo")
    else:
        from collapse.simulate.stats import MIN_REPLICATES

        if isinstance(replicates, int) and not isinstance(replicates, bool) \
                and 1 <= replicates < MIN_REPLICATES:
            raise CollapseError(f"replicates must be an integer >= {MIN_REPLICATES} (got "
                                f"{replicates}): Monte Carlo cells are compared with the "
                                f"theory, and fewer replicates cannot be tested honestly")
        check_int("replicates", replicates, MIN_REPLICATES)
        check_seed(seed)
        check_real("alpha", alpha, low=0, high=1, high_open=True)
        if chunk_size is not None:
            check_int("chunk_size", chunk_size, 1)
    check_real("theory_scale", theory_scale)
    return big_n, real, synthetic


def _least(problem: Problem) -> int:
    """Fewest points of a student: 1, or 2 for the unbiased covariance (divisor m - 1)."""
    return 2 if getattr(problem, "covariance", MLE) == UNBIASED else 1


def grid_cells(problem: Problem, real: Sequence[int], synthetic: Sequence[int]
               ) -> list[tuple[int, int]]:
    """The cells ``(n_r, n_s)`` of the grid that hold a student (``(0, 0)`` holds none)."""
    least = _least(problem)
    return [(a, b) for a in real for b in synthetic if a + b >= least]


def _has_theory(problem: Problem) -> bool:
    if isinstance(problem, Gaussian):
        return True
    from collapse.simulate.setting_kde import truth_mixture

    return problem.fixed_bandwidth and truth_mixture(problem) is not None


def _theory(problem: Problem, big_n: int, real: Sequence[int], synthetic: Sequence[int]
            ) -> tuple[dict[tuple[int, int], dict[str, float]], list[str]]:
    from collapse.analysis import value as exact

    values: dict[tuple[int, int], dict[str, float]] = {}
    cells = grid_cells(problem, real, synthetic)
    if isinstance(problem, Gaussian):
        for a, b in cells:
            values[a, b] = exact.gaussian_value(
                generator_n=big_n, real_size=a, synthetic_size=b, dim=problem.dim,
                sigma2=problem.sigma2, covariance=problem.covariance)
        return values, ["mean_sq_error, cov_trace_ratio: exact (collapse.analysis.value)"]
    if not _has_theory(problem):
        why = (f"truth {problem.truth} (not a Gaussian mixture)" if problem.fixed_bandwidth
               and problem.truth not in ("gaussian", "blobs")
               else f"bandwidth {problem.bandwidth} (data-dependent)")
        return {}, [f"no exact theory for {why}: Monte Carlo only"]
    from collapse.simulate.setting_kde import truth_mixture

    mixture = truth_mixture(problem)
    for a, b in cells:
        values[a, b] = exact.kde_value(generator_n=big_n, real_size=a, synthetic_size=b,
                                       bandwidth=problem.bandwidth, truth=mixture)
    return values, ["mise: exact (collapse.analysis.value); test_nll: Monte Carlo only"]


def value(problem: Problem, *, generator_n: int, real_sizes: Sequence[int],
          synthetic_sizes: Sequence[int], replicates: int | None = None, seed: int = 0,
          alpha: float = 0.01, theory_scale: float = 1.0,
          chunk_size: int | None = None) -> ValueResult:
    """The value of synthetic data over a grid of real and synthetic student sizes.

    A generator is fitted once on ``generator_n`` real points; the student of cell
    ``(n_r, n_s)`` is fitted on the first ``n_r`` of those real points plus ``n_s``
    points sampled from the generator (see the module docstring).

    Parameters
    ----------
    problem : Gaussian or KDE
        The setting and its parameters; its ``n`` is not used (the generator's size is
        ``generator_n``).  Gaussian: truth ``N(0, sigma2 I_dim)``, the ``covariance``
        divisor of generator and student.  KDE: truth, bandwidth (of generator and
        student; a rule is evaluated at each one's size), held-out points for
        ``test_nll``.
    generator_n : int
        ``N >= 2`` real points of the generator.
    real_sizes : list of int
        Student real sizes, each in ``[0, N]`` (sorted, duplicates dropped).
    synthetic_sizes : list of int
        Student synthetic sizes, each ``>= 0``; every cell needs a point (two with the
        unbiased covariance).
    replicates : int, optional
        Monte Carlo replicates (``>= 10``, as for :func:`collapse.compare`); without them,
        exact theory only.
    seed : int
        Seed of numpy's ``SeedSequence`` (``>= 0``).
    alpha : float
        Family-wise false-alarm rate of the verdict, in (0, 1) (Monte Carlo only).
    theory_scale : float
        Negative control: multiply every exact value by this factor (default 1).
    chunk_size : int, optional
        Replicates computed together; results do not depend on it.

    Returns
    -------
    ValueResult
        ``to_frame()`` has the columns ``setting, real_size, synthetic_size, metric,
        value`` (theory only) or ``setting, real_size, synthetic_size, metric, theory,
        mean, sem, z, p_adjusted, consistent`` (with replicates; ``theory`` blank where
        there is none); ``plot()`` draws the heat map.

    Examples
    --------
    >>> import collapse
    >>> mc = collapse.value(collapse.Gaussian(dim=2), generator_n=20, real_sizes=[5, 20],
    ...                     synthetic_sizes=[0, 40], replicates=400, seed=1)
    >>> mc.verdict, list(mc.to_frame().columns)[:3]
    ('CONSISTENT', ['setting', 'real_size', 'synthetic_size'])
    """
    big_n, real, synthetic = check_value_call(problem, generator_n, real_sizes,
                                              synthetic_sizes, replicates, seed, alpha=alpha,
                                              theory_scale=theory_scale, chunk_size=chunk_size)
    scale = float(theory_scale)
    values, notes = _theory(problem, big_n, real, synthetic)
    empty = [cell for cell in ((a, b) for a in real for b in synthetic)
             if cell not in grid_cells(problem, real, synthetic)]
    if empty:
        few = _least(problem)
        notes.append(f"cell{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} "
                     f"{'are' if len(empty) > 1 else 'is'} left out: a student needs at least "
                     f"{few} point{'s' if few > 1 else ''}")
    values = {cell: {m: v * scale for m, v in per.items()} for cell, per in values.items()}
    metrics = value_metrics(problem)
    samples = statistics = None
    if replicates is not None:
        from collapse.simulate import stats

        samples = _simulate(problem, big_n, real, synthetic, int(replicates), int(seed),
                            chunk_size)
        labels = {cell: _label(*cell) for cell in samples}
        bounds = {MEAN_SQ_ERROR: 0.0, COV_TRACE_RATIO: 0.0, MISE: 0.0, TEST_NLL: None}
        statistics = stats.compare(
            problem.setting,
            {labels[c]: {m: [v] for m, v in per.items()} for c, per in values.items()},
            {labels[c]: {m: samples[c][m][:, None] for m in metrics} for c in samples},
            alpha=float(alpha), lower_bounds=bounds)
        notes.append("the cells of one replicate share their points (the first n_r real "
                     "and the first n_s synthetic): cells are dependent, each has its own law")
    return ValueResult(problem=problem, generator_n=big_n, real_sizes=real,
                       synthetic_sizes=synthetic, metrics=metrics,
                       cells=tuple(grid_cells(problem, real, synthetic)), theory=values,
                       samples=samples, replicates=None if replicates is None
                       else int(replicates), seed=int(seed), alpha=float(alpha),
                       theory_scale=scale, statistics=statistics, notes=tuple(notes))


def _label(real: int, synthetic: int) -> str:
    return f"r={real},s={synthetic}"


# --------------------------------------------------------------------------- Monte Carlo


def _chunks(replicates: int, words: int, block: int, chunk_size: int | None):
    from collapse.simulate import streams

    per = 8 * max(1, words)
    wanted = chunk_size if chunk_size is not None else max(block, _CHUNK_BYTES // per)
    return streams.chunks(streams.blocks(replicates, block), max(block, wanted // block * block))


def _simulate(problem: Problem, big_n: int, real: tuple[int, ...], synthetic: tuple[int, ...],
              replicates: int, seed: int, chunk_size: int | None
              ) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    # imported here: `collapse theory` and theory-only grids never need the engines
    from collapse.simulate import streams

    cells = grid_cells(problem, real, synthetic)
    metrics = value_metrics(problem)
    out = {m: np.full((replicates, len(real), len(synthetic)), np.nan) for m in metrics}
    block = streams.block_size(big_n * problem.dim)
    total = big_n + max(synthetic)
    if isinstance(problem, Gaussian):
        work = _gaussian_chunk(problem, big_n, real, synthetic, seed, out)
        words = total * problem.dim * 3 + len(cells) * problem.dim * 2
    else:
        work = _kde_chunk(problem, big_n, real, synthetic, seed, out)
        words = (total + problem.heldout) * problem.dim * 4 + 2 * (1 << 16) \
            + problem.heldout * (len(real) + len(synthetic))
    streams.run_chunks(work, _chunks(replicates, words, block, chunk_size))
    row, col = {a: i for i, a in enumerate(real)}, {b: j for j, b in enumerate(synthetic)}
    return {(a, b): {m: out[m][:, row[a], col[b]] for m in metrics} for a, b in cells}


def _prefix(points: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the first ``k`` points and of their squared norms, ``k`` in ``sizes``."""
    reps, _, d = points.shape
    total = np.zeros((reps, 1, d))
    sums = np.concatenate([total, np.cumsum(points, axis=1)], axis=1)
    squares = np.concatenate([np.zeros((reps, 1)),
                              np.cumsum(np.einsum("rki,rki->rk", points, points), axis=1)], axis=1)
    index = np.asarray(sizes)
    return sums[:, index], squares[:, index]


def _gaussian_chunk(problem: Gaussian, big_n: int, real: tuple[int, ...],
                    synthetic: tuple[int, ...], seed: int, out: dict[str, np.ndarray]):
    """Work of one chunk: the generator, its samples, every student by prefix sums."""
    from collapse.simulate import streams
    from collapse.simulate.gaussian_fit import Block, Config, fit_points, sample_block

    d = problem.dim
    unbiased = problem.covariance == UNBIASED
    config = Config(workflow="value", engine=POINTS, n=big_n, dim=d, iterations=1,
                    sigma2=problem.sigma2, unbiased=unbiased)
    most = max(synthetic)
    # student sizes; the cells without a student ((0, 0)) get 1, and are never read
    m = np.maximum(np.add.outer(np.asarray(real), np.asarray(synthetic)), 1).astype(float)
    divisor = np.maximum(m - 1, 1) if unbiased else m

    def work(part: list[streams.Block]) -> None:
        start, stop = part[0].start, part[-1].stop
        # standardised units: the truth is N(0, I); mean_sq_error is rescaled by sigma2
        points = np.concatenate([streams.generator(seed, streams.REAL, b.index)
                                 .standard_normal((b.size, big_n, d)) for b in part])
        fit = fit_points(points, config)  # the generator
        draws = np.zeros((stop - start, most, d))
        if most:
            for b in part:
                block = Block(b.start - start, b.stop - start,
                              streams.generator(seed, streams.PROCESS, b.index))
                draws[block.lo:block.hi] = sample_block(block, fit, most)
        sx, qx = _prefix(points, real)
        sy, qy = _prefix(draws, synthetic)
        total = sx[:, :, None, :] + sy[:, None, :, :]  # (R, A, B, d)
        mean_sq = np.einsum("rabi,rabi->rab", total, total) / (m * m)
        scatter = qx[:, :, None] + qy[:, None, :] - m * mean_sq
        # one point has no spread: exactly 0, not a rounding residue
        trace = np.where(m == 1, 0.0, np.maximum(scatter, 0.0) / divisor) / d
        out[MEAN_SQ_ERROR][start:stop] = problem.sigma2 * mean_sq
        out[COV_TRACE_RATIO][start:stop] = trace

    return work


def _intervals(sizes: Sequence[int]) -> list[slice]:
    """The runs of points between consecutive sizes (the first from 0)."""
    edges = [0] + list(sizes)
    return [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


def _block_pairs(x: np.ndarray, cuts_x: Sequence[int], y: np.ndarray, cuts_y: Sequence[int],
                 scale: float) -> np.ndarray:
    """``P[r, i, j] = sum_{p < cuts_x[i], q < cuts_y[j]} exp(-scale |x_p - y_q|^2)``."""
    from collapse.simulate.kde import kernel_sums

    runs_x, runs_y = _intervals(cuts_x), _intervals(cuts_y)
    blocks = np.zeros((x.shape[0], len(runs_x), len(runs_y)))
    for i, rx in enumerate(runs_x):
        for j, ry in enumerate(runs_y):
            if rx.stop > rx.start and ry.stop > ry.start:
                blocks[:, i, j] = kernel_sums(x[:, rx], y[:, ry], scale).sum(axis=-1)
    return blocks.cumsum(axis=1).cumsum(axis=2)


def _log_prefix(heldout: np.ndarray, points: np.ndarray, cuts: Sequence[int],
                scale: float) -> np.ndarray:
    """``L[r, i, l] = log sum_{p < cuts[i]} exp(-scale |h_l - x_p|^2)`` (``-inf`` if empty)."""
    from collapse.simulate.kde import log_kernel_sums

    out = np.empty((heldout.shape[0], len(cuts), heldout.shape[1]))
    running = np.full((heldout.shape[0], heldout.shape[1]), -np.inf)
    for i, run in enumerate(_intervals(cuts)):
        if run.stop > run.start:
            running = np.logaddexp(running, log_kernel_sums(heldout, points[:, run], scale))
        out[:, i] = running
    return out


def _kde_chunk(problem: KDE, big_n: int, real: tuple[int, ...], synthetic: tuple[int, ...],
               seed: int, out: dict[str, np.ndarray]):
    """Work of one chunk: the generator KDE, its samples, every student's metrics."""
    from collapse.simulate import kde, streams
    from collapse.simulate.datasets import make_truth_sampler

    sampler = make_truth_sampler(problem.truth, dim=problem.dim, sigma0=problem.sigma0)
    mixture = sampler.mixture
    self_overlap = kde.mixture_self_overlap(mixture) if mixture is not None else 0.0
    d, most = problem.dim, max(synthetic)

    def bandwidth(m: int) -> float:
        if problem.fixed_bandwidth:
            return float(problem.bandwidth)
        return kde.rule_bandwidth(problem.bandwidth, m, d)

    h_gen = bandwidth(big_n)

    def work(part: list[streams.Block]) -> None:
        start, stop = part[0].start, part[-1].stop
        real_rngs = [streams.generator(seed, streams.REAL, b.index) for b in part]
        # real points, then held-out points, from the REAL stream (as the KDE engine)
        points = np.concatenate([sampler.sample(rng, (b.size, big_n))
                                 for rng, b in zip(real_rngs, part)])
        heldout = np.concatenate([sampler.sample(rng, (b.size, problem.heldout))
                                  for rng, b in zip(real_rngs, part)])
        draws = []
        for b in part:  # a synthetic point: a uniform parent plus kernel noise
            rng = streams.generator(seed, streams.PROCESS, b.index)
            parents = rng.integers(0, big_n, size=(b.size, most))
            noise = rng.standard_normal((b.size, most, d))
            draws.append(np.take_along_axis(points[b.start - start:b.stop - start],
                                            parents[..., None], axis=1) + h_gen * noise)
        draws = np.concatenate(draws)
        mise = out.get(MISE)
        if problem.fixed_bandwidth and PREFIX_SUMS:
            h = h_gen
            pair_scale, nll_scale = 1.0 / (4.0 * h * h), 1.0 / (2.0 * h * h)
            xx = np.diagonal(_block_pairs(points, real, points, real, pair_scale), axis1=1,
                             axis2=2)
            yy = np.diagonal(_block_pairs(draws, synthetic, draws, synthetic, pair_scale),
                             axis1=1, axis2=2)
            xy = _block_pairs(points, real, draws, synthetic, pair_scale)
            pair = xx[:, :, None] + 2.0 * xy + yy[:, None, :]
            log_x = _log_prefix(heldout, points, real, nll_scale)
            log_y = _log_prefix(heldout, draws, synthetic, nll_scale)
            for i, a in enumerate(real):
                for j, b in enumerate(synthetic):
                    m = a + b
                    if m == 0:
                        continue  # no student
                    logs = np.logaddexp(log_x[:, i], log_y[:, j])
                    out[TEST_NLL][start:stop, i, j] = kde._nll_from_log_sums(logs, m, h, d)
            if mise is not None:
                cross_x = _prefix_cross(points, real, h, mixture)
                cross_y = _prefix_cross(draws, synthetic, h, mixture)
                m = np.maximum(np.add.outer(np.asarray(real), np.asarray(synthetic)), 1)
                cross = cross_x[:, :, None] + cross_y[:, None, :]
                mise[start:stop] = kde._mise_from_sums(pair, cross, m, h, d, self_overlap)
            return
        for i, a in enumerate(real):  # a rule bandwidth: every student refitted
            for j, b in enumerate(synthetic):
                if a + b == 0:
                    continue  # no student
                student = np.concatenate([points[:, :a], draws[:, :b]], axis=1)
                mise_ij, nll = kde._metrics(student, bandwidth(a + b), heldout, mixture,
                                            self_overlap)
                out[TEST_NLL][start:stop, i, j] = nll
                if mise is not None:
                    mise[start:stop, i, j] = mise_ij

    return work


def _prefix_cross(points: np.ndarray, cuts: Sequence[int], h: float, mixture) -> np.ndarray:
    """``sum_{p < k} sum_c w_c phi_{sqrt(h^2 + s_c^2)}(x_p - mu_c)`` for ``k`` in ``cuts``."""
    from collapse.simulate.kde import mixture_kernel_sums

    runs = _intervals(cuts)
    parts = np.zeros((points.shape[0], len(runs)))
    for i, run in enumerate(runs):
        if run.stop > run.start:
            parts[:, i] = mixture_kernel_sums(points[:, run], h, mixture)
    return parts.cumsum(axis=1)
