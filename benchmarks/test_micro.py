"""Micro-benchmarks (pytest-benchmark): scenario and ruleset loading, one report's files from a
small log, and one file's check, per report (issue 8, deliverable 10).

Run with ``.venv/bin/python -m pytest benchmarks/ --benchmark-only``; save a run with
``--benchmark-autosave`` and compare a later one with ``--benchmark-compare`` (benchmarks/README.md).
Kept out of the test run: ``pytest`` from the checkout root collects only tests/.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from emrr.conformance.checker import check
from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.sim import scenario

ROOT = Path(__file__).resolve().parent.parent
#: The reports, from the ruleset itself (a report added as data is benchmarked too).
REPORT_IDS = sorted(rules.load(None).reports)


def test_scenario_load_national(benchmark) -> None:
    """Loading and resolving scenarios/national.yaml (schema validation included)."""
    loaded = benchmark(scenario.load, ROOT / "scenarios" / "national.yaml")
    assert loaded.name == "national"


def test_ruleset_load(benchmark) -> None:
    """Loading the default ruleset (every report's YAML, schema validation included)."""
    loaded = benchmark(rules.load, None)
    assert sorted(loaded.reports) == REPORT_IDS


@pytest.mark.parametrize("report_id", REPORT_IDS)
def test_report_one(benchmark, report_id: str, ruleset: rules.Ruleset, demo_log: Path, tmp_path: Path) -> None:
    """The engine writing one report's files for the demo log (a ruleset holding that report
    alone; the log opened and indexed each round, as `emrr report` does)."""
    one = dataclasses.replace(ruleset, reports={report_id: ruleset.reports[report_id]})
    fresh = (tmp_path / f"out-{n}" for n in itertools.count())  # the engine writes into a new folder

    def setup():
        return (demo_log, next(fresh), one), {"progress": False}

    summary = benchmark.pedantic(engine.report, setup=setup, rounds=5, warmup_rounds=1)
    assert set(summary.per_report) == {report_id} and summary.per_report[report_id].files > 0


@pytest.mark.parametrize("report_id", REPORT_IDS)
def test_check_one_file(benchmark, report_id: str, ruleset: rules.Ruleset, one_file_each: dict[str, Path]) -> None:
    """The checker on the demo output's largest file of one report (ruleset loaded beforehand)."""
    verdict = benchmark(check, one_file_each[report_id], ruleset)
    assert verdict.files == 1 and verdict.errors == 0, verdict.totals
