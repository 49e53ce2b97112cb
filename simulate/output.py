"""Writing results to a path without ever destroying what is there.

* A new path, or an existing regular file, is written atomically: a temporary file
  in the same directory, flushed to disk, then renamed over the target, so a reader
  sees the old content or the new, never half of it, and an interrupted write
  leaves the old file intact.
* A symbolic link is written *through*: its target gets the atomic write and the
  link itself stays a link.
* A special file (``/dev/stdout``, a FIFO, a terminal, a device) is written
  directly, because renaming over it would replace it by a regular file.
* A directory, a path under a missing or unwritable directory, or a plot whose
  extension matplotlib cannot write is refused with one line *before* any
  computation (:func:`check_output`, :func:`check_plot`).

Errors are :class:`~collapse.analysis.errors.CollapseError` naming the option.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
>>> _ = write_text(path, "a,b\\n")
>>> path.read_text()
'a,b\\n'
>>> check_plot("curves.jpeg")
Traceback (most recent call last):
...
collapse.analysis.errors.CollapseError: plot: cannot write 'curves.jpeg': the file name must end in .png, .pdf or .svg
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from collapse.analysis.errors import CollapseError

#: Figure formats written by ``plot`` (from the file name's extension).
PLOT_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")


def _target(path: Path) -> Path:
    """Where an atomic write of ``path`` goes: the final target of a symlink, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _is_special(path: Path) -> bool:
    """A file written in place: a device, FIFO or socket (links followed), or any path
    under ``/dev`` or ``/proc`` (``/dev/stdout`` may point at a pipe or a terminal)."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(path: str | os.PathLike, option: str = "output") -> Path:
    """Refuse (CollapseError naming ``option``) a path that cannot be written.

    Checks, without writing anything: the path is not empty and not a directory;
    a special file is writable; otherwise its directory exists and is writable.
    Returns the path.
    """
    text = os.fspath(path)
    if text == "":
        raise CollapseError(f"{option}: the path is empty")
    path = Path(text)
    if path.is_dir():
        raise CollapseError(f"{option}: cannot write {text!r}: it is a directory")
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise CollapseError(f"{option}: cannot write {text!r}: permission denied")
        return path
    target = _target(path)
    if target.exists() and not os.access(target, os.W_OK):
        raise CollapseError(f"{option}: cannot write {text!r}: permission denied")
    folder = target.parent
    if not folder.exists():
        raise CollapseError(f"{option}: cannot write {text!r}: directory {str(folder)!r} "
                            f"does not exist")
    if not folder.is_dir():
        raise CollapseError(f"{option}: cannot write {text!r}: {str(folder)!r} is not a "
                            f"directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CollapseError(f"{option}: cannot write {text!r}: directory {str(folder)!r} is "
                            f"not writable")
    return path


def check_plot(path: str | os.PathLike, option: str = "plot") -> Path:
    """:func:`check_output` plus a figure format from the extension (png, pdf, svg)."""
    suffix = Path(os.fspath(path)).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise CollapseError(f"{option}: cannot write {os.fspath(path)!r}: the file name must "
                            f"end in .png, .pdf or .svg")
    return check_output(path, option)


def write_bytes(path: str | os.PathLike, data: bytes, option: str = "output") -> Path:
    """Write ``data`` to ``path`` as the module docstring says; returns the path."""
    path = check_output(path, option)
    target = _target(path)
    try:
        if _is_special(path):
            with open(path, "wb") as handle:
                handle.write(data)
                handle.flush()
            return path
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp creates mode 0600; give the result the permissions of a new file
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    except OSError as exc:
        raise CollapseError(f"{option}: cannot write {os.fspath(path)!r}: "
                            f"{exc.strerror or exc}") from None
    return path


def write_text(path: str | os.PathLike, text: str, option: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path``; see :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"), option)
