"""Uploads, bounded (#15 items 2 and 9): each uploaded extract is read first in a child process with a time
and memory budget and a row cap, and upload folders do not outlive their session.

Streamlit is not imported here: the check runs in a fresh ("spawn") process that imports only the reader.
A file that would take too long, need too much memory or hold too many rows is refused with a message
saying which bound it passed and what to do; the dashboard's own process never reads it. The bounds
are per upload and can be set for a server:

``AUDIT_METRICS_UPLOAD_SECONDS`` (default 120), ``AUDIT_METRICS_UPLOAD_MEMORY_MB`` (default 3072, the
reading process's resident memory, measured from ``/proc``: on a system without it only the time and row
bounds apply), ``AUDIT_METRICS_UPLOAD_ROWS`` (default 5,000,000) and ``AUDIT_METRICS_UPLOAD_CHECKS``
(uploads checked at once across all sessions, default 2; a further one waits up to 10 s, then is asked to
try again).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FOLDER_PREFIX", "UploadCheck", "UploadFolder", "UploadLimits", "check_upload",
           "remove_stale_folders"]

FOLDER_PREFIX = "audit_metrics_upload_"
_ENV = {"seconds": "AUDIT_METRICS_UPLOAD_SECONDS", "memory_mb": "AUDIT_METRICS_UPLOAD_MEMORY_MB",
        "rows": "AUDIT_METRICS_UPLOAD_ROWS"}


@dataclass(frozen=True)
class UploadLimits:
    """What reading one uploaded file may cost."""

    seconds: float = 120.0
    memory_mb: float = 3072.0
    rows: int = 5_000_000

    @classmethod
    def from_env(cls) -> UploadLimits:
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            raw = os.environ.get(var, "").strip()
            if raw:
                try:
                    number = float(raw)
                except ValueError:
                    continue  # a malformed setting keeps the default rather than removing the bound
                if number > 0:
                    values[name] = int(number) if name == "rows" else number
        return cls(**values)


@dataclass(frozen=True)
class UploadCheck:
    """The outcome of reading an upload in the bounded child process."""

    ok: bool
    rows: int | None            # rows read (None when the read did not finish)
    seconds: float              # wall time of the check, including starting the process (about 1-2 s)
    peak_memory_mb: float | None  # highest resident memory seen (None where /proc is unavailable)
    problem: str | None         # what to tell the person, when not ok


_CHECKS = threading.BoundedSemaphore(max(1, int(os.environ.get("AUDIT_METRICS_UPLOAD_CHECKS", "2") or 2)))


def _read(path: str, spec: Any) -> tuple[str, Any]:  # pragma: no cover - runs in the child process
    from audit_metrics.exceptions import AuditMetricsError
    from audit_metrics.io import read_table

    try:
        return "ok", read_table(path, spec)[0].height
    except AuditMetricsError as exc:
        return "error", str(exc)
    except MemoryError:
        return "memory", ""
    except Exception as exc:  # an unreadable file of any kind is the uploader's problem, said plainly
        return "error", f"the file could not be read ({type(exc).__name__}: {str(exc)[:300]})"


def _resident_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_upload(path: str | Path, spec: Any, *, name: str, limits: UploadLimits | None = None,
                 poll: float = 0.05) -> UploadCheck:
    """Read ``path`` (an extract of a dataset declared by ``spec``) in a child process within ``limits``;
    ``name`` is how the person knows the file (its uploaded name, never the server path)."""
    limits = limits or UploadLimits.from_env()
    started = time.perf_counter()
    if not _CHECKS.acquire(timeout=10):
        return UploadCheck(False, None, time.perf_counter() - started, None,
                           "The server is checking other uploads at the moment. Try again in a minute.")
    try:
        return _check(str(path), spec, name, limits, poll, started)
    finally:
        _CHECKS.release()


def _check(path: str, spec: Any, name: str, limits: UploadLimits, poll: float, started: float) -> UploadCheck:
    # a fresh interpreter (not multiprocessing, which would re-import the server's main module)
    proc = subprocess.Popen([sys.executable, "-m", "audit_metrics.ui.uploads"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak: float | None = None
    message = None
    stopped = ""
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(pickle.dumps((path, spec)))
        proc.stdin.close()
        while proc.poll() is None:
            rss = _resident_mb(proc.pid)
            if rss is not None:
                peak = rss if peak is None else max(peak, rss)
                if rss > limits.memory_mb:
                    stopped = "memory"
                    break
            if time.perf_counter() - started > limits.seconds:
                stopped = "time"
                break
            time.sleep(poll)
        if not stopped:
            try:
                message = json.loads(proc.stdout.read().decode("utf-8") or "null")
            except ValueError:
                message = None
    except BrokenPipeError:
        message = None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    seconds = time.perf_counter() - started
    advice = ("Upload a smaller extract (for example one period, or only the columns the catalogue uses; CSV or "
              "Parquet rather than Excel), or ask the audit team to load it on the server.")
    if stopped == "time":
        return UploadCheck(False, None, seconds, peak, f"{name} took longer than {limits.seconds:g} s to read, the "
                           f"most one upload may take on this server. {advice}")
    if stopped == "memory" or (message is not None and message[0] == "memory"):
        return UploadCheck(False, None, seconds, peak, f"{name} needed more than {limits.memory_mb:,.0f} MB of "
                           f"memory to read, the most one upload may use on this server. {advice}")
    if message is None:
        return UploadCheck(False, None, seconds, peak, f"{name} could not be read: the reading process stopped "
                           f"(exit code {proc.returncode}). {advice}")
    kind, value = message
    if kind == "error":
        return UploadCheck(False, None, seconds, peak, str(value))
    rows = int(value)
    if rows > limits.rows:
        return UploadCheck(False, rows, seconds, peak, f"{name} has {rows:,} rows; one upload may have at most "
                           f"{limits.rows:,} on this server. {advice}")
    return UploadCheck(True, rows, seconds, peak, None)


# ------------------------------------------------------------------ folders

_LIVE: set[str] = set()  # this process's session folders (never removed as stale)


class UploadFolder:
    """A session's upload folder: removed with everything in it when the session's state is discarded
    (Streamlit drops a session's state some time after its tab closes), when :meth:`remove` is called,
    or when the server stops."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        _LIVE.add(str(self.path))
        self._finalizer = weakref.finalize(self, _remove, str(self.path))

    def remove(self) -> None:
        self._finalizer()

    @property
    def removed(self) -> bool:
        return not self._finalizer.alive


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _LIVE.discard(path)


def remove_stale_folders(max_age_hours: float = 24.0, root: str | Path | None = None) -> list[Path]:
    """Remove upload folders left by earlier servers (a crash, a killed container): those not used by this
    process and untouched (folder or any file in it) for ``max_age_hours``. Returns what was removed."""
    base = Path(root or tempfile.gettempdir())
    cutoff = time.time() - max_age_hours * 3600
    removed = []
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(FOLDER_PREFIX)]
    except OSError:
        return removed
    for folder in candidates:
        if str(folder) in _LIVE or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            newest = max([folder.stat().st_mtime, *(f.stat().st_mtime for f in folder.iterdir())])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


if __name__ == "__main__":  # pragma: no cover - the bounded reader: (path, spec) pickled on stdin by _check
    _path, _spec = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(_read(_path, _spec)))
