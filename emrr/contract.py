"""The event-log contract: the names the simulator writes and the report engine reads.

``docs/event-log.md`` documents every table and column; this module is the one home of the
values that code on both sides of the contract needs. The simulator codes event types by their
position in ``EVENT_TYPES`` (append a new type at the end so that existing codes keep their
meaning); the ruleset schema's event-type enums are tested against it; the engine and the
checker name event types through these constants, never as string literals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

MIGRATION_SUCCESS = "migration_success"  # a device's credentials replaced: the attempt that succeeded
MIGRATION_FAILURE = "migration_failure"  # an attempt (one session) that ended in failure
PREVALIDATION_SKIP = "prevalidation_skip"  # selected, then skipped by pre-validation: not an attempt
INSTALL = "install"  # a device installed already holding ECoS credentials
FIRMWARE_UPGRADE = "firmware_upgrade"  # a firmware campaign moved the device to another version

EVENT_TYPES: tuple[str, ...] = (MIGRATION_SUCCESS, MIGRATION_FAILURE, PREVALIDATION_SKIP, INSTALL, FIRMWARE_UPGRADE)

DEVICE_TYPES: tuple[str, ...] = ("GPF", "ESME", "GSME")  # Communications Hub Function, electricity, gas meter
FUELS: tuple[str, ...] = ("electricity", "gas")

# The tables of an event log (docs/event-log.md), each a folder of Parquet parts.
TABLES: tuple[str, ...] = ("events", "devices", "premises", "supply_changes", "suppliers", "non_migratable",
                           "outages")


# --------------------------------------------------------------------------- regimes
# A regime is the migration an event log records and a ruleset reports on. Each names its tables
# (table -> {column: kind}; kinds: int, str, time, bool) and the tables the report engine joins to
# its events on a key. The ECoS log's tables are documented in docs/event-log.md; the SMETS1
# log's in its section "The SMETS1 event log". manifest.json's "regime" says which (absent: ecos).

ECOS = "ecos"
SMETS1 = "smets1"

# SMETS1 event types (docs/event-log.md "SMETS1 event types"), in the order the simulator codes them
MA_RECEIVED = "ma_received"
MA_VALIDATED = "ma_validated"
MA_REJECTED = "ma_rejected"
DA_PREVALIDATION_FAILED = "da_prevalidation_failed"
MCF_GENERATED = "mcf_generated"
MCVF_FAILED = "mcvf_failed"
MIGRATION_COMMENCED = "migration_commenced"
S1SP_COMMISSIONED = "s1sp_commissioned"
MIGRATION_COMPLETED = "migration_completed"
MIGRATION_FAILED = "migration_failed"
MA_IN_PROGRESS = "ma_in_progress"
MA_COMPLETED = "ma_completed"
SMETS1_EVENT_TYPES: tuple[str, ...] = (
    MA_RECEIVED, MA_VALIDATED, MA_REJECTED, DA_PREVALIDATION_FAILED, MCF_GENERATED, MCVF_FAILED,
    MIGRATION_COMMENCED, S1SP_COMMISSIONED, MIGRATION_COMPLETED, MIGRATION_FAILED, MA_IN_PROGRESS, MA_COMPLETED)
# The seven devices of an Installation's device block, in the order of the MRR's list (002:L257)
SMETS1_DEVICES: tuple[str, ...] = ("CHF", "GPF", "ESME", "GSME", "PPMID", "IHD", "CAD")
DEVICE_BLOCK: tuple[str, ...] = ("guid", "manufacturer", "model", "device_type", "firmware_version")
COMPLETION_STATUSES: tuple[str, ...] = ("Success", "Failed", "Warning", "In Progress")
PARTY_ROLES: tuple[str, ...] = ("supplier", "dno", "dcc", "requesting_party", "commissioning_party", "s1sp")

ECOS_TABLES: dict[str, dict[str, str]] = {
    "events": {
        "event_id": "int", "event_type": "str", "device_index": "int", "device_id": "str",
        "device_type": "str", "premise_index": "int", "mpxn": "str", "manufacturer": "str",
        "model": "str", "firmware_version": "str", "occurred_at": "time", "notified_at": "time",
        "attempt_number": "int", "error_code": "str", "error_sub_code": "int",
    },
    "devices": {
        "device_index": "int", "device_id": "str", "device_type": "str", "premise_index": "int",
        "mpxn": "str", "manufacturer": "str", "model": "str", "firmware_version": "str",
        "installed_at": "time",
    },
    "premises": {
        "premise_index": "int", "has_electricity": "bool", "has_gas": "bool",
        "electricity_supplier": "str", "gas_supplier": "str",
    },
    "supply_changes": {
        "premise_index": "int", "fuel": "str", "losing_supplier": "str", "gaining_supplier": "str",
        "occurred_at": "time",
    },
    "non_migratable": {
        "device_type": "str", "manufacturer": "str", "model": "str", "firmware_version": "str",
        "classified_at": "time",
    },
}
OUTAGES_TABLE: dict[str, str] = {"report_id": "str", "start": "time", "end": "time"}

SMETS1_TABLES: dict[str, dict[str, str]] = {
    "events": {
        "event_id": "int", "event_type": "str", "installation_index": "int", "ma_index": "int",
        "occurred_at": "time", "notified_at": "time", "duplicate": "bool", "attempt_number": "int",
        "commenced_at": "time", "requesting_party_id": "str", "mcf_counter": "int", "mcf_reference": "str",
        "commissioning_file_at": "time", "reporting_party_id": "str", "reporting_party_counter": "int",
        "validated_at": "time", "validation_reason_code": "str", "comments": "str",
        "completion_status": "str", "completion_reason_code": "str",
    },
    "installations": {
        "installation_index": "int", "installation_id": "str", "group_id": "str", "smso_id": "str",
        "to_be_commissioned_by_dcc": "bool", "split_supplier": "bool", "active": "bool", "includes_dormant": "bool",
        "import_mpan": "str", "mpan_supplier_id": "str", "mpan_active": "bool", "mpan_distributor_id": "str",
        "dno_user_id": "str", "mprn": "str", "mprn_supplier_id": "str", "mprn_active": "bool",
        "mpan_recipient_id": "str", "mprn_recipient_id": "str",
        **{f"{d.lower()}_{part}": "str" for d in SMETS1_DEVICES for part in DEVICE_BLOCK},
    },
    "authorisations": {
        "ma_index": "int", "installation_index": "int", "ma_file_id": "str", "ma_supplier_id": "str",
        "ma_import_mpan": "str", "ma_mprn": "str", "migrate_on": "time", "migration_week": "time",
        "priority": "bool", "ma_active": "bool", "received_at": "time",
    },
    "parties": {"user_id": "str", "party_signifier": "str", "role": "str", "name": "str", "affiliate_group": "str"},
    "distributors": {"distributor_id": "str", "dno_user_id": "str"},
    "commitments": {"supplier_id": "str", "migration_date": "time", "quantity": "int"},
}


@dataclass(frozen=True)
class Regime:
    """What an event log of one regime holds: its tables and columns, the tables joined to its
    events (table, key), and its event types."""

    name: str
    tables: dict[str, dict[str, str]]
    joins: tuple[tuple[str, str], ...]
    event_types: tuple[str, ...]
    optional: dict[str, dict[str, str]] = field(default_factory=lambda: {"outages": OUTAGES_TABLE})


REGIMES: dict[str, Regime] = {
    ECOS: Regime(ECOS, ECOS_TABLES, (), EVENT_TYPES),
    SMETS1: Regime(SMETS1, SMETS1_TABLES, (("installations", "installation_index"), ("authorisations", "ma_index")),
                   SMETS1_EVENT_TYPES),
}


# The years an instant of the event log may fall in, as report files write them: the checker reads a
# header's, a file name's and a fast-path date-time only within them; the engine refuses a period
# outside them; the simulator keeps a scenario inside them (one year in, for windows before a run).
YEARS: tuple[int, int] = (1970, 2999)


def parse_instant(text: str) -> int:
    """An instant as manifest.json writes it (``period``: ``2023-07-01T00:00:00Z``; a date alone is
    its midnight, a time without a zone is UTC) -> seconds since the epoch."""
    value = dt.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp())
