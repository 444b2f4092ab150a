"""#16: the case-mix warnings come from one count per (unit, categorical covariates) cell.

Oracle: the same rules read in plain Python over the patients (collections.Counter): units of 30+
patients among those flagged unusual, and each level (blank = "Missing") of which 80%+ of 20+
patients are at one unit.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from audit_metrics.catalogue import RiskAdjustmentSpec
from audit_metrics.pipeline import _with_casemix_warnings
from audit_metrics.risk import fit_risk_model


def test_warnings_match_a_plain_count() -> None:
    rng = np.random.default_rng(16)
    n = 4000
    sizes = {"U0": 25, "U1": 29, "U2": 30, "U3": 31}  # small units around the 30-patient bound
    unit = np.array([u for u, k in sizes.items() for _ in range(k)]
                    + [f"U{4 + i}" for i in rng.integers(0, 8, n - sum(sizes.values()))], dtype=object)
    stage = rng.choice(["1", "2", "3", None], n).astype(object)
    sex = rng.choice(["F", "M"], n).astype(object)
    stage[200:230], unit[200:230] = "4", "U5"  # 30 of 33 stage-4 patients at U5 (91%)
    stage[230:233] = "4"
    sex[300:330], unit[300:330] = "X", "U6"    # 30 of 30 'X' at U6, and 'X' at nowhere else
    sex[330:340], unit[330:340] = "Y", "U7"    # 10 patients: too few to judge
    cohort = pl.DataFrame({"unit": list(unit), "stage": list(stage), "sex": list(sex), "age": rng.integers(40, 90, n)})
    y = (rng.random(n) < 0.2).astype(float)
    spec = RiskAdjustmentSpec.model_validate({"covariates": ["age", "stage", "sex"], "categorical": ["stage", "sex"]})
    model, risk, _ = fit_risk_model(cohort, y, spec, "x")
    cohort = cohort.with_columns(pl.Series("__expected", risk))
    codes = sorted(set(cohort["unit"]))
    flagged = pl.DataFrame({"unit_code": codes, "casemix_robust_z": [5.0] * len(codes),
                            "casemix_relative_difference": [0.3] * len(codes)})
    warned = _with_casemix_warnings(model, cohort, flagged, "unit").warnings

    per_unit = Counter(cohort["unit"].to_list())
    big = sorted(u for u in codes if per_unit[u] >= 30)
    assert "U0" not in big and "U1" not in big and "U2" in big
    expected = {f"case-mix unlike other units at {', '.join(big[:10])} (their mean predicted risk is more than 4 robust SDs "
                "and 25% from the median unit's): their expected counts rely on extrapolating the model"}
    for name in ("stage", "sex"):
        cells = Counter(("Missing" if v is None else v, u) for v, u in zip(cohort[name].to_list(), cohort["unit"].to_list(), strict=True))
        totals = Counter()
        for (level, _), k in cells.items():
            totals[level] += k
        for (level, u), k in cells.items():
            if k / totals[level] >= 0.8 and totals[level] >= 20:
                expected.add(f"{name} = {level}: {k / totals[level]:.0%} of these patients are at {u}, so the model "
                             "cannot separate this case-mix from that unit's own results")
    assert any(w.startswith("stage = 4: 9") for w in expected), expected
    assert any(w.startswith("sex = X: 100%") for w in expected), expected
    assert {w for w in warned if w not in model.warnings} == expected
