"""The Overview in a real browser (headless Debian chromium through Playwright): a click on a rug square, the
flagged results from the keyboard, and the list on a phone (#12 builds 2 and 8).

Skipped only when Debian's chromium is absent (a developer box); in CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from browser_support import require_chromium

pytestmark = pytest.mark.browser
require_chromium()




def _screenshot(page: object, tmp_path: Path, name: str) -> None:
    """Saved under the test's folder (and to $SCREENSHOT_DIR, to look at)."""
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot))
    if os.environ.get("SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["SCREENSHOT_DIR"]) / shot.name)


def _wait_for_app(page: object) -> None:
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=60_000)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached",
                           timeout=120_000)


def _open_boxes_show(page: object, indicator: str, trust: str) -> None:
    page.wait_for_function("""(want) => {  // the two boxes under 'Open a result' show the picked cell
        const boxes = [...document.querySelectorAll('[data-testid="stSelectbox"]')].slice(-2);
        const shown = boxes.map(b => b.querySelector('input')?.value || b.textContent);
        return shown[0].includes(want[0]) && shown[1].includes(want[1]);
    }""", arg=[indicator, trust], timeout=60_000)


def _tip(page: object) -> tuple[str, str]:
    """The rug's hover box, once shown (ui/rug_view.py): its bold first line (the trust) and the lines under it."""
    page.wait_for_function("() => { const t = document.querySelector('.am-rug-tip'); return t && !t.hidden; }",
                           timeout=30_000)
    return tuple(page.evaluate("() => { const t = document.querySelector('.am-rug-tip'); "
                               "return [t.querySelector('b').textContent, t.childNodes[1].textContent]; }"))


def test_rug_hover_and_a_flagged_square_click_opens_it_in_chromium(server: str, browser: object,
                                                                   tmp_path: Path) -> None:
    """#12 builds 2 and 7: the rug is SVG (no chart library on the first screen). Hovering any square shows its
    trust, indicator, value and expected range at once; a click on a flagged square picks its trust and
    indicator in 'Open a result'; so do Enter on a flagged square reached by Tab (keyboard)."""
    page = browser.new_page(viewport={"width": 1440, "height": 1600})
    page.goto(f"{server}/?view=Overview")
    _wait_for_app(page)
    page.wait_for_selector("svg.am-rug g.am-flag", timeout=60_000)
    assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length") == 0  # no chart drawn
    plain = page.locator("svg.am-rug > .am-body > rect[fill='#768692'][data-tip]").first  # a square as expected
    plain.hover()
    assert "as expected" in _tip(page)[1].lower()
    flags = page.locator("svg.am-rug g.am-flag")
    flagged = flags.first
    flagged.hover()
    unit, rest = _tip(page)
    indicator = rest.split("\n")[0]
    assert "expected" in rest and unit and indicator
    assert not page.get_by_text("This screen is narrow").first.is_visible()  # a wide screen: no note
    assert page.get_by_text("click a flagged square").first.is_visible()
    flagged.click()
    page.get_by_text("Picked by clicking a square").first.wait_for(timeout=60_000)
    _wait_for_app(page)
    _open_boxes_show(page, indicator, unit)
    # the keyboard: Tab reaches a flagged square, Enter opens it
    page.mouse.move(0, 0)  # the pointer off the rug: the hover box follows the focus
    second = flags.nth(1)
    second.focus()
    assert page.evaluate("() => document.activeElement.classList.contains('am-flag')")
    unit, rest = _tip(page)
    page.keyboard.press("Enter")
    _wait_for_app(page)
    _open_boxes_show(page, rest.split("\n")[0], unit)
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, tmp_path, "rug_clicked")


def test_flagged_results_by_keyboard_and_on_a_phone_in_chromium(server: str, browser: object,
                                                                tmp_path: Path) -> None:
    """#12 build 8: every flagged square is reachable without a mouse ('A flagged result', by Tab and typing);
    a phone (390 px) gets a rug wide enough to read (scrolled sideways) or the flagged results as a list."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{server}/?view=Overview")
    _wait_for_app(page)
    # the rug keeps a legible width and scrolls sideways (it was squeezed to the phone's 358 px), with a note
    page.wait_for_selector(".st-key-tartan svg.am-rug", timeout=60_000)
    # (its row labels narrower on a phone since rugfix: the picture 684 px wide, its squares at full size)
    wide, square = page.evaluate("() => [document.querySelector('.st-key-tartan svg.am-rug')"
                                 ".getBoundingClientRect().width, document.querySelector('.st-key-tartan svg.am-rug "
                                 ".am-body > rect[data-tip]').getBoundingClientRect().width]")
    assert wide >= 600 and square == 21, (wide, square)
    assert page.get_by_text("This screen is narrow").first.is_visible()
    page.get_by_text("List of flagged results", exact=True).first.click()
    _wait_for_app(page)
    page.get_by_text("most urgent first (worse alarms").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)  # drawn on a canvas: no text
    assert not page.evaluate("() => document.querySelector('svg.am-rug')")  # the rug is not drawn
    _screenshot(page, tmp_path, "overview_phone_list")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    focused = ""
    for _ in range(120):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => { const a = document.activeElement;"
                                " return a && a.tagName === 'INPUT' ? (a.getAttribute('aria-label') || '') : ''; }")
        if "A flagged result" in focused:
            break
    assert "A flagged result" in focused
    page.keyboard.type("Thornbury")
    page.keyboard.press("Enter")
    _wait_for_app(page)
    _open_boxes_show(page, "", "Thornbury")
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, tmp_path, "overview_phone_keyboard")
