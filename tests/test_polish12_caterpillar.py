"""The caterpillar's rows fill its plot: the y range ends half a row beyond the first and last units, with no empty
band above the top unit (#12 polish item 2; Plotly's autorange padded the categories by about 8 rows)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from audit_metrics import figures
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit


@pytest.fixture(scope="module")
def result(catalogue_path: Path) -> object:
    return run_audit(load_catalogue(catalogue_path), only=["bowel_mort90"]).results["bowel_mort90"]


@pytest.mark.parametrize("level", ["trust", "cancer_alliance"])
def test_rows_sit_half_a_row_from_the_plot_edges(result: object, level: str) -> None:
    rows = result.table.filter(pl.col("level") == level, pl.col("period") == result.pooled_period)
    fig = figures.caterpillar_figure(rows, title="t", better=result.spec.better, risk_adjusted=True,
                                     multiplier=result.spec.multiplier, highlight=[rows["unit_code"][0]])
    drawn = rows.filter(pl.col("value").is_not_null()).sort("value")["unit_name"].to_list()
    assert len(drawn) > 1
    yaxis = fig.layout.yaxis
    assert list(yaxis.categoryarray) == drawn  # category k is at y = k: the first unit at 0, the last at n - 1
    assert yaxis.autorange is False
    assert list(yaxis.range) == [-0.5, len(drawn) - 0.5]


def test_no_units_leaves_the_range_to_plotly(result: object) -> None:
    rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period).clear()
    fig = figures.caterpillar_figure(rows, title="t", better=result.spec.better, risk_adjusted=True,
                                     multiplier=result.spec.multiplier)
    assert fig.layout.yaxis.range is None
