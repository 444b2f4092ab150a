"""#16: ``load_dataset`` keeps the typed frame when no row fails, and drops failing rows by a mask.

Oracle: the rows of the file that pass the rules, picked by plain Python (code known, 0 <= num <= den),
on a Parquet file in several row groups (a frame of several chunks, as a national extract reads).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import DatasetSpec
from audit_metrics.io import ROW, Units, load_dataset

UNITS = Units(pl.DataFrame({"unit_code": ["A01", "B02", "C03"], "unit_name": ["A", "B", "C"],
                            "cancer_alliance": ["X", "X", "Y"]}), ("cancer_alliance",), {"OLD": "C03"})


def _rows(n: int, bad: set[int]) -> list[dict[str, object]]:
    codes = ["A01", "B02", "OLD", " C03"]
    rows = []
    for i in range(n):
        row = {"code": codes[i % 4], "period": f"p{i}", "num": i % 7, "den": 7 + i % 5}
        if i in bad:
            row.update([("num", 99)] if i % 3 == 0 else [("num", -1)] if i % 3 == 1 else [("code", "ZZZ")])
        rows.append(row)
    return rows


@pytest.mark.parametrize("bad", [set(), {0}, {5, 6, 7, 1999}, set(range(0, 2000, 3))])
def test_used_rows_are_the_passing_rows_in_order(tmp_path: Path, bad: set[int]) -> None:
    rows = _rows(2000, bad)
    path = tmp_path / "x.parquet"
    pl.DataFrame(rows).write_parquet(path, row_group_size=300)
    ds = load_dataset("agg", path, DatasetSpec(path="x.parquet", key=["period"]), UNITS, unit_column="code",
                      count_columns=["num", "den"], count_pairs=[("num", "den")])
    merged = {"OLD": "C03"}
    expected = [{**r, "code": merged.get(r["code"].strip(), r["code"].strip())} for r in rows
                if r["code"] != "ZZZ" and 0 <= r["num"] <= r["den"]]
    got = ds.frame.select("code", "period", "num", "den").to_dicts()
    assert got == expected
    assert ds.accounting.rows_used == len(expected)
    assert sum(e.rows for e in ds.accounting.exclusions) == len(rows) - len(expected)
    assert ds.frame.columns == ["code", "period", "num", "den", ROW]  # the reason column is not kept
