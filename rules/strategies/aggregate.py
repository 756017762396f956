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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from emrr.rules.selection import condition, explode

    keys = _groups(report)
    unit = report.period[1] if report.period else "day"
    known = frame.filter((pl.col("notified_at") <= created) & (pl.col("occurred_at") <= we))
    known = explode(known, report)
    parts: list[pl.DataFrame] = []
    for name, m in report.measures.items():
        if "difference" in m or "percent" in m:
            continue
        column = m.get("period_column", report.period[0] if report.period else "occurred_at")
        types = m.get("count", m.get("of", ()))
        rows = known.filter(pl.col("event_type").is_in(list(types)) & pl.col(column).is_between(ws, we))
        conds = _conditions(m)
        if conds:
            rows = rows.filter(condition(conds))
        rows = rows.with_columns(period_of(column, unit))
        if "count" in m and "distinct" in m:  # e.g. attempts, known by any of their events
            agg = pl.struct(m["distinct"]).n_unique().cast(pl.Int64).alias(name)
        elif "count" in m:
            agg = pl.len().cast(pl.Int64).alias(name)
        else:
            start, end = m.get("mean_minutes") or m.get("max_minutes")
            minutes = (pl.col(end) - pl.col(start)).cast(pl.Float64) / 60.0
            value = minutes.mean() if "mean_minutes" in m else minutes.max()
            agg = (value + 0.5).floor().cast(pl.Int64).alias(name)  # half up (A31: rounding not stated)
        parts.append(rows.group_by(keys).agg(agg))
    calendar = _calendar(sel, report, ws, we, unit)
    if calendar is not None:
        parts.append(calendar)
    parts = [p for p in parts if p.height]
    if not parts:
        return pl.DataFrame()
    out = parts[0]
    for p in parts[1:]:
        out = out.join(p, on=keys, how="full", coalesce=True, nulls_equal=True)
    counted = [n for n, m in report.measures.items() if "count" in m]
    counted += list((report.calendar or {}).get("measures", {}))
    out = out.with_columns([pl.col(n).fill_null(0) if n in out.columns else pl.lit(0, dtype=pl.Int64).alias(n)
                            for n in counted])
    for name, m in report.measures.items():
        if name not in out.columns and ("mean_minutes" in m or "max_minutes" in m):
            out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias(name))
        if "difference" in m:
            first, *rest = m["difference"]
            expr = pl.col(first)
            for r in rest:
                expr = expr - pl.col(r)
            out = out.with_columns(expr.alias(name))
        elif "percent" in m:
            num, den = m["percent"]
            out = out.with_columns(pl.when(pl.col(den) > 0)
                                   .then((pl.col(num) * 100.0 / pl.col(den) + 0.5).floor().cast(pl.Int64))
                                   .otherwise(None).alias(name))
    return out


def _calendar(sel: Selection, report: Report, ws: int, we: int, unit: str) -> pl.DataFrame | None:
    """The calendar table's figures by the report's groups, for rows whose time falls in the window."""
    cal = report.calendar
    if not cal:
        return None
    table = collect(sel.log.tables[cal["table"]].filter(pl.col(cal["column"]).is_between(ts(ws), ts(we))))
    renames = {src: dst for dst, src in cal["by"].items()}
    sums = [pl.col(m["sum"]).sum().cast(pl.Int64).alias(name) for name, m in cal["measures"].items()]
    keys = _groups(report)
    table = table.with_columns(period_of(cal["column"], unit)).rename(renames)
    return table.group_by([k for k in keys if k in table.columns]).agg(sums)


def _frame(sel: Selection, report: Report, lo: int, hi: int, latest: int) -> pl.DataFrame:
    """The events that may count in runs whose windows span [lo, hi] and whose files are made by ``latest``."""
    needed = _needed(report)
    period_columns = {m.get("period_column", report.period[0] if report.period else "occurred_at")
                      for m in report.measures.values() if "count" in m or "of" in m}
    inside = pl.lit(False)
    for c in period_columns:
        inside = inside | pl.col(c).is_between(ts(lo), ts(hi))
    known = (pl.col("occurred_at") <= ts(hi)) & (pl.col("notified_at") <= ts(latest))
    own = set(sel.log.tables["events"].collect_schema().names())
    if period_columns <= own:  # the whole predicate on the events table: pushed down to its scan
        frame = sel.log.rows(_event_types(report), needed, inside & known)
    else:  # a period column of a joined table (an MA's Migration Week): filtered once it is there (seconds)
        frame = sel.log.rows(_event_types(report), needed, known)
        within = pl.lit(False)
        for c in period_columns:
            within = within | pl.col(c).is_between(lo, hi)
        frame = frame.filter(within)
    return sel.where(frame, report).select(needed)


def aggregate(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    made = producers(sel, runs, a, b)
    if not made:
        return pl.DataFrame()
    frame = _frame(sel, report, int(runs.window_start[a]), int(runs.window_end[b - 1]), max(c for _, c in made))
    parts = []
    for i, created in made:
        rows = figures(sel, report, frame, int(runs.window_start[i]), int(runs.window_end[i]), created)
        if rows.height == 0:
            continue
        rows = rows.with_columns(pl.lit(i, dtype=pl.Int64).alias("run_idx"),
                                 pl.lit(created, dtype=pl.Int64).alias("created"))
        parts.append(sel.add_recipient(rows, report, runs))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def peer_ranking(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """Per run: the figures by supplier (``group_by``, one column); each recipient's own go to its
    header (a row with ``own``), the others with ``rank_by`` > 0 are its detail rows, ``ordinal``
    1 for the largest (ties by identifier), without their identifier (002:L661-676)."""
    made = producers(sel, runs, a, b)
    if not made:
        return pl.DataFrame()
    (who,) = report.group_by
    frame = _frame(sel, report, int(runs.window_start[a]), int(runs.window_end[b - 1]), max(c for _, c in made))
    parts = []
    for i, created in made:
        rows = figures(sel, report, frame, int(runs.window_start[i]), int(runs.window_end[i]), created)
        if rows.height == 0:
            continue
        recipients = sel.add_recipient(pl.DataFrame({"_": [0]}), report, runs).select("recipient")
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
