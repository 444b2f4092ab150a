"""The rug's hover box in a real browser where the rug's box is narrower than the rug and scrolled sideways
(1024 px with the sidebar open, a 390 px phone), from the keyboard (#12 builds 2 and 8; the rug review).

Before: the box was placed as if the rug were not scrolled (left of the view, cut off), shrank to a sliver near
the right edge on a phone, and Escape did not dismiss it."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import require_chromium

pytestmark = pytest.mark.browser
require_chromium()

_GEOMETRY = """() => {
  const a = document.activeElement, t = document.querySelector('.am-rug-tip');
  const box = document.querySelector('.am-rug-box');
  const r = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  return {unit: a.dataset.unit || null, square: r(a), tip: r(t), box: r(box), hidden: t.hidden,
          scrolled: box.scrollLeft};
}"""




@pytest.mark.parametrize("width, height", [(1024, 768), (390, 844)])
def test_hover_box_stays_in_view_beside_the_focused_square_when_scrolled(server: str, browser: object,
                                                                          width: int, height: int,
                                                                          tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{server}/?view=Overview")
        page.wait_for_selector("svg.am-rug g.am-flag", timeout=120_000)
        page.evaluate("() => { const b = document.querySelector('.am-rug-box'); b.scrollLeft = b.scrollWidth; }")
        page.wait_for_function("() => document.querySelector('.am-rug-box').scrollLeft > 100")
        # the flagged squares in view after scrolling to the right end: the rightmost-but-visible ones (right of
        # the row labels' column, which stays at the box's left edge over the squares scrolled under it)
        count = page.evaluate("""() => { const box = document.querySelector('.am-rug-box').getBoundingClientRect();
            const frozen = [...document.querySelectorAll('svg.am-rug-rows')].find((e) => e.getClientRects().length)
              .getBoundingClientRect().right;
            const flags = [...document.querySelectorAll('svg.am-rug g.am-flag')];
            flags.forEach((g, k) => g.dataset.k = k);
            return flags.filter(g => { const r = g.getBoundingClientRect();
              return r.left >= frozen && r.right <= box.right; }).map(g => g.dataset.k); }""")
        assert len(count) > 2
        for k in (count[0], count[-1]):
            page.locator(f'svg.am-rug g.am-flag[data-k="{k}"]').focus()
            g = page.evaluate(_GEOMETRY)
            assert not g["hidden"] and g["scrolled"] > 100, g
            (tl, tt, tr, tb), (bl, _, br, _), (sl, st_, sr, sb) = g["tip"], g["box"], g["square"]
            assert bl - 0.5 <= tl and tr <= br + 0.5, g  # inside the rug's box as scrolled, not cut off
            assert tr - tl >= min(200, br - bl - 10), g  # readable, not a sliver
            assert tr <= sl or tl >= sr or tb <= st_ or tt >= sb, g  # does not cover the focused square
        # Tab along the flagged squares from the first: each comes wholly into view, the box beside it
        page.locator("svg.am-rug g.am-flag").first.focus()
        for _ in range(15):
            page.keyboard.press("Tab")
            g = page.evaluate(_GEOMETRY)
            (tl, tt, tr, tb), (bl, _, br, _), (sl, st_, sr, sb) = g["tip"], g["box"], g["square"]
            assert g["unit"] and not g["hidden"] and bl - 0.5 <= sl and sr <= br + 0.5, g
            assert bl - 0.5 <= tl and tr <= br + 0.5 and (tr <= sl or tl >= sr or tb <= st_ or tt >= sb), g
        page.keyboard.press("Escape")
        assert page.evaluate("() => document.querySelector('.am-rug-tip').hidden")
        page.screenshot(path=str(tmp_path / f"rug_{width}.png"))
    finally:
        page.close()
