"""The reference report engine: an event log and a ruleset in, the EMRR report files out.

It runs every scheduled run of every report that falls in the log's period, half a calendar
month of runs at a time (all reports for that half month, then the next), and writes each produced file to
``OUT/<SEC Party ID>/<file name>``, then a run manifest. Files are written under a temporary name
and renamed; a journal line is appended for each, so that a run stopped at any point (kill -9)
resumes with ``--resume`` to exactly the files of an uninterrupted run.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import resource
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from emrr.errors import UserError
from emrr.rules import schedule
from emrr.rules.eventlog import EventLog, collect, kind_of, ts
from emrr.rules.ruleset import Field, Report, Ruleset, name_problem
from emrr.rules.selection import ASSIGNMENTS, SOURCE, VARIANT, Selection, emptied, previously_unreported

_PARTY = re.compile(r"^[A-Z0-9]{6}$")  # a SEC Party Signifier (EMRR App. B; MRR 002:L741 "6 character")
STATE = ".emrr-state.json"
JOURNAL = ".emrr-journal.jsonl"
MANIFEST = "run-manifest.json"
FORMAT = "emrr-report-run"
# Our temporary files: ".NAME.tmp-emrr", beside NAME. --resume removes only these, never a user's
# own ".x.tmp" (campaign L5).
TMP_SUFFIX = ".tmp-emrr"
UTC = dt.timezone.utc


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), UTC)


@dataclass
class ReportSummary:
    files: int = 0
    records: int = 0


@dataclass
class Summary:
    ruleset: str
    events: str
    out: str
    per_report: dict[str, ReportSummary] = field(default_factory=dict)
    resumed_files: int = 0
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    too_long: dict[str, int] = field(default_factory=dict)  # "REPORT field" -> values over max_length
    warnings: list[str] = field(default_factory=list)  # the ruleset's (Ruleset.warnings)
    journal_skipped: int = 0  # unreadable journal lines at --resume (their files are written again)
    beyond_last_run: dict[str, int] = field(default_factory=dict)  # report -> events no run of the period carries

    def render(self) -> str:
        lines = [f"reports of {self.events} by ruleset {self.ruleset} -> {self.out}"]
        total_f = total_r = 0
        for report_id, s in sorted(self.per_report.items()):
            lines.append(f"  {report_id}  {s.files:>8,} files  {s.records:>12,} records")
            total_f += s.files
            total_r += s.records
        lines.append(f"  {'total':<11}  {total_f:>8,} files  {total_r:>12,} records"
                     + (f"  ({self.resumed_files:,} already written before --resume)" if self.resumed_files else ""))
        lines.append(f"  wall time {self.wall_seconds:.2f} s; peak memory {self.peak_rss_bytes / (1 << 20):,.0f} MiB")
        for where, n in sorted(self.too_long.items()):
            lines.append(f"  warning: {where}: {n:,} value(s) longer than the ruleset's max_length, written as they "
                         "are (the checker reports each as field-length)")
        lines += [f"  warning: {w}" for w in self.warnings]
        for report_id, n in sorted(self.beyond_last_run.items()):
            lines.append(f"  note: {report_id}: {n:,} event(s) are in no file: they happened or became known after "
                         "the cut-off of the period's last run that happened (a longer event log carries them)")
        if self.journal_skipped:
            lines.append(f"  note: {self.journal_skipped:,} unreadable line(s) of {JOURNAL} skipped (a line cut short "
                         "by a stop, or damaged); their files were checked against a fresh run's")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"ruleset": self.ruleset, "events": self.events, "out": self.out,
                "per_report": {k: vars(v) for k, v in sorted(self.per_report.items())},
                "files": sum(v.files for v in self.per_report.values()),
                "records": sum(v.records for v in self.per_report.values()),
                "resumed_files": self.resumed_files, "wall_seconds": self.wall_seconds,
                "too_long": dict(sorted(self.too_long.items())), "warnings": list(self.warnings),
                "journal_skipped": self.journal_skipped, "beyond_last_run": dict(sorted(self.beyond_last_run.items())),
                "peak_rss_bytes": self.peak_rss_bytes}


# --------------------------------------------------------------------------- output and journal


class WriteError(UserError):
    """The system refused a write (a full disk, a folder made read-only): what was written is kept,
    and ``--resume`` continues once the cause is gone (campaign M5)."""


class Output:
    """The output folder: lock, state, journal, atomic files, and the run manifest at the end."""

    def __init__(self, out: Path, fingerprint: str, ruleset: Ruleset, resume: bool):
        self.out = out
        self.ruleset_file = str(ruleset.path / "ruleset.yaml")
        self.entries: list[dict] = []
        self.done: dict[str, dict] = {}
        self.written: dict[str, dict] = {}  # path -> entry, every file of this run (resumed or not)
        self.folders_inside: dict[Path, bool] = {}
        self.journal_skipped = 0
        self.journal = None
        self.lock_entries = threading.Lock()  # written, done, entries and the journal, for Engine.run's threads
        state = {"format": FORMAT, "fingerprint": fingerprint, "ruleset": ruleset.name,
                 "ruleset_digest": ruleset.digest}
        self.created_folder = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output directory: {exc.strerror}", file=str(out))
        self.lock = _lock(out)
        try:
            self.root = out.resolve()
            self._open(state, fingerprint, ruleset, resume)
        except BaseException:
            self.close()
            raise

    def _open(self, state: dict, fingerprint: str, ruleset: Ruleset, resume: bool) -> None:
        out = self.out
        state_path = out / STATE
        leftover = _tmp_name(state_path)  # killed before the state was in place: nothing else was written
        if leftover.is_file() and not state_path.exists():
            leftover.unlink()
        existing = [p for p in out.iterdir()]
        if state_path.is_file():
            try:
                previous = json.loads(state_path.read_bytes())
            except ValueError:  # UnicodeDecodeError included
                previous = None
            if not isinstance(previous, dict):
                raise UserError(f"{STATE} is not readable JSON; expected the state of a report run", file=str(out))
            if (previous.get("fingerprint") != fingerprint or previous.get("ruleset") != ruleset.name
                    or previous.get("ruleset_digest") != ruleset.digest):
                raise UserError("holds another run's files (another event log or ruleset); expected an empty "
                                "directory, or --resume with the same event log and ruleset", file=str(out))
            if not resume:
                raise UserError("holds the files of a report run already; use --resume to continue it, "
                                "or choose an empty directory", file=str(out))
            self._load_journal()
        elif existing:
            raise UserError("holds files that are not a report run of ours; expected an empty or new directory",
                            file=str(out))
        else:
            _write_atomically(state_path, json.dumps(state, indent=2, sort_keys=True).encode() + b"\n")
        for stale in out.rglob(f".*{TMP_SUFFIX}"):  # ours only, left by a stopped run; the lock says none is running
            stale.unlink()
        journal = out / JOURNAL
        # a line cut short by a stop or a full disk ends where the next begins, never glued to it
        torn = journal.is_file() and journal.stat().st_size > 0 and _last_byte(journal) != b"\n"
        try:
            self.journal = open(journal, "a", encoding="utf-8")
            if torn:
                self.journal.write("\n")
        except OSError as exc:
            raise WriteError(f"cannot write: {exc.strerror}; run again with --resume once it can be written",
                             file=str(journal))

    def _load_journal(self) -> None:
        """The files a stopped run wrote, by path. A line that is not such an entry (cut short by a
        kill, damaged, not UTF-8) is skipped and counted: its file is written again (campaign L4)."""
        path = self.out / JOURNAL
        if not path.is_file():
            return
        for line in path.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                    and isinstance(entry.get("sha256"), str) and relative_problem(entry["path"]) is None):
                self.journal_skipped += 1
                continue
            target = self.out / entry["path"]
            if target.is_file():
                self.done[entry["path"]] = entry

    def target(self, entry: dict) -> Path:
        """Where a file goes: checked again at write time (the ruleset's load checked the pattern
        with sample values): one folder and one name, and resolved under the output folder, a
        link included (campaign H1)."""
        path = entry["path"]
        problem = relative_problem(path)
        target = self.out / path
        if problem is None and not self._inside(target.parent):
            problem = "which leads outside it"
        if problem:
            raise UserError(f"file {path!r} of {_describe(entry)} is not a path inside the output folder: {problem}",
                            file=self.ruleset_file, path="file_name.pattern")
        return target

    def _inside(self, folder: Path) -> bool:
        """Whether ``folder`` resolves under the output folder, asked once per folder (45 us a
        resolve: seconds at national volume if asked per file). The file's own name needs no
        resolve: it is one name, and os.replace replaces a link there instead of following it."""
        known = self.folders_inside.get(folder)
        if known is None:
            known = self.folders_inside[folder] = folder.resolve().is_relative_to(self.root)
        return known

    def write(self, entry: dict, content: bytes) -> bool:
        """Write one report file atomically and journal it; False when it was already written.
        Safe from several threads: the bookkeeping is under a lock, the writing of files is not."""
        target = self.target(entry)
        with self.lock_entries:
            earlier = self.written.get(entry["path"])
            if earlier is not None:  # never overwrite a file of this run (campaign H2)
                raise UserError(f"two files of this run have the same name {entry['path']!r}: {_describe(earlier)} "
                                f"and {_describe(entry)}; expected a file_name.pattern that names each file apart",
                                file=self.ruleset_file, path="file_name.pattern")
            self.written[entry["path"]] = entry
            previous = self.done.get(entry["path"])
        if previous is not None:
            if previous["sha256"] != entry["sha256"]:
                raise UserError(f"{entry['path']} differs from the file an earlier run wrote; the event log "
                                "or ruleset changed: start again in an empty directory", file=str(self.out))
            with self.lock_entries:
                self.entries.append(entry)
            if _holds(target, content, entry["sha256"]):
                return False
            # journaled, but the disk holds something else (a power cut left it empty, someone
            # edited it): written again; the journal's line is already right (campaign M6)
            _write_atomically(target, content)
            return True
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create the folder: {exc.strerror}; run again with --resume once it can be "
                             "written", file=str(target.parent))
        _write_atomically(target, content)
        with self.lock_entries:
            try:
                self.journal.write(json.dumps(entry, sort_keys=True) + "\n")
                self.journal.flush()
            except OSError as exc:
                raise WriteError(f"cannot write: {exc.strerror}; run again with --resume once it can be written",
                                 file=str(self.out / JOURNAL))
            self.entries.append(entry)
        return True

    def close(self) -> None:
        """Close the journal and release the lock (idempotent)."""
        if self.journal is not None:
            try:
                self.journal.close()
            except OSError:
                pass  # a full disk refused the buffered rest: those lines are written again at --resume
            self.journal = None
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def discard(self) -> None:
        """Undo a fresh run that stopped on bad input: nothing half-written is left, and only what
        this run wrote is removed (never a file someone else put there, campaign L6)."""
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        for entry in self.entries:
            (self.out / entry["path"]).unlink(missing_ok=True)
        for name in (STATE, JOURNAL):
            (self.out / name).unlink(missing_ok=True)
        folders = sorted({(self.out / e["path"]).parent for e in self.entries}, reverse=True)
        for folder in folders + ([self.out] if self.created_folder else []):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: it holds something this run did not write

    def finish(self, meta: dict) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        manifest = {"format": FORMAT, **meta, "files": sorted(self.entries, key=lambda e: e["path"])}
        _write_atomically(self.out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")


def remove_run(out: Path) -> None:
    """Remove an earlier report run from ``out`` before a fresh one (``emrr run`` on a new event
    log): the files its journal and manifest list, its bookkeeping, and folders left empty. A file
    neither lists (someone else's) is never deleted: it is refused in one line (campaign L6). The
    folder's lock is held throughout, so a run still writing there is refused too."""
    lock = _lock(out)
    try:
        listed: set[str] = set()
        for name in (JOURNAL, MANIFEST):
            path = out / name
            if not path.is_file():
                continue
            try:
                text = path.read_bytes()
                lines = [json.loads(line) for line in text.splitlines() if line.strip()] if name == JOURNAL \
                    else json.loads(text).get("files", [])
            except (ValueError, AttributeError):
                raise UserError(f"{name} is not readable; expected the bookkeeping of a report run", file=str(out))
            listed |= {e["path"] for e in lines if isinstance(e, dict) and isinstance(e.get("path"), str)
                       and relative_problem(e["path"]) is None}
        ours = listed | {STATE, JOURNAL, MANIFEST}
        files, folders = [], []
        for root, dirs, names in os.walk(out):  # links are not followed
            folders += [Path(root, d) for d in dirs]
            for name in names:
                rel = Path(root, name).relative_to(out).as_posix()
                if rel not in ours and not name.endswith(TMP_SUFFIX):
                    raise UserError(f"holds {rel!r}, which no report run of ours wrote; expected only the files "
                                    "of an earlier run (move it away, or choose another directory)", file=str(out))
                files.append(Path(root, name))
        for path in files:
            path.unlink()
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            folder.rmdir()
    finally:
        os.close(lock)


def relative_problem(path: str) -> str | None:
    """Why a journaled or formatted path is not a report file's path inside the output folder
    (folder names and a file name, none empty, '.' or '..'), or None."""
    for part in path.split("/"):
        problem = name_problem(part)
        if problem:
            return f"{part!r} {problem}"
    return None


def _describe(entry: dict) -> str:
    return (f"the run of {entry.get('report_id')} for {entry.get('recipient')} with sequence number "
            f"{entry.get('sequence')} created {entry.get('created')}")


REPORT_RUN_BUSY = ("another emrr report run is writing into this directory; expected it to have ended "
                   "(then --resume continues it if it was stopped)")


def _lock(out: Path) -> int:
    return lock_folder(out, REPORT_RUN_BUSY)


def lock_folder(out: Path, busy: str) -> int:
    """An exclusive lock on an output folder for a whole run (campaign M4: two runs into one
    folder raced on its temporary files), or ``busy`` as a one-line error. It is taken on the
    folder itself, so no lock file is left among the outputs; the system releases it when the
    process ends, however it ends. The report engine and ``emrr sweep`` take it."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UserError(f"cannot open the output directory: {exc.strerror}", file=str(out))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(busy, file=str(out))
    return fd


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _holds(path: Path, content: bytes, sha256: str) -> bool:
    """Whether the file at ``path`` is ``content`` (its size, then its SHA-256)."""
    try:
        if path.stat().st_size != len(content):
            return False
        return _sha256(path.read_bytes()) == sha256
    except OSError:
        return False


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


def _write_atomically(path: Path, content: bytes) -> None:
    """``content`` to a temporary name beside ``path``, then renamed: never half a file under its
    name. A write the system refuses (ENOSPC) leaves no temporary file and is one WriteError."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write: {exc.strerror or exc}; free space (or fix the folder's permissions) and run "
                         "again with --resume", file=str(path))


# --------------------------------------------------------------------------- record formatting


class Formatter:
    """Records as CSV lines: Polars writes the details (RFC 4180 quoting only where needed),
    the csv module the header and trailer, both with the ruleset's dialect."""

    def __init__(self, ruleset: Ruleset):
        self.rs = ruleset
        self.too_long: dict[str, int] = defaultdict(int)  # "REPORT field" -> values over max_length

    def field_expr(self, f: Field) -> pl.Expr:
        if f.source_kind == "constant":
            return pl.lit(f.source, dtype=pl.String).alias(f.name)
        col = pl.col(f.source)
        if f.type == "datetime":
            expr = pl.from_epoch(col.cast(pl.Int64), time_unit="s").dt.strftime(self.rs.datetime_format)
        elif f.type == "date":
            expr = pl.from_epoch(col.cast(pl.Int64), time_unit="s").dt.strftime(self.rs.date_format)
        elif f.type == "integer":
            expr = col.cast(pl.Int64).cast(pl.String)
        elif f.type == "boolean":  # MRR "Boolean (1 for true; 0 for false)"
            expr = pl.when(col.is_null()).then(None).when(col.cast(pl.Boolean)).then(pl.lit("1")).otherwise(pl.lit("0"))
        else:
            expr = col.cast(pl.String)
        return expr.alias(f.name)

    def details(self, frame: pl.DataFrame, report: Report) -> tuple[bytes, np.ndarray]:
        """All rows of ``frame`` as CSV records in one buffer, and where each record starts
        (``starts[i]`` to ``starts[i+1]``; one extra entry at the end)."""
        if frame.height == 0:
            return b"", np.zeros(1, dtype=np.int64)
        text = frame.select([self.field_expr(f) for f in report.detail])
        names = [f.name for f in report.detail]
        sizes = text.select([pl.col(n).str.len_bytes() for n in names])  # null for a null value
        # a ruleset may not hold what its own rules produce (the consultation draft's ECoS Status):
        # written as it is, never cut, and counted for the summary (characters counted only in a
        # field whose bytes exceed its length: a character has at least one)
        widest = sizes.select(pl.all().max()).row(0)
        long = [f for f, w in zip(report.detail, widest) if w is not None and w > f.max_length]
        if long:
            over = text.select([(pl.col(f.name).str.len_chars() > f.max_length).sum() for f in long]).row(0)
            for f, n in zip(long, over):
                if n:
                    self.too_long[f"{report.id} {f.name}"] += int(n)
        # RFC 4180 quoting only where needed: Polars' "necessary" quotes a value holding the delimiter,
        # the quote character or a line break, and an empty (not null) value. The records are first
        # written unquoted (a third of the writing at 54 fields): when no value is empty and the text
        # holds each of those characters exactly as often as the records' own delimiters and line
        # ends do, no value held one, and the text is what "necessary" writes; each record's size is
        # then the sum of its fields' (no scan for line ends). Otherwise they are written again, quoted.
        options = dict(include_header=False, separator=self.rs.delimiter, quote_char=self.rs.quote_char,
                       line_terminator=self.rs.line_terminator, null_value="")
        term = self.rs.line_terminator.encode()
        empty = sizes.select(pl.any_horizontal([(pl.col(n) == 0).any() for n in names])).item()
        if not empty:
            buffer = io.BytesIO()
            text.write_csv(buffer, quote_style="never", **options)
            data = buffer.getvalue()
            if self._unquoted(data, len(names), frame.height):
                extra = len(self.rs.delimiter.encode()) * (len(names) - 1) + len(term)
                ends = np.cumsum(sizes.select(pl.sum_horizontal(pl.all().fill_null(0)).cast(pl.Int64))
                                 .to_series().to_numpy() + extra)
                if ends[-1] != len(data):
                    raise RuntimeError("record sizes do not add up to the text written")
                return data, np.concatenate([[0], ends]).astype(np.int64)
        options["quote_style"] = "necessary"
        buffer = io.BytesIO()
        text.write_csv(buffer, **options)
        data = buffer.getvalue()
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(raw == term[-1]) + 1
        if len(term) == 2:
            ends = ends[raw[ends - 2] == term[0]]
        if len(ends) != frame.height:  # a quoted field held a line break: find records row by row
            sizes = []
            for i in range(frame.height):
                one = io.BytesIO()
                text.slice(i, 1).write_csv(one, **options)
                sizes.append(len(one.getvalue()))
            ends = np.cumsum(sizes)
        return data, np.concatenate([[0], ends]).astype(np.int64)

    def _unquoted(self, data: bytes, fields: int, records: int) -> bool:
        """Whether ``records`` records of ``fields`` fields written unquoted hold the delimiter, the quote
        character, CR and LF only as their own delimiters and line ends (then no value held one)."""
        delimiter, quote, term = (c.encode() for c in (self.rs.delimiter, self.rs.quote_char, self.rs.line_terminator))
        if len(delimiter) != 1 or len(quote) != 1:
            return False
        for char in {delimiter, quote, b"\r", b"\n"}:  # bytes.count: no temporary the size of the text
            if data.count(char) != records * ((fields - 1) * (char == delimiter) + term.count(char)):
                return False
        return True

    def record(self, fields: tuple[Field, ...], values: dict, own: dict | None = None) -> bytes:
        """A header or trailer record; ``own`` holds a header's figures from the recipient's own row."""
        row = []
        for f in fields:
            if f.source_kind == "constant":
                row.append(f.source)
                continue
            v = (own or {}).get(f.source) if f.source_kind == "own" else values[f.source]
            if v is None:
                row.append("")
            elif f.type == "datetime":
                row.append(_utc(v).strftime(self.rs.datetime_format))
            elif f.type == "date":
                row.append(_utc(v).strftime(self.rs.date_format))
            elif f.type == "boolean":
                row.append("1" if v else "0")
            else:
                row.append(str(v))
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.rs.delimiter, quotechar=self.rs.quote_char,
                   lineterminator=self.rs.line_terminator, quoting=csv.QUOTE_MINIMAL).writerow(row)
        return buffer.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- the engine


class Engine:
    """Runs a ruleset over an event log (see the module docstring)."""

    def __init__(self, ruleset: Ruleset, log: EventLog, out: str | Path, resume: bool = False,
                 progress: bool | None = None):
        self.rs = ruleset
        self.log = log
        self.out_path = Path(out)
        self.resume = resume
        self.progress = progress
        self.fmt = Formatter(ruleset)
        self.sequence: dict[tuple[str, str], int] = defaultdict(lambda: ruleset.sequence_first - 1)
        start, end = log.period
        outages = log.outages()
        if log.regime != ruleset.regime:
            raise UserError(f"the event log is of regime {log.regime!r} but ruleset {ruleset.name} reports on regime "
                            f"{ruleset.regime!r}; expected a log its ruleset reports on", file=str(log.root))
        self.runs = {rid: schedule.Runs.build(r, start, end, outages) for rid, r in ruleset.reports.items()}
        self._check_columns()
        self.selection = Selection(ruleset, log)
        self.recipient_pattern = re.compile(ruleset.recipient_pattern)
        self.party_of = self._parties() if ruleset.recipient_party == "parties" else None

    def _parties(self) -> dict[str, str]:
        """The SEC Party Signifier of each User ID (the log's parties table; MRR 002:L745: "the
        identifier of the SEC Party associated with the User ID"), each checked: it becomes a file
        name and perhaps a folder."""
        table = collect(self.log.tables["parties"].select("user_id", "party_signifier"))
        where = str(self.log.root / "parties")
        out: dict[str, str] = {}
        for user, party in table.iter_rows():
            if user is None or party is None or not _PARTY.match(party):
                raise UserError(f"party {user!r} has Party Signifier {party!r}; expected 6 capital letters or digits",
                                file=where)
            if out.setdefault(user, party) != party:
                raise UserError(f"User ID {user!r} has two Party Signifiers; expected one row per user_id", file=where)
        return out

    def _check_columns(self) -> None:
        """A rule citing a column its rows lack (neither the event log's nor one its assignment
        derives), or of a type its field cannot take, is an error before anything is written."""
        schema = self.log.columns()
        fits = {"datetime": {"time"}, "date": {"time"}, "integer": {"int"}, "text": {"str", "int"}, "boolean": {"bool"}}
        for report in self.rs.reports.values():
            where = str(self.rs.path / f"{report.id}.yaml")
            assignment = ASSIGNMENTS[report.assignment]
            known = assignment.columns(report)
            cited = [(f.source, f) for f in report.detail if f.source_kind == "column"]
            cited += [(f.source, f) for f in report.header_fields(self.rs) if f.source_kind == "own"]
            cited += [(c, None) for c in (*report.order_by, *report.group_by)]
            grouped = set(report.group_by) if assignment.group_columns else set()
            if report.explode:
                grouped.add(report.explode[0])
            for name, rule in cited:
                if name in report.derive:
                    name, kind = report.derive[name][0], "str"
                    if name not in known and name not in schema:
                        raise UserError(f"report {report.id} derives from column {name!r}, which its rows lack",
                                        file=where)
                elif name in known:
                    kind = known[name]
                elif name in grouped and name in schema:
                    kind = kind_of(schema[name])
                elif name in grouped:
                    kind = "str"
                elif assignment.event_columns and name in schema:
                    kind = kind_of(schema[name])
                elif assignment.event_columns:
                    raise UserError(f"report {report.id} cites column {name!r}, which the event log's events table "
                                    f"lacks; expected one of {', '.join(sorted(schema))}", file=where)
                else:
                    raise UserError(f"report {report.id} cites column {name!r}, which its assignment "
                                    f"{assignment.name} does not give; expected one of {', '.join(sorted(known))}",
                                    file=where)
                if rule is not None and kind not in fits[rule.type] and kind != "null":
                    raise UserError(f"report {report.id} field {rule.name!r} is {rule.type} but column {name!r} "
                                    f"holds {kind} values", file=where)

    # ------------------------------------------------------------------ month chunks

    def months(self) -> list[tuple[int, int]]:
        """The steps of a run: half calendar months (1st-15th, 16th-end), so that memory stays
        bounded at national volume (about 1.5 million detail records a step)."""
        start, end = self.log.period
        t = _utc(start).replace(day=1, hour=0, minute=0, second=0)
        out = []
        while int(t.timestamp()) < end:
            nxt = schedule.add_months(t, 1)
            mid = t.replace(day=16)
            out += [(int(t.timestamp()), int(mid.timestamp())), (int(mid.timestamp()), int(nxt.timestamp()))]
            t = nxt
        return out

    def run(self, started: float | None = None, workers: int = 1) -> Summary:
        """Write every file, then the run manifest; ``started`` (perf_counter) is when the
        caller began (opening the log and building runs count in the wall time, campaign I3).

        With ``workers`` > 1, that many threads take the reports one at a time, each report from its
        first step to its last (its sequence numbers are its own: MRR 002 App. B, EMRR App. B), so
        the files are the same bytes whatever the number of workers; Polars, NumPy, hashing and
        writing release the interpreter, so the steps of two reports overlap on two cores (memory:
        the steps in flight at once)."""
        started = time.perf_counter() if started is None else started
        summary = Summary(self.rs.name, str(self.log.root), str(self.out_path), warnings=list(self.rs.warnings))
        output = Output(self.out_path, self.log.fingerprint, self.rs, self.resume)
        summary.journal_skipped = output.journal_skipped
        months = self.months()
        for rid in self.rs.reports:
            summary.per_report.setdefault(rid, ReportSummary())
        try:
            with tqdm(total=len(months) * len(self.rs.reports), unit="step", desc="reports", leave=False,
                      disable=(not self.progress) if self.progress is not None else None) as bar:
                if workers <= 1:  # all reports for a half month, then the next
                    for (m0, m1), rid in [(m, rid) for m in months for rid in self.rs.reports]:
                        self.step(rid, m0, m1, output, summary)
                        bar.update()
                else:
                    self._threads(months, output, summary, bar, workers)
            summary.beyond_last_run = self.beyond_last_run()
            # the log's folder as an absolute path: the same log gives the same manifest from any
            # working directory (campaign I4)
            output.finish({"ruleset": self.rs.name, "event_log": str(self.log.root.resolve()),
                           "event_log_fingerprint": self.log.fingerprint,
                           "period": {"start": _utc(self.log.period[0]).isoformat(),
                                      "end": _utc(self.log.period[1]).isoformat()}})
        except WriteError:
            raise  # what is written stays: --resume continues once the disk has room
        except UserError:
            if not self.resume:
                output.discard()
            raise
        finally:
            output.close()
        summary.too_long = dict(self.fmt.too_long)
        summary.wall_seconds = time.perf_counter() - started
        summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return summary

    def step(self, rid: str, m0: int, m1: int, output: Output, summary: Summary) -> None:
        """The files of report ``rid`` for the runs in [m0, m1)."""
        runs = self.runs[rid]
        a, b = np.searchsorted(runs.times, [m0, m1], side="left")
        if b > a:
            rows = self.rows(self.rs.reports[rid], runs, int(a), int(b))
            self.emit(self.rs.reports[rid], runs, rows, output, summary)

    def _threads(self, months: list[tuple[int, int]], output: Output, summary: Summary, bar, workers: int) -> None:
        """Each report's steps in order, ``workers`` reports at a time; the first error stops the
        others at their next step and is raised as it was."""
        stop = threading.Event()
        pending = list(self.rs.reports)
        lock = threading.Lock()

        def work() -> None:
            while not stop.is_set():
                with lock:
                    if not pending:
                        return
                    rid = pending.pop(0)
                for m0, m1 in months:
                    if stop.is_set():
                        return
                    self.step(rid, m0, m1, output, summary)
                    with lock:
                        bar.update()
                self.selection.forget(rid)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emrr-report") as pool:
            futures = [pool.submit(work) for _ in range(workers)]
            failed = None
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:  # noqa: BLE001 - the first is raised once all have stopped
                    stop.set()
                    failed = failed or exc
            if failed is not None:
                raise failed

    def beyond_last_run(self) -> dict[str, int]:
        """For each "previously unreported" report, the events it selects that no run of the period
        can carry: those that happened after the last happening run's window, or that the reporting
        system learned of after that run (EMRR §3.1.6). Never silent (campaign 3.44: a log whose
        runs an outage cancelled gave no file and said nothing); the end of any period has some."""
        found = {}
        for rid, report in self.rs.reports.items():
            if ASSIGNMENTS[report.assignment].rows is not previously_unreported:
                continue
            runs = self.runs[rid]
            happening = np.flatnonzero(runs.happens)
            events = self.log.events(report.event_types)
            if len(happening):
                last = happening[-1]
                events = events.filter((pl.col("occurred_at") > ts(runs.window_end[last]))
                                       | (pl.col("notified_at") > ts(runs.times[last])))
            n = int(collect(events.select(pl.len())).item())
            if n:
                found[rid] = n
        return found

    def rows(self, report: Report, runs: schedule.Runs, a: int, b: int) -> pl.DataFrame:
        """The detail rows of runs a..b-1 by the report's assignment (rules/selection.py)."""
        return ASSIGNMENTS[report.assignment].rows(self.selection, report, runs, a, b)

    # ------------------------------------------------------------------ files

    def emit(self, report: Report, runs, rows: pl.DataFrame, output: Output, summary: Summary) -> None:
        stats = summary.per_report.setdefault(report.id, ReportSummary())
        if rows.height == 0:
            return
        for name, (source, mapping) in report.derive.items():  # e.g. Failed -> "Failure" (MRR v2.0 002:L538)
            rows = rows.with_columns(pl.col(source).cast(pl.String).replace_strict(mapping, default=None,
                                                                                   return_dtype=pl.String).alias(name))
        for when_null, columns in report.blank:  # e.g. no Migration Common File: no Device IDs (002:L557-561)
            rows = emptied(rows, rows[when_null].is_null(), columns)
        mandatory = [f.source for f in report.detail if f.source_kind == "column" and f.mandatory]
        addressed = pl.col("recipient").is_not_null()
        own: dict[tuple, dict] = {}
        if "own" in rows.columns:  # a recipient's own figures go to its header (peer_ranking)
            for row in rows.filter(addressed & pl.col("own")).iter_rows(named=True):
                own[(row["created"], row["run_idx"], row["recipient"])] = row
            addressed = addressed & ~pl.col("own")
        # e.g. a GPF with no meter on its hub: no MPxN, no recipient (one filter of the rows: one copy)
        rows = rows.filter(pl.all_horizontal([addressed, *[pl.col(c).is_not_null() for c in dict.fromkeys(mandatory)]]))
        # the order of the records (by run, recipient and the report's order_by, ties as they came)
        # from the key columns alone; the records themselves are gathered and written a chunk of whole
        # files at a time, so a step's text is never all in memory at once
        order = ["created", "run_idx", "recipient", *report.order_by]
        perm = pl.Series("_i", order_of(rows.select(order)), dtype=pl.UInt32)
        groups = (rows.select("created", "run_idx", "recipient")[perm]
                  .group_by(["created", "run_idx", "recipient"], maintain_order=True).len())
        files = []  # (created, run_idx, recipient, first record in perm, count), in order of first record
        offset = 0
        for created, run_idx, recipient, count in groups.iter_rows():
            files.append((created, run_idx, recipient, offset, count))
            offset += count
        seen = {(c, i, r) for c, i, r, _, _ in files}
        files += [(c, i, r, offset, 0) for (c, i, r) in own if (c, i, r) not in seen]
        content = self._content(rows, report)
        chunk = (0, 0, b"", np.zeros(1, dtype=np.int64), None)  # records lo..hi of perm, formatted, starts, which
        for created, run_idx, recipient, first, count in sorted(files, key=lambda f: (f[0], f[1], f[2])):
            if not count and not self.rs.produce_empty and (created, run_idx, recipient) not in own:
                continue
            if count and not (chunk[0] <= first and first + count <= chunk[1]):
                chunk = self._chunk(rows, perm, report, first, files, content)
            body = self._body(chunk, first, count) if count else b""
            self._write_file(report, runs, int(created), int(run_idx), recipient, body, count, output, stats, summary,
                             own.get((created, run_idx, recipient), {}))

    CHUNK_RECORDS = 250_000  # records formatted at once (whole files; a larger file alone)

    @staticmethod
    def _content(rows: pl.DataFrame, report: Report) -> np.ndarray | None:
        """For rows of listed_parties (selection.fan_out), a number alike for rows alike in every
        field of the layout (made from one row, with the same columns hidden), or None: the records
        of such rows are formatted once. Not when the layout reads the recipient itself."""
        if SOURCE not in rows.columns:
            return None
        read = {f.source for f in report.detail if f.source_kind == "column"}
        read |= {report.derive[c][0] for c in read if c in report.derive}
        read |= {c for when_null, columns in report.blank for c in (when_null, *columns)}
        if "recipient" in read:
            return None
        return (rows[SOURCE].cast(pl.Int64) * (1 << 32) + rows[VARIANT].cast(pl.Int64)).to_numpy()

    def _chunk(self, rows: pl.DataFrame, perm: pl.Series, report: Report, first: int, files: list,
               content: np.ndarray | None) -> tuple:
        """Records ``first``.. of ``perm``: as many whole files of ``files`` (in order of their first
        record) as fit in CHUNK_RECORDS (at least one), gathered and formatted, as (lo, hi, bytes,
        starts, which): record ``k`` of the chunk is the formatted record ``which[k]`` (its own, ``k``,
        when ``which`` is None)."""
        hi = first
        for _, _, _, start, count in files[bisect.bisect_left(files, first, key=lambda f: f[3]):]:
            if hi > first and start + count - first > self.CHUNK_RECORDS:
                break
            hi = start + count
        idx = perm[first:hi].to_numpy()
        if content is None:
            data, starts = self.fmt.details(rows[idx], report)
            return first, hi, data, starts, None
        # each record alike once, in the order it first comes (a first file's records stay in one piece)
        _, at, which = np.unique(content[idx], return_index=True, return_inverse=True)
        order = np.argsort(at, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        data, starts = self.fmt.details(rows[idx[at[order]]], report)
        return first, hi, data, starts, rank[which.reshape(-1)]

    @staticmethod
    def _body(chunk: tuple, first: int, count: int) -> bytes:
        """The records ``first``..``first+count-1`` of ``perm`` from their chunk, as one text."""
        lo, _, data, starts, which = chunk
        if which is None:
            return data[starts[first - lo]: starts[first - lo + count]]
        records = which[first - lo: first - lo + count]
        if records[-1] - records[0] == count - 1 and (count == 1 or bool(np.all(np.diff(records) == 1))):
            return data[starts[records[0]]: starts[records[-1] + 1]]
        view = memoryview(data)
        return b"".join([view[starts[r]: starts[r + 1]] for r in records.tolist()])

    def _write_file(self, report, runs, created, run_idx, recipient, body, count, output, stats, summary,
                    own: dict) -> None:
        if not self.recipient_pattern.fullmatch(recipient):  # it becomes a folder and a file name
            raise UserError(f"recipient {recipient!r} does not match the ruleset's recipients.pattern "
                            f"{self.rs.recipient_pattern!r}", file=str(self.log.root))
        party = None
        if self.party_of is not None:
            party = self.party_of.get(recipient)
            if party is None:
                raise UserError(f"recipient {recipient!r} is not a user_id of the parties table; expected every "
                                "recipient there with its Party Signifier", file=str(self.log.root / "parties"))
        key = (report.id, recipient)
        self.sequence[key] += 1
        sequence = self.sequence[key]
        if sequence > self.rs.sequence_max:
            raise UserError(f"sequence number {sequence} of {report.id} for {recipient} exceeds the ruleset's maximum")
        values = {"report_id": report.id, "recipient": recipient, "sequence": sequence, "title": report.title,
                  "created": created, "window_start": int(runs.window_start[run_idx]),
                  "window_end": int(runs.window_end[run_idx]), "rows_count": count}
        trailer = self.fmt.record(self.rs.trailer, values) if self.rs.trailer else b""
        content = self.fmt.record(report.header_fields(self.rs), values, own) + body + trailer
        entry = {"path": self.rs.file_path(report.id, recipient, sequence, _utc(created), party),
                 "report_id": report.id, "recipient": recipient,
                 "sequence": sequence, "created": _utc(created).isoformat(),
                 "window_start": _utc(values["window_start"]).isoformat(),
                 "window_end": _utc(values["window_end"]).isoformat(), "records": count,
                 "sha256": _sha256(content)}
        if not output.write(entry, content):
            with output.lock_entries:
                summary.resumed_files += 1
        stats.files += 1
        stats.records += count


FEW_VALUES = 4096  # text of at most this many values is ordered by its place among them (order_of)


def order_of(keys: pl.DataFrame) -> np.ndarray:
    """The row indices ordering ``keys`` by its columns in turn, ties kept in the order they came and
    nulls first: what ``keys.with_row_index().sort(keys.columns, maintain_order=True)`` gives, from
    integer keys (a sort of text compares every row's bytes: half a second for a step of S1MIG-001).
    Integers, times and booleans are their values; text of few values (a recipient, a group) its place
    among them; text of many values (an Installation ID) and what follows it are compared only among
    the rows equal in every column before it. Other types: Polars' sort."""
    n = keys.height
    arrays: list[np.ndarray] = []  # most significant first
    rest: list[str] = []
    for i, column in enumerate(keys.columns):
        values = keys[column]
        if values.dtype == pl.String:
            distinct = values.unique().drop_nulls()
            if len(distinct) > FEW_VALUES:
                rest = keys.columns[i:]
                break
            distinct = distinct.sort()
            place = pl.Series(np.arange(len(distinct), dtype=np.int64))
            arrays.append(values.replace_strict(distinct, place, default=None, return_dtype=pl.Int64)
                          .fill_null(-1).to_numpy())
        elif values.dtype.is_integer() or values.dtype == pl.Boolean:
            if values.null_count():
                arrays.append(values.is_not_null().to_numpy())
            arrays.append(values.cast(pl.Int64).fill_null(0).to_numpy())
        else:
            return keys.with_row_index("_i").sort(keys.columns, maintain_order=True)["_i"].to_numpy()
    perm = np.lexsort(arrays[::-1]) if arrays else np.arange(n)  # stable; its last key is the first
    if not rest or n < 2:
        return perm
    # the rows equal in every column before ``rest`` (few, or a whole file when ``rest`` is all of
    # order_by), ordered among themselves by ``rest``
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for a in arrays:
        ordered = a[perm]
        change[1:] |= ordered[1:] != ordered[:-1]
    group = np.cumsum(change) - 1
    size = np.bincount(group)
    tied = np.flatnonzero(size[group] > 1)  # places in ``perm`` of rows sharing their group
    if len(tied):
        part = keys[perm[tied]].select(rest).with_columns(pl.Series("_group", group[tied]))
        inner = part.with_row_index("_i").sort(["_group", *rest], maintain_order=True)["_i"].to_numpy()
        perm[tied] = perm[tied][inner]
    return perm


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def report(events: str | Path, out: str | Path, ruleset: Ruleset, resume: bool = False,
           progress: bool | None = None, workers: int = 1) -> Summary:
    """Run ``ruleset`` over the event log in ``events`` into ``out`` (``workers``: Engine.run)."""
    started = time.perf_counter()
    log = EventLog.open(events)
    return Engine(ruleset, log, out, resume=resume, progress=progress).run(started, workers=workers)


__all__ = ["Engine", "Summary", "WriteError", "lock_folder", "report"]
