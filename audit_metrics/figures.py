"""Plotly figures: funnel, caterpillar, tartan rug and trust slice. Never calls Streamlit.

One palette (NHS "Making Data Count"-style: orange = worse, blue = better, grey = as expected),
and status is always shown by colour *and* marker shape, so it survives colour-blindness and
greyscale printing. The only other place that formats numbers is ``export.py``.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl

from audit_metrics import views
from audit_metrics.funnel import coverage_z
from audit_metrics.outliers import coverage_label

__all__ = [
    "PALETTE",
    "caterpillar_figure",
    "funnel_figure",
    "plotly_text",
    "short_names",
    "slice_figure",
    "status_style",
]

PALETTE = {
    # every marker colour has at least 3:1 contrast with the white background (WCAG 2.1 AA, non-text 1.4.11);
    # alert and alarm also differ by size
    "worse_alarm": "#A33B00", "worse_alert": "#D66D00",
    "better_alarm": "#003087", "better_alert": "#1D7FB8",
    "higher_alarm": "#4B0082", "higher_alert": "#8A6BBE",
    "lower_alarm": "#005B5B", "lower_alert": "#33A1A1",
    "within": "#768692", "not_assessed": "#D0D5D9",
    "target": "#231F20", "limit": "#425563", "highlight": "#E5007E",
}
STATUS_ORDER = ("alarm_low", "alert_low", "within", "alert_high", "alarm_high", "not_assessed")


def plotly_text(value: object) -> str:
    """Text from data as Plotly text: Plotly reads a subset of HTML in titles, legend names, tick labels,
    annotations and hover labels (``<a href>`` makes a live link, ``<b>``, ``<span style>``...), so ``&``,
    ``<`` and ``>`` become entities, which Plotly shows as the characters themselves (#15 item 7)."""
    return html.escape("" if value is None else str(value), quote=False)


def _plotly_columns(*names: str) -> list[pl.Expr]:
    """:func:`plotly_text` on string columns (``&`` first, so no entity is escaped twice)."""
    return [pl.col(n).cast(pl.String).str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True).str.replace_all(">", "&gt;", literal=True) for n in names]


def direction_of(status: str, better: str) -> str:
    side = status.split("_")[1]
    if better == "neither":
        return "higher" if side == "high" else "lower"
    return "worse" if (side == "high") == (better == "lower") else "better"


def status_style(status: str, better: str) -> tuple[str, str, int]:
    """(colour, marker symbol, size) for a status, direction-aware."""
    if status in {"within", "not_assessed"}:
        return PALETTE[status], "circle" if status == "within" else "circle-open", 8
    level, side = status.split("_")
    colour = PALETTE[f"{direction_of(status, better)}_{level}"]
    symbol = "triangle-up" if side == "high" else "triangle-down"
    return colour, symbol, 13 if level == "alarm" else 10


def axis_titles(spec_statistic: str, risk_adjusted: bool, multiplier: float) -> tuple[str, str]:
    unit = " (%)" if multiplier == 100 else ""
    if risk_adjusted:
        return "Patients in the cohort", f"Risk-adjusted rate{unit}"
    return {"proportion": ("Patients in the cohort", f"Rate{unit}"),
            "ratio": ("Expected events", "Observed / expected"),
            "rate": ("Person-time", "Rate per unit time"),
            "ratio_of_counts": ("Comparison count", "Ratio of counts")}[spec_statistic]


def target_name(statistic: str, *, standard: bool, risk_adjusted: bool = False) -> str:
    """What the funnel's centre line is: the audit's standard, or the national value it is compared with."""
    if standard:
        return "Audit standard"
    if risk_adjusted or statistic in ("proportion", "rate"):
        return "National rate"
    return "National value (observed = expected)" if statistic == "ratio" else "National value"


def funnel_figure(rows: pl.DataFrame, curve: pl.DataFrame, *, title: str, better: str,
                  statistic: str, risk_adjusted: bool, multiplier: float, coverage: Sequence[float],
                  highlight: Sequence[str] = (), label_highlight: str = "selected",
                  peers: Sequence[str] = (), label_peers: str = "peers", standard: bool = False) -> go.Figure:
    """Funnel plot of one indicator at one level and period.

    ``rows`` are results-table rows (value, limits, status...), ``curve`` the limit curves. Values
    and limits are drawn on the adjusted-rate scale for risk-adjusted indicators. The centre line is
    named for what it is (``target_name``: the audit standard when ``standard``, else the national
    value). Limits are drawn only across the units' own range (not below the smallest unit), and the x
    axis is logarithmic, and titled so, when the units' sizes span more than 20-fold.

    ``highlight``: the selected units, ringed (and named when there is one), as ``label_highlight``;
    ``peers`` (e.g. the selected trust's alliance's trusts) are ringed more lightly, as ``label_peers``.
    """
    x_title, y_title = axis_titles(statistic, risk_adjusted, multiplier)
    scale = float(rows["rate_scale"][0]) if risk_adjusted and rows.height else 1.0
    factor = scale * multiplier
    x_col = "denominator" if risk_adjusted or statistic == "proportion" else (
        "expected" if statistic == "ratio" else "denominator")
    sizes = rows.filter(pl.col("value").is_not_null(), pl.col(x_col) > 0)[x_col]
    low, high = (float(sizes.min()), float(sizes.max())) if sizes.len() else (None, None)
    log_x = low is not None and high / low > 20
    fig = go.Figure()
    if curve.height and low is not None:  # no limits drawn for sizes no unit has (below the smallest)
        curve = curve.filter(pl.col("x") >= low * (0.9 if log_x else 1.0), pl.col("x") <= high * 1.05)
    if curve.height:
        cx = curve["x"].to_numpy()
        fig.add_trace(go.Scatter(x=cx, y=curve["target"].to_numpy() * factor, mode="lines",
                                 line={"color": PALETTE["target"], "width": 1.5},
                                 name=target_name(statistic, standard=standard, risk_adjusted=risk_adjusted), hoverinfo="skip"))
        for i, c in enumerate(coverage[:2]):
            lab = coverage_label(c)
            dash = "dash" if i == 0 else "solid"
            # one limit: named by its coverage alone (it is the indicator's only limit, not an alert level)
            name = f"{lab}% limits" + ("" if len(coverage) == 1 else f" ({'alert' if i == 0 else 'alarm'})")
            for j, side in enumerate(("lower", "upper")):
                fig.add_trace(go.Scatter(
                    x=cx, y=curve[f"{side}_{lab}"].to_numpy() * factor, mode="lines", name=name,
                    legendgroup=name, showlegend=j == 0, hoverinfo="skip",
                    line={"color": PALETTE["limit"], "dash": dash, "width": 1.2}))
    for status in STATUS_ORDER:
        part = rows.filter(pl.col("status").cast(pl.String) == status, pl.col("value").is_not_null())
        if part.height == 0:
            continue
        # one limit: beyond it is beyond the indicator's outer limit, drawn as the rug draws it (the alarm shade)
        colour, symbol, size = status_style(status.replace("alert", "alarm") if len(coverage) == 1 else status, better)
        label = str(part["status_label"][0])
        fig.add_trace(go.Scatter(
            x=part[x_col].to_numpy(), y=part["value"].to_numpy() * factor, mode="markers",
            name=label[:1].upper() + label[1:],
            marker={"color": colour, "symbol": symbol, "size": size, "line": {"width": 0.5, "color": "white"}},
            customdata=_hover_data(part, risk_adjusted=risk_adjusted, coverage=coverage[0]),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<extra></extra>"))
    ringed = rows.filter(pl.col("unit_code").is_in(list(peers)), ~pl.col("unit_code").is_in(list(highlight)),
                         pl.col("value").is_not_null())
    if ringed.height:  # drawn first, so the selected unit's ring is on top
        fig.add_trace(go.Scatter(
            x=ringed[x_col].to_numpy(), y=ringed["value"].to_numpy() * factor, mode="markers",
            name=plotly_text(label_peers), hoverinfo="skip",
            marker={"color": "rgba(0,0,0,0)", "size": 15, "line": {"width": 1.5, "color": PALETTE["limit"]}}))
    chosen = rows.filter(pl.col("unit_code").is_in(list(highlight)), pl.col("value").is_not_null())
    if chosen.height:
        # one selected unit is named beside its ring, on the side with room and no other point (centred above it,
        # a long alliance name ran off the plot's left edge and over a point; real-data review)
        if chosen.height == 1:
            name = short_names(chosen["unit_name"].to_list(), NHS_SUFFIX, ALLIANCE_SUFFIX)[0]
            shown = rows.filter(pl.col("value").is_not_null(), pl.col(x_col) > 0 if log_x else pl.lit(True))
            xs = np.concatenate([shown[x_col].cast(pl.Float64).to_numpy(), curve["x"].to_numpy() if curve.height else []])
            ys = np.concatenate([shown["value"].cast(pl.Float64).to_numpy() * factor,
                                 *([curve[c].to_numpy() * factor for c in curve.columns
                                    if c == "target" or c.startswith(("lower_", "upper_"))] if curve.height else [])])
            others = shown.filter(~pl.col("unit_code").is_in(list(highlight)))
            x_range, y_range = _extent(xs, log=log_x), _extent(ys, log=False)
            at = (float(chosen[x_col][0]), float(chosen["value"][0]) * factor)
            points = list(zip(others[x_col].cast(pl.Float64).to_list(),
                              (others["value"].cast(pl.Float64) * factor).to_list(), strict=True))
            for width in (POINT_LABEL_PX, 0.7 * POINT_LABEL_PX):  # narrower, on more lines, where a crowd needs it
                label = wrap_label(name, width, size=POINT_LABEL_SIZE, max_lines=4)
                dx, dy, gap, free = label_place(at, label, x_range=x_range, y_range=y_range, log_x=log_x,
                                                points=points)
                if free:
                    break
            # an annotation (x on a log axis in its log10 units, as Plotly takes them), its box centred dx, dy px
            # from the ring, joined to it by a line when it had to go further out
            fig.add_annotation(x=float(np.log10(at[0])) if log_x else at[0], y=at[1], text=label, ax=dx, ay=-dy,
                               axref="pixel", ayref="pixel", showarrow=True, arrowhead=0, arrowwidth=1,
                               arrowcolor=PALETTE["highlight"] if gap else "rgba(0,0,0,0)", standoff=RING_PX - 2,
                               font={"size": POINT_LABEL_SIZE, "color": PALETTE["highlight"]},
                               bgcolor="rgba(255,255,255,0.8)", name="selected_label")
        fig.add_trace(go.Scatter(
            x=chosen[x_col].to_numpy(), y=chosen["value"].to_numpy() * factor, mode="markers",
            name=plotly_text(label_highlight),
            marker={"color": "rgba(0,0,0,0)", "size": 20, "line": {"width": 3, "color": PALETTE["highlight"]}},
            hoverinfo="skip"))
    fig.update_layout(_layout(title, f"{x_title} (log scale)" if log_x else x_title, y_title))
    if log_x:  # labels at powers of ten only (Plotly's 2..9 minor labels crowd a phone's axis)
        fig.update_xaxes(type="log", dtick=1)
    return fig


# the selected unit's name beside its ring: its font size, the longest line (px), and the plot it is placed for (the
# narrowest: a 390 px phone's funnel is about 280 x 380 px; wider plots only shrink the label against the axes)
POINT_LABEL_SIZE = 12
POINT_LABEL_PX = 130
PLOT_PX = (280.0, 380.0)
RING_PX = 12.0  # half the selected unit's ring (20 px) and its line: the label starts beyond it


def wrap_label(text: str, width_px: float, *, size: float = 9, max_lines: int = 3) -> str:
    """``text`` as Plotly text broken onto lines of at most ``width_px`` (measured by :func:`label_width`), at most
    ``max_lines`` of them, the last ending in '…' when the text is longer (the full text stays in the hover)."""
    words = str(text).split()
    lines: list[str] = []
    for word in words:
        if lines and label_width(f"{lines[-1]} {word}", size) <= width_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and label_width(last + "…", size) > width_px and " " in last:
            last = last.rsplit(" ", 1)[0]
        lines = [*lines[:max_lines - 1], last + "…"]
    return "<br>".join(plotly_text(line) for line in lines) or plotly_text(text)


def _extent(values: np.ndarray, *, log: bool) -> tuple[float, float]:
    """The axis range the values span (in log10 units on a log axis)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    v = np.log10(v) if log else v
    return float(v.min()), float(v.max())


def label_place(at: tuple[float, float], label: str, *, points: Sequence[tuple[float, float]],
                x_range: tuple[float, float], y_range: tuple[float, float], log_x: bool = False,
                size: float = POINT_LABEL_SIZE, plot_px: tuple[float, float] = PLOT_PX,
                ) -> tuple[float, float, float, bool]:
    """Where to put a point's label: ``(dx, dy, gap, free)``, the label box's centre from the point in pixels
    (``dy`` up), how far beyond the point's ring it is, and whether the place is free (inside, on no point). The box is tried beside the ring on each side and corner, then
    further out (a line then joins it to the ring), and the first place is taken that stays inside a plot of
    ``plot_px`` over ``x_range`` x ``y_range`` and covers no other point; failing that, the one least outside, then
    over fewest points. The box is measured by :func:`label_width`; a point between it and the ring counts as
    covered, so a place that is free here is free on a wider plot too (the points only move away from the ring
    sideways, and the plot's height is fixed)."""
    lines = label.split("<br>")
    width = max(label_width(html.unescape(line), size) for line in lines) + 4
    height = 1.3 * size * len(lines) + 4
    (x0, x1), (y0, y1) = x_range, y_range
    sx = plot_px[0] / ((x1 - x0) or 1.0)
    sy = plot_px[1] / ((y1 - y0) or 1.0)
    px = ((np.log10(at[0]) if log_x else at[0]) - x0) * sx
    py = (at[1] - y0) * sy
    others = np.array([(((np.log10(x) if log_x else x) - x0) * sx, (y - y0) * sy) for x, y in points
                       if x is not None and y is not None and np.isfinite(y) and (not log_x or x > 0)]).reshape(-1, 2)
    pw, ph = plot_px
    best: tuple[tuple[float, ...], tuple[float, float, float]] | None = None
    # sixteen directions, right and left first (a label reads best beside its point), then the diagonals, then
    # above and below; at each distance in turn
    angles = [0, 180, 22.5, -22.5, 157.5, -157.5, 45, -45, 135, -135, 67.5, -67.5, 112.5, -112.5, 90, -90]
    for gap in (0.0, 14.0, 30.0, 50.0, 80.0, 120.0, 170.0):
        for order, angle in enumerate(angles):
            cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
            # the box's centre: its near edge ``gap`` beyond the ring in this direction
            cx = px + cos * (RING_PX + gap) + np.sign(round(cos, 6)) * width / 2
            cy = py + sin * (RING_PX + gap) + np.sign(round(sin, 6)) * height / 2
            if abs(cos) < 0.5:  # above or below: slid along to stay inside the plot
                cx = min(max(cx, width / 2), pw - width / 2)
            left, right, bottom, top = cx - width / 2, cx + width / 2, cy - height / 2, cy + height / 2
            ring = max(0.0, min(right, px + RING_PX) - max(left, px - RING_PX)) * max(
                0.0, min(top, py + RING_PX) - max(bottom, py - RING_PX))
            outside = max(0.0, -left) + max(0.0, right - pw) + max(0.0, -bottom) + max(0.0, top - ph) + ring
            # points between the ring and the box count too: on a wider plot they move out, towards the box
            covered = int(np.sum((others[:, 0] >= min(left, px) - 5) & (others[:, 0] <= max(right, px) + 5)
                                 & (others[:, 1] >= bottom - 5) & (others[:, 1] <= top + 5)))
            key = (outside, covered, gap, order)
            if best is None or key < best[0]:
                best = (key, (cx - px, cy - py, gap, False))
            if outside == 0 and covered == 0:
                return cx - px, cy - py, gap, True
    return best[1] if best else (RING_PX + width / 2, 0.0, 0.0, False)


def _hover_data(part: pl.DataFrame, *, risk_adjusted: bool, coverage: float) -> np.ndarray:
    """[unit name, hover text] per point: the value, counts and the unit's own expected range, all
    on the plotted scale (``views.hover_text``)."""
    texts = [views.hover_text(views.on_scale(r, risk_adjusted=risk_adjusted, coverage=coverage))
             for r in part.iter_rows(named=True)]
    names = np.array([plotly_text(n) for n in part["unit_name"].to_list()], dtype=object)
    return np.column_stack([names, np.array(texts, dtype=object)])


TITLE_WIDTH = 44  # characters a title line: about 340 px at 16 px, so a phone (a chart ~360 px wide) shows it whole
# and at most this wide by label_width at 16 px (capitals are wider: 'Risk-adjusted CUSUM: Gleddale Hospitals NHS',
# 43 characters, was drawn 362 px wide and lost its first and last letters on a phone; the sweep of defect 10)
TITLE_PX = 375


def _title_lines(title: str, width: int) -> list[str]:
    """A title's lines, filled word by word: at most ``width`` characters and :data:`TITLE_PX` (by
    :func:`label_width`) each (a word longer than a line is broken, as ``textwrap`` breaks it)."""
    lines: list[str] = []
    for word in (piece for w in str(title).split() for piece in textwrap.wrap(w, width)):
        if lines and len(lines[-1]) + 1 + len(word) <= width and label_width(f"{lines[-1]} {word}", 16) <= TITLE_PX:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """A chart title as Plotly text, broken onto lines of at most ``width`` characters (and :data:`TITLE_PX`):
    Plotly never wraps a title, and at 390 px "90-day mortality after major bowel cancer resection (2021/22 to
    2023/24)" lost both ends."""
    return "<br>".join(plotly_text(line) for line in _title_lines(title, width)) or plotly_text(title)


def title_margin(title: str, width: int = TITLE_WIDTH) -> int:
    """The top margin for a title wrapped by :func:`wrap_title` (60 px for one line, 20 px a further line)."""
    return 60 + 20 * max(len(_title_lines(title, width)) - 1, 0)


def _layout(title: str, x_title: str, y_title: str) -> dict:
    return {
        "title": {"text": wrap_title(title), "font": {"size": 16}},
        "xaxis": {"title": x_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "yaxis": {"title": y_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"family": "Arial, sans-serif", "color": "#231F20"},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.24, "x": 0},
        "margin": {"l": 60, "r": 20, "t": title_margin(title), "b": 40}, "height": 520,
    }


CATERPILLAR_LABEL_PX = 160  # a unit's label at most this wide (9 px): the ranked intervals keep half a phone's chart


def caterpillar_figure(rows: pl.DataFrame, *, title: str, better: str, risk_adjusted: bool,
                       multiplier: float, highlight: Sequence[str] = (), coverage: float = 0.95) -> go.Figure:
    """Units ranked by value, each with its own alert-level interval (``coverage``) around the target.

    The bar is the range a unit of its size would be expected to fall in; a dot outside its bar
    is flagged. Ranking is for finding units, not a league table.
    """
    scale = float(rows["rate_scale"][0]) if risk_adjusted and rows.height else 1.0
    factor = scale * multiplier
    # a unit with no data has a NaN value (not a null): listed, it was an empty row at the top (the reference
    # geography's ambulance and mental-health trusts on the Cancer Waiting Times tables; a real-data review)
    data = rows.filter(pl.col("value").cast(pl.Float64).is_finite()).sort("value")
    fig = go.Figure()
    data = data.with_columns(_plotly_columns("unit_name"))
    y = data["unit_name"].to_list()
    # every unit's bar in one trace (segments split by gaps): one add_shape per unit took seconds
    n = data.height
    bar_x: list[float | None] = [None] * (3 * n)
    bar_x[0::3] = (data["lower_alert"].cast(pl.Float64) * factor).to_list()
    bar_x[1::3] = (data["upper_alert"].cast(pl.Float64) * factor).to_list()
    bar_y: list[str | None] = [None] * (3 * n)
    bar_y[0::3] = y
    bar_y[1::3] = y
    fig.add_trace(go.Scatter(x=bar_x, y=bar_y, mode="lines", line={"color": "#C8CFD3", "width": 6},
                             connectgaps=False, hoverinfo="skip", showlegend=False, name="Expected range"))
    for status in STATUS_ORDER:
        part = data.filter(pl.col("status").cast(pl.String) == status)
        if part.height == 0:
            continue
        colour, symbol, size = status_style(status, better)
        fig.add_trace(go.Scatter(x=part["value"].to_numpy() * factor, y=part["unit_name"].to_list(),
                                 mode="markers", name=str(part["status_label"][0]).capitalize(),
                                 marker={"color": colour, "symbol": symbol, "size": size},
                                 customdata=_hover_data(part, risk_adjusted=risk_adjusted, coverage=coverage),
                                 hovertemplate="<b>%{y}</b><br>%{customdata[1]}<extra></extra>"))
    if data.height:
        fig.add_vline(x=float(data["target"][0]) * factor, line={"color": PALETTE["target"], "width": 1})
    layout = _layout(title, "Value" + (" (%)" if multiplier == 100 else ""), "")
    layout["height"] = max(400, 16 * data.height + 140)
    # every label shown (Plotly thins crowded category labels, which misaligns rows and labels). The left margin
    # is sized from the longest name rather than by automargin, which measures every label and draws twice
    # (the largest share of the browser's time on this chart)
    # labelled by the name without its shared ending ('Kescombe and Lanmouth' for '... Teaching Hospitals NHS
    # Foundation Trust'; the hover keeps the full name): with whole names the left margin took 320 of a
    # phone's 360 px and left the chart a sliver
    # and at most CATERPILLAR_LABEL_PX wide, the rest '…' (in capitals, 'PORTSMOUTH HOSPITALS UNIVERSITY NATIONAL
    # HEALTH SERVICE TRUST' took the whole of a phone's chart: the plot was 2 px wide)
    labels = [wrap_label(html.unescape(label), CATERPILLAR_LABEL_PX, size=9, max_lines=1)
              for label in short_names(y, TRUST_WORDS, NHS_SUFFIX, ALLIANCE_SUFFIX)]
    layout["yaxis"] = {"automargin": False, "tickfont": {"size": 9}, "categoryorder": "array",
                       "categoryarray": y, "tickmode": "array", "tickvals": y, "ticktext": labels}
    if n:  # the rows fill the plot, the first and last half a row from its edges (autorange padded ~8 rows for the
        # markers, an empty band above the top unit)
        layout["yaxis"].update(range=[-0.5, n - 0.5], autorange=False)
    layout["margin"] = {**layout["margin"], "l": 16 + round(max((label_width(html.unescape(n)) for n in labels), default=0))}
    fig.update_layout(layout)
    for name in highlight:
        match = data.filter(pl.col("unit_code") == name)
        if match.height:
            fig.add_annotation(x=float(match["value"][0]) * factor, y=match["unit_name"][0], text="◀ selected",
                               showarrow=False, xanchor="left", font={"color": PALETTE["highlight"]})
    return fig


# flagged cells of the rug: shape says worse (filled) or better (outline) as well as colour, the point says
# above or below expected
RUG_MARKS = views.RUG_MARKS  # one table: the flagged list shows the same marks


# case ignored: published tables often write names in capitals ('AIREDALE NHS FOUNDATION TRUST')
NHS_SUFFIX = re.compile(r"\s+(NHS Foundation Trust|NHS Trust|National Health Service Trust)$", re.IGNORECASE)
# the rug's row labels keep the place: 'Kescombe and Lanmouth Teaching Hospitals NHS Foundation Trust' ->
# 'Kescombe and Lanmouth' (columns then keep enough width for every indicator's label at 1024 px)
TRUST_WORDS = re.compile(r"(\s+(University|Teaching|Community|General|Acute|Hospitals?|Healthcare))*"
                          r"\s+(NHS Foundation Trust|NHS Trust|National Health Service Trust)$", re.IGNORECASE)
ALLIANCE_SUFFIX = re.compile(r"\s+Cancer Alliance$", re.IGNORECASE)


def label_width(text: str, size: float = 9) -> float:
    """About how wide ``text`` is drawn at ``size`` px in Plotly's sans-serif font: capitals and digits take about
    0.68 of the size, other characters 0.51 (a name in capitals, as published tables write them, was cut off at the
    left of a margin sized at 0.51 for every character; a real-data review)."""
    return sum(size * (0.68 if c.isupper() or c.isdigit() else 0.51) for c in text)


def short_names(names: list[str], *endings: re.Pattern[str]) -> list[str]:
    """Labels without the ending they share ('NHS Foundation Trust', 'Cancer Alliance'), so the rug's cells
    keep their width on narrow screens. ``endings`` go from the most to the least shortening; each name takes
    the shortest form no other name shares, else stays whole."""
    full = [str(n) for n in names]
    labels = list(full)
    shortened = [False] * len(full)
    for ending in endings:
        short = [ending.sub("", n) for n in full]
        owners: dict[str, set[str]] = {}
        for n, sh in zip(full, short, strict=True):
            owners.setdefault(sh, set()).add(n)
        for i, sh in enumerate(short):
            # an ending a name does not have leaves it for the next (a name marked shortened by its first ending,
            # unchanged, kept ' Cancer Alliance' for the next to take)
            if not shortened[i] and len(owners[sh]) == 1 and sh and sh != full[i]:
                labels[i], shortened[i] = sh, True
    return labels if len(set(labels)) == len(set(full)) else full


def distinct_titles(titles: Sequence[str], *, shared_words: int = 4) -> list[str]:
    """Titles without the words they all begin with, when there are at least ``shared_words`` of them, the last of
    those kept after an '…' ('Told the outcome within 28 days of an urgent referral for suspected breast cancer' ->
    '…suspected breast cancer' beside '…suspected lung cancer'): shortened to three lines, each of the Faster
    Diagnosis titles read 'Told the outcome within 28 days of an urgent referral for…'."""
    words = [str(t).split() for t in titles]
    if len(words) < 2:
        return [str(t) for t in titles]
    shared = 0
    while all(len(w) > shared + 1 for w in words) and len({w[shared] for w in words}) == 1:
        shared += 1
    if shared < shared_words:
        return [str(t) for t in titles]
    return ["…" + " ".join(w[shared - 1:]) for w in words]


SLICE_LABEL_SIZE = 11
SLICE_LABEL_PX = 140  # an indicator's label at most this wide: with a 16 px gap, under 40% of a phone's 360 px chart


def slice_figure(rows: pl.DataFrame, *, title: str,
                 limits: Mapping[str, Sequence[float]] | None = None) -> go.Figure:
    """One row per indicator: the unit's z-score against its alert and alarm bands ("a slice
    through each funnel"). ``rows`` needs indicator_id, indicator_title, z, status, better,
    status_label; ``limits`` gives each indicator's coverages (default 95% and 99.8%), so the bands
    are each indicator's own.

    Each indicator is labelled by its title on at most four lines of :data:`SLICE_LABEL_PX` (:func:`wrap_label`,
    the full title in the hover), and the left margin is measured from the labels: sized by Plotly
    (automargin), whole titles took 60% of a phone's chart and pushed the axis title off its right edge."""
    data = rows.filter(pl.col("z").is_not_null())
    if "indicator_id" not in data.columns:
        data = data.with_columns(pl.col("indicator_title").alias("indicator_id"))
    data = data.with_columns(pl.col("indicator_id").cast(pl.String))
    # rows are the indicators' ids (unique: two titles shortened alike stay two rows), labelled by their titles
    y = data["indicator_id"].to_list()
    titles = [str(t) for t in data["indicator_title"].to_list()]
    labels = [wrap_label(t, SLICE_LABEL_PX, size=SLICE_LABEL_SIZE, max_lines=4) for t in distinct_titles(titles)]
    lines = max((label.count("<br>") + 1 for label in labels), default=1)
    fig = go.Figure()
    default = (0.95, 0.998)
    for level, colour in ((-1, "#F0F4F5"), (0, "#DDE5E8")):  # alarm band behind, alert band in front
        xs: list[float | None] = []
        ys: list[str | None] = []
        for r in data.iter_rows(named=True):
            coverage = (limits or {}).get(r.get("indicator_id"), default)
            zc = coverage_z(coverage[level])
            xs += [-zc, zc, None]
            ys += [r["indicator_id"], r["indicator_id"], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 18},
                                 hoverinfo="skip", showlegend=False))
    fig.add_vline(x=0, line={"color": PALETTE["target"], "width": 1})
    for r, full in zip(data.iter_rows(named=True), titles, strict=True):
        only = len((limits or {}).get(r.get("indicator_id"), default)) == 1  # its only limit is its outer one too
        status = str(r["status"])
        colour, symbol, size = status_style(status.replace("alert", "alarm") if only else status, r["better"])
        fig.add_trace(go.Scatter(x=[max(min(r["z"], 6), -6)], y=[r["indicator_id"]], mode="markers",
                                 marker={"color": colour, "symbol": symbol, "size": size + 2},
                                 showlegend=False, customdata=[[r["status_label"], r["z"], plotly_text(full)]],
                                 hovertemplate="<b>%{customdata[2]}</b><br>%{customdata[0]}<br>z = %{customdata[1]:.2f}"
                                               "<extra></extra>"))
    coverages = {tuple((limits or {}).get(r, default)) for r in y}
    bands = (" and ".join(f"{coverage_label(c)}%" for c in next(iter(coverages)))
             + (" limits" if len(next(iter(coverages))) > 1 else " limit") if len(coverages) == 1 else
             "each indicator's limits")
    # two short lines (the caption under the chart gives the limits in standard deviations): the longer title
    # ran past a phone's edge, and with a 40 px margin its first line sat on the tick numbers
    layout = _layout(title, f"Difference from expected (z)<br>bands: {bands}", "")
    layout["height"] = max(300, (14 * lines + 20) * len(y) + 80 + layout["margin"]["t"])
    layout["margin"] = {**layout["margin"], "b": 70, "l": 16 + round(max(
        (label_width(html.unescape(line), SLICE_LABEL_SIZE) for label in labels for line in label.split("<br>")),
        default=0))}
    layout["xaxis"]["range"] = [-6.3, 6.3]
    layout["xaxis"]["title"] = {"text": layout["xaxis"]["title"], "font": {"size": 13}}
    layout["yaxis"] = {"automargin": False, "categoryorder": "array", "categoryarray": y[::-1],
                       "tickmode": "array", "tickvals": y, "ticktext": labels, "tickfont": {"size": SLICE_LABEL_SIZE}}
    fig.update_layout(layout)
    return fig
