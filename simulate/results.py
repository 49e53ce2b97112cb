"""Results objects: what :func:`collapse.theory`, :func:`collapse.simulate`,
:func:`collapse.compare` and :func:`collapse.value` return.

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
    the curves (for :class:`ValueResult`, the heat map) on the given matplotlib axes
    (one metric), or on a new figure (one panel per metric); matplotlib's backend is
    never changed.

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
from collapse.analysis.vocabulary import MEAN_SQ_ERROR, MISE
from collapse.analysis.workflows import Workflow
from collapse.simulate.tables import (
    COMPARE_COLUMNS,
    THEORY_COLUMNS,
    VALUE_COMPARE_COLUMNS,
    VALUE_THEORY_COLUMNS,
    Table,
)


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

    def problem_options(self) -> dict[str, Any]:
        """The problem's fields that the result depends on (JSON-ready)."""
        return self.problem.options()

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
            elif column in ("iteration", "replicates", "real_size", "synthetic_size"):
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
                        "problem": self.problem_options(), "settings": self.settings()})
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
            The metric to draw (default: the first, when ``ax`` is given).  The exact
            quantile rows of a metric (``log_cov_det_ratio_q25``, ...) are drawn one by
            one, or together on the panel ``<metric>_quantiles`` (as in the figure),
            one line style per probability.

        Returns
        -------
        The axes (when given) or the new figure.
        """
        from collapse.simulate import plotting

        simulated, theory = self._tables()
        names = plotting.panel_order(theory, simulated)
        valid = names + [m for m in plotting.metric_order(theory, simulated) if m not in names]
        if metric is not None and metric not in valid:
            from collapse.analysis.errors import CollapseError

            raise CollapseError(f"metric must be one of {', '.join(valid)} (got {metric!r})")
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


@dataclass(frozen=True, repr=False)
class ValueResult(_Result):
    """The value of synthetic data over a grid of student sizes (:func:`collapse.value`).

    Attributes
    ----------
    problem : Problem
        Its ``n`` is not used (the generator's size is ``generator_n``) and is left out
        of :meth:`to_json`.
    generator_n : int
    real_sizes, synthetic_sizes : tuple of int
        The grid, sorted.
    metrics : tuple of str
        The grid's metrics; the first is the heat map's.
    cells : tuple of (int, int)
        The ``(n_r, n_s)`` that hold a student (``(0, 0)`` holds none and is left out).
    theory : dict
        ``theory[(n_r, n_s)][metric]``: exact values (times ``theory_scale``); empty for
        metrics without theory.
    samples : dict or None
        ``samples[(n_r, n_s)][metric]``: Monte Carlo replicates, arrays ``(replicates,)``.
    replicates : int or None
    seed : int
    alpha : float
        Family-wise false-alarm rate of the verdict (Monte Carlo only).
    theory_scale : float
    statistics : collapse.simulate.stats.Comparison or None
        The z-tests of every cell with theory (Holm over all of them).
    notes : tuple of str

    Examples
    --------
    >>> import collapse
    >>> result = collapse.value(collapse.Gaussian(), generator_n=9, real_sizes=[2, 8],
    ...                         synthetic_sizes=[0, 1])
    >>> result.exact_crossover()
    5.0
    >>> result.helps().tolist()  # one synthetic point helps 2 real points, not 8
    [[False, True], [False, False]]
    >>> result.to_frame().shape
    (8, 5)
    """

    problem: Problem
    generator_n: int
    real_sizes: tuple[int, ...]
    synthetic_sizes: tuple[int, ...]
    metrics: tuple[str, ...]
    cells: tuple[tuple[int, int], ...]
    theory: Mapping[tuple[int, int], Mapping[str, float]]
    samples: Mapping[tuple[int, int], Mapping[str, np.ndarray]] | None = None
    replicates: int | None = None
    seed: int = 0
    alpha: float = 0.01
    theory_scale: float = 1.0
    statistics: Any = None
    notes: tuple[str, ...] = ()
    command: str = field(default="value", init=False)

    @property
    def workflows(self) -> tuple[Workflow, ...]:  # type: ignore[override]
        return ()

    @property
    def iterations(self) -> int:  # type: ignore[override]
        return 1

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"generator_n": self.generator_n,
                               "real_sizes": list(self.real_sizes),
                               "synthetic_sizes": list(self.synthetic_sizes)}
        if self.replicates is not None:
            out.update(replicates=self.replicates, seed=self.seed, alpha=self.alpha)
        if self.theory_scale != 1.0:
            out["theory_scale"] = self.theory_scale
        return out

    def problem_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.problem.options().items() if k != "n"}

    @property
    def table(self) -> Table:
        if self.statistics is None:
            table = Table(VALUE_THEORY_COLUMNS, notes=list(self.notes))
            for a, b in self.cells:
                for metric, v in self.theory.get((a, b), {}).items():
                    table.append(self.setting, a, b, metric, float(v))
            return table
        cell_of = {f"r={a},s={b}": (a, b) for a, b in self.cells}
        rows = sorted(self.statistics.table.rows,
                      key=lambda r: (*cell_of[r[1]], self.metrics.index(r[3])))
        table = Table(VALUE_COMPARE_COLUMNS, notes=list(self.notes))
        for row in rows:
            table.append(row[0], *cell_of[row[1]], *row[3:])
        return table

    def _has_theory(self, metric: str) -> bool:
        return all(metric in self.theory.get(cell, {}) for cell in self.cells)

    def _grid(self, pick) -> np.ndarray:
        # a cell without a student is missing (NaN), never a number
        return np.array([[pick((a, b)) if (a, b) in self.cells else math.nan
                          for b in self.synthetic_sizes] for a in self.real_sizes], dtype=float)

    def _metric(self, metric: str | None) -> str:
        if metric is None:
            return self.metrics[0]
        if metric not in self.metrics:
            from collapse.analysis.errors import CollapseError

            raise CollapseError(f"metric must be one of {', '.join(self.metrics)} "
                                f"(got {metric!r})")
        return metric

    def grid(self, metric: str | None = None) -> np.ndarray:
        """``[i, j]`` = the value at ``(real_sizes[i], synthetic_sizes[j])``: exact theory
        where it exists, else the Monte Carlo mean; NaN for a cell without a student."""
        metric = self._metric(metric)
        if self._has_theory(metric):
            return self._grid(lambda cell: self.theory[cell][metric])
        return self.mean(metric)

    def mean(self, metric: str | None = None) -> np.ndarray:
        """The Monte Carlo mean of every cell (needs ``replicates``)."""
        metric = self._metric(metric)
        if self.samples is None:
            from collapse.analysis.errors import CollapseError

            raise CollapseError("replicates: this result has no Monte Carlo (theory only)")
        return self._grid(lambda cell: float(np.mean(self.samples[cell][metric])))

    def sem(self, metric: str | None = None) -> np.ndarray:
        """The standard error of every cell's Monte Carlo mean."""
        metric = self._metric(metric)
        self.mean(metric)  # refuses a theory-only result
        return self._grid(lambda cell: float(_stats().summarize(
            self.samples[cell][metric][:, None]).sem[0]))

    def helps(self, metric: str | None = None) -> np.ndarray | None:
        """Where synthetic data lower the error below the student of the same real size
        without them (``n_s = 0``, which must be in the grid; else ``None``).  Rows with
        ``n_r = 0`` are False (no real-only student to beat)."""
        values = self.grid(metric)
        if 0 not in self.synthetic_sizes:
            return None
        base = values[:, self.synthetic_sizes.index(0)][:, None]
        with np.errstate(invalid="ignore"):
            out = values < base  # False wherever a cell is missing
        out[np.asarray(self.real_sizes) == 0] = False
        return out

    def exact_crossover(self, metric: str | None = None) -> float | None:
        """The real size where a little synthetic data stops helping, from exact theory.

        Gaussian ``mean_sq_error``: ``(N + 1)/2`` (``N/2`` with the unbiased divisor), where
        the slope of the error in ``n_s`` at ``n_s = 0`` changes sign
        (:func:`collapse.analysis.value.gaussian_crossover`).  KDE ``mise``: the smallest
        ``n_r`` at which one synthetic point no longer lowers the exact error
        (:func:`collapse.analysis.value.kde_crossover`; ``None`` if it helps at every
        ``n_r <= N``).  ``None`` for other metrics.
        """
        from collapse.analysis import value as exact

        metric = self._metric(metric)
        if metric == MEAN_SQ_ERROR:
            return float(exact.gaussian_crossover(self.generator_n,
                                                  covariance=self.problem.covariance))
        if metric == MISE and self._has_theory(MISE):
            from collapse.simulate.setting_kde import truth_mixture

            found = exact.kde_crossover(generator_n=self.generator_n,
                                        bandwidth=self.problem.bandwidth,
                                        truth=truth_mixture(self.problem))
            return None if found is None else float(found)
        return None

    # -- the verdict (Monte Carlo only) ----------------------------------------------
    @property
    def tested(self) -> int:
        """Cells x metrics whose z-test counts toward the verdict."""
        if self.statistics is None:
            return 0
        return sum(s == _stats().TESTED for s in self.statistics.status)

    @property
    def set_aside(self) -> dict[str, int]:
        """Rows with theory that were not tested, by reason."""
        out: dict[str, int] = {}
        for status in (self.statistics.status if self.statistics is not None else ()):
            if status not in (_stats().TESTED, _stats().NO_THEORY):
                out[status] = out.get(status, 0) + 1
        return out

    @property
    def verdict(self) -> str | None:
        """``CONSISTENT``, ``INCONSISTENT`` or ``UNTESTED``; ``None`` without Monte Carlo."""
        if self.statistics is None:
            return None
        if not self.statistics.consistent:
            return "INCONSISTENT"
        return "CONSISTENT" if self.tested else "UNTESTED"

    @property
    def consistent(self) -> bool | None:
        return None if self.verdict is None else self.verdict == "CONSISTENT"

    @property
    def exit_status(self) -> int:
        """0 (theory only, or consistent), 1 inconsistent, 3 no cell could be tested."""
        return 0 if self.verdict is None else VERDICT_STATUS[self.verdict]

    # -- views ---------------------------------------------------------------------
    def _title(self) -> str:
        inner = ", ".join(f"{k}={_show(v)}" for k, v in self.problem_options().items())
        text = f"{self.setting}: {inner}; generator fitted on N={self.generator_n} real points"
        if self.replicates is not None:
            text += f"; {self.replicates} replicates, seed {self.seed}"
        if self.theory_scale != 1.0:
            text += f"; NEGATIVE CONTROL: theory scaled by {self.theory_scale:g}"
        return text

    def _panel(self, metric: str) -> dict[str, Any]:
        crossover = self.exact_crossover(metric)
        label = None
        if crossover is not None:
            label = f"exact crossover n_r = {crossover:g}"
        source = "exact theory" if self._has_theory(metric) else "Monte Carlo mean"
        return dict(grid=self.grid(metric), real_sizes=self.real_sizes,
                    synthetic_sizes=self.synthetic_sizes, metric=metric,
                    helps=self.helps(metric), crossover=crossover, crossover_label=label,
                    source=source)

    def plot(self, ax=None, *, metric: str | None = None):
        """The heat map of ``metric`` (default: every metric, one panel each).

        Rows are the student's real sizes, columns its synthetic sizes; white rings mark
        the cells where synthetic data help, a dashed line the exact crossover (see
        :func:`collapse.simulate.plotting.draw_value_heatmap`).  On ``ax`` if given
        (one metric: ``metric`` or the first), else on a new
        :class:`matplotlib.figure.Figure`; pyplot and the backend are never touched.
        """
        from collapse.simulate import plotting

        if ax is not None:
            plotting.draw_value_heatmap(ax, **self._panel(self._metric(metric)))
            return ax
        names = [self._metric(metric)] if metric is not None else list(self.metrics)
        return plotting.value_figure([self._panel(m) for m in names], title=self._title())

    def summary(self) -> str:
        """Every metric as a grid (real sizes down, synthetic sizes across), the exact
        crossover, and (Monte Carlo) the verdict."""
        lines = [f"{self._title()} (value of synthetic data)"]
        for metric in self.metrics:
            exact = self._has_theory(metric)
            values = self.grid(metric)
            out = Table(("n_r \\ n_s",) + tuple(str(b) for b in self.synthetic_sizes))
            sems = self.sem(metric) if self.samples is not None else None
            for i, a in enumerate(self.real_sizes):
                cells = []
                for j in range(len(self.synthetic_sizes)):
                    if math.isnan(values[i, j]):
                        cells.append("-")  # no student in this cell
                        continue
                    text = _fmt(float(values[i, j]))
                    if not exact and sems is not None:
                        text += f" +- {_fmt(float(sems[i, j]))}"
                    cells.append(text)
                out.append(str(a), *cells)
            source = "exact theory" if exact else "Monte Carlo mean +- sem"
            lines.append(f"{metric} ({source}):")
            lines.append(out.to_text().rstrip("\n"))
            crossover = self.exact_crossover(metric)
            if crossover is not None:
                lines.append(f"exact crossover: a little synthetic data helps iff n_r < "
                             f"{crossover:g}")
        if self.statistics is not None:
            aside = sum(self.set_aside.values())
            detail = f"{self.tested} cells x metrics tested"
            if aside:
                detail += f", {aside} set aside ({_reasons(self.set_aside)})"
            lines.append(f"verdict: {self.verdict} ({detail}; Holm, family-wise "
                         f"alpha = {self.alpha})")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _reasons(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
