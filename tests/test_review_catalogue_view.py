"""The Indicator catalogue view on an O/E table (a real-data review, examples/shmi): it read "Numerator / denominator
columns: OBSERVED /  " (the expected column unnamed) and gave the methods as codes ("exact_ci", "transformed") in a
view that promises plain English; the overdispersion test read "p = 0" for p = 4.8e-90.

Oracle: the catalogue's own columns, and the run's own plain-English method statement (its results table)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.overdispersion import estimate_robust_ml
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
SHMI = ROOT / "examples" / "shmi" / "indicators.yaml"


@pytest.fixture(scope="module")
def view() -> Iterator[AppTest]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIT_METRICS_CATALOGUE", str(SHMI))
        mp.setenv("AUDIT_METRICS_RESULTS_CACHE", "off")
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.query_params["view"] = "Indicator catalogue"
        yield at.run()


def test_columns_and_methods_are_named(view: AppTest) -> None:
    assert not view.exception
    loaded = load_catalogue(SHMI)
    run = run_audit(loaded)
    text = "\n".join(m.value for m in view.markdown)
    for spec in loaded.catalogue.indicators:
        assert f"**Observed / expected columns:** `{spec.numerator}` / `{spec.expected}`" in text
        said = run.results[spec.id].table.filter(pl.col("level") == "trust")["method"].drop_nulls()[0]
        limits = ", ".join(f"{c * 100:g}%" for c in loaded.options(spec).limits)
        assert f"**Limits:** {limits}, {said}" in text.replace("\\", "")
    assert "exact_ci" not in text and "p = 0 " not in text and "p = 0)" not in text


def test_a_tiny_likelihood_ratio_p_reads_below_a_thousandth() -> None:
    # trusts with very different rates: the test's p underflows to ~0
    observed = [100.0, 400.0, 150.0, 600.0, 90.0, 500.0, 120.0, 700.0, 80.0, 650.0, 110.0, 550.0]
    exposure = [1000.0] * len(observed)
    od = estimate_robust_ml(observed, exposure, statistic="ratio", mean=[0.3] * len(observed), method="additive",
                            scale="log")
    assert od.p_value < 0.001 and "likelihood-ratio test p < 0.001" in od.reason
