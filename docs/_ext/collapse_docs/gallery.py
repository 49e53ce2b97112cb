"""Helpers of the example gallery: cached calls, and what each figure rests on.

The examples in ``docs/gallery_src`` call the public API and draw with the results'
``plot(ax=..., metric=...)``; these helpers only cache and report:

* :func:`cached` (re-exported from :mod:`collapse_docs.cache`): the API call, reused
  while the call and the code are unchanged;
* :func:`counts`: rows with theory per panel, tested and set aside by reason;
* :func:`report`: the verdict of a figure made of one or more ``compare`` calls, with
  the rows it rests on, per panel;
* :func:`require_tested`: stop the build if a panel rests on fewer than 90% tested rows
  (the documentation's standard for the KDE figures and the Gaussian mean-error and
  log-determinant panels);
* :func:`checks`: the numbers a panel checks, theory against Monte Carlo at a few ``t``.
"""

from __future__ import annotations

import collections
import json
import math
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from collapse_docs.cache import CACHE, FILES, cached

#: Per example, the figures reported and the cached results they rest on (JSON).
MANIFESTS = CACHE.parent / "gallery"

__all__ = ["cached", "counts", "report", "require_tested", "checks", "fmt"]

QUANTILES = "_quantiles"


def fmt(x: float | None, digits: int = 4) -> str:
    """A number for a printed table (``-`` for missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _in_panel(metric: str, panel: str) -> bool:
    from collapse.simulate.tables import quantile_metric

    if panel.endswith(QUANTILES):
        found = quantile_metric(metric)
        return bool(found) and found[0] + QUANTILES == panel
    return metric == panel


def counts(results: Mapping[str, object] | Sequence[object], panel: str) -> collections.Counter:
    """Statuses of the rows of ``panel`` (a metric, or ``<metric>_quantiles``) that have
    theory, summed over ``results`` (``compare`` results); ``"total"`` counts them all."""
    found: collections.Counter = collections.Counter()
    values = results.values() if isinstance(results, Mapping) else results
    for result in values:
        for row, status in zip(result.statistics.table.rows, result.statistics.status):
            if status == "no-theory" or not _in_panel(row[3], panel):
                continue
            found[status] += 1
            found["total"] += 1
    return found


def _describe(c: collections.Counter) -> str:
    aside = {k: v for k, v in c.items() if k not in ("tested", "total")}
    text = f"{c['tested']} of {c['total']} rows tested"
    if aside:
        text += " (set aside: " + ", ".join(f"{v} {k}" for k, v in sorted(aside.items())) + ")"
    return text


_RECORDED: dict[str, list] = {}


def _record(results: Mapping[str, object], panels: list[str]) -> None:
    """Add a figure to its example's manifest: panels, and each label's cache file."""
    # sphinx-gallery compiles each example with its own file name (it sets no __file__)
    example = Path(sys._getframe(2).f_code.co_filename).stem
    figures = _RECORDED.setdefault(example, [])
    if not figures:  # first report of this example in this run: start afresh
        MANIFESTS.mkdir(parents=True, exist_ok=True)
    figures.append({"panels": panels,
                    "results": {label: FILES.get(id(r)) for label, r in results.items()}})
    (MANIFESTS / f"{example}.json").write_text(json.dumps(figures, indent=1) + "\n")


def report(results: Mapping[str, object], panels: Iterable[str], *, alpha: float = 0.01) -> str:
    """The verdict of a figure of ``compare`` calls and the rows it rests on, per panel.

    ``results`` maps a label (``"d=1, n=100"``) to one ``compare`` result; with several,
    each call was made at ``alpha / len(results)`` (Bonferroni), so the figure's
    family-wise false-alarm rate is at most ``alpha``.
    """
    _record(results, list(panels))
    values = list(results.values())
    bad = [label for label, r in results.items() if r.verdict == "INCONSISTENT"]
    untested = [label for label, r in results.items() if r.verdict == "UNTESTED"]
    tested = sum(r.tested for r in values)
    aside: collections.Counter = collections.Counter()
    for r in values:
        aside.update(r.set_aside)
    verdict = "INCONSISTENT" if bad else ("CONSISTENT" if tested and not untested else "UNTESTED")
    lines = [f"Verdict: {verdict}: {tested} rows tested, {sum(aside.values())} set aside"
             + (" (" + ", ".join(f"{v} {k}" for k, v in sorted(aside.items())) + ")"
                if aside else "")
             + (f"; {len(values)} calls, each at alpha = {alpha / len(values):g}, so the "
                f"figure's family-wise false-alarm rate is at most {alpha:g}"
                if len(values) > 1 else f"; Holm, family-wise alpha = {alpha:g}")
             + "."]
    if bad:
        lines.append("Inconsistent: " + ", ".join(bad))
    for panel in panels:
        for label, r in results.items():
            c = counts([r], panel)
            if c["total"]:
                lines.append(f"  {panel:<30} {label:<36} {_describe(c)}")
    return "\n".join(lines)


def require_tested(results: Mapping[str, object], panel: str, fraction: float = 0.9) -> None:
    """Raise if any one call's rows of ``panel`` are less than ``fraction`` tested."""
    for label, r in results.items():
        c = counts([r], panel)
        if c["total"] and c["tested"] < fraction * c["total"]:
            raise AssertionError(f"{panel} at {label} rests on {_describe(c)}: below the "
                                 f"{fraction:.0%} the documentation promises; more replicates")


def checks(result, metric: str, workflows: Sequence[str], ts: Sequence[int], *,
           header: bool = True) -> str:
    """Theory against Monte Carlo for ``metric`` at iterations ``ts``: one line per row
    (``mean`` is the sample quantile on quantile rows)."""
    frame = result.to_frame()
    status = dict(zip(((r[1], r[2], r[3]) for r in result.statistics.table.rows),
                      result.statistics.status))
    lines = ([f"{'workflow':<21} {'t':>4} {'theory':>11} {'Monte Carlo':>23} {'z':>6}  status"]
             if header else [])
    for workflow in workflows:
        for t in ts:
            pick = frame[(frame.workflow == workflow) & (frame.metric == metric)
                         & (frame.iteration == t)]
            if pick.empty:
                continue
            row = pick.iloc[0]
            mc = f"{fmt(row['mean'])} +- {fmt(1.96 * row['sem'], 2)}"
            z = "-" if math.isnan(row["z"]) else f"{row['z']:.2f}"
            lines.append(f"{workflow:<21} {t:>4} {fmt(row['theory']):>11} {mc:>23} {z:>6}  "
                         f"{status[(workflow, t, metric)]}")
    return "\n".join(lines)
