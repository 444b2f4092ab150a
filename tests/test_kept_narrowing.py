"""The Overview's narrowing (alliance, tumour sites, period, rug or list) is kept between views (a real-data review:
Streamlit drops a widget's value when a run does not draw it, so going Overview -> Indicator -> Outliers & export
listed every national result, and coming back to the Overview showed everyone again).

Oracle: the values set by hand in the Overview; a link (a new session, or Back/Forward) still says what it shows."""

from __future__ import annotations

import csv
from pathlib import Path

from app_support import open_app

ROOT = Path(__file__).resolve().parents[1]


def _third_alliance() -> str:
    with (ROOT / "sample_data" / "trusts.csv").open(newline="") as fh:
        return sorted({r["cancer_alliance"] for r in csv.DictReader(fh)})[2]


def _narrowed():
    alliance = _third_alliance()
    at = open_app(timeout=300, view="Overview")
    at.selectbox(key="ov_alliance").set_value(alliance).run()
    at.multiselect(key="ov_sites").set_value(["Lung", "Bowel"]).run()
    at.radio(key="ov_show").set_value(at.radio(key="ov_show").options[1]).run()
    assert not at.exception
    return at, alliance


def test_via_a_third_view_the_outlier_list_starts_from_the_overviews_narrowing() -> None:
    at, alliance = _narrowed()
    at.sidebar.radio[0].set_value("Indicator").run()
    assert not at.exception
    at.sidebar.radio[0].set_value("Outliers & export").run()
    assert not at.exception
    assert at.multiselect(key="out_alliance").value == [alliance]
    assert sorted(at.multiselect(key="out_sites").value) == ["Bowel", "Lung"]


def test_coming_back_to_the_overview_keeps_its_choices() -> None:
    at, alliance = _narrowed()
    show = at.radio(key="ov_show").value
    at.sidebar.radio[0].set_value("Trust profile").run()
    at.sidebar.radio[0].set_value("Cancer Alliance").run()
    at.sidebar.radio[0].set_value("Overview").run()
    assert not at.exception
    assert at.selectbox(key="ov_alliance").value == alliance
    assert sorted(at.multiselect(key="ov_sites").value) == ["Bowel", "Lung"]
    assert at.radio(key="ov_show").value == show


def test_a_link_still_opens_what_it_says() -> None:
    """A new session opened at a link has nothing kept: the Overview shows what the link asks (every site here)."""
    at = open_app(timeout=300, view="Overview", site="Lung")
    assert at.multiselect(key="ov_sites").value == ["Lung"]
    assert at.selectbox(key="ov_alliance").value == "All"


def test_an_alliance_chosen_in_the_first_question_narrows_the_outlier_list() -> None:
    """A review: "Which trust or Cancer Alliance?" answered with an alliance, then Outliers & export listed all 52
    national flags."""
    alliance = _third_alliance()
    at = open_app(timeout=300, view="Overview")
    at.selectbox(key="ov_find").set_value(f"cancer_alliance:{alliance}").run()
    assert not at.exception
    at.sidebar.radio[0].set_value("Outliers & export").run()
    assert at.multiselect(key="out_alliance").value == [alliance]


def test_units_with_no_data_are_offered_last(monkeypatch) -> None:
    """With the reference geography (every NHS trust), units without a row of data come after the alliances, and
    say so: typing "East Midlands" and Enter picked the ambulance trust."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE",
                       str(ROOT / "examples" / "cwt_faster_diagnosis" / "indicators.yaml"))
    at = open_app(timeout=300, view="Overview")
    assert not at.exception
    box = at.selectbox(key="ov_find")
    options = box.options
    empty = [i for i, o in enumerate(options) if o.endswith("(no data)")]
    alliances = [i for i, o in enumerate(options) if o.startswith("Cancer Alliance: ")]
    assert empty and alliances and min(empty) > max(alliances)
    assert any("AMBULANCE" in options[i].upper() for i in empty)
    first_east_midlands = next(o for o in options if "east midlands" in o.lower())
    assert first_east_midlands.startswith("Cancer Alliance: ")
