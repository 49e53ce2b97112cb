"""One figure layout for every setting: a panel per metric, a colour per workflow.

Theory (exact expectations) is drawn as lines, Monte Carlo means as markers with
95% error bars (``1.96 * sem``).  Rows of a comparison that were not tested (set
aside as heavy-tailed, diverging or underflowing) are drawn with hollow markers, so a
visible gap between a line and such markers is never mistaken for a rejection.  A
panel switches to a logarithmic y axis when all its finite values are positive and
span more than two decades, which is how replace's geometric collapse is best seen.
Non-finite values are left out.

Nothing here changes matplotlib's backend or touches pyplot's global figures: a
figure is a bare :class:`matplotlib.figure.Figure`, drawn on given axes or saved by
:func:`save_figure`.
"""

from __future__ import annotations

import io
import math
import os
from typing import Iterable, Sequence

from collapse.analysis.vocabulary import METRIC_LABELS, WORKFLOWS
from collapse.simulate.tables import Table, quantile_metric

#: One colour per workflow in every figure of the project (Gaussian, KDE and LM).
WORKFLOW_COLOURS = {"replace": "#d62728", "accumulate": "#1f77b4",
                    "accumulate-subsample": "#2ca02c", "fresh": "#9467bd"}
_EXTRA_COLOURS = ("#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def colour(workflow: str, order: Sequence[str] = ()) -> str:
    """The colour of ``workflow``: fixed for the presets, then a palette by position."""
    if workflow in WORKFLOW_COLOURS:
        return WORKFLOW_COLOURS[workflow]
    others = [w for w in order if w not in WORKFLOW_COLOURS]
    index = others.index(workflow) if workflow in others else len(others)
    return _EXTRA_COLOURS[index % len(_EXTRA_COLOURS)]


def _series(table: Table, value_column: str) -> dict[tuple[str, str], list[tuple]]:
    cols = table.columns
    iw, it, im = cols.index("workflow"), cols.index("iteration"), cols.index("metric")
    iv = cols.index(value_column)
    isem = cols.index("sem") if "sem" in cols and value_column == "mean" else None
    itested = cols.index("consistent") if "consistent" in cols else None
    itheory = cols.index("theory") if "theory" in cols else None
    out: dict[tuple[str, str], list[tuple]] = {}
    for row in table.rows:
        value = row[iv]
        if value is None or not math.isfinite(float(value)):
            continue
        sem = row[isem] if isem is not None else None
        # a row with theory that was not tested (set aside) is drawn hollow; rows with no
        # theory at all are plain Monte Carlo
        tested = (itested is None or row[itested] is not None
                  or (itheory is not None and row[itheory] is None))
        out.setdefault((row[im], row[iw]), []).append((int(row[it]), float(value), sem, tested))
    return out


def workflow_order(*tables: Table | None) -> list[str]:
    """Workflows of the tables: the presets first (in table order), then the rest."""
    seen: list[str] = []
    for table in tables:
        if table is None:
            continue
        i = table.columns.index("workflow")
        for row in table.rows:
            if row[i] not in seen:
                seen.append(row[i])
    return [w for w in WORKFLOWS if w in seen] + [w for w in seen if w not in WORKFLOWS]


def metric_order(*tables: Table | None) -> list[str]:
    """Metrics of the tables, in order of first appearance."""
    seen: list[str] = []
    for table in tables:
        if table is None:
            continue
        i = table.columns.index("metric")
        for row in table.rows:
            if row[i] not in seen:
                seen.append(row[i])
    return seen


#: Suffix of the panel that draws every exact-quantile row of one metric together.
QUANTILES_PANEL = "_quantiles"


def panel_order(*tables: Table | None) -> list[str]:
    """The panels of a figure: every metric in order, except that the exact-quantile rows
    of a metric (``<metric>_q25``, ``_q50``, ...) share one panel, ``<metric>_quantiles``,
    placed after the metric itself."""
    panels: list[str] = []
    for metric in metric_order(*tables):
        found = quantile_metric(metric)
        name = found[0] + QUANTILES_PANEL if found else metric
        if name not in panels:
            panels.append(name)
    return panels


def metric_label(metric: str) -> str:
    """The y-axis label of ``metric`` (or of a quantile row or panel), with its unit."""
    if metric.endswith(QUANTILES_PANEL):
        base = metric[: -len(QUANTILES_PANEL)]
        return f"{METRIC_LABELS.get(base, base)}, exact quantiles"
    found = quantile_metric(metric)
    if found:
        return f"{METRIC_LABELS.get(found[0], found[0])}, {100 * found[1]:g}% quantile"
    return METRIC_LABELS.get(metric, metric)


_QUANTILE_STYLES = ("--", "-", ":", "-.")


def draw_metric(ax, metric: str, *, simulated: Table | None = None,
                theory: Table | None = None, legend: bool = True) -> None:
    """Draw one metric on the matplotlib axes ``ax``.

    ``simulated`` has the simulate or compare schema (``mean``, ``sem``; a compare
    table's ``consistent`` column marks the tested rows), ``theory`` the theory schema
    (``value``) or the compare schema (``theory``).
    """
    mc = _series(simulated, "mean") if simulated is not None else {}
    th: dict = {}
    if theory is not None:
        th = _series(theory, "value" if "value" in theory.columns else "theory")
    order = workflow_order(theory, simulated)
    if metric.endswith(QUANTILES_PANEL):
        # every exact quantile of the metric, one line style per probability
        base = metric[: -len(QUANTILES_PANEL)]
        members = sorted({m for m, _ in list(th) + list(mc)
                          if (quantile_metric(m) or ("",))[0] == base})
    else:
        members = [metric]
    values: list[float] = []
    for workflow in order:
        shade = colour(workflow, order)
        for k, member in enumerate(members):
            found = quantile_metric(member)
            tag = f"q{round(100 * found[1])} " if found and len(members) > 1 else ""
            style = _QUANTILE_STYLES[k % len(_QUANTILE_STYLES)] if len(members) > 1 else "-"
            line = th.get((member, workflow))
            if line:
                ax.plot([p[0] for p in line], [p[1] for p in line], style, color=shade, lw=1.6,
                        label=f"{workflow} {tag}(theory)")
                values += [p[1] for p in line]
            pts = mc.get((member, workflow))
            if not pts:
                continue
            for tested in (True, False):
                part = [p for p in pts if p[3] is tested]
                if not part:
                    continue
                err = [1.96 * p[2] if p[2] is not None and math.isfinite(p[2]) else 0.0
                       for p in part]
                what = "sample quantile" if found else "Monte Carlo"
                suffix = what if tested else f"{what}, not tested"
                ax.errorbar([p[0] for p in part], [p[1] for p in part], yerr=err, fmt="o", ms=3,
                            color=shade, mfc=shade if tested else "none", alpha=0.8,
                            elinewidth=0.8, label=f"{workflow} {tag}({suffix})")
                values += [p[1] for p in part]
    positive = [v for v in values if v > 0]
    if values and len(positive) == len(values) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    ax.set_title(metric)
    ax.set_xlabel("model-fitting iteration t")
    ax.set_ylabel(metric_label(metric))
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, frameon=False)


def curves_figure(*, simulated: Table | None = None, theory: Table | None = None,
                  metrics: Iterable[str] | None = None, title: str | None = None):
    """A new :class:`~matplotlib.figure.Figure` with one panel per metric (pyplot untouched)."""
    from matplotlib.figure import Figure

    names = list(metrics) if metrics is not None else panel_order(theory, simulated)
    if not names:
        from collapse.analysis.errors import CollapseError

        raise CollapseError("nothing to plot: the result holds no rows")
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.5 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, metric in zip(axes.flat, names):
        draw_metric(ax, metric, simulated=simulated, theory=theory, legend=False)
    for ax in list(axes.flat)[len(names):]:
        fig.delaxes(ax)
    handles, labels = [], []
    for ax in fig.axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=10)
    rows_of_legend = math.ceil(len(labels) / 3) if handles else 0
    fig.tight_layout(rect=(0, min(0.4, 0.035 * rows_of_legend / max(1, nrows) * 3), 1, 1))
    return fig


def save_figure(fig, path: str | os.PathLike, option: str = "plot") -> None:
    """Write ``fig`` to ``path`` in the format its extension names (png, pdf or svg).

    The bytes are rendered in memory first and written by
    :func:`collapse.simulate.tables.write_bytes` (atomic over regular files, in place
    for special files, never replacing a symlink).
    """
    from collapse.simulate.tables import check_plot, write_bytes

    check_plot(path, option)
    buffer = io.BytesIO()
    fmt = os.fspath(path).rsplit(".", 1)[-1].lower()
    fig.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight")
    write_bytes(path, buffer.getvalue(), option)


def draw_value_heatmap(ax, grid, real_sizes: Sequence[int], synthetic_sizes: Sequence[int], *,
                       metric: str, helps=None, crossover: float | None = None,
                       crossover_label: str | None = None, source: str = "") -> None:
    """A heat map of ``grid[i, j]`` (real size ``i``, synthetic size ``j``) on ``ax``.

    Rows are the student's real sizes (bottom to top), columns its synthetic sizes; the
    cells are equally spaced whatever the sizes (their values label the ticks).  The
    colour scale is logarithmic when every value is positive and they span more than a
    decade.  Cells where ``helps`` is true (synthetic data lower the error below the
    student of the same real size without them) get a white ring, and ``crossover`` (a
    real size) is drawn as a dashed line, placed by linear interpolation between the two
    rows around it (the rows are not evenly spaced in size).
    """
    import numpy as np
    from matplotlib.colors import LogNorm, Normalize

    values = np.asarray(grid, dtype=float)
    finite = values[np.isfinite(values)]
    norm = None
    if finite.size and finite.min() > 0 and finite.max() > 10 * finite.min():
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    elif finite.size:
        norm = Normalize(vmin=finite.min(), vmax=finite.max())
    rows, cols = values.shape
    mesh = ax.pcolormesh(np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5,
                         np.ma.masked_invalid(values), norm=norm, cmap="viridis",
                         shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label=metric_label(metric))
    ax.set_xticks(range(cols), [str(s) for s in synthetic_sizes])
    ax.set_yticks(range(rows), [str(s) for s in real_sizes])
    ax.set_xlabel("synthetic points n_s")
    ax.set_ylabel("real points n_r")
    ax.set_title(f"{metric}{f' ({source})' if source else ''}", fontsize=10)
    if helps is not None:
        where = np.argwhere(np.asarray(helps, dtype=bool))
        if where.size:
            ax.scatter(where[:, 1], where[:, 0], s=36, facecolors="none", edgecolors="white",
                       linewidths=1.2, label="synthetic data help")
    if crossover is not None and rows >= 2:
        sizes = list(real_sizes)
        for i in range(rows - 1):
            if sizes[i] <= crossover <= sizes[i + 1]:
                y = i + (crossover - sizes[i]) / (sizes[i + 1] - sizes[i])
                ax.axhline(y, color="white", ls="--", lw=1.4,
                           label=crossover_label or f"crossover n_r = {crossover:g}")
                break
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right", framealpha=0.6)


def value_figure(panels: Sequence[dict], title: str | None = None):
    """A new :class:`~matplotlib.figure.Figure` with one heat map per panel (pyplot untouched).

    Each panel is the keyword arguments of :func:`draw_value_heatmap` (without ``ax``).
    """
    from matplotlib.figure import Figure

    if not panels:
        from collapse.analysis.errors import CollapseError

        raise CollapseError("nothing to plot: the result holds no metric")
    fig = Figure(figsize=(5.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        draw_value_heatmap(ax, **panel)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
