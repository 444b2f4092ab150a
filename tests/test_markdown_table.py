"""ui.text.markdown_table: a light table whose cells are text, never Markdown or HTML (#15 item 7, #12 build 7).

Oracle: a CommonMark + GFM renderer would be the full check; here the table's structure is checked directly
(one row per record, one cell per column, cells escaped by ui.text.md, which tests/test_hardening.py checks
through Streamlit on every view)."""

from __future__ import annotations

import polars as pl

from audit_metrics.ui.text import markdown_table, md


def _cells(line: str) -> list[str]:
    """Split a table line on its unescaped pipes."""
    out, cur, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
        escaped = ch == "\\" and not escaped
    return [*out, cur.strip()]


def test_hostile_cells_stay_text_and_the_table_keeps_its_shape() -> None:
    hostile = ["A | B", "[x](http://evil.example)", "<img src=x onerror=alert(1)>", "two\nlines", "**bold** $x$"]
    frame = pl.DataFrame({"Indicator": hostile, "Trusts assessed": [1, 2, 3, 4, 5],
                          "By chance (99.8%)": [0.1, None, 0.3, 0.4, 0.5]})
    lines = markdown_table(frame).splitlines()
    assert len(lines) == 2 + len(hostile)  # header, alignment, one line per row (the line break is a space)
    assert lines[1] == "|---|---:|---:|"  # numbers right-aligned, text left
    for line, name in zip(lines[2:], hostile, strict=True):
        cells = _cells(line)
        assert len(cells) == 3 and cells[0] == md(name)
    text = markdown_table(frame)
    assert "<img" not in text.replace("\\<img", "") and "](" not in text.replace("\\](", "")  # only escaped
    assert _cells(lines[3])[2] == ""  # a missing number is an empty cell, not "None"


def test_rows_as_dicts_and_an_empty_table() -> None:
    assert markdown_table([{"a": "x", "b": 1}], ["a", "b"]).splitlines() == ["| a | b |", "|---|---:|", "| x | 1 |"]
    assert markdown_table(pl.DataFrame({"a": []}, schema={"a": pl.String})).splitlines() == ["| a |", "|---:|"]
