"""Markdown/HTML attacks in names (issue #15 item 7): the sample project with hostile names, and an
independent detector of what a Markdown body would render live."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl

HOSTILE_NAMES = ("[x](http://evil)", "![](http://evil/i.png)", "<img src=x onerror=alert(1)>", "**bold**", "$x$",
                 ":red[x]", "# x", "www.evil.example", "a@evil.example", "see http://evil.example/p", "1. listed",
                 "`tick` & <b>b</b>")
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")
_OWN_HTML = re.compile(r"<span style='[^'<>]*'>|</span>")  # the app's own coloured icons (trust profile, trends)
_AUTOLINK = re.compile(r"[a-z][a-z0-9+.-]*://|www\.|[\w.+-]@[\w-]", re.IGNORECASE)
_LIVE = {
    "link": re.compile(r"\]\("), "image": re.compile(r"!\["), "html": re.compile(r"<[A-Za-z/!?]"),
    "latex": re.compile(r"\$"),
    "directive": re.compile(r":[a-z-]+\["), "heading": re.compile(r"(^|\n)\s{0,3}#{1,6}(\s|$)"),
    "list from data": re.compile(r"(^|\n)\s*1\. listed"), "bold from data": re.compile(r"\*\*bold\*\*"),
    "entity": re.compile(r"&[#A-Za-z0-9]+;"),
}


def live_markup(source: str) -> list[str]:
    """The Markdown/HTML constructs a Markdown body would render (after its code spans and backslash
    escapes, which display literally): an independent reading of CommonMark, not the escaper's code."""
    text = _OWN_HTML.sub("", _ESCAPED.sub("E", _CODE_SPAN.sub("C", source)))
    live = [name for name, pattern in _LIVE.items() if pattern.search(text)]
    # GitHub's bare-address links are found in the text after escapes are read: an escape does not stop them
    if _AUTOLINK.search(_ESCAPED.sub(lambda m: m.group()[1], _CODE_SPAN.sub("C", source))):
        live.append("autolink")
    return live


def hostile_project(root: Path, source: Path) -> Path:
    """The sample project with every trust, alliance and region name, and one indicator's title, audit and
    description, replaced by Markdown/HTML attacks (each name kept unique)."""
    shutil.copy(source / "indicators.yaml", root / "indicators.yaml")
    shutil.copytree(source / "sample_data", root / "sample_data")
    units = pl.read_csv(root / "sample_data" / "trusts.csv", infer_schema_length=0)
    renamed = {}
    for column, tag in (("trust_name", "T"), ("cancer_alliance", "A"), ("region", "R")):
        values = units[column].unique(maintain_order=True).to_list()
        renamed[column] = {v: f"{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]} {tag}{i}" for i, v in enumerate(values)}
        units = units.with_columns(pl.col(column).replace(renamed[column]))
    units.write_csv(root / "sample_data" / "trusts.csv")
    for name in ("lung_cns_by_trust.csv", "personalised_care_by_trust.csv"):  # aggregate extracts name them too
        path = root / "sample_data" / name
        frame = pl.read_csv(path, infer_schema_length=0)
        frame.with_columns(pl.col(c).replace(renamed[c]) for c in ("trust_name", "cancer_alliance")
                           if c in frame.columns).write_csv(path)
    text = (root / "indicators.yaml").read_text()
    text = text.replace("title: 90-day mortality after major bowel cancer resection",
                        'title: "90-day **bold** [t](http://evil) <b>x</b> $x$ mortality"', 1)
    text = text.replace("audit: National Bowel Cancer Audit", 'audit: ":red[audit] www.evil.example"', 1)
    text = text.replace("description: Of people who had major bowel cancer surgery, the share who died (from any "
                        "cause) within 90 days.", 'description: "![](http://evil/d.png) # heading <script>x</script>"', 1)
    assert text.count("evil") == 3
    (root / "indicators.yaml").write_text(text)
    return root / "indicators.yaml"
