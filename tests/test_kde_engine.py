"""Tests of the KDE Monte Carlo engine (:mod:`collapse.simulate.kde`) and its truths (:mod:`collapse.simulate.datasets`).

Monte Carlo checks use fixed seeds and two-sided z-tests of a replicate mean against an
expectation derived here, independently of the engine, with Holm's adjustment inside
each test function: a correct engine fails a given check with probability at most
``ALPHA`` over seeds (normal approximation to the mean).  Each check has a negative
control, a deliberately wrong expectation that the same check must reject.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp
from statsmodels.stats.multitest import multipletests

from collapse.analysis.errors import CollapseError
from collapse.analysis.truths import BLOBS_CENTRES, blobs_truth, gaussian_truth
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    MISE,
    REPLACE,
    TEST_NLL,
    WORKFLOWS,
)
from collapse.simulate import kde
from collapse.simulate.datasets import (
    TRUTHS,
    circles_design,
    make_truth_sampler,
    moons_design,
    swiss_roll_points,
    truth_dim,
)
from collapse.simulate.kde import heldout_nll, realised_mise, rule_bandwidth, simulate_kde

#: Family-wise false-alarm rate of every Monte Carlo test function below.
ALPHA = 1e-3


def z_and_p(samples: np.ndarray, expected) -> tuple[np.ndarray, np.ndarray]:
    """Per column: ``z = (mean - expected) / sem`` and the two-sided normal p-value."""
    samples = np.asarray(samples, dtype=float)
    mean = samples.mean(axis=0)
    sem = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    z = (mean - np.asarray(expected, dtype=float)) / sem
    return z, 2.0 * stats.norm.sf(np.abs(z))


def holm_rejects(p_values) -> np.ndarray:
    """Holm step-down at family-wise level ``ALPHA``: which hypotheses are rejected."""
    reject, _, _, _ = multipletests(np.ravel(p_values), alpha=ALPHA, method="holm")
    return reject


# --------------------------------------------------------------------------- independent references


def textbook_expected_mise(n: int, h: float, sigma0: float, d: int) -> float:
    """``E int (p_hat - p0)^2`` for a KDE of ``n`` i.i.d. ``N(0, sigma0^2 I_d)`` points.

    ``E int p_hat^2 = (1/n) phi_{h sqrt2}(0) + (1 - 1/n) E phi_{h sqrt2}(Y - Y')`` with
    ``Y - Y' ~ N(0, 2 sigma0^2 I)``, so the second term is ``phi_{sqrt(2h^2 + 2 sigma0^2)}(0)``;
    ``E int p_hat p0 = E phi_{sqrt(h^2+sigma0^2)}(Y) = phi_{sqrt(h^2 + 2 sigma0^2)}(0)``;
    ``int p0^2 = phi_{sigma0 sqrt2}(0)``; and ``phi_s(0) = (2 pi s^2)^(-d/2)``.
    """
    s2 = sigma0**2
    e_int_p2 = (4 * math.pi) ** (-d / 2) * (h ** (-d) / n + (1 - 1 / n) * (h * h + s2) ** (-d / 2))
    e_cross = (2 * math.pi) ** (-d / 2) * (h * h + 2 * s2) ** (-d / 2)
    int_p0_2 = (4 * math.pi * s2) ** (-d / 2)
    return e_int_p2 - 2 * e_cross + int_p0_2


def brute_mixture_density(x: np.ndarray, mixture) -> np.ndarray:
    w, mu, s = mixture.arrays()
    d = x.shape[-1]
    out = np.zeros(x.shape[:-1])
    for wk, mk, sk in zip(w, mu, s):
        out += wk * stats.multivariate_normal(mean=mk, cov=sk * sk * np.eye(d)).pdf(x).reshape(x.shape[:-1])
    return out


def brute_kde_density(x: np.ndarray, points: np.ndarray, h: float) -> np.ndarray:
    """``(1/m) sum_y phi_h(x - y)`` by direct evaluation, ``x (k, d)``, ``points (m, d)``."""
    d = points.shape[-1]
    sq = ((x[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1)
    return np.exp(-sq / (2 * h * h)).mean(axis=1) / (2 * math.pi * h * h) ** (d / 2)


def brute_nll(points: np.ndarray, heldout: np.ndarray, h: float) -> np.ndarray:
    """Mean held-out NLL by direct differences and scipy's logsumexp; leading axes = replicates."""
    d = points.shape[-1]
    diff = heldout[..., :, None, :] - points[..., None, :, :]
    log_k = -(diff**2).sum(axis=-1) / (2 * h * h) - 0.5 * d * math.log(2 * math.pi * h * h)
    log_p = logsumexp(log_k, axis=-1) - math.log(points.shape[-2])
    return -log_p.mean(axis=-1)


def brute_mise(points: np.ndarray, h: float, mixture) -> np.ndarray:
    """Realised MISE from explicit double sums of Gaussian overlaps (no matrix tricks)."""
    d = points.shape[-1]
    m = points.shape[-2]
    w, mu, s = mixture.arrays()

    def phi0(var):
        return (2 * math.pi * var) ** (-d / 2)

    pair = points[..., :, None, :] - points[..., None, :, :]
    int_p2 = (phi0(2 * h * h) * np.exp(-(pair**2).sum(-1) / (4 * h * h))).sum(axis=(-1, -2)) / m**2
    cross = 0.0
    for wk, mk, sk in zip(w, mu, s):
        var = h * h + sk * sk
        cross = cross + wk * (phi0(var) * np.exp(-((points - mk) ** 2).sum(-1) / (2 * var))).sum(-1) / m
    p0_2 = sum(
        wk * wl * phi0(sk * sk + sl * sl) * math.exp(-float(((mk - ml) ** 2).sum()) / (2 * (sk * sk + sl * sl)))
        for wk, mk, sk in zip(w, mu, s)
        for wl, ml, sl in zip(w, mu, s)
    )
    return int_p2 - 2 * cross + p0_2


def run_observed(workflow: str, **kwargs):
    """Run the engine and record ``(t, D_t, h_t, heldout)`` for every chunk and iteration."""
    seen: dict[int, list] = {}
    heldouts: list = []

    def observer(t, d_t, h, heldout):
        seen.setdefault(t, []).append((np.array(d_t), h))
        if t == 1:
            heldouts.append(np.array(heldout))

    result = kde._simulate(kde.make_config(workflow, **kwargs), observer)
    sets = {t: np.concatenate([a for a, _ in parts]) for t, parts in seen.items()}
    bandwidths = {t: parts[0][1] for t, parts in seen.items()}
    return result, sets, bandwidths, np.concatenate(heldouts)


# --------------------------------------------------------------------------- exact identities


@pytest.mark.parametrize("sigma0, points", [(1.3, [-1.2, 0.1, 0.15, 2.4, -0.5, 3.0, 0.7])])
def test_realised_mise_matches_quadrature_1d(sigma0, points):
    h = 0.4
    pts = np.asarray(points)[:, None]
    truth = gaussian_truth(1, sigma0)

    def sq_err(x):
        xx = np.array([[x]])
        return float((brute_kde_density(xx, pts, h) - brute_mixture_density(xx, truth))[0] ** 2)

    value, abserr = integrate.quad(sq_err, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11, limit=200)
    assert abserr < 1e-10
    assert realised_mise(pts, h, truth) == pytest.approx(value, rel=1e-8)


@pytest.mark.parametrize("truth_name", ["gaussian", "blobs"])
def test_realised_mise_matches_grid_integration_2d(truth_name):
    # The integrand is smooth and decays like a Gaussian, so a Riemann sum on a fine
    # grid over a box holding all its mass is accurate far beyond the tolerance.
    rng = np.random.default_rng(11)
    if truth_name == "gaussian":
        truth, pts, half = gaussian_truth(2, 0.8), rng.normal(0, 0.8, (6, 2)), 8.0
    else:
        truth, pts, half = blobs_truth(), make_truth_sampler("blobs").sample(rng, 6), 12.0
    h, step = 0.45, 0.03
    axis = np.arange(-half, half + step / 2, step)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], axis=-1)
    err = brute_kde_density(grid, pts, h) - brute_mixture_density(grid, truth)
    numeric = float((err**2).sum() * step * step)
    assert realised_mise(pts, h, truth) == pytest.approx(numeric, rel=1e-9)
    assert realised_mise(pts, h, truth) == pytest.approx(float(brute_mise(pts, h, truth)), rel=1e-12)


def test_heldout_nll_matches_brute_force_including_total_underflow():
    rng = np.random.default_rng(5)
    pts = rng.normal(size=(3, 20, 2))
    test = rng.normal(size=(3, 40, 2)) * 3.0
    for h in (0.5, 0.02, 0.003):  # at 0.003 every kernel of most held-out points underflows
        got = heldout_nll(pts, test, h)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, brute_nll(pts, test, h), rtol=1e-10)


def test_incremental_pool_sums_equal_scratch():
    rng = np.random.default_rng(3)
    c, d, h, n = 5, 2, 0.3, 7
    heldout = rng.normal(size=(c, 30, d)) * 2.5
    batches = [rng.normal(size=(c, n, d)) * (1 + 0.5 * i) for i in range(6)]
    mixture = blobs_truth()
    sums = kde._PoolSums(heldout, h, mixture)
    for i, batch in enumerate(batches):
        old = np.concatenate(batches[:i], axis=1) if i else None
        sums.add(batch, old)
        pool = np.concatenate(batches[: i + 1], axis=1)
        diff = heldout[:, :, None, :] - pool[:, None, :, :]
        log_ref = logsumexp(-(diff**2).sum(-1) / (2 * h * h), axis=-1)
        pdiff = pool[:, :, None, :] - pool[:, None, :, :]
        pair_ref = np.exp(-(pdiff**2).sum(-1) / (4 * h * h)).sum(axis=(-1, -2))
        w, mu, s = mixture.arrays()
        var = h * h + s**2
        cross_ref = sum(
            wk * (2 * math.pi * vk) ** (-d / 2) * np.exp(-((pool - mk) ** 2).sum(-1) / (2 * vk)).sum(-1)
            for wk, mk, vk in zip(w, mu, var)
        )
        np.testing.assert_allclose(sums.log_heldout, log_ref, rtol=1e-10)
        np.testing.assert_allclose(sums.pair, pair_ref, rtol=1e-10)
        np.testing.assert_allclose(sums.cross, cross_ref, rtol=1e-10)
        assert sums.size == pool.shape[1]


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("bandwidth", [0.4, "scott"])
def test_engine_metrics_equal_brute_force_on_its_training_sets(workflow, bandwidth):
    kwargs = dict(n=6, iterations=5, replicates=20, truth="blobs", dim=2, bandwidth=bandwidth,
                  heldout=25, seed=9, chunk_size=16)
    result, sets, bandwidths, heldout = run_observed(workflow, **kwargs)
    mixture = blobs_truth()
    for t in range(1, 6):
        d_t, h = sets[t], bandwidths[t]
        m = d_t.shape[1]
        assert m == (t * 6 if workflow == ACCUMULATE else 6)
        if bandwidth == "scott":
            # sklearn's Scott rule on |D_t| points in d = 2: m^(-1/6)
            assert h == pytest.approx(m ** (-1 / 6), rel=1e-15)
        else:
            assert h == 0.4
        np.testing.assert_allclose(result[TEST_NLL][:, t - 1], brute_nll(d_t, heldout, h), rtol=1e-10)
        np.testing.assert_allclose(result[MISE][:, t - 1], brute_mise(d_t, h, mixture), rtol=1e-9)


def test_training_sets_follow_the_workflow_definitions():
    n, T = 5, 4
    _, rep, _, _ = run_observed(REPLACE, n=n, iterations=T, replicates=3, heldout=2, seed=1)
    _, acc, _, _ = run_observed(ACCUMULATE, n=n, iterations=T, replicates=3, heldout=2, seed=1)
    _, sub, _, _ = run_observed(ACCUMULATE_SUBSAMPLE, n=n, iterations=T, replicates=3, heldout=2, seed=1)
    # iteration 1: the same real data for every workflow
    np.testing.assert_array_equal(rep[1], acc[1])
    np.testing.assert_array_equal(rep[1], sub[1])
    for t in range(2, T + 1):
        # accumulate: the previous pool is a prefix of the new one, which has t n points
        np.testing.assert_array_equal(acc[t][:, : (t - 1) * n], acc[t - 1])
        assert acc[t].shape[1] == t * n and rep[t].shape[1] == n and sub[t].shape[1] == n
        # replace: entirely new points
        assert not np.isin(rep[t], rep[t - 1]).any()
        # subsample: n distinct points of its own pool (real points plus draws of earlier models)
        for r in range(3):
            rows = {tuple(p) for p in sub[t][r]}
            assert len(rows) == n


# --------------------------------------------------------------------------- Monte Carlo checks


def test_t1_mise_matches_textbook_formula_with_negative_control():
    n, h, sigma0, R = 10, 0.5, 1.3, 4000
    p_right, p_wrong = [], []
    for d in (1, 2):
        out = simulate_kde(REPLACE, n=n, iterations=1, replicates=R, dim=d, sigma0=sigma0,
                           bandwidth=h, heldout=1, seed=100 + d)
        sample = out[MISE][:, 0]
        expected = textbook_expected_mise(n, h, sigma0, d)
        # negative control: forget that the n diagonal pairs differ from the others
        # (the classic slip of writing E int p_hat^2 = phi_{sqrt(2h^2+2s^2)}(0) + h^-d / n)
        wrong = expected + (4 * math.pi) ** (-d / 2) * (h * h + sigma0**2) ** (-d / 2) / n
        p_right.append(z_and_p(sample, expected)[1])
        p_wrong.append(z_and_p(sample, wrong)[1])
    assert not holm_rejects(p_right).any()
    assert holm_rejects(p_wrong).all()


def _second_moment_per_point(d_t: np.ndarray) -> np.ndarray:
    return (d_t**2).mean(axis=(-1, -2))


def test_replace_blur_grows_by_h2_per_generation():
    n, T, h, sigma0, d, R = 10, 6, 0.5, 1.2, 2, 3000
    _, sets, _, _ = run_observed(REPLACE, n=n, iterations=T, replicates=R, dim=d, sigma0=sigma0,
                                 bandwidth=h, heldout=1, seed=21, chunk_size=1024)
    moments = np.stack([_second_moment_per_point(sets[t]) for t in range(1, T + 1)], axis=1)
    means = np.stack([sets[t].mean(axis=(-1, -2)) for t in range(1, T + 1)], axis=1)
    t = np.arange(1, T + 1)
    # a point of D_t is a real point plus t - 1 independent N(0, h^2 I) steps
    right = sigma0**2 + (t - 1) * h * h
    wrong = sigma0**2 + t * h * h  # negative control: one kernel step too many
    p_ok = np.concatenate([z_and_p(moments, right)[1], z_and_p(means, np.zeros(T))[1]])
    assert not holm_rejects(p_ok).any()
    assert holm_rejects(z_and_p(moments, wrong)[1]).all()


@pytest.mark.parametrize("workflow", [ACCUMULATE, ACCUMULATE_SUBSAMPLE])
def test_accumulating_blur_grows_like_harmonic_numbers(workflow):
    n, T, h, sigma0, d, R = 8, 6, 0.6, 1.0, 1, 3000
    _, sets, _, _ = run_observed(workflow, n=n, iterations=T, replicates=R, dim=d, sigma0=sigma0,
                                 bandwidth=h, heldout=1, seed=31, chunk_size=1024)
    moments = np.stack([_second_moment_per_point(sets[t]) for t in range(1, T + 1)], axis=1)
    # A point drawn from model i (fitted on a pool, or a uniform subset of it, of i batches)
    # has a uniformly chosen pool point as parent, so its expected number of kernel steps
    # e_i satisfies e_i = 1 + (1/i) sum_{j<i} e_j with e_0 = 0 for the real batch: e_i = H_i.
    e = [0.0]
    for i in range(1, T):
        e.append(1 + sum(e) / i)
    # D_t is (a uniform subset of) batches 0..t-1 in equal parts
    right = np.array([sigma0**2 + h * h * np.mean(e[:t]) for t in range(1, T + 1)])
    wrong = sigma0**2 + (np.arange(1, T + 1) - 1) * h * h  # negative control: replace's law
    assert np.allclose(e[1:4], [1.0, 1.5, 11 / 6])  # harmonic numbers H_t: E K = sum_i 1/i
    assert not holm_rejects(z_and_p(moments, right)[1]).any()
    assert holm_rejects(z_and_p(moments[:, 2:], wrong[2:])[1]).all()


# --------------------------------------------------------------------------- robustness and reproducibility


@pytest.mark.parametrize("truth", TRUTHS)
@pytest.mark.parametrize("bandwidth", [0.05, "scott", "silverman"])
def test_test_nll_finite_and_right_for_every_truth_and_bandwidth(truth, bandwidth):
    # At h = 0.05 most held-out kernels underflow: the values must be finite *and* equal
    # to the direct logsumexp on the engine's own training sets and held-out points.
    dim = truth_dim(truth) or 2
    for workflow in WORKFLOWS:
        out, sets, bandwidths, heldout = run_observed(
            workflow, n=8, iterations=3, replicates=3, truth=truth, dim=dim,
            bandwidth=bandwidth, heldout=50, seed=2)
        assert out[TEST_NLL].shape == (3, 3)
        assert np.all(np.isfinite(out[TEST_NLL]))
        for t in range(1, 4):
            np.testing.assert_allclose(out[TEST_NLL][:, t - 1],
                                       brute_nll(sets[t], heldout, bandwidths[t]), rtol=1e-10)
        has_mixture = truth in ("gaussian", "blobs")
        assert (MISE in out) == has_mixture
        if has_mixture:
            mixture = gaussian_truth(dim) if truth == "gaussian" else blobs_truth()
            for t in range(1, 4):
                np.testing.assert_allclose(out[MISE][:, t - 1],
                                           brute_mise(sets[t], bandwidths[t], mixture), rtol=1e-9)


@pytest.mark.parametrize("workflow", WORKFLOWS)
@pytest.mark.parametrize("bandwidth", [0.3, "silverman"])
def test_chunk_size_invariance_and_seed_reproducibility(workflow, bandwidth):
    kwargs = dict(n=7, iterations=4, replicates=40, truth="gaussian", dim=2, bandwidth=bandwidth,
                  heldout=30, seed=123)
    reference = simulate_kde(workflow, **kwargs)
    for chunk in (1, 16, 17, 33, 1000, None):
        other = simulate_kde(workflow, chunk_size=chunk, **kwargs)
        assert other.keys() == reference.keys()
        for key in reference:
            np.testing.assert_array_equal(other[key], reference[key])
    different = simulate_kde(workflow, **{**kwargs, "seed": 124})
    assert not np.array_equal(different[TEST_NLL], reference[TEST_NLL])
    # replicates are independent: no two rows alike
    assert len({tuple(row) for row in reference[TEST_NLL]}) == 40


def test_iteration_one_is_identical_across_workflows():
    outs = [simulate_kde(w, n=9, iterations=3, replicates=20, dim=2, heldout=40, seed=8) for w in WORKFLOWS]
    for out in outs[1:]:
        for key in (MISE, TEST_NLL):
            np.testing.assert_array_equal(out[key][:, 0], outs[0][key][:, 0])
            assert not np.array_equal(out[key][:, 1:], outs[0][key][:, 1:])


def test_result_shapes_dtypes_and_values():
    out, sets, bandwidths, heldout = run_observed(ACCUMULATE, n=5, iterations=7, replicates=18,
                                                  truth="blobs", dim=2, heldout=10)
    assert set(out) == {MISE, TEST_NLL}
    for value in out.values():
        assert value.shape == (18, 7) and value.dtype == np.float64
    # Row r, column t-1 is replicate r's model t: check the layout against brute force.
    for t in (1, 4, 7):
        assert sets[t].shape == (18, 5 * t, 2)
        np.testing.assert_allclose(out[MISE][:, t - 1], brute_mise(sets[t], bandwidths[t],
                                                                   blobs_truth()), rtol=1e-9)
        np.testing.assert_allclose(out[TEST_NLL][:, t - 1],
                                   brute_nll(sets[t], heldout, bandwidths[t]), rtol=1e-10)


# --------------------------------------------------------------------------- bandwidth rules


def test_rule_bandwidths_follow_sklearn_definitions():
    # sklearn: scott = m^(-1/(d+4)), silverman = (m (d+2)/4)^(-1/(d+4)), no scaling by spread
    assert rule_bandwidth("scott", 32, 1) == pytest.approx(0.5, rel=1e-15)  # 32^(-1/5)
    assert rule_bandwidth("scott", 64, 2) == pytest.approx(0.5, rel=1e-15)  # 64^(-1/6)
    assert rule_bandwidth("silverman", 512, 6) == pytest.approx(0.5, rel=1e-15)  # (512*2)^(-1/10)
    assert rule_bandwidth("silverman", 100, 2) == pytest.approx(rule_bandwidth("scott", 100, 2))
    assert rule_bandwidth("silverman", 81, 1) == pytest.approx((81 * 0.75) ** -0.2)


def test_accumulate_rule_bandwidth_shrinks_with_the_pool():
    _, _, hs, _ = run_observed(ACCUMULATE, n=10, iterations=4, replicates=2, dim=1,
                               bandwidth="silverman", heldout=5)
    assert [hs[t] for t in range(1, 5)] == pytest.approx([(10 * t * 0.75) ** -0.2 for t in range(1, 5)])
    _, _, hs_sub, _ = run_observed(ACCUMULATE_SUBSAMPLE, n=10, iterations=4, replicates=2, dim=1,
                                   bandwidth="silverman", heldout=5)
    assert len(set(hs_sub.values())) == 1


# --------------------------------------------------------------------------- truths


def test_moons_design_lies_on_sklearn_arcs():
    for n_points in (2, 7, 100, 101):
        pts = moons_design(n_points)
        n_out = n_points // 2
        outer, inner = pts[:n_out], pts[n_out:]
        assert inner.shape[0] == n_points - n_out
        np.testing.assert_allclose(np.hypot(*outer.T), 1.0, atol=1e-12)
        assert np.all(outer[:, 1] >= -1e-12)
        np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0, atol=1e-12)
        assert np.all(inner[:, 1] <= 0.5 + 1e-12)
        if n_out >= 2:  # evenly spaced angles from 0 to pi, both ends included
            np.testing.assert_allclose(np.arctan2(outer[:, 1], outer[:, 0]), np.linspace(0, np.pi, n_out),
                                       atol=1e-12)


def test_circles_design_lies_on_two_circles():
    pts = circles_design(11)
    outer, inner = pts[:5], pts[5:]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(*inner.T), 0.8, atol=1e-12)  # sklearn's default factor
    angles = np.mod(np.arctan2(inner[:, 1], inner[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(np.sort(angles), np.arange(6) * 2 * np.pi / 6, atol=1e-12)


def test_swiss_roll_geometry():
    u = np.linspace(0, 0.999, 50)
    pts = swiss_roll_points(u, u[::-1])
    s = 1.5 * np.pi * (1 + 2 * u)
    np.testing.assert_allclose(np.hypot(pts[:, 0], pts[:, 2]), s, rtol=1e-12)
    np.testing.assert_allclose(np.arctan2(pts[:, 2], pts[:, 0]), np.angle(np.exp(1j * s)), atol=1e-9)
    np.testing.assert_allclose(pts[:, 1], 21 * u[::-1])


@pytest.mark.parametrize("name, radii", [("circles", (1.0, 0.8))])
def test_sampled_circles_have_the_stated_noise(name, radii):
    sampler = make_truth_sampler(name)
    pts = sampler.sample(np.random.default_rng(0), (50, 1000))
    assert pts.shape == (50, 1000, 2)
    r = np.hypot(pts[..., 0], pts[..., 1])
    resid = np.where(r > 0.9, r - radii[0], r - radii[1])
    # radial residual of isotropic N(0, s^2 I) noise around a circle of radius >= 0.8 is
    # N(0, s^2) up to O(s^2 / radius) curvature terms (< 4% of s here)
    noise = 0.05  # the paper's (and the documentation's) noise level
    assert abs(resid.std() / noise - 1) < 0.05
    assert abs(resid.std() / (2 * noise) - 1) > 0.3  # negative control


def test_blobs_sampler_draws_the_documented_mixture():
    pts = make_truth_sampler("blobs").sample(np.random.default_rng(4), (20000,))
    centres = np.asarray(BLOBS_CENTRES)
    nearest = np.argmin(((pts[:, None, :] - centres) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=3)
    # i.i.d. draws from equal weights: multinomial counts (chi-square test), not exact thirds
    chi2 = stats.chisquare(counts).pvalue
    assert chi2 > ALPHA
    second = (pts**2).sum(-1)
    expected = float(np.mean((centres**2).sum(-1)) + 2.0)  # E|x|^2 = mean |c_k|^2 + d s^2
    z, p = z_and_p(second[:, None], [expected])
    assert p[0] > ALPHA
    assert z_and_p(second[:, None], [expected + 1.0])[1][0] < ALPHA  # negative control


def test_sampler_shapes_and_dims():
    rng = np.random.default_rng(0)
    for name in TRUTHS:
        dim = truth_dim(name) or 3
        sampler = make_truth_sampler(name, dim=dim)
        assert sampler.dim == dim
        assert sampler.sample(rng, (2, 5)).shape == (2, 5, dim)
        assert (sampler.mixture is not None) == (name in ("gaussian", "blobs"))


def test_sklearn_generators_agree_when_available():
    datasets = pytest.importorskip("sklearn.datasets")
    for n_points in (7, 100):
        ref, _ = datasets.make_moons(n_points, shuffle=False, noise=None)
        np.testing.assert_allclose(moons_design(n_points), ref, atol=1e-15)
        ref, _ = datasets.make_circles(n_points, shuffle=False, noise=None)
        np.testing.assert_allclose(circles_design(n_points), ref, atol=1e-15)
    ref, _ = datasets.make_swiss_roll(20, noise=0.0, random_state=np.random.RandomState(0))
    state = np.random.RandomState(0)
    u, v = state.uniform(size=20), state.uniform(size=20)
    np.testing.assert_allclose(swiss_roll_points(u, v), ref, atol=1e-12)


# --------------------------------------------------------------------------- bad input

BASE = dict(n=5, iterations=2, replicates=2)


@pytest.mark.parametrize(
    "workflow, kwargs, param",
    [
        (REPLACE, {"bandwidth": 0}, "bandwidth"),
        (REPLACE, {"bandwidth": -0.5}, "bandwidth"),
        (REPLACE, {"bandwidth": float("nan")}, "bandwidth"),
        (REPLACE, {"bandwidth": "wide"}, "bandwidth"),
        (REPLACE, {"truth": "spirals"}, "truth"),
        (REPLACE, {"n": 1}, "n"),
        (REPLACE, {"n": 2.5}, "n"),
        (REPLACE, {"dim": 0}, "dim"),
        (REPLACE, {"iterations": 0}, "iterations"),
        (REPLACE, {"replicates": 0}, "replicates"),
        (REPLACE, {"heldout": 0}, "heldout"),
        (REPLACE, {"sigma0": 0.0}, "sigma0"),
        (REPLACE, {"seed": -1}, "seed"),
        (REPLACE, {"chunk_size": 0}, "chunk_size"),
        (REPLACE, {"truth": "blobs", "dim": 3}, "dim"),
        (REPLACE, {"truth": "swiss-roll", "dim": 2}, "dim"),
        (REPLACE, {"truth": "moons", "dim": 2, "sigma0": 2.0}, "sigma0"),
        ("collapse", {}, "workflow"),
    ],
)
def test_bad_arguments_raise_one_line_errors_naming_the_parameter(workflow, kwargs, param):
    with pytest.raises(ValueError) as info:
        simulate_kde(workflow, **{**BASE, **kwargs})
    assert isinstance(info.value, CollapseError)
    message = str(info.value)
    assert message.startswith(param + " ") and "\n" not in message


def test_numeric_string_bandwidth_is_accepted():
    a = simulate_kde(REPLACE, bandwidth="0.7", **BASE)
    b = simulate_kde(REPLACE, bandwidth=0.7, **BASE)
    np.testing.assert_array_equal(a[TEST_NLL], b[TEST_NLL])


def test_sklearn_kernel_density_agrees_when_available():
    neighbors = pytest.importorskip("sklearn.neighbors")
    rng = np.random.default_rng(0)
    for d in (1, 2, 3):
        train, test = rng.normal(size=(137, d)) * 3, rng.normal(size=(50, d))
        for rule in kde.BANDWIDTH_RULES:
            fitted = neighbors.KernelDensity(bandwidth=rule).fit(train)
            assert rule_bandwidth(rule, 137, d) == pytest.approx(fitted.bandwidth_, rel=1e-15)
            nll = -fitted.score_samples(test).mean()
            assert heldout_nll(train, test, fitted.bandwidth_) == pytest.approx(nll, rel=1e-10)


def test_mean_mise_agrees_with_exact_theory_for_every_workflow():
    """Engine vs :func:`collapse.analysis.kde.expected_mise`, d = 1 (gaussian) and d = 2 (blobs).

    One Holm family over 2 dimensions x 3 workflows x 8 iterations at ``ALPHA``.
    Negative control: the theory at a 10% larger bandwidth must be rejected for every
    dimension and workflow.
    """
    from collapse.analysis.kde import expected_mise

    n, h, T, R = 10, 0.5, 8, 6000
    p_right, rejected_wrong = [], []
    for d, truth_name, truth in ((1, "gaussian", gaussian_truth(1)), (2, "blobs", blobs_truth())):
        for workflow in WORKFLOWS:
            out = simulate_kde(workflow, n=n, iterations=T, replicates=R, truth=truth_name, dim=d,
                               bandwidth=h, heldout=1, seed=40 + d)
            right = expected_mise(workflow, n=n, bandwidth=h, iterations=T, truth=truth)
            wrong = expected_mise(workflow, n=n, bandwidth=1.1 * h, iterations=T, truth=truth)
            p_right.append(z_and_p(out[MISE], right)[1])
            rejected_wrong.append(holm_rejects(z_and_p(out[MISE], wrong)[1]).any())
    assert not holm_rejects(np.concatenate(p_right)).any()
    assert all(rejected_wrong)
