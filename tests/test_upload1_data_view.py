"""The Data view's upload on the real published examples (review /work/notes/newuser.md defects 1, 5 and 8):
an upload to a catalogue whose units come from a dataset (both SHMI examples), the summary of missing
columns, the wording on real data and the uploaded file's own name in the accounting."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
EXAMPLES = ROOT / "examples"
TIMEOUT = 240


def _data_view(monkeypatch: pytest.MonkeyPatch, catalogue: Path) -> AppTest:
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    monkeypatch.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = "Data"
    return at.run()


def _upload(at: AppTest, dataset: str, name: str, body: bytes) -> AppTest:
    at.selectbox(key="data_name").set_value(dataset).run()
    at.file_uploader(key="data_upload").set_value((name, body, "text/csv")).run()
    return at.button(key="data_use").click().run()


def _files_shown(at: AppTest) -> list[str]:
    frame = at.dataframe[0].value  # the row accounting (the cohort accounting is the second)
    return sorted(set((frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame)["file"].tolist()))


@pytest.mark.parametrize(("example", "dataset", "file"), [
    ("shmi", "shmi", "SHMI-January_2014.csv"),
    ("shmi_series", "shmi", "shmi_2011-10_to_2014-04.csv"),
])
def test_the_publishers_own_file_is_used_where_units_come_from_a_dataset(
        monkeypatch: pytest.MonkeyPatch, example: str, dataset: str, file: str) -> None:
    """Defect 1: `units: {from: DATASET}` made every upload a TypeError (units.file is None). The publisher's
    own unchanged file is now checked and used, and the accounting names it as the person uploaded it."""
    at = _data_view(monkeypatch, EXAMPLES / example / "indicators.yaml")
    assert not at.exception
    published = (EXAMPLES / example / file).read_bytes()
    at = _upload(at, dataset, f"my copy of {file}", published)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    in_use = at.session_state["data_overrides"][dataset]
    folder = at.session_state["upload_folder"].path
    assert [p.name for p in folder.iterdir()] == [Path(in_use).name]  # only the file in use is kept
    assert Path(in_use).read_bytes() == published
    assert any("Using uploaded data for: shmi" in i.value for i in at.info)
    # the file as the person knows it, not "uploaded for this session (csv)"
    assert _files_shown(at) == [f"uploaded: my copy of {file}"]
    # a real catalogue, not the bundled sample: nothing to call "the bundled sample data"
    labels = [b.label for b in at.button]
    assert "Go back to the catalogue's own files" in labels
    assert not any("bundled sample" in label for label in labels)


def test_a_rejected_upload_leaves_no_file_even_when_the_check_fails_unexpectedly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 1, second half: an error while checking left the temporary upload in the session folder (the
    unlink was never reached). The clean-up is now unconditional."""
    from audit_metrics.ui import data

    def broken(*args: object, **kwargs: object) -> list[str]:
        message = "simulated failure while checking"
        raise RuntimeError(message)

    at = _data_view(monkeypatch, EXAMPLES / "shmi" / "indicators.yaml")
    monkeypatch.setattr(data, "_problems_with", broken)
    at = _upload(at, "shmi", "x.csv", (EXAMPLES / "shmi" / "SHMI-January_2014.csv").read_bytes())
    assert at.exception  # the failure is still shown, not swallowed
    folder = at.session_state["upload_folder"].path
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert not at.session_state["data_overrides"]


def test_the_bundled_sample_keeps_its_own_wording() -> None:
    """With the bundled synthetic sample in use the reset button still says so."""
    from audit_metrics.ui.data import reset_label

    assert reset_label(bundled=True) == "Go back to the bundled sample data"
    assert reset_label(bundled=False) == "Go back to the catalogue's own files"


def test_a_header_on_another_row_is_not_called_a_missing_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 5: "column '1' appears more than once" (the header is on another row) became the summary
    "fds_header_on_7.csv lacks 1 column(s) the catalogue uses: 1". Only missing-column problems feed it, and
    the problems are shown so that they wrap (the hint was cut off at 1280 px)."""
    catalogue = EXAMPLES / "cwt_faster_diagnosis" / "indicators.yaml"
    published = EXAMPLES / "cwt_faster_diagnosis" / "28-day-faster-diagnosis-provider-2023-10.csv"
    lines = published.read_bytes().splitlines(keepends=True)
    moved = b"".join(lines[2:])  # two fewer title rows: the header is on row 7, the dataset says 9
    at = _data_view(monkeypatch, catalogue)
    at = _upload(at, "fds", "fds_header_on_7.csv", moved)
    assert not at.exception
    assert any("cannot replace the fds dataset" in e.value for e in at.error)
    assert not any("lacks" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert at.code and all(c.proto.wrap_lines for c in at.code)
    assert not at.session_state["data_overrides"]


def test_missing_columns_summary_only_from_missing_column_problems() -> None:
    from audit_metrics.ui.data import _missing_columns

    problems = [
        "fds.csv:9: [column '3'] column '3' appears more than once (dataset 'fds', declared at x.yaml:9) "
        "(hint: rename or remove the duplicate column)",
        "indicators.yaml:8: dataset 'patients' has no unit column 'trust_code' (hint: columns found: foo, bar; "
        "or set unit_column for this dataset)",
        "indicators.yaml:8: column 'age' is not in dataset 'patients'",
        "indicators.yaml:10: period_column 'financial_year' is not a column of 'patients'",
        "indicators.yaml:68: bowel_mort90.numerator: unknown column 'died_90d' (hint: did you mean 'died'? "
        "(columns found: foo, died))",
        "indicators.yaml:73: bowel_mort90: unknown covariate column 'sex'",
        "x.csv:1: [column 'OBSERVED'] missing column 'OBSERVED' (a count or expected column in the catalogue) "
        "(hint: columns found: a, b)",
        "x.csv:1: missing column(s) PROVIDER, PROVIDER_NAME (hint: the catalogue's units section expects "
        "PROVIDER, PROVIDER_NAME; columns found: a)",
    ]
    summary = _missing_columns(problems, "x.csv")
    assert summary is not None
    listed = summary.split("uses: ", 1)[1].split(". Check", 1)[0]
    assert listed.replace("\\", "").split(", ") == [
        "trust_code", "age", "financial_year", "died_90d", "sex", "OBSERVED", "PROVIDER", "PROVIDER_NAME"]
    assert "lacks 8 column(s)" in summary
    assert _missing_columns(problems[:1], "x.csv") is None  # a duplicate column is not a missing one


def test_uploaded_names_are_shown_cleaned_and_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The uploaded name is hostile input: in the accounting it loses control and direction characters and
    never starts a cell as a formula; in Markdown it is escaped."""
    from audit_metrics.ui.data import MAX_NAME, uploaded_name

    assert uploaded_name("C:\\Users\\me\\a.csv") == "a.csv"
    assert uploaded_name("**bold**\u202e\nvsc.csv") == "**bold** vsc.csv"  # shown as text in a table cell
    assert len(uploaded_name("x" * 500 + ".csv")) == MAX_NAME
    at = _data_view(monkeypatch, EXAMPLES / "shmi" / "indicators.yaml")
    hostile = '=HYPERLINK("e.x")*1*\u202e.csv'
    at = _upload(at, "shmi", hostile, (EXAMPLES / "shmi" / "SHMI-January_2014.csv").read_bytes())
    assert not at.exception and not at.error
    assert _files_shown(at) == ['uploaded: =HYPERLINK("e.x")*1* .csv']
    info = " ".join(i.value for i in at.info)
    assert "Using uploaded data for: shmi (" in info
    assert "\\*1\\*" in info and "\u202e" not in info  # Markdown escaped: no emphasis from the name


@pytest.mark.parametrize(("example", "dataset", "header", "columns"), [
    # oracle: the columns named in each catalogue, read by hand from the YAML (unit, period, units, indicators)
    ("cwt_faster_diagnosis", "fds", "the column names on row 9 (rows 1 to 8 are skipped)",
     ["ODS CODE (1)", "TOTAL", "WITHIN 28 DAYS", "REFERRAL ROUTE", "SUSPECTED CANCER OR BREAST SYMPTOMATIC (2)"]),
    ("shmi_series", "shmi", "the column names on row 1",
     ["PROVIDER", "DATE", "PROVIDER NAME", "OBSERVED", "EXPECTED"]),
])
def test_the_upload_page_says_what_shape_each_dataset_expects(
        monkeypatch: pytest.MonkeyPatch, example: str, dataset: str, header: str, columns: list[str]) -> None:
    """Defect 5, upload page: a person whose file has its header elsewhere could not tell what was expected.
    The page now says where the column names must be, which sheet, and the columns the catalogue uses."""
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.ui.data import used_columns

    catalogue = EXAMPLES / example / "indicators.yaml"
    assert used_columns(load_catalogue(catalogue), dataset) == columns
    at = _data_view(monkeypatch, catalogue)
    assert not at.exception
    shape = next(m.value for m in at.markdown if m.value.startswith(f"The **{dataset}** dataset's file"))
    assert header in shape and "first sheet" in shape
    assert all(f"**{c}**" in shape for c in columns)


def test_the_shape_names_a_declared_sheet_and_encoding(tmp_path: Path) -> None:
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.ui.data import expected_shape

    source = EXAMPLES / "shmi" / "indicators.yaml"
    text = source.read_text(encoding="utf-8").replace("    path: SHMI-January_2014.csv",
                                                      "    path: SHMI-January_2014.csv\n    sheet: Provider", 1)
    assert "sheet: Provider" in text
    (tmp_path / "indicators.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "SHMI-January_2014.csv").write_bytes((EXAMPLES / "shmi" / "SHMI-January_2014.csv").read_bytes())
    shape = expected_shape(load_catalogue(tmp_path / "indicators.yaml"), "shmi")
    assert "the sheet named Provider" in shape and "cp1252" in shape


@pytest.mark.parametrize(("catalogue", "label"), [
    (ROOT / "examples" / "cwt_faster_diagnosis" / "indicators.yaml", "Go back to the catalogue's own files"),
    (ROOT / "indicators.yaml", "Go back to the bundled sample data")])
def test_data_that_cannot_be_used_offers_the_right_way_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             catalogue: Path, label: str) -> None:
    """Every view (state.load), not only the Data view, said "bundled sample data" on a real catalogue (upload1's
    report), and a catalogue problem from an upload (one gone stale: here a file with nothing in it) offered no way
    back at all. Both show the problem and the right button."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    monkeypatch.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
    broken = tmp_path / "broken.csv"
    broken.write_text("", encoding="utf-8")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    name = next(iter(load_catalogue(catalogue, check_data=False).catalogue.datasets))
    at.session_state["data_overrides"] = {name: str(broken)}
    at.run()
    assert not at.exception
    assert at.error and "broken.csv" in "".join(c.value for c in at.code)  # the problem, naming the upload
    assert [b.label for b in at.button] == [label]
    at.button[0].click().run()  # and it brings the catalogue's own files back
    assert not at.error and at.session_state["data_overrides"] == {}


def test_an_upload_for_a_dataset_the_catalogue_no_longer_has_is_dropped(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """red17: an upload kept in the session for a dataset since renamed in the catalogue made every page say the
    catalogue had a problem, quoting '--data: no dataset named ...', which the person never typed."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(EXAMPLES / "shmi" / "indicators.yaml"))
    monkeypatch.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["data_overrides"] = {"renamed_since": str(tmp_path / "old.csv")}
    at.run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if "no longer used" in w.value]
    assert "--data" not in "".join(c.value for c in at.code)
    assert at.session_state["data_overrides"] == {}
