"""The Non-Migratable snapshot (the ``non_migratable_snapshot`` assignment, EMRR App. A ECOSMIG-004).

At a run's window end: the devices not migrated (as known at the run), not installed with ECoS
credentials, whose type/manufacturer/model/firmware at that moment is a combination classified
Non-Migratable by then, counted per Responsible Supplier at that moment and combination.

The devices that are ever on a Non-Migratable combination are read once, as arrays (their initial
combination, their firmware upgrades as a ``Timeline`` and their first migration); each snapshot
is then a few array operations, however many weeks the log spans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from emrr.contract import FIRMWARE_UPGRADE, MIGRATION_SUCCESS
from emrr.rules.eventlog import EventLog, collect
from emrr.rules.recipients import TYPE_CODES, SupplyIndex, Timeline

KEYS = ("device_type", "manufacturer", "model", "firmware_version")  # a combination (device model)
NEVER = np.iinfo(np.int64).max
NEVER_BEFORE = np.iinfo(np.int64).min  # "installed" of a device present at the start of the period


@dataclass(frozen=True)
class Candidates:
    """The devices ever on a Non-Migratable combination, one array position each; combinations
    are coded by their position in ``names`` ("type/manufacturer/model/firmware")."""

    names: list[str]
    classified_at: np.ndarray  # per combination: when it was classified Non-Migratable (NEVER: not)
    premise: np.ndarray
    type: np.ndarray  # TYPE_CODES
    tcos: np.ndarray  # bool: holds TCoS credentials (present at the start, or installed with them)
    installed: np.ndarray  # when it was installed (NEVER_BEFORE: present at the start of the period)
    initial: np.ndarray  # combination code before any upgrade
    firmware: Timeline  # slot = position: combination code after each upgrade
    succ_occ: np.ndarray  # first migration success: when it happened (NEVER: none)
    succ_notif: np.ndarray  # ... and when the reporting system learned of it

    @classmethod
    def read(cls, log: EventLog) -> "Candidates":
        keys = list(KEYS)
        nm = collect(log.tables["non_migratable"].select(*keys, "classified_at"))
        on_nm = pl.lit(False)
        for row in nm.iter_rows(named=True):
            on_nm = on_nm | pl.all_horizontal([pl.col(k) == row[k] for k in keys])
        upgrades = collect(log.tables["events"].filter(pl.col("event_type") == FIRMWARE_UPGRADE)
                           .select("device_index", "occurred_at", *keys))
        onto_nm = upgrades.join(nm.select(keys), on=keys, how="semi")["device_index"].unique()
        # docs/event-log.md: ecos_credentials_at_install tells a device installed with ECoS credentials
        # from one installed with TCoS credentials, which is migrated like the others from its
        # installation on; a log without the column installs with ECoS credentials only
        flag = "ecos_credentials_at_install" in log.tables["devices"].collect_schema().names()
        devices = collect(log.tables["devices"]
                          .filter(on_nm | pl.col("device_index").is_in(onto_nm.implode()))
                          .select("device_index", *keys, "premise_index", "installed_at",
                                  *(["ecos_credentials_at_install"] if flag else []))).sort("device_index")
        combo = pl.concat_str([pl.col(k) for k in keys], separator="/")
        names = sorted(set(devices.select(combo)[:, 0].to_list()) | set(upgrades.select(combo)[:, 0].to_list())
                       | set(nm.select(combo)[:, 0].to_list()))
        code = {n: i for i, n in enumerate(names)}
        classified_at = np.full(len(names), NEVER, dtype=np.int64)
        for n, t in zip(nm.select(combo)[:, 0].to_list(), nm["classified_at"].to_list()):
            classified_at[code[n]] = t
        index = devices["device_index"].to_numpy()
        ups = upgrades.filter(pl.col("device_index").is_in(pl.Series(index).implode()))
        firmware = Timeline(np.searchsorted(index, ups["device_index"].to_numpy()), ups["occurred_at"].to_numpy(),
                            np.array([code[n] for n in ups.select(combo)[:, 0].to_list()], dtype=np.int64))
        success = collect(log.events([MIGRATION_SUCCESS])
                          .filter(pl.col("device_index").is_in(pl.Series(index).implode()))
                          .select("device_index", "occurred_at", "notified_at")).sort("occurred_at")
        success = success.unique(subset=["device_index"], keep="first")
        s_pos = np.searchsorted(index, success["device_index"].to_numpy())
        succ_occ = np.full(len(index), NEVER, dtype=np.int64)
        succ_notif = np.full(len(index), NEVER, dtype=np.int64)
        succ_occ[s_pos] = success["occurred_at"].to_numpy()
        succ_notif[s_pos] = success["notified_at"].to_numpy()
        return cls(
            names=names, classified_at=classified_at, premise=devices["premise_index"].to_numpy(),
            type=devices["device_type"].replace_strict(TYPE_CODES, default=3, return_dtype=pl.Int8).to_numpy(),
            tcos=(~devices["ecos_credentials_at_install"].fill_null(False) if flag
                  else devices["installed_at"].is_null()).to_numpy(),
            installed=devices["installed_at"].fill_null(NEVER_BEFORE).to_numpy(),
            initial=np.array([code[n] for n in devices.select(combo)[:, 0].to_list()], dtype=np.int64),
            firmware=firmware, succ_occ=succ_occ, succ_notif=succ_notif,
        )

    def snapshot(self, supply: SupplyIndex, at: int, made: int) -> pl.DataFrame | None:
        """Devices per (Responsible Supplier at ``at``, combination) at the window end ``at`` of a
        run whose file is made at ``made``; None when there are none."""
        n = len(self.premise)
        if n == 0:
            return None
        # the firmware at the snapshot: the last upgrade at or before it
        combo = self.firmware.at(np.arange(n, dtype=np.int64), at, self.initial)
        migrated = (self.succ_occ <= at) & (self.succ_notif <= made)
        keep = (self.classified_at[combo] <= at) & self.tcos & ~migrated & (self.installed <= at)
        if not keep.any():
            return None
        supplier = supply.codes(self.premise[keep], self.type[keep], np.full(int(keep.sum()), at))
        combo = combo[keep]
        has = supplier >= 0
        size = len(self.names)
        pair = supplier[has].astype(np.int64) * size + combo[has]
        values, counts = np.unique(pair, return_counts=True)
        parts = [self.names[v % size].split("/") for v in values]
        return pl.DataFrame({
            "recipient": supply.names_of(values // size),
            **{k: [x[j] for x in parts] for j, k in enumerate(KEYS)},
            "classified_at": self.classified_at[values % size],
            "devices_count": counts.astype(np.int64),
        })
