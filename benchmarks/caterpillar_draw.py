"""Caterpillar drawing time in the browser: the chart as built (left margin sized from the names) against the same
chart with Plotly's automargin (which measures every tick label and lays the chart out again).

`python benchmarks/caterpillar_draw.py`: loads Plotly's own plotly.min.js into headless Debian chromium, draws each
version alternately (``--repeat`` times each, so machine load falls on both alike) and prints the median
`Plotly.newPlot` time to the next frame, with the machine's load. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import plotly
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_timing import ARGS, CHROMIUM, ROOT, uptime

_DRAW = """async (f) => { const g = document.getElementById('g'); Plotly.purge(g);
    const t0 = performance.now(); await Plotly.newPlot(g, f.data, f.layout);
    await new Promise(r => requestAnimationFrame(() => r())); return performance.now() - t0; }"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    from audit_metrics import figures
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.pipeline import run_audit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=12)
    args = parser.parse_args()
    result = run_audit(load_catalogue(ROOT / "indicators.yaml")).results["bowel_mort90"]
    rows = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period)
    fig = figures.caterpillar_figure(rows, title="t", better=result.spec.better, risk_adjusted=True,
                                     multiplier=result.spec.multiplier)
    built = json.loads(fig.to_json())
    automargin = json.loads(fig.to_json())
    automargin["layout"]["yaxis"]["automargin"] = True
    automargin["layout"]["margin"]["l"] = 60
    times: dict[str, list[float]] = {"as built (fixed margin)": [], "automargin": []}
    print(f"load before: {uptime()}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_content("<div id=g style='width:1200px'></div>")
        page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
        for _ in range(args.repeat):
            for name, figure in (("as built (fixed margin)", built), ("automargin", automargin)):
                times[name].append(page.evaluate(_DRAW, figure))
        browser.close()
    print(f"load after: {uptime()}")
    for name, values in times.items():
        tail = values[2:]  # the first draws include compiling Plotly's code
        print(f"{name}: median {statistics.median(tail):.0f} ms over {len(tail)} draws "
              f"(range {min(tail):.0f}-{max(tail):.0f} ms; {rows.height} units)")


if __name__ == "__main__":
    main()
