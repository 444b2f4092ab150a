"""Indicators over time: monthly series, SPC charts and risk-adjusted CUSUM/VLAD per unit.

The glue between an indicator's definition (cohort, numerator, case-mix model) and the charts in
``spc`` and ``cusum``. It needs a dataset with a ``date_column`` (the treatment, operation or
diagnosis date): patients are grouped by calendar month for the SPC charts and taken in date order
for the CUSUM and the VLAD. The case-mix model is the indicator's own (the same patients, covariates
and fit as the funnel plot), so a trust's expected risks here are exactly those behind its O/E.

Every cohort patient is either charted or counted with a reason (no date, outcome blank,
incomplete case-mix), like the funnel's row accounting.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import polars as pl

from audit_metrics import cusum, spc
from audit_metrics.catalogue import IndicatorSpec, LoadedCatalogue, is_aggregate
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.expressions import compile_expression
from audit_metrics.io import ROW, Exclusion, LoadedDataset
from audit_metrics.risk import fit_risk_model

__all__ = [
    "TrendCohort",
    "UnitTrend",
    "build_trend_cohort",
    "improvement_direction",
    "monthly_series",
    "trend_cohort",
    "unit_trend",
]

NATIONAL = "national"


def improvement_direction(better: str) -> spc.Direction:
    """Making Data Count's improvement direction from the catalogue's ``better``."""
    return {"higher": "increase", "lower": "decrease"}.get(better, "neutral")


@dataclass(frozen=True)
class TrendCohort:
    """The indicator's cohort, one row per patient, in date order, with expected risk if adjusted.

    ``frame`` columns: ``unit_code``, the group columns, ``date``, ``month``, ``outcome`` (0/1) and
    ``risk`` (risk-adjusted indicators only). ``national_rate`` is the crude rate of the whole cohort.
    """

    indicator_id: str
    frame: pl.DataFrame
    risk_adjusted: bool
    national_rate: float
    exclusions: tuple[Exclusion, ...]
    date_column: str

    @property
    def months(self) -> list[date]:
        return sorted(self.frame["month"].unique().to_list())


_CACHE: OrderedDict[tuple[str, ...], TrendCohort] = OrderedDict()
_CACHE_MAX = 16


def build_trend_cohort(spec: IndicatorSpec, ds: LoadedDataset, *, unit_column: str, date_column: str,
                       groups: pl.DataFrame | None = None) -> TrendCohort:
    """Cohort, outcome and (if risk-adjusted) each patient's expected risk, as the funnel computes them.

    ``groups`` (optional): ``unit_code`` and higher-level columns (e.g. ``cancer_alliance``) to
    attach, so series can be made for any level.
    """
    frame = ds.frame
    schema = frame.schema
    if date_column not in schema:
        msg = f"{spec.id}: date column {date_column!r} is not in dataset {spec.dataset!r}"
        raise AuditMetricsError(msg)
    if schema[date_column] not in (pl.Date, pl.Datetime) and not isinstance(schema[date_column], pl.Datetime):
        msg = (f"{spec.id}: date column {date_column!r} of dataset {spec.dataset!r} holds {schema[date_column]}, "
               "not dates (declare it under columns: as date)")
        raise AuditMetricsError(msg)
    in_cohort = compile_expression(spec.cohort, schema) if spec.cohort else None
    numerator = compile_expression(spec.numerator, schema)
    # polars 2.1 rejects a literal filter on large frames, so filter only when there is a cohort
    cohort = frame.filter(in_cohort.fill_null(False)) if in_cohort is not None else frame
    cohort = cohort.with_columns(numerator.alias("__event"))
    exclusions: list[Exclusion] = []
    missing = cohort.filter(pl.col("__event").is_null())
    if missing.height:
        exclusions.append(Exclusion("missing outcome (numerator is blank)", missing.height,
                                    tuple(missing[ROW].head(5).to_list())))
    cohort = cohort.filter(pl.col("__event").is_not_null())
    risk_adjusted = spec.risk_adjustment is not None
    if risk_adjusted and cohort.height:
        outcome = cohort["__event"].to_numpy().astype(float)
        try:
            _, risk, kept = fit_risk_model(cohort, outcome, spec.risk_adjustment, spec.id)
        except Exception as exc:  # numerical failure: reported, never silently unadjusted
            msg = f"{spec.id}: the risk model could not be fitted ({exc})"
            raise AuditMetricsError(msg) from None
        if (~kept).any():
            dropped = cohort.filter(pl.Series(~kept))
            exclusions.append(Exclusion("incomplete case-mix (complete-case analysis)", dropped.height,
                                        tuple(dropped[ROW].head(5).to_list())))
            cohort = cohort.filter(pl.Series(kept))
        cohort = cohort.with_columns(pl.Series("risk", risk))
    # the model is fitted on every cohort patient (as for the funnel); only charting needs a date
    undated = cohort.filter(pl.col(date_column).is_null())
    if undated.height:
        exclusions.append(Exclusion(f"no {date_column} (not charted over time)", undated.height,
                                    tuple(undated[ROW].head(5).to_list())))
    national_rate = float(cohort["__event"].cast(pl.Float64).mean()) if cohort.height else float("nan")
    cols = [pl.col(unit_column).cast(pl.String).alias("unit_code"), pl.col(date_column).cast(pl.Date).alias("date"),
            pl.col(date_column).cast(pl.Date).dt.truncate("1mo").alias("month"),
            pl.col("__event").cast(pl.Int8).alias("outcome"), pl.col(ROW)]
    if risk_adjusted:
        cols.append(pl.col("risk"))
    out = cohort.filter(pl.col(date_column).is_not_null()).select(cols).sort("date", ROW)
    if groups is not None:
        out = out.join(groups, on="unit_code", how="left", maintain_order="left")
    return TrendCohort(spec.id, out, risk_adjusted, national_rate, tuple(exclusions), date_column)


def trend_cohort(loaded: LoadedCatalogue, spec: IndicatorSpec, ds: LoadedDataset,
                 groups: pl.DataFrame | None = None) -> TrendCohort | None:
    """The indicator's trend cohort (cached on the extract and definition), or None when its
    dataset declares no ``date_column`` or holds aggregate counts."""
    cat = loaded.catalogue
    ds_spec = cat.datasets[spec.dataset]
    if ds_spec.date_column is None or is_aggregate(spec, cat.datasets):
        return None
    definition = json.dumps(spec.model_dump(include={"dataset", "cohort", "numerator", "risk_adjustment"}),
                            sort_keys=True, default=str)
    key = (ds.digest, str(ds.accounting.rows_used), definition, ds_spec.date_column,
           "" if groups is None else str(groups.hash_rows().sum()))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = build_trend_cohort(spec, ds, unit_column=ds_spec.unit_column or cat.units.code,
                               date_column=ds_spec.date_column, groups=groups)
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return value


def monthly_series(cohort: TrendCohort, *, level: str = "trust", unit: str = NATIONAL) -> pl.DataFrame:
    """Per month: ``observed``, ``patients``, ``expected`` (risk-adjusted) and ``value``.

    ``value`` is the proportion, or for risk-adjusted indicators the risk-adjusted rate
    (O/E x the national crude rate), the scale of the funnel plot. Months without patients are
    absent (a chart cannot show a rate of nothing).
    """
    f = cohort.frame
    if unit != NATIONAL:
        column = "unit_code" if level == "trust" else level
        if column not in f.columns:
            msg = f"no {level} column to group by"
            raise AuditMetricsError(msg)
        f = f.filter(pl.col(column) == unit)
    aggs = [pl.col("outcome").sum().cast(pl.Float64).alias("observed"), pl.len().cast(pl.Float64).alias("patients")]
    if cohort.risk_adjusted:
        aggs.append(pl.col("risk").sum().alias("expected"))
    out = f.group_by("month").agg(aggs).sort("month")
    if cohort.risk_adjusted:
        return out.with_columns((pl.col("observed") / pl.col("expected") * cohort.national_rate).alias("value"))
    return out.with_columns((pl.col("observed") / pl.col("patients")).alias("value"))


@dataclass(frozen=True)
class UnitTrend:
    """A unit's trend charts: the XmR chart (Making Data Count), the Laney chart, and for
    risk-adjusted outcomes the CUSUM/VLAD with the in-control ARL of its decision limits."""

    unit: str
    level: str
    series: pl.DataFrame
    xmr: spc.SpcChart | None
    laney: spc.SpcChart | None
    cusum: cusum.CusumChart | None
    arl_up: cusum.ArlEstimate | None
    arl_down: cusum.ArlEstimate | None
    patients_per_year: float
    sentence: str


def unit_trend(cohort: TrendCohort, spec: IndicatorSpec, *, level: str = "trust", unit: str = NATIONAL,
               rebase: tuple[date, ...] = (), h_up: float = cusum.DEFAULT_H, h_down: float = cusum.DEFAULT_H,
               arl_chains: int = 400, with_arl: bool = True) -> UnitTrend:
    """SPC (XmR and Laney), and for risk-adjusted outcomes of a single trust the CUSUM and VLAD."""
    series = monthly_series(cohort, level=level, unit=unit)
    direction = improvement_direction(spec.better)
    target = spec.target
    xmr = laney = None
    if series.height >= 2:
        months = series["month"].to_list()
        usable = tuple(d for d in rebase if d in set(months))
        xmr = spc.build_xmr(months, series["value"].to_numpy(), improvement_direction=direction,
                            rebase=usable, target=target)
        if cohort.risk_adjusted:  # u′ on observed per expected event, drawn on the rate scale
            laney = spc.build_laney(months, series["observed"].to_numpy(), series["expected"].to_numpy(),
                                    kind="u_prime", improvement_direction=direction, rebase=usable)
            scale = cohort.national_rate
            laney = spc.SpcChart(laney.kind, laney.table.with_columns(
                pl.col("y", "mean", "lower", "upper", "near_lower", "near_upper") * scale),
                laney.improvement_direction, target, laney.run_length, laney.trend_length)
        else:
            laney = spc.build_laney(months, series["observed"].to_numpy(), series["patients"].to_numpy(),
                                    kind="p_prime", improvement_direction=direction, rebase=usable, target=target)
    span_years = max(series.height, 1) / 12
    per_year = float(series["patients"].sum()) / span_years if series.height else 0.0
    chart = arl_up = arl_down = None
    if cohort.risk_adjusted and level == "trust" and unit != NATIONAL:
        f = cohort.frame.filter(pl.col("unit_code") == unit)
        if f.height:
            risk = f["risk"].to_numpy()
            chart = cusum.build_cusum(f["date"].to_list(), risk, f["outcome"].to_numpy(), h_up=h_up, h_down=h_down)
            if with_arl:
                arl_up = cusum.simulate_arl(risk, odds_ratio=cusum.DETERIORATION, h=h_up, chains=arl_chains)
                arl_down = cusum.simulate_arl(risk, odds_ratio=cusum.IMPROVEMENT, h=h_down, chains=arl_chains)
    multiplier = spec.multiplier

    def fmt(v: float) -> str:
        return f"{v * multiplier:.1f}%" if multiplier == 100 else f"{v:.3g}"

    sentence = spc.describe(xmr, what=spec.title.lower(), fmt=fmt) if xmr is not None else (
        "Too few months with patients to chart a trend.")
    return UnitTrend(unit, level, series, xmr, laney, chart, arl_up, arl_down, per_year, sentence)
