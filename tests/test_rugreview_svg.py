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
