"""Risk-adjusted Inequalities values above 100% are explained, not left to puzzle a reader (noticed in #12/#16).

A risk-adjusted group value is observed / expected events times the national rate (indirect standardisation); its
95% interval is the Wilson interval of O/n mapped to the same scale (n x rate / E). Where a group's patients were
expected to do less well than average and nearly all of them had the outcome, the value or its upper limit passes
100% (the bundled sample: lung curative treatment by IMD quintile, trust ZC5). The view now says which groups and
why, shows the expected events beside the counts, and draws a 100% line on the chart.

Oracles: the indirect-standardisation formula recomputed here from the table's own O, E, n and the national totals;
the Wilson score interval (Wilson 1927) from scipy's normal quantile; hand-made rows with known arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from app_support import APP, open_app
from scipy import stats

from audit_metrics.catalogue import load_catalogue
from audit_metrics.inequality import NOT_RECORDED, inequalities_for_sharing, run_inequalities
from audit_metrics.ui.inequalities import gradient_figure, past_hundred

INDICATOR, BREAKDOWN, TRUST = "lung_curative_s12", "imd_quintile", "ZC5"


@pytest.fixture(scope="module")
def result():
    loaded = load_catalogue(Path(APP).with_name("indicators.yaml"))
    run = run_inequalities(loaded, only=[INDICATOR])
    return run.results[(INDICATOR, BREAKDOWN)], loaded.catalogue.defaults.suppression


def test_values_and_intervals_follow_indirect_standardisation(result) -> None:
    res, _ = result
    g = res.groups
    national = g.filter(pl.col("level") == "national")
    rate = float(national["observed"].sum()) / float(national["denominator"].sum())  # every group, the rate scale
    o, e, n = (g[c].to_numpy().astype(float) for c in ("observed", "expected", "denominator"))
    np.testing.assert_allclose(g["value"].to_numpy(), o / e * rate, rtol=1e-12)
    z = stats.norm.ppf(0.975)
    p = o / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    np.testing.assert_allclose(g["upper_ci"].to_numpy(), (centre + half) * n * rate / e, rtol=1e-9)
    np.testing.assert_allclose(g["lower_ci"].to_numpy(), np.maximum(centre - half, 0) * n * rate / e,
                               rtol=1e-9, atol=1e-12)
    assert bool(((g["value"] > 1) | (g["upper_ci"] > 1)).any())  # the case this file is about exists


def test_note_names_each_group_past_hundred_with_its_numbers(result) -> None:
    res, rule = result
    groups, _ = inequalities_for_sharing(res.groups, res.gaps, rule)
    rows = groups.filter(pl.col("unit_code").is_in(["national", TRUST]), pl.col("group") != NOT_RECORDED)
    over = rows.filter(pl.col("value").is_not_null()
                       & ((pl.col("value") > 1) | (pl.col("upper_ci") > 1)))
    assert over.height  # ZC5 has one on the sample
    note = past_hundred(rows, multiplier=100, label="IMD quintile")
    assert note is not None and note.startswith("Above 100%: ")
    for r in over.iter_rows(named=True):
        where = "national" if r["unit_code"] == "national" else "this unit"
        assert f"IMD quintile {r['group']}, {where}: " in note
        assert f"{r['observed']} of {r['denominator']} patients against {r['expected']:.1f} expected" in note
        shown = r["value"] * 100 if r["value"] > 1 else r["upper_ci"] * 100
        assert f"{shown:.1f}%" in note
    # groups at or below 100% (value and upper limit) are not named
    for r in rows.filter(pl.col("value").is_not_null(), pl.col("upper_ci") <= 1).iter_rows(named=True):
        where = "national" if r["unit_code"] == "national" else "this unit"
        assert f"IMD quintile {r['group']}, {where}: " not in note


def _rows(value: float, upper: float, *, risk_adjusted: bool = True) -> pl.DataFrame:
    return pl.DataFrame({"unit_code": ["ZA0"], "group": ["1"], "group_order": [0], "observed": ["10"],
                         "denominator": ["10"], "expected": [7.5], "value": [value], "lower_ci": [0.5],
                         "upper_ci": [upper], "risk_adjusted": [risk_adjusted]})


def test_note_arithmetic_on_a_hand_made_row() -> None:
    value = 10 / 7.5 * 0.84  # 10 of 10 treated against 7.5 expected, national rate 84%: 112.0%
    note = past_hundred(_rows(value, value), multiplier=100, label="IMD quintile")
    assert note is not None and "IMD quintile 1, this unit: 112.0%, 10 of 10 patients against 7.5 expected" in note
    under = past_hundred(_rows(0.95, 1.013), multiplier=100, label="IMD quintile")  # the value under, its limit over
    assert under is not None and "upper 95% limit 101.3%" in under


@pytest.mark.parametrize(("value", "upper", "risk_adjusted", "multiplier"), [
    (0.95, 0.99, True, 100),    # nothing passes 100%
    (1.12, 1.12, False, 100),   # a crude proportion never passes 100%: not the case explained
    (1.12, 1.12, True, 1),      # not the percentage scale: no 100% to pass
    (math.nan, 1.5, True, 100),  # a blanked (suppressed) value: nothing shown to explain
])
def test_no_note_where_nothing_shown_passes_hundred(value: float, upper: float, risk_adjusted: bool,
                                                    multiplier: float) -> None:
    assert past_hundred(_rows(value, upper, risk_adjusted=risk_adjusted), multiplier=multiplier, label="g") is None


def test_chart_draws_the_hundred_line_only_when_an_interval_passes_it(result) -> None:
    res, rule = result
    groups, _ = inequalities_for_sharing(res.groups, res.gaps, rule)
    title = "By IMD quintile"
    over = gradient_figure(groups.filter(pl.col("unit_code").is_in(["national", TRUST])), unit=TRUST,
                           multiplier=100, title=title, label="IMD quintile")
    lines = [s for s in over.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].y0 == lines[0].y1 == 100
    national = groups.filter(pl.col("unit_code") == "national")
    assert float(national["upper_ci"].max()) <= 1  # the national rows alone stay under
    alone = gradient_figure(national, unit=None, multiplier=100, title=title, label="IMD quintile")
    assert not alone.layout.shapes


def test_view_shows_the_note_and_the_expected_events() -> None:
    at = open_app(timeout=300, view="Inequalities", indicator=INDICATOR, breakdown=BREAKDOWN, trust=TRUST)
    assert not at.exception
    notes = [c.value for c in at.caption if c.value.startswith("Above 100%")]
    assert len(notes) == 1 and ", this unit: " in notes[0]
    (grid,) = [d for d in at.dataframe if "group" in d.value.columns and "upper_ci" in d.value.columns]
    assert "expected" in grid.value.columns
    # a trust whose groups all stay under 100% gets no such note
    rows = []
    loaded = load_catalogue(Path(APP).with_name("indicators.yaml"))
    res = run_inequalities(loaded, only=[INDICATOR]).results[(INDICATOR, BREAKDOWN)]
    safe, _ = inequalities_for_sharing(res.groups, res.gaps, loaded.catalogue.defaults.suppression)
    trusts = safe.filter(pl.col("level") == "trust", pl.col("group") != NOT_RECORDED)
    for code, part in trusts.group_by("unit_code"):
        if past_hundred(pl.concat([part, safe.filter(pl.col("unit_code") == "national",
                                                     pl.col("group") != NOT_RECORDED)]), multiplier=100, label="IMD quintile") is None:
            rows.append(code[0])
    assert rows
    other = open_app(timeout=300, view="Inequalities", indicator=INDICATOR, breakdown=BREAKDOWN, trust=sorted(rows)[0])
    assert not other.exception
    assert not [c.value for c in other.caption if c.value.startswith("Above 100%")]
