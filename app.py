"""Cancer audit variation dashboard (Streamlit). Asks and shows; all statistics live in audit_metrics.

Run:  streamlit run app.py                      (viewing)
      streamlit run app.py -- --edit            (auditors: catalogue editing switched on)
      AUDIT_METRICS_EDIT=1 streamlit run app.py (the same, via the environment)
      AUDIT_METRICS_CATALOGUE=path/to/indicators.yaml streamlit run app.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics import export, figures, narrative, views
from audit_metrics.catalogue import (
    LoadedCatalogue,
    check_catalogue,
    is_aggregate,
    load_catalogue,
    parse_catalogue,
)
from audit_metrics.exceptions import AuditMetricsError, CatalogueError, ExtractError
from audit_metrics.pipeline import AuditRun, run_audit

ROOT = Path(__file__).resolve().parent
VIEWS = ("Overview", "Indicator", "Trust profile", "Cancer Alliance", "Outliers & export",
         "Indicator catalogue", "Data")
LEVELS = {"Trusts": "trust", "Cancer Alliances": "cancer_alliance", "Regions": "region"}
MAX_UPLOAD_MB = 200
SAMPLE_NOTE = ("**Synthetic sample data.** Every trust, Cancer Alliance, region and patient here is "
               "fictional (codes start with Z); the numbers illustrate the method only.")

st.set_page_config(page_title="Cancer audit variation", page_icon=":bar_chart:", layout="wide")


# ------------------------------------------------------------------ settings and computation


def catalogue_path() -> Path:
    argv = sys.argv[1:]
    if "--indicators" in argv and argv.index("--indicators") + 1 < len(argv):
        return Path(argv[argv.index("--indicators") + 1]).resolve()
    return Path(os.environ.get("AUDIT_METRICS_CATALOGUE", ROOT / "indicators.yaml")).resolve()


def editing_enabled() -> bool:
    return "--edit" in sys.argv[1:] or os.environ.get("AUDIT_METRICS_EDIT", "") in {"1", "true", "yes"}


def _file_identity(paths: list[Path]) -> str:
    """Cache key for the extracts: path, size and modification time (cheap on every rerun; the
    loader still records each file's sha256 for provenance)."""
    h = hashlib.sha256()
    for p in paths:
        stat = p.stat() if p.exists() else None
        h.update(f"{p}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode())
    return h.hexdigest()


@st.cache_resource(show_spinner="Computing funnel limits and outlier status...", max_entries=8)
def compute(path: str, text_digest: str, data: tuple[tuple[str, str], ...], data_digest: str) -> tuple[
        LoadedCatalogue, AuditRun]:
    """Load and compute everything. Keyed on the catalogue text and the extracts' bytes."""
    del text_digest, data_digest  # cache keys only
    loaded = load_catalogue(path, data=dict(data))
    return loaded, run_audit(loaded, data=dict(data))


@st.cache_data(show_spinner=False, max_entries=8)
def pooled_table(run_key: str, _run: AuditRun) -> pl.DataFrame:
    del run_key
    return views.pooled(_run)


@st.cache_data(show_spinner=False, max_entries=8)
def best_by_indicator(run_key: str, _table: pl.DataFrame) -> dict[str, list[str]]:
    del run_key
    return views.best_performers_all(_table, n=3)


def load() -> tuple[LoadedCatalogue, AuditRun, str] | None:
    path = catalogue_path()
    overrides: dict[str, str] = st.session_state.setdefault("data_overrides", {})
    try:
        text = path.read_text(encoding="utf-8")
        draft = parse_catalogue(text, file=str(path), base_dir=path.parent)
        files = [draft.dataset_path(n, overrides) for n in draft.catalogue.datasets]
        files.append(path.parent / draft.catalogue.units.file)
        key = hashlib.sha256(text.encode()).hexdigest()
        data_key = _file_identity(files)
        loaded, run = compute(str(path), key, tuple(sorted(overrides.items())), data_key)
    except CatalogueError as exc:
        st.error(f"The indicator catalogue {path.name} has {len(exc.problems)} problem(s):")
        st.code("\n".join(str(p) for p in exc.problems), language=None)
        return None
    except (ExtractError, AuditMetricsError) as exc:
        st.error(f"The data could not be used: {exc}")
        if overrides and st.button("Go back to the bundled sample data"):
            st.session_state["data_overrides"] = {}
            st.rerun()
        return None
    return loaded, run, key + data_key


# ------------------------------------------------------------------ small helpers


def qp_index(name: str, options: list[str], default: str | None = None) -> int:
    value = st.query_params.get(name)
    if value in options:
        return options.index(value)
    if default in options:
        return options.index(default)
    return 0


def set_qp(**values: str | None) -> None:
    for k, v in values.items():
        if v is None:
            st.query_params.pop(k, None)
        else:
            st.query_params[k] = v


def goto(view: str, **params: str) -> None:
    """Button callback: switch view (and selections) before the next run draws the widgets."""
    st.session_state["view"] = view
    for k, v in params.items():
        st.session_state[f"pending_{k}"] = v


def fmt(value: float | None, multiplier: float) -> str:
    return narrative.format_value(value, multiplier)


def display_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Round only for display; the results keep full precision.

    Percent indicators are shown in %; risk-adjusted limits on the adjusted-rate scale (like the
    funnel), with ``value`` left as the observed/expected ratio.
    """
    pct = pl.when(pl.col("multiplier") == 100).then(100.0).otherwise(1.0)
    risk_adjusted = pl.col("adjusted_value").is_not_null()
    scale = pl.when(risk_adjusted).then(pl.col("rate_scale")).otherwise(1.0)
    limits = [c for c in ("lower_alert", "upper_alert", "lower_alarm", "upper_alarm") if c in frame.columns]
    out = frame.with_columns(
        *[(pl.col(c) * scale * pct).round(2) for c in limits],
        *[(pl.col(c) * pct).round(2) for c in ("adjusted_value", "crude_value") if c in frame.columns],
        pl.when(risk_adjusted).then(pl.col("value").round(3)).otherwise((pl.col("value") * pct).round(2)).alias("value"),
        *[pl.col(c).round(3) for c in ("z", "expected") if c in frame.columns],
        *[pl.col(c).round(4) for c in ("p_value", "q_value") if c in frame.columns],
    )
    return out.with_columns(pl.col(pl.Enum).cast(pl.String))


def chart(fig, key: str) -> None:
    fmt_choice = st.session_state.get("chart_format", "png")
    st.plotly_chart(fig, key=key, config={"displaylogo": False,
                                          "toImageButtonOptions": {"format": fmt_choice, "scale": 2}})


def trust_label(units: pl.DataFrame) -> dict[str, str]:
    return {r["unit_code"]: f"{r['unit_name']} ({r['unit_code']})" for r in units.iter_rows(named=True)}


# ------------------------------------------------------------------ views


def view_overview(run: AuditRun, table: pl.DataFrame) -> None:
    st.header("How do trusts compare across cancer audits?")
    st.markdown("Each square is one trust's result on one indicator, compared with what would be expected "
                "for a trust of its size (and, where risk-adjusted, its patients). **Orange ▲/▼ = worse "
                "than expected, blue = better, grey = as expected**; darker = beyond the 99.8% (alarm) "
                "limit. Hover for details.")
    trusts = table.filter(pl.col("level") == "trust")
    periods = sorted({p for r in run.results.values() for p in r.table["period"].unique().to_list()
                      if p != r.pooled_period})
    period = st.selectbox("Period", ["All periods pooled", *periods], key="ov_period",
                          help="Single periods are shown for indicators the catalogue reports by period.")
    if period != "All periods pooled":
        trusts = pl.concat([r.table.filter(pl.col("level") == "trust", pl.col("period") == period)
                            for r in run.results.values()], how="diagonal_relaxed")
        if trusts.height == 0:
            st.warning("No indicator is reported for this period alone.")
            return
    c1, c2, c3 = st.columns(3)
    sites = sorted(trusts["tumour_site"].unique().to_list())
    chosen_sites = c1.multiselect("Tumour site", sites, default=sites, key="ov_sites")
    alliances = ["All", *sorted(trusts["cancer_alliance"].drop_nulls().unique().to_list())]
    alliance = c2.selectbox("Cancer Alliance", alliances, key="ov_alliance")
    regions = ["All", *sorted(trusts["region"].drop_nulls().unique().to_list())]
    region = c3.selectbox("Region", regions, key="ov_region")
    grid = trusts.filter(pl.col("tumour_site").is_in(chosen_sites))
    if alliance != "All":
        grid = grid.filter(pl.col("cancer_alliance") == alliance)
    if region != "All":
        grid = grid.filter(pl.col("region") == region)
    if grid.height == 0:
        st.warning("No results match these filters.")
        return
    grid = grid.sort("cancer_alliance", "unit_name")
    chart(figures.tartan_figure(grid.select("unit_name", "indicator_title", "status", "better", "status_label"),
                                title=f"Outlier status by trust and indicator ({period.lower() if period.startswith('All') else period})"),
          "tartan")
    counts = (grid.group_by("indicator_id", "indicator_title", "tumour_site")
              .agg((pl.col("status").cast(pl.String).str.starts_with("alert")).sum().alias("alerts"),
                   (pl.col("status").cast(pl.String).str.starts_with("alarm")).sum().alias("alarms"),
                   (pl.col("status").cast(pl.String) != "not_assessed").sum().alias("trusts assessed"),
                   pl.col("expected_false_alerts").first().round(1).alias("alerts expected by chance (all trusts)"))
              .sort("tumour_site", "indicator_title"))
    st.subheader("Alerts and alarms per indicator")
    st.caption("With about 140 trusts, roughly 7 results per indicator fall outside the 95% limits by chance "
               "alone (and about 0.3 outside 99.8%): compare the counts with that.")
    st.dataframe(counts, hide_index=True, key="ov_counts")
    st.subheader("Open a result")
    labels = trust_label(run.units.frame) if run.units else {}
    o1, o2 = st.columns(2)
    ind = o1.selectbox("Indicator", grid["indicator_id"].unique(maintain_order=True).to_list(),
                       format_func=lambda i: run.results[i].spec.title, key="ov_open_indicator")
    tr = o2.selectbox("Trust", grid["unit_code"].unique(maintain_order=True).to_list(),
                      format_func=lambda c: labels.get(c, c), key="ov_open_trust")
    b1, b2 = st.columns(2)
    b1.button("Open this indicator's funnel", on_click=goto, args=("Indicator",),
              kwargs={"indicator": ind, "trust": tr}, key="ov_go_funnel")
    b2.button("Open this trust's profile", on_click=goto, args=("Trust profile",), kwargs={"trust": tr},
              key="ov_go_trust")


def _method_panel(run: AuditRun, indicator: str, level: str, period: str) -> None:
    result = run.results[indicator]
    od = result.overdispersion.get((level, period))
    opts = result.options
    with st.expander("How this was calculated (method)", expanded=False):
        st.markdown(f"- **Limits:** {result.table.filter(pl.col('level') == level)['method'][0]}.")
        st.markdown(f"- **Alert / alarm:** outside the {opts.limits[0]:.1%} / "
                    f"{opts.limits[-1]:.1%} limits (two-sided; HQIP convention: about 2 and 3 standard deviations).")
        if od is not None and od.method != "none":
            phi = "not estimable" if od.phi != od.phi else f"{od.phi:.3g}"
            test = "" if od.p_value != od.p_value else (
                f"; test of no overdispersion: chi-squared {od.chi2:.1f} on {od.df} df, p = {od.p_value:.3g}")
            st.markdown(f"- **Overdispersion ({od.method}, {od.robust} {od.trim:.0%}):** phi = {phi}, "
                        f"tau2 = {od.tau2:.3g}, {od.n_units} units{test}. **{od.reason[0].upper() + od.reason[1:]}.**")
        else:
            st.markdown("- **Overdispersion:** not adjusted (none requested for this indicator).")
        st.markdown(f"- **Minimum size:** units with fewer than {opts.min_denominator:g} patients are shown but "
                    "not assessed.")
        st.markdown(f"- **Multiple comparisons:** with {round(result.table.filter(pl.col('level') == level)['expected_false_alerts'][0] / (1 - opts.limits[0]))} "
                    "units assessed, the expected number of chance alerts is "
                    f"{result.table.filter(pl.col('level') == level)['expected_false_alerts'][0]:.1f}. "
                    "The table's q-value is the Benjamini-Hochberg false-discovery rate.")
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
    level_name = c2.radio("Compare", list(LEVELS), horizontal=True, key="ind_level")
    level = LEVELS[level_name]
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
    highlight = h1.selectbox("Highlight a trust (and its Cancer Alliance's trusts)", trust_codes,
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
            alliance = rows.filter(pl.col("unit_code") == highlight)["cancer_alliance"]
            highlight_codes = [highlight]
            if alliance.len() and alliance[0] is not None:
                highlight_codes += rows.filter(pl.col("cancer_alliance") == alliance[0],
                                               pl.col("unit_code") != highlight)["unit_code"].to_list()
        else:
            parent = table.filter(pl.col("unit_code") == highlight, pl.col("level") == "trust")
            col = "cancer_alliance" if level == "cancer_alliance" else "region"
            if parent.height and col in parent.columns:
                highlight_codes = [parent[col][0]]
    n = rows.filter(pl.col("status").cast(pl.String) != "not_assessed").height
    flagged = rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    what = "risk-adjusted rate" if risk_adjusted else "value"
    shape = ("its {what} is plotted against its number of patients. The funnel shows the range expected "
             "from chance alone (dashed: 95%, solid: 99.8%)" if kind == "Funnel plot" else
             "they are ranked by {what}, each with the range (grey bar, 95%) expected for a unit of its "
             "size; ranking helps find a unit, it is not a league table").format(what=what)
    st.markdown(f"**What this shows:** each point is one of {n} {level_name.lower()} assessed; {shape}. "
                f"{flagged.height} fall outside the 95% limits; about "
                f"{n * (1 - result.options.limits[0]):.0f} would by chance alone.")
    if kind == "Funnel plot":
        fig = figures.funnel_figure(rows, curve, title=f"{spec.title} ({period})", better=spec.better,
                                    statistic=spec.statistic, risk_adjusted=risk_adjusted,
                                    multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=highlight_codes, label_highlight="Selected trust / its alliance")
    else:
        fig = figures.caterpillar_figure(rows, title=f"{spec.title} ({period})", better=spec.better,
                                         risk_adjusted=risk_adjusted, multiplier=spec.multiplier,
                                         highlight=highlight_codes[:1])
    chart(fig, "ind_chart_fig")
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


def view_trust(run: AuditRun, table: pl.DataFrame, run_key: str, loaded: LoadedCatalogue) -> None:
    labels = trust_label(run.units.frame)
    codes = sorted(labels, key=lambda c: labels[c])
    pending = st.session_state.pop("pending_trust", None)
    if pending in codes:
        st.session_state["trust_code"] = pending
    elif "trust_code" not in st.session_state:
        st.session_state["trust_code"] = codes[qp_index("trust", codes)]
    code = st.selectbox("Trust", codes, format_func=lambda c: labels[c], key="trust_code")
    set_qp(trust=code)
    rows = table.filter(pl.col("level") == "trust", pl.col("unit_code") == code).sort("tumour_site", "indicator_title")
    if rows.height == 0:
        st.warning("No results for this trust.")
        return
    info = run.units.frame.filter(pl.col("unit_code") == code).row(0, named=True)
    st.header(info["unit_name"])
    groups = " · ".join(str(info[g]) for g in run.units.groups if info.get(g))
    st.markdown(f"{groups}")
    flagged = rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    worse = flagged.filter(pl.col("direction") == "worse").height
    better = flagged.filter(pl.col("direction") == "better").height
    st.markdown(f"**In short:** of {rows.height} indicators, {worse} are worse than expected and {better} better "
                f"than expected (alert or alarm); the rest are within the range expected from chance or not assessed.")
    asc = run.case_ascertainment().filter(pl.col("unit_code") == code)
    ascertainment = asc["case_ascertainment"][0] if asc.height else None
    if ascertainment is not None and ascertainment == ascertainment and ascertainment < 0.8:
        st.warning(f"Case ascertainment is low: the audit holds {ascertainment:.0%} of the cases expected from "
                   "hospital activity data. Results may not represent all of this trust's patients.")
    chart(figures.slice_figure(rows, title="Each indicator as a slice through its funnel"), "trust_slice")
    st.caption("Each marker is how far this trust is from expected, in standard deviations; the shaded bands "
               "are the 95% and 99.8% limits. ▲ above / ▼ below expected; orange worse, blue better.")
    st.subheader("Indicator by indicator")
    for r in rows.iter_rows(named=True):
        spec = run.results[r["indicator_id"]].spec
        risk_adjusted = spec.risk_adjustment is not None
        sentence = narrative.result_sentence(r, title=spec.title, risk_adjusted=risk_adjusted)
        quality = []
        if ascertainment is not None and ascertainment == ascertainment and not is_aggregate(spec, loaded.catalogue.datasets):
            quality.append(f"case ascertainment {ascertainment:.0%}")
        completes = {k.removeprefix("complete_"): v for k, v in r.items()
                     if k.startswith("complete_") and v is not None and spec.risk_adjustment is not None
                     and k.removeprefix("complete_") in {c.name for c in spec.risk_adjustment.covariates}}
        if completes:
            worst = min(completes, key=completes.get)
            quality.append(f"case-mix completeness lowest for {worst.replace('_', ' ')} ({completes[worst]:.0%})")
            if completes[worst] < 0.7:
                quality.append("**low completeness: the flag may reflect missing data rather than care**")
        best = best_by_indicator(run_key, table).get(r["indicator_id"], [])
        learn = ", ".join(b for b in best if b != r["unit_name"])
        colour, symbol, _ = figures.status_style(str(r["status"]), r["better"])
        icon = {"triangle-up": "▲", "triangle-down": "▼", "circle": "●", "circle-open": "○"}[symbol]
        with st.container(border=True):
            st.markdown(f"<span style='color:{colour};font-size:1.2em'>{icon}</span> **{spec.tumour_site} - "
                        f"{spec.title}**: {r['status_label']}", unsafe_allow_html=True)
            st.markdown(sentence)
            low, high = r["lower_alert"], r["upper_alert"]
            scale = (r["rate_scale"] or 1.0) if risk_adjusted else 1.0
            if low is not None and r["status"] != "not_assessed":
                st.caption(f"Expected range (95%) for this trust: {fmt(low * scale, spec.multiplier)} to "
                           f"{fmt(high * scale, spec.multiplier)}." + (f" Data quality: {'; '.join(quality)}." if quality else ""))
            if learn:
                st.caption(f"Doing best (to learn from): {learn}.")


def view_alliance(run: AuditRun, table: pl.DataFrame) -> None:
    alliances = sorted(table.filter(pl.col("level") == "cancer_alliance")["unit_code"].unique().to_list())
    pending = st.session_state.pop("pending_alliance", None)
    if pending in alliances:
        st.session_state["alliance"] = pending
    elif "alliance" not in st.session_state:
        st.session_state["alliance"] = alliances[qp_index("alliance", alliances)]
    alliance = st.selectbox("Cancer Alliance", alliances, key="alliance")
    set_qp(alliance=alliance)
    members = table.filter(pl.col("level") == "trust", pl.col("cancer_alliance") == alliance)["unit_code"].unique().to_list()
    st.header(alliance)
    ids = list(run.results)
    indicator = st.selectbox("Indicator", ids, format_func=lambda i: f"{run.results[i].spec.tumour_site}: {run.results[i].spec.title}",
                             key="all_indicator")
    result = run.results[indicator]
    spec = result.spec
    pooled = result.pooled_period
    ra = spec.risk_adjustment is not None
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**The alliance's {len(members)} trusts (circled) against all trusts**")
        rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == pooled)
        curve = result.curves.filter(pl.col("level") == "trust", pl.col("period") == pooled)
        chart(figures.funnel_figure(rows, curve, title="Trusts", better=spec.better, statistic=spec.statistic,
                                    risk_adjusted=ra, multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=members, label_highlight="This alliance's trusts"), "all_trusts")
    with c2:
        st.markdown("**The alliance as a whole, among all Cancer Alliances**")
        rows = result.table.filter(pl.col("level") == "cancer_alliance", pl.col("period") == pooled)
        curve = result.curves.filter(pl.col("level") == "cancer_alliance", pl.col("period") == pooled)
        chart(figures.funnel_figure(rows, curve, title="Cancer Alliances", better=spec.better, statistic=spec.statistic,
                                    risk_adjusted=ra, multiplier=spec.multiplier, coverage=result.options.limits,
                                    highlight=[alliance], label_highlight="This alliance"), "all_alliances")
    st.subheader("Where would improvement help most people?")
    st.markdown("Observed minus expected events for each of the alliance's trusts on every indicator, signed so "
                "that a positive number is patients who would have had the better outcome had the trust matched "
                "the expected rate (for its case-mix, where adjusted). Largest first.")
    excess = views.excess_events(table, units=members)
    st.dataframe(excess.with_columns(pl.col("expected", "excess_events").round(1), pl.col("status").cast(pl.String)),
                 hide_index=True, key="all_excess")


def view_outliers(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue) -> None:
    st.header("Outlier list")
    st.markdown("Results outside their funnel limits, for QI follow-up. Download as CSV or Excel "
                "(with a methods and provenance sheet). Small counts are suppressed in downloads.")
    trusts = table.filter(pl.col("level") == "trust")
    c1, c2, c3, c4 = st.columns(4)
    alliances = c1.multiselect("Cancer Alliance", sorted(trusts["cancer_alliance"].drop_nulls().unique().to_list()),
                               key="out_alliance")
    sites = c2.multiselect("Tumour site", sorted(trusts["tumour_site"].unique().to_list()), key="out_sites")
    levels = c3.multiselect("Level", ["alarm", "alert"], default=["alarm", "alert"], key="out_levels")
    directions = c4.multiselect("Direction", ["worse", "better", "higher", "lower"],
                                default=["worse", "better", "higher", "lower"], key="out_directions")
    out = views.outlier_list(table, levels=levels, directions=directions, alliances=alliances, tumour_sites=sites)
    st.markdown(f"**{out.height} flagged results** match.")
    shown = display_table(out).select("tumour_site", "indicator_title", "unit_name", "cancer_alliance",
                                      "observed", "denominator", "value", "adjusted_value", "status_label", "z", "p_value")
    st.dataframe(shown, hide_index=True, key="out_table")
    rule = loaded.catalogue.defaults.suppression
    filters = {"alliances": alliances, "tumour_sites": sites, "levels": levels, "directions": directions}

    def safe() -> pl.DataFrame:
        return export.suppress(out.drop("direction"), rule)

    def excel() -> bytes:  # built when clicked, so the provenance time is the download time
        prov = views.provenance(run, loaded, filters=filters,
                                suppression=f"counts {rule.min_count}-{rule.max_count} shown as '{rule.symbol}'")
        return export.to_excel_bytes(safe(), prov)

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", lambda: export.to_csv_bytes(safe()), file_name=f"outliers_{stamp}.csv",
                       mime="text/csv", key="out_csv")
    d2.download_button("Download Excel", excel, file_name=f"outliers_{stamp}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="out_xlsx")


def _save_atomically(path: Path, text: str) -> Path:
    """Keep the previous version beside the file, then replace the file in one step."""
    backup = path.with_name(f"{path.name}.bak.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}")
    backup.write_bytes(path.read_bytes())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".indicators.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return backup


def view_catalogue(run: AuditRun, loaded: LoadedCatalogue) -> None:
    st.header("Indicator catalogue")
    st.markdown(f"{len(loaded.catalogue.indicators)} indicators defined in `{loaded.path.name}` "
                f"(catalogue version {loaded.catalogue.version}, sha256 {loaded.digest[:12]}...).")
    for spec in loaded.catalogue.indicators:
        opts = loaded.options(spec)
        with st.expander(f"{spec.tumour_site}: {spec.title}"):
            st.markdown(spec.description or "")
            lines = [f"- **Audit:** {spec.audit or '-'}", f"- **Id:** `{spec.id}`; data: `{spec.dataset}`"]
            if not is_aggregate(spec, loaded.catalogue.datasets):
                lines.append(f"- **Who is counted (cohort):** `{spec.cohort or 'everyone'}`")
                lines.append(f"- **Event (numerator):** `{spec.numerator}`")
            else:
                lines.append(f"- **Numerator / denominator columns:** `{spec.numerator}` / `{spec.denominator}`")
            lines.append("- **Lower is better** " if spec.better == "lower" else
                         "- **Higher is better**" if spec.better == "higher" else "- **No better direction**")
            if spec.target is not None:
                lines.append(f"- **Standard (target):** {fmt(spec.target, spec.multiplier)}")
            if spec.risk_adjustment:
                lines.append("- **Case-mix adjustment:** " + ", ".join(c.name for c in spec.risk_adjustment.covariates)
                             + f" (missing values: {spec.risk_adjustment.missing})")
            lines.append(f"- **Limits:** {opts.limit_method}, {', '.join(f'{c:.1%}' for c in opts.limits)}; "
                         f"overdispersion {opts.overdispersion}; minimum {opts.min_denominator:g} patients")
            st.markdown("\n".join(lines))
    st.subheader("Edit the catalogue")
    if not editing_enabled():
        st.info("Editing is switched off on this dashboard, so its viewers cannot change it. Auditors start "
                "an editing copy with `streamlit run app.py -- --edit` (or `AUDIT_METRICS_EDIT=1`).")
        return
    path = loaded.path
    text = st.text_area("indicators.yaml", value=path.read_text(encoding="utf-8"), height=420, key="cat_text")
    draft, problems = check_catalogue(text, file=path.name, base_dir=path.parent,
                                      data=st.session_state.get("data_overrides") or None)
    if problems or draft is None:
        st.error(f"{len(problems)} problem(s) - the catalogue cannot be saved until they are fixed:")
        st.code("\n".join(str(p) for p in problems), language=None)
        return
    st.success("The edited catalogue is valid.")
    if text == path.read_text(encoding="utf-8"):
        return
    if st.button("Preview the effect", key="cat_preview"):
        new_run = run_audit(draft, data=st.session_state.get("data_overrides") or None)
        changes = views.status_changes(run.table(), new_run.table())
        st.session_state["cat_changes"] = changes
    changes = st.session_state.get("cat_changes")
    if changes is not None:
        st.markdown(f"**{changes.height} results would change status.**")
        st.dataframe(changes, hide_index=True, key="cat_changes_table")
    c1, c2 = st.columns(2)
    if c1.button("Save (the previous version is kept)", type="primary", key="cat_save"):
        backup = _save_atomically(path, text)
        st.success(f"Saved. The previous version is kept as {backup.name}.")
        st.session_state.pop("cat_changes", None)
    c2.download_button("Download the edited file", text.encode("utf-8"), file_name="indicators.yaml",
                       mime="text/yaml", key="cat_download")


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


# ------------------------------------------------------------------ page


def main() -> None:
    started = time.perf_counter()
    if "view" not in st.session_state:
        st.session_state["view"] = VIEWS[qp_index("view", list(VIEWS))]
    with st.sidebar:
        st.title("Cancer audit variation")
        view = st.radio("View", VIEWS, key="view")
        st.selectbox("Chart download format", ["png", "svg"], key="chart_format",
                     help="The camera icon above each chart downloads it in this format.")
    set_qp(view=view)
    loaded_run = load()
    if loaded_run is None:
        return
    loaded, run, run_key = loaded_run
    overrides = st.session_state.get("data_overrides") or {}
    if any((ROOT / "sample_data") in loaded.dataset_path(name, overrides).parents
           for name in loaded.catalogue.datasets):  # any synthetic data in use: say so on every page
        st.info(SAMPLE_NOTE)
    table = pooled_table(run_key, run)
    if view == "Overview":
        view_overview(run, table)
    elif view == "Indicator":
        view_indicator(run, table)
    elif view == "Trust profile":
        view_trust(run, table, run_key, loaded)
    elif view == "Cancer Alliance":
        view_alliance(run, table)
    elif view == "Outliers & export":
        view_outliers(run, table, loaded)
    elif view == "Indicator catalogue":
        view_catalogue(run, loaded)
    else:
        view_data(run, loaded)
    st.sidebar.caption(f"Rendered in {time.perf_counter() - started:.2f} s")


main()
