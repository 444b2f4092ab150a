"""Issue #16: a UTF-8 CSV is parsed while, beside the parser, its whole text is checked and its lines are scanned
for short rows; the text check skips making the text of ASCII chunks. Oracles: main's check as it was before
(a verbatim copy below), and the serial order (check the whole text, then parse: ``io._OVERLAP = False``, text
read): the same header or the same located problem, the same digest, frame, exclusions and notes."""

from __future__ import annotations

import codecs
import csv
import hashlib
from pathlib import Path

import polars as pl
import pytest
from test_csv16_typed_read import UNITS, _same

from audit_metrics import io
from audit_metrics.catalogue import DatasetSpec
from audit_metrics.exceptions import ExtractError, Problem
from audit_metrics.io import _ENCODING_HINT, _check_header, load_dataset, reading_once


def _reference_check(path: Path, header_line: int, chunk_size: int) -> tuple[list[str], str]:
    """``_check_csv_text`` as it was on main before this change (every chunk decoded), and the file's SHA-256."""
    encoding = "utf-8"
    utf8 = True
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    digest = hashlib.sha256()
    head = ""
    seen_text = False
    offset = 0
    newlines = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = newlines + chunk[: max(exc.start, 0)].count(b"\n") + 1
                raise ExtractError(Problem(str(path), f"not {'UTF-8' if utf8 else encoding} text (byte "
                                           f"{offset + max(exc.start, 0)})", line, hint=_ENCODING_HINT)) from None
            digest.update(chunk)
            seen_text = seen_text or bool(text.strip())
            if head.count("\n") < header_line and len(head) < header_line * chunk_size:
                head += text
            offset += len(chunk)
            newlines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ExtractError(Problem(str(path), f"not {'UTF-8' if utf8 else encoding} text (the file ends inside "
                                       f"a character, byte {offset})", newlines + 1, hint=_ENCODING_HINT)) from None
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
    return header, digest.hexdigest()


BODY = b"".join(b"%d,A1,%d,true,\n" % (i, i % 7) for i in range(1, 40))
# (name, bytes, header line): every one is checked at several chunk sizes, so a bad byte, a BOM or a
# character of several bytes falls at a chunk's start, middle and end
FILES: list[tuple[str, bytes, int]] = [
    ("plain", b"id,code,n,flag,note\n" + BODY, 1),
    ("bom", b"\xef\xbb\xbfid,code,n,flag,note\n" + BODY, 1),
    ("crlf, no final newline", (b"id,code,n,flag,note\n" + BODY).replace(b"\n", b"\r\n")[:-2], 1),
    ("valid non-ASCII late", b"id,code,n,flag,note\n" + BODY + "9,A1,1,true,caf\u00e9 \U0001f600\n".encode(), 1),
    ("valid non-ASCII in the middle", b"id,code,n,flag,note\n" + BODY[:200] + "\u00e9".encode() + BODY[200:], 1),
    ("a BOM character mid-file", b"id,code,n,flag,note\n" + BODY[:100] + b"\xef\xbb\xbf" + BODY[100:], 1),
    ("bad byte at the start", b"\xffid,code\n" + BODY, 1),
    ("bad byte after the BOM", b"\xef\xbb\xbf\xff,code\n" + BODY, 1),
    ("bad byte in the header", b"id,co\xe9de\n" + BODY, 1),
    ("bad byte in the middle", b"id,code,n,flag,note\n" + BODY[:333] + b"\x80" + BODY[333:], 1),
    ("bad byte at the end", b"id,code,n,flag,note\n" + BODY + b"\xfe", 1),
    ("ends inside a character", b"id,code,n,flag,note\n" + BODY + b"\xe2\x82", 1),
    ("overlong", b"id,code,n,flag,note\n" + BODY + b"1,\xc0\xaf,1,true,\n", 1),
    ("surrogate", b"id,code,n,flag,note\n" + BODY + b"1,\xed\xa0\x80,1,true,\n", 1),
    ("latin-1 after many ASCII chunks", b"id,code,n,flag,note\n" + BODY * 3 + b"1,A1,1,true,caf\xe9\n", 1),
    ("empty", b"", 1),
    ("only spaces", b"   \n \n", 1),
    ("separators below an ASCII header", b"\x1c\n" + BODY, 1),
    ("semicolons", b"id;code;n\n1;A1;2\n", 1),
    ("blank header", b"\n" + BODY, 1),
    ("titles above", b"Title\nsub, title\nid,code,n,flag,note\n" + BODY, 3),
    ("no such header line", b"Title\n", 3),
    ("duplicate column", b"id,code,id\n1,A1,2\n", 1),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize(("name", "data", "header"), FILES, ids=[f[0] for f in FILES])
def test_the_text_check_gives_what_it_gave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int,
                                           name: str, data: bytes, header: int) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    monkeypatch.setattr(io, "_CHUNK", chunk)
    try:
        expected: object = _reference_check(path, header, chunk)
    except ExtractError as exc:
        expected = str(exc)
    with reading_once():
        try:
            got: object = (io._check_csv_text(path, header), io._DIGESTS[io._digest_key(path)])  # type: ignore[index]
        except ExtractError as exc:
            got = str(exc)
    assert got == expected


def _hostile(rows: list[str], *, crlf: bool = False, bom: bool = False, final_newline: bool = True) -> bytes:
    text = ("\r\n" if crlf else "\n").join(rows) + (("\r\n" if crlf else "\n") if final_newline else "")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


HEAD = "id,code,note,n,flag"
PLAIN = [f"{i},A1,x,{i % 5},{'true' if i % 2 else ''}" for i in range(1, 30)]
CASES: dict[str, bytes] = {
    "plain": _hostile([HEAD, *PLAIN]),
    "quoted commas and newlines": _hostile([HEAD, '1,A1,"a, b",2,true', '2,B2,"line\none, two",3,', *PLAIN[2:],
                                            '40,A1,"x""y",1,']),
    "quoted, short": _hostile([HEAD, '1,A1,"a, b, c, d"', *PLAIN[1:]]),
    "crlf": _hostile([HEAD, *PLAIN, "31,A1,x"], crlf=True),
    "bom": _hostile([HEAD, *PLAIN, "31,A1"], bom=True),
    "no final newline, short last row": _hostile([HEAD, *PLAIN, "31,A1"], final_newline=False),
    "short rows": _hostile([HEAD, *PLAIN[:5], "6,A1", "7,A1,x,1", *PLAIN[7:]]),
    "short and long rows": _hostile([HEAD, *PLAIN[:5], "6,A1", "7,A1,x,1,true,extra", "8,A1,x,1", *PLAIN[8:]]),
    "long row only": _hostile([HEAD, *PLAIN[:5], "6,A1,x,1,true,extra,more", *PLAIN[6:]]),
    "short rows, blank lines, commas only": _hostile([HEAD, *PLAIN[:3], "", ",,,,", " , ,", "4,A1", "5", *PLAIN[5:]]),
    "blank last field everywhere": _hostile([HEAD, *[f"{i},A1,,{i},"for i in range(1, 40)], "40,A1,,1"]),
    "bad byte at the start": b"\xff" + _hostile([HEAD, *PLAIN]),
    "bad byte in the middle": _hostile([HEAD, *PLAIN[:10]]) + b"11,A1,caf\xe9,1,true\n" + _hostile(PLAIN[11:]),
    "bad byte at the end": _hostile([HEAD, *PLAIN]) + b"\x80",
    "bad byte and an unclosed quote": _hostile([HEAD, '1,A1,"open,1,true', *PLAIN[1:]]) + b"\xc3",
    "unclosed quote": _hostile([HEAD, '1,A1,"open,1,true', *PLAIN[1:]]),
    "valid non-ASCII": _hostile([HEAD, *PLAIN, "31,A1,caf\u00e9 \U0001f600,1,true"]),
    "titles above": _hostile(["Title", "note: x, y", HEAD, *PLAIN, "31,A1"]),
    "a footnote below": _hostile([HEAD, *PLAIN, "", "Source: somewhere"]),
    "no rows": _hostile([HEAD]),
    "header only, no newline": HEAD.encode(),
    "one column": _hostile(["id", "1", "2", "", "3"]),
}


@pytest.mark.parametrize("chunk", [5, 1 << 20])
@pytest.mark.parametrize("name", list(CASES))
def test_reading_beside_the_checks_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    name: str, chunk: int) -> None:
    """Typed read with the checks and the line scan beside the parser against the text read after the
    checks (``_same``): schema, frame, exclusions (short rows among them) and notes, or the same problem."""
    path = tmp_path / "d.csv"
    path.write_bytes(CASES[name])
    monkeypatch.setattr(io, "_CHUNK", chunk)
    header_row = 3 if name == "titles above" else None
    spec = DatasetSpec(path=str(path), header_row=header_row)
    _same(path, spec, monkeypatch)
    # and the overlapped read against the serial one, both typed
    with reading_once():
        outcomes = []
        for overlap in (True, False):
            monkeypatch.setattr(io, "_OVERLAP", overlap)
            try:
                loaded = load_dataset("d", path, spec, UNITS, unit_column="code" if name != "one column" else "id")
                outcomes.append((loaded.frame, loaded.accounting, loaded.digest))
            except ExtractError as exc:
                outcomes.append((str(exc),))
    if len(outcomes[0]) == 3:
        pl.testing.assert_frame_equal(outcomes[0][0], outcomes[1][0], check_exact=True)
        assert outcomes[0][1:] == outcomes[1][1:]
    else:
        assert outcomes[0] == outcomes[1]


def test_short_rows_are_found_by_the_line_scan(tmp_path: Path) -> None:
    """The scan beside the parser is what finds them (not the fallback): the short rows, with their fields."""
    path = tmp_path / "d.csv"
    path.write_bytes(CASES["short rows, blank lines, commas only"])
    spec = DatasetSpec(path=str(path))
    with reading_once():
        _, layout = io._read_for_typing(path, spec)
    assert layout.short == ((8, 2), (9, 1))
    # the blank line, the short rows and the line of 2 separators (not the one of 4: it is a blank row)
    assert io._line_suspects(path, 5).to_list() == [4, 6, 7, 8]
