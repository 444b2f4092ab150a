"""Periods in time order (a real-data review, 2026-12-03: NHS England's Cancer Waiting Times MONTH column, APR to
SEP, sorted as text gave the pooled label "AUG to SEP" for June to September and made May the "latest" month of a
monthly indicator; spreadsheet dates labelled periods "2023-04-01 00:00:00").

Oracle: the calendar (and the NHS financial year, April to March)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from audit_metrics.catalogue import load_catalogue
from audit_metrics.periods import order_note, time_order
from audit_metrics.pipeline import run_audit


@pytest.mark.parametrize(("labels", "expected"), [
    (["SEP", "JUN", "AUG", "JUL"], ["JUN", "JUL", "AUG", "SEP"]),
    (["Mar", "Apr", "Jan", "Dec"], ["Apr", "Dec", "Jan", "Mar"]),  # a financial year's months, April first
    (["2023/24", "2021/22", "2022/23"], ["2021/22", "2022/23", "2023/24"]),
    (["2012-13", "2010-11", "2011-12"], ["2010-11", "2011-12", "2012-13"]),  # financial years
    (["2011-12", "2011-01", "2011-02"], ["2011-01", "2011-02", "2011-12"]),  # months: 2011-12 is December
    (["Mar 2024", "Apr 2023", "Jan 2024", "May 2023"], ["Apr 2023", "May 2023", "Jan 2024", "Mar 2024"]),
    (["Jan-24", "Oct-23", "Nov-23"], ["Oct-23", "Nov-23", "Jan-24"]),
    (["2023-09-01", "2023-10-01", "2023-04-01"], ["2023-04-01", "2023-09-01", "2023-10-01"]),
    (["01/12/2022", "01/04/2023"], ["01/12/2022", "01/04/2023"]),  # day first
    (["Q4 2023/24", "Q1 2023/24", "Q2 2024/25"], ["Q1 2023/24", "Q4 2023/24", "Q2 2024/25"]),
    (["2023 Q1", "2022 Q4"], ["2022 Q4", "2023 Q1"]),
    (["2021/22 to 2023/24", "2023/24", "2021/22", "2022/23"], ["2021/22", "2021/22 to 2023/24", "2022/23", "2023/24"]),
    (["JUN to SEP", "SEP", "JUN"], ["JUN", "JUN to SEP", "SEP"]),
])
def test_time_order(labels: list[str], expected: list[str]) -> None:
    assert time_order(labels) == expected


def test_labels_that_are_not_all_dates_keep_text_order_and_say_so() -> None:
    assert time_order(["cohort b", "cohort a"]) == ["cohort a", "cohort b"]
    assert "ordered as text ('cohort a'" in order_note(["cohort b", "cohort a"])
    assert time_order(["APR", "2023-05"]) == ["2023-05", "APR"]  # a month alone mixed with dated labels
    assert order_note(["JUN", "SEP"]) is None and order_note(["2021/22", "2022/23"]) is None
    assert "April first" in order_note(["MAR", "APR"])  # months from both sides of January


def _monthly(folder: Path, months: list[str], *, pooled: bool, periods: list[str] | None = None) -> Path:
    rows = [(code, m, 40 + 3 * i + j, 50 + 2 * i) for i, code in enumerate("ABCDEFGHIJKL") for j, m in enumerate(months)]
    pl.DataFrame(rows, schema=["code", "MONTH", "within", "total"], orient="row").write_csv(folder / "t.csv")
    pl.DataFrame({"code": list("ABCDEFGHIJKL"), "name": [f"Trust {c}" for c in "ABCDEFGHIJKL"]}).write_csv(
        folder / "units.csv")
    scope = f"    periods: [{', '.join(periods)}]\n" if periods else ""
    (folder / "cat.yaml").write_text(f"""version: 1
units: {{file: units.csv, code: code, name: name}}
datasets:
  t:
    path: t.csv
    aggregate: true
    period_column: MONTH
{scope}indicators:
  - {{id: p, title: P, dataset: t, numerator: within, denominator: total, better: higher, pooled: {str(pooled).lower()}}}
""", encoding="utf-8")
    return folder / "cat.yaml"


def test_the_latest_month_is_the_last_in_time(tmp_path: Path) -> None:
    run = run_audit(load_catalogue(_monthly(tmp_path, ["APR", "MAY", "JUN", "JUL", "AUG", "SEP"], pooled=False)))
    result = run.results["p"]
    assert result.pooled_period == "SEP"  # was MAY (text order: APR, AUG, JUL, JUN, MAY, SEP)
    assert result.table["period"].unique(maintain_order=True).to_list() == ["APR", "MAY", "JUN", "JUL", "AUG", "SEP"]


def test_the_pooled_label_spans_the_first_and_last_month(tmp_path: Path) -> None:
    run = run_audit(load_catalogue(_monthly(tmp_path, ["APR", "MAY", "JUN", "JUL", "AUG", "SEP"], pooled=True,
                                            periods=["JUN", "JUL", "AUG", "SEP"])))
    assert run.results["p"].pooled_period == "JUN to SEP"  # was "AUG to SEP"


def test_spreadsheet_dates_label_periods_as_dates(tmp_path: Path) -> None:
    import datetime

    path = tmp_path / "t.xlsx"
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet()
        day = book.add_format({"num_format": "dd/mm/yyyy"})
        sheet.write_row(0, 0, ["code", "PERIOD", "within", "total"])
        r = 1
        for i, code in enumerate("ABCDEFGHIJKL"):
            for month in (4, 5, 6):
                sheet.write_string(r, 0, code)
                sheet.write_datetime(r, 1, datetime.datetime(2023, month, 1), day)
                sheet.write_row(r, 2, [40 + i, 50 + i])
                r += 1
    _monthly(tmp_path, ["x"], pooled=True)
    text = (tmp_path / "cat.yaml").read_text(encoding="utf-8").replace("t.csv", "t.xlsx").replace("MONTH", "PERIOD")
    (tmp_path / "cat.yaml").write_text(text, encoding="utf-8")
    run = run_audit(load_catalogue(tmp_path / "cat.yaml"))
    assert run.results["p"].pooled_period == "2023-04-01 to 2023-06-01"
