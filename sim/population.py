"""The population of one shard as columns: premises and devices are NumPy arrays, not objects.

Premises are indexed by the shard's local premises number (the initial premises first, then the
new ones in install order), devices by the shard's local device number. The actors
(``emrr.sim.actors``) change the columns that move (suppliers, firmware, state, attempts); the
event log writer reads them all. Keeping devices as columns is what makes a national
population (about 30 million devices) fit in one ordinary machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emrr.contract import DEVICE_TYPES
from emrr.sim import identifiers, streams
from emrr.sim.identifiers import NEW_PREMISES_STRIDE
from emrr.sim.scenario import NEVER, Scenario

DAY = 86_400
# Device slots within a premises: the global device index is premise_index * 4 + slot.
SLOT_GPF, SLOT_ESME, SLOT_GSME = 0, 1, 2
TYPE_NAMES = DEVICE_TYPES  # indexed by slot: ("GPF", "ESME", "GSME")
# Device states.
PENDING, MIGRATED, EXHAUSTED, ECOS_INSTALLED = 0, 1, 2, 3
NO_SUPPLIER = -1


@dataclass
class Population:
    """One shard's premises and devices as columns; ``initial_*`` keep the values at the start."""

    n_existing_premises: int  # premises present at the start; the rest are installed during the period
    # per premises
    premise_global: np.ndarray  # int64: the premise_index of the event log
    premise_installed_at: np.ndarray  # int64 seconds; -1 = before the period (holding TCoS credentials)
    has_elec: np.ndarray  # bool
    has_gas: np.ndarray  # bool
    elec_supplier: np.ndarray  # int16 supplier index, NO_SUPPLIER without the fuel; changes over time
    gas_supplier: np.ndarray
    initial_elec_supplier: np.ndarray
    initial_gas_supplier: np.ndarray
    # per device
    dev_premise: np.ndarray  # int32 local premises
    dev_slot: np.ndarray  # int8 SLOT_*
    dev_global: np.ndarray  # int64: the device_index of the event log
    combo: np.ndarray  # int16 catalogue combination (type/manufacturer/model/firmware); firmware campaigns change it
    initial_combo: np.ndarray
    state: np.ndarray  # int8 PENDING, MIGRATED, EXHAUSTED or ECOS_INSTALLED
    attempts: np.ndarray  # int16 migration attempts so far
    parked: np.ndarray  # bool: Non-Migratable, waiting for a firmware upgrade
    dev_installed_at: np.ndarray  # int64 seconds, -1 = before the period
    install_device: np.ndarray  # the devices installed during the period with ECoS credentials ...
    install_time: np.ndarray  # ... and when each reports it is installed (ECOSMIG-006)
    dev_id_number: np.ndarray  # uint64: the Device ID (EUI-64) as a number
    dev_ecos_at_install: np.ndarray  # bool: installed during the period holding ECoS credentials
    tcos_device: np.ndarray  # the devices installed during the period still with TCoS credentials ...
    tcos_time: np.ndarray  # ... and when each was installed (it joins the migration then)
    # conditions (migration.outcomes); all False without it
    premise_poor_wan: np.ndarray  # bool per premises: the hub's WAN connection is poor
    dev_poor_han: np.ndarray  # bool per device: poor HAN link between the meter and its hub
    dev_faulty: np.ndarray  # bool per device: a fault that makes the command fail
    next_switch_at: np.ndarray  # int64 per premises: its last registered change of supplier (NEVER: none)

    def pending(self) -> np.ndarray:
        """Devices present at the start still to migrate (int32 local numbers, in order); the devices
        installed later with TCoS credentials join when installed."""
        return np.flatnonzero((self.state == PENDING) & (self.dev_installed_at < 0)).astype(np.int32)


def build(scenario: Scenario, index: int, bounds: tuple[int, int], fraction: float,
          rng: np.random.Generator) -> Population:
    """The population of shard ``index`` (initial premises ``bounds``), drawn from its stream ``rng``.

    ``fraction`` is the shard's share of the initial premises, and so of the installs. The draws
    are made in a fixed order (install times, fuels, suppliers, models, install delays): changing
    the order changes every event log.
    """
    s = scenario
    first, end = bounds
    n_existing = end - first
    new_installed_at = _new_premises(s, fraction, rng)
    n_new = len(new_installed_at)
    premise_global = np.concatenate([
        np.arange(first, first + n_existing, dtype=np.int64),
        s.premises + index * NEW_PREMISES_STRIDE + np.arange(n_new, dtype=np.int64),
    ])
    premise_installed_at = np.concatenate([np.full(n_existing, -1, np.int64), new_installed_at])
    has_elec, has_gas, elec_supplier, gas_supplier = _fuels_and_suppliers(s, n_existing, n_new, rng)
    dev_premise, dev_slot, combo = _devices(s, has_elec, has_gas, elec_supplier, gas_supplier, rng)
    new_premise = dev_premise >= n_existing
    install_device = np.flatnonzero(new_premise)
    install_time = premise_installed_at[dev_premise[install_device]] + _install_delays(
        s, dev_slot[install_device], rng)
    dev_installed_at = np.full(len(dev_premise), -1, dtype=np.int64)
    dev_installed_at[install_device] = install_time
    # New premises still installed with TCoS credentials (installs.tcos_share): their devices join the
    # migration once installed, and have no install event (ECOSMIG-006 is for ECoS installs).
    tcos_premise = _tcos_premises(s, premise_installed_at[n_existing:], streams.for_shard(
        s.seed, index, streams.INSTALL_CREDENTIALS))
    tcos_dev = np.zeros(len(dev_premise), dtype=bool)
    tcos_dev[install_device] = tcos_premise[dev_premise[install_device] - n_existing]
    ecos = new_premise & ~tcos_dev
    keep = ~tcos_dev[install_device]
    tcos_device, tcos_time = install_device[~keep], install_time[~keep]
    install_device, install_time = install_device[keep], install_time[keep]
    poor_wan, poor_han, faulty = _conditions(s, len(premise_global), dev_slot,
                                             streams.for_shard(s.seed, index, streams.CONDITIONS))
    dev_global = premise_global[dev_premise] * 4 + dev_slot
    if s.id_prefix is None:
        id_number = identifiers.device_id_numbers(dev_global, s.seed)
    else:
        id_number = identifiers.device_id_numbers_with_prefix(dev_global, s.seed, s.id_prefix[combo])
    return Population(
        n_existing_premises=n_existing, premise_global=premise_global, premise_installed_at=premise_installed_at,
        has_elec=has_elec, has_gas=has_gas, elec_supplier=elec_supplier, gas_supplier=gas_supplier,
        initial_elec_supplier=elec_supplier.copy(), initial_gas_supplier=gas_supplier.copy(),
        dev_premise=dev_premise, dev_slot=dev_slot, dev_global=dev_global,
        combo=combo, initial_combo=combo.copy(),
        state=np.where(ecos, ECOS_INSTALLED, PENDING).astype(np.int8),
        attempts=np.zeros(len(dev_premise), dtype=np.int16), parked=np.zeros(len(dev_premise), dtype=bool),
        dev_installed_at=dev_installed_at, install_device=install_device, install_time=install_time,
        dev_id_number=id_number, dev_ecos_at_install=ecos, tcos_device=tcos_device, tcos_time=tcos_time,
        premise_poor_wan=poor_wan, dev_poor_han=poor_han, dev_faulty=faulty,
        next_switch_at=np.full(len(premise_global), NEVER, dtype=np.int64),
    )


def _new_premises(s: Scenario, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """When each of the shard's new premises is installed (sorted): a Poisson count a day, uniform in the day."""
    days = -(-(s.end - s.start) // DAY)
    mean = s.installs_per_day * fraction
    if s.install_weekday_weights is not None:  # installers work mostly on weekdays
        weekday = ((s.start // DAY + np.arange(days)) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        mean = mean * s.install_weekday_weights[weekday]
    per_day = rng.poisson(mean, size=days)
    n_new = int(per_day.sum())
    if n_new >= NEW_PREMISES_STRIDE:  # scenario.py rules this out; a guard, not a user error
        raise AssertionError("too many installs for one shard")
    install_day = np.repeat(np.arange(days, dtype=np.int64), per_day)
    if s.install_hours is None:
        installed_at = s.start + install_day * DAY + rng.integers(0, DAY, size=n_new)
    else:  # visits in working hours (UTC), from each day's midnight
        installed_at = ((s.start + install_day * DAY) // DAY * DAY
                        + rng.integers(s.install_hours[0], s.install_hours[1], size=n_new))
        installed_at = np.maximum(installed_at, s.start)
    installed_at.sort()
    return installed_at


def _fuels_and_suppliers(s: Scenario, n_existing: int, n_new: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which premises have electricity and gas, and their suppliers at the start (or at install)."""
    n = n_existing + n_new
    existing = np.arange(n) < n_existing
    gas_share = np.where(existing, s.gas_share, s.install_gas_share)
    elec_share = np.where(existing, s.electricity_share, s.install_electricity_share)
    has_gas = rng.random(n) < gas_share
    has_elec = rng.random(n) < elec_share
    shares = np.array([x.share for x in s.suppliers])
    elec = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
    if s.gas_shares is None:
        other = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
        same = rng.random(n) < s.same_supplier_share
        gas = np.where(same, elec, other).astype(np.int16)
    else:
        cdf = np.cumsum(joint_suppliers(shares, s.gas_shares, s.same_supplier_share), axis=1)
        u = rng.random(n)
        gas = np.empty(n, dtype=np.int16)
        for i in range(len(shares)):  # the gas supplier given the electricity supplier
            mine = elec == i
            gas[mine] = np.minimum(np.searchsorted(cdf[i], u[mine] * cdf[i, -1], side="right"), len(shares) - 1)
    elec_supplier = np.where(has_elec, elec, NO_SUPPLIER).astype(np.int16)
    gas_supplier = np.where(has_gas, gas, NO_SUPPLIER).astype(np.int16)
    return has_elec, has_gas, elec_supplier, gas_supplier


def joint_suppliers(elec: np.ndarray, gas: np.ndarray, same: float) -> np.ndarray:
    """P(electricity supplier i, gas supplier j) with the given market shares as marginals and about
    ``same`` of premises with one supplier for both (as much as the shares allow): the diagonal holds
    min(elec, gas) scaled to ``same``, the rest pairs the remaining shares independently."""
    low = np.minimum(elec, gas)
    diagonal = low * min(1.0, same / low.sum()) if low.sum() > 0 else low
    rest_e, rest_g = elec - diagonal, gas - diagonal
    rest = 1.0 - diagonal.sum()
    joint = np.diag(diagonal)
    if rest > 1e-12:
        joint = joint + np.outer(rest_e, rest_g) / rest
    return joint


def _devices(s: Scenario, has_elec: np.ndarray, has_gas: np.ndarray, elec_supplier: np.ndarray,
             gas_supplier: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A GPF on every hub, an ESME and a GSME where the premises has them; each device's combination,
    from the supplier's own fleet mix for a meter when the suppliers have fleets."""
    slots = np.stack([np.ones(len(has_elec), bool), has_elec, has_gas], axis=1)
    premise_local, slot = np.nonzero(slots)
    dev_slot = slot.astype(np.int8)
    combo = np.empty(len(premise_local), dtype=np.int16)
    for slot_code, name in enumerate(TYPE_NAMES):
        mask = dev_slot == slot_code
        if not mask.any():
            continue
        idx, prob = s.combo_weights[name]
        if s.fleet is None or slot_code == SLOT_GPF:
            combo[mask] = idx[rng.choice(len(idx), size=int(mask.sum()), p=prob)]
            continue
        supplier = (elec_supplier if slot_code == SLOT_ESME else gas_supplier)[premise_local]
        for i in range(len(s.suppliers)):
            sub = mask & (supplier == i)
            if sub.any():
                p = prob * s.fleet[i, idx]
                p = p / p.sum() if p.sum() > 0 else prob
                combo[sub] = idx[rng.choice(len(idx), size=int(sub.sum()), p=p)]
    return premise_local.astype(np.int32), dev_slot, combo


def _tcos_premises(s: Scenario, installed_at: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which new premises are installed with TCoS credentials: a share falling linearly over the period."""
    if s.tcos_share is None or len(installed_at) == 0:
        return np.zeros(len(installed_at), dtype=bool)
    first, last = s.tcos_share
    share = first + (last - first) * np.clip((installed_at - s.start) / (s.end - s.start), 0.0, 1.0)
    return rng.random(len(installed_at)) < share


def _conditions(s: Scenario, n_premises: int, dev_slot: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each hub's WAN condition and each device's HAN and fault (migration.outcomes), in this order."""
    o = s.outcomes
    if o is None:
        return (np.zeros(n_premises, dtype=bool), np.zeros(len(dev_slot), dtype=bool),
                np.zeros(len(dev_slot), dtype=bool))
    poor_wan = rng.random(n_premises) < o.wan_poor_share
    poor_han = rng.random(len(dev_slot)) < o.han_share[dev_slot]
    faulty = rng.random(len(dev_slot)) < o.faulty_share[dev_slot]
    return poor_wan, poor_han, faulty


def _install_delays(s: Scenario, slot: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """From a new premises' install to each device's install event: the GPF on the network, the others
    commissioned (EMRR App. A ECOSMIG-006). Both delays are drawn for every device, in this order."""
    on_network = s.gpf_on_network_delay.sample(rng, len(slot))
    commissioned = s.commissioning_delay.sample(rng, len(slot))
    return np.where(slot == SLOT_GPF, on_network, commissioned)
