"""Progress bars on standard error (tqdm), silent when not wanted.

Bars are shown only when asked for *and* standard error is a terminal, so logs
and test output stay clean; ``--quiet`` turns them off everywhere.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def write(self, *args, **kwargs) -> None:
        pass


def wanted(quiet: bool) -> bool:
    """Whether bars should be drawn: not ``quiet`` and standard error is a TTY."""
    return (not quiet) and sys.stderr.isatty()


@contextmanager
def bar(total: int, desc: str, enabled: bool, unit: str = "it", leave: bool = False) -> Iterator:
    """A tqdm bar on standard error when ``enabled``, else an object that ignores updates."""
    if not enabled:
        yield _Silent()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True) as t:
        yield t
