"""The shared state of one shard of the SMETS1 simulation: its Installations, what the actors record,
and the Migration Control Centre's queue of attempts by Migration Day.

A shard is a fixed range of Installations with its own random streams (``emrr.sim.streams.for_shard``
with the SMETS1 stream numbers below), so that the result does not depend on how many worker
processes run the shards. ``emrr.sim.smets1_actors`` changes this state; ``emrr.sim.smets1_eventlog``
turns it into the event log's tables.
"""

from __future__ import annotations

import numpy as np
import simpy

from emrr.contract import SMETS1_EVENT_TYPES
from emrr.sim import smets1_population, streams
from emrr.sim.smets1_population import NONE, Installations
from emrr.sim.smets1_scenario import DAY, Smets1Scenario

# Event type codes: positions in emrr.contract.SMETS1_EVENT_TYPES (the ``event_type`` column).
(EV_MA_RECEIVED, EV_MA_VALIDATED, EV_MA_REJECTED, EV_DA_FAILED, EV_MCF, EV_MCVF_FAILED, EV_COMMENCED,
 EV_S1SP_COMMISSIONED, EV_COMPLETED, EV_FAILED, EV_MA_IN_PROGRESS, EV_MA_COMPLETED) = range(len(SMETS1_EVENT_TYPES))
# Completion Status codes: positions in emrr.contract.COMPLETION_STATUSES.
STATUS_SUCCESS, STATUS_FAILED, STATUS_WARNING, STATUS_IN_PROGRESS = range(4)

# The SMETS1 shard streams (seeded with [seed, shard, stream]); a SMETS1 run draws none of the ECoS
# streams, and these numbers are far from theirs. Part of the output's identity: they never change.
POPULATION = 100  # Installations, meters, suppliers, devices, planned days, MA details
AUTHORISATIONS = 101  # the SMSO's validation of MAs
CONTROL_CENTRE = 102  # DA pre-validation, the attempts' files and outcomes, expiries, retries
NOTIFY = 103  # when the reporting application learns of each event (the event log writer)
IDS = 104  # MPAN distributor digits are drawn with the population; reserved


COLUMNS = {  # name -> (dtype, value when not given)
    "type": (np.int8, 0), "inst": (np.int32, 0), "slot": (np.int8, NONE), "time": (np.int64, 0),
    "attempt": (np.int16, 0), "commenced": (np.int64, NONE), "mcf": (np.int32, NONE),
    "cf_at": (np.int64, NONE), "rparty": (np.int16, NONE), "rcounter": (np.int32, NONE),
    "status": (np.int8, NONE), "reason": (np.int16, NONE),
}


class EventColumns:
    """Events appended batch by batch; the columns are built once at the end.

    ``inst`` is the shard's local Installation, ``slot`` its MA (NONE for an attempt's event), ``mcf``
    the MCF Counter (also kept on an ``ma_completed`` after an MCF, for its MCF reference), ``rparty``
    and ``rcounter`` the reporting party and its file counter, ``reason`` a row of the scenario's
    reason table. A value given once for a whole batch is kept as one value until the end.
    """

    def __init__(self) -> None:
        self.batches: list[tuple[int, dict[str, np.ndarray | int]]] = []

    def add(self, etype: int, inst: np.ndarray, time: np.ndarray | int, **values: np.ndarray | int) -> None:
        """Record events of one type; any value may be one for all."""
        n = len(inst)
        if n == 0:
            return
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise TypeError(f"unknown event columns {sorted(unknown)}")
        self.batches.append((n, {"type": etype, "inst": inst, "time": time, **values}))

    def columns(self) -> dict[str, np.ndarray]:
        """Every event recorded, one array per column; the batches are let go (a shard's events are
        turned into columns once, when it is written)."""
        total = sum(n for n, _ in self.batches)
        out = {k: np.full(total, default, dtype=dtype) for k, (dtype, default) in COLUMNS.items()}
        at = 0
        for n, values in self.batches:
            for name, value in values.items():
                out[name][at:at + n] = value
            at += n
        self.batches = []
        return out


class AttemptQueue:
    """Installations due for an attempt, by Migration Day (day number from the period's first midnight)."""

    def __init__(self, first_day: int):
        self.first_day = first_day
        self.due: dict[int, list[np.ndarray]] = {}

    def schedule(self, inst: np.ndarray, day: np.ndarray) -> None:
        if len(inst) == 0:
            return
        number = (day - self.first_day) // DAY
        order = np.argsort(number, kind="stable")
        number, inst = number[order], inst[order]
        cut = np.flatnonzero(np.diff(number)) + 1
        for part_days, part in zip(np.split(number, cut), np.split(inst, cut)):
            self.due.setdefault(int(part_days[0]), []).append(part)

    def take(self, day: int) -> np.ndarray:
        parts = self.due.pop(int((day - self.first_day) // DAY), [])
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


class Shard:
    """One shard's state: its Installations, what its actors recorded, and the attempt queue."""

    def __init__(self, scenario: Smets1Scenario, index: int, bounds: tuple[int, int]):
        self.s = scenario
        self.index = index
        first, end = bounds
        self.inst: Installations = smets1_population.build(scenario, first, end - first, self.stream(POPULATION))
        self.events = EventColumns()
        self.queue = AttemptQueue(scenario.first_day)
        self.env = simpy.Environment(initial_time=scenario.first_day)

    def stream(self, number: int, *more: int) -> np.random.Generator:
        return streams.for_shard(self.s.seed, self.index, number, *more)


def shard_bounds(scenario: Smets1Scenario) -> list[tuple[int, int]]:
    """The fixed split of the Installations into shards: [(first, end), ...]."""
    size = scenario.shard_installations
    return [(lo, min(lo + size, scenario.installations)) for lo in range(0, scenario.installations, size)]
