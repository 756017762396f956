"""Pictures: ``summary.html``, one self-contained page of charts for a run, an impact or a sweep.

The figures are aggregates computed in Polars from the event log and the run manifest (a few
thousand rows at national volume, never the log's millions); each chart is a Vega-Lite
specification built with Vega-Altair from one aggregate, and the page carries the specifications
(their data inline) with the Vega, Vega-Lite and Vega-Embed scripts bundled by vl-convert, all
inline: it opens offline and references nothing remote. The same inputs give the same bytes.

Each chart's specification sits in the page as ``<script type="application/json"
id="chart-NAME">``, so a reader can take the figures out of the page (docs/pictures.md).

Latency, from an event to the file that carries it, is worked out with the engine's own rule
(``schedule.Runs.assign``, EMRR §3.1.6 "previously unreported") on the event log rather than by
reading the report files back (3 GB at national volume): the tests compare it with the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from emrr.errors import UserError
from emrr.rules import engine, schedule
from emrr.rules.eventlog import EventLog, collect
from emrr.rules.recipients import SupplyIndex, with_recipient
from emrr.rules.ruleset import Report, Ruleset
from emrr.rules.selection import AT_EVENT

PAGE = "summary.html"
HOUR = 3600.0
ATTEMPTS = ("migration_success", "migration_failure")
OUTCOME = {"migration_success": "succeeded", "migration_failure": "failed"}
LATENCY_BINS = 40  # bars of a latency histogram
TOP = 30  # bars of a "by error code" or "by model" chart; the rest are summed as "other"
BUSIEST = 5  # busiest days listed per report
CHUNK = 1 << 21  # events assigned to runs at a time (latency)
CHART_WIDTH = 760


# --------------------------------------------------------------------------- the bundled scripts

_BUNDLE: dict[str, str] = {}
_BUNDLE_LOCK = threading.Lock()


def scripts() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script, bundled by vl-convert (about 0.9 MB). Bundling
    takes 3 to 4 s, so the bundle is kept in the user's cache folder, one file per vl-convert version
    (the same bytes each time: the page does not depend on the cache), and a page starts it on a
    thread while Polars aggregates."""
    with _BUNDLE_LOCK:
        if "js" not in _BUNDLE:
            import vl_convert

            cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emrr"
            path = cache / f"vega-bundle-vl-convert-{vl_convert.__version__}.js"
            try:
                _BUNDLE["js"] = path.read_text(encoding="utf-8")
            except (OSError, ValueError):
                _BUNDLE["js"] = vl_convert.javascript_bundle()
                try:  # a cache that cannot be written is no error: the next page bundles again
                    cache.mkdir(parents=True, exist_ok=True)
                    write_atomically(path, _BUNDLE["js"])
                except (OSError, UserError):
                    pass
        return _BUNDLE["js"]


def _prefetch() -> threading.Thread:
    thread = threading.Thread(target=scripts, name="vega-bundle", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- figures of a run


@dataclass
class RunFigures:
    """The aggregates one run's page shows, each a small Polars frame."""

    title: str
    period: tuple[int, int]
    progress: pl.DataFrame  # day, series, devices (cumulative)
    daily_attempts: pl.DataFrame  # day, outcome, attempts
    failures_by_error: pl.DataFrame  # error, failures
    failures_by_model: pl.DataFrame  # model, failures
    attempts_per_device: pl.DataFrame  # attempts, devices
    files_per_day: pl.DataFrame  # report_id, day, files, records, bytes
    supplier_days: pl.DataFrame  # recipient, day, files, records (every report)
    busiest_days: pl.DataFrame  # report_id, rank, day, records, files
    latency: dict[str, pl.DataFrame]  # report -> recipient, seconds: one row per reported event
    latency_histogram: pl.DataFrame  # report_id, from_hours, to_hours, records
    latency_table: pl.DataFrame  # report_id, records, p50_hours, p95_hours, max_hours
    suppliers: pl.DataFrame  # recipient, then per report files/records, bytes, events by type
    notes: list[str] = field(default_factory=list)


def _top(frame: pl.DataFrame, key: str, value: str, n: int = TOP) -> pl.DataFrame:
    """The ``n`` largest rows by ``value`` (ties by ``key``), the rest summed into one "other" row."""
    frame = frame.sort([value, key], descending=[True, False])
    if frame.height <= n:
        return frame
    rest = frame.slice(n - 1)
    other = pl.DataFrame({key: [f"other ({rest.height})"], value: [int(rest[value].sum())]},
                         schema=frame.schema)
    return pl.concat([frame.head(n - 1), other])


def event_figures(log: EventLog) -> dict[str, pl.DataFrame]:
    """What the event log alone gives: events a day by type, failures by error code and model,
    devices by number of attempts, events by Responsible Supplier. Each event once (duplicated
    notifications left out, docs/event-log.md)."""
    events = log.events([*ATTEMPTS, "install"])
    failures = log.events(["migration_failure"])
    schema = log.tables["events"].collect_schema()
    # grouped by the columns as stored (categorical), made strings once grouped: 3x faster nationally
    queries = {
        "daily": events.group_by(pl.col("occurred_at").dt.date().alias("day"), "event_type")
        .agg(pl.len().alias("events")),
        "by_error": failures.group_by("error_code", "error_sub_code").agg(pl.len().alias("failures")),
        "by_model": failures.group_by("model").agg(pl.len().alias("failures")),
        # attempt numbers are consecutive per device (docs/event-log.md), so the attempts numbered k
        # are the devices with at least k attempts: no group-by over millions of devices
        "attempt_numbers": log.events(list(ATTEMPTS)).group_by(pl.col("attempt_number").cast(pl.Int64))
        .agg(pl.len().alias("at_least")),
    }
    if "responsible_supplier" in schema:
        queries["by_supplier"] = events.group_by("responsible_supplier", "event_type").agg(pl.len().alias("events"))
    frames = {k: _strings(v) for k, v in zip(queries, pl.collect_all(list(queries.values())))}
    frames["daily"] = frames["daily"].with_columns(pl.col("day").cast(pl.String))
    frames["by_error"] = frames["by_error"].select(
        pl.concat_str([pl.col("error_code"), pl.col("error_sub_code").cast(pl.String)], separator="/").alias("error"),
        "failures")
    if "by_supplier" in frames:
        frames["by_supplier"] = frames["by_supplier"].rename({"responsible_supplier": "recipient"})
    numbers = frames["attempt_numbers"].sort("attempt_number")
    at_least = numbers["at_least"].to_numpy()
    exactly = at_least - np.append(at_least[1:], 0) if len(at_least) else at_least
    frames["attempts_per_device"] = pl.DataFrame({"attempts": numbers["attempt_number"], "devices": exactly},
                                                 schema={"attempts": pl.Int64, "devices": pl.Int64})
    return frames


def _strings(frame: pl.DataFrame) -> pl.DataFrame:
    """Categorical columns as strings, counts as Int64."""
    return frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                               if isinstance(t, (pl.Categorical, pl.Enum))]
                              + [pl.col(c).cast(pl.Int64) for c, t in frame.schema.items() if t == pl.UInt32])


def manifest_files(reports: Path) -> pl.DataFrame:
    """The files of a report run, from its manifest: report_id, recipient, day of creation,
    window end, records and size on disk."""
    path = reports / engine.MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
        entries = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"not a readable run manifest; expected the {engine.MANIFEST} a report run writes",
                        file=str(path))
    rows = []
    for e in entries:
        size = (reports / e["path"]).stat().st_size if (reports / e["path"]).is_file() else None
        rows.append({"path": e["path"], "report_id": e["report_id"], "recipient": e["recipient"],
                     "created": int(dt.datetime.fromisoformat(e["created"]).timestamp()),
                     "window_end": e["window_end"][:10], "records": int(e["records"]), "bytes": size})
    schema = {"path": pl.String, "report_id": pl.String, "recipient": pl.String, "created": pl.Int64,
              "window_end": pl.String, "records": pl.Int64, "bytes": pl.Int64}
    return pl.DataFrame(rows, schema=schema).with_columns(
        pl.from_epoch("created", time_unit="s").dt.date().cast(pl.String).alias("day"))


def latency(log: EventLog, rules: Ruleset, records: dict[str, int] | None = None) -> dict[str, pl.DataFrame]:
    """For each "previously unreported" report, one row per reported event: ``recipient``
    (categorical) and ``seconds`` from the event (occurred_at) to the creation of the run that
    carries it, by the engine's own assignment (``Runs.assign``). Events the engine drops are left
    out: no run of the period carries them, no recipient, or a mandatory field's column empty.

    ``records``, the report's records in its files (the run manifest's), spares reading the
    mandatory columns: the events with a recipient and a run include every reported one, so when
    there are as many, they are exactly those. Only when they are more are the mandatory columns
    read to drop the others (reading 29 million Device IDs to find no null took 5 s nationally)."""
    out: dict[str, pl.DataFrame] = {}
    for rid, report in rules.reports.items():
        if report.assignment != "previously_unreported":
            continue
        part = _latency_of(log, report, test_mandatory=records is None)
        if part is not None and records is not None and part.height != records.get(rid, 0):
            part = _latency_of(log, report, test_mandatory=True)
        if part is not None:
            out[rid] = part
    return out


def _latency_of(log: EventLog, report: Report, test_mandatory: bool) -> pl.DataFrame | None:
    start, end = log.period
    runs = schedule.Runs.build(report, start, end, log.outages())
    if len(runs.times) == 0:
        return None
    schema = log.tables["events"].collect_schema()
    by_column = report.recipient_rule == AT_EVENT and "responsible_supplier" in schema
    frame = log.events(report.event_types)
    if test_mandatory:
        for c in sorted({f.source for f in report.detail if f.source_kind == "column" and f.mandatory
                         and f.source in schema}):
            frame = frame.filter(pl.col(c).is_not_null())
    columns = ["occurred_at", "notified_at", *(["responsible_supplier"] if by_column
                                               else ["premise_index", "device_type"])]
    frame = frame.select(columns).collect()
    occurred_all = frame["occurred_at"].dt.epoch("s")
    notified_all = frame["notified_at"].dt.epoch("s")
    seconds, recipients = [], []
    supply = None
    # in slices: NumPy's temporaries for 29 million events were 3 GB of fresh pages (5 s of system
    # time nationally); slices of CHUNK events reuse the same few megabytes
    for offset in range(0, frame.height, CHUNK):
        occurred = occurred_all.slice(offset, CHUNK).to_numpy()
        idx = runs.assign(occurred, notified_all.slice(offset, CHUNK).to_numpy())
        carried = idx < len(runs.times)
        seconds.append(runs.times[idx[carried]] - occurred[carried])
        mine = frame.slice(offset, CHUNK).filter(pl.Series(carried))
        if by_column:  # the ground truth at the event (docs/event-log.md), as the engine's rule gives it
            recipients.append(mine["responsible_supplier"].cast(pl.Categorical))
            continue
        supply = supply or SupplyIndex(log)
        mine = collect(mine.lazy()).with_columns(
            pl.Series("at", occurred[carried] if report.recipient_rule == AT_EVENT
                      else runs.window_end[idx[carried]], dtype=pl.Int64))
        recipients.append(with_recipient(mine, supply, "at")["recipient"].cast(pl.Categorical))
    recipient = pl.concat(recipients) if recipients else pl.Series([], dtype=pl.Categorical)
    seconds = np.concatenate(seconds) if seconds else np.zeros(0, dtype=np.int64)
    part = pl.DataFrame({"recipient": recipient, "seconds": pl.Series(seconds, dtype=pl.Int64)})
    return part.filter(pl.col("recipient").is_not_null())


def latency_figures(seconds: np.ndarray) -> dict[str, float | None]:
    """p50, p95 (linear between the nearest records, numpy's default) and max, in hours."""
    if len(seconds) == 0:
        return {"p50_hours": None, "p95_hours": None, "max_hours": None}
    p50, p95 = np.percentile(seconds, [50, 95])
    return {"p50_hours": float(p50) / HOUR, "p95_hours": float(p95) / HOUR, "max_hours": float(seconds.max()) / HOUR}


def latency_tables(lat: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per report: its figures (records, p50, p95, max in hours), and records by latency in at
    most LATENCY_BINS bars from 0 to its longest (a bar's width a whole number of hours)."""
    rows, bars = [], []
    for rid, part in lat.items():
        seconds = part["seconds"].to_numpy()
        rows.append({"report_id": rid, "records": len(seconds), **latency_figures(seconds)})
        if not len(seconds):
            continue
        width = max(1, math.ceil(int(seconds.max()) / HOUR / LATENCY_BINS))
        counts = np.bincount(seconds // int(width * HOUR))
        for b in np.flatnonzero(counts):
            bars.append({"report_id": rid, "from_hours": int(b) * width, "to_hours": (int(b) + 1) * width,
                         "records": int(counts[b])})
    table = pl.DataFrame(rows, schema={"report_id": pl.String, "records": pl.Int64, "p50_hours": pl.Float64,
                                       "p95_hours": pl.Float64, "max_hours": pl.Float64})
    histogram = pl.DataFrame(bars, schema={"report_id": pl.String, "from_hours": pl.Int64, "to_hours": pl.Int64,
                                           "records": pl.Int64})
    return table, histogram


def non_migratable(reports: Path, rules: Ruleset, files: pl.DataFrame) -> pl.DataFrame:
    """Devices on a Non-Migratable combination at each snapshot, as the reports of the
    ``non_migratable_snapshot`` assignment count them (ECOSMIG-004 "Devices Count", summed over
    recipients): day (the window's end), devices."""
    rows: dict[str, int] = {}
    for rid, report in rules.reports.items():
        if report.assignment != "non_migratable_snapshot":
            continue
        at = next((i for i, f in enumerate(report.detail) if f.source == "devices_count"), None)
        if at is None:
            continue
        mine = files.filter(pl.col("report_id") == rid)
        for path, day in mine.select("path", "window_end").iter_rows():
            rows.setdefault(day, 0)
            rows[day] += _column_sum(reports / path, rules, at)
    return pl.DataFrame({"day": list(rows), "devices": list(rows.values())},
                        schema={"day": pl.String, "devices": pl.Int64}).sort("day")


def _column_sum(path: Path, rules: Ruleset, at: int) -> int:
    """The sum of the detail records' field ``at`` in a report file (header and trailer left out)."""
    lines = path.read_bytes().decode(rules.encoding).split(rules.line_terminator)
    total = 0
    # the last element is the empty text after the final terminator
    for record in csv.reader(lines[1:-2], delimiter=rules.delimiter, quotechar=rules.quote_char):
        value = record[at] if at < len(record) else ""
        total += int(value) if value.isdigit() else 0
    return total


def run_figures(events: str | Path, reports: str | Path, rules: Ruleset, title: str) -> RunFigures:
    """Every aggregate of a run's page, from its event log and its report folder."""
    log = EventLog.open(events)
    reports = Path(reports)
    files = manifest_files(reports)
    # the log's counts on a thread while the latency is worked out: Polars and NumPy leave the GIL,
    # so the two share the machine's cores (national: 9.6 s one after the other, see docs/pictures.md)
    with ThreadPoolExecutor(max_workers=1) as pool:
        counted = pool.submit(event_figures, log)
        lat = latency(log, rules, records_per_report(files))
        ev = counted.result()
    daily = ev["daily"].sort("day", "event_type")
    days = pl.DataFrame({"day": _days(log.period)})
    series = {"migration_success": "migrated", "migration_failure": "failed attempts", "install": "installed"}
    progress = []
    for event_type, name in series.items():
        counts = days.join(daily.filter(pl.col("event_type") == event_type), on="day", how="left").sort("day")
        progress.append(counts.select("day", pl.lit(name).alias("series"),
                                      pl.col("events").fill_null(0).cum_sum().cast(pl.Int64).alias("devices")))
    nm = non_migratable(reports, rules, files)
    progress.append(nm.select("day", pl.lit("Non-Migratable (reported)").alias("series"), "devices"))
    attempts = (daily.filter(pl.col("event_type").is_in(ATTEMPTS))
                .select("day", pl.col("event_type").replace_strict(OUTCOME).alias("outcome"),
                        pl.col("events").cast(pl.Int64).alias("attempts")))
    per_day = (files.group_by("report_id", "day")
               .agg(pl.len().cast(pl.Int64).alias("files"), pl.col("records").sum(), pl.col("bytes").sum())
               .sort("report_id", "day"))
    supplier_days = (files.group_by("recipient", "day")
                     .agg(pl.len().cast(pl.Int64).alias("files"), pl.col("records").sum())
                     .sort("recipient", "day"))
    busiest = (per_day.sort(["report_id", "records", "day"], descending=[False, True, False])
               .group_by("report_id", maintain_order=True).head(BUSIEST)
               .with_columns(pl.int_range(1, pl.len() + 1).over("report_id").alias("rank"))
               .select("report_id", "rank", "day", "records", "files"))
    table, histogram = latency_tables(lat)
    return RunFigures(title=title, period=log.period, progress=pl.concat(progress),
                      daily_attempts=attempts, failures_by_error=_top(ev["by_error"], "error", "failures"),
                      failures_by_model=_top(ev["by_model"], "model", "failures"),
                      attempts_per_device=ev["attempts_per_device"], files_per_day=per_day, busiest_days=busiest,
                      supplier_days=supplier_days,
                      latency=lat, latency_histogram=histogram, latency_table=table,
                      suppliers=_suppliers(files, ev.get("by_supplier"), lat, rules))


def records_per_report(files: pl.DataFrame) -> dict[str, int]:
    """Records of each report in a run's files."""
    return dict(files.group_by("report_id").agg(pl.col("records").sum()).iter_rows())


def _days(period: tuple[int, int]) -> list[str]:
    first = dt.datetime.fromtimestamp(period[0], dt.timezone.utc).date()
    last = dt.datetime.fromtimestamp(period[1] - 1, dt.timezone.utc).date()
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _suppliers(files: pl.DataFrame, by_type: pl.DataFrame | None, lat: dict[str, pl.DataFrame],
               rules: Ruleset) -> pl.DataFrame:
    """One row per recipient: files and records of each report, bytes, events by type (where the
    log has the ground-truth supplier), failure rate and median latency of each report."""
    ids = list(rules.reports)
    wide = files.group_by("recipient").agg(
        *[(pl.col("report_id") == rid).sum().cast(pl.Int64).alias(f"{rid} files") for rid in ids],
        *[pl.col("records").filter(pl.col("report_id") == rid).sum().cast(pl.Int64).alias(f"{rid} records")
          for rid in ids],
        pl.col("bytes").sum().cast(pl.Int64).alias("bytes"))
    if by_type is not None:
        counts = by_type.pivot(on="event_type", index="recipient", values="events")
        for t in ("migration_success", "migration_failure", "install"):
            if t not in counts.columns:
                counts = counts.with_columns(pl.lit(0, dtype=pl.UInt32).alias(t))
        counts = counts.select("recipient", pl.col("migration_success").fill_null(0).cast(pl.Int64).alias("migrated"),
                               pl.col("migration_failure").fill_null(0).cast(pl.Int64).alias("failed attempts"),
                               pl.col("install").fill_null(0).cast(pl.Int64).alias("installs"))
        counts = counts.with_columns(
            (pl.col("failed attempts") / (pl.col("migrated") + pl.col("failed attempts"))).alias("failure rate"))
        wide = wide.join(counts.filter(pl.col("recipient").is_not_null()), on="recipient", how="full", coalesce=True)
    for rid, part in lat.items():
        medians = _strings(part.group_by("recipient").agg((pl.col("seconds").median() / HOUR)
                                                          .alias(f"{rid} latency p50 (h)")))
        wide = wide.join(medians, on="recipient", how="left")
    return wide.sort("recipient")


# --------------------------------------------------------------------------- charts


def _spec(chart) -> dict:
    """A chart's Vega-Lite specification as data: no "$schema" (a URL; nothing remote is named)."""
    import altair as alt

    # every dataset is an aggregate (days x suppliers at most: 7,606 rows nationally), never the log's
    # rows, so Altair's 5,000-row guard against handing raw data to the browser does not apply
    with alt.data_transformers.enable("default", max_rows=None):
        spec = chart.to_dict()
    spec.pop("$schema", None)
    return spec


def run_charts(f: RunFigures) -> list[tuple[str, str, dict]]:
    """(name, heading, Vega-Lite specification) of every chart of a run's page."""
    import altair as alt

    w = CHART_WIDTH
    charts = [
        ("progress", "Migration progress: devices migrated, failed attempts and installs (cumulative), devices on a "
                     "Non-Migratable combination at each ECOSMIG-004 snapshot",
         alt.Chart(f.progress).mark_line(point=False).encode(
             x=alt.X("day:T", title="day"), y=alt.Y("devices:Q", title="devices (cumulative)"),
             color=alt.Color("series:N", title=None)).properties(width=w, height=280)),
        ("daily_attempts", "Migration attempts a day, by outcome",
         alt.Chart(f.daily_attempts).mark_bar().encode(
             x=alt.X("day:T", title="day"), y=alt.Y("attempts:Q", stack="zero", title="attempts"),
             color=alt.Color("outcome:N", title=None)).properties(width=w, height=220)),
        ("failures_by_error", "Failed attempts by error code / sub-code",
         alt.Chart(f.failures_by_error).mark_bar().encode(
             x=alt.X("failures:Q", title="failed attempts"), y=alt.Y("error:N", sort="-x", title=None))
         .properties(width=w - 160)),
        ("failures_by_model", "Failed attempts by device model",
         alt.Chart(f.failures_by_model).mark_bar().encode(
             x=alt.X("failures:Q", title="failed attempts"), y=alt.Y("model:N", sort="-x", title=None))
         .properties(width=w - 160)),
        ("attempts_per_device", "Devices by number of migration attempts",
         alt.Chart(f.attempts_per_device).mark_bar().encode(
             x=alt.X("attempts:O", title="attempts"), y=alt.Y("devices:Q", title="devices"))
         .properties(width=w // 2, height=200)),
        ("files_per_day", "Files a day, per report",
         alt.Chart(f.files_per_day).mark_bar().encode(
             x=alt.X("day:T", title=None), y=alt.Y("files:Q", title="files"))
         .properties(width=w, height=70).facet(row=alt.Row("report_id:N", title=None))
         .resolve_scale(y="independent")),
        ("records_per_day", "Records a day, per report",
         alt.Chart(f.files_per_day).mark_bar().encode(
             x=alt.X("day:T", title=None), y=alt.Y("records:Q", title="records"))
         .properties(width=w, height=70).facet(row=alt.Row("report_id:N", title=None))
         .resolve_scale(y="independent")),
        ("supplier_days", "Records each supplier receives a day (every report)",
         alt.Chart(f.supplier_days).mark_rect().encode(
             x=alt.X("day:O", title=None, axis=alt.Axis(labels=False, ticks=False)),
             y=alt.Y("recipient:N", title=None),
             color=alt.Color("records:Q", scale=alt.Scale(scheme="blues"), title="records"),
             tooltip=["recipient", "day", "files", "records"])
         .properties(width=w, height=alt.Step(14))),
        ("latency", "Time from the event to the file that reports it (hours), per report",
         alt.Chart(f.latency_histogram).mark_bar().encode(
             x=alt.X("from_hours:Q", title="hours"), x2="to_hours", y=alt.Y("records:Q", title="records"))
         .properties(width=w, height=90).facet(row=alt.Row("report_id:N", title=None))
         .resolve_scale(x="independent", y="independent")),
    ]
    return [(name, heading, _spec(chart)) for name, heading, chart in charts]


# --------------------------------------------------------------------------- the page

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
.note { color: #555; font-size: 13px; }
.chart { margin: 8px 0 24px 0; }
.wide { overflow-x: auto; }
"""


def _script_json(value) -> str:
    """JSON for a <script> element: "</" and "<!--" can never close or open anything in it."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def table_html(frame: pl.DataFrame, caption: str | None = None) -> str:
    """A frame as an HTML table: integers with thousands separators, fractions to 3 places."""
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:,.3f}"
        return html.escape(str(value))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<div class=\"wide\"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def page(title: str, intro: str, sections: list[tuple[str, str]], charts: list[tuple[str, str, dict]]) -> str:
    """The whole page: ``sections`` (heading, HTML) first, then each chart under its heading;
    the scripts inline. Nothing in it depends on the time it was written."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
             f"<script>\n{scripts()}\n</script>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{intro}\n"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}\n")
    for name, heading, spec in charts:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n<div class=\"chart\" id=\"view-{name}\"></div>\n"
                     f"<script type=\"application/json\" id=\"chart-{name}\">{_script_json(spec)}</script>\n")
    parts.append("<script>\nfor (const el of document.querySelectorAll('script[id^=\"chart-\"]')) {\n"
                 "  const name = el.id.slice(6);\n"
                 "  vegaEmbed('#view-' + name, JSON.parse(el.textContent), {actions: false, renderer: 'svg'})\n"
                 "    .catch(err => {\n"
                 "      document.getElementById('view-' + name).textContent = 'chart error: ' + err;\n"
                 "    });\n"
                 "}\n</script>\n</body>\n</html>\n")
    return "".join(parts)


def write_atomically(path: Path, text: str) -> Path:
    """``text`` to a temporary name beside ``path``, then renamed: never half a page under its name."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror or exc}", file=str(path))
    return path


def _when(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d")


def run_page(f: RunFigures) -> str:
    """The page of one run (``emrr run``, ``emrr report``)."""
    lat = f.latency_table
    intro = (f"<p class=\"note\">Period {_when(f.period[0])} to {_when(f.period[1])} (end excluded). Every figure is "
             "an aggregate of the event log (each event once) or of the run manifest; latency is the time from the "
             "event to the creation of the file that carries it, by the engine's own assignment of events to runs "
             "(EMRR §3.1.6). The Non-Migratable line is what the snapshot report counts at each window end.</p>")
    sections = [
        ("Latency per report (hours)", table_html(lat.drop("records").join(lat.select("report_id", "records"),
                                                                           on="report_id"))),
        ("Busiest days per report (by records)", table_html(f.busiest_days)),
        ("Per supplier", table_html(f.suppliers)),
    ]
    return page(f.title, intro, sections, run_charts(f))


def write_run_page(events: str | Path, reports: str | Path, rules: Ruleset, target: str | Path,
                   title: str | None = None) -> Path:
    """Write ``target`` (summary.html) for the run whose event log is ``events`` and whose files
    are in ``reports``."""
    bundle = _prefetch()
    figures = run_figures(events, reports, rules, title or f"Summary of {Path(events)} by {rules.name}")
    bundle.join()
    return write_atomically(Path(target), run_page(figures))


# --------------------------------------------------------------------------- impact


def impact_page(out: str | Path) -> Path:
    """``OUT/summary.html`` for an ``emrr impact`` folder: OLD and NEW side by side, from
    ``impact.json`` and the two deliveries' run manifests."""
    import altair as alt

    bundle = _prefetch()
    out = Path(out)
    data = json.loads((out / "impact.json").read_bytes())
    old, new = data["old"], data["new"]
    frames = []
    made = {r: manifest_files(out / "runs" / r) for r in ("old", "new")
            if (out / "runs" / r / engine.MANIFEST).is_file()}
    shared = pl.col("report_id").is_in(data["plan"]["shared"])
    sides = {"old": made["old"],
             "new": pl.concat([made["old"].filter(shared), *[made[r] for r in ("new",) if r in made]])}
    for side, name in (("old", old), ("new", new)):  # a shared report's files serve both sides (runs/old)
        frames.append(sides[side].with_columns(pl.lit(f"{side}: {name}").alias("ruleset")))
    files = pl.concat(frames)
    per_day = (files.group_by("ruleset", "report_id", "day")
               .agg(pl.len().cast(pl.Int64).alias("files"), pl.col("records").sum())
               .sort("ruleset", "report_id", "day"))
    rows = []
    for rid, r in data["reports"].items():
        for side in ("old", "new"):
            fig = r[side]
            lat = fig.get("latency_hours") or {}
            rows.append({"report_id": rid, "ruleset": f"{side}: {data[side]}", "files": fig["files"],
                         "records": fig["records"], "bytes": fig["bytes"], "p50_hours": lat.get("p50"),
                         "p95_hours": lat.get("p95"), "max_hours": lat.get("max")})
    per_report = pl.DataFrame(rows, schema={"report_id": pl.String, "ruleset": pl.String, "files": pl.Int64,
                                            "records": pl.Int64, "bytes": pl.Int64, "p50_hours": pl.Float64,
                                            "p95_hours": pl.Float64, "max_hours": pl.Float64})
    srows = []
    for party, reports in data["recipients"].items():
        for rid, r in reports.items():
            srows.append({"recipient": party, "report_id": rid,
                          "files old": r["old"]["files"], "files new": r["new"]["files"],
                          "records old": r["old"]["records"], "records new": r["new"]["records"],
                          "moved": r["moved_records"], "identical": r["identical"]})
    suppliers = pl.DataFrame(srows, schema={"recipient": pl.String, "report_id": pl.String, "files old": pl.Int64,
                                            "files new": pl.Int64, "records old": pl.Int64, "records new": pl.Int64,
                                            "moved": pl.Int64, "identical": pl.Boolean})
    w = CHART_WIDTH
    lat_long = per_report.unpivot(on=["p50_hours", "p95_hours", "max_hours"], index=["report_id", "ruleset"],
                                  variable_name="figure", value_name="hours").drop_nulls("hours")
    charts = [
        ("files_per_day", "Files a day, per report: old and new side by side",
         alt.Chart(per_day).mark_line(point=True).encode(
             x=alt.X("day:T", title=None), y=alt.Y("files:Q", title="files"), color=alt.Color("ruleset:N", title=None))
         .properties(width=w, height=70).facet(row=alt.Row("report_id:N", title=None)).resolve_scale(y="independent")),
        ("records_per_day", "Records a day, per report: old and new side by side",
         alt.Chart(per_day).mark_line(point=True).encode(
             x=alt.X("day:T", title=None), y=alt.Y("records:Q", title="records"),
             color=alt.Color("ruleset:N", title=None))
         .properties(width=w, height=70).facet(row=alt.Row("report_id:N", title=None)).resolve_scale(y="independent")),
        ("latency", "Time from the event to its file (hours): p50, p95 and max, old and new",
         alt.Chart(lat_long).mark_bar().encode(x=alt.X("hours:Q"), y=alt.Y("ruleset:N", title=None),
                                               color=alt.Color("ruleset:N", legend=None))
         .properties(width=w // 3, height=50).facet(row=alt.Row("report_id:N", title=None),
                                                   column=alt.Column("figure:N", title=None))
         .resolve_scale(x="independent")),
    ]
    rej = data["old_parser_rejects"]
    intro = (f"<p class=\"note\">Both rulesets on the event log {html.escape(str(data['events']))}, "
             f"{html.escape(data['period']['start'][:10])} to {html.escape(data['period']['end'][:10])}. A parser "
             f"built on {html.escape(old)} rejects {rej['files_rejected']:,} of the {rej['files_checked']:,} files of "
             f"{html.escape(new)} checked. impact.md says the same in words.</p>")
    sections = [("Per report", table_html(per_report)), ("Per supplier and report", table_html(suppliers))]
    bundle.join()
    text = page(f"emrr impact: {old} -> {new}", intro, sections,
                [(n, h, _spec(c)) for n, h, c in charts])
    return write_atomically(out / PAGE, text)


# --------------------------------------------------------------------------- sweep


def bands(daily: pl.DataFrame, value: str) -> pl.DataFrame:
    """Across seeds, per day: min, 10th percentile, median, 90th percentile and max of ``value``."""
    v = pl.col(value)
    return (daily.group_by("day").agg(v.min().alias("min"), v.quantile(0.1, "linear").alias("p10"),
                                      v.median().alias("median"), v.quantile(0.9, "linear").alias("p90"),
                                      v.max().alias("max"), pl.len().alias("seeds"))
            .sort("day"))


def _band_chart(frame: pl.DataFrame, title: str):
    import altair as alt

    base = alt.Chart(frame).encode(x=alt.X("day:T", title="day"))
    return (base.mark_area(opacity=0.2).encode(y=alt.Y("min:Q", title=title), y2="max")
            + base.mark_area(opacity=0.35).encode(y="p10:Q", y2="p90")
            + base.mark_line().encode(y="median:Q")).properties(width=CHART_WIDTH, height=240)


def sweep_page(kpis: pl.DataFrame, daily: pl.DataFrame, title: str) -> str:
    """``sweep.html``: the distributions of a sweep's key figures across seeds, with bands
    (min to max, 10th to 90th percentile, and the median) of its day-by-day progress."""
    import altair as alt

    bundle = _prefetch()
    seeds = kpis["seed"].n_unique() if kpis.height else 0
    per_report = (kpis.group_by("seed", "report_id")
                  .agg(pl.col("records").sum(), pl.col("files").sum(), pl.col("report_latency_p95_hours").first())
                  .with_columns(pl.col("seed").cast(pl.String)).sort("report_id", "seed"))
    run = (kpis.group_by("seed").agg(pl.col("failure_rate").first(), pl.col("completion_date").first(),
                                     pl.col("half_migrated_date").first())
           .with_columns(pl.col("seed").cast(pl.String)).sort("seed"))
    busiest = kpis.select("report_id", "recipient", pl.col("seed").cast(pl.String), "busiest_day_records",
                          "latency_p95_hours").sort("report_id", "recipient", "seed")
    w = CHART_WIDTH
    charts = [
        ("migrated", "Devices migrated (cumulative) across seeds: median, 10th-90th percentile and min-max bands",
         _band_chart(bands(daily, "migrated"), "devices migrated")),
        ("attempts", "Migration attempts a day across seeds: median, 10th-90th percentile and min-max bands",
         _band_chart(bands(daily, "attempts"), "attempts")),
        ("records", "Records per report, one tick per seed",
         alt.Chart(per_report).mark_tick(thickness=2).encode(x=alt.X("records:Q", scale=alt.Scale(zero=False)),
                                                             tooltip=["seed", "records"])
         .properties(width=w - 120, height=24).facet(row=alt.Row("report_id:N", title=None))
         .resolve_scale(x="independent")),
        ("latency_p95", "95th percentile of the time from event to file (hours) per report, one tick per seed",
         alt.Chart(per_report.drop_nulls("report_latency_p95_hours")).mark_tick(thickness=2).encode(
             x=alt.X("report_latency_p95_hours:Q", title="hours"), y=alt.Y("report_id:N", title=None),
             tooltip=["seed", "report_latency_p95_hours"]).properties(width=w - 120)),
        ("busiest_day", "Records on a recipient's busiest day, per report: the spread across seeds",
         alt.Chart(busiest).mark_boxplot(extent="min-max").encode(
             x=alt.X("busiest_day_records:Q", title="records on the busiest day"),
             y=alt.Y("recipient:N", title=None)).properties(width=w - 240, height=alt.Step(14))
         .facet(row=alt.Row("report_id:N", title=None)).resolve_scale(x="independent")),
        ("failure_rate", "Failure rate (failed attempts / attempts), one bar per seed",
         alt.Chart(run).mark_bar().encode(x=alt.X("seed:N", sort=None), y=alt.Y("failure_rate:Q"))
         .properties(width=w, height=160)),
    ]
    summary = (per_report.group_by("report_id")
               .agg(pl.len().alias("seeds"), pl.col("records").min().alias("records min"),
                    pl.col("records").median().alias("records median"), pl.col("records").max().alias("records max"),
                    pl.col("report_latency_p95_hours").median().alias("latency p95 median (h)"),
                    pl.col("report_latency_p95_hours").max().alias("latency p95 max (h)"))
               .sort("report_id"))
    worst = (kpis.sort(["busiest_day_records", "seed"], descending=[True, False])
             .group_by("report_id", maintain_order=True).head(1)
             .select("report_id", "recipient", "seed", "busiest_day", "busiest_day_records").sort("report_id"))
    intro = (f"<p class=\"note\">{seeds:,} seed(s). Each seed is one possible history of the same scenario; the "
             "bands show how far the seeds spread. The figures are kpis.parquet's and daily.parquet's.</p>")
    sections = [("Per report across seeds", table_html(summary)),
                ("The largest busiest day of each report (recipient and seed)", table_html(worst)),
                ("Per seed", table_html(run))]
    bundle.join()
    return page(title, intro, sections, [(n, h, _spec(c)) for n, h, c in charts])
