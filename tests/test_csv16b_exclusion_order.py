"""Exclusion reasons are listed by row count, largest first, and reasons with the same count by the reason's
text (a fixed order: the group-by that counts them returns groups in no fixed order)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import DatasetSpec
from audit_metrics.io import Units, load_dataset

UNITS = Units(pl.DataFrame({"unit_code": ["A1", "B2"], "unit_name": ["a", "b"]}), ())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reasons_with_equal_counts_come_in_the_order_of_their_text(tmp_path: Path, fmt: str) -> None:
    # first seen in the file in reverse order of the reasons' text; each reason on two rows, one on three
    rows = ["ZZ,1,5", "A1,9,5", "A1,-1,5", ",1,5", "YY,1,5", "B2,8,5", "B2,-2,5", ",2,5", "B2,-3,5", "A1,1,5"]
    body = [f"{i},{row}" for i, row in enumerate(rows * 40)]  # 40 copies (numbered): many rows per reason
    text = "id,code,num,den\n" + "\n".join(body) + "\n"
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        path.write_text(text)
    else:
        pl.read_csv(text.encode(), infer_schema=False).with_columns(pl.col("id", "num", "den").cast(pl.Int64)) \
            .write_parquet(path)
    spec = DatasetSpec(path=str(path), key=None)
    expected = [("negative value in num", 120), ("missing unit code (code)", 80), ("num greater than den", 80),
                ("unknown unit code in code", 80)]
    for _ in range(20):  # the same order every time
        loaded = load_dataset("d", path, spec, UNITS, unit_column="code", count_columns=["num", "den"],
                              count_pairs=[("num", "den")])
        got = [(e.reason, e.rows) for e in loaded.accounting.exclusions]
        assert got == expected
    first = 2 if fmt == "csv" else 1  # a CSV's rows are its lines (the header is line 1); Parquet's count from 1
    assert loaded.accounting.exclusions[0].examples == tuple(first + i for i in (2, 6, 8, 12, 16))
