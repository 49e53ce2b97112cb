"""Which growth shape does a workflow's held-out-loss curve follow?

The simple settings (Gaussian and KDE, exact theory) give three shapes for an error
curve ``y_t`` over model-fitting iterations ``t = 1..T``:

``bounded``
    ``y_t = c`` or ``y_t = c + a/t`` (accumulate: the error converges);
``logarithmic``
    ``y_t = a + b log t``;
``linear``
    ``y_t = a + b t`` (replace: the error grows without bound).

Each candidate is a linear regression of ``y`` on ``(1, x(t))`` fitted with
statsmodels: weighted least squares with weights ``1 / sem_t^2`` when every
standard error is finite and positive (several seeds), ordinary least squares
otherwise.  Candidates are compared by AIC = ``2k - 2 log L`` and BIC =
``k log T - 2 log L`` (Gaussian likelihood at the fitted scale); a shape's score
is its best candidate's.  The verdict names a shape only when the curve has at
least :data:`MIN_POINTS` iterations, AIC and BIC choose the same shape, and
the runner-up shape is worse by at least :data:`MIN_DELTA` in both (Burnham
and Anderson's rule of thumb: a difference below 2 is no real evidence).
Otherwise it says ``undetermined`` and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

BOUNDED = "bounded"
LOGARITHMIC = "logarithmic"
LINEAR = "linear"
SHAPES: tuple[str, ...] = (BOUNDED, LOGARITHMIC, LINEAR)
UNDETERMINED = "undetermined"

MIN_POINTS = 5
MIN_DELTA = 2.0

#: candidate name -> (shape, regressor of t or None for the constant)
_CANDIDATES = {
    "c": (BOUNDED, None),
    "c + a/t": (BOUNDED, lambda t: 1.0 / t),
    "a + b log t": (LOGARITHMIC, np.log),
    "a + b t": (LINEAR, lambda t: t),
}


@dataclass(frozen=True)
class Fit:
    """One fitted candidate: its formula, shape, coefficients and criteria."""

    formula: str
    shape: str
    params: tuple[float, ...]
    stderr: tuple[float, ...]
    aic: float
    bic: float


@dataclass
class Verdict:
    """The chosen shape (or :data:`UNDETERMINED`), the reason, and every fit."""

    shape: str
    reason: str
    fits: list[Fit] = field(default_factory=list)
    weighted: bool = False

    def best_fit(self, shape: str, criterion: str = "aic") -> Fit | None:
        candidates = [f for f in self.fits if f.shape == shape]
        return min(candidates, key=lambda f: getattr(f, criterion)) if candidates else None

    def describe(self) -> str:
        """One line: the verdict, its evidence, and each shape's best AIC."""
        scores = ", ".join(
            f"{shape} {fit.aic:.1f} ({fit.formula})"
            for shape in SHAPES if (fit := self.best_fit(shape)) is not None
        )
        how = "WLS 1/sem^2" if self.weighted else "OLS"
        text = f"{self.shape} ({self.reason})"
        if not scores:
            return text
        slope = self.slope()
        return (f"{text}; AIC by shape [{how}]: {scores}; "
                f"linear slope {slope[0]:.3g} +- {slope[1]:.2g} per iteration")

    def slope(self) -> tuple[float, float]:
        """``(b, se(b))`` of the linear fit ``a + b t`` (units of the metric per iteration)."""
        fit = next(f for f in self.fits if f.formula == "a + b t")
        return fit.params[1], fit.stderr[1]


def _fit_one(t, y, weights, regressor) -> tuple[tuple[float, ...], tuple[float, ...], float, float]:
    import statsmodels.api as sm

    if regressor is None:
        design = np.ones((len(t), 1))
    else:
        design = np.column_stack([np.ones(len(t)), regressor(t)])
    model = sm.WLS(y, design, weights=weights) if weights is not None else sm.OLS(y, design)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = model.fit()
        return (tuple(float(p) for p in result.params), tuple(float(e) for e in result.bse),
                float(result.aic), float(result.bic))


def fit_growth(iterations: Sequence[float], values: Sequence[float], sems: Sequence[float] | None = None) -> Verdict:
    """Fit every candidate shape to ``values`` over ``iterations`` and decide (module docstring)."""
    t = np.asarray(iterations, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(y)
    t, y = t[keep], y[keep]
    weights = None
    if sems is not None:
        s = np.asarray(sems, dtype=float)[keep]
        if len(s) and np.all(np.isfinite(s)) and np.all(s > 0):
            weights = 1.0 / s**2
    if len(t) < MIN_POINTS:
        return Verdict(UNDETERMINED, f"too short: {len(t)} iterations, need at least {MIN_POINTS}",
                       weighted=weights is not None)
    fits = []
    for formula, (shape, regressor) in _CANDIDATES.items():
        params, stderr, aic, bic = _fit_one(t, y, weights, regressor)
        fits.append(Fit(formula, shape, params, stderr, aic, bic))
    verdict = Verdict(UNDETERMINED, "", fits, weighted=weights is not None)
    if not all(math.isfinite(f.aic) and math.isfinite(f.bic) for f in fits):
        verdict.reason = "a fit is degenerate (non-finite information criterion)"
        return verdict

    def ranking(criterion: str) -> list[tuple[float, str]]:
        return sorted((getattr(verdict.best_fit(shape, criterion), criterion), shape) for shape in SHAPES)

    by_aic, by_bic = ranking("aic"), ranking("bic")
    d_aic = by_aic[1][0] - by_aic[0][0]
    d_bic = by_bic[1][0] - by_bic[0][0]
    if by_aic[0][1] != by_bic[0][1]:
        verdict.reason = f"AIC prefers {by_aic[0][1]} but BIC prefers {by_bic[0][1]}"
    elif min(d_aic, d_bic) < MIN_DELTA:
        verdict.reason = (
            f"{by_aic[0][1]} and {by_aic[1][1]} are too close: "
            f"dAIC {d_aic:.2f}, dBIC {d_bic:.2f} < {MIN_DELTA:g}"
        )
    else:
        verdict.shape = by_aic[0][1]
        verdict.reason = f"dAIC {d_aic:.2f} and dBIC {d_bic:.2f} over {by_aic[1][1]}"
    return verdict
