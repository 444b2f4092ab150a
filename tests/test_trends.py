"""Indicators over time on the sample: the planted changes are found by SPC and CUSUM, not the funnel.

Known truth: ``audit_metrics.sample_trends.PLANTED_TRENDS`` (a gradual deterioration at ZE5 and an
improvement at ZG1, both starting in month 18, October 2022, and close to expected over the three
years). Oracles for the series: the funnel pipeline's own national counts (observed and expected
events) for the same indicator, which the monthly series must add up to.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audit_metrics import trends
from audit_metrics.catalogue import load_catalogue
from audit_metrics.io import load_all
from audit_metrics.pipeline import run_audit
from audit_metrics.sample_trends import FIRST_MONTH, MONTHS, PLANTED_TRENDS, write_monthly

INDICATOR = "sact_mort30"


@pytest.fixture(scope="module")
def setup(catalogue_path: Path):
    loaded = load_catalogue(catalogue_path)
    units, datasets = load_all(loaded, only=[INDICATOR])
    spec = next(s for s in loaded.catalogue.indicators if s.id == INDICATOR)
    cohort = trends.trend_cohort(loaded, spec, datasets["monthly_outcomes"],
                                 groups=units.frame.select("unit_code", *units.groups))
    run = run_audit(loaded, only=[INDICATOR])
    return loaded, spec, cohort, run


def test_monthly_sample_regenerates_byte_identical(tmp_path: Path, root: Path) -> None:
    path = write_monthly(tmp_path)
    assert path.read_bytes() == (root / "sample_data" / "monthly_outcomes.parquet").read_bytes()


def test_sample_has_36_months(setup) -> None:
    _, _, cohort, _ = setup
    assert len(cohort.months) == MONTHS >= 36
    assert cohort.months[0] == FIRST_MONTH
    per_trust = cohort.frame.group_by("unit_code").agg(pl.col("month").n_unique())
    assert per_trust.height == 140 and (per_trust["month"] == MONTHS).sum() >= 130  # small trusts skip a month
    planted = per_trust.filter(pl.col("unit_code").is_in([p.trust_code for p in PLANTED_TRENDS]))
    assert (planted["month"] == MONTHS).all()


def test_series_add_up_to_the_funnel_counts(setup) -> None:
    """Oracle: the funnel pipeline's national observed and expected events for the same indicator."""
    _, _, cohort, run = setup
    national = run.results[INDICATOR].table.filter(pl.col("level") == "national").row(0, named=True)
    series = trends.monthly_series(cohort)
    assert series["observed"].sum() == national["observed"]
    assert series["patients"].sum() == national["denominator"]
    np.testing.assert_allclose(series["expected"].sum(), national["expected"], rtol=1e-9)
    assert not cohort.exclusions  # every cohort patient has a date and an outcome: all are charted
    trust = run.results[INDICATOR].table.filter(pl.col("level") == "trust", pl.col("unit_code") == "ZE5").row(0, named=True)
    ze5 = trends.monthly_series(cohort, unit="ZE5")
    np.testing.assert_allclose(ze5["expected"].sum(), trust["expected"], rtol=1e-9)
    region = trends.monthly_series(cohort, level="region", unit="Westmere")
    assert region["patients"].sum() == cohort.frame.filter(pl.col("region") == "Westmere").height


@pytest.mark.parametrize("planted", PLANTED_TRENDS, ids=[p.trust_code for p in PLANTED_TRENDS])
def test_planted_change_found_over_time_but_not_by_the_funnel(setup, planted) -> None:
    _, spec, cohort, run = setup
    change = date(FIRST_MONTH.year + (FIRST_MONTH.month - 1 + planted.change_month) // 12,
                  (FIRST_MONTH.month - 1 + planted.change_month) % 12 + 1, 1)
    funnel = run.results[INDICATOR].table.filter(pl.col("level") == "trust", pl.col("unit_code") == planted.trust_code)
    assert funnel["status"][0] == "within"  # the pooled funnel alone does not see it

    trend = trends.unit_trend(cohort, spec, unit=planted.trust_code, with_arl=False)
    worse = planted.direction == "deterioration"
    assert trend.xmr.variation == ("special_cause_concern" if worse else "special_cause_improvement")
    signal = trend.xmr.latest_signal()
    assert signal["current"] and signal["start"] > change
    assert trend.sentence.startswith(("Concerning since " if worse else "Improving since ")
                                     + f"{signal['start']:%B %Y}: "), trend.sentence
    assert trend.laney.variation == trend.xmr.variation

    signals = trend.cusum.signals()
    mine = signals.filter(pl.col("direction") == planted.direction)
    assert mine.height >= 1 and (mine["x"] > change).all()
    assert signals["direction"][-1] == planted.direction  # the latest signal is the planted change


def test_stable_trust_national_and_alliance_charts(setup) -> None:
    _, spec, cohort, _ = setup
    national = trends.unit_trend(cohort, spec)
    assert national.cusum is None and national.xmr.table.height == MONTHS
    assert national.sentence.startswith("Common cause variation")
    alliance = trends.unit_trend(cohort, spec, level="cancer_alliance", unit="Silverdale Cancer Alliance")
    assert alliance.xmr.table.height == MONTHS


def test_rebase_starts_a_new_period(setup) -> None:
    _, spec, cohort, _ = setup
    t = trends.unit_trend(cohort, spec, unit="ZE5", rebase=(date(2022, 10, 1),), with_arl=False).xmr.table
    assert t["rebase_group"].to_list() == [0] * 18 + [1] * 18
    assert t["mean"][0] < t["mean"][-1]


def test_arl_is_reported_with_the_chart(setup) -> None:
    _, spec, cohort, _ = setup
    t = trends.unit_trend(cohort, spec, unit="ZG1", arl_chains=200)
    assert t.arl_up.arl > 1000 and t.arl_up.censored == 0
    assert "years at this unit's volume" in t.arl_up.describe(t.patients_per_year)


def test_indicator_without_dates_has_no_trend(catalogue_path: Path) -> None:
    loaded = load_catalogue(catalogue_path)
    _, datasets = load_all(loaded, only=["lung_cns"])
    spec = next(s for s in loaded.catalogue.indicators if s.id == "lung_cns")
    assert trends.trend_cohort(loaded, spec, datasets["lung_cns"]) is None


@pytest.mark.parametrize("indicator", ["bowel_emergency_dx", "bowel_mort90"])
def test_patients_extract_charted_by_diagnosis_month(tmp_path: Path, root: Path, indicator: str) -> None:
    """The patients extract, charted by diagnosis month once the dataset declares its date column: an
    unadjusted proportion (p′ chart, no CUSUM) and a risk-adjusted outcome with blank outcomes. Every
    cohort patient is charted or excluded with the funnel's reason. Oracle: the funnel pipeline's
    national counts and cohort accounting for the same indicator."""
    import shutil

    shutil.copytree(root / "sample_data", tmp_path / "sample_data")
    text = (root / "indicators.yaml").read_text()
    marker = "    period_column: financial_year\n    key: [patient_id]\n"
    assert marker in text
    (tmp_path / "indicators.yaml").write_text(text.replace(marker, marker + "    date_column: diagnosis_date\n", 1))
    loaded = load_catalogue(tmp_path / "indicators.yaml")
    _, datasets = load_all(loaded, only=[indicator])
    spec = next(s for s in loaded.catalogue.indicators if s.id == indicator)
    cohort = trends.trend_cohort(loaded, spec, datasets["patients"])
    assert cohort.risk_adjusted == (spec.risk_adjustment is not None)
    run = run_audit(loaded, only=[indicator])
    result = run.results[indicator]
    whole = result.table.filter(pl.col("level") == "national").sort(pl.col("period").str.len_chars())
    national = whole.row(-1, named=True)  # the whole period ("2021/22 to 2023/24"), not a single year
    series = trends.monthly_series(cohort)
    assert series["observed"].sum() == national["observed"] and series["patients"].sum() == national["denominator"]
    assert len(cohort.months) == 36
    excluded = {e.reason: e.rows for e in cohort.exclusions}
    funnel = {e.reason: e.rows for e in run.results[indicator].accounting.exclusions if e.reason != "not in the cohort"}
    assert excluded == funnel
    assert cohort.frame.height + sum(excluded.values()) == run.results[indicator].accounting.rows_used + sum(funnel.values())
    trend = trends.unit_trend(cohort, spec, unit="ZA4", with_arl=False)
    if cohort.risk_adjusted:
        assert excluded["missing outcome (numerator is blank)"] > 0 and trend.cusum is not None
        assert trend.laney.kind == "u_prime"
    else:
        np.testing.assert_allclose(series["value"].to_numpy(), (series["observed"] / series["patients"]).to_numpy())
        assert trend.laney.kind == "p_prime" and trend.cusum is None
