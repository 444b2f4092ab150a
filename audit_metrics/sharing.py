"""What leaves the tool for a meeting: the outlier list (dashboard download and ``audit-metrics outliers``),
its read-me (methods, provenance, suppression rule, synthetic-data statement) and its file name.

One function, ``build_outlier_export``, makes the list for both the dashboard and the command line, so a
scheduled CLI run gives the same content as the dashboard's download for the same filters.
"""

from __future__ import annotations

import copy
import html
import math
import platform
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit_metrics import __version__, export, narrative, views
from audit_metrics.catalogue import LoadedCatalogue, SuppressionSpec
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.outliers import coverage_label
from audit_metrics.periods import time_order
from audit_metrics.pipeline import UNIT_LEVEL, AuditRun

__all__ = [
    "DIRECTIONS",
    "LEVELS",
    "NO_POLARITY",
    "POLARISED",
    "RESULT_HEADERS",
    "SAMPLE_DIR",
    "SYNTHETIC_STATEMENT",
    "OutlierExport",
    "OutlierFilters",
    "annotate_figure",
    "build_outlier_export",
    "chart_file_name",
    "chart_footnote",
    "check_filters",
    "column_rows",
    "dataset_files",
    "is_bundled_sample",
    "methods_by_indicator",
    "outlier_group",
    "outlier_readme",
    "period_table",
    "periods",
    "provenance_rows",
    "result_headers",
    "run_uses_bundled_sample",
    "source_label",
    "uses_bundled_sample",
]

LEVELS = ("alarm", "alert")
POLARISED = ("worse", "better")  # the dashboard's Direction filter
NO_POLARITY = ("higher", "lower")  # flags of an indicator with no better direction (`better: neither`)
DIRECTIONS = POLARISED + NO_POLARITY  # what `audit-metrics outliers --direction` accepts; default all
SOURCE_NAME_MAX = 60  # characters of the audit's name in a file name ('Cancer-Waiting-Times-62-day-standard-NHS-England')
HEADLINE = None  # the period filter's default: each indicator's headline (pooled) period
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
SYNTHETIC_STATEMENT = ("Synthetic sample data: every trust, Cancer Alliance, region and patient in this file is "
                       "fictional (codes start with Z); the numbers illustrate the method only and must not be "
                       "used to judge any real organisation.")


@dataclass(frozen=True)
class OutlierFilters:
    """The outlier list's filters, as the dashboard's widgets and the CLI's options give them.

    Empty tuples mean "all". ``period`` None means each indicator's headline period (all periods pooled,
    or the latest for an indicator that is never pooled).
    """

    alliances: tuple[str, ...] = ()
    tumour_sites: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    levels: tuple[str, ...] = LEVELS
    directions: tuple[str, ...] = DIRECTIONS
    period: str | None = HEADLINE

    def as_rows(self, group_label: str, *, no_polarity: bool = True,
                headline: str | None = None) -> list[tuple[str, str, object]]:
        """The filters for the read-me sheet, in words ("all" where none is chosen).

        ``no_polarity`` False: no indicator in these results lacks a better direction, so higher/lower
        select nothing and are not listed (the dashboard's worse and better then read as the command
        line's default, all four). ``headline``: the one headline period of every exported indicator, named
        when no period was chosen (a single month's table: 'October 2023', not 'all periods pooled').
        """
        def words(values: Sequence[str]) -> str:
            return "; ".join(values) if values else "all"
        directions = [d for d in self.directions if no_polarity or d not in NO_POLARITY] or self.directions
        return [("Filters", group_label, words(self.alliances)),
                ("Filters", "Tumour site", words(self.tumour_sites)),
                ("Filters", "Indicator", words(self.indicators)),
                ("Filters", "Level", words(self.levels)),
                ("Filters", "Direction", words(directions)),
                ("Filters", "Period", self.period or (f"{headline} (each indicator's headline period)" if headline
                                                      else "each indicator's headline period (all periods pooled)"))]


@dataclass(frozen=True)
class OutlierExport:
    """The outlier list as shared: small counts suppressed, with everything its files need."""

    table: pl.DataFrame                 # suppressed rows, as listed on screen and downloaded
    withheld: int                       # flagged results left out because the flag alone would reveal a count
    filters: OutlierFilters
    rule: SuppressionSpec
    group: str | None                   # the units' grouping column the alliance filter applies to
    readme: export.Readme = field(repr=False)
    built_at: datetime
    period_label: str = "headline periods"  # the period chosen, or the one headline period of every indicator
    source_label: str | None = None     # the audit the exported indicators share, else the catalogue (file_name)

    @property
    def exported(self) -> pl.DataFrame:
        """The rows as written to CSV and Excel."""
        return self.table.drop("direction", strict=False)

    @property
    def headers(self) -> dict[str, str]:
        """The files' column headings, in plain English (``result_headers``)."""
        return result_headers(self.exported.columns)

    def csv_bytes(self) -> bytes:
        return export.to_csv_bytes(export.results_order(self.exported), headers=self.headers)

    def excel_bytes(self) -> bytes:
        return export.to_excel_bytes(self.exported, self.readme, created=self.built_at, headers=self.headers)

    def file_name(self, suffix: str) -> str:
        """``outliers_<audit>_<alliance>_<indicator or site>_<period>_<date>.csv``: what the file holds, so the
        lists of two catalogues (the Faster Diagnosis and the 62-day tables) do not overwrite each other in a
        Downloads folder. The grouping part is left out where the units have no grouping (SHMI's trusts)."""
        f = self.filters
        where = None
        if self.group is not None:
            noun = views.level_label(self.group, plural=True).lower()
            where = (f.alliances[0] if len(f.alliances) == 1 else f"{len(f.alliances)} {noun}" if f.alliances
                     else f"all {noun}")
        what = (f.indicators[0] if len(f.indicators) == 1 else f"{len(f.indicators)} indicators" if f.indicators
                else f.tumour_sites[0] if len(f.tumour_sites) == 1
                else f"{len(f.tumour_sites)} sites" if f.tumour_sites else "all indicators")
        # the audit and the period up to 60 characters, the rest up to 40 as before: at most 228 in all
        where, what = (export.slug(p) if p else None for p in (where, what))
        return export.download_name("outliers", self.source_label, where, what, self.period_label,
                                    on=self.built_at, suffix=suffix, max_length=SOURCE_NAME_MAX)

    def write(self, path: str | Path) -> Path:
        """Write to ``path`` (.csv or .xlsx, by its extension)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            path.write_bytes(self.csv_bytes())
        elif suffix == ".xlsx":
            path.write_bytes(self.excel_bytes())
        else:
            msg = f"--out {path.name}: use a .csv or .xlsx file name"
            raise AuditMetricsError(msg)
        return path


def periods(run: AuditRun) -> list[str]:
    """Every period some indicator reports, in time order (pooled labels after their first period)."""
    return time_order(str(p) for r in run.results.values() for p in r.table["period"].unique().drop_nulls().to_list())


def period_table(run: AuditRun, period: str | None) -> pl.DataFrame:
    """Results for one period (every indicator that reports it), or each headline period (None)."""
    if period is None:
        return views.pooled(run)
    parts = [r.table.filter(pl.col("period") == period) for r in run.results.values()]
    parts = [p for p in parts if p.height]
    if not parts:
        msg = f"no indicator reports the period {period!r}; periods in these results: {', '.join(periods(run))}"
        raise AuditMetricsError(msg)
    return pl.concat(parts, how="diagonal_relaxed").with_columns(views.direction_of().alias("direction"))


def check_filters(filters: OutlierFilters, table: pl.DataFrame, *, group: str | None) -> None:
    """Every chosen value exists (a misspelt alliance would otherwise give an empty, wrong, list)."""
    trusts = table.filter(pl.col("level") == UNIT_LEVEL)

    def check(chosen: Sequence[str], column: str, what: str, option: str) -> None:
        known = sorted(trusts[column].drop_nulls().unique().cast(pl.String).to_list()) if column in trusts.columns else []
        unknown = [c for c in chosen if c not in known]
        if unknown:
            msg = (f"{option} {unknown[0]!r}: no such {what} in these results. Choose from: "
                   + "; ".join(known))
            raise AuditMetricsError(msg)

    if filters.alliances:
        if group is None:
            msg = "--alliance: the units define no Cancer Alliance or other grouping; leave --alliance out"
            raise AuditMetricsError(msg)
        check(filters.alliances, group, views.level_label(group), "--alliance")
    check(filters.tumour_sites, "tumour_site", "tumour site", "--site")
    check(filters.indicators, "indicator_id", "indicator id", "--indicator")
    for value in filters.levels:
        if value not in LEVELS:
            msg = f"--level {value!r}: choose alarm or alert"
            raise AuditMetricsError(msg)
    for value in filters.directions:
        if value not in DIRECTIONS:
            msg = f"--direction {value!r}: choose from {', '.join(DIRECTIONS)}"
            raise AuditMetricsError(msg)


def build_outlier_export(run: AuditRun, loaded: LoadedCatalogue, filters: OutlierFilters, *,
                         table: pl.DataFrame | None = None, synthetic: bool = False,
                         data: Mapping[str, str | Path] | None = None,
                         built_at: datetime | None = None) -> OutlierExport:
    """The outlier list for ``filters``, suppressed for sharing, with its read-me.

    ``table`` is the results table for the filters' period when the caller already has it (the
    dashboard's cached pooled table); otherwise it is taken from ``run``. ``data`` are the dataset
    files used instead of the catalogue's (uploads), for the provenance rows.
    """
    table = period_table(run, filters.period) if table is None else table
    group = outlier_group(run, table)
    check_filters(filters, table, group=group)
    flagged = views.outlier_list(table, levels=filters.levels, directions=filters.directions,
                                 alliances=filters.alliances, tumour_sites=filters.tumour_sites, group=group)
    if filters.indicators:
        flagged = flagged.filter(pl.col("indicator_id").is_in(list(filters.indicators)))
    rule = loaded.catalogue.defaults.suppression
    safe, withheld = views.outliers_for_sharing(flagged, rule)
    safe = with_limit_coverages(safe, run)
    built_at = built_at or datetime.now(UTC)
    scope = (safe["indicator_id"].unique(maintain_order=True).to_list() if safe.height
             else _indicators_in_scope(run, filters))
    readme = outlier_readme(run, loaded, filters=filters, rule=rule, withheld=withheld, rows=safe.height,
                            indicators=scope, group=group, synthetic=synthetic, data=data, built_at=built_at,
                            columns=export.results_order(safe.drop("direction", strict=False)).columns)
    headlines = {run.results[i].pooled_period for i in scope if i in run.results}
    label = filters.period or (headlines.pop() if len(headlines) == 1 else "headline periods")
    return OutlierExport(table=safe, withheld=withheld, filters=filters, rule=rule, group=group, readme=readme,
                         built_at=built_at, period_label=label,
                         source_label=source_label(run, loaded, _indicators_in_scope(run, filters)))


def source_label(run: AuditRun, loaded: LoadedCatalogue, indicators: Sequence[str]) -> str | None:
    """What a shared file's name says it comes from: the ``audit`` the indicators share ('SHMI (HSCIC, January
    2014)'); else the catalogue file's stem, unless it is the usual 'indicators'; else how many audits
    ('10 audits'); None when the indicators name no audit and the catalogue is called indicators.yaml."""
    audits = {run.results[i].spec.audit for i in indicators if i in run.results}
    if len(audits) == 1 and None not in audits:
        return audits.pop()
    stem = Path(str(loaded.path)).stem
    if stem.lower() != "indicators":
        return stem
    named = audits - {None}
    return f"{len(named)} audits" if len(named) > 1 else None


def with_limit_coverages(table: pl.DataFrame, run: AuditRun) -> pl.DataFrame:
    """``table`` with each row's limit coverages from its indicator's own ``limits`` (``alert_coverage``: the
    first, or only, limit; ``alarm_coverage``: the second, null with one limit), as the last columns, and
    ``tau2`` as the between-unit variance actually added to the row's limits (0 where none was: the
    estimate of an indicator whose limits were not widened, or were widened by phi, is not in its limits)."""
    if table.is_empty() or "indicator_id" not in table.columns:
        return table
    limits = {k: r.options.limits for k, r in run.results.items()}
    ids = table["indicator_id"].cast(pl.String).to_list()
    alert = [limits[i][0] if i in limits else None for i in ids]
    alarm = [limits[i][1] if i in limits and len(limits[i]) > 1 else None for i in ids]
    out = table.with_columns(pl.Series("alert_coverage", alert, dtype=pl.Float64),
                             pl.Series("alarm_coverage", alarm, dtype=pl.Float64))
    if "tau2" in out.columns and {"level", "period"} <= set(out.columns):
        added = [run.results[i].overdispersion.get((str(lv), str(pd))) if i in run.results else None
                 for i, lv, pd in zip(ids, out["level"].to_list(), out["period"].to_list(), strict=True)]
        tau2 = [None if t is None else (t if od is None else od.applied_tau2)
                for t, od in zip(out["tau2"].to_list(), added, strict=True)]
        out = out.with_columns(pl.Series("tau2", tau2, dtype=pl.Float64))
    # a one-sided test flags only the worse side: the other side's limits are never applied, so they are left blank
    # (a review found 'Upper alert limit 0.976' beside 0.981 'as expected' on a lower-is-worse standard)
    untested = {k: {"low": "upper", "high": "lower"}[r.spec.worse_side] for k, r in run.results.items()
                if r.spec.worse_side is not None}
    if untested:
        side = pl.col("indicator_id").cast(pl.String).replace_strict(untested, default=None)
        out = out.with_columns(pl.when(side == s).then(None).otherwise(pl.col(c)).alias(c)
                               for s in ("lower", "upper") for c in (f"{s}_alert", f"{s}_alarm") if c in out.columns)
    return out


def limits_contents(run: AuditRun, indicators: Sequence[str]) -> str:
    """What alert and alarm mean in a file of ``indicators``, from their own limits: 'alert: outside the 95%
    limits; alarm: outside the 99.8% limits' when they share them, else each indicator's."""
    sets = {i: tuple(run.results[i].options.limits) for i in indicators if i in run.results}
    if not sets:
        return "alert: outside the alert (inner) limits; alarm: outside the alarm (outer) limits"
    if len(set(sets.values())) == 1:
        limits = next(iter(sets.values()))
        if len(limits) == 1:
            return f"alert: outside the {coverage_label(limits[0])}% limits, the only ones; no alarm level"
        return (f"alert: outside the {coverage_label(limits[0])}% limits; alarm: outside the "
                f"{coverage_label(limits[1])}% limits")
    return "; ".join(f"{i}: alert outside {coverage_label(c[0])}%, its only limits" if len(c) == 1 else
                     f"{i}: alert outside {coverage_label(c[0])}%, alarm outside {coverage_label(c[1])}%"
                     for i, c in sets.items())


def outlier_group(run: AuditRun, table: pl.DataFrame) -> str | None:
    """The grouping column the alliance filter applies to (the Cancer Alliance where the units have one)."""
    group = views.group_level(run.units.groups if run.units else ())
    return group if group in table.columns else None


def _indicators_in_scope(run: AuditRun, filters: OutlierFilters) -> list[str]:
    return [i for i, r in run.results.items()
            if (not filters.indicators or i in filters.indicators)
            and (not filters.tumour_sites or r.spec.tumour_site in filters.tumour_sites)]


def suppression_sentence(rule: SuppressionSpec, withheld: int | None = None) -> str:
    text = (f"Counts of {rule.min_count} to {rule.max_count} are shown as '{rule.symbol}'. On such a row every "
            "value that could give the count back (the value, risk-adjusted and crude rates, expected, z, p and q "
            "values, and the unit's own limits) is left blank; where the flag alone would reveal the count, the "
            "result is not listed.")
    if withheld is not None:
        text += f" Flagged results not listed for that reason: {withheld}."
    return text


def dataset_files(loaded: LoadedCatalogue, data: Mapping[str, str | Path] | None = None) -> dict[str, Path]:
    return {name: loaded.dataset_path(name, data) for name in loaded.catalogue.datasets}


def is_bundled_sample(path: Path) -> bool:
    """True for a file in the bundled synthetic sample folder (``sample_data/`` next to the package)."""
    try:
        return SAMPLE_DIR in path.resolve().parents
    except OSError:
        return False


def uses_bundled_sample(loaded: LoadedCatalogue, data: Mapping[str, str | Path] | None = None) -> bool:
    """True when any dataset in use is the bundled synthetic sample (the read-me then says so)."""
    return any(is_bundled_sample(p) for p in dataset_files(loaded, data).values())


def _shown_path(loaded: LoadedCatalogue, path: Path) -> str:
    """A dataset file as the catalogue names it (relative to the catalogue), else its name only: no
    server paths in a shared file."""
    try:
        return path.resolve().relative_to(Path(loaded.base_dir).resolve()).as_posix()
    except (ValueError, OSError):
        return path.name


def provenance_rows(run: AuditRun, loaded: LoadedCatalogue, *, data: Mapping[str, str | Path] | None = None,
                    built_at: datetime) -> list[tuple[str, str, object]]:
    """Where the numbers come from: software, catalogue, each dataset file (date, hash, rows)."""
    rows: list[tuple[str, str, object]] = [
        ("Provenance", "File created (UTC)", built_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("Provenance", "Results computed (UTC)", run.generated_at),
        ("Provenance", "Software", f"audit_metrics {__version__} (Python {platform.python_version()})"),
        ("Provenance", "Indicator catalogue", Path(str(loaded.path)).name),
        ("Provenance", "Catalogue version", loaded.catalogue.version),
        ("Provenance", "Catalogue SHA-256", run.catalogue_digest),
    ]
    for name, path in dataset_files(loaded, data).items():
        if name not in run.datasets and name not in run.data_digests:
            continue
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d")
        except OSError:
            modified = "unknown"
        rows.append((f"Dataset {name}", "File", _shown_path(loaded, path)))
        rows.append((f"Dataset {name}", "File last modified (UTC)", modified))
        rows.append((f"Dataset {name}", "SHA-256", run.data_digests.get(name, "")))
        accounting = run.datasets.get(name)
        if accounting is not None:
            rows.append((f"Dataset {name}", "Rows read", accounting.rows_read))
            rows.append((f"Dataset {name}", "Rows used", accounting.rows_used))
            rows.append((f"Dataset {name}", "Rows excluded", accounting.rows_excluded))
    return rows


_METHODS_SCHEMA = {
    "indicator_id": pl.String, "indicator": pl.String, "tumour_site": pl.String, "period": pl.String,
    "statistic": pl.String, "risk_adjusted": pl.Boolean, "limits": pl.String, "limit_method": pl.String,
    "overdispersion_method": pl.String, "overdispersion_estimator": pl.String, "overdispersion_applied": pl.Boolean,
    "overdispersion_reason": pl.String, "phi": pl.Float64, "tau2": pl.Float64, "units_in_estimate": pl.Int64,
    "national_value": pl.Float64, "national_value_unit": pl.String, "audit_standard": pl.Float64,
    "trusts_assessed": pl.Int64,
}

_ESTIMATORS = {"robust_ml": "robust maximum likelihood", "dersimonian_laird": "DerSimonian-Laird",
               "multiplicative_phi": "multiplicative phi"}


def methods_by_indicator(run: AuditRun, indicators: Sequence[str], *, period: str | None) -> pl.DataFrame:
    """One row per indicator: limit method, coverage, overdispersion estimator and whether it was applied
    (with the reason), national value, for the trust-level funnel of the exported period."""
    rows = []
    for ind in indicators:
        result = run.results.get(ind)
        if result is None:
            continue
        p = period or result.pooled_period
        trusts = result.table.filter(pl.col("level") == UNIT_LEVEL, pl.col("period") == p)
        if trusts.height == 0:
            continue
        od = result.overdispersion.get((UNIT_LEVEL, p))
        national = result.table.filter(pl.col("level") == "national", pl.col("period") == p)
        # the national rate for this period (observed / denominator of the national row)
        rate = national["crude_value"][0] if "crude_value" in national.columns and national.height else None
        rate = rate if rate is not None and math.isfinite(rate) else result.national_rate
        standard = result.spec.target_for(p)
        multiplier = result.spec.multiplier
        assessed = trusts.filter(pl.col("status").cast(pl.String) != "not_assessed").height
        rows.append({
            "indicator_id": ind, "indicator": result.spec.title, "tumour_site": result.spec.tumour_site,
            "period": p, "statistic": result.spec.statistic, "risk_adjusted": result.spec.risk_adjustment is not None,
            "limits": " and ".join(f"{c * 100:g}%" for c in result.options.limits)
                      + (" (one-sided)" if result.spec.test == "one_sided" else " (two-sided)"),
            "limit_method": str(trusts["method"][0]).split(";")[0],
            "overdispersion_method": od.method if od else result.options.overdispersion,
            "overdispersion_estimator": _ESTIMATORS.get(od.estimator if od else result.options.estimator,
                                                        od.estimator if od else result.options.estimator),
            "overdispersion_applied": bool(od.applied) if od else False,
            "overdispersion_reason": od.reason if od else "not estimated",
            "phi": od.phi if od else None, "tau2": od.tau2 if od else None,
            "units_in_estimate": od.n_units if od else None,
            # on the results sheet's scale (0-1 for a proportion), as every number in the files is; the unit
            # says how the screen shows it (a review found 88.3 here beside 0.96 on the results sheet)
            "national_value": rate, "audit_standard": standard,
            "national_value_unit": ("0-1 (shown as % on screen)" if multiplier == 100 else
                                    f"shown x {multiplier:g} on screen" if multiplier != 1 else ""),
            "trusts_assessed": assessed,
        })
    return pl.DataFrame(rows, schema=_METHODS_SCHEMA)


# What each column of the results sheet holds, for the read-me (columns not listed get a generic line).
COLUMN_NOTES = {
    "indicator_id": "indicator identifier in the catalogue",
    "indicator_title": "indicator name",
    "tumour_site": "tumour site of the indicator",
    "level": "level compared (trust)",
    "unit_code": "organisation code",
    "unit_name": "organisation name",
    "parent_code": "the group the unit belongs to (e.g. its Cancer Alliance)",
    "period": "reporting period (a pooled label such as '2021/22 to 2023/24' covers those years together)",
    "observed": "events (numerator); the suppression symbol where small",
    "denominator": "patients (denominator), or person-time for a rate",
    "expected": "events expected for the unit's patients (case-mix adjusted indicators), at the audit standard where "
                "the indicator has one, or else at the national rate",
    "value": "the unit's value on the indicator's statistic: a proportion (0-1); observed/expected for risk-adjusted "
             "and O/E indicators; events per unit of person-time for a rate",
    "adjusted_value": "risk-adjusted rate (observed/expected x national rate), 0-1; blank if not risk-adjusted",
    "crude_value": "crude value (observed/denominator)",
    "target": "the value the funnel is centred on (the national value, or the audit standard), on the value's scale",
    "lower_alert": "lower alert limit (the indicator's inner limit, or its only one) for a unit of this size, on "
                   "the value's scale; its coverage in 'Alert limit coverage'",
    "upper_alert": "upper alert limit (the indicator's inner limit, or its only one) for a unit of this size, on "
                   "the value's scale; its coverage in 'Alert limit coverage'; blank where a one-sided test does not "
                   "test that side (as for every lower and upper limit)",
    "lower_alarm": "lower alarm limit (the indicator's outer limit) for a unit of this size, on the value's scale; "
                   "its coverage in 'Alarm limit coverage'; blank for an indicator with one limit",
    "upper_alarm": "upper alarm limit (the indicator's outer limit) for a unit of this size, on the value's scale; "
                   "its coverage in 'Alarm limit coverage'; blank for an indicator with one limit",
    "alert_coverage": "coverage of the row's alert limits (0-1: 0.95 is 95%), from the indicator's own limits",
    "alarm_coverage": "coverage of the row's alarm limits (0-1: 0.998 is 99.8%); blank for an indicator with one "
                      "limit",
    "z": "z-score against the target, after any overdispersion adjustment",
    "z_unadjusted": "z-score before overdispersion adjustment",
    "p_value": "p-value of the z-score (two- or one-sided: see 'test')",
    "q_value": "Benjamini-Hochberg false-discovery rate across the indicator's units",
    "status": "alert_low/alert_high (outside the alert limits, not the alarm ones), alarm_low/alarm_high (outside "
              "the alarm limits); an indicator with one limit flags alert_low/alert_high only",
    "status_label": "the status in words, with its direction (worse/better than expected)",
    "phi": "dispersion ratio of the indicator's funnel",
    "tau2": "between-unit variance added to the limits (0 when none was added)",
    "method": "how the limits were computed and whether overdispersion was allowed for",
    "overdispersion_applied": "TRUE when the limits were widened for overdispersion",
    "overdispersion_note": "why overdispersion was or was not allowed for",
    "overdispersion_p_value": "test of no overdispersion",
    "n_units_overdispersion": "units used to estimate overdispersion",
    "expected_false_alerts": "units expected outside the alert limits by chance alone",
    "expected_false_alarms": "units expected outside the alarm limits by chance alone (blank: one limit only)",
    "test": "two_sided, or one_sided against an external standard",
    "rate_scale": "national rate that turns observed/expected into a risk-adjusted rate",
    "statistic": "proportion, ratio (observed/expected), rate or ratio_of_counts",
    "better": "which direction is better: higher, lower or neither",
    "multiplier": "display multiplier (100: shown as %)",
    "expected_cases": "cases the unit was expected to report (case ascertainment)",
    "not_assessed_reason": "why a unit was not assessed (blank when assessed)",
    "casemix_robust_z": "how unusual the unit's case-mix is (robust z)",
    "casemix_relative_difference": "the unit's expected rate against the national rate (case-mix)",
    "suppressed": "TRUE where a small count (and every value that would reveal it) is withheld",
}


# The results sheet's column headings, in plain English: the on-screen outlier table's names
# (ui/outliers.py takes its own from here), with the scale said where the file keeps full precision on the
# 0-1 scale while the screen shows % (value, rates, limits). Unlisted columns: ``result_headers``.
RESULT_HEADERS = {
    "indicator_id": "Indicator id",
    "indicator_title": "Indicator",
    "tumour_site": "Tumour site",
    "level": "Level compared",
    "unit_code": "Trust code",
    "unit_name": "Trust",
    "parent_code": "Belongs to",
    "period": "Period",
    "observed": "Events",
    "denominator": "Patients",
    "expected": "Expected events",
    "value": "Value (proportion 0-1, or O/E)",
    "adjusted_value": "Risk-adjusted rate (0-1)",
    "crude_value": "Crude rate (0-1)",
    "target": "Funnel centre (national value or standard)",
    "lower_alert": "Lower alert limit",
    "upper_alert": "Upper alert limit",
    "lower_alarm": "Lower alarm limit",
    "upper_alarm": "Upper alarm limit",
    "alert_coverage": "Alert limit coverage (0-1)",
    "alarm_coverage": "Alarm limit coverage (0-1)",
    "z": "z",
    "z_unadjusted": "z before overdispersion adjustment",
    "p_value": "p-value",
    "q_value": "q-value (false discovery rate)",
    "status": "Status code",
    "status_label": "Result",
    "phi": "Dispersion ratio (phi)",
    "tau2": "Between-trust variance (tau2)",
    "method": "Method",
    "overdispersion_applied": "Limits widened for overdispersion",
    "overdispersion_note": "Overdispersion note",
    "overdispersion_p_value": "Overdispersion test p-value",
    "n_units_overdispersion": "Trusts in the overdispersion estimate",
    "expected_false_alerts": "Trusts expected outside the alert limits by chance",
    "expected_false_alarms": "Trusts expected outside the alarm limits by chance",
    "test": "Test",
    "rate_scale": "National rate for risk adjustment",
    "statistic": "Statistic",
    "better": "Better direction",
    "multiplier": "Display multiplier",
    "expected_cases": "Expected cases (ascertainment)",
    "not_assessed_reason": "Why not assessed",
    "casemix_robust_z": "Case-mix unusualness (robust z)",
    "casemix_relative_difference": "Case-mix expected rate against national",
    "suppressed": "Suppressed (small numbers)",
}


def result_headers(columns: Sequence[str]) -> dict[str, str]:
    """Each results column's heading in plain English: ``RESULT_HEADERS``, a grouping column by its level's
    name ("Cancer Alliance", "Region"), ``complete_X`` as "X recorded (share 0-1)"; distinct for every column
    (a heading that would repeat another keeps its column's name in brackets)."""
    out: dict[str, str] = {}
    for c in columns:
        if c in RESULT_HEADERS:
            name = RESULT_HEADERS[c]
        elif c.startswith("complete_"):
            name = f"{c.removeprefix('complete_').replace('_', ' ').capitalize()} recorded (share 0-1)"
        else:
            name = views.level_label(c)
        out[c] = name if name not in out.values() else f"{name} ({c})"
    return out


def column_rows(columns: Sequence[str]) -> list[tuple[str, str, object]]:
    """One read-me row per results column, by its heading in the files: what it holds (and its name in the
    results contract, for anyone joining the file to other outputs)."""
    def note(c: str) -> str:
        if c in COLUMN_NOTES:
            return COLUMN_NOTES[c]
        if c.startswith("complete_"):
            return f"share of the unit's patients with {c.removeprefix('complete_').replace('_', ' ')} recorded (0-1)"
        return "see the README, 'Methods'"
    headers = result_headers(columns)
    return [("Columns of 'results'", headers[c], f"{note(c)} (results contract column: {c})")
            for c in columns]


def outlier_readme(run: AuditRun, loaded: LoadedCatalogue, *, filters: OutlierFilters, rule: SuppressionSpec,
                   withheld: int, rows: int, indicators: Sequence[str], group: str | None, synthetic: bool,
                   columns: Sequence[str] = (),
                   data: Mapping[str, str | Path] | None = None, built_at: datetime) -> export.Readme:
    """The read-me sheet of the outlier list's workbook."""
    about: list[tuple[str, str, object]] = [
        ("About", "Contents", "Flagged results: trusts whose result lies outside their funnel limits ("
         + limits_contents(run, indicators) + "), for quality-improvement follow-up. Sheet "
         "'results' holds one row per flagged result; this sheet says how they were produced."),
        ("About", "Rows in 'results'", rows),
    ]
    if synthetic:
        about.insert(0, ("About", "Synthetic data", SYNTHETIC_STATEMENT))
    no_polarity = any(run.results[i].spec.better == "neither" for i in indicators if i in run.results)
    headlines = {run.results[i].pooled_period for i in indicators if i in run.results}
    about += filters.as_rows(views.level_label(group) if group else "Group", no_polarity=no_polarity,
                             headline=headlines.pop() if len(headlines) == 1 else None)
    about.append(("Suppression", "Rule", suppression_sentence(rule)))
    about.append(("Suppression", "Flagged results not listed (the flag alone would reveal a small count)", withheld))
    about += provenance_rows(run, loaded, data=data, built_at=built_at)
    about += column_rows(columns)
    return export.Readme(rows=tuple(about), methods=methods_by_indicator(run, indicators, period=filters.period))


# ------------------------------------------------------------------ charts for a meeting

WATERMARK = "SYNTHETIC DATA"
WATERMARK_SIZE = 30  # px: 14 capitals at about 0.65 em, turned 24 degrees, span about 250 px
FOOTNOTE_WIDTH = 90  # characters per footnote line (wrapped), so that narrow charts cut off little
LINE_HEIGHT = 14  # px per footnote line
LEGEND_SPACE = 84  # px for a legend drawn below the plot: up to three rows on a narrow screen
AXIS_SPACE = 50  # px from the plot's bottom edge to the footnote: the x axis's numbers and title


def _plot_text(text: str) -> str:
    """Data-derived text for a plotly annotation: plotly renders a subset of HTML, so escape it."""
    return html.escape(text, quote=False)


def run_uses_bundled_sample(run: AuditRun) -> bool:
    """True when any dataset of ``run`` was read from the bundled synthetic sample folder."""
    return any(is_bundled_sample(Path(a.file)) for a in run.datasets.values())


def chart_footnote(run: AuditRun, indicator: str, *, level: str = UNIT_LEVEL, period: str | None = None) -> str:
    """Source, period, method and national value (or standard) for a chart of one indicator's funnel.

    One line each, plain text (escape before drawing): e.g. ``Source: National Bowel Cancer Audit
    (patients.parquet); 2021/22 to 2023/24`` / ``Method: exact binomial limits (interpolated, mid-P),
    95% and 99.8%; limits widened for overdispersion (tau2 = 0.00047)`` / ``National value 2.5%``.
    """
    result = run.results[indicator]
    spec = result.spec
    period = period or result.pooled_period
    rows = result.table.filter(pl.col("level") == level, pl.col("period") == period)
    files = sorted({Path(a.file).name for name, a in run.datasets.items() if name == spec.dataset})
    source = f"Source: {spec.audit or 'audit data'}" + (f" ({', '.join(files)})" if files else "") + f"; {period}"
    method = str(rows["method"][0]).split(";")[0] if rows.height else "limits not computed"
    coverage = " and ".join(f"{c * 100:g}%" for c in result.options.limits)
    od = result.overdispersion.get((level, period))
    adjusted = (f"limits widened for overdispersion (tau2 = {od.tau2:.3g})" if od and od.applied
                else "no overdispersion adjustment" + (f" ({od.reason})" if od and od.reason else ""))
    national = result.table.filter(pl.col("level") == "national", pl.col("period") == period)
    rate = national["crude_value"][0] if "crude_value" in national.columns and national.height else None
    rate = rate if rate is not None and math.isfinite(rate) else result.national_rate
    standard = spec.target_for(period)
    compared = (f"Audit standard {narrative.format_value(standard, spec.multiplier)}; national value "
                if standard is not None else "National value ")
    return "\n".join([source, f"Method: {method}, {coverage} limits; {adjusted}",
                      compared + narrative.format_value(rate, spec.multiplier)])


def chart_file_name(kind: str, *parts: str | None, on: datetime | None = None) -> str:
    """A chart image's file name without extension (the chart's download adds .png or .svg): what it
    shows and the date, e.g. ``funnel_bowel-mort90_trust_2021-22-to-2023-24_2026-12-02``."""
    return export.download_name(kind, *parts, on=on or datetime.now(UTC), suffix="x").removesuffix(".x")


def _legend_below(layout: dict) -> bool:
    """A legend drawn under the plot (a negative paper y), which the footnote must not cover."""
    y = (layout.get("legend") or {}).get("y")
    return layout.get("showlegend") is not False and y is not None and y < 0


def annotate_figure(fig: Any, footnote: str | None, *, synthetic: bool) -> dict:
    """A plotly figure as a dict, with its footnote under the plot and, on synthetic data, a watermark.

    Both are part of the figure, so the chart's own image download (the camera icon: PNG or SVG,
    drawn by the browser) carries them. Works on a copy (``to_dict``; cached figures are shared
    between sessions), as a dict: validating a new Figure would cost more than drawing it. Given a dict (a
    figure's ``to_dict``), only its layout is copied: the traces are shared with it, unchanged.

    The figure does not know how wide it will be drawn, so the footnote and the legend under it are
    laid out for a phone (a chart about 360 px wide) and fixed in pixels: at 390 px the legend used to
    wrap onto seven rows and grow up over the footnote and the axis. On a wide screen the space the
    legend does not need is left blank at the figure's foot.
    """
    def legend_height(spec: dict, *, width: float = 360) -> int:
        """Pixels a horizontal legend takes when wrapped as plotly wraps it in a chart ``width`` px wide
        (items of about 40 px plus 7 px a character, 12 px text, up to 30 px a row: a large marker makes a row taller)."""
        margin = spec["layout"].get("margin") or {}
        room = max(width - (margin.get("l") or 80) - (margin.get("r") or 80), 200)
        names = [str(t.get("name")) for t in spec.get("data", [])
                 if t.get("name") and t.get("showlegend", True) is not False]
        rows, used = 1 if names else 0, 0.0
        for name in names:
            item = 40 + 7 * len(name)
            if used and used + item > room:
                rows, used = rows + 1, 0.0
            used += item
        return 30 * rows + 6

    # a dict (a cached figure's spec) is shared: only its layout is changed, so only the layout is copied
    out = fig.to_dict() if hasattr(fig, "to_dict") else {**fig, "layout": copy.deepcopy(fig.get("layout") or {})}
    layout = out.setdefault("layout", {})
    notes = list(layout.get("annotations") or [])
    if footnote:
        # the footnote, under the x axis's numbers and title (tied to the plot); under it the legend,
        # tied to the figure's bottom edge with room for the rows it takes on a phone
        lines = [part for line in footnote.split("\n") for part in textwrap.wrap(line, min(FOOTNOTE_WIDTH, 64))]
        axis = AXIS_SPACE + 14  # the tick numbers and the axis title (a log axis's title is two lines' worth)
        text_px = LINE_HEIGHT * len(lines) + 8
        legend_px = legend_height(out) if _legend_below(layout) else 0
        margin = dict(layout.get("margin") or {})
        before = margin.get("b") if margin.get("b") is not None else 40
        margin["b"] = axis + text_px + legend_px + 6
        layout["margin"] = margin
        layout["height"] = (layout.get("height") or 450) + margin["b"] - before
        if legend_px:
            layout["legend"] = {**layout["legend"], "yref": "container", "yanchor": "top",
                                "y": (legend_px + 6) / layout["height"]}
        # from the figure's left edge, not the plot's: a caterpillar's plot starts after ~300 px of names
        left = margin.get("l") if margin.get("l") is not None else 80
        notes.append({"text": "<br>".join(_plot_text(line) for line in lines), "xref": "paper", "yref": "paper",
                      "x": 0, "y": 0, "xanchor": "left", "yanchor": "top", "yshift": -axis,
                      "xshift": -max(left - 10, 0), "showarrow": False, "align": "left",
                      "font": {"size": 10, "color": "#425563"}, "name": "footnote"})
    if synthetic:
        notes.append({"text": WATERMARK, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False,
                      # sized for a phone's chart (a plot about 260 px wide): at 54 px it ran past a 390 px screen
                      # ("YNTHETIC DAT") and 40 px past the half-width charts at 1280 (figs1's sweep)
                      "textangle": -24, "font": {"size": WATERMARK_SIZE, "color": "rgba(66, 85, 99, 0.16)"},
                      "name": "watermark"})
    layout["annotations"] = notes
    return out
