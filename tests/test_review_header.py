"""A published table whose column names are not on the row the catalogue says (a real-data review, 2026-12-03):
a user who deleted the title rows, or a month whose file has two fewer of them, was told "column '3' appears more
than once (rename or remove the duplicate column)". The row the names seem to be on now comes first, with the fix.
A workbook whose first sheet is notes names its sheets and how to pick one.

Oracle: the published Cancer Waiting Times Faster Diagnosis table (examples/), whose names are on row 9; the
variants below move them to known rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xlsxwriter

ROOT = Path(__file__).resolve().parents[1]
FDS = ROOT / "examples" / "cwt_faster_diagnosis"
PUBLISHED = FDS / "28-day-faster-diagnosis-provider-2023-10.csv"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_metrics.cli", "validate", str(FDS / "indicators.yaml"),
                           "--data", f"fds={path}"], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize(("dropped", "names_on"), [(8, 1), (2, 7)])
def test_names_on_another_row_are_said_with_the_fix(tmp_path: Path, dropped: int, names_on: int) -> None:
    lines = PUBLISHED.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "fds.csv"
    path.write_text("".join(lines[dropped:]), encoding="utf-8")
    proc = _validate(path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (f"the column names seem to be on row {names_on}, but the dataset reads them from row 9 (header_row)"
            in proc.stderr)
    assert f"set header_row: {names_on} on the dataset" in proc.stderr
    assert "rename or remove the duplicate column" not in proc.stderr


def test_a_real_duplicate_name_on_the_right_row_keeps_its_message(tmp_path: Path) -> None:
    lines = PUBLISHED.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[8] = lines[8].replace('"ACCOUNTABLE PROVIDER"', '"TOTAL"', 1)  # row 9 names TOTAL twice
    path = tmp_path / "fds.csv"
    path.write_text("".join(lines), encoding="utf-8")
    proc = _validate(path)
    assert proc.returncode == 1
    assert "column 'TOTAL' appears more than once" in proc.stderr and "seem to be on row" not in proc.stderr


def test_notes_sheet_first_names_the_sheets(tmp_path: Path) -> None:
    path = tmp_path / "fds.xlsx"
    rows = [line.split(",") for line in PUBLISHED.read_text(encoding="utf-8").splitlines()[:40]]
    with xlsxwriter.Workbook(str(path)) as book:
        notes = book.add_worksheet("Notes")
        notes.write(0, 0, "About this table")
        notes.write(1, 0, "Published by NHS England")
        table = book.add_worksheet("Provider")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.write_string(r, c, value.strip('"'))
    proc = _validate(path)
    assert proc.returncode == 1
    assert ("the first sheet, 'Notes', was read; the workbook has sheets 'Notes', 'Provider': add sheet: with the name"
            in proc.stderr)


def test_a_table_wide_by_period_is_named_as_such(tmp_path: Path) -> None:
    """The SHMI series (published long: one row per publication and trust) turned wide, one OBSERVED and one EXPECTED
    column per publication: the hint said "did you mean 'OBSERVED 2014-04'?", which would use one month only."""
    import polars as pl

    series = ROOT / "examples" / "shmi_series"
    long = pl.read_csv(series / "shmi_2011-10_to_2014-04.csv", infer_schema=False)
    long = long.with_columns(pl.col("DATE").str.slice(0, 7))
    wide = long.pivot(on="DATE", index=["PROVIDER", "PROVIDER NAME"], values=["OBSERVED", "EXPECTED"],
                      separator=" ")
    path = tmp_path / "wide.csv"
    wide.write_csv(path)
    months = sorted(long["DATE"].unique().to_list())
    proc = subprocess.run([sys.executable, "-m", "audit_metrics.cli", "validate", str(series / "indicators.yaml"),
                           "--data", f"shmi={path}"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    for column in ("OBSERVED", "EXPECTED"):
        assert (f"the table has one {column!r} column for each period ('{column} {months[0]}' ... "
                f"'{column} {months[-1]}', {len(months)} columns): it is wide by period") in proc.stderr
    assert "did you mean" not in proc.stderr
