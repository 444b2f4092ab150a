"""Invariants of the limits and of the assessment (hypothesis), and a simulation with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_metrics.catalogue import MethodOptions
from audit_metrics.funnel import coverage_z, limits, unit_scores
from audit_metrics.outliers import assess_units

METHODS = [("proportion", "exact", "arcsine"), ("proportion", "transformed", "arcsine"),
           ("proportion", "normal", "arcsine"), ("ratio", "exact", "sqrt"), ("ratio", "transformed", "sqrt"),
           ("ratio", "transformed", "log"), ("ratio", "exact_ci", "log"), ("rate", "exact", "sqrt"),
           ("ratio_of_counts", "transformed", "log")]


def _opts(**kw: object) -> MethodOptions:
    base = {"limits": (0.95, 0.998), "overdispersion": "additive", "robust": "winsorise", "trim": 0.1,
            "min_denominator": 0, "min_units": 10, "limit_method": "exact", "fdr": False, "transform": "arcsine"}
    return MethodOptions(**{**base, **kw})


@pytest.mark.parametrize(("statistic", "method", "transform"), METHODS)
@settings(max_examples=40, deadline=None)
@given(target=st.floats(0.02, 0.9), tau2=st.sampled_from([0.0, 0.001, 0.02]))
def test_limits_nested_monotone_and_contain_target(statistic: str, method: str, transform: str,
                                                    target: float, tau2: float) -> None:
    if method == "exact_ci":
        tau2 = 0.0
    t = target if statistic == "proportion" else target * 2
    x = np.unique(np.round(np.geomspace(20, 20000, 60)))
    kw = {"statistic": statistic, "method": method, "transform": transform, "target": t, "tau2": tau2}
    lo95, hi95 = limits(x, coverage=0.95, **kw)
    lo998, hi998 = limits(x, coverage=0.998, **kw)
    eps = 1e-12
    assert np.all(lo998 <= lo95 + eps) and np.all(hi95 <= hi998 + eps)        # nested
    assert np.all(lo95 <= t + eps) and np.all(t <= hi95 + eps)                  # contain the target
    # funnel shape: limits narrow as precision grows; exact limits may wobble by less than one
    # count on the distribution's own count scale (the effective sample size when overdispersed)
    n_eff = x / (1 + (x - 1) * 4 * tau2) if statistic == "proportion" else x
    slack = 1.0 / n_eff[:-1] if method == "exact" else eps
    assert np.all(np.diff(hi998) <= slack) and np.all(np.diff(lo998) >= -slack)
    if tau2 > 0:
        base_lo, base_hi = limits(x, coverage=0.998, **{**kw, "tau2": 0.0})
        widen_slack = 1.0 / n_eff if method == "exact" else eps  # up to one (effective) count
        assert np.all(lo998 <= base_lo + widen_slack) and np.all(base_hi <= hi998 + widen_slack)  # OD widens


@pytest.mark.parametrize(("statistic", "method", "transform"), [m for m in METHODS if m[1] != "exact_ci"])
def test_status_agrees_with_limits(statistic: str, method: str, transform: str) -> None:
    """A unit is outside the c-level limits exactly when |z| > z_c (the flag can be defended both ways)."""
    rng = np.random.default_rng(1)
    x = rng.integers(20, 800, 400).astype(float)
    t = 0.3
    o = rng.binomial(x.astype(int), 0.3) if statistic == "proportion" else rng.poisson(0.3 * x * rng.gamma(20, 1 / 20, x.size))
    o = o.astype(float)
    z = unit_scores(o, x, statistic=statistic, method=method, transform=transform, target=t).z
    for c in (0.95, 0.998):
        lo, hi = limits(x, statistic=statistic, method=method, transform=transform, target=t, coverage=c)
        y = o / x
        outside = (y > hi) | (y < lo)
        disagree = outside != (np.abs(z) > coverage_z(c))
        assert disagree.sum() == 0, (c, np.flatnonzero(disagree)[:5])


def test_invariant_to_row_order_and_relabelling() -> None:
    rng = np.random.default_rng(2)
    n = rng.integers(30, 500, 120).astype(float)
    o = rng.binomial(n.astype(int), 0.2).astype(float)
    ok = np.ones(n.size, dtype=bool)
    a = assess_units(o, n, ok, statistic="proportion", options=_opts(), target=0.2)
    perm = rng.permutation(n.size)
    b = assess_units(o[perm], n[perm], ok, statistic="proportion", options=_opts(), target=0.2)
    np.testing.assert_allclose(a.z[perm], b.z, rtol=1e-12)
    assert a.overdispersion.phi == pytest.approx(b.overdispersion.phi, rel=1e-12)
    assert list(a.status[perm]) == list(b.status)


def test_doubling_counts_narrows_limits() -> None:
    x = np.array([50.0, 200.0, 1000.0])
    for stat, tr in (("proportion", "arcsine"), ("ratio", "sqrt")):
        lo1, hi1 = limits(x, statistic=stat, method="exact", transform=tr, target=0.3, coverage=0.998)
        lo2, hi2 = limits(2 * x, statistic=stat, method="exact", transform=tr, target=0.3, coverage=0.998)
        assert np.all(hi2 - lo2 < hi1 - lo1)


@pytest.mark.parametrize(("statistic", "transform"), [("proportion", "arcsine"), ("ratio", "sqrt")])
def test_in_control_units_flagged_at_nominal_rate(statistic: str, transform: str) -> None:
    """Simulation with known truth: no unit differs, so flags beyond 99.8% should be ~0.2%.

    200,000 unit-draws; the mid-P exact limits keep P(outside) close to nominal. The band allows
    for Monte Carlo error (sd of the rate ~1e-4) and discreteness at small counts.
    """
    rng = np.random.default_rng(20261122)
    x = rng.integers(20, 600, 200_000).astype(float)
    target = 0.1
    o = (rng.binomial(x.astype(int), target) if statistic == "proportion" else rng.poisson(target * x)).astype(float)
    a = assess_units(o, x, np.ones(x.size, dtype=bool), statistic=statistic,
                     options=_opts(overdispersion="none", transform=transform), target=target)
    alarm = np.isin(a.status, ["alarm_low", "alarm_high"]).mean()
    alert_or_alarm = (a.status != "within").mean()
    assert 0.0010 < alarm < 0.0035, alarm
    assert 0.040 < alert_or_alarm < 0.062, alert_or_alarm


def _overdispersed_units(seed: int, tau: float = 0.06, k: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.integers(200, 3000, k)
    t = np.arcsin(np.sqrt(0.3))
    p = np.sin(np.clip(t + rng.normal(0, tau, k), 0, np.pi / 2)) ** 2
    return rng.binomial(n, p).astype(float), n.astype(float)


def test_overdispersed_limits_with_true_tau2_have_nominal_coverage() -> None:
    """Known truth: units' true values vary with tau = 0.06 on the arcsine scale. With that tau2,
    the (beta-binomial) exact limits flag ~5% at 95% and ~0.2% at 99.8%; without it, far more."""
    o, n = _overdispersed_units(7, k=20_000)
    for method in ("exact", "transformed"):
        z = unit_scores(o, n, statistic="proportion", method=method, transform="arcsine", target=0.3,
                        tau2=0.06**2).z if method == "exact" else None
        if z is None:
            s = unit_scores(o, n, statistic="proportion", method=method, transform="arcsine", target=0.3)
            z = s.distance / np.sqrt(s.se**2 + 0.06**2)
        assert 0.044 < (np.abs(z) > coverage_z(0.95)).mean() < 0.056, method
        assert 0.001 < (np.abs(z) > coverage_z(0.998)).mean() < 0.0035, method
    naive = unit_scores(o, n, statistic="proportion", method="exact", transform="arcsine", target=0.3).z
    assert (np.abs(naive) > coverage_z(0.95)).mean() > 0.3


def test_winsorised_tau2_is_biased_low_as_published() -> None:
    """Spiegelhalter's (2005) phi is the mean of 10%-winsorised z²; under normality that is ~0.68
    of the true variance, so DerSimonian-Laird tau2 runs ~40% low and a few more units than
    nominal are flagged. FunnelPlotR behaves identically (parity tests); the README says so."""
    ratios, flagged = [], []
    for seed in range(3):
        o, n = _overdispersed_units(seed)
        a = assess_units(o, n, np.ones(n.size, dtype=bool), statistic="proportion",
                         options=_opts(estimator="dersimonian_laird"), target=0.3)
        assert a.overdispersion.applied
        ratios.append(a.overdispersion.tau2 / 0.06**2)
        flagged.append((a.status != "within").mean())
        unadjusted = assess_units(o, n, np.ones(n.size, dtype=bool), statistic="proportion",
                                  options=_opts(overdispersion="none"), target=0.3)
        assert (unadjusted.status != "within").mean() > 0.3
    assert 0.45 < np.mean(ratios) < 0.8, ratios
    assert 0.08 < np.mean(flagged) < 0.16, flagged


def test_robust_ml_tau2_recovers_the_truth() -> None:
    """The default (robust beta-binomial ML) on the same data: tau2 within 10% of the truth on
    average over 3 seeds of 3,000 units (the arcsine-normal truth is not exactly beta-binomial, so a
    few % bias is expected), and the flag rate near the nominal 5% (oracles: the simulation's known
    tau2 and the limits' coverage)."""
    ratios, flagged = [], []
    for seed in range(3):
        o, n = _overdispersed_units(seed)
        a = assess_units(o, n, np.ones(n.size, dtype=bool), statistic="proportion", options=_opts(), target=0.3)
        assert a.overdispersion.applied and a.overdispersion.estimator == "robust_ml"
        ratios.append(a.overdispersion.tau2 / 0.06**2)
        flagged.append((a.status != "within").mean())
    assert 0.9 < np.mean(ratios) < 1.1, ratios
    assert 0.035 < np.mean(flagged) < 0.065, flagged


def test_planted_shift_is_found() -> None:
    rng = np.random.default_rng(3)
    n = np.full(100, 400.0)
    o = rng.binomial(400, 0.2, 100).astype(float)
    o[0] = rng.binomial(400, 0.33)  # a genuinely worse unit
    a = assess_units(o, n, np.ones(100, dtype=bool), statistic="proportion", options=_opts(), target=0.2)
    assert a.status[0] == "alarm_high"


def test_fdr_q_values_against_statsmodels() -> None:
    """Benjamini-Hochberg q-values (Jones, Ohlssen & Spiegelhalter 2008) equal statsmodels' fdr_bh."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(8)
    n = rng.integers(50, 900, 140).astype(float)
    o = rng.binomial(n.astype(int), 0.2).astype(float)
    a = assess_units(o, n, np.ones(n.size, dtype=bool), statistic="proportion",
                     options=_opts(overdispersion="none"), target=0.2)
    np.testing.assert_allclose(a.q_value, multipletests(a.p_value, method="fdr_bh")[1], rtol=1e-12)
    from scipy import stats

    np.testing.assert_allclose(a.q_value, stats.false_discovery_control(a.p_value, method="bh"), rtol=1e-12)


@pytest.mark.parametrize(("statistic", "target", "tau2"), [("ratio", 0.09375, 0.02), ("ratio", 1.0, 0.0),
                                                           ("ratio", 0.05, 0.001), ("proportion", 0.02, 0.0),
                                                           ("proportion", 0.9, 0.0)])
def test_discrete_quantile_matches_scipy_stats(statistic: str, target: float, tau2: float) -> None:
    """The fast quantile (Cornish-Fisher start, exact steps, scipy's inverse for very skewed cases) equals
    scipy.stats' ppf of the same binomial / Poisson / negative binomial (regression: strongly overdispersed
    counts once stopped stepping early and gave a lower limit that fell back to 0 at large E)."""
    from scipy import stats

    from audit_metrics.funnel import distribution

    x = np.unique(np.round(np.geomspace(20, 20000, 60)))
    d = distribution(x, statistic=statistic, target=target, transform="sqrt", tau2=tau2)
    for q in (0.001, 0.025, 0.975, 0.999):
        if d.kind == "binomial":
            ref = stats.binom.ppf(q, x.astype(int), target)
        elif d.kind == "poisson":
            ref = stats.poisson.ppf(q, d.mean)
        else:
            ref = stats.nbinom.ppf(q, d.size, d.size / (d.size + d.mean))
        np.testing.assert_array_equal(d.ppf(q), ref)
