"""The Overview's rug kept light for the browser, suppressed on screen, and its flagged results reachable without
a mouse or a wide screen (#12 build 2, 7 and 8; defect 3 on screen)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics import export, figures, views
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


def _fill(template: str, values: list) -> str:
    for k, v in enumerate(values):
        template = template.replace(f"%{{customdata[{k}]}}", str(v))
    return template


def _hovers(fig: dict) -> dict[tuple[str, str], str]:
    """Every rug cell's hover as the browser shows it, from the heatmap (#12 build 7): its one template filled
    with the square's customdata; the square's trust and indicator from the heatmap's meta (row and column)."""
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and heat["hoverongaps"] is False
    units, indicators = heat["meta"]["unit_code"], heat["meta"]["indicator_id"]
    return {(indicators[j], units[i]): _fill(heat["hovertemplate"], values)
            for i, row in enumerate(heat["customdata"]) for j, values in enumerate(row) if values is not None}


def _clicks(fig: dict) -> dict[tuple[str, str], str]:
    """The invisible click squares: (indicator_id, unit_code) -> their hover, filled as the browser does."""
    return {(c[0], c[1]): _fill(t["hovertemplate"], c) for t in fig["data"] if t.get("name") == "cells"
            for c in t["customdata"]}


def test_rug_hover_from_the_heatmap_and_click_squares_only_where_flagged(run: AuditRun) -> None:
    """#12 build 7: an invisible marker per cell (3,500 SVG nodes) cost most of the rug's draw. The hover of
    every square now comes from the heatmap, word for word views.hover_text (the funnel's hover) under the full
    trust name and the indicator; an invisible click square sits over each flagged cell only, at its place,
    carrying its indicator and trust first (ui/overview.py opens it) and the very same hover."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    ra = _risk_adjusted(run)
    built = figures.tartan_figure(trusts, title="rug", group="cancer_alliance", risk_adjusted=ra)
    fig = json.loads(built.to_json())
    hovers = _hovers(fig)
    assert len(hovers) == trusts.height
    for r in trusts.iter_rows(named=True):
        body = ("Not shown (small numbers)" if r["status"] is None else
                views.hover_text(views.on_scale(r, risk_adjusted=r["indicator_id"] in ra)))
        assert hovers[(r["indicator_id"], r["unit_code"])] == (
            f"<b>{figures.plotly_text(r['unit_name'])}</b><br>{figures.plotly_text(r['indicator_title'])}<br>"
            f"{body}<extra></extra>")
    heat = fig["data"][0]
    assert heat.get("hoverinfo") != "skip"
    # a square without a result has no hover: no customdata there, and hoverongaps is off
    z = np.asarray(built.data[0].z)
    assert z.shape == (len(heat["customdata"]), len(heat["customdata"][0]))
    assert all(np.isnan(z[i, j]) == (v is None) for i, row in enumerate(heat["customdata"]) for j, v in enumerate(row))
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    clicks = _clicks(fig)
    assert clicks and set(clicks) == set(zip(flagged["indicator_id"], flagged["unit_code"], strict=True))
    assert all(clicks[k] == hovers[k] for k in clicks)
    units, indicators = heat["meta"]["unit_code"], heat["meta"]["indicator_id"]
    (cells,) = [t for t in fig["data"] if t.get("name") == "cells"]
    assert all((c[0], c[1]) == (indicators[x], units[y])
               for x, y, c in zip(cells["x"], cells["y"], cells["customdata"], strict=True))
    assert cells["marker"]["opacity"] == 0


def test_rug_draws_a_marker_only_per_flagged_cell_and_no_text_to_measure(run: AuditRun) -> None:
    """#12 build 7: the rug sent ~1.6 MB to the browser (a [site, title] and [alliance, name] pair and a hover
    string per cell) and drew its marks as text, which the browser measures one by one. Then: positions are two
    numbers, marks are marker symbols; the y labels' margin is set, not measured (automargin draws everything
    twice). Now also: no SVG marker per cell, only per flagged cell (the hover is the heatmap's: its text per
    square costs bytes, ~1.2 MB, but no drawing)."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    fig = figures.tartan_figure(trusts, title="rug", group="cancer_alliance", risk_adjusted=_risk_adjusted(run),
                                highlight="ZA4")
    sent = fig.to_json()
    assert len(sent.encode()) < 1_400_000, len(sent)  # 1,578,695 bytes in build 6; 574,062 with a marker per cell
    data = json.loads(sent)["data"]
    assert not [t for t in data if "text" in t.get("mode", "")]
    scatters = [t for t in data if t["type"] == "scatter"]
    assert all(isinstance(v, int) for t in scatters for v in [*t["x"], *t["y"]])
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED)).height
    assert 0 < flagged < trusts.height / 10
    assert [len(t["x"]) for t in scatters] == [flagged, flagged]  # the marks, and the click squares under them
    assert [t["name"] for t in scatters] == ["marks", "cells"]
    assert json.loads(sent)["layout"]["yaxis"]["automargin"] is False


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
    rug = next(json.loads(c.proto.spec) for c in overview.get("plotly_chart")
               if "Outlier status" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    hovers = _hovers(rug)
    rule = load_catalogue(catalogue_path).catalogue.defaults.suppression
    counts = [int(n.replace(",", "")) for h in hovers.values()
              for n in re.findall(r"<br>([\d,]+) (?:of|events|against)", h)]
    assert counts and not [n for n in counts if rule.min_count <= n <= rule.max_count]
    assert any(f"<br>{rule.symbol} of " in h for h in hovers.values())
    # a cell suppressed by the exports is suppressed here: the same rows, by the same rule
    table = export.suppress(views.pooled(run_audit(load_catalogue(catalogue_path))).filter(
        pl.col("level") == "trust"), rule)
    withheld = table.filter(pl.col("status").is_null())
    assert withheld.height and all(hovers[(r["indicator_id"], r["unit_code"])].endswith(
        "Not shown (small numbers)<extra></extra>") for r in withheld.iter_rows(named=True))


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
    assert not [c for c in at.get("plotly_chart") if "Outlier status" in c.proto.spec]
    shown = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert len(shown) == flagged.height and shown["Status"].iloc[0].startswith(("▲ Worse", "▼ Worse"))
    assert {"Trust", "Indicator", "Tumour site", "Value", "Expected range"} <= set(shown.columns)
    at.selectbox(key="ov_open_flagged").set_value("bowel_mort90|ZA4").run()
    assert at.selectbox(key="ov_open_indicator").value == "bowel_mort90"
    assert at.selectbox(key="ov_open_trust").value == "ZA4"
    at.button(key="ov_go_funnel").click().run()
    assert at.sidebar.radio[0].value == "Indicator"
    assert at.selectbox(key="ind_indicator").value == "bowel_mort90"
