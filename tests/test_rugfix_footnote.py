"""The rug's footnote names the sources of the indicators it shows (the rug review, 'Left'): narrowed to one
tumour site, its 'Source:' listed every audit and file in the run (e.g. the lung nurse extract under a bowel-only
rug)."""

from __future__ import annotations

from pathlib import Path

import yaml
from rug_support import SVG, rug_of
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _footnote(at: AppTest) -> str:
    """The footnote's lines as drawn (grey text under the squares), joined."""
    return " ".join(t.text or "" for t in rug_of(at).iter(f"{SVG}text") if t.get("fill") == "#425563")


def _sources(catalogue: dict, sites: set[str] | None) -> tuple[set[str], set[str]]:
    """The audits and data files of the catalogue's indicators on ``sites`` (None: every site): the oracle, read
    from the catalogue's YAML rather than from the run."""
    chosen = [i for i in catalogue["indicators"] if sites is None or i["tumour_site"] in sites]
    audits = {i["audit"] for i in chosen if i.get("audit")}
    files = {Path(catalogue["datasets"][i.get("dataset", "patients")]["path"]).name for i in chosen}
    return audits, files


def test_footnote_lists_only_the_sources_of_the_indicators_shown(catalogue_path: Path) -> None:
    catalogue = yaml.safe_load(catalogue_path.read_text())
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = "Overview"
    at.run()
    assert not at.exception
    all_audits, all_files = _sources(catalogue, None)
    whole = _footnote(at)
    assert all(a in whole for a in all_audits) and all(f in whole for f in all_files), whole
    # one site: its audit and its files only
    at.multiselect(key="ov_sites").set_value(["Bowel"]).run()
    assert not at.exception
    audits, files = _sources(catalogue, {"Bowel"})
    assert audits == {"National Bowel Cancer Audit"} and len(all_files - files) >= 1  # the test can fail
    foot = _footnote(at)
    source = foot[foot.index("Source:"):foot.index(";")]
    assert source == f"Source: {', '.join(sorted(audits))} ({', '.join(sorted(files))})", foot
    for other in (all_audits - audits) | (all_files - files):
        assert other not in foot, (other, foot)
    # two sites whose indicators read different files: both sites' sources, nothing else
    at.multiselect(key="ov_sites").set_value(["Bowel", "Lung"]).run()
    audits, files = _sources(catalogue, {"Bowel", "Lung"})
    foot = _footnote(at)
    source = foot[foot.index("Source:"):foot.index(";")]
    assert source == f"Source: {', '.join(sorted(audits))} ({', '.join(sorted(files))})", foot
