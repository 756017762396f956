"""The event log: one shard's columns -> Arrow tables -> Parquet files (docs/event-log.md).

Tables (each a folder of ``part-NNNNN.parquet`` files, one per shard, except the small global
ones): ``events``, ``devices``, ``premises``, ``supply_changes``; ``suppliers.parquet``,
``non_migratable.parquet``, ``outages.parquet``; and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emrr.contract import EVENT_TYPES, FUELS
from emrr.sim import identifiers, streams
from emrr.sim.model import EV_FAILURE, EV_FIRMWARE, EV_INSTALL, EV_SKIP, EV_SUCCESS, FUEL_ELECTRICITY, Shard
from emrr.sim.population import NO_SUPPLIER, SLOT_ESME, SLOT_GPF, SLOT_GSME, TYPE_NAMES
from emrr.sim.scenario import NEVER, Scenario

FORMAT = "emrr-event-log"
FORMAT_VERSION = 1
TIMESTAMP = pa.timestamp("s", tz="UTC")
EVENT_ID_SHARD_SHIFT = 40
LATE_SECONDS = 3600  # the summary counts a notification more than an hour late as late
PARQUET_OPTIONS = {"compression": "lz4"}
ERROR_KINDS = ["transient", "permanent"]  # the error_kind column, by error_permanent
ROW_GROUP_ROWS = 64 * 1024  # events are in time order: small groups let readers skip by time
# Statistics (min/max per row group) where readers prune on them: times and indices, not the
# unique identifiers, whose statistics cost time and prune nothing.
STATISTICS_COLUMNS = ["event_id", "device_index", "premise_index", "occurred_at", "notified_at",
                      "session_started_at", "attempt_number", "installed_at",
                      "installation_index", "ma_index",  # SMETS1: the keys the report engine looks rows up by
                      "commenced_at"]  # SMETS1: the summaries' period (S1MIG-004, -005, -007), beside occurred_at

# Few distinct values: dictionary-encoded strings (read back as strings by any Parquet reader).
CODED = pa.dictionary(pa.int32(), pa.string())

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.int64()),
    ("event_type", CODED),
    ("device_index", pa.int64()),
    ("device_id", pa.string()),
    ("device_type", CODED),
    ("premise_index", pa.int64()),
    ("mpxn", pa.string()),
    ("manufacturer", CODED),
    ("model", CODED),
    ("firmware_version", CODED),
    ("occurred_at", TIMESTAMP),
    ("notified_at", TIMESTAMP),
    ("duplicate", pa.bool_()),
    ("attempt_number", pa.int16()),
    ("session_started_at", TIMESTAMP),
    ("tries", pa.int16()),
    ("error_code", CODED),
    ("error_sub_code", pa.int32()),
    ("error_kind", CODED),
    ("responsible_supplier", CODED),
])

DEVICES_SCHEMA = pa.schema([
    ("device_index", pa.int64()),
    ("device_id", pa.string()),
    ("device_type", CODED),
    ("premise_index", pa.int64()),
    ("mpxn", pa.string()),
    ("manufacturer", CODED),
    ("model", CODED),
    ("firmware_version", CODED),
    ("installed_at", TIMESTAMP),
    ("ecos_credentials_at_install", pa.bool_()),
])

PREMISES_SCHEMA = pa.schema([
    ("premise_index", pa.int64()),
    ("mpan", pa.string()),
    ("mprn", pa.string()),
    ("has_electricity", pa.bool_()),
    ("has_gas", pa.bool_()),
    ("electricity_supplier", CODED),
    ("gas_supplier", CODED),
    ("installed_at", TIMESTAMP),
])

SUPPLY_CHANGES_SCHEMA = pa.schema([
    ("premise_index", pa.int64()),
    ("fuel", CODED),
    ("losing_supplier", CODED),
    ("gaining_supplier", CODED),
    ("occurred_at", TIMESTAMP),
])


def _strings(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _take(values: pa.Array, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """values[index] with nulls where ``valid`` is False."""
    index = index.astype(np.int64)
    if valid is None:
        return values.take(pa.array(index))
    return values.take(pa.array(index, mask=~valid))


def _coded(values: list[str], index: np.ndarray, valid: np.ndarray | None = None) -> pa.DictionaryArray:
    """values[index] as a dictionary array (no string copies), nulls where ``valid`` is False.

    The dictionary holds each distinct value once: an Arrow dictionary with repeated values
    makes the Parquet writer's output vary from run to run.
    """
    distinct = list(dict.fromkeys(values))
    remap = np.array([distinct.index(v) for v in values], dtype=np.int32)
    indices = pa.array(remap[index], mask=None if valid is None else ~valid, type=pa.int32())
    return pa.DictionaryArray.from_arrays(indices, _strings(distinct))


def _timestamps(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(seconds.astype(np.int64), mask=None if valid is None else ~valid, type=pa.int64())
    return arr.cast(TIMESTAMP)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_table(table: pa.Table, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> dict:
    """Write one Parquet file; return its manifest entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dictionary = [c for c in table.column_names if pa.types.is_dictionary(table.schema.field(c).type)]
    statistics = [c for c in table.column_names if c in STATISTICS_COLUMNS]
    pq.write_table(table, path, use_dictionary=dictionary, write_statistics=statistics,
                   row_group_size=row_group_rows, **PARQUET_OPTIONS)
    return {"rows": table.num_rows, "bytes": path.stat().st_size, "sha256": sha256(path)}


class ShardWriter:
    """Turns a simulated ``Shard`` into the event log's tables."""

    def __init__(self, shard: Shard):
        self.shard = shard
        self.s = s = shard.s
        self.pop = pop = shard.population
        self.mpan = identifiers.make_mpans(pop.premise_global, s.seed, shard.stream(streams.IDS), s.distributor_weights)
        self.mprn = identifiers.make_mprns(pop.premise_global, s.seed)
        self.device_ids = identifiers.format_eui64(pop.dev_id_number)
        self.suppliers = list(s.party_ids)
        self.types = list(TYPE_NAMES)
        self.manufacturer = [c[1] for c in s.combos]
        self.model = [c[2] for c in s.combos]
        self.firmware = [c[3] for c in s.combos]
        self._mpxn_table()

    def _mpxn_table(self) -> None:
        """Each device's MPxN as a row of one character table (``mpxn_chars``, ``mpxn_index``).

        EMRR App. A notes: ESME -> MPAN, GSME -> MPRN, GPF -> MPRN when a gas meter is
        connected, else the MPAN of the electricity import meter, else none.
        """
        pop = self.pop
        prem = pop.dev_premise
        slot = pop.dev_slot
        use_mprn = (slot == SLOT_GSME) | ((slot == SLOT_GPF) & pop.has_gas[prem])
        use_mpan = ~use_mprn & ((slot == SLOT_ESME) | pop.has_elec[prem])
        # MPxN characters, one row per premises' MPAN then per premises' MPRN, padded to 13.
        n_p = len(pop.premise_global)
        chars = np.zeros((2 * n_p + 1, 13), dtype=np.uint8)
        chars[:n_p] = np.frombuffer(self.mpan.buffers()[2], dtype=np.uint8, count=13 * n_p).reshape(n_p, 13)
        chars[n_p:2 * n_p, :10] = np.frombuffer(self.mprn.buffers()[2], dtype=np.uint8,
                                                count=10 * n_p).reshape(n_p, 10)
        self.mpxn_chars = chars
        self.mpxn_width = np.concatenate([np.full(n_p, 13), np.full(n_p, 10), [0]]).astype(np.int32)
        self.mpxn_index = np.where(use_mprn, n_p + prem, np.where(use_mpan, prem, 2 * n_p))

    def mpxn(self, index: np.ndarray) -> pa.StringArray:
        """MPxN strings for rows of ``mpxn_chars`` (the last row: none, a null)."""
        index = index.astype(np.int64)
        width = self.mpxn_width[index]
        rows = self.mpxn_chars[index]
        keep = np.arange(13)[None, :] < width[:, None]
        data = rows[keep]
        offsets = np.zeros(len(index) + 1, dtype=np.int32)
        np.cumsum(width, out=offsets[1:])
        valid = width > 0
        validity = None if valid.all() else pa.array(valid).buffers()[1]
        return pa.StringArray.from_buffers(len(index), pa.py_buffer(offsets.tobytes()),
                                           pa.py_buffer(data.tobytes()), validity, int((~valid).sum()))

    # ------------------------------------------------------------------ tables

    def devices(self) -> pa.Table:
        """The ``devices`` table: every device, with its combination at the start."""
        pop = self.pop
        installed = pop.dev_installed_at >= 0
        return pa.Table.from_arrays([
            pa.array(pop.dev_global, type=pa.int64()),
            self.device_ids,
            _coded(self.types, pop.dev_slot),
            pa.array(pop.premise_global[pop.dev_premise], type=pa.int64()),
            self.mpxn(self.mpxn_index),
            _coded(self.manufacturer, pop.initial_combo),
            _coded(self.model, pop.initial_combo),
            _coded(self.firmware, pop.initial_combo),
            _timestamps(pop.dev_installed_at, installed),
            pa.array(pop.dev_ecos_at_install),
        ], schema=DEVICES_SCHEMA)

    def premises(self) -> pa.Table:
        """The ``premises`` table: every premises, with its suppliers at the start (or at install)."""
        pop = self.pop
        installed = pop.premise_installed_at >= 0
        return pa.Table.from_arrays([
            pa.array(pop.premise_global, type=pa.int64()),
            pc_if(self.mpan, pop.has_elec),
            pc_if(self.mprn, pop.has_gas),
            pa.array(pop.has_elec),
            pa.array(pop.has_gas),
            _coded(self.suppliers, np.maximum(pop.initial_elec_supplier, 0), pop.initial_elec_supplier != NO_SUPPLIER),
            _coded(self.suppliers, np.maximum(pop.initial_gas_supplier, 0), pop.initial_gas_supplier != NO_SUPPLIER),
            _timestamps(pop.premise_installed_at, installed),
        ], schema=PREMISES_SCHEMA)

    def supply_changes(self) -> pa.Table:
        """The ``supply_changes`` table, in time order."""
        c = self.shard.supply.columns()
        order = np.lexsort((c["fuel"], c["premise"], c["time"]))
        c = {k: v[order] for k, v in c.items()}
        return pa.Table.from_arrays([
            pa.array(self.pop.premise_global[c["premise"]], type=pa.int64()),
            _coded(list(FUELS), c["fuel"]),
            _coded(self.suppliers, c["losing"]),
            _coded(self.suppliers, c["gaining"]),
            _timestamps(c["time"]),
        ], schema=SUPPLY_CHANGES_SCHEMA)

    def responsible_supplier(self, device: np.ndarray, time: np.ndarray) -> np.ndarray:
        """The Responsible Supplier of each device at each time (index, or NO_SUPPLIER).

        ESME: the electricity supplier; GSME: the gas supplier; GPF: the gas supplier when a
        gas meter is connected, else the electricity supplier, else none (spec/003 §25).
        A change of supplier at the same second as an event already applies to it.

        This is deliberately the simulator's own copy of the rule the report engine implements
        with its ``supplier_at`` primitive (the event log's ``responsible_supplier`` column is
        written from it): the two are written independently, so that the engine's recipients
        can be checked against an oracle rather than against themselves.
        """
        pop = self.pop
        prem = pop.dev_premise[device].astype(np.int64)
        slot = pop.dev_slot[device]
        gas = (slot == SLOT_GSME) | ((slot == SLOT_GPF) & pop.has_gas[prem])
        fuel = np.where(gas, 1, 0)
        has_fuel = np.where(gas, pop.has_gas[prem], pop.has_elec[prem])
        initial = np.where(gas, pop.initial_gas_supplier[prem], pop.initial_elec_supplier[prem]).astype(np.int16)
        c = self.shard.supply.columns()
        result = initial.copy()
        if len(c["premise"]):
            # Only events of a premises and fuel that had a change of supplier need a look-up:
            # one sorted int64 key (premises, fuel) << 36 | time per change, searched by each
            # event's key. 2^36 seconds is about 2,000 years from the epoch, so times never
            # spill into the (premises, fuel) part.
            span = np.int64(1) << np.int64(36)
            change_slot = c["premise"].astype(np.int64) * 2 + c["fuel"]
            changed = np.zeros(2 * len(pop.premise_global), dtype=bool)
            changed[change_slot] = True
            slot_of_event = prem * 2 + fuel
            look = np.flatnonzero(changed[slot_of_event])
            change_key = change_slot * span + c["time"]
            order = np.argsort(change_key, kind="stable")
            change_key, gaining = change_key[order], c["gaining"][order]
            event_key = slot_of_event[look] * span + time[look]
            pos = np.searchsorted(change_key, event_key, side="right") - 1
            found = (pos >= 0) & (change_key[np.maximum(pos, 0)] // span == event_key // span)
            result[look] = np.where(found, gaining[np.maximum(pos, 0)], initial[look])
        return np.where(has_fuel, result, NO_SUPPLIER).astype(np.int16)

    def _notifications(self, e: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """When the reporting system learns of each event, which events are notified twice, and
        how much later the second time (from the shard's notification stream, in this order)."""
        s = self.s
        rng = self.shard.stream(streams.NOTIFY)
        n = len(e["device"])
        reportable = (e["type"] == EV_SUCCESS) | (e["type"] == EV_FAILURE) | (e["type"] == EV_INSTALL)
        latency = s.latency.sample(rng, n)
        late = rng.random(n) < s.late_probability
        latency = np.where(late, s.late_latency.sample(rng, n), latency)
        notified = e["time"] + np.where(reportable, latency, 0)
        is_dup = reportable & (rng.random(n) < s.duplicate_probability)
        dup_delay = np.zeros(n, dtype=np.int64)
        dup_delay[is_dup] = s.duplicate_delay.sample(rng, int(is_dup.sum()))
        return notified, is_dup, dup_delay

    def events(self) -> pa.Table:
        """The ``events`` table: every event of the period in time order, duplicates right after
        their original; sets ``counts`` for the run summary."""
        s, pop = self.s, self.pop
        e = self.shard.events.columns()
        # The log covers [start, end): a session that ends after the period is not known in it.
        inside = e["time"] < s.end
        e = {k: v[inside] for k, v in e.items()}
        notified, is_dup, dup_delay = self._notifications(e)
        # Event order: time, then device, then event type; event_id numbers the events in it.
        n = len(e["device"])
        order = self._time_order(e["time"], pop.dev_global[e["device"]], e["type"])
        event_id = np.empty(n, dtype=np.int64)
        event_id[order] = (np.int64(self.shard.index) << EVENT_ID_SHARD_SHIFT) + np.arange(n, dtype=np.int64)
        rows = np.repeat(order, 1 + is_dup[order])  # a duplicate right after its original
        duplicate = np.zeros(len(rows), dtype=bool)
        duplicate[1:] = rows[1:] == rows[:-1]
        notified_all = notified[rows] + np.where(duplicate, dup_delay[rows], 0)
        col = {k: v[rows] for k, v in e.items()}
        self.counts = self._counts(col["type"][~duplicate], col["error"][~duplicate],
                                   (notified_all - col["time"])[~duplicate], int(duplicate.sum()))
        return self._events_table(col, event_id[rows], notified_all, duplicate)

    def _events_table(self, col: dict[str, np.ndarray], event_id: np.ndarray, notified: np.ndarray,
                      duplicate: np.ndarray) -> pa.Table:
        s, pop = self.s, self.pop
        dev = col["device"]
        etype = col["type"]
        is_attempt = (etype == EV_SUCCESS) | (etype == EV_FAILURE)
        failed = etype == EV_FAILURE
        err = np.maximum(col["error"], 0)
        supplier = self.responsible_supplier(dev, col["time"])
        return pa.Table.from_arrays([
            pa.array(event_id),
            _coded(list(EVENT_TYPES), etype),
            pa.array(pop.dev_global[dev], type=pa.int64()),
            identifiers.format_eui64(pop.dev_id_number[dev]),
            _coded(self.types, pop.dev_slot[dev]),
            pa.array(pop.premise_global[pop.dev_premise[dev]], type=pa.int64()),
            self.mpxn(self.mpxn_index[dev]),
            _coded(self.manufacturer, col["combo"]),
            _coded(self.model, col["combo"]),
            _coded(self.firmware, col["combo"]),
            _timestamps(col["time"]),
            _timestamps(notified),
            pa.array(duplicate),
            pa.array(col["attempt"], mask=~is_attempt, type=pa.int16()),
            _timestamps(col["session_start"], is_attempt),
            pa.array(col["tries"], mask=~is_attempt, type=pa.int16()),
            _coded(s.error_codes, err, failed),
            pa.array(s.error_sub_codes[err], mask=~failed, type=pa.int32()),
            _coded(ERROR_KINDS, s.error_permanent[err].astype(np.int64), failed),
            _coded(self.suppliers, np.maximum(supplier, 0), supplier != NO_SUPPLIER),
        ], schema=EVENTS_SCHEMA)

    def _time_order(self, time: np.ndarray, device: np.ndarray, etype: np.ndarray) -> np.ndarray:
        """Indices sorting events by (time, device, type), with one int64 key when they fit in it."""
        since = time - self.s.start
        if len(time) and since.min() >= 0 and since.max() < (1 << 32) and device.max() < (1 << 28):
            key = (since << np.int64(31)) | (device.astype(np.int64) << np.int64(3)) | etype.astype(np.int64)
            return np.argsort(key, kind="stable")
        return np.lexsort((etype, device, time))

    def _counts(self, etype: np.ndarray, error: np.ndarray, lateness: np.ndarray, duplicates: int) -> dict:
        """The run summary's counts for this shard, from the rows as written (no duplicates)."""
        s = self.s
        kinds = np.bincount(etype, minlength=len(EVENT_TYPES))
        per_error = np.bincount(error[etype == EV_FAILURE], minlength=len(s.error_codes))
        return {
            "attempts": int(kinds[EV_SUCCESS] + kinds[EV_FAILURE]),
            "successes": int(kinds[EV_SUCCESS]),
            "failures": int(kinds[EV_FAILURE]),
            "failures_by_error": {f"{s.error_codes[i]}/{int(s.error_sub_codes[i])}": int(c)
                                  for i, c in enumerate(per_error) if c},
            "prevalidation_skips": int(kinds[EV_SKIP]),
            "installs": int(kinds[EV_INSTALL]),
            "firmware_upgrades": int(kinds[EV_FIRMWARE]),
            "duplicated_notifications": duplicates,
            "late_notifications": int((lateness > LATE_SECONDS).sum()),
        }


# The column builders, public for the SMETS1 writer (sim/smets1_eventlog.py): one home each.
coded = _coded
timestamps = _timestamps


def pc_if(values: pa.Array, valid: np.ndarray) -> pa.Array:
    """``values`` with nulls where ``valid`` is False."""
    return _take(values, np.arange(len(values)), valid)


def suppliers_table(scenario: Scenario) -> pa.Table:
    return pa.table({
        "party_id": _strings(scenario.party_ids),
        "name": _strings([x.name for x in scenario.suppliers]),
        "market_share": pa.array([x.share for x in scenario.suppliers], type=pa.float64()),
        "group": _strings([x.group for x in scenario.suppliers]),
    })


def non_migratable_table(scenario: Scenario) -> pa.Table:
    idx = np.flatnonzero(scenario.nm_classified_at != NEVER)
    combos = [scenario.combos[i] for i in idx]
    return pa.table({
        "device_type": _strings([c[0] for c in combos]),
        "manufacturer": _strings([c[1] for c in combos]),
        "model": _strings([c[2] for c in combos]),
        "firmware_version": _strings([c[3] for c in combos]),
        "classified_at": _timestamps(scenario.nm_classified_at[idx]),
    })


def outages_table(windows: list[tuple[str, int, int]]) -> pa.Table:
    return pa.table({
        "report_id": _strings([w[0] for w in windows]),
        "start": _timestamps(np.array([w[1] for w in windows], dtype=np.int64)),
        "end": _timestamps(np.array([w[2] for w in windows], dtype=np.int64)),
    })


__all__ = [
    "EV_FAILURE", "EV_FIRMWARE", "EV_INSTALL", "EV_SKIP", "EV_SUCCESS", "FORMAT", "FORMAT_VERSION",
    "FUEL_ELECTRICITY", "ShardWriter", "non_migratable_table", "outages_table", "sha256",
    "suppliers_table", "write_table",
]
