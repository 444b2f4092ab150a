"""The rug says what it is narrowed to (#12 build 4, the rug review): a rug filtered to one alliance, some
tumour sites, is shown and downloaded for a meeting; before, its title read like the national rug's."""

from __future__ import annotations

from pathlib import Path

from rug_support import rug_of
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_rug_title_names_the_alliance_and_sites_it_shows() -> None:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Overview"
    at.run()
    assert not at.exception
    assert rug_of(at).get("data-title") == "Outlier status by trust and indicator (all periods pooled)"
    alliance = at.selectbox(key="ov_alliance").options[1]
    at.selectbox(key="ov_alliance").select(alliance).run()
    sites = at.multiselect(key="ov_sites").options
    at.multiselect(key="ov_sites").set_value(sites[1:3]).run()
    assert not at.exception
    title = rug_of(at).get("data-title")
    assert title == f"Outlier status by trust and indicator (all periods pooled); {alliance}; {', '.join(sites[1:3])}"
    assert rug_of(at).get("aria-label") == title
