"""Monte Carlo engines of the Gaussian setting (:mod:`collapse.simulate.gaussian`).

Statistical checks use fixed seeds and a stated false-alarm rate: each family of
tests is Bonferroni-corrected to ``ALPHA = 1e-3`` in total, and every family has a
negative control (a deliberately wrong law or expectation) that the same check must
reject.  Expected values are computed here from first principles, not by the code
under test:

* iteration 1 (every workflow): ``E ||mu_hat||^2 = d sigma2 / n``,
  ``E tr Sigma_hat / (d sigma2) = c`` with ``c = (n-1)/n`` (MLE) or 1 (divisor m-1);
* replace: ``E tr ratio_t = c^t``; ``E ||mu_hat_t||^2 = (d sigma2 / n) sum_{k<t} c^k``;
  ``E log det ratio_t = t sum_{i=1}^d [psi((n-i)/2) + log(2/c_n)]`` (``c_n`` the divisor,
  Bartlett); ``E det ratio_t = (prod_i (n-i)/c_n)^t``;
  ``E test_nll_1 = 1/2 [d log 2 pi sigma2 + E log det ratio_1 + d r + d/(n-d-2)]`` with
  ``r = n/(n-d-2)`` (inverse-Wishart mean);
* accumulate, t = 2 (pool = real batch + one batch from model 1, which has mean
  ``xbar_0`` and covariance ``S_0``): ``E ||m_2||^2 = (d sigma2/n)(1 + c/4)`` and
  ``E tr P_2 / (d sigma2) = (c + c^2)/2 + c/(4n)``;
* accumulate-subsample, t = 2: simple random sampling of ``n`` of the ``N = 2n``
  pool points adds ``tr P_2 (N-n)/(n(N-1))`` to the squared mean error and scales the
  expected covariance by ``((n-1)/n) N/(N-1)``.

Laws are compared by two-sample Kolmogorov-Smirnov tests: ``stats`` against
``points`` (replace, accumulate), and the subsample engine against the plain
per-replicate loop of ``benchmarks/gaussian.py``.  The subset sampler is checked for
uniformity by a chi-square test over all subsets, the float32 subsample pool
against float64 on the same draws, and the output for bit-for-bit independence
of ``chunk_size``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    GAUSSIAN_METRICS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    REPLACE,
    TEST_NLL,
    UNBIASED,
    WORKFLOWS,
)
from collapse.simulate import gaussian_points, gaussian_stats
from collapse.simulate._linalg import safe_cholesky, tri_inv
from collapse.simulate.gaussian import simulate_gaussian

ALPHA = 1e-3


def _plain_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gaussian.py"
    spec = importlib.util.spec_from_file_location("benchmark_gaussian", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bonferroni_z(tests: int) -> float:
    return stats.norm.isf(ALPHA / (2 * tests))


def _z(sample: np.ndarray, expected: float) -> float:
    return (sample.mean() - expected) / (sample.std(ddof=1) / math.sqrt(sample.size))


def _z_failures(checks: list[tuple[str, np.ndarray, float]]) -> list[str]:
    limit = _bonferroni_z(len(checks))
    return [f"{name}: z={_z(sample, expected):.2f}" for name, sample, expected in checks
            if abs(_z(sample, expected)) > limit]


def _ks_failures(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> list[str]:
    level = ALPHA / len(pairs)
    failures = []
    for name, first, second in pairs:
        p = stats.ks_2samp(first, second).pvalue
        if p < level:
            failures.append(f"{name}: p={p:.2g}")
    return failures


# ----------------------------------------------------------------------------- laws

LAW = dict(n=8, dim=3, iterations=8)
LAW_ITERATIONS = (3, 8)
LAW_METRICS = (MEAN_SQ_ERROR, COV_TRACE_RATIO, LOG_COV_DET_RATIO, TEST_NLL)


def _law_pairs(first: dict, second: dict, label: str) -> list:
    return [(f"{label} {metric} t={t}", first[metric][:, t - 1], second[metric][:, t - 1])
            for metric in LAW_METRICS for t in LAW_ITERATIONS]


def test_stats_and_points_engines_have_the_same_law():
    pairs = []
    for workflow in (REPLACE, ACCUMULATE):
        stat = simulate_gaussian(workflow, replicates=3000, seed=11, engine="stats", **LAW)
        point = simulate_gaussian(workflow, replicates=3000, seed=12, engine="points", **LAW)
        pairs += _law_pairs(stat, point, workflow)
    assert not _ks_failures(pairs)


def test_law_check_rejects_a_different_divisor():
    # negative control: divisor m-1 in the points engine against m in the stats engine
    pairs = []
    for workflow in (REPLACE, ACCUMULATE):
        stat = simulate_gaussian(workflow, replicates=3000, seed=11, engine="stats", **LAW)
        point = simulate_gaussian(workflow, replicates=3000, seed=12, engine="points",
                                  covariance=UNBIASED, **LAW)
        pairs += _law_pairs(stat, point, workflow)
    assert len(_ks_failures(pairs)) >= 2


def test_law_check_rejects_a_mis_scaled_wishart(monkeypatch):
    # negative control: Bartlett factors of Wishart(n + 1) instead of Wishart(n - 1)
    honest = gaussian_stats.draw_bartlett

    def wrong(rng, reps, k, df, factor_out, logdet_out):
        honest(rng, reps, k, df + 2, factor_out, logdet_out)

    point = simulate_gaussian(REPLACE, replicates=3000, seed=12, engine="points", **LAW)
    monkeypatch.setattr(gaussian_stats, "draw_bartlett", wrong)
    stat = simulate_gaussian(REPLACE, replicates=3000, seed=11, engine="stats", **LAW)
    assert _ks_failures(_law_pairs(stat, point, REPLACE))


SUBSAMPLE_LAW = dict(n=6, dim=2, iterations=6)


def _plain_replicates(workflow, replicates, seed, **config):
    plain = _plain_module().plain_gaussian
    rng = np.random.default_rng(seed)
    runs = [plain(workflow, rng=rng, **config) for _ in range(replicates)]
    return {metric: np.array([run[metric] for run in runs]) for metric in GAUSSIAN_METRICS}


def test_subsample_engine_matches_the_plain_loop():
    engine = simulate_gaussian(ACCUMULATE_SUBSAMPLE, replicates=3000, seed=5, **SUBSAMPLE_LAW)
    plain = _plain_replicates(ACCUMULATE_SUBSAMPLE, 500, 6, **SUBSAMPLE_LAW)
    pairs = [(f"{metric} t={t}", engine[metric][:, t - 1], plain[metric][:, t - 1])
             for metric in LAW_METRICS for t in (2, 4, 6)]
    assert not _ks_failures(pairs)


def test_subsample_check_rejects_accumulate():
    # negative control: the same check must tell accumulate from accumulate-subsample
    engine = simulate_gaussian(ACCUMULATE, replicates=3000, seed=5, **SUBSAMPLE_LAW)
    plain = _plain_replicates(ACCUMULATE_SUBSAMPLE, 500, 6, **SUBSAMPLE_LAW)
    pairs = [(f"{metric} t={t}", engine[metric][:, t - 1], plain[metric][:, t - 1])
             for metric in LAW_METRICS for t in (2, 4, 6)]
    assert _ks_failures(pairs)


# ----------------------------------------------------------------------------- exact facts


def _replace_expectations(n, d, t, sigma2, unbiased):
    divisor = n - 1 if unbiased else n
    c = (n - 1) / divisor
    logdet_step = sum(special.digamma((n - i) / 2) + math.log(2 / divisor)
                      for i in range(1, d + 1))
    det_step = math.prod((n - i) / divisor for i in range(1, d + 1))
    return {
        MEAN_SQ_ERROR: d * sigma2 / n * sum(c**k for k in range(t)),
        COV_TRACE_RATIO: c**t,
        LOG_COV_DET_RATIO: t * logdet_step,
        COV_DET_RATIO: det_step**t,
    }


def _accumulate_t2(n, d, sigma2):
    c = (n - 1) / n
    trace = (c + c * c) / 2 + c / (4 * n)
    return d * sigma2 / n * (1 + c / 4), trace


@pytest.mark.parametrize("unbiased", [False, True])
def test_replace_and_first_iteration_agree_with_exact_expectations(unbiased):
    n, d, sigma2, T = 30, 2, 2.5, 6
    covariance = UNBIASED if unbiased else "mle"
    out = simulate_gaussian(REPLACE, n=n, dim=d, iterations=T, replicates=20000,
                            sigma2=sigma2, covariance=covariance, seed=3)
    checks = []
    for t in (1, 3, 6):
        for metric, value in _replace_expectations(n, d, t, sigma2, unbiased).items():
            checks.append((f"{metric} t={t}", out[metric][:, t - 1], value))
    divisor = n - 1 if unbiased else n
    r = divisor / (n - d - 2)
    nll_1 = 0.5 * (d * math.log(2 * math.pi * sigma2)
                   + _replace_expectations(n, d, 1, sigma2, unbiased)[LOG_COV_DET_RATIO]
                   + d * r + d / (n - d - 2) * divisor / n)
    checks.append(("test_nll t=1", out[TEST_NLL][:, 0], nll_1))
    assert not _z_failures(checks)


def test_exact_expectation_check_rejects_a_wrong_divisor():
    # negative control: MLE simulation against the expectations of divisor m-1
    n, d, sigma2, T = 30, 2, 2.5, 6
    out = simulate_gaussian(REPLACE, n=n, dim=d, iterations=T, replicates=20000,
                            sigma2=sigma2, seed=3)
    checks = [(f"{metric} t={t}", out[metric][:, t - 1], value)
              for t in (1, 3, 6)
              for metric, value in _replace_expectations(n, d, t, sigma2, True).items()]
    assert len(_z_failures(checks)) >= 3


SMALL_N = dict(n=5, dim=1, sigma2=1.0, iterations=4)


def _small_n_mean_checks(out, inflate: float = 1.0) -> list:
    """``mean_sq_error`` of replace at t = 2..4 against its exact expectation; ``inflate``
    scales the variance of every new batch mean after the first fit (the negative control)."""
    n, d, sigma2 = SMALL_N["n"], SMALL_N["dim"], SMALL_N["sigma2"]
    first = d * sigma2 / n
    checks = []
    for t in (2, 3, 4):
        exact = _replace_expectations(n, d, t, sigma2, False)[MEAN_SQ_ERROR]
        checks.append((f"mean_sq_error t={t}", out[MEAN_SQ_ERROR][:, t - 1],
                       first + (exact - first) * inflate))
    return checks


@pytest.mark.parametrize("engine", ["stats", "points"])
def test_replace_mean_noise_at_small_n(engine):
    """At n = 5 the new batch mean's covariance Sigma/n against Sigma/(n-1) is a 25% error in
    every term after the first; with 20,000 replicates the relative standard error of
    mean_sq_error is under 1.5%, so that error sits at z > 10 (power ~1) while the
    Bonferroni limit is z = 3.6 (false-alarm rate 1e-3)."""
    out = simulate_gaussian(REPLACE, replicates=20000, seed=21, engine=engine, **SMALL_N)
    assert not _z_failures(_small_n_mean_checks(out))


def test_small_n_mean_check_rejects_a_mean_noise_of_sigma_over_n_minus_1():
    # negative control: the same check against expectations whose new-mean variance is Sigma/(n-1)
    n = SMALL_N["n"]
    out = simulate_gaussian(REPLACE, replicates=20000, seed=21, engine="stats", **SMALL_N)
    assert len(_z_failures(_small_n_mean_checks(out, inflate=n / (n - 1)))) == 3


@pytest.mark.parametrize("engine", ["stats", "points"])
def test_accumulate_second_iteration_agrees_with_exact_expectations(engine):
    n, d, sigma2 = 5, 3, 0.5
    out = simulate_gaussian(ACCUMULATE, n=n, dim=d, iterations=2, replicates=40000,
                            sigma2=sigma2, seed=8, engine=engine)
    mean_sq, trace = _accumulate_t2(n, d, sigma2)
    checks = [("mean_sq_error t=2", out[MEAN_SQ_ERROR][:, 1], mean_sq),
              ("cov_trace_ratio t=2", out[COV_TRACE_RATIO][:, 1], trace),
              ("mean_sq_error t=1", out[MEAN_SQ_ERROR][:, 0], d * sigma2 / n),
              ("cov_trace_ratio t=1", out[COV_TRACE_RATIO][:, 0], (n - 1) / n)]
    assert not _z_failures(checks)
    # Negative control at the size of error this check is meant to catch: both t = 2
    # expectations 2% too high (about 5 and 8 standard errors at 40000 replicates)
    # must be rejected by the same family of tests.
    wrong = [(name, sample, 1.02 * value) for name, sample, value in checks]
    failures = _z_failures(wrong)
    assert any("mean_sq_error t=2" in f for f in failures)
    assert any("cov_trace_ratio t=2" in f for f in failures)


def test_subsample_second_iteration_agrees_with_exact_expectations():
    n, d, sigma2 = 5, 3, 0.5
    out = simulate_gaussian(ACCUMULATE_SUBSAMPLE, n=n, dim=d, iterations=2,
                            replicates=40000, sigma2=sigma2, seed=9)
    mean_sq, trace = _accumulate_t2(n, d, sigma2)
    pool = 2 * n
    checks = [("mean_sq_error t=2", out[MEAN_SQ_ERROR][:, 1],
               mean_sq + d * sigma2 * trace * (pool - n) / (n * (pool - 1))),
              ("cov_trace_ratio t=2", out[COV_TRACE_RATIO][:, 1],
               (n - 1) / n * pool / (pool - 1) * trace)]
    assert not _z_failures(checks)
    # negative control: the accumulate expectations (no subsampling) are rejected
    wrong = [("mean_sq_error t=2", out[MEAN_SQ_ERROR][:, 1], mean_sq),
             ("cov_trace_ratio t=2", out[COV_TRACE_RATIO][:, 1], trace)]
    assert len(_z_failures(wrong)) == 2


# ----------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("workflow,engine", [(REPLACE, "stats"), (REPLACE, "points"),
                                             (ACCUMULATE, "stats"), (ACCUMULATE, "points"),
                                             (ACCUMULATE_SUBSAMPLE, "points")])
@pytest.mark.parametrize("n,dim", [(7, 3), (4, 6), (9, 3)])
def test_output_does_not_depend_on_chunk_size(workflow, engine, n, dim):
    runs = [simulate_gaussian(workflow, n=n, dim=dim, iterations=7, replicates=200, seed=4,
                              engine=engine, chunk_size=size)
            for size in (None, 1, 70, 130)]
    for run in runs[1:]:
        for metric in GAUSSIAN_METRICS:
            assert np.array_equal(run[metric], runs[0][metric])


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_seed_reproducibility(workflow):
    config = dict(n=6, dim=2, iterations=5, replicates=50)
    first = simulate_gaussian(workflow, seed=21, **config)
    again = simulate_gaussian(workflow, seed=21, **config)
    other = simulate_gaussian(workflow, seed=22, **config)
    assert list(first) == list(GAUSSIAN_METRICS)
    for metric in GAUSSIAN_METRICS:
        assert first[metric].shape == (50, 5) and first[metric].dtype == np.float64
        assert np.array_equal(first[metric], again[metric])
        assert not np.array_equal(first[metric], other[metric])


def test_first_iteration_is_shared_by_workflows_engines_and_replicate_counts():
    config = dict(n=9, dim=3, iterations=3, seed=2)
    reference = simulate_gaussian(REPLACE, replicates=80, engine="stats", **config)
    runs = [simulate_gaussian(ACCUMULATE, replicates=80, **config),
            simulate_gaussian(ACCUMULATE_SUBSAMPLE, replicates=80, **config),
            simulate_gaussian(REPLACE, replicates=80, engine="points", **config)]
    for run in runs:
        for metric in GAUSSIAN_METRICS:
            assert np.array_equal(run[metric][:, 0], reference[metric][:, 0])
    fewer = simulate_gaussian(REPLACE, replicates=30, engine="stats", **config)
    for metric in GAUSSIAN_METRICS:
        assert np.array_equal(fewer[metric][:, 0], reference[metric][:30, 0])


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_auto_engine_and_sigma2_scaling(workflow):
    config = dict(n=6, dim=3, iterations=4, replicates=40, seed=13)
    auto = simulate_gaussian(workflow, **config)
    explicit = simulate_gaussian(workflow, engine="points" if workflow == ACCUMULATE_SUBSAMPLE
                                 else "stats", **config)
    scaled = simulate_gaussian(workflow, sigma2=4.0, **config)
    for metric in GAUSSIAN_METRICS:
        assert np.array_equal(auto[metric], explicit[metric])
    # the engines simulate x / sigma: only the squared error and the NLL carry units
    assert np.array_equal(scaled[MEAN_SQ_ERROR], 4.0 * auto[MEAN_SQ_ERROR])
    for metric in (COV_TRACE_RATIO, COV_DET_RATIO, LOG_COV_DET_RATIO):
        assert np.array_equal(scaled[metric], auto[metric])
    np.testing.assert_allclose(scaled[TEST_NLL], auto[TEST_NLL] + 1.5 * math.log(4.0))


def _rounding_only(first: dict, second: dict) -> bool:
    """Paired replicates differ by far less than the Monte Carlo standard error."""
    for metric in (MEAN_SQ_ERROR, COV_TRACE_RATIO, LOG_COV_DET_RATIO, TEST_NLL):
        error = second[metric].std(axis=0, ddof=1) / math.sqrt(second[metric].shape[0])
        if np.any(np.abs((first[metric] - second[metric]).mean(axis=0)) > 1e-2 * error):
            return False
    return True


def test_float32_subsample_pool_only_rounds(monkeypatch):
    # n >= 2 (d + 1): the pool is stored in float32; the same draws in float64 must give
    # the same replicates up to rounding, at every iteration
    config = dict(n=24, dim=3, iterations=40, replicates=200)
    single = simulate_gaussian(ACCUMULATE_SUBSAMPLE, seed=6, **config)
    monkeypatch.setattr(gaussian_points, "FLOAT32_POOL", False)
    double = simulate_gaussian(ACCUMULATE_SUBSAMPLE, seed=6, **config)
    other = simulate_gaussian(ACCUMULATE_SUBSAMPLE, seed=7, **config)
    assert not np.array_equal(single[MEAN_SQ_ERROR], double[MEAN_SQ_ERROR])
    for metric in GAUSSIAN_METRICS:
        np.testing.assert_allclose(single[metric], double[metric], rtol=1e-3, atol=1e-6)
    assert _rounding_only(single, double)
    # negative control: independent replicates are not "rounding only"
    assert not _rounding_only(single, other)


def test_subsets_are_uniform():
    # every 3-subset of a pool of 6 (t = 2, n = 3) is equally likely: chi-square over 20
    rng = np.random.default_rng(0)
    draws = gaussian_points.draw_subset(rng, 20000, 6, 3)
    assert np.all(np.diff(draws, axis=1) > 0) and draws.min() >= 0 and draws.max() < 6
    codes = (draws * np.array([36, 6, 1])).sum(axis=1)
    _, counts = np.unique(codes, return_counts=True)
    assert counts.size == math.comb(6, 3)
    assert stats.chisquare(counts).pvalue > ALPHA
    # negative control: resolving repeats by taking the next free value is not uniform
    biased = np.sort(rng.integers(0, 6, size=(20000, 3)), axis=1)
    for j in (1, 2):
        clash = biased[:, j] <= biased[:, j - 1]
        biased[clash, j] = biased[clash, j - 1] + 1
    ok = biased[:, 2] < 6
    _, wrong = np.unique((biased[ok] * np.array([36, 6, 1])).sum(axis=1),
                         return_counts=True)
    assert stats.chisquare(wrong).pvalue < ALPHA


# ----------------------------------------------------------------------------- degenerate


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("engine", ["auto", "points"])
def test_singular_covariances(workflow, engine):
    out = simulate_gaussian(workflow, n=3, dim=5, iterations=12, replicates=64, seed=1,
                            engine=engine)
    assert np.all(out[COV_DET_RATIO] == 0)
    assert np.all(out[LOG_COV_DET_RATIO] == -np.inf)
    assert np.all(out[TEST_NLL] == np.inf)
    for metric in (MEAN_SQ_ERROR, COV_TRACE_RATIO):
        assert np.all(np.isfinite(out[metric])) and np.all(out[metric] >= 0)


@pytest.mark.parametrize("engine", ["stats", "points"])
def test_replace_collapse_for_a_hundred_iterations(engine):
    singular = simulate_gaussian(REPLACE, n=10, dim=10, iterations=100, replicates=64,
                                 seed=2, engine=engine)
    assert np.all(singular[LOG_COV_DET_RATIO] == -np.inf)
    assert np.all(singular[TEST_NLL] == np.inf)
    trace = singular[COV_TRACE_RATIO]
    assert np.all(np.isfinite(trace)) and np.all(trace >= 0)
    assert np.median(trace[:, -1]) < 1e-3 * np.median(trace[:, 0])
    # one more point: nonsingular, the determinant collapses in log space
    collapse = simulate_gaussian(REPLACE, n=11, dim=10, iterations=100, replicates=64,
                                 seed=2, engine="stats")
    assert np.all(np.isfinite(collapse[LOG_COV_DET_RATIO]))
    assert np.median(collapse[LOG_COV_DET_RATIO][:, -1]) < -500
    assert not np.any(np.isnan(collapse[TEST_NLL]))
    assert np.all(collapse[TEST_NLL][:, -1] > collapse[TEST_NLL][:, 0])


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_nonsingular_values_are_finite_and_mutually_consistent(workflow):
    d, sigma2 = 3, 1.7
    out = simulate_gaussian(workflow, n=12, dim=d, iterations=20, replicates=64, seed=3,
                            sigma2=sigma2)
    for metric in GAUSSIAN_METRICS:
        assert np.all(np.isfinite(out[metric]))
    assert np.all(out[COV_DET_RATIO] > 0)
    # Per replicate, facts that hold for any positive definite Sigma_hat and any mu_hat:
    # det = exp(log det); AM-GM over the eigenvalues of Sigma_hat / sigma2,
    # det^(1/d) <= tr / d; Gibbs, cross-entropy >= entropy of N(0, sigma2 I_d).
    np.testing.assert_allclose(out[COV_DET_RATIO], np.exp(out[LOG_COV_DET_RATIO]), rtol=1e-10)
    assert np.all(out[COV_DET_RATIO] ** (1 / d) <= out[COV_TRACE_RATIO] * (1 + 1e-12))
    entropy = 0.5 * d * math.log(2 * math.pi * math.e * sigma2)
    assert np.all(out[TEST_NLL] >= entropy - 1e-12)
    # ... and the KL divergence is zero only at the truth: it is positive here.
    assert np.all(out[TEST_NLL] > entropy)


def test_safe_cholesky_isolates_singular_slices():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((9, 12, 4))
    sym = np.matmul(z.transpose(0, 2, 1), z)
    sym[[2, 7]] = np.outer([1.0, 2.0, 0.0, 1.0], [1.0, 2.0, 0.0, 1.0])  # rank one
    factor, failed = safe_cholesky(sym)
    assert failed.tolist() == [i in (2, 7) for i in range(9)]
    np.testing.assert_allclose(np.matmul(factor, factor.transpose(0, 2, 1)), sym,
                               atol=1e-12)
    for i in (0, 5, 8):
        assert np.array_equal(factor[i], np.linalg.cholesky(sym[i]))


@pytest.mark.parametrize("k", [1, 5, 16, 17, 40, 100])
def test_tri_inv_inverts_lower_triangular_stacks(k):
    rng = np.random.default_rng(k)
    z = rng.standard_normal((6, k + 5, k))
    lower = np.linalg.cholesky(np.matmul(z.transpose(0, 2, 1), z))
    inverse = tri_inv(lower)
    np.testing.assert_allclose(np.matmul(lower, inverse), np.broadcast_to(np.eye(k),
                                                                          lower.shape),
                               atol=1e-10)
    assert np.all(np.triu(inverse, 1) == 0)


# ----------------------------------------------------------------------------- arguments


GOOD = dict(n=5, dim=2, iterations=3, replicates=4)


@pytest.mark.parametrize("override,needle", [
    (dict(n=1), "n must be an integer >= 2"),
    (dict(n=2.5), "n must be an integer >= 2"),
    (dict(n=True), "n must be an integer >= 2"),
    (dict(dim=0), "dim must be an integer >= 1"),
    (dict(iterations=0), "iterations must be an integer >= 1"),
    (dict(replicates=0), "replicates must be an integer >= 1"),
    (dict(sigma2=0.0), "sigma2 must be a finite number > 0"),
    (dict(sigma2=-1.0), "sigma2 must be a finite number > 0"),
    (dict(sigma2=float("nan")), "sigma2 must be a finite number > 0"),
    (dict(sigma2=float("inf")), "sigma2 must be a finite number > 0"),
    (dict(covariance="biased"), "covariance must be one of mle, unbiased"),
    (dict(engine="fast"), "engine must be one of auto, stats, points"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(chunk_size=0), "chunk_size must be an integer >= 1"),
])
def test_bad_arguments_name_the_parameter_and_range(override, needle):
    with pytest.raises(ValueError) as error:
        simulate_gaussian(REPLACE, **{**GOOD, **override})
    message = str(error.value)
    assert needle in message and "\n" not in message


def test_bad_workflow_and_engine_combination():
    with pytest.raises(ValueError, match="workflow must be one of replace, accumulate, "
                                         "accumulate-subsample"):
        simulate_gaussian("recycle", **GOOD)
    # the stats engine keeps whole batches: no subsample, and no fresh real batches that
    # leave the span of a real batch of n - 1 < d dimensions
    with pytest.raises(ValueError, match="engine 'stats' runs rules that keep whole batches"):
        simulate_gaussian(ACCUMULATE_SUBSAMPLE, engine="stats", **GOOD)
    with pytest.raises(ValueError, match="not fresh; use 'points' or 'auto'"):
        simulate_gaussian("fresh", engine="stats", **{**GOOD, "n": 3, "dim": 4})
