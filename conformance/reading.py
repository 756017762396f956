"""Reading one file: its bytes (encoding, BOM, line endings) and then its records.

A file is read once. Lines are physical lines (ended by CRLF, LF or CR alone) numbered from 1. A
file without any quote character is split on the delimiter by Polars (CSV without quoting is
exactly that); any other goes through Python's ``csv`` module (RFC 4180 quoting), which never
stops at a bad record: each ``csv.Error`` becomes a ``csv-syntax`` finding and reading goes on
at the next line.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import os
import re
import stat
import sys
from dataclasses import dataclass
from dataclasses import field as dc_field
from itertools import chain
from pathlib import Path

import numpy as np
import polars as pl

from emrr.conformance.findings import Collector

BOM = codecs.BOM_UTF8
_BREAKS = re.compile(r"\r\n|\r|\n")
BODY_SCHEMA = {"fid": pl.Int32, "line": pl.Int64, "fields": pl.List(pl.String)}
ROWS_SCHEMA = {"line": pl.Int64, "fields": pl.List(pl.String)}


READ_CHUNK = 1 << 24  # bytes read first: a NUL byte among them (a binary file) stops the reading there
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC  # a FIFO swapped in does not block the open


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_within(root: Path, rel: str, folder: bool = False) -> int:
    """A descriptor of ``root/rel`` (a folder when ``folder``) opened one name at a time from
    ``root``, never through a symbolic link: a link anywhere in ``rel``, even one put there
    while the checker runs, raises OSError ELOOP instead of being followed (campaign H5). The
    root itself is the user's choice and may be a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    parts = [p for p in rel.split("/") if p]
    for i, name in enumerate(parts):
        try:
            inner = os.open(name, _FILE if i == len(parts) - 1 and not folder else _DIR, dir_fd=fd)
        except OSError as exc:
            link = exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, fd)
            os.close(fd)
            if link:
                raise OSError(errno.ELOOP, "a symbolic link", "/".join(parts[:i + 1])) from None
            raise
        os.close(fd)
        fd = inner
    return fd


def read_bytes(root: Path, rel: str, shown: str, out: Collector) -> bytes | None:
    """The bytes of ``root/rel`` (``shown`` in findings), opened with ``open_within`` (no
    symbolic link followed: campaign H5, a link to /etc/passwd was read and quoted) and read only
    from a regular file; the reading stops after the first 16 MiB when they hold a NUL byte, as
    ``decode`` reads no further than that (campaign M1: a 5 GB sparse file was read whole).
    None, with a ``file-unreadable`` finding, when it cannot be read."""
    try:
        fd = open_within(root, rel)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            out.add("file-unreadable", shown, None, None, "link")
        else:
            out.add("file-unreadable", shown, None, None, reason=exc.strerror or str(exc))
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for a FIFO or device since the walk
            out.add("file-unreadable", shown, None, None, reason="not a regular file")
            return None
        head = os.read(fd, READ_CHUNK)
        if len(head) < READ_CHUNK or b"\x00" in head:  # the whole file, or a binary one
            return head
        # then the file read again whole into one buffer sized from it (as Path.read_bytes does):
        # chunks joined, or the head and the rest, would hold the file twice for a moment
        del head
        os.lseek(fd, 0, os.SEEK_SET)
        return io.FileIO(fd, "rb", closefd=False).readall()
    except OSError as exc:
        out.add("file-unreadable", shown, None, None, reason=exc.strerror or str(exc))
        return None
    finally:
        os.close(fd)


def _line_of(text: str, pos: int) -> int:
    return len(_BREAKS.findall(text, 0, pos)) + 1


class Text:
    """A file's text as UTF-8 bytes (the file's own bytes when they are valid UTF-8: nothing is
    copied), decoded to ``str`` only when asked, and how many LF, CR and CRLF it holds (each
    counted once)."""

    __slots__ = ("data", "lf", "cr", "crlf", "_text")

    def __init__(self, data: bytes, lf: int, cr: int, crlf: int, text: str | None = None):
        self.data, self.lf, self.cr, self.crlf, self._text = data, lf, cr, crlf, text

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.data.decode("utf-8")
        return self._text


def decode(data: bytes, rel: str, out: Collector, encoding: str, terminator: str, quote_char: str = '"') -> Text | None:
    """The file's text, after the file-level checks; None when there is nothing to read further
    (an empty or binary file)."""
    if not data:
        out.add("empty-report", rel, None, None, "zero-bytes")
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        out.add("encoding", rel, line, None, "binary", offset=nul, encoding=encoding)
        return None
    if data.startswith(BOM):
        out.add("bom", rel, 1, None)
        data = data[len(BOM):]
    utf8 = codecs.lookup(encoding).name == "utf-8"
    if utf8 and data.isascii():  # the common case: valid as it is, no copy
        t = Text(data, *_breaks(data))
    else:
        try:
            text = data.decode(encoding)
            valid = True
        except UnicodeDecodeError as exc:
            bad = sum(1 for _ in _invalid_lines(data, encoding))
            out.add("encoding", rel, data.count(b"\n", 0, exc.start) + 1, None, encoding=encoding,
                    byte=data[exc.start], offset=exc.start, reason=exc.reason, lines=bad)
            text = data.decode(encoding, errors="replace")
            valid = False
        utf = data if utf8 and valid else text.encode("utf-8")  # the text's UTF-8 bytes
        t = Text(utf, *_breaks(utf), text=text)
    _line_endings(t, rel, out, terminator, quote_char)
    return t


_STEP = 1 << 24


def _breaks(data: bytes) -> tuple[int, int, int]:
    """LF, CR and CRLF in UTF-8 ``data``: as many as in its text (LF and CR are one byte each,
    never part of another character, and never taken into a replacement character), counted by
    NumPy, several times faster than ``bytes.count`` (in steps, to bound the memory). A CRLF is
    the 16-bit little-endian word 0x0A0D at an even or at an odd offset: two passes over
    half-length views, no array of positions."""
    a = np.frombuffer(data, dtype=np.uint8)
    n = len(a)
    lf = cr = crlf = 0
    for start in range(0, n, _STEP):  # _STEP is even
        part = a[start:start + _STEP]
        lf += int(np.count_nonzero(part == 10))
        crs = int(np.count_nonzero(part == 13))
        cr += crs
        if crs:  # pairs starting in this step (the next step's first byte included)
            pair = a[start:min(start + _STEP + 1, n)]
            for offset in (0, 1):
                words = (len(pair) - offset) // 2
                crlf += int(np.count_nonzero(pair[offset:offset + 2 * words].view("<u2") == 0x0A0D))
    return lf, cr, crlf


def _invalid_lines(data: bytes, encoding: str):
    for raw in data.split(b"\n"):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            yield raw


def _line_endings(t: Text, rel: str, out: Collector, terminator: str, quote_char: str) -> None:
    """Every line break the terminator, and the last line ended. In a file holding the quote
    character, a line break may be data inside a quoted field: the records' own ends are then
    checked as the records are read (``_check_records``), not here."""
    if not out.wants("line-ending"):
        return
    if t.data and not t.data.endswith((b"\n", b"\r")):
        out.add("line-ending", rel, _line_of(t.text, len(t.text)), None, "unterminated", terminator=terminator)
    if quote_char and quote_char.encode() in t.data:
        return
    n_lf, n_cr, n_crlf = t.lf, t.cr, t.crlf
    if terminator == "\r\n":
        bad, pattern, name = (n_lf - n_crlf) + (n_cr - n_crlf), r"\r(?!\n)|(?<!\r)\n", "LF or CR alone"
    elif terminator == "\n":
        bad, pattern, name = n_cr, r"\r\n?", "CR or CRLF"
    else:
        bad, pattern, name = n_lf, r"\r?\n", "LF or CRLF"
    if bad:
        text = t.text
        first = re.search(pattern, text)
        out.add("line-ending", rel, _line_of(text, first.start()), None, count=bad, ending=name, terminator=terminator)


_ENDING_NAMES = {"\r\n": "CRLF", "\n": "LF", "\r": "CR"}


def _record_patterns(delimiter: str, quote_char: str) -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """An RFC 4180 record, a quoted field and a field without quotes, with possessive
    quantifiers only: nothing is ever given back, so the match takes linear time and constant
    memory whatever the length of a field (campaign H3: the backtracking ``(?:[^"]|"")*`` kept a
    frame per character, about 130 bytes per byte of a quoted field, 3.2 GB for 25 MB). Giving
    back could never have helped: a quoted field's body is read item by item (a character that
    is not a quote, or a doubled quote) up to the first lone quote, which is its only possible
    end (the first quote of a doubled one is followed by a quote, never by a delimiter or a
    record's end), and a field without quotes stops only at a delimiter, a quote or a line break."""
    d, q = re.escape(delimiter), re.escape(quote_char)
    quoted = f"{q}(?:[^{q}]++|{q}{q})*+{q}"
    bare = f"[^{d}{q}\\r\\n]*+"
    field = f"(?:{quoted}|{bare})"
    return re.compile(f"{field}(?:{d}{field})*+(\\r\\n|\\n|\\r|\\Z)"), re.compile(quoted), re.compile(bare)


def _field_end(text: str, at: int, quote_char: str, quoted: re.Pattern, bare: re.Pattern) -> int:
    """Where the field starting at ``at`` ends, as the first alternative that matches reads it:
    a quoted field (closed), else, for a quote never closed, up to the first quote of the last
    doubled quote after it (the shortest quoted field a backtracking reader would settle for; a
    csv-syntax ``after-quote`` then), else a field without quotes (empty at a quote: ``unclosed``)."""
    m = quoted.match(text, at)
    if m is not None:
        return m.end()
    if text.startswith(quote_char, at):
        # unclosed: after the opening quote there are only other characters and doubled quotes
        last = text.rfind(quote_char, at + 1)
        if last > at:
            return last  # the last doubled quote's first quote closes, its second follows
    return bare.match(text, at).end()


def _check_records(text: str, rel: str, out: Collector, delimiter: str, quote_char: str, terminator: str,
                   reported: set[int]) -> None:
    """RFC 4180 read strictly, record by record, in a file holding the quote character: a quote
    inside a field that is not enclosed in quotes (§2.5), or anything after a closing quote but a
    delimiter or the record's end, is a ``csv-syntax`` finding (Python's csv module lets the
    first pass); each record's end (not a line break inside a quoted field) is checked against
    the terminator (``line-ending``). ``reported``: lines the csv module already found wrong."""
    record, quoted, bare = _record_patterns(delimiter, quote_char)
    pos, line, n = 0, 1, len(text)
    bad_endings, first_bad = 0, None
    while pos < n:
        m = record.match(text, pos)
        if m is not None and m.end() > pos:
            ending = m.group(1)
            if ending and ending != terminator:
                bad_endings += 1
                if first_bad is None:
                    first_bad = (line + len(_BREAKS.findall(text, pos, m.start(1))), ending)
            line += len(_BREAKS.findall(text, pos, m.end()))
            pos = m.end()
            if not ending:
                break
            continue
        if line not in reported and out.wants("csv-syntax"):
            at = pos
            while True:  # the field where it goes wrong
                end = _field_end(text, at, quote_char, quoted, bare)
                if end < n and text[end] == delimiter:
                    at = end + 1
                    continue
                break
            value, after = text[at:end], text[end:end + 1]
            if value.startswith(quote_char):
                out.add("csv-syntax", rel, line, None, "after-quote", after=after, delimiter=delimiter)
            else:
                out.add("csv-syntax", rel, line, None, "bare-quote" if after == quote_char and value else "unclosed")
        following = _BREAKS.search(text, pos)
        if following is None:
            break
        pos = following.end()
        line += 1
    if bad_endings and out.wants("line-ending"):
        at, ending = first_bad
        out.add("line-ending", rel, at, None, "records", count=bad_endings, ending=_ENDING_NAMES[ending],
                terminator=terminator)


@dataclass
class Parsed:
    """A file's records: the first and the last (line, fields), and the records between them
    (the body) either as UTF-8 text still to split (``body_text`` from line ``body_start``) or as
    records already parsed by the csv module, in frames of ``line`` and ``fields`` (``body_frames``).
    A blank line is ``[""]``."""

    count: int = 0
    split: bool = False  # read by the quote-free way (the body is text)
    first: tuple[int, list[str]] | None = None
    last: tuple[int, list[str]] | None = None
    body_text: bytes | None = None  # UTF-8
    body_start: int = 0
    body_count: int = 0
    body_frames: list[pl.DataFrame] = dc_field(default_factory=list)  # ``line``, ``fields`` (ROWS_SCHEMA)
    trailing_blank: list[int] = dc_field(default_factory=list)  # blank lines after the last record
    syntax_lines: list[int] = dc_field(default_factory=list)  # where a record could not be read

    def body_of(self, fid: int) -> list[pl.DataFrame]:
        """The body's frames as ``body_frame`` takes them: ``fid``, ``line``, ``fields``."""
        return [f.select(pl.lit(fid, dtype=pl.Int32).alias("fid"), "line", "fields") for f in self.body_frames]


def parse(t: Text, rel: str, out: Collector, delimiter: str, quote_char: str, terminator: str = "\r\n") -> Parsed:
    """Split the text into records (see the module docstring)."""
    quoted = bool(quote_char) and quote_char.encode() in t.data
    if t.cr == t.crlf and not quoted:
        return _split(t.data, t.lf, delimiter)
    records, errors = _csv_module(t.text, rel, out, delimiter, quote_char)
    if quoted:
        _check_records(t.text, rel, out, delimiter, quote_char, terminator, set(errors))
    return records.parsed(errors)


def _fields(line: bytes, delimiter: str) -> list[str]:
    return line.removesuffix(b"\r").decode("utf-8").split(delimiter)


def _split(data: bytes, lf: int, delimiter: str) -> Parsed:
    """CSV without any quote character (UTF-8 ``data``): lines split on LF (each CR before it
    dropped), fields on the delimiter. The body stays bytes until its batch is split by Polars."""
    n = lf + 1
    end = len(data)
    if data.endswith(b"\n"):
        end -= 1
        n -= 1
    trailing = []
    while n > 1:  # blank lines at the end are not the last record
        start = data.rfind(b"\n", 0, end) + 1
        if data[start:end] not in (b"", b"\r"):
            break
        trailing.insert(0, n)
        end, n = start - 1, n - 1
    head_end = data.find(b"\n", 0, end)
    if head_end < 0:
        one = _fields(data[:end], delimiter)
        return Parsed(count=1, split=True, first=(1, one), last=(1, one), trailing_blank=trailing)
    tail_start = data.rfind(b"\n", 0, end) + 1
    p = Parsed(count=n, split=True, first=(1, _fields(data[:head_end], delimiter)),
               last=(n, _fields(data[tail_start:end], delimiter)), trailing_blank=trailing)
    if n > 2:
        p.body_text = data[head_end + 1:tail_start - 1]
        p.body_start = 2
        p.body_count = n - 2
    return p


BLOCK_ROWS = 65_536  # records the csv module reads before they go into a Polars frame


def rows_frame(lines: list[int], rows: list[list[str]]) -> pl.DataFrame:
    """Records (``lines``, and ``rows`` of fields, none empty) as a frame of ``line`` and
    ``fields``: the fields go to Polars as one flat column, then into lists (Polars builds a list
    column from Python lists of lists at about 5 kB a record: 6 GB for a 100 MB file)."""
    lengths = [len(r) for r in rows]
    flat = pl.Series("fields", list(chain.from_iterable(rows)), dtype=pl.String)
    if lengths and min(lengths) == max(lengths):
        fields = flat.reshape((len(rows), lengths[0])).cast(pl.List(pl.String))
    else:
        which = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        fields = pl.DataFrame({"i": which, "fields": flat}).group_by("i", maintain_order=True).agg("fields")["fields"]
    return pl.DataFrame({"line": pl.Series("line", lines, dtype=pl.Int64), "fields": fields}, schema=ROWS_SCHEMA)


class _Records:
    """The records of a file as the csv module gives them: the first kept as it is, the others
    gathered into frames of ``BLOCK_ROWS`` as they come (so that memory does not grow with Python
    lists of a whole file), except, still pending, the last record that is not a blank line and
    the blank lines after it (not the last record, ``Parsed.trailing_blank``)."""

    def __init__(self):
        self.first: tuple[int, list[str]] | None = None
        self.frames: list[pl.DataFrame] = []
        self.framed = 0  # records in frames
        self.lines: list[int] = []
        self.rows: list[list[str]] = []
        self.last = -1  # index in the pending rows of the last one that is not a blank line

    def add(self, line: int, row: list[str]) -> None:
        if self.first is None:
            self.first = (line, row)
            return
        self.lines.append(line)
        self.rows.append(row)
        if row != [""]:
            self.last = len(self.rows) - 1
            if self.last >= BLOCK_ROWS:  # the records before it are the body
                self.frames.append(rows_frame(self.lines[:self.last], self.rows[:self.last]))
                self.framed += self.last
                del self.lines[:self.last], self.rows[:self.last]
                self.last = 0

    def parsed(self, errors: list[int]) -> Parsed:
        if self.first is None:
            return Parsed(syntax_lines=errors)
        if self.last < 0:  # only blank lines after the first record
            return Parsed(count=1, first=self.first, last=self.first, trailing_blank=self.lines, syntax_lines=errors)
        body = self.frames + ([rows_frame(self.lines[:self.last], self.rows[:self.last])] if self.last else [])
        count = 2 + self.framed + self.last
        return Parsed(count=count, first=self.first, last=(self.lines[self.last], self.rows[self.last]),
                      body_frames=body, body_count=count - 2, trailing_blank=self.lines[self.last + 1:],
                      syntax_lines=errors)


def _csv_module(text: str, rel: str, out: Collector, delimiter: str, quote_char: str) -> tuple[_Records, list]:
    limit = csv.field_size_limit(sys.maxsize)  # a huge field is a field-length finding, not a parse error
    try:
        return _csv_rows(text, rel, out, delimiter, quote_char)
    finally:
        csv.field_size_limit(limit)


_LINE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)|[^\r\n]++")


def _physical_lines(text: str, start: int = 0):
    """The lines of ``text`` from ``start``, each with its line break (CRLF, LF or CR), as
    ``io.StringIO(text, newline="")`` gives them, but without its copy of the text (four bytes
    a character: 430 MB for a 100 MB file)."""
    return (m.group() for m in _LINE.finditer(text, start))


def _csv_rows(text: str, rel: str, out: Collector, delimiter: str, quote_char: str) -> tuple[_Records, list]:
    def reader_of(start: int):
        return csv.reader(_physical_lines(text, start), delimiter=delimiter, quotechar=quote_char,
                          doublequote=True, strict=True, quoting=csv.QUOTE_MINIMAL)

    reader = reader_of(0)
    records = _Records()
    base = 0  # physical lines before the text the reader reads
    previous = 0  # physical lines read so far
    starts = None  # where each physical line starts, once needed
    errors: list[int] = []  # lines of records that could not be read
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.add("csv-syntax", rel, previous + 1, None, note=str(exc))  # the csv module's own words
            errors.append(previous + 1)
            consumed = base + reader.line_num
            if consumed - previous > 1:  # the bad record ran on (a quote left open): go on at its next line
                if starts is None:
                    starts = [0] + [m.end() for m in _BREAKS.finditer(text)]
                base = previous + 1
                if base >= len(starts) or starts[base] >= len(text):
                    break
                reader = reader_of(starts[base])
                previous = base
            else:
                previous = consumed
            continue
        records.add(previous + 1, row or [""])
        previous = base + reader.line_num
    return records, errors


_UNUSED = "\x1f"


def _lines(texts: list[bytes], total: int) -> pl.Series:
    """The texts' lines (split on LF, in order): Polars' multi-threaded CSV reader with a
    separator that does not occur, else (or if the count is not ``total``) a plain split."""
    joined = b"\n".join(texts)
    if _UNUSED.encode() not in joined:
        try:
            lines = pl.read_csv(joined, has_header=False, quote_char=None, separator=_UNUSED,
                                schema={"l": pl.String}, eol_char="\n", empty_string_is_null=False,
                                raise_if_empty=False)["l"]
            if len(lines) == total:
                return lines
        except pl.exceptions.PolarsError:
            pass
    return pl.Series("l", [joined.decode("utf-8")], dtype=pl.String).str.split("\n").explode()


def fid_line(texts: list[tuple[int, int, int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.array([t[2] for t in texts], dtype=np.int64)
    total = int(counts.sum())
    first_index = np.repeat(np.cumsum(counts) - counts, counts)
    line = np.repeat(np.array([t[1] for t in texts], dtype=np.int64), counts) + (np.arange(total) - first_index)
    return np.repeat(np.array([t[0] for t in texts], dtype=np.int32), counts), line


def details_frame(texts: list[tuple[int, int, int, bytes]], width: int, delimiter: str,
                  detail: str) -> pl.DataFrame | None:
    """The common case at full speed: bodies (of files without quote characters) whose every
    line is a detail record of exactly ``width`` fields, read straight into columns ``fid``,
    ``line``, ``c0``... by Polars' CSV reader; None when that is not the case (the caller then
    takes the general way, which says what is wrong).

    Exactness: the reader fails on a line with too many fields, and the delimiters number
    exactly (width - 1) per line, so no line has too few either."""
    total = sum(t[2] for t in texts)
    if not texts or total == 0:
        return None
    joined = b"\n".join(t[3] for t in texts)  # one text: itself, not a copy
    if _count(joined, delimiter) != (width - 1) * total:
        return None
    names = [f"c{i}" for i in range(width)]
    try:
        frame = pl.read_csv(joined, has_header=False, quote_char=None, separator=delimiter,
                            schema={n: pl.String for n in names}, eol_char="\n", empty_string_is_null=False,
                            raise_if_empty=False)
    except pl.exceptions.PolarsError:
        return None
    del joined
    if frame.height != total or not frame.select((pl.col("c0") == detail).all()).item():
        return None
    fid, line = fid_line(texts)
    frame = frame.with_columns(pl.col(names[-1]).str.strip_suffix("\r"))
    return frame.select(_chunked(pl.Series("fid", fid), frame), _chunked(pl.Series("line", line), frame), *names)


def _count(data: bytes, char: str) -> int:
    """How many times ``char`` occurs in the UTF-8 text ``data`` (an ASCII character is one byte,
    never part of another character: counted by NumPy)."""
    if len(char) != 1 or not char.isascii():
        return data.decode().count(char)
    a = np.frombuffer(data, dtype=np.uint8)
    code = ord(char)
    return sum(int(np.count_nonzero(a[start:start + _STEP] == code)) for start in range(0, len(a), _STEP))


def _chunked(series: pl.Series, frame: pl.DataFrame) -> pl.Series:
    """``series`` cut (without a copy) into the chunks of ``frame``'s columns, so that the frame
    stays aligned: a DataFrame whose columns are chunked differently is copied whole (rechunked)
    by the next select, and the checks across files select from every record kept."""
    lengths = frame.get_column(frame.columns[0]).chunk_lengths()
    if len(lengths) <= 1 or any(frame.get_column(c).chunk_lengths() != lengths for c in frame.columns[1:]):
        return series
    parts, start = [], 0
    for n in lengths:
        parts.append(series.slice(start, n))
        start += n
    return pl.concat(parts, rechunk=False)


def body_frame(texts: list[tuple[int, int, int, bytes]], rows: list[tuple[int, int, list[str]]],
               delimiter: str, frames: list[pl.DataFrame] = ()) -> pl.DataFrame:
    """The body records of many files as one frame ``fid``, ``line``, ``fields``: ``texts`` are
    (fid, first line, number of lines, text) split here by Polars, ``rows`` (fid, line, fields)
    and ``frames`` (``Parsed.body_of``) from the csv module."""
    parts = []
    if texts:
        fid, line = fid_line(texts)
        fields = _lines([t[3] for t in texts], len(line)).str.strip_suffix("\r").str.split(delimiter)
        parts.append(pl.DataFrame({"fid": fid, "line": line, "fields": fields}))
    parts += frames
    if rows:
        parts.append(pl.DataFrame({"fid": [r[0] for r in rows], "line": [r[1] for r in rows],
                                   "fields": [r[2] for r in rows]}, schema=BODY_SCHEMA))
    if not parts:
        return pl.DataFrame(schema=BODY_SCHEMA)
    return pl.concat(parts) if len(parts) > 1 else parts[0]
