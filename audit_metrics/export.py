"""Exports for QI leads: CSV and Excel with small-number suppression and a methods sheet."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import polars as pl
import xlsxwriter

from audit_metrics.catalogue import SuppressionSpec
from audit_metrics.pipeline import CONTRACT_COLUMNS

__all__ = ["methods_frame", "suppress", "to_csv_bytes", "to_excel_bytes"]

COUNT_COLUMNS = ("observed", "denominator")


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


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Text statuses, and blanks (not NaN/inf) for numbers that do not exist."""
    floats = [c for c, t in frame.schema.items() if t in (pl.Float64, pl.Float32)]
    return frame.with_columns(
        pl.col(pl.Enum, pl.Categorical).cast(pl.String),
        *[pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats])


def to_csv_bytes(frame: pl.DataFrame) -> bytes:
    return _plain(frame).write_csv().encode("utf-8")


def methods_frame(provenance: Mapping[str, Any]) -> pl.DataFrame:
    rows = []
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append({"item": key, "value": text})
    return pl.DataFrame(rows, schema={"item": pl.String, "value": pl.String})


def to_excel_bytes(frame: pl.DataFrame, provenance: Mapping[str, Any]) -> bytes:
    """Workbook with a 'results' sheet (contract columns first) and a 'methods' sheet."""
    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf) as wb:
        ordered = _plain(frame).select([c for c in CONTRACT_COLUMNS if c in frame.columns]
                                       + [c for c in frame.columns if c not in CONTRACT_COLUMNS])
        ordered.write_excel(wb, worksheet="results", autofit=True, float_precision=6)
        methods_frame(provenance).write_excel(wb, worksheet="methods", autofit=True)
    return buf.getvalue()
