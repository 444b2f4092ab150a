"""#12 build 5: the browser's Back button, in a real browser (Playwright + Debian chromium).

Open the dashboard, switch view, switch indicator, press Back twice: the earlier indicator, then the earlier
view, are shown again (with their charts), each choice being one history entry. Skipped only where Debian's
chromium is absent (in CI, a failure), as tests/test_browser.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]

pytestmark = pytest.mark.browser
if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("Debian chromium is not installed (CI must run the browser test)", pytrace=False)
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)

FIRST = ("bowel_mort90", "90-day mortality after major bowel cancer resection")
SECOND = ("bowel_readmit30", "30-day unplanned readmission after major bowel cancer resection")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "AUDIT_METRICS_CATALOGUE": str(ROOT / "indicators.yaml")}
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"], stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
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
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _settled(page: object) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached",
                           timeout=180_000)


def _shows_indicator(page: object, indicator: tuple[str, str]) -> None:
    """The Indicator view with this indicator: in the URL, in its box, and as its funnel's title (drawn)."""
    page.wait_for_url(f"**indicator={indicator[0]}**", timeout=120_000)
    page.wait_for_function("""(title) => {
        const box = [...document.querySelectorAll('[data-testid="stSelectbox"]')]
            .find(b => (b.innerText || '').trim().startsWith('Indicator'));
        return box && (box.querySelector('input')?.value || '').includes(title);
    }""", arg=indicator[1], timeout=120_000)
    page.locator(".js-plotly-plot .gtitle", has_text=indicator[1][:30]).first.wait_for(timeout=120_000)


def _view(page: object) -> str:
    return page.evaluate("""() => {
        const checked = document.querySelector('[data-testid="stSidebar"] input[type="radio"]:checked');
        return checked ? checked.closest('label').innerText.trim() : '';
    }""")


def test_back_returns_to_the_earlier_indicator_then_the_earlier_view(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1200})
    page.goto(f"{server}/?view=Overview")
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=60_000)
    page.get_by_text("Which trust or Cancer Alliance?").first.wait_for(timeout=180_000)
    _settled(page)
    entries = page.evaluate("history.length")

    page.locator('[data-testid="stSidebar"]').get_by_text("Indicator", exact=True).click()
    _shows_indicator(page, FIRST)
    _settled(page)
    assert "view=Indicator" in page.url
    assert page.evaluate("history.length") == entries + 1  # one entry for the view and all its selections

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Indicator").first
    box.click()
    page.get_by_role("option", name=f"Bowel: {SECOND[1]}").click()
    _shows_indicator(page, SECOND)
    _settled(page)
    assert page.evaluate("history.length") == entries + 2

    page.go_back()
    _shows_indicator(page, FIRST)  # the earlier indicator, its funnel drawn
    _settled(page)
    assert _view(page) == "Indicator"

    page.go_back()
    page.wait_for_url("**view=Overview**", timeout=120_000)
    page.get_by_text("Which trust or Cancer Alliance?").first.wait_for(timeout=120_000)
    _settled(page)
    page.wait_for_function("""() => {
        const checked = document.querySelector('[data-testid="stSidebar"] input[type="radio"]:checked');
        return checked && checked.closest('label').innerText.trim() === 'Overview';
    }""", timeout=120_000)
    assert "indicator=" not in page.url
    assert page.locator('[data-testid="stException"]').count() == 0

    page.go_forward()  # and forward again
    _shows_indicator(page, FIRST)
    assert page.locator('[data-testid="stException"]').count() == 0
