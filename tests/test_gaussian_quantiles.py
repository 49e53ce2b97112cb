"""Exact quantiles of the replace log-determinant ratio, and compare's quantile rows.

References, each independent of the Gil-Pelaez inversion under test:

* ``t = 1``, ``d = 1``: ``L = log(chi^2_{n-1} / nu)``, so its quantiles are scipy's
  chi-square quantiles;
* ``t = 1``, ``d = 2``: ``chi^2_{n-1} chi^2_{n-2}`` has the law of ``(chi^2_{2n-4})^2 / 4``
  (Legendre's duplication formula on the Mellin transforms);
* any ``t``, ``d``: large samples of sums of independent log-chi-square variables drawn
  with numpy (not the project's engines), tested by the exact binomial test of the
  count below each exact quantile, and the project's own Monte Carlo through
  :func:`collapse.compare`;
* large ``t d``: the normal limit, approached at rate ``1 / sqrt(t d)`` (Cornish-Fisher).

Statistical checks use fixed seeds; each states its false-alarm rate, and each has a
negative control (a 5% error in the quantile, or the theory scaled by 1.05) that it
must reject at the stated replicate count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import collapse
from collapse.analysis import gaussian_quantiles as gq
from collapse.analysis.gaussian import gaussian_theory
from collapse.simulate.stats import quantile_metric, quantile_name, quantile_row

PROBS = np.array([0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])


@pytest.mark.parametrize("covariance", ["mle", "unbiased"])
@pytest.mark.parametrize("n", [2, 3, 5, 20, 1000])
def test_one_step_one_dimension_is_the_chi_square_quantile(n, covariance):
    nu = n if covariance == "mle" else n - 1
    exact = np.log(stats.chi2.ppf(PROBS, n - 1) / nu)
    found = gq.log_det_ratio_quantile(PROBS, t=1, n=n, dim=1, covariance=covariance)
    sd = gq.log_det_law(1, n, 1, covariance).sd
    assert np.max(np.abs(found - exact)) < 1e-9 * sd
    # and the distribution function at the chi-square quantiles is the probability
    assert np.max(np.abs(gq.log_det_ratio_cdf(exact, 1, n, 1, covariance) - PROBS)) < 1e-10


@pytest.mark.parametrize("n", [3, 4, 10, 101])
def test_one_step_two_dimensions_matches_the_duplication_formula(n):
    # det W for W ~ Wishart_2(n-1, I) is chi2_{n-1} chi2_{n-2} ~ (chi2_{2n-4})^2 / 4
    exact = 2 * np.log(stats.chi2.ppf(PROBS, 2 * n - 4)) - math.log(4) - 2 * math.log(n)
    found = gq.log_det_ratio_quantile(PROBS, t=1, n=n, dim=2)
    assert np.max(np.abs(found - exact)) < 1e-9 * gq.log_det_law(1, n, 2).sd


def test_negative_control_a_wrong_degree_of_freedom_is_far_off():
    # The reference would catch an off-by-one in the degrees of freedom (n - i vs n - i + 1).
    wrong = np.log(stats.chi2.ppf(PROBS, 10) / 10)
    found = gq.log_det_ratio_quantile(PROBS, t=1, n=10, dim=1)
    assert np.max(np.abs(found - wrong)) > 0.05


@pytest.mark.parametrize("t, n, dim", [(2, 5, 1), (7, 10, 3), (3, 2, 1), (40, 30, 2)])
def test_midpoint_rule_agrees_with_adaptive_quadrature(t, n, dim):
    law = gq.log_det_law(t, n, dim)
    x = law.mean + law.sd * np.array([-3.0, -1.0, 0.0, 0.7, 2.5])
    a = gq.log_det_ratio_cdf(x, t, n, dim)
    b = gq.log_det_ratio_cdf(x, t, n, dim, method="quad")
    assert np.max(np.abs(a - b)) < 1e-9


@pytest.mark.parametrize("t, n, dim, covariance", [(1, 2, 1, "mle"), (5, 10, 3, "unbiased"),
                                                   (100, 100, 10, "mle")])
def test_density_integrates_to_one_with_the_exact_mean_and_variance(t, n, dim, covariance):
    law = gq.log_det_law(t, n, dim, covariance)
    x = law.mean + law.sd * np.linspace(-40, 12, 20001)
    f = gq.log_det_ratio_pdf(x, t, n, dim, covariance)
    mass = np.trapezoid(f, x)
    mean = np.trapezoid(x * f, x)
    var = np.trapezoid((x - mean) ** 2 * f, x)
    assert mass == pytest.approx(1, abs=1e-6)
    assert mean == pytest.approx(law.mean, abs=1e-5 * law.sd)
    assert var == pytest.approx(law.sd**2, rel=1e-5)
    # the exact mean is the one the theory module reports for log_cov_det_ratio
    theory = gaussian_theory("replace", n=n, dim=dim, iterations=t, covariance=covariance)
    assert theory.values["log_cov_det_ratio"][t - 1] == pytest.approx(law.mean, rel=1e-10)


def test_normal_limit_is_approached_at_rate_one_over_sqrt_t():
    # (q - mean)/sd -> z_p; the gap is the Cornish-Fisher term (z^2 - 1) skew / 6 = O(t^-1/2)
    z = stats.norm.ppf(PROBS[1:-1])
    gaps = []
    for t in (10, 1000):
        law = gq.log_det_law(t, 100, 10)
        found = (gq.log_det_ratio_quantile(PROBS[1:-1], t, 100, 10) - law.mean) / law.sd
        cornish_fisher = z + (z**2 - 1) * law.skewness / 6
        assert np.max(np.abs(found - cornish_fisher)) < 0.1 * np.max(np.abs(found - z)) + 1e-4
        gaps.append(np.max(np.abs(found - z)))
    assert gaps[1] < 0.2 * gaps[0]  # rate 1/sqrt(t): a factor 10 from t = 10 to 1000
    assert gaps[1] < 5e-3


def _log_det_samples(rng, t: int, n: int, dim: int, replicates: int) -> np.ndarray:
    """Direct draws of L_1..L_t: cumulative sums of sum_i log(chi2_{n-i}/n) (numpy only)."""
    dofs = n - np.arange(1, dim + 1)
    steps = np.log(rng.chisquare(dofs, size=(replicates, t, dim)) / n).sum(axis=-1)
    return np.cumsum(steps, axis=1)


@pytest.mark.parametrize("t, n, dim", [(10, 5, 1), (30, 20, 2), (3, 10, 3)])
def test_exact_quantiles_against_direct_monte_carlo(t, n, dim):
    # 20,000 direct draws; exact binomial test of the count below every exact quartile and
    # 5/95% point at every iteration, Bonferroni at 1e-3 per configuration (false alarm
    # <= 1e-3 per parametrisation; the seed is fixed).
    rng = np.random.default_rng(1000 + t)
    x = _log_det_samples(rng, t, n, dim, 20000)
    probabilities = (0.05, 0.25, 0.5, 0.75, 0.95)
    quantiles = gq.replace_log_det_quantiles(n, dim, t, probabilities=probabilities)
    p_values = [quantile_row(x[:, s], p, quantiles[p][s])[3]
                for p in probabilities for s in range(t)]
    assert min(p_values) > 1e-3 / len(p_values)
    # Negative control: a 5% error in the quantile at the last iteration, where |q| is
    # several standard deviations of the sample quantile, is rejected.
    if t >= 10:
        for p in (0.25, 0.5, 0.75):
            assert quantile_row(x[:, -1], p, 1.05 * quantiles[p][-1])[3] < 1e-6


def test_quantile_rows_hold_their_false_alarm_rate_and_reject_a_five_percent_error():
    # 200 seeds x 60 rows (quartiles x 20 iterations, n = 10, d = 2), 500 replicates each,
    # Holm at 1% (any Holm rejection iff the smallest p-value is <= alpha / m).  The
    # binomial test is exact, so at most 1% of seeds may alarm: 6 of 200 is the upper end
    # of what a 1% rate gives (P(Binomial(200, 0.01) >= 7) < 0.005).  Negative control:
    # quartiles 5% too large must alarm in every one of 50 other seeds at 2,000 replicates
    # (measured: 61% of seeds at 500 replicates, all at 2,000).
    quantiles = gq.replace_log_det_quantiles(10, 2, 20)

    def alarm(x, scale):
        p = [quantile_row(x[:, s], q, scale * quantiles[q][s])[3]
             for q in gq.QUARTILES for s in range(20)]
        return min(p) <= 0.01 / len(p)

    false_alarms = sum(alarm(_log_det_samples(np.random.default_rng(seed), 20, 10, 2, 500), 1.0)
                       for seed in range(200))
    assert false_alarms <= 6
    caught = sum(alarm(_log_det_samples(np.random.default_rng(10**4 + seed), 20, 10, 2, 2000),
                       1.05) for seed in range(50))
    assert caught == 50


def test_quantile_row_reports_the_sample_quantile_and_signs():
    x = np.arange(1, 1001, dtype=float)  # quantiles known exactly
    q, sem, z, p = quantile_row(x, 0.25, 250.5)
    assert q == pytest.approx(250.75) and p == 1.0 and z == 0.0
    assert sem == pytest.approx((x[277] - x[223]) / (2 * 1.959963984540054), rel=0.05)
    # a claimed quantile far above the sample: many replicates below it, z < 0
    assert quantile_row(x, 0.25, 400.0)[2] < -5
    assert quantile_row(x, 0.25, 100.0)[2] > 5


def test_quantile_names_round_trip():
    assert quantile_metric(quantile_name("log_cov_det_ratio", 0.75)) == ("log_cov_det_ratio", 0.75)
    for bad in ("log_cov_det_ratio", "mise_q", "x_q100", "x_q5", "_q50"):
        assert quantile_metric(bad) is None
    with pytest.raises(ValueError):
        quantile_name("x", 0.255)


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="n - 1 < dim"):
        gq.log_det_law(1, 3, 3)
    with pytest.raises(ValueError, match="probabilities"):
        gq.log_det_ratio_quantile(1.0, 1, 5, 1)
    with pytest.raises(ValueError, match="method"):
        gq.log_det_ratio_cdf(0.0, 1, 5, 1, method="simpson")


def test_compare_tests_the_quartiles_under_replace_only():
    result = collapse.compare(collapse.Gaussian(n=10, dim=2), "all", iterations=20,
                              replicates=2000, seed=3)
    frame = result.to_frame()
    rows = frame[frame.metric.str.startswith("log_cov_det_ratio_q")]
    assert set(rows.workflow) == {"replace"} and len(rows) == 3 * 20
    assert rows.consistent.all() and rows.p_adjusted.notna().all()
    # theory is the exact quantile, mean the sample quantile
    exact = gq.replace_log_det_quantiles(10, 2, 20)
    median = rows[rows.metric == "log_cov_det_ratio_q50"].sort_values("iteration")
    assert np.allclose(median.theory, exact[0.5])
    assert np.all(np.abs(median["mean"] - median.theory) < 5 * median["sem"])
    assert result.consistent
    # no quantile rows where the determinant is singular (n - 1 < dim)
    singular = collapse.compare(collapse.Gaussian(n=3, dim=3), "replace", iterations=2,
                                replicates=20, seed=0)
    assert not singular.to_frame().metric.str.contains("_q").any()


def test_compare_rejects_quartiles_scaled_by_five_percent():
    # Negative control at a documented size: n = 20, d = 2, 60 iterations, 4,000 replicates.
    bad = collapse.compare(collapse.Gaussian(n=20, dim=2), "replace", iterations=60,
                           replicates=4000, seed=0, theory_scale=1.05)
    frame = bad.to_frame()
    q = frame[frame.metric.str.startswith("log_cov_det_ratio_q")]
    rejected = (q.consistent == False).sum()  # noqa: E712 - nullable boolean column
    assert bad.verdict == "INCONSISTENT" and rejected >= 120
    # the rows that survive are the early iterations, where 5% of |q| is small
    assert q[q.consistent == False].iteration.min() <= 10  # noqa: E712


def test_fast_binomial_p_value_is_scipys():
    from collapse.simulate.stats import binomial_two_sided

    rng = np.random.default_rng(5)
    for r in (10, 37, 500, 4000):
        for p in (0.25, 0.5, 0.75, 0.05):
            for k in set(rng.integers(0, r + 1, size=12).tolist()) | {0, r, round(r * p)}:
                assert binomial_two_sided(k, r, p) == pytest.approx(
                    stats.binomtest(k, r, p).pvalue, rel=1e-9, abs=1e-300), (k, r, p)
