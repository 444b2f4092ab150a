"""One-sided tests in words (a real-data review, 2026-12-03): "a difference this large would arise by chance about
1 time in 540" beside an alert read as rarer than the 1 in 500 of a 99.8% limit, which is two-sided; the p of a
one-sided test is one-sided, and the sentence now says so and which way. Also grammar: "1 are flagged",
"1 are worse", and "; Lung." where the indicator names no audit.

Oracle: each row's own p_value and status, and the catalogue's test: one_sided."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_metrics import narrative, views
from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
CWT62 = ROOT / "examples" / "cwt_62_day" / "indicators.yaml"
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def run():
    return run_audit(load_catalogue(CWT62))


def test_a_one_sided_flag_says_its_p_is_one_sided(run) -> None:
    checked = 0
    for result in run.results.values():
        spec = result.spec
        assert spec.worse_side == "low"  # every indicator of the example: below the standard is worse
        flagged = result.table.filter(pl.col("level") == "trust", pl.col("period") == result.pooled_period,
                                      pl.col("status").cast(pl.String).is_in(views.FLAGGED))
        for r in flagged.iter_rows(named=True):
            standard = r["target"]
            on = views.on_scale(r, risk_adjusted=False, standard=standard, coverage=result.options.limits[0],
                                worse_side=spec.worse_side)
            sentence = views.result_sentence(on, title=spec.title)
            chance = narrative.chance_phrase(r["p_value"])
            assert f"a result this low would arise by chance {chance} (a one-sided test" in sentence
            assert "difference this large" not in sentence
            # the level agrees with the one-sided p: an alarm is beyond 1 - 0.998 in the worse tail
            assert (r["status"].startswith("alarm")) == (r["p_value"] < 0.001), (r["unit_code"], r["p_value"])
            checked += 1
    assert checked > 5


def test_two_sided_sentences_are_unchanged(run) -> None:
    result = next(iter(run.results.values()))
    r = result.table.filter(pl.col("level") == "trust", pl.col("status").cast(pl.String).is_in(views.FLAGGED)).row(
        0, named=True)
    on = views.on_scale(r, risk_adjusted=False, standard=r["target"], coverage=0.95)
    assert "a difference this large would arise by chance" in views.result_sentence(on, title="T")


def _open(monkeypatch: pytest.MonkeyPatch, view: str) -> AppTest:
    """The dashboard on the 62-day example, opened at ``view``."""
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(CWT62))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_grammar_on_the_indicator_view(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(monkeypatch, "Indicator")
    text = " ".join(m.value for m in at.markdown)
    assert " 1 are flagged" not in text and "*; " not in text


def test_the_export_leaves_untested_limits_blank_and_keeps_one_scale(run) -> None:
    """A one-sided (lower is worse) indicator: the upper limits are blank in the files; the read-me's national value
    and standard are on the results sheet's 0-1 scale (they were 88.3 and 96 beside 0.96)."""
    from audit_metrics import sharing

    loaded = load_catalogue(CWT62)
    shared = sharing.build_outlier_export(run, loaded, sharing.OutlierFilters())
    table = shared.exported if hasattr(shared, "exported") else shared.table
    assert table.height > 0
    assert table["upper_alert"].null_count() == table.height and table["upper_alarm"].null_count() == table.height
    assert table["lower_alert"].null_count() < table.height
    methods = shared.readme.methods.row(0, named=True)
    result = run.results[methods["indicator_id"]]
    national = result.table.filter(pl.col("level") == "national", pl.col("period") == result.pooled_period)
    assert methods["national_value"] == pytest.approx(national["observed"][0] / national["denominator"][0], rel=1e-12)
    assert methods["audit_standard"] == pytest.approx(0.85)


def test_the_overview_names_a_single_period_table_by_its_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """period1's note: the Overview said 'All periods' for one-period publications ('October 2023')."""
    at = _open(monkeypatch, "Overview")
    assert at.selectbox(key="ov_period").value == "October 2023"


def test_the_watermark_fits_a_phones_chart() -> None:
    """figs1's sweep: at 54 px "SYNTHETIC DATA" was cut to "YNTHETIC DAT" at 390 px. Capitals are at most about
    0.7 em wide; turned 24 degrees the text must span under the ~260 px plot of a 390 px screen."""
    import math

    from audit_metrics import sharing

    width = len(sharing.WATERMARK) * 0.7 * sharing.WATERMARK_SIZE * math.cos(math.radians(24))
    assert width <= 270
