"""Reporting periods in time order, read from their labels.

Periods are text in the results (a period column's values, or a dataset's ``period:`` label). Sorted as text,
month names come out AUG, JUL, JUN, MAY, SEP: the pooled label of June to September read "AUG to SEP" and the
"latest" month of a monthly indicator was May (a real-data review of NHS England's Cancer Waiting Times, whose
MONTH column holds APR, MAY, ...). Every place that orders periods uses :func:`time_order`.

A label is read as a point in time when it is one of:

* a financial year: 2021/22, 2021-22, 2021/2022, FY2021/22 (from its April);
* a date or month: 2023-04-01, 2023-04-01 00:00:00, 2023-04, 2023/04, 01/04/2023 (day first, as in the UK);
* a month and year: Apr 2023, April-2023, APR-23, 2023 Apr;
* a quarter: 2023 Q1, Q1 2023 (calendar), 2023/24 Q1, Q1 2023/24 (financial: Q1 is April to June);
* a year: 2023;
* a month name alone: APR, April. Without a year these are taken in financial-year order, April first, as NHS
  tables hold a financial year's months (a note says so).

Labels pooled by the pipeline ("2021/22 to 2023/24") sort after their first period. When any label cannot be
read, or month names alone are mixed with dated labels, every label is ordered as text, and
:func:`order_note` says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["order_note", "period_key", "time_order"]

_MONTHS = {name: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for name in names}
_POOLED = " to "
_MAX_LABEL = 60  # longer text is not a period label (bounded work per label)

_FINANCIAL_YEAR = re.compile(r"(?:fy\s*)?(\d{4})\s*([/-])\s*(\d{2}|\d{4})")
_DASHED = re.compile(r"(\d{4})-(\d{2})")  # 2011-12: the financial year, or December 2011? (``_dash_years``)
_ISO = re.compile(r"(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?(?:[ t]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_MONTH_YEAR = re.compile(r"([a-z]+)[\s\-_./,]*('?\d{2}|\d{4})")
_YEAR_MONTH = re.compile(r"(\d{4})[\s\-_./,]*([a-z]+)")
_QUARTER_AFTER = re.compile(r"(\d{4})(?:\s*[/-]\s*(\d{2}|\d{4}))?[\s\-_]*q([1-4])")
_QUARTER_BEFORE = re.compile(r"q([1-4])[\s\-_]*(\d{4})(?:\s*[/-]\s*(\d{2}|\d{4}))?")
_YEAR = re.compile(r"\d{4}")


def _next_year(year: int, text: str) -> bool:
    """'22' or '2022' after 2021: the second half of a financial year."""
    return int(text) == (year + 1) % 100 if len(text) == 2 else int(text) == year + 1


def _quarter(year: int, second: str | None, quarter: int) -> tuple[int, int, int] | None:
    if second is None:  # calendar quarter
        return year, 3 * quarter - 2, 1
    if not _next_year(year, second):
        return None
    month = 3 * quarter + 1  # financial: Q1 April, Q4 January of the next year
    return (year, month, 1) if month <= 12 else (year + 1, month - 12, 1)


def _dated(text: str, dash_years: bool) -> tuple[int, int, int] | None:
    """(year, month, day) of a dated label, or None."""
    if (m := _FINANCIAL_YEAR.fullmatch(text)) and (dash_years or m[2] == "/" or text.startswith("fy")
                                                   or len(m[3]) == 4):
        year = int(m[1])
        if _next_year(year, m[3]):
            return year, 4, 1
    if m := _ISO.fullmatch(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3] or 1)
        return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None
    if m := _DAY_FIRST.fullmatch(text):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
        return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None
    if (m := _MONTH_YEAR.fullmatch(text)) and m[1] in _MONTHS:
        year = m[2].lstrip("'")
        return (2000 + int(year) if len(year) == 2 else int(year)), _MONTHS[m[1]], 1
    if (m := _YEAR_MONTH.fullmatch(text)) and m[2] in _MONTHS:
        return int(m[1]), _MONTHS[m[2]], 1
    if m := _QUARTER_AFTER.fullmatch(text):
        return _quarter(int(m[1]), m[2], int(m[3]))
    if m := _QUARTER_BEFORE.fullmatch(text):
        return _quarter(int(m[2]), m[3], int(m[1]))
    if _YEAR.fullmatch(text):
        return int(text), 1, 1
    return None


def _text(label: str) -> str:
    return " ".join(str(label).split()).lower()


def period_key(label: str, *, dash_years: bool = True) -> tuple[str, tuple[int, ...]] | None:
    """('dated', (year, month, day)) or ('month', (place in the financial year,)) for a label read as a point in
    time; None for any other text. ``dash_years``: 2011-12 is the financial year 2011/12 (else December 2011)."""
    text = _text(label)
    if not text or len(text) > _MAX_LABEL:
        return None
    if text in _MONTHS:
        return "month", ((_MONTHS[text] - 4) % 12,)  # April first
    dated = _dated(text, dash_years)
    return ("dated", dated) if dated is not None else None


def _dash_years(labels: list[str]) -> bool:
    """2011-12 is a financial year unless another label written the same way is not one (2011-01: a month)."""
    parts = [_text(part) for p in labels for part in p.split(_POOLED)]
    return all(_next_year(int(m[1]), m[2]) for part in parts if (m := _DASHED.fullmatch(part)))


def _sort_key(label: str, dash_years: bool) -> tuple[str, tuple] | None:
    first, _, last = label.partition(_POOLED)
    start = period_key(first, dash_years=dash_years)
    if start is None:
        return None
    if not last:
        return start[0], (start[1], 0, ())
    end = period_key(last, dash_years=dash_years)
    return (start[0], (start[1], 1, end[1])) if end is not None and end[0] == start[0] else None


def _keys(labels: list[str]) -> list[tuple] | None:
    dash_years = _dash_years(labels)
    keys = [_sort_key(p, dash_years) for p in labels]
    if not keys or any(k is None for k in keys) or len({k[0] for k in keys}) > 1:  # type: ignore[index]
        return None
    return keys


def time_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels in time order (ties, and labels that cannot all be read, in text order)."""
    distinct = sorted({str(p) for p in labels})
    keys = _keys(distinct)
    if keys is None:
        return distinct
    return [p for _, p in sorted(zip(keys, distinct, strict=True), key=lambda kp: kp[0][1])]


def order_note(labels: Iterable[str]) -> str | None:
    """A sentence when several periods are not ordered by time (some label is not read as one), or when month
    names without a year, from both sides of January, are taken April first; None otherwise."""
    distinct = sorted({str(p) for p in labels})
    if len(distinct) < 2:
        return None
    keys = _keys(distinct)
    if keys is None:
        dash_years = _dash_years(distinct)
        unread = next((p for p in distinct if _sort_key(p, dash_years) is None), distinct[0])
        return (f"periods are ordered as text ('{unread}' is not read as a date, month, quarter or financial "
                "year), so the pooled label and the latest period follow that order; label periods e.g. 2023-04 or "
                "Apr 2023")
    places = {k[1][0][0] for k in keys}
    if keys[0][0] == "month" and places & set(range(9)) and places & {9, 10, 11}:  # Apr-Dec and Jan-Mar both
        return ("months without a year are taken in financial-year order (April first); label them with the "
                "year (e.g. Apr 2023) to order them otherwise")
    return None
