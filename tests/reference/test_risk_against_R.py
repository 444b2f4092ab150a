"""The design-matrix builder + GLM against R's glm() on medpar (FunnelPlotR README model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from audit_metrics.catalogue import RiskAdjustmentSpec
from audit_metrics.risk import build_design, fit_glm

DATA = Path(__file__).parent / "data"


def test_medpar_glm_against_R() -> None:
    """glm(los ~ hmo + died + age80 + factor(type), family = poisson): coefficients and predictions.

    Tolerance 1e-6 relative (R's IRLS and statsmodels' IRLS converge to the same optimum; the
    reference holds 15 significant digits).
    """
    ref = json.loads((DATA / "medpar_glm.json").read_text())
    medpar = pl.read_csv(DATA / "medpar.csv")
    spec = RiskAdjustmentSpec.model_validate({
        "covariates": ["hmo", "died", "age80", {"name": "type", "type": "categorical", "reference": 1}]})
    design = build_design(medpar, spec)
    res, converged, separation = fit_glm(design.matrix, medpar["los"].to_numpy().astype(float), "poisson")
    assert converged and not separation
    ours = dict(zip(design.names, np.asarray(res.params), strict=True))
    mapping = {"(Intercept)": "(intercept)", "hmo": "hmo", "died": "died", "age80": "age80",
               "factor(type)2": "type[2]", "factor(type)3": "type[3]"}
    for r_name, value in ref["coefficients"].items():
        np.testing.assert_allclose(ours[mapping[r_name]], value, rtol=1e-6)
    np.testing.assert_allclose(res.deviance, ref["residual_deviance"], rtol=1e-9)
    assert res.df_resid == ref["df_residual"]
    preds = pl.read_csv(DATA / "medpar_glm_predictions.csv")
    np.testing.assert_allclose(np.asarray(res.fittedvalues), preds["prds"], rtol=1e-6)
