"""Text from data shown as text: never read as Markdown, HTML, LaTeX or a Streamlit directive (#15 item 7).

Trust, alliance and region names, codes, indicator titles and descriptions, file and column names and error
messages that quote any of them are the data owner's (or an uploader's) to choose. Streamlit renders the
body of ``st.markdown``/``st.caption``/alerts/headings and the labels of widgets, expanders, tabs and
metrics as Markdown (links, images, ``$`` LaTeX, ``:red[...]`` colours, emoji codes, bare URLs), so a name
such as ``[details](http://evil)`` would otherwise become a live link on every viewer's page. Pass every
such piece through :func:`md` where it is put into a Markdown string, and :func:`code` where it is shown as
code. Option lists of selectboxes and multiselects and dataframe cells are plain text: leave those as they
are (a backslash would show).
"""

from __future__ import annotations

import re

__all__ = ["code", "markdown_table", "md"]

# characters that can open a Markdown, HTML, LaTeX or Streamlit construct, each of which CommonMark lets a
# backslash make literal: emphasis and strikethrough (* _ ~), code (`), links and images ([ ]), raw HTML and
# entities (< > &), headings (#), tables (|), LaTeX ($) and Streamlit's :colour[...], :material/...: and
# emoji codes (:). Other punctuation (. - ( ) ' % ...) stays as it is, so the text reads as written.
# ":" only where a directive or emoji code could follow ("Trust: name" keeps its colon); "_" only where it
# could open or close emphasis (never between two letters or digits: "monthly_outcomes" stays as it is)
_SPECIAL = re.compile(r"([\\`*~\[\]<>&#|$]|:(?=[\w+-])|(?<![^\W_])_|_(?![^\W_]))")
_BREAKS = re.compile(r"[\r\n\t\v\f\u0085\u2028\u2029]+")
# what opens a block only at the start of a line: a list item ("- x", "+ x", "1. x", "1) x")
_LIST_START = re.compile(r"^(\s*)([-+]|\d+[.)])")
# GitHub Markdown also links bare addresses (www.x.org, http://x.org, a@x.org), and Streamlit does so after
# backslash escapes are read, so they cannot stop it: an invisible WORD JOINER (U+2060) inside the pattern does
_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(www)(\.)|(\\?:)(//)|(@)")


def md(text: object) -> str:
    """``text`` (any value; ``None`` is empty) as Markdown that displays exactly these characters, on one line
    (a bare web or e-mail address also gets an invisible word joiner, so that it is not made a link)."""
    if text is None:
        return ""
    escaped = _SPECIAL.sub(r"\\\1", _BREAKS.sub(" ", str(text)))
    escaped = _LIST_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], escaped)
    return _AUTOLINK.sub(lambda m: _JOINER.join(g for g in m.groups() if g is not None) if m.group(5) is None
                         else _JOINER + "@", escaped)


def code(text: object) -> str:
    """``text`` as an inline code span: nothing inside is interpreted, whatever backticks it holds."""
    body = _BREAKS.sub(" ", "" if text is None else str(text))
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"



def markdown_table(rows: list[dict[str, object]] | object, columns: list[str] | None = None) -> str:
    """A Markdown (HTML) table of ``rows`` (a polars frame, or dicts with ``columns``), every cell through :func:`md`;
    numeric columns right-aligned. For a short table on a page that should stay light: a Markdown table is drawn
    as a plain HTML table (which a screen reader reads as one), where ``st.dataframe`` loads and runs a grid
    component in the browser (about 0.3 s of its main thread on the 2-core test machine)."""
    if hasattr(rows, "iter_rows"):
        columns = list(rows.columns)  # type: ignore[attr-defined]
        rows = list(rows.iter_rows(named=True))  # type: ignore[attr-defined]
    columns = columns or []
    numeric = {c for c in columns
               if all(isinstance(r[c], int | float) and not isinstance(r[c], bool) for r in rows if r[c] is not None)}

    def cell(value: object) -> str:
        return "" if value is None else md(value)

    lines = ["| " + " | ".join(md(c) for c in columns) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]  # type: ignore[index]
    return "\n".join(lines)
