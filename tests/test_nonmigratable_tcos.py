"""ECOSMIG-004's Non-Migratable candidates and TCoS installs (issue 11 item 10, docs/event-log.md
devices.ecos_credentials_at_install): a device installed during the period with TCoS credentials
is counted from its installation on, like a device present at the start; one installed with ECoS
credentials never is (spec/003 §34; DESIGN.md "ECOSMIG-004"). Hand-checked on three devices of one
Non-Migratable combination."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from emrr.rules.eventlog import EventLog
from emrr.rules.nonmigratable import Candidates

T0 = 1688169600  # 2023-07-01 00:00:00 UTC: the combination is classified Non-Migratable
T1 = T0 + 10 * 86400  # two devices installed
UTC = "UTC"


def ts(seconds):
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc) if seconds is not None else None


class OneSupplier:
    """Every device's Responsible Supplier is PSUP01 (the snapshot's recipients are not what is tested)."""

    def codes(self, premise_index, device_type, at):
        return np.zeros(len(premise_index), dtype=np.int64)

    def names_of(self, codes):
        return pl.Series("recipient", ["PSUP01"] * len(codes), dtype=pl.String)


def log(flag: bool) -> EventLog:
    combo = {"device_type": "ESME", "manufacturer": "1057", "model": "54342152", "firmware_version": "00123402"}
    devices = pl.DataFrame({
        "device_index": [0, 1, 2], "premise_index": [0, 1, 2], **{k: [v] * 3 for k, v in combo.items()},
        "installed_at": [None, ts(T1), ts(T1)],
        **({"ecos_credentials_at_install": [False, False, True]} if flag else {}),
    }, schema_overrides={"installed_at": pl.Datetime("ms", UTC)})
    non_migratable = pl.DataFrame({**{k: [v] for k, v in combo.items()}, "classified_at": [ts(T0)]},
                                  schema_overrides={"classified_at": pl.Datetime("ms", UTC)})
    events = pl.DataFrame({"event_id": [], "event_type": [], "device_index": [], "occurred_at": [],
                           "notified_at": [], **{k: [] for k in combo}, "duplicate": []},
                          schema={"event_id": pl.Int64, "event_type": pl.String, "device_index": pl.Int64,
                                  "occurred_at": pl.Datetime("ms", UTC), "notified_at": pl.Datetime("ms", UTC),
                                  **{k: pl.String for k in combo}, "duplicate": pl.Boolean})
    tables = {"devices": devices.lazy(), "non_migratable": non_migratable.lazy(), "events": events.lazy()}
    return EventLog(Path("."), tables, (T0, T0 + 40 * 86400), "x", True)


def counted(flag: bool, at: int) -> int:
    snap = Candidates.read(log(flag)).snapshot(OneSupplier(), at, at + 6 * 3600)
    return 0 if snap is None else int(snap["devices_count"].sum())


def test_tcos_install_counts_from_its_installation():
    """Before T1 only the device present at the start; from T1 also the one installed with TCoS
    credentials; never the one installed with ECoS credentials."""
    assert counted(True, T1 - 1) == 1
    assert counted(True, T1) == 2
    assert counted(True, T1 + 86400) == 2


def test_a_log_without_the_flag_reads_installs_as_ecos():
    """A log without ecos_credentials_at_install (another producer's, or before issue 11): devices
    with an installed_at were installed with ECoS credentials, as docs/event-log.md said then."""
    assert counted(False, T1 + 86400) == 1
