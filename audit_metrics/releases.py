"""Releases: a results store (one SQLite file, standard library) and what changed between two runs.

``audit-metrics run --record`` keeps each run as a *release*: when it was run, the catalogue's and
every extract's sha256, the options, each indicator's definition and method, and every result row
(indicator x level x unit x period: counts, value, limits, z, status). ``audit-metrics diff`` and
the dashboard's "Releases" view compare two releases:

- units whose status moved: new alerts and alarms, flags that resolved, escalations (alert to
  alarm), easing (alarm to alert), reversals (worse to better), units newly assessed or no longer
  assessed, units added or removed;
- indicators added or removed, and indicators whose **definition** (cohort, numerator, statistic,
  case-mix model, target, direction) or **method** (limits, overdispersion, minimum size...) changed.
  Status moves on those indicators are kept but marked ``comparable = false`` with the reason, so a
  change of method is never mistaken for a change in care;
- which extracts and whether the catalogue changed.

The store is an ordinary SQLite database file (no server); it can be copied, backed up or opened
with any SQLite tool. Writes happen in one transaction, so a failed run records nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.pipeline import AuditRun

__all__ = [
    "DEFAULT_STORE",
    "FLAG_RANK",
    "Release",
    "ReleaseDiff",
    "diff_releases",
    "list_releases",
    "open_store",
    "record_release",
    "release_results",
    "resolve_release",
]

DEFAULT_STORE = "releases.sqlite"
SCHEMA_VERSION = "1"
DEFINITION_KEYS = ("dataset", "cohort", "numerator", "denominator", "expected", "person_time", "statistic",
                   "risk_adjustment", "target", "better")
RESULT_COLUMNS = {
    "indicator_id": "TEXT", "level": "TEXT", "unit_code": "TEXT", "period": "TEXT", "pooled": "INTEGER",
    "unit_name": "TEXT", "parent_code": "TEXT", "observed": "REAL", "denominator": "REAL", "expected": "REAL",
    "value": "REAL", "adjusted_value": "REAL", "target": "REAL", "lower_alert": "REAL", "upper_alert": "REAL",
    "lower_alarm": "REAL", "upper_alarm": "REAL", "z": "REAL", "p_value": "REAL", "status": "TEXT",
    "status_label": "TEXT", "not_assessed_reason": "TEXT", "better": "TEXT",
}
FLAG_RANK = {"alarm_low": -2, "alert_low": -1, "within": 0, "alert_high": 1, "alarm_high": 2}

_DDL = f"""
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
    release_id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT UNIQUE,
    recorded_at TEXT NOT NULL,
    generated_at TEXT,
    catalogue_path TEXT,
    catalogue_digest TEXT NOT NULL,
    data_digests TEXT NOT NULL,
    options TEXT NOT NULL,
    tool_version TEXT
);
CREATE TABLE IF NOT EXISTS indicators (
    release_id INTEGER NOT NULL REFERENCES releases(release_id),
    indicator_id TEXT NOT NULL,
    title TEXT,
    definition TEXT NOT NULL,
    definition_digest TEXT NOT NULL,
    method TEXT NOT NULL,
    method_digest TEXT NOT NULL,
    PRIMARY KEY (release_id, indicator_id)
);
CREATE TABLE IF NOT EXISTS results (
    release_id INTEGER NOT NULL REFERENCES releases(release_id),
    {", ".join(f"{k} {t}" for k, t in RESULT_COLUMNS.items())},
    PRIMARY KEY (release_id, indicator_id, level, unit_code, period)
);
"""


@dataclass(frozen=True)
class Release:
    """One recorded run."""

    release_id: int
    label: str | None
    recorded_at: str
    generated_at: str | None
    catalogue_path: str | None
    catalogue_digest: str
    data_digests: dict[str, str]
    options: dict[str, Any]

    @property
    def name(self) -> str:
        return f"release {self.release_id}" + (f" ({self.label})" if self.label else "")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def open_store(path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and, with ``create``, make) a results store; refuse a file that is not one."""
    path = Path(path)
    if not create and not path.exists():
        msg = f"no results store at {path} (record a release first: audit-metrics run --record {path} ...)"
        raise AuditMetricsError(msg)
    if path.exists() and not path.is_file():
        msg = f"{path} is not a file (the results store is one SQLite file)"
        raise AuditMetricsError(msg)
    if path.exists() and path.stat().st_size and path.read_bytes()[:16] != b"SQLite format 3\x00":
        msg = f"{path} is not a results store (not an SQLite database); choose another file name"
        raise AuditMetricsError(msg)
    try:
        conn = sqlite3.connect(path)
        conn.executescript(_DDL)
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            with conn:
                conn.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            conn.close()
            msg = f"{path}: results store version {row[0]}, this tool reads version {SCHEMA_VERSION}"
            raise AuditMetricsError(msg)
    except sqlite3.DatabaseError as exc:
        msg = f"{path} could not be opened as a results store ({exc})"
        raise AuditMetricsError(msg) from None
    return conn


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("audit-metrics")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def indicator_records(loaded: LoadedCatalogue, run: AuditRun) -> list[dict[str, Any]]:
    """Each computed indicator's definition and resolved method, with digests."""
    out = []
    for indicator_id, result in run.results.items():
        spec = result.spec
        definition = json.loads(json.dumps(spec.model_dump(include=set(DEFINITION_KEYS)), default=str))
        method = json.loads(json.dumps(dataclasses.asdict(loaded.options(spec)), default=str))
        out.append({"indicator_id": indicator_id, "title": spec.title, "definition": definition,
                    "definition_digest": _digest(definition), "method": method, "method_digest": _digest(method)})
    return out


def record_release(store: str | Path, loaded: LoadedCatalogue, run: AuditRun, *, label: str | None = None,
                   options: Mapping[str, Any] | None = None) -> Release:
    """Record a run as a new release (one transaction) and return it."""
    table = run.table()
    pooled = {i: _whole_period(r.table["period"].unique().to_list()) for i, r in run.results.items()}
    frame = table.with_columns(
        pl.col("period").cast(pl.String),
        pl.struct("indicator_id", "period").map_elements(lambda s: int(pooled[s["indicator_id"]] == s["period"]),
                                                          return_dtype=pl.Int64).alias("pooled"),
        pl.col(pl.Enum, pl.Categorical).cast(pl.String))
    frame = frame.select([pl.col(c) if c in frame.columns else pl.lit(None).alias(c) for c in RESULT_COLUMNS])
    recorded = datetime.now(UTC).isoformat(timespec="seconds")
    with closing(open_store(store)) as conn:
        try:
            with conn:
                cur = conn.execute(
                    "INSERT INTO releases (label, recorded_at, generated_at, catalogue_path, catalogue_digest, "
                    "data_digests, options, tool_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (label, recorded, run.generated_at, str(loaded.path), run.catalogue_digest,
                     json.dumps(run.data_digests, sort_keys=True), json.dumps(dict(options or {}), default=str),
                     _tool_version()))
                rid = int(cur.lastrowid)
                conn.executemany(
                    "INSERT INTO indicators VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(rid, r["indicator_id"], r["title"], json.dumps(r["definition"], sort_keys=True),
                      r["definition_digest"], json.dumps(r["method"], sort_keys=True), r["method_digest"])
                     for r in indicator_records(loaded, run)])
                placeholders = ", ".join("?" * (len(RESULT_COLUMNS) + 1))
                conn.executemany(f"INSERT INTO results VALUES ({placeholders})",
                                 [(rid, *row) for row in frame.iter_rows()])
        except sqlite3.IntegrityError as exc:
            if "label" in str(exc):
                msg = f"a release labelled {label!r} is already in {store}; choose another --label"
                raise AuditMetricsError(msg) from None
            raise
        return _release(conn, rid)


def _whole_period(labels: list[str]) -> str:
    """The label of the whole reporting period among an indicator's period labels: the one that is the
    pipeline's pooled label of the others ("2021/22 to 2023/24"), or the only label."""
    from audit_metrics.pipeline import _pooled_label

    if len(labels) == 1:
        return labels[0]
    for label in labels:
        if label == _pooled_label([x for x in labels if x != label]):
            return label
    msg = f"no whole-period label among {labels}"
    raise AuditMetricsError(msg)


def _release(conn: sqlite3.Connection, rid: int) -> Release:
    row = conn.execute("SELECT release_id, label, recorded_at, generated_at, catalogue_path, catalogue_digest, "
                       "data_digests, options FROM releases WHERE release_id = ?", (rid,)).fetchone()
    return Release(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), json.loads(row[7]))


def list_releases(store: str | Path) -> pl.DataFrame:
    """Every release in the store, oldest first."""
    with closing(open_store(store, create=False)) as conn:
        rows = conn.execute("SELECT r.release_id, r.label, r.recorded_at, r.catalogue_digest, r.data_digests, "
                            "(SELECT COUNT(*) FROM indicators i WHERE i.release_id = r.release_id) "
                            "FROM releases r ORDER BY r.release_id").fetchall()
    return pl.DataFrame(
        [{"release_id": r[0], "label": r[1], "recorded_at": r[2], "catalogue_sha256": r[3][:12],
          "datasets": ", ".join(json.loads(r[4])), "indicators": r[5]} for r in rows],
        schema={"release_id": pl.Int64, "label": pl.String, "recorded_at": pl.String,
                "catalogue_sha256": pl.String, "datasets": pl.String, "indicators": pl.Int64})


def resolve_release(store: str | Path, ref: str | int | None, *, default: str = "latest") -> Release:
    """A release by id, label, ``latest`` or ``previous`` (the one before the latest)."""
    ref = default if ref is None else ref
    with closing(open_store(store, create=False)) as conn:
        ids = [r[0] for r in conn.execute("SELECT release_id FROM releases ORDER BY release_id")]
        if not ids:
            msg = f"{store} holds no releases yet (audit-metrics run --record {store} ...)"
            raise AuditMetricsError(msg)
        text = str(ref)
        if text == "latest":
            return _release(conn, ids[-1])
        if text == "previous":
            if len(ids) < 2:
                msg = f"{store} holds one release only: record another run to compare with"
                raise AuditMetricsError(msg)
            return _release(conn, ids[-2])
        if text.isdigit() and int(text) in ids:
            return _release(conn, int(text))
        row = conn.execute("SELECT release_id FROM releases WHERE label = ?", (text,)).fetchone()
        if row is None:
            labels = [r[0] for r in conn.execute("SELECT label FROM releases WHERE label IS NOT NULL")]
            msg = (f"no release {text!r} in {store}: use a release number ({ids[0]}-{ids[-1]}), "
                   f"'latest', 'previous'" + (f" or a label ({', '.join(labels[-5:])})" if labels else ""))
            raise AuditMetricsError(msg)
        return _release(conn, row[0])


def release_results(store: str | Path, release_id: int) -> pl.DataFrame:
    """The result rows of one release."""
    with closing(open_store(store, create=False)) as conn:
        rows = conn.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE release_id = ?",
                            (release_id,)).fetchall()
    schema = {k: (pl.Float64 if t == "REAL" else pl.Int64 if t == "INTEGER" else pl.String)
              for k, t in RESULT_COLUMNS.items()}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _indicators(store: str | Path, release_id: int) -> dict[str, dict[str, Any]]:
    with closing(open_store(store, create=False)) as conn:
        rows = conn.execute("SELECT indicator_id, title, definition, definition_digest, method, method_digest "
                            "FROM indicators WHERE release_id = ?", (release_id,)).fetchall()
    return {r[0]: {"title": r[1], "definition": json.loads(r[2]), "definition_digest": r[3],
                   "method": json.loads(r[4]), "method_digest": r[5]} for r in rows}


def _changed_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(set(a) | set(b))
    return "; ".join(f"{k}: {json.dumps(a.get(k), default=str)} -> {json.dumps(b.get(k), default=str)}"
                     for k in keys if a.get(k) != b.get(k))


@dataclass(frozen=True)
class ReleaseDiff:
    """What changed from release ``a`` to release ``b``.

    ``changes``: one row per indicator x level x unit x period whose status differs (or that
    appears or disappears), with ``change``, ``comparable`` and ``note``. ``indicators``: indicators
    added, removed, or with a changed definition or method. ``data``: each dataset's digest in both.
    """

    a: Release
    b: Release
    changes: pl.DataFrame
    indicators: pl.DataFrame
    data: pl.DataFrame

    def counts(self) -> dict[str, int]:
        c = self.changes.filter(pl.col("comparable"))["change"].value_counts()
        return {r["change"]: r["count"] for r in c.iter_rows(named=True)}

    def summary_lines(self) -> list[str]:
        lines = [f"{self.a.name}, recorded {readable_time(self.a.recorded_at)} -> {self.b.name}, recorded "
                 f"{readable_time(self.b.recorded_at)}"]
        if self.a.catalogue_digest != self.b.catalogue_digest:
            lines.append("catalogue changed")
        for r in self.data.filter(pl.col("status") != "unchanged").iter_rows(named=True):
            what = "extract changed" if r["changed"] else f"dataset {r['status']}"
            lines.append(f"{what}: {r['dataset']}")
        counts = self.counts()
        order = ["new alarm", "new alert", "escalated", "eased", "reversed", "resolved", "newly assessed",
                 "no longer assessed", "unit added", "unit removed"]
        parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
        lines.append("status changes: " + (", ".join(parts) if parts else "none"))
        for r in self.indicators.iter_rows(named=True):
            lines.append(f"indicator {r['indicator_id']}: {r['change']}" + (f" ({r['details']})" if r["details"] else ""))
        not_comparable = self.changes.filter(~pl.col("comparable")).height
        if not_comparable:
            lines.append(f"{not_comparable} status change(s) on indicators whose definition or method changed "
                         "are listed as not comparable")
        return lines

    def sheets(self) -> dict[str, pl.DataFrame]:
        """For export: the changes, the indicator changes and the two releases' provenance."""
        prov = pl.DataFrame([
            {"item": k, "release_a": str(getattr(self.a, k)), "release_b": str(getattr(self.b, k))}
            for k in ("release_id", "label", "recorded_at", "generated_at", "catalogue_path", "catalogue_digest")
        ] + [{"item": f"sha256 {r['dataset']}", "release_a": r["sha256_a"] or "", "release_b": r["sha256_b"] or ""}
             for r in self.data.iter_rows(named=True)])
        return {"changes": self.changes, "indicators": self.indicators, "releases": prov}


def _change(a: str | None, b: str | None) -> str:
    """Name the move from status a to status b (None: the row is absent in that release)."""
    if a is None:
        return "unit added"
    if b is None:
        return "unit removed"
    if a == "not_assessed":
        return "newly assessed" if b == "within" else ("new alarm" if "alarm" in b else "new alert")
    if b == "not_assessed":
        return "no longer assessed"
    ra, rb = FLAG_RANK[a], FLAG_RANK[b]
    if ra == 0:
        return "new alarm" if abs(rb) == 2 else "new alert"
    if rb == 0:
        return "resolved"
    if ra * rb < 0:
        return "reversed"
    return "escalated" if abs(rb) > abs(ra) else "eased"


def _direction(status: str | None, better: str | None) -> str | None:
    if status is None or status in ("within", "not_assessed"):
        return None
    high = status.endswith("high")
    if better == "lower":
        return "worse" if high else "better"
    if better == "higher":
        return "better" if high else "worse"
    return "higher" if high else "lower"


def diff_releases(store: str | Path, a: str | int | None = None, b: str | int | None = None) -> ReleaseDiff:
    """Compare two releases (default: the previous and the latest).

    Pooled rows (the whole reporting period) are matched with each other even when the period's
    label moved on (e.g. a year was added); rows for single periods are matched by label.
    """
    rel_a = resolve_release(store, a, default="previous")
    rel_b = resolve_release(store, b, default="latest")
    res_a, res_b = release_results(store, rel_a.release_id), release_results(store, rel_b.release_id)
    ind_a, ind_b = _indicators(store, rel_a.release_id), _indicators(store, rel_b.release_id)

    notes: dict[str, str] = {}
    rows = []
    for i in sorted(set(ind_a) | set(ind_b)):
        if i not in ind_a:
            rows.append({"indicator_id": i, "title": ind_b[i]["title"], "change": "added", "details": ""})
            continue
        if i not in ind_b:
            rows.append({"indicator_id": i, "title": ind_a[i]["title"], "change": "removed", "details": ""})
            continue
        for part in ("definition", "method"):
            if ind_a[i][f"{part}_digest"] != ind_b[i][f"{part}_digest"]:
                details = _changed_keys(ind_a[i][part], ind_b[i][part])
                rows.append({"indicator_id": i, "title": ind_b[i]["title"], "change": f"{part} changed",
                             "details": details})
                notes[i] = "; ".join(filter(None, [notes.get(i), f"{part} changed ({details})"]))
    indicators = pl.DataFrame(rows, schema={"indicator_id": pl.String, "title": pl.String, "change": pl.String,
                                            "details": pl.String})

    key = ["indicator_id", "level", "unit_code", "match_period"]

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.when(pl.col("pooled") == 1).then(pl.lit("(whole period)"))
                                  .otherwise(pl.col("period")).alias("match_period"))

    keep = ["unit_name", "period", "status", "value", "z", "observed", "denominator", "better"]
    joined = keyed(res_a).select(*key, *keep).join(
        keyed(res_b).select(*key, *keep), on=key, how="full", coalesce=True, suffix="_b")
    joined = joined.rename({c: f"{c}_a" for c in keep})
    both = set(ind_a) & set(ind_b)
    joined = joined.filter(pl.col("indicator_id").is_in(list(both)))
    moved = joined.filter(pl.col("status_a").is_null() | pl.col("status_b").is_null()
                          | (pl.col("status_a") != pl.col("status_b")))
    changes = []
    for r in moved.iter_rows(named=True):
        better = r["better_b"] or r["better_a"]
        change = _change(r["status_a"], r["status_b"])
        note = notes.get(r["indicator_id"])
        changes.append({
            "indicator_id": r["indicator_id"], "indicator_title": ind_b[r["indicator_id"]]["title"],
            "level": r["level"], "unit_code": r["unit_code"], "unit_name": r["unit_name_b"] or r["unit_name_a"],
            "period": r["period_b"] or r["period_a"], "status_a": r["status_a"], "status_b": r["status_b"],
            "change": change, "direction": _direction(r["status_b"] if r["status_b"] not in (None, "within")
                                                       else r["status_a"], better),
            "comparable": note is None, "note": ("not comparable: " + note) if note else "",
            "value_a": r["value_a"], "value_b": r["value_b"], "z_a": r["z_a"], "z_b": r["z_b"],
            "observed_a": r["observed_a"], "observed_b": r["observed_b"],
            "denominator_a": r["denominator_a"], "denominator_b": r["denominator_b"],
        })
    schema = {"indicator_id": pl.String, "indicator_title": pl.String, "level": pl.String, "unit_code": pl.String,
              "unit_name": pl.String, "period": pl.String, "status_a": pl.String, "status_b": pl.String,
              "change": pl.String, "direction": pl.String, "comparable": pl.Boolean, "note": pl.String,
              **{f"{c}_{s}": pl.Float64 for c in ("value", "z", "observed", "denominator") for s in "ab"}}
    level_order = {"trust": 0, "national": 9}
    changes_frame = pl.DataFrame(changes, schema=schema).sort(
        "indicator_id", pl.col("level").replace_strict(level_order, default=5, return_dtype=pl.Int64), "unit_code",
        "period")
    datasets = sorted(set(rel_a.data_digests) | set(rel_b.data_digests))
    data = pl.DataFrame({"dataset": datasets, "sha256_a": [rel_a.data_digests.get(d) for d in datasets],
                         "sha256_b": [rel_b.data_digests.get(d) for d in datasets]},
                        schema={"dataset": pl.String, "sha256_a": pl.String, "sha256_b": pl.String}
                        ).with_columns(
        pl.when(pl.col("sha256_a").is_null()).then(pl.lit("only in release b"))
        .when(pl.col("sha256_b").is_null()).then(pl.lit("only in release a"))
        .when(pl.col("sha256_a") != pl.col("sha256_b")).then(pl.lit("changed"))
        .otherwise(pl.lit("unchanged")).alias("status"),
        (pl.col("sha256_a") != pl.col("sha256_b")).fill_null(False).alias("changed"))
    return ReleaseDiff(rel_a, rel_b, changes_frame, indicators, data)


def new_since_last_release(store: str | Path) -> pl.DataFrame:
    """Flags (alerts and alarms) in the latest release that were not flagged, or flagged less, in the
    one before: the overview's "new since the last release" filter."""
    d = diff_releases(store)
    return d.changes.filter(pl.col("comparable"), pl.col("change").is_in(["new alarm", "new alert", "escalated",
                                                                          "reversed"]))


def readable_time(recorded_at: str) -> str:
    """A release's ISO time as people read it ('3 Dec 2026 06:54 UTC'); text that is not an ISO time as it is."""
    try:
        when = datetime.fromisoformat(recorded_at)
    except (TypeError, ValueError):
        return str(recorded_at)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when.day} {when:%b %Y %H:%M}" + (" UTC" if when.tzinfo is not None else "")
