"""Tidy result tables shared by every command (theory, simulate, compare, lm report).

A table is one row per (setting, workflow, iteration, metric) with a fixed column
schema.  It renders as an aligned text table (for people), CSV or JSON (for
machines), and is written atomically so that an interrupted run never leaves a
partial file that looks complete.

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
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from collapse.analysis.vocabulary import FORMATS

THEORY_COLUMNS: tuple[str, ...] = ("setting", "workflow", "iteration", "metric", "value")
SIMULATE_COLUMNS: tuple[str, ...] = (
    "setting", "workflow", "iteration", "metric", "mean", "sem", "replicates",
)
COMPARE_COLUMNS: tuple[str, ...] = (
    "setting", "workflow", "iteration", "metric",
    "theory", "mean", "sem", "z", "p_adjusted", "consistent",
)


_INT_COLUMNS = {"iteration", "replicates"}
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

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``.

    A reader never sees a half-written file: either the old content or the new.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp creates mode 0600; give the result the permissions of an ordinary file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def concat(tables: Iterable[Table]) -> Table:
    tables = list(tables)
    if not tables:
        raise ValueError("nothing to concatenate")
    out = Table(tables[0].columns)
    for table in tables:
        out.extend(table)
    return out


def summary_rows(
    setting: str,
    workflow: str,
    metric: str,
    means: Sequence[float],
    sems: Sequence[float],
    replicates: int,
) -> list[tuple]:
    """Rows of a simulate-schema table for one (workflow, metric) series (t = 1, 2, ...)."""
    return [
        (setting, workflow, t + 1, metric, float(m), float(s), int(replicates))
        for t, (m, s) in enumerate(zip(means, sems))
    ]
