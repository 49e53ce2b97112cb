"""Regression setting: exact theory (analysis.regression) and the engine (simulate.regression).

No expected value below is copied from the code under test.  They come from:

* closed forms written out here (``t sigma2 d/(n-d-1)``, ``sum 1/i^2``) and the
  textbook mean of an inverse Wishart matrix;
* an independent exact model: explicit coefficient vectors of the independent noises
  (Fractions), built from the literal rule, instead of the code's Gram recursion;
* sympy evaluated against exact rationals, and limits bracketed by elementary bounds;
* a plain per-replicate numpy loop of the literal algorithm (stacked copies of the
  design, ``numpy.linalg.pinv``), written in this file.

Monte Carlo checks use fixed seeds and a Bonferroni z-test with family-wise false-alarm
rate ``FAMILY_ALPHA``; each check also asserts its power against a 5% error of the
theory, ``Phi(0.05 |theory| / se - z_crit) >= 0.99`` from the sample's own standard
error, and a negative control (the theory scaled by 1.05) must be rejected by the same
test.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from mc_checks import check_agreement, mc_failures, z_critical

from collapse.analysis.errors import CollapseError
from collapse.analysis.regression import (
    error_ratios,
    expected_inverse_trace,
    regression_formula,
    regression_limit,
    regression_theory,
)
from collapse.analysis.regression_symbolic import d as D_SYM
from collapse.analysis.regression_symbolic import n as N_SYM
from collapse.analysis.regression_symbolic import sigma2 as S2_SYM
from collapse.analysis.regression_symbolic import t as T_SYM
from collapse.analysis.vocabulary import REGRESSION, REGRESSION_METRICS, TEST_MSE
from collapse.analysis.workflows import Workflow
from collapse.simulate.regression import fit_rows, simulate_regression

WHOLE_RULES = [f"real={real},synthetic={synthetic}"
               for real in ("none", "original", "fresh")
               for synthetic in ("latest", "window:2", "window:3", "all")]
CLOSED_FORM_RULES = [f"real={real},synthetic={synthetic}"
                     for real in ("none", "original", "fresh")
                     for synthetic in ("latest", "all")]


def w(spec: str) -> Workflow:
    return Workflow.parse(spec)


# --------------------------------------------------------------------------- statistics


# --------------------------------------------------------------------------- names


def test_vocabulary():
    assert REGRESSION == "regression"
    assert REGRESSION_METRICS == ("test_mse",)


# --------------------------------------------------------------------------- exact theory


def test_closed_forms_to_1e12_for_a_thousand_iterations():
    dim, n, sigma2, T = 10, 100, 1.0, 1000
    scale = sigma2 * dim / (n - dim - 1)
    replace = regression_theory(w("replace"), dim=dim, n=n, sigma2=sigma2,
                                iterations=T)[0][TEST_MSE]
    accumulate = regression_theory(w("accumulate"), dim=dim, n=n, sigma2=sigma2,
                                   iterations=T)[0][TEST_MSE]
    partial = Fraction(0)
    for t in range(1, T + 1):
        partial += Fraction(1, t * t)
        assert replace[t - 1] == pytest.approx(t * scale, rel=1e-12, abs=0)
        assert accumulate[t - 1] == pytest.approx(float(partial) * scale, rel=1e-12, abs=0)


def test_published_reference_numbers():
    # brute-force Monte Carlo of the reference code (d = 10, n = 100): replace 0.112 /
    # 0.562 / 1.124 at t = 1 / 5 / 10, accumulate 0.174 at t = 10 (theory, 3 decimals)
    rep = regression_theory("replace", dim=10, n=100, sigma2=1.0, iterations=10)[0][TEST_MSE]
    acc = regression_theory("accumulate", dim=10, n=100, sigma2=1.0, iterations=10)[0][TEST_MSE]
    assert [round(rep[t - 1], 3) for t in (1, 5, 10)] == [0.112, 0.562, 1.124]
    assert round(acc[9], 3) == 0.174


def coefficient_model(rule: Workflow, iterations: int) -> list[Fraction]:
    """Independent exact ``s_t``: every deviation as explicit coefficients of the noises.

    Noise 0 is the real batch; each synthetic batch and each fresh real batch brings a
    new independent noise of unit second moment.  Model t averages its batches literally.
    """
    counter = iter(range(1, 10**9))
    real = {0: Fraction(1)}
    models, batches = [], {}
    for t in range(1, iterations + 1):
        if t == 1:
            delta = dict(real)
        else:
            parts = [batches[j] for j in rule.synthetic_batches(t)]
            if rule.real == "original":
                parts.append(real)
            elif rule.real == "fresh":
                parts.append({next(counter): Fraction(1)})
            delta = {}
            for part in parts:
                for key, value in part.items():
                    delta[key] = delta.get(key, Fraction(0)) + value / len(parts)
        models.append(sum(v * v for v in delta.values()))
        batches[t] = {**delta, next(counter): Fraction(1)}
    return models


@pytest.mark.parametrize("spec", WHOLE_RULES)
def test_error_ratios_equal_the_coefficient_model(spec):
    assert error_ratios(w(spec), 9) == coefficient_model(w(spec), 9)


def test_named_rules_and_textbook_special_cases():
    one = Fraction(1)
    assert error_ratios("replace", 5) == [one * t for t in range(1, 6)]
    assert error_ratios("accumulate", 4) == [sum(Fraction(1, i * i) for i in range(1, t + 1))
                                             for t in range(1, 5)]
    # fresh: delta_t = (fresh + delta_{t-1} + noise)/2, so s_t = (s_{t-1} + 2)/4
    fresh = error_ratios("fresh", 6)
    assert all(fresh[i] == (fresh[i - 1] + 2) / 4 for i in range(1, 6))
    # t = 1 is OLS on the real batch: E||w_hat - w||^2 = sigma2 E tr (X^T X)^-1 = sigma2 d/(n-d-1)
    for dim, n in ((1, 10), (3, 32), (10, 100)):
        first = regression_theory("accumulate", dim=dim, n=n, sigma2=2.0, iterations=1)[0]
        assert first[TEST_MSE][0] == pytest.approx(2.0 * dim / (n - dim - 1), rel=1e-14)


def test_window_at_least_as_long_as_the_run_is_accumulate():
    assert error_ratios("real=original,synthetic=window:20", 12) == error_ratios("accumulate", 12)


@pytest.mark.parametrize("spec", CLOSED_FORM_RULES)
def test_sympy_closed_forms_equal_the_exact_recursion(spec):
    formula = regression_formula(TEST_MSE, spec)
    ratios = error_ratios(spec, 12)
    scale = S2_SYM * D_SYM / (N_SYM - D_SYM - 1)
    for t in range(1, 13):
        assert sp.simplify(formula.subs(T_SYM, t) - scale * sp.Rational(
            ratios[t - 1].numerator, ratios[t - 1].denominator)) == 0


def test_sympy_named_forms_and_limits():
    scale = S2_SYM * D_SYM / (N_SYM - D_SYM - 1)
    assert sp.simplify(regression_formula(TEST_MSE, "replace") - T_SYM * scale) == 0
    assert sp.simplify(regression_formula(TEST_MSE, "accumulate")
                       - scale * sp.harmonic(T_SYM, 2)) == 0
    assert regression_limit(TEST_MSE, "replace") == sp.oo
    assert sp.simplify(regression_limit(TEST_MSE, "accumulate") - scale * sp.pi**2 / 6) == 0
    assert sp.simplify(regression_limit(TEST_MSE, "fresh") - scale * sp.Rational(2, 3)) == 0
    tau = sp.Symbol("tau", positive=True)
    assert sp.simplify(regression_formula(TEST_MSE, "replace", given_design=True)
                       - S2_SYM * tau * T_SYM) == 0


@pytest.mark.parametrize("spec", CLOSED_FORM_RULES)
def test_sympy_limits_are_where_the_exact_sequence_goes(spec):
    limit = regression_limit(TEST_MSE, spec).subs({S2_SYM: 1, D_SYM: 1, N_SYM: 3})
    ratios = error_ratios(spec, 4000, one=1.0)
    if limit == sp.oo:
        assert ratios[-1] > 3000
    else:
        # every increment beyond t is O(1/t) or geometric, so 4000 steps come within 1e-3
        assert ratios[-1] == pytest.approx(float(limit), abs=1e-3)
        assert ratios[1999] == pytest.approx(float(limit), abs=2e-3)


def test_accumulate_limit_brackets_the_exact_sequence():
    # sum_{i > t} 1/i^2 < 1/t, so pi^2/6 - 1/t < s_t < pi^2/6, increasing
    ratios = error_ratios("accumulate", 2000, one=Fraction(1))
    limit = math.pi**2 / 6
    for t in (1, 10, 100, 2000):
        assert limit - 1 / t < float(ratios[t - 1]) < limit
    assert all(b > a for a, b in itertools.pairwise(ratios))


def test_no_closed_form_for_windows_and_no_theory_for_subsamples():
    with pytest.raises(CollapseError, match="closed forms"):
        regression_formula(TEST_MSE, "real=original,synthetic=window:2")
    values, notes = regression_theory("accumulate-subsample", dim=10, n=100, sigma2=1.0,
                                      iterations=5)
    assert values == {}
    assert any("Monte Carlo only" in note for note in notes)


def test_given_design_is_conditional_on_it():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 6))
    trace = float(np.trace(np.linalg.inv(x.T @ x)))
    values = regression_theory("replace", dim=6, n=40, sigma2=0.5, iterations=4, design=x)[0]
    assert values[TEST_MSE] == pytest.approx([0.5 * trace * t for t in range(1, 5)], rel=1e-10)


def test_rank_deficient_designs_add_the_missing_part_of_w():
    # n <= d - 2: E tr (X X^T)^-1 = n/(d - n - 1) (inverse Wishart_n(d)), bias d - n
    dim, n, sigma2 = 10, 5, 0.5
    values, notes = regression_theory("replace", dim=dim, n=n, sigma2=sigma2, iterations=3)
    assert values[TEST_MSE] == pytest.approx(
        [sigma2 * n / (dim - n - 1) * t + (dim - n) for t in (1, 2, 3)], rel=1e-13)
    assert any("bias" in note for note in notes)
    # a given rank-deficient design: the pseudo-inverse trace and d - rank
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 10))
    x[4:] = x[:4]  # rank 4
    pinv_trace = float(np.trace(np.linalg.pinv(x.T @ x)))
    cond = regression_theory("accumulate", dim=10, n=8, sigma2=1.0, iterations=2, design=x)[0]
    assert cond[TEST_MSE] == pytest.approx([pinv_trace + 6, 1.25 * pinv_trace + 6], rel=1e-9)


@pytest.mark.parametrize("n", [9, 10, 11])
def test_divergent_expectations_are_inf_with_a_note_never_nan(n):
    values, notes = regression_theory("accumulate", dim=10, n=n, sigma2=1.0, iterations=3)
    assert values[TEST_MSE] == (math.inf,) * 3
    assert any("diverges" in note for note in notes)
    assert expected_inverse_trace(n, 10) == math.inf


# --------------------------------------------------------------------------- literal loop


def plain_loop(rule: Workflow, dim: int, n: int, sigma2: float, iterations: int,
               replicates: int, seed: int, design: np.ndarray | None = None) -> np.ndarray:
    """The literal algorithm, one replicate at a time: stacked copies and pinv."""
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(sigma2)
    out = np.empty((replicates, iterations))
    for r in range(replicates):
        x = rng.standard_normal((n, dim)) if design is None else design
        w_true = rng.standard_normal(dim)
        real_y = x @ w_true + sigma * rng.standard_normal(n)
        synthetic: list[np.ndarray] = []
        for t in range(1, iterations + 1):
            if t == 1:
                labels = [real_y]
            else:
                labels = [synthetic[j - 1] for j in rule.synthetic_batches(t)]
                if rule.real == "original":
                    labels.insert(0, real_y)
                elif rule.real == "fresh":
                    labels.insert(0, x @ w_true + sigma * rng.standard_normal(n))
            stack_x = np.concatenate([x] * len(labels))
            stack_y = np.concatenate(labels)
            m = rule.subsample_size(n)
            if t >= 2 and m is not None:
                if rule.real_fraction is None:
                    pick = rng.choice(len(stack_y), size=m, replace=False)
                else:
                    m_real, m_synth = rule.stratified_counts(n)
                    real_rows = n if rule.real != "none" else 0
                    pick = np.concatenate([
                        rng.choice(real_rows, size=m_real, replace=False),
                        real_rows + rng.choice(len(stack_y) - real_rows, size=m_synth,
                                               replace=False)])
                stack_x, stack_y = stack_x[pick], stack_y[pick]
            w_hat = np.linalg.pinv(stack_x) @ stack_y
            out[r, t - 1] = float(np.sum((w_hat - w_true) ** 2))
            synthetic.append(x @ w_hat + sigma * rng.standard_normal(n))
    return out


def two_sample_failures(cells: list[tuple[str, np.ndarray, np.ndarray]]) -> list[str]:
    crit = z_critical(len(cells))
    bad = []
    for label, a, b in cells:
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        z = (a.mean() - b.mean()) / se
        if abs(z) > crit:
            bad.append(f"{label}: {a.mean():.5g} vs {b.mean():.5g} (z = {z:.2f})")
    return bad


def test_plain_loop_agrees_with_the_theory():
    # the literal algorithm itself, against the exact expectation (sanity of the loop)
    cells = []
    for spec in ("replace", "accumulate", "fresh"):
        sample = plain_loop(w(spec), 3, 20, 1.0, 4, 2000, seed=11)
        theory = regression_theory(spec, dim=3, n=20, sigma2=1.0, iterations=4)[0][TEST_MSE]
        cells += [(f"{spec} t={t}", sample[:, t - 1], theory[t - 1]) for t in (1, 4)]
    assert mc_failures(cells) == []


@pytest.mark.parametrize("spec", [
    "accumulate-subsample",
    "real=fresh,synthetic=latest,size=15,real-fraction=0.4",
    "real=none,synthetic=window:2,size=12",
])
def test_subsample_engine_matches_the_plain_loop(spec):
    rule = w(spec)
    loop = plain_loop(rule, 3, 20, 1.0, 6, 3000, seed=5)
    engine = simulate_regression(rule, dim=3, n=20, sigma2=1.0, iterations=6,
                                 replicates=20000, seed=6)[TEST_MSE]
    cells = [(f"t={t}", engine[:, t - 1], loop[:, t - 1]) for t in (2, 4, 6)]
    assert two_sample_failures(cells) == []


def test_two_sample_check_rejects_a_different_rule():
    # negative control: the loop run with accumulate differs from the subsample engine
    loop = plain_loop(w("accumulate"), 3, 20, 1.0, 6, 3000, seed=5)
    engine = simulate_regression("accumulate-subsample", dim=3, n=20, sigma2=1.0,
                                 iterations=6, replicates=20000, seed=6)[TEST_MSE]
    assert two_sample_failures([(f"t={t}", engine[:, t - 1], loop[:, t - 1])
                                for t in (2, 4, 6)])


def test_fit_rows_is_the_pseudo_inverse_of_the_stacked_rows():
    rng = np.random.default_rng(2)
    for n, dim, m in ((12, 4, 12), (12, 4, 3), (6, 8, 9)):  # full rank, too few rows, n < d
        x = rng.standard_normal((n, dim))
        rows = rng.integers(0, n, size=m)
        y = rng.standard_normal(m)
        expected = np.linalg.pinv(x[rows]) @ y
        counts = np.bincount(rows, minlength=n).astype(float)[None]
        sums = np.bincount(rows, weights=y, minlength=n)[None]
        got = fit_rows(x[None], counts, sums)[0]
        assert np.allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_fit_rows_takes_the_inverse_only_where_no_eigenvalue_is_cut():
    # Well-conditioned multisets go through the inverse of the q x q Gram matrix, the
    # others through its eigendecomposition, whose cutoff drops eigenvalues of Z^T Z
    # under size * eps * lambda_max (the normal-equations analogue of pinv's):
    # the reference is numpy's pinv of Z^T Z with that rcond.  Negative control: a
    # design whose last column repeats the first up to 1e-9 has a Gram eigenvalue under
    # the cutoff; the plain inverse would give weights of size 1e9, fit_rows must not.
    from collapse.simulate.regression import _svd, _well_conditioned

    rng = np.random.default_rng(5)
    n, dim = 30, 3
    good = rng.standard_normal((n, dim))
    bad = good.copy()
    bad[:, 2] = bad[:, 0] + 1e-9 * rng.standard_normal(n)
    x = np.stack([good, bad])
    rows = rng.integers(0, n, size=(2, 20))
    y = rng.standard_normal((2, 20))
    counts = np.stack([np.bincount(r, minlength=n) for r in rows]).astype(float)
    sums = np.stack([np.bincount(r, weights=v, minlength=n) for r, v in zip(rows, y)])
    got = fit_rows(x, counts, sums)
    eps = np.finfo(float).eps
    for k in range(2):
        z = x[k][rows[k]]
        expected = np.linalg.pinv(z.T @ z, rcond=20 * eps, hermitian=True) @ (z.T @ y[k])
        assert np.allclose(got[k], expected, rtol=1e-6, atol=1e-8), k
    z = x[1][rows[1]]
    assert np.abs(np.linalg.solve(z.T @ z, z.T @ y[1])).max() > 1e5  # the control bites
    svd = _svd(x, shared=False)
    inner = np.matmul(svd.u.transpose(0, 2, 1), svd.u * counts[:, :, None])
    gram = inner * svd.s[:, :, None] * svd.s[:, None, :]
    easy, _ = _well_conditioned(gram, svd.s, counts, 20)
    assert easy.tolist() == [0]
    assert np.abs(got[1]).max() < 1e3  # pinv's answer, not the inverse's blow-up


# --------------------------------------------------------------------------- Monte Carlo


def whole_batch_cells(dim: int, n: int, T: int, R: int, specs) -> list:
    cells = []
    for spec in specs:
        sample = simulate_regression(spec, dim=dim, n=n, sigma2=1.0, iterations=T,
                                     replicates=R, seed=21)[TEST_MSE]
        theory = regression_theory(spec, dim=dim, n=n, sigma2=1.0, iterations=T)[0][TEST_MSE]
        cells += [(f"{spec} t={t}", sample[:, t - 1], theory[t - 1]) for t in (1, 2, 5, T)]
    return cells


def test_engine_agrees_with_the_exact_theory_for_whole_batch_rules():
    check_agreement(whole_batch_cells(5, 40, 8, 10000, (
        "replace", "accumulate", "fresh", "real=original,synthetic=window:2",
        "real=none,synthetic=all")))


@pytest.mark.slow
def test_engine_agrees_with_the_theory_at_the_published_size():
    check_agreement(whole_batch_cells(10, 100, 10, 20000, WHOLE_RULES))


def test_engine_agrees_with_the_theory_below_the_diagonal_and_given_a_design():
    cells = []
    # n = 4 < d = 12: tr (X X^T)^-1 of Wishart_4(12) has a finite third moment
    # (12 - 4 - 5 > 0), so the mean's z-statistic is close to normal
    for spec in ("replace", "real=fresh,synthetic=all"):
        sample = simulate_regression(spec, dim=12, n=4, sigma2=0.5, iterations=4,
                                     replicates=20000, seed=4)[TEST_MSE]
        theory = regression_theory(spec, dim=12, n=4, sigma2=0.5, iterations=4)[0][TEST_MSE]
        cells += [(f"{spec} n<d t={t}", sample[:, t - 1], theory[t - 1]) for t in (1, 4)]
    x = np.random.default_rng(9).standard_normal((30, 5))
    for spec in ("replace", "accumulate"):
        sample = simulate_regression(spec, dim=5, n=30, sigma2=2.0, iterations=4,
                                     replicates=20000, seed=8, design=x)[TEST_MSE]
        theory = regression_theory(spec, dim=5, n=30, sigma2=2.0, iterations=4,
                                   design=x)[0][TEST_MSE]
        cells += [(f"{spec} given X t={t}", sample[:, t - 1], theory[t - 1]) for t in (1, 4)]
    check_agreement(cells)


def test_accumulate_subsample_grows_to_about_three_times_the_first_error():
    # published Monte Carlo: about 3x the first error, levelling off
    sample = simulate_regression("accumulate-subsample", dim=10, n=100, sigma2=1.0,
                                 iterations=20, replicates=600, seed=1)[TEST_MSE].mean(axis=0)
    ratio = sample / sample[0]
    assert 2.5 < ratio[9] < 3.5
    assert 2.5 < ratio[19] < 4.0
    assert ratio[19] - ratio[9] < ratio[9] - ratio[0]  # levelling off


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("spec", ["replace", "real=fresh,synthetic=window:2",
                                  "accumulate-subsample",
                                  "real=fresh,synthetic=all,size=30,real-fraction=0.5"])
def test_first_iterations_do_not_depend_on_the_run_length_or_chunks(spec):
    args = {"dim": 4, "n": 20, "sigma2": 1.0, "replicates": 150, "seed": 3}
    short = simulate_regression(spec, iterations=5, **args)[TEST_MSE]
    long = simulate_regression(spec, iterations=50, **args)[TEST_MSE]
    assert np.array_equal(short, long[:, :5])
    one_block = simulate_regression(spec, iterations=5, chunk_size=1, **args)[TEST_MSE]
    all_blocks = simulate_regression(spec, iterations=5, chunk_size=10**6, **args)[TEST_MSE]
    assert np.array_equal(one_block, all_blocks)
    assert np.array_equal(one_block, short)


def test_seeds_and_the_shared_first_iteration():
    args = {"dim": 4, "n": 20, "sigma2": 1.0, "iterations": 3, "replicates": 70}
    first = [simulate_regression(spec, seed=5, **args)[TEST_MSE][:, 0]
             for spec in ("replace", "accumulate-subsample", "fresh")]
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[0], first[2])
    again = simulate_regression("replace", seed=5, **args)[TEST_MSE]
    other = simulate_regression("replace", seed=6, **args)[TEST_MSE]
    assert np.array_equal(again[:, 0], first[0])
    assert not np.array_equal(again, other)


@pytest.mark.parametrize("spec", ["replace", "accumulate", "accumulate-subsample",
                                  "real=original,synthetic=all,size=3"])
def test_rank_deficient_runs_are_finite(spec):
    out = simulate_regression(spec, dim=8, n=4, sigma2=1.0, iterations=6, replicates=40,
                              seed=0)[TEST_MSE]
    assert np.all(np.isfinite(out)) and out.shape == (40, 6)
    x = np.ones((4, 8))  # rank one
    out = simulate_regression(spec, dim=8, n=4, sigma2=1.0, iterations=3, replicates=8,
                              seed=0, design=x)[TEST_MSE]
    assert np.all(np.isfinite(out))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("override, name", [
    ({"sigma2": -1.0}, "sigma2"), ({"sigma2": 0.0}, "sigma2"), ({"sigma2": math.nan}, "sigma2"),
    ({"n": 1}, "n"), ({"dim": 0}, "dim"), ({"iterations": 0}, "iterations"),
    ({"design": np.zeros((3, 3))}, "design"), ({"design": np.full((20, 4), np.nan)}, "design"),
    ({"workflow": "no-such"}, "workflow"), ({"workflow": "real=original,size=500"}, "size"),
])
def test_bad_input_names_the_parameter(override, name):
    args = {"workflow": "replace", "dim": 4, "n": 20, "sigma2": 1.0, "iterations": 3}
    args.update(override)
    workflow = args.pop("workflow")
    with pytest.raises(CollapseError, match=name):
        regression_theory(workflow, **args)
    with pytest.raises(CollapseError, match=name):
        simulate_regression(workflow, replicates=2, seed=0, **args)


@pytest.mark.parametrize("override, name", [({"replicates": 0}, "replicates"),
                                            ({"seed": -1}, "seed"),
                                            ({"chunk_size": 0}, "chunk_size")])
def test_bad_engine_arguments(override, name):
    args = {"dim": 4, "n": 20, "sigma2": 1.0, "iterations": 3, "replicates": 2, "seed": 0}
    args.update(override)
    with pytest.raises(CollapseError, match=name):
        simulate_regression("replace", **args)
