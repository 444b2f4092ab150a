"""Settings, cached computation and small helpers shared by every view."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from audit_metrics import narrative, results_cache, sharing, views
from audit_metrics.catalogue import (
    DatasetSpec,
    LoadedCatalogue,
    check_catalogue,
    parse_catalogue,
    read_catalogue_text,
)
from audit_metrics.exceptions import AuditMetricsError, CatalogueError, ExtractError
from audit_metrics.pipeline import AuditRun, run_audit
from audit_metrics.ui import auth
from audit_metrics.ui.text import md

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ("Overview", "Indicator", "Trust profile", "Cancer Alliance", "Inequalities", "Outliers & export",
         "Indicator catalogue", "Data", "Releases")


def levels(groups: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The levels results can be compared at: trusts, then each group the units define (none: trusts only)."""
    return {"Trusts": "trust", **{views.level_label(g, plural=True): g for g in groups}}


MAX_UPLOAD_MB = 200
SAMPLE_NOTE = ("**Synthetic sample data.** Every trust, Cancer Alliance, region and patient here is "
               "fictional (codes start with Z); the numbers illustrate the method only.")


# ------------------------------------------------------------------ settings and computation


def catalogue_path(argv: list[str] | None = None) -> Path:
    """The catalogue, given as for the command line (``streamlit run app.py -- CATALOGUE``, or ``--catalogue``
    / the older ``--indicators``), else ``AUDIT_METRICS_CATALOGUE``, else the bundled one."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg in ("--catalogue", "--indicators") and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if arg.startswith(("--catalogue=", "--indicators=")):
            return Path(arg.split("=", 1)[1]).resolve()
    positional = [a for a in argv if a.lower().endswith((".yaml", ".yml")) and not a.startswith("-")]
    if positional:
        return Path(positional[0]).resolve()
    return Path(os.environ.get("AUDIT_METRICS_CATALOGUE", ROOT / "indicators.yaml")).resolve()


def editing_enabled() -> bool:
    """Editing controls for this session: an allow-listed signed-in editor, or a local ``--edit`` copy."""
    return auth.can_edit()


def _file_identity(paths: list[Path]) -> str:
    """Cache key for the extracts: path, size and modification time (cheap on every rerun; the
    loader still records each file's sha256 for provenance)."""
    h = hashlib.sha256()
    for p in paths:
        stat = p.stat() if p.exists() else None
        h.update(f"{p}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode())
    return h.hexdigest()


@st.cache_resource(show_spinner=False, max_entries=8)
def _parsed(path: str, text_digest: str, _text: str) -> LoadedCatalogue:
    """The catalogue parsed once per text (about 0.1-0.3 s; every rerun needs its dataset paths)."""
    del text_digest  # cache key only
    return parse_catalogue(_text, file=path, base_dir=Path(path).parent)


@st.cache_resource(show_spinner="Computing funnel limits and outlier status...", max_entries=8)
def compute(path: str, text_digest: str, data: tuple[tuple[str, str], ...], data_digest: str,
            _text: str) -> tuple[LoadedCatalogue, AuditRun, str]:
    """Validate and compute everything, or load it from the results store when every input is unchanged
    (``results_cache``: a restarted server does not recompute). Keyed in memory on the catalogue text and the
    extracts' identity; returns a sentence saying where the results came from.

    Uses the very text that was hashed, not a second read of the file, so a catalogue saved in between
    cannot be stored under the previous version's key.
    """
    del data_digest  # cache key only

    def checked() -> LoadedCatalogue:
        loaded, problems = check_catalogue(_text, file=path, base_dir=Path(path).parent, data=dict(data))
        if problems or loaded is None:
            raise CatalogueError(problems)
        return loaded

    if data:  # uploaded data: kept in memory for the session, never written to the store
        loaded = checked()
        return loaded, run_audit(loaded, data=dict(data)), "Results computed for the uploaded data (not stored)."
    # Checked against the data only when computing: stored results were computed by this code from this very
    # catalogue text and these very files (the manifest's digests), so they passed the same check then. Saves
    # ~0.4 s of a restarted server's first page (the check reads every extract's schema).
    draft = _parsed(path, text_digest, _text)
    store = results_cache.cache_dir()
    manifest = ({} if store is None else  # store off: nothing to hash
                results_cache.input_manifest(Path(path), _text, results_cache.input_files(draft)))
    outcome = results_cache.load_or_compute(store, catalogue_path=Path(path), manifest=manifest,
                                            compute=lambda: run_audit(checked()), expected_type=AuditRun)
    return draft, outcome.run, outcome.note


# Shared by every session (cache_resource hands out the same object; cache_data would unpickle a copy per
# call and per session). Polars frames are immutable, and callers only read the lists.
@st.cache_resource(show_spinner=False, max_entries=8)
def pooled_table(run_key: str, _run: AuditRun) -> pl.DataFrame:
    del run_key
    return views.pooled(_run)


@st.cache_resource(show_spinner=False, max_entries=8)
def best_by_indicator(run_key: str, _table: pl.DataFrame) -> dict[str, list[str]]:
    del run_key
    return views.best_performers_all(_table, n=3)


@st.cache_resource(show_spinner=False, max_entries=64)
def _dataset_schema(path: str, identity: str, spec_json: str, _spec: DatasetSpec) -> dict[str, pl.DataType]:
    del identity, spec_json  # cache keys only
    from audit_metrics.io import dataset_schema

    return dict(dataset_schema(path, _spec))


def dataset_schema_of(path: Path, spec: DatasetSpec) -> dict[str, pl.DataType]:
    """A dataset's column names and types, read once per file version (path, size, modification time) and
    definition."""
    return _dataset_schema(str(path), _file_identity([Path(path)]), spec.model_dump_json(), spec)


def dataset_columns(path: Path, spec: DatasetSpec) -> tuple[str, ...]:
    """A dataset's column names (``dataset_schema_of``)."""
    return tuple(dataset_schema_of(path, spec))


def data_key(catalogue: Path, draft: LoadedCatalogue, overrides: Mapping[str, str]) -> str:
    """The identity (path, size, modification time) of every file a run of ``draft`` reads: its datasets, with
    this session's uploads, and its units file (units taken from a dataset have no file of their own)."""
    files = [draft.dataset_path(n, overrides) for n in draft.catalogue.datasets]
    if draft.catalogue.units.file is not None:
        files.append(catalogue.parent / draft.catalogue.units.file)
    return _file_identity(files)


def catalogue_now(path: Path) -> tuple[str, str, LoadedCatalogue]:
    """The catalogue file's text (bounded, regular file, UTF-8: as the command line reads it), its digest, and
    the catalogue parsed (not yet checked against the data)."""
    text = read_catalogue_text(path)
    key = hashlib.sha256(text.encode()).hexdigest()
    return text, key, _parsed(str(path), key, text)


def computed(path: Path, overrides: Mapping[str, str], now: tuple[str, str, LoadedCatalogue]
             ) -> tuple[LoadedCatalogue, AuditRun, str, str]:
    """Every result for the catalogue as it is ``now`` with these uploads (computed once, then cached): the
    checked catalogue, the run, where the results came from, and the data files' identity."""
    text, key, draft = now
    files_key = data_key(path, draft, overrides)
    loaded, run, note = compute(str(path), key, tuple(sorted(overrides.items())), files_key, text)
    return loaded, run, note, files_key


def load() -> tuple[LoadedCatalogue, AuditRun, str] | None:
    path = catalogue_path()
    overrides: dict[str, str] = st.session_state.setdefault("data_overrides", {})
    draft: LoadedCatalogue | None = None
    try:
        now = catalogue_now(path)
        _, key, draft = now
        gone = [n for n in overrides if n not in draft.catalogue.datasets]
        if gone:  # an upload for a dataset the catalogue no longer has (edited since): not a catalogue problem
            for n in gone:
                overrides.pop(n)
            st.warning(f"This session's upload for {', '.join(md(repr(n)) for n in gone)} is no longer used: the "
                       "catalogue has no dataset of that name now.")
        loaded, run, note, files_key = computed(path, overrides, now)
    except CatalogueError as exc:
        st.error(f"The indicator catalogue {md(path.name)} has {len(exc.problems)} problem(s):")
        st.code("\n".join(str(p) for p in exc.problems), language=None)
        _offer_way_back(overrides, draft)
        return None
    except (ExtractError, AuditMetricsError) as exc:
        st.error(f"The data could not be used: {md(exc)}")
        _offer_way_back(overrides, draft)
        return None
    st.session_state["synthetic_data"] = sharing.run_uses_bundled_sample(run)  # charts carry a watermark
    st.sidebar.caption(note)  # where the results came from (stored, computed, and why)
    return loaded, run, key + files_key


def _offer_way_back(overrides: dict[str, str], draft: LoadedCatalogue | None) -> None:
    """Where this session's uploads are in use and the run failed (a problem in an upload, or one gone stale): a
    button that drops them, named for what comes back, as on the Data view."""
    # the Data view's own words (that module imports this one)
    from audit_metrics.ui.data import reset_label

    bundled = draft is not None and sharing.uses_bundled_sample(draft)  # are the catalogue's own files
    if overrides and st.button(reset_label(bundled=bundled)):
        st.session_state["data_overrides"] = {}
        st.rerun()


# ------------------------------------------------------------------ small helpers


# ------------------------------------------------------------------ the URL: shareable, and Back works
#
# Streamlit (1.67, uv.lock) pushes a browser history entry (history.pushState) whenever the script changes
# ``st.query_params`` and, on Back/Forward, reruns the script with the restored entry's query string
# (App.handlePageInfoChanged / onHistoryChange in its frontend). Two things make that history usable:
# * one entry per user action: ``set_qp`` only collects a run's parameters and ``flush_url`` writes them
#   once, at the end of the run (each ``st.query_params[k] = v`` would push an entry of its own);
# * the URL wins when it changed under us: a run whose query string is not the one this session last
#   wrote comes from Back/Forward, so the selections in ``URL_WIDGETS`` are dropped and every view
#   re-reads them from the URL, as on opening a shared link.
# The URL holds the current view's selections only (a view's parameters do not linger in another's).
# Widgets bound with ``bind="query-params"`` are not used: they update the URL with replaceState (no history
# entry) and name each parameter after its widget key.

URL_WIDGETS = (
    "view", "ov_find", "ov_show", "ov_period", "ov_sites", "ind_indicator", "ind_level", "ind_period",
    "ind_highlight", "ind_chart", "trust_code", "alliance", "all_indicator", "ineq_indicator", "ineq_breakdown", "ineq_level", "ineq_unit", "out_alliance",
    "out_sites", "out_indicators", "out_levels", "out_directions", "out_period", "rel_a", "rel_b",
)
_START = "_url_start"  # the URL this run started from
_PENDING = "_url_pending"  # this run's parameters, written by flush_url
_WRITTEN = "_url_written"  # the parameters this session last wrote (absent: a new session)
_OPENED = "_url_opened"  # this run opens a link (a new session, or Back/Forward): its values are checked


def _url_now() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def begin_url_run() -> bool:
    """First thing in every run: when the URL is not the one this session wrote (Back/Forward), drop the
    selections it holds so that each view takes them from the URL. Returns True when it did."""
    now = _url_now()
    written = st.session_state.get(_WRITTEN)
    restored = written is not None and now != written
    if restored:
        for key in URL_WIDGETS:
            st.session_state.pop(key, None)
        st.session_state.pop(_KEPT, None)  # the restored page's own choices, not the ones kept since
    st.session_state[_START] = now
    st.session_state[_PENDING] = {}
    st.session_state[_OPENED] = written is None or restored
    st.session_state["url_notes"] = []
    return restored


def flush_url() -> None:
    """Last thing in a run: write its parameters to the URL in one step (one history entry), if changed."""
    pending = {k: v for k, v in st.session_state.get(_PENDING, {}).items() if v}
    if pending != _url_now():
        st.query_params.from_dict(pending)
    st.session_state[_WRITTEN] = pending


def url_opened() -> bool:
    """This run opens a link (a new session, or Back/Forward), rather than following a click."""
    return bool(st.session_state.get(_OPENED, True))


def qp_get(name: str) -> str | None:
    """A parameter of the URL this run started from (the last value where it is repeated)."""
    values = st.session_state.get(_START, _url_now()).get(name) or []
    return values[-1] if values else None


def qp_all(name: str) -> list[str]:
    """Every value of a repeated parameter (``site=Lung&site=Bowel``)."""
    return list(st.session_state.get(_START, _url_now()).get(name) or [])


def link_values(name: str, options: Sequence[str]) -> list[str]:
    """The opened link's values of ``name`` (``site=Lung&site=Bowel``) that are among ``options``, in the link's
    order; each one not offered is noted (``url_note``). Empty when this run opens no link: the previous
    view's parameters are not this view's choices."""
    given = qp_all(name) if url_opened() else []
    for value in given:
        if value not in options:
            url_note(name, value)
    return [v for v in dict.fromkeys(given) if v in options]


def qp_value(name: str, options: list[str]) -> str | None:
    """The URL's ``name`` if it is one of ``options``; otherwise None (and a link's unknown value noted)."""
    value = qp_get(name)
    if value is not None and value not in options:
        url_note(name, value)
        return None
    return value


def qp_index(name: str, options: list[str], default: str | None = None) -> int:
    value = qp_get(name)
    if value in options:
        return options.index(value)
    if value is not None:
        url_note(name, value)
    if default in options:
        return options.index(default)
    return 0


def url_note(name: str, value: object) -> None:
    """The opened link's ``name=value`` is not used (not in these results): say so once, in the view."""
    if not url_opened():  # a value left by the previous view, not one from a link
        return
    note = f"{name}={value}"
    notes = st.session_state.setdefault("url_notes", [])
    if note not in notes:
        notes.append(note)


def show_url_notes() -> None:
    """One line saying which of the link's values were ignored (a misspelt or out-of-date link)."""
    notes = st.session_state.get("url_notes") or []
    if notes:
        st.caption("This link's " + ", ".join(f"'{md(n)}'" for n in notes)
                   + (" is" if len(notes) == 1 else " are") + " not in these results, so "
                   + ("it was" if len(notes) == 1 else "they were") + " ignored.")


def set_qp(**values: str | list[str] | tuple[str, ...] | None) -> None:
    """Put selections in this run's URL (``None`` or an empty list leaves the parameter out); written once,
    by ``flush_url`` at the end of the run."""
    pending = st.session_state.setdefault(_PENDING, {})
    for k, v in values.items():
        if v is None or (not isinstance(v, str) and not v):
            pending.pop(k, None)
        else:
            pending[k] = [v] if isinstance(v, str) else [str(x) for x in v]


def goto(view: str, **params: str) -> None:
    """Button callback: switch view (and selections) before the next run draws the widgets."""
    st.session_state["view"] = view
    for k, v in params.items():
        st.session_state[f"pending_{k}"] = v


# ------------------------------------------------------------------ narrowing kept between views
#
# Streamlit drops a widget's value from the session when a run does not draw it, so the Overview's alliance and
# sites were lost as soon as another view was opened: going on to the outlier list via a third view listed every
# result, and coming back opened an unnarrowed Overview (a real-data review). ``keep`` copies the values a view
# chose; ``kept`` reads them in other views, and ``restore`` sets them again before the view draws its widgets.
_KEPT = "_kept_choices"


def keep(*keys: str) -> None:
    """Copy these widgets' values, after they are drawn, for other views and for the next visit."""
    copies = st.session_state.setdefault(_KEPT, {})
    for key in keys:
        if key in st.session_state:
            copies[key] = st.session_state[key]


def kept(key: str, default: object = None) -> object:
    """A widget's value: its own where it is drawn in this session, else the copy its view last kept."""
    if key in st.session_state:
        return st.session_state[key]
    return st.session_state.get(_KEPT, {}).get(key, default)


def restore(key: str, valid: Callable[[object], bool]) -> None:
    """Before a widget is drawn: its kept value again, when it has none of its own, this run opens no link (a link
    says what it shows) and the value is still ``valid`` for these results."""
    if key in st.session_state or url_opened():
        return
    value = st.session_state.get(_KEPT, {}).get(key)
    if value is not None and valid(value):
        st.session_state[key] = value


def fmt(value: float | None, multiplier: float) -> str:
    return narrative.format_value(value, multiplier)


def display_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Round only for display (``views.display_table``)."""
    return views.display_table(frame)


def chart(fig, key: str, *, footnote: str | None = None, file_name: str | None = None, alt: str | None = None,
          **selection):
    """Draw a figure; its image download (camera icon) carries the footnote (source, period, method,
    national value), a watermark on the synthetic sample, and a file name that says what it shows.

    Plotly's own theme (not Streamlit's, whose grey axis text is below WCAG AA contrast); ``alt`` is its text
    alternative (default: its title and where its numbers are in words); ``selection`` is passed on
    (``on_select``, ``selection_mode``) and the selection state returned.
    """
    fmt_choice = st.session_state.get("chart_format", "png")
    title = _title_of(fig) or "Chart"
    alt = alt or f"{title}. The same results are given in words or as a table beside this chart."
    synthetic = bool(st.session_state.get("synthetic_data"))
    if footnote or synthetic:
        fig = sharing.annotate_figure(fig, footnote, synthetic=synthetic)
    image = {"format": fmt_choice, "scale": 2, **({"filename": file_name} if file_name else {})}
    return st.plotly_chart(fig if hasattr(fig, "to_dict") else _Spec(fig), key=key, theme=None, alt=alt,
                           **selection, config={"displaylogo": False, "toImageButtonOptions": image})


def _title_of(fig) -> str | None:
    """A figure's (or figure spec's) title text."""
    if isinstance(fig, dict):
        title = (fig.get("layout") or {}).get("title")
        return title.get("text") if isinstance(title, dict) else title
    return getattr(getattr(getattr(fig, "layout", None), "title", None), "text", None)


class _Spec(go.Figure):
    """A figure spec that was a validated ``go.Figure`` (``to_dict``) before our own layout additions
    (``sharing.annotate_figure``): Streamlit draws it as it is. Given a dict, ``st.plotly_chart`` builds and
    validates a new Figure from it, and given a Figure it deep-copies every trace (``to_dict``): 0.19 and 0.16 s
    of server time for the Overview's rug on each rerun (cProfile, #12 build 7). The annotations' validity is
    tested (tests/test_chart_spec.py)."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self._am_spec = spec

    def to_dict(self) -> dict:
        return self._am_spec


def as_text(text: object) -> str:
    """Data-derived text (a trust name, an indicator title) shown as text, never as Markdown or HTML:
    the one escaper, :func:`audit_metrics.ui.text.md`."""
    return md(text)


def trust_label(units: pl.DataFrame) -> dict[str, str]:
    return {r["unit_code"]: f"{r['unit_name']} ({r['unit_code']})" for r in units.iter_rows(named=True)}

