"""Issue 16: the faster paths compute the same numbers as the plain ones they replace.

Oracles: scipy.stats (binomial/beta-binomial/Poisson/negative-binomial log-likelihoods and quantiles,
an independent implementation); the single-coverage :func:`limits`, for the shortcuts that share work
between units of the same size or between coverages; and the cell-by-cell text conversion, for the
conversion of a column's distinct values.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from audit_metrics.funnel import distribution, limits, limits_by_coverage
from audit_metrics.io import _cast_text, _cast_text_column, _not_converted
from audit_metrics.overdispersion import (
    _canonical_groups,
    _canonical_units,
    _fit_units,
    _kept_units,
    _loglik_beta_binomial,
    _loglik_binomial,
    _loglik_negative_binomial,
    _loglik_poisson,
    fit_between_unit_variance,
)


def _repeated_units(seed: int, k: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Units whose sizes and counts repeat (many identical rows, as at national scale)."""
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 40, k).astype(float)
    o = rng.binomial(n.astype(int), 0.2).astype(float)
    return o, n


@pytest.mark.parametrize("same_mean", [True, False])
def test_merged_rows_give_the_scipy_beta_binomial_likelihood(same_mean: bool) -> None:
    """Merging identical (O, n, p) rows with weights leaves the log-likelihood ratio unchanged."""
    o, n = _repeated_units(1)
    p = np.full(o.size, 0.2) if same_mean else np.where(n > 20, 0.2, 0.25)
    u = _canonical_units(o, n, p)
    assert u.o.size < o.size / 2  # the merge did merge
    assert u.weight.sum() == o.size
    for rho in (1e-4, 0.01, 0.2):
        s = (1 - rho) / rho
        want = (stats.betabinom.logpmf(o, n, p * s, (1 - p) * s).sum() - stats.binom.logpmf(o, n, p).sum())
        got = _loglik_beta_binomial(rho, u) - _loglik_binomial(u)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_merged_rows_give_the_scipy_negative_binomial_likelihood() -> None:
    rng = np.random.default_rng(2)
    mu = rng.choice([2.0, 5.5, 11.0], 300)
    o = rng.poisson(mu).astype(float)
    u = _canonical_units(o, np.zeros_like(o), mu)
    assert u.o.size < o.size / 2
    for c in (1e-3, 0.05, 0.5):
        k = 1 / c
        want = stats.nbinom.logpmf(o, k, k / (k + mu)).sum() - stats.poisson.logpmf(o, mu).sum()
        got = _loglik_negative_binomial(c, u) - _loglik_poisson(u)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_fit_ignores_row_order_and_counts_each_listed_unit() -> None:
    """Order does not matter and a unit listed twice counts twice (the weights are counts)."""
    o, n = _repeated_units(3)
    p = np.full(o.size, 0.2)
    rho, lr = fit_between_unit_variance(o, n, p, kind="proportion")
    perm = np.random.default_rng(4).permutation(o.size)
    assert fit_between_unit_variance(o[perm], n[perm], p[perm], kind="proportion") == pytest.approx((rho, lr),
                                                                                                    rel=1e-9)
    rho2, lr2 = fit_between_unit_variance(np.tile(o, 2), np.tile(n, 2), np.tile(p, 2), kind="proportion")
    if rho > 0:
        assert lr2 == pytest.approx(2 * lr, rel=1e-6)  # same estimate, twice the evidence
        assert rho2 == pytest.approx(rho, rel=1e-6)


@pytest.mark.parametrize("means", ["same", "mixed", "same_once_kept"])
def test_kept_units_are_exactly_the_units_of_the_kept_rows(means: str) -> None:
    """The refit's units, derived from the first fit's (no second sort), equal sorting and merging the kept rows
    again, array for array and bit for bit; so the refit's estimate is the one it was."""
    o, n = _repeated_units(5)
    rng = np.random.default_rng(6)
    p = {"same": np.full(o.size, 0.2), "mixed": np.where(n > 20, 0.2, 0.25),
         "same_once_kept": np.where(o > 12, 0.3, 0.2)}[means]
    keep = rng.random(o.size) > 0.3
    if means == "same_once_kept":
        keep &= o <= 12  # every unit with the other mean is set aside: the kept means are all equal
    units, group = _canonical_groups(o, n, p)
    assert np.array_equal(units.o[group], o) and np.array_equal(units.n[group], n)  # each row's merged row
    derived, direct = _kept_units(units, group, keep), _canonical_units(o[keep], n[keep], p[keep])
    for name in direct._fields:
        a, b = getattr(derived, name), getattr(direct, name)
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), name
    assert _fit_units(derived, kind="proportion") == fit_between_unit_variance(o[keep], n[keep], p[keep],
                                                                               kind="proportion")


def test_a_refit_from_a_previous_estimate_finds_the_same_maximum() -> None:
    """A refit brackets near its start (fewer evaluations): the estimate is the fresh search's to its tolerance,
    from a start above or below the maximum or far from it."""
    rng = np.random.default_rng(7)
    n = rng.integers(20, 400, 600).astype(float)
    o = rng.binomial(n.astype(int), np.clip(rng.normal(0.2, 0.04, n.size), 0.01, 0.99)).astype(float)
    p = np.full(o.size, 0.2)
    fresh, lr = fit_between_unit_variance(o, n, p, kind="proportion")
    assert fresh > 0
    for start in (fresh * 0.9, fresh * 1.1, fresh / 40, fresh * 40, 1e-7):
        again = fit_between_unit_variance(o, n, p, kind="proportion", start=start)
        assert again == pytest.approx((fresh, lr), rel=1e-10)


@pytest.mark.parametrize(("statistic", "transform", "tau2"), [("proportion", "arcsine", 0.0),
                                                              ("proportion", "arcsine", 0.004),
                                                              ("ratio", "log", 0.0), ("ratio", "log", 0.05)])
def test_limits_by_coverage_equal_limits_at_each_coverage(statistic: str, transform: str, tau2: float) -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.uniform(3, 300, 500)) / (10 if statistic == "ratio" else 1)
    x[::7] = x[0]  # repeated sizes
    for target in (0.12, np.where(x > 10, 0.12, 0.3)):
        kw = {"statistic": statistic, "method": "exact", "transform": transform, "target": target, "tau2": tau2}
        both = limits_by_coverage(x, coverages=(0.95, 0.998), **kw)
        for c in (0.95, 0.998):
            lo, hi = limits(x, coverage=c, **kw)
            np.testing.assert_array_equal(both[c][0], lo)
            np.testing.assert_array_equal(both[c][1], hi)


@pytest.mark.parametrize("p", [0.001, 0.025, 0.5, 0.975, 0.999])
def test_quantile_search_matches_scipy_stats(p: float) -> None:
    """The continuity-corrected first guess changes only where the search starts, not where it ends."""
    n = np.arange(1, 3000, 7).astype(float)
    got = distribution(n, statistic="proportion", target=0.07).ppf(p)
    np.testing.assert_array_equal(got, stats.binom.ppf(p, n, 0.07))
    mu = np.linspace(0.05, 400, 300)
    got = distribution(mu, statistic="ratio", target=1.0, transform="log").ppf(p)
    np.testing.assert_array_equal(got, stats.poisson.ppf(p, mu))


_MESSY = {
    pl.Int64(): ["12", " 12 ", "12.0", "12.5", "NA", "", "  ", "x", None, "-3", "1e3", "007"],
    pl.Float64(): ["1.5", " 2 ", "NaN", "inf", "NULL", "", "abc", None, "-0.25", "1e-3"],
    pl.Boolean(): ["yes", "No", " TRUE ", "f", "1", "0", "maybe", "", "N/A", None],
    pl.Date(): ["2023-04-01", "01/04/2023", "2023-04-01 10:00:00", "2023-13-01", " 2022-01-31 ", "", None, "soon"],
}


@pytest.mark.parametrize("dtype", list(_MESSY), ids=str)
def test_text_columns_converted_by_distinct_value_as_value_by_value(dtype: pl.DataType) -> None:
    """The distinct-value path (long, repetitive columns) gives what _cast_text gives cell by cell."""
    rng = np.random.default_rng(6)
    column = pl.Series("c", rng.choice(np.array(_MESSY[dtype], dtype=object), 60_000), dtype=pl.String)
    frame = column.to_frame()
    got = frame.select(_cast_text_column(column, dtype)).to_series()
    want = frame.select(_cast_text(pl.col("c"), dtype)).to_series()
    assert got.dtype == want.dtype
    assert got.equals(want)
    # the cells that held something but did not convert: only the null rows are looked at again
    bad = _not_converted(column, want)
    expected = frame.select(pl.col("c").str.strip_chars().is_not_null()
                            & ~pl.col("c").str.strip_chars().is_in(["", "NA", "NULL", "null", "N/A"])
                            & want.is_null()).to_series()
    assert bad is not None
    assert bad.to_list() == expected.to_list()


def test_identifiers_are_converted_directly() -> None:
    ids = pl.Series("patient_id", [str(i) for i in range(60_000)])
    got = ids.to_frame().select(_cast_text_column(ids, pl.Int64())).to_series()
    assert got.to_list() == list(range(60_000))
    assert _not_converted(ids, got) is None


def test_long_extract_accounting_matches_a_plain_python_reading(tmp_path) -> None:
    """60,000 rows (the distinct-value and repeated-key shortcuts apply): every row's reason as a plain
    reading of the rules gives it: a bad number, a blank code, an unknown code (after trimming and merger
    recoding), then a key repeated among the rows that passed, the first such row kept."""
    from audit_metrics.catalogue import DatasetSpec
    from audit_metrics.io import Units, load_dataset

    units = Units(pl.DataFrame({"unit_code": ["A01", "B02", "C03"], "unit_name": ["A", "B", "C"]}), (),
                  {"OLD": "C03"})
    rng = np.random.default_rng(7)
    k = 60_000
    codes = rng.choice(np.array(["A01", " B02 ", "OLD", "ZZZ", "", "C03"]), k)
    ages = rng.choice(np.array(["50", "61", " 70 ", "x", "NA"]), k)
    ids = np.arange(k)
    ids[rng.choice(k, 300, replace=False)] = rng.choice(k, 300)  # repeated keys, some on excluded rows
    lines = ["patient_id,code,age"] + [f"{i},{c},{a}" for i, c, a in zip(ids, codes, ages, strict=True)]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = DatasetSpec(path="p.csv", key=["patient_id"], columns={"age": "integer"})
    acc = load_dataset("p", path, spec, units, unit_column="code").accounting

    want: dict[str, list[int]] = {}
    seen: set[int] = set()
    for row, (i, c, a) in enumerate(zip(ids, codes, ages, strict=True), start=2):
        code = {"OLD": "C03"}.get(c.strip(), c.strip())
        if a.strip() not in ("", "NA") and not a.strip().isdigit():
            reason = "value is not a whole number in column 'age'"
        elif c.strip() == "":
            reason = "missing unit code (code)"
        elif code not in {"A01", "B02", "C03"}:
            reason = "unknown unit code in code"
        elif int(i) in seen:
            reason = "repeated key (patient_id)"
        else:
            seen.add(int(i))
            continue
        want.setdefault(reason, []).append(row)
    got = {e.reason: e for e in acc.exclusions}
    assert set(got) == set(want)
    for reason, rows in want.items():
        assert got[reason].rows == len(rows)
        assert list(got[reason].examples) == rows[:len(got[reason].examples)]
    assert acc.rows_used == k - sum(len(r) for r in want.values())
