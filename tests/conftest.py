"""Shared fixtures: small scenarios simulated once per test session, read back as Arrow tables."""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from emrr.sim import run, scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def scenario_dict(name: str) -> dict:
    return yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base`` (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def simulate_dict(data: dict, out: Path, workers: int = 1) -> run.Summary:
    text = yaml.safe_dump(data, sort_keys=False)
    scen = scenario.loads(text, where=f"{data.get('name', 'test')}.yaml")
    return run.simulate(scen, out, workers=workers, progress=False)


class EventLog:
    """An event log read back: tables as Python-friendly columns."""

    def __init__(self, path: Path, summary: run.Summary | None = None):
        self.path = path
        self.summary = summary
        self.events = pq.read_table(path / "events")
        self.devices = pq.read_table(path / "devices")
        self.premises = pq.read_table(path / "premises")
        self.supply_changes = pq.read_table(path / "supply_changes")
        self.non_migratable = pq.read_table(path / "non_migratable.parquet")
        self.outages = pq.read_table(path / "outages.parquet")
        file = SCENARIOS / f"{summary.scenario}.yaml" if summary else None
        self.scenario = scenario.load(file) if file is not None and file.exists() else None

    def rows(self, table: str = "events", where=None) -> list[dict]:
        data = getattr(self, table).to_pylist()
        return [r for r in data if where is None or where(r)]


_CACHE: dict[str, EventLog] = {}


@pytest.fixture(scope="session")
def golden_log(tmp_path_factory) -> Path:
    """The golden event log (conformance/logs/reference.yaml) as Parquet, built once per session:
    tests/golden/expected holds the engine's answer to it."""
    from tests.golden import build

    return build(tmp_path_factory.mktemp("golden-log") / "log")


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """simulated(name) -> EventLog of scenarios/<name>.yaml, simulated once per session."""

    def get(name: str) -> EventLog:
        if name not in _CACHE:
            out = tmp_path_factory.mktemp(name) / "log"
            scen = scenario.load(SCENARIOS / f"{name}.yaml")
            summary = run.simulate(scen, out, workers=1, progress=False)
            log = EventLog(out, summary)
            log.scenario = scen
            _CACHE[name] = log
        return _CACHE[name]

    return get


# Hypothesis: in CI, the same examples every run (a red CI must be reproducible); locally,
# fresh random examples each run. HYPOTHESIS_PROFILE=dev|ci overrides.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def smets1_log(tmp_path_factory) -> Path:
    """scenarios/smets1.yaml (the SMETS1 regime) simulated once per session: its event log folder."""
    from emrr.sim import regime

    out = tmp_path_factory.mktemp("smets1") / "log"
    regime.simulate(regime.load(SCENARIOS / "smets1.yaml"), out, progress=False)
    return out


@pytest.fixture(scope="session")
def smets1_reports(smets1_log, tmp_path_factory):
    """smets1_reports(ruleset) -> the folder of that SMETS1 ruleset's reports of ``smets1_log``,
    written once per session by the reference engine."""
    from emrr.rules import engine, ruleset

    made: dict[str, Path] = {}

    def get(name: str = "smets1-mrr-v3.0") -> Path:
        if name not in made:
            out = tmp_path_factory.mktemp(name) / "reports"
            engine.report(smets1_log, out, ruleset.load(name), progress=False)
            made[name] = out
        return made[name]

    return get
