"""The event-log contract has one home, emrr/contract.py (issue 8 deliverable 4; docs/event-log.md).

Both sides read it: the simulator writes the tables and event types it names, the report engine
requires no table it lacks, and the handwritten logs use its event types. A table or event type
added on one side only breaks a test here rather than a run.
"""

from __future__ import annotations

from emrr import contract
from emrr.conformance import handlog
from emrr.rules import eventlog as rules_eventlog


def table_name(path) -> str:
    return path.name.removesuffix(".parquet")


def test_the_engine_reads_only_tables_of_the_contract():
    assert set(rules_eventlog.REQUIRED) | set(rules_eventlog.OPTIONAL) <= set(contract.TABLES)


def test_the_simulator_writes_every_table_of_the_contract(simulated):
    log = simulated("demo")
    written = {table_name(p) for p in log.path.iterdir() if p.is_dir() or p.suffix == ".parquet"}
    assert written == set(contract.TABLES)


def test_the_simulator_writes_only_event_types_of_the_contract(simulated):
    log = simulated("demo")
    assert set(log.events.column("event_type").to_pylist()) <= set(contract.EVENT_TYPES)


def test_the_hand_built_logs_write_every_table_of_the_contract(tmp_path):
    """conformance/logs/*.yaml, written as Parquet by handlog.build: the same tables as the simulator's."""
    assert set(handlog.SCHEMAS) == set(contract.TABLES)
