r"""Overdispersion: robust z-scores, the dispersion ratio φ, its χ² test and τ² (DerSimonian-Laird).

.. math::

    \hat\phi = \frac{1}{n}\sum_i W_{z_i}^2, \qquad
    \hat\tau^2 = \max\left(0, \frac{n\hat\phi - (n-1)}{\sum w_i - \sum w_i^2/\sum w_i}\right),
    \quad w_i = 1/s_i^2

where :math:`W_z` are the z-scores after winsorising (Spiegelhalter 2005) or truncating (NHS
Digital SHMI) a fraction ``trim`` at each end.

References
----------
Spiegelhalter DJ. Handling over-dispersion of performance indicators. QSHC 2005;14:347-51.
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88.
NHS Digital. Summary Hospital-level Mortality Indicator methodology (truncation, random effects).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import special

__all__ = ["Overdispersion", "estimate_overdispersion", "truncate", "winsorise"]


class Overdispersion(NamedTuple):
    """What was estimated, and whether it was applied (with the reason, always)."""

    method: str          # none | multiplicative | additive
    robust: str          # winsorise | truncate
    trim: float
    phi: float           # dispersion ratio (nan if not estimable)
    tau2: float          # between-unit variance on the method's scale (0 if none)
    chi2: float          # n * phi
    df: int
    p_value: float       # chi-squared test of no overdispersion
    n_units: int         # units used in the estimate (after truncation)
    applied: bool
    reason: str          # plain English: why applied or not

    @property
    def factor_phi(self) -> float:
        """φ to apply to limits (1 when multiplicative adjustment is not applied)."""
        return self.phi if self.applied and self.method == "multiplicative" else 1.0

    @property
    def applied_tau2(self) -> float:
        """τ² to apply to limits (0 when additive adjustment is not applied)."""
        return self.tau2 if self.applied and self.method == "additive" else 0.0


def winsorise(z: np.ndarray, trim: float) -> np.ndarray:
    """Clip z to its ``trim`` and ``1 - trim`` quantiles (R's default type-7 quantiles)."""
    z = np.asarray(z, dtype=float)
    finite = z[np.isfinite(z)]
    lo, hi = np.quantile(finite, [trim, 1 - trim]) if finite.size else (np.nan, np.nan)
    return np.clip(z, lo, hi)


def truncate(z: np.ndarray, trim: float) -> np.ndarray:
    """SHMI truncation: NaN for units in the lowest and highest rank groups.

    Ranks (average ties) are put in k = round(1/trim) groups as ⌊rank·k/(N+1)⌋ (SAS PROC RANK
    GROUPS=); groups 0 and k-1 are dropped.
    """
    z = np.asarray(z, dtype=float)
    k = round(1 / trim)
    ranks = pl.Series(z).rank("average").to_numpy()
    groups = np.floor(ranks * k / (z.size + 1))
    keep = (groups > 0) & (groups < k - 1)
    return np.where(keep, z, np.nan)


def estimate_overdispersion(z: np.ndarray, se: np.ndarray, *, method: str, robust: str = "winsorise",
                            trim: float = 0.1, min_units: int = 10,
                            target_estimated: bool = True) -> Overdispersion:
    """Estimate φ and τ² from unadjusted z-scores and decide whether to adjust.

    Adjustment is applied only when asked for, when at least ``min_units`` units contribute, and
    when φ > 1 (and, for the additive method, τ² > 0). Otherwise the result says why not.
    """
    z = np.asarray(z, dtype=float)
    se = np.asarray(se, dtype=float)
    n_all = int(z.size)
    if method == "none":
        return Overdispersion("none", robust, trim, np.nan, 0.0, np.nan, 0, np.nan, n_all, False,
                              "no overdispersion adjustment requested")
    if n_all < max(min_units, 2):
        return Overdispersion(method, robust, trim, np.nan, 0.0, np.nan, 0, np.nan, n_all, False,
                              f"not adjusted: only {n_all} units can be assessed (at least {min_units} needed)")
    wz = truncate(z, trim) if robust == "truncate" else winsorise(z, trim)
    used = np.isfinite(wz)
    n = int(used.sum())
    if n < 2:
        return Overdispersion(method, robust, trim, np.nan, 0.0, np.nan, 0, np.nan, n, False,
                              "not adjusted: too few units left after trimming")
    phi = float(np.mean(wz[used] ** 2))
    df = n - 1 if target_estimated else n
    chi2 = n * phi
    p_value = float(special.chdtrc(df, chi2))  # chi-squared upper tail
    tau2 = 0.0
    if np.all(np.isfinite(se[used])):
        w = 1 / se[used] ** 2
        denom = w.sum() - (w**2).sum() / w.sum()
        tau2 = max(0.0, (n * phi - (n - 1)) / denom) if denom > 0 else 0.0
    if phi <= 1:
        return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, False,
                              f"not adjusted: no overdispersion (phi = {phi:.3g} <= 1)")
    if method == "additive" and tau2 <= 0:
        return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, False,
                              "not adjusted: between-unit variance tau2 estimated as 0")
    label = "random-effects tau2 (DerSimonian-Laird)" if method == "additive" else "multiplicative phi"
    return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, True,
                          f"adjusted: {label} on {trim:.0%} {'truncated' if robust == 'truncate' else 'winsorised'}"
                          f" z-scores of {n} units")
