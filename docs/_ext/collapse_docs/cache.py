"""A result cache for the docs build, keyed by the call and by the code.

:func:`cached` calls a function (usually :func:`collapse.compare`,
:func:`collapse.simulate` or :func:`collapse.value`) and keeps its result in
``docs/_generated/cache/`` as a pickle.  The key hashes

* the function's module and name, and its source when it is not part of the package
  (a helper defined in a gallery example);
* its arguments, bound to the signature with the defaults applied, so
  ``compare(p, "all", iterations=5)`` and ``compare(p, workflow="all", iterations=5)``
  share an entry;
* every ``.py`` file of ``analysis/`` and ``simulate/`` (:func:`collapse_docs.runs.source_digest`)
  and this module.

So a rebuild with unchanged code reuses every result, a change to the code recomputes
them all, and the pages (:mod:`collapse_docs.runs`) and the gallery share the results of
identical calls.  A comparison is stored without its raw replicates (``simulation.samples``,
up to hundreds of megabytes at 10^5 replicates); its rows, verdicts and plots need only the
per-row statistics.  The cache is safe to delete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable

#: Where pickled results go (git-ignored, under the generated folder of the docs).
CACHE = Path(__file__).resolve().parents[2] / "_generated" / "cache"

#: The cache file of every result returned in this process, by ``id`` of the result, so
#: that :func:`collapse_docs.gallery.report` can say which stored results a figure rests
#: on (``tests/test_docs.py`` recounts their rows from those files).
FILES: dict[int, str] = {}


def _function_id(function: Callable) -> dict[str, str]:
    module = getattr(function, "__module__", "") or ""
    name = getattr(function, "__qualname__", getattr(function, "__name__", repr(function)))
    out = {"function": f"{module}.{name}"}
    if module.split(".")[0] != "collapse":  # not the package: its source is part of the key
        try:
            out["source"] = inspect.getsource(function)
        except (OSError, TypeError):
            out["source"] = repr(function)
    return out


def _bound(function: Callable, args: tuple, kwargs: dict) -> dict[str, str]:
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
        bound.apply_defaults()
        items = bound.arguments
    except (TypeError, ValueError):
        items = {"args": args, "kwargs": kwargs}
    return {name: repr(value) for name, value in items.items()}


def key(function: Callable, *args: Any, **kwargs: Any) -> str:
    """The cache key of ``function(*args, **kwargs)`` (see the module docstring)."""
    from collapse_docs.runs import source_digest

    payload = {"call": _function_id(function), "arguments": _bound(function, args, kwargs),
               "code": source_digest(), "cache": Path(__file__).read_text()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _slim(result: Any) -> Any:
    """A comparison without its raw replicates (everything else is kept)."""
    from collapse.simulate.results import ComparisonResult

    if isinstance(result, ComparisonResult) and result.simulation.samples:
        return dataclasses.replace(result,
                                   simulation=dataclasses.replace(result.simulation, samples={}))
    return result


def cached(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, reused from ``docs/_generated/cache`` when the call and
    the code are unchanged (comparisons are kept without their raw replicates)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    digest = key(function, *args, **kwargs)
    name = getattr(function, "__name__", "call")
    path = CACHE / f"{name}-{digest[:24]}.pkl"
    if path.is_file():
        try:
            with path.open("rb") as handle:
                result = pickle.load(handle)
            FILES[id(result)] = path.name
            return result
        except Exception:  # noqa: BLE001 - a truncated or stale pickle is recomputed
            path.unlink(missing_ok=True)
    result = _slim(function(*args, **kwargs))
    fd, tmp = tempfile.mkstemp(dir=CACHE, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    FILES[id(result)] = path.name
    return result
