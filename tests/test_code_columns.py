"""Unit codes are codes, not numbers (issue #9 item 10): leading zeros are kept where the file keeps them,
and where a file has dropped them (Excel, Parquet) the run says so and how to fix it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

UNITS = "code,name\n001,Alpha\n002,Beta\n010,Gamma\n"
ROWS = [("001", 5, 50), ("002", 8, 60), ("010", 20, 70)]


def _project(tmp: Path, data_file: str) -> Path:
    (tmp / "units.csv").write_text(UNITS)
    catalogue = {
        "version": 1,
        "datasets": {"agg": {"path": data_file, "aggregate": True, "unit_column": "trust", "period_column": "period"}},
        "units": {"file": "units.csv", "code": "code", "name": "name"},
        "indicators": [{"id": "p", "title": "P", "dataset": "agg", "numerator": "num", "denominator": "den",
                        "statistic": "proportion", "better": "higher"}],
    }
    path = tmp / "catalogue.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    return path


def test_csv_codes_with_leading_zeros_are_matched(tmp_path: Path) -> None:
    """001/002/010 in a CSV used to be read as the numbers 1, 2, 10: every row 'unknown unit code', 0 of 3
    units assessed, exit 0."""
    lines = ["trust,period,num,den", *[f"{c},2023,{n},{d}" for c, n, d in ROWS]]
    (tmp_path / "agg.csv").write_text("\n".join(lines) + "\n")
    run = run_audit(load_catalogue(_project(tmp_path, "agg.csv")))
    assert run.datasets["agg"].rows_used == 3
    trusts = run.results["p"].table.filter(pl.col("level") == "trust").sort("unit_code")
    assert trusts["unit_code"].to_list() == ["001", "002", "010"]
    assert trusts["observed"].to_list() == [5, 8, 20]
    assert trusts["period"].to_list() == ["2023"] * 3  # a period column of digits stays a label too


@pytest.mark.parametrize("suffix", ["parquet", "xlsx"])
def test_codes_stored_as_numbers_are_named_with_the_fix(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame({"trust": [int(c) for c, _, _ in ROWS], "period": ["2023"] * 3,
                          "num": [n for _, n, _ in ROWS], "den": [d for _, _, d in ROWS]})
    path = tmp_path / f"agg.{suffix}"
    frame.write_parquet(path) if suffix == "parquet" else frame.write_excel(path)
    run = run_audit(load_catalogue(_project(tmp_path, path.name)))
    accounting = run.datasets["agg"]
    assert accounting.rows_used == 0
    notes = " ".join(accounting.notes)
    assert "lost their leading zeros (1 for 001, 10 for 010, 2 for 002)" in notes
    assert "store the column as text" in notes
