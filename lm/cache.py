"""Where base models are cached and what keys them (no torch import here).

An entry ``<cache>/base-<key>/`` holds a tokenizer and a pretrained model saved
with ``save_pretrained``; ``key`` is the first 16 hex digits of the SHA-256 of
the canonical JSON of :func:`base_settings`: everything that determines them
(preset fields, corpus fingerprint, pretraining indices, split seed, the
procedure's format number and the torch and transformers versions).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Sequence

from collapse.analysis.errors import CollapseError
from collapse.lm.presets import Preset

CACHE_ENV = "COLLAPSE_LM_CACHE"
BASE_FORMAT = 2  # bump whenever the tokenizer or pretraining procedure changes


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$COLLAPSE_LM_CACHE``, else ``$XDG_CACHE_HOME/collapse-lm`` (``~/.cache``)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "collapse-lm"


def check_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """The resolved cache directory, created if missing; :class:`CollapseError` naming
    ``--cache-dir`` when it is a file or cannot be written (checked before any training)."""
    path = resolve_cache_dir(cache_dir)
    if path.exists() and not path.is_dir():
        raise CollapseError(f"--cache-dir: {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CollapseError(f"--cache-dir: cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CollapseError(f"--cache-dir: {path} is not writable")
    return path


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def base_settings(preset: Preset, corpus_fingerprint: str, pretrain_indices: Sequence[int], split_seed: int) -> dict:
    """Everything that determines the default tokenizer and pretrained base model."""
    indices = hashlib.sha256(json.dumps(list(pretrain_indices)).encode()).hexdigest()
    return {
        "format": BASE_FORMAT,
        "tokenizer": {"kind": "byte-level-bpe", "vocab_size": preset.vocab_size},
        "model": {
            "kind": "gpt2", "n_layer": preset.n_layer, "n_embd": preset.n_embd,
            "n_head": preset.n_head, "context": preset.context, "dropout": preset.dropout,
        },
        "pretrain": {
            "epochs": preset.pretrain_epochs, "lr": preset.pretrain_lr,
            "batch_size": preset.batch_size, "weight_decay": preset.weight_decay,
            "documents": len(pretrain_indices), "indices_sha256": indices,
        },
        "corpus_sha256": corpus_fingerprint,
        "split_seed": split_seed,
        "versions": {"torch": _version("torch"), "transformers": _version("transformers"),
                     "tokenizers": _version("tokenizers")},
    }


def settings_key(settings: dict) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``settings``."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
