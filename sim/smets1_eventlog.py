"""The SMETS1 event log: one shard's columns -> Arrow tables (docs/event-log.md "The SMETS1 event log").

Tables: ``events``, ``installations``, ``authorisations`` (a part file per shard), and the global
``parties``, ``distributors``, ``commitments`` (and ``outages``, written as for ECoS). Column names
and kinds are ``emrr.contract.SMETS1_TABLES``; Parquet writing, the dictionary and timestamp column
builders and the Device ID and MPAN identifiers are the ECoS simulator's.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from emrr.contract import COMPLETION_STATUSES, SMETS1_DEVICES, SMETS1_EVENT_TYPES
from emrr.sim import identifiers
from emrr.sim.eventlog import CODED, EVENT_ID_SHARD_SHIFT, LATE_SECONDS, TIMESTAMP, coded, timestamps
from emrr.sim.smets1_model import (
    EV_DA_FAILED,
    EV_FAILED,
    EV_MA_COMPLETED,
    EV_MA_IN_PROGRESS,
    EV_MA_RECEIVED,
    EV_MA_REJECTED,
    EV_MA_VALIDATED,
    EV_MCF,
    IDS,
    NOTIFY,
    STATUS_FAILED,
    STATUS_WARNING,
    Shard,
)
from emrr.sim.smets1_population import MA_SLOTS
from emrr.sim.smets1_scenario import DAY, Smets1Scenario

DENSE_KEYS = 1 << 24  # _rendered: keys spanning fewer values are numbered without sorting
DEVICE_SLOTS = len(SMETS1_DEVICES)  # a device's global number: installation_index * 8 + its position

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.int64()), ("event_type", CODED), ("installation_index", pa.int64()), ("ma_index", pa.int64()),
    ("occurred_at", TIMESTAMP), ("notified_at", TIMESTAMP), ("duplicate", pa.bool_()),
    ("attempt_number", pa.int16()), ("commenced_at", TIMESTAMP), ("requesting_party_id", CODED),
    ("mcf_counter", pa.int32()), ("mcf_reference", CODED), ("commissioning_file_at", TIMESTAMP),
    ("reporting_party_id", CODED), ("reporting_party_counter", pa.int32()), ("validated_at", TIMESTAMP),
    ("validation_reason_code", CODED), ("comments", pa.string()), ("completion_status", CODED),
    ("completion_reason_code", CODED),
])
_MA_EVENTS = np.zeros(len(SMETS1_EVENT_TYPES), dtype=bool)
_MA_EVENTS[[EV_MA_RECEIVED, EV_MA_VALIDATED, EV_MA_REJECTED, EV_DA_FAILED, EV_MA_IN_PROGRESS, EV_MA_COMPLETED]] = True
_VALIDATED = np.zeros(len(SMETS1_EVENT_TYPES), dtype=bool)  # the events that carry the Validation Response
_VALIDATED[[EV_MA_VALIDATED, EV_MA_REJECTED, EV_MA_IN_PROGRESS, EV_MA_COMPLETED]] = True
_ATTEMPT_EVENTS = np.zeros(len(SMETS1_EVENT_TYPES), dtype=bool)
_ATTEMPT_EVENTS[EV_MCF:EV_FAILED + 1] = True


def _strings(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _rendered(keys: np.ndarray, valid: np.ndarray, render) -> pa.DictionaryArray:
    """A dictionary column of ``render(key)`` for each distinct key (few: one per file), null where not
    ``valid``: each text is made once, not once per row."""
    indices = np.zeros(len(keys), dtype=np.int32)
    chosen = keys[valid]
    low = int(chosen.min()) if len(chosen) else 0
    if len(chosen) and int(chosen.max()) - low < DENSE_KEYS:  # dense keys: no sort
        present = np.zeros(int(chosen.max()) - low + 1, dtype=bool)
        present[chosen - low] = True
        distinct = np.flatnonzero(present) + low
        indices[valid] = (np.cumsum(present) - 1)[chosen - low]
    else:
        distinct, inverse = np.unique(chosen, return_inverse=True)
        indices[valid] = inverse
    return pa.DictionaryArray.from_arrays(pa.array(indices, mask=~valid, type=pa.int32()),
                                          _strings([render(int(k)) for k in distinct]))


def _file_time(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


class ShardWriter:
    """Turns a simulated SMETS1 ``Shard`` into the event log's tables."""

    def __init__(self, shard: Shard):
        self.shard = shard
        self.s = s = shard.s
        self.inst = inst = shard.inst
        self.index = inst.first + np.arange(inst.n, dtype=np.int64)  # installation_index
        self.user_ids = [p.user_id for p in s.parties]
        self.supplier_ids = [self.user_ids[i] for i in s.supplier_party]
        self.mpan = self._mpans()
        self.mprn = identifiers.make_mprns(self.index, s.seed)

    def _mpans(self) -> pa.StringArray:
        """MPAN cores made as for ECoS (10 digits unique per Installation), then given their distributor's
        first two digits and the check digit again (the MPAN check, FACTS.md)."""
        n = self.inst.n
        made = identifiers.make_mpans(self.index, self.s.seed, self.shard.stream(IDS))
        chars = np.frombuffer(made.buffers()[2], dtype=np.uint8, count=13 * n).reshape(n, 13).copy()
        ids = np.array([[ord(c) for c in d] for d in self.s.distributor_ids], dtype=np.uint8)
        chars[:, :2] = ids[np.maximum(self.inst.distributor, 0)]
        digits = chars[:, :12].astype(np.int64) - ord("0")
        chars[:, 12] = identifiers.mpan_check_digit(digits) + ord("0")
        return identifiers.fixed_width_strings(chars)

    # ------------------------------------------------------------------ installations

    def installations(self) -> pa.Table:
        s, inst = self.s, self.inst
        elec, gas = inst.has_elec, inst.has_gas
        dormant = (elec & ~inst.elec_active) | (gas & ~inst.gas_active)
        active = (elec & inst.elec_active) | (gas & inst.gas_active)
        dno = [self.user_ids[i] for i in s.distributor_dno]
        cols = {
            "installation_index": pa.array(self.index),
            "installation_id": self._guids(0),
            "group_id": coded(s.group_ids, inst.group),
            "smso_id": coded(s.group_smso, inst.group),
            "to_be_commissioned_by_dcc": pa.array(inst.dcc_commissioned),
            "split_supplier": pa.array(inst.split),
            "active": pa.array(active),
            "includes_dormant": pa.array(dormant),
            "import_mpan": self.mpan.take(pa.array(np.arange(inst.n), mask=~elec)),
            "mpan_supplier_id": coded(self.supplier_ids, np.maximum(inst.elec_supplier, 0), elec),
            "mpan_active": pa.array(inst.elec_active, mask=~elec),
            "mpan_distributor_id": coded(s.distributor_ids, np.maximum(inst.distributor, 0), elec),
            "dno_user_id": coded(dno, np.maximum(inst.distributor, 0), elec),
            "mprn": self.mprn.take(pa.array(np.arange(inst.n), mask=~gas)),
            "mprn_supplier_id": coded(self.supplier_ids, np.maximum(inst.gas_supplier, 0), gas),
            "mprn_active": pa.array(inst.gas_active, mask=~gas),
            "mpan_recipient_id": coded(self.supplier_ids, np.maximum(inst.elec_recipient, 0), elec),
            "mprn_recipient_id": coded(self.supplier_ids, np.maximum(inst.gas_recipient, 0), gas),
        }
        for position, dtype in enumerate(SMETS1_DEVICES):
            model = inst.model[dtype]
            present = model >= 0
            _, models, _ = s.devices[dtype]
            key = dtype.lower()
            cols[f"{key}_guid"] = self._guids(position).take(pa.array(np.arange(inst.n), mask=~present))
            cols[f"{key}_manufacturer"] = coded([m[0] for m in models], np.maximum(model, 0), present)
            cols[f"{key}_model"] = coded([m[1] for m in models], np.maximum(model, 0), present)
            cols[f"{key}_device_type"] = coded([dtype], np.zeros(inst.n, dtype=np.int64), present)
            cols[f"{key}_firmware_version"] = coded([m[2] for m in models], np.maximum(model, 0), present)
        return pa.table(cols)

    def _guids(self, position: int) -> pa.StringArray:
        """The GUIDs (EUI-64) of the device at ``position`` of every Installation (the CHF's is its ID)."""
        numbers = identifiers.device_id_numbers(self.index * 8 + position, self.s.seed)
        return identifiers.format_eui64(numbers)

    # ------------------------------------------------------------------ authorisations

    def _ma(self) -> tuple[np.ndarray, np.ndarray]:
        valid = np.arange(MA_SLOTS)[None, :] < self.inst.ma_count[:, None]
        return np.nonzero(valid)

    def authorisations(self) -> pa.Table:
        s, inst = self.s, self.inst
        i, k = self._ma()
        received = inst.received_at[i, k]
        submitter = inst.ma_submitter[i, k]
        e, g = inst.ma_elec[i, k], inst.ma_gas[i, k]
        # MA_<SMSO>_<submitter's User ID>_<YYYYMMDD>_<hhmmss>: one name per file (submitter, SMSO, time)
        key = (received << 24) | (submitter.astype(np.int64) << 12) | inst.group[i].astype(np.int64)
        file_id = _rendered(key, np.ones(len(key), dtype=bool), lambda k: (
            f"MA_{s.group_smso[k & 4095]}_{self.user_ids[(k >> 12) & 4095]}_{_file_time(k >> 24)}"))
        return pa.table({
            "ma_index": pa.array(self.index[i] * MA_SLOTS + k),
            "installation_index": pa.array(self.index[i]),
            "ma_file_id": file_id,
            "ma_supplier_id": coded(self.supplier_ids, inst.ma_supplier[i, k]),
            "ma_import_mpan": self.mpan.take(pa.array(i, mask=~e)),
            "ma_mprn": self.mprn.take(pa.array(i, mask=~g)),
            "migrate_on": timestamps(inst.planned_day[i], inst.migrate_on[i, k]),
            "migration_week": timestamps(inst.week[i]),
            "priority": pa.array(inst.priority[i, k]),
            "ma_active": pa.array(inst.ma_active[i, k]),
            "received_at": timestamps(received),
        })

    # ------------------------------------------------------------------ events

    def _notifications(self, time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """When the reporting application learns of each event, which are notified twice and how much
        later the second time (the notification stream, in this order), as for ECoS."""
        s = self.s
        rng = self.shard.stream(NOTIFY)
        n = len(time)
        latency = s.latency.sample(rng, n)
        late = rng.random(n) < s.late_probability
        latency = np.where(late, s.late_latency.sample(rng, n), latency)
        is_dup = rng.random(n) < s.duplicate_probability
        dup_delay = np.zeros(n, dtype=np.int64)
        dup_delay[is_dup] = s.duplicate_delay.sample(rng, int(is_dup.sum()))
        return time + np.maximum(latency, 0), is_dup, dup_delay

    def events(self) -> pa.Table:
        """Every event of the period in time order, duplicates right after their original; sets ``counts``."""
        s = self.s
        e = self.shard.events.columns()
        inside = np.flatnonzero(e["time"] < s.end)  # the log covers [start, end): later files are not known in it
        # Event order: time, Installation, event type, MA slot; event_id numbers the events in it.
        order = inside[self._time_order(e["time"][inside], e["inst"][inside], e["type"][inside], e["slot"][inside])]
        n = len(order)
        time = e["time"][order]
        notified, is_dup, dup_delay = self._notifications(time)
        event_id = (np.int64(self.shard.index) << EVENT_ID_SHARD_SHIFT) + np.arange(n, dtype=np.int64)
        rows = np.repeat(np.arange(n), 1 + is_dup)  # a duplicate right after its original
        duplicate = np.zeros(len(rows), dtype=bool)
        duplicate[1:] = rows[1:] == rows[:-1]
        notified_all = notified[rows] + np.where(duplicate, dup_delay[rows], 0)
        self.counts = self._counts(e["type"][order], e["status"][order], notified - time, int(duplicate.sum()))
        final = order[rows]
        del order, time, notified
        col = {}
        for k in list(e):  # one column at a time: the unordered one is let go at once
            col[k] = e.pop(k)[final]
        return self._events_table(col, event_id[rows], notified_all, duplicate)

    def _time_order(self, time: np.ndarray, inst: np.ndarray, etype: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Indices sorting events by (time, Installation, type, MA slot): one int64 key when they fit in it."""
        since = time - self.s.first_day
        if len(time) and since.min() >= 0 and since.max() < (1 << 32) and inst.max() < (1 << 24):
            key = ((since << np.int64(31)) | (inst.astype(np.int64) << np.int64(7))
                   | (etype.astype(np.int64) << np.int64(2)) | (slot.astype(np.int64) + 1))
            return np.argsort(key, kind="stable")
        return np.lexsort((slot, etype, inst, time))

    def _events_table(self, c: dict[str, np.ndarray], event_id: np.ndarray, notified: np.ndarray,
                      duplicate: np.ndarray) -> pa.Table:
        s, inst = self.s, self.inst
        etype, i, slot = c["type"].astype(np.int64), c["inst"].astype(np.int64), c["slot"].astype(np.int64)
        is_ma = _MA_EVENTS[etype]
        is_attempt = _ATTEMPT_EVENTS[etype]
        k = np.maximum(slot, 0)
        validated = inst.validated_at[i, k]
        vreason = inst.validation_reason[i, k]
        carries_validation = _VALIDATED[etype] & (validated >= 0)
        rp = s.group_rp[inst.group[i]]
        has_mcf = (c["mcf"] >= 0) & (is_attempt | (etype == EV_MA_COMPLETED) | (etype == EV_MA_IN_PROGRESS))
        signifiers = [p.party_signifier for p in s.parties]
        # MCF_<Requesting Party's signifier>_<MCF Counter, 6 digits>: one reference per file
        per = s.days + 2  # MCF Counters run from 1 to the period's days (one MCF a day)
        reference = _rendered(rp.astype(np.int64) * per + np.maximum(c["mcf"], 0), has_mcf,
                              lambda k: f"MCF_{signifiers[k // per]}_{k % per:06d}")
        has_reporting = c["rparty"] >= 0
        status = c["status"].astype(np.int64)
        reason = c["reason"].astype(np.int64)
        explained = (etype == EV_MA_COMPLETED) & ((status == STATUS_FAILED) | (status == STATUS_WARNING))
        rejected = etype == EV_MA_REJECTED
        return pa.Table.from_arrays([
            pa.array(event_id),
            coded(list(SMETS1_EVENT_TYPES), etype),
            pa.array(self.index[i]),
            pa.array(self.index[i] * MA_SLOTS + k, mask=~is_ma),
            timestamps(c["time"]),
            timestamps(notified),
            pa.array(duplicate),
            pa.array(c["attempt"], mask=~is_attempt, type=pa.int16()),
            timestamps(c["commenced"], c["commenced"] >= 0),
            coded(self.user_ids, rp, is_attempt),
            pa.array(c["mcf"], mask=~is_attempt, type=pa.int32()),
            reference,
            timestamps(c["cf_at"], c["cf_at"] >= 0),
            coded(self.user_ids, np.maximum(c["rparty"], 0), has_reporting),
            pa.array(c["rcounter"], mask=~has_reporting, type=pa.int32()),
            timestamps(validated, carries_validation),
            coded(s.reason_codes, np.maximum(vreason, 0), carries_validation & (vreason >= 0)),
            coded(s.reason_texts, np.maximum(vreason, 0), rejected & (vreason >= 0)).cast(pa.string()),
            coded(list(COMPLETION_STATUSES), np.maximum(status, 0), status >= 0),
            coded(s.reason_texts, np.maximum(reason, 0), explained & (reason >= 0)),
        ], schema=EVENTS_SCHEMA)

    def _counts(self, etype: np.ndarray, status: np.ndarray, lateness: np.ndarray, duplicates: int) -> dict:
        """The run summary's counts for this shard, from the events as written (no duplicates)."""
        kinds = np.bincount(etype.astype(np.int64), minlength=len(SMETS1_EVENT_TYPES))
        done = etype == EV_MA_COMPLETED
        status = np.bincount(status[done].astype(np.int64), minlength=len(COMPLETION_STATUSES))
        out = {name: int(kinds[code]) for code, name in enumerate(SMETS1_EVENT_TYPES)}
        out.update({f"ma_{st.lower().replace(' ', '_')}": int(status[code])
                    for code, st in enumerate(COMPLETION_STATUSES) if st != "In Progress"})
        out["late_notifications"] = int((lateness > LATE_SECONDS).sum())
        out["duplicated_notifications"] = duplicates
        return out


# ---------------------------------------------------------------------- global tables


def parties_table(s: Smets1Scenario) -> pa.Table:
    return pa.table({
        "user_id": _strings([p.user_id for p in s.parties]),
        "party_signifier": _strings([p.party_signifier for p in s.parties]),
        "role": _strings([p.role for p in s.parties]),
        "name": _strings([p.name for p in s.parties]),
        "affiliate_group": pa.array([p.affiliate_group for p in s.parties], type=pa.string()),
    })


def distributors_table(s: Smets1Scenario) -> pa.Table:
    return pa.table({
        "distributor_id": _strings(s.distributor_ids),
        "dno_user_id": _strings([s.parties[i].user_id for i in s.distributor_dno]),
    })


def commitments_table(s: Smets1Scenario) -> pa.Table:
    """One row per supplier and day of the period (quantity 0 on a day without a commitment)."""
    n_sup, days = s.commitments.shape
    supplier = np.repeat(np.arange(n_sup), days)
    day = np.tile(s.first_day + np.arange(days, dtype=np.int64) * DAY, n_sup)
    inside = day + DAY > s.start  # days that overlap the period
    return pa.table({
        "supplier_id": _strings([s.parties[s.supplier_party[x]].user_id for x in supplier[inside]]),
        "migration_date": timestamps(day[inside]),
        "quantity": pa.array(s.commitments.reshape(-1)[inside], type=pa.int64()),
    })


