"""An indicator with one limit (examples/shmi: shmi_poisson, ``limits: [0.998]``) in the results file and the command
line's summary (limits1's report, left in pipeline.py): its flags were labelled '(alert)' and counted as
'alerts=54, alarms=0', while every view and the export name its only limit by its coverage ('outside 99.8%'); the
overdispersion warning read 'p = 0' for p = 4.8e-90.

Oracle: the run's own status codes and overdispersion p (the labels and counts must say the same)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import UNIT_LEVEL, run_audit

SHMI = Path(__file__).resolve().parents[1] / "examples" / "shmi" / "indicators.yaml"


@pytest.fixture(scope="module")
def run():
    return run_audit(load_catalogue(SHMI))


def test_an_only_limit_is_named_by_its_coverage(run) -> None:
    single = run.results["shmi_poisson"]
    assert list(single.options.limits) == [0.998]
    trust = single.table.filter(pl.col("level") == UNIT_LEVEL, pl.col("period") == single.pooled_period)
    flagged = trust.filter(pl.col("status").cast(pl.String).str.starts_with("alert"))
    assert flagged.height > 0
    assert all(label.endswith("(outside 99.8%)") for label in flagged["status_label"].to_list())
    assert not any("(alert)" in label for label in single.table["status_label"].to_list())
    assert f"outside 99.8%={flagged.height}" in single.summary() and "alarms=" not in single.summary()
    # two limits keep alert and alarm
    double = run.results["shmi"]
    assert "alerts=" in double.summary() and "alarms=" in double.summary()
    assert any(label.endswith("(alert)") for label in double.table["status_label"].to_list())


def test_a_tiny_overdispersion_p_reads_below_a_thousandth(run) -> None:
    single = run.results["shmi_poisson"]
    od = single.overdispersion[(UNIT_LEVEL, single.pooled_period)]
    assert od.p_value < 0.001
    warning = next(w for w in single.warnings if "overdispersion test" in w)
    assert "overdispersion test p < 0.001" in warning and "p = 0 " not in warning
