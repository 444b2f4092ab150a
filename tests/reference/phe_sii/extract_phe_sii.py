"""Extract the SII/RII test cases used by tests/test_inequality.py from PHEindicatormethods' test workbook.

Usage (from the repository root, with the project's environment)::

    git -C PHEindicatormethods show 093fd288d8f8949dbcfbed70049dbbf385b6141d:tests/testthat/testdata_SII.xlsx \
        > testdata_SII.xlsx
    .venv/bin/python tests/reference/phe_sii/extract_phe_sii.py testdata_SII.xlsx

It reads the workbook's only sheet as text (so numbers keep the digits the workbook stores), keeps the
records of the test blocks listed in ``BLOCKS`` (the ``SII_test_grouped[first:last, ]`` row ranges of the
package's ``tests/testthat/testSII.R``; RecordNo equals the R row number) and the columns the test reads,
and writes ``testdata_SII_cases.csv`` next to this script. Nothing is recomputed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

# (first RecordNo, last RecordNo): the phe_sii call in testSII.R that the block feeds
BLOCKS = {
    (1, 20): "value_type = 0 (normal), deciles, two areas",
    (61, 70): "value_type = 0, quintiles (SII only: 'only have SII available from Excel tool')",
    (71, 90): "value_type = 1 (rate), deciles",
    (91, 110): "value_type = 2 (proportion), deciles",
    (306, 325): "value_type = 1, transform = TRUE (log)",
    (326, 345): "value_type = 2, transform = TRUE (logit)",
}
COLUMNS = ["RecordNo", "TestDescription", "Area", "Quantile", "Population", "Value", "ValueType",
           "sii", "rii", "Intercept"]
OUT = Path(__file__).with_name("testdata_SII_cases.csv")


def extract(workbook: Path) -> pl.DataFrame:
    """The selected records, columns as stored (text), in RecordNo order."""
    sheet = pl.read_excel(workbook, sheet_id=1, infer_schema_length=0)
    record = pl.col("RecordNo").cast(pl.Int64)
    keep = pl.any_horizontal(record.is_between(first, last) for first, last in BLOCKS)
    return sheet.filter(keep).select(COLUMNS).sort(record)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: extract_phe_sii.py PATH/TO/testdata_SII.xlsx")
    cases = extract(Path(sys.argv[1]))
    cases.write_csv(OUT)
    print(f"{cases.height} records written to {OUT}")
