"""Charts reach the browser as validated Plotly specs without being copied or validated again on each rerun
(#12 build 7), and the page starts loading the chart library first (ui/preload.py).

Oracle: Plotly's own validator (``go.Figure(spec)`` raises on any invalid property) and the installed Streamlit
package's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import plotly.tools
import pytest
from app_support import open_app

from audit_metrics import sharing
from audit_metrics.ui import preload, rug_view
from audit_metrics.ui.state import _Spec, _title_of


def _figure() -> go.Figure:
    return go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], customdata=[[["a"], ["b"]], [["c"], ["d"]]]),
                     layout={"title": {"text": "Outlier status"}, "height": 520, "margin": {"b": 40}})


def test_annotating_a_spec_copies_its_layout_only_and_stays_valid() -> None:
    spec = _figure().to_dict()
    layout_before = json.dumps(spec["layout"], sort_keys=True)
    out = sharing.annotate_figure(spec, "Source: audit\nMethod: m", synthetic=True)
    assert out["data"] is spec["data"]  # the traces are shared (a cached rug's 1.5 MB), never copied
    assert json.dumps(spec["layout"], sort_keys=True) == layout_before  # the cached spec is left alone
    assert {a["name"] for a in out["layout"]["annotations"]} == {"footnote", "watermark"}
    assert out["layout"]["height"] > 520
    go.Figure(out)  # a valid figure (raises on any invalid property)


def test_a_spec_reaches_streamlit_as_it_is() -> None:
    """What st.plotly_chart does with its argument (plotly.tools.return_figure_from_figure_or_data): a _Spec
    gives back the very dict, with no copy and no second validation; a dict would be validated again."""
    spec = sharing.annotate_figure(_figure(), None, synthetic=True)
    assert plotly.tools.return_figure_from_figure_or_data(_Spec(spec), validate_figure=True) is spec
    assert plotly.tools.return_figure_from_figure_or_data(spec, validate_figure=True) is not spec
    assert _title_of(spec) == "Outlier status" and _title_of(_figure()) == "Outlier status"
    assert _title_of({"layout": {}}) is None


@pytest.mark.parametrize("view", ["Indicator", "Trust profile", "Cancer Alliance"])
def test_every_drawn_chart_is_a_valid_figure(view: str) -> None:
    at = open_app(view=view)
    assert not at.exception
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert charts
    for spec in charts:
        go.Figure(spec)  # the spec the browser draws: valid as a whole (our annotations included)


def test_preload_names_streamlits_own_plotly_chunk(tmp_path: Path) -> None:
    chunk = preload.plotly_chunk()
    assert chunk is not None and (preload._JS / chunk).is_file()
    # Streamlit's entry script is what loads that chunk on demand: the preload fetches the same module
    entry = next(preload._JS.glob("index.*.js")).read_text(encoding="utf-8")
    assert chunk in entry
    script = preload.preload_html()
    assert script is not None and f'new URL("{chunk}", entry.src)' in script
    # nothing to preload when the chunk is not found, or not exactly once, or has an unexpected name
    assert preload.plotly_chunk.__wrapped__(tmp_path) is None
    (tmp_path / "PlotlyChart.abcd1234.js").write_text("")
    assert preload.plotly_chunk.__wrapped__(tmp_path) == "PlotlyChart.abcd1234.js"
    (tmp_path / "PlotlyChart.efgh5678.js").write_text("")
    assert preload.plotly_chunk.__wrapped__(tmp_path) is None
    assert preload.preload_html('PlotlyChart.x");alert(1);(".js') is None


def _html(at) -> list[str]:
    return [h.proto.body for h in at.get("html")]


def test_chart_views_preload_the_chart_library_and_others_do_not() -> None:
    at = open_app(view="Indicator")
    scripts = [b for b in _html(at) if "__amChartsPreloaded" in b]
    assert scripts == [preload.preload_html()] and "load();" in scripts[0]  # at once: a chart comes first
    # the very first element sent (the sidebar's first), so the browser starts on it before anything else
    first = at.sidebar.children[0] if hasattr(at.sidebar, "children") else None
    assert first is not None and first.proto.body == preload.preload_html()
    # the Overview draws no chart (its rug is SVG): the library loads once the rug says it is drawn, or after 8 s
    at = open_app(view="Overview")
    scripts = [b for b in _html(at) if "__amChartsPreloaded" in b]
    assert scripts == [preload.preload_html(deferred=True)] != [preload.preload_html()]
    assert "addEventListener('am-first-screen'" in scripts[0] and "setTimeout(load, 8000)" in scripts[0]
    assert "new Event('am-first-screen')" in rug_view._JS  # the rug sends the event the preload waits for
    assert not at.get("plotly_chart")
    at = open_app(view="Data")
    assert not at.exception
    assert not [b for b in _html(at) if "__amChartsPreloaded" in b]
