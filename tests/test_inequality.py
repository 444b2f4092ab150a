"""Inequalities: SII/RII against the documented PHE method, gaps, the funnel of gaps, sample data, sharing.

Oracles (each test names its own):
- the PHE/OHID regression as documented in PHEindicatormethods 2.1.0 ``R/SII_function.R`` (Calculation
  section: ``lm(Y*sqrt(a) ~ sqrt(a) + b*sqrt(a) - 1)``), refitted here with statsmodels' weighted least
  squares, which is the same estimator (WLS of Y on [1, b] with weights a);
- the worked relative-rank example in the same documentation (shares 12% and 10% give ranks 0.06, 0.17);
- the PHE test workbook ``tests/testthat/testdata_SII.xlsx`` (same package and commit as the project's
  other PHE vectors, ``093fd288d8f8949dbcfbed70049dbbf385b6141d``): the records its tests use, extracted
  unchanged into ``tests/reference/phe_sii/testdata_SII_cases.csv`` (provenance and licence in the README there);
- the same breakdown on patient rows and on the aggregate table of their counts (same numbers by construction);
- statsmodels' Wilson interval; the normal distribution (simulations with known truth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from polars.testing import assert_frame_equal
from statsmodels.stats.proportion import proportion_confint

from audit_metrics.catalogue import BreakdownSpec, MethodOptions, SuppressionSpec
from audit_metrics.inequality import (
    NOT_RECORDED,
    assess_gaps,
    gap_status_label,
    inequalities_for_sharing,
    relative_ranks,
    slope_index,
    slope_index_interval,
    slope_index_se,
    slope_index_weights,
    wilson_interval,
)

ROOT = Path(__file__).resolve().parents[1]

# The phe_sii @examples data (R/SII_function.R, PHEindicatormethods 2.1.0): two areas by decile.
EXAMPLE_POPULATION = {
    "Area1": [7291, 7997, 6105, 7666, 5790, 6934, 5918, 5974, 7147, 7534],
    "Area2": [21675, 20065, 19750, 24713, 20112, 19618, 22408, 19752, 18939, 19312],
}
EXAMPLE_VALUE = {
    "Area1": [75.9, 78.3, 83.8, 83.6, 80.5, 81.1, 81.7, 84.2, 80.6, 86.3],
    "Area2": [70.5, 71.6, 72.5, 73.5, 73.1, 76.2, 78.7, 80.6, 80.9, 80],
}
EXAMPLE_SE = {
    "Area1": [1.64, 1.58, 1.51, 1.78, 1.7, 1.56, 1.37, 1.4, 2.43, 1.57],
    "Area2": [0.23, 0.26, 0.3, 0.16, 0.79, 0.78, 0.4, 0.28, 0.23, 0.35],
}


def _wls(y: np.ndarray, population: np.ndarray) -> tuple[float, float]:
    """The documented PHE regression, fitted by statsmodels: intercept and slope on the relative rank."""
    a = np.asarray(population, float) / np.sum(population)
    fit = sm.WLS(np.asarray(y, float), sm.add_constant(relative_ranks(population)), weights=a).fit()
    return float(fit.params[0]), float(fit.params[1])


def test_relative_ranks_documented_example() -> None:
    # PHE documentation: "If quantile 1 then contains 12 percent of the total population, its relative rank
    # is 0.12/2 = 0.06. If quantile 2 includes 10 percent ..., its relative rank is 0.12 + (0.10/2) = 0.17."
    ranks = relative_ranks(np.array([12, 10, 78]))
    assert ranks[:2] == pytest.approx([0.06, 0.17], abs=1e-15)
    assert ranks[2] == pytest.approx(0.61, abs=1e-15)


@pytest.mark.parametrize("area", ["Area1", "Area2"])
def test_sii_rii_match_documented_regression(area: str) -> None:
    pop, value = np.array(EXAMPLE_POPULATION[area]), np.array(EXAMPLE_VALUE[area])
    alpha, beta = _wls(value, pop)
    s = slope_index(value, pop)
    assert s.sii == pytest.approx(beta, rel=1e-10)
    assert s.intercept == pytest.approx(alpha, rel=1e-10)
    assert s.rii == pytest.approx((alpha + beta) / alpha, rel=1e-10)


@pytest.mark.parametrize(("transform", "forward", "back"), [
    ("log", np.log, np.exp),
    ("logit", lambda v: np.log(v / (1 - v)), lambda v: 1 / (1 + np.exp(-v))),
])
def test_transformed_sii_matches_documented_back_transform(transform, forward, back) -> None:
    # PHE transform = TRUE: fit on log (rates) or logit (proportions), SII = f(a + b) - f(a), RII = f(a + b)/f(a)
    rng = np.random.default_rng(11)
    pop = rng.integers(500, 5000, size=5)
    value = np.sort(rng.uniform(0.05, 0.4, size=5))[::-1]
    alpha, beta = _wls(forward(value), pop)
    s = slope_index(value, pop, transform=transform)
    assert s.sii == pytest.approx(back(alpha + beta) - back(alpha), rel=1e-10)
    assert s.rii == pytest.approx(back(alpha + beta) / back(alpha), rel=1e-10)
    assert s.intercept == pytest.approx(back(alpha), rel=1e-10)


def test_slope_weights_are_linear_in_values() -> None:
    rng = np.random.default_rng(3)
    pop = rng.integers(100, 1000, size=7)
    y = rng.normal(size=7)
    w0, w1 = slope_index_weights(pop)
    alpha, beta = _wls(y, pop)
    assert w0 @ y == pytest.approx(alpha, rel=1e-10)
    assert w1 @ y == pytest.approx(beta, rel=1e-10)


def test_monte_carlo_interval_converges_to_exact_se() -> None:
    # value_type "normal": the SII is linear in normally drawn values, so PHE's Monte Carlo interval tends to
    # SII +/- z * se with se = sqrt(sum w^2 se_g^2). Tolerance: 5 Monte Carlo SEs of a 2.5% quantile at
    # N = 200,000 (sqrt(.025 * .975 / N) / phi(1.96) = 0.006 se).
    pop, value, se = (np.array(d["Area1"], float) for d in (EXAMPLE_POPULATION, EXAMPLE_VALUE, EXAMPLE_SE))
    ci = slope_index_interval(value, pop, se, rng=np.random.default_rng(2026), repetitions=200_000)
    s, exact = slope_index(value, pop), slope_index_se(pop, se**2)
    z = 1.959963984540054
    assert ci.sii_lower == pytest.approx(s.sii - z * exact, abs=0.03 * exact)
    assert ci.sii_upper == pytest.approx(s.sii + z * exact, abs=0.03 * exact)
    assert ci.rii_lower < s.rii < ci.rii_upper


def test_wilson_matches_statsmodels() -> None:
    o = np.array([0, 1, 7, 50, 99, 100])
    n = np.array([100, 100, 100, 100, 100, 100])
    lo, hi = wilson_interval(o, n)
    ref_lo, ref_hi = proportion_confint(o, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ PHE test workbook

_PHE_SII = ROOT / "tests" / "reference" / "phe_sii" / "testdata_SII_cases.csv"
# (first, last RecordNo) of each block -> the transform its phe_sii call in testSII.R uses
_PHE_SII_BLOCKS = {(1, 20): "none", (61, 70): "none", (71, 90): "none", (91, 110): "none", (306, 325): "log",
                   (326, 345): "logit"}


@pytest.mark.parametrize(("block", "transform"), list(_PHE_SII_BLOCKS.items()), ids=lambda v: str(v))
def test_against_phe_test_workbook(block: tuple[int, int], transform: str) -> None:
    """PHEindicatormethods 2.1.0 ``tests/testthat/testSII.R``: ``phe_sii(SII_test_grouped[first:last, 3:13],
    Quantile, Population, value = Value, ..., transform = TRUE/FALSE)`` is expected to equal the workbook's
    ``sii``, ``rii`` (and ``Intercept``, where the test asks for it) on each area's first row. The workbook
    prints about 10 significant figures; tolerance rel 1e-6 (the issue's)."""
    data = pl.read_csv(_PHE_SII, infer_schema_length=None)
    rows = data.filter(pl.col("RecordNo").is_between(*block))
    assert rows.height == block[1] - block[0] + 1  # every record of the block was extracted
    areas = list(rows.group_by("Area", maintain_order=True))
    assert len(areas) == 2
    for _, area in areas:
        area = area.sort("Quantile")
        s = slope_index(area["Value"].to_numpy(), area["Population"].to_numpy(), transform=transform)
        assert s.sii == pytest.approx(float(area["sii"][0]), rel=1e-6)
        assert s.rii == pytest.approx(float(area["rii"][0]), rel=1e-6)
        if area["Intercept"][0] is not None:
            assert s.intercept == pytest.approx(float(area["Intercept"][0]), rel=1e-6)


# ------------------------------------------------------------------ the funnel of gaps


def _options(**changes: object) -> MethodOptions:
    base = MethodOptions(limits=(0.95, 0.998), overdispersion="additive", robust="winsorise", trim=0.1,
                         min_denominator=10, min_units=10, limit_method="exact", fdr=False, transform="arcsine")
    return base.replace(**changes)


def test_gap_z_is_difference_over_se_without_overdispersion() -> None:
    rng = np.random.default_rng(5)
    se = rng.uniform(0.01, 0.1, 60)
    gap = 0.05 + rng.normal(0, se)
    a = assess_gaps(gap, se, np.ones(60, bool), national_gap=0.05, options=_options(overdispersion="none"))
    np.testing.assert_allclose(a.z, (gap - 0.05) / se, rtol=1e-12)
    z95 = 1.959963984540054
    flagged = np.abs((gap - 0.05) / se) > z95
    assert np.array_equal(a.status != "within", flagged)
    lo, hi = a.limits[0.95]
    assert np.array_equal((gap < lo) | (gap > hi), flagged)


def test_gap_overdispersion_widens_as_main_funnel() -> None:
    rng = np.random.default_rng(8)
    se = rng.uniform(0.01, 0.05, 120)
    gap = 0.05 + rng.normal(0, np.sqrt(se**2 + 0.03**2))  # true between-unit SD 0.03
    a = assess_gaps(gap, se, np.ones(120, bool), national_gap=0.05, options=_options())
    od = a.overdispersion
    assert od.applied and od.tau2 > 0
    np.testing.assert_allclose(a.z, (gap - 0.05) / np.sqrt(se**2 + od.tau2), rtol=1e-12)
    assert gap_status_label("alert_high") == "wider than expected (alert)"
    assert gap_status_label("alarm_low") == "narrower than expected (alarm)"


def test_gap_funnel_false_alert_rate_is_nominal() -> None:
    """Known truth: every trust has the national deprivation gradient (plus its own level), binomial data.

    100 simulated audits x 200 trusts; the share of trusts outside the 95% limits of the funnel of gaps
    (default options: additive overdispersion, estimated each time) should be 5%. Binomial SE of the rate
    over 20,000 trust-results is 0.15%; the tolerance (3.5% to 6.5%) also allows for the binomial data being
    only approximately normal at small quintile sizes."""
    rng = np.random.default_rng(20261122)
    logit = np.array([-1.4, -1.55, -1.7, -1.85, -2.0])  # national gradient, quintile 1 most deprived
    flagged = assessed = 0
    trusts = 200
    for _ in range(100):
        size = rng.integers(60, 500, size=trusts)
        level = rng.normal(0, 0.25, size=trusts)
        p = 1 / (1 + np.exp(-(logit[None, :] + level[:, None])))
        n = rng.multinomial(size, np.full(5, 0.2)).astype(float) + 10
        o = rng.binomial(n.astype(int), p).astype(float)
        nat_n, nat_o = n.sum(0), o.sum(0)
        nat_p = nat_o / nat_n
        d0 = -slope_index(nat_p, nat_n).sii
        gaps = np.array([-slope_index(o[i] / n[i], n[i]).sii for i in range(trusts)])
        ses = np.array([slope_index_se(n[i], nat_p * (1 - nat_p) / n[i]) for i in range(trusts)])
        a = assess_gaps(gaps, ses, np.ones(trusts, bool), national_gap=d0, options=_options())
        flagged += int(np.sum(np.isin(a.status, ["alert_high", "alert_low", "alarm_high", "alarm_low"])))
        assessed += trusts
    rate = flagged / assessed
    print(f"gap funnel false-alert rate: {rate:.4f} (nominal 0.05)")
    assert 0.035 <= rate <= 0.065


# ------------------------------------------------------------------ sharing


def test_sharing_blanks_small_cells_and_gaps_built_on_them() -> None:
    groups = pl.DataFrame({
        "indicator_id": ["x"] * 4, "breakdown": ["imd_quintile"] * 4, "level": ["trust"] * 4,
        "unit_code": ["A", "A", "B", "B"], "group": ["1", "2", "1", "2"],
        "observed": [3.0, 40.0, 30.0, 40.0], "denominator": [50.0, 60.0, 50.0, 60.0],
        "value": [0.06, 0.67, 0.6, 0.67], "lower_ci": [0.02, 0.5, 0.5, 0.5], "upper_ci": [0.2, 0.8, 0.7, 0.8],
        "status": ["within"] * 4, "status_label": ["as expected"] * 4,
    })
    gaps = pl.DataFrame({"indicator_id": ["x", "x"], "breakdown": ["imd_quintile"] * 2, "level": ["trust"] * 2,
                         "unit_code": ["A", "B"], "sii": [0.5, 0.1], "gap": [0.6, 0.07], "z": [1.0, 0.5],
                         "status": ["within", "within"], "status_label": ["as expected", "as expected"]})
    rule = SuppressionSpec(min_count=1, max_count=7, symbol="*")
    safe, safe_gaps = inequalities_for_sharing(groups, gaps, rule)
    a1 = safe.filter(pl.col("unit_code") == "A", pl.col("group") == "1").row(0, named=True)
    assert a1["observed"] == "*" and a1["value"] is None and a1["lower_ci"] is None
    # secondary: A's other group (its total is shown elsewhere) and B's group 1 (the group's total) too
    assert safe.filter(pl.col("unit_code") == "A", pl.col("group") == "2")["observed"][0] == "*"
    assert safe.filter(pl.col("unit_code") == "B", pl.col("group") == "1")["observed"][0] == "*"
    a = safe_gaps.filter(pl.col("unit_code") == "A").row(0, named=True)
    assert a["sii"] is None and a["gap"] is None and a["status"] is None and a["suppressed"]
    assert a["status_label"] == "not shown (small numbers)"
    assert NOT_RECORDED == "Not recorded"


def test_breakdown_shorthand() -> None:
    assert BreakdownSpec.model_validate("imd_quintile").column == "imd_quintile"


# ------------------------------------------------------------------ on the bundled sample data


@pytest.fixture(scope="module")
def sample_inequalities():
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.inequality import run_inequalities

    loaded = load_catalogue(ROOT / "indicators.yaml")
    only = ["bowel_emergency_dx", "lung_curative_s12", "bowel_mort90"]
    return loaded, run_inequalities(loaded, only=only)


def test_planted_wide_gap_trust_flagged_and_no_gap_trust_not(sample_inequalities) -> None:
    """sample.py plants a much steeper deprivation gradient at ZE5 and none at ZN2 (sample_data/README.md)."""
    _, run = sample_inequalities
    gaps = run.results[("bowel_emergency_dx", "imd_quintile")].gaps
    trust = gaps.filter(pl.col("level") == "trust")
    wide = trust.filter(pl.col("unit_code") == "ZE5").row(0, named=True)
    flat = trust.filter(pl.col("unit_code") == "ZN2").row(0, named=True)
    assert wide["status"] in ("alert_high", "alarm_high"), wide
    assert wide["status_label"].startswith("wider than expected")
    assert flat["status"] == "within", flat
    national = gaps.filter(pl.col("level") == "national").row(0, named=True)
    # the national gradient points the planted way: more emergency presentation among the most deprived
    assert national["gap"] > 0 and national["sii"] < 0 and national["disadvantage_gap"] > 0
    assert national["sii_lower"] < national["sii"] < national["sii_upper"]


def test_every_patient_is_in_a_group_or_reported(sample_inequalities) -> None:
    _, run = sample_inequalities
    result = run.results[("bowel_emergency_dx", "imd_quintile")]
    groups = result.groups
    national = groups.filter(pl.col("level") == "national")
    trusts = groups.filter(pl.col("level") == "trust")
    assert NOT_RECORDED in national["group"].to_list()  # blank IMD shown, not dropped
    assert national["denominator"].sum() == trusts["denominator"].sum()
    assert any("no IMD quintile recorded" in n for n in result.notes)  # the breakdown's label, not its column
    small = result.gaps.filter(pl.col("status") == "not_assessed", pl.col("level") == "trust")
    assert small.height and small["not_assessed_reason"].str.contains("fewer than 10 patients").all()


def test_breakdown_covariate_is_taken_out_of_the_model(sample_inequalities) -> None:
    """lung_curative_s12 adjusts for imd_quintile; the planted national gradient (less curative treatment
    in the most deprived) must survive in the O/E by quintile, so the model for this breakdown omits it."""
    _, run = sample_inequalities
    result = run.results[("lung_curative_s12", "imd_quintile")]
    assert any("taken out of the model" in n for n in result.notes)
    national = result.groups.filter(pl.col("level") == "national", pl.col("group") != NOT_RECORDED).sort(
        "group_order")
    oe = (national["observed"] / national["expected"]).to_numpy()
    assert oe[0] < 1 < oe[-1]  # most deprived fewer than expected, least deprived more
    ethnic = run.results[("lung_curative_s12", "ethnic_group")]
    assert not ethnic.ordered and ethnic.gaps.height == 0
    assert not any("taken out" in n for n in ethnic.notes)


def test_unordered_groups_compared_with_national_group(sample_inequalities) -> None:
    _, run = sample_inequalities
    groups = run.results[("bowel_emergency_dx", "sex")].groups
    trust = groups.filter(pl.col("level") == "trust", pl.col("status") != "not_assessed")
    national = dict(groups.filter(pl.col("level") == "national").select("group", "value").iter_rows())
    for group, value in national.items():
        rows = trust.filter(pl.col("group") == group)
        assert rows.height > 100
        assert np.allclose(rows["national_group_value"].to_numpy(), value, rtol=1e-12)


# ------------------------------------------------------------------ the dashboard view (AppTest)


def test_inequalities_view_apptest() -> None:
    import json

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k, v in {"view": "Inequalities", "indicator": "bowel_emergency_dx", "breakdown": "imd_quintile",
                 "trust": "ZE5"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    assert at.sidebar.radio[0].value == "Inequalities"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 2
    gradient, funnel = charts
    assert {t["name"] for t in gradient["data"]} == {"National", "This unit"}
    assert gradient["data"][0]["x"] == ["1", "2", "3", "4", "5"]  # ordered, most deprived first
    assert "Funnel of gaps" in funnel["layout"]["title"]["text"]
    text = " ".join(m.value for m in at.markdown)
    assert "Gleddale" in text and "wider than expected" in text
    gaps = at.dataframe[0].value
    assert {"sii", "rii", "status_label"} <= set(gaps.columns)
    assert gaps["sii"].dtype.kind == gaps["rii"].dtype.kind == "f"  # numbers sort as numbers (#12 polish)
    # groups too small are shown as such, never dropped: every trust is in the gaps table
    assert len(gaps) == 141  # 140 trusts + national
    groups = at.dataframe[1].value
    assert NOT_RECORDED in list(groups.iloc[:, 0])
    # an unordered breakdown: groups against their national values, no funnel of gaps
    at.selectbox(key="ineq_breakdown").set_value("ethnic_group").run()
    assert not at.exception
    assert "has no order" in " ".join(m.value for m in at.markdown)
    at.radio(key="ineq_level").set_value("Cancer Alliance").run()
    assert not at.exception
    assert at.selectbox(key="ineq_unit").value.endswith("Cancer Alliance")


def test_cli_exports_breakdowns_with_suppression(tmp_path: Path) -> None:
    from audit_metrics.cli import main

    out = tmp_path / "inequalities.csv"
    code = main(["run", "--indicators", str(ROOT / "indicators.yaml"), "--out", str(tmp_path / "results.csv"),
                 "--indicator", "bowel_emergency_dx", "--inequalities-out", str(out), "--quiet"])
    assert code == 0
    groups = pl.read_csv(out, infer_schema_length=0)
    gaps = pl.read_csv(tmp_path / "inequalities_gaps.csv", infer_schema_length=0)
    assert set(groups["breakdown"].unique()) == {"imd_quintile", "ethnic_group", "sex"}
    counts = groups["observed"]
    assert (counts == "*").sum() > 0
    shown = counts.filter(counts != "*").cast(pl.Float64)
    assert not shown.is_between(1, 7).any()  # no small count left in the export
    hidden = groups.filter(pl.col("observed") == "*")
    assert hidden["value"].is_null().all() and hidden["lower_ci"].is_null().all()
    wide = gaps.filter(pl.col("level") == "trust", pl.col("unit_code") == "ZE5").row(0, named=True)
    assert wide["status"] in ("alert_high", "alarm_high")
    blank = gaps.filter(pl.col("suppressed") == "true")
    assert blank.height and blank["sii"].is_null().all()
    assert main(["run", "--indicators", str(ROOT / "indicators.yaml"), "--out", str(tmp_path / "r.csv"),
                 "--indicator", "bowel_emergency_dx", "--inequalities-out", str(tmp_path / "x.txt"),
                 "--quiet"]) == 1


def test_trust_profile_and_alliance_gain_an_inequality_line() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["view"] = "Trust profile"
    at.query_params["trust"] = "ZE5"
    at.run()
    assert not at.exception
    lines = [c.value for c in at.caption if c.value.startswith("Inequality:")]
    assert len(lines) >= 10  # one per patient-level indicator with an ordered breakdown
    assert any("emergency presentation" in line and "wider than expected (alarm)" in line for line in lines)
    assert any("not shown (a group has a small count)" in line for line in lines)  # small cells never leak
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["view"] = "Cancer Alliance"
    at.run()
    at.selectbox(key="all_indicator").set_value("bowel_emergency_dx").run()
    assert not at.exception
    assert [c.value for c in at.caption if c.value.startswith("Inequality:")]


# ------------------------------------------------------------------ a breakdown on an aggregate table


def _patients_and_their_counts(folder: Path) -> Path:
    """Patient rows for 30 trusts (deprivation gradient, some IMD blank; an id, else identical rows would be
    duplicates) and the aggregate table of the same
    patients (one row per trust x IMD quintile, blank quintile as its own row), with a catalogue that reads the
    patient rows in one indicator and the aggregate table in the other."""
    rng = np.random.default_rng(20261202)
    size = rng.integers(40, 400, size=30)
    codes = [f"T{i:02d}" for i in range(30)]
    trust = np.repeat(codes, size)
    imd = rng.integers(1, 6, size=trust.size).astype(float)
    imd[rng.random(trust.size) < 0.04] = np.nan
    p = 1 / (1 + np.exp(-(-1.2 - 0.15 * np.nan_to_num(imd, nan=3.0))))
    event = rng.random(trust.size) < p
    patients = pl.DataFrame({"patient_id": np.arange(trust.size), "trust_code": trust, "imd_quintile": imd,
                             "event": event}).with_columns(
        pl.col("imd_quintile").fill_nan(None).cast(pl.Int64))
    patients.write_csv(folder / "patients.csv")
    counts = (patients.group_by("trust_code", "imd_quintile")
              .agg(pl.col("event").sum().alias("events"), pl.len().alias("patients")).sort("trust_code", "imd_quintile"))
    counts.write_csv(folder / "counts.csv")
    pl.DataFrame({"trust_code": codes, "trust_name": [f"Trust {c}" for c in codes]}).write_csv(folder / "units.csv")
    path = folder / "indicators.yaml"
    path.write_text("""version: 1
units: {file: units.csv, code: trust_code, name: trust_name}
datasets:
  patients: patients.csv
  counts: {path: counts.csv, aggregate: true}
indicators:
  - {id: by_patient, title: Event, dataset: patients, cohort: "trust_code IS NOT NULL", numerator: event,
     better: lower, breakdowns: [imd_quintile]}
  - {id: by_count, title: Event, dataset: counts, numerator: events, denominator: patients, better: lower,
     breakdowns: [imd_quintile]}
""", encoding="utf-8")
    return path


def test_breakdown_on_an_aggregate_table_equals_the_patient_level_breakdown(tmp_path: Path) -> None:
    """#11 "aggregate tables may carry a breakdown column too": summing patients into a (trust, quintile) table
    changes nothing. Oracles: the counts by trust and quintile taken straight from the patient file, and the
    patient-level breakdown (itself tested against PHE above) for every derived number, to 1e-12."""
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.inequality import run_inequalities

    run = run_inequalities(load_catalogue(_patients_and_their_counts(tmp_path)))
    by_patient = run.results[("by_patient", "imd_quintile")]
    by_count = run.results[("by_count", "imd_quintile")]
    assert by_count.ordered and by_patient.ordered

    patients = pl.read_csv(tmp_path / "patients.csv")
    truth = (patients.with_columns(pl.col("imd_quintile").cast(pl.String).fill_null(NOT_RECORDED).alias("group"))
             .group_by(pl.col("trust_code").alias("unit_code"), "group")
             .agg(pl.col("event").sum().cast(pl.Float64).alias("observed"),
                  pl.len().cast(pl.Float64).alias("denominator")))
    trusts = by_count.groups.filter(pl.col("level") == "trust").select("unit_code", "group", "observed",
                                                                         "denominator")
    joined = truth.join(trusts, on=["unit_code", "group"], how="full", suffix="_run")
    assert joined.height == truth.height == trusts.height  # every trust x group cell, none made up
    assert (joined["observed"] == joined["observed_run"]).all()
    assert (joined["denominator"] == joined["denominator_run"]).all()
    assert NOT_RECORDED in trusts["group"].to_list()

    def numbers(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
        return frame.drop("indicator_id").sort(key)

    group_key = ["level", "unit_code", "group_order"]
    assert_frame_equal(numbers(by_count.groups, group_key), numbers(by_patient.groups, group_key),
                                  check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    gap_key = ["level", "unit_code"]
    assert by_count.gaps.height == by_patient.gaps.height == 31  # 30 trusts + national
    assert_frame_equal(numbers(by_count.gaps, gap_key), numbers(by_patient.gaps, gap_key),
                                  check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    national = by_count.gaps.filter(pl.col("level") == "national").row(0, named=True)
    assert national["sii"] < 0  # the planted gradient: events fall from quintile 1 (most deprived) to 5
