"""Indicator: one indicator's funnel or caterpillar, method panel and table."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import streamlit as st

from audit_metrics import export, figures, narrative, sharing, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.outliers import coverage_label
from audit_metrics.periods import time_order
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import (
    as_text,
    chart,
    display_table,
    levels,
    qp_index,
    qp_value,
    set_qp,
    trust_label,
)
from audit_metrics.ui.text import md
from audit_metrics.ui.trust import result_for

# the funnel's x axis (figures.axis_titles) in a sentence: "plotted against its number of patients"
X_WORDS = {"Patients in the cohort": "number of patients", "Expected events": "number of expected events",
           "Person-time": "person-time", "Comparison count": "comparison count"}


def _method_panel(run: AuditRun, indicator: str, level: str, period: str) -> None:
    result = run.results[indicator]
    od = result.overdispersion.get((level, period))
    opts = result.options
    with st.expander("How this was calculated (method)", expanded=False):
        limits_used = result.table.filter(pl.col("level") == level)["method"][0].split(";")[0]
        st.markdown(f"- **Limits:** {limits_used}.")
        inner, outer = (f"{coverage_label(c)}%" for c in (opts.limits[0], opts.limits[-1]))
        if len(opts.limits) == 1:  # one limit: named by its coverage, no alert/alarm levels
            st.markdown(f"- **Flagged:** {'worse than the standard by more than' if result.spec.worse_side else 'outside'}"
                        f" the {inner} limits{' allow' if result.spec.worse_side else ''}, the indicator's only "
                        f"limits ({'one-sided: only the worse side is flagged' if result.spec.worse_side else 'two-sided'}).")
        elif result.spec.worse_side:
            st.markdown(f"- **Alert / alarm:** worse than the standard by more than the {inner} / "
                        f"{outer} limits allow (one-sided: only the worse side is flagged; HQIP "
                        "convention: about 2 and 3 standard deviations from the standard).")
        else:
            st.markdown(f"- **Alert / alarm:** outside the {inner} / "
                        f"{outer} limits (two-sided; HQIP convention: about 2 and 3 standard "
                        "deviations).")
        st.markdown(f"- **Overdispersion:** {narrative.overdispersion_sentence(od)}")
        spec = result.spec
        size = (f"fewer than {opts.min_denominator:g} observed and fewer than {opts.min_denominator:g} expected events"
                if spec.statistic == "ratio" and spec.denominator is None and spec.risk_adjustment is None
                else f"fewer than {opts.min_denominator:g} patients")  # an O/E table has no patient counts
        st.markdown(f"- **Minimum size:** units with {size} are shown but not assessed.")
        at_level = result.table.filter(pl.col("level") == level, pl.col("period") == period)
        assessed = int((at_level["status"].cast(pl.String) != "not_assessed").sum())
        sides = 0.5 if result.spec.worse_side else 1.0
        st.markdown(f"- **Multiple comparisons:** with {assessed} units assessed, about "
                    f"{assessed * (1 - opts.limits[0]) * sides:.1f} would be flagged at the "
                    f"{coverage_label(opts.limits[0])}% limits by chance alone"
                    + (" (alerts and alarms together)" if len(opts.limits) > 1 else "")
                    + (f" and {assessed * (1 - opts.limits[-1]) * sides:.1f} at {coverage_label(opts.limits[-1])}%"
                       if len(opts.limits) > 1 else "")
                    + ". The table's q-value is the Benjamini-Hochberg false-discovery rate.")
        model = result.risk_model
        if model is not None:
            st.markdown(f"- **Case-mix model:** logistic regression on {', '.join(md(c.name) for c in result.spec.risk_adjustment.covariates)} "
                        f"(missing values: {model.missing}); {model.n:,} patients, {model.events:,.0f} events; "
                        f"c-statistic {model.c_statistic:.3f}; Hosmer-Lemeshow p = {model.hosmer_lemeshow_p:.3g}; "
                        f"{'converged' if model.converged else 'did NOT converge'}.")
            cal = model.calibration.with_columns(pl.col("mean_predicted", "observed_rate").round(4),
                                                 pl.col("expected").round(1))
            st.markdown("Calibration: observed vs expected by tenth of predicted risk.")
            st.dataframe(cal, hide_index=True, placeholder="", key=f"cal_{indicator}")
            st.markdown("Odds ratios with 95% confidence intervals:")
            st.dataframe(model.coefficients.select("term", pl.col("odds_ratio", "ci_lower", "ci_upper").round(3),
                                                   pl.col("p_value").round(4)), hide_index=True, placeholder="",
                         key=f"coef_{indicator}")


def table_columns(*, risk_adjusted: bool, level: str = "Trust", percent: bool = True,
                  limits: Sequence[float] = (0.95, 0.998)) -> dict[str, str]:
    """Plain-English headings for the results table (the data keep the vocabulary's names), the ranges named
    by the indicator's own ``limits`` (the first is the expected range; the second, if any, the alarm limit)."""
    unit = " (%)" if percent else ""
    rate = "Risk-adjusted rate" if risk_adjusted else "Value"
    inner = f"{coverage_label(limits[0])}%"
    outer = f"{coverage_label(limits[1])}%" if len(limits) > 1 else ""
    return {
        "status_label": "Result", "unit_code": "Code", "unit_name": level, "parent_code": "Part of",
        "observed": "Events", "denominator": "Patients", "expected": "Expected events",
        "value": "Observed / expected" if risk_adjusted else f"Value{unit}",
        "adjusted_value": f"Risk-adjusted rate{unit}",
        "lower_alert": (f"Expected range from ({inner}){unit}" if not risk_adjusted
                        else f"{rate} range from ({inner}){unit}"),
        "upper_alert": (f"Expected range to ({inner}){unit}" if not risk_adjusted
                        else f"{rate} range to ({inner}){unit}"),
        "lower_alarm": f"Alarm limit, low ({outer}){unit}", "upper_alarm": f"Alarm limit, high ({outer}){unit}",
        "z": "Difference (SDs, z)", "p_value": "p-value", "q_value": "False discovery rate (q)",
        "not_assessed_reason": "Why not assessed",
    }


def _highlight_sentence(run: AuditRun, rows: pl.DataFrame, loaded: LoadedCatalogue, code: str, level: str) -> None:
    """One sentence for the highlighted unit, on the funnel's scale, under its small-numbers rule."""
    rule = loaded.catalogue.defaults.suppression
    row = export.suppress(rows.filter(pl.col("unit_code") == code), rule)
    if row.height == 0:
        return
    r = row.row(0, named=True)
    result = result_for(run, r)
    name = as_text(r["unit_name"] or code)
    sentence = views.result_sentence(result, title=f"**{name}**", symbol=rule.symbol,
                                     suppressed_range=(rule.min_count, rule.max_count))
    expected_range = views.range_sentence(result, unit="trust" if level == "trust" else views.level_label(level).lower())
    st.markdown(sentence + (f" {expected_range}" if expected_range else ""))


def view_indicator(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue | None = None) -> None:
    ids = list(run.results)
    pending = st.session_state.pop("pending_indicator", None)
    if pending in ids:
        st.session_state["ind_indicator"] = pending
    elif "ind_indicator" not in st.session_state:
        st.session_state["ind_indicator"] = ids[qp_index("indicator", ids)]
    c1, c2, c3 = st.columns([3, 2, 2])
    indicator = c1.selectbox("Indicator", ids, format_func=lambda i: f"{run.results[i].spec.tumour_site}: {run.results[i].spec.title}",
                             key="ind_indicator")
    set_qp(indicator=indicator)
    result = run.results[indicator]
    spec = result.spec
    groups = run.units.groups if run.units else ()
    compare = levels(groups)
    # every choice is in the URL (level=, period=, chart=), so a shared link opens this very chart
    by_code = {v: k for k, v in compare.items()}
    if st.session_state.get("ind_level") not in compare:
        st.session_state["ind_level"] = by_code.get(qp_value("level", list(by_code)), "Trusts")
    level_name = c2.radio("Compare", list(compare), horizontal=True, key="ind_level", format_func=md,
                          help=None if groups else "No grouping is defined in the units file: trusts only.")
    level = compare[level_name]
    periods = [result.pooled_period, *time_order(p for p in result.table["period"].unique().drop_nulls().to_list()
                                                 if p != result.pooled_period)]
    if st.session_state.get("ind_period") not in periods:
        st.session_state["ind_period"] = periods[qp_index("period", periods)]
    period = c3.selectbox("Period", periods, key="ind_period")
    set_qp(level=level, period=period)
    rows = result.table.filter(pl.col("level") == level, pl.col("period") == period)
    curve = result.curves.filter(pl.col("level") == level, pl.col("period") == period) if result.curves.height else result.curves
    labels = trust_label(run.units.frame) if run.units else {}
    h1, h2 = st.columns([3, 2])
    trust_codes = ["(none)", *sorted(labels, key=lambda c: labels[c])]
    pending_trust = st.session_state.pop("pending_trust", None)
    if pending_trust in trust_codes:
        st.session_state["ind_highlight"] = pending_trust
    elif "ind_highlight" not in st.session_state:
        st.session_state["ind_highlight"] = trust_codes[qp_index("trust", trust_codes, "(none)")]
    family = views.group_level(groups)
    highlight = h1.selectbox(f"Highlight a trust (and its {md(views.level_label(family))}'s trusts)" if family
                             else "Highlight a trust", trust_codes,
                             format_func=lambda c: labels.get(c, c), key="ind_highlight")
    kinds = {"funnel": "Funnel plot", "caterpillar": "Caterpillar (ranked intervals)"}
    if st.session_state.get("ind_chart") not in kinds.values():
        st.session_state["ind_chart"] = kinds.get(qp_value("chart", list(kinds)), "Funnel plot")
    kind = h2.radio("Chart", list(kinds.values()), horizontal=True, key="ind_chart")
    set_qp(chart=next(k for k, v in kinds.items() if v == kind))
    st.header(md(spec.title))
    st.markdown(f"{md(spec.description)} *{'; '.join(md(t) for t in (spec.audit, spec.tumour_site) if t)}.*")
    risk_adjusted = spec.risk_adjustment is not None
    if result.warnings:
        for w in result.warnings:
            st.warning(md(w[0].upper() + w[1:]))
    highlight_codes: list[str] = []
    peers: list[str] = []
    set_qp(trust=None if highlight == "(none)" else highlight)
    if highlight != "(none)":
        if level == "trust":
            highlight_codes = [highlight]
            if family is not None and family in rows.columns:
                parent = rows.filter(pl.col("unit_code") == highlight)[family]
                if parent.len() and parent[0] is not None:
                    peers = rows.filter(pl.col(family) == parent[0],
                                        pl.col("unit_code") != highlight)["unit_code"].to_list()
        else:
            parent = table.filter(pl.col("unit_code") == highlight, pl.col("level") == "trust")
            if parent.height and level in parent.columns:
                highlight_codes = [parent[level][0]]
    n = rows.filter(pl.col("status").cast(pl.String) != "not_assessed").height
    flagged = rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    what = "risk-adjusted rate" if risk_adjusted else "value"
    limits = [f"{coverage_label(c)}%" for c in result.options.limits]
    drawn = (f"dashed: {limits[0]}" if len(limits) == 1 else f"dashed: {limits[0]}, solid: {limits[1]}")
    x_title = figures.axis_titles(spec.statistic, risk_adjusted, spec.multiplier)[0]
    shape = (f"its {what} is plotted against its {X_WORDS.get(x_title, x_title.lower())}. The funnel shows the "
             f"range expected from chance alone ({drawn})" if kind == "Funnel plot" else
             f"they are ranked by {what}, each with the range (grey bar, {limits[0]}) expected for a unit of its "
             "size; ranking helps find a unit, it is not a league table")
    chance = n * (1 - result.options.limits[0]) * (0.5 if spec.worse_side else 1)
    chance_text = f"{chance:.1f}" if chance < 10 else f"{chance:.0f}"  # 141 x 0.002 = 0.28 is not "about 0"
    st.markdown(f"**What this shows:** each point is one of {n} {md(level_name.lower())} assessed; {shape}. "
                f"{flagged.height} {('is' if flagged.height == 1 else 'are') + ' flagged' if spec.worse_side else ('falls' if flagged.height == 1 else 'fall') + f' outside the {limits[0]} limits'}; "
                f"about {chance_text} would be by chance alone.")
    if kind == "Funnel plot":
        fig = figures.funnel_figure(rows, curve, title=f"{spec.title} ({period})", better=spec.better,
                                    statistic=spec.statistic, risk_adjusted=risk_adjusted,
                                    multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=highlight_codes, peers=peers, standard=spec.target is not None,
                                    label_highlight="Selected trust" if level == "trust" else
                                    f"The selected trust's {level_name[:-1]}",
                                    label_peers=f"Other trusts in its {views.level_label(family) if family else 'group'}")
    else:
        fig = figures.caterpillar_figure(rows, title=f"{spec.title} ({period})", better=spec.better,
                                         risk_adjusted=risk_adjusted, multiplier=spec.multiplier,
                                         highlight=highlight_codes[:1], coverage=result.options.limits[0])
    chart(fig, "ind_chart_fig", footnote=sharing.chart_footnote(run, indicator, level=level, period=period),
          file_name=sharing.chart_file_name("funnel" if kind == "Funnel plot" else "caterpillar", indicator, level, period),
          alt=f"{kind} of {spec.title} ({period}): {n} {level_name.lower()} assessed, "
          f"{flagged.height} flagged. The table below lists every point.")
    if highlight_codes and loaded is not None:
        _highlight_sentence(run, rows, loaded, highlight_codes[0], level)
    st.info(narrative.INTERPRETATION)
    _method_panel(run, indicator, level, period)
    st.subheader("Table")
    cols = ["unit_code", "unit_name", "parent_code", "observed", "denominator", "expected", "value",
            "adjusted_value", "lower_alert", "upper_alert", "lower_alarm", "upper_alarm", "z", "p_value",
            "q_value", "status_label", "not_assessed_reason"]
    st.caption("Flagged results first, worse before better. Values and limits in % where the indicator is a "
               "percentage; risk-adjusted values and limits are on the adjusted-rate scale. Click a column "
               "heading to sort.")
    if len(result.options.limits) == 1:  # one limit: no alarm limits to show (the columns are empty)
        cols = [c for c in cols if c not in ("lower_alarm", "upper_alarm")]
    shown = display_table(views.by_severity(rows, "unit_name")).select([c for c in cols if c in rows.columns])
    st.dataframe(shown, hide_index=True, placeholder="", key="ind_table",
                 column_config=table_columns(risk_adjusted=risk_adjusted, level=level_name[:-1],
                                             limits=result.options.limits,
                                             percent=spec.multiplier == 100))
    from audit_metrics.ui import trends  # the "Over time" tab (SPC, CUSUM, VLAD)

    trends.view_indicator_trends(run, indicator, None if highlight == "(none)" else highlight, loaded)
