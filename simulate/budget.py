"""Up-front estimates of memory and time, so that impossible requests fail at once.

Every setting estimates what a call will cost (:meth:`Setting.cost
<collapse.simulate.settings.Setting.cost>`) from its sizes alone, before anything is
computed: the bytes it must hold at once (the replicates it returns, the largest chunk
of working arrays) and the seconds it will take on a core of a small machine.  A
request beyond :data:`MEMORY_FRACTION` of the memory available now, or beyond
:data:`TIME_LIMIT` seconds, is refused with one line that names the option driving
the cost, how much it would need and what the machine has; ``force=True``
(``--force``) runs it anyway.  The rates are rough (within a factor of a few of what
``benchmarks/`` measures): they only have to tell a plausible request from an
impossible one (``--replicates 1000000000``, ``--iterations 1000000000``, ``--dim
1000000000``).

Examples
--------
>>> cost = Cost(bytes=8e12, seconds=1.0, driver="replicates")
>>> cost.fits(available=16e9)
False
>>> Cost(bytes=1e6, seconds=2.0, driver="n").fits(available=16e9)
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from collapse.analysis.errors import CollapseError

#: Refuse a call that would hold more than this fraction of the available memory.
MEMORY_FRACTION = 0.8
#: Refuse a call estimated to take longer than this (seconds of one core).
TIME_LIMIT = 6 * 3600.0


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory (bytes) and time (seconds) of a call.

    ``driver`` names the parameter that drives the cost, for the message.
    """

    bytes: float
    seconds: float
    driver: str

    def __add__(self, other: "Cost") -> "Cost":
        big = self if self.bytes + self.seconds >= other.bytes + other.seconds else other
        return Cost(self.bytes + other.bytes, self.seconds + other.seconds, big.driver)

    def fits(self, available: float | None = None) -> bool:
        available = available_memory() if available is None else available
        return self.bytes <= MEMORY_FRACTION * available and self.seconds <= TIME_LIMIT


def available_memory() -> float:
    """Bytes of memory available now (``MemAvailable``), or the physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float("inf")


def _size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.3g} {unit}"
        value /= 1000.0
    return f"{value:.3g} PB"


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check(cost: Cost, values: dict[str, object], force: bool = False) -> None:
    """Raise :class:`CollapseError` if ``cost`` does not fit (unless ``force``).

    ``values`` maps parameter names to the values the message quotes.
    """
    if force:
        return
    available = available_memory()
    shown = values.get(cost.driver)
    head = f"{cost.driver}={shown}" if shown is not None else cost.driver
    if cost.bytes > MEMORY_FRACTION * available:
        raise CollapseError(
            f"{cost.driver} too large: {head} would need about {_size(cost.bytes)} of memory "
            f"and this machine has {_size(available)} available; use a smaller value, or "
            f"force=True (--force) to try anyway")
    if cost.seconds > TIME_LIMIT:
        raise CollapseError(
            f"{cost.driver} too large: {head} would take about {_duration(cost.seconds)} "
            f"(the limit is {_duration(TIME_LIMIT)}); use a smaller value, or force=True "
            f"(--force) to run anyway")


def driver(**ratios: float) -> str:
    """The name whose value is largest relative to its typical size."""
    return max(ratios, key=lambda name: ratios[name])
