"""The golden report files: ``expected/`` holds, byte for byte, every report file the engine must
make from the golden event log, ``conformance/logs/reference.yaml`` (the parser corpus's reference
log too; conformance/handlog.py)."""

from __future__ import annotations

from pathlib import Path

from emrr.conformance import handlog

EXPECTED = Path(__file__).parent / "expected"


def build(root: Path) -> Path:
    """Write the golden event log as an event-log folder (docs/event-log.md) at ``root``."""
    return handlog.build(handlog.load("reference"), root)
