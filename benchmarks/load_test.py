"""Many viewers at once: `python benchmarks/load_test.py` (see README "Deploying").

Starts the dashboard (`streamlit run app.py`, bundled sample) on a free port on 127.0.0.1 and drives it
through its own websocket, as browser tabs do (audit_metrics.ui.readiness.Session). One session renders
first (the computation, shared afterwards); then the other sessions open and render, and every session
switches view (Indicator, Trust profile, Cancer Alliance, Overview, ...) after a random pause (0.5-1.5 times
--think; the first after 0-1 times) until the time is up. It reports the server's resident memory with 1 and with N sessions open, memory per extra
session, and latency percentiles per interaction (request sent -> run finished). Bounded in sessions and
time; traffic only to 127.0.0.1. Nothing here is a pass/fail test. Writes benchmarks/results/load_test.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_metrics.ui.readiness import Session  # noqa: E402

VIEWS = ("Indicator", "Trust profile", "Cancer Alliance", "Overview")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def run(sessions: int, seconds: float, think: float) -> dict[str, object]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0.0]
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb(server.pid))
            time.sleep(0.25)

    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        threading.Thread(target=monitor, daemon=True).start()
        rss_idle = _rss_mb(server.pid)
        first = Session(url, timeout=300)
        page = first.run({"view": "Overview"})
        assert page.rendered and not page.errors, page.errors
        first_render = page.seconds
        time.sleep(2)
        rss_one = _rss_mb(server.pid)
        tabs = [first]
        opening: list[float] = []
        for _ in range(sessions - 1):
            tab = Session(url, timeout=300)
            opening.append(tab.run({"view": "Overview"}).seconds)
            tabs.append(tab)
        time.sleep(2)
        rss_all = _rss_mb(server.pid)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def browse(i: int, tab: Session, radio_id: str) -> None:
            k = i
            rng = random.Random(i)  # people do not click in step: a random start and pauses of 0.5-1.5x
            time.sleep(rng.uniform(0, think))
            while time.monotonic() < deadline:
                view = VIEWS[k % len(VIEWS)]
                k += 1
                try:
                    p = tab.run({}, values={radio_id: view})
                except Exception as exc:  # a failed interaction is counted, not fatal
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    return
                with lock:
                    latencies.append(p.seconds)
                    if p.errors or not p.finished:
                        errors.append(f"{view}: {p.errors or 'not finished'}")
                time.sleep(think * rng.uniform(0.5, 1.5))

        radio = page.find("radio", "View")
        assert radio is not None
        threads = [threading.Thread(target=browse, args=(i, t, radio.widget_id)) for i, t in enumerate(tabs)]
        cpu_before, wall_before = _cpu_s(server.pid), time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        cpu_used, wall_used = _cpu_s(server.pid) - cpu_before, time.monotonic() - wall_before
        rss_end = _rss_mb(server.pid)
        for tab in tabs:
            tab.close()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    return {
        "sessions": sessions, "seconds": seconds, "think_s": think,
        "first_render_s": round(first_render, 2),
        "open_session_p50_s": round(statistics.median(opening), 3) if opening else None,
        "interactions": len(latencies), "errors": errors[:10], "n_errors": len(errors),
        "latency_p50_s": round(_pct(latencies, 0.5), 3), "latency_p95_s": round(_pct(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "interactions_per_s": round(len(latencies) / wall_used, 2),
        "server_cpu_per_interaction_s": round(cpu_used / max(1, len(latencies)), 3),
        "server_cpu_utilisation": round(cpu_used / wall_used, 2),
        "rss_idle_mb": round(rss_idle), "rss_1_session_mb": round(rss_one), f"rss_{sessions}_sessions_mb": round(rss_all),
        "rss_per_extra_session_mb": round((rss_all - rss_one) / max(1, sessions - 1), 2),
        "rss_after_load_mb": round(rss_end), "rss_peak_mb": round(peak[0]),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
                   f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0, help="pause between one session's clicks (s)")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 100 or not 0 < args.seconds <= 600:
        msg = "error: at most 100 sessions and 600 s (this is a bounded test)"
        raise SystemExit(msg)
    result = run(args.sessions, args.seconds, args.think)
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "load_test.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
