"""Outliers & export: the filterable outlier list and its downloads."""

from __future__ import annotations

import re

import polars as pl
import streamlit as st

from audit_metrics import sharing, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import display_table, kept, link_values, set_qp, url_note
from audit_metrics.ui.text import md

# The on-screen table's headings: the downloads' (sharing.RESULT_HEADERS), on the screen's scale where the
# table shows % (display_table) and the files keep 0-1
OUTLIER_COLUMNS = {
    **sharing.result_headers(("tumour_site", "indicator_title", "unit_name", "cancer_alliance", "status_label",
                              "observed", "denominator", "z", "p_value")),
    "value": "Value (% or O/E)", "adjusted_value": "Risk-adjusted rate (%)",
}
NO_POLARITY_OPTION = "higher or lower"  # flags of indicators with no better direction (better: neither)


HEADLINE_LABEL = "Each indicator's headline period (all periods pooled)"


def _from_link(key: str, name: str, options: list[str], default: list[str]) -> None:
    """A filter's values from the opened link (``state.link_values``), else ``default``; before its widget."""
    if key not in st.session_state:
        st.session_state[key] = link_values(name, options) or default


def view_outliers(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue) -> None:
    st.header("Outlier list")
    st.markdown("Results outside their funnel limits, for QI follow-up. Download as CSV or Excel "
                "(with a read-me sheet: methods, provenance and the small-numbers rule). The command "
                "`audit-metrics outliers` writes the same list for the same filters.")
    trusts = table.filter(pl.col("level") == "trust")
    family = sharing.outlier_group(run, table)
    # every filter is in the URL under the command line's option name (alliance=, site=, indicator=,
    # level=, direction=, period=), so a shared link opens the same list
    all_alliances = sorted(trusts[family].drop_nulls().unique().to_list()) if family else []
    all_sites = sorted(trusts["tumour_site"].unique().to_list())
    no_polarity = any(r.spec.better == "neither" for r in run.results.values())
    direction_options = [*sharing.POLARISED, *([NO_POLARITY_OPTION] if no_polarity else [])]
    all_periods = sharing.periods(run)
    # not from a link: the Overview's narrowing carried over (its alliance and sites), so the list is of the trusts
    # the person was just looking at (a real-data review: the filters were dropped on the way)
    found = str(kept("ov_find") or "")  # the Overview's first question: "which trust or Cancer Alliance?"
    chosen = found.split(":", 1)[1] if found.startswith(f"{family}:") else kept("ov_alliance")
    carried_alliance = [a for a in [chosen] if family == "cancer_alliance" and a in all_alliances]
    carried_sites = [s for s in kept("ov_sites") or [] if s in all_sites]
    _from_link("out_alliance", "alliance", all_alliances, carried_alliance)
    _from_link("out_sites", "site", all_sites, carried_sites if set(carried_sites) != set(all_sites) else [])
    _from_link("out_indicators", "indicator", list(run.results), [])
    _from_link("out_levels", "level", list(sharing.LEVELS), list(sharing.LEVELS))
    _from_link("out_directions", "direction", direction_options, direction_options)
    if "out_period" not in st.session_state:
        wanted = link_values("period", all_periods)
        st.session_state["out_period"] = wanted[-1] if wanted else None
    c1, c2, c3 = st.columns(3)
    alliances = (c1.multiselect(md(views.level_label(family)), all_alliances, key="out_alliance")
                 if family else [])
    if family is None:
        c1.caption("No Cancer Alliance or other grouping is defined for these units.")
    sites = c2.multiselect("Tumour site", all_sites, key="out_sites")
    titles = {i: r.spec.title for i, r in run.results.items()
              if not sites or r.spec.tumour_site in sites}
    if any(i not in titles for i in st.session_state.get("out_indicators", [])):  # a link's, outside the sites
        for i in st.session_state["out_indicators"]:
            if i not in titles:
                url_note("indicator", i)
        st.session_state["out_indicators"] = [i for i in st.session_state["out_indicators"] if i in titles]
    indicators = c3.multiselect("Indicator", list(titles), format_func=lambda i: titles.get(i, i),
                                key="out_indicators")
    c4, c5, c6 = st.columns(3)
    levels = c4.multiselect("Level", list(sharing.LEVELS), key="out_levels")
    chosen = c5.multiselect("Direction", direction_options, key="out_directions",
                            help="Worse or better than expected, by the indicator's better direction."
                                 + (f" '{NO_POLARITY_OPTION}': flags of indicators with no better direction "
                                    "(better: neither), above or below their range." if no_polarity else ""))
    # higher/lower only ever select flags of indicators with no better direction: where there are none they
    # are included (they change nothing), so worse and better together are the command line's default
    directions = tuple(d for d in sharing.POLARISED if d in chosen) + (
        sharing.NO_POLARITY if NO_POLARITY_OPTION in chosen or not no_polarity else ())
    period = c6.selectbox("Period", [None, *all_periods],
                          format_func=lambda p: HEADLINE_LABEL if p is None else p, key="out_period")
    set_qp(alliance=alliances, site=sites, indicator=[i for i in indicators if i in titles],
           level=None if set(levels) == set(sharing.LEVELS) else levels,
           direction=None if set(chosen) == set(direction_options) else chosen, period=period)
    filters = sharing.OutlierFilters(alliances=tuple(alliances), tumour_sites=tuple(sites),
                                     indicators=tuple(i for i in indicators if i in titles), levels=tuple(levels),
                                     directions=directions, period=period)
    overrides = st.session_state.get("data_overrides") or {}
    synthetic = sharing.uses_bundled_sample(loaded, overrides)

    def build(**kw) -> sharing.OutlierExport:  # the very function `audit-metrics outliers` calls
        return sharing.build_outlier_export(run, loaded, filters, table=table if period is None else None,
                                            synthetic=synthetic, data=overrides, **kw)

    try:
        shared = build()
    except AuditMetricsError as exc:  # e.g. a tumour site none of whose indicators reports the period chosen
        st.info(f"Nothing to list for {md(period or HEADLINE_LABEL.lower())}: "
                + md(re.sub(r"^--[a-z]+ ", "", str(exc))))
        return
    safe, withheld, rule = shared.table, shared.withheld, shared.rule
    st.markdown(f"**{safe.height} flagged result{'' if safe.height == 1 else 's'}** match"
                f"{'es' if safe.height == 1 else ''}.")
    st.caption(f"Counts of {rule.min_count}-{rule.max_count} are shown as '{md(rule.symbol)}', with the values that "
               "would reveal them left blank, here and in the downloads."
               + (f" {withheld} further flagged result{' is' if withheld == 1 else 's are'} not listed because the "
                  "flag alone would reveal such a count." if withheld else ""))
    shown = display_table(safe).select("status_label", "tumour_site", "indicator_title", "unit_name",
                                       *([family] if family else []), "observed", "denominator", "value", "adjusted_value",
                                       "z", "p_value")
    config = {**OUTLIER_COLUMNS, **({family: views.level_label(family)} if family else {})}
    st.dataframe(shown, hide_index=True, placeholder="", key="out_table", column_config=config)

    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", shared.csv_bytes, file_name=shared.file_name("csv"),
                       mime="text/csv", key="out_csv")
    # the workbook is built when clicked, so its read-me records the download time
    d2.download_button("Download Excel", lambda: build().excel_bytes(), file_name=shared.file_name("xlsx"),
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="out_xlsx")
