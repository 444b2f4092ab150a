"""External standards: one-sided tests (only "worse than the standard" is flagged) and standards that
change between periods (issue 9, item 8). Oracles: scipy.stats (one-sided normal tail), a simulation
with a known truth (flag rate), and the exposure-weighted average written out in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats

from audit_metrics.catalogue import MethodOptions, load_catalogue
from audit_metrics.exceptions import AuditMetricsError, CatalogueError
from audit_metrics.outliers import assess_units
from audit_metrics.pipeline import run_audit


def _opts(**kw: object) -> MethodOptions:
    base = {"limits": (0.95, 0.998), "overdispersion": "none", "robust": "winsorise", "trim": 0.1,
            "min_denominator": 0, "min_units": 10, "limit_method": "exact", "fdr": False,
            "transform": "arcsine", "estimator": "robust_ml"}
    return MethodOptions(**{**base, **kw})


def test_one_sided_flags_only_the_worse_side_with_one_sided_p() -> None:
    rng = np.random.default_rng(0)
    n = np.full(400, 300.0)
    o = rng.binomial(300, 0.2, 400).astype(float)
    two = assess_units(o, n, np.ones(400, dtype=bool), statistic="proportion", options=_opts(), target=0.2)
    one = assess_units(o, n, np.ones(400, dtype=bool), statistic="proportion", options=_opts(), target=0.2,
                       worse="high")
    np.testing.assert_array_equal(one.z, two.z)  # same limits, same z
    assert set(one.status) <= {"within", "alert_high", "alarm_high"}
    np.testing.assert_array_equal(one.status[two.z > 0], two.status[two.z > 0])
    np.testing.assert_allclose(one.p_value, stats.norm.sf(one.z), rtol=1e-12)
    assert "one-sided" in one.method


def test_one_sided_false_alert_rate_is_half_the_two_sided() -> None:
    """Units exactly at the standard: about 2.5% flagged at 95% (not 5%), 0.1% at 99.8%.
    200 x 140 units: Monte Carlo SE 0.09 points at 2.5%."""
    rng = np.random.default_rng(1)
    flagged = alarms = total = 0
    for _ in range(200):
        n = np.round(np.exp(rng.uniform(np.log(20), np.log(2000), 140)))
        o = rng.binomial(n.astype(int), 0.85).astype(float)
        a = assess_units(o, n, np.ones(140, dtype=bool), statistic="proportion", options=_opts(), target=0.85,
                         worse="low")
        flagged += int((a.status != "within").sum())
        alarms += int((a.status == "alarm_low").sum())
        total += 140
    assert 0.019 < flagged / total < 0.031
    assert alarms / total < 0.0025


def _catalogue(project: Path, **changes: object):
    path = project / "indicators.yaml"
    doc = yaml.safe_load(path.read_text())
    ind = next(i for i in doc["indicators"] if i["id"] == "bowel_emergency_dx")
    ind.update(changes)
    doc["indicators"] = [ind]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_catalogue(path)


def test_validation_of_one_sided_and_period_standards(project_copy: Path) -> None:
    with pytest.raises(CatalogueError, match=r"indicators.yaml:\d+: bowel_emergency_dx: a one-sided test needs an "
                                             r"external standard"):
        _catalogue(project_copy, test="one_sided")
    with pytest.raises(CatalogueError, match=r"indicators.yaml:\d+: .*target for 2022/23 must be between 0 and 1"):
        _catalogue(project_copy, target={"2021/22": 0.2, "2022/23": 1.5})


def test_standard_by_period_and_its_pooled_average(project_copy: Path) -> None:
    standards = {"2021/22": 0.20, "2022/23": 0.18, "2023/24": 0.16}
    res = run_audit(_catalogue(project_copy, target=standards, test="one_sided")).results["bowel_emergency_dx"]
    trusts = res.table.filter(pl.col("level") == "trust")
    for period, value in standards.items():
        assert trusts.filter(pl.col("period") == period)["target"].unique().to_list() == [value]
    # pooled: each period's standard weighted by its patients
    per = res.table.filter(pl.col("level") == "national", pl.col("period").is_in(list(standards)))
    weighted = sum(r["denominator"] * standards[r["period"]] for r in per.iter_rows(named=True)) / per["denominator"].sum()
    pooled = trusts.filter(~pl.col("period").is_in(list(standards)))["target"].unique().to_list()
    assert pooled == [pytest.approx(weighted, rel=1e-12)]
    assert not trusts["status"].cast(pl.String).str.ends_with("_low").any()  # better: lower, one-sided
    assert res.table["expected_false_alerts"].drop_nulls()[0] == pytest.approx(
        trusts.filter(pl.col("period") == "2021/22", pl.col("status") != "not_assessed").height * 0.025)


def test_a_period_without_a_standard_is_named(project_copy: Path) -> None:
    with pytest.raises(AuditMetricsError, match=r"no standard for period 2023/24"):
        run_audit(_catalogue(project_copy, target={"2021/22": 0.2, "2022/23": 0.18}))
