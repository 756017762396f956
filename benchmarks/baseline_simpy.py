"""Naive baseline: the ECoS migration as one SimPy process per device.

This is the "obvious first implementation" that the real simulator is
benchmarked against.  Every device is a SimPy process that waits to be
selected into a batch by a migration-control process, runs a certificate
replacement session (one try, then retries at growing intervals until it
succeeds or the session times out), logs the attempt as a Python tuple,
and, on failure, waits about 30 days before queueing for its next attempt,
up to a maximum number of attempts.  Nothing happens after a success.

Randomness comes from a single ``random.Random(seed)``; SimPy's event order
is deterministic, so a run is reproducible for a given seed.

Time unit: minutes from Monday 00:00 of day 0.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

try:  # Unix only; used for the peak-RSS figure.
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

MINUTES_PER_DAY = 1440

#: Daily capacity, Monday..Sunday (about 26,000 a week: 200k devices are
#: all first-attempted in about 54 days).
DAILY_CAPACITY: tuple[int, ...] = (4000, 4000, 4000, 4000, 4000, 3000, 3000)
#: Batch start times, minutes after midnight (01:00 and 13:00).
BATCH_START_MINUTES: tuple[int, ...] = (60, 780)
#: Cumulative offsets (minutes) of the tries within one session.
TRY_OFFSETS_MINUTES: tuple[int, ...] = (0, 5, 15, 35, 75, 155)
#: A session that has not succeeded by this time (minutes) has failed.
SESSION_TIMEOUT_MINUTES = 240
#: Probability that a whole session succeeds.
SESSION_SUCCESS_PROBABILITY = 0.9
#: Delay before a failed device is queued for its next attempt.
RETRY_WAIT_MINUTES = 30 * MINUTES_PER_DAY
MAX_ATTEMPTS = 5

DEVICE_TYPES: tuple[str, ...] = ("ESME", "GSME", "GPF")
DEVICE_TYPE_WEIGHTS: tuple[float, ...] = (0.45, 0.30, 0.25)
ERROR_CODES: tuple[str, ...] = (
    "NO_RESPONSE",
    "COMMS_HUB_OFFLINE",
    "CERTIFICATE_REJECTED",
    "WAN_UNAVAILABLE",
    "OTHER",
)
ERROR_WEIGHTS: tuple[float, ...] = (0.45, 0.25, 0.15, 0.10, 0.05)

#: One attempt: (device_id, device_type, attempt_no, start_min, end_min,
#: succeeded, error_code or None, tries).
AttemptRecord = tuple[int, str, int, float, float, bool, "str | None", int]


def per_try_success_probability(
    session_probability: float = SESSION_SUCCESS_PROBABILITY,
    tries: int = len(TRY_OFFSETS_MINUTES),
) -> float:
    """Per-try success so that ``tries`` independent tries give ``session_probability``."""
    return 1.0 - (1.0 - session_probability) ** (1.0 / tries)


def batch_quota(day: int, batch: int) -> int:
    """Devices that may start in batch ``batch`` of ``day`` (remainder goes to batch 0)."""
    daily = DAILY_CAPACITY[day % 7]
    n_batches = len(BATCH_START_MINUTES)
    share = daily // n_batches
    return share + (daily - share * n_batches if batch == 0 else 0)


def migration_control(
    env: simpy.Environment, waiting: deque[simpy.Event]
) -> Generator[simpy.Event, Any, None]:
    """At each batch start, release up to the batch quota of queued devices (FIFO)."""
    day = 0
    while True:
        for batch, minute in enumerate(BATCH_START_MINUTES):
            yield env.timeout(day * MINUTES_PER_DAY + minute - env.now)
            quota = batch_quota(day, batch)
            while quota and waiting:
                waiting.popleft().succeed()
                quota -= 1
        day += 1


def device(
    env: simpy.Environment,
    device_id: int,
    device_type: str,
    waiting: deque[simpy.Event],
    rng: random.Random,
    p_try: float,
    log: list[AttemptRecord],
) -> Generator[simpy.Event, Any, None]:
    """Lifecycle of one device: queue, session with retries, log, wait, repeat."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        selected = env.event()
        waiting.append(selected)
        yield selected
        start = env.now
        succeeded = False
        error_code = None
        tries = 0
        previous_offset = 0
        for offset in TRY_OFFSETS_MINUTES:
            yield env.timeout(offset - previous_offset)
            previous_offset = offset
            tries += 1
            if rng.random() < p_try:
                succeeded = True
                break
        if not succeeded:
            yield env.timeout(SESSION_TIMEOUT_MINUTES - previous_offset)
            error_code = rng.choices(ERROR_CODES, weights=ERROR_WEIGHTS)[0]
        log.append((device_id, device_type, attempt, start, env.now, succeeded, error_code, tries))
        if succeeded:
            return
        yield env.timeout(RETRY_WAIT_MINUTES)


def _peak_rss_bytes() -> int | None:
    """Peak RSS of this process so far (Linux reports ru_maxrss in KiB)."""
    if resource is None:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_baseline(n_devices: int = 200_000, seed: int = 1, days: int = 365) -> dict:
    """Run the one-process-per-device model for ``days`` and return its figures."""
    started = time.perf_counter()
    rng = random.Random(seed)
    env = simpy.Environment()
    waiting: deque[simpy.Event] = deque()
    log: list[AttemptRecord] = []
    p_try = per_try_success_probability()
    types = rng.choices(DEVICE_TYPES, weights=DEVICE_TYPE_WEIGHTS, k=n_devices)
    env.process(migration_control(env, waiting))
    for device_id in range(n_devices):
        env.process(device(env, device_id, types[device_id], waiting, rng, p_try, log))
    env.run(until=days * MINUTES_PER_DAY)
    wall = time.perf_counter() - started
    successes = sum(1 for record in log if record[5])
    return {
        "devices": n_devices,
        "attempts": len(log),
        "successes": successes,
        "wall_seconds": wall,
        "devices_per_second": n_devices / wall if wall > 0 else None,
        "seed": seed,
        "days": days,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


if __name__ == "__main__":
    print(json.dumps(run_baseline(), indent=2))
