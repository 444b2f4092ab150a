"""Plotly figures: funnel, caterpillar, tartan rug and trust slice. Never calls Streamlit.

One palette (NHS "Making Data Count"-style: orange = worse, blue = better, grey = as expected),
and status is always shown by colour *and* marker shape, so it survives colour-blindness and
greyscale printing. The only other place that formats numbers is ``export.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl

from audit_metrics import views
from audit_metrics.funnel import coverage_z
from audit_metrics.outliers import coverage_label

__all__ = ["PALETTE", "caterpillar_figure", "funnel_figure", "slice_figure", "status_style", "tartan_figure"]

PALETTE = {
    "worse_alarm": "#A33B00", "worse_alert": "#ED8B00",
    "better_alarm": "#003087", "better_alert": "#41B6E6",
    "higher_alarm": "#4B0082", "higher_alert": "#8A6BBE",
    "lower_alarm": "#005B5B", "lower_alert": "#33A1A1",
    "within": "#768692", "not_assessed": "#D0D5D9",
    "target": "#231F20", "limit": "#425563", "highlight": "#E5007E",
}
STATUS_ORDER = ("alarm_low", "alert_low", "within", "alert_high", "alarm_high", "not_assessed")


def _direction(status: str, better: str) -> str:
    side = status.split("_")[1]
    if better == "neither":
        return "higher" if side == "high" else "lower"
    return "worse" if (side == "high") == (better == "lower") else "better"


def status_style(status: str, better: str) -> tuple[str, str, int]:
    """(colour, marker symbol, size) for a status, direction-aware."""
    if status in {"within", "not_assessed"}:
        return PALETTE[status], "circle" if status == "within" else "circle-open", 8
    level, side = status.split("_")
    colour = PALETTE[f"{_direction(status, better)}_{level}"]
    symbol = "triangle-up" if side == "high" else "triangle-down"
    return colour, symbol, 13 if level == "alarm" else 10


def _axis_title(spec_statistic: str, risk_adjusted: bool, multiplier: float) -> tuple[str, str]:
    unit = " (%)" if multiplier == 100 else ""
    if risk_adjusted:
        return "Patients in the cohort", f"Risk-adjusted rate{unit}"
    return {"proportion": ("Patients in the cohort", f"Rate{unit}"),
            "ratio": ("Expected events", "Observed / expected"),
            "rate": ("Person-time", "Rate per unit time"),
            "ratio_of_counts": ("Comparison count", "Ratio of counts")}[spec_statistic]


def funnel_figure(rows: pl.DataFrame, curve: pl.DataFrame, *, title: str, better: str,
                  statistic: str, risk_adjusted: bool, multiplier: float, coverage: Sequence[float],
                  highlight: Sequence[str] = (), label_highlight: str = "selected") -> go.Figure:
    """Funnel plot of one indicator at one level and period.

    ``rows`` are results-table rows (value, limits, status...), ``curve`` the limit curves. Values
    and limits are drawn on the adjusted-rate scale for risk-adjusted indicators.
    """
    x_title, y_title = _axis_title(statistic, risk_adjusted, multiplier)
    scale = float(rows["rate_scale"][0]) if risk_adjusted and rows.height else 1.0
    factor = scale * multiplier
    x_col = "denominator" if risk_adjusted or statistic == "proportion" else (
        "expected" if statistic == "ratio" else "denominator")
    fig = go.Figure()
    if curve.height:
        cx = curve["x"].to_numpy()
        fig.add_trace(go.Scatter(x=cx, y=curve["target"].to_numpy() * factor, mode="lines",
                                 line={"color": PALETTE["target"], "width": 1.5}, name="Target",
                                 hoverinfo="skip"))
        for i, c in enumerate(coverage[:2]):
            lab = coverage_label(c)
            dash = "dash" if i == 0 else "solid"
            name = f"{lab}% limits ({'alert' if i == 0 else 'alarm'})"
            for j, side in enumerate(("lower", "upper")):
                fig.add_trace(go.Scatter(
                    x=cx, y=curve[f"{side}_{lab}"].to_numpy() * factor, mode="lines", name=name,
                    legendgroup=name, showlegend=j == 0, hoverinfo="skip",
                    line={"color": PALETTE["limit"], "dash": dash, "width": 1.2}))
    for status in STATUS_ORDER:
        part = rows.filter(pl.col("status").cast(pl.String) == status, pl.col("value").is_not_null())
        if part.height == 0:
            continue
        colour, symbol, size = status_style(status, better)
        label = str(part["status_label"][0])
        fig.add_trace(go.Scatter(
            x=part[x_col].to_numpy(), y=part["value"].to_numpy() * factor, mode="markers",
            name=label[:1].upper() + label[1:],
            marker={"color": colour, "symbol": symbol, "size": size, "line": {"width": 0.5, "color": "white"}},
            customdata=_hover_data(part, risk_adjusted=risk_adjusted, coverage=coverage[0]),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<extra></extra>"))
    if highlight:
        part = rows.filter(pl.col("unit_code").is_in(list(highlight)), pl.col("value").is_not_null())
        if part.height:
            fig.add_trace(go.Scatter(
                x=part[x_col].to_numpy(), y=part["value"].to_numpy() * factor, mode="markers+text",
                name=label_highlight,
                text=[n if c == highlight[0] else "" for c, n in zip(part["unit_code"], part["unit_name"], strict=True)],
                textposition="top center", textfont={"size": 11, "color": PALETTE["highlight"]},
                marker={"color": "rgba(0,0,0,0)", "size": 18, "line": {"width": 2.5, "color": PALETTE["highlight"]}},
                hoverinfo="skip"))
    fig.update_layout(_layout(title, x_title, y_title))
    if x_col == "denominator" and rows.height and rows["denominator"].max() and rows["denominator"].max() > 2000:
        fig.update_xaxes(type="log")
    return fig


def _hover_data(part: pl.DataFrame, *, risk_adjusted: bool, coverage: float) -> np.ndarray:
    """[unit name, hover text] per point: the value, counts and the unit's own expected range, all
    on the plotted scale (``views.hover_text``)."""
    texts = [views.hover_text(views.on_scale(r, risk_adjusted=risk_adjusted, coverage=coverage))
             for r in part.iter_rows(named=True)]
    return np.column_stack([part["unit_name"].to_numpy(), np.array(texts, dtype=object)])


def _layout(title: str, x_title: str, y_title: str) -> dict:
    return {
        "title": {"text": title, "font": {"size": 16}},
        "xaxis": {"title": x_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "yaxis": {"title": y_title, "gridcolor": "#E8EDEE", "zeroline": False},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"family": "Arial, sans-serif", "color": "#231F20"},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        "margin": {"l": 60, "r": 20, "t": 60, "b": 40}, "height": 520,
    }


def caterpillar_figure(rows: pl.DataFrame, *, title: str, better: str, risk_adjusted: bool,
                       multiplier: float, highlight: Sequence[str] = (), coverage: float = 0.95) -> go.Figure:
    """Units ranked by value, each with its own alert-level interval (``coverage``) around the target.

    The bar is the range a unit of its size would be expected to fall in; a dot outside its bar
    is flagged. Ranking is for finding units, not a league table.
    """
    scale = float(rows["rate_scale"][0]) if risk_adjusted and rows.height else 1.0
    factor = scale * multiplier
    data = rows.filter(pl.col("value").is_not_null()).sort("value")
    fig = go.Figure()
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
    # every label shown (Plotly thins crowded category labels, which misaligns rows and labels)
    layout["yaxis"] = {"automargin": True, "tickfont": {"size": 9}, "categoryorder": "array",
                       "categoryarray": y, "tickmode": "array", "tickvals": y, "ticktext": y}
    fig.update_layout(layout)
    for name in highlight:
        match = data.filter(pl.col("unit_code") == name)
        if match.height:
            fig.add_annotation(x=float(match["value"][0]) * factor, y=match["unit_name"][0], text="◀ selected",
                               showarrow=False, xanchor="left", font={"color": PALETTE["highlight"]})
    return fig


def tartan_figure(grid: pl.DataFrame, *, title: str) -> go.Figure:
    """Units x indicators coloured by direction-aware status ("tartan rug").

    ``grid`` has columns unit_name, indicator_title, status, better, status_label.
    """
    categories = ["worse_alarm", "worse_alert", "within", "better_alert", "better_alarm",
                  "higher_alarm", "higher_alert", "lower_alert", "lower_alarm", "not_assessed"]
    code = {c: i for i, c in enumerate(categories)}

    def category(status: str, better: str) -> str:
        if status in {"within", "not_assessed"}:
            return status
        return f"{_direction(status, better)}_{status.split('_')[0]}"

    units = grid["unit_name"].unique(maintain_order=True).to_list()
    inds = grid["indicator_title"].unique(maintain_order=True).to_list()
    z = np.full((len(units), len(inds)), np.nan)
    text = np.full((len(units), len(inds)), "", dtype=object)
    ui = {u: i for i, u in enumerate(units)}
    ii = {t: j for j, t in enumerate(inds)}
    for r in grid.iter_rows(named=True):
        cat = category(str(r["status"]), r["better"])
        z[ui[r["unit_name"]], ii[r["indicator_title"]]] = code[cat]
        text[ui[r["unit_name"]], ii[r["indicator_title"]]] = r["status_label"]
    n = len(categories)
    colorscale = []
    for i, c in enumerate(categories):
        colorscale += [[i / n, PALETTE[c]], [(i + 1) / n, PALETTE[c]]]
    fig = go.Figure(go.Heatmap(z=z, x=inds, y=units, zmin=0, zmax=n, colorscale=colorscale, showscale=False,
                               customdata=text, xgap=1, ygap=1,
                               hovertemplate="<b>%{y}</b><br>%{x}<br>%{customdata}<extra></extra>"))
    # arrows on flagged cells (high/low), so the rug reads without colour: one text trace
    flagged = [(r["indicator_title"], r["unit_name"], "▲" if str(r["status"]).endswith("high") else "▼")
               for r in grid.iter_rows(named=True) if str(r["status"]) not in {"within", "not_assessed"}]
    if flagged:
        xs, ys, marks = zip(*flagged, strict=True)
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), text=list(marks), mode="text", hoverinfo="skip",
                                 textfont={"size": 9, "color": "white"}, showlegend=False))
    layout = _layout(title, "", "")
    layout["height"] = max(420, 16 * len(units) + 220)
    layout["xaxis"] = {"tickangle": -40, "side": "top", "tickfont": {"size": 10}}
    layout["yaxis"] = {"autorange": "reversed", "tickfont": {"size": 9}, "automargin": True}
    layout["margin"] = {"l": 10, "r": 10, "t": 180, "b": 20}
    fig.update_layout(layout)
    return fig


def slice_figure(rows: pl.DataFrame, *, title: str,
                 limits: Mapping[str, Sequence[float]] | None = None) -> go.Figure:
    """One row per indicator: the unit's z-score against its alert and alarm bands ("a slice
    through each funnel"). ``rows`` needs indicator_id, indicator_title, z, status, better,
    status_label; ``limits`` gives each indicator's coverages (default 95% and 99.8%), so the bands
    are each indicator's own."""
    data = rows.filter(pl.col("z").is_not_null())
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
        colour, symbol, size = status_style(str(r["status"]), r["better"])
        fig.add_trace(go.Scatter(x=[max(min(r["z"], 6), -6)], y=[r["indicator_title"]], mode="markers",
                                 marker={"color": colour, "symbol": symbol, "size": size + 2},
                                 showlegend=False, customdata=[[r["status_label"], r["z"]]],
                                 hovertemplate="<b>%{y}</b><br>%{customdata[0]}<br>z = %{customdata[1]:.2f}<extra></extra>"))
    coverages = {tuple((limits or {}).get(r, default)) for r in data["indicator_id"]} if "indicator_id" in data.columns else {default}
    bands = (views.limits_phrase(next(iter(coverages))) if len(coverages) == 1 else
             "each indicator's alert and alarm limits")
    layout = _layout(title, f"Standardised difference from expected (z; bands: {bands})", "")
    layout["height"] = max(300, 26 * len(y) + 140)
    layout["xaxis"]["range"] = [-6.3, 6.3]
    layout["yaxis"] = {"automargin": True, "categoryorder": "array", "categoryarray": y[::-1]}
    fig.update_layout(layout)
    return fig
