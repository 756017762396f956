"""Reading one file: its bytes (encoding, BOM, line endings) and then its records, in pieces.

A file is read in pieces of about ``CHUNK`` bytes (``pieces``), each cut after a line feed, so
that memory does not grow with the file: a first pass (``Survey``) makes the file-level checks
(empty, binary, BOM, encoding, line endings) and learns how to read the records; a second pass
reads them (``read_records``) and hands the records between the first and the last to a sink
piece by piece. A file of one piece (every file the national delivery holds: its largest is
4.6 MB) is read once and kept for both passes. Lines are physical lines (ended by CRLF, LF or CR
alone) numbered from 1. A file without any quote character is split on the delimiter by Polars
(CSV without quoting is exactly that); any other goes through Python's ``csv`` module (RFC 4180
quoting), which never stops at a bad record: each ``csv.Error`` becomes a ``csv-syntax`` finding
and reading goes on at the next line; a third pass reads it strictly (``_Strict``). A record that
runs across pieces (a line break inside a quoted field at a piece's end) is carried whole to the
next piece, so memory is bounded by the piece and the longest record, not the file (a quote left
open makes the rest of the file one record, as the csv module reads it).
"""

from __future__ import annotations

import codecs
import csv
import errno
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
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


# Bytes a file is read in (checker.check's ``chunk``; see the module docstring). Checker peak on one
# synthetic valid ECOSMIG-001 file of 200 MB (2.33M records): 861 MB read whole (commit e93a59a),
# about 300 MB in pieces of 8 MiB; the national delivery's largest file (4.6 MB) is one piece.
CHUNK = 1 << 23


def open_report(root: Path, rel: str, shown: str, out: Collector) -> int | None:
    """A descriptor of the regular file ``root/rel`` (``shown`` in findings), opened with
    ``open_within`` (no symbolic link followed: campaign H5, a link to /etc/passwd was read and
    quoted); None, with a ``file-unreadable`` finding, when it cannot be opened."""
    try:
        fd = open_within(root, rel)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            out.add("file-unreadable", shown, None, None, "link")
        else:
            out.add("file-unreadable", shown, None, None, reason=exc.strerror or str(exc))
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        out.add("file-unreadable", shown, None, None, reason="not a regular file")  # swapped for a FIFO or device
    except OSError as exc:
        out.add("file-unreadable", shown, None, None, reason=exc.strerror or str(exc))
    os.close(fd)
    return None


def pieces(fd: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """The bytes of the open file ``fd`` from its start, in pieces of about ``chunk`` bytes, each
    ending after a line feed but the last: a line longer than ``chunk`` is one piece; a file that
    one read gives whole is one piece (no copy). A piece holding a NUL byte is given at once, cut
    anywhere: the file is binary and nothing after it is read (campaign M1: a 5 GB sparse file was
    read whole)."""
    os.lseek(fd, 0, os.SEEK_SET)
    parts: list[bytes] = []  # a line longer than a read, so far
    block = os.read(fd, chunk)
    while block:
        following = os.read(fd, chunk)
        if not following:  # the end of the file
            break
        cut = block.rfind(b"\n") + 1
        if b"\x00" in block:
            cut = len(block)
        if cut == 0:
            parts.append(block)
        else:
            parts.append(block if cut == len(block) else block[:cut])
            yield parts[0] if len(parts) == 1 else b"".join(parts)
            parts = [] if cut == len(block) else [block[cut:]]
        del block
        block = following
    if block:
        parts.append(block)
    if parts:
        yield parts[0] if len(parts) == 1 else b"".join(parts)


def read_bytes(root: Path, rel: str, shown: str, out: Collector) -> bytes | None:
    """The bytes of ``root/rel`` (``shown`` in findings), opened with ``open_report`` and read
    whole, but no further than the first piece that holds a NUL byte (``pieces``). None, with a
    ``file-unreadable`` finding, when it cannot be read."""
    fd = open_report(root, rel, shown, out)
    if fd is None:
        return None
    try:
        parts = []
        for piece in pieces(fd):
            parts.append(piece)
            if b"\x00" in piece:
                break
        return b"".join(parts)
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


class Survey:
    """The file-level checks of a file fed piece by piece (``pieces``): its size, its first NUL
    byte, BOM, first invalid byte and how many lines hold one, its LF, CR and CRLF, whether it
    holds the quote character, how it ends and where its first line break other than the
    terminator is; ``finish`` says them as ``decode`` of the whole file would. Each piece's text
    (``Text``, the BOM left out) is what ``feed`` returns; the same piece given to ``text_of``
    later gives it again (the records' pass)."""

    def __init__(self, encoding: str, terminator: str, quote_char: str = '"'):
        self.encoding, self.terminator = encoding, terminator
        self.utf8 = codecs.lookup(encoding).name == "utf-8"
        self.quote = quote_char.encode() if quote_char else b""
        self.pieces = self.size = 0
        self.nul: tuple[int, int] | None = None  # (line, offset)
        self.bom = False
        self.error: tuple[int, int, int, str] | None = None  # the first invalid byte: (line, byte, offset, reason)
        self.bad_lines = 0
        self.lf = self.cr = self.crlf = 0
        self.quoted = False
        self.last = b""  # the text's last byte
        self.first_bad: int | None = None  # the line of the first line break other than the terminator

    @property
    def breaks(self) -> int:
        """Line breaks so far (a CRLF is one)."""
        return self.lf + self.cr - self.crlf

    def text_of(self, raw: bytes, first: bool, survey: bool = False) -> Text:
        """A piece's text: the BOM left out of the first, UTF-8 as it is when valid (no copy),
        else decoded with replacement characters; ``survey``: the first invalid byte noted."""
        data = raw[len(BOM):] if first and raw.startswith(BOM) else raw
        if self.utf8 and data.isascii():  # the common case: valid as it is, no copy
            return Text(data, *_breaks(data))
        try:
            text = data.decode(self.encoding)
            valid = True
        except UnicodeDecodeError as exc:
            if survey:
                if self.error is None:
                    offset = self.size - len(raw) - (len(BOM) if self.bom else 0) + (len(raw) - len(data))
                    self.error = (self.lf + data.count(b"\n", 0, exc.start) + 1, data[exc.start], offset + exc.start,
                                  exc.reason)
                self.bad_lines += sum(1 for _ in _invalid_lines(data, self.encoding))
            text = data.decode(self.encoding, errors="replace")
            valid = False
        utf = data if self.utf8 and valid else text.encode("utf-8")  # the text's UTF-8 bytes
        return Text(utf, *_breaks(utf), text=text)

    def feed(self, raw: bytes) -> Text | None:
        """Survey the next piece; its text, or None when it holds a NUL byte (a binary file: read
        no further). Pieces end after a line feed (``pieces``), so that no line break, line or
        character straddles two of them."""
        first = self.pieces == 0
        self.pieces += 1
        offset, self.size = self.size, self.size + len(raw)
        nul = raw.find(b"\x00")
        if nul >= 0:
            self.nul = (self.lf + raw.count(b"\n", 0, nul) + 1, offset + nul)
            return None
        if first and raw.startswith(BOM):
            self.bom = True
        t = self.text_of(raw, first, survey=True)
        if self.quote and not self.quoted and self.quote in t.data:
            self.quoted = True
        if self.first_bad is None:
            found = self._first_bad(t)
            if found is not None:
                self.first_bad = self.breaks + found
        self.lf, self.cr, self.crlf = self.lf + t.lf, self.cr + t.cr, self.crlf + t.crlf
        if t.data:
            self.last = t.data[-1:]
        return t

    def _bad(self, lf: int, cr: int, crlf: int) -> int:
        """Line breaks other than the terminator among these."""
        if self.terminator == "\r\n":
            return (lf - crlf) + (cr - crlf)
        return cr if self.terminator == "\n" else lf

    def _first_bad(self, t: Text) -> int | None:
        """The line (within the piece) of its first line break other than the terminator."""
        if not self._bad(t.lf, t.cr, t.crlf):
            return None
        pattern = _OTHER_BREAKS.get(self.terminator, r"\r?\n")
        return _line_of(t.text, re.search(pattern, t.text).start())

    def finish(self, rel: str, out: Collector) -> bool:
        """The file-level findings (as ``decode`` says them); whether the records are to be read
        (not when the file is empty or binary)."""
        if not self.size:
            out.add("empty-report", rel, None, None, "zero-bytes")
            return False
        if self.nul is not None:
            out.add("encoding", rel, self.nul[0], None, "binary", offset=self.nul[1], encoding=self.encoding)
            return False
        if self.bom:
            out.add("bom", rel, 1, None)
        if self.error is not None:
            line, byte, offset, reason = self.error
            out.add("encoding", rel, line, None, encoding=self.encoding, byte=byte, offset=offset, reason=reason,
                    lines=self.bad_lines)
        self._line_endings(rel, out)
        return True

    def _line_endings(self, rel: str, out: Collector) -> None:
        """Every line break the terminator, and the last line ended. In a file holding the quote
        character, a line break may be data inside a quoted field: the records' own ends are then
        checked as the records are read (``_Strict``), not here."""
        if not out.wants("line-ending"):
            return
        terminator = self.terminator
        if self.last and self.last not in (b"\n", b"\r"):
            out.add("line-ending", rel, self.breaks + 1, None, "unterminated", terminator=terminator)
        if self.quoted:
            return
        bad = self._bad(self.lf, self.cr, self.crlf)
        if bad:
            name = {"\r\n": "LF or CR alone", "\n": "CR or CRLF"}.get(terminator, "LF or CRLF")
            out.add("line-ending", rel, self.first_bad, None, count=bad, ending=name, terminator=terminator)


_OTHER_BREAKS = {"\r\n": r"\r(?!\n)|(?<!\r)\n", "\n": r"\r\n?"}  # line breaks other than the terminator


def decode(data: bytes, rel: str, out: Collector, encoding: str, terminator: str, quote_char: str = '"') -> Text | None:
    """The text of a whole file's bytes, after the file-level checks (``Survey`` of one piece);
    None when there is nothing to read further (an empty or binary file)."""
    survey = Survey(encoding, terminator, quote_char)
    t = survey.feed(data)
    return t if survey.finish(rel, out) else None


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


class _Strict:
    """RFC 4180 read strictly, record by record, in a file holding the quote character: a quote
    inside a field that is not enclosed in quotes (§2.5), or anything after a closing quote but a
    delimiter or the record's end, is a ``csv-syntax`` finding (Python's csv module lets the
    first pass); each record's end (not a line break inside a quoted field) is checked against
    the terminator (``line-ending``). ``reported``: lines the csv module already found wrong.

    The text comes piece by piece (``feed``, then ``finish``): a record is read when the text
    fed so far decides it (it ends before the end of that text, or it fails before it), else it
    waits, with what follows it, for the next piece. So the pieces cut nowhere a reading of the
    whole text would not, and only an undecided record (a quoted field still open) is held. An
    undecided record is read again only once the text held has doubled, so that a field longer
    than many pieces is read in linear time, not once a piece (quadratic)."""

    def __init__(self, rel: str, out: Collector, delimiter: str, quote_char: str, terminator: str,
                 reported: set[int]):
        self.rel, self.out, self.delimiter, self.quote_char, self.terminator = rel, out, delimiter, quote_char, \
            terminator
        self.reported = reported
        self.record, self.quoted, self.bare = _record_patterns(delimiter, quote_char)
        self.line = 1
        self.bad_endings, self.first_bad = 0, None
        self.held: list[str] = []  # the text not yet read: an undecided record and what follows it
        self.size = 0  # its length
        self.wait = 0  # read it again once it is this long
        self.done = False  # the last record read (it ended the text)

    def feed(self, text: str) -> None:
        self.held.append(text)
        self.size += len(text)
        if self.size < self.wait:
            return
        rest = self._read("".join(self.held) if len(self.held) > 1 else self.held[0], final=False)
        self.held, self.size, self.wait = ([rest] if rest else []), len(rest), 2 * len(rest)

    def finish(self) -> None:
        self._read("".join(self.held), final=True)
        self.held, self.size = [], 0
        if self.bad_endings and self.out.wants("line-ending"):
            at, ending = self.first_bad
            self.out.add("line-ending", self.rel, at, None, "records", count=self.bad_endings,
                         ending=_ENDING_NAMES[ending], terminator=self.terminator)

    def _failure(self, text: str, pos: int, final: bool) -> tuple[int, int] | None:
        """Where the record at ``pos`` goes wrong: (start, end) of the field where it does; None
        when the text so far cannot say (a quoted field still open at its end, not ``final``)."""
        at, n = pos, len(text)
        while True:  # the field where it goes wrong
            if not final and text.startswith(self.quote_char, at) and self.quoted.match(text, at) is None:
                return None
            end = _field_end(text, at, self.quote_char, self.quoted, self.bare)
            if end >= n and not final:
                return None
            if end < n and text[end] == self.delimiter:
                at = end + 1
                continue
            return at, end

    def _read(self, text: str, final: bool) -> str:
        """Read the records ``text`` decides; what is left (from the first undecided record)."""
        out, quote_char, terminator = self.out, self.quote_char, self.terminator
        pos, n = 0, len(text)
        while pos < n and not self.done:
            m = self.record.match(text, pos)
            if m is not None and m.end() > pos:
                ending = m.group(1)
                if not final and not (ending and (m.end() < n or text.endswith("\n"))):
                    # a record whose end the text held does not decide: it runs to the end of that
                    # text, or ends there with a CR that may be a CRLF's. It waits for more text; it
                    # is no failure (a quoted field before a CR is closed, whatever follows the CR)
                    return text[pos:]
                if ending and ending != terminator:
                    self.bad_endings += 1
                    if self.first_bad is None:
                        self.first_bad = (self.line + len(_BREAKS.findall(text, pos, m.start(1))), ending)
                self.line += len(_BREAKS.findall(text, pos, m.end()))
                pos = m.end()
                if not ending:
                    self.done = True
                continue
            where = self._failure(text, pos, final)
            following = _BREAKS.search(text, pos)
            if where is None or (following is None and not final):
                return text[pos:]
            if self.line not in self.reported and out.wants("csv-syntax"):
                at, end = where
                value, after = text[at:end], text[end:end + 1]
                if value.startswith(quote_char):
                    out.add("csv-syntax", self.rel, self.line, None, "after-quote", after=after,
                            delimiter=self.delimiter)
                else:
                    out.add("csv-syntax", self.rel, self.line, None,
                            "bare-quote" if after == quote_char and value else "unclosed")
            if following is None:
                self.done = True
                break
            pos = following.end()
            self.line += 1
        return ""


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


class Sink:
    """Where ``read_records`` hands a file's records as it reads them: the first record, then the
    records between the first and the last (the body) piece by piece, in order, as UTF-8 text of
    lines joined by LF still to split (``text``: the quote-free way) or as frames of ``line`` and
    ``fields`` (``frame``: the csv module's way). The last record and the blank lines after it
    are in the ``Parsed`` it returns."""

    def first(self, line: int, fields: list[str], unread_before: bool) -> None:
        """The first record (``unread_before``: a record before it could not be read)."""

    def text(self, start: int, count: int, data: bytes) -> None:
        """``count`` body lines from line ``start``."""

    def frame(self, frame: pl.DataFrame) -> None:
        """Body records (ROWS_SCHEMA)."""


class _Whole(Sink):
    """The body of a file read in one piece, kept in its ``Parsed`` (``parse``)."""

    def __init__(self):
        self.texts: list[tuple[int, int, bytes]] = []
        self.frames: list[pl.DataFrame] = []

    def text(self, start: int, count: int, data: bytes) -> None:
        self.texts.append((start, count, data))

    def frame(self, frame: pl.DataFrame) -> None:
        self.frames.append(frame)

    def into(self, p: Parsed) -> Parsed:
        if self.texts:
            p.body_start, p.body_count = self.texts[0][0], sum(t[1] for t in self.texts)
            p.body_text = b"\n".join(t[2] for t in self.texts)
        p.body_frames = self.frames
        p.body_count += sum(f.height for f in self.frames)
        return p


def parse(t: Text, rel: str, out: Collector, delimiter: str, quote_char: str, terminator: str = "\r\n") -> Parsed:
    """Split the text of a whole file into records (``read_records`` of one piece), the body kept."""
    sink = _Whole()
    quoted = bool(quote_char) and quote_char.encode() in t.data
    p = read_records(lambda: iter((t,)), quoted, t.cr != t.crlf, rel, out, delimiter, quote_char, terminator, sink)
    return sink.into(p)


def read_records(texts: Callable[[], Iterator[Text]], quoted: bool, lone_cr: bool, rel: str, out: Collector,
                 delimiter: str, quote_char: str, terminator: str, sink: Sink) -> Parsed:
    """Read a file's records from its texts, piece by piece (``texts()`` gives them from the
    start, each time it is called): the first and the body to ``sink``, the rest returned.
    ``quoted``: the file holds the quote character; ``lone_cr``: a CR not before an LF."""
    if not quoted and not lone_cr:
        lines = _Lines(delimiter, sink)
        for t in texts():
            lines.feed(t)
        return lines.finish()
    records = _Records(sink)
    limit = csv.field_size_limit(sys.maxsize)  # a huge field is a field-length finding, not a parse error
    try:
        errors = _csv_rows((m.group() for t in texts() for m in _LINE.finditer(t.text)), rel, out, delimiter,
                           quote_char, records)
    finally:
        csv.field_size_limit(limit)
    parsed = records.parsed(errors)
    if quoted:  # the strict reading, once the csv module's findings are known (a third pass)
        strict = _Strict(rel, out, delimiter, quote_char, terminator, set(errors))
        for t in texts():
            strict.feed(t.text)
        strict.finish()
    return parsed


def _fields(line: bytes, delimiter: str) -> list[str]:
    return line.removesuffix(b"\r").decode("utf-8").split(delimiter)


class _Lines:
    """CSV without any quote character, fed UTF-8 pieces that end after an LF (the last may not):
    lines split on LF (each CR before it dropped), fields on the delimiter; the body stays bytes
    until its batch is split by Polars. Blank lines at the end are not the last record: from each
    piece, its last line that is not blank and the blank lines after it wait for the next."""

    def __init__(self, delimiter: str, sink: Sink):
        self.delimiter, self.sink = delimiter, sink
        self.first: tuple[int, list[str]] | None = None
        self.n = 0  # lines so far
        self.held: bytes | None = None  # the last line that is not blank (after the first), not yet in the body
        self.held_no = 0
        self.blanks = 0  # blank lines after it (or after the first)

    def feed(self, t: Text) -> None:
        data = t.data
        ended = data.endswith(b"\n")
        end = len(data) - ended
        lines = t.lf + 1 - ended  # in this piece
        start = 0
        if self.first is None:
            head_end = data.find(b"\n", 0, end)
            start = end if head_end < 0 else head_end + 1
            self.first = (1, _fields(data[:end] if head_end < 0 else data[:head_end], self.delimiter))
            self.n = 1
            lines -= 1
            self.sink.first(1, self.first[1], False)
        if lines <= 0:
            return
        e, blank = end, 0  # the blank lines at the piece's end
        while blank < lines:
            s = max(data.rfind(b"\n", start, e) + 1, start)
            if data[s:e] not in (b"", b"\r"):
                break
            blank += 1
            e = s - 1
        if blank == lines:
            self.blanks += lines
            self.n += lines
            return
        before = lines - blank - 1  # lines of this piece before its last line that is not blank
        parts, count = [], 0
        first_line = self.held_no if self.held is not None else self.n - self.blanks + 1
        if self.held is not None:
            parts.append(self.held)
            count += 1
        if self.blanks:  # blank lines are b"" or b"\r": both the record [""]
            parts.append(b"\n" * (self.blanks - 1))
            count += self.blanks
        if before:
            parts.append(data[start:s - 1])
            count += before
        if count:
            self.sink.text(first_line, count, parts[0] if len(parts) == 1 else b"\n".join(parts))
        self.held, self.held_no, self.blanks = data[s:e], self.n + lines - blank, blank
        self.n += lines

    def finish(self) -> Parsed:
        if self.held is None:
            return Parsed(count=1, split=True, first=self.first, last=self.first,
                          trailing_blank=list(range(2, 2 + self.blanks)))
        return Parsed(count=self.held_no, split=True, first=self.first,
                      last=(self.held_no, _fields(self.held, self.delimiter)),
                      trailing_blank=list(range(self.held_no + 1, self.held_no + 1 + self.blanks)))


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
    """The records of a file as the csv module gives them: the first handed to the sink as it
    is, the others gathered into frames of ``BLOCK_ROWS`` handed to the sink as they come (so
    that memory does not grow with Python lists of a whole file), except, still pending, the
    last record that is not a blank line and the blank lines after it (not the last record,
    ``Parsed.trailing_blank``)."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self.first: tuple[int, list[str]] | None = None
        self.framed = 0  # records handed to the sink in frames
        self.lines: list[int] = []
        self.rows: list[list[str]] = []
        self.last = -1  # index in the pending rows of the last one that is not a blank line

    def add(self, line: int, row: list[str], unread_before: bool) -> None:
        if self.first is None:
            self.first = (line, row)
            self.sink.first(line, row, unread_before)
            return
        self.lines.append(line)
        self.rows.append(row)
        if row != [""]:
            self.last = len(self.rows) - 1
            if self.last >= BLOCK_ROWS:  # the records before it are the body
                self.sink.frame(rows_frame(self.lines[:self.last], self.rows[:self.last]))
                self.framed += self.last
                del self.lines[:self.last], self.rows[:self.last]
                self.last = 0

    def parsed(self, errors: list[int]) -> Parsed:
        if self.first is None:
            return Parsed(syntax_lines=errors)
        if self.last < 0:  # only blank lines after the first record
            return Parsed(count=1, first=self.first, last=self.first, trailing_blank=self.lines, syntax_lines=errors)
        if self.last:
            self.sink.frame(rows_frame(self.lines[:self.last], self.rows[:self.last]))
        count = 2 + self.framed + self.last
        return Parsed(count=count, first=self.first, last=(self.lines[self.last], self.rows[self.last]),
                      trailing_blank=self.lines[self.last + 1:], syntax_lines=errors)


_LINE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)|[^\r\n]++")  # a physical line with its line break (CRLF, LF or CR)


def _csv_rows(lines: Iterator[str], rel: str, out: Collector, delimiter: str, quote_char: str,
              records: _Records) -> list[int]:
    """The csv module reads the physical ``lines`` (as ``io.StringIO(text, newline="")`` gives
    them, but without a copy of the whole text: four bytes a character, 430 MB for a 100 MB file)
    into ``records``; the lines of records that could not be read. A bad record that ran on (a
    quote left open) is read again from its second line: the lines of the record being read are
    held until it is read (the only lines held)."""
    held: list[str] = []

    def pulled(source: Iterator[str]) -> Iterator[str]:
        for line in source:
            held.append(line)
            yield line

    def reader_of(source: Iterator[str]):
        return csv.reader(pulled(source), delimiter=delimiter, quotechar=quote_char,
                          doublequote=True, strict=True, quoting=csv.QUOTE_MINIMAL)

    reader = reader_of(lines)
    previous = 0  # physical lines read so far
    errors: list[int] = []  # lines of records that could not be read
    while True:
        held.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.add("csv-syntax", rel, previous + 1, None, note=str(exc))  # the csv module's own words
            errors.append(previous + 1)
            if len(held) > 1:  # the bad record ran on (a quote left open): go on at its next line
                reader = reader_of(chain(held[1:], lines))
                previous += 1
            else:
                previous += len(held)
            continue
        records.add(previous + 1, row or [""], bool(errors))
        previous += len(held)
    return errors


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
