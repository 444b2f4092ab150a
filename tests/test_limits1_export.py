"""The outlier export names each indicator's own limits (#limits1, review defect 3 and 8).

Oracles: the catalogue's own ``limits`` and the publisher's PO_LL / PO_UL (exact Poisson 99.8%) for Blackpool RXL.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit_metrics import sharing
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

SHMI = Path(__file__).resolve().parents[1] / "examples" / "shmi"
WHEN = datetime(2026, 12, 3, tzinfo=UTC)


def _export(path: Path) -> sharing.OutlierExport:
    loaded = load_catalogue(path)
    return sharing.build_outlier_export(run_audit(loaded), loaded, sharing.OutlierFilters(), built_at=WHEN)


@pytest.fixture(scope="module")
def shmi() -> sharing.OutlierExport:
    return _export(SHMI / "indicators.yaml")


def _rows(ex: sharing.OutlierExport) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ex.csv_bytes().decode("utf-8-sig"))))


def test_single_limit_is_headed_by_its_own_coverage_not_95(shmi) -> None:
    rows = _rows(shmi)
    rxl = next(r for r in rows if r["Indicator id"] == "shmi_poisson" and r["Trust code"] == "RXL")
    # the publication's PO_LL / PO_UL (99.8%) for RXL, under the alert (only) limit, stated as 99.8%
    assert float(rxl["Lower alert limit"]) == pytest.approx(0.9337, abs=5e-5)
    assert float(rxl["Upper alert limit"]) == pytest.approx(1.0695, abs=5e-5)
    assert float(rxl["Alert limit coverage (0-1)"]) == 0.998
    assert rxl["Alarm limit coverage (0-1)"] == "" and rxl["Lower alarm limit"] == ""
    both = next(r for r in rows if r["Indicator id"] == "shmi" and r["Trust code"] == "RXL")
    assert (float(both["Alert limit coverage (0-1)"]), float(both["Alarm limit coverage (0-1)"])) == (0.95, 0.998)
    headings = rows[0].keys()
    assert not [h for h in headings if "95%" in h or "99.8%" in h], headings
    # chance counts: 141 trusts x (1 - 0.998) under a heading that names no coverage of its own
    assert float(rxl["Trusts expected outside the alert limits by chance"]) == pytest.approx(141 * 0.002)


def test_tau2_is_zero_where_no_variance_was_added(shmi) -> None:
    rows = _rows(shmi)
    poisson = {r["Between-trust variance (tau2)"] for r in rows if r["Indicator id"] == "shmi_poisson"}
    assert {float(v) for v in poisson} == {0.0}  # not applied: the read-me says 0
    applied = {float(r["Between-trust variance (tau2)"]) for r in rows if r["Indicator id"] == "shmi"}
    assert len(applied) == 1 and applied.pop() > 0
    note = dict(((s, k), v) for s, k, v in shmi.readme.rows)[("Columns of 'results'", "Between-trust variance (tau2)")]
    assert "0 when none was added" in note


def test_readme_words_come_from_each_indicators_limits(shmi) -> None:
    contents = dict(((s, k), v) for s, k, v in shmi.readme.rows)[("About", "Contents")]
    assert "shmi: alert outside 95%, alarm outside 99.8%" in contents
    assert "shmi_poisson: alert outside 99.8%, its only limits" in contents
    assert "outside the 95% limits; alarm" not in contents


def test_other_limits_are_named_as_such(tmp_path: Path) -> None:
    text = (SHMI / "indicators.yaml").read_text().replace("limits: [0.95, 0.998]", "limits: [0.90, 0.99]")
    (tmp_path / "indicators.yaml").write_text(text)
    (tmp_path / "SHMI-January_2014.csv").symlink_to(SHMI / "SHMI-January_2014.csv")
    ex = _export(tmp_path / "indicators.yaml")
    shmi = [r for r in _rows(ex) if r["Indicator id"] == "shmi"]
    assert shmi and {(r["Alert limit coverage (0-1)"], r["Alarm limit coverage (0-1)"]) for r in shmi} == {("0.9", "0.99")}
    ex_one = sharing.limits_contents(run_audit(load_catalogue(tmp_path / "indicators.yaml")), ["shmi"])
    assert ex_one == "alert: outside the 90% limits; alarm: outside the 99% limits"
