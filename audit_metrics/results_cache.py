"""Results kept on disk, so a restarted dashboard shows the last computed results instead of recomputing them.

The dashboard computes every indicator once per (catalogue, extracts) and keeps the result in memory. A server
restart used to lose it, and the first visitor waited for the whole pipeline (about 8-14 s at 2M patient rows).
This module stores the computed :class:`~audit_metrics.pipeline.AuditRun` in a folder and gives it back on the
next start **only when every input is byte-for-byte the same**:

* the catalogue's text and path,
* every file the catalogue reads (extracts, units, mergers): path and SHA-256 of the content,
* the code: a digest of this package's own source files, plus the Python, polars and numpy versions.

Anything else is a recompute, and the outcome says which input changed; a stored file that cannot be read
(truncated, altered, wrong owner or permissions) is a recompute with the reason. Nothing is served silently:
:class:`CacheOutcome.note` is one sentence for the screen.

Where: the folder named by ``AUDIT_METRICS_RESULTS_CACHE`` (``off`` switches the store off), else
``$XDG_CACHE_HOME/audit_metrics/results`` (``~/.cache/audit_metrics/results``). One entry per catalogue path: a
JSON index (the inputs' digests and the payload's SHA-256) and the payload, written atomically with mode 0600
in a 0700 folder. The payload is a pickle of the results, so the folder must be writable by the server's user
only: a file owned by another user, or writable by group or others, is refused, and the payload must match the
digest in the index. Results from uploaded data are never stored (they stay in the session's memory).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

__all__ = ["ENV", "CacheOutcome", "cache_dir", "code_version", "file_digest", "input_files", "input_manifest",
           "load_or_compute"]

ENV = "AUDIT_METRICS_RESULTS_CACHE"
FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent
_CHUNK = 1 << 20

Source = Literal["stored", "computed", "computed_not_stored"]


@dataclass(frozen=True)
class CacheOutcome:
    """The results, where they came from, and one sentence saying so (shown beside the results)."""

    run: object  # an AuditRun (typed loosely: this module is imported before the pipeline is)
    source: Source
    note: str


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The store's folder, or None when switched off (``AUDIT_METRICS_RESULTS_CACHE=off``)."""
    env = os.environ if environ is None else environ
    value = env.get(ENV)
    if value is not None:
        if value.strip().lower() in {"", "off", "0", "no", "false", "none"}:
            return None
        return Path(value).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "audit_metrics" / "results"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (streamed; a 2M-row Parquet extract of 17 MB takes about 0.03 s)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def code_version() -> str:
    """Digest of this package's source files (the dashboard's ``ui`` excluded: it computes nothing) and the
    versions that the stored objects depend on."""
    import numpy
    import polars

    h = hashlib.sha256(f"{FORMAT}|{platform.python_version()}|{polars.__version__}|{numpy.__version__}".encode())
    for source in sorted(_PACKAGE.rglob("*.py")):
        rel = source.relative_to(_PACKAGE)
        if rel.parts[0] == "ui":
            continue
        h.update(str(rel).encode() + b"\0" + source.read_bytes() + b"\0")
    return h.hexdigest()


def input_files(loaded, overrides: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Every file a run of this catalogue reads, by role: each dataset, the units file and the mergers file."""
    overrides = overrides or {}
    cat = loaded.catalogue
    files = {f"dataset {name}": Path(loaded.dataset_path(name, overrides)) for name in cat.datasets}
    if cat.units.file is not None:
        files["units file"] = loaded.base_dir / cat.units.file
    if cat.units.mergers:
        files["mergers file"] = loaded.base_dir / cat.units.mergers
    return files


def input_manifest(catalogue_path: Path, catalogue_text: str, files: Mapping[str, Path]) -> dict[str, str]:
    """What the stored results must have been computed from: {input: digest}, in plain words as keys."""
    manifest = {"catalogue": f"{Path(catalogue_path).resolve()}|"
                             f"{hashlib.sha256(catalogue_text.encode()).hexdigest()}",
                "code version": code_version()}
    for role, path in sorted(files.items()):
        path = Path(path).resolve()
        manifest[role] = f"{path}|{file_digest(path) if path.is_file() else 'missing'}"
    return manifest


def _slot(directory: Path, catalogue_path: Path) -> tuple[Path, Path]:
    key = hashlib.sha256(str(Path(catalogue_path).resolve()).encode()).hexdigest()[:32]
    return directory / f"{key}.json", directory / f"{key}.pickle"


def _check_private(path: Path, *, folder: bool = False) -> str | None:
    """Why a stored file (or the store's folder) must not be trusted, or None."""
    info = path.lstat() if not folder else path.stat()
    if not (stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)):
        return "it is not a folder" if folder else "it is not a regular file"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "it belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others can write to it"
    return None


def _read_index(index: Path) -> dict:
    reason = _check_private(index)
    if reason:
        raise ValueError(reason)
    data = json.loads(index.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("inputs"), dict):
        msg = "its index is not in this version's format"
        raise ValueError(msg)
    return data


def _read_payload(payload: Path, digest: str) -> object:
    reason = _check_private(payload)
    if reason:
        raise ValueError(reason)
    raw = payload.read_bytes()
    if hashlib.sha256(raw).hexdigest() != digest:
        msg = "the file does not match its recorded digest (truncated or altered)"
        raise ValueError(msg)
    return pickle.loads(raw)  # our own file: owner-only, digest-checked (module docstring)


def _write_private(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp creates it 0600
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _store(directory: Path, catalogue_path: Path, manifest: dict[str, str], run: object, computed_at: str) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    reason = _check_private(directory, folder=True)
    if reason:
        msg = f"the folder {directory} is not private to this user: {reason}"
        raise PermissionError(msg)
    index, payload = _slot(directory, catalogue_path)
    raw = pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL)
    _write_private(payload, raw)
    _write_private(index, json.dumps({"format": FORMAT, "computed_at": computed_at, "inputs": manifest,
                                      "payload_sha256": hashlib.sha256(raw).hexdigest()}, indent=1).encode())


def _changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def load_or_compute(directory: Path | None, *, catalogue_path: Path, manifest: dict[str, str],
                    compute: Callable[[], object], expected_type: type | None = None) -> CacheOutcome:
    """The stored results when ``manifest`` matches the stored one exactly, else ``compute()`` (stored for
    the next start). ``directory`` None: the store is off, always compute."""
    if directory is None:
        return CacheOutcome(compute(), "computed_not_stored",
                            f"Results computed at start-up (results store off: {ENV}=off).")
    index, payload = _slot(directory, catalogue_path)
    why = "no stored results for this catalogue yet"
    if index.exists():
        try:
            stored = _read_index(index)
            changed = _changed(stored["inputs"], manifest)
            when = str(stored.get("computed_at", "an earlier start"))
            if changed:
                why = f"{', '.join(changed)} changed since the stored results of {when}"
            else:
                run = _read_payload(payload, str(stored.get("payload_sha256")))
                if expected_type is not None and not isinstance(run, expected_type):
                    msg = "it does not hold results"
                    raise ValueError(msg)
                return CacheOutcome(run, "stored", f"Results loaded from the results store: computed {when} "
                                                   f"from these exact files ({len(manifest) - 2} input files, "
                                                   "catalogue and code unchanged).")
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                TypeError, IndexError, KeyError) as exc:
            why = f"the stored results could not be used ({exc})"
    run = compute()
    computed_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        _store(directory, catalogue_path, manifest, run, computed_at)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        return CacheOutcome(run, "computed_not_stored",
                            f"Results computed now ({why}); they could not be stored for the next start: {exc}.")
    return CacheOutcome(run, "computed", f"Results computed now ({why}); stored for the next start.")
