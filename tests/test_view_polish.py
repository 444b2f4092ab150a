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
