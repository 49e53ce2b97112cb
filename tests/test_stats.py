"""The shared theory-versus-simulation statistics (simulate.stats).

Calibration checks use synthetic replicates whose true mean is known exactly, so
they test the machinery alone; the settings' own Monte Carlo agreement is tested
in the setting-specific files.  Reference values come from numpy, scipy's Student
and normal laws, or simulation of the statistic itself; every calibration check has
a negative control at an error it is meant to detect (a few percent), and small
replicate counts are covered by ``tests/test_compare_calibration.py``.
"""

import gc
import math

import numpy as np
import pytest
from scipy import stats as sps

from collapse.simulate.stats import (
    DIVERGES,
    HEAVY,
    HEAVY_TAIL_SKEW,
    NO_THEORY,
    TESTED,
    compare,
    summarize,
)


def test_summarize_matches_numpy_and_handles_constants_and_infinities():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4))
    x[:, 2] = 0.0
    x[:, 3] = -np.inf
    s = summarize(x)
    assert np.allclose(s.mean[:2], x[:, :2].mean(axis=0))
    assert np.allclose(s.sem[:2], x[:, :2].std(axis=0, ddof=1) / math.sqrt(50))
    assert s.mean[2] == 0.0 and s.sem[2] == 0.0
    assert s.mean[3] == -np.inf and s.sem[3] == 0.0
    assert not np.isnan(s.mean).any() and not np.isnan(s.sem).any()


def _normal_case(seed, scale=1.0, reps=400, iters=20):
    rng = np.random.default_rng(seed)
    mu = np.linspace(1.0, 3.0, iters)
    x = mu + rng.normal(size=(reps, iters))
    theory = {"replace": {"m": tuple(mu * scale)}}
    return theory, {"replace": {"m": x}}


def test_false_alarm_rate_is_at_most_alpha_and_a_5_percent_error_is_caught(monkeypatch):
    # statsmodels' multipletests runs gc.collect() on every call, which costs ~0.2 s in
    # a large test process; the collection is irrelevant to the statistics.
    monkeypatch.setattr(gc, "collect", lambda *args, **kwargs: 0)
    # 400 independent calls with a correct theory; Holm controls the family-wise
    # rate at alpha = 0.05 per call.  Under H0 the count is <= Binomial(400, 0.05);
    # P(Binomial(400, 0.05) > 32) < 1e-3, so this check's own false-alarm rate is < 1e-3.
    alarms = sum(not compare("toy", *_normal_case(seed), alpha=0.05).consistent
                 for seed in range(400))
    assert alarms <= 32
    # Negative control on the same seeds: the theory 5% too high (1 to 3 standard errors
    # per row, 20 rows).  Simulated power of this design is 0.98; P(Binomial(400, 0.98)
    # < 370) < 1e-3, so a verdict with that power fails this with probability < 1e-3.
    caught = sum(not compare("toy", *_normal_case(seed, scale=1.05), alpha=0.05).consistent
                 for seed in range(400))
    assert caught >= 370


def test_negative_control_wrong_theory_is_rejected():
    # Theory 3% too high at every iteration: 1.5 to 4.5 standard errors with 2500
    # replicates, around Holm's threshold (3.5 for 20 rows at alpha = 0.01): rejected,
    # while the same replicates against the right theory pass.
    theory, samples = _normal_case(7, scale=1.03, reps=2500)
    result = compare("toy", theory, samples, alpha=0.01)
    assert not result.consistent
    assert result.verdicts[("replace", "m")] == "INCONSISTENT"
    assert compare("toy", *_normal_case(7, reps=2500), alpha=0.01).consistent


def test_statuses_no_theory_diverges_and_exact_infinities():
    x = np.ones((10, 3))
    x[:, 1] = np.inf
    samples = {"replace": {"a": x, "b": np.random.default_rng(0).normal(size=(10, 3)) + 5}}
    theory = {"replace": {"a": (1.0, math.inf, 1.0), "b": (math.inf, math.inf, math.inf)}}
    result = compare("toy", theory, samples)
    st = dict(zip([(r[3], r[2]) for r in result.table.rows], result.status))
    assert st[("a", 1)] == TESTED and st[("a", 2)] == TESTED  # inf == inf exactly
    assert st[("b", 1)] == DIVERGES
    assert result.consistent
    result2 = compare("toy", {"replace": {}}, {"replace": {"a": x}})
    assert set(result2.status) == {NO_THEORY}


def test_heavy_tail_flag_lognormal_but_not_chi_square():
    rng = np.random.default_rng(3)
    reps = 8000
    heavy = np.exp(rng.normal(scale=math.sqrt(6.0), size=(reps, 1)))  # log-variance 6
    light = rng.chisquare(1, size=(reps, 1))
    assert summarize(heavy, lower=0.0).skew_of_mean[0] > HEAVY_TAIL_SKEW
    assert summarize(light, lower=0.0).skew_of_mean[0] < HEAVY_TAIL_SKEW
    result = compare("toy", {"replace": {"h": (math.exp(3.0),)}}, {"replace": {"h": heavy}},
                     lower_bounds={"h": 0.0})
    assert result.status == [HEAVY]


def test_alpha_is_validated():
    theory, samples = _normal_case(0)
    with pytest.raises(ValueError, match="alpha"):
        compare("toy", theory, samples, alpha=1.5)


def test_student_reference_is_exact_for_normal_replicates():
    # 200,000 studentized means of R = 10 normal replicates: the fraction with p < 1e-3
    # is Binomial(200000, 1e-3) (mean 200, sd 14) under the Student-t_9 reference; the
    # check allows the 0.999 interval.  Negative control: the normal reference on the
    # same statistics gives 8 times that fraction, which the same check rejects.
    from collapse.simulate.stats import _p_values

    rng = np.random.default_rng(12)
    r, trials = 10, 200_000
    x = rng.normal(size=(trials, r))
    mean, sem = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(r)
    zero = np.zeros(trials)
    lo, hi = sps.binom.ppf([0.0005, 0.9995], trials, 1e-3)
    _, p_student = _p_values(zero, mean, sem, zero, df=r - 1)
    assert lo <= np.sum(p_student < 1e-3) <= hi
    _, p_normal = _p_values(zero, mean, sem, zero, df=None)
    assert np.sum(p_normal < 1e-3) > hi


def test_edgeworth_correction_tracks_the_skewed_t_statistic():
    # Studentized means of right-skewed Exp(1) samples (skewness 2, R = 100) have a
    # heavier lower tail than N(0, 1).  The corrected lower-tail probability must be
    # closer to the simulated one than the normal value is (200,000 t-statistics: the
    # simulated tail frequency has a relative sd of about 4%).
    from collapse.simulate.stats import _row_z

    rng = np.random.default_rng(11)
    reps, r = 200_000, 100
    x = rng.exponential(size=(reps, r))
    t = (x.mean(axis=1) - 1.0) / (x.std(axis=1, ddof=1) / math.sqrt(r))
    z0 = -2.5
    empirical = float(np.mean(t <= z0))
    # p-value of z0 is twice the lower tail; undo the factor 2 to compare tails.
    z, p_corrected = _row_z(1.0 - z0 * 0.1, 1.0, 0.1, 2.0 / math.sqrt(r))
    assert z == pytest.approx(z0)
    corrected = p_corrected / 2
    _, plain = _row_z(1.0 - z0 * 0.1, 1.0, 0.1, 0.0)
    assert plain / 2 == pytest.approx(sps.norm.cdf(z0))
    assert abs(corrected - empirical) < 0.5 * abs(plain / 2 - empirical)
    assert corrected > plain / 2  # right skew: negative z is less surprising


def test_summary_of_collapsed_tiny_values_does_not_underflow():
    # replace drives det ratios to 1e-170, whose squares underflow float64; the
    # standard error and skewness must scale with the data, not collapse to zero.
    rng = np.random.default_rng(5)
    x = rng.lognormal(size=(500, 3))
    big, tiny = summarize(x, lower=0.0), summarize(x * 1e-170, lower=0.0)
    assert np.allclose(tiny.sem, big.sem * 1e-170, rtol=1e-12)
    assert np.allclose(tiny.skew_of_mean, big.skew_of_mean, rtol=1e-9)
    assert (tiny.sem > 0).all()


def _atom_case(seed, mean, reps=2000, iters=30, top=0.5):
    """The law that makes 'every replicate at the bound' likeliest for its mean: the two
    points {0, top} with P(top) = mean / top."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((reps, iters)) < mean / top, top, 0.0)
    return {"replace": {"d": (mean,) * iters}}, {"replace": {"d": x}}


def test_rows_constant_at_a_bound_are_tested_by_the_range():
    # mean 1e-4 on [0, 0.5]: all 2000 replicates at 0 with probability (1 - 2e-4)^2000
    # = 0.67, written out here; read as an exact mean that constant would be rejected
    p_all_zero = (1 - 1e-4 / 0.5) ** 2000
    theory = {"replace": {"d": (1e-4,)}}
    samples = {"replace": {"d": np.zeros((2000, 1))}}
    options = {"lower_bounds": {"d": 0.0}, "attained": ("d",)}
    top = {"replace": {"d": (0.5,)}}  # the largest value at each iteration
    result = compare("toy", theory, samples, upper_bounds=top, **options)
    assert result.status == [TESTED] and result.consistent
    assert result.table.rows[0][8] == pytest.approx(p_all_zero, rel=1e-12)
    # negative controls: without the range the constant reads as the exact mean (and
    # is rejected); with it, a mean far from the bound cannot give such a sample
    assert not compare("toy", theory, samples, **options).consistent
    far = {"replace": {"d": (0.01,)}}  # (1 - 0.02)^2000 = 3e-18
    assert not compare("toy", far, samples, upper_bounds=top, **options).consistent
    beyond = {"replace": {"d": (0.6,)}}  # no law on [0, 0.5] has mean 0.6
    assert not compare("toy", beyond, samples, upper_bounds=top, **options).consistent


def test_the_range_rule_holds_its_false_alarm_rate_at_its_worst_case():
    # The two-point law attains the bound: at mean 2.3e-3 on [0, 0.5], P(all 2000 at 0)
    # = (1 - 4.6e-3)^2000 = 1.0e-4 < alpha = 0.01, so such a row is rejected exactly
    # when it happens.  Over 30 rows x 300 calls the rows that are constant number
    # Binomial(9000, 1e-4) (mean 0.9); every call stays consistent unless one is.
    options = {"lower_bounds": {"d": 0.0}, "attained": ("d",),
               "upper_bounds": {"replace": {"d": (0.5,) * 30}}}
    mean = 2.3e-3
    rate = (1 - mean / 0.5) ** 2000
    alarms = constant_rows = 0
    for seed in range(300):
        theory, samples = _atom_case(seed, mean)
        x = samples["replace"]["d"]
        constant_rows += int((x == 0).all(axis=0).sum())
        alarms += not compare("toy", theory, samples, alpha=0.01, **options).consistent
    # each alarm needs a constant row; P(Binomial(9000, 1.0e-4) > 6) < 1e-4
    assert alarms <= constant_rows <= 6
    assert rate < 0.01
    # the other rows are a rare event (about 9 replicates of 2000 above 0): heavy-tailed
    # for the studentized mean, which at the two-point law raised 33 false alarms in
    # these 300 calls when the tight logarithms of the nonzero replicates vouched for it
    theory, samples = _atom_case(0, mean)
    result = compare("toy", theory, samples, alpha=0.01, **options)
    x = samples["replace"]["d"]
    assert all(status == HEAVY for status, constant in
               zip(result.status, (x == 0).all(axis=0)) if not constant)


def test_rows_constant_at_the_top_of_the_range_and_a_rounded_bound():
    # every replicate has 3 distinct points of 3: at the top of [1, 3]; the expectation
    # is 2.9994, so p = (1 - (3 - 2.9994) / 2)^1000 = 0.74, written out here
    theory = {"replace": {"s": (2.9994,)}}
    samples = {"replace": {"s": np.full((1000, 1), 3.0)}}
    options = {"lower_bounds": {"s": 1.0}, "upper_bounds": {"replace": {"s": (3.0,)}}}
    result = compare("toy", theory, samples, **options)
    assert result.consistent and result.table.rows[0][8] == pytest.approx(
        (1 - 0.0006 / 2) ** 1000, rel=1e-9)
    # the metric's own arithmetic may round the top differently from its formula: an
    # entropy of three equal terms -(1/3) log(1/3), one ulp below log 3
    entropy = 0.0
    for _ in range(3):
        entropy += -(1 / 3) * math.log(1 / 3)
    assert entropy != math.log(3)
    near = {"replace": {"e": (entropy - 1e-4,)}}
    rounded = {"replace": {"e": np.full((1000, 1), entropy)}}
    options = {"lower_bounds": {"e": 0.0}, "upper_bounds": {"replace": {"e": (math.log(3),)}}}
    assert compare("toy", near, rounded, **options).consistent
    # negative control: no range given, the constant is read as the exact mean
    assert not compare("toy", near, rounded, lower_bounds={"e": 0.0}).consistent
