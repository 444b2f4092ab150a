"""From catalogue + extracts to one results row per indicator x level x unit x period.

``run_indicator`` reads like the method section of an audit report: cohort -> counts per unit and
period -> (risk model -> expected) -> roll-up to each level -> overdispersion -> limits -> status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
from scipy import special

from audit_metrics.catalogue import (
    IndicatorSpec,
    LoadedCatalogue,
    MethodOptions,
    is_aggregate,
    load_catalogue,
)
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.expressions import compile_expression
from audit_metrics.funnel import limits as limit_values
from audit_metrics.io import (
    ROW,
    Exclusion,
    LoadedDataset,
    RowAccounting,
    Units,
    load_all,
    reading_once,
)
from audit_metrics.narrative import p_text
from audit_metrics.outliers import (
    STATUS_ENUM,
    UNSCORED_REASON,
    assess_units,
    coverage_label,
    status_label,
)
from audit_metrics.overdispersion import Overdispersion
from audit_metrics.periods import order_note, time_order
from audit_metrics.risk import (
    RiskModel,
    column_codes,
    combined_groups,
    covariate_patterns,
    first_rows,
    fit_risk_model,
)

__all__ = [
    "CONTRACT_COLUMNS",
    "AuditRun",
    "IndicatorResult",
    "run_audit",
    "run_indicator",
]

CONTRACT_COLUMNS = (
    "indicator_id", "indicator_title", "tumour_site", "level", "unit_code", "unit_name",
    "parent_code", "period", "observed", "denominator", "expected", "value", "adjusted_value",
    "target", "lower_alert", "upper_alert", "lower_alarm", "upper_alarm", "z", "p_value", "status",
    "status_label", "phi", "tau2", "method",
)
NATIONAL = "national"
UNIT_LEVEL = "trust"
ALL_PERIODS = "all"


@dataclass(frozen=True)
class CurveInputs:
    """What a funnel's limit curves need: computed on first use (most are never drawn)."""

    level: str
    period: str
    theta0: float
    overdispersion: Overdispersion
    x: np.ndarray
    rate_scale: float


@dataclass(frozen=True)
class IndicatorResult:
    """Everything computed for one indicator."""

    spec: IndicatorSpec
    options: MethodOptions
    table: pl.DataFrame                   # contract columns + extras, every level and period
    curve_inputs: tuple[CurveInputs, ...]
    overdispersion: dict[tuple[str, str], Overdispersion]
    accounting: RowAccounting             # cohort accounting (patient-level) or extract rows used
    national_rate: float
    risk_model: RiskModel | None = None
    warnings: tuple[str, ...] = ()
    headline_period: str | None = None    # the pooled periods, or the latest period when not pooled

    @cached_property
    def curves(self) -> pl.DataFrame:
        """Limit curves for plotting (every level and period), computed once on first use."""
        parts = [_curve(self.spec, self.options, c) for c in self.curve_inputs]
        return pl.concat([p for p in parts if p.height], how="diagonal_relaxed") if parts else pl.DataFrame()

    def summary(self) -> str:
        trust = self.table.filter(pl.col("level") == UNIT_LEVEL, pl.col("period") == self.pooled_period)
        counts = trust["status"].value_counts()
        n = {r["status"]: r["count"] for r in counts.iter_rows(named=True)}
        alerts = n.get("alert_low", 0) + n.get("alert_high", 0)
        alarms = n.get("alarm_low", 0) + n.get("alarm_high", 0)
        od = self.overdispersion.get((UNIT_LEVEL, self.pooled_period))
        phi = f"{od.phi:.3g}" if od and np.isfinite(od.phi) else "-"
        tau2 = f"{od.tau2:.3g}" if od and od.applied and od.method == "additive" else "-"
        assessed = trust.height - n.get("not_assessed", 0)
        limits = self.options.limits
        flags = (f"outside {coverage_label(limits[0])}%={alerts + alarms}" if len(limits) == 1  # an only limit
                 else f"alerts={alerts}, alarms={alarms}")
        return (f"{self.spec.id} [{self.pooled_period}]: {assessed}/{trust.height} units assessed, phi={phi}, tau2={tau2}, "
                f"{flags}"
                + (f" [{'; '.join(self.warnings)}]" if self.warnings else ""))

    @cached_property
    def pooled_period(self) -> str:
        """The period the headline results are for: all periods pooled ("2021/22 to 2023/24"), or the
        latest period for an indicator with ``pooled: false`` (rolling windows, monthly returns).

        Without a recorded headline, the pooled label is the one that spans the other periods (not
        the first row's period: the table is sorted by period, so that is a single year).
        """
        if self.headline_period is not None:
            return self.headline_period
        periods = {str(p) for p in self.table["period"].unique().drop_nulls()} if self.table.height else set()
        if len(periods) <= 1:
            return periods.pop() if periods else ALL_PERIODS
        spanning = [p for p in periods if _pooled_label(sorted(periods - {p})) == p]
        if len(spanning) != 1:
            msg = f"{self.spec.id}: cannot tell the pooled period among {sorted(periods)}"
            raise AuditMetricsError(msg)
        return spanning[0]


@dataclass(frozen=True)
class AuditRun:
    """The results of every indicator plus provenance."""

    results: dict[str, IndicatorResult]
    datasets: dict[str, RowAccounting]
    catalogue_digest: str
    data_digests: dict[str, str]
    generated_at: str
    units: Units | None = None
    unit_rows: dict[str, pl.DataFrame] = field(default_factory=dict)  # records per unit, per dataset

    def case_ascertainment(self, dataset: str = "patients") -> pl.DataFrame:
        """Records per unit against the externally expected number of cases (may exceed 100%)."""
        if self.units is None or dataset not in self.unit_rows or "expected_cases" not in self.units.frame.columns:
            return pl.DataFrame(schema={"unit_code": pl.String, "records": pl.Int64, "case_ascertainment": pl.Float64})
        return (self.units.frame.select("unit_code", "expected_cases")
                .join(self.unit_rows[dataset], on="unit_code", how="left")
                .with_columns(pl.col("records").fill_null(0),
                              (pl.col("records").fill_null(0) / pl.col("expected_cases")).alias("case_ascertainment"))
                .drop("expected_cases"))

    def table(self) -> pl.DataFrame:
        return pl.concat([r.table for r in self.results.values()], how="diagonal_relaxed")

    def curves(self) -> pl.DataFrame:
        return pl.concat([r.curves for r in self.results.values()], how="diagonal_relaxed")


def _pooled_label(periods: Sequence[str]) -> str:
    periods = time_order(p for p in periods if p is not None)
    if not periods:
        return ALL_PERIODS
    return periods[0] if len(periods) == 1 else f"{periods[0]} to {periods[-1]}"


def cohort_counts(spec: IndicatorSpec, ds: LoadedDataset, *, unit_column: str,
                  period_column: str | None, timings: dict[str, float] | None = None,
                  aggregate: bool | None = None,
                  ) -> tuple[pl.DataFrame, RowAccounting, RiskModel | None, dict[str, pl.DataFrame]]:
    """Observed, denominator (and expected) per unit and period for one indicator.

    ``timings`` (optional) accumulates the seconds spent fitting risk models under "model_fit".
    """
    frame = ds.frame
    period = pl.col(period_column).cast(pl.String) if period_column else pl.lit(ALL_PERIODS)
    keys = [pl.col(unit_column).alias("unit_code"), period.alias("period")]
    extras: dict[str, pl.DataFrame] = {}
    if aggregate if aggregate is not None else not spec.is_patient_level:
        by_design = unit_column in ds.key and bool(set(ds.key) - {unit_column, period_column})
        return _aggregate_counts(spec, ds, keys, by_design=by_design)

    schema = frame.schema
    numerator = compile_expression(spec.numerator, schema)
    cohort_filter = compile_expression(spec.cohort, schema).fill_null(False) if spec.cohort else None
    # only the columns this indicator reads are carried through the filter (not every column of the extract)
    needed = {ROW, unit_column, *([period_column] if period_column else []), *numerator.meta.root_names(),
              *(cohort_filter.meta.root_names() if cohort_filter is not None else ()),
              *(c.name for c in (spec.risk_adjustment.covariates if spec.risk_adjustment else ()))}
    narrow = frame.lazy().select(c for c in frame.columns if c in needed)
    selected = narrow.filter(cohort_filter) if cohort_filter is not None else narrow
    if spec.risk_adjustment is None:
        return _counts_without_model(spec, ds, selected, numerator, keys)
    cohort = selected.with_columns(numerator.alias("__event")).collect()
    exclusions: list[Exclusion] = []
    if cohort["__event"].null_count():
        missing = cohort.filter(pl.col("__event").is_null())
        cohort = cohort.filter(pl.col("__event").is_not_null())
        exclusions.append(Exclusion("missing outcome (numerator is blank)", missing.height,
                                    tuple(missing[ROW].head(5).to_list())))
    model = None
    coded: _CohortCodes | None = None
    if spec.risk_adjustment is not None and cohort.height:
        outcome = cohort["__event"].to_numpy().astype(float)
        covariates = [c.name for c in spec.risk_adjustment.covariates]
        coded = _cohort_codes(cohort, unit_column, period_column, covariates)
        fit_start = time.perf_counter()
        try:
            model, risk, kept = fit_risk_model(cohort, outcome, spec.risk_adjustment, spec.id,
                                               patterns=coded.patterns if coded else None)
        except Exception as exc:  # numerical failure: report, never silently drop adjustment
            msg = f"{spec.id}: the risk model could not be fitted ({exc})"
            raise AuditMetricsError(msg) from None
        if timings is not None:
            timings["model_fit"] = timings.get("model_fit", 0.0) + time.perf_counter() - fit_start
        if (~kept).any():
            dropped = cohort.filter(pl.Series(~kept))
            exclusions.append(Exclusion("incomplete case-mix (complete-case analysis)", dropped.height,
                                        tuple(dropped[ROW].head(5).to_list())))
            cohort = cohort.filter(pl.Series(kept))
            outcome = outcome[kept]
            coded = coded.kept(kept) if coded else None
        cohort = cohort.with_columns(pl.Series("__expected", risk))
        cells = casemix_cells(cohort, unit_column, covariates, _categorical(model), coded=coded)
        completeness = casemix_by_unit(cohort, unit_column, covariates, cells=cells)
        extras["completeness"] = completeness
        model = _with_casemix_warnings(model, cohort, completeness, unit_column, cells=cells)
    if coded is not None:
        counts = _counts_from_codes(cohort, coded, unit_column=unit_column, period_column=period_column,
                                    events=outcome, expected=risk)
    else:
        aggs = [pl.col("__event").cast(pl.Float64).sum().alias("observed"),
                pl.len().cast(pl.Float64).alias("denominator")]
        if model is not None:
            aggs.append(pl.col("__expected").sum().alias("expected"))
        counts = cohort.group_by(keys).agg(aggs)
    acc = RowAccounting(spec.id, ds.accounting.file, frame.height, cohort.height,
                        (Exclusion("not in the cohort", frame.height - cohort.height - sum(e.rows for e in exclusions),
                                   ()), *exclusions))
    return counts, acc, model, extras


@dataclass(frozen=True)
class _CohortCodes:
    """The cohort's patients as small whole numbers, worked out once for the model, the case-mix and the counts.

    ``unit`` and ``period`` are each patient's codes (``risk.column_codes``; ``period`` None for one period),
    ``patterns`` the cohort's ``risk.covariate_patterns`` (distinct covariate rows, patients per row, each
    patient's row).
    """

    unit: np.ndarray
    period: np.ndarray | None
    patterns: tuple[pl.DataFrame, np.ndarray, np.ndarray]

    def kept(self, rows: np.ndarray) -> _CohortCodes:
        """The codes of the patients ``rows`` keeps (a boolean mask)."""
        distinct, _, pattern = self.patterns
        pattern = pattern[rows]
        return _CohortCodes(self.unit[rows], None if self.period is None else self.period[rows],
                            (distinct, np.bincount(pattern, minlength=distinct.height), pattern))


def _groups_by_value(dtype: pl.DataType) -> bool:
    """Whether equal codes (``risk.column_codes``) mean equal values, as grouping the column by value does."""
    return dtype == pl.String or dtype.is_integer() or dtype == pl.Boolean


def _cohort_codes(cohort: pl.DataFrame, unit_column: str, period_column: str | None,
                  covariates: Sequence[str]) -> _CohortCodes | None:
    """Codes for the units, periods and covariate patterns of a cohort, each column coded once.

    None when the unit or period column is not text (then the counts are grouped by value, as before).
    """
    schema = cohort.schema
    if schema[unit_column] != pl.String or (period_column is not None and schema[period_column] != pl.String):
        return None
    codes = column_codes(cohort, [unit_column, *([period_column] if period_column else []), *covariates])
    return _CohortCodes(codes[unit_column], codes[period_column] if period_column else None,
                        covariate_patterns(cohort, list(covariates), codes=codes))


def _counts_from_codes(cohort: pl.DataFrame, coded: _CohortCodes, *, unit_column: str, period_column: str | None,
                       events: np.ndarray, expected: np.ndarray) -> pl.DataFrame:
    """Observed, denominator and expected per unit and period, counted on the codes (no text hashed).

    The same table as grouping the cohort by unit and period (in their order); observed and denominator are
    exact (whole numbers), expected is the same sum added in patient order (equal to ~1e-15 relative).
    """
    n = cohort.height
    grouped = combined_groups([coded.unit] if coded.period is None else [coded.unit, coded.period], n)
    assert grouped is not None  # two columns of at most n codes each
    group, sizes = grouped
    first = pl.Series(first_rows(group, sizes.size))
    period = cohort[period_column].gather(first) if period_column else pl.repeat(ALL_PERIODS, sizes.size, eager=True)
    return pl.DataFrame({
        "unit_code": cohort[unit_column].gather(first), "period": period.cast(pl.String),
        "observed": np.bincount(group, weights=events, minlength=sizes.size),
        "denominator": sizes.astype(float),
        "expected": np.bincount(group, weights=expected, minlength=sizes.size)}).sort("unit_code", "period")


def _counts_without_model(spec: IndicatorSpec, ds: LoadedDataset, selected: pl.LazyFrame, numerator: pl.Expr,
                          keys: list[pl.Expr]) -> tuple[pl.DataFrame, RowAccounting, None, dict[str, pl.DataFrame]]:
    """``cohort_counts`` for an indicator without a risk model: filter and count in one query.

    The same counts as filtering the cohort, dropping blank outcomes and grouping (a sum of 0/1 and a
    count are exact), without materialising the cohort: a unit-period whose outcomes are all blank has
    no row, as it has none there.
    """
    frame = ds.frame
    event = numerator.alias("__event")
    counts = selected.group_by(keys).agg(
        event.cast(pl.Float64).sum().alias("observed"), event.count().cast(pl.Float64).alias("denominator"),
        event.null_count().alias("__blank")).collect()
    blank = int(counts["__blank"].sum())
    counts = counts.filter(pl.col("denominator") > 0).drop("__blank")
    used = int(counts["denominator"].sum())
    exclusions: list[Exclusion] = []
    if blank:
        first = selected.filter(numerator.is_null()).select(ROW).head(5).collect()
        exclusions.append(Exclusion("missing outcome (numerator is blank)", blank, tuple(first[ROW].to_list())))
    acc = RowAccounting(spec.id, ds.accounting.file, frame.height, used,
                        (Exclusion("not in the cohort", frame.height - used - blank, ()), *exclusions))
    return counts, acc, None, {}


def _aggregate_counts(spec: IndicatorSpec, ds: LoadedDataset, keys: list[pl.Expr], *, by_design: bool = False,
                      ) -> tuple[pl.DataFrame, RowAccounting, None, dict[str, pl.DataFrame]]:
    """Sums per unit and period of an aggregate table, for this indicator's rows only.

    ``cohort`` filters rows (one long table can serve many indicators); a row with a blank in one of
    *this* indicator's columns is excluded from this indicator only, and the accounting says so;
    several rows for one unit and period (after the filter) are summed and reported, never silently, unless the
    dataset's key declares them (``by_design``: the unit and other columns, such as route and modality).
    """
    frame = ds.frame
    exclusions: list[Exclusion] = []
    if spec.cohort:
        inside = frame.filter(compile_expression(spec.cohort, frame.schema).fill_null(False))
        if frame.height - inside.height:
            exclusions.append(Exclusion("not in the cohort", frame.height - inside.height, ()))
        frame = inside
    time_column = spec.person_time or (spec.denominator if spec.statistic == "rate" else None)
    columns = list(dict.fromkeys(c for c in (spec.numerator, spec.denominator, spec.expected, time_column) if c))
    for col in columns:
        blank = frame.filter(pl.col(col).is_null())
        if blank.height:
            exclusions.append(Exclusion(f"blank {col} (excluded from this indicator only)", blank.height,
                                        tuple(blank[ROW].head(5).to_list())))
            frame = frame.filter(pl.col(col).is_not_null())
    aggs = [pl.col(spec.numerator).sum().cast(pl.Float64).alias("observed"), pl.len().alias("_rows")]
    if spec.denominator:
        aggs.append(pl.col(spec.denominator).sum().cast(pl.Float64).alias("denominator"))
    if spec.expected:
        aggs.append(pl.col(spec.expected).sum().cast(pl.Float64).alias("expected"))
    if time_column:
        aggs.append(pl.col(time_column).sum().cast(pl.Float64).alias("person_time"))
    counts = frame.group_by(keys).agg(aggs)
    notes: list[str] = []
    repeated = counts.filter(pl.col("_rows") > 1).sort("unit_code", "period")
    # ``by_design``: the dataset's key names columns beyond unit and period (one row per trust x route x modality),
    # so several rows per unit and period are declared, and summing them is the indicator's definition: no warning
    # (the shipped 62-day example warned on every run, and its advice, key: [unit, period], would break it)
    if repeated.height and not by_design:
        shown = ", ".join(f"{r['unit_code']} ({r['period']}: {r['_rows']} rows)" for r in repeated.head(10).iter_rows(named=True))
        more = f" and {repeated.height - 10:,} more" if repeated.height > 10 else ""
        notes.append(f"{repeated.height:,} unit-period(s) have more than one row, which were summed: {shown}{more}. "
                     "If the rows are different breakdowns (e.g. cancer types), add a cohort filter; if the table "
                     "has one row per unit and period, declare key: [unit, period] on the dataset to refuse repeats")
    acc = RowAccounting(spec.id, ds.accounting.file, ds.frame.height, frame.height, tuple(exclusions), tuple(notes))
    return counts.drop("_rows"), acc, None, {}


def _categorical(model: RiskModel) -> list[str]:
    return [name for name, coding in model.coding.items() if coding.get("type") == "categorical"]


def casemix_cells(cohort: pl.DataFrame, unit_column: str, covariates: Sequence[str],
                  categorical: Sequence[str], *, coded: _CohortCodes | None = None) -> pl.DataFrame | None:
    """One pass over the cohort for the case-mix columns and warnings: patients (``len``) per unit and
    raw value of every categorical covariate (a few thousand cells), with their summed expected risk and,
    for each other covariate, how many have a value. None when the names would collide (then each
    function groups the cohort itself). ``coded``: the cohort's codes, from which the cells are counted
    without hashing every patient's text (the same cells; expected sums added in another order)."""
    others = [c for c in covariates if c not in categorical]
    names = [unit_column, *categorical, "len", "__expected_sum", *(f"__present_{c}" for c in others)]
    if len(set(names)) < len(names):
        return None
    schema = cohort.schema
    if coded is not None and all(_groups_by_value(schema[c]) for c in categorical):
        return _cells_from_codes(cohort, coded, unit_column, list(categorical), others)
    return cohort.group_by(unit_column, *categorical).agg(
        pl.len(), pl.col("__expected").sum().alias("__expected_sum"),
        *[pl.col(c).is_not_null().sum().alias(f"__present_{c}") for c in others])


def _cells_from_codes(cohort: pl.DataFrame, coded: _CohortCodes, unit_column: str, categorical: list[str],
                      others: list[str]) -> pl.DataFrame:
    """``casemix_cells`` counted on the codes: a cell is a unit and a combination of categorical values,
    which the patient's covariate pattern determines (so only the distinct patterns are grouped by value)."""
    distinct, _, pattern = coded.patterns
    values, _, value_of_pattern = (covariate_patterns(distinct, categorical) if categorical
                                   else (distinct.clear(), None, np.zeros(distinct.height, dtype=np.int64)))
    grouped = combined_groups([coded.unit, value_of_pattern[pattern]], cohort.height)
    assert grouped is not None  # two columns of at most n codes each
    cell, sizes = grouped
    first = first_rows(cell, sizes.size)
    schema = cohort.schema
    present = {}
    for c in others:  # a pattern has the covariate or not: patients with it per cell
        has = distinct[c].is_not_null().to_numpy()
        present[f"__present_{c}"] = (sizes if has.all() else
                                     np.bincount(cell, weights=has[pattern], minlength=sizes.size).astype(np.int64))
    return pl.DataFrame({
        unit_column: cohort[unit_column].gather(first),
        **{c: values[c].gather(value_of_pattern[pattern[first]]) for c in categorical},
        "len": sizes,
        "__expected_sum": np.bincount(cell, weights=cohort["__expected"].to_numpy(), minlength=sizes.size),
        **present,
    }).with_columns(pl.col("len", *present).cast(pl.UInt32), *[pl.col(c).cast(schema[c]) for c in categorical]
                    ).sort(unit_column, *categorical)


def casemix_by_unit(cohort: pl.DataFrame, unit_column: str, covariates: Sequence[str], *,
                    cells: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per unit: completeness of each covariate, and how unusual its case-mix is.

    ``casemix_robust_z`` compares the unit's mean predicted risk (E/n) with all units' by median
    and MAD (x1.4826); ``casemix_relative_difference`` is E/n relative to the median unit's. Beyond 4
    robust SDs and 25%, the unit's case-mix is unlike the others' and its expected count rests on
    extrapolating the model. ``cells`` (from ``casemix_cells``): the same, summed from the cells.
    """
    if cells is None:
        per_unit = cohort.group_by(pl.col(unit_column).alias("unit_code")).agg(
            *[pl.col(c).is_not_null().mean().alias(f"complete_{c}") for c in covariates],
            pl.col("__expected").mean().alias("_mean_risk"), pl.len().alias("_n"))
    else:
        n = pl.col("len").sum().cast(pl.Float64)
        per_unit = cells.group_by(pl.col(unit_column).alias("unit_code")).agg(
            *[((pl.col(f"__present_{c}").sum() if f"__present_{c}" in cells.columns
                else pl.col("len").filter(pl.col(c).is_not_null()).sum()).cast(pl.Float64) / n).alias(f"complete_{c}")
              for c in covariates],
            (pl.col("__expected_sum").sum() / n).alias("_mean_risk"), pl.col("len").sum().alias("_n"))
    risk = per_unit["_mean_risk"].to_numpy()
    centre = np.median(risk)
    spread = 1.4826 * np.median(np.abs(risk - centre)) or np.inf
    return per_unit.with_columns(pl.Series("casemix_robust_z", (risk - centre) / spread),
                                 pl.Series("casemix_relative_difference", risk / centre - 1)).drop("_mean_risk", "_n")


def _with_casemix_warnings(model: RiskModel, cohort: pl.DataFrame, completeness: pl.DataFrame,
                           unit_column: str, *, cells: pl.DataFrame | None = None) -> RiskModel:
    """Add warnings where a unit's case-mix lies outside the range the model mostly saw."""
    notes = list(model.warnings)
    categorical = _categorical(model)
    # one pass over the cohort: patients per unit and raw value of every categorical covariate (a few
    # thousand groups), from which the unit sizes and each covariate's shares are summed
    if cells is None:
        cells = cohort.group_by(unit_column, *categorical).len()
    # the mean risk of a very small unit is noisy, so only units with 30+ patients are judged
    sizes = cells.group_by(pl.col(unit_column).alias("unit_code")).agg(pl.col("len").sum())
    # ...and the difference must be material (25%), not just many MADs among near-identical units
    unusual = completeness.join(sizes, on="unit_code").filter(
        pl.col("casemix_robust_z").abs() > 4, pl.col("casemix_relative_difference").abs() >= 0.25,
        pl.col("len") >= 30)
    if unusual.height:
        codes = ", ".join(unusual["unit_code"].sort().to_list()[:10])
        notes.append(f"case-mix unlike other units at {codes} (their mean predicted risk is more than 4 robust SDs "
                     "and 25% from the median unit's): their expected counts rely on extrapolating the model")
    for name in categorical:
        # counted on the raw values first (few groups), then named as levels
        shares = (cells.group_by(name, unit_column).agg(pl.col("len").sum())
                  .group_by(pl.col(name).cast(pl.String).fill_null("Missing").alias("level"), unit_column)
                  .agg(pl.col("len").sum()).with_columns((pl.col("len") / pl.col("len").sum().over("level")).alias("share"),
                                      pl.col("len").sum().over("level").alias("n")))
        # in level order: the groups come in no particular order, the warnings always in the same one
        dominant = shares.filter(pl.col("share") >= 0.8, pl.col("n") >= 20).sort("level", unit_column)
        for r in dominant.iter_rows(named=True):
            notes.append(f"{name} = {r['level']}: {r['share']:.0%} of these patients are at {r[unit_column]}, so the "
                         "model cannot separate this case-mix from that unit's own results")
    return replace(model, warnings=tuple(notes))


def _levels(counts: pl.DataFrame, units: Units, periods: list[str]) -> list[tuple[str, pl.DataFrame]]:
    """Counts for every unit (including those without data) and each higher level."""
    value_cols = [c for c in ("observed", "denominator", "expected", "person_time") if c in counts.columns]
    grid = units.frame.select("unit_code", "unit_name", *units.groups).join(
        pl.DataFrame({"period": periods}), how="cross")
    trust = grid.join(counts, on=["unit_code", "period"], how="left")
    groups = list(units.groups)
    out = [(UNIT_LEVEL, trust.with_columns(
        (pl.col(groups[0]) if groups else pl.lit(NATIONAL)).cast(pl.String).alias("parent_code")))]
    for i, g in enumerate(groups):
        parent = pl.col(groups[i + 1]).first() if i + 1 < len(groups) else pl.lit(NATIONAL)
        # in a fixed order (a group-by's is not): the units' order is the order the overdispersion fit adds
        # them in, and a different order changed the alliances' tau2, z and limits in the 14th digit run to run
        agg = trust.group_by(g, "period").agg(
            *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in value_cols],
            parent.cast(pl.String).alias("parent_code")).sort(g, "period")
        out.append((g, agg.with_columns(pl.col(g).cast(pl.String).alias("unit_code"),
                                        pl.col(g).cast(pl.String).alias("unit_name")).drop(g)))
    nat = trust.group_by("period").agg(
        *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in value_cols]).sort("period")
    out.append((NATIONAL, nat.with_columns(pl.lit(NATIONAL).alias("unit_code"),
                                           pl.lit("National").alias("unit_name"),
                                           pl.lit(None, pl.String).alias("parent_code"))))
    return out


def _series(name: str, values: np.ndarray) -> pl.Series:
    if values.dtype == object:
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    return pl.Series(name, values)


def _exposure(frame: pl.DataFrame, statistic: str) -> np.ndarray:
    col = {"proportion": "denominator", "ratio": "expected", "rate": "person_time",
           "ratio_of_counts": "denominator"}[statistic]
    return frame[col].to_numpy().astype(float) if col in frame.columns else np.full(frame.height, np.nan)


def binomial_ratio(spec: IndicatorSpec) -> bool:
    """Whether a ratio is a patient-level risk-adjusted binary outcome assessed on the binomial scale.

    A declared ``transform: log`` or ``sqrt`` (e.g. SHMI parity) is honoured instead: O/E is then
    assessed as a Poisson ratio on that scale, as for aggregate O/E tables.
    """
    return spec.statistic == "ratio" and spec.risk_adjustment is not None and spec.transform in (None, "arcsine")


def standard_shift(expected: np.ndarray, *, national: float, standard: float) -> np.ndarray:
    """Each unit's expected proportion moved to an external standard by a common odds ratio.

    logit(p_i') = logit(p_i) + logit(standard) - logit(national): a unit of national-average case-mix
    is held to the standard itself, and no proportion leaves (0, 1) (scaling by standard/national
    would, for a standard above the national rate).
    """
    if standard == national or not np.isfinite(standard):
        return expected
    shift = special.logit(standard) - special.logit(national)
    return special.expit(special.logit(expected) + shift)


def _assess_level(frame: pl.DataFrame, *, spec: IndicatorSpec, options: MethodOptions, level: str,
                  theta0: float, target_estimated: bool, rate_scale: float,
                  external: bool = False) -> tuple[pl.DataFrame, Overdispersion]:
    o = frame["observed"].to_numpy().astype(float)
    x = _exposure(frame, spec.statistic)
    small = f"fewer than {options.min_denominator:g} cases"
    if "denominator" in frame.columns:
        size = frame["denominator"].to_numpy().astype(float)
    elif spec.statistic == "ratio":  # an O/E table without patient counts (#15): sized by its events, O or E
        size = np.fmax(o, x)
        small = (f"fewer than {options.min_denominator:g} observed and fewer than {options.min_denominator:g} "
                 "expected events")
    else:
        size = x
    has_data = np.isfinite(o) & np.isfinite(x) & (x > 0)
    big_enough = has_data & (size >= options.min_denominator)
    assessable = big_enough if level != NATIONAL else np.zeros_like(has_data)
    if binomial_ratio(spec):
        # A risk-adjusted binary outcome: under "as expected", O is a sum of Bernoulli(p_ij), which
        # we assess as Binomial(n, E/n) - the unit's own case-mix-expected proportion. An external
        # standard shifts every unit's expected odds by the standard's odds against the national rate.
        with np.errstate(divide="ignore", invalid="ignore"):
            expected_share = np.where(has_data, x / size, rate_scale)
        unit_target = standard_shift(np.clip(expected_share, 1e-12, 1 - 1e-12), national=rate_scale,
                                     standard=theta0 * rate_scale)
        a = assess_units(np.where(has_data, o, np.nan), np.where(has_data, size, np.nan), assessable,
                         statistic="proportion", options=options.replace(transform="arcsine"),
                         target=unit_target, target_estimated=target_estimated,
                         centre=np.clip(expected_share, 1e-12, 1 - 1e-12) if external else None,
                         worse=spec.worse_side)
        for c, (lo, hi) in list(a.limits.items()):
            a.limits[c] = (lo / expected_share, hi / expected_share)
    else:
        centre = None
        if external:  # spread is estimated around the units' own centre, not the standard
            centre = np.nansum(np.where(has_data, o, 0)) / np.nansum(np.where(has_data, x, 0))
        a = assess_units(np.where(has_data, o, np.nan), np.where(has_data, x, np.nan), assessable,
                         statistic=spec.statistic, options=options, target=theta0,
                         target_estimated=target_estimated, centre=centre, worse=spec.worse_side)
    assessable = assessable & ~a.unscored  # a z of 0/0 is not a result (#15): not assessed, and why
    reason = np.where(level == NATIONAL, "national reference",
                      np.where(~has_data, "no data",
                               np.where(~big_enough, small, np.where(a.unscored, UNSCORED_REASON, ""))))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(has_data, o / x, np.nan)
        crude = np.where(has_data, o / size, np.nan)
    cols: dict[str, np.ndarray] = {
        "value": value,
        "adjusted_value": value * rate_scale if spec.risk_adjustment is not None else np.full_like(value, np.nan),
        "crude_value": crude,
        "target": np.full(o.shape, theta0),
        "z": np.where(assessable, a.z, np.nan),
        "z_unadjusted": np.where(assessable, a.z_unadjusted, np.nan),
        "p_value": np.where(assessable, a.p_value, np.nan),
        "q_value": a.q_value,
        "status": a.status,
        "not_assessed_reason": np.where(assessable, None, reason),
    }
    if options.fdr:  # Jones, Ohlssen & Spiegelhalter (2008): flag by false-discovery rate
        alpha = 1 - options.limits[0]
        cols["fdr_flag"] = np.where(assessable, np.nan_to_num(a.q_value, nan=1.0) < alpha, None)
    names = ["alert", "alarm"]
    for i, c in enumerate(options.limits):
        lo, hi = a.limits[c]
        lo, hi = np.where(has_data, lo, np.nan), np.where(has_data, hi, np.nan)
        key = names[i] if i < 2 else coverage_label(c)
        cols[f"lower_{key}"], cols[f"upper_{key}"] = lo, hi
    if len(options.limits) == 1:
        cols["lower_alarm"] = cols["upper_alarm"] = np.full(o.shape, np.nan)
    if spec.statistic != "ratio":
        cols["expected"] = np.where(has_data, theta0 * x, np.nan)
    od = a.overdispersion
    n_assessed = int(assessable.sum())
    sides = 0.5 if spec.worse_side else 1.0
    cols.update({
        "phi": np.full(o.shape, od.phi), "tau2": np.full(o.shape, od.tau2),
        "overdispersion_applied": np.full(o.shape, od.applied),
        "overdispersion_note": np.full(o.shape, od.reason, dtype=object),
        "overdispersion_p_value": np.full(o.shape, od.p_value),
        "n_units_overdispersion": np.full(o.shape, od.n_units),
        "method": np.full(o.shape, a.method, dtype=object),
        # one-sided: only the worse tail can flag, so half the two-sided chance rate
        "expected_false_alerts": np.full(o.shape, n_assessed * (1 - options.limits[0]) * sides),
        "expected_false_alarms": np.full(o.shape, n_assessed * (1 - options.limits[1]) * sides
                                         if len(options.limits) > 1 else np.nan),
        "test": np.full(o.shape, spec.test, dtype=object),
    })
    return frame.with_columns(_series(k, v) for k, v in cols.items()), od


_PREPARED: OrderedDict[tuple[str, ...], tuple] = OrderedDict()
_PREPARED_MAX = 64
_INDICATOR_WORKERS = 2  # run_audit's threads (1: one indicator after another)
_CACHES = threading.Lock()  # _PREPARED and _CODES_HASHED: indicators run in threads, dashboard sessions too
_DEFINITION = {"dataset", "cohort", "numerator", "denominator", "expected", "person_time", "statistic",
               "risk_adjustment"}


def _prepared_key(spec: IndicatorSpec, ds: LoadedDataset, unit_column: str, period_column: str | None) -> tuple[str, ...]:
    """Cache key: the extract's bytes and row accounting, and the parts of the definition that
    change the cohort or the model (not the limits or overdispersion options). The indicator's id too: its
    row accounting and model are labelled with it, so two indicators defined alike (the same counts on two
    scales) are each given their own; one got the other's label, and, with indicators run two at a time,
    which one did depended on timing."""
    definition = json.dumps(spec.model_dump(include={"id", *_DEFINITION}), sort_keys=True, default=str)
    accounting = json.dumps([ds.accounting.rows_used, [(e.reason, e.rows) for e in ds.accounting.exclusions]])
    # the unit codes as used (after merger recoding): the same bytes recoded differently are other counts
    codes = _unit_codes_hash(ds.frame, unit_column) if unit_column in ds.frame.columns else ""
    # the dataset's key: whether several rows per unit and period are declared (no warning when they are summed)
    return (ds.digest, accounting, definition, unit_column, str(period_column), codes, json.dumps(ds.key))


_CODES_HASHED: dict[tuple[int, str], tuple[weakref.ref, str]] = {}


def _unit_codes_hash(frame: pl.DataFrame, unit_column: str) -> str:
    """The hash of a frame's unit codes, computed once per frame (every indicator of a dataset asks)."""
    key = (id(frame), unit_column)
    with _CACHES:  # held while hashing: the other indicators of the dataset wait for this hash, not redo it
        known = _CODES_HASHED.get(key)
        if known is not None and known[0]() is frame:
            return known[1]
        value = str(frame[unit_column].hash(seed=0).sum())
        for k in [k for k, (ref, _) in _CODES_HASHED.items() if ref() is None]:  # frames gone since
            del _CODES_HASHED[k]
        _CODES_HASHED[key] = (weakref.ref(frame), value)
    return value


def prepare(spec: IndicatorSpec, ds: LoadedDataset, *, unit_column: str, period_column: str | None,
            timings: dict[str, float] | None = None, aggregate: bool | None = None) -> tuple:
    """Cohort counts and fitted model, reused while the data and the definition are unchanged."""
    key = (*_prepared_key(spec, ds, unit_column, period_column), str(aggregate))
    with _CACHES:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    value = cohort_counts(spec, ds, unit_column=unit_column, period_column=period_column, timings=timings,
                          aggregate=aggregate)
    with _CACHES:
        _PREPARED[key] = value
        while len(_PREPARED) > _PREPARED_MAX:
            _PREPARED.popitem(last=False)
    return value


def run_indicator(spec: IndicatorSpec, options: MethodOptions, ds: LoadedDataset, units: Units, *,
                  unit_column: str, period_column: str | None,
                  prepared: tuple[pl.DataFrame, RowAccounting, RiskModel | None, dict[str, pl.DataFrame]] | None = None,
                  aggregate: bool | None = None, period_label: str | None = None) -> IndicatorResult:
    """Compute the full results for one indicator. ``prepared`` reuses cohort counts and a fitted model.

    ``period_label``: the one period a table without ``period_column`` covers (the dataset's ``period``,
    e.g. 'October 2023'), which labels every row in place of ``ALL_PERIODS``.
    """
    counts, accounting, model, extras = prepared or prepare(
        spec, ds, unit_column=unit_column, period_column=period_column, aggregate=aggregate)
    if period_label is not None and period_column is None:  # relabelled here: the prepared counts stay shared
        counts = counts.with_columns(pl.lit(period_label, dtype=pl.String).alias("period"))
    period_values = time_order(str(p) for p in counts["period"].unique().drop_nulls())
    pooled = _pooled_label(period_values) if period_values or period_label is None else period_label
    value_cols = [c for c in ("observed", "denominator", "expected", "person_time") if c in counts.columns]
    pooled_counts = counts.group_by("unit_code").agg(pl.col(value_cols).sum()).with_columns(
        pl.lit(pooled).alias("period"))
    tables = [(pooled, pooled_counts)] if spec.pooled else []
    if (spec.by_period and len(period_values) > 1) or not spec.pooled:
        tables += [(p, counts.filter(pl.col("period") == p)) for p in period_values]
    if not tables:  # not pooled, and no data at all
        tables = [(pooled, pooled_counts)]
    headline = pooled if spec.pooled or not period_values else period_values[-1]

    total_o = float(counts["observed"].sum())
    total_n = float(counts["denominator"].sum()) if "denominator" in counts.columns else np.nan
    national_rate = total_o / total_n if total_n else np.nan
    warnings: list[str] = [*(model.warnings if model else ()), *accounting.notes,
                           *filter(None, [order_note(period_values)])]
    if counts.height == 0:
        warnings.append("no rows for this indicator: the extract is empty or the cohort selects nobody, "
                        "so no unit can be assessed")
    rows: list[pl.DataFrame] = []
    curves: list[CurveInputs] = []
    ods: dict[tuple[str, str], Overdispersion] = {}
    for period, period_counts in tables:
        standard = _standard(spec, counts, period, pooled=period == pooled)
        theta0, estimated, rate_scale = _target(spec, period_counts, national_rate, standard)
        for level, frame in _levels(period_counts, units, [period]):
            assessed, od = _assess_level(frame, spec=spec, options=options, level=level, theta0=theta0,
                                         target_estimated=estimated, rate_scale=rate_scale,
                                         external=standard is not None)
            ods[(level, period)] = od
            rows.append(assessed.with_columns(pl.lit(level).alias("level"),
                                              pl.lit(rate_scale).alias("rate_scale")))
            if level != NATIONAL:
                x = frame["denominator"].to_numpy().astype(float) if binomial_ratio(spec) else _exposure(frame, spec.statistic)
                curves.append(CurveInputs(level, period, theta0, od, x, rate_scale))
    table = pl.concat(rows, how="diagonal_relaxed")
    if "completeness" in extras:
        table = table.join(extras["completeness"], on="unit_code", how="left")
    table = _finish(table, spec, units, options.limits)
    od_pooled = ods.get((UNIT_LEVEL, headline))
    if od_pooled and options.overdispersion != "none" and not od_pooled.applied:
        warnings.append(od_pooled.reason)
    elif od_pooled and options.overdispersion == "none" and od_pooled.p_value < 0.05:
        warnings.append(f"units vary more than chance allows (overdispersion test {p_text(od_pooled.p_value)}) "
                        "but no adjustment was asked for: more units will be flagged than the expected "
                        "number of chance alerts; consider overdispersion: additive")
    return IndicatorResult(spec, options, table, tuple(curves), ods, accounting, national_rate, model,
                           tuple(warnings), headline)


def _standard(spec: IndicatorSpec, counts: pl.DataFrame, period: str, *, pooled: bool) -> float | None:
    """The external standard for a period; for the pooled periods, the exposure-weighted average of the
    periods' standards (the rate that gives the same expected events as each period at its own standard)."""
    if not isinstance(spec.target, dict):
        return spec.target
    periods = sorted(str(p) for p in counts["period"].unique().drop_nulls())
    wanted = periods if pooled else [period]
    missing = [p for p in wanted if p not in spec.target]
    if missing:
        have = ", ".join(sorted(spec.target)) or "none"
        msg = (f"{spec.id}: the target lists no standard for period {', '.join(missing)} (it has: {have}); "
               f"add e.g. '{missing[0]}: {next(iter(spec.target.values()))}' under target:, or give one number")
        raise AuditMetricsError(msg)
    if not pooled:
        return spec.target[period]
    col = "denominator" if spec.statistic in ("proportion", "ratio_of_counts") or binomial_ratio(spec) else \
        {"ratio": "expected", "rate": "person_time"}[spec.statistic]
    weights = counts.group_by("period").agg(pl.col(col).sum()).filter(pl.col("period").is_in(wanted))
    w = weights[col].to_numpy().astype(float)
    values = np.array([spec.target[str(p)] for p in weights["period"]])
    return float(np.sum(w * values) / np.sum(w)) if np.sum(w) > 0 else float(np.mean(values))


def _per(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _target(spec: IndicatorSpec, counts: pl.DataFrame, national_rate: float,
            standard: float | None) -> tuple[float, bool, float]:
    """θ0 on the value scale, whether it was estimated from the data, and the display scale."""
    o = float(counts["observed"].sum())
    if spec.statistic == "proportion":
        return (standard, False, 1.0) if standard is not None else (_per(o, float(counts["denominator"].sum())), True, 1.0)
    if spec.statistic == "ratio":
        # expected counts come from a national model: ratio 1 is the national rate for the case-mix
        scale = national_rate if spec.risk_adjustment is not None else 1.0
        if standard is not None:
            return (standard / scale if spec.risk_adjustment is not None else standard), False, scale
        return 1.0, False, scale
    if spec.statistic == "rate":
        return (standard, False, 1.0) if standard is not None else (_per(o, float(counts["person_time"].sum())), True, 1.0)
    return (standard, False, 1.0) if standard is not None else (_per(o, float(counts["denominator"].sum())), True, 1.0)


def _curve(spec: IndicatorSpec, options: MethodOptions, inputs: CurveInputs) -> pl.DataFrame:
    """Limit curves on a grid of the funnel's x axis (the value scale, like the table's limits).

    Risk-adjusted ratios are drawn against the number of patients, for a unit with national-average
    case-mix; each unit's own limits (in the results table) allow for its case-mix.
    """
    x = inputs.x
    finite = x[np.isfinite(x) & (x > 0)]
    if finite.size == 0:
        return pl.DataFrame()
    lo = max(min(finite.min() * 0.8, options.min_denominator or 1.0), 1.0)
    grid = np.geomspace(lo, finite.max() * 1.1, 160)  # each unit's own limits are in the table
    statistic, target, divide = spec.statistic, inputs.theta0, 1.0
    opts = options
    if binomial_ratio(spec):
        statistic, target, divide = "proportion", min(inputs.theta0 * inputs.rate_scale, 1 - 1e-12), inputs.rate_scale
        opts = options.replace(transform="arcsine")
    od = inputs.overdispersion
    cols: dict[str, object] = {"indicator_id": spec.id, "level": inputs.level, "period": inputs.period,
                               "x": grid, "target": np.full(grid.shape, inputs.theta0)}
    for c in options.limits:
        lower, upper = limit_values(grid, statistic=statistic, method=opts.limit_method,
                                    transform=opts.transform, target=target, coverage=c,
                                    tau2=od.applied_tau2, phi=od.factor_phi)
        cols[f"lower_{coverage_label(c)}"] = lower / divide
        cols[f"upper_{coverage_label(c)}"] = upper / divide
    return pl.DataFrame(cols)


def _finish(table: pl.DataFrame, spec: IndicatorSpec, units: Units, limits: Sequence[float]) -> pl.DataFrame:
    labels = {s: status_label(s, spec.better) for s in STATUS_ENUM.categories}
    if len(limits) == 1:  # an only limit is named by its coverage, as every view and export names it (its status
        #                   code stays alert_*): 'worse than expected (outside 99.8%)', not '(alert)'
        only = f"outside {coverage_label(limits[0])}%"
        labels = {s: label.replace(" (alert)", f" ({only})") for s, label in labels.items()}
    out = table.with_columns(
        pl.lit(spec.id).alias("indicator_id"),
        pl.lit(spec.title).alias("indicator_title"),
        pl.lit(spec.tumour_site).alias("tumour_site"),
        pl.lit(spec.statistic).alias("statistic"),
        pl.lit(spec.better).alias("better"),
        pl.lit(spec.multiplier).alias("multiplier"),
        pl.col("status").cast(STATUS_ENUM),
        pl.col("status").replace_strict(labels, return_dtype=pl.String).alias("status_label"),
    )
    if "expected_cases" in units.frame.columns and "observed" in out.columns:
        out = out.join(units.frame.select("unit_code", "expected_cases"), on="unit_code", how="left")
    missing = [c for c in CONTRACT_COLUMNS if c not in out.columns]  # e.g. no denominator for O/E data
    out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    first = list(CONTRACT_COLUMNS)
    rest = [c for c in out.columns if c not in first]
    level_order = pl.col("level").replace_strict(
        {lv: i for i, lv in enumerate([UNIT_LEVEL, *units.groups, NATIONAL])}, default=99)
    periods = time_order(out["period"].unique().drop_nulls().to_list())
    in_time = pl.col("period").replace_strict({p: i for i, p in enumerate(periods)}, default=len(periods),
                                              return_dtype=pl.Int64)
    return out.select(first + rest).sort([in_time, level_order, "unit_code"], maintain_order=True)


def run_audit(loaded: LoadedCatalogue, *, data: Mapping[str, str | Path] | None = None,
              only: Sequence[str] | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> AuditRun:
    """Load every dataset once and compute every (selected) indicator."""
    cat = loaded.catalogue
    units, datasets = load_all(loaded, data=data, only=only)
    specs = [s for s in cat.indicators if only is None or s.id in only]
    missing = sorted(set(only or ()) - {s.id for s in specs})
    if missing:
        msg = f"unknown indicator id(s): {', '.join(missing)} (see {loaded.path.name})"
        raise AuditMetricsError(msg)
    def compute(spec: IndicatorSpec) -> IndicatorResult:
        ds_spec = cat.datasets[spec.dataset]
        return run_indicator(spec, loaded.options(spec), datasets[spec.dataset], units,
                             unit_column=ds_spec.unit_column or cat.units.code, period_column=ds_spec.period_column,
                             aggregate=is_aggregate(spec, cat.datasets), period_label=ds_spec.period)

    results: dict[str, IndicatorResult] = {}
    # indicators are independent: two at a time, as much of each runs in polars, numpy and scipy outside
    # Python's lock; results are taken (and progress told, errors raised) in catalogue order
    workers = min(_INDICATOR_WORKERS, os.cpu_count() or 1, len(specs))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit_metrics_indicator") if workers > 1 else None
    futures = [pool.submit(compute, spec) for spec in specs] if pool is not None else None
    try:
        for i, spec in enumerate(specs, start=1):
            if progress:
                progress(i, len(specs), spec.id)
            results[spec.id] = futures[i - 1].result() if futures is not None else compute(spec)
    finally:  # after a failure, the indicators not yet started are not run
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    # lazily: an eager group_by on the loaded frame copied all its columns first (2M rows: +390 MB, 0.2-0.4 s)
    unit_rows = {
        name: ds.frame.lazy().group_by(pl.col(cat.datasets[name].unit_column or cat.units.code).alias("unit_code"))
        .agg(pl.len().alias("records")).collect()
        for name, ds in datasets.items()}
    return AuditRun(results, {k: v.accounting for k, v in datasets.items()}, loaded.digest,
                    {k: v.digest for k, v in datasets.items()},
                    datetime.now(UTC).isoformat(timespec="seconds"), units, unit_rows)


def write_table(frame: pl.DataFrame, path: str | Path, *, sheet: str = "results") -> None:
    """Write a results table as CSV, Excel or Parquet by extension.

    CSV and Excel go through ``export`` (formulas neutralised, missing numbers as empty cells), so
    a hostile trust name cannot become a live formula or link in a spreadsheet.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
        return
    from audit_metrics import export  # imports xlsxwriter; and export imports this module

    if suffix == ".csv":
        path.write_bytes(export.to_csv_bytes(frame))
    elif suffix == ".xlsx":
        export.write_workbook(path, {sheet: frame})
    else:
        msg = f"cannot write {path.name}: use .csv, .xlsx or .parquet"
        raise AuditMetricsError(msg)


def run_cli(args: argparse.Namespace) -> int:
    """``audit-metrics run``."""
    from audit_metrics.cli import _data_overrides

    out = Path(args.out)
    if out.suffix.lower() not in {".csv", ".xlsx", ".parquet"}:
        msg = f"--out {out.name}: use a .csv, .xlsx or .parquet file name"
        raise AuditMetricsError(msg)
    data = _data_overrides(args.data)
    start = time.perf_counter()

    def progress(i: int, n: int, ind: str) -> None:
        if not args.quiet:
            print(f"[{i}/{n}] {ind} ...", file=sys.stderr, flush=True)

    with reading_once():  # a CSV read (and typed) to check the catalogue is not read again to load it
        loaded = load_catalogue(args.indicators, data=data)
        run = run_audit(loaded, data=data, only=args.indicator, progress=progress)
    write_table(run.table(), out)
    if args.limits_out:
        write_table(run.curves(), args.limits_out, sheet="limits")
    if args.accounting_out:
        acc = pl.concat([a.to_frame() for a in run.datasets.values()]
                        + [r.accounting.to_frame() for r in run.results.values()])
        write_table(acc, args.accounting_out, sheet="accounting")
    if getattr(args, "record", None):  # results store: see releases.py
        from audit_metrics.releases import record_release

        release = record_release(args.record, loaded, run, label=getattr(args, "label", None),
                                 options={k: v for k, v in vars(args).items() if k != "func"})
        if not args.quiet:
            print(f"recorded {release.name} in {args.record}")
    if not args.quiet:
        for acc in run.datasets.values():
            print(acc.summary())
        for result in run.results.values():
            print(result.summary())
        print(f"wrote {out} ({run.table().height:,} rows) in {time.perf_counter() - start:.1f} s")
    return 0
