"""Issue #16: a CSV's plain whole-number and true/false columns are read typed by polars instead of as text
and typed by our rules. The oracle is the text path itself (``_read_csv_typed`` disabled): every value,
type, exclusion reason and example line must be the same, whatever the file holds."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit_metrics import io
from audit_metrics.catalogue import DatasetSpec
from audit_metrics.io import Units, dataset_schema, load_dataset, reading_once

UNITS = Units(pl.DataFrame({"unit_code": ["A1", "B2", "001", "C3"], "unit_name": ["a", "b", "c", "d"]}), ())

# cells each column may hold: the usual values, and the spellings where polars' reader and our rules could part
POOLS: dict[str, list[str]] = {
    "id": ["1", "2", "17", "123456", "05", "+5", "-0", " 7", '"8"', '""', '" "', "", "9007199254740993",
           "1e3", "5.0", "NA", "x"],
    "flag": ["true", "false", "True", "FALSE", "tRuE", '"true"', "", '""', "t", "yes", "1", " true", "NA"],
    "num": ["0", "3", "12", "", "2.5", "-1", "NaN", "inf", '"1,000"'],
    "den": ["10", "20", "30", "15", "", "x"],
    "real": ["1", "2", "3.5", "", "0"],
    "code": ["A1", "B2", "001", "1", " C3", "ZZ", ""],
    "period": ["2022/23", "2023/24", "1", ""],
    "when": ["2024-01-13", "13/01/2024", "2024-01-13 10:00:00", "", "2024-02-30"],
    "note": ["a", '"b, c"', '"quoted ""x"""', "", "NA"],
}
SAFE = {"id": 4, "flag": 5, "num": 3, "den": 4, "real": 5, "code": 3, "period": 2, "when": 2, "note": 2}


def _write(path: Path, rng: random.Random, rows: int, hostile: float) -> None:
    lines = [",".join(POOLS)]
    for i in range(rows):
        cells = []
        for col, pool in POOLS.items():
            if col == "id" and rng.random() > hostile:
                cells.append(str(i + 1))  # mostly a plain running number, like a patient id
                continue
            cells.append(rng.choice(pool if rng.random() < hostile else pool[: SAFE[col]]))
        if rng.random() < hostile / 10:
            cells = cells[: rng.randint(1, len(cells) - 1)]  # a short row
        lines.append(",".join(cells))
    if rng.random() < hostile:
        lines += ["", "Source: a footnote"]
    path.write_text("\n".join(lines) + "\n")


def _load(path: Path, spec: DatasetSpec, *, typed: bool, monkeypatch: pytest.MonkeyPatch,
          **kw: object) -> tuple[object, ...]:
    with monkeypatch.context() as m:
        if not typed:  # the text path, checked before it is parsed (no check or line scan beside the parser)
            m.setattr(io, "_read_csv_typed", lambda *a, **k: None)
            m.setattr(io, "_OVERLAP", False)
        with reading_once():  # as the CLI runs: the catalogue check's read is kept for the load
            try:
                schema = dataset_schema(path, spec)
                loaded = load_dataset("d", path, spec, UNITS, unit_column="code", **kw)  # type: ignore[arg-type]
            except Exception as exc:  # the same refusal, located the same way
                return None, type(exc).__name__, str(exc)
    return schema, loaded.frame, loaded.accounting


def _same(path: Path, spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch, **kw: object) -> None:
    new = _load(path, spec, typed=True, monkeypatch=monkeypatch, **kw)
    old = _load(path, spec, typed=False, monkeypatch=monkeypatch, **kw)
    assert new[0] == old[0]
    if isinstance(old[1], pl.DataFrame):
        assert isinstance(new[1], pl.DataFrame), new
        assert_frame_equal(new[1], old[1], check_exact=True)
    else:
        assert new[1] == old[1]
    assert new[2] == old[2]  # rows read and used, exclusions (reason, count, example lines, in order), notes


SPECS = [
    {},
    {"period_column": "period"},
    {"key": ["id"]},
    {"columns": {"id": "integer", "flag": "boolean"}},
    {"columns": {"id": "float", "flag": "string", "when": "date"}},
    {"columns": {"id": "string"}, "periods": ["2022/23"]},
    {"unit_column": "code", "ranges": {"id": [1, 100]}},
]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("hostile", [0.0, 0.05, 0.5])
def test_typed_read_changes_no_value_or_exclusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  seed: int, hostile: float) -> None:
    rng = random.Random(seed * 7 + int(hostile * 100))
    path = tmp_path / "extract.csv"
    _write(path, rng, rows=rng.choice([1, 3, 40, 300]), hostile=hostile)
    spec = DatasetSpec(path=str(path), **SPECS[seed % len(SPECS)])
    _same(path, spec, monkeypatch)
    # as an aggregate table: counts (whole numbers), a real column, and numerator <= denominator
    _same(path, spec, monkeypatch, count_columns=["num", "den", "id"], real_columns=["real", "flag"],
          count_pairs=[("num", "den")])
    half = spec.model_copy(update={"fractional_counts": "allow"})
    _same(path, half, monkeypatch, count_columns=["num", "den", "id"], real_columns=["real"])


def test_a_plain_extract_is_read_typed(tmp_path: Path) -> None:
    """The point of the change: ids and flags come back typed from the reader (none read again as text)."""
    path = tmp_path / "plain.csv"
    path.write_text("id,code,flag,age,site\n1,A1,true,65,Lung\n2,B2,false,,Breast\n3,001,,70,\n")
    raw, layout = io._read_for_typing(path, DatasetSpec(path=str(path)))
    assert dict(layout.native) == {"id": 0, "code": 1, "flag": 2, "age": 3} or dict(layout.native) == {
        "id": 0, "flag": 2, "age": 3}
    assert raw.schema["id"] == pl.Int64 and raw.schema["flag"] == pl.Boolean and raw.schema["site"] == pl.String
    # the unit code is text in the loaded frame, with its leading zeros
    loaded = load_dataset("d", path, DatasetSpec(path=str(path)), UNITS, unit_column="code")
    assert loaded.frame["code"].to_list() == ["A1", "B2", "001"]
    assert loaded.frame["id"].dtype == pl.Int64 and loaded.frame["flag"].to_list() == [True, False, None]


def test_whole_numbers_beyond_2_53_are_typed_as_the_text_rules_type_them(tmp_path: Path) -> None:
    """Text is typed through a float: 9007199254740993 becomes ...992. The typed reader would keep it exact,
    so such a column is read as text and typed by our rules, as before."""
    path = tmp_path / "big.csv"
    path.write_text("id,code\n9007199254740993,A1\n2,B2\n")
    loaded = load_dataset("d", path, DatasetSpec(path=str(path)), UNITS, unit_column="code")
    assert loaded.frame["id"].to_list() == [9007199254740992, 2]


def test_a_value_polars_cannot_parse_after_the_inferred_rows_falls_back_to_the_text_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polars infers types from the first 10,000 rows: a later '5.0' or 'TRUE ' makes its typed read fail,
    and the file is read as text and typed by our rules (5.0 is the whole number 5; padding is trimmed)."""
    path = tmp_path / "late.csv"
    rows = [f"{i},A1,true,{i % 90}" for i in range(1, 12_001)]
    rows[11_500] = "11501,A1,TRUE ,5.0"
    path.write_text("id,code,flag,age\n" + "\n".join(rows) + "\n")
    spec = DatasetSpec(path=str(path))
    with pytest.raises(pl.exceptions.ComputeError):
        pl.read_csv(path, infer_schema_length=10_000)
    _same(path, spec, monkeypatch)
    loaded = load_dataset("d", path, spec, UNITS, unit_column="code")
    assert loaded.frame.schema["age"] == pl.Int64 and loaded.frame.schema["flag"] == pl.Boolean
    assert loaded.frame.filter(pl.col("id") == 11501).select("flag", "age").row(0) == (True, 5)
    assert loaded.accounting.rows_used == 12_000


def test_the_digest_hashed_during_the_checks_is_the_files_and_follows_a_rewrite(tmp_path: Path) -> None:
    """The CSV checks read every byte, so they hash them for the load's digest (oracle: hashlib on the
    file); a file rewritten after the check is hashed again, never given the old digest."""
    import hashlib
    import os

    path = tmp_path / "d.csv"
    path.write_text("id,code\n1,A1\n2,B2\n")
    spec = DatasetSpec(path=str(path))
    with reading_once():
        dataset_schema(path, spec)
        assert io._DIGESTS  # the checks' pass kept it
        loaded = load_dataset("d", path, spec, UNITS, unit_column="code")
        assert loaded.digest == hashlib.sha256(path.read_bytes()).hexdigest()
        path.write_text("id,code\n1,A1\n2,B2\n3,C3\n")
        os.utime(path, ns=(1, 1))
        assert io.file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not io._DIGESTS
