"""Reading the Overview's rug (audit_metrics/rug.py) as a browser would: the SVG parsed as XML, each square found
by its place, its hover from its ``<title>`` (the text the page's tooltip shows, ui/rug_view.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from streamlit.testing.v1 import AppTest

from audit_metrics.rug import CELL_H, CELL_W

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Square:
    indicator_id: str
    unit_code: str
    fill: str
    tip: str
    mark: str | None  # the flagged square's mark (▲ ▼ △ ▽), None when not flagged
    button: ET.Element | None  # the flagged square's focusable group


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def squares(root: ET.Element) -> dict[tuple[str, str], Square]:
    """Every square, by (indicator_id, unit_code) from its place in the grid."""
    units, indicators = json.loads(root.get("data-units")), json.loads(root.get("data-indicators"))
    left, top = float(root.get("data-left")), float(root.get("data-top"))
    out: dict[tuple[str, str], Square] = {}

    def add(rect: ET.Element, group: ET.Element | None) -> None:
        j, i = (float(rect.get("x")) - left) / CELL_W, (float(rect.get("y")) - top) / CELL_H
        assert j.is_integer() and i.is_integer(), (rect.attrib, left, top)
        key = (indicators[int(j)], units[int(i)])
        assert key not in out, key
        owner = group if group is not None else rect
        title = owner.find(f"{SVG}title")
        out[key] = Square(*key, fill=rect.get("fill"), tip=title.text if title is not None else "",
                          mark=group.get("data-mark") if group is not None else None, button=group)

    body = root.find(f"{SVG}g[@class='am-body']")  # the squares and their headings (moved left on a phone)
    for child in body if body is not None else root:
        if child.tag == f"{SVG}rect" and child.find(f"{SVG}title") is not None:
            add(child, None)
        elif child.tag == f"{SVG}g" and child.get("class") == "am-flag":
            add(child.find(f"{SVG}rect"), child)
    return out


def rug_of(at: AppTest) -> ET.Element | None:
    """The rug drawn in an AppTest run (the rug component's data), or None when there is none."""
    for element in at.get("bidi_component"):
        proto = getattr(element, "proto", None)
        if getattr(proto, "component_name", None) == "audit_metrics.rug":
            return parse(json.loads(proto.json)["svg"])
    return None
