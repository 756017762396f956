"""The simulator's random streams, all in one place: one independent stream per (seed, shard, actor).

Each actor draws only from its own stream, so that what one actor draws never shifts what
another draws, and a shard's result does not depend on how many worker processes run the
shards. The numbers below seed the streams: they are part of the output's identity (changing
one changes every event log made with it), so they never change and a new actor takes a new
number.
"""

from __future__ import annotations

import numpy as np

from emrr.sim.identifiers import splitmix64

# Per shard (seeded with [seed, shard, stream]).
POPULATION = 0  # premises, fuels, suppliers, device models, install times
BATCH = 1  # the control centre's selection order and pre-validation skips
SESSION = 2  # the Service Provider's sessions and the further-attempt jitter
CHANGE_OF_SUPPLIER = 3
INSTALLS = 4  # reserved: the installs actor draws nothing (the population stream times installs)
FIRMWARE = 5  # one per campaign: [seed, shard, FIRMWARE, campaign number]
NOTIFY = 6  # when the reporting system learns of each event (the event log writer)
IDS = 7  # MPAN distributor and profile digits (the event log writer)

CONDITIONS = 8  # hubs' and devices' conditions (migration.outcomes), drawn with the population
OUTCOMES = 9  # the attempts' outcomes and repairs under migration.outcomes
INSTALL_CREDENTIALS = 10  # which new premises are installed with TCoS credentials

# Per run (seeded with [seed, stream]): far from the shard numbers, which count from 0.
OUTAGES = 1_000_003
SIGNATURES = 1_000_004  # each combination's error signature (migration.outcomes)
PACE = 1_000_005  # each day's capacity variation: one national draw, the same for every shard
# Hashed draws (hashed_uniform): one value per (hub, day), whichever batch or shard asks.
HUB_DAY = 1_000_006
FIRMWARE_FIX = 1_000_007  # whether an upgrade fixes a faulty device: one value per (device, upgrade time)
SESSION_START = 1_000_008  # with selection by hub, when a hub's sessions of a batch start: one per (hub, batch)


def for_shard(seed: int, shard: int, stream: int, *more: int) -> np.random.Generator:
    """The stream ``stream`` of shard ``shard`` (``more`` numbers one of several, e.g. a campaign)."""
    return np.random.default_rng([seed, shard, stream, *more])


def for_run(seed: int, stream: int) -> np.random.Generator:
    """A stream of the whole run, not of one shard (report outages)."""
    return np.random.default_rng([seed, stream])


def hashed_uniform(seed: int, stream: int, a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) values that depend only on (seed, stream, a, b): the same draw wherever it is
    asked for (e.g. whether a hub is reachable on a day, for each of its devices attempted that day)."""
    with np.errstate(over="ignore"):
        key = (np.asarray(a, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
               ^ np.asarray(b, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
        z = key ^ splitmix64(np.uint64(seed % (1 << 64)) ^ np.uint64(stream))
        return (splitmix64(z) >> np.uint64(11)).astype(np.float64) / float(1 << 53)

