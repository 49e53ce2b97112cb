"""Exact KDE genealogy and expected MISE for every workflow rule (analysis.kde_rules).

Checks, none of which copies an expected value from the code under test:

* the paper's three workflows give exactly the laws of analysis.kde_lineage /
  analysis.kde_pairs and the MISE of analysis.kde to 1e-12 (regression against a
  separate implementation); accumulate's lineage law is sympy's Stirling numbers;
* exact enumeration written here: every subsample of every pool and every parent
  choice of every synthetic point, with its probability, for tiny n and t, gives the
  pair law, the data-point law and the drawn-point law as Fractions, which must equal
  the dynamic programme's exactly;
* textbook laws: with one synthetic batch and a real batch in every training set the
  steps of a data point are geometric;
* brute-force Monte Carlo of the literal KDE loop (positions, parents, subsamples) with
  the integrated squared error computed per replicate, a z-test at a stated false-alarm
  rate, a power requirement and a theory x 1.05 negative control;
* the float programme equals the exact one; window and all paths agree where they must.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy
from scipy import stats

from collapse.analysis.errors import CollapseError
from collapse.analysis.kde import expected_mise
from collapse.analysis.kde_lineage import data_point_law, lineage_law
from collapse.analysis.kde_pairs import pair_law
from collapse.analysis.kde_rules import (
    kde_rule_theory,
    rule_data_point_law,
    rule_expected_mise,
    rule_genealogy,
    rule_lineage_law,
    rule_pair_law,
)
from collapse.analysis.truths import GaussianMixture, blobs_truth, gaussian_truth
from collapse.analysis.vocabulary import MISE, WORKFLOWS
from collapse.analysis.workflows import PRESETS, Workflow

FAMILY_ALPHA = 1e-3  # family-wise false-alarm rate of each Monte Carlo test below


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("n", (2, 3, 5))
def test_preset_laws_equal_the_paper_programme_exactly(workflow, n):
    for t in range(1, 6):
        assert rule_pair_law(PRESETS[workflow], n, t) == pair_law(workflow, n, t)
        assert rule_lineage_law(PRESETS[workflow], n, t) == lineage_law(workflow, t)
        assert rule_data_point_law(PRESETS[workflow], n, t) == data_point_law(workflow, t)


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("truth", [gaussian_truth(1), gaussian_truth(3, 0.7), blobs_truth()],
                         ids=["gauss1", "gauss3", "blobs"])
def test_preset_mise_equals_the_paper_programme(workflow, truth):
    for n, h in ((10, 0.5), (3, 1.0)):
        ours = np.array(rule_expected_mise(workflow, n=n, bandwidth=h, iterations=60,
                                           truth=truth))
        theirs = np.array(expected_mise(workflow, n=n, bandwidth=h, iterations=60,
                                        truth=truth))
        assert np.max(np.abs(ours - theirs) / np.abs(theirs)) < 1e-12


def test_accumulate_lineage_is_stirling():
    from sympy.functions.combinatorial.numbers import stirling

    for t in range(1, 9):
        law = rule_lineage_law("accumulate", 4, t)
        expected = {k: Fraction(int(stirling(t, k, kind=1, signed=False)), math.factorial(t))
                    for k in range(1, t + 1)}
        assert law == expected
        mean = sum(k * p for k, p in law.items())
        assert mean == sum(Fraction(1, i) for i in range(1, t + 1))  # E K = H_t


# --------------------------------------------------------------------------- enumeration


def _pool_batches(rule: Workflow, t: int) -> tuple[list, list]:
    """Names of the real and synthetic batches that model t's pool holds (literal rule)."""
    if t == 1:
        return [("R", 0)], []
    real = {"original": [("R", 0)], "fresh": [("F", t)], "none": []}[rule.real]
    first = 1 if rule.window is None else max(1, t - rule.window)
    return real, [("S", j) for j in range(first, t)]


def _training_sets(rule: Workflow, n: int, t: int, batches: dict):
    """Every possible D_t with its probability (whole pool, subsample or stratified)."""
    real_names, syn_names = _pool_batches(rule, t)
    real = [p for b in real_names for p in batches[b]]
    syn = [p for b in syn_names for p in batches[b]]
    if t == 1 or rule.size is None:
        yield real + syn, Fraction(1)
        return
    m = n if rule.size == "n" else rule.size
    if rule.real_fraction is None:
        subsets = list(itertools.combinations(real + syn, m))
        for subset in subsets:
            yield list(subset), Fraction(1, len(subsets))
        return
    m_r = math.floor(rule.real_fraction * m + 0.5)
    real_subsets = list(itertools.combinations(real, m_r))
    syn_subsets = list(itertools.combinations(syn, m - m_r))
    for r in real_subsets:
        for s in syn_subsets:
            yield list(r) + list(s), Fraction(1, len(real_subsets) * len(syn_subsets))


def _ancestry(point, parent: dict) -> list:
    chain = [point]
    while parent.get(chain[-1]) is not None:
        chain.append(parent[chain[-1]])
    return chain


def _pair_key(a, b, parent: dict) -> tuple[bool, int]:
    chain_a, chain_b = _ancestry(a, parent), _ancestry(b, parent)
    depth_a = {p: i for i, p in enumerate(chain_a)}
    for j, p in enumerate(chain_b):
        if p in depth_a:
            return True, depth_a[p] + j
    return False, len(chain_a) - 1 + len(chain_b) - 1


def enumerate_laws(rule: Workflow, n: int, t_final: int):
    """Exact (pair law, data-point law, drawn-point law) of model t_final by enumeration."""
    pairs: dict = {}
    data: dict = {}
    drawn: dict = {}
    batches = {("R", 0): [("R", 0, i) for i in range(n)]}
    parent: dict = {p: None for p in batches[("R", 0)]}

    def add(target, key, p):
        target[key] = target.get(key, Fraction(0)) + p

    def visit(t: int, prob: Fraction) -> None:
        if rule.real == "fresh" and t >= 2:
            batches[("F", t)] = [("F", t, i) for i in range(n)]
            parent.update({p: None for p in batches[("F", t)]})
        for training, p_set in _training_sets(rule, n, t, batches):
            weight = prob * p_set
            if t == t_final:
                m = len(training)
                for a, b in itertools.combinations(training, 2):
                    add(pairs, _pair_key(a, b, parent), weight / (m * (m - 1) // 2))
                for a in training:
                    k = len(_ancestry(a, parent)) - 1
                    add(data, k, weight / m)
                    add(drawn, k + 1, weight / m)  # a drawn point's parent is uniform in D_t
                continue
            new = [("S", t, i) for i in range(n)]
            batches[("S", t)] = new
            for choice in itertools.product(training, repeat=n):
                parent.update(zip(new, choice))
                visit(t + 1, weight / len(training) ** n)
            for p in new:
                del parent[p]
            del batches[("S", t)]
        if rule.real == "fresh" and t >= 2:
            for p in batches.pop(("F", t)):
                del parent[p]

    visit(1, Fraction(1))
    return pairs, data, drawn


ENUMERATED = [
    ("fresh", 2, 3),
    ("real=original,synthetic=latest", 3, 2),
    ("real=original,synthetic=window:2", 2, 4),
    ("real=none,synthetic=window:2", 2, 4),
    ("real=fresh,synthetic=all", 2, 3),
    ("real=fresh,synthetic=window:2", 2, 4),
    ("accumulate-subsample", 2, 3),
    ("real=original,synthetic=all,size=3", 2, 3),
    ("real=none,synthetic=window:2,size=2", 2, 4),
    ("real=original,synthetic=all,size=2,real-fraction=0.5", 2, 3),
    ("real=original,synthetic=window:2,size=2,real-fraction=0.5", 2, 4),
    pytest.param("real=original,synthetic=window:2,size=3,real-fraction=0.3", 2, 4,
                 marks=pytest.mark.slow),
    ("real=fresh,synthetic=latest,size=3,real-fraction=0.6", 2, 3),
    ("real=original,synthetic=latest,size=4,real-fraction=0.5", 3, 2),
    pytest.param("real=original,synthetic=latest,size=4,real-fraction=0.5", 3, 3,
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("spec, n, t", ENUMERATED)
def test_laws_equal_exact_enumeration(spec, n, t):
    rule = Workflow.parse(spec)
    pairs, data, drawn = enumerate_laws(rule, n, t)
    assert sum(pairs.values()) == 1 and sum(data.values()) == 1
    assert rule_pair_law(rule, n, t) == dict(sorted(pairs.items()))
    assert rule_data_point_law(rule, n, t) == dict(sorted(data.items()))
    assert rule_lineage_law(rule, n, t) == dict(sorted(drawn.items()))


def test_single_point_training_sets():
    rule = Workflow.parse("real=original,synthetic=all,size=1")
    _, data, drawn = enumerate_laws(rule, 2, 3)
    assert rule_data_point_law(rule, 2, 3) == dict(sorted(data.items()))
    assert rule_lineage_law(rule, 2, 3) == dict(sorted(drawn.items()))
    with pytest.raises(CollapseError, match="size"):
        rule_pair_law(rule, 2, 3)
    mise = rule_expected_mise(rule, n=2, bandwidth=0.5, iterations=6, truth=gaussian_truth(1))
    assert all(math.isfinite(v) and v > 0 for v in mise)


STRATIFIED_LATEST = "real=original,synthetic=latest,size=5,real-fraction=0.4"


@pytest.mark.parametrize("spec, p_real", [("fresh", Fraction(1, 2)),
                                          ("real=original,synthetic=latest", Fraction(1, 2)),
                                          (STRATIFIED_LATEST, Fraction(2, 5))])
def test_one_synthetic_batch_gives_geometric_steps(spec, p_real):
    # D_t = real part + S_{t-1}: a data point is real with probability p, otherwise it is
    # one step below a data point of D_{t-1}: P(K_D = k) = p (1-p)^k for k < t-1 and the
    # rest, (1-p)^(t-1), at k = t-1 (a chain back to D_1, all real).
    t = 7
    expected = {k: p_real * (1 - p_real) ** k for k in range(t - 1)}
    expected[t - 1] = (1 - p_real) ** (t - 1)
    assert rule_data_point_law(spec, 5, t) == expected


# --------------------------------------------------------------------------- consistency


@pytest.mark.parametrize("spec", ["real=original,synthetic=window:3",
                                  "real=fresh,synthetic=window:2,size=5,real-fraction=0.3",
                                  "real=none,synthetic=all,size=n", "fresh"])
def test_float_programme_equals_exact(spec):
    exact = rule_genealogy(spec, 4, 9, exact=True)
    fast = rule_genealogy(spec, 4, 9)
    for name in ("drawn", "data_point", "distinct", "coalesced"):
        e = np.array(getattr(exact, name), dtype=float)
        assert np.max(np.abs(e - getattr(fast, name))) < 1e-14
    assert exact.sizes == fast.sizes


def test_window_ring_equals_all_before_the_window_fills():
    for real in ("original", "fresh", "none"):
        for size in (None, 4):
            ring = rule_genealogy(Workflow(real=real, window=5, size=size), 4, 12)
            full = rule_genealogy(Workflow(real=real, size=size), 4, 6)
            for name in ("drawn", "data_point", "distinct", "coalesced"):
                a, b = getattr(ring, name)[:6], getattr(full, name)
                width = min(a.shape[1], b.shape[1])
                assert np.max(np.abs(a[:, :width] - b[:, :width])) < 1e-15
                assert not a[:, width:].any() and not b[:, width:].any()


def test_fresh_mise_stays_bounded_while_replace_grows():
    truth = gaussian_truth(2)
    fresh = rule_expected_mise("fresh", n=20, bandwidth=0.4, iterations=200, truth=truth)
    replace = rule_expected_mise("replace", n=20, bandwidth=0.4, iterations=200, truth=truth)
    assert max(fresh) < 1.5 * fresh[0] < replace[-1]
    assert abs(fresh[-1] - fresh[-2]) < 1e-12  # converged (geometric memory)


def test_theory_adapter_and_errors():
    values, notes = kde_rule_theory("real=original,synthetic=window:2", n=5, bandwidth=0.5,
                                    iterations=4, truth=blobs_truth())
    assert set(values) == {MISE} and len(values[MISE]) == 4 and len(notes) == 3
    with pytest.raises(CollapseError, match="size"):
        rule_expected_mise("real=none,synthetic=latest,size=6", n=5, bandwidth=0.5,
                           iterations=3, truth=gaussian_truth(1))
    with pytest.raises(CollapseError, match="bandwidth"):
        rule_expected_mise("fresh", n=5, bandwidth=0.0, iterations=3, truth=gaussian_truth(1))
    with pytest.raises(CollapseError, match="n must be"):
        rule_expected_mise("fresh", n=1, bandwidth=0.5, iterations=3, truth=gaussian_truth(1))
    with pytest.raises(CollapseError, match="truth"):
        rule_expected_mise("fresh", n=5, bandwidth=0.5, iterations=3, truth="gaussian")


# --------------------------------------------------------------------------- Monte Carlo


def _subsample(points: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    order = np.argsort(rng.random(points.shape[:2]), axis=1)[:, :size]
    return np.take_along_axis(points, order[:, :, None], axis=1)


def _ise(train: np.ndarray, h: float, truth: GaussianMixture) -> np.ndarray:
    """Integrated squared error of each replicate's KDE, by Gaussian overlaps."""
    d = truth.dim
    m = train.shape[1]
    diff2 = ((train[:, :, None, :] - train[:, None, :, :]) ** 2).sum(-1)
    square = ((4 * np.pi * h * h) ** (-d / 2) * np.exp(-diff2 / (4 * h * h))).sum((1, 2)) / m**2
    cross = np.zeros(train.shape[0])
    truth_square = 0.0
    for w, mu, s in zip(truth.weights, truth.means, truth.scales):
        v = h * h + s * s
        dist2 = ((train - np.asarray(mu)) ** 2).sum(-1)
        cross += w * ((2 * np.pi * v) ** (-d / 2) * np.exp(-dist2 / (2 * v))).sum(1) / m
        for w2, mu2, s2 in zip(truth.weights, truth.means, truth.scales):
            v2 = s * s + s2 * s2
            gap = float(((np.asarray(mu) - np.asarray(mu2)) ** 2).sum())
            truth_square += w * w2 * (2 * np.pi * v2) ** (-d / 2) * math.exp(-gap / (2 * v2))
    return square - 2 * cross + truth_square


def brute_force_ise(rule: Workflow, n: int, h: float, truth: GaussianMixture, iterations: int,
                    replicates: int, seed: int) -> np.ndarray:
    """Literal KDE loop (truth = one isotropic Gaussian here): ISE per model and replicate."""
    rng = np.random.default_rng(seed)
    (mu,), (s,) = truth.means, truth.scales
    d = truth.dim

    def real_batch():
        return np.asarray(mu) + s * rng.standard_normal((replicates, n, d))

    real0 = real_batch()
    synthetic: list[np.ndarray] = []
    out = np.empty((iterations, replicates))
    for t in range(1, iterations + 1):
        if t == 1:
            train = real0
        else:
            real_part = {"original": real0, "fresh": None, "none": None}[rule.real]
            if rule.real == "fresh":
                real_part = real_batch()
            kept = synthetic if rule.window is None else synthetic[-rule.window:]
            syn_part = np.concatenate(kept, axis=1)
            m = None if rule.size is None else (n if rule.size == "n" else rule.size)
            pool = syn_part if real_part is None else np.concatenate([real_part, syn_part], 1)
            if m is None:
                train = pool
            elif rule.real_fraction is None:
                train = _subsample(pool, m, rng)
            else:
                m_r = math.floor(rule.real_fraction * m + 0.5)
                pieces = [_subsample(syn_part, m - m_r, rng)]
                if m_r:
                    pieces.insert(0, _subsample(real_part, m_r, rng))
                train = np.concatenate(pieces, axis=1)
        out[t - 1] = _ise(train, h, truth)
        parents = rng.integers(0, train.shape[1], size=(replicates, n))
        picked = np.take_along_axis(train, parents[:, :, None], axis=1)
        synthetic.append(picked + h * rng.standard_normal((replicates, n, d)))
    return out


MC_CASES = [
    # (spec, n, h, truth, iterations, replicates)
    ("real=original,synthetic=window:2,size=10,real-fraction=0.3", 8, 0.6, gaussian_truth(1),
     5, 30_000),
    ("fresh", 6, 0.5, gaussian_truth(2, 1.3), 5, 30_000),
    ("real=none,synthetic=window:2,size=3", 4, 0.4, gaussian_truth(1), 6, 30_000),
]


@pytest.mark.parametrize("spec, n, h, truth, iterations, replicates", MC_CASES)
def test_mise_against_brute_force_with_negative_control(spec, n, h, truth, iterations,
                                                        replicates):
    rule = Workflow.parse(spec)
    ise = brute_force_ise(rule, n, h, truth, iterations, replicates, seed=11)
    theory = np.array(rule_expected_mise(rule, n=n, bandwidth=h, iterations=iterations,
                                         truth=truth))
    # Bonferroni over `iterations` two-sided z-tests: family-wise false-alarm rate
    # FAMILY_ALPHA.  Power: a theory 5% off shifts z by 0.05 theta sqrt(R)/sd; we require
    # z* + 2.33 (power >= 99% per check).  The ISE has sd/theta below 0.3 in these cases, so
    # R = 30 000 gives shifts of 9.5 or more against z* + 2.33 = 6.1 (asserted below, from
    # the observed sd, not assumed).
    z_star = stats.norm.isf(FAMILY_ALPHA / (2 * iterations))
    mean = ise.mean(axis=1)
    se = ise.std(axis=1, ddof=1) / math.sqrt(replicates)
    assert np.all(np.abs(mean - theory) / se < z_star), (mean, theory, se)
    assert np.all(0.05 * theory / se >= z_star + 2.33), 0.05 * theory / se
    assert np.all(np.abs(mean - 1.05 * theory) / se > z_star)


def test_symbolic_stirling_row_identity():
    # Independent of the code: the rising factorial's coefficients are the Stirling row.
    z = sympy.Symbol("z")
    poly = sympy.Poly(sympy.expand(sympy.rf(z, 6)), z)
    law = rule_lineage_law("accumulate", 3, 6)
    assert [Fraction(int(c), 720) for c in reversed(poly.all_coeffs())][1:] == \
        [law.get(k, Fraction(0)) for k in range(1, 7)]
