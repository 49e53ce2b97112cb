"""The on-disk layout of a run directory: configuration, verified iterations, lock.

::

    DIR/config.json                         settings (must match to resume) + extent
    DIR/.lock                               held (flock) by the process writing DIR
    DIR/real/seed-<s>.jsonl                 the real training set of replicate s
    DIR/<workflow>/seed-<s>/iter-<ttt>/
        training_set.json                   D_t as (source, index) references
        samples.jsonl                       the n texts sampled from model t
        metrics.json                        metrics of model t (written last)

Every file is written to a temporary name and moved into place with
``os.replace``.  ``metrics.json`` is the commit record of an iteration and is
written last: besides the metrics it records the SHA-256 and size of the other
two files and the SHA-256 of the texts model ``t`` was trained on.  An iteration
counts as done only when :func:`check_iteration` finds a well-formed record for
exactly this workflow, seed and iteration whose files match it; anything else
(no record yet, a garbage, empty or ``{}`` record, a samples file that lost lines,
was emptied or swapped) is recomputed, so a killed run loses at most the
iteration in progress and damaged work is never trusted.

The *settings* (everything that changes results: preset values, ``--n``,
``--n-eval``, the fine-tuning budget, data set and its fingerprint, model, seed,
torch threads, base-model cache key) must equal those of the directory; the
*extent* (workflows, iterations, seeds) may grow, and only the new work is
computed.  One process at a time may write a directory (:func:`locked`).

Workflow folders are named by :func:`workflow_dir`: a preset by its name, any other
rule by its canonical spec with ``=``, ``,`` and ``:`` spelled ``_``, ``+`` and
``@`` (characters the spec grammar never uses, so the name is unambiguous and safe
on every file system).

Examples
--------
>>> workflow_dir("accumulate")
'accumulate'
>>> workflow_dir("real=original,synthetic=window:3,size=n")
'real_original+synthetic_window@3+size_n'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from collapse.analysis.errors import CollapseError
from collapse.lm.metrics import TEST_NLL, canonical_metrics
from collapse.simulate.tables import write_text

FORMAT = "collapse-lm-run/2"
#: Formats :mod:`collapse.lm.report` can read; only :data:`FORMAT` can be resumed
#: (format 1 recorded no checksums, so its iterations cannot be verified).
READABLE_FORMATS = ("collapse-lm-run/1", FORMAT)
CONFIG = "config.json"
METRICS = "metrics.json"
SAMPLES = "samples.jsonl"
TRAINING_SET = "training_set.json"
LOCK = ".lock"

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
    "threads": "--threads",
    "budget": "--budget",
    "preset.finetune_lr": "--lr",
    "base_key": "base model (its cache key: preset, corpus or library versions changed)",
    "format": "run-directory format",
}


# --------------------------------------------------------------------------- files

def _write(path: Path, text: str) -> None:
    # a run directory grows its own folders (seed-*/iter-*) as iterations finish
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text, "--output")


def write_json(path: Path, payload: Any) -> None:
    _write(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (``ValueError`` for bytes that are not UTF-8 JSON)."""
    return json.loads(Path(path).read_bytes().decode("utf-8"))


def jsonl_text(records: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    _write(path, jsonl_text(records))


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (``ValueError`` for a line that is not JSON).

    Records are separated by newlines (U+000A) only: ``str.splitlines`` would also split at U+2028,
    U+0085 or U+001C, which ``json.dumps(..., ensure_ascii=False)`` leaves raw inside a
    string (and a sampled text can contain them).
    """
    text = Path(path).read_bytes().decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def file_record(path: Path) -> dict:
    """``{"sha256": ..., "bytes": ...}`` of the file at ``path``."""
    data = Path(path).read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def texts_sha256(texts: Iterable[str]) -> str:
    """SHA-256 of a list of texts (JSON-encoded, so boundaries count)."""
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- layout

def workflow_dir(label: str) -> str:
    """The folder name of workflow ``label`` (see the module docstring)."""
    return label.replace("=", "_").replace(",", "+").replace(":", "@")


def iteration_dir(root: Path, workflow: str, seed: int, t: int) -> Path:
    return Path(root) / workflow_dir(workflow) / f"seed-{seed}" / f"iter-{t:03d}"


def real_path(root: Path, seed: int) -> Path:
    return Path(root) / "real" / f"seed-{seed}.jsonl"


# --------------------------------------------------------------------------- iterations

def _record_problem(record: Any, workflow: str, seed: int, t: int, verified: bool) -> str | None:
    """Why ``record`` is not the commit record of ``(workflow, seed, t)``, or ``None``."""
    if not isinstance(record, dict) or not record:
        return "holds no iteration record"
    if record.get("workflow") != workflow or record.get("seed") != seed or record.get("iteration") != t:
        return (f"belongs to {record.get('workflow')!r} seed {record.get('seed')!r} iteration "
                f"{record.get('iteration')!r}")
    metrics = record.get("metrics")
    value = metrics.get(TEST_NLL, metrics.get("heldout_ce_nats_per_token")) if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"has no finite {TEST_NLL}"
    if not verified:
        return None
    files = record.get("files")
    training = record.get("training_set")
    if not isinstance(files, dict) or not isinstance(training, dict) or not isinstance(training.get("sha256"), str):
        return "has no checksums"
    for name in (SAMPLES, TRAINING_SET):
        entry = files.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            return f"has no checksum of {name}"
    return None


def check_iteration(directory: Path, workflow: str, seed: int, t: int,
                    verified: bool = True) -> tuple[dict | None, str | None]:
    """``(record, None)`` for a done iteration, else ``(None, why)``.

    ``why`` is ``None`` when there is simply no ``metrics.json`` (never started or
    interrupted: the normal case) and a phrase naming the damaged file otherwise.
    ``verified=False`` (format-1 directories) checks the record but not the files.
    The record's metric names are the current ones (:func:`canonical_metrics`).
    """
    directory = Path(directory)
    path = directory / METRICS
    if not path.is_file():
        return None, None
    try:
        record = read_json(path)
    except (ValueError, OSError):
        return None, f"{path} is not readable JSON"
    problem = _record_problem(record, workflow, seed, t, verified)
    if problem:
        return None, f"{path} {problem}"
    if verified:
        for name in (SAMPLES, TRAINING_SET):
            file = directory / name
            if not file.is_file():
                return None, f"{file} is missing"
            if file_record(file)["sha256"] != record["files"][name]["sha256"]:
                return None, f"{file} does not match the checksum in {METRICS}"
    record = dict(record, metrics=canonical_metrics(record["metrics"]))
    return record, None


def is_complete(directory: Path, workflow: str | None = None, seed: int | None = None,
                t: int | None = None) -> bool:
    """Whether ``directory`` holds a done, undamaged iteration (:func:`check_iteration`).

    Without ``workflow``, ``seed`` and ``t`` they are read from the path
    (``.../<workflow>/seed-<s>/iter-<ttt>``), for workflows whose folder is their label.
    """
    directory = Path(directory)
    if workflow is None or seed is None or t is None:
        try:
            t = int(directory.name.removeprefix("iter-"))
            seed = int(directory.parent.name.removeprefix("seed-"))
        except ValueError:
            return False
        workflow = directory.parent.parent.name
    return check_iteration(directory, workflow, seed, t)[0] is not None


# --------------------------------------------------------------------------- configuration

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
    priority = ["format", "preset.name", "n", "n_eval", "dataset", "text_field", "model", "seed",
                "threads", "budget", "preset.finetune_lr"]
    keys = priority + sorted(k for k in set(a) | set(b) if k not in priority)
    for key in keys:
        if a.get(key) != b.get(key):
            return key
    return None


def _config_problem(config: Any) -> str | None:
    """What is wrong with the structure of a ``config.json`` value, or ``None``."""
    if not isinstance(config, dict):
        return "it is not a JSON object"
    if config.get("format") not in READABLE_FORMATS:
        return f"unknown format {config.get('format')!r}"
    if not isinstance(config.get("settings"), dict):
        return "settings is not an object"
    extent = config.get("extent")
    if not isinstance(extent, dict):
        return "extent is not an object"
    workflows, iterations, seeds = extent.get("workflows"), extent.get("iterations"), extent.get("seeds")
    if not isinstance(workflows, list) or not all(isinstance(w, str) and w for w in workflows):
        return "extent.workflows is not a list of names"
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        return "extent.iterations is not an integer >= 0"
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in seeds):
        return "extent.seeds is not a list of integers >= 0"
    if not isinstance(config.get("provenance"), (dict, type(None))):
        return "provenance is not an object"
    return None


def read_config(root: Path, option: str = "DIR") -> dict:
    """The configuration of run directory ``root``; :class:`CollapseError` naming ``option``
    if it is not one or its ``config.json`` is damaged."""
    root = Path(root)
    path = root / CONFIG
    if not path.is_file():
        raise CollapseError(f"{option}: {root} is not an lm run directory (no {CONFIG})")
    try:
        config = read_json(path)
    except (ValueError, OSError):
        config = None
        problem = "it is not readable UTF-8 JSON"
    else:
        problem = _config_problem(config)
    if isinstance(config, dict) and config.get("format") == "collapse-lm-value/1":
        raise CollapseError(f"{option}: {root} is a `collapse lm value` directory, not an lm run directory")
    if problem:
        raise CollapseError(f"{option}: {path} is damaged ({problem}); "
                            "use another directory or restore the file")
    return config


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
        old = read_config(root, "--output")
        if old["format"] != FORMAT:
            raise CollapseError(
                f"--output: {root} was written by an earlier version of collapse lm "
                f"({old['format']}) whose iterations carry no checksums; it can be reported "
                "but not resumed; use another --output directory")
        old_settings = old["settings"]
        key = first_difference(old_settings, settings)
        if key is not None:
            there, now = _flatten(old_settings).get(key), _flatten(settings).get(key)
            raise CollapseError(
                f"--output: {root} was made with different settings: {_parameter_name(key)} is "
                f"{json.dumps(there)} there but {json.dumps(now)} now; "
                "use another --output directory or the same settings"
            )
        if extent is None:
            return old
        old_extent = old["extent"]
        workflows = list(old_extent["workflows"])
        workflows += [w for w in extent["workflows"] if w not in workflows]
        extent = {
            "workflows": workflows,
            "iterations": max(old_extent["iterations"], extent["iterations"]),
            "seeds": sorted(set(old_extent["seeds"]) | set(extent["seeds"])),
        }
        provenance = old.get("provenance") or provenance
    elif root.exists() and (not root.is_dir() or any(p.name != LOCK for p in root.iterdir())):
        raise CollapseError(
            f"--output: {root} exists and is not an lm run directory (no {CONFIG}); "
            "choose a new or empty directory"
        )
    return {"format": FORMAT, "settings": settings, "extent": extent, "provenance": provenance}


# --------------------------------------------------------------------------- lock

def check_directory(path: str | os.PathLike, option: str = "--output") -> Path:
    """``path`` as a :class:`~pathlib.Path`; :class:`CollapseError` for an empty path (which
    :class:`~pathlib.Path` would silently turn into the current directory)."""
    if os.fspath(path) == "":
        raise CollapseError(f"{option}: the path is empty; give a run directory")
    return Path(path)


@contextlib.contextmanager
def locked(root: Path, option: str = "--output") -> Iterator[Path]:
    """Hold ``root/.lock`` (an exclusive ``flock``) while writing ``root``.

    Creates ``root`` if needed; a second process asking for the same directory gets a
    :class:`CollapseError` naming the holder's process id.  The kernel drops the lock
    when its holder exits, however it exits, so a killed run never leaves a stale
    lock.  A directory this call created is removed again if nothing but the lock
    was written into it (a run refused before its first write leaves no trace).
    """
    import fcntl

    root = check_directory(root, option)
    if root.exists() and not root.is_dir():
        raise CollapseError(f"{option}: {root} exists and is not a directory")
    created = not root.exists()
    acquired = False
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / LOCK, "a+", encoding="utf-8")
    except OSError as exc:
        raise CollapseError(f"{option}: cannot create {root}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise CollapseError(
                f"{option}: {root} is in use by another collapse lm process (pid {holder}); "
                "wait for it to finish, or choose another directory") from None
        acquired = True
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield root
    finally:
        try:
            if acquired and created and [p.name for p in root.iterdir()] == [LOCK]:
                os.unlink(root / LOCK)
                root.rmdir()
        except OSError:
            pass
        handle.close()
