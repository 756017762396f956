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
from emrr.sim.identifiers import NEW_PREMISES_STRIDE
from emrr.sim.scenario import Scenario

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
    install_device: np.ndarray  # the devices installed during the period ...
    install_time: np.ndarray  # ... and when each reports it is installed (ECOSMIG-006)

    def pending(self) -> np.ndarray:
        """Devices still to migrate (int32 local numbers, in order)."""
        return np.flatnonzero(self.state == PENDING).astype(np.int32)


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
    dev_premise, dev_slot, combo = _devices(s, has_elec, has_gas, rng)
    new_premise = dev_premise >= n_existing
    install_device = np.flatnonzero(new_premise)
    install_time = premise_installed_at[dev_premise[install_device]] + _install_delays(
        s, dev_slot[install_device], rng)
    dev_installed_at = np.full(len(dev_premise), -1, dtype=np.int64)
    dev_installed_at[install_device] = install_time
    return Population(
        n_existing_premises=n_existing, premise_global=premise_global, premise_installed_at=premise_installed_at,
        has_elec=has_elec, has_gas=has_gas, elec_supplier=elec_supplier, gas_supplier=gas_supplier,
        initial_elec_supplier=elec_supplier.copy(), initial_gas_supplier=gas_supplier.copy(),
        dev_premise=dev_premise, dev_slot=dev_slot, dev_global=premise_global[dev_premise] * 4 + dev_slot,
        combo=combo, initial_combo=combo.copy(),
        state=np.where(new_premise, ECOS_INSTALLED, PENDING).astype(np.int8),
        attempts=np.zeros(len(dev_premise), dtype=np.int16), parked=np.zeros(len(dev_premise), dtype=bool),
        dev_installed_at=dev_installed_at, install_device=install_device, install_time=install_time,
    )


def _new_premises(s: Scenario, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """When each of the shard's new premises is installed (sorted): a Poisson count a day, uniform in the day."""
    days = -(-(s.end - s.start) // DAY)
    per_day = rng.poisson(s.installs_per_day * fraction, size=days)
    n_new = int(per_day.sum())
    if n_new >= NEW_PREMISES_STRIDE:  # scenario.py rules this out; a guard, not a user error
        raise AssertionError("too many installs for one shard")
    install_day = np.repeat(np.arange(days, dtype=np.int64), per_day)
    installed_at = s.start + install_day * DAY + rng.integers(0, DAY, size=n_new)
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
    other = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
    same = rng.random(n) < s.same_supplier_share
    gas = np.where(same, elec, other).astype(np.int16)
    elec_supplier = np.where(has_elec, elec, NO_SUPPLIER).astype(np.int16)
    gas_supplier = np.where(has_gas, gas, NO_SUPPLIER).astype(np.int16)
    return has_elec, has_gas, elec_supplier, gas_supplier


def _devices(s: Scenario, has_elec: np.ndarray, has_gas: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A GPF on every hub, an ESME and a GSME where the premises has them; each device's combination."""
    slots = np.stack([np.ones(len(has_elec), bool), has_elec, has_gas], axis=1)
    premise_local, slot = np.nonzero(slots)
    dev_slot = slot.astype(np.int8)
    combo = np.empty(len(premise_local), dtype=np.int16)
    for slot_code, name in enumerate(TYPE_NAMES):
        mask = dev_slot == slot_code
        if mask.any():
            idx, prob = s.combo_weights[name]
            combo[mask] = idx[rng.choice(len(idx), size=int(mask.sum()), p=prob)]
    return premise_local.astype(np.int32), dev_slot, combo


def _install_delays(s: Scenario, slot: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """From a new premises' install to each device's install event: the GPF on the network, the others
    commissioned (EMRR App. A ECOSMIG-006). Both delays are drawn for every device, in this order."""
    on_network = s.gpf_on_network_delay.sample(rng, len(slot))
    commissioned = s.commissioning_delay.sample(rng, len(slot))
    return np.where(slot == SLOT_GPF, on_network, commissioned)
