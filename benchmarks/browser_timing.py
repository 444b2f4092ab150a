"""Dashboard speed in a real browser: `python benchmarks/browser_timing.py` (see README "Performance").

Starts the dashboard on its own port and drives headless Debian chromium through Playwright. It times:

* **navigation → first chart drawn**: from `page.goto` to a chart with the expected title in the page (a Plotly
  chart, `.js-plotly-plot .main-svg` drawn, checked through Plotly's own figure state, or the Overview's rug,
  an SVG `svg.am-rug` with its squares), in these situations:
  - ``restart``: a newly started server whose results store already holds the results (the target case); the
    server is started as dev.sh and the image start it (``python -m audit_metrics.ui.serve``: code imported before
    it listens, then a warm-up render of its own) and the page is opened as soon as it answers,
  - ``cold``: a newly started server with an empty results store (computes everything; `--store off` gives this
    without writing a store),
  - ``warm``: a first visit (a new browser profile, its cache empty) to a server that has already computed (the
    in-memory cache),
  - ``returning`` (with ``warm``): a new tab of a browser profile that has opened the dashboard before, so its
    cache holds Streamlit's scripts, on that running server;
* **each switch → its chart drawn**: view, indicator, chart type, highlighted trust and the trust profile's trust,
  timed from the choice (the click on a view, a radio option or a list's option; opening a list and typing to
  filter it happen before, untimed, as a person's own time). A switch counts as done when a chart with the
  expected title whose content was not on the page before the click is drawn.

Beside each wall time it records the server's CPU seconds, the browser main thread's busy time (wall time of its
tasks) and CPU time, and the bytes the page received over Streamlit's websocket (CPU seconds and bytes are the
steadier figures when other work shares the machine).
Every measurement is the median of ``--repeat`` (default 3); each restart is a new server process. It records the
machine's load (`uptime`) before and after and the CPU count, prints a table and writes
benchmarks/results/browser_timing.md (or ``--out``). ``--data DIR`` runs on an extract folder laid out like
`sample_data/` (patients.parquet, lung_cns_by_trust.csv, ...); ``--generate N`` first writes one of N patients
into benchmarks/data/nN with the sample generator (as run_benchmark.py does). Nothing here is a test: it is not
part of `.ci/run`, and it asserts no time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "benchmarks" / "data"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
TIMEOUT_MS = 180_000
# not a switch: how long after the first screen the chart library (loaded only then on the Overview) was ready
LIBRARY = "chart library ready, after the first screen (untimed for the switches)"
SWITCH_TIMEOUT_MS = 30_000

# every chart on the page: its title and a signature of its content (trace names, sizes and end points), so a
# redrawn chart with the same title but other content (another trust highlighted, the caterpillar) counts as new
_SIGNATURES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(
    gd => gd._fullLayout && gd.querySelector('.main-svg')).map(gd => {
      const t = gd._fullLayout.title && gd._fullLayout.title.text ? String(gd._fullLayout.title.text).replace(/<br\\s*\\/?>/gi, ' ') : '';  // wrapped titles as one line
      const traces = (gd._fullData || []).map(d => {
        const x = d.x || [], y = d.y || [];
        return [d.name, d.type, x.length, String(x[0]), String(x[x.length - 1]), String(y[0]),
                String(y[y.length - 1]), String(d.text && d.text.join ? d.text.join('|').slice(0, 200) : '')].join('~');
      }).join(';');
      const notes = (gd._fullLayout.annotations || []).map(a => [a.text, a.x, a.y].join('~')).join(';');
      return t + '##' + traces + '##' + notes;
    }).concat(Array.from(document.querySelectorAll('svg.am-rug')).map(svg =>  // the Overview's rug is SVG
      (svg.dataset.title || '') + '##rug~' + svg.dataset.units + '~' + svg.dataset.indicators + '~' +
      svg.dataset.highlight + '~' + svg.querySelectorAll('rect').length))"""

_WAIT_NEW = f"""([before, title]) => {{
    const now = ({_SIGNATURES})();
    return now.some(s => !before.includes(s) && s.split('##')[0].includes(title));
}}"""


@dataclass(frozen=True)
class Step:
    """One switch: what to do, and the title (a part of it) of the chart it should draw."""

    name: str
    title: str
    action: str  # "view:NAME", "select:LABEL=TEXT", "radio:TEXT"


# from the Overview: each view, then changes within the Indicator and Trust profile views
STEPS = (
    Step("view: Indicator", "", "view:Indicator"),
    Step("indicator: lung CNS", "clinical nurse specialist", "select:Indicator=clinical nurse specialist"),
    Step("chart: caterpillar", "clinical nurse specialist", "radio:Caterpillar (ranked intervals)"),
    Step("highlight a trust", "clinical nurse specialist", "select:Highlight a trust=ZB1"),
    Step("view: Trust profile", "slice through its funnel", "view:Trust profile"),
    Step("trust: another trust", "slice through its funnel", "select:Trust=ZC3"),
    Step("view: Cancer Alliance", "", "view:Cancer Alliance"),
    Step("view: Overview", "Outlier status", "view:Overview"),
)
FIRST = ("/?view=Overview", "Outlier status")


def _free_port() -> int:
    for _ in range(50):
        port = 8600 + int.from_bytes(os.urandom(2), "big") % 400
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    msg = "no free port in 8600-8999"
    raise RuntimeError(msg)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


class Server:
    """`streamlit run app.py` on its own port, with the given catalogue and results store."""

    def __init__(self, catalogue: Path, store: str, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AUDIT_METRICS_CATALOGUE": str(catalogue), "AUDIT_METRICS_RESULTS_CACHE": store}
        self._log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "audit_metrics.ui.serve", "--server.headless", "true",  # as dev.sh and the image
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"], stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        started = time.monotonic()
        deadline = started + 120
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    self.listening = time.monotonic() - started  # process start to the server answering
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        msg = f"streamlit did not start (log: {log})"
        raise RuntimeError(msg)

    def cpu(self) -> float:
        """CPU seconds the server process has used so far (user + system, from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def _signatures(page) -> list[str]:
    return page.evaluate(_SIGNATURES)


def _wait_chart(page, before: list[str], title: str, timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_function(_WAIT_NEW, arg=[before, title], timeout=timeout, polling="raf")


def _prepare(page, action: str):
    """What a person does before the choice that switches (open a list, type to filter it), done untimed; returns
    the choice itself (the click that starts the switch), which is timed."""
    kind, _, what = action.partition(":")
    if kind == "view":
        target = page.locator('[data-testid="stSidebar"]').get_by_text(what, exact=True)
    elif kind == "radio":
        target = page.get_by_text(what, exact=True)
    elif kind == "select":
        label, _, text = what.partition("=")
        box = page.locator('[data-testid="stSelectbox"]').filter(
            has=page.locator('[data-testid="stWidgetLabel"]').get_by_text(label, exact=False)).first
        box.click()
        page.keyboard.type(text)  # the option list is virtualised: filter it to the wanted option first
        target = page.get_by_role("option").filter(has_text=text).first
        target.wait_for(state="visible")
    else:
        msg = f"unknown action {action!r}"
        raise ValueError(msg)
    return target.click


# wall seconds, server CPU seconds, browser main-thread busy seconds, browser main-thread CPU seconds, bytes the
# server sent over the app's websocket
Timing = tuple[float, float, float, float, float]


def _busy(cdp) -> tuple[float, float]:
    """The page's main thread so far: busy time (Chrome's TaskDuration: script, style, layout, paint, as wall
    time, so it grows when other processes take the CPU) and CPU time (ThreadTime, the steadier of the two)."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["TaskDuration"], metrics["ThreadTime"]


class _Received:
    """Bytes the page has received over websockets (Streamlit sends each element, charts included, this way)."""

    def __init__(self, cdp) -> None:
        self.bytes = 0.0
        cdp.send("Network.enable")
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _frame(self, event: dict) -> None:
        response = event.get("response", {})
        data = response.get("payloadData", "")
        self.bytes += len(data) * 3 / 4 if response.get("opcode") == 2 else len(data.encode())  # 2: binary, base64


def first_chart(browser, server: Server, context=None) -> tuple[Timing, object, object]:
    """Navigation to the first chart drawn, in a new browser profile (its cache empty, as on a first visit) or,
    given ``context``, in a new tab of that profile (its cache holds what an earlier visit fetched)."""
    page = (context or browser).new_page(**({} if context else {"viewport": {"width": 1440, "height": 900}}))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.received = _Received(cdp)
    cpu0, busy0, t0 = server.cpu(), _busy(cdp), time.perf_counter()
    page.goto(server.url + FIRST[0])
    _wait_chart(page, [], FIRST[1])
    busy = _busy(cdp)
    return (time.perf_counter() - t0, server.cpu() - cpu0, busy[0] - busy0[0], busy[1] - busy0[1],
            cdp.received.bytes), page, cdp


def switches(page, cdp, server: Server) -> dict[str, Timing]:
    """Each step's time; a step whose chart never came is reported (NaN), with the charts that were on screen."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    out: dict[str, Timing] = {}
    nan = float("nan")
    # a person looks at the first screen before choosing: the Overview loads the chart library only once its rug
    # is drawn (ui/preload.py, deferred), and the switches are timed from when it has (as after a first look)
    t0 = time.perf_counter()
    try:
        page.wait_for_function("() => window.__amChartsReady === true", timeout=SWITCH_TIMEOUT_MS)
        out[LIBRARY] = (time.perf_counter() - t0, nan, nan, nan, nan)
    except PlaywrightTimeout:
        print("  the chart library was not loaded after the first screen", file=sys.stderr, flush=True)
    for step in STEPS:
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached",
                               timeout=TIMEOUT_MS)
        before = _signatures(page)
        choose = _prepare(page, step.action)
        cpu0, busy0, bytes0, t0 = server.cpu(), _busy(cdp), cdp.received.bytes, time.perf_counter()
        try:
            choose()
            _wait_chart(page, before, step.title, timeout=SWITCH_TIMEOUT_MS)
        except PlaywrightTimeout as exc:
            titles = sorted({s.split("##")[0] for s in _signatures(page)})
            print(f"  {step.name}: no new chart titled {step.title!r} within {SWITCH_TIMEOUT_MS / 1000:.0f} s "
                  f"({str(exc).splitlines()[0]}); charts on screen: {titles}", file=sys.stderr, flush=True)
            out[step.name] = (nan, nan, nan, nan, nan)
            continue
        busy = _busy(cdp)
        out[step.name] = (time.perf_counter() - t0, server.cpu() - cpu0, busy[0] - busy0[0], busy[1] - busy0[1],
                          cdp.received.bytes - bytes0)
    return out


def _catalogue_for(data: Path | None, folder: Path) -> Path:
    """The bundled catalogue, pointed at another extract folder (absolute paths) when ``data`` is given."""
    if data is None:
        return ROOT / "indicators.yaml"
    def place(match: re.Match) -> str:  # a file the folder lacks (the monthly extract) stays the sample's
        name = match.group(1)
        found = data.resolve() / name
        if not found.exists():
            print(f"note: {name} is not in {data}; the bundled sample's is used", file=sys.stderr, flush=True)
            return str(ROOT / "sample_data" / name)
        return str(found)

    text = re.sub(r"sample_data/([\w.-]+)", place, (ROOT / "indicators.yaml").read_text())
    target = folder / "indicators.yaml"
    target.write_text(text)
    return target


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _once(browser, server: Server) -> Timing:
    timing, page, _ = first_chart(browser, server)
    page.close()
    return timing


def _show(t: Timing) -> str:
    return (f"{t[0]:.2f} s (server CPU {t[1]:.2f} s, browser busy {t[2]:.2f} s, browser CPU {t[3]:.2f} s, "
            f"received {t[4] / 1e6:.2f} MB)")


def run(args: argparse.Namespace) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="browser_timing_"))
    log = work / "streamlit.log"
    catalogue = _catalogue_for(args.data, work)
    store = "off" if args.store == "off" else str(work / "store")
    report: dict[str, object] = {"load_before": uptime(), "cpus": os.cpu_count(), "data": str(args.data or "sample_data"),
                                 "python": platform.python_version(), "platform": platform.platform()}
    firsts: dict[str, list[Timing]] = {"cold": [], "restart": [], "warm": [], "returning": []}
    switch_runs: list[dict[str, Timing]] = []
    listening: list[float] = []  # a restarted server: process start to answering (before the page is opened)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for i in range(args.repeat):
                if "cold" in args.modes:  # new server, empty store: computes everything
                    if store != "off":
                        shutil.rmtree(store, ignore_errors=True)
                    server = Server(catalogue, store, log)
                    try:
                        firsts["cold"].append(_once(browser, server))
                    finally:
                        server.stop()
                    print(f"cold {i + 1}: first chart {_show(firsts['cold'][-1])}", flush=True)
                if "restart" in args.modes and store != "off":  # new server, the store holds the results
                    if not Path(store).exists():
                        server = Server(catalogue, store, log)
                        try:
                            _once(browser, server)
                        finally:
                            server.stop()
                    server = Server(catalogue, store, log)
                    listening.append(server.listening)
                    try:
                        firsts["restart"].append(_once(browser, server))
                        print(f"restart {i + 1}: first chart {_show(firsts['restart'][-1])}", flush=True)
                        if "warm" in args.modes:
                            _warm(browser, server, firsts, switch_runs, i)
                    finally:
                        server.stop()
                elif "warm" in args.modes:
                    server = Server(catalogue, store, log)
                    try:
                        _once(browser, server)  # computes (or loads) once
                        _warm(browser, server, firsts, switch_runs, i)
                    finally:
                        server.stop()
        finally:
            browser.close()
    report["load_after"] = uptime()
    report["first_chart"] = {k: v for k, v in firsts.items() if v}
    report["listening"] = listening
    report["switches"] = {name: [r[name] for r in switch_runs] for name in (switch_runs[0] if switch_runs else {})}
    shutil.rmtree(work, ignore_errors=True)
    return report


def _warm(browser, server: Server, firsts: dict[str, list[Timing]], switch_runs: list[dict[str, Timing]],
          i: int) -> None:
    timing, page, cdp = first_chart(browser, server)
    firsts["warm"].append(timing)
    switch_runs.append(switches(page, cdp, server))
    page.close()
    print(f"warm {i + 1}: first chart {_show(timing)}", flush=True)
    # a returning visitor: a new tab in a browser profile that has opened the dashboard before
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        _, page, _ = first_chart(browser, server, context)
        page.close()
        timing, page, _ = first_chart(browser, server, context)
        page.close()
    finally:
        context.close()
    firsts["returning"].append(timing)
    print(f"returning {i + 1}: first chart {_show(timing)}", flush=True)
    for name, t in switch_runs[-1].items():
        print(f"  switch {name}: {_show(t)}", flush=True)


def _fmt(values: list[Timing]) -> str:
    drawn = [v for v in values if v[0] == v[0]]  # NaN: the chart never came (reported while running)
    missing = f"; {len(values) - len(drawn)} not drawn" if len(drawn) < len(values) else ""
    if not drawn:
        return "not drawn | | | | |"
    walls = [v[0] for v in drawn]
    return (f"{_median(walls):.2f} s ({min(walls):.2f}–{max(walls):.2f}{missing}) | "
            f"{_median([v[1] for v in drawn]):.2f} s | {_median([v[2] for v in drawn]):.2f} s | "
            f"{_median([v[3] for v in drawn]):.2f} s | {_median([v[4] for v in drawn]) / 1e6:.2f} MB | {len(values)}")


def markdown(report: dict[str, object], label: str) -> str:
    lines = [f"### {label}", "",
             f"Data: `{report['data']}`. Machine: {report['cpus']} CPUs, Python {report['python']}, {report['platform']}.",
             f"Load before: `{report['load_before']}`; after: `{report['load_after']}`.", "",
             "| step | wall time, median (range) | server CPU | browser main thread busy | browser main thread "
             "CPU | received | runs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    names = {"restart": "first chart after a server restart (results store)", "cold": "first chart, new server, "
             "empty store (computes)", "warm": "first chart, running server, first visit (browser cache empty)",
             "returning": "first chart, running server, new tab of a browser that has visited (its cache warm)"}
    for kind, values in report["first_chart"].items():  # type: ignore[union-attr]
        lines.append(f"| {names[kind]} | {_fmt(values)} |")
    for name, values in report["switches"].items():  # type: ignore[union-attr]
        lines.append(f"| {name if name == LIBRARY else 'switch → ' + name} | {_fmt(values)} |")
    if report.get("listening"):
        waits = report["listening"]  # type: ignore[assignment]
        lines += ["", f"A restarted server answered {_median(waits):.2f} s (median; {min(waits):.2f}–{max(waits):.2f}) "
                  "after its process started (the dashboard's code imported first, audit_metrics/ui/serve.py); the "
                  "restart row is timed from then."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="an extract folder laid out like sample_data/")
    parser.add_argument("--generate", type=int, help="write an extract of N patients to benchmarks/data/nN first")
    parser.add_argument("--modes", default="restart,warm,cold", help="any of restart, warm, cold (comma-separated)")
    parser.add_argument("--store", default="on", choices=["on", "off"], help="the results store (default on)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "browser_timing.md")
    parser.add_argument("--append", action="store_true", help="add to --out instead of replacing it")
    args = parser.parse_args()
    args.modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if args.generate:
        from audit_metrics.sample import write_sample

        args.data = DATA / f"n{args.generate}"
        if not (args.data / "patients.parquet").exists():
            write_sample(args.data, patients=args.generate, seed=2026)
    report = run(args)
    label = f"{'Bundled sample' if args.data is None else args.data.name} — {time.strftime('%Y-%m-%d %H:%M %Z')}"
    text = markdown(report, label)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        text = args.out.read_text() + "\n" + text
    else:
        text = ("# Dashboard timings in a real browser\n\n`python benchmarks/browser_timing.py` "
                "(headless Debian chromium through Playwright; medians of the runs). Not a test.\n\n" + text)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
