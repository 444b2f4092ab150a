"""The Overview rug's tumour-site group labels fit their column groups (#12 polish item 3): at 1024 px 'Breast' and
'Kidney' overlapped and 'Oesophago-gastric' spilt past its two columns at 1440 px. A label that does not fit is
put on two lines or shortened, and a shortened one is spelt out in the axis note. Measured in headless Debian
chromium (the oracle: the drawn labels' boxes against their columns), and on the figure."""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from browser_support import app_server, chromium, require_chromium

from audit_metrics import figures, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rug() -> dict:
    run = run_audit(load_catalogue(ROOT / "indicators.yaml"))
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    return figures.tartan_figure(trusts, title="rug", group="cancer_alliance", highlight="ZA4").to_dict()


def _groups(labels: list[str]) -> list[tuple[str, int]]:
    """(label, number of columns) for each run of equal labels, in order."""
    out: list[tuple[str, int]] = []
    for label in labels:
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1] + 1)
        else:
            out.append((label, 1))
    return out


def test_labels_fit_at_the_narrowest_layout_and_shortened_ones_are_spelt_out(rug: dict) -> None:
    heat = rug["data"][0]
    groups = _groups(list(heat["x"][0]))
    sites = list(dict.fromkeys(heat["meta"]["tumour_site"]))
    assert len(groups) == len(sites)  # one label per site, in the sites' order, none merged
    layout = rug["layout"]
    column = (figures.RUG_NARROWEST_FIGURE - layout["margin"]["l"] - layout["margin"]["r"]) / len(heat["x"][0])
    note = html.unescape(layout["xaxis"]["title"]["text"]).replace("<br>", " ").replace("\u00a0", " ")
    for (label, n), site in zip(groups, sites, strict=True):
        lines = html.unescape(label).split("<br>")
        assert max(figures._text_px(line) for line in lines) <= n * column, (label, n)
        if site not in {" ".join(lines), "".join(lines)}:  # neither whole nor on two lines: spelt out in the note
            assert f"{html.unescape(label)} {site}" in note
    # the whole names where they fit at 13 px a column (four and five columns)
    assert {"All cancers", "Bowel", "Lung"} <= {g for g, _ in groups}


def test_width_of_arial_against_chromium_measures() -> None:
    """The width table against the label widths chromium drew at 9 px (Liberation Sans, Arial's metrics)."""
    for text, drawn in (("Breast", 26), ("Kidney", 28), ("Oesophago-gastric", 77), ("Pancreatic", 43),
                        ("All cancers", 45), ("Prostate", 33)):
        assert abs(figures._text_px(text) - drawn) <= 1.5, text


# ------------------------------------------------------------------ in the browser


_LABELS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => (g.data || []).some(t => t.type === 'heatmap'));
  const xa = gd._fullLayout.xaxis, box = gd.getBoundingClientRect();
  const heat = gd.data.find(t => t.type === 'heatmap'), labels = heat.x[0], width = xa._length / labels.length;
  const groups = [];
  labels.forEach((l, j) => { if (groups.length && groups[groups.length - 1].label === l) groups[groups.length - 1].n++;
                             else groups.push({label: l, first: j, n: 1}); });
  const drawn = [...gd.querySelectorAll('g.xtick2 text')].map(t => { const r = t.getBoundingClientRect();
                                                                     return {text: t.textContent, left: r.left, right: r.right}; });
  return {groups: groups.map(g => ({...g, left: box.left + xa._offset + g.first * width,
                                     right: box.left + xa._offset + (g.first + g.n) * width})),
          drawn, note: xa.title.text || ''};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    with app_server(tmp_path_factory.mktemp("server"), {"AUDIT_METRICS_RESULTS_CACHE": "off"}) as url:
        yield url


@pytest.mark.browser
@pytest.mark.parametrize(("width", "height"), [(1024, 768), (1440, 900), (390, 844)])
def test_group_labels_sit_inside_their_columns_in_chromium(server: str, width: int, height: int) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(f"{server}/?view=Overview")
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => (g.data || [])"
                               ".some(t => t.type === 'heatmap') && g.querySelector('g.xtick2 text'))",
                               timeout=180_000)
        got = page.evaluate(_LABELS)
    groups, drawn = got["groups"], got["drawn"]
    assert len(drawn) == len(groups)
    for g, d in zip(groups, drawn, strict=True):
        assert d["text"] == html.unescape(g["label"]).replace("<br>", "")
        assert g["left"] - 0.5 <= d["left"] and d["right"] <= g["right"] + 0.5, (width, g, d)  # inside its columns
    for a, b in itertools.pairwise(drawn):
        assert a["right"] + 1 <= b["left"], (width, a, b)  # no two labels touch
