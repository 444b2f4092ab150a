"""Statistical process control: NHS England "Making Data Count" XmR charts and Laney p′/u′ charts.

The XmR (individuals) chart follows NHSRplotthedots 0.2.2 (``ptd_spc_standard`` and
``ptd_calculate_point_type``) exactly, so that a chart drawn here and one drawn with the R package
show the same limits and the same special-cause points:

- centre line: the mean of the points (or of the first ``fix_after_n_points`` of them);
- moving ranges MR = |yᵢ − yᵢ₋₁|, AMR = mean MR; with ``screen_outliers`` (the default), moving
  ranges of 3.267 × AMR or more are left out and AMR recomputed;
- process limits mean ± 2.66 × AMR (3σ, σ = AMR / 1.128), "near" limits at two-thirds of that (2σ);
- special-cause rules, in order of precedence: a point beyond a process limit; part of a trend of
  7 points all rising or all falling; part of 2 of 3 consecutive points beyond two sigma on the same
  side of the mean; part of a run of 7 points on one side of the mean. The run and trend lengths are
  configurable (the Making Data Count default is 7; some trusts use 6).

Rebasing (a declared date starts a new period with its own mean and limits) and fixing the limits
after n points (the "recalculation period") work as in the R package.

For proportions and rates with varying denominators the Laney p′ and u′ charts (Laney 2002) allow
both for each point's own binomial or Poisson precision and for between-period variation beyond it,
which an XmR chart of the rates ignores (it weights a month of 5 patients like a month of 500).

References
----------
NHS England (2019). *Making Data Count: Getting started.* NHS Improvement.
NHS-R Community, NHSRplotthedots 0.2.2, https://github.com/nhs-r-community/NHSRplotthedots (MIT).
Laney DB (2002). Improved control charts for attributes. *Quality Engineering* 14(4):531-537.
Wheeler DJ (1995). *Advanced Topics in Statistical Process Control.* SPC Press (2.66 and 3.267).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import polars as pl

from audit_metrics.exceptions import AuditMetricsError

__all__ = [
    "LIMIT_FACTOR",
    "MR_SCREEN_FACTOR",
    "SpcChart",
    "build_laney",
    "build_xmr",
    "classify_points",
    "describe",
    "label_points",
    "part_of_run",
    "point_type",
    "run_one_side_of_mean",
    "special_cause_type",
    "trend_points",
    "two_in_three",
]

LIMIT_FACTOR = 2.66         # 3 / d2, d2 = 1.128 for moving ranges of 2 (Wheeler)
NEAR_FACTOR = 2 * LIMIT_FACTOR / 3   # two sigma
MR_SCREEN_FACTOR = 3.267    # D4 for n = 2: an upper limit for a moving range
SHORT_GROUP = 13            # NHSRplotthedots' ptd_spc.warning_threshold: fewer points give trial limits

Direction = Literal["increase", "decrease", "neutral"]
ChartKind = Literal["xmr", "p_prime", "u_prime"]

VARIATION_WORDS = {
    "special_cause_improvement": "improving (special cause)",
    "special_cause_concern": "concerning (special cause)",
    "special_cause_neutral_high": "higher (special cause, neither better nor worse)",
    "special_cause_neutral_low": "lower (special cause, neither better nor worse)",
    "common_cause": "common cause variation (no significant change)",
}
ASSURANCE_WORDS = {
    "consistent_pass": "the target is consistently met (it lies outside the process limits, on the right side)",
    "consistent_fail": "the target is consistently missed (it lies outside the process limits, on the wrong side)",
    "inconsistent": "hit and miss: the target lies within the process limits, so it will be met on some "
                    "points and missed on others by chance alone",
}


# ------------------------------------------------------------------------------------------------
# the special-cause rules (one function per rule, as in NHSRplotthedots' ptd_calculate_point_type.R)


def run_one_side_of_mean(relative_to_mean: np.ndarray, run_length: int = 7) -> np.ndarray:
    """1 where a point ends a run of ``run_length`` points on the same side of the mean, else 0.

    A point exactly on the mean (sign 0) breaks a run. ``ptd_seven_point_one_side_mean`` with a
    configurable length.
    """
    v = np.asarray(relative_to_mean, dtype=float)
    out = np.zeros(v.size)
    for i in range(run_length - 1, v.size):
        window = v[i - run_length + 1:i + 1]
        out[i] = float(v[i] != 0 and np.all(window == v[i]))
    return out


def part_of_run(ends: np.ndarray, run_length: int = 7) -> np.ndarray:
    """1 where a point is one of the ``run_length`` points of a run ending there or later.

    ``ptd_part_of_seven_trend``: a point belongs to a run if it, or one of the next
    ``run_length - 1`` points, ends one.
    """
    v = np.abs(np.asarray(ends, dtype=float)) == 1
    out = np.zeros(v.size)
    for i in range(v.size):
        out[i] = float(v[i:i + run_length].any())
    return out


def trend_points(y: np.ndarray, trend_length: int = 7) -> np.ndarray:
    """+1 / −1 where a point ends ``trend_length`` points each above / below the one before, else 0.

    A repeated value breaks a trend (its difference has sign 0). ``ptd_seven_point_trend``.
    """
    y = np.asarray(y, dtype=float)
    out = np.zeros(y.size)
    if y.size < trend_length:
        return out
    d = np.sign(np.diff(y))
    for i in range(trend_length - 1, y.size):
        window = d[i - trend_length + 1:i]
        if np.all(window == 1):
            out[i] = 1.0
        elif np.all(window == -1):
            out[i] = -1.0
    return out


def two_in_three(close_to_limits: np.ndarray, relative_to_mean: np.ndarray) -> np.ndarray:
    """1 where a point lies in a window of 3 with 2+ points beyond two sigma, all 3 on one side.

    Only points between the two-sigma and the process limits count ("close to limits"); the three
    points of the window must all lie on the same side of the mean. ``ptd_two_in_three``.
    """
    v = np.asarray(close_to_limits, dtype=float)
    if v.size == 0:
        return np.zeros(0)
    rtm = np.asarray(relative_to_mean, dtype=float)
    vp = np.concatenate([[0, 0], v, [0, 0]])
    rp = np.concatenate([[0, 0], rtm, [0, 0]])
    out = np.zeros(v.size)
    for i in range(v.size):
        out[i] = float(any(vp[i + k:i + k + 3].sum() >= 2 and abs(rp[i + k:i + k + 3].sum()) == 3
                           for k in range(3)))
    return out


def special_cause_type(y: np.ndarray, relative_to_mean: np.ndarray, close_to_limits: np.ndarray,
                       outside_limits: np.ndarray, *, run_length: int = 7,
                       trend_length: int = 7) -> list[str]:
    """The special-cause label of each point (first matching rule), as NHSRplotthedots names it.

    ``"Above UCL"``, ``"Below LCL"``, ``"7 Point Trend (Increasing)"``, ``"7 Point Trend
    (Decreasing)"``, ``"2 in 3 Above CL"``, ``"2 in 3 Below CL"``, ``"7 Points Above CL"``,
    ``"7 Points Below CL"`` or ``"Common Cause"`` (the number is the configured length).
    """
    y = np.asarray(y, dtype=float)
    rtm = np.asarray(relative_to_mean, dtype=float)
    close = np.asarray(close_to_limits, dtype=float)
    outside = np.asarray(outside_limits, dtype=float)
    part_trend = part_of_run(trend_points(y, trend_length), trend_length)
    in_three = two_in_three(close, rtm)
    part_two_in_three = ((in_three == 1) & (np.abs(close) == 1)).astype(float)
    part_side = part_of_run(run_one_side_of_mean(rtm, run_length), run_length)
    return label_points(y, rtm, outside, part_trend, part_two_in_three, part_side, run_length=run_length,
                        trend_length=trend_length)


def label_points(y: np.ndarray, relative_to_mean: np.ndarray, outside_limits: np.ndarray,
                 part_trend: np.ndarray, part_two_in_three: np.ndarray, part_side: np.ndarray, *,
                 run_length: int = 7, trend_length: int = 7) -> list[str]:
    """Combine the rules' results into one label per point (precedence as ``ptd_special_cause_type``)."""
    y = np.asarray(y, dtype=float)
    rtm = np.asarray(relative_to_mean, dtype=float)
    outside = np.asarray(outside_limits, dtype=float)
    part_trend = np.asarray(part_trend, dtype=float)
    # direction of a trend point: the step into it, or, where the next point is part of the same
    # trend, the step out of it (so the first point of a trend takes the trend's direction)
    sdy = np.sign(np.diff(y))
    if y.size:
        next_in_trend = np.concatenate([part_trend[1:], [0]]).astype(bool) & part_trend.astype(bool)
        right = np.concatenate([sdy, sdy[-1:]]) if sdy.size else np.zeros(1)
        left = np.concatenate([[0], sdy])
        sdy = np.where(next_in_trend, right, left)
    out: list[str] = []
    for i in range(y.size):
        side = "Above" if rtm[i] > 0 else "Below"
        if outside[i] != 0:
            out.append("Above UCL" if rtm[i] == 1 else "Below LCL")
        elif part_trend[i] != 0:
            out.append(f"{trend_length} Point Trend ({'In' if sdy[i] == 1 else 'De'}creasing)")
        elif part_two_in_three[i] != 0:
            out.append(f"2 in 3 {side} CL")
        elif part_side[i] != 0:
            out.append(f"{run_length} Points {side} CL")
        else:
            out.append("Common Cause")
    return out


def point_type(special_cause: Sequence[str], improvement_direction: Direction) -> list[str]:
    """Special causes oriented by the improvement direction (``ptd_point_type``)."""
    sign = {"increase": 1, "decrease": -1, "neutral": 0}[improvement_direction]
    out = []
    for label in special_cause:
        v = 1 if ("Above" in label or "Increasing" in label) else -1 if ("Below" in label or "Decreasing" in label) else 0
        if sign == 0:
            out.append("special_cause_neutral_high" if v > 0 else "special_cause_neutral_low" if v < 0
                       else "common_cause")
        else:
            v *= sign
            out.append("special_cause_improvement" if v > 0 else "special_cause_concern" if v < 0
                       else "common_cause")
    return out


def classify_points(y: np.ndarray, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    near_lower: np.ndarray, near_upper: np.ndarray, *, improvement_direction: Direction,
                    run_length: int = 7, trend_length: int = 7) -> dict[str, np.ndarray]:
    """Outside-limit, side-of-mean, near-limit flags and the special-cause labels of one period."""
    outside = (y > upper) | (y < lower)
    rtm = np.sign(y - mean)
    close = ~outside & ((y < near_lower) | (y > near_upper))
    labels = special_cause_type(y, rtm, close, outside, run_length=run_length, trend_length=trend_length)
    types = point_type(labels, improvement_direction)
    return {"outside_limits": outside, "relative_to_mean": rtm, "close_to_limits": close,
            "special_cause_type": np.array(labels, dtype=object),
            "special_cause_flag": np.array([t != "Common Cause" for t in labels]),
            "point_type": np.array(types, dtype=object)}


# ------------------------------------------------------------------------------------------------
# charts


@dataclass(frozen=True)
class SpcChart:
    """An SPC chart: one row per point, with its period's centre line and limits.

    ``table`` columns: ``x, y, rebase_group, short_group_warning, mean, lower, upper, near_lower,
    near_upper, outside_limits, relative_to_mean, close_to_limits, special_cause_type,
    special_cause_flag, point_type`` (and ``numerator, denominator, sigma_z`` for Laney charts).
    """

    kind: ChartKind
    table: pl.DataFrame
    improvement_direction: Direction
    target: float | None
    run_length: int
    trend_length: int

    @property
    def variation(self) -> str:
        """Variation icon: the latest point's type (Making Data Count reads the icon from it)."""
        return str(self.table["point_type"][-1]) if self.table.height else "common_cause"

    @property
    def assurance(self) -> str | None:
        """Assurance icon: where the target lies against the latest period's process limits."""
        if self.target is None or self.improvement_direction == "neutral" or self.table.height == 0:
            return None
        last = self.table.row(-1, named=True)
        increasing = self.improvement_direction == "increase"
        if self.target > last["upper"]:
            return "consistent_fail" if increasing else "consistent_pass"
        if self.target < last["lower"]:
            return "consistent_pass" if increasing else "consistent_fail"
        return "inconsistent"

    def latest_signal(self) -> dict[str, object] | None:
        """The most recent block of special-cause points (same point type, consecutive), or None.

        Returns ``point_type``, ``special_cause_type``, ``start`` and ``end`` (x values), ``points``
        (how many) and ``current`` (whether it includes the latest point).
        """
        t = self.table
        flagged = [i for i, f in enumerate(t["special_cause_flag"].to_list()) if f]
        if not flagged:
            return None
        end = flagged[-1]
        kind = t["point_type"][end]
        start = end
        while start - 1 >= 0 and t["special_cause_flag"][start - 1] and t["point_type"][start - 1] == kind:
            start -= 1
        return {"point_type": kind, "special_cause_type": t["special_cause_type"][end],
                "start": t["x"][start], "end": t["x"][end], "points": end - start + 1,
                "current": end == t.height - 1}


def _groups(x: Sequence[object], rebase: Sequence[object]) -> np.ndarray:
    """Rebase group of each point: 0 before the first rebase date, 1 from it, ... (dates must match)."""
    marks = set(rebase)
    return np.cumsum([1 if v in marks else 0 for v in x])


def _ordered(x: Sequence[object], *arrays: np.ndarray) -> tuple[list[object], list[np.ndarray]]:
    order = sorted(range(len(x)), key=lambda i: x[i])
    return [x[i] for i in order], [np.asarray(a, dtype=float)[order] for a in arrays]


def _check_inputs(x: Sequence[object], *arrays: np.ndarray, fix_after_n_points: int | None) -> None:
    if len(set(x)) != len(x):
        msg = "each point needs its own date: the same x appears more than once"
        raise AuditMetricsError(msg)
    for a in arrays:
        if np.asarray(a).shape != (len(x),):
            msg = "every series must have one value per point"
            raise AuditMetricsError(msg)
    if fix_after_n_points is not None and fix_after_n_points < 12:
        msg = "fix_after_n_points must be at least 12 (as in NHSRplotthedots)"
        raise AuditMetricsError(msg)


def _mean_moving_range(values: np.ndarray, *, screen_outliers: bool) -> float:
    """Average moving range, leaving out moving ranges of 3.267 x AMR or more when screening."""
    if values.size < 2:
        return float("nan")
    mr = np.abs(np.diff(values))
    amr = mr.mean()
    if screen_outliers:
        mr = mr[mr < MR_SCREEN_FACTOR * amr]
        amr = mr.mean() if mr.size else float("nan")
    return float(amr)


def build_xmr(x: Sequence[object], y: Sequence[float] | np.ndarray, *, improvement_direction: Direction = "increase",
              rebase: Sequence[object] = (), fix_after_n_points: int | None = None, target: float | None = None,
              screen_outliers: bool = True, run_length: int = 7, trend_length: int = 7) -> SpcChart:
    r"""XmR chart with Making Data Count rules (NHSRplotthedots ``ptd_spc``).

    .. math:: \bar y \pm 2.66\,\overline{MR}, \qquad \overline{MR} = \tfrac{1}{n-1}\sum |y_i - y_{i-1}|

    Parameters
    ----------
    x
        Dates (or any sortable labels), one per point; sorted before charting.
    y
        The values. Missing values are not allowed (leave the point out instead).
    improvement_direction
        ``"increase"``, ``"decrease"`` or ``"neutral"``: which special causes are improvement.
    rebase
        x values at which a new period starts, with its own mean and limits.
    fix_after_n_points
        Compute each period's mean and limits from its first n points only (n >= 12).
    target
        For the assurance icon.
    screen_outliers
        Leave moving ranges of 3.267 x AMR or more out of the limits.
    run_length, trend_length
        Points needed for a run on one side of the mean and for a trend (7 by default).

    Returns
    -------
    SpcChart

    References
    ----------
    NHS England, *Making Data Count* (2019); NHSRplotthedots 0.2.2.

    Examples
    --------
    >>> chart = build_xmr(list(range(1, 9)), [1.0, 2, 3, 4, 5, 6, 7, 8])
    >>> chart.table.select("x", "y", "special_cause_type").head(2)
    shape: (2, 3)
    ┌─────┬─────┬────────────────────────────┐
    │ x   ┆ y   ┆ special_cause_type         │
    │ --- ┆ --- ┆ ---                        │
    │ i64 ┆ f64 ┆ str                        │
    ╞═════╪═════╪════════════════════════════╡
    │ 1   ┆ 1.0 ┆ Below LCL                  │
    │ 2   ┆ 2.0 ┆ 7 Point Trend (Increasing) │
    └─────┴─────┴────────────────────────────┘
    """
    _check_inputs(x, np.asarray(y, dtype=float), fix_after_n_points=fix_after_n_points)
    xs, (ys,) = _ordered(list(x), np.asarray(y, dtype=float))
    if not np.all(np.isfinite(ys)):
        msg = "an XmR chart needs a value for every point (leave out the periods without one)"
        raise AuditMetricsError(msg)
    groups = _groups(xs, rebase)
    n = len(xs)
    cols = {k: np.full(n, np.nan) for k in ("mean", "lower", "upper", "near_lower", "near_upper")}
    flags: dict[str, list] = {k: [] for k in ("outside_limits", "relative_to_mean", "close_to_limits",
                                               "special_cause_type", "special_cause_flag", "point_type")}
    short = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        values = ys[idx]
        basis = values[:fix_after_n_points] if fix_after_n_points else values
        mean = float(basis.mean())
        amr = _mean_moving_range(basis, screen_outliers=screen_outliers)
        parts = {"mean": mean, "lower": mean - LIMIT_FACTOR * amr, "upper": mean + LIMIT_FACTOR * amr,
                 "near_lower": mean - NEAR_FACTOR * amr, "near_upper": mean + NEAR_FACTOR * amr}
        for k, v in parts.items():
            cols[k][idx] = v
        got = classify_points(values, *(np.full(idx.size, parts[k]) for k in
                                        ("mean", "lower", "upper", "near_lower", "near_upper")),
                              improvement_direction=improvement_direction, run_length=run_length,
                              trend_length=trend_length)
        for k in flags:
            flags[k].extend(got[k].tolist())
        short[idx] = idx.size < SHORT_GROUP
    table = pl.DataFrame({"x": xs, "y": ys, "rebase_group": groups.astype(np.int64), "short_group_warning": short,
                          **cols, **{k: pl.Series(k, v) for k, v in flags.items()}})
    return SpcChart("xmr", table, improvement_direction, target, run_length, trend_length)


def build_laney(x: Sequence[object], numerator: Sequence[float] | np.ndarray,
                denominator: Sequence[float] | np.ndarray, *, kind: Literal["p_prime", "u_prime"] = "p_prime",
                improvement_direction: Direction = "increase", rebase: Sequence[object] = (),
                fix_after_n_points: int | None = None, target: float | None = None,
                screen_outliers: bool = True, run_length: int = 7, trend_length: int = 7) -> SpcChart:
    r"""Laney p′ (proportions) or u′ (rates) chart: limits for each point's own denominator.

    .. math::
        \bar p = \frac{\sum d_i}{\sum n_i},\quad \sigma_{p_i} = \sqrt{\bar p(1-\bar p)/n_i},\quad
        z_i = \frac{p_i - \bar p}{\sigma_{p_i}},\quad \sigma_z = \frac{\overline{MR}(z)}{1.128},\quad
        \bar p \pm 3\,\sigma_{p_i}\sigma_z

    (u′: :math:`\bar u = \sum c_i / \sum n_i`, :math:`\sigma_{u_i} = \sqrt{\bar u / n_i}`.) With
    :math:`\sigma_z = 1` this is the p (u) chart; :math:`\sigma_z > 1` widens the limits for the
    between-period variation that a large denominator would otherwise flag as special cause.
    Moving ranges of z are screened like the XmR chart's. Limits are clipped at 0 (and at 1 for p′).
    The same special-cause rules apply, against each point's own limits.

    References
    ----------
    Laney DB (2002). Improved control charts for attributes. *Quality Engineering* 14(4):531-537.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    _check_inputs(x, num, den, fix_after_n_points=fix_after_n_points)
    if np.any(~np.isfinite(den) | (den <= 0)) or np.any(~np.isfinite(num) | (num < 0)):
        msg = "a p′/u′ chart needs a positive denominator and a non-negative count for every point"
        raise AuditMetricsError(msg)
    if kind == "p_prime" and np.any(num > den):
        msg = "a proportion's numerator cannot exceed its denominator"
        raise AuditMetricsError(msg)
    xs, (num, den) = _ordered(list(x), num, den)
    y = num / den
    groups = _groups(xs, rebase)
    n = len(xs)
    cols = {k: np.full(n, np.nan) for k in ("mean", "lower", "upper", "near_lower", "near_upper", "sigma_z")}
    flags: dict[str, list] = {k: [] for k in ("outside_limits", "relative_to_mean", "close_to_limits",
                                               "special_cause_type", "special_cause_flag", "point_type")}
    short = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        basis = idx[:fix_after_n_points] if fix_after_n_points else idx
        centre = float(num[basis].sum() / den[basis].sum())
        var = centre * (1 - centre) if kind == "p_prime" else centre
        sd = np.sqrt(var / den[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (y[basis] - centre) / np.sqrt(var / den[basis])
        sigma_z = _mean_moving_range(z, screen_outliers=screen_outliers) / 1.128 if var > 0 else float("nan")
        width = sd * sigma_z
        top = 1.0 if kind == "p_prime" else np.inf
        parts = {"mean": np.full(idx.size, centre), "lower": np.maximum(centre - 3 * width, 0.0),
                 "upper": np.minimum(centre + 3 * width, top), "near_lower": np.maximum(centre - 2 * width, 0.0),
                 "near_upper": np.minimum(centre + 2 * width, top)}
        for k, v in parts.items():
            cols[k][idx] = v
        cols["sigma_z"][idx] = sigma_z
        got = classify_points(y[idx], *(parts[k] for k in ("mean", "lower", "upper", "near_lower", "near_upper")),
                              improvement_direction=improvement_direction, run_length=run_length,
                              trend_length=trend_length)
        for k in flags:
            flags[k].extend(got[k].tolist())
        short[idx] = idx.size < SHORT_GROUP
    table = pl.DataFrame({"x": xs, "y": y, "numerator": num, "denominator": den,
                          "rebase_group": groups.astype(np.int64), "short_group_warning": short, **cols,
                          **{k: pl.Series(k, v) for k, v in flags.items()}})
    return SpcChart(kind, table, improvement_direction, target, run_length, trend_length)


def describe(chart: SpcChart, *, what: str = "the value", fmt=lambda v: f"{v:.3g}") -> str:
    """One plain-English sentence: the variation icon's meaning, since when, and why.

    E.g. "Improving since April 2023: 7 points below the mean." or "Common cause variation: no
    significant change (mean 12.1%, March 2021 to February 2024)."
    """
    t = chart.table
    if t.height == 0:
        return "No data to chart."
    signal = chart.latest_signal()
    reason = {
        "Above UCL": "a point above the upper process limit", "Below LCL": "a point below the lower process limit",
    }

    def why(s: dict[str, object]) -> str:
        label = str(s["special_cause_type"])
        if label in reason:
            return reason[label] if s["points"] == 1 else f"{s['points']} points beyond the process limits"
        if "Trend" in label:
            return f"{s['points']} points {'rising' if 'Increasing' in label else 'falling'} in a row"
        if label.startswith("2 in 3"):
            return f"{s['points']} points close to the {'upper' if 'Above' in label else 'lower'} process limit"
        return f"{s['points']} points {'above' if 'Above' in label else 'below'} the mean"

    words = {"special_cause_improvement": "Improving", "special_cause_concern": "Concerning",
             "special_cause_neutral_high": "Higher", "special_cause_neutral_low": "Lower"}
    last_mean = t["mean"][-1]
    if signal is not None and signal["current"]:
        return f"{words[str(signal['point_type'])]} since {_when(signal['start'])}: {why(signal)}."
    text = (f"Common cause variation: no significant change in {what} recently (mean {fmt(last_mean)}, "
            f"{_span(t['x'][0], t['x'][-1])}).")
    if signal is not None:
        text += (f" Earlier, {words[str(signal['point_type'])].lower()} "
                 f"{_span(signal['start'], signal['end'], single='in', first='from')}: {why(signal)}.")
    return text


def _span(start: object, end: object, *, single: str = "", first: str = "") -> str:
    """'May 2022 to March 2024', or one month once ('May 2022', or 'in May 2022' with ``single``), never
    'May 2022 to May 2022'."""
    a, b = _when(start), _when(end)
    if a == b:
        return f"{single} {a}".strip()
    return f"{first} {a} to {b}".strip()


def _when(x: object) -> str:
    return x.strftime("%B %Y") if isinstance(x, date) else str(x)
