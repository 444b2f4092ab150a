"""Developer chrome is for editors (#12 item 9): a viewer's sidebar has no "Rendered in" timing; the readiness
probe's sign that the view was drawn is an invisible element, the same for everyone."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics.ui.readiness import RENDERED_MARKER

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _sidebar(editing: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    if editing:
        monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    else:
        monkeypatch.delenv("AUDIT_METRICS_EDIT", raising=False)
    at = AppTest.from_file(APP, default_timeout=240).run()
    assert not at.exception
    captions = [c.value for c in at.sidebar.caption]
    htmls = [str(h.proto.body) for h in at.sidebar.get("html")]
    return captions, htmls


@pytest.mark.parametrize("editing", [False, True])
def test_timing_only_for_editors_and_marker_for_all(editing: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    captions, htmls = _sidebar(editing, monkeypatch)
    assert any(c.startswith("Rendered in") for c in captions) is editing
    assert any(RENDERED_MARKER in h and "hidden" in h for h in htmls)
