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


def test_method_panel_p_value_and_table_headings(monkeypatch: pytest.MonkeyPatch) -> None:
    """shmi_poisson's overdispersion test p is 4.8e-90 (not applied, but tested): 'p < 0.001', never 'p = 0';
    its table's range columns are headed by its only limit, 99.8%, and it has no alarm columns."""
    from audit_metrics.ui.indicator import table_columns

    at = _indicator(monkeypatch, "shmi_poisson")
    text = _text(at)
    assert "p < 0.001" in text and "p = 0 " not in text and "e-90" not in text
    heads = table_columns(risk_adjusted=False, percent=False, limits=(0.998,))
    assert heads["lower_alert"] == "Expected range from (99.8%)"
    shown = at.dataframe[0].value.columns
    assert "lower_alert" in shown and "lower_alarm" not in shown


def test_trust_view_one_indicator_and_its_range(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A catalogue of shmi_poisson alone: 'of 1 indicator', and its range named 99.8% (was '(100%)')."""
    text = SHMI.read_text()
    start, end = text.index("  - id: shmi\n"), text.index("  - id: shmi_poisson\n")
    (tmp_path / "indicators.yaml").write_text(text[:start] + text[end:])
    (tmp_path / "SHMI-January_2014.csv").symlink_to(SHMI.parent / "SHMI-January_2014.csv")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(tmp_path / "indicators.yaml"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Trust profile"
    at.query_params["trust"] = "RXL"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _text(at)
    assert "of 1 indicator," in shown and "of 1 indicators" not in shown
    captions = " ".join(c.value for c in at.caption)
    assert "Expected range (99.8%) for a trust of its size: 0.934 to 1.07" in captions  # PO_LL/PO_UL 0.9337/1.0695
    assert "(100%)" not in captions + shown
