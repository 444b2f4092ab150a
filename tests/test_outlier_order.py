"""The outlier list in the order a QI lead reads it (#12 build 3): worse before better, alarms before alerts,
then by site and indicator with the farthest from expected first; on screen the result comes first."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics import views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def flagged(catalogue_path: Path) -> pl.DataFrame:
    return views.outlier_list(views.pooled(run_audit(load_catalogue(catalogue_path))))


def test_worse_before_better_and_alarms_first(flagged: pl.DataFrame) -> None:
    assert set(flagged["direction"]) >= {"worse", "better"}
    sides = flagged["direction"].to_list()
    assert sides == sorted(sides, key=lambda d: {"worse": 0, "better": 2}.get(d, 1))  # worse block, then better
    for side in ("worse", "better"):
        part = flagged.filter(pl.col("direction") == side)
        alarm = part["status"].cast(pl.String).str.starts_with("alarm").to_list()
        assert alarm == sorted(alarm, reverse=True), side  # every alarm before every alert
        assert any(alarm) and not all(alarm)
        for (_, _, _), group in part.group_by("direction", "status", "indicator_id", maintain_order=True):
            z = group["z"].abs().to_list()
            assert z == sorted(z, reverse=True)


def test_screen_table_starts_with_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_METRICS_EDIT", raising=False)
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["view"] = "Outliers & export"
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.columns[0] == "status_label"
    labels = table["status_label"].tolist()
    first_better = next(i for i, s in enumerate(labels) if s.startswith("better"))
    assert all(s.startswith("worse") for s in labels[:first_better])
