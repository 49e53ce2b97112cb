"""Results objects: what :func:`collapse.theory`, :func:`collapse.simulate` and
:func:`collapse.compare` return.

Each carries its problem and settings, and offers the same views:

``to_frame()``
    a pandas DataFrame with exactly the columns of the command's CSV;
``to_csv(path=None)``, ``to_json(path=None)``
    the text the command writes (returned when ``path`` is None; written
    atomically otherwise, see :mod:`collapse.simulate.tables`);
``summary()``
    a short human-readable report (for ``compare``: rows tested and set aside per
    workflow and metric, and the verdict);
``plot(ax=None, metric=None)``
    the curves on the given matplotlib axes (one metric), or on a new figure (one
    panel per metric); matplotlib's backend is never changed.

Examples
--------
>>> import collapse
>>> th = collapse.theory(collapse.Gaussian(dim=2, n=10), workflow="replace", iterations=3)
>>> list(th.to_frame().columns)
['setting', 'workflow', 'iteration', 'metric', 'value']
>>> round(th.values["replace"]["cov_trace_ratio"][2], 6)
0.729
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from collapse.analysis.problems import Problem
from collapse.analysis.workflows import Workflow
from collapse.simulate.tables import COMPARE_COLUMNS, THEORY_COLUMNS, Table


def _stats():
    # The statistics pull in scipy.stats (about a second); `collapse theory` never needs them.
    from collapse.simulate import stats

    return stats


#: Exit-status meaning of a verdict (``collapse compare`` exits with it).
VERDICT_STATUS = {"CONSISTENT": 0, "INCONSISTENT": 1, "UNTESTED": 3}


class _Result:
    """Shared views of every results object (see the module docstring)."""

    command: str = ""
    problem: Problem
    workflows: tuple[Workflow, ...]
    iterations: int
    notes: tuple[str, ...]

    @property
    def setting(self) -> str:
        """The setting's name (``gaussian``, ``kde``, ...)."""
        return self.problem.setting

    @property
    def table(self) -> Table:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The call's settings (JSON-ready), problem excluded."""
        return {"workflows": [w.label for w in self.workflows], "iterations": self.iterations}

    def to_frame(self):
        """The rows as a :class:`pandas.DataFrame` with exactly the CSV columns.

        Blank cells (for example the z-score of a row that was not tested) are missing
        values: ``NaN`` in float columns, ``<NA>`` in the nullable boolean
        ``consistent`` column.
        """
        import pandas as pd

        table = self.table
        frame = pd.DataFrame.from_records(table.rows, columns=list(table.columns))
        for column in frame.columns:
            if column == "consistent":
                frame[column] = frame[column].astype("boolean")
            elif column in ("iteration", "replicates"):
                frame[column] = frame[column].astype("int64")
            elif column not in ("setting", "workflow", "metric"):
                frame[column] = pd.to_numeric(frame[column].astype(object).where(
                    frame[column].notna(), np.nan), errors="coerce").astype("float64")
        return frame

    def to_csv(self, path: str | os.PathLike | None = None) -> str | None:
        """The CSV text (returned if ``path`` is None, else written to ``path``)."""
        return self._emit(self.table.to_csv(), path)

    def to_json(self, path: str | os.PathLike | None = None) -> str | None:
        """JSON: ``columns``, ``rows``, ``notes`` plus the problem and settings."""
        payload = json.loads(self.table.to_json())
        payload.update({"command": self.command, "setting": self.setting,
                        "problem": self.problem.options(), "settings": self.settings()})
        return self._emit(json.dumps(payload, indent=1) + "\n", path)

    def to_text(self) -> str:
        """The full aligned text table (every row) with its notes."""
        return self.table.to_text()

    @staticmethod
    def _emit(text: str, path: str | os.PathLike | None) -> str | None:
        if path is None:
            return text
        from collapse.simulate.tables import write_text

        write_text(path, text)
        return None

    def _tables(self) -> tuple[Table | None, Table | None]:
        """(simulated, theory) tables for the plots."""
        raise NotImplementedError

    def _title(self) -> str:
        return self.problem.describe()

    def plot(self, ax=None, *, metric: str | None = None):
        """Draw the curves: theory as lines, Monte Carlo as markers with 95% error bars.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw ``metric`` on these axes.  Without it, a new
            :class:`matplotlib.figure.Figure` is made (pyplot is not used, so no
            global state or backend changes), with one panel per metric, or one
            panel for ``metric`` if given.
        metric : str, optional
            The metric to draw (default: the first, when ``ax`` is given).

        Returns
        -------
        The axes (when given) or the new figure.
        """
        from collapse.simulate import plotting

        simulated, theory = self._tables()
        names = plotting.metric_order(theory, simulated)
        if metric is not None and metric not in names:
            from collapse.analysis.errors import CollapseError

            raise CollapseError(f"metric must be one of {', '.join(names)} (got {metric!r})")
        if ax is not None:
            plotting.draw_metric(ax, metric or names[0], simulated=simulated, theory=theory)
            return ax
        return plotting.curves_figure(simulated=simulated, theory=theory,
                                      metrics=[metric] if metric else None, title=self._title())

    def save_plot(self, path: str | os.PathLike) -> None:
        """Write :meth:`plot`'s figure to ``path`` (png, pdf or svg, from the extension)."""
        from collapse.simulate.plotting import save_figure

        save_figure(self.plot(), path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._title()}>"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return f"{value:.6g}"


@dataclass(frozen=True, repr=False)
class TheoryResult(_Result):
    """Exact expectations per workflow, metric and iteration.

    Attributes
    ----------
    problem : Problem
    workflows : tuple of Workflow
    iterations : int
    values : dict
        ``values[workflow_label][metric][t - 1]``; a metric with no exact theory for a
        workflow is absent.
    notes : tuple of str
        Explanations of omissions and infinities.
    scale : float
        1, or the factor of a negative control (:func:`collapse.compare`).

    Examples
    --------
    >>> import collapse
    >>> th = collapse.theory(collapse.KDE(n=10, bandwidth=0.5), workflow="accumulate",
    ...                      iterations=2)
    >>> sorted(th.values["accumulate"])
    ['mise']
    """

    problem: Problem
    workflows: tuple[Workflow, ...]
    iterations: int
    values: Mapping[str, Mapping[str, tuple[float, ...]]]
    notes: tuple[str, ...] = ()
    scale: float = 1.0
    command: str = field(default="theory", init=False)

    @property
    def table(self) -> Table:
        table = Table(THEORY_COLUMNS, notes=list(self.notes))
        for workflow in self.workflows:
            for metric, series in self.values.get(workflow.label, {}).items():
                for t, value in enumerate(series, start=1):
                    table.append(self.setting, workflow.label, t, metric, float(value))
        return table

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        if self.scale != 1.0:
            out["theory_scale"] = self.scale
        return out

    def _tables(self):
        return None, self.table

    def summary(self) -> str:
        """The expectations at the first, middle and last iterations, with the notes."""
        ts = sorted({1, max(1, (self.iterations + 1) // 2), self.iterations})
        out = Table(("workflow", "metric") + tuple(f"t={t}" for t in ts))
        for workflow in self.workflows:
            for metric, series in self.values.get(workflow.label, {}).items():
                out.append(workflow.label, metric, *(series[t - 1] for t in ts))
        out.notes.extend(self.notes)
        return f"{self._title()} (exact theory, {self.iterations} iterations)\n{out.to_text()}"


@dataclass(frozen=True, repr=False)
class SimulationResult(_Result):
    """Monte Carlo replicates per workflow and metric, and their summaries.

    Attributes
    ----------
    problem : Problem
    workflows : tuple of Workflow
    iterations, replicates, seed : int
    engine : str
    samples : dict
        ``samples[workflow_label][metric]``: float64 array ``(replicates, iterations)``;
        column ``t - 1`` is iteration ``t``.
    notes : tuple of str

    Examples
    --------
    >>> import collapse
    >>> mc = collapse.simulate(collapse.Gaussian(n=10), workflow="replace", iterations=4,
    ...                        replicates=50, seed=1)
    >>> mc.samples["replace"]["mean_sq_error"].shape
    (50, 4)
    >>> bool(mc.mean("replace", "cov_trace_ratio")[0] < 1)
    True
    """

    problem: Problem
    workflows: tuple[Workflow, ...]
    iterations: int
    replicates: int
    seed: int
    samples: Mapping[str, Mapping[str, np.ndarray]]
    engine: str = "auto"
    notes: tuple[str, ...] = ()
    command: str = field(default="simulate", init=False)

    @property
    def table(self) -> Table:
        table = _stats().simulate_table(self.setting, self.samples)
        table.notes.extend(self.notes)
        return table

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out.update(replicates=self.replicates, seed=self.seed, engine=self.engine)
        return out

    def mean(self, workflow: str, metric: str) -> np.ndarray:
        """Monte Carlo mean per iteration of ``metric`` under ``workflow`` (a label)."""
        return _stats().summarize(self.samples[workflow][metric]).mean

    def sem(self, workflow: str, metric: str) -> np.ndarray:
        """Its standard error per iteration (``inf`` where replicates are non-finite)."""
        return _stats().summarize(self.samples[workflow][metric]).sem

    def _tables(self):
        return self.table, None

    def _title(self) -> str:
        return f"{self.problem.describe()}; {self.replicates} replicates, seed {self.seed}"

    def summary(self) -> str:
        """Means and standard errors at the first, middle and last iterations."""
        ts = sorted({1, max(1, (self.iterations + 1) // 2), self.iterations})
        out = Table(("workflow", "metric") + tuple(f"t={t}" for t in ts))
        for workflow in self.workflows:
            for metric, x in self.samples.get(workflow.label, {}).items():
                s = _stats().summarize(x)
                cells = []
                for t in ts:
                    sem = s.sem[t - 1] if s.replicates >= 2 else None
                    cells.append(f"{_fmt(float(s.mean[t - 1]))} +- {_fmt(sem)}")
                out.append(workflow.label, metric, *cells)
        out.notes.extend(self.notes)
        return f"{self._title()} (Monte Carlo mean +- sem)\n{out.to_text()}"


@dataclass(frozen=True, repr=False)
class ComparisonResult(_Result):
    """Exact theory against Monte Carlo, row by row, with one verdict.

    Attributes
    ----------
    theory : TheoryResult
        The expectations tested (already multiplied by ``theory_scale``).
    simulation : SimulationResult
    alpha : float
        Family-wise false-alarm rate of the verdict.
    statistics : collapse.simulate.stats.Comparison
        Rows, their status (tested, heavy-tailed, ...) and per-(workflow, metric) verdicts.
    verdict : {"CONSISTENT", "INCONSISTENT", "UNTESTED"}
        ``UNTESTED`` when no row could be tested: never reported as consistent.
    consistent : bool
        True only for ``CONSISTENT``.

    Examples
    --------
    >>> import collapse
    >>> cmp = collapse.compare(collapse.Gaussian(dim=2, n=20), workflow="accumulate",
    ...                        iterations=5, replicates=500, seed=0)
    >>> cmp.verdict, cmp.consistent
    ('CONSISTENT', True)
    >>> cmp.to_frame().columns[-1]
    'consistent'
    """

    theory: TheoryResult
    simulation: SimulationResult
    alpha: float
    statistics: Any  # collapse.simulate.stats.Comparison
    command: str = field(default="compare", init=False)

    @property
    def problem(self) -> Problem:  # type: ignore[override]
        return self.theory.problem

    @property
    def workflows(self) -> tuple[Workflow, ...]:  # type: ignore[override]
        return self.theory.workflows

    @property
    def iterations(self) -> int:  # type: ignore[override]
        return self.theory.iterations

    @property
    def notes(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(self.theory.notes + self.simulation.notes))

    @property
    def theory_scale(self) -> float:
        return self.theory.scale

    @property
    def table(self) -> Table:
        table = Table(COMPARE_COLUMNS, list(self.statistics.table.rows), list(self.notes))
        return table

    @property
    def tested(self) -> int:
        """Rows whose z-test counts toward the verdict."""
        return sum(s == _stats().TESTED for s in self.statistics.status)

    @property
    def set_aside(self) -> dict[str, int]:
        """Rows with theory that were not tested, by reason (heavy-tailed, diverges, ...)."""
        out: dict[str, int] = {}
        for status in self.statistics.status:
            if status not in (_stats().TESTED, _stats().NO_THEORY):
                out[status] = out.get(status, 0) + 1
        return out

    @property
    def verdict(self) -> str:
        if not self.statistics.consistent:
            return "INCONSISTENT"
        return "CONSISTENT" if self.tested else "UNTESTED"

    @property
    def consistent(self) -> bool:
        return self.verdict == "CONSISTENT"

    @property
    def exit_status(self) -> int:
        """0 consistent, 1 inconsistent, 3 no row could be tested."""
        return VERDICT_STATUS[self.verdict]

    def settings(self) -> dict[str, Any]:
        out = self.simulation.settings()
        out["alpha"] = self.alpha
        if self.theory_scale != 1.0:
            out["theory_scale"] = self.theory_scale
        return out

    def _tables(self):
        return self.table, self.theory.table

    def _title(self) -> str:
        text = self.simulation._title()
        if self.theory_scale != 1.0:
            text += f"; NEGATIVE CONTROL: theory scaled by {self.theory_scale:g}"
        return text

    def verdict_line(self) -> str:
        """``verdict: ...`` with the counts it rests on."""
        aside = sum(self.set_aside.values())
        if self.verdict == "UNTESTED":
            return (f"verdict: UNTESTED (no row could be tested; {aside} set aside: "
                    f"{_reasons(self.set_aside)})")
        detail = f"{self.tested} rows tested"
        if aside:
            detail += f", {aside} set aside ({_reasons(self.set_aside)})"
        return f"verdict: {self.verdict} ({detail})"

    def summary(self) -> str:
        """Per (workflow, metric): rows tested, rejected, set aside; then the verdict."""
        table = self.statistics.summary_table()
        text = f"{self._title()}\n{table.to_text()}{self.verdict_line()}\n"
        return text + "".join(f"note: {note}\n" for note in self.notes)


def _reasons(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
