"""Sphinx extension of the collapse-or-thrive docs: pages computed from the code.

Directives and roles (each records the ``collapse.analysis``/``collapse.simulate`` sources as
dependencies, so an incremental build re-reads the page when the code changes):

``.. collapse-formula:: NAME``
    A displayed formula from :data:`collapse_docs.formulas.FORMULAS`, printed with
    sympy's LaTeX printer, followed by the code it came from.  Stated steps that
    fail their build-time check against the code raise a warning.
``.. collapse-table:: NAME``
    A table from :data:`collapse_docs.numbers.TABLES`.
``:collapse-value:`NAME```
    A number from :func:`collapse_docs.numbers.value`.
``.. collapse-figure:: NAME``
    Runs :data:`collapse_docs.runs.RUNS` ``[NAME]`` with ``--plot`` (cached in
    ``docs/_generated/``) and shows the figure, the caption (directive content)
    and the exact command.
``.. collapse-run:: NAME``
    The same, showing the command's standard output instead of a figure.
``.. collapse-command::``
    A shell snippet whose every ``collapse ...`` line must parse with the real
    argument parser.
``.. collapse-lm-results::``
    The checked-in language-model results of ``docs/results/lm/`` (or a notice
    that they are pending); the notes of their ``README.rst`` are parsed as
    reStructuredText.  More LM directives (between-workflow tests, the value
    grid) are in :mod:`collapse_docs.lm_results`.

It also serves MathJax 3 from the installed ``sphinx-mathjax-offline`` package, so
the built site typesets math without any network access.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import pkgutil
import shutil
from pathlib import Path
from typing import Any

import sympy
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from collapse_docs import formulas, lm_results, numbers, runs
from collapse_docs.latex import tex

logger = logging.getLogger(__name__)

ROOT = runs.ROOT
DOCS = ROOT / "docs"
_DEPENDENCY_DIRS = (ROOT / "analysis", ROOT / "simulate", Path(__file__).resolve().parent)
MATHJAX_TARGET = "mathjax"
#: Written into the HTML output after a build without exception or warning; its mtime
#: tells the browser test whether ``docs/_build/html`` is current.
STAMP = ".collapse-built"
MATHJAX_ENTRY = "tex-chtml.js"


def _note_code_dependencies(env: Any) -> None:
    for folder in _DEPENDENCY_DIRS:
        for path in sorted(folder.glob("*.py")):
            env.note_dependency(str(path))


def _parse_rst(directive: SphinxDirective, lines: list[str], container: nodes.Element) -> None:
    source = directive.get_source_info()[0] or "<collapse_docs>"
    directive.state.nested_parse(StringList(lines, source=source), directive.content_offset, container)


def _sources_paragraph(sources: tuple[str, ...]) -> list[str]:
    refs = ", ".join(f":func:`{s}`" for s in sources)
    return ["", ".. rst-class:: collapse-source", "", f"   Generated at build time from {refs}."]


def _math_cell(value: Any) -> nodes.Node:
    if isinstance(value, sympy.Basic):
        latex = tex(value)
        return nodes.paragraph("", "", nodes.math(latex, latex))
    return nodes.paragraph(text=str(value))


def build_table(header: list[Any], rows: list[list[Any]], classes: list[str] | None = None) -> nodes.table:
    """A docutils table; sympy cells become inline math."""
    table = nodes.table(classes=["collapse-table"] + (classes or []))
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for cell in header:
        entry = nodes.entry()
        entry += _math_cell(cell)
        row += entry
    head += row
    body = nodes.tbody()
    group += body
    for values in rows:
        row = nodes.row()
        for cell in values:
            entry = nodes.entry()
            entry += _math_cell(cell)
            row += entry
        body += row
    return table


class FormulaDirective(SphinxDirective):
    """``.. collapse-formula:: NAME`` (options ``:label:``, ``:no-source:``)."""

    required_arguments = 1
    option_spec = {"label": directives.unchanged, "no-source": directives.flag}

    def run(self) -> list[nodes.Node]:
        _note_code_dependencies(self.env)
        name = self.arguments[0]
        try:
            block = formulas.render(name)
        except Exception as exc:  # noqa: BLE001 - any failure must stop the build
            logger.warning("collapse-formula %s failed: %s", name, exc, location=self.get_location())
            return []
        for problem in block.problems:
            logger.warning("collapse-formula %s: %s", name, problem, location=self.get_location())
        lines = [".. math::"]
        if "label" in self.options:
            lines.append(f"   :label: {self.options['label']}")
        lines += ["", "   " + block.latex()]
        if "no-source" not in self.options:
            lines += _sources_paragraph(block.sources)
        container = nodes.container(classes=["collapse-formula"])
        _parse_rst(self, lines, container)
        return [container]


class TableDirective(SphinxDirective):
    """``.. collapse-table:: NAME``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        _note_code_dependencies(self.env)
        name = self.arguments[0]
        try:
            data = numbers.table(name)
        except Exception as exc:  # noqa: BLE001
            logger.warning("collapse-table %s failed: %s", name, exc, location=self.get_location())
            return []
        for problem in data.problems:
            logger.warning("collapse-table %s: %s", name, problem, location=self.get_location())
        container = nodes.container(classes=["collapse-table-wrapper"])
        container += build_table(data.header, data.rows)
        _parse_rst(self, _sources_paragraph(data.sources), container)
        return [container]


def value_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
               options: dict | None = None, content: list | None = None):
    """``:collapse-value:`NAME``` -> the number, computed now."""
    env = inliner.document.settings.env
    _note_code_dependencies(env)
    try:
        result = numbers.value(text)
    except Exception as exc:  # noqa: BLE001
        msg = inliner.reporter.error(f"collapse-value {text!r}: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.inline(rawtext, result, classes=["collapse-value"])], []


def _display_command(run: runs.Run, name: str) -> str:
    return run.shell + (f" --plot {name}.png" if run.plot else "")


def _execute(directive: SphinxDirective, name: str) -> runs.RunResult | None:
    _note_code_dependencies(directive.env)
    if name not in runs.RUNS:
        logger.warning("unknown run %r; known: %s", name, ", ".join(runs.RUNS),
                       location=directive.get_location())
        return None
    try:
        result = runs.execute(name)
    except Exception as exc:  # noqa: BLE001
        logger.warning("run %s failed: %s", name, exc, location=directive.get_location())
        return None
    expected = result.run.expect_status
    if expected is not None and result.status != expected:
        logger.warning("run %s (%s) exited %s, expected %s; output:\n%s", name, result.run.shell,
                       result.status, expected, result.stdout, location=directive.get_location())
    return result


class FigureDirective(SphinxDirective):
    """``.. collapse-figure:: NAME`` with the caption as content (option ``:alt:``)."""

    required_arguments = 1
    has_content = True
    option_spec = {"alt": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        result = _execute(self, name)
        if result is None or result.figure is None:
            return []
        rel = "/" + result.figure.relative_to(DOCS).as_posix()
        alt = self.options.get("alt", f"figure {name}")
        verdict = ""
        if result.verdict:
            aside = sum(result.set_aside.values())
            reasons = ", ".join(f"{v} {k}" for k, v in sorted(result.set_aside.items()))
            grid = result.run.command == "value"
            unit = "cells x metrics" if grid else "rows"
            verdict = (f" Verdict of the statistical comparison: **{result.verdict}**, "
                       f"resting on {result.tested} tested {unit}"
                       + (f"; {aside} set aside ({reasons})"
                          + ("" if grid else ", drawn with hollow markers") if aside else "")
                       + ".")
        lines = [f".. figure:: {rel}", f"   :alt: {alt}", "   :width: 100%", ""]
        lines += ["   " + line for line in self.content] or ["   " + alt]
        lines += ["", f"   Made at build time by this command (exit status {result.status}).{verdict}",
                  "", "   .. code-block:: bash", "", "      " + _display_command(result.run, name)]
        container = nodes.container(classes=["collapse-figure"])
        _parse_rst(self, lines, container)
        return [container]


class RunDirective(SphinxDirective):
    """``.. collapse-run:: NAME``: the command and its standard output."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        result = _execute(self, name)
        if result is None:
            return []
        lines = [".. code-block:: bash", "", "   " + result.run.shell, "",
                 f"Output (exit status {result.status}):", "", ".. code-block:: text", ""]
        lines += ["   " + line for line in result.stdout.rstrip("\n").splitlines()]
        container = nodes.container(classes=["collapse-run"])
        _parse_rst(self, lines, container)
        return [container]


class CommandDirective(SphinxDirective):
    """``.. collapse-command::``: a bash snippet whose ``collapse`` lines must parse."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        _note_code_dependencies(self.env)
        snippet = "\n".join(self.content)
        commands = runs.commands_in(snippet)
        if not commands:
            logger.warning("collapse-command block has no `collapse ...` line",
                           location=self.get_location())
        for argv in commands:
            problem = runs.check_command(argv)
            if problem:
                logger.warning("documented command `collapse %s` is rejected by the parser: %s",
                               " ".join(argv), problem, location=self.get_location())
        lines = [".. code-block:: bash", ""] + ["   " + line for line in self.content]
        container = nodes.container(classes=["collapse-command"])
        _parse_rst(self, lines, container)
        return [container]


# --------------------------------------------------------------------------- API


def public_modules(package: str, first: tuple[str, ...] = ()) -> list[str]:
    """Public submodules of ``package`` (no leading underscore, no ``__main__``):
    those named in ``first`` in that order, then the rest alphabetically."""
    path = _package_dir(package)
    names = sorted(info.name for info in pkgutil.iter_modules([str(path)])
                   if not info.name.startswith("_"))
    ordered = [n for n in first if n in names] + [n for n in names if n not in first]
    return [f"{package}.{name}" for name in ordered]


def _package_dir(package: str) -> Path:
    """The folder of an installed package (``collapse.analysis`` lives in ``analysis/``)."""
    import importlib

    return Path(importlib.import_module(package).__path__[0])


class ApiDirective(SphinxDirective):
    """``.. collapse-api:: PACKAGE``: one section and ``automodule`` per public module.

    The content, if any, lists module names to show first (in that order).  Modules are
    discovered from the package folder, so a new module is documented without editing
    the page.
    """

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        try:
            folder = _package_dir(package)
        except ImportError:
            logger.warning("collapse-api: no package %r", package, location=self.get_location())
            return []
        self.env.note_dependency(str(folder))  # a new module changes its mtime
        lines: list[str] = []
        for module in public_modules(package, tuple(line.strip() for line in self.content if line.strip())):
            head = f"``{module}``"
            lines += [head, "-" * len(head), "", f".. automodule:: {module}", ""]
        container = nodes.section()
        source = self.get_source_info()[0] or "<collapse_docs>"
        nested_parse_with_titles(self.state, StringList(lines, source=source), container,
                                 self.content_offset)
        return container.children


# --------------------------------------------------------------------------- LM results


def lm_result_files(folder: Path) -> dict[str, Path | None]:
    """The checked-in LM results in ``folder``: its first ``*.csv``, ``*.png``, ``*.json``
    and README."""
    def first(pattern: str) -> Path | None:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        return found[0] if found else None

    return {"csv": first("*.csv"), "png": first("*.png"), "json": first("*.json"),
            "readme": first("README.rst")}


#: The LM metric whose ordering the page states (the paper's curve).
LM_HEADLINE_METRIC = "test_nll"


def _read_lm_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _mean_sem(record: dict) -> tuple[float, float]:
    sem = record.get("sem")
    return float(record["mean"]), float(sem) if sem not in ("", None) else math.nan


def _series(records: list[dict], workflow: str, metric: str) -> list[dict]:
    return sorted((r for r in records if r["workflow"] == workflow and r["metric"] == metric),
                  key=lambda r: int(r["iteration"]))


def lm_table(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """First and last iteration, mean ± standard error over seeds, per workflow and metric."""
    metrics = sorted({r["metric"] for r in records})
    header = ["workflow", "metric", "first iteration", "last iteration", "seeds"]
    rows = []

    def cell(r: dict) -> str:
        mean, sem = _mean_sem(r)
        spread = f" ± {numbers.fmt(sem, 3)}" if math.isfinite(sem) else ""
        return f"t={r['iteration']}: {numbers.fmt(mean)}{spread}"

    for workflow in formulas.WORKFLOWS:
        for metric in metrics:
            mine = _series(records, workflow, metric)
            if mine:
                rows.append([workflow, metric, cell(mine[0]), cell(mine[-1]), mine[-1]["replicates"]])
    return header, rows


def lm_ordering(records: list[dict], metric: str = LM_HEADLINE_METRIC) -> str | None:
    """The workflows ordered by ``metric`` at their last iteration, with each gap in units of
    the combined standard error ``sqrt(sem_a^2 + sem_b^2)`` (``None`` without data)."""
    last = {}
    for workflow in formulas.WORKFLOWS:
        mine = _series(records, workflow, metric)
        if mine:
            last[workflow] = (int(mine[-1]["iteration"]), *_mean_sem(mine[-1]))
    if len(last) < 2:
        return None
    order = sorted(last, key=lambda w: last[w][1])
    parts = [f"``{order[0]}`` {numbers.fmt(last[order[0]][1])}"]
    for low, high in zip(order, order[1:]):
        gap = last[high][1] - last[low][1]
        combined = math.hypot(last[low][2], last[high][2])
        z = f", {numbers.fmt(gap / combined, 2)} combined standard errors" if combined > 0 else ""
        parts.append(f"< ``{high}`` {numbers.fmt(last[high][1])} (+{numbers.fmt(gap, 3)}{z})")
    iterations = sorted({v[0] for v in last.values()})
    at = f"t = {iterations[0]}" if len(iterations) == 1 else "their last iterations"
    return (f"Ordering of ``{metric}`` at {at}, computed at build time from the checked-in table "
            f"(lower is better): " + " ".join(parts) + ".")


class LMResultsDirective(SphinxDirective):
    """``.. collapse-lm-results:: [FOLDER]``: figure, table, commands and notes of the LM results
    (FOLDER: a subfolder of the results folder)."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        sub = self.arguments[0] if self.arguments else ""
        folder = srcdir / self.config.collapse_lm_results / sub
        files = lm_result_files(folder)
        shown = "/".join(p for p in (self.config.collapse_lm_results.strip("/"), sub) if p)
        for path in files.values():
            if path is not None:
                self.env.note_dependency(str(path))
        container = nodes.container(classes=["collapse-lm-results"])
        if files["csv"] is None and files["png"] is None:
            _parse_rst(self, [
                ".. admonition:: Results pending", "",
                f"   No language-model results are checked in yet (``docs/{shown}/`` is empty).",
                "   They will appear here, with the command that produced them, once a run of",
                "   ``collapse lm run`` has been recorded.",
            ], container)
            return [container]
        lines: list[str] = []
        records = _read_lm_csv(files["csv"]) if files["csv"] is not None else []
        ordering = lm_ordering(records) if records else None
        if ordering:
            lines += [ordering, ""]
        if files["png"] is not None:
            rel = "/" + files["png"].relative_to(srcdir).as_posix()
            lines += [f".. figure:: {rel}", "   :alt: metrics of the LM loop per iteration and workflow",
                      "   :width: 100%", "",
                      f"   Checked-in figure ``docs/{shown}/{files['png'].name}``: mean and standard "
                      "error over seeds per iteration.", ""]
        commands: list[str] = []
        if files["readme"] is not None:
            for argv in runs.commands_in(files["readme"].read_text()):
                problem = runs.check_command(argv)
                if problem:
                    logger.warning("LM README command `collapse %s` is rejected: %s", " ".join(argv),
                                   problem, location=self.get_location())
                commands.append("collapse " + " ".join(argv))
        if commands:
            lines += ["The commands recorded with these results (checked against the parser when "
                      "this page is built):", "", ".. code-block:: bash", ""]
            lines += ["   " + c for c in commands] + [""]
        downloads = [f":download:`{path.name} </{path.relative_to(srcdir).as_posix()}>`"
                     for key in ("csv", "json", "readme") if (path := files[key]) is not None]
        if downloads:
            lines += ["Files: " + ", ".join(downloads) + ".", ""]
        _parse_rst(self, lines, container)
        if records:
            header, rows = lm_table(records)
            container += nodes.paragraph(
                text=f"Mean ± standard error over seeds, first and last iteration, read at build "
                     f"time from docs/{shown}/{files['csv'].name}:")
            container += build_table(header, rows)
        if files["readme"] is not None:
            # the notes are reStructuredText, parsed like the page itself
            _parse_rst(self, [".. rubric:: Notes recorded with the run", ""], container)
            container += lm_results.parse_with_titles(
                self, files["readme"].read_text(encoding="utf-8").splitlines())
        return [container]


# --------------------------------------------------------------------------- MathJax, offline


def mathjax_source() -> Path:
    """The MathJax 3 distribution shipped by the ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError("MathJax is served offline from the `sphinx-mathjax-offline` package; "
                             "install the docs extra: pip install -e '.[docs]'")
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    if not (folder / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"{folder / MATHJAX_ENTRY} is missing from sphinx-mathjax-offline")
    return folder


def _configure(app: Sphinx, config: Any) -> None:
    mathjax_source()  # fail early, before reading any page
    config.mathjax_path = f"{MATHJAX_TARGET}/{MATHJAX_ENTRY}"


def _finish(app: Sphinx, exception: Exception | None) -> None:
    if app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / MATHJAX_TARGET
    copied = target / ".copied-from"
    if not (copied.is_file() and copied.read_text() == str(source)):
        shutil.copytree(source, target, dirs_exist_ok=True)
        copied.write_text(str(source))
    stamp = Path(app.outdir) / STAMP
    if exception is None and getattr(app, "_warncount", 0) == 0:
        stamp.write_text("built without warnings\n")
    else:
        stamp.unlink(missing_ok=True)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("collapse-formula", FormulaDirective)
    app.add_directive("collapse-table", TableDirective)
    app.add_directive("collapse-figure", FigureDirective)
    app.add_directive("collapse-run", RunDirective)
    app.add_directive("collapse-command", CommandDirective)
    app.add_directive("collapse-lm-results", LMResultsDirective)
    for name, directive in lm_results.DIRECTIVES.items():
        app.add_directive(name, directive)
    for name, role in lm_results.ROLES.items():
        app.add_role(name, role)
    app.add_directive("collapse-api", ApiDirective)
    app.add_role("collapse-value", value_role)
    # Folder of the checked-in language-model results, relative to the source directory.
    app.add_config_value("collapse_lm_results", "results/lm", "env")
    app.connect("config-inited", _configure)
    app.connect("build-finished", _finish)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
