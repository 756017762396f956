"""The domain rules the simulator must honour (issue 2, item 3), checked on the event log itself.

Each test names the rule and the clause it protects; all run on small shipped scenarios.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import mpan
import pytest

from emrr.sim.identifiers import mprn_is_valid

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
ATTEMPTS = ("migration_success", "migration_failure")


def attempts_by_device(log) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for r in log.rows(where=lambda r: r["event_type"] in ATTEMPTS and not r["duplicate"]):
        out[r["device_index"]].append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["session_started_at"])
    return out


def as_instant(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("name", ["demo", "firmware_fix"])
def test_no_attempt_on_a_non_migratable_combination_after_its_classification(simulated, name):
    """ETMAD/spec/003 §34, EMRR App. A ECOSMIG-004: Non-Migratable combinations are not attempted."""
    log = simulated(name)
    classified = {(r["device_type"], r["manufacturer"], r["model"], r["firmware_version"]): r["classified_at"]
                  for r in log.rows("non_migratable")}
    assert classified, "the scenario must declare a Non-Migratable combination"
    checked = 0
    for r in log.rows(where=lambda r: r["event_type"] in ATTEMPTS):
        key = (r["device_type"], r["manufacturer"], r["model"], r["firmware_version"])
        if key in classified:
            checked += 1
            assert r["session_started_at"] < classified[key], r
    # Devices on the combination exist and were left alone after classification.
    on_combo = [d for d in log.rows("devices")
                if (d["device_type"], d["manufacturer"], d["model"], d["firmware_version"]) in classified]
    assert on_combo


def test_firmware_campaign_makes_parked_devices_migratable(simulated):
    """spec/003 §34: a firmware upgrade moves devices off a Non-Migratable combination; they are then migrated."""
    log = simulated("firmware_fix")
    upgraded = {r["device_index"]: r["occurred_at"]
                for r in log.rows(where=lambda r: r["event_type"] == "firmware_upgrade")}
    assert upgraded
    nm = log.rows("non_migratable")[0]
    migrated_after = [r for r in log.rows(where=lambda r: r["event_type"] == "migration_success")
                      if r["device_index"] in upgraded and r["session_started_at"] >= upgraded[r["device_index"]]
                      and r["firmware_version"] != nm["firmware_version"]]
    # Most upgraded devices that were waiting (parked since classification) get migrated after the upgrade.
    parked = [d for d in upgraded if upgraded[d] > nm["classified_at"]]
    assert len(migrated_after) > 0.5 * len(parked)


def test_prevalidation_skips_are_not_attempts(simulated):
    """spec/003 §30c: a device failing pre-validation is re-selected later; no attempt is counted."""
    log = simulated("demo")
    skips = log.rows(where=lambda r: r["event_type"] == "prevalidation_skip")
    assert skips
    assert all(r["attempt_number"] is None and r["error_code"] is None for r in skips)
    skipped = {r["device_index"] for r in skips}
    by_device = attempts_by_device(log)
    for device in skipped:
        numbers = [r["attempt_number"] for r in by_device.get(device, [])]
        assert numbers == list(range(1, len(numbers) + 1))
    # Skipped devices do come back and get attempted.
    assert sum(1 for d in skipped if d in by_device) > 0.8 * len(skipped)


def test_attempt_numbers_count_the_devices_attempts_so_far(simulated):
    """DESIGN.md: Number of Attempts = the device's attempts so far, this one included (ECOSMIG-002)."""
    for device, rows in attempts_by_device(simulated("demo")).items():
        assert [r["attempt_number"] for r in rows] == list(range(1, len(rows) + 1)), device


def test_retries_inside_a_session_until_success_or_time_out(simulated):
    """spec/003 §35: tries at increasing intervals in one session until success or time-out."""
    log = simulated("demo")
    s = log.scenario
    offsets = list(s.try_offsets)
    assert offsets[:3] == [0, 300, 900]  # 5m, then 10m: increasing gaps
    lo, hi = s.confirmation_delay.low, s.confirmation_delay.high
    seen_tries = set()
    for r in log.rows(where=lambda r: r["event_type"] in ATTEMPTS):
        start = r["session_started_at"]
        elapsed = (r["occurred_at"] - start).total_seconds()
        if r["event_type"] == "migration_success":
            assert 1 <= r["tries"] <= len(offsets)
            seen_tries.add(r["tries"])
            assert lo <= elapsed - offsets[r["tries"] - 1] <= hi, r
        elif r["error_kind"] == "transient":
            assert r["tries"] == len(offsets)  # every try of the session was used
            assert elapsed == s.session_timeout
        else:
            assert r["tries"] == 1  # a permanent error ends the session at the first try
            assert lo <= elapsed <= hi
    assert len(seen_tries) >= 3  # successes do come at later tries too


def test_one_failed_attempt_per_failed_session_with_code_and_sub_code(simulated):
    """EMRR App. A ECOSMIG-002: each failed attempt carries an Error Code and Error Sub Code."""
    log = simulated("demo")
    table = {(c, int(sc)): bool(p) for c, sc, p in zip(log.scenario.error_codes, log.scenario.error_sub_codes,
                                                      log.scenario.error_permanent)}
    failures = log.rows(where=lambda r: r["event_type"] == "migration_failure" and not r["duplicate"])
    assert failures
    sessions = set()
    for r in failures:
        key = (r["error_code"], r["error_sub_code"])
        assert key in table
        assert r["error_kind"] == ("permanent" if table[key] else "transient")
        session = (r["device_index"], r["session_started_at"])
        assert session not in sessions
        sessions.add(session)
    for r in log.rows(where=lambda r: r["event_type"] == "migration_success"):
        assert r["error_code"] is None and r["error_sub_code"] is None


def test_further_attempts_are_spaced_by_the_interval(simulated):
    """spec/003 §36: further attempts about a month apart (interval minus jitter, at day resolution)."""
    log = simulated("demo")
    s = log.scenario
    gap = dt.timedelta(seconds=s.further_attempt_interval - s.further_attempt_jitter)
    pairs = 0
    for rows in attempts_by_device(log).values():
        for before, after in zip(rows, rows[1:]):
            assert before["event_type"] == "migration_failure"
            due = before["occurred_at"] + gap
            due_day = due.replace(hour=0, minute=0, second=0, microsecond=0)
            assert after["session_started_at"] >= due_day
            pairs += 1
    assert pairs > 100


def test_at_most_the_maximum_number_of_attempts(simulated):
    """EMEHRA (synthetic max_attempts): a device is not attempted more than the maximum."""
    log = simulated("demo")
    by_device = attempts_by_device(log)
    assert max(len(v) for v in by_device.values()) <= log.scenario.max_attempts


def test_max_attempts_reached_in_a_long_run(tmp_path):
    """With failing devices and time enough, devices reach and stop at max_attempts."""
    from tests.conftest import EventLog, merge, scenario_dict, simulate_dict

    data = merge(scenario_dict("demo"), {
        "name": "exhaust", "period": {"end": "2024-03-01"},
        "population": {"premises": 300},
        "migration": {"max_attempts": 3, "further_attempt_interval": "10d",
                      "success_probability": {"default": 0.2, "by_device_type": {}, "by_model": {}}},
    })
    log = EventLog(tmp_path / "log", simulate_dict(data, tmp_path / "log"))
    counts = [len(v) for v in attempts_by_device(log).values()]
    assert max(counts) == 3
    assert counts.count(3) > 50


def test_nothing_after_success(simulated):
    """ETMAD step d: a migrated device is never attempted again."""
    for name in ("demo", "heavy_switching"):
        for rows in attempts_by_device(simulated(name)).values():
            kinds = [r["event_type"] for r in rows]
            if "migration_success" in kinds:
                assert kinds.index("migration_success") == len(kinds) - 1


def test_ecos_installed_devices_are_never_attempted(simulated):
    """ECOSMIG-006: devices installed with ECoS credentials need no migration."""
    log = simulated("demo")
    installed = {r["device_index"] for r in log.rows(where=lambda r: r["event_type"] == "install")}
    assert installed
    assert not installed & set(attempts_by_device(log))
    for d in log.rows("devices", where=lambda d: d["ecos_credentials_at_install"]):
        assert d["installed_at"] is not None


def _supplier_at(premises, changes, premise, fuel, when):
    current = premises[premise]["electricity_supplier" if fuel == "electricity" else "gas_supplier"]
    for c in changes.get((premise, fuel), []):
        if c["occurred_at"] <= when:
            assert c["losing_supplier"] == current
            current = c["gaining_supplier"]
    return current


@pytest.mark.parametrize("name", ["heavy_switching", "demo"])
def test_responsible_supplier_follows_the_gpf_rule_at_the_time_of_the_event(simulated, name):
    """spec/003 §25, DESIGN.md "Recipient": ESME -> electricity supplier, GSME -> gas supplier, GPF ->
    gas supplier if a gas meter is on the hub, else the electricity supplier, else none; at the event."""
    log = simulated(name)
    premises = {p["premise_index"]: p for p in log.rows("premises")}
    changes: dict[tuple, list] = defaultdict(list)
    for c in log.rows("supply_changes"):
        changes[(c["premise_index"], c["fuel"])].append(c)
    for v in changes.values():
        v.sort(key=lambda c: c["occurred_at"])
    assert sum(len(v) for v in changes.values()) > 50
    switched_devices = 0
    for r in log.rows(where=lambda r: r["event_type"] in ATTEMPTS + ("install",)):
        p = premises[r["premise_index"]]
        if r["device_type"] == "ESME":
            fuel = "electricity"
        elif r["device_type"] == "GSME":
            fuel = "gas"
        else:
            fuel = "gas" if p["has_gas"] else ("electricity" if p["has_electricity"] else None)
        expected = None if fuel is None else _supplier_at(premises, changes, r["premise_index"], fuel, r["occurred_at"])
        assert r["responsible_supplier"] == expected, r
        switched_devices += (r["premise_index"], fuel) in changes
    assert switched_devices > 0


def test_mpxn_of_each_device_type(simulated):
    """EMRR App. A notes: MPxN is the MPAN or MPRN; for a GPF the MPRN when gas is connected, else the MPAN."""
    log = simulated("demo")
    premises = {p["premise_index"]: p for p in log.rows("premises")}
    for d in log.rows("devices"):
        p = premises[d["premise_index"]]
        expected = {"ESME": p["mpan"], "GSME": p["mprn"],
                    "GPF": p["mprn"] if p["has_gas"] else p["mpan"]}[d["device_type"]]
        assert d["mpxn"] == expected


def test_mpan_and_mprn_check_digits_are_valid(simulated):
    """FACTS.md "Identifiers": MPAN cores pass the mpan package's check; MPRNs their two check digits."""
    log = simulated("demo")
    premises = log.rows("premises")
    mpans = [p["mpan"] for p in premises if p["mpan"]]
    mprns = [p["mprn"] for p in premises if p["mprn"]]
    assert mpans and mprns
    assert all(mpan.is_valid(m) for m in mpans)
    assert all(len(m) == 10 and mprn_is_valid(m) for m in mprns)
    assert len(set(mpans)) == len(mpans) and len(set(mprns)) == len(mprns)
    assert all(10 <= int(m[:2]) <= 23 for m in mpans)


def test_device_ids_are_unique_eui64(simulated):
    """FACTS.md, DUIS: Device ID = 8 upper-case hex octets joined by hyphens, unique."""
    log = simulated("demo")
    ids = log.devices.column("device_id").to_pylist()
    assert len(set(ids)) == len(ids)
    pattern = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2}){7}$")
    assert all(pattern.match(i) for i in ids)


def test_duplicated_notifications_repeat_the_event_exactly(simulated):
    """DESIGN.md faults: a duplicated notification is the same event again (same event_id), later."""
    log = simulated("late_data")
    by_id = defaultdict(list)
    for r in log.rows():
        by_id[r["event_id"]].append(r)
    dups = [rows for rows in by_id.values() if len(rows) > 1]
    assert dups
    for rows in dups:
        original = [r for r in rows if not r["duplicate"]]
        assert len(original) == 1
        for copy in rows:
            if copy is original[0]:
                continue
            assert copy["notified_at"] >= original[0]["notified_at"]
            for key in ("event_type", "device_id", "occurred_at", "attempt_number", "error_code",
                        "responsible_supplier"):
                assert copy[key] == original[0][key]


def test_notified_at_is_never_before_occurred_at_and_some_are_late(simulated):
    """DESIGN.md: each event has the time it happened and the time the reporting system learned it."""
    log = simulated("late_data")
    late = 0
    for r in log.rows():
        assert r["notified_at"] >= r["occurred_at"]
        late += (r["notified_at"] - r["occurred_at"]) > DAY
    assert late > 50


def test_events_fall_inside_the_period_and_after_migration_start(simulated):
    log = simulated("demo")
    s = log.scenario
    for r in log.rows():
        assert as_instant(s.start) <= r["occurred_at"] < as_instant(s.end)
        if r["event_type"] in ATTEMPTS:
            assert r["session_started_at"] >= as_instant(s.migration_start)


@pytest.mark.parametrize("name", ["demo", "firmware_fix"])
def test_firmware_of_an_attempt_is_the_firmware_when_its_batch_was_selected(simulated, name):
    """ECOSMIG-001/-002 Firmware Version: the device's firmware at the attempt, i.e. the initial firmware
    changed by every firmware_upgrade event up to the batch's selection time."""
    log = simulated(name)
    s = log.scenario
    upgrades = defaultdict(list)
    for r in log.rows(where=lambda r: r["event_type"] == "firmware_upgrade"):
        upgrades[r["device_index"]].append((r["occurred_at"], r["firmware_version"]))
    initial = {d["device_index"]: d["firmware_version"] for d in log.rows("devices")}
    assert upgrades
    checked = 0
    for r in log.rows(where=lambda r: r["event_type"] in ATTEMPTS):
        start = r["session_started_at"]
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        batch = max(midnight + dt.timedelta(seconds=b) for b in s.batch_times
                    if midnight + dt.timedelta(seconds=b) <= start)
        firmware = initial[r["device_index"]]
        for when, version in sorted(upgrades.get(r["device_index"], [])):
            if when <= batch:
                firmware = version
        assert r["firmware_version"] == firmware, r
        checked += r["device_index"] in upgrades
    assert checked > 0


def test_every_install_in_the_period_has_exactly_one_install_event(simulated):
    """ECOSMIG-006: each device installed with ECoS credentials in the period is reported once,
    the last day's included."""
    log = simulated("demo")
    end = as_instant(log.scenario.end)
    installed = {d["device_index"]: d["installed_at"]
                 for d in log.rows("devices", where=lambda d: d["ecos_credentials_at_install"])}
    events = [r for r in log.rows(where=lambda r: r["event_type"] == "install" and not r["duplicate"])]
    assert sorted(r["device_index"] for r in events) == sorted(d for d, t in installed.items() if t < end)
    assert all(r["occurred_at"] == installed[r["device_index"]] for r in events)
    assert any(r["occurred_at"] >= end - DAY for r in events)


def test_random_outages_hit_only_the_reports_the_scenario_lists(tmp_path):
    """The simulator knows no report ids (issue 8 deliverable 4, EMRR §3.1.6 outages): each random outage
    hits one report drawn from outages.random.reports, so a report a ruleset adds gets outages too, and
    '*' in the list stops every report."""
    from tests.conftest import EventLog, merge, scenario_dict, simulate_dict

    listed = ["ECOSMIG-007", "XYZ-001", "*"]
    data = merge(scenario_dict("demo"), {
        "name": "outage-reports", "population": {"premises": 300},
        "outages": {"windows": [], "random": {"per_year": 200, "reports": listed}},
    })
    log = EventLog(tmp_path / "log", simulate_dict(data, tmp_path / "log"))
    hit = [r["report_id"] for r in log.rows("outages")]
    assert len(hit) > 20  # about 50 over the three months
    assert set(hit) == set(listed)
