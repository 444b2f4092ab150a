"""Export file names say what they hold (#period1, new-user review defect 11): the audit, the grouping that
exists and the real period, so the lists of the three real examples no longer all download as
``outliers_all-cancer-alliances_all-indicators_all_<date>.csv`` and overwrite each other.

Oracle: the examples' own catalogues (their ``audit``, ``units.groups`` and ``period``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from audit_metrics import export, sharing
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
EXAMPLES = ROOT / "examples"
ON = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
NAMES = {
    "shmi": "outliers_SHMI-HSCIC-January-2014_all-indicators_July-2012-to-June-2013_2026-12-03.csv",
    "shmi_series": "outliers_SHMI-HSCIC-October-2011-to-April-2014-publications_all-indicators_2014-04-01_2026-12-03.csv",
    "cwt_62_day": "outliers_Cancer-Waiting-Times-62-day-standard-NHS-England_all-cancer-alliances_all-indicators_"
                  "October-2023_2026-12-03.csv",
    "cwt_faster_diagnosis": "outliers_Cancer-Waiting-Times-28-day-Faster-Diagnosis-NHS-England_all-cancer-alliances_"
                            "all-indicators_October-2023_2026-12-03.csv",
}


def _export(catalogue: Path, **filters) -> sharing.OutlierExport:
    loaded = load_catalogue(catalogue)
    return sharing.build_outlier_export(run_audit(loaded), loaded, sharing.OutlierFilters(**filters), built_at=ON)


def test_each_example_has_its_own_name() -> None:
    names = {ex: _export(EXAMPLES / ex / "indicators.yaml").file_name("csv") for ex in NAMES}
    assert names == NAMES
    assert len(set(names.values())) == len(names)
    assert "alliance" not in names["shmi"]  # the SHMI trusts have no grouping
    for name in names.values():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*\.csv", name) and len(name) < 228


def test_bundled_catalogue_names_its_audits(catalogue_path: Path) -> None:
    """Ten audits in indicators.yaml: a count; one audit's site: its name; the rest of the name as before."""
    assert (_export(catalogue_path).file_name("xlsx")
            == "outliers_10-audits_all-cancer-alliances_all-indicators_headline-periods_2026-12-03.xlsx")
    assert (_export(catalogue_path, tumour_sites=("Bowel",), period="2022/23").file_name("csv")
            == "outliers_National-Bowel-Cancer-Audit_all-cancer-alliances_Bowel_2022-23_2026-12-03.csv")


def test_catalogue_stem_when_the_audits_differ(catalogue_path: Path, tmp_path: Path) -> None:
    loaded = load_catalogue(catalogue_path)
    run = run_audit(loaded, only=["lung_cns", "bowel_mort90"])
    renamed = tmp_path / "northern_audits.yaml"
    assert sharing.source_label(run, loaded, list(run.results)) == "2 audits"
    assert sharing.source_label(run, replace(loaded, path=renamed), list(run.results)) == "northern_audits"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example")', "../../etc/passwd", "a\\b/c:d*e?f\"g|h",
                                  "Hôpital " * 30])
def test_long_or_hostile_audit_names_stay_safe(text: str) -> None:
    name = export.download_name("outliers", text, "x" * 100, "y" * 100, text, on=ON, suffix="csv", max_length=60)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*\.csv", name), name
    assert len(name) <= 8 + 4 * 61 + 11 + 4
    assert export.download_name("a", "b" * 200, on=None, suffix="csv", max_length=500) == "a_" + "b" * 60 + ".csv"


def test_outliers_view_offers_the_shmi_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's two download buttons on the SHMI example: its audit and period, no Cancer Alliances."""
    names: list[str] = []
    original = DeltaGenerator.download_button

    def recording(self, *args, **kwargs):
        names.append(kwargs.get("file_name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(EXAMPLES / "shmi" / "indicators.yaml"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Outliers & export"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    stem = r"outliers_SHMI-HSCIC-January-2014_all-indicators_July-2012-to-June-2013_\d{4}-\d{2}-\d{2}"
    assert len(names) == 2
    assert re.fullmatch(stem + r"\.csv", names[0]) and re.fullmatch(stem + r"\.xlsx", names[1]), names
