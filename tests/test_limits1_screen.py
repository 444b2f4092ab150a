"""On-screen sentences name each indicator's own limits and axis (#limits1, review defects 3 and 8).

Oracle: examples/shmi/indicators.yaml's ``limits`` (shmi_poisson: [0.998]; shmi: [0.95, 0.998]) and the funnel's
own x axis ("Expected events" for an O/E table).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHMI = ROOT / "examples" / "shmi" / "indicators.yaml"


def _indicator(monkeypatch: pytest.MonkeyPatch, indicator: str, chart: str = "funnel") -> AppTest:
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(SHMI))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Indicator"
    at.query_params["indicator"] = indicator
    at.query_params["chart"] = chart
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def test_single_limit_sentence_names_its_coverage(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _indicator(monkeypatch, "shmi_poisson")
    assert "SHMI against Poisson" in " ".join(h.value for h in at.header)
    text = _text(at)
    assert "(dashed: 99.8%)" in text and "95%" not in text.split("What this shows")[1].split(".")[1]
    assert "fall outside the 99.8% limits; about 0.3 would be by chance alone" in text  # 141 x 0.002
    assert "plotted against its number of expected events" in text  # the x axis: Expected events
    assert "number of patients" not in text
    assert "the indicator's only limits" in text and "99.8% / 99.8%" not in text


def test_two_limits_still_named_and_caterpillar_bar_coverage(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text(_indicator(monkeypatch, "shmi"))
    assert "(dashed: 95%, solid: 99.8%)" in text and "fall outside the 95% limits" in text
    assert "outside the 95% / 99.8% limits" in text
    cat = _text(_indicator(monkeypatch, "shmi_poisson", chart="caterpillar"))
    assert "(grey bar, 99.8%)" in cat
