"""A published table whose column names are not on the row the catalogue says (a real-data review, 2026-12-03):
a user who deleted the title rows, or a month whose file has two fewer of them, was told "column '3' appears more
than once (rename or remove the duplicate column)". The row the names seem to be on now comes first, with the fix.
A workbook whose first sheet is notes names its sheets and how to pick one.

Oracle: the published Cancer Waiting Times Faster Diagnosis table (examples/), whose names are on row 9; the
variants below move them to known rows."""

from __future__ import annotations

import csv
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


def _workbook(path: Path, notes: int, table_from: int = 1, names: bool = True) -> Path:
    """A 'Notes' sheet of ``notes`` rows, then the published table (its first 40 lines) from row ``table_from``
    of a 'Provider' sheet; ``names=False`` blanks the row that names the columns."""
    rows = list(csv.reader(PUBLISHED.read_text(encoding="utf-8").splitlines()[:40]))
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet("Notes")
        for r in range(notes):
            sheet.write(r, 0, f"Note {r + 1}: about this table, published by NHS England")
        if notes > 12:
            sheet.write(12, 1, "a second column of notes")
        table = book.add_worksheet("Provider")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if names or r != 8:
                    table.write_string(r + table_from - 1, c, value)
    return path


@pytest.mark.parametrize("notes", [2, 9, 30])
def test_notes_sheet_first_names_the_sheet_that_holds_the_table(tmp_path: Path, notes: int) -> None:
    """A notes sheet shorter than header_row (2), one just as long (9) and a longer one with a second column (30):
    the last two gave 'a column has no name ... the column names seem to be on row 13' (the notes') or every named
    column reported missing."""
    proc = _validate(_workbook(tmp_path / "fds.xlsx", notes))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "sheet 'Provider' names them on row 9: add sheet: 'Provider' to the dataset" in proc.stderr
    assert "1 problem found" in proc.stderr and "seem to be on row" not in proc.stderr
    if notes > 2:
        assert ("the first sheet, 'Notes', was read and has none of the columns the dataset names ('ODS CODE (1)', "
                "'TOTAL', 'WITHIN 28 DAYS') on row 9") in proc.stderr


def test_the_other_sheet_on_another_row_gives_both_settings(tmp_path: Path) -> None:
    proc = _validate(_workbook(tmp_path / "fds.xlsx", 30, table_from=4))
    assert "sheet 'Provider' names them on row 12: add sheet: 'Provider' to the dataset, with header_row: 12" in proc.stderr


def test_no_sheet_names_the_columns_lists_the_sheets(tmp_path: Path) -> None:
    """Where no other sheet names every column, no sheet is guessed: the sheets are listed (short notes) or the
    missing columns reported as before (long notes)."""
    proc = _validate(_workbook(tmp_path / "fds.xlsx", 2, names=False))
    assert ("the first sheet, 'Notes', was read; the workbook has sheets 'Notes', 'Provider': add sheet: with the name"
            in proc.stderr)
    proc = _validate(_workbook(tmp_path / "fds2.xlsx", 30, names=False))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "names them on row" not in proc.stderr


def test_the_table_sheet_named_reads_as_the_csv(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "fds.xlsx", 30)
    catalogue = (FDS / "indicators.yaml").read_text(encoding="utf-8").replace(
        "    header_row: 9", "    sheet: Provider\n    header_row: 9")
    (tmp_path / "indicators.yaml").write_text(catalogue.replace("../../reference", str(ROOT / "reference")),
                                              encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "audit_metrics.cli", "validate", str(tmp_path / "indicators.yaml"),
                           "--data", f"fds={path}"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr


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
