"""Cancer Alliance: its trusts on the national funnel and the alliance among alliances."""

from __future__ import annotations

import polars as pl
import streamlit as st

from audit_metrics import figures, sharing, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.inequalities import indicator_gap_line
from audit_metrics.ui.state import chart, qp_index, set_qp
from audit_metrics.ui.text import md

EXCESS_COLUMNS = {
    "indicator_id": None, "indicator_title": "Indicator", "tumour_site": "Tumour site", "unit_code": "Code",
    "unit_name": "Trust", "observed": "Events", "expected": "Expected events",
    "excess_events": "Excess events (patients)", "status": None, "status_label": "Result",
}


def _own_group(table: pl.DataFrame, level: str, trust: object) -> str | None:
    """The ``level`` group (Cancer Alliance) of ``trust`` in the results, or None."""
    if not isinstance(trust, str) or level not in table.columns:
        return None
    rows = table.filter(pl.col("level") == "trust", pl.col("unit_code") == trust)[level].drop_nulls()
    return str(rows[0]) if rows.len() else None


def view_alliance(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue, run_key: str = "") -> None:
    level = views.group_level(run.units.groups if run.units else ())
    if level is None:
        st.header("Cancer Alliance")
        st.info(views.no_grouping_message(loaded.catalogue.units.source))
        return
    name, names = views.level_label(level), views.level_label(level, plural=True)
    short = "alliance" if level == "cancer_alliance" else name.lower()  # how sentences name it
    alliances = sorted(table.filter(pl.col("level") == level)["unit_code"].drop_nulls().unique().to_list())
    if not alliances:
        st.header(md(name))
        st.warning(f"No results at {md(name)} level.")
        return
    pending = st.session_state.pop("pending_alliance", None)
    if pending in alliances:
        st.session_state["alliance"] = pending
    elif st.session_state.get("alliance") not in alliances:
        # none chosen yet: the alliance of the trust the person was looking at (trust profile, or the indicator's
        # highlighted trust), not the first in the list; a link's alliance= still wins
        own = _own_group(table, level, st.session_state.get("trust_code") or st.session_state.get("ind_highlight"))
        st.session_state["alliance"] = alliances[qp_index("alliance", alliances, own)]
    if level != "cancer_alliance":
        st.caption(f"These units have no Cancer Alliance; they are grouped by {md(name.lower())} (the first level "
                   "listed under `units: groups:` in the catalogue).")
    alliance = st.selectbox(md(name), alliances, key="alliance")
    set_qp(alliance=alliance)
    members = table.filter(pl.col("level") == "trust", pl.col(level) == alliance)["unit_code"].unique().to_list()
    st.header(md(alliance))
    ids = list(run.results)
    if st.session_state.get("all_indicator") not in ids:
        st.session_state["all_indicator"] = ids[qp_index("indicator", ids)]
    indicator = st.selectbox("Indicator", ids, format_func=lambda i: f"{run.results[i].spec.tumour_site}: {run.results[i].spec.title}",
                             key="all_indicator")
    set_qp(indicator=indicator)
    result = run.results[indicator]
    spec = result.spec
    pooled = result.pooled_period
    ra = spec.risk_adjustment is not None
    c1, c2 = st.columns(2)
    with c1:
        rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == pooled)
        # trusts with results on this indicator (a reference list also holds trusts that never report it)
        with_data = rows.filter(pl.col("unit_code").is_in(members), pl.col("observed").is_not_null()).height
        st.markdown(f"**The {md(short)}'s {with_data} trusts with results (circled) against all trusts**"
                    + (f" ({len(members) - with_data} of its {len(members)} trusts have none)"
                       if with_data < len(members) else ""))
        curve = result.curves.filter(pl.col("level") == "trust", pl.col("period") == pooled)
        chart(figures.funnel_figure(rows, curve, title="Trusts", better=spec.better, statistic=spec.statistic,
                                    risk_adjusted=ra, multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=members, label_highlight=f"This {short}'s trusts",
                                    standard=spec.target is not None), "all_trusts",
              footnote=sharing.chart_footnote(run, indicator, period=pooled),
              file_name=sharing.chart_file_name("funnel", alliance, indicator, "trusts", pooled),
              alt=f"Funnel plot of {spec.title}: every trust, the {short}'s {with_data} ringed. The table below "
                  "lists them with their results.")
    with c2:
        st.markdown(f"**The {md(short)} as a whole, among all {md(names)}**")
        rows = result.table.filter(pl.col("level") == level, pl.col("period") == pooled)
        curve = result.curves.filter(pl.col("level") == level, pl.col("period") == pooled)
        chart(figures.funnel_figure(rows, curve, title=names, better=spec.better, statistic=spec.statistic,
                                    risk_adjusted=ra, multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=[alliance], label_highlight=f"This {short}",
                                    standard=spec.target is not None), "all_alliances",
              footnote=sharing.chart_footnote(run, indicator, level=level, period=pooled),
              file_name=sharing.chart_file_name("funnel", alliance, indicator, level, pooled),
              alt=f"Funnel plot of {spec.title} for the {rows.height} {names}, this {short} ringed.")
    gap = indicator_gap_line(run_key, run, loaded, indicator, level, alliance)
    if gap:  # one inequality line for the group on this indicator, where the data allow it
        st.caption(f"Inequality: {md(gap)}")
    st.subheader("Where would improvement help most people?")
    st.markdown(f"Observed minus expected events for each of the {md(short)}'s trusts on every indicator, signed so "
                "that a positive number is patients who would have had the better outcome had the trust matched "
                "the expected rate (for its case-mix, where adjusted). Largest first.")
    rule = loaded.catalogue.defaults.suppression
    excess = views.excess_events_for_sharing(table, units=members, rule=rule)
    st.caption(f"Counts of {rule.min_count}-{rule.max_count} are shown as '{md(rule.symbol)}' with the values that would "
               f"reveal them left blank; where a trust's count is hidden, the next smallest in the {md(short)} is "
               f"hidden too, as the {md(short)}'s total is shown in its funnel.")
    st.dataframe(excess.drop("suppressed").with_columns(pl.col("expected", "excess_events").round(1),
                                                        pl.col("status").cast(pl.String)),
                 hide_index=True, placeholder="", key="all_excess", column_config=EXCESS_COLUMNS)
