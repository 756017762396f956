"""What the windowed strategies share: the file creation time of each run, and when an event
becomes visible to a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emrr.rules.schedule import Runs
    from emrr.rules.selection import Selection


def producers(sel: Selection, runs: Runs, a: int, b: int) -> list[tuple[int, int]]:
    """(run index, creation time) of each run of ``a..b-1`` that a file is made for, under the
    ruleset's outage policy (a run lost to an outage is made up by the next that happens, or skipped)."""
    out = []
    for i in range(a, b):
        created, ok = sel.made(runs, np.array([i]))
        if ok[0]:
            out.append((i, int(created[0])))
    return out


def visible_from(sel: Selection, runs: Runs, occurred: np.ndarray, notified: np.ndarray) -> np.ndarray:
    """For each event, the first run (index) whose window ends at or after it happened and whose
    file is made at or after the reporting system learned of it; ``len(runs.times)`` if none.

    Window ends and creation times are both non-decreasing over the runs, so this is two binary
    searches. A run that makes no file counts with its scheduled time (it shows nothing anyway)."""
    n = len(runs.times)
    if n == 0:
        return np.zeros(len(occurred), dtype=np.int64)
    created, ok = sel.made(runs, np.arange(n))
    created = np.maximum.accumulate(np.where(ok, created, runs.times))
    by_window = np.searchsorted(runs.window_end, occurred, side="left")
    by_notice = np.searchsorted(created, notified, side="left")
    return np.maximum(by_window, by_notice).astype(np.int64)
