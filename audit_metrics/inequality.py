r"""Inequalities: who is left behind. Slope and relative index of inequality, gaps, funnel of gaps.

For an *ordered* breakdown (deprivation quintile: 1 = most deprived), each unit's gradient is
summarised the PHE/OHID way (``PHEindicatormethods::phe_sii``; Low & Low 2004): each group gets the
midpoint of its range in the cumulative population share (its *relative rank* b), and the weighted
regression

.. math::

    y_g \sqrt{a_g} = \alpha \sqrt{a_g} + \beta\, b_g \sqrt{a_g}

(a_g the group's share of the population) is fitted by least squares. The slope index of inequality
is SII = β (fitted value for the least deprived end minus the most deprived end, as PHE orients it)
and the relative index RII = (α + β)/α. Confidence intervals are PHE's Monte Carlo intervals: group
values are drawn from N(y_g, se_g²), the regression refitted, and the empirical percentiles taken.

Because β is linear in the group values, β = Σ c_g y_g with c the second row of
(XᵀWX)⁻¹XᵀW, its standard error is exactly :math:`\sqrt{\sum c_g^2 \mathrm{Var}(y_g)}`. The *funnel
of gaps* compares each unit's disadvantage gap with the national gap using that standard error,
computed under the null (each group at its national value), with the indicator's own overdispersion
handling (``outliers.assess_units`` with normal scores), so "this trust's deprivation gap is wider
than chance would give" is a flag like any other.

For an *unordered* breakdown (sex, ethnic group), each group in each unit is compared with the
national value for that group, exactly as the main funnel compares units (same limits, same
overdispersion handling), so the groups are read against like-for-like national values.

References
----------
Low A, Low A. Measuring the gap: quantifying and comparing local health inequalities. J Public
Health 2004;26:388-95. doi:10.1093/pubmed/fdh175.
Office for Health Improvement and Disparities. PHEindicatormethods 2.1.0, ``phe_sii`` (R package).
Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-202.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy import special

from audit_metrics.catalogue import (
    BreakdownSpec,
    IndicatorSpec,
    LoadedCatalogue,
    MethodOptions,
    SuppressionSpec,
    is_aggregate,
)
from audit_metrics.io import LoadedDataset, Units, load_all
from audit_metrics.outliers import STATUS_ENUM, assess_units, coverage_label, status_label
from audit_metrics.overdispersion import Overdispersion

__all__ = [
    "NOT_RECORDED",
    "GapAssessment",
    "InequalityResult",
    "InequalityRun",
    "SlopeIndex",
    "SlopeInterval",
    "assess_gaps",
    "breakdowns_for",
    "gap_sentence",
    "gap_status_label",
    "indicator_inequalities",
    "inequalities_for_sharing",
    "relative_ranks",
    "run_inequalities",
    "slope_index",
    "slope_index_interval",
    "slope_index_se",
    "slope_index_weights",
    "wilson_interval",
    "write_inequalities",
]

NOT_RECORDED = "Not recorded"
_Z95 = float(special.ndtri(0.975))


# ------------------------------------------------------------------ the PHE slope index


def relative_ranks(population: np.ndarray) -> np.ndarray:
    """Midpoint of each group's range in the cumulative population share (PHE ``FindXValues``).

    Groups are in order, most disadvantaged first: with shares 0.12 and 0.10 the ranks are 0.06 and
    0.17.
    """
    a = np.asarray(population, dtype=float)
    share = a / a.sum()
    return np.cumsum(share) - share / 2


def _design(population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sqrt(a) and b*sqrt(a): the two regressors of the weighted fit (no intercept term)."""
    a = np.asarray(population, dtype=float)
    sqrt_a = np.sqrt(a / a.sum())
    return sqrt_a, relative_ranks(a) * sqrt_a


def slope_index_weights(population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Rows of :math:`(X^\top X)^{-1} X^\top \operatorname{diag}(\sqrt a)`: intercept and slope as
    linear combinations of the group values (α = Σ w0_g y_g, SII = Σ w1_g y_g)."""
    sqrt_a, b_sqrt_a = _design(population)
    x = np.column_stack([sqrt_a, b_sqrt_a])
    rows = np.linalg.solve(x.T @ x, x.T) * sqrt_a
    return rows[0], rows[1]


_TRANSFORMS = {
    "none": (lambda v: v, lambda v: v),
    "log": (np.log, np.exp),
    "logit": (lambda v: np.log(v / (1 - v)), special.expit),
}


@dataclass(frozen=True)
class SlopeIndex:
    """Slope and relative index of inequality (PHE orientation: least minus most disadvantaged)."""

    sii: float
    rii: float
    intercept: float   # fitted value at the most disadvantaged end (rank 0), on the value scale
    transform: str     # none | log | logit: the scale the regression was fitted on


def slope_index(values: np.ndarray, population: np.ndarray, *, transform: str = "none") -> SlopeIndex:
    r"""SII and RII of group ``values`` (most disadvantaged group first), as ``phe_sii``.

    .. math::

        \mathrm{SII} = f(\hat\alpha + \hat\beta) - f(\hat\alpha), \qquad
        \mathrm{RII} = f(\hat\alpha + \hat\beta) / f(\hat\alpha)

    with f the back-transform (identity unless ``transform`` is ``log`` for rates or ``logit`` for
    proportions, PHE's ``transform = TRUE``).

    Parameters
    ----------
    values
        The indicator value of each group, in order (most disadvantaged first).
    population
        Each group's population (denominator); all must be positive.

    References
    ----------
    Low & Low (2004); PHEindicatormethods ``phe_sii`` (Calculation section).

    Examples
    --------
    >>> s = slope_index([0.30, 0.25, 0.22, 0.20, 0.18], [100, 100, 100, 100, 100])
    >>> round(s.sii, 4), round(s.rii, 4)
    (-0.145, 0.5207)
    """
    forward, back = _TRANSFORMS[transform]
    y = forward(np.asarray(values, dtype=float))
    w0, w1 = slope_index_weights(population)
    alpha, beta = float(w0 @ y), float(w1 @ y)
    at0, at1 = float(back(alpha)), float(back(alpha + beta))
    rii = at1 / at0 if at0 != 0 else float("nan")  # no events at the disadvantaged end: no ratio
    return SlopeIndex(at1 - at0, rii, at0, transform)


def slope_index_se(population: np.ndarray, variances: np.ndarray) -> float:
    r"""Exact standard error of the (untransformed) SII: :math:`\sqrt{\sum w_g^2 \operatorname{Var}(y_g)}`."""
    _, w1 = slope_index_weights(population)
    return float(np.sqrt(np.sum(w1**2 * np.asarray(variances, dtype=float))))


@dataclass(frozen=True)
class SlopeInterval:
    """Monte Carlo confidence limits for SII and RII at one coverage."""

    coverage: float
    sii_lower: float
    sii_upper: float
    rii_lower: float
    rii_upper: float


def slope_index_interval(values: np.ndarray, population: np.ndarray, se: np.ndarray, *,
                         coverage: float = 0.95, repetitions: int = 10_000,
                         rng: np.random.Generator, value_type: str = "normal",
                         transform: bool = False) -> SlopeInterval:
    """PHE's Monte Carlo interval (``SimulationFunc``): draw each group value, refit, take percentiles.

    ``value_type`` is ``normal`` (draws on the value scale), ``rate`` (draws of log value) or
    ``proportion`` (draws of logit value); ``se`` is on that drawing scale, as in ``phe_sii``. Without
    ``transform`` the draws are back-transformed before the regression; with it the regression is on
    the transformed scale and the limits are back-transformed around the fitted midpoint, as PHE does.
    The k-th smallest of the ``repetitions`` draws is taken, k = round(repetitions × tail) (R's
    ``round``, halves to even).
    """
    scale = {"normal": "none", "rate": "log", "proportion": "logit"}[value_type]
    forward, back = _TRANSFORMS[scale]
    centre = forward(np.asarray(values, dtype=float))
    draws = rng.normal(centre[:, None], np.asarray(se, dtype=float)[:, None],
                       size=(centre.size, repetitions))
    if not transform:
        draws = back(draws)
    w0, w1 = slope_index_weights(population)
    alpha, beta = w0 @ draws, w1 @ draws
    upper_q = coverage + (1 - coverage) / 2
    pos = np.array([round(repetitions * (1 - upper_q)), round(repetitions * upper_q)]) - 1
    sii_sorted = np.partition(beta, pos)[pos]  # the k-th smallest, as PHE's sort()[k]
    if not transform:
        with np.errstate(divide="ignore", invalid="ignore"):
            rii_sorted = np.partition((alpha + beta) / alpha, pos)[pos]
        return SlopeInterval(coverage, *map(float, sii_sorted), *map(float, rii_sorted))
    # PHE: limits of the transformed slope placed symmetrically about the fitted midpoint
    fit = slope_index(values, population, transform=scale)
    y0 = forward(np.asarray(fit.intercept))
    y1 = forward(np.asarray(fit.intercept + fit.sii))
    half = (y0 + y1) / 2
    lo0, lo1 = half - sii_sorted[0] / 2, half + sii_sorted[0] / 2
    hi0, hi1 = half - sii_sorted[1] / 2, half + sii_sorted[1] / 2
    return SlopeInterval(coverage, float(back(lo1) - back(lo0)), float(back(hi1) - back(hi0)),
                         float(back(lo1) / back(lo0)), float(back(hi1) / back(hi0)))


def wilson_interval(observed: np.ndarray, n: np.ndarray, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r"""Wilson score interval for O/n (PHE ``phe_proportion``; Newcombe 1998 method 3).

    .. math:: \frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}
    """
    o = np.asarray(observed, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(special.ndtri(1 - (1 - coverage) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = o / n
        centre = p + z * z / (2 * n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        denom = 1 + z * z / n
        return np.clip((centre - half) / denom, 0, 1), np.clip((centre + half) / denom, 0, 1)


# ------------------------------------------------------------------ the funnel of gaps


def gap_status_label(status: str) -> str:
    """'wider than expected (alert)' / 'narrower than expected (alarm)' / 'as expected' / 'not assessed'."""
    if status == "within":
        return "as expected"
    if status == "not_assessed":
        return "not assessed"
    level, side = status.split("_")
    return f"{'wider' if side == 'high' else 'narrower'} than expected ({level})"


@dataclass(frozen=True)
class GapAssessment:
    """Each unit's gap against the national gap: z, p, q, status and its limits."""

    z: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    status: np.ndarray
    limits: dict[float, tuple[np.ndarray, np.ndarray]]
    overdispersion: Overdispersion
    method: str


def assess_gaps(gap: np.ndarray, se: np.ndarray, assessable: np.ndarray, *, national_gap: float,
                options: MethodOptions) -> GapAssessment:
    r"""Funnel of gaps: each unit's gap d (standard error s) against the national gap d₀.

    .. math:: z = \frac{d - d_0}{\sqrt{\phi s^2 + \tau^2}}, \qquad
              \text{limits } d_0 \pm z_c \sqrt{\phi s^2 + \tau^2}

    Scored by ``outliers.assess_units`` with its normal-approximation scores, so the overdispersion
    estimate (φ, τ², the robust step, ``min_units``) and the alert/alarm rule are the main funnel's.
    The gap enters as a ratio at target 1 with precision x = 1/s² (normal variance θ₀/x = s²) and
    observed O = (1 + d − d₀)x, which gives z = (d − d₀)/s exactly.
    """
    d = np.asarray(gap, dtype=float)
    s = np.asarray(se, dtype=float)
    ok = np.asarray(assessable, dtype=bool) & np.isfinite(d) & np.isfinite(s) & (s > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(ok, 1 / s**2, np.nan)
        o = np.where(ok, (1 + d - national_gap) * x, np.nan)
    opts = options.replace(limit_method="normal")
    a = assess_units(o, x, ok, statistic="ratio", options=opts, target=1.0, target_estimated=True)
    od = a.overdispersion
    spread = np.sqrt(od.factor_phi * s**2 + od.applied_tau2)
    lims = {c: (national_gap - _coverage_z(c) * spread, national_gap + _coverage_z(c) * spread)
            for c in options.limits}
    method = a.method.replace("normal-approximation limits", "normal limits on the gap's standard error")
    return GapAssessment(np.where(ok, a.z, np.nan), np.where(ok, a.p_value, np.nan), a.q_value, a.status,
                         lims, od, method)


def _coverage_z(coverage: float) -> float:
    return float(special.ndtri(1 - (1 - coverage) / 2))


# ------------------------------------------------------------------ from the catalogue and data


def breakdowns_for(spec: IndicatorSpec, catalogue_breakdowns: Sequence[BreakdownSpec],
                   columns: Sequence[str]) -> list[BreakdownSpec]:
    """The breakdowns of one indicator: its own list if given, else the catalogue's, where the
    indicator's dataset has the column (a catalogue-wide list skips datasets without it)."""
    if spec.breakdowns is not None:
        return list(spec.breakdowns)
    return [b for b in catalogue_breakdowns if b.column in columns]


def _is_supported(spec: IndicatorSpec) -> bool:
    return spec.statistic == "proportion" or (spec.statistic == "ratio" and spec.risk_adjustment is not None)


@dataclass(frozen=True)
class InequalityResult:
    """One indicator by one breakdown: group rows and (ordered breakdowns) gap rows."""

    indicator_id: str
    breakdown: BreakdownSpec
    ordered: bool
    groups: pl.DataFrame
    gaps: pl.DataFrame
    overdispersion: Overdispersion | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class InequalityRun:
    """Every indicator x breakdown; ``groups()`` and ``gaps()`` are the companion tables."""

    results: dict[tuple[str, str], InequalityResult]
    skipped: dict[str, str] = field(default_factory=dict)   # indicator id -> why it has no breakdowns

    def groups(self) -> pl.DataFrame:
        parts = [r.groups for r in self.results.values() if r.groups.height]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()

    def gaps(self) -> pl.DataFrame:
        parts = [r.gaps for r in self.results.values() if r.gaps.height]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def _group_order(values: list[str], breakdown: BreakdownSpec, dtype: pl.DataType) -> tuple[list[str], bool]:
    """Recorded levels in order (most disadvantaged first for ordered breakdowns) and whether ordered."""
    ordered = breakdown.ordered if breakdown.ordered is not None else (
        dtype.is_integer() or breakdown.levels is not None)
    if breakdown.levels is not None:
        declared = [str(v) for v in breakdown.levels]
        return declared + sorted(v for v in values if v not in declared), ordered
    if dtype.is_numeric():
        return sorted(values, key=float), ordered
    return sorted(values), ordered


def _model_spec(spec: IndicatorSpec, column: str) -> tuple[IndicatorSpec, str | None]:
    """The indicator with the breakdown variable taken out of its risk model (if it is a covariate)."""
    ra = spec.risk_adjustment
    if ra is None or column not in {c.name for c in ra.covariates}:
        return spec, None
    covariates = [c for c in ra.covariates if c.name != column]
    note = (f"{column} is a case-mix covariate of this indicator: it was taken out of the model for this "
            "breakdown, so that the gap it describes is not adjusted away")
    if not covariates:
        return spec.model_copy(update={"risk_adjustment": None, "statistic": "proportion"}), note
    new_ra = ra.model_copy(update={"covariates": covariates,
                                   "categorical": [c for c in ra.categorical if c != column]})
    return spec.model_copy(update={"risk_adjustment": new_ra}), note


def _level_frames(counts: pl.DataFrame, units: Units) -> list[tuple[str, pl.DataFrame]]:
    """Counts per unit and group at every level (trust, each units.groups level, national)."""
    cols = [c for c in ("observed", "denominator", "expected") if c in counts.columns]
    trust = (units.frame.select("unit_code", "unit_name", *units.groups)
             .join(counts, on="unit_code", how="inner"))
    groups = list(units.groups)
    out = [("trust", trust.with_columns(
        (pl.col(groups[0]) if groups else pl.lit("national")).cast(pl.String).alias("parent_code")))]
    for i, g in enumerate(groups):
        parent = pl.col(groups[i + 1]).first() if i + 1 < len(groups) else pl.lit("national")
        agg = trust.group_by(g, "group").agg(pl.col(cols).sum(), parent.cast(pl.String).alias("parent_code"))
        out.append((g, agg.with_columns(pl.col(g).cast(pl.String).alias("unit_code"),
                                        pl.col(g).cast(pl.String).alias("unit_name")).drop(g)))
    nat = trust.group_by("group").agg(pl.col(cols).sum())
    out.append(("national", nat.with_columns(pl.lit("national").alias("unit_code"),
                                             pl.lit("National").alias("unit_name"),
                                             pl.lit(None, pl.String).alias("parent_code"))))
    return out


def indicator_inequalities(spec: IndicatorSpec, options: MethodOptions, ds: LoadedDataset, units: Units,
                           breakdown: BreakdownSpec, *, unit_column: str, aggregate: bool,
                           seed: int = 20261122, repetitions: int = 10_000) -> InequalityResult:
    """Group values, group-vs-national-group status and (ordered) gaps for one indicator and breakdown."""
    from audit_metrics.pipeline import _assess_level, prepare  # pipeline imports nothing from here

    column = breakdown.column
    model_spec, note = _model_spec(spec, column)
    notes = [note] if note else []
    counts, _, _, _ = prepare(model_spec, ds, unit_column=unit_column, period_column=column, aggregate=aggregate)
    counts = counts.rename({"period": "group"}).with_columns(pl.col("group").fill_null(NOT_RECORDED))
    cols = [c for c in ("observed", "denominator", "expected") if c in counts.columns]
    counts = counts.group_by("unit_code", "group").agg(pl.col(cols).sum())
    risk_adjusted = model_spec.risk_adjustment is not None
    recorded = [g for g in counts["group"].unique().to_list() if g != NOT_RECORDED]
    order, ordered = _group_order(recorded, breakdown, ds.frame.schema[column])
    all_groups = [*order, NOT_RECORDED]
    missing = float(counts.filter(pl.col("group") == NOT_RECORDED)["denominator"].sum())
    if missing:
        notes.append(f"{missing:,.0f} patients with no {breakdown.label or column.replace('_', ' ')} recorded are "
                     f"shown as '{NOT_RECORDED}' and left "
                     "out of the gap measures")
    total_o, total_n = float(counts["observed"].sum()), float(counts["denominator"].sum())
    rate_scale = total_o / total_n if total_n else np.nan
    label = breakdown.label or column.replace("_", " ")
    assess_spec = model_spec.model_copy(update={"target": None})
    group_rows: list[pl.DataFrame] = []
    levels = _level_frames(counts, units)
    national = levels[-1][1]
    for group in all_groups:
        nat = national.filter(pl.col("group") == group)
        if nat.height == 0:
            continue
        o, n = float(nat["observed"][0]), float(nat["denominator"][0])
        theta = o / float(nat["expected"][0]) if risk_adjusted else o / n
        for level, frame in levels:
            part = frame.filter(pl.col("group") == group)
            assessed, _ = _assess_level(part, spec=assess_spec, options=options, level=level, theta0=theta,
                                        target_estimated=True, rate_scale=rate_scale)
            group_rows.append(assessed.with_columns(pl.lit(level).alias("level")))
    groups = pl.concat(group_rows, how="diagonal_relaxed")
    rank = {g: i for i, g in enumerate(all_groups)}
    lo, hi = wilson_interval(groups["observed"].to_numpy(), groups["denominator"].to_numpy())
    to_value = (groups["denominator"] * rate_scale / groups["expected"]).to_numpy() if risk_adjusted else 1.0
    value = (groups["observed"] / groups["expected"] * rate_scale if risk_adjusted
             else groups["observed"] / groups["denominator"])
    groups = groups.with_columns(
        value.alias("value"),
        pl.Series("lower_ci", lo * to_value), pl.Series("upper_ci", hi * to_value),
        (pl.col("target") * (rate_scale if risk_adjusted else 1.0)).alias("national_group_value"),
        pl.col("group").replace_strict(rank, return_dtype=pl.Int32).alias("group_order"),
        pl.col("status").map_elements(lambda s: status_label(s, spec.better), return_dtype=pl.String)
        .alias("status_label"),
    )
    if risk_adjusted:
        for name in [c for c in groups.columns if c.startswith(("lower_al", "upper_al"))]:
            groups = groups.with_columns((pl.col(name) * rate_scale).alias(name))
    groups = groups.with_columns(
        pl.lit(spec.id).alias("indicator_id"), pl.lit(spec.title).alias("indicator_title"),
        pl.lit(spec.tumour_site).alias("tumour_site"), pl.lit(column).alias("breakdown"),
        pl.lit(label).alias("breakdown_label"), pl.lit(ordered).alias("ordered"),
        pl.lit(spec.better).alias("better"), pl.lit(spec.multiplier).alias("multiplier"),
        pl.lit(risk_adjusted).alias("risk_adjusted"))
    keep = ["indicator_id", "indicator_title", "tumour_site", "breakdown", "breakdown_label", "ordered", "group",
            "group_order", "level", "unit_code", "unit_name", "parent_code", "observed", "denominator", "expected",
            "value", "lower_ci", "upper_ci", "national_group_value", "z", "p_value", "status", "status_label",
            "lower_alert", "upper_alert", "lower_alarm", "upper_alarm", "not_assessed_reason", "better",
            "multiplier", "risk_adjusted"]
    groups = groups.select([c for c in keep if c in groups.columns]).sort(
        "level", "unit_code", "group_order")
    gaps, od = (pl.DataFrame(), None)
    if ordered and len(order) >= 3:
        gaps, od = _gaps(groups, order, spec=spec, options=options, seed=seed, repetitions=repetitions,
                         risk_adjusted=risk_adjusted, rate_scale=rate_scale, label=label)
    elif ordered:
        notes.append(f"{label}: fewer than 3 ordered groups recorded, so no slope index")
    return InequalityResult(spec.id, breakdown, ordered, groups, gaps, od, tuple(notes))


def _gaps(groups: pl.DataFrame, order: list[str], *, spec: IndicatorSpec, options: MethodOptions, seed: int,
          repetitions: int, risk_adjusted: bool, rate_scale: float, label: str) -> tuple[pl.DataFrame, Overdispersion]:
    """SII, RII and the simple gap per unit, and the funnel of gaps at each level."""
    k = len(order)
    ordered_rows = groups.filter(pl.col("group").is_in(order)).sort("level", "unit_code", "group_order")
    nat = ordered_rows.filter(pl.col("level") == "national").sort("group_order")
    nat_value = dict(zip(nat["group"].to_list(), nat["value"].to_list(), strict=True))
    if risk_adjusted:  # O/E of each group nationally, as a proportion of its patients' expected risk
        nat_ratio = dict(zip(nat["group"].to_list(), (nat["observed"] / nat["expected"]).to_list(), strict=True))
    rng = np.random.default_rng(seed)
    # which way is "disadvantage": PHE's SII is least minus most disadvantaged
    sign = 1.0 if spec.better == "higher" else -1.0
    min_n = options.min_denominator or 1
    rows = []
    cols = {c: ordered_rows[c].to_numpy() for c in ("observed", "denominator", "value", "lower_ci", "upper_ci")}
    cols["expected"] = ordered_rows["expected"].to_numpy() if risk_adjusted else None
    cols["group"] = np.array(ordered_rows["group"].to_list(), dtype=object)
    keys = list(zip(ordered_rows["level"].to_list(), ordered_rows["unit_code"].to_list(), strict=True))
    names, parents = ordered_rows["unit_name"].to_list(), ordered_rows["parent_code"].to_list()
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    for start, stop in zip(starts, [*starts[1:], len(keys)], strict=True):
        (level, code), sl = keys[start], slice(start, stop)
        present = dict(zip(cols["group"][sl], range(stop - start), strict=True))
        n = cols["denominator"][sl].astype(float)
        base = {"level": level, "unit_code": code, "unit_name": names[start], "parent_code": parents[start],
                "patients": float(n.sum()), "most_group": order[0], "least_group": order[-1]}
        small = [g for g in order if g not in present or n[present[g]] < min_n]
        if small:
            rows.append({**base, "not_assessed_reason": f"fewer than {min_n:g} patients in {label} "
                         + ", ".join(small)})
            continue
        o = cols["observed"][sl].astype(float)
        value = cols["value"][sl].astype(float)
        ci_se = (cols["upper_ci"][sl] - cols["lower_ci"][sl]) / (2 * _Z95)
        if risk_adjusted:
            e = cols["expected"][sl].astype(float)
            q = np.clip(np.array([nat_ratio[g] for g in order]) * e / n, 1e-12, 1 - 1e-12)
            null_var = (rate_scale / e) ** 2 * n * q * (1 - q)
        else:
            q = np.array([nat_value[g] for g in order])
            null_var = q * (1 - q) / n
        fit = slope_index(value, n)
        ci = slope_index_interval(value, n, np.maximum(ci_se, 1e-12), coverage=0.95, repetitions=repetitions,
                                  rng=rng)
        gap = value[0] - value[-1]
        gap_se = float(np.hypot(ci_se[0], ci_se[-1]))
        rows.append({**base, "sii": fit.sii, "sii_lower": ci.sii_lower, "sii_upper": ci.sii_upper,
                     "rii": fit.rii, "rii_lower": ci.rii_lower, "rii_upper": ci.rii_upper,
                     "intercept": fit.intercept, "gap": gap, "gap_lower": gap - _Z95 * gap_se,
                     "gap_upper": gap + _Z95 * gap_se, "disadvantage_gap": sign * fit.sii,
                     "gap_se": slope_index_se(n, null_var), "events": float(o.sum()),
                     "not_assessed_reason": None})
    schema = {"sii": pl.Float64, "sii_lower": pl.Float64, "sii_upper": pl.Float64, "rii": pl.Float64,
              "rii_lower": pl.Float64, "rii_upper": pl.Float64, "intercept": pl.Float64, "gap": pl.Float64,
              "gap_lower": pl.Float64, "gap_upper": pl.Float64, "disadvantage_gap": pl.Float64,
              "gap_se": pl.Float64, "events": pl.Float64, "patients": pl.Float64, "not_assessed_reason": pl.String,
              "parent_code": pl.String}
    frame = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
    for name, dtype in schema.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(name))
    national_gap = frame.filter(pl.col("level") == "national")["disadvantage_gap"]
    d0 = float(national_gap[0]) if national_gap.len() and national_gap[0] is not None else np.nan
    parts, od_trust = [], None
    for level in frame["level"].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("level") == level)
        d = part["disadvantage_gap"].fill_null(np.nan).to_numpy()
        s = part["gap_se"].fill_null(np.nan).to_numpy()
        ok = (np.isfinite(d) & np.isfinite(s)) if level != "national" else np.zeros(part.height, dtype=bool)
        a = assess_gaps(d, s, ok, national_gap=d0, options=options)
        if level == "trust":
            od_trust = a.overdispersion
        cols = {"national_gap": np.full(part.height, d0), "z": a.z, "p_value": a.p_value, "q_value": a.q_value,
                "status": a.status.astype(str), "phi": np.full(part.height, a.overdispersion.phi),
                "tau2": np.full(part.height, a.overdispersion.tau2),
                "overdispersion_applied": np.full(part.height, a.overdispersion.applied),
                "overdispersion_note": np.full(part.height, a.overdispersion.reason, dtype=object),
                "method": np.full(part.height, a.method, dtype=object)}
        names = ["alert", "alarm"]
        for i, c in enumerate(options.limits):
            key = names[i] if i < 2 else coverage_label(c)
            cols[f"lower_{key}"] = np.where(ok, a.limits[c][0], np.nan)
            cols[f"upper_{key}"] = np.where(ok, a.limits[c][1], np.nan)
        reason = part["not_assessed_reason"].to_list()
        if level == "national":
            reason = ["national reference"] * part.height
        parts.append(part.with_columns(*[pl.Series(k, v.tolist() if v.dtype == object else v)
                                         for k, v in cols.items()],
                                       pl.Series("not_assessed_reason", reason, dtype=pl.String)))
    out = pl.concat(parts, how="diagonal_relaxed").with_columns(
        pl.col("status").cast(STATUS_ENUM),
        pl.col("status").map_elements(gap_status_label, return_dtype=pl.String).alias("status_label"),
        pl.lit(spec.id).alias("indicator_id"), pl.lit(spec.title).alias("indicator_title"),
        pl.lit(spec.tumour_site).alias("tumour_site"), pl.lit(groups["breakdown"][0]).alias("breakdown"),
        pl.lit(label).alias("breakdown_label"), pl.lit(spec.better).alias("better"),
        pl.lit(spec.multiplier).alias("multiplier"), pl.lit(risk_adjusted).alias("risk_adjusted"),
        pl.lit(k).alias("n_groups"))
    first = ["indicator_id", "indicator_title", "tumour_site", "breakdown", "breakdown_label", "level", "unit_code",
             "unit_name", "parent_code", "patients", "events", "most_group", "least_group", "sii", "sii_lower",
             "sii_upper", "rii", "rii_lower", "rii_upper", "gap", "gap_lower", "gap_upper", "disadvantage_gap",
             "gap_se", "national_gap", "lower_alert", "upper_alert", "lower_alarm", "upper_alarm", "z", "p_value",
             "q_value", "status", "status_label"]
    return out.select(first + [c for c in out.columns if c not in first]), od_trust


def run_inequalities(loaded: LoadedCatalogue, *, data: Mapping[str, str | Path] | None = None,
                     only: Sequence[str] | None = None, datasets: Mapping[str, LoadedDataset] | None = None,
                     units: Units | None = None) -> InequalityRun:
    """Every indicator's breakdowns (the companion tables to the main results)."""
    cat = loaded.catalogue
    if datasets is None or units is None:
        units, datasets = load_all(loaded, data=data, only=only)
    results: dict[tuple[str, str], InequalityResult] = {}
    skipped: dict[str, str] = {}
    for spec in cat.indicators:
        if only is not None and spec.id not in only:
            continue
        ds = datasets.get(spec.dataset)
        if ds is None:
            continue
        wanted = breakdowns_for(spec, cat.breakdowns, ds.frame.columns)
        if not wanted:
            continue
        if not _is_supported(spec):
            skipped[spec.id] = (f"inequality breakdowns are computed for proportions and risk-adjusted binary "
                                f"outcomes; {spec.id} is a {spec.statistic}")
            continue
        ds_spec = cat.datasets[spec.dataset]
        for b in wanted:
            results[(spec.id, b.column)] = indicator_inequalities(
                spec, loaded.options(spec), ds, units, b, unit_column=ds_spec.unit_column or cat.units.code,
                aggregate=is_aggregate(spec, cat.datasets))
    return InequalityRun(results, skipped)


# ------------------------------------------------------------------ words and sharing


def gap_sentence(unit: Mapping[str, object], national: Mapping[str, object], *, title: str,
                 multiplier: float) -> str:
    """'In Kesdale, people in the most deprived fifth were 9 points less likely ...' for one gap row."""
    name = unit.get("unit_name") or unit.get("unit_code")
    label = str(unit.get("breakdown_label") or "group")
    if unit.get("status") == "not_assessed" or unit.get("gap") is None:
        reason = unit.get("not_assessed_reason") or "not enough data"
        return f"{title} by {label}: not assessed for {name} ({reason})."

    def words(gap: float) -> str:
        pts = abs(gap) * multiplier
        unit_word = "points" if multiplier == 100 else ""
        amount = f"{pts:.1f} {unit_word}".strip() if multiplier == 100 else f"{abs(gap):.3g}"
        if abs(gap) * multiplier < 0.05:
            return "about as likely"
        return f"{amount} {'more' if gap > 0 else 'less'} likely"

    gap, nat_gap = float(unit["gap"]), float(national.get("gap") or 0.0)
    most, least = unit.get("most_group"), unit.get("least_group")
    text = (f"In {name}, for {title.lower()}, people in the most disadvantaged group ({label} {most}) were "
            f"{words(gap)} than those in the least ({label} {least}); nationally they were {words(nat_gap)}")
    status = str(unit.get("status"))
    if status == "within":
        return f"{text}. This gap is within the range expected from chance."
    return f"{text}. This gap is {gap_status_label(status)}."


def inequalities_for_sharing(groups: pl.DataFrame, gaps: pl.DataFrame,
                             rule: SuppressionSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Disclosure control for the companion tables, on screen and in exports.

    Group cells follow ``export.suppress`` (counts in [min_count, max_count] shown as the symbol, their
    values and limits blanked), with secondary suppression within each unit (the groups add up to the
    unit's total, shown in the main results) and within each group (the trusts add up to the national
    group). A unit's gap measures are a weighted sum of its group values, so with the other groups shown
    they would give a suppressed count back: where any of the unit's groups is suppressed, its gap
    numbers and status are not shown either (``suppressed`` says so).
    """
    from audit_metrics import export

    if groups.height == 0:
        return groups, gaps
    safe = export.suppress(groups, rule)
    safe = export.suppress_complements(safe, rule, by=["indicator_id", "breakdown", "level", "unit_code"])
    safe = export.suppress_complements(safe, rule, by=["indicator_id", "breakdown", "level", "group"])
    if gaps.height == 0:
        return safe, gaps
    hidden = (safe.filter(pl.col("suppressed"), pl.col("group") != NOT_RECORDED)
              .select("indicator_id", "breakdown", "level", "unit_code").unique()
              .with_columns(pl.lit(True).alias("_hide")))
    numbers = ["sii", "sii_lower", "sii_upper", "rii", "rii_lower", "rii_upper", "intercept", "gap", "gap_lower",
               "gap_upper", "disadvantage_gap", "gap_se", "z", "p_value", "q_value", "events",
               *[c for c in gaps.columns if c.startswith(("lower_al", "upper_al"))]]
    out = gaps.join(hidden, on=["indicator_id", "breakdown", "level", "unit_code"], how="left").with_columns(
        pl.col("_hide").fill_null(False))
    out = out.with_columns(
        *[pl.when(pl.col("_hide")).then(None).otherwise(pl.col(c)).alias(c) for c in numbers if c in out.columns],
        pl.when(pl.col("_hide")).then(None).otherwise(pl.col("status")).alias("status"),
        pl.when(pl.col("_hide")).then(pl.lit(export.WITHHELD_LABEL)).otherwise(pl.col("status_label"))
        .alias("status_label"),
    ).rename({"_hide": "suppressed"})
    return safe, out


def write_inequalities(catalogue: str | Path, out: str | Path, *, data: Mapping[str, str | Path] | None = None,
                       only: Sequence[str] | None = None) -> list[Path]:
    """``audit-metrics run --inequalities-out``: the companion tables, small numbers suppressed as on screen.

    ``.xlsx`` gets two sheets (groups, gaps); ``.csv`` and ``.parquet`` write OUT (groups) and OUT_gaps.
    """
    from audit_metrics import export
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.exceptions import AuditMetricsError

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in {".csv", ".xlsx", ".parquet"}:
        msg = f"--inequalities-out {out.name}: use a .csv, .xlsx or .parquet file name"
        raise AuditMetricsError(msg)
    loaded = load_catalogue(catalogue, data=data)
    run = run_inequalities(loaded, data=data, only=only)
    groups, gaps = inequalities_for_sharing(run.groups(), run.gaps(), loaded.catalogue.defaults.suppression)
    if suffix == ".xlsx":
        export.write_workbook(out, {"groups": groups, "gaps": gaps})
        return [out]
    second = out.with_name(f"{out.stem}_gaps{out.suffix}")
    for frame, path in ((groups, out), (gaps, second)):
        if suffix == ".csv":
            path.write_bytes(export.to_csv_bytes(frame))
        else:
            frame.write_parquet(path)
    return [out, second]
