"""Risk-adjusted Bernoulli CUSUM and VLAD.

Oracles: the cusum R package's own test (``racusum_test.csv``: C_t to 2 dp, and the same at full
precision from Steiner's weights); the likelihood-ratio definition of the weights (Steiner et al.
2000, eq. 2); and, for the simulated average run length, the renewal theorem: a CUSUM restarted at 0
after each signal signals at a long-run rate of exactly 1/ARL per patient, so the ARL from
``simulate_arl`` (first-passage chains, vectorised) must match the signal count of ``cusum_path``
(the chart's own sequential code) on a long in-control stream, within Monte Carlo error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audit_metrics import cusum
from audit_metrics.exceptions import AuditMetricsError

DATA = Path(__file__).parent / "reference" / "data"


def test_racusum_against_cusum_package() -> None:
    """test-racusum.R: R_A = 2, h = 2.96, reset after a signal; ct = 0,0,0,0,0,0,0.51,1.02,1.53,1.53."""
    ref = pl.read_csv(DATA / "racusum_test.csv")
    w = cusum.cusum_weights(ref["patient_risk"].to_numpy(), ref["outcome"].to_numpy(), 2.0)
    ct, signal = cusum.cusum_path(w, 2.96)
    np.testing.assert_array_equal(np.round(ct, 2), ref["ct_expected_round2"].to_numpy())
    np.testing.assert_allclose(ct, ref["ct_recomputed"].to_numpy(), rtol=1e-12, atol=1e-15)
    assert not signal.any()


def test_weights_are_the_log_likelihood_ratio() -> None:
    """W = log of P(y | odds x R_A) / P(y | model) (Steiner et al. 2000, eq. 2)."""
    p = np.array([0.01, 0.05, 0.2, 0.5, 0.9, 0.3])
    y = np.array([0, 1, 1, 0, 1, 0])
    for r in (2.0, 0.5, 1.5):
        p_alt = r * p / (1 - p + r * p)
        lr = np.where(y == 1, p_alt / p, (1 - p_alt) / (1 - p))
        np.testing.assert_allclose(cusum.cusum_weights(p, y, r), np.log(lr), rtol=1e-12)


def test_signal_resets_to_zero() -> None:
    w = np.array([1.0, 1.0, 1.0, -0.5, 2.0, 0.6, -5.0, 0.3])
    c, s = cusum.cusum_path(w, 2.5)
    np.testing.assert_allclose(c, [1.0, 2.0, 3.0, 0.0, 2.0, 2.6, 0.0, 0.3])
    assert s.tolist() == [False, False, True, False, False, True, False, False]


def test_vlad_is_cumulative_expected_minus_observed() -> None:
    np.testing.assert_allclose(cusum.vlad(np.array([0.1, 0.2, 0.5]), np.array([0, 1, 0])), [0.1, -0.7, -0.2])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(AuditMetricsError, match="strictly between 0 and 1"):
        cusum.cusum_weights(np.array([0.0, 0.2]), np.array([0, 1]), 2.0)
    with pytest.raises(AuditMetricsError, match="outcome of 0 or 1"):
        cusum.cusum_weights(np.array([0.1, 0.2]), np.array([0, 2]), 2.0)
    with pytest.raises(AuditMetricsError, match="not 1"):
        cusum.cusum_weights(np.array([0.1]), np.array([0]), 1.0)
    with pytest.raises(AuditMetricsError, match="positive"):
        cusum.cusum_path(np.array([0.1]), 0.0)


@pytest.mark.parametrize(("odds_ratio", "h"), [(2.0, 2.5), (0.5, 2.0)])
def test_simulated_arl_matches_false_signal_rate(odds_ratio: float, h: float) -> None:
    """In control, the long-run false-signal rate of the restarted chart is 1/ARL (renewal theorem).

    Monte Carlo error: the ARL estimate's own standard error, and for the signal count K over M
    patients, Var(K) ≈ M·σ²/μ³ (renewal central limit theorem; σ, μ the run length's SD and mean,
    estimated from the chains). The two must agree within 4 combined standard errors.
    """
    rng = np.random.default_rng(1234)
    pool = rng.beta(2.0, 18.0, 5000)  # a case-mix with mean risk 10%
    est = cusum.simulate_arl(pool, odds_ratio=odds_ratio, h=h, chains=4000, seed=99)
    assert est.censored == 0
    m = 1_500_000
    p = pool[rng.integers(0, pool.size, m)]
    y = (rng.random(m) < p).astype(float)
    _, signals = cusum.cusum_path(cusum.cusum_weights(p, y, odds_ratio), h)
    k = int(signals.sum())
    mu = est.arl
    sigma = est.standard_error * np.sqrt(est.chains)
    rate, expected_rate = k / m, 1 / mu
    se_count = np.sqrt(m * sigma**2 / mu**3) / m
    se_arl = est.standard_error / mu**2
    z = (rate - expected_rate) / np.hypot(se_count, se_arl)
    print(f"OR {odds_ratio}, h {h}: ARL {mu:.1f} (SE {est.standard_error:.1f}); {k} signals in {m} patients; z = {z:.2f}")
    assert abs(z) < 4


def test_detects_a_real_doubling_of_the_odds_quickly() -> None:
    """Known truth: with the odds of the event truly doubled, the deterioration chart signals far
    sooner than in control (out-of-control ARL well under a tenth of the in-control ARL)."""
    rng = np.random.default_rng(5)
    pool = rng.beta(2.0, 18.0, 5000)
    in_control = cusum.simulate_arl(pool, odds_ratio=2.0, h=4.5, chains=500, seed=1)
    worse = 2 * pool / (1 - pool + 2 * pool)
    runs = []
    for _ in range(200):
        p = pool[rng.integers(0, pool.size, 5000)]
        truth = 2 * p / (1 - p + 2 * p)
        y = (rng.random(p.size) < truth).astype(float)
        _, s = cusum.cusum_path(cusum.cusum_weights(p, y, 2.0), 4.5)
        runs.append(int(np.argmax(s)) + 1 if s.any() else p.size)
    assert worse.mean() > pool.mean()
    assert np.mean(runs) < in_control.arl / 10


def test_build_cusum_table_and_sentence() -> None:
    risk = np.full(60, 0.1)
    outcome = np.zeros(60)
    outcome[10:20] = 1  # a cluster of ten events in a row
    chart = cusum.build_cusum(list(range(60)), risk, outcome, h_up=2.0, h_down=2.0)
    t = chart.table
    assert t["signal_up"].any() and (t["cusum_down"] <= 0).all()
    assert chart.signals()["direction"][0] == "deterioration"
    np.testing.assert_allclose(t["vlad"][-1], 60 * 0.1 - 10)
    assert "deterioration signal" in chart.describe() and "4.0 more events than expected" in chart.describe()
