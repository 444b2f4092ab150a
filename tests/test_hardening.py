"""Hostile and broken inputs end safely: a located problem or a clean exclusion, never a hang or traceback.

Each test reproduces one attack from issue #15 at a size that runs in well under a second once the
defence is in place (bounds are parameters, so the tests use small ones where a real attack needs a
large file). The timings and memory the attacks took before the fix are in the issue's note.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from audit_metrics.catalogue import YamlLimits, load_catalogue, parse_catalogue
from audit_metrics.exceptions import CatalogueError
from audit_metrics.expressions import ExpressionProblem, compile_expression

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "tests" / "catalogues" / "_base.yaml").read_text()


def _problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, file="cat.yaml", **kw)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


# --------------------------------------------------------------------------------------------
# item 2: denial of service from one catalogue


def _alias_bomb(levels: int) -> str:
    """A 'billion laughs' catalogue: each level repeats the previous one nine times (9**levels values)."""
    lines = ['bomb0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"bomb{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "version: 1\n" + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_its_line_without_expanding() -> None:
    """Before: 6 levels took 0.7 s and each level multiplied the time by ~8 (9 levels: minutes)."""
    text = _alias_bomb(9)  # 387 million values once expanded
    start = time.perf_counter()
    problems = _problems(text)
    elapsed = time.perf_counter() - start
    assert len(problems) == 1, problems
    # *a4 stands for 66,430 values (9**5 strings and their lists), so bomb5's (line 7) third alias passes
    # the bound of 200,000
    assert problems[0].startswith("cat.yaml:7: the catalogue expands to more than 200,000 values at alias *a4")
    assert elapsed < 5  # a generous bound on a linear scan of 10 lines; the bomb itself never ends


def test_modest_aliases_are_still_allowed() -> None:
    text = BASE.replace("defaults:\n  limits: [0.95, 0.998]", "defaults:\n  limits: &lim [0.95, 0.998]")
    text = text.replace("    better: higher", "    better: higher\n    limits: *lim")
    loaded = parse_catalogue(text, file="cat.yaml")
    assert loaded.options(loaded.indicator("lung_cns")).limits == (0.95, 0.998)


def test_recursive_alias_is_refused() -> None:
    """PyYAML builds a self-containing list from '&a [*a]'; walking it never ended (RecursionError)."""
    assert _problems("version: 1\nx: &a [1, *a]\n") == [
        "cat.yaml:2: alias *a refers to the value that contains it "
        "(hint: a recursive value never ends; write the setting out instead)"]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_a_located_problem_not_a_recursion_error(style: str) -> None:
    """Before: 1,000 levels of brackets gave a RecursionError traceback."""
    if style == "flow":
        text = "version: 1\nx: " + "[" * 1000 + "]" * 1000 + "\n"
        line = 2
    else:
        text = "version: 1\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 1000))
        line = 42  # line L opens level L - 1 (the root mapping is level 1, x's list on line 3 level 2)
    problems = _problems(text)
    assert len(problems) == 1
    assert problems[0].startswith(f"cat.yaml:{line}: nesting deeper than 40 levels")


def test_oversized_catalogue_is_refused_before_parsing(tmp_path: Path) -> None:
    limits = YamlLimits(max_bytes=len(BASE.encode()) - 1)
    assert _problems(BASE, limits=limits)[0].startswith(
        f"cat.yaml:1: the catalogue is {len(BASE.encode()):,} bytes, more than the limit of")
    path = tmp_path / "indicators.yaml"
    path.write_text(BASE)
    with pytest.raises(CatalogueError, match="more than the limit"):
        load_catalogue(path, limits=limits, check_data=False)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_catalogue_from_a_device_is_refused() -> None:
    """Before: read_text('/dev/zero') grew until memory ran out."""
    with pytest.raises(CatalogueError) as info:
        load_catalogue("/dev/zero")
    assert "not a regular file" in str(info.value)


def _or_chain(n: int) -> str:
    return " OR ".join(f"age = {i}" for i in range(n))


def test_long_or_chain_is_refused_before_parsing() -> None:
    """Before: checking a 3,000-term OR took 30.6 s and 2.9 GB (the pipeline then did it again);
    10,000 terms crashed the Streamlit server (SIGSEGV)."""
    start = time.perf_counter()
    with pytest.raises(ExpressionProblem) as info:
        compile_expression(_or_chain(10_000), {"age": pl.Int64})
    assert time.perf_counter() - start < 1
    assert "138,886 characters long, more than the limit of 20,000" in info.value.message
    with pytest.raises(ExpressionProblem) as info:
        compile_expression(_or_chain(1_000), {"age": pl.Int64})  # before: 1.7 s to check
    assert "1,999 operators" in info.value.message and "limit of 200" in info.value.message


def test_expression_bounds_count_operators_not_list_items() -> None:
    schema = {"age": pl.Int64, "code": pl.String}
    compile_expression(_or_chain(100), schema)  # 199 operators: allowed
    with pytest.raises(ExpressionProblem, match="201 operators"):
        compile_expression(_or_chain(101), schema)
    # a long IN list is one operator; quoted text is not scanned for operators
    codes = ", ".join(f"'C{i:02d}-x = y OR z'" for i in range(500))
    compile_expression(f"code IN ({codes})", schema)
    with pytest.raises(ExpressionProblem, match="characters long, more than the limit of 100"):
        compile_expression(f"code IN ({codes})", schema, max_length=100)


def test_long_expression_in_catalogue_is_located(tmp_path: Path) -> None:
    text = BASE.replace("cohort: \"tumour_site = 'Bowel' AND major_resection\"",
                        f"cohort: \"{_or_chain(1000)}\"")
    (tmp_path / "cat").mkdir()
    path = tmp_path / "cat" / "indicators.yaml"
    path.write_text(text.replace("../../sample_data", str(ROOT / "sample_data")))
    start = time.perf_counter()
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    elapsed = time.perf_counter() - start
    messages = [str(p) for p in info.value.problems]
    assert messages == [f"{path}:21: bowel_mort90.cohort: expression has 1,999 operators (AND, OR, =, ...), "
                        "more than the limit of 200 (hint: list values with IN ('a', 'b', ...), or derive a "
                        "true/false column in the extract)"]
    assert elapsed < 10  # dominated by reading the sample data's schema
