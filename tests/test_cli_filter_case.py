"""``audit-metrics outliers`` filters typed in another case ('--site lung') pick the value the results write
('Lung') when exactly one matches; the oracle is the file written with the values as the results write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_metrics.cli import _as_written, main


def test_typed_in_another_case_gives_the_same_file(catalogue_path: Path, tmp_path: Path) -> None:
    exact = ["--alliance", "Stonebridge Cancer Alliance", "--site", "Bowel", "--indicator", "bowel_emergency_dx"]
    typed = ["--alliance", " stonebridge cancer alliance", "--site", "BOWEL ", "--indicator", "Bowel_Emergency_DX"]
    assert main(["outliers", str(catalogue_path), *exact, "--out", str(tmp_path / "a.csv"), "--quiet"]) == 0
    assert main(["outliers", str(catalogue_path), *typed, "--out", str(tmp_path / "b.csv"), "--quiet"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_unknown_values_are_still_refused_with_the_choices(catalogue_path: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outliers", str(catalogue_path), "--site", "lungs", "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "--site 'lungs': no such tumour site" in err and "Lung" in err


def test_as_written() -> None:
    assert _as_written(["lung", "Bowel", "x"], ["Lung", "Bowel"]) == ("Lung", "Bowel", "x")
    assert _as_written(None, ["Lung"]) == ()
    # two values differing only in case: the typed one is kept when it is exact, and an ambiguous one as typed
    assert _as_written(["abc", "ABC", "Abc"], ["abc", "ABC"]) == ("abc", "ABC", "Abc")
