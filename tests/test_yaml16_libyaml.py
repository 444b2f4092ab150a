"""The catalogue read by LibYAML (#16) against the pure-Python loader, the oracle: the same catalogue and line of
every path for a text both read, and the same located problem for a text either refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile.corpus import all_variants, base_project

from audit_metrics import catalogue as cat
from audit_metrics.exceptions import CatalogueError

ROOT = Path(__file__).resolve().parents[1]

SNIPPETS = {
    "anchors": "version: 1\ndefaults: &d {limits: [0.95, 0.998]}\nother: *d\n",
    "block scalars": "version: 1\nnote: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
    "tags": "version: !!int 1\nx: !!str 0.5\ny: !!float 2\n",
    "bad tag value": "version: !!int x\n",
    "python tag": "version: !!python/object:os.system x\n",
    "non-finite": "version: 1\ndefaults:\n  limits: [.nan, .inf]\n",
    "quoted nan": "version: 1\ndefaults:\n  limits: ['.nan', \"1e999\"]\n",
    "huge number": "version: 1\ndefaults:\n  trim: 1e999\n",
    "tab indent": "version: 1\ndatasets:\n\tpatients: {}\n",
    "unclosed flow": "version: 1\nunits: {file: x.csv\n",
    "unclosed quote": "version: 1\nunits: \"file\n",
    "duplicate key": "version: 1\nversion: 2\n",
    "bom and crlf": "\ufeffversion: 1\r\nunits:\r\n  file: x.csv\r\n",
    "unicode": "version: 1\nunits:\n  file: 'Ysbyty Gwynedd \u00e9\u0301 \U0001f600.csv'\n",
    "document markers": "---\nversion: 1\n...\n",
    "two documents": "version: 1\n---\nversion: 2\n",
    "empty": "",
    "comment only": "# nothing\n",
    "list": "- 1\n- 2\n",
    "recursive alias": "a: &a [*a]\n",
    "deep": "version: " + "[" * 200 + "]" * 200 + "\n",
    "alias bomb": "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                  "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "control character": "version: 1\nx: \"a\x07b\"\n",
    "long simple key": "version: 1\n" + "k" * 1100 + ": 1\n",
    "colon in value": "version: 1\ntitle: a: b\n",
    "merge key": "version: 1\nbase: &b {a: 1}\nx:\n  <<: *b\n  c: 2\n",
    "yes no": "version: 1\nflags: [yes, no, on, off, y, n]\n",
    "dates": "version: 1\nwhen: 2024-02-29\nstamp: 2001-12-14t21:59:43.10-05:00\n",
    "octal hex": "version: 1\nnums: [0o17, 017, 0x1F, 1_000, 190:20:30]\n",
}


# one edit each to the bundled catalogue that LibYAML read and the pure-Python parser refused, or read otherwise
# (found by review16's fuzzing): such texts go to the pure-Python parser
EDITS = {
    "question mark in a flow value": ("{column: sex, label: sex}", "{column: sex, label: Sex?}"),
    "tab before a comment": ("limits: [0.95, 0.998]          # alert", "limits: [0.95, 0.998]\t# alert"),
    "tab after a colon": ("version: 1", "version:\t1"),
    "tab inside a flow list": ("limits: [0.95, 0.998]", "limits: [0.95,\t0.998]"),
    "comment after a block indicator": (
        "description: Of people who had major bowel cancer surgery, the share who died (from any cause) within 90 days.",
        "description: >#\n      Of people who had major bowel cancer surgery."),
    "second byte-order mark": ("# yaml-language-server", "\ufeff\ufeff# yaml-language-server"),
    "byte-order mark in a flow list": ("limits: [0.95, 0.998]", "limits: [0.95,\n\ufeff0.998]"),
}


def _texts() -> dict[str, str]:
    texts = {f"snippet {k}": v for k, v in SNIPPETS.items()}
    texts["indicators.yaml"] = (ROOT / "indicators.yaml").read_text(encoding="utf-8")
    for label, (old, new) in EDITS.items():
        assert old in texts["indicators.yaml"], label
        texts[f"edit: {label}"] = texts["indicators.yaml"].replace(old, new, 1)
    for path in sorted((ROOT / "tests" / "catalogues").glob("*.yaml")):
        texts[f"catalogues/{path.name}"] = path.read_text(encoding="utf-8")
    return texts


def _outcome(text: str, fast: type[yaml.SafeLoader] | None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cat, "_FAST_LOADER", fast)
    try:
        loaded = cat.parse_catalogue(text, file="indicators.yaml", base_dir=ROOT)
    except CatalogueError as exc:
        return ("refused", [str(p) for p in exc.problems])
    return ("read", loaded.catalogue.model_dump(), loaded.line_map)


@pytest.mark.skipif(getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML built without LibYAML")
@pytest.mark.parametrize(("name", "text"), sorted(_texts().items()))
def test_libyaml_reads_as_the_python_loader(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _outcome(text, yaml.CSafeLoader, monkeypatch) == _outcome(text, None, monkeypatch)


@pytest.mark.skipif(getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML built without LibYAML")
@pytest.mark.parametrize("variant", [v for v in all_variants() if v.kind == "catalogue"], ids=lambda v: v.id)
def test_libyaml_on_the_hostile_catalogues(variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    path = base_project(root)
    variant.mutate(root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pytest.skip("not a readable text file: refused before any YAML is read")
    assert _outcome(text, yaml.CSafeLoader, monkeypatch) == _outcome(text, None, monkeypatch)


def test_the_fast_loader_is_used_when_installed() -> None:
    assert cat._FAST_LOADER is getattr(yaml, "CSafeLoader", None)


@pytest.mark.parametrize(("text", "line"), [("version: 1\nunits:\n  file: a\ud800b.csv\n", 3), ("\udfff", 1)])
def test_a_lone_surrogate_is_a_located_problem(text: str, line: int) -> None:
    """Text handed over as such (the dashboard's editor) can hold half of a surrogate pair, which neither YAML
    parser can encode: a UnicodeEncodeError escaped to the caller (review16); now a located problem."""
    with pytest.raises(CatalogueError) as info:
        cat.parse_catalogue(text, file="indicators.yaml", base_dir=ROOT)
    (problem,) = info.value.problems
    assert problem.line == line and "half of a surrogate pair" in problem.message
