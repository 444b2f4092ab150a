"""Queries behind the dashboard's views: pure polars over the results table (no Streamlit)."""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from audit_metrics import __version__, export, narrative
from audit_metrics.catalogue import LoadedCatalogue, SuppressionSpec
from audit_metrics.outliers import coverage_label
from audit_metrics.periods import time_order
from audit_metrics.pipeline import ALL_PERIODS, AuditRun, standard_shift

__all__ = [
    "RUG_MARKS",
    "ResultOnScale",
    "best_performers",
    "best_performers_all",
    "by_severity",
    "direction_of",
    "display_table",
    "excess_events",
    "excess_events_for_sharing",
    "flagged_cells",
    "group_level",
    "level_label",
    "limits_phrase",
    "no_grouping_message",
    "on_scale",
    "outlier_list",
    "outliers_for_sharing",
    "pooled",
    "provenance",
    "severity",
    "status_changes",
    "status_words",
    "summarise_changes",
]

FLAGGED = ("alert_low", "alert_high", "alarm_low", "alarm_high")
ALLIANCE = "cancer_alliance"
_LABELS = {"trust": ("Trust", "Trusts"), "cancer_alliance": ("Cancer Alliance", "Cancer Alliances"),
           "region": ("Region", "Regions"), "icb": ("ICB", "ICBs"), "national": ("England", "England")}


def level_label(level: str, *, plural: bool = False) -> str:
    """How a level (a units group column) is named to users: 'cancer_alliance' -> 'Cancer Alliance'."""
    if level in _LABELS:
        return _LABELS[level][plural]
    words = level.replace("_", " ").strip()
    label = words[:1].upper() + words[1:]
    return f"{label}s" if plural and not label.endswith("s") else label


def group_level(groups: Sequence[str], preferred: str = ALLIANCE) -> str | None:
    """The level a grouped view shows: the Cancer Alliance if the units have one, else the first group.

    None when the units file defines no grouping (only codes and names), so views that need a level
    say so instead of failing.
    """
    if preferred in groups:
        return preferred
    return groups[0] if groups else None


def no_grouping_message(units_file: str | None = None) -> str:
    """What a view that needs a higher level shows when the catalogue defines none."""
    where = f" (`{units_file}`)" if units_file else ""
    return (f"No grouping is defined: the units{where} have only codes and names, so results cannot be rolled "
            "up to Cancer Alliances or regions. To add one, put the columns in the units file and list them in "
            "the catalogue, e.g. `units: {..., groups: [cancer_alliance, region]}`; or point `units:` at the "
            "shipped reference geography of English NHS trusts (`reference/nhs_trusts.csv`, see the README, "
            "\"Your own data\").")


def direction_of() -> pl.Expr:
    """'worse' / 'better' / 'higher' / 'lower' / None for each row, from status and polarity."""
    status = pl.col("status").cast(pl.String)
    high = status.str.ends_with("_high")
    flagged = status.is_in(FLAGGED)
    return (pl.when(~flagged).then(None)
            .when(pl.col("better") == "neither").then(pl.when(high).then(pl.lit("higher")).otherwise(pl.lit("lower")))
            .when(high == (pl.col("better") == "lower")).then(pl.lit("worse"))
            .otherwise(pl.lit("better")))


# worse before the no-polarity flags before better; alarms before alerts within each
_SEVERITY = {"worse_alarm": 0, "worse_alert": 1, "higher_alarm": 2, "lower_alarm": 2, "higher_alert": 3,
             "lower_alert": 3, "better_alarm": 4, "better_alert": 5}


def severity() -> pl.Expr:
    """How urgently a row needs reading, as an integer (smaller first): worse alarm 0, worse alert 1,
    no-polarity alarm 2 and alert 3, better alarm 4 and alert 5, within 6, not assessed 7, withheld
    (null status, small numbers) 8."""
    status = pl.col("status").cast(pl.String)
    key = pl.concat_str(direction_of(), pl.lit("_"), status.str.split("_").list.first())
    return (pl.when(status.is_null()).then(pl.lit(8, pl.Int8))
            .when(status == "not_assessed").then(pl.lit(7, pl.Int8))
            .when(status == "within").then(pl.lit(6, pl.Int8))
            .otherwise(key.replace_strict(_SEVERITY, default=6, return_dtype=pl.Int8)))


def by_severity(rows: pl.DataFrame, *then: str) -> pl.DataFrame:
    """Rows most urgent first (``severity``), then by ``then`` (default: tumour site, indicator title)."""
    keys = list(then) or [c for c in ("tumour_site", "indicator_title") if c in rows.columns]
    return rows.with_columns(severity().alias("_severity")).sort("_severity", *keys).drop("_severity")


def units_without_data(rows: pl.DataFrame) -> pl.Series:
    """The units whose every row (a unit's results across indicators) says 'no data': the reference geography's
    ambulance or mental-health trusts in a cancer table."""
    return (rows.group_by("unit_code").agg((pl.col("not_assessed_reason") == "no data").fill_null(False).all()
                                           .alias("_empty")).filter(pl.col("_empty"))["unit_code"])


def pooled(run: AuditRun) -> pl.DataFrame:
    """Rows for each indicator's pooled period (all periods together)."""
    parts = [r.table.filter(pl.col("period") == r.pooled_period) for r in run.results.values()]
    return pl.concat(parts, how="diagonal_relaxed").with_columns(direction_of().alias("direction"))


def headline_label(run: AuditRun) -> str:
    """What the headline rows (``pooled``) hold, in words: all periods pooled, the latest period where the
    catalogue does not pool (``pooled: false``: rolling windows), or a mixture of the two."""
    pooling = any(r.spec.pooled and r.table["period"].n_unique() > 1 for r in run.results.values())
    latest = {r.pooled_period for r in run.results.values() if not r.spec.pooled}
    if not latest:
        if pooling:
            return "All periods pooled"
        # one table of one period named by its dataset's `period` ('October 2023'): that period, not 'All periods'
        single = {r.pooled_period for r in run.results.values()}
        return single.pop() if len(single) == 1 and ALL_PERIODS not in single else "All periods"
    when = f" ({latest.pop()})" if len(latest) == 1 else ""
    if not pooling:
        return f"Latest period{when}"
    return f"All periods pooled (latest period{when} where not pooled)"


def single_periods(run: AuditRun) -> list[str]:
    """Periods that can be shown one at a time: every period of an indicator reported by period (its pooled
    label left out), and every period of an indicator that is never pooled."""
    return time_order({str(p) for r in run.results.values() for p in r.table["period"].unique().drop_nulls().to_list()
                   if not (r.spec.pooled and p == r.pooled_period)} - {ALL_PERIODS})


def outlier_list(table: pl.DataFrame, *, levels: Sequence[str] = ("alert", "alarm"),
                 directions: Sequence[str] = ("worse", "better", "higher", "lower"),
                 alliances: Sequence[str] | None = None, tumour_sites: Sequence[str] | None = None,
                 unit_level: str = "trust", group: str | None = None) -> pl.DataFrame:
    """Flagged results, filtered as a QI lead would (alarm-only, worse-only, my alliance...).

    ``alliances`` are values of the ``group`` column (the Cancer Alliance by default; the parent level
    where the units have no such column).
    """
    out = table.filter(pl.col("level") == unit_level, pl.col("status").cast(pl.String).is_in(FLAGGED))
    if "direction" not in out.columns:
        out = out.with_columns(direction_of().alias("direction"))
    wanted = [f"{lv}_{side}" for lv in levels for side in ("low", "high")]
    out = out.filter(pl.col("status").cast(pl.String).is_in(wanted), pl.col("direction").is_in(list(directions)))
    if alliances:
        column = group or ALLIANCE
        column = column if column in out.columns else "parent_code"
        out = out.filter(pl.col(column).is_in(list(alliances)))
    if tumour_sites:
        out = out.filter(pl.col("tumour_site").is_in(list(tumour_sites)))
    return out.sort(severity_order(out))


def severity_order(flagged: pl.DataFrame) -> list[pl.Expr]:
    """The order a QI lead reads flagged results in (#12 build 3): worse before higher/lower before better,
    alarms before alerts within each, then by tumour site and indicator, the farthest from expected first."""
    side = pl.col("direction").replace_strict({"worse": 0, "higher": 1, "lower": 1, "better": 2}, default=3,
                                              return_dtype=pl.Int8)
    level = pl.col("status").cast(pl.String).str.starts_with("alarm").not_().cast(pl.Int8)
    return [side, level, pl.col("tumour_site"), pl.col("indicator_id"), -pl.col("z").abs()]


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


def status_words(status: str | None, better: str | None) -> str:
    """A status in direction-aware words: 'worse than expected (alarm)', 'as expected', 'not assessed'."""
    if status is None:
        return "no result"
    if status in ("within", "not_assessed"):
        return {"within": "as expected", "not_assessed": "not assessed"}[status]
    level, side = status.split("_")
    if better not in ("higher", "lower"):
        return f"{'higher' if side == 'high' else 'lower'} than expected ({level})"
    worse = (side == "high") == (better == "lower")
    return f"{'worse' if worse else 'better'} than expected ({level})"


def summarise_changes(changes: pl.DataFrame, *, better_before: Mapping[str, str],
                      better_after: Mapping[str, str]) -> tuple[pl.DataFrame, str]:
    """A catalogue edit's effect in words: each changed result 'before -> after' in direction-aware words,
    and a summary of the net change in flags, e.g. '+4 worse, +2 better (6 results change)'.

    ``changes`` is ``status_changes``; the polarity of each indicator before and after the edit (an edit may
    change it) comes from the two catalogues.
    """
    def words(column: str, better: Mapping[str, str]) -> list[str]:
        return [status_words(s, better.get(i)) for s, i in zip(changes[column], changes["indicator_id"], strict=True)]

    before = words("status_before", better_before)
    after = words("status_after", better_after)
    table = changes.select("indicator_id", "level", "unit_code", "unit_name", "period").with_columns(
        pl.Series("Before", before, dtype=pl.String), pl.Series("After", after, dtype=pl.String))
    parts = []
    for kind in ("worse", "better", "higher", "lower"):
        delta = sum(a.startswith(kind) for a in after) - sum(b.startswith(kind) for b in before)
        if delta or kind in ("worse", "better"):
            parts.append(f"{delta:+d} {kind}")
    summary = f"{', '.join(parts)} ({changes.height} result{'s' if changes.height != 1 else ''} change status)"
    return table, summary


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


def chance_counts(table: pl.DataFrame, coverage: Mapping[str, tuple[float, ...]],
                  one_sided: Sequence[str] = ()) -> pl.DataFrame:
    """Per indicator: units outside each limit against the number expected by chance among the units shown.

    "Outside 95%" counts alerts and alarms (an alarm is also outside the 95% limits), which is what
    the expected count (units assessed x 5%) refers to; both use the same units (after any filter).
    Indicators in ``one_sided`` flag only the worse side, so half as many are expected by chance.
    An indicator with one limit (``limits: [0.998]``) counts its flags under both: its only limit is its inner
    and its outer limit (as the rug, whose darker shade is beyond the outer limit, draws it).
    """
    def sides(k: str) -> float:
        return 0.5 if k in one_sided else 1.0

    status = pl.col("status").cast(pl.String)
    assessed = status != "not_assessed"
    inner = pl.col("indicator_id").replace_strict({k: (1 - v[0]) * sides(k) for k, v in coverage.items()},
                                                  default=None, return_dtype=pl.Float64)
    outer = pl.col("indicator_id").replace_strict({k: (1 - v[-1]) * sides(k) for k, v in coverage.items()},
                                                  default=None, return_dtype=pl.Float64)
    single = [k for k, v in coverage.items() if len(v) == 1]
    beyond_outer = status.str.starts_with("alarm") | (pl.col("indicator_id").is_in(single)
                                                      & status.str.starts_with("alert"))
    return (table.group_by("indicator_id", "indicator_title", "tumour_site")
            .agg(assessed.sum().alias("assessed"),
                 (assessed & (status != "within")).sum().alias("outside_inner"),
                 beyond_outer.sum().alias("outside_outer"),
                 inner.first().alias("_inner"), outer.first().alias("_outer"))
            .with_columns((pl.col("assessed") * pl.col("_inner")).alias("expected_inner"),
                          (pl.col("assessed") * pl.col("_outer")).alias("expected_outer"))
            .drop("_inner", "_outer").sort("tumour_site", "indicator_title"))


# ------------------------------------------------------------------ one result, one scale

SCALES = {"proportion": "rate", "ratio": "observed/expected ratio", "rate": "rate",
          "ratio_of_counts": "ratio of counts"}


@dataclass(frozen=True)
class ResultOnScale:
    """One unit's result with everything a reader is told about it on ONE scale: the funnel's y axis.

    For a risk-adjusted indicator that is the risk-adjusted rate (O/E x national rate): the value,
    what it is compared with and the unit's own expected range (for its size and case-mix) are all
    risk-adjusted rates. Otherwise it is the indicator's own statistic. Values are fractions (not
    multiplied); ``multiplier`` is for display. On a suppressed row the value and range are None.
    """

    scale: str                   # e.g. "risk-adjusted rate", "rate", "observed/expected ratio"
    multiplier: float
    value: float | None
    comparator: float | None     # what the value is compared with, on the same scale
    comparator_name: str         # "national rate", "standard", ...
    lower: float | None          # the unit's expected range at the alert coverage, same scale
    upper: float | None
    coverage: float
    observed: float | None       # None when suppressed
    denominator: float | None
    expected_events: float | None
    crude: float | None          # observed / patients (risk-adjusted indicators)
    risk_adjusted: bool
    statistic: str
    status: str | None           # None: withheld (small numbers)
    status_label: str
    p_value: float | None
    not_assessed_reason: str | None
    suppressed: bool
    worse_side: str | None = None  # 'high' or 'low' for a one-sided test (its p is one-sided), else None


def _number(v: object) -> float | None:
    """A finite float, or None (null, NaN, a suppression symbol)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    f = float(v)  # type: ignore[arg-type]
    return f if math.isfinite(f) else None


def on_scale(row: Mapping[str, object], *, risk_adjusted: bool, standard: float | None = None,
             coverage: float = 0.95, worse_side: str | None = None) -> ResultOnScale:
    """Put a results-table row (suppressed or not) on the one scale its funnel is drawn on (``worse_side``: the
    indicator's, for a one-sided test)."""
    statistic = str(row.get("statistic") or "proportion")
    rate_scale = _number(row.get("rate_scale")) or 1.0
    factor = rate_scale if risk_adjusted else 1.0
    value = _number(row.get("adjusted_value")) if risk_adjusted else _number(row.get("value"))
    if risk_adjusted and value is None and _number(row.get("value")) is not None:
        value = _number(row.get("value")) * rate_scale  # type: ignore[operator]
    target = _number(row.get("target"))

    def scaled(column: str) -> float | None:
        x = _number(row.get(column))
        return None if x is None else x * factor

    observed, denominator = _number(row.get("observed")), _number(row.get("denominator"))
    if risk_adjusted:
        # E comes from a national model (O/E = 1 is the national rate). Against an external standard each
        # unit's expected proportion is moved by a common odds ratio (pipeline.standard_shift), so the
        # events expected at the comparator are n x shift(E/n)
        scale, expected = "risk-adjusted rate", _number(row.get("expected"))
        if expected is not None and standard is not None and denominator:
            share = np.clip(np.array([expected / denominator]), 1e-12, 1 - 1e-12)
            expected = float(standard_shift(share, national=rate_scale, standard=standard)[0]) * denominator
    else:
        scale = SCALES.get(statistic, "value")
        expected = _number(row.get("expected"))
    name = ("standard" if standard is not None else
            {"ratio": "expected ratio" if not risk_adjusted else "national rate"}.get(statistic, "national value"))
    if statistic == "proportion" and standard is None:
        name = "national rate"
    status = row.get("status")
    return ResultOnScale(
        scale=scale, multiplier=float(_number(row.get("multiplier")) or 1.0), value=value,
        comparator=None if target is None else target * factor, comparator_name=name,
        lower=scaled("lower_alert"), upper=scaled("upper_alert"), coverage=coverage,
        observed=observed, denominator=denominator, expected_events=expected,
        crude=_number(row.get("crude_value")) if risk_adjusted else None, risk_adjusted=risk_adjusted,
        statistic=statistic, status=None if status is None else str(status),
        status_label=str(row.get("status_label") or ""), p_value=_number(row.get("p_value")),
        not_assessed_reason=None if row.get("not_assessed_reason") is None else str(row["not_assessed_reason"]),
        suppressed=bool(row.get("suppressed")) or (isinstance(row.get("observed"), str)
        and _number(row.get("observed")) is None), worse_side=worse_side,
    )


def _digits(multiplier: float, extra: int) -> str:
    return f".{1 + extra}f" if multiplier == 100 else f".{3 + extra}g"


def _formatted(x: float, multiplier: float, spec: str) -> str:
    if multiplier == 100:
        return f"{x * 100:{spec}}%"
    return f"{x * multiplier:{spec}}"


def scale_formatter(result: ResultOnScale):
    """A formatter for this result's numbers, precise enough that the value never prints equal to
    a limit it is in fact above or below (so a printed verdict never contradicts the printed range)."""
    m = result.multiplier
    for extra in range(4):
        spec = _digits(m, extra)
        if result.value is None or all(
                b is None or b == result.value
                or _formatted(result.value, m, spec) != _formatted(b, m, spec)
                for b in (result.lower, result.upper)):
            break
    return lambda x: "-" if x is None else _formatted(x, m, spec)


def _count(x: float | None) -> str:
    """12 patients as '12'; a published half count (a shared patient) as '12.5', never rounded."""
    if x is None:
        return "-"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def counts_phrase(result: ResultOnScale, *, symbol: str = "*") -> str:
    """'12 of 215 patients; about 5.1 were expected for its patients' case-mix'."""
    n = symbol if result.suppressed and result.denominator is None else _count(result.denominator)
    o = symbol if result.suppressed and result.observed is None else _count(result.observed)
    if result.statistic in {"proportion"} or result.risk_adjusted:
        text = f"{o} of {n} patients"
    elif result.statistic == "ratio_of_counts":
        text = f"{o} against a comparison count of {n}"
    else:
        text = f"{o} events"
    if result.expected_events is not None:
        at = f" at the {result.comparator_name}" if result.comparator_name == "standard" else ""
        where = (f"for its patients' case-mix{at}" if result.risk_adjusted else
                 f"at the {result.comparator_name}" if result.statistic != "ratio" else "")
        text += f"; about {result.expected_events:,.1f} were expected" + (f" {where}" if where else "")
    return text


def result_sentence(result: ResultOnScale, *, title: str, symbol: str = "*",
                    suppressed_range: tuple[int, int] = (1, 7)) -> str:
    """One plain-English sentence: value and comparator on one named scale, the counts, the verdict."""
    if result.status == "not_assessed":
        counts = "" if result.denominator is None and not result.suppressed else f"; {counts_phrase(result, symbol=symbol)}"
        return f"{title}: not assessed ({result.not_assessed_reason or 'not enough data'}){counts}."
    f = scale_formatter(result)
    if result.suppressed:
        lo, hi = suppressed_range
        head = (f"{title}: {counts_phrase(result, symbol=symbol)} (a count of {lo}-{hi}, not shown, so neither "
                "is the rate)")
    else:
        article = "an" if result.comparator_name[:1] in "aeiou" else "a"
        head = (f"{title}: {result.scale} {f(result.value)} against {article} {result.comparator_name} of "
                f"{f(result.comparator)} ({counts_phrase(result)})")
    if result.status is None:
        return f"{head}. Its result is not shown either, as it would reveal the count."
    if result.status == "within":
        return f"{head}. This is within the range expected from chance alone."
    words, _, named = result.status_label.partition(" (")
    # the label's own level: alert/alarm, or an only limit by its coverage (pipeline._finish)
    level = named.removesuffix(")") or ("alarm" if result.status.startswith("alarm") else "alert")
    chance = narrative.chance_phrase(result.p_value)
    if result.worse_side is not None and chance:  # the p is one-sided: say so, and which way (a review: '1 time
        # in 540' beside an alert read as rarer than the 99.8% limit's 1 in 500, which is two-sided)
        way = "high" if result.worse_side == "high" else "low"
        return (f"{head}. This is {words} ({level}): a result this {way} would arise by chance {chance} (a one-sided "
                "test: only the worse side is flagged).")
    return (f"{head}. This is {words} ({level})"
            + (f": a difference this large would arise by chance {chance}." if chance else "."))


def range_sentence(result: ResultOnScale, *, unit: str = "trust") -> str | None:
    """'Expected range (95%) for a trust of its size and case-mix: 0.9% to 5.1% (risk-adjusted rate).'"""
    if result.lower is None or result.upper is None or result.status == "not_assessed":
        return None
    f = scale_formatter(result)
    what = f"a {unit} of its size" + (" and case-mix" if result.risk_adjusted else "")
    return (f"Expected range ({coverage_label(result.coverage)}%) for {what}: {f(result.lower)} to {f(result.upper)} "
            f"({result.scale}).")


def hover_text(result: ResultOnScale) -> str:
    """The funnel/caterpillar hover for one unit, on the plotted scale (HTML line breaks)."""
    f = scale_formatter(result)
    lines = []
    if result.value is not None:
        lines.append(f"{result.scale[:1].upper()}{result.scale[1:]}: {f(result.value)}")
    lines.append(counts_phrase(result)[:1].upper() + counts_phrase(result)[1:])
    if result.risk_adjusted and result.crude is not None:
        lines.append(f"Crude (unadjusted) rate: {f(result.crude)}")
    if result.lower is not None and result.upper is not None and result.status != "not_assessed":
        what = "its size" + (" and case-mix" if result.risk_adjusted else "")
        lines.append(f"Expected range ({coverage_label(result.coverage)}%) for {what}: {f(result.lower)} to {f(result.upper)}")
    label = result.status_label
    lines.append(label[:1].upper() + label[1:])
    return "<br>".join(lines)


# the rug's marks (figures.RUG_MARKS): filled worse, outline better, pointing above or below expected
RUG_MARKS = {("worse", "high"): "▲", ("worse", "low"): "▼", ("better", "high"): "△", ("better", "low"): "▽",
              ("higher", "high"): "▲", ("lower", "low"): "▼"}


def flagged_cells(grid: pl.DataFrame, *, risk_adjusted: Sequence[str] = (),
                  coverage: Mapping[str, float] | None = None, group: str | None = None) -> pl.DataFrame:
    """The rug's flagged cells as a list, most urgent first (``severity``), for a phone, a keyboard or a screen
    reader: indicator_id and unit_code (to open one), then Status (the rug's mark and direction-aware words,
    '▲ Worse (alarm)'), Trust, Indicator,
    Tumour site, the ``group`` (e.g. Cancer Alliance), Value and Expected range on the funnel's scale.

    ``grid`` is the rug's input (suppressed for disclosure control: a withheld status is not listed)."""
    rows = by_severity(grid.filter(pl.col("status").cast(pl.String).is_in(FLAGGED)),
                       *[c for c in ("tumour_site", "indicator_title", "unit_name") if c in grid.columns])
    cov = coverage or {}
    values, ranges = [], []
    for r in rows.iter_rows(named=True):
        result = on_scale(r, risk_adjusted=r["indicator_id"] in risk_adjusted,
                          coverage=cov.get(r["indicator_id"], 0.95))
        f = scale_formatter(result)
        values.append("" if result.value is None else f"{f(result.value)} ({result.scale})")
        ranges.append("" if result.lower is None or result.upper is None else
                      f"{f(result.lower)} to {f(result.upper)} ({coverage_label(result.coverage)}%)")
    by = [pl.col(group).alias(level_label(group))] if group and group in rows.columns else []
    # short enough for a phone's first column: the rug's mark, then 'Worse (alarm)', 'Better (alert)'
    words = [(str(label) if label and " (" in str(label) else status_words(str(s), b)).replace(" than expected", "")
             for s, b, label in zip(rows["status"], rows["better"],
                                    rows["status_label"] if "status_label" in rows.columns else [None] * rows.height,
                                    strict=True)]
    marks = [RUG_MARKS[(w.split()[0], str(s).split("_")[1])] for w, s in zip(words, rows["status"], strict=True)]
    return rows.select(
        "indicator_id", "unit_code",
        pl.Series("Status", [f"{m} {w[:1].upper()}{w[1:]}" for m, w in zip(marks, words, strict=True)],
                  dtype=pl.String),
        pl.col("unit_name").alias("Trust"), pl.col("indicator_title").alias("Indicator"),
        pl.col("tumour_site").alias("Tumour site"), *by,
        pl.Series("Value", values, dtype=pl.String), pl.Series("Expected range", ranges, dtype=pl.String))


def limits_phrase(coverages: Sequence[float]) -> str:
    """'95% and 99.8% limits (about 2.0 and 3.1 standard deviations)', from the coverages in use."""
    from audit_metrics.funnel import coverage_z

    pcts = [f"{c * 100:.10g}%" for c in coverages]
    sds = [f"{coverage_z(c):.1f}" for c in coverages]
    return (f"{' and '.join(pcts)} limit{'s' if len(pcts) > 1 else ''} (about {' and '.join(sds)} standard "
            f"deviation{'s' if len(sds) > 1 or sds[0] != '1.0' else ''})")
