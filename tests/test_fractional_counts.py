"""Half counts (issue #9, item 4): published tables that share a patient between two providers.

NHS England's Cancer Waiting Times credit each of two trusts that shared a patient's care with half a
patient, so its provider tables hold counts such as 6.5 (and its national figure for October 2023 is
24,371.5 treated). A dataset that says ``fractional_counts: allow`` keeps those rows; every limit method is
defined for them:

- exact (binomial/Poisson): the distribution function is the regularised incomplete beta/gamma function,
  F(k; n, p) = I_{1-p}(n - k, k + 1) and F(k; mu) = Q(k + 1, mu), which is continuous in a non-whole n
  (a denominator of 12.5); an observed count's mid-P position is Spiegelhalter's linear interpolation of F
  between whole counts, G(O - 1/2), which is F(O - 1) + P(O)/2 at whole counts and F(k) at O = k + 1/2;
- exact_ci: the Gamma distribution function at O (continuous in O);
- normal and transformed: functions of O/x.

Oracles (each test names its own): scipy.stats binom/poisson at whole counts (1e-12); the negative-binomial
sum for the incomplete beta at a non-whole n (the identity I_x(a, k + 1) = sum_{j<=k} NB(j; a, x), for any
real a > 0: Johnson, Kemp & Kotz, Univariate Discrete Distributions, 3rd ed., chapter 5), 1e-12; properties
(monotone, continuous, status agrees with the drawn limits); NHS England's published national 62-day figure
for October 2023 (examples/cwt_62_day/README.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import special, stats

from audit_metrics.catalogue import MethodOptions, load_catalogue
from audit_metrics.cli import main
from audit_metrics.funnel import coverage_z, distribution, limits, mid_p_position, unit_scores
from audit_metrics.outliers import assess_units
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
CWT62 = ROOT / "examples" / "cwt_62_day"

# ------------------------------------------------------------------ the continuous extension


@pytest.mark.parametrize("n", [1, 7, 20, 133, 1000])
@pytest.mark.parametrize("p", [0.02, 0.3, 0.85])
def test_binomial_distribution_at_whole_counts_against_scipy(n: int, p: float) -> None:
    d = distribution(np.array(float(n)), statistic="proportion", target=p)
    k = np.arange(-1, n + 2, dtype=float)
    np.testing.assert_allclose(d.cdf(k), stats.binom.cdf(k, n, p), rtol=0, atol=1e-12)
    o = np.arange(0, n + 1, dtype=float)
    mid_p = stats.binom.cdf(o - 1, n, p) + 0.5 * stats.binom.pmf(o, n, p)
    np.testing.assert_allclose(mid_p_position(o, np.full(o.size, float(n)), statistic="proportion", target=p),
                               mid_p, rtol=0, atol=1e-12)
    # half a count more than k sits exactly at F(k): the interpolation half-way between k and k + 1's mid-P
    half = o[:-1] + 0.5
    np.testing.assert_allclose(mid_p_position(half, np.full(half.size, float(n)), statistic="proportion",
                                              target=p), stats.binom.cdf(o[:-1], n, p), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mean", [0.4, 3.0, 27.5, 400.0])
def test_poisson_distribution_at_whole_counts_against_scipy(mean: float) -> None:
    x = np.array(50.0)
    d = distribution(x, statistic="ratio", target=mean / 50.0)
    k = np.arange(-1, int(mean * 2 + 20), dtype=float)
    np.testing.assert_allclose(d.cdf(k), stats.poisson.cdf(k, mean), rtol=0, atol=1e-12)
    o = k[k >= 0]
    mid_p = stats.poisson.cdf(o - 1, mean) + 0.5 * stats.poisson.pmf(o, mean)
    np.testing.assert_allclose(mid_p_position(o, np.full(o.size, 50.0), statistic="ratio", target=mean / 50.0),
                               mid_p, rtol=0, atol=1e-12)
    half = o + 0.5
    np.testing.assert_allclose(mid_p_position(half, np.full(half.size, 50.0), statistic="ratio",
                                              target=mean / 50.0), stats.poisson.cdf(o, mean), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [0.5, 3.5, 12.5, 40.5, 374.5])
@pytest.mark.parametrize("p", [0.1, 0.63, 0.85])
def test_binomial_distribution_at_a_half_denominator_against_the_negative_binomial_sum(n: float, p: float) -> None:
    """I_{1-p}(n - k, k + 1) = sum_{j=0..k} C(a + j - 1, j) (1-p)^a p^j with a = n - k > 0 (any real a)."""
    d = distribution(np.array(n), statistic="proportion", target=p)
    for k in range(int(np.floor(n)) + 1):
        a = n - k
        j = np.arange(k + 1)
        terms = np.exp(special.gammaln(a + j) - special.gammaln(a) - special.gammaln(j + 1)
                       + a * np.log1p(-p) + j * np.log(p))
        assert d.cdf(np.array(float(k))) == pytest.approx(terms.sum(), abs=1e-12, rel=1e-12), (n, p, k)
    assert d.cdf(np.array(np.ceil(n))) == 1.0  # the remainder sits on the next whole count


def test_binomial_distribution_is_continuous_and_monotone_in_a_real_denominator() -> None:
    """At fixed k, F(k; n, p) falls as n grows, smoothly through the whole numbers (where it equals scipy)."""
    n = np.linspace(10.0, 14.0, 4001)
    for k in (3.0, 8.0, 10.0):
        cdf = distribution(n, statistic="proportion", target=0.6).cdf(np.full(n.size, k))
        assert np.all(np.diff(cdf) <= 1e-15)
        assert np.max(np.abs(np.diff(cdf))) < 2e-3  # no jump: steps of 0.001 in n move F by little
        whole = np.isin(n, [10.0, 11.0, 12.0, 13.0, 14.0])
        np.testing.assert_allclose(cdf[whole], stats.binom.cdf(k, n[whole], 0.6), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("statistic", "x", "target"), [("proportion", 40.5, 0.7), ("proportion", 12.0, 0.3),
                                                         ("ratio", 8.0, 1.0), ("rate", 200.0, 0.05)])
def test_mid_p_position_is_monotone_and_continuous_between_whole_counts(statistic: str, x: float,
                                                                        target: float) -> None:
    top = x if statistic == "proportion" else 4 * target * x + 20
    o = np.linspace(0.0, top, 20_001)
    u = mid_p_position(o, np.full(o.size, x), statistic=statistic, target=target)
    assert np.all(np.diff(u) >= -1e-15)
    step = o[1] - o[0]
    # a non-whole n with a share above a half is placed as non-events (Binomial(n, 1 - target), funnel._flipped)
    events = statistic == "proportion" and x % 1 > 0 and target > 0.5
    d = distribution(np.array(x), statistic=statistic, target=1 - target if events else target)
    largest_p = np.max(d.pmf(np.arange(0, top + 2)))
    assert np.max(np.diff(u)) <= largest_p * step + 1e-12  # Lipschitz: piecewise linear with slope P(k)


def test_exact_limits_are_continuous_across_whole_and_half_denominators() -> None:
    """The limits at n and n + 1e-7 agree to 1e-5, for n whole or half (no step where ceil(n) changes)."""
    for statistic, t in (("proportion", 0.85), ("proportion", 0.3), ("ratio", 1.0)):
        n = np.arange(5.0, 60.0, 0.5)
        for c in (0.95, 0.998):
            kw = {"statistic": statistic, "method": "exact", "transform": "arcsine", "target": t, "coverage": c}
            lo, hi = limits(n, **kw)
            lo2, hi2 = limits(n + 1e-7, **kw)
            np.testing.assert_allclose(lo2, lo, rtol=0, atol=1e-5)
            np.testing.assert_allclose(hi2, hi, rtol=0, atol=1e-5)


def _options(method: str, transform: str, overdispersion: str) -> MethodOptions:
    return MethodOptions(limits=(0.95, 0.998), overdispersion=overdispersion, robust="winsorise", trim=0.1,
                         min_denominator=0, min_units=10, limit_method=method, fdr=False, transform=transform)


@pytest.mark.parametrize(("statistic", "method", "transform"), [
    ("proportion", "exact", "arcsine"), ("proportion", "transformed", "arcsine"), ("proportion", "normal", "arcsine"),
    ("ratio", "exact", "sqrt"), ("ratio", "transformed", "log"), ("ratio", "normal", "sqrt"),
    ("ratio", "exact_ci", "log")])
@pytest.mark.parametrize("overdispersion", ["none", "additive"])
def test_half_counts_status_agrees_with_the_drawn_limits(statistic: str, method: str, transform: str,
                                                         overdispersion: str) -> None:
    """With half counts in numerators and denominators, a unit is flagged exactly when its value is outside
    the limits drawn at its own denominator (status, limits and z always agree)."""
    if method == "exact_ci" and overdispersion != "none":
        pytest.skip("exact_ci takes no overdispersion")
    rng = np.random.default_rng(20261202)
    x = rng.integers(10, 400, 600) + rng.choice([0.0, 0.5], 600)
    if statistic == "proportion":
        o = np.minimum(rng.binomial(x.astype(int), rng.beta(30, 20, x.size)) + rng.choice([0.0, 0.5], x.size), x)
        target = 0.6
    else:
        o = rng.poisson(x * rng.gamma(15, 1 / 15, x.size)) + rng.choice([0.0, 0.5], x.size)
        target = 1.0
    assert np.any(o % 1 == 0.5) and np.any(x % 1 == 0.5)
    a = assess_units(o, x, np.ones(x.size, bool), statistic=statistic, options=_options(method, transform,
                     overdispersion), target=target, target_estimated=False)
    y = o / x
    lo, hi = a.limits[0.95]
    outside = (y < lo) | (y > hi)
    flagged = a.status != "within"
    assert flagged.sum() > 10
    disagree = outside != flagged
    assert disagree.sum() == 0, (np.flatnonzero(disagree)[:5], o[disagree][:5], x[disagree][:5])
    assert np.array_equal(np.abs(a.z) > coverage_z(0.95), flagged)


def test_exact_ci_z_is_continuous_in_the_observed_count_in_each_tail() -> None:
    """exact_ci scores O on the Gamma(theta0 E + 1) distribution function above the target and Gamma(theta0 E)
    below it, both continuous in O. The one step is where the method changes tail, in the middle (|z| small,
    far inside every limit): there the two tails' z differ in sign, as they do for whole counts."""
    o = np.linspace(0, 40, 8001)
    z = unit_scores(o, np.full(o.size, 20.0), statistic="ratio", method="exact_ci", transform="log",
                    target=1.0).z
    assert z[0] == -np.inf and np.all(np.isfinite(z[1:]))
    steps = np.diff(z[1:])
    down = np.flatnonzero(steps <= 0)
    assert down.size == 1 and np.abs(z[1:][down[0]]) < 0.2  # the change of tail, near theta0 E = 20
    others = np.arange(steps.size) != down[0]
    assert np.all(steps[others] > 0)  # increasing everywhere else
    # and no other jump: from O = 1 on (z falls steeply to -inf as O goes to 0), steps of 0.005 move z < 0.05
    assert np.max(steps[others & (o[1:-1] >= 1)]) < 0.05


# ------------------------------------------------------------------ catalogue and loading


def _table(folder: Path, *, option: str = "", declared: str = "") -> Path:
    rows = [("A", "6.5", "10"), ("B", "12", "20.5"), ("C", "30", "40"), ("D", "18.5", "25"), ("E", "40", "52"),
            ("F", "9", "15"), ("G", "22.5", "30"), ("H", "50", "61"), ("I", "14", "19"), ("J", "35", "47.5"),
            ("K", "27", "33")]
    (folder / "t.csv").write_text("code,within,total\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows),
                                  encoding="utf-8")
    (folder / "units.csv").write_text("code,name\n" + "".join(f"{a},Trust {a}\n" for a, _, _ in rows),
                                      encoding="utf-8")
    path = folder / "cat.yaml"
    path.write_text(f"""version: 1
units: {{file: units.csv, code: code, name: name}}
datasets:
  t:
    path: t.csv
    aggregate: true
{option}{declared}indicators:
  - {{id: p, title: P, dataset: t, numerator: within, denominator: total, better: higher}}
""", encoding="utf-8")
    return path


def test_half_counts_excluded_by_default_and_the_reason_names_the_option(tmp_path: Path) -> None:
    run = run_audit(load_catalogue(_table(tmp_path)))
    acc = run.datasets["t"]
    assert acc.balanced and acc.rows_read == 11 and acc.rows_used == 6
    reasons = {e.reason: (e.rows, e.examples) for e in acc.exclusions}
    hint = " (a shared count such as 6.5? add fractional_counts: allow to datasets.t)"
    assert reasons == {f"value is not a whole number in column 'within'{hint}": (3, (2, 5, 8)),
                       f"value is not a whole number in column 'total'{hint}": (2, (3, 11))}


def test_half_counts_allowed_are_used_at_full_precision(tmp_path: Path) -> None:
    run = run_audit(load_catalogue(_table(tmp_path, option="    fractional_counts: allow\n")))
    acc = run.datasets["t"]
    assert acc.balanced and acc.rows_used == 11 and not acc.exclusions
    table = run.results["p"].table
    nation = table.filter(pl.col("level") == "national").row(0, named=True)
    assert (nation["observed"], nation["denominator"]) == (264.5, 353.0)  # the column sums, by hand
    a = table.filter(pl.col("unit_code") == "A").row(0, named=True)
    assert (a["observed"], a["denominator"], a["value"]) == (6.5, 10.0, 0.65)


def test_declared_float_counts_are_still_whole_numbers_by_default(tmp_path: Path) -> None:
    """Declaring a count column float is not a way round the whole-number rule (only the option is)."""
    path = _table(tmp_path, declared="    columns: {within: float, total: float}\n")
    acc = run_audit(load_catalogue(path)).datasets["t"]
    assert acc.rows_used == 6 and sum(e.rows for e in acc.exclusions) == 5


def test_fractional_counts_with_an_integer_declaration_is_a_located_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _table(tmp_path, option="    fractional_counts: allow\n", declared="    columns: {within: integer}\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cat.yaml:8" in err  # the line of the declaration
    assert "column 'within' is declared integer, but dataset 't' allows fractional counts (p.numerator)" in err
    assert "declare it float (datasets.t.columns.within: float)" in err


def test_unknown_fractional_counts_value_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _table(tmp_path, option="    fractional_counts: yes\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cat.yaml:7" in err and "fractional_counts" in err


def test_parquet_half_counts_are_not_truncated(tmp_path: Path) -> None:
    """A typed float 6.5 used to be cast to the integer 6 (polars truncates): a silent mis-count. It is now
    excluded as not a whole number (default) or used as 6.5 (allowed)."""
    path = _table(tmp_path)
    pl.read_csv(tmp_path / "t.csv").write_parquet(tmp_path / "t.parquet")
    text = path.read_text(encoding="utf-8").replace("path: t.csv", "path: t.parquet")
    path.write_text(text, encoding="utf-8")
    run = run_audit(load_catalogue(path))
    acc = run.datasets["t"]
    assert acc.rows_used == 6 and sum(e.rows for e in acc.exclusions) == 5
    assert run.results["p"].table.filter(pl.col("level") == "national")["observed"][0] == 170.0  # the six whole rows
    path.write_text(text.replace("aggregate: true\n", "aggregate: true\n    fractional_counts: allow\n"),
                    encoding="utf-8")
    nation = run_audit(load_catalogue(path)).results["p"].table.filter(pl.col("level") == "national")
    assert nation["observed"][0] == 264.5


# ------------------------------------------------------------------ a real table: CWT 62-day, October 2023

# NHS England, "CWT-CRS-National-Time-Series-Oct-2009-Oct-2023-with-Revisions.xlsx", sheet "Monthly
# Performance", row 2023-10-01, "Two Month (62-days) Wait from Urgent Suspected Cancer, Breast Symptomatic,
# NHS Cancer Screening Service referral or Consultant Upgrade to First Definitive Treatment" (provenance in
# examples/cwt_62_day/README.md)
PUBLISHED_ENGLAND_OCT_2023 = {"total": 24371.5, "within": 15375.5, "outside": 8996.0}


def _published_rows() -> list[dict[str, str]]:
    """The shipped excerpt read with Python's csv module (independent of the code under test)."""
    with (CWT62 / "cwt-62-day-provider-2023-10.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cwt62_excerpt_adds_up_to_the_published_england_figure() -> None:
    """The provider rows (every trust and independent provider, by route and modality) sum to NHS England's
    national figure exactly: the half counts are the publisher's own, and dropping or rounding them would
    not add up."""
    rows = _published_rows()
    assert len(rows) == 1362
    total = sum(float(r["TOTAL TREATED"]) for r in rows)
    within = sum(float(r["WITHIN STANDARD"]) for r in rows)
    breaches = sum(float(r["BREACHES"]) for r in rows)
    assert (total, within, breaches) == tuple(PUBLISHED_ENGLAND_OCT_2023.values())
    # halves are common, not a corner case: 754 rows hold one (README)
    assert sum(1 for r in rows if any(float(r[c]) % 1 for c in ("TOTAL TREATED", "WITHIN STANDARD", "BREACHES"))) == 754


@pytest.fixture(scope="module")
def cwt62_run():
    return run_audit(load_catalogue(CWT62 / "indicators.yaml"))


def test_cwt62_national_figure_is_the_published_one_less_the_named_non_trusts(cwt62_run) -> None:
    """Oracle: NHS England's national figure less the rows of providers that are not NHS trusts in the shipped
    reference geography (independent-sector codes: excluded and named). Exact, halves included."""
    trusts = set(pl.read_csv(ROOT / "reference" / "nhs_trusts.csv")["trust_code"])
    others = [r for r in _published_rows() if r["ORG CODE"] not in trusts]
    assert {r["ORG CODE"] for r in others} == {"NDA", "NQT", "NT4", "NV1", "NVM", "NVN", "NYG", "NYT"}
    total = PUBLISHED_ENGLAND_OCT_2023["total"] - sum(float(r["TOTAL TREATED"]) for r in others)
    within = PUBLISHED_ENGLAND_OCT_2023["within"] - sum(float(r["WITHIN STANDARD"]) for r in others)
    nation = cwt62_run.results["cwt62_all"].table.filter(pl.col("level") == "national").row(0, named=True)
    assert (nation["denominator"], nation["observed"]) == (total, within) == (24277.0, 15291.0)
    acc = cwt62_run.datasets["cwt62"]
    assert acc.balanced and acc.rows_read == 1362 and acc.rows_used == 1362 - len(others)
    assert {e.reason for e in acc.exclusions} == {"unknown unit code in ORG CODE"}


@pytest.mark.parametrize(("indicator", "route"), [("cwt62_urgent", "Urgent Suspected Cancer"),
                                                   ("cwt62_screening", "Screening"),
                                                   ("cwt62_upgrade", "Consultant Upgrade")])
def test_cwt62_every_trust_sums_its_own_half_counts(cwt62_run, indicator: str, route: str) -> None:
    """Each trust's observed and denominator are the sums of its published rows for the route (csv module)."""
    trusts = set(pl.read_csv(ROOT / "reference" / "nhs_trusts.csv")["trust_code"])
    expected: dict[str, list[float]] = {}
    for r in _published_rows():
        if r["STAGE/ROUTE"] == route and r["ORG CODE"] in trusts:
            sums = expected.setdefault(r["ORG CODE"], [0.0, 0.0])
            sums[0] += float(r["WITHIN STANDARD"])
            sums[1] += float(r["TOTAL TREATED"])
    table = cwt62_run.results[indicator].table.filter(pl.col("level") == "trust", pl.col("denominator") > 0)
    got = {c: [o, n] for c, o, n in table.select("unit_code", "observed", "denominator").iter_rows()}
    assert got == expected
    assert any(o % 1 or n % 1 for o, n in got.values())
    # a half-count trust is assessed like any other, and its flag agrees with its limits
    assessed = table.filter(pl.col("status") != "not_assessed", (pl.col("denominator") % 1) != 0)
    assert assessed.height
    outside = (assessed["value"] < assessed["lower_alert"]).to_numpy()
    flagged = assessed["status"].is_in(["alert_low", "alarm_low"]).to_numpy()
    assert np.array_equal(outside, flagged)


def test_cwt62_example_runs_from_the_readme_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cwt62.xlsx"
    assert main(["run", str(CWT62 / "indicators.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cwt62: 1,362 rows read, 1,346 used" in printed
    results = pl.read_excel(out)
    nation = results.filter(pl.col("level") == "national", pl.col("indicator_id") == "cwt62_all").row(0, named=True)
    assert float(nation["denominator"]) == 24277.0  # the export keeps the half counts' sum, not a rounding
    r0a = results.filter(pl.col("unit_code") == "R0A", pl.col("indicator_id") == "cwt62_all").row(0, named=True)
    assert float(r0a["denominator"]) == 374.5


# ------------------------------------------------------------------ shown and exported as published


def test_half_counts_are_shown_and_exported_unrounded_and_small_ones_suppressed() -> None:
    """Disclosure rule [1, 7]: a shared patient (0.5) is a patient, so it is suppressed like 1; 16.5 is shown
    as 16.5 (it used to be rounded to a whole number in every suppressed table and export)."""
    from audit_metrics.catalogue import SuppressionSpec
    from audit_metrics.export import suppress

    frame = pl.DataFrame({"observed": [0.5, 3.0, 16.5, 7.5, 0.0, 8.0, 7.0],
                          "denominator": [20.0, 30.0, 40.5, 50.0, 10.0, 12.0, 20.0], "value": [0.1] * 7})
    safe = suppress(frame, SuppressionSpec(min_count=1, max_count=7, symbol="*"))
    assert safe["observed"].to_list() == ["*", "*", "16.5", "7.5", "0", "8", "*"]
    assert safe["denominator"].to_list() == ["20", "30", "40.5", "50", "10", "12", "20"]
    assert safe["suppressed"].to_list() == [True, True, False, False, False, False, True]


def test_sentence_counts_agree_with_the_value_for_half_counts() -> None:
    from dataclasses import replace

    from audit_metrics.views import ResultOnScale, counts_phrase

    base = ResultOnScale(scale="proportion", multiplier=100, value=175 / 374.5, comparator=0.85,
                         comparator_name="standard", lower=0.67, upper=1.0, coverage=0.95, observed=175.0,
                         denominator=374.5, expected_events=None, crude=None, risk_adjusted=False,
                         statistic="proportion", status="alarm_low", status_label="", p_value=None,
                         not_assessed_reason=None, suppressed=False)
    assert counts_phrase(base) == "175 of 374.5 patients"
    assert counts_phrase(replace(base, observed=1200.0, denominator=1500.0)) == "1,200 of 1,500 patients"


VIEWS = ("Overview", "Indicator", "Trust profile", "Cancer Alliance", "Inequalities", "Outliers & export",
         "Indicator catalogue", "Data", "Releases")


def test_cwt62_every_view_renders_and_the_trust_profile_keeps_the_half(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(CWT62 / "indicators.yaml"))
    for view in VIEWS:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.query_params["view"] = view
        if view == "Trust profile":
            at.query_params["trust"] = "R0A"
        at.run()
        assert not at.exception, (view, [e.value for e in at.exception])
        assert not at.error, (view, [e.value for e in at.error])
        if view == "Trust profile":
            # R0A treated 374.5 people in October 2023 (its published rows summed): said so, not '374'
            shown = " ".join(m.value for m in (*at.markdown, *at.caption))
            assert "of 374.5 patients" in shown
