"""Memory tuning for the long runs of the command line (``emrr check``, ``emrr report``).

The checker reads tens of thousands of files one after another, and each one briefly needs
buffers of a few megabytes (its bytes, the positions of its fields). With glibc's default
settings, a buffer that large is taken from the operating system with ``mmap`` and given back
when freed, so every file pays again for fresh pages: on the 2-core reference machine that is a
third of the time spent on a 27,000-record file (measured with ``benchmarks/bench_check.py``).
``keep_freed_memory`` asks glibc (``mallopt``) to serve buffers below 64 MB from its heap and
to keep up to 128 MB of what is freed for the next file. The cost is memory held a little
longer: the national check peaked at 2.36 GB with it against 2.12 GB without (both well under
the 3 GB target), while it ran 15 % faster and the one-file check a third faster.

``keep_freed_polars_memory`` does the same for Polars' own allocator (jemalloc, which reads its
settings from ``_RJEM_MALLOC_CONF`` once, when Polars is loaded): pages freed are kept 2 seconds
for the next allocation instead of being given back after 0.5-1 s (the settings Polars itself puts
before ours, to hold less memory: pola-rs/polars#18088; the later value wins). The report engine
frees and allocates again hundreds of megabytes at every step: without it a step of S1MIG-001
spent 0.4-0.6 s of system time mapping fresh pages (130,000-320,000 page faults) for 1.1 s of its
own work. On the national SMETS1 report (``--workers 2``) system time fell from 74 s to 41-59 s;
pages kept 5 s saved a little more but the run then held 2.8-3.1 GB at its peak (over the 3 GB
target once), against 2.35 GB with 2 s. A value the user set is kept.

They change the whole process, so the library (``conformance.check``, the engine) never calls them:
the command line does, and the benchmarks do for the same reason. Elsewhere than glibc
``keep_freed_memory`` does nothing; ``keep_freed_polars_memory`` only when Polars is not loaded yet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20  # allocations below this come from the heap
TRIM_THRESHOLD = 128 << 20  # free memory at the top of the heap kept up to this
JEMALLOC_SETTINGS = "_RJEM_MALLOC_CONF"  # Polars' jemalloc (the tikv-jemallocator build's prefix)
KEEP_FREED_PAGES = "dirty_decay_ms:2000,muzzy_decay_ms:2000"  # freed pages kept 2 s, then given back


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def keep_freed_polars_memory() -> bool:
    """Ask Polars' jemalloc to keep freed pages (the module docstring); True when Polars will load with
    these settings. Only before Polars is imported: jemalloc reads them once."""
    if "polars" in sys.modules:
        return os.environ.get(JEMALLOC_SETTINGS, "").endswith(KEEP_FREED_PAGES)
    os.environ.setdefault(JEMALLOC_SETTINGS, KEEP_FREED_PAGES)
    return os.environ[JEMALLOC_SETTINGS] == KEEP_FREED_PAGES
