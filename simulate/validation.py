"""Argument checks shared by the Monte Carlo engines (one message style everywhere).

Each check raises :class:`simulate.errors.UsageError` with a one-line message that
names the parameter and its valid range, e.g. ``n must be an integer >= 2 (got 1)``.
"""

from __future__ import annotations

import operator

from analysis.vocabulary import WORKFLOWS
from simulate.errors import UsageError


def check_int(param: str, value: object, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) ``>= minimum``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"{param} must be an integer >= {minimum} (got {value!r})") from None
    if number < minimum:
        raise UsageError(f"{param} must be an integer >= {minimum} (got {number})")
    return number


def check_workflow(workflow: object) -> str:
    """``workflow`` if it is one of :data:`analysis.vocabulary.WORKFLOWS`."""
    if workflow not in WORKFLOWS:
        raise UsageError(f"workflow must be one of {', '.join(WORKFLOWS)} (got {workflow!r})")
    return workflow  # type: ignore[return-value]
