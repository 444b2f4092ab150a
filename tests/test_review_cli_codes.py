"""Defects found by a new user's first hour with real published data (2026-12-03 review, /work/notes/newuser.md):

- ``--data NAME=PATH`` with a NAME that is no dataset was ignored (exit 0, results from the catalogue's own file);
- ``--out`` in a folder that does not exist was a traceback after the whole run;
- unit codes in lower case ("r0a" for the ODS code R0A) were excluded as unknown: a third of a published table lost.

Oracles: the published Cancer Waiting Times 62-day table in examples/ (its results with the codes as published),
and hand-made units files whose right answer is plain."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import DatasetSpec, load_catalogue
from audit_metrics.exceptions import CatalogueError
from audit_metrics.io import Units, load_all, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SHMI = ROOT / "examples" / "shmi" / "indicators.yaml"
CWT62 = ROOT / "examples" / "cwt_62_day" / "indicators.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_metrics.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.mark.parametrize(("name", "hint"), [("SHMI", "did you mean 'shmi'? (names are case-sensitive)"),
                                            ("nosuch", "its datasets are: shmi")])
@pytest.mark.parametrize("command", ["run", "outliers", "validate"])
def test_data_for_no_dataset_is_refused(tmp_path: Path, command: str, name: str, hint: str) -> None:
    out = ["--out", str(tmp_path / "x.csv")] if command != "validate" else []
    proc = _cli(command, str(SHMI), "--data", f"{name}={tmp_path / 'mine.csv'}", *out)
    assert proc.returncode == 1
    assert f"--data: no dataset named {name!r} in indicators.yaml" in proc.stderr and hint in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x.csv").exists()


def test_load_all_refuses_it_too_without_the_catalogue_check() -> None:
    loaded = load_catalogue(SHMI, check_data=False)
    with pytest.raises(CatalogueError) as err:
        load_all(loaded, data={"SHMI": "x.csv"})
    assert [p.file for p in err.value.problems] == ["--data"]


@pytest.mark.parametrize(("command", "option", "name"), [("run", "--out", "x.csv"), ("run", "--out", "x.xlsx"),
                                                         ("run", "--limits-out", "l.csv"),
                                                         ("outliers", "--out", "o.csv")])
def test_output_in_a_missing_folder_is_said_before_any_work(tmp_path: Path, command: str, option: str,
                                                            name: str) -> None:
    target = tmp_path / "nodir" / name
    args = [command, str(SHMI), option, str(target)]
    if option != "--out":
        args += ["--out", str(tmp_path / "r.csv")]
    proc = _cli(*args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{option} {target}: the folder {str(target.parent)!r} does not exist" in proc.stderr
    assert not (tmp_path / "r.csv").exists()  # refused before the run, not after it


def _lower_every_third(src: Path, dst: Path, column: str) -> int:
    """The published table with every third unit code in lower case (and some with spaces); how many changed."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    header_at = next(i for i, line in enumerate(lines) if column in line)
    rows = list(csv.reader(lines[header_at:]))
    at = rows[0].index(column)
    changed = 0
    for i, row in enumerate(rows[1:], start=1):
        if len(row) > at and row[at] and i % 3 == 0:
            row[at] = row[at].lower() + (" " if i % 2 else "")
            changed += 1
    with dst.open("w", newline="", encoding="utf-8") as fh:
        fh.writelines(lines[:header_at])
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return changed


def test_lower_case_codes_give_the_published_results(tmp_path: Path) -> None:
    loaded = load_catalogue(CWT62)
    spec = loaded.catalogue.datasets["cwt62"]
    column = spec.unit_column or loaded.catalogue.units.code
    messy = tmp_path / "cwt62_messy.csv"
    changed = _lower_every_third(loaded.dataset_path("cwt62"), messy, column)
    assert changed > 300
    clean = tmp_path / "clean.csv"
    mine = tmp_path / "mine.csv"
    for data, out in (({}, clean), ({"cwt62": str(messy)}, mine)):
        proc = _cli("run", str(CWT62), *[a for k, v in data.items() for a in ("--data", f"{k}={v}")], "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    assert mine.read_bytes() == clean.read_bytes()
    note = next(line for line in _cli("run", str(CWT62), "--data", f"cwt62={messy}", "--out", str(mine)).stdout
                .splitlines() if "ignoring upper and lower case" in line)
    assert "r0a→R0A" in note


def _units(codes: list[str], mergers: dict[str, str] | None = None) -> Units:
    frame = pl.DataFrame({"unit_code": codes, "unit_name": codes, "cancer_alliance": ["X"] * len(codes)})
    return Units(frame, ("cancer_alliance",), mergers or {})


@pytest.mark.parametrize(("units", "code", "kept_as"), [
    (_units(["R0A", "RQ8X"]), "r0a", "R0A"),
    (_units(["R0A", "RAJ"], {"RQ8": "RAJ"}), "rq8", "RAJ"),      # a merged (old) code in lower case
    (_units(["Ab", "AB"]), "ab", None),                            # two units differ by case only: still unknown
    (_units(["abc", "ABC"]), "abc", "abc"),                        # a code that is a unit is never changed
    (_units(["RK1"]), "R\u212a1", None),                             # Kelvin sign: no ASCII code, not folded
    (_units(["RSS1"]), "R\u00df1", None),                            # 'ß' folds to 'ss' in Unicode: not here
])
def test_case_folding_rules(tmp_path: Path, units: Units, code: str, kept_as: str | None) -> None:
    path = tmp_path / "x.csv"
    pl.DataFrame({"code": [code, code], "n": [1, 2]}).write_csv(path)
    ds = load_dataset("x", path, DatasetSpec(path="x.csv"), units, unit_column="code")
    if kept_as is None:
        assert ds.frame.height == 0 and "unknown unit code" in ds.accounting.exclusions[0].reason
    else:
        assert ds.frame["code"].to_list() == [kept_as, kept_as]
        assert any("ignoring upper and lower case" in n for n in ds.accounting.notes) == (kept_as != code)



@pytest.mark.parametrize("written", ["r0a", " R0A ", "r0A"])
def test_a_row_published_twice_with_its_code_written_differently_is_a_repeat(tmp_path: Path, written: str) -> None:
    """red17: the 62-day table with one row published again, its ORG CODE in lower case, counted that row twice
    (R0A 176/377.5 against 175/374.5), with no exclusion and no warning. The repeat is now excluded as a repeated
    key, and the results are the published table's."""
    loaded = load_catalogue(CWT62)
    column = loaded.catalogue.datasets["cwt62"].unit_column
    src = loaded.dataset_path("cwt62")
    text = src.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if ",R0A," in line)
    again = lines[at].replace(",R0A,", f",{written},", 1)
    path = tmp_path / "cwt62.csv"
    path.write_text("".join([*lines, again]), encoding="utf-8")
    clean, mine = tmp_path / "clean.csv", tmp_path / "mine.csv"
    assert _cli("run", str(CWT62), "--out", str(clean)).returncode == 0
    proc = _cli("run", str(CWT62), "--data", f"cwt62={path}", "--out", str(mine))
    assert proc.returncode == 0, proc.stderr
    assert mine.read_bytes() == clean.read_bytes()
    assert "1 excluded: repeated key" in proc.stdout and column == "ORG CODE"


def test_an_unwritable_workbook_is_a_message(tmp_path: Path) -> None:
    """red17: xlsxwriter's FileCreateError is no OSError: a workbook that could not be created (here a folder of
    that name; usually the file open in Excel) was a traceback after the whole run."""
    (tmp_path / "x.xlsx").mkdir()
    proc = _cli("run", str(SHMI), "--out", str(tmp_path / "x.xlsx"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error: cannot write the workbook" in proc.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a Linux device that is always full)")
def test_output_that_cannot_be_written_is_not_a_success() -> None:
    """red17: with the process leaving by os._exit, a full disk lost the output with exit 0."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "audit_metrics.cli", "validate", str(SHMI)], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode != 0 and "No space left on device" in proc.stderr and "Traceback" not in proc.stderr


def test_wide_hint_needs_a_period_in_the_names() -> None:
    """red17: with unit_column 'trust', the columns trust_code and trust_name were called one column per period."""
    from audit_metrics.io import missing_column_hint

    hint = missing_column_hint(Path("x.csv"), None, "trust", ["trust_code", "trust_name", "n"])
    assert "wide by period" not in hint and hint.startswith("did you mean 'trust_")
    assert "wide by period" not in missing_column_hint(Path("x.csv"), None, "died", ["died_90d", "died_1y", "died_2y"])
    assert "wide by period" in missing_column_hint(Path("x.csv"), None, "n", ["n 2023/24", "n 2024/25"])
    assert "wide by period" in missing_column_hint(Path("x.csv"), None, "n", ["n Q1 2023", "n Q2 2023"])
