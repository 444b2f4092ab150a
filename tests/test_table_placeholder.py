"""Every data grid on every view shows a missing or blanked (suppressed) cell as an empty cell, not Streamlit's
faded "None" (#12: "None" in blanked cells). Oracle: the element Streamlit sends (its ``placeholder`` is the text
drawn for a missing value; unset, the browser draws "None")."""

from __future__ import annotations

import pytest
from app_support import open_app

from audit_metrics.ui.state import VIEWS

# each view with the choices that put its tables on screen (a trust highlighted, a risk-adjusted indicator)
LINKS = {"Indicator": {"indicator": "bowel_mort90", "trust": "ZA4"}, "Trust profile": {"trust": "ZA4"},
         "Inequalities": {"indicator": "bowel_emergency_dx", "breakdown": "imd_quintile", "trust": "ZE5"},
         "Overview": {"show": "list"}}


@pytest.mark.parametrize("view", VIEWS)
def test_every_table_shows_missing_cells_empty(view: str) -> None:
    at = open_app(timeout=240, view=view, **LINKS.get(view, {}))
    assert not at.exception
    grids = list(at.dataframe)
    for grid in grids:
        assert grid.proto.HasField("placeholder") and grid.proto.placeholder == "", view
    if view in {"Indicator", "Outliers & export", "Inequalities", "Data", "Overview"}:
        assert grids, f"{view}: no table drawn, so nothing was checked"
