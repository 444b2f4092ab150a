"""Reading extracts (CSV, Parquet, Excel) with explicit types and full row accounting.

Every row read is either used or excluded with a reason; ``RowAccounting`` holds the counts and the
first few line numbers for each reason so a data manager can find them. Files that cannot be read
at all (missing, empty, not UTF-8, wrong delimiter, duplicated or missing columns) raise
``ExtractError`` naming the file and a fix.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from audit_metrics.catalogue import (
    ONE_VALUE_HINT,
    DatasetSpec,
    LoadedCatalogue,
    UnitsSpec,
    is_aggregate,
    is_nested_type,
    unknown_data_names,
)
from audit_metrics.exceptions import CatalogueError, ExtractError, Problem

__all__ = [
    "Exclusion",
    "LoadedDataset",
    "ReadLimits",
    "RowAccounting",
    "Units",
    "check_regular_file",
    "csv_header",
    "dataset_schema",
    "file_digest",
    "load_dataset",
    "load_units",
    "read_extract",
    "read_mergers",
]

ROW = "__row"
REASON = "__reason"
_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(), "integer": pl.Int64(), "float": pl.Float64(), "boolean": pl.Boolean(),
    "date": pl.Date(),
}
_MAX_EXAMPLES = 5
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """Bounds checked before a file is read: columns (any format), and for a workbook, which the
    Excel reader holds all in memory, its unpacked size, parts, rows and longest cell.

    The defaults are far above a real extract in Excel format: Excel itself stops at 1,048,576 rows
    and 32,767 characters a cell (up to 6 bytes each once escaped in the file's XML, hence
    ``max_cell_bytes``). Larger extracts belong in CSV or Parquet, which have no such bound.
    """

    max_xlsx_unpacked: int = 512 * 2**20
    max_xlsx_parts: int = 10_000
    max_cell_bytes: int = 200_000
    max_rows: int = 1_048_576
    max_columns: int = 1_000  # every column is typed and checked; each costs milliseconds however short the file


@dataclass(frozen=True)
class Exclusion:
    """Rows excluded for one reason, with the first few line numbers."""

    reason: str
    rows: int
    examples: tuple[int, ...]


@dataclass(frozen=True)
class RowAccounting:
    """rows_read = rows_used + sum of exclusions, for one dataset (or one indicator's cohort)."""

    dataset: str
    file: str
    rows_read: int
    rows_used: int
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def rows_excluded(self) -> int:
        return sum(e.rows for e in self.exclusions)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_used + self.rows_excluded

    def to_frame(self) -> pl.DataFrame:
        rows = [{"dataset": self.dataset, "file": self.file, "reason": "used", "rows": self.rows_used,
                 "example_lines": ""}]
        rows += [{"dataset": self.dataset, "file": self.file, "reason": e.reason, "rows": e.rows,
                  "example_lines": ", ".join(map(str, e.examples))} for e in self.exclusions]
        return pl.DataFrame(rows, schema={"dataset": pl.String, "file": pl.String, "reason": pl.String,
                                          "rows": pl.Int64, "example_lines": pl.String})

    def summary(self) -> str:
        parts = [f"{self.dataset}: {self.rows_read:,} rows read, {self.rows_used:,} used"]
        parts += [f"  {e.rows:,} excluded: {e.reason} (e.g. line {', '.join(map(str, e.examples))})"
                  for e in self.exclusions]
        parts += [f"  note: {n}" for n in self.notes]
        return "\n".join(parts)


@dataclass(frozen=True)
class LoadedDataset:
    """A typed extract (``frame``: used rows only, with a ``__row`` line-number column)."""

    name: str
    frame: pl.DataFrame
    accounting: RowAccounting
    digest: str
    key: tuple[str, ...] = ()  # the dataset's declared key (unique rows): its columns beyond unit and period
    #                            say that a unit has several rows per period by design (route x modality)


@dataclass(frozen=True)
class Units:
    """The reference table of units (trusts) with their higher-level groups."""

    frame: pl.DataFrame  # columns: unit_code, unit_name, <groups...>, [expected_cases]
    groups: tuple[str, ...]
    mergers: Mapping[str, str] = field(default_factory=dict)


def file_digest(path: str | Path) -> str:
    key = _digest_key(Path(path)) if _SHARED is not None else None
    if key is not None and key in _DIGESTS:  # hashed while the CSV checks read it (same size, time, inode)
        return _DIGESTS[key]
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _format_of(path: Path, spec: DatasetSpec | None) -> str:
    if spec is not None and spec.format:
        return spec.format
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".xlsx", ".xlsm"}:
        return "xlsx"
    msg = f"unsupported file type {suffix!r}"
    raise ExtractError(Problem(str(path), msg, hint="use .csv, .parquet or .xlsx"))


def check_regular_file(path: Path) -> None:
    """Refuse anything but an existing regular file (a device such as /dev/zero never ends; a pipe blocks)."""
    try:
        info = path.stat()  # follows symbolic links: a link to a device is refused too
    except FileNotFoundError:
        raise ExtractError(Problem(str(path), "file not found",
                                   hint="check the path (relative to indicators.yaml) or --data NAME=PATH")) from None
    except OSError as exc:
        raise ExtractError(Problem(str(path), f"cannot be read ({exc.strerror})")) from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a pipe" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file")
        raise ExtractError(Problem(str(path), f"is {kind}, not a regular file",
                                   hint="give the path of the extract file itself"))


def csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV file, after the checks every CSV gets (regular file, UTF-8, commas)."""
    path = Path(path)
    check_regular_file(path)
    return _check_csv_text(path)


def _check_csv_text(path: Path, header_line: int = 1, encoding: str = "utf-8", *, head_only: bool = False) -> list[str]:
    """Empty, not UTF-8, or not comma-separated: read in chunks, so memory stays small for any size.

    ``header_line`` is the line holding the column names (published tables put titles above it);
    ``encoding`` the declared text encoding (UTF-8 unless the catalogue says otherwise). ``head_only``:
    read only up to the header line, a guess at the header made while the whole file is checked (a
    problem it raises may be no problem of the whole file, and one further down goes unseen).
    """
    utf8 = encoding == "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8-sig" if utf8 else encoding)()
    digest = hashlib.sha256()  # this pass reads every byte: hash them for the load's digest too
    key = _digest_key(path) if _SHARED is not None and not head_only else None
    head = ""  # the text up to the end of the header line (bounded)
    seen_text = False
    offset = 0
    newlines = 0
    head_read = False  # the head is complete (or at its bound)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            if key is not None:
                digest.update(chunk)
            # the usual chunk, once the head and some text are read: ASCII with no character left open
            # before it, which decodes as it is (so its text is not made)
            if not (utf8 and head_read and seen_text and chunk.isascii() and not decoder.getstate()[0]):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = newlines + chunk[: max(exc.start, 0)].count(b"\n") + 1
                    raise ExtractError(Problem(str(path), f"not {'UTF-8' if utf8 else encoding} text (byte "
                                               f"{offset + max(exc.start, 0)})", line, hint=_ENCODING_HINT)) from None
                seen_text = seen_text or bool(text.strip())
                if not head_read:
                    head += text
                    head_read = not (head.count("\n") < header_line and len(head) < header_line * _CHUNK)
            offset += len(chunk)
            newlines += chunk.count(b"\n")
            if head_only and head_read:
                break
        try:
            if not head_only:
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ExtractError(Problem(str(path), f"not {'UTF-8' if utf8 else encoding} text (the file ends inside "
                                       f"a character, byte {offset})", newlines + 1, hint=_ENCODING_HINT)) from None
    if key is not None and key == _digest_key(path):  # unchanged while it was read
        _DIGESTS[key] = digest.hexdigest()
    if not seen_text:
        raise ExtractError(Problem(str(path), "the file is empty", hint="export the extract again"))
    lines = head.split("\n")
    if len(lines) < header_line or (header_line > 1 and not "".join(lines[header_line:]).strip()
                                     and newlines < header_line):
        raise ExtractError(Problem(str(path), f"the file has no line {header_line} (header_row)", None,
                                   hint="check header_row: it counts lines from 1, as a spreadsheet numbers rows"))
    first_line = lines[header_line - 1]
    if not first_line.strip():
        where = "the first line (the header)" if header_line == 1 else f"line {header_line} (header_row)"
        raise ExtractError(Problem(str(path), f"{where} is blank", header_line,
                                   hint="the first line must name the columns" if header_line == 1 else
                                   "header_row must be the line that names the columns"))
    header = next(csv.reader([first_line.rstrip("\r")]))
    if len(header) == 1 and any(d in header[0] for d in (";", "\t", "|")):
        delim = next(d for d in (";", "\t", "|") if d in header[0])
        raise ExtractError(Problem(str(path), f"the file looks {'tab' if delim == chr(9) else repr(delim)}"
                                   "-separated, not comma-separated", header_line,
                                   hint="save as comma-separated CSV"))
    header = [h.strip() for h in header]
    _check_header(path, [h for h in header if h], header_line)
    return header


_ENCODING_HINT = ("save the file as UTF-8 (in Excel: 'CSV UTF-8'), or, for a file as published, declare its "
                  "encoding under the dataset: encoding: cp1252 (Excel on Windows)")


def _transcoded(path: Path, encoding: str, folder: str) -> Path:
    """A UTF-8 copy of a text file in another encoding, written in chunks (lines and bytes keep their order)."""
    target = Path(folder) / "utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            out.write(decoder.decode(chunk))
        out.write(decoder.decode(b"", final=True))
    return target


# names the loader and the pipeline give columns of their own beside the extract's
_RESERVED = (ROW, REASON, "__event", "__expected")


def _check_reserved(path: Path, header: Sequence[str], line: int = 1) -> None:
    """Refuse a column named as one of the tool's own (it would be overwritten, or collide)."""
    for name in header:
        if name.strip() in _RESERVED:
            raise ExtractError(Problem(str(path), f"column {name.strip()!r} has a name audit_metrics uses for its "
                                       "own bookkeeping", line, name.strip(), hint="rename the column in the file"))


def structural_columns(spec: DatasetSpec) -> list[str]:
    """The period, date and key columns a dataset names."""
    return [*([spec.period_column] if spec.period_column else []), *([spec.date_column] if spec.date_column else []),
            *(spec.key or ())]


def nested_column_problems(path: Path, schema: Mapping[str, pl.DataType], columns: Sequence[str],
                           line: int) -> list[Problem]:
    """A problem for each of ``columns`` (unit, period, date, key or declared columns) that does not hold one plain
    value per cell: a Parquet list, array or struct, or a Python object. Every check and count reads a cell as one
    text, number, date or true/false; such a column ended in a polars traceback (#16 review)."""
    def holds(dtype: pl.DataType) -> str:
        return ("a list" if isinstance(dtype, (pl.List, pl.Array)) else "a record" if isinstance(dtype, pl.Struct)
                else "an object")

    return [Problem(str(path), f"holds {holds(schema[c])} in each cell (type {schema[c]}), not one value", line, c,
                    hint=ONE_VALUE_HINT)
            for c in dict.fromkeys(columns) if c in schema and is_nested_type(schema[c])]


def _check_header(path: Path, header: Sequence[str], line: int = 1) -> None:
    _check_reserved(path, header, line)
    seen: set[str] = set()
    for name in header:
        if not name:
            raise ExtractError(Problem(str(path), "a column has no name", line,
                                       hint="give every column a header"))
        if name in seen:
            raise ExtractError(Problem(str(path), f"column {name!r} appears more than once", line, name,
                                       hint="rename or remove the duplicate column"))
        seen.add(name)


def _locate_csv_error(path: Path, exc: Exception, shown: Path | None = None, header_line: int = 1) -> ExtractError:
    """Turn a CSV parser failure into a located problem (the parser's own text can quote megabytes).

    ``shown``: the file to name, when ``path`` is a transcoded copy of it; ``header_line``: where the
    table's header is (rows above it are titles, with any number of fields).
    """
    name = str(shown or path)
    expected: int | None = None
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        try:
            for row in reader:
                if start < header_line:
                    start = reader.line_num + 1
                    continue
                if expected is None:
                    expected = len(row)
                elif len(row) > expected:
                    return ExtractError(Problem(
                        name, f"line has {len(row)} fields but the header has {expected}", start,
                        hint="a text value with a comma needs double quotes around it; or remove the extra "
                        "separators"))
                start = reader.line_num + 1
        except csv.Error as err:
            where = f" ({err})" if "EOF" not in str(err) else ""
            return ExtractError(Problem(
                name, f"a double quote opened on this line is never closed{where}", start,
                hint='close the quote, or write a quote inside a value as two: ""'))
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ExtractError(Problem(name, f"not a readable CSV file ({first})",
                               hint="export the extract again as comma-separated UTF-8 text"))


_TO_CSV = "save the extract as CSV or Parquet"


def _check_xlsx(path: Path, limits: ReadLimits) -> None:
    """Sizes of a workbook's parts, its longest cell and its rows, read in chunks before the Excel reader."""
    found = _xlsx_problem(path, limits)
    if found is not None:
        message, hint = found
        raise ExtractError(Problem(str(path), message, hint=hint))


def _xlsx_problem(path: Path, limits: ReadLimits) -> tuple[str, str] | None:
    """(message, hint) for the first bound the workbook breaks, or None."""
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return "not a readable Excel workbook (not an .xlsx file)", "save as .xlsx"
    with book:
        parts = book.infolist()
        if len(parts) > limits.max_xlsx_parts:
            return f"the workbook has {len(parts):,} parts, more than the limit of {limits.max_xlsx_parts:,}", _TO_CSV
        unpacked = sum(p.file_size for p in parts)
        if unpacked > limits.max_xlsx_unpacked:
            return (f"the workbook unpacks to {unpacked / 2**20:,.1f} MB, more than the limit of "
                    f"{limits.max_xlsx_unpacked / 2**20:,.1f} MB", _TO_CSV)
        for part in parts:
            name = part.filename
            if not (name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml") or not name.endswith(".xml"):
                continue
            longest = run = rows = 0
            tail = b""
            try:
                with book.open(part) as fh:  # stops at the declared size; a false size fails the CRC check
                    for chunk in iter(lambda fh=fh: fh.read(_CHUNK), b""):
                        # a cell's text cannot contain '<' (XML escapes it), so the longest stretch
                        # without one bounds the longest cell
                        at = np.flatnonzero(np.frombuffer(chunk, np.uint8) == ord("<"))
                        if at.size == 0:
                            run += len(chunk)
                        else:
                            longest = max(longest, run + int(at[0]),
                                          int(np.diff(at).max()) - 1 if at.size > 1 else 0)
                            run = len(chunk) - 1 - int(at[-1])
                        if max(longest, run) > limits.max_cell_bytes:
                            return (f"{name} holds a value longer than {limits.max_cell_bytes:,} bytes (Excel's "
                                    "own limit is 32,767 characters a cell)",
                                    "remove the oversized cell, or save the extract as CSV")
                        both = tail + chunk
                        rows += (both.count(b"<row ") + both.count(b"<row>")
                                 - tail.count(b"<row ") - tail.count(b"<row>"))
                        tail = chunk[-4:]
                        if rows > limits.max_rows:
                            return f"{name} has more than {limits.max_rows:,} rows", _TO_CSV
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                return f"the workbook is damaged ({str(exc)[:100]})", "save it again from Excel"
    return None


def _check_columns(path: Path, n: int, limits: ReadLimits) -> None:
    if n > limits.max_columns:
        raise ExtractError(Problem(str(path), f"the file has {n:,} columns, more than the limit of "
                                   f"{limits.max_columns:,}", 1,
                                   hint="export only the columns the catalogue uses"))


@dataclass(frozen=True)
class TableLayout:
    """Where the table sits in a published file: what was read around it, for the row accounting."""

    header_line: int = 1                 # the row (line) that names the columns
    below: tuple[int, ...] = ()          # rows after the table's last row: blank lines, notes, footnotes
    unnamed_empty: tuple[str, ...] = ()  # columns with no name and no values (merged title cells, spacers)
    short: tuple[tuple[int, int], ...] = ()  # (line, fields) of CSV rows with fewer fields than the header
    width: int = 0                       # fields in the header
    # (name, field position) of the CSV columns read typed (whole numbers, true/false) instead of as text
    native: tuple[tuple[str, int], ...] = ()

    def notes(self) -> tuple[str, ...]:
        out = []
        if self.header_line > 1:
            out.append(f"column names read from line {self.header_line}; lines 1-{self.header_line - 1} above "
                       "them (titles, notes) are not data")
        if self.unnamed_empty:
            out.append(f"{len(self.unnamed_empty)} empty column(s) without a name left out "
                       f"({', '.join(self.unnamed_empty)})")
        return tuple(out)


def _header_of(spec: DatasetSpec | None) -> int:
    """The 1-based row of the column names (``header_row``, or ``skip_rows`` + 1)."""
    if spec is None:
        return 1
    if spec.header_row is not None:
        return spec.header_row
    return (spec.skip_rows or 0) + 1


def read_extract(path: str | Path, spec: DatasetSpec | None = None,
                 limits: ReadLimits | None = None) -> pl.DataFrame:
    """Read a file as it is (CSV and Excel as text), adding the ``__row`` line number."""
    return read_table(path, spec, limits)[0]


# Within ``reading_once()`` (one command run: check the catalogue, then load the data), a text table read
# and typed for the catalogue check is kept for the load instead of being read and typed again.
_SHARED: dict[tuple[object, ...], tuple[pl.DataFrame, TableLayout]] | None = None
_INFERRED: dict[tuple[int, str], pl.DataType] = {}
_DIGESTS: dict[tuple[object, ...], str] = {}  # SHA-256 of the CSV files read in full by the checks


def _digest_key(path: Path) -> tuple[object, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


@contextmanager
def reading_once() -> Iterator[None]:
    """Read each text extract once while inside (the tables are dropped on leaving)."""
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        if outer is None:
            _SHARED = None
            _INFERRED.clear()
            _DIGESTS.clear()


def _shared_key(path: Path, spec: DatasetSpec | None, limits: ReadLimits) -> tuple[object, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    layout = spec.model_dump_json(include={"header_row", "skip_rows", "sheet", "encoding", "format"}) if spec else ""
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, layout, repr(limits))


def _forget(path: Path, spec: DatasetSpec | None) -> None:
    """The load has the table now: keep it no longer than the load does."""
    if _SHARED is None:
        return
    key = _shared_key(path, spec, ReadLimits())
    for k in [] if key is None else [key, (*key, "native")]:
        table = _SHARED.pop(k, None)
        if table is not None:
            for i in [i for i in _INFERRED if i[0] == id(table[0])]:
                del _INFERRED[i]


def read_table(path: str | Path, spec: DatasetSpec | None = None,
               limits: ReadLimits | None = None) -> tuple[pl.DataFrame, TableLayout]:
    """Read a table as published: the header on ``header_row``, empty unnamed columns and rows below the
    table (blank lines, notes, footnotes) set aside and reported in the layout; ``__row`` is the line
    (spreadsheet row) number of each row."""
    return _read_shared(Path(path), spec, limits or ReadLimits(), native=False)


def _read_for_typing(path: Path, spec: DatasetSpec | None) -> tuple[pl.DataFrame, TableLayout]:
    """:func:`read_table` for a table about to be typed (the catalogue check, the load): a CSV's columns
    of plain whole numbers or true/false may come back already typed, with exactly the values typing
    their text gives (``layout.native`` names them). A text table already read is used as it is."""
    limits = ReadLimits()
    if _SHARED is not None:
        key = _shared_key(path, spec, limits)
        if key is not None and key in _SHARED:
            return _SHARED[key]
    return _read_shared(path, spec, limits, native=True)


def _read_shared(path: Path, spec: DatasetSpec | None, limits: ReadLimits, *,
                 native: bool) -> tuple[pl.DataFrame, TableLayout]:
    fmt = _format_of(path, spec)
    key = _shared_key(path, spec, limits) if _SHARED is not None and fmt != "parquet" else None
    if key is not None and native and fmt == "csv":
        key = (*key, "native")
    if key is not None and _SHARED is not None and key in _SHARED:
        return _SHARED[key]
    try:
        table = _read_table(path, spec, limits, native=native)
    except ExtractError as exc:
        raise _header_elsewhere(exc, path, spec) from None
    if key is not None and _SHARED is not None:
        _SHARED[key] = table
    return table


def _read_table(path: Path, spec: DatasetSpec | None, limits: ReadLimits, *,
                native: bool = False) -> tuple[pl.DataFrame, TableLayout]:
    limits = limits or ReadLimits()
    fmt = _format_of(path, spec)
    check_regular_file(path)
    header = _header_of(spec)
    if fmt == "csv":
        encoding = (spec.encoding if spec else None) or "utf-8"
        if encoding == "utf-8":
            parsed, df, typed_at, short = _read_csv_checked(path, header, spec, limits, native=native)
        else:
            parsed = _check_csv_text(path, header, encoding)
            _check_columns(path, len(parsed), limits)
            with tempfile.TemporaryDirectory(prefix="audit_metrics_") as folder:
                source = _transcoded(path, encoding, folder)
                df, typed_at, failure = _read_csv_frame(source, header, parsed, spec, native=False, shown=path)
                if failure is not None:
                    raise failure() from None
                short = _short_rows(source, df, header)
        # the names as written (polars renames blank or repeated ones, which would hide them)
        table, layout = _tidy(df, path, header, parsed if len(parsed) == df.width else None, spec)
        return table, replace(layout, short=short, width=df.width,
                              native=tuple((n, i) for n, i in typed_at.items() if n in table.columns))
    if fmt == "parquet":
        try:
            _check_columns(path, len(pl.read_parquet_schema(path)), limits)
            df = pl.read_parquet(path)
        except ExtractError:
            raise
        except Exception as exc:
            raise ExtractError(Problem(str(path), f"not a readable Parquet file ({str(exc).splitlines()[0]})",
                                       hint="export the extract again")) from None
        _check_header(path, df.columns)
        return _with_row_numbers(df, 1), TableLayout(header_line=0)
    _check_xlsx(path, limits)
    grid = _read_sheet(path, spec)
    _check_columns(path, grid.width, limits)
    if spec is None or (spec.header_row is None and spec.skip_rows is None):
        filled = grid.select(pl.any_horizontal(pl.all().is_not_null() & (pl.all().str.strip_chars() != "")))
        rows = filled.to_series().arg_true()
        if rows.len() == 0:
            raise ExtractError(Problem(str(path), "the sheet is empty"))
        header = int(rows[0]) + 1  # the first row with anything in it, as Excel readers assume
    if header > grid.height:
        found = _sheet_naming(path, spec)
        raise ExtractError(Problem(str(path), f"the sheet has {grid.height} rows, so none is row {header} "
                                   "(header_row)", hint=_pick_sheet_hint(found, header) if found
                                   else _other_sheets(path, spec)
                                   or "check header_row: rows count from 1, as Excel numbers them"))
    names = ["" if v is None else str(v) for v in grid.row(header - 1)]
    wrong = _wrong_sheet(path, spec, names, header)
    if wrong is not None:
        raise ExtractError(wrong)
    if not any(n.strip() for n in names):
        raise ExtractError(Problem(str(path), f"row {header} (the header) is blank", header,
                                   hint="header_row must be the row that names the columns"))
    body = grid.slice(header)
    # unique placeholder names first, so blank or repeated names are judged by _tidy like a CSV's
    body.columns = [f"{n}\x00{i}" for i, n in enumerate(names)]
    return _tidy(body, path, header, names, spec)


def _read_csv_frame(source: Path, header: int, parsed: Sequence[str], spec: DatasetSpec | None, *, native: bool,
                    shown: Path | None = None) -> tuple[pl.DataFrame, dict[str, int], Callable[[], Exception] | None]:
    """The parsed CSV (typed where :func:`_read_csv_typed` can, else as text), the position of each typed
    column, and, when the file cannot be parsed, what makes the located problem (for the caller to raise
    once the text checks have passed: they come first, and locating reads the text)."""
    try:
        df = _read_csv_typed(source, header, parsed, spec) if native else None
    except Exception as exc:  # (not expected) raised as it is, after the text checks
        return pl.DataFrame(), {}, lambda exc=exc: exc
    typed_at = {} if df is None else {parsed[i]: i for i, c in enumerate(df.columns) if df.schema[c] != pl.String}
    if df is None:
        try:
            df = pl.read_csv(source, infer_schema=False, skip_rows=header - 1)
        except Exception as exc:  # polars' messages quote the data and give developer advice
            return pl.DataFrame(), {}, lambda exc=exc: _locate_csv_error(source, exc, shown=shown or source,
                                                                         header_line=header)
    return df, typed_at, None


_OVERLAP = True  # False: check the whole text, then parse (the order the overlapped read must match)


def _read_csv_checked(path: Path, header: int, spec: DatasetSpec | None, limits: ReadLimits, *,
                      native: bool) -> tuple[list[str], pl.DataFrame, dict[str, int], tuple[tuple[int, int], ...]]:
    """A UTF-8 CSV parsed while, beside the parser, one thread checks its text (:func:`_check_csv_text`,
    every byte) and another finds the lines that could be short rows. The same table, and the same
    problem raised first, as checking the whole text before parsing: the parse starts from the header
    as the file's first lines give it, and its outcome is used only once the whole text has passed, with
    that header."""
    guess: list[str] | None = None
    if _OVERLAP:
        with suppress(ExtractError):  # the whole file's check says what is wrong (or that nothing is)
            guess = _check_csv_text(path, header, head_only=True)
    if guess is not None and len(guess) > limits.max_columns:
        guess = None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit_metrics_csv") as pool:
        checked = pool.submit(_check_csv_text, path, header)
        lines = pool.submit(_line_suspects, path, len(guess)) if guess is not None and len(guess) >= 2 else None
        read = _read_csv_frame(path, header, guess, spec, native=native) if guess is not None else None
        parsed = checked.result()  # raises what is wrong with the text, before any parser problem
        _check_columns(path, len(parsed), limits)
        if read is None or parsed != guess:
            read, lines = _read_csv_frame(path, header, parsed, spec, native=native), None
        df, typed_at, failure = read
        if failure is not None:
            raise failure() from None
        suspects = lines.result() if lines is not None and df.width == len(parsed) else None
    return parsed, df, typed_at, _short_rows(path, df, header, suspects)


def _line_suspects(path: Path, width: int) -> pl.Series:
    """The (0-based) lines that could be short rows of a ``width``-field table: fewer separators than
    ``width - 1``, or a quote (a quoted field may hold separators or span lines)."""
    text = pl.col("line")
    return (pl.scan_lines(path).with_row_index("i")
            .filter((text.str.count_matches(",", literal=True) < width - 1) | text.str.contains('"', literal=True))
            .select("i").collect().to_series())


_EXACT = 2**53  # whole numbers up to here are exact as floats (typing text goes through a float)


def _read_csv_typed(source: Path, header: int, parsed: Sequence[str],
                    spec: DatasetSpec | None) -> pl.DataFrame | None:
    """The CSV with polars' own types where they equal typing the text (:func:`_cast_text`): columns polars
    reads as whole numbers (digits, a sign, at most 2**53) or true/false; every other column as text,
    exactly as a text read gives it. None when the typed read fails (a value that does not parse, a
    ragged row): the caller reads the file as text and reports what is wrong as always.

    Never typed here: columns declared as anything but integer/boolean and the dataset's code columns
    (unit, period), which stay text as written (a code of 001 is not the number 1).
    """
    try:
        df = pl.read_csv(source, skip_rows=header - 1, infer_schema_length=10_000)
    except Exception:
        return None
    if df.width != len(parsed) or not df.width:
        return None
    declared = dict(spec.columns) if spec else {}
    codes = {c for c in ((spec.unit_column, spec.period_column) if spec else ()) if c}
    keep = {"integer": pl.Int64, "boolean": pl.Boolean}
    text: list[int] = []
    for i, (col, name) in enumerate(zip(df.columns, parsed, strict=True)):
        dtype = df.schema[col]
        if dtype == pl.String:
            continue
        # a column with no value at all is text to the text rules (nothing to infer a type from)
        ok = (dtype in (pl.Int64, pl.Boolean) and name not in codes and df[col].null_count() < df.height
              and (name not in declared or keep.get(declared[name]) == dtype))
        if ok and dtype == pl.Int64:
            ok = max(abs(int(df[col].min())), abs(int(df[col].max()))) <= _EXACT  # type: ignore[arg-type]
        if not ok:
            text.append(i)
    if text:
        df = df.with_columns(_text_fields(source, header, text, df.height).rename(
            {f"{i}": df.columns[i] for i in text}))
    return df


def _text_fields(source: Path, header: int, positions: Sequence[int], height: int) -> pl.DataFrame:
    """The fields at ``positions`` (0-based) as text, as a text read gives them, named by position."""
    order = sorted(positions)  # polars returns the fields in file order
    cols = pl.read_csv(source, infer_schema=False, skip_rows=header - 1, columns=order).slice(0, height)
    return cols.rename(dict(zip(cols.columns, [f"{i}" for i in order], strict=True)))


def _as_text(path: Path, raw: pl.DataFrame, layout: TableLayout, names: Sequence[str]) -> pl.DataFrame:
    """``raw`` with the typed (``layout.native``) columns among ``names`` read again as text."""
    at = dict(layout.native)
    redo = [n for n in names if n in at and n in raw.columns and raw.schema[n] != pl.String]
    if not redo:
        return raw
    text = _text_fields(path, layout.header_line, [at[n] for n in redo], raw.height)
    return raw.with_columns(text.get_column(f"{at[n]}").alias(n) for n in redo)


def _read_sheet(path: Path, spec: DatasetSpec | None) -> pl.DataFrame:
    """Every cell of the sheet as text, from row 1 (blank rows kept, so row numbers are Excel's)."""
    sheet = spec.sheet if spec else None
    where: dict[str, object] = ({"sheet_id": sheet} if isinstance(sheet, int)
                                else {"sheet_name": sheet} if sheet is not None else {})
    try:
        grid = pl.read_excel(path, **where, infer_schema_length=0, drop_empty_rows=False,  # type: ignore[call-overload]
                             drop_empty_cols=False, read_options={"header_row": None, "skip_rows": 0})
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if sheet is not None:
            names = _sheet_names(path)
            if names is not None and (sheet not in names if isinstance(sheet, str) else not 1 <= sheet <= len(names)):
                asked = f"sheet {sheet!r}" if isinstance(sheet, str) else f"sheet number {sheet}"
                raise ExtractError(Problem(str(path), f"the workbook has no {asked}",
                                           hint=f"its sheets are: {', '.join(map(repr, names))} (sheet: takes "
                                           "a name, or a number counted from 1)")) from None
        raise ExtractError(Problem(str(path), f"not a readable Excel workbook ({first})",
                                   hint="save as .xlsx")) from None
    # a date cell comes back as "2023-04-01 00:00:00": the date as written, without a midnight no one typed (it
    # labelled periods "2023-04-01 00:00:00 to 2023-09-01 00:00:00"; a real-data review)
    return grid.with_columns(pl.col(pl.String).str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "${1}"))


def _sheet_names(path: Path) -> list[str] | None:
    try:
        import fastexcel  # polars' Excel reader

        return list(fastexcel.read_excel(path).sheet_names)
    except Exception:
        return None


def _short_rows(path: Path, df: pl.DataFrame, header: int,
                scanned: pl.Series | None = None) -> tuple[tuple[int, int], ...]:
    """(line, fields) of the rows with fewer fields than the header (the parser fills them with blanks).

    Only rows whose last cell came back empty can be short; their lines are read again as text (one
    streaming pass) and their separators counted (a line with a quote is parsed as CSV). ``scanned``:
    the lines :func:`_line_suspects` found for this width, when known (only those can be short).
    """
    if df.width < 2 or df.height == 0:
        return ()
    candidates = df.select(pl.col(df.columns[-1]).is_null()).to_series().arg_true()
    if candidates.len() == 0:
        return ()
    lines = (candidates.cast(pl.Int64) + header).cast(pl.UInt32)  # 0-based index of each row's line
    if scanned is not None:
        lines = scanned.filter(scanned.is_in(lines.cast(scanned.dtype).implode())).cast(pl.UInt32)
        if lines.len() == 0:
            return ()
    text = pl.col("line")
    suspects = (pl.scan_lines(path).with_row_index("i").filter(pl.col("i").is_in(lines.implode()))
                .with_columns(text.str.count_matches(",", literal=True).alias("commas"),
                              text.str.contains('"', literal=True).alias("quoted"),
                              (text.str.strip_chars(" ,\r\ufeff") == "").alias("blank"))
                .filter(~pl.col("blank") & ((pl.col("commas") < df.width - 1) | pl.col("quoted")))
                .select("i", "commas", "quoted", "line").collect())
    out = []
    for i, commas, quoted, line in suspects.iter_rows():
        fields = len(next(csv.reader([line.rstrip("\r")]))) if quoted else commas + 1
        if fields < df.width:  # an empty line is a blank row, reported as such
            out.append((int(i) + 1, fields))
    return tuple(out)


def _with_row_numbers(df: pl.DataFrame, first: int) -> pl.DataFrame:
    """``df`` with the row numbers ``first``, ``first + 1``, ... as its last column, split into chunks as its
    columns are. A column of one chunk beside columns of many (a CSV is read in ~120 chunks, a Parquet file in
    row groups) makes polars copy the whole table to line the chunks up at the next select or filter (2M rows
    from a CSV: 0.13-0.3 s and ~400 MB)."""
    numbers = pl.int_range(first, first + df.height, dtype=pl.Int64, eager=True).alias(ROW)
    lengths = [c.len() for c in df.to_series(0).get_chunks()] if df.width else []
    if len(lengths) > 1 and all(df.to_series(i).n_chunks() == len(lengths) for i in range(df.width)):
        starts = np.cumsum([0, *lengths[:-1]])
        numbers = pl.concat([numbers.slice(int(a), n) for a, n in zip(starts, lengths, strict=True)], rechunk=False)
    return df.hstack([numbers])


def _tidy(df: pl.DataFrame, path: Path, header: int, names: Sequence[str] | None = None,
          spec: DatasetSpec | None = None) -> tuple[pl.DataFrame, TableLayout]:
    """Name the columns, set aside empty unnamed ones and the rows below the table, number the rows."""
    raw_names = list(names) if names is not None else list(df.columns)
    _check_reserved(path, [*raw_names, *df.columns], header)  # before the row numbers are added beside them
    df = _with_row_numbers(df, header + 1)
    # rows below the table: after the last row with at least two cells filled (a note or a footnote
    # fills one), or, in a table of one or two columns, after the last row with anything in it. Only
    # for datasets (a spec): in a units or mergers file a short last line is a mistake to report.
    blank = pl.all().exclude(ROW).cast(pl.String).str.strip_chars()
    needed = 2 if len(raw_names) >= 3 else 1
    end, size = 0, 256
    stop = df.height
    while stop > 0:  # from the bottom up, in growing blocks: the last row of a table is usually filled
        block = df.slice(max(stop - size, 0), stop - max(stop - size, 0))
        filled = block.select(pl.sum_horizontal((blank.is_not_null() & (blank != "")).cast(pl.Int32))).to_series()
        rows = (filled >= needed).arg_true()
        if rows.len():
            end = max(stop - size, 0) + int(rows[-1]) + 1
            break
        stop, size = max(stop - size, 0), size * 4
    if spec is None:
        end = df.height
    below = tuple(df[ROW].slice(end).to_list())
    df = df.slice(0, end)
    dropped: list[str] = []
    keep: dict[str, str] = {}
    for i, (column, raw) in enumerate(zip(df.columns[:-1], raw_names, strict=True)):
        name = raw.strip()
        if name:
            keep[column] = name
            continue
        values = df.get_column(column).cast(pl.String).str.strip_chars()
        held = values.is_not_null() & (values != "")
        if held.any():
            guess = _guess_header_line(path, spec)
            where = (f"the column names seem to be on row {guess}: add header_row: {guess} to the dataset"
                     if guess is not None and guess != header else "give it a name in the header row, or check "
                     "header_row")
            raise ExtractError(Problem(str(path), f"a column has no name (column {_letters(i)}, which has values, "
                                       f"first on line {int(df.filter(held)[ROW][0])})", header, hint=where))
        dropped.append(_letters(i))
    df = df.select(*[pl.col(c).alias(n) for c, n in keep.items()], ROW)
    _check_header(path, list(keep.values()), header)
    return df, TableLayout(header_line=header, below=below, unnamed_empty=tuple(dropped))


def _letters(index: int) -> str:
    """A spreadsheet column letter (0 -> A, 26 -> AA)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _cast_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    text = col.cast(pl.String).str.strip_chars()
    text = pl.when(text.is_in(["", "NA", "NULL", "null", "N/A"])).then(None).otherwise(text)
    if dtype == pl.Boolean:
        low = text.str.to_lowercase()
        return (pl.when(low.is_in(["true", "t", "yes", "y", "1"])).then(True)
                .when(low.is_in(["false", "f", "no", "n", "0"])).then(False).otherwise(None))
    if dtype == pl.Date:
        return pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False),
                           text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).dt.date(),
                           text.str.to_date("%d/%m/%Y", strict=False))
    if dtype == pl.Int64:
        as_float = text.cast(pl.Float64, strict=False)
        return pl.when(as_float == as_float.round(0)).then(as_float.cast(pl.Int64, strict=False))
    if dtype.is_float():  # 'NaN' and 'inf' parse as floats but are not measurements
        number = text.cast(dtype, strict=False)
        return pl.when(number.is_finite()).then(number)
    return text.cast(dtype, strict=False)


_SORTED_KEY = (pl.String, pl.Date, pl.Boolean)


def _shared_key_rows(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Positions of the rows whose key (one column or several) occurs more than once, blanks equal to
    each other: ``is_duplicated().arg_true()``. A key of one column of whole numbers, text or dates is
    sorted and its equal neighbours read (a 2M-row key: 0.07 s against 0.3 s hashing every value, 0.2 s
    against 0.9 s for text); other keys (several columns, decimals) are hashed."""
    column = frame.get_column(columns[0]) if len(columns) == 1 else None
    if column is None or not (column.dtype.is_integer() or column.dtype in _SORTED_KEY):
        key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
        return frame.select(key.is_duplicated()).to_series().arg_true()
    ordered = column.drop_nulls().sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    shared = column.is_in(repeated.implode()).fill_null(False)
    if column.null_count() > 1:
        shared = shared | column.is_null()
    return shared.arg_true()


def _per_distinct(values: pl.Series, convert: Callable[[pl.Expr], pl.Expr], dtype: pl.DataType) -> pl.Expr:
    """``convert`` of a whole column, computed once per distinct value and mapped back.

    For conversions that depend on the value alone and keep a null null (trimming, parsing, recoding): a
    column of 2M flags, ages, dates or unit codes (a handful to a few thousand distinct values) is converted
    on its distinct values instead of trimming and parsing 2M strings; a column of mostly distinct values
    (an identifier) is converted directly.
    """
    col = pl.col(values.name)
    # measured on 2M rows: per distinct value is 11x faster for 1,100 dates (0.09 against 1.0 s), 2x for 5,000
    # numbers, and slower from ~10,000 distinct values on (a mapping that large is looked up slower than parsing)
    if values.len() < 50_000 or values.head(10_000).n_unique() > 5_000:
        return convert(col)
    distinct = values.unique().drop_nulls()
    if distinct.len() > 10_000:
        return convert(col)
    converted = pl.select(convert(pl.lit(distinct)).alias("converted")).to_series()
    return col.replace_strict(distinct, converted, default=None, return_dtype=dtype)


def _cast_text_column(values: pl.Series, dtype: pl.DataType) -> pl.Expr:
    """:func:`_cast_text` of a whole text column, converting each distinct value once."""
    return _per_distinct(values, lambda col: _cast_text(col, dtype), dtype)


_BLANK = ["", "NA", "NULL", "null", "N/A"]
_DATE_LIKE = r"^\d{1,4}[-/]\d{1,2}[-/]\d{1,4}( \d{1,2}:\d{2}:\d{2})?$"


def _infer_all(raw: pl.DataFrame, names: Sequence[str]) -> dict[str, pl.DataType]:
    """The narrowest type every non-blank value of each text column converts to (else text)."""
    if _SHARED is None or not any(raw is table for table, _ in _SHARED.values()):
        return {name: _infer(raw, name) for name in names}
    out = {}
    for name in names:  # a shared table is typed once (it is kept, so its id stays its own)
        if (id(raw), name) not in _INFERRED:
            _INFERRED[(id(raw), name)] = _infer(raw, name)
        out[name] = _INFERRED[(id(raw), name)]
    return out


def _infer(raw: pl.DataFrame, name: str) -> pl.DataType:
    """Whole number, number, true/false, date or text, judged on the column's distinct values.

    A value converts the same way wherever it appears, so the distinct values decide: a column of
    tumour sites has a handful however many rows it has. Dates are only tried on date-shaped text
    (parsing is the slow step).
    """
    values = raw.select(pl.col(name).unique().cast(pl.String).str.strip_chars().unique().alias("v"))
    values = values.filter(pl.col("v").is_not_null() & ~pl.col("v").is_in(_BLANK))
    if values.height == 0:
        return pl.String()
    v = pl.col("v")
    found = values.select(
        _cast_text(v, pl.Float64()).is_null().any().alias("not_number"),
        _cast_text(v, pl.Int64()).is_null().any().alias("not_whole"),
        (~v.str.to_lowercase().is_in(["true", "false"])).any().alias("not_boolean"),  # 0/1 stay numeric
        (~v.str.contains(_DATE_LIKE)).any().alias("not_date_shaped"),
    ).row(0, named=True)
    if not found["not_number"]:
        return pl.Float64() if found["not_whole"] else pl.Int64()
    if not found["not_boolean"]:
        return pl.Boolean()
    if not found["not_date_shaped"] and not values.select(_cast_text(v, pl.Date()).is_null().any()).item():
        return pl.Date()
    return pl.String()


def _typed(raw: pl.DataFrame, spec: DatasetSpec | None, integer: Sequence[str] = (),
           real: Sequence[str] = (), *, infer: bool = True, text: Sequence[str] = ()) -> tuple[
        pl.DataFrame, dict[str, pl.DataType]]:
    """Cast text columns to declared or inferred types; return the frame and the intended types."""
    wanted = _wanted_types(raw, spec, integer, real, infer=infer, text=text)
    exprs = []
    for name, dtype in wanted.items():
        src = raw[name].dtype
        if src == dtype:
            continue
        if src == pl.String:
            exprs.append(_cast_text_column(raw[name], dtype).alias(name))
        elif src.is_float() and dtype.is_integer():
            # a typed (Parquet) 6.5 is not a whole number: null, so excluded and reported, never truncated to 6
            col = pl.col(name)
            exprs.append(pl.when(col == col.round(0)).then(col).cast(dtype, strict=False).alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
    typed = raw.with_columns(exprs) if exprs else raw
    return typed, wanted


def _wanted_types(raw: pl.DataFrame, spec: DatasetSpec | None, integer: Sequence[str] = (),
                  real: Sequence[str] = (), *, infer: bool = True,
                  text: Sequence[str] = ()) -> dict[str, pl.DataType]:
    """The type each column will have: declared, a count, or inferred from its text.

    Code columns (the unit and period columns, and ``text``) stay text unless declared: inferring 001 as
    the number 1 would lose the leading zeros and every row would become an unknown unit."""
    declared = dict(spec.columns) if spec else {}
    codes = {c for c in (*text, *((spec.unit_column, spec.period_column) if spec else ())) if c}
    wanted: dict[str, pl.DataType] = {}
    for name in raw.columns:
        if name == ROW:
            continue
        if name in declared:
            wanted[name] = _TYPES[declared[name]]
        elif name in codes:
            continue  # kept as read: text from CSV/Excel, the stored type from Parquet
        elif name in integer and not raw[name].dtype.is_integer():
            wanted[name] = pl.Int64()  # counts are whole numbers; 2.5 patients is a data error
        elif name in real and not raw[name].dtype.is_numeric():
            wanted[name] = pl.Float64()
        elif infer and raw[name].dtype == pl.String:
            wanted[name] = pl.Null()  # inferred below, all columns at once
    unknown = [name for name, dtype in wanted.items() if dtype == pl.Null]
    wanted.update(_infer_all(raw, unknown))  # CSV/Excel text; Parquet columns are already typed
    # a column with an allowed range holds numbers: one read as text (a value such as 'abc', or no value at all)
    # is typed as a number, so each non-number is reported on its row and the range compares numbers
    for name in spec.ranges if spec else ():
        if (name in raw.columns and name not in declared and name not in codes
                and wanted.get(name, raw[name].dtype) in (pl.String, pl.Null)):
            wanted[name] = pl.Float64()
    return wanted


def dataset_schema(path: str | Path, spec: DatasetSpec | None = None) -> pl.Schema:
    """The typed schema a dataset will have once loaded (used to check catalogue expressions)."""
    path = Path(path)
    if _format_of(path, spec) == "parquet" and path.exists():
        check_regular_file(path)
        try:
            schema = dict(pl.read_parquet_schema(path))
        except Exception:
            return read_extract(path, spec).drop(ROW).schema
        for name, kind in (spec.columns.items() if spec else ()):
            if name in schema:
                schema[name] = _TYPES[kind]
        return pl.Schema(schema)
    raw = _schema_frame(path, spec)  # the types alone: casting every value is the loader's job
    wanted = _wanted_types(raw, spec)
    return pl.Schema({name: wanted.get(name, dtype) for name, dtype in raw.schema.items() if name != ROW})


def _schema_frame(path: Path, spec: DatasetSpec | None) -> pl.DataFrame:
    """The table as :func:`_wanted_types` types it (kept for the load within ``reading_once``)."""
    raw, layout = _read_for_typing(path, spec)
    # typed columns the text rules would not type the same way: as text (none in a typical extract)
    declared = dict(spec.columns) if spec else {}
    redo = [n for n, _ in layout.native if n in declared and _TYPES[declared[n]] != raw.schema[n]]
    return _as_text(path, raw, layout, redo) if redo else raw


def _text(name: str) -> pl.Expr:
    """A code column as trimmed text, blank as null (codes may be read as numbers from Parquet/Excel)."""
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _lines(frame: pl.DataFrame) -> str:
    rows = frame[ROW].head(_MAX_EXAMPLES).to_list()
    more = f" and {frame.height - len(rows):,} more" if frame.height > len(rows) else ""
    return ", ".join(map(str, rows)) + more


def load_units(loaded: LoadedCatalogue, limits: ReadLimits | None = None, *,
               data: Mapping[str, str | Path] | None = None) -> Units:
    """The units reference table, with merger recoding; every problem in either file is reported.

    With ``units: {from: DATASET}`` the units are the distinct codes of that dataset (its name and group
    columns taken from the code's last row, the most recent in a table ordered by period).
    """
    spec: UnitsSpec = loaded.catalogue.units
    if spec.from_dataset is not None:
        path = loaded.dataset_path(spec.from_dataset, data)
        raw = read_extract(path, loaded.catalogue.datasets[spec.from_dataset], limits=limits)
    else:
        path = loaded.base_dir / str(spec.file)
        raw = read_extract(path, limits=limits)
    missing = [c for c in (spec.code, spec.name, *spec.groups) if c not in raw.columns]
    if missing:
        found = ", ".join(c for c in raw.columns if c != ROW)
        raise ExtractError(Problem(str(path), f"missing column(s) {', '.join(missing)}", _header_line(raw),
                                   hint=f"the catalogue's units section expects {spec.code}, {spec.name}; "
                                   f"columns found: {found}"))
    if spec.from_dataset is not None:
        # codes the mergers retire are rows of the data, not units: they are recoded when the data is read
        retired = _old_codes(loaded.base_dir / spec.mergers, limits) if spec.mergers else set()
        raw = _units_of_dataset(raw, spec, path, retired)
    cols = {spec.code: "unit_code", spec.name: "unit_name"}
    groups = [g for g in spec.groups if g not in cols]
    frame = raw.select(
        _text(spec.code).alias("unit_code"),
        pl.coalesce(_text(spec.name), _text(spec.code)).alias("unit_name"),  # a unit without a name goes by its code
        *[_text(g).alias(g) for g in groups],
        *([pl.col(spec.expected_cases).cast(pl.String).str.strip_chars().alias("_expected_text")]
          if spec.expected_cases else []),
        pl.col(ROW),
    )
    if frame.height == 0:
        raise ExtractError(Problem(str(path), "the units file has no units (only a header)", 1,
                                   hint="list one unit per line under the header"))
    problems: list[Problem] = []
    blank = frame.filter(pl.col("unit_code").is_null())
    if blank.height:
        problems.append(Problem(str(path), f"a unit has no code (line {_lines(blank)})", int(blank[ROW][0]),
                                spec.code, hint="give every unit its code, or delete the empty line"))
    coded = frame.filter(pl.col("unit_code").is_not_null())
    dup = coded.filter(pl.col("unit_code").is_duplicated()).filter(~pl.col("unit_code").is_first_distinct())
    for r in dup.unique("unit_code", keep="first", maintain_order=True).head(_MAX_EXAMPLES).iter_rows(named=True):
        first = int(coded.filter(pl.col("unit_code") == r["unit_code"])[ROW][0])
        problems.append(Problem(str(path), f"unit code {r['unit_code']!r} appears more than once (first on line "
                                f"{first})", int(r[ROW]), spec.code, hint="each unit needs one row"))
    for g in groups:
        # a unit without its alliance or region would make a phantom blank unit at that level
        no_group = coded.filter(pl.col(g).is_null())
        if no_group.height:
            problems.append(Problem(str(path), f"{no_group.height:,} unit(s) have no {g} (line {_lines(no_group)})",
                                    int(no_group[ROW][0]), g, hint=f"fill in {g} for every unit"))
    if spec.expected_cases:
        number = pl.col("_expected_text").cast(pl.Float64, strict=False)
        bad = coded.filter(pl.col("_expected_text").is_not_null() & (pl.col("_expected_text") != "")
                           & (number.is_null() | number.is_nan() | (number < 0) | number.is_infinite()))
        if bad.height:
            problems.append(Problem(str(path), f"{spec.expected_cases} is not a non-negative number "
                                    f"(e.g. {bad['_expected_text'][0]!r}; line {_lines(bad)})",
                                    int(bad[ROW][0]), spec.expected_cases,
                                    hint="write a number of cases, or leave the cell blank if unknown"))
        frame = frame.with_columns(
            pl.col("_expected_text").cast(pl.Float64, strict=False).alias("expected_cases")).drop("_expected_text")
    mergers: dict[str, str] = {}
    if spec.mergers:
        try:
            mergers = read_mergers(loaded.base_dir / spec.mergers, set(coded["unit_code"].to_list()),
                                   units_file=spec.source, limits=limits)
        except ExtractError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ExtractError(*problems)
    return Units(frame.drop(ROW), tuple(spec.groups), mergers)


def _old_codes(path: Path, limits: ReadLimits | None) -> set[str]:
    """The old codes of a mergers file (empty when it cannot be read: ``read_mergers`` reports why)."""
    try:
        raw = read_extract(path, limits=limits)
    except ExtractError:
        return set()
    if "old_code" not in raw.columns:
        return set()
    return set(raw.select(_text("old_code")).to_series().drop_nulls().to_list())


def _units_of_dataset(raw: pl.DataFrame, spec: UnitsSpec, path: Path, retired: set[str]) -> pl.DataFrame:
    """One row per distinct code of a dataset (rows without a code are left to the dataset's own accounting)."""
    code = _text(spec.code)
    rows = raw.with_columns(code.alias("__code")).filter(pl.col("__code").is_not_null(),
                                                         ~pl.col("__code").is_in(list(retired)))
    problems = []
    for g in spec.groups:  # a unit in two alliances would be counted in both: refuse, naming the lines
        clash = (rows.filter(_text(g).is_not_null()).group_by("__code")
                 .agg(_text(g).unique(maintain_order=True).alias("values"), pl.col(ROW).first().alias("first"),
                      pl.col(ROW).last().alias("last"))
                 .filter(pl.col("values").list.len() > 1).sort("first"))
        for r in clash.head(_MAX_EXAMPLES).iter_rows(named=True):
            problems.append(Problem(str(path), f"unit {r['__code']!r} has more than one {g} "
                                    f"({', '.join(map(repr, r['values'][:3]))}; lines {r['first']} and {r['last']})",
                                    int(r["last"]), g, hint=f"give each unit one {g}, or list the units in a "
                                    "file of their own (units: file:)"))
    if problems:
        raise ExtractError(*problems)
    # the most recent row of each code, with each blank name or group taken from the code's latest row that
    # gives one (publications sometimes leave the name blank in later rows: SHMI 2012-2014)
    named = [c for c in dict.fromkeys((spec.name, *spec.groups)) if c in rows.columns]
    latest = rows.with_columns(_text(c).drop_nulls().last().over("__code").alias(c) for c in named)
    return latest.unique("__code", keep="last", maintain_order=True).drop("__code")


def _lost_leading_zeros(unknown: Sequence[str], known: Sequence[str]) -> str:
    """'1 for 001, 2 for 002' where unknown codes equal known codes without their leading zeros ('' if none)."""
    stripped = {k.lstrip("0"): k for k in known if k and k.isdigit() and k.startswith("0")}
    pairs = [f"{c} for {stripped[c]}" for c in unknown if c and c.isdigit() and c in stripped]
    return ", ".join(pairs[:3]) + (" ..." if len(pairs) > 3 else "")


def _header_line(raw: pl.DataFrame) -> int:
    """The line of a table's header (the line before its first row), for messages about its columns."""
    return max(int(raw[ROW].min()) - 1, 1) if raw.height else 1


def read_mergers(path: Path, unit_codes: set[str], *, units_file: str = "the units file",
                 limits: ReadLimits | None = None) -> dict[str, str]:
    """``old_code -> new_code`` with chains resolved (A->B, B->C gives A->C and B->C).

    Refused, with every problem located: a blank code, a code mapped to itself, an old code listed
    twice with different successors, a cycle (A->B with B->A would swap two units' data), an old code
    that is still a unit, and a final successor that is not a unit.
    """
    raw = read_extract(path, limits=limits)
    if not {"old_code", "new_code"} <= set(raw.columns):
        raise ExtractError(Problem(str(path), "needs columns old_code and new_code", 1,
                                   hint="the header should read old_code,new_code"))
    rows = raw.select(_text("old_code").alias("old"), _text("new_code").alias("new"), ROW)
    problems: list[Problem] = []
    for col, text in (("old", "old_code"), ("new", "new_code")):
        blank = rows.filter(pl.col(col).is_null())
        if blank.height:
            problems.append(Problem(str(path), f"{text} is blank (line {_lines(blank)})", int(blank[ROW][0]), text,
                                    hint="every merger needs both codes; delete lines that are not mergers"))
    rows = rows.filter(pl.col("old").is_not_null() & pl.col("new").is_not_null())
    line_of: dict[str, int] = {}
    mapping: dict[str, str] = {}
    for old, new, line in rows.iter_rows():
        if old == new:
            problems.append(Problem(str(path), f"{old!r} is merged into itself", line, "new_code",
                                    hint="delete this line"))
            continue
        if old in mapping and mapping[old] != new:
            problems.append(Problem(str(path), f"old code {old!r} is merged into both {mapping[old]!r} (line "
                                    f"{line_of[old]}) and {new!r}", line, "old_code",
                                    hint="a predecessor has one successor: keep the right line"))
            continue
        mapping.setdefault(old, new)
        line_of.setdefault(old, line)
    # follow each chain once, remembering where every code ends (linear, however long the chains)
    final: dict[str, str | None] = {}  # old code -> surviving code; None if it runs into a cycle
    reported: set[str] = set()
    for start in mapping:
        if start in final:
            continue
        chain_codes: list[str] = []
        on_chain: set[str] = set()
        code = start
        while code in mapping and code not in final and code not in on_chain:
            chain_codes.append(code)
            on_chain.add(code)
            code = mapping[code]
        end: str | None
        if code in on_chain:  # came back to a code already on this chain: a cycle
            cycle = chain_codes[chain_codes.index(code):]
            shown = [*cycle, code] if len(cycle) <= 6 else [*cycle[:5], "...", code]
            described = " -> ".join(shown) + (f" ({len(cycle):,} codes)" if len(cycle) > 6 else "")
            lines = ", ".join(str(line_of[c]) for c in cycle[:6]) + (" ..." if len(cycle) > 6 else "")
            problems.append(Problem(str(path), f"mergers form a cycle {described} (lines {lines}): applying them "
                                    "would swap the units' data", line_of[cycle[0]], "new_code",
                                    hint="a merger points from the old code to the surviving one; "
                                    "delete the line that points backwards"))
            reported.update(cycle)
            end = None
        else:
            end = final.get(code, code)
        for c in chain_codes:
            final[c] = end
    unknown: dict[str, str] = {}  # surviving code that is not a unit -> first old code (file order) ending there
    for old, end in final.items():
        if end is not None and end not in unit_codes:
            unknown.setdefault(end, old)
    for end, old in unknown.items():
        via = [old]
        while mapping[via[-1]] != end:
            via.append(mapping[via[-1]])
        through = " (via " + " -> ".join(via[1:6] + (["..."] if len(via) > 6 else [])) + ")" if len(via) > 1 else ""
        others = sum(1 for e in final.values() if e == end) - 1
        also = f" (and {others:,} other old code{'s' if others > 1 else ''})" if others else ""
        problems.append(Problem(str(path), f"{old!r}{also} is merged into {end!r}{through}, which is not a unit in "
                                f"{units_file}", line_of[via[-1]], "new_code",
                                hint="mergers must end at a current unit code"))
    resolved = {old: end for old, end in final.items() if end is not None and end in unit_codes}
    still = sorted((set(mapping) - reported) & unit_codes)
    for old in still:
        problems.append(Problem(str(path), f"old code {old!r} is still a unit in {units_file}", line_of[old],
                                "old_code", hint=f"remove {old} from {units_file}, or delete this merger"))
    if problems:
        raise ExtractError(*sorted(problems, key=lambda p: p.line or 0))
    return resolved


def load_dataset(name: str, path: str | Path, spec: DatasetSpec, units: Units, *, unit_column: str,
                 count_columns: Sequence[str] = (), real_columns: Sequence[str] = (),
                 count_pairs: Sequence[tuple[str, str]] = ()) -> LoadedDataset:
    """Read, type and check one extract; every row is used or excluded with a reason.

    Parameters
    ----------
    count_columns
        Columns that must be non-negative counts (aggregate numerators/denominators).
    real_columns
        Columns that must be non-negative numbers (expected counts, person-time).
    count_pairs
        (numerator, denominator) pairs where numerator must not exceed denominator.
    """
    path = Path(path)
    raw, layout = _read_for_typing(path, spec)
    nested = nested_column_problems(path, raw.schema, [unit_column, *structural_columns(spec), *spec.columns, *count_columns,
                                                       *real_columns], max(layout.header_line, 1))
    if nested:  # every one named at once
        raise ExtractError(*nested)
    typed_later = _SHARED is not None and any(raw is table for table, _ in _SHARED.values())
    # a typed column is kept only where typing its text would give the same type: the unit code
    # stays text, counts are whole numbers (true/false is not one), real columns are floats
    fractional = spec.fractional_counts == "allow"
    retyped = {**{c: pl.Float64() for c in real_columns},
               **{c: (pl.Float64() if fractional else pl.Int64()) for c in count_columns},
               **{c: _TYPES[k] for c, k in spec.columns.items()}}
    redo = [n for n, _ in layout.native if n == unit_column or (n in retyped and retyped[n] != raw.schema[n])]
    raw = _as_text(path, raw, layout, redo) if redo else raw
    for col, message in [(unit_column, f"no unit column {unit_column!r}"),
                         *[(c, f"missing column {c!r} (a count or expected column in the catalogue)")
                           for c in [*count_columns, *real_columns]]]:
        if col not in raw.columns:
            raise ExtractError(Problem(str(path), message, max(layout.header_line, 1), col,
                                       hint=missing_column_hint(path, spec, col, raw.columns)))
    fractional = spec.fractional_counts == "allow"
    # counts are whole numbers unless the catalogue says the table shares patients (half counts)
    typed, wanted = _typed(raw, spec, integer=() if fractional else count_columns,
                           real=[*count_columns, *real_columns] if fractional else real_columns,
                           infer=_format_of(path, spec) != "parquet", text=[unit_column])
    if typed_later:
        _forget(path, spec)
    checks: list[pl.Expr] = []
    texts: list[pl.Expr] = []

    def first(cond: pl.Expr, text: str | pl.Expr) -> None:
        """Add a check; a row takes the reason of the first check it fails. Every row is given the number of
        that check (a text per row, even a null one, cost 0.28 s and 370 MB on 2M rows); only the rows that
        fail get their reason's text."""
        checks.append(pl.when(cond).then(pl.lit(len(checks), dtype=pl.UInt16)))
        texts.append(pl.lit(text) if isinstance(text, str) else text)

    if layout.short:  # the parser pads a short row with blanks: never read a value into the wrong column
        fields = dict(layout.short)
        first(pl.col(ROW).is_in(list(fields)),
              pl.format("row has {} fields, header has " + str(layout.width),
                        pl.col(ROW).replace_strict(fields, default=None, return_dtype=pl.Int64)))
    whole_hint = f" (a shared count such as 6.5? add fractional_counts: allow to datasets.{name})"
    for col, dtype in wanted.items():
        if raw[col].dtype != dtype:
            hint = whole_hint if col in count_columns and dtype.is_integer() and not fractional else ""
            bad = _not_converted(raw[col], typed[col])
            if bad is not None:
                marked = _suppression_marks(raw[col], bad) if col in count_columns else None
                if marked is not None and marked.any():  # '*' is a withheld small count, not a shared 6.5
                    first(pl.lit(marked), f"count suppressed by the publisher (a mark such as '*', '..' or '-' in "
                          f"column '{col}', where small numbers are withheld)")
                    bad = bad & ~marked
                first(pl.lit(bad), f"value is not {_type_word(dtype)} in column '{col}'{hint}")
    for col in [] if fractional else count_columns:
        if typed.schema[col].is_float():  # declared float, or a typed float column: still whole numbers only
            first(pl.col(col).is_finite() & (pl.col(col) != pl.col(col).round(0)),
                  f"value is not a whole number in column '{col}'{whole_hint}")
    for col, dtype in typed.schema.items():
        # NaN compares greater than every number in polars (so 'x >= 3' would hold) and inf is no
        # measurement either: a row holding one is excluded like any other value that is not a number
        if dtype.is_float() and col != ROW:
            first(~pl.col(col).is_finite() & pl.col(col).is_not_null(), f"value is not a finite number in column '{col}'")
    data_cols = [c for c in typed.columns if c != ROW]
    # a row with nothing in it (a spacer between blocks of a published table) is no record
    first(pl.lit(_blank_rows(typed, data_cols)), "blank row")
    # unit codes trimmed and recoded once per distinct code (a national extract has 2M rows, ~140 codes); the
    # missing and unknown codes are found among the distinct codes, and the rows are matched against those
    # alone: usually there are none, and no row is looked at (#16)
    mergers = dict(units.mergers)
    case_folded: dict[str, str] = {}  # codes that match a unit (or a merged code) only ignoring case: see below

    def recode(c: pl.Expr) -> pl.Expr:
        trimmed = c.cast(pl.String).str.strip_chars()
        merged = trimmed.replace(mergers) if mergers else trimmed
        return merged.replace(case_folded) if case_folded else merged

    seen = typed[unit_column].unique()
    per_code = pl.DataFrame({"raw": seen.drop_nulls()}).with_columns(
        recode(pl.col("raw")).alias("code"), pl.col("raw").cast(pl.String).str.strip_chars().alias("trimmed"))
    case_folded.update(_case_folded(per_code["code"], units))
    if case_folded:
        per_code = per_code.with_columns(pl.col("code").replace(case_folded))
    blank = per_code.filter(pl.col("trimmed") == "")["raw"]  # never so for a typed column (a number, a date)
    if seen.null_count() or blank.len():
        first(pl.col(unit_column).is_null() | pl.col(unit_column).is_in(blank.implode()),
              f"missing unit code ({unit_column})")
    unknown_codes = per_code.filter(~pl.col("code").is_in(units.frame["unit_code"].implode()))["raw"]
    if unknown_codes.len():
        first(pl.col(unit_column).is_in(unknown_codes.implode()), f"unknown unit code in {unit_column}")
    # the codes as they are (text, trimmed, no merger applies): nothing to recode
    same_codes = typed.schema[unit_column] == pl.String and per_code["code"].equals(per_code["raw"])
    for col, (lo, hi) in spec.ranges.items():
        if col in typed.columns and not typed.schema[col].is_numeric():  # a code, a category, a date or a flag
            dtype = typed.schema[col]
            held = "text" if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum) else _type_word(dtype)
            raise ExtractError(Problem(str(path), f"column {col!r} has an allowed range [{lo:g}, {hi:g}] "
                                       f"(datasets.{name}.ranges) but holds {held}, not numbers",
                                       max(layout.header_line, 1), col,
                                       hint="a range applies to a column of numbers: remove it from ranges, or "
                                       "check the column name"))
        if col in typed.columns:
            first(~pl.col(col).is_between(lo, hi) & pl.col(col).is_not_null(),
                  f"{col} outside the allowed range [{lo:g}, {hi:g}]")
    for col in [*count_columns, *real_columns]:
        first(pl.col(col) < 0, f"negative value in {col}")
        # a blank count excludes the row only from the indicators that use that column (pipeline)
    for num, den in count_pairs:
        first(pl.col(num) > pl.col(den), f"{num} greater than {den}")
    if spec.periods is not None and spec.period_column:
        first(~pl.col(spec.period_column).cast(pl.String).is_in(spec.periods), "outside the reporting periods")
    reason = pl.coalesce(*checks, pl.lit(None, dtype=pl.UInt16)) if checks else pl.lit(None, pl.UInt16)
    checked = typed.with_columns(reason.alias(REASON))  # the number of the first check failed
    # duplicates are judged among rows that passed the other checks, keeping the first occurrence
    # with a key, a repeated key is the duplicate test; otherwise whole identical rows are
    columns, label = (spec.key, f"repeated key ({', '.join(spec.key)})") if spec.key else (data_cols, "duplicate row")
    ok = pl.col(REASON).is_null()
    key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
    # the unit as it will be counted: ' R0A' and 'r0a' are R0A, so a row published twice so is a repeat (it was
    # counted twice; red17). Merged codes stay apart here: an old and a new trust's rows are both data, summed.
    keyed = checked
    if unit_column in columns:
        same_unit = _same_unit_codes(per_code, units)
        if same_unit:
            codes = checked.get_column(unit_column).cast(pl.String).replace(list(same_unit), list(same_unit.values()))
            keyed = checked.clone().replace_column(checked.get_column_index(unit_column), codes)
    # only rows whose key occurs more than once can repeat an earlier row: judge those few rows alone
    shared_key = _shared_key_rows(keyed, columns)
    bad = checked.get_column(REASON).is_not_null()
    repeats = pl.Series(dtype=pl.UInt32)
    if shared_key.len():
        repeats = shared_key.filter(keyed[shared_key].select(ok & ~key.is_first_distinct().over(ok)).to_series())
        bad = bad.scatter(repeats, True)
    # usually no row or a handful fail: keep the typed frame as it is, or drop those rows with a precomputed
    # mask; the failed rows are gathered by position and take their reason there (a reason column rewritten for
    # every row, then filtered, cost 0.2 s and 300 MB on 2M rows)
    bad_rows = bad.arg_true()
    used = _without_rows(typed, bad, bad_rows)
    # column by column: a select on 'checked' first aligned its columns' chunks (the read's 17 per column, the
    # reason's one), copying every column of the table (0.2 s and 370 MB on 2M rows) to gather a few rows
    read = {REASON, ROW, unit_column, *(c for t in texts for c in t.meta.root_names())}
    failed = pl.DataFrame([checked.get_column(c).gather(bad_rows) for c in checked.columns if c in read])
    text = pl.lit(label) if repeats.len() else pl.lit(None, pl.String)  # a repeat passed every other check
    for number in reversed(range(len(texts))):
        text = pl.when(pl.col(REASON) == number).then(texts[number]).otherwise(text)
    failed = failed.select(text.cast(pl.String).alias(REASON), ROW, unit_column)
    excluded = (failed.select(REASON, ROW)
                .group_by(REASON).agg(pl.len().alias("n"), pl.col(ROW).sort().head(_MAX_EXAMPLES))
                .sort(["n", REASON], descending=[True, False]))  # equal counts: by reason, so the order is fixed
    exclusions = [Exclusion(r[REASON], r["n"], tuple(r[ROW])) for r in excluded.iter_rows(named=True)]
    if layout.below:  # read, and reported, but never a record
        exclusions.append(Exclusion("below the table (blank line, note or footnote)", len(layout.below),
                                    layout.below[:_MAX_EXAMPLES]))
    notes: list[str] = list(layout.notes())
    unknown = (failed.select(REASON, unit_column).filter(pl.col(REASON) == f"unknown unit code in {unit_column}")
               .select(recode(pl.col(unit_column)).alias("code")).group_by("code").len().sort("code"))
    if unknown.height:
        shown = unknown.head(10)
        listed = ", ".join(f"{c} ({n:,} row{'s' if n != 1 else ''})" for c, n in shown.iter_rows())
        more = f" and {unknown.height - shown.height:,} more" if unknown.height > shown.height else ""
        notes.append(f"{unknown.height:,} unit code(s) in {unit_column} are not in the units file: {listed}{more}; "
                     "add them to the units file, or map old codes to current ones under units: mergers:")
        zeros = _lost_leading_zeros(unknown["code"].to_list(), units.frame["unit_code"].to_list())
        if zeros:
            notes.append(f"codes in {unit_column} look like numbers that lost their leading zeros ({zeros}): "
                         "the file stores them as numbers (Excel and Parquet drop leading zeros); store the "
                         "column as text, with the zeros, as in the units file")
    if case_folded:
        folded = per_code.filter(pl.col("trimmed").replace(mergers).is_in(list(case_folded)))["raw"]
        matched = int(used.get_column(unit_column).is_in(folded.implode()).sum())
        if matched:
            pairs = sorted(case_folded.items())
            shown = ", ".join(f"{a}→{b}" for a, b in pairs[:10]) + (
                f" and {len(pairs) - 10:,} more" if len(pairs) > 10 else "")
            notes.append(f"{matched:,} rows' codes in {unit_column} match a unit only ignoring upper and lower case, "
                         f"and were matched so ({shown}); NHS (ODS) codes are upper case")
    if units.mergers:
        merged = per_code.filter(pl.col("trimmed").is_in(list(units.mergers)))["raw"]  # codes as written
        recoded = int(used.get_column(unit_column).is_in(merged.implode()).sum())
        if recoded:
            shown = list(units.mergers.items())[:10]
            pairs = ", ".join(f"{o}→{n}" for o, n in shown) + (
                f" and {len(units.mergers) - len(shown):,} more" if len(units.mergers) > len(shown) else "")
            notes.append(f"{recoded:,} rows recoded from a merged unit code ({pairs})")
    if not same_codes:  # only the codes a trim or merger changes are replaced, not every row's code looked up
        changed = per_code.filter(pl.col("code") != pl.col("raw").cast(pl.String))
        codes = used.get_column(unit_column).cast(pl.String).replace(changed["raw"].cast(pl.String), changed["code"])
        used = used.clone().replace_column(used.get_column_index(unit_column), codes)  # no realignment of chunks
    accounting = RowAccounting(
        dataset=name, file=str(path), rows_read=raw.height + len(layout.below), rows_used=used.height,
        exclusions=tuple(exclusions), notes=tuple(notes))
    return LoadedDataset(name, used, accounting, file_digest(path), tuple(spec.key or ()))


def _same_unit_codes(per_code: pl.DataFrame, units: Units) -> dict[str, str]:
    """Unit codes as written (``per_code``'s raw text) that name a unit once trimmed and, for ASCII codes, case
    ignored, where that differs from the text: the code a repeated-key check compares (no merger applied)."""
    raw = per_code["raw"].cast(pl.String)
    trimmed = per_code["trimmed"]
    folded = _case_folded(trimmed, replace(units, mergers={}))
    out = {r: folded.get(t, t) for r, t in zip(raw.to_list(), trimmed.to_list(), strict=True)}
    return {r: t for r, t in out.items() if r != t}


def _case_folded(codes: pl.Series, units: Units) -> dict[str, str]:
    """Codes (trimmed, merged) that are no unit but match exactly one unit code, or one merged (old) code, when upper
    and lower case are ignored: ``r0a`` for ``R0A`` (a real-data review: every third code of a published table
    lower-cased lost a third of its rows as "unknown"). A code that is itself a unit is never changed, and one that
    matches two units ignoring case (``Ab`` and ``AB`` both listed) stays unknown."""
    known = units.frame["unit_code"].to_list()
    listed = set(known)
    misses = [c for c in codes.drop_nulls().unique().to_list() if c not in listed]
    if not misses:
        return {}
    # ASCII letters only (ODS codes are): Unicode case rules match more than a reader would (the Kelvin sign K
    # lower-cases to k, 'ß' folds to 'ss'), and a code written so is no NHS code
    targets: dict[str, set[str]] = {}
    for code in known:
        if code.isascii():
            targets.setdefault(code.lower(), set()).add(code)
    for old, new in units.mergers.items():
        if old.isascii():
            targets.setdefault(old.lower(), set()).add(new)
    return {c: next(iter(targets[c.lower()])) for c in misses
            if c.isascii() and len(targets.get(c.lower(), ())) == 1}


_MAX_SLICES = 256


def _without_rows(frame: pl.DataFrame, drop: pl.Series, rows: pl.Series) -> pl.DataFrame:
    """``frame.filter(~drop)``, where ``rows`` are the positions of ``drop``. A few rows (scattered among at most
    ``_MAX_SLICES`` runs of kept rows) are dropped by joining the runs kept, which shares the table's memory: a
    filter copies every column whose chunks it cannot keep whole (2M rows read from a CSV: 0.3 s, 400 MB)."""
    if not rows.len():
        return frame
    if rows.len() >= _MAX_SLICES:
        return frame.filter(~drop)
    at = rows.cast(pl.Int64).to_list()
    runs = [(a + 1, b) for a, b in zip([-1, *at], [*at, frame.height], strict=True) if b > a + 1]
    if not runs:
        return frame.clear()
    return pl.concat([frame.slice(a, b - a) for a, b in runs], rechunk=False)


def _blank_rows(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Rows with nothing in any of ``columns``. Text is trimmed only on rows whose typed columns are all
    empty: a typed value (a number, date or flag) already shows the row is not blank."""
    typed = [c for c in columns if _is_typed(frame.schema[c])]
    text = [c for c in columns if c not in typed]
    if not typed:
        return frame.select(pl.all_horizontal(_blank(c, frame.schema[c]) for c in columns)).to_series()
    if any(frame[c].null_count() == 0 for c in typed):  # a column filled on every row: no row is blank
        return pl.Series(np.zeros(frame.height, dtype=bool))
    candidates = frame.select(pl.all_horizontal(pl.col(c).is_null() for c in typed)).to_series()
    if not text or not candidates.any():
        return candidates
    rows = candidates.arg_true()
    text_blank = frame[rows].select(pl.all_horizontal(_blank(c) for c in text)).to_series()
    out = np.zeros(frame.height, dtype=bool)
    out[rows.to_numpy()] = text_blank.to_numpy()
    return pl.Series(out)


def _is_typed(dtype: pl.DataType) -> bool:
    """A number, date or flag: never written as spaces, so blank only when null."""
    return dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean


def _blank(col: str, dtype: pl.DataType | None = None) -> pl.Expr:
    """Null, or text that is only spaces (a typed number, date or flag is blank only when null)."""
    value = pl.col(col)
    if dtype is not None and _is_typed(dtype):
        return value.is_null()
    return value.is_null() | (value.cast(pl.String).str.strip_chars() == "")


def missing_column_hint(path: Path, spec: DatasetSpec | None, column: str, found: Sequence[str]) -> str:
    """What to do about a column the catalogue names but the table lacks: a close name, or the row the
    header is really on, and always the columns found."""
    import difflib

    names = [c for c in found if c != ROW]
    listed = f"columns found: {', '.join(names)}" if names else "no columns were found"
    # a period in the suffix holds a year (2011-10, Q1 2023, 2023/24, Oct 2023): trust_code, died_90d, age_band are
    # other measures, not periods
    per_period = [c for c in names if c.startswith(column) and c[len(column):len(column) + 1] in {" ", "_", "-", "."}
                  and re.search(r"(?<!\d)(19|20)\d{2}(?!\d)", c[len(column) + 1:])]
    if len(per_period) >= 2:  # OBSERVED 2011-10, OBSERVED 2012-01, ...: one column per period (a real-data review)
        return (f"the table has one {column!r} column for each period ({per_period[0]!r} ... {per_period[-1]!r}, "
                f"{len(per_period)} columns): it is wide by period; make it long first, one row per unit and period "
                f"with a period column and one {column!r} column (README, 'Your own data') ({listed})")
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? ({listed})"
    line = _line_naming(path, spec, column)
    if line is not None and line != _header_of(spec):
        return f"the column names seem to be on row {line}: add header_row: {line} to the dataset ({listed})"
    return listed


def _first_rows(path: Path, spec: DatasetSpec | None, rows: int = 60) -> list[list[str | None]]:
    """The first ``rows`` rows of a CSV or sheet as text, for hints (empty when they cannot be read)."""
    try:
        if _format_of(path, spec) == "xlsx":
            grid = _read_sheet(path, spec).head(rows)
            return [[None if v is None else str(v) for v in row] for row in grid.iter_rows()]
        if _format_of(path, spec) == "csv":
            encoding = (spec.encoding if spec else None) or "utf-8"
            with path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as fh:
                return [list(row) for _, row in zip(range(rows), csv.reader(fh), strict=False)]
    except Exception:  # a hint only: the real problem is reported by the caller
        return []
    return []


def _line_naming(path: Path, spec: DatasetSpec | None, column: str) -> int | None:
    """The first row with a cell equal to ``column``: where the header really is."""
    for i, row in enumerate(_first_rows(path, spec), start=1):
        if any(v is not None and v.strip() == column for v in row):
            return i
    return None


def _header_elsewhere(exc: ExtractError, path: Path, spec: DatasetSpec | None) -> ExtractError:
    """``exc``, or, where it is about the names on the header row (a name repeated) and the column names
    seem to be on another row, that row said first: a user who deleted a table's title rows, or a month whose file
    has fewer of them, was told to "rename or remove the duplicate column" (a real-data review)."""
    first = exc.problems[0]
    header = _header_of(spec)
    # (a column with values and no name already says where the names seem to be)
    if len(exc.problems) > 1 or not first.message.endswith("appears more than once") or first.line != header:
        return exc
    guess = _guess_header_line(path, spec)
    if guess is None or guess == header:
        return exc
    said = f"row {header} (header_row)" if header != 1 else "its first line"
    return ExtractError(replace(first, message=f"the column names seem to be on row {guess}, but the dataset reads "
                                f"them from {said} ({first.message})",
                                hint=f"set header_row: {guess} on the dataset (rows count from 1, as a spreadsheet "
                                "numbers them)"))


def _other_sheets(path: Path, spec: DatasetSpec | None) -> str | None:
    """Where a workbook's first sheet is read (no ``sheet:``) and it has others: their names and how to pick one."""
    if spec is not None and spec.sheet is not None:
        return None
    names = _sheet_names(path)
    if not names or len(names) < 2:
        return None
    return (f"the first sheet, {names[0]!r}, was read; the workbook has sheets {', '.join(map(repr, names))}: "
            "add sheet: with the name (or number) of the one that holds the table to the dataset")


_SHEETS_LOOKED_AT = 20  # other sheets searched for a dataset's columns (an error path; each is size-checked)
_ROWS_LOOKED_AT = 60


def named_columns(spec: DatasetSpec) -> list[str]:
    """The columns a dataset names itself: unit, period, date and key columns, declared types and ranges."""
    return list(dict.fromkeys([*([spec.unit_column] if spec.unit_column else []), *structural_columns(spec),
                               *spec.columns, *spec.ranges]))


def _sheet_naming(path: Path, spec: DatasetSpec | None, sheets: Sequence[str] | None = None) -> tuple[str, int] | None:
    """(sheet, row) of the first other sheet with a row naming every column the dataset names, when its first
    sheet is read (no ``sheet:``); None when there is none, or nothing to look for. ``sheets``: the workbook's
    sheet names, when already read."""
    if spec is None or spec.sheet is not None or not (wanted := named_columns(spec)):
        return None
    for sheet in list(sheets if sheets is not None else _sheet_names(path) or [])[1:1 + _SHEETS_LOOKED_AT]:
        try:
            grid = _read_sheet(path, spec.model_copy(update={"sheet": sheet})).head(_ROWS_LOOKED_AT)
        except ExtractError:
            continue
        for row, values in enumerate(grid.iter_rows(), start=1):
            if set(wanted) <= {str(v).strip() for v in values if v is not None}:
                return sheet, row
    return None


def _pick_sheet_hint(found: tuple[str, int], header: int) -> str:
    sheet, row = found
    return (f"sheet {sheet!r} names them on row {row}: add sheet: {sheet!r} to the dataset"
            + (f", with header_row: {row}" if row != header else ""))


def _wrong_sheet(path: Path, spec: DatasetSpec | None, names: Sequence[str], header: int) -> Problem | None:
    """Where a workbook's first sheet is read (no ``sheet:``) and its header row has none of the columns the dataset
    names, while another sheet names them all: the wrong sheet, said first (a notes sheet longer than header_row
    gave a "column has no name" hint on the notes, or every named column reported missing; real-data review)."""
    if spec is None or spec.sheet is not None:
        return None
    wanted = named_columns(spec)
    if not wanted or set(wanted) & {n.strip() for n in names}:
        return None
    sheets = _sheet_names(path) or []
    found = _sheet_naming(path, spec, sheets)
    if found is None:
        return None
    first = sheets[0]
    shown = ", ".join(map(repr, wanted[:4])) + (f" and {len(wanted) - 4} more" if len(wanted) > 4 else "")
    return Problem(str(path), f"the first sheet, {first!r}, was read and has none of the columns the dataset names "
                   f"({shown}) on row {header}", header, hint=_pick_sheet_hint(found, header))


def _guess_header_line(path: Path, spec: DatasetSpec | None) -> int | None:
    """The first row as full as the fullest of the first rows: titles above a table fill one cell each."""
    counts = [sum(1 for v in row if v is not None and v.strip()) for row in _first_rows(path, spec)]
    if not counts or max(counts) < 2:
        return None
    return counts.index(max(counts)) + 1


# what publishers write in place of a withheld small number (NHS England, ONS, NHS Digital and GSS conventions)
SUPPRESSION_MARKS = frozenset({"*", "**", "***", "..", ".", "-", "\u2013", "\u2014", ":", "c", "x", "z", "[c]", "[x]",
                               "[z]", "[u]", "~", "<5", "< 5", "n/a", "na", "suppressed", "supp"})


def _suppression_marks(raw: pl.Series, among: pl.Series) -> pl.Series:
    """Of the rows ``among`` selects (those that did not convert), the ones whose text is a publisher's suppression
    mark (``SUPPRESSION_MARKS``), ignoring case and spaces; only those rows are read."""
    rows = among.arg_true()
    marks = raw.gather(rows).cast(pl.String).str.strip_chars().str.to_lowercase().is_in(
        list(SUPPRESSION_MARKS)).fill_null(False).to_numpy()
    out = np.zeros(raw.len(), dtype=bool)
    out[rows.to_numpy()[marks]] = True
    return pl.Series(out)


def _not_converted(raw: pl.Series, typed: pl.Series) -> pl.Series | None:
    """Rows whose cell held something that did not convert (null after casting, not blank before); None
    when there is none. Only the rows that came out null are looked at again."""
    nulls = typed.is_null()
    if not nulls.any():
        return None
    rows = nulls.arg_true()
    held = pl.select(raw_not_blank(pl.DataFrame([raw.gather(rows)]), raw.name)).to_series()
    if not held.any():
        return None
    out = np.zeros(raw.len(), dtype=bool)
    out[rows.to_numpy()] = held.to_numpy()
    return pl.Series(out)


def raw_not_blank(raw: pl.DataFrame, col: str) -> pl.Expr:
    """True where the original cell held something (so a null after casting means bad text)."""
    src = pl.lit(raw[col])
    if raw[col].dtype == pl.String:
        text = src.str.strip_chars()
        return text.is_not_null() & ~text.is_in(["", "NA", "NULL", "null", "N/A"])
    return src.is_not_null()


def _type_word(dtype: pl.DataType) -> str:
    if dtype == pl.Int64:
        return "a whole number"
    if dtype == pl.Float64:
        return "a number"
    if dtype == pl.Boolean:
        return "true/false"
    if dtype == pl.Date:
        return "a date (YYYY-MM-DD)"
    return "text"


def load_all(loaded: LoadedCatalogue, *, data: Mapping[str, str | Path] | None = None,
             only: Sequence[str] | None = None) -> tuple[Units, dict[str, LoadedDataset]]:
    """Load the units and every dataset the (selected) indicators use."""
    cat = loaded.catalogue
    unknown = unknown_data_names(loaded, data)  # checked by load_catalogue too; a caller may have skipped that
    if unknown:
        raise CatalogueError(unknown)
    units = load_units(loaded, data=data)
    wanted = [i for i in cat.indicators if only is None or i.id in only]
    datasets: dict[str, LoadedDataset] = {}
    for name in dict.fromkeys(i.dataset for i in wanted):
        spec = cat.datasets[name]
        inds = [i for i in wanted if i.dataset == name and is_aggregate(i, cat.datasets)]
        # counts are whole numbers; expected counts and person-time (a rate's denominator) need not be
        counts = list(dict.fromkeys(c for i in inds for c in (i.numerator, i.denominator if i.statistic != "rate" else None)
                                    if c is not None))
        reals = list(dict.fromkeys(c for i in inds for c in (i.expected, i.person_time,
                                                             i.denominator if i.statistic == "rate" else None)
                                   if c is not None and c not in counts))
        pairs = list(dict.fromkeys((i.numerator, i.denominator) for i in inds
                                   if i.statistic == "proportion" and i.denominator))
        datasets[name] = load_dataset(name, loaded.dataset_path(name, data), spec, units,
                                      unit_column=spec.unit_column or cat.units.code,
                                      count_columns=counts, real_columns=reals, count_pairs=pairs)
    return units, datasets
