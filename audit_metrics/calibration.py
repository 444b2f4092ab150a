"""Simulation with a known truth: how often in-control units are flagged, and the power to find real ones.

Each scenario draws ``units`` trusts that genuinely differ a little (a normal trust effect with SD
``sd`` on the logit scale for proportions, the log scale for counts) and no true outliers, assesses
them exactly as the pipeline does (:func:`audit_metrics.outliers.assess_units`), and counts the
in-control units flagged at each coverage. A method is calibrated when that share is near
1 - coverage (5% and 0.2%). Power: a planted unit of fixed size shifted by ``shift`` on the same
scale, found beyond the limits.

Outcomes (``kind``):

``common``
    proportion ≈ 10%, 20-2,000 patients per trust;
``rare``
    proportion 1-3% (varying by trust), 20-2,000 patients;
``risk_adjusted``
    a binary outcome ≈ 5% whose expected proportion varies with each trust's case-mix (2.5-10%),
    assessed against each trust's own expected proportion (the pipeline's risk-adjusted path);
``poisson_oe``
    observed/expected counts with E from 5 to 200 (aggregate O/E tables);
``high_share``
    a proportion ≈ 95%, as waiting-times standards are (treated within 31 days), 20-2,000 patients; the
    national value is estimated from the data, as for ``common``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import special

from audit_metrics.catalogue import MethodOptions
from audit_metrics.funnel import coverage_z, unit_scores
from audit_metrics.outliers import assess_units
from audit_metrics.overdispersion import tau2_on_scale

__all__ = ["ESTIMATOR_SETTINGS", "KINDS", "Scenario", "draw_units", "false_alert_rates", "grid", "power"]

KINDS = ("common", "rare", "risk_adjusted", "poisson_oe", "high_share")
_NATIONAL = ("common", "high_share")  # compared with the national value estimated from the same data

# every estimator the catalogue offers, as a user would declare it
ESTIMATOR_SETTINGS: dict[str, dict[str, object]] = {
    "robust_ml (default)": {"estimator": "robust_ml", "overdispersion": "additive"},
    "dersimonian_laird, winsorised 10% (FunnelPlotR)": {"estimator": "dersimonian_laird", "robust": "winsorise"},
    "dersimonian_laird, truncated 10% (SHMI)": {"estimator": "dersimonian_laird", "robust": "truncate"},
    "none": {"overdispersion": "none"},
}


@dataclass(frozen=True)
class Scenario:
    kind: str
    sd: float
    units: int = 140


def _options(kind: str, **kw: object) -> MethodOptions:
    base = {"limits": (0.95, 0.998), "overdispersion": "additive", "robust": "winsorise", "trim": 0.1,
            "min_denominator": 10, "min_units": 10, "limit_method": "exact", "fdr": False,
            "transform": "sqrt" if kind == "poisson_oe" else "arcsine", "estimator": "robust_ml"}
    return MethodOptions(**{**base, **kw})


def draw_units(scenario: Scenario, rng: np.random.Generator, *, effect: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Observed, exposure and each unit's expected value (proportion or O/E = 1), and the statistic."""
    k = scenario.units
    u = rng.normal(0, scenario.sd, k) + (0 if effect is None else effect)
    if scenario.kind == "poisson_oe":
        e = np.exp(rng.uniform(np.log(5), np.log(200), k))
        return rng.poisson(e * np.exp(u)).astype(float), e, np.ones(k), "ratio"
    n = np.round(np.exp(rng.uniform(np.log(20), np.log(2000), k)))
    if scenario.kind in _NATIONAL:
        p = np.full(k, 0.95 if scenario.kind == "high_share" else 0.10)
    elif scenario.kind == "rare":
        p = rng.uniform(0.01, 0.03, k)
    else:
        p = np.exp(rng.uniform(np.log(0.025), np.log(0.10), k))
    true = special.expit(special.logit(p) + u)
    return rng.binomial(n.astype(int), true).astype(float), n, p, "proportion"


def _assess(o: np.ndarray, x: np.ndarray, expected: np.ndarray, statistic: str, kind: str,
            settings: dict[str, object]):
    if kind in _NATIONAL:  # the national value is estimated from the data, as in an audit
        target: float | np.ndarray = float(o.sum() / x.sum())
    elif statistic == "ratio":
        target = 1.0
    else:  # known expected proportion per unit (rare: a stratified expected; risk_adjusted: case-mix)
        target = expected
    return assess_units(o, x, x >= 10, statistic=statistic, options=_options(kind, **settings), target=target)


def false_alert_rates(scenario: Scenario, settings: dict[str, object], *, reps: int, seed: int = 0
                      ) -> dict[str, float]:
    """Share of in-control units flagged at 95% and 99.8%, and the mean estimated τ² (transformed scale)."""
    rng = np.random.default_rng(seed)
    flagged95 = flagged998 = assessed = 0
    tau2: list[float] = []
    for _ in range(reps):
        o, x, expected, statistic = draw_units(scenario, rng)
        a = _assess(o, x, expected, statistic, scenario.kind, settings)
        ok = a.status != "not_assessed"
        assessed += int(ok.sum())
        flagged95 += int((ok & (a.status != "within")).sum())
        flagged998 += int(np.isin(a.status, ["alarm_low", "alarm_high"]).sum())
        tau2.append(a.overdispersion.applied_tau2)
    return {"flagged_95": flagged95 / assessed, "flagged_998": flagged998 / assessed,
            "mean_tau2": float(np.mean(tau2)), "units_assessed": assessed}


def power(scenario: Scenario, settings: dict[str, object], *, shift: float, size: float, reps: int,
          seed: int = 0) -> dict[str, float]:
    """Share of replicates in which one planted unit of ``size`` shifted by ``shift`` is flagged high."""
    rng = np.random.default_rng(seed)
    hit95 = hit998 = 0
    effect = np.zeros(scenario.units)
    effect[0] = shift
    for _ in range(reps):
        o, x, expected, statistic = draw_units(scenario, rng, effect=effect)
        # the planted unit has a fixed size; redraw its count at that size
        true = special.expit(special.logit(expected[0]) + shift) if statistic == "proportion" else np.exp(shift)
        x[0] = size
        o[0] = rng.binomial(int(size), true) if statistic == "proportion" else rng.poisson(size * true)
        if settings.get("known_tau2"):  # oracle: exact limits widened by the true between-unit variance
            z0 = _known_tau2_z(o, x, expected, statistic, scenario)
            hit95 += z0 > coverage_z(0.95)
            hit998 += z0 > coverage_z(0.998)
            continue
        a = _assess(o, x, expected, statistic, scenario.kind, settings)
        hit95 += a.status[0] in ("alert_high", "alarm_high")
        hit998 += a.status[0] == "alarm_high"
    return {"power_95": hit95 / reps, "power_998": hit998 / reps}


def _known_tau2_z(o: np.ndarray, x: np.ndarray, expected: np.ndarray, statistic: str, scenario: Scenario) -> float:
    """The planted unit's z under exact limits with the true τ² (delta method from the simulated SD)."""
    if statistic == "proportion":
        target = float(o.sum() / x.sum()) if scenario.kind in _NATIONAL else expected
        centre = float(np.mean(target))
        # logit SD sd: Var(p) = (sd p(1-p))^2 = rho p(1-p), so rho = sd^2 p(1-p)
        tau2 = tau2_on_scale(scenario.sd**2 * centre * (1 - centre), kind="proportion", scale="arcsine",
                             centre=centre)
        transform = "arcsine"
    else:
        target, transform = 1.0, "log"
        tau2 = tau2_on_scale(scenario.sd**2, kind="count", scale="log", centre=1.0)
    return float(unit_scores(o[:1], x[:1], statistic=statistic, method="exact", transform=transform,
                             target=np.atleast_1d(target)[:1], tau2=tau2).z[0])


def grid(kinds: Iterable[str] = KINDS, sds: Iterable[float] = (0.0, 0.1, 0.2, 0.3)) -> list[Scenario]:
    return [Scenario(k, sd) for k in kinds for sd in sds]
