"""What the AppTest tests of links share: open the app at a URL's parameters, and read the URL back."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(timeout: float = 180, **query: str | list[str]) -> AppTest:
    """A new session opened at ``?k=v&...`` (a list repeats its parameter), after its first run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def url_params(at: AppTest) -> dict[str, list[str]]:
    """The session's URL parameters, each as the list of its values."""
    return {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}
