"""#16: the catalogue's data is built from the composed nodes, not from a second parse of the text.

Oracle: ``yaml.safe_load`` of the same text (the call it replaces), on every catalogue in the
repository and on texts that fail at each stage (scanner, composer, constructor).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audit_metrics.catalogue import _compose_and_construct

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([ROOT / "indicators.yaml", *(p for p in ROOT.glob("tests/catalogues/*.yaml")
                                           if p.name != "tag_value_mismatch.yaml"), *ROOT.glob("examples/*/*.yaml")])


def _outcome(load, text: str):
    try:
        return "ok", load(text)
    except Exception as exc:  # the oracle raises ValueError for "!!int x"
        return "error", type(exc).__name__, str(exc)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_data_as_safe_load(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _outcome(lambda t: _compose_and_construct(t)[1], text) == _outcome(yaml.safe_load, text)


@pytest.mark.parametrize("text", [
    "", "# only a comment\n", "- 1\n- 2\n", "a: &x [1, {b: 2}]\nc: *x\nd: 1.5\ne: 2024-01-01\n",
    "a: 1\na: 2\n", "a: b: c\n", "a: [1, 2\n", "a: *missing\n", "a: !!python/name:os.system x\n",
    "--- 1\n--- 2\n", "a:\n\tb: 1\n",
])
def test_same_outcome_as_safe_load(text: str) -> None:
    assert _outcome(lambda t: _compose_and_construct(t)[1], text) == _outcome(yaml.safe_load, text)


@pytest.mark.parametrize(("text", "line"), [("a: !!int x\n", 1), ("a: 1\nb:\n  - !!float y\n", 3)])
def test_tag_that_cannot_make_its_value_is_located(text: str, line: int) -> None:
    """safe_load raises a bare ValueError here (no position); ours is a YAML error at the value's line."""
    with pytest.raises(ValueError, match=r"invalid literal|could not convert"):  # the oracle: no position
        yaml.safe_load(text)
    with pytest.raises(yaml.MarkedYAMLError) as exc:
        _compose_and_construct(text)
    assert exc.value.problem_mark.line + 1 == line
    assert "cannot be read as" in exc.value.problem


def test_nodes_are_those_of_compose() -> None:
    text = (ROOT / "indicators.yaml").read_text(encoding="utf-8")
    root, _ = _compose_and_construct(text)
    expected = yaml.compose(text, Loader=yaml.SafeLoader)

    def shape(node):
        if isinstance(node, yaml.MappingNode):
            return ("map", node.start_mark.line, [(shape(k), shape(v)) for k, v in node.value])
        if isinstance(node, yaml.SequenceNode):
            return ("seq", node.start_mark.line, [shape(v) for v in node.value])
        return (node.tag, node.start_mark.line, node.value)

    assert shape(root) == shape(expected)
