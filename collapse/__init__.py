"""Collapse or thrive: exact theory and fast Monte Carlo of model collapse.

Will a model collapse if it trains on its own outputs?  This package answers the
question of Kazdan et al., *Collapse or Thrive? Perils and Promises of Synthetic Data
in a Self-Generating World*, for training workflows that replace real data with
synthetic data, accumulate both, or anything in between, exactly where theory can be
exact and by vectorised Monte Carlo elsewhere.

The public API is what this module exports:

* problems: :class:`Gaussian`, :class:`KDE`, :class:`Regression`, :class:`Discrete`;
* workflows: :class:`Workflow` (presets ``replace``, ``accumulate``,
  ``accumulate-subsample``, ``fresh``, or any rule);
* :func:`theory`, :func:`simulate`, :func:`compare`, returning
  :class:`TheoryResult`, :class:`SimulationResult`, :class:`ComparisonResult`;
* :func:`value`, the value of synthetic data over a grid of student sizes, returning
  :class:`ValueResult`;
* :func:`sweep`: a grid of those (or of language-model runs) as tasks on a Dask
  cluster, each finished cell kept on disk, returning a :class:`SweepResult`;
* :class:`CollapseError`, the one exception type (a ``ValueError``).

``collapse.simulate`` is both the Monte Carlo package and the function: calling it runs
:func:`collapse.simulate.api.simulate`, and its submodules import as usual
(``from collapse.simulate.stats import summarize``).

Examples
--------
>>> import collapse
>>> problem = collapse.Gaussian(dim=10, n=100)
>>> th = collapse.theory(problem, workflow="all", iterations=100)
>>> mc = collapse.simulate(problem, workflow="accumulate-subsample", iterations=100,
...                        replicates=200, seed=0)
>>> cmp = collapse.compare(problem, workflow="all", iterations=20, replicates=500, seed=0)
>>> cmp.consistent, list(cmp.to_frame().columns)[:4]
(True, ['setting', 'workflow', 'iteration', 'metric'])
>>> grid = collapse.value(problem, generator_n=100, real_sizes=[10, 100],
...                       synthetic_sizes=[0, 1000])
>>> grid.exact_crossover()
50.5
>>> th = collapse.theory(collapse.Regression(dim=10, n=100), "replace", iterations=10)
>>> round(th.values["replace"]["test_mse"][-1], 4)  # t sigma2 d / (n - d - 1)
1.1236
>>> collapse.theory(collapse.Discrete(categories=10, n=10), "replace",
...                 iterations=2).values["replace"]["gini_diversity"]
(0.8099999999999999, 0.729)
"""

import inspect as _inspect
import sys as _sys
import types as _types

from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import KDE, Discrete, Gaussian, Problem, Regression
from collapse.analysis.workflows import Workflow
from collapse.simulate import api as _api
from collapse.simulate.api import compare, theory
from collapse.simulate.results import (
    ComparisonResult,
    SimulationResult,
    TheoryResult,
    ValueResult,
)
from collapse.simulate.sweep import SweepResult, sweep
from collapse.simulate.value import value


class _CallablePackage(_types.ModuleType):
    """The ``collapse.simulate`` package, callable as :func:`collapse.simulate.api.simulate`.

    A plain ``from ... import simulate`` would shadow the package with the function, so
    that ``import collapse.simulate.stats as s`` and ``mock.patch("collapse.simulate.x")``
    fail; a callable package keeps both working.
    """

    def __call__(self, *args, **kwargs):
        return _api.simulate(*args, **kwargs)


simulate = _sys.modules["collapse.simulate"]
simulate.__class__ = _CallablePackage
simulate.__signature__ = _inspect.signature(_api.simulate)

__all__ = [
    "CollapseError",
    "ComparisonResult",
    "Discrete",
    "Gaussian",
    "KDE",
    "Problem",
    "Regression",
    "SimulationResult",
    "SweepResult",
    "TheoryResult",
    "ValueResult",
    "Workflow",
    "compare",
    "simulate",
    "sweep",
    "theory",
    "value",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("collapse-or-thrive")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
