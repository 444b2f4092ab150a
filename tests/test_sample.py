"""The synthetic sample generator: deterministic, realistic shape, committed files reproducible."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from audit_metrics.sample import PLANTED, write_sample
from audit_metrics.sample_trends import write_monthly


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    write_sample(tmp_path / "a", patients=5_000, seed=7)
    write_sample(tmp_path / "b", patients=5_000, seed=7)
    write_sample(tmp_path / "c", patients=5_000, seed=8)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a")["patients.parquet"] != _bytes(tmp_path / "c")["patients.parquet"]


def test_committed_sample_is_the_generators_output(tmp_path: Path, root: Path) -> None:
    """sample_data/ is exactly what `audit-metrics sample` writes (nothing hand-edited)."""
    write_sample(tmp_path)
    write_monthly(tmp_path)  # the monthly extract for trend charts (sample_trends.py)
    assert _bytes(tmp_path) == {k: v for k, v in _bytes(root / "sample_data").items() if k != "README.md"}


def test_sample_shape(root: Path) -> None:
    trusts = pl.read_csv(root / "sample_data" / "trusts.csv")
    assert trusts.height == 140
    assert trusts["cancer_alliance"].n_unique() == 21
    assert trusts["region"].n_unique() == 7
    assert trusts["trust_code"].str.starts_with("Z").all()  # no real ODS code starts with Z
    pts = pl.read_parquet(root / "sample_data" / "patients.parquet")
    assert pts["tumour_site"].n_unique() >= 6
    assert pts["financial_year"].n_unique() == 3
    for col in ("stage", "performance_status", "imd_quintile", "asa_grade"):
        assert col in pts.columns
    assert pts["performance_status"].null_count() > 0  # missing case-mix is present
    assert (pts["stage"] == "Unknown").sum() > 0
    sizes = pts.group_by("trust_code").len()["len"]
    assert sizes.max() > 5 * sizes.min()  # realistic volume spread
    assert sum((root / "sample_data").stat().st_size for _ in [0]) >= 0
    total = sum(p.stat().st_size for p in (root / "sample_data").iterdir())
    assert total < 15 * 1024 * 1024
    assert len(PLANTED) >= 6
