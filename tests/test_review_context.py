"""Context kept between views (a real-data review, 2026-12-03):
- the Cancer Alliance view opens on the alliance of the trust the person was looking at (from a trust profile it
  opened the first alliance in the list); a link's alliance= still wins, and with no trust in view the first
  alliance is shown as before;
- the Overview's narrowing (an alliance, tumour sites) is carried to the outlier list (it listed every result).

Oracle: the units file's own alliance for each trust (read with the csv module)."""

from __future__ import annotations

import csv
from pathlib import Path

from app_support import open_app, url_params

ROOT = Path(__file__).resolve().parents[1]


def _alliances() -> dict[str, str]:
    with (ROOT / "sample_data" / "trusts.csv").open(newline="") as fh:
        return {r["trust_code"]: r["cancer_alliance"] for r in csv.DictReader(fh)}


def _last_trust_not_in_first_alliance() -> tuple[str, str]:
    own = _alliances()
    first = sorted(set(own.values()))[0]
    code = sorted(c for c, a in own.items() if a != first)[-1]
    return code, own[code]


def test_from_a_trust_profile_the_alliance_view_opens_on_its_alliance() -> None:
    code, alliance = _last_trust_not_in_first_alliance()
    at = open_app(timeout=300, view="Trust profile", trust=code)
    assert not at.exception and at.selectbox(key="trust_code").value == code
    at.sidebar.radio[0].set_value("Cancer Alliance").run()
    assert not at.exception
    assert at.selectbox(key="alliance").value == alliance


def test_a_link_to_an_alliance_still_opens_that_alliance() -> None:
    own = _alliances()
    wanted = sorted(set(own.values()))[1]
    at = open_app(timeout=300, view="Cancer Alliance", alliance=wanted)
    assert at.selectbox(key="alliance").value == wanted


def test_with_no_trust_in_view_the_first_alliance_is_shown() -> None:
    at = open_app(timeout=300, view="Cancer Alliance")
    assert at.selectbox(key="alliance").value == sorted(set(_alliances().values()))[0]


def test_the_overviews_narrowing_is_carried_to_the_outlier_list() -> None:
    """A real-data review: Overview narrowed to an alliance and Lung, then the sidebar's Outliers & export listed
    every national result. The list now starts from the same narrowing (and its link says so)."""
    own = _alliances()
    alliance = sorted(set(own.values()))[2]
    at = open_app(timeout=300, view="Overview")
    at.selectbox(key="ov_alliance").set_value(alliance).run()
    at.multiselect(key="ov_sites").set_value(["Lung"]).run()
    at.sidebar.radio[0].set_value("Outliers & export").run()
    assert not at.exception
    assert at.multiselect(key="out_alliance").value == [alliance]
    assert at.multiselect(key="out_sites").value == ["Lung"]
    url = url_params(at)
    assert url["alliance"] == [alliance] and url["site"] == ["Lung"]


def test_an_unnarrowed_overview_carries_nothing() -> None:
    at = open_app(timeout=300, view="Overview")
    at.sidebar.radio[0].set_value("Outliers & export").run()
    assert at.multiselect(key="out_alliance").value == [] and at.multiselect(key="out_sites").value == []


def test_units_without_any_data_are_left_out_of_the_rug_and_counted(monkeypatch) -> None:
    """A real-data review: with the reference geography of every NHS trust, the Cancer Waiting Times rug was about
    100 rows of blank 'not assessed' squares (ambulance, community and mental-health trusts have no cancer rows).
    Oracle: the run's own table, counted here: units whose every indicator row says 'no data'."""
    import polars as pl
    from streamlit.testing.v1 import AppTest

    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.pipeline import run_audit

    catalogue = ROOT / "examples" / "cwt_faster_diagnosis" / "indicators.yaml"
    run = run_audit(load_catalogue(catalogue))
    trusts = pl.concat([r.table.filter(pl.col("level") == "trust", pl.col("period") == r.pooled_period)
                        .select("unit_code", "unit_name", "not_assessed_reason") for r in run.results.values()])
    per_unit = trusts.group_by("unit_code", "unit_name").agg(
        (pl.col("not_assessed_reason") == "no data").fill_null(False).all())
    empty = per_unit.filter(pl.col("not_assessed_reason"))
    assert 0 < empty.height < per_unit.height
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    monkeypatch.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    assert not at.exception
    said = [c.value for c in at.caption if "no data for any indicator shown" in c.value]
    assert said == [f"{empty.height} units in the units file have no data for any indicator shown and are left out "
                    "of the rug and the list."]
