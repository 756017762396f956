"""The conformance checker: a directory of report files and a ruleset in, findings out.

``check(directory, ruleset)`` reads every report file under ``directory`` once (file checks,
then record checks), gathers the detail records of each report into batches whose fields are
checked column by column, keeps the few columns the checks across files need, and ends with
those. It never stops at the first problem and never raises on a file's content: whatever the
bytes, they become findings. It raises ``UserError`` only when it cannot run at all (no such
directory, an unknown ruleset).
"""

from __future__ import annotations

import errno
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from emrr.conformance import crossfile, fastpath
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.fields import check_fields, field_masks, plainly_valid
from emrr.conformance.findings import Collector, Verdict, enabled_checks
from emrr.conformance.formats import duration, epoch_expr, show
from emrr.conformance.names import NamePattern
from emrr.conformance.reading import (
    CHUNK,
    Sink,
    Survey,
    body_frame,
    details_frame,
    fid_line,
    open_report,
    open_within,
    pieces,
    read_records,
    rows_frame,
)
from emrr.conformance.records import FileInfo, FileRecords, Kinds, check_bodies, end_of_file, windowed
from emrr.errors import UserError
from emrr.rules import ruleset as rules
from emrr.rules.ruleset import Report, Ruleset

BATCH_ROWS = 500_000  # detail records gathered before their fields are checked
# ... or these bytes of them, whichever comes first: a batch's strings, columns and masks are
# allocated and freed again for every batch, so that a smaller one keeps less memory in use and
# reuses what its allocator holds instead of having pages mapped again. The national SMETS1
# delivery's records are of 54 fields (430 bytes): 500,000 of them made batches of 215 MB of text,
# checked at a peak of about 1 GB each. S1BG01's 4,137 files of it (5M records) checked in batches
# of at most BATCH_ROWS: 1.95 GB peak, 5.2 s system time; of 32 MiB: 0.92 GB, 1.8 s (2 shared
# cores). An ECoS batch (110 bytes a record) is cut at about 300,000 records.
BATCH_BYTES = 32 << 20
PROBE_ROWS = 256  # headers or trailers up to which each is first tried in Python (fields.plainly_valid)


def check(directory: str | Path, ruleset: str | Path | Ruleset | None = None, *,
          select: set[str] | None = None, ignore: set[str] | None = None,
          max_examples: int | None = None, events: str | Path | None = None, expect: str = "recipients",
          chunk: int = CHUNK, workers: int = 1) -> Verdict:
    """Check every report file under ``directory`` against ``ruleset`` (a Ruleset, a name or a
    path; default the revised EMRR). ``select``/``ignore``: check ids to run or skip;
    ``max_examples``: findings kept per check (None: all; every finding is counted anyway);
    ``events``: an event log, for the ground-truth checks; ``expect``: which files of the log the
    directory must hold, "recipients" (every file of each recipient with a file in it) or
    "reports" (every file of each report and recipient with a file in it); ``chunk``: the bytes a
    file is read in (``reading.pieces``: memory does not grow with a file's size); ``workers``: the
    threads of the reference engine the ground truth runs (``engine.Engine.run``)."""
    if expect not in ("recipients", "reports"):
        raise UserError(f"expected 'recipients' or 'reports' for which files to expect, got {expect!r}")
    rs = ruleset if isinstance(ruleset, Ruleset) else rules.load(None if ruleset is None else str(ruleset))
    root = Path(directory)
    if not root.is_dir():
        raise UserError("not a directory; expected a directory of report files", file=str(root))
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except OSError as exc:
        raise UserError(f"cannot read the directory: {exc.strerror}", file=str(root))
    enabled = enabled_checks(select, ignore or (), events is not None)
    out = Collector(enabled, max_examples)
    checker = Checker(root, rs, out, chunk)
    truth = None
    # the ground-truth checks selected, whether or not the event log is given (for the notes)
    ground = {c for c in enabled_checks(select, ignore or (), True) if CATALOGUE[c].family == "ground-truth"}
    if events is not None and ground:  # the reference first: a bad event log stops here (UserError)
        from emrr.conformance.groundtruth import GroundTruth

        truth = GroundTruth(events, rs, out, expect=expect, workers=workers)
        truth.attach(checker)
    try:
        checker.run()
        if truth is not None:
            truth.run()
    finally:
        if truth is not None:
            truth.close()
    notes = []
    if truth is not None:
        notes.append(truth.note())
    elif events is not None:
        notes.append("no ground-truth check selected: the event log was not read")
    elif ground:
        notes.append("ground-truth checks (gt-*) not run: they need the event log (--events)")
    if not checker.files:
        notes.append(f"no report file found under {root}: nothing was checked")
    elif checker.unread == len(checker.files):
        notes.append(f"none of the {len(checker.files):,} report file(s) found could be read: nothing was checked")
    if checker.ignored:
        notes.append(f"{checker.ignored} file(s) not named like report files (*{checker.pattern.suffix}) or hidden "
                     "were not read")
    return out.verdict(files=len(checker.files), records=checker.records, notes=notes, unread=checker.unread)


_MASKS: dict[tuple, list] = {}  # Checker.masks

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


_ENGINE_BOOKKEEPING = {"run-manifest.json", ".emrr-state.json", ".emrr-journal.jsonl"}

# Bounds of the walk (campaign H4, 5.12, 5.14). A delivery is ROOT/RECIPIENT/FILE (depth 1);
# 32 levels leave room for any archive layout. A folder below the limit is a finding (the rest
# of the delivery is checked: the verdict stays honest, an error). More entries than
# MAX_ENTRIES (100,000 files took 25 s and 221 MiB; the national delivery holds far fewer)
# stop the check in one line, exit 2: a verdict on part of a delivery would miss the checks
# across its files.
MAX_DEPTH = 32
MAX_ENTRIES = 2_000_000


@dataclass(frozen=True)
class Entry:
    """What the walk needs of a folder's entry, read while the folder is open."""

    name: str
    link: bool
    folder: bool  # a folder itself, not a link to one
    regular: bool  # a regular file itself
    to_folder: bool  # a link that leads to a folder (only looked at: never followed)


def _entries(root: Path, folder: str) -> list[Entry]:
    """The entries of ``root/folder`` by name, the folder opened by ``reading.open_within`` (a
    link put in its place while the checker runs is OSError ELOOP, never followed)."""
    fd = open_within(root, folder, folder=True)
    try:
        with os.scandir(fd) as it:
            return sorted((Entry(e.name, _test(e.is_symlink), _test(e.is_dir, False), _test(e.is_file, False),
                                 _test(e.is_symlink) and _test(e.is_dir, True)) for e in it), key=lambda e: e.name)
    finally:
        os.close(fd)


def _test(method, follow: bool | None = None) -> bool:
    """An entry's is_symlink, is_dir or is_file; False when the system cannot say."""
    try:
        return method() if follow is None else method(follow_symlinks=follow)
    except OSError:
        return False


def _printable(rel: str) -> str:
    """A path as shown in findings: bytes that are not UTF-8 and control characters escaped."""
    rel = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", rel)


@dataclass
class Batch:
    """The bodies of files of one report, waiting to be checked together."""

    fids: list[int] = field(default_factory=list)
    texts: list[tuple[int, int, int, str]] = field(default_factory=list)
    frames: list[pl.DataFrame] = field(default_factory=list)  # bodies read by the csv module
    size: int = 0
    bytes: int = 0  # of texts


class Checker:
    """One run of the checker over a directory (see the module docstring)."""

    def __init__(self, root: Path, rs: Ruleset, out: Collector, chunk: int = CHUNK):
        self.root = root
        self.chunk = chunk
        self.reading: FileInfo | None = None  # the file being read (its end is not yet known)
        self.rs = rs
        self.out = out
        self.pattern = NamePattern(rs)
        self.encoding = rs.encoding
        self.files: list[FileInfo] = []
        self.records = 0
        self.ignored = 0
        self.unread = 0  # files found that could not be read at all
        self.kinds = Kinds(rs)
        self.headers: list[tuple[int, int, list[str], tuple]] = []  # (fid, line, fields, layout)
        self.trailers: list[tuple[int, int, list[str]]] = []
        self.pending: dict[str | None, Batch] = defaultdict(Batch)
        self.kept: dict[str, list[pl.DataFrame]] = defaultdict(list)
        # called with (report, frame of fid, line, c0...) for each batch of detail records read
        # (conformance/groundtruth.py); None: nobody wants them
        self.capture = None
        self._fast: dict[str, fastpath.Layout | None] = {}
        self.windows = WindowChecks(self.files, rs, out)

    def discover(self) -> list[str]:
        """The report files under the root, sorted: folders walked without recursion (an explicit
        stack), never through a symbolic link, at most ``MAX_DEPTH`` levels deep and ``MAX_ENTRIES``
        entries in all (campaign H4: 1,200 nested folders crashed ``os.walk``). A link named like a
        report is returned (reading it reports it, its name is checked like any other); a link to
        a folder is a finding; neither is followed (campaign H5: a link to /etc/passwd was read)."""
        found = []
        seen = 0
        stack: list[tuple[str, int]] = [("", 0)]  # (folder relative to the root, its depth)
        while stack:
            folder, depth = stack.pop()
            try:
                entries = _entries(self.root, folder)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self.out.add("file-unreadable", _printable(folder), None, None, "link")
                else:
                    self.out.add("file-unreadable", _printable(folder or "."), None, None,
                                 reason=exc.strerror or str(exc))
                continue
            seen += len(entries)
            if seen > MAX_ENTRIES:
                raise UserError(f"more than {MAX_ENTRIES:,} files and folders; the checker reads at most that many "
                                "in one delivery (check its parts one by one)", file=str(self.root))
            folders = []
            for entry in entries:
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if not folder and entry.name in _ENGINE_BOOKKEEPING:
                    continue  # the reference engine's manifest, state and journal
                if entry.name.startswith("."):  # hidden: a folder is not walked, a file is counted
                    self.ignored += not entry.folder
                    continue
                if entry.link:
                    if self.pattern.is_candidate(entry.name):
                        found.append(rel)  # read with open_within: reported as a link, its name checked
                    elif entry.to_folder:
                        self.out.add("file-unreadable", _printable(rel), None, None, "link")
                    else:
                        self.ignored += 1
                elif entry.folder:
                    folders.append(rel)
                elif self.pattern.is_candidate(entry.name):
                    if entry.regular:
                        found.append(rel)
                    else:  # a FIFO or device would block or never end: not read
                        self.out.add("file-unreadable", _printable(rel), None, None, reason="not a regular file")
                else:
                    self.ignored += 1
            if folders and depth + 1 > MAX_DEPTH:
                for rel in folders:
                    self.out.add("file-unreadable", _printable(rel), None, None, "too-deep", limit=MAX_DEPTH)
                continue
            stack.extend((rel, depth + 1) for rel in reversed(folders))
        return sorted(found)

    def run(self) -> None:
        for rel in self.discover():
            self.check_file(rel)
        for rid in list(self.pending):
            self.flush(rid)
        self.ends()
        frames = {rid: pl.concat(parts) for rid, parts in self.kept.items() if parts}
        crossfile.CrossFile(self.rs, self.out, self.files, frames).run()

    # ------------------------------------------------------------------ one file

    def check_file(self, path_rel: str) -> None:
        # a name that is not UTF-8 (surrogate escapes on POSIX) is shown with backslash escapes
        rel = _printable(path_rel)
        info = FileInfo(len(self.files), rel)
        self.files.append(info)
        info.name = self.pattern.read(rel, self.out)
        if info.name.report_id is not None:
            info.report = self.rs.reports[info.name.report_id]
        info.recipient, info.sequence, info.created = info.name.recipient, info.name.sequence, info.name.created
        fd = open_report(self.root, path_rel, rel, self.out)
        if fd is None:
            self.unread += 1
            return
        try:
            self.read_file(fd, info)
        except OSError as exc:  # an I/O error part-way: what was read is checked
            self.out.add("file-unreadable", rel, None, None, reason=exc.strerror or str(exc))
            self.unread += not info.readable
        finally:
            os.close(fd)
            self.reading = None

    def read_file(self, fd: int, info: FileInfo) -> None:
        """Read one file in pieces (``reading.pieces``): the file-level checks first (a pass of
        their own, ``reading.Survey``), then its records, its body into the batch of its report
        piece by piece; a file of one piece is read once."""
        rs = self.rs
        survey = Survey(self.encoding, rs.line_terminator, rs.quote_char)
        kept = []
        for raw in pieces(fd, self.chunk):
            t = survey.feed(raw)
            if t is None:  # binary: read no further
                break
            kept = [t] if survey.pieces == 1 else []
        if not survey.finish(info.rel, self.out):
            return
        info.readable = True
        texts = (lambda: iter(kept)) if survey.pieces == 1 else (lambda: self.texts(fd, survey))
        sink = FileSink(self, info, FileRecords(rs, self.out, info, self.kinds, self.headers, self.trailers))
        self.reading = info
        parsed = read_records(texts, survey.quoted, survey.cr != survey.crlf, info.rel, self.out, rs.delimiter,
                              rs.quote_char, rs.line_terminator, sink)
        self.reading = None
        take_first, take_last = sink.records.end(parsed)
        if take_first:
            sink.release(parsed.split)
        if take_last:
            sink.body(*parsed.last, parsed.split)
        info.recipient = info.recipient or info.name.recipient
        if info.sequence is None:
            info.sequence = info.name.sequence
        rid = info.report.id if info.report else None
        batch = self.pending.get(rid)
        if batch is not None and batch.fids and batch.fids[-1] == info.fid:
            if batch.size >= BATCH_ROWS or batch.bytes >= BATCH_BYTES:
                self.flush(rid)
        else:  # no body, or all of it checked while the file was read
            self.records += info.details
            end_of_file(info, rs, self.out)

    def texts(self, fd: int, survey: Survey):
        """The texts of a file of many pieces, read again; before each next piece, its report's
        batch is checked, so that it never holds more than a piece of the file being read (memory
        does not grow with the file; at 8 MiB, about 97,000 records of ECOSMIG-001, the batch is
        small enough for the fast path). Every file of the national delivery is one piece (the
        largest is 4.6 MB): its batches are those of ``BATCH_ROWS`` or ``BATCH_BYTES``."""
        for k, raw in enumerate(pieces(fd, self.chunk)):
            if k and self.reading is not None:
                self.flush(self.reading.report.id if self.reading.report else None)
            yield survey.text_of(raw, k == 0)

    def add_body(self, info: FileInfo, count: int, text: tuple[int, bytes] | None = None,
                 frame: pl.DataFrame | None = None) -> None:
        """Records of a file's body (``count`` lines from ``text``'s first line, or a ``frame`` of
        ``line`` and ``fields``) into the batch of its report."""
        batch = self.pending[info.report.id if info.report else None]
        if not batch.fids or batch.fids[-1] != info.fid:
            batch.fids.append(info.fid)
        if text is not None:
            batch.texts.append((info.fid, text[0], count, text[1]))
            batch.bytes += len(text[1])
        else:
            batch.frames.append(frame.select(pl.lit(info.fid, dtype=pl.Int32).alias("fid"), "line", "fields"))
        batch.size += count

    # ------------------------------------------------------------------ a batch of detail records

    def rel_of(self, fid: int) -> str:
        return self.files[fid].rel

    def masks(self, layout: tuple, typed: frozenset[int] = frozenset()) -> list:
        """The field checks of a layout (``fields.field_masks``), built once for a layout, a
        ruleset's formats, the checks enabled and the fields typed (the expressions are
        immutable, so runs share them)."""
        key = (layout, self.rs.datetime_format, self.rs.date_format, frozenset(self.out.enabled), typed)
        found = _MASKS.get(key)
        if found is None:
            if len(_MASKS) > 256:
                _MASKS.clear()
            found = _MASKS[key] = field_masks(layout, self.rs, self.out, typed=typed)
        return found

    def flush(self, rid: str | None) -> None:
        batch = self.pending.pop(rid, None)
        if batch is None or not batch.fids:
            return
        report = self.rs.reports[rid] if rid is not None else None
        frame = None
        if report is not None and not batch.frames and self.capture is None and batch.size <= fastpath.MAX_ROWS \
                and self.fast_flush(report, batch):
            return
        if report is not None and not batch.frames:
            frame = details_frame(batch.texts, len(report.detail), self.rs.delimiter, self.kinds.detail_of(report))
            if frame is not None:
                for fid, _, count, _ in batch.texts:
                    self.files[fid].details += count
        if frame is None:
            body = body_frame(batch.texts, [], self.rs.delimiter, batch.frames)
            frame = check_bodies(body, report, self.files, self.rs, self.out, self.kinds)
            del body
        batch.texts.clear()
        batch.frames.clear()
        self.files_done(batch)
        if report is None or frame is None or frame.height == 0:
            return
        if self.capture is not None:
            self.capture(report, frame)
        times = [(i, f) for i, f in enumerate(report.detail) if f.type in ("datetime", "date")]
        # each date-time parsed once (seconds since the epoch, null when unreadable), and its
        # file's window beside it: the field checks and the window checks in one pass
        bounded = set(windowed(report, self.rs))
        windows = self.windows.checks(report, [(i, f) for i, f in times if i in bounded])
        frame = frame.with_columns(
            [epoch_expr(pl.col(f"c{i}"), f.type, self.rs.datetime_format, self.rs.date_format).alias(f"t{i}")
             for i, f in times] + (self.windows.bounds(batch.fids) if windows else []))
        hits = check_fields(frame, report.detail, self.rs, self.out, self.rel_of,
                            masks=self.masks(report.detail, frozenset(i for i, _ in times)),
                            also=[mask for *_, mask, _ in windows])
        for hit, window in zip(hits, windows):
            if hit:
                self.windows.findings(frame, report, *window)
        self.kept[rid].append(frame.select("fid", "line", *crossfile.kept_columns(report, self.rs)))

    def fast_flush(self, report: Report, batch: Batch) -> bool:
        """A batch that passes every detail check on its bytes (``conformance.fastpath``) is
        counted and kept without making strings; False when it might not pass (nothing done)."""
        if report.id not in self._fast:
            self._fast[report.id] = fastpath.Layout.of(report, self.rs, self.kinds.detail_of(report),
                                                       self.out.wants("late-record"))
        layout = self._fast[report.id]
        if layout is None or not batch.texts:
            return False
        fid, line = fid_line(batch.texts)
        counts = [t[2] for t in batch.texts]
        infos = [self.files[t[0]] for t in batch.texts]
        low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        starts = np.repeat(np.array([low if f.window_start is None else f.window_start for f in infos],
                                    dtype=np.int64), counts)
        ends = np.repeat(np.array([high if f.window_end is None else f.window_end for f in infos],
                                  dtype=np.int64), counts)
        kept = fastpath.kept_frame(layout, batch.texts, fid, line, starts, ends)
        if kept is None:
            return False
        for info, count in zip(infos, counts):
            info.details += count
        batch.texts.clear()
        self.files_done(batch)
        self.kept[report.id].append(kept)
        return True

    def files_done(self, batch: Batch) -> None:
        """The batch's files, their detail records counted: the checks at each one's end."""
        for fid in batch.fids:
            info = self.files[fid]
            if info is self.reading:
                continue  # the file being read: its end comes with its last records
            self.records += info.details
            end_of_file(info, self.rs, self.out)

    def ends(self) -> None:
        """The headers and trailers of every file, checked together (the headers by their layout:
        a report may have its own, ``Report.header_fields``)."""
        layouts: dict[tuple, list] = defaultdict(list)
        for fid, line, row, layout in self.headers:
            layouts[layout].append((fid, line, row))
        for layout, rows in [*layouts.items(), (self.rs.trailer, self.trailers)]:
            if not rows or not layout:
                continue
            if len(rows) <= PROBE_ROWS and all(plainly_valid(r[2], layout, self.rs) for r in rows):
                continue  # a few records, every field plainly valid: nothing for Polars to find
            frame = pl.DataFrame({"fid": [r[0] for r in rows], "line": [r[1] for r in rows],
                                  **{f"c{i}": [r[2][i] for r in rows] for i in range(len(layout))}},
                                 schema={"fid": pl.Int32, "line": pl.Int64,
                                         **{f"c{i}": pl.String for i in range(len(layout))}})
            check_fields(frame, layout, self.rs, self.out, self.rel_of, masks=self.masks(layout))


class FileSink(Sink):
    """Where the records of the file being read go (``reading.read_records``): the first to the
    record checks (``FileRecords.start``), the body into its report's batch; the first record
    too when it is not the header, as soon as another follows (it belongs with the body)."""

    def __init__(self, checker: Checker, info: FileInfo, records: FileRecords):
        self.checker, self.info, self.records = checker, info, records
        self.waiting: tuple[int, list[str]] | None = None  # the first record, when not the header

    def first(self, line: int, fields: list[str], unread_before: bool) -> None:
        if not self.records.start(line, fields, unread_before):
            self.waiting = (line, fields)

    def text(self, start: int, count: int, data: bytes) -> None:
        self.release(True)
        self.checker.add_body(self.info, count, text=(start, data))

    def frame(self, frame: pl.DataFrame) -> None:
        self.release(False)
        self.checker.add_body(self.info, frame.height, frame=frame)

    def release(self, split: bool) -> None:
        """The first record into the body, if it waits."""
        if self.waiting is not None:
            line, fields = self.waiting
            self.waiting = None
            self.body(line, fields, split)

    def body(self, line: int, fields: list[str], split: bool) -> None:
        """One record into the body: as text (joining the fields again gives the line back: there
        is no quote character) or as a frame."""
        if split:
            self.checker.add_body(self.info, 1, text=(line, self.checker.rs.delimiter.join(fields).encode()))
        else:
            self.checker.add_body(self.info, 1, frame=rows_frame([line], [fields]))


class WindowChecks:
    """detail-time-window and late-record: each detail record's date-times (``t{i}``, seconds
    since the epoch) against its file's window, asked in the same pass as the field checks."""

    def __init__(self, files: list[FileInfo], rs: Ruleset, out: Collector):
        self.files, self.rs, self.out = files, rs, out

    def rel_of(self, fid: int) -> str:
        return self.files[fid].rel

    def checks(self, report: Report, times: list) -> list[tuple]:
        """(check, field index, field, mask, where) of detail-time-window and late-record: each
        record's date-times against its file's window (``ws``, ``we``: null when unknown)."""
        found = []
        for i, f in times:
            t = pl.col(f"t{i}")
            span = 86399 if f.type == "date" else 0  # a Date is the whole day
            candidates = [("detail-time-window", t > pl.col("we"), "after")]
            if report.assignment == "previously_unreported":
                candidates.append(("late-record", t + span < pl.col("ws"), "before"))
            elif report.assignment == "window_activity":
                candidates.append(("detail-time-window", t + span < pl.col("ws"), "before"))
            found += [(check, i, f, mask, where) for check, mask, where in candidates if self.out.wants(check)]
        return found

    def bounds(self, fids: list[int]) -> list[pl.Expr]:
        """``ws`` and ``we``: the window of each record's file, looked up by ``fid``."""
        if len(fids) == 1:
            info = self.files[fids[0]]
            return [pl.lit(info.window_start, dtype=pl.Int64).alias("ws"),
                    pl.lit(info.window_end, dtype=pl.Int64).alias("we")]
        low, high = min(fids), max(fids)
        known = [self.files[k] for k in range(low, high + 1)]
        starts = pl.Series([f.window_start for f in known], dtype=pl.Int64)
        ends = pl.Series([f.window_end for f in known], dtype=pl.Int64)
        at = pl.col("fid") - low
        return [pl.lit(starts).gather(at).alias("ws"), pl.lit(ends).gather(at).alias("we")]

    def findings(self, frame: pl.DataFrame, report: Report, check: str, i: int, f, mask: pl.Expr,
                 where: str) -> None:
        """The findings of one window check that some record of ``frame`` failed."""
        bad = frame.filter(mask)
        if bad.height == 0:
            return
        room = self.out.room(check)
        rows = (bad if room is None else bad.head(room)).select("fid", "line", f"c{i}", f"t{i}", "ws", "we").to_dicts()
        fmt = self.rs.datetime_format
        if check == "late-record":
            shown = [(self.rel_of(r["fid"]), r["line"], {
                "field": f.name, "found": r[f"c{i}"], "delay": duration(r["ws"] - r[f"t{i}"]),
                "start": show(r["ws"], fmt)}) for r in rows]
        else:
            shown = [(self.rel_of(r["fid"]), r["line"], {
                "field": f.name, "found": r[f"c{i}"], "where": where, "start": show(r["ws"], fmt),
                "end": show(r["we"], fmt)}) for r in rows]
        self.out.add_many(check, f.name, shown, bad.height)
