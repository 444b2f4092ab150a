"""Text cut off in charts (newuser review, defect 10), checked on the figures built from the published examples.

- Cancer Alliance view, "the alliance among all Cancer Alliances": the selected alliance's name was centred above
  its ring, 'Cheshire and Merseyside Cancer Alliance' ran off the plot's left edge and over three points.
- Trust profile at 390 px: the slice chart's indicator labels took 60% of the width (Plotly's automargin) and the
  axis title's lines ran off the right edge ('Difference from expected (', 'bands: 95% and 99.8% lim').
- Caterpillar at 390 px (found in the sweep): names in capitals sized a left margin of up to 420 px, wider than a
  phone's chart (the Faster Diagnosis plot was 2 px wide, SHMI's 47 px).

The geometry is read from the figure (positions in the plot's pixels, the label's width by ``figures.label_width``);
tests/test_figs1_browser.py measures the same in a real browser.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audit_metrics import figures
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fds() -> AuditRun:
    return run_audit(load_catalogue(ROOT / "examples" / "cwt_faster_diagnosis" / "indicators.yaml"))


@pytest.fixture(scope="module")
def shmi() -> AuditRun:
    return run_audit(load_catalogue(ROOT / "examples" / "shmi" / "indicators.yaml"))


def _lines(text: str) -> list[str]:
    return [html.unescape(line) for line in str(text).split("<br>")]


def _alliance_funnel(run: AuditRun, indicator: str, code: str) -> tuple[pl.DataFrame, dict]:
    result = run.results[indicator]
    rows = result.table.filter(pl.col("level") == "cancer_alliance", pl.col("period") == result.pooled_period)
    curve = result.curves.filter(pl.col("level") == "cancer_alliance", pl.col("period") == result.pooled_period)
    fig = figures.funnel_figure(rows, curve, title="Cancer Alliances", better=result.spec.better,
                                statistic=result.spec.statistic, risk_adjusted=False,
                                multiplier=result.spec.multiplier, coverage=result.options.limits,
                                highlight=[code], label_highlight="This alliance", standard=True)
    return rows, fig.to_dict()


def _label(fig: dict) -> dict:
    (label,) = [a for a in fig["layout"].get("annotations", ()) if a.get("name") == "selected_label"]
    return label


def test_the_selected_alliance_is_named_inside_the_plot_and_off_the_points(fds: AuditRun) -> None:
    """Every alliance of the published Faster Diagnosis table, on every indicator, selected in turn: its name (the
    ending 'Cancer Alliance' dropped, on lines of at most POINT_LABEL_PX) lies inside a phone's plot and covers no
    other alliance's point, nor has one between it and the ring. The old label, centred above the ring, left the
    plot for Cheshire and Merseyside and sat on three points."""
    checked = 0
    for indicator in fds.results:
        codes = fds.results[indicator].table.filter(pl.col("level") == "cancer_alliance")["unit_code"].unique()
        for code in codes.sort().to_list():
            _, fig = _alliance_funnel(fds, indicator, code)
            ring = next(t for t in fig["data"] if t.get("name") == "This alliance")
            label = _label(fig)
            text = label["text"]
            assert "Cancer Alliance" not in text and 1 <= len(_lines(text)) <= 3, text
            assert all(figures.label_width(line, figures.POINT_LABEL_SIZE) <= figures.POINT_LABEL_PX
                       for line in _lines(text) if " " in line), text
            assert (label["x"], label["y"]) == (_values(ring["x"])[0], _values(ring["y"])[0])  # linear x here
            # the plot's extent: every point and every limit drawn
            xs = [v for t in fig["data"] for v in _values(t["x"])]
            ys = [v for t in fig["data"] for v in _values(t["y"])]
            x0, x1, y0, y1 = np.nanmin(xs), np.nanmax(xs), np.nanmin(ys), np.nanmax(ys)
            sx, sy = figures.PLOT_PX[0] / (x1 - x0), figures.PLOT_PX[1] / (y1 - y0)
            px, py = (label["x"] - x0) * sx, (label["y"] - y0) * sy
            # the box Plotly draws: centred ax px right and ay px down of the point, the text and 2 px padding
            width = max(figures.label_width(line, figures.POINT_LABEL_SIZE) for line in _lines(text)) + 4
            height = 1.3 * figures.POINT_LABEL_SIZE * len(_lines(text)) + 4
            cx, cy = px + label["ax"], py - label["ay"]
            left, right, bottom, top = cx - width / 2, cx + width / 2, cy - height / 2, cy + height / 2
            assert left >= 0 and right <= figures.PLOT_PX[0] and bottom >= 0 and top <= figures.PLOT_PX[1], (
                code, indicator, (left, bottom, right, top))
            assert right < px - figures.RING_PX + 1 or left > px + figures.RING_PX - 1 or \
                top < py - figures.RING_PX + 1 or bottom > py + figures.RING_PX - 1  # not over its own ring
            points = [((x - x0) * sx, (y - y0) * sy) for t in fig["data"] if t.get("mode") == "markers"
                      and t.get("name") != "This alliance"
                      for x, y in zip(_values(t["x"]), _values(t["y"]), strict=True)
                      if np.isfinite(y) and (x, y) != (label["x"], label["y"])]  # its own marker is in the ring
            assert len(points) >= 15
            on_label = [p for p in points if min(left, px) - 4 <= p[0] <= max(right, px) + 4
                        and bottom - 4 <= p[1] <= top + 4]
            assert on_label == [], (code, indicator, label)
            checked += 1
    assert checked >= 4 * 20


def test_the_cheshire_and_merseyside_label_as_the_review_saw_it(fds: AuditRun) -> None:
    """The review's case: the view's first indicator and first alliance, Cheshire and Merseyside, is named without
    'Cancer Alliance', beside its ring (no line needed): below it, where no point is."""
    code = "Cheshire and Merseyside Cancer Alliance"
    _, fig = _alliance_funnel(fds, next(iter(fds.results)), code)
    label = _label(fig)
    assert label["text"] == "Cheshire and<br>Merseyside"
    assert label["ax"] == 0 and label["ay"] > 0 and label["arrowcolor"] == "rgba(0,0,0,0)"


def test_short_names_tries_every_ending() -> None:
    """A name the first ending does not change is shortened by the next: the alliance's name kept its ' Cancer
    Alliance' because 'NHS Trust' (tried first) had marked it done."""
    endings = (figures.NHS_SUFFIX, figures.ALLIANCE_SUFFIX)
    assert figures.short_names(["Cheshire and Merseyside Cancer Alliance"], *endings) == ["Cheshire and Merseyside"]
    assert figures.short_names(["Leeds Teaching Hospitals NHS Trust", "Wessex Cancer Alliance"], *endings) == [
        "Leeds Teaching Hospitals", "Wessex"]
    # published as 'NATIONAL HEALTH SERVICE TRUST' (Portsmouth): shortened as 'NHS TRUST' is
    assert figures.short_names(["PORTSMOUTH HOSPITALS UNIVERSITY NATIONAL HEALTH SERVICE TRUST"],
                               figures.TRUST_WORDS, figures.NHS_SUFFIX) == ["PORTSMOUTH"]


def test_wrap_label_bounds_the_width_and_marks_what_is_left_out() -> None:
    text = "Told the outcome within 28 days of an urgent referral for suspected lower GI cancer"
    one = figures.wrap_label(text, 100, size=11, max_lines=1)
    assert one.endswith("…") and figures.label_width(one, 11) <= 100 and text.startswith(one[:-1])
    three = figures.wrap_label(text, 130, size=11)
    assert len(_lines(three)) == 3 and all(figures.label_width(t, 11) <= 130 for t in _lines(three))
    assert figures.wrap_label("Lancashire & South Cumbria", 200) == "Lancashire &amp; South Cumbria"


def _slice(run: AuditRun, code: str) -> tuple[pl.DataFrame, dict]:
    table = pl.concat([r.table.filter(pl.col("level") == "trust", pl.col("period") == r.pooled_period,
                                      pl.col("unit_code") == code) for r in run.results.values()], how="diagonal_relaxed")
    limits = {i: tuple(r.options.limits) for i, r in run.results.items()}
    fig = figures.slice_figure(table, title="Each indicator as a slice through its funnel", limits=limits)
    return table, fig.to_dict()


@pytest.mark.parametrize("example, code", [("fds", "RCF"), ("shmi", None)])
def test_trust_slice_labels_have_a_bounded_measured_margin(example: str, code: str | None, request) -> None:
    """Airedale (the review's trust) on the Faster Diagnosis example and a SHMI trust: the label margin is measured
    from the labels (at least their width, at most SLICE_LABEL_PX and a gap: was Plotly's automargin, 60% of a
    phone's chart), each label at most four lines, the labels distinct, and the full title in the hover."""
    run = request.getfixturevalue(example)
    if code is None:
        first = next(iter(run.results.values()))
        code = first.table.filter(pl.col("level") == "trust", pl.col("z").is_not_null())["unit_code"][0]
    rows, fig = _slice(run, code)
    layout = fig["layout"]
    labels = layout["yaxis"]["ticktext"]
    assert layout["yaxis"]["automargin"] is False
    assert len(labels) == rows.filter(pl.col("z").is_not_null()).height >= 2 and len(set(labels)) == len(labels)
    widest = max(figures.label_width(line, figures.SLICE_LABEL_SIZE) for t in labels for line in _lines(t))
    assert widest <= figures.SLICE_LABEL_PX
    assert widest <= layout["margin"]["l"] <= 16 + figures.SLICE_LABEL_PX + 1
    assert all(len(_lines(t)) <= 4 for t in labels)
    hovers = {d[2] for t in fig["data"] if t.get("customdata") for d in t["customdata"]}
    assert {figures.plotly_text(t) for t in rows["indicator_title"]} <= hovers


def test_faster_diagnosis_slice_labels_say_which_cancer(fds: AuditRun) -> None:
    """The four titles share 'Told the outcome within 28 days of an urgent referral for': cut to three lines each
    read the same; the labels keep what differs."""
    _, fig = _slice(fds, "RCF")
    labels = [" ".join(_lines(t)) for t in fig["layout"]["yaxis"]["ticktext"]]
    assert sorted(labels) == ["…suspected breast cancer", "…suspected lower GI cancer", "…suspected lung cancer",
                              "…suspected skin cancer"]


@pytest.mark.parametrize("example", ["fds", "shmi"])
def test_trust_slice_axis_title_is_short_and_names_the_limits(example: str, request) -> None:
    """The x axis title on lines of at most 30 characters (about 170 px at 13 px: inside a phone's chart with the
    label margin above), naming the limits the bands are drawn from: each indicator's own coverages (SHMI's second
    indicator has one 99.8% limit, so its bands are 'each indicator's limits')."""
    run = request.getfixturevalue(example)
    first = next(iter(run.results.values()))
    code = first.table.filter(pl.col("level") == "trust", pl.col("z").is_not_null())["unit_code"][0]
    _, fig = _slice(run, code)
    title = fig["layout"]["xaxis"]["title"]["text"]
    assert all(len(line) <= 30 for line in _lines(title)), title
    coverages = {tuple(r.options.limits) for r in run.results.values()}
    if len(coverages) == 1:
        (cov,) = coverages
        assert _lines(title)[1] == "bands: " + " and ".join(f"{c * 100:g}%" for c in cov) + (
            " limits" if len(cov) > 1 else " limit")
    else:
        assert _lines(title)[1] == "bands: each indicator's limits"


def test_slice_with_one_coverage_names_one_limit() -> None:
    rows = pl.DataFrame({"indicator_id": ["a", "b"], "indicator_title": ["A", "B"], "z": [1.0, -4.0],
                         "status": ["within", "alert_low"], "better": ["higher", "higher"],
                         "status_label": ["as expected", "worse"]})
    fig = figures.slice_figure(rows, title="t", limits={"a": (0.998,), "b": (0.998,)})
    assert _lines(fig.layout.xaxis.title.text)[1] == "bands: 99.8% limit"


@pytest.mark.parametrize("example", ["fds", "shmi"])
def test_caterpillar_names_leave_half_a_phone_chart(example: str, request) -> None:
    """Names at most CATERPILLAR_LABEL_PX wide ('…' for the rest; the full name in the hover), so the left margin
    (measured, as b8e6f14 sized it for capitals) leaves the ranked intervals room on a 358 px chart."""
    run = request.getfixturevalue(example)
    result = next(iter(run.results.values()))
    rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)
    fig = figures.caterpillar_figure(rows, title="t", better=result.spec.better, risk_adjusted=False,
                                     multiplier=result.spec.multiplier)
    labels = [html.unescape(t) for t in fig.layout.yaxis.ticktext]
    widest = max(figures.label_width(t) for t in labels)
    assert widest <= figures.CATERPILLAR_LABEL_PX
    assert widest <= fig.layout.margin.l <= 16 + figures.CATERPILLAR_LABEL_PX + 1
    assert 358 - fig.layout.margin.l - fig.layout.margin.r >= 0.4 * 358
    cut = [t for t in labels if t.endswith("…")]
    full = list(fig.layout.yaxis.tickvals)
    for label in cut:  # a cut name is the start of a name that is in the hover (the category is the full name)
        assert any(html.unescape(n).startswith(label[:-1]) for n in full), label
    assert cut, labels  # the published names do need the bound (the old margin was up to 420 px)


def _values(v: object) -> list[float]:
    import base64

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return [np.nan if x is None else x for x in (v if isinstance(v, list | tuple | np.ndarray) else [v])]


def test_rug_column_titles_say_which_cancer(fds: AuditRun) -> None:
    """The Overview's rug on the Faster Diagnosis example: its turned column titles, cut at rug.TITLES_MAX, all
    read 'Told the outcome within 28 days of an urgent referral for…'; they now keep what differs, and each
    column's hover (its <title>) keeps the whole title."""
    import xml.etree.ElementTree as ET

    from audit_metrics import rug, views

    grid = views.pooled(fds).filter(pl.col("level") == "trust")
    root = ET.fromstring(rug.rug_svg(grid, title="t", group="cancer_alliance").svg)
    ns = "{http://www.w3.org/2000/svg}"
    turned = [t for t in root.iter(f"{ns}text") if "rotate(-90)" in (t.get("transform") or "")]
    shown = sorted("".join(t.itertext()).removeprefix(t.find(f"{ns}title").text) for t in turned)
    assert shown == ["…suspected breast cancer", "…suspected lower GI cancer", "…suspected lung cancer",
                     "…suspected skin cancer"], shown
    assert {t.find(f"{ns}title").text for t in turned} == {r.spec.title for r in fds.results.values()}


def test_cusum_leaves_room_for_its_decision_limits_labels() -> None:
    """The lower decision limit's label ('h = -4.5 (in-control ARL about ...)') is drawn below its line: autoranged,
    the axis ended at the lowest CUSUM, so where the improvement CUSUM reached -h the label sat on the x axis's
    dates (sample, sact_mort30, Gleddale, 390 and 1280 px). Both limits now have room beyond them."""
    from audit_metrics import cusum, trend_figures

    risk = np.full(200, 0.1)
    outcome = np.zeros(200)
    outcome[10:20] = 1  # a cluster: the deterioration CUSUM crosses h; then none: the improvement one reaches -h
    chart = cusum.build_cusum(list(range(200)), risk, outcome, h_up=2.0, h_down=2.0)
    assert chart.table["signal_up"].any() and chart.table["signal_down"].any()
    fig = trend_figures.cusum_figure(chart, title="Risk-adjusted CUSUM: t")
    low, high = fig.layout.yaxis.range
    span = max(chart.table["cusum_up"].max(), 2.0) - min(chart.table["cusum_down"].min(), -2.0)
    assert low <= min(chart.table["cusum_down"].min(), -2.0) - 0.1 * span
    assert high >= max(chart.table["cusum_up"].max(), 2.0) + 0.1 * span


def test_titles_are_wrapped_by_width_too() -> None:
    """A title line is at most TITLE_WIDTH characters and TITLE_PX by label_width at 16 px: 'Risk-adjusted CUSUM:
    Gleddale Hospitals NHS' (43 characters, many capitals) was drawn 362 px wide, cut at both ends on a phone."""
    title = "Risk-adjusted CUSUM: Gleddale Hospitals NHS Trust (ZE5)"
    lines = _lines(figures.wrap_title(title))
    assert lines == ["Risk-adjusted CUSUM: Gleddale Hospitals", "NHS Trust (ZE5)"]
    assert all(figures.label_width(line, 16) <= figures.TITLE_PX for line in lines)
    assert figures.title_margin(title) == 80
    # lower-case titles of 44 characters stay on one line, as before
    assert "<br>" not in figures.wrap_title("Each indicator as a slice through its funnel")
