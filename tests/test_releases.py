"""Releases (results store) and what changed between two of them.

Known truth: ``sample_trends.RELEASE_CHANGE`` (deaths linked late at one trust in the second extract)
lists every status change the diff must report; a changed method or definition must be reported as
such, and the status moves it causes marked not comparable.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from audit_metrics import releases
from audit_metrics.cli import main
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.sample_trends import RELEASE_CHANGE, make_monthly, second_release


def _run(project: Path, store: Path, label: str, *extra: str) -> None:
    out = project / f"{label}.csv"
    assert main(["run", "--indicators", str(project / "indicators.yaml"), "--out", str(out), "--record", str(store),
                 "--label", label, "--quiet", *extra]) == 0


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory, root: Path) -> tuple[Path, Path]:
    """The full sample recorded, then again with the second release's monthly extract."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(root / "indicators.yaml", project / "indicators.yaml")
    shutil.copytree(root / "sample_data", project / "sample_data")
    store = project / "releases.sqlite"
    _run(project, store, "2024-Q1")
    changed = project / "monthly_release2.parquet"
    second_release(make_monthly()).write_parquet(changed)
    _run(project, store, "2024-Q2", "--data", f"monthly_outcomes={changed}")
    return project, store


def test_diff_lists_exactly_the_planted_changes(two_releases) -> None:
    _, store = two_releases
    diff = releases.diff_releases(store)
    assert (diff.a.label, diff.b.label) == ("2024-Q1", "2024-Q2")
    got = {(r["level"], r["unit_code"], r["status_a"], r["status_b"]) for r in diff.changes.iter_rows(named=True)}
    assert got == set(RELEASE_CHANGE.expected_changes)
    assert set(diff.changes["indicator_id"]) == {"sact_mort30"}
    assert diff.changes["comparable"].all()
    assert diff.indicators.height == 0  # no definition or method changed
    assert diff.data.filter(pl.col("changed"))["dataset"].to_list() == ["monthly_outcomes"]
    assert diff.counts() == {"new alarm": 1, "new alert": 1}
    trust = diff.changes.filter(pl.col("level") == "trust").row(0, named=True)
    assert trust["observed_b"] - trust["observed_a"] == RELEASE_CHANGE.extra_deaths
    assert trust["direction"] == "worse"
    new = releases.new_since_last_release(store)
    assert new.height == 2


def test_diff_cli_prints_and_exports(two_releases, capsys: pytest.CaptureFixture[str]) -> None:
    project, store = two_releases
    out_csv, out_xlsx = project / "diff.csv", project / "diff.xlsx"
    assert main(["diff", "--store", str(store), "--out", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "extract changed: monthly_outcomes" in text and "1 new alarm, 1 new alert" in text
    assert f"sact_mort30 trust {RELEASE_CHANGE.trust_code}" in text
    assert pl.read_csv(out_csv).height == len(RELEASE_CHANGE.expected_changes)
    assert main(["diff", "2024-Q1", "2024-Q2", "--store", str(store), "--out", str(out_xlsx)]) == 0
    names = zipfile.ZipFile(io.BytesIO(out_xlsx.read_bytes())).namelist()
    assert {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml"} <= set(names)
    capsys.readouterr()
    assert main(["diff", "--list", "--store", str(store)]) == 0
    listed = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert listed["label"].to_list() == ["2024-Q1", "2024-Q2"] and (listed["indicators"] == 25).all()


def test_same_data_twice_gives_no_changes(two_releases) -> None:
    _, store = two_releases
    diff = releases.diff_releases(store, "2024-Q2", "latest")
    assert diff.changes.height == 0 and diff.indicators.height == 0


def test_method_change_is_not_mistaken_for_a_change_in_care(tmp_path: Path, root: Path) -> None:
    shutil.copy(root / "indicators.yaml", tmp_path / "indicators.yaml")
    shutil.copytree(root / "sample_data", tmp_path / "sample_data")
    store = tmp_path / "store.sqlite"
    _run(tmp_path, store, "before", "--indicator", "sact_mort30")
    cat = tmp_path / "indicators.yaml"
    text = cat.read_text()
    marker = "  - id: sact_mort30\n"
    assert marker in text
    cat.write_text(text.replace(marker, marker + "    limits: [0.8, 0.95]\n"))
    _run(tmp_path, store, "after", "--indicator", "sact_mort30")
    diff = releases.diff_releases(store)
    assert diff.indicators["change"].to_list() == ["method changed"]
    assert "limits: [0.95, 0.998] -> [0.8, 0.95]" in diff.indicators["details"][0]
    assert diff.changes.height > 0  # narrower limits flag more units ...
    assert not diff.changes["comparable"].any()  # ... but none of it is a change in care
    assert diff.changes["note"].str.starts_with("not comparable: method changed").all()
    assert diff.counts() == {}
    assert any("not comparable" in line for line in diff.summary_lines())


def test_definition_change_is_reported(tmp_path: Path, root: Path) -> None:
    shutil.copy(root / "indicators.yaml", tmp_path / "indicators.yaml")
    shutil.copytree(root / "sample_data", tmp_path / "sample_data")
    store = tmp_path / "store.sqlite"
    _run(tmp_path, store, "before", "--indicator", "sact_mort30")
    cat = tmp_path / "indicators.yaml"
    cat.write_text(cat.read_text().replace('cohort: "age >= 18"', 'cohort: "age >= 40"'))
    _run(tmp_path, store, "after", "--indicator", "sact_mort30")
    diff = releases.diff_releases(store)
    row = diff.indicators.row(0, named=True)
    assert row["change"] == "definition changed" and 'cohort: "age >= 18" -> "age >= 40"' in row["details"]


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("within", "alarm_high", "new alarm"), ("within", "alert_low", "new alert"),
    ("alert_high", "within", "resolved"), ("alert_high", "alarm_high", "escalated"),
    ("alarm_low", "alert_low", "eased"), ("alert_low", "alert_high", "reversed"),
    ("not_assessed", "within", "newly assessed"), ("not_assessed", "alarm_low", "new alarm"),
    ("within", "not_assessed", "no longer assessed"), (None, "within", "unit added"), ("within", None, "unit removed"),
])
def test_change_names(a: str | None, b: str | None, expected: str) -> None:
    assert releases._change(a, b) == expected


def test_store_problems_are_clear_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_store = tmp_path / "results.csv"
    not_a_store.write_text("a,b\n1,2\n")
    with pytest.raises(AuditMetricsError, match="not a results store"):
        releases.open_store(not_a_store)
    assert main(["diff", "--store", str(tmp_path / "missing.sqlite")]) == 1
    assert "no results store at" in capsys.readouterr().err
    empty = tmp_path / "empty.sqlite"
    releases.open_store(empty).close()
    assert main(["diff", "--store", str(empty)]) == 1
    assert "holds no releases yet" in capsys.readouterr().err


def test_unknown_release_and_duplicate_label(two_releases, capsys: pytest.CaptureFixture[str]) -> None:
    project, store = two_releases
    assert main(["diff", "2023-Q4", "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert "no release '2023-Q4'" in err and "2024-Q1" in err and "Traceback" not in err
    with pytest.raises(AuditMetricsError, match="already in"):
        from audit_metrics.catalogue import load_catalogue
        from audit_metrics.pipeline import run_audit

        loaded = load_catalogue(project / "indicators.yaml")
        releases.record_release(store, loaded, run_audit(loaded, only=["lung_cns"]), label="2024-Q1")
    assert releases.list_releases(store).height >= 2


def test_whole_period_rows_are_marked_pooled(two_releases) -> None:
    """Indicators reported by period too: only the whole-period row ("2021/22 to 2023/24") is pooled."""
    _, store = two_releases
    rows = releases.release_results(store, 1).filter(pl.col("indicator_id") == "bowel_emergency_dx")
    pooled = rows.filter(pl.col("pooled") == 1)["period"].unique().to_list()
    assert pooled == ["2021/22 to 2023/24"]
    assert set(rows["period"]) == {"2021/22", "2022/23", "2023/24", "2021/22 to 2023/24"}
    assert releases._whole_period(["2023/24"]) == "2023/24"


def test_summary_times_read_as_people_write_them() -> None:
    """'3 Dec 2026 06:54 UTC', not '2026-12-03T06:54:51+00:00' (screenshot review); not-a-time text kept."""
    assert releases.readable_time("2026-12-03T06:54:51+00:00") == "3 Dec 2026 06:54 UTC"
    assert releases.readable_time("2026-12-03T07:54:51+01:00") == "3 Dec 2026 06:54 UTC"
    assert releases.readable_time("yesterday") == "yesterday"
