"""Who may edit: signed-in editors on an allow-list (OpenID Connect via ``st.login``), or a local copy.

Two ways to switch editing (the catalogue editor, server paths for extracts) on:

* **A shared server** configures sign-in: an ``[auth]`` section in ``.streamlit/secrets.toml`` (for NHS
  organisations, Microsoft Entra ID's ``server_metadata_url``) and the editors' addresses in
  ``AUDIT_METRICS_EDITORS``. Viewers need not sign in and never see editing controls; a signed-in user
  edits only when their e-mail address is on the list. ``--edit`` / ``AUDIT_METRICS_EDIT`` have no effect
  there, so a stray setting cannot open a shared dashboard to everyone.
* **A single-user local copy** (no ``[auth]``): ``streamlit run app.py -- --edit`` or ``AUDIT_METRICS_EDIT=1``.
"""

from __future__ import annotations

import os
import re
import sys

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

__all__ = ["can_edit", "editing_off_message", "editor_emails", "local_editing", "show_sign_in", "sign_in_configured",
           "signed_in_email"]

EDITORS_ENV = "AUDIT_METRICS_EDITORS"


def local_editing() -> bool:
    """The single-user switch: ``--edit`` after ``--`` on the command line or ``AUDIT_METRICS_EDIT=1``."""
    return "--edit" in sys.argv[1:] or os.environ.get("AUDIT_METRICS_EDIT", "").lower() in {"1", "true", "yes"}


def sign_in_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``st.login`` can be used)."""
    try:
        return "auth" in st.secrets
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return False


def editor_emails() -> frozenset[str]:
    """The allow-list: ``AUDIT_METRICS_EDITORS``, addresses separated by commas, semicolons or spaces."""
    raw = os.environ.get(EDITORS_ENV, "")
    return frozenset(e.strip().lower() for e in re.split(r"[,;\s]+", raw) if e.strip())


def signed_in_email() -> str | None:
    """The signed-in user's address (``email``, else Entra ID's ``preferred_username``), or None."""
    if not sign_in_configured() or not st.user.is_logged_in:
        return None
    for claim in ("email", "preferred_username"):
        value = st.user.get(claim)
        if isinstance(value, str) and "@" in value:
            return value.strip().lower()
    return None


def can_edit() -> bool:
    """May this session see and use the editing controls?"""
    if sign_in_configured():
        email = signed_in_email()
        return email is not None and email in editor_emails()
    return local_editing()


def editing_off_message() -> str:
    """What a viewer is told where the editor would be."""
    if sign_in_configured():
        return ("Editing is for the audit team's editors: sign in (sidebar) with an address on this "
                "dashboard's editors' list.")
    return ("Editing is switched off on this dashboard, so its viewers cannot change it. Auditors start "
            "an editing copy with `streamlit run app.py -- --edit` (or `AUDIT_METRICS_EDIT=1`).")


def show_sign_in() -> None:
    """Sidebar: sign in / out when sign-in is configured, and whether this session can edit."""
    if not sign_in_configured():
        if local_editing():
            st.caption("Editing is on (a local copy started with --edit).")
        return
    email = signed_in_email()
    if email is None:
        if st.button("Sign in to edit", key="auth_sign_in", help="For the audit team. Viewing needs no sign-in."):
            st.login()
        return
    role = "editor" if email in editor_emails() else "viewer: not on the editors' list"
    st.caption(f"Signed in as {email} ({role}).")
    if st.button("Sign out", key="auth_sign_out"):
        st.logout()
