"""Directives for the checked-in language-model results (``docs/results/lm/``).

Every number they show is computed while the page is built, from the CSV files that
``scripts/lm_evidence.py`` wrote out of the run directories; none is typed by hand:

``.. collapse-lm-tests:: FOLDER``
    The last iteration of every workflow (mean ± standard error over seeds) and, for
    every pair of workflows, the difference of means with its 95% interval, Welch's
    p-value (raw and Holm-adjusted over the pairs), Hedges' g and the paired p-value,
    from ``FOLDER/values.csv`` via :mod:`collapse.lm.evidence`.  Option ``:metric:``
    (default ``test_nll``).
``.. collapse-lm-compare:: FOLDER_A FOLDER_B``
    The same workflow in two experiments at their last iteration: difference
    ``B - A`` with its interval, Welch's p and Hedges' g.
``.. collapse-lm-value:: FOLDER``
    The value-of-synthetic-data grid of ``FOLDER/value.csv`` (mean ± sem of
    ``test_nll`` per ``(n_r, n_s)``) and its heat map.
``.. collapse-lm-readme:: FOLDER``
    ``FOLDER/README.rst`` parsed as reStructuredText (commands, wall time, machine).
``.. collapse-lm-figure:: FOLDER``
    ``FOLDER/curves.png`` with a caption.
``:collapse-lm-pair:`FOLDER A B```
    Inline: ``A - B`` at the last iteration of one experiment, with its 95% interval,
    Welch's and the paired p-value and Hedges' g; ``FOLDER_A FOLDER_B W`` compares
    workflow ``W`` across two experiments (Welch only).

FOLDER is relative to the ``collapse_lm_results`` folder (``results/lm``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from collapse_docs import numbers

logger = logging.getLogger(__name__)


def parse_with_titles(directive: SphinxDirective, lines: list[str]) -> list[nodes.Node]:
    """``lines`` parsed as reStructuredText that may hold section titles."""
    from docutils.statemachine import StringList
    from sphinx.util.nodes import nested_parse_with_titles

    container = nodes.section()
    source = directive.get_source_info()[0] or "<collapse_docs>"
    nested_parse_with_titles(directive.state, StringList(lines, source=source), container,
                             directive.content_offset)
    return container.children


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def values_records(path: Path) -> list[dict]:
    """The long-format per-seed values of ``values.csv``, typed."""
    return [{"workflow": r["workflow"], "seed": int(r["seed"]), "iteration": int(r["iteration"]),
             "metric": r["metric"], "value": float(r["value"])} for r in read_csv(path)]


def fmt(value: float, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return numbers.fmt(value, digits)


def p_fmt(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "< 0.0001"


def last_iteration_rows(records: list[dict], metric: str) -> tuple[int, list[list[str]]]:
    """``t`` and rows ``workflow, mean ± sem, seeds`` at the last iteration."""
    from collapse.lm.evidence import last_iteration_values

    t, values, _ = last_iteration_values(records, metric)
    rows = []
    for workflow, vals in values.items():
        n = len(vals)
        mean = sum(vals) / n
        sem = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1) / n) if n > 1 else math.nan
        rows.append([workflow, f"{fmt(mean)} ± {fmt(sem, 2)}", str(n)])
    return t, rows


def pair_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        out.append([f"{r['a']} − {r['b']}", f"{fmt(r['difference'], 3)} [{fmt(r['ci_low'], 3)}, "
                    f"{fmt(r['ci_high'], 3)}]", p_fmt(r["welch_p"]), p_fmt(r["welch_p_holm"]),
                    fmt(r["hedges_g"], 2), p_fmt(r["paired_p"])])
    return out


PAIR_HEADER = ["pair (a − b)", "difference [95% CI]", "Welch p", "Holm p", "Hedges' g", "paired p"]


class _LMDirective(SphinxDirective):
    required_arguments = 1
    optional_arguments = 1
    option_spec = {"metric": directives.unchanged}

    def folder(self, name: str) -> Path | None:
        folder = Path(self.env.srcdir) / self.config.collapse_lm_results / name
        if not folder.is_dir():
            logger.warning("no LM results folder %s", folder, location=self.get_location())
            return None
        for path in folder.iterdir():
            self.env.note_dependency(str(path))
        return folder

    def table(self, header: list[str], rows: list[list[str]], caption: str) -> list[nodes.Node]:
        from collapse_docs import build_table

        return [nodes.paragraph(text=caption), build_table(header, rows)]


class TestsDirective(_LMDirective):
    """``.. collapse-lm-tests:: FOLDER``."""

    required_arguments = 1
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        from collapse.lm.evidence import last_iteration_values, pairwise

        folder = self.folder(self.arguments[0])
        if folder is None:
            return []
        metric = self.options.get("metric", "test_nll")
        if not (folder / "values.csv").is_file():
            return self.from_summary(folder, metric)
        records = values_records(folder / "values.csv")
        t, rows = last_iteration_rows(records, metric)
        _, values, seeds = last_iteration_values(records, metric)
        out = self.table(["workflow", f"{metric} at t = {t} (mean ± sem)", "seeds"], rows,
                         f"{self.arguments[0]}: {metric} at the last iteration, computed at build time "
                         f"from docs/results/lm/{self.arguments[0]}/values.csv.")
        out += self.table(PAIR_HEADER, pair_rows(pairwise(values, seeds)),
                          "Every pair of workflows at that iteration: Welch's unequal-variance t-test, "
                          "Holm's adjustment over the pairs, Hedges' g (difference over the pooled "
                          "standard deviation, small-sample corrected) and the paired t-test over seeds "
                          "(the workflows of a seed share its real data and random streams).")
        return out

    def from_summary(self, folder: Path, metric: str) -> list[nodes.Node]:
        """The same tests from a report table (mean, sem, replicates) when no per-seed values exist."""
        from collapse.lm.evidence import pairwise_summary

        csvs = sorted(folder.glob("*.csv"))
        rows = [r for r in read_csv(csvs[0]) if r["metric"] == metric] if csvs else []
        last = {}
        for r in rows:
            if r["workflow"] not in last or int(r["iteration"]) > int(last[r["workflow"]]["iteration"]):
                last[r["workflow"]] = r
        summaries = {w: (float(r["mean"]), float(r["sem"]), int(r["replicates"])) for w, r in last.items()}
        t = min(int(r["iteration"]) for r in last.values())
        out = self.table(["workflow", f"{metric} at t = {t} (mean ± sem)", "seeds"],
                         [[w, f"{fmt(m)} ± {fmt(s, 2)}", str(n)] for w, (m, s, n) in summaries.items()],
                         f"{self.arguments[0]}: {metric} at the last iteration, from the checked-in "
                         f"report table {csvs[0].name} (no per-seed values were kept for this run).")
        out += self.table(PAIR_HEADER[:-1], [row[:-1] for row in pair_rows(pairwise_summary(summaries))],
                          "Welch's test from those means and standard errors (the same statistic as on "
                          "the per-seed values), Holm's adjustment, Hedges' g.")
        return out


class CompareDirective(_LMDirective):
    """``.. collapse-lm-compare:: FOLDER_A FOLDER_B``."""

    required_arguments = 2
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        from collapse.lm.evidence import last_iteration_values, welch

        a, b = (self.folder(name) for name in self.arguments)
        if a is None or b is None:
            return []
        metric = self.options.get("metric", "test_nll")
        ta, va, _ = last_iteration_values(values_records(a / "values.csv"), metric)
        tb, vb, _ = last_iteration_values(values_records(b / "values.csv"), metric)
        rows = []
        for workflow in va:
            if workflow not in vb:
                continue
            r = welch(vb[workflow], va[workflow])
            rows.append([workflow, fmt(r["mean_b"]), fmt(r["mean_a"]),
                         f"{fmt(r['difference'], 3)} [{fmt(r['ci_low'], 3)}, {fmt(r['ci_high'], 3)}]",
                         p_fmt(r["welch_p"]), fmt(r["hedges_g"], 2)])
        name_a, name_b = self.arguments
        return self.table(["workflow", f"{name_b} (t = {tb})", f"{name_a} (t = {ta})",
                           f"{name_b} − {name_a} [95% CI]", "Welch p", "Hedges' g"], rows,
                          f"{metric} at the last iteration, {name_b} against {name_a} (different runs, "
                          "so Welch's test; computed at build time from their values.csv).")


class ValueDirective(_LMDirective):
    """``.. collapse-lm-value:: FOLDER``."""

    required_arguments = 1
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        folder = self.folder(self.arguments[0])
        if folder is None:
            return []
        metric = self.options.get("metric", "test_nll")
        rows = [r for r in read_csv(folder / "value.csv") if r["metric"] == metric]
        real = sorted({int(r["real_size"]) for r in rows})
        synthetic = sorted({int(r["synthetic_size"]) for r in rows})
        cells = {(int(r["real_size"]), int(r["synthetic_size"])): r for r in rows}
        body = []
        for n_r in real:
            line = [str(n_r)]
            for n_s in synthetic:
                r = cells.get((n_r, n_s))
                if r is None:
                    line.append("n/a")
                else:
                    sem = float(r["sem"]) if r["sem"] else math.nan
                    line.append(f"{fmt(float(r['mean']))} ± {fmt(sem, 2)}")
            body.append(line)
        out = self.table(["n_r \\ n_s"] + [str(s) for s in synthetic], body,
                         f"{metric} (nats per token) of a student fine-tuned on n_r real and n_s generated "
                         f"documents, mean ± sem over seeds, read at build time from "
                         f"docs/results/lm/{self.arguments[0]}/value.csv.")
        png = folder / "value.png"
        if png.is_file():
            rel = "/" + png.relative_to(Path(self.env.srcdir)).as_posix()
            from collapse_docs import _parse_rst

            container = nodes.container()
            _parse_rst(self, [f".. figure:: {rel}", "   :alt: heat maps of the value of synthetic data",
                              "   :width: 100%", "",
                              "   Left: mean test_nll per cell.  Right: its change from the same n_r "
                              "without synthetic data, paired by seed (negative: synthetic data helped).",
                              ""], container)
            out += container.children
        return out


class ReadmeDirective(_LMDirective):
    """``.. collapse-lm-readme:: FOLDER``: the folder's README.rst, parsed."""

    required_arguments = 1
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        from collapse_docs import runs

        folder = self.folder(self.arguments[0])
        if folder is None:
            return []
        text = (folder / "README.rst").read_text(encoding="utf-8")
        for argv in runs.commands_in(text):
            problem = runs.check_command(argv)
            if problem:
                logger.warning("LM README command `collapse %s` is rejected: %s", " ".join(argv), problem,
                               location=self.get_location())
        return parse_with_titles(self, text.splitlines())


class FigureDirective(_LMDirective):
    """``.. collapse-lm-figure:: FOLDER``."""

    required_arguments = 1
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        from collapse_docs import _parse_rst

        folder = self.folder(self.arguments[0])
        if folder is None or not (folder / "curves.png").is_file():
            return []
        rel = "/" + (folder / "curves.png").relative_to(Path(self.env.srcdir)).as_posix()
        container = nodes.container()
        _parse_rst(self, [f".. figure:: {rel}", "   :alt: LM metrics per iteration and workflow",
                          "   :width: 100%", "",
                          f"   {self.arguments[0]}: mean per iteration with 95% error bars "
                          "(1.96 standard errors over seeds), one panel per metric.", ""], container)
        return container.children


DIRECTIVES = {
    "collapse-lm-tests": TestsDirective,
    "collapse-lm-compare": CompareDirective,
    "collapse-lm-value": ValueDirective,
    "collapse-lm-readme": ReadmeDirective,
    "collapse-lm-figure": FigureDirective,
}


def pair_sentence(srcdir: Path, results: str, text: str) -> str:
    """The text of ``:collapse-lm-pair:``: ``FOLDER A B`` (workflows A and B of one experiment)
    or ``FOLDER_A FOLDER_B W`` (workflow W in two experiments: B's minus A's)."""
    from collapse.lm.evidence import last_iteration_values, pairwise, welch

    parts = text.split()
    if len(parts) != 3:
        raise ValueError("expected FOLDER A B or FOLDER_A FOLDER_B WORKFLOW")
    base = srcdir / results
    metric = "test_nll"
    if (base / parts[1] / "values.csv").is_file():
        t_a, va, _ = last_iteration_values(values_records(base / parts[0] / "values.csv"), metric)
        t_b, vb, _ = last_iteration_values(values_records(base / parts[1] / "values.csv"), metric)
        r = welch(vb[parts[2]], va[parts[2]])
        head = f"{parts[2]}: {parts[1]} − {parts[0]} at t = {t_b}"
        paired = ""
    else:
        t, values, seeds = last_iteration_values(values_records(base / parts[0] / "values.csv"), metric)
        r = next(row for row in pairwise({k: values[k] for k in parts[1:]}, {k: seeds[k] for k in parts[1:]}))
        head = f"{parts[1]} − {parts[2]} at t = {t}"
        paired = f", paired p {p_fmt(r['paired_p'])}"
    return (f"{head}: {fmt(r['difference'], 3)} nats/token [95% CI {fmt(r['ci_low'], 3)}, "
            f"{fmt(r['ci_high'], 3)}], Welch p {p_fmt(r['welch_p'])}{paired}, Hedges' g "
            f"{fmt(r['hedges_g'], 2)} ({r['n_a']} and {r['n_b']} seeds)")


def pair_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:collapse-lm-pair:`FOLDER A B```: a difference of means with its interval and tests,
    computed at build time from the checked-in per-seed values."""
    env = inliner.document.settings.env
    try:
        sentence = pair_sentence(Path(env.srcdir), env.config.collapse_lm_results, text)
    except (OSError, KeyError, ValueError, StopIteration) as exc:
        msg = inliner.reporter.warning(f"collapse-lm-pair {text!r}: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    for folder in text.split()[:2]:
        path = Path(env.srcdir) / env.config.collapse_lm_results / folder / "values.csv"
        if path.is_file():
            env.note_dependency(str(path))
    return [nodes.inline(text=sentence)], []


ROLES = {"collapse-lm-pair": pair_role}
