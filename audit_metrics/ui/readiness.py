"""Readiness probe: proves that the running dashboard renders its first view, through its own server.

Streamlit's ``/_stcore/health`` answers "ok" as soon as the server listens, before the app has loaded the
catalogue or computed anything. This probe does what a browser does instead: it opens a session on the
server's websocket (``/_stcore/stream``), asks for a run of the app, and reads the page it sends back. The
app is *ready* when that run finished, drew the view's closing (invisible) marker element, and showed no error and
no exception. The same client drives the load test (``benchmarks/load_test.py``) and the sign-in test.

Run::

    python -m audit_metrics.ui.readiness                      # http://127.0.0.1:$STREAMLIT_SERVER_PORT
    python -m audit_metrics.ui.readiness --url http://127.0.0.1:8080 --timeout 60 --view Overview

Exit status 0 (ready), 1 (not ready; the reason on standard error), as a container HEALTHCHECK expects.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

__all__ = ["Element", "Page", "ProbeError", "Session", "check_ready", "main"]

RENDERED_MARKER = "am-rendered"  # in app.py's last element (invisible): the whole view was drawn
RENDERED_HTML = f'<span class="{RENDERED_MARKER}" hidden></span>'

_LABEL_FIELDS = ("label", "body", "message", "url")


class ProbeError(RuntimeError):
    """The server could not be reached or did not finish a run in time."""


@dataclass(frozen=True)
class Element:
    """One element of a rendered page: its kind (``button``, ``markdown``...), text and widget id."""

    kind: str
    text: str
    widget_id: str = ""
    error: bool = False


@dataclass(frozen=True)
class Page:
    """What one run of the app sent to its session."""

    elements: tuple[Element, ...]
    finished: bool
    seconds: float
    auth_redirect: str = ""

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.elements if e.error)

    @property
    def rendered(self) -> bool:
        return any(e.kind == "html" and RENDERED_MARKER in e.text for e in self.elements)

    def find(self, kind: str, text: str = "") -> Element | None:
        """The first element of this kind whose text contains ``text``."""
        return next((e for e in self.elements if e.kind == kind and text in e.text), None)

    def has(self, kind: str, text: str = "") -> bool:
        return self.find(kind, text) is not None


def _element(new_element: object) -> Element:
    kind = new_element.WhichOneof("type") or ""  # type: ignore[attr-defined]
    proto = getattr(new_element, kind) if kind else None
    text = next((str(getattr(proto, f)) for f in _LABEL_FIELDS if proto is not None and hasattr(proto, f)), "")
    error = kind == "exception" or (kind == "alert" and proto.format == Alert.Format.ERROR)  # type: ignore[union-attr]
    return Element(kind=kind, text=text, widget_id=str(getattr(proto, "id", "")), error=error)


class Session:
    """One Streamlit session over the server's websocket, as a browser tab holds one.

    Parameters
    ----------
    url
        The app's address, e.g. ``http://127.0.0.1:8501``.
    timeout
        Seconds to wait for the connection and for each run.
    cookies
        Cookies to send (sign-in: ``_streamlit_user`` and ``_streamlit_xsrf``). With an XSRF cookie the
        session also sends the token and an ``Origin`` header, as the browser does, so that Streamlit
        reads the signed-in user from the cookie.
    """

    def __init__(self, url: str = "http://127.0.0.1:8501", timeout: float = 60.0,
                 cookies: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.timeout = timeout
        headers: dict[str, str] = {}
        protocols = ["streamlit"]
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            if "_streamlit_xsrf" in cookies:
                headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
                protocols.append(cookies["_streamlit_xsrf"])
        base = parts.path.rstrip("/")
        self._stack = contextlib.ExitStack()
        try:
            self._ws: ClientConnection = self._stack.enter_context(connect(
                f"{scheme}://{parts.netloc}{base}/_stcore/stream", open_timeout=timeout,
                additional_headers=headers, subprotocols=protocols,  # type: ignore[arg-type]
                max_size=None))
        except (OSError, WebSocketException, TimeoutError) as exc:
            msg = f"cannot open a session at {url}: {exc}"
            raise ProbeError(msg) from exc
        self._widgets: dict[str, WidgetState] = {}

    def run(self, query: dict[str, str] | None = None, *, click: str = "",
            values: dict[str, str | int] | None = None) -> Page:
        """Ask for a run (optionally clicking a button or setting widgets by id) and read the page.

        ``values`` maps widget ids to values: text for text inputs and for a radio's or selectbox's option
        (Streamlit sends the option's label), integers for number widgets.
        """
        msg = BackMsg()
        msg.rerun_script.query_string = urlencode(query or {})
        for widget_id, value in (values or {}).items():
            state = WidgetState(id=widget_id)
            if isinstance(value, int):
                state.int_value = value
            else:
                state.string_value = value
            self._widgets[widget_id] = state
        states = [*self._widgets.values()]
        if click:
            states.append(WidgetState(id=click, trigger_value=True))
        msg.rerun_script.widget_states.widgets.extend(states)
        started = time.perf_counter()
        self._ws.send(msg.SerializeToString())
        return self._read(started)

    def _read(self, started: float) -> Page:
        elements: list[Element] = []
        redirect = ""
        deadline = started + self.timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return Page(tuple(elements), False, time.perf_counter() - started, redirect)
            try:
                raw = self._ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except WebSocketException as exc:
                msg = f"the server closed the session: {exc}"
                raise ProbeError(msg) from exc
            fwd = ForwardMsg.FromString(raw if isinstance(raw, bytes) else raw.encode())
            kind = fwd.WhichOneof("type")
            delta = fwd.delta.WhichOneof("type") if kind == "delta" else None
            if delta == "new_element":
                elements.append(_element(fwd.delta.new_element))
            elif delta == "add_block" and fwd.delta.add_block.WhichOneof("type") in {"expandable", "tab"}:
                block = fwd.delta.add_block  # expanders and tabs carry their label on the block
                label = block.expandable.label if block.HasField("expandable") else block.tab.label
                elements.append(Element(kind=block.WhichOneof("type"), text=label))
            elif kind == "auth_redirect":
                redirect = fwd.auth_redirect.url
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    elements.clear()  # the app asked for a rerun (st.rerun): the page starts again
                    continue
                ok = fwd.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
                return Page(tuple(elements), ok, time.perf_counter() - started, redirect)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_ready(url: str = "http://127.0.0.1:8501", timeout: float = 60.0,
                view: str = "Overview") -> tuple[bool, str]:
    """Render ``view`` in a fresh session; (True, summary) when it was drawn in full without errors."""
    try:
        with Session(url, timeout=timeout) as session:
            page = session.run({"view": view})
    except ProbeError as exc:
        return False, str(exc)
    if not page.finished:
        return False, f"the app did not finish its first run within {timeout:g} s"
    if page.errors:
        return False, "the app showed an error: " + " | ".join(page.errors)[:500]
    if not page.rendered:
        return False, f"the run finished without drawing the whole view (no closing '{RENDERED_MARKER}' marker)"
    headings = " / ".join(e.text for e in page.elements if e.kind == "heading")
    return True, f"ready: {view} rendered in {page.seconds:.2f} s ({len(page.elements)} elements: {headings})"


def default_url() -> str:
    """This machine's dashboard, on the port (and base path) Streamlit was told to use."""
    port = os.environ.get("STREAMLIT_SERVER_PORT", "8501")
    base = os.environ.get("STREAMLIT_SERVER_BASE_URL_PATH", "").strip("/")
    return f"http://127.0.0.1:{port}/{base}".rstrip("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit_metrics.ui.readiness", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=default_url(), help="default: %(default)s")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--view", default="Overview", help="the view to render (default Overview)")
    args = parser.parse_args(argv)
    ok, message = check_ready(args.url, args.timeout, args.view)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
