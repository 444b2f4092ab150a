"""Fast paths of issue #16 give the same answers as the plain ones (each against an outside oracle)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from audit_metrics.catalogue import RiskAdjustmentSpec, load_catalogue
from audit_metrics.expressions import compile_expression
from audit_metrics.io import _blank_rows
from audit_metrics.risk import build_design, covariate_patterns, fit_risk_model


def _messy(n: int = 6000, seed: int = 7) -> tuple[pl.DataFrame, np.ndarray]:
    """Covariates with blanks in text, whole-number and real columns, and a binary outcome."""
    rng = np.random.default_rng(seed)
    age = rng.integers(30, 95, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    stage = rng.choice(["1", "2", "3", "4"], n).astype(object)
    stage[rng.random(n) < 0.05] = None
    sex = rng.choice(["F", "M"], n)
    score = rng.choice([0.5, 1.25, 2.0], n)
    frail = rng.integers(0, 4, n).astype(float)
    frail[rng.random(n) < 0.04] = np.nan
    logit = -4 + 0.04 * np.nan_to_num(age, nan=60) + 0.3 * (sex == "M") + 0.2 * score
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pl.DataFrame({"age": age, "stage": list(stage), "sex": sex, "score": score, "frail": frail},
                         schema={"age": pl.Float64, "stage": pl.String, "sex": pl.String, "score": pl.Float64,
                                 "frail": pl.Float64}).with_columns(
        pl.col("age").fill_nan(None), pl.col("frail").fill_nan(None).cast(pl.Int8))
    return frame, y


def test_covariate_patterns_rebuild_every_row() -> None:
    """Each row's pattern holds exactly its values (blanks included), and the counts add up."""
    frame, _ = _messy()
    names = frame.columns
    patterns, sizes, inverse = covariate_patterns(frame, names)
    assert patterns.height == patterns.unique().height  # distinct
    assert sizes.sum() == frame.height and (sizes == np.bincount(inverse)).all()
    rebuilt = patterns[inverse]
    for c in names:
        assert rebuilt[c].equals(frame[c], check_names=True), c


@pytest.mark.parametrize("missing", ["category", "complete_case"])
def test_weighted_design_matches_the_patients_design(missing: str) -> None:
    """References, knots, means and completeness from the patterns equal those from every patient."""
    frame, _ = _messy()
    spec = RiskAdjustmentSpec.model_validate({
        "covariates": [{"name": "age", "spline_knots": 4}, "stage", "sex", "score", "frail"],
        "categorical": ["stage", "sex"], "missing": missing})
    patterns, sizes, inverse = covariate_patterns(frame, frame.columns)
    whole = build_design(frame, spec)
    pooled = build_design(patterns, spec, weights=sizes)
    assert pooled.names == whole.names
    assert pooled.coding["stage"] == whole.coding["stage"] and pooled.coding["sex"] == whole.coding["sex"]
    np.testing.assert_allclose(pooled.coding["age"]["knots"], whole.coding["age"]["knots"], rtol=0, atol=0)
    for c in frame.columns:
        assert pooled.completeness[c] == pytest.approx(whole.completeness[c], rel=1e-12)
    assert (pooled.rows[inverse] == whole.rows).all()
    kept_position = np.cumsum(pooled.rows) - 1  # pattern -> its row of the pooled matrix
    np.testing.assert_allclose(pooled.matrix[kept_position[inverse[whole.rows]]], whole.matrix, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("missing", ["category", "complete_case"])
def test_model_on_patterns_matches_statsmodels_on_patients(missing: str) -> None:
    """The pooled fit gives statsmodels' patient-level estimates, SEs and predicted risks (1e-6)."""
    frame, y = _messy()
    spec = RiskAdjustmentSpec.model_validate({
        "covariates": [{"name": "age", "spline_knots": 4}, "stage", "sex", "score", "frail"],
        "categorical": ["stage", "sex"], "missing": missing})
    model, risk, kept = fit_risk_model(frame, y, spec, "x")
    design = build_design(frame, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y[design.rows], design.matrix, family=sm.families.Binomial()).fit(tol=1e-12)
    assert (kept == design.rows).all()
    np.testing.assert_allclose(model.coefficients["estimate"].to_numpy(), ref.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.coefficients["std_error"].to_numpy(), ref.bse, rtol=1e-5)
    np.testing.assert_allclose(risk, ref.fittedvalues, rtol=1e-6, atol=1e-12)
    assert model.n == int(design.rows.sum())


def test_bundled_model_on_patterns_matches_statsmodels(root: Path) -> None:
    """bowel_mort90 on the bundled sample (pooled: 6-19x fewer rows): statsmodels on every patient."""
    loaded = load_catalogue(root / "indicators.yaml", check_data=False)
    spec = loaded.indicator("bowel_mort90")
    df = pl.read_parquet(root / "sample_data" / "patients.parquet")
    cohort = df.filter(compile_expression(spec.cohort, df.schema).fill_null(False), pl.col("died_90d").is_not_null())
    y = cohort["died_90d"].cast(pl.Float64).to_numpy()
    patterns, _, _ = covariate_patterns(cohort, [c.name for c in spec.risk_adjustment.covariates])
    assert patterns.height < 0.8 * cohort.height  # the pooled path is the one tested
    model, risk, _ = fit_risk_model(cohort, y, spec.risk_adjustment, spec.id)
    design = build_design(cohort, spec.risk_adjustment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, design.matrix, family=sm.families.Binomial()).fit(tol=1e-12)
    ok = np.abs(ref.params) < 10  # separated terms diverge in both (reported as separation)
    np.testing.assert_allclose(model.coefficients["estimate"].to_numpy()[ok], ref.params[ok], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(risk, ref.fittedvalues, rtol=1e-6, atol=1e-12)


def test_blank_rows_only_where_every_cell_is_empty() -> None:
    """Trimming text only where typed columns are empty finds the same rows as trimming everything."""
    frame = pl.DataFrame({"a": [1, None, None, None, 5], "t": ["x", " ", None, "y", ""],
                          "d": [None, None, None, None, None]}, schema={"a": pl.Int64, "t": pl.String, "d": pl.Date})
    expected = [False, True, True, False, False]
    assert _blank_rows(frame, ["a", "t", "d"]).to_list() == expected
    full = frame.with_columns(pl.lit(1).alias("filled"))  # a column with a value on every row: none blank
    assert _blank_rows(full, ["a", "t", "d", "filled"]).to_list() == [False] * 5
    assert _blank_rows(frame.select("t"), ["t"]).to_list() == [False, True, True, False, True]


def test_short_csv_rows_are_excluded_with_their_line(tmp_path: Path) -> None:
    """#15: a CSV row with fewer fields than the header is excluded, named by line, never padded with blanks."""
    from audit_metrics.catalogue import DatasetSpec
    from audit_metrics.io import Units, load_dataset

    units = Units(pl.DataFrame({"unit_code": ["A01", "B02"], "unit_name": ["A", "B"], "cancer_alliance": ["X", "X"]}),
                  ("cancer_alliance",), {})
    path = tmp_path / "x.csv"
    path.write_text("code,period,num,den,site,note,extra\n"
                    "A01,2023/24,3,10,lung,,\n"        # 2 used (trailing blanks are fields)
                    "B02,2023/24,4,12,lung\n"          # 3 five fields
                    "A01,2023/24,1,5,bowel,\"a, b\",x\n"  # 4 used (a quoted comma is one field)
                    "B02,2023/24\n"                    # 5 two fields
                    "A01,2022/23,2,9,bowel,,\n"        # 6 used
                    "B02,2022/23,1,9,bowel\n"          # 7 five fields
                    '"B02","2022/23",1,5,"x, y"\n')     # 8 five fields (one holds a comma)
    ds = load_dataset("agg", path, DatasetSpec(path="x.csv", period_column="period"), units, unit_column="code",
                      count_columns=["num", "den"], count_pairs=[("num", "den")])
    reasons = {e.reason: (e.rows, e.examples) for e in ds.accounting.exclusions}
    assert reasons == {"row has 5 fields, header has 7": (3, (3, 7, 8)), "row has 2 fields, header has 7": (1, (5,))}
    assert ds.accounting.rows_used == 3 and ds.accounting.balanced
    assert sorted(ds.frame["__row"].to_list()) == [2, 4, 6]


def test_c_statistic_from_patterns_equals_the_patients() -> None:
    """The Mann-Whitney count over patterns is the patient-level c-statistic, exactly (ties included)."""
    from audit_metrics.risk import c_statistic

    rng = np.random.default_rng(3)
    pattern_risk = np.round(rng.random(300), 2)  # rounding makes distinct patterns share a risk (ties)
    which = rng.integers(0, 300, 50_000)
    y = rng.random(50_000) < pattern_risk[which]
    events = np.bincount(which, weights=y, minlength=300)
    trials = np.bincount(which, minlength=300)
    used = trials > 0
    pooled = c_statistic(events[used], pattern_risk[used], trials=trials[used])
    assert pooled == c_statistic(y, pattern_risk[which])
    assert 0.5 < pooled < 1


def test_dominant_level_at_one_unit_is_warned() -> None:
    """A covariate level mostly at one unit (planted: 27 of 30 stage-4 patients at U1) is named, with its share."""
    from audit_metrics.pipeline import _with_casemix_warnings, casemix_by_unit

    rng = np.random.default_rng(5)
    units = np.array([f"U{i}" for i in range(10)])[rng.integers(0, 10, 3000)]
    stage = rng.choice(["1", "2", "3"], 3000).astype(object)
    stage[:27], units[:27] = "4", "U1"
    stage[27:30] = "4"
    units[27:30] = ["U2", "U3", "U4"]
    frame = pl.DataFrame({"unit": units, "stage": list(stage), "age": rng.integers(40, 90, 3000)})
    y = (rng.random(3000) < 0.2).astype(float)
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage"], "categorical": ["stage"]})
    model, risk, _ = fit_risk_model(frame, y, spec, "x")
    cohort = frame.with_columns(pl.Series("__expected", risk))
    warned = _with_casemix_warnings(model, cohort, casemix_by_unit(cohort, "unit", ["age", "stage"]), "unit")
    assert [w for w in warned.warnings if "stage = " in w] == [
        "stage = 4: 90% of these patients are at U1, so the model cannot separate this case-mix from that "
        "unit's own results"]


@pytest.mark.parametrize("blank_lines", [0, 5, 255, 256, 257, 1500])
def test_rows_below_a_long_table_are_found_from_the_bottom(tmp_path: Path, blank_lines: int) -> None:
    """The table ends at its last row with two cells filled, however many blank lines and notes follow."""
    from audit_metrics.catalogue import DatasetSpec
    from audit_metrics.io import read_table

    body = "".join(f"A{i:04d},2023/24,{i % 7},{i % 7 + 3}\n" for i in range(1200))
    path = tmp_path / "x.csv"
    path.write_text("code,period,num,den\n" + body + "\n" * blank_lines + "Source: a note\n\nFootnote 1\n")
    table, layout = read_table(path, DatasetSpec(path="x.csv"))
    assert table.height == 1200 and table["__row"].max() == 1201
    assert layout.below == tuple(range(1202, 1202 + blank_lines + 3))
