"""The shared state of one shard of the simulation (DESIGN.md "The domain model").

A shard is a fixed range of premises with its own random streams (``emrr.sim.streams``), so the
result does not depend on how many worker processes run the shards. Its state is:

- the population, as columns (``emrr.sim.population``);
- what the actors (``emrr.sim.actors``) record: events and changes of supplier, appended batch
  by batch as column chunks and concatenated once at the end;
- the control centre's selection queue, and the firmware upgrades still to apply.

The actors are the SimPy processes that change this state; ``emrr.sim.eventlog`` turns it into
the event log's tables.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from emrr.contract import (
    EVENT_TYPES,
    FIRMWARE_UPGRADE,
    INSTALL,
    MIGRATION_FAILURE,
    MIGRATION_SUCCESS,
    PREVALIDATION_SKIP,
)
from emrr.sim import population, streams
from emrr.sim.population import DAY, Population
from emrr.sim.scenario import Scenario

# Event type codes: positions in the event-log contract's EVENT_TYPES (the ``event_type`` column).
EV_SUCCESS = EVENT_TYPES.index(MIGRATION_SUCCESS)
EV_FAILURE = EVENT_TYPES.index(MIGRATION_FAILURE)
EV_SKIP = EVENT_TYPES.index(PREVALIDATION_SKIP)
EV_INSTALL = EVENT_TYPES.index(INSTALL)
EV_FIRMWARE = EVENT_TYPES.index(FIRMWARE_UPGRADE)
FUEL_ELECTRICITY, FUEL_GAS = 0, 1  # positions in emrr.contract.FUELS


@dataclass
class EventColumns:
    """Events appended batch by batch as column chunks; concatenated once at the end."""

    chunks: dict[str, list[np.ndarray]] = field(default_factory=lambda: {
        "type": [], "device": [], "time": [], "attempt": [], "error": [], "combo": [],
        "session_start": [], "tries": [],
    })

    def add(self, etype: int, device: np.ndarray, time: np.ndarray, combo: np.ndarray,
            attempt: np.ndarray | None = None, error: np.ndarray | None = None,
            session_start: np.ndarray | None = None, tries: np.ndarray | None = None) -> None:
        """Record events of one type; ``time`` may be one instant for all."""
        n = len(device)
        if n == 0:
            return
        c = self.chunks
        c["type"].append(np.full(n, etype, dtype=np.int8))
        c["device"].append(device.astype(np.int32, copy=False))
        c["time"].append(np.broadcast_to(np.asarray(time, dtype=np.int64), (n,)).copy())
        c["combo"].append(combo.astype(np.int16, copy=False))
        c["attempt"].append(np.zeros(n, np.int16) if attempt is None else attempt.astype(np.int16))
        c["error"].append(np.full(n, -1, np.int16) if error is None else error.astype(np.int16))
        c["session_start"].append(np.full(n, -1, np.int64) if session_start is None else session_start)
        c["tries"].append(np.zeros(n, np.int16) if tries is None else tries.astype(np.int16))

    def columns(self) -> dict[str, np.ndarray]:
        """Every event recorded so far, one array per column."""
        empty = {"type": np.int8, "device": np.int32, "time": np.int64, "attempt": np.int16,
                 "error": np.int16, "combo": np.int16, "session_start": np.int64, "tries": np.int16}
        return {k: (np.concatenate(v) if v else np.empty(0, dtype=empty[k])) for k, v in self.chunks.items()}


@dataclass
class SupplyChanges:
    """Changes of supplier (premises, fuel, losing and gaining supplier, time), as column chunks."""

    premise: list[np.ndarray] = field(default_factory=list)
    fuel: list[np.ndarray] = field(default_factory=list)
    losing: list[np.ndarray] = field(default_factory=list)
    gaining: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)

    def add(self, premise: np.ndarray, fuel: int, losing: np.ndarray, gaining: np.ndarray, time: np.ndarray) -> None:
        """Record changes of one fuel."""
        if len(premise):
            self.premise.append(premise.astype(np.int32))
            self.fuel.append(np.full(len(premise), fuel, dtype=np.int8))
            self.losing.append(losing.astype(np.int16))
            self.gaining.append(gaining.astype(np.int16))
            self.time.append(time.astype(np.int64))

    def columns(self) -> dict[str, np.ndarray]:
        """Every change recorded so far, one array per column."""
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return {"premise": cat(self.premise, np.int32), "fuel": cat(self.fuel, np.int8),
                "losing": cat(self.losing, np.int16), "gaining": cat(self.gaining, np.int16),
                "time": cat(self.time, np.int64)}


@dataclass
class PendingUpgrade:
    """One firmware campaign's upgrades: its devices in time order, and how many are applied so far."""

    devices: np.ndarray
    times: np.ndarray  # sorted
    combo_from: int
    combo_to: int
    applied: int = 0  # devices[:applied] are done


class SelectionQueue:
    """The Migration Control Centre's candidates: devices ready again first, then never-selected ones.

    ``fresh`` is the order in which never-selected devices are taken (a random permutation, the
    control centre's); devices to try again later wait in ``due`` by day, and join ``ready`` on
    that day.
    """

    def __init__(self, start: int):
        self.start = start
        self.fresh = np.empty(0, dtype=np.int32)
        self.fresh_head = 0
        self.due: dict[int, list[np.ndarray]] = {}  # day number -> devices ready again that day
        self.ready: deque[np.ndarray] = deque()

    def day_of(self, t: np.ndarray | int) -> np.ndarray | int:
        """The day number (from the start of the period) of instants ``t``."""
        return (t - self.start) // DAY

    def schedule(self, devices: np.ndarray, when: np.ndarray) -> None:
        """Make devices selectable again from the day of ``when``."""
        if len(devices) == 0:
            return
        days = self.day_of(when)
        order = np.argsort(days, kind="stable")
        days, devices = days[order], devices[order]
        cut = np.flatnonzero(np.diff(days)) + 1
        for part_days, part in zip(np.split(days, cut), np.split(devices, cut)):
            self.due.setdefault(int(part_days[0]), []).append(part)

    def release_due(self, t: int) -> None:
        """Devices due on or before the day of ``t`` become ready, earliest day first."""
        today = int(self.day_of(t))
        for day in sorted(d for d in self.due if d <= today):
            self.ready.extend(self.due.pop(day))

    def take(self, need: int) -> np.ndarray:
        """Up to ``need`` candidates: devices ready again first, then never-selected devices."""
        parts, have = [], 0
        while self.ready and have < need:
            head = self.ready.popleft()
            part = head[: need - have]
            if len(part) < len(head):
                self.ready.appendleft(head[len(part):])
            parts.append(part)
            have += len(part)
        if have < need and self.fresh_head < len(self.fresh):
            part = self.fresh[self.fresh_head: self.fresh_head + need - have]
            self.fresh_head += len(part)
            parts.append(part)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)


class Shard:
    """One shard's state: its population, what its actors recorded, its queue and pending upgrades."""

    def __init__(self, scenario: Scenario, index: int, bounds: tuple[int, int], total_premises: int):
        self.s = scenario
        self.index = index
        first, end = bounds
        self.fraction = (end - first) / total_premises  # its share of the capacity and the installs
        self.population: Population = population.build(
            scenario, index, bounds, self.fraction, self.stream(streams.POPULATION))
        self.events = EventColumns()
        self.supply = SupplyChanges()
        self.queue = SelectionQueue(scenario.start)
        self.upgrades: list[PendingUpgrade] = []  # one per firmware campaign that has started
        self.capacity = daily_capacity(scenario)  # the national capacity of each day from migration start
        self.env = simpy.Environment(initial_time=scenario.start)

    def stream(self, number: int, *more: int) -> np.random.Generator:
        """This shard's random stream ``number`` (``emrr.sim.streams``)."""
        return streams.for_shard(self.s.seed, self.index, number, *more)


def daily_capacity(s: Scenario) -> np.ndarray:
    """The national attempts capacity of each day, counted from the UTC midnight of ``migration.start``:
    the weekday's capacity, times the ramp-up, the calendar's factor (bank holidays, a Christmas pause)
    and the day's variation. The variation is one national draw (stream PACE), so every shard sees the
    same days."""
    day0 = (s.migration_start // DAY) * DAY
    days = max(0, -(-(s.end - day0) // DAY))
    midnight = day0 + np.arange(days, dtype=np.int64) * DAY
    weekday = ((midnight // DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    out = np.array(s.capacity, dtype=np.float64)[weekday]
    if s.ramp_up is not None:
        duration, initial = s.ramp_up
        progress = np.clip((midnight - s.migration_start) / max(duration, 1), 0.0, 1.0)
        out = out * (initial + (1.0 - initial) * progress)
    for start, end, factor in s.calendar:
        inside = (midnight >= (start // DAY) * DAY) & (midnight < end)
        out = np.where(inside, np.minimum(out, np.array(s.capacity, dtype=np.float64)[weekday] * factor), out)
    if s.daily_variation > 0:
        rng = streams.for_run(s.seed, streams.PACE)
        out = out * np.clip(rng.normal(1.0, s.daily_variation, size=days), 0.5, 1.5)
    return out


def shard_bounds(scenario: Scenario) -> list[tuple[int, int]]:
    """The fixed split of the initial premises into shards: [(first, end), ...]."""
    size = scenario.shard_premises
    return [(lo, min(lo + size, scenario.premises)) for lo in range(0, scenario.premises, size)]
