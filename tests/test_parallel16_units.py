"""Many units (from outliers._PARALLEL_UNITS) are assessed with two passes in a second thread (#16): the same
result, bit for bit, as one after another, for every method, side and centre."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from audit_metrics import outliers
from audit_metrics.catalogue import MethodOptions

BASE = {"limits": (0.95, 0.998), "overdispersion": "additive", "robust": "winsorise", "trim": 0.1,
        "min_denominator": 0, "min_units": 10, "limit_method": "exact", "fdr": False, "transform": "arcsine"}
CASES = [
    ("proportion", {}, {}),
    ("proportion", {"estimator": "dersimonian_laird"}, {}),
    ("proportion", {"limit_method": "transformed"}, {"worse": "high"}),
    ("proportion", {"limit_method": "normal", "overdispersion": "multiplicative"}, {}),
    ("proportion", {"overdispersion": "none", "estimator": "dersimonian_laird"}, {"centre": 0.12}),
    ("ratio", {"transform": "log"}, {}),
    ("ratio", {"limit_method": "transformed", "transform": "log", "estimator": "dersimonian_laird"}, {}),
    ("ratio", {"limit_method": "exact_ci", "transform": "log", "overdispersion": "none",
               "estimator": "dersimonian_laird"}, {"worse": "low"}),
    ("rate", {"transform": "log"}, {}),
]


@pytest.mark.parametrize(("statistic", "options", "extra"), CASES)
def test_many_units_in_two_threads_equal_one_after_another(statistic: str, options: dict, extra: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(len(str(options)))
    k = outliers._PARALLEL_UNITS + 1_000
    x = np.round(np.exp(rng.uniform(np.log(20), np.log(3000), k)))
    rate = special.expit(special.logit(0.1) + rng.normal(0, 0.2, k))
    if statistic == "proportion":
        o = rng.binomial(x.astype(int), rate).astype(float)
        target = 0.1
    else:  # x is the expected count (ratio) or the person-time (rate)
        o = rng.poisson(x * rate / 0.1 * (0.1 if statistic == "rate" else 1)).astype(float)
        target = 1.0 if statistic == "ratio" else 0.1
    o[:7] = 0
    ok = np.ones(k, dtype=bool)
    ok[::97] = False
    opts = MethodOptions(**{**BASE, **options})
    kwargs = {"statistic": statistic, "options": opts, "target": target, **extra}
    threaded = outliers.assess_units(o, x, ok, **kwargs)
    monkeypatch.setattr(outliers, "_PARALLEL_UNITS", 10**12)
    serial = outliers.assess_units(o, x, ok, **kwargs)
    for name in ("z", "z_unadjusted", "p_value", "q_value", "status", "unscored"):
        assert np.array_equal(getattr(threaded, name), getattr(serial, name), equal_nan=name != "status"), name
    assert threaded.limits.keys() == serial.limits.keys()
    for c in serial.limits:
        for a, b in zip(threaded.limits[c], serial.limits[c], strict=True):
            assert np.array_equal(a, b, equal_nan=True)
    assert threaded.overdispersion == serial.overdispersion and threaded.method == serial.method
    assert (serial.status != "within").any()  # the data flag some units: the comparison covers them
