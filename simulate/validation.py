"""Argument checks of the Monte Carlo engines: the :mod:`collapse.analysis.vocabulary` checks,
raising :class:`collapse.simulate.errors.UsageError` (a ValueError) so that the command line
prints them as one-line usage errors.
"""

from __future__ import annotations

from collapse.analysis import vocabulary
from collapse.simulate.errors import UsageError


def check_int(param: str, value: object, minimum: int) -> int:
    """:func:`collapse.analysis.vocabulary.check_int`, raising UsageError."""
    try:
        return vocabulary.check_int(param, value, minimum)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_workflow(workflow: object) -> str:
    """:func:`collapse.analysis.vocabulary.check_workflow`, raising UsageError."""
    try:
        return vocabulary.check_workflow(workflow)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
