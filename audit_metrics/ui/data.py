"""Data: row accounting per extract and cohort, and uploads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui.state import MAX_UPLOAD_MB, editing_enabled


def view_data(run: AuditRun, loaded: LoadedCatalogue) -> None:
    st.header("Data")
    overrides: dict[str, str] = st.session_state.setdefault("data_overrides", {})
    st.markdown("Every row read is either used or excluded with a reason (first few line numbers shown).")
    acc = pl.concat([a.to_frame() for a in run.datasets.values()])
    st.dataframe(acc, hide_index=True, key="data_accounting")
    for a in run.datasets.values():
        for note in a.notes:
            st.caption(f"{a.dataset}: {note}")
    with st.expander("Rows used by each indicator (cohort accounting)"):
        cohort = pl.concat([r.accounting.to_frame() for r in run.results.values()])
        st.dataframe(cohort, hide_index=True, key="data_cohort")
    st.subheader("Use your own extract")
    st.markdown(f"Upload a CSV, Parquet or Excel file (at most {MAX_UPLOAD_MB} MB) in the same shape as the "
                "dataset it replaces. It is kept in a temporary folder for this session only.")
    names = list(loaded.catalogue.datasets)
    name = st.selectbox("Replace dataset", names, key="data_name")
    upload = st.file_uploader("Extract", type=["csv", "parquet", "xlsx"], key="data_upload",
                              max_upload_size=MAX_UPLOAD_MB)
    if upload is not None and st.button("Use this file", key="data_use"):
        suffix = Path(upload.name).suffix.lower()
        if suffix not in {".csv", ".parquet", ".xlsx"}:
            st.error("Use a .csv, .parquet or .xlsx file.")
        else:
            folder = Path(st.session_state.setdefault("upload_dir", tempfile.mkdtemp(prefix="audit_metrics_")))
            target = folder / f"{name}{suffix}"  # never the uploaded name: nothing escapes the folder
            target.write_bytes(upload.getvalue())
            overrides[name] = str(target)
            st.rerun()
    if editing_enabled():
        typed = st.text_input("...or the path of an extract on this server (editing mode only)", key="data_path")
        if typed and st.button("Use this path", key="data_use_path"):
            candidate = Path(typed).expanduser()
            if candidate.suffix.lower() not in {".csv", ".parquet", ".xlsx"} or not candidate.is_file():
                st.error(f"{typed}: not a .csv, .parquet or .xlsx file on this server.")
            else:
                overrides[name] = str(candidate.resolve())
                st.rerun()
    if overrides:
        st.info("Using uploaded data for: " + ", ".join(overrides))
        if st.button("Go back to the bundled sample data", key="data_reset"):
            st.session_state["data_overrides"] = {}
            st.rerun()
