"""#12 build 5: the browser's Back button, in a real browser (Playwright + Debian chromium).

Open the dashboard, switch view, switch indicator, press Back twice: the earlier indicator, then the earlier
view, are shown again (with their charts), each choice being one history entry. Skipped only where Debian's
chromium is absent (in CI, a failure), as tests/test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import app_server, require_chromium

pytestmark = pytest.mark.browser
require_chromium()

FIRST = ("bowel_mort90", "90-day mortality after major bowel cancer resection")
SECOND = ("bowel_readmit30", "30-day unplanned readmission after major bowel cancer resection")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with app_server(tmp_path_factory.mktemp("server")) as url:
        yield url



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
