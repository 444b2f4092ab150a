"""The real examples in examples/ (issue #9, item 11): published NHS tables, run end to end through the
command line and the dashboard, and checked against what their publishers printed."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.cli import main
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
CWT = ROOT / "examples" / "cwt_faster_diagnosis"
SHMI = ROOT / "examples" / "shmi"
VIEWS = ("Overview", "Indicator", "Trust profile", "Cancer Alliance", "Inequalities", "Outliers & export",
         "Indicator catalogue", "Data", "Releases")


def _published_rows(path: Path, *, skip: int, encoding: str = "utf-8") -> list[dict[str, str]]:
    """The publisher's table read with Python's csv module (independent of the code under test)."""
    with path.open(encoding=encoding, newline="") as fh:
        lines = list(csv.reader(fh))
    header = [h.strip() for h in lines[skip]]
    return [dict(zip(header, row, strict=False)) for row in lines[skip + 1:]]


def _each_view(monkeypatch: pytest.MonkeyPatch, catalogue: Path) -> Iterator[tuple[str, AppTest]]:
    """Every view of the dashboard on this catalogue, each rendered without an exception or error."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    for view in VIEWS:
        at = AppTest.from_file(APP, default_timeout=180)
        at.query_params["view"] = view
        at.run()
        assert not at.exception, (view, [e.value for e in at.exception])
        assert not at.error, (view, [e.value for e in at.error])
        yield view, at


# ------------------------------------------------------------------ Cancer Waiting Times (28-day FDS)


@pytest.fixture(scope="module")
def cwt_run():
    return run_audit(load_catalogue(CWT / "indicators.yaml"))


def test_cwt_example_runs_from_the_readme_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, acc = tmp_path / "fds.xlsx", tmp_path / "accounting.csv"
    assert main(["run", str(CWT / "indicators.yaml"), "--out", str(out), "--accounting-out", str(acc)]) == 0
    printed = capsys.readouterr().out
    assert "fds: 1,977 rows read, 1,944 used" in printed
    assert "8 unit code(s) in ODS CODE (1) are not in the units file: GEC (1 row)" in printed
    results = pl.read_excel(out)
    assert set(results["level"].unique()) == {"trust", "cancer_alliance", "region", "national"}
    assert results.filter(pl.col("level") == "cancer_alliance")["unit_code"].n_unique() == 21


def test_cwt_accounting_balances_row_by_row(cwt_run) -> None:
    acc = cwt_run.datasets["fds"]
    assert acc.balanced and acc.rows_read == 1977  # lines 10-1986 of the published file
    reasons = {e.reason: e.rows for e in acc.exclusions}
    # the publisher's national total rows have no ODS code; a spacer line separates them from the trusts
    assert reasons == {"missing unit code (ODS CODE (1))": 21, "unknown unit code in ODS CODE (1)": 11,
                       "blank row": 1}
    assert any("lines 1-8 above them" in n for n in acc.notes)


@pytest.mark.parametrize(("indicator", "cancer"), [
    ("fds_lung", "Suspected lung cancer"), ("fds_lower_gi", "Suspected lower gastrointestinal cancer"),
    ("fds_breast", "Suspected breast cancer"), ("fds_skin", "Suspected skin cancer")])
def test_cwt_national_figures_against_the_published_england_row(cwt_run, indicator: str, cancer: str) -> None:
    """Oracle: NHS England's own 'ALL ENGLISH PROVIDERS' row, less the rows of providers that are not
    NHS trusts in the reference geography (independent-sector codes, excluded and named), read with the
    csv module. Exact: counts are whole numbers."""
    rows = [r for r in _published_rows(CWT / "28-day-faster-diagnosis-provider-2023-10.csv", skip=8)
            if r.get("REFERRAL ROUTE") == "URGENT SUSPECTED CANCER"
            and r.get("SUSPECTED CANCER OR BREAST SYMPTOMATIC (2)") == cancer]
    england = next(r for r in rows if r["ACCOUNTABLE PROVIDER"] == "ALL ENGLISH PROVIDERS")
    trusts = set(pl.read_csv(ROOT / "reference" / "nhs_trusts.csv")["trust_code"])
    others = [r for r in rows if r["ODS CODE (1)"] and r["ODS CODE (1)"] not in trusts]
    total = int(england["TOTAL"]) - sum(int(r["TOTAL"]) for r in others)
    within = int(england["WITHIN 28 DAYS"]) - sum(int(r["WITHIN 28 DAYS"]) for r in others)
    nation = cwt_run.results[indicator].table.filter(pl.col("level") == "national").row(0, named=True)
    assert (nation["denominator"], nation["observed"]) == (total, within)


def test_cwt_every_view_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    for view, at in _each_view(monkeypatch, CWT / "indicators.yaml"):
        if view == "Cancer Alliance":
            assert at.selectbox(key="alliance").label == "Cancer Alliance"
            assert len(at.selectbox(key="alliance").options) == 21
        if view == "Overview":
            assert "Synthetic sample data" not in " ".join(i.value for i in at.info)


# ------------------------------------------------------------------ SHMI (HSCIC, January 2014)


@pytest.fixture(scope="module")
def shmi_run():
    return run_audit(load_catalogue(SHMI / "indicators.yaml"))


@pytest.fixture(scope="module")
def shmi_published() -> pl.DataFrame:
    rows = [r for r in _published_rows(SHMI / "SHMI-January_2014.csv", skip=0, encoding="cp1252")
            if r.get("INDICATOR_CODE") == "I00699"]
    return pl.DataFrame(rows).select(
        pl.col("PROVIDER").alias("unit_code"),
        *[pl.col(c).cast(pl.Float64) for c in ("OBSERVED", "EXPECTED", "VALUE", "PO_LL", "PO_UL", "OD_LL", "OD_UL")],
        pl.col("OD_BANDING").cast(pl.Int64))


def test_shmi_reproduces_the_published_limits_and_bandings(shmi_run, shmi_published: pl.DataFrame) -> None:
    """Oracle: the publisher's own OD_LL / OD_UL (95% limits, random effects on 10%-trimmed z-scores) and
    OD_BANDING (1 higher, 2 as expected, 3 lower than expected) for all 141 trusts. Tolerance 5e-5: the
    file prints limits to 4 decimal places."""
    table = shmi_run.results["shmi"].table.filter(pl.col("level") == "trust").join(shmi_published, on="unit_code")
    assert table.height == 141
    np.testing.assert_allclose(table["value"], table["VALUE"], atol=5e-5 + 1e-12)
    np.testing.assert_allclose(table["lower_alert"], table["OD_LL"], atol=5e-5 + 1e-12)
    np.testing.assert_allclose(table["upper_alert"], table["OD_UL"], atol=5e-5 + 1e-12)
    status = table["status"].cast(pl.String)
    banding = (pl.when(status.str.ends_with("_high")).then(1).when(status.str.ends_with("_low")).then(3)
               .otherwise(2))
    ours = table.select(banding.alias("band"))["band"]
    assert (ours == table["OD_BANDING"]).all()
    assert (table["OD_BANDING"] != 2).sum() == 26  # what the publication flagged


def test_shmi_reproduces_the_published_poisson_limits(shmi_run, shmi_published: pl.DataFrame) -> None:
    """Oracle: PO_LL / PO_UL, the publisher's exact Poisson 99.8% limits (4 decimal places)."""
    table = (shmi_run.results["shmi_poisson"].table.filter(pl.col("level") == "trust")
             .join(shmi_published, on="unit_code"))
    assert table.height == 141
    np.testing.assert_allclose(table["lower_alert"], table["PO_LL"], atol=5e-5 + 1e-12)
    np.testing.assert_allclose(table["upper_alert"], table["PO_UL"], atol=5e-5 + 1e-12)


def test_shmi_example_runs_from_the_readme_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shmi.xlsx"
    assert main(["run", str(SHMI / "indicators.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # the copyright line and the blank line above it are below the table: read, reported, not data
    assert "shmi: 143 rows read, 141 used" in printed
    assert "2 excluded: below the table (blank line, note or footnote) (e.g. line 143, 144)" in printed
    assert pl.read_excel(out).filter(pl.col("level") == "trust").height == 282


def test_shmi_every_view_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    for view, at in _each_view(monkeypatch, SHMI / "indicators.yaml"):
        if view == "Cancer Alliance":  # units from the table itself: no grouping, said plainly
            assert "No grouping is defined" in " ".join(i.value for i in at.info)


# ------------------------------------------------------------------ SHMI series: eleven publications, never pooled

SHMI_SERIES = ROOT / "examples" / "shmi_series"


@pytest.fixture(scope="module")
def shmi_series_run():
    return run_audit(load_catalogue(SHMI_SERIES / "indicators.yaml"))


def test_shmi_series_reproduces_every_publication(shmi_series_run) -> None:
    """Oracle: each of the eleven HSCIC publications (Oct 2011 - Apr 2014, 1,576 trust rows), its printed
    SHMI value, 95% limits (OD_LL, OD_UL: 4 decimals, so 5e-5) and banding. `pooled: false` assesses each
    publication against its own national value and its own overdispersion estimate, as the publisher did."""
    published = pl.DataFrame(_published_rows(SHMI_SERIES / "shmi_2011-10_to_2014-04.csv", skip=0)).select(
        pl.col("DATE").alias("period"), pl.col("PROVIDER").alias("unit_code"),
        *[pl.col(c).cast(pl.Float64) for c in ("VALUE", "OD_LL", "OD_UL")], pl.col("OD_BANDING").cast(pl.Int64))
    result = shmi_series_run.results["shmi"]
    table = result.table.filter(pl.col("level") == "trust").join(published, on=["period", "unit_code"])
    assert table.height == 1576 and table["period"].n_unique() == 11
    assert result.table["period"].n_unique() == 11  # no pooled row: the windows overlap
    np.testing.assert_allclose(table["value"], table["VALUE"], atol=5e-5 + 1e-12)
    np.testing.assert_allclose(table["lower_alert"], table["OD_LL"], atol=5e-5 + 1e-12)
    np.testing.assert_allclose(table["upper_alert"], table["OD_UL"], atol=5e-5 + 1e-12)
    status = pl.col("status").cast(pl.String)
    band = pl.when(status.str.ends_with("_high")).then(1).when(status.str.ends_with("_low")).then(3).otherwise(2)
    mismatched = table.with_columns(band.alias("band")).filter(pl.col("band") != pl.col("OD_BANDING"))
    assert mismatched.height == 0, mismatched.select("period", "unit_code", "status", "OD_BANDING")
    flagged = table.group_by("period").agg((pl.col("OD_BANDING") != 2).sum().alias("n")).sort("period")
    assert flagged["n"].to_list() == [28, 25, 23, 26, 26, 27, 28, 26, 24, 26, 25]


def test_shmi_series_names_come_from_the_latest_row_that_gives_one(shmi_series_run) -> None:
    """Later publications leave PROVIDER NAME blank for some trusts (RVJ from July 2012); two trusts are never
    named (R1F, R1H): a unit keeps its last published name, and a unit never named goes by its code."""
    trusts = shmi_series_run.results["shmi"].table.filter(pl.col("level") == "trust")
    names = dict(trusts.select("unit_code", "unit_name").unique().iter_rows())
    assert names["RVJ"] == "NORTH BRISTOL NHS TRUST"
    assert names["R1H"] == "R1H" and names["R1F"] == "R1F"
    assert trusts["unit_name"].null_count() == 0


def test_shmi_series_runs_from_the_readme_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shmi_series.csv"
    assert main(["run", str(SHMI_SERIES / "indicators.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "shmi: 1,576 rows read, 1,576 used" in printed
    assert "shmi [2014-04-01]: 141/149 units assessed" in printed  # the latest publication leads
    assert "2014-04-01" in out.read_text()


def test_shmi_series_every_view_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    for view, at in _each_view(monkeypatch, SHMI_SERIES / "indicators.yaml"):
        if view == "Overview":  # rolling windows are never offered as pooled; every publication is listed
            period = at.selectbox(key="ov_period")
            assert period.options[0] == "Latest period (2014-04-01)"
            assert len(period.options) == 1 + 11 and "2011-10-01" in period.options  # the headline + each
            assert not any("pooled" in o.lower() for o in period.options)
