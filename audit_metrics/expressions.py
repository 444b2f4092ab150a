"""The catalogue's safe expression language: SQL-style boolean expressions over extract columns.

Expressions are parsed by polars' SQL parser (``pl.sql_expr``) into polars expressions. That parser
builds a query plan over the columns of a frame; it cannot call Python, read files or run code.
Statement keywords are refused outright so that a mistake gets a clear message.
"""

from __future__ import annotations

import difflib
import re

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
        dtype = pl.DataFrame(schema=schema).select(expr.alias("_x")).schema["_x"]
    except Exception as exc:
        first = str(exc).splitlines()[0]
        msg = f"expression {text!r} does not fit the column types: {first}"
        raise ExpressionProblem(msg, "compare numbers with numbers and text with 'quoted text'") from None
    if boolean and dtype != pl.Boolean:
        msg = f"expression {text!r} gives {dtype}, not true/false"
        raise ExpressionProblem(msg, "use a comparison such as \"age >= 70\" or a true/false column")
    return expr
