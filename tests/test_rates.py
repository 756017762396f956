"""Observed rates against the configured ones, within stated tolerances.

Tolerance: 4 standard deviations of the binomial/Poisson count (a false alarm about once in
16,000 runs for a given seed; the seeds are fixed, so the tests are deterministic).
"""

from __future__ import annotations

import math

from tests.conftest import EventLog, merge, scenario_dict, simulate_dict

SIGMAS = 4.0


def within(observed: float, expected: float, variance: float) -> bool:
    return abs(observed - expected) <= SIGMAS * math.sqrt(variance) + 1e-9


def test_first_attempt_failure_rate_by_device_type_matches_success_probability(simulated):
    """Session success probability by device type and model (migration.success_probability)."""
    log = simulated("demo")
    s = log.scenario
    first = log.rows(where=lambda r: r["event_type"] in ("migration_success", "migration_failure")
                     and not r["duplicate"] and r["attempt_number"] == 1)
    groups: dict[str, list[int]] = {}
    sp = s.raw["migration"]["success_probability"]
    non_migratable = {(r["device_type"], r["manufacturer"], r["model"], r["firmware_version"])
                      for r in log.rows("non_migratable")}
    for r in first:
        if (r["device_type"], r["manufacturer"], r["model"], r["firmware_version"]) in non_migratable:
            continue  # attempted before classification: success_probability_before applies
        model_key = f"{r['manufacturer']}/{r['model']}"
        p = sp.get("by_model", {}).get(model_key, sp.get("by_device_type", {}).get(r["device_type"], sp["default"]))
        groups.setdefault(p, []).append(r["event_type"] == "migration_failure")
    assert len(groups) >= 3
    for p, failed in groups.items():
        n = len(failed)
        assert n > 500
        assert within(sum(failed), n * (1 - p), n * p * (1 - p)), (p, n, sum(failed))


def test_error_codes_follow_their_weights(simulated):
    """The synthetic EMEHRA error table: each code/sub-code drawn in proportion to its weight."""
    log = simulated("demo")
    s = log.scenario
    failures = log.rows(where=lambda r: r["event_type"] == "migration_failure" and not r["duplicate"])
    n = len(failures)
    for code, sub, w in zip(s.error_codes, s.error_sub_codes, s.error_weights):
        k = sum(1 for r in failures if r["error_code"] == code and r["error_sub_code"] == int(sub))
        assert within(k, n * w, n * w * (1 - w)), (code, sub, k, n * w)


def test_change_of_supplier_rates_match_the_configured_yearly_rates(tmp_path):
    """change_of_supplier: electricity and gas switches per premises-year, and their correlation."""
    data = merge(scenario_dict("heavy_switching"), {"population": {"premises": 6000}, "installs": {"per_day": 0}})
    log = EventLog(tmp_path / "log", simulate_dict(data, tmp_path / "log"))
    cos = data["change_of_supplier"]
    years = 92 / 365  # 2023-07-01 to 2023-10-01
    premises = log.rows("premises")
    n_elec = sum(p["has_electricity"] for p in premises)
    n_gas = sum(p["has_gas"] for p in premises)
    n_dual = sum(p["has_gas"] and p["has_electricity"] for p in premises)
    changes = log.rows("supply_changes")
    elec = [c for c in changes if c["fuel"] == "electricity"]
    gas = [c for c in changes if c["fuel"] == "gas"]
    expected_e = cos["electricity_rate_per_year"] * years * n_elec
    assert within(len(elec), expected_e, expected_e), (len(elec), expected_e)
    # Gas: switched with electricity (correlation) at dual-fuel premises, or alone.
    alone = max(0.0, cos["gas_rate_per_year"] - cos["dual_fuel_correlation"] * cos["electricity_rate_per_year"])
    expected_g = (cos["dual_fuel_correlation"] * cos["electricity_rate_per_year"] * n_dual + alone * n_gas) * years
    assert within(len(gas), expected_g, expected_g), (len(gas), expected_g)
    together = ({(c["premise_index"], c["occurred_at"]) for c in elec}
                & {(c["premise_index"], c["occurred_at"]) for c in gas})
    expected_t = cos["dual_fuel_correlation"] * len(elec) * n_dual / n_elec
    assert within(len(together), expected_t, expected_t), (len(together), expected_t)
    # Nobody switches to the supplier they already have.
    assert all(c["losing_supplier"] != c["gaining_supplier"] for c in changes)


def test_installs_per_day_match_the_configured_rate(simulated):
    log = simulated("demo")
    new = [p for p in log.rows("premises") if p["installed_at"] is not None]
    expected = log.scenario.installs_per_day * 92
    assert within(len(new), expected, expected)


def test_switches_reproduce_the_configured_supplier_mix(tmp_path):
    """change_of_supplier.mix (FACTS.md June 2024: large->large 59%, large->other 21%, ...): the
    share of switches in each from/to group pair matches its weight."""
    data = merge(scenario_dict("heavy_switching"), {"population": {"premises": 8000}, "installs": {"per_day": 0}})
    log = EventLog(tmp_path / "log", simulate_dict(data, tmp_path / "log"))
    group = {s["party_id"]: s.get("group", "other") for s in data["suppliers"]}
    changes = log.rows("supply_changes")
    n = len(changes)
    assert n > 1000
    weights = {(r["from"], r["to"]): r["weight"] for r in data["change_of_supplier"]["mix"]}
    total = sum(weights.values())
    for (src, dst), w in weights.items():
        k = sum(1 for c in changes if group[c["losing_supplier"]] == src and group[c["gaining_supplier"]] == dst)
        p = w / total
        assert within(k, n * p, n * p * (1 - p)), ((src, dst), k, n * p)
