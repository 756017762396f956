"""A tiny event log built by hand (docs/event-log.md columns), for the golden report files.

Plain string columns and no ``duplicate`` flag: the engine must read "anyone's" log, and
recognise a duplicated notification by its repeated event_id.

Premises and suppliers:
  P1: electricity PSUP01, gas PSUP02  -> GPF 4 reports to the gas supplier (spec/003 §25a)
  P2: electricity PSUP01 only; changes to PSUP02 on 2023-07-05 20:00 -> GPF 8 follows electricity (§25b)
  P3: installed 2023-07-20 with ECoS devices; electricity PSUP02, gas PSUP01
  P4: gas PSUP01 only; its GSME 17 runs a Non-Migratable firmware (classified 2023-07-05)
  PSUP03: a supplier with no activity: no file at all.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

UTC = dt.timezone.utc
TS = pa.timestamp("s", tz="UTC")


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def dev_id(n: int) -> str:
    return "00-00-00-00-00-00-00-" + f"{n:02X}"


ESME = ("1057", "54342152", "00123402")
GSME = ("1057", "64341152", "00223402")
GSME_NM = ("10A5", "21010101", "01000007")
GPF = ("1042", "CA010203", "00050001")

# device_index: (device_type, premise, mpxn, model triple, installed_at)
DEVICES = {
    4: ("GPF", 1, "3938424403", GPF, None),
    5: ("ESME", 1, "1312345678907", ESME, None),
    6: ("GSME", 1, "3938424403", GSME, None),
    8: ("GPF", 2, "1412345678901", GPF, None),
    9: ("ESME", 2, "1412345678901", ESME, None),
    12: ("GPF", 3, "1234567810", GPF, "2023-07-20T08:00:00"),
    13: ("ESME", 3, "1511122233342", ESME, "2023-07-21T10:00:00"),
    14: ("GSME", 3, "1234567810", GSME, "2023-07-22T11:00:00"),
    16: ("GPF", 4, "8765432106", GPF, None),
    17: ("GSME", 4, "8765432106", GSME_NM, None),
}

# event_id, type, device, occurred, notified, attempt, error code, sub-code
EVENTS = [
    (1, "migration_success", 5, "2023-07-03T01:10:00", "2023-07-03T01:15:00", 1, None, None),
    (2, "migration_failure", 6, "2023-07-03T05:00:00", "2023-07-03T05:05:00", 1, "EC101", 1),
    (2, "migration_failure", 6, "2023-07-03T05:00:00", "2023-07-03T13:00:00", 1, "EC101", 1),  # duplicated
    (3, "migration_success", 4, "2023-07-03T02:00:00", "2023-07-03T02:03:00", 1, None, None),
    (4, "migration_failure", 8, "2023-07-04T13:00:00", "2023-07-04T13:02:00", 1, "EC205", 10),
    (5, "migration_success", 9, "2023-07-05T10:00:00", "2023-07-05T10:01:00", 1, None, None),
    (6, "migration_failure", 6, "2023-07-10T03:00:00", "2023-07-11T09:30:00", 2, "EC101", 2),  # late
    (7, "migration_success", 6, "2023-07-12T14:00:00", "2023-07-12T14:02:00", 3, None, None),
    (8, "install", 12, "2023-07-20T08:00:00", "2023-07-20T08:01:00", None, None, None),
    (9, "install", 13, "2023-07-21T10:00:00", "2023-07-21T10:05:00", None, None, None),
    (10, "install", 14, "2023-07-22T11:00:00", "2023-07-22T11:10:00", None, None, None),
]


def build(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = [(e, DEVICES[e[2]]) for e in EVENTS]
    events = pa.table({
        "event_id": pa.array([e[0] for e, _ in rows], pa.int64()),
        "event_type": [e[1] for e, _ in rows],
        "device_index": pa.array([e[2] for e, _ in rows], pa.int64()),
        "device_id": [dev_id(e[2]) for e, _ in rows],
        "device_type": [d[0] for _, d in rows],
        "premise_index": pa.array([d[1] for _, d in rows], pa.int64()),
        "mpxn": [d[2] for _, d in rows],
        "manufacturer": [d[3][0] for _, d in rows],
        "model": [d[3][1] for _, d in rows],
        "firmware_version": [d[3][2] for _, d in rows],
        "occurred_at": pa.array([t(e[3]) for e, _ in rows], TS),
        "notified_at": pa.array([t(e[4]) for e, _ in rows], TS),
        "attempt_number": pa.array([e[5] for e, _ in rows], pa.int16()),
        "error_code": pa.array([e[6] for e, _ in rows], pa.string()),
        "error_sub_code": pa.array([e[7] for e, _ in rows], pa.int32()),
    })
    ids = sorted(DEVICES)
    devices = pa.table({
        "device_index": pa.array(ids, pa.int64()),
        "device_id": [dev_id(i) for i in ids],
        "device_type": [DEVICES[i][0] for i in ids],
        "premise_index": pa.array([DEVICES[i][1] for i in ids], pa.int64()),
        "mpxn": [DEVICES[i][2] for i in ids],
        "manufacturer": [DEVICES[i][3][0] for i in ids],
        "model": [DEVICES[i][3][1] for i in ids],
        "firmware_version": [DEVICES[i][3][2] for i in ids],
        "installed_at": pa.array([t(DEVICES[i][4]) if DEVICES[i][4] else None for i in ids], TS),
    })
    premises = pa.table({
        "premise_index": pa.array([1, 2, 3, 4], pa.int64()),
        "has_electricity": [True, True, True, False],
        "has_gas": [True, False, True, True],
        "electricity_supplier": ["PSUP01", "PSUP01", "PSUP02", None],
        "gas_supplier": ["PSUP02", None, "PSUP01", "PSUP01"],
        "installed_at": pa.array([None, None, t("2023-07-20T07:00:00"), None], TS),
    })
    supply_changes = pa.table({
        "premise_index": pa.array([2], pa.int64()),
        "fuel": ["electricity"],
        "losing_supplier": ["PSUP01"],
        "gaining_supplier": ["PSUP02"],
        "occurred_at": pa.array([t("2023-07-05T20:00:00")], TS),
    })
    non_migratable = pa.table({
        "device_type": ["GSME"], "manufacturer": [GSME_NM[0]], "model": [GSME_NM[1]],
        "firmware_version": [GSME_NM[2]], "classified_at": pa.array([t("2023-07-05T00:00:00")], TS),
    })
    outages = pa.table({
        "report_id": ["ECOSMIG-001", "ECOSMIG-005"],
        "start": pa.array([t("2023-07-13T00:00:00"), t("2023-07-17T00:00:00")], TS),
        "end": pa.array([t("2023-07-15T00:00:00"), t("2023-07-17T12:00:00")], TS),
    })
    suppliers = pa.table({"party_id": ["PSUP01", "PSUP02", "PSUP03"], "name": ["One", "Two", "Three"]})
    for name, table in [("events", events), ("devices", devices), ("premises", premises),
                        ("supply_changes", supply_changes)]:
        (root / name).mkdir(exist_ok=True)
        pq.write_table(table, root / name / "part-00000.parquet")
    for name, table in [("non_migratable", non_migratable), ("outages", outages), ("suppliers", suppliers)]:
        pq.write_table(table, root / f"{name}.parquet")
    (root / "manifest.json").write_text(json.dumps({
        "format": "emrr-event-log", "period": {"start": "2023-07-01T00:00:00Z", "end": "2023-08-03T00:00:00Z"},
    }))
    return root
