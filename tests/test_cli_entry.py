"""The ``audit-metrics`` command leaves with ``os._exit`` once ``main`` returns (#16: tearing the interpreter down took
0.2 s of every run). Nothing may be lost by it: every file complete and the same as an in-process run writes, the
printed lines all there when read through a pipe, a recorded release committed, and the exit codes unchanged.

Oracle: ``audit_metrics.cli.main`` run in this process (which exits normally) on the same inputs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from audit_metrics.cli import main

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = str(ROOT / "indicators.yaml")


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_metrics.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_console_script_is_the_fast_exit_entry() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "audit-metrics"]
    assert script.value == "audit_metrics.cli:entry"


def test_files_and_printed_lines_are_complete(tmp_path: Path) -> None:
    only = ["--indicator", "bowel_mort90", "--indicator", "lung_cns"]
    outputs = {s: tmp_path / f"{s}_results.csv" for s in ("process", "here")}
    extra = {s: ["--limits-out", str(tmp_path / f"{s}_limits.parquet"),
                 "--accounting-out", str(tmp_path / f"{s}_accounting.csv")] for s in outputs}
    proc = _command("run", CATALOGUE, "--out", str(outputs["process"]), *only, *extra["process"],
                    "--record", str(tmp_path / "store.sqlite"), "--label", "2024-Q1")
    assert proc.returncode == 0, proc.stderr
    assert main(["run", CATALOGUE, "--out", str(outputs["here"]), *only, *extra["here"], "--quiet"]) == 0
    assert outputs["process"].read_bytes() == outputs["here"].read_bytes()
    assert (tmp_path / "process_accounting.csv").read_bytes() == (tmp_path / "here_accounting.csv").read_bytes()
    assert (tmp_path / "process_limits.parquet").stat().st_size > 0
    lines = proc.stdout.splitlines()  # the summary, last line "wrote ... rows) in ... s", all through the pipe
    assert lines[-1].startswith(f"wrote {outputs['process']} (") and "recorded release 1 (2024-Q1) in " in proc.stdout
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:  # committed before leaving
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        assert tables
        assert any(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)


def test_exit_codes_and_error_messages_unchanged(tmp_path: Path) -> None:
    ok = _command("validate", CATALOGUE)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{CATALOGUE}: OK")
    missing = _command("run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x.csv"))
    assert missing.returncode != 0 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nindicators: [\n", encoding="utf-8")
    proc = _command("validate", str(bad))
    assert proc.returncode == 1 and proc.stderr.rstrip().endswith("found.") and "Traceback" not in proc.stderr
