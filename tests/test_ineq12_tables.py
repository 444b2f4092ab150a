"""Inequalities view tables keep numbers as numbers (#12 polish): a click on a column header sorts 9.5 before 10.2,
the numbers are drawn at the table's precision with the unit the view's words use, a blanked (suppressed) or
missing number is an empty cell (``placeholder=""``), and a count in the suppressed range never shows.

Oracles: the element Streamlit sends (its data, column configuration and ``placeholder``); the suppression rule of
the catalogue (``defaults.suppression``); the view's own "In short" sentence, built from the unrounded gaps."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from app_support import APP, open_app
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.export import WITHHELD_LABEL
from audit_metrics.ui.inequalities import GAP_COLUMNS, GAP_DECIMALS, for_screen, labels_for

RULE = load_catalogue(Path(APP).with_name("indicators.yaml")).catalogue.defaults.suppression
GAP_NUMBERS = ("patients", "sii", "sii_lower", "sii_upper", "rii", "gap")
GROUP_NUMBERS = ("value", "lower_ci", "upper_ci", "national_group_value")


def _grid(at: AppTest, key_column: str):
    (grid,) = [d for d in at.dataframe if key_column in d.value.columns]
    return grid


def _config(grid) -> dict[str, dict]:
    return json.loads(grid.proto.columns)


@pytest.fixture(scope="module")
def ze5() -> AppTest:
    at = open_app(timeout=300, view="Inequalities", indicator="bowel_emergency_dx", breakdown="imd_quintile",
                  trust="ZE5")
    assert not at.exception
    return at


def test_gap_numbers_are_numeric_and_sort_numerically(ze5: AppTest) -> None:
    grid = _grid(ze5, "sii")
    gaps = grid.value
    assert grid.proto.placeholder == ""  # a blanked number is drawn as an empty cell
    for c in GAP_NUMBERS:
        assert pd.api.types.is_numeric_dtype(gaps[c]), (c, gaps[c].dtype)
    assert pd.api.types.is_integer_dtype(gaps["patients"])  # whole counts, not 35183.0
    # a header click sorts by the column's values: numerically, negatives and 10+ included
    for c in ("sii", "gap", "patients"):
        ordered = gaps.sort_values(c)[c].dropna().to_numpy(dtype=float)
        assert len(ordered) > 5 and np.all(np.diff(ordered) >= 0), c
        assert ordered.min() < 0 or c == "patients"
    values = gaps["sii"].dropna().tolist()  # the same numbers sorted as text come out in another order
    assert sorted(values) != [float(t) for t in sorted(f"{v:.1f}" for v in values)]
    config = _config(grid)
    for c, d in GAP_DECIMALS.items():
        assert config[c]["type_config"] == {"type": "number", "format": f"%.{d}f"}, c
        assert "alignment" not in config[c]  # numbers right-aligned by default
    assert config["sii"]["label"].endswith("points)") and config["gap"]["label"].endswith("(points)")
    # why most rows' numbers are empty ("not shown (small numbers)") is in view beside the unit, not past the
    # right edge after the empty cells
    assert list(gaps.columns)[:3] == ["unit_name", "patients", "status_label"]


def test_withheld_gaps_are_empty_not_none_and_national_is_shown(ze5: AppTest) -> None:
    gaps = _grid(ze5, "sii").value
    withheld = gaps[gaps["status_label"] == WITHHELD_LABEL]
    assert len(withheld) > 0
    assert withheld[["sii", "sii_lower", "sii_upper", "rii", "gap"]].isna().all().all()
    assert withheld["patients"].notna().all()  # the unit's total is in the main results anyway
    national = gaps[gaps["unit_name"] == "National"]
    assert national[["sii", "sii_lower", "sii_upper", "rii", "gap"]].notna().all().all()
    for c in gaps.columns:  # text cells never read as a missing value
        if not pd.api.types.is_numeric_dtype(gaps[c]):
            assert not gaps[c].isna().any() and not gaps[c].isin(["None", "nan", "NaN"]).any(), c


def test_group_values_numeric_counts_suppressed(ze5: AppTest) -> None:
    grid = _grid(ze5, "group")
    groups = grid.value
    assert grid.proto.placeholder == ""
    for c in GROUP_NUMBERS:
        assert pd.api.types.is_numeric_dtype(groups[c]), (c, groups[c].dtype)
    config = _config(grid)
    assert config["value"]["label"] == "Value (%)"  # as the gradient chart's axis says
    assert config["value"]["type_config"] == {"type": "number", "format": "%.1f"}
    # counts stay export.suppress's text, right-aligned: the symbol the caption promises for a hidden count
    assert config["observed"]["alignment"] == config["denominator"]["alignment"] == "right"
    caption = " ".join(c.value for c in ze5.caption)
    assert f"Counts of {RULE.min_count}-{RULE.max_count} are shown as" in caption
    hidden = 0
    for _, row in groups.iterrows():
        for c in ("observed", "denominator"):
            if row[c] != RULE.symbol:
                assert not RULE.min_count <= float(row[c]) <= RULE.max_count, row.to_dict()
        if RULE.symbol in (row["observed"], row["denominator"]):
            hidden += 1
            assert all(pd.isna(row[c]) for c in ("value", "lower_ci", "upper_ci")), row.to_dict()
    assert hidden >= 1  # ZE5's "Not recorded" group


def test_in_short_sentence_agrees_with_the_table(ze5: AppTest) -> None:
    """The sentence's points are the table's gap column at its precision, for the trust and nationally."""
    gaps = _grid(ze5, "sii").value
    (sentence,) = [m.value for m in ze5.markdown if m.value.startswith("**In short:**")]
    unit, national = (float(x) for x in re.findall(r"were (\d+\.\d) points", sentence))
    mine = gaps.loc[gaps["unit_name"].str.startswith("Gleddale"), "gap"]
    assert len(mine) == 1
    assert f"{abs(mine.iloc[0]):.1f}" == f"{unit:.1f}"
    assert f"{abs(gaps.loc[gaps['unit_name'] == 'National', 'gap'].iloc[0]):.1f}" == f"{national:.1f}"


def test_alliance_groups_unordered_breakdown_suppressed() -> None:
    at = open_app(timeout=300, view="Inequalities", indicator="bowel_emergency_dx", breakdown="ethnic_group",
                  trust="ZA0")
    assert not at.exception
    at.radio(key="ineq_level").set_value("Cancer Alliance").run()
    assert not at.exception
    groups = _grid(at, "group").value
    assert pd.api.types.is_float_dtype(groups["value"])
    for _, row in groups.iterrows():
        for c in ("observed", "denominator"):
            assert row[c] == RULE.symbol or not RULE.min_count <= float(row[c]) <= RULE.max_count


def test_for_screen_blanks_non_finite_and_keeps_half_counts() -> None:
    frame = pl.DataFrame({"unit_name": ["A", "B", "C"], "patients": [12.0, 13.5, None],
                          "sii": [1.25, float("nan"), float("inf")], "rii": [None, 2.0, 1.0],
                          "status_label": [None, "as expected", "x"]})
    shown, config = for_screen(frame, GAP_DECIMALS, GAP_COLUMNS)
    assert shown["sii"].to_list() == [1.25, None, None]  # NaN/inf would draw as "NaN"/"Infinity"
    assert shown["patients"].to_list() == [12.0, 13.5, None]  # a half count (aggregate table) as it is
    assert shown["status_label"].to_list() == ["", "as expected", "x"]
    assert config["patients"]["type_config"]["type"] == "number" and not config["patients"]["type_config"]["format"]
    whole, config = for_screen(frame.with_columns(pl.Series("patients", [12.0, 13.0, None])), GAP_DECIMALS,
                               GAP_COLUMNS)
    assert whole["patients"].dtype == pl.Int64 and config["patients"]["type_config"]["format"] == "%d"
    assert not any(isinstance(v, float) and math.isnan(v) for v in shown["rii"].to_list())


def test_labels_carry_the_percentage_scale_unit_only_there() -> None:
    assert labels_for(GAP_COLUMNS, 1.0) == GAP_COLUMNS
    pct = labels_for(GAP_COLUMNS, 100)
    assert pct["sii"] == "Slope index (SII: least minus most disadvantaged, points)"
    assert pct["gap"] == "Most minus least disadvantaged (points)" and pct["rii"] == GAP_COLUMNS["rii"]
