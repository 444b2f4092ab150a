"""The rug's row labels' column for the page (rugfix): the same labels at the same places as the picture's own,
so that lying over the picture (ui/rug_view.py) it changes nothing until the squares are scrolled; the picture
(the download) stays one whole SVG with every label."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rug_support import SVG, parse, squares

from audit_metrics import rug, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit


@pytest.fixture(scope="module")
def trusts(catalogue_path: Path) -> pl.DataFrame:
    run: AuditRun = run_audit(load_catalogue(catalogue_path))
    return views.pooled(run).filter(pl.col("level") == "trust")


def _texts(root: object) -> list[tuple[str, str, str, str]]:
    return [(t.get("x"), t.get("y"), t.get("font-weight") or "", "".join(t.itertext()))
            for t in root.iter(f"{SVG}text") if t.get("aria-hidden") and not t.get("transform")]


@pytest.mark.parametrize("group", [None, "cancer_alliance"])
def test_the_column_holds_the_pictures_row_labels_at_their_places(trusts: pl.DataFrame, group: str | None) -> None:
    built = rug.rug_svg(trusts, title="rug", group=group, highlight="ZA4")
    picture, column = parse(built.svg), parse(built.rows)
    units = trusts["unit_code"].unique()
    labels = _texts(column)
    assert labels == _texts(picture)
    assert len([t for t in labels if not t[2]]) == units.len()  # a name per trust
    assert len([t for t in labels if t[2]]) == (trusts[group].n_unique() if group else 0)  # a label per group
    # the column: from above the column headings to below the last row, left of the squares, on white
    x0, y0, w, h = (float(v) for v in column.get("viewBox").split())
    top = float(picture.get("data-top"))
    assert x0 == 0 and y0 == built.rows_top and float(column.get("width")) == w < float(picture.get("data-left"))
    assert y0 < top - 20 and y0 + h >= top + rug.CELL_H * units.len()
    background = column.find(f"{SVG}rect")
    assert background.get("fill") == "white" and float(background.get("height")) == h
    # the highlighted row's outline there and in the picture on the same line; the picture still has every square
    a, b = column.find(f"{SVG}rect[@class='am-highlight']"), picture.find(f"{SVG}rect[@class='am-highlight']")
    assert (a.get("x"), a.get("y"), a.get("height")) == (b.get("x"), b.get("y"), b.get("height"))
    assert len(squares(picture)) == built.cells == trusts.height


@pytest.mark.parametrize("group", [None, "cancer_alliance"])
def test_the_phones_column_is_narrower_with_every_name_and_group(trusts: pl.DataFrame, group: str | None) -> None:
    """On a phone the names are cut to NARROW_NAME px (whole in their title and the hover) and the group labels
    stand turned beside their rows; the squares move left by exactly what the column lost."""
    built = rug.rug_svg(trusts, title="rug", group=group, highlight="ZA4")
    picture, wide, narrow = parse(built.svg), parse(built.rows), parse(built.narrow_rows)
    assert "am-narrow" in narrow.get("class") and "am-full" in wide.get("class")
    names = [t for t in narrow.iter(f"{SVG}text") if not t.get("font-weight")]
    full = {str(n) for n in trusts["unit_name"]}
    assert {t.find(f"{SVG}title").text for t in names} == full and len(names) == len(full)
    shown = [t.find(f"{SVG}title").tail or "" for t in names]
    assert all(rug.text_px(x) <= rug.NARROW_NAME for x in shown) and any(x.endswith("…") for x in shown), shown
    turned = [t for t in narrow.iter(f"{SVG}text") if t.get("font-weight")]
    assert len(turned) == (trusts[group].n_unique() if group else 0)
    assert all("rotate(-90)" in t.get("transform") for t in turned)
    w_wide, w_narrow = float(wide.get("width")), float(narrow.get("width"))
    assert w_narrow < w_wide * (0.6 if group else 0.7) and built.narrow_shift == w_wide - w_narrow
    shift, narrow_width = picture.get("style").split(";")
    assert shift == f"--am-shift:{-built.narrow_shift}px"
    # the picture that much narrower, or as wide as its legend
    assert built.width - built.narrow_shift <= float(narrow_width.split(":")[1].removesuffix("px")) < built.width
    assert narrow.find(f"{SVG}rect[@class='am-highlight']") is not None


def test_a_rug_of_two_columns_still_has_room_for_its_legend(trusts: pl.DataFrame) -> None:
    """A rug of one site's two indicators was narrower than its legend, which the picture cut off."""
    two = trusts.filter(pl.col("indicator_id").is_in(trusts["indicator_id"].unique().sort()[:2]))
    built = rug.rug_svg(two, title="rug", group="cancer_alliance")
    last = [t for t in parse(built.svg).iter(f"{SVG}text") if t.get("class") == "am-legend"][-1]
    right = float(last.get("x")) + rug.text_px(last.text, 10)
    on_a_phone = float(parse(built.svg).get("style").split("--am-narrow-width:")[1].removesuffix("px"))
    assert right <= built.width and right <= on_a_phone, (right, built.width, on_a_phone)
