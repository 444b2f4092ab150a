"""Case-mix models: the IRLS fit against statsmodels, design coding, missing-data modes, report."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from audit_metrics.catalogue import RiskAdjustmentSpec, load_catalogue
from audit_metrics.expressions import compile_expression
from audit_metrics.risk import (
    MISSING_LEVEL,
    build_design,
    c_statistic,
    fit_glm,
    fit_risk_model,
    hosmer_lemeshow,
    hosmer_lemeshow_patterns,
    spline_basis,
)


@pytest.fixture(scope="module")
def bowel(root: Path) -> tuple[pl.DataFrame, RiskAdjustmentSpec]:
    loaded = load_catalogue(root / "indicators.yaml", check_data=False)
    spec = loaded.indicator("bowel_mort90")
    df = pl.read_parquet(root / "sample_data" / "patients.parquet")
    cohort = df.filter(compile_expression(spec.cohort, df.schema).fill_null(False), pl.col("died_90d").is_not_null())
    return cohort, spec.risk_adjustment


def test_irls_against_statsmodels_glm(bowel: tuple[pl.DataFrame, RiskAdjustmentSpec]) -> None:
    """Same MLE, standard errors and predictions as statsmodels' GLM (IRLS) to 1e-6 relative.

    Terms with (quasi-)separation are excluded: their estimates diverge in both and are reported
    as separation instead.
    """
    cohort, spec = bowel
    design = build_design(cohort, spec)
    y = cohort["died_90d"].cast(pl.Float64).to_numpy()[design.rows]
    ours, converged, _ = fit_glm(design.matrix, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, design.matrix, family=sm.families.Binomial()).fit(tol=1e-12)
    assert converged
    ok = np.abs(ref.params) < 10
    np.testing.assert_allclose(ours.params[ok], ref.params[ok], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.bse[ok], ref.bse[ok], rtol=1e-5)
    np.testing.assert_allclose(ours.fittedvalues, ref.fittedvalues, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-9)


def test_expected_equals_observed_nationally(bowel: tuple[pl.DataFrame, RiskAdjustmentSpec]) -> None:
    """A logistic model with an intercept reproduces the national total: sum(E) = sum(O)."""
    cohort, spec = bowel
    y = cohort["died_90d"].cast(pl.Float64).to_numpy()
    model, risk, kept = fit_risk_model(cohort, y, spec, "bowel_mort90")
    assert risk.sum() == pytest.approx(y[kept].sum(), rel=1e-8)
    assert model.n == kept.sum() and model.converged


def test_reference_levels_and_missing_category() -> None:
    frame = pl.DataFrame({"stage": ["1", "2", "2", "3", None, "2"], "age": [50.0, 60, None, 70, 80, 65]})
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage"], "categorical": ["stage"]})
    design = build_design(frame, spec)
    assert design.coding["stage"]["reference"] == "2"  # the most frequent level
    assert design.names == ("(intercept)", "age", f"age[{MISSING_LEVEL}]", "stage[1]", "stage[3]",
                            f"stage[{MISSING_LEVEL}]")
    assert design.rows.all()  # 'category' keeps every patient
    age = design.matrix[:, 1]
    assert age[2] == pytest.approx(np.mean([50, 60, 70, 80, 65]))  # mean-imputed, flagged
    assert design.matrix[2, 2] == 1.0
    explicit = RiskAdjustmentSpec.model_validate({"covariates": [{"name": "stage", "type": "categorical", "reference": "1"}]})
    assert build_design(frame, explicit).coding["stage"]["reference"] == "1"
    assert build_design(frame, spec).completeness["stage"] == pytest.approx(5 / 6)


def test_complete_case_drops_and_counts() -> None:
    frame = pl.DataFrame({"stage": ["1", "2", None, "3"], "age": [50.0, None, 60, 70], "y": [0, 1, 0, 1]})
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage"], "categorical": ["stage"],
                                              "missing": "complete_case"})
    design = build_design(frame, spec)
    assert design.rows.tolist() == [True, False, False, True]
    assert design.matrix.shape[0] == 2
    assert all(MISSING_LEVEL not in n for n in design.names)


def test_spline_basis_is_linear_beyond_the_outer_knots() -> None:
    knots = np.array([40.0, 60.0, 70.0, 85.0])
    x = np.linspace(0, 120, 241)
    basis = spline_basis(x, knots)
    assert basis.shape == (241, 3)
    beyond = x > 85
    second_diff = np.diff(basis[beyond], n=2, axis=0)
    np.testing.assert_allclose(second_diff, 0, atol=1e-9)  # natural: linear in the tails
    below = x < 40
    np.testing.assert_allclose(basis[below, 1:], 0, atol=1e-12)


def test_spline_covariate_in_design() -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"age": rng.normal(70, 10, 500)})
    spec = RiskAdjustmentSpec.model_validate({"covariates": [{"name": "age", "spline_knots": 4}]})
    design = build_design(frame, spec)
    assert design.names == ("(intercept)", "age", "age_spline1", "age_spline2")
    assert len(design.coding["age"]["knots"]) == 4


def test_c_statistic_and_hosmer_lemeshow_against_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    assert c_statistic(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)  # 3 of 4 pairs
    assert c_statistic(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    rng = np.random.default_rng(5)
    p = rng.uniform(0.01, 0.5, 20_000)
    yy = (rng.random(p.size) < p).astype(float)
    table, _chi2, df, pval = hosmer_lemeshow(yy, p)
    assert table.height == 10 and df == 8
    assert pval > 0.001  # a calibrated model passes
    _, _, _, bad = hosmer_lemeshow(yy, p * 0.6)
    assert bad < 1e-6  # a miscalibrated one fails


@pytest.mark.parametrize(("patients", "patterns", "ties"), [(20_000, 37, False), (20_000, 37, True), (9_999, 5, True),
                                                          (23, 4, False), (7, 3, True), (5_000, 1, False)])
def test_hosmer_lemeshow_from_patterns_equals_the_patient_level_test(patients: int, patterns: int,
                                                                     ties: bool) -> None:
    """Oracle: hosmer_lemeshow over every patient (a stable sort of their risks). Tenths that cut a pattern, runs
    of patterns with exactly equal risk (interleaved in patient order), fewer patients than tenths and a single
    pattern: group sizes and observed counts equal exactly, expected counts to rounding."""
    rng = np.random.default_rng(patients + patterns)
    risk = rng.uniform(0.02, 0.6, patterns)
    if ties:
        risk[1::3] = risk[0]  # several patterns share one risk
    pattern = rng.integers(0, patterns, patients)
    y = (rng.random(patients) < risk[pattern]).astype(float)
    want = hosmer_lemeshow(y, risk[pattern])
    got = hosmer_lemeshow_patterns(y, pattern, risk)
    assert got[0]["group"].to_list() == want[0]["group"].to_list()
    assert got[0]["patients"].to_list() == want[0]["patients"].to_list()
    assert got[0]["observed"].to_list() == want[0]["observed"].to_list()
    np.testing.assert_allclose(got[0]["expected"].to_numpy(), want[0]["expected"].to_numpy(), rtol=1e-12)
    assert got[1] == pytest.approx(want[1], rel=1e-9, abs=1e-12) and got[2] == want[2]
    assert got[3] == pytest.approx(want[3], rel=1e-9, abs=1e-15)


def test_separation_is_reported() -> None:
    frame = pl.DataFrame({"grp": ["a"] * 50 + ["b"] * 50})
    y = np.r_[np.zeros(50), (np.arange(50) % 2).astype(float)]  # group a: no events at all
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["grp"], "categorical": ["grp"]})
    model, _, _ = fit_risk_model(frame, y, spec, "x")
    assert model.separation
    assert any("separation" in w and "grp[" in w for w in model.warnings)  # the level is named


def test_weak_model_warns() -> None:
    rng = np.random.default_rng(2)
    frame = pl.DataFrame({"noise": rng.normal(size=2000)})
    y = (rng.random(2000) < 0.3).astype(float)
    model, _, _ = fit_risk_model(frame, y, RiskAdjustmentSpec.model_validate({"covariates": ["noise"]}), "x")
    assert model.c_statistic < 0.6
    assert any("c-statistic" in w for w in model.warnings)


def test_planted_casemix_simulation_known_truth() -> None:
    """Known truth: 40 units, outcome depends on age only; one unit has much older patients and
    one unit is genuinely worse. After adjustment the old unit is not flagged and the worse one is."""
    from audit_metrics.catalogue import MethodOptions
    from audit_metrics.outliers import assess_units

    rng = np.random.default_rng(11)
    units = np.repeat(np.arange(40), 500)
    age = rng.normal(65, 8, units.size) + np.where(units == 0, 15, 0)
    logit = -4 + 0.08 * (age - 65) + np.where(units == 1, 1.0, 0.0)
    y = (rng.random(units.size) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pl.DataFrame({"age": age})
    _, risk, _ = fit_risk_model(frame, y, RiskAdjustmentSpec.model_validate({"covariates": ["age"]}), "sim")
    o = np.bincount(units, weights=y)
    e = np.bincount(units, weights=risk)
    n = np.bincount(units).astype(float)
    opts = MethodOptions(limits=(0.95, 0.998), overdispersion="none", robust="winsorise", trim=0.1,
                         min_denominator=10, min_units=10, limit_method="exact", fdr=False, transform="arcsine")
    adjusted = assess_units(o, n, np.ones(40, dtype=bool), statistic="proportion", options=opts, target=e / n)
    crude = assess_units(o, n, np.ones(40, dtype=bool), statistic="proportion", options=opts, target=o.sum() / n.sum())
    assert crude.status[0].endswith("high")          # case-mix alone makes unit 0 look bad
    assert adjusted.status[0] == "within"            # ...until adjusted
    assert adjusted.status[1].endswith("high")       # the genuinely worse unit is still found


def test_multiple_imputation_recovers_truth_where_complete_case_is_biased() -> None:
    """Known truth: risk depends on age and stage; stage is missing more often for older patients
    with the outcome (missing not completely at random). MICE (m = 5, PMM, outcome in the
    imputation model) recovers the age effect; the 'Missing' category is reported as a level."""
    rng = np.random.default_rng(4)
    n = 8000
    age = rng.normal(70, 10, n)
    stage = rng.integers(1, 5, n)
    logit = -3 + 0.05 * (age - 70) + 0.6 * (stage - 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    p_missing = 0.05 + 0.25 * y
    stage_obs = np.where(rng.random(n) < p_missing, None, stage.astype(str)).tolist()
    frame = pl.DataFrame({"age": age, "stage": pl.Series(stage_obs, dtype=pl.String)})
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage"], "categorical": ["stage"],
                                              "missing": "impute", "imputations": 5})
    model, risk, kept = fit_risk_model(frame, y, spec, "mi")
    assert kept.all()  # every patient kept
    assert risk.sum() == pytest.approx(y.sum(), rel=0.02)
    coef = dict(zip(model.coefficients["term"], model.coefficients["estimate"], strict=True))
    assert coef["age"] == pytest.approx(0.05, abs=0.012)
    def level(lv: str) -> float:
        return coef.get(f"stage[{lv}]", 0.0)  # the reference level has no term

    assert level("4") - level("1") == pytest.approx(1.8, abs=0.35)
    assert model.missing == "impute"
    assert model.completeness["stage"] == pytest.approx(1 - np.mean([s is None for s in stage_obs]))
    se = dict(zip(model.coefficients["term"], model.coefficients["std_error"], strict=True))
    single = fit_risk_model(frame, y, spec.model_copy(update={"missing": "category"}), "one")[0]
    se_single = dict(zip(single.coefficients["term"], single.coefficients["std_error"], strict=True))
    term = next(k for k in se if k.startswith("stage[") and k in se_single)
    assert se[term] > 0.9 * se_single[term]  # Rubin's rules carry the imputation uncertainty


def test_imputation_is_reproducible() -> None:
    rng = np.random.default_rng(9)
    frame = pl.DataFrame({"x": np.where(rng.random(500) < 0.2, np.nan, rng.normal(size=500))})
    y = (rng.random(500) < 0.3).astype(float)
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["x"], "missing": "impute", "imputations": 3})
    a = fit_risk_model(frame.with_columns(pl.col("x").fill_nan(None)), y, spec, "r")[1]
    b = fit_risk_model(frame.with_columns(pl.col("x").fill_nan(None)), y, spec, "r")[1]
    np.testing.assert_array_equal(a, b)


def test_casemix_outside_range_is_warned() -> None:
    """A unit whose patients' predicted risks mostly lie beyond the central 99%, and a level seen
    almost only at one unit, are both reported."""
    from audit_metrics.pipeline import _with_casemix_warnings, casemix_by_unit

    rng = np.random.default_rng(3)
    unit = np.repeat(list("ABCDEFGHIJ"), 300)
    age = np.where(unit == "D", rng.normal(95, 2, unit.size), rng.normal(65, 8, unit.size))
    site = np.where((unit == "C") & (rng.random(unit.size) < 0.2), "rare", "common")
    y = (rng.random(unit.size) < 1 / (1 + np.exp(-(-3 + 0.07 * (age - 65))))).astype(float)
    frame = pl.DataFrame({"unit": unit, "age": age, "site": site})
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "site"], "categorical": ["site"]})
    model, risk, _ = fit_risk_model(frame, y, spec, "x")
    cohort = frame.with_columns(pl.Series("__expected", risk))
    per_unit = casemix_by_unit(cohort, "unit", ["age", "site"])
    warned = _with_casemix_warnings(model, cohort, per_unit, "unit").warnings
    assert any("unlike other units at D (" in w for w in warned)
    unusual = per_unit.filter(pl.col("casemix_robust_z").abs() > 4, pl.col("casemix_relative_difference").abs() >= 0.25)
    assert unusual["unit_code"].to_list() == ["D"]
    assert any("site = rare" in w and "at C" in w for w in warned)
