"""Charts on a 390 px phone, measured in a real browser (headless Debian chromium via Playwright).

Found by looking at screenshots of every view at 1440, 1024 and 390 px (issue #12): at 390 px the funnel's
legend wrapped onto seven rows and grew up over its footnote and the axis, titles lost both ends, the
trust profile's indicator names were cut off at the left and the caterpillar's names left the chart a
sliver. Each check reads the drawn SVG's boxes, so it fails on the drawing, not on a figure's settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import app_server, require_chromium

PHONE = {"width": 390, "height": 2400}

pytestmark = pytest.mark.browser
require_chromium()

# boxes of the parts of every drawn chart: [left, top, right, bottom] in page pixels (null when absent)
BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
  const box = e => { if (!e) return null; const b = e.getBoundingClientRect();
                     return b.width ? [b.left, b.top, b.right, b.bottom] : null; };
  const svg = box(plot.querySelector('.main-svg'));
  const foot = [...plot.querySelectorAll('.annotation')].find(a => a.textContent.startsWith('Source'));
  const ticks = [...plot.querySelectorAll('.ytick text')].map(box).filter(Boolean);
  return {svg, title: box(plot.querySelector('.gtitle')), xtitle: box(plot.querySelector('.g-xtitle text')),
          legend: box(plot.querySelector('.legend')), footnote: box(foot && foot.querySelector('text')),
          plot: box(plot.querySelector('.bglayer rect, .nsewdrag')),
          yticks_left: ticks.length ? Math.min(...ticks.map(t => t[0])) : null};
})"""


def _overlap(a: list[float] | None, b: list[float] | None) -> float:
    if not a or not b:
        return 0.0
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _inside(part: list[float] | None, svg: list[float]) -> bool:
    return part is None or (part[0] >= svg[0] - 1 and part[2] <= svg[2] + 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with app_server(tmp_path_factory.mktemp("server")) as url:
        yield url



def _charts(browser: object, url: str, title: str) -> list[dict]:
    page = browser.new_page(viewport=PHONE)
    page.goto(url)
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=60_000)
    page.locator(".js-plotly-plot .gtitle", has_text=title).first.wait_for(timeout=120_000)
    page.wait_for_timeout(500)  # plotly's second layout pass (margins pushed by the legend)
    assert page.locator('[data-testid="stException"]').count() == 0
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / f"phone_{title[:12]}.png"), full_page=True)
    boxes = page.evaluate(BOXES)
    page.close()
    return boxes


def test_funnel_legend_footnote_and_title_fit_a_phone(server: str, browser: object) -> None:
    for chart in _charts(browser, f"{server}/?view=Indicator&indicator=bowel_mort90&trust=ZA4", "90-day mortality"):
        assert chart["footnote"] and chart["legend"]
        assert _overlap(chart["footnote"], chart["legend"]) == 0, chart
        assert _overlap(chart["xtitle"], chart["legend"]) == 0, chart
        assert _overlap(chart["xtitle"], chart["footnote"]) == 0, chart
        for part in ("title", "footnote", "legend", "xtitle"):
            assert _inside(chart[part], chart["svg"]), (part, chart)


def test_alliance_funnels_keep_legend_off_the_footnote_on_a_phone(server: str, browser: object) -> None:
    charts = _charts(browser, f"{server}/?view=Cancer+Alliance", "Trusts")
    assert len(charts) == 2
    for chart in charts:
        assert _overlap(chart["footnote"], chart["legend"]) == 0, chart
        assert _overlap(chart["xtitle"], chart["footnote"]) == 0, chart
        assert _inside(chart["footnote"], chart["svg"]), chart


def test_trust_profile_slice_names_are_not_cut_off_on_a_phone(server: str, browser: object) -> None:
    (chart,) = _charts(browser, f"{server}/?view=Trust+profile&trust=ZA4", "slice")
    assert chart["yticks_left"] >= chart["svg"][0] - 1, chart  # the indicator names start inside the chart
    assert _inside(chart["title"], chart["svg"]) and _inside(chart["xtitle"], chart["svg"]), chart


def test_caterpillar_leaves_room_for_the_chart_on_a_phone(server: str, browser: object) -> None:
    (chart,) = _charts(browser, f"{server}/?view=Indicator&indicator=bowel_mort90&trust=ZA4&chart=caterpillar",
                       "90-day mortality")
    svg, plot = chart["svg"], chart["plot"]
    assert plot[2] - plot[0] >= 0.4 * (svg[2] - svg[0]), chart  # the ranked intervals get 40% of the width
    assert _overlap(chart["footnote"], chart["legend"]) == 0 and _inside(chart["footnote"], svg), chart


def test_overview_counts_table_scrolls_sideways_on_a_phone(server: str, browser: object) -> None:
    """The alerts-and-alarms table (a plain table, wider than a phone) scrolls in its own box instead of running
    off the screen, where its right-hand columns (the counts against chance) could not be reached."""
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{server}/?view=Overview")
    page.wait_for_selector(".st-key-ov_counts table", timeout=120_000)
    box = page.evaluate("""() => { const b = document.querySelector('.st-key-ov_counts');
        return [getComputedStyle(b).overflowX, b.scrollWidth, b.clientWidth, b.getBoundingClientRect().right]; }""")
    page.close()
    overflow, wide, shown, right = box
    assert right <= PHONE["width"], box  # the box itself stays on the screen
    assert wide <= shown or overflow in {"auto", "scroll"}, box  # what does not fit can be scrolled to
