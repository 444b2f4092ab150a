"""Overview: the tartan rug of trusts by indicators, with counts against chance."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics import export, rug, sharing, views
from audit_metrics.catalogue import LoadedCatalogue, SuppressionSpec
from audit_metrics.outliers import coverage_label
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui import rug_view, trends
from audit_metrics.ui.state import (
    goto,
    keep,
    link_values,
    restore,
    set_qp,
    trust_label,
)
from audit_metrics.ui.text import markdown_table, md
from audit_metrics.ui.trust import flagged_results

NOBODY = "(all trusts: the overview)"
RUG, LIST = "Rug of every result", "List of flagged results"
# The rug keeps its size (squares and labels legible) and scrolls sideways in its box where the column is
# narrower (760 px on the sample: at 1024 px with the sidebar open, or on a phone; ui/rug_view.py). Streamlit
# cannot read the screen's width on the server, so the browser decides when to show the note that points a phone
# to the list
_NARROW_RUG = """<style>
.am-narrow-note {display: none;}
@media (max-width: 640px) {
  .am-narrow-note {display: block;}
}
</style><div class="am-narrow-note"><strong>This screen is narrow:</strong> swipe sideways along the rug, or \
show the <strong>List of flagged results</strong> instead (above).</div>"""
_SCROLL_TABLE = "<style>.st-key-ov_counts {overflow-x: auto;} .st-key-ov_counts table {min-width: 560px;}</style>"
_SHOW_HELP = ("The rug needs a wide screen (every trust by every indicator). The list holds the same flagged "
              "results, most urgent first, and suits a phone, a keyboard or a screen reader.")


def _from_link(key: str, name: str, options: dict[str, str], default: str) -> None:
    """A choice from the opened link (``name=`` one of ``options``' keys, the last where repeated; see
    ``state.link_values``), else ``default``; before its widget is drawn."""
    if key not in st.session_state:
        picked = link_values(name, list(options))
        st.session_state[key] = options[picked[-1]] if picked else default


def _find(run: AuditRun, table: pl.DataFrame) -> tuple[str, str] | None:
    """The landing's question, "which trust or alliance?", remembered in the URL (trust= / alliance=).

    Returns (level, code) of the choice, or None for the overview of everyone.
    """
    labels = trust_label(run.units.frame) if run.units else {}
    level = views.group_level(run.units.groups if run.units else ())
    trusts = [f"trust:{c}" for c in sorted(labels, key=lambda c: labels[c])]
    groups = ([f"{level}:{c}" for c in sorted(table.filter(pl.col("level") == level)["unit_code"].drop_nulls()
                                                .unique().to_list())] if level else [])
    # units with no data for any indicator (the reference geography's ambulance trusts) come last, named so: typing
    # "East Midlands" and Enter picked East Midlands Ambulance Service, not the Cancer Alliance (a review)
    rows = table.filter(pl.col("level") == "trust")
    without = set(views.units_without_data(rows).to_list()) if "not_assessed_reason" in rows.columns else set()
    empty = {t for t in trusts if t.split(":", 1)[1] in without}
    options = [NOBODY, *[t for t in trusts if t not in empty], *groups, *[t for t in trusts if t in empty]]
    if st.session_state.get("ov_find") not in options:
        wanted = (f"trust:{st.query_params.get('trust')}" if st.query_params.get("trust") else
                  f"{level}:{st.query_params.get('alliance')}" if level and st.query_params.get("alliance") else None)
        st.session_state["ov_find"] = wanted if wanted in options else NOBODY
    where = f"trust or {views.level_label(level)}" if level else "trust"

    def label(option: str) -> str:
        if option == NOBODY:
            return option
        kind, code = option.split(":", 1)
        if kind != "trust":
            return f"{views.level_label(kind)}: {code}"
        return labels.get(code, code) + (" (no data)" if option in empty else "")

    choice = st.selectbox(f"Which {md(where)}? (type to search)", options, format_func=label, key="ov_find",
                          help="Its flagged results first, in words; the link is shareable.")
    keep("ov_find")  # an alliance chosen here narrows the outlier list too
    if choice == NOBODY:
        set_qp(trust=None, alliance=None)  # a reload (or a shared link) shows the overview, as chosen
        return None
    kind, code = choice.split(":", 1)
    set_qp(**({"trust": code} if kind == "trust" else {"alliance": code}))
    return kind, code


_RUG_COLUMNS = ("indicator_id", "unit_code", "status", "value", "adjusted_value", "observed", "denominator",
                "expected", "lower_alert", "upper_alert", "status_label")


def _grid_key(grid: pl.DataFrame) -> tuple[int, int]:
    """The rug's content, as a cache key (a hash of every column the figure draws or hovers)."""
    columns = [c for c in _RUG_COLUMNS if c in grid.columns]
    return grid.height, int(grid.select(pl.col(columns).cast(pl.String)).hash_rows(seed=0).sum())


@st.cache_resource(show_spinner=False, max_entries=16)
def _rug(key: tuple[int, int], _grid: pl.DataFrame, *, title: str, group: str | None,
         risk_adjusted: tuple[str, ...], highlight: str | None, coverage: tuple[tuple[str, float], ...],
         footnote: tuple[str, ...], watermark: str | None, alarm: str) -> rug.Rug:
    """The rug, built once per content and choice: its hover text for every cell (about 3,500 on the sample)
    took about a second on each rerun of the Overview (measured, notes/dashui.md). Shared read-only."""
    del key  # cache key only
    return rug.rug_svg(_grid, title=title, group=group, risk_adjusted=risk_adjusted, highlight=highlight,
                       coverage=dict(coverage), footnote=footnote, watermark=watermark, alarm=alarm)


def _limit_words(run: AuditRun, indicators: Collection[str] | None = None) -> tuple[str, str]:
    """The inner (alert) and outer (alarm) limits in words for text about several indicators at once (every one,
    or ``indicators``): '95%' and '99.8%' when all of them use those, else 'inner (alert)' and 'outer (alarm)'
    (the catalogue can set other limits, per indicator too). Read from the run's options: the limits used."""
    results = [r for k, r in run.results.items() if indicators is None or k in indicators]
    inner = {r.options.limits[0] for r in results}
    outer = {r.options.limits[-1] for r in results}
    return (f"{coverage_label(inner.pop())}%" if len(inner) == 1 else "inner (alert)",
            f"{coverage_label(outer.pop())}%" if len(outer) == 1 else "outer (alarm)")


def _rug_footnote(run: AuditRun, period: str, indicators: Collection[str]) -> tuple[str, ...]:
    """Where the rug's results come from and how each square was judged (the picture's footnote), for the
    ``indicators`` it shows: a rug narrowed to one site names that site's audits and files, not the whole run's."""
    shown = [r for k, r in run.results.items() if k in indicators]
    audits = sorted({r.spec.audit for r in shown if r.spec.audit})
    files = sorted({Path(run.datasets[r.spec.dataset].file).name for r in shown if r.spec.dataset in run.datasets})
    limits = sorted({c for r in shown for c in r.options.limits})
    return (f"Source: {', '.join(audits) or 'audit data'} ({', '.join(files)}); {period}.",
            "Each square: a trust's result against its indicator's funnel limits ("
            + " and ".join(f"{coverage_label(c)}%" for c in limits) + "), risk-adjusted where the indicator is; "
            "method and overdispersion per indicator in the Indicator view.")


def _open_flagged() -> None:
    """A flagged result chosen in the list (keyboard or touch) picks its indicator and trust in "Open a result"."""
    picked = st.session_state.get("ov_open_flagged")
    if picked:
        st.session_state["ov_open_indicator"], st.session_state["ov_open_trust"] = picked.split("|", 1)


def _open_listed(event: object, listed: pl.DataFrame) -> None:
    """A row selected in the flagged list (a tap) picks it in "Open a result" (drawn later in this run)."""
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows and rows[0] < listed.height:
        picked = f"{listed['indicator_id'][rows[0]]}|{listed['unit_code'][rows[0]]}"
        if picked != st.session_state.get("ov_listed"):
            st.session_state["ov_listed"] = picked
            st.session_state["ov_open_indicator"], st.session_state["ov_open_trust"] = picked.split("|", 1)


def _open_clicked() -> None:
    """A clicked flagged square picks its indicator and trust in "Open a result" below (the rug's ``open``
    trigger, ui/rug_view.py). The page sends them: only a pair that is one of the rug's flagged results is taken."""
    picked = rug_view.picked()
    if picked is None or f"{picked[0]}|{picked[1]}" not in st.session_state.get("ov_flagged_keys", ()):
        return
    st.session_state["ov_clicked"] = picked
    st.session_state["ov_open_indicator"], st.session_state["ov_open_trust"] = picked


def view_overview(run: AuditRun, table: pl.DataFrame, loaded: LoadedCatalogue | None = None) -> None:
    st.header("How do trusts compare across cancer audits?")
    alert, alarm = _limit_words(run)
    found = _find(run, table)
    if found is not None and loaded is not None:
        kind, code = found
        flagged_results(run, table, loaded, code=code, level=kind, key="ov")
        if kind == "trust":
            st.button("Open this trust's full profile", on_click=goto, args=("Trust profile",),
                      kwargs={"trust": code}, key="ov_go_profile")
        else:
            st.button(f"Open this {md(views.level_label(kind))}'s view", on_click=goto, args=("Cancer Alliance",),
                      kwargs={"alliance": code}, key="ov_go_alliance")
        st.divider()
        st.subheader("All trusts")
    st.markdown("Each square is one trust's result on one indicator (columns grouped by tumour site, rows by "
                f"{views.level_label(views.group_level(run.units.groups if run.units else ()) or 'trust').lower()}), "
                "compared with what would be expected for a trust of its size (and, where risk-adjusted, its "
                "patients). **Worse than expected: orange, filled ▲ (above expected) or ▼ (below). Better: blue, "
                "outline △ or ▽. Grey: as expected; light grey: not assessed.** Darker = beyond the "
                f"{alarm}{' (alarm)' if alarm[0].isdigit() else ''} limit. Hover for the value, counts and "
                "expected range; click a flagged square (one with a mark) to "
                "open it below, and open any result with the boxes under 'Open a result'. **On a phone, or "
                "without a mouse, show the list of flagged results instead** (just below).")
    trusts = table.filter(pl.col("level") == "trust")
    headline = views.headline_label(run)
    periods = [p for p in views.single_periods(run) if p != headline]
    sites = sorted(trusts["tumour_site"].unique().to_list())
    # the choices made on the last visit, when another view was opened since (a link's own choices win)
    restore("ov_show", lambda v: v in (RUG, LIST))
    restore("ov_period", lambda v: v in (headline, *periods))
    restore("ov_sites", lambda v: isinstance(v, list) and bool(v) and set(v) <= set(sites))
    _from_link("ov_show", "show", {"rug": RUG, "list": LIST}, RUG)
    _from_link("ov_period", "period", {p: p for p in periods}, headline)
    if "ov_sites" not in st.session_state:  # site=Lung&site=Bowel; none given: every site
        st.session_state["ov_sites"] = link_values("site", sites) or sites
    show = st.radio("Show the results as", [RUG, LIST], horizontal=True, key="ov_show", help=_SHOW_HELP)
    period = st.selectbox("Period", [headline, *periods], key="ov_period",
                          help="Single periods are shown for indicators the catalogue reports by period.")
    if period != headline:
        trusts = pl.concat([r.table.filter(pl.col("level") == "trust", pl.col("period") == period)
                            for r in run.results.values()], how="diagonal_relaxed")
        if trusts.height == 0:
            st.warning("No indicator is reported for this period alone.")
            return
    groups = [g for g in (run.units.groups if run.units else ()) if g in trusts.columns]
    columns = st.columns(1 + max(len(groups), 1))
    chosen_sites = columns[0].multiselect("Tumour site", sites, key="ov_sites")
    # the rug's choices in the URL (show=list, period=, site= repeated; the defaults left out), so a link or
    # Back opens the same rug or list
    set_qp(show="list" if show == LIST else None, period=None if period == headline else period,
           site=None if set(chosen_sites) == set(sites) else chosen_sites)
    grid = trusts.filter(pl.col("tumour_site").is_in(chosen_sites))
    # what the rug is narrowed to, named in its title and its download's file name (a copy shown in a meeting
    # says whose results it holds: an alliance's rug is not the national one)
    scope: list[str] = []
    narrowing = ["ov_show", "ov_period", "ov_sites"]
    for column, group in zip(columns[1:], groups, strict=False):
        # keys kept for the two usual levels, so shared links and tests stay stable
        key = {"cancer_alliance": "ov_alliance", "region": "ov_region"}.get(group, f"ov_group_{group}")
        choices = ["All", *sorted(trusts[group].drop_nulls().unique().to_list())]
        restore(key, lambda v, choices=choices: v in choices)
        chosen = column.selectbox(md(views.level_label(group)), choices, key=key)
        narrowing.append(key)
        if chosen != "All":
            grid = grid.filter(pl.col(group) == chosen)
            scope.append(str(chosen))
    keep(*narrowing)  # for the outlier list, and for coming back here from another view
    if not groups:
        columns[1].caption("No Cancer Alliance or region is defined for these units, so there is nothing to filter "
                           "by; see the Cancer Alliance view for how to add one.")
    new = trends.new_flag_keys(loaded)  # flags new since the last recorded release (see the Releases view)
    if new is not None and st.checkbox(f"Only flags new since the last release ({md(new[0])}: {new[1].height})",
                                       key="ov_new"):
        grid = grid.join(new[1], on=["indicator_id", "unit_code"], how="semi")
        new_only = [f"only flags new since {new[0]}"]
    else:
        new_only = []
    scope += ([] if set(chosen_sites) == set(sites) else [", ".join(chosen_sites)]) + new_only
    # units with no data for any indicator shown (the reference geography lists every NHS trust; a cancer table has
    # no ambulance or mental-health trusts): rows of nothing, left out and counted (a real-data review)
    empty = views.units_without_data(grid)
    if empty.len() and empty.len() < grid["unit_code"].n_unique():
        grid = grid.filter(~pl.col("unit_code").is_in(empty.implode()))
        st.caption(f"{empty.len()} unit{'s' if empty.len() != 1 else ''} in the units file "
                   f"{'have' if empty.len() != 1 else 'has'} no data for any indicator shown and "
                   f"{'are' if empty.len() != 1 else 'is'} left out of the rug and the list.")
    if grid.height == 0:
        st.warning("No results match these filters.")
        return
    family = views.group_level(groups)
    risk_adjusted = [k for k, r in run.results.items() if r.spec.risk_adjustment is not None]
    # lower-case only the tool's own wording ("all periods pooled"), never a period's name ("July 2012 to ...")
    own = period == headline and period.startswith(("All periods", "Latest period"))
    title = (f"Outlier status by trust and indicator ({period[0].lower() + period[1:] if own else period})"
             + "".join(f"; {s}" for s in scope))
    highlight = found[1] if found and found[0] == "trust" else None
    rug_coverage = tuple(sorted((k, r.options.limits[0]) for k, r in run.results.items()))
    # what the screen shows is suppressed like the exports (#12 defect 3): a count of 1-7 is never in a hover
    rule = loaded.catalogue.defaults.suppression if loaded is not None else SuppressionSpec()
    shown_grid = export.suppress(grid, rule)
    shown_indicators = frozenset(shown_grid["indicator_id"].to_list())
    alert, alarm = _limit_words(run, shown_indicators)  # the rug's legend and the counts below: what they show
    listed = views.flagged_cells(shown_grid, risk_adjusted=risk_adjusted, coverage=dict(rug_coverage), group=family)
    if show == RUG:
        st.html(_NARROW_RUG)  # static: no data-derived text (HTML for the CSS, not Markdown)
        if highlight is not None and highlight not in set(shown_grid["unit_code"].to_list()):
            # the chosen trust narrowed away by the filters: say so, rather than lose its outline without a word
            name = (trust_label(run.units.frame) if run.units else {}).get(highlight, highlight)
            st.caption(f"{md(name)} is not among the trusts shown, so no row is outlined for it: widen the "
                       "filters above to see it.")
        synthetic = bool(st.session_state.get("synthetic_data"))
        st.session_state["ov_flagged_keys"] = frozenset(f"{i}|{u}" for i, u in zip(
            listed["indicator_id"], listed["unit_code"], strict=True))
        built = _rug(_grid_key(shown_grid), shown_grid, title=title, group=family,
                     risk_adjusted=tuple(risk_adjusted), highlight=highlight, coverage=rug_coverage,
                     footnote=_rug_footnote(run, period, shown_indicators), watermark="Synthetic data" if synthetic else None,
                     alarm=alarm)
        with st.container(key="tartan"):
            rug_view.show(built, on_open=_open_clicked)
        # the picture for a meeting: the same SVG (footnote and, on the sample, watermark included), made on click
        st.download_button("Download the rug (SVG image)", data=lambda: built.svg.encode(), key="ov_rug_download",
                           file_name=sharing.chart_file_name("rug", *scope, period) + ".svg", mime="image/svg+xml",
                           on_click="ignore", icon=":material/download:")
    else:
        st.markdown(f"**{listed.height} flagged result{'s' if listed.height != 1 else ''}**, most urgent first "
                    "(worse alarms, worse alerts, then better). Tap a row to pick it under 'Open a result' below.")
        event = st.dataframe(listed.drop("indicator_id", "unit_code"), hide_index=True, placeholder="", key="ov_list",
                             on_select="rerun", selection_mode="single-row",
                             column_config={"Status": st.column_config.TextColumn(width="small"),
                                            "Trust": st.column_config.TextColumn(width="medium"),
                                            "Indicator": st.column_config.TextColumn(width="large")})
        _open_listed(event, listed)
    coverage = {k: r.options.limits for k, r in run.results.items()}
    counts = views.chance_counts(grid, coverage, [k for k, r in run.results.items() if r.spec.worse_side])
    inner = counts["expected_inner"].sum()
    outer = counts["expected_outer"].drop_nulls().sum()
    shown = counts.select(
        pl.col("indicator_title").alias("Indicator"), pl.col("tumour_site").alias("Tumour site"),
        pl.col("assessed").alias("Trusts assessed"),
        pl.col("outside_inner").alias(f"Outside {alert}"),
        pl.col("expected_inner").round(1).alias(f"By chance ({alert})"),
        pl.col("outside_outer").alias(f"Outside {alarm}"),
        pl.col("expected_outer").round(1).alias(f"By chance ({alarm})"))
    st.subheader("Alerts and alarms per indicator")
    per = max(counts.height, 1)
    st.caption(f"'Outside {alert}' counts alerts and alarms together (an alarm is outside both limits). Among the "
               f"trusts shown, chance alone would put about {inner / per:.1f} results per indicator outside the "
               f"{alert} limits ({inner:.0f} across all {counts.height} indicators) and about {outer / per:.2f} per "
               f"indicator outside {alarm} ({outer:.1f} in all), allowing for real but modest differences between "
               "trusts (overdispersion). Compare each row's counts with its own expected numbers.")
    st.html(_SCROLL_TABLE)  # static CSS: a table wider than a phone scrolls sideways instead of being cut off
    with st.container(key="ov_counts"):
        st.markdown(markdown_table(shown))  # a plain table: the Overview's first screen draws no data grid
    st.subheader("Open a result")
    if st.session_state.get("ov_clicked"):
        st.caption("Picked by clicking a square in the rug; change it here or click another.")
    labels = trust_label(run.units.frame) if run.units else {}
    flagged = {f"{r['indicator_id']}|{r['unit_code']}": f"{r['Status']}: {r['Trust']}, {r['Indicator']}"
               for r in listed.iter_rows(named=True)}
    st.selectbox("A flagged result (type to search)", list(flagged), index=None, format_func=flagged.get,
                 key="ov_open_flagged", on_change=_open_flagged,
                 placeholder=f"Choose one of the {len(flagged)} flagged results, most urgent first",
                 help="Every flagged square of the rug, without a mouse; or choose any indicator and trust below.")
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
