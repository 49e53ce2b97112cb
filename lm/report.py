"""Summaries of a run directory: a results object, a simulate-schema table, growth verdicts, a figure.

For each workflow, iteration ``t`` and metric the table holds the mean over
replicate seeds ``m_t = (1/K) sum_s y_{s,t}`` and its standard error
``sem_t = sd_s(y_{s,t}) / sqrt(K)`` (sample standard deviation, ``K-1``
divisor; blank (not applicable) when ``K = 1``), computed by the project's shared
:func:`collapse.simulate.stats.summarize`, with ``replicates = K`` the number of seeds
that completed iteration ``t`` (a statistic undefined for one seed, such as the
bigram ratio of samples without any word bigram, is left out of that cell and
``replicates`` says so).  Columns are :data:`collapse.simulate.tables.SIMULATE_COLUMNS`
with setting ``lm``, so the Gaussian, KDE and LM settings share one format, and
:class:`LMResult` is a :class:`collapse.simulate.results.SimulationResult`: the same
``to_frame``, ``to_csv``, ``plot`` and ``save_plot``.

No torch here: reporting needs only the JSON files of the run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import LM
from collapse.analysis.workflows import Workflow, parse_workflows
from collapse.lm import growth, rundir
from collapse.lm.metrics import LM_METRICS, TEST_NLL, sample_metrics
from collapse.simulate.results import SimulationResult
from collapse.simulate.stats import summarize
from collapse.simulate.tables import SIMULATE_COLUMNS, Table


def _readable(text: str) -> str:
    """``text`` with the undecodable bytes of a file name (which Python keeps as lone
    surrogates under an ASCII locale) turned back into characters, so figures can draw it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class LMProblem:
    """What an LM run is about, in the shape results objects expect of a problem."""

    preset: str
    n: int
    n_eval: int
    dataset: str
    model: str | None = None
    budget: str | int = "epochs"
    setting: str = field(default=LM, init=False)

    def describe(self) -> str:
        model = f", model {_readable(self.model)}" if self.model else ""
        return (f"language model (preset {self.preset}, n={self.n}, n_eval={self.n_eval}, "
                f"dataset {_readable(self.dataset)}{model}, budget {self.budget})")

    def options(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, repr=False)
class LMResult(SimulationResult):
    """The metrics of an LM run: ``samples[workflow][metric]`` of shape ``(seeds, iterations)``.

    Missing values (an iteration not run for some seed, a statistic undefined for
    it) are ``nan`` there and are left out of the table's means.  ``records`` are the
    iterations' ``metrics.json`` records.
    """

    records: tuple = ()
    seeds: tuple = ()

    @property
    def table(self) -> Table:
        return summary_from_samples(self.samples, [w.label for w in self.workflows], self.notes)

    def summary(self) -> str:
        """The full text table with its notes."""
        return f"{self._title()} (mean +- sem over seeds)\n{self.table.to_text()}"

    def _title(self) -> str:
        return f"{self.problem.describe()}; seeds {', '.join(map(str, self.seeds))}"


def summary_from_samples(samples, labels: Sequence[str], notes: Sequence[str] = (),
                         metrics: Sequence[str] = LM_METRICS) -> Table:
    """Mean and standard error over seeds per (workflow, iteration, metric), finite values only."""
    table = Table(SIMULATE_COLUMNS)
    for label in labels:
        for metric in metrics:
            x = np.asarray(samples.get(label, {}).get(metric, np.empty((0, 0))), dtype=float)
            for t in range(x.shape[1] if x.ndim == 2 else 0):
                values = x[:, t][np.isfinite(x[:, t])]
                if values.size == 0:
                    continue  # no seed defines it: no row rather than a NaN
                s = summarize(values[:, None])
                sem = float(s.sem[0]) if values.size >= 2 else None
                table.append(LM, label, t + 1, metric, float(s.mean[0]), sem, int(values.size))
    table.notes.extend(notes)
    return table


def result_from_records(config: dict, records: Sequence[dict], rules: Sequence[Workflow],
                        seeds: Sequence[int], iterations: int, notes: Sequence[str] = ()) -> LMResult:
    """An :class:`LMResult` from iteration records (those of ``rules``, ``seeds``, ``t <= iterations``)."""
    labels = [rule.label for rule in rules]
    row = {s: k for k, s in enumerate(seeds)}
    samples = {label: {m: np.full((len(seeds), iterations), np.nan) for m in LM_METRICS} for label in labels}
    kept = []
    for record in records:
        label, seed, t = record["workflow"], record["seed"], record["iteration"]
        if label not in samples or seed not in row or not 1 <= t <= iterations:
            continue
        kept.append(record)
        for metric in LM_METRICS:
            value = record["metrics"].get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                samples[label][metric][row[seed], t - 1] = float(value)
    settings = config.get("settings", {})
    preset = settings.get("preset", {})
    problem = LMProblem(preset=str(preset.get("name", "?")), n=int(settings.get("n", 0) or 0),
                        n_eval=int(settings.get("n_eval", 0) or 0), dataset=str(settings.get("dataset")),
                        model=settings.get("model"), budget=settings.get("budget", "epochs"))
    out = list(notes)
    for label in labels:
        complete = np.isfinite(samples[label][TEST_NLL])
        for t in range(iterations):
            if 0 < complete[:, t].sum() < len(seeds):
                out.append(f"{label} iteration {t + 1}: {int(complete[:, t].sum())} of {len(seeds)} "
                           "seeds (run incomplete)")
    table = summary_from_samples(samples, labels)
    out.extend(growth_notes(table, labels))
    return LMResult(problem=problem, workflows=tuple(rules), iterations=iterations,
                    replicates=len(seeds), seed=min(seeds) if seeds else 0, samples=samples,
                    engine="lm", notes=tuple(out), records=tuple(kept), seeds=tuple(seeds))


def load_records(root: str | Path) -> tuple[dict, list[dict], list[str]]:
    """The run's configuration, every done iteration record, and notes on damaged ones.

    Records of format-1 directories (no checksums) are read as they are, with the old
    metric names mapped to the current ones.
    """
    root = Path(root)
    config = rundir.read_config(root)
    verified = config["format"] == rundir.FORMAT
    extent = config["extent"]
    records, notes = [], []
    for label in extent["workflows"]:
        for seed in extent["seeds"]:
            for t in range(1, extent["iterations"] + 1):
                record, problem = rundir.check_iteration(rundir.iteration_dir(root, label, seed, t),
                                                         label, seed, t, verified=verified)
                if record is not None:
                    records.append(record)
                elif problem:
                    notes.append(f"left out {label} seed {seed} iteration {t}: {problem} "
                                 "(`collapse lm run` with the same options recomputes it)")
    return config, records, notes


def load_result(root: str | Path) -> LMResult:
    """The :class:`LMResult` of run directory ``root`` (every done iteration in its extent).

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     load_result(tempfile.mkdtemp())
    ... except CollapseError as error:
    ...     print(str(error).split(":")[0])
    DIR
    """
    config, records, notes = load_records(root)
    if not records:
        raise CollapseError(f"DIR: {root} holds no completed iteration yet")
    extent = config["extent"]
    rules = tuple(parse_workflows(extent["workflows"]))
    reference = real_reference(root)
    extra = list(notes)
    if reference:
        extra.append("real training sets for comparison (mean over seeds): "
                     + ", ".join(f"{metric} {value:.4g}" for metric, value in reference.items()))
    return result_from_records(config, records, rules, extent["seeds"], extent["iterations"], extra)


def summary_table(root: str | Path) -> Table:
    """Mean and standard error over seeds per (workflow, iteration, metric), notes included."""
    return load_result(root).table


def real_reference(root: str | Path) -> dict[str, float]:
    """The sample statistics of the real training sets (mean over seeds), the level at t = 0.

    A real-set file that cannot be read is skipped (``collapse lm run`` rewrites it).
    """
    per_seed = []
    for path in sorted(Path(root).glob("real/seed-*.jsonl")):
        try:
            texts = [r["text"] for r in rundir.read_jsonl(path)]
        except (ValueError, OSError, KeyError, TypeError):
            continue
        if texts and all(isinstance(x, str) for x in texts):
            per_seed.append(sample_metrics(texts))
    if not per_seed:
        return {}
    return {m: math.fsum(s[m] for s in per_seed) / len(per_seed) for m in per_seed[0]}


def growth_verdicts(table: Table, labels: Sequence[str], metric: str = TEST_NLL) -> dict[str, growth.Verdict]:
    """:func:`collapse.lm.growth.fit_growth` of each workflow's ``metric`` curve in ``table``."""
    out = {}
    for label in labels:
        rows = table.select(workflow=label, metric=metric).records()
        if rows:
            out[label] = growth.fit_growth(
                [r["iteration"] for r in rows], [r["mean"] for r in rows], [r["sem"] for r in rows])
    return out


def growth_notes(table: Table, labels: Sequence[str], metric: str = TEST_NLL) -> list[str]:
    return [f"growth of {metric}, {w}: {v.describe()}" for w, v in growth_verdicts(table, labels, metric).items()]


def plot(result: LMResult, path: str | Path) -> None:
    """One panel per metric, one colour per workflow, 95% error bars; format from the extension."""
    from collapse.simulate.plotting import save_figure

    save_figure(result.plot(), path)
