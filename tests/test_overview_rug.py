"""The Overview's rug kept light for the browser, suppressed on screen, and its flagged results reachable without
a mouse or a wide screen (#12 build 2, 7 and 8; defect 3 on screen)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from rug_support import SVG, parse, rug_of, squares
from streamlit.testing.v1 import AppTest

from audit_metrics import export, figures, rug, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit
from audit_metrics.ui.overview import LIST, RUG

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 180


@pytest.fixture(scope="module")
def run(catalogue_path: Path) -> AuditRun:
    return run_audit(load_catalogue(catalogue_path))


def _risk_adjusted(run: AuditRun) -> list[str]:
    return [k for k, r in run.results.items() if r.spec.risk_adjustment is not None]


def _expected_tip(r: dict, ra: list[str]) -> str:
    """A square's hover as the page shows it: the trust's full name, the indicator, then the funnel's own hover
    text (views.hover_text, the lines it joins with <br>), or 'Not shown' for a withheld result."""
    body = ("Not shown (small numbers)" if r["status"] is None else
            views.hover_text(views.on_scale(r, risk_adjusted=r["indicator_id"] in ra)).replace("<br>", "\n"))
    return f"{r['unit_name']}\n{r['indicator_title']}\n{body}"


def test_rug_hover_on_every_square_and_buttons_only_where_flagged(run: AuditRun) -> None:
    """#12 builds 2 and 7: every square's hover is the funnel's hover for that result, word for word, under the
    trust's full name and the indicator; each flagged square (and only those) is a focusable button carrying its
    indicator and trust for click-through (ui/overview.py opens it), with a label naming what it opens."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    ra = _risk_adjusted(run)
    drawn = squares(parse(rug.rug_svg(trusts, title="rug", group="cancer_alliance", risk_adjusted=ra).svg))
    assert len(drawn) == trusts.height
    for r in trusts.iter_rows(named=True):
        assert drawn[(r["indicator_id"], r["unit_code"])].tip == _expected_tip(r, ra)
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    buttons = {k: s.button for k, s in drawn.items() if s.button is not None}
    assert buttons and set(buttons) == set(zip(flagged["indicator_id"], flagged["unit_code"], strict=True))
    for (indicator, unit), button in buttons.items():
        assert (button.get("data-indicator"), button.get("data-unit")) == (indicator, unit)
        assert button.get("tabindex") == "0" and button.get("role") == "button"
        assert button.get("aria-label").endswith(". Open it")


def test_rug_is_plain_svg_with_one_mark_per_flagged_square(run: AuditRun) -> None:
    """#12 build 7: the Plotly rug cost a first visit ~1.3 s of the browser's main thread (the chart library's
    4.7 MB chunk and the draw). The SVG rug needs no library: squares, one mark (a path) per flagged square, and
    text only for labels; its markup stays about the size of the Plotly spec it replaces (1.16 MB sent)."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    built = rug.rug_svg(trusts, title="rug", group="cancer_alliance", risk_adjusted=_risk_adjusted(run),
                        highlight="ZA4")
    assert len(built.svg.encode()) < 1_500_000, len(built.svg)
    root = parse(built.svg)
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED)).height
    assert 0 < flagged < trusts.height / 10 and built.flagged == flagged and built.cells == trusts.height
    groups = root.findall(f"{SVG}g[@class='am-body']/{SVG}g")  # the squares' part (moved left on a phone)
    assert len(groups) == flagged and all(len(g.findall(f"{SVG}path")) == 1 for g in groups)
    assert not root.findall(f".//{SVG}script") and not root.findall(f".//{SVG}foreignObject")
    assert len(built.svg.encode() + built.rows.encode() + built.narrow_rows.encode()) < 1_500_000  # what is sent


def test_flagged_cells_list_most_urgent_first_on_the_funnels_scale(run: AuditRun) -> None:
    """The list a phone or keyboard user gets instead of the rug: every flagged cell, worse alarms first, the
    value and range on the funnel's scale (the issue's Thornbury example: 5.9% against 0.9-5.1%)."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    listed = views.flagged_cells(trusts, risk_adjusted=_risk_adjusted(run), group="cancer_alliance")
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    assert listed.height == flagged.height
    assert set(zip(listed["indicator_id"], listed["unit_code"], strict=True)) == set(
        zip(flagged["indicator_id"], flagged["unit_code"], strict=True))
    order = {"▲ Worse (alarm)": 0, "▼ Worse (alarm)": 0, "▲ Worse (alert)": 1, "▼ Worse (alert)": 1,
             "△ Better (alarm)": 4, "▽ Better (alarm)": 4, "△ Better (alert)": 5, "▽ Better (alert)": 5}
    ranks = [order.get(s, 2 + s.endswith("(alert)")) for s in listed["Status"]]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 5
    # the mark is the rug's for the same cell
    marks = {(r["indicator_id"], r["unit_code"]): figures.RUG_MARKS[(r["direction"], str(r["status"]).split("_")[1])]
             for r in flagged.iter_rows(named=True)}
    assert [s[0] for s in listed["Status"]] == [marks[k] for k in zip(listed["indicator_id"], listed["unit_code"],
                                                                      strict=True)]
    za4 = listed.filter(pl.col("unit_code") == "ZA4", pl.col("indicator_id") == "bowel_mort90").row(0, named=True)
    # the trust profile's sentence for the same result gives the same range, on the same scale
    row = trusts.filter(pl.col("unit_code") == "ZA4", pl.col("indicator_id") == "bowel_mort90").row(0, named=True)
    sentence = views.range_sentence(views.on_scale(row, risk_adjusted=True))
    low, high = re.search(r": ([\d.]+%) to ([\d.]+%) \(risk-adjusted rate\)", sentence).groups()
    assert za4["Value"] == "5.9% (risk-adjusted rate)" and za4["Expected range"] == f"{low} to {high} (95%)"
    assert za4["Cancer Alliance"] and za4["Trust"] == "Thornbury Teaching Hospitals NHS Foundation Trust"


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = "Overview"
    return at.run()


@pytest.fixture(scope="module")
def overview() -> AppTest:
    return _app()


def test_rug_hover_never_shows_a_small_count(overview: AppTest, catalogue_path: Path) -> None:
    """#12 defect 3 on screen: 560 of the rug's hovers read '1 of 4 patients' and the like (counts 1-7 that the
    exports suppress). The rug shows them as the exports do: '*', or 'Not shown' where the status would give
    the count back."""
    assert not overview.exception
    hovers = {k: s.tip for k, s in squares(rug_of(overview)).items()}
    rule = load_catalogue(catalogue_path).catalogue.defaults.suppression
    counts = [int(n.replace(",", "")) for h in hovers.values()
              for n in re.findall(r"\n([\d,]+) (?:of|events|against)", h)]
    assert counts and not [n for n in counts if rule.min_count <= n <= rule.max_count]
    assert any(f"\n{rule.symbol} of " in h for h in hovers.values())
    # a cell suppressed by the exports is suppressed here: the same rows, by the same rule
    table = export.suppress(views.pooled(run_audit(load_catalogue(catalogue_path))).filter(
        pl.col("level") == "trust"), rule)
    withheld = table.filter(pl.col("status").is_null())
    assert withheld.height and all(hovers[(r["indicator_id"], r["unit_code"])].endswith(
        "\nNot shown (small numbers)") for r in withheld.iter_rows(named=True))


def test_flagged_results_without_the_rug_and_without_a_mouse(catalogue_path: Path) -> None:
    """#12 build 2/8 and phone: a list of the flagged results instead of the rug (no chart drawn), and a box
    listing them, which picks the indicator and trust under 'Open a result' and opens the funnel."""
    at = _app()
    assert at.radio(key="ov_show").value == RUG
    rule = load_catalogue(catalogue_path).catalogue.defaults.suppression
    table = export.suppress(views.pooled(run_audit(load_catalogue(catalogue_path))).filter(
        pl.col("level") == "trust"), rule)
    flagged = table.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    box = at.selectbox(key="ov_open_flagged")
    assert box.value is None and len(box.options) == flagged.height
    at.radio(key="ov_show").set_value(LIST).run()
    assert not at.exception
    assert rug_of(at) is None
    shown = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert len(shown) == flagged.height and shown["Status"].iloc[0].startswith(("▲ Worse", "▼ Worse"))
    assert {"Trust", "Indicator", "Tumour site", "Value", "Expected range"} <= set(shown.columns)
    at.selectbox(key="ov_open_flagged").set_value("bowel_mort90|ZA4").run()
    assert at.selectbox(key="ov_open_indicator").value == "bowel_mort90"
    assert at.selectbox(key="ov_open_trust").value == "ZA4"
    at.button(key="ov_go_funnel").click().run()
    assert at.sidebar.radio[0].value == "Indicator"
    assert at.selectbox(key="ind_indicator").value == "bowel_mort90"


def test_rug_escapes_every_name_from_data(run: AuditRun) -> None:
    """Hostile input is normal input: trust names, alliance names and indicator titles come from other people and
    are put into the page as SVG markup (ui/rug_view.py). Each stays text: the markup parses, no element or
    attribute comes from the names, and the hover shows them exactly."""
    hostile = '<img src=x onerror="alert(1)"> Trust & "Co" \'s'
    title = "</svg><script>alert(2)</script>"
    trusts = views.pooled(run).filter(pl.col("level") == "trust").with_columns(
        pl.when(pl.col("unit_code") == "ZA4").then(pl.lit(hostile)).otherwise(pl.col("unit_name")).alias("unit_name"),
        pl.when(pl.col("indicator_id") == "bowel_mort90").then(pl.lit(title)).otherwise(pl.col("indicator_title"))
        .alias("indicator_title"),
        pl.when(pl.col("unit_code") == "ZA4").then(pl.lit("<b>Evil</b> Cancer Alliance"))
        .otherwise(pl.col("cancer_alliance")).alias("cancer_alliance"))
    built = rug.rug_svg(trusts, title=f"rug {title}", group="cancer_alliance", highlight="ZA4",
                        footnote=[hostile], watermark=hostile)
    root = parse(built.svg)  # well-formed: nothing closed the svg early
    tags = {e.tag.removeprefix(SVG) for e in root.iter()}
    assert tags <= {"svg", "style", "rect", "text", "tspan", "title", "line", "g", "path"}, tags
    assert not [a for e in root.iter() for a in e.attrib if a.lower().startswith("on")]
    assert squares(root)[("bowel_mort90", "ZA4")].tip.startswith(f"{hostile}\n{title}\n")
    texts = "".join(root.itertext())
    assert hostile in texts and "<b>Evil</b>" in texts and title in texts
    # the row labels' column the page holds in place over the squares (rugfix): the same, as text
    for markup in (built.rows, built.narrow_rows):  # and the narrower one a phone shows
        column = parse(markup)
        tags = {e.tag.removeprefix(SVG) for e in column.iter()}
        assert tags <= {"svg", "style", "rect", "text", "title", "line"}, tags
        assert not [a for e in column.iter() for a in e.attrib if a.lower().startswith("on")]
        texts = [t.text for t in column.iter(f"{SVG}title")]
        assert hostile in texts and "<b>Evil</b> Cancer Alliance" in texts
        assert column.find(f"{SVG}rect[@class='am-highlight']") is not None  # ZA4's name outlined there too


def test_overview_names_the_catalogues_own_limits(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#12 defect 5 on the Overview: with limits other than 95% and 99.8% in the catalogue, the rug's legend, the
    text above it and the alerts-and-alarms table name those limits (they said 95% and 99.8% whatever was set)."""
    catalogue = project_copy / "indicators.yaml"
    catalogue.write_text(catalogue.read_text().replace("limits: [0.95, 0.998]", "limits: [0.9, 0.99]", 1))
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(catalogue))
    monkeypatch.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
    at = _app()
    assert not at.exception
    legend = " ".join(t.text or "" for t in rug_of(at).iter(f"{SVG}text") if t.get("class") == "am-legend")
    assert "Darker: beyond the 99% limit" in legend and "99.8" not in legend
    words = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "beyond the 99% (alarm) limit" in words and "Outside 90%" in words
    assert "99.8" not in words and "95%" not in words
    table = next(m.value for m in at.markdown if m.value.startswith("| Indicator | Tumour site |"))
    assert "| Outside 90% | By chance (90%) | Outside 99% | By chance (99%) |" in table.splitlines()[0]
