"""A generated corpus of hostile and broken inputs (issue #15), one small project per variant.

``base_project(dir)`` writes a small valid project: a catalogue, a units file, a mergers file, a
patient-level extract and an aggregate extract. Each ``Variant`` breaks one of them in one way and
says what must happen: ``"error"`` (a located problem naming the file, and a non-zero exit) or
``"clean"`` (the file is read, every row used or excluded with a reason, the accounting balanced).
Nothing here is committed as a large file: big inputs are generated on the fly.
"""

from __future__ import annotations

import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

CATALOGUE = """version: 1
datasets:
  patients:
    path: patients.csv
    period_column: financial_year
    periods: ["2022/23", "2023/24"]
    key: [patient_id]
    columns: {patient_id: integer, age: integer, died_90d: boolean, major_resection: boolean,
              diagnosis_date: date}
    ranges:
      age: [18, 110]
  agg:
    path: agg.csv
    period_column: period
    periods: ["2022/23", "2023/24"]
    aggregate: true
    columns: {patients: integer, seen: integer}
units:
  file: units.csv
  code: trust_code
  name: trust_name
  groups: [alliance, region]
  mergers: mergers.csv
  expected_cases: expected_cases
defaults:
  limits: [0.95, 0.998]
  min_denominator: 5
  suppression: {min_count: 1, max_count: 7}
indicators:
  - id: mort90
    title: 90-day mortality after resection
    tumour_site: Bowel
    dataset: patients
    cohort: "tumour_site = 'Bowel' AND major_resection"
    numerator: died_90d
    better: lower
  - id: elderly
    title: Patients aged 75 and over
    tumour_site: Bowel
    dataset: patients
    cohort: "tumour_site = 'Bowel'"
    numerator: "age >= 75"
    better: neither
  - id: seen
    title: Seen by a specialist nurse
    tumour_site: Lung
    dataset: agg
    numerator: seen
    denominator: patients
    better: higher
"""

TRUSTS = [f"T{i:02d}" for i in range(12)]
PATIENT_HEADER = "patient_id,trust_code,financial_year,tumour_site,age,sex,major_resection,died_90d,diagnosis_date"


def _units_text() -> str:
    rows = ["trust_code,trust_name,alliance,region,expected_cases"]
    rows += [f"{c},Trust {c},Alliance {i % 3},Region {i % 2},{100 + i}" for i, c in enumerate(TRUSTS)]
    return "\n".join(rows) + "\n"


def _patients_text(n: int = 240) -> str:
    rng = random.Random(15)
    rows = [PATIENT_HEADER]
    for i in range(n):
        trust = TRUSTS[i % len(TRUSTS)] if i % 40 else "OLD1"  # a few rows under a merged code
        rows.append(f"{i + 1},{trust},{'2022/23' if i % 2 else '2023/24'},{'Bowel' if i % 3 else 'Lung'},"
                    f"{rng.randint(30, 95)},{'F' if i % 2 else 'M'},{'true' if i % 4 else 'false'},"
                    f"{'true' if rng.random() < 0.1 else 'false'},2023-0{1 + i % 9}-1{i % 10}")
    return "\n".join(rows) + "\n"


def _agg_text() -> str:
    rows = ["trust_code,period,patients,seen"]
    rows += [f"{c},{p},{50 + i},{30 + i}" for i, c in enumerate(TRUSTS) for p in ("2022/23", "2023/24")]
    return "\n".join(rows) + "\n"


def base_project(root: Path) -> Path:
    """Write the valid project; returns the catalogue path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "indicators.yaml").write_text(CATALOGUE)
    (root / "units.csv").write_text(_units_text())
    (root / "mergers.csv").write_text("old_code,new_code,merged_on\nOLD1,T01,2022-04-01\nOLD2,T02,2022-04-01\n"
                                      "OLD3,T03,2023-04-01\nOLD4,OLD3,2019-04-01\n")
    (root / "patients.csv").write_text(_patients_text())
    (root / "agg.csv").write_text(_agg_text())
    return root / "indicators.yaml"


@dataclass(frozen=True)
class Variant:
    kind: str                       # patient extract | aggregate extract | units | mergers | catalogue
    name: str
    expect: str                     # "error" or "clean"
    mutate: Callable[[Path], None]
    contains: str | None = None     # a fragment the error (or the accounting) must contain
    needs: str | None = None        # "fifo" or "devzero": skipped where the system has none

    @property
    def id(self) -> str:
        return f"{self.kind.replace(' ', '_')}-{self.name}"


# --------------------------------------------------------------------------------------------
# helpers that build one mutation


def _write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / name
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return mutate


def _edit(name: str, fn: Callable[[str], str]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / name
        path.write_text(fn(path.read_text()))
    return mutate


def _line(name: str, index: int, new: str) -> Callable[[Path], None]:
    """Replace line ``index`` (0 = header) of a text file."""
    def fn(text: str) -> str:
        lines = text.splitlines()
        lines[index] = new
        return "\n".join(lines) + "\n"
    return _edit(name, fn)


def _cell(name: str, index: int, column: str, value: str) -> Callable[[Path], None]:
    def fn(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        row = lines[index].split(",")
        row[header.index(column)] = value
        lines[index] = ",".join(row)
        return "\n".join(lines) + "\n"
    return _edit(name, fn)


def _append(name: str, extra: str) -> Callable[[Path], None]:
    return _edit(name, lambda text: text + extra)


def _replace(name: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def fn(text: str) -> str:
        assert old in text, f"{old!r} not in {name}"
        return text.replace(old, new, count)
    return _edit(name, fn)


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        (root / name).symlink_to(target)
    return mutate


def _fifo(name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        os.mkfifo(root / name)
    return mutate


def _directory(name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        (root / name).mkdir()
    return mutate


def _delete(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).unlink()


def _both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        for step in steps:
            step(root)
    return mutate


def _as_parquet(name: str, transform: Callable[[pl.DataFrame], pl.DataFrame] = lambda f: f,
                catalogue_from: str | None = None) -> Callable[[Path], None]:
    """Rewrite a CSV extract as Parquet (optionally transformed) and point the catalogue at it."""
    def mutate(root: Path) -> None:
        frame = transform(pl.read_csv(root / name, infer_schema_length=10_000))
        target = root / name.replace(".csv", ".parquet")
        frame.write_parquet(target)
        cat = root / "indicators.yaml"
        cat.write_text(cat.read_text().replace(f"path: {name}", f"path: {target.name}"))
    return mutate


def _as_xlsx(name: str, post: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        frame = pl.read_csv(root / name, infer_schema=False)
        target = root / name.replace(".csv", ".xlsx")
        frame.write_excel(target)
        cat = root / "indicators.yaml"
        cat.write_text(cat.read_text().replace(f"path: {name}", f"path: {target.name}"))
        if post:
            post(target)
    return mutate


def _xlsx_big_cell(size: int) -> Callable[[Path], None]:
    def post(path: Path) -> None:
        data = {i.filename: zipfile.ZipFile(path).read(i) for i in zipfile.ZipFile(path).infolist()}
        data["xl/sharedStrings.xml"] = data["xl/sharedStrings.xml"].replace(b"T01", b"T" * size, 1)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for key, value in data.items():
                out.writestr(key, value)
    return post


# --------------------------------------------------------------------------------------------
# variants shared by every CSV input (file-level breakage)


def _suffix_line(name: str, index: int, suffix: str) -> Callable[[Path], None]:
    def fn(text: str) -> str:
        lines = text.splitlines()
        lines[index] += suffix
        return "\n".join(lines) + "\n"
    return _edit(name, fn)


def _append_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / name).write_bytes((root / name).read_bytes() + data)


def _file_level(kind: str, name: str, key: str = "trust_code") -> list[Variant]:
    return [
        Variant(kind, "empty", "error", _write(name, ""), "the file is empty"),
        Variant(kind, "whitespace_only", "error", _write(name, "  \n\n \t\n"), "the file is empty"),
        Variant(kind, "bom_only", "error", _write(name, b"\xef\xbb\xbf"), "the file is empty"),
        Variant(kind, "blank_first_line", "error", _edit(name, lambda t: "\n" + t), "header) is blank"),
        Variant(kind, "semicolons", "error", _edit(name, lambda t: t.replace(",", ";")), "';'-separated"),
        Variant(kind, "tabs", "error", _edit(name, lambda t: t.replace(",", "\t")), "tab-separated"),
        Variant(kind, "pipes", "error", _edit(name, lambda t: t.replace(",", "|")), "'|'-separated"),
        Variant(kind, "latin1_byte", "error", _append_bytes(name, b"T01,caf\xe9\n"), "not UTF-8 text"),
        Variant(kind, "utf16", "error", lambda root, n=name: (root / n).write_bytes((root / n).read_text()
                                                                                    .encode("utf-16")),
                "not UTF-8 text"),
        Variant(kind, "binary_garbage", "error", _write(name, bytes(random.Random(1).randbytes(5000))),
                "not UTF-8 text"),
        Variant(kind, "zip_bytes", "error", _write(name, b"PK\x03\x04" + bytes(range(256)) * 4), "not UTF-8"),
        Variant(kind, "duplicate_column", "error", _edit(name, lambda t: t.replace(key, f"{key},{key}", 1)),
                "appears more than once"),
        Variant(kind, "blank_column_name", "error", _edit(name, lambda t: t.replace(",", ",,", 1)),
                "a column has no name"),
        Variant(kind, "unterminated_quote_middle", "error", _line(name, 3, 'T03,"unclosed'),
                "double quote opened on this line is never closed"),
        Variant(kind, "unterminated_quote_last", "error", _append(name, '"T05,never closed\n'),
                "never closed"),
        Variant(kind, "ragged_long_line", "error", _suffix_line(name, 3, ",x,y"), "fields but the header has"),
        Variant(kind, "directory", "error", _directory(name), "not a regular file"),
        Variant(kind, "dev_zero", "error", _symlink(name, "/dev/zero"), "is a device", needs="devzero"),
        Variant(kind, "fifo", "error", _fifo(name), "is a pipe", needs="fifo"),
        Variant(kind, "missing", "error", _delete(name), "not found"),
        Variant(kind, "crlf", "clean", _edit(name, lambda t: t.replace("\n", "\r\n"))),
        Variant(kind, "bom", "clean", lambda root, n=name: (root / n).write_bytes(
            b"\xef\xbb\xbf" + (root / n).read_bytes())),
        Variant(kind, "spaces_around_header", "clean", _edit(name, lambda t: t.replace(key, f" {key} ", 1))),
        Variant(kind, "no_final_newline", "clean", _edit(name, lambda t: t.rstrip("\n"))),
    ]


def _extract_rows(kind: str, name: str, counts: list[str]) -> list[Variant]:
    """Row-level breakage every extract shares: each must be a clean, counted exclusion."""
    return [
        Variant(kind, "unknown_unit", "clean", _cell(name, 2, "trust_code", "ZZ9"), "unknown unit code"),
        Variant(kind, "blank_unit", "clean", _cell(name, 2, "trust_code", ""), "missing unit code"),
        Variant(kind, "spaces_in_unit", "clean", _cell(name, 2, "trust_code", "  T02 ")),
        Variant(kind, "lower_case_unit", "clean", _cell(name, 2, "trust_code", "t02"), "ignoring upper and lower case"),
        Variant(kind, "merged_unit_code", "clean", _cell(name, 2, "trust_code", " OLD1 "), "recoded"),
        Variant(kind, "formula_in_unit", "clean", _cell(name, 2, "trust_code", '"=HYPERLINK(""http://x"",""y"")"'),
                "unknown unit code"),
        Variant(kind, "html_in_unit", "clean", _cell(name, 2, "trust_code", "<img src=x>"), "unknown unit code"),
        Variant(kind, "huge_cell", "clean", _cell(name, 2, "trust_code", "X" * 1_000_000), "unknown unit code"),
        Variant(kind, "nul_in_cell", "clean", _cell(name, 2, "trust_code", "T0\x002"), "unknown unit code"),
        Variant(kind, "short_line", "clean", _line(name, 2, "T01")),
        Variant(kind, "blank_lines_between", "clean", _edit(name, lambda t: t.replace("\n", "\n\n", 5))),
        Variant(kind, "period_outside", "clean", _cell(name, 2, counts[0], "2019/20"), "outside the reporting"),
        Variant(kind, "extra_columns", "clean", _edit(name, lambda t: "\n".join(
            line + (",extra" if i == 0 else ",1") for i, line in enumerate(t.splitlines())) + "\n")),
        Variant(kind, "many_columns", "clean", _edit(name, lambda t: "\n".join(
            line + "".join(f",c{j}" if i == 0 else ",0" for j in range(150))
            for i, line in enumerate(t.splitlines())) + "\n")),
        Variant(kind, "too_many_columns", "error", _edit(name, lambda t: "\n".join(
            line + "".join(f",c{j}" if i == 0 else ",0" for j in range(20_000))
            for i, line in enumerate(t.splitlines()[:3])) + "\n"), "columns, more than the limit of 1,000"),
        Variant(kind, "quoted_newline_in_text", "clean", _cell(name, 2, "trust_code", '"T0\n2"'),
                "unknown unit code"),
        Variant(kind, "many_rows", "clean", _edit(name, lambda t: t + "".join(
            t.splitlines(keepends=True)[1:] * 200))),
    ]


def patient_variants() -> list[Variant]:
    kind, name = "patient extract", "patients.csv"
    out = _file_level(kind, name) + _extract_rows(kind, name, ["financial_year"])
    out += [
        Variant(kind, "age_text", "clean", _cell(name, 2, "age", "sixty"), "value is not a whole number"),
        Variant(kind, "age_fraction", "clean", _cell(name, 2, "age", "61.5"), "value is not a whole number"),
        Variant(kind, "age_huge", "clean", _cell(name, 2, "age", "1e400"), "value is not a whole number"),
        Variant(kind, "age_int_overflow", "clean", _cell(name, 2, "age", "99999999999999999999999"),
                "value is not a whole number"),
        Variant(kind, "age_nan", "clean", _cell(name, 2, "age", "NaN"), "value is not a whole number"),
        Variant(kind, "age_negative", "clean", _cell(name, 2, "age", "-4"), "outside the allowed range"),
        Variant(kind, "age_out_of_range", "clean", _cell(name, 2, "age", "250"), "outside the allowed range"),
        Variant(kind, "boolean_maybe", "clean", _cell(name, 2, "died_90d", "maybe"), "true/false"),
        Variant(kind, "boolean_spellings", "clean", _both(_cell(name, 2, "died_90d", "YES"),
                                                         _cell(name, 3, "died_90d", "0"),
                                                         _cell(name, 4, "died_90d", " True "))),
        Variant(kind, "boolean_blank", "clean", _cell(name, 2, "died_90d", "")),
        Variant(kind, "date_impossible", "clean", _cell(name, 2, "diagnosis_date", "2023-02-30"), "a date"),
        Variant(kind, "date_british", "clean", _cell(name, 2, "diagnosis_date", "28/02/2023")),
        Variant(kind, "date_text", "clean", _cell(name, 2, "diagnosis_date", "yesterday"), "a date"),
        Variant(kind, "duplicate_patient", "clean", _line(name, 3, _patients_text().splitlines()[1]),
                "repeated key"),
        Variant(kind, "patient_id_text", "clean", _cell(name, 2, "patient_id", "abc"), "value is not a whole"),
        Variant(kind, "every_row_excluded", "clean", _edit(name, lambda t: t.replace(",T", ",X"))),
        Variant(kind, "header_only", "clean", _write(name, PATIENT_HEADER + "\n")),
        Variant(kind, "missing_declared_column", "error", _edit(name, lambda t: t.replace("died_90d", "dead_90d")),
                "died_90d"),
        Variant(kind, "missing_unit_column", "error", _edit(name, lambda t: t.replace("trust_code", "trust", 1)),
                "unit column"),
        Variant(kind, "parquet_good", "clean", _as_parquet(name)),
        Variant(kind, "parquet_integer_codes", "clean", _as_parquet(
            name, lambda f: f.with_columns(pl.int_range(0, pl.len()).alias("trust_code"))), "unknown unit code"),
        Variant(kind, "parquet_nan_age", "clean", _as_parquet(
            name, lambda f: f.with_columns(pl.when(pl.int_range(0, pl.len()) == 3).then(float("nan"))
                                            .otherwise(pl.col("age").cast(pl.Float64)).alias("age"))),
                "not a whole number"),
        Variant(kind, "parquet_truncated", "error", _both(
            _as_parquet(name), lambda root: (root / "patients.parquet").write_bytes(
                (root / "patients.parquet").read_bytes()[:500])), "not a readable Parquet file"),
        Variant(kind, "parquet_is_csv", "error", _both(
            _as_parquet(name), lambda root: (root / "patients.parquet").write_bytes(b"a,b\n1,2\n")),
                "not a readable Parquet file"),
        Variant(kind, "xlsx_good", "clean", _as_xlsx(name)),
        Variant(kind, "xlsx_huge_cell", "error", _as_xlsx(name, _xlsx_big_cell(2_000_000)),
                "holds a value longer than"),
        Variant(kind, "xlsx_not_a_zip", "error", _both(_as_xlsx(name), lambda root: (
            root / "patients.xlsx").write_bytes(b"not a workbook")), "not a readable Excel workbook"),
    ]
    return out


def aggregate_variants() -> list[Variant]:
    kind, name = "aggregate extract", "agg.csv"
    out = _file_level(kind, name) + _extract_rows(kind, name, ["period"])
    out += [
        Variant(kind, "numerator_above_denominator", "clean", _cell(name, 2, "seen", "999"), "seen greater than"),
        Variant(kind, "negative_count", "clean", _cell(name, 2, "seen", "-3"), "negative value in seen"),
        Variant(kind, "fractional_count", "clean", _cell(name, 2, "patients", "50.5"), "not a whole number"),
        Variant(kind, "count_text", "clean", _cell(name, 2, "patients", "many"), "not a whole number"),
        Variant(kind, "count_blank", "clean", _cell(name, 2, "patients", "")),  # excluded per indicator
        Variant(kind, "count_nan", "clean", _cell(name, 2, "seen", "NaN"), "not a whole number"),
        Variant(kind, "count_inf", "clean", _cell(name, 2, "seen", "inf"), "not a whole number"),
        Variant(kind, "count_overflow", "clean", _cell(name, 2, "patients", "1" + "0" * 30),
                "not a whole number"),
        Variant(kind, "zero_denominator", "clean", _both(_cell(name, 2, "patients", "0"),
                                                         _cell(name, 2, "seen", "0"))),
        Variant(kind, "count_with_thousands_separator", "clean", _cell(name, 2, "patients", '"1,200"'),
                "not a whole number"),
        Variant(kind, "missing_count_column", "error", _edit(name, lambda t: t.replace("seen", "seen_by")),
                "seen"),
        Variant(kind, "header_only", "clean", _write(name, "trust_code,period,patients,seen\n")),
        # #15 item 6: no events anywhere (a national rate of 0%): accepted; where z is then undefined the units
        # are "not assessed" with the reason (test_undefined_z_end_to_end_says_why)
        Variant(kind, "no_events_anywhere", "clean", _as_parquet(name, lambda f: f.with_columns(pl.lit(0).alias("seen")))),
        Variant(kind, "parquet_good", "clean", _as_parquet(name)),
        Variant(kind, "parquet_float_counts", "clean", _as_parquet(
            name, lambda f: f.with_columns(pl.col("seen").cast(pl.Float64) + 0.5))),
        Variant(kind, "xlsx_good", "clean", _as_xlsx(name)),
    ]
    return out


def units_variants() -> list[Variant]:
    kind, name = "units", "units.csv"
    out = _file_level(kind, name)
    out += [
        Variant(kind, "header_only", "error", _write(name, "trust_code,trust_name,alliance,region,expected_cases\n"),
                "has no units"),
        Variant(kind, "blank_code", "error", _cell(name, 3, "trust_code", ""), "a unit has no code"),
        Variant(kind, "duplicate_code", "error", _cell(name, 3, "trust_code", "T01"), "appears more than once"),
        Variant(kind, "duplicate_after_trim", "error", _cell(name, 3, "trust_code", " T01 "),
                "appears more than once"),
        Variant(kind, "blank_alliance", "error", _cell(name, 3, "alliance", " "), "have no alliance"),
        Variant(kind, "blank_region", "error", _cell(name, 4, "region", ""), "have no region"),
        Variant(kind, "expected_text", "error", _cell(name, 3, "expected_cases", "n/k"), "not a non-negative"),
        Variant(kind, "expected_negative", "error", _cell(name, 3, "expected_cases", "-5"), "not a non-negative"),
        Variant(kind, "expected_nan", "error", _cell(name, 3, "expected_cases", "NaN"), "not a non-negative"),
        Variant(kind, "expected_inf", "error", _cell(name, 3, "expected_cases", "inf"), "not a non-negative"),
        Variant(kind, "expected_blank", "clean", _cell(name, 3, "expected_cases", "")),
        Variant(kind, "missing_name_column", "error", _edit(name, lambda t: t.replace("trust_name", "name", 1)),
                "trust_name"),
        Variant(kind, "missing_group_column", "error", _edit(name, lambda t: t.replace("region", "regn", 1)),
                "region"),
        Variant(kind, "codes_with_spaces", "clean", _edit(name, lambda t: t.replace("\nT", "\n T"))),
        Variant(kind, "formula_names", "clean", _cell(name, 3, "trust_name", '"=HYPERLINK(""http://x"",""y"")"')),
        Variant(kind, "html_names", "clean", _cell(name, 3, "alliance", "<script>alert(1)</script>")),
        Variant(kind, "markdown_image_name", "clean", _cell(name, 3, "trust_name", "![x](http://evil/x.png)")),
        # #15 item 7: accepted as data; the dashboard shows them as text (tests/hostile/markup.py, test_hardening)
        Variant(kind, "markdown_link_name", "clean", _cell(name, 3, "trust_name", "[details](http://evil)")),
        Variant(kind, "latex_and_directive_name", "clean", _cell(name, 4, "trust_name", "$x$ :red[x] **b**")),
        Variant(kind, "bare_address_alliance", "clean", _cell(name, 3, "alliance", "www.evil.example a@evil.example")),
        Variant(kind, "heading_region", "clean", _cell(name, 3, "region", "# heading")),
        Variant(kind, "long_names", "clean", _cell(name, 3, "trust_name", "N" * 100_000)),
        Variant(kind, "many_units", "clean", _append(name, "".join(
            f"U{i},Unit {i},Alliance {i % 9},Region {i % 4},{i}\n" for i in range(10_000)))),
        Variant(kind, "numeric_codes", "clean", _append(name, "101,Unit 101,Alliance 1,Region 1,5\n")),
        Variant(kind, "extra_columns", "clean", _edit(name, lambda t: "\n".join(
            line + (",note" if i == 0 else ",x") for i, line in enumerate(t.splitlines())) + "\n")),
        Variant(kind, "short_line", "error", _line(name, 3, "T02"), "have no alliance"),
    ]
    return out


def mergers_variants() -> list[Variant]:
    kind, name = "mergers", "mergers.csv"
    head = "old_code,new_code,merged_on\n"
    out = _file_level(kind, name, key="old_code")
    out += [
        Variant(kind, "cycle_of_two", "error", _write(name, head + "OLD1,T01,x\nT01,OLD1,x\n"), "cycle"),
        Variant(kind, "cycle_of_two_old_codes", "error", _write(name, head + "OLD1,OLD2,x\nOLD2,OLD1,x\n"),
                "mergers form a cycle OLD1 -> OLD2 -> OLD1"),
        Variant(kind, "cycle_of_three", "error", _write(name, head + "A,B,x\nB,C,x\nC,A,x\n"), "cycle A -> B -> C"),
        Variant(kind, "long_cycle", "error", _write(name, head + "".join(
            f"X{i},X{(i + 1) % 500},x\n" for i in range(500))), "cycle"),
        Variant(kind, "self_merge", "error", _write(name, head + "OLD1,OLD1,x\n"), "merged into itself"),
        Variant(kind, "conflicting_duplicate", "error", _write(name, head + "OLD1,T01,x\nOLD1,T02,x\n"),
                "merged into both"),
        Variant(kind, "identical_duplicate", "clean", _write(name, head + "OLD1,T01,x\nOLD1,T01,y\n")),
        Variant(kind, "blank_new_code", "error", _write(name, head + "OLD1,,x\n"), "new_code is blank"),
        Variant(kind, "spaces_new_code", "error", _write(name, head + "OLD1,   ,x\n"), "new_code is blank"),
        Variant(kind, "blank_old_code", "error", _write(name, head + ",T01,x\n"), "old_code is blank"),
        Variant(kind, "unknown_target", "error", _write(name, head + "OLD1,ZZ9,x\n"), "not a unit"),
        Variant(kind, "chain_to_unknown", "error", _write(name, head + "OLD1,OLD2,x\nOLD2,ZZ9,x\n"), "via OLD2"),
        Variant(kind, "old_code_is_a_unit", "error", _write(name, head + "OLD1,T01,x\nT02,T01,x\n"),
                "still a unit"),
        Variant(kind, "chain", "clean", _write(name, head + "OLD1,OLD2,2019\nOLD2,T01,2022\n"), "OLD1→T01"),
        Variant(kind, "long_chain", "clean", _write(name, head + "OLD1,C0,x\n" + "".join(
            f"C{i},C{i + 1},x\n" for i in range(999)) + "C999,T01,x\n")),
        Variant(kind, "many_mergers", "clean", _write(name, head + "OLD1,T01,x\n" + "".join(
            f"H{i},T{i % 12:02d},x\n" for i in range(10_000)))),
        Variant(kind, "spaces_around_codes", "clean", _write(name, head + "  OLD1  ,  T01 ,x\n"), "recoded"),
        Variant(kind, "header_only", "clean", _write(name, head)),
        Variant(kind, "no_date_column", "clean", _write(name, "old_code,new_code\nOLD1,T01\n")),
        Variant(kind, "missing_new_code_column", "error", _write(name, "old_code,successor\nOLD1,T01\n"),
                "needs columns old_code and new_code"),
        Variant(kind, "swapped_headers_only", "error", _write(name, "new_code\nT01\n"), "needs columns"),
        Variant(kind, "numeric_codes", "error", _write(name, head + "100,101,x\n"), "not a unit"),
        Variant(kind, "short_line", "error", _write(name, head + "OLD1\n"), "new_code is blank"),
        Variant(kind, "formula_code", "error", _write(name, head + "OLD1,=1+1,x\n"), "not a unit"),
    ]
    return out


def catalogue_variants() -> list[Variant]:
    kind, name = "catalogue", "indicators.yaml"

    def cat(old: str, new: str) -> Callable[[Path], None]:
        return _replace(name, old, new)

    bomb = "\n".join(["x0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)])
    return [
        Variant(kind, "empty", "error", _write(name, ""), "empty or not a mapping"),
        Variant(kind, "only_comments", "error", _write(name, "# nothing\n"), "empty or not a mapping"),
        Variant(kind, "a_list", "error", _write(name, "- 1\n- 2\n"), "not a mapping"),
        Variant(kind, "a_scalar", "error", _write(name, "hello\n"), "not a mapping"),
        Variant(kind, "bad_indentation", "error", cat("  agg:\n", " agg:\n"), "not valid YAML"),
        Variant(kind, "tab_indentation", "error", cat("  agg:\n", "\tagg:\n"), "not valid YAML"),
        Variant(kind, "unclosed_bracket", "error", cat("[0.95, 0.998]", "[0.95, 0.998"), "not valid YAML"),
        Variant(kind, "unclosed_quote", "error", cat('cohort: "tumour_site', 'cohort: "tumour_site\''),
                "cannot parse expression"),
        Variant(kind, "unclosed_yaml_quote", "error", cat('title: Seen by', 'title: "Seen by'), "not valid YAML"),
        Variant(kind, "python_tag", "error", cat("version: 1", "version: !!python/object/apply:os.system ['true']"),
                "Python tags are not allowed"),
        Variant(kind, "alias_bomb", "error", _edit(name, lambda t: t + bomb + "\n"), "expands to more than"),
        Variant(kind, "recursive_alias", "error", _edit(name, lambda t: t + "loop: &l [*l]\n"), "refers to the value"),
        Variant(kind, "deep_nesting", "error", _edit(name, lambda t: t + "deep: " + "[" * 5000 + "]" * 5000 + "\n"),
                "nesting deeper than"),
        Variant(kind, "huge_file", "error", _edit(name, lambda t: t + "# " + "x" * 3_000_000 + "\n"),
                "more than the limit"),
        Variant(kind, "not_utf8", "error", lambda root: (root / name).write_bytes(
            (root / name).read_bytes() + b"# caf\xe9\n"), "not UTF-8"),
        Variant(kind, "duplicate_key", "error", cat("  min_denominator: 5\n", "  min_denominator: 5\n"
                                                    "  min_denominator: 6\n"), "appears twice"),
        Variant(kind, "unknown_key", "error", cat("    better: lower\n", "    beter: lower\n"), "did you mean"),
        Variant(kind, "version_2", "error", cat("version: 1", "version: 2"), "version"),
        Variant(kind, "limits_percent", "error", cat("[0.95, 0.998]", "[95, 99.8]"), "write 0.95, not 95"),
        Variant(kind, "limits_nan", "error", cat("[0.95, 0.998]", "[.nan, 0.998]"), "not a finite number"),
        Variant(kind, "limits_descending", "error", cat("[0.95, 0.998]", "[0.998, 0.95]"), "ascending"),
        Variant(kind, "suppression_empty_range", "error", cat("{min_count: 1, max_count: 7}",
                                                               "{min_count: 8, max_count: 1}"),
                "nothing would be suppressed"),
        Variant(kind, "duplicate_id", "error", cat("id: elderly", "id: mort90"), "duplicate indicator id"),
        Variant(kind, "bad_id", "error", cat("id: elderly", "id: Elderly-1"), "lower-case"),
        Variant(kind, "unknown_dataset", "error", cat("dataset: agg\n", "dataset: aggr\n"), "unknown dataset"),
        Variant(kind, "unknown_column", "error", cat("numerator: died_90d", "numerator: dead_90d"),
                "did you mean 'died_90d'"),
        Variant(kind, "text_value_unquoted", "error", cat("tumour_site = 'Bowel' AND", "tumour_site = Bowel AND"),
                "single quotes"),
        Variant(kind, "not_boolean", "error", cat('numerator: "age >= 75"', 'numerator: "age + 75"'), "true/false"),
        Variant(kind, "sql_statement", "error", cat('numerator: "age >= 75"', 'numerator: "age >= 75; DROP TABLE x"'),
                "not allowed"),
        Variant(kind, "subquery", "error", cat('numerator: "age >= 75"',
                                               'numerator: "age IN (SELECT age FROM patients)"'), "not allowed"),
        Variant(kind, "aggregate_in_condition", "error", cat('numerator: "age >= 75"', 'numerator: "age >= AVG(age)"'),
                "aggregate functions"),
        Variant(kind, "window_in_condition", "error", cat('numerator: "age >= 75"',
                                                          'numerator: "age >= MAX(age) OVER ()"'), "aggregate"),
        Variant(kind, "failing_cast", "error", cat('numerator: "age >= 75"', 'numerator: "sex::int >= 1"'),
                "fails at run time"),
        Variant(kind, "date_parsing", "error", cat('numerator: "age >= 75"',
                                                   "numerator: \"DATE(sex) > diagnosis_date\""), "reading text as a date"),
        Variant(kind, "long_or_chain", "error", cat('numerator: "age >= 75"', 'numerator: "' + " OR ".join(
            f"age = {i}" for i in range(1500)) + '"'), "operators"),
        Variant(kind, "very_long_expression", "error", cat('numerator: "age >= 75"', "numerator: \"sex IN (" + ", ".join(
            f"'{i:06d}'" for i in range(5000)) + ')"'), "characters long"),
        Variant(kind, "empty_expression", "error", cat('numerator: "age >= 75"', 'numerator: "  "'), "empty"),
        Variant(kind, "file_reading_function", "error", cat('numerator: "age >= 75"',
                                                            "numerator: \"read_csv('/etc/passwd') IS NULL\""),
                "numerator"),
        Variant(kind, "dataset_is_dev_zero", "error", cat("path: agg.csv", "path: /dev/zero\n    format: csv"),
                "not a regular file", needs="devzero"),
        Variant(kind, "dataset_is_directory", "error", cat("path: agg.csv", "path: .\n    format: csv"),
                "not a regular file"),
        Variant(kind, "dataset_is_etc_passwd", "error", cat("path: agg.csv", "path: /etc/passwd\n    format: csv"),
                "agg"),
        Variant(kind, "dataset_path_traversal", "error", cat("path: agg.csv", "path: ../../../../no/such.csv"),
                "not found"),
        Variant(kind, "units_file_missing", "error", cat("file: units.csv", "file: nounits.csv"), "not found"),
        Variant(kind, "mergers_file_missing", "error", cat("mergers: mergers.csv", "mergers: nomergers.csv"),
                "not found"),
        Variant(kind, "target_percent", "error", cat("    better: lower\n", "    better: lower\n    target: 80\n"),
                "between 0 and 1"),
        Variant(kind, "huge_number", "error", cat("min_denominator: 5", "min_denominator: 1e999"),
                "not a finite number"),
        Variant(kind, "infinite_target", "error", cat("    better: lower\n", "    better: lower\n    target: .inf\n"),
                "not a finite number"),
        Variant(kind, "many_indicators", "clean", _edit(name, lambda t: t + "".join(
            f"  - {{id: extra_{i}, title: Extra {i}, tumour_site: Lung, dataset: agg, numerator: seen, "
            f"denominator: patients, better: higher}}\n" for i in range(300)))),
        Variant(kind, "modest_alias", "clean", _edit(name, lambda t: t.replace(
            "limits: [0.95, 0.998]", "limits: &lim [0.95, 0.998]"))),
    ]


def all_variants() -> list[Variant]:
    return [*patient_variants(), *aggregate_variants(), *units_variants(), *mergers_variants(),
            *catalogue_variants()]
