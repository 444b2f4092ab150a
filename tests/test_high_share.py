"""Proportions with a high share (a 96% or 98% standard), overdispersed (a real-data review, 2026-12-03: NHS England's
31-day Cancer Waiting Times):

* with between-trust variance, the exact limits use the binomial on the effective size n/(1 + (n - 1)ρ), seldom
  whole. Its continuous extension leaves the last mass, 1 - F(⌊n⌋), beyond ⌊n⌋; counted as events it sat beside
  the likely counts, so a trust with every patient treated in time scored below the centre (723 of 723 against a
  98% standard: z < 0; 25 of 25 against 99% with a large τ²: z = -2.05, an alert on the worse side), by an amount
  that depended on the fraction of n. Counts are now taken as non-events for a share above a half;
* the robust ML fit could stop with "f(a) and f(b) must have different signs" (a 97% share, trusts differing a
  little): the bracket was judged on score values that were rounding noise.

Oracles: the continuous extension's own closed form at the top, F(0; n, 1 - θ) = I_θ(n, 1) = θ^n (DLMF 8.17.5 with
k = 0), so the mid-P of O = n is 1 - θ^n / 2; scipy.stats.binom for whole n; and the mid-P symmetry of the binomial,
mid-P(O; n, θ) = 1 - mid-P(n - O; n, 1 - θ).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from audit_metrics.calibration import _options
from audit_metrics.funnel import distribution, limits, unit_scores
from audit_metrics.outliers import assess_units


@pytest.mark.parametrize("theta", [0.6, 0.9, 0.96, 0.98, 0.995])
@pytest.mark.parametrize("tau2", [0.0005, 0.005, 0.0445, 0.12])
def test_every_patient_sits_at_the_top_mid_p(theta: float, tau2: float) -> None:
    n = np.arange(5.0, 3000.0, 7.0)
    d = distribution(n, statistic="proportion", target=theta, tau2=tau2)
    assert np.mean(d.size % 1 > 0) > 0.9  # effective sizes that are (nearly all) not whole
    u = d.position(n)
    np.testing.assert_allclose(u, 1 - theta ** d.size / 2, rtol=0, atol=1e-12)
    z = unit_scores(n, n, statistic="proportion", method="exact", transform="arcsine", target=theta, tau2=tau2).z
    assert np.all(z >= 0)  # above the centre: never 'below expected'
    finite = z[np.isfinite(z)]  # (+inf where θ^n underflows: the mid-P is 1 in double precision)
    assert np.all(np.diff(finite) >= -1e-12)  # a larger trust at 100% is at least as far above (effective size grows)


def test_the_reviews_cases() -> None:
    """Coventry 723/723, Barts 181/181 and E&N Herts 1116/1116 against 98% share one τ²: the z order follows the
    size; 25 of 25 against 99% with τ² = 0.12 is no longer an alert on the worse side."""
    z = unit_scores(np.array([181.0, 723.0, 1116.0]), np.array([181.0, 723.0, 1116.0]), statistic="proportion",
                    method="exact", transform="arcsine", target=0.98, tau2=0.0125).z
    assert 0 < z[0] < z[1] < z[2]
    z25 = unit_scores(np.array([25.0]), np.array([25.0]), statistic="proportion", method="exact",
                      transform="arcsine", target=0.99, tau2=0.12).z[0]
    assert z25 >= 0


@pytest.mark.parametrize("theta", [0.55, 0.8, 0.97])
def test_whole_sizes_are_unchanged_and_symmetric(theta: float) -> None:
    """For a whole n the binomial's mid-P, as scipy gives it, and the same as counting non-events."""
    n = 40
    o = np.arange(0, n + 1, dtype=float)
    d = distribution(np.full(o.size, float(n)), statistic="proportion", target=theta)
    mid_p = stats.binom.cdf(o - 1, n, theta) + 0.5 * stats.binom.pmf(o, n, theta)
    np.testing.assert_allclose(d.position(o), mid_p, rtol=0, atol=1e-12)
    other = distribution(np.full(o.size, float(n)), statistic="proportion", target=1 - theta)
    np.testing.assert_allclose(d.position(o), 1 - other.position(n - o), rtol=0, atol=1e-12)


@pytest.mark.parametrize("theta", [0.75, 0.96])
@pytest.mark.parametrize("tau2", [0.002, 0.01, 0.0445])
def test_status_agrees_with_the_drawn_limits(theta: float, tau2: float) -> None:
    """A unit is outside the limits drawn at its own size exactly when |z| passes the coverage's z (units at 100%
    included)."""
    rng = np.random.default_rng(7)
    n = np.round(np.exp(rng.uniform(np.log(10), np.log(2000), 3000)))
    o = np.minimum(rng.binomial(n.astype(int), special.expit(special.logit(theta) + rng.normal(0, 1.5, n.size))), n)
    o[:200] = n[:200]
    for coverage in (0.95, 0.998):
        lo, hi = limits(n, statistic="proportion", method="exact", transform="arcsine", target=theta,
                        coverage=coverage, tau2=tau2)
        z = unit_scores(o, n, statistic="proportion", method="exact", transform="arcsine", target=theta,
                        tau2=tau2).z
        outside = (o / n < lo) | (o / n > hi)
        assert np.array_equal(outside, np.abs(z) > stats.norm.ppf(1 - (1 - coverage) / 2)), coverage
        assert outside.sum() > 10


def test_the_lower_limit_of_a_high_standard_no_longer_zigzags() -> None:
    """The review: at a 96% standard with τ² = 0.0445 the 95% lower limit was 81.3% at 44 patients and 79.8% at 56
    (a larger trust with the same rate unflagged); 43 of 99 steps of the 99.8% limit went down. Now none does
    for n from 20 to 2,000 (measured before: 78 and 87 of 380 steps down from 20 to 400)."""
    n = np.arange(20.0, 2001.0)
    for coverage in (0.95, 0.998):
        lo, _ = limits(n, statistic="proportion", method="exact", transform="arcsine", target=0.96,
                       coverage=coverage, tau2=0.0445)
        assert np.all(np.diff(lo) >= -1e-12), coverage


def test_a_high_share_with_trusts_differing_a_little_is_fitted() -> None:
    """The 79th replicate of a 97% share, logit SD 0.1, 140 trusts raised ValueError in the robust ML fit."""
    rng = np.random.default_rng(20261203)
    for _ in range(79):
        u = rng.normal(0, 0.1, 140)
        n = np.round(np.exp(rng.uniform(np.log(20), np.log(2000), 140)))
        o = rng.binomial(n.astype(int), special.expit(special.logit(0.97) + u)).astype(float)
    a = assess_units(o, n, n >= 10, statistic="proportion", options=_options("common"), target=float(o.sum() / n.sum()))
    assert (a.status != "not_assessed").sum() == 140
    assert a.overdispersion.tau2 >= 0
