"""Checks across files: sequence numbers, events reported twice, a device's attempts, a failure
after a success, and ECOSMIG-005 against ECOSMIG-001/-002 (see docs/checks.md for the readings).

Which field plays which part is read from the ruleset by its source column (``device_id``,
``occurred_at``, ``attempt_number``, ``activity_date``, the ``group_by`` and ``counts`` columns),
so a layout is declared once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from emrr.conformance.findings import Collector
from emrr.conformance.formats import show
from emrr.conformance.records import FileInfo
from emrr.contract import MIGRATION_FAILURE as FAILURE
from emrr.contract import MIGRATION_SUCCESS as SUCCESS
from emrr.rules.ruleset import Report, Ruleset

MAX_WINDOW = 92 * 86400  # a summary window longer than this is a `window` finding, not reconciled


@dataclass
class Roles:
    """Field indices of a report's detail layout by the part they play."""

    device: int | None = None
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
        roles.device = by_column.get("device_id")
        roles.event_time = by_column.get("occurred_at")
        roles.attempts = by_column.get("attempt_number")
        roles.day = by_column.get("activity_date")
        roles.times = [i for i, f in enumerate(report.detail) if f.type in ("datetime", "date")]
        roles.group = [by_column[c] for c in report.group_by if c in by_column]
        roles.counts = {by_column[name]: event for name, event in report.counts.items() if name in by_column}
        return roles

    def kept(self) -> list[int]:
        """The fields the checks across files read."""
        idx = {self.device, self.event_time, self.attempts, self.day, *self.times, *self.group, *self.counts}
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


def _key_fields(report: Report, roles: Roles) -> set[int]:
    """The fields compared as text keys: the device and the non-date group columns."""
    out = {i for i in roles.group if report.detail[i].type not in ("datetime", "date")}
    if roles.device is not None:
        out.add(roles.device)
    return out


def kept_plan(report: Report) -> list[tuple[str, int]]:
    """The columns a batch of detail records keeps for the checks across files (beside fid and
    line), in order, as (kind, field index): "t" a date-time as seconds since the epoch (null when
    unreadable), "n" an integer as a number (null when it is not one), "k" and "x" a text key as
    its compact pair (``text_key``). ``kept_columns`` makes them from strings, the fast path
    (``fastpath.kept_frame``) from bytes."""
    roles = Roles.of(report)
    keys = _key_fields(report, roles)
    plan: list[tuple[str, int]] = []
    for i in roles.kept():
        kind = report.detail[i].type
        if i in keys:
            plan += [("k", i), ("x", i)]
        if kind in ("datetime", "date"):
            plan += [("t", i)]
        elif kind == "integer":
            plan += [("n", i)]
    return plan


def kept_columns(report: Report) -> list[pl.Expr]:
    """``kept_plan`` as expressions over a batch's string columns ``c0``... and ``t{i}``."""
    out = []
    for kind, i in kept_plan(report):
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

    def run(self) -> None:
        self.sequences()
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

    # ------------------------------------------------------------------ helpers

    def where(self, fid: int, line: int | None) -> str:
        """A record's place in a message: 'file line N'."""
        return f"{self.files[fid].rel}" + (f" line {line}" if line is not None else "")

    def t(self, seconds: int | None) -> str:
        """A date-time in the ruleset's format, for a message."""
        return show(seconds, self.rs.datetime_format)

    def single(self, event: str) -> tuple[Report, pl.DataFrame, Roles] | None:
        """The "previously unreported" report of one event type, its records and roles."""
        for report in self.rs.reports.values():
            if report.assignment == "previously_unreported" and report.event_types == (event,) \
                    and report.id in self.frames:
                roles = Roles.of(report)
                if roles.device is not None and roles.event_time is not None:
                    return report, self.frames[report.id], roles
        return None

    def _shown(self, check: str, frame: pl.DataFrame) -> list[dict]:
        room = self.out.room(check)
        return (frame if room is None else frame.head(room)).to_dicts()

    # ------------------------------------------------------------------ sequence numbers

    def sequences(self) -> None:
        groups: dict[tuple[str, str], list[FileInfo]] = defaultdict(list)
        for f in self.files:
            if f.report is not None and f.recipient and f.sequence is not None:
                groups[(f.report.id, f.recipient)].append(f)
        seq_field = next((f.name for f in self.rs.header if f.source_kind == "value" and f.source == "sequence"), None)
        first = self.rs.sequence_first
        for (rid, recipient), items in sorted(groups.items()):
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

    # ------------------------------------------------------------------ the same event twice

    def duplicates(self, report: Report, frame: pl.DataFrame) -> None:
        """duplicate-record; also notes the repeats, which the reconciliation counts once."""
        wanted = self.out.wants("duplicate-record")
        if frame.height == 0 or not (wanted or report.assignment == "previously_unreported"):
            return
        roles = Roles.of(report)
        names = report.detail
        if report.assignment == "previously_unreported":
            if roles.device is None:
                return
            keys = [text_key(roles.device)] + [[f"t{i}"] for i in roles.times]
            key_names = [names[roles.device].name] + [names[i].name for i in roles.times]
            if roles.attempts is not None:
                keys.append([f"n{roles.attempts}"])
                key_names.append(names[roles.attempts].name)
        else:
            cols = roles.group or ([roles.device] if roles.device is not None else [])
            if not cols:
                return
            keys = [["fid"]] + [[f"t{i}"] if names[i].type in ("datetime", "date") else text_key(i) for i in cols]
            key_names = [names[i].name for i in cols]
        flat = [c for key in keys for c in key]
        data = keep_present(frame.select("fid", "line", *[c for c in flat if c != "fid"]), keys)
        # a 64-bit hash of the key finds the candidates (by sorting: less memory than a hash
        # table, and faster at every size measured); the keys themselves decide among them
        candidates = repeated(data.select(pl.struct(flat).hash()).to_series().to_numpy())
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
        found = self.cross.single(event)
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
