"""The library API: exact theory, Monte Carlo and their comparison for any problem.

These three functions are what the ``collapse`` command, ``make demo``, the docs and
the benchmarks call; a notebook uses them the same way.  A problem is a validated
dataclass (:class:`~collapse.analysis.problems.Gaussian`,
:class:`~collapse.analysis.problems.KDE`, ...), a workflow a preset name, a spec, a
list of them, ``"all"`` (the paper's three) or a
:class:`~collapse.analysis.workflows.Workflow`.

For one seed the numbers are a function of the problem, the workflows, the engine,
the number of replicates and the seed: the first ``t`` iterations do not depend on
``iterations``, nor on ``chunk_size`` or the thread count; the command line with the
same options gives the same numbers.

Examples
--------
>>> import collapse
>>> problem = collapse.Gaussian(dim=10, n=100)
>>> th = collapse.theory(problem, workflow="all", iterations=100)
>>> th.values["replace"]["cov_trace_ratio"][0]
0.99
>>> cmp = collapse.compare(problem, workflow="accumulate", iterations=10, replicates=400,
...                        seed=0)
>>> cmp.consistent
True
"""

from __future__ import annotations

import os
from typing import Any

from collapse.analysis.checks import check_int, check_real, check_seed
from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import Problem
from collapse.analysis.vocabulary import AUTO
from collapse.analysis.workflows import Workflow, WorkflowLike, parse_workflows
from collapse.simulate.results import ComparisonResult, SimulationResult, TheoryResult
from collapse.simulate.settings import Setting, setting_for

#: Default number of model-fitting iterations (as in the paper).
ITERATIONS = 100
#: Default number of Monte Carlo replicates.
REPLICATES = 1000


def _prepare(problem: Problem, workflow: WorkflowLike, iterations: int
             ) -> tuple[Setting, tuple[Workflow, ...], int]:
    setting = setting_for(problem)
    workflows = parse_workflows(workflow)
    iterations = check_int("iterations", iterations, 1)
    for rule in workflows:
        setting.check(problem, rule)
    return setting, workflows, iterations


def check_call(command: str, problem: Problem, workflow: WorkflowLike = "all",
               iterations: int = ITERATIONS, replicates: int = REPLICATES, seed: int = 0, *,
               alpha: float = 0.01, theory_scale: float = 1.0, engine: str = AUTO,
               chunk_size: int | None = None, force: bool = False) -> None:
    """Raise :class:`CollapseError` for any argument that ``command`` would refuse.

    Computes nothing, so the command line can refuse bad options before any work,
    and the docs can check the commands they show.  This includes the up-front
    estimate of memory and time (:mod:`collapse.simulate.budget`): a call that
    cannot fit this machine is refused unless ``force`` is true.

    Examples
    --------
    >>> import collapse
    >>> check_call("compare", collapse.Gaussian(), replicates=1)
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: replicates must be an integer >= 10 (got 1) for compare: ...
    """
    from collapse.analysis.checks import check_choice

    check_choice("command", command, ("theory", "simulate", "compare"))
    setting, workflows, iterations = _prepare(problem, workflow, iterations)
    if command == "theory":
        check_real("theory_scale", theory_scale)
        _check_budget(setting, problem, workflows, ("theory",), iterations, 1, force)
        return
    minimum = _min_replicates() if command == "compare" else 1
    try:
        replicates = check_int("replicates", replicates, minimum)
    except CollapseError as exc:
        if command != "compare" or isinstance(replicates, bool) or not isinstance(replicates, int):
            raise
        raise CollapseError(
            f"{exc} for compare: with fewer, a row's spread and skewness are too uncertain "
            f"to show that its mean is near-normal, so no test could hold the stated "
            f"false-alarm rate") from None
    check_seed(seed)
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, 1)
    if not isinstance(engine, str) or engine not in setting.engines:
        raise CollapseError(f"engine must be one of {', '.join(setting.engines)} for the "
                            f"{setting.name} setting (got {engine!r})")
    if command == "compare":
        check_real("alpha", alpha, low=0, high=1, high_open=True)
        check_real("theory_scale", theory_scale)
    setting.check_simulation(problem)
    for rule in workflows:
        setting.check_monte_carlo(problem, rule, iterations)
    stages = ("theory", "simulate") if command == "compare" else ("simulate",)
    _check_budget(setting, problem, workflows, stages, iterations, replicates, force)


def _check_budget(setting: Setting, problem: Problem, workflows: tuple[Workflow, ...],
                  stages: tuple[str, ...], iterations: int, replicates: int,
                  force: bool) -> None:
    from collapse.simulate import budget

    total = budget.Cost(0.0, 0.0, "replicates")
    for rule in workflows:
        for stage in stages:
            total = total + setting.cost(problem, rule, stage, iterations, replicates)
    values = {"replicates": replicates, "iterations": iterations}
    values.update(problem.options())
    budget.check(total, values, force)


def _min_replicates() -> int:
    from collapse.simulate import stats

    return int(getattr(stats, "MIN_REPLICATES", 2))


def theory(problem: Problem, workflow: WorkflowLike = "all", iterations: int = ITERATIONS, *,
           scale: float = 1.0, force: bool = False) -> TheoryResult:
    """Exact expectations of every metric that has exact theory, per iteration.

    Parameters
    ----------
    problem : Problem
        E.g. ``collapse.Gaussian(dim=10, n=100)``.
    workflow : str, Workflow or list
        ``"all"`` (default: replace, accumulate, accumulate-subsample), a preset name,
        a comma-separated list of presets, a spec such as
        ``"real=original,synthetic=window:3"``, a :class:`Workflow`, or a list.
    iterations : int
        Model-fitting iterations ``t = 1..iterations`` (iteration 1 = fitted on the
        real data).
    scale : float
        Multiply every expectation by this factor (a negative control; default 1).
    force : bool
        Run even when the up-front estimate says the call cannot fit this machine.

    Returns
    -------
    TheoryResult
        ``values[workflow][metric]`` per iteration, with notes on omissions.

    Examples
    --------
    >>> import collapse
    >>> th = collapse.theory(collapse.Gaussian(n=10), workflow="replace", iterations=2)
    >>> th.values["replace"]["mean_sq_error"]
    (0.1, 0.19)
    """
    check_call("theory", problem, workflow, iterations, theory_scale=scale, force=force)
    setting, workflows, iterations = _prepare(problem, workflow, iterations)
    scale = float(scale)
    values: dict[str, dict[str, tuple[float, ...]]] = {}
    notes: list[str] = []
    for rule in workflows:
        result = setting.theory(problem, rule, iterations)
        values[rule.label] = {metric: tuple(float(v) * scale for v in series)
                              for metric, series in result.values.items()}
        for note in result.notes:
            text = f"{rule.label}: {note}"
            if text not in notes:
                notes.append(text)
    return TheoryResult(problem=problem, workflows=workflows, iterations=iterations,
                        values=values, notes=tuple(notes), scale=scale)


def _checkpoint_key(setting: Setting, problem: Problem, rule: Workflow, iterations: int,
                    replicates: int, seed: int, engine: str) -> dict[str, Any]:
    return {"setting": setting.name, "problem": problem.options(), "workflow": rule.spec,
            "iterations": iterations, "replicates": replicates, "seed": seed,
            "engine": engine}


def simulate(problem: Problem, workflow: WorkflowLike = "all", iterations: int = ITERATIONS,
             replicates: int = REPLICATES, seed: int = 0, *, engine: str = AUTO,
             chunk_size: int | None = None, checkpoint: str | os.PathLike | None = None,
             force: bool = False) -> SimulationResult:
    """Monte Carlo replicates of every metric, per workflow and iteration.

    Parameters
    ----------
    problem, workflow, iterations
        As for :func:`theory`.
    replicates : int
        Independent replicates of the whole loop (``>= 1``).
    seed : int
        Seed of numpy's ``SeedSequence`` (``>= 0``).
    engine : str
        ``"auto"`` (default), or a setting's engine (Gaussian: ``"stats"``,
        sufficient statistics, for rules that keep whole batches; ``"points"``, the
        literal algorithm, every rule).  Engines agree in law, not draw for draw.
    chunk_size : int, optional
        Replicates computed together (bounds memory); results do not depend on it.
    checkpoint : path, optional
        Keep each finished workflow's replicates in this directory and reuse them on
        a rerun with the same settings (:mod:`collapse.simulate.checkpoint`).
    force : bool
        Run even when the up-front estimate says the call cannot fit this machine.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> import collapse
    >>> a = collapse.simulate(collapse.KDE(n=10), "replace", iterations=3, replicates=16)
    >>> b = collapse.simulate(collapse.KDE(n=10), "replace", iterations=6, replicates=16)
    >>> bool((a.samples["replace"]["mise"] == b.samples["replace"]["mise"][:, :3]).all())
    True
    """
    check_call("simulate", problem, workflow, iterations, replicates, seed, engine=engine,
               chunk_size=chunk_size, force=force)
    setting, workflows, iterations = _prepare(problem, workflow, iterations)
    replicates, seed = int(replicates), int(seed)
    store = None
    if checkpoint is not None:
        from collapse.simulate.checkpoint import Checkpoint

        store = Checkpoint(checkpoint)
    samples: dict[str, dict] = {}
    notes: list[str] = []
    for rule in workflows:
        key = _checkpoint_key(setting, problem, rule, iterations, replicates, seed, engine)
        found = store.load(key, None, replicates=replicates, iterations=iterations) \
            if store is not None else None
        if found is None:
            found = setting.simulate(problem, rule, iterations=iterations,
                                     replicates=replicates, seed=seed, chunk_size=chunk_size,
                                     engine=engine)
            if store is not None:
                store.save(key, found)
        samples[rule.label] = {m: found[m] for m in setting.metrics if m in found}
        for note in setting.simulation_notes(problem, rule, samples[rule.label]):
            text = f"{rule.label}: {note}"
            if text not in notes:
                notes.append(text)
    return SimulationResult(problem=problem, workflows=workflows, iterations=iterations,
                            replicates=replicates, seed=seed, samples=samples, engine=engine,
                            notes=tuple(notes))


def _with_quantiles(expectations: TheoryResult) -> TheoryResult:
    """Add the exact quantile rows a setting knows (``Setting.quantile_theory``, if any).

    They are scaled by ``theory_scale`` like every expectation, so the negative control
    moves them too.
    """
    import dataclasses

    setting = setting_for(expectations.problem)
    extra = getattr(setting, "quantile_theory", None)
    if extra is None:
        return expectations
    values = {label: dict(per_metric) for label, per_metric in expectations.values.items()}
    added = False
    for rule in expectations.workflows:
        for name, series in extra(expectations.problem, rule, expectations.iterations).items():
            values.setdefault(rule.label, {})[name] = tuple(float(v) * expectations.scale
                                                            for v in series)
            added = True
    if not added:
        return expectations
    return dataclasses.replace(expectations, values=values)


def compare(problem: Problem, workflow: WorkflowLike = "all", iterations: int = ITERATIONS,
            replicates: int = REPLICATES, seed: int = 0, *, alpha: float = 0.01,
            theory_scale: float = 1.0, engine: str = AUTO, chunk_size: int | None = None,
            checkpoint: str | os.PathLike | None = None,
            force: bool = False) -> ComparisonResult:
    """Exact theory against Monte Carlo: one z-test per row, Holm over all, one verdict.

    Every (workflow, metric, iteration) with exact theory is a row; rows whose
    Monte Carlo mean cannot be tested honestly (heavy-tailed, divergent or
    underflowing expectations) are set aside and counted, never silently dropped.
    Where a setting knows a metric's exact law, rows of its exact quantiles are added
    and tested by exact binomial tests (Gaussian ``replace``: the quartiles of the
    log-determinant ratio, ``log_cov_det_ratio_q25/_q50/_q75``; see
    :mod:`collapse.simulate.stats`);
    the verdict is ``CONSISTENT`` only if at least one row was tested and none was
    rejected at family-wise false-alarm rate ``alpha`` (see
    :mod:`collapse.simulate.stats`).

    Parameters
    ----------
    problem, workflow, iterations, replicates, seed, engine, chunk_size, checkpoint, force
        As for :func:`simulate`.
    alpha : float
        Family-wise false-alarm rate, in (0, 1) (default 0.01).
    theory_scale : float
        Negative control: multiply every expectation by this factor before testing;
        a sound test must then report inconsistency (default 1).

    Returns
    -------
    ComparisonResult
        ``.consistent``, ``.verdict``, ``.summary()``, ``.to_frame()``, ``.plot()``.

    Examples
    --------
    >>> import collapse
    >>> bad = collapse.compare(collapse.Gaussian(dim=2, n=20), "accumulate", iterations=5,
    ...                        replicates=2000, seed=0, theory_scale=1.05)
    >>> bad.verdict
    'INCONSISTENT'
    """
    from collapse.simulate import stats

    check_call("compare", problem, workflow, iterations, replicates, seed, alpha=alpha,
               theory_scale=theory_scale, engine=engine, chunk_size=chunk_size, force=force)
    alpha = float(alpha)
    expectations = _with_quantiles(
        theory(problem, workflow, iterations, scale=theory_scale, force=force))
    simulation = simulate(problem, expectations.workflows, iterations, replicates, seed,
                          engine=engine, chunk_size=chunk_size, checkpoint=checkpoint,
                          force=force)
    setting = setting_for(problem)
    options = setting.compare_options(problem, expectations.workflows, iterations)
    statistics = stats.compare(setting.name, expectations.values, simulation.samples,
                               alpha=alpha, **options)
    return ComparisonResult(theory=expectations, simulation=simulation, alpha=alpha,
                            statistics=statistics)
