"""#16 (cohort16): the one-model job's cohort counts, case-mix cells and model from integer codes.

Oracle: the straightforward computation on the values themselves: polars group-bys on the text
columns (unit, period, categorical covariates) and ``fit_risk_model`` grouping the covariates itself,
and, for the codes, value equality read in plain Python. Counts, denominators, cells and the model
are identical; sums of expected risk are added in another order (equal to 1e-12 relative).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audit_metrics.catalogue import IndicatorSpec
from audit_metrics.io import ROW, LoadedDataset, RowAccounting
from audit_metrics.pipeline import (
    _categorical,
    _cohort_codes,
    _with_casemix_warnings,
    casemix_by_unit,
    casemix_cells,
    cohort_counts,
)
from audit_metrics.risk import column_codes, combined_groups, fit_risk_model

HOSTILE = ["=HYPERLINK(\"x\")", "Zé Trust ☃", "  padded ", "RX1", "rx1", "1e3", "0042", "", "<b>T</b>", "a\nb"]


def _frame(n: int, seed: int, *, units: list[str] | None = None) -> pl.DataFrame:
    """Patients with blanks everywhere, hostile unit codes, numbers as categories and an empty covariate."""
    rng = np.random.default_rng(seed)
    units = HOSTILE if units is None else units

    def blanked(values: np.ndarray, share: float) -> list:
        return [None if b else v for v, b in zip(values.tolist(), rng.random(values.size) < share, strict=True)]

    return pl.DataFrame({
        ROW: np.arange(2, n + 2),
        "trust_code": rng.choice(units, n),
        "financial_year": blanked(rng.choice(["2021/22", "2022/23", "2023/24"], n), 0.01),
        "age": pl.Series(blanked(rng.integers(18, 100, n), 0.02), dtype=pl.Int16),
        "sex": blanked(rng.choice(["F", "M", "ñ"], n, p=[0.5, 0.49, 0.01]), 0.02),
        "stage": blanked(rng.choice(["1", "2", "3", "4", "X"], n), 0.05),
        "performance_status": pl.Series(blanked(rng.integers(0, 5, n), 0.03), dtype=pl.Int8),  # numbers as levels
        "frailty": pl.Series([None] * n, dtype=pl.Int8),  # every value blank
        "event": pl.Series(blanked(rng.random(n) < 0.25, 0.02), dtype=pl.Boolean),
    })


def _spec(missing: str, *, covariates: list[str] | None = None, cohort: str | None = None) -> IndicatorSpec:
    covariates = covariates or ["age", "sex", "stage", "performance_status", "frailty"]
    return IndicatorSpec.model_validate({
        "id": "x_ind", "title": "X", "dataset": "patients", "numerator": "event", "better": "lower",
        "statistic": "ratio", "cohort": cohort,
        "risk_adjustment": {"covariates": covariates, "categorical": [c for c in ("sex", "stage", "performance_status")
                                                                       if c in covariates],
                            "missing": missing}})


def _plain(spec: IndicatorSpec, frame: pl.DataFrame, unit: str, period: str | None):
    """The straightforward computation: filter, fit with the model's own grouping, group-by on the values."""
    if spec.cohort:
        from audit_metrics.expressions import compile_expression

        frame = frame.filter(compile_expression(spec.cohort, frame.schema).fill_null(False))
    cohort = frame.filter(pl.col("event").is_not_null())
    model, risk, kept = fit_risk_model(cohort, cohort["event"].to_numpy().astype(float), spec.risk_adjustment, spec.id)
    cohort = cohort.filter(pl.Series(kept)).with_columns(pl.Series("__expected", risk))
    covariates = [c.name for c in spec.risk_adjustment.covariates]
    categorical = _categorical(model)
    cells = cohort.group_by(unit, *categorical).agg(
        pl.len(), pl.col("__expected").sum().alias("__expected_sum"),
        *[pl.col(c).is_not_null().sum().alias(f"__present_{c}") for c in covariates if c not in categorical])
    completeness = casemix_by_unit(cohort, unit, covariates)
    warned = _with_casemix_warnings(model, cohort, completeness, unit)
    keys = [pl.col(unit).alias("unit_code"), (pl.col(period).cast(pl.String) if period else pl.lit("all")).alias("period")]
    counts = cohort.group_by(keys).agg(pl.col("event").cast(pl.Float64).sum().alias("observed"),
                                       pl.len().cast(pl.Float64).alias("denominator"),
                                       pl.col("__expected").sum().alias("expected"))
    return counts, warned, completeness, cells, cohort


def _assert_same_frame(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    """Same columns, types and rows (in any order); floats to 1e-12 relative, everything else exactly."""
    assert got.columns == want.columns and got.schema == want.schema
    assert got.height == want.height
    got, want = got.sort(keys, nulls_last=True), want.sort(keys, nulls_last=True)
    for c in got.columns:
        if got.schema[c] == pl.Float64:
            np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-12, atol=0, err_msg=c)
        else:
            assert got[c].to_list() == want[c].to_list(), c


@pytest.mark.parametrize(("n", "seed", "missing", "units", "cohort"), [
    (6_000, 1, "category", None, None),                # patterns pooled for the fit (> 2,000 patients)
    (6_000, 2, "complete_case", None, None),           # patients with a blank dropped (complete-case analysis)
    (1_500, 3, "category", None, "stage != 'X'"),      # few patients: the fit groups nobody, the cells still do
    (5_000, 4, "category", ["only one"], None),        # a single unit
])
def test_cohort_counts_equal_the_plain_group_bys(n: int, seed: int, missing: str, units, cohort) -> None:
    frame = _frame(n, seed, units=units)
    covariates = None if missing == "category" else ["age", "sex", "stage", "performance_status"]
    spec = _spec(missing, covariates=covariates, cohort=cohort)
    ds = LoadedDataset("patients", frame, RowAccounting("patients", "x.parquet", n, n), "digest")
    counts, acc, model, extras = cohort_counts(spec, ds, unit_column="trust_code", period_column="financial_year")
    want_counts, want_model, want_completeness, _, kept = _plain(spec, frame, "trust_code", "financial_year")
    _assert_same_frame(counts, want_counts, ["unit_code", "period"])
    assert counts["denominator"].sum() == kept.height == acc.rows_used
    assert model.warnings == want_model.warnings
    for name in ("coefficients", "calibration"):
        assert getattr(model, name).equals(getattr(want_model, name)), name
    assert (model.c_statistic, model.hosmer_lemeshow_chi2, model.n, model.coding, model.completeness) == (
        want_model.c_statistic, want_model.hosmer_lemeshow_chi2, want_model.n, want_model.coding,
        want_model.completeness)
    got, want = extras["completeness"], want_completeness
    assert got.columns == want.columns and got.sort("unit_code")["unit_code"].equals(want.sort("unit_code")["unit_code"])
    for c in got.columns[1:]:  # means of sums added in another order; z and relative differences follow
        np.testing.assert_allclose(got.sort("unit_code")[c].to_numpy(), want.sort("unit_code")[c].to_numpy(),
                                   rtol=1e-12, atol=1e-12, err_msg=c)
    if missing == "complete_case":
        assert acc.exclusions[-1].reason.startswith("incomplete case-mix") and acc.exclusions[-1].rows > 0


@pytest.mark.parametrize("categorical", [["sex", "stage", "performance_status"], ["performance_status"], []])
def test_cells_from_codes_equal_the_group_by_on_values(categorical: list[str]) -> None:
    frame = _frame(4_000, 9).filter(pl.col("event").is_not_null())
    covariates = ["age", "sex", "stage", "performance_status", "frailty"]
    risk = np.random.default_rng(9).random(frame.height)
    cohort = frame.with_columns(pl.Series("__expected", risk))
    coded = _cohort_codes(cohort, "trust_code", "financial_year", covariates)
    assert coded is not None
    got = casemix_cells(cohort, "trust_code", covariates, categorical, coded=coded)
    want = casemix_cells(cohort, "trust_code", covariates, categorical)
    _assert_same_frame(got, want, ["trust_code", *categorical])
    assert casemix_by_unit(cohort, "trust_code", covariates, cells=got).sort("unit_code")["complete_frailty"].max() == 0


def test_text_units_only_else_the_group_by() -> None:
    """Whole-number unit codes are grouped by value as before (no codes), with the same counts."""
    frame = _frame(3_000, 5).with_columns(pl.col("trust_code").cast(pl.Categorical).to_physical().alias("trust_code"))
    assert _cohort_codes(frame, "trust_code", "financial_year", ["age"]) is None
    spec = _spec("category")
    ds = LoadedDataset("patients", frame, RowAccounting("patients", "x.parquet", 3_000, 3_000), "digest")
    counts, _, _, _ = cohort_counts(spec, ds, unit_column="trust_code", period_column="financial_year")
    _assert_same_frame(counts, _plain(spec, frame, "trust_code", "financial_year")[0], ["unit_code", "period"])


def test_no_period_column_counts_all_periods_as_one() -> None:
    frame = _frame(3_000, 6)
    spec = _spec("category")
    ds = LoadedDataset("patients", frame, RowAccounting("patients", "x.parquet", 3_000, 3_000), "digest")
    counts, _, _, _ = cohort_counts(spec, ds, unit_column="trust_code", period_column=None)
    assert set(counts["period"]) == {"all"}
    _assert_same_frame(counts, _plain(spec, frame, "trust_code", None)[0], ["unit_code", "period"])


@pytest.mark.parametrize("column", [
    pl.Series("t", ["b", None, "a", "b", "é", "", " a", None, "a"]),
    pl.Series("i", [5, None, -3, 5, 2**40, 0, None], dtype=pl.Int64),  # widely spread: ranked
    pl.Series("s", [3, 1, 3, 9, None, 1], dtype=pl.Int8),
    pl.Series("g", [1000, 1300, None, 1000] * 30, dtype=pl.Int32),  # gaps, but within reach: kept
    pl.Series("b", [True, None, False, True], dtype=pl.Boolean),
    pl.Series("f", [0.5, None, 2.25, 0.5, -1.0], dtype=pl.Float64),
    pl.Series("n", [None, None, None], dtype=pl.String),
    pl.Series("e", [], dtype=pl.String),
])
def test_column_codes_follow_the_values(column: pl.Series) -> None:
    """Oracle: the values themselves. A blank is 0, equal values share a code and only they do, whole numbers
    and text keep their order (text by its characters, whatever polars' process-wide category numbers are), and the
    codes stay within 4 per row (plus 1,025)."""
    codes = column_codes(column.to_frame(), [column.name])[column.name]
    values = column.to_list()
    assert codes.shape == (len(values),) and codes.dtype == np.int64
    assert [c == 0 for c in codes] == [v is None for v in values]
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (codes[i] == codes[j]) == (a == b), (a, b)
            if (column.dtype.is_integer() or column.dtype == pl.String) and a is not None and b is not None and a < b:
                assert codes[i] < codes[j]
    assert codes.size == 0 or 0 <= codes.min() <= codes.max() <= 4 * len(values) + 1025


def _wide(n: int, distinct: int, seed: int) -> pl.DataFrame:
    """Three whole-number columns of ``distinct`` values spread over up to 4 per row (codes with gaps)."""
    rng = np.random.default_rng(seed)
    values = rng.choice(4 * n, distinct, replace=False)
    return pl.DataFrame({f"c{i}": values[rng.integers(0, distinct, n)] for i in range(3)})


@pytest.mark.parametrize("frame", [
    _frame(5_000, 8).select("trust_code", "sex", "performance_status"),  # one count per possible key
    _wide(2_000, 40, 1),      # too wide with the gaps: closed first, then one count per key
    _wide(2_000, 2_000, 2),   # too many combinations even without gaps: keys ranked
], ids=["text", "gaps", "ranked"])
def test_combined_groups_match_a_group_by_in_key_order(frame: pl.DataFrame) -> None:
    """Oracle: polars group_by on the columns. Same groups and sizes, numbered by the codes read last column first."""
    codes = column_codes(frame, frame.columns)
    group, sizes = combined_groups([codes[c] for c in frame.columns], frame.height)
    assert sizes.sum() == frame.height and (np.bincount(group) == sizes).all()
    want = frame.with_columns(pl.Series("g", group)).group_by(frame.columns).agg(pl.col("g").unique())
    assert (want["g"].list.len() == 1).all() and want.height == sizes.size  # one number per value combination
    first = np.unique(group, return_index=True)[1]
    keys = [tuple(codes[c][i] for c in reversed(frame.columns)) for i in first]
    assert keys == sorted(keys)


def test_combined_groups_give_up_beyond_one_integer_key() -> None:
    rng = np.random.default_rng(3)
    codes = [rng.permutation(1_000) + 1 for _ in range(7)]  # 1,000 distinct codes each: 1e21 combinations
    assert combined_groups(codes, 1_000) is None



def test_results_do_not_depend_on_strings_cast_before(tmp_path, catalogue_path) -> None:
    """polars numbers categories across a process, so the codes of the trusts and covariate levels depend on what
    the process cast before (a long-running dashboard): two fresh processes, one of which first casts those
    strings in reverse order, give the same results bit for bit."""
    import subprocess
    import sys

    script = (
        "import sys, polars as pl\n"
        "from audit_metrics.catalogue import load_catalogue\n"
        "from audit_metrics.pipeline import run_audit\n"
        "loaded = load_catalogue(sys.argv[1])\n"
        "if sys.argv[3] == 'cast first':\n"
        "    frame = pl.read_parquet(loaded.dataset_path('patients'))\n"
        "    for col in ('trust_code', 'sex', 'stage', 'financial_year', 'ethnic_group'):\n"
        "        pl.Series(sorted(frame[col].drop_nulls().unique().to_list(), reverse=True)).cast(pl.Categorical)\n"
        "run = run_audit(loaded, only=['bowel_mort90', 'lung_surv1y'])\n"
        "run.table().write_parquet(sys.argv[2])\n")
    outs = []
    for mode in ("fresh", "cast first"):
        out = tmp_path / f"{mode.replace(' ', '_')}.parquet"
        subprocess.run([sys.executable, "-c", script, str(catalogue_path), str(out), mode], check=True, timeout=300)
        outs.append(pl.read_parquet(out))
    assert outs[0].equals(outs[1])
