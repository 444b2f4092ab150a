"""Inequalities view tables: a blanked (suppressed) or missing cell reads as an empty cell, never as Streamlit's
faded "None" or "nan", and the suppression still holds on screen (#12 polish item 1). Numbers stay numbers (#12
polish, ineq12): a missing one is an empty cell through the grid's ``placeholder=""``; text never reads as missing."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.export import WITHHELD_LABEL

ROOT = Path(__file__).resolve().parents[1]
RULE = load_catalogue(ROOT / "indicators.yaml").catalogue.defaults.suppression
GAP_NUMBERS = ("sii", "sii_lower", "sii_upper", "rii", "gap")
GROUP_VALUES = ("value", "lower_ci", "upper_ci")


def _missing_looking(cell: object) -> bool:
    """A cell Streamlit's table would draw as a missing value, or text that reads like one."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA:
        return True
    return isinstance(cell, str) and cell.strip().lower() in {"none", "nan", "<na>", "null", "nat"}


def _assert_no_missing(frame: pd.DataFrame, name: str) -> None:
    """No text cell reads as missing (a missing number is drawn empty: ``_table`` checks the placeholder)."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    bad = [(i, c, frame.at[i, c]) for c in text for i in frame.index if _missing_looking(frame.at[i, c])]
    assert not bad, f"{name}: cells that read as missing: {bad[:5]}"


def _assert_groups_suppressed(groups: pd.DataFrame) -> int:
    """Counts in the suppressed range never show; a row with a hidden count shows no value or interval.
    Returns the number of rows with a hidden count."""
    hidden = 0
    for _, row in groups.iterrows():
        for column in ("observed", "denominator"):
            cell = row[column]
            if cell != RULE.symbol:
                assert not (RULE.min_count - 1 < float(cell) <= RULE.max_count), (column, row.to_dict())
        if RULE.symbol in (row["observed"], row["denominator"]):
            hidden += 1
            assert all(pd.isna(row[c]) for c in GROUP_VALUES), row.to_dict()
    return hidden


def _table(at: AppTest, column: str) -> pd.DataFrame:
    """The one table of the view with ``column`` (gaps: "sii"; groups: "group")."""
    (grid,) = [d for d in at.dataframe if column in d.value.columns]
    assert grid.proto.placeholder == ""  # a missing number is drawn as an empty cell, not "None"
    return grid.value


def _app(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k, v in {"view": "Inequalities", "indicator": "bowel_emergency_dx", **params}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    return at


@pytest.mark.parametrize("trust", ["ZE5", "ZA0"])
def test_ordered_breakdown_tables_have_no_none_and_stay_suppressed(trust: str) -> None:
    at = _app(breakdown="imd_quintile", trust=trust)
    gaps = _table(at, "sii")
    groups = _table(at, "group")
    _assert_no_missing(gaps, "gaps")
    _assert_no_missing(groups, "groups")
    withheld = gaps[gaps["status_label"] == WITHHELD_LABEL]
    assert len(withheld) > 0  # the sample has trusts whose gap is hidden: the case that read "None"
    assert withheld[list(GAP_NUMBERS)].isna().all().all()
    shown = gaps[gaps["status_label"] != WITHHELD_LABEL]
    assert shown.loc[shown["unit_name"] == "National", list(GAP_NUMBERS)].notna().all().all()
    assert pd.api.types.is_integer_dtype(gaps["patients"])  # whole counts, not "35183.0"
    hidden = _assert_groups_suppressed(groups)
    assert hidden >= 1  # ZE5: its "Not recorded" group; ZA0 (Elmbury): a quintile with a small count
    if trust == "ZA0":  # its gap is hidden because one of its groups is
        assert gaps.loc[gaps["unit_name"] == "Elmbury University Hospitals NHS Trust", "status_label"].tolist() == [
            WITHHELD_LABEL]


def test_unordered_breakdown_and_alliance_tables_have_no_none() -> None:
    at = _app(breakdown="ethnic_group", trust="ZA0")
    groups = _table(at, "group")
    _assert_no_missing(groups, "groups")
    _assert_groups_suppressed(groups)
    at.radio(key="ineq_level").set_value("Cancer Alliance").run()
    assert not at.exception
    groups = _table(at, "group")
    _assert_no_missing(groups, "alliance groups")
    _assert_groups_suppressed(groups)
