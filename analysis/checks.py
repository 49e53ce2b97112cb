"""The one place where parameters are checked.

Each check returns the value in canonical form (a Python ``int``, ``float`` or
``str``) or raises :class:`~collapse.analysis.errors.CollapseError` with a one-line
message that names the parameter and its valid range, in the form used everywhere:
``n must be an integer >= 2 (got 1)``.  Booleans are never accepted as numbers
(``True`` is an ``int`` to Python, not to a user), nor are NaN or infinities unless
asked for.  Modelled on scikit-learn's ``check_scalar``.

Examples
--------
>>> check_int("n", 10, minimum=2)
10
>>> check_real("sigma2", 2, low=0)
2.0
>>> check_int("n", 1, minimum=2)
Traceback (most recent call last):
...
collapse.analysis.errors.CollapseError: n must be an integer >= 2 (got 1)
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Iterable, TypeVar

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import WORKFLOWS

T = TypeVar("T")


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def check_int(param: str, value: object, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    Parameters
    ----------
    param : str
        The parameter's name, as the user spells it (``"n"``, ``"--n"``).
    value : object
        An ``int`` or numpy integer; ``bool`` and floats (even ``3.0``) are refused.
    minimum, maximum : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Raises
    ------
    CollapseError
        Naming ``param`` and the valid range.

    Examples
    --------
    >>> check_int("dim", 3, minimum=1)
    3
    """
    valid = _int_range(minimum, maximum)
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise CollapseError(f"{param} must be {valid} (got {value!r})") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise CollapseError(f"{param} must be {valid} (got {number})")
    return int(number)


def _real_range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"a number in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_real(param: str, value: object, *, low: float | None = None,
               high: float | None = None, low_open: bool = True,
               high_open: bool = False) -> float:
    """Return ``value`` as a finite ``float`` in the given interval.

    Parameters
    ----------
    param : str
        The parameter's name.
    value : object
        A real number (``int``, ``float``, numpy scalar); ``bool``, strings, NaN and
        infinities are refused.
    low, high : float, optional
        Bounds of the interval; ``low_open`` (default True) excludes ``low``,
        ``high_open`` (default False) excludes ``high``.

    Returns
    -------
    float

    Raises
    ------
    CollapseError
        Naming ``param`` and the valid range.

    Examples
    --------
    >>> check_real("alpha", 0.05, low=0, high=1, high_open=True)
    0.05
    """
    valid = _real_range(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CollapseError(f"{param} must be {valid} (got {value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise CollapseError(f"{param} must be {valid} (got {number!r})")
    if low is not None and (number < low or (low_open and number == low)):
        raise CollapseError(f"{param} must be {valid} (got {number!r})")
    if high is not None and (number > high or (high_open and number == high)):
        raise CollapseError(f"{param} must be {valid} (got {number!r})")
    return number


def check_choice(param: str, value: object, choices: Iterable[T]) -> T:
    """Return ``value`` if it is one of ``choices``.

    Examples
    --------
    >>> check_choice("covariance", "mle", ("mle", "unbiased"))
    'mle'
    """
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise CollapseError(
            f"{param} must be one of {', '.join(map(str, options))} (got {value!r})")
    return value  # type: ignore[return-value]


def check_seed(value: object, param: str = "seed") -> int:
    """A seed of numpy's ``SeedSequence``: an integer ``>= 0``.

    Examples
    --------
    >>> check_seed(2024)
    2024
    """
    return check_int(param, value, 0)


def check_workflow(workflow: object) -> str:
    """Return ``workflow`` if it is one of the paper's three workflow names.

    The exact-theory functions that take a workflow *name* use this check; general
    rules are :class:`collapse.analysis.workflows.Workflow` objects.

    Examples
    --------
    >>> check_workflow("replace")
    'replace'
    """
    if not isinstance(workflow, str) or workflow not in WORKFLOWS:
        raise CollapseError(f"workflow must be one of {', '.join(WORKFLOWS)} (got {workflow!r})")
    return workflow
