"""Record checks: the order and types of a file's records, their field counts, the header (against
the file's name, the schedule and the window) and the trailer (its Rows Count).

A report may have its own header layout (``Report.header_fields``: the SMETS1 MRR's headers differ
per report, 002 App. A) and a ruleset may have no trailer (the MRR defines none): the layouts are
read from the ruleset, and a check about a record or a field the layout does not have is not made.

The first record of a file is checked as soon as it is read, the last once the file is read; the
records between them (the body) are checked in batches of many files at once (``check_bodies``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl

from emrr.conformance.fields import clip
from emrr.conformance.findings import Collector
from emrr.conformance.formats import parse_one, show, whole_number
from emrr.conformance.names import Name
from emrr.conformance.reading import Parsed
from emrr.contract import REGIMES
from emrr.rules.ruleset import Field, Report, Ruleset
from emrr.rules.schedule import run_times, window

CATCH_UP_LOOKBACK = 93 * 86400  # how far before its creation a made-up run's window may end


@lru_cache(maxsize=65536)
def is_run_time(cron: str, t: int) -> bool:
    return len(run_times(cron, t, t + 1)) > 0


@lru_cache(maxsize=65536)
def window_of(w, run: int) -> tuple[int, int]:
    return window(w, run)


@dataclass
class FileInfo:
    """What the checker learned of one file, for the checks across files."""

    fid: int
    rel: str
    name: Name = field(default_factory=Name)
    report: Report | None = None
    recipient: str | None = None
    sequence: int | None = None
    created: int | None = None
    window_start: int | None = None
    window_end: int | None = None
    header_line: int | None = None
    details: int = 0
    rows_count: tuple[int, str, str] | None = None  # the trailer's (line, field, value)
    readable: bool = False  # its records could be read (not binary, not empty, not unreadable)
    unreadable: int = 0  # records that could not be read (csv-syntax): the detail count is unsure
    has_header: bool = False
    has_trailer: bool = False


def record_type(layout: tuple[Field, ...], default: str) -> str:
    """The constant of a layout's first field (the Record type): '00', '10', '99'."""
    if layout and layout[0].source_kind == "constant":
        return layout[0].source
    return default


def _values(layout: tuple[Field, ...], row: list[str]) -> dict[str, tuple[Field, str]]:
    """source value name (report_id, created, ...) -> (field, the record's value)."""
    return {f.source: (f, row[i]) for i, f in enumerate(layout) if f.source_kind == "value"}


def windowed(report: Report, rs: Ruleset) -> list[int]:
    """The indices of ``report``'s date and date-time fields that say when something happened, which
    a file's window bounds (``detail-time-window``): every one but those read from a reference table
    joined to the events (emrr.contract.REGIMES joins: the SMETS1 MA's Migrate On Date and Migration
    Week, dates an authorisation asks for, which may lie after the run)."""
    regime = REGIMES[rs.regime]
    reference = {c for table, _ in regime.joins for c, kind in regime.tables[table].items() if kind == "time"}
    return [i for i, f in enumerate(report.detail) if f.type in ("datetime", "date")
            and not (f.source_kind == "column" and f.source in reference)]


def header_of(rs: Ruleset, report: Report | None) -> tuple[Field, ...]:
    """The header layout of ``report``'s files (its own, else the ruleset's)."""
    return report.header_fields(rs) if report is not None else rs.header


def header_for_row(rs: Ruleset, report: Report | None, row: list[str]) -> tuple[tuple[Field, ...], Report | None]:
    """The header layout of a file whose report is ``report`` (from its name) or, when the name
    does not say, the report the header's own Report Identifier names (looked up at the place each
    layout of the ruleset gives it); the ruleset's header when neither says."""
    if report is not None:
        return header_of(rs, report), report
    for candidate in rs.reports.values():
        layout = header_of(rs, candidate)
        at = next((i for i, f in enumerate(layout) if f.source_kind == "value" and f.source == "report_id"), None)
        if at is not None and at < len(row) and row[at] in rs.reports:
            found = rs.reports[row[at]]
            return header_of(rs, found), found
    return rs.header, None


class Kinds:
    """The record types of a ruleset: header, detail (per report) and trailer (None when the
    ruleset has none)."""

    def __init__(self, rs: Ruleset):
        self.header = record_type(rs.header, "00")
        self.trailer = record_type(rs.trailer, "99") if rs.trailer else None
        first = next(iter(rs.reports.values()))
        self.detail = {rid: record_type(r.detail, "10") for rid, r in rs.reports.items()}
        self.default_detail = record_type(first.detail, "10")
        self.field = rs.header[0].name if rs.header else None

    def detail_of(self, report: Report | None) -> str:
        return self.detail[report.id] if report is not None else self.default_detail

    def known(self, report: Report | None) -> list[str]:
        """The record types a file of ``report`` may hold."""
        return [self.header, self.detail_of(report)] + ([self.trailer] if self.trailer is not None else [])

    def allowed(self, report: Report | None) -> str:
        if self.trailer is None:
            return f"{self.header} header or {self.detail_of(report)} detail"
        return f"{self.header} header, {self.detail_of(report)} detail or {self.trailer} trailer"


class FileRecords:
    """The record checks of one file that need only its first and last records: the header
    (layout, values, name, schedule, window) and the trailer (kept for its Rows Count)."""

    def __init__(self, rs: Ruleset, out: Collector, info: FileInfo, kinds: Kinds, headers: list, trailers: list):
        self.rs = rs
        self.out = out
        self.info = info
        self.rel = info.rel
        self.kinds = kinds
        self.headers = headers  # (fid, line, fields) of the right width, checked together later
        self.trailers = trailers

    def start(self, line: int, first: list[str], unread_before: bool) -> bool:
        """The first record, as soon as it is read (``unread_before``: a record before it could not
        be read): whether it is the header, then checked, so that the file's report and window are
        known before any of its body is checked (a file is read in pieces)."""
        rs, kinds = self.rs, self.kinds
        has_header = bool(rs.header) and first[0] == kinds.header
        # a record that could not be read (csv-syntax) may be the header: not said twice
        if rs.header and not has_header and not unread_before:
            self.out.add("record-order", self.rel, line, None, header=kinds.header)
        self.info.has_header = has_header
        if has_header:
            self._header(line, first)
        return has_header

    def end(self, p: Parsed) -> tuple[bool, bool]:
        """The last record and the blank lines after it, once the file is read (after ``start``):
        whether the first and the last record belong with the body (neither header nor trailer)."""
        rs, kinds = self.rs, self.kinds
        for line in p.trailing_blank:
            self.out.add("record-type", self.rel, line, None, "blank-after", allowed=kinds.allowed(self.info.report))
        self.info.unreadable = len(p.syntax_lines)
        if p.count == 0:
            if rs.header and not p.syntax_lines:
                self.out.add("record-order", self.rel, None, None, "no-header")
            return False, False
        last_line, last = p.last
        has_header = self.info.has_header
        has_trailer = bool(rs.trailer) and last[0] == kinds.trailer and (p.count > 1 or not has_header)
        # a record that could not be read (csv-syntax) may be the trailer: not said twice
        unread_last = any(k > last_line for k in p.syntax_lines)
        if rs.trailer and not has_trailer and not unread_last:
            self.out.add("record-order", self.rel, last_line, None, "last", trailer=kinds.trailer)
        self.info.has_trailer = has_trailer
        if has_trailer:
            self._trailer(last_line, last)
        return not has_header and not (p.count == 1 and has_trailer), not has_trailer and p.count > 1

    def _layout_checks(self, layout: tuple[Field, ...], line: int, row: list[str], kind: str, into: list) -> bool:
        if len(row) != len(layout):
            self.out.add("field-count", self.rel, line, None, kind=kind, found=len(row), expected=len(layout))
            return False
        into.append((self.info.fid, line, row))
        return True

    def _header(self, line: int, row: list[str]) -> None:
        rs, info, out = self.rs, self.info, self.out
        info.header_line = line
        layout, _ = header_for_row(rs, info.report, row)
        if len(row) != len(layout):
            out.add("field-count", self.rel, line, None, kind="header", found=len(row), expected=len(layout))
            return
        self.headers.append((info.fid, line, row, layout))
        values = _values(layout, row)
        dt_fmt, d_fmt = rs.datetime_format, rs.date_format
        if "report_id" in values:
            f, rid = values["report_id"]
            if rid not in rs.reports and rid != "":
                out.add("field-enum", self.rel, line, f.name, value=repr(rid), allowed=", ".join(rs.reports))
            elif info.report is None and rid in rs.reports:
                info.report = rs.reports[rid]
            self._against_name(line, f.name, rid, info.name.report_id, info.name.report_id)
        report = info.report
        if "title" in values and report is not None:
            f, title = values["title"]
            if title not in report.titles_accepted and title != "":
                out.add("report-title", self.rel, line, f.name, value=clip(title, 100),
                        expected=report.title, report=report.id)
        # the file's identity (recipient, sequence, creation) is its name's when the name says it;
        # a header that disagrees is a header-file-name finding
        if "recipient" in values:
            f, recipient = values["recipient"]
            info.recipient = info.name.recipient or recipient or None
            self._against_name(line, f.name, recipient, info.name.recipient, info.name.recipient)
        if "sequence" in values:
            f, seq = values["sequence"]
            number = whole_number(seq)
            name_seq = info.name.sequence
            info.sequence = name_seq if name_seq is not None else number
            if info.name.sequence_text is not None:
                same = (number == name_seq) if (number is not None and name_seq is not None) \
                    else seq == info.name.sequence_text
                if not same:
                    out.add("header-file-name", self.rel, line, f.name, element=f.name, found=seq,
                            expected=info.name.sequence_text)
        created_field = None
        if "created" in values:
            created_field, text = values["created"]
            created = parse_one(text, created_field.type, dt_fmt, d_fmt)
            info.created = info.name.created if info.name.created is not None else created
            if text and info.name.created is not None and created != info.name.created:
                out.add("header-file-name", self.rel, line, created_field.name, element=created_field.name,
                        found=text, expected=info.name.created_text)
        if "window_start" in values:
            info.window_start = parse_one(values["window_start"][1], values["window_start"][0].type, dt_fmt, d_fmt)
        if "window_end" in values:
            info.window_end = _end_of(parse_one(values["window_end"][1], values["window_end"][0].type, dt_fmt, d_fmt),
                                      values["window_end"][0])
        if report is None or info.created is None:
            return
        if self._schedule(line, created_field.name if created_field else None):
            self._window(line, values)  # off the schedule, no window can be expected of the file

    def _against_name(self, line: int, field_name: str, found: str, expected: str | None, shown: str | None) -> None:
        if expected is not None and found != expected:
            self.out.add("header-file-name", self.rel, line, field_name, element=field_name, found=found,
                         expected=shown)

    def _schedule(self, line: int, field_name: str | None) -> bool:
        """Whether the file was created at a run time of its report's schedule (a finding if not)."""
        report, created = self.info.report, self.info.created
        if is_run_time(report.cron, created):
            return True
        if self.out.wants("run-time-schedule"):
            self.out.add("run-time-schedule", self.rel, line, field_name, found=show(created, self.rs.datetime_format),
                         report=report.id, cron=report.cron)
        return False

    def _window(self, line: int, values: dict) -> None:
        """The header's window fields (those it has: the MRR's headers carry a start date, an end
        date-time or none, 002 App. A) against the window of the run that created the file, or of
        an earlier run made up after an outage. A field typed Date says the day only. The file's
        window is then the run's, so that its records are checked against it even when the header
        does not say it."""
        rs, info = self.rs, self.info
        report, created = info.report, info.created
        keys = [k for k, key in enumerate(("window_start", "window_end")) if key in values]
        got = (info.window_start, info.window_end)
        expected = window_of(report.window, created)

        def fits(window: tuple[int, int]) -> bool:
            return all(got[k] is not None and _same(got[k], window[k], values[key][0])
                       for k, key in ((k, ("window_start", "window_end")[k]) for k in keys))

        if fits(expected):
            info.window_start, info.window_end = expected
            return
        if (report.assignment != "previously_unreported" and rs.summary_outages == "catch_up"
                and keys and all(got[k] is not None and got[k] < created for k in keys)):
            # the runs after the window's end (when the header says it), else after its start
            start = got[1] + 1 if 1 in keys else got[0]
            end = min(created, start + CATCH_UP_LOOKBACK)
            earlier = run_times(report.cron, start, end)[:64 if 1 not in keys else 4]
            for r in earlier:
                window = window_of(report.window, int(r))
                if window[1] < created and fits(window):
                    info.window_start, info.window_end = window
                    return  # made up after an outage, with an earlier run's window
        if not self.out.wants("window"):
            return
        fmt = rs.datetime_format
        for k, key in enumerate(("window_start", "window_end")):
            if key in values and (got[k] is None or not _same(got[k], expected[k], values[key][0])) \
                    and values[key][1]:
                f, text = values[key]
                self.out.add("window", self.rel, line, f.name,
                             None if report.assignment == "previously_unreported" else "catch-up",
                             found=text, expected=show(expected[k], fmt), report=report.id, created=show(created, fmt),
                             start=show(expected[0], fmt), end=show(expected[1], fmt))

    def _trailer(self, line: int, row: list[str]) -> None:
        if not self.rs.trailer:
            return
        if not self._layout_checks(self.rs.trailer, line, row, "trailer", self.trailers):
            return
        values = _values(self.rs.trailer, row)
        if "rows_count" in values:
            self.info.rows_count = (line, values["rows_count"][0].name, values["rows_count"][1])


def _end_of(seconds: int | None, f: Field) -> int | None:
    """A window's end read from a header field: a Date is its whole day (to 23:59:59)."""
    return seconds + 86399 if seconds is not None and f.type == "date" else seconds


def _same(got: int, expected: int, f: Field) -> bool:
    """Whether a header's window field says ``expected``: to the second, or the day for a Date."""
    return got // 86400 == expected // 86400 if f.type == "date" else got == expected


def check_bodies(frame: pl.DataFrame, report: Report | None, files: list[FileInfo], rs: Ruleset,
                 out: Collector, kinds: Kinds) -> pl.DataFrame | None:
    """The records between header and trailer of many files of one report (``fid``, ``line``,
    ``fields``), at once: record types, misplaced headers and trailers, field counts; counts
    each file's detail records. Returns the details of the right width as ``fid``, ``line``,
    ``c0``... (None when the report is unknown)."""
    detail = kinds.detail_of(report)
    frame = frame.with_columns(pl.col("fields").list.first().alias("rt"), pl.col("fields").list.len().alias("nf"))
    is_detail = frame.select((pl.col("rt") == detail).alias("d"), "fid")
    if is_detail["fid"].n_unique() == 1:
        files[int(is_detail["fid"][0])].details += int(is_detail["d"].sum())
    else:
        for fid, n in is_detail.group_by("fid").agg(pl.col("d").sum()).iter_rows():
            files[fid].details += n

    rt, nf = pl.col("rt"), pl.col("nf")
    blank = (nf == 1) & (rt == "")
    allowed = kinds.allowed(report)
    width = len(report.detail) if report is not None else None
    checks = []  # (check, mask, field, slot values(rt, nf))
    if rs.header:
        checks.append(("record-order", rt == kinds.header, None, lambda r, n: {"form": "header-inside"}))
    if rs.trailer:
        checks.append(("record-order", rt == kinds.trailer, None, lambda r, n: {"form": "trailer-inside"}))
    checks.append(("record-type", ~rt.is_in(kinds.known(report)) & ~blank, kinds.field,
                   lambda r, n: {"value": clip(r), "allowed": allowed}))
    checks.append(("record-type", blank, None, lambda r, n: {"form": "blank", "allowed": allowed}))
    if width is not None:
        checks.append(("field-count", (rt == detail) & (nf != width), None,
                       lambda r, n: {"kind": "detail", "found": n, "expected": width}))
    checks = [c for c in checks if out.wants(c[0])]
    right = (rt == detail) & (nf == width) if width is not None else pl.lit(False)
    flags = frame.select(right.all().alias("all"), *[c[1].any().alias(str(k)) for k, c in enumerate(checks)]).row(0)
    every_right, hits = flags[0], flags[1:]
    for hit, (check, mask, field_name, values) in zip(hits, checks):
        if not hit:
            continue
        bad = frame.filter(mask)
        room = out.room(check)
        shown = (bad if room is None else bad.head(room)).select("fid", "line", "rt", "nf").iter_rows()
        out.add_many(check, field_name, [(files[fid].rel, line, values(r, n)) for fid, line, r, n in shown],
                     bad.height)
    if width is None:
        return None
    return ((frame if every_right else frame.filter(right))
            .select("fid", "line", *[pl.col("fields").list.get(i).alias(f"c{i}") for i in range(width)]))


def end_of_file(info: FileInfo, rs: Ruleset, out: Collector) -> None:
    """Once a file's detail records are counted: the trailer's Rows Count, and no empty report
    (neither when a record could not be read: the count is then unknown, and csv-syntax says why)."""
    if info.unreadable:
        return
    if info.rows_count is not None:
        line, name, text = info.rows_count
        if whole_number(text) is not None and whole_number(text) != info.details:
            out.add("trailer-rows-count", info.rel, line, name, found=text, expected=info.details)
    if info.details == 0 and not rs.produce_empty and (info.has_header or info.has_trailer):
        out.add("empty-report", info.rel, None, None)
