"""Overview rug drawing time in the browser and its size: `python benchmarks/rug_draw.py [--compare FIG.json]`.

Builds the Overview's rug for the bundled sample (every trust, every indicator, Thornbury highlighted, as the
landing draws it), prints its JSON size (what is sent to the browser), the median `JSON.parse` time of that text
and the median `Plotly.newPlot` time to the next frame in headless Debian chromium (Plotly's own plotly.min.js).
``--compare`` draws another figure's JSON (e.g. the rug of an earlier version, written with ``--save``)
alternately with it, so machine load falls on both alike. Records the machine's load. Not a test.
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
# the browser also parses what it receives: the larger rug's text costs this much before any drawing
_PARSE = "(t) => { const t0 = performance.now(); JSON.parse(t); return performance.now() - t0; }"


def rug_json() -> str:
    from audit_metrics import figures, views
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.pipeline import run_audit

    run = run_audit(load_catalogue(ROOT / "indicators.yaml"))
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    risk_adjusted = [k for k, r in run.results.items() if r.spec.risk_adjustment is not None]
    return figures.tartan_figure(trusts, title="Outlier status by trust and indicator", group="cancer_alliance",
                                 risk_adjusted=risk_adjusted, highlight="ZA4").to_json()


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--compare", type=Path, help="another figure's JSON, drawn alternately")
    parser.add_argument("--save", type=Path, help="write this version's rug JSON here")
    args = parser.parse_args()
    text = rug_json()
    if args.save:
        args.save.write_text(text)
    texts = {"this version": text}
    if args.compare:
        texts[args.compare.name] = args.compare.read_text()
    figures = {name: json.loads(t) for name, t in texts.items()}
    sizes = {name: len(t.encode()) for name, t in texts.items()}
    times: dict[str, list[float]] = {name: [] for name in figures}
    parse: dict[str, list[float]] = {name: [] for name in figures}
    print(f"load before: {uptime()}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_content("<div id=g style='width:1200px'></div>")
        page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
        for _ in range(args.repeat):
            for name, figure in figures.items():
                times[name].append(page.evaluate(_DRAW, figure))
                parse[name].append(page.evaluate(_PARSE, texts[name]))
        browser.close()
    print(f"load after: {uptime()}")
    for name, values in times.items():
        tail = values[2:]  # the first draws include compiling Plotly's code
        print(f"{name}: {sizes[name] / 1e6:.2f} MB, {len(figures[name]['data'])} traces, "
              f"median {statistics.median(tail):.0f} ms over {len(tail)} draws "
              f"(range {min(tail):.0f}-{max(tail):.0f}); JSON.parse median "
              f"{statistics.median(parse[name][2:]):.0f} ms")


if __name__ == "__main__":
    main()
