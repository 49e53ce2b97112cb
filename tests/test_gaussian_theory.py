"""Exact Gaussian theory (analysis.gaussian, analysis.gaussian_symbolic).

Checks, none of which copy an expected value from the code under test:

* an independent exact implementation (the full Gram-matrix recursion
  over batch means, written below with Fractions) equals ``moment_sequences`` exactly;
* the closed forms, ``symbolic_moments``, ``formula`` and the limit brackets are checked
  against that Gram model (literal, or with running pool sums in 60-digit arithmetic
  for long runs), never against ``moment_sequences``, which shares
  ``pool_coefficients`` with them; errors planted in ``pool_coefficients`` are the
  negative control;
* textbook t = 1 facts (sample mean / covariance moments, Wishart determinant,
  log-determinant and inverse means);
* rsolve-derived replace closed forms satisfy their one-step recursions symbolically and
  equal the recursions' exact values; the textbook Wishart formulas simplify to them;
* products / limits: rigorous brackets and monotone convergence of the exact sequences;
* infinities are +-inf with a note, never NaN;
* Monte Carlo with fixed seeds, a Bonferroni z-test at family-wise false-alarm rate
  1e-3, and negative controls (deliberately wrong theories) that the same test rejects.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import special, stats

from collapse.analysis import gaussian_symbolic as gs
from collapse.analysis.gaussian import (
    GaussianTheory,
    gaussian_entropy,
    gaussian_theory,
    moment_sequences,
)
from collapse.analysis.gaussian_symbolic import (
    accumulate_known_covariance_mean_error,
    formula,
    limit_values,
    limits,
    replace_closed_forms,
    symbolic_moments,
)
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    GAUSSIAN_METRICS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    MLE,
    REPLACE,
    TEST_NLL,
    UNBIASED,
    WORKFLOWS,
)

COVS = (MLE, UNBIASED)
FAMILY_ALPHA = 1e-3  # family-wise false-alarm rate of every Monte Carlo check below


# --------------------------------------------------------------------------- independent model


def gram_moments(workflow, n, iterations, covariance, *, with_replacement=False,
                 known_covariance=False):
    """Independent exact implementation: full Gram matrix of batch means.

    ``G[j][k] = E<xbar_j - mu0, xbar_k - mu0> / tr Sigma0`` and ``s[j] = E tr S_j / tr Sigma0``
    (``S_j``: within-batch covariance, divisor n).  Model t is fitted on the batches in its
    training pool (replace: the last batch; otherwise all batches).  ``with_replacement``
    is a deliberately WRONG subsample model (i.i.d. draws from the pool) used as a negative
    control (from t = 2 on: model 1 is fitted on the real points in every workflow);
    ``known_covariance`` samples every model with Sigma0 itself.
    """
    n = Fraction(n)
    G = {(0, 0): 1 / n}
    s = [(n - 1) / n]
    a_out, b_out = [], []
    for t in range(1, iterations + 1):
        pool = [t - 1] if workflow == REPLACE else list(range(t))
        L = len(pool)
        big_n = L * n
        mean_sq = sum(G[min(j, k), max(j, k)] for j in pool for k in pool) / L**2
        cross = {j: sum(G[min(j, k), max(j, k)] for k in pool) / L for j in pool}
        pop_cov = sum(s[j] + G[j, j] - 2 * cross[j] + mean_sq for j in pool) / L
        unb = covariance == UNBIASED
        if workflow == ACCUMULATE_SUBSAMPLE and with_replacement and t >= 2:
            h = pop_cov / n
            fit = (n - 1) / n * (n / (n - 1) if unb else 1) * pop_cov
            a = mean_sq + h
        elif workflow == ACCUMULATE_SUBSAMPLE:
            # SRSWOR: Var(mean) = S^2 (1 - n/N)/n with S^2 = N P/(N-1); E s^2_(n-1) = S^2.
            s2 = big_n / (big_n - 1) * pop_cov
            a = mean_sq + s2 * (1 - n / big_n) / n
            fit = s2 if unb else (n - 1) / n * s2
        else:
            a = mean_sq
            fit = big_n / (big_n - 1) * pop_cov if unb else pop_cov
        b = Fraction(1) if known_covariance else fit
        a_out.append(a)
        b_out.append(b)
        for k in range(t):
            # E<mu_hat_t - mu0, e_k> = E<pool mean, e_k>: e_k is known given the past.
            G[k, t] = sum(G[min(j, k), max(j, k)] for j in pool) / L
        G[t, t] = a + b / n
        s.append((n - 1) / n * b)
    return a_out, b_out


def gram_moments_running(workflow, n, iterations, covariance, one=Fraction(1)):
    """:func:`gram_moments` with the pool sums of ``G`` kept as running totals.

    The same independent model (inner products of batch means, within-batch traces,
    simple-random-sampling moments written out), but ``sum_{j,k in pool} G[j][k]``,
    the row sums ``sum_k G[j][k]`` and the traces are updated as batches arrive, so a
    step costs O(t) instead of O(t^2): long runs (hundreds of iterations) in mpmath
    (``one = mpf(1)`` of a 60-digit context) or Fractions.  Returns ``(a, b, p)`` with
    ``p[t-1] = E tr P_t / tr Sigma0`` for the pool covariance ``P_t`` (divisor ``|pool|``
    times ``n``).  Checked equal to :func:`gram_moments` exactly in
    ``test_running_gram_equals_literal_gram``.
    """
    n = one * n
    unb = covariance == UNBIASED
    diag = [1 / n]  # G[j][j] = E||e_j||^2 / tr Sigma0
    within = [(n - 1) / n]  # s[j] = E tr S_j / tr Sigma0
    rowsum = [1 / n]  # sum_{k in pool} G[j][k] (pooled workflows)
    total = 1 / n  # sum_{j,k in pool} G[j][k]
    diag_sum, within_sum = diag[0], within[0]
    a_out, b_out, p_out = [], [], []
    for t in range(1, iterations + 1):
        if workflow == REPLACE:
            size, mean_sq = 1, diag[-1]
            pop_cov = within[-1]  # s + G - 2 G + G for the one batch
        else:
            size = t
            mean_sq = total / size**2
            # (1/L) sum_j [s_j + G_jj - 2 cross_j + mean_sq] with sum_j cross_j = total / L
            pop_cov = (within_sum + diag_sum) / size - mean_sq
        big_n = size * n
        if workflow == ACCUMULATE_SUBSAMPLE:
            s2 = big_n / (big_n - 1) * pop_cov
            a = mean_sq + s2 * (1 - n / big_n) / n
            b = s2 if unb else (n - 1) / n * s2
        else:
            a = mean_sq
            b = big_n / (big_n - 1) * pop_cov if unb else pop_cov
        a_out.append(a)
        b_out.append(b)
        p_out.append(pop_cov)
        g_tt = a + b / n
        if workflow == REPLACE:
            diag.append(g_tt)
        else:
            column = [rowsum[k] / size for k in range(t)]  # G[k][t] = E<pool mean, e_k>
            for k in range(t):
                rowsum[k] += column[k]
            rowsum.append(sum(column) + g_tt)
            total += 2 * sum(column) + g_tt
            diag.append(g_tt)
        within.append((n - 1) / n * b)
        diag_sum += g_tt
        within_sum += within[-1]
    return a_out, b_out, p_out


def _mp(digits=60):
    """``mpf(1)`` of a private mpmath context with ``digits`` significant digits."""
    ctx = mpmath.MPContext()
    ctx.dps = digits
    return ctx.mpf(1)


def _rational(x):
    return sp.Rational(x.numerator, x.denominator)


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("covariance", COVS)
def test_running_gram_equals_literal_gram(workflow, covariance):
    for n in (2, 5):
        a, b = gram_moments(workflow, n, 10, covariance)
        a_run, b_run, p_run = gram_moments_running(workflow, n, 10, covariance)
        assert (a_run, b_run) == (a, b)
        assert p_run[0] == Fraction(n - 1, n)  # the real batch's own spread


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("covariance", COVS)
@pytest.mark.parametrize("n", [2, 3, 5, 11])
def test_scalar_recursion_equals_gram_matrix_recursion(workflow, covariance, n):
    a, b = moment_sequences(workflow, n, 8, covariance)
    a_ref, b_ref = gram_moments(workflow, n, 8, covariance)
    assert all(isinstance(x, Fraction) for x in a + b)
    assert a == a_ref
    assert b == b_ref


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_mle_second_moment_about_truth_is_conserved(workflow):
    # E||mu_hat - mu0||^2 + E tr Sigma_hat_MLE = E (1/m) sum ||x - mu0||^2 = tr Sigma0.
    a, b = gram_moments(workflow, 6, 10, MLE)
    assert all(x + y == 1 for x, y in zip(a, b))
    a, b = moment_sequences(workflow, 6, 10, MLE)
    assert all(x + y == 1 for x, y in zip(a, b))


def test_iteration_one_is_identical_across_workflows():
    for cov in COVS:
        firsts = {w: tuple(v[0] for v in moment_sequences(w, 7, 1, cov)) for w in WORKFLOWS}
        assert len(set(firsts.values())) == 1


# --------------------------------------------------------------------------- textbook t = 1


@pytest.mark.parametrize("covariance", COVS)
@pytest.mark.parametrize("n,dim", [(8, 1), (8, 3), (12, 5)])
def test_textbook_first_iteration(covariance, n, dim):
    sigma2 = 2.5
    nu = n if covariance == MLE else n - 1
    th = gaussian_theory(REPLACE, n=n, dim=dim, iterations=1, sigma2=sigma2,
                         covariance=covariance).values
    # E||xbar - mu||^2 = tr Sigma / n;  E Sigma_hat = (n-1)/nu Sigma.
    assert th[MEAN_SQ_ERROR][0] == pytest.approx(dim * sigma2 / n, rel=1e-14)
    assert th[COV_TRACE_RATIO][0] == pytest.approx((n - 1) / nu, rel=1e-14)
    # Wishart W_d(n-1, I): E det W = (n-1)(n-2)...(n-d).
    assert th[COV_DET_RATIO][0] == pytest.approx(math.prod((n - i) / nu for i in range(1, dim + 1)),
                                                 rel=1e-13)
    # E log det W = sum_{i=1}^d psi((n-1-i+1)/2) + d log 2.
    elog = sum(special.digamma((n - i) / 2) for i in range(1, dim + 1)) + dim * math.log(2 / nu)
    assert th[LOG_COV_DET_RATIO][0] == pytest.approx(elog, rel=1e-12)
    # E W^{-1} = I/(m-d-1), m = n-1; xbar independent of Sigma_hat with Cov = Sigma/n.
    inv = nu / (n - dim - 2)
    nll = 0.5 * (dim * math.log(2 * math.pi * sigma2) + elog + dim * inv + inv * dim / n)
    assert th[TEST_NLL][0] == pytest.approx(nll, rel=1e-12)
    assert th[TEST_NLL][0] > gaussian_entropy(dim, sigma2)


def test_gaussian_entropy():
    for dim, sig2 in [(1, 1.0), (3, 2.0), (5, 0.3)]:
        ref = stats.multivariate_normal(np.zeros(dim), sig2 * np.eye(dim)).entropy()
        assert gaussian_entropy(dim, sig2) == pytest.approx(ref, rel=1e-12)


# --------------------------------------------------------------------------- replace closed forms


def _design_replace(covariance):
    """Textbook Wishart closed forms of replace (MLE) and their divisor-(m-1) analogues."""
    n, d, t = gs.n, gs.d, gs.t
    nu = n if covariance == MLE else n - 1
    r = nu / (n - d - 2)
    c = (n - 1) / nu
    return {
        gs.MEAN_ERROR_RATIO: sp.Sum(c**gs._k, (gs._k, 0, t - 1)).doit() / n,
        COV_TRACE_RATIO: c**t,
        gs.INV_COV_TRACE: d * r**t,
        # MLE: q_t = d (r^t - 1)/(d + 2); m-1 from solving q_t = r(q_{t-1} + d/n) by hand.
        gs.MAHALANOBIS_MEAN: (d * (r**t - 1) / (d + 2) if covariance == MLE
                              else d * (n - 1) * (r**t - 1) / (n * (d + 1))),
    }


@pytest.mark.parametrize("covariance", COVS)
def test_replace_closed_forms_simplify_to_design_forms(covariance):
    forms = replace_closed_forms(covariance)
    for key, expected in _design_replace(covariance).items():
        assert sp.simplify(sp.powsimp(forms[key] - expected, force=True)) == 0, key


@pytest.mark.parametrize("covariance", COVS)
def test_replace_closed_forms_satisfy_one_step_recursions(covariance):
    n, d, t = gs.n, gs.d, gs.t
    f = replace_closed_forms(covariance)
    nu = n if covariance == MLE else n - 1
    r = nu / (n - d - 2)
    step = lambda e: e.subs(t, t + 1)  # noqa: E731
    zero = lambda e: sp.simplify(sp.powsimp(sp.expand(e), force=True)) == 0  # noqa: E731
    assert zero(step(f[COV_TRACE_RATIO]) - (n - 1) / nu * f[COV_TRACE_RATIO])
    assert zero(step(f[gs.MEAN_ERROR_RATIO]) - f[gs.MEAN_ERROR_RATIO] - f[COV_TRACE_RATIO] / n)
    assert zero(step(f[gs.INV_COV_TRACE]) - r * f[gs.INV_COV_TRACE])
    assert zero(step(f[gs.MAHALANOBIS_MEAN]) - r * (f[gs.MAHALANOBIS_MEAN] + d / n))
    assert f[gs.MAHALANOBIS_MEAN].subs(t, 0) == 0
    assert sp.simplify(f[gs.INV_COV_TRACE].subs(t, 0) - d) == 0
    drift = sp.Sum(sp.digamma((n - gs._i) / 2) + sp.log(2 / nu), (gs._i, 1, d))
    assert sp.simplify(sp.expand_log(step(f[LOG_COV_DET_RATIO]) - f[LOG_COV_DET_RATIO]
                                     - drift.doit(), force=True).subs(d, 3).doit()) == 0
    rho = sp.Product((n - gs._i) / nu, (gs._i, 1, d))
    for dim in (1, 2, 4):
        lhs = step(f[COV_DET_RATIO]).subs(d, dim)
        rhs = (rho * f[COV_DET_RATIO]).subs(d, dim)
        assert sp.simplify(sp.expand_func(lhs - rhs.doit())) == 0


@pytest.mark.parametrize("covariance", COVS)
@pytest.mark.parametrize("n_value", [3, 7, 20])
def test_replace_closed_forms_equal_gram_model(covariance, n_value):
    f = replace_closed_forms(covariance)
    a, b, _ = gram_moments_running(REPLACE, n_value, 30, covariance)
    for t_value in range(1, 31):
        sub = {gs.n: n_value, gs.t: t_value}
        assert _rational(a[t_value - 1]) == f[gs.MEAN_ERROR_RATIO].subs(sub)
        assert _rational(b[t_value - 1]) == f[COV_TRACE_RATIO].subs(sub)


@pytest.mark.parametrize("covariance", COVS)
def test_replace_det_logdet_nll_closed_forms_match_theory(covariance):
    n_value, dim, sig2 = 9, 3, 1.7
    nu = n_value if covariance == MLE else n_value - 1
    f = replace_closed_forms(covariance)
    th = gaussian_theory(REPLACE, n=n_value, dim=dim, iterations=12, sigma2=sig2,
                         covariance=covariance).values
    rho = math.prod(Fraction(n_value - i, nu) for i in range(1, dim + 1))
    q = Fraction(0)
    r = Fraction(nu, n_value - dim - 2)
    for t_value in range(1, 13):
        sub = {gs.n: n_value, gs.d: dim, gs.t: t_value, gs.sigma2: sp.Rational(17, 10)}
        exact_det = sp.expand_func(f[COV_DET_RATIO].subs(sub))
        assert exact_det == sp.Rational((rho**t_value).numerator, (rho**t_value).denominator)
        assert th[COV_DET_RATIO][t_value - 1] == pytest.approx(float(rho**t_value), rel=1e-13)
        q = r * (q + Fraction(dim, n_value))
        assert f[gs.MAHALANOBIS_MEAN].subs(sub) == sp.Rational(q.numerator, q.denominator)
        for key in (LOG_COV_DET_RATIO, TEST_NLL):
            # Both against the Wishart facts written out in _textbook_replace (scipy
            # digamma), not against each other.
            expected = _textbook_replace(key, n_value, dim, t_value, sig2, covariance)
            value = float(sp.N(f[key].subs(sub).doit(), 20))
            assert value == pytest.approx(expected, rel=1e-12), key
            assert th[key][t_value - 1] == pytest.approx(expected, rel=1e-12), key


# --------------------------------------------------------------------------- symbolic n


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("covariance", COVS)
def test_symbolic_moments_at_integer_n_equal_gram_model(workflow, covariance):
    for t_value in (1, 2, 4):
        a_sym, b_sym = symbolic_moments(workflow, t_value, covariance)
        assert a_sym.free_symbols <= {gs.n} and b_sym.free_symbols <= {gs.n}
        for n_value in (2, 3, 7):
            a, b = gram_moments(workflow, n_value, t_value, covariance)
            assert a_sym.subs(gs.n, n_value) == _rational(a[-1])
            assert b_sym.subs(gs.n, n_value) == _rational(b[-1])


@pytest.mark.parametrize("workflow", [ACCUMULATE, ACCUMULATE_SUBSAMPLE])
@pytest.mark.parametrize("covariance", COVS)
def test_gamma_closed_forms_equal_gram_model(workflow, covariance):
    # The reference is the Gram-matrix model written above, which shares nothing with
    # pool_coefficients (the subsample corrections are the textbook SRSWOR moments):
    # the closed forms and moment_sequences both use pool_coefficients, so comparing
    # them with each other could not catch an error there.
    b_form = formula(COV_TRACE_RATIO, workflow, covariance)
    a_form = formula(MEAN_SQ_ERROR, workflow, covariance) / (gs.d * gs.sigma2)
    for n_value in (2, 5):
        a, b, p = gram_moments_running(workflow, n_value, 7, covariance)
        for t_value in range(1, 8):
            sub = {gs.n: n_value, gs.t: t_value}
            assert abs(sp.N(b_form.subs(sub).doit(), 30) - _rational(b[t_value - 1])) < 1e-25
            assert abs(sp.N(a_form.subs(sub).doit(), 30) - _rational(a[t_value - 1])) < 1e-25
            p_gamma = gs.pool_trace(workflow, covariance, t_value).subs(gs.n, n_value)
            assert abs(sp.N(p_gamma, 30) - _rational(p[t_value - 1])) < 1e-25


def test_gram_check_catches_planted_subsample_errors(monkeypatch):
    # Negative control for the check above: two errors planted in the subsample
    # coefficients (the factor N/(N-1) dropped from g, and (N-n)/(nN) for
    # (N-n)/(n(N-1)) in h) must make the closed forms disagree with the Gram model,
    # while the recursion that shares pool_coefficients agrees with the wrong forms.
    from collapse.analysis import gaussian as gaussian_module

    honest = gs.pool_coefficients

    def planted(workflow, n, t, covariance=MLE, one=Fraction(1)):
        g, h = honest(workflow, n, t, covariance, one)
        if workflow == ACCUMULATE_SUBSAMPLE:
            size, big_n = one * n, t * one * n
            g, h = g * (big_n - 1) / big_n, (big_n - size) / (size * big_n)
        return g, h

    monkeypatch.setattr(gs, "pool_coefficients", planted)
    monkeypatch.setattr(gaussian_module, "pool_coefficients", planted)
    sub = {gs.n: 5, gs.t: 3}
    b_wrong = sp.N(formula(COV_TRACE_RATIO, ACCUMULATE_SUBSAMPLE, UNBIASED).subs(sub).doit(), 30)
    a_wrong = sp.N((formula(MEAN_SQ_ERROR, ACCUMULATE_SUBSAMPLE, UNBIASED)
                    / (gs.d * gs.sigma2)).subs(sub).doit(), 30)
    a, b, _ = gram_moments_running(ACCUMULATE_SUBSAMPLE, 5, 3, UNBIASED)
    assert abs(b_wrong - _rational(b[2])) > 1e-3 and abs(a_wrong - _rational(a[2])) > 1e-4
    a_shared, b_shared = moment_sequences(ACCUMULATE_SUBSAMPLE, 5, 3, UNBIASED)
    assert abs(b_wrong - _rational(b_shared[2])) < 1e-25
    assert abs(a_wrong - _rational(a_shared[2])) < 1e-25


# --------------------------------------------------------------------------- known covariance


def test_accumulate_known_covariance_pi_squared_over_six():
    for n_value in (1, 4, 10):
        a_ref, b_ref = gram_moments(ACCUMULATE, n_value, 12, MLE, known_covariance=True)
        assert all(b == 1 for b in b_ref)
        for t_value in range(1, 13):
            expr = accumulate_known_covariance_mean_error(t_value).subs(gs.n, n_value)
            assert expr == sp.Rational(a_ref[t_value - 1].numerator,
                                       a_ref[t_value - 1].denominator)
    symbolic = accumulate_known_covariance_mean_error(gs.t)
    assert sp.simplify(symbolic - sp.harmonic(gs.t, 2) / gs.n) == 0
    assert sp.simplify(accumulate_known_covariance_mean_error(sp.oo) - sp.pi**2 / (6 * gs.n)) == 0
    # With the covariance fitted too, the limit is still ~ pi^2/(6n) for large n
    # (MLE: 1 - sqrt(n) sin(pi/sqrt(n))/pi = pi^2/(6n) - pi^4/(120 n^2) + ...).
    for cov in COVS:
        fitted = limit_values(ACCUMULATE, 1000, cov)["mean_error_ratio"]
        assert fitted == pytest.approx(math.pi**2 / 6000, rel=2e-3)
        assert fitted < math.pi**2 / 6000


# --------------------------------------------------------------------------- limits


def _as_float(x):
    return float(x) if not isinstance(x, Fraction) else x.numerator / x.denominator


def test_replace_limits():
    assert limits(REPLACE, MLE) == {"mean_error_ratio": 1, COV_TRACE_RATIO: 0}
    assert limits(REPLACE, UNBIASED) == {"mean_error_ratio": sp.oo, COV_TRACE_RATIO: 1}
    a, b = moment_sequences(REPLACE, 5, 200, UNBIASED)
    assert a[-1] == Fraction(200, 5) and b[-1] == 1


def test_accumulate_mle_limit_is_sine_product_with_rigorous_bracket():
    lim = limits(ACCUMULATE, MLE)
    sine_form = sp.sqrt(gs.n) * sp.sin(sp.pi / sp.sqrt(gs.n)) / sp.pi
    assert sp.simplify(lim[COV_TRACE_RATIO] - sine_form) == 0
    assert sp.simplify(lim["mean_error_ratio"] + lim[COV_TRACE_RATIO] - 1) == 0
    for n_value in (2, 3, 10, 50):
        b_inf = limit_values(ACCUMULATE, n_value, MLE)[COV_TRACE_RATIO]
        _, b, _ = gram_moments_running(ACCUMULATE, n_value, 300, MLE, one=_mp())
        assert all(x > y for x, y in zip(b, b[1:]))  # strictly decreasing
        # b_t = prod_{k<=t}(1 - 1/(n k^2)) and prod_{k>t} >= 1 - sum_{k>t} 1/(n k^2) >= 1 - 1/(n t)
        for t_value in (10, 100, 300):
            bt = _as_float(b[t_value - 1])
            assert bt * (1 - 1 / (n_value * t_value)) <= b_inf <= bt


@pytest.mark.parametrize("n_value", [2, 3, 10])
def test_accumulate_unbiased_limits_with_rigorous_bracket(n_value):
    vals = limit_values(ACCUMULATE, n_value, UNBIASED)
    big_t = 400
    a, b, _ = gram_moments_running(ACCUMULATE, n_value, big_t, UNBIASED, one=_mp())
    assert all(x >= y for x, y in zip(b, b[1:]))  # non-increasing
    # b_t = prod_{k=2}^t (1 - 1/(k(kn-1))); the tail product is >= 1 - sum_{k>t} 1/(k(kn-1))
    # >= 1 - 1/((n-1) t)  (since k(kn-1) >= (n-1) k^2 and sum_{k>t} 1/k^2 <= 1/t).
    bt = _as_float(b[-1])
    assert bt * (1 - 1 / ((n_value - 1) * big_t)) <= vals[COV_TRACE_RATIO] <= bt
    # a_inf = a_T + (1/n) sum_{k>T} b_{k-1}/k^2 with b_inf <= b_{k-1} <= b_T  (hypergeometric
    # closed form in limits() must lie in this bracket).
    tail = float(mpmath.zeta(2, big_t + 1))
    at = _as_float(a[-1])
    lo = at + vals[COV_TRACE_RATIO] * tail / n_value
    hi = at + bt * tail / n_value
    assert lo <= vals["mean_error_ratio"] <= hi
    assert hi - lo < 1e-5


@pytest.mark.parametrize("n_value", [2, 4, 10])
def test_accumulate_subsample_mle_limit_approached_monotonically(n_value):
    vals = limit_values(ACCUMULATE_SUBSAMPLE, n_value, MLE)
    assert vals["mean_error_ratio"] + vals[COV_TRACE_RATIO] == pytest.approx(1, abs=1e-15)
    _, b, _ = gram_moments_running(ACCUMULATE_SUBSAMPLE, n_value, 400, MLE, one=_mp())
    gaps = [_as_float(x) - vals[COV_TRACE_RATIO] for x in b]
    assert all(g > 0 for g in gaps[1:])
    assert all(x > y for x, y in zip(gaps[1:], gaps[2:]))  # decreasing to the limit from above
    # The gap is O(1/t): halving t roughly doubles it.
    assert 1.8 < gaps[199] / gaps[399] < 2.2


@pytest.mark.parametrize("n_value", [2, 5])
def test_accumulate_subsample_unbiased_diverges_like_t_to_one_over_n(n_value):
    assert limits(ACCUMULATE_SUBSAMPLE, UNBIASED) == {"mean_error_ratio": sp.oo,
                                                       COV_TRACE_RATIO: sp.oo}
    const, beta = gs.pool_trace_asymptotics(ACCUMULATE_SUBSAMPLE, UNBIASED)
    assert sp.simplify(beta - 1 / gs.n) == 0
    c = float(sp.N(const.subs(gs.n, n_value)))
    _, b, _ = gram_moments_running(ACCUMULATE_SUBSAMPLE, n_value, 400, UNBIASED, one=_mp())
    # b_t = g_t p_t with g_t -> 1, so b_t / t^(1/n) -> C; the relative error shrinks like 1/t.
    errs = [abs(_as_float(b[t - 1]) / t ** (1 / n_value) / c - 1) for t in (100, 200, 400)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 2e-2


def test_limit_values_are_finite_where_limits_are_finite():
    for w in WORKFLOWS:
        for cov in COVS:
            for key, val in limit_values(w, 7, cov).items():
                assert not math.isnan(val)
                assert math.isinf(val) == (limits(w, cov)[key] == sp.oo)


# --------------------------------------------------------------------------- API and infinities


def test_metric_presence_and_types():
    for w in WORKFLOWS:
        th = gaussian_theory(w, n=10, dim=2, iterations=5, sigma2=3)
        assert isinstance(th, GaussianTheory)
        assert (th.workflow, th.n, th.dim, th.sigma2, th.covariance, th.iterations) == \
            (w, 10, 2, 3.0, MLE, 5)
        expected = set(GAUSSIAN_METRICS) if w == REPLACE else {MEAN_SQ_ERROR, COV_TRACE_RATIO}
        assert set(th.values) == expected
        assert all(len(v) == 5 and all(isinstance(x, float) for x in v)
                   for v in th.values.values())
        a, _ = gram_moments(w, 10, 5, MLE)
        assert th.values[MEAN_SQ_ERROR] == pytest.approx([2 * 3 * float(x) for x in a], rel=1e-14)


@pytest.mark.parametrize("covariance", COVS)
@pytest.mark.parametrize("n,dim", [(4, 2), (5, 3), (3, 3), (2, 5)])
def test_small_n_gives_infinities_with_notes_never_nan(covariance, n, dim):
    th = gaussian_theory(REPLACE, n=n, dim=dim, iterations=6, covariance=covariance)
    assert all(not math.isnan(x) for v in th.values.values() for x in v)
    assert all(x == math.inf for x in th.values[TEST_NLL])
    assert any(TEST_NLL in note and "inf" in note for note in th.notes)
    if n - 1 < dim:
        assert all(x == -math.inf for x in th.values[LOG_COV_DET_RATIO])
        assert all(x == 0.0 for x in th.values[COV_DET_RATIO])
        assert any(LOG_COV_DET_RATIO in note and "singular" in note for note in th.notes)
    else:
        assert all(math.isfinite(x) for x in th.values[LOG_COV_DET_RATIO])
        assert any("diverges" in note for note in th.notes)


def test_long_runs_are_finite_or_signed_infinity_never_nan():
    for w in WORKFLOWS:
        for cov in COVS:
            th = gaussian_theory(w, n=5, dim=1, iterations=1000, covariance=cov)
            assert all(not math.isnan(x) for v in th.values.values() for x in v)
    th = gaussian_theory(REPLACE, n=6, dim=3, iterations=1000)
    assert th.values[TEST_NLL][-1] == math.inf  # r = 6 grows past the float range
    assert any("float range" in note for note in th.notes)


def test_long_runs_match_a_60_digit_gram_model():
    # 200 iterations of the Gram model in 60-digit arithmetic: the theory's floats
    # (50-digit recursion, then rounded) must agree to float precision.
    for w in WORKFLOWS:
        for cov in COVS:
            th = gaussian_theory(w, n=3, dim=1, iterations=200, covariance=cov)
            a, b, _ = gram_moments_running(w, 3, 200, cov, one=_mp())
            assert th.values[MEAN_SQ_ERROR] == pytest.approx([float(x) for x in a], rel=1e-14)
            assert th.values[COV_TRACE_RATIO] == pytest.approx([float(x) for x in b], rel=1e-14)


@pytest.mark.parametrize("kwargs", [
    dict(n=1, dim=1, iterations=3), dict(n=5, dim=0, iterations=3),
    dict(n=5, dim=1, iterations=0), dict(n=5, dim=1, iterations=3, sigma2=0),
    dict(n=5, dim=1, iterations=3, sigma2=float("nan")), dict(n=5.5, dim=1, iterations=3),
    dict(n=5, dim=1, iterations=3, covariance="biased"),
])
def test_bad_inputs_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        gaussian_theory(REPLACE, **kwargs)
    with pytest.raises(ValueError):
        gaussian_theory("recycle", n=5, dim=1, iterations=3)


def _textbook_replace(metric, n, dim, t, sigma2, covariance):
    """Replace expectations from one-step Wishart facts, written out here (scipy digamma)."""
    nu = n if covariance == MLE else n - 1
    c = (n - 1) / nu
    r = nu / (n - dim - 2)
    drift = sum(special.digamma((n - i) / 2) + math.log(2 / nu) for i in range(1, dim + 1))
    q = 0.0
    for _ in range(t):
        q = r * (q + dim / n)
    values = {
        MEAN_SQ_ERROR: dim * sigma2 * sum(c**k for k in range(t)) / n,
        gs.MEAN_ERROR_RATIO: sum(c**k for k in range(t)) / n,
        COV_TRACE_RATIO: c**t,
        COV_DET_RATIO: math.prod((n - i) / nu for i in range(1, dim + 1)) ** t,
        LOG_COV_DET_RATIO: t * drift,
        gs.INV_COV_TRACE: dim * r**t,
        gs.MAHALANOBIS_MEAN: q,
        TEST_NLL: 0.5 * (dim * math.log(2 * math.pi * sigma2) + t * drift + dim * r**t + q),
    }
    return values[metric]


@pytest.mark.parametrize("covariance", COVS)
def test_formula_entry_point_values(covariance):
    # Every formula is evaluated at numbers and checked against an independent value:
    # replace against the Wishart facts written out above, the pooled workflows against
    # the Gram model; its LaTeX must show every symbol it depends on.
    n_value, dim, sig2 = 9, 3, 1.5
    for w in WORKFLOWS:
        metrics = (list(GAUSSIAN_METRICS) + [gs.MEAN_ERROR_RATIO, gs.INV_COV_TRACE,
                                             gs.MAHALANOBIS_MEAN]
                   if w == REPLACE else [MEAN_SQ_ERROR, COV_TRACE_RATIO, gs.MEAN_ERROR_RATIO])
        a, b, _ = gram_moments_running(w, n_value, 3, covariance)
        for metric in metrics:
            expr = formula(metric, w, covariance)
            assert expr.free_symbols <= {gs.n, gs.d, gs.t, gs.sigma2}
            latex = sp.latex(expr)
            assert all(sp.latex(symbol) in latex for symbol in expr.free_symbols)
            for t_value in (1, 3):
                sub = {gs.n: n_value, gs.d: dim, gs.t: t_value, gs.sigma2: sp.Rational(3, 2)}
                value = float(sp.N(expr.subs(sub).doit(), 30))
                if w == REPLACE:
                    expected = _textbook_replace(metric, n_value, dim, t_value, sig2, covariance)
                else:
                    ratio = {MEAN_SQ_ERROR: dim * sig2 * a[t_value - 1],
                             gs.MEAN_ERROR_RATIO: a[t_value - 1],
                             COV_TRACE_RATIO: b[t_value - 1]}
                    expected = float(ratio[metric])
                assert value == pytest.approx(expected, rel=1e-12), (w, metric, t_value)
    # Negative control of the same comparison: the other divisor's replace forms differ.
    other = UNBIASED if covariance == MLE else MLE
    for metric in (COV_TRACE_RATIO, TEST_NLL):
        sub = {gs.n: n_value, gs.d: dim, gs.t: 3, gs.sigma2: sp.Rational(3, 2)}
        value = float(sp.N(formula(metric, REPLACE, other).subs(sub).doit(), 30))
        assert value != pytest.approx(_textbook_replace(metric, n_value, dim, 3, sig2, covariance),
                                      rel=1e-3)


def test_formula_refuses_metrics_without_exact_theory():
    for w in (ACCUMULATE, ACCUMULATE_SUBSAMPLE):
        for cov in COVS:
            for metric in (COV_DET_RATIO, LOG_COV_DET_RATIO, TEST_NLL, gs.INV_COV_TRACE):
                with pytest.raises(ValueError, match=metric):
                    formula(metric, w, cov)


# --------------------------------------------------------------------------- Monte Carlo


def _z_threshold(n_tests):
    # Two-sided Bonferroni threshold: family-wise false-alarm rate FAMILY_ALPHA.
    return stats.norm.ppf(1 - FAMILY_ALPHA / (2 * n_tests))


def _simulate_subsample(n, iterations, replicates, covariance, seed):
    """Literal accumulate-subsample in d = 1, vectorised over replicates."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    pool = rng.standard_normal((replicates, n))
    ddof = 0 if covariance == MLE else 1
    err, var = [], []
    for _ in range(iterations):
        keys = rng.random(pool.shape)
        idx = np.argsort(keys, axis=1)[:, :n]  # uniform n-subset without replacement
        sub = np.take_along_axis(pool, idx, axis=1)
        mu, s2 = sub.mean(axis=1), sub.var(axis=1, ddof=ddof)
        err.append(mu**2)
        var.append(s2)
        new = mu[:, None] + np.sqrt(s2)[:, None] * rng.standard_normal((replicates, n))
        pool = np.concatenate([pool, new], axis=1)
    return np.array(err), np.array(var)


@pytest.mark.parametrize("covariance", COVS)
def test_monte_carlo_accumulate_subsample_and_negative_control(covariance):
    n, iterations, reps = 4, 4, 200_000
    err, var = _simulate_subsample(n, iterations, reps, covariance, seed=20240611)
    means = np.concatenate([err.mean(axis=1), var.mean(axis=1)])
    sems = np.concatenate([err.std(axis=1, ddof=1), var.std(axis=1, ddof=1)]) / math.sqrt(reps)
    z_star = _z_threshold(2 * iterations)

    a, b = moment_sequences(ACCUMULATE_SUBSAMPLE, n, iterations, covariance)
    theory = np.array([float(x) for x in a + b])
    z = (means - theory) / sems
    assert np.all(np.abs(z) < z_star), z

    # Negative control: the same data against a wrong model (subsample drawn WITH
    # replacement, i.e. no finite-population corrections (N-n)/(N-1) and N/(N-1)) must be
    # rejected by the same test.
    a_w, b_w = gram_moments(ACCUMULATE_SUBSAMPLE, n, iterations, covariance,
                            with_replacement=True)
    wrong = np.array([float(x) for x in a_w + b_w])
    assert not np.allclose(wrong, theory)
    assert np.max(np.abs((means - wrong) / sems)) > z_star


@pytest.mark.parametrize("covariance", COVS)
def test_monte_carlo_replace_inverse_and_mahalanobis_terms(covariance):
    """E tr(Sigma_hat^-1 Sigma0) = d r^t and q_t, via the test NLL, with r = nu/(n-d-2)."""
    n, dim, iterations, reps = 14, 2, 3, 100_000
    rng = np.random.default_rng(np.random.SeedSequence(777))
    nu = n if covariance == MLE else n - 1
    mu = np.zeros((reps, dim))
    chol = np.broadcast_to(np.eye(dim), (reps, dim, dim))
    nll = []
    for _ in range(iterations):
        x = mu[:, None, :] + np.einsum("rij,rmj->rmi", chol, rng.standard_normal((reps, n, dim)))
        mu = x.mean(axis=1)
        z = x - mu[:, None, :]
        cov = np.einsum("rmi,rmj->rij", z, z) / nu
        inv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        nll.append(0.5 * (dim * math.log(2 * math.pi) + logdet + np.trace(inv, axis1=1, axis2=2)
                          + np.einsum("ri,rij,rj->r", mu, inv, mu)))
        chol = np.linalg.cholesky(cov)
    nll = np.array(nll)
    mean, sem = nll.mean(axis=1), nll.std(axis=1, ddof=1) / math.sqrt(reps)
    z_star = _z_threshold(iterations)
    th = np.array(gaussian_theory(REPLACE, n=n, dim=dim, iterations=iterations,
                                  covariance=covariance).values[TEST_NLL])
    assert np.all(np.abs((mean - th) / sem) < z_star)
    # Negative control: the other divisor's inverse factor r (with everything else right).
    other = UNBIASED if covariance == MLE else MLE
    nu_wrong = n if other == MLE else n - 1
    r_right, r_wrong = nu / (n - dim - 2), nu_wrong / (n - dim - 2)
    wrong = th.copy()
    q_right = q_wrong = 0.0
    for t in range(1, iterations + 1):
        q_right = r_right * (q_right + dim / n)
        q_wrong = r_wrong * (q_wrong + dim / n)
        wrong[t - 1] += 0.5 * (dim * (r_wrong**t - r_right**t) + q_wrong - q_right)
    assert np.max(np.abs((mean - wrong) / sem)) > z_star
