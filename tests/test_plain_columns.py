"""Extract columns that do not hold one plain value per cell get a located problem, never a traceback.

A Parquet file can hold lists, fixed-size arrays or records (structs) in a column. As the unit, period or date
column, a key or a declared column they ended in a polars traceback while loading or counting (found probing the
#16 review's lead about list-typed keys). A length of time (Duration) compared with a date in a cohort passed the
catalogue check and failed while running; a nested covariate failed the model with polars' cast message. Each is
now refused with the file, the header line, the column and a fix;
a nested column that nothing reads is left alone, and its rows are used as before.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from audit_metrics.catalogue import DatasetSpec, load_catalogue
from audit_metrics.exceptions import CatalogueError, ExtractError
from audit_metrics.expressions import ExpressionProblem, compile_expression
from audit_metrics.io import Units, load_dataset

UNITS = Units(pl.DataFrame({"unit_code": ["A01", "B02"], "unit_name": ["A", "B"], "cancer_alliance": ["X", "Y"]}),
              ("cancer_alliance",), {})
BASE = pl.DataFrame({"pid": [1, 2, 3, 4], "code": ["A01", "B02", "A01", "B02"], "year": ["2022/23"] * 4,
                     "when": [date(2022, 5, 1)] * 4, "died": [True, False, False, True], "age": [50, 60, 70, 80]})


def _nested(column: str, kind: str) -> pl.Expr:
    listed = pl.concat_list(column)
    return {"list": listed, "array": listed.list.to_array(1), "struct": pl.struct(column)}[kind].alias(column)


@pytest.mark.parametrize("kind", ["list", "array", "struct"])
@pytest.mark.parametrize(("column", "spec"), [
    ("code", DatasetSpec(path="x.parquet")),                                   # the unit column
    ("year", DatasetSpec(path="x.parquet", period_column="year")),
    ("when", DatasetSpec(path="x.parquet", date_column="when")),
    ("pid", DatasetSpec(path="x.parquet", key=["pid"])),
    ("age", DatasetSpec(path="x.parquet", columns={"age": "integer"})),
])
def test_nested_structural_column_is_a_located_problem(tmp_path: Path, column: str, spec: DatasetSpec,
                                                        kind: str) -> None:
    path = tmp_path / "x.parquet"
    BASE.with_columns(_nested(column, kind)).write_parquet(path)
    with pytest.raises(ExtractError) as err:
        load_dataset("x", path, spec, UNITS, unit_column="code")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.column) == (str(path), 1, column)
    word = {"list": "a list", "array": "a list", "struct": "a record"}[kind]
    assert problem.message.startswith(f"holds {word} in each cell") and "one plain value per cell" in problem.hint


def test_every_nested_column_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    BASE.with_columns(_nested("code", "list"), _nested("year", "struct")).write_parquet(path)
    with pytest.raises(ExtractError) as err:
        load_dataset("x", path, DatasetSpec(path="x.parquet", period_column="year"), UNITS, unit_column="code")
    assert [p.column for p in err.value.problems] == ["code", "year"]


def test_a_nested_column_nothing_reads_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    BASE.with_columns(pl.concat_list("age").alias("notes")).write_parquet(path)
    ds = load_dataset("x", path, DatasetSpec(path="x.parquet", key=["pid"], period_column="year"), UNITS,
                      unit_column="code")
    assert ds.frame.height == BASE.height and ds.accounting.rows_used == BASE.height


def test_cli_says_so_without_a_traceback(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "patients.parquet"
    pl.read_parquet(root / "sample_data" / "patients.parquet").head(500).with_columns(
        _nested("trust_code", "list")).write_parquet(path)
    for command in (["validate"], ["run", "--out", str(tmp_path / "out.csv"), "--quiet"]):
        proc = subprocess.run([sys.executable, "-m", "audit_metrics.cli", command[0], str(root / "indicators.yaml"),
                               "--data", f"patients={path}", *command[1:]], capture_output=True, text=True, cwd=root)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"{path}:1: [column 'trust_code'] holds a list in each cell" in proc.stderr


def test_duration_compared_with_a_date_is_a_catalogue_problem() -> None:
    with pytest.raises(ExpressionProblem) as err:
        compile_expression("when < DATE '2022-04-01'", {"when": pl.Duration("us")})
    assert "Duration" in str(err.value)


@pytest.mark.parametrize("unit", ["us", "ns", "ms"])
def test_datetime_compared_with_a_date_still_works(unit: str) -> None:
    """red17: nanosecond timestamps (pandas, pyarrow, Spark) cannot hold the year 2999 the probe first used, so
    every expression reading one failed the catalogue check."""
    frame = pl.DataFrame({"when": [datetime(2022, 3, 31, 23, 59), datetime(2022, 4, 1), None]},
                         schema={"when": pl.Datetime(unit)})
    expr = compile_expression("when < DATE '2022-04-01'", frame.schema)
    got = frame.select(expr.fill_null(False))["when"].to_list()
    assert got == [w is not None and w.date() < date(2022, 4, 1) for w in frame["when"].to_list()]
    durations = pl.DataFrame({"gap": [timedelta(days=3), timedelta(days=40)]})  # a length against a length: fine
    assert durations.select(compile_expression("gap > gap", durations.schema))["gap"].to_list() == [False, False]


@pytest.mark.parametrize("kind", ["list", "struct"])
def test_nested_covariate_is_a_catalogue_problem_at_each_model(tmp_path: Path, kind: str) -> None:
    """A nested covariate was 'the risk model could not be fitted (cannot cast List type ...)' at run time."""
    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "patients.parquet"
    pl.read_parquet(root / "sample_data" / "patients.parquet").head(500).with_columns(
        _nested("sex", kind)).write_parquet(path)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(root / "indicators.yaml", data={"patients": path})
    models = [i.id for i in load_catalogue(root / "indicators.yaml").catalogue.indicators
              if i.dataset == "patients" and i.risk_adjustment is not None
              and "sex" in [c.name for c in i.risk_adjustment.covariates]]
    said = [p for p in err.value.problems if "covariate 'sex' holds" in p.message]
    assert models and sorted(p.message.split(":")[0] for p in said) == sorted(models)
    assert all(p.line is not None and p.file.endswith("indicators.yaml") for p in said)


def test_a_nested_breakdown_column_is_a_catalogue_problem(tmp_path: Path) -> None:
    """red17: a list-typed breakdown column passed validate and ended in a polars traceback in the Inequalities view
    and run --inequalities-out."""
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "indicators.yaml").read_text(encoding="utf-8"))
    column = raw["breakdowns"][0]["column"] if isinstance(raw["breakdowns"][0], dict) else raw["breakdowns"][0]
    path = tmp_path / "patients.parquet"
    pl.read_parquet(root / "sample_data" / "patients.parquet").head(500).with_columns(
        _nested(column, "list")).write_parquet(path)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(root / "indicators.yaml", data={"patients": path})
    said = [p for p in err.value.problems if p.message.startswith(f"breakdown column {column!r} holds List")]
    assert len(said) == 1 and said[0].line is not None
