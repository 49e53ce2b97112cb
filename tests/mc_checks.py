"""Monte Carlo agreement checks shared by the settings' tests.

A check compares cells ``(label, sample, theory)``: the sample mean of each against its
exact expectation by a z-test, Bonferroni-corrected to the family-wise false-alarm rate
``FAMILY_ALPHA`` over the cells of one check.  :func:`check_agreement` also asserts the
power of every cell against a relative error ``ERROR`` of the theory and runs the
negative control: the same cells against a theory ``1 + ERROR`` times too large must be
rejected.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

FAMILY_ALPHA = 1e-3
ERROR = 0.05  # the relative error every Monte Carlo check must detect
POWER = 0.99


def z_critical(checks: int) -> float:
    return float(stats.norm.isf(FAMILY_ALPHA / (2 * checks)))


def mc_failures(cells: list[tuple[str, np.ndarray, float]], scale: float = 1.0) -> list[str]:
    """Cells ``(label, sample, theory)`` whose mean differs from ``scale * theory``."""
    crit = z_critical(len(cells))
    bad = []
    for label, sample, theory in cells:
        se = sample.std(ddof=1) / math.sqrt(sample.size)
        z = (sample.mean() - scale * theory) / se
        if abs(z) > crit:
            bad.append(f"{label}: mean {sample.mean():.6g} vs {scale * theory:.6g} (z = {z:.2f})")
    return bad


def assert_power(cells: list[tuple[str, np.ndarray, float]]) -> None:
    crit = z_critical(len(cells))
    for label, sample, theory in cells:
        se = sample.std(ddof=1) / math.sqrt(sample.size)
        power = stats.norm.cdf(ERROR * abs(theory) / se - crit)
        assert power >= POWER, f"{label}: power {power:.3f} against a 5% error"


def check_agreement(cells: list[tuple[str, np.ndarray, float]]) -> None:
    assert_power(cells)
    assert mc_failures(cells) == []
    assert mc_failures(cells, scale=1.0 + ERROR), "the negative control was not rejected"
