"""Growth-shape verdicts of `collapse.lm report` (lm.growth): power, false alarms, honesty when short.

Monte Carlo with fixed seeds: R = 100 synthetic curves over t = 1..10 with
Gaussian noise of known sd (passed as the standard error).  Each check states
its threshold as a binomial bound: with a true per-curve rate p, the chance of
crossing the threshold is below 1e-3 (the false-alarm rate of the check).
"""

import numpy as np
import pytest

from collapse.lm import growth

T = np.arange(1, 11)
R = 100
SD = 0.01


def verdicts(curve, seed, weighted=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(R):
        y = curve(T) + rng.normal(0.0, SD, len(T))
        out.append(growth.fit_growth(T, y, [SD] * len(T) if weighted else None).shape)
    return out


@pytest.mark.parametrize(
    "curve, shape",
    [
        (lambda t: 4.0 + 0.03 * t, growth.LINEAR),            # replace-like
        (lambda t: 4.0 + 0.15 * np.log(t), growth.LOGARITHMIC),
        (lambda t: 4.5 - 0.4 / t, growth.BOUNDED),             # accumulate-like
    ],
)
def test_clear_shapes_are_recognised(curve, shape):
    # power: each shape is recognised in >= 95 of 100 curves (observed: all); the
    # wrong-shape answers are the negative control: none may say another named shape
    # in more than 5 curves
    got = verdicts(curve, seed=1)
    assert got.count(shape) >= 95
    for other in growth.SHAPES:
        if other != shape:
            assert got.count(other) <= 5


def test_ols_when_no_standard_errors():
    got = verdicts(lambda t: 4.0 + 0.03 * t, seed=2, weighted=False)
    assert got.count(growth.LINEAR) >= 95


def test_flat_noise_rarely_claims_growth():
    # For a flat curve the linear or log term wins by dAIC >= 2 only when its
    # likelihood-ratio statistic exceeds 4 (chi-square_1 tail 4.6%) and BIC agrees;
    # P(Binomial(100, 0.06) > 15) < 1e-3.
    got = verdicts(lambda t: 4.0 + 0.0 * t, seed=3)
    assert got.count(growth.LINEAR) + got.count(growth.LOGARITHMIC) <= 15
    # and mostly it honestly says it cannot tell (nested models differ by < 2 in AIC)
    assert got.count(growth.UNDETERMINED) >= 70


def test_short_runs_are_undetermined():
    v = growth.fit_growth([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])
    assert v.shape == growth.UNDETERMINED and "too short" in v.reason
    assert "undetermined" in v.describe()


def test_exact_linear_curve_slope_is_recovered():
    rng = np.random.default_rng(5)
    y = 2.0 + 0.5 * T + rng.normal(0, 1e-3, len(T))
    v = growth.fit_growth(T, y)
    b, se = v.slope()
    assert abs(b - 0.5) < 5 * se + 1e-12
    assert v.shape == growth.LINEAR
