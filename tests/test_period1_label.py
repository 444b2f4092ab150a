"""A table that covers one period says which (#period1, new-user review defect 11): the dataset's ``period``.

Oracle: each example's README (CWT: October 2023; the SHMI January 2014 publication covered July 2012 to
June 2013) and the same catalogue without ``period``, whose results must be the same numbers labelled 'all'.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue, parse_catalogue
from audit_metrics.cli import main
from audit_metrics.exceptions import CatalogueError
from audit_metrics.pipeline import ALL_PERIODS, run_audit

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
EXAMPLES = ROOT / "examples"
SHMI = EXAMPLES / "shmi" / "indicators.yaml"
LABELS = {"shmi": "July 2012 to June 2013", "cwt_62_day": "October 2023", "cwt_faster_diagnosis": "October 2023"}


def _without_period(example: str, tmp_path: Path) -> Path:
    """The example's catalogue with its ``period:`` line removed (data files linked beside it)."""
    folder = EXAMPLES / example
    lines = [line for line in (folder / "indicators.yaml").read_text().splitlines(keepends=True)
             if not line.lstrip().startswith("period:")]
    for f in folder.iterdir():
        if f.name != "indicators.yaml":
            (tmp_path / f.name).symlink_to(f)
    text = "".join(lines).replace("../../reference/", f"{ROOT}/reference/")
    (tmp_path / "indicators.yaml").write_text(text)
    return tmp_path / "indicators.yaml"


@pytest.mark.parametrize("example", sorted(LABELS))
def test_every_row_carries_the_examples_period_and_the_numbers_are_unchanged(example: str, tmp_path: Path) -> None:
    labelled = run_audit(load_catalogue(EXAMPLES / example / "indicators.yaml"))
    plain = run_audit(load_catalogue(_without_period(example, tmp_path)))
    table, before = labelled.table(), plain.table()
    assert table["period"].unique().to_list() == [LABELS[example]]
    assert before["period"].unique().to_list() == [ALL_PERIODS]  # without the field: as before
    assert_frame_equal(table.drop("period"), before.drop("period"))
    for ind, result in labelled.results.items():
        assert result.pooled_period == LABELS[example]
        assert result.summary().startswith(f"{ind} [{LABELS[example]}]:")
        assert set(result.overdispersion) == {(lv, LABELS[example]) for lv, _ in plain.results[ind].overdispersion}
        assert result.overdispersion[("trust", LABELS[example])] == plain.results[ind].overdispersion[("trust", "all")]
        curves = result.curves
        assert curves["period"].unique().to_list() == [LABELS[example]]
        assert_frame_equal(curves.drop("period"), plain.results[ind].curves.drop("period"))


def test_cli_summary_and_outlier_files_name_the_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = EXAMPLES / "cwt_62_day" / "indicators.yaml"
    assert main(["run", str(catalogue), "--out", str(tmp_path / "r.csv")]) == 0
    printed = capsys.readouterr().out
    assert "cwt62_all [October 2023]: 126/206 units assessed" in printed and "[all]" not in printed
    out_csv, out_xlsx = tmp_path / "o.csv", tmp_path / "o.xlsx"
    for out in (out_csv, out_xlsx):
        assert main(["outliers", str(catalogue), "--out", str(out), "--quiet"]) == 0
    rows = pl.read_csv(out_csv, infer_schema=False)
    assert rows.height > 0 and rows["Period"].unique().to_list() == ["October 2023"]
    readme = {(r[0], r[1]): r[2] for r in openpyxl.load_workbook(out_xlsx)["read me"].iter_rows(values_only=True)}
    assert readme[("Filters", "Period")] == "October 2023 (each indicator's headline period)"
    assert readme[("Methods: cwt62_all", "period")] == "October 2023"
    # the period as chosen on the command line (the dashboard's Period choice offers it the same way)
    assert main(["outliers", str(catalogue), "--period", "October 2023", "--out", str(out_csv), "--quiet"]) == 0
    assert pl.read_csv(out_csv, infer_schema=False).height == rows.height


def test_a_per_period_target_can_name_the_label(tmp_path: Path) -> None:
    """target: {"October 2023": 0.85} works on a one-period table: the label is the period."""
    catalogue = _without_period("cwt_62_day", tmp_path)
    text = catalogue.read_text().replace("    aggregate: true\n", "    aggregate: true\n    period: October 2023\n")
    text = text.replace("    target: 0.85                       # the 62-day operational standard",
                        '    target: {"October 2023": 0.85}')
    catalogue.write_text(text)
    run = run_audit(load_catalogue(catalogue), only=["cwt62_all"])
    original = run_audit(load_catalogue(EXAMPLES / "cwt_62_day" / "indicators.yaml"), only=["cwt62_all"])
    assert_frame_equal(run.table(), original.table())


def _catalogue(dataset: str) -> str:
    return ("version: 1\ndatasets:\n  fds:\n" + dataset
            + "units: {file: units.csv, code: c, name: n}\nindicators:\n"
              "  - {id: a, title: A, dataset: fds, numerator: x, denominator: d, better: higher}\n")


def test_period_with_period_column_is_refused_naming_dataset_and_fix() -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(_catalogue("    path: f.csv\n    period: October 2023\n    period_column: month\n"))
    assert str(caught.value) == (
        "indicators.yaml:3: datasets.fds: period ('October 2023') and period_column ('month') both given: period "
        "labels a table that covers one period; a table with a column of periods takes them from period_column. "
        "Remove one of them")


@pytest.mark.parametrize("label", ["x" * 61, "   ", "October\n2023", "Oct\t2023"])
def test_period_label_is_short_and_on_one_line(label: str) -> None:
    with pytest.raises(CatalogueError, match="period must be a short label on one line"):
        parse_catalogue(_catalogue(f"    path: f.csv\n    period: {json.dumps(label)}\n"))
    spec = parse_catalogue(_catalogue('    path: f.csv\n    period: " Q1 2023/24 "\n')).catalogue.datasets["fds"]
    assert spec.period == "Q1 2023/24"


def test_schema_and_readme_document_the_field() -> None:
    schema = json.loads((ROOT / "indicators.schema.json").read_text())
    assert "period" in schema["$defs"]["DatasetSpec"]["properties"]
    readme = (ROOT / "README.md").read_text()
    assert "`period`" in readme and "period: October 2023" in readme


def test_shmi_indicator_view_says_its_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Indicator view's Period choice, chart title and footnote: the period, never 'all'."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(SHMI))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Indicator"
    at.query_params["indicator"] = "shmi"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    period = next(s for s in at.selectbox if s.label == "Period")
    assert period.value == LABELS["shmi"] and period.options == [LABELS["shmi"]]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    title = figure["layout"]["title"]["text"]
    assert title.endswith(f"({LABELS['shmi']})") and "(all)" not in title
    footnote = " ".join(a["text"].replace("<br>", " ") for a in figure["layout"]["annotations"]
                        if a.get("name") == "footnote")
    assert f"; {LABELS['shmi']}" in footnote and "; all" not in footnote


def test_outliers_view_period_choice_is_the_month(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Outliers view offers the headline and 'October 2023' (never 'all'); choosing it lists the same rows."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(EXAMPLES / "cwt_62_day" / "indicators.yaml"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Outliers & export"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    period = at.selectbox(key="out_period")
    assert period.options[1:] == ["October 2023"]
    rows = len(at.dataframe[0].value)
    period.set_value("October 2023").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe[0].value) == rows > 0
