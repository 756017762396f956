"""The event-log contract: the names the simulator writes and the report engine reads.

``docs/event-log.md`` documents every table and column; this module is the one home of the
values that code on both sides of the contract needs. The simulator codes event types by their
position in ``EVENT_TYPES`` (append a new type at the end so that existing codes keep their
meaning); the ruleset schema's event-type enums are tested against it; the engine and the
checker name event types through these constants, never as string literals.
"""

from __future__ import annotations

import datetime as dt

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
