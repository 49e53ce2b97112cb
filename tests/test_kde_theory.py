"""Checks of the exact KDE theory (analysis.kde, analysis.kde_lineage, analysis.kde_pairs).

Every reference value here is computed independently of the code under test:
lineage laws (exact, symbolic and float tables) from their defining batch-mixture
recursion, sympy's Stirling numbers and the rising factorial; pair laws (exact,
symbolic and the float table) by brute-force enumeration of every genealogy (exact
Fractions) and by vectorised simulation of genealogies, never against the exact
dynamic programme whose structure they share; the t = 1 MISE from the textbook
integrated variance + squared bias, integrated by sympy; the expected MISE at
t >= 2, its sympy form and the command-line adapter by enumerating genealogies,
writing the joint Gaussian law of the training points down directly and integrating
E[(p_hat - p0)^2] over x numerically on a grid; the replace limit from the
geometric coalescence law and Gaussian overlaps written out in the test.

Monte Carlo checks use fixed seeds, a chi-square goodness-of-fit test at false-alarm
rate ALPHA = 1e-3, and a negative control (a deliberately wrong law that the same
check must reject).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import sympy
from scipy import stats

from collapse.analysis.kde import (
    H_SYMBOL,
    N_SYMBOL,
    SIGMA0_SYMBOL,
    KDETheory,
    data_point_law,
    expected_density,
    expected_density_variance,
    expected_mise,
    kde_theory,
    lineage_law,
    lineage_law_symbolic,
    lineage_law_table,
    lineage_mean_symbolic,
    lineage_pgf_symbolic,
    lineage_variance_symbolic,
    pair_law,
    pair_law_symbolic,
    pair_law_table,
    replace_mise_limit,
    replace_stationary_square,
    symbolic_mise,
    truth_overlap,
)
from collapse.analysis.truths import GaussianMixture, blobs_truth, gaussian_truth
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    MISE,
    REPLACE,
    TEST_NLL,
    WORKFLOWS,
)

ALPHA = 1e-3  # false-alarm rate of every goodness-of-fit test below
POOLED = (ACCUMULATE, ACCUMULATE_SUBSAMPLE)  # the two workflows with Stirling lineages


# ---------------------------------------------------------------------------
# helpers: literal genealogies


def _training_sets(workflow: str, n: int, g: int, batches: list[list[tuple[int, int]]]):
    """Every equally likely choice of D_g (batches = B_0 .. B_{g-1} at least)."""
    pool = [p for b in batches[:g] for p in b]
    if workflow == REPLACE:
        return [batches[g - 1]]
    if workflow == ACCUMULATE or g == 1:
        return [pool]
    return [list(c) for c in itertools.combinations(pool, n)]


def _enumerate_genealogies(workflow: str, n: int, t: int):
    """Yield (parent map, D_t) for every configuration of generations 1..t-1 and every D_t.

    Parents of B_g are uniform in D_g and D_g is uniform among its choices, with a fixed
    number of choices per generation, so all yielded configurations are equally likely.
    """
    batches = [[(g, i) for i in range(n)] for g in range(t)]
    maps: list[dict] = [{}]
    for g in range(1, t):
        new = []
        for D in _training_sets(workflow, n, g, batches):
            for parents in itertools.product(D, repeat=n):
                for m in maps:
                    m2 = dict(m)
                    m2.update({(g, i): p for i, p in enumerate(parents)})
                    new.append(m2)
        maps = new
    final = _training_sets(workflow, n, t, batches)
    for parent in maps:
        for D in final:
            yield parent, D


def _path(point, parent) -> list:
    out = [point]
    while point in parent:
        point = parent[point]
        out.append(point)
    return out


@functools.lru_cache(maxsize=None)
def _enumerated_laws(workflow: str, n: int, t: int, pair_key, point_key=None):
    """Exact laws, over all genealogies, of pair_key(path_a, path_b) for a uniform ordered
    pair of distinct points of D_t and of point_key(path) for a uniform point of D_t."""
    pairs, points, configs = Counter(), Counter(), 0
    for parent, D in _enumerate_genealogies(workflow, n, t):
        configs += 1
        paths = {p: _path(p, parent) for p in D}
        for a in D:
            points[(point_key or (lambda pa: len(pa) - 1))(paths[a])] += 1
        for a, b in itertools.permutations(D, 2):
            pairs[pair_key(paths[a], paths[b])] += 1
    m = len(D)
    return ({k: Fraction(c, configs * m * (m - 1)) for k, c in sorted(pairs.items())},
            {k: Fraction(c, configs * m) for k, c in sorted(points.items())})


def _coalescence_key(pa: list, pb: list) -> tuple[bool, int]:
    """(coalesced, S) read off two explicit ancestor paths."""
    common = [x for x in pa if x in pb]
    if common:
        z = common[0]
        return True, pa.index(z) + pb.index(z)
    return False, len(pa) + len(pb) - 2


def _simulate_genealogies(workflow: str, n: int, generations: int, reps: int,
                          rng: np.random.Generator):
    """Vectorised literal simulation: parents of batches 1..generations, and D_{generations+1}.

    Pool index p = g*n + i for point i of batch g; parent = -1 for real points.
    """
    parent = np.full((reps, (generations + 1) * n), -1)

    def training(g: int) -> np.ndarray:
        if workflow == REPLACE:
            return np.broadcast_to(np.arange((g - 1) * n, g * n), (reps, n))
        pool = np.broadcast_to(np.arange(g * n), (reps, g * n))
        if workflow == ACCUMULATE or g == 1:
            return pool
        return rng.permuted(np.array(pool), axis=1)[:, :n]  # fresh uniform n-subset

    for g in range(1, generations + 1):
        D = training(g)
        pick = rng.integers(0, D.shape[1], size=(reps, n))
        parent[:, g * n:(g + 1) * n] = np.take_along_axis(D, pick, axis=1)
    return parent, training(generations + 1)


def _chisquare_pvalue(observed: dict, law: dict, total: int) -> float:
    """Chi-square GOF p-value; adjacent cells (in key order) merged until expected >= 5."""
    keys = sorted(set(observed) | set(law))
    cells, obs_acc, exp_acc = [], 0.0, 0.0
    for key in keys:
        obs_acc += observed.get(key, 0)
        exp_acc += float(law.get(key, 0)) * total
        if exp_acc >= 5:
            cells.append([obs_acc, exp_acc])
            obs_acc, exp_acc = 0.0, 0.0
    assert cells, "law too concentrated for a chi-square test"
    cells[-1][0] += obs_acc
    cells[-1][1] += exp_acc
    obs, exp = np.array(cells).T
    if len(cells) == 1:
        return 1.0 if obs[0] == exp[0] else 0.0
    with np.errstate(divide="ignore"):
        return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


# ---------------------------------------------------------------------------
# single lineage: Stirling law


@functools.lru_cache(maxsize=None)
def _laws_from_batch_mixture(T: int) -> tuple[dict[int, Fraction], ...]:
    """``P_0..P_T`` with P_t(k) = (1/t) sum_{j<t} P_j(k-1): the parent's batch is uniform on 0..t-1.

    The law of the number of kernel steps from a point drawn from model ``t`` back to
    its real ancestor, built directly from the pooled workflows' definition (model
    ``t`` is fitted on batches ``0..t-1`` in equal parts).
    """
    laws = [{0: Fraction(1)}]
    for m in range(1, T + 1):
        law: dict[int, Fraction] = {}
        for j in range(m):
            for k, p in laws[j].items():
                law[k + 1] = law.get(k + 1, Fraction(0)) + p / m
        laws.append(law)
    return tuple(laws)


def _law_from_batch_mixture(t: int) -> dict[int, Fraction]:
    return _laws_from_batch_mixture(t)[t]


@pytest.mark.parametrize("workflow", POOLED)
def test_lineage_law_satisfies_its_recursions(workflow):
    previous = {0: Fraction(1)}
    for t in range(1, 13):
        law = lineage_law(workflow, t)
        recursion = {k: Fraction(t - 1, t) * previous.get(k, 0) + Fraction(1, t) * previous.get(k - 1, 0)
                     for k in range(0, t + 1)}
        assert law == {k: p for k, p in recursion.items() if p != 0}
        assert law == _law_from_batch_mixture(t)
        assert sum(law.values()) == 1
        previous = law


@pytest.mark.parametrize("workflow", POOLED)
def test_lineage_law_is_stirling_with_harmonic_mean(workflow):
    # References: the batch-mixture recursion above, sympy's unsigned Stirling numbers
    # of the first kind, the rising factorial z (z+1) ... (z+t-1) / t! (their generating
    # function) and the harmonic numbers H_t, H_t^(2).
    from sympy.functions.combinatorial.numbers import stirling

    z = sympy.Symbol("z")
    for t in range(1, 11):
        law = lineage_law(workflow, t)
        reference = _law_from_batch_mixture(t)
        assert law == reference
        assert law == {k: Fraction(int(stirling(t, k, kind=1, signed=False)), math.factorial(t))
                       for k in range(1, t + 1)}
        assert lineage_law_symbolic(workflow, t) == \
            {k: sympy.Rational(p.numerator, p.denominator) for k, p in reference.items()}
        mean = sum(k * p for k, p in reference.items())
        variance = sum(k * k * p for k, p in reference.items()) - mean**2
        assert sympy.Rational(mean.numerator, mean.denominator) == sympy.harmonic(t)
        assert sympy.Rational(variance.numerator, variance.denominator) == \
            sympy.harmonic(t) - sympy.harmonic(t, 2)
        assert lineage_mean_symbolic(workflow, t) == sympy.harmonic(t)
        assert sympy.simplify(lineage_variance_symbolic(workflow, t)
                              - (sympy.harmonic(t) - sympy.harmonic(t, 2))) == 0
        rising = sympy.prod([z + i for i in range(t)]) / sympy.factorial(t)
        pgf = lineage_pgf_symbolic(workflow, t, z)
        assert sympy.expand(sympy.expand_func(pgf) - rising) == 0


def test_replace_lineage_and_data_point_laws():
    for t in range(1, 8):
        assert lineage_law(REPLACE, t) == {t: 1}
        assert data_point_law(REPLACE, t) == {t - 1: 1}
        assert lineage_mean_symbolic(REPLACE, t) == t


@pytest.mark.parametrize("workflow", POOLED)
def test_data_point_law_and_tables_match_the_batch_mixture(workflow):
    # A point of D_t is a point drawn from a model fitted on batches 0..t-2 or a real
    # one: its steps are those of the lineage law of t, minus the final draw.
    T = 60
    laws = _laws_from_batch_mixture(T)
    for t in range(1, 10):
        assert data_point_law(workflow, t) == {k - 1: p for k, p in laws[t].items()}
    tables = (lineage_law_table(workflow, T), lineage_law_table(workflow, T, data_point=True))
    for t in range(1, T + 1):
        for table, shift in zip(tables, (0, 1)):
            exact = np.zeros(T + 1)
            for k, p in laws[t].items():
                exact[k - shift] = float(p)
            np.testing.assert_allclose(table[t - 1], exact, rtol=0, atol=1e-14)


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_lineage_law_against_simulated_genealogies(workflow):
    n, t, reps = 4, 8, 20_000
    # (Calibration, 300 other seeds: the p-values of this test are uniform under the law.)
    rng = np.random.default_rng(np.random.SeedSequence([2024, WORKFLOWS.index(workflow)]))
    parent, _ = _simulate_genealogies(workflow, n, t, reps, rng)
    point = np.full(reps, t * n)  # first point drawn from model t
    steps = np.zeros(reps, dtype=int)
    rows = np.arange(reps)
    for _ in range(t):
        alive = point >= n
        steps += alive
        point = np.where(alive, parent[rows, np.maximum(point, 0)], point)
    assert np.all(point < n)
    observed = Counter(steps.tolist())
    if workflow == REPLACE:
        assert observed == {t: reps}
        return
    assert _chisquare_pvalue(observed, lineage_law(workflow, t), reps) > ALPHA
    # Negative controls: Poisson(H_t) (right mean, wrong law) and an off-by-one iteration.
    h_t = float(sum(Fraction(1, i) for i in range(1, t + 1)))
    poisson = {k: stats.poisson.pmf(k, h_t) for k in range(0, 3 * t)}
    assert _chisquare_pvalue(observed, poisson, reps) < ALPHA
    assert _chisquare_pvalue(observed, lineage_law(workflow, t + 1), reps) < ALPHA


# ---------------------------------------------------------------------------
# pair law


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("n,t", [(2, 1), (2, 2), (3, 2), (2, 3), (3, 3), (2, 4)])
def test_pair_law_equals_brute_force_enumeration(workflow, n, t):
    brute_pairs, brute_points = _enumerated_laws(workflow, n, t, _coalescence_key)
    assert pair_law(workflow, n, t) == brute_pairs
    assert data_point_law(workflow, t) == brute_points


def _simulated_pair_counts(workflow: str, n: int, t: int, reps: int, rng: np.random.Generator):
    """Counter of (coalesced, S) over ``reps`` literal genealogies, one distinct pair of D_t each."""
    parent, D = _simulate_genealogies(workflow, n, t - 1, reps, rng)
    m = D.shape[1]
    rows = np.arange(reps)
    i = rng.integers(0, m, reps)
    j = (i + rng.integers(1, m, reps)) % m  # a uniform distinct partner
    a, b = D[rows, i].copy(), D[rows, j].copy()
    steps = np.zeros(reps, dtype=int)
    for _ in range(2 * t):
        # Parents have smaller pool indices, so the larger index is never the other's
        # ancestor: step it (the usual walk to the most recent common ancestor).
        active = (a != b) & ((a >= n) | (b >= n))
        move_a, move_b = active & (a > b), active & (b > a)
        a[move_a] = parent[rows[move_a], a[move_a]]
        b[move_b] = parent[rows[move_b], b[move_b]]
        steps += active
    return Counter(zip((a == b).tolist(), steps.tolist()))


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_pair_law_against_simulated_genealogies(workflow):
    n, t, reps = 5, 6, 100_000
    rng = np.random.default_rng(np.random.SeedSequence([777, WORKFLOWS.index(workflow)]))
    observed = _simulated_pair_counts(workflow, n, t, reps, rng)
    assert _chisquare_pvalue(observed, pair_law(workflow, n, t), reps) > ALPHA
    # Negative control: the other pooled workflow's law (and replace's for replace).
    wrong = {REPLACE: pair_law(ACCUMULATE_SUBSAMPLE, n, t),
             ACCUMULATE: pair_law(ACCUMULATE_SUBSAMPLE, n, t),
             ACCUMULATE_SUBSAMPLE: pair_law(ACCUMULATE, n, t)}[workflow]
    assert _chisquare_pvalue(observed, wrong, reps) < ALPHA


def _table_law(table, t: int) -> dict:
    """Row ``t`` of a :class:`PairLawTable` as ``{(coalesced, S): probability}``."""
    law = {}
    for coalesced, rows in ((True, table.coalesced), (False, table.distinct)):
        for steps, p in enumerate(rows[t - 1]):
            if p != 0:
                law[(coalesced, steps)] = float(p)
    return law


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("n,T", [(2, 4), (3, 3)])
def test_float_pair_table_equals_brute_force_enumeration(workflow, n, T):
    # Reference: every genealogy enumerated (not the exact dynamic programme, whose
    # structure the float table shares).
    table = pair_law_table(workflow, n, T)
    for t in range(1, T + 1):
        brute = _enumerated_laws(workflow, n, t, _coalescence_key)[0]
        got = _table_law(table, t)
        assert set(got) <= set(brute)
        for key, p in brute.items():
            assert got.get(key, 0.0) == pytest.approx(float(p), rel=0, abs=1e-12), key


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_float_pair_table_against_simulated_genealogies(workflow):
    # Beyond brute-force reach (n = 7, t = 8): literal simulated genealogies, chi-square
    # at ALPHA; negative control: the other pooled workflow's row (or replace's
    # accumulate-subsample row), which the same test must reject.
    n, T, reps = 7, 8, 100_000
    rng = np.random.default_rng(np.random.SeedSequence([4242, WORKFLOWS.index(workflow)]))
    observed = _simulated_pair_counts(workflow, n, T, reps, rng)
    assert _chisquare_pvalue(observed, _table_law(pair_law_table(workflow, n, T), T), reps) > ALPHA
    other = {REPLACE: ACCUMULATE_SUBSAMPLE, ACCUMULATE: ACCUMULATE_SUBSAMPLE,
             ACCUMULATE_SUBSAMPLE: ACCUMULATE}[workflow]
    wrong = _table_law(pair_law_table(other, n, T), T)
    assert _chisquare_pvalue(observed, wrong, reps) < ALPHA


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_large_float_pair_table_is_a_probability_law(workflow):
    big = pair_law_table(workflow, 1000, 100)
    np.testing.assert_allclose(big.coalesced.sum(1) + big.distinct.sum(1), 1.0, atol=1e-12)
    assert big.coalesced.min() >= 0 and big.distinct.min() >= 0
    # Replace: the pair has not coalesced within t - 1 generations with probability
    # (1 - 1/n)^(t-1) (each generation back, the two parents coincide with prob. 1/n).
    if workflow == REPLACE:
        expected = (1 - 1 / 1000) ** np.arange(100)
        np.testing.assert_allclose(big.distinct.sum(1), expected, rtol=1e-12)


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_symbolic_pair_law_matches_brute_force(workflow):
    n = sympy.Symbol("n", positive=True, integer=True)
    for t in (1, 2, 3):
        law = pair_law_symbolic(workflow, t, n)
        assert sympy.simplify(sum(law.values()) - 1) == 0
        for value in (2, 3):
            brute = _enumerated_laws(workflow, value, t, _coalescence_key)[0]
            assert {k: v.subs(n, value) for k, v in law.items() if v.subs(n, value) != 0} == \
                {k: sympy.Rational(p.numerator, p.denominator) for k, p in brute.items()}


# ---------------------------------------------------------------------------
# expected MISE


def _textbook_mise_t1(dim: int) -> sympy.Expr:
    """MISE of a Gaussian KDE of n iid N(0, sigma0^2 I) points: int variance + int bias^2.

    Derived here by sympy integration in d = 1; the d-dimensional integrals are d-th
    powers of the 1-D ones because kernel and truth are products over coordinates.
    """
    x, y = sympy.symbols("x y", real=True)
    s, h, n = SIGMA0_SYMBOL, H_SYMBOL, N_SYMBOL
    oo = sympy.oo

    def phi(u, v):
        return sympy.exp(-u**2 / (2 * v)) / sympy.sqrt(2 * sympy.pi * v)

    def integrate(expr, var):
        return sympy.simplify(sympy.integrate(expr, (var, -oo, oo), conds="none"))

    mean_density = integrate(phi(x - y, h**2) * phi(y, s**2), y)  # E p_hat(x)
    kernel_square = integrate(integrate(phi(x - y, h**2) ** 2, x) * phi(y, s**2), y)  # int E K_h^2
    mean_square = integrate(mean_density**2, x)
    mean_truth = integrate(mean_density * phi(x, s**2), x)
    truth_square = integrate(phi(x, s**2) ** 2, x)
    variance = (kernel_square**dim - mean_square**dim) / n
    bias2 = mean_square**dim - 2 * mean_truth**dim + truth_square**dim
    return variance + bias2


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_t1_mise_equals_textbook_formula(dim):
    textbook = _textbook_mise_t1(dim)
    values = {N_SYMBOL: 7, H_SYMBOL: sympy.Rational(3, 5), SIGMA0_SYMBOL: sympy.Rational(5, 4)}
    for workflow in WORKFLOWS:
        # Deep factoring lets sympy see sqrt((h^2+s^2)(h^2+2s^2)) = sqrt(h^2+s^2) sqrt(h^2+2s^2).
        difference = sympy.factor(symbolic_mise(workflow, 1, dim) - textbook, deep=True)
        assert sympy.simplify(difference) == 0
        numeric = expected_mise(workflow, n=7, bandwidth=0.6, iterations=1,
                                truth=gaussian_truth(dim, 1.25))[0]
        assert numeric == pytest.approx(float(textbook.subs(values)), rel=1e-12)


def _covariance_key(pa: list, pb: list) -> tuple[bool, int, int, int]:
    """(same root?, K_a, K_b, number of shared noise increments) of two explicit paths."""
    shared = len(set(pa[:-1]) & set(pb[:-1]))  # each non-root node carries one noise draw
    return pa[-1] == pb[-1], len(pa) - 1, len(pb) - 1, shared


def _normal_pdf(x: np.ndarray, mean: np.ndarray, var: float) -> np.ndarray:
    """N(mean, var I) density on grid points x (..., d)."""
    d = x.shape[-1]
    return np.exp(-((x - mean) ** 2).sum(-1) / (2 * var)) / (2 * np.pi * var) ** (d / 2)


def _mise_by_grid_integration(workflow: str, n: int, t: int, h: float, truth: GaussianMixture,
                              axes: list[np.ndarray]) -> float:
    """E int (p_hat_t - p0)^2 dx by enumerating genealogies and integrating over a grid.

    Given the genealogy and the root components, the training points are jointly
    Gaussian: y_a = m_c + s_c z_root + sum of its own noise draws.  With e, e' iid
    N(0, h^2 I), E[phi_h(x - y_a) phi_h(x - y_b)] is the density of (y_a + e, y_b + e')
    at (x, x), a bivariate normal per coordinate, and E[phi_h(x - y)^2] =
    (4 pi h^2)^(-d/2) * density of y + N(0, h^2/2 I) at x.  The integral over x is a
    Riemann sum (spectrally accurate for these smooth, rapidly decaying integrands).
    """
    pair_structures, point_steps = _enumerated_laws(workflow, n, t, _covariance_key)
    m = n * t if workflow == ACCUMULATE else n
    w, means, scales = truth.arrays()
    d = truth.dim
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    cell = np.prod([ax[1] - ax[0] for ax in axes])
    h2 = h * h
    truth_density = sum(wc * _normal_pdf(grid, mc, sc**2) for wc, mc, sc in zip(w, means, scales))
    diagonal = sum(float(p) * (4 * np.pi * h2) ** (-d / 2) * wc
                   * _normal_pdf(grid, mc, sc**2 + k * h2 + h2 / 2)
                   for k, p in point_steps.items() for wc, mc, sc in zip(w, means, scales))
    mean_density = sum(float(p) * wc * _normal_pdf(grid, mc, sc**2 + (k + 1) * h2)
                       for k, p in point_steps.items() for wc, mc, sc in zip(w, means, scales))
    off_diagonal = np.zeros(grid.shape[:-1])
    for (same_root, ka, kb, shared), p in pair_structures.items():
        if same_root:
            for wc, mc, sc in zip(w, means, scales):
                va, vb = sc**2 + (ka + 1) * h2, sc**2 + (kb + 1) * h2
                cov = sc**2 + shared * h2
                det = va * vb - cov**2
                u = grid - mc  # bivariate density at (u_i, u_i) for each coordinate i
                quad = ((vb - 2 * cov + va) * u**2 / det).sum(-1)
                off_diagonal += float(p) * wc * np.exp(-quad / 2) / (2 * np.pi * np.sqrt(det)) ** d
        else:
            assert shared == 0
            first = sum(wc * _normal_pdf(grid, mc, sc**2 + (ka + 1) * h2)
                        for wc, mc, sc in zip(w, means, scales))
            second = sum(wc * _normal_pdf(grid, mc, sc**2 + (kb + 1) * h2)
                         for wc, mc, sc in zip(w, means, scales))
            off_diagonal += float(p) * first * second
    square = diagonal / m + (1 - 1 / m) * off_diagonal
    return float((square - 2 * mean_density * truth_density + truth_density**2).sum() * cell)


GRID_CASES = [
    # (truth, bandwidth, per-axis grid), n = 2
    (gaussian_truth(1, 0.8), 0.6, [np.arange(-12.0, 12.0, 0.02)]),
    (blobs_truth(), 0.5, [np.arange(-13.0, 13.0, 0.08), np.arange(-11.0, 14.0, 0.08)]),
    (gaussian_truth(3, 0.9), 0.7, [np.arange(-9.0, 9.0, 0.15)] * 3),
]


GRID_IDS = ["gauss-d1", "blobs-d2", "gauss-d3"]


@functools.lru_cache(maxsize=None)
def _grid_reference(workflow: str, case: int, t: int) -> float:
    """:func:`_mise_by_grid_integration` for ``GRID_CASES[case]``, n = 2 (cached: several
    tests share these references)."""
    truth, h, axes = GRID_CASES[case]
    return _mise_by_grid_integration(workflow, 2, t, h, truth, axes)


def _grid_iterations(case: int) -> int:
    return 3 if GRID_CASES[case][0].dim == 1 else 2


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("case", range(len(GRID_CASES)), ids=GRID_IDS)
def test_expected_mise_against_grid_integration_of_enumerated_genealogies(workflow, case):
    truth, h, axes = GRID_CASES[case]
    iterations = _grid_iterations(case)
    theory = expected_mise(workflow, n=2, bandwidth=h, iterations=iterations, truth=truth)
    for t in range(1, iterations + 1):
        reference = _grid_reference(workflow, case, t)
        assert theory[t - 1] == pytest.approx(reference, rel=1e-9)
    # Negative control: the same check must tell accumulate and accumulate-subsample apart
    # (at t = 2 they differ only through |D_t| and which pairs are drawn).
    other = {REPLACE: ACCUMULATE, ACCUMULATE: ACCUMULATE_SUBSAMPLE,
             ACCUMULATE_SUBSAMPLE: ACCUMULATE}[workflow]
    wrong = expected_mise(other, n=2, bandwidth=h, iterations=2, truth=truth)[1]
    reference = _grid_reference(workflow, case, 2)
    assert abs(wrong - reference) > 1e-4 * reference


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("case", [0, 2], ids=["gauss-d1", "gauss-d3"])
def test_symbolic_mise_against_grid_integration(workflow, case):
    # The sympy form at n = 2, against the enumerated-genealogy grid integral (not
    # against expected_mise, which shares the pair laws' recursion).
    truth, h, _ = GRID_CASES[case]
    sigma0 = float(truth.arrays()[2][0])
    for t in range(1, _grid_iterations(case) + 1):
        value = symbolic_mise(workflow, t, truth.dim).subs(
            {N_SYMBOL: 2, H_SYMBOL: sympy.Float(h, 30), SIGMA0_SYMBOL: sympy.Float(sigma0, 30)})
        assert float(value) == pytest.approx(_grid_reference(workflow, case, t), rel=1e-9)
    # Negative control: the same comparison with the bandwidth 5% off fails.
    wrong = symbolic_mise(workflow, 1, truth.dim).subs(
        {N_SYMBOL: 2, H_SYMBOL: 1.05 * h, SIGMA0_SYMBOL: sigma0})
    assert float(wrong) != pytest.approx(_grid_reference(workflow, case, 1), rel=1e-3)


@pytest.mark.parametrize("case", [0, 1], ids=["gauss-d1", "blobs-d2"])
def test_kde_theory_adapter(case):
    truth, h, _ = GRID_CASES[case]
    iterations = _grid_iterations(case)
    for workflow in WORKFLOWS:
        result = kde_theory(workflow, n=2, bandwidth=h, iterations=iterations, truth=truth)
        assert isinstance(result, KDETheory)
        assert set(result.values) == {MISE} and TEST_NLL not in result.values
        assert (result.workflow, result.n, result.bandwidth) == (workflow, 2, h)
        assert (result.truth_name, result.dim, result.iterations) == \
            (truth.name, truth.dim, iterations)
        reference = [_grid_reference(workflow, case, t) for t in range(1, iterations + 1)]
        assert result.values[MISE] == pytest.approx(reference, rel=1e-9)
        assert any(MISE in note for note in result.notes)


# ---------------------------------------------------------------------------
# blur of the expected density and its asymptotics


def test_blur_variance_growth_and_asymptotics():
    h = 0.3
    gamma = float(sympy.EulerGamma)
    for t in (1, 2, 5, 10, 100, 1000, 5000):
        rep = expected_density_variance(REPLACE, t, h)
        assert rep.mean_steps == t and rep.var_steps == 0
        assert rep.blur_variance == pytest.approx(t * h * h, rel=1e-15)
        for workflow in POOLED:
            acc = expected_density_variance(workflow, t, h)
            harmonic = sympy.harmonic(t)
            assert sympy.Rational(acc.mean_steps.numerator, acc.mean_steps.denominator) == harmonic
            assert sympy.Rational(acc.var_steps.numerator, acc.var_steps.denominator) == \
                harmonic - sympy.harmonic(t, 2)
            # Euler-Maclaurin: H_t = log t + gamma + 1/(2t) - 1/(12 t^2) + eps, 0 < eps < 1/(120 t^4)
            eps = acc.blur_variance / (h * h) - (math.log(t) + gamma + 1 / (2 * t) - 1 / (12 * t * t))
            assert -1e-12 < eps < 1 / (120 * t**4) + 1e-12
            if t >= 10:  # the gap to the leading form is h^2 (1/(2t) + O(t^-2))
                assert acc.blur_variance - acc.asymptotic_blur_variance == \
                    pytest.approx(h * h / (2 * t), rel=1 / (5 * t))
    # Linear versus logarithmic: at t = 1000 the blur variances differ by two orders of magnitude.
    assert expected_density_variance(REPLACE, 1000, h).blur_variance > \
        100 * expected_density_variance(ACCUMULATE, 1000, h).blur_variance


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_expected_density_is_truth_plus_blur(workflow):
    truth, h, t = blobs_truth(), 0.7, 6
    blurred = expected_density(workflow, t, h, truth)
    w0, m0, s0 = truth.arrays()
    w, m, s = blurred.arrays()
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(w @ m, w0 @ m0, atol=1e-12)
    second = w @ (m**2) + w @ s**2  # per-coordinate second moments
    second0 = w0 @ (m0**2) + w0 @ s0**2
    # A point drawn from model t has made t kernel steps (replace) or H_t on average
    # (pooled: the mean of the Stirling lineage law), each adding h^2 per coordinate.
    steps = t if workflow == REPLACE else float(sympy.harmonic(t))
    np.testing.assert_allclose(second - second0, steps * h * h, rtol=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_replace_long_run_limit(dim):
    n, h, T, sigma0 = 5, 0.5, 300, 1.0
    truth = gaussian_truth(dim, sigma0)
    mise = np.array(expected_mise(REPLACE, n=n, bandwidth=h, iterations=T, truth=truth))
    # References written out here.  Under replace two distinct points of D_t have
    # parents in the same batch of n points: they coincide j generations back with
    # probability (1/n)(1-1/n)^(j-1), and are then 2j kernel steps apart, so
    # E int p_hat^2 -> (4 pi h^2)^(-d/2) [1/n + (1-1/n) sum_j (1/n)(1-1/n)^(j-1) (j+1)^(-d/2)]
    # (the rest, (1-1/n)^(t-1) ~ 1e-29 at t = 300, is negligible).  A point of D_t made
    # t - 1 steps, so E int p_hat p0 = Omega(t h^2) with the Gaussian overlap
    # Omega(v) = (2 pi (2 sigma0^2 + v))^(-d/2), and int p0^2 = Omega(0).
    q = 1 - 1 / n
    j = np.arange(1, 5000)
    square = (4 * math.pi * h * h) ** (-dim / 2) * (1 / n + q * np.sum(q ** (j - 1.0) / n
                                                                       * (j + 1.0) ** (-dim / 2)))

    def omega(v):
        return (2 * math.pi * (2 * sigma0**2 + v)) ** (-dim / 2)

    assert mise[-1] == pytest.approx(square - 2 * omega(T * h * h) + omega(0.0), rel=1e-12)
    assert replace_stationary_square(n=n, bandwidth=h, dim=dim) == pytest.approx(square, rel=1e-13)
    assert replace_mise_limit(n=n, bandwidth=h, truth=truth) == \
        pytest.approx(square + omega(0.0), rel=1e-13)
    assert truth_overlap(truth, [0.0, T * h * h]) == pytest.approx([omega(0.0), omega(T * h * h)],
                                                                   rel=1e-13)
    # The collapsed model is worse than the zero function, whose ISE is int p0^2.
    assert np.all(np.diff(mise) > 0) and mise[-1] > omega(0.0)


def test_bad_input_is_rejected_with_the_parameter_named():
    truth = gaussian_truth(1)
    with pytest.raises(ValueError, match="workflow"):
        lineage_law("resample", 3)
    with pytest.raises(ValueError, match="t must"):
        lineage_law(REPLACE, 0)
    with pytest.raises(ValueError, match="n must"):
        pair_law(ACCUMULATE, 1, 3)
    with pytest.raises(ValueError, match="bandwidth"):
        expected_mise(REPLACE, n=10, bandwidth=0.0, iterations=3, truth=truth)
    with pytest.raises(ValueError, match="bandwidth"):
        expected_mise(REPLACE, n=10, bandwidth=-1.0, iterations=3, truth=truth)
    with pytest.raises(ValueError, match="iterations"):
        expected_mise(REPLACE, n=10, bandwidth=0.5, iterations=0, truth=truth)
    with pytest.raises(ValueError, match="dim"):
        symbolic_mise(REPLACE, 2, dim=0)
