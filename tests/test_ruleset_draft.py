"""The consultation-draft ruleset (rules/emrr-consultation-draft, spec/000): what checking a
draft is for. The draft differs from the revision in two values (DESIGN.md "Rulesets"): ECoS
Status of at most 7 characters, which cannot hold "Installed" though the same draft requires
it, and ECOSMIG-005's "Quantity of Failed Migrations"."""

from __future__ import annotations

import hashlib
from pathlib import Path

from emrr.conformance.checker import check
from emrr.rules import engine
from emrr.rules import ruleset as rules

REVISED = rules.load("emrr-revised")
DRAFT = rules.load("emrr-consultation-draft")


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.csv"))}


def test_the_draft_differs_from_the_revision_in_its_two_values_only():
    """protects the draft ruleset's fidelity to spec/000: every layout, schedule and rule equal to
    the revision's but ECoS Status's length and ECOSMIG-005's field name."""
    assert DRAFT.name == "emrr-consultation-draft" and "000_" in DRAFT.raw["source"]
    # the draft's reports are spec/000 App. A's six; a report the revision's ruleset adds is not the draft's
    assert set(DRAFT.reports) == {f"ECOSMIG-00{n}" for n in range(1, 7)} and set(DRAFT.reports) <= set(REVISED.reports)
    changed = []
    for rid, other in DRAFT.reports.items():
        report = REVISED.reports[rid]
        assert (report.cron, report.window, report.assignment, report.recipient_rule) == \
               (other.cron, other.window, other.assignment, other.recipient_rule)
        for a, b in zip(report.detail, other.detail, strict=True):
            if a != b:
                changed.append((rid, a.name, b.name, a.max_length, b.max_length))
    assert changed == [("ECOSMIG-003", "ECoS Status", "ECoS Status", 9, 7),
                       ("ECOSMIG-005", "Quantity of Failed Migration Attempts", "Quantity of Failed Migrations", 9, 9)]
    assert (DRAFT.header, DRAFT.trailer) == (REVISED.header, REVISED.trailer)


def test_checking_the_draft_shows_it_cannot_hold_installed(simulated, tmp_path):
    """protects the use of a draft ruleset: the engine writes the same files under both rulesets
    (no column header row names a field), and the checker judges them by each: the revision passes
    them, the draft finds exactly the ECoS Status values "Installed" too long for it."""
    log = simulated("demo")
    revised = engine.report(log.path, tmp_path / "revised", REVISED, progress=False)
    draft = engine.report(log.path, tmp_path / "draft", DRAFT, progress=False)
    reports = {k: v for k, v in _digests(tmp_path / "draft").items()}
    assert reports == _digests(tmp_path / "revised")
    assert check(tmp_path / "draft", REVISED).totals == {}
    verdict = check(tmp_path / "draft", DRAFT, events=log.path)
    assert set(verdict.totals) == {"field-length"} and verdict.totals["field-length"] > 0
    assert all(f.field == "ECoS Status" and f.message.startswith("9 characters; at most 7") for f in verdict)
    # the engine says so as it writes them, and the revision has nothing to say
    assert revised.too_long == {}
    assert draft.too_long == {"ECOSMIG-003 ECoS Status": verdict.totals["field-length"]}
    assert "warning: ECOSMIG-003 ECoS Status: " in draft.render()
