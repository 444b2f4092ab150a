"""Exports for QI leads: CSV and Excel with small-number suppression and a methods sheet.

Every CSV and XLSX the tool writes (the dashboard's downloads and ``audit-metrics run``) goes through
``to_csv_bytes`` / ``write_workbook`` here, so that

- CSV text cells that a spreadsheet would run as a formula (starting ``= + - @`` TAB or CR) are
  neutralised by a leading single quote (OWASP, "CSV Injection"), whatever the data say;
- Excel files are written cell by cell, text as string cells, with xlsxwriter's string-to-formula and
  string-to-URL conversion switched off, so a trust name can never become a live formula or hyperlink.
  A string cell is never evaluated, so its text is written as it is: no quote is added, which Excel would
  show ("'=HYPERLINK(...)", "'-2+3": new-user review defect 12);
- missing and non-finite numbers (null, NaN, ±inf) are empty cells, never ``NaN`` or ``#NUM!``.
"""

from __future__ import annotations

import io
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from audit_metrics.catalogue import SuppressionSpec
from audit_metrics.pipeline import CONTRACT_COLUMNS

__all__ = [
    "FORMULA_TRIGGERS",
    "README_SHEET",
    "Readme",
    "download_name",
    "methods_frame",
    "neutralise_formulas",
    "neutralise_text",
    "results_order",
    "slug",
    "suppress",
    "suppress_complements",
    "to_csv_bytes",
    "to_excel_bytes",
    "write_workbook",
]

COUNT_COLUMNS = ("observed", "denominator")
# OWASP CSV-injection rule: a cell starting with one of these is run as a formula by Excel,
# LibreOffice or Google Sheets (TAB and CR because some parsers strip them before the check).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_PATTERN = "^[" + re.escape("".join(FORMULA_TRIGGERS)) + "]"
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                    "nan_inf_to_errors": False}


# On a suppressed row, every value that with the row's other numbers gives the count back: the
# value is O/n, z and p are functions of O at the unit's n, O - E gives O, and so on.
DERIVED_COLUMNS = ("expected", "value", "adjusted_value", "crude_value", "z", "z_unadjusted", "p_value",
                   "q_value", "fdr_flag", "excess_events")
DERIVED_PREFIXES = ("lower_", "upper_", "complete_")


def derived_columns(frame: pl.DataFrame) -> list[str]:
    """Columns of ``frame`` blanked on a suppressed row (values and the unit's own limits)."""
    return [c for c in frame.columns if c in DERIVED_COLUMNS or c.startswith(DERIVED_PREFIXES)]


WITHHELD_LABEL = "not shown (small numbers)"


def _status_of(value: pl.Expr) -> pl.Expr:
    """The status a value would have against the row's own limits (status and limits agree)."""
    return (pl.when(value < pl.col("lower_alarm")).then(pl.lit("alarm_low"))
            .when(value < pl.col("lower_alert")).then(pl.lit("alert_low"))
            .when(value > pl.col("upper_alarm")).then(pl.lit("alarm_high"))
            .when(value > pl.col("upper_alert")).then(pl.lit("alert_high"))
            .otherwise(pl.lit("within")))


def _withheld_counts(statuses: dict[int, str]) -> set[int]:
    """The candidate counts whose status must be withheld so that no shown status, and not the
    withholding itself, narrows the count to one value.

    A status given by only one candidate would pin the count, so that candidate is withheld; if
    only one candidate is withheld, "withheld" would pin it, so a partner is withheld with it (one
    whose status stays shared by two others, preferably an unflagged one). Repeated until neither
    happens.
    """
    withheld: set[int] = set()
    while True:
        groups: dict[str, list[int]] = {}
        for c, s in statuses.items():
            if c not in withheld:
                groups.setdefault(s, []).append(c)
        lonely = {g[0] for g in groups.values() if len(g) == 1}
        if lonely:
            withheld |= lonely
            continue
        if len(withheld) == 1:
            (only,) = withheld
            # a partner that costs least: one whose own status keeps two others, preferably an
            # unflagged ("within") count, then the nearest
            size = {c: len(groups[statuses[c]]) for c in statuses if c not in withheld}
            others = sorted(size, key=lambda c: (size[c] < 3, statuses[c] != "within", abs(c - only), c))
            if others:
                withheld.add(others[0])
                continue
        return withheld


def _small_count(count: pl.Expr, rule: SuppressionSpec) -> pl.Expr:
    """A count in [min_count, max_count]; a half count (a patient shared between two trusts) just below
    min_count, such as 0.5, is a patient too, so the range is (min_count - 1, max_count]: the same whole
    numbers."""
    return (count > rule.min_count - 1) & (count <= rule.max_count)


def status_reveals_count(frame: pl.DataFrame, rule: SuppressionSpec) -> pl.Series:
    """True where a row's observed count is suppressed and its status must be withheld too.

    The suppressed count is known to lie in [min_count, max_count]. Each candidate count c is placed
    against the row's own limits (value c/x, with the exposure x = observed/value; status and limits
    always agree); the status is withheld when the row's true count is one that ``_withheld_counts``
    withholds, so every status that is shown is shared by at least two candidate counts.
    """
    needed = {"observed", "value", "status", "lower_alert", "upper_alert", "lower_alarm", "upper_alarm"}
    if not needed <= set(frame.columns) or frame.height == 0:
        return pl.Series("_pins", [False] * frame.height, dtype=pl.Boolean)
    observed, value = pl.col("observed"), pl.col("value")
    status = pl.col("status").cast(pl.String)
    candidates = list(range(rule.min_count, rule.max_count + 1))
    checkable = (_small_count(observed, rule) & value.is_finite() & (value > 0)
                 & status.is_in(["alarm_low", "alert_low", "within", "alert_high", "alarm_high"])
                 & pl.all_horizontal(pl.col(c).is_finite() for c in ("lower_alert", "upper_alert", "lower_alarm",
                                                                       "upper_alarm"))).fill_null(False)
    rows = frame.select(checkable.alias("ok"), observed.alias("o"),
                        *[_status_of(value * c / observed).alias(f"s{c}") for c in candidates])
    pins = []
    for r in rows.iter_rows(named=True):
        pins.append(bool(r["ok"]) and round(r["o"]) in _withheld_counts({c: r[f"s{c}"] for c in candidates}))
    return pl.Series("_pins", pins, dtype=pl.Boolean)


def _count_text(count: pl.Expr) -> pl.Expr:
    """A count as text at full precision: whole numbers without a decimal point ("12"), others as they
    are ("12.5": a published half count, or person-time as a rate's denominator), never rounded."""
    whole = count == count.round(0)
    return (pl.when(whole & (count.abs() < 1e15)).then(count.round(0).cast(pl.Int64).cast(pl.String))
            .otherwise(count.cast(pl.String)))


def suppress(frame: pl.DataFrame, rule: SuppressionSpec) -> pl.DataFrame:
    """Disclosure control: counts in [min_count, max_count] become the symbol (text columns).

    On such a row every value that could give the count back is blanked too: the value, adjusted
    and crude values, expected, z, p and q, and the unit's own limits (which pin its n). Where the
    status alone would still pin the count (only one count in the suppressed range gives that
    status), the status is withheld as well (``status`` blank, ``status_label`` says why). A
    ``suppressed`` column says which rows were treated so.
    """
    present = [c for c in COUNT_COLUMNS if c in frame.columns]
    if not present:
        return frame.with_columns(pl.lit(False).alias("suppressed"))
    small = pl.any_horizontal([_small_count(pl.col(c), rule) for c in present])
    out = frame.with_columns(small.fill_null(False).alias("_small"),
                             status_reveals_count(frame, rule))
    withheld = [pl.when(pl.col("_pins")).then(None).otherwise(pl.col(c)).alias(c)
                for c in ("status", "direction") if c in frame.columns]
    if "status_label" in frame.columns:
        withheld.append(pl.when(pl.col("_pins")).then(pl.lit(WITHHELD_LABEL)).otherwise(pl.col("status_label"))
                        .alias("status_label"))
    out = out.with_columns(
        *[pl.when(_small_count(pl.col(c), rule)).then(pl.lit(rule.symbol))
          .otherwise(_count_text(pl.col(c))).alias(c) for c in present],
        *[pl.when(pl.col("_small")).then(None).otherwise(pl.col(c)).alias(c) for c in derived_columns(frame)],
        *withheld,
    )
    return out.rename({"_small": "suppressed"}).drop("_pins")


def suppress_complements(frame: pl.DataFrame, rule: SuppressionSpec, *, by: list[str],
                         column: str = "observed") -> pl.DataFrame:
    """Secondary suppression, after ``suppress``: where a group (e.g. one indicator's trusts in one
    Cancer Alliance) holds exactly one suppressed count, the group's total, shown elsewhere, minus
    the other counts would give it back. The smallest other count in the group is then suppressed
    too, with its derived values."""
    if column not in frame.columns or frame.height == 0:
        return frame
    hidden = pl.col(column) == rule.symbol
    number = pl.when(hidden).then(None).otherwise(pl.col(column)).cast(pl.Float64, strict=False)
    marked = frame.with_row_index("_i").with_columns(
        hidden.sum().over(by).alias("_hidden"), number.alias("_n"))
    smallest = (marked.filter(pl.col("_hidden") == 1, pl.col("_n").is_not_null())
                .sort("_n", "_i").group_by(by, maintain_order=True).first()["_i"])
    extra = pl.col("_i").is_in(smallest.implode())
    return marked.with_columns(
        pl.when(extra).then(pl.lit(rule.symbol)).otherwise(pl.col(column)).alias(column),
        *[pl.when(extra).then(None).otherwise(pl.col(c)).alias(c) for c in derived_columns(frame)],
        *([(pl.col("suppressed") | extra).alias("suppressed")] if "suppressed" in frame.columns else []),
    ).drop("_i", "_hidden", "_n")


def neutralise_text(text: str) -> str:
    """``'=1+1`` for ``=1+1``: a leading quote makes a spreadsheet show the text, not run it."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell (and column name) that a spreadsheet would run as a formula, quoted.

    Only text columns are touched: numbers (e.g. a negative z) are written as numbers, which no
    spreadsheet runs. Enum/categorical columns are turned into text first.
    """
    out = frame.with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.String))
    text = [c for c, t in out.schema.items() if t == pl.String]
    out = out.with_columns(
        pl.when(pl.col(c).str.contains(_TRIGGER_PATTERN)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text)
    return out.rename({c: neutralise_text(c) for c in out.columns if neutralise_text(c) != c})


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Text statuses, and blanks (not NaN/inf) for numbers that do not exist."""
    floats = [c for c, t in frame.schema.items() if t in (pl.Float64, pl.Float32)]
    return frame.with_columns(
        pl.col(pl.Enum, pl.Categorical).cast(pl.String),
        *[pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats])


def _safe(frame: pl.DataFrame) -> pl.DataFrame:
    return neutralise_formulas(_plain(frame))


def _headed(frame: pl.DataFrame, headers: Mapping[str, str] | None) -> pl.DataFrame:
    """The columns under their headings for people (``headers``: column name -> heading; others as named)."""
    if not headers:
        return frame
    named = {c: headers[c] for c in frame.columns if c in headers}
    if len(set(named.values()) | (set(frame.columns) - set(named))) != frame.width:
        msg = f"two columns would share a heading: {sorted(named.values())}"
        raise ValueError(msg)
    return frame.rename(named)


def to_csv_bytes(frame: pl.DataFrame, *, headers: Mapping[str, str] | None = None) -> bytes:
    """UTF-8 CSV: formulas neutralised, missing numbers as empty fields; ``headers`` renames the columns in
    the file (the plain-English headings of a shared list)."""
    return _headed(_safe(frame), headers).write_csv().encode("utf-8")


def methods_frame(provenance: Mapping[str, Any]) -> pl.DataFrame:
    rows = []
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append({"item": key, "value": text})
    return pl.DataFrame(rows, schema={"item": pl.String, "value": pl.String})


README_SHEET = "read me"
ReadmeValue = str | int | float | bool | None


@dataclass(frozen=True)
class Readme:
    """A workbook's read-me sheet: (section, item, value) rows, then each indicator's methods (one row
    of ``methods`` each, written as a section of rows).

    Values keep their type: counts are written as numbers, flags as TRUE/FALSE, text as text.
    """

    rows: tuple[tuple[str, str, ReadmeValue], ...]
    methods: pl.DataFrame | None = None

    def all_rows(self) -> list[tuple[str, str, ReadmeValue]]:
        """The rows, then one section per methods row ("Methods: <indicator>", column, value)."""
        rows = list(self.rows)
        if self.methods is not None:
            for r in _plain(self.methods).iter_rows(named=True):
                name = r.get("indicator_id") or ""
                rows += [(f"Methods: {name}", k, v) for k, v in r.items() if k != "indicator_id"]
        return rows

    @classmethod
    def from_mapping(cls, provenance: Mapping[str, Any]) -> Readme:
        """Key/value provenance (numbers stay numbers; lists and mappings as JSON text)."""
        def cell(v: Any) -> ReadmeValue:
            return v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v, default=str)
        return cls(rows=tuple(("Provenance", str(k), cell(v)) for k, v in provenance.items()))


def slug(text: str, *, max_length: int = 40) -> str:
    """A file-name part: ASCII letters, digits and hyphens only (no path, formula or markup characters).

    Accents are dropped rather than the letter ("Hôpital" -> "Hopital").
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    part = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:max_length].strip("-")
    return part or "unnamed"


def download_name(kind: str, *parts: str | None, on: date | datetime | None, suffix: str,
                  max_length: int = 40) -> str:
    """``kind_part_part_YYYY-MM-DD.suffix``: a file name that says what the file holds and when it was made.

    Parts that are None or empty are left out; each part is reduced to a ``slug`` of at most ``max_length``
    characters (at most 60: a name stays well inside a file system's 255).
    """
    max_length = min(max_length, 60)
    pieces = [slug(kind), *(slug(p, max_length=max_length) for p in parts if p)]
    if on is not None:
        pieces.append(on.strftime("%Y-%m-%d"))
    return "_".join(pieces) + "." + slug(suffix.lstrip("."), max_length=8).lower()


_COUNT_TEXT = re.compile(r"^[0-9]{1,15}(\.[0-9]+)?$")


def _write_sheet(wb: xlsxwriter.Workbook, name: str, frame: pl.DataFrame,
                 headers: Mapping[str, str] | None = None) -> None:
    """One sheet, cell by cell: numbers as numbers, text as string cells as it is (never a formula or link:
    see the module docstring), and missing values as empty cells. Suppressed count columns keep their
    unsuppressed counts as numbers. ``headers``: the heading written for a column (default its name)."""
    ws = wb.add_worksheet(name[:31])
    bold = wb.add_format({"bold": True})
    safe = _plain(frame)
    titles = _headed(safe.head(0), headers).columns
    for j, column in enumerate(safe.columns):
        ws.write_string(0, j, titles[j], bold)
        series = safe[column]
        dtype = series.dtype
        counts = column in COUNT_COLUMNS and dtype == pl.String
        for i, v in enumerate(series.to_list(), start=1):
            if v is None:
                continue
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, int | float):
                if math.isfinite(v):
                    ws.write_number(i, j, v)
            elif counts and _COUNT_TEXT.match(v):
                ws.write_number(i, j, float(v) if "." in v else int(v))
            else:
                ws.write_string(i, j, str(v))
    ws.freeze_panes(1, 0)
    ws.autofit()


def _write_readme(wb: xlsxwriter.Workbook, readme: Readme) -> None:
    """The read-me sheet: typed (section, item, value) rows; each indicator's methods as a section."""
    ws = wb.add_worksheet(README_SHEET)
    bold = wb.add_format({"bold": True})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    for j, title in enumerate(("section", "item", "value")):
        ws.write_string(0, j, title, bold)
    for i, (section, item, value) in enumerate(readme.all_rows(), start=1):
        ws.write_string(i, 0, section)
        ws.write_string(i, 1, item)
        if isinstance(value, str):
            ws.write_string(i, 2, value, wrap)
        else:
            _write_cell(ws, i, 2, value)
    ws.set_column(0, 0, 36)
    ws.set_column(1, 1, 44)
    ws.set_column(2, 2, 100)
    ws.freeze_panes(1, 0)


def _write_cell(ws: Any, i: int, j: int, v: object) -> None:
    if v is None:
        return
    if isinstance(v, bool):
        ws.write_boolean(i, j, v)
    elif isinstance(v, int | float):
        if math.isfinite(v):
            ws.write_number(i, j, v)
    else:
        ws.write_string(i, j, str(v))


def write_workbook(target: str | Path | io.BytesIO, sheets: Mapping[str, pl.DataFrame], *,
                   readme: Readme | None = None, created: datetime | None = None,
                   headers: Mapping[str, str] | None = None) -> None:
    """An .xlsx with one sheet per frame (after a read-me sheet, if given), written safely (see the module
    docstring). ``created`` is the workbook's recorded creation time (default: now); ``headers`` the
    column headings (column name -> heading; default the names)."""
    with xlsxwriter.Workbook(target, WORKBOOK_OPTIONS) as wb:
        if created is not None:
            wb.set_properties({"created": created.replace(tzinfo=None)})
        if readme is not None:
            _write_readme(wb, readme)
        for name, frame in sheets.items():
            _write_sheet(wb, name, frame, headers)


def results_order(frame: pl.DataFrame) -> pl.DataFrame:
    """A results sheet's columns: the contract columns first, then the rest as they come."""
    return frame.select([c for c in CONTRACT_COLUMNS if c in frame.columns]
                        + [c for c in frame.columns if c not in CONTRACT_COLUMNS])


def to_excel_bytes(frame: pl.DataFrame, readme: Readme | Mapping[str, Any], *,
                   created: datetime | None = None, headers: Mapping[str, str] | None = None) -> bytes:
    """Workbook with a read-me sheet (methods, provenance, suppression rule) and a 'results' sheet
    (contract columns first; ``headers`` its column headings)."""
    ordered = results_order(frame)
    if not isinstance(readme, Readme):
        readme = Readme.from_mapping(readme)
    buf = io.BytesIO()
    write_workbook(buf, {"results": ordered}, readme=readme, created=created, headers=headers)
    return buf.getvalue()
