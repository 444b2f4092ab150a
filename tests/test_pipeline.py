"""End to end on the bundled sample: planted outliers found, contract columns, CLI behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.cli import main
from audit_metrics.io import load_all
from audit_metrics.pipeline import CONTRACT_COLUMNS, AuditRun, run_audit, run_indicator
from audit_metrics.sample import CASEMIX_TRUST, PLANTED

PRIMARY = {"died_90d": "bowel_mort90", "curative_treatment": "lung_curative_s12",
           "emergency": "bowel_emergency_dx", "sact": "lung_sact_adv", "hna_offered": "pc_hna_offered",
           "seen_by_cns": "lung_cns"}


@pytest.fixture(scope="module")
def run(catalogue_path: Path) -> AuditRun:
    return run_audit(load_catalogue(catalogue_path))


@pytest.fixture(scope="module")
def trust_codes(root: Path) -> list[str]:
    return pl.read_csv(root / "sample_data" / "trusts.csv")["trust_code"].to_list()


def _pooled_trusts(run: AuditRun, indicator: str) -> pl.DataFrame:
    result = run.results[indicator]
    return result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: f"{p.outcome}-{p.trust_index}")
def test_planted_outliers_are_flagged_in_the_right_direction(run: AuditRun, trust_codes: list[str], planted) -> None:
    row = _pooled_trusts(run, PRIMARY[planted.outcome]).filter(pl.col("unit_code") == trust_codes[planted.trust_index])
    status = str(row["status"][0])
    side = "high" if planted.direction == "higher" else "low"
    assert status.endswith(side), (planted, status, row["z"][0])


def test_casemix_trust_flagged_crude_but_not_after_adjustment(run: AuditRun, trust_codes: list[str],
                                                              catalogue_path: Path) -> None:
    """The tertiary centre treats older, later-stage patients with average quality: one-year
    lung cancer mortality is an alarm before case-mix adjustment and as expected after it."""
    code = trust_codes[CASEMIX_TRUST]
    adjusted = _pooled_trusts(run, "lung_surv1y").filter(pl.col("unit_code") == code)
    assert str(adjusted["status"][0]) == "within"
    loaded = load_catalogue(catalogue_path)
    spec = loaded.indicator("lung_surv1y")
    crude_spec = spec.model_copy(update={"risk_adjustment": None, "statistic": "proportion"})
    units, datasets = load_all(loaded, only=["lung_surv1y"])
    crude = run_indicator(crude_spec, loaded.options(crude_spec), datasets["patients"], units,
                          unit_column="trust_code", period_column="financial_year")
    row = crude.table.filter(pl.col("level") == "trust", pl.col("unit_code") == code,
                             pl.col("period") == crude.pooled_period)
    assert str(row["status"][0]) == "alarm_high"


def test_every_unit_level_and_contract_column(run: AuditRun) -> None:
    table = run.table()
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == list(CONTRACT_COLUMNS)
    levels = set(table["level"].unique())
    assert levels == {"trust", "cancer_alliance", "region", "national"}
    pooled = [pl.col("indicator_id").eq(i) & pl.col("period").eq(r.pooled_period) for i, r in run.results.items()]
    per_indicator = table.filter(pl.any_horizontal(pooled)).group_by("indicator_id", "level").len()
    counts = {(r["indicator_id"], r["level"]): r["len"] for r in per_indicator.iter_rows(named=True)}
    for ind in run.results:
        assert counts[(ind, "trust")] == 140
        assert counts[(ind, "cancer_alliance")] == 21
        assert counts[(ind, "region")] == 7
        assert counts[(ind, "national")] == 1


def test_higher_levels_are_sums_not_averages(run: AuditRun) -> None:
    t = run.results["lung_cns"].table
    pooled = run.results["lung_cns"].pooled_period
    t = t.filter(pl.col("period") == pooled)
    trusts = t.filter(pl.col("level") == "trust")
    alliance = t.filter(pl.col("level") == "cancer_alliance")
    one = alliance["unit_code"][0]
    members = trusts.filter(pl.col("cancer_alliance") == one)
    row = alliance.filter(pl.col("unit_code") == one)
    assert row["observed"][0] == members["observed"].sum()
    assert row["denominator"][0] == members["denominator"].sum()
    national = t.filter(pl.col("level") == "national")
    assert national["observed"][0] == trusts["observed"].sum()


def test_not_assessed_units_say_why(run: AuditRun) -> None:
    t = run.table()
    na = t.filter(pl.col("status") == "not_assessed")
    assert na["not_assessed_reason"].null_count() == 0
    assert set(na["not_assessed_reason"].unique()) <= {"no data", "national reference", "fewer than 10 cases"}
    assessed = t.filter(pl.col("status") != "not_assessed")
    assert assessed["not_assessed_reason"].null_count() == assessed.height


def test_overdispersion_never_switched_silently(run: AuditRun) -> None:
    for result in run.results.values():
        for od in result.overdispersion.values():
            assert od.reason  # every estimate says whether and why it was applied
        t = result.table
        assert t.filter(pl.col("overdispersion_note").is_null()).height == 0
    og = run.results["og_mort90_surg"]
    assert any("at least" in w for w in og.warnings)  # too few surgical centres: said so


def test_cohort_accounting_adds_up(run: AuditRun) -> None:
    for result in run.results.values():
        acc = result.accounting
        assert acc.balanced, acc.summary()
    reasons = {e.reason for e in run.results["bowel_mort90"].accounting.exclusions}
    assert "missing outcome (numerator is blank)" in reasons


def test_multiple_comparisons_reported(run: AuditRun) -> None:
    t = _pooled_trusts(run, "lung_cns")
    assert t["expected_false_alerts"][0] == pytest.approx(140 * 0.05)
    assert t["q_value"].drop_nulls().min() >= t["p_value"].drop_nulls().min()


def test_periods_reported_when_asked(run: AuditRun) -> None:
    periods = set(run.results["bowel_emergency_dx"].table["period"].unique())
    assert {"2021/22", "2022/23", "2023/24", "2021/22 to 2023/24"} <= periods
    assert set(run.results["bowel_mort90"].table["period"].unique()) == {"2021/22 to 2023/24"}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_cli_run_writes_contract(tmp_path: Path, catalogue_path: Path, suffix: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"results{suffix}"
    limits = tmp_path / "limits.csv"
    rc = main(["run", "--indicators", str(catalogue_path), "--out", str(out), "--limits-out", str(limits),
               "--indicator", "lung_cns", "--indicator", "bowel_mort90"])
    assert rc == 0
    if suffix == ".csv":
        frame = pl.read_csv(out)
    elif suffix == ".xlsx":
        frame = pl.read_excel(out)
    else:
        frame = pl.read_parquet(out)
    assert set(CONTRACT_COLUMNS) <= set(frame.columns)
    assert set(frame["indicator_id"].unique()) == {"lung_cns", "bowel_mort90"}
    curves = pl.read_csv(limits)
    assert {"indicator_id", "x", "target", "lower_95", "upper_99.8"} <= set(curves.columns)
    captured = capsys.readouterr()
    assert "lung_cns:" in captured.out and "phi=" in captured.out
    assert "[1/2]" in captured.err


def test_cli_run_bad_input_is_a_message_not_a_traceback(tmp_path: Path, catalogue_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--indicators", str(catalogue_path), "--out", str(tmp_path / "x.txt")]) == 1
    assert main(["run", "--indicators", str(catalogue_path), "--out", str(tmp_path / "x.csv"),
                 "--indicator", "nope"]) == 1
    assert main(["run", "--indicators", str(catalogue_path), "--out", str(tmp_path / "x.csv"),
                 "--data", f"patients={tmp_path / 'missing.parquet'}"]) == 1
    err = capsys.readouterr().err
    assert "unknown indicator id(s): nope" in err and "file not found" in err
    assert "Traceback" not in err


def test_core_package_does_not_import_streamlit() -> None:
    code = ("import sys, audit_metrics, audit_metrics.pipeline, audit_metrics.cli, audit_metrics.sample;"
            "import pkgutil, importlib;"
            "[importlib.import_module('audit_metrics.' + m.name) for m in pkgutil.iter_modules(audit_metrics.__path__)"
            " if m.name != 'ui'];"
            "assert 'streamlit' not in sys.modules, 'streamlit imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_results_invariant_to_row_order_and_unit_relabelling(catalogue_path: Path) -> None:
    """Metamorphic: shuffle every patient row and rename every trust code (data and reference table
    alike): each indicator's results are the same, unit for unit."""
    import dataclasses

    import numpy as np

    loaded = load_catalogue(catalogue_path)
    units, datasets = load_all(loaded, only=["bowel_mort90", "lung_cns"])
    rng = np.random.default_rng(1)
    codes = units.frame["unit_code"].to_list()
    new_codes = [f"Q{i:03d}" for i in rng.permutation(len(codes))]
    rename = dict(zip(codes, new_codes, strict=True))
    units2 = dataclasses.replace(units, frame=units.frame.with_columns(pl.col("unit_code").replace_strict(rename)))
    for ind in ("bowel_mort90", "lung_cns"):
        spec = loaded.indicator(ind)
        ds = datasets[spec.dataset]
        period = loaded.catalogue.datasets[spec.dataset].period_column
        shuffled = ds.frame.sample(fraction=1.0, shuffle=True, seed=7).with_columns(
            pl.col("trust_code").replace_strict(rename))
        ds2 = dataclasses.replace(ds, frame=shuffled, digest=ds.digest + "-shuffled")
        a = run_indicator(spec, loaded.options(spec), ds, units, unit_column="trust_code", period_column=period)
        b = run_indicator(spec, loaded.options(spec), ds2, units2, unit_column="trust_code", period_column=period)
        cols = ["observed", "denominator", "expected", "value", "lower_alert", "upper_alarm", "z", "status", "phi", "tau2"]
        left = a.table.filter(pl.col("level") == "trust").with_columns(pl.col("unit_code").replace_strict(rename))
        right = b.table.filter(pl.col("level") == "trust")
        joined = left.select("unit_code", "period", *cols).join(right.select("unit_code", "period", *cols),
                                                               on=["unit_code", "period"], suffix="_b")
        assert joined.height == left.height
        for c in cols:
            x, y = joined[c], joined[f"{c}_b"]
            if x.dtype.is_float():
                np.testing.assert_allclose(x.to_numpy(), y.to_numpy(), rtol=1e-9, equal_nan=True)
            else:
                assert x.cast(pl.String).to_list() == y.cast(pl.String).to_list()


def test_aggregate_rate_ratio_and_ratio_of_counts_end_to_end(tmp_path: Path, root: Path) -> None:
    """Aggregate extracts for the other statistics: a rate per person-years (denominator = person-time),
    an SHMI-style observed/expected table, and a ratio of counts between two years."""
    import numpy as np

    trusts = pl.read_csv(root / "sample_data" / "trusts.csv")
    rng = np.random.default_rng(5)
    py = rng.uniform(500, 5000, trusts.height)
    expected = rng.uniform(20, 300, trusts.height)
    last = rng.integers(50, 500, trusts.height)
    pl.DataFrame({
        "trust_code": trusts["trust_code"], "period": "2023/24",
        "deaths": rng.poisson(0.02 * py), "person_years": py.round(1),
        "observed": rng.poisson(expected), "expected": expected.round(2),
        "this_year": rng.poisson(1.1 * last), "last_year": last,
    }).write_csv(tmp_path / "agg.csv")
    (tmp_path / "trusts.csv").write_bytes((root / "sample_data" / "trusts.csv").read_bytes())
    (tmp_path / "indicators.yaml").write_text("""version: 1
datasets:
  agg: {path: agg.csv, aggregate: true, period_column: period}
units: {file: trusts.csv, code: trust_code, name: trust_name, groups: [cancer_alliance, region]}
indicators:
  - {id: death_rate, title: Deaths per person-year, tumour_site: All, dataset: agg, numerator: deaths,
     denominator: person_years, statistic: rate, better: lower}
  - {id: smr, title: Standardised mortality ratio, tumour_site: All, dataset: agg, numerator: observed,
     expected: expected, statistic: ratio, better: lower}
  - {id: change, title: Change in referrals, tumour_site: All, dataset: agg, numerator: this_year,
     denominator: last_year, statistic: ratio_of_counts, better: neither, limit_method: transformed}
""")
    run = run_audit(load_catalogue(tmp_path / "indicators.yaml"))
    for ind, target in (("death_rate", None), ("smr", 1.0), ("change", None)):
        t = run.results[ind].table.filter(pl.col("level") == "trust")
        assert t.height == 140 and set(CONTRACT_COLUMNS) <= set(t.columns)
        assert (t["status"].cast(pl.String) != "not_assessed").sum() == 140
        if target is not None:
            assert t["target"][0] == target
        within = (t["status"].cast(pl.String) == "within").mean()
        assert within > 0.85  # simulated in control: few flags
    rate = run.results["death_rate"].table.filter(pl.col("level") == "national")
    assert rate["value"][0] == pytest.approx(rate["observed"][0] / pl.read_csv(tmp_path / "agg.csv")["person_years"].sum())
