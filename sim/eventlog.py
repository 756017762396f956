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

from sim import identifiers
from sim.model import (
    EV_FAILURE, EV_FIRMWARE, EV_INSTALL, EV_SKIP, EV_SUCCESS, EVENT_TYPES, FUEL_ELECTRICITY,
    NO_SUPPLIER, SLOT_ESME, SLOT_GPF, SLOT_GSME, STREAM_IDS, STREAM_NOTIFY, TYPE_NAMES, Shard,
    rng_for,
)
from sim.scenario import NEVER, Scenario

FORMAT = "emrr-event-log"
FORMAT_VERSION = 1
TIMESTAMP = pa.timestamp("s", tz="UTC")
EVENT_ID_SHARD_SHIFT = 40
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1, "write_statistics": True}
# Columns with few distinct values are dictionary-encoded; identifiers (unique) are not, which
# spares the writer a dictionary it would only abandon.
DICTIONARY_COLUMNS = ["event_type", "device_type", "manufacturer", "model", "firmware_version",
                      "error_code", "error_kind", "responsible_supplier", "fuel", "losing_supplier",
                      "gaining_supplier", "electricity_supplier", "gas_supplier"]

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.int64()),
    ("event_type", pa.string()),
    ("device_index", pa.int64()),
    ("device_id", pa.string()),
    ("device_type", pa.string()),
    ("premise_index", pa.int64()),
    ("mpxn", pa.string()),
    ("manufacturer", pa.string()),
    ("model", pa.string()),
    ("firmware_version", pa.string()),
    ("occurred_at", TIMESTAMP),
    ("notified_at", TIMESTAMP),
    ("duplicate", pa.bool_()),
    ("attempt_number", pa.int16()),
    ("session_started_at", TIMESTAMP),
    ("tries", pa.int16()),
    ("error_code", pa.string()),
    ("error_sub_code", pa.int32()),
    ("error_kind", pa.string()),
    ("responsible_supplier", pa.string()),
])

DEVICES_SCHEMA = pa.schema([
    ("device_index", pa.int64()),
    ("device_id", pa.string()),
    ("device_type", pa.string()),
    ("premise_index", pa.int64()),
    ("mpxn", pa.string()),
    ("manufacturer", pa.string()),
    ("model", pa.string()),
    ("firmware_version", pa.string()),
    ("installed_at", TIMESTAMP),
    ("ecos_credentials_at_install", pa.bool_()),
])

PREMISES_SCHEMA = pa.schema([
    ("premise_index", pa.int64()),
    ("mpan", pa.string()),
    ("mprn", pa.string()),
    ("has_electricity", pa.bool_()),
    ("has_gas", pa.bool_()),
    ("electricity_supplier", pa.string()),
    ("gas_supplier", pa.string()),
    ("installed_at", TIMESTAMP),
])

SUPPLY_CHANGES_SCHEMA = pa.schema([
    ("premise_index", pa.int64()),
    ("fuel", pa.string()),
    ("losing_supplier", pa.string()),
    ("gaining_supplier", pa.string()),
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


def _timestamps(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(seconds.astype(np.int64), mask=None if valid is None else ~valid, type=pa.int64())
    return arr.cast(TIMESTAMP)


def _supplier_strings(scenario: Scenario) -> pa.Array:
    return _strings(scenario.party_ids)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_table(table: pa.Table, path: Path) -> dict:
    """Write one Parquet file; return its manifest entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dictionary = [c for c in table.column_names if c in DICTIONARY_COLUMNS]
    pq.write_table(table, path, use_dictionary=dictionary, **PARQUET_OPTIONS)
    return {"rows": table.num_rows, "bytes": path.stat().st_size}


class ShardWriter:
    """Turns a simulated ``Shard`` into the event log's tables."""

    def __init__(self, shard: Shard):
        self.shard = shard
        self.s = shard.s
        s, sh = self.s, shard
        self.mpan = identifiers.make_mpans(sh.premise_global, s.seed, rng_for(s, sh.index, STREAM_IDS))
        self.mprn = identifiers.make_mprns(sh.premise_global, s.seed)
        self.device_ids = identifiers.format_eui64(identifiers.device_id_numbers(sh.dev_global, s.seed))
        self.suppliers = _supplier_strings(s)
        self.types = _strings(list(TYPE_NAMES))
        self.manufacturer = _strings([c[1] for c in s.combos])
        self.model = _strings([c[2] for c in s.combos])
        self.firmware = _strings([c[3] for c in s.combos])
        # MPxN per device (EMRR App. A notes): ESME -> MPAN, GSME -> MPRN, GPF -> MPRN when a
        # gas meter is connected, else the MPAN of the electricity import meter, else none.
        prem = sh.dev_premise
        slot = sh.dev_slot
        use_mprn = (slot == SLOT_GSME) | ((slot == SLOT_GPF) & sh.has_gas[prem])
        use_mpan = ~use_mprn & ((slot == SLOT_ESME) | sh.has_elec[prem])
        mpxn_text = pa.concat_arrays([self.mpan, self.mprn, pa.nulls(1, pa.string())])
        n_prem = len(sh.premise_global)
        self.mpxn_index = np.where(use_mprn, n_prem + prem, np.where(use_mpan, prem, 2 * n_prem))
        self.mpxn_text = mpxn_text

    # ------------------------------------------------------------------ tables

    def devices(self) -> pa.Table:
        sh = self.shard
        installed = sh.dev_installed_at >= 0
        return pa.Table.from_arrays([
            pa.array(sh.dev_global, type=pa.int64()),
            self.device_ids,
            _take(self.types, sh.dev_slot),
            pa.array(sh.premise_global[sh.dev_premise], type=pa.int64()),
            self.mpxn_text.take(pa.array(self.mpxn_index)),
            _take(self.manufacturer, sh.initial_combo),
            _take(self.model, sh.initial_combo),
            _take(self.firmware, sh.initial_combo),
            _timestamps(sh.dev_installed_at, installed),
            pa.array(installed),
        ], schema=DEVICES_SCHEMA)

    def premises(self) -> pa.Table:
        sh = self.shard
        installed = sh.premise_installed_at >= 0
        return pa.Table.from_arrays([
            pa.array(sh.premise_global, type=pa.int64()),
            pc_if(self.mpan, sh.has_elec),
            pc_if(self.mprn, sh.has_gas),
            pa.array(sh.has_elec),
            pa.array(sh.has_gas),
            _take(self.suppliers, np.maximum(sh.initial_elec_supplier, 0), sh.initial_elec_supplier != NO_SUPPLIER),
            _take(self.suppliers, np.maximum(sh.initial_gas_supplier, 0), sh.initial_gas_supplier != NO_SUPPLIER),
            _timestamps(sh.premise_installed_at, installed),
        ], schema=PREMISES_SCHEMA)

    def supply_changes(self) -> pa.Table:
        sh = self.shard
        c = sh.supply.columns()
        order = np.lexsort((c["fuel"], c["premise"], c["time"]))
        c = {k: v[order] for k, v in c.items()}
        return pa.Table.from_arrays([
            pa.array(sh.premise_global[c["premise"]], type=pa.int64()),
            _take(_strings(["electricity", "gas"]), c["fuel"]),
            _take(self.suppliers, c["losing"]),
            _take(self.suppliers, c["gaining"]),
            _timestamps(c["time"]),
        ], schema=SUPPLY_CHANGES_SCHEMA)

    def responsible_supplier(self, device: np.ndarray, time: np.ndarray) -> np.ndarray:
        """The Responsible Supplier of each device at each time (index, or NO_SUPPLIER).

        ESME: the electricity supplier; GSME: the gas supplier; GPF: the gas supplier when a
        gas meter is connected, else the electricity supplier, else none (spec/003 §25).
        A change of supplier at the same second as an event already applies to it.
        """
        sh = self.shard
        prem = sh.dev_premise[device].astype(np.int64)
        slot = sh.dev_slot[device]
        gas = (slot == SLOT_GSME) | ((slot == SLOT_GPF) & sh.has_gas[prem])
        fuel = np.where(gas, 1, 0)
        has_fuel = np.where(gas, sh.has_gas[prem], sh.has_elec[prem])
        initial = np.where(gas, sh.initial_gas_supplier[prem], sh.initial_elec_supplier[prem]).astype(np.int16)
        c = sh.supply.columns()
        if len(c["premise"]) == 0:
            return np.where(has_fuel, initial, NO_SUPPLIER).astype(np.int16)
        span = np.int64(1) << np.int64(36)  # seconds: ~2,000 years from the epoch
        change_key = (c["premise"].astype(np.int64) * 2 + c["fuel"]) * span + c["time"]
        order = np.argsort(change_key, kind="stable")
        change_key, gaining = change_key[order], c["gaining"][order]
        event_key = (prem * 2 + fuel) * span + time
        pos = np.searchsorted(change_key, event_key, side="right") - 1
        found = (pos >= 0) & (change_key[np.maximum(pos, 0)] // span == event_key // span)
        result = np.where(found, gaining[np.maximum(pos, 0)], initial)
        return np.where(has_fuel, result, NO_SUPPLIER).astype(np.int16)

    def events(self) -> pa.Table:
        s, sh = self.s, self.shard
        e = sh.events.columns()
        # The log covers [start, end): a session that ends after the period is not known in it.
        inside = e["time"] < s.end
        e = {k: v[inside] for k, v in e.items()}
        rng = rng_for(s, sh.index, STREAM_NOTIFY)
        n = len(e["device"])
        reportable = (e["type"] == EV_SUCCESS) | (e["type"] == EV_FAILURE) | (e["type"] == EV_INSTALL)
        # Late notification: when the reporting system learned of the event.
        latency = s.latency.sample(rng, n)
        late = rng.random(n) < s.late_probability
        latency = np.where(late, s.late_latency.sample(rng, n), latency)
        notified = e["time"] + np.where(reportable, latency, 0)
        # Duplicated notifications: the same event again, a little later.
        dup_of = np.flatnonzero(reportable & (rng.random(n) < s.duplicate_probability))
        dup_notified = notified[dup_of] + s.duplicate_delay.sample(rng, len(dup_of))
        order = np.lexsort((e["type"], sh.dev_global[e["device"]], e["time"]))
        event_id = np.empty(n, dtype=np.int64)
        event_id[order] = (np.int64(sh.index) << EVENT_ID_SHARD_SHIFT) + np.arange(n, dtype=np.int64)
        rows = np.concatenate([np.arange(n), dup_of])
        notified_all = np.concatenate([notified, dup_notified])
        duplicate = np.concatenate([np.zeros(n, bool), np.ones(len(dup_of), bool)])
        final = np.lexsort((duplicate, event_id[rows]))  # time order; a duplicate after its original
        rows, notified_all, duplicate = rows[final], notified_all[final], duplicate[final]
        col = {k: v[rows] for k, v in e.items()}
        dev = col["device"]
        etype = col["type"]
        is_attempt = (etype == EV_SUCCESS) | (etype == EV_FAILURE)
        failed = etype == EV_FAILURE
        err = np.maximum(col["error"], 0)
        supplier = self.responsible_supplier(dev, col["time"])
        has_supplier = supplier != NO_SUPPLIER
        kinds = _strings(["transient", "permanent"])
        return pa.Table.from_arrays([
            pa.array(event_id[rows]),
            _take(_strings(list(EVENT_TYPES)), etype),
            pa.array(sh.dev_global[dev], type=pa.int64()),
            self.device_ids.take(pa.array(dev.astype(np.int64))),
            _take(self.types, sh.dev_slot[dev]),
            pa.array(sh.premise_global[sh.dev_premise[dev]], type=pa.int64()),
            self.mpxn_text.take(pa.array(self.mpxn_index[dev])),
            _take(self.manufacturer, col["combo"]),
            _take(self.model, col["combo"]),
            _take(self.firmware, col["combo"]),
            _timestamps(col["time"]),
            _timestamps(notified_all),
            pa.array(duplicate),
            pa.array(col["attempt"], mask=~is_attempt, type=pa.int16()),
            _timestamps(col["session_start"], is_attempt),
            pa.array(col["tries"], mask=~is_attempt, type=pa.int16()),
            _take(_strings(s.error_codes), err, failed),
            pa.array(s.error_sub_codes[err], mask=~failed, type=pa.int32()),
            _take(kinds, s.error_permanent[err].astype(np.int64), failed),
            _take(self.suppliers, np.maximum(supplier, 0), has_supplier),
        ], schema=EVENTS_SCHEMA)


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
