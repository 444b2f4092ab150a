"""Overview rug: build time, size and drawing time in the browser: `python benchmarks/rug_draw.py [--repeat N]`.

Builds the Overview's rug for the bundled sample (every trust, every indicator, Thornbury highlighted, as the
landing draws it: audit_metrics/rug.py), prints the server's build time (median), the SVG's size (what is sent to
the browser), and the median time headless Debian chromium takes to put it in a page as the dashboard does
(ui/rug_view.py: ``innerHTML``, the hover text moved out of each ``<title>``) up to the next frame drawn.
``--compare FILE`` draws another SVG file (e.g. an earlier version's, written with ``--save``) alternately with it,
so machine load falls on both alike. Records the machine's load. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_timing import ARGS, CHROMIUM, ROOT, uptime

_DRAW = """async (svg) => { const g = document.getElementById('g'); g.replaceChildren();
    const t0 = performance.now();
    const box = document.createElement('div'); g.appendChild(box); box.innerHTML = svg;
    for (const t of box.querySelectorAll('rect > title, g.am-flag > title')) { t.parentNode.dataset.tip = t.textContent; t.remove(); }
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0))); return performance.now() - t0; }"""


def rug_svg(repeat: int) -> tuple[str, list[float]]:
    from audit_metrics import rug, views
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.pipeline import run_audit

    run = run_audit(load_catalogue(ROOT / "indicators.yaml"))
    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    risk_adjusted = [k for k, r in run.results.items() if r.spec.risk_adjustment is not None]
    builds, svg = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        svg = rug.rug_svg(trusts, title="Outlier status by trust and indicator", group="cancer_alliance",
                          risk_adjusted=risk_adjusted, highlight="ZA4").svg
        builds.append(time.perf_counter() - t0)
    return svg, builds


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--compare", type=Path, help="another rug's SVG, drawn alternately")
    parser.add_argument("--save", type=Path, help="write this version's rug SVG here")
    args = parser.parse_args()
    print(f"load before: {uptime()}")
    svg, builds = rug_svg(max(3, args.repeat // 4))
    if args.save:
        args.save.write_text(svg)
    texts = {"this version": svg}
    if args.compare:
        texts[args.compare.name] = args.compare.read_text()
    times: dict[str, list[float]] = {name: [] for name in texts}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_content("<div id=g></div>")
        for _ in range(args.repeat):
            for name, text in texts.items():
                times[name].append(page.evaluate(_DRAW, text))
        browser.close()
    print(f"load after: {uptime()}")
    print(f"server build: median {statistics.median(builds) * 1000:.0f} ms over {len(builds)} builds")
    for name, values in times.items():
        tail = values[2:]  # the first draws warm the browser up
        print(f"{name}: {len(texts[name].encode()) / 1e6:.2f} MB, drawn in median {statistics.median(tail):.0f} ms "
              f"over {len(tail)} draws (range {min(tail):.0f}-{max(tail):.0f})")


if __name__ == "__main__":
    main()
