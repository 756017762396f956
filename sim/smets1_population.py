"""One shard's SMETS1 Installations and their Migration Authorisations, as columns (no object per Installation).

An Installation (a CHF with up to seven devices, 002:L243, L257) has an electricity meter, a gas
meter or both, each with its Responsible Supplier and Active or Dormant. It is authorised by one or
two Migration Authorisations (MA slots 0 and 1, 002:L73):

- one MA for both meters when they have one authoriser and one supplier (or Affiliate suppliers: a
  joint MA, reported only to the supplier who submitted it);
- otherwise one MA per meter: the Responsible Supplier's for an Active meter, the DCC's for a
  Dormant one (reported to the Dormant meter's Responsible Supplier, A35).

Each Installation gets a planned Migration Day, drawn in proportion to its supplier's Demand
Commitments; its MAs are for that day's Migration Week. The draws are made in a fixed order from the
shard's population stream: changing the order changes every event log.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from emrr.contract import SMETS1_DEVICES
from emrr.sim.smets1_scenario import DAY, OPTIONAL_DEVICES, Smets1Scenario

NONE = -1
MA_SLOTS = 2  # an Installation has at most two MAs; the global ma_index is installation_index * 2 + slot
FIRST_MIGRATION_DAY = 2  # days after the period's start: the MA, its validation and the MCF come first
LATEST_RECEIPT = 2 * DAY  # an MA reaches the DCC at least this long before its Migration Day


@dataclass
class Installations:
    """One shard's Installations (index ``i``: installation_index = ``first + i``) and their MAs."""

    first: int  # the shard's first installation_index
    group: np.ndarray  # int16 index in the scenario's groups
    dcc_commissioned: np.ndarray  # bool
    has_elec: np.ndarray
    has_gas: np.ndarray
    elec_supplier: np.ndarray  # int16 supplier index, NONE without the meter
    gas_supplier: np.ndarray
    elec_active: np.ndarray  # bool (meaningful with the meter)
    gas_active: np.ndarray
    distributor: np.ndarray  # int16 index in the scenario's distributor ids, NONE without electricity
    model: dict[str, np.ndarray]  # device type -> int16 model index, NONE when absent
    elec_recipient: np.ndarray  # int16 supplier index receiving reports on the MPAN
    gas_recipient: np.ndarray
    planned_day: np.ndarray  # int64 midnight of the planned Migration Day
    week: np.ndarray  # int64 the Monday (00:00:00) of its Migration Week
    # MAs: [installation, slot]
    ma_count: np.ndarray  # int8, 1 or 2
    ma_elec: np.ndarray  # bool [n, 2]: the MA authorises the MPAN
    ma_gas: np.ndarray  # bool [n, 2]: ... the MPRN
    ma_supplier: np.ndarray  # int16 [n, 2] supplier index it is reported to
    ma_active: np.ndarray  # bool [n, 2]: by the Responsible Supplier (True) or the DCC (False)
    ma_submitter: np.ndarray  # int16 [n, 2] party index of the submitter
    migrate_on: np.ndarray  # bool [n, 2]: the MA gives a Migrate On Date (the planned day)
    priority: np.ndarray  # bool [n, 2]
    received_at: np.ndarray  # int64 [n, 2]
    # set by the actors
    validated_at: np.ndarray  # int64 [n, 2], NONE before the Validation Response
    validation_reason: np.ndarray  # int16 [n, 2], NONE without a Reason Code
    rejected: np.ndarray  # bool [n, 2]
    attempts: np.ndarray  # int16: migration attempts so far

    @property
    def n(self) -> int:
        return len(self.group)

    @property
    def split(self) -> np.ndarray:
        return self.has_elec & self.has_gas & (self.elec_supplier != self.gas_supplier)



def build(s: Smets1Scenario, first: int, n: int, rng: np.random.Generator) -> Installations:
    """Shard installations ``first`` to ``first + n - 1``, drawn from the population stream ``rng``."""
    group = rng.choice(len(s.group_ids), size=n, p=s.group_weights).astype(np.int16)
    dcc = rng.random(n) < s.group_dcc_share[group]
    has_gas = rng.random(n) < s.gas_share
    has_elec = (rng.random(n) < s.electricity_share) | ~has_gas  # at least one meter
    n_sup = len(s.supplier_party)
    elec = rng.choice(n_sup, size=n, p=s.fuel_weights["electricity"]).astype(np.int16)
    gas_own = rng.choice(n_sup, size=n, p=s.fuel_weights["gas"]).astype(np.int16)
    split = has_elec & has_gas & (rng.random(n) < s.split_share)
    gas = np.where(has_elec & ~split, elec, gas_own).astype(np.int16)
    elec_supplier = np.where(has_elec, elec, NONE).astype(np.int16)
    gas_supplier = np.where(has_gas, gas, NONE).astype(np.int16)
    elec_active = rng.random(n) >= s.dormant_share
    gas_active = rng.random(n) >= s.dormant_share
    distributor = np.where(has_elec, rng.choice(len(s.distributor_ids), size=n, p=s.distributor_weights),
                           NONE).astype(np.int16)
    model = {}
    for dtype in SMETS1_DEVICES:
        presence, models, p = s.devices[dtype]
        present = {"ESME": has_elec, "GSME": has_gas}.get(dtype, np.ones(n, dtype=bool))
        if dtype in OPTIONAL_DEVICES:
            present = rng.random(n) < presence
        model[dtype] = np.where(present, rng.choice(len(models), size=n, p=p), NONE).astype(np.int16)
    inst = _authorisations(s, first, group, dcc, has_elec, has_gas, elec_supplier, gas_supplier, elec_active,
                           gas_active, distributor, model, rng)
    return _in_time_order(inst)


def _in_time_order(inst: Installations) -> Installations:
    """The shard's Installations numbered in the order of their planned Migration Day, so that the
    rows of one period sit together in the installations and authorisations tables (a reader that
    looks up the Installations of a fortnight's events skips the rest by the tables' statistics;
    docs/event-log.md says no reader may rely on it). Drawn first, then ordered: deterministic."""
    order = np.argsort(inst.planned_day, kind="stable")
    values = {}
    for f in dataclasses.fields(inst):
        value = getattr(inst, f.name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (inst.n,):
            value = value[order]
        elif isinstance(value, dict):
            value = {k: v[order] for k, v in value.items()}
        values[f.name] = value
    return Installations(**values)


def _authorisations(s: Smets1Scenario, first: int, group, dcc, has_elec, has_gas, elec_supplier, gas_supplier,
                    elec_active, gas_active, distributor, model, rng: np.random.Generator) -> Installations:
    """The MAs of each Installation (002:L73) and its planned Migration Day (the Demand Commitments)."""
    n = len(group)
    dual = has_elec & has_gas
    affiliate = s.supplier_affiliate
    same = elec_supplier == gas_supplier
    affiliated = dual & ~same & (affiliate[np.maximum(elec_supplier, 0)] >= 0) & (
        affiliate[np.maximum(elec_supplier, 0)] == affiliate[np.maximum(gas_supplier, 0)])
    both_active = elec_active & gas_active
    both_dormant = ~elec_active & ~gas_active
    # One MA for both meters: one authoriser (both Active, or both Dormant) and one supplier or Affiliates
    # (a joint MA of Dormant meters is the DCC's: only when they have one supplier).
    joint = dual & ((both_active & (same | affiliated)) | (both_dormant & same))
    count = np.where(dual & ~joint, 2, 1).astype(np.int8)
    # the supplier of a joint Affiliates' MA is the one who submitted it: either, at random
    submitter_is_gas = affiliated & joint & (rng.random(n) < 0.5)
    slot0_elec = has_elec
    slot0_gas = ~has_elec | joint  # gas only, or both
    ma_elec = np.stack([slot0_elec, np.zeros(n, bool)], axis=1)
    ma_gas = np.stack([slot0_gas, dual & ~joint], axis=1)
    slot0_supplier = np.where(submitter_is_gas | ~has_elec, gas_supplier, elec_supplier)
    slot0_active = np.where(has_elec, elec_active, gas_active)
    ma_supplier = np.stack([slot0_supplier, np.where(count == 2, gas_supplier, NONE)], axis=1).astype(np.int16)
    ma_active = np.stack([slot0_active, gas_active & (count == 2)], axis=1)
    submitter = np.where(ma_active, s.supplier_party[np.maximum(ma_supplier, 0)], s.dcc_party).astype(np.int16)
    elec_recipient = np.where(joint & affiliated, slot0_supplier, elec_supplier).astype(np.int16)
    gas_recipient = np.where(joint & affiliated, slot0_supplier, gas_supplier).astype(np.int16)
    # The planned Migration Day: drawn in proportion to the commitments of the Installation's supplier
    # (its electricity supplier, else its gas supplier), from the period's third day.
    plan_supplier = np.where(has_elec, elec_supplier, gas_supplier)
    usable = s.first_day + np.arange(s.days, dtype=np.int64) * DAY >= s.start + FIRST_MIGRATION_DAY * DAY
    weights = s.commitments * usable[None, :]
    day_index = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for sup in range(len(s.supplier_party)):
        mine = np.flatnonzero(plan_supplier == sup)
        if len(mine):
            cdf = np.cumsum(weights[sup]).astype(np.float64)
            day_index[mine] = np.minimum(np.searchsorted(cdf, u[mine] * cdf[-1], side="right"), s.days - 1)
    planned = s.first_day + day_index * DAY
    week = planned - ((planned // DAY + 3) % 7) * DAY
    migrate_on = rng.random((n, MA_SLOTS)) < s.migrate_on_share
    priority = rng.random((n, MA_SLOTS)) < s.priority_share
    # MA files: each submitter sends its file of the day for an SMSO at a fixed time of day of its own
    lead = s.lead.sample(rng, n * MA_SLOTS).reshape(n, MA_SLOTS)
    sent = np.minimum(week[:, None] - lead, planned[:, None] - LATEST_RECEIPT)
    file_time = 8 * 3600 + ((submitter.astype(np.int64) * 7919 + group[:, None].astype(np.int64) * 104729)
                            % (10 * 3600)) // 60 * 60  # 08:00 to 17:59, per (submitter, group)
    sent_day = sent // DAY * DAY
    weekday = (sent_day // DAY + 3) % 7  # Monday = 0: MA files are sent on working days (Saturday, Sunday -> Friday)
    received = sent_day - np.maximum(weekday - 4, 0) * DAY + file_time
    received = np.where(received >= planned[:, None] - DAY, received - DAY, received)
    early = received < s.start
    received = np.where(early, s.start // DAY * DAY + file_time, received)
    received = np.where(received < s.start, received + DAY, received)
    return Installations(
        first=first, group=group, dcc_commissioned=dcc, has_elec=has_elec, has_gas=has_gas,
        elec_supplier=elec_supplier, gas_supplier=gas_supplier, elec_active=elec_active, gas_active=gas_active,
        distributor=distributor, model=model, elec_recipient=elec_recipient, gas_recipient=gas_recipient,
        planned_day=planned, week=week, ma_count=count, ma_elec=ma_elec, ma_gas=ma_gas, ma_supplier=ma_supplier,
        ma_active=ma_active, ma_submitter=submitter, migrate_on=migrate_on, priority=priority,
        received_at=received.astype(np.int64),
        validated_at=np.full((n, MA_SLOTS), NONE, dtype=np.int64),
        validation_reason=np.full((n, MA_SLOTS), NONE, dtype=np.int16),
        rejected=np.zeros((n, MA_SLOTS), dtype=bool), attempts=np.zeros(n, dtype=np.int16),
    )


def ma_rows(inst: Installations, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every MA of the Installations ``which``: (installation, slot), slot 0 then slot 1 of each."""
    which = np.asarray(which, dtype=np.int64)
    two = inst.ma_count[which] == 2
    rows = np.repeat(which, 1 + two)
    slot = np.zeros(len(rows), dtype=np.int8)
    slot[1:] = rows[1:] == rows[:-1]
    return rows, slot
