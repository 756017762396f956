"""Which checks run is decided once (issue 8 deliverable 3; review A and B3):
``findings.enabled_checks`` honours each check's ``default`` and runs the ground-truth family only
with an event log, and the checker, its JUnit XML and the pytest plugin all ask it. The defect it
fixes: JUnit reported the opt-in ``late-record`` as passed although it never ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emrr import cli
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.findings import enabled_checks, parse_selection

GOLDEN = Path(__file__).resolve().parent / "golden" / "expected"
GROUND = {c for c, spec in CATALOGUE.items() if spec.family == "ground-truth"}
OPT_IN = {c for c, spec in CATALOGUE.items() if not spec.default}


def test_enabled_checks_honours_default_selection_and_the_event_log():
    """protects docs/checks.md (`late-record` "only when selected"; the gt-* checks "Without it
    [--events] they do not run")."""
    assert OPT_IN == {"late-record"}
    assert enabled_checks() == set(CATALOGUE) - OPT_IN - GROUND
    assert enabled_checks(events=True) == set(CATALOGUE) - OPT_IN
    assert enabled_checks({"late-record", "bom"}) == {"late-record", "bom"}
    assert enabled_checks(set(), {"bom"}) == set(CATALOGUE) - OPT_IN - GROUND - {"bom"}
    assert enabled_checks({"gt-missing-file", "bom"}) == {"bom"}
    assert enabled_checks({"gt-missing-file", "bom"}, events=True) == {"gt-missing-file", "bom"}


def _junit(tmp_path: Path, *args: str) -> dict[str, str]:
    """``emrr check`` of the golden files with ``args``: each JUnit test case's outcome."""
    out = tmp_path / "verdict.xml"
    assert cli.main(["check", str(GOLDEN), "--junit", str(out), *args]) == 0
    outcome = {}
    for case in ET.parse(out).getroot().iter("testcase"):
        outcome[case.get("name")] = ("skipped" if case.find("skipped") is not None else
                                     "failed" if case.find("failure") is not None else "passed")
    assert set(outcome) == set(CATALOGUE)
    return outcome


def test_junit_skips_the_opt_in_late_record_on_the_golden_files(tmp_path, capsys):
    """protects the JUnit verdict (docs/checks.md: "skipped when it was not selected"): on the
    golden files, late-record never ran and is skipped, not passed; the ground-truth checks are
    skipped without the event log; every check that ran passed."""
    outcome = _junit(tmp_path)
    assert {c for c, o in outcome.items() if o == "skipped"} == OPT_IN | GROUND
    assert {c for c, o in outcome.items() if o == "passed"} == enabled_checks()


def test_junit_with_the_event_log_and_with_late_record_selected(tmp_path, capsys, golden_log):
    """protects the JUnit verdict: with the event log the ground-truth checks pass; selecting
    late-record runs it (the golden files hold late records: warnings, so passed) and skips the
    checks not selected."""
    outcome = _junit(tmp_path, "--events", str(golden_log))
    assert {c for c, o in outcome.items() if o == "skipped"} == OPT_IN
    outcome = _junit(tmp_path, "--select", "late-record,bom")
    assert {c for c, o in outcome.items() if o != "skipped"} == {"late-record", "bom"}
    assert check(GOLDEN, select={"late-record"}).totals.get("late-record", 0) > 0


@pytest.mark.parametrize("select", [None, {"late-record"}, parse_selection("field,late-record")])
def test_the_checker_runs_exactly_the_enabled_checks(select):
    """protects one decision: every check the checker reports is one ``enabled_checks`` enables."""
    verdict = check(GOLDEN, select=select)
    assert set(verdict.totals) <= enabled_checks(select)
