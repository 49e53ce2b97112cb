"""Discrete setting: exact theory (analysis.discrete) and the engine (simulate.discrete).

No expected value below is copied from the code under test.  They come from:

* closed forms written out here (Wright-Fisher ``(1 - 1/n)^t``, the accumulate product,
  Kimura's formula, ``sin(pi x)/(pi x)``);
* brute-force enumeration, in exact rationals, of every history of the literal
  algorithm for small ``K`` and ``n`` (every batch's count vector, every subset);
* the unlumped chain of full count vectors for the collapse time;
* a plain per-replicate loop of the reference algorithm (points drawn with
  ``Generator.choice``, subsets by index), written in this file.

Monte Carlo checks use fixed seeds and a Bonferroni z-test with family-wise false-alarm
rate ``FAMILY_ALPHA``; each check asserts its power against a 5% error of the theory,
``Phi(0.05 |theory| / se - z_crit) >= 0.99`` from the sample's own standard error, and
a negative control (the theory scaled by 1.05) must be rejected by the same test.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import cache

import mpmath
import numpy as np
import pytest
import sympy as sp
from mc_checks import FAMILY_ALPHA, check_agreement, z_critical
from scipy import stats

import collapse
from collapse.analysis.discrete import (
    category_chain,
    check_truth,
    collapse_time,
    discrete_theory,
    gini_ratios,
    metric_maxima,
)
from collapse.analysis.discrete_symbolic import H0, discrete_formula, discrete_limit
from collapse.analysis.discrete_symbolic import n as N_SYM
from collapse.analysis.discrete_symbolic import t as T_SYM
from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import (
    COLLAPSED,
    DISCRETE,
    DISCRETE_METRICS,
    DISCRETE_TRUTHS,
    ENTROPY,
    GINI_DIVERSITY,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
)
from collapse.analysis.workflows import Workflow
from collapse.simulate.discrete import (
    MAX_BLOCK,
    inverse_cdf_counts,
    multivariate_hypergeometric,
    simulate_discrete,
    urn_subset,
    working_set,
)


def w(spec: str) -> Workflow:
    return Workflow.parse(spec)


# --------------------------------------------------------------------------- statistics


# --------------------------------------------------------------------------- brute force


def compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in compositions(total - first, parts - 1):
            yield (first, *rest)


@cache
def multinomial(counts: tuple[int, ...], probs: tuple[Fraction, ...]) -> Fraction:
    out = Fraction(math.factorial(sum(counts)))
    for c, p in zip(counts, probs):
        out = out / math.factorial(c) * p**c
    return out


@cache
def subsets(pool: tuple[int, ...], m: int) -> tuple[tuple[tuple[int, ...], Fraction], ...]:
    """Every ``m``-subset's category counts and probability (multivariate hypergeometric)."""
    out = []
    for s in compositions(m, len(pool)):
        if all(a <= b for a, b in zip(s, pool)):
            weight = Fraction(1)
            for a, b in zip(s, pool):
                weight *= math.comb(b, a)
            out.append((s, weight / math.comb(sum(pool), m)))
    return tuple(out)


def plus(a, b):
    return tuple(x + y for x, y in zip(a, b))


def brute_force(rule: Workflow, n: int, p0: tuple[Fraction, ...], T: int) -> dict:
    """Exact expected metrics by enumerating every history of the literal algorithm."""
    K = len(p0)
    sums = {name: [Fraction(0)] * T for name in (GINI_DIVERSITY, SURVIVING_CATEGORIES,
                                                 COLLAPSED)}
    entropy = [0.0] * T

    def record(t, model, size, prob):
        f = [Fraction(c, size) for c in model]
        alive = sum(1 for x in f if x > 0)
        sums[GINI_DIVERSITY][t - 1] += prob * (1 - sum(x * x for x in f))
        sums[SURVIVING_CATEGORIES][t - 1] += prob * alive
        sums[COLLAPSED][t - 1] += prob * (alive == 1)
        entropy[t - 1] += float(prob) * -sum(float(x) * math.log(x) for x in f if x > 0)

    def models(t, real, fresh, synthetic):
        if t == 1:
            yield real, n, Fraction(1)
            return
        kept = [synthetic[j - 1] for j in rule.synthetic_batches(t)]
        syn = tuple(sum(b[i] for b in kept) for i in range(K))
        real_part = {"original": real, "fresh": fresh, "none": None}[rule.real]
        pool = syn if real_part is None else plus(real_part, syn)
        m = rule.subsample_size(n)
        if m is None:
            yield pool, sum(pool), Fraction(1)
        elif rule.real_fraction is None:
            for s, weight in subsets(pool, m):
                yield s, m, weight
        else:
            m_real, m_synth = rule.stratified_counts(n)
            reals = [((0,) * K, Fraction(1))] if real_part is None else subsets(real_part,
                                                                                 m_real)
            for a, wa in reals:
                for b, wb in subsets(syn, m_synth):
                    yield plus(a, b), m, wa * wb

    def step(t, real, synthetic, prob):
        fresh_options = [(None, Fraction(1))]
        if rule.real == "fresh" and t >= 2:
            fresh_options = [(c, multinomial(c, p0)) for c in compositions(n, K)]
        for fresh, wf in fresh_options:
            for model, size, weight in models(t, real, fresh, synthetic):
                pr = prob * wf * weight
                if pr == 0:
                    continue
                record(t, model, size, pr)
                if t < T:
                    probs = tuple(Fraction(c, size) for c in model)
                    for batch in compositions(n, K):
                        pb = multinomial(batch, probs)
                        if pb:
                            step(t + 1, real, [*synthetic, batch], pr * pb)

    for real in compositions(n, K):
        if multinomial(real, p0):
            step(1, real, [], multinomial(real, p0))
    out = {name: [float(v) for v in values] for name, values in sums.items()}
    out[ENTROPY] = entropy
    return out


P0 = (Fraction(1, 2), Fraction(1, 3), Fraction(1, 6))
BRUTE_CASES = [  # (rule, n, T)
    ("replace", 3, 4), ("accumulate", 3, 4), ("real=original,synthetic=latest", 3, 4),
    ("real=none,synthetic=all", 3, 4), ("real=original,synthetic=window:2", 3, 4),
    ("accumulate-subsample", 3, 3), ("real=original,synthetic=latest,size=3", 3, 3),
    ("real=none,synthetic=latest,size=2", 3, 3),
    ("real=original,synthetic=all,size=3,real-fraction=0.34", 3, 3),
    ("fresh", 2, 3), ("real=fresh,synthetic=all,size=3", 2, 3),
    ("real=fresh,synthetic=latest,size=3,real-fraction=0.5", 2, 3),
]


@pytest.mark.parametrize("spec, n, T", BRUTE_CASES)
def test_theory_equals_brute_force_enumeration(spec, n, T):
    rule = w(spec)
    exact = brute_force(rule, n, P0, T)
    values, _notes = discrete_theory(rule, categories=3, n=n, truth=[float(p) for p in P0],
                                    iterations=T)
    assert GINI_DIVERSITY in values
    if rule.window in (None, 1):
        assert ENTROPY in values and SURVIVING_CATEGORIES in values
    for name, got in values.items():
        assert got == pytest.approx(exact[name], abs=1e-12), name
    assert TV_DISTANCE not in values


def test_gini_ratios_are_exact_rationals():
    # replace, t = 2 by hand: (1 - 1/n)^2; accumulate: (1 - 1/n)(1 - 1/(4n))
    assert gini_ratios(w("replace"), 5, 2) == [Fraction(4, 5), Fraction(16, 25)]
    assert gini_ratios(w("accumulate"), 5, 2) == [Fraction(4, 5), Fraction(4, 5) * Fraction(19, 20)]


def test_gini_closed_forms_to_1e12_for_a_thousand_iterations():
    K, n, T = 10, 10, 1000
    h0 = 1 - 1 / K
    replace = discrete_theory("replace", categories=K, n=n, truth="uniform",
                              iterations=T)[0][GINI_DIVERSITY]
    accumulate = discrete_theory("accumulate", categories=K, n=n, truth="uniform",
                                 iterations=T)[0][GINI_DIVERSITY]
    product = Fraction(1)
    for t in range(1, T + 1):
        product *= 1 - Fraction(1, n * t * t)
        # abs=0: pytest's default absolute tolerance 1e-12 would accept any value below it
        # (replace reaches 1e-46 here, where 50-digit arithmetic once kept no digit)
        assert replace[t - 1] == pytest.approx(h0 * (1 - 1 / n) ** t, rel=1e-12, abs=0)
        assert accumulate[t - 1] == pytest.approx(h0 * float(product), rel=1e-12, abs=0)


def test_sympy_forms_and_the_sine_limit():
    assert sp.simplify(discrete_formula(GINI_DIVERSITY, "replace")
                       - H0 * (1 - 1 / N_SYM) ** T_SYM) == 0
    accumulate = discrete_formula(GINI_DIVERSITY, "accumulate")
    for t in (1, 2, 5, 20):
        expected = math.prod(1 - 1 / (10 * s * s) for s in range(1, t + 1))
        assert float(accumulate.subs({T_SYM: t, N_SYM: 10, H0: 1})) == pytest.approx(
            expected, rel=1e-12)
    x = 1 / sp.sqrt(N_SYM)
    limit = discrete_limit(GINI_DIVERSITY, "accumulate")
    assert sp.simplify(limit - H0 * sp.sin(sp.pi * x) / (sp.pi * x)) == 0
    x10 = math.pi / math.sqrt(10)
    assert float(limit.subs({N_SYM: 10, H0: 1})) == pytest.approx(math.sin(x10) / x10,
                                                                   rel=1e-14)
    assert round(math.sin(x10) / x10, 3) == 0.843
    assert discrete_limit(GINI_DIVERSITY, "replace") == 0
    # the exact sequence approaches it from above: 0 <= r_t - L <= r_t/(n t)
    with mpmath.workdps(40):
        ratios = gini_ratios(w("accumulate"), 10, 3000, one=mpmath.mpf(1))
    value = math.sin(math.pi / math.sqrt(10)) / (math.pi / math.sqrt(10))
    for t in (10, 100, 3000):
        r = float(ratios[t - 1])
        assert 0 <= r - value <= r / (10 * t)


@pytest.mark.parametrize("spec", ["replace", "accumulate", "fresh",
                                  "real=original,synthetic=latest", "real=none,synthetic=all"])
def test_sympy_limits_are_where_the_exact_sequence_goes(spec):
    limit = float(discrete_limit(GINI_DIVERSITY, spec).subs({N_SYM: 10, H0: 1}))
    ratios = gini_ratios(w(spec), 10, 4000, one=1.0)
    assert ratios[-1] == pytest.approx(limit, abs=1e-4)


@pytest.mark.parametrize("spec", ["fresh", "real=original,synthetic=latest",
                                  "real=none,synthetic=all", "real=fresh,synthetic=all"])
def test_sympy_forms_of_the_other_rules_equal_the_exact_ratios(spec):
    formula = discrete_formula(GINI_DIVERSITY, spec)
    ratios = gini_ratios(w(spec), 7, 8)
    for t in range(1, 9):
        value = formula.subs({T_SYM: t, N_SYM: 7, H0: 1}).doit().evalf(30)
        assert float(value) == pytest.approx(float(ratios[t - 1]), rel=1e-12)


def test_category_chain_is_a_binomial_chain_under_replace():
    # two steps of Bin(n, .) from p: P(k) = sum_j Bin(j; n, p) Bin(k; n, j/n)
    n, p = 4, 0.3
    first = stats.binom.pmf(np.arange(n + 1), n, p)
    second = sum(first[j] * stats.binom.pmf(np.arange(n + 1), n, j / n) for j in range(n + 1))
    chain = category_chain(w("replace"), n, p, 2)
    assert np.allclose(chain[0][1], first, atol=1e-14)
    assert np.allclose(chain[1][1], second, atol=1e-14)


def test_windows_of_several_batches_are_monte_carlo_only_for_entropy():
    values, notes = discrete_theory("real=original,synthetic=window:3", categories=4, n=5,
                                    truth="zipf", iterations=4)
    assert GINI_DIVERSITY in values and ENTROPY not in values
    assert any("Monte Carlo only" in note for note in notes)


# --------------------------------------------------------------------------- collapse


def full_chain_collapse_time(n: int, p0: list[float]) -> float:
    """E T from the chain of full count vectors (no lumping), by a linear solve."""
    states = list(compositions(n, len(p0)))
    index = {s: i for i, s in enumerate(states)}
    P = np.zeros((len(states), len(states)))
    for s in states:
        for c in states:
            P[index[s], index[c]] = stats.multinomial.pmf(c, n, np.array(s) / n)
    collapsed = [i for i, s in enumerate(states) if sum(1 for v in s if v) == 1]
    alive = [i for i in range(len(states)) if i not in collapsed]
    Q = P[np.ix_(alive, alive)]
    tau = np.linalg.solve(np.eye(len(alive)) - Q, np.ones(len(alive)))
    first = np.array([stats.multinomial.pmf(states[i], n, p0) for i in alive])
    return 1.0 + float(first @ tau)


@pytest.mark.parametrize("n, p0", [(2, [0.5, 0.5]), (6, [0.7, 0.3]), (4, [0.25] * 4),
                                   (4, [0.4, 0.3, 0.2, 0.1]), (3, [0.5, 0.5, 0.0])])
def test_collapse_time_equals_the_unlumped_chain(n, p0):
    result = collapse_time(categories=len(p0), n=n, truth=p0)
    assert result.exact == pytest.approx(full_chain_collapse_time(n, p0), rel=1e-10)
    kimura = -2 * n * sum((1 - p) * math.log(1 - p) for p in p0 if 0 < p < 1)
    assert result.kimura == pytest.approx(kimura, rel=1e-14)


def test_collapse_time_two_points_by_hand_and_kimura_for_ten_categories():
    # n = 2, K = 2 uniform: P(T = 1) = 1/2 and each later step collapses with 1/2
    assert collapse_time(categories=2, n=2, truth="uniform").exact == pytest.approx(2.0)
    big = collapse_time(categories=10, n=10**4, truth="uniform")
    assert big.exact is None and big.kimura == pytest.approx(1.896e4, rel=1e-3)
    assert any("Monte Carlo" in note for note in big.notes)


def test_collapse_is_sum_p_to_the_n_when_the_real_sample_is_kept():
    p0 = [0.6, 0.3, 0.1]
    values = discrete_theory("accumulate", categories=3, n=4, truth=p0, iterations=5)[0]
    assert values[COLLAPSED] == pytest.approx([sum(p**4 for p in p0)] * 5, rel=1e-12)


def test_simulated_collapse_time_at_ten_categories():
    # the reference runs (replace until entropy < 1e-8, K = 10, uniform, n = 10) report
    # about 17 iterations; E T = 1 + sum_t (1 - P(collapsed at t))
    out = simulate_discrete("replace", categories=10, n=10, truth="uniform", iterations=250,
                            replicates=20000, seed=12)[COLLAPSED]
    assert out[:, -1].all()  # every replicate has collapsed, so the sum is complete
    per_replicate = 1.0 + (1.0 - out).sum(axis=1)
    assert abs(per_replicate.mean() / 17 - 1) < 0.15
    exact = collapse_time(categories=10, n=10, truth="uniform").exact
    cells = [("E T", per_replicate, exact)]
    check_agreement(cells)


@pytest.mark.slow
def test_simulated_collapse_time_against_kimura_at_larger_n():
    for n, reference in ((100, 200), (1000, 1800)):
        out = simulate_discrete("replace", categories=10, n=n, truth="uniform",
                                iterations=20 * n, replicates=400, seed=2)[COLLAPSED]
        assert out[:, -1].all()
        mean = 1.0 + (1.0 - out).sum(axis=1).mean()
        assert abs(mean / reference - 1) < 0.15
        kimura = collapse_time(categories=10, n=n, truth="uniform").kimura
        assert abs(mean / kimura - 1) < 0.15


# --------------------------------------------------------------------------- Monte Carlo


# (rule, truth, iterations checked, iterations where collapse is checked).  Replace is
# checked up to t = 10 (later most replicates have collapsed and a 5% error of the small
# diversity left is beyond 20,000 runs) and its collapse where P(collapsed) is in
# (0.3, 0.9), where a 5% error of it is detectable.
MC_CASES = [
    ("replace", "uniform", (1, 3, 10), (20, 30)),
    ("accumulate", "uniform", (1, 3, 10, 30), (30,)),
    ("accumulate-subsample", "uniform", (1, 3, 10, 30), ()),
    ("fresh", "zipf", (3, 30), ()),
    ("real=original,synthetic=window:2", "zipf", (3, 30), ()),
    ("real=original,synthetic=all,size=10,real-fraction=0.3", "zipf", (3, 30), ()),
]


@pytest.mark.parametrize("spec, truth, times, collapse_times", MC_CASES)
def test_engine_agrees_with_the_exact_theory(spec, truth, times, collapse_times):
    K, n, T, R = 10, 10, 30, 20000
    sample = simulate_discrete(spec, categories=K, n=n, truth=truth, iterations=T,
                               replicates=R, seed=31)
    theory = discrete_theory(spec, categories=K, n=n, truth=truth, iterations=T)[0]
    cells = []
    for name, values in theory.items():
        if name == COLLAPSED and values[0] == values[-1]:
            continue  # sum p^n ~ 1e-9 at every t: checked exactly elsewhere
        for t in collapse_times if name == COLLAPSED else times:
            cells.append((f"{name} t={t}", sample[name][:, t - 1], values[t - 1]))
    check_agreement(cells)


def test_tv_distance_of_the_first_model():
    # model 1 is the real sample: E|X/n - p| with X ~ Bin(n, p), summed over categories
    p0 = check_truth("zipf", 5)
    n = 12
    k = np.arange(n + 1)
    expected = 0.5 * sum(float(stats.binom.pmf(k, n, p) @ np.abs(k / n - p)) for p in p0)
    sample = simulate_discrete("replace", categories=5, n=n, truth="zipf", iterations=1,
                               replicates=20000, seed=4)[TV_DISTANCE][:, 0]
    check_agreement([("tv t=1", sample, expected)])


def plain_loop(rule: Workflow, K: int, n: int, p0: np.ndarray, T: int, R: int, seed: int):
    """The reference algorithm on points, one replicate at a time."""
    rng = np.random.default_rng(seed)
    out = {name: np.empty((R, T)) for name in (GINI_DIVERSITY, ENTROPY, COLLAPSED)}
    for r in range(R):
        real = rng.choice(K, size=n, p=p0)
        synthetic: list[np.ndarray] = []
        for t in range(1, T + 1):
            if t == 1:
                data = real
            else:
                real_part = {"original": real, "none": np.empty(0, dtype=int),
                             "fresh": None}[rule.real]
                if real_part is None:
                    real_part = rng.choice(K, size=n, p=p0)
                synth = np.concatenate([synthetic[j - 1] for j in rule.synthetic_batches(t)])
                m = rule.subsample_size(n)
                if m is None:
                    data = np.concatenate([real_part, synth])
                elif rule.real_fraction is None:
                    pool = np.concatenate([real_part, synth])
                    data = pool[rng.choice(pool.size, size=m, replace=False)]
                else:
                    m_real, m_synth = rule.stratified_counts(n)
                    data = np.concatenate([
                        real_part[rng.choice(real_part.size, size=m_real, replace=False)],
                        synth[rng.choice(synth.size, size=m_synth, replace=False)]])
            f = np.bincount(data, minlength=K) / data.size
            out[GINI_DIVERSITY][r, t - 1] = 1 - np.sum(f * f)
            out[ENTROPY][r, t - 1] = -np.sum(f[f > 0] * np.log(f[f > 0]))
            out[COLLAPSED][r, t - 1] = np.count_nonzero(f) == 1
            synthetic.append(rng.choice(K, size=n, p=f))
    return out


def two_sample_failures(cells) -> list[str]:
    crit = z_critical(len(cells))
    bad = []
    for label, a, b in cells:
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        if se == 0:
            continue
        z = (a.mean() - b.mean()) / se
        if abs(z) > crit:
            bad.append(f"{label}: {a.mean():.5g} vs {b.mean():.5g} (z = {z:.2f})")
    return bad


def loop_cells(spec_engine: str, spec_loop: str, n: int, T: int):
    p0 = check_truth("zipf", 4)
    loop = plain_loop(w(spec_loop), 4, n, p0, T, 2000, seed=3)
    engine = simulate_discrete(spec_engine, categories=4, n=n, truth="zipf", iterations=T,
                               replicates=20000, seed=4)
    return [(f"{name} t={t}", engine[name][:, t - 1], loop[name][:, t - 1])
            for name in loop for t in (2, T)]


@pytest.mark.parametrize("spec", ["accumulate-subsample", "real=none,synthetic=all,size=4",
                                  "real=original,synthetic=window:2,size=5,real-fraction=0.4"])
def test_engine_matches_the_plain_loop(spec):
    # collapse under these rules has no exact theory: the literal loop is the reference
    assert two_sample_failures(loop_cells(spec, spec, 5, 8)) == []


def test_two_sample_check_rejects_a_different_rule():
    assert two_sample_failures(loop_cells("accumulate-subsample", "replace", 5, 8))


def exact_subset_law(pool: tuple[int, ...], m: int) -> dict[tuple[int, ...], float]:
    out = {}
    for s in compositions(m, len(pool)):
        if all(a <= b for a, b in zip(s, pool)):
            out[s] = math.prod(math.comb(b, a) for a, b in zip(s, pool)) / math.comb(
                sum(pool), m)
    return out


@pytest.mark.parametrize("method", ["urn", "hypergeometric"])
def test_subset_samplers_have_the_multivariate_hypergeometric_law(method):
    pool, m, R = (4, 1, 3, 2), 4, 40000
    law = exact_subset_law(pool, m)
    rng = np.random.default_rng(8)
    pools = np.tile(pool, (R, 1))
    if method == "urn":
        draws = urn_subset(pools, rng.random((R, m)))
    else:
        draws = multivariate_hypergeometric(rng, pools, m)
    observed = {}
    for row in map(tuple, draws.tolist()):
        observed[row] = observed.get(row, 0) + 1
    assert set(observed) <= set(law)
    keys = sorted(law)
    chi2 = stats.chisquare([observed.get(k, 0) for k in keys], [R * law[k] for k in keys])
    assert chi2.pvalue > FAMILY_ALPHA
    # negative control: draws with replacement (multinomial) are rejected by the same test
    wrong = rng.multinomial(m, np.array(pool) / sum(pool), size=R)
    counts = {}
    for row in map(tuple, wrong.tolist()):
        counts[row] = counts.get(row, 0) + 1
    outside = sum(v for k, v in counts.items() if k not in law)
    inside = [counts.get(k, 0) for k in keys]
    total = sum(inside)
    assert outside > 0 or stats.chisquare(inside, [total * law[k] for k in keys]).pvalue \
        < FAMILY_ALPHA


@pytest.mark.parametrize("counts", [(3, 0, 5, 2), (300, 0, 500, 200)])  # table, comparisons
def test_batch_sampler_has_the_multinomial_law(counts):
    draws, R = 3, 40000
    rng = np.random.default_rng(5)
    got = inverse_cdf_counts(np.tile(counts, (R, 1)), rng.random((R, draws)))
    probs = np.array(counts) / sum(counts)
    outcomes = [c for c in compositions(draws, 4) if all(probs[i] > 0 or c[i] == 0
                                                          for i in range(4))]
    observed = {}
    for row in map(tuple, got.tolist()):
        observed[row] = observed.get(row, 0) + 1
    assert set(observed) <= set(outcomes)
    expected = [R * stats.multinomial.pmf(c, draws, probs) for c in outcomes]
    assert stats.chisquare([observed.get(c, 0) for c in outcomes], expected).pvalue \
        > FAMILY_ALPHA


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("spec", ["replace", "accumulate-subsample", "fresh",
                                  "real=none,synthetic=window:2,size=3"])
def test_first_iterations_do_not_depend_on_the_run_length_or_chunks(spec):
    # three blocks (the last one partial), so that chunks of one block differ from one
    # chunk of all three; 70 iterations cross a tile boundary of the metrics
    replicates = 2 * MAX_BLOCK + 150
    args = {"categories": 3, "n": 4, "truth": "zipf", "replicates": replicates, "seed": 9}
    short = simulate_discrete(spec, iterations=5, **args)
    long = simulate_discrete(spec, iterations=70, **args)
    one_block = simulate_discrete(spec, iterations=70, chunk_size=1, **args)
    all_blocks = simulate_discrete(spec, iterations=70, chunk_size=10**6, **args)
    for name in DISCRETE_METRICS:
        assert np.array_equal(short[name], long[name][:, :5])
        assert np.array_equal(one_block[name], all_blocks[name])
        assert np.array_equal(one_block[name], long[name])


def test_absorbed_runs_are_filled_exactly():
    # n = 2, K = 2 collapses within a few steps; the filled tail equals computed values
    args = {"categories": 2, "n": 2, "truth": [0.5, 0.5], "replicates": 64, "seed": 1}
    long = simulate_discrete("replace", iterations=400, **args)
    assert long[COLLAPSED][:, -1].all()
    assert np.array_equal(long[TV_DISTANCE][:, -1], np.full(64, 0.5))
    short = simulate_discrete("replace", iterations=40, **args)
    for name in DISCRETE_METRICS:
        assert np.array_equal(short[name], long[name][:, :40])


def test_seeds_and_the_shared_first_iteration():
    args = {"categories": 4, "n": 6, "truth": "uniform", "iterations": 3, "replicates": 70}
    first = [simulate_discrete(spec, seed=5, **args)[ENTROPY][:, 0]
             for spec in ("replace", "accumulate-subsample", "fresh")]
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[0], first[2])
    assert not np.array_equal(simulate_discrete("replace", seed=6, **args)[ENTROPY],
                              simulate_discrete("replace", seed=5, **args)[ENTROPY])


@pytest.mark.parametrize("spec", ["replace", "accumulate", "accumulate-subsample", "fresh",
                                  "real=fresh,synthetic=window:3,size=7,real-fraction=0.5"])
def test_outputs_are_finite_and_in_range(spec):
    out = simulate_discrete(spec, categories=6, n=7, truth="zipf", iterations=12,
                            replicates=100, seed=0)
    for name in DISCRETE_METRICS:
        assert np.all(np.isfinite(out[name])), name
    assert np.all((out[GINI_DIVERSITY] >= 0) & (out[GINI_DIVERSITY] < 1))
    assert np.all((out[SURVIVING_CATEGORIES] >= 1) & (out[SURVIVING_CATEGORIES] <= 6))
    assert np.all(out[ENTROPY] <= math.log(6) + 1e-12)


# --------------------------------------------------------------------------- names, input


def test_vocabulary():
    assert DISCRETE == "discrete"
    assert DISCRETE_TRUTHS == ("uniform", "zipf")
    assert DISCRETE_METRICS == ("gini_diversity", "entropy", "surviving_categories",
                                "tv_distance", "collapsed")


@pytest.mark.parametrize("override, name", [
    ({"categories": 1}, "categories"), ({"n": 1}, "n"), ({"iterations": 0}, "iterations"),
    ({"truth": [0.5, 0.4, 0.05]}, "truth"), ({"truth": [1.2, -0.1, -0.1]}, "truth"),
    ({"truth": [0.5, 0.5]}, "truth"), ({"truth": [np.nan, 0.5, 0.5]}, "truth"),
    ({"truth": "benford"}, "truth"), ({"workflow": "real=original,size=9"}, "size"),
])
def test_bad_input_names_the_parameter(override, name):
    args = {"workflow": "replace", "categories": 3, "n": 4, "truth": "uniform",
            "iterations": 3}
    args.update(override)
    workflow = args.pop("workflow")
    with pytest.raises(CollapseError, match=name):
        discrete_theory(workflow, **args)
    with pytest.raises(CollapseError, match=name):
        simulate_discrete(workflow, replicates=2, seed=0, **args)


def test_truths():
    assert check_truth("uniform", 4).tolist() == [0.25] * 4
    zipf = check_truth("zipf", 3)
    assert zipf == pytest.approx(np.array([6, 3, 2]) / 11, rel=1e-15)
    assert check_truth([0.2, 0.3, 0.5 + 1e-10], 3).sum() == pytest.approx(1.0, abs=1e-15)


def test_tiny_exhaustive_consistency_of_itertools_compositions():
    # the brute force's enumerator is complete: stars and bars count
    for total, parts in itertools.product(range(5), range(1, 4)):
        assert len(list(compositions(total, parts))) == math.comb(total + parts - 1, parts - 1)


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("support, N, seen", [(3, 2, 2), (3, 5, 5), (4, 7, 3), (5, 5, 5),
                                              (2, 6, 1)])
def test_metric_maxima_are_the_largest_values_of_every_count_vector(support, N, seen):
    # brute force: every count vector of N points over `support` categories with at most
    # `seen` of them nonzero (generated points repeat the categories of real ones)
    best = {GINI_DIVERSITY: 0.0, ENTROPY: 0.0, SURVIVING_CATEGORIES: 0.0}
    for counts in compositions(N, support):
        if sum(1 for c in counts if c > 0) > seen:
            continue
        f = [c / N for c in counts]
        best[GINI_DIVERSITY] = max(best[GINI_DIVERSITY], 1 - sum(x * x for x in f))
        best[ENTROPY] = max(best[ENTROPY], -sum(x * math.log(x) for x in f if x > 0))
        best[SURVIVING_CATEGORIES] = max(best[SURVIVING_CATEGORIES],
                                         float(sum(1 for c in counts if c > 0)))
    got = metric_maxima(support, np.array([N]), np.array([seen]))
    for name, value in best.items():
        assert got[name][0] == pytest.approx(value, rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("workflow, iterations", [("replace", 3), ("accumulate", 3),
                                                  ("fresh", 4)])
def test_compare_when_every_replicate_has_all_points_distinct(workflow, iterations):
    # K = 5000 categories, n = 3: nearly every model has 3 (or, with accumulated real
    # points, all its real points') distinct categories, so rows of surviving_categories,
    # diversity and entropy are constant at their largest possible value while the
    # expectation is just below it; read as exact means they rejected the true theory
    problem = collapse.Discrete(categories=5000, n=3)
    for seed in range(2):
        result = collapse.compare(problem, workflow, iterations, 1000, seed)
        assert result.consistent, result.summary()
    # negative control: 5% more than the largest possible value cannot be right
    assert not collapse.compare(problem, workflow, iterations, 1000, 0,
                                theory_scale=1.05).consistent


def test_the_collapse_time_note_only_where_collapse_is_absorbing():
    problem = collapse.Discrete(categories=2, n=4)
    absorbing = collapse.simulate(problem, "replace", 200, 500, 0)
    assert any("expected time to total collapse" in note for note in absorbing.notes)
    # a model fitted on a subset of the pool can lose a category the pool keeps and
    # recover it: "collapsed" is then no absorbing state and its sum no collapse time
    subset = collapse.simulate(problem, "real=none,synthetic=window:3,size=n", 200, 500, 0)
    recovered = np.diff(subset.samples[subset.workflows[0].label][COLLAPSED], axis=1) < 0
    assert recovered.any()
    assert not any("expected time to total collapse" in note for note in subset.notes)


def test_a_window_longer_than_the_run_costs_what_the_run_keeps():
    # window:100000 over 3 iterations holds at most 2 batches, like synthetic=all; the
    # up-front estimate once counted 100,000 and refused it as an 80 GB run
    long_window = working_set("real=none,synthetic=window:100000", categories=100,
                              iterations=3, replicates=1000)
    everything = working_set("real=none,synthetic=all", categories=100, iterations=3,
                             replicates=1000)
    assert long_window <= 2 * everything < 1e8
    problem = collapse.Discrete(categories=100, n=10)
    run = collapse.simulate(problem, "real=none,synthetic=window:100000", 3, 1000, 0)
    assert run.samples[run.workflows[0].label][GINI_DIVERSITY].shape == (1000, 3)


def test_the_partition_chain_is_refused_by_the_memory_it_would_hold():
    # 600 categories and n = 2: 180,300 compositions of 600 numbers each (3 GB and 80 s
    # when only compositions were counted); now Monte Carlo only, with a note
    theory = collapse.theory(collapse.Discrete(categories=600, n=2), "replace", 5)
    assert COLLAPSED not in theory.values["replace"]
    assert any("partition chain" in note for note in theory.notes)
    # the famous case stays exact: K = 10, n = 10 (17.50 iterations to collapse)
    assert collapse_time(categories=10, n=10, truth="uniform").exact is not None
