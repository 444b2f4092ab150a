"""The caterpillar chart draws every unit's expected range as one trace (#12 item 7: one ``add_shape`` per unit
took 1.7-3.6 s for 140 trusts). Oracle: the results table's own alert limits and values, on the plotted scale."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from audit_metrics import figures
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit


@pytest.fixture(scope="module")
def trust_rows(catalogue_path: Path) -> tuple[pl.DataFrame, object]:
    result = run_audit(load_catalogue(catalogue_path)).results["bowel_mort90"]
    rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)
    return rows, result.spec


def test_every_bar_is_one_trace_with_the_units_own_limits(trust_rows) -> None:
    rows, spec = trust_rows
    fig = figures.caterpillar_figure(rows, title="t", better=spec.better, risk_adjusted=True,
                                     multiplier=spec.multiplier, highlight=["ZA4"])
    assert len(fig.layout.shapes) <= 1  # the target line only, not one shape per unit
    bars = [t for t in fig.data if t.mode == "lines"]
    assert len(bars) == 1
    drawn = rows.filter(pl.col("value").is_not_null()).sort("value")
    factor = float(drawn["rate_scale"][0]) * spec.multiplier
    x, y = list(bars[0].x), list(bars[0].y)
    assert len(x) == 3 * drawn.height
    assert x[2::3] == [None] * drawn.height and y[2::3] == [None] * drawn.height  # gaps between units
    assert y[0::3] == drawn["unit_name"].to_list() and y[1::3] == drawn["unit_name"].to_list()
    for lo, hi, want_lo, want_hi in zip(x[0::3], x[1::3], drawn["lower_alert"], drawn["upper_alert"], strict=True):
        assert math.isclose(lo, want_lo * factor, rel_tol=1e-12)
        assert math.isclose(hi, want_hi * factor, rel_tol=1e-12)
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) == drawn.height  # every unit's value still drawn once
    assert bars[0].hoverinfo == "skip" and bars[0].showlegend is False


def test_a_unit_without_limits_leaves_a_gap_not_a_crash(trust_rows) -> None:
    rows, spec = trust_rows
    first = rows.filter(pl.col("value").is_not_null()).sort("value")["unit_code"][0]
    rows = rows.with_columns(pl.when(pl.col("unit_code") == first).then(None).otherwise(pl.col("lower_alert"))
                             .alias("lower_alert"))
    fig = figures.caterpillar_figure(rows, title="t", better=spec.better, risk_adjusted=True,
                                     multiplier=spec.multiplier)
    bars = next(t for t in fig.data if t.mode == "lines")
    assert bars.x[0] is None and bars.x[1] is not None


def test_names_in_capitals_are_shortened_and_given_room(trust_rows) -> None:
    """A real-data review (the Faster Diagnosis table): names written in capitals, as published tables write them,
    kept their 'NHS FOUNDATION TRUST' ending and were cut off at the left of a margin sized for lower case."""
    rows, spec = trust_rows
    capitals = rows.with_columns(pl.col("unit_name").str.to_uppercase())
    fig = figures.caterpillar_figure(capitals, title="t", better=spec.better, risk_adjusted=True,
                                     multiplier=spec.multiplier, highlight=[])
    labels = list(fig.layout.yaxis.ticktext)
    assert labels and not any(label.endswith(("NHS TRUST", "NHS FOUNDATION TRUST")) for label in labels)
    widest = max(labels, key=figures.label_width)
    # capitals take more room: at least 0.68 of the 9 px font each (Arial's capitals average ~0.67 em)
    assert fig.layout.margin.l >= min(420, 0.68 * 9 * sum(c.isupper() for c in widest))
    assert figures.label_width("AB") > figures.label_width("ab")


def test_units_without_data_are_not_listed() -> None:
    """A real-data review: on the Faster Diagnosis table, with the reference geography of every NHS trust, the
    caterpillar listed ambulance and mental-health trusts (no rows in the table: value NaN) as empty rows."""
    root = Path(__file__).resolve().parents[1]
    loaded = load_catalogue(root / "examples" / "cwt_faster_diagnosis" / "indicators.yaml")
    result = run_audit(loaded, only=["fds_lung"]).results["fds_lung"]
    rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)
    empty = rows.filter(pl.col("value").cast(pl.Float64).is_nan())
    assert empty.height > 0  # units in the units file with no rows in the table
    fig = figures.caterpillar_figure(rows, title="t", better=result.spec.better, risk_adjusted=False,
                                     multiplier=result.spec.multiplier)
    listed = set(fig.layout.yaxis.tickvals)
    assert listed == set(rows.filter(pl.col("value").cast(pl.Float64).is_finite())["unit_name"].to_list())
    assert not listed & set(empty["unit_name"].to_list())
