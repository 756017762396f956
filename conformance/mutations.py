"""Mutation operators: one defect each, applied to a copy of a valid delivery.

A *delivery* is a directory of report files as the report engine writes them
(``<SEC Party ID>/<file name>.csv``). An operator is a small function that picks its target in
the delivery (the first suitable file and record in a fixed order, so the same delivery always
gives the same mutation), applies ONE defect, and returns what it changed (file, line) and what
the checker must report: the exact set of error findings (file, line, check). Each operator
declares its check ids: the error checks it makes the checker report, and no other error check.
Warnings (``late-record``, ``summary-reconciliation-incomplete``) are not part of the contract.

``OPERATORS[id].apply(source, target)`` copies ``source`` to ``target`` (hard links where it
can: every change replaces a file, never writes into one) and applies the operator there. It
raises ``NotApplicable`` when the delivery holds no target (an ECOSMIG-003 file with a Success
record, a device with two failed attempts, ...).

Operators read layouts from the ruleset (fields by name, header values by their source) and find
their reports by the part they play (``REPORT_ROLES``: the detail report of successes, the
snapshot summary, ...), not by id.

Error checks that no defect of a delivery's content can produce (``NOT_PRODUCIBLE``):

- ``file-unreadable``: a file the operating system cannot read (permissions, an I/O error, a
  dangling link) is a property of the file system, not of the delivery's bytes or names; a
  corpus ships bytes. (tests/test_conformance_checker.py covers it with a dangling symlink.)
- the ground-truth family (``gt-*``): these compare the delivery with the event log it was made
  from (``emrr check --events``); the operators change the delivery alone and are checked
  without an event log.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.crossfile import FAILURE, SUCCESS, ReportReconciliation, Roles, declared_reconciliations
from emrr.conformance.findings import Collector
from emrr.conformance.formats import parse_one, show
from emrr.conformance.names import NamePattern
from emrr.conformance.records import header_of
from emrr.contract import INSTALL, MIGRATION_SUCCESS
from emrr.rules import ruleset as rules
from emrr.rules.ruleset import Field, Report, Ruleset
from emrr.rules.schedule import run_times, window

NOT_PRODUCIBLE = {
    "file-unreadable": "a file the system cannot read (permissions, I/O error, dangling link) is a property "
                       "of the file system, not of the delivery's content",
    **{c.id: "a ground-truth check: it compares the delivery with the event log it was made from (--events), "
             "which a defect of the delivery alone cannot make it report"
       for c in CATALOGUE.values() if c.family == "ground-truth"},
}
ERROR_CHECKS = frozenset(c.id for c in CATALOGUE.values() if c.severity == "error")
DAY = 86400


class NotApplicable(Exception):
    """The delivery holds no target for the operator."""


@dataclass(frozen=True, order=True)
class Expected:
    """An error finding the checker must report; ``line`` None for the whole file."""

    file: str
    line: int | None
    check: str

    def key(self) -> tuple:
        return (self.file, -1 if self.line is None else self.line, self.check)


@dataclass(frozen=True)
class Change:
    """What an operator function did: the defect's file and line, a sentence, the findings due."""

    file: str
    line: int | None
    description: str
    expected: tuple[Expected, ...]


@dataclass(frozen=True)
class Mutation:
    """One operator applied to one delivery."""

    operator: str
    description: str  # what was done, concretely (file, field, values)
    file: str  # the file changed (relative to the delivery, after any rename)
    line: int | None  # the line changed; None for a change of the whole file or its name
    expected: tuple[Expected, ...]  # exactly the error findings the checker must report

    @property
    def checks(self) -> frozenset[str]:
        return frozenset(e.check for e in self.expected)


def _always(rs: Ruleset) -> bool:
    return True


@dataclass(frozen=True)
class Operator:
    id: str
    checks: frozenset[str]
    description: str
    fn: Callable[[Delivery], Change]
    # whether a ruleset's deliveries can hold its target at all (a SEC Party Signifier in the names,
    # padded sequence numbers, a declared reconciliation): the corpus of a ruleset skips the others
    applies: Callable[[Ruleset], bool] = _always

    def apply(self, source: str | Path, target: str | Path, ruleset: Ruleset | None = None) -> Mutation:
        """Copy the delivery ``source`` to ``target`` (which must not exist or be empty) and apply
        this operator to the copy."""
        rs = ruleset if ruleset is not None else rules.load(None)
        copy_delivery(source, target)
        return self.mutate(Delivery(target, rs))

    def mutate(self, d: Delivery) -> Mutation:
        """Apply this operator to the delivery ``d`` in place. An operator that looks for a field
        its target's layout does not have (``next`` finds none: a field of the EMRR's layouts in a
        SMETS1 delivery) is not applicable."""
        try:
            change = self.fn(d)
        except StopIteration:
            raise NotApplicable(f"{self.id}: the layouts of ruleset {d.rs.name} lack a field it edits") from None
        mutation = Mutation(self.id, change.description, change.file, change.line,
                            tuple(sorted(set(change.expected), key=Expected.key)))
        if mutation.checks != self.checks:  # an operator that contradicts its declaration is a bug
            raise AssertionError(f"operator {self.id} declares {sorted(self.checks)} but expects "
                                 f"{sorted(mutation.checks)}")
        return mutation


OPERATORS: dict[str, Operator] = {}


def operator(op_id: str, checks: set[str], description: str, applies: Callable[[Ruleset], bool] = _always):
    """Register an operator function under ``op_id`` with the error checks it must produce, and
    the rulesets whose deliveries it applies to (``applies``)."""
    unknown = set(checks) - ERROR_CHECKS
    if unknown:
        raise ValueError(f"{op_id}: not error checks of the catalogue: {sorted(unknown)}")

    def register(fn: Callable[[Delivery], Change]) -> Callable[[Delivery], Change]:
        if op_id in OPERATORS:
            raise ValueError(f"operator {op_id} registered twice")
        OPERATORS[op_id] = Operator(op_id, frozenset(checks), description, fn, applies)
        return fn

    return register


def copy_delivery(source: str | Path, target: str | Path) -> None:
    """Copy the report files (``*.csv``, not hidden) of ``source`` to ``target``, as hard links
    where the file system allows it (a Delivery never writes into an existing file)."""
    source, target = Path(source), Path(target)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target}: expected a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(".csv"):
                continue
            src = Path(folder) / name
            dst = target / src.relative_to(source)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)


# --------------------------------------------------------------------------- reports by role

# The part a report plays, read from its definition in the ruleset (as crossfile.Roles reads a
# field's), so that an operator asks for "the detail report of successes", not for ECOSMIG-001,
# and a report a ruleset adds in the same part is a target too. Delivery.of, first and series
# take role names (or report ids).
REPORT_ROLES: dict[str, Callable[[Report], bool]] = {
    "successes": lambda r: r.kind == "detail" and len(r.event_types) == 1 and r.event_types[0] in SUCCESS,
    "failures": lambda r: r.kind == "detail" and len(r.event_types) == 1 and r.event_types[0] in FAILURE,
    "installs": lambda r: r.kind == "detail" and r.event_types == (INSTALL,),
    "history": lambda r: r.kind == "detail" and bool(r.status),  # a status per device over several event types
    "snapshot": lambda r: r.kind == "summary" and not r.event_types,  # a count of devices, not of events
    "activity": lambda r: r.kind == "summary" and bool(r.counts),  # counts of events by group
}


def reports_in_role(rs: Ruleset, role: str) -> list[str]:
    """The ids of the ruleset's reports that play ``role`` (a name of REPORT_ROLES), in its order."""
    return [rid for rid, report in rs.reports.items() if REPORT_ROLES[role](report)]


# --------------------------------------------------------------------------- a delivery to edit

# A file's bytes as physical lines and fields, with no CSV reading: what Delivery's raw edits are
# made of, and what a fuzzer mutating bytes in memory uses too.


def split_lines(data: bytes, terminator: str = "\r\n") -> list[bytes]:
    """``data`` split at ``terminator`` (the last item is b"" when it ends with one)."""
    return data.split(terminator.encode())


def join_lines(lines: list[bytes], terminator: str = "\r\n") -> bytes:
    return terminator.encode().join(lines)


def replace_field(line: bytes, index: int, value: bytes, delimiter: str = ",") -> bytes:
    """``line`` with its field ``index`` (split at ``delimiter``, no quoting) replaced by ``value``."""
    parts = line.split(delimiter.encode())
    parts[index] = value
    return delimiter.encode().join(parts)



@dataclass(frozen=True)
class ReportFile:
    """A report file of the delivery, as its name says."""

    rel: str
    report: Report
    recipient: str
    sequence: int
    created: int  # seconds since the epoch, UTC
    party: str | None = None  # the SEC Party Signifier its name gives ({party}), if any


class Delivery:
    """A delivery being mutated: its report files indexed by name, records read and written with
    the csv module in the ruleset's dialect. Every write replaces the file (unlink, then write)."""

    def __init__(self, root: str | Path, rs: Ruleset):
        self.root = Path(root)
        self.rs = rs
        self.pattern = NamePattern(rs)
        self.folder = rs.folder
        self.encoding = rs.encoding
        self.files: dict[str, ReportFile] = {}
        self._rows: dict[str, list[list[str]]] = {}
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                rel = (Path(folder) / name).relative_to(self.root).as_posix()
                if self.pattern.is_candidate(name):
                    self._index(rel)

    def _index(self, rel: str) -> None:
        out = Collector()
        name = self.pattern.read(rel, out)
        if out.kept or name.report_id is None or name.sequence is None or name.created is None:
            return
        self.files[rel] = ReportFile(rel, self.rs.reports[name.report_id], name.recipient, name.sequence, name.created,
                                     name.party)

    # ------------------------------------------------------------------ choosing targets

    def report_ids(self, *names: str) -> list[str]:
        """Report ids for role names (REPORT_ROLES) or report ids, in that order of preference."""
        ids: list[str] = []
        for name in names:
            ids += [rid for rid in (reports_in_role(self.rs, name) if name in REPORT_ROLES else [name])
                    if rid not in ids]
        return ids

    def report(self, role: str) -> Report:
        """The (first) report of the ruleset that plays ``role``."""
        ids = reports_in_role(self.rs, role)
        if not ids:
            raise NotApplicable(f"the ruleset has no report of {role}")
        return self.rs.reports[ids[0]]

    def of(self, *report_ids: str, min_details: int = 1, where: Callable[[ReportFile], bool] | None = None
           ) -> list[ReportFile]:
        """Files of the given reports (role names or ids, in that order of preference, then by
        recipient and sequence) with at least ``min_details`` detail records."""
        rank = {rid: k for k, rid in enumerate(self.report_ids(*report_ids))}
        found = [f for f in self.files.values() if f.report.id in rank and len(self.details(f.rel)) >= min_details
                 and (where is None or where(f))]
        return sorted(found, key=lambda f: (rank[f.report.id], f.recipient, f.sequence, f.rel))

    def first(self, *report_ids: str, min_details: int = 1, where: Callable[[ReportFile], bool] | None = None
              ) -> ReportFile:
        found = self.of(*report_ids, min_details=min_details, where=where)
        if not found:
            raise NotApplicable(f"no file of {', '.join(report_ids)} with at least {min_details} detail record(s)")
        return found[0]

    def series(self, *report_ids: str, min_files: int = 1) -> list[list[ReportFile]]:
        """The files of each (report, recipient), by sequence number; series of at least
        ``min_files`` files, in the order of preference of ``report_ids`` (role names or ids)."""
        groups: dict[tuple[str, str], list[ReportFile]] = defaultdict(list)
        for f in self.files.values():
            groups[(f.report.id, f.recipient)].append(f)
        rank = {rid: k for k, rid in enumerate(self.report_ids(*report_ids))}
        keys = sorted((k for k in groups if k[0] in rank and len(groups[k]) >= min_files),
                      key=lambda k: (rank[k[0]], k[1]))
        if not keys:
            raise NotApplicable(f"no series of {min_files} or more files of {', '.join(report_ids)}")
        return [sorted(groups[k], key=lambda f: (f.sequence, f.created)) for k in keys]

    # ------------------------------------------------------------------ layouts

    def detail_index(self, report: Report, name: str) -> int:
        for i, f in enumerate(report.detail):
            if f.name == name:
                return i
        raise NotApplicable(f"{report.id} has no field {name!r}")

    def detail_source(self, report: Report, source: str) -> int:
        for i, f in enumerate(report.detail):
            if f.source_kind == "column" and f.source == source:
                return i
        raise NotApplicable(f"{report.id} has no field from column {source!r}")

    def header_index(self, source: str, report: Report | None = None) -> int:
        """The place of a header value (``report_id``, ``window_start``, ...) in ``report``'s header
        layout (its own, else the ruleset's); NotApplicable when the layout has none."""
        layout = header_of(self.rs, report)
        found = next((i for i, f in enumerate(layout) if f.source_kind == "value" and f.source == source), None)
        if found is None:
            raise NotApplicable(f"the header of {report.id if report else 'the ruleset'} has no {source} field")
        return found

    def trailer_index(self, source: str) -> int:
        found = next((i for i, f in enumerate(self.rs.trailer) if f.source_kind == "value" and f.source == source),
                     None)
        if found is None:
            raise NotApplicable(f"the ruleset's files have no trailer with a {source} field")
        return found

    def time_text(self, seconds: int) -> str:
        return show(seconds, self.rs.datetime_format)

    def parse_time(self, text: str) -> int | None:
        return parse_one(text, "datetime", self.rs.datetime_format, self.rs.date_format)

    # ------------------------------------------------------------------ records

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def rows(self, rel: str) -> list[list[str]]:
        """The file's records (a copy); each is one physical line in a valid delivery."""
        if rel not in self._rows:
            text = self.read_bytes(rel).decode(self.encoding)
            self._rows[rel] = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=self.rs.delimiter,
                                                         quotechar=self.rs.quote_char)]
        return [list(r) for r in self._rows[rel]]

    def details(self, rel: str) -> list[tuple[int, list[str]]]:
        """(line, fields) of the detail records."""
        f = self.files.get(rel)
        kind = f.report.detail[0].source if f is not None else "10"
        rows = self.rows(rel)
        last = len(rows) - (1 if self.rs.trailer else 0)  # the MRR's files end with a detail record (no trailer)
        return [(k + 1, r) for k, r in enumerate(rows) if 0 < k < last and r and r[0] == kind]

    def encode_rows(self, rows: list[list[str]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.rs.delimiter, quotechar=self.rs.quote_char,
                   lineterminator=self.rs.line_terminator, quoting=csv.QUOTE_MINIMAL).writerows(rows)
        return buffer.getvalue().encode(self.encoding)

    def write_rows(self, rel: str, rows: list[list[str]]) -> None:
        self.write_bytes(rel, self.encode_rows(rows))
        self._rows[rel] = [list(r) for r in rows]

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a hard link to the source is replaced, not written into
        path.write_bytes(data)
        self._rows.pop(rel, None)

    def move(self, rel: str, new_rel: str) -> str:
        target = self.root / new_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.root / rel, target)
        self.files.pop(rel, None)
        if rel in self._rows:
            self._rows[new_rel] = self._rows.pop(rel)
        self._index(new_rel)
        return new_rel

    def name_for(self, report_id: str, recipient: str, sequence: int, created: int, party: str | None = None) -> str:
        """A file's path as the ruleset names it (``party``: the SEC Party Signifier, the recipient's
        own when None)."""
        party = recipient if party is None else party
        seq = str(sequence).zfill(self.rs.sequence_padding) if self.rs.sequence_padding else str(sequence)
        name = self.rs.file_pattern.format(report_id=report_id, recipient=recipient, sequence=seq, party=party,
                                           created=dt.datetime.fromtimestamp(created, dt.UTC))
        folder = self.folder.format(recipient=recipient, report_id=report_id, party=party) if self.folder else ""
        return f"{folder.strip('/')}/{name}" if folder else name

    def renamed(self, f: ReportFile, part: str, text: str) -> str:
        """``f``'s path with one part of its name (a group of the name pattern: ``sequence``,
        ``party``, ...) replaced by ``text``; NotApplicable when the pattern has no such part."""
        folder, _, base = f.rel.rpartition("/")
        m = self.pattern.regex.fullmatch(base)
        if m is None or part not in m.groupdict():
            raise NotApplicable(f"the ruleset's file names have no {part}")
        base = base[:m.start(part)] + text + base[m.end(part):]
        return f"{folder}/{base}" if folder else base

    def renumber(self, f: ReportFile, sequence: int | None = None, created: int | None = None) -> str:
        """Give a file another sequence number and/or creation time: its name and its header."""
        sequence = f.sequence if sequence is None else sequence
        created = f.created if created is None else created
        rows = self.rows(f.rel)
        rows[0][self.header_index("sequence", f.report)] = str(sequence)
        rows[0][self.header_index("created", f.report)] = self.time_text(created)
        new = self.name_for(f.report.id, f.recipient, sequence, created, f.party)
        self.write_rows(f.rel, rows)
        return self.move(f.rel, new)


    # ------------------------------------------------------------------ raw edits
    # A defect a CSV writer would not write (a bare quote, a byte that is not UTF-8, a record
    # split wrongly) is made on the file's lines as bytes: split at the ruleset's line terminator
    # and, within a line, at its delimiter, with no quoting. Text is encoded in the ruleset's
    # encoding with surrogateescape, so "\udcff" stands for the byte FF (as os.fsencode does).

    def encode(self, text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode(self.encoding, "surrogateescape")

    def lines(self, rel: str) -> list[bytes]:
        """The file's physical lines (the last is b"" when the file ends with a line terminator)."""
        return split_lines(self.read_bytes(rel), self.rs.line_terminator)

    def write_lines(self, rel: str, lines: list[bytes]) -> None:
        self.write_bytes(rel, join_lines(lines, self.rs.line_terminator))

    def set_field(self, rel: str, line: int, index: int, value: str | bytes, repeat: int = 1) -> bytes:
        """Replace field ``index`` of ``line`` with ``value`` (``repeat`` times over); the old value."""
        lines = self.lines(rel)
        old = lines[line - 1].split(self.rs.delimiter.encode())[index]
        lines[line - 1] = replace_field(lines[line - 1], index, self.encode(value) * repeat, self.rs.delimiter)
        self.write_lines(rel, lines)
        return old

    def set_line(self, rel: str, line: int, text: str | bytes) -> bytes:
        """Replace line ``line``; the old line."""
        lines = self.lines(rel)
        old, lines[line - 1] = lines[line - 1], self.encode(text)
        self.write_lines(rel, lines)
        return old

    def insert_line(self, rel: str, line: int, text: str | bytes, recount: bool = False) -> None:
        """Insert ``text`` as line ``line`` (the lines from there on move down); with ``recount``,
        the trailer's Rows Count is made right again, so that only the defect meant is there."""
        lines = self.lines(rel)
        lines.insert(line - 1, self.encode(text))
        self.write_lines(rel, self._recounted(rel, lines) if recount else lines)

    def delete_line(self, rel: str, line: int, recount: bool = False) -> bytes:
        """Remove line ``line`` and return it; ``recount`` as for ``insert_line``."""
        lines = self.lines(rel)
        old = lines.pop(line - 1)
        self.write_lines(rel, self._recounted(rel, lines) if recount else lines)
        return old

    def move_line(self, rel: str, line: int, to: str, to_line: int) -> None:
        """A record taken out of one file and put into another (or the same) at ``to_line``,
        both Rows Counts made right: a record delivered in the wrong file."""
        self.insert_line(to, to_line, self.delete_line(rel, line, recount=True), recount=True)

    def _recounted(self, rel: str, lines: list[bytes]) -> list[bytes]:
        if not self.rs.trailer:
            return lines  # no Rows Count to keep right
        f = self.files.get(rel)
        detail = (f.report.detail[0].source if f is not None else "10").encode() + self.rs.delimiter.encode()
        trailer = self.rs.trailer[0].source.encode() + self.rs.delimiter.encode()
        count = sum(1 for line in lines if line.startswith(detail))
        out = list(lines)
        for k, line in enumerate(out):
            if line.startswith(trailer):
                parts = line.split(self.rs.delimiter.encode())
                parts[self.trailer_index("rows_count")] = str(count).encode()
                out[k] = self.rs.delimiter.encode().join(parts)
        return out

    def write(self, rel: str, text: str | bytes) -> None:
        """A file of ``rel`` holding exactly ``text`` (created or replaced)."""
        self.write_bytes(rel, self.encode(text))
        if self.pattern.is_candidate(rel.rpartition("/")[2]):
            self._index(rel)

    def append(self, rel: str, text: str | bytes) -> None:
        self.write_bytes(rel, self.read_bytes(rel) + self.encode(text))

    def prepend(self, rel: str, text: str | bytes) -> None:
        self.write_bytes(rel, self.encode(text) + self.read_bytes(rel))

    def replace(self, rel: str, old: str | bytes, new: str | bytes) -> None:
        """Every ``old`` of the file's bytes replaced with ``new``."""
        self.write_bytes(rel, self.read_bytes(rel).replace(self.encode(old), self.encode(new)))

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink()
        self.files.pop(rel, None)
        self._rows.pop(rel, None)

    def symlink(self, rel: str) -> None:
        """A dangling symbolic link named ``rel`` (a file the system cannot read)."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(self.root / "nowhere" / "at-all.csv")

    def edit(self, step: dict) -> Mutation | None:
        """One edit given as data: ``{"op": <a name of EDITS>, "file": ..., <its arguments>}``, or
        ``{"operator": <an id of OPERATORS>}`` (which returns its Mutation)."""
        if "operator" in step:
            return OPERATORS[step["operator"]].mutate(self)
        args = dict(step)
        op = args.pop("op")
        if op not in EDITS:
            raise ValueError(f"unknown edit {op!r}; expected one of {sorted(EDITS)}")
        EDITS[op](self, **args)
        return None


# The edits a test or a case file names as data (Delivery.edit), with their arguments.
EDITS: dict[str, Callable[..., object]] = {
    "set_field": lambda d, file, line, index, value, repeat=1: d.set_field(file, line, index, value, repeat),
    "set_line": lambda d, file, line, text: d.set_line(file, line, text),
    "insert_line": lambda d, file, line, text, recount=False: d.insert_line(file, line, text, recount),
    "delete_line": lambda d, file, line, recount=False: d.delete_line(file, line, recount),
    "move_line": lambda d, file, line, to, to_line: d.move_line(file, line, to, to_line),
    "write": lambda d, file, text: d.write(file, text),
    "append": lambda d, file, text: d.append(file, text),
    "prepend": lambda d, file, text: d.prepend(file, text),
    "replace": lambda d, file, old, new: d.replace(file, old, new),
    "rename": lambda d, file, to: d.move(file, to),
    "renumber": lambda d, file, sequence: d.renumber(d.files[file], sequence=sequence),
    "delete": lambda d, file: d.delete(file),
    "symlink": lambda d, file: d.symlink(file),
}


def _change(file: str, line: int | None, description: str, *expected: tuple) -> Change:
    return Change(file, line, description, tuple(Expected(*e) for e in expected))


def _last_line(d: Delivery, rel: str) -> int:
    return len(d.rows(rel))


def _set_detail(d: Delivery, f: ReportFile, line: int, name: str, value: str) -> str:
    """Set one field of the record at ``line``; return the old value."""
    rows = d.rows(f.rel)
    i = d.detail_index(f.report, name)
    old = rows[line - 1][i]
    rows[line - 1][i] = value
    d.write_rows(f.rel, rows)
    return old


# =========================================================================== file operators


@operator("lf-line-endings", {"line-ending"}, "Every line of a file ends with LF instead of CRLF.")
def lf_line_endings(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    d.write_bytes(f.rel, d.read_bytes(f.rel).replace(b"\r\n", b"\n"))
    return _change(f.rel, 1, "line endings CRLF -> LF", (f.rel, 1, "line-ending"))


@operator("cr-line-endings", {"line-ending"}, "Every line of a file ends with CR alone (old Mac style).")
def cr_line_endings(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    d.write_bytes(f.rel, d.read_bytes(f.rel).replace(b"\r\n", b"\r"))
    return _change(f.rel, 1, "line endings CRLF -> CR", (f.rel, 1, "line-ending"))


@operator("last-line-unterminated", {"line-ending"}, "The trailer has no line terminator (the file ends without CRLF).")
def last_line_unterminated(d: Delivery) -> Change:
    f = d.first("activity", "snapshot", "successes")
    d.write_bytes(f.rel, d.read_bytes(f.rel).removesuffix(d.rs.line_terminator.encode()))
    last = _last_line(d, f.rel)
    return _change(f.rel, last, "final CRLF removed", (f.rel, last, "line-ending"))


@operator("bom", {"bom"}, "The file starts with a UTF-8 byte order mark.")
def bom(d: Delivery) -> Change:
    f = d.first("history", "successes")
    d.write_bytes(f.rel, codecs.BOM_UTF8 + d.read_bytes(f.rel))
    return _change(f.rel, 1, "UTF-8 BOM (EF BB BF) prepended", (f.rel, 1, "bom"))


@operator("latin-1", {"encoding"}, "The file is encoded Latin-1 and holds a non-ASCII character (é), which is "
          "not UTF-8.")
def latin_1(d: Delivery) -> Change:
    f = d.first("snapshot", "successes")
    line, row = d.details(f.rel)[0]
    rows = d.rows(f.rel)
    name = _field_like(d, f, row, "Device Model", "text")
    i = d.detail_index(f.report, name)
    rows[line - 1][i] = rows[line - 1][i][: f.report.detail[i].max_length - 1] + "é"
    text = d.encode_rows(rows).decode(d.encoding)
    d.write_bytes(f.rel, text.encode("latin-1"))
    return _change(f.rel, line, f"{name} {rows[line - 1][i]!r}, file re-encoded as Latin-1 (é is byte E9)",
                   (f.rel, line, "encoding"))


@operator("utf-16", {"encoding"}, "The file is encoded UTF-16 (with its BOM): NUL bytes, not UTF-8 text.")
def utf_16(d: Delivery) -> Change:
    f = d.first("installs", "successes")
    data = d.read_bytes(f.rel).decode(d.encoding).encode("utf-16")
    d.write_bytes(f.rel, data)
    line = data.count(b"\n", 0, data.find(b"\x00")) + 1
    return _change(f.rel, None, "file re-encoded as UTF-16", (f.rel, line, "encoding"))


@operator("binary-garbage", {"encoding"}, "A report file holds binary data (a PNG image), not text.")
def binary_garbage(d: Delivery) -> Change:
    f = d.first("successes", "installs")
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    d.write_bytes(f.rel, data)
    line = data.count(b"\n", 0, data.find(b"\x00")) + 1
    return _change(f.rel, None, "content replaced by binary data", (f.rel, line, "encoding"))


@operator("empty-file", {"empty-report"}, "A report file of 0 bytes.")
def empty_file(d: Delivery) -> Change:
    f = d.first("failures", "installs", "successes")
    d.write_bytes(f.rel, b"")
    return _change(f.rel, None, "content removed (0 bytes)", (f.rel, None, "empty-report"))


@operator("truncated-mid-record", {"line-ending", "record-order", "field-count"},
          "The file is cut in the middle of its last detail record (a partial transfer): no trailer, a short "
          "record, no final line terminator.")
def truncated_mid_record(d: Delivery) -> Change:
    if not d.rs.trailer:
        raise NotApplicable("without a trailer, a file cut after a record is not known to be cut")
    f = d.first("installs", "history", "snapshot", "successes")
    line, row = d.details(f.rel)[-1]
    data = d.read_bytes(f.rel)
    start = 0
    for _ in range(line - 1):
        start = data.index(b"\n", start) + 1
    cut = start + len(row[0]) + 1 + len(row[1]) // 2  # the middle of the second field
    d.write_bytes(f.rel, data[:cut])
    return _change(f.rel, line, f"file cut at byte {cut}, in the middle of line {line}",
                   (f.rel, line, "line-ending"), (f.rel, line, "record-order"), (f.rel, line, "field-count"))


@operator("unterminated-quote", {"csv-syntax"},
          "A quoted field is never closed (the trailer's last field opens a quote): the quote runs to the end of "
          "the file; the trailer cannot be read (one csv-syntax finding: it is not also reported missing).")
def unterminated_quote(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    data = d.read_bytes(f.rel)
    term = d.rs.line_terminator.encode()
    body, _, trailer = data.removesuffix(term).rpartition(term)
    head, sep, last_field = trailer.rpartition(d.rs.delimiter.encode())
    d.write_bytes(f.rel, body + term + head + sep + d.rs.quote_char.encode() + last_field + term)
    last = _last_line(d, f.rel)
    return _change(f.rel, last, "an opening quote before the trailer's DCC Classification, never closed",
                   (f.rel, last, "csv-syntax"))


@operator("quote-then-text", {"csv-syntax"},
          "A character follows a closing quote (\"Title\"x) in the header: not RFC 4180; the header cannot be read "
          "(one csv-syntax finding: it is not also reported missing).")
def quote_then_text(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    data = d.read_bytes(f.rel)
    term = d.rs.line_terminator.encode()
    header, _, rest = data.partition(term)
    fields = header.split(d.rs.delimiter.encode())
    i = d.header_index("title", f.report)
    q = d.rs.quote_char.encode()
    fields[i] = q + fields[i] + q + b"x"
    d.write_bytes(f.rel, d.rs.delimiter.encode().join(fields) + term + rest)
    return _change(f.rel, 1, "header Report Title written \"...\"x", (f.rel, 1, "csv-syntax"))


@operator("bare-quote", {"csv-syntax"},
          "A quote inside a field that is not enclosed in quotes (Device Model 12\" ...): RFC 4180 §2.5 forbids "
          "it, though lenient readers (Python's csv module) take it as data.")
def bare_quote(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    line, row = d.details(f.rel)[0]
    name = _field_like(d, f, row, "Device Model", "text")
    i = d.detail_index(f.report, name)
    row = list(row)
    row[i] = (row[i][:-1] + d.rs.quote_char)[:f.report.detail[i].max_length]
    term = d.rs.line_terminator.encode()
    lines = d.read_bytes(f.rel).split(term)
    lines[line - 1] = d.rs.delimiter.join(row).encode()  # written raw: a CSV writer would quote it
    d.write_bytes(f.rel, term.join(lines))
    return _change(f.rel, line, f"{name} written {row[i]!r}", (f.rel, line, "csv-syntax"))


# =========================================================================== record operators


@operator("header-and-first-detail-swapped", {"record-order"}, "The header and the first detail record change "
          "places.")
def header_and_first_detail_swapped(d: Delivery) -> Change:
    f = d.first("installs", "successes")
    rows = d.rows(f.rel)
    rows[0], rows[1] = rows[1], rows[0]
    d.write_rows(f.rel, rows)
    return _change(f.rel, 1, "lines 1 and 2 swapped", (f.rel, 1, "record-order"), (f.rel, 2, "record-order"))


@operator("no-trailer", {"record-order"}, "The trailer record is missing.")
def no_trailer(d: Delivery) -> Change:
    if not d.rs.trailer:
        raise NotApplicable("the ruleset's files have no trailer (the MRR defines none)")
    f = d.first("activity", "successes")
    rows = d.rows(f.rel)
    last = len(rows)
    d.write_rows(f.rel, rows[:-1])
    return _change(f.rel, last, f"trailer (line {last}) deleted", (f.rel, last - 1, "record-order"))


@operator("no-header", {"record-order"}, "The header record is missing.")
def no_header(d: Delivery) -> Change:
    f = d.first("snapshot", "successes")
    d.write_rows(f.rel, d.rows(f.rel)[1:])
    return _change(f.rel, 1, "header deleted", (f.rel, 1, "record-order"))


@operator("detail-extra-column", {"field-count"}, "A detail record has one field too many (a trailing comma).")
def detail_extra_column(d: Delivery) -> Change:
    f = d.first("successes", "installs")
    line, _ = d.details(f.rel)[0]
    rows = d.rows(f.rel)
    rows[line - 1].append("")
    d.write_rows(f.rel, rows)
    return _change(f.rel, line, "an empty field appended to a detail record", (f.rel, line, "field-count"))


@operator("detail-missing-column", {"field-count"}, "A detail record lacks its last field.")
def detail_missing_column(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    line, _ = d.details(f.rel)[0]
    rows = d.rows(f.rel)
    dropped = f.report.detail[len(rows[line - 1]) - 1].name
    rows[line - 1].pop()
    d.write_rows(f.rel, rows)
    return _change(f.rel, line, f"{dropped} removed from a detail record", (f.rel, line, "field-count"))


@operator("header-extra-column", {"field-count"}, "The header record has one field too many.")
def header_extra_column(d: Delivery) -> Change:
    f = d.first("history", "successes")
    rows = d.rows(f.rel)
    rows[0].append("DCC Controlled")
    d.write_rows(f.rel, rows)
    return _change(f.rel, 1, "DCC Classification repeated at the end of the header", (f.rel, 1, "field-count"))


@operator("wrong-record-type", {"record-type", "trailer-rows-count"},
          "A detail record's Record type is 11 instead of 10: not a record type, so the trailer's Rows Count no "
          "longer matches the detail records.")
def wrong_record_type(d: Delivery) -> Change:
    d.trailer_index("rows_count")  # its Rows Count no longer matches: NotApplicable without a trailer
    f = d.first("installs", "history", "snapshot", min_details=2)
    line, _ = d.details(f.rel)[0]
    rows = d.rows(f.rel)
    rows[line - 1][0] = "11"
    d.write_rows(f.rel, rows)
    return _change(f.rel, line, "Record type 10 -> 11", (f.rel, line, "record-type"),
                   (f.rel, len(rows), "trailer-rows-count"))


@operator("column-header-row", {"record-type"}, "A row of column names follows the header (the EMRR files have no "
          "column header row).")
def column_header_row(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    rows = d.rows(f.rel)
    rows.insert(1, [field.name for field in f.report.detail])
    d.write_rows(f.rel, rows)
    return _change(f.rel, 2, "the detail field names inserted as line 2", (f.rel, 2, "record-type"))


@operator("blank-line", {"record-type"}, "A blank line between detail records.")
def blank_line(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    rows = d.rows(f.rel)
    line = d.details(f.rel)[0][0] + 1
    data = d.encode_rows(rows[: line - 1]) + d.rs.line_terminator.encode() + d.encode_rows(rows[line - 1:])
    d.write_bytes(f.rel, data)
    return _change(f.rel, line, f"an empty line inserted as line {line}", (f.rel, line, "record-type"))


@operator("rows-count-off-by-one", {"trailer-rows-count"}, "The trailer's Rows Count is one more than the detail "
          "records.")
def rows_count_off_by_one(d: Delivery) -> Change:
    f = d.first("snapshot", "successes")
    rows = d.rows(f.rel)
    i = d.trailer_index("rows_count")
    old = rows[-1][i]
    rows[-1][i] = str(int(old) + 1)
    d.write_rows(f.rel, rows)
    return _change(f.rel, len(rows), f"Rows Count {old} -> {rows[-1][i]}", (f.rel, len(rows), "trailer-rows-count"))


@operator("rows-count-not-integer", {"field-type"}, "The trailer's Rows Count is written 1.0 (not an Integer).")
def rows_count_not_integer(d: Delivery) -> Change:
    f = d.first("installs", "successes")
    rows = d.rows(f.rel)
    i = d.trailer_index("rows_count")
    old = rows[-1][i]
    rows[-1][i] = f"{old}.0"
    d.write_rows(f.rel, rows)
    return _change(f.rel, len(rows), f"Rows Count {old} -> {rows[-1][i]}", (f.rel, len(rows), "field-type"))


def _header_value(d: Delivery, f: ReportFile, source: str, value: str) -> str:
    rows = d.rows(f.rel)
    i = d.header_index(source, f.report)
    old = rows[0][i]
    rows[0][i] = value
    d.write_rows(f.rel, rows)
    return old


@operator("header-recipient-differs", {"header-file-name"}, "The header's Report Recipient is not the recipient "
          "in the file's name.")
def header_recipient_differs(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    other = "PZZ999" if f.recipient != "PZZ999" else "PZZ998"
    old = _header_value(d, f, "recipient", other)
    return _change(f.rel, 1, f"header Report Recipient {old} -> {other}", (f.rel, 1, "header-file-name"))


@operator("header-sequence-differs", {"header-file-name"}, "The header's Report Sequence Number is not the one in "
          "the file's name.")
def header_sequence_differs(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    old = _header_value(d, f, "sequence", str(f.sequence + 1))
    return _change(f.rel, 1, f"header Report Sequence Number {old} -> {f.sequence + 1}",
                   (f.rel, 1, "header-file-name"))


@operator("header-creation-differs", {"header-file-name"}, "The header's Report Creation DateTime is an hour "
          "after the one in the file's name.")
def header_creation_differs(d: Delivery) -> Change:
    f = d.first("snapshot", "successes")
    new = d.time_text(f.created + 3600)
    old = _header_value(d, f, "created", new)
    return _change(f.rel, 1, f"header Report Creation DateTime {old} -> {new}", (f.rel, 1, "header-file-name"))


@operator("header-report-differs", {"header-file-name"}, "The header's Report Identifier is another report than "
          "the file's name.")
def header_report_differs(d: Delivery) -> Change:
    f = d.first("installs", "failures")
    other = next(rid for rid in d.rs.reports if rid != f.report.id)
    old = _header_value(d, f, "report_id", other)
    return _change(f.rel, 1, f"header Report Identifier {old} -> {other}", (f.rel, 1, "header-file-name"))


@operator("unknown-report-in-header", {"field-enum", "header-file-name"}, "The header's Report Identifier is not a "
          "report of the ruleset, though shaped like one (ECOSMIG-009; S1MIG-099).")
def unknown_report_in_header(d: Delivery) -> Change:
    f = d.first("history", "successes")
    unknown = _unknown_report(d.rs)
    old = _header_value(d, f, "report_id", unknown)
    return _change(f.rel, 1, f"header Report Identifier {old} -> {unknown}", (f.rel, 1, "field-enum"),
                   (f.rel, 1, "header-file-name"))


def _unknown_report(rs: Ruleset) -> str:
    """A report id of the shape and length of the ruleset's first that the ruleset lacks: its number
    9, 99, 999, ... (ECOSMIG-009 in the EMRR, S1MIG-099 in the MRR, whose S1MIG-009 exists)."""
    first = next(iter(rs.reports))
    prefix = first.rstrip("0123456789")
    width = len(first) - len(prefix)
    if not width:
        raise NotApplicable(f"report id {first} ends in no number")
    for digits in range(1, width + 1):
        candidate = prefix + ("9" * digits).zfill(width)
        if candidate not in rs.reports:
            return candidate
    raise NotApplicable(f"every report id {prefix}9... is the ruleset's")


@operator("off-schedule", {"run-time-schedule"}, "A file created at 06:01 instead of the scheduled 06:00 (name and "
          "header agree).")
def off_schedule(d: Delivery) -> Change:
    f = d.first("successes", "snapshot")
    new = d.renumber(f, created=f.created + 60)
    return _change(new, 1, f"{f.rel} renamed {new}, header Report Creation DateTime {d.time_text(f.created + 60)}",
                   (new, 1, "run-time-schedule"))


def _header_window(d: Delivery, key: str, *roles: str) -> tuple[ReportFile, Field]:
    """The first file (of ``roles``, else of any report, in the ruleset's order) whose header has the
    window field ``key`` (the MRR's headers differ per report: 002 App. A), and that field."""
    candidates = d.of(*roles) + [f for f in d.of(*d.rs.reports) if f.report.id not in d.report_ids(*roles)]
    for f in candidates:
        layout = header_of(d.rs, f.report)
        found = next((x for x in layout if x.source_kind == "value" and x.source == key), None)
        if found is not None and d.rows(f.rel)[0][layout.index(found)]:
            return f, found
    raise NotApplicable(f"no file whose header has a {key} field")


def _shift_header_time(d: Delivery, f: ReportFile, key: str, field: Field, delta: int) -> tuple[str, str]:
    """Move the header's ``key`` field by ``delta`` seconds, written as its type (Date or DateTime)."""
    fmt = d.rs.date_format if field.type == "date" else d.rs.datetime_format
    i = d.header_index(key, f.report)
    value = parse_one(d.rows(f.rel)[0][i], field.type, d.rs.datetime_format, d.rs.date_format)
    new = show(value + delta, fmt)
    return _header_value(d, f, key, new), new


@operator("window-start-wrong", {"window"}, "The header's Report Applicable Start DateTime is a day early.")
def window_start_wrong(d: Delivery) -> Change:
    f, field = _header_window(d, "window_start", "failures", "successes")
    old, new = _shift_header_time(d, f, "window_start", field, -DAY)
    return _change(f.rel, 1, f"header {field.name} {old} -> {new}", (f.rel, 1, "window"))


@operator("summary-window-end-wrong", {"window"}, "A summary's Report Applicable End DateTime is a day late (not the "
          "window of its run, nor of an earlier run made up after an outage).")
def summary_window_end_wrong(d: Delivery) -> Change:
    f, field = _header_window(d, "window_end", "snapshot", "activity",
                              *[r.id for r in d.rs.reports.values() if r.kind == "summary"])
    if f.report.kind != "summary":
        raise NotApplicable("no summary file whose header has a window end")
    old, new = _shift_header_time(d, f, "window_end", field, DAY)
    return _change(f.rel, 1, f"header {field.name} {old} -> {new}", (f.rel, 1, "window"))


# =========================================================================== field operators


def _time_field(report: Report) -> str:
    """The report's first mandatory DateTime field (always written), else its first DateTime field."""
    times = [f for f in report.detail if f.type == "datetime"]
    return next((f.name for f in times if f.mandatory), times[0].name if times else next(iter(())))


def _field_like(d: Delivery, f: ReportFile, row: list[str], preferred: str, kind: str,
                mandatory: bool = False) -> str:
    """The field ``preferred`` of the EMRR's layouts when ``f``'s report has it, else the report's
    first field of type ``kind`` (mandatory when asked) that holds a value in ``row`` and is no
    constant: the same defect in another regime's layout (the SMETS1 MRR has no MPxN)."""
    names = [x.name for x in f.report.detail]
    if preferred in names:
        return preferred
    for i, fld in enumerate(f.report.detail):
        if fld.type == kind and fld.source_kind != "constant" and row[i] and (fld.mandatory or not mandatory) \
                and not fld.enum and not fld.mandatory_when and not fld.empty_unless:
            return fld.name
    raise NotApplicable(f"{f.report.id} has no {kind} field holding a value")


@operator("record-after-window", {"detail-time-window"}, "A detail record's date-time is one second after its "
          "file's window ends (it could not be known yet).")
def record_after_window(d: Delivery) -> Change:
    f = d.first("installs", "history")
    line, _ = d.details(f.rel)[-1]
    end = d.parse_time(d.rows(f.rel)[0][d.header_index("window_end", f.report)])
    name = _time_field(f.report)
    old = _set_detail(d, f, line, name, d.time_text(end + 1))
    return _change(f.rel, line, f"{name} {old} -> {d.time_text(end + 1)}", (f.rel, line, "detail-time-window"))


@operator("datetime-bad-format", {"field-type"}, "A detail date-time written YYYY-MM-DDThhmm (same length, wrong "
          "format).")
def datetime_bad_format(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    line, row = d.details(f.rel)[0]
    name = _time_field(f.report)
    old = row[d.detail_index(f.report, name)]
    new = f"{old[0:4]}-{old[4:6]}-{old[6:8]}T{old[9:13]}"
    _set_detail(d, f, line, name, new)
    return _change(f.rel, line, f"{name} {old} -> {new}", (f.rel, line, "field-type"))


@operator("datetime-not-a-date", {"field-type"}, "A detail date-time of the right shape on a day that does not exist "
          "(30 February).")
def datetime_not_a_date(d: Delivery) -> Change:
    f = d.first("installs", "history")
    line, row = d.details(f.rel)[0]
    name = _time_field(f.report)
    old = row[d.detail_index(f.report, name)]
    new = f"{old[0:4]}0230{old[8:]}"
    _set_detail(d, f, line, name, new)
    return _change(f.rel, line, f"{name} {old} -> {new}", (f.rel, line, "field-type"))


@operator("datetime-with-zone", {"field-type", "field-length"}, "A detail date-time with a time zone suffix "
          "(YYYYMMDDThhmmssZ): 16 characters, not the format.")
def datetime_with_zone(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    line, row = d.details(f.rel)[0]
    name = _time_field(f.report)
    old = row[d.detail_index(f.report, name)]
    _set_detail(d, f, line, name, old + "Z")
    return _change(f.rel, line, f"{name} {old} -> {old}Z", (f.rel, line, "field-type"), (f.rel, line, "field-length"))


@operator("integer-with-sign", {"field-type"}, "An Integer written with a plus sign (+10).")
def integer_with_sign(d: Delivery) -> Change:
    f = d.first("failures")
    line, row = d.details(f.rel)[0]
    name = _field_like(d, f, row, "Error Sub Code", "integer")
    old = row[d.detail_index(f.report, name)]
    if len(old) + 1 > f.report.detail[d.detail_index(f.report, name)].max_length:
        raise NotApplicable(f"{name} {old} is at its maximum length")
    _set_detail(d, f, line, name, f"+{old}")
    return _change(f.rel, line, f"{name} {old} -> +{old}", (f.rel, line, "field-type"))


@operator("field-too-long", {"field-length"}, "A field one character longer than its Max Length (MPxN of 14).")
def field_too_long(d: Delivery) -> Change:
    f = d.first("successes", "failures", "installs")
    line, row = d.details(f.rel)[0]
    name = _field_like(d, f, row, "MPxN", "text")
    i = d.detail_index(f.report, name)
    old = row[i]
    new = old + "0" * (f.report.detail[i].max_length + 1 - len(old))
    _set_detail(d, f, line, name, new)
    return _change(f.rel, line, f"{name} {old} -> {new}", (f.rel, line, "field-length"))


@operator("mandatory-field-empty", {"field-mandatory"}, "A mandatory field (Device Model) is empty.")
def mandatory_field_empty(d: Delivery) -> Change:
    f = d.first("successes", "failures")
    line, row = d.details(f.rel)[0]
    name = _field_like(d, f, row, "Device Model", "text", mandatory=True)
    old = _set_detail(d, f, line, name, "")
    return _change(f.rel, line, f"{name} {old} -> (empty)", (f.rel, line, "field-mandatory"))


def _status_record(d: Delivery, failure: bool) -> tuple[ReportFile, int, list[str]]:
    for f in d.of("history"):
        i = d.detail_index(f.report, "ECoS Status")
        for line, row in d.details(f.rel):
            if (row[i] == "Failure") == failure:
                return f, line, row
    raise NotApplicable(f"no ECOSMIG-003 record {'with' if failure else 'without'} ECoS Status Failure")


def _has_ecos_status(d: Delivery) -> bool:
    return any(x.name == "ECoS Status" for r in d.report_ids("history") for x in d.rs.reports[r].detail)


def _records_where(d: Delivery, test: Callable[[Report, int, list[str]], bool]
                   ) -> tuple[ReportFile, int, list[str], int]:
    """The first (file, line, record, field index) of any report (the history report first) whose
    field ``test`` accepts: another regime's layouts, by the rules their fields carry."""
    for f in d.of("history", *d.rs.reports):
        for line, row in d.details(f.rel):
            for i in range(len(f.report.detail)):
                if len(row) == len(f.report.detail) and test(f.report, i, row):
                    return f, line, row, i
    raise NotApplicable("no record with a field the operator can break")


@operator("ecos-status-not-allowed", {"field-enum"}, "ECoS Status in lower case (success): not one of Success, "
          "Failure, Installed (in another regime, the first value of a field of allowed values, lower-cased).")
def ecos_status_not_allowed(d: Delivery) -> Change:
    if _has_ecos_status(d):
        f, line, row = _status_record(d, failure=False)
        name = "ECoS Status"
    else:
        f, line, row, i = _records_where(d, lambda r, i, row: bool(r.detail[i].enum) and row[i] != ""
                                         and row[i].lower() not in r.detail[i].enum)
        name = f.report.detail[i].name
    old = row[d.detail_index(f.report, name)]
    _set_detail(d, f, line, name, old.lower())
    return _change(f.rel, line, f"{name} {old} -> {old.lower()}", (f.rel, line, "field-enum"))


@operator("failure-without-error-code", {"field-condition"}, "ECOSMIG-003: a Failure record whose Error Code is "
          "empty (mandatory when ECoS Status is Failure); in another regime, any field mandatory when another has "
          "a value, emptied where it has it.")
def failure_without_error_code(d: Delivery) -> Change:
    if _has_ecos_status(d):
        f, line, row = _status_record(d, failure=True)
        name = "Error Code"
    else:
        def test(r: Report, i: int, row: list[str]) -> bool:
            when = r.detail[i].mandatory_when
            return when is not None and row[i] != "" and row[[x.name for x in r.detail].index(when[0])] == when[1]
        f, line, row, i = _records_where(d, test)
        name = f.report.detail[i].name
    old = _set_detail(d, f, line, name, "")
    return _change(f.rel, line, f"{name} {old} -> (empty) where it is mandatory", (f.rel, line, "field-condition"))


@operator("error-code-on-success", {"field-condition"}, "ECOSMIG-003: a record that is not a Failure carries an "
          "Error Code (empty unless ECoS Status is Failure); in another regime, any field that must be empty unless "
          "another has a value, given one (another field's of its type and record).")
def error_code_on_success(d: Delivery) -> Change:
    if _has_ecos_status(d):
        f, line, row = _status_record(d, failure=False)
        _set_detail(d, f, line, "Error Code", "EC101")
        status = row[d.detail_index(f.report, "ECoS Status")]
        return _change(f.rel, line, f"Error Code (empty) -> EC101 on a {status} record",
                       (f.rel, line, "field-condition"))

    def donor(r: Report, i: int, row: list[str]) -> int | None:
        target = r.detail[i]
        return next((k for k, x in enumerate(r.detail) if k != i and x.type == target.type and row[k]
                     and x.source_kind != "constant" and len(row[k]) <= target.max_length
                     and (not target.enum or row[k] in target.enum)), None)

    def test(r: Report, i: int, row: list[str]) -> bool:
        unless = r.detail[i].empty_unless
        return unless is not None and row[i] == "" and not r.detail[i].mandatory_when \
            and row[[x.name for x in r.detail].index(unless[0])] != unless[1] and donor(r, i, row) is not None
    f, line, row, i = _records_where(d, test)
    name = f.report.detail[i].name
    value = row[donor(f.report, i, row)]
    _set_detail(d, f, line, name, value)
    return _change(f.rel, line, f"{name} (empty) -> {value} where it must be empty", (f.rel, line, "field-condition"))


@operator("dcc-classification-wrong", {"field-constant"}, "The trailer's DCC Classification is 'DCC controlled' "
          "(case differs).")
def dcc_classification_wrong(d: Delivery) -> Change:
    f = d.first("failures", "successes")
    rows = d.rows(f.rel)
    i = next(k for k, field in enumerate(d.rs.trailer) if field.name == "DCC Classification")
    old = rows[-1][i]
    rows[-1][i] = "DCC controlled"
    d.write_rows(f.rel, rows)
    return _change(f.rel, len(rows), f"trailer DCC Classification {old!r} -> 'DCC controlled'",
                   (f.rel, len(rows), "field-constant"))


# =========================================================================== names and sequences


@operator("file-name-pattern", {"file-name"}, "A file named with hyphens instead of underscores "
          "(ECOSMIG-001-PXX999-10-20211206060000.csv).")
def file_name_pattern(d: Delivery) -> Change:
    f = d.first("activity", "successes")
    folder, _, base = f.rel.rpartition("/")
    new = d.move(f.rel, f"{folder}/{base.replace('_', '-')}" if folder else base.replace("_", "-"))
    return _change(new, None, f"{f.rel} renamed {new}", (new, None, "file-name"))


@operator("sequence-zero-padded", {"file-name"}, "The sequence number in the file's name is padded with one zero "
          "more than the ruleset's padding (01 where the EMRR writes 1; 0000001 where the MRR writes 000001).")
def sequence_zero_padded(d: Delivery) -> Change:
    f = d.first("installs", "successes")
    pad = d.rs.sequence_padding
    new = d.move(f.rel, d.renamed(f, "sequence", "0" + (str(f.sequence).zfill(pad) if pad else str(f.sequence))))
    return _change(new, None, f"{f.rel} renamed {new}", (new, None, "file-name"))


@operator("sequence-unpadded", {"file-name"}, "The sequence number in the file's name is not zero-padded where the "
          "ruleset pads it (1 where the MRR writes 000001, 002:L749).", applies=lambda rs: rs.sequence_padding > 1)
def sequence_unpadded(d: Delivery) -> Change:
    if not d.rs.sequence_padding:
        raise NotApplicable("the ruleset does not pad sequence numbers")
    f = d.first("successes", "failures", "installs")
    new = d.move(f.rel, d.renamed(f, "sequence", str(f.sequence)))
    return _change(new, None, f"{f.rel} renamed {new}", (new, None, "file-name"))


@operator("party-differs", {"recipient-party"}, "One file of a recipient names another SEC Party Signifier (and sits "
          "in that party's folder, as the name says): a User ID belongs to one SEC Party (MRR App. B).",
          applies=lambda rs: "{party}" in rs.file_pattern)
def party_differs(d: Delivery) -> Change:
    series = [s for s in d.series("successes", "failures", "installs", *d.rs.reports, min_files=2)
              if s[-1].party is not None]
    if not series:
        raise NotApplicable("the ruleset's file names carry no SEC Party Signifier")
    f = series[0][-1]
    others = {g.rel for g in d.files.values() if g.recipient == f.recipient}
    first = min(others)  # the file whose party the checker takes as the recipient's (name order)
    if first == f.rel:
        raise NotApplicable("the recipient's last file is its first by name")
    party = "PZZ999" if f.party != "PZZ999" else "PZZ998"
    new = d.renamed(f, "party", party)
    if "{party}" in d.folder:
        new = f"{d.folder.format(recipient=f.recipient, report_id=f.report.id, party=party).strip('/')}/" \
              f"{new.rpartition('/')[2]}"
    new = d.move(f.rel, new)
    return _change(new, None, f"{f.rel} renamed {new}", (new, None, "recipient-party"))


@operator("creation-time-not-real", {"file-name"}, "The creation date-time in the file's name is not a real time "
          "(hour 24).")
def creation_time_not_real(d: Delivery) -> Change:
    f = d.first("history", "successes")
    folder, _, base = f.rel.rpartition("/")
    parts = base.split("_")
    stamp = parts[-1]
    parts[-1] = stamp[:8] + "24" + stamp[10:]
    new = d.move(f.rel, f"{folder}/{'_'.join(parts)}" if folder else "_".join(parts))
    return _change(new, None, f"{f.rel} renamed {new}", (new, None, "file-name"))


@operator("wrong-recipient-folder", {"file-name"}, "A file sits in another recipient's folder.")
def wrong_recipient_folder(d: Delivery) -> Change:
    if not d.folder:
        raise NotApplicable("the ruleset keeps no recipient folders")
    f = d.first("snapshot", "successes")
    others = sorted({g.recipient for g in d.files.values()} - {f.recipient}) or ["PZZ999"]
    party = "PZZ999" if f.party != "PZZ999" else "PZZ998"  # a Party folder ({party}) not the file's
    folder = d.folder.format(recipient=others[0], report_id=f.report.id, party=party).strip("/")
    new = d.move(f.rel, f"{folder}/{f.rel.rpartition('/')[2]}")
    return _change(new, None, f"{f.rel} moved to {new}", (new, None, "file-name"))


@operator("sequence-gap", {"sequence-gap"}, "A series skips a sequence number (the last file renamed n+1, header "
          "too).")
def sequence_gap(d: Delivery) -> Change:
    last = d.series("successes", "failures", "installs")[0][-1]
    new = d.renumber(last, sequence=last.sequence + 1)
    return _change(new, 1, f"{last.rel} renamed {new}", (new, 1, "sequence-gap"))


@operator("sequence-repeat", {"sequence-repeat"}, "Two files of a series carry the same sequence number (the last "
          "renamed n-1, header too).")
def sequence_repeat(d: Delivery) -> Change:
    last = d.series("snapshot", "successes", "failures", min_files=2)[0][-1]
    new = d.renumber(last, sequence=last.sequence - 1)
    return _change(new, 1, f"{last.rel} renamed {new}", (new, 1, "sequence-repeat"))


@operator("sequence-order", {"sequence-order"}, "The last two files of a series swap their sequence numbers: the "
          "later file has the lower number.")
def sequence_order(d: Delivery) -> Change:
    earlier, later = d.series("failures", "successes", "snapshot", min_files=2)[0][-2:]
    first = d.renumber(earlier, sequence=later.sequence)
    second = d.renumber(later, sequence=earlier.sequence)
    return _change(second, 1, f"{earlier.rel} renamed {first}, {later.rel} renamed {second}",
                   (second, 1, "sequence-order"))


@operator("duplicate-file", {"duplicate-record"}, "A file sent again under the next sequence number, at the next "
          "run (its own window): every record reported twice.")
def duplicate_file(d: Delivery) -> Change:
    last = d.series("successes", "failures", "installs")[0][-1]
    report = last.report
    created = int(run_times(report.cron, last.created + 1, last.created + 400 * DAY)[0])
    start, end = window(report.window, created)
    rows = d.rows(last.rel)
    rows[0][d.header_index("sequence", report)] = str(last.sequence + 1)
    rows[0][d.header_index("created", report)] = d.time_text(created)
    for key, value in (("window_start", start), ("window_end", end)):  # those the header has (MRR: per report)
        try:
            at = d.header_index(key, report)
        except NotApplicable:
            continue
        fmt = next(f for f in header_of(d.rs, report) if f.source_kind == "value" and f.source == key)
        rows[0][at] = show(value, d.rs.date_format if fmt.type == "date" else d.rs.datetime_format)
    new = d.name_for(report.id, last.recipient, last.sequence + 1, created, last.party)
    d.write_rows(new, rows)
    d._index(new)
    lines = [line for line, _ in d.details(new)]
    return _change(new, None, f"{last.rel} copied as {new}", *[(new, line, "duplicate-record") for line in lines])


@operator("duplicate-record-in-file", {"duplicate-record"}, "A detail record repeated within a snapshot file (the "
          "same device twice in ECOSMIG-003), Rows Count adjusted.")
def duplicate_record_in_file(d: Delivery) -> Change:
    f = d.first("history", "snapshot")
    line, row = d.details(f.rel)[-1]
    rows = d.rows(f.rel)
    rows.insert(line, list(row))
    if d.rs.trailer:  # the Rows Count kept right (the MRR's files have no trailer)
        i = d.trailer_index("rows_count")
        rows[-1][i] = str(int(rows[-1][i]) + 1)
    d.write_rows(f.rel, rows)
    return _change(f.rel, line + 1, f"line {line} repeated as line {line + 1}", (f.rel, line + 1, "duplicate-record"))


@operator("empty-report", {"empty-report"}, "A report with a header and a trailer (Rows Count 0) but no detail "
          "record: empty reports are not produced.")
def empty_report(d: Delivery) -> Change:
    f = d.first("snapshot", "installs", "history")
    rows = d.rows(f.rel)
    if not d.rs.trailer:  # the MRR: a header alone
        d.write_rows(f.rel, [rows[0]])
        return _change(f.rel, None, "every detail record removed (no trailer)", (f.rel, None, "empty-report"))
    trailer = rows[-1]
    trailer[d.trailer_index("rows_count")] = "0"
    d.write_rows(f.rel, [rows[0], trailer])
    return _change(f.rel, None, "every detail record removed, Rows Count 0", (f.rel, None, "empty-report"))


# =========================================================================== across files


def _entity_and_time(report: Report) -> tuple[str, str]:
    """The names of the fields a report's records are identified by and dated by, as the checker
    reads them (crossfile.Roles: the Device ID or Installation ID, the event's occurred_at)."""
    roles = Roles.of(report)
    if roles.device is None or roles.event_time is None:
        raise NotApplicable(f"{report.id} has no field identifying a device or Installation and its event's time")
    return report.detail[roles.device].name, report.detail[roles.event_time].name


def _records(d: Delivery, report_id: str, device: str, time_name: str) -> list[tuple]:
    """(file, line, device, seconds, row) of every detail record of a report, in file order."""
    out = []
    for f in sorted((f for f in d.files.values() if f.report.id == report_id), key=lambda f: f.rel):
        i, t = d.detail_index(f.report, device), d.detail_index(f.report, time_name)
        for line, row in d.details(f.rel):
            out.append((f, line, row[i], d.parse_time(row[t]), row))
    return out


@operator("failure-after-success", {"failure-after-success"}, "An ECOSMIG-002 failed attempt is given to a device "
          "that had completed migration successfully before it (ECOSMIG-001).")
def failure_after_success(d: Delivery) -> Change:
    success_report, failure_report = d.report("successes"), d.report("failures")
    successes: dict[str, tuple[int, list[str]]] = {}
    for _, _, device, t, row in _records(d, success_report.id, *_entity_and_time(success_report)):
        if device not in successes or t < successes[device][0]:
            successes[device] = (t, row)
    failures = _records(d, failure_report.id, *_entity_and_time(failure_report))
    failed = {r[2] for r in failures}
    for f, line, device, t, _ in failures:
        before = sorted(dev for dev, (st, _) in successes.items() if st < t and dev not in failed)
        if not before:
            continue
        target = before[0]
        source = successes[target][1]
        rows = d.rows(f.rel)
        for k, field in enumerate(failure_report.detail):  # the device's own identity, from its success
            if field.source_kind == "column" and field.name in {x.name for x in success_report.detail} \
                    and field.type == "text" and field.name != "Record type":
                rows[line - 1][k] = source[d.detail_index(success_report, field.name)]
        d.write_rows(f.rel, rows)
        return _change(f.rel, line, f"failed attempt of {device} given to {target}, which succeeded at "
                       f"{d.time_text(successes[target][0])}", (f.rel, line, "failure-after-success"))
    raise NotApplicable("no failed attempt after the success of a device without failures")


@operator("attempts-zero", {"field-range"}, "An ECOSMIG-002 failure says Number of Attempts 0 (the failed "
          "attempt itself counts: at least 1).")
def attempts_zero(d: Delivery) -> Change:
    f = d.first("failures")
    line, row = d.details(f.rel)[0]
    old = _set_detail(d, f, line, "Number of Attempts", "0")
    return _change(f.rel, line, f"Number of Attempts {old} -> 0", (f.rel, line, "field-range"))


@operator("attempts-backwards", {"attempt-order"}, "A device's later failed attempt repeats the Number of Attempts of "
          "its earlier one.")
def attempts_backwards(d: Delivery) -> Change:
    report = d.report("failures")
    n = d.detail_index(report, "Number of Attempts")
    by_device: dict[str, list[tuple]] = defaultdict(list)
    for f, line, device, t, row in _records(d, report.id, "Device ID", _time_field(report)):
        by_device[device].append((t, f.rel, line, f, row))
    for device in sorted(by_device):
        items = sorted(by_device[device])
        if len(items) < 2 or items[-1][0] == items[-2][0]:
            continue
        previous, (_, _, line, f, row) = items[-2], items[-1]
        old, new = row[n], previous[4][n]
        _set_detail(d, f, line, "Number of Attempts", new)
        return _change(f.rel, line, f"Number of Attempts of {device} {old} -> {new} (as at {previous[1]} line "
                       f"{previous[2]})", (f.rel, line, "attempt-order"))
    raise NotApplicable("no device with two failed attempts")


@operator("summary-count-off-by-one", {"summary-reconciliation"}, "An ECOSMIG-005 count of successes is one more "
          "than the ECOSMIG-001 records of that day can account for.")
def summary_count_off_by_one(d: Delivery) -> Change:
    summary = d.report("activity")
    detail = d.report("successes")
    count_name = next(f.name for f in summary.detail if f.source_kind == "column"
                      and summary.counts.get(f.source) == MIGRATION_SUCCESS)
    day_name = next(f.name for f in summary.detail if f.type == "date")
    runs = sorted({f.created for f in d.files.values() if f.report is detail})
    records = _records(d, detail.id, "Device ID", _time_field(detail))
    for f in d.of(summary.id):
        later = [r for r in runs if r >= f.created]
        if not later:
            continue  # no detail run after the summary at hand: the upper bound is unknown
        rows = d.rows(f.rel)
        i, k = d.detail_index(summary, day_name), d.detail_index(summary, count_name)
        for line, row in d.details(f.rel):
            day = parse_one(row[i], "date", d.rs.datetime_format, d.rs.date_format)
            upper = sum(1 for g, _, _, t, _ in records if g.recipient == f.recipient and t is not None
                        and t // DAY * DAY == day and g.created <= later[0])
            rows[line - 1][k] = str(upper + 1)
            d.write_rows(f.rel, rows)
            return _change(f.rel, line, f"{count_name} for {row[i]} {row[k]} -> {upper + 1}",
                           (f.rel, line, "summary-reconciliation"))
    raise NotApplicable("no ECOSMIG-005 file with an ECOSMIG-001 run at or after it")


def apply(operator_id: str, source: str | Path, target: str | Path, ruleset: Ruleset | None = None) -> Mutation:
    """Apply the operator ``operator_id`` to a copy (``target``) of the delivery ``source``."""
    return OPERATORS[operator_id].apply(source, target, ruleset)


def covered_checks() -> frozenset[str]:
    """The error checks the operators produce between them."""
    return frozenset().union(*(op.checks for op in OPERATORS.values()))


@operator("reconciliation-broken", {"report-reconciliation"}, "A record of a report that declares a reconciliation "
          "with another (SMETS1 MRR v3.0: an S1MIG-006 Success, spec/004 L115) names another Installation (the last "
          "character of a matched text field changed): neither it nor its counterpart in the other report has a "
          "match.", applies=lambda rs: any(declared_reconciliations(r, rs) for r in rs.reports.values()))
def reconciliation_broken(d: Delivery) -> Change:
    for report in d.rs.reports.values():
        for rule in declared_reconciliations(report, d.rs):
            found = _reconciled_pair(d, report, rule)
            if found is not None:
                return found
    raise NotApplicable("no reconciled record whose time both reports' files cover")


def _reconciled_pair(d: Delivery, report: Report, rule) -> Change | None:
    """Break the first record of ``report`` meeting ``rule``'s where that has a counterpart, both
    within the time the other side's files cover (``ReportReconciliation``)."""
    other = d.rs.reports[rule.other]
    text = next((k for k, (a, _) in enumerate(rule.match) if report.detail[a].type == "text"), None)
    if text is None:
        return None
    times = {rid: defaultdict(list) for rid in (report.id, other.id)}
    for g in d.files.values():
        if g.report.id in times:
            times[g.report.id][g.recipient].append(g.created)

    def covered(rid: str, recipient: str, moment: int) -> bool:
        t = sorted(times[rid].get(recipient, []))
        return bool(t) and t[0] <= moment and t[-1] >= moment + ReportReconciliation.SLACK

    def key_and_day(rep: Report, fields: list[int], row: list[str]) -> tuple[tuple, int | None]:
        values, day = [], None
        for i in fields:
            f = rep.detail[i]
            if f.type in ("date", "datetime"):
                t = parse_one(row[i], f.type, d.rs.datetime_format, d.rs.date_format)
                values.append(None if t is None else t // DAY)
                day = t // DAY * DAY if day is None and t is not None else day
            else:
                values.append(row[i])
        return tuple(values), day

    theirs: dict[tuple, tuple] = {}
    for g in sorted(d.of(other.id), key=lambda g: g.rel):
        for line, row in d.details(g.rel):
            key, day = key_and_day(other, [b for _, b in rule.match], row)
            theirs.setdefault((g.recipient, key), (g, line, day))
    for f in d.of(report.id):
        for line, row in d.details(f.rel):
            if rule.where and row[d.detail_index(report, rule.where[0])] != rule.where[1]:
                continue
            key, day = key_and_day(report, [a for a, _ in rule.match], row)
            pair = theirs.get((f.recipient, key))
            if pair is None or day is None or pair[2] is None:
                continue
            g, their_line, their_day = pair
            if not (covered(other.id, f.recipient, day) and covered(report.id, g.recipient, their_day)):
                continue
            i = rule.match[text][0]
            old = row[i]
            new = old[:-1] + ("0" if old[-1:] != "0" else "1")
            _set_detail(d, f, line, report.detail[i].name, new)
            return _change(f.rel, line, f"{report.detail[i].name} {old} -> {new}",
                           (f.rel, line, "report-reconciliation"), (g.rel, their_line, "report-reconciliation"))
    return None
