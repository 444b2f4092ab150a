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
        fig.add_trace(go.Scatter(
            x=chosen[x_col].to_numpy(), y=chosen["value"].to_numpy() * factor, mode="markers+text",
            name=plotly_text(label_highlight),
            text=[plotly_text(n) for n in short_names(chosen["unit_name"].to_list(), NHS_SUFFIX)]
            if chosen.height == 1 else None,
            textposition="top center", textfont={"size": 12, "color": PALETTE["highlight"]},
            marker={"color": "rgba(0,0,0,0)", "size": 20, "line": {"width": 3, "color": PALETTE["highlight"]}},
            hoverinfo="skip"))
    fig.update_layout(_layout(title, f"{x_title} (log scale)" if log_x else x_title, y_title))
    if log_x:  # labels at powers of ten only (Plotly's 2..9 minor labels crowd a phone's axis)
        fig.update_xaxes(type="log", dtick=1)
    return fig


def _hover_data(part: pl.DataFrame, *, risk_adjusted: bool, coverage: float) -> np.ndarray:
    """[unit name, hover text] per point: the value, counts and the unit's own expected range, all
    on the plotted scale (``views.hover_text``)."""
    texts = [views.hover_text(views.on_scale(r, risk_adjusted=risk_adjusted, coverage=coverage))
             for r in part.iter_rows(named=True)]
    names = np.array([plotly_text(n) for n in part["unit_name"].to_list()], dtype=object)
    return np.column_stack([names, np.array(texts, dtype=object)])


TITLE_WIDTH = 44  # characters a title line: about 340 px at 16 px, so a phone (a chart ~360 px wide) shows it whole


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """A chart title as Plotly text, broken onto lines of at most ``width`` characters: Plotly never wraps
    a title, and at 390 px "90-day mortality after major bowel cancer resection (2021/22 to 2023/24)"
    lost both ends."""
    return "<br>".join(plotly_text(line) for line in textwrap.wrap(str(title), width)) or plotly_text(title)


def title_margin(title: str, width: int = TITLE_WIDTH) -> int:
    """The top margin for a title wrapped by :func:`wrap_title` (60 px for one line, 20 px a further line)."""
    return 60 + 20 * max(len(textwrap.wrap(str(title), width)) - 1, 0)


def _layout(title: str, x_title: str, y_title: str) -> dict:
    return {
        "title": {"text": wrap_title(title), "font": {"size": 16}},
        "xaxis": {"title": x_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "yaxis": {"title": y_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"family": "Arial, sans-serif", "color": "#231F20"},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.24, "x": 0},
        "margin": {"l": 60, "r": 20, "t": title_margin(title), "b": 40}, "height": 520,
    }


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
    labels = short_names(y, TRUST_WORDS, NHS_SUFFIX, ALLIANCE_SUFFIX)
    layout["yaxis"] = {"automargin": False, "tickfont": {"size": 9}, "categoryorder": "array",
                       "categoryarray": y, "tickmode": "array", "tickvals": y, "ticktext": labels}
    if n:  # the rows fill the plot, the first and last half a row from its edges (autorange padded ~8 rows for the
        # markers, an empty band above the top unit)
        layout["yaxis"].update(range=[-0.5, n - 0.5], autorange=False)
    layout["margin"] = {**layout["margin"], "l": min(420, 16 + round(max((label_width(n) for n in labels), default=0)))}
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
NHS_SUFFIX = re.compile(r"\s+(NHS Foundation Trust|NHS Trust)$", re.IGNORECASE)
# the rug's row labels keep the place: 'Kescombe and Lanmouth Teaching Hospitals NHS Foundation Trust' ->
# 'Kescombe and Lanmouth' (columns then keep enough width for every indicator's label at 1024 px)
TRUST_WORDS = re.compile(r"(\s+(University|Teaching|Community|General|Acute|Hospitals?|Healthcare))*"
                          r"\s+(NHS Foundation Trust|NHS Trust)$", re.IGNORECASE)
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
            if not shortened[i] and len(owners[sh]) == 1 and sh:
                labels[i], shortened[i] = sh, True
    return labels if len(set(labels)) == len(set(full)) else full


def slice_figure(rows: pl.DataFrame, *, title: str,
                 limits: Mapping[str, Sequence[float]] | None = None) -> go.Figure:
    """One row per indicator: the unit's z-score against its alert and alarm bands ("a slice
    through each funnel"). ``rows`` needs indicator_id, indicator_title, z, status, better,
    status_label; ``limits`` gives each indicator's coverages (default 95% and 99.8%), so the bands
    are each indicator's own."""
    data = rows.filter(pl.col("z").is_not_null())
    # titles on two lines (30 characters or half the title): whole, they took 290 of a phone's 360 px (the rest of
    # the chart 40 px) and were cut off at the left
    data = data.with_columns(_plotly_columns("indicator_title")).with_columns(
        pl.col("indicator_title").map_elements(lambda t: "<br>".join(textwrap.wrap(t, max(30, len(t) // 2 + 6))) or t,
                                               return_dtype=pl.String))
    y = data["indicator_title"].to_list()
    fig = go.Figure()
    default = (0.95, 0.998)
    for level, colour in ((-1, "#F0F4F5"), (0, "#DDE5E8")):  # alarm band behind, alert band in front
        xs: list[float | None] = []
        ys: list[str | None] = []
        for r in data.iter_rows(named=True):
            coverage = (limits or {}).get(r.get("indicator_id"), default)
            zc = coverage_z(coverage[level])
            xs += [-zc, zc, None]
            ys += [r["indicator_title"], r["indicator_title"], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 18},
                                 hoverinfo="skip", showlegend=False))
    fig.add_vline(x=0, line={"color": PALETTE["target"], "width": 1})
    for r in data.iter_rows(named=True):
        only = len((limits or {}).get(r.get("indicator_id"), default)) == 1  # its only limit is its outer one too
        status = str(r["status"])
        colour, symbol, size = status_style(status.replace("alert", "alarm") if only else status, r["better"])
        fig.add_trace(go.Scatter(x=[max(min(r["z"], 6), -6)], y=[r["indicator_title"]], mode="markers",
                                 marker={"color": colour, "symbol": symbol, "size": size + 2},
                                 showlegend=False, customdata=[[r["status_label"], r["z"]]],
                                 hovertemplate="<b>%{y}</b><br>%{customdata[0]}<br>z = %{customdata[1]:.2f}<extra></extra>"))
    coverages = {tuple((limits or {}).get(r, default)) for r in data["indicator_id"]} if "indicator_id" in data.columns else {default}
    bands = (" and ".join(f"{c * 100:g}%" for c in next(iter(coverages))) + " limits" if len(coverages) == 1 else
             "each indicator's alert and alarm limits")
    # short lines (the caption under the chart gives the limits in standard deviations): the longer title
    # ran past a phone's edge, and with a 40 px margin its first line sat on the tick numbers
    layout = _layout(title, f"Difference from expected (z)<br>bands: {bands}", "")
    layout["height"] = max(300, 34 * len(y) + 80 + layout["margin"]["t"])
    layout["margin"] = {**layout["margin"], "b": 70}
    layout["xaxis"]["range"] = [-6.3, 6.3]
    layout["yaxis"] = {"automargin": True, "categoryorder": "array", "categoryarray": y[::-1], "tickfont": {"size": 11}}
    fig.update_layout(layout)
    return fig
