"""argparse ``type=`` validators whose messages name the valid range.

argparse prefixes the message with the option (``argument --n: ...``), and the
``collapse`` parser prints it as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'} (got {text!r})"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def int_at_least(low: int):
    """``type=`` for integers ``>= low``."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low} (got {text})")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    """``type=`` for finite numbers ``> 0``."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (got {text})")
    return value


def probability(text: str) -> float:
    """``type=`` for numbers strictly between 0 and 1."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1) (got {text})")
    return value


def any_float(text: str) -> float:
    return _number(text, float)
