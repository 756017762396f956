"""The simulator's random streams, all in one place: one independent stream per (seed, shard, actor).

Each actor draws only from its own stream, so that what one actor draws never shifts what
another draws, and a shard's result does not depend on how many worker processes run the
shards. The numbers below seed the streams: they are part of the output's identity (changing
one changes every event log made with it), so they never change and a new actor takes a new
number.
"""

from __future__ import annotations

import numpy as np

# Per shard (seeded with [seed, shard, stream]).
POPULATION = 0  # premises, fuels, suppliers, device models, install times
BATCH = 1  # the control centre's selection order and pre-validation skips
SESSION = 2  # the Service Provider's sessions and the further-attempt jitter
CHANGE_OF_SUPPLIER = 3
INSTALLS = 4  # reserved: the installs actor draws nothing (the population stream times installs)
FIRMWARE = 5  # one per campaign: [seed, shard, FIRMWARE, campaign number]
NOTIFY = 6  # when the reporting system learns of each event (the event log writer)
IDS = 7  # MPAN distributor and profile digits (the event log writer)

# Per run (seeded with [seed, stream]): far from the shard numbers, which count from 0.
OUTAGES = 1_000_003


def for_shard(seed: int, shard: int, stream: int, *more: int) -> np.random.Generator:
    """The stream ``stream`` of shard ``shard`` (``more`` numbers one of several, e.g. a campaign)."""
    return np.random.default_rng([seed, shard, stream, *more])


def for_run(seed: int, stream: int) -> np.random.Generator:
    """A stream of the whole run, not of one shard (report outages)."""
    return np.random.default_rng([seed, stream])
