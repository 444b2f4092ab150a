"""The extract's repeated-key rows (io._repeated_key_rows, #16) are exactly the rows polars' own
``is_duplicated`` marks, nulls equal to nulls, in the same ascending order: the oracle is polars' method on the
same key, over random keys of one to three columns (integers, text, flags, with nulls) and edge cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audit_metrics.io import _repeated_key_rows


def _oracle(frame: pl.DataFrame, columns: list[str]) -> list[int]:
    key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
    return frame.select(key.is_duplicated()).to_series().arg_true().to_list() if frame.height else []


def _column(rng: np.random.Generator, n: int) -> pl.Series:
    kind, spread = int(rng.integers(0, 3)), int(rng.integers(1, 30))
    values = rng.integers(0, spread, n)
    nulls = rng.random(n) < rng.random() * 0.4
    if kind == 0:
        return pl.Series([None if z else int(v) for v, z in zip(values, nulls, strict=True)], dtype=pl.Int64)
    if kind == 1:
        return pl.Series([None if z else f"P{v}" for v, z in zip(values, nulls, strict=True)], dtype=pl.String)
    return pl.Series([None if z else bool(v % 2) for v, z in zip(values, nulls, strict=True)], dtype=pl.Boolean)


@pytest.mark.parametrize("seed", range(4))
def test_same_rows_as_is_duplicated_on_random_keys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(0, 80))
        frame = pl.DataFrame({f"c{k}": _column(rng, n) for k in range(int(rng.integers(1, 4)))})
        columns = frame.columns
        assert _repeated_key_rows(frame, columns).to_list() == _oracle(frame, columns), frame


def test_edge_cases() -> None:
    unique = pl.DataFrame({"id": list(range(1000)), "x": [0] * 1000})
    assert _repeated_key_rows(unique, ["id"]).to_list() == [] == _oracle(unique, ["id"])
    assert _repeated_key_rows(unique, ["x"]).to_list() == list(range(1000))
    nulls = pl.DataFrame({"id": [None, 1, None, 2, 1]}, schema={"id": pl.Int64})
    assert _repeated_key_rows(nulls, ["id"]).to_list() == [0, 1, 2, 4] == _oracle(nulls, ["id"])
    pair = pl.DataFrame({"a": [1, 1, 1, None, None], "b": ["x", "y", "x", None, None]})
    assert _repeated_key_rows(pair, ["a", "b"]).to_list() == [0, 2, 3, 4] == _oracle(pair, ["a", "b"])
