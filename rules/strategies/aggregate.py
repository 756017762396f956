"""``aggregate``: counts and durations by ``group_by`` over each run's window, and
``peer_ranking``, the same figures per supplier set against the others' (MRR S1MIG-004, -005,
-007, -008, -009).

Each measure (``select.measures``) counts the events of its types (or takes the mean or maximum
minutes between two of their time columns) whose period column falls in the run's window, that
happened by the window's end and that the reporting system knew of by the run (as every summary
of the MRR: "not intended to be 'real-time'", 002:L134). Rows are grouped by ``group_by``, where
``period`` is the day, or the Monday, of the measure's period column. A ``calendar`` adds a
reference table's figures (the Demand Commitments, 002:L105) to the same groups, and makes a group
exist by itself. ``difference`` and ``percent`` are worked out last, in the order given.

The engine reads each event once (``Stream``): a report's steps read the log a slice of time at a
time, and what each slice adds to the figures of every run (counts, sums of seconds, the runs in
which each distinct value is known) is kept until the runs it reaches are written. A rolling
window (S1MIG-004's 28 days, S1MIG-008's four Migration Weeks) no longer reads an event once per
step its windows reach, nor an MA's events by key at every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from emrr.rules.eventlog import collect, ts
from emrr.rules.strategies.runs import producers

if TYPE_CHECKING:
    from emrr.rules.ruleset import Report
    from emrr.rules.schedule import Runs
    from emrr.rules.selection import Selection

DAY = 86400
MONDAY_OFFSET = 3 * DAY  # 1970-01-01 was a Thursday: Mondays are 4 days later modulo 7


def period_of(column: str, unit: str) -> pl.Expr:
    """The day (00:00:00) or the Monday (00:00:00) of a time column in seconds, as ``period``."""
    t = pl.col(column)
    if unit == "day":
        return (t // DAY * DAY).alias("period")
    return ((t + MONDAY_OFFSET) // (7 * DAY) * (7 * DAY) - MONDAY_OFFSET).alias("period")


def _event_types(report: Report) -> list[str]:
    types = set(report.event_types)
    for m in report.measures.values():
        types |= set(m.get("count", ())) | set(m.get("of", ()))
    return sorted(types)


def _needed(report: Report) -> list[str]:
    from emrr.rules.selection import recipient_columns

    cols = {"event_type", "occurred_at", "notified_at"} | {c.column for c in report.where}
    cols |= {c for c in report.group_by if c != "period"} | recipient_columns(report) - {"recipient"}
    if report.explode:
        cols |= set(report.explode[1])
        cols.discard(report.explode[0])
    if report.period:
        cols.add(report.period[0])
    for m in report.measures.values():
        cols |= {c.column for c in _conditions(m)} | set(m.get("mean_minutes", ())) | set(m.get("max_minutes", ()))
        cols |= set(m.get("distinct", ()))
        if "period_column" in m:
            cols.add(m["period_column"])
    return sorted(cols)


def _conditions(measure: dict):
    from emrr.rules.ruleset import parse_conditions as parse

    return parse(measure.get("where", ()))


def _groups(report: Report) -> list[str]:
    return list(report.group_by)


def figures(sel: Selection, report: Report, frame: pl.DataFrame, ws: int, we: int, created: int) -> pl.DataFrame:
    """The measures of one run by ``group_by`` (before recipients): ``frame`` holds the events that
    may count (every needed column, times in seconds)."""
    one = (np.array([ws], dtype=np.int64), np.array([we], dtype=np.int64), np.array([created], dtype=np.int64))
    out = figures_of_runs(sel, report, frame, *one)
    return out.drop("_run") if out.height else out


def in_runs(rows: pl.DataFrame, column: str, ws: np.ndarray, we: np.ndarray,
            created: np.ndarray | None) -> pl.DataFrame:
    """Each row once for every run whose window holds its time in ``column`` (a rolling window holds
    a row in several runs), with the run's position ``_run``; with ``created``, only where the event
    happened by the run's window end and was known by its file's creation (the calendar's rows)."""
    return expand(spans(rows, column, ws, we, created))


def spans(rows: pl.DataFrame, column: str, ws: np.ndarray, we: np.ndarray,
          created: np.ndarray | None) -> pl.DataFrame:
    """``rows`` with the runs that count each: positions ``_lo`` to ``_hi``, those whose window holds
    its time in ``column`` and, with ``created``, from the first run whose window ends at or after the
    event happened and whose file is made at or after the reporting system knew of it. ``ws``, ``we``
    and ``created`` are non-decreasing over the runs (a run lost to an outage is made up by a later
    one, never an earlier), so both bounds are binary searches and the runs of a row one interval;
    rows no run counts are dropped."""
    t = rows[column].fill_null(-(1 << 62)).to_numpy()
    lo = np.searchsorted(we, t, side="left")
    hi = np.searchsorted(ws, t, side="right") - 1
    if created is not None:
        if np.any(np.diff(we) < 0) or np.any(np.diff(created) < 0):
            raise RuntimeError("runs out of order: window ends and file creations must not decrease")
        seen = np.maximum(np.searchsorted(we, rows["occurred_at"].to_numpy(), side="left"),
                          np.searchsorted(created, rows["notified_at"].to_numpy(), side="left"))
        lo = np.maximum(lo, seen)
    return (rows.with_columns(pl.Series("_lo", lo, dtype=pl.Int64), pl.Series("_hi", hi, dtype=pl.Int64))
            .filter(pl.col("_lo") <= pl.col("_hi")))


def expand(rows: pl.DataFrame) -> pl.DataFrame:
    """Each row of ``spans`` once per run ``_run`` of its interval ``_lo``..``_hi``."""
    lo, hi = rows["_lo"].to_numpy(), rows["_hi"].to_numpy()
    count = hi - lo + 1
    starts = np.cumsum(count) - count
    run = np.repeat(lo - starts, count) + np.arange(int(count.sum()))
    return rows[np.repeat(np.arange(len(lo)), count)].drop("_lo", "_hi").with_columns(
        pl.Series("_run", run, dtype=pl.Int64))


def _summed(groups: list[str], parts: pl.DataFrame, sums: list[str], maxima: tuple[str, ...] = ()) -> pl.DataFrame:
    """Partial figures of rows sharing an interval of runs (``_lo``, ``_hi``), spread over those runs and
    added up (or their maximum taken) by run and group: a rolling window counts a row in each of its
    runs without copying the row."""
    return (expand(parts).group_by(["_run", *groups])
            .agg([pl.col(c).sum() for c in sums] + [pl.col(c).max() for c in maxima]))


def _by_end(rows: pl.DataFrame, groups: list[str], distinct: list[str]) -> pl.DataFrame:
    """Each distinct value by group and last run, from its earliest first run (see _distinct)."""
    return rows.group_by([*groups, *distinct, "_hi"]).agg(pl.col("_lo").min())


def _distinct(by_end: pl.DataFrame, groups: list[str], distinct: list[str], name: str) -> pl.DataFrame:
    """The number of distinct ``distinct`` values (an attempt, by any of its events) by run and group,
    from ``_by_end``. A value counts in a run when any of its rows does: its rows' intervals joined.
    Rows of one value with the same last run (the usual case: the events of one attempt share its
    commencement) join into one interval from the earliest first run; a value whose rows end at
    different runs (rare) is counted run by run."""
    values = by_end.group_by([*groups, *distinct]).agg(pl.len().alias("_n"), pl.col("_lo").min(),
                                                       pl.col("_hi").max())
    one = (values.filter(pl.col("_n") == 1).group_by([*groups, "_lo", "_hi"])
           .agg(pl.len().cast(pl.Int64).alias(name)))
    out = _summed(groups, one, [name])
    several = values.filter(pl.col("_n") > 1)
    if several.height:
        runs = (expand(by_end.join(several.select(*groups, *distinct), on=[*groups, *distinct], nulls_equal=True))
                .unique([*groups, *distinct, "_run"]).group_by(["_run", *groups])
                .agg(pl.len().cast(pl.Int64).alias(name)))
        out = (pl.concat([out, runs.select(out.columns)]).group_by(["_run", *groups]).agg(pl.col(name).sum()))
    return out


def figures_of_runs(sel: Selection, report: Report, frame: pl.DataFrame, ws: np.ndarray, we: np.ndarray,
                    created: np.ndarray) -> pl.DataFrame:
    """The measures of every run at once (runs by position ``_run``: windows ``ws``..``we``, files
    made at ``created``), by ``_run`` and ``group_by``: each measure's rows are first reduced to
    partial figures per group and interval of runs, then spread over those runs (rules out copying
    each event into every run of a rolling window)."""
    sums, distinct, combos = _partials(report, frame, ws, we, created, None)
    calendar = _calendar(sel, report, ws, we, _unit(report))
    return _finish(report, sums, distinct, combos, 0, len(ws), calendar)


def _unit(report: Report) -> str:
    """The unit of the period: ``day`` or ``week`` (``select.period``; a day without one)."""
    return report.period[1] if report.period else "day"


def _keys(report: Report) -> list[str]:
    """The columns partial figures are kept by: ``_run``, the group's number ``_g``, then the period
    (when grouped by it)."""
    return ["_run", "_g", *(["period"] if "period" in report.group_by else [])]


Partials = tuple["pl.DataFrame | None", "dict[tuple, pl.DataFrame]", "pl.DataFrame | None"]


def _partials(report: Report, frame: pl.DataFrame, ws: np.ndarray, we: np.ndarray, created: np.ndarray,
              combos: pl.DataFrame | None) -> Partials:
    """What the events of ``frame`` add to the figures of runs ``ws``/``we``/``created`` (positions
    ``_run``), in two parts that join over disjoint sets of events: ``sums`` by ``_run`` and group,
    each counted measure's count and each minutes measure's sum, number and largest of seconds
    (``_sum:NAME``, ``_n:NAME``, ``_max:NAME``), added up (the largest taken); and ``distinct``, per
    reduction of distinct values, its ``_by_end`` rows, joined by the earliest first run of each
    value and last run. Groups are numbered (``_g``) by ``combos`` (the combinations of the group
    columns' values met so far, given back with this frame's new ones), so that the parts of several
    frames meet on numbers."""
    from emrr.rules.selection import condition, explode

    unit = _unit(report)
    frame = explode(frame, report)
    # the group columns (text: suppliers, distributors, groups) as one integer, so that each measure
    # groups by numbers; the period stays apart (each measure takes it from its own column)
    named = [c for c in _groups(report) if c != "period"]
    if named:
        met = frame.select(named).unique(maintain_order=True)
        if combos is None:
            combos = met.with_row_index("_g")
        else:
            new = met.join(combos, on=named, how="anti", nulls_equal=True)
            combos = pl.concat([combos, new.with_row_index("_g", offset=combos.height)])
        frame = frame.join(combos, on=named, how="left", nulls_equal=True, maintain_order="left")
    else:
        frame = frame.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_g"))
    keys = _keys(report)
    groups = keys[1:]
    parts: list[pl.DataFrame] = []
    distinct: dict[tuple, pl.DataFrame] = {}  # ("shared", types, distinct columns, period column) or ("measure", name)
    for name, m in report.measures.items():
        if "difference" in m or "percent" in m:
            continue
        column = m.get("period_column", report.period[0] if report.period else "occurred_at")
        types = m.get("count", m.get("of", ()))
        conds = _conditions(m)
        wanted = {*groups, column, "occurred_at", "notified_at", *m.get("distinct", ()), *m.get("mean_minutes", ()),
                  *m.get("max_minutes", ()), *(c.column for c in conds)} - {"period"}

        def counted_rows(conds=conds, types=types, wanted=wanted, column=column):
            """The measure's events meeting ``conds``, with the runs that count each (``spans``)."""
            rows = frame.filter(pl.col("event_type").is_in(list(types)))
            rows = rows.select([c for c in frame.columns if c in wanted])
            rows = rows.filter(condition(conds)) if conds else rows
            return spans(rows, column, ws, we, created).with_columns(period_of(column, unit))

        values = list(m.get("distinct", ()))
        if "count" in m and values:  # e.g. attempts, known by any of their events
            key = _reduction(name, m)
            if key not in distinct:
                # conditions on the distinct columns only (1st, 2nd, 3rd attempt) are met or not by a
                # value as a whole: one reduction for all such measures of the same events, each
                # keeping the values it counts when finished
                distinct[key] = _by_end(counted_rows(conds=() if key[0] == "shared" else conds), groups, values)
            continue
        rows = counted_rows()
        if "count" in m:
            counted = rows.group_by([*groups, "_lo", "_hi"]).agg(pl.len().cast(pl.Int64).alias(name))
            parts.append(_summed(groups, counted, [name]))
        else:
            start, end = m.get("mean_minutes") or m.get("max_minutes")
            seconds = (pl.col(end) - pl.col(start)).cast(pl.Int64)
            partial = rows.group_by([*groups, "_lo", "_hi"]).agg(
                seconds.sum().alias(f"_sum:{name}"), seconds.count().cast(pl.Int64).alias(f"_n:{name}"),
                seconds.max().alias(f"_max:{name}"))
            parts.append(_summed(groups, partial, [f"_sum:{name}", f"_n:{name}"], (f"_max:{name}",)))
    sums = None
    for part in parts:
        if part.height:
            sums = part if sums is None else sums.join(part, on=keys, how="full", coalesce=True, nulls_equal=True)
    return sums, distinct, combos


def _reduction(name: str, m: dict) -> tuple:
    """Which reduction of distinct values a measure reads: one shared by the measures of the same
    events, distinct columns and period whose conditions read only the distinct columns, else its own."""
    conds = _conditions(m)
    values = tuple(m.get("distinct", ()))
    if {c.column for c in conds} <= set(values):
        column = m.get("period_column")
        return ("shared", tuple(sorted(m.get("count", ()))), values, column)
    return ("measure", name)


def _finish(report: Report, sums: pl.DataFrame | None, distinct: dict[tuple, pl.DataFrame],
            combos: pl.DataFrame | None, lo: int, hi: int, calendar: pl.DataFrame | None) -> pl.DataFrame:
    """The figures of runs ``lo``..``hi-1`` (positions ``_run``) from ``_partials`` (means and maxima
    from their sums, numbers and largest seconds; each distinct measure from its reduction), the
    groups named again by ``combos``, with the calendar's, differences and percentages."""
    from emrr.rules.selection import condition

    keys = _keys(report)
    groups = keys[1:]
    out = None
    parts = []
    if sums is not None:
        parts.append(sums.filter(pl.col("_run").is_between(lo, hi - 1)))
    for name, m in report.measures.items():
        if "count" in m and m.get("distinct"):
            key = _reduction(name, m)
            by_end = distinct.get(key)
            if by_end is None or by_end.height == 0:
                continue
            conds = _conditions(m)
            if key[0] == "shared" and conds:
                by_end = by_end.filter(condition(conds))
            # runs before ``lo`` are done, after ``hi`` not yet asked for: a value's interval is cut to them
            by_end = (by_end.with_columns(pl.col("_lo").clip(lower_bound=lo), pl.col("_hi").clip(upper_bound=hi - 1))
                      .filter(pl.col("_lo") <= pl.col("_hi")))
            parts.append(_distinct(by_end, groups, list(m["distinct"]), name))
    for p in parts:
        if p.height:
            out = p if out is None else out.join(p, on=keys, how="full", coalesce=True, nulls_equal=True)
    if out is not None:
        out = (out.join(combos, on="_g", how="left") if combos is not None else out).drop("_g")
    keys = ["_run", *_groups(report)]
    if calendar is not None and calendar.height:
        out = calendar if out is None else out.join(calendar, on=keys, how="full", coalesce=True, nulls_equal=True)
    if out is None:
        return pl.DataFrame()
    for name, m in report.measures.items():
        if "mean_minutes" not in m and "max_minutes" not in m:
            continue
        total, n, most = f"_sum:{name}", f"_n:{name}", f"_max:{name}"
        if n not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias(name))
            continue
        if "mean_minutes" in m:  # floor(S / 60n + 1/2) = floor((2S + 60n) / 120n)  (A31: half up)
            value = pl.when(pl.col(n) > 0).then((2 * pl.col(total) + 60 * pl.col(n)) // (120 * pl.col(n)))
        else:  # floor(max / 60 + 1/2)
            value = (2 * pl.col(most) + 60) // 120
        out = out.with_columns(value.cast(pl.Int64).alias(name)).drop(total, n, most)
    counted = [n for n, m in report.measures.items() if "count" in m]
    counted += list((report.calendar or {}).get("measures", {}))
    out = out.with_columns([pl.col(n).fill_null(0) if n in out.columns else pl.lit(0, dtype=pl.Int64).alias(n)
                            for n in counted])
    return _recompute(out, report)


def _calendar(sel: Selection, report: Report, ws: np.ndarray, we: np.ndarray, unit: str) -> pl.DataFrame | None:
    """The calendar table's figures by run and the report's groups, for rows whose time falls in a run's window."""
    cal = report.calendar
    if not cal:
        return None
    table = collect(sel.log.tables[cal["table"]].filter(pl.col(cal["column"]).is_between(ts(ws[0]), ts(we[-1]))))
    renames = {src: dst for dst, src in cal["by"].items()}
    sums = [pl.col(m["sum"]).sum().cast(pl.Int64).alias(name) for name, m in cal["measures"].items()]
    keys = ["_run", *_groups(report)]
    table = in_runs(table, cal["column"], ws, we, None).with_columns(period_of(cal["column"], unit)).rename(renames)
    return table.group_by([k for k in keys if k in table.columns]).agg(sums)


class Stream:
    """A report's figures from its events read once: the log a slice of time at a time, each slice's
    ``_partials`` against all the report's runs joined to what the slices before gave, each step's
    runs finished from them (``_all_runs``). A run counts an event only when it happened by its
    window's end, and a step reads the events that happened up to its last run's window end, so
    the events of later slices never count in a run already finished: each run's figures are those
    of all its events, and no event is read twice (a 28-day window every week read each event in
    three steps, an MA's events were looked up by key at every step of its four Migration Weeks)."""

    def __init__(self, report: Report, made: list[tuple[int, int]], runs: Runs):
        self.report = report
        self.idx = np.array([i for i, _ in made], dtype=np.int64)
        self.created = np.array([c for _, c in made], dtype=np.int64)
        self.ws, self.we = runs.window_start[self.idx], runs.window_end[self.idx]
        self.read_to: int | None = None  # the events that happened up to this time are in
        self.sums: pl.DataFrame | None = None
        self.distinct: dict[tuple, pl.DataFrame] = {}
        self.combos: pl.DataFrame | None = None  # the groups met so far, numbered (``_partials``)

    def positions(self, a: int, b: int) -> tuple[int, int]:
        """The positions of the made runs among runs ``a..b-1``."""
        lo, hi = np.searchsorted(self.idx, [a, b], side="left")
        return int(lo), int(hi)

    def add(self, frame: pl.DataFrame) -> None:
        """The partial figures of ``frame``'s events (none read before) joined to the others."""
        sums, distinct, self.combos = _partials(self.report, frame, self.ws, self.we, self.created, self.combos)
        keys = _keys(self.report)
        if sums is not None:
            if self.sums is not None:
                both = pl.concat([self.sums, sums], how="diagonal_relaxed")
                largest = [c for c in both.columns if c.startswith("_max:")]
                sums = both.group_by(keys).agg([pl.col(c).sum() for c in both.columns
                                                if c not in keys and c not in largest]
                                               + [pl.col(c).max() for c in largest])
            self.sums = sums
        for key, by_end in distinct.items():
            held = self.distinct.get(key)
            if held is not None:
                by_end = (pl.concat([held.select(by_end.columns), by_end], how="vertical_relaxed")
                          .group_by([c for c in by_end.columns if c != "_lo"]).agg(pl.col("_lo").min()))
            self.distinct[key] = by_end

    def take(self, lo: int, hi: int, calendar: pl.DataFrame | None) -> pl.DataFrame:
        """The figures of positions ``lo``..``hi-1``; what only they needed is let go."""
        out = _finish(self.report, self.sums, self.distinct, self.combos, lo, hi, calendar)
        if self.sums is not None:
            self.sums = self.sums.filter(pl.col("_run") >= hi)
        self.distinct = {key: df.filter(pl.col("_hi") >= hi) for key, df in self.distinct.items()}
        return out


def _all_runs(sel: Selection, report: Report, runs: Runs, a: int, b: int):
    """The made runs of ``a..b-1`` and the figures of all of them, by ``run_idx`` and ``created``, or
    None. The report's ``Stream`` is kept between its steps (``Selection.forget`` drops it), which
    must come in order of their runs, as the engine's do."""
    cache = sel.cache.setdefault("aggregate", {})
    stream = cache.get(report.id)
    if stream is None:
        stream = cache[report.id] = Stream(report, producers(sel, runs, 0, len(runs.times)), runs)
    lo, hi = stream.positions(a, b)
    made = list(zip(stream.idx[lo:hi].tolist(), stream.created[lo:hi].tolist()))
    if not made:
        return made, None
    upper = int(stream.we[hi - 1])  # window ends do not decrease over the runs
    if stream.read_to is None or upper > stream.read_to:
        predicate = pl.col("occurred_at") <= ts(upper)
        if stream.read_to is not None:
            predicate = predicate & (pl.col("occurred_at") > ts(stream.read_to))
        needed = _needed(report)
        stream.add(sel.where(sel.log.rows(_event_types(report), needed, predicate), report).select(needed))
        stream.read_to = upper
    calendar = _calendar(sel, report, stream.ws[lo:hi], stream.we[lo:hi], _unit(report))
    if calendar is not None:
        calendar = calendar.with_columns(pl.col("_run") + lo)
    rows = stream.take(lo, hi, calendar)
    if rows.height == 0:
        return made, None
    positions = pl.DataFrame({"_run": np.arange(lo, hi, dtype=np.int64), "run_idx": stream.idx[lo:hi],
                              "created": stream.created[lo:hi]})
    return made, rows.join(positions, on="_run", how="left").drop("_run")


def aggregate(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    _, rows = _all_runs(sel, report, runs, a, b)
    return pl.DataFrame() if rows is None else sel.add_recipient(rows, report, runs)


def peer_ranking(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """Per run: the figures by supplier (``group_by``, one column); each recipient's own go to its
    header (a row with ``own``), the others with ``rank_by`` > 0 are its detail rows, ``ordinal``
    1 for the largest (ties by identifier), without their identifier (002:L661-676)."""
    made, figures_all = _all_runs(sel, report, runs, a, b)
    if figures_all is None:
        return pl.DataFrame()
    (who,) = report.group_by
    recipients = sel.add_recipient(pl.DataFrame({"_": [0]}), report, runs).select("recipient")
    parts = []
    for i, created in made:
        rows = figures_all.filter(pl.col("run_idx") == i).drop("run_idx", "created")
        if rows.height == 0:
            continue
        zero = {n: 0 for n in rows.columns if n != who and rows.schema[n].is_integer()}
        own = (recipients.join(rows, left_on="recipient", right_on=who, how="left")
               .with_columns([pl.col(n).fill_null(v) for n, v in zero.items()])
               .with_columns(pl.lit(True).alias("own")))
        own = _recompute(own, report)
        ranked = (rows.filter(pl.col(report.rank_by) > 0)
                  .sort([report.rank_by, who], descending=[True, False]))
        others = (recipients.join(ranked, how="cross").filter(pl.col("recipient") != pl.col(who))
                  .with_columns(pl.int_range(1, pl.len() + 1).over("recipient").cast(pl.Int64).alias("ordinal"),
                                pl.lit(False).alias("own")).drop(who))
        both = pl.concat([own, others], how="diagonal_relaxed").with_columns(
            pl.lit(i, dtype=pl.Int64).alias("run_idx"), pl.lit(created, dtype=pl.Int64).alias("created"))
        parts.append(both)
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def _recompute(frame: pl.DataFrame, report: Report) -> pl.DataFrame:
    """Differences and percentages again (a recipient with no figures of its own has zeros)."""
    for name, m in report.measures.items():
        if "difference" in m:
            first, *rest = m["difference"]
            expr = pl.col(first)
            for r in rest:
                expr = expr - pl.col(r)
            frame = frame.with_columns(expr.alias(name))
        elif "percent" in m:
            num, den = m["percent"]
            frame = frame.with_columns(pl.when(pl.col(den) > 0)
                                       .then((pl.col(num) * 100.0 / pl.col(den) + 0.5).floor().cast(pl.Int64))
                                       .otherwise(None).alias(name))
    return frame
