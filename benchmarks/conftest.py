"""Fixtures of the micro-benchmarks (benchmarks/test_micro.py), and where their saved runs go.

Not part of the test run: ``pytest`` from the checkout root collects only tests/ (pyproject's
``testpaths``); run these with ``python -m pytest benchmarks/ --benchmark-only``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.sim import run, scenario

ROOT = Path(__file__).resolve().parent.parent
#: Where --benchmark-save/--benchmark-autosave keep runs and --benchmark-compare finds them, unless
#: --benchmark-storage says otherwise (pytest-benchmark's default, ./.benchmarks, would depend on
#: the folder pytest is started from). Git ignores it: the runs are of one machine.
STORAGE = ROOT / "benchmarks" / ".benchmarks"
DEMO = ROOT / "scenarios" / "demo.yaml"


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own pytest_configure reads the option
def pytest_configure(config: pytest.Config) -> None:
    """Keep saved benchmark runs in benchmarks/.benchmarks unless --benchmark-storage is given."""
    if config.getoption("benchmark_storage", None) == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{STORAGE}"


@pytest.fixture(scope="session")
def ruleset() -> rules.Ruleset:
    """The default ruleset (the revised EMRR), loaded once."""
    return rules.load(None)


@pytest.fixture(scope="session")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario's event log, simulated once (one worker)."""
    out = tmp_path_factory.mktemp("demo") / "events"
    run.simulate(scenario.load(DEMO), out, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_reports(demo_log: Path, ruleset: rules.Ruleset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report engine's files for the demo log, written once."""
    out = tmp_path_factory.mktemp("demo") / "reports"
    engine.report(demo_log, out, ruleset, progress=False)
    return out


@pytest.fixture(scope="session")
def one_file_each(demo_reports: Path, ruleset: rules.Ruleset,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """For each report of the ruleset with a file in the demo output, a folder holding its
    largest file alone (under its recipient's folder, as the checker expects): id -> folder."""
    folders: dict[str, Path] = {}
    for report_id in ruleset.reports:
        files = sorted(demo_reports.rglob(f"{report_id}_*.csv"))
        if not files:
            continue
        path = max(files, key=lambda p: (p.stat().st_size, p.name))
        folder = tmp_path_factory.mktemp(report_id)
        (folder / path.parent.name).mkdir()
        shutil.copyfile(path, folder / path.parent.name / path.name)
        folders[report_id] = folder
    return folders
