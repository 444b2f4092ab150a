"""Trust profile: every indicator for one trust, in sentences."""

from __future__ import annotations

import polars as pl
import streamlit as st

from audit_metrics import export, figures, views
from audit_metrics.catalogue import LoadedCatalogue, is_aggregate
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui import trends
from audit_metrics.ui.inequalities import gap_line, ordered_gaps
from audit_metrics.ui.state import (
    as_text,
    best_by_indicator,
    chart,
    goto,
    qp_index,
    set_qp,
    trust_label,
)
from audit_metrics.ui.text import md


def result_for(run: AuditRun, r: dict) -> views.ResultOnScale:
    """A row on its funnel's scale, compared with the standard where the indicator has one."""
    spec = run.results[r["indicator_id"]].spec
    risk_adjusted = spec.risk_adjustment is not None
    # the row's own standard (a period's, or the pooled periods' weighted average), on the value scale
    standard = None if spec.target is None else r["target"] * ((r.get("rate_scale") or 1.0) if risk_adjusted else 1.0)
    return views.on_scale(r, risk_adjusted=risk_adjusted, standard=standard,
                          coverage=run.results[r["indicator_id"]].options.limits[0], worse_side=spec.worse_side)


_ACRONYMS = {"asa": "ASA", "imd": "IMD", "ecog": "ECOG", "who": "WHO", "bmi": "BMI", "tnm": "TNM", "nhs": "NHS",
             "sact": "SACT", "cns": "CNS", "id": "ID"}


def covariate_label(column: str, loaded: LoadedCatalogue | None = None) -> str:
    """A case-mix column in words: the catalogue's label where a breakdown names it ("IMD quintile"), else
    its words with the usual acronyms in capitals ("asa_grade" -> "ASA grade", not "asa grade")."""
    for b in loaded.catalogue.breakdowns if loaded is not None else ():
        if b.column == column and b.label:
            return b.label
    return " ".join(_ACRONYMS.get(w.lower(), w) for w in column.split("_") if w)


def _icon(status: str, better: str) -> str:
    colour, symbol, _ = figures.status_style(status, better)
    icon = {"triangle-up": "▲", "triangle-down": "▼", "circle": "●", "circle-open": "○"}[symbol]
    return f"<span style='color:{colour};font-size:1.2em' aria-hidden='true'>{icon}</span>"


def flagged_results(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue, *, code: str,
                    level: str = "trust", key: str = "land") -> None:
    """The landing's answer for one trust (or one alliance, region...): its flagged results, worse
    first, each as one sentence with its counts, its expected range and the standard where there is
    one, a link to the funnel with it highlighted, and its direction over time where data are dated."""
    rule = loaded.catalogue.defaults.suppression
    rows = export.suppress(table.filter(pl.col("level") == level, pl.col("unit_code") == code), rule)
    if rows.height == 0:
        st.warning("No results for this choice.")
        return
    name = rows["unit_name"][0] or code
    flagged = views.by_severity(rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED)))
    worse = flagged.filter(pl.col("direction") == "worse").height
    better = flagged.filter(pl.col("direction") == "better").height
    other = flagged.height - worse - better
    withheld = rows["status"].null_count()
    not_assessed = rows.filter(pl.col("status").cast(pl.String) == "not_assessed").height
    within = rows.height - flagged.height - withheld - not_assessed
    unit = "trust" if level == "trust" else views.level_label(level).lower()
    st.subheader(as_text(f"{name} ({code})" if name != code else code))
    st.markdown(f"**{flagged.height} of {rows.height} results flagged:** {worse} worse than expected, {better} "
                f"better" + (f", {other} higher or lower on an indicator without a better direction" if other else "")
                + f". {within} within the range expected from chance"
                + (f", {not_assessed} not assessed" if not_assessed else "")
                + (f", {withheld} not shown because of small numbers" if withheld else "") + ".")
    for r in flagged.iter_rows(named=True):
        spec = run.results[r["indicator_id"]].spec
        result = result_for(run, r)
        sentence = views.result_sentence(result, title=as_text(spec.title), symbol=md(rule.symbol),
                                         suppressed_range=(rule.min_count, rule.max_count))
        with st.container(border=True):
            st.markdown(f"{_icon(str(r['status']), r['better'])} **{as_text(spec.tumour_site)}**: {sentence}",
                        unsafe_allow_html=True)
            expected_range = views.range_sentence(result, unit=unit)
            if expected_range:
                st.caption(expected_range)
            if level == "trust":
                line = trends.trust_trend_line(run, r["indicator_id"], code, loaded)
                if line is not None:
                    st.markdown(f"{line[1]} **Over time:** {md(line[2])}", unsafe_allow_html=True)
            st.button(f"Open its funnel, this {unit} highlighted", key=f"{key}_funnel_{r['indicator_id']}",
                      on_click=goto, args=("Indicator",),
                      kwargs={"indicator": r["indicator_id"], **({"trust": code} if level == "trust" else {})})
    if not flagged.height:
        st.success(f"No result of this {unit} is outside its expected range.")


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
    st.header(md(info["unit_name"]))
    groups = " · ".join(md(info[g]) for g in run.units.groups if info.get(g))
    st.markdown(f"{groups}")
    rule = loaded.catalogue.defaults.suppression
    # small counts: shown as the symbol, with what would reveal them; the flagged results first, worse first
    rows = views.by_severity(export.suppress(rows, rule))
    flagged = rows.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    worse = flagged.filter(pl.col("direction") == "worse").height
    better = flagged.filter(pl.col("direction") == "better").height
    withheld = rows["status"].null_count()
    st.markdown(f"**In short:** of {rows.height} indicator{'' if rows.height == 1 else 's'}, {worse} {'is' if worse == 1 else 'are'} worse than expected and {better} better "
                f"than expected (alert or alarm); the rest are within the range expected from chance or not assessed"
                + (f" ({withheld} not shown because of small numbers)." if withheld else "."))
    asc = run.case_ascertainment().filter(pl.col("unit_code") == code)
    ascertainment = asc["case_ascertainment"][0] if asc.height else None
    if ascertainment is not None and ascertainment == ascertainment and ascertainment < 0.8:
        st.warning(f"Case ascertainment is low: the audit holds {ascertainment:.0%} of the cases expected from "
                   "hospital activity data. Results may not represent all of this trust's patients.")
    limits = {i: tuple(r.options.limits) for i, r in run.results.items()}
    chart(figures.slice_figure(rows, title="Each indicator as a slice through its funnel", limits=limits),
          "trust_slice", alt=f"{rows.height} indicators for {info['unit_name']}: how far each is from expected. "
                             "Each is given in words below.")
    hidden = rows.filter(pl.col("suppressed") & (pl.col("status").cast(pl.String) != "not_assessed").fill_null(True)).height
    shown = {limits[i] for i in rows["indicator_id"]}
    bands = (f"the {views.limits_phrase(next(iter(shown)))}" if len(shown) == 1 else
             "each indicator's own alert and alarm limits (they differ between indicators)")
    st.caption("Each marker is how far this trust is from expected, in standard deviations; the shaded bands "
               f"are {bands}. ▲ above / ▼ below expected; orange worse, blue better."
               + (f" {hidden} {'result with a count' if hidden == 1 else 'results with counts'} of "
                  f"{rule.min_count}-{rule.max_count} {'is' if hidden == 1 else 'are'} not drawn." if hidden else ""))
    st.subheader("Indicator by indicator")
    gaps = ordered_gaps(run_key, run, loaded)  # one inequality line per indicator where the data allow it
    for r in rows.iter_rows(named=True):
        spec = run.results[r["indicator_id"]].spec
        result = result_for(run, r)
        sentence = views.result_sentence(result, title=md(spec.title), symbol=md(rule.symbol),
                                         suppressed_range=(rule.min_count, rule.max_count))
        quality = []
        if ascertainment is not None and ascertainment == ascertainment and not is_aggregate(spec, loaded.catalogue.datasets):
            quality.append(f"case ascertainment {ascertainment:.0%}")
        completes = {k.removeprefix("complete_"): v for k, v in r.items()
                     if k.startswith("complete_") and v is not None and spec.risk_adjustment is not None
                     and k.removeprefix("complete_") in {c.name for c in spec.risk_adjustment.covariates}}
        if completes:
            worst = min(completes, key=completes.get)
            quality.append(f"case-mix completeness lowest for {md(covariate_label(worst, loaded))} "
                           f"({completes[worst]:.0%})")
            if completes[worst] < 0.7:
                quality.append("**low completeness: the flag may reflect missing data rather than care**")
        best = best_by_indicator(run_key, table).get(r["indicator_id"], [])
        learn = ", ".join(md(b) for b in best if b != r["unit_name"])
        status = "not_assessed" if r["status"] is None else str(r["status"])  # None: withheld
        colour, symbol, _ = figures.status_style(status, r["better"])
        icon = {"triangle-up": "▲", "triangle-down": "▼", "circle": "●", "circle-open": "○"}[symbol]
        with st.container(border=True):
            st.markdown(f"<span style='color:{colour};font-size:1.2em'>{icon}</span> **{md(spec.tumour_site)} - "
                        f"{md(spec.title)}**: {md(r['status_label'])}", unsafe_allow_html=True)
            st.markdown(sentence)
            trends.show_trust_trend(run, r["indicator_id"], code, loaded)  # SPC sparkline and sentence, if dated
            expected_range = views.range_sentence(result)
            notes = ([expected_range] if expected_range else []) + (
                [f"Data quality: {'; '.join(quality)}."] if quality else [])
            if notes:
                st.caption(" ".join(notes))
            if learn:
                st.caption(f"Doing best (to learn from): {learn}.")
            gap = gap_line(gaps, r["indicator_id"], "trust", code, title=spec.title, multiplier=spec.multiplier)
            if gap:
                st.caption(f"Inequality: {md(gap)}")
            st.button("Open its funnel, this trust highlighted", key=f"trust_funnel_{r['indicator_id']}",
                      on_click=goto, args=("Indicator",), kwargs={"indicator": r["indicator_id"], "trust": code})
