"""Summaries of a run directory: a simulate-schema table, growth-shape verdicts, a figure.

For each workflow, iteration ``t`` and metric the table holds the mean over
replicate seeds ``m_t = (1/K) sum_s y_{s,t}`` and its standard error
``sem_t = sd_s(y_{s,t}) / sqrt(K)`` (sample standard deviation, ``K-1``
divisor; blank (not applicable) when ``K = 1``), with ``replicates = K`` the number of seeds
that completed iteration ``t``.  Columns are :data:`collapse.simulate.tables.SIMULATE_COLUMNS`
with setting ``collapse.lm``, so the Gaussian, KDE and LM settings share one format.

No torch here: reporting needs only the JSON files of the run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import LM, WORKFLOWS
from collapse.lm import growth, rundir
from collapse.lm.metrics import HELDOUT_CE, LM_METRICS, METRIC_LABELS, sample_metrics
from collapse.simulate.tables import SIMULATE_COLUMNS, Table


def load_records(root: str | Path) -> tuple[dict, list[dict]]:
    """The run's configuration and every committed iteration record (``metrics.json``)."""
    root = Path(root)
    config = rundir.read_config(root)
    records = []
    for workflow in WORKFLOWS:
        base = root / workflow
        if not base.is_dir():
            continue
        for path in sorted(base.glob(f"seed-*/iter-*/{rundir.METRICS}")):
            records.append(rundir.read_json(path))
    return config, records


def _mean_sem(values: list[float]) -> tuple[float, float | None]:
    k = len(values)
    mean = math.fsum(values) / k
    if k < 2:
        return mean, None  # one seed has no spread to estimate: blank, never NaN
    var = math.fsum((v - mean) ** 2 for v in values) / (k - 1)
    return mean, math.sqrt(var / k)


def summary_table(root: str | Path, metrics: tuple[str, ...] = LM_METRICS) -> Table:
    """Mean and standard error over seeds per (workflow, iteration, metric); growth verdicts as notes."""
    config, records = load_records(root)
    if not records:
        raise CollapseError(f"DIR: {root} holds no completed iteration yet")
    by_key: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for record in records:
        for metric in metrics:
            value = record["metrics"].get(metric)
            key = (record["workflow"], metric, int(record["iteration"]))
            by_key.setdefault(key, [])
            # a statistic undefined for one seed (no word bigram at all) is left out of the
            # mean; ``replicates`` then counts the seeds that define it
            if value is not None and math.isfinite(float(value)):
                by_key[key].append(float(value))
    table = Table(SIMULATE_COLUMNS)
    seeds_asked = len(config.get("extent", {}).get("seeds", [])) or None
    short = set()
    for workflow in WORKFLOWS:
        for metric in metrics:
            ts = sorted(t for (w, m, t) in by_key if w == workflow and m == metric)
            for t in ts:
                values = by_key[(workflow, metric, t)]
                if not values:
                    continue  # undefined for every seed: no row rather than a NaN
                mean, sem = _mean_sem(values)
                table.append(LM, workflow, t, metric, mean, sem, len(values))
                if seeds_asked and len(values) < seeds_asked:
                    short.add((workflow, t))
    for workflow, t in sorted(short):
        table.notes.append(f"{workflow} iteration {t}: fewer seeds than requested (run incomplete, or a "
                           "statistic undefined for some seed)")
    reference = real_reference(root)
    if reference:
        table.notes.append(
            "real training sets for comparison (mean over seeds): "
            + ", ".join(f"{metric} {value:.4g}" for metric, value in reference.items()))
    table.notes.extend(growth_notes(table))
    return table


def real_reference(root: str | Path) -> dict[str, float]:
    """The sample statistics of the real training sets (mean over seeds), the level at t = 0."""
    per_seed = []
    for path in sorted(Path(root).glob("real/seed-*.jsonl")):
        texts = [r["text"] for r in rundir.read_jsonl(path)]
        per_seed.append(sample_metrics(texts))
    if not per_seed:
        return {}
    return {m: math.fsum(s[m] for s in per_seed) / len(per_seed) for m in per_seed[0]}


def growth_verdicts(table: Table, metric: str = HELDOUT_CE) -> dict[str, growth.Verdict]:
    """:func:`collapse.lm.growth.fit_growth` of each workflow's ``metric`` curve in ``table``."""
    out = {}
    for workflow in WORKFLOWS:
        rows = table.select(workflow=workflow, metric=metric).records()
        if rows:
            out[workflow] = growth.fit_growth(
                [r["iteration"] for r in rows], [r["mean"] for r in rows], [r["sem"] for r in rows])
    return out


def growth_notes(table: Table, metric: str = HELDOUT_CE) -> list[str]:
    return [f"growth of {metric}, {w}: {v.describe()}" for w, v in growth_verdicts(table, metric).items()]


def plot(table: Table, path: str | Path, title: str | None = None) -> None:
    """One panel per metric, one line with standard-error bars per workflow (PNG via Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapse.simulate.plotting import WORKFLOW_COLOURS

    metrics = [m for m in LM_METRICS if table.select(metric=m).rows]
    cols = 2 if len(metrics) > 1 else 1
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for workflow in WORKFLOWS:
            recs = table.select(workflow=workflow, metric=metric).records()
            if not recs:
                continue
            ts = [r["iteration"] for r in recs]
            means = [r["mean"] for r in recs]
            sems = [r["sem"] if r["sem"] is not None and math.isfinite(r["sem"]) else 0.0 for r in recs]
            ax.errorbar(ts, means, yerr=sems, marker="o", markersize=3, capsize=2, label=workflow,
                        color=WORKFLOW_COLOURS.get(workflow))
        ax.set_xlabel("model-fitting iteration t")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    axes.flat[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
