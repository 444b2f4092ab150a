"""Defects found by looking at screenshots of every view at 1440, 1024 and 390 px (issue #12, "done when")."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("query", [{"view": "Trust profile", "trust": "ZA4"},
                                   {"view": "Indicator", "indicator": "sact_mort30", "trust": "ZA4"}])
def test_sidebar_says_once_where_the_results_came_from(query: dict[str, str]) -> None:
    """The trust profile's sidebar said "Results computed now (...)" 27 times: every dated indicator looked
    the app's run up again through ``state.load``, which writes that line each time."""
    at = _app(**query)
    assert not at.exception
    notes = [c.value for c in at.sidebar.caption if c.value.startswith("Results ")]
    assert len(notes) == 1, notes


def test_gap_funnel_names_its_limits_as_elsewhere() -> None:
    """The inequalities gap funnel's legend said "95.0% limits" beside every other chart's "95% limits"."""
    import polars as pl

    from audit_metrics.ui.inequalities import gap_funnel_figure

    gaps = pl.DataFrame({"level": ["national", "trust", "trust"], "unit_code": ["E", "A", "B"],
                         "unit_name": ["England", "A", "B"], "disadvantage_gap": [0.05, 0.04, 0.08],
                         "gap_se": [None, 0.02, 0.03], "status": ["within"] * 3, "status_label": ["as expected"] * 3})
    fig = gap_funnel_figure(gaps, multiplier=100, highlight=None, phi=1.0, tau2=0.0, coverage=(0.95, 0.998))
    names = {t.name for t in fig.data if t.showlegend is not False}
    assert {"95% limits", "99.8% limits"} <= names, names


def test_chart_titles_are_wrapped_for_a_phone() -> None:
    from audit_metrics import figures

    title = "90-day mortality after major bowel cancer resection (2021/22 to 2023/24) & <b>"
    wrapped = figures.wrap_title(title)
    lines = wrapped.split("<br>")
    assert len(lines) == 3 and all(len(line.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
                                   <= figures.TITLE_WIDTH for line in lines)
    assert "<b>" not in wrapped and "&lt;b&gt;" in wrapped  # still escaped
    assert figures.title_margin(title) == 100 and figures.title_margin("Short") == 60
