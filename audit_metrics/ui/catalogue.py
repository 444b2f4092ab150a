"""Indicator catalogue: plain-English definitions and, in editing mode, the editor."""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics import views
from audit_metrics.catalogue import (
    LoadedCatalogue,
    catalogue_version,
    check_catalogue,
    is_aggregate,
    save_catalogue_text,
)
from audit_metrics.exceptions import CatalogueConflict, CatalogueSaveError, Problem
from audit_metrics.pipeline import AuditRun, run_audit
from audit_metrics.ui import auth
from audit_metrics.ui.state import editing_enabled, fmt
from audit_metrics.ui.text import code, md


def _start_editing(path: Path) -> None:
    """Remember the version this session's edit starts from, and put its text in the editor."""
    version, text = catalogue_version(path)
    st.session_state["cat_base"] = (version, text)
    st.session_state["cat_text"] = text
    st.session_state["cat_draft"] = text
    st.session_state.pop("cat_conflict", None)
    st.session_state.pop("cat_changes", None)


def _keep_draft() -> None:
    """Keep the editor's text outside the widget, so leaving the view does not lose it."""
    st.session_state["cat_draft"] = st.session_state.get("cat_text", "")


def unsaved_edits() -> bool:
    """Whether this session has catalogue edits that are neither saved nor discarded."""
    base = st.session_state.get("cat_base")
    draft = st.session_state.get("cat_draft")
    return base is not None and draft is not None and draft != base[1]


# The browser's own "Leave site?" prompt while edits are unsaved (#12 build 10): a page script registers a
# beforeunload handler while this session holds unsaved edits and removes it once they are saved or discarded.
# Both scripts are constants: nothing from the catalogue, the session or the URL is ever put into them.
LEAVE_GUARD_ON = """<script>
(() => {
  if (window.__amUnsavedGuard) return;
  // browsers show their own wording; a non-empty returnValue is what older Chromium needs to ask at all
  window.__amUnsavedGuard = (event) => { event.preventDefault(); event.returnValue = "unsaved"; return "unsaved"; };
  window.addEventListener("beforeunload", window.__amUnsavedGuard);
})();
</script>"""
LEAVE_GUARD_OFF = """<script>
(() => {
  if (!window.__amUnsavedGuard) return;
  window.removeEventListener("beforeunload", window.__amUnsavedGuard);
  window.__amUnsavedGuard = null;
})();
</script>"""


def leave_guard() -> None:
    """The prompt before closing or reloading the tab: on while there are unsaved edits, off once there are none.

    In the sidebar (a script-only element there takes no room in the view). A session that never had unsaved
    edits gets neither script; one that had them gets the 'off' script once, then nothing.
    """
    armed = unsaved_edits()
    if armed or st.session_state.get("cat_guard_on"):
        st.sidebar.html(LEAVE_GUARD_ON if armed else LEAVE_GUARD_OFF, unsafe_allow_javascript=True)
    st.session_state["cat_guard_on"] = armed


def unsaved_notice() -> None:
    """A reminder on every other view while the catalogue editor holds unsaved edits (and the browser's prompt
    before the tab is closed or reloaded)."""
    if unsaved_edits():
        st.sidebar.warning("You have unsaved edits to the indicator catalogue. They are kept for this session: "
                           "open the Indicator catalogue view to save or download them.")
    leave_guard()


def _diff(theirs: str, yours: str, limit: int = 400) -> str:
    lines = list(difflib.unified_diff(theirs.splitlines(), yours.splitlines(), "saved by someone else",
                                      "your edit", lineterm="", n=2))
    return "\n".join(lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else []))


EXCERPT_MARK = "▶"


def problem_excerpts(text: str, problems: list[Problem], *, file: str, context: int = 2,
                     limit: int = 20, width: int = 200) -> list[tuple[Problem, str]]:
    """Each problem located on a line of ``text`` (the catalogue named ``file``), with that line and
    ``context`` lines either side, numbered as the file is and the problem's line marked; at most ``limit``.

    The text is returned as it is, to be shown as code (``st.code`` draws it as text: nothing from the
    file is read as Markdown). Problems in other files, or without a line, are left out.

    >>> print(problem_excerpts("a: 1\\nb: 2\\nc: 3\\n", [Problem("x.yaml", "bad", 2)], file="x.yaml", context=1)[0][1])
        1 │ a: 1
    ▶   2 │ b: 2
        3 │ c: 3
    """
    lines = text.splitlines() or [""]
    digits = len(str(len(lines)))
    out = []
    for problem in problems:
        if problem.line is None or problem.file != file or len(out) >= limit:
            continue
        at = min(max(problem.line, 1), len(lines))
        shown = []
        for n in range(max(at - context, 1), min(at + context, len(lines)) + 1):
            line = lines[n - 1] if len(lines[n - 1]) <= width else lines[n - 1][:width] + " …"
            shown.append(f"{EXCERPT_MARK if n == at else ' '} {n:>{digits + 2}} │ {line}".rstrip())
        out.append((problem, "\n".join(shown)))
    return out


def _show_problems(text: str, problems: list[Problem], file: str) -> None:
    """The problems as a list (file:line), then each located one in the catalogue's own numbered lines."""
    st.error(f"{len(problems)} problem(s) - the catalogue cannot be saved until they are fixed:")
    st.code("\n".join(str(p) for p in problems), language=None)
    excerpts = problem_excerpts(text, problems, file=file)
    if not excerpts:
        return
    st.markdown(f"**Where they are** (line numbers as in the editor's text; {EXCERPT_MARK} marks the line):")
    for problem, excerpt in excerpts:
        hint = f" Hint: {md(problem.hint)}." if problem.hint else ""
        st.markdown(f"Line {problem.line}: {md(problem.message)}.{hint}")
        st.code(excerpt, language=None)
    located = sum(1 for p in problems if p.line is not None and p.file == file)
    if located > len(excerpts):
        st.caption(f"The first {len(excerpts)} of {located} are shown; fix these and the rest will be listed.")


def _method_words(run: AuditRun, indicator_id: str) -> str | None:
    """The run's own plain-English statement of an indicator's limits and overdispersion handling at trust level
    (e.g. "exact binomial limits (interpolated, mid-P); random-effects tau2 ..."), not the catalogue's codes."""
    result = run.results.get(indicator_id)
    if result is None or "method" not in result.table.columns:
        return None
    said = result.table.filter(pl.col("level") == "trust")["method"].drop_nulls()
    return str(said[0]) if said.len() else None


def view_catalogue(run: AuditRun, loaded: LoadedCatalogue) -> None:
    st.header("Indicator catalogue")
    st.markdown(f"{len(loaded.catalogue.indicators)} indicators defined in {code(loaded.path.name)} "
                f"(catalogue version {md(loaded.catalogue.version)}, sha256 {loaded.digest[:12]}...).")
    for spec in loaded.catalogue.indicators:
        opts = loaded.options(spec)
        with st.expander(f"{md(spec.tumour_site)}: {md(spec.title)}"):
            st.markdown(md(spec.description))
            lines = [f"- **Audit:** {md(spec.audit or '-')}", f"- **Id:** {code(spec.id)}; data: {code(spec.dataset)}"]
            if not is_aggregate(spec, loaded.catalogue.datasets):
                lines.append(f"- **Who is counted (cohort):** {code(spec.cohort or 'everyone')}")
                lines.append(f"- **Event (numerator):** {code(spec.numerator)}")
            else:  # the columns the indicator reads, each named (an O/E table has no denominator)
                read = [(w, c) for w, c in (("observed" if spec.expected else "numerator", spec.numerator),
                                             ("denominator", spec.denominator),
                                             ("expected", spec.expected), ("person-time", spec.person_time)) if c]
                lines.append(f"- **{' / '.join(w for w, _ in read).capitalize()} columns:** "
                             + " / ".join(code(c) for _, c in read))
            lines.append("- **Lower is better** " if spec.better == "lower" else
                         "- **Higher is better**" if spec.better == "higher" else "- **No better direction**")
            if spec.target is not None:
                standard = (", ".join(f"{md(k)}: {fmt(v, spec.multiplier)}" for k, v in spec.target.items())
                            if isinstance(spec.target, dict) else fmt(spec.target, spec.multiplier))
                lines.append(f"- **Standard (target):** {standard}"
                             + (" (one-sided: only results worse than the standard are flagged)"
                                if spec.worse_side else ""))
            if spec.risk_adjustment:
                lines.append("- **Case-mix adjustment:** " + ", ".join(md(c.name) for c in spec.risk_adjustment.covariates)
                             + f" (missing values: {spec.risk_adjustment.missing})")
            lines.append(f"- **Limits:** {', '.join(f'{c * 100:g}%' for c in opts.limits)}, "
                         f"{md(_method_words(run, spec.id) or opts.limit_method)}; "
                         f"minimum {opts.min_denominator:g} patients")
            st.markdown("\n".join(lines))
    st.subheader("Edit the catalogue")
    try:
        _editor(run, loaded)
    finally:  # after a save or discard in this run, whichever way the editor ended
        leave_guard()


def _editor(run: AuditRun, loaded: LoadedCatalogue) -> None:
    """The editor: the text, its problems or its preview, save, discard and download."""
    if not editing_enabled():
        st.info(auth.editing_off_message())
        return
    path = loaded.path
    if "cat_base" not in st.session_state:
        _start_editing(path)
    base_version, base_text = st.session_state["cat_base"]
    conflict = st.session_state.get("cat_conflict")
    if conflict is not None:
        st.error(md(conflict["message"]) + ". Your edit is still below: download it if you need it, then start "
                 "again from the saved version and make your change there.")
        st.code(_diff(conflict["theirs"], st.session_state.get("cat_text", "")), language="diff")
        st.button("Start again from the saved version", key="cat_restart", on_click=_start_editing, args=(path,))
    if "cat_text" not in st.session_state:  # Streamlit drops a widget's state while its view is not shown
        st.session_state["cat_text"] = st.session_state.get("cat_draft", base_text)
    # YAML's meaning is in its indentation: the editor in a monospaced font (it was proportional)
    st.html("<style>.st-key-cat_text textarea {font-family: 'Source Code Pro', ui-monospace, monospace; "
            "font-size: 0.85rem; line-height: 1.45}</style>")
    text = st.text_area(path.name, height=420, key="cat_text", on_change=_keep_draft)
    st.session_state["cat_draft"] = text
    unsaved = st.empty()  # emptied by a save further down this run
    if text != base_text:
        unsaved.caption("Unsaved edits: kept while this browser session lasts. Save them, or download the edited "
                   "file, before closing the tab.")
    with st.expander("The edited text with line numbers and YAML colours (read-only)"):
        st.code(text, language="yaml", line_numbers=True)
    draft, problems = check_catalogue(text, file=path.name, base_dir=path.parent,
                                      data=st.session_state.get("data_overrides") or None)
    if problems or draft is None:
        _show_problems(text, problems, path.name)
        return
    st.success("The edited catalogue is valid.")
    if text == base_text:
        return
    if st.button("Preview the effect", key="cat_preview"):
        new_run = run_audit(draft, data=st.session_state.get("data_overrides") or None)
        changes = views.status_changes(run.table(), new_run.table())
        st.session_state["cat_changes"] = views.summarise_changes(
            changes, better_before={k: r.spec.better for k, r in run.results.items()},
            better_after={k: r.spec.better for k, r in new_run.results.items()})
    changes = st.session_state.get("cat_changes")
    if changes is not None:
        table, summary = changes
        st.markdown(f"**Flags: {summary}.**")
        st.dataframe(table.sort("indicator_id", "level", "unit_name"), hide_index=True, placeholder="", key="cat_changes_table",
                     column_config={"indicator_id": "Indicator", "level": "Level", "unit_code": "Code",
                                    "unit_name": "Unit", "period": "Period"})
    row = st.container(horizontal=True)  # each button as wide as its words, wrapping on a phone
    if row.button("Save (the previous version is kept)", type="primary", key="cat_save"):
        try:
            backup = save_catalogue_text(path, text, expected_version=base_version)
        except CatalogueConflict as exc:
            st.session_state["cat_conflict"] = {"message": str(exc), "theirs": exc.current_text}
            st.rerun()
        except CatalogueSaveError as exc:  # e.g. a full disk or the container's read-only catalogue mount
            st.error(f"{md(exc)} (with 'Download the edited file' below; then put it in the catalogue folder).")
        else:
            st.session_state["cat_base"] = (hashlib.sha256(text.encode("utf-8")).hexdigest(), text)
            unsaved.empty()
            st.success(f"Saved. The previous version is kept as {md(backup.name)}.")
            st.session_state.pop("cat_changes", None)
    row.download_button("Download the edited file", text.encode("utf-8"), file_name="indicators.yaml",
                       mime="text/yaml", key="cat_download")
    if st.session_state["cat_base"][1] != text:  # not once saved: the edits can be thrown away
        row.button("Discard my edits", key="cat_discard", on_click=_start_editing, args=(path,),
                  help="Back to the saved catalogue (as it is on disk now).")
