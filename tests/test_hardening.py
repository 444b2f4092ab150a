"""Hostile and broken inputs end safely: a located problem or a clean exclusion, never a hang or traceback.

Each test reproduces one attack from issue #15 at a size that runs in well under a second once the
defence is in place (bounds are parameters, so the tests use small ones where a real attack needs a
large file). The timings and memory the attacks took before the fix are in the issue's note.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import io
import json
import os
import re
import stat
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hostile.corpus import Variant, all_variants, base_project
from hostile.markup import HOSTILE_NAMES, hostile_project, live_markup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_metrics.catalogue import (
    DatasetSpec,
    YamlLimits,
    catalogue_version,
    load_catalogue,
    parse_catalogue,
    save_catalogue_text,
)
from audit_metrics.cli import main
from audit_metrics.exceptions import (
    CatalogueConflict,
    CatalogueError,
    CatalogueSaveError,
    ExtractError,
)
from audit_metrics.expressions import ExpressionProblem, compile_expression
from audit_metrics.io import ReadLimits, Units, load_all, load_dataset, read_extract, read_mergers
from audit_metrics.pipeline import AuditRun, run_audit

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "tests" / "catalogues" / "_base.yaml").read_text()


def _problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, file="cat.yaml", **kw)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


# --------------------------------------------------------------------------------------------
# item 2: denial of service from one catalogue


def _alias_bomb(levels: int) -> str:
    """A 'billion laughs' catalogue: each level repeats the previous one nine times (9**levels values)."""
    lines = ['bomb0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"bomb{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "version: 1\n" + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_its_line_without_expanding() -> None:
    """Before: 6 levels took 0.7 s and each level multiplied the time by ~8 (9 levels: minutes)."""
    text = _alias_bomb(9)  # 387 million values once expanded
    start = time.perf_counter()
    problems = _problems(text)
    elapsed = time.perf_counter() - start
    assert len(problems) == 1, problems
    # *a4 stands for 66,430 values (9**5 strings and their lists), so bomb5's (line 7) third alias passes
    # the bound of 200,000
    assert problems[0].startswith("cat.yaml:7: the catalogue expands to more than 200,000 values at alias *a4")
    print(f"alias bomb refused in {elapsed:.3f} s")  # no timing assertion: without the bound this never ends


def test_modest_aliases_are_still_allowed() -> None:
    text = BASE.replace("defaults:\n  limits: [0.95, 0.998]", "defaults:\n  limits: &lim [0.95, 0.998]")
    text = text.replace("    better: higher", "    better: higher\n    limits: *lim")
    loaded = parse_catalogue(text, file="cat.yaml")
    assert loaded.options(loaded.indicator("lung_cns")).limits == (0.95, 0.998)


def test_recursive_alias_is_refused() -> None:
    """PyYAML builds a self-containing list from '&a [*a]'; walking it never ended (RecursionError)."""
    assert _problems("version: 1\nx: &a [1, *a]\n") == [
        "cat.yaml:2: alias *a refers to the value that contains it "
        "(hint: a recursive value never ends; write the setting out instead)"]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_a_located_problem_not_a_recursion_error(style: str) -> None:
    """Before: 1,000 levels of brackets gave a RecursionError traceback."""
    if style == "flow":
        text = "version: 1\nx: " + "[" * 1000 + "]" * 1000 + "\n"
        line = 2
    else:
        text = "version: 1\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 1000))
        line = 42  # line L opens level L - 1 (the root mapping is level 1, x's list on line 3 level 2)
    problems = _problems(text)
    assert len(problems) == 1
    assert problems[0].startswith(f"cat.yaml:{line}: nesting deeper than 40 levels")


def test_oversized_catalogue_is_refused_before_parsing(tmp_path: Path) -> None:
    limits = YamlLimits(max_bytes=len(BASE.encode()) - 1)
    assert _problems(BASE, limits=limits)[0].startswith(
        f"cat.yaml:1: the catalogue is {len(BASE.encode()):,} bytes, more than the limit of")
    path = tmp_path / "indicators.yaml"
    path.write_text(BASE)
    with pytest.raises(CatalogueError, match="more than the limit"):
        load_catalogue(path, limits=limits, check_data=False)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_catalogue_from_a_device_is_refused() -> None:
    """Before: read_text('/dev/zero') grew until memory ran out."""
    with pytest.raises(CatalogueError) as info:
        load_catalogue("/dev/zero")
    assert "not a regular file" in str(info.value)


def _or_chain(n: int) -> str:
    return " OR ".join(f"age = {i}" for i in range(n))


def test_long_or_chain_is_refused_before_parsing() -> None:
    """Before: checking a 3,000-term OR took 30.6 s and 2.9 GB (the pipeline then did it again);
    10,000 terms crashed the Streamlit server (SIGSEGV)."""
    start = time.perf_counter()
    with pytest.raises(ExpressionProblem) as info:
        compile_expression(_or_chain(10_000), {"age": pl.Int64})
    print(f"10,000-term OR refused in {time.perf_counter() - start:.3f} s")
    assert "138,886 characters long, more than the limit of 20,000" in info.value.message
    with pytest.raises(ExpressionProblem) as info:
        compile_expression(_or_chain(1_000), {"age": pl.Int64})  # before: 1.7 s to check
    assert "1,999 operators" in info.value.message and "limit of 200" in info.value.message


def test_expression_bounds_count_operators_not_list_items() -> None:
    schema = {"age": pl.Int64, "code": pl.String}
    compile_expression(_or_chain(100), schema)  # 199 operators: allowed
    with pytest.raises(ExpressionProblem, match="201 operators"):
        compile_expression(_or_chain(101), schema)
    # a long IN list is one operator; quoted text is not scanned for operators
    codes = ", ".join(f"'C{i:02d}-x = y OR z'" for i in range(500))
    compile_expression(f"code IN ({codes})", schema)
    with pytest.raises(ExpressionProblem, match="characters long, more than the limit of 100"):
        compile_expression(f"code IN ({codes})", schema, max_length=100)


def test_long_expression_in_catalogue_is_located(tmp_path: Path) -> None:
    text = BASE.replace("cohort: \"tumour_site = 'Bowel' AND major_resection\"",
                        f"cohort: \"{_or_chain(1000)}\"")
    (tmp_path / "cat").mkdir()
    path = tmp_path / "cat" / "indicators.yaml"
    path.write_text(text.replace("../../sample_data", str(ROOT / "sample_data")))
    start = time.perf_counter()
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    elapsed = time.perf_counter() - start
    messages = [str(p) for p in info.value.problems]
    assert messages == [f"{path}:21: bowel_mort90.cohort: expression has 1,999 operators (AND, OR, =, ...), "
                        "more than the limit of 200 (hint: list values with IN ('a', 'b', ...), or derive a "
                        "true/false column in the extract)"]
    print(f"catalogue with a 1,000-term cohort refused in {elapsed:.2f} s (mostly reading the sample data)")


# --------------------------------------------------------------------------------------------
# item 2: denial of service from one extract (only regular files; workbooks bounded before reading)


def _xlsx(tmp_path: Path, rows: int = 3, big_cell: int = 0, name: str = "x.xlsx") -> Path:
    """A workbook written by polars; optionally one shared string replaced by ``big_cell`` characters."""
    frame = pl.DataFrame({"code": ["A01", "B02", "PLACEHOLDER", *(["A01"] * (rows - 3))],
                          "period": ["2023/24"] * rows, "num": [1] * rows, "den": [10] * rows})
    plain = tmp_path / f"plain_{name}"
    frame.write_excel(plain)
    if not big_cell:
        return plain
    path = tmp_path / name
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/sharedStrings.xml":
                data = data.replace(b"PLACEHOLDER", b"x" * big_cell)
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return path


def test_xlsx_with_a_huge_cell_is_refused_before_reading(tmp_path: Path) -> None:
    """Before: a 1 MB workbook holding one 1 GB cell drove the server to 11.9 GB for 138 s, then was accepted.
    Here a 20 MB cell (a 20 kB file) against the default bounds."""
    path = _xlsx(tmp_path, big_cell=20_000_000)
    assert path.stat().st_size < 100_000
    start = time.perf_counter()
    with pytest.raises(ExtractError) as info:
        read_extract(path)
    print(f"20 MB cell refused in {time.perf_counter() - start:.3f} s")
    assert str(info.value) == (
        f"{path}: xl/sharedStrings.xml holds a value longer than 200,000 bytes (Excel's own limit is 32,767 "
        "characters a cell) (hint: remove the oversized cell, or save the extract as CSV)")


def test_xlsx_bounds_unpacked_size_and_rows(tmp_path: Path) -> None:
    ok = _xlsx(tmp_path, rows=20)
    assert read_extract(ok).height == 20  # within every default bound
    with pytest.raises(ExtractError, match=r"has more than 10 rows \(hint: save the extract as CSV or Parquet\)"):
        read_extract(ok, limits=ReadLimits(max_rows=10))
    unpacked = sum(i.file_size for i in zipfile.ZipFile(ok).infolist())
    with pytest.raises(ExtractError, match=r"the workbook unpacks to 0\.0 MB, more than the limit of 0\.0 MB"):
        read_extract(ok, limits=ReadLimits(max_xlsx_unpacked=unpacked - 1))
    # the bound is on the bytes between two '<' in the XML: a cell's text plus the 't>' of its tag
    small = ReadLimits(max_cell_bytes=1000)
    with pytest.raises(ExtractError, match=r"sharedStrings\.xml holds a value longer than 1,000 bytes"):
        read_extract(_xlsx(tmp_path, big_cell=999, name="y.xlsx"), limits=small)
    longest = read_extract(_xlsx(tmp_path, big_cell=998, name="z.xlsx"), limits=small)["code"].str.len_chars().max()
    assert longest == 998


def test_xlsx_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    with pytest.raises(ExtractError, match=r"not a readable Excel workbook \(not an .xlsx file\)"):
        read_extract(path)


def test_xlsx_with_a_false_declared_size_is_refused(tmp_path: Path) -> None:
    """A zip entry that claims to be small but inflates further fails the CRC check in the scan."""
    path = _xlsx(tmp_path, big_cell=5000, name="lie.xlsx")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as book:
        info = book.getinfo("xl/sharedStrings.xml")
    # shrink the declared uncompressed size in the central directory record of that entry
    name = b"xl/sharedStrings.xml"
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(name))
    data[central + 24:central + 28] = (info.file_size // 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ExtractError, match="the workbook is damaged"):
        read_extract(path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_device_as_dataset_is_refused(tmp_path: Path, suffix: str) -> None:
    """Before: a dataset path that was /dev/zero (here a link to it named like an extract) read until
    memory ran out."""
    link = tmp_path / f"extract{suffix}"
    link.symlink_to("/dev/zero")
    with pytest.raises(ExtractError) as info:
        read_extract(link)
    assert str(info.value) == (f"{link}: is a device, not a regular file "
                               "(hint: give the path of the extract file itself)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipe_as_dataset_is_refused_without_blocking(tmp_path: Path) -> None:
    """Before: opening a FIFO waited for a writer forever."""
    fifo = tmp_path / "extract.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(_raises(read_extract, fifo)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a pipe blocked"
    assert isinstance(outcome[0], ExtractError) and "is a pipe, not a regular file" in str(outcome[0])


def test_folder_as_catalogue_or_dataset(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="is a folder, not a regular file"):
        read_extract(tmp_path / ".", DatasetSpec(path=".", format="csv"))
    with pytest.raises(CatalogueError, match="not a regular file"):
        load_catalogue(tmp_path)


def _raises(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        return exc
    return AssertionError("no error")


# --------------------------------------------------------------------------------------------
# items 5 and 8: broken CSV files give short, located messages


def _csv(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unterminated_quote_is_located_and_short(tmp_path: Path) -> None:
    """Before: polars' error quoted the rest of the file (227 kB here, 110 kB in the red-team run)."""
    lines = ["code,period,num,den", *[f"A01,2023/24,{i},{i + 10}" for i in range(5000)]]
    lines[101] = 'A01,"2023/24,3,10'
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ExtractError) as info:
        read_extract(path)
    message = str(info.value)
    assert message.startswith(f"{path}:102: a double quote opened on this line is never closed")
    assert len(message) < 300


def test_ragged_line_is_located(tmp_path: Path) -> None:
    path = _csv(tmp_path, "code,period,num,den\nA01,2023/24,3,10\nB02,2023/24,4,12,99\n")
    with pytest.raises(ExtractError) as info:
        read_extract(path)
    assert str(info.value) == (f"{path}:3: line has 5 fields but the header has 4 (hint: a text value with a "
                               "comma needs double quotes around it; or remove the extra separators)")


def test_blank_header_line(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match=r"x.csv:1: the first line \(the header\) is blank"):
        read_extract(_csv(tmp_path, "\ncode,period\nA01,2023/24\n"))


def test_utf8_checked_in_chunks_across_a_boundary(tmp_path: Path) -> None:
    """The streaming UTF-8 check accepts a character split across two chunks and locates a bad byte."""
    head = "code,name\n" + "A01," + "x" * ((1 << 20) - 15) + "\n"
    path = tmp_path / "x.csv"
    path.write_bytes((head + "B02,Ysbyty Gwynedd é\n").encode())  # 'é' straddles the 1 MiB boundary or not
    assert read_extract(path).height == 2
    path.write_bytes(head.encode() + b"B02,caf\xe9\n")
    with pytest.raises(ExtractError, match=r"x.csv:3: not UTF-8 text"):
        read_extract(path)


# --------------------------------------------------------------------------------------------
# item 3: mergers are checked, chains followed (and item 6: units without a group or with bad counts)

CODES = {"A01", "B02", "C03"}


def _mergers(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mergers.csv"
    path.write_text("old_code,new_code,merged_on\n" + body)
    return path


def _merger_problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ExtractError) as info:
        read_mergers(_mergers(tmp_path, body), CODES, units_file="trusts.csv")
    return [str(p).split(": ", 1)[1] if p.line is None else str(p).split("mergers.csv:", 1)[1]
            for p in info.value.problems]


def test_merger_cycle_is_refused_with_its_codes_and_lines(tmp_path: Path) -> None:
    """Before: A->B with B->A silently swapped the two units' data."""
    assert _merger_problems(tmp_path, "X1,X2,2022-04-01\nX2,X1,2022-04-01\n") == [
        "2: [column 'new_code'] mergers form a cycle X1 -> X2 -> X1 (lines 2, 3): applying them would swap "
        "the units' data (hint: a merger points from the old code to the surviving one; delete the line that "
        "points backwards)"]
    three = _merger_problems(tmp_path, "A01,B02,x\nB02,C03,x\nC03,A01,x\n")
    assert len(three) == 1 and "cycle A01 -> B02 -> C03 -> A01 (lines 2, 3, 4)" in three[0]


def test_merger_chain_is_followed_to_the_surviving_unit(tmp_path: Path) -> None:
    """Before: X1->X2, X2->C03 left X1's rows under X2, which is not a unit (so they were dropped)."""
    assert read_mergers(_mergers(tmp_path, "X1,X2,2019\nX2,C03,2022\n"), CODES) == {"X1": "C03", "X2": "C03"}


@pytest.mark.parametrize(("body", "expected"), [
    # before: the last line silently won
    ("X1,A01,x\nX1,B02,x\n", "3: [column 'old_code'] old code 'X1' is merged into both 'A01' (line 2) and 'B02'"),
    # before: the patients vanished from the results while the accounting counted them as used
    ("X1,,x\n", "2: [column 'new_code'] new_code is blank (line 2)"),
    (",A01,x\n", "2: [column 'old_code'] old_code is blank (line 2)"),
    ("X1,X1,x\n", "2: [column 'new_code'] 'X1' is merged into itself"),
    ("X1,Z99,x\n", "2: [column 'new_code'] 'X1' is merged into 'Z99', which is not a unit in trusts.csv"),
    ("X1,X2,x\nX2,Z99,x\n", "3: [column 'new_code'] 'X1' (and 1 other old code) is merged into 'Z99' (via X2), "
                            "which is not a unit"),
    ("A01,B02,x\n", "2: [column 'old_code'] old code 'A01' is still a unit in trusts.csv"),
])
def test_merger_mistakes_are_located(tmp_path: Path, body: str, expected: str) -> None:
    problems = _merger_problems(tmp_path, body)
    assert any(p.startswith(expected) for p in problems), problems


def test_merger_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    problems = _merger_problems(tmp_path, "X1,,x\nX2,Z99,x\nX3,X4,x\nX4,X3,x\nX5,A01,x\nX5,B02,x\n")
    assert [p.split(":", 1)[0] for p in problems] == ["2", "3", "4", "7"]


def test_identical_duplicate_merger_and_spaced_codes_are_accepted(tmp_path: Path) -> None:
    """Before: ' X1 ' (spaces around the code) was silently not merged."""
    assert read_mergers(_mergers(tmp_path, " X1 , C03 ,x\nX1,C03,x\n"), CODES) == {"X1": "C03"}


def test_mergers_reach_the_data_and_the_accounting_balances(tmp_path: Path) -> None:
    units = Units(pl.DataFrame({"unit_code": sorted(CODES), "unit_name": ["A", "B", "C"]}), (),
                  read_mergers(_mergers(tmp_path, "X1,X2,2019\nX2,C03,2022\n"), CODES))
    path = tmp_path / "agg.csv"
    path.write_text("code,num,den\nA01,1,10\n X1 ,2,10\nX2,3,10\nZ99,4,10\n,5,10\n")
    ds = load_dataset("agg", path, DatasetSpec(path="agg.csv"), units, unit_column="code",
                      count_columns=["num", "den"])
    assert ds.frame.sort("num")["code"].to_list() == ["A01", "C03", "C03"]
    assert ds.accounting.balanced and ds.accounting.rows_read == 5
    assert {e.reason: e.examples for e in ds.accounting.exclusions} == {
        "unknown unit code in code": (5,), "missing unit code (code)": (6,)}
    assert ds.accounting.notes == (
        "1 unit code(s) in code are not in the units file: Z99 (1 row); add them to the units file, or map old "
        "codes to current ones under units: mergers:",
        "2 rows recoded from a merged unit code (X1→C03, X2→C03)")


def test_integer_unit_codes_with_mergers_do_not_crash(tmp_path: Path) -> None:
    """Before: an integer unit column (Parquet) with a mergers file raised a polars type error."""
    units = Units(pl.DataFrame({"unit_code": ["101", "102"], "unit_name": ["A", "B"]}), (), {"100": "101"})
    path = tmp_path / "agg.parquet"
    pl.DataFrame({"code": [100, 101, 102], "num": [1, 2, 3], "den": [10, 10, 10]}).write_parquet(path)
    ds = load_dataset("agg", path, DatasetSpec(path="agg.parquet"), units, unit_column="code",
                      count_columns=["num", "den"])
    assert ds.frame["code"].to_list() == ["101", "101", "102"] and ds.accounting.balanced


def _project(project_copy: Path, units: str | None = None, mergers: str | None = None) -> Path:
    data = project_copy / "sample_data"
    if units is not None:
        (data / "trusts.csv").write_text(units)
    if mergers is not None:
        (data / "trust_mergers.csv").write_text(mergers)
    return project_copy / "indicators.yaml"


def test_validate_reports_a_merger_cycle_at_its_line(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _project(project_copy, mergers="old_code,new_code,merged_on\nZQ9,ZN0,2022-04-01\nZA0,ZA1,x\nZA1,ZA0,x\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    mergers = project_copy / "sample_data" / "trust_mergers.csv"
    assert f"{mergers}:3: [column 'new_code'] mergers form a cycle ZA0 -> ZA1 -> ZA0 (lines 3, 4)" in err
    assert "Traceback" not in err


def test_units_without_a_group_or_with_bad_expected_cases(project_copy: Path) -> None:
    """Before: a blank alliance made a phantom blank alliance that was assessed; 'n/k' expected cases
    were accepted (as missing)."""
    units_path = project_copy / "sample_data" / "trusts.csv"
    lines = units_path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("cancer_alliance")] = " "
    lines[3] = ",".join(row)
    row = lines[5].split(",")
    row[header.index("hes_expected_cases")] = "n/k"
    lines[5] = ",".join(row)
    path = _project(project_copy, units="\n".join(lines) + "\n")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    problems = [str(p) for p in info.value.problems]
    assert f"{units_path}:4: [column 'cancer_alliance'] 1 unit(s) have no cancer_alliance (line 4) " \
           "(hint: fill in cancer_alliance for every unit)" in problems
    assert any(p.startswith(f"{units_path}:6: [column 'hes_expected_cases'] hes_expected_cases is not a "
                            "non-negative number (e.g. 'n/k'; line 6)") for p in problems), problems


# --------------------------------------------------------------------------------------------
# item 4: editors do not lose work (optimistic concurrency, permissions kept, clean failure)


def _catalogue_file(tmp_path: Path, mode: int = 0o644) -> Path:
    path = tmp_path / "indicators.yaml"
    path.write_text("version: 1\n")
    path.chmod(mode)
    return path


def test_second_editor_from_the_same_version_is_refused(tmp_path: Path) -> None:
    """Before: the second save silently replaced the first editor's change."""
    path = _catalogue_file(tmp_path)
    version, text = catalogue_version(path)
    save_catalogue_text(path, text + "# editor A\n", expected_version=version)
    with pytest.raises(CatalogueConflict) as info:
        save_catalogue_text(path, text + "# editor B\n", expected_version=version)
    assert "was changed by someone else" in str(info.value) and "your edit was not saved" in str(info.value)
    assert info.value.current_text == "version: 1\n# editor A\n"
    assert path.read_text() == "version: 1\n# editor A\n"


def test_concurrent_saves_lose_no_edit(tmp_path: Path) -> None:
    """Before: of 200 concurrent saves, 55 were lost. Here 8 threads make 120 saves, each re-reading
    the file and retrying when told it changed; every edit must be in the final file."""
    path = _catalogue_file(tmp_path)
    conflicts = []

    def editor(worker: int) -> None:
        for i in range(15):
            while True:
                version, text = catalogue_version(path)
                try:
                    save_catalogue_text(path, text + f"# {worker}-{i}\n", expected_version=version)
                    break
                except CatalogueConflict:
                    conflicts.append(1)

    threads = [threading.Thread(target=editor, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    lines = path.read_text().splitlines()
    assert sorted(lines[1:]) == sorted(f"# {w}-{i}" for w in range(8) for i in range(15))
    assert len(list(tmp_path.glob("indicators.yaml.bak.*"))) == 120
    assert not list(tmp_path.glob("*.tmp"))
    print(f"{len(conflicts)} saves refused and retried")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o664])
def test_save_keeps_the_file_mode(tmp_path: Path, mode: int) -> None:
    """Before: a save changed 0644 to 0600 (the temporary file's mode)."""
    path = _catalogue_file(tmp_path, mode)
    version, text = catalogue_version(path)
    backup = save_catalogue_text(path, text + "# x\n", expected_version=version)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE(backup.stat().st_mode) == mode
    assert backup.read_text() == "version: 1\n"


@pytest.mark.parametrize(("failing_call", "code", "why"), [
    (1, errno.ENOSPC, "the disk is full"),   # writing the backup
    (2, errno.ENOSPC, "the disk is full"),   # writing the new version
    (2, errno.EROFS, "is read-only for this server"),
])
def test_failed_save_leaves_catalogue_and_folder_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int, code: int, why: str) -> None:
    """Before: a full or read-only disk gave a traceback and could leave a truncated .bak and an orphan .tmp."""
    path = _catalogue_file(tmp_path)
    version, text = catalogue_version(path)
    real_fsync = os.fsync
    calls = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing_call:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(CatalogueSaveError) as info:
        save_catalogue_text(path, text + "# x\n", expected_version=version)
    assert str(info.value).startswith("indicators.yaml was not saved: ") and why in str(info.value)
    assert "download your edit" in str(info.value)
    assert path.read_text() == "version: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".indicators.yaml.lock", "indicators.yaml"]


def test_two_dashboard_editors_second_save_refused_with_diff(project_copy: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(project_copy / "indicators.yaml"))
    path = project_copy / "indicators.yaml"
    original = path.read_text()

    def session() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.query_params["view"] = "Indicator catalogue"
        return at.run()

    first, second = session(), session()
    mine = original.replace("limits: [0.95, 0.998]", "limits: [0.9, 0.998]", 1)
    theirs = original.replace("min_denominator: 10", "min_denominator: 12", 1)
    assert mine != original and theirs != original
    first.text_area(key="cat_text").set_value(theirs).run()
    first.button(key="cat_save").click().run()
    assert path.read_text() == theirs
    second.text_area(key="cat_text").set_value(mine).run()
    second.button(key="cat_save").click().run()
    assert not second.exception
    assert path.read_text() == theirs  # the first editor's change survives
    error = " ".join(e.value for e in second.error)
    assert "was changed by someone else" in error and "Your edit is still below" in error
    diff = " ".join(c.value for c in second.code)
    assert "-  min_denominator: 12" in diff and "+  min_denominator: 10" in diff
    assert "+  limits: [0.9, 0.998]" in diff
    second.button(key="cat_restart").click().run()
    assert second.text_area(key="cat_text").value == theirs
    second.text_area(key="cat_text").set_value(theirs.replace("limits: [0.95, 0.998]", "limits: [0.9, 0.998]", 1)).run()
    second.button(key="cat_save").click().run()
    assert "limits: [0.9, 0.998]" in path.read_text() and "min_denominator: 12" in path.read_text()


# --------------------------------------------------------------------------------------------
# items 5 and 6: what validates runs, one row at a time, without wrapping or NaN surprises

SCHEMA = {"tiny": pl.Int8(), "n": pl.Int64(), "x": pl.Float64(), "s": pl.String(), "d": pl.Date(),
          "b": pl.Boolean()}
# values the validator's own probe does not use, so this is an independent check
AWKWARD = pl.DataFrame({"tiny": [120, -100, 3, None], "n": [2**62, -(2**61), 7, None],
                        "x": [float("nan"), -0.0, 3e200, None], "s": ["x1", " 7 ", "NaN", None],
                        "d": [dt.date(2021, 3, 4), dt.date(1, 1, 1), None, dt.date(9999, 12, 31)],
                        "b": [True, False, None, True]}, schema=SCHEMA)


@pytest.mark.parametrize(("text", "message"), [
    # before: these validated, then failed when the audit ran
    ("CAST(s AS INTEGER) > 3", "CAST/:: from String to Int32 fails at run time"),
    ("s::int > 3", "CAST/:: from String to Int32 fails at run time"),
    ("n::smallint > 3", "CAST/:: from Int64 to Int16 fails at run time"),  # 2**62 does not fit
    ("STRPTIME(s, '%Y') > d", "reading text as a date (DATE(), STRPTIME) fails"),
    ("DATE(s) > d", "reading text as a date (DATE(), STRPTIME) fails"),
    ("LEFT(s, x) = 'a'", "fails at run time on some values of these column types"),
    # before: these validated and compared each patient with the whole extract (or the row order)
    ("n > AVG(n)", "aggregate functions (COUNT, SUM, AVG, MIN, MAX, FIRST ...) summarise the whole extract"),
    ("COUNT(*) > 1", "aggregate functions"),
    ("n > MAX(n) OVER ()", "aggregate functions"),
    ("MEDIAN(x) > 0", "aggregate functions"),
    ("ROW_NUMBER() OVER () > 1", "row numbers and ranges depend on the order of the extract"),
    ("UNNEST(n) > 1", "UNNEST changes the number of rows"),
])
def test_expressions_that_would_fail_or_look_at_other_rows_are_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionProblem) as info:
        compile_expression(text, SCHEMA)
    assert message in info.value.message and info.value.hint


@pytest.mark.parametrize(("text", "expected"), [
    # before: Int8 arithmetic wrapped (120 + 120 = -16, so 'tiny + tiny > 0' was false for 120)
    ("tiny + tiny > 0", [True, False, True, None]),
    ("tiny * tiny * tiny > 1000000", [True, False, False, None]),
    ("n * 1000 > 0", [True, False, True, None]),  # 2**62 * 1000 wrapped to a negative Int64
    ("POWER(n, tiny) > 0", [True, False, True, None]),
    # safe conversions and ordinary conditions still work
    ("CAST(n AS DOUBLE) > 5", [True, False, True, None]),
    ("tiny::int8 = 3", [False, False, True, None]),  # INT8 is PostgreSQL's 8-byte integer
    ("CAST(n AS VARCHAR) = '7'", [False, False, True, None]),
    ("NOT b", [False, True, None, False]),
    ("s LIKE 'x%' OR d >= DATE '2021-01-01'", [True, False, None, True]),
])
def test_row_conditions_give_the_arithmetic_answer(text: str, expected: list[bool | None]) -> None:
    """Oracle: exact integer arithmetic in Python on the same four rows."""
    assert AWKWARD.select(compile_expression(text, SCHEMA).alias("r"))["r"].to_list() == expected


def test_nan_and_infinity_are_excluded_at_load_not_compared(tmp_path: Path) -> None:
    """Before: NaN passed 'x >= 3' (polars orders NaN above every number) and 'inf' was a valid value."""
    units = Units(pl.DataFrame({"unit_code": ["A01"], "unit_name": ["A"]}), ())
    path = tmp_path / "p.csv"
    path.write_text("code,x\nA01,5\nA01,NaN\nA01,inf\nA01,-Infinity\nA01,2\nA01,\n")
    ds = load_dataset("p", path, DatasetSpec(path="p.csv", columns={"x": "float"}), units, unit_column="code")
    assert ds.frame["x"].to_list() == [5.0, 2.0, None]
    assert {e.reason: e.examples for e in ds.accounting.exclusions} == {
        "value is not a number in column 'x'": (3, 4, 5)}
    parquet = tmp_path / "p.parquet"
    pl.DataFrame({"code": ["A01"] * 4, "x": [5.0, float("nan"), float("inf"), None]}).write_parquet(parquet)
    ds = load_dataset("p", parquet, DatasetSpec(path="p.parquet"), units, unit_column="code")
    assert ds.frame["x"].to_list() == [5.0, None] and ds.accounting.balanced
    assert {e.reason: e.examples for e in ds.accounting.exclusions} == {
        "value is not a finite number in column 'x'": (2, 3)}
    assert ds.frame.filter(compile_expression("x >= 3", ds.frame.schema))["x"].to_list() == [5.0]


def test_suppression_range_must_not_be_empty() -> None:
    """Before: {min_count: 8, max_count: 1} validated and suppressed nothing."""
    text = BASE.replace("  min_denominator: 10\n", "  min_denominator: 10\n  suppression: {min_count: 8, max_count: 1}\n")
    problems = _problems(text)
    assert any(p.startswith("cat.yaml:16: defaults.suppression: min_count (8) is greater than max_count (1), so "
                            "nothing would be suppressed") for p in problems), problems


_COLUMNS = st.sampled_from(list(SCHEMA))
_LITERALS = st.sampled_from(["0", "1", "127", "9223372036854775807", "1e308", "-2.5", "'abc'", "'12'", "''",
                             "DATE '2020-01-01'", "TRUE", "NULL"])
_TYPES = st.sampled_from(["INTEGER", "INT8", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "BOOLEAN", "FLOAT"])
_FUNCTIONS = st.sampled_from(["UPPER", "LENGTH", "ABS", "SQRT", "LN", "ROUND", "DATE", "COUNT", "SUM", "AVG", "MAX",
                              "FIRST", "UNNEST", "CEIL", "SIGN", "REVERSE", "LTRIM", "INITCAP", "EXP"])
_PAIRS = st.sampled_from(["COALESCE", "NULLIF", "POWER", "SUBSTR", "LEFT", "STRPOS", "STRPTIME"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "||"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, _TYPES).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
        st.tuples(inner, _TYPES).map(lambda t: f"{t[0]}::{t[1]}"),
        st.tuples(_FUNCTIONS, inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(_PAIRS, inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE NULL END"),
    )


_VALUES = st.recursive(st.one_of(_COLUMNS, _LITERALS), _extend, max_leaves=5)
_CONDITIONS = st.one_of(
    st.tuples(_VALUES, st.sampled_from(["=", "<>", "<", ">=", "LIKE", "~"]), _VALUES).map(" ".join),
    st.tuples(_VALUES, _VALUES, _VALUES).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
    st.tuples(_VALUES, st.lists(_LITERALS, min_size=1, max_size=3)).map(lambda t: f"{t[0]} IN ({', '.join(t[1])})"),
    _VALUES.map(lambda v: f"{v} IS NULL"),
    _VALUES,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(_CONDITIONS)
def test_every_expression_that_validates_runs_on_awkward_data(text: str) -> None:
    """Before: 3,000 examples of a slightly larger grammar found 71 expressions that validated and then
    failed at run time (CAST, ::, STRPTIME, DATE(), POWER and LEFT with column arguments); with the old
    validator this test fails on POWER. Now none may."""
    try:
        expr = compile_expression(text, SCHEMA)
    except ExpressionProblem:
        return
    out = AWKWARD.select(expr.alias("r"))
    assert out.height in (1, AWKWARD.height)  # a constant condition is one value, broadcast by filter
    assert out.schema["r"] == pl.Boolean


# --------------------------------------------------------------------------------------------
# the hostile-input corpus: every variant ends in a located error or a clean, balanced exclusion

VARIANTS = all_variants()
_LOCATED = re.compile(r"^(?:error: )?(?P<file>[^:\s][^:]*?)(?::(?P<line>\d+))?: ")


def _validate_rows(catalogue: Path) -> tuple[int | None, str, str, BaseException | None]:
    """``audit-metrics validate --rows`` in a thread (a hang guard, not a timing test)."""
    out, err = io.StringIO(), io.StringIO()
    result: list[object] = []

    def target() -> None:
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                result.append(main(["validate", "--rows", str(catalogue)]))
        except BaseException as exc:  # anything escaping main is a traceback for the user
            result.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "validate --rows did not finish within 120 s: a hang"
    value = result[0]
    if isinstance(value, BaseException):
        return None, out.getvalue(), err.getvalue(), value
    return int(value), out.getvalue(), err.getvalue(), None  # type: ignore[arg-type]


def test_corpus_has_40_variants_per_input_kind() -> None:
    kinds = Counter(v.kind for v in VARIANTS)
    print({k: (n, sum(v.expect == "clean" for v in VARIANTS if v.kind == k)) for k, n in kinds.items()})
    assert set(kinds) == {"patient extract", "aggregate extract", "units", "mergers", "catalogue"}
    assert min(kinds.values()) >= 40, kinds
    assert len({v.id for v in VARIANTS}) == len(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_hostile_corpus(variant: Variant, tmp_path: Path) -> None:
    if variant.needs == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    if variant.needs == "devzero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    root = tmp_path / "project"
    catalogue = base_project(root)
    variant.mutate(root)
    rc, out, err, crash = _validate_rows(catalogue)
    assert crash is None, f"{type(crash).__name__} escaped: {crash!s:.500}"
    assert "Traceback" not in out + err
    if variant.expect == "error":
        assert rc == 1, f"accepted: {out[-500:]}"
        problems = [line for line in err.splitlines() if not re.fullmatch(r"\d+ problems? found\.", line)]
        assert problems
        for line in problems:
            assert len(line) < 2000, f"a {len(line):,}-character message"
            located = _LOCATED.match(line)
            assert located, f"not located: {line[:300]}"
            named = Path(located["file"])
            assert named.exists() or named.is_symlink(), f"names no existing file: {line[:300]}"
        if variant.contains:
            assert variant.contains in err, err[:2000]
    else:
        assert rc == 0, f"refused: {err[:1500]}"
        if variant.contains:
            assert variant.contains in out, out[:2000]
        _units, datasets = load_all(load_catalogue(catalogue))
        for ds in datasets.values():
            acc = ds.accounting
            assert acc.balanced, acc.summary()


# --------------------------------------------------------------------------------------------
# item 7: text from data is shown as text, never as Markdown, HTML or LaTeX

def test_live_markup_detector_sees_each_attack() -> None:
    from audit_metrics.ui.text import code, md

    for name in HOSTILE_NAMES:
        assert live_markup(f"{name} here"), name  # raw: the detector sees it
        assert live_markup(f"{md(name)} here") == [], name  # escaped: nothing live
        assert live_markup(f"**Trust** {md(name)} here") == [], name
        assert live_markup(f"- cohort {code(name)}") == [], name
    assert live_markup("# x") == ["heading"] and live_markup("a `b` c") == []


_PLOTLY_LIVE = re.compile(r"<(a|img|script)\b|<b>(x|b)</b>|<span", re.IGNORECASE)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _markdown_texts(at: object) -> list[tuple[str, str]]:
    """(kind, source) of every element whose text Streamlit renders as Markdown: bodies, alerts, headings,
    and the labels of widgets, expanders, tabs and metrics (radio options too)."""
    out: list[tuple[str, str]] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success"):
        out += [(kind, e.value) for e in at.get(kind)]
    for kind in ("expander", "tab", "metric", "selectbox", "multiselect", "checkbox", "button", "text_input",
                 "download_button", "toggle"):
        out += [(f"{kind} label", e.proto.label) for e in at.get(kind)]
    for radio in at.get("radio"):
        out += [("radio label", radio.proto.label)] + [("radio option", o) for o in radio.proto.options]
    return out


def test_hostile_names_are_shown_as_text_in_every_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from audit_metrics.ui.state import VIEWS
    from audit_metrics.ui.text import md

    catalogue = hostile_project(tmp_path, ROOT)
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(tmp_path / "no_store.sqlite"))
    pages = {view: {"view": view} for view in VIEWS}
    pages["Indicator"] = {"view": "Indicator", "indicator": "bowel_mort90", "trust": "ZA0"}
    pages["Indicator (trends)"] = {"view": "Indicator", "indicator": "sact_mort30", "trust": "ZA1"}
    pages["Trust profile"] = {"view": "Trust profile", "trust": "ZA0"}
    seen = plotted = ""
    for page, query in pages.items():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, f"{page}: {at.exception[0].value if at.exception else ''}"
        texts = _markdown_texts(at)
        assert texts, page
        for kind, source in texts:
            assert live_markup(source) == [], f"{page}, {kind}: {live_markup(source)} in {source[:300]!r}"
        seen += "\n".join(s for _, s in texts)
        for element in at.get("plotly_chart"):  # Plotly reads <a href>, <b>, <span> in any text of a figure
            for text in _strings(json.loads(element.proto.spec)):
                assert not _PLOTLY_LIVE.search(text), f"{page}, chart: {text[:300]!r}"
                plotted += text + "\n"
    # the attacks did reach the page (escaped): trusts in the trust profile, alliances and regions, the title
    for name in HOSTILE_NAMES:
        assert re.search(re.escape(md(name)) + r" T\d", seen), name
    for tag in "AR":  # alliance and region names (one alliance and one region are shown in full)
        assert re.search("(" + "|".join(re.escape(md(n)) for n in HOSTILE_NAMES) + f") {tag}" + r"\d", seen), tag
    assert md("90-day **bold** [t](http://evil) <b>x</b> $x$ mortality") in seen
    assert "&lt;img src=x onerror=alert(1)&gt; T" in plotted and "90-day **bold** [t](http://evil) &lt;b&gt;x" in plotted
    assert md("![](http://evil/d.png) # heading <script>x</script>") in seen


# --------------------------------------------------------------------------------------------
# item 6 remainder: a z that cannot be computed is "not assessed", and an O/E table is sized by its events


def _aggregate_project(tmp_path: Path, frame: pl.DataFrame, indicator: str) -> AuditRun:
    frame.write_csv(tmp_path / "agg.csv")
    (tmp_path / "trusts.csv").write_bytes((ROOT / "sample_data" / "trusts.csv").read_bytes())
    (tmp_path / "indicators.yaml").write_text(f"""version: 1
datasets:
  agg: {{path: agg.csv, aggregate: true, period_column: period}}
units: {{file: trusts.csv, code: trust_code, name: trust_name, groups: [cancer_alliance, region]}}
indicators:
  - {indicator}
""")
    return run_audit(load_catalogue(tmp_path / "indicators.yaml"))


def _trust_codes() -> list[str]:
    return pl.read_csv(ROOT / "sample_data" / "trusts.csv")["trust_code"].to_list()


def test_undefined_z_is_not_assessed_not_within() -> None:
    """Normal-approximation limits at a national rate of 0%: the standard error sqrt(p0 (1 - p0) / n) is 0,
    so z = 0/0 is undefined. It was shown as "within" (as expected); it is "not assessed", with a reason."""
    from audit_metrics.catalogue import MethodOptions
    from audit_metrics.outliers import UNSCORED_REASON, assess_units

    options = MethodOptions(limits=(0.95, 0.998), overdispersion="none", robust="winsorise", trim=0.1,
                            min_denominator=10, min_units=10, limit_method="normal", fdr=False, transform="arcsine")
    n = 20
    a = assess_units(np.zeros(n), np.full(n, 50.0), np.ones(n, bool), statistic="proportion", options=options,
                     target=0.0)
    assert np.isnan(a.z).all()
    assert set(a.status) == {"not_assessed"} and a.unscored.all()
    assert "zero" in UNSCORED_REASON


def test_undefined_z_end_to_end_says_why(tmp_path: Path) -> None:
    codes = _trust_codes()
    frame = pl.DataFrame({"trust_code": codes, "period": "2023/24", "patients": [50] * len(codes),
                          "events": [0] * len(codes)})
    run = _aggregate_project(tmp_path, frame, "{id: none_seen, title: Never happens, tumour_site: All, dataset: agg, "
                             "numerator: events, denominator: patients, better: lower, limit_method: normal}")
    t = run.results["none_seen"].table.filter(pl.col("level") == "trust")
    assert t.height == len(codes)
    assert (t["status"].cast(pl.String) == "not_assessed").all(), t["status"].value_counts()
    assert t["not_assessed_reason"].is_not_null().all()
    assert t["not_assessed_reason"].str.contains("zero").all(), t["not_assessed_reason"][0]
    assert t["z"].is_null().all() or t["z"].is_nan().all()


def test_oe_table_without_patient_counts_is_sized_by_its_events(tmp_path: Path) -> None:
    """An observed/expected table has no patient count: a unit with O = 100 against E = 5 was "fewer than 10
    cases" (E was read as the size). It is assessed (and flagged: P(O >= 100 | Poisson(5)) ~ 1e-86, far
    beyond 99.8% limits); a unit with few observed *and* few expected events is not, and says so."""
    from scipy import stats

    codes = _trust_codes()
    rng = np.random.default_rng(15)
    expected = rng.uniform(20, 300, len(codes))
    observed = rng.poisson(expected)
    expected[0], observed[0] = 5.0, 100  # few expected, many observed
    expected[1], observed[1] = 4.0, 3  # few of both
    expected[2], observed[2] = 50.0, 2  # few observed, enough expected (assessed before and after)
    frame = pl.DataFrame({"trust_code": codes, "period": "2023/24", "observed": observed,
                          "expected": expected.round(2)})
    run = _aggregate_project(tmp_path, frame, "{id: smr, title: Mortality ratio, tumour_site: All, dataset: agg, "
                             "numerator: observed, expected: expected, statistic: ratio, better: lower}")
    t = run.results["smr"].table.filter(pl.col("level") == "trust")
    row = {r["unit_code"]: r for r in t.iter_rows(named=True)}
    assert stats.poisson.sf(99, 5.0) < 1e-80  # the oracle: no funnel of 99.8% includes it
    assert str(row[codes[0]]["status"]) == "alarm_high", row[codes[0]]
    assert str(row[codes[1]]["status"]) == "not_assessed"
    assert row[codes[1]]["not_assessed_reason"] == "fewer than 10 observed and fewer than 10 expected events"
    assert str(row[codes[2]]["status"]) != "not_assessed"
    assert (t["status"].cast(pl.String) == "not_assessed").sum() == 1


# --------------------------------------------------------------------------------------------
# items 2 and 9 remainder: uploads are read within a time, memory and row budget; their folders are removed


def _upload_csv(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "upload.csv"
    path.write_text("trust_code,period,patients,seen\n" + "".join(f"Z{i},2023/24,10,5\n" for i in range(rows)))
    return path


def test_upload_within_its_bounds_is_read_in_a_child_process(tmp_path: Path) -> None:
    from audit_metrics.ui.uploads import UploadLimits, check_upload

    check = check_upload(_upload_csv(tmp_path, 250), None, name="mine.csv", limits=UploadLimits())
    assert check.ok and check.problem is None
    assert check.rows == 250  # the lines written, less the header


@pytest.mark.parametrize(("limits", "expected"), [
    ({"rows": 100}, "mine.csv has 250 rows; one upload may have at most 100"),
    ({"seconds": 0.01}, "mine.csv took longer than 0.01 s to read"),
    ({"memory_mb": 1}, "mine.csv needed more than 1 MB of memory to read"),
])
def test_upload_beyond_a_bound_is_refused_with_what_to_do(tmp_path: Path, limits: dict, expected: str) -> None:
    from audit_metrics.ui.uploads import UploadLimits, check_upload

    if "memory_mb" in limits and not Path("/proc/self/status").exists():
        pytest.skip("resident memory is read from /proc")
    check = check_upload(_upload_csv(tmp_path, 250), None, name="mine.csv", limits=UploadLimits(**limits))
    assert not check.ok
    assert check.problem is not None and check.problem.startswith(expected), check.problem
    assert "smaller extract" in check.problem and str(tmp_path) not in check.problem


def test_upload_that_is_not_a_workbook_is_a_message(tmp_path: Path) -> None:
    from audit_metrics.ui.uploads import check_upload

    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    check = check_upload(path, None, name="x.xlsx")
    assert not check.ok and check.problem and "Traceback" not in check.problem


def test_upload_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit_metrics.ui.uploads import UploadLimits

    monkeypatch.setenv("AUDIT_METRICS_UPLOAD_SECONDS", "30")
    monkeypatch.setenv("AUDIT_METRICS_UPLOAD_ROWS", "1e6")
    monkeypatch.setenv("AUDIT_METRICS_UPLOAD_MEMORY_MB", "lots")  # malformed: the default bound stays
    assert UploadLimits.from_env() == UploadLimits(seconds=30.0, rows=1_000_000)


def test_upload_folder_goes_with_its_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from audit_metrics.ui.uploads import UploadFolder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    owner = UploadFolder()
    (owner.path / "patients.abc.csv").write_text("x\n1\n")
    path = owner.path
    assert path.parent == tmp_path and path.is_dir()
    del owner  # Streamlit discards a session's state some time after its tab closes
    gc.collect()
    assert not path.exists()
    again = UploadFolder()
    again.remove()  # "Go back to the bundled sample data"
    assert not again.path.exists() and again.removed


def test_stale_upload_folders_are_removed_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit_metrics.ui.uploads import FOLDER_PREFIX, UploadFolder, remove_stale_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, fresh, other = tmp_path / f"{FOLDER_PREFIX}old", tmp_path / f"{FOLDER_PREFIX}fresh", tmp_path / "other_old"
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "f.csv").write_text("x\n")
    live = UploadFolder()  # a session of this server: kept however old
    two_days_ago = time.time() - 48 * 3600
    for path in (old, old / "f.csv", other, other / "f.csv", live.path):
        os.utime(path, (two_days_ago, two_days_ago))
    assert remove_stale_folders(root=tmp_path) == [old]
    assert not old.exists() and fresh.exists() and other.exists() and live.path.exists()
    live.remove()


def test_upload_over_the_row_bound_is_refused_in_the_data_view(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_METRICS_UPLOAD_ROWS", "5")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.query_params["view"] = "Data"
    at.run()
    at.selectbox(key="data_name").set_value("lung_cns").run()
    body = "trust_code,trust_name,cancer_alliance,period,patients,seen_by_cns\n" + "".join(
        f"ZA{i},T{i},A,2021/22,20,10\n" for i in range(8))
    at.file_uploader(key="data_upload").set_value(("big.csv", body.encode(), "text/csv")).run()
    at.button(key="data_use").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "big.csv cannot replace the lung\\_cns dataset" in errors or "big.csv cannot replace the lung_cns" in errors
    detail = " ".join(c.value for c in at.code)
    assert "big.csv has 8 rows; one upload may have at most 5" in detail
    assert "/tmp" not in detail and not at.session_state["data_overrides"]
    folder = at.session_state["upload_folder"].path
    assert folder.is_dir() and list(folder.iterdir()) == []  # the refused file is not kept
