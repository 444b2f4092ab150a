"""Outliers & export: the filterable outlier list and its downloads."""

from __future__ import annotations

import polars as pl
import streamlit as st

from audit_metrics import sharing, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import display_table
from audit_metrics.ui.text import md

OUTLIER_COLUMNS = {
    "tumour_site": "Tumour site", "indicator_title": "Indicator", "unit_name": "Trust",
    "cancer_alliance": "Cancer Alliance", "status_label": "Result", "observed": "Events",
    "denominator": "Patients", "value": "Value (% or O/E)", "adjusted_value": "Risk-adjusted rate (%)",
    "z": "z", "p_value": "p-value",
}


HEADLINE_LABEL = "Each indicator's headline period (all periods pooled)"


def view_outliers(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue) -> None:
    st.header("Outlier list")
    st.markdown("Results outside their funnel limits, for QI follow-up. Download as CSV or Excel "
                "(with a read-me sheet: methods, provenance and the small-numbers rule). The command "
                "`audit-metrics outliers` writes the same list for the same filters.")
    trusts = table.filter(pl.col("level") == "trust")
    family = sharing.outlier_group(run, table)
    c1, c2, c3 = st.columns(3)
    alliances = (c1.multiselect(md(views.level_label(family)), sorted(trusts[family].drop_nulls().unique().to_list()),
                                key="out_alliance") if family else [])
    if family is None:
        c1.caption("No Cancer Alliance or other grouping is defined for these units.")
    sites = c2.multiselect("Tumour site", sorted(trusts["tumour_site"].unique().to_list()), key="out_sites")
    titles = {i: r.spec.title for i, r in run.results.items()
              if not sites or r.spec.tumour_site in sites}
    indicators = c3.multiselect("Indicator", list(titles), format_func=lambda i: titles.get(i, i),
                                key="out_indicators")
    c4, c5, c6 = st.columns(3)
    levels = c4.multiselect("Level", list(sharing.LEVELS), default=list(sharing.LEVELS), key="out_levels")
    directions = c5.multiselect("Direction", list(sharing.DIRECTIONS), default=list(sharing.DIRECTIONS),
                                key="out_directions")
    period = c6.selectbox("Period", [None, *sharing.periods(run)],
                          format_func=lambda p: HEADLINE_LABEL if p is None else p, key="out_period")
    filters = sharing.OutlierFilters(alliances=tuple(alliances), tumour_sites=tuple(sites),
                                     indicators=tuple(i for i in indicators if i in titles), levels=tuple(levels),
                                     directions=tuple(directions), period=period)
    overrides = st.session_state.get("data_overrides") or {}
    synthetic = sharing.uses_bundled_sample(loaded, overrides)

    def build(**kw) -> sharing.OutlierExport:  # the very function `audit-metrics outliers` calls
        return sharing.build_outlier_export(run, loaded, filters, table=table if period is None else None,
                                            synthetic=synthetic, data=overrides, **kw)

    shared = build()
    safe, withheld, rule = shared.table, shared.withheld, shared.rule
    st.markdown(f"**{safe.height} flagged results** match.")
    st.caption(f"Counts of {rule.min_count}-{rule.max_count} are shown as '{md(rule.symbol)}', with the values that "
               "would reveal them left blank, here and in the downloads."
               + (f" {withheld} further flagged result(s) are not listed because the flag alone would reveal "
                  "such a count." if withheld else ""))
    shown = display_table(safe).select("tumour_site", "indicator_title", "unit_name", *([family] if family else []),
                                       "status_label", "observed", "denominator", "value", "adjusted_value",
                                       "z", "p_value")
    config = {**OUTLIER_COLUMNS, **({family: views.level_label(family)} if family else {})}
    st.dataframe(shown, hide_index=True, key="out_table", column_config=config)

    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", shared.csv_bytes, file_name=shared.file_name("csv"),
                       mime="text/csv", key="out_csv")
    # the workbook is built when clicked, so its read-me records the download time
    d2.download_button("Download Excel", lambda: build().excel_bytes(), file_name=shared.file_name("xlsx"),
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="out_xlsx")
