"""Checkpoints: finished Monte Carlo replicates kept on disk, verified before reuse.

``collapse.simulate(..., checkpoint=DIR)`` (and ``--checkpoint DIR``) stores every
finished workflow's replicates in ``DIR`` as one ``.npz`` file, written atomically,
named by a hash of everything that changes the numbers (setting, problem, workflow,
iterations, replicates, seed, engine; not the chunk size or thread count, which do
not).  A rerun with the same settings reuses them, so an interrupted run loses at
most the workflow in progress.

Nothing is trusted blindly: the file also holds its key, and a file that cannot be
read completely (truncated, emptied, a flipped byte: the zip CRC fails), whose key
differs, or whose arrays have the wrong names, shapes or type, or hold NaN, is
reported as damaged and recomputed.

Examples
--------
>>> import tempfile, numpy as np
>>> store = Checkpoint(tempfile.mkdtemp())
>>> key = {"setting": "toy", "workflow": "replace", "replicates": 2, "iterations": 3}
>>> _ = store.save(key, {"m": np.zeros((2, 3))})
>>> store.load(key, ("m",), replicates=2, iterations=3)["m"].shape
(2, 3)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from collapse.analysis.errors import CollapseError

log = logging.getLogger("collapse")

_KEY = "__key__"


def _digest(key: Mapping[str, Any]) -> tuple[str, str]:
    text = json.dumps(key, sort_keys=True, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoint:
    """A directory of verified replicate files (see the module docstring).

    Parameters
    ----------
    directory : path
        Created if missing (its parent must exist).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        text = os.fspath(directory)
        if text == "":
            raise CollapseError("checkpoint: the path is empty")
        self.directory = Path(text)
        if self.directory.exists() and not self.directory.is_dir():
            raise CollapseError(f"checkpoint: {text!r} is not a directory")
        if not self.directory.exists():
            parent = self.directory.absolute().parent
            if not parent.is_dir():
                raise CollapseError(f"checkpoint: cannot create {text!r}: directory "
                                    f"{str(parent)!r} does not exist")
            try:
                self.directory.mkdir()
            except OSError as exc:
                raise CollapseError(f"checkpoint: cannot create {text!r}: "
                                    f"{exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise CollapseError(f"checkpoint: directory {text!r} is not writable")

    def path(self, key: Mapping[str, Any]) -> Path:
        """The file that holds the replicates of ``key``."""
        _, digest = _digest(key)
        label = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{key.get('setting', 'x')}-{key.get('workflow', 'x')}")
        return self.directory / f"{label[:80]}-{digest}.npz"

    def load(self, key: Mapping[str, Any], metrics: Sequence[str] | None, *, replicates: int,
             iterations: int) -> dict[str, np.ndarray] | None:
        """The stored replicates of ``key``, or ``None`` if absent or damaged (logged)."""
        path = self.path(key)
        if not path.exists():
            return None
        expected, _ = _digest(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.array(data[name]) for name in data.files}
            stored = str(arrays.pop(_KEY))
            if stored != expected:
                raise ValueError("it was written for other settings")
            if metrics is not None and set(arrays) != set(metrics):
                raise ValueError(f"it holds metrics {sorted(arrays)}")
            for name, values in arrays.items():
                if values.shape != (replicates, iterations) or values.dtype != np.float64:
                    raise ValueError(f"{name} has shape {values.shape}, type {values.dtype}")
                if np.isnan(values).any():
                    raise ValueError(f"{name} holds NaN")
        except Exception as exc:  # any failure to read back means: do not trust it
            log.warning("checkpoint %s is damaged (%s); recomputing", path, exc)
            return None
        log.info("reused %s from %s", key.get("workflow"), path)
        return arrays

    def save(self, key: Mapping[str, Any], samples: Mapping[str, np.ndarray]) -> Path:
        """Store ``samples`` under ``key`` atomically; returns the file."""
        from collapse.simulate.tables import write_bytes

        text, _ = _digest(key)
        buffer = io.BytesIO()
        np.savez(buffer, **{_KEY: np.array(text)}, **{k: np.asarray(v, dtype=np.float64)
                                                       for k, v in samples.items()})
        return write_bytes(self.path(key), buffer.getvalue(), "checkpoint")
