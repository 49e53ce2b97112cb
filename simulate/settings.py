"""Settings: the adapters between problems and their exact theory and Monte Carlo engines.

A setting adapter answers three questions for one problem and one workflow rule:
the exact expectations per iteration (:meth:`Setting.theory`), Monte Carlo
replicates per iteration (:meth:`Setting.simulate`) and known lower bounds of its
metrics (for the heavy-tail diagnostic of :mod:`collapse.simulate.stats`).  The
Python API (:mod:`collapse.simulate.api`), tables, statistics and plots are shared;
only adapters know about Gaussians or kernels.  Adapters know nothing of the
command line.

Register a new setting with :func:`register`; the built-in ones are always present
(registering never hides them).

Examples
--------
>>> sorted(settings())
['discrete', 'gaussian', 'kde', 'regression']
>>> from collapse.analysis.problems import Gaussian
>>> setting_for(Gaussian()).name
'gaussian'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import Problem
from collapse.analysis.vocabulary import AUTO
from collapse.analysis.workflows import Workflow


@dataclass(frozen=True)
class Expectations:
    """Exact expectations of one workflow: ``values[metric][t-1]``, and notes.

    A metric absent from ``values`` has no exact theory for that workflow; notes say
    why, and explain infinities.
    """

    values: Mapping[str, tuple[float, ...]]
    notes: tuple[str, ...] = ()


class Setting:
    """Base class of setting adapters (see the module docstring).

    Attributes
    ----------
    name : str
        The setting's name (``gaussian``, ``kde``, ...), as on the command line.
    problem_type : type
        The :class:`~collapse.analysis.problems.Problem` subclass it serves.
    metrics : tuple of str
        Every metric its Monte Carlo reports, in table order.
    engines : tuple of str
        Accepted ``engine`` values (``auto`` first).
    help : str
        One line for ``collapse --help``.
    binary_metrics : tuple of str
        Metrics whose every replicate is 0 or 1 (an indicator: its mean estimates a
        probability); ``compare`` tests them by the exact binomial test.
    bound_attained : tuple of str
        Metrics that reach their lower bound as a value (exact zeros are then not float
        underflow).
    """

    name: str = ""
    problem_type: type = Problem
    metrics: tuple[str, ...] = ()
    engines: tuple[str, ...] = (AUTO,)
    help: str = ""
    binary_metrics: tuple[str, ...] = ()
    bound_attained: tuple[str, ...] = ()

    def theory(self, problem: Problem, workflow: Workflow, iterations: int) -> Expectations:
        raise NotImplementedError

    def simulate(self, problem: Problem, workflow: Workflow, *, iterations: int,
                 replicates: int, seed: int, chunk_size: int | None,
                 engine: str = AUTO) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def lower_bounds(self, problem: Problem) -> dict[str, float | None]:
        return {}

    def upper_bounds(self, problem: Problem, workflow: Workflow,
                     iterations: int) -> dict[str, np.ndarray]:
        """The largest value each metric can take at iterations ``1..T`` (default: none
        known); ``compare`` tests rows whose replicates all sit at a bound exactly."""
        return {}

    def simulation_notes(self, problem: Problem, workflow: Workflow,
                         samples: Mapping[str, np.ndarray]) -> tuple[str, ...]:
        """Notes on what the replicates of one workflow show (default: none)."""
        return ()

    def compare_options(self, problem: Problem, workflows: Sequence[Workflow] = (),
                        iterations: int = 0) -> dict:
        """Keyword arguments of :func:`collapse.simulate.stats.compare` for this setting
        and the ``workflows`` compared over ``iterations``."""
        upper = {w.label: self.upper_bounds(problem, w, iterations) for w in workflows}
        return {"lower_bounds": self.lower_bounds(problem), "binary": self.binary_metrics,
                "attained": self.bound_attained, "upper_bounds": upper}

    def cost(self, problem: Problem, workflow: Workflow, command: str, iterations: int,
             replicates: int):
        """Estimated :class:`~collapse.simulate.budget.Cost` of one workflow of a call.

        ``command`` is ``theory`` or ``simulate`` (``compare`` costs both).  The
        default knows nothing and estimates nothing.
        """
        from collapse.simulate.budget import Cost

        return Cost(0.0, 0.0, "replicates")

    def check_simulation(self, problem: Problem) -> None:
        """Raise :class:`CollapseError` if ``problem`` is valid for theory but beyond
        what the Monte Carlo can resolve (default: nothing is)."""

    def check_monte_carlo(self, problem: Problem, workflow: Workflow, iterations: int) -> None:
        """Raise :class:`CollapseError` if the Monte Carlo cannot run ``workflow`` for
        ``iterations`` on ``problem`` (default: it always can)."""

    def check(self, problem: Problem, workflow: Workflow) -> None:
        """Raise :class:`CollapseError` if ``workflow`` cannot run on ``problem``."""
        n = getattr(problem, "n", None)
        if n is not None:
            workflow.check(n)


_REGISTRY: dict[str, Setting] = {}
_BUILTINS_LOADED = False


def register(setting: Setting) -> Setting:
    """Add (or replace) a setting adapter; returns it, so it can decorate an instance."""
    if not setting.name:
        raise CollapseError("a setting needs a name")
    _REGISTRY[setting.name] = setting
    return setting


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from collapse.simulate import (  # noqa: F401  (they register)
            setting_discrete,
            setting_gaussian,
            setting_kde,
            setting_regression,
        )


def settings() -> dict[str, Setting]:
    """Every registered adapter by name: the built-in ones and any registered since."""
    _load_builtins()
    return dict(_REGISTRY)


def setting_for(problem: object) -> Setting:
    """The adapter serving ``problem`` (by its type); CollapseError for anything else."""
    for setting in settings().values():
        if isinstance(problem, setting.problem_type) and setting.problem_type is not Problem:
            return setting
    names = ", ".join(s.problem_type.__name__ for s in settings().values())
    raise CollapseError(f"problem must be one of {names} (got {problem!r})")


def get(name: str) -> Setting:
    """The adapter named ``name``; CollapseError naming the valid settings otherwise."""
    known = settings()
    if name not in known:
        raise CollapseError(f"setting must be one of {', '.join(known)} (got {name!r})")
    return known[name]
