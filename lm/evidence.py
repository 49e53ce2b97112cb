"""Between-workflow tests at one iteration: Welch's t-test, effect sizes, paired tests.

For a metric at iteration ``t`` each workflow has one value per replicate seed.  For
every pair of workflows ``(a, b)`` :func:`pairwise` reports:

* the difference of means ``mean_a - mean_b`` with its 95% confidence interval from
  Welch's unequal-variance ``t`` (Welch-Satterthwaite degrees of freedom);
* Welch's two-sided p-value (:func:`scipy.stats.ttest_ind` with ``equal_var=False``) and
  the same p-values adjusted for all pairs of the table by Holm's method;
* Hedges' ``g``: the difference over the pooled standard deviation, times the small-sample
  correction ``J = 1 - 3 / (4 (n_a + n_b) - 9)``;
* the paired t-test over the seeds both workflows have (:func:`scipy.stats.ttest_rel`).
  The loop uses common random numbers (every workflow of a seed shares its real data,
  base model and random streams, so iteration 1 is identical), which makes the seeds
  paired; Welch's test ignores that pairing and is the conservative one.

No torch here: the inputs are numbers read from run directories or checked-in tables.

Examples
--------
>>> rows = pairwise({"a": [1.0, 1.2, 1.1], "b": [2.0, 2.1, 1.9]})
>>> row = rows[0]
>>> row["a"], row["b"], round(row["difference"], 3), row["welch_p"] < 0.01
('a', 'b', -0.9, True)
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np

#: Columns of :func:`pairwise_table`.
PAIR_COLUMNS: tuple[str, ...] = (
    "a", "b", "n_a", "n_b", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
    "welch_t", "welch_df", "welch_p", "welch_p_holm", "hedges_g", "paired_n", "paired_p",
)


def welch(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch's test of ``mean(a) = mean(b)`` with the 95% interval of the difference and Hedges' g."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        raise ValueError("Welch's test needs at least 2 values per group")
    va, vb = x.var(ddof=1), y.var(ddof=1)
    diff = float(x.mean() - y.mean())
    se2 = va / na + vb / nb
    if se2 > 0:
        df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
        half = float(stats.t.ppf(0.975, df)) * math.sqrt(se2)
        test = stats.ttest_ind(x, y, equal_var=False)
        t, p = float(test.statistic), float(test.pvalue)
    else:  # both groups constant
        df, half = float(na + nb - 2), 0.0
        t, p = (math.copysign(math.inf, diff), 0.0) if diff else (0.0, 1.0)
    pooled = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    correction = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0)
    g = diff / pooled * correction if pooled > 0 else (math.copysign(math.inf, diff) if diff else 0.0)
    return {"n_a": na, "n_b": nb, "mean_a": float(x.mean()), "mean_b": float(y.mean()),
            "difference": diff, "ci_low": diff - half, "ci_high": diff + half,
            "welch_t": t, "welch_df": float(df), "welch_p": p, "hedges_g": float(g)}


def welch_summary(mean_a: float, sem_a: float, n_a: int, mean_b: float, sem_b: float, n_b: int) -> dict:
    """:func:`welch` from the summaries a report table keeps (mean, standard error, count).

    The same test: ``t = (m_a - m_b) / sqrt(sem_a^2 + sem_b^2)`` with Welch-Satterthwaite
    ``df = (sem_a^2 + sem_b^2)^2 / (sem_a^4 / (n_a - 1) + sem_b^4 / (n_b - 1))``; Hedges'
    g from the standard deviations ``sem * sqrt(n)``.

    Examples
    --------
    >>> r = welch_summary(4.690, 0.066, 3, 4.461, 0.016, 3)
    >>> round(r["welch_p"], 3)
    0.067
    """
    from scipy import stats

    va, vb = sem_a ** 2, sem_b ** 2
    diff = mean_a - mean_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.975, df)) * se
    sd_a2, sd_b2 = va * n_a, vb * n_b
    pooled = math.sqrt(((n_a - 1) * sd_a2 + (n_b - 1) * sd_b2) / (n_a + n_b - 2))
    g = diff / pooled * (1.0 - 3.0 / (4.0 * (n_a + n_b) - 9.0))
    return {"n_a": n_a, "n_b": n_b, "mean_a": mean_a, "mean_b": mean_b, "difference": diff,
            "ci_low": diff - half, "ci_high": diff + half, "welch_t": t, "welch_df": df, "welch_p": p,
            "hedges_g": g}


def pairwise_summary(summaries: Mapping[str, tuple[float, float, int]]) -> list[dict]:
    """:func:`welch_summary` for every pair of ``name -> (mean, sem, n)``, with Holm's adjustment
    (no paired test: a summary has lost the pairing)."""
    rows = [{"a": a, "b": b, **welch_summary(*summaries[a], *summaries[b]), "paired_n": 0,
             "paired_p": math.nan} for a, b in combinations(list(summaries), 2)]
    for row, adjusted in zip(rows, holm([r["welch_p"] for r in rows])):
        row["welch_p_holm"] = adjusted
    return rows


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate under any dependence)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def pairwise(values: Mapping[str, Sequence[float]], seeds: Mapping[str, Sequence[int]] | None = None) -> list[dict]:
    """Every pair of groups in ``values`` (in order): :func:`welch` plus Holm and paired p-values.

    ``seeds[name]`` lists the seed of each value (default ``0, 1, ...``), for the paired test.
    Non-finite values are left out.
    """
    from scipy import stats

    clean, keys = {}, {}
    for name, vals in values.items():
        arr = np.asarray(vals, dtype=float)
        ids = list(seeds[name]) if seeds is not None else list(range(arr.size))
        keep = np.isfinite(arr)
        clean[name] = arr[keep]
        keys[name] = [s for s, k in zip(ids, keep) if k]
    rows = []
    for a, b in combinations(list(values), 2):
        row = {"a": a, "b": b, **welch(clean[a], clean[b])}
        common = sorted(set(keys[a]) & set(keys[b]))
        row["paired_n"] = len(common)
        if len(common) >= 2:
            xa = [clean[a][keys[a].index(s)] for s in common]
            xb = [clean[b][keys[b].index(s)] for s in common]
            d = np.subtract(xa, xb)
            row["paired_p"] = (float(stats.ttest_rel(xa, xb).pvalue) if np.ptp(d) > 0
                               else (0.0 if d[0] else 1.0))
        else:
            row["paired_p"] = math.nan
        rows.append(row)
    for row, adjusted in zip(rows, holm([r["welch_p"] for r in rows])):
        row["welch_p_holm"] = adjusted
    return rows


def pairwise_table(values: Mapping[str, Sequence[float]], seeds: Mapping[str, Sequence[int]] | None = None):
    """:func:`pairwise` as a :class:`collapse.simulate.tables.Table` (columns :data:`PAIR_COLUMNS`)."""
    from collapse.simulate.tables import Table

    table = Table(PAIR_COLUMNS)
    for row in pairwise(values, seeds):
        table.append(*(row[c] for c in PAIR_COLUMNS))
    return table


def last_iteration_values(records: Sequence[dict], metric: str) -> tuple[int, dict, dict]:
    """``(t, values, seeds)`` at the last iteration every workflow of ``records`` reached.

    ``records`` are rows with ``workflow``, ``seed``, ``iteration``, ``metric``, ``value``
    (the long format of :func:`long_records`).
    """
    rows = [r for r in records if r["metric"] == metric]
    workflows = list(dict.fromkeys(r["workflow"] for r in rows))
    t = min(max(r["iteration"] for r in rows if r["workflow"] == w) for w in workflows)
    values, seeds = {}, {}
    for w in workflows:
        mine = sorted((r for r in rows if r["workflow"] == w and r["iteration"] == t), key=lambda r: r["seed"])
        values[w] = [r["value"] for r in mine]
        seeds[w] = [r["seed"] for r in mine]
    return t, values, seeds


def long_records(result) -> list[dict]:
    """Per-seed values of an :class:`collapse.lm.report.LMResult` in long format
    (``workflow, seed, iteration, metric, value``), finite values only."""
    out = []
    for w in result.workflows:
        for metric, x in result.samples[w.label].items():
            for k, seed in enumerate(result.seeds):
                for t in range(x.shape[1]):
                    if math.isfinite(x[k, t]):
                        out.append({"workflow": w.label, "seed": int(seed), "iteration": t + 1,
                                    "metric": metric, "value": float(x[k, t])})
    return out
