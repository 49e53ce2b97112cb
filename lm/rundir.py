"""The on-disk layout of a run directory, its configuration and atomic writes.

::

    DIR/config.json                         settings (must match to resume) + extent
    DIR/real/seed-<s>.jsonl                 the real training set of replicate s
    DIR/<workflow>/seed-<s>/iter-<ttt>/
        training_set.json                   D_t as (source, index) references
        samples.jsonl                       the n texts sampled from model t
        metrics.json                        metrics of model t (written last)

Every file is written to a temporary name and moved into place with
``os.replace``.  ``metrics.json`` is the commit record of an iteration: an
iteration is complete exactly when it exists, so a killed run loses at most
the iteration in progress, and resuming recomputes only missing iterations.

The *settings* (everything that changes results: preset values, ``--n``,
``--n-eval``, data set and its fingerprint, model, seed, base-model cache key)
must equal those of the directory; the *extent* (workflows, iterations, seeds)
may grow, and only the new work is computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from collapse.analysis.errors import CollapseError
from collapse.simulate.tables import write_text

FORMAT = "collapse-lm-run/1"
CONFIG = "config.json"
METRICS = "metrics.json"
SAMPLES = "samples.jsonl"
TRAINING_SET = "training_set.json"

#: How a settings key is named in messages (the option that sets it).
PARAMETER_NAMES = {
    "n": "--n",
    "n_eval": "--n-eval",
    "dataset": "--dataset",
    "text_field": "--text-field",
    "dataset_sha256": "--dataset (its contents changed)",
    "model": "--model",
    "seed": "--seed",
    "split_seed": "split_seed",
    "base_key": "base model (its cache key: preset, corpus or library versions changed)",
    "format": "run-directory format",
}


def _write(path: Path, text: str) -> None:
    # a run directory grows its own folders (seed-*/iter-*) as iterations finish
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text, "DIR")


def write_json(path: Path, payload: Any) -> None:
    _write(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    _write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def iteration_dir(root: Path, workflow: str, seed: int, t: int) -> Path:
    return Path(root) / workflow / f"seed-{seed}" / f"iter-{t:03d}"


def real_path(root: Path, seed: int) -> Path:
    return Path(root) / "real" / f"seed-{seed}.jsonl"


def is_complete(directory: Path) -> bool:
    return (Path(directory) / METRICS).is_file()


def _parameter_name(key: str) -> str:
    if key in PARAMETER_NAMES:
        return PARAMETER_NAMES[key]
    if key.startswith("preset."):
        field = key.split(".", 1)[1]
        return "--preset" if field == "name" else f"--preset (its {field})"
    return key


def _flatten(settings: dict) -> dict:
    flat = {}
    for key, value in settings.items():
        if key == "preset" and isinstance(value, dict):
            for field, inner in value.items():
                if field not in ("n", "n_eval"):
                    flat[f"preset.{field}"] = inner
        else:
            flat[key] = value
    return flat


def first_difference(old: dict, new: dict) -> str | None:
    """Key of the first setting that differs (``n``/``n_eval`` and the preset name first)."""
    a, b = _flatten(old), _flatten(new)
    priority = ["format", "preset.name", "n", "n_eval", "dataset", "text_field", "model", "seed"]
    keys = priority + sorted(k for k in set(a) | set(b) if k not in priority)
    for key in keys:
        if a.get(key) != b.get(key):
            return key
    return None


def check_run(root: Path, settings: dict) -> None:
    """:class:`CollapseError` unless ``root`` is new, empty, or a run with the same ``settings``."""
    _merged(Path(root), settings, None, None)


def open_run(root: Path, settings: dict, extent: dict, provenance: dict) -> dict:
    """Create ``root`` or check that it holds a run with the same ``settings``.

    Returns the config written (extent = the union/maximum of old and new).
    Raises :class:`CollapseError` for a directory made with other settings or a
    non-empty directory that is not a run.
    """
    root = Path(root)
    config = _merged(root, settings, extent, provenance)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / CONFIG, config)
    return config


def _merged(root: Path, settings: dict, extent: dict | None, provenance: dict | None) -> dict:
    path = root / CONFIG
    if path.is_file():
        try:
            old = read_json(path)
        except (json.JSONDecodeError, OSError):
            raise CollapseError(f"--output: {root} has an unreadable {CONFIG}; use another --output directory") from None
        old_settings = old.get("settings", {}) if old.get("format") == FORMAT else None
        key = "format" if old_settings is None else first_difference(old_settings, settings)
        if key is not None:
            if key == "format":
                there, now = old.get("format"), FORMAT
            else:
                there, now = _flatten(old_settings).get(key), _flatten(settings).get(key)
            raise CollapseError(
                f"--output: {root} was made with different settings: {_parameter_name(key)} is "
                f"{json.dumps(there)} there but {json.dumps(now)} now; "
                "use another --output directory or the same settings"
            )
        if extent is None:
            return old
        old_extent = old.get("extent", {})
        workflows = list(old_extent.get("workflows", []))
        workflows += [w for w in extent["workflows"] if w not in workflows]
        extent = {
            "workflows": workflows,
            "iterations": max(int(old_extent.get("iterations", 0)), extent["iterations"]),
            "seeds": sorted(set(old_extent.get("seeds", [])) | set(extent["seeds"])),
        }
        provenance = old.get("provenance", provenance)
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CollapseError(
            f"--output: {root} exists and is not an lm run directory (no {CONFIG}); "
            "choose a new or empty directory"
        )
    return {"format": FORMAT, "settings": settings, "extent": extent, "provenance": provenance}


def read_config(root: Path) -> dict:
    """The configuration of run directory ``root`` (:class:`CollapseError` if it is not one)."""
    path = Path(root) / CONFIG
    if not path.is_file():
        raise CollapseError(f"DIR: {root} is not an lm run directory (no {CONFIG})")
    config = read_json(path)
    if config.get("format") != FORMAT:
        raise CollapseError(f"DIR: {root} has an unknown run format {config.get('format')!r}")
    return config
