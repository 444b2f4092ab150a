"""The Overview rug's tumour-site labels fit their column groups (#12 polish item 3): at 1024 px 'Breast' and
'Kidney' overlapped and 'Oesophago-gastric' spilt past its two columns at 1440 px. A label that does not fit is
put on two lines or shortened, and a shortened one is spelt out in the rug's note. Measured in headless Debian
chromium (the oracle: the drawn labels' boxes against their columns), and on the SVG."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import polars as pl
import pytest
from browser_support import chromium
from rug_support import SVG, parse

from audit_metrics import rug, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trusts() -> pl.DataFrame:
    run = run_audit(load_catalogue(ROOT / "indicators.yaml"))
    return views.pooled(run).filter(pl.col("level") == "trust")


def test_labels_fit_their_columns_and_shortened_ones_are_spelt_out(trusts: pl.DataFrame) -> None:
    root = parse(rug.rug_svg(trusts, title="rug", group="cancer_alliance", highlight="ZA4").svg)
    indicators = json.loads(root.get("data-indicators"))
    site_of = dict(zip(trusts["indicator_id"], trusts["tumour_site"], strict=False))
    runs = [(site, len(list(group))) for site, group in itertools.groupby(site_of[i] for i in indicators)]
    assert [s for s, _ in runs] == sorted(set(site_of.values()))  # one run of columns per site, in order
    # the site labels: the first texts with tspans, in the sites' order
    labels = [t for t in root.iter(f"{SVG}text") if t.findall(f"{SVG}tspan")]
    assert [t.find(f"{SVG}title").text for t in labels] == [s for s, _ in runs]
    note = " ".join(t.text or "" for t in root.iter(f"{SVG}text") if t.get("y") and float(t.get("y")) >
                    float(root.get("data-top")) + 15 * len(json.loads(root.get("data-units"))))
    for label, (site, n) in zip(labels, runs, strict=True):
        lines = [s.text for s in label.findall(f"{SVG}tspan")]
        assert max(rug.text_px(line) for line in lines) <= n * rug.CELL_W, (lines, n)
        if site not in {" ".join(lines), "".join(lines)}:  # neither whole nor on two lines: spelt out in the note
            assert len(lines) == 1 and f"{lines[0]} {site}" in note, (lines, site, note)
    assert {"All cancers", "Bowel", "Lung"} <= {" ".join(s.text for s in t.findall(f"{SVG}tspan")) for t in labels}


def test_width_of_arial_against_chromium_measures() -> None:
    """The width table against the label widths chromium drew at 9 px (Liberation Sans, Arial's metrics)."""
    for text, drawn in (("Breast", 26), ("Kidney", 28), ("Oesophago-gastric", 77), ("Pancreatic", 43),
                        ("All cancers", 45), ("Prostate", 33)):
        assert abs(rug.text_px(text) - drawn) <= 1.5, text


# ------------------------------------------------------------------ in the browser


# each site label's drawn box, and its columns' extent from the rug's own geometry (data-left + j * CELL_W)
_LABELS = """() => {
  const svg = document.querySelector('svg.am-rug'), box = svg.getBoundingClientRect();
  // the squares' own place as drawn: on a phone they move left beside the narrow row labels (ui/rug_view.py)
  const sq = svg.querySelector('.am-body > rect[data-tip]');
  const left = Number(svg.dataset.left) + sq.getBoundingClientRect().left - box.left - Number(sq.getAttribute('x'));
  const labels = [...svg.querySelectorAll('text')].filter(t => t.querySelector('tspan'));
  return {indicators: JSON.parse(svg.dataset.indicators),
          labels: labels.map(t => { const r = t.getBoundingClientRect();
                                    return {site: t.querySelector('title').textContent, left: r.left - box.left - left,
                                            right: r.right - box.left - left}; })};
}"""



@pytest.mark.browser
@pytest.mark.parametrize(("width", "height"), [(1024, 768), (390, 844)])
def test_group_labels_sit_inside_their_columns_in_chromium(server: str, trusts: pl.DataFrame, width: int,
                                                           height: int) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(f"{server}/?view=Overview")
        page.wait_for_selector("svg.am-rug text tspan", state="attached", timeout=180_000)
        got = page.evaluate(_LABELS)
        # every column reachable: where the rug is wider than its column (1024 px with the sidebar, a phone) its
        # box scrolls sideways (at 1024 px the last five columns were cut off)
        box = page.evaluate("() => { const b = document.querySelector('.st-key-tartan .am-rug-box');"
                            " const svg = b.querySelector('svg.am-rug');"
                            " return [getComputedStyle(b).overflowX, b.scrollWidth, b.clientWidth,"
                            " svg.getBoundingClientRect().width]; }")
        assert box[0] == "auto" and box[1] >= box[3], box
        if width == 1024:
            assert box[2] < box[3], box  # narrower than the rug here: the test covers the scrolling case
    drawn, ids = got["labels"], got["indicators"]
    site_of = dict(zip(trusts["indicator_id"], trusts["tumour_site"], strict=False))
    first = {s: min(j for j, i in enumerate(ids) if site_of[i] == s) for s in set(site_of.values())}
    count = {s: sum(site_of[i] == s for i in ids) for s in first}
    assert [d["site"] for d in drawn] == sorted(first)
    for d in drawn:
        left, right = first[d["site"]] * rug.CELL_W, (first[d["site"]] + count[d["site"]]) * rug.CELL_W
        assert left - 0.5 <= d["left"] and d["right"] <= right + 0.5, (width, d, left, right)  # inside its columns
    for a, b in itertools.pairwise(drawn):
        assert a["right"] + 1 <= b["left"], (width, a, b)  # no two labels touch
