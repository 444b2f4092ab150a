"""Exports for QI leads: CSV and Excel with small-number suppression and a methods sheet.

Every CSV and XLSX the tool writes (the dashboard's downloads and ``audit-metrics run``) goes through
``to_csv_bytes`` / ``write_workbook`` here, so that

- text cells that a spreadsheet would run as a formula (starting ``= + - @`` TAB or CR) are
  neutralised by a leading single quote (OWASP, "CSV Injection"), whatever the data say;
- Excel files are written cell by cell with xlsxwriter's string-to-formula and string-to-URL
  conversion switched off, so a trust name can never become a live formula or hyperlink;
- missing and non-finite numbers (null, NaN, ±inf) are empty cells, never ``NaN`` or ``#NUM!``.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from audit_metrics.catalogue import SuppressionSpec
from audit_metrics.pipeline import CONTRACT_COLUMNS

__all__ = [
    "FORMULA_TRIGGERS",
    "methods_frame",
    "neutralise_formulas",
    "neutralise_text",
    "suppress",
    "to_csv_bytes",
    "to_excel_bytes",
    "write_workbook",
]

COUNT_COLUMNS = ("observed", "denominator")
# OWASP CSV-injection rule: a cell starting with one of these is run as a formula by Excel,
# LibreOffice or Google Sheets (TAB and CR because some parsers strip them before the check).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_PATTERN = "^[" + re.escape("".join(FORMULA_TRIGGERS)) + "]"
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                    "nan_inf_to_errors": False}


def suppress(frame: pl.DataFrame, rule: SuppressionSpec) -> pl.DataFrame:
    """Disclosure control: counts in [min_count, max_count] become the symbol (text columns).

    Where a count is suppressed, the values derived from it (value, adjusted value, expected) are
    also blanked on that row so the count cannot be recovered by arithmetic.
    """
    present = [c for c in COUNT_COLUMNS if c in frame.columns]
    small = pl.any_horizontal([pl.col(c).is_between(rule.min_count, rule.max_count) for c in present])
    out = frame.with_columns(small.fill_null(False).alias("_small"))
    derived = [c for c in ("value", "adjusted_value", "crude_value", "expected") if c in frame.columns]
    out = out.with_columns(
        *[pl.when(pl.col(c).is_between(rule.min_count, rule.max_count)).then(pl.lit(rule.symbol))
          .otherwise(pl.col(c).round(0).cast(pl.Int64).cast(pl.String)).alias(c) for c in present],
        *[pl.when(pl.col("_small")).then(None).otherwise(pl.col(c)).alias(c) for c in derived],
    )
    return out.with_columns(pl.when(pl.col("_small")).then(pl.lit(True)).otherwise(pl.lit(False))
                            .alias("suppressed")).drop("_small")


def neutralise_text(text: str) -> str:
    """``'=1+1`` for ``=1+1``: a leading quote makes a spreadsheet show the text, not run it."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell (and column name) that a spreadsheet would run as a formula, quoted.

    Only text columns are touched: numbers (e.g. a negative z) are written as numbers, which no
    spreadsheet runs. Enum/categorical columns are turned into text first.
    """
    out = frame.with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.String))
    text = [c for c, t in out.schema.items() if t == pl.String]
    out = out.with_columns(
        pl.when(pl.col(c).str.contains(_TRIGGER_PATTERN)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text)
    return out.rename({c: neutralise_text(c) for c in out.columns if neutralise_text(c) != c})


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Text statuses, and blanks (not NaN/inf) for numbers that do not exist."""
    floats = [c for c, t in frame.schema.items() if t in (pl.Float64, pl.Float32)]
    return frame.with_columns(
        pl.col(pl.Enum, pl.Categorical).cast(pl.String),
        *[pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats])


def _safe(frame: pl.DataFrame) -> pl.DataFrame:
    return neutralise_formulas(_plain(frame))


def to_csv_bytes(frame: pl.DataFrame) -> bytes:
    """UTF-8 CSV: formulas neutralised, missing numbers as empty fields."""
    return _safe(frame).write_csv().encode("utf-8")


def methods_frame(provenance: Mapping[str, Any]) -> pl.DataFrame:
    rows = []
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append({"item": key, "value": text})
    return pl.DataFrame(rows, schema={"item": pl.String, "value": pl.String})


_INTEGER_TEXT = re.compile(r"^[0-9]{1,15}$")


def _write_sheet(wb: xlsxwriter.Workbook, name: str, frame: pl.DataFrame) -> None:
    """One sheet, cell by cell: numbers as numbers, text as text (never a formula or link), and
    missing values as empty cells. Suppressed count columns keep their unsuppressed counts as numbers."""
    ws = wb.add_worksheet(name[:31])
    bold = wb.add_format({"bold": True})
    safe = _safe(frame)
    for j, column in enumerate(safe.columns):
        ws.write_string(0, j, column, bold)
        series = safe[column]
        dtype = series.dtype
        counts = column in COUNT_COLUMNS and dtype == pl.String
        for i, v in enumerate(series.to_list(), start=1):
            if v is None:
                continue
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, int | float):
                if math.isfinite(v):
                    ws.write_number(i, j, v)
            elif counts and _INTEGER_TEXT.match(v):
                ws.write_number(i, j, int(v))
            else:
                ws.write_string(i, j, neutralise_text(str(v)))
    ws.freeze_panes(1, 0)
    ws.autofit()


def write_workbook(target: str | Path | io.BytesIO, sheets: Mapping[str, pl.DataFrame]) -> None:
    """An .xlsx with one sheet per frame, written safely (see the module docstring)."""
    with xlsxwriter.Workbook(target, WORKBOOK_OPTIONS) as wb:
        for name, frame in sheets.items():
            _write_sheet(wb, name, frame)


def to_excel_bytes(frame: pl.DataFrame, provenance: Mapping[str, Any]) -> bytes:
    """Workbook with a 'results' sheet (contract columns first) and a 'methods' sheet."""
    ordered = frame.select([c for c in CONTRACT_COLUMNS if c in frame.columns]
                           + [c for c in frame.columns if c not in CONTRACT_COLUMNS])
    buf = io.BytesIO()
    write_workbook(buf, {"results": ordered, "methods": methods_frame(provenance)})
    return buf.getvalue()
