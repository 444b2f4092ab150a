"""Indicator: one indicator's funnel or caterpillar, method panel and table."""

from __future__ import annotations

import polars as pl
import streamlit as st

from audit_metrics import figures, narrative, sharing, views
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import chart, display_table, levels, qp_index, set_qp, trust_label


def _method_panel(run: AuditRun, indicator: str, level: str, period: str) -> None:
    result = run.results[indicator]
    od = result.overdispersion.get((level, period))
    opts = result.options
    with st.expander("How this was calculated (method)", expanded=False):
        limits_used = result.table.filter(pl.col("level") == level)["method"][0].split(";")[0]
        st.markdown(f"- **Limits:** {limits_used}.")
        if result.spec.worse_side:
            st.markdown(f"- **Alert / alarm:** worse than the standard by more than the {opts.limits[0]:.1%} / "
                        f"{opts.limits[-1]:.1%} limits allow (one-sided: only the worse side is flagged; HQIP "
                        "convention: about 2 and 3 standard deviations from the standard).")
        else:
            st.markdown(f"- **Alert / alarm:** outside the {opts.limits[0]:.1%} / "
                        f"{opts.limits[-1]:.1%} limits (two-sided; HQIP convention: about 2 and 3 standard "
                        "deviations).")
        st.markdown(f"- **Overdispersion:** {narrative.overdispersion_sentence(od)}")
        st.markdown(f"- **Minimum size:** units with fewer than {opts.min_denominator:g} patients are shown but "
                    "not assessed.")
        at_level = result.table.filter(pl.col("level") == level, pl.col("period") == period)
        assessed = int((at_level["status"].cast(pl.String) != "not_assessed").sum())
        sides = 0.5 if result.spec.worse_side else 1.0
        st.markdown(f"- **Multiple comparisons:** with {assessed} units assessed, about "
                    f"{assessed * (1 - opts.limits[0]) * sides:.1f} would be flagged at the {opts.limits[0]:.1%} "
                    "limits by chance alone (alerts and alarms together)"
                    + (f" and {assessed * (1 - opts.limits[-1]) * sides:.1f} at {opts.limits[-1]:.1%}"
                       if len(opts.limits) > 1 else "")
                    + ". The table's q-value is the Benjamini-Hochberg false-discovery rate.")
        model = result.risk_model
        if model is not None:
            st.markdown(f"- **Case-mix model:** logistic regression on {', '.join(c.name for c in result.spec.risk_adjustment.covariates)} "
                        f"(missing values: {model.missing}); {model.n:,} patients, {model.events:,.0f} events; "
                        f"c-statistic {model.c_statistic:.3f}; Hosmer-Lemeshow p = {model.hosmer_lemeshow_p:.3g}; "
                        f"{'converged' if model.converged else 'did NOT converge'}.")
            cal = model.calibration.with_columns(pl.col("mean_predicted", "observed_rate").round(4),
                                                 pl.col("expected").round(1))
            st.markdown("Calibration: observed vs expected by tenth of predicted risk.")
            st.dataframe(cal, hide_index=True, key=f"cal_{indicator}")
            st.markdown("Odds ratios with 95% confidence intervals:")
            st.dataframe(model.coefficients.select("term", pl.col("odds_ratio", "ci_lower", "ci_upper").round(3),
                                                   pl.col("p_value").round(4)), hide_index=True, key=f"coef_{indicator}")


def view_indicator(run: AuditRun, table: pl.DataFrame) -> None:
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
    if st.session_state.get("ind_level") not in compare:
        st.session_state.pop("ind_level", None)
    level_name = c2.radio("Compare", list(compare), horizontal=True, key="ind_level",
                          help=None if groups else "No grouping is defined in the units file: trusts only.")
    level = compare[level_name]
    periods = [result.pooled_period, *sorted(p for p in result.table["period"].unique().to_list() if p != result.pooled_period)]
    period = c3.selectbox("Period", periods, key="ind_period")
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
    highlight = h1.selectbox(f"Highlight a trust (and its {views.level_label(family)}'s trusts)" if family
                             else "Highlight a trust", trust_codes,
                             format_func=lambda c: labels.get(c, c), key="ind_highlight")
    kind = h2.radio("Chart", ["Funnel plot", "Caterpillar (ranked intervals)"], horizontal=True, key="ind_chart")
    st.header(spec.title)
    st.markdown(f"{spec.description or ''} *{spec.audit or ''}; {spec.tumour_site}.*")
    risk_adjusted = spec.risk_adjustment is not None
    if result.warnings:
        for w in result.warnings:
            st.warning(w[0].upper() + w[1:])
    highlight_codes: list[str] = []
    if highlight != "(none)":
        set_qp(trust=highlight)
        if level == "trust":
            highlight_codes = [highlight]
            if family is not None and family in rows.columns:
                parent = rows.filter(pl.col("unit_code") == highlight)[family]
                if parent.len() and parent[0] is not None:
                    highlight_codes += rows.filter(pl.col(family) == parent[0],
                                                   pl.col("unit_code") != highlight)["unit_code"].to_list()
        else:
            parent = table.filter(pl.col("unit_code") == highlight, pl.col("level") == "trust")
            if parent.height and level in parent.columns:
                highlight_codes = [parent[level][0]]
    n = rows.filter(pl.col("status").cast(pl.String) != "not_assessed").height
    flagged = rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    what = "risk-adjusted rate" if risk_adjusted else "value"
    shape = ("its {what} is plotted against its number of patients. The funnel shows the range expected "
             "from chance alone (dashed: 95%, solid: 99.8%)" if kind == "Funnel plot" else
             "they are ranked by {what}, each with the range (grey bar, 95%) expected for a unit of its "
             "size; ranking helps find a unit, it is not a league table").format(what=what)
    st.markdown(f"**What this shows:** each point is one of {n} {level_name.lower()} assessed; {shape}. "
                f"{flagged.height} {'are flagged' if spec.worse_side else 'fall outside the 95% limits'}; about "
                f"{n * (1 - result.options.limits[0]) * (0.5 if spec.worse_side else 1):.0f} would be by chance alone.")
    if kind == "Funnel plot":
        fig = figures.funnel_figure(rows, curve, title=f"{spec.title} ({period})", better=spec.better,
                                    statistic=spec.statistic, risk_adjusted=risk_adjusted,
                                    multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=highlight_codes, label_highlight="Selected trust / its alliance")
    else:
        fig = figures.caterpillar_figure(rows, title=f"{spec.title} ({period})", better=spec.better,
                                         risk_adjusted=risk_adjusted, multiplier=spec.multiplier,
                                         highlight=highlight_codes[:1])
    chart(fig, "ind_chart_fig", footnote=sharing.chart_footnote(run, indicator, level=level, period=period),
          file_name=sharing.chart_file_name("funnel" if kind == "Funnel plot" else "caterpillar", indicator, level, period))
    st.info(narrative.INTERPRETATION)
    _method_panel(run, indicator, level, period)
    st.subheader("Table")
    cols = ["unit_code", "unit_name", "parent_code", "observed", "denominator", "expected", "value",
            "adjusted_value", "lower_alert", "upper_alert", "lower_alarm", "upper_alarm", "z", "p_value",
            "q_value", "status_label", "not_assessed_reason"]
    st.caption("Values and limits in % where the indicator is a percentage; risk-adjusted limits are on the "
               "adjusted-rate scale. Click a column heading to sort.")
    st.dataframe(display_table(rows).select([c for c in cols if c in rows.columns]), hide_index=True,
                 key="ind_table")
    from audit_metrics.ui import trends  # the "Over time" tab (SPC, CUSUM, VLAD)

    trends.view_indicator_trends(run, indicator, None if highlight == "(none)" else highlight)
