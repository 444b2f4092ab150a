"""Build reference/nhs_trusts.csv (ODS code -> name -> ICB -> Cancer Alliance -> NHS region) from the
published files in reference/sources/ (provenance, dates and licences: reference/README.md).

    python reference/build_nhs_trusts.py            # rewrite reference/nhs_trusts.csv
    python reference/build_nhs_trusts.py --check    # exit 1 if the shipped file differs from a rebuild

A trust belongs to the Cancer Alliance of its ICB: ODS records each trust's ICB (its "higher level
health geography"); every ICB lies in one Cancer Alliance in NHS England's 2022 sub-ICB mapping (checked
below, so a future mapping that splits an ICB fails loudly instead of guessing).
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
OUT = HERE / "nhs_trusts.csv"
ETR = SOURCES / "ods_etr_2023-12.csv"
ALLIANCES = SOURCES / "ncpes_subicb_to_cancer_alliance_2022_v1.4.csv"
REGIONS = SOURCES / "ons_sicbl22_icb22_nhser22.csv"
ENGLISH_REGIONS = ("Y56", "Y58", "Y59", "Y60", "Y61", "Y62", "Y63")  # ODS national groupings of NHS England


def build() -> pl.DataFrame:
    """The lookup, one row per open English NHS trust, sorted by code."""
    etr = pl.read_csv(ETR, infer_schema=False)
    trusts = etr.select(
        pl.col("Organisation Code").str.strip_chars().alias("trust_code"),
        pl.col("Name").str.strip_chars().alias("trust_name"),
        pl.col("National Grouping").alias("region_code"),
        pl.col("Higher Level Health Geography").alias("icb_code"),
        pl.col("Close Date").alias("close_date"),
    ).filter(pl.col("region_code").is_in(ENGLISH_REGIONS),
             pl.col("close_date").is_null() | (pl.col("close_date") == ""))
    alliance = pl.read_csv(ALLIANCES, infer_schema=False)
    per_icb = alliance.group_by("ICB Code").agg(pl.col("ICB").first().alias("icb_name"),
                                                pl.col("Cancer Alliance Code").unique().alias("codes"),
                                                pl.col("Cancer Alliance").first().alias("cancer_alliance"))
    split = per_icb.filter(pl.col("codes").list.len() > 1)
    if split.height:
        msg = f"ICBs in more than one Cancer Alliance: {split['ICB Code'].to_list()}; map trusts by hand"
        raise SystemExit(msg)
    per_icb = per_icb.select(pl.col("ICB Code").alias("icb_code"), "icb_name",
                             pl.col("codes").list.first().alias("cancer_alliance_code"), "cancer_alliance")
    regions = (pl.read_csv(REGIONS, infer_schema=False)
               .select(pl.col("NHSER22CDH").alias("region_code"), pl.col("NHSER22NM").alias("region"))
               .unique("region_code"))
    out = (trusts.join(per_icb, on="icb_code", how="left").join(regions, on="region_code", how="left")
           .select("trust_code", "trust_name", "icb_code", "icb_name", "cancer_alliance_code", "cancer_alliance",
                   "region_code", "region")
           .sort("trust_code"))
    missing = out.filter(pl.col("cancer_alliance").is_null() | pl.col("region").is_null())
    if missing.height:
        msg = f"trusts without an alliance or region: {missing['trust_code'].to_list()}"
        raise SystemExit(msg)
    return out


def main(argv: list[str]) -> int:
    table = build()
    if "--check" in argv:
        shipped = pl.read_csv(OUT, infer_schema=False)
        same = shipped.equals(table)
        print(f"{OUT.name}: {'matches' if same else 'DIFFERS FROM'} a rebuild from reference/sources/ "
              f"({table.height} trusts)")
        return 0 if same else 1
    table.write_csv(OUT)
    print(f"wrote {OUT} ({table.height} trusts, {table['cancer_alliance'].n_unique()} Cancer Alliances, "
          f"{table['region'].n_unique()} regions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
