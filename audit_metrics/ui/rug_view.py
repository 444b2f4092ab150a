"""The Overview's rug in the page: the SVG of ``audit_metrics.rug`` with an instant hover and click-through.

A Streamlit component (``st.components.v2``, drawn in the page, no iframe) whose script and style are constants
here: no text from data is ever script. The rug's markup (built and escaped by ``rug.rug_svg``) is the component's
data; the script puts it in the page and then only reads it:

- the hover: each square's ``<title>`` (the trust, the indicator and the funnel's hover text) moves into the
  square's ``data-tip`` and is shown at once beside the pointer (a browser's own tooltip waits about a second),
  as text (``textContent``), never as markup; it also follows the keyboard's focus, beside the focused square
  (never over it), inside the part of the rug in view when the rug's box is scrolled sideways, and Escape hides it;
- a click on a flagged square, or Enter or Space on one reached by Tab, sends its indicator and trust back
  (the ``open`` trigger): the page picks them under "Open a result", as the Plotly rug's selection did;
- the rows' labels stay in view when the rug's box is scrolled sideways (a 390 px phone; 1024 px with the
  sidebar open): ``Rug.rows``, the labels' column alone, lies over the picture's own labels (the same labels at
  the same places) and sticks to the box's left edge (CSS ``position: sticky``), so the squares scroll under it
  like a spreadsheet's frozen first column; Tab and scroll-into-view stop the squares right of it. On a phone
  (up to 640 px) a narrower column (``Rug.narrow_rows``: names cut, full on hover; group labels turned) takes its
  place and the squares and their headings move left beside it (``Rug.narrow_shift``, CSS), so about half the
  screen is squares, not a third;
- once the rug is drawn it tells the page (``am-first-screen``), so the deferred chart-library preload
  (ui/preload.py) starts after the first screen rather than competing with it.

See SECURITY.md "Scripts in the page".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import streamlit as st

from audit_metrics.rug import Rug

__all__ = ["KEY", "picked", "show"]

KEY = "ov_rug"

_CSS = """
.am-rug-box {position: relative; line-height: 0; overflow-x: auto; max-width: 100%; display: grid;
  justify-content: start; scroll-padding-left: var(--am-pad, 0px);}
.am-rug-box svg {display: block; max-width: none; grid-area: 1 / 1;}
.am-rug-box svg.am-rug-rows {position: sticky; left: 0; z-index: 1; align-self: start;}
.am-rug-box svg.am-rug-rows.am-narrow {display: none;}
.am-rug-box.am-scrolled svg.am-rug-rows {box-shadow: 3px 0 4px -2px rgba(0,0,0,.25);}
@media (max-width: 640px) {
  .am-rug-box {scroll-padding-left: var(--am-pad-narrow, 0px);}
  .am-rug-box svg.am-rug-rows.am-full, .am-rug-box svg.am-rug > .am-rows {display: none;}
  .am-rug-box svg.am-rug-rows.am-narrow {display: block;}
  .am-rug-box svg.am-rug {width: var(--am-narrow-width);}
  .am-rug-box svg.am-rug > .am-body, .am-rug-box svg.am-rug > .am-highlight {transform: translateX(var(--am-shift));}
}
.am-rug-tip {position: absolute; z-index: 20; pointer-events: none; white-space: pre-line; line-height: 1.35;
  width: max-content; max-width: 340px; padding: 6px 8px; background: #fff; color: #231F20; border: 1px solid #425563;
  border-radius: 3px; box-shadow: 0 2px 6px rgba(0,0,0,.18); font: 12px/1.35 Arial, Helvetica, sans-serif;}
.am-rug-tip b {display: block;}
"""

_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let box = parentElement.querySelector(':scope > .am-rug-box');
  if (!box) {
    box = document.createElement('div');
    box.className = 'am-rug-box';
    parentElement.appendChild(box);
  }
  if (box.dataset.digest !== data.digest) {
    // the picture, and over its left edge its row labels' column alone (from the server, escaped there), which
    // stays put while the squares scroll sideways under it: a spreadsheet's frozen first column
    box.innerHTML = data.svg + (data.rows || '') + (data.narrow_rows || '');
    box.dataset.digest = data.digest;
    for (const rows of box.querySelectorAll(':scope > svg.am-rug-rows')) {
      rows.style.marginTop = (Number(data.rows_top) || 0) + 'px';
      // a square reached by Tab or scrolled into view stops right of the frozen column, not under it
      box.style.setProperty(rows.classList.contains('am-narrow') ? '--am-pad-narrow' : '--am-pad',
                            (Number(rows.getAttribute('width')) || 0) + 'px');
    }
    // on a phone (CSS above) the squares move left beside the narrow column and the picture is that much
    // narrower: cut at its right, not scaled
    const picture = box.querySelector(':scope > svg.am-rug');
    if (picture) picture.setAttribute('preserveAspectRatio', 'xMinYMin slice');
    box.classList.toggle('am-scrolled', box.scrollLeft > 0);
    for (const t of box.querySelectorAll('rect > title, g.am-flag > title')) {
      t.parentNode.dataset.tip = t.textContent;
      t.remove();
    }
    const tip = document.createElement('div');
    tip.className = 'am-rug-tip';
    tip.setAttribute('role', 'tooltip');
    tip.hidden = true;
    box.appendChild(tip);
  }
  box._amTrigger = setTriggerValue;  // the newest (a rerun calls this again); the listeners below are added once
  if (!box._amWired) {
    box._amWired = true;
    const tipOf = () => box.querySelector(':scope > .am-rug-tip');
    // a: what the box must not cover (the pointer, or the focused square), in the page's coordinates; the box
    // goes right of and below it, else left of or above it, inside the part of the rug in view (scrolled sideways)
    const show = (el, a) => {
      const tip = tipOf(), lines = (el.dataset.tip || '').split('\\n');
      const head = document.createElement('b');
      head.textContent = lines[0];
      tip.replaceChildren(head, document.createTextNode(lines.slice(1).join('\\n')));
      tip.style.maxWidth = Math.max(120, Math.min(340, box.clientWidth - 8)) + 'px';
      tip.hidden = false;
      const room = box.getBoundingClientRect(), sx = box.scrollLeft, w = tip.offsetWidth, h = tip.offsetHeight;
      const x0 = room.left - sx, y0 = room.top - box.scrollTop;
      let left = a.right - x0, top = a.bottom - y0;
      if (left + w > sx + box.clientWidth) left = a.left - x0 - w;
      if (top + h > box.scrollHeight) top = a.top - y0 - h;
      tip.style.left = Math.max(sx, Math.min(left, sx + box.clientWidth - w)) + 'px';
      tip.style.top = Math.max(0, top) + 'px';
    };
    const hide = () => { const tip = tipOf(); if (tip) tip.hidden = true; };
    const cell = (target) => target && target.closest ? target.closest('[data-tip]') : null;
    const open = (el) => {
      const flag = el && el.closest ? el.closest('g.am-flag') : null;
      if (flag) box._amTrigger('open', {indicator: flag.dataset.indicator, unit: flag.dataset.unit});
    };
    box.addEventListener('pointermove', (e) => {
      const el = cell(e.target);
      if (el) show(el, {left: e.clientX - 14, right: e.clientX + 14, top: e.clientY - 14, bottom: e.clientY + 14});
      else hide();
    });
    box.addEventListener('pointerleave', hide);
    box.addEventListener('scroll', () => box.classList.toggle('am-scrolled', box.scrollLeft > 0), {passive: true});
    box.addEventListener('click', (e) => open(e.target));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(e.target); }
      if (e.key === 'Escape') hide();  // the box over the rug can be dismissed (WCAG 1.4.13); Tab shows the next
    });
    box.addEventListener('focusin', (e) => {
      const el = cell(e.target);
      if (el) {
        el.scrollIntoView({block: 'nearest', inline: 'nearest'});  // a square at the box's edge: all of it in view
        const r = el.getBoundingClientRect();
        show(el, {left: r.left - 4, right: r.right + 4, top: r.top - 4, bottom: r.bottom + 4});
      }
    });
    box.addEventListener('focusout', hide);
  }
  window.dispatchEvent(new Event('am-first-screen'));
}
"""

_COMPONENT = st.components.v2.component("audit_metrics.rug", css=_CSS, js=_JS, isolate_styles=False)


def show(rug: Rug, *, on_open: Callable[[], None]) -> None:
    """Draw ``rug``; ``on_open`` runs when a flagged square is clicked (read it with :func:`picked`)."""
    digest = hashlib.sha256(rug.svg.encode()).hexdigest()[:16]
    _COMPONENT(key=KEY, data={"svg": rug.svg, "rows": rug.rows, "narrow_rows": rug.narrow_rows,
                              "rows_top": rug.rows_top, "digest": digest}, on_open_change=on_open, height=rug.height)


def picked() -> tuple[str, str] | None:
    """(indicator_id, unit_code) of the flagged square just clicked, if the page sent one (as sent: check it)."""
    state = st.session_state.get(KEY)
    value = getattr(state, "open", None) if state is not None else None
    if value is None and isinstance(state, dict):
        value = state.get("open")
    if not isinstance(value, dict):
        return None
    indicator, unit = value.get("indicator"), value.get("unit")
    return (indicator, unit) if isinstance(indicator, str) and isinstance(unit, str) else None
