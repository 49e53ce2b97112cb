"""The discrete metrics of count vectors (simulate.discrete_metrics) and the tiles that
write them.

Expected values come from the definitions written out here with plain Python floats
and ``math.log`` (Shannon entropy, Gini-Simpson diversity, total variation), not from
the code under test.  The lookup table and the direct formulas must agree bit for
bit: the engine picks one or the other by the size of a chunk, and its output must
not depend on that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapse.analysis.vocabulary import (
    COLLAPSED,
    DISCRETE_METRICS,
    ENTROPY,
    GINI_DIVERSITY,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
)
from collapse.simulate.discrete import simulate_discrete
from collapse.simulate.discrete_metrics import MetricTiles, metrics, term_sums, term_table


def by_hand(counts: list[int], p0: list[float]) -> dict[str, float]:
    total = sum(counts)
    f = [c / total for c in counts]
    alive = sum(1 for c in counts if c > 0)
    return {
        GINI_DIVERSITY: 1.0 - sum(x * x for x in f),
        ENTROPY: -sum(x * math.log(x) for x in f if x > 0),
        SURVIVING_CATEGORIES: float(alive),
        TV_DISTANCE: 0.5 * sum(abs(x - q) for x, q in zip(f, p0)),
        COLLAPSED: float(alive == 1),
    }


def random_counts(rng, K: int, size: int, models: int) -> np.ndarray:
    # every kind of model: all categories alive, a few, one (collapsed)
    probs = rng.dirichlet(np.full(K, 0.3), size=models)
    probs[: models // 4] = np.eye(K)[rng.integers(K, size=models // 4)]
    return np.stack([rng.multinomial(size, p) for p in probs])  # (models, K)


@pytest.mark.parametrize("K, size", [(2, 4), (5, 37), (10, 1000)])
def test_metrics_match_their_definitions(K, size):
    rng = np.random.default_rng(K * size)
    p0 = rng.dirichlet(np.ones(K))
    counts = random_counts(rng, K, size, 200)
    got = metrics(term_sums(counts.T, size, p0))
    for i, row in enumerate(counts):
        expected = by_hand(row.tolist(), p0.tolist())
        for name in DISCRETE_METRICS:
            assert got[name][i] == pytest.approx(expected[name], rel=1e-12, abs=1e-14), name


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64])
def test_the_table_and_the_direct_formulas_agree_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    K, size = 7, 50
    p0 = rng.dirichlet(np.ones(K))
    # a tile of 4 iterations, categories down the rows
    counts = random_counts(rng, K, size, 4 * 300).reshape(4, 300, K).transpose(0, 2, 1)
    counts = np.ascontiguousarray(counts).astype(dtype)
    direct = term_sums(counts, size, p0)
    table = term_sums(counts, size, p0, term_table(size, p0))
    assert np.array_equal(direct, table)
    # per-row totals (the absorbed rows of finish) give the same numbers too
    per_row = term_sums(counts, np.full((1, 300), size), p0)
    assert np.array_equal(direct, per_row)


def test_a_collapsed_model_has_the_bounds_of_every_metric():
    p0 = np.array([0.5, 0.3, 0.2])
    out = metrics(term_sums(np.array([[0], [9], [0]]), 9, p0))
    assert out[GINI_DIVERSITY][0] == 0.0 and out[ENTROPY][0] == 0.0
    assert out[SURVIVING_CATEGORIES][0] == 1.0 and out[COLLAPSED][0] == 1.0
    assert out[TV_DISTANCE][0] == pytest.approx(0.7, rel=1e-15)  # 1 - p0 of the survivor


def test_counts_above_sixteen_bits_are_kept():
    # pools of accumulate outgrow 16-bit counts after two iterations at n = 40000: a
    # wrapped count would give a diversity far from the truth's (H0 = 2/3, 3 categories)
    out = simulate_discrete("accumulate", categories=3, n=40000, truth="uniform",
                            iterations=3, replicates=50, seed=0)
    gini = out[GINI_DIVERSITY]
    assert np.all(np.abs(gini - 2 / 3) < 1e-3)
    assert np.all(out[SURVIVING_CATEGORIES] == 3)


def test_tiles_are_narrow_enough_for_a_cache_and_at_least_one_iteration_wide():
    out = {name: np.zeros((4096, 10)) for name in DISCRETE_METRICS}
    tiles = MetricTiles(out, 0, np.full(10, 0.1), 4096, 10, largest=100)
    assert tiles.counts.nbytes <= MetricTiles.TILE_BYTES
    assert tiles.counts.dtype == np.uint16
    many = MetricTiles(out, 0, np.full(10**5, 1e-5), 64, 10, largest=10**6)
    assert many.width == 1 and many.counts.dtype == np.uint32


def test_a_models_bits_do_not_depend_on_its_company_or_the_memory_layout():
    # numpy sums a column-major array, or a lone column, pairwise, and several C-ordered
    # columns one category after another; with 100,000 categories the two orders differ
    # in the 12th digit, which made tv_distance depend on the chunk size
    rng = np.random.default_rng(5)
    K, size = 100_000, 7
    p0 = rng.dirichlet(np.ones(K))
    counts = np.stack([rng.multinomial(size, p0) for _ in range(3)], axis=1)  # (K, 3)
    together = term_sums(counts, size, p0)
    for j in range(3):
        alone = term_sums(counts[:, j:j + 1].copy(), size, p0)
        assert np.array_equal(alone[0], together[j])
    column_major = term_sums(np.asfortranarray(counts), np.full(3, size), p0)
    assert np.array_equal(column_major, together)


def test_chunking_changes_no_bit_with_many_categories():
    args = dict(categories=100_000, n=2, truth="uniform", iterations=12, replicates=64, seed=1)
    default = simulate_discrete("real=none,synthetic=all", **args)
    one_block = simulate_discrete("real=none,synthetic=all", chunk_size=1, **args)
    for name in DISCRETE_METRICS:
        assert np.array_equal(default[name], one_block[name]), name
