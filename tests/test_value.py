"""The value of synthetic data (analysis.value).

Checks, none of which copies an expected value from the code under test:

* the Gaussian mean error equals the closed form written below (the project's statement
  of this result, checked by simulation before any code existed), exactly, for every
  n_r <= N and many n_s; the derived sympy formula simplifies to it;
* the crossover (N+1)/2, the break-even size and the n_s -> infinity limit are recomputed
  here from that closed form, independently of the module's derivation;
* textbook special cases: a student of real data only; of synthetic data only; and the
  paper's own loop, whose model 2 under accumulate (replace) is a student with
  n_r = N = n_s = n (n_r = 0, n_s = N) -- analysis.gaussian and analysis.kde give those;
* brute-force Monte Carlo of generator and student, Gaussian and KDE, with a z-test at a
  stated false-alarm rate, a power requirement and a theory x 1.05 negative control.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from collapse.analysis.errors import CollapseError
from collapse.analysis.gaussian import moment_sequences
from collapse.analysis.kde import expected_mise
from collapse.analysis.truths import GaussianMixture, blobs_truth, gaussian_truth
from collapse.analysis.value import (
    gaussian_break_even,
    gaussian_crossover,
    gaussian_value,
    gaussian_value_formulas,
    gaussian_value_ratios,
    kde_crossover,
    kde_value,
)
from collapse.analysis.vocabulary import (
    COV_TRACE_RATIO,
    MEAN_SQ_ERROR,
    MISE,
    MLE,
    UNBIASED,
)

FAMILY_ALPHA = 1e-3  # family-wise false-alarm rate of each Monte Carlo test below


def closed_form(big_n, n_r, n_s):
    """E||mu_student - mu0||^2 / (sigma2 d) for an MLE generator: the stated closed form."""
    return (n_r + n_s * Fraction(big_n - 1, big_n) + Fraction(n_s**2 + 2 * n_r * n_s, big_n)) \
        / (n_r + n_s) ** 2


# --------------------------------------------------------------------------- Gaussian, exact


@pytest.mark.parametrize("big_n", (2, 5, 10, 37))
def test_mean_error_equals_the_closed_form(big_n):
    for n_r in range(big_n + 1):
        for n_s in (0, 1, 2, 5, 17, 100, 10**6):
            if n_r + n_s == 0:
                continue
            a, b = gaussian_value_ratios(big_n, n_r, n_s)
            assert a == closed_form(big_n, n_r, n_s)
            assert a + b == 1  # MLE: the mean squared distance to mu0 of every point is 1
            value = gaussian_value(generator_n=big_n, real_size=n_r, synthetic_size=n_s,
                                   dim=3, sigma2=2.5)
            assert value[MEAN_SQ_ERROR] == pytest.approx(7.5 * float(closed_form(big_n, n_r, n_s)),
                                                         rel=1e-12)


def test_derived_formula_simplifies_to_the_closed_form():
    a, b, (big_n, n_r, n_s) = gaussian_value_formulas(MLE)
    stated = (n_r + n_s * (big_n - 1) / big_n + (n_s**2 + 2 * n_r * n_s) / big_n) / (n_r + n_s) ** 2
    assert sp.simplify(a - stated) == 0
    assert sp.simplify(a + b - 1) == 0
    # Divisor m-1 for the generator: the noise term has E tr Sigma_g = tr Sigma0.
    a_u, _, _ = gaussian_value_formulas(UNBIASED)
    assert sp.simplify(a_u - (n_r + n_s + (n_s**2 + 2 * n_r * n_s) / big_n) / (n_r + n_s) ** 2) == 0


def test_textbook_special_cases():
    big_n = 12
    for n_r in range(1, big_n + 1):  # real only: sample mean and covariance of n_r points
        assert gaussian_value_ratios(big_n, n_r, 0) == (Fraction(1, n_r), Fraction(n_r - 1, n_r))
        if n_r >= 2:  # divisor m-1: unbiased
            assert gaussian_value_ratios(big_n, n_r, 0, UNBIASED)[1] == 1
    for n_s in range(2, 9):  # synthetic only: n_s draws from N(mu_g, Sigma_g)
        a, b = gaussian_value_ratios(big_n, 0, n_s)
        assert a == Fraction(1, big_n) + Fraction(big_n - 1, big_n) / n_s
        assert b == Fraction(n_s - 1, n_s) * Fraction(big_n - 1, big_n)


@pytest.mark.parametrize("covariance", (MLE, UNBIASED))
@pytest.mark.parametrize("n", (2, 5, 9))
def test_model_two_of_the_paper_loop_is_a_student(covariance, n):
    # Accumulate's model 2 fits the n real points plus n points drawn from model 1 (fitted on
    # those n real points): a student with N = n_r = n_s = n.  Replace's model 2: n_r = 0.
    a_acc, b_acc = moment_sequences("accumulate", n, 2, covariance)
    a_rep, b_rep = moment_sequences("replace", n, 2, covariance)
    assert gaussian_value_ratios(n, n, n, covariance) == (a_acc[1], b_acc[1])
    assert gaussian_value_ratios(n, 0, n, covariance) == (a_rep[1], b_rep[1])


def test_crossover_is_half_of_n_plus_one():
    big_n = sp.Symbol("N", positive=True)
    assert sp.simplify(gaussian_crossover() - (big_n + 1) / 2) == 0
    for value in (2, 7, 10, 101):
        assert gaussian_crossover(value) == Fraction(value + 1, 2)
    # Independently, from the stated closed form: the slope in n_s at 0 has the sign of
    # 2 n_r - N - 1.
    n_r, n_s = sp.symbols("n_r n_s", positive=True)
    for value in (7, 10):
        f = (n_r + n_s * sp.Rational(value - 1, value)
             + (n_s**2 + 2 * n_r * n_s) / value) / (n_r + n_s) ** 2
        slope = sp.diff(f, n_s).subs(n_s, 0)
        for real in range(1, value + 1):
            sign = sp.sign(slope.subs(n_r, real))
            assert sign == sp.sign(2 * real - value - 1)


def test_discrete_crossover_and_break_even():
    for big_n in (10, 40):
        for s in (1, 3):
            first = next(r for r in range(1, big_n + 1)
                         if closed_form(big_n, r, s) >= Fraction(1, r))
            assert gaussian_crossover(big_n, synthetic_size=s) == first
    big_n = 30
    for n_r in range(1, big_n + 1):
        star = gaussian_break_even(big_n, n_r)
        if 2 * n_r <= big_n + 1:
            assert star == 0.0
        elif n_r == big_n:
            assert star == math.inf
            assert all(closed_form(big_n, n_r, s) > Fraction(1, n_r) for s in (1, 10, 10**6))
        else:
            exact = Fraction(n_r * (2 * n_r - big_n - 1), big_n - n_r)
            assert star == pytest.approx(float(exact), rel=1e-12)
            assert closed_form(big_n, n_r, exact) == Fraction(1, n_r)  # back to real-only
            assert closed_form(big_n, n_r, exact / 2) > Fraction(1, n_r)
            assert closed_form(big_n, n_r, exact * 2) < Fraction(1, n_r)


def test_limit_of_many_synthetic_points():
    n_r, n_s, big_n = sp.symbols("n_r n_s N", positive=True)
    f = (n_r + n_s * (big_n - 1) / big_n + (n_s**2 + 2 * n_r * n_s) / big_n) / (n_r + n_s) ** 2
    assert sp.limit(f, n_s, sp.oo) == 1 / big_n
    for n_real in (0, 3, 20):
        value = gaussian_value(generator_n=20, real_size=n_real, synthetic_size=10**12, dim=4,
                               sigma2=0.5)
        assert value[MEAN_SQ_ERROR] == pytest.approx(0.5 * 4 / 20, rel=1e-9)
        assert value[MEAN_SQ_ERROR] > 0.5 * 4 / 20  # approached from above


def test_bad_sizes_raise_collapse_error():
    with pytest.raises(CollapseError, match="real_size"):
        gaussian_value(generator_n=5, real_size=6, synthetic_size=0, dim=1)
    with pytest.raises(CollapseError, match="synthetic_size"):
        gaussian_value(generator_n=5, real_size=2, synthetic_size=-1, dim=1)
    with pytest.raises(CollapseError, match="real_size \\+ synthetic_size"):
        gaussian_value(generator_n=5, real_size=0, synthetic_size=0, dim=1)
    with pytest.raises(CollapseError, match=">= 2"):
        gaussian_value(generator_n=5, real_size=1, synthetic_size=0, dim=1, covariance=UNBIASED)
    with pytest.raises(CollapseError, match="generator_n"):
        kde_value(generator_n=1, real_size=1, synthetic_size=0, bandwidth=0.5,
                  truth=gaussian_truth(1))
    with pytest.raises(CollapseError, match="bandwidth"):
        kde_value(generator_n=4, real_size=1, synthetic_size=0, bandwidth=-1,
                  truth=gaussian_truth(1))
    # One point: the MLE covariance of a single point is zero (defined, not an error).
    assert gaussian_value(generator_n=5, real_size=1, synthetic_size=0, dim=2)[COV_TRACE_RATIO] == 0


# --------------------------------------------------------------------------- KDE, exact


@pytest.mark.parametrize("truth", [gaussian_truth(1), gaussian_truth(3, 0.6), blobs_truth()],
                         ids=["gauss1", "gauss3", "blobs"])
def test_kde_special_cases_match_the_paper_loop(truth):
    n, h = 7, 0.45
    # Real only: the first model of the loop.
    first = expected_mise("replace", n=n, bandwidth=h, iterations=1, truth=truth)[0]
    assert kde_value(generator_n=n, real_size=n, synthetic_size=0, bandwidth=h,
                     truth=truth)[MISE] == pytest.approx(first, rel=1e-12)
    # Model 2 of replace: n points drawn from the KDE of n real points.
    replace2 = expected_mise("replace", n=n, bandwidth=h, iterations=2, truth=truth)[1]
    assert kde_value(generator_n=n, real_size=0, synthetic_size=n, bandwidth=h,
                     truth=truth)[MISE] == pytest.approx(replace2, rel=1e-12)
    # Model 2 of accumulate: those n real points plus the n drawn points.
    accumulate2 = expected_mise("accumulate", n=n, bandwidth=h, iterations=2, truth=truth)[1]
    assert kde_value(generator_n=n, real_size=n, synthetic_size=n, bandwidth=h,
                     truth=truth)[MISE] == pytest.approx(accumulate2, rel=1e-12)


def test_kde_crossover_is_where_the_error_stops_falling():
    truth = gaussian_truth(2)
    for h in (0.2, 0.6):
        boundary = kde_crossover(generator_n=30, bandwidth=h, truth=truth)
        for n_r in range(1, 31):
            kwargs = {"generator_n": 30, "real_size": n_r, "bandwidth": h, "truth": truth}
            helps = kde_value(synthetic_size=1, **kwargs)[MISE] < kde_value(synthetic_size=0,
                                                                           **kwargs)[MISE]
            assert helps == (boundary is None or n_r < boundary)


# --------------------------------------------------------------------------- Monte Carlo


def _z_checks(samples, theory, replicates, checks):
    z_star = stats.norm.isf(FAMILY_ALPHA / (2 * checks))
    for sample, expected in zip(samples, theory):
        mean = sample.mean()
        se = sample.std(ddof=1) / math.sqrt(replicates)
        assert abs(mean - expected) / se < z_star, (mean, expected, se)
        # Power: a theory 5% off must shift z past z* + 2.33 (>= 99% power per check).
        assert 0.05 * expected / se >= z_star + 2.33, 0.05 * expected / se
        assert abs(mean - 1.05 * expected) / se > z_star  # negative control


GAUSSIAN_MC = [  # (N, n_r, n_s, dim, covariance)
    (10, 3, 4, 3, MLE),
    (10, 10, 6, 3, MLE),
    (10, 0, 5, 3, UNBIASED),
    (8, 6, 20, 2, UNBIASED),
]


@pytest.mark.parametrize("big_n, n_r, n_s, dim, covariance", GAUSSIAN_MC)
def test_gaussian_student_against_brute_force(big_n, n_r, n_s, dim, covariance):
    replicates = 40_000
    rng = np.random.default_rng(7)
    sigma2 = 1.7
    real = math.sqrt(sigma2) * rng.standard_normal((replicates, big_n, dim))
    divisor_g = big_n if covariance == MLE else big_n - 1
    mu_g = real.mean(axis=1)
    centred = real - mu_g[:, None, :]
    cov_g = np.einsum("rki,rkj->rij", centred, centred) / divisor_g
    values, vectors = np.linalg.eigh(cov_g)
    root = vectors * np.sqrt(np.clip(values, 0, None))[:, None, :]
    synthetic = mu_g[:, None, :] + rng.standard_normal((replicates, n_s, dim)) @ root.transpose(0, 2, 1)
    student = np.concatenate([real[:, :n_r], synthetic], axis=1)
    m = student.shape[1]
    mu_s = student.mean(axis=1)
    centred = student - mu_s[:, None, :]
    divisor_s = m if covariance == MLE else m - 1
    trace_s = np.einsum("rki,rki->r", centred, centred) / divisor_s
    theory = gaussian_value(generator_n=big_n, real_size=n_r, synthetic_size=n_s, dim=dim,
                            sigma2=sigma2, covariance=covariance)
    # Two checks: Bonferroni at family-wise rate FAMILY_ALPHA.
    _z_checks([(mu_s**2).sum(axis=1), trace_s / (dim * sigma2)],
              [theory[MEAN_SQ_ERROR], theory[COV_TRACE_RATIO]], replicates, 2)


def _ise(train: np.ndarray, h: float, truth: GaussianMixture) -> np.ndarray:
    """Integrated squared error of each replicate's KDE against an isotropic Gaussian truth."""
    d = truth.dim
    (mu,), (s,) = truth.means, truth.scales
    m = train.shape[1]
    diff2 = ((train[:, :, None, :] - train[:, None, :, :]) ** 2).sum(-1)
    square = ((4 * np.pi * h * h) ** (-d / 2) * np.exp(-diff2 / (4 * h * h))).sum((1, 2)) / m**2
    v = h * h + s * s
    dist2 = ((train - np.asarray(mu)) ** 2).sum(-1)
    cross = ((2 * np.pi * v) ** (-d / 2) * np.exp(-dist2 / (2 * v))).sum(1) / m
    return square - 2 * cross + (4 * np.pi * s * s) ** (-d / 2)


KDE_MC = [  # (N, n_r, n_s, h, truth)
    (10, 4, 8, 0.5, gaussian_truth(1)),
    (6, 6, 3, 0.3, gaussian_truth(2, 1.2)),
    (8, 0, 12, 0.7, gaussian_truth(1, 0.8)),
]


@pytest.mark.parametrize("big_n, n_r, n_s, h, truth", KDE_MC)
def test_kde_student_against_brute_force(big_n, n_r, n_s, h, truth):
    replicates = 30_000
    rng = np.random.default_rng(3)
    (mu,), (s,) = truth.means, truth.scales
    real = np.asarray(mu) + s * rng.standard_normal((replicates, big_n, truth.dim))
    parents = rng.integers(0, big_n, size=(replicates, n_s))
    synthetic = np.take_along_axis(real, parents[:, :, None], axis=1) \
        + h * rng.standard_normal((replicates, n_s, truth.dim))
    student = np.concatenate([real[:, :n_r], synthetic], axis=1)
    theory = kde_value(generator_n=big_n, real_size=n_r, synthetic_size=n_s, bandwidth=h,
                       truth=truth)[MISE]
    _z_checks([_ise(student, h, truth)], [theory], replicates, 1)
