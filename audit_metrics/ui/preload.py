"""Start loading the chart library while the page is still being built (#12 build 7: speed in a real browser).

Streamlit fetches and runs its Plotly chunk (about 4.7 MB; running it takes ~0.9 s of the browser's main thread
on the 2-core test machine) only when the first chart element arrives, after the server has built everything
above it. Imported as the page opens instead, it runs while the browser would otherwise wait for the server, and
the first chart draws as soon as it arrives (benchmarks/browser_timing.py; README "Performance").

The script is a constant apart from the chunk's file name, which comes from the installed Streamlit package and
is checked against a strict pattern; no data-derived text is ever put into it. The import resolves against
Streamlit's own entry script, so the module is the one Streamlit's loader asks for later (one download, run once),
also under a server base path.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import streamlit

__all__ = ["PLOTLY_CHUNK_PATTERN", "plotly_chunk", "preload_html"]

PLOTLY_CHUNK_PATTERN = re.compile(r"PlotlyChart\.[A-Za-z0-9_-]{4,32}\.js")
_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"

_SCRIPT = """<script>
(() => {
  const load = () => {
    if (window.__amChartsPreloaded) return;
    const entry = document.querySelector('script[type="module"][src*="static/js/index."]');
    if (!entry) return;
    window.__amChartsPreloaded = true;
    import(new URL("%s", entry.src).href).then(() => { window.__amChartsReady = true; })
      .catch(() => { window.__amChartsPreloaded = false; });
  };
  %s
})();
</script>"""
_NOW = "load();"
# after the first screen: when the Overview's rug says it is drawn (ui/rug_view.py), or after 8 s at the latest
_AFTER_FIRST_SCREEN = ("window.addEventListener('am-first-screen', () => setTimeout(load, 300), {once: true}); "
                       "setTimeout(load, 8000);")


@cache
def plotly_chunk(folder: Path = _JS) -> str | None:
    """The file name of Streamlit's Plotly chunk in ``folder``, or None unless exactly one matches."""
    names = [p.name for p in folder.glob("PlotlyChart.*.js") if PLOTLY_CHUNK_PATTERN.fullmatch(p.name)]
    return names[0] if len(names) == 1 else None


def preload_html(chunk: str | None = None, *, deferred: bool = False) -> str | None:
    """The page script that imports the chart library now, or with ``deferred`` once the first screen is drawn
    (the Overview draws no chart: its rug is SVG, audit_metrics/rug.py; loading the library then would only
    delay it, and a switch to a chart later finds it ready). ``None`` when the chunk is unknown: nothing to do."""
    chunk = chunk if chunk is not None else plotly_chunk()
    if chunk is None or not PLOTLY_CHUNK_PATTERN.fullmatch(chunk):
        return None
    return _SCRIPT % (chunk, _AFTER_FIRST_SCREEN if deferred else _NOW)
