"""The catalogue's safe expression language: SQL-style boolean expressions over extract columns.

Expressions are parsed by polars' SQL parser (``pl.sql_expr``) into polars expressions. That parser
builds a query plan over the columns of a frame; it cannot call Python, read files or run code.
Statement keywords are refused outright so that a mistake gets a clear message.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

__all__ = ["ExpressionProblem", "compile_expression"]

_FORBIDDEN = re.compile(r"\b(select|from|insert|update|delete|drop|create|alter|attach|copy|pragma)\b",
                        re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^']|'')*'")
# every operator that joins two terms; the parser and planner are slower than linear in their number
# (1,000 ORs took 3.4 s to check, 10,000 crashed the server), so the count is bounded before parsing
_OPERATORS = re.compile(r"\b(?:and|or|not|is|like|ilike|in|between)\b|<=|>=|<>|!=|==|\|\||[=<>+\-*/%]",
                        re.IGNORECASE)
MAX_LENGTH = 20_000
MAX_OPERATORS = 200


class ExpressionProblem(ValueError):
    """An expression that does not parse, names an unknown column or is not boolean."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)


# Checked on polars' own plan of the expression (its JSON form), so that what validates also runs
# on any data of the declared types, one row at a time.
_ARITHMETIC = {"Plus", "Minus", "Multiply", "TrueDivide", "FloorDivide", "Modulus"}
_WIDE_TARGETS = {"Float64", "Float32", "Int64", "String"}
_AGGREGATE = ("aggregate functions (COUNT, SUM, AVG, MIN, MAX, FIRST ...) summarise the whole extract, so a "
              "condition using one would depend on every other patient")
_ROW_HINT = "a condition looks at one patient's own values, e.g. \"age >= 75 AND stage = '4'\""


def _nodes(tree: Any) -> Iterator[Any]:
    """Every node of a serialised expression (dicts, lists and bare names such as "Len")."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _from_tree(tree: Any) -> pl.Expr:
    return pl.Expr.deserialize(io.StringIO(json.dumps(tree)), format="json")


def _dtype(tree: Any, schema: pl.Schema | dict[str, pl.DataType]) -> pl.DataType | None:
    try:
        return pl.DataFrame(schema=schema).select(_from_tree(tree).alias("_x")).schema["_x"]
    except Exception:
        return None


def _type_name(dtype: Any) -> str:
    return dtype if isinstance(dtype, str) else next(iter(dtype), "?") if isinstance(dtype, dict) else "?"


def _row_wise_problem(tree: Any, schema: pl.Schema | dict[str, pl.DataType]) -> tuple[str, str] | None:
    """(message, hint) if the expression is not a row-by-row condition that always runs, else None."""
    for node in _nodes(tree):
        if node == "Len" or (isinstance(node, dict) and ("Agg" in node or "Len" in node)):
            return _AGGREGATE, _ROW_HINT
        if not isinstance(node, dict):
            continue
        if "Window" in node or "Over" in node:
            return "window functions (... OVER (...)) compare a patient with other rows", _ROW_HINT
        if "Explode" in node:
            return "UNNEST changes the number of rows", _ROW_HINT
        function = node.get("Function", {}).get("function") if isinstance(node.get("Function"), dict) else None
        text = json.dumps(function) if function is not None else ""
        if '"Range"' in text:
            return "row numbers and ranges depend on the order of the extract", _ROW_HINT
        if '"Strptime"' in text:
            return ("reading text as a date (DATE(), STRPTIME) fails on any value that is not a date",
                    "declare the column as a date under the dataset's columns (e.g. columns: {diagnosis_date: "
                    "date}) and compare with DATE 'YYYY-MM-DD'")
        cast = node.get("Cast")
        if isinstance(cast, dict) and cast.get("options") == "Strict":
            target = _type_name(cast.get("dtype", {}).get("Literal") if isinstance(cast.get("dtype"), dict)
                                else cast.get("dtype"))
            source = _dtype(cast.get("expr"), schema)
            safe = target == "String" or (source is not None and (
                str(source) == target or ((source.is_integer() or source == pl.Boolean) and target in _WIDE_TARGETS)))
            if not safe:
                return (f"CAST/:: from {source if source is not None else 'this value'} to {target} fails at run "
                        "time on a value that does not convert",
                        "declare the column's type under the dataset's columns (e.g. columns: {stage: integer}): "
                        "values that do not convert are then excluded and counted")
    return None


class _TooDeep(Exception):
    """Polars' plan reader stops at a fixed depth (about 60 nested operations)."""


def _widen_integer_arithmetic(tree: Any, schema: pl.Schema | dict[str, pl.DataType]) -> tuple[Any, bool]:
    """Integer operands of + - * / % as 64-bit floats: polars' integer arithmetic wraps silently on
    overflow (an Int8 column: 120 + 120 = -16), floats are exact to 2**53 and never wrap."""
    changed = False

    def widen(operand: Any) -> Any:
        nonlocal changed
        dtype = _dtype(operand, schema)
        if dtype is None:  # the type of a part could not be worked out: do not guess
            raise _TooDeep
        if dtype.is_integer():
            changed = True
            return {"Cast": {"expr": operand, "dtype": {"Literal": "Float64"}, "options": "NonStrict"}}
        return operand

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) for k, v in node.items()}
        binary = node.get("BinaryExpr")
        if isinstance(binary, dict) and binary.get("op") in _ARITHMETIC:
            binary["left"], binary["right"] = widen(binary["left"]), widen(binary["right"])
        function = node.get("Function")
        if isinstance(function, dict) and isinstance(function.get("function"), dict):
            sql = function["function"].get("Sql")
            if ("Pow" in function["function"] or (isinstance(sql, dict) and "Binary" in sql and sql["Binary"] not in {
                    "Gt", "GtEq", "Lt", "LtEq", "Eq", "NotEq", "And", "Or"})):
                function["input"] = [widen(i) for i in function["input"]]
        return node

    return walk(tree), changed


def _probe_frame(schema: pl.Schema | dict[str, pl.DataType]) -> pl.DataFrame:
    """Six rows of awkward values for each column type: extremes, empty text, text that is not a number."""
    values: dict[str, list[Any]] = {}
    for name, dtype in schema.items():
        if dtype.is_integer():
            info = (-(2 ** 63), 2 ** 63 - 1) if dtype == pl.Int64 else None
            lo, hi = info or (0, 1)
            if info is None:
                bits = int("".join(c for c in str(dtype) if c.isdigit()) or 32)
                lo, hi = (0, 2 ** bits - 1) if str(dtype).startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            values[name] = [0, 1, hi, lo, -1 if lo < 0 else 2, None]
        elif dtype.is_float():
            values[name] = [0.0, -1.5, float("inf"), float("-inf"), 1e308, None]
        elif dtype == pl.String:
            values[name] = ["", "abc", "12", "2020-13-45", "-1", None]
        elif dtype == pl.Boolean:
            values[name] = [True, False, None, True, False, None]
        elif dtype == pl.Date:
            values[name] = [date(1900, 1, 1), date(2999, 12, 31), None, date(2020, 2, 29), date(1970, 1, 1), None]
        elif isinstance(dtype, pl.Datetime):  # within a nanosecond column's range (1677-2262): pandas' and Spark's
            values[name] = [datetime(1900, 1, 1), datetime(2200, 12, 31, 23, 59), None, datetime(2020, 2, 29, 12),
                            datetime(1970, 1, 1), None]
        elif isinstance(dtype, pl.Duration):  # a length of time: compared with a date it fails on any value
            values[name] = [timedelta(0), timedelta(days=36500), None, timedelta(days=-1), timedelta(seconds=1), None]
        elif dtype == pl.Time:
            values[name] = [time(0), time(23, 59, 59), None, time(12), time(0, 0, 1), None]
        else:
            values[name] = [None] * 6
    return pl.DataFrame(values, schema=dict(schema), strict=False)


def _did_you_mean(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def compile_expression(text: str, schema: pl.Schema | dict[str, pl.DataType], *,
                       boolean: bool = True, max_length: int = MAX_LENGTH,
                       max_operators: int = MAX_OPERATORS) -> pl.Expr:
    """Parse ``text`` and check it against ``schema``.

    Parameters
    ----------
    text
        An SQL-style expression such as ``tumour_site = 'Bowel' AND major_resection``.
    schema
        The column names and types of the dataset the expression runs on.
    boolean
        Require the expression to evaluate to a boolean.
    max_length, max_operators
        Bounds on the text's length and on its number of operators (AND, OR, =, + ...), checked
        before parsing. A list of values in ``IN (...)`` counts once, however long.

    Raises
    ------
    ExpressionProblem
        With a plain-English message and, where possible, a hint.
    """
    if not isinstance(text, str) or not text.strip():
        msg = "expression is empty"
        raise ExpressionProblem(msg, "write a condition such as \"tumour_site = 'Bowel'\"")
    if len(text) > max_length:
        msg = f"expression is {len(text):,} characters long, more than the limit of {max_length:,}"
        raise ExpressionProblem(msg, "derive a true/false column in the extract instead")
    unquoted = _QUOTED.sub("''", text)
    operators = len(_OPERATORS.findall(unquoted))
    if operators > max_operators:
        msg = f"expression has {operators:,} operators (AND, OR, =, ...), more than the limit of {max_operators:,}"
        raise ExpressionProblem(msg, "list values with IN ('a', 'b', ...), or derive a true/false column "
                                "in the extract")
    bad = _FORBIDDEN.search(unquoted)
    if bad:
        msg = f"{bad.group(0).upper()!r} is not allowed: an expression is a condition, not a query"
        raise ExpressionProblem(msg, "write only the condition, e.g. \"age >= 18 AND sex = 'F'\"")
    try:
        expr = pl.sql_expr(text)
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError
        first = str(exc).splitlines()[0]
        msg = f"cannot parse expression {text!r}: {first}"
        raise ExpressionProblem(msg, "text values need single quotes, e.g. stage = '4'") from None
    columns = list(schema)
    for name in expr.meta.root_names():
        if name not in schema:
            hint = _did_you_mean(name, columns)
            if hint is None and name[:1].isupper():
                hint = f"if {name!r} is a text value, put it in single quotes: '{name}'"
            msg = f"unknown column {name!r}"
            raise ExpressionProblem(msg, hint or f"columns available: {', '.join(columns)}")
    try:
        tree = json.loads(expr.meta.serialize(format="json"))
    except Exception:  # pragma: no cover - a polars without JSON plans: the type check below still runs
        tree = None
    if tree is not None:
        found = _row_wise_problem(tree, schema)
        if found is not None:
            msg = f"expression {text!r}: {found[0]}"
            raise ExpressionProblem(msg, found[1])
        try:
            tree, widened = _widen_integer_arithmetic(tree, schema)
            if widened:
                expr = _from_tree(tree)
        except (_TooDeep, pl.exceptions.ComputeError):
            msg = f"expression {text!r} nests its arithmetic too deeply to be checked"
            raise ExpressionProblem(msg, "derive the value as a column of the extract") from None
    # the columns the expression reads (a dataset has dozens; building frames of all of them for each of a
    # catalogue's ~40 expressions cost 0.2 s of a national run)
    schema = {name: schema[name] for name in expr.meta.root_names()}
    try:
        dtype = pl.DataFrame(schema=schema).select(expr.alias("_x")).schema["_x"]
    except Exception as exc:
        first = str(exc).splitlines()[0]
        msg = f"expression {text!r} does not fit the column types: {first}"
        raise ExpressionProblem(msg, "compare numbers with numbers and text with 'quoted text'") from None
    if boolean and dtype != pl.Boolean:
        msg = f"expression {text!r} gives {dtype}, not true/false"
        raise ExpressionProblem(msg, "use a comparison such as \"age >= 70\" or a true/false column")
    try:  # a last check on awkward values of the declared types: what validates must run
        _probe_frame(schema).select(expr.alias("_x"))
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        msg = f"expression {text!r} fails at run time on some values of these column types: {first}"
        raise ExpressionProblem(msg, "use literal numbers for lengths and positions, and declare column types "
                                "under the dataset's columns instead of converting text in the expression") from None
    return expr
