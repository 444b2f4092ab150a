"""Outliers & export: the filterable outlier list and its downloads."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from audit_metrics import export, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import display_table

OUTLIER_COLUMNS = {
    "tumour_site": "Tumour site", "indicator_title": "Indicator", "unit_name": "Trust",
    "cancer_alliance": "Cancer Alliance", "status_label": "Result", "observed": "Events",
    "denominator": "Patients", "value": "Value (% or O/E)", "adjusted_value": "Risk-adjusted rate (%)",
    "z": "z", "p_value": "p-value",
}


def view_outliers(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue) -> None:
    st.header("Outlier list")
    st.markdown("Results outside their funnel limits, for QI follow-up. Download as CSV or Excel "
                "(with a methods and provenance sheet).")
    trusts = table.filter(pl.col("level") == "trust")
    family = views.group_level(run.units.groups if run.units else ())
    family = family if family in trusts.columns else None
    c1, c2, c3, c4 = st.columns(4)
    alliances = (c1.multiselect(views.level_label(family), sorted(trusts[family].drop_nulls().unique().to_list()),
                                key="out_alliance") if family else [])
    if family is None:
        c1.caption("No Cancer Alliance or other grouping is defined for these units.")
    sites = c2.multiselect("Tumour site", sorted(trusts["tumour_site"].unique().to_list()), key="out_sites")
    levels = c3.multiselect("Level", ["alarm", "alert"], default=["alarm", "alert"], key="out_levels")
    directions = c4.multiselect("Direction", ["worse", "better", "higher", "lower"],
                                default=["worse", "better", "higher", "lower"], key="out_directions")
    out = views.outlier_list(table, levels=levels, directions=directions, alliances=alliances, tumour_sites=sites,
                             group=family)
    rule = loaded.catalogue.defaults.suppression
    safe, withheld = views.outliers_for_sharing(out, rule)
    st.markdown(f"**{safe.height} flagged results** match.")
    st.caption(f"Counts of {rule.min_count}-{rule.max_count} are shown as '{rule.symbol}', with the values that "
               "would reveal them left blank, here and in the downloads."
               + (f" {withheld} further flagged result(s) are not listed because the flag alone would reveal "
                  "such a count." if withheld else ""))
    shown = display_table(safe).select("tumour_site", "indicator_title", "unit_name", *([family] if family else []),
                                       "status_label", "observed", "denominator", "value", "adjusted_value",
                                       "z", "p_value")
    config = {**OUTLIER_COLUMNS, **({family: views.level_label(family)} if family else {})}
    st.dataframe(shown, hide_index=True, key="out_table", column_config=config)
    filters = {"alliances": alliances, "tumour_sites": sites, "levels": levels, "directions": directions}

    def exported() -> pl.DataFrame:
        return safe.drop("direction")

    def excel() -> bytes:  # built when clicked, so the provenance time is the download time
        prov = views.provenance(run, loaded, filters=filters,
                                suppression=f"counts {rule.min_count}-{rule.max_count} shown as '{rule.symbol}'; "
                                f"{withheld} flagged result(s) withheld because the flag would reveal such a count")
        return export.to_excel_bytes(exported(), prov)

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", lambda: export.to_csv_bytes(exported()), file_name=f"outliers_{stamp}.csv",
                       mime="text/csv", key="out_csv")
    d2.download_button("Download Excel", excel, file_name=f"outliers_{stamp}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="out_xlsx")
