"""The SimPy model of one shard of the population (DESIGN.md "The domain model").

SimPy drives the actors and their timing; devices are columns (NumPy arrays indexed by the
shard's local device number), and the outcomes of a whole batch are sampled at once:

- ``control_centre``: the Migration Control Centre selects a batch at each batch start time,
  up to the day's capacity, skipping Non-Migratable combinations (parked until a firmware
  upgrade) and devices that fail pre-validation (re-selected later; not attempts) (ETMAD steps
  a-b, spec/003 §29-30).
- ``service_provider_session``: the TCoS Service Provider's certificate replacement sessions of
  one batch: tries at increasing intervals until success or time-out; a session that fails is
  one Failed Migration attempt with an error code and sub-code, and the device is attempted
  again after the further-attempt interval, up to the maximum (spec/003 §35-36).
- ``change_of_supplier``: daily switches of the electricity and gas Responsible Supplier.
- ``installs``: new premises whose devices already hold ECoS credentials (ECOSMIG-006).
- ``firmware_campaign``: upgrades that move devices off a firmware version (and so off a
  Non-Migratable combination).

A shard is a fixed range of premises with its own random streams, so the result does not
depend on how many worker processes run the shards.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy
from emrr.sim.scenario import NEVER, Scenario

DAY = 86_400
# Device slots within a premises: the global device index is premise_index * 4 + slot.
SLOT_GPF, SLOT_ESME, SLOT_GSME = 0, 1, 2
TYPE_NAMES = ("GPF", "ESME", "GSME")  # indexed by slot
# Device states.
PENDING, MIGRATED, EXHAUSTED, ECOS_INSTALLED = 0, 1, 2, 3
# Event types (the event log's ``event_type`` column, by code).
EVENT_TYPES = ("migration_success", "migration_failure", "prevalidation_skip", "install", "firmware_upgrade")
EV_SUCCESS, EV_FAILURE, EV_SKIP, EV_INSTALL, EV_FIRMWARE = range(5)
FUEL_ELECTRICITY, FUEL_GAS = 0, 1
NEW_PREMISES_STRIDE = 1_000_000  # room for each shard's new premises in the global numbering
NO_SUPPLIER = -1


@dataclass
class EventColumns:
    """Events appended batch by batch as column chunks; concatenated once at the end."""

    chunks: dict[str, list[np.ndarray]] = field(default_factory=lambda: {
        "type": [], "device": [], "time": [], "attempt": [], "error": [], "combo": [],
        "session_start": [], "tries": [],
    })

    def add(self, etype: int, device: np.ndarray, time: np.ndarray, combo: np.ndarray,
            attempt: np.ndarray | None = None, error: np.ndarray | None = None,
            session_start: np.ndarray | None = None, tries: np.ndarray | None = None) -> None:
        n = len(device)
        if n == 0:
            return
        c = self.chunks
        c["type"].append(np.full(n, etype, dtype=np.int8))
        c["device"].append(device.astype(np.int32, copy=False))
        c["time"].append(np.broadcast_to(np.asarray(time, dtype=np.int64), (n,)).copy())
        c["combo"].append(combo.astype(np.int16, copy=False))
        c["attempt"].append(np.zeros(n, np.int16) if attempt is None else attempt.astype(np.int16))
        c["error"].append(np.full(n, -1, np.int16) if error is None else error.astype(np.int16))
        c["session_start"].append(np.full(n, -1, np.int64) if session_start is None else session_start)
        c["tries"].append(np.zeros(n, np.int16) if tries is None else tries.astype(np.int16))

    def columns(self) -> dict[str, np.ndarray]:
        empty = {"type": np.int8, "device": np.int32, "time": np.int64, "attempt": np.int16,
                 "error": np.int16, "combo": np.int16, "session_start": np.int64, "tries": np.int16}
        return {k: (np.concatenate(v) if v else np.empty(0, dtype=empty[k])) for k, v in self.chunks.items()}


@dataclass
class SupplyChanges:
    premise: list[np.ndarray] = field(default_factory=list)
    fuel: list[np.ndarray] = field(default_factory=list)
    losing: list[np.ndarray] = field(default_factory=list)
    gaining: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)

    def add(self, premise: np.ndarray, fuel: int, losing: np.ndarray, gaining: np.ndarray, time: np.ndarray) -> None:
        if len(premise):
            self.premise.append(premise.astype(np.int32))
            self.fuel.append(np.full(len(premise), fuel, dtype=np.int8))
            self.losing.append(losing.astype(np.int16))
            self.gaining.append(gaining.astype(np.int16))
            self.time.append(time.astype(np.int64))

    def columns(self) -> dict[str, np.ndarray]:
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return {"premise": cat(self.premise, np.int32), "fuel": cat(self.fuel, np.int8),
                "losing": cat(self.losing, np.int16), "gaining": cat(self.gaining, np.int16),
                "time": cat(self.time, np.int64)}


def shard_bounds(scenario: Scenario) -> list[tuple[int, int]]:
    """The fixed split of the initial premises into shards: [(first, end), ...]."""
    size = scenario.shard_premises
    return [(lo, min(lo + size, scenario.premises)) for lo in range(0, scenario.premises, size)]


def rng_for(scenario: Scenario, shard: int, stream: int) -> np.random.Generator:
    """An independent random stream per (seed, shard, actor): the basis of determinism."""
    return np.random.default_rng([scenario.seed, shard, stream])


STREAM_POPULATION, STREAM_BATCH, STREAM_SESSION, STREAM_COS, STREAM_INSTALLS, STREAM_FIRMWARE, \
    STREAM_NOTIFY, STREAM_IDS = range(8)


class Shard:
    """The population of one shard as columns, and the SimPy actors that change it."""

    def __init__(self, scenario: Scenario, index: int, bounds: tuple[int, int], total_premises: int):
        self.s = scenario
        self.index = index
        self.first_premise, end = bounds
        self.fraction = (end - self.first_premise) / total_premises
        self.events = EventColumns()
        self.supply = SupplyChanges()
        self.env = simpy.Environment(initial_time=scenario.start)
        self._populate(end - self.first_premise)
        self._queues()

    # ----------------------------------------------------------------- population

    def _populate(self, n_existing: int) -> None:
        s = self.s
        rng = rng_for(s, self.index, STREAM_POPULATION)
        days = -(-(s.end - s.start) // DAY)
        per_day = rng.poisson(s.installs_per_day * self.fraction, size=days)
        n_new = int(per_day.sum())
        if n_new >= NEW_PREMISES_STRIDE:  # scenario.py rules this out; a guard, not a user error
            raise AssertionError("too many installs for one shard")
        install_day = np.repeat(np.arange(days, dtype=np.int64), per_day)
        new_installed_at = s.start + install_day * DAY + rng.integers(0, DAY, size=n_new)
        new_installed_at.sort()
        n = n_existing + n_new
        self.n_existing_premises = n_existing
        self.premise_global = np.concatenate([
            np.arange(self.first_premise, self.first_premise + n_existing, dtype=np.int64),
            s.premises + self.index * NEW_PREMISES_STRIDE + np.arange(n_new, dtype=np.int64),
        ])
        self.premise_installed_at = np.concatenate([np.full(n_existing, -1, np.int64), new_installed_at])
        # -1 = installed before the period (pre-existing, holding TCoS credentials).
        gas_share = np.where(np.arange(n) < n_existing, s.gas_share, s.install_gas_share)
        elec_share = np.where(np.arange(n) < n_existing, s.electricity_share, s.install_electricity_share)
        self.has_gas = rng.random(n) < gas_share
        self.has_elec = rng.random(n) < elec_share
        shares = np.array([x.share for x in s.suppliers])
        elec = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
        other = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
        same = rng.random(n) < s.same_supplier_share
        gas = np.where(same, elec, other).astype(np.int16)
        self.elec_supplier = np.where(self.has_elec, elec, NO_SUPPLIER).astype(np.int16)
        self.gas_supplier = np.where(self.has_gas, gas, NO_SUPPLIER).astype(np.int16)
        self.initial_elec_supplier = self.elec_supplier.copy()
        self.initial_gas_supplier = self.gas_supplier.copy()
        # Devices: a GPF on every hub, an ESME and a GSME where the premises has them.
        slots = np.stack([np.ones(n, bool), self.has_elec, self.has_gas], axis=1)
        premise_local, slot = np.nonzero(slots)
        self.dev_premise = premise_local.astype(np.int32)
        self.dev_slot = slot.astype(np.int8)
        self.dev_global = self.premise_global[premise_local] * 4 + slot
        nd = len(premise_local)
        combo = np.empty(nd, dtype=np.int16)
        for slot_code, name in enumerate(TYPE_NAMES):
            mask = self.dev_slot == slot_code
            if mask.any():
                idx, prob = s.combo_weights[name]
                combo[mask] = idx[rng.choice(len(idx), size=int(mask.sum()), p=prob)]
        self.combo = combo
        self.initial_combo = combo.copy()
        new_premise = premise_local >= n_existing
        self.state = np.where(new_premise, ECOS_INSTALLED, PENDING).astype(np.int8)
        self.attempts = np.zeros(nd, dtype=np.int16)
        self.parked = np.zeros(nd, dtype=bool)
        # Install events of the new premises' devices: GPF on the network, others commissioned.
        new_devices = np.flatnonzero(new_premise)
        delay = np.where(self.dev_slot[new_devices] == SLOT_GPF,
                         s.gpf_on_network_delay.sample(rng, len(new_devices)),
                         s.commissioning_delay.sample(rng, len(new_devices)))
        self.install_device = new_devices
        self.install_time = self.premise_installed_at[self.dev_premise[new_devices]] + delay
        self.dev_installed_at = np.full(nd, -1, dtype=np.int64)
        self.dev_installed_at[new_devices] = self.install_time

    def _queues(self) -> None:
        rng = rng_for(self.s, self.index, STREAM_BATCH)
        pending = np.flatnonzero(self.state == PENDING).astype(np.int32)
        self.fresh = pending[rng.permutation(len(pending))]  # the control centre's selection order
        self.fresh_head = 0
        self.due: dict[int, list[np.ndarray]] = {}  # day number -> devices ready again that day
        self.ready: deque[np.ndarray] = deque()
        self.batch_rng = rng
        self.upgrades: list[list] = []  # per campaign: [devices, times, from, to, applied so far]
        self.session_rng = rng_for(self.s, self.index, STREAM_SESSION)

    def day_of(self, t: np.ndarray | int) -> np.ndarray | int:
        return (t - self.s.start) // DAY

    def schedule(self, devices: np.ndarray, when: np.ndarray) -> None:
        """Make devices selectable again from the day of ``when``."""
        if len(devices) == 0:
            return
        days = self.day_of(when)
        order = np.argsort(days, kind="stable")
        days, devices = days[order], devices[order]
        cut = np.flatnonzero(np.diff(days)) + 1
        for part_days, part in zip(np.split(days, cut), np.split(devices, cut)):
            self.due.setdefault(int(part_days[0]), []).append(part)

    # ----------------------------------------------------------------- actors

    def run(self) -> None:
        env = self.env
        env.process(self.control_centre())
        if (self.s.cos_electricity_rate > 0 or self.s.cos_gas_rate > 0) and len(self.s.suppliers) > 1:
            env.process(self.change_of_supplier())
        if len(self.install_device):
            env.process(self.installs())
        for i, campaign in enumerate(self.s.campaigns):
            env.process(self.firmware_campaign(i, campaign))
        env.run(until=self.s.end)
        self.apply_firmware(self.s.end - 1)

    def daily_quota(self, t: int) -> list[int]:
        """This shard's part of the day's capacity, split over the batch start times."""
        weekday = ((t // DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        quota = int(round(self.s.capacity[weekday] * self.fraction))
        nb = len(self.s.batch_times)
        return [quota // nb + (1 if i < quota % nb else 0) for i in range(nb)]

    def control_centre(self):
        """Daily batches: at each batch start time select up to the quota and start the sessions."""
        s = self.s
        day_start = (s.migration_start // DAY) * DAY  # UTC midnight: batch times are UTC times of day
        while day_start < s.end:
            quotas = self.daily_quota(day_start)
            for offset, quota in zip(s.batch_times, quotas):
                t = day_start + offset
                if t < s.migration_start:
                    continue
                if t >= s.end:
                    return
                yield self.env.timeout(t - self.env.now)
                self.apply_firmware(t)
                self._release_due(t)
                batch = self.select(t, quota)
                if len(batch):
                    self.env.process(self.service_provider_session(t, batch))
            day_start += DAY

    def _release_due(self, t: int) -> None:
        today = int(self.day_of(t))
        for day in sorted(d for d in self.due if d <= today):
            self.ready.extend(self.due.pop(day))

    def _next_candidates(self, need: int) -> np.ndarray:
        """Up to ``need`` candidates: devices ready again first, then never-selected devices."""
        parts, have = [], 0
        while self.ready and have < need:
            head = self.ready.popleft()
            take = head[: need - have]
            if len(take) < len(head):
                self.ready.appendleft(head[len(take):])
            parts.append(take)
            have += len(take)
        if have < need and self.fresh_head < len(self.fresh):
            take = self.fresh[self.fresh_head: self.fresh_head + need - have]
            self.fresh_head += len(take)
            parts.append(take)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)

    def select(self, t: int, quota: int) -> np.ndarray:
        """The Migration Control Centre's batch (ETMAD steps a-b): up to ``quota`` attempts.

        Non-Migratable combinations are parked and never attempted; devices failing
        pre-validation are recorded as skips, are not attempts, and come back later.
        """
        s = self.s
        chosen: list[np.ndarray] = []
        have = 0
        while have < quota:
            cand = self._next_candidates(quota - have)
            if len(cand) == 0:
                break
            cand = cand[self.state[cand] == PENDING]
            nm = s.nm_classified_at[self.combo[cand]] <= t
            self.parked[cand[nm]] = True
            cand = cand[~nm]
            skip = self.batch_rng.random(len(cand)) < s.skip_probability
            skipped = cand[skip]
            if len(skipped):
                self.events.add(EV_SKIP, skipped, t, self.combo[skipped])
                self.schedule(skipped, np.full(len(skipped), t + s.reselect_after, dtype=np.int64))
            cand = cand[~skip]
            chosen.append(cand)
            have += len(cand)
        return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int32)

    def service_provider_session(self, t0: int, batch: np.ndarray):
        """One batch's certificate replacement sessions (spec/003 §35): every device's tries at the
        increasing retry offsets are sampled at once (the try that succeeds, or none before the
        time-out); the process then waits for the moments the outcomes are known."""
        s, rng = self.s, self.session_rng
        n = len(batch)
        combo = self.combo[batch].copy()
        start = t0 + (rng.integers(0, s.batch_spread, size=n, endpoint=True) if s.batch_spread else np.zeros(n, np.int64))
        classified = s.nm_classified_at[combo] != NEVER
        p = np.where(classified, s.nm_success_before[combo], s.success_probability[combo])
        success = rng.random(n) < p
        tries = len(s.try_offsets)
        # Per-try success q with 1-(1-q)^tries = p; the successful try is geometric, truncated.
        with np.errstate(divide="ignore", invalid="ignore"):
            q = 1.0 - np.power(1.0 - p, 1.0 / tries)
            u = rng.random(n) * (1.0 - np.power(1.0 - q, tries))
            k = np.where(q >= 1.0, 0, np.floor(np.log1p(-u) / np.log1p(-q)))
        k = np.clip(np.nan_to_num(k), 0, tries - 1).astype(np.int64)
        error = rng.choice(len(s.error_codes), size=n, p=s.error_weights)
        permanent = ~success & s.error_permanent[error]
        confirm = s.confirmation_delay.sample(rng, n)
        attempt = self.attempts[batch] + 1
        self.attempts[batch] = attempt
        when = np.where(success, start + s.try_offsets[k] + confirm,
                        np.where(permanent, start + confirm, start + s.session_timeout))
        tries_used = np.where(success, k + 1, np.where(permanent, 1, tries))
        # The session's outcomes become known in two steps: permanent errors after the first try,
        # the rest (successes at whichever try, transient failures) by the time-out. Each event
        # keeps its own exact time; nothing else looks at a device while its session runs.
        permanent_round = permanent
        for first, group in ((True, permanent_round), (False, ~permanent_round)):
            if not group.any():
                continue
            target = t0 + (int(s.try_offsets[0]) if first else s.session_timeout)
            if target > self.env.now:
                yield self.env.timeout(target - self.env.now)
            ok = np.flatnonzero(group & success)
            bad = np.flatnonzero(group & ~success)
            if len(ok):
                dev = batch[ok]
                self.state[dev] = MIGRATED
                self.events.add(EV_SUCCESS, dev, when[ok], combo[ok], attempt[ok],
                                session_start=start[ok], tries=tries_used[ok])
            if len(bad):
                self._fail(batch[bad], when[bad], combo[bad], attempt[bad], error[bad],
                           start[bad], tries_used[bad])

    def _fail(self, dev, when, combo, attempt, error, start, tries) -> None:
        s = self.s
        self.events.add(EV_FAILURE, dev, when, combo, attempt, error, start, tries)
        exhausted = attempt >= s.max_attempts
        self.state[dev[exhausted]] = EXHAUSTED
        again = dev[~exhausted]
        jitter = (self.session_rng.integers(-s.further_attempt_jitter, s.further_attempt_jitter,
                                            size=len(again), endpoint=True)
                  if s.further_attempt_jitter else 0)
        self.schedule(again, when[~exhausted] + s.further_attempt_interval + jitter)

    def change_of_supplier(self):
        """Daily changes of supplier: electricity, gas with it (dual fuel), and gas alone."""
        s = self.s
        rng = rng_for(s, self.index, STREAM_COS)
        gaining_cdf = np.cumsum(s.cos_gaining, axis=1)
        leave = s.cos_leave_factor
        daily_e = s.cos_electricity_rate / 365.0
        daily_g_alone = max(0.0, s.cos_gas_rate - s.cos_correlation * s.cos_electricity_rate) / 365.0
        day = s.start
        while day < s.end:
            active = self.n_existing_premises + int(np.searchsorted(
                self.premise_installed_at[self.n_existing_premises:], day, side="right"))
            # Each active premises switches electricity with probability daily_e today (at most
            # once a day): draw the day's count, then the premises.
            switch_e = self._draw(rng, active, daily_e, self.has_elec, self.elec_supplier, leave)
            t_e = day + rng.integers(0, DAY, size=len(switch_e))
            losing = self.elec_supplier[switch_e]
            gaining = self._gaining(rng, gaining_cdf, losing)
            # Dual fuel: gas moves with electricity, unless it is already with the gaining supplier.
            joint = (self.has_gas[switch_e] & (rng.random(len(switch_e)) < s.cos_correlation)
                     & (self.gas_supplier[switch_e] != gaining))
            with_gas = switch_e[joint]
            gas_alone = self._draw(rng, active, daily_g_alone, self.has_gas, self.gas_supplier, leave)
            gas_alone = np.setdiff1d(gas_alone, with_gas, assume_unique=True)
            yield self.env.timeout(max(0, day - self.env.now))
            self.supply.add(switch_e, FUEL_ELECTRICITY, losing, gaining, t_e)
            self.elec_supplier[switch_e] = gaining
            self.supply.add(with_gas, FUEL_GAS, self.gas_supplier[with_gas], gaining[joint], t_e[joint])
            self.gas_supplier[with_gas] = gaining[joint]
            losing_g = self.gas_supplier[gas_alone]
            gain_g = self._gaining(rng, gaining_cdf, losing_g)
            t_alone = day + rng.integers(0, DAY, size=len(gas_alone))
            self.supply.add(gas_alone, FUEL_GAS, losing_g, gain_g, t_alone)
            self.gas_supplier[gas_alone] = gain_g
            day += DAY

    @staticmethod
    def _draw(rng: np.random.Generator, active: int, p: float, eligible: np.ndarray,
              supplier: np.ndarray, leave: np.ndarray) -> np.ndarray:
        """Premises among the first ``active`` that switch today (sorted, unique): each with
        probability ``p`` times its supplier's leave factor (at most once a day)."""
        top = float(leave.max()) if len(leave) else 0.0
        count = rng.binomial(active, min(1.0, p * top)) if active and p > 0 and top > 0 else 0
        picked = np.unique(rng.integers(0, active, size=count))
        picked = picked[eligible[picked]]
        keep = rng.random(len(picked)) * top < leave[np.maximum(supplier[picked], 0)]
        return picked[keep].astype(np.int64)

    @staticmethod
    def _gaining(rng: np.random.Generator, cdf: np.ndarray, losing: np.ndarray) -> np.ndarray:
        if len(losing) == 0:
            return np.empty(0, dtype=np.int16)
        u = rng.random(len(losing))
        rows = cdf[losing]
        gaining = (rows < u[:, None] * rows[:, -1:]).sum(axis=1)
        return np.minimum(gaining, cdf.shape[1] - 1).astype(np.int16)

    def installs(self):
        """New devices with ECoS credentials: recorded when the GPF reports it is on the network
        or the device goes from pending to commissioned (EMRR App. A ECOSMIG-006).

        Each day, at its start, the day's installs are recorded with their exact times.
        """
        order = np.argsort(self.install_time, kind="stable")
        devices, times = self.install_device[order], self.install_time[order]
        keep = times < self.s.end
        devices, times = devices[keep], times[keep]
        day = (self.s.start // DAY) * DAY
        head = 0
        while head < len(devices):
            yield self.env.timeout(max(0, day - self.env.now))
            tail = int(np.searchsorted(times, day + DAY, side="left"))
            part = devices[head:tail]
            self.events.add(EV_INSTALL, part, times[head:tail], self.combo[part])
            head = tail
            day += DAY

    def firmware_campaign(self, number: int, c):
        """Upgrade a share of the devices on ``combo_from`` at random moments over the campaign.

        The campaign picks its devices when it starts; each upgrade takes effect at its own time,
        applied by ``apply_firmware`` before every selection and at the end of the run.
        """
        rng = np.random.default_rng([self.s.seed, self.index, STREAM_FIRMWARE, number])
        if c.start >= self.s.end:
            return
        yield self.env.timeout(max(0, c.start - self.env.now))
        on = np.flatnonzero((self.combo == c.combo_from) & (self.state != ECOS_INSTALLED))
        chosen = on[rng.random(len(on)) < c.coverage]
        times = c.start + rng.integers(0, c.duration, size=len(chosen))
        order = np.argsort(times, kind="stable")
        self.upgrades.append([chosen[order], times[order], c.combo_from, c.combo_to, 0])

    def apply_firmware(self, until: int) -> None:
        """Apply every pending firmware upgrade timed at or before ``until``."""
        for pending in self.upgrades:
            devices, times, combo_from, combo_to, head = pending
            tail = int(np.searchsorted(times, until, side="right"))
            if tail == head:
                continue
            part, t = devices[head:tail], times[head:tail]
            still = self.combo[part] == combo_from  # not already moved by another campaign
            part, t = part[still], t[still]
            self.combo[part] = combo_to
            self.events.add(EV_FIRMWARE, part, t, np.full(len(part), combo_to, np.int16))
            unpark = part[self.parked[part] & (self.state[part] == PENDING)]
            self.parked[unpark] = False
            self.schedule(unpark, np.full(len(unpark), until, dtype=np.int64))
            pending[4] = tail
