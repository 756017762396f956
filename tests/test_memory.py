"""emrr/memory.py: the command line's allocator settings (keep_freed_polars_memory)."""

from __future__ import annotations

import os
import subprocess
import sys

from emrr import memory

PROBE = ("import os, sys; from emrr import memory; took = memory.keep_freed_polars_memory(); "
         "print(took, os.environ.get(memory.JEMALLOC_SETTINGS))")


def _probe(env_value: str | None, before: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if k != memory.JEMALLOC_SETTINGS}
    if env_value is not None:
        env[memory.JEMALLOC_SETTINGS] = env_value
    out = subprocess.run([sys.executable, "-c", before + PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_settings_given_to_polars_before_it_loads():
    """Protects: the report engine's allocator settings reach jemalloc (it reads them once, at load)."""
    assert _probe(None) == f"True {memory.KEEP_FREED_PAGES}"


def test_a_users_settings_are_kept():
    """Protects: a user's own _RJEM_MALLOC_CONF is never overwritten."""
    assert _probe("narenas:1") == "False narenas:1"


def test_nothing_claimed_once_polars_is_loaded():
    """Protects: no claim of an effect that cannot happen (Polars already loaded with other settings)."""
    assert _probe(None, before="import polars; ").startswith("False ")


def test_the_command_line_asks_first():
    """Protects: `emrr` sets them before any command imports Polars (emrr.cli.main's first step)."""
    code = ("import sys; from emrr import cli, memory; import os\n"
            "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get(memory.JEMALLOC_SETTINGS))")
    env = {k: v for k, v in os.environ.items() if k != memory.JEMALLOC_SETTINGS}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == memory.KEEP_FREED_PAGES
