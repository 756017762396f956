"""A scenario's regime decides which simulator runs it: ``regime:`` absent (or ``ecos``) is the ECoS
migration (``emrr.sim.scenario``, ``emrr.sim.run``), ``smets1`` the SMETS1 migration
(``emrr.sim.smets1_scenario``, ``emrr.sim.smets1_run``). ``emrr simulate`` and ``emrr run`` load and
simulate through here."""

from __future__ import annotations

from pathlib import Path

from emrr import yamlio
from emrr.contract import ECOS, REGIMES, SMETS1
from emrr.sim import run, scenario, smets1_run, smets1_scenario


def load(path: str | Path, seed: int | None = None) -> scenario.Scenario | smets1_scenario.Smets1Scenario:
    """Read, validate and resolve a scenario of either regime; ``seed`` overrides the file's seed."""
    where = str(path)
    text = yamlio.read_text(path, "a scenario YAML file")
    data, lines = yamlio.loads(text, where)
    regime = data.get("regime", ECOS) if isinstance(data, dict) else ECOS
    if regime == SMETS1:
        return smets1_scenario.from_data(data, lines, where, seed)
    if regime not in REGIMES:
        raise yamlio.error_at(where, lines, ("regime",), f"expected one of {', '.join(REGIMES)} (absent: {ECOS}); "
                              f"got {regime!r}")
    return scenario.loads(text, where, seed=seed)


def simulate(scen, out: str | Path, workers: int = 1, progress: bool | None = None):
    """Simulate a loaded scenario of either regime into the event log folder ``out``; its summary."""
    if isinstance(scen, smets1_scenario.Smets1Scenario):
        return smets1_run.simulate(scen, out, workers=workers, progress=progress)
    return run.simulate(scen, out, workers=workers, progress=progress)
