"""Cohort counts of an indicator without a risk model (filtered and counted in one query, #16).

Oracle: the counts and the row accounting worked out row by row in plain Python from the same rows.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest

from audit_metrics.catalogue import IndicatorSpec, RiskAdjustmentSpec
from audit_metrics.io import ROW, LoadedDataset, RowAccounting
from audit_metrics.pipeline import (
    _categorical,
    _unit_codes_hash,
    _with_casemix_warnings,
    casemix_by_unit,
    casemix_cells,
    cohort_counts,
)
from audit_metrics.risk import fit_risk_model


def _dataset(seed: int = 7, n: int = 3_000) -> LoadedDataset:
    rng = np.random.default_rng(seed)
    event = rng.random(n) < 0.3
    blank = rng.random(n) < 0.05
    frame = pl.DataFrame({
        ROW: np.arange(2, n + 2),
        "trust_code": rng.choice(["T1", "T2", "T3", "T4"], n),
        "financial_year": rng.choice(["2021/22", "2022/23"], n),
        "site": rng.choice(["Bowel", "Lung", None], n, p=[0.5, 0.4, 0.1]),
        "event": pl.Series([None if b else bool(e) for e, b in zip(event, blank, strict=True)], dtype=pl.Boolean),
        "age": rng.integers(18, 100, n),
    })
    # one unit-period whose outcomes are all blank: no row for it, as when the cohort is materialised
    frame = frame.with_columns(pl.when((pl.col("trust_code") == "T4") & (pl.col("financial_year") == "2021/22"))
                               .then(None).otherwise(pl.col("event")).alias("event"))
    return LoadedDataset("patients", frame, RowAccounting("patients", "x.parquet", n, n), "digest")


def _spec(cohort: str | None) -> IndicatorSpec:
    return IndicatorSpec.model_validate({"id": "x_ind", "title": "X", "dataset": "patients", "cohort": cohort,
                                         "numerator": "event", "better": "lower"})


def _oracle(ds: LoadedDataset, in_cohort) -> tuple[dict, int, list[int], int]:
    observed: Counter = Counter()
    size: Counter = Counter()
    blank_rows: list[int] = []
    outside = 0
    for r in ds.frame.iter_rows(named=True):
        if not in_cohort(r):
            outside += 1
            continue
        if r["event"] is None:
            blank_rows.append(r[ROW])
            continue
        key = (r["trust_code"], r["financial_year"])
        observed[key] += int(r["event"])
        size[key] += 1
    return {k: (float(observed[k]), float(size[k])) for k in size}, outside, blank_rows, sum(size.values())


@pytest.mark.parametrize(("cohort", "in_cohort"), [
    ("site = 'Bowel' AND age >= 40", lambda r: r["site"] == "Bowel" and r["age"] >= 40),
    (None, lambda r: True),
])
def test_counts_and_accounting_match_row_by_row(cohort, in_cohort) -> None:
    ds = _dataset()
    counts, acc, model, extras = cohort_counts(_spec(cohort), ds, unit_column="trust_code",
                                               period_column="financial_year")
    expected, outside, blank_rows, used = _oracle(ds, in_cohort)
    assert model is None and extras == {}
    assert counts.columns == ["unit_code", "period", "observed", "denominator"]
    assert counts.schema["observed"] == counts.schema["denominator"] == pl.Float64
    got = {(r["unit_code"], r["period"]): (r["observed"], r["denominator"]) for r in counts.iter_rows(named=True)}
    assert got == expected
    assert ("T4", "2021/22") not in got  # every outcome blank there
    assert acc.rows_read == ds.frame.height and acc.rows_used == used and acc.balanced
    reasons = {e.reason: e for e in acc.exclusions}
    assert reasons["not in the cohort"].rows == outside
    blank = reasons["missing outcome (numerator is blank)"]
    assert blank.rows == len(blank_rows) and blank.examples == tuple(blank_rows[:5])


def test_no_blank_outcome_no_exclusion_line() -> None:
    ds = _dataset()
    frame = ds.frame.with_columns(pl.col("event").fill_null(False))
    ds = LoadedDataset("patients", frame, ds.accounting, "digest")
    _, acc, _, _ = cohort_counts(_spec("site = 'Lung'"), ds, unit_column="trust_code", period_column="financial_year")
    assert [e.reason for e in acc.exclusions] == ["not in the cohort"]
    assert acc.rows_used == frame.filter(pl.col("site") == "Lung").height


def test_unit_codes_hash_is_per_frame() -> None:
    a = _dataset(1).frame
    b = a.with_columns(pl.col("trust_code").replace({"T1": "T9"}))
    assert _unit_codes_hash(a, "trust_code") == str(a["trust_code"].hash(seed=0).sum())
    assert _unit_codes_hash(b, "trust_code") == str(b["trust_code"].hash(seed=0).sum())
    assert _unit_codes_hash(a, "trust_code") != _unit_codes_hash(b, "trust_code")
    assert _unit_codes_hash(a, "financial_year") == str(a["financial_year"].hash(seed=0).sum())


def test_casemix_from_cells_matches_plain_sums() -> None:
    """Completeness and mean expected risk per unit, summed from the (unit, categorical) cells."""
    rng = np.random.default_rng(16)
    n = 3000
    unit = rng.choice([f"U{i}" for i in range(12)], n)
    stage = rng.choice(["1", "2", "3", "4", None], n)
    stage[:40], unit[:40] = "X", "U3"  # a level found at one unit only
    age = pl.Series("age", rng.integers(40, 90, n)).set(pl.Series(rng.random(n) < 0.1), None)
    cohort = pl.DataFrame({"unit": unit, "stage": stage, "age": age, "sex": rng.choice(["F", "M"], n)})
    y = (rng.random(n) < 0.2).astype(float)
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage", "sex"], "categorical": ["stage", "sex"],
                                              "missing": "category"})
    model, risk, kept = fit_risk_model(cohort, y, spec, "x")
    assert kept.all()
    cohort = cohort.with_columns(pl.Series("__expected", risk))
    cells = casemix_cells(cohort, "unit", ["age", "stage", "sex"], _categorical(model))
    assert cells is not None and cells.height < n
    got = casemix_by_unit(cohort, "unit", ["age", "stage", "sex"], cells=cells).sort("unit_code")
    rows: dict[str, list[dict]] = {}
    for r in cohort.iter_rows(named=True):
        rows.setdefault(r["unit"], []).append(r)
    codes = sorted(rows)
    assert got["unit_code"].to_list() == codes
    for c in ("age", "stage", "sex"):
        want = [sum(r[c] is not None for r in rows[u]) / len(rows[u]) for u in codes]
        assert got[f"complete_{c}"].to_list() == want
    mean_risk = np.array([sum(r["__expected"] for r in rows[u]) / len(rows[u]) for u in codes])
    centre = np.median(mean_risk)
    spread = 1.4826 * np.median(np.abs(mean_risk - centre))
    np.testing.assert_allclose(got["casemix_robust_z"].to_numpy(), (mean_risk - centre) / spread, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["casemix_relative_difference"].to_numpy(), mean_risk / centre - 1,
                               rtol=1e-9, atol=1e-12)
    # the warnings read from the cells are those read from the patients (tested against plain counts in
    # test_perf16b_casemix)
    flagged = got.with_columns(pl.lit(5.0).alias("casemix_robust_z"), pl.lit(0.3).alias("casemix_relative_difference"))
    from_cells = _with_casemix_warnings(model, cohort, flagged, "unit", cells=cells).warnings
    assert from_cells == _with_casemix_warnings(model, cohort, flagged, "unit").warnings
    assert any(w.startswith("stage = X: 100%") for w in from_cells)


def test_casemix_cells_refuses_colliding_names() -> None:
    cohort = pl.DataFrame({"len": ["a", "b"], "u": ["U1", "U2"], "__expected": [0.1, 0.2]})
    assert casemix_cells(cohort, "u", ["len"], ["len"]) is None  # a covariate named like the count column
