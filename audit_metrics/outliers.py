"""Assess units against their funnel: overdispersion, adjusted z, p-values, limits and status."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from audit_metrics.catalogue import MethodOptions
from audit_metrics.funnel import (
    ZERO_FLOOR_METHODS,
    coverage_z,
    distribution,
    estimation_scores,
    limits_by_coverage,
    unit_scores,
)
from audit_metrics.overdispersion import Overdispersion, estimate_overdispersion, estimate_robust_ml

__all__ = [
    "STATUSES",
    "UNSCORED_REASON",
    "Assessment",
    "assess_units",
    "coverage_label",
    "status_label",
]

STATUSES = ("alarm_low", "alert_low", "within", "alert_high", "alarm_high", "not_assessed")
STATUS_ENUM = pl.Enum(list(STATUSES))
# why a unit with enough data has no z (#15): its expected spread is zero, e.g. normal-approximation limits at a
# rate of 0% or 100%, where z = 0/0. Such a unit is not assessed; it is never shown as within the limits.
UNSCORED_REASON = "no chance variation to test against (the expected spread is zero at this rate)"


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
    unscored: np.ndarray    # assessable units whose z is undefined (status not_assessed; UNSCORED_REASON)


def _method_text(options: MethodOptions, statistic: str, od: Overdispersion, limit_method: str) -> str:
    names = {"transformed": f"{options.transform}-transformed normal limits",
             "normal": "normal-approximation limits",
             "exact": "exact " + ("binomial" if statistic == "proportion" else "Poisson")
                      + " limits (interpolated, mid-P)",
             "exact_ci": "exact Poisson (Garwood) limits"}
    text = names[limit_method]
    if limit_method != options.limit_method:
        text += (f" (FunnelPlotR's fallback from {names[options.limit_method]}: no overdispersion adjustment"
                 " was applied)")
    if od.method == "none" and not np.isfinite(od.phi):
        return f"{text}; no overdispersion adjustment requested"
    detail = f"phi = {od.phi:.4g}" if np.isfinite(od.phi) else "phi not estimable"
    if od.method == "additive" or od.estimator == "robust_ml":
        detail += f", tau2 = {od.tau2:.4g}"
    return f"{text}; {od.reason} ({detail})"


def _estimate(o: np.ndarray, x: np.ndarray, *, statistic: str, options: MethodOptions,
              middle: float | np.ndarray, target_estimated: bool) -> Overdispersion:
    """Route to the chosen estimator (robust ML by default; DerSimonian-Laird for parity)."""
    ml = options.estimator == "robust_ml" and options.overdispersion != "multiplicative" \
        and statistic != "ratio_of_counts"
    if ml:
        if options.limit_method == "normal":
            scale = "identity"
        elif statistic == "proportion":
            scale = "arcsine" if options.limit_method == "exact" else options.transform
        else:
            scale = options.transform
        return estimate_robust_ml(o, x, statistic=statistic, mean=middle, method=options.overdispersion,
                                  scale=scale, min_units=options.min_units)
    z_est, se_est = estimation_scores(o, x, statistic=statistic, method=options.limit_method,
                                      transform=options.transform, target=middle)
    method = options.overdispersion if options.limit_method != "exact_ci" else "none"
    od = estimate_overdispersion(z_est, se_est, method=method, robust=options.robust, trim=options.trim,
                                 min_units=options.min_units, target_estimated=target_estimated)
    if options.estimator == "robust_ml" and options.overdispersion == "additive":
        od = od._replace(reason=od.reason + " (robust_ml is not available for ratios of counts:"
                         " DerSimonian-Laird used)")
    return od


def zero_event_z(x: np.ndarray, *, statistic: str, transform: str, target: float | np.ndarray,
                 tau2: float = 0.0, phi: float = 1.0) -> np.ndarray:
    """z of a unit with no events: Φ⁻¹(P(O = 0)) under the (widened) count distribution, capped at 0.

    A unit with O = 0 lies below the coverage-c limits exactly when P(O = 0) < (1 - c)/2, which is
    when :func:`audit_metrics.funnel.limits` puts the lower limit above 0, so status, limits and
    p-value agree. (On the transformed scales O = 0 has h(0) = 0 or -inf, which would flag small
    units whose chance of no events is large.)
    """
    p0 = distribution(x, statistic=statistic, target=target, transform=transform, tau2=tau2, phi=phi).cdf(0)
    return np.minimum(special.ndtri(p0), 0.0)


def assess_units(observed: np.ndarray, exposure: np.ndarray, assessable: np.ndarray, *,
                 statistic: str, options: MethodOptions, target: float | np.ndarray,
                 target_estimated: bool = True,
                 centre: float | np.ndarray | None = None, worse: str | None = None) -> Assessment:
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
    worse
        ``"high"`` or ``"low"`` for a one-sided test against a standard: only that side is flagged
        (at the same limits), and p-values are one-sided. ``None``: two-sided.
    """
    o = np.asarray(observed, dtype=float)
    x = np.asarray(exposure, dtype=float)
    ok = np.asarray(assessable, dtype=bool)
    kw = {"statistic": statistic, "method": options.limit_method, "transform": options.transform,
          "target": target}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit_metrics_units") if o.size >= _PARALLEL_UNITS \
            else nullcontext() as pool:
        return _assess(o, x, ok, kw, pool, statistic=statistic, options=options, target=target,
                       target_estimated=target_estimated, centre=centre, worse=worse)


# from this many units, the unadjusted scores and the limits are computed in a second thread beside the
# overdispersion estimate and the adjusted scores (independent passes of scipy's special functions, which run
# outside Python's lock): 20,000 units, 0.061 -> 0.045 s measured; below it a thread costs more than it saves
_PARALLEL_UNITS = 5_000


def _assess(o: np.ndarray, x: np.ndarray, ok: np.ndarray, kw: dict, pool: ThreadPoolExecutor | None, *,
            statistic: str, options: MethodOptions, target: float | np.ndarray, target_estimated: bool,
            centre: float | np.ndarray | None, worse: str | None) -> Assessment:
    """:func:`assess_units` once its inputs are arrays; ``pool`` (or None) runs independent passes beside."""
    unadjusted = pool.submit(unit_scores, o, x, **kw) if pool is not None else None
    middle = target if centre is None else centre
    middle = np.asarray(middle)[ok] if np.ndim(middle) else middle
    od = _estimate(o[ok], x[ok], statistic=statistic, options=options, middle=middle,
                   target_estimated=target_estimated or centre is not None)
    scores = unadjusted.result() if unadjusted is not None else unit_scores(o, x, **kw)
    limit_method = options.limit_method
    if (options.estimator == "dersimonian_laird" and statistic == "ratio" and limit_method == "transformed"
            and od.method != "none" and not od.applied):
        # FunnelPlotR draws exact Poisson limits for a standardised ratio it does not adjust
        limit_method = "exact_ci"
        kw = {**kw, "method": limit_method}
        scores = unit_scores(o, x, **kw)
    lims_kw = {"coverages": options.limits, "tau2": od.applied_tau2, "phi": od.factor_phi, **kw}
    limits_beside = pool.submit(limits_by_coverage, x, **lims_kw) if pool is not None else None
    if limit_method == "exact" and od.applied:
        z = unit_scores(o, x, tau2=od.applied_tau2, phi=od.factor_phi, **kw).z
    elif scores.se is not None and od.applied:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = scores.distance / np.sqrt(od.factor_phi * scores.se**2 + od.applied_tau2)
    else:
        z = scores.z
    if limit_method in ZERO_FLOOR_METHODS:
        zero = o == 0
        if zero.any():
            z = np.where(zero, zero_event_z(x, statistic=statistic, transform=options.transform, target=target,
                                            tau2=od.applied_tau2, phi=od.factor_phi), z)
    if worse is None:
        p = 2 * special.ndtr(-np.abs(z))
    else:  # one-sided: the chance of a result this far on the worse side
        p = special.ndtr(-z) if worse == "high" else special.ndtr(z)
    q = np.full_like(p, np.nan)
    finite = ok & np.isfinite(p)
    if finite.any():
        q[finite] = bh_q_values(p[finite])
    lims = limits_beside.result() if limits_beside is not None else limits_by_coverage(x, **lims_kw)
    status = np.full(o.shape, "not_assessed", dtype=object)
    status[ok] = "within"
    levels = [("alert", options.limits[0])]
    if len(options.limits) > 1:
        levels.append(("alarm", options.limits[1]))
    for name, c in levels:
        zc = coverage_z(c)
        if worse != "low":
            status[ok & (z > zc)] = f"{name}_high"
        if worse != "high":
            status[ok & (z < -zc)] = f"{name}_low"
    unscored = ok & np.isnan(z)  # NaN compares false with every limit: without this it would read "within"
    status[unscored] = "not_assessed"
    text = _method_text(options, statistic, od, limit_method)
    if worse is not None:
        text += (f"; one-sided test against the standard: only results {'above' if worse == 'high' else 'below'} "
                 "it (the worse side) are flagged")
    return Assessment(z, scores.z, p, q, lims, status, od, text, unscored)
