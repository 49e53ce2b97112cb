"""Theory-versus-simulation statistics: one implementation for every setting.

For each (workflow, metric, iteration) the Monte Carlo gives ``R`` independent
replicates ``X_1..X_R``.  The row is compared with the exact expectation ``mu`` by::

    z = (mean(X) - mu) / sem,   sem = sd(X) / sqrt(R),   p = 2 (1 - Phi(|z|)),

with the p-value corrected for the skewness of the studentized mean by the
one-term Edgeworth expansion (Hall 1992), and the p-values of every tested row of
one ``compare`` call (all workflows, metrics and iterations together) are adjusted with Holm's step-down method
(statsmodels ``multipletests``), which controls the family-wise error rate under
any dependence between rows, in particular between the iterations of one
replicate.  The verdict "inconsistent" therefore has false-alarm probability at
most ``alpha`` for the whole call, provided the normal approximation to each
row's mean holds.

Heavy tails.  Under ``replace`` many metrics are products of independent random
factors (``det``, ``tr``, ``tr Sigma^{-1}``), close to log-normal with a
log-variance that grows linearly in ``t``.  The sample mean of such variables is
dominated by rare replicates, so the z-test rejects a correct theory far more
often than ``alpha``.  Each row's skewness-of-the-mean is estimated as::

    g = min(skew(X), skew_LN(var log(X - lower))) / sqrt(R),

where ``skew_LN(s2) = (exp(s2) + 2) sqrt(exp(s2) - 1)`` is the skewness of a
log-normal with log-variance ``s2`` and ``lower`` is a known lower bound of the
metric (0 for errors and ratios, the truth's entropy for a cross-entropy).  The
sample skewness is reliable for light tails and underestimates heavy ones; the
log-normal value is reliable exactly when the log is a sum of many independent
terms: their minimum avoids flagging light-tailed rows (e.g. ``chi^2_1``) whose
logarithm happens to have a long left tail.  Rows with ``g > HEAVY_TAIL_SKEW``
are reported but left out of the verdict ("heavy-tailed"); the log-determinant,
a sum of independent log-chi-square terms, always remains testable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from collapse.simulate.tables import COMPARE_COLUMNS, SIMULATE_COLUMNS, Table

#: Largest estimated skewness of a row's sample mean for which its z-test counts.
HEAVY_TAIL_SKEW = 0.05

#: Row status values.
TESTED = "tested"
HEAVY = "heavy-tailed"
DIVERGES = "diverges"
NO_THEORY = "no-theory"
UNDERFLOW = "underflow"

#: Below the smallest normal float64 (about 2.2e-308) values are not resolved well
#: enough to compare: a collapsed determinant is then 0 in every replicate.
_TINY = float(np.finfo(float).tiny)


@dataclass(frozen=True)
class Summary:
    """Mean, standard error and tail diagnostic of one metric, per iteration.

    ``mean`` and ``sem`` have shape ``(iterations,)``; ``skew_of_mean`` is the
    estimated skewness of the sample mean (see module docstring).  Non-finite
    replicates (``inf`` test NLL of a singular fit, ``-inf`` log-determinant) give
    a non-finite mean and an infinite ``sem`` unless all replicates are equal.
    """

    mean: np.ndarray
    sem: np.ndarray
    skew_of_mean: np.ndarray
    replicates: int
    signed_skew_of_mean: np.ndarray | None = None


def _lognormal_skew(log_var: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.minimum(log_var, 700.0))
        return (e + 2.0) * np.sqrt(np.maximum(e - 1.0, 0.0))


def summarize(samples: np.ndarray, lower: float | None = None) -> Summary:
    """Summarise replicates ``samples`` of shape ``(R, iterations)``."""
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
    skew = np.full(x.shape[1], math.inf)
    signed = np.zeros(x.shape[1])
    cols = all_finite & ~constant
    if r >= 2 and cols.any():
        xc = x[:, cols]
        # Collapsed determinants reach 1e-170: their squares underflow to zero, so the
        # moments are computed on each column divided by its largest magnitude.
        scale = np.abs(xc).max(axis=0)
        xs = xc / scale
        sd = xs.std(axis=0, ddof=1) * scale
        sem[cols] = sd / math.sqrt(r)
        centred = xs - xs.mean(axis=0)
        m2 = (centred**2).mean(axis=0)
        m3 = (centred**3).mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw_skew = np.where(m2 > 0, m3 / m2**1.5, 0.0)
        signed[cols] = raw_skew / math.sqrt(r)
        sample_skew = np.abs(raw_skew)
        if lower is not None:
            shifted = xc - lower
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log(np.where(shifted > 0, shifted, np.nan))
            usable = np.isfinite(logs).sum(axis=0) >= 2
            log_var = np.full(xc.shape[1], np.inf)
            if usable.any():
                log_var[usable] = np.nanvar(logs[:, usable], axis=0, ddof=1)
            sample_skew = np.minimum(sample_skew, _lognormal_skew(log_var))
        skew[cols] = sample_skew / math.sqrt(r)
    sem = np.where(constant, 0.0, sem)
    skew = np.where(constant, 0.0, skew)
    return Summary(mean=mean, sem=sem, skew_of_mean=skew, replicates=r,
                   signed_skew_of_mean=signed)


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

    @property
    def consistent(self) -> bool:
        return all(v != "INCONSISTENT" for v in self.verdicts.values())

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
                st.count(DIVERGES) + st.count(NO_THEORY) + st.count(UNDERFLOW),
                max(zs) if zs else None, self.verdicts[key],
            )
        out.notes.append(
            f"Holm-adjusted two-sided z-tests over all {sum(s == TESTED for s in self.status)} "
            f"tested rows; family-wise false-alarm rate <= alpha = {self.alpha}"
        )
        if any(s == HEAVY for s in self.status):
            out.notes.append(
                "heavy-tailed rows (estimated skewness of the mean > "
                f"{HEAVY_TAIL_SKEW}) are shown but not tested; more --replicates, or the "
                "log_cov_det_ratio rows, test the same collapse on a valid scale"
            )
        return out


def _row_z(theory: float, mean: float, sem: float, skew_of_mean: float = 0.0) -> tuple[float, float]:
    """z-score and unadjusted two-sided p-value, aware of exact and infinite values.

    Equal values (including equal infinities, and constant replicates that hit the
    theory exactly) agree with ``p = 1``; a non-finite mean against a different
    theory, or a constant sample away from it, disagrees with ``p = 0``.

    The p-value carries the one-term Edgeworth correction of the studentized mean
    (Hall 1992): with ``g = skew(X) / sqrt(R)``,
    ``P(T <= z) = Phi(z) + g (2 z^2 + 1) phi(z) / 6 + O(1/R)``.  Right-skewed
    replicates make large negative ``z`` more likely than the normal law says; the
    correction keeps the Holm thresholds (``|z|`` near 4) honest.  The p-value is the
    larger of the normal and the corrected one, because in the far tail the
    expansion can make the light tail's probability negative.
    """
    if mean == theory:
        return 0.0, 1.0
    if not (math.isfinite(theory) and math.isfinite(mean)) or sem == 0.0:
        diff = mean - theory
        return (-math.inf if diff < 0 else math.inf), 0.0
    z = (mean - theory) / sem
    if not abs(z) < 40.0:
        # far beyond any family-wise threshold; the expansion's z^2 would overflow
        return z, float(2.0 * sps.norm.sf(min(abs(z), 1e300)))
    normal = float(2.0 * sps.norm.sf(abs(z)))
    lower = float(sps.norm.cdf(z)) + skew_of_mean * (2 * z * z + 1) * float(sps.norm.pdf(z)) / 6
    lower = min(max(lower, 0.0), 1.0)
    corrected = min(1.0, 2.0 * min(lower, 1.0 - lower))
    # Far in the tail the one-term expansion can drive the light tail's probability
    # below zero; only its conservative direction is trusted: the correction may raise
    # a p-value, never lower it.
    return z, max(normal, corrected)


def compare(
    setting: str,
    theory: Mapping[str, Mapping[str, Sequence[float]]],
    samples: Mapping[str, Mapping[str, np.ndarray]],
    *,
    alpha: float = 0.01,
    lower_bounds: Mapping[str, float | None] | None = None,
    diverging_ok: bool = True,
) -> Comparison:
    """Compare exact expectations with Monte Carlo replicates.

    Parameters
    ----------
    setting : str
        Setting name for the table (``gaussian``, ``kde``).
    theory : {workflow: {metric: values per iteration}}
        Exact expectations; a metric absent for a workflow has no exact theory.
    samples : {workflow: {metric: array (R, iterations)}}
        Monte Carlo replicates.
    alpha : float
        Family-wise false-alarm rate of the overall verdict.
    lower_bounds : {metric: float or None}
        Known lower bound of each metric, used by the heavy-tail diagnostic.
    """
    from statsmodels.stats.multitest import multipletests

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    lower_bounds = dict(lower_bounds or {})
    table = Table(COMPARE_COLUMNS)
    status: list[str] = []
    raw: list[tuple[int, float, float]] = []  # (row index, z, p)
    for workflow, per_metric in samples.items():
        for metric, x in per_metric.items():
            s = summarize(x, lower_bounds.get(metric))
            th = theory.get(workflow, {}).get(metric)
            for t in range(s.mean.shape[0]):
                mean, sem = float(s.mean[t]), float(s.sem[t])
                if th is None:
                    table.append(setting, workflow, t + 1, metric, None, mean, sem, None, None, None)
                    status.append(NO_THEORY)
                    continue
                value = float(th[t])
                if math.isinf(value) and value > 0 and not (math.isinf(mean) and mean > 0):
                    # A divergent expectation cannot be estimated by a finite mean.
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(DIVERGES)
                    continue
                underflowed = (value > 0 and lower_bounds.get(metric) == 0.0
                               and bool((x[:, t] == 0.0).any()))
                if underflowed or (abs(value) < _TINY and abs(mean) < _TINY and mean != value):
                    # replicates that reach exactly 0 while the expectation is positive
                    # have underflowed (a collapsed determinant or trace): not testable
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(UNDERFLOW)
                    continue
                if math.isfinite(s.skew_of_mean[t]) and s.skew_of_mean[t] > HEAVY_TAIL_SKEW and math.isfinite(value):
                    table.append(setting, workflow, t + 1, metric, value, mean, sem, None, None, None)
                    status.append(HEAVY)
                    continue
                g = float(s.signed_skew_of_mean[t]) if s.signed_skew_of_mean is not None else 0.0
                z, p = _row_z(value, mean, sem, g)
                table.append(setting, workflow, t + 1, metric, value, mean, sem, z, p, None)
                status.append(TESTED)
                raw.append((len(table.rows) - 1, z, p))
    if raw:
        reject, p_adj, _, _ = multipletests([p for _, _, p in raw], alpha=alpha, method="holm")
        for (i, _z, _), rej, pa in zip(raw, reject, p_adj):
            row = list(table.rows[i])
            row[8] = float(pa)
            row[9] = not bool(rej)
            table.rows[i] = tuple(row)
    result = Comparison(table=table, status=status, alpha=alpha)
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
