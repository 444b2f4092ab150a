"""The indicator catalogue (``indicators.yaml``): schema, safe loading and validation.

Loading happens in three layers, each collecting every problem before reporting:

1. YAML is composed with PyYAML's safe loader (Python tags are rejected) into a node tree that
   remembers the line of every key, and duplicate keys are reported.
2. The data is validated against frozen pydantic models with ``extra="forbid"``; each pydantic
   error is mapped back to its line, with "did you mean ...?" hints for misspelt keys.
3. Semantic checks: unique ids, known datasets, expressions parsed and checked against the
   datasets' actual columns and types, compatible options.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit_metrics.exceptions import (
    CatalogueConflict,
    CatalogueError,
    CatalogueSaveError,
    ExtractError,
    Problem,
)
from audit_metrics.expressions import ExpressionProblem, compile_expression

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BreakdownSpec",
    "Catalogue",
    "CovariateSpec",
    "DatasetSpec",
    "Defaults",
    "IndicatorSpec",
    "LoadedCatalogue",
    "RiskAdjustmentSpec",
    "UnitsSpec",
    "YamlLimits",
    "catalogue_json_schema",
    "catalogue_version",
    "check_catalogue",
    "is_aggregate",
    "load_catalogue",
    "parse_catalogue",
    "save_catalogue_text",
    "validate_catalogue",
]

Statistic = Literal["proportion", "ratio", "rate", "ratio_of_counts"]
Better = Literal["lower", "higher", "neither"]
OverdispersionMethod = Literal["none", "multiplicative", "additive"]
Estimator = Literal["robust_ml", "dersimonian_laird"]
RobustMethod = Literal["winsorise", "truncate"]
LimitMethod = Literal["exact", "exact_ci", "normal", "transformed"]
ColumnType = Literal["string", "integer", "float", "boolean", "date"]
MissingMode = Literal["category", "complete_case", "impute"]

_ID = r"^[a-z][a-z0-9_]*$"
PERIOD_LABEL_MAX = 60  # a dataset's one period ('October 2023'): shown in chart titles, sentences and file names


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Model):
    """A named extract. A plain string in YAML is shorthand for ``{path: ...}``."""

    path: str = Field(description="File path, relative to the catalogue file. CSV, Parquet or .xlsx.")
    format: Literal["csv", "parquet", "xlsx"] | None = Field(
        None, description="File format; taken from the file extension when omitted.")
    sheet: str | Annotated[int, Field(ge=1)] | None = Field(
        None, description="Excel sheet: its name, or its number counted from 1 (first sheet when omitted).")
    header_row: int | None = Field(
        None, ge=1, description="Row (line) that names the columns, counted from 1 as a spreadsheet numbers rows; "
        "titles above it are skipped. Published workbooks often have it on row 9 or so.")
    skip_rows: int | None = Field(
        None, ge=0, description="Rows to skip before the column names (the same as header_row: skip_rows + 1).")
    encoding: Literal["utf-8", "cp1252", "latin-1"] | None = Field(
        None, description="Text encoding of a CSV file: utf-8 (default), or cp1252 for files saved by Excel on "
        "Windows (a £ or © that is not UTF-8).")
    unit_column: str | None = Field(
        None, description="Column holding the unit code; defaults to units.code.")
    period_column: str | None = Field(
        None, description="Column holding the reporting period label (e.g. financial year).")
    date_column: str | None = Field(
        None, description="Column with each row's date (e.g. treatment or diagnosis date), for trend charts: "
        "monthly SPC charts, and patients in date order for risk-adjusted CUSUM and VLAD.")
    period: str | None = Field(
        None, description="The one period this table covers, for a table with no period column (a single "
        "month's or year's publication), e.g. 'October 2023'; every result is labelled with it (default: 'all'). "
        f"At most {PERIOD_LABEL_MAX} characters, on one line. Not together with period_column.")
    periods: list[str] | None = Field(
        None, description="Periods in scope; rows from other periods are excluded and counted.")
    key: list[str] | None = Field(
        None, description="Columns that identify a row (e.g. [patient_id]); repeats are excluded.")
    columns: dict[str, ColumnType] = Field(
        default_factory=dict, description="Explicit column types (strongly advised for CSV).")
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Allowed [min, max] per numeric column; rows outside are excluded.")
    aggregate: bool | None = Field(
        None, description="One row per unit (and period) with count columns. When omitted, an indicator "
        "that names a denominator reads the dataset as aggregate.")
    fractional_counts: Literal["exclude", "allow"] = Field(
        "exclude", description="Count columns (aggregate numerators and denominators) hold whole numbers: a row "
        "with a count such as 6.5 is excluded and reported ('exclude', the default). 'allow' accepts counts that "
        "are not whole, for published tables that share a patient between providers (NHS England's Cancer "
        "Waiting Times credit each of two trusts with half a patient); exact limits then use the continuous "
        "extension of the binomial/Poisson distribution (README 'Half counts').")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("period")
    @classmethod
    def _check_period(cls, value: str | None) -> str | None:
        if value is None:
            return value
        label = value.strip()
        if not label or len(label) > PERIOD_LABEL_MAX or not label.isprintable():
            msg = (f"period must be a short label on one line (1 to {PERIOD_LABEL_MAX} printable characters), "
                   "e.g. period: \"October 2023\"")
            raise ValueError(msg)
        return label

    @model_validator(mode="after")
    def _one_period_source(self) -> DatasetSpec:
        if self.period is not None and self.period_column is not None:
            msg = (f"period ({self.period!r}) and period_column ({self.period_column!r}) both given: period "
                   "labels a table that covers one period; a table with a column of periods takes them from "
                   "period_column. Remove one of them")
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _one_header(self) -> DatasetSpec:
        if self.header_row is not None and self.skip_rows is not None and self.header_row != self.skip_rows + 1:
            msg = (f"header_row {self.header_row} and skip_rows {self.skip_rows} disagree (header_row is "
                   "skip_rows + 1); give one of them")
            raise ValueError(msg)
        return self


class UnitsSpec(_Model):
    """The reference table of organisations results are reported for.

    Either a file of its own (``file``) or the distinct units of a dataset (``from: DATASET``), for a
    published table that carries each provider's code and name on every row.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    file: str | None = Field(None, description="CSV of units, relative to the catalogue file.")
    from_dataset: str | None = Field(
        None, alias="from", description="Instead of a file: take the units from this dataset's code and name "
        "columns (one unit per distinct code).")
    code: str = Field(description="Column with the unit code (ODS-style).")
    name: str = Field(description="Column with the unit name.")
    groups: list[str] = Field(
        default_factory=list, description="Columns of higher levels results are rolled up to.")
    mergers: str | None = Field(
        None, description="CSV with old_code,new_code: predecessor codes mapped to successors.")
    expected_cases: str | None = Field(
        None, description="Column with the externally expected number of cases (case ascertainment).")

    @model_validator(mode="after")
    def _one_source(self) -> UnitsSpec:
        if (self.file is None) == (self.from_dataset is None):
            msg = ("give the units either as a file (file: trusts.csv) or from a dataset (from: DATASET), "
                   "not both and not neither")
            raise ValueError(msg)
        return self

    @property
    def source(self) -> str:
        """How the units are named to users: the file, or 'dataset NAME'."""
        return self.file if self.file is not None else f"dataset {self.from_dataset!r}"


class SuppressionSpec(_Model):
    """Small-number disclosure control applied to exports."""

    min_count: int = Field(1, ge=0, description="Smallest count that is suppressed.")
    max_count: int = Field(7, ge=0, description="Largest count that is suppressed.")
    symbol: str = Field("*", description="What a suppressed count shows as.")

    @model_validator(mode="after")
    def _check_range(self) -> SuppressionSpec:
        if self.min_count > self.max_count:  # an empty range would silently suppress nothing
            msg = (f"min_count ({self.min_count}) is greater than max_count ({self.max_count}), so nothing "
                   "would be suppressed; e.g. min_count: 1, max_count: 7")
            raise ValueError(msg)
        return self


class _MethodOptions(_Model):
    limits: list[float] | None = Field(
        None, description="Two-sided coverage levels, ascending: alert then alarm.")
    overdispersion: OverdispersionMethod | None = None
    estimator: Estimator | None = Field(
        None, description="How the between-unit variance is estimated: robust_ml (calibrated default) or "
                          "dersimonian_laird (FunnelPlotR/SHMI parity, with robust and trim).")
    robust: RobustMethod | None = Field(
        None, description="Outlier-robust step before estimating overdispersion.")
    trim: float | None = Field(
        None, gt=0, lt=0.5, description="Fraction winsorised/truncated at each end.")
    min_denominator: float | None = Field(None, ge=0)
    min_units: int | None = Field(
        None, ge=2, description="Fewest assessable units needed to estimate overdispersion.")
    limit_method: LimitMethod | None = None
    fdr: bool | None = Field(None, description="Also report Benjamini-Hochberg false-discovery-rate flags.")

    @field_validator("limits")
    @classmethod
    def _check_limits(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if not value:
            msg = "list at least one coverage level, e.g. [0.95, 0.998]"
            raise ValueError(msg)
        for v in value:
            if not 0 < v < 1:
                msg = f"coverage {v} is not between 0 and 1 (write 0.95, not 95)"
                raise ValueError(msg)
        if list(value) != sorted(set(value)):
            msg = "coverage levels must be distinct and ascending, e.g. [0.95, 0.998]"
            raise ValueError(msg)
        return value


class Defaults(_MethodOptions):
    """Method settings inherited by every indicator."""

    suppression: SuppressionSpec = Field(default_factory=SuppressionSpec)


class CovariateSpec(_Model):
    """A case-mix covariate. A plain string in YAML is shorthand for ``{name: ...}``."""

    name: str
    type: Literal["continuous", "categorical"] | None = None
    reference: str | int | None = Field(
        None, description="Reference level of a categorical covariate (most frequent when omitted).")
    spline_knots: int | None = Field(
        None, ge=3, le=10, description="Natural cubic spline with this many knots (continuous only).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class BreakdownSpec(_Model):
    """A patient characteristic results are broken down by (inequalities). A plain string in YAML is
    shorthand for ``{column: ...}``."""

    column: str = Field(description="Column of the dataset holding the group, e.g. imd_quintile.")
    label: str | None = Field(None, description="What the groups are called on screen, e.g. 'IMD quintile'.")
    ordered: bool | None = Field(
        None, description="Ordered groups (a gradient: slope and relative index of inequality). Default: "
        "true for integer columns (such as IMD quintile, 1 = most deprived) or when levels are given.")
    levels: list[str | int] | None = Field(
        None, description="The groups in order, most disadvantaged first (ordered breakdowns).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value


class RiskAdjustmentSpec(_Model):
    """Patient-level logistic case-mix model (see the risk-adjustment section of the README)."""

    covariates: list[CovariateSpec] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    missing: MissingMode = "category"
    imputations: int = Field(5, ge=2, le=50)


class IndicatorSpec(_MethodOptions):
    """One indicator. Method fields left out are inherited from ``defaults``."""

    id: Annotated[str, Field(pattern=_ID, description="Lower-case identifier, e.g. bowel_mort90.")]
    title: str
    audit: str | None = None
    tumour_site: str = Field(
        "All", description="Grouping shown to users (tumour site, or any topic); 'All' when it means nothing "
        "for the indicator (e.g. SHMI covers all admissions).")
    description: str | None = None
    dataset: str
    cohort: str | None = Field(None, description="Boolean expression selecting the cohort (patient data) or the "
                                                "rows of a long aggregate table, e.g. cancer_type = 'Lung'.")
    numerator: str = Field(description="Boolean expression (patient data) or count column (aggregate data).")
    denominator: str | None = Field(
        None, description="Count column (aggregate data). Patient data: the cohort size.")
    expected: str | None = Field(None, description="Expected-count column (aggregate ratio data).")
    person_time: str | None = Field(None, description="Person-time column (rate statistic).")
    statistic: Statistic = "proportion"
    better: Better
    target: float | dict[str, float] | None = Field(
        None, description="External standard (else the national value); a mapping period -> standard where "
                          "the standard changed between periods.")
    test: Literal["two_sided", "one_sided"] = Field(
        "two_sided", description="one_sided: against an external standard, only results worse than it are "
                                 "flagged (alert/alarm); two_sided: both directions.")
    multiplier: float = Field(1.0, gt=0, description="Display multiplier, e.g. 100 for percentages.")
    by_period: bool = Field(False, description="Also report each period separately.")
    pooled: bool = Field(True, description="false: report each period only, never pooled (rolling 12-month "
                                           "windows such as SHMI, or monthly returns); the latest period leads.")
    risk_adjustment: RiskAdjustmentSpec | None = None
    transform: Literal["arcsine", "log", "sqrt"] | None = Field(
        None, description="Variance-stabilising scale for transformed limits.")
    breakdowns: list[BreakdownSpec] | None = Field(
        None, description="Inequality breakdowns for this indicator (replaces the catalogue's list; [] for none).")

    def target_for(self, period: str) -> float | None:
        """The standard for one period (None: compare with the national value)."""
        if isinstance(self.target, dict):
            return self.target.get(str(period))
        return self.target

    @property
    def worse_side(self) -> str | None:
        """'high' or 'low' for a one-sided test (the side that is worse), else None."""
        if self.test != "one_sided":
            return None
        return {"lower": "high", "higher": "low"}.get(self.better)

    @property
    def is_patient_level(self) -> bool:
        """Without a dataset declaration: patient-level unless a denominator column is named."""
        return self.denominator is None


def is_aggregate(spec: IndicatorSpec, datasets: Mapping[str, DatasetSpec]) -> bool:
    """Whether the indicator reads an aggregate extract (the dataset's ``aggregate`` decides)."""
    ds = datasets.get(spec.dataset)
    if ds is not None and ds.aggregate is not None:
        return ds.aggregate
    return not spec.is_patient_level


class Catalogue(_Model):
    """The whole ``indicators.yaml``."""

    version: Literal[1]
    datasets: dict[str, DatasetSpec]
    units: UnitsSpec
    defaults: Defaults = Field(default_factory=Defaults)
    breakdowns: list[BreakdownSpec] = Field(
        default_factory=list, description="Inequality breakdowns for every patient-level indicator whose "
        "dataset has the column, e.g. [imd_quintile, sex, ethnic_group].")
    indicators: list[IndicatorSpec] = Field(min_length=1)


# --------------------------------------------------------------------------------------------
# resolved options


_BUILTIN_DEFAULTS: dict[str, Any] = {
    "limits": [0.95, 0.998],
    "overdispersion": "additive",
    "estimator": "robust_ml",
    "robust": "winsorise",
    "trim": 0.1,
    "min_denominator": 10,
    "min_units": 10,
    "limit_method": "exact",
    "fdr": False,
}


@dataclass(frozen=True)
class MethodOptions:
    """The fully resolved method options for one indicator (indicator > defaults > built-in)."""

    limits: tuple[float, ...]
    overdispersion: str
    robust: str
    trim: float
    min_denominator: float
    min_units: int
    limit_method: str
    fdr: bool
    transform: str
    estimator: str = "robust_ml"

    def replace(self, **changes: Any) -> MethodOptions:
        values = {**self.__dict__, **changes}
        values["limits"] = tuple(values["limits"])
        return MethodOptions(**values)


def default_transform(statistic: str) -> str:
    return {"proportion": "arcsine", "ratio": "sqrt", "rate": "sqrt", "ratio_of_counts": "log"}[statistic]


def resolve_options(spec: IndicatorSpec, defaults: Defaults) -> MethodOptions:
    values: dict[str, Any] = {}
    for name, builtin in _BUILTIN_DEFAULTS.items():
        own = getattr(spec, name)
        inherited = getattr(defaults, name)
        values[name] = own if own is not None else inherited if inherited is not None else builtin
    values["limits"] = tuple(values["limits"])
    values["transform"] = spec.transform or default_transform(spec.statistic)
    return MethodOptions(**values)


# --------------------------------------------------------------------------------------------
# YAML with line numbers


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on a catalogue file, checked before it is built (a hostile file must end fast).

    A catalogue of a few hundred indicators is well inside every bound: the bundled one is 15 kB,
    about 1,500 values and 7 levels deep. ``max_values`` counts values after alias expansion, so
    an alias bomb (aliases of aliases, exponential in size) is refused at the line where it
    passes the bound instead of being expanded.
    """

    max_bytes: int = 2_000_000
    max_depth: int = 40
    max_values: int = 200_000


_YAML_SPECIAL = re.compile(r"^[-+]?\.(inf|nan)$", re.IGNORECASE)


def _non_finite(text: str) -> bool:
    """Scalar text that reads as infinity or not-a-number (YAML's .inf/.nan, or 1e999, NaN)."""
    if _YAML_SPECIAL.match(text):
        return True
    try:
        return not math.isfinite(float(text.replace("_", "")))
    except ValueError:
        return False


# LibYAML's parser (C) where PyYAML was built with it: the same events and nodes as the pure-Python parser,
# ~10x faster (0.3 of the 0.49 s the bundled catalogue took to check). A text it cannot read is read again by
# the pure-Python parser, whose messages (and lines) are the ones the user sees, as before (#16).
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _check_yaml_bounds(text: str, file: str, limits: YamlLimits,
                       loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Problem | None:
    """The first bound ``text`` breaks, located; None if within bounds.

    Reads PyYAML's event stream (the parser keeps an explicit stack, so deep nesting cannot
    exhaust Python's recursion limit) and sizes each anchored node once, so the check is linear
    in the file even when the expansion is not.
    """
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:
        return Problem(file, f"the catalogue is {size:,} bytes, more than the limit of {limits.max_bytes:,}", 1,
                       hint="a catalogue holds definitions only; split it or remove pasted data")
    anchors: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, expanded size] per open collection
    expanded = 0
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= limits.max_depth:
                return Problem(file, f"nesting deeper than {limits.max_depth} levels", line,
                               hint="a catalogue needs only a few levels; check for runaway brackets")
            stack.append([event.anchor, 1])
            grown = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, grown = stack.pop()
            if anchor is not None:
                anchors[anchor] = grown
            if stack:
                stack[-1][1] += grown
            continue  # already counted as its children arrived
        elif isinstance(event, yaml.ScalarEvent):
            grown = 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
            if event.tag is None and not event.style and _non_finite(event.value):  # plain: None, or "" from LibYAML
                # .inf, .nan and 1e999 would pass every '>= 0' check and silently disable a rule
                return Problem(file, f"{event.value!r} is not a finite number", line,
                               hint="write an ordinary number; if it is text, put it in quotes")
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in stack):
                return Problem(file, f"alias *{event.anchor} refers to the value that contains it", line,
                               hint="a recursive value never ends; write the setting out instead")
            grown = anchors.get(event.anchor, 1)
        else:
            continue
        if stack and not isinstance(event, yaml.CollectionStartEvent):
            stack[-1][1] += grown
        expanded += grown
        if expanded > limits.max_values:
            what = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else "this value"
            return Problem(file, f"the catalogue expands to more than {limits.max_values:,} values at {what}",
                           line, hint="aliases (*name) repeat what they point to; write small shared "
                           "settings under defaults instead of nesting aliases")
    return None


@dataclass
class _LineMap:
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def line_of(self, path: Iterable[Any]) -> int | None:
        """Line of the deepest known prefix of ``path``."""
        key: tuple[Any, ...] = ()
        best = self.lines.get((), None)
        for part in path:
            if (*key, part) in self.lines:
                key = (*key, part)
                best = self.lines[key]
            elif isinstance(part, str) and (*key, part) not in self.lines:
                continue  # pydantic adds tags (e.g. union members) that are not YAML keys
        return best


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: _LineMap, problems: list[Problem],
          file: str) -> None:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(file, f"key {key!r} appears twice (first on line {seen[key]})",
                                        line, hint="remove one of them: YAML keeps only the last"))
            seen[key] = line
            lines.lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, problems, file)
            lines.lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, problems, file)


def _all_field_names() -> list[str]:
    names: set[str] = set()
    for model in (Catalogue, DatasetSpec, UnitsSpec, Defaults, IndicatorSpec, RiskAdjustmentSpec,
                  CovariateSpec, SuppressionSpec, BreakdownSpec):
        names.update(model.model_fields)
    return sorted(names)


def _pydantic_problem(err: Mapping[str, Any], lines: _LineMap, file: str) -> Problem:
    loc = tuple(err["loc"])
    line = lines.line_of(loc)
    where = ".".join(str(p) for p in loc if not (isinstance(p, str) and "[" in p))
    kind = err["type"]
    hint = None
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _all_field_names(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "remove it, or see `audit-metrics schema`"
        return Problem(file, f"unknown key {key!r} at {where}", line, hint=hint)
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {expected}"
    elif kind == "missing":
        hint = "add it (see the README's catalogue reference)"
    elif kind == "string_pattern_mismatch":
        hint = "use lower-case letters, digits and underscores, starting with a letter"
    msg = err["msg"].removeprefix("Value error, ")
    return Problem(file, f"{where}: {msg} (got {err.get('input')!r})"
                   if kind not in {"missing", "value_error"} else f"{where}: {msg}", line, hint=hint)


@dataclass(frozen=True)
class LoadedCatalogue:
    """A parsed catalogue, where it came from, and the line of each YAML path."""

    catalogue: Catalogue
    path: Path
    base_dir: Path
    text: str
    line_map: dict[tuple[Any, ...], int]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def options(self, spec: IndicatorSpec) -> MethodOptions:
        return resolve_options(spec, self.catalogue.defaults)

    def indicator(self, indicator_id: str) -> IndicatorSpec:
        for spec in self.catalogue.indicators:
            if spec.id == indicator_id:
                return spec
        msg = f"no indicator {indicator_id!r} in {self.path.name}"
        raise KeyError(msg)

    def dataset_path(self, name: str, overrides: Mapping[str, str | Path] | None = None) -> Path:
        if overrides and name in overrides:
            return Path(overrides[name])
        return self.base_dir / self.catalogue.datasets[name].path


def _compose_and_construct(text: str, loader_class: type[yaml.SafeLoader] = yaml.SafeLoader
                           ) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data ``yaml.safe_load`` would give, from one pass of the safe loader.

    The data is built from the composed nodes, as ``safe_load`` does internally, instead of
    parsing the text a second time (#16).
    """
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        try:
            return root, None if root is None else loader.construct_document(root)
        except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag on a value it cannot take
            raise _tagged_value_error(root, exc) from None
    finally:
        loader.dispose()


def _tagged_value_error(root: yaml.Node, exc: Exception) -> yaml.MarkedYAMLError:
    """The YAML error for a value its explicit tag cannot make (``version: !!int x``), at that value's line:
    PyYAML raises a bare ValueError for it, with no position."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(node)
            except (ValueError, TypeError, OverflowError, yaml.YAMLError):
                return yaml.MarkedYAMLError(problem=f"{node.value!r} cannot be read as {node.tag.rsplit(':', 1)[-1]}",
                                            problem_mark=node.start_mark)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return yaml.MarkedYAMLError(problem=str(exc))


# where LibYAML is more lenient than the pure-Python parser (it reads text that one refuses, or reads it otherwise):
# tabs, '?' (flow keys), a byte-order mark after the start, a comment straight after a block scalar's indicator
# (found by review16 fuzzing 135,000 edits of catalogues; none of these is in the bundled catalogue)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PURE_ONLY = re.compile(r"[\t?]|[|>][-+0-9]*#")


def _read_yaml(text: str, file: str, limits: YamlLimits) -> tuple[Problem | None, yaml.Node | None, Any]:
    """The first bound the text breaks (then no nodes), or its node tree and data; by LibYAML when it reads
    the text and the text has nothing LibYAML reads more leniently, else by the pure-Python loader (which
    raises what is wrong, located)."""
    if _FAST_LOADER is not None and not _PURE_ONLY.search(text) and "\ufeff" not in text[1:]:
        try:
            bound = _check_yaml_bounds(text, file, limits, _FAST_LOADER)
            return (bound, None, None) if bound is not None else (None, *_compose_and_construct(text, _FAST_LOADER))
        except yaml.YAMLError:
            pass
    bound = _check_yaml_bounds(text, file, limits)
    return (bound, None, None) if bound is not None else (None, *_compose_and_construct(text))


def parse_catalogue(text: str, *, file: str = "indicators.yaml",
                    base_dir: Path | None = None, limits: YamlLimits | None = None) -> LoadedCatalogue:
    """Parse and schema-check catalogue text (no dataset access). Raises ``CatalogueError``."""
    problems: list[Problem] = []
    lone = _LONE_SURROGATE.search(text)  # only from text handed over as such (the editor): a file read as UTF-8 has none
    if lone:
        raise CatalogueError([Problem(file, f"the catalogue holds a character that is not text (U+{ord(lone.group()):04X}, "
                                      "half of a surrogate pair)", text.count("\n", 0, lone.start()) + 1,
                                      hint="delete or retype the character")])
    try:
        bound, root, data = _read_yaml(text, file, limits or YamlLimits())
        if bound is not None:
            raise CatalogueError([bound])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        hint = ("Python tags are not allowed in the catalogue" if "python/" in str(exc)
                else "remove the '!!' tag, or give a value of that type" if "cannot be read as" in str(problem)
                else "check indentation and that text with ':' or '#' is quoted")
        raise CatalogueError([Problem(file, f"not valid YAML: {problem}", line, hint=hint)]) from None
    if root is None or not isinstance(data, dict):
        raise CatalogueError([Problem(file, "the catalogue is empty or not a mapping", 1,
                                      hint="start with 'version: 1'")])
    lines = _LineMap()
    _walk(root, (), lines, problems, file)
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problem(e, lines, file) for e in exc.errors())
        partial = _lenient(data)
        loaded = None if partial is None else LoadedCatalogue(
            partial, Path(file), base_dir or Path(file).parent, text, lines.lines)
        raise CatalogueError(sorted(problems, key=lambda p: p.line or 0), partial=loaded) from None
    if problems:
        raise CatalogueError(problems)
    return LoadedCatalogue(catalogue, Path(file), base_dir or Path(file).parent, text, lines.lines)


def _lenient(data: dict[str, Any]) -> Catalogue | None:
    """The parts of an invalid catalogue that are valid on their own, for further checking."""
    def valid(model: type[BaseModel], value: Any) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError:
            return None

    units = valid(UnitsSpec, data.get("units"))
    if units is None:
        return None
    datasets_in = data.get("datasets") if isinstance(data.get("datasets"), dict) else {}
    datasets = {k: d for k, v in datasets_in.items() if (d := valid(DatasetSpec, v)) is not None}
    defaults = valid(Defaults, data.get("defaults") or {}) or Defaults()
    raw = data.get("indicators") if isinstance(data.get("indicators"), list) else []
    # keep list positions so that line numbers still point at the right indicator
    indicators = [_salvage(item) for item in raw]
    return Catalogue.model_construct(version=1, datasets=datasets, units=units, defaults=defaults,
                                     indicators=indicators)


def _salvage(item: Any) -> IndicatorSpec | None:
    """An indicator with its invalid fields dropped, so its other fields can still be checked.

    Only display fields are filled in; an indicator whose dataset or expressions are themselves
    invalid is skipped (None) rather than checked against placeholders.
    """
    if not isinstance(item, dict):
        return None
    try:
        return IndicatorSpec.model_validate(item)
    except ValidationError as exc:
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
    cleaned = {k: v for k, v in item.items() if k not in bad and k in IndicatorSpec.model_fields}
    if not {"dataset", "numerator"} <= set(cleaned):
        return None
    for key, placeholder in (("id", "_unnamed"), ("title", ""), ("tumour_site", ""), ("better", "neither")):
        cleaned.setdefault(key, placeholder)
    try:
        return IndicatorSpec.model_validate(cleaned)
    except ValidationError:
        return None


def check_catalogue(text: str, *, file: str, base_dir: Path,
                    data: Mapping[str, str | Path] | None = None,
                    limits: YamlLimits | None = None) -> tuple[LoadedCatalogue | None, list[Problem]]:
    """Every problem in catalogue text: schema and semantic together (as far as can be checked)."""
    try:
        loaded = parse_catalogue(text, file=file, base_dir=base_dir, limits=limits)
    except CatalogueError as exc:
        problems = list(exc.problems)
        if exc.partial is not None:
            seen = {(p.line, p.message) for p in problems}
            problems += [p for p in validate_catalogue(exc.partial, data=data) if (p.line, p.message) not in seen]
        return None, sorted(problems, key=lambda p: p.line or 0)
    return loaded, validate_catalogue(loaded, data=data)


def read_catalogue_text(path: Path, limits: YamlLimits | None = None) -> str:
    """The text of a catalogue file: a regular file within the size bound, in UTF-8."""
    limits = limits or YamlLimits()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CatalogueError([Problem(str(path), "file not found",
                                      hint="give the path to indicators.yaml")]) from None
    except OSError as exc:
        raise CatalogueError([Problem(str(path), f"cannot be read ({exc.strerror})")]) from None
    if not stat.S_ISREG(info.st_mode):
        raise CatalogueError([Problem(str(path), "is not a regular file (a folder, device or pipe)",
                                      hint="give the path to indicators.yaml")])
    if info.st_size > limits.max_bytes:
        raise CatalogueError([Problem(str(path), f"the catalogue is {info.st_size:,} bytes, more than the "
                                      f"limit of {limits.max_bytes:,}", 1,
                                      hint="a catalogue holds definitions only; check the path")])
    try:
        with path.open("rb") as fh:
            raw = fh.read(limits.max_bytes + 1)  # the file may grow after stat
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CatalogueError([Problem(str(path), "not UTF-8 text", line, hint="save it as UTF-8")]) from None
    except OSError as exc:
        raise CatalogueError([Problem(str(path), f"cannot be read ({exc.strerror})")]) from None


def catalogue_version(path: str | Path) -> tuple[str, str]:
    """(sha256 of the file's bytes, its text): what an editor starts from and must still match on save."""
    raw = Path(path).read_bytes()
    return hashlib.sha256(raw).hexdigest(), raw.decode("utf-8")


def save_catalogue_text(path: str | Path, text: str, *, expected_version: str) -> Path:
    """Replace the catalogue with ``text`` unless it changed since ``expected_version`` was read.

    Optimistic concurrency: two editors who started from the same version cannot both save; the
    second gets ``CatalogueConflict`` with the version now on disk. The check and the replacement
    happen under an exclusive lock on ``.<name>.lock`` beside the file, so concurrent saves (threads
    of one server or several processes) are serialised. The previous version is kept as
    ``<name>.bak.<time>``; both files are written to a temporary name and renamed into place, with
    the catalogue's permission bits, so a failure (disk full, read-only folder) leaves the catalogue
    and the folder as they were and raises ``CatalogueSaveError``.

    Returns
    -------
    Path
        The backup of the previous version.
    """
    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    created: list[Path] = []
    try:
        with _exclusive_lock(lock_path):
            current = path.read_bytes()
            if hashlib.sha256(current).hexdigest() != expected_version:
                changed = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                msg = (f"{path.name} was changed by someone else (saved {changed}) after you started "
                       "editing, so your edit was not saved")
                raise CatalogueConflict(msg, current.decode("utf-8", errors="replace"))
            mode = stat.S_IMODE(path.stat().st_mode)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            backup = path.with_name(f"{path.name}.bak.{stamp}")
            _write_then_rename(current, backup, mode, created)
            created.append(backup)
            _write_then_rename(text.encode("utf-8"), path, mode, created)
            created.remove(backup)  # success: the backup stays
            return backup
    except OSError as exc:
        for leftover in created:
            leftover.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
            why = "the disk is full"
        elif exc.errno in {errno.EROFS, errno.EACCES, errno.EPERM}:
            why = f"the folder {path.parent} is read-only for this server"
        else:
            why = exc.strerror or type(exc).__name__
        msg = (f"{path.name} was not saved: {why}. The catalogue on disk is unchanged; download your edit "
               "so it is not lost")
        raise CatalogueSaveError(msg) from None


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock); each call opens its own descriptor, so threads of one
    process exclude each other too. Without fcntl (Windows) saves are not serialised."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_then_rename(data: bytes, target: Path, mode: int, created: list[Path]) -> None:
    """Write ``data`` to a temporary file beside ``target``, flush it to disk, then rename it over."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    created.append(tmp)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)  # mkstemp creates 0600; keep the catalogue's own permissions
    os.replace(tmp, target)
    created.remove(tmp)


def load_catalogue(path: str | Path, *, data: Mapping[str, str | Path] | None = None,
                   check_data: bool = True, limits: YamlLimits | None = None) -> LoadedCatalogue:
    """Load, schema-check and (by default) semantically validate a catalogue file."""
    path = Path(path)
    text = read_catalogue_text(path, limits)
    if not check_data:
        return parse_catalogue(text, file=str(path), base_dir=path.parent, limits=limits)
    loaded, problems = check_catalogue(text, file=str(path), base_dir=path.parent, data=data, limits=limits)
    if problems or loaded is None:
        raise CatalogueError(problems)
    return loaded


# --------------------------------------------------------------------------------------------
# semantic validation


def unknown_data_names(loaded: LoadedCatalogue, data: Mapping[str, str | Path] | None) -> list[Problem]:
    """A problem for each ``--data NAME=PATH`` whose NAME is no dataset of the catalogue: ignored, the run would use
    the catalogue's own file while the user believes it used theirs (a real-data review: ``SHMI=`` for ``shmi=``)."""
    names = list(loaded.catalogue.datasets)
    case = {n.lower(): n for n in names}

    def hint(name: str) -> str:
        close = (f"did you mean {case[name.lower()]!r}? (names are case-sensitive)" if name.lower() in case
                 else _close(name, names))
        return "; ".join([*([close] if close else []), f"its datasets are: {', '.join(names)}"])

    return [Problem("--data", f"no dataset named {name!r} in {Path(loaded.path).name}", hint=hint(name))
            for name in (data or {}) if name not in loaded.catalogue.datasets]


def validate_catalogue(loaded: LoadedCatalogue, *,
                       data: Mapping[str, str | Path] | None = None) -> list[Problem]:
    """Every semantic problem: ids, datasets, columns, expressions and option combinations."""
    # local: io depends on this module
    from audit_metrics.io import (
        csv_header,
        dataset_schema,
        load_units,
        missing_column_hint,
        nested_column_problems,
        structural_columns,
    )

    cat = loaded.catalogue
    file = str(loaded.path)
    lm = _LineMap(loaded.line_map)
    problems: list[Problem] = unknown_data_names(loaded, data)

    def add(path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        problems.append(Problem(file, message, lm.line_of(path), hint=hint))

    schemas: dict[str, pl.Schema] = {}
    for name, spec in cat.datasets.items():
        try:
            schemas[name] = dataset_schema(loaded.dataset_path(name, data), spec)
        except ExtractError as exc:
            declared = f"(dataset {name!r}, declared at {file}:{lm.line_of(('datasets', name))})"
            for p in exc.problems:
                if p.line is not None:  # a line of the extract: point there, naming the declaration
                    problems.append(replace(p, message=f"{p.message} {declared}"))
                else:  # the file as a whole (not found, not a file, too large): the declaration is the fix
                    add(("datasets", name), f"dataset {name!r}: {p.message} ({p.file})", p.hint)
        except Exception as exc:  # anything else is reported too, at the declaration
            add(("datasets", name), f"dataset {name!r}: {str(exc).splitlines()[0][:300] if str(exc) else exc!r}")
    if cat.units.from_dataset is not None:
        _check_units_from_dataset(loaded, schemas, data, add, problems)
    elif not (units_path := loaded.base_dir / cat.units.file).exists():
        add(("units", "file"), f"units file {cat.units.file!r} not found",
            "paths are relative to the catalogue file")
    else:
        before = len(problems)
        try:
            header = csv_header(units_path)
        except ExtractError as exc:
            problems.extend(exc.problems)
            header = None
        for key in ("code", "name", "expected_cases"):
            col = getattr(cat.units, key)
            if header is not None and col is not None and col not in header:
                add(("units", key), f"units.{key}: column {col!r} is not in {cat.units.file}",
                    _close(col, header) or f"columns found: {', '.join(header)}")
        for i, col in enumerate(cat.units.groups):
            if header is not None and col not in header:
                add(("units", "groups", i), f"units.groups: column {col!r} is not in {cat.units.file}",
                    _close(col, header) or f"columns found: {', '.join(header)}")
        if cat.units.mergers and not (loaded.base_dir / cat.units.mergers).exists():
            add(("units", "mergers"), f"mergers file {cat.units.mergers!r} not found")
        elif len(problems) == before:
            try:  # the rows themselves (codes, groups, mergers), exactly as a run will read them
                load_units(loaded, data=data)
            except ExtractError as exc:
                problems.extend(exc.problems)

    for name, spec in cat.datasets.items():
        schema = schemas.get(name)
        if schema is None:
            continue
        unit_col = spec.unit_column or cat.units.code
        if unit_col not in schema:
            add(("datasets", name), f"dataset {name!r} has no unit column {unit_col!r}",
                missing_column_hint(loaded.dataset_path(name, data), spec, unit_col, list(schema))
                + "; or set unit_column for this dataset")
        for attr in ("period_column", "date_column"):
            col = getattr(spec, attr)
            if col and col not in schema:
                add(("datasets", name, attr), f"{attr} {col!r} is not a column of {name!r}",
                    _close(col, list(schema)))
        counted = [i.id for i in cat.indicators if i is not None and i.dataset == name and is_aggregate(i, cat.datasets)]
        if spec.date_column and (spec.aggregate or counted):
            # it passed the check and then did nothing: the trend charts need a date per patient (a review)
            add(("datasets", name, "date_column"), f"date_column {spec.date_column!r}: dataset {name!r} holds "
                "counts already added up (one row per unit and period), but the monthly trend charts need one row "
                "per patient with its date", "remove date_column; the periods come from period_column")
        for col in [*(spec.key or []), *spec.ranges, *spec.columns]:
            if col not in schema:
                add(("datasets", name), f"column {col!r} is not in dataset {name!r}",
                    _close(col, list(schema)))
        path = loaded.dataset_path(name, data)
        problems.extend(replace(p, message=f"{p.message} (dataset {name!r}, declared at {file}:"
                                           f"{lm.line_of(('datasets', name))})")
                        for p in nested_column_problems(path, schema, [unit_col, *structural_columns(spec)], 1))

    all_columns = sorted({c for schema in schemas.values() for c in schema})
    # a catalogue-wide breakdown applies where a dataset has the column; one that applies to nothing while
    # there are patient-level indicators to break down is most likely misspelt
    patient_level = any(ind is not None and ind.dataset in cat.datasets and not is_aggregate(ind, cat.datasets)
                        for ind in cat.indicators)
    for j, b in enumerate(cat.breakdowns):
        if patient_level and schemas and all(b.column not in schema for schema in schemas.values()):
            add(("breakdowns", j), f"breakdown column {b.column!r} is in no dataset",
                _close(b.column, all_columns) or "name a column of a patient-level extract")
        for name, schema in schemas.items():  # a Parquet list or record per patient is no group (red17)
            if b.column in schema and is_nested_type(schema[b.column]):
                add(("breakdowns", j), f"breakdown column {b.column!r} holds {schema[b.column]} values in dataset "
                    f"{name!r}, not one value per patient", ONE_VALUE_HINT)
    seen: dict[str, int] = {}
    for i, ind in enumerate(cat.indicators):
        if ind is None:  # invalid on its own: already reported by the schema check
            continue
        base = ("indicators", i)
        if ind.id in seen:
            add((*base, "id"), f"duplicate indicator id {ind.id!r} (also indicator #{seen[ind.id] + 1})",
                "ids must be unique; rename one")
        seen.setdefault(ind.id, i)
        opts = resolve_options(ind, cat.defaults)
        _check_options(ind, opts, base, add)
        if ind.dataset not in cat.datasets:
            add((*base, "dataset"), f"unknown dataset {ind.dataset!r}",
                _close(ind.dataset, list(cat.datasets)) or f"declare it under datasets: ({', '.join(cat.datasets)})")
            continue
        schema = schemas.get(ind.dataset)
        if schema is None:
            continue
        if not is_aggregate(ind, cat.datasets):
            for key in ("cohort", "numerator"):
                text = getattr(ind, key)
                if text is None:
                    continue
                try:
                    compile_expression(text, schema)
                except ExpressionProblem as exc:
                    hint = exc.hint
                    if key == "numerator" and text.strip() in schema and schema[text.strip()].is_numeric():
                        # a count column where a patient-level condition was expected: the table is aggregate
                        hint = (f"{text.strip()!r} is a count column, so {ind.dataset!r} looks like a table of one "
                                f"row per unit (and period): add 'aggregate: true' under datasets: {ind.dataset}:")
                    add((*base, key), f"{ind.id}.{key}: {exc.message}", hint)
            for key in ("expected", "person_time"):
                col = getattr(ind, key)
                if col is not None and col not in schema:
                    add((*base, key), f"{ind.id}.{key}: unknown column {col!r}", _close(col, list(schema)))
            if ind.statistic == "ratio" and ind.risk_adjustment is None and ind.expected is None:
                add((*base, "statistic"), f"{ind.id}: statistic 'ratio' needs expected counts",
                    "add risk_adjustment (patient data) or an expected column")
            if ind.risk_adjustment is not None:
                _check_risk(ind, schema, base, add)
        else:
            if ind.cohort is not None:  # a row filter on a long aggregate table
                try:
                    compile_expression(ind.cohort, schema)
                except ExpressionProblem as exc:
                    add((*base, "cohort"), f"{ind.id}.cohort: {exc.message}", exc.hint)
            ds_spec = cat.datasets[ind.dataset]
            if ds_spec.fractional_counts == "allow":
                for key in ["numerator", *(["denominator"] if ind.statistic != "rate" else [])]:
                    col = getattr(ind, key)
                    if col is not None and ds_spec.columns.get(col) == "integer":
                        add(("datasets", ind.dataset, "columns", col),
                            f"column {col!r} is declared integer, but dataset {ind.dataset!r} allows fractional "
                            f"counts ({ind.id}.{key})",
                            f"declare it float (datasets.{ind.dataset}.columns.{col}: float), or remove "
                            "fractional_counts: allow to keep whole numbers only")
            if ind.risk_adjustment is not None:
                add((*base, "risk_adjustment"), f"{ind.id}: risk adjustment needs patient-level data",
                    "supply expected counts in an 'expected' column instead")
            for key in ("numerator", "denominator", "expected", "person_time"):
                col = getattr(ind, key)
                if col is None:
                    continue
                if col not in schema:
                    add((*base, key), f"{ind.id}.{key}: unknown column {col!r} in dataset {ind.dataset!r}",
                        missing_column_hint(loaded.dataset_path(ind.dataset, data), cat.datasets[ind.dataset], col,
                                            list(schema)))
                elif not schema[col].is_numeric():
                    declared = cat.datasets[ind.dataset].columns.get(col)
                    if declared not in {"integer", "float"}:
                        add((*base, key), f"{ind.id}.{key}: column {col!r} is {schema[col]}, not a count",
                            f"declare it: datasets.{ind.dataset}.columns.{col}: integer (a count column that "
                            "holds '*', '..' or '-' for small numbers reads as text until its type is declared; "
                            "those rows are then excluded and counted as suppressed)")
        for j, b in enumerate(ind.breakdowns or []):
            if b.column not in schema:
                add((*base, "breakdowns", j), f"{ind.id}.breakdowns: unknown column {b.column!r} in dataset "
                    f"{ind.dataset!r}", _close(b.column, list(schema)) or "name a column of the indicator's dataset")
            elif is_nested_type(schema[b.column]):
                add((*base, "breakdowns", j), f"{ind.id}.breakdowns: column {b.column!r} holds {schema[b.column]} "
                    "values, not one value per patient", ONE_VALUE_HINT)
        aggregate = is_aggregate(ind, cat.datasets)
        if ind.statistic == "rate" and ind.person_time is None and not (aggregate and ind.denominator):
            add((*base, "statistic"), f"{ind.id}: statistic 'rate' needs person_time",
                "name the person-time column (or, for aggregate data, give it as the denominator)")
        if aggregate and ind.statistic == "ratio" and ind.expected is None:
            add((*base, "statistic"), f"{ind.id}: an aggregate 'ratio' needs an expected column",
                "name the expected-count column")
        if aggregate and ind.statistic == "proportion" and ind.denominator is None:
            add((*base, "denominator"), f"{ind.id}: an aggregate proportion needs a denominator column",
                "name the count column of patients")
        if ind.statistic == "ratio_of_counts" and not aggregate:
            add((*base, "statistic"), f"{ind.id}: 'ratio_of_counts' needs aggregate counts",
                "give numerator and denominator count columns")
    return sorted(problems, key=lambda p: p.line or 0)


def _check_units_from_dataset(loaded: LoadedCatalogue, schemas: Mapping[str, pl.Schema],
                              data: Mapping[str, str | Path] | None, add: Any, problems: list[Problem]) -> None:
    """``units: {from: DATASET}``: the dataset is declared and has the code, name and group columns."""
    from audit_metrics.io import load_units  # local: io depends on this module

    units = loaded.catalogue.units
    name = units.from_dataset
    if name not in loaded.catalogue.datasets:
        add(("units", "from"), f"units.from: unknown dataset {name!r}",
            _close(str(name), list(loaded.catalogue.datasets))
            or f"name one of the datasets: {', '.join(loaded.catalogue.datasets)}")
        return
    schema = schemas.get(str(name))
    if schema is None:  # the dataset itself could not be read: already reported
        return
    before = len(problems)
    wanted = [("code", units.code), ("name", units.name), ("expected_cases", units.expected_cases),
              *[(("groups", i), g) for i, g in enumerate(units.groups)]]
    for key, col in wanted:
        if col is not None and col not in schema:
            where = ("units", *key) if isinstance(key, tuple) else ("units", key)
            label = "groups" if isinstance(key, tuple) else key
            add(where, f"units.{label}: column {col!r} is not in dataset {name!r}",
                _close(col, list(schema)) or f"columns found: {', '.join(schema)}")
    if units.mergers and not (loaded.base_dir / units.mergers).exists():
        add(("units", "mergers"), f"mergers file {units.mergers!r} not found")
    elif len(problems) == before:
        try:
            load_units(loaded, data=data)
        except ExtractError as exc:
            problems.extend(exc.problems)


ONE_VALUE_HINT = "write one plain value per cell (text, a number, a date or true/false) when exporting the extract"


def is_nested_type(dtype: pl.DataType) -> bool:
    """A Parquet list, array or record (struct), or a Python object: no one value per cell."""
    return dtype.is_nested() or dtype == pl.Object


def _close(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _check_options(ind: IndicatorSpec, opts: MethodOptions, base: tuple[Any, ...], add: Any) -> None:
    standards = ind.target.items() if isinstance(ind.target, dict) else [(None, ind.target)]
    binary = ind.statistic == "proportion" or (ind.statistic == "ratio" and ind.risk_adjustment is not None)
    for period, value in standards:
        if value is None:
            continue
        where = (*base, "target", period) if period is not None else (*base, "target")
        label = f"target for {period}" if period is not None else "target"
        if binary and not 0 < value < 1:
            add(where, f"{ind.id}: a proportion {label} must be between 0 and 1 (got {value})", "write 0.8 for 80%")
        elif value <= 0:
            add(where, f"{ind.id}: {label} must be positive (got {value})")
    if isinstance(ind.target, dict) and not ind.target:
        add((*base, "target"), f"{ind.id}: target is an empty mapping", "give period: standard pairs, or one number")
    if ind.test == "one_sided":
        if ind.target is None:
            add((*base, "test"), f"{ind.id}: a one-sided test needs an external standard",
                "add target: (e.g. 0.85), or use test: two_sided to compare with the national value")
        if ind.better == "neither":
            add((*base, "test"), f"{ind.id}: a one-sided test needs a direction",
                "set better: higher or better: lower")
    if opts.limit_method == "exact_ci" and opts.overdispersion != "none":
        add((*base, "limit_method"),
            f"{ind.id}: exact_ci limits cannot be combined with overdispersion {opts.overdispersion!r}",
            "Garwood limits have no overdispersed form: set overdispersion: none, "
            "or use limit_method: exact")
    if opts.limit_method == "exact" and ind.statistic == "ratio_of_counts":
        add((*base, "limit_method"), f"{ind.id}: exact limits are not available for ratio_of_counts",
            "use limit_method: transformed")
    if opts.limit_method == "exact_ci" and ind.statistic not in {"ratio", "rate"}:
        add((*base, "limit_method"), f"{ind.id}: exact_ci limits apply to ratios and rates only",
            "use limit_method: exact for proportions")
    allowed = {"proportion": {"arcsine"}, "ratio": {"log", "sqrt"}, "rate": {"sqrt", "log"},
               "ratio_of_counts": {"log"}}[ind.statistic]
    if ind.transform is not None and ind.transform not in allowed:
        add((*base, "transform"), f"{ind.id}: transform {ind.transform!r} does not apply to {ind.statistic}",
            f"use {' or '.join(sorted(allowed))}")


def _check_risk(ind: IndicatorSpec, schema: pl.Schema, base: tuple[Any, ...], add: Any) -> None:
    ra = ind.risk_adjustment
    assert ra is not None
    names = [c.name for c in ra.covariates]
    for j, cov in enumerate(ra.covariates):
        if cov.name not in schema:
            add((*base, "risk_adjustment", "covariates", j),
                f"{ind.id}: unknown covariate column {cov.name!r}", _close(cov.name, list(schema)))
            continue
        categorical = cov.type == "categorical" or cov.name in ra.categorical
        if is_nested_type(schema[cov.name]):  # a Parquet list or struct per patient
            add((*base, "risk_adjustment", "covariates", j),
                f"{ind.id}: covariate {cov.name!r} holds {schema[cov.name]} values, not one value per patient",
                ONE_VALUE_HINT)
            continue
        if not categorical and not schema[cov.name].is_numeric():
            add((*base, "risk_adjustment", "covariates", j),
                f"{ind.id}: covariate {cov.name!r} is {schema[cov.name]}; list it under categorical",
                f"add {cov.name} to risk_adjustment.categorical")
        if cov.spline_knots and categorical:
            add((*base, "risk_adjustment", "covariates", j),
                f"{ind.id}: spline_knots applies to continuous covariates only ({cov.name!r})")
    for j, name in enumerate(ra.categorical):
        if name not in names:
            add((*base, "risk_adjustment", "categorical", j),
                f"{ind.id}: categorical {name!r} is not one of the covariates", _close(name, names))


def catalogue_json_schema() -> dict[str, Any]:
    """JSON Schema of the catalogue, for editor completion (``audit-metrics schema``)."""
    schema = Catalogue.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "audit_metrics indicator catalogue"
    # YAML shorthand: a dataset may be a plain path, a covariate a plain column name
    defs = schema.get("$defs", {})
    schema["properties"]["datasets"]["additionalProperties"] = {
        "anyOf": [{"type": "string"}, {"$ref": "#/$defs/DatasetSpec"}]}
    cov = defs["RiskAdjustmentSpec"]["properties"]["covariates"]
    cov["items"] = {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/CovariateSpec"}]}
    return json.loads(json.dumps(schema))
