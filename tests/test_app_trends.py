"""The dashboard's "Over time" tab, the trust profile's trend sentences and the Releases view (AppTest)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rug_support import rug_of
from streamlit.testing.v1 import AppTest

from audit_metrics.cli import main
from audit_metrics.sample_trends import PLANTED_TRENDS, RELEASE_CHANGE, make_monthly, second_release
from audit_metrics.trend_figures import MDC_COLOURS

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    """Two releases of the sample's trend indicator, the second with the changed monthly extract."""
    project = tmp_path_factory.mktemp("releases")
    shutil.copy(root / "indicators.yaml", project / "indicators.yaml")
    shutil.copytree(root / "sample_data", project / "sample_data")
    path = project / "releases.sqlite"
    changed = project / "monthly2.parquet"
    second_release(make_monthly()).write_parquet(changed)
    for label, extra in (("2024-Q1", []), ("2024-Q2", ["--data", f"monthly_outcomes={changed}"])):
        assert main(["run", "--indicators", str(project / "indicators.yaml"), "--out", str(project / "r.csv"),
                     "--indicator", "sact_mort30", "--record", str(path), "--label", label, "--quiet", *extra]) == 0
    return path


def test_trend_tab_spc_cusum_vlad_for_the_planted_deterioration() -> None:
    worse = next(p for p in PLANTED_TRENDS if p.direction == "deterioration")
    at = _app(view="Indicator", indicator="sact_mort30", trust=worse.trust_code)
    assert not at.exception
    titles = [c["layout"]["title"]["text"] for c in _charts(at)]
    assert any(t.endswith("England (national)") for t in titles)
    assert any(t.startswith("Risk-adjusted CUSUM") for t in titles) and any(t.startswith("VLAD") for t in titles)
    text = _text(at)
    assert "Concerning since" in text and "Variation: Concerning" in text
    assert "deterioration signal" in text and "in-control ARL, simulated" in text
    trust_chart = next(c for c in _charts(at) if worse.trust_code in c["layout"]["title"]["text"]
                       and not c["layout"]["title"]["text"].startswith(("Risk", "VLAD")))
    colours = {t.get("marker", {}).get("color") for t in trust_chart["data"]}
    assert MDC_COLOURS["special_cause_concern"] in colours  # orange points on the trust's chart
    # the Laney chart is one click away and keeps the verdict
    at.radio(key="trend_trust_kind").set_value("Laney p′/u′ (allows for each month's size)").run()
    assert not at.exception and "Variation: Concerning" in _text(at)


def test_trend_tab_without_dates_says_why() -> None:
    at = _app(view="Indicator", indicator="lung_cns")
    assert not at.exception
    assert any("has no dates" in i.value for i in at.info)


def test_trend_tab_rebase() -> None:
    at = _app(view="Indicator", indicator="sact_mort30", trust="ZG1")
    options = at.selectbox(key="trend_rebase").options
    at.selectbox(key="trend_rebase").set_value(options[19]).run()  # October 2022 (the first option is "none")
    assert not at.exception
    chart = next(c for c in _charts(at) if "ZG1" in c["layout"]["title"]["text"]
                 and not c["layout"]["title"]["text"].startswith(("Risk", "VLAD")))
    means = [t for t in chart["data"] if t.get("name") == "Mean"]
    assert len(means) == 2  # one mean line per period


def test_releases_view_lists_the_planted_change(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(store))
    at = _app(view="Releases")
    assert not at.exception
    assert any("New since release 1: 2 flags" in s.value for s in at.subheader)
    new = at.dataframe[0].value  # "New since release 1"
    assert set(new["unit_code"]) == {unit for _, unit, _, _ in RELEASE_CHANGE.expected_changes}
    assert "extract changed: monthly_outcomes" in _text(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Download changes (CSV)" in labels


def test_releases_view_without_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(tmp_path / "none.sqlite"))
    at = _app(view="Releases")
    assert not at.exception
    assert any("No results store yet" in i.value for i in at.info)


@pytest.mark.parametrize("planted", PLANTED_TRENDS, ids=[p.trust_code for p in PLANTED_TRENDS])
def test_trust_profile_names_the_planted_change(planted) -> None:
    at = _app(view="Trust profile", trust=planted.trust_code)
    assert not at.exception
    words = "Concerning since" if planted.direction == "deterioration" else "Improving since"
    lines = [m.value for m in at.markdown if "Over time:" in m.value]
    assert len(lines) == 1  # only the dated indicator has a trend line
    assert words in lines[0]
    assert len(at.get("plotly_chart")) == 2  # the funnel slices and the one sparkline


def test_overview_filters_to_flags_new_since_the_last_release(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(store))
    at = _app()
    assert not at.exception
    box = at.checkbox(key="ov_new")
    assert "release 2 against 1: 1" in box.label
    box.check().run()
    assert not at.exception
    rug = rug_of(at)
    # one trust, one indicator: ZC4's new alarm
    assert json.loads(rug.get("data-units")) == ["ZC4"] and len(json.loads(rug.get("data-indicators"))) == 1
