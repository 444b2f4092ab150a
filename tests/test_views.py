"""What a person reads about a result: one scale for value, comparator, range and hover (#12 defect 1),
and tables in the indicator's own unit (#12 defect 4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.special import expit, logit

from audit_metrics import export, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import AuditRun, run_audit

NUMBER = r"(-?[\d.,]+)%?"


@pytest.fixture(scope="module")
def run(catalogue_path: Path) -> AuditRun:
    return run_audit(load_catalogue(catalogue_path))


def _printed(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def _statements(run: AuditRun, rows: pl.DataFrame):
    for r in rows.iter_rows(named=True):
        spec = run.results[r["indicator_id"]].spec
        result = views.on_scale(r, risk_adjusted=spec.risk_adjustment is not None, standard=spec.target,
                                coverage=run.results[r["indicator_id"]].options.limits[0])
        yield r, spec, result


def _check_printed_verdict(status: str, value: str, low: str, high: str) -> bool:
    """The printed value against the printed range agrees with the verdict printed beside them."""
    inside = _printed(low) <= _printed(value) <= _printed(high)
    return inside if status == "within" else not inside


def test_sentence_range_and_hover_agree_for_every_trust_and_indicator(run: AuditRun) -> None:
    """Over all trusts and indicators of the sample, every period: no "as expected" result quotes a value
    outside its printed range and no flagged result a value inside it (on main the trust profile quoted
    crude rates against risk-adjusted ranges: 64 and 18 such contradictions). The sentence, range and
    hover name the same scale and give the counts."""
    trusts = run.table().filter(pl.col("level") == "trust")
    checked = 0
    for r, spec, result in _statements(run, trusts):
        status = str(r["status"])
        if status == "not_assessed":
            continue
        sentence = views.result_sentence(result, title=spec.title)
        expected_range = views.range_sentence(result)
        hover = views.hover_text(result)
        scale = result.scale
        value = re.search(rf": {scale} {NUMBER} against", sentence)
        bounds = re.search(rf": {NUMBER} to {NUMBER} \({scale}\)\.$", expected_range)
        assert value and bounds, (sentence, expected_range)
        assert _check_printed_verdict(status, value.group(1), *bounds.groups()), (sentence, expected_range)
        hover_value = re.search(rf"^{scale[:1].upper()}{scale[1:]}: {NUMBER}<br>", hover)
        hover_range = re.search(rf"for its size[ a-z-]*: {NUMBER} to {NUMBER}<br>", hover)
        assert hover_value and hover_range, hover
        assert hover_value.group(1) == value.group(1) and hover_range.groups() == bounds.groups()
        assert f"{r['observed']:,.0f} of {r['denominator']:,.0f} patients" in sentence or \
            (r["statistic"] not in {"proportion"} and spec.risk_adjustment is None)
        verdict = "within the range expected" if status == "within" else r["status_label"].split(" (")[0]
        assert verdict in sentence
        checked += 1
    assert checked > 3000


def test_risk_adjusted_numbers_against_their_definitions(run: AuditRun) -> None:
    """Oracle: the definitions, from the row's own counts. Risk-adjusted rate = O/E x national crude rate
    (national O / national n); crude = O/n; expected events = E (at a standard: n x expit(logit(E/n) +
    logit(standard) - logit(national rate))); the range is the O/E limits x national rate."""
    for indicator_id in ("bowel_mort90", "kidney_sact_met", "lung_curative_s12"):
        result = run.results[indicator_id]
        table = result.table.filter(pl.col("period") == result.pooled_period)
        national = table.filter(pl.col("level") == "national").row(0, named=True)
        rate = national["observed"] / national["denominator"]
        trust = table.filter(pl.col("level") == "trust", pl.col("status").cast(pl.String) != "not_assessed")
        for r, spec, on in _statements(run, trust):
            assert on.scale == "risk-adjusted rate"
            assert on.value == pytest.approx(r["observed"] / r["expected"] * rate, rel=1e-12)
            assert on.crude == pytest.approx(r["observed"] / r["denominator"], rel=1e-12)
            assert on.lower == pytest.approx(r["lower_alert"] * rate, rel=1e-12)
            assert on.comparator == pytest.approx(spec.target or rate, rel=1e-12)
            if spec.target is None:
                assert on.expected_events == pytest.approx(r["expected"], rel=1e-12)
            else:  # expected proportion moved to the standard by a common odds ratio
                odds = logit(r["expected"] / r["denominator"]) + logit(spec.target) - logit(rate)
                assert on.expected_events == pytest.approx(r["denominator"] * expit(odds), rel=1e-12)


def test_za4_bowel_mortality_reads_on_one_scale(run: AuditRun) -> None:
    """The case in the issue: Thornbury (ZA4), 90-day mortality after bowel cancer surgery."""
    result = run.results["bowel_mort90"]
    row = result.table.filter(pl.col("level") == "trust", pl.col("unit_code") == "ZA4",
                              pl.col("period") == result.pooled_period).row(0, named=True)
    on = views.on_scale(row, risk_adjusted=True)
    sentence = views.result_sentence(on, title="90-day mortality")
    assert sentence.startswith(f"90-day mortality: risk-adjusted rate {on.value * 100:.1f}% against a national rate of")
    assert f"{row['observed']:.0f} of {row['denominator']:.0f} patients; about {row['expected']:.1f} were expected" \
        in sentence
    assert views.range_sentence(on).endswith("(risk-adjusted rate).")


def test_formatter_never_prints_a_value_equal_to_a_limit_it_is_outside() -> None:
    on = views.ResultOnScale(scale="rate", multiplier=100, value=0.05126, comparator=0.03, comparator_name="national rate",
                             lower=0.01, upper=0.05114, coverage=0.95, observed=1, denominator=2,
                             expected_events=None, crude=None, risk_adjusted=False, statistic="proportion",
                             status="alert_high", status_label="worse than expected (alert)", p_value=0.04,
                             not_assessed_reason=None, suppressed=False)
    f = views.scale_formatter(on)
    assert f(on.value) != f(on.upper) and f(on.value) == "5.13%" and f(on.upper) == "5.11%"


def test_suppressed_rows_read_without_the_count(run: AuditRun, catalogue_path: Path) -> None:
    rule = load_catalogue(catalogue_path).catalogue.defaults.suppression
    trusts = export.suppress(views.pooled(run).filter(pl.col("level") == "trust"), rule)
    hidden = trusts.filter(pl.col("suppressed"), pl.col("status").cast(pl.String) != "not_assessed")
    assert hidden.height > 50
    for r, _spec, on in _statements(run, hidden):
        sentence = views.result_sentence(on, title="T")
        assert views.range_sentence(on) is None
        assert not re.search(r"\d+(\.\d+)?%", sentence)  # no rate
        assert "* of " in sentence or "of * patients" in sentence
        if r["status"] is None:
            assert "not shown" in sentence


def test_display_table_shows_percentages_in_percent(run: AuditRun) -> None:
    """#12 defect 4: a percentage indicator's value shows as 85.9, not 0.859 (NaN is not null)."""
    table = views.display_table(views.pooled(run).filter(pl.col("level") == "trust"))
    lung = table.filter(pl.col("indicator_id") == "lung_cns", pl.col("value").is_not_null())
    raw = views.pooled(run).filter(pl.col("level") == "trust", pl.col("indicator_id") == "lung_cns",
                                   pl.col("value").is_not_null())
    assert lung["value"].to_list() == pytest.approx((raw["value"] * 100).round(2).to_list())
    assert lung["value"].max() > 1
    ra = table.filter(pl.col("indicator_id") == "bowel_mort90", pl.col("value").is_not_null())
    assert ra["value"].max() < 10 and ra["adjusted_value"].max() > 1  # O/E ratio; adjusted rate in %


def test_pooled_period_of_a_by_period_indicator(run: AuditRun) -> None:
    """#12 defect 2: for bowel_emergency_dx (reported by period too) the pooled label was the first
    row's period, 2021/22, so every 'All periods pooled' view showed one year."""
    result = run.results["bowel_emergency_dx"]
    assert result.pooled_period == "2021/22 to 2023/24"
    from dataclasses import replace  # without a recorded headline, the spanning label is found

    assert replace(result, headline_period=None).pooled_period == "2021/22 to 2023/24"
    assert run.results["bowel_mort90"].pooled_period == "2021/22 to 2023/24"  # not by period
    pooled = views.pooled(run).filter(pl.col("indicator_id") == "bowel_emergency_dx", pl.col("level") == "trust")
    assert set(pooled["period"]) == {"2021/22 to 2023/24"}
    # oracle: arithmetic - the pooled counts are the sums of the three single periods
    singles = (result.table.filter(pl.col("level") == "trust", pl.col("period") != result.pooled_period)
               .group_by("unit_code").agg(pl.col("observed", "denominator").sum(), pl.col("period").n_unique()))
    joined = pooled.join(singles, on="unit_code", suffix="_sum").filter(pl.col("observed").is_not_null())
    assert joined.height > 100 and set(joined["period_sum"]) == {3}
    assert (joined["observed"] == joined["observed_sum"]).all()
    assert (joined["denominator"] == joined["denominator_sum"]).all()


def test_by_severity_puts_worse_alarms_first_then_alerts_better_within_unassessed_withheld(run: AuditRun) -> None:
    """#12 build 1/3: flagged results first, worse before better, alarms before alerts. The expected order is
    written out here from the status and polarity alone (not from ``direction_of``)."""
    rank = {("alarm", "worse"): 0, ("alert", "worse"): 1, ("alarm", "neither"): 2, ("alert", "neither"): 3,
            ("alarm", "better"): 4, ("alert", "better"): 5}

    def expected(status: str | None, better: str) -> int:
        if status is None:
            return 8
        if status in ("within", "not_assessed"):
            return {"within": 6, "not_assessed": 7}[status]
        level, side = status.split("_")
        if better == "neither":
            return rank[(level, "neither")]
        worse = (side == "high") == (better == "lower")
        return rank[(level, "worse" if worse else "better")]

    table = views.pooled(run).filter(pl.col("level") == "trust")
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=3)
    withheld = shuffled.with_columns(pl.when(pl.int_range(pl.len()) % 17 == 0).then(None)
                                     .otherwise(pl.col("status")).alias("status"))
    ordered = views.by_severity(withheld, "unit_code", "indicator_id")
    ranks = [expected(None if s is None else str(s), b) for s, b in zip(ordered["status"], ordered["better"], strict=True)]
    assert ranks == sorted(ranks)
    assert set(ranks) >= {0, 1, 4, 5, 6, 7, 8}  # the sample has every kind, so the test can fail
    assert ordered.height == table.height


def _luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance)."""
    channels = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_marker_colours_have_aa_contrast_with_the_white_background() -> None:
    """#12 build 8: the orange and light-blue alert markers were 2.5:1 and 2.3:1 on white; WCAG 2.1 AA asks
    3:1 for graphical objects (1.4.11). 'not assessed' is exempt: an open ring, and light by design."""
    from audit_metrics.figures import PALETTE

    for name, colour in PALETTE.items():
        if name == "not_assessed":
            continue
        ratio = (1.05) / (_luminance(colour) + 0.05)
        assert ratio >= 3.0, (name, colour, round(ratio, 2))
    # the two oracle values from the issue, so the formula above is the one that failed them
    assert round(1.05 / (_luminance("#ED8B00") + 0.05), 1) == 2.5
    assert round(1.05 / (_luminance("#41B6E6") + 0.05), 1) == 2.3


def test_rug_is_grouped_by_site_and_alliance_with_worse_and_better_by_shape(run: AuditRun) -> None:
    """#12 build 2: columns grouped by tumour site, rows by Cancer Alliance (both labelled); flagged cells
    marked filled (worse) or outline (better) pointing above/below expected; hover with value, counts and
    expected; each flagged cell carries its indicator and trust for click-through."""
    from rug_support import SVG, parse, squares

    from audit_metrics import figures, rug

    trusts = views.pooled(run).filter(pl.col("level") == "trust")
    ra = [k for k, r in run.results.items() if r.spec.risk_adjustment is not None]
    root = parse(rug.rug_svg(trusts, title="rug", group="cancer_alliance", risk_adjusted=ra, highlight="ZA4").svg)
    indicators, units = json.loads(root.get("data-indicators")), json.loads(root.get("data-units"))
    site_of = dict(zip(trusts["indicator_id"], trusts["tumour_site"], strict=False))
    sites = [site_of[i] for i in indicators]
    assert sites == sorted(sites) and set(sites) == set(trusts["tumour_site"])  # columns grouped by site
    alliance_of = dict(zip(trusts["unit_code"], trusts["cancer_alliance"], strict=False))
    alliances = [alliance_of[u] for u in units]
    assert alliances == sorted(alliances) and len(units) == trusts["unit_code"].n_unique()  # rows by alliance
    def shown(t) -> str:  # a label's drawn text (after its <title>, the full name)
        title = t.find(f"{SVG}title")
        return (title.tail if title is not None else t.text) or ""

    texts = [(shown(t), t.get("font-weight")) for t in root.iter(f"{SVG}text")]
    # each alliance labelled once, in bold, by its short name; each trust by a shorter name, unique
    bold = [t for t, w in texts if w == "bold"]
    assert [f"{a} Cancer Alliance" for a in bold] == list(dict.fromkeys(alliances))
    names = [shown(t) for t in root.iter(f"{SVG}text") if t.find(f"{SVG}title") is not None
             and t.find(f"{SVG}title").text in set(trusts["unit_name"])]
    assert len(names) == len(set(names)) == len(units) and "Thornbury" in names
    assert sum(map(len, names)) < 0.6 * sum(len(n) for n in trusts["unit_name"].unique())
    # marks from status and polarity alone, each on its own square
    drawn = squares(root)
    flagged = trusts.filter(pl.col("status").cast(pl.String).is_in(views.FLAGGED))
    expected = {}
    for r in flagged.iter_rows(named=True):
        side = str(r["status"]).split("_")[1]
        worse = (side == "high") == (r["better"] == "lower")
        expected[(r["indicator_id"], r["unit_code"])] = (
            ("▲" if side == "high" else "▼") if worse or r["better"] == "neither" else ("△" if side == "high" else "▽"))
    marks = {k: s.mark for k, s in drawn.items() if s.mark is not None}
    assert marks == expected and {"▲", "△"} <= set(marks.values())
    # filled worse, outline better: the mark's path is painted or only stroked
    for k, mark in marks.items():
        path = drawn[k].button.find(f"{SVG}path")
        assert (path.get("fill") == "none") == (mark in {"△", "▽"}), (k, mark)
    # the square's colour is its status's, direction-aware
    for r in trusts.iter_rows(named=True):
        status = str(r["status"])
        want = (figures.PALETTE["not_assessed"] if status in {"None", "not_assessed"} else
                figures.PALETTE["within"] if status == "within" else
                figures.PALETTE[f"{figures.direction_of(status, r['better'])}_{status.split('_')[0]}"])
        assert drawn[(r["indicator_id"], r["unit_code"])].fill == want
    # the hover of ZA4's bowel mortality square reads as its sentence does (12 of 215), on one scale
    cell = drawn[("bowel_mort90", "ZA4")].tip
    assert "Risk-adjusted rate: 5.9%" in cell and "12 of 215 patients; about 5.1 were expected" in cell
    assert cell.startswith("Thornbury Teaching Hospitals NHS Foundation Trust\n")
    # the highlighted trust's row is outlined in the highlight colour, over exactly its row
    outline = root.find(f"{SVG}rect[@class='am-highlight']")
    assert outline.get("stroke") == figures.PALETTE["highlight"]
    row = float(root.get("data-top")) + units.index("ZA4") * rug.CELL_H
    assert float(outline.get("y")) < row < row + rug.CELL_H < float(outline.get("y")) + float(outline.get("height"))


def test_funnel_names_its_centre_line_fits_its_axis_and_sets_the_selected_trust_apart(run: AuditRun) -> None:
    """#12 build 6: 'Target' said nothing (national value or audit standard?); limits were drawn below the
    smallest unit; the selected trust looked like its alliance's peers."""
    from audit_metrics import figures

    def funnel(indicator: str, level: str, **kw) -> dict:
        result = run.results[indicator]
        rows = result.table.filter(pl.col("level") == level, pl.col("period") == result.pooled_period)
        curve = result.curves.filter(pl.col("level") == level, pl.col("period") == result.pooled_period)
        return rows, figures.funnel_figure(
            rows, curve, title="t", better=result.spec.better, statistic=result.spec.statistic,
            risk_adjusted=result.spec.risk_adjustment is not None, multiplier=result.spec.multiplier,
            coverage=result.options.limits, standard=result.spec.target is not None, **kw).to_dict()

    with_standard = next(k for k, r in run.results.items() if r.spec.target is not None)
    without = "bowel_mort90"
    assert run.results[without].spec.target is None
    _, fig = funnel(with_standard, "trust")
    assert fig["data"][0]["name"] == "Audit standard"
    rows, fig = funnel(without, "region", highlight=["ZA4"], peers=["ZA5"])
    assert fig["data"][0]["name"] == "National rate"
    smallest = rows.filter(pl.col("value").is_not_null())["denominator"].min()
    for trace in fig["data"]:
        if trace.get("mode") == "lines":
            assert min(_as_list(trace["x"])) >= smallest * 0.9  # no limits below the smallest region
    trusts, fig = funnel(without, "trust", highlight=["ZA4"], peers=["ZA5", "ZA6"],
                         label_highlight="Selected trust", label_peers="Its alliance")
    selected = next(t for t in fig["data"] if t.get("name") == "Selected trust")
    peers = next(t for t in fig["data"] if t.get("name") == "Its alliance")
    assert selected["marker"]["line"]["color"] != peers["marker"]["line"]["color"]
    assert selected["marker"]["size"] > peers["marker"]["size"]
    # named beside its ring, on lines of at most figures.POINT_LABEL_PX (tests/test_figs1_labels.py)
    (label,) = [a["text"] for a in fig["layout"]["annotations"] if a.get("name") == "selected_label"]
    assert label.replace("<br>", " ") == "Thornbury Teaching Hospitals"
    sizes = trusts.filter(pl.col("value").is_not_null())["denominator"]
    log = sizes.max() / sizes.min() > 20
    assert (fig["layout"]["xaxis"].get("type") == "log") == log
    assert fig["layout"]["xaxis"]["title"]["text"].endswith("(log scale)") == log
    assert not log or fig["layout"]["xaxis"]["dtick"] == 1  # labels at powers of ten only


def _as_list(v: object) -> list[float]:
    import base64


    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)
