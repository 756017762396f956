"""Report runs: when a report runs (a cron expression, via croniter) and the window that follows.

Times are integer seconds since the epoch, UTC. A window is [start, end] with ``end`` inclusive
(the EMRR's "23:59:59"), so a one-day window is 86,399 seconds long.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from croniter import croniter

from emrr.rules.ruleset import Report, Window

UTC = dt.timezone.utc


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), UTC)


def add_months(t: dt.datetime, months: int) -> dt.datetime:
    """``t`` moved by whole calendar months (the day must exist in the month reached)."""
    index = t.year * 12 + (t.month - 1) + months
    return t.replace(year=index // 12, month=index % 12 + 1)


def run_times(cron: str, start: int, end: int) -> np.ndarray:
    """Scheduled run times in [start, end), in order."""
    it = croniter(cron, _utc(start) - dt.timedelta(seconds=1))
    out = []
    while True:
        t = int(it.get_next(dt.datetime).timestamp())
        if t >= end:
            break
        out.append(t)
    return np.array(out, dtype=np.int64)


def window(w: Window, run: int) -> tuple[int, int]:
    """The reporting window [start, end] (end inclusive) of a run at ``run``."""
    t = _utc(run)
    if w.anchor == "hour":
        anchor = t.replace(minute=0, second=0, microsecond=0)
    elif w.anchor == "day":
        anchor = t.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        anchor = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = anchor + dt.timedelta(seconds=w.end_offset)
    after = end + dt.timedelta(seconds=1)
    start = add_months(after, -w.length_months) if w.length_months else after - dt.timedelta(seconds=w.length_seconds)
    return int(start.timestamp()), int(end.timestamp())


@dataclass
class Runs:
    """The scheduled runs of one report in a span, and which of them happen (not in an outage)."""

    report: Report
    times: np.ndarray  # scheduled run times
    window_start: np.ndarray
    window_end: np.ndarray  # inclusive
    happens: np.ndarray  # bool
    next_happening: np.ndarray  # index of the first happening run at or after i; len(times) if none

    @classmethod
    def build(cls, report: Report, start: int, end: int, outages: list[tuple[str, int, int]]) -> "Runs":
        times = run_times(report.cron, start, end)
        windows = [window(report.window, int(t)) for t in times]
        ws = np.array([w[0] for w in windows], dtype=np.int64)
        we = np.array([w[1] for w in windows], dtype=np.int64)
        happens = np.ones(len(times), dtype=bool)
        for report_id, o_start, o_end in outages:
            if report_id in ("*", report.id):
                happens &= ~((times >= o_start) & (times < o_end))
        nxt = np.full(len(times) + 1, len(times), dtype=np.int64)
        for i in range(len(times) - 1, -1, -1):
            nxt[i] = i if happens[i] else nxt[i + 1]
        return cls(report, times, ws, we, happens, nxt[:-1] if len(times) else nxt[:0])

    def assign(self, occurred: np.ndarray, notified: np.ndarray) -> np.ndarray:
        """EMRR §3.1.6 "previously unreported": the first happening run whose window ends at or
        after the event and which runs at or after the reporting system learned of it.
        Returns a run index per event, or len(times) when no run in the span can carry it."""
        n = len(self.times)
        if n == 0:
            return np.zeros(len(occurred), dtype=np.int64)
        by_window = np.searchsorted(self.window_end, occurred, side="left")
        by_notice = np.searchsorted(self.times, notified, side="left")
        first = np.maximum(by_window, by_notice)
        nxt = np.append(self.next_happening, n)
        return nxt[np.minimum(first, n)]

    def made(self, idx: np.ndarray, catch_up: bool) -> tuple[np.ndarray, np.ndarray]:
        """For windowed reports (outages ``summary_reports``): the creation time of the file that
        makes up each run ``idx`` (the run itself, or with ``catch_up`` the next that happens when
        it fell in an outage), and whether one in the span does (else the time is 0)."""
        n = len(self.times)
        producer = self.next_happening[idx] if catch_up else np.where(self.happens[idx], idx, n)
        ok = producer < n
        created = np.where(ok, self.times[np.minimum(producer, n - 1)], 0)
        return created, ok
