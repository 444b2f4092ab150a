"""The Cancer Alliance view opens on the alliance of the trust the person was looking at (a real-data review: from a
trust profile, the sidebar's Cancer Alliance opened the first alliance in the list, not the trust's own). A link's
alliance= still wins, and with no trust in view the first alliance is shown as before.

Oracle: the units file's own alliance for each trust (read with the csv module)."""

from __future__ import annotations

import csv
from pathlib import Path

from app_support import open_app

ROOT = Path(__file__).resolve().parents[1]


def _alliances() -> dict[str, str]:
    with (ROOT / "sample_data" / "trusts.csv").open(newline="") as fh:
        return {r["trust_code"]: r["cancer_alliance"] for r in csv.DictReader(fh)}


def _last_trust_not_in_first_alliance() -> tuple[str, str]:
    own = _alliances()
    first = sorted(set(own.values()))[0]
    code = sorted(c for c, a in own.items() if a != first)[-1]
    return code, own[code]


def test_from_a_trust_profile_the_alliance_view_opens_on_its_alliance() -> None:
    code, alliance = _last_trust_not_in_first_alliance()
    at = open_app(timeout=300, view="Trust profile", trust=code)
    assert not at.exception and at.selectbox(key="trust_code").value == code
    at.sidebar.radio[0].set_value("Cancer Alliance").run()
    assert not at.exception
    assert at.selectbox(key="alliance").value == alliance


def test_a_link_to_an_alliance_still_opens_that_alliance() -> None:
    own = _alliances()
    wanted = sorted(set(own.values()))[1]
    at = open_app(timeout=300, view="Cancer Alliance", alliance=wanted)
    assert at.selectbox(key="alliance").value == wanted


def test_with_no_trust_in_view_the_first_alliance_is_shown() -> None:
    at = open_app(timeout=300, view="Cancer Alliance")
    assert at.selectbox(key="alliance").value == sorted(set(_alliances().values()))[0]
