"""Queries behind the dashboard's views: pure polars over the results table (no Streamlit)."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from audit_metrics import __version__, export
from audit_metrics.catalogue import LoadedCatalogue, SuppressionSpec
from audit_metrics.pipeline import AuditRun

__all__ = [
    "best_performers",
    "best_performers_all",
    "direction_of",
    "display_table",
    "excess_events",
    "excess_events_for_sharing",
    "outlier_list",
    "outliers_for_sharing",
    "pooled",
    "provenance",
    "status_changes",
]

FLAGGED = ("alert_low", "alert_high", "alarm_low", "alarm_high")


def direction_of() -> pl.Expr:
    """'worse' / 'better' / 'higher' / 'lower' / None for each row, from status and polarity."""
    status = pl.col("status").cast(pl.String)
    high = status.str.ends_with("_high")
    flagged = status.is_in(FLAGGED)
    return (pl.when(~flagged).then(None)
            .when(pl.col("better") == "neither").then(pl.when(high).then(pl.lit("higher")).otherwise(pl.lit("lower")))
            .when(high == (pl.col("better") == "lower")).then(pl.lit("worse"))
            .otherwise(pl.lit("better")))


def pooled(run: AuditRun) -> pl.DataFrame:
    """Rows for each indicator's pooled period (all periods together)."""
    parts = [r.table.filter(pl.col("period") == r.pooled_period) for r in run.results.values()]
    return pl.concat(parts, how="diagonal_relaxed").with_columns(direction_of().alias("direction"))


def outlier_list(table: pl.DataFrame, *, levels: Sequence[str] = ("alert", "alarm"),
                 directions: Sequence[str] = ("worse", "better", "higher", "lower"),
                 alliances: Sequence[str] | None = None, tumour_sites: Sequence[str] | None = None,
                 unit_level: str = "trust") -> pl.DataFrame:
    """Flagged results, filtered as a QI lead would (alarm-only, worse-only, my alliance...)."""
    out = table.filter(pl.col("level") == unit_level, pl.col("status").cast(pl.String).is_in(FLAGGED))
    if "direction" not in out.columns:
        out = out.with_columns(direction_of().alias("direction"))
    wanted = [f"{lv}_{side}" for lv in levels for side in ("low", "high")]
    out = out.filter(pl.col("status").cast(pl.String).is_in(wanted), pl.col("direction").is_in(list(directions)))
    if alliances:
        column = "cancer_alliance" if "cancer_alliance" in out.columns else "parent_code"
        out = out.filter(pl.col(column).is_in(list(alliances)))
    if tumour_sites:
        out = out.filter(pl.col("tumour_site").is_in(list(tumour_sites)))
    return out.sort(["tumour_site", "indicator_id", "z"])


def outliers_for_sharing(flagged: pl.DataFrame, rule: SuppressionSpec) -> tuple[pl.DataFrame, int]:
    """The outlier list with small-number disclosure control, as downloaded and as shown on screen.

    Counts in the suppressed range are shown as the symbol and every value that would give them
    back is blanked (``export.suppress``). A row whose flag alone would give the count back is left
    out: its presence in a list of flagged results would reveal the flag. Returns the rows and how
    many were left out.
    """
    safe = export.suppress(flagged, rule)
    keep = safe["status"].is_not_null()
    return safe.filter(keep), int((~keep).sum())


def display_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Round only for display; the results keep full precision.

    Percentage indicators (multiplier 100) are shown in %. For risk-adjusted indicators ``value`` is
    the observed/expected ratio, and the adjusted and crude rates and the limits are on the
    risk-adjusted rate scale (as the funnel draws them). Works on suppressed tables (blank values).
    """
    pct = pl.when(pl.col("multiplier") == 100).then(100.0).otherwise(1.0)
    # per indicator, not per row: a row without data (NaN) or a suppressed row (null) must not
    # switch the scale of its indicator (NaN is not null in polars)
    risk_adjusted = ((pl.col("statistic") == "ratio") & pl.col("adjusted_value").is_not_nan().any()
                     .over("indicator_id")) if "statistic" in frame.columns else pl.lit(False)
    scale = pl.when(risk_adjusted).then(pl.col("rate_scale")).otherwise(1.0)
    limits = [c for c in frame.columns if c.startswith(("lower_", "upper_"))]
    out = frame.with_columns(
        *[(pl.col(c) * scale * pct).round(2) for c in limits],
        *[(pl.col(c) * pct).round(2) for c in ("adjusted_value", "crude_value") if c in frame.columns],
        pl.when(risk_adjusted).then(pl.col("value").round(3)).otherwise((pl.col("value") * pct).round(2)).alias("value"),
        *[pl.col(c).round(3) for c in ("z", "expected") if c in frame.columns],
        *[pl.col(c).round(4) for c in ("p_value", "q_value") if c in frame.columns],
    )
    return out.with_columns(pl.col(pl.Enum).cast(pl.String))


def _best_first(table: pl.DataFrame) -> pl.DataFrame:
    """Assessed trusts, best first (by adjusted z in the better direction); no-polarity indicators
    are left out, as they have no better direction."""
    rows = table.filter(pl.col("level") == "trust", pl.col("status").cast(pl.String) != "not_assessed",
                        pl.col("z").is_not_null(), pl.col("better") != "neither")
    score = pl.when(pl.col("better") == "higher").then(pl.col("z")).otherwise(-pl.col("z"))
    return rows.with_columns(score.alias("_score")).sort("_score", descending=True)


def best_performers(table: pl.DataFrame, indicator_id: str, *, n: int = 3) -> pl.DataFrame:
    """Assessed trusts furthest in the better direction (by adjusted z) for one indicator."""
    return _best_first(table.filter(pl.col("indicator_id") == indicator_id)).head(n).drop("_score")


def best_performers_all(table: pl.DataFrame, *, n: int = 3) -> dict[str, list[str]]:
    """For every indicator, the names of the n assessed trusts furthest in the better direction."""
    top = _best_first(table).group_by("indicator_id", maintain_order=True).head(n)
    return {k[0]: g["unit_name"].to_list() for k, g in top.group_by("indicator_id", maintain_order=True)}


def excess_events(table: pl.DataFrame, *, units: Sequence[str], level: str = "trust") -> pl.DataFrame:
    """Observed minus expected events per unit and indicator, signed so that positive = patients
    who would have had a better outcome at the expected rate ("events to prevent")."""
    rows = table.filter(pl.col("level") == level, pl.col("unit_code").is_in(list(units)),
                        pl.col("better") != "neither", pl.col("observed").is_not_null())
    sign = pl.when(pl.col("better") == "lower").then(1.0).otherwise(-1.0)
    return (rows.with_columns((sign * (pl.col("observed") - pl.col("expected"))).alias("excess_events"))
            .select("indicator_id", "indicator_title", "tumour_site", "unit_code", "unit_name", "observed",
                    "expected", "excess_events", "status", "status_label")
            .sort("excess_events", descending=True))


def excess_events_for_sharing(table: pl.DataFrame, *, units: Sequence[str], rule: SuppressionSpec,
                              level: str = "trust") -> pl.DataFrame:
    """``excess_events`` with small-number disclosure control, for the screen.

    Counts in the suppressed range show as the symbol with expected and excess blanked; a status
    that would reveal such a count is withheld; and where one indicator has exactly one suppressed
    count among these units, the next smallest is suppressed too, as the units' total is shown
    elsewhere (the parent's funnel). Suppressed rows come last.
    """
    excess = excess_events(table, units=units, level=level)
    keys = ["indicator_id", "unit_code"]
    context = [c for c in ("denominator", "value", "statistic", "lower_alert", "upper_alert", "lower_alarm",
                           "upper_alarm") if c in table.columns]
    full = excess.join(table.filter(pl.col("level") == level).select(*keys, *context).unique(keys),
                       on=keys, how="left")
    safe = export.suppress(full, rule)
    safe = export.suppress_complements(safe, rule, by=["indicator_id"])
    return (safe.select(*excess.columns, "suppressed")
            .sort(["suppressed", "excess_events"], descending=[False, True], nulls_last=True))


def status_changes(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Units whose status differs between two results tables (catalogue-edit preview)."""
    keys = ["indicator_id", "level", "unit_code", "period"]
    a = before.select(*keys, "unit_name", pl.col("status").cast(pl.String).alias("status_before"))
    b = after.select(*keys, pl.col("status").cast(pl.String).alias("status_after"))
    joined = a.join(b, on=keys, how="full", coalesce=True)
    return joined.filter(pl.col("status_before").fill_null("(absent)") != pl.col("status_after").fill_null("(absent)"))


def provenance(run: AuditRun, loaded: LoadedCatalogue, **extra: Any) -> dict[str, Any]:
    """Methods and provenance for an export: catalogue version and hash, data hashes, options."""
    options = {spec.id: {k: (list(v) if isinstance(v, tuple) else v) for k, v in loaded.options(spec).__dict__.items()}
               for spec in loaded.catalogue.indicators if spec.id in run.results}
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results_computed_at": run.generated_at,
        "software": f"audit_metrics {__version__} (Python {platform.python_version()})",
        "catalogue_file": str(loaded.path),
        "catalogue_version": loaded.catalogue.version,
        "catalogue_sha256": run.catalogue_digest,
        "extract_sha256": run.data_digests,
        "options": options,
        "row_accounting": {name: {"read": a.rows_read, "used": a.rows_used, "excluded": a.rows_excluded}
                           for name, a in run.datasets.items()},
        **extra,
    }


def chance_counts(table: pl.DataFrame, coverage: Mapping[str, tuple[float, ...]]) -> pl.DataFrame:
    """Per indicator: units outside each limit against the number expected by chance among the units shown.

    "Outside 95%" counts alerts and alarms (an alarm is also outside the 95% limits), which is what
    the expected count (units assessed x 5%) refers to; both use the same units (after any filter).
    """
    status = pl.col("status").cast(pl.String)
    assessed = status != "not_assessed"
    inner = pl.col("indicator_id").replace_strict({k: 1 - v[0] for k, v in coverage.items()}, default=None)
    outer = pl.col("indicator_id").replace_strict(
        {k: 1 - v[-1] if len(v) > 1 else None for k, v in coverage.items()}, default=None, return_dtype=pl.Float64)
    return (table.group_by("indicator_id", "indicator_title", "tumour_site")
            .agg(assessed.sum().alias("assessed"),
                 (assessed & (status != "within")).sum().alias("outside_inner"),
                 status.str.starts_with("alarm").sum().alias("outside_outer"),
                 inner.first().alias("_inner"), outer.first().alias("_outer"))
            .with_columns((pl.col("assessed") * pl.col("_inner")).alias("expected_inner"),
                          (pl.col("assessed") * pl.col("_outer")).alias("expected_outer"))
            .drop("_inner", "_outer").sort("tumour_site", "indicator_title"))
