"""SPC charts: parity with NHSRplotthedots 0.2.2 and the Laney p′/u′ formula.

Oracles (tests/reference/README.md):
- ``ptd_spc_standard_*.csv``: NHSRplotthedots' snapshot (7 significant figures) and the same limits
  recomputed at full precision from the XmR formula; limits must agree to 1e-9 relative (full) and to
  the snapshot's printed precision.
- ``ptd_calculate_point_type_tests.json``: every input/expectation pair of the R package's unit tests
  of its special-cause rules; our flags must be identical.
- Laney (2002), Quality Engineering 14:531, for p′/u′; known-truth beta-binomial simulation for σ_z.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audit_metrics import spc
from audit_metrics.exceptions import AuditMetricsError

DATA = Path(__file__).parent / "reference" / "data"
RULES = json.loads((DATA / "ptd_calculate_point_type_tests.json").read_text())


def _standard() -> tuple[pl.DataFrame, pl.DataFrame]:
    inp = pl.read_csv(DATA / "ptd_spc_standard_input.csv", try_parse_dates=True)
    exp = pl.read_csv(DATA / "ptd_spc_standard_expected.csv")
    return inp, exp


@pytest.mark.parametrize(("case", "column", "screen"), [
    ("r1_screen_outliers_TRUE", "y_case1", True),
    ("r2_y15_set_10_screen_TRUE", "y_case2_case3", True),
    ("r3_y15_set_10_screen_FALSE", "y_case2_case3", False),
])
def test_xmr_limits_against_NHSRplotthedots(case: str, column: str, screen: bool) -> None:
    """ptd_spc_standard(): mean, lpl, upl (set.seed(123); rnorm(20); case 2/3 set y[15] <- 10)."""
    inp, exp = _standard()
    ref = exp.filter(pl.col("case") == case).row(0, named=True)
    chart = spc.build_xmr(inp["x"].to_list(), inp[column].to_numpy(), screen_outliers=screen)
    t = chart.table
    for ours, theirs in (("mean", "mean"), ("lower", "lpl"), ("upper", "upl")):
        np.testing.assert_allclose(t[ours].to_numpy(), ref[f"{theirs}_recomputed"], rtol=1e-9)
        np.testing.assert_allclose(t[ours][0], ref[f"{theirs}_snapshot"], rtol=5e-7)  # 7 significant figures


def test_xmr_flags_against_NHSRplotthedots() -> None:
    """Special-cause flags on the R package's own test series.

    Case 1: the R summary snapshot (ptd_spc.md) reports n = 20, common_cause = 20, so no point is a
    special cause; the glimpse snapshot lists relative_to_mean for the first 15 points. Cases 2 and 3:
    y[15] = 10 lies above both snapshot upper limits (3.722497, 5.935457) and no other rule fires.
    """
    inp, _ = _standard()
    one = spc.build_xmr(inp["x"].to_list(), inp["y_case1"].to_numpy()).table
    assert one["special_cause_type"].to_list() == ["Common Cause"] * 20
    assert one["relative_to_mean"].to_list()[:15] == [-1, -1, 1, -1, -1, 1, 1, -1, -1, -1, 1, 1, 1, -1, -1]
    assert not one["outside_limits"].any() and not one["close_to_limits"][:6].any()
    for screen in (True, False):
        t = spc.build_xmr(inp["x"].to_list(), inp["y_case2_case3"].to_numpy(), screen_outliers=screen).table
        assert t["relative_to_mean"].to_list()[:14] == [-1, -1, 1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1, -1]
        expected = ["Common Cause"] * 20
        expected[14] = "Above UCL"
        assert t["special_cause_type"].to_list() == expected
        assert t["point_type"][14] == "special_cause_improvement"


def test_xmr_rebase_matches_NHSRplotthedots_facets() -> None:
    """ptd_spc.md summary with facet = rep(c(0, 1), each = 10): the same as rebasing at point 11
    (means 0.0746 / 0.209, lpl -2.60 / -3.28, upl 2.75 / 3.70 at the snapshot's 3 significant figures)."""
    inp, _ = _standard()
    x = inp["x"].to_list()
    t = spc.build_xmr(x, inp["y_case1"].to_numpy(), rebase=[x[10]]).table
    first, second = t.row(0, named=True), t.row(10, named=True)
    assert t["rebase_group"].to_list() == [0] * 10 + [1] * 10
    for row, (mean, lpl, upl) in ((first, (0.0746, -2.60, 2.75)), (second, (0.209, -3.28, 3.70))):
        np.testing.assert_allclose([row["mean"], row["lower"], row["upper"]], [mean, lpl, upl], rtol=5e-3)
    assert t["short_group_warning"].all()  # 10 points < 13: trial limits, as the R package warns
    assert t["special_cause_type"].to_list() == ["Common Cause"] * 20


@pytest.mark.parametrize("item", RULES["seven_point_one_side_mean"])
def test_run_rule_against_NHSRplotthedots(item: dict) -> None:
    assert spc.run_one_side_of_mean(np.array(item["input"])).tolist() == item["expected"]


@pytest.mark.parametrize("item", RULES["part_of_seven_trend"])
def test_part_of_run_against_NHSRplotthedots(item: dict) -> None:
    assert spc.part_of_run(np.array(item["input"])).tolist() == item["expected"]


@pytest.mark.parametrize("item", RULES["seven_point_trend"])
def test_trend_rule_against_NHSRplotthedots(item: dict) -> None:
    assert spc.trend_points(np.array(item["input"])).tolist() == item["expected"]


@pytest.mark.parametrize("item", RULES["two_in_three"])
def test_two_in_three_against_NHSRplotthedots(item: dict) -> None:
    got = spc.two_in_three(np.array(item["close"]), np.array(item["relative_to_mean"]))
    assert got.tolist() == item["expected"]


@pytest.mark.parametrize("item", RULES["part_of_two_in_three"])
def test_part_of_two_in_three_against_NHSRplotthedots(item: dict) -> None:
    close = np.array(item["close"])
    flags = spc.two_in_three(close, np.array(item["relative_to_mean"]))
    assert ((flags == 1) & (close == 1)).astype(int).tolist() == item["expected"]


def test_rule_precedence_against_NHSRplotthedots() -> None:
    c = RULES["special_cause_type_precedence"]
    got = spc.label_points(np.array(c["y"]), np.array(c["relative_to_mean"]), np.array(c["outside_limits"]),
                           np.array(c["part_trend"]), np.array(c["part_two_in_three"]), np.array(c["part_run"]))
    assert got == c["expected"]


@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_assurance_against_NHSRplotthedots(direction: str) -> None:
    c = RULES["calculate_assurance_type"]
    got = []
    for lpl, upl in zip(c["lpl"], c["upl"], strict=True):
        table = pl.DataFrame({"lower": [lpl], "upper": [upl], "point_type": ["common_cause"]})
        chart = spc.SpcChart("xmr", table, direction, c["target"], 7, 7)
        got.append(chart.assurance)
    assert got == c[direction]
    neutral = spc.SpcChart("xmr", pl.DataFrame({"lower": [1], "upper": [3]}), "neutral", 4, 7, 7)
    assert neutral.assurance is None


def test_point_type_orientation() -> None:
    """ptd_point_type: Above/Increasing is improvement when improvement is an increase, and so on."""
    labels = ["Above UCL", "7 Point Trend (Decreasing)", "Common Cause", "2 in 3 Below CL"]
    assert spc.point_type(labels, "increase") == ["special_cause_improvement", "special_cause_concern",
                                                  "common_cause", "special_cause_concern"]
    assert spc.point_type(labels, "decrease") == ["special_cause_concern", "special_cause_improvement",
                                                  "common_cause", "special_cause_improvement"]
    assert spc.point_type(labels, "neutral") == ["special_cause_neutral_high", "special_cause_neutral_low",
                                                 "common_cause", "special_cause_neutral_low"]


def test_configurable_run_length() -> None:
    """A 6-point rule (some trusts' choice, NHSRplotthedots issue #202) flags a run the 7-point rule does not."""
    y = np.array([0.0, 1, -1, 1, -1, -1, 2, 2, 2, 2, 2, 2, -1, 0.5, -1])
    x = list(range(y.size))
    seven = spc.build_xmr(x, y).table["special_cause_flag"].to_list()
    six = spc.build_xmr(x, y, run_length=6).table
    assert not any(seven[6:12])
    assert six["special_cause_type"].to_list()[6:12] == ["6 Points Above CL"] * 6


def test_fix_after_n_points_uses_the_first_points_only() -> None:
    """The limits of a fixed chart are the limits of its first n points (the recalculation period)."""
    rng = np.random.default_rng(7)
    y = np.concatenate([rng.normal(0, 1, 15), rng.normal(3, 1, 10)])
    x = list(range(y.size))
    fixed = spc.build_xmr(x, y, fix_after_n_points=15).table
    first = spc.build_xmr(x[:15], y[:15]).table
    np.testing.assert_allclose(fixed["upper"][0], first["upper"][0], rtol=1e-12)
    assert fixed["special_cause_flag"][15:].all()  # the shift after the fixed period is special cause
    with pytest.raises(AuditMetricsError, match="at least 12"):
        spc.build_xmr(x, y, fix_after_n_points=5)


def test_missing_or_duplicate_points_are_refused() -> None:
    with pytest.raises(AuditMetricsError, match="value for every point"):
        spc.build_xmr([1, 2, 3], [1.0, float("nan"), 2.0])
    with pytest.raises(AuditMetricsError, match="more than once"):
        spc.build_xmr([1, 1, 3], [1.0, 2.0, 3.0])


# ------------------------------------------------------------------ Laney p′ / u′


def _laney_reference(d: np.ndarray, n: np.ndarray, kind: str) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Laney (2002) written out step by step (no screening needed: no large moving range here)."""
    centre = d.sum() / n.sum()
    sd = np.sqrt(centre * (1 - centre) / n) if kind == "p_prime" else np.sqrt(centre / n)
    z = (d / n - centre) / sd
    sigma_z = np.mean(np.abs(z[1:] - z[:-1])) / 1.128
    return centre, centre - 3 * sd * sigma_z, centre + 3 * sd * sigma_z, sigma_z


@pytest.mark.parametrize("kind", ["p_prime", "u_prime"])
def test_laney_against_published_formula(kind: str) -> None:
    d = np.array([41.0, 52, 38, 60, 47, 55, 43, 50, 58, 45])
    n = np.array([400.0, 520, 380, 610, 450, 500, 470, 480, 530, 440])
    chart = spc.build_laney(list(range(10)), d, n, kind=kind)
    centre, lo, hi, sigma_z = _laney_reference(d, n, kind)
    t = chart.table
    np.testing.assert_allclose(t["mean"].to_numpy(), centre, rtol=1e-12)
    np.testing.assert_allclose(t["lower"].to_numpy(), lo, rtol=1e-12)
    np.testing.assert_allclose(t["upper"].to_numpy(), hi, rtol=1e-12)
    np.testing.assert_allclose(t["sigma_z"].to_numpy(), sigma_z, rtol=1e-12)


def test_laney_sigma_z_recovers_known_overdispersion() -> None:
    """Known truth: binomial months give σ_z ≈ 1 (the p chart); beta-binomial with intra-class
    correlation ρ gives σ_z ≈ √(1 + (n − 1)ρ). 3,000 months: MR/1.128 has a standard error of about
    1.5% here, so 6% is four standard errors."""
    rng = np.random.default_rng(20261122)
    months, size, p = 3000, 400, 0.12
    n = np.full(months, float(size))
    binomial = rng.binomial(size, p, months).astype(float)
    sz = spc.build_laney(list(range(months)), binomial, n, screen_outliers=False).table["sigma_z"][0]
    assert abs(sz - 1) < 0.06
    rho = 0.01
    a = p * (1 - rho) / rho
    b = (1 - p) * (1 - rho) / rho
    over = rng.binomial(size, rng.beta(a, b, months)).astype(float)
    sz = spc.build_laney(list(range(months)), over, n, screen_outliers=False).table["sigma_z"][0]
    truth = np.sqrt(1 + (size - 1) * rho)
    assert abs(sz / truth - 1) < 0.06


def test_laney_limits_are_clipped_and_inputs_checked() -> None:
    chart = spc.build_laney([1, 2, 3, 4], [1.0, 0, 5, 0], [10.0, 10, 10, 10])
    assert (chart.table["lower"] >= 0).all() and (chart.table["upper"] <= 1).all()
    with pytest.raises(AuditMetricsError, match="cannot exceed"):
        spc.build_laney([1, 2], [5.0, 12], [10.0, 10])
    with pytest.raises(AuditMetricsError, match="positive denominator"):
        spc.build_laney([1, 2], [5.0, 1], [10.0, 0])


# ------------------------------------------------------------------ plain-English sentence


def test_describe_names_the_signal_and_since_when() -> None:
    months = [date(2021 + (m + 3) // 12, (m + 3) % 12 + 1, 1) for m in range(36)]
    y = np.r_[np.tile([10.0, 11.0, 9.0, 10.5], 7), np.full(8, 6.0) + np.arange(8) % 2 * 0.1]
    chart = spc.build_xmr(months, y, improvement_direction="decrease")
    assert chart.variation == "special_cause_improvement"
    text = spc.describe(chart)
    assert text.startswith(f"Improving since {months[28]:%B %Y}:"), text
    worse = spc.build_xmr(months, y, improvement_direction="increase")
    assert spc.describe(worse).startswith("Concerning since")
    flat = spc.build_xmr(months, np.tile([10.0, 11.0, 9.0, 10.5], 9))
    assert spc.describe(flat).startswith("Common cause variation")


def test_describe_names_a_single_month_once() -> None:
    """One earlier point beyond a limit: 'in May 2022', never 'from May 2022 to May 2022' (screenshot review)."""
    months = [date(2021 + (m + 3) // 12, (m + 3) % 12 + 1, 1) for m in range(36)]
    y = np.tile([10.0, 11.0, 9.0, 10.5], 9)
    y[10] = 30.0
    text = spc.describe(spc.build_xmr(months, y, improvement_direction="decrease"))
    assert f"Earlier, concerning in {months[10]:%B %Y}: " in text, text
    assert f"{months[10]:%B %Y} to {months[10]:%B %Y}" not in text
