"""The results store (``audit_metrics.results_cache``): a restarted dashboard loads the results computed for exactly
these inputs, recomputes (and says why) when any input changed or the stored file cannot be trusted, and never
serves another input's results. Oracle: a fresh ``run_audit`` on the same files (tables compared exactly)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from audit_metrics import results_cache
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit

ROOT = Path(__file__).resolve().parents[1]


class Counter:
    """compute() stand-in: counts calls and returns a new picklable value each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, int]:
        self.calls += 1
        return {"run": self.calls}


def _manifest(folder: Path, text: str = "indicators: []\n") -> tuple[Path, dict[str, str]]:
    catalogue = folder / "indicators.yaml"
    catalogue.write_text(text)
    extract = folder / "patients.csv"
    if not extract.exists():
        extract.write_text("trust_code,died\nZA1,0\n")
    return catalogue, results_cache.input_manifest(catalogue, text, {"dataset patients": extract})


def _lookup(store: Path, catalogue: Path, manifest: dict[str, str], compute: Counter) -> results_cache.CacheOutcome:
    return results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest, compute=compute)


def test_miss_then_hit(tmp_path: Path) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    first = _lookup(store, catalogue, manifest, compute)
    assert (first.source, first.run, compute.calls) == ("computed", {"run": 1}, 1)
    assert "no stored results for this catalogue yet" in first.note and "stored for the next start" in first.note
    second = _lookup(store, catalogue, manifest, compute)
    assert (second.source, second.run, compute.calls) == ("stored", {"run": 1}, 1)  # not recomputed
    assert second.note.startswith("Results loaded from the results store: computed ")
    assert stat_mode(store) == 0o700
    assert all(stat_mode(f) == 0o600 for f in store.iterdir())


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize(("change", "named"), [
    (lambda folder: (folder / "patients.csv").write_text("trust_code,died\nZA1,1\n"), "dataset patients"),
    (lambda folder: None, "catalogue"),
])
def test_a_changed_input_is_recomputed_and_named(tmp_path: Path, change, named: str) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    change(tmp_path)
    text = "indicators: []\n" if named != "catalogue" else "indicators: []\n# edited\n"
    catalogue, changed = _manifest(tmp_path, text)
    outcome = _lookup(store, catalogue, changed, compute)
    assert (outcome.source, outcome.run, compute.calls) == ("computed", {"run": 2}, 2)
    assert f"({named} changed since the stored results of " in outcome.note
    assert _lookup(store, catalogue, changed, compute).run == {"run": 2}  # the new results replaced the old
    assert _lookup(store, catalogue, manifest, compute).source == "computed"  # never the other input's results


def test_same_size_and_time_but_different_content_is_a_miss(tmp_path: Path) -> None:
    """Content, not size and modification time: a same-length edit with the time put back is still seen."""
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    extract = tmp_path / "patients.csv"
    before = extract.stat()
    extract.write_text("trust_code,died\nZA1,1\n")
    os.utime(extract, ns=(before.st_atime_ns, before.st_mtime_ns))
    _, changed = _manifest(tmp_path)
    assert _lookup(store, catalogue, changed, compute).source == "computed"


def test_code_version_is_part_of_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    monkeypatch.setattr(results_cache, "code_version", lambda: "another version")
    _, changed = _manifest(tmp_path)
    outcome = _lookup(store, catalogue, changed, compute)
    assert outcome.source == "computed" and "(code version changed since" in outcome.note


def test_code_version_follows_the_package_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    (package / "ui").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "ui" / "view.py").write_text("y = 1\n")
    monkeypatch.setattr(results_cache, "_PACKAGE", package)
    before = results_cache.code_version()
    (package / "ui" / "view.py").write_text("y = 2\n")  # the dashboard's drawing code computes nothing
    assert results_cache.code_version() == before
    (package / "a.py").write_text("x = 2\n")
    assert results_cache.code_version() != before


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda p: p.write_bytes(p.read_bytes()[:-10]), "does not match its recorded digest"),
    (lambda p: p.write_bytes(b"\x80\x05garbage"), "does not match its recorded digest"),
    (lambda p: p.chmod(0o666), "others can write to it"),
])
def test_a_damaged_payload_is_recomputed_with_the_reason(tmp_path: Path, damage, reason: str) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    damage(next(store.glob("*.pickle")))
    outcome = _lookup(store, catalogue, manifest, compute)
    assert (outcome.source, outcome.run, compute.calls) == ("computed", {"run": 2}, 2)
    assert "the stored results could not be used" in outcome.note and reason in outcome.note
    assert _lookup(store, catalogue, manifest, compute).source == "stored"  # rewritten, good again


@pytest.mark.parametrize("index_text", ["{not json", json.dumps({"format": 999, "inputs": {}}), "[]"])
def test_a_damaged_index_is_recomputed(tmp_path: Path, index_text: str) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    next(store.glob("*.json")).write_text(index_text)
    outcome = _lookup(store, catalogue, manifest, compute)
    assert outcome.source == "computed" and "the stored results could not be used" in outcome.note


def test_unexpected_type_is_refused(tmp_path: Path) -> None:
    store, compute = tmp_path / "store", Counter()
    catalogue, manifest = _manifest(tmp_path)
    _lookup(store, catalogue, manifest, compute)
    outcome = results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest, compute=compute,
                                            expected_type=AuditRun)
    assert outcome.source == "computed" and "it does not hold results" in outcome.note


def test_store_off_and_unwritable_store_still_compute_and_say_so(tmp_path: Path) -> None:
    catalogue, manifest = _manifest(tmp_path)
    off = results_cache.load_or_compute(None, catalogue_path=catalogue, manifest=manifest, compute=Counter())
    assert off.source == "computed_not_stored" and "results store off" in off.note
    blocker = tmp_path / "a file"
    blocker.write_text("")
    outcome = _lookup(blocker / "store", catalogue, manifest, Counter())
    assert (outcome.source, outcome.run) == ("computed_not_stored", {"run": 1})
    assert "could not be stored for the next start" in outcome.note


def test_a_shared_folder_is_not_used(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o777)
    store.chmod(0o777)
    catalogue, manifest = _manifest(tmp_path)
    outcome = _lookup(store, catalogue, manifest, Counter())
    assert outcome.source == "computed_not_stored" and "not private to this user" in outcome.note
    assert not list(store.iterdir())


def test_cache_dir_from_the_environment(tmp_path: Path) -> None:
    assert results_cache.cache_dir({results_cache.ENV: "off"}) is None
    assert results_cache.cache_dir({results_cache.ENV: str(tmp_path)}) == tmp_path
    assert results_cache.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "audit_metrics" / "results"
    assert results_cache.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "audit_metrics" / "results"


def test_input_files_list_every_file_a_run_reads(catalogue_path: Path) -> None:
    loaded = load_catalogue(catalogue_path)
    files = results_cache.input_files(loaded)
    assert {f"dataset {n}" for n in loaded.catalogue.datasets} | {"units file", "mergers file"} == set(files)
    assert files["mergers file"] == ROOT / "sample_data" / "trust_mergers.csv"
    assert all(p.is_file() for p in files.values())


def test_a_real_run_round_trips_exactly(tmp_path: Path, project_copy: Path) -> None:
    catalogue = project_copy / "indicators.yaml"
    loaded = load_catalogue(catalogue)
    manifest = results_cache.input_manifest(catalogue, loaded.text, results_cache.input_files(loaded))
    store = tmp_path / "store"
    first = results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest,
                                          compute=lambda: run_audit(loaded), expected_type=AuditRun)
    again = results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest,
                                          compute=pytest.fail, expected_type=AuditRun)
    assert (first.source, again.source) == ("computed", "stored")
    fresh = run_audit(load_catalogue(catalogue))
    assert_frame_equal(again.run.table(), fresh.table())
    assert_frame_equal(again.run.curves(), fresh.curves())
    assert again.run.catalogue_digest == fresh.catalogue_digest and again.run.data_digests == fresh.data_digests


def test_a_restarted_dashboard_loads_the_stored_results(tmp_path: Path, project_copy: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two server lifetimes (the in-memory cache cleared between them): the second computes nothing, shows the
    same outlier table and says where its results came from; a changed extract is recomputed and said to be."""
    import streamlit as st

    from audit_metrics.ui import state

    calls: list[str] = []
    real = state.run_audit

    def counting(loaded, data=None):  # type: ignore[no-untyped-def]
        calls.append(str(loaded.path))
        return real(loaded, data=data)

    monkeypatch.setattr(state, "run_audit", counting)
    checks: list[str] = []  # the catalogue checked against the data (reads every extract's schema)
    real_check = state.check_catalogue
    monkeypatch.setattr(state, "check_catalogue", lambda *a, **k: checks.append(k["file"]) or real_check(*a, **k))
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(project_copy / "indicators.yaml"))
    monkeypatch.setenv(results_cache.ENV, str(tmp_path / "store"))

    def session() -> tuple[list[str], str]:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.query_params["view"] = "Outliers & export"
        at.run()
        assert not at.exception and not at.error
        return [c.value for c in at.sidebar.caption], str(at.dataframe[0].value) if at.dataframe else ""

    st.cache_resource.clear()
    captions, shown = session()
    assert len(calls) == 1 and any(c.startswith("Results computed now (no stored results") for c in captions)
    st.cache_resource.clear()  # a restart: memory gone, the store stays
    captions, shown_again = session()
    assert len(calls) == 1, "the restarted server recomputed"
    assert len(checks) == 1, "stored results were computed from these exact inputs: nothing to check again"
    assert any(c.startswith("Results loaded from the results store") for c in captions)
    assert shown_again == shown
    lung = project_copy / "sample_data" / "lung_cns_by_trust.csv"
    lines = lung.read_text().splitlines()
    lung.write_text("\n".join(lines[:-1]) + "\n")  # one trust's row fewer
    st.cache_resource.clear()
    captions, _ = session()
    assert len(calls) == 2 and len(checks) == 2  # recomputed, so checked against the changed data first
    assert any("dataset lung_cns changed since the stored results" in c for c in captions)
    # a changed extract the catalogue no longer fits: the check runs before any computing and says why
    lung.write_text(lung.read_text().replace("seen_by_cns", "seen_by_nurse", 1))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["view"] = "Outliers & export"
    at.run()
    assert not at.exception and len(calls) == 2 and len(checks) == 3
    assert any("problem" in e.value for e in at.error) and "seen_by_cns" in " ".join(c.value for c in at.code)
    st.cache_resource.clear()


def test_results_table_type(tmp_path: Path) -> None:
    """The store keeps polars frames as they are (dtypes included, e.g. the status Enum)."""
    frame = pl.DataFrame({"status": pl.Series(["within"], dtype=pl.Enum(["within", "alarm_high"]))})
    catalogue, manifest = _manifest(tmp_path)
    store = tmp_path / "store"
    results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest, compute=lambda: frame)
    again = results_cache.load_or_compute(store, catalogue_path=catalogue, manifest=manifest, compute=pytest.fail)
    assert_frame_equal(again.run, frame)
