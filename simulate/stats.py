"""Theory-versus-simulation statistics: one implementation for every setting.

For each (workflow, metric, iteration) the Monte Carlo gives ``R`` independent
replicates ``X_1..X_R``.  The row is compared with the exact expectation ``mu`` by
the studentized mean::

    T = (mean(X) - mu) / sem,   sem = sd(X) / sqrt(R),   p = 2 P(t_{R-1} > |T|),

referred to Student's t with ``R - 1`` degrees of freedom (exact for normal
replicates; the normal law understates its tails by a factor 50 at ``R = 10`` where
Holm's thresholds lie) and corrected for the skewness of the replicates by the
one-term Edgeworth expansion of the studentized mean (Hall 1992).  The p-values of
every tested row of one ``compare`` call (all workflows, metrics and iterations
together) are adjusted with Holm's step-down method (statsmodels
``multipletests``), which controls the family-wise error rate under any dependence
between rows, in particular between the iterations of one replicate.  The verdict
"inconsistent" therefore has false-alarm probability at most ``alpha`` for the
whole call, provided each tested row's p-value is valid; that is measured, not
assumed (:mod:`collapse.simulate.calibration`, ``benchmarks/false_alarm.py``).

Which rows are tested.  The z-test of a mean is trustworthy only where the mean is
nearly normal, i.e. where the skewness of the mean ``g = skew(X) / sqrt(R)`` is
small; rows with ``g > HEAVY_TAIL_SKEW`` are reported but left out of the verdict.
Under ``replace`` many metrics are products of independent random factors
(``det``, ``tr``, ``tr Sigma^{-1}``), close to log-normal with a log-variance that
grows linearly in ``t``, and chi-square-like errors are skewed at every ``t``.
``g`` is estimated from three shapes::

    gamma_hat = min(skew_LN(var log(X - L)), max(|skew(X)|, 2 sd(X) / (mean(X) - L)))

where ``L`` is a known lower bound of the metric (0 for errors and ratios, the
truth's entropy for a cross-entropy), ``skew_LN(s2) = (exp(s2) + 2) sqrt(exp(s2) - 1)``
is the skewness of a log-normal with log-variance ``s2`` and ``2 sd / (mean - L)``
that of a gamma variable with the same coefficient of variation above ``L``.  The
sample skewness is reliable for light tails and underestimates heavy ones, the more
so the fewer the replicates (a small sample of a skewed variable usually misses the
long tail and looks symmetric); the gamma value needs second moments only; the
log-normal value is reliable when the logarithm is a sum of many independent terms
and caps the others, so that light-tailed rows whose logarithm has a long left tail
(``chi^2_1``) are not flagged.  Without a lower bound only the sample skewness is
used; where some replicates sit exactly at ``L`` (a collapsed diversity: a mixture
with an atom at the bound, like a rare event) the log-normal cap is not used, since
the logarithms of the others say nothing about how rare the atom's complement is.

Small samples.  The decision to test a row must not select the samples that give
extreme ``T``: a sample that missed the long tail has too small a mean *and* too
small a spread, and a shape estimate built from a spread that is small by chance
lets exactly such rows through.  So the rule uses upper confidence limits, not
point estimates: ``|skew(X)| + z_{SKEW_CONFIDENCE} se(skew)`` with the normal-theory
``se(skew) = sqrt(6 (R-2) / ((R+1)(R+3)))``, and every spread inflated to its upper
``SPREAD_CONFIDENCE`` chi-square limit ``sd sqrt((R-1) / chi2_{R-1}(1 - level))``.
With a thousand replicates the spread limit is within 10% of the estimate;
with tens, almost no row passes, and a row whose point estimate passes
but whose upper limit does not is reported as ``too-few-replicates`` (more
replicates would test it).  Below :data:`MIN_REPLICATES` ``compare`` refuses
(:class:`collapse.analysis.errors.CollapseError`).  The log-determinant, a sum of
independent log-chi-square terms, is nearly symmetric and is tested once ``R`` is
large enough for its sample skewness to vouch for that.

Indicator metrics.  A metric whose every replicate is 0 or 1 (the discrete setting's
``collapsed``, whose mean estimates a probability ``p``) is named in ``binary``: its
count of ones is exactly ``Binomial(R, p)`` under the theory, so its row is tested by
the exact two-sided binomial test (scipy ``binomtest``) instead of the studentized
mean, with no heavy-tail rule: a rare event (``p = 1e-9``, every replicate 0) agrees,
a row with theory 0 and one replicate at 1 disagrees, and a "probability" outside
``[0, 1]`` disagrees.  Its ``z`` is the score statistic
``(mean - p) / sqrt(p (1 - p) / R)`` (0 or infinite when ``p`` is 0 or 1).

Exact zeros.  Replicates at exactly 0 while the expectation is positive are taken for
float underflow (a collapsed determinant) and the row is set aside, except for the
metrics named in ``attained``, which reach their lower bound 0 as a value (the
diversity of a distribution left with one category).

Constant rows of a bounded metric.  A metric known to lie in ``[L, U]`` (``lower_bounds``,
and ``upper_bounds`` per workflow and iteration) whose every replicate sits at ``L``
(to a relative ``1e-12``: the metric's arithmetic may round it) (every replicate of the
discrete setting collapsed) says little about a small mean: its studentized mean does
not exist, and reading the constant as the exact mean would reject a true theory with
probability ``P(all R at L)``, large when the mean is near ``L`` (a mixture with an atom
at ``L``).  Such a row is tested exactly instead: under any law on ``[L, U]`` with mean
``mu``, ``P(X > L) >= (mu - L) / (U - L)`` (Markov), so

    p = (1 - (mu - L) / (U - L))^R

bounds the probability of the observed sample, and rejecting when ``p <= alpha`` has
false-alarm probability at most ``alpha`` (equality for the two-point law on ``{L,
U}``); likewise at ``U`` with ``(U - mu) / (U - L)``.  A theory outside ``[L, U]`` is
rejected.  Its ``z`` is the normal equivalent of ``p``, signed like ``mean - mu``.

Quantile rows.  Where a metric's mean cannot be tested at any feasible replicate
count but its *law* is known, a theory metric named ``<metric>_q<PP>`` (for example
``log_cov_det_ratio_q50``) holds the exact ``PP``-percent quantile ``q`` of
``<metric>`` per iteration.  Its row is tested without any moment assumption: the
number ``K`` of replicates below ``q`` is ``Binomial(R, PP/100)`` exactly when ``q``
is the true quantile of a continuous law, so the row's p-value is the exact two-sided
binomial test of ``K`` (:func:`quantile_row`).  The row's ``theory`` is ``q``, its
``mean`` the sample quantile, its ``sem`` a distribution-free standard error of the
sample quantile (half the width of the order-statistic 95% interval, divided by
1.96), and its ``z`` the normal equivalent of the p-value, signed like
``sample quantile - q``.  Quantile rows enter Holm's adjustment with all others.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence

import numpy as np
from scipy import special
from scipy import stats as sps

from collapse.analysis.errors import CollapseError
from collapse.simulate.tables import (  # noqa: F401 - quantile names are part of this API
    COMPARE_COLUMNS,
    SIMULATE_COLUMNS,
    Table,
    quantile_metric,
    quantile_name,
)

#: Fewest replicates per sample that :func:`compare` accepts.  With fewer, the upper
#: confidence limit of a row's spread is more than 4 times its sample value, so a
#: row's mean cannot be shown near-normal unless its coefficient of variation is
#: below about 1%: the verdict would rest on almost nothing.  The false-alarm rate
#: is measured from this count up (``benchmarks/false_alarm.py``).
MIN_REPLICATES = 10

#: Largest estimated skewness of a row's sample mean for which its z-test counts.
HEAVY_TAIL_SKEW = 0.05

#: One-sided confidence level of the upper limit on each row's sample skewness.
SKEW_CONFIDENCE = 0.95

#: One-sided confidence level of the upper limit on each row's spread (a spread that
#: is small by chance inflates ``|T|`` directly, hence the stricter level).
SPREAD_CONFIDENCE = 0.9999

#: Row status values.
TESTED = "tested"
HEAVY = "heavy-tailed"
TOO_FEW = "too-few-replicates"
DIVERGES = "diverges"
NO_THEORY = "no-theory"
UNDERFLOW = "underflow"

#: Below the smallest normal float64 (about 2.2e-308) values are not resolved well
#: enough to compare: a collapsed determinant is then 0 in every replicate.
_TINY = float(np.finfo(float).tiny)


@dataclass(frozen=True)
class Summary:
    """Mean, standard error and tail diagnostics of one metric, per iteration.

    ``mean`` and ``sem`` have shape ``(iterations,)``.  ``skew_of_mean`` is the upper
    confidence limit of the skewness of the sample mean that decides whether a row is
    tested, ``point_skew_of_mean`` the same estimate without the confidence margins,
    and ``signed_skew_of_mean`` the signed point estimate used by the Edgeworth
    correction (see the module docstring).  Non-finite replicates (``inf`` test NLL of
    a singular fit, ``-inf`` log-determinant) give a non-finite mean and an infinite
    ``sem`` unless all replicates are equal.
    """

    mean: np.ndarray
    sem: np.ndarray
    skew_of_mean: np.ndarray
    replicates: int
    signed_skew_of_mean: np.ndarray | None = None
    point_skew_of_mean: np.ndarray | None = None


def _lognormal_skew(log_var: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.minimum(log_var, 700.0))
        return (e + 2.0) * np.sqrt(np.maximum(e - 1.0, 0.0))


def _shape_skewness(raw_skew: np.ndarray, sd: np.ndarray, excess: np.ndarray | None,
                    log_var: np.ndarray | None, skew_margin: float,
                    spread_factor: float) -> np.ndarray:
    """``min(skew_LN, max(|skew| + margin, gamma))`` with spreads scaled by ``spread_factor``.

    ``excess`` is ``mean - L`` and ``log_var`` the variance of ``log(X - L)``; both
    ``None`` when the metric has no known lower bound (then only the sample skewness).
    """
    sample = np.abs(raw_skew) + skew_margin
    if excess is None:
        return sample
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(excess > 0, 2.0 * spread_factor * sd / excess, np.inf)
    lognormal = _lognormal_skew(log_var * spread_factor**2)
    return np.minimum(lognormal, np.maximum(sample, gamma))


def summarize(samples: np.ndarray, lower: float | None = None) -> Summary:
    """Summarise replicates ``samples`` of shape ``(R, iterations)``.

    Parameters
    ----------
    samples : array, shape (R, iterations)
        Monte Carlo replicates, one row per replicate.
    lower : float, optional
        Known lower bound of the metric.  When given, the skewness estimate also uses
        the log-normal and gamma shapes above it (see the module docstring);
        otherwise it is the sample skewness alone.

    Returns
    -------
    Summary
        Mean, standard error and skewness-of-the-mean estimates per iteration.
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError("samples must have shape (replicates, iterations) with replicates >= 1")
    r = x.shape[0]
    finite = np.isfinite(x)
    all_finite = finite.all(axis=0)
    constant = (x == x[:1]).all(axis=0)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = x.mean(axis=0)
    mean = np.where(constant, x[0], mean)
    sem = np.full(x.shape[1], math.inf)
    upper = np.full(x.shape[1], math.inf)
    point = np.full(x.shape[1], math.inf)
    signed = np.zeros(x.shape[1])
    cols = all_finite & ~constant
    if r >= 2 and cols.any():
        xc = x[:, cols]
        # Collapsed determinants reach 1e-170: their squares underflow to zero, so the
        # moments are computed on each column divided by its largest magnitude.
        scale = np.abs(xc).max(axis=0)
        xs = xc / scale
        sd = xs.std(axis=0, ddof=1)
        sem[cols] = sd * scale / math.sqrt(r)
        centred = xs - xs.mean(axis=0)
        m2 = (centred**2).mean(axis=0)
        m3 = (centred**3).mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw_skew = np.where(m2 > 0, m3 / m2**1.5, 0.0)
        excess = log_var = None
        if lower is not None:
            excess = xs.mean(axis=0) - lower / scale
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log(np.where(xc - lower > 0, xc - lower, np.nan))
            # replicates exactly at the bound (an atom: a collapsed diversity) make a
            # mixture that no log-normal shape describes, however tight the rest
            usable = (np.isfinite(logs).sum(axis=0) >= 2) & ~(xc == lower).any(axis=0)
            log_var = np.full(xc.shape[1], np.inf)
            if usable.any():
                log_var[usable] = np.nanvar(logs[:, usable], axis=0, ddof=1)
        # Two points always have zero sample skewness: it says nothing about the shape.
        skew_se = math.sqrt(6.0 * (r - 2) / ((r + 1) * (r + 3))) if r > 2 else math.inf
        margin = float(sps.norm.ppf(SKEW_CONFIDENCE)) * skew_se
        spread = math.sqrt((r - 1) / float(sps.chi2.ppf(1.0 - SPREAD_CONFIDENCE, r - 1)))
        estimate = _shape_skewness(raw_skew, sd, excess, log_var, 0.0, 1.0)
        upper[cols] = _shape_skewness(raw_skew, sd, excess, log_var, margin, spread) / math.sqrt(r)
        point[cols] = estimate / math.sqrt(r)
        # A variable bounded below whose spread is large next to its distance from the
        # bound is right-skewed, whatever the sign of a small sample's skewness.
        signed[cols] = np.where(np.abs(raw_skew) >= estimate, raw_skew, estimate) / math.sqrt(r)
    sem = np.where(constant, 0.0, sem)
    upper = np.where(constant, 0.0, upper)
    point = np.where(constant, 0.0, point)
    return Summary(mean=mean, sem=sem, skew_of_mean=upper, replicates=r,
                   signed_skew_of_mean=signed, point_skew_of_mean=point)


@dataclass
class Comparison:
    """All rows of one comparison plus the per-(workflow, metric) verdicts.

    ``table`` has the CSV schema :data:`collapse.simulate.tables.COMPARE_COLUMNS`; rows that
    were not tested have blank ``z``, ``p_adjusted`` and ``consistent``, and their
    reason is in ``status`` (parallel to ``table.rows``).
    """

    table: Table
    status: list[str]
    alpha: float
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)
    binomial: int = 0  #: tested rows of 0/1 metrics (exact binomial tests)
    quantile_rows: int = 0  #: tested quantile rows (exact binomial tests)

    @property
    def consistent(self) -> bool:
        return all(v != "INCONSISTENT" for v in self.verdicts.values())

    @property
    def tested(self) -> int:
        """Number of rows that entered the verdict (0: "consistent" says nothing)."""
        return sum(s == TESTED for s in self.status)

    def summary_table(self) -> Table:
        """One row per (workflow, metric): counts of tested/rejected/untested rows."""
        columns = ("workflow", "metric", "tested", "rejected", "heavy_tailed",
                   "untested", "max_abs_z", "verdict")
        out = Table(columns)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, row in enumerate(self.table.rows):
            groups.setdefault((row[1], row[3]), []).append(i)
        for key, idx in groups.items():
            st = [self.status[i] for i in idx]
            rejected = sum(1 for i in idx if self.table.rows[i][9] is False)
            zs = [abs(self.table.rows[i][7]) for i in idx if self.table.rows[i][7] is not None]
            out.append(
                key[0], key[1], st.count(TESTED), rejected, st.count(HEAVY),
                st.count(DIVERGES) + st.count(NO_THEORY) + st.count(UNDERFLOW)
                + st.count(TOO_FEW),
                max(zs) if zs else None, self.verdicts[key],
            )
        quantiles = sorted({row[3] for row in self.table.rows if quantile_metric(row[3])})
        kinds = []
        if self.tested - self.binomial - self.quantile_rows > 0:
            kinds.append("Student-t tests of means")
        if self.binomial:
            kinds.append("exact binomial tests of 0/1 metrics")
        if self.quantile_rows:
            kinds.append("exact binomial tests of quantiles")
        kind = " and ".join(kinds) or "Student-t tests"
        out.notes.append(
            f"Holm-adjusted two-sided {kind} over all {self.tested} tested rows; "
            f"family-wise false-alarm rate <= alpha = {self.alpha}"
        )
        if quantiles:
            out.notes.append(
                f"{', '.join(quantiles)}: exact quantiles of a metric whose law is known "
                "(theory = the exact quantile, mean = the sample quantile), each tested by the "
                "exact binomial test of the count of replicates below it"
            )
        if self.tested == 0:
            out.notes.append(
                "no row could be tested, so the verdict says nothing about the theory; "
                "more --replicates (or the log_cov_det_ratio rows) would test it"
            )
        if any(s == HEAVY for s in self.status):
            out.notes.append(
                "heavy-tailed rows (estimated skewness of the mean > "
                f"{HEAVY_TAIL_SKEW}) are shown but not tested; more --replicates, or the "
                "log_cov_det_ratio rows, test the same collapse on a valid scale"
            )
        if any(s == TOO_FEW for s in self.status):
            out.notes.append(
                f"{TOO_FEW} rows (counted as untested) look testable, but with this many "
                "replicates their skewness cannot be shown to be small enough; more "
                "--replicates would test them"
            )
        return out


def _p_values(theory: np.ndarray, mean: np.ndarray, sem: np.ndarray, skew_of_mean: np.ndarray,
              df: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`_row_z` over rows that share one reference distribution."""
    theory, mean, sem, g = (np.asarray(a, dtype=float) for a in (theory, mean, sem, skew_of_mean))
    equal = mean == theory
    exact = ~equal & (~(np.isfinite(theory) & np.isfinite(mean)) | (sem == 0.0))
    regular = ~equal & ~exact
    z = np.zeros(theory.shape)
    p = np.ones(theory.shape)
    with np.errstate(invalid="ignore"):
        z[exact] = np.where(mean[exact] < theory[exact], -math.inf, math.inf)
    p[exact] = 0.0
    if regular.any():
        zr = (mean[regular] - theory[regular]) / sem[regular]
        law = sps.norm if df is None else sps.t(df)
        plain = 2.0 * law.sf(np.abs(zr))
        # |z| in the hundreds of digits (a theory off by 1e160) must not overflow z^2:
        # beyond |z| = 40 every reference gives p far below any threshold anyway
        near = np.abs(zr) < 40.0
        zc = np.where(near, zr, 0.0)
        lower = law.cdf(zc) + g[regular] * (2 * zc * zc + 1) * law.pdf(zc) / 6
        lower = np.clip(lower, 0.0, 1.0)
        corrected = np.where(near, np.minimum(1.0, 2.0 * np.minimum(lower, 1.0 - lower)),
                             plain)
        z[regular] = zr
        p[regular] = np.maximum(plain, corrected)
    return z, p


def _row_z(theory: float, mean: float, sem: float, skew_of_mean: float = 0.0,
           df: float | None = None) -> tuple[float, float]:
    """Studentized mean and unadjusted two-sided p-value, aware of exact and infinite values.

    Parameters
    ----------
    theory, mean, sem : float
        Exact expectation, Monte Carlo mean and its standard error.
    skew_of_mean : float
        Signed skewness of the mean, ``g = skew(X) / sqrt(R)``.
    df : float, optional
        Degrees of freedom of the Student-t reference (``R - 1``); ``None`` refers the
        statistic to the standard normal (the ``R -> infinity`` limit).

    Returns
    -------
    z, p : float
        ``z = (mean - theory) / sem`` and its two-sided p-value.

    Notes
    -----
    Equal values (including equal infinities, and constant replicates that hit the
    theory exactly) agree with ``p = 1``; a non-finite mean against a different
    theory, or a constant sample away from it, disagrees with ``p = 0``.

    For normal replicates ``z`` follows Student's t with ``R - 1`` degrees of freedom
    exactly.  Skewness adds the one-term Edgeworth correction of the studentized mean
    (Hall 1992), ``P(T <= z) = F(z) + g (2 z^2 + 1) f(z) / 6``, with ``F, f`` the
    reference distribution function and density (Hall's expansion has ``Phi, phi``;
    the Student density agrees with it as ``R`` grows and keeps the term from
    vanishing in the Student tails at small ``R``).  Right-skewed replicates make
    large negative ``z`` more likely than the symmetric law says.  The p-value is the
    larger of the uncorrected and the corrected one: far in the tail the expansion
    can make the light tail's probability negative, so only its conservative
    direction is trusted.
    """
    z, p = _p_values(np.array([theory]), np.array([mean]), np.array([sem]),
                     np.array([skew_of_mean]), df)
    return float(z[0]), float(p[0])


def _is_indicator(x) -> bool:
    """Whether every replicate is exactly 0 or 1."""
    values = np.asarray(x)
    return values.ndim == 2 and values.shape[0] >= 1 and bool(((values == 0) | (values == 1)).all())


def _binomial_test(ones: int, replicates: int, p: float) -> tuple[float, float]:
    """Score statistic and exact two-sided binomial p-value of ``ones`` in ``replicates``.

    A probability outside ``[0, 1]`` (a wrong theory) disagrees with every sample.
    """
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        return (math.inf if ones / replicates > p else -math.inf), 0.0
    mean = ones / replicates
    if p in (0.0, 1.0):
        if mean == p:
            return 0.0, 1.0
        return (math.inf if mean > p else -math.inf), 0.0
    z = (mean - p) / math.sqrt(p * (1.0 - p) / replicates)
    return z, float(min(1.0, sps.binomtest(ones, replicates, p).pvalue))


def _upper_at(upper_bounds: Mapping, workflow: str, metric: str, t: int) -> float | None:
    values = upper_bounds.get(workflow, {}).get(metric)
    return None if values is None or t >= len(values) else float(values[t])


def _bound_at(constant: float, lower: float | None, upper: float | None) -> float | None:
    """The bound (``lower`` or ``upper``) that ``constant`` sits at, to a relative
    ``1e-12`` (the metric's own arithmetic may round it differently), or ``None``."""
    if lower is None or upper is None or not upper > lower:
        return None
    tolerance = 1e-12 * max(abs(lower), abs(upper), upper - lower)
    for bound in (lower, upper):
        if abs(constant - bound) <= tolerance:
            return bound
    return None


def bound_test(constant: float, theory: float, lower: float, upper: float,
               replicates: int) -> tuple[float, float]:
    """Exact test of a mean ``theory`` when all ``replicates`` sit at one bound.

    ``constant`` is ``lower`` or ``upper`` of a metric known to lie in ``[lower,
    upper]``.  Returns the normal equivalent of the p-value, signed like ``constant -
    theory``, and the p-value ``(1 - (theory - lower) / (upper - lower))^R`` at the
    lower bound (``(upper - theory) / (upper - lower)`` at the upper one), the largest
    probability of the sample under any law on the range with mean ``theory`` (see
    the module docstring); 0 for a theory outside the range.

    Examples
    --------
    >>> z, p = bound_test(0.0, 0.25, 0.0, 0.5, 4)   # (1 - 1/2)^4 = 1/16
    >>> round(z, 4), p                              # z: P(|N(0, 1)| > 1.8627) = 1/16
    (-1.8627, 0.0625)
    >>> bound_test(0.0, 0.6, 0.0, 0.5, 4)[1]   # no law on [0, 0.5] has mean 0.6
    0.0
    """
    sign = -1.0 if constant < theory else 1.0
    if not (lower <= theory <= upper) or not upper > lower:
        return sign * math.inf, 0.0
    share = (theory - lower if constant == lower else upper - theory) / (upper - lower)
    p = math.exp(replicates * math.log1p(-share)) if share < 1.0 else 0.0
    z = float(-special.ndtri(p / 2)) if 0.0 < p < 1.0 else (math.inf if p == 0.0 else 0.0)
    return sign * z, p


@functools.lru_cache(maxsize=64)
def _binomial_tail_table(r: int, probability: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pmf`` of Binomial(r, p), its values sorted, and their running sums."""
    pmf = sps.binom.pmf(np.arange(r + 1), r, probability)
    ordered = np.sort(pmf)
    return pmf, ordered, np.cumsum(ordered)


def binomial_two_sided(k: int, r: int, probability: float) -> float:
    """Exact two-sided binomial p-value of ``k`` successes in ``r`` trials.

    The sum of the probabilities of every outcome no more likely than ``k`` (the
    "minlike" rule of :func:`scipy.stats.binomtest`, with its relative tolerance
    ``1e-7``), from a table computed once per ``(r, p)``: fast for thousands of rows.

    Examples
    --------
    >>> round(binomial_two_sided(3, 20, 0.5), 6)
    0.002577
    >>> round(float(sps.binomtest(3, 20, 0.5).pvalue), 6)
    0.002577
    """
    pmf, ordered, running = _binomial_tail_table(int(r), float(probability))
    position = int(np.searchsorted(ordered, pmf[int(k)] * (1 + 1e-7), side="right"))
    return float(min(1.0, running[position - 1])) if position else 0.0


def quantile_row(x: np.ndarray, probability: float, exact: float) -> tuple[float, float, float, float]:
    """Exact test that ``exact`` is the ``probability``-quantile of the law of ``x``.

    Parameters
    ----------
    x : array, shape (R,)
        Independent replicates of a continuous variable.
    probability : float
        In (0, 1).
    exact : float
        The claimed quantile.

    Returns
    -------
    sample_quantile, sem, z, p : float
        The sample quantile (numpy's default interpolation); a distribution-free
        standard error (half the width of the order-statistic interval
        ``[x_(lo), x_(hi)]``, ``lo, hi = R p -+ 1.96 sqrt(R p (1-p))``, over 1.96); the
        normal equivalent of ``p``, signed like ``sample_quantile - exact``; and the
        exact two-sided binomial p-value of ``K = #{x_i < exact} ~ Binomial(R, p)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(4000)
    >>> q, sem, z, p = quantile_row(x, 0.5, 0.0)
    >>> abs(q) < 3 * sem, p > 0.01
    (True, True)
    >>> quantile_row(x, 0.5, 0.1)[3] < 1e-6   # a median 0.1 sd off is rejected
    True
    """
    x = np.asarray(x, dtype=float).ravel()
    r = x.size
    below = int(np.count_nonzero(x < exact))
    p_value = binomial_two_sided(below, r, probability)
    finite = x[~np.isnan(x)]
    sample = float(np.quantile(finite, probability)) if finite.size else math.nan
    half = 1.959963984540054 * math.sqrt(r * probability * (1 - probability))
    order = np.sort(finite)
    lo = int(min(max(math.floor(r * probability - half), 0), r - 1))
    hi = int(min(max(math.ceil(r * probability + half), 0), r - 1))
    with np.errstate(invalid="ignore"):
        sem = float((order[hi] - order[lo]) / (2 * 1.959963984540054)) if order.size else math.nan
    z = float(-special.ndtri(p_value / 2)) if 0 < p_value < 1 else (math.inf if p_value == 0 else 0.0)
    # fewer replicates below the claimed quantile than expected: the sample quantile is above
    z = z if below < r * probability else -z
    return sample, sem, z, p_value


def _replicate_count(x) -> int:
    shape = np.shape(x)
    return int(shape[0]) if len(shape) == 2 else 0


def compare(
    setting: str,
    theory: Mapping[str, Mapping[str, Sequence[float]]],
    samples: Mapping[str, Mapping[str, np.ndarray]],
    *,
    alpha: float = 0.01,
    lower_bounds: Mapping[str, float | None] | None = None,
    min_replicates: int | None = None,
    binary: Collection[str] = (),
    attained: Collection[str] = (),
    upper_bounds: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> Comparison:
    """Compare exact expectations with Monte Carlo replicates.

    Parameters
    ----------
    setting : str
        Setting name for the table (``gaussian``, ``kde``).
    theory : {workflow: {metric: values per iteration}}
        Exact expectations; a metric absent for a workflow has no exact theory.  A
        name ``<metric>_q<PP>`` holds exact quantiles of ``<metric>`` instead, tested by
        :func:`quantile_row` (see the module docstring).
    samples : {workflow: {metric: array (R, iterations)}}
        Monte Carlo replicates, ``R >= MIN_REPLICATES``.
    alpha : float
        Family-wise false-alarm rate of the overall verdict.
    lower_bounds : {metric: float or None}
        Known lower bound of each metric, used by the heavy-tail diagnostic.
    min_replicates : int, optional
        Override of :data:`MIN_REPLICATES`, for calibration studies that measure what
        happens below it (``benchmarks/false_alarm.py``); not for ordinary use.
    binary : collection of str
        Metrics whose replicates are all 0 or 1: tested by the exact binomial test (see
        the module docstring).
    attained : collection of str
        Metrics whose exact zeros are values, not underflow.
    upper_bounds : {workflow: {metric: values per iteration}}
        The largest value each metric can take; with its lower bound, a row whose
        replicates all sit at one bound is tested by :func:`bound_test`.

    Returns
    -------
    Comparison
        Every row with its status, Holm-adjusted p-values and the verdicts.

    Raises
    ------
    CollapseError
        If ``alpha`` is not in (0, 1), or a sample has fewer than the minimum number of
        replicates (one-line message naming ``replicates``, the minimum and why).
    """
    from statsmodels.stats.multitest import multipletests

    if not 0.0 < alpha < 1.0:
        raise CollapseError(f"alpha must be in (0, 1) (got {alpha})")
    minimum = MIN_REPLICATES if min_replicates is None else int(min_replicates)
    counts = [_replicate_count(x) for per_metric in samples.values() for x in per_metric.values()]
    if counts and min(counts) < minimum:
        raise CollapseError(
            f"replicates must be >= {minimum} for compare (got {min(counts)}): with fewer, a "
            "row's spread and skewness are too uncertain to show that its mean is near-normal, "
            "so no test could hold the stated false-alarm rate")
    lower_bounds = dict(lower_bounds or {})
    upper_bounds = dict(upper_bounds or {})
    table = Table(COMPARE_COLUMNS)
    status: list[str] = []
    # Rows to test, grouped by replicate count (one Student reference per count).
    pending: dict[int, list[tuple[int, float, float, float, float]]] = {}
    # rows tested exactly, not by the studentized mean: indicators and quantiles (row, z, p)
    exact_rows: list[tuple[int, float, float]] = []
    indicator_rows = quantile_rows = 0
    for workflow, per_metric in samples.items():
        for metric, x in per_metric.items():
            s = summarize(x, lower_bounds.get(metric))
            th = theory.get(workflow, {}).get(metric)
            indicator = None
            if metric in binary and _is_indicator(x):
                indicator = np.asarray(x).sum(axis=0).round().astype(np.int64)
            for t in range(s.mean.shape[0]):
                mean, sem = float(s.mean[t]), float(s.sem[t])
                if th is None:
                    table.append(setting, workflow, t + 1, metric, None, mean, sem, None, None, None)
                    status.append(NO_THEORY)
                    continue
                value = float(th[t])
                if indicator is not None:
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(TESTED)
                    z, p = _binomial_test(int(indicator[t]), s.replicates, value)
                    exact_rows.append((len(table.rows) - 1, z, p))
                    indicator_rows += 1
                    continue
                if math.isinf(value) and value > 0 and not (math.isinf(mean) and mean > 0):
                    # A divergent expectation cannot be estimated by a finite mean.
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(DIVERGES)
                    continue
                underflowed = (value > 0 and lower_bounds.get(metric) == 0.0
                               and metric not in attained and bool((x[:, t] == 0.0).any()))
                if underflowed or (abs(value) < _TINY and abs(mean) < _TINY and mean != value):
                    # replicates that reach exactly 0 while the expectation is positive
                    # have underflowed (a collapsed determinant or trace): not testable
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(UNDERFLOW)
                    continue
                bottom, top = lower_bounds.get(metric), _upper_at(upper_bounds, workflow,
                                                                   metric, t)
                bound = _bound_at(mean, bottom, top)
                if bound is not None and mean != value and bool((x[:, t] == mean).all()):
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None,
                                 None)
                    status.append(TESTED)
                    z, p = bound_test(bound, value, bottom, top, s.replicates)
                    exact_rows.append((len(table.rows) - 1, z, p))
                    continue
                upper = float(s.skew_of_mean[t])
                # Non-finite or constant samples are decided exactly by _p_values.
                regular = math.isfinite(mean) and math.isfinite(sem) and sem > 0
                if regular and math.isfinite(value) and not upper <= HEAVY_TAIL_SKEW:
                    point = float(s.point_skew_of_mean[t])
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(TOO_FEW if point <= HEAVY_TAIL_SKEW else HEAVY)
                    continue
                g = float(s.signed_skew_of_mean[t])
                table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                status.append(TESTED)
                pending.setdefault(s.replicates, []).append((len(table.rows) - 1, value, mean, sem, g))
            for name in theory.get(workflow, {}):
                found = quantile_metric(name)
                if found is None or found[0] != metric:
                    continue
                # Exact quantiles of the metric's law: an exact binomial test per row.
                qs = theory[workflow][name]
                for t in range(min(len(qs), x.shape[1])):
                    value = float(qs[t])
                    sample, sem_q, z_q, p_q = quantile_row(x[:, t], found[1], value)
                    table.append(setting, workflow, t + 1, name, value, sample, sem_q,
                                 None, None, None)
                    status.append(TESTED)
                    exact_rows.append((len(table.rows) - 1, z_q, p_q))
                    quantile_rows += 1
    raw: list[tuple[int, float, float]] = []  # (row index, z, p)
    for r, rows in pending.items():
        idx, values, means, sems, gs = (list(c) for c in zip(*rows))
        z, p = _p_values(np.array(values), np.array(means), np.array(sems), np.array(gs), r - 1)
        raw.extend(zip(idx, z.tolist(), p.tolist()))
    raw.extend(exact_rows)
    raw.sort()
    for i, z, p in raw:
        row = list(table.rows[i])
        row[7], row[8] = z, p
        table.rows[i] = tuple(row)
    if raw:
        reject, p_adj, _, _ = multipletests([p for _, _, p in raw], alpha=alpha, method="holm")
        for (i, _, _), rej, pa in zip(raw, reject, p_adj):
            row = list(table.rows[i])
            row[8] = float(pa)
            row[9] = not bool(rej)
            table.rows[i] = tuple(row)
    result = Comparison(table=table, status=status, alpha=alpha, binomial=indicator_rows,
                        quantile_rows=quantile_rows)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(table.rows):
        groups.setdefault((row[1], row[3]), []).append(i)
    for key, idx in groups.items():
        tested = [i for i in idx if status[i] == TESTED]
        if any(table.rows[i][9] is False for i in tested):
            result.verdicts[key] = "INCONSISTENT"
        elif tested:
            result.verdicts[key] = "consistent"
        else:
            # Nothing testable: say why (the most common reason among its rows).
            reasons = [status[i] for i in idx]
            result.verdicts[key] = max(set(reasons), key=reasons.count)
    return result


def simulate_table(
    setting: str,
    samples: Mapping[str, Mapping[str, np.ndarray]],
) -> Table:
    """Tidy ``collapse.simulate`` table (mean and sem per iteration) from replicates."""
    table = Table(SIMULATE_COLUMNS)
    for workflow, per_metric in samples.items():
        for metric, x in per_metric.items():
            s = summarize(x)
            for t in range(s.mean.shape[0]):
                # One replicate has no spread: the standard error is blank, not inf or NaN.
                sem = float(s.sem[t]) if s.replicates >= 2 else None
                table.append(setting, workflow, t + 1, metric, float(s.mean[t]), sem,
                             s.replicates)
    return table
