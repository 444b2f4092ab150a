"""The Overview's own choices are in the URL (#12 build 5): rug or list (show=list), period, tumour sites (site=,
repeated); defaults left out; a link's unknown value ignored with a note; Back restores them. AppTest's query
parameters are the browser's URL (see tests/test_urls.py)."""

from __future__ import annotations

from app_support import open_app, url_params
from streamlit.testing.v1 import AppTest

OVERVIEW = {"view": ["Overview"]}


_app, _url = open_app, url_params


def _notes(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption if c.value.startswith("This link's "))


def test_choices_go_into_the_url_and_a_link_restores_them() -> None:
    at = _app()
    assert not at.exception and _url(at) == OVERVIEW  # the plain overview: nothing but the view
    sites = at.multiselect(key="ov_sites").options
    at.radio(key="ov_show").set_value("List of flagged results").run()
    at.multiselect(key="ov_sites").set_value(["Lung", "Bowel"]).run()
    periods = at.selectbox(key="ov_period").options
    at.selectbox(key="ov_period").set_value(periods[1]).run()
    assert not at.exception
    url = _url(at)
    assert url == {**OVERVIEW, "show": ["list"], "site": ["Lung", "Bowel"], "period": [periods[1]]}, url
    opened = _app(**url)  # the link, in a new session
    assert not opened.exception and not _notes(opened)
    assert opened.radio(key="ov_show").value == "List of flagged results"
    assert opened.multiselect(key="ov_sites").value == ["Lung", "Bowel"]
    assert opened.selectbox(key="ov_period").value == periods[1]
    assert len(sites) > 2


def test_unknown_values_in_a_link_are_noted_and_ignored() -> None:
    at = _app(show="carousel", site=["Lung", "Nowhere"], period="1999")
    assert not at.exception
    assert at.radio(key="ov_show").value == "Rug of every result"
    assert at.multiselect(key="ov_sites").value == ["Lung"]
    assert at.selectbox(key="ov_period").value == at.selectbox(key="ov_period").options[0]
    notes = _notes(at)
    for given in ("show=carousel", "site=Nowhere", "period=1999"):
        assert given in notes, notes
    assert _url(at) == {**OVERVIEW, "site": ["Lung"]}


def test_back_restores_the_earlier_choice() -> None:
    at = _app()
    at.radio(key="ov_show").set_value("List of flagged results").run()
    earlier = _url(at)
    at.radio(key="ov_show").set_value("Rug of every result").run()
    assert _url(at) == OVERVIEW
    at.query_params.clear()
    at.query_params.update(earlier)  # Back: the earlier entry's query string, the widgets as they are now
    at.run()
    assert not at.exception and at.radio(key="ov_show").value == "List of flagged results"
