"""Ground-truth checks: the report files of a directory against what an event log gives.

The oracle is the reference engine (``rules/engine.py``): ``engine.report`` runs the same ruleset
over the event log into a temporary directory, and every detail record of the checked directory
is matched, one to one, with a record of that reference. What is left over on either side, and
what is matched but not where the reference has it or not with the same values, is a finding:

- files are paired first, by report, recipient and run (creation date-time and, for a report
  with its own window, the window's start; the sequence number decides between equals). A file
  of the reference with no partner is ``gt-missing-file``; a file of a known report, recipient
  and creation date-time with no partner is ``gt-unexpected-file``; a partner whose header
  carries another sequence number or window is ``gt-field-mismatch`` at its header;
- records are keyed by report and identity: the Device ID, the date-times and the Number of
  Attempts for a "previously unreported" report (an event), the ``group_by`` columns (day;
  model and firmware) or the Device ID for the others (a snapshot or a count, one per run).
  A record is matched in place (same key, same recipient, same run) first; what is left is
  matched on the key and the run (``gt-wrong-recipient``), on the key and the recipient
  (``gt-wrong-run``), on the key alone (both), and last, for a report with a Device ID, on the
  device and the place (a record whose date-time or attempt number was changed: its fields
  differ). So a record in the wrong file is reported as such, not as missing plus unexpected;
- every matched pair is compared field by field (``gt-field-mismatch``, naming the field); a
  record of the reference left over is ``gt-missing-record`` (at the file that should hold it),
  a record of the directory left over is ``gt-unexpected-record``;
- only the recipients that have a file in the directory are expected to be complete: a supplier
  checks its own folder against the whole event log. Another recipient's files are not missing,
  but their records still count (one of them in this directory is ``gt-wrong-recipient``). With
  ``expect="reports"`` only the (report, recipient) pairs that have a file are: a pipeline that
  splits its inbound files by report checks each part alone (a report missing altogether for a
  recipient is then not noticed).

Memory stays bounded: the checker hands over each batch of detail records it has read (the
``capture`` hook), which is spilled to Parquet by report and month of the file's creation; the
reference is read the same way; the records are matched in place month by month, and only what
is left over is kept for the matching across months.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.crossfile import Roles
from emrr.conformance.fields import clip
from emrr.conformance.findings import Collector
from emrr.conformance.formats import show
from emrr.conformance.names import NamePattern
from emrr.conformance.reading import body_frame, decode, details_frame, parse
from emrr.conformance.records import FileInfo, Kinds, header_of, window_of
from emrr.rules.ruleset import Report, Ruleset

GT_CHECKS = frozenset(c.id for c in CATALOGUE.values() if c.family == "ground-truth")
UNKNOWN = -1  # the partition of records whose file's creation date-time cannot be read
LOC = ["L_rec", "L_cre", "L_ws"]  # where a record is: recipient, run creation, run window start


def _month(seconds: int | None) -> int:
    if seconds is None:
        return UNKNOWN
    t = dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc)
    return t.year * 12 + t.month - 1


def _seconds(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp())


@dataclass
class RefFile:
    """A file of the reference (from its run manifest)."""

    rfid: int
    rel: str
    report: str
    recipient: str
    sequence: int
    created: int
    ws: int
    we: int
    records: int
    paired: int | None = None  # the checked file's fid


def identity(report: Report) -> tuple[list[int], int | None]:
    """The detail fields that identify a record of ``report`` (see the module docstring), and
    the field identifying what it is about (a Device ID, or the one field of the report's declared
    ``identity``, e.g. an Installation ID), if any."""
    roles = Roles.of(report)
    by_column = {f.source: i for i, f in enumerate(report.detail) if f.source_kind == "column"}
    device = roles.device
    if report.assignment == "previously_unreported":
        keys = [i for i, f in enumerate(report.detail) if f.type in ("datetime", "date")]
        if "attempt_number" in by_column:
            keys.append(by_column["attempt_number"])
        keys = roles.identity + keys
    else:
        keys = [by_column[c] for c in report.group_by if c in by_column]
        if not keys:
            keys = list(roles.identity)
    if not keys:  # a layout with nothing to go by: the whole record is its identity
        keys = [i for i, f in enumerate(report.detail) if f.source_kind != "constant"]
    return sorted(set(keys)), device


class GroundTruth:
    """One ground-truth comparison: the reference made from ``events``, the checked directory's
    records captured from the checker, then ``run``."""

    def __init__(self, events: str | Path, rs: Ruleset, out: Collector, workdir: str | Path | None = None,
                 expect: str = "recipients", workers: int = 1):
        from emrr.rules import engine

        self.rs = rs
        self.out = out
        self.events = Path(events)
        self.tmp = Path(tempfile.mkdtemp(prefix="emrr-groundtruth-", dir=workdir))
        try:
            self.ref_root = self.tmp / "reference"
            engine.report(self.events, self.ref_root, rs, progress=False, workers=workers)  # its threads
            from emrr.rules.eventlog import EventLog

            self.outages = EventLog.open(self.events).outages()  # runs that did not happen, for the messages
            manifest = json.loads((self.ref_root / engine.MANIFEST).read_text(encoding="utf-8"))
        except BaseException:
            self.close()
            raise
        self.ref_files: list[RefFile] = []
        for entry in manifest["files"]:
            if entry["report_id"] not in rs.reports:
                continue
            self.ref_files.append(RefFile(
                len(self.ref_files), entry["path"], entry["report_id"], entry["recipient"], int(entry["sequence"]),
                _seconds(entry["created"]), _seconds(entry["window_start"]), _seconds(entry["window_end"]),
                int(entry["records"])))
        self.files: list[FileInfo] = []
        self.headers: list[tuple] = []  # the checker's headers read (attach)
        self.header_rows: dict[int, list[str]] = {}
        self.scope: set = set()  # recipients, or (report, recipient) pairs: see ``in_scope``
        self.expect = expect
        self.recipients: set[str] = set()
        self.spilled: dict[tuple[str, int], list[Path]] = defaultdict(list)
        self.count = 0
        self.summary = {"matched": 0}

    # ------------------------------------------------------------------ setup and teardown

    def attach(self, checker) -> None:
        """Receive the detail records the checker reads (``Checker.capture``)."""
        self.files = checker.files
        self.headers = checker.headers  # (fid, line, fields, layout) of each header read
        checker.capture = self.capture

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def note(self) -> str:
        records = sum(f.records for f in self.ref_files)
        text = (f"ground truth: the event log {self.events} gives {len(self.ref_files):,} file(s) and {records:,} "
                f"detail record(s) (reference engine, ruleset {self.rs.name}); {self.summary['matched']:,} record(s) "
                "of the directory matched one")
        others = sorted({r.recipient for r in self.ref_files} - self.recipients)
        if self.expect == "reports":
            text += "; only the reports each recipient has a file of were expected complete (--expect reports)"
        if others:
            shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
            text += (f"; the files of {len(others)} recipient(s) with no file in the directory ({shown}) were not "
                     "expected here")
        return text

    def capture(self, report: Report, frame: pl.DataFrame) -> None:
        """A batch of detail records (``fid``, ``line``, ``c0``...) of ``report``: spilled to
        Parquet by the month of their file's creation."""
        width = len(report.detail)
        frame = frame.select(pl.col("fid").cast(pl.Int32), pl.col("line").cast(pl.Int64),
                             *[pl.col(f"c{i}").cast(pl.String).fill_null("") for i in range(width)])
        fids = frame["fid"].unique().to_list()
        parts = pl.DataFrame({"fid": fids, "part": [_month(self.files[f].created) for f in fids]},
                             schema={"fid": pl.Int32, "part": pl.Int64})
        frame = frame.join(parts, on="fid", how="left")
        for (part,), piece in frame.partition_by("part", as_dict=True, include_key=False).items():
            folder = self.tmp / "checked" / report.id
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.count:06d}.parquet"
            self.count += 1
            piece.write_parquet(path)
            self.spilled[(report.id, int(part))].append(path)

    # ------------------------------------------------------------------ the comparison

    def run(self) -> None:
        # The recipients whose files the directory holds: a supplier checks its own folder
        # against the whole event log, so another recipient's file is not expected here (its
        # records still count: one of them in this directory is gt-wrong-recipient).
        present = [f for f in self.files if f.report is not None and f.recipient]
        self.recipients = {f.recipient for f in present}
        if self.expect == "reports":
            self.scope = {(f.report.id, f.recipient) for f in present}
        else:
            self.scope = {f.recipient for f in present}
        self.header_rows = {fid: row for fid, _, row, _ in self.headers}
        self.pair_files()
        for report in self.rs.reports.values():
            Comparison(self, report).run()

    def outage_at(self, report_id: str, t: int | None) -> str | None:
        """The event log's outage that a run of ``report_id`` at ``t`` fell in, as words."""
        fmt = self.rs.datetime_format
        for rid, start, end in self.outages:
            if t is not None and rid in (report_id, "*") and start <= t < end:
                return (f"the event log records an outage of {'every report' if rid == '*' else rid} from "
                        f"{show(start, fmt)} to {show(end, fmt)}: this run did not happen")
        return None

    def in_scope(self, report_id: str, recipient: str) -> bool:
        """Whether the directory is expected to hold this recipient's files of this report."""
        return (report_id, recipient) in self.scope if self.expect == "reports" else recipient in self.scope

    def ws_key(self, report: Report, ws: int | None, created: int | None) -> int | None:
        """The run's window start as it identifies a run: always 0 for a "previously unreported"
        report (its window follows from its creation)."""
        if report.assignment == "previously_unreported":
            return 0
        if ws is not None:
            return ws
        return window_of(report.window, created)[0] if created is not None else None

    def pair_files(self) -> None:
        """Each file of the reference with at most one file of the directory (module docstring)."""
        rs = self.rs
        chk = [f for f in self.files if f.report is not None and f.recipient and f.created is not None]
        taken: set[int] = set()
        free = list(self.ref_files)

        def ident(report_id, recipient, created, ws, sequence, level):
            report = rs.reports[report_id]
            key = (report_id, recipient, created)
            if level < 2:
                key += (self.ws_key(report, ws, created),)
            if level < 1:
                key += (sequence,)
            return key

        for level in (0, 1, 2):
            index: dict[tuple, list[RefFile]] = defaultdict(list)
            for r in sorted(free, key=lambda r: (r.ws, r.sequence)):
                index[ident(r.report, r.recipient, r.created, r.ws, r.sequence, level)].append(r)
            for f in sorted(chk, key=lambda f: (f.window_start or 0, f.sequence or 0, f.rel)):
                if f.fid in taken:
                    continue
                key = ident(f.report.id, f.recipient, f.created, f.window_start, f.sequence, level)
                if index.get(key):
                    r = index[key].pop(0)
                    r.paired = f.fid
                    taken.add(f.fid)
            free = [r for r in free if r.paired is None]
        self.pair_of = {r.paired: r for r in self.ref_files if r.paired is not None}
        fmt = rs.datetime_format
        names = NamePattern(rs)
        for r in self.ref_files:
            if r.paired is None:
                continue
            f = self.files[r.paired]
            fields = {h.source: h.name for h in header_of(rs, f.report) if h.source_kind == "value"}
            at = (f.rel, f.header_line)
            party = names.read(r.rel, Collector(set())).party  # the log's parties table gives it (MRR App. B)
            if party is not None and f.name.party is not None and f.name.party != party:
                self.out.add("gt-field-mismatch", f.rel, None, None, "party", found=f.name.party, expected=party,
                             recipient=f.recipient, reference=r.rel)
            if f.sequence is not None and f.sequence != r.sequence:
                self.out.add("gt-field-mismatch", f.rel, f.header_line, fields.get("sequence"), "sequence",
                             found=f.sequence, expected=r.sequence, reference=r.rel.rpartition("/")[2])
            if f.header_line is None:
                continue
            for name, got, want in (("window_start", f.window_start, r.ws), ("window_end", f.window_end, r.we)):
                if got is not None and got != want and name in fields:
                    self.out.add("gt-field-mismatch", *at, fields[name], "window", found=show(got, fmt),
                                 expected=show(want, fmt), created=show(r.created, fmt))
            self.header_figures(f, r)
        for f in chk:
            if f.fid in taken:
                continue
            report = f.report
            why = self.outage_at(report.id, f.created) or "the reference engine writes none (no record for this " \
                "recipient in this run)"
            own_window = report.assignment != "previously_unreported" and f.window_start is not None
            self.out.add("gt-unexpected-file", f.rel, None, None, "window" if own_window else None, report=report.id,
                         recipient=f.recipient, created=show(f.created, fmt), start=show(f.window_start, fmt),
                         note=why)

    def header_figures(self, f: FileInfo, r: RefFile) -> None:
        """The header fields a report fills from the recipient's own row (``{own: COLUMN}``: the SMETS1
        MRR's S1MIG-009 figures, 002:L632-651) against the reference's header, field by field."""
        layout = header_of(self.rs, f.report)
        own = [i for i, h in enumerate(layout) if h.source_kind == "own"]
        if not own or not self.out.wants("gt-field-mismatch"):
            return
        row = self.header_rows.get(f.fid)
        if row is None or len(row) != len(layout):
            return
        text = (self.ref_root / r.rel).read_bytes().decode(self.rs.encoding)
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=self.rs.delimiter,
                                quotechar=self.rs.quote_char), [])
        for i in own:
            if i < len(first) and row[i] != first[i]:
                self.out.add("gt-field-mismatch", f.rel, f.header_line, layout[i].name, found=clip(row[i]),
                             expected=clip(first[i]))

    def location(self, report: Report, fid: int) -> tuple[str | None, int | None, int | None]:
        """Where a checked file's records are, as runs go: its partner's run, else its own."""
        r = self.pair_of.get(fid)
        if r is not None:
            return r.recipient, r.created, self.ws_key(report, r.ws, r.created)
        f = self.files[fid]
        return f.recipient, f.created, self.ws_key(report, f.window_start, f.created)

    def ref_where(self, rfid: int) -> str:
        """The file of the directory that should hold a reference record (its partner), or the
        reference's name for it."""
        r = self.ref_files[rfid]
        if r.paired is not None:
            return self.files[r.paired].rel
        if not self.in_scope(r.report, r.recipient):
            return (f"{r.rel} (the recipient's file: {r.recipient} has no "
                    f"{r.report + ' ' if self.expect == 'reports' else ''}file in this directory)")
        return f"{r.rel} (not in the directory)"


class MonthlyRecords:
    """The detail records of one report, month by month of their file's creation: the checked
    directory's (spilled by ``GroundTruth.capture``) and the reference's (read once, then kept as
    Parquet), each with where it is (``LOC``)."""

    def __init__(self, gt: GroundTruth, report: Report):
        self.gt = gt
        self.rs = gt.rs
        self.report = report
        self.width = len(report.detail)
        self.cols = [f"c{i}" for i in range(self.width)]
        self.detail = Kinds(self.rs).detail_of(report)  # the Record type of its detail records
        self.ref_by_part: dict[int, list[RefFile]] = defaultdict(list)
        for r in gt.ref_files:
            if r.report == report.id:
                self.ref_by_part[_month(r.created)].append(r)
        self.ref_cache: dict[int, Path] = {}

    def parts(self) -> list[int]:
        """The months with records on either side."""
        return sorted({p for (rid, p) in self.gt.spilled if rid == self.report.id} | set(self.ref_by_part))

    def checked(self, part: int) -> pl.DataFrame:
        paths = self.gt.spilled.get((self.report.id, part), [])
        schema = {"fid": pl.Int32, "line": pl.Int64, **{c: pl.String for c in self.cols}}
        frame = pl.concat([pl.read_parquet(p) for p in paths]).select(list(schema)) if paths \
            else pl.DataFrame(schema=schema)
        fids = frame["fid"].unique().to_list()
        loc = [self.gt.location(self.report, f) for f in fids]
        meta = pl.DataFrame({"fid": fids, "L_rec": [x[0] for x in loc], "L_cre": [x[1] for x in loc],
                             "L_ws": [x[2] for x in loc]},
                            schema={"fid": pl.Int32, "L_rec": pl.String, "L_cre": pl.Int64, "L_ws": pl.Int64})
        return frame.join(meta, on="fid", how="left").sort(["L_cre", "fid", "line"], nulls_last=True)

    def reference(self, part: int) -> pl.DataFrame:
        """The reference's records of this report in files created in month ``part`` (read once,
        then kept as Parquet)."""
        if part in self.ref_cache:
            return pl.read_parquet(self.ref_cache[part])
        files = sorted(self.ref_by_part.get(part, []), key=lambda r: r.rfid)
        frame = self.records_of(files)
        schema = {"rfid": pl.Int32, "rline": pl.Int64, **{c: pl.String for c in self.cols}}
        if frame is None:
            frame = pl.DataFrame(schema=schema)
        meta = pl.DataFrame({"rfid": [r.rfid for r in files], "L_rec": [r.recipient for r in files],
                             "L_cre": [r.created for r in files],
                             "L_ws": [self.gt.ws_key(self.report, r.ws, r.created) for r in files]},
                            schema={"rfid": pl.Int32, "L_rec": pl.String, "L_cre": pl.Int64, "L_ws": pl.Int64})
        frame = frame.select(list(schema)).join(meta, on="rfid", how="left")
        path = self.gt.tmp / "reference-parts" / self.report.id / f"{part}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
        self.ref_cache[part] = path
        return frame

    def records_of(self, files: list[RefFile]) -> pl.DataFrame | None:
        """The detail records of reference files as ``rfid``, ``rline``, ``c0``...: read as the
        checker reads the files it checks (``reading.parse``, then every body at once by
        ``reading.details_frame``, else by ``reading.body_frame``), nothing reported."""
        rs, silent = self.rs, Collector(set())
        texts, rows, frames = [], [], []
        for r in files:
            text = decode((self.gt.ref_root / r.rel).read_bytes(), r.rel, silent, rs.encoding, rs.line_terminator,
                          rs.quote_char)
            if text is None:
                continue
            p = parse(text, r.rel, silent, rs.delimiter, rs.quote_char, rs.line_terminator)
            ends = ((p.first, not rs.header), (p.last, not rs.trailer and p.count > 1))
            rows += [(r.rfid, *end) for end, outside in ends if outside and end is not None]
            if p.body_text is not None:
                texts.append((r.rfid, p.body_start, p.body_count, p.body_text))
            else:
                frames += p.body_of(r.rfid)
        frame = details_frame(texts, self.width, rs.delimiter, self.detail) if texts and not rows and not frames \
            else None
        if frame is None:
            if not texts and not rows and not frames:
                return None
            frame = (body_frame(texts, rows, rs.delimiter, frames).filter(pl.col("fields").list.len() == self.width)
                     .sort("fid", "line")
                     .select("fid", "line", *[pl.col("fields").list.get(i).alias(c) for i, c in enumerate(self.cols)]))
        return frame.rename({"fid": "rfid", "line": "rline"})


class Comparison:
    """The records of one report: matched month by month in place, then across months."""

    def __init__(self, gt: GroundTruth, report: Report):
        self.gt = gt
        self.rs = gt.rs
        self.out = gt.out
        self.report = report
        self.records = MonthlyRecords(gt, report)
        self.cols = self.records.cols
        self.keys, self.device = identity(report)
        self.key_cols = [f"c{i}" for i in self.keys]

    # ------------------------------------------------------------------ matching

    @staticmethod
    def match(c: pl.DataFrame, r: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Pair records of ``c`` and ``r`` with equal ``keys``, one to one (the n-th of a key
        with the n-th, in order); return the pairs (every column of both, the reference's
        prefixed ``r_``) and what is left of each side."""
        if c.height == 0 or r.height == 0:
            return pl.DataFrame(), c, r
        rank = pl.int_range(pl.len()).over(keys).alias("_rank")
        ci = c.select("fid", "line", *keys).with_columns(rank)
        ri = r.select("rfid", "rline", *keys).with_columns(rank)
        ids = ci.join(ri, on=[*keys, "_rank"], how="inner").select("fid", "line", "rfid", "rline")
        if ids.height == 0:
            return pl.DataFrame(), c, r
        renamed = r.rename({n: f"r_{n}" for n in r.columns if n not in ("rfid", "rline")})
        pairs = ids.join(c, on=["fid", "line"], how="left").join(renamed, on=["rfid", "rline"], how="left")
        c = c.join(ids.select("fid", "line"), on=["fid", "line"], how="anti")
        r = r.join(ids.select("rfid", "rline"), on=["rfid", "rline"], how="anti")
        return pairs, c, r

    def run(self) -> None:
        parts = self.records.parts()
        in_place = self.key_cols + LOC
        c_left, r_left = [], []
        for part in parts:
            c = self.records.checked(part)
            r = self.records.reference(part)
            if part != UNKNOWN:
                pairs, c, r = self.match(c, r, in_place)
                self.compare(pairs)
            c_left.append(c)
            r_left.append(r)
        c = pl.concat(c_left, how="vertical_relaxed") if c_left else pl.DataFrame()
        r = pl.concat(r_left, how="vertical_relaxed") if r_left else pl.DataFrame()
        if c.height and r.height:
            c = c.sort(["L_cre", "fid", "line"], nulls_last=True)
            r = r.sort(["L_cre", "rfid", "rline"])
            stages = [("recipient", self.key_cols + ["L_cre", "L_ws"]), ("run", self.key_cols + ["L_rec"]),
                      ("both", self.key_cols)]
            if self.device is not None and [f"c{self.device}"] != self.key_cols:
                stages.append(("in place", [f"c{self.device}"] + LOC))
            for stage, keys in stages:
                pairs, c, r = self.match(c, r, keys)
                if pairs.height:
                    self.placement(pairs, stage)
                    self.compare(pairs)
        self.missing(r)  # also when every record was found elsewhere: a file may still be missing
        if c.height:
            self.unexpected(c)

    # ------------------------------------------------------------------ findings

    def record(self, row: dict) -> dict:
        """The slot values naming a record in a message: its report and its key's fields."""
        names = self.report.detail
        return {"report": self.report.id, "key": ", ".join(f"{names[i].name} {clip(row[f'c{i}'], 30)}"
                                                           for i in self.keys)}

    def _rows(self, check: str, frame: pl.DataFrame) -> list[dict]:
        room = self.out.room(check)
        return (frame if room is None else frame.head(room)).to_dicts()

    def compare(self, pairs: pl.DataFrame) -> None:
        if pairs.height == 0:
            return
        self.gt.summary["matched"] += pairs.height
        if not self.out.wants("gt-field-mismatch"):
            return
        rel = self.gt.files
        for i, f in enumerate(self.report.detail):
            bad = pairs.filter(pl.col(f"c{i}") != pl.col(f"r_c{i}"))
            if bad.height == 0:
                continue
            shown = [(rel[row["fid"]].rel, row["line"], {"found": clip(row[f"c{i}"]), "expected": clip(row[f"r_c{i}"])})
                     for row in self._rows("gt-field-mismatch", bad)]
            self.out.add_many("gt-field-mismatch", f.name, shown, bad.height)

    def placement(self, pairs: pl.DataFrame, stage: str) -> None:
        """gt-wrong-recipient and gt-wrong-run for records matched away from their place."""
        gt, fmt = self.gt, self.rs.datetime_format
        previously = self.report.assignment == "previously_unreported"
        if stage in ("recipient", "both") and self.out.wants("gt-wrong-recipient"):
            rows = self._rows("gt-wrong-recipient", pairs)
            who = ("the Responsible Supplier of the device at the end of the month" if
                   self.report.recipient_rule == "responsible_supplier_at_window_end" else
                   "the Responsible Supplier of the device at the event")
            if self.report.kind == "summary":
                who = "the supplier whose devices it counts"
            if self.report.recipient_columns:  # listed_parties: the parties the row names
                who = "the parties its row names (" + ", ".join(self.report.recipient_columns) + ")"
            elif self.report.recipient_role:  # all_parties
                who = f"every party of role {self.report.recipient_role}"
            shown = [(gt.files[row["fid"]].rel, row["line"], {
                **self.record(row), "recipient": row["L_rec"] or "an unknown recipient", "expected": row["r_L_rec"],
                "note": who, "where": gt.ref_where(row["rfid"])}) for row in rows]
            self.out.add_many("gt-wrong-recipient", None, shown, pairs.height)
        if stage in ("run", "both") and self.out.wants("gt-wrong-run"):
            rows = self._rows("gt-wrong-run", pairs)
            shown = []
            for row in rows:
                here = "a run whose creation date-time cannot be read" if row["L_cre"] is None else \
                    f"the run created {show(row['L_cre'], fmt)}"
                ref = gt.ref_files[row["rfid"]]
                if previously:
                    why = ("the first run whose window ends after the event and which runs after the reporting "
                           "system learned of it")
                    lost = gt.outage_at(self.report.id, row["L_cre"])
                    if lost is not None:
                        why += f"; {lost}"
                    elif row["L_cre"] is not None:
                        why += ("; the event could not be reported yet in this run" if row["L_cre"] < ref.created
                                else "; this run is later")
                else:
                    why = f"the run of its window {show(ref.ws, fmt)} - {show(ref.we, fmt)}"
                shown.append((gt.files[row["fid"]].rel, row["line"], {
                    **self.record(row), "here": here, "created": show(ref.created, fmt), "note": why,
                    "where": gt.ref_where(row["rfid"])}))
            self.out.add_many("gt-wrong-run", None, shown, pairs.height)

    def missing(self, r: pl.DataFrame) -> None:
        """What is left of the reference: records missing from their file, and missing files
        (of the recipients the directory holds: see ``GroundTruth.scope``)."""
        gt, fmt = self.gt, self.rs.datetime_format
        if "rfid" not in r.columns:
            r = pl.DataFrame(schema={"rfid": pl.Int32, "rline": pl.Int64, **{c: pl.String for c in self.cols}})
        paired = [x.rfid for x in gt.ref_files if x.report == self.report.id and x.paired is not None]
        in_file = r.filter(pl.col("rfid").is_in(paired))
        if in_file.height and self.out.wants("gt-missing-record"):
            shown = []
            for row in self._rows("gt-missing-record", in_file):
                ref = gt.ref_files[row["rfid"]]
                shown.append((gt.files[ref.paired].rel, None, {
                    **self.record(row), "recipient": ref.recipient, "created": show(ref.created, fmt),
                    "line": row["rline"]}))
            self.out.add_many("gt-missing-record", None, shown, in_file.height)
        lost = dict(r.filter(~pl.col("rfid").is_in(paired)).group_by("rfid").len().iter_rows())
        if self.out.wants("gt-missing-file"):
            for ref in gt.ref_files:
                if ref.report != self.report.id or ref.paired is not None or not gt.in_scope(ref.report, ref.recipient):
                    continue
                n = lost.get(ref.rfid, 0)
                elsewhere = ref.records - n
                self.out.add("gt-missing-file", ref.rel, None, None, None if elsewhere else "none-elsewhere",
                             report=ref.report, recipient=ref.recipient, created=show(ref.created, fmt),
                             start=show(ref.ws, fmt), end=show(ref.we, fmt), sequence=ref.sequence,
                             records=ref.records, elsewhere=elsewhere)

    def unexpected(self, c: pl.DataFrame) -> None:
        if not self.out.wants("gt-unexpected-record"):
            return
        gt = self.gt
        shown_rows = self._rows("gt-unexpected-record", c)
        known: set[tuple] = set()
        if shown_rows:  # is the record's key given by the event log at all (elsewhere)?
            probe = pl.DataFrame([{k: row[k] for k in self.key_cols} for row in shown_rows],
                                 schema={k: pl.String for k in self.key_cols}).unique()
            for part in self.records.ref_by_part:
                hits = self.records.reference(part).select(self.key_cols).join(probe, on=self.key_cols, how="semi")
                known |= set(hits.iter_rows())
        previously = self.report.assignment == "previously_unreported"
        shown = []
        for row in shown_rows:
            if tuple(row[k] for k in self.key_cols) in known:
                form = "repeat" if previously else "elsewhere"
            else:
                form = None if previously else "no-record"
            shown.append((gt.files[row["fid"]].rel, row["line"], {**self.record(row), "form": form}))
        self.out.add_many("gt-unexpected-record", None, shown, c.height)
