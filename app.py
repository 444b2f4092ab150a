"""Cancer audit variation dashboard (Streamlit). Asks and shows; all statistics live in audit_metrics.

Run:  streamlit run app.py                      (viewing)
      streamlit run app.py -- --edit            (auditors: catalogue editing switched on)
      AUDIT_METRICS_EDIT=1 streamlit run app.py (the same, via the environment)
      AUDIT_METRICS_CATALOGUE=path/to/indicators.yaml streamlit run app.py
A shared server signs editors in instead (OpenID Connect; audit_metrics/ui/auth.py, README "Deploying").
"""

from __future__ import annotations

import time

import streamlit as st

st.set_page_config(page_title="Cancer audit variation", page_icon=":bar_chart:", layout="wide")

# The chart library starts loading in the browser first, before even the imports below (about 1.7 s on a freshly
# started server, the browser's 0.9 s of running the library hidden behind them): a constant script
# (audit_metrics/ui/preload.py, a light module). Not on the views that draw no chart.
from audit_metrics.ui.preload import preload_html  # noqa: E402

NO_CHART_VIEWS = frozenset({"Outliers & export", "Indicator catalogue", "Data", "Releases"})
_first_view = st.session_state.get("view") or st.query_params.get("view") or "Overview"
if _first_view not in NO_CHART_VIEWS and (_preload := preload_html(deferred=_first_view == "Overview")) is not None:
    st.sidebar.html(_preload, unsafe_allow_javascript=True)

from audit_metrics.ui import (  # noqa: E402
    alliance,
    auth,
    catalogue,
    data,
    indicator,
    inequalities,
    outliers,
    overview,
    trends,
    trust,
)
from audit_metrics.ui.readiness import RENDERED_HTML  # noqa: E402
from audit_metrics.ui.state import (  # noqa: E402
    ROOT,
    SAMPLE_NOTE,
    VIEWS,
    begin_url_run,
    flush_url,
    load,
    pooled_table,
    qp_index,
    set_qp,
    show_url_notes,
)


def main() -> None:
    started = time.perf_counter()
    begin_url_run()  # Back/Forward: the URL's selections win
    if "view" not in st.session_state:
        st.session_state["view"] = VIEWS[qp_index("view", list(VIEWS))]
    with st.sidebar:
        st.title("Cancer audit variation")
        view = st.radio("View", VIEWS, key="view")
        st.selectbox("Chart download format", ["png", "svg"], key="chart_format",
                     help="The camera icon above each chart downloads it in this format.")
        auth.show_sign_in()
    if view != "Indicator catalogue":
        catalogue.unsaved_notice()  # edits are kept for the session; say so wherever the person is
    set_qp(view=view)
    loaded_run = load()
    if loaded_run is None:
        return  # the URL is left as it was: the link still says what was asked for
    loaded, run, run_key = loaded_run
    overrides = st.session_state.get("data_overrides") or {}
    if any((ROOT / "sample_data") in loaded.dataset_path(name, overrides).parents
           for name in loaded.catalogue.datasets):  # any synthetic data in use: say so on every page
        st.info(SAMPLE_NOTE)
    table = pooled_table(run_key, run)
    notes = st.empty()  # above the view: any of the link's values that were not used
    if view == "Overview":
        overview.view_overview(run, table, loaded)
    elif view == "Indicator":
        indicator.view_indicator(run, table, loaded)
    elif view == "Trust profile":
        trust.view_trust(run, table, run_key, loaded)
    elif view == "Cancer Alliance":
        alliance.view_alliance(run, table, loaded, run_key)
    elif view == "Inequalities":
        inequalities.view_inequalities(run, table, run_key, loaded)
    elif view == "Outliers & export":
        outliers.view_outliers(run, table, loaded)
    elif view == "Indicator catalogue":
        catalogue.view_catalogue(run, loaded)
    elif view == "Releases":
        trends.view_releases(run, loaded)
    else:
        data.view_data(run, loaded)
    with notes.container():
        show_url_notes()
    flush_url()  # the view's selections, as one browser history entry
    if auth.can_edit():  # timing is for the people who change the catalogue, not developer chrome for viewers
        st.sidebar.caption(f"Rendered in {time.perf_counter() - started:.2f} s")
    st.sidebar.html(RENDERED_HTML)  # invisible: the readiness probe's sign that the whole view was drawn


main()
