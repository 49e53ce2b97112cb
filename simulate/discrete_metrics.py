"""The five discrete metrics of count vectors, and the tiles that write them out.

A model with counts ``c_1..c_K`` of total ``N`` has frequencies ``f_i = c_i / N``; every
metric is a sum over categories of one term of ``f_i`` (names from
:mod:`collapse.analysis.vocabulary`):

* ``entropy`` ``sum_i entr(f_i)`` with ``entr(f) = -f log f`` (``entr(0) = 0``), nats;
* ``gini_diversity`` ``1 - sum_i f_i^2``;
* ``surviving_categories`` ``sum_i [f_i > 0]`` and ``collapsed`` ``[that sum = 1]``;
* ``tv_distance`` ``(1/2) sum_i |f_i - p0_i|``.

When many models share one total ``N`` (every model of ``replace``), the four terms of
every possible count ``j = 0..N`` of every category come from a table built once, and a
metric costs one lookup per count instead of a division, a logarithm and four passes.
The table holds the very numbers the direct formulas give (the same arithmetic on the
same ``f``) and both add the terms in category order, so which is used changes no bit.

Examples
--------
>>> import numpy as np
>>> counts = np.array([[3], [1], [0]])           # categories down the rows, one model
>>> out = metrics(term_sums(counts, 4, np.full(3, 1 / 3)))
>>> float(out["gini_diversity"][0]), float(out["surviving_categories"][0])
(0.375, 2.0)
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from collapse.analysis.vocabulary import (
    COLLAPSED,
    DISCRETE_METRICS,
    ENTROPY,
    GINI_DIVERSITY,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
)
from collapse.simulate.streams import power_of_two_at_most

__all__ = ["MetricTiles", "metrics", "term_sums", "term_table"]

#: The terms summed over categories, in the last axis of :func:`term_sums`.
_ENTROPY, _SQUARE, _ALIVE, _DISTANCE = range(4)


def term_table(size: int, p0: np.ndarray) -> np.ndarray:
    """The terms of every count ``j = 0..size`` of every category, ``(K (size + 1), 4)``.

    Row ``k (size + 1) + j`` holds ``entr(f)``, ``f^2``, ``[f > 0]`` and ``|f - p0_k|``
    for ``f = j / size``.
    """
    f = np.arange(size + 1) / size
    table = np.empty((p0.size, size + 1, 4))
    table[..., _ENTROPY] = entr(f)
    table[..., _SQUARE] = f * f
    table[..., _ALIVE] = f > 0
    table[..., _DISTANCE] = np.abs(f - p0[:, None])
    return table.reshape(-1, 4)


def term_sums(counts: np.ndarray, size, p0: np.ndarray,
              table: np.ndarray | None = None) -> np.ndarray:
    """Sums over categories of the four terms of ``counts (..., K, m)``: ``(..., m, 4)``.

    ``size`` is the models' total, a number or an array broadcast against ``(..., 1,
    m)``; ``table`` is :func:`term_table` of that number, when it is one.  Counts above
    ``size`` (stale rows of a tile, see :class:`MetricTiles`) give finite garbage.
    """
    # numpy adds the categories of a C-ordered array with several columns one after
    # another, but those of a lone column, or of a column-major array, pairwise: one
    # layout for every model, so that its bits do not depend on its company
    counts = np.ascontiguousarray(counts)
    if counts.shape[-1] == 1:
        return term_sums(np.concatenate([counts, counts], axis=-1), size, p0, table)[..., :1, :]
    if table is not None:
        offsets = (int(size) + 1) * np.arange(p0.size)[:, None]
        return table.take(counts + offsets, axis=0, mode="clip").sum(axis=-3)
    f = counts.astype(np.float64)  # a plain cast: mixed-type division is far slower
    f /= size
    sums = np.empty(f.shape[:-2] + f.shape[-1:] + (4,))
    sums[..., _ENTROPY] = entr(f).sum(axis=-2)
    sums[..., _SQUARE] = (f * f).sum(axis=-2)
    sums[..., _ALIVE] = (f > 0).sum(axis=-2)
    sums[..., _DISTANCE] = np.abs(f - p0[:, None]).sum(axis=-2)
    return sums


def metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """The five metrics from :func:`term_sums`, each of shape ``sums.shape[:-1]``, in
    the order of :data:`collapse.analysis.vocabulary.DISCRETE_METRICS`."""
    alive = sums[..., _ALIVE]
    values = {
        GINI_DIVERSITY: 1.0 - sums[..., _SQUARE],
        ENTROPY: sums[..., _ENTROPY],
        SURVIVING_CATEGORIES: alive,
        TV_DISTANCE: 0.5 * sums[..., _DISTANCE],
        COLLAPSED: (alive == 1).astype(np.float64),
    }
    return {name: values[name] for name in DISCRETE_METRICS}


class MetricTiles:
    """Writes the metrics of a chunk's models into the output, a tile at a time.

    The output is ``out[name]`` rows ``start .. start + rows - 1``, columns ``0 .. T-1``
    (model ``t`` in column ``t - 1``).  Every model's counts go into a tile of up to
    :data:`TILE` iterations, laid out ``(iteration, category, row)``, and the metrics of
    a full tile are computed together: a few vectorised passes per tile rather than a
    dozen numpy calls per iteration, which dominated once only a few replicates were
    left drawing (a replace-until-collapse run spends most of its iterations there).

    Replicates whose pool is down to one category (absorbed) stop drawing; every later
    model equals that pool, and :meth:`finish` writes their remaining columns in one
    masked pass per metric.
    """

    TILE = 64
    #: Most bytes of counts a tile holds: the tile stays in cache.
    TILE_BYTES = 2 * 2**20
    #: Counts whose metrics are computed together (their temporaries stay in cache).
    SLAB = 2**14

    def __init__(self, out: dict[str, np.ndarray], start: int, p0: np.ndarray,
                 rows: int, iterations: int, largest: int) -> None:
        self.out, self.start, self.p0, self.iterations = out, start, p0, iterations
        self.rows = rows
        # the narrowest integers (16 bits at least: arithmetic on 8-bit integers is
        # slow) that hold a model's counts, at most ``largest``
        dtype = np.promote_types(np.min_scalar_type(largest), np.uint16)
        self.width = power_of_two_at_most(
            self.TILE_BYTES / (dtype.itemsize * p0.size * rows), self.TILE)
        # zeros, not garbage: rows absorbed during a tile keep stale counts there,
        # whose metrics are computed (and then overwritten by finish) in dense tiles
        self.counts = np.zeros((self.width, p0.size, rows), dtype=dtype)
        self.sizes = np.zeros(self.width, dtype=np.int64)
        self.first, self.last = 1, 0  # the tile's first iteration and the last one put
        self.members = np.arange(rows)  # rows live at its first iteration
        self.absorb_start = np.full(rows, iterations + 1, dtype=np.int64)
        self.absorb_counts = np.zeros((p0.size, rows), dtype=np.int64)
        self._table: tuple[int, np.ndarray | None] = (0, None)

    def put(self, t: int, rows: np.ndarray, counts: np.ndarray, size: int) -> None:
        """Model ``t`` of the chunk's ``rows`` (its live rows, in order) has ``counts
        (len(rows), K)`` of total ``size``."""
        if t == self.first + self.width:
            self.flush()
            self.first, self.members = t, rows
        j = t - self.first
        if rows.size == self.rows:
            self.counts[j] = counts.T
        else:
            self.counts[j][:, rows] = counts.T
        self.sizes[j] = size
        self.last = t

    def absorbed(self, start: int, rows: np.ndarray, pool: np.ndarray) -> None:
        """Models ``start..T`` of ``rows`` all equal the one category left in ``pool``.

        Their values come from the same arithmetic as the tiles' (the frequency of the
        survivor is exactly 1), so filling them in changes no bit.
        """
        self.absorb_start[rows] = start
        self.absorb_counts[:, rows] = pool.T

    def _table_for(self, size: int, elements: int) -> np.ndarray | None:
        """The term table of ``size`` if it is cached or costs less than ``elements``
        direct terms (a rule whose pool grows every iteration never builds one)."""
        cached, table = self._table
        if size != cached:
            if self.p0.size * (size + 1) > elements:
                return None
            table = term_table(size, self.p0)
            self._table = (size, table)
        return table

    def flush(self) -> None:
        """Write the tile's iterations ``first .. last`` out."""
        width = self.last - self.first + 1
        if 4 * self.members.size >= 3 * self.rows:
            # most rows live: every row at once, without fancy indexing; the rows
            # absorbed before this tile get garbage here, which finish() overwrites
            rows, counts = slice(self.start, self.start + self.rows), self.counts[:width]
        else:
            rows, counts = self.start + self.members, self.counts[:width][:, :, self.members]
        # the metrics of a few iterations at a time (their temporaries stay in cache),
        # gathered in the output's layout and written a row segment per replicate:
        # a column at a time would touch a memory page per replicate and iteration
        values = np.empty((len(DISCRETE_METRICS), counts.shape[2], width))
        step = power_of_two_at_most(self.SLAB / counts[0].size, self.TILE)
        for j in range(0, width, step):
            part = slice(j, min(j + step, width))
            sizes = self.sizes[part]
            if (sizes == sizes[0]).all():
                size = int(sizes[0])
                sums = term_sums(counts[part], size, self.p0,
                                 self._table_for(size, 4 * counts[part].size))
            else:
                sums = term_sums(counts[part], sizes[:, None, None], self.p0)
            for i, value in enumerate(metrics(sums).values()):
                values[i, :, part] = value.T
        columns = slice(self.first - 1, self.first - 1 + width)
        for name, value in zip(DISCRETE_METRICS, values):
            self.out[name][rows, columns] = value

    def finish(self) -> None:
        """Write the last tile, then every absorbed row's constant remaining iterations
        (over whatever the tiles left there)."""
        self.flush()
        absorbed = np.flatnonzero(self.absorb_start <= self.iterations)
        if not absorbed.size:
            return
        counts = self.absorb_counts[:, absorbed]
        values = metrics(term_sums(counts, counts.sum(axis=0), self.p0))
        first = int(self.absorb_start[absorbed].min())  # no column before it changes
        mask = np.arange(first - 1, self.iterations)[None, :] >= (self.absorb_start - 1)[:, None]
        rows = slice(self.start, self.start + self.rows)
        full = np.zeros(self.rows)
        for name, value in values.items():
            full[absorbed] = value
            np.copyto(self.out[name][rows, first - 1:], full[:, None], where=mask)
