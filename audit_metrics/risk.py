"""Case-mix adjustment: a patient-level GLM built from declared covariates (never a formula string).

The design matrix is assembled in numpy from the catalogue's covariate declarations: continuous
(optionally a restricted/natural cubic spline, Harrell's parameterisation, knots at Harrell's
recommended quantiles) and categorical (treatment coding against an explicit or most-frequent
reference level). Missing values follow ``missing``: ``category`` adds an explicit "Missing" level
(categorical) or a missing-indicator column with mean imputation (continuous); ``complete_case``
drops the patient and counts them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import special

from audit_metrics.catalogue import CovariateSpec, RiskAdjustmentSpec

__all__ = [
    "Design",
    "RiskModel",
    "build_design",
    "c_statistic",
    "column_codes",
    "combined_groups",
    "covariate_patterns",
    "first_rows",
    "fit_risk_model",
    "hosmer_lemeshow",
    "hosmer_lemeshow_patterns",
    "spline_basis",
]

MISSING_LEVEL = "Missing"
# Harrell (Regression Modeling Strategies, table 2.3): knot quantiles by number of knots
_KNOT_QUANTILES = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}


def spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted (natural) cubic spline basis: x plus k-2 non-linear terms, linear beyond the ends."""
    k = knots.size
    t_last, t_pen = knots[-1], knots[-2]
    scale = (t_last - knots[0]) ** 2
    cols = [x]

    def cube(v: np.ndarray) -> np.ndarray:
        return np.maximum(v, 0) ** 3

    for j in range(k - 2):
        term = (cube(x - knots[j])
                - cube(x - t_pen) * (t_last - knots[j]) / (t_last - t_pen)
                + cube(x - t_last) * (t_pen - knots[j]) / (t_last - t_pen))
        cols.append(term / scale)
    return np.column_stack(cols)


@dataclass(frozen=True)
class Design:
    """A numeric design matrix with its column names and how each covariate was coded."""

    matrix: np.ndarray
    names: tuple[str, ...]
    rows: np.ndarray                 # boolean mask of input rows kept
    coding: dict[str, dict[str, object]] = field(default_factory=dict)
    completeness: dict[str, float] = field(default_factory=dict)


def _is_categorical(cov: CovariateSpec, spec: RiskAdjustmentSpec, series: pl.Series) -> bool:
    if cov.type is not None:
        return cov.type == "categorical"
    return cov.name in spec.categorical or not series.dtype.is_numeric()


def build_design(frame: pl.DataFrame, spec: RiskAdjustmentSpec, weights: np.ndarray | None = None) -> Design:
    """Build the design matrix (with intercept) for the declared covariates of ``frame``.

    ``weights``: each row stands for that many patients (distinct covariate patterns with their counts,
    see ``covariate_patterns``); references, completeness, means and knots are then those of the patients.
    """
    n = frame.height
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    keep = np.ones(n, dtype=bool)
    completeness: dict[str, float] = {}
    for cov in spec.covariates:
        missing = frame[cov.name].is_null().to_numpy()
        completeness[cov.name] = ((1 - missing.mean() if weights is None else 1 - w[missing].sum() / w.sum())
                                  if n else np.nan)
        if spec.missing == "complete_case":
            keep &= ~missing
    kept_w = w[keep]
    blocks: list[np.ndarray] = [np.ones((int(keep.sum()), 1))]
    names: list[str] = ["(intercept)"]
    coding: dict[str, dict[str, object]] = {}
    for cov in spec.covariates:
        series = frame[cov.name].filter(pl.Series(keep))
        if _is_categorical(cov, spec, series):
            values = series.cast(pl.String).fill_null(MISSING_LEVEL)
            counts = (values.value_counts() if weights is None else
                      values.to_frame().with_columns(pl.Series("__w", kept_w))
                      .group_by(values.name).agg(pl.col("__w").sum().alias("count"))).sort(values.name)
            levels = counts[values.name].to_list()
            if cov.reference is not None and str(cov.reference) in levels:
                ref = str(cov.reference)
            else:  # most frequent; ties broken by the first level in sort order
                ref = str(counts.sort("count", descending=True, maintain_order=True)[values.name][0])
            others = [lv for lv in levels if lv != ref]
            blocks.append(values.to_frame().select([(pl.col(values.name) == lv).cast(pl.Float64).alias(lv)
                                                     for lv in others]).to_numpy()
                          if others else np.empty((values.len(), 0)))
            names += [f"{cov.name}[{lv}]" for lv in others]
            coding[cov.name] = {"type": "categorical", "reference": ref, "levels": list(levels)}
        else:
            x = series.cast(pl.Float64).to_numpy()
            miss = np.isnan(x)
            if weights is None:
                mean = float(np.nanmean(x)) if (~miss).any() else 0.0
            else:
                mean = float(np.sum(x[~miss] * kept_w[~miss]) / kept_w[~miss].sum()) if (~miss).any() else 0.0
            x = np.where(miss, mean, x)
            if cov.spline_knots:
                q = _KNOT_QUANTILES.get(cov.spline_knots) or tuple(np.linspace(0.05, 0.95, cov.spline_knots))
                seen = x[~miss] if (~miss).any() else x
                if weights is not None:  # the patients' values, each as often as it occurs
                    seen = np.repeat(seen, (kept_w[~miss] if (~miss).any() else kept_w).astype(np.int64))
                knots = np.unique(np.quantile(seen, q))
                basis = spline_basis(x, knots) if knots.size >= 3 else x[:, None]
                blocks.append(basis)
                names += [cov.name] + [f"{cov.name}_spline{j + 1}" for j in range(basis.shape[1] - 1)]
                coding[cov.name] = {"type": "spline", "knots": knots.tolist()}
            else:
                blocks.append(x[:, None])
                names.append(cov.name)
                coding[cov.name] = {"type": "continuous"}
            if miss.any():
                blocks.append(miss.astype(float)[:, None])
                names.append(f"{cov.name}[{MISSING_LEVEL}]")
                coding[cov.name]["missing_indicator"] = True
    return Design(np.column_stack(blocks), tuple(names), keep, coding, completeness)


def c_statistic(y: np.ndarray, p: np.ndarray, trials: np.ndarray | None = None) -> float:
    """Area under the ROC curve (Mann-Whitney form, ties counted half).

    With ``trials``, each row is a covariate pattern: ``y`` events among ``trials`` patients who share
    the predicted risk ``p``. The Mann-Whitney count is then summed over the distinct risks (every
    term a multiple of 1/2, exact in floating point), giving the patient-level value.
    """
    if trials is not None:
        events = np.asarray(y, dtype=float)
        others = np.asarray(trials, dtype=float) - events
        n1, n0 = events.sum(), others.sum()
        if n1 == 0 or n0 == 0:
            return float("nan")
        levels, where = np.unique(p, return_inverse=True)
        e = np.bincount(where.ravel(), weights=events, minlength=levels.size)
        o = np.bincount(where.ravel(), weights=others, minlength=levels.size)
        below = np.cumsum(o) - o  # non-events with a lower predicted risk
        return float(np.sum(e * (below + 0.5 * o)) / (n1 * n0))
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = pl.Series(p).rank("average").to_numpy()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10) -> tuple[pl.DataFrame, float, int, float]:
    """Calibration by tenths of predicted risk and the Hosmer-Lemeshow test (df = groups - 2)."""
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, groups)
    rows = []
    chi2 = 0.0
    for i, idx in enumerate(bins, start=1):
        if idx.size == 0:
            continue
        o, e, n = float(y[idx].sum()), float(p[idx].sum()), idx.size
        rows.append({"group": i, "patients": n, "observed": o, "expected": e,
                     "mean_predicted": e / n, "observed_rate": o / n})
        if 0 < e < n:
            chi2 += (o - e) ** 2 / (e * (1 - e / n))
    df = max(len(rows) - 2, 1)
    return pl.DataFrame(rows), chi2, df, float(special.chdtrc(df, chi2))


def hosmer_lemeshow_patterns(y: np.ndarray, pattern: np.ndarray, risk: np.ndarray,
                             groups: int = 10) -> tuple[pl.DataFrame, float, int, float]:
    """:func:`hosmer_lemeshow` for patients who share their covariate pattern's risk, without sorting every patient.

    ``y`` is each patient's outcome, ``pattern`` their pattern's index and ``risk`` each pattern's predicted risk.
    The patients' stable sort by risk puts equal risks in patient order, so whole runs of equal risk are placed by
    sorting the distinct risks alone; only a run that a tenth's boundary cuts is read patient by patient (which
    of its patients, and their outcomes, fall on each side). Observed counts and group sizes are exactly those of
    :func:`hosmer_lemeshow`; expected counts are risk x patients per run (the same sums, added in another order).
    """
    m = y.size
    patients = np.bincount(pattern, minlength=risk.size)
    used = np.flatnonzero(patients)  # patterns with patients
    values, run_of = np.unique(risk[used], return_inverse=True)  # runs of equal risk, ascending: patterns only
    run_of = run_of.reshape(-1)
    # per run, summed over its patterns (whole numbers: exact in any order)
    sizes = np.bincount(run_of, weights=patients[used], minlength=values.size).astype(np.int64)
    events = np.bincount(run_of, weights=np.bincount(pattern, weights=y, minlength=risk.size)[used],
                         minlength=values.size)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    per = m // groups + (np.arange(groups) < m % groups)  # the sizes np.array_split gives the sorted patients
    bounds = np.concatenate([[0], np.cumsum(per)])
    rows = []
    chi2 = 0.0
    members: dict[int, np.ndarray] = {}
    for i in range(groups):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if b <= a:
            continue
        first = int(np.searchsorted(ends, a, side="right"))  # the run holding sorted position a
        last = int(np.searchsorted(starts, b, side="left")) - 1  # the run holding position b - 1
        o = e = 0.0
        for run in (first, last) if last > first else (first,):
            lo, hi = max(a, int(starts[run])), min(b, int(ends[run]))
            if lo == starts[run] and hi == ends[run]:
                o += float(events[run])
            else:  # cut by a boundary: its patients in their own order
                if run not in members:
                    members[run] = np.flatnonzero(np.isin(pattern, used[run_of == run]))
                o += float(y[members[run][lo - int(starts[run]):hi - int(starts[run])]].sum())
            e += float(values[run]) * (hi - lo)
        if last > first + 1:
            o += float(events[first + 1:last].sum())
            e += float(np.sum(values[first + 1:last] * sizes[first + 1:last]))
        n = b - a
        rows.append({"group": i + 1, "patients": n, "observed": o, "expected": e,
                     "mean_predicted": e / n, "observed_rate": o / n})
        if 0 < e < n:
            chi2 += (o - e) ** 2 / (e * (1 - e / n))
    df = max(len(rows) - 2, 1)
    return pl.DataFrame(rows), chi2, df, float(special.chdtrc(df, chi2))


@dataclass(frozen=True)
class RiskModel:
    """A fitted case-mix model and its checks."""

    indicator_id: str
    family: str
    n: int
    events: float
    coefficients: pl.DataFrame       # term, estimate, std_error, odds_ratio, ci_lower, ci_upper, p_value
    c_statistic: float
    calibration: pl.DataFrame
    hosmer_lemeshow_chi2: float
    hosmer_lemeshow_df: int
    hosmer_lemeshow_p: float
    converged: bool
    separation: bool
    excluded_incomplete: int
    missing: str
    coding: dict[str, dict[str, object]]
    completeness: dict[str, float]
    warnings: tuple[str, ...]

    def summary(self) -> str:
        return (f"{self.indicator_id}: n={self.n:,}, events={self.events:,.0f}, c={self.c_statistic:.3f}, "
                f"HL p={self.hosmer_lemeshow_p:.3g}, converged={self.converged}")


@dataclass(frozen=True)
class GLMFit:
    """Maximum-likelihood GLM fit (canonical link) with Wald inference."""

    params: np.ndarray
    bse: np.ndarray
    pvalues: np.ndarray
    fittedvalues: np.ndarray
    deviance: float
    df_resid: int
    converged: bool
    iterations: int


def _collapse(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Patients with identical covariate rows, pooled: (rows, events, trials, row -> group index).

    For a binary outcome the binomial likelihood of the pooled counts equals the patient-level
    likelihood, so the estimates, standard errors and deviance are unchanged.
    """
    names = [f"c{j}" for j in range(x.shape[1])]
    groups = (pl.DataFrame(x, schema=names)
              .with_columns(pl.Series("__y", y), pl.int_range(pl.len(), dtype=pl.Int64).alias("__i"))
              .group_by(names).agg(pl.col("__y").sum(), pl.len().alias("__m"), pl.col("__i")))
    inverse = np.empty(x.shape[0], dtype=np.int64)
    members = groups.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("g"), "__i").explode("__i")
    inverse[members["__i"].to_numpy()] = members["g"].to_numpy()
    return (groups.select(names).to_numpy(), groups["__y"].to_numpy().astype(float),
            groups["__m"].to_numpy().astype(float), inverse)


def fit_glm(matrix: np.ndarray, y: np.ndarray, family: str = "binomial", *, tol: float = 1e-10,
            max_iter: int = 50, trials: np.ndarray | None = None) -> tuple[GLMFit, bool, bool]:
    """Fit a logistic (logit link) or Poisson (log link) GLM by iteratively reweighted least squares.

    Each step solves the normal equations XᵀWX β = XᵀWz by Cholesky (one BLAS pass over the data),
    with step-halving whenever a step would increase the deviance (as R's glm.fit). For logistic
    models, patients with identical covariate rows are first pooled into binomial counts (same
    likelihood), which shrinks national cohorts several-fold. The result is the maximum-likelihood
    estimate statsmodels and R's glm() find (tests compare all three). Converged when the relative
    change in deviance is below ``tol`` (R uses 1e-8). Returns (fit, converged, separation suspected).

    ``trials`` (binomial): the rows are already pooled, ``y`` holding each row's events out of ``trials``
    patients; the fitted values are then per row (the patients' shared risk).
    """
    x_full = np.ascontiguousarray(matrix, dtype=float)
    y_full = np.asarray(y, dtype=float)
    n_full, k = x_full.shape
    binomial = family == "binomial"
    inverse = None
    x, events = x_full, y_full
    if trials is not None:
        trials = np.asarray(trials, dtype=float)
        n_full = int(trials.sum())
    else:
        trials = np.ones(n_full)
        if binomial and n_full > 2000:
            cx, ce, ct, inv = _collapse(x_full, y_full)
            if cx.shape[0] < 0.8 * n_full:
                x, events, trials, inverse = cx, ce, ct, inv

    def mean_of(eta: np.ndarray) -> np.ndarray:
        return special.expit(eta) if binomial else np.exp(np.minimum(eta, 700))

    def deviance_of(mu: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            if binomial:
                mu = np.clip(mu, 1e-300, 1 - 1e-16)
                return float(-2 * np.sum(events * np.log(mu) + (trials - events) * np.log1p(-mu)))
            return float(2 * np.sum(np.where(events > 0, events * np.log(events / mu), 0.0) - (events - mu)))

    # start as R's glm.fit does: mu = (y + 1/2)/(m + 1) (binomial) or y + 1/10 (Poisson)
    mu = (events + 0.5) / (trials + 1) if binomial else events + 0.1
    eta = special.logit(mu) if binomial else np.log(mu)
    beta = np.zeros(k)
    dev_old = np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        var = np.clip(trials * mu * (1 - mu) if binomial else mu, 1e-12, None)
        z = eta + (events - (trials * mu if binomial else mu)) / var
        xw = x * var[:, None]
        xtwx = x.T @ xw
        xtwz = xw.T @ z
        try:
            factor = np.linalg.cholesky(xtwx)
            new = np.linalg.solve(factor.T, np.linalg.solve(factor, xtwz))
        except np.linalg.LinAlgError:  # collinear columns: least-squares solution
            new = np.linalg.lstsq(xtwx, xtwz, rcond=None)[0]
        eta_new = x @ new
        dev = deviance_of(mean_of(eta_new))
        halvings = 0
        # step-halving (as R's glm.fit): never accept a step that makes the deviance worse
        while iterations > 1 and (not np.isfinite(dev) or dev > dev_old * (1 + 1e-12)) and halvings < 30:
            new = (beta + new) / 2
            eta_new = x @ new
            dev = deviance_of(mean_of(eta_new))
            halvings += 1
        beta, eta, mu = new, eta_new, mean_of(eta_new)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    var = np.clip(trials * mu * (1 - mu) if binomial else mu, 1e-12, None)
    xtwx = x.T @ (x * var[:, None])
    cov = np.linalg.pinv(xtwx)
    bse = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        pvalues = 2 * special.ndtr(-np.abs(beta / bse))
    fitted = mu[inverse] if inverse is not None else mu
    separation = False
    if binomial:  # share of patients with a fitted risk of (almost) 0 or 1
        extreme = float(np.sum(trials * ((mu < 1e-8) | (mu > 1 - 1e-8)))) / max(n_full, 1)
        separation = bool(np.any(np.abs(beta[1:]) > 15) or np.any(bse[1:] > 100) or extreme > 0.01)
    fit = GLMFit(beta, bse, pvalues, fitted, dev, n_full - k, converged, iterations)
    return fit, converged, separation


def impute_chained(frame: pl.DataFrame, outcome: np.ndarray, spec: RiskAdjustmentSpec, *,
                   seed: int = 20261122, iterations: int = 10) -> list[pl.DataFrame]:
    """``spec.imputations`` completed copies of the covariates by chained equations (MICE).

    Each incomplete covariate is imputed in turn from all the others and the outcome by predictive
    mean matching (statsmodels ``MICEData``), so imputed values are always values seen in the data
    (categorical levels included, via their codes). Columns are renamed to generated identifiers
    before statsmodels builds its internal regression formulas: no catalogue or extract text is
    ever parsed as a formula.
    """
    from statsmodels.imputation.mice import MICEData

    names = [c.name for c in spec.covariates]
    encoded: dict[str, np.ndarray] = {}
    levels: dict[str, list[str]] = {}
    for cov in spec.covariates:
        series = frame[cov.name]
        if _is_categorical(cov, spec, series):
            text = series.cast(pl.String)
            levels[cov.name] = sorted(text.drop_nulls().unique().to_list())
            code = {lv: float(i) for i, lv in enumerate(levels[cov.name])}
            encoded[cov.name] = text.replace_strict(code, default=None, return_dtype=pl.Float64).to_numpy()
        else:
            encoded[cov.name] = series.cast(pl.Float64).to_numpy()
    safe = {name: f"v{i}" for i, name in enumerate(names)}
    import pandas as pd

    data = pd.DataFrame({safe[n]: encoded[n] for n in names})
    data["outcome"] = np.asarray(outcome, dtype=float)
    data = data[[c for c in data.columns if data[c].notna().any()]]
    rng = np.random.default_rng(seed)
    imp = MICEData(data, rng=rng)
    completed: list[pl.DataFrame] = []
    for _ in range(spec.imputations):
        imp.update_all(iterations)
        done = imp.data
        cols = {}
        for n in names:
            values = done[safe[n]].to_numpy() if safe[n] in done.columns else encoded[n]
            if n in levels:
                idx = np.clip(np.round(values), 0, len(levels[n]) - 1).astype(int)
                cols[n] = pl.Series(n, np.asarray(levels[n], dtype=object)[idx].tolist(), dtype=pl.String)
            else:
                cols[n] = pl.Series(n, values, dtype=pl.Float64)
        completed.append(pl.DataFrame(cols))
    return completed


def _fit_imputed(frame: pl.DataFrame, y: np.ndarray, spec: RiskAdjustmentSpec) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, bool, bool, Design]:
    """Fit on each imputed copy; pool by Rubin's rules (coefficients) and average the risks."""
    reference = {}
    for cov in spec.covariates:
        if _is_categorical(cov, spec, frame[cov.name]):
            counts = frame[cov.name].cast(pl.String).drop_nulls().value_counts().sort(
                ["count", cov.name], descending=[True, False])
            reference[cov.name] = cov.reference if cov.reference is not None else counts[cov.name][0]
    fixed = spec.model_copy(update={"missing": "category", "covariates": [
        c.model_copy(update={"reference": reference.get(c.name, c.reference)}) for c in spec.covariates]})
    betas, variances, risks = [], [], []
    converged, separation = True, False
    design = None
    for completed in impute_chained(frame, y, spec):
        design = build_design(completed, fixed)
        fit, ok, sep = fit_glm(design.matrix, y)
        betas.append(fit.params)
        variances.append(fit.bse**2)
        risks.append(fit.fittedvalues)
        converged &= ok
        separation |= sep
    m = len(betas)
    beta = np.mean(betas, axis=0)
    within = np.mean(variances, axis=0)
    between = np.var(betas, axis=0, ddof=1) if m > 1 else np.zeros_like(beta)
    total = within + (1 + 1 / m) * between  # Rubin (1987)
    assert design is not None
    observed = build_design(frame, spec.model_copy(update={"missing": "category"}))
    design = Design(design.matrix, design.names, np.ones(frame.height, dtype=bool), design.coding,
                    observed.completeness)
    return beta, np.sqrt(total), np.mean(risks, axis=0), converged, separation, design


def _column_code(series: pl.Series) -> np.ndarray:
    """``column_codes`` of one column."""
    n = series.len()
    if series.dtype == pl.String:
        return _text_code(series)
    if series.dtype.is_integer() or series.dtype == pl.Boolean:
        whole = series.cast(pl.Int64)
    else:
        whole = series.rank("dense").cast(pl.Int64)
    lowest, highest = whole.min(), whole.max()
    if lowest is None:  # every value blank
        return np.zeros(n, dtype=np.int64)
    if highest - lowest > 4 * n + 1024 or lowest <= -(2**63):  # widely spread whole numbers: their ranks instead
        whole, lowest = series.rank("dense").cast(pl.Int64), 1
    if whole.null_count():
        whole = whole.fill_null(lowest - 1)
    codes = whole.to_numpy(writable=True)  # a copy of polars' memory, changed in place: one new array
    codes -= lowest - 1  # the least value 1, a blank 0
    return codes


def _text_code(series: pl.Series) -> np.ndarray:
    """Text coded 1, 2, ... in the order of the text itself (a blank 0), through polars' categories.

    polars numbers categories across the process: strings cast before keep their numbers, and two indicators
    run at once cast at once. The covariate patterns come in the order of their codes and the model's sums
    follow that order, so codes in polars' numbering made results differ in the last digits from run to run.
    """
    categories = series.cast(pl.Categorical)
    present = categories.unique().drop_nulls()  # a few distinct values
    numbers = present.to_physical().cast(pl.Int64).to_numpy()
    lookup = np.zeros(int(numbers.max()) + 2 if numbers.size else 1, dtype=np.int64)  # the last slot: blanks
    lookup[numbers[present.cast(pl.String).arg_sort().to_numpy()]] = np.arange(1, numbers.size + 1)
    return lookup[categories.to_physical().cast(pl.Int64).fill_null(lookup.size - 1).to_numpy()]


def _without_gaps(codes: np.ndarray) -> np.ndarray:
    """``codes`` renumbered 0, 1, 2, ... in the same order when they leave values unused, else as they are."""
    if not codes.size:
        return codes
    present = np.flatnonzero(np.bincount(codes))
    if present.size == present[-1] + 1:
        return codes
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    lookup[present] = np.arange(present.size)
    return lookup[codes]


def column_codes(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each column's values as whole-number codes: 0 for a blank, then 1, 2, ... (at most 4 per row, plus 1,025).

    Equal values get equal codes, different values different codes; whole numbers and text keep their order
    (text by ``_text_code``: never in polars' process-wide category numbers, which depend on what was cast
    before). The codes may leave
    numbers unused (whole numbers with gaps between them): ``combined_groups`` closes the gaps only where
    the combinations would not fit one count per possible key.
    """
    return {name: _column_code(frame[name]) for name in dict.fromkeys(names)}


def combined_groups(codes: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows grouped by several columns' codes (``column_codes``): (row -> group, rows per group), or None.

    The groups are numbered in the order of the codes read last column first (so renumbering a column's
    codes in the same order changes nothing); None when there are too many combinations for one integer key
    (then group the columns themselves).
    """
    if n and math.prod(int(c.max()) + 1 for c in codes) > 8 * n + 2**20:  # close the codes' gaps first
        codes = [_without_gaps(c) for c in codes]
    key = np.array(codes[0], dtype=np.int64) if codes else np.zeros(n, dtype=np.int64)
    step = np.empty(n if len(codes) > 1 else 0, dtype=np.int64)  # one scratch array, not one per column
    room = int(key.max()) + 1 if n else 1
    for column in codes[1:]:
        size = int(column.max()) + 1 if n else 1
        if room * size >= 2**62:
            return None
        key += np.multiply(column, room, out=step)
        room *= size
    if room <= 8 * n + 2**20:  # a count per possible key: no sort
        counts = np.bincount(key, minlength=room)
        present = np.flatnonzero(counts)
        lookup = np.zeros(room, dtype=np.int64)
        lookup[present] = np.arange(present.size)
        return lookup[key], counts[present]
    inverse = (pl.Series(key).rank("dense").cast(pl.Int64) - 1).to_numpy()
    return inverse, np.bincount(inverse)


def first_rows(inverse: np.ndarray, groups: int) -> np.ndarray:
    """One row of each group (any: every row of a group shows its values)."""
    first = np.empty(groups, dtype=np.int64)
    first[inverse] = np.arange(inverse.size)
    return first


def covariate_patterns(frame: pl.DataFrame, names: list[str], *, codes: Mapping[str, np.ndarray] | None = None
                       ) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The distinct rows of the raw covariate columns: (patterns, patients per pattern, row -> pattern).

    Grouping the raw columns (a few small codes per patient) comes before any dummy coding, so the
    design matrix is built for the patterns only, never for every patient. A blank is a value of its own.
    ``codes``: the columns' ``column_codes``, when already computed.
    """
    codes = column_codes(frame, names) if codes is None else codes
    grouped = combined_groups([codes[name] for name in names], frame.height)
    if grouped is None:
        return _patterns_by_group(frame, names)
    inverse, sizes = grouped
    first = first_rows(inverse, sizes.size)
    # column by column: an eager select of a frame read in parts copies the columns into one part first
    return pl.DataFrame([frame[name].gather(first) for name in names]), sizes, inverse


def _patterns_by_group(frame: pl.DataFrame, names: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    groups = (frame.select(names).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("__i"))
              .group_by(names, maintain_order=True).agg(pl.col("__i")))
    inverse = np.empty(frame.height, dtype=np.int64)
    members = groups.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("g"), "__i").explode("__i")
    inverse[members["__i"].to_numpy()] = members["g"].to_numpy()
    return groups.select(names), groups["__i"].list.len().to_numpy(), inverse


def fit_risk_model(frame: pl.DataFrame, outcome: np.ndarray, spec: RiskAdjustmentSpec, indicator_id: str, *,
                   patterns: tuple[pl.DataFrame, np.ndarray, np.ndarray] | None = None,
                   ) -> tuple[RiskModel, np.ndarray, np.ndarray]:
    """Fit the logistic model on the cohort; return the model, predicted risks and rows kept.

    In a large cohort the model is fitted on the distinct covariate patterns with their event counts
    (the binomial likelihood of the pooled counts equals the patients' Bernoulli likelihood, so the
    estimates, standard errors and deviance are the same); each patient gets their pattern's risk.
    ``patterns``: ``covariate_patterns`` of ``frame`` and the covariates, when already computed.
    """
    if spec.missing == "impute":
        y = np.asarray(outcome, dtype=float)
        params, bse, p, converged, separation, design = _fit_imputed(frame, y, spec)
        pvalues = 2 * special.ndtr(-np.abs(params / bse))
        auc = c_statistic(y.astype(bool), p)
        calibration, hl, hl_df, hl_p = hosmer_lemeshow(y, p)
    else:
        y_all = np.asarray(outcome, dtype=float)
        if frame.height <= 2000:
            patterns, sizes, inverse = None, None, None
        else:
            patterns, sizes, inverse = patterns or covariate_patterns(frame, [c.name for c in spec.covariates])
        if patterns is not None and patterns.height < 0.8 * frame.height:
            assert sizes is not None and inverse is not None
            pooled = build_design(patterns, spec, weights=sizes)
            events = np.bincount(inverse, weights=y_all, minlength=patterns.height)
            res, converged, separation = fit_glm(pooled.matrix, events[pooled.rows], trials=sizes[pooled.rows])
            risk = np.full(patterns.height, np.nan)
            risk[pooled.rows] = res.fittedvalues
            every = bool(pooled.rows.all())  # (usual) no copies of the patients' arrays
            rows = np.ones(frame.height, dtype=bool) if every else pooled.rows[inverse]
            design = Design(pooled.matrix, pooled.names, rows, pooled.coding, pooled.completeness)
            kept_pattern = inverse if every else inverse[rows]
            p = risk[kept_pattern]
            y = y_all if every else y_all[rows]
            auc = c_statistic(events[pooled.rows], res.fittedvalues, trials=sizes[pooled.rows])
            calibration, hl, hl_df, hl_p = hosmer_lemeshow_patterns(y, kept_pattern, risk)
        else:
            design = build_design(frame, spec)
            y = y_all[design.rows]
            res, converged, separation = fit_glm(design.matrix, y)
            p = np.asarray(res.fittedvalues)
            auc = c_statistic(y.astype(bool), p)
            calibration, hl, hl_df, hl_p = hosmer_lemeshow(y, p)
        params, bse, pvalues = np.asarray(res.params), np.asarray(res.bse), np.asarray(res.pvalues)
    z = special.ndtri(0.975)
    with np.errstate(over="ignore"):  # a huge coefficient is reported as separation below
        coefs = pl.DataFrame({
            "term": list(design.names), "estimate": params, "std_error": bse,
            "odds_ratio": np.exp(params), "ci_lower": np.exp(params - z * bse),
            "ci_upper": np.exp(params + z * bse), "p_value": pvalues,
        })
    notes: list[str] = []
    if not converged:
        notes.append("the risk model did not converge: expected counts are unreliable")
    if separation:
        extreme = [t for t, b, se in zip(design.names, params, bse, strict=True)
                   if t != "(intercept)" and (abs(b) > 10 or se > 100)]
        which = f" ({', '.join(extreme)})" if extreme else ""
        notes.append(f"possible separation{which}: a covariate level with (almost) no events or no "
                     "non-events; consider merging rare levels")
    if auc < 0.6:
        notes.append(f"weak risk model: c-statistic {auc:.2f} < 0.6, so adjustment changes little")
    excluded = int((~design.rows).sum())
    if excluded:
        notes.append(f"{excluded:,} patients with incomplete case-mix excluded (complete-case analysis)")
    model = RiskModel(indicator_id, "binomial", int(y.size), float(y.sum()), coefs, auc, calibration,
                      hl, hl_df, hl_p, converged, separation, excluded, spec.missing, design.coding,
                      design.completeness, tuple(notes))
    return model, p, design.rows
