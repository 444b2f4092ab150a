"""Risk-adjusted monitoring of patient outcomes: Bernoulli CUSUM (Steiner et al. 2000) and VLAD.

Patients are taken in order (operation or diagnosis date). Each has a risk pₜ of the outcome from the
indicator's own case-mix model and an outcome yₜ (1 = the event, e.g. death within 90 days).

- **CUSUM.** The log-likelihood ratio of "the odds of the event are R_A times what the model
  expects" against "as expected" is added up patient by patient and reset at 0:

  .. math::
      W_t = y_t \\log\\frac{R_A}{1 - p_t + R_A p_t} + (1 - y_t)\\log\\frac{1}{1 - p_t + R_A p_t},
      \\qquad C_t = \\max(0, C_{t-1} + W_t)

  A signal is raised when Cₜ ≥ h, after which the chart restarts from 0. R_A = 2 watches for a
  doubling of the odds (deterioration); R_A = 1/2 for a halving (improvement), drawn below the axis.
- **VLAD** (variable life-adjusted display): Σ(pₜ − yₜ), the cumulative expected minus observed
  events: "statistical lives saved". It rises while outcomes are better than the model expects.
- **Choosing h.** There is no universally right h: it trades the time to detect a real change
  against false alarms. The default (``DEFAULT_H`` = 4.5 for both directions) is reported with its
  in-control average run length (ARL₀: patients between false signals when care is exactly as
  expected), simulated from the indicator's own distribution of patient risks (``simulate_arl``), so a
  reader can judge it: a trust with 300 such patients a year and ARL₀ = 6,000 patients would see a
  false signal about once in 20 years.

References
----------
Steiner SH, Cook RJ, Farewell VT, Treasure T (2000). Monitoring surgical performance using
risk-adjusted cumulative sum charts. *Biostatistics* 1(4):441-452. doi:10.1093/biostatistics/1.4.441
Lovegrove J, Valencia O, Treasure T, Sherlaw-Johnson C, Gallivan S (1997). Monitoring the results of
cardiac surgery by variable life-adjusted display. *Lancet* 350:1128-1130.
Hubig L, cusum 0.4.1 (R package), ``racusum_arloc_sim`` / ``racusum_limit_sim``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from audit_metrics.exceptions import AuditMetricsError

__all__ = [
    "DEFAULT_H",
    "DETERIORATION",
    "IMPROVEMENT",
    "ArlEstimate",
    "CusumChart",
    "build_cusum",
    "cusum_path",
    "cusum_weights",
    "simulate_arl",
    "vlad",
]

DETERIORATION = 2.0    # R_A: odds of the event doubled
IMPROVEMENT = 0.5      # R_A: odds of the event halved
DEFAULT_H = 4.5


def _check(risk: np.ndarray, outcome: np.ndarray | None = None) -> None:
    if risk.ndim != 1 or not np.all(np.isfinite(risk)) or np.any((risk <= 0) | (risk >= 1)):
        msg = "every patient needs a predicted risk strictly between 0 and 1"
        raise AuditMetricsError(msg)
    if outcome is not None and (outcome.shape != risk.shape or not np.all((outcome == 0) | (outcome == 1))):
        msg = "every patient needs an outcome of 0 or 1, one per predicted risk"
        raise AuditMetricsError(msg)


def cusum_weights(risk: np.ndarray, outcome: np.ndarray, odds_ratio: float) -> np.ndarray:
    r"""Steiner's log-likelihood-ratio score for each patient.

    .. math:: W_t = y_t\log R_A - \log(1 - p_t + R_A p_t)

    References
    ----------
    Steiner et al. (2000), *Biostatistics* 1:441, equation (2).
    """
    risk = np.asarray(risk, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    _check(risk, outcome)
    if not odds_ratio > 0 or odds_ratio == 1:
        msg = f"the odds ratio to detect must be positive and not 1 (got {odds_ratio})"
        raise AuditMetricsError(msg)
    return outcome * np.log(odds_ratio) - np.log1p((odds_ratio - 1) * risk)


def cusum_path(weights: np.ndarray, h: float, *, reset: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cₜ = max(0, Cₜ₋₁ + Wₜ) and whether each patient signals (Cₜ ≥ h); restart at 0 after a signal.

    The value at the signal is kept on the chart (as the cusum package reports it); the next patient
    starts from 0.
    """
    if not h > 0:
        msg = f"the decision limit h must be positive (got {h})"
        raise AuditMetricsError(msg)
    c = np.empty(weights.size)
    signal = np.zeros(weights.size, dtype=bool)
    level = 0.0
    for t, w in enumerate(weights.tolist()):
        level = max(0.0, level + w)
        c[t] = level
        if level >= h:
            signal[t] = True
            if reset:
                level = 0.0
    return c, signal


def vlad(risk: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Cumulative expected minus observed events (Lovegrove et al. 1997)."""
    risk = np.asarray(risk, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    _check(risk, outcome)
    return np.cumsum(risk - outcome)


@dataclass(frozen=True)
class ArlEstimate:
    """In-control average run length by simulation: mean patients to the first (false) signal."""

    odds_ratio: float
    h: float
    arl: float
    standard_error: float
    chains: int
    censored: int       # chains with no signal within max_patients (then ``arl`` is a lower bound)
    max_patients: int
    seed: int

    def describe(self, patients_per_year: float | None = None) -> str:
        what = "deterioration" if self.odds_ratio > 1 else "improvement"
        bound = "more than " if self.censored else "about "
        text = (f"h = {self.h:g} for {what} (odds ratio {self.odds_ratio:g}): a false signal {bound}every "
                f"{self.arl:,.0f} patients when outcomes are as expected (in-control ARL, simulated)")
        if patients_per_year:
            text += f", i.e. every {self.arl / patients_per_year:,.1f} years at this unit's volume"
        return text


def simulate_arl(risk_pool: np.ndarray, *, odds_ratio: float, h: float, chains: int = 1000,
                 max_patients: int = 500_000, seed: int = 20261122, block: int = 2048) -> ArlEstimate:
    r"""In-control ARL of the risk-adjusted CUSUM by simulation.

    Each chain draws patients' risks at random from ``risk_pool`` (the indicator's case-mix), their
    outcomes as Bernoulli(pₜ) (care exactly as the model expects), and runs the CUSUM from 0 to its
    first signal. Blocks of patients are processed at once by Lindley's identity for a random walk
    reflected at 0, :math:`C_t = S_t - \min(-C_0, \min_{s \le t} S_s)`.

    References
    ----------
    Steiner et al. (2000); cusum 0.4.1 ``racusum_arloc_sim``.
    """
    pool = np.asarray(risk_pool, dtype=float)
    _check(pool)
    if pool.size == 0:
        msg = "no patient risks to simulate from"
        raise AuditMetricsError(msg)
    rng = np.random.default_rng(seed)
    level = np.zeros(chains)
    run = np.full(chains, -1, dtype=np.int64)
    done = 0
    while done < max_patients and (run < 0).any():
        active = np.flatnonzero(run < 0)
        p = pool[rng.integers(0, pool.size, (active.size, block))]
        y = rng.random(p.shape) < p
        w = np.where(y, np.log(odds_ratio), 0.0) - np.log1p((odds_ratio - 1) * p)
        s = np.cumsum(w, axis=1)
        floor = np.minimum(np.minimum.accumulate(s, axis=1), -level[active, None])
        c = s - floor
        hit = c >= h
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        signalled = first >= 0
        run[active[signalled]] = done + first[signalled] + 1
        level[active[~signalled]] = c[~signalled, -1]
        done += block
    finished = run[run > 0].astype(float)
    censored = int((run < 0).sum())
    lengths = np.concatenate([finished, np.full(censored, float(done))])
    return ArlEstimate(odds_ratio, h, float(lengths.mean()), float(lengths.std(ddof=1) / np.sqrt(chains)),
                       chains, censored, done, seed)


@dataclass(frozen=True)
class CusumChart:
    """Risk-adjusted CUSUMs (both directions) and the VLAD for one unit's patients, in order.

    ``table``: ``t, x, risk, outcome, cusum_up, signal_up, cusum_down, signal_down, vlad`` (the
    improvement CUSUM is stored as a negative number, as it is drawn below the axis).
    """

    table: pl.DataFrame
    odds_ratio_up: float
    odds_ratio_down: float
    h_up: float
    h_down: float

    def signals(self) -> pl.DataFrame:
        """One row per signal: direction, patient number, date."""
        t = self.table
        up = t.filter(pl.col("signal_up")).select("t", "x", pl.lit("deterioration").alias("direction"))
        down = t.filter(pl.col("signal_down")).select("t", "x", pl.lit("improvement").alias("direction"))
        return pl.concat([up, down]).sort("t")

    def describe(self, *, when=str) -> str:
        """One sentence: the signals, or none, and the VLAD's net result."""
        t = self.table
        if t.height == 0:
            return "No patients to monitor."
        net = float(t["vlad"][-1])
        s = self.signals()
        events = f"{abs(net):,.1f} {'fewer' if net >= 0 else 'more'} events than expected overall"
        if s.height == 0:
            return (f"No CUSUM signal in {t.height:,} patients (h = {self.h_up:g} / {self.h_down:g}); "
                    f"{events}.")
        last = s.row(-1, named=True)
        n_up = int(s.filter(pl.col("direction") == "deterioration").height)
        n_down = s.height - n_up
        parts = []
        if n_up:
            parts.append(f"{n_up} deterioration signal{'s' if n_up > 1 else ''}")
        if n_down:
            parts.append(f"{n_down} improvement signal{'s' if n_down > 1 else ''}")
        return (f"{' and '.join(parts)} in {t.height:,} patients; the latest, {last['direction']}, at "
                f"patient {last['t']:,} ({when(last['x'])}); {events}.")


def build_cusum(x: list[object] | np.ndarray, risk: np.ndarray, outcome: np.ndarray, *,
                odds_ratio_up: float = DETERIORATION, odds_ratio_down: float = IMPROVEMENT,
                h_up: float = DEFAULT_H, h_down: float = DEFAULT_H) -> CusumChart:
    """Both CUSUMs and the VLAD for patients in the order given (sort by date first).

    References
    ----------
    Steiner et al. (2000); Lovegrove et al. (1997).
    """
    risk = np.asarray(risk, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    _check(risk, outcome)
    up, signal_up = cusum_path(cusum_weights(risk, outcome, odds_ratio_up), h_up)
    down, signal_down = cusum_path(cusum_weights(risk, outcome, odds_ratio_down), h_down)
    table = pl.DataFrame({"t": np.arange(1, risk.size + 1), "x": x, "risk": risk, "outcome": outcome.astype(np.int8),
                          "cusum_up": up, "signal_up": signal_up, "cusum_down": -down,
                          "signal_down": signal_down, "vlad": vlad(risk, outcome)})
    return CusumChart(table, odds_ratio_up, odds_ratio_down, h_up, h_down)
