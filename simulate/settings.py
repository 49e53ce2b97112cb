"""Settings known to ``collapse theory|simulate|compare``: the adapter interface.

A setting adapter turns parsed command-line options into a validated
configuration, and answers three questions for one workflow: the exact
expectations per iteration (:meth:`Setting.theory`), Monte Carlo replicates per
iteration (:meth:`Setting.simulate`) and known lower bounds of its metrics (for
the heavy-tail diagnostic of :mod:`collapse.simulate.stats`).  The command-line layer,
tables, statistics and plots are shared; only adapters know about Gaussians or
kernels.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class TheoryResult:
    """Exact expectations of one workflow: ``values[metric][t-1]`` and notes."""

    values: Mapping[str, tuple[float, ...]]
    notes: tuple[str, ...] = ()


class Setting:
    """Base class of setting adapters (see module docstring)."""

    name: str = ""
    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser, command: str) -> None:
        raise NotImplementedError

    def configure(self, args: argparse.Namespace) -> Any:
        """Validated, hashable configuration from parsed options (raise CollapseError)."""
        raise NotImplementedError

    def describe(self, config: Any) -> str:
        raise NotImplementedError

    def theory(self, config: Any, workflow: str, iterations: int) -> TheoryResult:
        raise NotImplementedError

    def simulate(self, config: Any, workflow: str, *, iterations: int, replicates: int,
                 seed: int, chunk_size: int | None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def lower_bounds(self, config: Any) -> dict[str, float | None]:
        return {}


_REGISTRY: dict[str, Setting] = {}


def register(setting: Setting) -> Setting:
    _REGISTRY[setting.name] = setting
    return setting


def settings() -> dict[str, Setting]:
    """All registered adapters, importing the built-in ones on first use."""
    if not _REGISTRY:
        from collapse.simulate import setting_gaussian, setting_kde  # noqa: F401  (they register)
    return dict(_REGISTRY)
