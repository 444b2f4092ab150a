"""Assess units against their funnel: overdispersion, adjusted z, p-values, limits and status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from audit_metrics.catalogue import MethodOptions
from audit_metrics.funnel import coverage_z, estimation_scores, limits, unit_scores
from audit_metrics.overdispersion import Overdispersion, estimate_overdispersion

__all__ = [
    "STATUSES",
    "Assessment",
    "assess_units",
    "coverage_label",
    "status_label",
]

STATUSES = ("alarm_low", "alert_low", "within", "alert_high", "alarm_high", "not_assessed")
STATUS_ENUM = pl.Enum(list(STATUSES))


def bh_q_values(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): min over j >= i of p_(j) m / j, capped at 1.

    The step-up rule of Benjamini & Hochberg (1995), as used for institutional comparisons by Jones,
    Ohlssen & Spiegelhalter (2008). Identical to scipy's ``false_discovery_control`` and statsmodels'
    ``fdr_bh`` (tested); written out so the dashboard need not import scipy.stats (~1 s at start-up).
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return q


def coverage_label(coverage: float) -> str:
    """0.95 -> '95', 0.998 -> '99.8' (used in column names)."""
    return f"{coverage * 100:.10g}"


def status_label(status: str, better: str) -> str:
    """Direction-aware plain-English label for a status."""
    if status == "within":
        return "as expected"
    if status == "not_assessed":
        return "not assessed"
    level, side = status.split("_")
    if better == "neither":
        words = "higher than expected" if side == "high" else "lower than expected"
    else:
        worse = (side == "high") == (better == "lower")
        words = "worse than expected" if worse else "better than expected"
    return f"{words} ({level})"


@dataclass(frozen=True)
class Assessment:
    """Per-unit scores (aligned with the input arrays) and the overdispersion estimate."""

    z: np.ndarray           # after any overdispersion adjustment
    z_unadjusted: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray     # Benjamini-Hochberg over assessed units
    limits: dict[float, tuple[np.ndarray, np.ndarray]]
    status: np.ndarray      # strings from STATUSES
    overdispersion: Overdispersion
    method: str             # plain-English method statement


def _method_text(options: MethodOptions, statistic: str, od: Overdispersion) -> str:
    names = {"transformed": f"{options.transform}-transformed normal limits",
             "normal": "normal-approximation limits",
             "exact": "exact " + ("binomial" if statistic == "proportion" else "Poisson")
                      + " limits (interpolated, mid-P)",
             "exact_ci": "exact Poisson (Garwood) limits"}
    text = names[options.limit_method]
    if od.method == "none":
        return f"{text}; no overdispersion adjustment requested"
    detail = f"phi = {od.phi:.4g}" if np.isfinite(od.phi) else "phi not estimable"
    if od.applied and od.method == "additive":
        detail += f", tau2 = {od.tau2:.4g}"
    return f"{text}; {od.reason} ({detail})"


def assess_units(observed: np.ndarray, exposure: np.ndarray, assessable: np.ndarray, *,
                 statistic: str, options: MethodOptions, target: float | np.ndarray,
                 target_estimated: bool = True,
                 centre: float | np.ndarray | None = None) -> Assessment:
    """Score, adjust and classify units.

    Parameters
    ----------
    observed, exposure
        O and the precision x (n, E, T or D) per unit; NaN where a unit has no data.
    assessable
        Units with enough data to be assessed (and to contribute to overdispersion).
    target
        θ0 on the value scale, or one target per unit (e.g. a unit's case-mix-expected proportion).
    target_estimated
        Whether θ0 was estimated from these data (national value): sets the χ² test's df.
    centre
        Where the units' own distribution is centred (the national value) when ``target`` is an
        external standard: overdispersion is estimated around the centre, so that a systematic
        gap to the standard is not mistaken for between-unit variation.
    """
    o = np.asarray(observed, dtype=float)
    x = np.asarray(exposure, dtype=float)
    ok = np.asarray(assessable, dtype=bool)
    kw = {"statistic": statistic, "method": options.limit_method, "transform": options.transform,
          "target": target}
    scores = unit_scores(o, x, **kw)
    middle = target if centre is None else centre
    est_kw = {**kw, "target": np.asarray(middle)[ok] if np.ndim(middle) else middle}
    z_est, se_est = estimation_scores(o[ok], x[ok], **est_kw)
    method = options.overdispersion if options.limit_method != "exact_ci" else "none"
    od = estimate_overdispersion(z_est, se_est, method=method, robust=options.robust, trim=options.trim,
                                 min_units=options.min_units,
                                 target_estimated=target_estimated or centre is not None)
    if options.limit_method == "exact" and od.applied:
        z = unit_scores(o, x, tau2=od.applied_tau2, phi=od.factor_phi, **kw).z
    elif scores.se is not None and od.applied:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = scores.distance / np.sqrt(od.factor_phi * scores.se**2 + od.applied_tau2)
    else:
        z = scores.z
    p = 2 * special.ndtr(-np.abs(z))
    q = np.full_like(p, np.nan)
    finite = ok & np.isfinite(p)
    if finite.any():
        q[finite] = bh_q_values(p[finite])
    lims = {c: limits(x, coverage=c, tau2=od.applied_tau2, phi=od.factor_phi, **kw) for c in options.limits}
    status = np.full(o.shape, "not_assessed", dtype=object)
    status[ok] = "within"
    levels = [("alert", options.limits[0])]
    if len(options.limits) > 1:
        levels.append(("alarm", options.limits[1]))
    for name, c in levels:
        zc = coverage_z(c)
        status[ok & (z > zc)] = f"{name}_high"
        status[ok & (z < -zc)] = f"{name}_low"
    return Assessment(z, scores.z, p, q, lims, status, od, _method_text(options, statistic, od))
