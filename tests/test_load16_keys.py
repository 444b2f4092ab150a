"""Repeated keys and unit codes in a load (#16): the sorted-key search for repeated keys, the failed rows
gathered by position, and the merged codes replaced alone, each against a straightforward oracle."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import DatasetSpec
from audit_metrics.io import Units, _shared_key_rows, load_dataset


def _oracle(frame: pl.DataFrame, columns: list[str]) -> list[int]:
    """What the load used before: polars' own test, every value hashed."""
    key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
    return frame.select(key.is_duplicated()).to_series().arg_true().to_list()


def _values(rng: random.Random, kind: str, n: int) -> list[object]:
    pool: dict[str, list[object]] = {
        "int": [0, 1, -1, 7, 2**62, -(2**62), 3],
        "text": ["", " ", "a", "A", "a ", " a", "Ysbyty Gwynedd", "Ysbyty Gwynedd\u0301", "=1+1", "\u00e9", "e\u0301"],
        "date": [dt.date(2020, 1, 1), dt.date(1900, 2, 28), dt.date(2024, 2, 29)],
        "bool": [True, False],
        "float": [0.0, -0.0, 1.5, float("nan"), float("inf")],
    }
    spread = rng.choice([1, 2, 100])  # few values (many repeats) to mostly distinct
    out: list[object] = []
    for i in range(n):
        r = rng.random()
        if r < 0.1:
            out.append(None)
        elif r < 0.6 or kind in ("bool",):
            out.append(rng.choice(pool[kind]))
        elif kind == "int":
            out.append(i * spread)
        elif kind == "text":
            out.append(f"P{i * spread:07d}")
        elif kind == "date":
            out.append(dt.date(2000, 1, 1) + dt.timedelta(days=i * spread))
        else:
            out.append(i * spread / 7)
    return out


DTYPES = {"int": pl.Int64, "text": pl.String, "date": pl.Date, "bool": pl.Boolean, "float": pl.Float64}


@pytest.mark.parametrize("kind", sorted(DTYPES))
@pytest.mark.parametrize("seed", range(12))
def test_shared_key_rows_match_is_duplicated(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 3, 50, 400])
    frame = pl.DataFrame({"k": pl.Series(_values(rng, kind, n), dtype=DTYPES[kind])})
    assert _shared_key_rows(frame, ["k"]).to_list() == _oracle(frame, ["k"])


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int16, pl.UInt8, pl.UInt32, pl.UInt64, pl.Int32])
def test_every_integer_width(dtype: pl.DataType) -> None:
    values = [None, 1, 2, 1, None, 3, 0, 0, 127, 127] if dtype != pl.UInt8 else [None, 1, 255, 255, 0, 1]
    frame = pl.DataFrame({"k": pl.Series(values, dtype=dtype)})
    assert _shared_key_rows(frame, ["k"]).to_list() == _oracle(frame, ["k"])


@pytest.mark.parametrize(("blanks", "expected"), [(0, [0, 2]), (1, [0, 2]), (2, [0, 2, 4, 5]), (3, [0, 2, 4, 5, 6])])
def test_blank_keys_are_equal_to_each_other(blanks: int, expected: list[int]) -> None:
    frame = pl.DataFrame({"k": pl.Series(["a", "b", "a", "c", *[None] * blanks], dtype=pl.String)})
    assert _shared_key_rows(frame, ["k"]).to_list() == expected == _oracle(frame, ["k"])


@pytest.mark.parametrize("seed", range(6))
def test_keys_of_several_columns(seed: int) -> None:
    rng = random.Random(seed)
    n = 300
    frame = pl.DataFrame({"a": pl.Series(_values(rng, "int", n), dtype=pl.Int64).fill_null(1) % 5,
                          "b": pl.Series(_values(rng, "text", n), dtype=pl.String)})
    assert _shared_key_rows(frame, ["a", "b"]).to_list() == _oracle(frame, ["a", "b"])


# --- the load: a straightforward row-by-row oracle of the exclusion rules -------------------------------------

UNITS = Units(pl.DataFrame({"unit_code": ["A01", "B02", "C03"], "unit_name": ["A", "B", "C"],
                            "cancer_alliance": ["X", "X", "Y"]}), ("cancer_alliance",), {"OLD": "C03", "ZQ9": "B02"})
SPEC = DatasetSpec(path="x.csv", key=["pid"], ranges={"age": (18, 110)})


def _expected(rows: list[tuple[str, str, str]]) -> tuple[dict[str, list[int]], list[tuple[int, str]]]:
    """Row by row, as the catalogue documents it: a row takes the reason of the first check it fails; a key seen
    before among the rows that passed every other check is a repeat; the rest are used, with codes trimmed and
    merged. Returns the excluded lines per reason and the (line, code) of each row used."""
    excluded: dict[str, list[int]] = {}
    used: list[tuple[int, str]] = []
    seen: set[str] = set()
    for line, (pid, code, age) in enumerate(rows, start=2):
        trimmed = code.strip()
        merged = UNITS.mergers.get(trimmed, trimmed)
        reason = None
        if not (pid or trimmed or age):
            reason = "blank row"
        elif not trimmed:
            reason = "missing unit code (code)"
        elif merged not in set(UNITS.frame["unit_code"]):
            reason = "unknown unit code in code"
        elif age and not 18 <= int(age) <= 110:
            reason = "age outside the allowed range [18, 110]"
        elif pid in seen:
            reason = "repeated key (pid)"
        if reason is None and pid:  # a blank key is a value of its own
            seen.add(pid)
        elif reason is None:
            if "" in seen:
                reason = "repeated key (pid)"
            seen.add("")
        if reason:
            excluded.setdefault(reason, []).append(line)
        else:
            used.append((line, merged))
    return excluded, used


@pytest.mark.parametrize("seed", range(15))
def test_load_exclusions_match_row_by_row_oracle(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    codes = ["A01", "B02", "C03", " A01", "B02 ", "OLD", " OLD ", "ZQ9", "XXX", "", " "]
    rows = [(rng.choice(["", *[str(i) for i in range(rng.choice([3, 20, 200]))]]), rng.choice(codes),
             rng.choice(["", "17", "18", "60", "111"])) for _ in range(rng.choice([1, 5, 60, 300]))]
    rows.append(("last", "A01", "60"))  # a blank last line would be below the table, not a row
    path = tmp_path / "x.csv"
    path.write_text("pid,code,age\n" + "".join(f"{p},{c},{a}\n" for p, c, a in rows))
    ds = load_dataset("x", path, SPEC, UNITS, unit_column="code")
    excluded, used = _expected(rows)
    got = {e.reason: e for e in ds.accounting.exclusions}
    assert {r: e.rows for r, e in got.items()} == {r: len(lines) for r, lines in excluded.items()}
    assert {r: e.examples for r, e in got.items()} == {r: tuple(lines[:5]) for r, lines in excluded.items()}
    assert list(zip(ds.frame["__row"].to_list(), ds.frame["code"].to_list(), strict=True)) == used
    recoded = sum(1 for line, _ in used if rows[line - 2][1].strip() in UNITS.mergers)
    note = [n for n in ds.accounting.notes if "recoded from a merged unit code" in n]
    assert (note[0].startswith(f"{recoded:,} rows recoded") if recoded else not note), ds.accounting.notes


@pytest.mark.parametrize(("ages", "reasons"), [
    (["60", "abc", "17", ""], {"value is not a number in column 'age'": (3,), "age outside the allowed range [18, 110]": (4,)}),
    (["", "", "", ""], {}),
    (["sixty", "x", "", "y"], {"value is not a number in column 'age'": (2, 3, 5)}),
])
def test_a_range_column_read_as_text_is_checked_as_numbers(tmp_path: Path, ages: list[str],
                                                              reasons: dict[str, tuple[int, ...]]) -> None:
    """A ranged column with a word in it, or with no value at all, was read as text and the range check then
    failed inside polars (a traceback): now each non-number is excluded on its row, with its line."""
    path = tmp_path / "x.csv"
    path.write_text("pid,code,age\n" + "".join(f"{i},A01,{a}\n" for i, a in enumerate(ages)))
    ds = load_dataset("x", path, SPEC, UNITS, unit_column="code")
    assert {e.reason: e.examples for e in ds.accounting.exclusions} == reasons
    assert ds.accounting.balanced and ds.frame.schema["age"] == pl.Float64


@pytest.mark.parametrize("seed", range(20))
def test_rows_dropped_by_runs_equal_a_filter(seed: int) -> None:
    """The used rows, joined from the runs kept: the same table as polars' filter, whatever the chunks."""
    from audit_metrics.io import _without_rows

    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 7, 300])
    parts = [pl.DataFrame({"a": list(range(i, i + 50)), "b": [f"x{j}" for j in range(i, i + 50)]}) for i in range(0, 300, 50)]
    frame = pl.concat(parts, rechunk=False).head(n)  # several chunks per column
    frame = frame.with_columns(pl.Series("c", [rng.random() for _ in range(n)]))  # one chunk: misaligned
    p = rng.choice([0.0, 0.01, 0.2, 1.0])
    drop = pl.Series([rng.random() < p for _ in range(n)], dtype=pl.Boolean)
    if n and rng.random() < 0.3:
        drop[0] = True
        drop[n - 1] = True
    got = _without_rows(frame, drop, drop.arg_true())
    assert got.equals(frame.filter(~drop))
    assert got.schema == frame.schema


@pytest.mark.parametrize(("dtype", "distinct"), [(pl.Date, 1_100), (pl.Date, 4_000), (pl.Int64, 4_900),
                                                 (pl.Float64, 9_000), (pl.Int64, 30_000)])
def test_text_typed_per_distinct_value_equals_typing_every_row(dtype: pl.DataType, distinct: int) -> None:
    """A column of 60,000 values with a thousand to thousands of distinct ones (dates of diagnosis over three
    years) is typed once per distinct value: the same column as typing every row, messy values included."""
    from audit_metrics.io import _cast_text, _cast_text_column

    rng = random.Random(distinct)
    if dtype == pl.Date:
        pool = [f"{(dt.date(2020, 1, 1) + dt.timedelta(days=i)).isoformat()}" for i in range(distinct - 4)]
    else:
        pool = [f" {i * 3 - 50} " if dtype == pl.Int64 else f"{i / 8}" for i in range(distinct - 4)]
    pool += ["", "NA", "not a value", "=1+1"]
    column = pl.Series("c", [rng.choice(pool) for _ in range(60_000)], dtype=pl.String)
    got = column.to_frame().select(_cast_text_column(column, dtype)).to_series()
    want = column.to_frame().select(_cast_text(pl.col("c"), dtype)).to_series()
    assert got.dtype == want.dtype and got.equals(want)


@pytest.mark.parametrize("sizes", [[], [5], [3, 4, 1], [50] * 7])
def test_row_numbers_follow_the_chunks_of_the_table(sizes: list[int]) -> None:
    """The row-number column counts from the first line and is cut where the table's columns are, so a select
    keeps the table's chunks (a realignment would join them into one)."""
    from audit_metrics.io import ROW, _with_row_numbers

    parts = [pl.DataFrame({"a": list(range(n)), "b": [str(i) for i in range(n)]}) for n in sizes] or [
        pl.DataFrame({"a": [], "b": []}, schema={"a": pl.Int64, "b": pl.String})]
    frame = pl.concat(parts, rechunk=False)
    got = _with_row_numbers(frame, 7)
    assert got[ROW].to_list() == list(range(7, 7 + frame.height))
    assert got.drop(ROW).equals(frame)
    assert got.select(pl.all()).n_chunks("all") == [max(len(sizes), 1)] * 3


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("name", ["__row", "__reason", "__event", " __expected "])
def test_a_column_named_as_the_tools_own_is_refused_with_its_name(tmp_path: Path, fmt: str, name: str) -> None:
    """A Parquet file with a '__row' column raised polars' DuplicateError (the load adds its row numbers beside
    the columns), and before that was silently overwritten; now a located problem names the column."""
    from audit_metrics.exceptions import ExtractError

    frame = pl.DataFrame({"pid": [1, 2], "code": ["A01", "A01"], name: [7, 8]})
    path = tmp_path / f"x.{fmt}"
    frame.write_parquet(path) if fmt == "parquet" else frame.write_csv(path)
    with pytest.raises(ExtractError) as info:
        load_dataset("x", path, DatasetSpec(path=path.name, key=["pid"]), UNITS, unit_column="code")
    problem = info.value.problem
    assert problem.file == str(path) and problem.column == name.strip() and problem.line == 1
    assert "audit_metrics uses for its own bookkeeping" in problem.message


@pytest.mark.parametrize(("column", "values", "held"), [
    ("period", ["2021/22", "2022/23"], "text"),
    ("code", ["A01", "A01"], "text"),
    ("stage", pl.Series(["1", "2"], dtype=pl.Categorical), "text"),
    ("stage", pl.Series(["1", "2"], dtype=pl.Enum(["1", "2"])), "text"),
    ("when", [dt.date(2020, 1, 1), dt.date(2021, 1, 1)], "a date (YYYY-MM-DD)"),
    ("flag", [True, False], "true/false"),
])
def test_a_range_on_a_column_that_is_not_numbers_is_a_located_problem(tmp_path: Path, column: str, values: object,
                                                                       held: str) -> None:
    """A range on the period or unit column, or on a categorical, date or true/false column, failed inside polars
    (a traceback); now the problem names the column, the range and what the column holds."""
    from audit_metrics.exceptions import ExtractError

    frame = pl.DataFrame({"pid": [1, 2], "code": ["A01", "A01"], "period": ["2021/22", "2022/23"]})
    frame = frame.with_columns(pl.Series(column, values))
    path = tmp_path / "x.parquet"
    frame.write_parquet(path)
    spec = DatasetSpec(path="x.parquet", key=["pid"], period_column="period", ranges={column: (0, 5)})
    with pytest.raises(ExtractError) as info:
        load_dataset("x", path, spec, UNITS, unit_column="code")
    problem = info.value.problem
    assert problem.column == column and problem.line == 1
    assert problem.message == (f"column {column!r} has an allowed range [0, 5] (datasets.x.ranges) but holds {held}, "
                               "not numbers")
