"""One figure layout for every setting: a panel per metric, a colour per workflow.

Theory (exact expectations) is drawn as lines, Monte Carlo means as markers with
95% error bars (``1.96 * sem``).  A panel switches to a logarithmic y axis when all
its finite values are positive and span more than two decades, which is how
replace's geometric collapse is best seen.  Non-finite values are left out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.tables import Table

#: One colour per workflow in every figure of the project (Gaussian, KDE and LM).
WORKFLOW_COLOURS = {"replace": "#d62728", "accumulate": "#1f77b4",
                    "accumulate-subsample": "#2ca02c"}


def _series(table: Table, value_column: str) -> dict[tuple[str, str], list[tuple[int, float, float | None]]]:
    cols = table.columns
    iw, it, im = cols.index("workflow"), cols.index("iteration"), cols.index("metric")
    iv = cols.index(value_column)
    isem = cols.index("sem") if "sem" in cols and value_column == "mean" else None
    out: dict[tuple[str, str], list[tuple[int, float, float | None]]] = {}
    for row in table.rows:
        value = row[iv]
        if value is None or not math.isfinite(float(value)):
            continue
        sem = row[isem] if isem is not None else None
        out.setdefault((row[im], row[iw]), []).append((int(row[it]), float(value), sem))
    return out


def plot_curves(
    path: str | Path,
    *,
    simulated: Table | None = None,
    theory: Table | None = None,
    title: str | None = None,
    metrics: Iterable[str] | None = None,
) -> Path:
    """Draw theory lines and Monte Carlo error bars; write a PNG (or any matplotlib format).

    ``simulated`` has the simulate schema (``mean``, ``sem``), ``theory`` the theory
    schema (``value``) or the compare schema (``theory``).  Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mc = _series(simulated, "mean") if simulated is not None else {}
    th: dict = {}
    if theory is not None:
        th = _series(theory, "value" if "value" in theory.columns else "theory")
    names = list(metrics) if metrics is not None else []
    if not names:
        for key in list(th) + list(mc):
            if key[0] not in names:
                names.append(key[0])
    if not names:
        raise ValueError("nothing to plot: no finite values")
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, names):
        values: list[float] = []
        for workflow in WORKFLOWS:
            colour = WORKFLOW_COLOURS.get(workflow)
            line = th.get((metric, workflow))
            if line:
                ax.plot([p[0] for p in line], [p[1] for p in line], "-", color=colour,
                        lw=1.6, label=f"{workflow} (theory)")
                values += [p[1] for p in line]
            pts = mc.get((metric, workflow))
            if pts:
                err = [1.96 * p[2] if p[2] is not None and math.isfinite(p[2]) else 0.0 for p in pts]
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=err, fmt="o",
                            ms=2.5, color=colour, alpha=0.75, elinewidth=0.8,
                            label=f"{workflow} (Monte Carlo)" if pts else None)
                values += [p[1] for p in pts]
        positive = [v for v in values if v > 0]
        if values and len(positive) == len(values) and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        ax.set_title(metric)
        ax.set_xlabel("model-fitting iteration t")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
