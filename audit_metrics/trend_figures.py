"""Plotly figures for indicators over time: SPC chart, sparkline, CUSUM and VLAD. Never calls Streamlit.

Making Data Count colours: blue for improvement, orange for concern, purple for a special cause
that is neither better nor worse, grey for common cause (no red/amber/green). Every special-cause
point also differs in marker shape (▲ above / ▼ below), so the chart survives greyscale printing.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from audit_metrics.cusum import ArlEstimate, CusumChart
from audit_metrics.figures import plotly_text, title_margin, wrap_title
from audit_metrics.spc import VARIATION_WORDS, SpcChart

__all__ = ["MDC_COLOURS", "cusum_figure", "sparkline_figure", "spc_figure", "vlad_figure"]

MDC_COLOURS = {
    "special_cause_improvement": "#289DE0", "special_cause_concern": "#FAB428",
    "special_cause_neutral_high": "#361475", "special_cause_neutral_low": "#361475",
    "common_cause": "#7B7D7D", "line": "#A6A6A6", "limit": "#425563", "mean": "#231F20", "target": "#DE1B1B",
}
_SYMBOL = {"special_cause_improvement": "circle", "special_cause_concern": "circle",
           "special_cause_neutral_high": "triangle-up", "special_cause_neutral_low": "triangle-down",
           "common_cause": "circle"}


def _scale(multiplier: float) -> float:
    return 100.0 if multiplier == 100 else 1.0


def spc_figure(chart: SpcChart, *, title: str, y_title: str, multiplier: float = 1.0, height: int = 420) -> go.Figure:
    """The SPC chart: points coloured by Making Data Count point type, mean, process limits and
    (if set) the target; each rebased period has its own lines."""
    t = chart.table
    k = _scale(multiplier)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t["x"].to_list(), y=(t["y"] * k).to_list(), mode="lines",
                             line={"color": MDC_COLOURS["line"], "width": 1.5}, name="value", showlegend=False,
                             hoverinfo="skip"))
    for i, group in enumerate(t.partition_by("rebase_group", maintain_order=True)):
        x = group["x"].to_list()
        first = i == 0
        for column, name, style in (("mean", "Mean", {"color": MDC_COLOURS["mean"], "width": 1.5}),
                                    ("upper", "Process limits", {"color": MDC_COLOURS["limit"], "dash": "dash", "width": 1}),
                                    ("lower", "Process limits", {"color": MDC_COLOURS["limit"], "dash": "dash", "width": 1})):
            fig.add_trace(go.Scatter(x=x, y=(group[column] * k).to_list(), mode="lines", line=style, name=name,
                                     legendgroup=name, showlegend=first and column != "lower",
                                     line_shape="hvh" if chart.kind != "xmr" else "linear", hoverinfo="skip"))
    for kind, label in VARIATION_WORDS.items():
        pts = t.filter(pl.col("point_type") == kind)
        if pts.height == 0:
            continue
        fig.add_trace(go.Scatter(
            x=pts["x"].to_list(), y=(pts["y"] * k).to_list(), mode="markers", name=label[0].upper() + label[1:],
            marker={"color": MDC_COLOURS[kind], "size": 9 if kind == "common_cause" else 11, "symbol": _SYMBOL[kind],
                    "line": {"color": "white", "width": 1}},
            customdata=pts["special_cause_type"].to_list(),
            hovertemplate="%{x|%b %Y}: %{y:.3g}<br>%{customdata}<extra></extra>"))
    if chart.target is not None:
        fig.add_hline(y=chart.target * k, line={"color": MDC_COLOURS["target"], "dash": "dot"},
                      annotation_text="target", annotation_position="top left")
    fig.update_layout(title=wrap_title(title), height=height, margin={"l": 60, "r": 20, "t": title_margin(title), "b": 40},
                      yaxis_title=plotly_text(y_title), legend={"orientation": "h", "y": -0.15}, plot_bgcolor="white")
    fig.update_xaxes(showgrid=False, linecolor="#BBBBBB")
    fig.update_yaxes(gridcolor="#EEEEEE")
    return fig


def sparkline_figure(chart: SpcChart, *, multiplier: float = 1.0) -> go.Figure:
    """A small SPC chart (no axes) for the trust profile: line, mean, limits, coloured special causes."""
    t = chart.table
    k = _scale(multiplier)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t["x"].to_list(), y=(t["y"] * k).to_list(), mode="lines",
                             line={"color": MDC_COLOURS["line"], "width": 1}, hoverinfo="skip"))
    for column in ("mean", "upper", "lower"):
        fig.add_trace(go.Scatter(x=t["x"].to_list(), y=(t[column] * k).to_list(), mode="lines", hoverinfo="skip",
                                 line={"color": MDC_COLOURS["mean" if column == "mean" else "limit"], "width": 1,
                                       "dash": None if column == "mean" else "dot"}))
    special = t.filter(pl.col("special_cause_flag"))
    if special.height:
        fig.add_trace(go.Scatter(x=special["x"].to_list(), y=(special["y"] * k).to_list(), mode="markers",
                                 marker={"color": [MDC_COLOURS[p] for p in special["point_type"].to_list()], "size": 5},
                                 hovertemplate="%{x|%b %Y}: %{y:.3g}<extra></extra>"))
    fig.update_layout(height=110, width=260, showlegend=False, margin={"l": 2, "r": 2, "t": 2, "b": 2},
                      plot_bgcolor="white")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def cusum_figure(chart: CusumChart, *, title: str, arl_up: ArlEstimate | None = None,
                 arl_down: ArlEstimate | None = None) -> go.Figure:
    """Both risk-adjusted CUSUMs (deterioration above the axis, improvement below) with their
    decision limits ±h and signals."""
    t = chart.table
    x = t["x"].to_list()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=t["cusum_up"].to_list(), mode="lines", name=f"Deterioration (odds x {chart.odds_ratio_up:g})",
                             line={"color": MDC_COLOURS["special_cause_concern"], "width": 1.5}))
    fig.add_trace(go.Scatter(x=x, y=t["cusum_down"].to_list(), mode="lines",
                             name=f"Improvement (odds x {chart.odds_ratio_down:g})",
                             line={"color": MDC_COLOURS["special_cause_improvement"], "width": 1.5}))
    for column, sign, colour, arl in (("signal_up", 1, "special_cause_concern", arl_up),
                                      ("signal_down", -1, "special_cause_improvement", arl_down)):
        pts = t.filter(pl.col(column))
        if pts.height:
            fig.add_trace(go.Scatter(x=pts["x"].to_list(), y=(pts["cusum_up"] if sign > 0 else pts["cusum_down"]).to_list(),
                                     mode="markers", name="Signal", marker={"color": MDC_COLOURS[colour], "size": 11,
                                                                            "symbol": "x"}, showlegend=False))
        h = chart.h_up if sign > 0 else chart.h_down
        text = f"h = {sign * h:g}" + (f" (in-control ARL about {arl.arl:,.0f} patients)" if arl else "")
        fig.add_hline(y=sign * h, line={"color": MDC_COLOURS[colour], "dash": "dash"}, annotation_text=text,
                      annotation_position="top left" if sign > 0 else "bottom left")
    fig.update_layout(title=wrap_title(title), height=380, yaxis_title="CUSUM (log-likelihood ratio)", plot_bgcolor="white",
                      margin={"l": 60, "r": 20, "t": title_margin(title), "b": 40}, legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(gridcolor="#EEEEEE", zeroline=True, zerolinecolor="#999999")
    if t.height:  # room beyond each decision limit for its label: autoranged, the lower label (below -h) sat on the
        # dates of the x axis when the improvement CUSUM reached -h (the sweep of defect 10, at 390 and 1280 px)
        low = min(float(t["cusum_down"].min()), -chart.h_down)
        high = max(float(t["cusum_up"].max()), chart.h_up)
        pad = CUSUM_LABEL_ROOM * (high - low)
        fig.update_yaxes(range=[low - pad, high + pad])
    return fig


CUSUM_LABEL_ROOM = 0.15  # of the CUSUMs' span, beyond each decision limit (a 14 px label in a ~230 px plot)


def vlad_figure(chart: CusumChart, *, title: str) -> go.Figure:
    """VLAD: cumulative expected minus observed events, patient by patient."""
    t = chart.table
    fig = go.Figure(go.Scatter(x=t["x"].to_list(), y=t["vlad"].to_list(), mode="lines", name="Expected − observed",
                               line={"color": MDC_COLOURS["mean"], "width": 1.5},
                               hovertemplate="%{x|%d %b %Y}: %{y:.1f}<extra></extra>"))
    fig.add_hline(y=0, line={"color": "#999999"})
    fig.update_layout(title=wrap_title(title), height=320, yaxis_title="Cumulative expected − observed events",
                      plot_bgcolor="white", margin={"l": 60, "r": 20, "t": title_margin(title), "b": 40})
    fig.update_yaxes(gridcolor="#EEEEEE")
    return fig
