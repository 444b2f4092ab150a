"""Indicators computed two at a time (#16): the same results, progress and errors as one after another."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from audit_metrics import pipeline
from audit_metrics.catalogue import load_catalogue
from audit_metrics.exceptions import AuditMetricsError


def _run(catalogue_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> tuple[pipeline.AuditRun, list[str]]:
    monkeypatch.setattr(pipeline, "_INDICATOR_WORKERS", workers)
    monkeypatch.setattr(pipeline, "_PREPARED", type(pipeline._PREPARED)())  # nothing reused between the runs
    told: list[str] = []
    run = pipeline.run_audit(load_catalogue(catalogue_path), progress=lambda i, n, ind: told.append(f"{i}/{n} {ind}"))
    return run, told


def test_two_at_a_time_gives_the_same_results_in_the_same_order(catalogue_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    again, _ = _run(catalogue_path, 1, monkeypatch)
    serial, told_serial = _run(catalogue_path, 1, monkeypatch)
    threaded, told_threaded = _run(catalogue_path, 2, monkeypatch)
    assert list(threaded.results) == list(serial.results) == [s.id for s in load_catalogue(catalogue_path).catalogue.indicators]
    assert told_threaded == told_serial
    # bit for bit: the alliance and national rows come in a fixed order (a group-by's order changed the
    # alliances' tau2, z and limits in the 14th digit from run to run, with or without threads)
    assert threaded.table().equals(serial.table())
    assert again.table().equals(serial.table())
    assert threaded.curves().equals(serial.curves())
    for ind, result in serial.results.items():
        assert threaded.results[ind].accounting == result.accounting
        assert threaded.results[ind].warnings == result.warnings
        assert (threaded.results[ind].risk_model is None) == (result.risk_model is None)
        if result.risk_model is not None:
            assert threaded.results[ind].risk_model.coefficients.equals(result.risk_model.coefficients)


def test_the_first_failure_in_catalogue_order_is_raised(catalogue_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second indicator fails slowly and the third at once: the error is the second's, as when run one after
    another, and the indicators not yet started are not run. Every indicator after the third is held until the
    pool has cancelled the rest, so at most one more (one per thread) can have started by then."""
    real = pipeline.run_indicator
    ids = [s.id for s in load_catalogue(catalogue_path).catalogue.indicators]
    started: list[str] = []
    lock = threading.Lock()
    raised = threading.Event()

    def flaky(spec, *args, **kwargs):
        with lock:
            started.append(spec.id)
        if spec.id == ids[1]:
            time.sleep(0.3)
            msg = f"{spec.id}: the risk model could not be fitted (test)"
            raise AuditMetricsError(msg)
        if spec.id == ids[2]:
            msg = f"{spec.id}: later failure"
            raise AuditMetricsError(msg)
        if spec.id != ids[0]:
            raised.wait(10)
        return real(spec, *args, **kwargs)

    class Pool(ThreadPoolExecutor):
        """The held threads are released once the pool has cancelled what had not started (not after a fixed
        time: under load the first indicator alone took longer than the one second once allowed)."""

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait=False, cancel_futures=cancel_futures)
            raised.set()
            super().shutdown(wait=wait)

    monkeypatch.setattr(pipeline, "run_indicator", flaky)
    monkeypatch.setattr(pipeline, "_INDICATOR_WORKERS", 2)
    monkeypatch.setattr(pipeline, "ThreadPoolExecutor", Pool)
    try:
        with pytest.raises(AuditMetricsError, match=f"^{ids[1]}: the risk model could not be fitted"):
            pipeline.run_audit(load_catalogue(catalogue_path))
    finally:
        raised.set()
    assert set(ids[:4]) <= set(started) <= set(ids[:5])  # the other indicators were cancelled, never started


def test_the_cache_is_shared_safely(catalogue_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads asking for the same indicator at once (two dashboard sessions) get equal counts and leave one
    entry in the cache."""
    monkeypatch.setattr(pipeline, "_PREPARED", type(pipeline._PREPARED)())
    loaded = load_catalogue(catalogue_path)
    _, datasets = pipeline.load_all(loaded)
    spec = loaded.indicator("bowel_mort90")
    ds_spec = loaded.catalogue.datasets[spec.dataset]
    out: list[pl.DataFrame] = []

    def ask() -> None:
        counts = pipeline.prepare(spec, datasets[spec.dataset], unit_column=ds_spec.unit_column or "trust_code",
                                  period_column=ds_spec.period_column)[0]
        out.append(counts.sort("unit_code", "period"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and all(o.equals(out[0]) for o in out)
    assert len(pipeline._PREPARED) == 1


def test_indicators_defined_alike_keep_their_own_accounting(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/shmi has two indicators on the same counts (two scales): the second's cohort accounting was the
    first's, labelled with the first's id (shared cache entry), or its own when the two ran at the same time."""
    root = Path(__file__).resolve().parents[1]
    loaded = load_catalogue(root / "examples" / "shmi" / "indicators.yaml")
    ids = [s.id for s in loaded.catalogue.indicators]
    assert len(ids) == 2
    for workers in (1, 2):
        monkeypatch.setattr(pipeline, "_INDICATOR_WORKERS", workers)
        monkeypatch.setattr(pipeline, "_PREPARED", type(pipeline._PREPARED)())
        run = pipeline.run_audit(loaded)
        assert [run.results[i].accounting.dataset for i in ids] == ids
