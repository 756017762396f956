"""The clean-batch fast path: detail records checked on their bytes, with NumPy, no strings made.

A batch of detail records (the bodies of files without quote characters, as UTF-8 bytes) is cut
into fields by the positions of its delimiters and line feeds, and every field check of the
layout (docs/checks.md: field-count, field-mandatory, field-length, field-type, field-enum,
field-constant, field-condition) and the window checks (detail-time-window, late-record) are
asked of the fields' byte ranges as whole arrays. When the batch passes every one of them, what
the checks across files keep of it (``crossfile.kept_plan``: fid, line, a Device ID as its
64-bit number, date-times as seconds since the epoch, whole numbers) is built straight from the
bytes, equal to what the general way (``reading.details_frame`` and Polars) would have kept.

The fast path only ever says "clean": at the first sign that a check *might* fail (a field of
more bytes than characters allowed, a date-time it cannot read, a value outside the plainest
form), it gives up and returns None, and the batch goes the general way, which says exactly what
is wrong and where. So it is conservative by construction: it never decides a finding, it never
hides one. Every check runs whether it is enabled or not (an ignored check only makes the fast
path give up more often). tests/test_conformance_fastpath.py compares both ways on generated
batches, clean and broken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from emrr.conformance.crossfile import Roles, kept_plan
from emrr.conformance.fields import FIELD_RULES, supports
from emrr.conformance.formats import YEARS
from emrr.conformance.records import windowed
from emrr.rules.ruleset import Field, Report, Ruleset

# The field rules (fields.FIELD_RULES) ``kept_frame`` implements: a layout with a field carrying any
# other rule is not read here (``Layout.of`` gives way), so a rule added to Field is never skipped.
IMPLEMENTS = frozenset({"mandatory", "length", "type", "minimum", "enum", "constant", "mandatory_when",
                        "empty_unless"})
assert IMPLEMENTS <= set(FIELD_RULES)
# The fast path pays only on small batches, so it is tried only on a batch of at most MAX_ROWS
# records. Re-measured for issue 8 (polars 2.1, 2 shared cores; check() of one synthetic valid
# ECOSMIG-001 file, best of 7, fast path on / off): 27,000 records 10 / 21 ms (2.1x: it carries the
# one-file benchmark beside frictionless); 100,000: 42 / 44 ms (1.04x); 200,000: 95 / 93 ms (0.97x);
# 999,999: 0.76 / 0.51 s (0.68x: Polars' multi-threaded reader wins). The national check's batches
# are of BATCH_ROWS (500,000) records or BATCH_BYTES (32 MiB, about 300,000 ECoS records), so it
# reads them the general way.
MAX_ROWS = 100_000

# strftime directives read here: (width, lowest, highest); a Date or DateTime format made only of
# these and literal ASCII characters is read on its bytes, any other goes the general way
_DIRECTIVES = {"Y": (4, 0, 9999), "m": (2, 1, 12), "d": (2, 1, 31), "H": (2, 0, 23), "M": (2, 0, 59),
               "S": (2, 0, 59)}
_HEX = np.full(256, 255, dtype=np.uint8)  # an upper-case hexadecimal digit (as the engine writes them)
for _k, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _k


@dataclass(frozen=True)
class TimeFormat:
    """A strftime format as fixed byte positions: (offset, directive) and (offset, literal byte)."""

    width: int
    fields: tuple[tuple[int, str], ...]
    literals: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, fmt: str) -> TimeFormat | None:
        fields, literals, at, i = [], [], 0, 0
        while i < len(fmt):
            if fmt[i] == "%":
                if i + 1 >= len(fmt) or fmt[i + 1] not in _DIRECTIVES:
                    return None
                fields.append((at, fmt[i + 1]))
                at += _DIRECTIVES[fmt[i + 1]][0]
                i += 2
            else:
                if not fmt[i].isascii() or fmt[i] in "0123456789":
                    return None
                literals.append((at, ord(fmt[i])))
                at += 1
                i += 1
        if sorted(d for _, d in fields) not in (sorted("YmdHMS"), sorted("Ymd")):  # each once
            return None
        return cls(at, tuple(fields), tuple(literals))


@dataclass(frozen=True, eq=False)
class Layout:
    """What the fast path needs of one report's detail layout (``Layout.of``: None when the
    layout has anything it does not read: a field rule outside ``IMPLEMENTS``, a type other than
    text, integer, date and date-time, a text compared across files other than a Device ID)."""

    report: Report
    fields: tuple[Field, ...]
    detail: bytes  # the Record type every detail record starts with
    delimiter: int
    times: dict[int, TimeFormat]  # field index -> format of a DateTime or Date field
    device: int | None  # the Device ID field, kept as its number
    kept: tuple[tuple[str, int], ...]  # crossfile.kept_plan
    window_before: tuple[tuple[int, int], ...]  # (time field, span) checked against its start
    max_lengths: np.ndarray  # each field's max_length
    mandatory: np.ndarray  # the indices of the mandatory fields
    windowed: frozenset[int] = frozenset()  # the time fields a file's window bounds (records.windowed)

    @classmethod
    def of(cls, report: Report, rs: Ruleset, detail: str, late_record: bool) -> Layout | None:
        if len(rs.delimiter) != 1 or not rs.delimiter.isascii() or rs.delimiter in "\r\n":
            return None
        if not supports(report.detail, IMPLEMENTS):
            return None
        device = Roles.of(report).device
        kept = tuple(kept_plan(report, rs))
        if any(kind == "k" and i != device for kind, i in kept):
            return None  # another text key: its strings are kept, the general way makes them
        times = {}
        for i, f in enumerate(report.detail):
            if f.type in ("datetime", "date"):
                fmt = TimeFormat.of(rs.datetime_format if f.type == "datetime" else rs.date_format)
                if fmt is None or (f.type == "date") != (len(fmt.fields) == 3):
                    return None
                times[i] = fmt
            elif f.type not in ("text", "integer"):
                return None
        checked_before = report.assignment == "window_activity" \
            or (late_record and report.assignment == "previously_unreported")
        before = tuple((i, 86399 if report.detail[i].type == "date" else 0) for i in times
                       if i in windowed(report, rs)) if checked_before else ()
        return cls(report, report.detail, detail.encode(), ord(rs.delimiter), times, device, kept, before,
                   np.array([f.max_length for f in report.detail], dtype=np.int64),
                   np.array([i for i, f in enumerate(report.detail) if f.mandatory], dtype=np.int64),
                   frozenset(windowed(report, rs)))


class _Fields:
    """The fields of every record of a batch: ``bounds`` holds the position of the mark before
    each field (-1 for the first), then the batch's end; ``lengths`` (records x fields) each
    field's length in bytes."""

    def __init__(self, a: np.ndarray, bounds: np.ndarray, lengths: np.ndarray):
        self.a, self.bounds, self.lengths = a, bounds, lengths
        self.total, self.width = lengths.shape
        self._starts: dict[int, np.ndarray] = {}

    def starts(self, i: int) -> np.ndarray:
        """Where field ``i`` of every record starts."""
        if i not in self._starts:
            self._starts[i] = self.bounds[i:self.total * self.width:self.width] + 1
        return self._starts[i]

    def take(self, i: int, offsets: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The bytes at ``offsets`` from the start of field ``i``, record by record (rows x
        offsets); an offset past the end of the batch reads its last byte."""
        starts = self.starts(i) if rows is None else self.starts(i)[rows]
        at = starts[:, None] + offsets
        if len(starts) and int(starts[-1]) + int(offsets.max(initial=0)) >= len(self.a):
            np.minimum(at, len(self.a) - 1, out=at)
        return self.a[at]

    def equals(self, i: int, value: bytes) -> np.ndarray:
        """Field ``i`` == ``value``, record by record."""
        same = self.lengths[:, i] == len(value)
        starts, last = self.starts(i), len(self.a) - 1
        for k, byte in enumerate(value):  # byte by byte: values compared are short
            same &= self.a[np.minimum(starts + k, last)] == byte
        return same


# Calendar arithmetic by hand, not NumPy's datetime64 (three to five times as costly on 27,000
# dates) nor the checker's own reading, formats.epoch_expr (Polars' strptime on strings made from
# the bytes: 4.4 ms against 1.9 ms on 27,000 date-times, measured for issue 8, a quarter of the
# fast path's time on one file). It only says "clean" within formats.YEARS, and
# tests/test_conformance_fastpath.py checks it against formats.parse_one, epoch_expr's twin.
_CUMULATIVE_DAYS = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _leap(y: np.ndarray) -> np.ndarray:
    return ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (years from 1970)."""
    yb = y - 1
    days = 365 * (y - 1970) + (yb // 4 - 1969 // 4) - (yb // 100 - 1969 // 100) + (yb // 400 - 1969 // 400)
    return days + _CUMULATIVE_DAYS[m - 1] + ((m > 2) & _leap(y)) + d - 1


def _month_days(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The number of days of each (year, month)."""
    return _MONTH_DAYS[m - 1] + ((m == 2) & _leap(y))


def _times(fields: _Fields, i: int, fmt: TimeFormat, mandatory: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(seconds since the epoch, present) of time field ``i``; None unless every non-empty value
    is a real date-time of the format in ``formats.YEARS`` (and no mandatory one is empty)."""
    length = fields.lengths[:, i]
    present = length != 0
    everywhere = bool(present.all())
    if mandatory and not everywhere:
        return None
    if not ((length == fmt.width) | ~present).all():
        return None
    rows = None if everywhere else np.flatnonzero(present)
    if fmt.literals:
        found = fields.take(i, np.array([at for at, _ in fmt.literals]), rows)
        if not (found == np.array([byte for _, byte in fmt.literals], dtype=np.uint8)).all():
            return None
    offsets = np.array([at + k for at, directive in fmt.fields for k in range(_DIRECTIVES[directive][0])])
    digits = fields.take(i, offsets, rows) - np.uint8(48)  # a digit is 0 to 9, any other byte wraps above
    if (digits > 9).any():
        return None
    pairs = digits[:, 0::2].astype(np.int32) * 10 + digits[:, 1::2]  # every directive is 2 or 4 digits
    parts, col = {}, 0
    for _, directive in fmt.fields:
        width, low, high = _DIRECTIVES[directive]
        value = pairs[:, col].astype(np.int64)
        if width == 4:
            value = value * 100 + pairs[:, col + 1]
        col += width // 2
        if not ((value >= low) & (value <= high)).all():
            return None
        parts[directive] = value
    y, mo, d = parts["Y"], parts["m"], parts["d"]
    if not ((y >= YEARS[0]) & (y <= YEARS[1])).all() or not (d <= _month_days(y, mo)).all():
        return None
    seconds = _days_from_civil(y, mo, d) * 86400
    if "H" in parts:
        seconds += parts["H"] * 3600 + parts["M"] * 60 + parts["S"]
    if everywhere:
        return seconds, present
    out = np.zeros(len(length), dtype=np.int64)
    out[present] = seconds
    return out, present


def _whole_numbers(fields: _Fields, i: int, f: Field) -> tuple[np.ndarray, np.ndarray] | None:
    """(value, present) of integer field ``i``; None unless every non-empty value is 1 to 18 ASCII
    digits (and no mandatory one is empty)."""
    length = fields.lengths[:, i]
    present = length != 0
    if f.mandatory and not present.all():
        return None
    width = int(length.max()) if len(length) else 0
    if width > 18:
        return None
    value = np.zeros(len(length), dtype=np.int64)
    if width == 0:
        return value, present
    digits = fields.take(i, np.arange(width)).astype(np.int64) - 48
    inside = np.arange(width) < length[:, None]
    if not (((digits >= 0) & (digits <= 9)) | ~inside).all():
        return None
    for k in range(width):
        value = np.where(inside[:, k], value * 10 + digits[:, k], value)
    return value, present


def _device_numbers(fields: _Fields, i: int) -> np.ndarray | None:
    """Device IDs as the engine writes them (8 upper-case hex pairs joined by '-') as 64-bit
    numbers; None when any is another text (the general way keeps that text)."""
    if not (fields.lengths[:, i] == 23).all():
        return None
    starts, a = fields.starts(i), fields.a
    for at in range(2, 23, 3):
        if not (a[starts + at] == ord("-")).all():
            return None
    octets = np.empty((len(starts), 8), dtype=np.uint8)
    bad = np.zeros(len(starts), dtype=np.uint8)
    for k in range(8):  # column by column: a gather of one byte a record is the cheapest step
        high, low = _HEX.take(a[starts + 3 * k]), _HEX.take(a[starts + 3 * k + 1])  # 255: not hex
        bad |= high | low
        octets[:, k] = (high << 4) | low
    if (bad > 15).any():
        return None
    return octets.view(">u8").ravel().astype(np.uint64)


def split(body: bytes, total: int, width: int, delimiter: int) -> _Fields | None:
    """The fields of ``total`` lines of exactly ``width`` fields (LF-separated, a CR before each
    LF and at the very end dropped from the last field, as Polars' reader does); None when a line
    has another number of fields."""
    a = np.frombuffer(body, dtype=np.uint8)
    mark = a == delimiter
    mark |= a == 10
    pos = np.flatnonzero(mark)
    del mark
    if len(pos) != total * width - 1:
        return None
    # each line's marks must be (width - 1) delimiters and then its line feed
    kinds = np.empty(total * width, dtype=np.uint8)
    kinds[:-1] = a[pos]
    kinds[-1] = 10
    expected = np.full(width, delimiter, dtype=np.uint8)
    expected[-1] = 10
    if not (kinds.reshape(total, width) == expected).all():
        return None
    bounds = np.empty(total * width + 1, dtype=np.int64)  # the mark before each field, then the end
    bounds[0] = -1
    bounds[1:-1] = pos
    bounds[-1] = len(a)
    del pos
    lengths = (np.diff(bounds) - 1).reshape(total, width)
    ends = bounds[width::width]  # where each line's last field ends (a line feed, or the end)
    has_cr = (lengths[:, -1] > 0) & (a[ends - 1] == 13)
    lengths[:, -1] -= has_cr
    return _Fields(a, bounds, lengths)


def kept_frame(layout: Layout, texts: list[tuple[int, int, int, bytes]], fid: np.ndarray, line: np.ndarray,
               window_start: np.ndarray, window_end: np.ndarray) -> pl.DataFrame | None:
    """What the checks across files keep of a clean batch (``crossfile.kept_plan``, columns as
    ``crossfile.kept_columns`` makes them), or None when any check might fail (see the module
    docstring). ``window_start`` and ``window_end``: each record's file's window (int64, ``np.iinfo``
    extremes when unknown)."""
    total = len(fid)
    body = b"\n".join(t[3] for t in texts)
    fields = split(body, total, len(layout.fields), layout.delimiter)
    if fields is None:
        return None
    lengths = fields.lengths
    if (lengths > layout.max_lengths).any():
        return None  # more bytes than characters allowed: the general way counts characters
    if (lengths[:, layout.mandatory] == 0).any():
        return None
    if not fields.equals(0, layout.detail).all():
        return None
    numbers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, f in enumerate(layout.fields):
        present = lengths[:, i] != 0
        if f.source_kind == "constant" and i != 0 and not fields.equals(i, f.source.encode()).all():
            return None
        if f.enum:
            allowed = np.zeros(total, dtype=bool)
            for value in f.enum:
                allowed |= fields.equals(i, value.encode())
            if not (allowed | ~present).all():
                return None
        if f.type == "integer":
            got = _whole_numbers(fields, i, f)
            if got is None or (f.minimum is not None and (got[1] & (got[0] < f.minimum)).any()):
                return None
            numbers[i] = got
        for rule, must in ((f.mandatory_when, True), (f.empty_unless, False)):
            if rule:
                other = [k for k, g in enumerate(layout.fields) if g.name == rule[0]][0]
                condition = fields.equals(other, rule[1].encode())
                if must and (condition & ~present).any():
                    return None  # empty, but mandatory when the other field has the value
                if not must and (present & ~condition).any():
                    return None  # not empty, but must be empty unless the other has the value
    seconds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, fmt in layout.times.items():
        got = _times(fields, i, fmt, layout.fields[i].mandatory)
        if got is None:
            return None
        seconds[i] = got
        t, present = got
        if i in layout.windowed and (present & (t > window_end)).any():
            return None
    for i, span in layout.window_before:
        t, present = seconds[i]
        if (present & (t + span < window_start)).any():
            return None
    columns = [pl.Series("fid", fid, dtype=pl.Int32), pl.Series("line", line, dtype=pl.Int64)]
    for kind, i in layout.kept:
        if kind == "k":
            value = _device_numbers(fields, i)
            if value is None:
                return None
            columns.append(pl.Series(f"k{i}", value, dtype=pl.UInt64))
        elif kind == "x":
            columns.append(pl.repeat(None, total, dtype=pl.Categorical, eager=True).alias(f"x{i}"))
        elif kind == "t":
            t, present = seconds[i]
            columns.append(_with_nulls(f"t{i}", t, present))
        else:
            value, present = numbers[i]
            columns.append(_with_nulls(f"n{i}", value, present))
    return pl.DataFrame(columns)


def _with_nulls(name: str, values: np.ndarray, present: np.ndarray) -> pl.Series:
    series = pl.Series(name, values, dtype=pl.Int64)
    return series if present.all() else series.scatter(np.flatnonzero(~present), None)
