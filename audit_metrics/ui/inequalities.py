"""Inequalities: the national gradient, the funnel of gaps, and one trust's gradient beside the national one."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from audit_metrics import export, figures, views
from audit_metrics.catalogue import BreakdownSpec, LoadedCatalogue, is_aggregate
from audit_metrics.inequality import (
    NOT_RECORDED,
    InequalityResult,
    breakdowns_for,
    gap_sentence,
    indicator_inequalities,
    inequalities_for_sharing,
)
from audit_metrics.io import LoadedDataset, Units, load_all
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import chart, dataset_columns, qp_get, qp_index, set_qp
from audit_metrics.ui.text import md

# the gap's status next to the unit: most units' numbers are blanked (a group with a small count), and the
# words saying so sat past the right edge of a 1440 px window, beyond a run of empty cells
GAP_COLUMNS = {
    "unit_name": "Unit", "patients": "Patients", "status_label": "Gap against the national gap",
    "sii": "Slope index (SII: least minus most disadvantaged)", "sii_lower": "SII lower 95%",
    "sii_upper": "SII upper 95%", "rii": "Relative index (RII)", "gap": "Most minus least disadvantaged",
    "not_assessed_reason": "Not assessed because",
}
GROUP_COLUMNS = {
    "group": "Group", "observed": "Events", "denominator": "Patients", "expected": "Expected events",
    "value": "Value",
    "lower_ci": "Lower 95%", "upper_ci": "Upper 95%", "national_group_value": "National value for the group",
    "status_label": "Against the national value for the group",
}
UNIT_WIDTH = 260  # px: most trust names in full
COUNT_TEXT_COLUMNS = ("observed", "denominator")  # export.suppress's text: the count or the symbol

# The tables keep numbers as numbers (a click on a header sorts 9.5 before 10.2), drawn at the table's precision
# and right-aligned; a blanked (suppressed) or missing number is an empty cell (st.dataframe placeholder="",
# not Streamlit's faded "None") (#12 polish)
GAP_DECIMALS = {"sii": 1, "sii_lower": 1, "sii_upper": 1, "rii": 2, "gap": 1}
GROUP_DECIMALS = {"expected": 1, "value": 1, "lower_ci": 1, "upper_ci": 1, "national_group_value": 1}
# on the percentage scale (multiplier 100) the values are in % and the differences in percentage points, as the
# gradient chart's axis and the "In short" sentence say
PERCENT_COLUMNS = ("value", "lower_ci", "upper_ci", "national_group_value")
POINTS_COLUMNS = ("sii", "sii_lower", "sii_upper", "gap")


def labels_for(labels: dict[str, str], multiplier: float) -> dict[str, str]:
    """``labels`` with the unit of the percentage scale: "(%)" on values, "(points)" on differences."""
    if multiplier != 100:
        return labels
    def unit(label: str, word: str) -> str:  # "Slope index (SII: ..., points)", not "(SII: ...) (points)"
        return f"{label[:-1]}, {word})" if label.endswith(")") else f"{label} ({word})"

    return {c: unit(label, "%") if c in PERCENT_COLUMNS else unit(label, "points") if c in POINTS_COLUMNS else label
            for c, label in labels.items()}


def _finite(column: str) -> pl.Expr:
    """A number column as Float64 with NaN and infinite values missing (an empty cell, not "NaN")."""
    x = pl.col(column).cast(pl.Float64)
    return pl.when(x.is_finite()).then(x).otherwise(None).alias(column)


def _whole(counts: pl.Series) -> bool:
    """Every finite count a whole number (a half count comes from an aggregate table)."""
    x = counts.cast(pl.Float64)
    x = x.filter(x.is_finite())
    return bool((x == x.round(0)).all())


def for_screen(frame: pl.DataFrame, decimals: dict[str, int], labels: dict[str, str]) -> tuple[
        pl.DataFrame, dict[str, object]]:
    """The columns of ``labels`` that ``frame`` has and their column configuration: numbers stay numbers at
    ``decimals`` places (missing ones empty through the table's ``placeholder=""``), whole counts as integers.

    The group counts come as ``export.suppress`` made them, text: the count, or the symbol for a count in the
    suppressed range. They stay text on purpose: the symbol is what the view's caption, the downloads and every
    other view show for a hidden count, where a blank cell would read as "no patients" or "not recorded"; a group
    table has only a handful of rows, so sorting those two columns as text costs little."""
    shown = frame.select([c for c in labels if c in frame.columns])
    shown = shown.with_columns(*[_finite(c) for c in decimals if c in shown.columns],
                               pl.col(pl.Enum, pl.Categorical).cast(pl.String))
    counts = [c for c, t in shown.schema.items() if t.is_numeric() and c not in decimals]
    whole = [c for c in counts if _whole(shown[c])]
    shown = shown.with_columns(*[_finite(c).cast(pl.Int64) for c in whole],
                               *[_finite(c) for c in counts if c not in whole],
                               pl.col(pl.String).fill_null(""))
    config: dict[str, object] = {}
    for c, label in labels.items():
        if c not in shown.columns:
            continue
        if c in decimals:
            config[c] = st.column_config.NumberColumn(label, format=f"%.{decimals[c]}f")
        elif c in whole:
            config[c] = st.column_config.NumberColumn(label, format="%d")
        elif c in counts:  # a half count (aggregate tables) as it is
            config[c] = st.column_config.NumberColumn(label)
        elif c in COUNT_TEXT_COLUMNS:
            config[c] = st.column_config.TextColumn(label, alignment="right")
        elif c == "group":  # sized to its longest name: the grid cut the last row's "Not recorded" to "Not recor"
            longest = max([len(label), *(len(g) for g in shown[c].to_list())])
            config[c] = st.column_config.TextColumn(label, width=min(320, 8 * longest + 24))
        elif c == "unit_name":  # left to size itself, the names took all of a 390 px screen and pushed the numbers
            # off a 1440 px one; a long name is cut (in full on hover). Not pinned: the grid draws a pinned column's
            # text in its faded index grey
            config[c] = st.column_config.TextColumn(label, width=UNIT_WIDTH)
        else:
            config[c] = st.column_config.TextColumn(label)
    return shown, config


@st.cache_resource(show_spinner="Reading the extracts for the breakdowns...", max_entries=4)
def _data(run_key: str, _loaded: LoadedCatalogue, overrides: tuple[tuple[str, str], ...]) -> tuple[
        Units, dict[str, LoadedDataset]]:
    del run_key
    return load_all(_loaded, data=dict(overrides))


@st.cache_resource(show_spinner="Computing the breakdown...", max_entries=256)
def inequality(run_key: str, indicator_id: str, column: str, _loaded: LoadedCatalogue,
               _breakdown: BreakdownSpec) -> InequalityResult:
    """One indicator by one breakdown, shared by every session for this run."""
    overrides = tuple(sorted((st.session_state.get("data_overrides") or {}).items()))
    units, datasets = _data(run_key, _loaded, overrides)
    cat = _loaded.catalogue
    spec = _loaded.indicator(indicator_id)
    ds_spec = cat.datasets[spec.dataset]
    return indicator_inequalities(spec, _loaded.options(spec), datasets[spec.dataset], units, _breakdown,
                                  unit_column=ds_spec.unit_column or cat.units.code,
                                  aggregate=is_aggregate(spec, cat.datasets))


def available(run: AuditRun, loaded: LoadedCatalogue) -> dict[str, list[BreakdownSpec]]:
    """Indicators with breakdowns (proportions and risk-adjusted binary outcomes with the column)."""
    cat = loaded.catalogue
    out: dict[str, list[BreakdownSpec]] = {}
    for spec in cat.indicators:
        if spec.id not in run.results:
            continue
        if not (spec.statistic == "proportion" or (spec.statistic == "ratio" and spec.risk_adjustment)):
            continue
        columns = _columns(loaded, spec.dataset)
        wanted = breakdowns_for(spec, cat.breakdowns, columns)
        if wanted:
            out[spec.id] = wanted
    return out


def _columns(loaded: LoadedCatalogue, dataset: str) -> list[str]:
    overrides = st.session_state.get("data_overrides") or {}
    try:  # read once per file version (a trust profile asked for every indicator's, re-reading CSVs each click)
        return list(dataset_columns(loaded.dataset_path(dataset, overrides), loaded.catalogue.datasets[dataset]))
    except Exception:  # an unreadable extract is reported by the main run; nothing to break down
        return []


GRADIENT_TITLE_WIDTH = 34  # characters a title line


def past_hundred(rows: pl.DataFrame, *, multiplier: float, label: str) -> str | None:
    """Why a risk-adjusted percentage passes 100%, with the groups that do (value or upper limit), or None.

    A risk-adjusted value is observed / expected events x the national rate (indirect standardisation). Where a
    group's patients were expected to do less well than average and nearly all of them had the outcome, it and
    its interval pass 100%: more than expected, not more than every patient. ``rows`` are the shown group rows
    (suppressed ones have no value); only the percentage scale of a risk-adjusted indicator has a 100% to pass.
    ``label`` names the breakdown ("IMD quintile": "IMD quintile 2, this unit: ...").
    """
    if multiplier != 100 or rows.height == 0 or not bool(rows["risk_adjusted"].any()):
        return None
    value, upper = pl.col("value").cast(pl.Float64) * multiplier, pl.col("upper_ci").cast(pl.Float64) * multiplier
    over = rows.filter(value.is_finite() & ((value > 100) | (upper > 100))).sort("unit_code", "group_order")
    if over.height == 0:
        return None
    parts = []
    for r in over.iter_rows(named=True):
        where = "national" if r["unit_code"] == "national" else "this unit"
        v, hi = float(r["value"]) * multiplier, float(r["upper_ci"]) * multiplier
        said = f"{v:.1f}%" if v > 100 else f"upper 95% limit {hi:.1f}%"
        parts.append(f"{label} {r['group']}, {where}: {said}, {r['observed']} of {r['denominator']} patients against "
                     f"{float(r['expected']):.1f} expected")
    return ("Above 100%: " + "; ".join(parts) + ". A risk-adjusted value is observed / expected events times the "
            "national rate, so where a group's patients were expected to do less well than average and nearly all "
            "of them had the outcome, it (or its interval) passes 100%: read it as more than expected for those "
            "patients, not as more than all of them.")


def gradient_figure(groups: pl.DataFrame, *, unit: str | None, multiplier: float, title: str,
                    label: str) -> go.Figure:
    """Value by group with 95% intervals: national, and the chosen unit beside it."""
    fig = go.Figure()
    shown = groups.filter(pl.col("group") != NOT_RECORDED).sort("group_order")
    series = [("national", "National", "#444444")]
    if unit is not None:
        series.append((unit, "This unit", "#d95f02"))
    for code, name, colour in series:
        rows = shown.filter(pl.col("unit_code") == code)
        if rows.height == 0:
            continue
        value = rows["value"].cast(pl.Float64) * multiplier
        lo = rows["lower_ci"].cast(pl.Float64) * multiplier
        hi = rows["upper_ci"].cast(pl.Float64) * multiplier
        fig.add_trace(go.Scatter(
            x=[figures.plotly_text(g) for g in rows["group"].to_list()], y=value.to_list(), mode="lines+markers", name=name,
            line={"color": colour}, marker={"size": 9},
            error_y={"type": "data", "symmetric": False, "array": (hi - value).to_list(),
                     "arrayminus": (value - lo).to_list()},
            customdata=np.column_stack([rows["observed"].cast(pl.String).to_list(),
                                        rows["denominator"].cast(pl.String).to_list()]),
            hovertemplate="%{x}: %{y:.1f}<br>%{customdata[0]} of %{customdata[1]} patients<extra>" + name
                          + "</extra>"))
    if multiplier == 100 and bool((shown["upper_ci"].cast(pl.Float64) > 1).any()):
        # risk-adjusted values can pass 100% (``past_hundred``): the line shows where "every patient" is
        fig.add_hline(y=100, line={"color": "#888888", "dash": "dot", "width": 1}, annotation_text="100%",
                      annotation_position="bottom left", annotation_font={"size": 11, "color": "#555555"})
    # the legend under the axis title (at y=-0.2 it sat on the title below 500 px); the title wrapped for the half
    # width it is drawn in (about 270 px at a 1024 px window: at the full width's wrap it lost both ends there)
    fig.update_layout(title=figures.wrap_title(title, GRADIENT_TITLE_WIDTH), xaxis_title=figures.plotly_text(label),
                      yaxis_title="Value (%)" if multiplier == 100 else "Value",
                      height=400, margin={"t": figures.title_margin(title, GRADIENT_TITLE_WIDTH) - 10, "b": 90},
                      legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0})
    # group names turned on a narrow chart: the axis title placed below them (it sat on them at 1024 px)
    fig.update_xaxes(type="category", automargin=True, title_standoff=8)
    return fig


def gap_funnel_figure(gaps: pl.DataFrame, *, multiplier: float, highlight: str | None, phi: float, tau2: float,
                      coverage: tuple[float, ...]) -> go.Figure:
    """Each unit's disadvantage gap against its precision (1/SE), with limits around the national gap."""
    fig = go.Figure()
    rows = gaps.filter(pl.col("level") != "national", pl.col("disadvantage_gap").is_not_null(),
                       pl.col("gap_se").is_not_null())
    national = gaps.filter(pl.col("level") == "national")["disadvantage_gap"]
    d0 = float(national[0]) if national.len() and national[0] is not None else 0.0
    if rows.height:
        x = (1 / rows["gap_se"]).to_numpy()
        grid = np.geomspace(max(x.min() * 0.8, 1e-3), x.max() * 1.1, 120)
        from scipy import special

        for c, dash in zip(coverage, ("dash", "dot"), strict=False):
            z = float(special.ndtri(1 - (1 - c) / 2))
            spread = np.sqrt(phi / grid**2 + tau2)
            for sign in (-1, 1):
                fig.add_trace(go.Scatter(x=grid, y=(d0 + sign * z * spread) * multiplier, mode="lines",
                                         line={"color": "#888", "dash": dash}, hoverinfo="skip",
                                         name=f"{c * 100:g}% limits", showlegend=sign == 1))
        styles = [figures.status_style(str(s), "lower") for s in rows["status"].cast(pl.String).to_list()]
        fig.add_trace(go.Scatter(
            x=x, y=(rows["disadvantage_gap"] * multiplier).to_list(), mode="markers", name="Units",
            marker={"color": [s[0] for s in styles], "symbol": [s[1] for s in styles],
                    "size": [s[2] for s in styles], "line": {"width": 0.5, "color": "#333"}},
            text=[figures.plotly_text(n) for n in rows["unit_name"].to_list()],
            customdata=rows["status_label"].to_list(),
            hovertemplate="%{text}<br>gap %{y:.1f}<br>%{customdata}<extra></extra>"))
        if highlight is not None:
            hi = rows.filter(pl.col("unit_code") == highlight)
            if hi.height:
                fig.add_trace(go.Scatter(x=(1 / hi["gap_se"]).to_list(),
                                         y=(hi["disadvantage_gap"] * multiplier).to_list(), mode="markers+text",
                                         marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"width": 2,
                                                                                                 "color": "#000"}},
                                         text=[figures.plotly_text(n) for n in hi["unit_name"].to_list()], textposition="top center",
                                         name="Selected", hoverinfo="skip"))
    fig.add_hline(y=d0 * multiplier, line={"color": "#444"}, annotation_text="national gap")
    title = "Funnel of gaps: each unit's gap against the national gap"
    fig.update_layout(title=figures.wrap_title(title), height=420 + figures.title_margin(title) - 60,
                      xaxis_title="Precision of the gap (1 / standard error)",
                      yaxis_title=("Disadvantage gap from the slope index (points)" if multiplier == 100
                                   else "Disadvantage gap (slope index)"),
                      margin={"t": figures.title_margin(title) - 10, "b": 110},
                      legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0})
    fig.update_xaxes(automargin=True)
    return fig


def view_inequalities(run: AuditRun, table: pl.DataFrame, run_key: str, loaded: LoadedCatalogue) -> None:
    del table
    st.header("Inequalities: who is left behind")
    options = available(run, loaded)
    if not options:
        st.info("No indicator has breakdowns. Add `breakdowns: [imd_quintile, sex, ...]` to the catalogue "
                "(README \"Inequalities\").")
        return
    ids = list(options)
    if "ineq_indicator" not in st.session_state:
        st.session_state["ineq_indicator"] = ids[qp_index("indicator", ids, "bowel_emergency_dx")]
    c1, c2, c3 = st.columns([3, 2, 3])
    indicator_id = c1.selectbox("Indicator", ids, key="ineq_indicator",
                                format_func=lambda i: f"{run.results[i].spec.tumour_site}: {run.results[i].spec.title}")
    breakdowns = {b.column: b for b in options[indicator_id]}
    columns = list(breakdowns)
    if st.session_state.get("ineq_breakdown") not in columns:
        st.session_state["ineq_breakdown"] = columns[qp_index("breakdown", columns)]
    column = c2.selectbox("Breakdown", columns, key="ineq_breakdown",
                          format_func=lambda c: breakdowns[c].label or c.replace("_", " "))
    set_qp(indicator=indicator_id, breakdown=column)
    spec = run.results[indicator_id].spec
    result = inequality(run_key, indicator_id, column, loaded, breakdowns[column])
    rule = loaded.catalogue.defaults.suppression
    groups, gaps = inequalities_for_sharing(result.groups, result.gaps, rule)
    label = breakdowns[column].label or column.replace("_", " ")
    m = spec.multiplier
    levels = {"Trust": "trust"}
    family = views.group_level(run.units.groups if run.units else ())
    if family is not None:  # units without a grouping compare trusts only
        levels[views.level_label(family)] = family
    if st.session_state.get("ineq_level") not in levels:
        st.session_state["ineq_level"] = next((k for k, v in levels.items() if v == qp_get("level")), "Trust")
    level_name = c3.radio("Compare", list(levels), horizontal=True, key="ineq_level", format_func=md)
    level = levels[level_name]
    units = groups.filter(pl.col("level") == level).select("unit_code", "unit_name").unique().sort("unit_name")
    codes = units["unit_code"].to_list()
    names = dict(units.iter_rows())
    if st.session_state.get("ineq_unit") not in codes:
        st.session_state["ineq_unit"] = codes[qp_index("trust" if level == "trust" else "alliance", codes)] if codes else None
    unit = st.selectbox(md(level_name), codes, key="ineq_unit", format_func=lambda c: f"{names[c]} ({c})")
    set_qp(level=level, **{"trust" if level == "trust" else "alliance": unit})
    for note in result.notes:
        st.caption(md(note))
    if spec.risk_adjustment is not None:
        st.caption("Risk-adjusted: each group's value is its observed / expected events from the indicator's "
                   "case-mix model, times the national rate.")
    above = past_hundred(groups.filter(pl.col("unit_code").is_in(["national", unit]), pl.col("group") != NOT_RECORDED),
                         multiplier=m, label=label)
    if above:
        st.caption(md(above))
    st.caption(f"Counts of {rule.min_count}-{rule.max_count} are shown as '{md(rule.symbol)}', with their values "
               "blanked; a unit's gap is not shown where one of its groups is.")

    g1, g2 = st.columns(2)
    with g1:
        chart(gradient_figure(groups.filter(pl.col("unit_code").is_in(["national", unit])), unit=unit,
                              multiplier=m, title=f"By {label}: national and this unit", label=label), "ineq_gradient")
    if result.ordered and gaps.height:
        level_gaps = gaps.filter(pl.col("level").is_in([level, "national"]))
        shown = level_gaps.filter(~pl.col("suppressed"))
        hidden = level_gaps.filter(pl.col("suppressed")).height
        od = level_gaps.filter(pl.col("level") == level)
        phi, tau2 = 1.0, 0.0
        if od.height and bool(od["overdispersion_applied"][0]):  # the same widening as the unit scores
            if run.results[indicator_id].options.overdispersion == "additive":
                tau2 = float(od["tau2"][0])
            else:
                phi = float(od["phi"][0])
        with g2:
            chart(gap_funnel_figure(shown, multiplier=m, highlight=unit, phi=phi, tau2=tau2,
                                    coverage=run.results[indicator_id].options.limits), "ineq_funnel")
            if hidden:
                st.caption(f"{hidden} unit(s) not shown: one of their groups has a count of "
                           f"{rule.min_count}-{rule.max_count}.")
        row = gaps.filter(pl.col("level") == level, pl.col("unit_code") == unit)
        national = gaps.filter(pl.col("level") == "national")
        if row.height and national.height:
            r = row.row(0, named=True)
            if r["suppressed"]:
                st.markdown(f"**{md(names[unit])}**: the gap is not shown because one of its groups has a small "
                            "count.")
            else:
                st.markdown("**In short:** " + md(gap_sentence(r, national.row(0, named=True), title=spec.title,
                                                                multiplier=m)))
        st.caption("The gap measures: the slope index of inequality (SII, PHE method: the fitted difference "
                   "between the least and the most disadvantaged ends of the population, with Monte Carlo 95% "
                   "intervals), the relative index (RII, their ratio) and the simple gap between the most and "
                   "least disadvantaged groups. The funnel compares each unit's SII-based gap with the national "
                   "one, with the same alert (95%) and alarm (99.8%) rules and overdispersion handling as the "
                   "main funnel.")
        st.subheader(f"Gaps by {md(level_name.lower())}")
        view, config = for_screen(level_gaps.with_columns(*[pl.col(c) * m for c in POINTS_COLUMNS]), GAP_DECIMALS,
                                  labels_for(GAP_COLUMNS, m))
        st.dataframe(view, hide_index=True, placeholder="", column_config=config, key="ineq_gaps_table")
    else:
        with g2:
            st.markdown(f"**{md(label.capitalize())}** has no order, so each group is compared with the national "
                        "value for the same group (same limits and overdispersion handling as the main funnel).")
            flagged = groups.filter(pl.col("level") == level, pl.col("status").is_in(
                ["alert_low", "alert_high", "alarm_low", "alarm_high"]))
            st.metric("Unit-group results outside the 95% limits", flagged.height)
    st.subheader(f"{md(names.get(unit, unit))}: by {md(label)}")
    mine = groups.filter(pl.col("unit_code") == unit).sort("group_order")
    mine = mine.with_columns(*[pl.col(c).cast(pl.Float64) * m for c in ("value", "lower_ci", "upper_ci",
                                                                        "national_group_value")])
    view, config = for_screen(mine, GROUP_DECIMALS, labels_for(GROUP_COLUMNS, m))
    st.dataframe(view, hide_index=True, placeholder="", column_config=config, key="ineq_groups_table")
    now, period = datetime.now(UTC), run.results[indicator_id].pooled_period
    d1, d2 = st.columns(2)
    d1.download_button("Download groups (CSV)", lambda: export.to_csv_bytes(groups),
                       file_name=export.download_name("inequalities", indicator_id, column, "groups", period, on=now,
                                                      suffix="csv"), mime="text/csv", key="ineq_groups_csv")
    if gaps.height:
        d2.download_button("Download gaps (CSV)", lambda: export.to_csv_bytes(gaps),
                           file_name=export.download_name("inequalities", indicator_id, column, "gaps", period,
                                                          on=now, suffix="csv"), mime="text/csv", key="ineq_gaps_csv")


@st.cache_resource(show_spinner="Computing deprivation gaps for every indicator...", max_entries=4)
def ordered_gaps(run_key: str, _run: AuditRun, _loaded: LoadedCatalogue) -> pl.DataFrame:
    """Each indicator's gaps for its first ordered breakdown (IMD quintile on the sample), suppressed as
    everywhere: the rows behind the one-line summaries in the trust profile and alliance view."""
    parts = []
    rule = _loaded.catalogue.defaults.suppression
    for indicator_id, wanted in available(_run, _loaded).items():
        for b in wanted:
            result = inequality(run_key, indicator_id, b.column, _loaded, b)
            if result.ordered and result.gaps.height:
                _, gaps = inequalities_for_sharing(result.groups, result.gaps, rule)
                parts.append(gaps)
                break
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def gap_line(gaps: pl.DataFrame, indicator_id: str, level: str, code: str, *, title: str,
             multiplier: float) -> str | None:
    """One line for a unit and indicator ("Deprivation gap: ... wider than expected (alert)"), or None."""
    if gaps.height == 0:
        return None
    rows = gaps.filter(pl.col("indicator_id") == indicator_id)
    mine = rows.filter(pl.col("level") == level, pl.col("unit_code") == code)
    national = rows.filter(pl.col("level") == "national")
    if mine.height == 0 or national.height == 0:
        return None
    r = mine.row(0, named=True)
    label = r.get("breakdown_label") or r.get("breakdown")
    if r.get("suppressed"):
        return f"{label} gap not shown (a group has a small count)."
    return gap_sentence(r, national.row(0, named=True), title=title, multiplier=multiplier)


def indicator_gap_line(run_key: str, run: AuditRun, loaded: LoadedCatalogue, indicator_id: str, level: str,
                       code: str) -> str | None:
    """The one-line gap summary for one indicator only (the alliance view shows one indicator at a time)."""
    for b in available(run, loaded).get(indicator_id, []):
        result = inequality(run_key, indicator_id, b.column, loaded, b)
        if result.ordered and result.gaps.height:
            _, gaps = inequalities_for_sharing(result.groups, result.gaps, loaded.catalogue.defaults.suppression)
            spec = run.results[indicator_id].spec
            return gap_line(gaps, indicator_id, level, code, title=spec.title, multiplier=spec.multiplier)
    return None
