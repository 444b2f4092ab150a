"""Published-table shapes (issue 9, items 3, 4, 5, 7, 10): long tables filtered by `cohort`, blanks that
exclude a row from one indicator only, repeated unit-period rows reported, `pooled: false`, and the
crashes that became clear results. Oracles: sums written out in polars on the test's own table, and
the row accounting identity rows_read = rows_used + excluded."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit


def _long_table(project: Path) -> pl.DataFrame:
    """The sample's wide personalised-care table reshaped to one row per trust x period x cancer type:
    'Lung' rows carry a third of each count, 'Other' the rest (the shape most publications use)."""
    wide = pl.read_csv(project / "sample_data/personalised_care_by_trust.csv")
    lung = wide.with_columns((pl.col(c) // 3).alias(c) for c in ("patients", "hna_offered", "care_plan"))
    other = wide.with_columns((pl.col(c) - pl.col(c) // 3).alias(c) for c in ("patients", "hna_offered", "care_plan"))
    return pl.concat([lung.with_columns(pl.lit("Lung").alias("cancer_type")),
                      other.with_columns(pl.lit("Other").alias("cancer_type"))]).select(
        "trust_code", "period", "cancer_type", "patients", "hna_offered", "care_plan")


def _catalogue(project: Path, table: pl.DataFrame, indicators: list[dict], **dataset: object):
    table.write_csv(project / "long.csv")
    doc = yaml.safe_load((project / "indicators.yaml").read_text())
    doc["datasets"] = {"long": {"path": "long.csv", "period_column": "period", "aggregate": True,
                                "columns": {"trust_code": "string", "period": "string", "cancer_type": "string",
                                            "patients": "integer", "hna_offered": "integer", "care_plan": "integer"},
                                **dataset}}
    base = {"tumour_site": "All cancers", "dataset": "long", "denominator": "patients", "better": "higher",
            "multiplier": 100}
    doc["indicators"] = [{**base, **i} for i in indicators]
    (project / "indicators.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_catalogue(project / "indicators.yaml")


def _national(result, column: str = "denominator") -> float:
    t = result.table.filter(pl.col("level") == "national", pl.col("period") == result.pooled_period)
    return float(t[column][0])


def test_cohort_filters_a_long_aggregate_table(project_copy: Path) -> None:
    table = _long_table(project_copy)
    cat = _catalogue(project_copy, table, [
        {"id": "hna_lung", "title": "HNA (lung)", "numerator": "hna_offered", "cohort": "cancer_type = 'Lung'"},
        {"id": "hna_all", "title": "HNA (all)", "numerator": "hna_offered"}])
    run = run_audit(cat)
    lung = table.filter(pl.col("cancer_type") == "Lung")
    assert _national(run.results["hna_lung"]) == lung["patients"].sum()
    assert _national(run.results["hna_lung"], "observed") == lung["hna_offered"].sum()
    acc = run.results["hna_lung"].accounting
    assert acc.balanced and dict((e.reason, e.rows) for e in acc.exclusions) == {"not in the cohort": lung.height}
    # without a filter the two cancer types are summed, and said to be
    assert _national(run.results["hna_all"]) == table["patients"].sum()
    warning = " ".join(run.results["hna_all"].warnings)
    assert "more than one row, which were summed" in warning and "add a cohort filter" in warning
    assert not any("more than one row" in w for w in run.results["hna_lung"].warnings)


def test_rows_a_declared_key_breaks_down_are_summed_without_a_warning(project_copy: Path) -> None:
    """A table whose key names the unit and a breakdown (the shipped 62-day example: trust x route x modality)
    holds several rows per unit and period by design: summing them is the indicator's definition, and the warning
    (whose advice, key: [unit, period], would break such a table) is not given. The sums are the same."""
    table = _long_table(project_copy)
    cat = _catalogue(project_copy, table, [{"id": "hna_all", "title": "HNA (all)", "numerator": "hna_offered"}],
                     key=["trust_code", "period", "cancer_type"])
    run = run_audit(cat)
    assert _national(run.results["hna_all"]) == table["patients"].sum()
    assert not any("more than one row" in w for w in run.results["hna_all"].warnings)


def test_a_blank_cell_excludes_the_row_from_that_indicator_only(project_copy: Path) -> None:
    """Issue 9: one blank care_plan cell dropped the provider-period from every indicator (a lung
    denominator changed from 9,487 to 8,373 when run with the others). Now only care_plan loses it."""
    table = _long_table(project_copy).filter(pl.col("cancer_type") == "Lung")
    blanked = table.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("care_plan"))
                                 .alias("care_plan"))
    specs = [{"id": "hna", "title": "HNA", "numerator": "hna_offered"},
             {"id": "plan", "title": "Care plan", "numerator": "care_plan"}]
    run = run_audit(_catalogue(project_copy, blanked, specs))
    assert run.datasets["long"].rows_used == table.height  # the dataset keeps the row
    assert _national(run.results["hna"]) == table["patients"].sum()
    assert _national(run.results["plan"]) == table["patients"].sum() - table["patients"][5]
    acc = run.results["plan"].accounting
    assert acc.balanced
    (excl,) = acc.exclusions
    assert excl.rows == 1 and excl.reason == "blank care_plan (excluded from this indicator only)"
    assert excl.examples == (7,)  # line 7 of the file: header + rows 1-5 before it


def test_pooled_false_reports_each_period_and_leads_with_the_latest(project_copy: Path) -> None:
    table = _long_table(project_copy).filter(pl.col("cancer_type") == "Lung")
    run = run_audit(_catalogue(project_copy, table, [
        {"id": "hna", "title": "HNA", "numerator": "hna_offered", "pooled": False}]))
    result = run.results["hna"]
    periods = sorted(table["period"].unique().to_list())
    assert sorted(result.table["period"].unique().to_list()) == periods  # no pooled rows at all
    assert result.pooled_period == periods[-1]
    assert f"[{periods[-1]}]" in result.summary()
    latest = table.filter(pl.col("period") == periods[-1])
    assert _national(result) == latest["patients"].sum()


def test_empty_extract_and_empty_cohort_give_a_clear_result(project_copy: Path) -> None:
    table = _long_table(project_copy)
    run = run_audit(_catalogue(project_copy, table.head(0), [
        {"id": "hna", "title": "HNA", "numerator": "hna_offered"}]))
    result = run.results["hna"]
    assert (result.table.filter(pl.col("level") == "trust")["status"] == "not_assessed").all()
    assert any("no rows for this indicator" in w for w in result.warnings)
    run = run_audit(_catalogue(project_copy, table, [
        {"id": "hna", "title": "HNA", "numerator": "hna_offered", "cohort": "cancer_type = 'Ovarian'"}]))
    assert any("cohort selects nobody" in w for w in run.results["hna"].warnings)


def test_patient_level_indicator_without_a_cohort_uses_everyone(project_copy: Path) -> None:
    """Before: a polars ShapeError traceback."""
    doc = yaml.safe_load((project_copy / "indicators.yaml").read_text())
    ind = next(i for i in doc["indicators"] if i["id"] == "lung_stage12")
    ind.pop("cohort")
    doc["indicators"] = [ind]
    (project_copy / "indicators.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run = run_audit(load_catalogue(project_copy / "indicators.yaml"))
    acc = run.results["lung_stage12"].accounting
    excluded = {e.reason: e.rows for e in acc.exclusions}
    assert acc.balanced and acc.rows_read == run.datasets["patients"].rows_used
    assert excluded.get("not in the cohort", 0) == 0  # everyone is in it
    assert acc.rows_used > 0.9 * acc.rows_read  # only blank outcomes (stage unknown) are left out
    assert set(excluded) <= {"not in the cohort", "missing outcome (numerator is blank)"}
