"""Indicator catalogue: plain-English definitions and, in editing mode, the editor."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from audit_metrics import views
from audit_metrics.catalogue import LoadedCatalogue, check_catalogue, is_aggregate
from audit_metrics.pipeline import AuditRun, run_audit
from audit_metrics.ui import auth
from audit_metrics.ui.state import editing_enabled, fmt


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
        st.info(auth.editing_off_message())
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
        try:
            backup = _save_atomically(path, text)
        except OSError as exc:  # e.g. the container's read-only catalogue mount
            st.error(f"Could not save {path}: {exc.strerror or exc}. Download the edited file instead and "
                     "put it in the catalogue folder.")
        else:
            st.success(f"Saved. The previous version is kept as {backup.name}.")
            st.session_state.pop("cat_changes", None)
    c2.download_button("Download the edited file", text.encode("utf-8"), file_name="indicators.yaml",
                       mime="text/yaml", key="cat_download")
