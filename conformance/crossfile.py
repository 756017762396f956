"""Checks across files: sequence numbers, one SEC Party Signifier per recipient, events reported
twice, a device's attempts, a failure after a success, ECOSMIG-005 against ECOSMIG-001/-002, and
the reconciliations a ruleset declares between two reports (see docs/checks.md for the readings).

Which field plays which part is read from the ruleset by its source column (``device_id``, or the
report's declared ``identity``; ``occurred_at``, ``attempt_number``, ``activity_date``, the
``group_by`` and ``counts`` columns), so a layout is declared once, and which report plays which
part by the event types it selects: a ruleset without such a report (the SMETS1 MRR has no
ECOSMIG-005) is simply not checked for it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from emrr.conformance.findings import Collector
from emrr.conformance.formats import show
from emrr.conformance.records import FileInfo, header_of
from emrr.contract import MIGRATION_COMPLETED, MIGRATION_FAILED, MIGRATION_FAILURE, MIGRATION_SUCCESS
from emrr.rules.ruleset import Report, Ruleset

# The event types of a migration's outcome, by the part they play, in each regime's event log
# (docs/event-log.md): a device's (ECoS) or an Installation's (SMETS1) successful migration, and a
# failed attempt. A "previously unreported" report of exactly one of them is that part's detail report.
SUCCESS = (MIGRATION_SUCCESS, MIGRATION_COMPLETED)
FAILURE = (MIGRATION_FAILURE, MIGRATION_FAILED)

MAX_WINDOW = 92 * 86400  # a summary window longer than this is a `window` finding, not reconciled


# The column that identifies what a record is about in each regime's event log (docs/event-log.md):
# a device (ECoS: Device ID) or an Installation (SMETS1: Installation ID, the CHF ID, 002:L243). A
# report's layout that carries one, and declares no identity of its own, is identified by it.
ENTITY_COLUMNS = ("device_id", "installation_id")


def declared_identity(report: Report) -> list[int] | None:
    """The detail fields a report declares identify what a record is about (``identity.columns``:
    source columns of its layout, e.g. ``installation_id``), or None when it declares none."""
    if not report.identity:
        return None
    by_column = {f.source: i for i, f in enumerate(report.detail) if f.source_kind == "column"}
    return [by_column[c] for c in report.identity if c in by_column] or None


def several_recipients(report: Report) -> bool:
    """Whether one row of the report may go to several recipients (each Responsible Supplier and
    the DNO of an Installation: ``listed_parties`` with several columns; ``all_parties``), so that
    the same record in two recipients' files is not a repeat."""
    return len(report.recipient_columns) > 1 or report.recipient_role is not None


@dataclass
class Roles:
    """Field indices of a report's detail layout by the part they play."""

    device: int | None = None  # the field identifying the device (or the one field of a declared identity)
    identity: list[int] = field(default_factory=list)  # the fields identifying what a record is about
    event_time: int | None = None
    attempts: int | None = None
    day: int | None = None
    times: list[int] = field(default_factory=list)
    group: list[int] = field(default_factory=list)
    counts: dict[int, str] = field(default_factory=dict)  # field index -> event type counted

    @classmethod
    def of(cls, report: Report) -> Roles:
        roles = cls()
        by_column = {f.source: i for i, f in enumerate(report.detail) if f.source_kind == "column"}
        declared = declared_identity(report)
        entity = next((by_column[c] for c in ENTITY_COLUMNS if c in by_column), None)
        roles.device = declared[0] if declared is not None and len(declared) == 1 else entity
        roles.identity = declared if declared is not None else ([roles.device] if roles.device is not None else [])
        roles.event_time = by_column.get("occurred_at")
        roles.attempts = by_column.get("attempt_number")
        roles.day = by_column.get("activity_date")
        roles.times = [i for i, f in enumerate(report.detail) if f.type in ("datetime", "date")]
        roles.group = [by_column[c] for c in report.group_by if c in by_column]
        roles.counts = {by_column[name]: event for name, event in report.counts.items() if name in by_column}
        return roles

    def kept(self, report: Report) -> list[int]:
        """The fields of ``report`` (whose roles these are) that the checks across files read, and
        no other: every record of the delivery keeps them until those checks are made (the national
        SMETS1 delivery: 26.8M records; S1MIG-010's Migrate on and Migration Week, S1MIG-006's three
        other dates, were kept for no check, 0.3 GB). Each line names the ``CrossFile`` step that
        reads them; tests/test_crossfile_kept.py holds them to it."""
        idx: set[int | None] = set()
        if report.assignment == "previously_unreported":
            if self.identity:  # duplicate-record: what the record is about, its times, its attempt
                idx |= {*self.identity, *self.times, self.attempts}
            if len(report.event_types) == 1 and report.event_types[0] in SUCCESS + FAILURE \
                    and self.device is not None and self.event_time is not None:
                # CrossFile.single: attempt-order, failure-after-success, the ECOSMIG-005 counts
                idx |= {self.device, self.event_time, self.attempts}
        else:  # duplicate-record: the group, else the device
            idx |= set(self.group or [self.device])
            if report.assignment == "window_activity" and self.day is not None and self.counts:
                idx |= {self.day, *self.counts}  # Reconciliation
        return sorted(i for i in idx if i is not None)


# A text compared across files (a Device ID, a group_by column) is kept compact: a Device ID as the
# engine writes it (8 upper-case hex pairs joined by "-") as its 64-bit number, any other text as a
# Categorical. (k, x) is (the number, null) or (null, the text), so two values are equal exactly
# when their pairs are (nulls compared as equal): 12 bytes a record or less (no Categorical column
# is made when every value is a number) instead of a string's 40, for tens of millions of records.
HEX_PAIRS = "^[0-9A-F]{2}(?:-[0-9A-F]{2}){7}$"


def text_key(i: int) -> list[str]:
    """The columns that stand for text field ``i`` in the kept frames: its (number, other text)."""
    return [f"k{i}", f"x{i}"]


def text_key_exprs(i: int) -> list[pl.Expr]:
    c = pl.col(f"c{i}")
    shaped = c.str.contains(HEX_PAIRS)
    number = c.str.replace_all("-", "", literal=True).str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    return [pl.when(shaped).then(number).otherwise(None).alias(f"k{i}"),
            pl.when(shaped).then(None).otherwise(c).cast(pl.Categorical).alias(f"x{i}")]


def present(keys: list[list[str]]) -> pl.Expr:
    """True where no value of ``keys`` is null: each key is its columns (a text key's pair is
    null only when both its parts are)."""
    return pl.all_horizontal([pl.any_horizontal([pl.col(c).is_not_null() for c in key]) for key in keys]) \
        if keys else pl.lit(True)


def keep_present(frame: pl.DataFrame, keys: list[list[str]]) -> pl.DataFrame:
    """``frame`` without the rows where a value of ``keys`` is null (no copy when there is none)."""
    if all(any(frame[c].null_count() == 0 for c in key) for key in keys):
        return frame
    return frame.filter(present(keys))


def repeated(values: np.ndarray, step: int = 1 << 20) -> np.ndarray:
    """A mask of the values that occur more than once (a sort, not a hash table: less memory)."""
    ordered = np.sort(values)
    same = ordered[1:] == ordered[:-1]
    twice = np.unique(ordered[1:][same])
    del ordered, same
    mask = np.zeros(len(values), dtype=bool)
    if len(twice) == 0:
        return mask
    for start in range(0, len(values), step):
        part = values[start:start + step]
        at = np.searchsorted(twice, part)
        np.minimum(at, len(twice) - 1, out=at)
        mask[start:start + step] = twice[at] == part
    return mask


HASH_ROWS = 1 << 20


def hashes(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's ``columns``, made ``HASH_ROWS`` rows at a time: Polars hashes a
    struct at about 90 bytes a row (S1MIG-001 at national volume, 10.8M records: 0.95 GB at once)."""
    out = np.empty(frame.height, dtype=np.uint64)
    for start in range(0, frame.height, HASH_ROWS):
        part = frame.slice(start, HASH_ROWS).select(pl.struct(columns).hash()).to_series()
        out[start:start + part.len()] = part.to_numpy()
    return out


def _key_fields(report: Report, roles: Roles) -> set[int]:
    """The fields compared as text keys: the device and the non-date group columns."""
    out = {i for i in roles.group if report.detail[i].type not in ("datetime", "date")}
    out |= {i for i in roles.identity if report.detail[i].type not in ("datetime", "date", "integer")}
    if roles.device is not None:
        out.add(roles.device)
    return out


def kept_plan(report: Report, rs: Ruleset | None = None) -> list[tuple[str, int]]:
    """The columns a batch of detail records keeps for the checks across files (beside fid and
    line), in order, as (kind, field index): "t" a date-time as seconds since the epoch (null when
    unreadable), "n" an integer as a number (null when it is not one), "k" and "x" a text key as
    its compact pair (``text_key``). ``kept_columns`` makes them from strings, the fast path
    (``fastpath.kept_frame``) from bytes."""
    roles = Roles.of(report)
    extra = reconciled_fields(report, rs) if rs is not None else set()
    keys = _key_fields(report, roles) | {i for i in extra if report.detail[i].type == "text"}
    plan: list[tuple[str, int]] = []
    for i in sorted(set(roles.kept(report)) | extra):
        kind = report.detail[i].type
        if i in keys:
            plan += [("k", i), ("x", i)]
        if kind in ("datetime", "date"):
            plan += [("t", i)]
        elif kind == "integer":
            plan += [("n", i)]
    return plan


def kept_columns(report: Report, rs: Ruleset | None = None) -> list[pl.Expr]:
    """``kept_plan`` as expressions over a batch's string columns ``c0``... and ``t{i}``."""
    out = []
    for kind, i in kept_plan(report, rs):
        if kind == "k":
            out.extend(text_key_exprs(i))
        elif kind == "t":
            out.append(pl.col(f"t{i}"))
        elif kind == "n":
            out.append(pl.when(pl.col(f"c{i}").str.contains("^[0-9]{1,18}$"))
                       .then(pl.col(f"c{i}").cast(pl.Int64, strict=False)).alias(f"n{i}"))
    return out


class CrossFile:
    """The checks across the files of one run of the checker: sequence numbers, events reported
    twice, a device's attempts, a failure after a success, then each summary's
    ``Reconciliation``. ``frames``: per report, what its batches kept (``kept_plan``)."""

    def __init__(self, rs: Ruleset, out: Collector, files: list[FileInfo], frames: dict[str, pl.DataFrame]):
        self.rs = rs
        self.out = out
        self.files = files
        self.frames = frames
        self.repeats: dict[str, pl.DataFrame] = {}  # (fid, line) of each record that repeats an earlier one
        self.meta = pl.DataFrame({
            "fid": [f.fid for f in files],
            "created": [f.created for f in files],
            "recipient": [f.recipient for f in files],
        }, schema={"fid": pl.Int32, "created": pl.Int64, "recipient": pl.String})
        # each file's recipient as a number (its place in ``recipients``; null when it has none), to
        # compare many records' recipients without a string each (duplicate-record,
        # ReportReconciliation)
        self.recipients = sorted({f.recipient for f in files if f.recipient is not None})
        at = {r: k for k, r in enumerate(self.recipients)}
        self.codes = pl.Series("rcode", [at.get(f.recipient) for f in files], dtype=pl.Int32)

    def run(self) -> None:
        self.sequences()
        self.parties()
        for rid, frame in self.frames.items():
            self.duplicates(self.rs.reports[rid], frame)
        success = self.single(SUCCESS)
        failure = self.single(FAILURE)
        if failure is not None:
            self.attempts(*failure)
        if success is not None and failure is not None:
            self.failure_after_success(success, failure)
        for report in self.rs.reports.values():
            if report.assignment == "window_activity" and report.id in self.frames:
                Reconciliation(self).run(report)
        for report in self.rs.reports.values():
            for rule in declared_reconciliations(report, self.rs):
                ReportReconciliation(self, report, rule).run()

    # ------------------------------------------------------------------ helpers

    def where(self, fid: int, line: int | None) -> str:
        """A record's place in a message: 'file line N'."""
        return f"{self.files[fid].rel}" + (f" line {line}" if line is not None else "")

    def t(self, seconds: int | None) -> str:
        """A date-time in the ruleset's format, for a message."""
        return show(seconds, self.rs.datetime_format)

    def single(self, events: tuple[str, ...]) -> tuple[Report, pl.DataFrame, Roles] | None:
        """The "previously unreported" report of one of ``events`` (a part: SUCCESS, FAILURE), its
        records and roles."""
        for report in self.rs.reports.values():
            if report.assignment == "previously_unreported" and len(report.event_types) == 1 \
                    and report.event_types[0] in events and report.id in self.frames:
                roles = Roles.of(report)
                if roles.device is not None and roles.event_time is not None:
                    return report, self.frames[report.id], roles
        return None

    @staticmethod
    def _key(report: Report, i: int) -> list[str]:
        """The kept columns that stand for field ``i`` of ``report`` (kept_plan)."""
        kind = report.detail[i].type
        return [f"t{i}"] if kind in ("datetime", "date") else [f"n{i}"] if kind == "integer" else text_key(i)

    def _shown(self, check: str, frame: pl.DataFrame) -> list[dict]:
        room = self.out.room(check)
        return (frame if room is None else frame.head(room)).to_dicts()

    # ------------------------------------------------------------------ sequence numbers

    def sequences(self) -> None:
        groups: dict[tuple[str, str], list[FileInfo]] = defaultdict(list)
        for f in self.files:
            if f.report is not None and f.recipient and f.sequence is not None:
                groups[(f.report.id, f.recipient)].append(f)
        first = self.rs.sequence_first
        for (rid, recipient), items in sorted(groups.items()):
            seq_field = next((f.name for f in header_of(self.rs, self.rs.reports[rid])
                              if f.source_kind == "value" and f.source == "sequence"), None)
            items.sort(key=lambda f: (f.created if f.created is not None else 1 << 62,
                                      f.window_start or 0, f.sequence, f.rel))
            seen: dict[int, FileInfo] = {}
            high: FileInfo | None = None
            for f in items:
                at = (f.rel, f.header_line, seq_field if f.header_line else None)
                if f.sequence in seen:
                    self.out.add("sequence-repeat", *at, sequence=f.sequence, report=rid, recipient=recipient,
                                 other=seen[f.sequence].rel)
                    continue
                if high is not None and f.sequence < high.sequence:
                    self.out.add("sequence-order", *at, sequence=f.sequence, created=self.t(f.created),
                                 other=high.rel, other_sequence=high.sequence)
                seen[f.sequence] = f
                if high is None or f.sequence > high.sequence:
                    high = f
            previous = first - 1
            for number in sorted(seen):
                f = seen[number]
                at = (f.rel, f.header_line, seq_field if f.header_line else None)
                if number < first:
                    self.out.add("sequence-gap", *at, "below-first", sequence=number, report=rid, recipient=recipient,
                                 first=first)
                elif number > previous + 1:
                    missing = f"{previous + 1}" if number == previous + 2 else f"{previous + 1} to {number - 1}"
                    if previous < first:  # the earliest file of the delivery: its history may be elsewhere
                        self.out.add("sequence-start", *at, report=rid, recipient=recipient, sequence=number,
                                     missing=missing)
                    else:
                        self.out.add("sequence-gap", *at, sequence=number, report=rid, recipient=recipient,
                                     previous=previous, missing=missing)
                previous = max(previous, number)

    # ------------------------------------------------------------------ one Party Signifier per recipient

    def parties(self) -> None:
        """recipient-party: every file of a recipient names the same SEC Party Signifier (MRR App. B:
        "the SEC Party associated with the User ID", 002:L745): the one most of its files name (of
        equals, the first file's by name) is the recipient's, and each file naming another is a finding."""
        if not self.out.wants("recipient-party"):
            return
        named: dict[str, list[FileInfo]] = defaultdict(list)
        for f in sorted(self.files, key=lambda f: f.rel):
            if f.name.party is not None and f.recipient:
                named[f.recipient].append(f)
        for recipient, files in named.items():
            votes: dict[str, list[FileInfo]] = defaultdict(list)
            for f in files:
                votes[f.name.party].append(f)
            party, first = max(((p, v) for p, v in votes.items()), key=lambda pv: (len(pv[1]), -files.index(pv[1][0])))
            for f in files:
                if f.name.party != party:
                    self.out.add("recipient-party", f.rel, None, None, party=f.name.party, recipient=recipient,
                                 other=first[0].rel, other_party=party)

    # ------------------------------------------------------------------ the same event twice

    def duplicates(self, report: Report, frame: pl.DataFrame) -> None:
        """duplicate-record; also notes the repeats, which the reconciliation counts once."""
        wanted = self.out.wants("duplicate-record")
        if frame.height == 0 or not (wanted or report.assignment == "previously_unreported"):
            return
        roles = Roles.of(report)
        names = report.detail
        if report.assignment == "previously_unreported":
            if not roles.identity:
                return
            ident = [i for i in roles.identity if i not in roles.times and i != roles.attempts]
            keys = [self._key(report, i) for i in ident] + [[f"t{i}"] for i in roles.times]
            key_names = [names[i].name for i in ident] + [names[i].name for i in roles.times]
            if roles.attempts is not None:
                keys.append([f"n{roles.attempts}"])
                key_names.append(names[roles.attempts].name)
            if several_recipients(report):  # the same event goes to each of its recipients once
                keys.append(["recipient"])
        else:
            cols = roles.group or ([roles.device] if roles.device is not None else [])
            if not cols:
                return
            keys = [["fid"]] + [[f"t{i}"] if names[i].type in ("datetime", "date") else text_key(i) for i in cols]
            key_names = [names[i].name for i in cols]
        flat = [c for key in keys for c in key]
        # the recipient as its number (``codes``): a join would copy every kept column of the
        # report's records and add a string to each (S1MIG-001 at national volume: 1.3 GB)
        data = keep_present(frame.select("fid", "line", *[pl.lit(self.codes).gather(pl.col("fid")).alias(c)
                                                          if c == "recipient" else c for c in flat if c != "fid"]),
                            keys)
        # a 64-bit hash of the key finds the candidates (by sorting: less memory than a hash
        # table, and faster at every size measured); the keys themselves decide among them
        candidates = repeated(hashes(data, flat))
        if not candidates.any():
            return
        data = data.filter(pl.Series(candidates))
        if data.height == 0 or not data.select(pl.struct(flat).is_duplicated().any()).item():
            return
        keys = flat
        data = (data.join(self.meta.select("fid", "created"), on="fid", how="left")
                .sort(["created", "fid", "line"], nulls_last=True))
        data = data.with_columns(pl.col("fid").first().over(keys).alias("first_fid"),
                                 pl.col("line").first().over(keys).alias("first_line"),
                                 pl.int_range(pl.len()).over(keys).alias("rank"))
        dups = data.filter(pl.col("rank") > 0)
        self.repeats[report.id] = dups.select("fid", "line")
        if not wanted:
            return
        key = " and ".join(key_names)
        self.out.add_many("duplicate-record", None, [
            (self.files[r["fid"]].rel, r["line"], {"key": key, "other": self.where(r["first_fid"], r["first_line"])})
            for r in self._shown("duplicate-record", dups)], dups.height)

    # ------------------------------------------------------------------ a device's attempts

    def attempts(self, report: Report, frame: pl.DataFrame, roles: Roles) -> None:
        if roles.attempts is None or not self.out.wants("attempt-order"):
            return
        dev, t, n = text_key(roles.device), f"t{roles.event_time}", f"n{roles.attempts}"
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in dev])
        data = keep_present(frame.select("fid", "line", *dev, t, n), [dev, [t], [n]]).sort([*dev, t, n, "fid", "line"])
        repeat = same & (pl.col(t) == pl.col(t).shift(1)) & (pl.col(n) == pl.col(n).shift(1))
        data = data.filter(~repeat.fill_null(False))  # the same attempt twice: a duplicate-record
        previous = {c: pl.when(same).then(pl.col(c).shift(1)).alias(f"prev_{c}") for c in (n, t, "fid", "line")}
        bad = (data.with_columns(previous.values())
               .filter(pl.col(f"prev_{n}").is_not_null() & (pl.col(n) <= pl.col(f"prev_{n}")))
               .rename({f"prev_{n}": "prev_n", f"prev_{t}": "prev_t"})
               .sort(["fid", "line"]))
        shown = [(self.files[r["fid"]].rel, r["line"],
                  {"found": r[n], "time": self.t(r[t]), "previous": r["prev_n"], "previous_time": self.t(r["prev_t"]),
                   "other": self.where(r["prev_fid"], r["prev_line"])})
                 for r in self._shown("attempt-order", bad)]
        self.out.add_many("attempt-order", report.detail[roles.attempts].name, shown, bad.height)

    def failure_after_success(self, success, failure) -> None:
        if not self.out.wants("failure-after-success"):
            return
        _, s_frame, s_roles = success
        _, f_frame, f_roles = failure
        st, ft = f"t{s_roles.event_time}", f"t{f_roles.event_time}"
        device = ["dk", "dx"]
        failures = keep_present(f_frame.select("fid", "line", *[pl.col(c).alias(a) for c, a in
                                                                  zip(text_key(f_roles.device), device)],
                                               pl.col(ft).alias("f_time")), [device, ["f_time"]])
        # only the successes of a device that failed are paired: picked by a mask, not a join (no
        # copy of the successes' columns)
        sk, sx = text_key(s_roles.device)
        failed = failures.select(device).unique()
        maybe = pl.col(sk).is_in(failed["dk"].drop_nulls().implode()).fill_null(False)
        if failed["dx"].null_count() < failed.height:
            maybe = maybe | pl.col(sx).is_in(failed["dx"].drop_nulls().implode()).fill_null(False)
        mask = s_frame.select(maybe).to_series()
        successes = keep_present(s_frame.filter(mask).select(
            pl.col(sk).alias("dk"), pl.col(sx).alias("dx"), pl.col(st).alias("s_time"), pl.col("fid").alias("s_fid"),
            pl.col("line").alias("s_line")), [device, ["s_time"]])
        # the device's first success; of two at the same time (one a duplicate-record), the one
        # reported first (its file's creation, then the file and line), as duplicate-record reads it
        created = self.meta.select(pl.col("fid").alias("s_fid"), pl.col("created").alias("s_created"))
        bad = (failures.join(successes, on=device, how="inner", nulls_equal=True)
               .filter(pl.col("f_time") > pl.col("s_time"))
               .join(created, on="s_fid", how="left")
               .sort(["fid", "line", "s_time", "s_created", "s_fid", "s_line"], nulls_last=True)
               .unique(["fid", "line"], keep="first", maintain_order=True))
        self.out.add_many("failure-after-success", None, [
            (self.files[r["fid"]].rel, r["line"], {"time": self.t(r["f_time"]), "success_time": self.t(r["s_time"]),
                                                   "other": self.where(r["s_fid"], r["s_line"])})
            for r in self._shown("failure-after-success", bad)], bad.height)


class Reconciliation:
    """ECOSMIG-005 (a ``window_activity`` summary) against the detail reports of the events it
    counts (docs/checks.md, "ECOSMIG-005 reconciliation"), over what ``CrossFile`` has gathered."""

    def __init__(self, cross: CrossFile):
        self.cross = cross
        self.rs, self.out, self.files, self.frames = cross.rs, cross.out, cross.files, cross.frames
        # the creation time of each recipient's latest file, of any report: a file created after
        # a summary shows the delivery goes on past it (DESIGN.md "ECOSMIG-005")
        self.latest: dict[str, int] = {}
        for f in self.files:
            if f.recipient and f.created is not None and f.created > self.latest.get(f.recipient, f.created - 1):
                self.latest[f.recipient] = f.created

    def _detail_counts(self, event: str):
        """For the detail report of ``event``: (report, {(recipient, day): (sorted created, cumulative
        counts)}, the sorted creation times of its files of any recipient, the recipients with a
        record that could not be read). An event reported twice is counted once."""
        found = self.cross.single((event,))
        report = found[0] if found else next((r for r in self.rs.reports.values() if r.assignment ==
                                              "previously_unreported" and r.event_types == (event,)), None)
        if report is None:
            return None
        runs = sorted({f.created for f in self.files if f.report is report and f.created is not None})
        table: dict[tuple[str, int], tuple[list[int], np.ndarray]] = {}
        readable: dict[int, int] = {}
        if found is not None:
            _, frame, roles = found
            t = f"t{roles.event_time}"
            readable = dict(frame.lazy().group_by("fid").agg(pl.col(t).is_not_null().sum()).collect().iter_rows())
            records = frame.lazy().select("fid", "line", (pl.col(t) // 86400).alias("day")).drop_nulls()
            repeats = self.cross.repeats.get(report.id)
            if repeats is not None and repeats.height:  # an event reported twice counts once
                records = records.join(repeats.lazy(), on=["fid", "line"], how="anti")
            counts = (records.group_by("fid", "day").len().collect()
                      .join(self.cross.meta, on="fid", how="left").drop_nulls(["created", "recipient"])
                      .group_by("recipient", "day", "created").agg(pl.col("len").sum())
                      .sort(["recipient", "day", "created"]))
            for (recipient, day), part in counts.group_by(["recipient", "day"], maintain_order=True):
                table[(recipient, day)] = (part["created"].to_list(), np.cumsum(part["len"].to_numpy()))
        unsure = {f.recipient for f in self.files if f.report is report
                  and (not f.readable or f.unreadable or f.details != readable.get(f.fid, 0))}
        return report, table, runs, unsure

    def run(self, summary: Report) -> None:
        roles = Roles.of(summary)
        wanted = self.out.wants("summary-reconciliation") or self.out.wants("summary-reconciliation-incomplete")
        if roles.day is None or not roles.counts or not wanted:
            return
        details = {i: self._detail_counts(event) for i, event in roles.counts.items()}
        frame = self.frames[summary.id]
        day_col = f"t{roles.day}"
        by_file: dict[int, dict[int, dict]] = defaultdict(dict)
        whole: dict[int, int] = defaultdict(int)  # records of the file read with every field
        for r in frame.sort("line").to_dicts():
            whole[r["fid"]] += 1
            if r[day_col] is not None:
                by_file[r["fid"]].setdefault(r[day_col] // 86400, r)
        for f in self.files:
            if f.report is not summary or f.created is None or not f.recipient \
                    or f.window_start is None or f.window_end is None or f.details == 0 \
                    or not 0 <= f.window_end - f.window_start <= MAX_WINDOW:
                continue
            rows = by_file.get(f.fid, {})
            complete = whole[f.fid] == f.details and len(rows) == f.details
            for day in range(f.window_start // 86400, f.window_end // 86400 + 1):
                row = rows.get(day)
                if row is None and not complete:
                    continue  # a record that could not be read may be that day's
                for i, detail in details.items():
                    if detail is None:
                        continue
                    count = row.get(f"n{i}") if row is not None else 0
                    if count is None:
                        continue
                    self._reconcile(f, row, day, summary.detail[i].name, count, *detail)

    def _reconcile(self, f: FileInfo, row: dict | None, day: int, name: str, count: int,
                   report: Report, table: dict, runs: list[int], unsure: set) -> None:
        created, numbers = table.get((f.recipient, day), ([], np.zeros(0, dtype=np.int64)))

        def upto(t: int) -> int:
            k = bisect_right(created, t)
            return int(numbers[k - 1]) if k else 0

        lower = upto(f.created)
        j = bisect_left(runs, f.created)
        next_run = runs[j] if j < len(runs) else None
        total = int(numbers[-1]) if len(numbers) else 0
        date = show(day * 86400, self.rs.date_format)
        line = row["line"] if row is not None else None
        said = {"field": name, "date": date, "count": count, "report": report.id, "recipient": f.recipient}
        if count < lower:
            self.out.add("summary-reconciliation", f.rel, line, name, None if row is not None else "no-line",
                         lower=lower, created=self.cross.t(f.created), **said)
        elif f.recipient in unsure:
            return  # a detail record of this recipient could not be read: the upper bound is unknown
        elif next_run is not None and count > upto(next_run):
            # (a day with no line has a count of 0, never above a bound)
            self.out.add("summary-reconciliation", f.rel, line, name, "above", next_run=self.cross.t(next_run),
                         upper=upto(next_run), **said)
        elif next_run is None and count > total:
            later = self.latest.get(f.recipient)
            if runs and later is not None and later > f.created:
                # empty reports are not produced (App. A Notes): with the detail report in the
                # delivery and a later file of the recipient, no detail run after the summary
                # had a record of it, so the records at hand are all there are (DESIGN.md
                # "ECOSMIG-005"; hold-out deliveries were misjudged as incomplete)
                self.out.add("summary-reconciliation", f.rel, line, name, "beyond", total=total,
                             later=self.cross.t(later), **said)
            else:
                self.out.add("summary-reconciliation-incomplete", f.rel, line, name, total=total,
                             created=self.cross.t(f.created), **said)


# --------------------------------------------------------------------------- declared reconciliations


@dataclass(frozen=True)
class Reconcile:
    """A reconciliation a report declares (``reconcile:`` in its file): its records that meet
    ``where`` (field name, value) and the records of report ``other`` correspond, recipient by
    recipient, by the values of ``match`` (pairs of this report's field and the other's; a Date
    against a DateTime compares the day). The SMETS1 MRR v3.0: "the Installation records reported
    as successfully completed in S1MIG-006 should match the corresponding installation records in
    S1MIG-001" (spec/004 L115)."""

    other: str
    clause: str
    where: tuple[str, str] | None
    match: tuple[tuple[int, int], ...]  # (field index here, field index in the other report)


def declared_reconciliations(report: Report, rs: Ruleset) -> list[Reconcile]:
    """The reconciliations ``report`` declares with another report of ``rs`` whose fields all
    exist (one naming a report or field the ruleset lacks is not made: a ruleset's loader says so)."""
    found = []
    for item in report.reconcile:  # the loader holds its names to the layouts (rules/ruleset.py)
        other = rs.reports.get(item.other)
        if other is None:
            continue
        here = {f.name: i for i, f in enumerate(report.detail)}
        there = {f.name: i for i, f in enumerate(other.detail)}
        pairs = [(here.get(a), there.get(b)) for a, b in item.match]
        if not pairs or any(a is None or b is None for a, b in pairs) or (item.where and item.where[0] not in here):
            continue
        found.append(Reconcile(other.id, item.clause, item.where, tuple(pairs)))
    return found


def reconciled_fields(report: Report, rs: Ruleset) -> set[int]:
    """The fields of ``report`` that a declared reconciliation compares (on either side)."""
    out: set[int] = set()
    for r in rs.reports.values():
        for rule in declared_reconciliations(r, rs):
            if r.id == report.id:
                out |= {a for a, _ in rule.match}
                if rule.where:
                    out.add(next(i for i, f in enumerate(report.detail) if f.name == rule.where[0]))
            if rule.other == report.id:
                out |= {b for _, b in rule.match}
    return out


def _value_expr(report: Report, i: int, as_day: bool) -> pl.Expr:
    """Field ``i`` of a kept frame as text to compare (and to show, ``_shown``): a text key's number
    ``#N`` or its text, an integer, a date-time as ``tSECONDS`` or its day as ``dDAYS`` (``as_day``)."""
    kind = report.detail[i].type
    if kind in ("datetime", "date"):
        t = pl.col(f"t{i}")
        return pl.concat_str(pl.lit("d"), (t // 86400).cast(pl.String)) if as_day \
            else pl.concat_str(pl.lit("t"), t.cast(pl.String))
    if kind == "integer":
        return pl.col(f"n{i}").cast(pl.String)
    return pl.coalesce(pl.concat_str(pl.lit("#"), pl.col(f"k{i}").cast(pl.String)), pl.col(f"x{i}").cast(pl.String))


def _compared_as(here: str, there: str, mixed: bool) -> str:
    """How two matched fields of these types are compared, typed, exactly as their
    ``_value_expr`` strings are: "day" (a Date against a DateTime), "time", "integer", "text" (a
    text key's number or its text) or "string" (fields of different kinds: their strings)."""
    times = ("datetime", "date")
    if here in times and there in times:
        return "day" if mixed else "time"
    if here == there == "integer":
        return "integer"
    if here not in times + ("integer",) and there not in times + ("integer",):
        return "text"
    return "string"


_NUMBER_TEXT = "^#(?:0|[1-9][0-9]{0,19})$"  # a text a key's number ("#N", _value_expr) would equal


def _components(frame: pl.DataFrame, report: Report, i: int, kind: str, name: str) -> list[pl.Expr]:
    """Field ``i`` of a kept frame as the typed column(s) ``name`` (and ``name``x) that compare as
    its ``_value_expr`` string does (``_compared_as``): seconds, days, a number, or a text key's
    (number, text), a text written like a number's string ``#N`` taken as that number."""
    if kind == "time":
        return [pl.col(f"t{i}").alias(name)]
    if kind == "day":
        return [(pl.col(f"t{i}") // 86400).alias(name)]
    if kind == "integer":
        return [pl.col(f"n{i}").alias(name)]
    if kind == "string":
        return [_value_expr(report, i, False).alias(name)]
    k, x = pl.col(f"k{i}"), pl.col(f"x{i}")
    if not frame.select(x.drop_nulls().cast(pl.String).str.contains(_NUMBER_TEXT).any()).item():
        return [k.alias(name), x.alias(f"{name}x")]
    number = pl.when(x.cast(pl.String).str.contains(_NUMBER_TEXT)) \
        .then(x.cast(pl.String).str.strip_prefix("#").str.to_integer(dtype=pl.UInt64, strict=False))
    return [pl.coalesce(k, number).alias(name), pl.when(number.is_null()).then(x).alias(f"{name}x")]


def _shown(value: str | None, rs: Ruleset) -> str:
    """A value of ``_value_expr`` as a file writes it: an ID as its hex pairs, a day as a Date."""
    if value is None:
        return "(empty)"
    if value.startswith("#") and value[1:].isdigit():
        n = int(value[1:])
        return "-".join(f"{(n >> (8 * (7 - j))) & 0xFF:02X}" for j in range(8))
    if value[:1] in ("d", "t") and value[1:].lstrip("-").isdigit():
        return show(int(value[1:]) * 86400, rs.date_format) if value[0] == "d" else show(int(value[1:]),
                                                                                           rs.datetime_format)
    return value


class ReportReconciliation:
    """report-reconciliation: a ``Reconcile`` declared by ``report``, over the delivery. A record is
    expected to have its counterpart when the other report's files of the same recipient begin by
    the record's day and go on ``SLACK`` past it; otherwise it is not checked (the counterpart may be
    in a file not collected, or not yet made: a late notification reaches a later file, and the
    SMETS1 scenario's are up to 3 days late, scenarios/smets1.yaml ``notifications.late_latency``)."""

    SLACK = 7 * 86400

    def __init__(self, cross: CrossFile, report: Report, rule: Reconcile):
        self.cross, self.report, self.rule = cross, report, rule
        self.other = cross.rs.reports[rule.other]
        self.out = cross.out

    def keyed(self, report: Report, fields: list[int], kinds: list[str], where: tuple | None) -> dict:
        """``report``'s records (those meeting ``where``) by recipient (``CrossFile.codes``): for
        each, a frame of ``row`` (the record's place in the report's kept frame) and its key as
        typed columns ``p{k}`` (and ``p{k}x``), one for each matched field ``fields[k]`` compared as
        ``kinds[k]`` (``_components``). Typed, not one string, and only what the join needs, cut by
        recipient (the key holds the recipient): the national SMETS1 delivery's 16.4M records took
        4 GB as strings in one join."""
        frame = self.cross.frames.get(report.id)
        if frame is None or frame.height == 0:
            return {}
        names = [f.name for f in report.detail]
        parts, keys = [], []
        for k, (i, kind) in enumerate(zip(fields, kinds)):
            exprs = _components(frame, report, i, kind, f"p{k}")
            parts += exprs
            keys.append([e.meta.output_name() for e in exprs])
        data = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
                            pl.lit(self.cross.codes).gather(pl.col("fid")), *parts)
        kept = present([*keys, ["rcode"]])
        if where is not None:
            kept = kept & frame.select((_value_expr(report, names.index(where[0]), False) == where[1])
                                       .fill_null(False)).to_series()
        data = data.filter(kept)
        return {code: part for (code,), part in data.partition_by("rcode", as_dict=True, include_key=False).items()}

    def run(self) -> None:
        if not self.out.wants("report-reconciliation"):
            return
        rule, report, other = self.rule, self.report, self.other
        mixed = {k for k, (a, b) in enumerate(rule.match) if report.detail[a].type != other.detail[b].type
                 and {report.detail[a].type, other.detail[b].type} == {"date", "datetime"}}
        kinds = [_compared_as(report.detail[a].type, other.detail[b].type, k in mixed)
                 for k, (a, b) in enumerate(rule.match)]
        here_fields, there_fields = [a for a, _ in rule.match], [b for _, b in rule.match]
        here = self.keyed(report, here_fields, kinds, rule.where)
        there = self.keyed(other, there_fields, kinds, None)
        files = defaultdict(list)  # (report id, recipient) -> creation times of its files
        for f in self.cross.files:
            if f.report is not None and f.recipient and f.created is not None:
                files[(f.report.id, f.recipient)].append(f.created)
        for times in files.values():
            times.sort()
        both = {rec for (rid, rec) in files if rid == report.id} & {rec for (rid, rec) in files if rid == other.id}
        fields = ", ".join(f"{report.detail[a].name} / {other.detail[b].name}" for a, b in rule.match)
        where = f" with {rule.where[0]} {rule.where[1]!r}" if rule.where else ""
        self._direction(here, there, report, here_fields, {rule.match[k][0] for k in mixed}, other.id, both, files,
                        "missing", fields, where)
        self._direction(there, here, other, there_fields, {rule.match[k][1] for k in mixed}, report.id, both, files,
                        "unmatched", fields, where)

    def _shown_key(self, report_id: str, row: dict) -> str:
        """A record's matched values, named by its report's fields, as its file writes them."""
        rep = self.cross.rs.reports[report_id]
        fields = [a for a, _ in self.rule.match] if report_id == self.report.id else [b for _, b in self.rule.match]
        return ", ".join(f"{rep.detail[i].name} {_shown(row[f'v{k}'], self.cross.rs)}" for k, i in enumerate(fields))

    def _direction(self, frame: dict, against: dict, report: Report, matched: list[int], day_fields: set[int],
                   other_id: str, both: set, files: dict, form: str, fields: str, where: str) -> None:
        """The records of ``frame`` (``keyed``) without a counterpart in ``against``, of the
        recipients in ``both``, whose time the other report's files cover: the findings."""
        parts = []
        for code in (k for k, r in enumerate(self.cross.recipients) if r in both):
            mine, theirs = frame.get(code), against.get(code)
            if mine is None or mine.height == 0:
                continue
            key = [c for c in mine.columns if c != "row"]
            parts.append((mine if theirs is None or theirs.height == 0 else
                          mine.join(theirs.select(key), on=key, how="anti", nulls_equal=True)).select("row"))
        if not parts:
            return
        # the time the other report's files cover, by recipient (a record outside it is not
        # checked: its counterpart may be in a file not collected)
        first, last = [None] * len(self.cross.recipients), [None] * len(self.cross.recipients)
        for k, recipient in enumerate(self.cross.recipients):
            times = files.get((other_id, recipient))
            if times:
                first[k], last[k] = times[0], times[-1]
        times = [i for i in matched if report.detail[i].type in ("datetime", "date")]
        day = (pl.col(f"t{times[0]}") // 86400 * 86400) if times else pl.lit(None, dtype=pl.Int64)
        rows = pl.concat(parts)["row"]
        source = self.cross.frames[report.id]
        columns = ["fid", "line", *sorted({c for i in matched for c in self.cross._key(report, i)})]
        left = source.select(pl.col(columns).gather(rows))
        code = pl.lit(self.cross.codes).gather(pl.col("fid"))
        moment = pl.coalesce(day.cast(pl.Int64), pl.lit(self.cross.meta["created"]).gather(pl.col("fid")))
        start, end = (pl.lit(pl.Series(v, dtype=pl.Int64)).gather(code) for v in (first, last))
        left = left.filter((start <= moment) & (end >= moment + self.SLACK)).sort("fid", "line")
        count = left.height
        room = self.out.room("report-reconciliation")
        shown = []
        for r in (left if room is None else left.head(room)).select(
                "fid", "line", *[_value_expr(report, i, i in day_fields).alias(f"v{k}")
                                 for k, i in enumerate(matched)]).to_dicts():
            recipient = self.cross.files[r["fid"]].recipient
            times = files[(other_id, recipient)]
            shown.append((self.cross.files[r["fid"]].rel, r["line"], {
                "report": report.id, "other": other_id, "recipient": recipient,
                "fields": fields, "where": where, "first": self.cross.t(times[0]), "last": self.cross.t(times[-1]),
                "key": self._shown_key(report.id, r)}))
        if count:
            self.out.add_many("report-reconciliation", None, shown, count, None if form == "missing" else form)
