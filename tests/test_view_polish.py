"""Defects found by looking at screenshots of every view at 1440, 1024 and 390 px (issue #12, "done when")."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("query", [{"view": "Trust profile", "trust": "ZA4"},
                                   {"view": "Indicator", "indicator": "sact_mort30", "trust": "ZA4"}])
def test_sidebar_says_once_where_the_results_came_from(query: dict[str, str]) -> None:
    """The trust profile's sidebar said "Results computed now (...)" 27 times: every dated indicator looked
    the app's run up again through ``state.load``, which writes that line each time."""
    at = _app(**query)
    assert not at.exception
    notes = [c.value for c in at.sidebar.caption if c.value.startswith("Results ")]
    assert len(notes) == 1, notes


def test_gap_funnel_names_its_limits_as_elsewhere() -> None:
    """The inequalities gap funnel's legend said "95.0% limits" beside every other chart's "95% limits"."""
    import polars as pl

    from audit_metrics.ui.inequalities import gap_funnel_figure

    gaps = pl.DataFrame({"level": ["national", "trust", "trust"], "unit_code": ["E", "A", "B"],
                         "unit_name": ["England", "A", "B"], "disadvantage_gap": [0.05, 0.04, 0.08],
                         "gap_se": [None, 0.02, 0.03], "status": ["within"] * 3, "status_label": ["as expected"] * 3})
    fig = gap_funnel_figure(gaps, multiplier=100, highlight=None, phi=1.0, tau2=0.0, coverage=(0.95, 0.998))
    names = {t.name for t in fig.data if t.showlegend is not False}
    assert {"95% limits", "99.8% limits"} <= names, names


def test_chart_titles_are_wrapped_for_a_phone() -> None:
    from audit_metrics import figures

    title = "90-day mortality after major bowel cancer resection (2021/22 to 2023/24) & <b>"
    wrapped = figures.wrap_title(title)
    lines = wrapped.split("<br>")
    assert len(lines) == 2 and all(len(line.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
                                   <= figures.TITLE_WIDTH for line in lines)
    assert "<b>" not in wrapped and "&lt;b&gt;" in wrapped  # still escaped
    assert figures.title_margin(title) == 80 and figures.title_margin("Short") == 60
    assert "<br>" not in figures.wrap_title("Each indicator as a slice through its funnel")  # 44: one line


# ------------------------------------------------------------------ editor (#12 build 10)


@pytest.fixture
def editing(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(project_copy / "indicators.yaml"))
    return project_copy / "indicators.yaml"


def test_problem_excerpts_number_and_mark_the_lines() -> None:
    from audit_metrics.exceptions import Problem
    from audit_metrics.ui.catalogue import EXCERPT_MARK, problem_excerpts

    text = "\n".join(f"line{i}" for i in range(1, 13)) + "\n"
    problems = [Problem("c.yaml", "first", 1), Problem("c.yaml", "late", 12), Problem("other.csv", "elsewhere", 3),
                Problem("c.yaml", "no line"), Problem("c.yaml", "past the end", 40)]
    got = problem_excerpts(text, problems, file="c.yaml", context=2)
    assert [p.message for p, _ in got] == ["first", "late", "past the end"]  # other files and unlocated left out
    first = got[0][1].splitlines()
    assert first == [f"{EXCERPT_MARK}    1 │ line1", "     2 │ line2", "     3 │ line3"]
    assert got[1][1].splitlines()[-1] == f"{EXCERPT_MARK}   12 │ line12"
    assert got[2][1].splitlines()[-1].startswith(EXCERPT_MARK)  # clamped to the last line
    assert len(problem_excerpts(text, [Problem("c.yaml", "x", 5)] * 30, file="c.yaml", limit=20)) == 20


def test_editor_shows_each_problem_in_numbered_lines_as_text(editing: Path) -> None:
    """#12 build 10: no maintained Streamlit code editor fits (streamlit-monaco-editor 0.1.6 fetches Monaco
    from a CDN when drawn; streamlit-code-editor's last release is 2024-12), so the text area stays and
    each problem is shown in the catalogue's own numbered lines, the line marked, as text."""
    from audit_metrics.ui.catalogue import EXCERPT_MARK

    before = editing.read_text()
    hostile = "[click](http://evil.example) **bold** <b>x</b>"
    bad = before.replace("better: lower", f"better: lowr   # {hostile}", 1)
    bad_line = bad.splitlines().index(next(line for line in bad.splitlines() if "better: lowr" in line)) + 1
    at = _app(view="Indicator catalogue")
    at.text_area(key="cat_text").set_value(bad).run()
    assert not at.exception
    codes = [c.value for c in at.code]
    marked = [c for c in codes if f"{EXCERPT_MARK} " in c]
    assert any(f"{EXCERPT_MARK} {bad_line:>5} │" in c and "better: lowr" in c for c in marked), marked
    assert any(hostile in c for c in marked)  # the file's text shown as written, in a code block
    assert not any("](http" in m.value for m in at.markdown)  # never as Markdown
    assert any(f"Line {bad_line}:" in m.value for m in at.markdown)
    whole = [c for c in at.code if c.language == "yaml"]
    assert whole and whole[0].value == bad.rstrip("\n")  # the whole edited text, numbered and coloured, read-only
    assert any("Unsaved edits" in c.value for c in at.caption)
    assert editing.read_text() == before
    styles = " ".join(h.proto.body for h in at.get("html"))
    assert ".st-key-cat_text textarea" in styles and "monospace" in styles  # the editor in a monospaced font


def test_editor_save_through_the_app_keeps_the_file_mode(editing: Path) -> None:
    """#12 defect 5 (verified from the editor itself): saving changed 0644 to 0600."""
    import stat

    editing.chmod(0o644)
    at = _app(view="Indicator catalogue")
    at.text_area(key="cat_text").set_value(editing.read_text() + "# a comment\n").run()
    at.button(key="cat_save").click().run()
    assert not at.exception and editing.read_text().endswith("# a comment\n")
    assert stat.S_IMODE(editing.stat().st_mode) == 0o644
    assert not any("Unsaved edits" in c.value for c in at.caption)


# ------------------------------------------------------------------ words seen in the screenshots


def test_data_view_shows_no_server_paths() -> None:
    """The Data view's accounting listed /work/.../sample_data/patients.parquet (#12 item 9: no server paths)."""
    root = str(Path(APP).parent)
    at = _app(view="Data")
    assert not at.exception
    for table in at.dataframe:
        files = table.value["file"].to_list()
        assert not any(f.startswith("/") or root in f for f in files), files
    assert "sample_data/patients.parquet" in at.dataframe[0].value["file"].to_list()


def test_trust_profile_words_not_machine_names() -> None:
    """Seen at every width: "case-mix completeness lowest for asa grade", "Inequality: Gap by IMD quintile: not
    shown", "1 result(s) with a count of 1-7 are not drawn"."""
    at = _app(view="Trust profile", trust="ZA4")
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "ASA grade" in captions and "asa grade" not in captions and "imd quintile" not in captions
    assert "Inequality: IMD quintile gap not shown (a group has a small count)." in captions
    assert "Gap by" not in captions and "(s)" not in captions
    assert "1 result with a count of 1-7 is not drawn" in captions


def test_indicator_without_dates_says_so_in_plain_words() -> None:
    """A viewer was told to "declare `date_column` for its dataset in the catalogue"."""
    at = _app(view="Indicator", indicator="bowel_mort90")
    assert not at.exception
    text = " ".join(i.value for i in at.info) + " ".join(c.value for c in at.caption)
    assert "cannot be charted month by month" in text and "date_column" not in text


def test_releases_view_speaks_words_and_the_indicators_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Releases tables showed 'within' -> 'alarm_high', values 1.04331 -> 1.688101 (an observed/expected
    ratio, unlabelled) and releases as '1, 2026-12-03T06:54:51+00:00'."""
    from audit_metrics.cli import main
    from audit_metrics.sample_trends import make_monthly, second_release

    store, changed = tmp_path / "releases.sqlite", tmp_path / "monthly2.parquet"
    second_release(make_monthly()).write_parquet(changed)
    catalogue = Path(APP).parent / "indicators.yaml"
    for extra in ([], ["--data", f"monthly_outcomes={changed}"]):
        assert main(["run", "--indicators", str(catalogue), "--out", str(tmp_path / "r.csv"), "--indicator",
                     "sact_mort30", "--record", str(store), "--quiet", *extra]) == 0
    monkeypatch.setenv("AUDIT_METRICS_STORE", str(store))
    at = _app(view="Releases")
    assert not at.exception
    new = at.dataframe[0].value
    assert set(new["status_a"]) == {"as expected"}
    assert set(new["status_b"]) == {"worse than expected (alarm)", "worse than expected (alert)"}
    assert all(v.startswith("O/E ") and " → " in v for v in new["values"])  # sact_mort30 is risk-adjusted
    import re

    options = at.selectbox(key="rel_a").options
    assert all(re.fullmatch(r"Release \d+, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d UTC", o) for o in options), options
