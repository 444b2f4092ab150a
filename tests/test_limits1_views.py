"""Sentences and the rug from each indicator's own limits (#limits1, review defects 3 and 8).

Oracle: examples/shmi/indicators.yaml (shmi_poisson ``limits: [0.998]``; shmi ``[0.95, 0.998]``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from audit_metrics import rug, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit
from audit_metrics.rug import PALETTE

SHMI = Path(__file__).resolve().parents[1] / "examples" / "shmi" / "indicators.yaml"


@pytest.fixture(scope="module")
def run():
    return run_audit(load_catalogue(SHMI))


def _row(run, indicator: str, unit: str = "RXL") -> dict:
    t = run.results[indicator].table
    return t.filter(pl.col("level") == "trust", pl.col("unit_code") == unit).row(0, named=True)


def test_expected_range_says_99_8_not_100(run) -> None:
    result = views.on_scale(_row(run, "shmi_poisson"), risk_adjusted=False,
                            coverage=run.results["shmi_poisson"].options.limits[0])
    assert views.range_sentence(result).startswith("Expected range (99.8%) for a trust of its size:")
    assert "Expected range (99.8%)" in views.hover_text(result)


def test_oe_sentence_reads_an_expected_ratio(run) -> None:
    result = views.on_scale(_row(run, "shmi"), risk_adjusted=False)
    sentence = views.result_sentence(result, title="SHMI")
    assert "observed/expected ratio 1.16 against an expected ratio of 1 " in sentence, sentence
    assert "a expected" not in sentence


def test_rug_draws_beyond_an_only_limit_in_the_outer_shade(run) -> None:
    """The legend says 'Darker: beyond the 99.8% limit'; shmi_poisson's only limit is 99.8%, so RXL (outside
    it, published PO_UL 1.0695 < 1.156) is dark, as shmi's own alarms are; shmi's RXL (alert only) stays light."""
    grid = views.pooled(run).filter(pl.col("level") == "trust", pl.col("unit_code") == "RXL")
    assert rug.single_limit_indicators(grid) == {"shmi_poisson"}
    svg = rug.rug_svg(grid, title="t", coverage={"shmi": 0.95, "shmi_poisson": 0.998}, alarm="99.8%").svg
    statuses = dict(zip(grid["indicator_id"], grid["status"].cast(pl.String), strict=True))
    assert statuses == {"shmi": "alert_high", "shmi_poisson": "alert_high"}
    assert svg.count(f'fill="{PALETTE["worse_alarm"]}"') == 2  # the legend's darker swatch and shmi_poisson
    assert svg.count(f'fill="{PALETTE["worse_alert"]}"') == 2  # the legend's swatch and shmi's alert


def test_only_limit_is_named_by_its_coverage_in_words(run) -> None:
    """shmi_poisson's flags read 'worse than expected (outside 99.8%)', in the label, the sentence and the
    rug's list; shmi's keep alert/alarm."""
    table = views.pooled(run).filter(pl.col("level") == "trust", pl.col("unit_code") == "RXL")
    labels = dict(zip(table["indicator_id"], table["status_label"], strict=True))
    assert labels == {"shmi": "worse than expected (alert)", "shmi_poisson": "worse than expected (outside 99.8%)"}
    row = table.filter(pl.col("indicator_id") == "shmi_poisson").row(0, named=True)
    sentence = views.result_sentence(views.on_scale(row, risk_adjusted=False, coverage=0.998), title="SHMI")
    assert "This is worse than expected (outside 99.8%)" in sentence and "(alert)" not in sentence
    listed = views.flagged_cells(table, coverage={"shmi": 0.95, "shmi_poisson": 0.998})
    assert sorted(listed["Status"]) == ["▲ Worse (alert)", "▲ Worse (outside 99.8%)"]


def test_overview_counts_an_only_limit_as_outer_too(run) -> None:
    """The Overview's 'Outside 99.8%' column said 0 for shmi_poisson while 54 trusts lie outside its 99.8% limits
    (its flags are coded alert_*). Oracle: the catalogue's limits and the 54 flags; chance 141 x 0.002."""
    grid = views.pooled(run).filter(pl.col("level") == "trust")
    coverage = {k: r.options.limits for k, r in run.results.items()}
    counts = {r["indicator_id"]: r for r in views.chance_counts(grid, coverage).iter_rows(named=True)}
    poisson = counts["shmi_poisson"]
    assert poisson["outside_inner"] == poisson["outside_outer"] == 54
    assert poisson["expected_outer"] == pytest.approx(141 * 0.002)
    shmi = counts["shmi"]  # two limits: alarms only beyond 99.8%
    alarms = grid.filter(pl.col("indicator_id") == "shmi", pl.col("status").cast(pl.String).str.starts_with("alarm"))
    assert shmi["outside_outer"] == alarms.height and shmi["expected_outer"] == pytest.approx(141 * 0.002)


def test_funnel_and_slice_draw_an_only_limit_as_the_outer_shade(run) -> None:
    """One meaning for one limit everywhere: beyond it is beyond the indicator's outer limit (rug, funnel, slice)."""
    from audit_metrics import figures

    table = views.pooled(run).filter(pl.col("level") == "trust")
    poisson = table.filter(pl.col("indicator_id") == "shmi_poisson")
    result = run.results["shmi_poisson"]
    curve = result.curves.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)
    fig = figures.funnel_figure(poisson, curve,
                                title="t", better="lower", statistic="ratio", risk_adjusted=False, multiplier=1,
                                coverage=(0.998,))
    worse = next(t for t in fig.data if t.name == "Worse than expected (outside 99.8%)")
    assert worse.marker.color == figures.PALETTE["worse_alarm"]
    assert {t.name for t in fig.data if t.name and "limits" in t.name} == {"99.8% limits"}  # no "(alert)"
    rxl = table.filter(pl.col("unit_code") == "RXL")
    sl = figures.slice_figure(rxl, title="t", limits={k: r.options.limits for k, r in run.results.items()})
    colours = {t.customdata[0][0]: t.marker.color for t in sl.data if t.customdata is not None}
    assert colours == {"worse than expected (outside 99.8%)": figures.PALETTE["worse_alarm"],
                       "worse than expected (alert)": figures.PALETTE["worse_alert"]}
