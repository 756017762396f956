"""What a change of ruleset does to every supplier, measured on one event log (``emrr impact``).

``impact(old, new, events, out)`` makes both rulesets' report files from the same event log with
the reference engine (``emrr.rules.engine.report``), then compares them per report and per
recipient: files, records, bytes, the largest file, the busiest day, the latency from each event
to the creation of the file that carries it, the records that move to another run or recipient,
appear or disappear, and whether the report's files are byte-identical. It also checks NEW's
files with OLD's ruleset (``emrr.conformance.checker.check``): what a parser built on OLD rejects.

Shared work. A report is made once, and its files serve both sides, when its definition reaches
every file identically under both rulesets: ``file_definition`` (the typed Report less what no
file carries: clauses, the titles the checker also accepts, a field's name, maximum length,
enumeration, minimum and conditions, which the engine never applies) equal, and the
ruleset-wide settings that reach files (``file_settings``: dialect, formats, file naming,
sequence numbering, empty-report and outage policies, header and trailer) equal. Sequence
numbers are per report and recipient and selection per report, so such a report's files are the
same bytes whichever ruleset runs it. Only the other reports run twice.

OUT holds ``impact.md``, ``impact.json``, ``old/`` and ``new/`` (each side's complete delivery:
``<SEC Party ID>/<file>``, hard-linked) and ``runs/`` (the engine's runs with their manifests:
``old``, OLD's whole ruleset; ``new``, NEW's reports that are not shared). It is written under
a temporary name beside OUT and renamed at the end: bad input or a failure leaves nothing
half-written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.errors import UserError
from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.rules.eventlog import EventLog
from emrr.rules.ruleset import Field, Report, Ruleset

EVENT_COLUMN = "occurred_at"  # the event-log column of an event's time (docs/event-log.md)
READ_BYTES = 128 << 20  # file bodies parsed at a time: bounds memory at national volume
SIDES = ("old", "new")
HOUR = 3600.0
# The checks of when a file comes and the period it covers (DESIGN.md "Change impact": a change
# there is behaviour): a file they reject parses as before, but a pipeline that checks run times
# and windows, as OLD's checker does, rejects it
TIMING_CHECKS = frozenset({"run-time-schedule", "window", "detail-time-window", "late-record"})


# --------------------------------------------------------------------------- what is shared


def _field_reach(f: Field) -> tuple:
    """What of a field reaches a file: where its value comes from, its type (how it is written)
    and whether it is mandatory (the engine drops a row lacking a mandatory column's value). Its
    name (no column header row), maximum length, enumeration, minimum and conditions are the
    checker's: the engine writes values as they are."""
    return (f.source_kind, f.source, f.type, f.mandatory)


# What of a Report never reaches a file: where a rule comes from, what the loader had to say, the
# titles the checker accepts besides the one written. Every other attribute (a new one included)
# decides the files' bytes.
NOT_IN_FILES = frozenset({"clause", "raw", "warnings", "titles_accepted"})


def _frozen(value):
    """A Report attribute as a comparable, hashable value (mappings sorted; layouts by _field_reach)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_field_reach(v) if isinstance(v, Field) else _frozen(v) for v in value)
    return value


def file_definition(report: Report) -> tuple:
    """Everything of a report that decides its files' bytes (see the module docstring): every
    attribute but NOT_IN_FILES, its fields by what of them reaches a file."""
    return tuple((f.name, _frozen(getattr(report, f.name))) for f in dataclasses.fields(report)
                 if f.name not in NOT_IN_FILES)


def contract(report: Report) -> tuple:
    """Everything of a report a checker reads (its file definition and its fields whole, the
    titles it accepts): where it differs, an OLD parser may reject a NEW file."""
    return (file_definition(report), report.detail, report.titles_accepted)


def _no_clauses(value):
    if isinstance(value, dict):
        return {k: _no_clauses(v) for k, v in value.items() if k != "clause"}
    if isinstance(value, list):
        return [_no_clauses(v) for v in value]
    return value


def file_settings(rs: Ruleset) -> dict:
    """The ruleset-wide settings that reach every file, clauses left out."""
    keys = ("csv", "formats", "file_name", "sequence", "empty_reports", "outages", "regime", "recipients")
    settings = {k: _no_clauses(rs.raw.get(k)) for k in keys}
    settings["header"] = tuple(_field_reach(f) for f in rs.header)
    settings["trailer"] = tuple(_field_reach(f) for f in rs.trailer)
    return settings


@dataclass(frozen=True)
class Plan:
    """Which reports run once for both sides (``shared``) and which run under each ruleset."""

    shared: tuple[str, ...]
    old: tuple[str, ...]
    new: tuple[str, ...]
    settings_equal: bool
    contract_changed: tuple[str, ...]  # reports in both whose checker-visible definition differs

    def reason(self, rid: str) -> str:
        if rid in self.shared:
            return "made once: its definition reaches every file identically under both rulesets"
        if rid not in self.old:
            return "only in NEW"
        if rid not in self.new:
            return "only in OLD"
        if not self.settings_equal:
            return "made under each: a ruleset-wide setting that reaches files differs"
        return "made under each: its definition differs in what reaches a file"


def plan(old: Ruleset, new: Ruleset) -> Plan:
    """Decide the shared reports (see the module docstring)."""
    settings_equal = file_settings(old) == file_settings(new)
    both = [rid for rid in old.reports if rid in new.reports]
    shared = tuple(rid for rid in both if settings_equal
                   and file_definition(old.reports[rid]) == file_definition(new.reports[rid]))
    changed = tuple(rid for rid in both
                    if rid not in shared or contract(old.reports[rid]) != contract(new.reports[rid]))
    return Plan(shared=shared, old=tuple(r for r in old.reports if r not in shared),
                new=tuple(r for r in new.reports if r not in shared), settings_equal=settings_equal,
                contract_changed=tuple(r for r in changed if r in both))


# --------------------------------------------------------------------------- reading files


def _latency_field(rs: Ruleset, report: Report) -> int | None:
    """The position of the detail field that holds the event's time (a date-time whose source is
    the event log's occurred_at), or None (a summary report: no per-event latency)."""
    for i, f in enumerate(report.detail):
        if f.source_kind == "column" and f.source == EVENT_COLUMN and f.type == "datetime":
            return i
    return None


def _body(content: bytes, terminator: bytes, trailer: bool = True) -> bytes:
    """A file's detail records: every line but the first (header) and, when the ruleset has a
    trailer, the last."""
    first = content.find(terminator)
    if not trailer:
        return content[first + len(terminator):] if first >= 0 else b""
    last = content.rfind(terminator, 0, len(content) - len(terminator))
    return content[first + len(terminator): last + len(terminator)] if last > first else b""


def _records(root: Path, files: pl.DataFrame, rs: Ruleset, report: Report, columns: list[int],
             shape: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """The detail records of ``files`` (rows of the files frame, one report): the fields at
    ``columns`` as strings c<i>, with the file's row ``fid``, read in batches of about
    READ_BYTES, parsed by Polars with the ruleset's dialect and reduced by ``shape`` batch by
    batch, so that memory holds the reduced columns only (national volume)."""
    terminator = rs.line_terminator.encode()
    names = [f"c{i}" for i in range(len(report.detail))]
    parts: list[pl.DataFrame] = []
    chunk: list[bytes] = []
    fids: list[int] = []
    counts: list[int] = []

    def flush() -> None:
        frame = pl.read_csv(io.BytesIO(b"".join(chunk)), has_header=False, separator=rs.delimiter,
                            quote_char=rs.quote_char, infer_schema=False, new_columns=names, columns=columns,
                            encoding="utf8", eol_char=terminator[-1:].decode())
        parts.append(shape(frame.with_columns(fid=pl.Series(np.repeat(fids, counts), dtype=pl.Int32))))
        chunk.clear()
        fids.clear()
        counts.clear()

    size = 0
    for fid, path, n in files.select("fid", "path", "records").iter_rows():
        if not n:
            continue
        body = _body((root / path).read_bytes(), terminator, bool(rs.trailer))
        chunk.append(body)
        fids.append(fid)
        counts.append(n)
        size += len(body)
        if size >= READ_BYTES:
            flush()
            size = 0
    if chunk:
        flush()
    if not parts:
        empty = pl.DataFrame({**{f"c{i}": pl.Series([], dtype=pl.String) for i in columns},
                              "fid": pl.Series([], dtype=pl.Int32)})
        return shape(empty)
    return pl.concat(parts)


def _epoch(column: str, fmt: str) -> pl.Expr:
    """A date-time field's text as seconds since the epoch (UTC), null where it does not parse."""
    return pl.col(column).str.strptime(pl.Datetime("us"), fmt, strict=False).dt.epoch("s")


# --------------------------------------------------------------------------- the runs


def _check_input(old: str, new: str, events: str | Path, out: str | Path) -> tuple[Ruleset, Ruleset, EventLog]:
    """Every bad input refused before anything is written (one UserError each)."""
    old_rs, new_rs = rules.load(old), rules.load(new)
    log = EventLog.open(events)  # a missing folder, table or column, or a wrong type: UserError
    target = Path(out)
    if target.exists():
        if not target.is_dir():
            raise UserError("is not a directory; expected an empty or new directory to write", file=str(target))
        if any(target.iterdir()):
            raise UserError("is not empty; expected an empty or new directory to write", file=str(target))
    elif not target.parent.is_dir():
        raise UserError("no such directory to create it in", file=str(target.parent))
    return old_rs, new_rs, log


def _subset(rs: Ruleset, ids: tuple[str, ...]) -> Ruleset:
    """``rs`` with only the reports ``ids`` (the engine runs every report of the ruleset it is given)."""
    return dataclasses.replace(rs, reports={rid: rs.reports[rid] for rid in ids})


def run_engine(events: str, out: str, rs: Ruleset, progress: bool | None) -> dict | None:
    """One engine run, in a child process: None, or the UserError it raised as data (an
    exception with keyword arguments does not cross processes as itself)."""
    try:
        engine.report(events, out, rs, progress=progress)
    except UserError as exc:
        return {"message": exc.detail, "file": exc.file, "path": exc.path}
    return None


def _result(future: Future) -> None:
    error = future.result()
    if error is not None:
        raise UserError(error["message"], file=error["file"], path=error["path"])


FILES_SCHEMA = {"run": pl.String, "path": pl.String, "report_id": pl.String, "recipient": pl.String,
                "sequence": pl.Int64, "created": pl.Int64, "records": pl.Int64, "sha256": pl.String,
                "bytes": pl.Int64, "fid": pl.Int32}


def _files(run: str, root: Path, first_fid: int) -> pl.DataFrame:
    """The files of one engine run, from its manifest, with their size on disk and a row number
    ``fid`` from ``first_fid`` (unique over both runs)."""
    manifest = json.loads((root / engine.MANIFEST).read_bytes())
    rows = [{"run": run, "path": e["path"], "report_id": e["report_id"], "recipient": e["recipient"],
             "sequence": e["sequence"], "created": int(dt.datetime.fromisoformat(e["created"]).timestamp()),
             "records": e["records"], "sha256": e["sha256"], "bytes": (root / e["path"]).stat().st_size,
             "fid": first_fid + i} for i, e in enumerate(manifest["files"])]
    return pl.DataFrame(rows, schema=FILES_SCHEMA)


def _deliver(files: pl.DataFrame, runs: Path, target: Path) -> None:
    """Files of a side's delivery hard-linked from their run (copied where the file system has
    no links)."""
    for run, path in files.select("run", "path").iter_rows():
        dest = target / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(runs / run / path, dest)
        except OSError:
            shutil.copyfile(runs / run / path, dest)


# --------------------------------------------------------------------------- figures


EVENT_WORDS = {"migration_failure": "a failed attempt", "migration_success": "a successful migration",
               "install": "an install"}


def _latency(seconds: pl.Series) -> dict | None:
    """p50, p95 (linear between the nearest records, as numpy's default) and max, in hours."""
    if seconds.len() == 0:
        return None
    return {"p50": round(float(seconds.quantile(0.5, "linear")) / HOUR, 3),
            "p95": round(float(seconds.quantile(0.95, "linear")) / HOUR, 3),
            "max": round(float(seconds.max()) / HOUR, 3)}


def _latencies(latency: pl.DataFrame | None, files: pl.DataFrame) -> dict:
    """Latency figures of one report and side: None -> the whole, recipient -> its own (none for a
    report whose records carry no event time: a summary, kept only to find moved records)."""
    if latency is None or "seconds" not in latency.columns:
        return {}
    out = {None: _latency(latency["seconds"])}
    by = latency.join(files.select("fid", "recipient"), on="fid", how="left")
    for (party,), part in by.partition_by("recipient", as_dict=True, include_key=False).items():
        out[party] = _latency(part["seconds"])
    return out


def _figures(files: pl.DataFrame, latency: dict | None, days: float) -> dict:
    """files, records, bytes, largest file, busiest day, files a day and latency of some files
    (``latency``: their figures, None for a summary report)."""
    if files.height == 0:
        return {"files": 0, "records": 0, "bytes": 0, "largest_file": None, "busiest_day": None,
                "files_per_day": 0.0, "latency_hours": None}
    largest = files.sort(["bytes", "path"], descending=[True, False]).row(0, named=True)
    by_day = (files.group_by(pl.from_epoch("created", time_unit="s").dt.date().alias("day"))
              .agg(pl.col("records").sum(), pl.len().alias("files"))
              .sort(["records", "day"], descending=[True, False]).row(0, named=True))
    return {"files": files.height, "records": int(files["records"].sum()), "bytes": int(files["bytes"].sum()),
            "largest_file": {"path": largest["path"], "bytes": largest["bytes"], "records": largest["records"]},
            "busiest_day": {"date": by_day["day"].isoformat(), "records": by_day["records"], "files": by_day["files"]},
            "files_per_day": round(files.height / days, 3) if days > 0 else None, "latency_hours": latency}


def _reduce(frame: pl.DataFrame, at: int | None, fmt: str, keys: bool, created: pl.DataFrame) -> pl.DataFrame:
    """A batch of records as what is kept of them: the file's ``fid``, the seconds from the
    event (the field ``at`` holds its time) to the file's creation (``seconds``), and, with
    ``keys``, two 64-bit hashes of the whole record with different seeds (``k1``, ``k2``: 128
    bits, so that two different records share a key with a chance of about 1e-26 at national
    volume, in 16 bytes a record instead of the record's text)."""
    out = [pl.col("fid")]
    if at is not None:
        frame = frame.join(created, on="fid", how="left")
        out.append((pl.col("created") - _epoch(f"c{at}", fmt)).cast(pl.Int32).alias("seconds"))
    if keys:
        line = pl.concat_str([pl.col(c).fill_null("") for c in frame.columns if c.startswith("c")
                              and c[1:].isdigit()], separator="\x1f")
        out += [line.hash(seed=0).alias("k1"), line.hash(seed=1).alias("k2")]
    return frame.select(out)


def _moves(old: pl.DataFrame, new: pl.DataFrame, old_files: pl.DataFrame, new_files: pl.DataFrame) -> pl.DataFrame:
    """Each record of either side matched with the same record (every field equal, the n-th of
    equal ones with the n-th) on the other: columns recipient_old/new, created_old/new (null
    where it is not on that side)."""
    def keyed(records: pl.DataFrame, files: pl.DataFrame, side: str) -> pl.DataFrame:
        return (records.select("k1", "k2", "fid")
                .with_columns(n=pl.int_range(pl.len(), dtype=pl.UInt32).over("k1", "k2"))
                .join(files.select("fid", "recipient", "created"), on="fid", how="left")
                .select("k1", "k2", "n", pl.col("recipient").alias(f"recipient_{side}"),
                        pl.col("created").alias(f"created_{side}")))
    return keyed(old, old_files, "old").join(keyed(new, new_files, "new"), on=["k1", "k2", "n"], how="full",
                                             coalesce=True)


def _one_side(files: pl.DataFrame, side: str) -> pl.DataFrame:
    """The moves of a report on one side only: every record appears (NEW) or disappears (OLD)."""
    other = "new" if side == "old" else "old"
    return files.select(pl.col("recipient").repeat_by("records").explode().alias(f"recipient_{side}"),
                        pl.col("created").repeat_by("records").explode().alias(f"created_{side}"),
                        pl.lit(None, dtype=pl.String).alias(f"recipient_{other}"),
                        pl.lit(None, dtype=pl.Int64).alias(f"created_{other}"))


def _move_counts(moves: pl.DataFrame | None, recipient: str | None = None) -> dict:
    if moves is None:
        return {"moved_records": 0, "appeared_records": 0, "disappeared_records": 0}
    if recipient is not None:
        moves = moves.filter((pl.col("recipient_old") == recipient) | (pl.col("recipient_new") == recipient))
    both = pl.col("recipient_old").is_not_null() & pl.col("recipient_new").is_not_null()
    elsewhere = (pl.col("recipient_old") != pl.col("recipient_new")) | (pl.col("created_old") != pl.col("created_new"))
    moved = both & elsewhere
    appeared = pl.col("recipient_old").is_null()
    gone = pl.col("recipient_new").is_null()
    if recipient is not None:  # a record appears for the recipient that gets it, disappears for the one that lost it
        appeared = appeared & (pl.col("recipient_new") == recipient)
        gone = gone & (pl.col("recipient_old") == recipient)
    row = moves.select(moved.sum().alias("m"), appeared.sum().alias("a"), gone.sum().alias("d")).row(0)
    return {"moved_records": int(row[0] or 0), "appeared_records": int(row[1] or 0),
            "disappeared_records": int(row[2] or 0)}


# --------------------------------------------------------------------------- the whole


@dataclass
class Impact:
    """The result: ``data`` (the JSON), ``markdown`` (DIR/impact.md) and where it was written."""

    data: dict
    markdown: str
    out: Path

    def render(self) -> str:
        d = self.data
        lines = [f"impact of {d['old']} -> {d['new']} on {d['events']} -> {self.out}"]
        for rid, r in d["reports"].items():
            o, n = r["old"], r["new"]
            lines.append(f"  {rid}  files {o['files']:>8,} -> {n['files']:<8,} records {o['records']:>10,} -> "
                         f"{n['records']:<10,} moved {r['moved_records']:>8,}  "
                         + ("identical" if r["identical"] else "differs") + ("  (made once)" if r["shared"] else ""))
        rej = d["old_parser_rejects"]
        lines.append(f"  a parser built on {d['old']} rejects {rej['files_rejected']:,} of {rej['files_checked']:,} "
                     f"files of {d['new']} checked" + (f" ({', '.join(rej['checked_reports'])})"
                                                       if rej["checked_reports"] else ""))
        t = d["timings_seconds"]
        lines.append("  wall time " + f"{t['total']:.2f} s (" + ", ".join(f"{k} {v:.2f}" for k, v in t.items()
                                                                      if k != "total") + ")")
        lines.append(f"  {self.out / 'impact.md'}")
        return "\n".join(lines)


class _Reader:
    """Reads one side's records of the reports that need them (latency, matching) and keeps
    what ``_reduce`` leaves: (side, report) -> frame."""

    def __init__(self, p: Plan, rulesets: dict[str, Ruleset], tmp: Path):
        self.p, self.rulesets, self.tmp = p, rulesets, tmp
        self.kept: dict[tuple[str, str], pl.DataFrame] = {}

    def read(self, side: str, files: pl.DataFrame, ids) -> None:
        rs = self.rulesets[side]
        for rid in ids:
            report = rs.reports[rid]
            at = _latency_field(rs, report)
            keys = rid not in self.p.shared and all(rid in r.reports for r in self.rulesets.values())
            if at is None and not keys:
                continue
            mine = files.filter(pl.col("report_id") == rid)
            shape = functools.partial(_reduce, at=at, fmt=rs.datetime_format, keys=keys,
                                      created=mine.select("fid", "created"))
            columns = list(range(len(report.detail))) if keys else [at]
            self.kept[side, rid] = _records(self.tmp / side, mine, rs, report, columns, shape)


def impact(old: str, new: str, events: str | Path, out: str | Path, progress: bool | None = False) -> Impact:
    """Compare rulesets ``old`` and ``new`` (names or paths) on the event log ``events``; write
    OUT (see the module docstring). Bad input is a UserError before anything is written.

    The engine runs in a child process (its memory is the system's again when it ends): OLD's
    whole ruleset first, then NEW's reports that are not shared, while this process reads OLD's
    files (the shared reports' among them) on the other core."""
    started = time.perf_counter()
    old_rs, new_rs, log = _check_input(old, new, events, out)
    rulesets = {"old": old_rs, "new": new_rs}
    p = plan(old_rs, new_rs)
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp-impact-{os.getpid()}"
    timings: dict[str, float] = {}
    events = str(Path(events).resolve())
    try:
        tmp.mkdir()
        runs = tmp / "runs"
        reader = _Reader(p, rulesets, tmp)
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            t = time.perf_counter()
            _result(pool.submit(run_engine, events, str(runs / "old"), old_rs, progress))
            timings["engine_old"] = time.perf_counter() - t
            t_new = time.perf_counter()
            pending = (pool.submit(run_engine, events, str(runs / "new"), _subset(new_rs, p.new), progress)
                       if p.new else None)
            if pending is not None and not p.shared:  # NEW's whole ruleset: its memory is not shared with a read
                _result(pending)
            t = time.perf_counter()
            old_files = _files("old", runs / "old", 0)
            _deliver(old_files, runs, tmp / "old")
            _deliver(old_files.filter(pl.col("report_id").is_in(p.shared)), runs, tmp / "new")
            timings["deliveries"] = time.perf_counter() - t
            t = time.perf_counter()
            reader.read("old", old_files, old_rs.reports)
            timings["records_old"] = time.perf_counter() - t
            if pending is not None:
                _result(pending)
            timings["engine_new"] = time.perf_counter() - t_new
        new_made = _files("new", runs / "new", old_files.height) if p.new else pl.DataFrame(schema=FILES_SCHEMA)
        t = time.perf_counter()
        _deliver(new_made, runs, tmp / "new")
        reader.read("new", new_made, p.new)
        timings["records_new"] = time.perf_counter() - t
        sides = {"old": old_files,
                 "new": pl.concat([old_files.filter(pl.col("report_id").is_in(p.shared)), new_made])}
        t = time.perf_counter()
        data = _compare(p, rulesets, sides, reader.kept, log)
        timings["figures"] = time.perf_counter() - t
        t = time.perf_counter()
        data["old_parser_rejects"] = _old_parser(p, old_rs, sides["new"], tmp)
        timings["check"] = time.perf_counter() - t
        data["events"] = events
        timings["total"] = time.perf_counter() - started
        data["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        markdown = render_markdown(data)
        (tmp / "impact.md").write_text(markdown, encoding="utf-8")
        (tmp / "impact.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # checked empty at the start
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Impact(data, markdown, out)


def _compare(p: Plan, rulesets: dict[str, Ruleset], sides: dict[str, pl.DataFrame],
             kept: dict[tuple[str, str], pl.DataFrame], log: EventLog) -> dict:
    """The figures of every report and recipient (the JSON less the checker's part)."""
    start, end = log.period
    days = (end - start) / 86400
    ids = list(dict.fromkeys([*rulesets["old"].reports, *rulesets["new"].reports]))
    reports: dict[str, dict] = {}
    recipients: dict[str, dict] = {}
    for rid in ids:
        present = [s for s in SIDES if rid in rulesets[s].reports]
        files = {s: sides[s].filter(pl.col("report_id") == rid) for s in SIDES}
        latency = {s: _latencies(kept.get((s, rid)), files[s]) for s in SIDES}
        if rid in p.shared:
            latency["new"] = latency["old"]  # the same files
        moves = None
        if len(present) == 1:  # a report added or removed: all its records appear or disappear
            moves = _one_side(files[present[0]], present[0])
        elif rid not in p.shared:
            moves = _moves(kept["old", rid], kept["new", rid], files["old"], files["new"])
        detail = [_latency_field(rulesets[s], rulesets[s].reports[rid]) is not None for s in present]
        summary = any(rulesets[s].reports[rid].kind == "summary" for s in present)
        note = None if all(detail) else (
            f"{rid} is a summary report: its records count events (no field holds an event's {EVENT_COLUMN}), so "
            "there is no time from one event to its report" if summary else
            f"{rid} has no date-time field holding the event's {EVENT_COLUMN}: no latency")
        reports[rid] = {"present": present, "shared": rid in p.shared, "how": p.reason(rid), "latency_note": note,
                        "event": _event_words(rulesets, rid),
                        **{s: _figures(files[s], latency[s].get(None), days) for s in SIDES},
                        "identical": _identical(files["old"], files["new"]), **_move_counts(moves)}
        parties = sorted(set(files["old"]["recipient"]) | set(files["new"]["recipient"]))
        for party in parties:
            mine = {s: files[s].filter(pl.col("recipient") == party) for s in SIDES}
            recipients.setdefault(party, {})[rid] = {
                **{s: _figures(mine[s], latency[s].get(party), days) for s in SIDES},
                "identical": _identical(mine["old"], mine["new"]), **_move_counts(moves, party)}
    return {"old": rulesets["old"].name, "new": rulesets["new"].name,
            "period": {"start": dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat(),
                       "end": dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat(), "days": round(days, 3)},
            "plan": {"shared": list(p.shared), "made_under_each": sorted(set(p.old) | set(p.new)),
                     "settings_equal": p.settings_equal, "reasons": {rid: p.reason(rid) for rid in ids}},
            "reports": reports, "recipients": dict(sorted(recipients.items()))}


def _event_words(rulesets: dict[str, Ruleset], rid: str) -> str:
    """How a sentence names the event a record reports ("a failed attempt")."""
    report = (rulesets["new"].reports.get(rid) or rulesets["old"].reports[rid])
    words = {EVENT_WORDS.get(t, "an event") for t in report.event_types}
    return words.pop() if len(words) == 1 else "an event"


def _identical(old: pl.DataFrame, new: pl.DataFrame) -> bool:
    """The same files (path and SHA-256 of the content) on both sides."""
    def key(f: pl.DataFrame) -> set:
        return set(f.select("path", "sha256").iter_rows())
    return key(old) == key(new)


def _old_parser(p: Plan, old: Ruleset, new_files: pl.DataFrame, tmp: Path) -> dict:
    """NEW's files of the reports a parser built on OLD reads differently (the contract changed,
    or the report is new), checked with OLD's ruleset: files rejected, by check. The other
    reports' files are made by identical rules and are, byte for byte, the files OLD makes."""
    scope = [*p.contract_changed, *(r for r in p.new if r not in p.old)]
    result = {"checked_reports": scope, "files_checked": 0, "files_rejected": 0,
              "files_rejected_for_form_or_content": 0, "by_check": {},
              "findings_by_check": {}, "warnings_by_check": {},
              "note": "only the files of reports whose definition differs in what a parser reads are checked; "
                      "the others are the files the old ruleset makes itself"}
    chosen = new_files.filter(pl.col("report_id").is_in(scope))
    if chosen.height == 0:
        return result
    folder = tmp / "runs" / "new-checked-by-old"
    for path in chosen["path"]:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        os.link(tmp / "new" / path, folder / path)
    verdict = check(folder, old)
    errors: dict[str, set] = {}
    for f in verdict:
        if f.severity == "error":
            errors.setdefault(f.check, set()).add(f.file)
    result["files_checked"] = verdict.files
    result["files_rejected"] = len(set().union(*errors.values())) if errors else 0
    # rejected for their form or content, not only for when they come: what breaks a parser
    form = [v for c, v in errors.items() if c not in TIMING_CHECKS]
    result["files_rejected_for_form_or_content"] = len(set().union(*form)) if form else 0
    result["by_check"] = {c: len(v) for c, v in sorted(errors.items())}
    result["findings_by_check"] = {c: n for c, n in sorted(verdict.totals.items()) if CATALOGUE[c].severity == "error"}
    result["warnings_by_check"] = {c: n for c, n in sorted(verdict.totals.items()) if CATALOGUE[c].severity != "error"}
    shutil.rmtree(folder)
    return result


# --------------------------------------------------------------------------- impact.md


def _h(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} h"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _sentence(rid: str, r: dict, per_day: bool) -> str:
    """One report's change in words, e.g. "ECOSMIG-002 4.1 files a day instead of 1.0; median
    time from a failed attempt to its report 4.2 h instead of 17.9 h"."""
    o, n = r["old"], r["new"]
    if per_day and f"{n['files_per_day']:.1f}" != f"{o['files_per_day']:.1f}":
        parts = [f"{rid} {n['files_per_day']:,.1f} files a day instead of {o['files_per_day']:,.1f}"]
    elif n["files"] != o["files"]:
        parts = [f"{rid} {_n(n['files'], 'file')} instead of {o['files']:,}"]
    else:
        parts = [f"{rid} {_n(n['files'], 'file')} as before"]
    if n["records"] != o["records"]:
        parts.append(f"{_n(n['records'], 'record')} instead of {o['records']:,}")
    lo, ln = o["latency_hours"], n["latency_hours"]
    if lo and ln and lo != ln:
        words = {"p50": f"median time from {r.get('event', 'an event')} to its report", "p95": "95th percentile",
                 "max": "longest"}
        said = [f"{words[k]} {_h(ln[k])} instead of {_h(lo[k])}" for k in ("p50", "p95", "max") if ln[k] != lo[k]]
        parts.append(", ".join(said))
    moved = [_n(r[k], "record") + w for k, w in (("moved_records", " in another run or to another recipient"),
                                                  ("appeared_records", " not there before"),
                                                  ("disappeared_records", " no longer there")) if r[k]]
    if moved:
        parts.append(", ".join(moved))
    if n["largest_file"] and o["largest_file"] and n["largest_file"]["bytes"] != o["largest_file"]["bytes"]:
        parts.append(f"largest file {n['largest_file']['bytes']:,} bytes instead of {o['largest_file']['bytes']:,}")
    return "; ".join(parts)


def _row(rid: str, r: dict) -> str:
    """A report's row of the per-report table: "a -> b" where the sides differ."""
    o, n = r["old"], r["new"]

    def pair(a: str, b: str) -> str:
        return b if a == b else f"{a} -> {b}"

    def lat(key: str) -> str:
        return pair(_h((o["latency_hours"] or {}).get(key)), _h((n["latency_hours"] or {}).get(key)))

    def big(f: dict) -> str:
        return f"{f['largest_file']['bytes']:,}" if f["largest_file"] else "-"

    def busy(f: dict) -> str:
        return f"{f['busiest_day']['date']} ({f['busiest_day']['records']:,})" if f["busiest_day"] else "-"
    cells = [rid, *(pair(f"{o[k]:,}", f"{n[k]:,}") for k in ("files", "records", "bytes")), pair(big(o), big(n)),
             pair(busy(o), busy(n)), lat("p50"), lat("p95"), lat("max"),
             *(f"{r[k]:,}" for k in ("moved_records", "appeared_records", "disappeared_records")),
             "yes" if r["identical"] else "no"]
    return "| " + " | ".join(cells) + " |"


def render_markdown(d: dict) -> str:
    """DIR/impact.md: per report, per supplier, and what a parser built on OLD makes of NEW's files."""
    old, new = d["old"], d["new"]
    lines = [f"# Change impact: {old} -> {new}", "",
             f"Event log `{d['events']}`, {d['period']['start'][:10]} to {d['period']['end'][:10]} "
             f"({d['period']['days']:g} days). Every figure compares the files of {new} with those of {old} "
             "made from this log; latency is the time from the event a record reports to the creation of the "
             "file that carries it.", ""]
    if d["plan"]["shared"]:
        lines += [f"Made once for both (their definitions reach every file identically): "
                  f"{', '.join(d['plan']['shared'])}. Made under each ruleset: "
                  f"{', '.join(d['plan']['made_under_each']) or 'none'}.", ""]
    lines += ["## Per report", "",
              "| report | files | records | bytes | largest file (bytes) | busiest day (records) | latency p50 | "
              "latency p95 | latency max | moved | appeared | disappeared | files identical |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [_row(rid, r) for rid, r in d["reports"].items()]
    lines.append("")
    for rid, r in d["reports"].items():
        if r["identical"]:
            continue
        lines.append(f"- {_sentence(rid, r, per_day=False)}.")
    for r in d["reports"].values():
        if r["latency_note"]:
            lines.append(f"- {r['latency_note']}.")
    lines += ["", "## Per supplier", ""]
    for party, reports in d["recipients"].items():
        changed = [_sentence(rid, {**r, "event": d["reports"][rid]["event"]}, per_day=True)
                   for rid, r in reports.items() if not r["identical"]]
        same = [rid for rid, r in reports.items() if r["identical"]]
        text = "; ".join(changed) if changed else "no change"
        lines.append(f"- {party}: {text}." + (f" Files identical: {', '.join(same)}." if same else ""))
    rej = d["old_parser_rejects"]
    lines += ["", f"## What a parser built on {old} makes of the files of {new}", ""]
    if not rej["checked_reports"]:
        lines.append(f"No report's definition differs in what a parser reads: every file of {new} is a file "
                     f"{old} makes itself. Nothing was checked.")
    else:
        form = rej["files_rejected_for_form_or_content"]
        lines.append(f"{rej['files_rejected']:,} of the {rej['files_checked']:,} files of "
                     f"{', '.join(rej['checked_reports'])} under {new} fail {old}'s checks (emrr check with "
                     f"--ruleset {old}); {rej['note']}. {form:,} of them fail for their form or content (a parser "
                     f"built on {old} rejects or misreads them); "
                     + ("the others only for when they come or the period they cover: they parse as before, but "
                        "a pipeline that checks run times and windows rejects them." if form < rej["files_rejected"]
                        else "none only for when it comes."))
        if rej["by_check"]:
            lines += ["", "| check | what it checks | files rejected | findings |", "| --- | --- | --- | --- |"]
            lines += [f"| {c} | {CATALOGUE[c].title}{' (when files come)' if c in TIMING_CHECKS else ''} | {n:,} | "
                      f"{rej['findings_by_check'].get(c, 0):,} |" for c, n in rej["by_check"].items()]
    return "\n".join(lines) + "\n"
