"""The catalogue: the bundled file validates; every seeded mistake is reported on its line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audit_metrics.catalogue import catalogue_json_schema, load_catalogue, parse_catalogue
from audit_metrics.cli import main
from audit_metrics.exceptions import CatalogueError

CORPUS = sorted(p for p in (Path(__file__).parent / "catalogues").glob("*.yaml") if not p.name.startswith("_"))


def test_bundled_catalogue_is_valid(catalogue_path: Path) -> None:
    loaded = load_catalogue(catalogue_path)
    cat = loaded.catalogue
    assert len(cat.indicators) >= 20
    assert len({i.tumour_site for i in cat.indicators if i.tumour_site != "All cancers"}) >= 6
    assert sum(i.risk_adjustment is not None for i in cat.indicators) >= 10
    assert sum(not i.is_patient_level for i in cat.indicators) >= 3


def test_corpus_has_at_least_15_distinct_mistakes() -> None:
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_broken_catalogue_reports_mistake_on_its_line(path: Path) -> None:
    header = re.match(r"# expect line (\w+): (.*)", path.read_text().splitlines()[0])
    assert header, f"{path.name} has no '# expect line N: message' header"
    line, message = header.group(1), header.group(2)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    problems = info.value.problems
    matching = [p for p in problems if message in str(p)]
    assert matching, f"expected {message!r}, got {[str(p) for p in problems]}"
    if line != "any":
        assert int(line) in [p.line for p in matching], [str(p) for p in matching]
    assert all(str(path) in str(p) for p in problems)  # every problem names the file


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    """Schema mistakes do not hide semantic ones (unknown columns, datasets) elsewhere."""
    base = Path(__file__).parent / "catalogues" / "_base.yaml"
    text = base.read_text()
    text = text.replace("better: lower", "beter: lower").replace("overdispersion: additive", "overdispersion: x")
    text = text.replace("denominator: patients", "denominator: patient")
    path = base.parent / "_all_at_once.yaml"
    path.write_text(text)
    try:
        with pytest.raises(CatalogueError) as info:
            load_catalogue(path)
    finally:
        path.unlink()
    messages = " | ".join(str(p) for p in info.value.problems)
    assert "beter" in messages and "overdispersion" in messages
    assert "unknown column 'patient'" in messages


def test_python_tags_are_rejected_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"version: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(CatalogueError):
        parse_catalogue(text)
    assert not marker.exists()


def test_schema_file_is_current(root: Path) -> None:
    """indicators.schema.json (referenced by indicators.yaml) matches `audit-metrics schema`."""
    on_disk = json.loads((root / "indicators.schema.json").read_text())
    assert on_disk == catalogue_json_schema(), "run: audit-metrics schema --out indicators.schema.json"
    assert "indicators.schema.json" in (root / "indicators.yaml").read_text().splitlines()[0]


def test_schema_validates_bundled_catalogue_shape() -> None:
    schema = catalogue_json_schema()
    assert set(schema["required"]) >= {"version", "datasets", "units", "indicators"}
    ind = schema["$defs"]["IndicatorSpec"]
    assert ind["additionalProperties"] is False
    assert {"id", "title", "numerator", "better", "statistic", "risk_adjustment"} <= set(ind["properties"])


def test_cli_validate_exit_codes(catalogue_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(catalogue_path)]) == 0
    broken = Path(__file__).parent / "catalogues" / "unknown_dataset.yaml"
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"unknown_dataset\.yaml:\d+: unknown dataset 'lung_cnss'", err)
    assert "Traceback" not in err


def test_cli_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err


def test_options_inherit_from_defaults(catalogue_path: Path) -> None:
    loaded = load_catalogue(catalogue_path, check_data=False)
    bowel = loaded.options(loaded.indicator("bowel_mort90"))
    breast = loaded.options(loaded.indicator("breast_mort1y"))
    assert bowel.limits == (0.95, 0.998) and bowel.overdispersion == "additive"
    assert breast.overdispersion == "none" and breast.limit_method == "exact"
