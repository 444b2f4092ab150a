"""Case ascertainment (records per trust against the cases expected from hospital activity data), which the trust
profile warns on below 80%. It had no test; its counts are now taken lazily (#16: an eager group-by copied every
column of the loaded extract first, +390 MB on 2M rows).

Oracle: the loaded extract's unit codes counted in Python, and the units file's expected cases read with the csv
module (the catalogue's ``units.expected_cases`` column)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from audit_metrics.catalogue import load_catalogue
from audit_metrics.io import load_all
from audit_metrics.pipeline import run_audit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample():
    loaded = load_catalogue(ROOT / "indicators.yaml")
    return loaded, run_audit(loaded, only=["bowel_mort90"])


def test_records_and_ascertainment_match_a_count_by_hand(sample) -> None:
    loaded, run = sample
    raw = yaml.safe_load((ROOT / "indicators.yaml").read_text())
    units = raw["units"]
    with (ROOT / units["file"]).open(newline="") as fh:
        expected = {r[units["code"]]: float(r[units["expected_cases"]]) for r in csv.DictReader(fh)}
    _, datasets = load_all(loaded, only=["bowel_mort90"])
    frame = datasets["patients"].frame
    counted = Counter(frame[raw["units"]["code"]].to_list())
    table = run.case_ascertainment("patients")
    assert table.height == len(expected)
    for r in table.iter_rows(named=True):
        assert r["records"] == counted.get(r["unit_code"], 0)
        assert r["case_ascertainment"] == pytest.approx(counted.get(r["unit_code"], 0) / expected[r["unit_code"]],
                                                        rel=1e-12)
    assert sum(table["records"]) == frame.height  # every kept record belongs to a listed trust


def test_no_expected_cases_or_no_dataset_gives_an_empty_table(sample) -> None:
    _, run = sample
    empty = run.case_ascertainment("no_such_dataset")
    assert empty.height == 0 and empty.columns == ["unit_code", "records", "case_ascertainment"]
