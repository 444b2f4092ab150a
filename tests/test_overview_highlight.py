"""The Overview's rug when the highlighted trust is narrowed away by its filters: said, not silently lost."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rug_support import rug_of
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "is not among the trusts shown" in c.value]


def test_a_highlighted_trust_outside_the_filters_is_named() -> None:
    units = pl.read_csv(ROOT / "sample_data" / "trusts.csv")
    own = units.filter(pl.col("trust_code") == "ZA4")["cancer_alliance"][0]
    other = units.filter(pl.col("cancer_alliance") != own)["cancer_alliance"][0]
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["trust"] = "ZA4"
    at.run()
    assert not at.exception and rug_of(at).get("data-highlight") == "ZA4" and not _captions(at)
    at.selectbox(key="ov_alliance").set_value(own).run()  # its own alliance: outlined, nothing to say
    assert not _captions(at) and "ZA4" in rug_of(at).get("data-units")
    at.selectbox(key="ov_alliance").set_value(other).run()
    assert not at.exception and "ZA4" not in rug_of(at).get("data-units")
    (said,) = _captions(at)
    assert said.startswith("Thornbury Teaching Hospitals NHS Foundation Trust")
    assert "widen the filters above" in said
