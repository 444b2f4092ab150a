"""The rug's row labels stay put while its squares scroll sideways (the rug review, 'Left'): on a 390 px phone,
and at 1024 px with the sidebar open, the trust names scrolled away with the squares, so a swiped rug had no row
labels. Now the labels' column stays at the box's left edge over the squares, as a spreadsheet's frozen first
column, in a real browser (Debian chromium): geometry, what is drawn on top, hover, Tab and the outline.

Set RUGFIX_SHOTS to a folder to keep the screenshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import require_chromium

pytestmark = pytest.mark.browser
require_chromium()

# a name's label in the frozen column, the square drawn at the point 30 px right of the column on the same line,
# and what the page draws on top at the label's centre (elementFromPoint: the label itself, not a square over it)
_ROW = """(k) => {
  const box = document.querySelector('.am-rug-box');
  const col = [...box.querySelectorAll('svg.am-rug-rows')].find((e) => e.getClientRects().length);
  const names = [...col.querySelectorAll('text:not([font-weight])')];
  const t = names[k], r = t.getBoundingClientRect(), c = col.getBoundingClientRect(), b = box.getBoundingClientRect();
  const cy = (r.top + r.bottom) / 2, top = document.elementFromPoint((r.left + r.right) / 2, cy);
  const under = document.elementFromPoint(c.right + 30, cy);
  const cell = under && under.closest('[data-tip]');
  return {name: t.querySelector('title').textContent, label: [r.left, r.top, r.right, r.bottom],
          column: [c.left, c.top, c.right, c.bottom], box: [b.left, b.top, b.right, b.bottom],
          topmost: top === t || (top && top.closest('text') === t),
          cell: cell ? cell.dataset.tip.split('\\n')[0] : null, cellBox: cell ? (() => {
            const q = (cell.querySelector('rect') || cell).getBoundingClientRect();
            return [q.left, q.top, q.right, q.bottom]; })() : null,
          scrolled: box.scrollLeft, wide: box.scrollWidth > box.clientWidth};
}"""


def _shot(page: object, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("RUGFIX_SHOTS") or tmp_path)
    page.screenshot(path=str(folder / f"rugfix_{name}.png"))


def _rows_in_view(page: object) -> list[int]:
    """Indexes of the names whose label is inside the window now."""
    return page.evaluate("""() => { const h = window.innerHeight;
        const col = [...document.querySelectorAll('svg.am-rug-rows')].find((e) => e.getClientRects().length);
        return [...col.querySelectorAll('text:not([font-weight])')].map((t, k) => {
          const r = t.getBoundingClientRect(); return r.top >= 80 && r.bottom <= h - 10 ? k : -1; }).filter(k => k >= 0); }""")


@pytest.mark.parametrize("width, height", [(1024, 768), (390, 844)])
def test_row_labels_stay_beside_their_squares_when_the_rug_is_scrolled(server: str, browser: object, width: int,
                                                                       height: int, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{server}/?view=Overview")
        page.wait_for_selector("svg.am-rug g.am-flag", timeout=180_000)
        page.wait_for_selector("svg.am-rug-rows text", state="attached")
        # not scrolled: the frozen column lies exactly over the picture's own labels (the download's picture); on
        # a phone a narrower column (names cut) is shown instead, the squares moved left beside it
        same = page.evaluate("""() => {
            const own = [...document.querySelectorAll('svg.am-rug text[aria-hidden]:not([transform])')];
            const col = [...document.querySelectorAll('svg.am-rug-rows.am-full text')];
            const r = (e) => e.getBoundingClientRect();
            return [own.length, col.length, Math.max(...col.map((t, k) => Math.abs(r(t).left - r(own[k]).left)
              + Math.abs(r(t).top - r(own[k]).top))), col.every((t, k) => t.textContent === own[k].textContent)]; }""")
        assert same[0] == same[1] > 100 and same[3], same
        shown = page.evaluate("""() => { const r = (e) => e.getBoundingClientRect();
            const col = [...document.querySelectorAll('svg.am-rug-rows')].filter((e) => e.getClientRects().length);
            const svg = document.querySelector('svg.am-rug'), x = Number(svg.dataset.left);
            const first = Math.min(...[...svg.querySelectorAll('.am-body > rect[data-tip]')].map((q) => r(q).left));
            return {kinds: col.map((e) => e.classList[1]), right: r(col[0]).right, first, left: r(svg).left + x,
                    box: r(document.querySelector('.am-rug-box')).width,
                    own: [...svg.querySelectorAll('.am-rows text')].filter((e) => e.getClientRects().length).length};
            }""")
        if width > 640:
            assert same[2] < 0.5 and shown["kinds"] == ["am-full"] and abs(shown["first"] - shown["left"]) < 0.5, shown
        else:  # the names take under a third of the rug's box, the squares start just right of them
            assert shown["kinds"] == ["am-narrow"] and shown["own"] == 0, shown
            assert shown["first"] < shown["left"] - 50 and shown["right"] - 24 < shown["box"] / 3, shown
        assert shown["right"] <= shown["first"] <= shown["right"] + 8, shown
        page.locator("svg.am-rug-rows.am-full text:not([font-weight])" if width > 640 else
                     "svg.am-rug-rows.am-narrow text:not([font-weight])").nth(30).scroll_into_view_if_needed()
        _shot(page, tmp_path, f"{width}_unscrolled")
        rows = _rows_in_view(page)
        assert len(rows) > 10
        before = page.evaluate(_ROW, rows[3])
        assert before["wide"], before  # narrower than the rug here: the case under test
        page.evaluate("() => { const b = document.querySelector('.am-rug-box'); b.scrollLeft = b.scrollWidth; }")
        page.wait_for_function("() => document.querySelector('.am-rug-box').scrollLeft > 100")
        _shot(page, tmp_path, f"{width}_scrolled")
        for k in (rows[0], rows[3], rows[len(rows) // 2], rows[-1]):
            g = page.evaluate(_ROW, k)
            (ll, lt, lr, lb), (cl, _, cr, _), (bl, _, br, _) = g["label"], g["column"], g["box"]
            assert g["scrolled"] > 100, g
            assert bl - 0.5 <= cl <= bl + 0.5 and bl <= ll and lr <= cr + 0.5, g  # at the box's left edge, whole
            assert g["topmost"], g  # drawn on top: no square over it
            # beside it, on the same line, a square of the same trust, right of the column and in the box
            assert g["cell"] == g["name"], g
            ql, qt, qr, qb = g["cellBox"]
            assert cr - 0.5 <= ql and qr <= br + 0.5 and qt - 1 <= (lt + lb) / 2 <= qb + 1, g
        # the squares moved under the labels (the test scrolled), the labels did not move
        after = page.evaluate(_ROW, rows[3])
        assert abs(after["label"][0] - before["label"][0]) < 0.5 and after["cell"] == before["name"]
        # hover: a square beside the column shows its own trust; the column itself shows no square's box
        ql, qt, qr, qb = after["cellBox"]
        page.mouse.move((ql + qr) / 2, (qt + qb) / 2)
        page.wait_for_function("() => !document.querySelector('.am-rug-tip').hidden")
        assert page.evaluate("() => document.querySelector('.am-rug-tip b').textContent") == after["name"]
        ll, lt, lr, lb = after["label"]
        page.mouse.move((ll + lr) / 2, (lt + lb) / 2)
        page.wait_for_function("() => document.querySelector('.am-rug-tip').hidden")
        # Tab along flagged squares from the first: each stops wholly right of the frozen column, focus ring on
        page.locator("svg.am-rug g.am-flag").first.focus()
        for _ in range(12):
            page.keyboard.press("Tab")
            g = page.evaluate("""() => { const a = document.activeElement, r = a.getBoundingClientRect();
                const c = [...document.querySelectorAll('svg.am-rug-rows')].find((e) => e.getClientRects().length)
                  .getBoundingClientRect();
                const b = document.querySelector('.am-rug-box').getBoundingClientRect();
                const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2, top = document.elementFromPoint(x, y);
                return {flag: a.classList.contains('am-flag'), square: [r.left, r.right], column: c.right,
                        box: b.right, onTop: !!top && a.contains(top),
                        ring: getComputedStyle(a.querySelector('rect')).strokeWidth,
                        tip: !document.querySelector('.am-rug-tip').hidden}; }""")
            assert g["flag"] and g["tip"] and g["ring"] == "2px", g
            assert g["column"] - 0.5 <= g["square"][0] and g["square"][1] <= g["box"] + 0.5 and g["onTop"], g
        _shot(page, tmp_path, f"{width}_tab")
    finally:
        page.close()


def test_the_highlighted_trusts_outline_and_name_stay_in_view_when_scrolled(server: str, browser: object,
                                                                          tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{server}/?view=Overview&trust=ZA4")
        page.wait_for_selector("svg.am-rug-rows.am-narrow rect.am-highlight", state="attached", timeout=180_000)
        page.locator("svg.am-rug-rows.am-narrow rect.am-highlight").scroll_into_view_if_needed()
        page.evaluate("() => { const b = document.querySelector('.am-rug-box'); b.scrollLeft = b.scrollWidth; }")
        page.wait_for_function("() => document.querySelector('.am-rug-box').scrollLeft > 100")
        g = page.evaluate("""() => { const r = (e) => e.getBoundingClientRect();
            const col = document.querySelector('svg.am-rug-rows.am-narrow'), own = r(col.querySelector('rect.am-highlight'));
            const whole = r(document.querySelector('svg.am-rug rect.am-highlight')), b = r(col);
            return {own: [own.left, own.top, own.bottom], whole: [whole.top, whole.right, whole.bottom],
                    column: [b.left, b.right], box: r(document.querySelector('.am-rug-box')).right}; }""")
        # the name's outline in the column and the squares' outline on the same line, the squares' end in view
        assert g["column"][0] <= g["own"][0] < g["column"][1], g
        assert abs(g["own"][1] - g["whole"][0]) < 0.5 and abs(g["own"][2] - g["whole"][2]) < 0.5, g
        assert g["whole"][1] <= g["box"] + 0.5, g
        _shot(page, tmp_path, "390_highlight_scrolled")
    finally:
        page.close()
