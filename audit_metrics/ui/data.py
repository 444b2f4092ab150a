"""Data: row accounting per extract and cohort, and uploads."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

import polars as pl
import streamlit as st

from audit_metrics import io, sharing
from audit_metrics.catalogue import LoadedCatalogue, is_aggregate
from audit_metrics.exceptions import AuditMetricsError, CatalogueError, ExtractError
from audit_metrics.pipeline import AuditRun
from audit_metrics.ui import uploads
from audit_metrics.ui.state import (
    MAX_UPLOAD_MB,
    catalogue_now,
    catalogue_path,
    computed,
    dataset_schema_of,
    editing_enabled,
)
from audit_metrics.ui.text import md

MAX_SHOWN = 20
MAX_NAME = 100  # characters of an uploaded file's name shown in a table cell
# Problems that mean "the catalogue uses this column and the data lack it" (catalogue check and loader); any
# other problem naming a column (a duplicate name, a header on another row, a wrong type) is not one.
_MISSING = [re.compile(p) for p in (
    r"no unit column '([^']+)'",
    r"missing column '([^']+)'",
    r"unknown (?:covariate )?column '([^']+)'",
    r"column '([^']+)' is not in\b",
    r"_column '([^']+)' is not a column of",
    r"column '([^']+)' is in no dataset",
)]
_MISSING_LIST = re.compile(r"missing column\(s\) (.+?)(?: \(hint: .*)?$")
uploads.remove_stale_folders()  # left by an earlier server (a crash or a killed container): once, at start


def _missing_columns(problems: list[str], filename: str) -> str | None:
    """One line a person can act on first: the columns the catalogue needs that the file lacks."""
    found: list[str] = []
    for line in problems:
        message = line.split("(hint: ", 1)[0]  # hints name columns found or meant, never missing ones
        for pattern in _MISSING:
            found += pattern.findall(message)
        listed = _MISSING_LIST.search(line)
        if listed:
            found += listed.group(1).split(", ")
    names = list(dict.fromkeys(found))
    if not names:
        return None
    return (f"{md(filename)} lacks {len(names)} column(s) the catalogue uses: {', '.join(map(md, names[:30]))}"
            + (" ..." if len(names) > 30 else "") + ". Check it is an extract of this dataset.")


def _problems_with(overrides: dict[str, str], *, shown: dict[str, str]) -> list[str]:
    """Every problem the dashboard would hit with these data, checked before they are used (the
    computation is cached, so a file that passes is ready at once). Server paths are replaced by
    what the person knows: the uploaded file's name and the catalogue's name."""
    path = catalogue_path()
    try:
        computed(path, overrides, catalogue_now(path))
    except CatalogueError as exc:
        lines = [str(p) for p in exc.problems]
    except (ExtractError, AuditMetricsError, OSError) as exc:
        lines = [str(exc)]
    else:
        return []
    replacements = {**shown, **{str(Path(k).parent) + "/": "" for k in shown}, str(path.parent) + "/": ""}
    for old, new in replacements.items():
        lines = [line.replace(old, new) for line in lines]
    return lines


def used_columns(loaded: LoadedCatalogue, name: str) -> list[str]:
    """The columns of dataset ``name`` that the catalogue uses, in the order a person meets them (unit, period,
    units, then each indicator). Columns named inside patient-level conditions (``cohort``, ``numerator``)
    are found by compiling them against the columns of the file in use; a condition that does not compile
    there is left out (its problem is reported when the data are checked)."""
    from audit_metrics.expressions import ExpressionProblem, compile_expression

    cat = loaded.catalogue
    spec = cat.datasets[name]
    names: list[str | None] = [spec.unit_column or cat.units.code, *io.named_columns(spec)]
    if cat.units.from_dataset == name:
        names += [cat.units.code, cat.units.name, *cat.units.groups, cat.units.expected_cases]
    schema: dict[str, pl.DataType] | None = None
    for ind in cat.indicators:
        if ind.dataset != name:
            continue
        conditions = [ind.cohort] + ([] if is_aggregate(ind, cat.datasets) else [ind.numerator])
        for text in filter(None, conditions):
            if schema is None:
                schema = _schema_of(loaded, name)
            try:
                names += compile_expression(text, schema).meta.root_names()
            except (ExpressionProblem, pl.exceptions.PolarsError):  # the data check reports it
                continue
        if is_aggregate(ind, cat.datasets):
            names.append(ind.numerator)
        names += [ind.denominator, ind.expected, ind.person_time]
        if ind.risk_adjustment is not None:
            names += [c.name for c in ind.risk_adjustment.covariates]
        names += [b.column for b in ind.breakdowns or []]
    if cat.breakdowns:  # catalogue-wide breakdowns: in whichever dataset has the column
        schema = _schema_of(loaded, name) if schema is None else schema
        names += [b.column for b in cat.breakdowns if b.column in schema]
    return list(dict.fromkeys(n for n in names if n))


def _schema_of(loaded: LoadedCatalogue, name: str) -> dict[str, pl.DataType]:
    """The column names and types of the dataset's file in use (empty when it cannot be read)."""
    try:
        return dataset_schema_of(loaded.dataset_path(name, st.session_state.get("data_overrides", {})),
                                 loaded.catalogue.datasets[name])
    except (AuditMetricsError, OSError):
        return {}


def expected_shape(loaded: LoadedCatalogue, name: str) -> str:
    """What an upload for dataset ``name`` must look like (Markdown): where the column names are, which sheet,
    the text encoding, and the columns the catalogue uses."""
    spec = loaded.catalogue.datasets[name]
    header = spec.header_row or ((spec.skip_rows + 1) if spec.skip_rows is not None else 1)
    where = (f"the column names on row {header} (rows 1 to {header - 1} are skipped)" if header > 1
             else "the column names on row 1")
    parts = [f"a CSV or Excel file has {where}"]
    if spec.sheet is not None:
        sheet = f"sheet {spec.sheet}" if isinstance(spec.sheet, int) else f"the sheet named {md(spec.sheet)}"
        parts.append(f"a workbook's data are on {sheet}")
    else:
        parts.append("a workbook's data are on its first sheet")
    if spec.encoding and spec.encoding != "utf-8":
        parts.append(f"a CSV is {md(spec.encoding)} text")
    columns = used_columns(loaded, name)
    shown = ", ".join(f"**{md(c)}**" for c in columns[:40]) + (" ..." if len(columns) > 40 else "")
    return (f"The **{md(name)}** dataset's file: " + "; ".join(parts) + "."
            + (f" The catalogue uses its columns {shown} (other columns are ignored)." if columns else "")
            + " A file laid out differently is refused: move its column names to that row, or ask the audit team "
            "to change the catalogue.")


def _session_folder() -> Path:
    """This session's upload folder, deleted with its files when the session ends (see ``uploads``)."""
    owner = st.session_state.get("upload_folder")
    if owner is None or owner.removed or not owner.path.is_dir():
        owner = uploads.UploadFolder()
        st.session_state["upload_folder"] = owner
    return owner.path


def reset_label(*, bundled: bool) -> str:
    """The button that drops this session's uploads, named for what comes back."""
    return "Go back to the bundled sample data" if bundled else "Go back to the catalogue's own files"


def uploaded_name(name: str) -> str:
    """An uploaded file's name as it may be shown in a table cell: its last part only, without control,
    formatting (e.g. right-to-left override) or line-break characters, at most ``MAX_NAME`` characters.
    Hostile input: Markdown is escaped where it is written as Markdown (``md``)."""
    name = re.split(r"[\\/]", str(name))[-1]
    name = "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in name)
    name = " ".join(name.split()) or "file"
    return name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + "…"


def shown_file(file: str, loaded: LoadedCatalogue, overrides: dict[str, str],
               names: dict[str, str] | None = None) -> str:
    """A data file as a viewer should see it: relative to the catalogue's folder, "uploaded: NAME" for this
    session's uploads (``names``: the name each was uploaded under), else its name only; never the server's
    folders (#12 item 9: the Data view showed /srv/.../sample_data/patients.parquet)."""
    path = Path(file)
    if file in overrides.values() or str(path) in overrides.values():
        name = (names or {}).get(file, (names or {}).get(str(path)))
        if name is not None:  # "uploaded: " first, so that the cell never starts as a formula (=, +, -, @)
            return f"uploaded: {uploaded_name(name)}"
        return f"uploaded for this session ({path.suffix.lstrip('.') or 'file'})"
    try:
        return path.resolve().relative_to(loaded.path.parent.resolve()).as_posix()
    except (ValueError, OSError):
        return path.name


def _accounting_table(frame: pl.DataFrame, loaded: LoadedCatalogue, overrides: dict[str, str], *, key: str,
                      first: str) -> None:
    """Row accounting with the file as the viewer knows it and plain column names."""
    names = st.session_state.get("data_upload_names", {})
    files = {f: shown_file(f, loaded, overrides, names) for f in frame["file"].unique().to_list()}
    st.dataframe(frame.with_columns(pl.col("file").replace_strict(files, default=pl.col("file"))),
                 hide_index=True, placeholder="", key=key,
                 column_config={"dataset": first, "file": "File", "reason": "Used, or why excluded",
                                "rows": st.column_config.NumberColumn("Rows", format="%d"),
                                "example_lines": "Example lines"})


def view_data(run: AuditRun, loaded: LoadedCatalogue) -> None:
    st.header("Data")
    overrides: dict[str, str] = st.session_state.setdefault("data_overrides", {})
    st.markdown("Every row read is either used or excluded with a reason (first few line numbers shown).")
    acc = pl.concat([a.to_frame() for a in run.datasets.values()])
    _accounting_table(acc, loaded, overrides, key="data_accounting", first="Dataset")
    for a in run.datasets.values():
        for note in a.notes:
            st.caption(f"{md(a.dataset)}: {md(note)}")
    with st.expander("Rows used by each indicator (cohort accounting)"):
        cohort = pl.concat([r.accounting.to_frame() for r in run.results.values()])
        _accounting_table(cohort, loaded, overrides, key="data_cohort", first="Indicator")
    st.subheader("Use your own extract")
    st.markdown(f"Upload a CSV, Parquet or Excel file (at most {MAX_UPLOAD_MB} MB) in the same shape as the "
                "dataset it replaces. It is kept in a temporary folder for this session only.")
    names = list(loaded.catalogue.datasets)
    name = st.selectbox("Replace dataset", names, key="data_name")
    st.markdown(expected_shape(loaded, name))
    upload = st.file_uploader("Extract", type=["csv", "parquet", "xlsx"], key="data_upload",
                              max_upload_size=MAX_UPLOAD_MB)
    if upload is not None and st.button("Use this file", key="data_use"):
        suffix = Path(upload.name).suffix.lower()
        st.session_state.pop("data_problems", None)
        if suffix not in {".csv", ".parquet", ".xlsx"}:
            st.error("Use a .csv, .parquet or .xlsx file.")
        else:
            folder = _session_folder()
            # a new name per attempt (never the uploaded name: nothing escapes the folder), so a rejected
            # file never replaces the one in use
            fd, created = tempfile.mkstemp(dir=folder, prefix=f"{name}.", suffix=suffix)
            target = Path(created)
            used = False
            try:  # the file is removed unless it is put to use, whatever happens while checking it
                with os.fdopen(fd, "wb") as fh:
                    fh.write(upload.getvalue())
                # read first in a bounded child process (time, memory, rows): the server never reads a file
                # that would exceed them (#15)
                with st.spinner(f"Checking {md(upload.name)}..."):
                    check = uploads.check_upload(target, loaded.catalogue.datasets[name], name=upload.name)
                problems = ([check.problem.replace(str(target), upload.name).replace(str(folder) + "/", "")]
                            if check.problem else
                            _problems_with({**overrides, name: str(target)}, shown={str(target): upload.name}))
                if problems:
                    st.session_state["data_problems"] = (name, upload.name, problems)
                else:
                    old = overrides.get(name)
                    overrides[name] = str(target)
                    upload_names = st.session_state.setdefault("data_upload_names", {})
                    upload_names[str(target)] = upload.name
                    used = True
                    if old and Path(old).parent == folder and old != str(target):
                        Path(old).unlink(missing_ok=True)
                        upload_names.pop(old, None)
            finally:
                if not used:
                    target.unlink(missing_ok=True)
            if used:
                st.rerun()
    rejected = st.session_state.get("data_problems")
    if rejected:
        dataset, filename, problems = rejected
        st.error(f"{md(filename)} cannot replace the {md(dataset)} dataset: {len(problems)} problem(s). Nothing has "
                 "changed: the data in use are as before.")
        summary = _missing_columns(problems, filename)
        if summary:
            st.markdown(summary)
        st.code("\n".join(problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"]
                                                  if len(problems) > MAX_SHOWN else [])),
                language=None, wrap_lines=True)  # long lines wrap: their hints were cut off at 1280 px
    if editing_enabled():
        typed = st.text_input("...or the path of an extract on this server (editing mode only)", key="data_path")
        if typed and st.button("Use this path", key="data_use_path"):
            candidate = Path(typed).expanduser()
            if candidate.suffix.lower() not in {".csv", ".parquet", ".xlsx"} or not candidate.is_file():
                st.error(f"{md(typed)}: not a .csv, .parquet or .xlsx file on this server.")
            else:
                overrides[name] = str(candidate.resolve())
                st.rerun()
    if overrides:
        upload_names = st.session_state.get("data_upload_names", {})
        st.info("Using uploaded data for: " + ", ".join(
            md(n) + (f" ({md(uploaded_name(upload_names[p]))})" if p in upload_names else "")
            for n, p in overrides.items()))
        if st.button(reset_label(bundled=sharing.uses_bundled_sample(loaded)), key="data_reset"):
            st.session_state["data_overrides"] = {}
            st.session_state.pop("data_upload_names", None)
            owner = st.session_state.pop("upload_folder", None)
            if owner is not None:
                owner.remove()  # the uploaded files go with it
            st.rerun()
