"""The actors of the SMETS1 migration (spec/002 2.1.2's file flows): SimPy processes, each one job,
each with its own random stream.

- ``authorising_parties``: each day, the MA files received that day (Responsible Suppliers for
  Active meters, the DCC for Dormant ones) and the SMSO's Validation Responses: accepted (perhaps
  with a warning Reason Code) or rejected; a rejected MA's processing ends (MA Completion Response,
  Failed).
- ``control_centre``: each day, for the next Migration Day's Installations: MAs not used (expired,
  or a sibling MA rejected: Warning), DA pre-migration validation (Group ID "DA", up to 7 days
  before; a failure ends processing and is never a failed migration, 002:L506), then each attempt's
  files: Migration Common File (the Requesting Party's, the day before), Migration Common
  Validation File (a failure ends the MA, 004:L117), Migration Group (Encrypted) File (commenced,
  002:L200), S1SP Commissioning File, and for DCC-commissioned Installations the Commissioning
  Outcome File. A failed migration is attempted again after the retry interval, up to the
  maximum; then the MAs complete Failed. A success completes the MAs (Success) at the same instant.

The outcomes of a whole day's attempts are sampled at once, on the Installations' columns; each
event keeps its own exact time. A stream is drawn in the order of the simulation's events, so the
order of the draws below is part of the output: the same scenario and seed give byte-identical logs.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from emrr.sim import identifiers
from emrr.sim.smets1_model import (
    AUTHORISATIONS,
    CONTROL_CENTRE,
    EV_COMMENCED,
    EV_COMPLETED,
    EV_DA_FAILED,
    EV_FAILED,
    EV_MA_COMPLETED,
    EV_MA_IN_PROGRESS,
    EV_MA_RECEIVED,
    EV_MA_REJECTED,
    EV_MA_VALIDATED,
    EV_MCF,
    EV_MCVF_FAILED,
    EV_S1SP_COMMISSIONED,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_SUCCESS,
    STATUS_WARNING,
    Shard,
)
from emrr.sim.smets1_population import MA_SLOTS, NONE, Installations, ma_rows
from emrr.sim.smets1_scenario import DA_GROUP, DA_MAX_BEFORE, DAY, Smets1Scenario, Stage

Process = Generator  # a SimPy process: a generator of SimPy events


def run(shard: Shard) -> None:
    """Start the shard's actors and run its SimPy environment to the end of the period."""
    env = shard.env
    env.process(authorising_parties(shard, shard.stream(AUTHORISATIONS)))
    env.process(control_centre(shard, shard.stream(CONTROL_CENTRE)))
    env.run(until=shard.s.end)


def reasons(s: Smets1Scenario, kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` reasons of ``kind`` (rows of the scenario's reason table)."""
    rows, p = s.reasons[kind]
    return rows[rng.choice(len(rows), size=n, p=p)] if n else np.empty(0, dtype=np.int16)


# ----------------------------------------------------------------- MAs and their validation


def authorising_parties(shard: Shard, rng: np.random.Generator) -> Process:
    """Each day, the MAs received that day and the SMSO's Validation Responses (002:L73, L78)."""
    s, env, inst, ev = shard.s, shard.env, shard.inst, shard.events
    valid = np.arange(MA_SLOTS)[None, :] < inst.ma_count[:, None]
    which, slot = np.nonzero(valid)
    received = inst.received_at[which, slot]
    order = np.argsort(received, kind="stable")
    which, slot, received = which[order], slot[order], received[order]
    head, day = 0, s.first_day
    while head < len(which) and day < s.end:
        yield env.timeout(max(0, day - env.now))
        tail = int(np.searchsorted(received, day + DAY, side="left"))
        i, k, t = which[head:tail], slot[head:tail], received[head:tail]
        head, day = tail, day + DAY
        n = len(i)
        if n == 0:
            continue
        ev.add(EV_MA_RECEIVED, i, t, slot=k)
        validated = t + np.maximum(file_latency(s, t, inst.ma_submitter[i, k], inst.group[i]), 1)
        rejected = rng.random(n) < s.rejection
        warning = ~rejected & (rng.random(n) < s.warning)
        reason = np.full(n, NONE, dtype=np.int16)
        reason[rejected] = reasons(s, "rejection", rng, int(rejected.sum()))
        reason[warning] = reasons(s, "warning", rng, int(warning.sum()))
        inst.validated_at[i, k] = validated
        inst.rejected[i, k] = rejected
        inst.validation_reason[i, k] = reason
        ok = ~rejected
        ev.add(EV_MA_VALIDATED, i[ok], validated[ok], slot=k[ok])
        ev.add(EV_MA_REJECTED, i[rejected], validated[rejected], slot=k[rejected])
        done = validated[rejected] + s.completion_latency.sample(rng, int(rejected.sum()))
        ev.add(EV_MA_COMPLETED, i[rejected], done, slot=k[rejected], status=STATUS_FAILED,
               reason=reason[rejected])


def file_latency(s: Smets1Scenario, received: np.ndarray, submitter: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The SMSO answers an MA file at once: one validation latency per file (its receipt, submitter and
    SMSO), the same in every shard that holds some of its MAs, so it is drawn from a hash of the file,
    not from a shard's stream."""
    key = (received.astype(np.uint64) << np.uint64(24)) ^ (submitter.astype(np.uint64) << np.uint64(12)) \
        ^ group.astype(np.uint64)
    u = (identifiers.splitmix64(key ^ identifiers.splitmix64(np.array([s.seed], dtype=np.uint64)))
         >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    d = s.validation_latency
    if d.distribution == "fixed":
        return np.full(len(received), d.low, dtype=np.int64)
    if d.distribution == "uniform":
        return d.low + np.floor(u * (d.high - d.low + 1)).astype(np.int64)
    return np.round(-d.low * np.log1p(-u)).astype(np.int64)


# ----------------------------------------------------------------- the Migration Control Centre


def control_centre(shard: Shard, rng: np.random.Generator) -> Process:
    """Each day at midnight, the attempts of the next Migration Day (their MCF is written today)."""
    s, env, inst = shard.s, shard.env, shard.inst
    shard.queue.schedule(np.arange(inst.n, dtype=np.int64), inst.planned_day)
    today = s.first_day
    while today + DAY < s.end:
        yield env.timeout(max(0, today - env.now))
        day = today + DAY
        batch = shard.queue.take(day)
        if len(batch):
            first = batch[inst.attempts[batch] == 0]
            batch = np.concatenate([batch[inst.attempts[batch] > 0], authorised(shard, first, today, rng)])
            batch.sort()
            attempt(shard, batch, today, rng)
        today += DAY


def complete_mas(shard: Shard, which: np.ndarray, when: np.ndarray, status: int, reason: np.ndarray,
                 mcf: np.ndarray | int = NONE, skip_rejected: bool = False) -> None:
    """MA Completion Responses for every MA of the Installations ``which`` (at ``when``, each theirs)."""
    inst = shard.inst
    rows, slot = ma_rows(inst, which)
    pos = np.searchsorted(which, rows) if len(which) else rows
    keep = ~inst.rejected[rows, slot] if skip_rejected else np.ones(len(rows), dtype=bool)
    mcf = np.broadcast_to(np.asarray(mcf), (len(which),))
    shard.events.add(EV_MA_COMPLETED, rows[keep], when[pos][keep], slot=slot[keep], status=status,
                     reason=reason[pos][keep], mcf=mcf[pos][keep])


def authorised(shard: Shard, first: np.ndarray, today: int, rng: np.random.Generator) -> np.ndarray:
    """Of the Installations due for their first attempt tomorrow, those that go ahead.

    Not used (Completion Status Warning at the end of the Migration Week): an MA of the Installation
    was rejected (its siblings are then unused), or the MAs expire unused. Not yet validated by the
    MCF's time: the attempt waits. DA group: the pre-migration validation may fail (002:L506).
    """
    s, inst, ev = shard.s, shard.inst, shard.events
    if len(first) == 0:
        return first
    first = np.sort(first)
    two = inst.ma_count[first] == 2
    vmax = np.maximum(inst.validated_at[first, 0], np.where(two, inst.validated_at[first, 1], NONE))
    any_rejected = inst.rejected[first, 0] | (two & inst.rejected[first, 1])
    not_used = ~any_rejected & (rng.random(len(first)) < s.not_used)
    unused = any_rejected | not_used
    expiry = np.maximum(inst.week[first] + 7 * DAY, vmax + 1) + s.completion_latency.sample(rng, len(first))
    if unused.any():
        which = first[unused]
        complete_mas(shard, which, expiry[unused], STATUS_WARNING, reasons(s, "not_used", rng, len(which)),
                     skip_rejected=True)
    mcf_at = today + s.mcf_time
    late = ~unused & (vmax >= mcf_at)
    if late.any():  # the MCF waits for the Validation Responses
        shard.queue.schedule(first[late], migration_day(s, ((vmax[late] - s.mcf_time) // DAY + 2) * DAY))
    go = ~unused & ~late
    da = go & (np.array(s.group_ids)[inst.group[first]] == DA_GROUP)
    fail = np.zeros(len(first), dtype=bool)
    fail[da] = rng.random(int(da.sum())) < s.da_failure
    if fail.any():
        which = first[fail]
        before = np.clip(s.da_before.sample(rng, len(which)), 1, DA_MAX_BEFORE)
        at = np.clip(today + DAY - before, vmax[fail] + 1, mcf_at - 1)
        why = reasons(s, "da", rng, len(which))
        rows, slot = ma_rows(inst, which)
        pos = np.searchsorted(which, rows)
        ev.add(EV_DA_FAILED, rows, at[pos], slot=slot, reason=why[pos])
        complete_mas(shard, which, at + s.completion_latency.sample(rng, len(which)), STATUS_FAILED, why)
    return first[go & ~fail]


def migration_day(s: Smets1Scenario, day: np.ndarray) -> np.ndarray:
    """The first Migration Day on or after each midnight ``day``: a day with a Demand Commitment for some
    supplier (the DCC migrates on the days it commits to; none after the last, the day itself)."""
    days = np.flatnonzero(s.commitments.sum(axis=0) > 0)
    if len(days) == 0:
        return day
    pos = np.searchsorted(days, (day - s.first_day) // DAY, side="left")
    later = pos >= len(days)
    return np.where(later, day, s.first_day + days[np.minimum(pos, len(days) - 1)] * DAY)


def failure(stage: Stage, inst: Installations, batch: np.ndarray) -> np.ndarray | float:
    """Each Installation's probability of failing at ``stage``: the highest of the stage's and of its
    devices' models' (``by_model``)."""
    if not stage.by_model:
        return stage.failure
    p = np.full(len(batch), stage.failure)
    for dtype, model, probability in stage.by_model:
        p = np.where(inst.model[dtype][batch] == model, np.maximum(p, probability), p)
    return p


def file_slot(t: np.ndarray, origin: int, interval: int) -> tuple[np.ndarray, np.ndarray]:
    """The first file at or after ``t`` of a party writing one every ``interval`` from ``origin``, and
    its counter (the file's number); with no interval, the instant itself and no counter."""
    if interval == 0:
        return t, np.full(len(t), NONE, dtype=np.int64)
    number = -(-(t - origin) // interval)
    return origin + number * interval, number


def next_batch(t: np.ndarray, batch_times: np.ndarray) -> np.ndarray:
    """The first Migration Group File time (a batch time of some day) at or after ``t``."""
    day = t // DAY * DAY
    pos = np.searchsorted(batch_times, t - day, side="left")
    later = pos >= len(batch_times)
    return np.where(later, day + DAY + batch_times[0], day + batch_times[np.minimum(pos, len(batch_times) - 1)])


def attempt(shard: Shard, batch: np.ndarray, today: int, rng: np.random.Generator) -> None:
    """One attempt of each Installation of ``batch`` (sorted) on tomorrow's Migration Day."""
    s, inst, ev = shard.s, shard.inst, shard.events
    n = len(batch)
    if n == 0:
        return
    day = today + DAY
    inst.attempts[batch] += 1
    a = inst.attempts[batch]
    mcf_at = today + s.mcf_time
    mcf = (today - s.first_day) // DAY + 1  # the Requesting Party's daily MCF, numbered from the period's start
    ev.add(EV_MCF, batch, mcf_at, attempt=a, mcf=mcf)  # the Requesting Party: the group's
    # Migration Common Validation File
    mcvf_at, _ = file_slot(mcf_at + np.maximum(s.mcvf.latency.sample(rng, n), 1), s.first_day, s.mcvf.interval)
    mcvf_fail = rng.random(n) < failure(s.mcvf, inst, batch)
    # Migration Group (Encrypted) File: the attempt commences (002:L200)
    chosen = s.batch_times[rng.integers(0, len(s.batch_times), size=n)]
    commenced = next_batch(np.maximum(day + chosen, mcvf_at + 1), s.batch_times)
    # S1SP Commissioning File, then (DCC-commissioned) the Commissioning Outcome File
    cf_at, cf_counter = file_slot(commenced + np.maximum(s.s1sp.latency.sample(rng, n), 1), s.first_day,
                                  s.s1sp.interval)
    s1sp_fail = rng.random(n) < failure(s.s1sp, inst, batch)
    cof_at, cof_counter = file_slot(cf_at + np.maximum(s.cof.latency.sample(rng, n), 1), s.first_day,
                                    s.cof.interval)
    cof_fail = rng.random(n) < failure(s.cof, inst, batch)
    dcc = inst.dcc_commissioned[batch]
    s1sp = s.group_s1sp[inst.group[batch]]
    completion = s.completion_latency.sample(rng, n)
    why = np.full(n, NONE, dtype=np.int16)
    why[mcvf_fail] = reasons(s, "mcvf", rng, int(mcvf_fail.sum()))
    stage_fail = ~mcvf_fail & s1sp_fail
    why[stage_fail] = reasons(s, "s1sp", rng, int(stage_fail.sum()))
    cof_failed = ~mcvf_fail & ~s1sp_fail & dcc & cof_fail
    why[cof_failed] = reasons(s, "cof", rng, int(cof_failed.sum()))
    jitter = (rng.integers(-s.retry_jitter, s.retry_jitter, size=n, endpoint=True) if s.retry_jitter
              else np.zeros(n, dtype=np.int64))

    # MCVF failure: the attempt ends before it commences; the MAs complete Failed (004:L117)
    m = mcvf_fail
    ev.add(EV_MCVF_FAILED, batch[m], mcvf_at[m], attempt=a[m], mcf=mcf)
    complete_mas(shard, batch[m], mcvf_at[m] + completion[m], STATUS_FAILED, why[m], mcf=mcf)
    go = ~mcvf_fail
    ev.add(EV_COMMENCED, batch[go], commenced[go], attempt=a[go], mcf=mcf, commenced=commenced[go])
    # S1SP Commissioning File: failure (whatever ToBeCommissionedByDCC, 002:L288), success, or pending COF
    f1 = go & s1sp_fail
    done_s1sp = go & ~s1sp_fail & ~dcc
    pending = go & ~s1sp_fail & dcc
    f2 = pending & cof_fail
    done_cof = pending & ~cof_fail

    def attempt_event(etype: int, m: np.ndarray, at: np.ndarray, party: np.ndarray | int, counter: np.ndarray) -> None:
        """An outcome file's record: its time, the reporting party and that party's file counter."""
        ev.add(etype, batch[m], at[m], attempt=a[m], commenced=commenced[m], mcf=mcf, cf_at=cf_at[m],
               rcounter=counter[m], rparty=np.broadcast_to(party, (n,))[m])

    attempt_event(EV_FAILED, f1, cf_at, s1sp, cf_counter)
    attempt_event(EV_COMPLETED, done_s1sp, cf_at, s1sp, cf_counter)
    attempt_event(EV_S1SP_COMMISSIONED, pending, cf_at, s1sp, cf_counter)
    rows, slot = ma_rows(inst, batch[pending])
    pos = np.searchsorted(batch, rows)
    ev.add(EV_MA_IN_PROGRESS, rows, cf_at[pos], slot=slot, status=STATUS_IN_PROGRESS, mcf=mcf)
    attempt_event(EV_FAILED, f2, cof_at, s.commissioning_party, cof_counter)
    attempt_event(EV_COMPLETED, done_cof, cof_at, s.commissioning_party, cof_counter)
    # successes: the MAs complete at the migration's instant (004:L115)
    success = done_s1sp | done_cof
    success_at = np.where(done_cof, cof_at, cf_at)
    complete_mas(shard, batch[success], success_at[success], STATUS_SUCCESS, why[success], mcf=mcf)
    # failed migrations: again after the retry interval, or the MAs complete Failed
    failed = f1 | f2
    fail_at = np.where(f2, cof_at, cf_at)
    again = failed & (a < s.max_attempts)
    retry = migration_day(s, np.maximum((fail_at + s.retry_interval + jitter) // DAY, fail_at // DAY + 2) * DAY)
    shard.queue.schedule(batch[again], retry[again])
    last = failed & ~again
    complete_mas(shard, batch[last], fail_at[last] + completion[last], STATUS_FAILED, why[last], mcf=mcf)
