"""Editing is for signed-in editors on the allow-list (or a local --edit copy); viewers never see it.

The first tests drive the app through AppTest with Streamlit's simulated user. The last signs in for real:
a local OpenID Connect provider (PyPI ``oidc-provider-mock``) on a free port, the dashboard served by
``streamlit run`` configured for it, the sign-in button clicked over the app's websocket, the provider's
login form posted, and the signed cookie sent by a new session, as a browser would. It is skipped when the
provider cannot start.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import requests
from streamlit.testing.v1 import AppTest

from audit_metrics.ui.readiness import Page, Session

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
EDITOR = "editor@example.nhs.uk"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "audit-metrics", "client_secret": "s",
        "server_metadata_url": "http://localhost:9/.well-known/openid-configuration"}


def _catalogue_view(user: dict | None = None, *, sign_in: bool = True, view: str = "Indicator catalogue") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if sign_in:
        at.secrets["auth"] = AUTH
    at.user = user if user is not None else {"is_logged_in": False}
    at.query_params["view"] = view
    return at.run()


def _editing_controls(at: AppTest) -> bool:
    return any(t.label == "indicators.yaml" for t in at.text_area)


@pytest.fixture
def editors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_EDITORS", f"someone@example.nhs.uk, {EDITOR.upper()}")
    monkeypatch.delenv("AUDIT_METRICS_EDIT", raising=False)


def test_viewer_sees_no_editing_controls_and_may_sign_in(editors: None) -> None:
    at = _catalogue_view()
    assert not at.exception
    assert not _editing_controls(at)
    assert [b.label for b in at.sidebar.button] == ["Sign in to edit"]
    assert any("sign in (sidebar)" in i.value for i in at.info)
    data = _catalogue_view(view="Data")
    assert not any("path of an extract on this server" in t.label for t in data.text_input)


def test_allow_listed_signed_in_user_edits(editors: None) -> None:
    at = _catalogue_view({"is_logged_in": True, "email": EDITOR, "name": "An Editor"})
    assert not at.exception
    assert _editing_controls(at)
    assert f"Signed in as {EDITOR} (editor)." in [c.value for c in at.sidebar.caption]
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    data = _catalogue_view({"is_logged_in": True, "email": EDITOR}, view="Data")
    assert any("path of an extract on this server" in t.label for t in data.text_input)


def test_entra_id_preferred_username_is_used_when_there_is_no_email(editors: None) -> None:
    at = _catalogue_view({"is_logged_in": True, "preferred_username": EDITOR})
    assert _editing_controls(at)


def test_signed_in_user_not_on_the_list_only_views(editors: None) -> None:
    at = _catalogue_view({"is_logged_in": True, "email": "clinician@example.nhs.uk"})
    assert not _editing_controls(at)
    assert "(viewer: not on the editors' list)" in " ".join(c.value for c in at.sidebar.caption)


def test_edit_flag_does_not_open_a_server_that_signs_in(editors: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    assert not _editing_controls(_catalogue_view())


def test_empty_allow_list_means_no_editors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_METRICS_EDITORS", raising=False)
    assert not _editing_controls(_catalogue_view({"is_logged_in": True, "email": EDITOR}))


def test_local_copy_without_sign_in_uses_the_edit_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_METRICS_EDIT", raising=False)
    off = _catalogue_view(sign_in=False)
    assert not _editing_controls(off)
    assert not off.sidebar.button  # no sign-in button where sign-in is not configured
    monkeypatch.setenv("AUDIT_METRICS_EDIT", "1")
    on = _catalogue_view(sign_in=False)
    assert _editing_controls(on)
    assert "Editing is on (a local copy started with --edit)." in [c.value for c in on.sidebar.caption]


# ------------------------------------------------------------------ a real OpenID Connect provider


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The provider (test infrastructure, running in this process) calls authlib APIs that authlib deprecates.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*"),
              pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning")]


@pytest.fixture(scope="module")
def signed_in_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("oidc")
    try:
        with warnings.catch_warnings():  # the provider's own imports use deprecated authlib modules
            warnings.simplefilter("ignore")
            from oidc_provider_mock import run_server_in_thread
        provider_cm: AbstractContextManager = run_server_in_thread(port=0)
        provider = provider_cm.__enter__()
    except Exception as exc:  # not installed, a version whose API differs, or no port
        pytest.skip(f"oidc-provider-mock cannot start: {exc}")
    try:
        port = _free_port()
        (folder / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "audit-metrics"\nclient_secret = "test-only"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n')
        env = {**os.environ, "AUDIT_METRICS_EDITORS": EDITOR}
        env.pop("AUDIT_METRICS_EDIT", None)
        log = folder / "streamlit.log"
        with log.open("w") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true", "--server.port",
                 str(port), "--server.fileWatcherType", "none", "--secrets.files", str(folder / "secrets.toml")],
                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        url = f"http://localhost:{port}"  # the origin named in redirect_uri, as the signed cookie requires
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.3)
            else:
                pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        provider_cm.__exit__(None, None, None)


def _sign_in(url: str, who: str) -> tuple[requests.Session, Page]:
    """Click "Sign in to edit", log in at the provider as ``who``; return the browser's cookies and the
    catalogue page a new session then renders."""
    browser = requests.Session()
    browser.get(f"{url}/_stcore/health", timeout=10)  # Streamlit's XSRF cookie, as the page load sets it
    with Session(url, timeout=180, cookies=browser.cookies.get_dict()) as tab:
        page = tab.run({"view": "Indicator catalogue"})
        assert page.finished and not page.has("text_area", "indicators.yaml")
        button = page.find("button", "Sign in to edit")
        assert button is not None
        redirect = tab.run({"view": "Indicator catalogue"}, click=button.widget_id).auth_redirect
    assert redirect.startswith("/auth/login?provider=")
    form = browser.get(url + redirect, timeout=30)  # -> the provider's sign-in form
    assert form.status_code == 200 and "/oauth2/authorize" in form.url
    back = browser.post(form.url, data={"sub": who}, timeout=30)  # -> /oauth2callback -> the app
    assert back.status_code == 200 and back.url.rstrip("/") == url
    assert "_streamlit_user" in browser.cookies.get_dict()
    with Session(url, timeout=180, cookies=browser.cookies.get_dict()) as tab:
        return browser, tab.run({"view": "Indicator catalogue"})


def test_real_openid_connect_sign_in_gates_editing(signed_in_server: str) -> None:
    editor_browser, editor = _sign_in(signed_in_server, EDITOR)
    assert editor.finished and not editor.errors
    assert editor.has("markdown", f"Signed in as {EDITOR} (editor).")
    assert editor.has("text_area", "indicators.yaml")

    _, other = _sign_in(signed_in_server, "clinician@example.nhs.uk")
    assert other.has("markdown", "Signed in as clinician@example.nhs.uk (viewer: not on the editors' list).")
    assert not other.has("text_area", "indicators.yaml")

    forged = {**editor_browser.cookies.get_dict()}
    forged["_streamlit_user"] = forged["_streamlit_user"][:-4] + "AAAA"  # a tampered signature
    with Session(signed_in_server, timeout=180, cookies=forged) as tab:
        page = tab.run({"view": "Indicator catalogue"})
    assert page.has("button", "Sign in to edit") and not page.has("text_area", "indicators.yaml")
