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


def file(report_id: str, recipient: str, sequence: int) -> str:
    """The golden file of (report, recipient, sequence number), relative to ``EXPECTED``: tests
    name the files they edit by what they are, not by restating their names."""
    found = sorted(p.relative_to(EXPECTED).as_posix()
                   for p in EXPECTED.glob(f"{recipient}/{report_id}_{recipient}_{sequence}_*.csv"))
    if len(found) != 1:
        raise KeyError(f"no single golden file of {report_id} for {recipient} numbered {sequence}: {found}")
    return found[0]
