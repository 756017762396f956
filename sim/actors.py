"""The actors of the migration: SimPy processes, each one job, each with its own random stream.

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

Each actor is a generator taking the shard's state (``emrr.sim.model.Shard``) and its random
stream; the outcomes of a whole batch are sampled at once, on the population's columns. A
stream is drawn in the order of the simulation's events, so the order of the draws below is
part of the output: the same scenario and seed give byte-identical event logs.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from emrr.sim import streams
from emrr.sim.model import (
    EV_FAILURE,
    EV_FIRMWARE,
    EV_INSTALL,
    EV_SKIP,
    EV_SUCCESS,
    FUEL_ELECTRICITY,
    FUEL_GAS,
    PendingUpgrade,
    Shard,
)
from emrr.sim.population import DAY, ECOS_INSTALLED, EXHAUSTED, MIGRATED, PENDING
from emrr.sim.scenario import CAUSE_DEVICE, CAUSE_HAN, CAUSE_OTHER, CAUSE_WAN, NEVER, Campaign

Process = Generator  # a SimPy process: a generator of SimPy events


def run(shard: Shard) -> None:
    """Start the shard's actors and run its SimPy environment to the end of the period."""
    s, env = shard.s, shard.env
    env.process(control_centre(shard, shard.stream(streams.BATCH), shard.stream(streams.SESSION)))
    if (s.cos_electricity_rate > 0 or s.cos_gas_rate > 0) and len(s.suppliers) > 1:
        env.process(change_of_supplier(shard, shard.stream(streams.CHANGE_OF_SUPPLIER)))
    if len(shard.population.install_device):
        env.process(installs(shard))
    for number, campaign in enumerate(s.campaigns):
        env.process(firmware_campaign(shard, campaign, shard.stream(streams.FIRMWARE, number)))
    env.run(until=s.end)
    apply_firmware(shard, s.end - 1)


# ----------------------------------------------------------------- the Migration Control Centre


def control_centre(shard: Shard, rng: np.random.Generator, session_rng: np.random.Generator) -> Process:
    """Daily batches: at each batch start time select up to the quota and start the sessions.

    ``rng`` orders the never-selected devices and draws pre-validation skips; ``session_rng``
    is handed to the sessions.
    """
    s, env, queue, pop = shard.s, shard.env, shard.queue, shard.population
    pending = pop.pending()
    if s.selection_by_hub:  # premises by premises: the devices of a hub are attempted together
        rank = rng.permutation(len(pop.premise_global))
        queue.fresh = pending[np.argsort(rank[pop.dev_premise[pending]], kind="stable")]
    else:
        queue.fresh = pending[rng.permutation(len(pending))]  # the selection order
    # Devices installed during the period with TCoS credentials join from the day after their install.
    queue.schedule(pop.tcos_device.astype(np.int32), pop.tcos_time + DAY)
    day_start = (s.migration_start // DAY) * DAY  # UTC midnight: batch times are UTC times of day
    while day_start < s.end:
        for offset, quota in zip(s.batch_times, daily_quota(shard, day_start)):
            t = day_start + offset
            if t < s.migration_start:
                continue
            if t >= s.end:
                return
            yield env.timeout(t - env.now)
            apply_firmware(shard, t)
            queue.release_due(t)
            batch = select(shard, t, quota, rng)
            if len(batch):
                env.process(service_provider_session(shard, t, batch, session_rng))
        day_start += DAY


def daily_quota(shard: Shard, t: int) -> list[int]:
    """The shard's part of the capacity of the day of ``t`` (``model.daily_capacity``: weekday, ramp-up,
    calendar, variation), split over the batch start times."""
    s = shard.s
    day = int((t - (s.migration_start // DAY) * DAY) // DAY)
    quota = int(round(shard.capacity[day] * shard.fraction))
    nb = len(s.batch_times)
    return [quota // nb + (1 if i < quota % nb else 0) for i in range(nb)]


def select(shard: Shard, t: int, quota: int, rng: np.random.Generator) -> np.ndarray:
    """The Migration Control Centre's batch (ETMAD steps a-b): up to ``quota`` attempts.

    Non-Migratable combinations are parked and never attempted; devices failing
    pre-validation are recorded as skips, are not attempts, and come back later.
    """
    s, pop = shard.s, shard.population
    chosen: list[np.ndarray] = []
    have = 0
    while have < quota:
        cand = shard.queue.take(quota - have)
        if len(cand) == 0:
            break
        cand = cand[pop.state[cand] == PENDING]
        nm = s.nm_classified_at[pop.combo[cand]] <= t
        pop.parked[cand[nm]] = True
        cand = cand[~nm]
        skip = rng.random(len(cand)) < s.skip_probability
        if s.imminent_skip_probability > 0:  # spec/003 §30 c: a change of supplier registered, not yet in effect
            switch = pop.next_switch_at[pop.dev_premise[cand]]
            imminent = (switch != NEVER) & (switch > t)
            skip |= imminent & (rng.random(len(cand)) < s.imminent_skip_probability)
        skipped = cand[skip]
        if len(skipped):
            shard.events.add(EV_SKIP, skipped, t, pop.combo[skipped])
            shard.queue.schedule(skipped, np.full(len(skipped), t + s.reselect_after, dtype=np.int64))
        cand = cand[~skip]
        chosen.append(cand)
        have += len(cand)
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int32)


# ----------------------------------------------------------------- the TCoS Service Provider


@dataclass
class SessionOutcomes:
    """How each session of a batch ends: sampled at once when the batch starts."""

    combo: np.ndarray  # each device's combination at the start
    start: np.ndarray  # when each session starts
    success: np.ndarray  # bool
    error: np.ndarray  # index in the scenario's error table (meaningful where not success)
    permanent: np.ndarray  # failed with a permanent error: the session ends at the first try
    attempt: np.ndarray  # the attempt's number
    when: np.ndarray  # when the outcome is known
    tries: np.ndarray  # tries the session made


def sample_sessions(shard: Shard, t0: int, batch: np.ndarray, rng: np.random.Generator) -> SessionOutcomes:
    """Every device's tries at the increasing retry offsets, sampled at once: the try that
    succeeds, or none before the time-out (spec/003 §35). Counts the attempts."""
    s, pop = shard.s, shard.population
    n = len(batch)
    combo = pop.combo[batch].copy()
    if s.selection_by_hub and s.batch_spread:  # the devices of a hub share one session window
        u = streams.hashed_uniform(s.seed, streams.SESSION_START, pop.premise_global[pop.dev_premise[batch]], t0)
        start = t0 + np.minimum((u * (s.batch_spread + 1)).astype(np.int64), s.batch_spread)
    else:
        start = t0 + (rng.integers(0, s.batch_spread, size=n, endpoint=True) if s.batch_spread
                      else np.zeros(n, np.int64))
    classified = s.nm_classified_at[combo] != NEVER
    p = np.where(classified, s.nm_success_before[combo], s.success_probability[combo])
    if s.outcomes is not None:
        success, error = conditioned_outcomes(shard, t0, batch, combo, classified, p, rng)
    else:
        success = rng.random(n) < p
    tries = len(s.try_offsets)
    if s.first_try_share is not None:  # a reachable device answers the first try; the others a later one
        later = rng.random(n) >= s.first_try_share
        k = np.where(later, 1 + truncated_geometric(rng, p, tries - 1), 0) if tries > 1 else np.zeros(n, np.int64)
    else:
        k = truncated_geometric(rng, p, tries)
    if s.outcomes is None:
        error = rng.choice(len(s.error_codes), size=n, p=s.error_weights)
    permanent = ~success & s.error_permanent[error]
    confirm = s.confirmation_delay.sample(rng, n)
    attempt = pop.attempts[batch] + 1
    pop.attempts[batch] = attempt
    when = np.where(success, start + s.try_offsets[k] + confirm,
                    np.where(permanent, start + confirm, start + s.session_timeout))
    tries_used = np.where(success, k + 1, np.where(permanent, 1, tries))
    return SessionOutcomes(combo, start, success, error, permanent, attempt, when, tries_used)


def truncated_geometric(rng: np.random.Generator, p: np.ndarray, tries: int) -> np.ndarray:
    """The successful try (from 0) of sessions of ``tries`` tries: per-try success q with
    1-(1-q)^tries = p, the first success geometric, truncated to the tries."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 1.0 - np.power(1.0 - p, 1.0 / tries)
        u = rng.random(len(p)) * (1.0 - np.power(1.0 - q, tries))
        k = np.where(q >= 1.0, 0, np.floor(np.log1p(-u) / np.log1p(-q)))
    return np.clip(np.nan_to_num(k), 0, tries - 1).astype(np.int64)


def conditioned_outcomes(shard: Shard, t0: int, batch: np.ndarray, combo: np.ndarray, classified: np.ndarray,
                         p: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes from the devices' conditions (migration.outcomes), and each failure's error.

    In order: the hub cannot be reached that day (one draw per hub and day, shared by its devices:
    a communications failure belongs to the hub), a poor HAN link, a faulty device, then the
    device's ordinary failure probability (1 - ``p``). A faulty device, or a combination later
    classified Non-Migratable, fails with its combination's signature error; the others draw an
    error of their cause and device type.
    """
    s, pop, o = shard.s, shard.population, shard.s.outcomes
    n = len(batch)
    prem = pop.dev_premise[batch]
    slot = pop.dev_slot[batch].astype(np.int64)
    reach = streams.hashed_uniform(s.seed, streams.HUB_DAY, pop.premise_global[prem], t0 // DAY)
    wan = reach < np.where(pop.premise_poor_wan[prem], o.wan_poor_failure, o.wan_failure)
    han = pop.dev_poor_han[batch] & (rng.random(n) < o.han_failure)
    faulty = pop.dev_faulty[batch] & (rng.random(n) < o.faulty_failure)
    other = rng.random(n) >= p
    cause = np.select([wan, han, faulty | (classified & other), other],
                      [CAUSE_WAN, CAUSE_HAN, CAUSE_DEVICE, CAUSE_OTHER], -1)
    error = np.zeros(n, dtype=np.int64)
    bad = np.flatnonzero(cause >= 0)  # the failures, a few per cent: work on them only
    device = bad[cause[bad] == CAUSE_DEVICE]
    error[device] = s.error_signature[combo[device]]
    drawn = bad[cause[bad] != CAUSE_DEVICE]
    key = cause[drawn] * 3 + slot[drawn]  # (cause, device type), in a fixed order
    for k in np.unique(key):
        rows = drawn[key == k]
        idx, prob = s.error_by_cause[(int(k) // 3, int(k) % 3)]
        error[rows] = idx[rng.choice(len(idx), size=len(rows), p=prob)]
    return cause < 0, error


def service_provider_session(shard: Shard, t0: int, batch: np.ndarray, rng: np.random.Generator) -> Process:
    """One batch's certificate replacement sessions (spec/003 §35): the outcomes are sampled at
    once, then the process waits for the moments they are known and records them."""
    s, env, pop = shard.s, shard.env, shard.population
    o = sample_sessions(shard, t0, batch, rng)
    # The session's outcomes become known in two steps: permanent errors after the first try,
    # the rest (successes at whichever try, transient failures) by the time-out. Each event
    # keeps its own exact time; nothing else looks at a device while its session runs.
    for first, group in ((True, o.permanent), (False, ~o.permanent)):
        if not group.any():
            continue
        target = t0 + (int(s.try_offsets[0]) if first else s.session_timeout)
        if target > env.now:
            yield env.timeout(target - env.now)
        ok = np.flatnonzero(group & o.success)
        bad = np.flatnonzero(group & ~o.success)
        if len(ok):
            dev = batch[ok]
            pop.state[dev] = MIGRATED
            shard.events.add(EV_SUCCESS, dev, o.when[ok], o.combo[ok], o.attempt[ok],
                             session_start=o.start[ok], tries=o.tries[ok])
        if len(bad):
            failed(shard, batch[bad], o, bad, rng)


def failed(shard: Shard, dev: np.ndarray, o: SessionOutcomes, rows: np.ndarray, rng: np.random.Generator) -> None:
    """Record failed attempts (``rows`` of the outcomes, devices ``dev``); the devices not at the
    maximum are attempted again after the further-attempt interval, with jitter (spec/003 §36)."""
    s = shard.s
    when, attempt = o.when[rows], o.attempt[rows]
    shard.events.add(EV_FAILURE, dev, when, o.combo[rows], attempt, o.error[rows], o.start[rows], o.tries[rows])
    exhausted = attempt >= s.max_attempts
    shard.population.state[dev[exhausted]] = EXHAUSTED
    again = dev[~exhausted]
    jitter = (rng.integers(-s.further_attempt_jitter, s.further_attempt_jitter, size=len(again), endpoint=True)
              if s.further_attempt_jitter else 0)
    shard.queue.schedule(again, when[~exhausted] + s.further_attempt_interval + jitter)
    if s.outcomes is not None:  # before the next attempt, some hubs and devices are repaired
        pop, o = shard.population, s.outcomes
        prem = pop.dev_premise[again]
        pop.premise_poor_wan[prem[rng.random(len(again)) < o.wan_repair]] = False
        pop.dev_poor_han[again[rng.random(len(again)) < o.han_repair]] = False
        pop.dev_faulty[again[rng.random(len(again)) < o.faulty_repair]] = False


# ----------------------------------------------------------------- change of supplier


def change_of_supplier(shard: Shard, rng: np.random.Generator) -> Process:
    """Daily changes of supplier: electricity, gas with it (dual fuel), and gas alone."""
    s, env, pop, supply = shard.s, shard.env, shard.population, shard.supply
    gaining_cdf = np.cumsum(s.cos_gaining, axis=1)
    leave = s.cos_leave_factor
    # Gas has its own market (suppliers.gas_share): its own gaining suppliers and leave factors.
    gas_cdf = gaining_cdf if s.cos_gaining_gas is None else np.cumsum(s.cos_gaining_gas, axis=1)
    leave_gas = leave if s.cos_leave_factor_gas is None else s.cos_leave_factor_gas
    sells_gas = np.ones(len(s.suppliers), dtype=bool) if s.gas_shares is None else s.gas_shares > 0
    daily_e = s.cos_electricity_rate / 365.0
    daily_g_alone = max(0.0, s.cos_gas_rate - s.cos_correlation * s.cos_electricity_rate) / 365.0
    day = s.start
    while day < s.end:
        active = pop.n_existing_premises + int(np.searchsorted(
            pop.premise_installed_at[pop.n_existing_premises:], day, side="right"))
        # Each active premises switches electricity with probability daily_e today (at most
        # once a day): draw the day's count, then the premises.
        switch_e = switchers(rng, active, daily_e, pop.has_elec, pop.elec_supplier, leave)
        t_e = day + rng.integers(0, DAY, size=len(switch_e))
        losing = pop.elec_supplier[switch_e]
        gaining = gaining_suppliers(rng, gaining_cdf, losing)
        # Dual fuel: gas moves with electricity, unless it is already with the gaining supplier.
        joint = (pop.has_gas[switch_e] & (rng.random(len(switch_e)) < s.cos_correlation)
                 & (pop.gas_supplier[switch_e] != gaining) & sells_gas[gaining])
        with_gas = switch_e[joint]
        gas_alone = switchers(rng, active, daily_g_alone, pop.has_gas, pop.gas_supplier, leave_gas)
        gas_alone = np.setdiff1d(gas_alone, with_gas, assume_unique=True)
        # A change is registered change_of_supplier.notice before it takes effect: the actor runs that
        # far ahead, so that pre-validation can see it coming (spec/003 §30 c).
        yield env.timeout(max(0, day - s.cos_notice - env.now))
        supply.add(switch_e, FUEL_ELECTRICITY, losing, gaining, t_e)
        pop.elec_supplier[switch_e] = gaining
        supply.add(with_gas, FUEL_GAS, pop.gas_supplier[with_gas], gaining[joint], t_e[joint])
        pop.gas_supplier[with_gas] = gaining[joint]
        losing_g = pop.gas_supplier[gas_alone]
        gain_g = gaining_suppliers(rng, gas_cdf, losing_g)
        t_alone = day + rng.integers(0, DAY, size=len(gas_alone))
        supply.add(gas_alone, FUEL_GAS, losing_g, gain_g, t_alone)
        pop.gas_supplier[gas_alone] = gain_g
        if s.cos_notice:
            pop.next_switch_at[switch_e] = t_e
            pop.next_switch_at[gas_alone] = t_alone
        day += DAY


def switchers(rng: np.random.Generator, active: int, p: float, eligible: np.ndarray,
              supplier: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """Premises among the first ``active`` that switch today (sorted, unique): each with
    probability ``p`` times its supplier's leave factor (at most once a day)."""
    top = float(leave.max()) if len(leave) else 0.0
    count = rng.binomial(active, min(1.0, p * top)) if active and p > 0 and top > 0 else 0
    picked = np.unique(rng.integers(0, active, size=count))
    picked = picked[eligible[picked]]
    keep = rng.random(len(picked)) * top < leave[np.maximum(supplier[picked], 0)]
    return picked[keep].astype(np.int64)


def gaining_suppliers(rng: np.random.Generator, cdf: np.ndarray, losing: np.ndarray) -> np.ndarray:
    """The Gaining Supplier of each switch, drawn from the row of its losing supplier in ``cdf``."""
    if len(losing) == 0:
        return np.empty(0, dtype=np.int16)
    u = rng.random(len(losing))
    rows = cdf[losing]
    gaining = (rows < u[:, None] * rows[:, -1:]).sum(axis=1)
    return np.minimum(gaining, cdf.shape[1] - 1).astype(np.int16)


# ----------------------------------------------------------------- installs and firmware


def installs(shard: Shard) -> Process:
    """New devices with ECoS credentials: recorded when the GPF reports it is on the network
    or the device goes from pending to commissioned (EMRR App. A ECOSMIG-006).

    Each day, at its start, the day's installs are recorded with their exact times. The install
    times were drawn with the population; this actor draws nothing.
    """
    s, env, pop = shard.s, shard.env, shard.population
    order = np.argsort(pop.install_time, kind="stable")
    devices, times = pop.install_device[order], pop.install_time[order]
    keep = times < s.end
    devices, times = devices[keep], times[keep]
    day = (s.start // DAY) * DAY
    head = 0
    while head < len(devices):
        yield env.timeout(max(0, day - env.now))
        tail = int(np.searchsorted(times, day + DAY, side="left"))
        part = devices[head:tail]
        shard.events.add(EV_INSTALL, part, times[head:tail], pop.combo[part])
        head = tail
        day += DAY


def firmware_campaign(shard: Shard, c: Campaign, rng: np.random.Generator) -> Process:
    """Upgrade a share of the devices on ``combo_from`` at random moments over the campaign.

    The campaign picks its devices when it starts; each upgrade takes effect at its own time,
    applied by ``apply_firmware`` before every selection and at the end of the run.
    """
    env, pop = shard.env, shard.population
    if c.start >= shard.s.end:
        return
    yield env.timeout(max(0, c.start - env.now))
    on = np.flatnonzero((pop.combo == c.combo_from) & (pop.state != ECOS_INSTALLED) & (pop.dev_installed_at < c.start))
    chosen = on[rng.random(len(on)) < c.coverage]
    times = c.start + rng.integers(0, c.duration, size=len(chosen))
    order = np.argsort(times, kind="stable")
    shard.upgrades.append(PendingUpgrade(chosen[order], times[order], c.combo_from, c.combo_to))


def apply_firmware(shard: Shard, until: int) -> None:
    """Apply every pending firmware upgrade timed at or before ``until``; a parked device whose
    combination is no longer Non-Migratable can be selected again from then."""
    pop = shard.population
    for up in shard.upgrades:
        tail = int(np.searchsorted(up.times, until, side="right"))
        if tail == up.applied:
            continue
        part, t = up.devices[up.applied:tail], up.times[up.applied:tail]
        still = pop.combo[part] == up.combo_from  # not already moved by another campaign
        part, t = part[still], t[still]
        pop.combo[part] = up.combo_to
        shard.events.add(EV_FIRMWARE, part, t, np.full(len(part), up.combo_to, np.int16))
        if shard.s.outcomes is not None and shard.s.outcomes.faulty_firmware_fix > 0:  # an upgrade may fix a fault
            fix = streams.hashed_uniform(shard.s.seed, streams.FIRMWARE_FIX, pop.dev_global[part], t)
            pop.dev_faulty[part[fix < shard.s.outcomes.faulty_firmware_fix]] = False
        unpark = part[pop.parked[part] & (pop.state[part] == PENDING)]
        pop.parked[unpark] = False
        shard.queue.schedule(unpark, np.full(len(unpark), until, dtype=np.int64))
        up.applied = tail
