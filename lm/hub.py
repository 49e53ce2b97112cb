"""Fail fast, with one line, when a hub name is used and the hub cannot be reached.

``transformers`` and ``datasets`` retry network calls for a long time when a
machine is offline.  Before any hub download we check, with a short TCP
connect, that the endpoint (``HF_ENDPOINT``, default ``https://huggingface.co``)
answers; honouring ``HF_HUB_OFFLINE=1``.  A failure is a
:class:`~collapse.simulate.errors.CollapseError` that says how to pass a local path instead.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from collapse.analysis.errors import CollapseError

CONNECT_TIMEOUT_S = 3.0
#: What to do instead of a hub model name when no hub can be reached.
MODEL_ALTERNATIVE = "pass a local directory written by save_pretrained instead, e.g. --model ./my-model"


def hub_offline_requested() -> bool:
    """``True`` when ``HF_HUB_OFFLINE`` is set to a true value."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds."""
    if hub_offline_requested():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(parameter: str, name: str, alternative: str) -> None:
    """Raise a one-line :class:`CollapseError` unless the hub can be reached."""
    if not hub_reachable():
        raise CollapseError(
            f"{parameter}: cannot reach the Hugging Face hub to fetch {name!r} "
            f"(offline, blocked or HF_HUB_OFFLINE set); {alternative}"
        )
