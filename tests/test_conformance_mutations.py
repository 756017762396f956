"""The mutation self-test (conformance/mutations.py): every operator, applied to the engine's
output for the golden log and for the demo scenario, makes the checker report exactly the error
findings it declares, (file, line, check) (the line None for a problem of the whole file or its
name), and no other error; the unmutated deliveries give no error at all."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from emrr.conformance import mutations
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.mutations import ERROR_CHECKS, NOT_PRODUCIBLE, OPERATORS, NotApplicable
from emrr.rules import engine
from emrr.rules import ruleset as rules

ROOT = Path(__file__).resolve().parent.parent
RULES = rules.load(None)
OPERATOR_IDS = sorted(OPERATORS)


@pytest.fixture(scope="session")
def golden_delivery(tmp_path_factory, golden_log) -> Path:
    """The engine's report files for the golden log (conformance/logs/reference.yaml)."""
    out = tmp_path_factory.mktemp("mutations-golden") / "reports"
    engine.report(golden_log, out, RULES, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_delivery(tmp_path_factory, simulated) -> Path:
    """The engine's report files for scenarios/demo.yaml (simulated once per session)."""
    out = tmp_path_factory.mktemp("mutations-demo") / "reports"
    engine.report(simulated("demo").path, out, RULES, progress=False)
    return out


def error_findings(directory: Path) -> list[tuple]:
    verdict = check(directory, RULES, max_examples=None)
    return sorted({(f.file, f.line, f.check) for f in verdict if f.severity == "error"}, key=_order)


def _order(key: tuple) -> tuple:
    return (key[0], -1 if key[1] is None else key[1], key[2])


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.csv"))}


@pytest.mark.parametrize("source", ["golden", "demo"])
def test_valid_delivery_gives_no_error(source, request):
    delivery = request.getfixturevalue(f"{source}_delivery")
    assert error_findings(delivery) == []


@pytest.mark.parametrize("source", ["golden", "demo"])
@pytest.mark.parametrize("op_id", OPERATOR_IDS)
def test_operator_gives_exactly_its_declared_errors(op_id, source, request, tmp_path):
    delivery = request.getfixturevalue(f"{source}_delivery")
    op = OPERATORS[op_id]
    try:
        mutation = op.apply(delivery, tmp_path / "delivery", RULES)
    except NotApplicable as exc:
        if source == "golden" and op.applies(RULES):  # the golden delivery has a target for every operator of
            raise  # the EMRR's rules (a SEC Party Signifier in a name, padding, a reconciliation: SMETS1 MRR only)
        pytest.skip(f"{op_id} has no target in the {source} delivery: {exc}")
    expected = sorted(((e.file, e.line, e.check) for e in mutation.expected), key=_order)
    found = error_findings(tmp_path / "delivery")
    assert found == expected, mutation.description
    assert {c for _, _, c in found} == op.checks  # exactly the declared check ids, no other error check
    assert mutation.file in {e.file for e in mutation.expected} | {
        p.relative_to(tmp_path / "delivery").as_posix() for p in (tmp_path / "delivery").rglob("*.csv")}


def test_operators_are_deterministic_and_leave_the_source_alone(golden_delivery, tmp_path):
    before = _digest(golden_delivery)
    for op_id in (op_id for op_id in OPERATOR_IDS if OPERATORS[op_id].applies(RULES)):
        first = OPERATORS[op_id].apply(golden_delivery, tmp_path / op_id / "a", RULES)
        second = OPERATORS[op_id].apply(golden_delivery, tmp_path / op_id / "b", RULES)
        assert first == second
        assert _digest(tmp_path / op_id / "a") == _digest(tmp_path / op_id / "b")
        assert _digest(tmp_path / op_id / "a") != before, op_id  # it did change something
    assert _digest(golden_delivery) == before  # hard-linked copies were replaced, never written into


def test_at_least_thirty_operators():
    assert len(OPERATORS) >= 30


def test_operators_cover_every_error_check_a_defect_can_produce():
    assert set(NOT_PRODUCIBLE) <= ERROR_CHECKS
    assert ERROR_CHECKS == {c.id for c in CATALOGUE.values() if c.severity == "error"}
    for op in OPERATORS.values():
        assert op.checks and op.checks <= ERROR_CHECKS, op.id
    assert mutations.covered_checks() == ERROR_CHECKS - set(NOT_PRODUCIBLE)
    assert "file-unreadable" in NOT_PRODUCIBLE  # named, with its reason, in the module docstring
    for check_id in NOT_PRODUCIBLE:
        assert check_id in mutations.__doc__ or CATALOGUE[check_id].family in mutations.__doc__


def test_operator_ids_and_descriptions():
    for op in OPERATORS.values():
        assert op.id.replace("-", "").isalnum() and op.id == op.id.lower()
        assert op.description.endswith(".") or op.description.endswith(")"), op.id


def test_target_must_be_new_or_empty(golden_delivery, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="new or empty"):
        OPERATORS["bom"].apply(golden_delivery, tmp_path / "full", RULES)


def test_not_applicable_when_the_delivery_has_no_target(golden_delivery, tmp_path):
    only = tmp_path / "only-001"
    for p in golden_delivery.rglob("ECOSMIG-001_*.csv"):
        (only / p.parent.name).mkdir(parents=True, exist_ok=True)
        (only / p.parent.name / p.name).write_bytes(p.read_bytes())
    with pytest.raises(NotApplicable):
        OPERATORS["ecos-status-not-allowed"].apply(only, tmp_path / "mutated", RULES)


def test_operators_find_reports_by_role_not_by_id():
    """protects operators against a report added as data (issue 8, deliverable 5): each role of
    mutations.REPORT_ROLES is played by exactly one report of the revised EMRR, read from its
    definition; a report a ruleset adds in the same part (a copy of ECOSMIG-001 under another id)
    plays it too, after the first, so an operator's target in the packaged delivery is unchanged."""
    assert {role: mutations.reports_in_role(RULES, role) for role in mutations.REPORT_ROLES} == {
        "successes": ["ECOSMIG-001"], "failures": ["ECOSMIG-002"], "history": ["ECOSMIG-003"],
        "snapshot": ["ECOSMIG-004"], "activity": ["ECOSMIG-005"], "installs": ["ECOSMIG-006"]}
    added = dataclasses.replace(RULES.reports["ECOSMIG-001"], id="ECOSMIG-107")
    extended = dataclasses.replace(RULES, reports={**RULES.reports, added.id: added})
    assert mutations.reports_in_role(extended, "successes") == ["ECOSMIG-001", "ECOSMIG-107"]
    assert mutations.Delivery(ROOT / "tests" / "golden" / "expected", extended).report_ids(
        "failures", "successes", "ECOSMIG-004") == ["ECOSMIG-002", "ECOSMIG-001", "ECOSMIG-107", "ECOSMIG-004"]
