r"""Overdispersion: the between-unit variance τ², by robust maximum likelihood (the default) or by
DerSimonian-Laird on winsorised/truncated z-scores (FunnelPlotR / SHMI parity), and its test.

Robust maximum likelihood (default, ``estimator: robust_ml``)
    Proportions: each unit's count is beta-binomial with the unit's expected proportion p_i and
    intra-unit correlation ρ (Var(true p) = ρ p(1-p)); counts, rates and O/E: negative binomial with
    mean θ0·x_i and Var(true rate) = c·θ0² (gamma-distributed rates). The one parameter is fitted by
    maximum likelihood (the score bracketed by steps of ×4, then solved by Brent's method), units outside the
    99.8% limits of the fitted distribution are set aside, and it is refitted once. The test of no
    overdispersion is the likelihood-ratio test with the boundary correction (Self & Liang 1987:
    p = ½ P(χ²₁ > LR)). τ² is then expressed on the limit method's scale by the delta method.

.. math::

    \hat\phi = \frac{1}{n}\sum_i W_{z_i}^2, \qquad
    \hat\tau^2 = \max\left(0, \frac{n\hat\phi - (n-1)}{\sum w_i - \sum w_i^2/\sum w_i}\right),
    \quad w_i = 1/s_i^2

where :math:`W_z` are the z-scores after winsorising (Spiegelhalter 2005) or truncating (NHS
Digital SHMI) a fraction ``trim`` at each end.

References
----------
Self SG, Liang K-Y. Asymptotic properties of maximum likelihood estimators and likelihood ratio tests
under nonstandard conditions. JASA 1987;82:605-10.
Spiegelhalter DJ. Handling over-dispersion of performance indicators. QSHC 2005;14:347-51.
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88.
NHS Digital. Summary Hospital-level Mortality Indicator methodology (truncation, random effects).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import optimize, special

from audit_metrics.funnel import coverage_z, unit_scores
from audit_metrics.narrative import p_text

__all__ = [
    "ESTIMATORS",
    "Overdispersion",
    "estimate_overdispersion",
    "estimate_robust_ml",
    "fit_between_unit_variance",
    "tau2_on_scale",
    "truncate",
    "winsorise",
]

ESTIMATORS = ("robust_ml", "dersimonian_laird")


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
    estimator: str = "dersimonian_laird"   # robust_ml | dersimonian_laird | multiplicative_phi
    test: str = "chi-squared test on robust z-scores"  # what p_value comes from, in words

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
    estimator = "multiplicative_phi" if method == "multiplicative" else "dersimonian_laird"
    made = {"estimator": estimator,
            "test": f"chi-squared test on {'truncated' if robust == 'truncate' else 'winsorised'} z-scores"}
    if method == "none":
        return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, False,
                              "not adjusted: no overdispersion adjustment requested", **made)
    if phi <= 1:
        return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, False,
                              f"not adjusted: no overdispersion (phi = {phi:.3g} <= 1)", **made)
    if method == "additive" and tau2 <= 0:
        return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, False,
                              "not adjusted: between-unit variance tau2 estimated as 0", **made)
    label = "random-effects tau2 (DerSimonian-Laird)" if method == "additive" else "multiplicative phi"
    return Overdispersion(method, robust, trim, phi, tau2, chi2, df, p_value, n, True,
                          f"adjusted: {label} on {trim:.0%} {'truncated' if robust == 'truncate' else 'winsorised'}"
                          f" z-scores of {n} units", **made)


# --------------------------------------------------------------------------------------------
# robust maximum likelihood

_RHO_RANGE = (1e-7, 0.5)   # intra-unit correlation of a beta-binomial
_C_RANGE = (1e-7, 25.0)    # squared coefficient of variation of gamma-distributed rates


class _Units(NamedTuple):
    """Units in canonical order with identical (O, size, mean) rows merged: ``weight`` counts them.

    ``size_index`` maps each row to its entry in the distinct sizes ``distinct_size``, and ``mean`` is a
    0-d array when every unit has the same mean, so that terms that depend only on the size or the mean
    are evaluated once per distinct value (a likelihood evaluation then costs two special-function
    calls per distinct row instead of six per unit).
    """

    o: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    weight: np.ndarray
    distinct_size: np.ndarray
    size_index: np.ndarray
    distinct_o: np.ndarray      # O and n - O, each once (``o_index``, ``rest_index``): with one mean, the score's
    o_index: np.ndarray         # ψ(O + a) and ψ(n - O + b) depend on them alone (20,000 units: 13,111 merged
    distinct_rest: np.ndarray   # rows, 630 distinct O, 3,587 distinct n - O)
    rest_index: np.ndarray


def _canonical_units(o: np.ndarray, n: np.ndarray, m: np.ndarray) -> _Units:
    """Sort by (size, mean, O), merge identical rows, and index the distinct sizes."""
    return _canonical_groups(o, n, m)[0]


def _canonical_groups(o: np.ndarray, n: np.ndarray, m: np.ndarray) -> tuple[_Units, np.ndarray]:
    """:func:`_canonical_units` and, for each input row, the index of its merged row."""
    same_mean = m.size > 0 and bool(np.all(m == m[0]))
    order = np.lexsort((o, n) if same_mean else (o, m, n))
    o, m, n = o[order], m[order], n[order]
    new = np.ones(o.size, dtype=bool)
    new[1:] = (o[1:] != o[:-1]) | (n[1:] != n[:-1])
    if not same_mean:
        new[1:] |= m[1:] != m[:-1]
    group = np.empty(o.size, dtype=np.intp)
    group[order] = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    weight = np.diff(np.append(starts, o.size)).astype(float)
    return _sized(o[starts], n[starts], np.asarray(m[0]) if same_mean else m[starts], weight), group


def _sized(o: np.ndarray, n: np.ndarray, m: np.ndarray, weight: np.ndarray) -> _Units:
    """Merged rows in canonical order, with their distinct sizes indexed."""
    new_size = np.ones(n.size, dtype=bool)
    new_size[1:] = n[1:] != n[:-1]
    distinct_o, o_index = np.unique(o, return_inverse=True)
    distinct_rest, rest_index = np.unique(n - o, return_inverse=True)
    return _Units(o, n, m, weight, n[new_size], np.cumsum(new_size) - 1, distinct_o, o_index, distinct_rest,
                  rest_index)


def _kept_units(u: _Units, group: np.ndarray, keep: np.ndarray) -> _Units:
    """The canonical units of the rows ``keep`` selects, from those of all rows (``_canonical_groups``): the same
    merged rows in the same order with their counts among the kept rows, exactly what sorting and merging the
    kept rows again would give, without the sort (the robust fit's refit after setting units aside)."""
    counts = np.bincount(group[keep], minlength=u.o.size)
    present = counts > 0
    m = u.mean if u.mean.ndim == 0 else u.mean[present]
    if m.ndim and m.size and bool(np.all(m == m[0])):
        m = np.asarray(m[0])
    return _sized(u.o[present], u.n[present], m, counts[present].astype(float))


def _loglik_beta_binomial(rho: float, u: _Units) -> float:
    """Beta-binomial log-likelihood (without the binomial coefficients) at correlation ρ, mean p."""
    scale = (1 - rho) / rho
    p = u.mean
    a, b = p * scale, (1 - p) * scale
    return float(np.sum(u.weight * (special.betaln(u.o + a, u.n - u.o + b) - special.betaln(a, b))))


def _loglik_binomial(u: _Units) -> float:
    return float(np.sum(u.weight * (special.xlogy(u.o, u.mean) + special.xlog1py(u.n - u.o, -u.mean))))


def _loglik_negative_binomial(c: float, u: _Units) -> float:
    """Negative-binomial (NB2, Var = μ + cμ²) log-likelihood without the 1/O! terms."""
    k = 1 / c
    mu = u.mean
    return float(np.sum(u.weight * (special.gammaln(u.o + k) - special.gammaln(k) + k * np.log(k / (k + mu))
                                    + special.xlogy(u.o, mu / (k + mu)))))


def _loglik_poisson(u: _Units) -> float:
    return float(np.sum(u.weight * (special.xlogy(u.o, u.mean) - u.mean)))


def _score_beta_binomial(rho: float, u: _Units) -> float:
    """dℓ/ds of the beta-binomial at s = (1-ρ)/ρ (digamma form); zero at the ML estimate."""
    scale = (1 - rho) / rho
    p = u.mean
    a, b = p * scale, (1 - p) * scale
    # ψ(n + s) - ψ(s) depends on n only: once per distinct size
    by_size = (special.digamma(u.distinct_size + scale) - special.digamma(scale))[u.size_index]
    if p.ndim == 0:  # one mean: each ψ once per distinct O and n - O (the same values, gathered)
        by_o = special.digamma(u.distinct_o + a)[u.o_index]
        by_rest = special.digamma(u.distinct_rest + b)[u.rest_index]
    else:
        by_o, by_rest = special.digamma(u.o + a), special.digamma(u.n - u.o + b)
    return float(np.sum(u.weight * (p * (by_o - special.digamma(a)) + (1 - p) * (by_rest - special.digamma(b))
                                    - by_size)))


def _score_negative_binomial(c: float, u: _Units) -> float:
    """dℓ/dk of the negative binomial at shape k = 1/c; zero at the ML estimate."""
    k = 1 / c
    mu = u.mean
    return float(np.sum(u.weight * (special.digamma(u.distinct_o + k)[u.o_index] - special.digamma(k)
                                    + np.log(k / (k + mu)) + (mu - u.o) / (k + mu))))


def fit_between_unit_variance(observed: np.ndarray, size: np.ndarray, mean: np.ndarray, *,
                              kind: str, start: float | None = None) -> tuple[float, float]:
    """Maximum-likelihood between-unit variance parameter and the likelihood-ratio statistic.

    ``kind`` is ``"proportion"`` (beta-binomial: ``size`` = n, ``mean`` = expected proportions,
    returns ρ) or ``"count"`` (negative binomial: ``mean`` = expected counts, ``size`` unused,
    returns c = Var(true rate)/rate²). Returns (estimate, LR = 2(ℓ(estimate) - ℓ(0))); the estimate
    is 0 when the likelihood is largest at no overdispersion. Units are put in a canonical order
    first, so the result does not depend on the input order.
    """
    return _fit_units(_units_of(observed, size, mean, kind=kind)[0], kind=kind, start=start)


def _units_of(observed: np.ndarray, size: np.ndarray, mean: np.ndarray, *,
              kind: str) -> tuple[_Units, np.ndarray]:
    """The units as the likelihood of ``kind`` sees them (:func:`_canonical_groups`)."""
    o = np.asarray(observed, dtype=float)
    m = np.broadcast_to(np.asarray(mean, dtype=float), o.shape)
    if kind == "proportion":
        n = np.broadcast_to(np.asarray(size, dtype=float), o.shape)
        return _canonical_groups(o, n, np.clip(m, 1e-12, 1 - 1e-12))
    return _canonical_groups(o, np.zeros_like(o), np.maximum(m, 1e-300))  # the size plays no part


def _fit_units(u: _Units, *, kind: str, start: float | None = None) -> tuple[float, float]:
    """:func:`fit_between_unit_variance` on canonical units."""
    if kind == "proportion":
        null = _loglik_binomial(u)

        def loglik(theta: float) -> float:
            return _loglik_beta_binomial(theta, u)

        def score(theta: float) -> float:
            return _score_beta_binomial(theta, u)
        lo, hi = _RHO_RANGE
    else:
        null = _loglik_poisson(u)

        def loglik(theta: float) -> float:
            return _loglik_negative_binomial(theta, u)

        def score(theta: float) -> float:
            return _score_negative_binomial(theta, u)
        lo, hi = _C_RANGE
    return _maximise(loglik, score, null, lo, hi, start)


_NEAR = 1.25  # a refit from a previous estimate brackets within this factor of it first (fewer score evaluations)


def _maximise(loglik, score, null: float, lo: float, hi: float, start: float | None) -> tuple[float, float]:
    """Maximise a one-parameter likelihood on [lo, hi] by its score (dℓ/ds, s decreasing in θ: a
    negative score means ℓ still rises with θ). Bracket by stepping up ×4 from ``lo`` (or from within
    ``_NEAR`` of a previous estimate), then solve the score equation with Brent's method. The likelihood is taken
    to be unimodal in θ, as the beta-binomial and negative-binomial ones are in practice; the tests
    compare the result with a general-purpose optimiser on scipy.stats' likelihoods."""
    with np.errstate(all="ignore"):
        def on_log(v: float) -> float:  # the score on log θ, the scale Brent's method searches
            return score(float(np.exp(v)))

        def rising(theta: float) -> bool:
            # judged by the very values Brent's method starts from: near θ = 0 the score is a difference of large
            # digamma terms whose sign is rounding noise, and exp(log θ) is not always θ, so judging score(θ)
            # itself could bracket with two ends of one sign ("f(a) and f(b) must have different signs": a 97%
            # share, trusts differing a little; a calibration run)
            return on_log(float(np.log(theta))) < 0

        left = lo if start is None or start <= lo else max(lo, start / _NEAR)
        if not rising(left):
            if left == lo:
                return 0.0, 0.0
            left = lo  # the previous estimate was too high: search from the bottom
            if not rising(left):
                return 0.0, 0.0
        right = min(hi, start * _NEAR if start else left * 4)
        while rising(right):
            if right >= hi:
                theta = hi
                break
            left, right = right, min(hi, right * 4)
        else:
            u = optimize.brentq(on_log, float(np.log(left)), float(np.log(right)), xtol=1e-13, rtol=1e-13)
            theta = float(np.exp(u))
        top = loglik(theta)
    if not top > null:
        return 0.0, 0.0
    return theta, max(0.0, 2 * (top - null))


def tau2_on_scale(theta: float, *, kind: str, scale: str, centre: float) -> float:
    """τ² on a limit method's scale from ρ (proportions) or c (counts), by the delta method.

    Var(true value) is ρθ(1-θ) or cθ²; ``scale`` is the transform h (arcsine, log, sqrt) or
    ``identity`` (normal limits): τ² = h'(θ)² Var. On the arcsine scale this is ρ/4 and on the log
    scale c, the parameters :func:`audit_metrics.funnel.distribution` widens exact limits by.
    """
    var = theta * centre * (1 - centre) if kind == "proportion" else theta * centre**2
    slope2 = {"arcsine": 1 / (4 * centre * (1 - centre)) if kind == "proportion" else np.nan,
              "log": 1 / centre**2, "sqrt": 1 / (4 * centre), "identity": 1.0}[scale]
    return float(var * slope2)


def estimate_robust_ml(observed: np.ndarray, exposure: np.ndarray, *, statistic: str, mean: np.ndarray,
                       method: str, scale: str, min_units: int = 10,
                       set_aside: float = 0.998) -> Overdispersion:
    """Robust ML: fit, set aside units outside the ``set_aside`` limits of the fitted distribution,
    refit once; test by the boundary-corrected likelihood-ratio test.

    ``mean`` is each unit's expected proportion (proportions) or rate θ0 (counts per unit of
    exposure). The result's ``tau2`` is on ``scale`` (see :func:`tau2_on_scale`).
    """
    o = np.asarray(observed, dtype=float)
    x = np.asarray(exposure, dtype=float)
    m = np.broadcast_to(np.asarray(mean, dtype=float), o.shape)
    n_all = int(o.size)
    kind = "proportion" if statistic == "proportion" else "count"
    base = ("additive" if method == "none" else method, "maximum likelihood", 0.0)
    made = {"estimator": "robust_ml", "test": "likelihood-ratio test (boundary-corrected)"}
    if n_all < max(min_units, 2):
        return Overdispersion(method, *base[1:], np.nan, 0.0, np.nan, 0, np.nan, n_all, False,
                              f"not adjusted: only {n_all} units can be assessed (at least {min_units} needed)",
                              **made)
    expected = m if kind == "proportion" else m * x
    units, group = _units_of(o, x, expected, kind=kind)  # sorted and merged once, for the fit and the refit
    theta, lr = _fit_units(units, kind=kind)
    # set aside units outside the 99.8% limits of the fitted distribution (exact, mid-P)
    dist_kw = {"statistic": "proportion", "transform": "arcsine", "tau2": theta / 4} if kind == "proportion" \
        else {"statistic": "ratio", "transform": "log", "tau2": theta}
    z = unit_scores(o, x, method="exact", target=m, **dist_kw).z
    keep = np.abs(z) <= coverage_z(set_aside)
    n_aside = int((~keep).sum())
    if n_aside:
        theta, lr = _fit_units(_kept_units(units, group, keep), kind=kind, start=theta if theta > 0 else None)
    p_value = 1.0 if lr <= 0 else float(0.5 * special.chdtrc(1, lr))
    w = x[keep] if kind == "proportion" else expected[keep]
    centre = float(np.sum(w * m[keep]) / np.sum(w)) if np.sum(w) > 0 else float(np.mean(m))
    tau2 = tau2_on_scale(theta, kind=kind, scale=scale, centre=centre) if theta > 0 else 0.0
    # the dispersion ratio reported beside tau2: Pearson chi-squared / units (1 = binomial/Poisson)
    e = expected[keep] * (x[keep] if kind == "proportion" else 1)
    var = e * (1 - m[keep]) if kind == "proportion" else e
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = float(np.mean((o[keep] - e) ** 2 / var)) if keep.any() else np.nan
    n_used = int(keep.sum())
    aside = f", {n_aside} unit{'s' if n_aside != 1 else ''} beyond the 99.8% limits set aside" if n_aside else ""
    test = f"likelihood-ratio test {p_text(p_value)}"
    if method == "none":
        reason = f"not adjusted: no overdispersion adjustment requested ({test})"
        applied = False
    elif method == "multiplicative":
        reason, applied = "not adjusted: robust_ml estimates an additive tau2; use dersimonian_laird for phi", False
    elif tau2 <= 0:
        reason, applied = f"not adjusted: between-unit variance estimated as 0 from {n_used} units{aside} ({test})", False
    else:
        reason = f"adjusted: random-effects tau2 by robust maximum likelihood on {n_used} units{aside} ({test})"
        applied = True
    return Overdispersion(base[0] if method != "none" else "none", "maximum likelihood", 0.0, phi, tau2, lr, 1,
                          p_value, n_used, applied, reason, **made)
