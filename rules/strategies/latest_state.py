"""``latest_state``: a snapshot at each run's window end of what ``select.key`` identifies (an
Installation), in the state its latest event gives (MRR S1MIG-003, "In-Process ... at 23:59:59 UTC
on the Previous Day", 002:L340, L396).

An event ``e`` of the key is its latest known event at run ``i`` when it happened by the run's
window end and was known by the run's file creation, and no later event of the key was. Both
bounds grow with ``i``, so ``e`` is the latest from the first run that sees it up to (not
including) the first run that sees any later event of the key: an interval of runs, found for all
events at once. Kept are the events whose type ``select.status`` maps to a state; an event mapped
to nothing (the migration completed or failed) ends the key's presence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from emrr.rules.eventlog import collect, keys_in
from emrr.rules.strategies.runs import producers, visible_from

if TYPE_CHECKING:
    from emrr.rules.ruleset import Report
    from emrr.rules.schedule import Runs
    from emrr.rules.selection import Selection

DERIVES = {"status": "str", "status_changed_at": "time"}


def _intervals(sel: Selection, report: Report, runs: Runs) -> pl.DataFrame:
    """event_id, first and end run of each state event of the report (cached per report)."""
    cache = sel.cache.setdefault("latest_state", {})
    if report.id in cache:
        return cache[report.id]
    key = report.key
    state = pl.col("event_type").is_in(list(report.status)).alias("state")
    if report.where:  # conditions may read joined columns: the rows are fetched whole
        columns = [key, "event_id", "event_type", "occurred_at", "notified_at", *(c.column for c in report.where)]
        frame = sel.where(sel.log.rows(report.event_types, list(dict.fromkeys(columns))), report)
        frame = frame.select(key, "event_id", "occurred_at", "notified_at", state)
    else:  # at national volume, tens of millions of rows: numbers only
        frame = collect(sel.log.events(report.event_types).select(key, "event_id", "occurred_at", "notified_at",
                                                                    state))
    frame = frame.sort([key, "occurred_at", "event_id"])
    first = visible_from(sel, runs, frame["occurred_at"].to_numpy(), frame["notified_at"].to_numpy())
    n = len(runs.times)
    end = first_of_later(frame[key].to_numpy(), first, n)
    states = (frame.select("event_id", "state", pl.Series("first", first), pl.Series("end", end))
              .filter(pl.col("state") & (pl.col("first") < pl.col("end"))).select("event_id", "first", "end"))
    cache[report.id] = states
    return states


def first_of_later(key: np.ndarray, first: np.ndarray, none: int) -> np.ndarray:
    """For rows sorted by ``key`` (then time): the least ``first`` among the later rows of the same
    key, ``none`` for a key's last row. A reversed running minimum that restarts at each key: each
    key's values are lifted above every earlier key's, so the running minimum, taken from the end,
    never carries one key's minimum into an earlier key
    (NumPy, linear: a grouped window over tens of millions of rows took 20 s and 2 GB)."""
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[True], key[1:] != key[:-1]])
    segment = np.cumsum(starts) - 1  # 0 .. S-1 in key order
    lift = segment.astype(np.int64) * (int(max(first.max(), none)) + 1)
    running = np.minimum.accumulate((first.astype(np.int64) + lift)[::-1])[::-1] - lift  # min of rows i.. of its key
    later = np.full(n, none, dtype=np.int64)
    same = ~starts[1:]  # row i+1 has the key of row i
    later[:-1][same] = running[1:][same]
    return later


def latest_state(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    from emrr.rules.selection import recipient_columns

    made = producers(sel, runs, a, b)
    if not made:
        return pl.DataFrame()
    states = _intervals(sel, report, runs).filter((pl.col("first") < b) & (pl.col("end") > a))
    if states.height == 0:
        return pl.DataFrame()
    run_frame = pl.DataFrame({"run_idx": [i for i, _ in made], "created": [c for _, c in made]},
                             schema={"run_idx": pl.Int64, "created": pl.Int64})
    pairs = (states.join(run_frame, how="cross")
             .filter((pl.col("run_idx") >= pl.col("first")) & (pl.col("run_idx") < pl.col("end")))
             .select("event_id", "run_idx", "created"))
    if pairs.height == 0:
        return pl.DataFrame()
    needed = sorted((set(report.columns) - set(DERIVES)) | {"event_id", "event_type", "occurred_at", report.key}
                    | recipient_columns(report) | set(report.order_by) - set(DERIVES)
                    | {c for h in report.hide for c in h.columns} | {c for w, cs in report.blank for c in (w, *cs)})
    ids = pairs["event_id"].unique().sort()
    # by key ranges as well: a log that keeps its events in order of their identifiers (the simulator's
    # shards do) has the scan skip the row groups between them
    rows = sel.log.rows(report.event_types, needed, keys_in("event_id", ids))
    rows = rows.join(pairs, on="event_id").with_columns(
        pl.col("event_type").replace_strict(report.status, default=None).alias("status"),
        pl.col("occurred_at").alias("status_changed_at"))
    return sel.add_recipient(rows, report, runs)
