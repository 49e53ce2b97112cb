"""Tidy result tables shared by every command (theory, simulate, compare, lm report).

A table is one row per (setting, workflow, iteration, metric) with a fixed column
schema.  It renders as an aligned text table (for people), CSV or JSON (for
machines), and is written atomically so that an interrupted run never leaves a
partial file that looks complete.

Writing never destroys what is at the path (:func:`write_bytes`): a new path or an
existing regular file is written atomically (a temporary file in the same directory,
flushed, then renamed over the target, so a reader sees the old content or the new,
never half of it); a symbolic link is written *through* (its target gets the atomic
write, the link stays a link); a special file (``/dev/stdout``, a FIFO, a terminal, a
device) is written in place, because renaming over it would replace it by a regular
file; a directory, a path under a missing or unwritable directory, or a plot whose
extension matplotlib cannot write is refused with one line before any computation
(:func:`check_output`, :func:`check_plot`).

Non-finite numbers are written as ``inf``, ``-inf`` or ``nan`` in CSV and as the
strings ``"inf"``, ``"-inf"`` in JSON (JSON has no infinities); blanks mean "not
applicable" (for example the z-score of a row that was not tested).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import FORMATS

THEORY_COLUMNS: tuple[str, ...] = ("setting", "workflow", "iteration", "metric", "value")
SIMULATE_COLUMNS: tuple[str, ...] = (
    "setting", "workflow", "iteration", "metric", "mean", "sem", "replicates",
)
COMPARE_COLUMNS: tuple[str, ...] = (
    "setting", "workflow", "iteration", "metric",
    "theory", "mean", "sem", "z", "p_adjusted", "consistent",
)
#: ``collapse value`` (the value of synthetic data): exact theory only ...
VALUE_THEORY_COLUMNS: tuple[str, ...] = (
    "setting", "real_size", "synthetic_size", "metric", "value",
)
#: ... and with Monte Carlo (``--replicates``); ``theory`` is blank where there is none.
VALUE_COMPARE_COLUMNS: tuple[str, ...] = (
    "setting", "real_size", "synthetic_size", "metric",
    "theory", "mean", "sem", "z", "p_adjusted", "consistent",
)


_INT_COLUMNS = {"iteration", "replicates", "real_size", "synthetic_size"}
_BOOL_COLUMNS = {"consistent"}
_STR_COLUMNS = {"setting", "workflow", "metric"}


def _format_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _parse_cell(column: str, text: str) -> Any:
    if column in _STR_COLUMNS:
        return text
    if text == "":
        return None
    if column in _BOOL_COLUMNS:
        return text.lower() == "true"
    if column in _INT_COLUMNS:
        return int(text)
    return float(text)


@dataclass
class Table:
    """A tidy table: ``columns`` names, ``rows`` of values, free-text ``notes``.

    Notes carry what a bare number cannot (for example "test_nll diverges for
    n <= d + 2"); they appear under the text table and in JSON, and on standard
    error when CSV goes to standard output.
    """

    columns: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def append(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values for {len(self.columns)} columns")
        self.rows.append(tuple(values))

    def extend(self, other: "Table") -> None:
        if other.columns != self.columns:
            raise ValueError("cannot concatenate tables with different columns")
        self.rows.extend(other.rows)
        for note in other.notes:
            if note not in self.notes:
                self.notes.append(note)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def select(self, **equals: Any) -> "Table":
        """Rows whose columns equal the given values (e.g. ``select(metric="mise")``)."""
        idx = {self.columns.index(k): v for k, v in equals.items()}
        rows = [r for r in self.rows if all(r[i] == v for i, v in idx.items())]
        return Table(self.columns, rows, list(self.notes))

    # -- rendering -----------------------------------------------------------------
    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(
                [v if isinstance(v, str) else _format_number(v) for v in row]
            )
        return buffer.getvalue()

    def to_json(self) -> str:
        payload = {
            "columns": list(self.columns),
            "rows": [
                {c: _json_value(v) for c, v in zip(self.columns, row)} for row in self.rows
            ],
            "notes": list(self.notes),
        }
        return json.dumps(payload, indent=1) + "\n"

    def to_text(self, precision: int = 6) -> str:
        def cell(v: Any) -> str:
            if isinstance(v, str):
                return v
            if v is None:
                return "-"
            if isinstance(v, bool):
                return "yes" if v else "NO"
            if isinstance(v, int):
                return str(v)
            v = float(v)
            if not math.isfinite(v):
                return _format_number(v)
            return f"{v:.{precision}g}"

        body = [[cell(v) for v in row] for row in self.rows]
        widths = [len(c) for c in self.columns]
        for row in body:
            widths = [max(w, len(c)) for w, c in zip(widths, row)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in body)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines) + "\n"

    def render(self, fmt: str) -> str:
        if fmt == "csv":
            return self.to_csv()
        if fmt == "json":
            return self.to_json()
        if fmt == "table":
            return self.to_text()
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")

    # -- reading -------------------------------------------------------------------
    @classmethod
    def from_csv(cls, source: str | Path | io.TextIOBase) -> "Table":
        if isinstance(source, (str, Path)):
            with open(source, newline="") as handle:
                return cls.from_csv(handle)
        reader = csv.reader(source)
        columns = tuple(next(reader))
        rows = [tuple(_parse_cell(c, t) for c, t in zip(columns, r)) for r in reader if r]
        return cls(columns, rows)

    @classmethod
    def from_json(cls, source: str | Path) -> "Table":
        payload = json.loads(Path(source).read_text())
        columns = tuple(payload["columns"])

        def back(c: str, v: Any) -> Any:
            if isinstance(v, str) and c not in _STR_COLUMNS:
                return float(v)
            return v

        rows = [tuple(back(c, rec.get(c)) for c in columns) for rec in payload["rows"]]
        return cls(columns, rows, list(payload.get("notes", [])))


# --------------------------------------------------------------------------- writing

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


# --------------------------------------------------------------------------- row names


_QUANTILE_SUFFIX = "_q"


def quantile_metric(name: str) -> tuple[str, float] | None:
    """``(metric, probability)`` for a quantile row's name ``<metric>_q<PP>``, else None.

    Examples
    --------
    >>> quantile_metric("log_cov_det_ratio_q25")
    ('log_cov_det_ratio', 0.25)
    >>> quantile_metric("log_cov_det_ratio") is None, quantile_metric("x_q0") is None
    (True, True)
    """
    base, sep, digits = name.rpartition(_QUANTILE_SUFFIX)
    if not sep or not base or not digits.isdigit() or len(digits) != 2 or digits == "00":
        return None
    return base, int(digits) / 100.0


def quantile_name(metric: str, probability: float) -> str:
    """The row name of the ``probability`` quantile of ``metric`` (two percent digits).

    Examples
    --------
    >>> quantile_name("log_cov_det_ratio", 0.5)
    'log_cov_det_ratio_q50'
    """
    percent = round(100 * probability)
    if not 1 <= percent <= 99 or abs(percent - 100 * probability) > 1e-9:
        raise ValueError(f"probability must be a whole percentage in (0, 1) (got {probability})")
    return f"{metric}{_QUANTILE_SUFFIX}{percent:02d}"
