"""Engine parity with FunnelPlotR 0.6.0 and PHEindicatormethods 2.1.0 (see README.md here).

Tolerance: 1e-6 relative for limits, z, phi and tau2 (the RUN vectors hold 15 significant digits and
were checked against the formulas to about 1e-13); flags must be identical. Where FunnelPlotR has a
known defect, the test pins down the defect and shows that our (correct) value differs as the
published formula says it should.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from audit_metrics.catalogue import MethodOptions
from audit_metrics.funnel import coverage_z, estimation_scores, limits
from audit_metrics.outliers import assess_units

DATA = Path(__file__).parent / "data"
RTOL = 1e-6
SUMMARY = json.loads((DATA / "run_summary.json").read_text())


def _options(**kw: object) -> MethodOptions:
    base = {"limits": (0.95, 0.998), "overdispersion": "additive", "robust": "winsorise", "trim": 0.1,
            "min_denominator": 0, "min_units": 2, "limit_method": "transformed", "fdr": False,
            "transform": "arcsine", "estimator": "dersimonian_laird"}
    return MethodOptions(**{**base, **kw})


def _p0_count(x: np.ndarray, target: float, tau2: float, transform: str = "log") -> np.ndarray:
    """P(O = 0) for counts: Poisson(target x), or negative binomial with gamma rates whose variance
    is tau2 on the log scale (shape 1/tau2) or the square-root scale (shape target/(4 tau2))."""
    mu = target * np.asarray(x, dtype=float)
    if tau2 == 0:
        return stats.poisson.pmf(0, mu)
    k = 1 / tau2 if transform == "log" else target / (4 * tau2)
    return stats.nbinom.pmf(0, k, k / (k + mu))


def _p0_proportion(n: np.ndarray, target: float, tau2: float) -> np.ndarray:
    """P(O = 0) for a proportion: (1 - p)^n_eff, n_eff = n/(1 + (n-1) 4 tau2) (arcsine-scale tau2)."""
    n = np.asarray(n, dtype=float)
    return (1 - target) ** (n / (1 + np.maximum(n - 1, 0) * 4 * tau2))


def _zero_floor(ref_lower: object, p0: np.ndarray, coverage: float) -> np.ndarray:
    """Our deliberate deviation from FunnelPlotR (issue 14): where no events at all is not unusual,
    P(O = 0) >= (1 - c)/2, the lower limit is 0, so that a unit with no events is never flagged low."""
    return np.where(p0 >= (1 - coverage) / 2, 0.0, np.asarray(ref_lower, dtype=float))


def _not_floored(flagged: set[int], ref: pl.DataFrame, p0: np.ndarray, limit: int) -> set[int]:
    """FunnelPlotR's outliers less those with no events where no events is not unusual (see _zero_floor)."""
    alpha = (1 - (0.998 if limit == 99 else 0.95)) / 2
    o = ref["numerator"].to_numpy()
    return {i for i in flagged if not (o[i] == 0 and p0[i] >= alpha)}


def _run(name: str) -> pl.DataFrame:
    return pl.read_csv(DATA / f"run_{name}_aggregated.csv", schema_overrides={"group": pl.String})


def _outliers(status: np.ndarray, limit: int) -> set[int]:
    flagged = {"alarm_low", "alarm_high"} if limit == 99 else {"alarm_low", "alarm_high", "alert_low", "alert_high"}
    return {i for i, s in enumerate(status) if s in flagged}


def _assess(ref: pl.DataFrame, *, statistic: str, target: float, **kw: object):
    o = ref["numerator"].to_numpy().astype(float)
    x = ref["denominator"].to_numpy().astype(float)
    return assess_units(o, x, np.ones(o.size, dtype=bool), statistic=statistic, options=_options(**kw),
                        target=target)


# ---------------------------------------------------------------- pure limit functions


def test_poisson_limits_against_FunnelPlotR() -> None:
    """test-poisson_limits.R: qchisq(a/2, 2E)/(2E), qchisq(1-a/2, 2E+2)/(2E) at E = 15, 20, 30."""
    ref = pl.read_csv(DATA / "test_poisson_limits.csv")
    e = ref["E"].to_numpy().astype(float)
    for cov, col in ((0.95, "95"), (0.998, "998")):
        lo, hi = limits(e, statistic="ratio", method="exact_ci", transform="log", target=1.0, coverage=cov)
        np.testing.assert_allclose(lo, ref[f"ll{col}_full"], rtol=1e-9)
        np.testing.assert_allclose(hi, ref[f"ul{col}_full"], rtol=1e-9)
        np.testing.assert_allclose(lo, ref[f"ll{col}_test"], rtol=1e-6)


@pytest.mark.parametrize(("fname", "tau2"), [("calculate_limits_SR_SHMI_target1_tau2_0.02.csv", 0.02),
                                             ("calculate_limits_SR_SHMI_target1_tau2_0.csv", 0.0)])
def test_shmi_limits_against_FunnelPlotR(fname: str, tau2: float) -> None:
    """calculate_limits(data_type='SR', sr_method='SHMI'): exp(±z sqrt(1/E + tau2)); unadjusted exact."""
    ref = pl.read_csv(DATA / fname)
    x = ref["number_seq"].to_numpy()
    for cov, col in ((0.95, "95"), (0.998, "998")):
        lo, hi = limits(x, statistic="ratio", method="transformed", transform="log", target=1.0,
                        coverage=cov, tau2=tau2)
        np.testing.assert_allclose(lo, _zero_floor(ref[f"odll{col}"], _p0_count(x, 1.0, tau2), cov), rtol=RTOL)
        np.testing.assert_allclose(hi, ref[f"odul{col}"], rtol=RTOL)
        lo, hi = limits(x, statistic="ratio", method="exact_ci", transform="log", target=1.0, coverage=cov)
        np.testing.assert_allclose(lo, _zero_floor(ref[f"ll{col}"], _p0_count(x, 1.0, 0.0), cov), rtol=RTOL)
        np.testing.assert_allclose(hi, ref[f"ul{col}"], rtol=RTOL)


def test_proportion_limits_against_FunnelPlotR() -> None:
    """calculate_limits(data_type='PR'): sin²(asin sqrt(t) ± z sqrt(1/(4n) + tau2)).

    Defect: where the angle leaves [0, pi/2] FunnelPlotR's pure function wraps round (sin² is
    periodic); we clip to 0 or 1, which is where the limit of a proportion must stop.
    FunnelPlotR uses z rounded to 6 dp (1.959964, 3.090232: pinned below); near a limit of 0, sin²
    multiplies that rounding ~1e4-fold, so limits are compared on the arcsine scale, where the
    problem is well conditioned.
    """
    pinned = pl.read_csv(DATA / "calculate_limits_PR_SHMI_target0.2_tau2_0.01.csv").row(2, named=True)
    s10 = np.sqrt(1 / 40 + 0.01)
    assert (np.arcsin(np.sqrt(0.2)) - np.arcsin(np.sqrt(pinned["odll95"]))) / s10 == pytest.approx(1.959964, abs=1e-9)

    def angle(v: np.ndarray) -> np.ndarray:
        return np.arcsin(np.sqrt(np.asarray(v, dtype=float)))

    for tau2, suffix in ((0.01, "0.01"), (0.0, "0")):
        ref = pl.read_csv(DATA / f"calculate_limits_PR_SHMI_target0.2_tau2_{suffix}.csv")
        x = ref["number_seq"].to_numpy()
        t = np.arcsin(np.sqrt(0.2))
        for cov, col in ((0.95, "95"), (0.998, "998")):
            z = coverage_z(cov)
            s = np.sqrt(1 / (4 * x) + tau2)
            inside_hi = t + z * s < np.pi / 2
            lo, hi = limits(x, statistic="proportion", method="transformed", transform="arcsine",
                            target=0.2, coverage=cov, tau2=tau2)
            od = "od" if tau2 else ""
            ref_lo = ref[f"{od}ll{col}"].to_numpy() if tau2 else ref[f"ll{col}"].to_numpy()
            ref_hi = ref[f"{od}ul{col}"].to_numpy() if tau2 else ref[f"ul{col}"].to_numpy()
            inside_lo = t - z * s > 0
            floored = _p0_proportion(x, 0.2, tau2) >= (1 - cov) / 2
            assert np.all(lo[floored] == 0.0)
            inside_lo &= ~floored
            # z rounding moves the angle by at most 3.1e-7 * s < 1e-6 radians
            np.testing.assert_allclose(angle(lo[inside_lo]), angle(ref_lo[inside_lo]), rtol=RTOL, atol=1e-6)
            np.testing.assert_allclose(angle(hi[inside_hi]), angle(ref_hi[inside_hi]), rtol=RTOL, atol=1e-6)
            assert np.all(hi[~inside_hi] == 1.0)
            assert np.all(lo[~inside_lo] == 0.0)
    # the wrap-around defect, pinned: at n = 1.1, tau2 = 0, the 99.8% upper limit is below the 95% one
    ref = pl.read_csv(DATA / "calculate_limits_PR_SHMI_target0.2_tau2_0.csv")
    assert ref["ul998"][0] < ref["ul95"][0]


def test_cqc_limits_against_FunnelPlotR_show_missing_back_transform() -> None:
    """FunnelPlotR defect 1: CQC limits are 1 ± z sqrt(1/(4E) + tau2) on the square-root scale.

    Spiegelhalter (2005, QSHC Table 1) back-transforms by squaring: (1 ± z sqrt(1/(4E) + tau2))².
    """
    ref = pl.read_csv(DATA / "calculate_limits_SR_CQC_target1_tau2_0.02.csv")
    x = ref["number_seq"].to_numpy()
    for cov, col in ((0.95, "95"), (0.998, "998")):
        z = coverage_z(cov)
        s = np.sqrt(1 / (4 * x) + 0.02)
        np.testing.assert_allclose(ref[f"odll{col}"], 1 - z * s, rtol=RTOL)  # the defect, pinned
        lo, hi = limits(x, statistic="ratio", method="transformed", transform="sqrt", target=1.0,
                        coverage=cov, tau2=0.02)
        np.testing.assert_allclose(hi, ref[f"odul{col}"].to_numpy() ** 2, rtol=RTOL)
        np.testing.assert_allclose(lo, _zero_floor(np.maximum(ref[f"odll{col}"].to_numpy(), 0) ** 2,
                                                   _p0_count(x, 1.0, 0.02, "sqrt"), cov), rtol=RTOL)
        assert np.all(hi > ref[f"odul{col}"].to_numpy())  # ours are wider above, as they must be


def test_ratio_of_counts_limits_against_FunnelPlotR_show_standard_error_defect() -> None:
    """FunnelPlotR defect 2: RC limits use s = 1/(2 sqrt(n)); its z-scores use the log-ratio SE.

    Ours use the log-ratio SE at the target, sqrt(t n/(t n + ½)² + n/(n + ½)²), consistent with z.
    """
    ref = pl.read_csv(DATA / "calculate_limits_RC_SHMI_target1.1_tau2_0.02.csv")
    x = ref["number_seq"].to_numpy()
    t = 1.1
    for cov, col in ((0.95, "95"), (0.998, "998")):
        z = coverage_z(cov)
        np.testing.assert_allclose(ref[f"odul{col}"], np.exp(np.log(t) + z * np.sqrt(1 / (4 * x) + 0.02)),
                                   rtol=RTOL)  # the defect, pinned
        lo, hi = limits(x, statistic="ratio_of_counts", method="transformed", transform="log", target=t,
                        coverage=cov, tau2=0.02)
        s = np.sqrt(t * x / (t * x + 0.5) ** 2 + x / (x + 0.5) ** 2)
        np.testing.assert_allclose(hi, np.exp(np.log(t) + z * np.sqrt(s**2 + 0.02)), rtol=1e-12)
        np.testing.assert_allclose(lo, _zero_floor(np.exp(np.log(t) - z * np.sqrt(s**2 + 0.02)),
                                                   _p0_count(x, t, 0.02), cov), rtol=1e-12)
        assert np.all(hi > ref[f"odul{col}"].to_numpy())  # the correct SE is about twice as large


# ---------------------------------------------------------------- whole runs


@pytest.mark.parametrize(("name", "limit"), [("medpar_SR_SHMI_adj_lim99", 99), ("medpar_SR_SHMI_adj_lim95", 95),
                                             ("medpar_SR_SHMI_adj_lim99_norounding", 99),
                                             ("testdt_SR_SHMI_default", 99)])
def test_shmi_run_against_FunnelPlotR(name: str, limit: int) -> None:
    """funnel_plot(data_type='SR', sr_method='SHMI'): log scale, 10% truncation, DL tau2."""
    ref = _run(name)
    a = _assess(ref, statistic="ratio", target=1.0, transform="log", robust="truncate")
    summary = SUMMARY[name]
    assert a.overdispersion.applied
    np.testing.assert_allclose(a.overdispersion.phi, summary["phi"], rtol=RTOL)
    np.testing.assert_allclose(a.overdispersion.tau2, summary["tau2"], rtol=RTOL)
    np.testing.assert_allclose(a.z_unadjusted, ref["Uzscore"], rtol=RTOL)
    p0 = _p0_count(ref["denominator"].to_numpy(), 1.0, a.overdispersion.tau2)
    for cov, col in ((0.95, "95"), (0.998, "99")):
        np.testing.assert_allclose(a.limits[cov][0], _zero_floor(ref[f"OD{col}LCL"], p0, cov), rtol=RTOL)
        np.testing.assert_allclose(a.limits[cov][1], ref[f"OD{col}UCL"], rtol=RTOL)
    expected = _not_floored(set(np.flatnonzero(ref["outlier"].to_numpy() == 1)), ref, p0, limit)
    assert _outliers(a.status, limit) == expected


def test_unadjusted_exact_run_against_FunnelPlotR() -> None:
    """medpar, draw_adjusted=FALSE, limit=99: exact Poisson limits, 25 outliers (README figure)."""
    ref = _run("medpar_SR_unadjusted_lim99")
    a = _assess(ref, statistic="ratio", target=1.0, limit_method="exact_ci", overdispersion="none")
    np.testing.assert_allclose(a.limits[0.998][0], ref["LCL99"], rtol=RTOL)
    np.testing.assert_allclose(a.limits[0.998][1], ref["UCL99"], rtol=RTOL)
    np.testing.assert_allclose(a.limits[0.95][0], ref["LCL95"], rtol=RTOL)
    flagged = _outliers(a.status, 99)
    assert flagged == set(np.flatnonzero(ref["outlier"].to_numpy() == 1))
    assert len(flagged) == 25


@pytest.mark.parametrize(("name", "limit"), [("ae201903t1_PR_breaches_adj_lim99", 99),
                                             ("medpar_PR_died_adj_lim99", 99)])
def test_proportion_run_against_FunnelPlotR(name: str, limit: int) -> None:
    """funnel_plot(data_type='PR'): arcsine scale, 10% winsorisation, DL tau2."""
    ref = _run(name)
    target = ref["numerator"].sum() / ref["denominator"].sum()
    a = _assess(ref, statistic="proportion", target=target)
    summary = SUMMARY[name]
    np.testing.assert_allclose(a.overdispersion.phi, summary["phi"], rtol=RTOL)
    np.testing.assert_allclose(a.overdispersion.tau2, summary["tau2"], rtol=RTOL)
    np.testing.assert_allclose(a.z_unadjusted, ref["Uzscore"], rtol=RTOL)
    n = ref["denominator"].to_numpy()
    ok = n > 1  # FunnelPlotR defect 3: at n = 1 its arcsine limits wrap instead of reaching 0/1
    p0 = _p0_proportion(n, target, a.overdispersion.tau2)
    for cov, col in ((0.95, "95"), (0.998, "99")):
        ref_lo = _zero_floor(ref[f"OD{col}LCL"], p0, cov)
        np.testing.assert_allclose(a.limits[cov][0][ok], ref_lo[ok], rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(a.limits[cov][1][ok], ref[f"OD{col}UCL"].to_numpy()[ok], rtol=RTOL)
    expected = _not_floored(set(np.flatnonzero(ref["outlier"].to_numpy() == 1)), ref, p0, limit)
    assert _outliers(a.status, limit) == expected


def test_unadjusted_proportion_run_against_FunnelPlotR() -> None:
    """A&E type 1, March 2019, no overdispersion, limit 95: 129 of 134 trusts 'outliers'."""
    ref = _run("ae201903t1_PR_breaches_unadjusted_lim95")
    target = ref["numerator"].sum() / ref["denominator"].sum()
    a = _assess(ref, statistic="proportion", target=target, overdispersion="none")
    np.testing.assert_allclose(a.limits[0.95][0], ref["LCL95"], rtol=RTOL)
    np.testing.assert_allclose(a.limits[0.95][1], ref["UCL95"], rtol=RTOL)
    assert _outliers(a.status, 95) == set(np.flatnonzero(ref["outlier"].to_numpy() == 1))
    assert len(_outliers(a.status, 95)) == 129


def test_cqc_run_against_FunnelPlotR() -> None:
    """sr_method='CQC': phi, tau2 and z reproduced; limits differ (squared back), so do some flags."""
    ref = _run("medpar_SR_CQC_adj_lim99")
    a = _assess(ref, statistic="ratio", target=1.0, transform="sqrt")
    summary = SUMMARY["medpar_SR_CQC_adj_lim99"]
    np.testing.assert_allclose(a.overdispersion.phi, summary["phi"], rtol=RTOL)
    np.testing.assert_allclose(a.overdispersion.tau2, summary["tau2"], rtol=RTOL)
    np.testing.assert_allclose(a.z_unadjusted, ref["Uzscore"], rtol=RTOL)
    np.testing.assert_allclose(a.limits[0.998][1], ref["OD99UCL"].to_numpy() ** 2, rtol=RTOL)
    ours = _outliers(a.status, 99)
    theirs = set(np.flatnonzero(ref["outlier"].to_numpy() == 1))
    # wider (correct) upper limits can only remove high flags; the low side is squared too
    rr = ref["rr"].to_numpy()
    lcl_ours, ucl_ours = a.limits[0.998]
    lcl_theirs, ucl_theirs = ref["OD99LCL"].to_numpy(), ref["OD99UCL"].to_numpy()
    assert ours <= theirs  # squaring widens both limits, so it can only remove flags
    for i in theirs - ours:  # each disagreement lies between their limit and ours
        assert ucl_theirs[i] < rr[i] <= ucl_ours[i] or lcl_ours[i] <= rr[i] < lcl_theirs[i], i
    assert len(theirs - ours) > 0


def test_cqc_trimmed_run_against_FunnelPlotR() -> None:
    """testdt, sr_method='CQC', trim_by=0.05: winsorisation at 5%/95% reproduces phi and tau2."""
    ref = _run("testdt_SR_CQC_trim005_x100_lim95")
    a = _assess(ref, statistic="ratio", target=1.0, transform="sqrt", trim=0.05)
    summary = SUMMARY["testdt_SR_CQC_trim005_x100_lim95"]
    np.testing.assert_allclose(a.overdispersion.phi, summary["phi"], rtol=RTOL)
    np.testing.assert_allclose(a.overdispersion.tau2, summary["tau2"], rtol=RTOL)


@pytest.mark.parametrize("name", ["aeRC_breaches_201903_vs_201803_adj_lim95", "testdt_RC_adjusted_lim95"])
def test_ratio_of_counts_run_against_FunnelPlotR(name: str) -> None:
    """data_type='RC': z-scores, phi and tau2 reproduced (log-ratio SE with +½)."""
    ref = _run(name)
    target = ref["numerator"].sum() / ref["denominator"].sum()
    a = _assess(ref, statistic="ratio_of_counts", target=target, transform="log")
    summary = SUMMARY[name]
    np.testing.assert_allclose(a.overdispersion.phi, summary["phi"], rtol=RTOL)
    np.testing.assert_allclose(a.overdispersion.tau2, summary["tau2"], rtol=RTOL)
    z_est, _ = estimation_scores(ref["numerator"].to_numpy().astype(float),
                                 ref["denominator"].to_numpy().astype(float), statistic="ratio_of_counts",
                                 method="transformed", transform="log", target=target)
    np.testing.assert_allclose(z_est, ref["Uzscore"], rtol=RTOL)
    assert a.overdispersion.applied == summary["draw_adjusted_final"]
    if not a.overdispersion.applied:
        # FunnelPlotR defect 4: tau2 > 0 reported but unused when phi <= 1; we say why
        assert "phi" in a.overdispersion.reason and a.overdispersion.tau2 > 0


def test_outlier_rule_against_FunnelPlotR() -> None:
    """test-outliers_func.R: a point on a limit is not an outlier (bounds inclusive)."""
    ref = pl.read_csv(DATA / "test_outliers_func.csv")
    rr = ref["rr"].to_numpy()
    for lo, hi, col in (("LCL95", "UCL95", "expected_95_unadjusted"), ("OD99LCL", "OD99UCL", "expected_99_adjusted")):
        outside = (rr < ref[lo].to_numpy()) | (rr > ref[hi].to_numpy())
        assert list(outside.astype(int)) == ref[col].to_list()


# ---------------------------------------------------------------- PHEindicatormethods

PHE_LABEL = {"alarm_high": "High (0.001)", "alert_high": "High (0.025)", "within": "Not significant",
             "alert_low": "Low (0.025)", "alarm_low": "Low (0.001)"}


def test_proportion_funnel_limits_against_PHEindicatormethods() -> None:
    """calculate_funnel_limits(statistic='proportion', multiplier=100): p ± z sqrt(p(1-p)/n), clipped."""
    inputs = pl.read_csv(DATA / "testdata_funnel_prop_inputs.csv")
    ref = pl.read_csv(DATA / "testdata_funnel_prop_outputs.csv")
    p = inputs["numerator"].sum() / inputs["denominator"].sum()
    np.testing.assert_allclose(100 * p, ref["Baseline"], rtol=1e-6)
    x = ref["Population"].to_numpy().astype(float)
    for cov, col in ((0.95, "2s0025"), (0.998, "3s0001")):
        lo, hi = limits(x, statistic="proportion", method="normal", transform="arcsine", target=p, coverage=cov)
        np.testing.assert_allclose(100 * lo, ref[f"Lower{col}limit"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(100 * hi, ref[f"Upper{col}limit"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("inputs", "num", "den"), [("testdata_funnel_prop_inputs.csv", "numerator", "denominator"),
                                                    ("run_ae201903t1_proportion_significance_and_wilson.csv", "breaches", "attendances")])
def test_proportion_significance_against_PHEindicatormethods(inputs: str, num: str, den: str) -> None:
    """assign_funnel_significance(statistic='proportion'): every label reproduced."""
    ref = pl.read_csv(DATA / inputs)
    o, n = ref[num].to_numpy().astype(float), ref[den].to_numpy().astype(float)
    a = assess_units(o, n, np.ones(o.size, dtype=bool), statistic="proportion",
                     options=_options(limit_method="normal", overdispersion="none"), target=o.sum() / n.sum())
    assert [PHE_LABEL[s] for s in a.status] == ref["significance"].to_list()


PHE_LABELS = {"Low (0.001)": "alarm_low", "Low (0.025)": "alert_low", "Not significant": "within",
              "High (0.025)": "alert_high", "High (0.001)": "alarm_high"}


def test_ratio_significance_against_PHEindicatormethods_exact_is_the_closer_mapping() -> None:
    """assign_funnel_significance(statistic="ratio") indexes limits by O (exact chi-squared / Byar's);
    we index by E. With `exact` (mid-P) limits 6 of 354 labels differ, each by one step (alert vs
    within, or alarm vs alert); with `exact_ci` 16 differ. The README maps PHE ratio funnels to `exact`."""
    order = ["alarm_low", "alert_low", "within", "alert_high", "alarm_high"]
    differ = {}
    for fname in ("phe_testdata_funnel_ratio_inputs.csv", "phe_run_medpar_ratio_significance.csv"):
        ref = pl.read_csv(DATA / fname)
        o, e = ref["obs"].to_numpy().astype(float), ref["expected"].to_numpy().astype(float)
        expected = np.array([PHE_LABELS[s] for s in ref["significance"]])
        for method in ("exact", "exact_ci"):
            a = assess_units(o, e, np.ones(o.size, dtype=bool), statistic="ratio", target=1.0,
                             options=_options(limit_method=method, overdispersion="none", transform="log"))
            steps = np.abs(np.array([order.index(s) for s in a.status]) - np.array([order.index(s) for s in expected]))
            if method == "exact":
                assert steps.max() <= 1
            differ[method] = differ.get(method, 0) + int((steps > 0).sum())
    assert differ == {"exact": 6, "exact_ci": 16}
