"""Cut the 62-day rows out of NHS England's Cancer Waiting Times provider extract for October 2023.

Usage (from the repository root)::

    .venv/bin/python examples/cwt_62_day/extract_62_day.py CWT-CRS-Oct-2023-Data-Extract-Provider.xlsx

Reads the workbook's one sheet ("CWT CRS Provider Extract", column names on row 1) as text, so every cell
keeps the characters the publisher wrote (6.5 stays 6.5), keeps the rows of the 62-day combined standard
broken down by treatment modality (STANDARD = "62-day Combined", TREATMENT MODALITY other than
"ALL MODALITIES"; their CANCER TYPE is "ALL CANCERS"), all eleven columns, in the workbook's order, and
writes them to ``cwt-62-day-provider-2023-10.csv`` next to this script. Nothing is recomputed or rounded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

OUT = Path(__file__).with_name("cwt-62-day-provider-2023-10.csv")


def extract(workbook: Path) -> pl.DataFrame:
    sheet = pl.read_excel(workbook, sheet_name="CWT CRS Provider Extract", infer_schema_length=0)
    return sheet.filter(pl.col("STANDARD") == "62-day Combined", pl.col("TREATMENT MODALITY") != "ALL MODALITIES")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: extract_62_day.py PATH/TO/CWT-CRS-Oct-2023-Data-Extract-Provider.xlsx")
    rows = extract(Path(sys.argv[1]))
    rows.write_csv(OUT)
    print(f"{rows.height} rows written to {OUT}")
