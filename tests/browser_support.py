"""What the real-browser tests share: Debian chromium with the project's flags, and a dashboard server on a free
port (started, awaited on its health check, stopped and reaped). Each test file keeps its own fixtures, built
from these, so that each can start the server it needs (a releases store, the results store off...)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]


def require_chromium() -> None:
    """Skip the module without Debian chromium, except in CI, where the browser tests must run."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed (CI must run the browser test)", pytrace=False)
        pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(folder: Path, env: Mapping[str, str] | None = None, *, launcher: bool = False) -> Iterator[str]:
    """``streamlit run app.py`` on the bundled catalogue (``env`` adds or overrides variables); yields its URL.
    ``launcher``: started as dev.sh and the image start it (``python -m audit_metrics.ui.serve``: the code imported
    first, then a warm-up render). Its output goes to ``folder / "streamlit.log"``."""
    port = free_port()
    log = folder / "streamlit.log"
    full_env = {**os.environ, "AUDIT_METRICS_CATALOGUE": str(ROOT / "indicators.yaml"), **(env or {})}
    start = ["-m", "audit_metrics.ui.serve"] if launcher else ["-m", "streamlit", "run", str(ROOT / "app.py")]
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, *start, "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"], stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
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
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: make sure, and reap it
            proc.kill()
            proc.wait(timeout=30)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Headless Debian chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()
