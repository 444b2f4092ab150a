r"""Funnel-plot control limits and unit z-scores: pure numpy/scipy, no data frames.

Notation: O observed events; x the precision ("exposure"): n cases for a proportion, E expected
events for an indirectly standardised ratio, T person-time for a rate, D the comparison count for
a ratio of counts; :math:`\theta_0` the target. Coverage c is two-sided: c = 0.95 has 0.025 in
each tail (z = 1.96), c = 0.998 has 0.001 (z = 3.09).

Limit methods
-------------
``transformed``
    Variance-stabilising scale (Spiegelhalter 2005, QSHC Table 1): arcsine for proportions,
    log (SHMI) or square root (CQC) for ratios, log/sqrt for rates, log for ratios of counts.
    Limits :math:`h^{-1}(h(\theta_0) \pm z\sqrt{s^2 + \tau^2})`; with multiplicative
    overdispersion :math:`h^{-1}(h(\theta_0) \pm z\sqrt{\phi}\,s)`.
``normal``
    :math:`\theta_0 \pm z\sqrt{g(\theta_0)/x (+\tau^2)}` with g = θ(1-θ) (proportion),
    θ (ratio, rate), θ(1+θ) (ratio of counts).
``exact``
    Binomial(n, θ0) or Poisson(θ0·x) quantiles with Spiegelhalter's (2005, Stat Med appendix)
    interpolation, :math:`\alpha = (F(r_p) - p)/(F(r_p) - F(r_p-1))`, centred by half a count so
    that a unit is outside exactly when its two-sided mid-P exact test is below 1 - c:
    :math:`y_p = (r_p - \alpha + \tfrac12)/x`. Smooth in x; tends to the normal limits for large
    x. Overdispersion widens the distribution to beta-binomial / negative binomial.
``exact_ci``
    Garwood-style Poisson limits on a continuous expected count (FunnelPlotR's unadjusted SR
    limits, PHEindicatormethods' ratio funnels): :math:`\chi^2_{\alpha/2}(2\theta_0E)/(2E)`,
    :math:`\chi^2_{1-\alpha/2}(2\theta_0E+2)/(2E)`.

Every method also yields a z-score on its own scale such that a unit lies outside the coverage-c
limits exactly when :math:`|z| > z_c`, so the status, the limits and the p-value always agree.

Counts that are not whole numbers
---------------------------------
Published tables may share a patient between two providers (NHS England's Cancer Waiting Times count
half a patient at each), so O and n can be 6.5 (datasets with ``fractional_counts: allow``). Every
method is defined for them, by the continuous extension of the count distributions:

* the binomial and Poisson distribution functions are the regularised incomplete beta and gamma
  functions, :math:`F(k; n, p) = I_{1-p}(n - k, k + 1)` and :math:`F(k; \mu) = Q(k + 1, \mu)`
  (``scipy.special.betainc``, ``pdtr``; DLMF 8.17.5 and 8.4.10), which are defined and continuous for a
  real n (a denominator of 12.5: the mass beyond :math:`\lfloor n \rfloor` lies on :math:`\lceil n \rceil`)
  and equal ``scipy.stats.binom``/``poisson`` at whole numbers;
* an observed count is placed by Spiegelhalter's linear interpolation of F between whole counts, the
  same interpolation that gives the ``exact`` limits: :math:`G(O - \tfrac12)`, which is the mid-P
  :math:`F(O-1) + \tfrac12 P(O)` at a whole O and exactly :math:`F(k)` at :math:`O = k + \tfrac12`. It is
  continuous and non-decreasing in O, and a unit is outside its drawn limits exactly when its position
  is beyond the limit's level. (The incomplete beta/gamma in the count itself,
  :math:`I_{1-p}(n - O, O + 1)`, is an equally continuous extension but not the one the limits are drawn
  with: a half count could then sit inside its limits and be flagged, or the reverse.)
* for a share above a half the counts are taken as non-events, n - O of Binomial(n, 1 - θ0), so that the mass
  a non-whole n leaves beyond ⌊n⌋ lies at the unlikely end (``CountDistribution._flipped``); for a whole n this is
  the same mid-P test;
* ``exact_ci`` places O on the Gamma distribution function (continuous in O); ``normal`` and
  ``transformed`` use O/x.

Source: Spiegelhalter 2005 (Stat Med appendix) for the interpolation; the incomplete beta/gamma
representation of the binomial/Poisson distribution functions: NIST DLMF §8.17(i), §8.4; Johnson, Kemp
& Kotz, Univariate Discrete Distributions, 3rd ed. (2005), chapters 3 (binomial) and 4 (Poisson). Tested in
``tests/test_fractional_counts.py``.

References
----------
Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-202.
doi:10.1002/sim.1970.
Spiegelhalter DJ. Handling over-dispersion of performance indicators. Qual Saf Health Care
2005;14:347-51. doi:10.1136/qshc.2005.013755.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "ZERO_FLOOR_METHODS",
    "CountDistribution",
    "UnitScores",
    "coverage_z",
    "distribution",
    "estimation_scores",
    "limits",
    "limits_by_coverage",
    "mid_p_position",
    "unit_scores",
]

_HALF_PI = np.pi / 2
# Methods whose lower limit is put at 0 where a unit with no events is not unusual (P(O=0) >= alpha):
# on their continuous scales O = 0 would otherwise fall below a tiny positive limit (exact and normal
# limits need no floor: exact places O = 0 by its mid-P, normal limits are clipped at 0 already).
ZERO_FLOOR_METHODS = ("transformed", "exact_ci")


def coverage_z(coverage: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.959964, 0.998 -> 3.090232."""
    return float(special.ndtri(1 - (1 - coverage) / 2))


def _h(y: np.ndarray, statistic: str, transform: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if transform == "arcsine":
            return np.arcsin(np.sqrt(np.clip(y, 0, 1)))
        if transform == "log":
            return np.log(y)
        return np.sqrt(y)


def _h_inv(v: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log":
        with np.errstate(over="ignore"):  # an infinite upper limit at tiny precision is correct
            return np.exp(v)
    if transform == "arcsine":
        return np.sin(np.clip(v, 0, _HALF_PI)) ** 2
    return np.maximum(v, 0) ** 2


def _transformed_se(x: np.ndarray, statistic: str, transform: str,
                    target: float | np.ndarray) -> np.ndarray:
    """Standard error on the transformed scale at the target, as a function of precision x."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if statistic == "ratio_of_counts":
            num = target * x
            return np.sqrt(num / (num + 0.5) ** 2 + x / (x + 0.5) ** 2)
        if transform == "arcsine":
            return 1 / (2 * np.sqrt(x))
        if transform == "sqrt":
            return 1 / (2 * np.sqrt(x))
        return 1 / np.sqrt(target * x)  # log scale: Var(ln O) ~ 1/(theta0 x)


def _normal_variance(x: np.ndarray, statistic: str, target: float | np.ndarray) -> np.ndarray:
    g = {"proportion": target * (1 - target), "ratio": target, "rate": target,
         "ratio_of_counts": target * (1 + target)}[statistic]
    with np.errstate(divide="ignore"):
        return g / np.asarray(x, dtype=float)


def _spread(var: np.ndarray, *, tau2: float, phi: float) -> np.ndarray:
    return np.sqrt(phi * var + tau2)


def limits(x: np.ndarray, *, statistic: str, method: str, transform: str, target: float | np.ndarray,
           coverage: float, tau2: float = 0.0, phi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper control limits (on the value scale) at precision(s) ``x``.

    Parameters
    ----------
    x
        n, E, T or D for each point where limits are wanted.
    tau2, phi
        Additive (random-effects) and multiplicative overdispersion; defaults mean none.

    For the ``transformed`` and ``exact_ci`` methods the lower limit is 0 wherever
    P(O = 0) >= (1 - c)/2 under the (widened) count distribution: no count can then be low.
    """
    lo, hi = _limits(x, statistic=statistic, method=method, transform=transform, target=target,
                     coverage=coverage, tau2=tau2, phi=phi)
    if method in ZERO_FLOOR_METHODS:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        p0 = distribution(x, statistic=statistic, target=target, transform=transform, tau2=tau2, phi=phi).cdf(0)
        lo = np.where(p0 >= (1 - coverage) / 2, 0.0, lo)
    return lo, hi


def _limits(x: np.ndarray, *, statistic: str, method: str, transform: str, target: float | np.ndarray,
            coverage: float, tau2: float = 0.0, phi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = np.atleast_1d(np.asarray(x, dtype=float))
    z = coverage_z(coverage)
    if method == "transformed":
        t = _h(np.asarray(target, dtype=float), statistic, transform)
        s = _spread(_transformed_se(x, statistic, transform, target) ** 2, tau2=tau2, phi=phi)
        lo, hi = _h_inv(t - z * s, transform), _h_inv(t + z * s, transform)
        if transform == "arcsine":
            # beyond the ends of the arcsine scale there is no limit: clip at 0 and 1
            lo = np.where(t - z * s <= 0, 0.0, lo)
            hi = np.where(t + z * s >= _HALF_PI, 1.0, hi)
        return lo, hi
    if method == "normal":
        s = _spread(_normal_variance(x, statistic, target), tau2=tau2, phi=phi)
        lo, hi = target - z * s, target + z * s
        lo = np.maximum(lo, 0.0)
        if statistic == "proportion":
            hi = np.minimum(hi, 1.0)
        return lo, hi
    alpha = (1 - coverage) / 2
    if method == "exact_ci":
        mean = target * x
        with np.errstate(divide="ignore", invalid="ignore"):
            # Gamma quantiles = the chi-squared quantiles of the Garwood formula, halved
            lo = special.gammaincinv(mean, alpha) / x
            hi = special.gammaincinv(mean + 1, 1 - alpha) / x
        return np.nan_to_num(lo, nan=0.0), hi
    # exact, Spiegelhalter interpolation (mid-P centred), widened by any overdispersion
    kw = {"statistic": statistic, "target": target, "transform": transform, "tau2": tau2, "phi": phi}
    lo, hi = _exact_interpolated(x, (alpha, 1 - alpha), **kw)
    return lo, hi


def limits_by_coverage(x: np.ndarray, *, coverages: tuple[float, ...] | list[float], statistic: str,
                       method: str, transform: str, target: float | np.ndarray, tau2: float = 0.0,
                       phi: float = 1.0) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """:func:`limits` at each coverage, keyed by coverage (the same numbers).

    For the ``exact`` method every quantile is computed on one set of distinct (size, target) pairs,
    found once for all coverages.
    """
    if method != "exact":
        return {c: limits(x, coverage=c, statistic=statistic, method=method, transform=transform, target=target,
                          tau2=tau2, phi=phi) for c in coverages}
    x = np.atleast_1d(np.asarray(x, dtype=float))
    ps = [q for c in coverages for q in ((1 - c) / 2, 1 - (1 - c) / 2)]
    ys = _exact_interpolated(x, tuple(ps), statistic=statistic, target=target, transform=transform, tau2=tau2,
                             phi=phi)
    return {c: (ys[2 * i], ys[2 * i + 1]) for i, c in enumerate(coverages)}


@dataclass(frozen=True)
class CountDistribution:
    """A discrete count distribution with vectorised CDF, on a count scale of size ``scale``.

    ``scale`` converts counts to the value scale (value = count / scale): n (or the effective
    sample size) for proportions, the precision x for Poisson-type counts. ``observed_factor``
    converts an observed count O to this distribution's count scale.
    """

    kind: str                  # binomial | poisson | negative_binomial
    size: np.ndarray           # binomial n (may be non-integer) or NB shape k
    mean: np.ndarray
    scale: np.ndarray
    observed_factor: np.ndarray

    def cdf(self, k: np.ndarray) -> np.ndarray:
        k = np.floor(np.asarray(k, dtype=float))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "binomial":
                n = self.size
                p = np.clip(self.mean / np.where(n > 0, n, 1), 0, 1)
                inside = special.betainc(np.maximum(n - k, 1e-300), k + 1, 1 - p)
                out = np.where(k >= n, 1.0, inside)
            elif self.kind == "poisson":
                out = special.pdtr(np.maximum(k, 0), self.mean)
            else:
                r = self.size
                out = special.betainc(r, np.maximum(k, 0) + 1, r / (r + self.mean))
        return np.where(k < 0, 0.0, out)

    def pmf(self, k: np.ndarray) -> np.ndarray:
        """P(K = k) from log-gamma terms (cheaper than a second incomplete-beta evaluation)."""
        k = np.floor(np.asarray(k, dtype=float))
        mu = self.mean
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "binomial":
                n = self.size
                p = np.clip(mu / np.where(n > 0, n, 1), 0, 1)
                log = (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(np.maximum(n - k, 0) + 1)
                       + special.xlogy(k, p) + special.xlog1py(n - k, -p))
                out = np.where(k > n, 0.0, np.exp(log))
            elif self.kind == "poisson":
                out = np.exp(special.xlogy(k, mu) - mu - special.gammaln(k + 1))
            else:
                r = self.size
                out = np.exp(special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)
                             + r * np.log(r / (r + mu)) + special.xlogy(k, mu / (r + mu)))
        return np.where(k < 0, 0.0, np.nan_to_num(out))

    def upper_support(self) -> np.ndarray:
        if self.kind == "binomial":
            return np.ceil(self.size)
        var = self.mean + (self.mean**2 / self.size if self.kind == "negative_binomial" else 0)
        return np.ceil(self.mean + 40 * np.sqrt(var) + 50)

    def _subset(self, idx: np.ndarray) -> CountDistribution:
        shape = np.broadcast(self.size, self.mean, self.scale).shape
        return CountDistribution(self.kind, *(np.broadcast_to(a, shape)[idx] for a in
                                              (self.size, self.mean, self.scale, self.observed_factor)))

    def cumulants(self) -> tuple[np.ndarray, np.ndarray]:
        """Second and third cumulants (variance and κ3) of the count distribution."""
        mu = self.mean
        if self.kind == "binomial":
            n = self.size
            prob = np.clip(mu / np.where(n > 0, n, 1), 0, 1)
            var = n * prob * (1 - prob)
            return var, var * (1 - 2 * prob)
        if self.kind == "poisson":
            return mu, mu
        k = self.size
        return mu + mu**2 / k, mu + 3 * mu**2 / k + 2 * mu**3 / k**2

    def ppf(self, p: float) -> np.ndarray:
        return self._ppf(p)[0]

    def _inverse_guess(self, p: float) -> np.ndarray:
        """scipy's continuous inverse of the same distribution function, rounded up."""
        with np.errstate(all="ignore"):
            if self.kind == "binomial":
                n = self.size
                prob = np.clip(self.mean / np.where(n > 0, n, 1), 0, 1)
                guess = special.bdtrik(p, n, prob)
            elif self.kind == "poisson":
                guess = special.pdtrik(p, self.mean)
            else:
                guess = special.nbdtrik(p, self.size, self.size / (self.size + self.mean))
        return np.where(np.isfinite(guess), np.ceil(guess), 0.0)

    def _ppf(self, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Smallest integer r with F(r) >= p.

        A Cornish-Fisher starting point (normal quantile with the skewness term, continuity-corrected), then integer steps
        against the exact CDF, taken only for the counts not yet settled (usually 0-2 steps); counts
        still unsettled after 6 steps (very skewed distributions) restart from scipy's continuous
        inverse (bdtrik / pdtrik / nbdtrik), the previous method, and are settled the same way.
        """
        shape = np.broadcast(self.size, self.mean).shape
        z = special.ndtri(p)
        with np.errstate(all="ignore"):
            var, k3 = self.cumulants()
            sd = np.sqrt(var)
            skew = np.where(sd > 0, k3 / (var * sd), 0.0)
            # continuity-corrected: F(r) ~ Phi((r + 1/2 - mean)/sd), so the first guess is usually r itself
            guess = np.broadcast_to(self.mean + sd * (z + skew * (z**2 - 1) / 6) - 0.5, shape)
        top = np.broadcast_to(self.upper_support(), shape)
        r = np.clip(np.where(np.isfinite(guess), np.ceil(guess), 0.0), 0, top).astype(float)
        r = np.atleast_1d(r).copy()
        todo = np.arange(r.size)
        top = np.atleast_1d(top)
        f_r, f_below = np.zeros(r.size), np.zeros(r.size)
        for step in range(200):  # bounded so that bad input cannot loop
            if todo.size == 0:
                break
            dist = self._subset(todo)
            if step == 6:  # very skewed (e.g. strongly overdispersed) counts: restart from scipy's inverse
                r[todo] = np.clip(dist._inverse_guess(p), 0, top[todo])
            rr = r[todo]
            at, below = dist.cdf(rr), dist.cdf(rr - 1)
            up = (at < p) & (rr < top[todo])
            down = ~up & (rr > 0) & (below >= p)
            f_r[todo], f_below[todo] = at, below  # kept for the settled counts: F(r) and F(r - 1)
            r[todo] = rr + up - down
            todo = todo[up | down]
        if shape:
            return r.reshape(shape), f_r.reshape(shape), f_below.reshape(shape)
        return r[0], f_r[0], f_below[0]

    def _flipped(self) -> np.ndarray | None:
        """Where counts are taken as non-events (``position``): a binomial on a non-whole n with a mean share above ½.

        The continuous extension of the binomial (class docstring) leaves its last mass, 1 - F(⌊n⌋), beyond ⌊n⌋.
        Counted as events, that mass sits at the top, beside the likely counts when the share is high (a 96%
        standard on an overdispersed proportion's effective size n/(1 + (n - 1)ρ), which is seldom whole): a trust
        with every patient treated in time then scored below the centre (723 of 723 against 98%, z < 0), and by
        how much depended on the fraction of n (a real-data review). Counted as non-events, n - O of Binomial(n,
        1 - θ), it lies at the unlikely end instead. For a whole n both ways give the same mid-P (it is symmetric:
        1 - mid-P of n - O), and the events are used as before.
        """
        if self.kind != "binomial":
            return None
        n = np.asarray(self.size, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            flip = (n % 1 > 0) & (np.asarray(self.mean) > n / 2)
        return flip if np.any(flip) else None

    def _non_events(self) -> CountDistribution:
        return CountDistribution(self.kind, self.size, self.size - self.mean, self.scale, self.observed_factor)

    def _by_side(self, counts: np.ndarray | None, on_events, on_non_events) -> np.ndarray:
        """``on_events(dist, counts)`` where counts are events, ``on_non_events(dist, counts)`` where they are taken
        as non-events (``_flipped``), each on its own units, put back together (``counts`` may be None)."""
        flip = self._flipped()
        if flip is None:
            return on_events(self, counts)
        shape = np.broadcast(*([] if counts is None else [counts]), self.size, self.mean).shape
        flip = np.broadcast_to(flip, shape)
        counts = None if counts is None else np.broadcast_to(counts, shape)
        out = np.empty(shape)
        for side, where in ((on_events, ~flip), (on_non_events, flip)):
            out[where] = side(self._subset(where), None if counts is None else counts[where])
        return out if shape else out[()]

    def position(self, observed: np.ndarray) -> np.ndarray:
        """Mid-P position G(c - ½) of observed counts, G the linearly interpolated CDF.

        For an integer count this is F(O - 1) + ½P(O); see ``_flipped`` for a binomial on a non-whole n.
        """
        return self._by_side(np.asarray(observed, dtype=float) * self.observed_factor,
                             lambda d, c: d._events_position(c),
                             lambda d, c: 1 - d._non_events()._events_position(d.size - c))

    def _events_position(self, c: np.ndarray) -> np.ndarray:
        c = c - 0.5
        base = np.floor(c)
        return self.cdf(base) + (c - base) * self.pmf(base + 1)

    def interpolated_quantile(self, p: float) -> np.ndarray:
        """Count at which G(count - ½) = p: r_p - α + ½ (Spiegelhalter's interpolation, mid-P); for counts taken
        as non-events (``_flipped``), n less that of the non-events at 1 - p."""
        return self._by_side(None, lambda d, _: d._events_quantile(p),
                             lambda d, _: d.size - d._non_events()._events_quantile(1 - p))

    def _events_quantile(self, p: float) -> np.ndarray:
        r, f_r, f_below = self._ppf(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(f_r > f_below, (f_r - p) / (f_r - f_below), 0.0)
        return r - alpha + 0.5


def distribution(x: np.ndarray, *, statistic: str, target: float | np.ndarray,
                 transform: str = "arcsine", tau2: float = 0.0, phi: float = 1.0) -> CountDistribution:
    """The count distribution at the target, widened for overdispersion.

    Without overdispersion: Binomial(n, θ0) or Poisson(θ0·x). With additive τ² (estimated on the
    variance-stabilising scale) the unit's true rate varies around θ0:

    * proportions (arcsine scale, Var(p) ≈ 4θ0(1-θ0)τ², intra-unit correlation ρ = 4τ²): the
      beta-binomial, represented by the binomial with the same mean and variance, i.e. on the
      effective sample size n/(1 + (n-1)ρ);
    * counts (square-root scale: Var(θ) ≈ 4θ0τ²; log scale: Var(θ) ≈ θ0²τ²): Gamma-distributed
      rates, i.e. negative-binomial counts.

    With multiplicative φ the count variance is φ times the binomial/Poisson variance (effective
    sample size n/φ; negative binomial with shape μ/(φ-1)).
    """
    x = np.asarray(x, dtype=float)
    target = np.broadcast_to(np.asarray(target, dtype=float), x.shape)
    ones = np.ones_like(x)
    if statistic == "proportion":
        n = x
        if tau2 > 0:
            rho = min(4 * tau2, 0.99)
            n_eff = n / (1 + np.maximum(n - 1, 0) * rho)
        elif phi > 1:
            n_eff = n / phi
        else:
            n_eff = n
        return CountDistribution("binomial", n_eff, n_eff * target, n_eff,
                                 np.where(n > 0, n_eff / n, 0.0))
    mu = target * x
    if tau2 > 0:
        k = (1 / tau2 if transform == "log" else target / (4 * tau2)) * ones
    elif phi > 1:
        k = mu / (phi - 1)
    else:
        return CountDistribution("poisson", ones, mu, x, ones)
    return CountDistribution("negative_binomial", k, mu, x, ones)


def mid_p_position(observed: np.ndarray, x: np.ndarray, **dist_kw: object) -> np.ndarray:
    """F(O - 1) + ½P(O): the mid-P lower-tail position of each observed count."""
    return distribution(x, **dist_kw).position(observed)  # type: ignore[arg-type]


def _exact_interpolated(x: np.ndarray, ps: tuple[float, ...], **dist_kw: object) -> list[np.ndarray]:
    """Interpolated exact limits at levels ``ps``, centred so that O is outside exactly when its mid-P
    is < 1 - p.

    With r_p the p-quantile and α = (F(r_p) - p)/(F(r_p) - F(r_p - 1)) (Spiegelhalter 2005), the
    linearly interpolated distribution function G reaches p at r_p - α. The observed count O has
    mid-P position G(O - ½) = F(O-1) + ½P(O), so the limit on the count scale is r_p - α + ½.
    """
    # units of the same size (and target) share their limits: compute each distinct one once
    xs = np.ravel(np.asarray(x, dtype=float))
    target = np.asarray(dist_kw["target"], dtype=float)
    if target.ndim == 0:
        order = np.argsort(xs, kind="stable")
        xo = xs[order]
        new = np.ones(xo.size, dtype=bool)
        new[1:] = xo[1:] != xo[:-1]
        distinct_target = target
    else:
        ts = np.ravel(np.broadcast_to(target, np.shape(x)))
        order = np.lexsort((ts, xs))
        xo, to = xs[order], ts[order]
        new = np.ones(xo.size, dtype=bool)
        new[1:] = (xo[1:] != xo[:-1]) | (to[1:] != to[:-1])
        distinct_target = to[new]
    dist = distribution(xo[new], **{**dist_kw, "target": distinct_target})  # type: ignore[arg-type]
    upper_bound = 1.0 if dist_kw["statistic"] == "proportion" else np.inf
    group = np.cumsum(new) - 1
    out = []
    for p in ps:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.clip(dist.interpolated_quantile(p) / dist.scale, 0.0, upper_bound)
        full = np.empty(xs.size)
        full[order] = y[group]
        out.append(full.reshape(np.shape(x)))
    return out


@dataclass(frozen=True)
class UnitScores:
    """Per-unit scores on the method's scale.

    ``z`` is unadjusted; ``se`` its standard error on the method's scale (``None`` for the exact
    methods, whose z comes from the distribution function and admits no overdispersion).
    """

    z: np.ndarray
    se: np.ndarray | None
    distance: np.ndarray | None  # h(y) - h(target) for transformed, y - target for normal


def unit_scores(observed: np.ndarray, x: np.ndarray, *, statistic: str, method: str, transform: str,
                target: float | np.ndarray, tau2: float = 0.0, phi: float = 1.0) -> UnitScores:
    """z-score of each unit, consistent with :func:`limits` at the same τ² and φ.

    For ``exact``, z = Φ⁻¹(F(O-1) + ½P(O)) (mid-P) under the (overdispersed) count distribution
    at the target: O lies above the level-p limit exactly when that position exceeds p. For
    ``transformed`` and ``normal`` the returned z is unadjusted; callers divide ``distance`` by
    the widened standard error. For ``exact_ci``,
    z uses the Gamma(θ0·x + 1) distribution function above the target and Gamma(θ0·x) below it.
    """
    o = np.asarray(observed, dtype=float)
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = o / x
        if method == "transformed":
            t = _h(np.asarray(target, dtype=float), statistic, transform)
            se = _transformed_se(x, statistic, transform, target)
            d = _h(y, statistic, transform) - t
            return UnitScores(d / se, se, d)
        if method == "normal":
            se = np.sqrt(_normal_variance(x, statistic, target))
            d = y - target
            return UnitScores(d / se, se, d)
        if method == "exact":
            u = mid_p_position(o, x, statistic=statistic, target=target, transform=transform,
                               tau2=tau2, phi=phi)
            return UnitScores(special.ndtri(u), None, None)
        mean = target * x
        u_hi = special.gammainc(mean + 1, o)
        u_lo = np.where(o > 0, special.gammainc(mean, o), 0.0)
        z = np.where(1 - u_hi < u_lo, special.ndtri(u_hi), special.ndtri(u_lo))
        return UnitScores(z, None, None)


def estimation_scores(observed: np.ndarray, x: np.ndarray, *, statistic: str, method: str,
                      transform: str, target: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores and their standard errors used to estimate overdispersion.

    The same as :func:`unit_scores` except for ratios of counts, where (as in Spiegelhalter 2005
    and FunnelPlotR) the observed log ratio ln((O+½)/(D+½)) and its observed standard error
    sqrt(O/(O+½)² + D/(D+½)²) keep z finite when O = 0.
    """
    if method == "exact":
        # overdispersion for exact limits is estimated on the variance-stabilising scale
        method = "transformed"
    if statistic == "ratio_of_counts" and method == "transformed":
        o = np.asarray(observed, dtype=float)
        d = np.asarray(x, dtype=float)
        y = np.log((o + 0.5) / (d + 0.5))
        se = np.sqrt(o / (o + 0.5) ** 2 + d / (d + 0.5) ** 2)
        return (y - np.log(target)) / se, se
    scores = unit_scores(observed, x, statistic=statistic, method=method, transform=transform,
                         target=target)
    if scores.se is None:
        return scores.z, np.full_like(scores.z, np.nan)
    return scores.z, scores.se
