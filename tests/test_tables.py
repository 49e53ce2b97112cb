"""Tidy tables: schemas, round trips, non-finite values, atomic writes."""

import json
import math
import os

import pytest

from collapse.analysis.errors import CollapseError
from collapse.simulate.tables import (
    COMPARE_COLUMNS,
    SIMULATE_COLUMNS,
    THEORY_COLUMNS,
    Table,
    write_text,
)


def test_contract_column_names():
    assert THEORY_COLUMNS == ("setting", "workflow", "iteration", "metric", "value")
    assert SIMULATE_COLUMNS == ("setting", "workflow", "iteration", "metric", "mean", "sem",
                                "replicates")
    assert COMPARE_COLUMNS == ("setting", "workflow", "iteration", "metric", "theory", "mean",
                               "sem", "z", "p_adjusted", "consistent")


def test_csv_round_trip_keeps_infinities_and_blanks(tmp_path):
    table = Table(COMPARE_COLUMNS)
    table.append("gaussian", "replace", 1, "test_nll", math.inf, 3.0, 0.1, None, None, None)
    table.append("gaussian", "accumulate", 2, "mean_sq_error", 0.25, 0.26, 0.01, 1.0, 0.5, True)
    path = tmp_path / "t.csv"
    write_text(path, table.to_csv())
    back = Table.from_csv(path)
    assert back.columns == COMPARE_COLUMNS
    assert back.rows[0][4] == math.inf and back.rows[0][7] is None and back.rows[0][9] is None
    assert back.rows[1] == table.rows[1]
    assert "inf" in path.read_text().splitlines()[1]


def test_json_is_valid_json_with_infinities(tmp_path):
    table = Table(THEORY_COLUMNS, notes=["diverges"])
    table.append("gaussian", "replace", 1, "log_cov_det_ratio", -math.inf)
    text = table.to_json()
    payload = json.loads(text)  # strict JSON: no bare Infinity tokens
    assert "Infinity" not in text
    assert payload["rows"][0]["value"] == "-inf" and payload["notes"] == ["diverges"]
    path = tmp_path / "t.json"
    path.write_text(text)
    assert Table.from_json(path).rows[0][4] == -math.inf


def test_row_width_is_checked():
    with pytest.raises(ValueError):
        Table(THEORY_COLUMNS).append("gaussian", "replace", 1)


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    write_text(path, "old\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # the write fails after the data went out
    with pytest.raises(CollapseError, match="No space left"):
        write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
