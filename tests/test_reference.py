"""The shipped reference geography (reference/nhs_trusts.csv, issue #9 item 2): built from the published
sources next to it, consistent, and checked against an independent NHS England file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import load_catalogue
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference"


def _builder():
    spec = importlib.util.spec_from_file_location("build_nhs_trusts", REFERENCE / "build_nhs_trusts.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trusts() -> pl.DataFrame:
    return pl.read_csv(REFERENCE / "nhs_trusts.csv", infer_schema=False)


def test_shipped_lookup_is_a_rebuild_of_its_sources(trusts: pl.DataFrame) -> None:
    """The file is exactly what build_nhs_trusts.py makes from reference/sources/ (no hand edits)."""
    assert _builder().build().equals(trusts)
    assert _builder().main(["--check"]) == 0


def test_lookup_is_complete_and_consistent(trusts: pl.DataFrame) -> None:
    assert trusts.height == 206 and trusts["trust_code"].is_unique().all()
    assert trusts.null_count().sum_horizontal().item() == 0
    assert trusts["cancer_alliance"].n_unique() == 21 and trusts["region"].n_unique() == 7
    assert trusts["icb_code"].n_unique() == 42
    # each ICB in one Cancer Alliance and one region
    for child, parent in (("icb_code", "cancer_alliance"), ("icb_code", "region")):
        assert trusts.group_by(child).agg(pl.col(parent).n_unique())[parent].max() == 1, (child, parent)
    # alliances are not nested in regions: Wessex spans Dorset (South West) and Hampshire (South East)
    spans = trusts.group_by("cancer_alliance").agg(pl.col("region").unique().sort()).filter(
        pl.col("region").list.len() > 1)
    assert spans.to_dicts() == [{"cancer_alliance": "Wessex Cancer Alliance", "region": ["South East", "South West"]}]
    # a few trusts everyone knows (ODS code, ICB, alliance, region)
    known = {"RCF": ("West Yorkshire and Harrogate Cancer Alliance", "North East and Yorkshire"),
             "RGT": ("East of England - North Cancer Alliance", "East of England"),
             "RJ1": ("South East London Cancer Alliance", "London"),
             "R0A": ("Greater Manchester Cancer Alliance", "North West")}
    rows = {r["trust_code"]: (r["cancer_alliance"], r["region"]) for r in trusts.iter_rows(named=True)}
    for code, expected in known.items():
        assert rows[code] == expected, code


def test_icbs_agree_with_nhs_englands_attribution_file(trusts: pl.DataFrame) -> None:
    """Independent source: NHS England's Trust-ICB attribution file (June 2022). 149 of the 152 trusts
    both list are in the same ICB; the three that differ are documented in reference/README.md."""
    attribution = pl.read_csv(REFERENCE / "sources" / "nhse_trust_icb_attribution_2022-06.csv", skip_rows=7,
                              infer_schema=False).select(pl.col("Code").alias("trust_code"),
                                                         pl.col("ICB Code").alias("icb_attributed"))
    both = trusts.join(attribution, on="trust_code")
    differ = both.filter(pl.col("icb_code") != pl.col("icb_attributed"))
    assert both.height == 152
    assert sorted(differ["trust_code"]) == ["RAN", "RWX", "RXK"]
    assert all(code in (REFERENCE / "README.md").read_text() for code in differ["trust_code"])


def test_one_catalogue_block_gives_alliance_and_region_rollups(tmp_path: Path) -> None:
    """A table with only ODS codes gets Cancer Alliance and region results from the units block alone."""
    (tmp_path / "t.csv").write_text("code,period,n,d\nRCF,2023,40,50\nRAE,2023,30,60\nRGT,2023,10,20\n"
                                    "XYZ,2023,1,2\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        "version: 1\n"
        "datasets:\n  t: {path: t.csv, period_column: period, unit_column: code}\n"
        f"units:\n  file: {REFERENCE / 'nhs_trusts.csv'}\n  code: trust_code\n  name: trust_name\n"
        "  groups: [cancer_alliance, region]\n"
        "indicators:\n  - {id: p, title: P, dataset: t, numerator: n, denominator: d, better: higher}\n",
        encoding="utf-8")
    run = run_audit(load_catalogue(tmp_path / "c.yaml"))
    table = run.results["p"].table
    alliance = table.filter(pl.col("level") == "cancer_alliance", pl.col("unit_code").str.starts_with("West Yorkshire"))
    assert alliance["observed"].to_list() == [70.0] and alliance["denominator"].to_list() == [110.0]
    assert "XYZ (1 row)" in " ".join(run.datasets["t"].notes)
