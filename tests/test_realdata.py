"""Real tables as users have them (issue #9): units without groups, units from the data, spreadsheets as
published, one way to name the catalogue everywhere, located hints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from rug_support import rug_of
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.cli import main
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
VIEWS = ("Overview", "Indicator", "Trust profile", "Cancer Alliance", "Inequalities", "Outliers & export",
         "Indicator catalogue", "Data", "Releases")

UNGROUPED = """version: 1
datasets:
  lung_cns:
    path: lung_cns_by_trust.csv
    period_column: period
    columns: {trust_code: string, period: string, patients: integer, seen_by_cns: integer}
  personalised_care:
    path: personalised_care_by_trust.csv
    period_column: period
    columns: {trust_code: string, period: string, patients: integer, hna_offered: integer}
units:
  file: trusts_min.csv
  code: trust_code
  name: trust_name
indicators:
  - id: lung_cns
    title: Seen by a lung cancer nurse specialist
    tumour_site: Lung
    dataset: lung_cns
    numerator: seen_by_cns
    denominator: patients
    better: higher
    multiplier: 100
  - id: pc_hna_offered
    title: Holistic needs assessment offered
    dataset: personalised_care
    numerator: hna_offered
    denominator: patients
    better: higher
    multiplier: 100
"""


def _ungrouped(folder: Path) -> Path:
    """The aggregate sample tables with a units file of code and name only (no alliance, no region)."""
    for name in ("lung_cns_by_trust.csv", "personalised_care_by_trust.csv"):
        shutil.copy(ROOT / "sample_data" / name, folder / name)
    pl.read_csv(ROOT / "sample_data" / "trusts.csv").select("trust_code", "trust_name").write_csv(
        folder / "trusts_min.csv")
    path = folder / "indicators.yaml"
    path.write_text(UNGROUPED, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ungrouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ungrouped(tmp_path_factory.mktemp("ungrouped"))


def _every_view(catalogue: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, AppTest]:
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    seen = {}
    for view in VIEWS:
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["view"] = view
        at.run()
        assert not at.exception, (view, [e.value for e in at.exception])
        assert not at.error, (view, [e.value for e in at.error])
        assert at.sidebar.radio[0].value == view
        seen[view] = at
    return seen


# ------------------------------------------------------------------ item 1: groups are optional


def test_units_with_code_and_name_only_every_view(ungrouped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    views = _every_view(ungrouped, monkeypatch)
    alliance = views["Cancer Alliance"]
    message = " ".join(i.value for i in alliance.info)
    assert "No grouping is defined" in message and "groups: [cancer_alliance, region]" in message
    indicator = views["Indicator"]
    assert indicator.radio(key="ind_level").options == ["Trusts"]
    assert indicator.get("plotly_chart")  # the funnel is drawn
    overview = views["Overview"]
    assert [s.label for s in overview.selectbox if s.key in ("ov_alliance", "ov_region")] == []
    assert rug_of(overview) is not None  # the rug is drawn, with no groups
    outliers = views["Outliers & export"]
    assert "cancer_alliance" not in outliers.dataframe[0].value.columns
    # a topic-free indicator (no tumour_site) is grouped as "All"
    assert "All" in overview.multiselect(key="ov_sites").options


def test_units_with_code_and_name_only_cli_and_exports(ungrouped: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.xlsx"
    acc = tmp_path / "accounting.csv"
    assert main(["run", str(ungrouped), "--out", str(out), "--accounting-out", str(acc), "--quiet"]) == 0
    assert main(["validate", str(ungrouped), "--rows"]) == 0
    table = run_audit(load_catalogue(ungrouped)).table()
    # two levels only: trusts and England; every trust's parent is the nation
    assert set(table["level"].unique()) == {"trust", "national"}
    assert set(table.filter(pl.col("level") == "trust")["parent_code"].unique()) == {"national"}


def test_grouped_by_another_level_names_it(ungrouped: Path, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    """Units grouped by region only: the grouped view shows regions, named as such."""
    folder = ungrouped.parent
    pl.read_csv(ROOT / "sample_data" / "trusts.csv").select("trust_code", "trust_name", "region").write_csv(
        folder / "trusts_region.csv")
    text = UNGROUPED.replace("file: trusts_min.csv", "file: trusts_region.csv").replace(
        "name: trust_name\n", "name: trust_name\n  groups: [region]\n")
    catalogue = folder / "by_region.yaml"
    catalogue.write_text(text, encoding="utf-8")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["view"] = "Cancer Alliance"
    at.run()
    assert not at.exception
    assert at.selectbox(key="alliance").label == "Region"
    assert "grouped by region" in " ".join(c.value for c in at.caption)
    assert len(json.loads(at.get("plotly_chart")[1].proto.spec)["data"]) > 0


# ------------------------------------------------------------------ item 9: catalogue ergonomics

OE_UNITS = "code,name\nA1,Alpha\nB2,Beta\n"
OE_TABLE = "code,period,observed,expected\nA1,2023,10,12.5\nB2,2023,20,15.1\nZZ9,2023,4,3\nZZ8,2023,1,2\nZZ9,2024,4,3\n"
OE_CATALOGUE = """version: 1
datasets:
  oe: {path: oe.csv, period_column: period AGGREGATE}
units: {file: units.csv, code: code, name: name}
indicators:
  - id: shmi
    title: SHMI
    dataset: oe
    numerator: observed
    expected: expected
    statistic: ratio
    better: lower
"""


def _oe(folder: Path, *, aggregate: bool) -> Path:
    (folder / "units.csv").write_text(OE_UNITS, encoding="utf-8")
    (folder / "oe.csv").write_text(OE_TABLE, encoding="utf-8")
    path = folder / "cat.yaml"
    path.write_text(OE_CATALOGUE.replace(" AGGREGATE", ", aggregate: true" if aggregate else ""), encoding="utf-8")
    return path


@pytest.mark.parametrize("how", ["positional", "--catalogue", "--indicators"])
def test_run_and_validate_take_the_catalogue_the_same_way(tmp_path: Path, how: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = str(_oe(tmp_path, aggregate=True))
    given = [catalogue] if how == "positional" else [how, catalogue]
    assert main(["validate", *given]) == 0
    assert main(["run", *given, "--out", str(tmp_path / "r.csv"), "--quiet"]) == 0
    assert pl.read_csv(tmp_path / "r.csv").filter(pl.col("level") == "trust").height == 2


def test_two_different_catalogues_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = str(_oe(tmp_path, aggregate=True))
    with pytest.raises(SystemExit):
        main(["run", catalogue, "--catalogue", str(tmp_path / "other.yaml"), "--out", str(tmp_path / "r.csv")])
    assert "two catalogues given" in capsys.readouterr().err


def test_app_takes_the_catalogue_as_the_command_line_does(tmp_path: Path) -> None:
    from audit_metrics.ui.state import catalogue_path

    path = tmp_path / "mine.yaml"
    assert catalogue_path([str(path)]) == path.resolve()
    assert catalogue_path(["--catalogue", str(path)]) == path.resolve()
    assert catalogue_path(["--indicators", str(path), "--edit"]) == path.resolve()
    assert catalogue_path([f"--catalogue={path}"]) == path.resolve()


def test_count_numerator_without_aggregate_hints_at_aggregate(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_oe(tmp_path, aggregate=False))]) == 1
    err = capsys.readouterr().err
    assert "cat.yaml:9: shmi.numerator" in err
    assert "add 'aggregate: true' under datasets: oe:" in err


def test_unknown_codes_are_named_in_the_accounting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_oe(tmp_path, aggregate=True)), "--rows"]) == 0
    out = capsys.readouterr().out
    assert "3 excluded: unknown unit code in code" in out
    assert "2 unit code(s) in code are not in the units file: ZZ8 (1 row), ZZ9 (2 rows)" in out
    run = run_audit(load_catalogue(tmp_path / "cat.yaml"))
    acc = run.datasets["oe"]
    assert acc.balanced and acc.rows_read == 5 and acc.rows_used == 2


def test_unknown_codes_listed_first_ten(tmp_path: Path) -> None:
    folder = _oe(tmp_path, aggregate=True).parent
    extra = "".join(f"Q{i:02d},2023,1,1\n" for i in range(15))
    (folder / "oe.csv").write_text(OE_TABLE + extra, encoding="utf-8")
    acc = run_audit(load_catalogue(folder / "cat.yaml")).datasets["oe"]
    note = next(n for n in acc.notes if "not in the units file" in n)
    assert note.startswith("17 unit code(s)") and "Q00 (1 row)" in note and "and 7 more" in note
    assert "ZZ9" not in note  # sorted: Q00..Q09 are the first ten


# ------------------------------------------------------------------ item 1: units from the data itself

FROM_CATALOGUE = """version: 1
datasets:
  oe: {path: oe_named.csv, aggregate: true, period_column: period}
units: UNITS
indicators:
  - id: shmi
    title: SHMI
    dataset: oe
    numerator: observed
    expected: expected
    statistic: ratio
    better: lower
"""
NAMED = ("code,name,region,period,observed,expected\nA1,Alpha,North,2023,10,12.5\nB2,Beta,South,2023,20,15.1\n"
         "A1,Alpha Renamed,North,2024,4,3\n,,,2024,1,1\nOLD,Old trust,North,2023,2,2\n")


def _from(folder: Path, units: str, table: str = NAMED) -> Path:
    (folder / "oe_named.csv").write_text(table, encoding="utf-8")
    path = folder / "from.yaml"
    path.write_text(FROM_CATALOGUE.replace("UNITS", units), encoding="utf-8")
    return path


def test_units_from_the_dataset(tmp_path: Path) -> None:
    path = _from(tmp_path, "{from: oe, code: code, name: name, groups: [region]}")
    run = run_audit(load_catalogue(path))
    units = run.units.frame.sort("unit_code")
    # one unit per distinct code; the name from the code's last (most recent) row
    assert units["unit_code"].to_list() == ["A1", "B2", "OLD"]
    assert units["unit_name"].to_list() == ["Alpha Renamed", "Beta", "Old trust"]
    acc = run.datasets["oe"]
    assert acc.balanced and acc.rows_used == 4
    assert [(e.reason, e.rows) for e in acc.exclusions] == [("missing unit code (code)", 1)]
    table = run.results["shmi"].table
    assert set(table["level"].unique()) == {"trust", "region", "national"}


def test_units_from_the_dataset_with_mergers(tmp_path: Path) -> None:
    (tmp_path / "mergers.csv").write_text("old_code,new_code\nOLD,A1\n", encoding="utf-8")
    path = _from(tmp_path, "{from: oe, code: code, name: name, mergers: mergers.csv}")
    run = run_audit(load_catalogue(path))
    assert sorted(run.units.frame["unit_code"].to_list()) == ["A1", "B2"]
    a1 = run.results["shmi"].table.filter(pl.col("unit_code") == "A1", pl.col("level") == "trust")
    assert a1["observed"][0] == 16  # 10 + 4 + the merged trust's 2
    assert any("recoded from a merged unit code" in n for n in run.datasets["oe"].notes)


def test_units_from_the_dataset_problems_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clash = NAMED.replace("A1,Alpha Renamed,North", "A1,Alpha Renamed,South")
    path = _from(tmp_path, "{from: oe, code: code, name: name, groups: [region]}", clash)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "oe_named.csv:4: [column 'region'] unit 'A1' has more than one region ('North', 'South'; lines 2 and 4)" in err
    path = _from(tmp_path, "{from: oe, code: code, name: trust_name}")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "from.yaml:4: units.name: column 'trust_name' is not in dataset 'oe'" in err
    assert "columns found: code, name, region, period, observed, expected" in err
    path = _from(tmp_path, "{from: oe, file: units.csv, code: code, name: name}")
    assert main(["validate", str(path)]) == 1
    assert "either as a file (file: trusts.csv) or from a dataset (from: DATASET)" in capsys.readouterr().err


# ------------------------------------------------------------------ item 6: spreadsheets as published

PUBLISHED_CATALOGUE = """version: 1
datasets:
  cwt: {DATASET}
units: {from: cwt, code: ODS CODE, name: PROVIDER}
indicators:
  - id: fds
    title: Told within 28 days
    dataset: cwt
    numerator: WITHIN
    denominator: TOTAL
    better: higher
"""


def _published_workbook(path: Path) -> Path:
    """A provider workbook shaped as NHS England publishes them: a notes sheet first; on the data sheet a
    merged title, a merged group heading above the header on row 4, an unnamed spacer column, a blank
    line between blocks, then notes and a copyright line below the table."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active["A1"] = "About these statistics"
    sheet = book.create_sheet("Provider")
    sheet["A1"] = "Cancer waiting times: provider based"
    sheet.merge_cells("A1:F1")
    sheet["A2"] = "Oct-23"
    sheet["D3"] = "NUMBER OF PEOPLE"
    sheet.merge_cells("D3:E3")
    for col, name in enumerate(["", "ODS CODE", "PROVIDER", "TOTAL", "WITHIN", ""], start=1):
        sheet.cell(row=4, column=col, value=name or None)
    rows = {5: ["RCF", "AIREDALE", 76, 29], 6: ["RAE", "BRADFORD", 100, 80], 8: ["RXX", "EXETER", 50, 30],
            9: ["RYY", "YORK", 40, 20]}
    for row, values in rows.items():
        for col, value in enumerate(values, start=2):
            sheet.cell(row=row, column=col, value=value)
    sheet["A11"] = "Notes:"
    sheet["A12"] = "(1) ODS code of the accountable provider"
    sheet["B13"] = "Copyright © 2023, NHS England"
    book.save(path)
    return path


def _published(folder: Path, dataset: str) -> Path:
    path = folder / "cat.yaml"
    path.write_text(PUBLISHED_CATALOGUE.replace("{DATASET}", dataset), encoding="utf-8")
    return path


@pytest.mark.parametrize("sheet", ["Provider", "2"])
def test_workbook_as_published(tmp_path: Path, sheet: str) -> None:
    _published_workbook(tmp_path / "cwt.xlsx")
    run = run_audit(load_catalogue(_published(tmp_path, f"{{path: cwt.xlsx, sheet: {sheet}, header_row: 4}}")))
    acc = run.datasets["cwt"]
    # rows 5-13 read; Excel's own row numbers in the accounting
    assert acc.balanced and acc.rows_read == 9 and acc.rows_used == 4
    assert [(e.reason, e.rows, e.examples) for e in acc.exclusions] == [
        ("blank row", 1, (7,)), ("below the table (blank line, note or footnote)", 4, (10, 11, 12, 13))]
    assert "empty column(s) without a name left out (A, F)" in " ".join(acc.notes) or \
        "empty column(s) without a name left out (A)" in " ".join(acc.notes)
    nation = run.results["fds"].table.filter(pl.col("level") == "national").row(0, named=True)
    assert (nation["observed"], nation["denominator"]) == (159, 266)


def test_skip_rows_is_header_row_less_one(tmp_path: Path) -> None:
    _published_workbook(tmp_path / "cwt.xlsx")
    run = run_audit(load_catalogue(_published(tmp_path, "{path: cwt.xlsx, sheet: Provider, skip_rows: 3}")))
    assert run.datasets["cwt"].rows_used == 4


def test_header_not_on_the_first_row_is_found_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 9: the published .xlsx could not be read and the hint was wrong. Now the error lists the
    columns found and says which row names them."""
    _published_workbook(tmp_path / "cwt.xlsx")
    assert main(["validate", str(_published(tmp_path, "{path: cwt.xlsx, sheet: Provider}"))]) == 1
    err = capsys.readouterr().err
    assert "cwt.xlsx:1: a column has no name (column B, which has values, first on line 4)" in err
    assert "the column names seem to be on row 4: add header_row: 4 to the dataset" in err
    # a CSV whose header is lower down but whose first line names every column (titles padded with commas)
    (tmp_path / "t.csv").write_text("Provider table,,,\nOct-23,,,\nODS CODE,PROVIDER,TOTAL,WITHIN\nA1,Alpha,10,5\n",
                                    encoding="utf-8")
    assert main(["validate", str(_published(tmp_path, "t.csv"))]) == 1
    err = capsys.readouterr().err
    assert "the column names seem to be on row 3: add header_row: 3 to the dataset" in err


def test_workbook_sheet_problems_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _published_workbook(tmp_path / "cwt.xlsx")
    for dataset, expected in [
            ("{path: cwt.xlsx, sheet: Data, header_row: 4}", "the workbook has no sheet 'Data'"),
            ("{path: cwt.xlsx, sheet: 3, header_row: 4}", "the workbook has no sheet number 3"),
            ("{path: cwt.xlsx, sheet: Provider, header_row: 40}", "none is row 40 (header_row)"),
            ("{path: cwt.xlsx, sheet: Provider, header_row: 4, skip_rows: 4}", "header_row 4 and skip_rows 4 disagree")]:
        assert main(["validate", str(_published(tmp_path, dataset))]) == 1
        err = capsys.readouterr().err
        assert expected in err, (dataset, err)
        if "no sheet" in expected:
            assert "its sheets are: 'Notes', 'Provider'" in err


def test_unnamed_column_with_values_is_refused_with_its_letter(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("Title,,,\n,,,\ncode,,TOTAL,WITHIN\nA1,x,10,5\nB2,,10,5\n", encoding="utf-8")
    text = PUBLISHED_CATALOGUE.replace("{DATASET}", "{path: t.csv, header_row: 3}").replace(
        "{from: cwt, code: ODS CODE, name: PROVIDER}", "{from: cwt, code: code, name: code}")
    (tmp_path / "cat.yaml").write_text(text, encoding="utf-8")
    assert main(["validate", str(tmp_path / "cat.yaml")]) == 1
    assert "t.csv:3: a column has no name (column B, which has values, first on line 4)" in capsys.readouterr().err


def test_csv_as_published_titles_footnotes_and_windows_text(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV saved by Excel on Windows with a title block and a copyright line (as HSCIC published SHMI)."""
    text = ("Provider table,,,,\r\nOct-23,,,,\r\n,ODS CODE,PROVIDER,TOTAL,WITHIN\r\n,RCF,AIREDALE,76,29\r\n"
            ",RAE,BRADFORD,100,80\r\n,,,,\r\nCopyright \xa9 2023,,,,\r\n")
    (tmp_path / "t.csv").write_bytes(text.encode("cp1252"))
    bare = _published(tmp_path, "{path: t.csv, header_row: 3}")
    assert main(["validate", str(bare)]) == 1
    assert "declare its encoding under the dataset: encoding: cp1252" in capsys.readouterr().err
    run = run_audit(load_catalogue(_published(tmp_path, "{path: t.csv, header_row: 3, encoding: cp1252}")))
    acc = run.datasets["cwt"]
    assert acc.balanced and acc.rows_used == 2
    assert [(e.reason, e.examples) for e in acc.exclusions] == [
        ("below the table (blank line, note or footnote)", (6, 7))]


# ------------------------------------------------------------------ README: "Your own data"


def test_your_own_data_snippets_are_valid_catalogue_blocks() -> None:
    """The README's five-step section: every YAML snippet parses, and its indicators, datasets and units
    are valid catalogue entries (so the documentation cannot drift from the schema)."""
    import re

    import yaml

    from audit_metrics.catalogue import DatasetSpec, IndicatorSpec, UnitsSpec

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Your own data"):text.index("## The indicator catalogue")]
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, flags=re.S)]
    assert len(blocks) == 3
    UnitsSpec.model_validate(blocks[0]["units"])
    for spec in blocks[1]["datasets"].values():
        DatasetSpec.model_validate(spec)
    shapes = {i["id"]: IndicatorSpec.model_validate(i) for i in blocks[2]}
    assert set(shapes) == {"lung_cns", "fds_lung", "shmi", "bowel_mort90"}
    assert shapes["fds_lung"].cohort.startswith('"REFERRAL ROUTE"')
