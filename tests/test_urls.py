"""#12 build 5 and 3: every selection in the URL, Back restores the previous one, the outlier list's Direction
filter as worse/better. Through Streamlit's AppTest: its query parameters are the browser's URL, and setting
them to an earlier entry's before a run is what Back does (Streamlit reruns with the restored query string
while the page still holds the widgets' current values). tests/test_browser_history.py presses the real
Back button in chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from app_support import open_app, url_params
from streamlit.testing.v1 import AppTest

from audit_metrics import sharing
from audit_metrics.cli import main

OUTLIERS = "Outliers & export"


_app, _url = open_app, url_params


def _back(at: AppTest, url: dict[str, list[str]]) -> AppTest:
    """The browser's Back: the earlier entry's query string, the page's widgets as they are now."""
    at.query_params.clear()
    at.query_params.update(url)
    return at.run()


def _recorder(monkeypatch: pytest.MonkeyPatch) -> list[sharing.OutlierExport]:
    calls: list[sharing.OutlierExport] = []
    original = sharing.build_outlier_export

    def recording(*args, **kwargs) -> sharing.OutlierExport:
        calls.append(original(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(sharing, "build_outlier_export", recording)
    return calls


def _notes(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption if c.value.startswith("This link's "))


def test_outlier_filters_are_in_the_url_and_a_link_opens_the_same_list(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorder(monkeypatch)
    at = _app(view=OUTLIERS)
    assert not at.exception
    assert _url(at) == {"view": [OUTLIERS]}  # every filter at its default: a clean link
    at.multiselect(key="out_sites").set_value(["Lung", "Bowel"]).run()
    at.multiselect(key="out_directions").set_value(["worse"]).run()
    at.multiselect(key="out_levels").set_value(["alarm"]).run()
    at.multiselect(key="out_alliance").set_value(["Fellside Cancer Alliance"]).run()
    assert not at.exception
    url = _url(at)
    assert url == {"view": [OUTLIERS], "alliance": ["Fellside Cancer Alliance"], "site": ["Lung", "Bowel"],
                   "level": ["alarm"], "direction": ["worse"]}
    chosen = calls[-1]
    at.multiselect(key="out_indicators").set_value(["bowel_emergency_dx"]).run()
    assert _url(at)["indicator"] == ["bowel_emergency_dx"]

    opened = _app(**url)  # the link, opened afresh
    assert not opened.exception and not _notes(opened)
    assert opened.multiselect(key="out_sites").value == ["Lung", "Bowel"]
    assert opened.multiselect(key="out_directions").value == ["worse"]
    assert opened.multiselect(key="out_levels").value == ["alarm"]
    assert opened.multiselect(key="out_alliance").value == ["Fellside Cancer Alliance"]
    assert calls[-1].filters == chosen.filters and calls[-1].csv_bytes() == chosen.csv_bytes()

    at = _app(view=OUTLIERS, site="Bowel", period="2022/23")
    assert not at.exception and at.selectbox(key="out_period").value == "2022/23"
    assert calls[-1].filters.period == "2022/23" and calls[-1].table.height > 0
    assert _url(at) == {"view": [OUTLIERS], "site": ["Bowel"], "period": ["2022/23"]}


def test_a_site_with_nothing_in_the_period_chosen_says_so() -> None:
    """Lung reports no single year (only bowel_emergency_dx is by period): choosing 2022/23 raised the
    command line's error in the view (a traceback); it now says there is nothing to list and why."""
    at = _app(view=OUTLIERS)
    at.multiselect(key="out_sites").set_value(["Lung"]).run()
    at.selectbox(key="out_period").set_value("2022/23").run()
    assert not at.exception
    said = " ".join(i.value for i in at.info)
    assert "Nothing to list for 2022/23" in said and "'Lung': no such tumour site" in said


def test_a_links_unknown_values_are_ignored_with_a_note() -> None:
    at = _app(view=OUTLIERS, site=["Lung", "Nowhere"], direction="sideways", level="alarm", period="1999",
              indicator="no_such_indicator", alliance="Atlantis Cancer Alliance")
    assert not at.exception
    assert at.multiselect(key="out_sites").value == ["Lung"]  # the valid value kept
    assert at.multiselect(key="out_levels").value == ["alarm"]
    assert at.multiselect(key="out_directions").value == ["worse", "better"]  # the default
    assert at.selectbox(key="out_period").value is None
    notes = _notes(at)
    for given in ("site=Nowhere", "direction=sideways", "period=1999", "indicator=no_such_indicator",
                  "alliance=Atlantis Cancer Alliance"):
        assert given in notes, given
    assert "Lung" not in re.sub(r"'[^']*'", "", notes)
    assert _url(at) == {"view": [OUTLIERS], "site": ["Lung"], "level": ["alarm"]}  # the URL says what is shown
    # an indicator outside the link's tumour sites
    at = _app(view=OUTLIERS, site="Lung", indicator="bowel_mort90")
    assert not at.exception and at.multiselect(key="out_indicators").value == []
    assert "indicator=bowel_mort90" in _notes(at)
    at = _app(view="Nonsense")
    assert not at.exception and at.sidebar.radio[0].value == "Overview" and "view=Nonsense" in _notes(at)


def test_another_views_parameters_are_not_taken_as_outlier_filters() -> None:
    """In a session, switching from the Indicator view (indicator=, level=, period=) to the outlier list gives
    its defaults, with no note: only an opened link's values are filters."""
    at = _app(view="Indicator", indicator="bowel_emergency_dx", period="2022/23")
    at.sidebar.radio[0].set_value(OUTLIERS).run()
    assert not at.exception and not _notes(at)
    assert at.multiselect(key="out_indicators").value == [] and at.selectbox(key="out_period").value is None
    assert _url(at) == {"view": [OUTLIERS]}


def test_back_returns_to_the_previous_view_and_selection() -> None:
    at = _app(view="Indicator", indicator="bowel_mort90")
    first = _url(at)
    assert first["indicator"] == ["bowel_mort90"]
    at.selectbox(key="ind_indicator").set_value("lung_cns").run()
    second = _url(at)
    assert second["indicator"] == ["lung_cns"]
    at.sidebar.radio[0].set_value(OUTLIERS).run()
    at.multiselect(key="out_sites").set_value(["Lung"]).run()
    third = _url(at)
    at.multiselect(key="out_sites").set_value(["Lung", "Bowel"]).run()

    _back(at, third)  # the outlier list as it was: Lung only
    assert not at.exception and at.multiselect(key="out_sites").value == ["Lung"] and _url(at) == third
    _back(at, {"view": [OUTLIERS]})
    assert at.multiselect(key="out_sites").value == []
    _back(at, second)
    assert at.sidebar.radio[0].value == "Indicator" and at.selectbox(key="ind_indicator").value == "lung_cns"
    _back(at, first)
    assert at.selectbox(key="ind_indicator").value == "bowel_mort90" and _url(at) == first
    assert not _notes(at)
    # and forward again, then carry on from there
    _back(at, second)
    assert at.selectbox(key="ind_indicator").value == "lung_cns"
    at.radio(key="ind_chart").set_value("Caterpillar (ranked intervals)").run()
    assert _url(at) == {**second, "chart": ["caterpillar"]}


def test_inequalities_unit_and_level_are_in_the_url() -> None:
    at = _app(view="Inequalities", indicator="bowel_emergency_dx", breakdown="imd_quintile", trust="ZE5")
    assert not at.exception and at.selectbox(key="ineq_unit").value == "ZE5"
    assert _url(at)["trust"] == ["ZE5"] and _url(at)["level"] == ["trust"]
    at.radio(key="ineq_level").set_value("Cancer Alliance").run()
    alliance = at.selectbox(key="ineq_unit").value
    url = _url(at)
    assert url["level"] == ["cancer_alliance"] and url["alliance"] == [alliance] and "trust" not in url
    opened = _app(**url)
    assert opened.radio(key="ineq_level").value == "Cancer Alliance"
    assert opened.selectbox(key="ineq_unit").value == alliance


def test_direction_filter_is_worse_or_better() -> None:
    at = _app(view=OUTLIERS)
    box = at.multiselect(key="out_directions")
    assert box.options == ["worse", "better"] and box.value == ["worse", "better"]
    box.set_value(["better"]).run()
    shown = at.dataframe[0].value
    assert len(shown) > 0 and all(s.startswith("better") for s in shown["status_label"])


def test_indicators_with_no_better_direction_get_their_own_direction_option(
        project_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An indicator with `better: neither` is flagged higher or lower, never worse or better: the filter then
    offers 'higher or lower' too, and the download equals `audit-metrics outliers --direction higher
    --direction lower`."""
    catalogue = project_copy / "indicators.yaml"
    text = catalogue.read_text()
    block = text.index("id: lung_cns")
    at_better = text.index("better:", block)
    end = text.index("\n", at_better)
    catalogue.write_text(text[:at_better] + "better: neither" + text[end:])
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    calls = _recorder(monkeypatch)
    at = _app(view=OUTLIERS)
    assert not at.exception
    box = at.multiselect(key="out_directions")
    assert box.options == ["worse", "better", "higher or lower"] and box.value == box.options
    everything = calls[-1].table
    neither = everything.filter(pl.col("indicator_id") == "lung_cns")
    assert neither.height > 0 and set(neither["direction"]) <= {"higher", "lower"}
    box.set_value(["worse", "better"]).run()
    assert "lung_cns" not in calls[-1].table["indicator_id"].to_list()
    assert calls[-1].table.height == everything.height - neither.height
    at.multiselect(key="out_directions").set_value(["higher or lower"]).run()
    assert set(calls[-1].table["indicator_id"]) == {"lung_cns"}
    assert _url(at)["direction"] == ["higher or lower"]
    out = tmp_path / "o.csv"
    assert main(["outliers", str(catalogue), "--direction", "higher", "--direction", "lower", "--out", str(out),
                 "--quiet"]) == 0
    assert out.read_bytes() == calls[-1].csv_bytes()


def test_alliance_views_indicator_is_in_the_url() -> None:
    at = _app(view="Cancer Alliance", alliance="Fellside Cancer Alliance", indicator="lung_cns")
    assert not at.exception and at.selectbox(key="all_indicator").value == "lung_cns"
    at.selectbox(key="all_indicator").set_value("bowel_mort90").run()
    url = _url(at)
    assert url == {"view": ["Cancer Alliance"], "alliance": ["Fellside Cancer Alliance"], "indicator": ["bowel_mort90"]}
    at.selectbox(key="alliance").set_value("Marshby Cancer Alliance").run()
    _back(at, url)
    assert at.selectbox(key="alliance").value == "Fellside Cancer Alliance"
    assert at.selectbox(key="all_indicator").value == "bowel_mort90"


def test_indicator_views_unknown_link_values_are_noted() -> None:
    """A link with a chart type, level, indicator or trust that is not offered opens the defaults and says
    which values it ignored (before: silently, for chart and level)."""
    at = _app(view="Indicator", indicator="bowel_mort90", chart="pie", level="ward", trust="ZZ9")
    assert not at.exception
    assert at.radio(key="ind_chart").value == "Funnel plot" and at.radio(key="ind_level").value == "Trusts"
    assert at.selectbox(key="ind_highlight").value == "(none)"
    notes = _notes(at)
    assert all(v in notes for v in ("chart=pie", "level=ward", "trust=ZZ9")) and "indicator=" not in notes
    assert _url(at) == {"view": ["Indicator"], "indicator": ["bowel_mort90"], "level": ["trust"],
                        "period": [at.selectbox(key="ind_period").value], "chart": ["funnel"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    """Three releases of the sample's trend indicator (the middle one with the changed monthly extract)."""
    from audit_metrics.sample_trends import make_monthly, second_release

    project = tmp_path_factory.mktemp("releases")
    path, changed = project / "releases.sqlite", project / "monthly2.parquet"
    second_release(make_monthly()).write_parquet(changed)
    for label, extra in (("2024-Q1", []), ("2024-Q2", ["--data", f"monthly_outcomes={changed}"]), ("2024-Q3", [])):
        assert main(["run", "--indicators", str(root / "indicators.yaml"), "--out", str(project / "r.csv"),
                     "--indicator", "sact_mort30", "--record", str(path), "--label", label, "--quiet", *extra]) == 0
    return path


def test_releases_compared_are_in_the_url(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(store))
    at = _app(view="Releases")
    assert not at.exception
    assert (at.selectbox(key="rel_a").value, at.selectbox(key="rel_b").value) == (2, 3)  # the latest two
    assert _url(at) == {"view": ["Releases"], "compare": ["2"], "to": ["3"]}
    at.selectbox(key="rel_a").set_value(1).run()
    url = _url(at)
    assert url["compare"] == ["1"]
    opened = _app(**url)
    assert (opened.selectbox(key="rel_a").value, opened.selectbox(key="rel_b").value) == (1, 3)
    opened.selectbox(key="rel_b").set_value(2).run()
    _back(opened, url)
    assert (opened.selectbox(key="rel_a").value, opened.selectbox(key="rel_b").value) == (1, 3)
    odd = _app(view="Releases", compare="9")
    assert not odd.exception and odd.selectbox(key="rel_a").value == 2 and "compare=9" in _notes(odd)
