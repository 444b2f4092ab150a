"""The dashboard as a person uses it, through Streamlit's AppTest (every view)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from rug_support import SVG, rug_of, squares
from streamlit.testing.v1 import AppTest

from audit_metrics import export, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import CONTRACT_COLUMNS, run_audit

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 180


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _counts(at: AppTest) -> pl.DataFrame:
    """The Overview's "Alerts and alarms per indicator" table (a Markdown table), read back: numbers as numbers."""
    table = next(m.value for m in at.markdown if m.value.startswith("| Indicator | Tumour site |"))
    lines = table.splitlines()
    cells = [[c.strip().replace("\\", "") for c in line.strip("|").split(" | ")] for line in lines]
    frame = pl.DataFrame([dict(zip(cells[0], row, strict=True)) for row in cells[2:]])
    return frame.with_columns(pl.col(c).cast(pl.Float64) for c in frame.columns[2:])


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(i.value for i in at.info)


@pytest.fixture(scope="module")
def overview() -> AppTest:
    return _app()


def test_overview_tartan_and_counts(overview: AppTest) -> None:
    assert not overview.exception
    assert "Synthetic sample data" in " ".join(i.value for i in overview.info)
    rug = rug_of(overview)  # the rug, drawn as SVG (audit_metrics/rug.py): no chart on the first screen
    assert rug is not None and not _charts(overview)
    trusts = views.pooled(run_audit(load_catalogue(Path(APP).parent / "indicators.yaml"))).filter(
        pl.col("level") == "trust")
    assert len(squares(rug)) == trusts.height
    counts = _counts(overview)
    assert {"Outside 95%", "By chance (95%)", "Outside 99.8%",
            "By chance (99.8%)"} <= set(counts.columns)
    assert len(counts) == 25
    assert not overview.dataframe  # the first screen draws no data grid (a plain table is lighter in the browser)
    # the 95% count includes alarms (they are outside 95% too), and its expectation is 5% of those assessed
    assert (counts["Outside 95%"] >= counts["Outside 99.8%"]).all()
    expected = counts["Trusts assessed"] * 0.05
    assert ((counts["By chance (95%)"] - expected).abs() <= 0.051).all()


def test_overview_filters(overview: AppTest) -> None:
    overview.multiselect(key="ov_sites").set_value(["Lung"]).run()
    assert not overview.exception
    assert len(_counts(overview)) == 5  # the five lung indicators
    overview.multiselect(key="ov_sites").set_value(["Lung", "Bowel"]).run()
    alliance = overview.selectbox(key="ov_alliance").options[1]
    overview.selectbox(key="ov_alliance").set_value(alliance).run()
    rug = rug_of(overview)
    assert 0 < len(json.loads(rug.get("data-units"))) <= 10  # only that alliance's trusts


def test_rug_is_built_once_per_content_not_on_every_rerun(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rug's hover for ~3,500 cells made every rerun of the Overview about a second slower (measured,
    notes/dashui.md): it is cached on its content and choices, and rebuilt when either changes."""
    from audit_metrics import rug
    from audit_metrics.ui import overview

    built = []
    real = rug.rug_svg
    monkeypatch.setattr(rug, "rug_svg", lambda *a, **k: built.append(1) or real(*a, **k))
    overview._rug.clear()
    at = _app()
    assert len(built) == 1
    at.selectbox(key="ov_open_trust").set_value("ZA4").run()  # a choice that leaves the rug as it is
    assert len(built) == 1 and not at.exception
    at.selectbox(key="ov_find").set_value("trust:ZA4").run()  # new highlight
    assert len(built) == 2 and rug_of(at).get("data-highlight") == "ZA4"
    assert rug_of(at).find(f"{SVG}rect[@class='am-highlight']") is not None
    alliance = at.selectbox(key="ov_alliance").options[1]
    at.selectbox(key="ov_alliance").set_value(alliance).run()  # new content
    assert len(built) == 3
    grid = views.pooled(run_audit(load_catalogue(Path(APP).parent / "indicators.yaml"))).filter(
        pl.col("level") == "trust")
    changed = grid.with_columns(pl.when(pl.col("unit_code") == "ZA4").then(pl.col("observed") + 1)
                                .otherwise(pl.col("observed")).alias("observed"))
    assert overview._grid_key(grid) == overview._grid_key(grid.clone())
    assert overview._grid_key(grid) != overview._grid_key(changed)


def test_click_through_to_trust_and_funnel() -> None:
    at = _app()
    at.selectbox(key="ov_open_trust").set_value("ZA4").run()
    at.button(key="ov_go_trust").click().run()
    assert at.sidebar.radio[0].value == "Trust profile"
    assert at.selectbox(key="trust_code").value == "ZA4"
    at = _app()
    at.selectbox(key="ov_open_indicator").set_value("bowel_mort90").run()
    at.button(key="ov_go_funnel").click().run()
    assert at.sidebar.radio[0].value == "Indicator"
    assert at.selectbox(key="ind_indicator").value == "bowel_mort90"


def test_landing_asks_which_trust_and_answers_with_its_flagged_results_first(catalogue_path: Path) -> None:
    """#12 build 1: 'which trust or alliance?' remembered in the URL; its flagged results first, worse first,
    each one sentence with counts and the expected range, a link to its funnel with the trust highlighted.
    The counts are checked against the results table (the pipeline's, not the view's)."""
    table = views.pooled(run_audit(load_catalogue(catalogue_path)))
    za4 = table.filter(pl.col("level") == "trust", pl.col("unit_code") == "ZA4")
    flagged = za4.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    worse = flagged.filter(pl.col("direction") == "worse")
    assert 0 < worse.height < flagged.height  # both kinds, so the order below is tested

    at = _app()
    assert at.selectbox(key="ov_find").value == "(all trusts: the overview)"
    assert "trust" not in at.query_params
    at.selectbox(key="ov_find").set_value("trust:ZA4").run()
    assert not at.exception and at.query_params["trust"] in ("ZA4", ["ZA4"])
    summary = next(m.value for m in at.markdown if "results flagged:" in m.value)
    assert summary.startswith(f"**{flagged.height} of {za4.height} results flagged:** {worse.height} worse than "
                              f"expected, {flagged.height - worse.height} better")
    sentences = [m.value for m in at.markdown if " against a " in m.value]
    assert len(sentences) == flagged.height
    assert all("worse than expected" in s for s in sentences[:worse.height])
    assert all("better than expected" in s for s in sentences[worse.height:])
    assert all(" patients" in s for s in sentences)  # counts, not only rates
    ranges = [c.value for c in at.caption if c.value.startswith("Expected range (95%) for a trust")]
    assert len(ranges) == flagged.height
    first = f"ov_funnel_{worse['indicator_id'][0]}" if worse.height == 1 else None
    buttons = [b.key for b in at.button if b.key and b.key.startswith("ov_funnel_")]
    assert len(buttons) == flagged.height and (first is None or buttons[0] == first)

    shared = _app(trust="ZA4")  # the link, opened afresh, answers the same
    assert shared.selectbox(key="ov_find").value == "trust:ZA4"
    assert [m.value for m in shared.markdown if " against a " in m.value] == sentences
    shared.button(key=buttons[0]).click().run()
    assert shared.sidebar.radio[0].value == "Indicator"
    assert shared.selectbox(key="ind_indicator").value == buttons[0].removeprefix("ov_funnel_")
    assert shared.selectbox(key="ind_highlight").value == "ZA4"

    at.selectbox(key="ov_find").set_value("(all trusts: the overview)").run()
    assert "trust" not in at.query_params and not any(" against a " in m.value for m in at.markdown)
    alliance = za4["cancer_alliance"][0]
    assert f"Cancer Alliance: {alliance}" in at.selectbox(key="ov_find").options
    at.selectbox(key="ov_find").set_value(f"cancer_alliance:{alliance}").run()
    assert not at.exception and at.query_params["alliance"] in (alliance, [alliance])
    assert any("results flagged:" in m.value for m in at.markdown)
    at.button(key="ov_go_alliance").click().run()
    assert at.sidebar.radio[0].value == "Cancer Alliance"
    assert at.selectbox(key="alliance").value == alliance


def test_indicator_view_funnel_table_and_method() -> None:
    at = _app(view="Indicator", indicator="bowel_mort90", trust="ZA4")
    assert not at.exception
    assert at.selectbox(key="ind_indicator").value == "bowel_mort90"
    fig = _charts(at)[0]
    names = [t.get("name") for t in fig["data"]]
    assert "95% limits (alert)" in names and "99.8% limits (alarm)" in names and "National rate" in names
    assert any(n and n.startswith("Worse than expected") for n in names)
    assert "Selected trust" in names and "Other trusts in its Cancer Alliance" in names
    table = at.dataframe[-1].value
    assert len(table) == 140 and "status_label" in table.columns
    # flagged first, worse before better (#12 build 3)
    labels = list(table["status_label"])
    ranks = [0 if s.startswith("worse") else 1 if s.startswith("better") else 2 for s in labels]
    assert ranks == sorted(ranks) and ranks[0] == 0
    assert "smoke alarm" in " ".join(i.value for i in at.info)
    method = " ".join(m.value for m in at.expander[0].markdown)
    assert "phi" in method and "c-statistic" in method and "Limits" in method
    assert "robust maximum likelihood" in method and "Likelihood-ratio test" in method
    assert "would be flagged at the 95% limits by chance alone" in method  # coverage_label: "95%", "99.8%" (#limits1)
    at.radio(key="ind_level").set_value("Cancer Alliances").run()
    assert len(at.dataframe[-1].value) == 21
    at.radio(key="ind_chart").set_value("Caterpillar (ranked intervals)").run()
    assert not at.exception and _charts(at)
    at.selectbox(key="ind_indicator").set_value("bowel_emergency_dx").run()
    at.selectbox(key="ind_period").set_value("2022/23").run()
    assert not at.exception
    assert at.query_params["indicator"] in ("bowel_emergency_dx", ["bowel_emergency_dx"])


def test_indicator_view_is_in_the_url_and_says_a_sentence_for_the_highlighted_trust() -> None:
    """#12 build 5/6: level, period and chart type are in the URL (a shared link opens the same chart); the
    highlighted trust gets one sentence on the funnel's scale, agreeing with the trust profile's."""
    at = _app(view="Indicator", indicator="bowel_emergency_dx", trust="ZA4", level="cancer_alliance",
              period="2022/23", chart="caterpillar")
    assert not at.exception
    assert at.radio(key="ind_level").value == "Cancer Alliances"
    assert at.selectbox(key="ind_period").value == "2022/23"
    assert at.radio(key="ind_chart").value == "Caterpillar (ranked intervals)"
    at.radio(key="ind_level").set_value("Trusts").run()
    at.radio(key="ind_chart").set_value("Funnel plot").run()
    at.selectbox(key="ind_period").set_value("2023/24").run()
    query = {k: at.query_params[k] for k in ("level", "period", "chart", "trust", "indicator")}
    assert {k: v[0] if isinstance(v, list) else v for k, v in query.items()} == {
        "level": "trust", "period": "2023/24", "chart": "funnel", "trust": "ZA4", "indicator": "bowel_emergency_dx"}
    at.selectbox(key="ind_highlight").set_value("(none)").run()
    assert "trust" not in at.query_params

    at = _app(view="Indicator", indicator="bowel_mort90", trust="ZA4")
    said = [m.value for m in at.markdown if m.value.startswith("**Thornbury")]
    profile = _app(view="Trust profile", trust="ZA4")
    mortality = next(m.value for m in profile.markdown
                     if m.value.startswith("90-day mortality after major bowel cancer resection:"))
    assert len(said) == 1 and mortality.split(": ", 1)[1] in said[0]
    assert "Expected range (95%) for a trust of its size and case-mix" in said[0]


def test_trust_profile_sentences_and_quality() -> None:
    at = _app(view="Trust profile", trust="ZK0")  # the trust with poor case ascertainment
    assert not at.exception
    assert any("Case ascertainment is low" in w.value for w in at.warning)
    text = _text(at)
    assert "In short" in text
    assert "would arise by chance about 1 time in" in text or "within the range expected" in text
    assert _charts(at)  # the slice chart
    captions = " ".join(c.value for c in at.caption)
    assert "Doing best (to learn from)" in captions and "case ascertainment" in captions


def test_trust_profile_lists_flagged_results_first_with_a_link_to_each_funnel() -> None:
    """#12 build 1: the trust profile reads worst first (it was alphabetical by site), each result linking
    to its funnel with the trust highlighted."""
    at = _app(view="Trust profile", trust="ZA4")
    sentences = [m.value for m in at.markdown if " against a " in m.value]
    verdicts = [0 if "worse than expected" in s else 1 if "better than expected" in s else 2 for s in sentences]
    assert verdicts == sorted(verdicts) and verdicts[0] == 0 and 1 in verdicts
    buttons = [b.key for b in at.button if b.key and b.key.startswith("trust_funnel_")]
    assert len(buttons) == 25
    at.button(key=buttons[-1]).click().run()
    assert at.sidebar.radio[0].value == "Indicator"
    assert at.selectbox(key="ind_indicator").value == buttons[-1].removeprefix("trust_funnel_")
    assert at.selectbox(key="ind_highlight").value == "ZA4"


def _values(v: object) -> list[float]:
    """A Plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v) if isinstance(v, list | tuple) else [v]


def _marker_sizes(fig: dict) -> list[float]:
    sizes = []
    for trace in fig["data"]:
        size = trace.get("marker", {}).get("size")
        sizes += _values(size) if size is not None else []
    return sizes


def test_alliance_view() -> None:
    at = _app(view="Cancer Alliance")
    assert not at.exception
    charts = _charts(at)
    assert len(charts) == 2
    for fig in charts:  # markers are drawn at a readable size, never scaled by data
        assert all(4 <= s <= 20 for s in _marker_sizes(fig))
        x_min = min(min(_values(t["x"])) for t in fig["data"] if t.get("x") is not None and t.get("mode") == "markers")
        assert x_min > 0
    excess = at.dataframe[0].value
    assert {"excess_events", "unit_name", "indicator_title"} <= set(excess.columns)
    shown = [v for v in excess["excess_events"] if v == v and v is not None]  # suppressed rows: blank, last
    assert shown == sorted(shown, reverse=True) and list(excess["excess_events"])[: len(shown)] == shown


def test_outlier_view_filters_and_downloads() -> None:
    at = _app(view="Outliers & export")
    assert not at.exception
    n_all = len(at.dataframe[0].value)
    at.multiselect(key="out_levels").set_value(["alarm"]).run()
    at.multiselect(key="out_directions").set_value(["worse"]).run()
    n_alarm_worse = len(at.dataframe[0].value)
    assert 0 < n_alarm_worse < n_all
    assert set(at.dataframe[0].value["status_label"]) == {"worse than expected (alarm)"}
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download Excel"]


def test_export_files_have_contract_and_suppression(catalogue_path: Path) -> None:
    loaded = load_catalogue(catalogue_path)
    run = run_audit(loaded)
    table = views.pooled(run)
    flagged = views.outlier_list(table)
    rule = loaded.catalogue.defaults.suppression
    safe = export.suppress(flagged.drop("direction"), rule)
    csv = pl.read_csv(io.BytesIO(export.to_csv_bytes(safe)), infer_schema=False)
    assert list(csv.columns[: len(CONTRACT_COLUMNS)]) == list(CONTRACT_COLUMNS)
    small = flagged.filter(pl.col("observed").is_between(1, 7))
    assert small.height > 0  # the sample has small counts to suppress
    suppressed = csv.filter(pl.col("observed") == "*")
    assert suppressed.height == small.height
    assert suppressed["value"].null_count() == suppressed.height  # derived value blanked too
    assert not csv["observed"].is_in([str(i) for i in range(1, 8)]).any()
    xlsx = export.to_excel_bytes(safe, views.provenance(run, loaded))
    results = pl.read_excel(io.BytesIO(xlsx), sheet_name="results")
    methods = pl.read_excel(io.BytesIO(xlsx), sheet_name=export.README_SHEET)
    assert set(CONTRACT_COLUMNS) <= set(results.columns) and results.height == flagged.height
    items = dict(zip(methods["item"], methods["value"], strict=True))
    assert items["catalogue_sha256"] == loaded.digest
    assert "patients" in items["extract_sha256"] and "generated_at" in items


def test_catalogue_browsing_without_editing() -> None:
    at = _app(view="Indicator catalogue")
    assert not at.exception
    assert len(at.expander) == 25
    assert not at.text_area  # viewers cannot edit
    assert any("Editing is switched off" in i.value for i in at.info)


@pytest.fixture
def editing(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(project_copy / "indicators.yaml"))
    return project_copy / "indicators.yaml"


def test_editor_rejects_invalid_catalogue_and_does_not_save(editing: Path) -> None:
    before = editing.read_text()
    at = _app(view="Indicator catalogue")
    assert not at.exception
    bad = before.replace("numerator: died_90d", "numerator: dead_90d", 1).replace("better: lower", "better: lowr", 1)
    at.text_area(key="cat_text").set_value(bad).run()
    errors = " ".join(e.value for e in at.error) + " ".join(c.value for c in at.code)
    assert "problem" in errors
    assert "did you mean 'died_90d'?" in errors and "did you mean 'lower'?" in errors
    assert ":" in errors and "indicators.yaml:" in errors  # file:line
    assert not [b for b in at.button if b.key == "cat_save"]
    assert editing.read_text() == before
    assert not list(editing.parent.glob("indicators.yaml.bak.*"))


def test_editor_previews_and_saves_atomically_keeping_previous(editing: Path) -> None:
    before = editing.read_text()
    at = _app(view="Indicator catalogue")
    edited = before.replace("limits: [0.95, 0.998]", "limits: [0.9, 0.998]", 1)
    at.text_area(key="cat_text").set_value(edited).run()
    assert any("valid" in s.value for s in at.success)
    at.button(key="cat_preview").click().run()
    assert not at.exception
    # the preview in direction-aware words with a summary (#12 build 10); the net change in flags is counted
    # here over the two whole results tables (unchanged results cancel)
    def flags(text: str) -> pl.DataFrame:
        from audit_metrics.catalogue import parse_catalogue

        table = run_audit(parse_catalogue(text, file=str(editing), base_dir=editing.parent)).table()
        return table.with_columns(views.direction_of().alias("direction"))["direction"].value_counts()

    def count(counts: pl.DataFrame, kind: str) -> int:
        hit = counts.filter(pl.col("direction") == kind)
        return int(hit["count"][0]) if hit.height else 0

    old_flags, new_flags = flags(before), flags(edited)
    worse, better = (count(new_flags, k) - count(old_flags, k) for k in ("worse", "better"))
    assert worse > 0 and better > 0
    summary = next(m.value for m in at.markdown if m.value.startswith("**Flags: "))
    assert summary.startswith(f"**Flags: +{worse} worse, +{better} better (")
    changes = at.dataframe[-1].value
    assert {"Before", "After"} <= set(changes.columns)
    assert set(changes["After"]) <= {"worse than expected (alert)", "worse than expected (alarm)", "as expected",
                                     "better than expected (alert)", "better than expected (alarm)",
                                     "not assessed", "higher than expected (alert)", "lower than expected (alert)",
                                     "higher than expected (alarm)", "lower than expected (alarm)"}
    at.button(key="cat_save").click().run()
    assert editing.read_text() == edited
    backups = list(editing.parent.glob("indicators.yaml.bak.*"))
    assert len(backups) == 1 and backups[0].read_text() == before


def test_data_view_accounting() -> None:
    at = _app(view="Data")
    assert not at.exception
    acc = at.dataframe[0].value
    assert {"dataset", "reason", "rows", "example_lines"} <= set(acc.columns)
    assert "unknown unit code in trust_code" in set(acc["reason"])
    assert at.get("file_uploader")


def test_broken_catalogue_shows_errors_not_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "indicators.yaml"
    bad.write_text("version: 1\ndatasets: {}\nunits: {file: x.csv, code: a, name: b}\nindicators: []\n")
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(bad))
    at = _app()
    assert not at.exception
    assert any("problem" in e.value for e in at.error)


def test_best_performers_all_matches_per_indicator(catalogue_path: Path) -> None:
    run = run_audit(load_catalogue(catalogue_path))
    table = views.pooled(run)
    every = views.best_performers_all(table, n=3)
    for ind in ("bowel_mort90", "lung_cns", "pc_hna_offered"):
        assert every[ind] == views.best_performers(table, ind, n=3)["unit_name"].to_list()


def _small_counts(frame, column: str) -> int:
    """Cells of a displayed count column holding 1-7 (the suppressed range of the sample catalogue)."""
    return sum(1 for v in frame[column] if str(v).removesuffix(".0") in {str(i) for i in range(1, 8)})


def test_outlier_table_on_screen_is_suppressed() -> None:
    at = _app(view="Outliers & export")
    assert not at.exception
    table = at.dataframe[0].value
    assert _small_counts(table, "observed") == 0 and _small_counts(table, "denominator") == 0
    hidden = table[table["observed"] == "*"]
    assert len(hidden) > 0  # the sample has flagged small counts
    for column in ("value", "adjusted_value", "z", "p_value"):  # nothing that gives the count back
        assert hidden[column].isna().all(), column
    captions = " ".join(c.value for c in at.caption)
    assert "shown as '\\*'" in captions and "not listed because the flag alone would reveal" in captions  # the symbol escaped (shown as itself)


def test_alliance_excess_table_is_suppressed_with_complements() -> None:
    at = _app(view="Cancer Alliance")
    for alliance in at.selectbox(key="alliance").options[:6]:
        at.selectbox(key="alliance").set_value(alliance).run()
        assert not at.exception
        table = at.dataframe[0].value
        assert _small_counts(table, "observed") == 0
        hidden = table[table["observed"] == "*"]
        assert hidden["excess_events"].isna().all() and hidden["expected"].isna().all()
        # never exactly one hidden count per indicator: the alliance total would give it back
        assert (hidden.groupby("indicator_id").size() != 1).all() if len(hidden) else True


def test_table_toolbar_download_is_off(root: Path) -> None:
    """Streamlit's own "Download as CSV" on st.dataframe would bypass suppression (#12 defect 3)."""
    import tomllib

    from streamlit import config

    settings = tomllib.loads((root / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert settings["client"]["disableDataExport"] is True
    assert "client.disableDataExport" in config._config_options_template  # an option this Streamlit knows


def test_trust_profile_sentences_agree_with_their_ranges() -> None:
    """#12 defect 1 on screen: Thornbury (ZA4) read 'worse than expected' at a crude 5.6% beside a
    risk-adjusted range of 0.1%-5.6%. Every sentence now quotes the value on its range's scale."""
    import re

    at = _app(view="Trust profile", trust="ZA4")
    assert not at.exception
    sentences = [m.value for m in at.markdown if " against a " in m.value]
    ranges = [c.value for c in at.caption if c.value.startswith("Expected range")]
    assert len(sentences) == len(ranges) >= 15
    mortality = next(s for s in sentences if s.startswith("90-day mortality after major bowel cancer resection"))
    assert ": risk-adjusted rate " in mortality and " of 215 patients; about " in mortality
    for sentence, expected_range in zip(sentences, ranges, strict=True):
        scale = re.search(r": ([a-z/ -]+) (-?[\d.]+)%? against", sentence)
        low, high = re.search(r": (-?[\d.]+)%? to (-?[\d.]+)%? \(([a-z/ -]+)\)\.", expected_range).groups()[:2]
        assert scale and f"({scale.group(1)})." in expected_range
        value = float(scale.group(2))
        inside = float(low) <= value <= float(high)
        assert inside == ("within the range expected" in sentence), (sentence, expected_range)


def test_pooled_label_is_pooled_for_by_period_indicators(overview: AppTest) -> None:
    """#12 defect 2: the overview offered '2021/22 to 2023/24' beside 'All periods pooled' (one of them
    was a single year); the indicator view labels the pooled rows by their span."""
    options = overview.selectbox(key="ov_period").options
    assert options == ["All periods pooled", "2021/22", "2022/23", "2023/24"]
    at = _app(view="Indicator", indicator="bowel_emergency_dx")
    assert at.selectbox(key="ind_period").value == "2021/22 to 2023/24"


def test_trust_profile_states_the_limits_in_use_after_saving_new_ones(editing: Path) -> None:
    """#12 defect 5: after saving limits of 90%/99.8%, the text still said 95%/99.8% ("about 2 and 3 SD")."""
    at = _app(view="Indicator catalogue")
    edited = editing.read_text().replace("limits: [0.95, 0.998]", "limits: [0.9, 0.998]", 1)
    at.text_area(key="cat_text").set_value(edited).run()
    at.button(key="cat_save").click().run()
    assert not at.exception and editing.read_text() == edited
    at.sidebar.radio[0].set_value("Trust profile").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "the 90% and 99.8% limits (about 1.6 and 3.1 standard deviations)" in captions
    assert "Expected range (90%)" in captions and "Expected range (95%)" not in captions
    axis = _charts(at)[0]["layout"]["xaxis"]["title"]["text"]
    assert "90% and 99.8% limits" in axis


def test_malformed_upload_is_refused_in_the_data_view_only() -> None:
    """#12 defect 6: a malformed upload replaced the data, every view showed 'The indicator catalogue ...
    has N problem(s)' with server paths, and only a reload got out. It is now checked first: its problems
    are shown in the Data view, and the data in use (and every other view) stay as they were."""
    at = _app(view="Data")
    at.selectbox(key="data_name").set_value("patients").run()
    at.file_uploader(key="data_upload").set_value(("my_extract.csv", b"foo,bar\n1,2\n3,4\n", "text/csv")).run()
    at.button(key="data_use").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "cannot replace the patients dataset" in errors and "Nothing has changed" in errors
    assert any("lacks" in m.value and "trust_code" in m.value for m in at.markdown)  # what to fix, first
    detail = " ".join(c.value for c in at.code)
    assert "problem" in errors and detail
    assert "/tmp" not in detail and "audit_metrics_" not in detail and str(Path(APP).parent) not in detail
    assert not at.session_state["data_overrides"]
    assert any("Synthetic sample data" in i.value for i in at.info)  # the sample is still in use
    at.sidebar.radio[0].set_value("Overview").run()
    assert not at.exception and not at.error and rug_of(at) is not None  # other views are unaffected


def test_unsaved_catalogue_edits_survive_leaving_the_view(editing: Path) -> None:
    """#12 defect 5: leaving the catalogue view emptied the editor (Streamlit drops a hidden widget's
    state). The edit is kept for the session, and every other view says it is unsaved."""
    at = _app(view="Indicator catalogue")
    edited = editing.read_text().replace("limits: [0.95, 0.998]", "limits: [0.9, 0.998]", 1)
    at.text_area(key="cat_text").set_value(edited).run()
    at.sidebar.radio[0].set_value("Overview").run()
    assert not at.exception
    assert any("unsaved edits to the indicator catalogue" in w.value for w in at.sidebar.warning)
    at.sidebar.radio[0].set_value("Indicator catalogue").run()
    assert at.text_area(key="cat_text").value == edited
    at.button(key="cat_save").click().run()
    assert editing.read_text() == edited
    at.sidebar.radio[0].set_value("Overview").run()
    assert not any("unsaved edits" in w.value for w in at.sidebar.warning)  # saved: no reminder
