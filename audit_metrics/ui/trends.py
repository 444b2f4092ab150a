"""Over time: the indicator view's trend tab, the trust profile's sparklines and the Releases view."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics import export, releases, spc, trend_figures, trends, views
from audit_metrics.catalogue import LoadedCatalogue
from audit_metrics.exceptions import AuditMetricsError
from audit_metrics.io import load_all
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui import state
from audit_metrics.ui.text import code, md


def _dot(kind: str) -> str:
    """A coloured disc in Making Data Count's colour (HTML: emoji fonts are often missing on servers)."""
    return f"<span style='color:{trend_figures.MDC_COLOURS[kind]};font-size:1.3em'>●</span>"


ICON = {k: _dot(k) for k in ("special_cause_improvement", "special_cause_concern", "special_cause_neutral_high",
                             "special_cause_neutral_low", "common_cause")}
VARIATION_TITLE = {"special_cause_improvement": "Improving", "special_cause_concern": "Concerning",
                   "special_cause_neutral_high": "Higher (neither better nor worse)",
                   "special_cause_neutral_low": "Lower (neither better nor worse)",
                   "common_cause": "Common cause (no significant change)"}
ASSURANCE_TITLE = {"consistent_pass": "Target consistently met", "consistent_fail": "Target consistently missed",
                   "inconsistent": "Hit and miss"}


# ------------------------------------------------------------------ cached computation


Context = tuple[LoadedCatalogue, AuditRun, str]


def run_context(run: AuditRun, loaded: LoadedCatalogue) -> Context:
    """The view's own catalogue and run, keyed on what they were computed from (catalogue and data digests)."""
    digests = "|".join(f"{k}={v}" for k, v in sorted(run.data_digests.items()))
    return loaded, run, hashlib.sha256(f"{run.catalogue_digest}|{digests}".encode()).hexdigest()


@st.cache_resource(show_spinner="Preparing the monthly series and case-mix risks...", max_entries=16)
def _cohort(run_key: str, indicator: str, _loaded: LoadedCatalogue,
            overrides: tuple[tuple[str, str], ...]) -> trends.TrendCohort | None:
    del run_key
    spec = next(s for s in _loaded.catalogue.indicators if s.id == indicator)
    units, datasets = load_all(_loaded, data=dict(overrides), only=[indicator])
    return trends.trend_cohort(_loaded, spec, datasets[spec.dataset],
                               groups=units.frame.select("unit_code", *units.groups))


@st.cache_resource(show_spinner="Charting...", max_entries=256)
def _unit_trend(run_key: str, indicator: str, level: str, unit: str, rebase: tuple[date, ...],
                _cohort_value: trends.TrendCohort, _run: AuditRun, with_arl: bool = True) -> trends.UnitTrend:
    del run_key
    return trends.unit_trend(_cohort_value, _run.results[indicator].spec, level=level, unit=unit, rebase=rebase,
                             with_arl=with_arl)


def trend_for(indicator: str, level: str = "trust", unit: str = trends.NATIONAL, *, rebase: tuple[date, ...] = (),
              with_arl: bool = True, context: Context) -> trends.UnitTrend | None:
    """The unit's trend, or None when the indicator's dataset has no dates. ``context`` is the view's own run
    (``run_context``): looking the app's run up again here wrote the sidebar's results note once per call."""
    loaded, run, key = context
    overrides = tuple(sorted((st.session_state.get("data_overrides") or {}).items()))
    cohort = _cohort(key, indicator, loaded, overrides)
    if cohort is None:
        return None
    return _unit_trend(key, indicator, level, unit, rebase, cohort, run, with_arl)


def _icons(chart: spc.SpcChart) -> str:
    text = f"{ICON[chart.variation]} **Variation: {VARIATION_TITLE[chart.variation]}**"
    if chart.assurance:
        text += f" · **Assurance: {ASSURANCE_TITLE[chart.assurance]}**"
    return text


def _y_title(run: AuditRun, indicator: str) -> str:
    spec = run.results[indicator].spec
    unit = " (%)" if spec.multiplier == 100 else ""
    return f"{'Risk-adjusted rate' if spec.risk_adjustment is not None else 'Rate'}{unit}"


# ------------------------------------------------------------------ indicator view: trend tab


def _spc_block(run: AuditRun, indicator: str, trend: trends.UnitTrend, who: str, key: str) -> None:
    spec = run.results[indicator].spec
    if trend.xmr is None:
        st.info(f"{md(who)}: too few months with patients to chart.")
        return
    kind = st.radio("Chart", ["XmR (Making Data Count)", "Laney p′/u′ (allows for each month's size)"],
                    horizontal=True, key=f"{key}_kind")
    chart = trend.xmr if kind.startswith("XmR") else trend.laney
    st.markdown(_icons(chart), unsafe_allow_html=True)
    st.markdown(f"**{md(trend.sentence)}**" if chart is trend.xmr else md(spc.describe(chart, what=spec.title.lower())))
    state.chart(trend_figures.spc_figure(chart, title=f"{spec.title}: {who}", y_title=_y_title(run, indicator),
                                         multiplier=spec.multiplier), f"{key}_fig")
    if chart.table["short_group_warning"].any():
        st.caption("Fewer than 13 points in a period: its limits are trial limits and will change with more data.")


def view_indicator_trends(run: AuditRun, indicator: str, trust: str | None, loaded: LoadedCatalogue) -> None:
    """The indicator view's "Over time" section: national and trust SPC, CUSUM and VLAD."""
    st.subheader("Over time")
    spec = run.results[indicator].spec
    ctx = run_context(run, loaded)
    national = trend_for(indicator, context=ctx)
    if national is None:
        st.info("This indicator cannot be charted month by month: its extract has no dates for each patient "
                "(or holds counts already added up by trust and period).")
        if state.editing_enabled():  # the fix is the catalogue editor's, in the catalogue's own words
            st.caption("To chart it, give its dataset a date column in the catalogue (date_column).")
        return
    tabs = st.tabs(["National (SPC)", "Selected trust (SPC)", "CUSUM & VLAD (selected trust)", "How to read these"])
    with tabs[0]:
        _spc_block(run, indicator, national, "England (national)", "trend_nat")
    labels = state.trust_label(run.units.frame) if run.units else {}
    with tabs[1]:
        if not trust:
            st.info("Choose a trust in 'Highlight a trust' above to chart it month by month.")
        else:
            months = national.series["month"].to_list()
            rebase = st.selectbox("Rebase (start a new period with its own mean and limits) from", [None, *months],
                                  format_func=lambda m: "no rebasing" if m is None else f"{m:%B %Y}",
                                  key="trend_rebase", help="For a known change in the process, e.g. a merger or "
                                  "a new pathway. Not for a change the chart itself found.")
            unit_trend = trend_for(indicator, "trust", trust, rebase=(rebase,) if rebase else (), with_arl=False,
                                   context=ctx)
            _spc_block(run, indicator, unit_trend, labels.get(trust, trust), "trend_trust")
    with tabs[2]:
        if spec.risk_adjustment is None:
            st.info("CUSUM and VLAD need patient-level outcomes with a case-mix model (risk_adjustment).")
        elif not trust:
            st.info("Choose a trust in 'Highlight a trust' above to monitor its patients one by one.")
        else:
            unit_trend = trend_for(indicator, "trust", trust, context=ctx)
            chart = unit_trend.cusum
            if chart is None:
                st.info("No patients at this trust.")
            else:
                st.markdown(f"**{chart.describe(when=lambda d: f'{d:%d %B %Y}')}**")
                state.chart(trend_figures.cusum_figure(chart, title=f"Risk-adjusted CUSUM: {labels.get(trust, trust)}",
                                                       arl_up=unit_trend.arl_up, arl_down=unit_trend.arl_down),
                            "trend_cusum_fig")
                for arl in (unit_trend.arl_up, unit_trend.arl_down):
                    st.caption(arl.describe(unit_trend.patients_per_year)
                               + f" ({arl.chains} simulated runs; standard error {arl.standard_error:,.0f}).")
                state.chart(trend_figures.vlad_figure(chart, title=f"VLAD: {labels.get(trust, trust)}"),
                            "trend_vlad_fig")
    with tabs[3]:
        st.markdown(HOW_TO_READ)


HOW_TO_READ = """
- **SPC (Making Data Count).** Points are months. The solid line is the mean, the dashed lines the process
  limits (mean ± 2.66 × the average moving range, about 3 standard deviations). A point is a *special
  cause* when it lies beyond a limit, or is part of a run of 7 points on one side of the mean, a trend of
  7 points rising or falling, or 2 of 3 points close to a limit (beyond 2 standard deviations) on one side.
  **Blue** = special cause of improvement, **orange** = of concern, **purple** = neither, **grey** = common
  cause variation (no significant change). The icon is the latest point's.
- **Laney p′/u′.** An XmR chart of a rate weights a month of 5 patients like a month of 500. The p′ (u′)
  chart gives each month limits for its own size, widened by the month-to-month variation beyond chance.
- **CUSUM.** For each patient in date order, the evidence that the odds of the outcome are double (orange,
  above) or half (blue, below) what the case-mix model expects is added up, never below zero. Crossing h
  is a signal; the chart then restarts. h is chosen so that false signals are rare: the caption gives the
  average number of patients between false signals when care is exactly as expected (in-control ARL).
- **VLAD.** Cumulative expected minus observed events: rising = fewer events than expected for these
  patients ("statistical lives saved"), falling = more.
"""


# ------------------------------------------------------------------ trust profile


def trust_trend_line(run: AuditRun, indicator: str, trust: str,
                     loaded: LoadedCatalogue) -> tuple[object, str, str] | None:
    """(sparkline figure, icon, sentence) for the trust profile, or None without monthly data."""
    if not _has_dates(indicator, loaded):
        return None
    ctx = run_context(run, loaded)
    trend = trend_for(indicator, "trust", trust, with_arl=False, context=ctx)
    if trend is None or trend.xmr is None:
        return None
    spec = run.results[indicator].spec
    return (trend_figures.sparkline_figure(trend.xmr, multiplier=spec.multiplier), ICON[trend.xmr.variation],
            trend.sentence)


def show_trust_trend(run: AuditRun, indicator: str, trust: str, loaded: LoadedCatalogue) -> None:
    """In the trust profile: the indicator's SPC sparkline, its variation icon and one sentence."""
    got = trust_trend_line(run, indicator, trust, loaded)
    if got is None:
        return
    fig, icon, sentence = got
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    c1.plotly_chart(fig, key=f"trust_trend_{indicator}", config={"displayModeBar": False, "staticPlot": True})
    c2.markdown(f"{icon} **Over time:** {md(sentence)}", unsafe_allow_html=True)


def _has_dates(indicator: str, loaded: LoadedCatalogue) -> bool:
    spec = next(s for s in loaded.catalogue.indicators if s.id == indicator)
    return loaded.catalogue.datasets[spec.dataset].date_column is not None


# ------------------------------------------------------------------ releases


def store_path(loaded: LoadedCatalogue) -> Path:
    """AUDIT_METRICS_STORE, or releases.sqlite beside the catalogue."""
    return Path(os.environ.get("AUDIT_METRICS_STORE", loaded.path.parent / releases.DEFAULT_STORE))


@st.cache_resource(show_spinner=False, max_entries=4)
def _new_flags(store: str, mtime_ns: int) -> tuple[str, pl.DataFrame] | None:
    del mtime_ns  # cache key: the store file's modification time
    try:
        if releases.list_releases(store).height < 2:
            return None
        diff = releases.diff_releases(store)
    except AuditMetricsError:
        return None
    new = diff.changes.filter(pl.col("comparable"), pl.col("level") == "trust",
                              pl.col("change").is_in(["new alarm", "new alert", "escalated", "reversed"]))
    return f"release {diff.b.release_id} against {diff.a.release_id}", new.select("indicator_id", "unit_code").unique()


def new_flag_keys(loaded: LoadedCatalogue | None) -> tuple[str, pl.DataFrame] | None:
    """(which releases, indicator_id + unit_code of trust flags new in the latest release), or None
    without a store of two releases: the overview's "new since the last release" filter. Pass the
    view's ``loaded`` (None: no catalogue, no store)."""
    if loaded is None:
        return None
    store = store_path(loaded)
    if not store.is_file():
        return None
    return _new_flags(str(store), store.stat().st_mtime_ns)


def release_changes_table(changes: pl.DataFrame, run: AuditRun) -> pl.DataFrame:
    """Status changes between releases in words: statuses direction-aware ("worse than expected (alarm)"
    for "alarm_high") and values on the indicator's scale ("12.3% -> 15.0%", or observed/expected for a
    risk-adjusted indicator), not the store's fractions and machine names."""
    def value(v: object, spec: object) -> str:
        if v is None or v != v:
            return "-"
        if spec is None:
            return f"{v:.3g}"
        if spec.risk_adjustment is not None:
            return f"{v:.2f}"
        return f"{v * spec.multiplier:.1f}%" if spec.multiplier == 100 else f"{v * spec.multiplier:.3g}"

    rows = []
    for r in changes.iter_rows(named=True):
        result = run.results.get(r["indicator_id"])
        spec = result.spec if result is not None else None
        better = spec.better if spec is not None else None
        scale = "O/E " if spec is not None and spec.risk_adjustment is not None else ""
        rows.append({"indicator_title": r["indicator_title"], "level": r["level"], "unit_code": r["unit_code"],
                     "unit_name": r["unit_name"], "period": r["period"],
                     "status_a": views.status_words(r["status_a"], better),
                     "status_b": views.status_words(r["status_b"], better), "change": r["change"],
                     "values": f"{scale}{value(r['value_a'], spec)} → {value(r['value_b'], spec)}",
                     "note": r["note"] or ""})
    return pl.DataFrame(rows, schema=dict.fromkeys(RELEASE_COLUMNS, pl.String))


RELEASE_COLUMNS = {"indicator_title": "Indicator", "level": "Level", "unit_code": "Code", "unit_name": "Unit",
                   "period": "Period", "status_a": "Before", "status_b": "After", "change": "Change",
                   "values": "Value before → after", "note": "Note"}


def view_releases(run: AuditRun, loaded: LoadedCatalogue) -> None:
    st.header("Releases: what changed")
    store = store_path(loaded)
    st.markdown("Each `audit-metrics run --record` is kept as a release (catalogue and extract sha256s, options, "
                "every result). Compare two to see new alerts and alarms, flags that resolved, and indicators "
                "whose definition or method changed, so that a change of method is never read as a change in care.")
    if not store.exists():
        st.info(f"No results store yet at {code(store.name)}. Record a release with "
                "`audit-metrics run --out results.csv --record` (or set AUDIT_METRICS_STORE).")
        return
    try:
        listed = releases.list_releases(store)
    except AuditMetricsError as exc:
        st.error(md(exc))
        return
    if listed.height < 2:
        st.info("The store holds one release: record another run to compare with.")
        st.dataframe(listed, hide_index=True, placeholder="", key="rel_list")
        return
    names = {r["release_id"]: f"Release {r['release_id']}" + (f" ({r['label']})" if r["label"] else "")
             + f", {releases.readable_time(r['recorded_at'])}" for r in listed.iter_rows(named=True)}
    ids = listed["release_id"].to_list()
    c1, c2 = st.columns(2)
    a = c1.selectbox("Compare release", ids, index=state.qp_index("compare", [str(i) for i in ids], str(ids[-2])),
                     format_func=names.get, key="rel_a")
    b = c2.selectbox("with release", ids, index=state.qp_index("to", [str(i) for i in ids], str(ids[-1])),
                     format_func=names.get, key="rel_b")
    state.set_qp(compare=str(a), to=str(b))
    try:
        diff = releases.diff_releases(store, a, b)
    except AuditMetricsError as exc:
        st.error(md(exc))
        return
    st.markdown("\n".join(f"- {md(line)}" for line in diff.summary_lines()))
    new = diff.changes.filter(pl.col("comparable"), pl.col("change").is_in(["new alarm", "new alert", "escalated",
                                                                            "reversed"]))
    st.subheader(f"New since release {md(diff.a.release_id)}: {new.height} flag{'s' if new.height != 1 else ''}")
    st.dataframe(release_changes_table(new, run), hide_index=True, placeholder="", key="rel_new", column_config=RELEASE_COLUMNS)
    with st.expander(f"Every status change ({diff.changes.height})", expanded=diff.changes.height <= 30):
        st.dataframe(release_changes_table(diff.changes, run), hide_index=True, placeholder="", key="rel_changes",
                     column_config=RELEASE_COLUMNS)
    if diff.indicators.height:
        st.warning(f"{diff.indicators.height} indicator(s) added, removed or changed in definition or method: "
                   "status changes on them are marked 'not comparable'.")
        st.dataframe(diff.indicators, hide_index=True, placeholder="", key="rel_indicators")

    def workbook() -> bytes:
        buf = io.BytesIO()
        export.write_workbook(buf, diff.sheets())
        return buf.getvalue()

    d1, d2 = st.columns(2)
    stem = export.download_name("changes", diff.a.name, "to", diff.b.name, on=date.today(), suffix="x").removesuffix(".x")
    d1.download_button("Download changes (CSV)", lambda: export.to_csv_bytes(diff.changes), f"{stem}.csv",
                       "text/csv", key="rel_csv")
    d2.download_button("Download changes (Excel, with indicators and provenance)", workbook, f"{stem}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="rel_xlsx")
    with st.expander("All releases in the store"):
        st.dataframe(listed, hide_index=True, placeholder="", key="rel_list")
