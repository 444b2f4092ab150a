"""Counts a publisher withheld ('*', '..', '-', '[c]'): the rows are excluded as suppressed, not as 'not a whole
number ... a shared count such as 6.5? add fractional_counts: allow' (a real-data review of a Cancer Waiting Times
table with its small counts withheld). Oracle: the rows written below."""

from __future__ import annotations

from pathlib import Path

from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

UNITS = "code,name\n" + "".join(f"{c},Trust {c}\n" for c in "ABCDEFGHIJKL")


def _run(tmp_path: Path, rows: str):
    (tmp_path / "units.csv").write_text(UNITS, encoding="utf-8")
    (tmp_path / "t.csv").write_text("code,within,total\n" + rows, encoding="utf-8")
    (tmp_path / "cat.yaml").write_text("""version: 1
units: {file: units.csv, code: code, name: name}
datasets:
  t: {path: t.csv, aggregate: true, columns: {within: integer, total: integer}}
indicators:
  - {id: p, title: P, dataset: t, numerator: within, denominator: total, better: higher}
""", encoding="utf-8")
    return run_audit(load_catalogue(tmp_path / "cat.yaml"))


def test_withheld_counts_are_excluded_as_suppressed(tmp_path: Path) -> None:
    rows = "A,30,40\nB,*,5\nC,..,3\nD,18,-\nE,[c],52\nF,9,15\nG,22,30\nH,50,61\nI,14,19\nJ,35,47\nK,27,33\nL,abc,4\n"
    run = _run(tmp_path, rows)
    accounting = run.datasets["t"]
    by_reason = {e.reason: e for e in accounting.exclusions}
    suppressed = [e for r, e in by_reason.items() if r.startswith("count suppressed by the publisher")]
    assert sum(e.rows for e in suppressed) == 4  # B, C, D and E
    assert sorted(line for e in suppressed for line in e.examples) == [3, 4, 5, 6]
    other = [e for r, e in by_reason.items() if "fractional_counts" in r]
    assert [e.examples for e in other] == [(13,)]  # 'abc' is no mark
    assert accounting.rows_used == 7 and accounting.balanced


def test_a_date_column_on_counts_is_a_catalogue_problem(tmp_path: Path) -> None:
    """A review: date_column on a monthly table of counts passed validate, then the trend charts were silently
    unavailable."""
    import pytest

    from audit_metrics.exceptions import CatalogueError

    _run(tmp_path, "A,30,40\n")
    text = (tmp_path / "cat.yaml").read_text(encoding="utf-8").replace("aggregate: true,",
                                                                       "aggregate: true, date_column: total,")
    (tmp_path / "cat.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path / "cat.yaml")
    assert "monthly trend charts need one row per patient" in str(err.value.problems)
