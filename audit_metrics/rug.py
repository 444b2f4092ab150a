"""The Overview's tartan rug (trusts x indicators, coloured by direction-aware status) as one SVG. Never calls
Streamlit.

Drawn as SVG text rather than a Plotly chart (#12 build 7): the Overview is the dashboard's first screen, and in a
real browser a first visit spent ~1.3 s of its ~3.1 s on the chart library alone (evaluating Streamlit's 4.7 MB
Plotly chunk, ~0.95 s of the main thread, and drawing the rug, ~0.35 s). A plain SVG of the same squares draws in
a few tens of milliseconds and is the same picture in the page, in the downloaded file and when printed.

What it shows, as the Plotly rug did: columns grouped by tumour site, rows by the group level (e.g. Cancer
Alliance), both labelled; a square per result in the status's colour; a mark on each flagged square (filled
worse, outline better, pointing above or below expected: ``views.RUG_MARKS``), so worse and better differ by
shape as well as colour; a hover per square (its ``<title>``: the trust's full name, the indicator and
``views.hover_text``, the funnel's own hover, on the funnel's scale); the highlighted trust's row outlined. Each
flagged square is a focusable button carrying its indicator and trust (``data-indicator``, ``data-unit``) for
click-through (audit_metrics/ui/rug_view.py). The root names its rows' unit codes and columns' indicator ids in
order (``data-units``, ``data-indicators``, JSON) and where the squares start (``data-left``, ``data-top``): square
(i, j) is at (left + j * CELL_W, top + i * CELL_H). A legend and, for a shared copy, footnote lines and a watermark are
part of the picture.

The picture is one whole SVG (the download). For the page it also gives its row labels' column alone, twice
(``Rug.rows``: the picture's own labels at their places; ``Rug.narrow_rows``: a phone's, names cut and group
labels turned), which the page keeps at the left edge while the squares scroll sideways under it, and the squares'
part as ``<g class="am-body">``, which a phone moves left beside the narrower column (ui/rug_view.py).

Every piece of text from data (names, titles, hover) is escaped here, once (``_esc``): the SVG is inserted into
the page as markup.
"""

from __future__ import annotations

import html
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from audit_metrics import views
from audit_metrics.figures import (
    ALLIANCE_SUFFIX,
    NHS_SUFFIX,
    PALETTE,
    TRUST_WORDS,
    direction_of,
    distinct_titles,
    short_names,
)

__all__ = ["CELL_H", "CELL_W", "Rug", "rug_site_labels", "rug_svg", "text_px"]

CELL_W = 22  # a column, px (the square is 1 px narrower: a white gap between columns)
CELL_H = 15  # a row, px
FONT = 9  # labels, px (the title 14, the legend 10)
TITLES_MAX = 230  # the turned indicator titles are cut (with '…') beyond this many px; the hover has them whole
NARROW_NAME = 80  # on a phone the frozen column's names are cut (with '…') beyond this many px; the hover has them
_NARROW_GROUP = 14  # on a phone the group labels stand turned in a strip this wide, beside their rows
_LABEL_GAP = 3  # px kept clear between neighbouring site labels
_CATEGORIES = ("worse_alarm", "worse_alert", "within", "better_alert", "better_alarm",
               "higher_alarm", "higher_alert", "lower_alert", "lower_alarm", "not_assessed")
_PLAIN = {"within", "not_assessed", "None"}
# the marks as paths about a square's centre (filled for worse or for neither direction, outline for better)
_TRIANGLES = {"▲": "M0,-4.5L4.5,3.5L-4.5,3.5Z", "▼": "M0,4.5L4.5,-3.5L-4.5,-3.5Z",
              "△": "M0,-4L4,3L-4,3Z", "▽": "M0,4L4,-3L-4,-3Z"}
# Arial advance widths (thousandths of an em; Liberation Sans has the same) for measuring a label; others 556
_ARIAL_WIDTHS = {**dict.fromkeys("ijl", 222), **dict.fromkeys("ft .,/", 278), **dict.fromkeys("r-()", 333),
                 **dict.fromkeys("cksvxyzJ", 500), "m": 833, "w": 722, **dict.fromkeys("ABEKPSVXY&", 667),
                 **dict.fromkeys("CDHNRU", 722), **dict.fromkeys("GOQ", 778), "M": 833, "W": 944, "I": 278,
                 **dict.fromkeys("FTZ", 611), "L": 556}


@dataclass(frozen=True)
class Rug:
    """The rug as SVG markup, with what a caller needs to know about it."""

    svg: str  # the whole picture: the page shows it, the download is it
    width: int  # px
    height: int  # px
    cells: int  # squares drawn (results)
    flagged: int  # of them flagged (a mark and a button each)
    rows: str = ""  # the row labels' column alone, for the page to hold in place over the squares (see below)
    rows_top: int = 0  # px: where ``rows`` goes in ``svg`` (its left edge is the picture's)
    narrow_rows: str = ""  # the same column for a phone: short names, the group labels turned
    narrow_shift: int = 0  # px: on a phone the squares and their headings move this far left, beside narrow_rows


def text_px(text: str, size: float = FONT) -> float:
    """The drawn width of one line of ``text`` in Arial at ``size`` px."""
    return sum(_ARIAL_WIDTHS.get(ch, 556) for ch in text) * size / 1000


def _two_lines(name: str) -> list[str]:
    """``name`` on two lines, broken at the space or hyphen that makes the wider line narrowest."""
    breaks = [(name[:i], name[i + 1:]) for i, ch in enumerate(name) if ch == " "]
    breaks += [(name[:i + 1], name[i + 1:]) for i, ch in enumerate(name) if ch == "-" and 0 < i < len(name) - 1]
    return list(min(breaks, key=lambda b: max(text_px(b[0]), text_px(b[1])))) if breaks else [name]


def _short_site(name: str, room: float) -> str:
    """An abbreviation that fits ``room`` px: the initials of a name of several words ('OG' for
    'Oesophago-gastric'), else its longest beginning that fits and ends on a consonant, with a full stop
    ('Panc.', 'Br.', 'K.')."""
    words = [w for w in re.split(r"[\s-]+", name) if w]
    if len(words) > 1:
        initials = "".join(w[0].upper() for w in words)
        if text_px(initials) <= room:
            return initials
    stems = [name[:end] for end in range(len(name) - 1, 0, -1) if text_px(name[:end] + ".") <= room]
    stem = next((t for t in stems if (t[-1].isalpha() and t[-1].lower() not in "aeiouy") or len(t) == 1),
                name[:1])
    return stem + "."


def rug_site_labels(sites: Sequence[str], columns: Sequence[int], column_px: float) -> tuple[
        list[list[str]], dict[str, str]]:
    """Each tumour site's label, fitted to its ``columns`` columns of ``column_px`` px: the name, else the name
    on two lines, else an abbreviation. Returns each label's lines (plain text) and {abbreviation: name} for the
    abbreviated ones (the rug's note spells them out). Labels stay distinct."""
    plain: list[list[str]] = []
    for name, n in zip(sites, columns, strict=True):
        room = n * column_px - _LABEL_GAP
        lines = _two_lines(name)
        if text_px(name) <= room:
            plain.append([name])
        elif len(lines) == 2 and max(text_px(line) for line in lines) <= room:
            plain.append(lines)
        else:
            plain.append([_short_site(name, room)])
    joined = ["\n".join(p) for p in plain]
    plain = [p if joined.count(j) == 1 else [s] for p, j, s in zip(plain, joined, sites, strict=True)]
    abbreviated = {p[0]: s for p, s in zip(plain, sites, strict=True) if len(p) == 1 and p[0] != s}
    return plain, abbreviated


def _esc(value: object) -> str:
    """Text from data as SVG/HTML text (quotes too: it also goes into attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _cut(text: str, room: float) -> str:
    """``text`` cut to ``room`` px with an ellipsis."""
    if text_px(text) <= room:
        return text
    while text and text_px(text + "…") > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _category(status: str, better: str, *, only_limit: bool = False) -> str:
    """The square's shade. ``only_limit``: the indicator has one limit, which is its outer limit too (the
    legend's 'beyond the ... limit' names the outer limit of every indicator), so beyond it is the darker shade."""
    if status in _PLAIN:
        return "not_assessed" if status == "None" else status
    level = "alarm" if only_limit else status.split("_")[0]
    return f"{direction_of(status, better)}_{level}"


def single_limit_indicators(grid: pl.DataFrame) -> set[str]:
    """Indicators of ``grid`` with one limit: alert limits and never an alarm limit (pipeline leaves the alarm
    columns empty for an indicator with ``limits: [c]``)."""
    if not {"indicator_id", "lower_alert", "lower_alarm"} <= set(grid.columns):
        return set()

    def present(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.Float64, strict=False).fill_nan(None).is_not_null().any()

    found = grid.group_by("indicator_id").agg(present("lower_alert").alias("alert"),
                                               present("lower_alarm").alias("alarm"))
    return set(found.filter(pl.col("alert") & ~pl.col("alarm"))["indicator_id"].cast(pl.String).to_list())


def _legend_items(alarm: str) -> list[tuple[str, str | None, str]]:
    return [("worse_alert", "▲", "Worse than expected (▲ above, ▼ below)"),
            ("better_alert", "△", "Better (△ above, ▽ below)"),
            ("within", None, "As expected"), ("not_assessed", None, "Not assessed"),
            ("worse_alarm", None, f"Darker: beyond the {alarm} limit")]


def _legend_width(alarm: str) -> float:
    """The legend's drawn width, px."""
    return sum(16 + text_px(words, 10) + 14 for _, _, words in _legend_items(alarm)) - 14


def _legend(y: float, alarm: str) -> list[str]:
    """The key: colours and marks in words (the page's text says the same)."""
    out, x = [], 0.0
    for category, mark, words in _legend_items(alarm):
        out.append(f'<rect x="{x:g}" y="{y - 9:g}" width="12" height="11" fill="{PALETTE[category]}"/>')
        if mark:
            out.append(_mark(mark, x + 6, y - 3.5))
        out.append(f'<text x="{x + 16:g}" y="{y:g}" class="am-legend">{_esc(words)}</text>')
        x += 16 + text_px(words, 10) + 14
    return out


def _mark(mark: str, cx: float, cy: float) -> str:
    outline = mark in {"△", "▽"}
    paint = 'fill="none" stroke="white" stroke-width="1.5"' if outline else 'fill="white"'
    return f'<path d="{_TRIANGLES[mark]}" transform="translate({cx:g},{cy:g})" {paint}/>'


def _group_runs(groups_of_rows: Sequence[str]) -> list[tuple[str, int, int]]:
    """Each group's (name, first row, rows), in order."""
    runs: list[tuple[str, int, int]] = []
    for i, g in enumerate(groups_of_rows):
        if runs and runs[-1][0] == g:
            runs[-1] = (g, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((g, i, 1))
    return runs


def _dividers(groups_of_rows: Sequence[str], *, top: float, x1: float, x2: float) -> list[str]:
    """A line above each group but the first."""
    return [f'<line x1="{x1:g}" x2="{x2:g}" y1="{top + i * CELL_H - 0.5:g}" y2="{top + i * CELL_H - 0.5:g}" '
            'stroke="#425563"/>' for _, i, _ in _group_runs(groups_of_rows)[1:]]


def _row_labels(rows_names: Sequence[object], names: Sequence[str], groups_of_rows: Sequence[str],
                group_labels: Mapping[str, str], *, top: float, group_w: float) -> list[str]:
    """The rows' labels: each group's label at its first row and the names (their full name as a ``<title>``).
    Hidden from screen readers: each flagged square's button names its trust and indicator (before, ~200 names
    were read as one run of text ahead of the first button)."""
    out = [f'<text class="am-label" aria-hidden="true" x="8" y="{top + i * CELL_H + CELL_H - 4:g}" '
           f'font-weight="bold"><title>{_esc(g)}</title>{_esc(group_labels[g])}</text>'
           for g, i, _ in _group_runs(groups_of_rows)]
    out += [f'<text class="am-label" aria-hidden="true" x="{8 + group_w:g}" y="{top + i * CELL_H + CELL_H - 4:g}">'
            f'<title>{_esc(rows_names[i])}</title>{_esc(name)}</text>' for i, name in enumerate(names)]
    return out


def _narrow_row_labels(rows_names: Sequence[object], names: Sequence[str], groups_of_rows: Sequence[str],
                       group_labels: Mapping[str, str], *, top: float) -> list[str]:
    """The rows' labels for a phone: each group's label turned in a strip beside its rows (cut to their height),
    and the names cut to ``NARROW_NAME`` px; full names as ``<title>``s."""
    out = []
    for g, i, n in _group_runs(groups_of_rows):
        x, y = _NARROW_GROUP - 4, top + (i + n / 2) * CELL_H
        out.append(f'<text class="am-label" aria-hidden="true" font-weight="bold" text-anchor="middle" '
                   f'transform="translate({x:g},{y:g}) rotate(-90)"><title>{_esc(g)}</title>'
                   f'{_esc(_cut(group_labels[g], n * CELL_H - 4))}</text>')
    x = 4 + (_NARROW_GROUP if groups_of_rows else 0)
    out += [f'<text class="am-label" aria-hidden="true" x="{x:g}" y="{top + i * CELL_H + CELL_H - 4:g}">'
            f'<title>{_esc(rows_names[i])}</title>{_esc(_cut(name, NARROW_NAME))}</text>' for i, name in enumerate(names)]
    return out


def _wrap_px(text: str, room: float, size: float) -> list[str]:
    """``text`` in lines of at most ``room`` px at ``size`` px (a word longer than that on a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_px(f"{lines[-1]} {word}", size) <= room:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def rug_svg(grid: pl.DataFrame, *, title: str, group: str | None = None,
            risk_adjusted: Sequence[str] = (), coverage: Mapping[str, float] | None = None,
            highlight: str | None = None, footnote: Sequence[str] = (), watermark: str | None = None,
            alarm: str = "99.8%") -> Rug:
    """The rug of ``grid`` as SVG.

    ``grid`` has columns unit_code, unit_name, indicator_id, indicator_title, tumour_site, status, better,
    status_label, the ``group`` column, and the results' value columns for the hover (a null status: a result
    withheld as small numbers). ``alarm`` names the outer limit in the legend (e.g. '99.8%'). ``highlight`` is a
    unit_code whose row (name and squares) is outlined; ``footnote`` lines and a ``watermark`` (e.g. 'Synthetic
    data') are drawn under and across it.

    Also returns the row labels' column alone (``Rug.rows``, from the column headings' band to the last row, a
    white background under the same labels at the same places, ``rows_top`` px down): the page lays it over the
    picture's own labels and keeps it at the left edge when the squares are scrolled sideways, as a spreadsheet's
    frozen first column (ui/rug_view.py). The picture (``Rug.svg``) is whole and renders alone.
    """
    by = [group] if group and group in grid.columns else []
    grid = grid.sort([*by, "unit_name"], nulls_last=True)
    rows = grid.select(*by, "unit_code", "unit_name").unique(maintain_order=True)
    cols = grid.select("tumour_site", "indicator_id", "indicator_title").unique(maintain_order=True).sort(
        "tumour_site", "indicator_title", maintain_order=True)
    row_of = {c: i for i, c in enumerate(rows["unit_code"])}
    col_of = {c: j for j, c in enumerate(cols["indicator_id"])}
    names = short_names([str(n) for n in rows["unit_name"]], TRUST_WORDS, NHS_SUFFIX)
    groups_of_rows = ([str(g) if g is not None else "(none)" for g in rows[group]] if by else [])
    group_labels = dict(zip(groups_of_rows, short_names(groups_of_rows, ALLIANCE_SUFFIX), strict=True))
    sites = [str(s) for s in cols["tumour_site"]]
    runs: dict[str, int] = {}
    for s in sites:
        runs[s] = runs.get(s, 0) + 1
    site_lines, abbreviated = rug_site_labels(list(runs), list(runs.values()), CELL_W)
    titles = [str(t) for t in cols["indicator_title"]]
    # turned, without the opening every title shares ('…suspected breast cancer'): cut at TITLES_MAX, the Faster
    # Diagnosis columns all read 'Told the outcome within 28 days of an urgent referral for…' (the hover has it whole)
    shown = distinct_titles(titles)
    # geometry: the group labels' column, the trust labels' column, then the squares
    group_w = (max((text_px(g) for g in group_labels.values()), default=0) + 10) if by else 0
    name_w = max((text_px(n) for n in names), default=0) + 8
    left = math.ceil(8 + group_w + name_w)  # whole pixels: squares on the pixel grid, crisp
    # on a phone: the narrow column's width, and how far left the squares move to sit beside it
    narrow_left = min(left, math.ceil(4 + (_NARROW_GROUP if by else 0)
                                      + max((text_px(_cut(n, NARROW_NAME)) for n in names), default=0) + 8))
    shift = left - narrow_left
    # wide enough for the legend (a rug of a few columns cut it off), on a phone too
    key_w = math.ceil(_legend_width(alarm) + 4)
    width = max(int(left + CELL_W * cols.height + 10), key_w)
    narrow_w = max(width - shift, key_w)
    # title and notes wrapped to the narrower picture a phone shows (the picture's right end moves left by shift)
    title_lines = _wrap_px(title, max(300, narrow_w - 4), 14) or [title]
    legend_y = 14 + 18 * len(title_lines) + 4
    sites_top = legend_y + 14
    titles_h = min(TITLES_MAX, max((text_px(t) for t in shown), default=0)) + 6
    top = math.ceil(sites_top + 2 * 11 + 4 + titles_h)
    grid_h = CELL_H * rows.height
    notes = []
    chars = max(40, int(narrow_w / 5))
    if abbreviated:
        notes = textwrap.wrap("; ".join(f"{a} {n}" for a, n in abbreviated.items()), chars)
    foot = [line for text in footnote for line in textwrap.wrap(text, chars) or [""]]
    height = int(top + grid_h + 8 + 12 * len(notes) + (6 if foot else 0) + 12 * len(foot) + 6)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="am-rug" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="group" aria-label="{_esc(title)}" data-title="{_esc(title)}" '
           f'data-units="{_esc(json.dumps(rows["unit_code"].to_list()))}" '
           f'data-indicators="{_esc(json.dumps(cols["indicator_id"].to_list()))}" data-left="{left:g}" data-top="{top:g}" '
           f'data-highlight="{_esc(highlight or "")}" style="--am-shift:{-shift}px;--am-narrow-width:{narrow_w}px" '
           'fill="#231F20" font-family="Arial, Liberation Sans, Helvetica, sans-serif">',
           "<style>.am-legend{font-size:10px}.am-label{font-size:9px}"
           ".am-flag{cursor:pointer}.am-flag:focus{outline:none}.am-flag:focus rect,.am-flag:hover rect"
           "{stroke:#231F20;stroke-width:2}</style>",
           f'<rect width="{width}" height="{height}" fill="white"/>']
    out += [f'<text x="0" y="{16 + 18 * k}" font-size="14">{_esc(line)}</text>' for k, line in enumerate(title_lines)]
    out += _legend(legend_y, alarm)
    # rows: group labels and trust names (the page hides them on a phone: its narrow column shows them)
    row_names = rows["unit_name"].to_list()
    out += ['<g class="am-rows">', *_row_labels(row_names, names, groups_of_rows, group_labels, top=top,
                                                group_w=group_w), "</g>"]
    # the body: what moves left on a phone (ui/rug_view.py) beside the narrow column
    out.append('<g class="am-body">')
    # columns: site labels over their columns, dividers between sites, the indicator titles turned
    x0 = left
    for (site, n), lines in zip(runs.items(), site_lines, strict=True):
        centre = x0 + n * CELL_W / 2
        tspans = "".join(f'<tspan x="{centre:g}" dy="{0 if k == 0 else 11}">{_esc(line)}</tspan>'
                         for k, line in enumerate(lines))
        out.append(f'<text class="am-label" text-anchor="middle" y="{sites_top + 9:g}"><title>{_esc(site)}</title>'
                   f'{tspans}</text>')
        if x0 > left:
            out.append(f'<line x1="{x0 - 0.5:g}" x2="{x0 - 0.5:g}" y1="{sites_top - 2:g}" y2="{top + grid_h:g}" '
                       'stroke="#425563" stroke-width="1"/>')
        x0 += n * CELL_W
    for j, (t, label) in enumerate(zip(titles, shown, strict=True)):
        x = left + j * CELL_W + CELL_W / 2 + 3
        out.append(f'<text class="am-label" aria-hidden="true" transform="translate({x:g},{top - 4:g}) rotate(-90)">'
                   f'<title>{_esc(t)}</title>{_esc(_cut(label, TITLES_MAX))}</text>')
    out += _dividers(groups_of_rows, top=top, x1=8, x2=left + CELL_W * cols.height)
    # the squares: one per result; a flagged one is a button with its mark
    cov = coverage or {}
    single = single_limit_indicators(grid)
    cells = flagged = 0
    # in reading order (row by row, left to right): the order Tab reaches the flagged squares
    for r in sorted(grid.iter_rows(named=True), key=lambda r: (row_of[r["unit_code"]], col_of[r["indicator_id"]])):
        i, j = row_of[r["unit_code"]], col_of[r["indicator_id"]]
        status = str(r["status"])
        x, y = left + j * CELL_W, top + i * CELL_H
        if r["status"] is None:
            text = "Not shown (small numbers)"
        else:
            text = views.hover_text(views.on_scale(r, risk_adjusted=r["indicator_id"] in risk_adjusted,
                                                   coverage=cov.get(r["indicator_id"], 0.95))).replace("<br>", "\n")
        tip = _esc(f"{r['unit_name']}\n{r['indicator_title']}\n{text}")
        square = (f'<rect x="{x:g}" y="{y:g}" width="{CELL_W - 1}" height="{CELL_H - 1}" '
                  f'fill="{PALETTE[_category(status, r["better"], only_limit=r["indicator_id"] in single)]}"/>')
        cells += 1
        if status in _PLAIN:
            out.append(square.replace("/>", f"><title>{tip}</title></rect>"))
            continue
        flagged += 1
        mark = views.RUG_MARKS[(direction_of(status, r["better"]), status.split("_")[1])]
        label = _esc(f"{r['unit_name']}, {r['indicator_title']}: {r['status_label']}. Open it")
        out.append(f'<g class="am-flag" tabindex="0" role="button" aria-label="{label}" '
                   f'data-indicator="{_esc(r["indicator_id"])}" data-unit="{_esc(r["unit_code"])}" '
                   f'data-mark="{mark}"><title>{tip}</title>{square}'
                   f'{_mark(mark, x + (CELL_W - 1) / 2, y + (CELL_H - 1) / 2)}</g>')
    if watermark:
        out.append(f'<text x="{width / 2:g}" y="{top + grid_h / 2:g}" font-size="56" fill="#768692" '
                   f'fill-opacity="0.18" text-anchor="middle" transform="rotate(-30 {width / 2:g} {top + grid_h / 2:g})" '
                   f'pointer-events="none">{_esc(watermark)}</text>')
    out.append("</g>")
    # the highlighted trust's row outlined, its name too (the name stays in view when the squares scroll)
    outline = None
    if highlight is not None and highlight in row_of:
        y = top + row_of[highlight] * CELL_H
        outline = (f'<rect class="am-highlight" x="{5 + group_w:g}" y="{y - 1.5:g}" '
                   f'width="{left - 5 - group_w + CELL_W * cols.height + 1:g}" height="{CELL_H + 2:g}" fill="none" '
                   f'stroke="{PALETTE["highlight"]}" stroke-width="2.5"/>')
        out.append(outline)
    y = top + grid_h + 8
    for line in notes:
        y += 12
        out.append(f'<text class="am-label" x="8" y="{y:g}">{_esc(line)}</text>')
    y += 6 if foot else 0
    for line in foot:
        y += 12
        out.append(f'<text class="am-label" x="8" y="{y:g}" fill="#425563">{_esc(line)}</text>')
    out.append("</svg>")
    # the row labels' column alone, 4 px short of the squares (the outline's left edge stays the picture's)
    rows_top = math.floor(sites_top - 4)
    rows_h = math.ceil(top + grid_h + 2) - rows_top

    def column(kind: str, w: int, labels: list[str], divider_x: float, outline_x: float) -> str:
        """The labels' column ``w`` px wide, on white, with the group dividers and the outline (from ``outline_x``)."""
        moved = outline.replace(f'x="{5 + group_w:g}"', f'x="{outline_x:g}"', 1) if outline else None
        return "".join([
            f'<svg xmlns="http://www.w3.org/2000/svg" class="am-rug-rows {kind}" width="{w}" height="{rows_h}" '
            f'viewBox="0 {rows_top} {w} {rows_h}" aria-hidden="true" fill="#231F20" '
            'font-family="Arial, Liberation Sans, Helvetica, sans-serif"><style>.am-label{font-size:9px}</style>',
            f'<rect y="{rows_top}" width="{w}" height="{rows_h}" fill="white"/>', *labels,
            *_dividers(groups_of_rows, top=top, x1=divider_x, x2=w), *([moved] if moved else []), "</svg>"])

    wide = column("am-full", left - 4, _row_labels(row_names, names, groups_of_rows, group_labels, top=top,
                                                   group_w=group_w), 8, 5 + group_w)
    narrow = column("am-narrow", narrow_left - 4, _narrow_row_labels(row_names, names, groups_of_rows,
                                                                      group_labels, top=top),
                    2, 1 + (_NARROW_GROUP if by else 0))
    return Rug(svg="".join(out), width=width, height=height, cells=cells, flagged=flagged, rows=wide,
               rows_top=rows_top, narrow_rows=narrow, narrow_shift=shift)
