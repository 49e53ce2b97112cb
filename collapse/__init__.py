"""Collapse or thrive: exact theory and fast Monte Carlo of model collapse.

Will a model collapse if it trains on its own outputs?  This package answers the
question of Kazdan et al., *Collapse or Thrive? Perils and Promises of Synthetic Data
in a Self-Generating World*, for training workflows that replace real data with
synthetic data, accumulate both, or anything in between, exactly where theory can be
exact and by vectorised Monte Carlo elsewhere.

The public API is what this module exports:

* problems: :class:`Gaussian`, :class:`KDE`;
* workflows: :class:`Workflow` (presets ``replace``, ``accumulate``,
  ``accumulate-subsample``, ``fresh``, or any rule);
* :func:`theory`, :func:`simulate`, :func:`compare`, returning
  :class:`TheoryResult`, :class:`SimulationResult`, :class:`ComparisonResult`;
* :func:`sweep`: a grid of those (or of language-model runs) as tasks on a Dask
  cluster, each finished cell kept on disk, returning a :class:`SweepResult`;
* :class:`CollapseError`, the one exception type (a ``ValueError``).

Submodules are reached by their full names, e.g. ``from collapse.simulate.stats
import summarize`` (``collapse.simulate`` itself is the function).

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
"""

from collapse.analysis.errors import CollapseError
from collapse.analysis.problems import KDE, Gaussian, Problem
from collapse.analysis.workflows import Workflow
from collapse.simulate.api import compare, simulate, theory
from collapse.simulate.results import ComparisonResult, SimulationResult, TheoryResult
from collapse.simulate.sweep import SweepResult, sweep

__all__ = [
    "CollapseError",
    "ComparisonResult",
    "Gaussian",
    "KDE",
    "Problem",
    "SimulationResult",
    "SweepResult",
    "TheoryResult",
    "Workflow",
    "compare",
    "simulate",
    "sweep",
    "theory",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("collapse-or-thrive")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
