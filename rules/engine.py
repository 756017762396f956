"""The reference report engine: an event log and a ruleset in, the EMRR report files out.

It runs every scheduled run of every report that falls in the log's period, half a calendar
month of runs at a time (all reports for that half month, then the next), and writes each produced file to
``OUT/<SEC Party ID>/<file name>``, then a run manifest. Files are written under a temporary name
and renamed; a journal line is appended for each, so that a run stopped at any point (kill -9)
resumes with ``--resume`` to exactly the files of an uninterrupted run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import resource
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from emrr.rules import schedule
from emrr.rules.eventlog import EventLog, _kind, collect, ts
from emrr.rules.recipients import TYPE_CODES, SupplyIndex, device_fuel, with_recipient
from emrr.rules.ruleset import Field, Report, Ruleset
from tqdm import tqdm

from emrr.errors import UserError

_PARTY = re.compile(r"^[A-Z0-9]{6}$")
STATE = ".emrr-state.json"
JOURNAL = ".emrr-journal.jsonl"
MANIFEST = "run-manifest.json"
FORMAT = "emrr-report-run"
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
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"ruleset": self.ruleset, "events": self.events, "out": self.out,
                "per_report": {k: vars(v) for k, v in sorted(self.per_report.items())},
                "files": sum(v.files for v in self.per_report.values()),
                "records": sum(v.records for v in self.per_report.values()),
                "resumed_files": self.resumed_files, "wall_seconds": self.wall_seconds,
                "too_long": dict(sorted(self.too_long.items())),
                "peak_rss_bytes": self.peak_rss_bytes}


# --------------------------------------------------------------------------- output and journal


class Output:
    """The output folder: state, journal, atomic files, and the run manifest at the end."""

    def __init__(self, out: Path, fingerprint: str, ruleset: Ruleset, resume: bool):
        self.out = out
        self.entries: list[dict] = []
        self.done: dict[str, dict] = {}
        state = {"format": FORMAT, "fingerprint": fingerprint, "ruleset": ruleset.name,
                 "ruleset_digest": ruleset.digest}
        self.created_folder = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output directory: {exc.strerror}", file=str(out))
        state_path = out / STATE
        leftover = out / f".{STATE}.tmp"  # killed before the state was in place: nothing else was written
        if leftover.is_file() and not state_path.exists():
            leftover.unlink()
        existing = [p for p in out.iterdir()]
        if state_path.is_file():
            try:
                previous = json.loads(state_path.read_text(encoding="utf-8"))
            except ValueError:
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
        for stale in out.rglob(".*.tmp"):
            stale.unlink()
        self.journal = open(out / JOURNAL, "a", encoding="utf-8")

    def _load_journal(self) -> None:
        path = self.out / JOURNAL
        if not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: that file is written again
            target = self.out / entry["path"]
            if target.is_file():
                self.done[entry["path"]] = entry

    def write(self, entry: dict, content: bytes) -> bool:
        """Write one report file atomically and journal it; False when it was already written."""
        previous = self.done.get(entry["path"])
        if previous is not None:
            if previous["sha256"] != entry["sha256"]:
                raise UserError(f"{entry['path']} differs from the file an earlier run wrote; the event log "
                                "or ruleset changed: start again in an empty directory", file=str(self.out))
            self.entries.append(entry)
            return False
        target = self.out / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, content)
        self.journal.write(json.dumps(entry, sort_keys=True) + "\n")
        self.journal.flush()
        self.entries.append(entry)
        return True

    def discard(self) -> None:
        """Undo a fresh run that stopped on bad input: nothing half-written is left."""
        self.journal.close()
        if self.created_folder:
            shutil.rmtree(self.out, ignore_errors=True)
            return
        for entry in self.entries:
            (self.out / entry["path"]).unlink(missing_ok=True)
        for name in (STATE, JOURNAL):
            (self.out / name).unlink(missing_ok=True)
        for folder in sorted({(self.out / e["path"]).parent for e in self.entries}, reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass

    def finish(self, meta: dict) -> None:
        self.journal.close()
        manifest = {"format": FORMAT, **meta, "files": sorted(self.entries, key=lambda e: e["path"])}
        _write_atomically(self.out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(content)
    os.replace(tmp, path)


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
        else:
            expr = col.cast(pl.String)
        return expr.alias(f.name)

    def details(self, frame: pl.DataFrame, report: Report) -> tuple[bytes, np.ndarray]:
        """All rows of ``frame`` as CSV records in one buffer, and where each record starts
        (``starts[i]`` to ``starts[i+1]``; one extra entry at the end)."""
        if frame.height == 0:
            return b"", np.zeros(1, dtype=np.int64)
        text = frame.select([self.field_expr(f) for f in report.detail])
        # a ruleset may not hold what its own rules produce (the consultation draft's ECoS Status):
        # written as it is, never cut, and counted for the summary
        over = text.select([(pl.col(f.name).str.len_chars() > f.max_length).sum() for f in report.detail]).row(0)
        for f, n in zip(report.detail, over):
            if n:
                self.too_long[f"{report.id} {f.name}"] += int(n)
        options = dict(include_header=False, separator=self.rs.delimiter, quote_char=self.rs.quote_char,
                       line_terminator=self.rs.line_terminator, quote_style="necessary", null_value="")
        buffer = io.BytesIO()
        text.write_csv(buffer, **options)
        data = buffer.getvalue()
        term = self.rs.line_terminator.encode()
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

    def record(self, fields: tuple[Field, ...], values: dict) -> bytes:
        row = []
        for f in fields:
            if f.source_kind == "constant":
                row.append(f.source)
                continue
            v = values[f.source]
            if f.type == "datetime":
                row.append(_utc(v).strftime(self.rs.datetime_format))
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
        self.runs = {rid: schedule.Runs.build(r, start, end, outages) for rid, r in ruleset.reports.items()}
        self._check_columns()
        self.supply = SupplyIndex(log)
        self._nm_candidates: dict | None = None

    def _check_columns(self) -> None:
        """A rule citing a column the event log lacks, or of a type its field cannot take, is an
        error before anything is written."""
        derived = {"ecos_status": "str", "devices_count": "int", "classified_at": "time",
                   "activity_date": "time", "recipient": "str", "created": "time", "run_idx": "int"}
        schema = self.log.tables["events"].collect_schema()
        fits = {"datetime": {"time"}, "date": {"time"}, "integer": {"int"}, "text": {"str", "int"}}
        for report in self.rs.reports.values():
            where = str(self.rs.path / f"{report.id}.yaml")
            known = {**derived, **{c: "int" for c in report.counts}}
            cited = [(f.source, f) for f in report.detail if f.source_kind == "column"]
            cited += [(c, None) for c in (*report.order_by, *report.group_by)]
            for name, rule in cited:
                if name in known:
                    kind = known[name]
                elif name in schema:
                    kind = _kind(schema[name])
                else:
                    raise UserError(f"report {report.id} cites column {name!r}, which the event log's events table "
                                    f"lacks; expected one of {', '.join(sorted(schema.names()))}", file=where)
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
            nxt = schedule._add_months(t, 1)
            mid = t.replace(day=16)
            out += [(int(t.timestamp()), int(mid.timestamp())), (int(mid.timestamp()), int(nxt.timestamp()))]
            t = nxt
        return out

    def run(self) -> Summary:
        started = time.perf_counter()
        summary = Summary(self.rs.name, str(self.log.root), str(self.out_path))
        output = Output(self.out_path, self.log.fingerprint, self.rs, self.resume)
        months = self.months()
        steps = [(m, rid) for m in months for rid in self.rs.reports]
        try:
            with tqdm(total=len(steps), unit="step", desc="reports", leave=False,
                      disable=(not self.progress) if self.progress is not None else None) as bar:
                for (m0, m1), rid in steps:
                    runs = self.runs[rid]
                    a, b = np.searchsorted(runs.times, [m0, m1], side="left")
                    if b > a:
                        rows = self.rows(self.rs.reports[rid], runs, int(a), int(b))
                        self.emit(self.rs.reports[rid], runs, rows, output, summary)
                    bar.update()
        except UserError:
            if not self.resume:
                output.discard()
            raise
        for rid in self.rs.reports:
            summary.per_report.setdefault(rid, ReportSummary())
        output.finish({"ruleset": self.rs.name, "event_log": str(self.log.root),
                       "event_log_fingerprint": self.log.fingerprint,
                       "period": {"start": _utc(self.log.period[0]).isoformat(),
                                  "end": _utc(self.log.period[1]).isoformat()}})
        summary.too_long = dict(self.fmt.too_long)
        summary.wall_seconds = time.perf_counter() - started
        summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return summary

    # ------------------------------------------------------------------ rows per assignment

    def rows(self, report: Report, runs: schedule.Runs, a: int, b: int) -> pl.DataFrame:
        """The detail rows of runs a..b-1, with run_idx (the run whose window they belong to),
        created (the run that produces the file) and recipient."""
        kind = report.assignment
        if kind == "previously_unreported":
            return self._previously_unreported(report, runs, a, b)
        if kind == "window_activity":
            return self._window_activity(report, runs, a, b)
        if kind == "non_migratable_snapshot":
            return self._non_migratable(report, runs, a, b)
        return self._gaining_supplier(report, runs, a, b)

    def _created(self, runs: schedule.Runs, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For windowed reports: the run that makes up each run (itself, or the next that happens
        when it fell in an outage: catch-up), and whether there is one in the span."""
        n = len(runs.times)
        if self.rs.summary_outages == "skip":
            producer = np.where(runs.happens[idx], idx, n)
        else:
            producer = runs.next_happening[idx]
        ok = producer < n
        created = np.where(ok, runs.times[np.minimum(producer, n - 1)], 0)
        return created, ok

    def _previously_unreported(self, report: Report, runs, a: int, b: int) -> pl.DataFrame:
        happening = np.flatnonzero(runs.happens)
        inside = happening[(happening >= a) & (happening < b)]
        if len(inside) == 0:
            return pl.DataFrame()
        before = happening[happening < a]
        predicate = pl.col("occurred_at") <= ts(runs.window_end[b - 1])
        if len(before):
            p = before[-1]
            predicate &= (pl.col("occurred_at") > ts(runs.window_end[p])) | (pl.col("notified_at") > ts(runs.times[p]))
        needed = sorted({c for c in report.columns} | {"occurred_at", "notified_at", "premise_index", "device_type",
                                                        "device_id"} | set(report.order_by))
        frame = collect(self.log.events(report.event_types).filter(predicate).select(needed))
        idx = runs.assign(frame["occurred_at"].to_numpy(), frame["notified_at"].to_numpy())
        frame = frame.with_columns(pl.Series("run_idx", idx)).filter(
            (pl.col("run_idx") >= a) & (pl.col("run_idx") < b))
        frame = frame.with_columns(pl.Series("created", runs.times[frame["run_idx"].to_numpy()]))
        return with_recipient(frame, self.supply, "occurred_at")

    def _window_activity(self, report: Report, runs, a: int, b: int) -> pl.DataFrame:
        lo, hi = int(runs.window_start[a]), int(runs.window_end[b - 1])
        frame = collect(self.log.events(report.event_types)
                        .filter(pl.col("occurred_at").is_between(ts(lo), ts(hi)))
                        .select("event_type", "occurred_at", "notified_at", "premise_index", "device_type"))
        occ = frame["occurred_at"].to_numpy()
        idx = np.searchsorted(runs.window_end, occ, side="left")
        in_range = (idx >= a) & (idx < b)
        idx = np.where(in_range, idx, a)
        created, ok = self._created(runs, idx)
        keep = in_range & ok & (runs.window_start[idx] <= occ) & (frame["notified_at"].to_numpy() <= created)
        frame = frame.with_columns(pl.Series("run_idx", idx), pl.Series("created", created)).filter(pl.Series(keep))
        frame = with_recipient(frame, self.supply, "occurred_at").filter(pl.col("recipient").is_not_null())
        counts = [pl.col("event_type").eq(t).sum().alias(name) for name, t in report.counts.items()]
        return (frame.with_columns((pl.col("occurred_at") // 86400 * 86400).alias("activity_date"))
                .group_by(["run_idx", "created", "recipient", "activity_date"]).agg(counts))

    def _nm_devices(self) -> dict:
        """Devices that are ever on a Non-Migratable combination, as arrays: their initial
        combination, firmware upgrades and migration, read once (ECOSMIG-004 snapshots)."""
        if self._nm_candidates is not None:
            return self._nm_candidates
        keys = ["device_type", "manufacturer", "model", "firmware_version"]
        nm = collect(self.log.tables["non_migratable"].select(*keys, "classified_at"))
        on_nm = pl.lit(False)
        for row in nm.iter_rows(named=True):
            on_nm = on_nm | pl.all_horizontal([pl.col(k) == row[k] for k in keys])
        upgrades = collect(self.log.tables["events"].filter(pl.col("event_type") == "firmware_upgrade")
                           .select("device_index", "occurred_at", *keys))
        onto_nm = upgrades.join(nm.select(keys), on=keys, how="semi")["device_index"].unique()
        devices = collect(self.log.tables["devices"]
                          .filter(on_nm | pl.col("device_index").is_in(onto_nm.implode()))
                          .select("device_index", *keys, "premise_index", "installed_at")).sort("device_index")
        combo = pl.concat_str([pl.col(k) for k in keys], separator="/")
        names = sorted(set(devices.select(combo)[:, 0].to_list()) | set(upgrades.select(combo)[:, 0].to_list())
                       | set(nm.select(combo)[:, 0].to_list()))
        code = {n: i for i, n in enumerate(names)}
        classified_at = np.full(len(names), np.iinfo(np.int64).max, dtype=np.int64)
        for n, t in zip(nm.select(combo)[:, 0].to_list(), nm["classified_at"].to_list()):
            classified_at[code[n]] = t
        index = devices["device_index"].to_numpy()
        ups = upgrades.filter(pl.col("device_index").is_in(pl.Series(index).implode()))
        pos = np.searchsorted(index, ups["device_index"].to_numpy())
        span = np.int64(1) << np.int64(36)
        up_key = pos.astype(np.int64) * span + ups["occurred_at"].to_numpy()
        order = np.argsort(up_key, kind="stable")
        success = collect(self.log.events(["migration_success"])
                          .filter(pl.col("device_index").is_in(pl.Series(index).implode()))
                          .select("device_index", "occurred_at", "notified_at")).sort("occurred_at")
        success = success.unique(subset=["device_index"], keep="first")
        s_pos = np.searchsorted(index, success["device_index"].to_numpy())
        never = np.iinfo(np.int64).max
        succ_occ = np.full(len(index), never, dtype=np.int64)
        succ_notif = np.full(len(index), never, dtype=np.int64)
        succ_occ[s_pos] = success["occurred_at"].to_numpy()
        succ_notif[s_pos] = success["notified_at"].to_numpy()
        types = devices["device_type"].replace_strict(TYPE_CODES, default=3, return_dtype=pl.Int8).to_numpy()
        self._nm_candidates = {
            "names": names, "classified_at": classified_at, "premise": devices["premise_index"].to_numpy(),
            "type": types, "tcos": devices["installed_at"].is_null().to_numpy(),
            "initial": np.array([code[n] for n in devices.select(combo)[:, 0].to_list()], dtype=np.int64),
            "up_key": up_key[order], "up_combo": np.array([code[n] for n in ups.select(combo)[:, 0].to_list()],
                                                          dtype=np.int64)[order],
            "succ_occ": succ_occ, "succ_notif": succ_notif,
        }
        return self._nm_candidates

    def _non_migratable(self, report: Report, runs, a: int, b: int) -> pl.DataFrame:
        d = self._nm_devices()
        n = len(d["premise"])
        span = np.int64(1) << np.int64(36)
        parts = []
        for i in range(a, b):
            created, ok = self._created(runs, np.array([i]))
            if not ok[0] or n == 0:
                continue
            at, made = int(runs.window_end[i]), int(created[0])
            combo = d["initial"].copy()
            if len(d["up_key"]):  # the firmware at the snapshot: the last upgrade at or before it
                slot = np.arange(n, dtype=np.int64)
                j = np.searchsorted(d["up_key"], slot * span + at, side="right") - 1
                jc = np.maximum(j, 0)
                moved = (j >= 0) & (d["up_key"][jc] // span == slot)
                combo = np.where(moved, d["up_combo"][jc], combo)
            migrated = (d["succ_occ"] <= at) & (d["succ_notif"] <= made)
            keep = (d["classified_at"][combo] <= at) & d["tcos"] & ~migrated
            if not keep.any():
                continue
            supplier = self.supply.codes(d["premise"][keep], d["type"][keep], np.full(int(keep.sum()), at))
            combo = combo[keep]
            has = supplier >= 0
            pair = supplier[has].astype(np.int64) * len(d["names"]) + combo[has]
            values, counts = np.unique(pair, return_counts=True)
            names = [d["names"][v % len(d["names"])].split("/") for v in values]
            parts.append(pl.DataFrame({
                "recipient": self.supply.names_of(values // len(d["names"])),
                "device_type": [x[0] for x in names], "manufacturer": [x[1] for x in names],
                "model": [x[2] for x in names], "firmware_version": [x[3] for x in names],
                "classified_at": d["classified_at"][values % len(d["names"])],
                "devices_count": counts.astype(np.int64),
                "run_idx": np.full(len(values), i, dtype=np.int64),
                "created": np.full(len(values), made, dtype=np.int64),
            }))
        return pl.concat(parts) if parts else pl.DataFrame()

    def _gaining_devices(self, ws: int, we: int) -> pl.DataFrame:
        """Devices whose premises changed supplier for the device's fuel in [ws, we] (ECOSMIG-003)."""
        changed = collect(self.log.tables["supply_changes"].filter(pl.col("occurred_at").is_between(ts(ws), ts(we)))
                          .select("premise_index", "fuel").unique())
        if changed.height == 0:
            return pl.DataFrame({"device_index": []}, schema={"device_index": pl.Int64})
        premises = collect(self.log.tables["premises"].select("premise_index", "has_gas", "has_electricity")
                           .filter(pl.col("premise_index").is_in(changed["premise_index"].unique().implode())))
        return (collect(self.log.tables["devices"].select("device_index", "premise_index", "device_type")
                        .filter(pl.col("premise_index").is_in(changed["premise_index"].unique().implode())))
                .join(premises, on="premise_index", how="left")
                .with_columns(device_fuel().alias("fuel"))
                .join(changed, on=["premise_index", "fuel"], how="semi")
                .select(pl.col("device_index").cast(pl.Int64)))

    def _gaining_supplier(self, report: Report, runs, a: int, b: int) -> pl.DataFrame:
        needed = sorted(set(report.columns) - {"ecos_status"} | {"device_index", "event_id", "event_type",
                        "occurred_at", "notified_at", "premise_index", "device_type", "attempt_number"})
        parts = []
        for i in range(a, b):
            created, ok = self._created(runs, np.array([i]))
            if not ok[0]:
                continue
            ws, we, made = int(runs.window_start[i]), int(runs.window_end[i]), int(created[0])
            gaining = self._gaining_devices(ws, we)
            if gaining.height == 0:
                continue
            history = collect(self.log.events(report.event_types)
                              .filter(pl.col("device_index").is_in(gaining["device_index"].implode())
                                      & (pl.col("occurred_at") <= ts(we)) & (pl.col("notified_at") <= ts(made)))
                              .select(needed))
            latest = (history.sort(["occurred_at", "event_id"])
                      .group_by("device_index", maintain_order=True).last())
            if latest.height == 0:
                continue
            status = pl.col("event_type").replace_strict(report.status, default=None)
            latest = latest.with_columns(
                status.alias("ecos_status"),
                pl.col("attempt_number").fill_null(0),
                pl.lit(we, dtype=pl.Int64).alias("snapshot_at"),
                pl.lit(i, dtype=pl.Int64).alias("run_idx"),
                pl.lit(made, dtype=pl.Int64).alias("created"),
            )
            parts.append(with_recipient(latest, self.supply, "snapshot_at"))
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()

    # ------------------------------------------------------------------ files

    def emit(self, report: Report, runs, rows: pl.DataFrame, output: Output, summary: Summary) -> None:
        stats = summary.per_report.setdefault(report.id, ReportSummary())
        if rows.height == 0:
            return
        mandatory = [f.source for f in report.detail if f.source_kind == "column" and f.mandatory]
        rows = rows.filter(pl.col("recipient").is_not_null())
        for column in mandatory:  # e.g. a GPF with no meter on its hub: no MPxN, no recipient
            rows = rows.filter(pl.col(column).is_not_null())
        order = ["created", "run_idx", "recipient", *report.order_by]
        rows = rows.sort(order)
        groups = rows.group_by(["created", "run_idx", "recipient"], maintain_order=True).len()
        data, starts = self.fmt.details(rows, report)
        offset = 0
        for created, run_idx, recipient, count in groups.iter_rows():
            body = data[starts[offset]: starts[offset + count]]
            offset += count
            if not count and not self.rs.produce_empty:
                continue
            self._write_file(report, runs, int(created), int(run_idx), recipient, body, count, output, stats, summary)

    def _write_file(self, report, runs, created, run_idx, recipient, body, count, output, stats, summary) -> None:
        if not _PARTY.match(recipient):  # it becomes a folder and a file name
            raise UserError(f"recipient {recipient!r} is not a SEC Party ID of 6 letters or digits",
                            file=str(self.log.root))
        key = (report.id, recipient)
        self.sequence[key] += 1
        sequence = self.sequence[key]
        if sequence > self.rs.sequence_max:
            raise UserError(f"sequence number {sequence} of {report.id} for {recipient} exceeds the ruleset's maximum")
        values = {"report_id": report.id, "recipient": recipient, "sequence": sequence, "title": report.title,
                  "created": created, "window_start": int(runs.window_start[run_idx]),
                  "window_end": int(runs.window_end[run_idx]), "rows_count": count}
        content = self.fmt.record(self.rs.header, values) + body + self.fmt.record(self.rs.trailer, values)
        name = self.rs.file_name(report.id, recipient, sequence, _utc(created))
        entry = {"path": f"{recipient}/{name}", "report_id": report.id, "recipient": recipient,
                 "sequence": sequence, "created": _utc(created).isoformat(),
                 "window_start": _utc(values["window_start"]).isoformat(),
                 "window_end": _utc(values["window_end"]).isoformat(), "records": count,
                 "sha256": _sha256(content)}
        if not output.write(entry, content):
            summary.resumed_files += 1
        stats.files += 1
        stats.records += count


def _sha256(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def report(events: str | Path, out: str | Path, ruleset: Ruleset, resume: bool = False,
           progress: bool | None = None) -> Summary:
    """Run ``ruleset`` over the event log in ``events`` into ``out``."""
    log = EventLog.open(events)
    return Engine(ruleset, log, out, resume=resume, progress=progress).run()


__all__ = ["Engine", "Summary", "report", "Counter"]
