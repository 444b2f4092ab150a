"""The rug's SVG as a keyboard and a screen reader meet it (#12 builds 2 and 8; the rug review)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rug_support import SVG, parse

from audit_metrics import rug, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit


@pytest.fixture(scope="module")
def run(catalogue_path: Path) -> AuditRun:
    return run_audit(load_catalogue(catalogue_path))


def test_tab_reaches_flagged_squares_in_reading_order(run: AuditRun) -> None:
    """Tab follows the document's order: the flagged squares must come row by row, left to right within a row
    (before: within a trust's row in the data's order, e.g. column 4, 14, then 0)."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    root = parse(rug.rug_svg(trusts.sample(fraction=1.0, shuffle=True, seed=3), title="rug",
                             group="cancer_alliance").svg)
    units, indicators = json.loads(root.get("data-units")), json.loads(root.get("data-indicators"))
    places = [(units.index(g.get("data-unit")), indicators.index(g.get("data-indicator")))
              for g in root.iter(f"{SVG}g") if g.get("class") == "am-flag"]
    assert len(places) > 20 and len({i for i, _ in places}) < len(places)  # some rows have several flags
    assert places == sorted(places)


@pytest.mark.parametrize("group", [None, "cancer_alliance"])
def test_a_single_site_and_no_groups_still_draw_a_labelled_rug(run: AuditRun, group: str | None) -> None:
    """A catalogue with one tumour site, and units without an alliance: every square is drawn, the site is
    labelled over its columns, the legend and names are there."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    one = trusts.filter(pl.col("tumour_site") == trusts["tumour_site"].sort()[0])
    built = rug.rug_svg(one, title="rug", group=group)
    root = parse(built.svg)
    assert built.cells == one.height and len(json.loads(root.get("data-indicators"))) == one["indicator_id"].n_unique()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert any(one["tumour_site"][0] in t or t.endswith(".") for t in texts)
    assert any("As expected" in t for t in texts)
    assert built.width >= int(rug.text_px("As expected", 10))


def test_screen_readers_get_the_title_legend_and_buttons_not_every_label(run: AuditRun) -> None:
    """What a screen reader reads in the rug: its title (the SVG's label), the legend, the site labels, the
    flagged squares' buttons (each naming the trust and indicator) and the footnote; not the ~3,500 squares nor the
    ~200 trust names, alliance labels and turned indicator titles as one run of text before the first button."""
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    root = parse(rug.rug_svg(trusts, title="rug", group="cancer_alliance", footnote=["Source: x"]).svg)
    assert root.get("aria-label") == "rug"
    exposed = [t for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]
    words = ["".join(t.itertext()) for t in exposed]
    assert len(exposed) < 30, words
    names = set(trusts["unit_name"]) | set(trusts["indicator_title"])
    assert not [w for w in words if any(n in w for n in names)]
    assert "Source: x" in words and any("Worse than expected" in w for w in words)
    buttons = [g.get("aria-label") for g in root.iter(f"{SVG}g") if g.get("role") == "button"]
    assert buttons and all(b.count(", ") >= 1 and b.endswith(". Open it") for b in buttons)
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("role") or r.get("tabindex")]
