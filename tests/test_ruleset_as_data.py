"""Rulesets are data: what a report selects, who receives it and which reports there are change by
editing YAML, not code (issue 8 deliverables 2, 4 and 5; STYLE.md "Registries, not if-chains").

- The schema's enums are tested against their one home: ``select.assignment`` and
  ``recipient.rule`` against the registry in rules/selection.py.
- ``recipient.rule`` is honoured (docs/rulesets.md "recipient"): the moment at which the Responsible
  Supplier is taken; an assignment that cannot honour a rule makes loading fail.
- YAML is edited as data (yaml.safe_load / yaml.safe_dump), never as text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
import yaml

from emrr import cli
from emrr.conformance import handlog
from emrr.contract import EVENT_TYPES, REGIMES
from emrr.errors import UserError
from emrr.rules import engine, ruleset
from emrr.rules.selection import ASSIGNMENTS, AT_EVENT, AT_WINDOW_END, RECIPIENT_RULES

SHIPPED = ruleset.RULES_DIR / ruleset.DEFAULT_RULESET


def report_schema() -> dict:
    return ruleset.schema()["$defs"]["report"]["properties"]


def copy_ruleset(tmp_path: Path, name: str = "rules") -> Path:
    folder = tmp_path / name
    shutil.copytree(SHIPPED, folder)
    return folder


def edit_yaml(path: Path, change: Callable[[dict], None]) -> None:
    """Load ``path`` as data, let ``change`` edit it in place, write it back (comments are lost)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def set_recipient_rule(folder: Path, report_id: str, rule: str) -> None:
    edit_yaml(folder / f"{report_id}.yaml", lambda data: data["recipient"].update(rule=rule))


@pytest.fixture(scope="module")
def golden_log(tmp_path_factory) -> Path:
    """The golden event log (conformance/logs/reference.yaml): premises 2's ESME 9 migrates on
    2023-07-05 at 10:00 and the premises changes electricity supplier (PSUP01 -> PSUP02) at 20:00."""
    return handlog.build(handlog.load("reference"), tmp_path_factory.mktemp("golden") / "log")


def files_of(out: Path, report_id: str) -> dict[str, str]:
    """Report files of ``report_id`` under ``out``: path -> text."""
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(out.rglob(f"{report_id}_*.csv"))}


# --------------------------------------------------------------------------- the registry


def test_assignment_enum_is_the_registry():
    """STYLE.md "Registries, not if-chains": the schema offers exactly the registered assignments."""
    assert set(report_schema()["select"]["properties"]["assignment"]["enum"]) == set(ASSIGNMENTS)


def test_recipient_rule_enum_is_the_registry():
    """docs/rulesets.md "recipient": the schema offers exactly the rules the engine honours, and
    every assignment honours at least one of them."""
    assert set(report_schema()["recipient"]["properties"]["rule"]["enum"]) == set(RECIPIENT_RULES)
    for assignment in ASSIGNMENTS.values():
        assert assignment.recipient_rules and assignment.recipient_rules <= set(RECIPIENT_RULES), assignment.name


def test_shipped_rulesets_name_registered_assignments():
    """Every report of every shipped ruleset names an assignment of the registry that honours its
    recipient rule (what loading enforces)."""
    for name in ("emrr-revised", "emrr-consultation-draft"):
        for report in ruleset.load(name).reports.values():
            assert report.recipient_rule in ASSIGNMENTS[report.assignment].recipient_rules, (name, report.id)


def test_unknown_assignment_is_an_error(tmp_path):
    """An unknown assignment is an error naming the file and YAML path, not a silent fall-through
    to another strategy (review B2)."""
    folder = copy_ruleset(tmp_path)
    edit_yaml(folder / "ECOSMIG-001.yaml", lambda data: data["select"].update(assignment="most_recent_first"))
    with pytest.raises(UserError) as caught:
        ruleset.load(str(folder))
    message = str(caught.value)
    assert "ECOSMIG-001.yaml" in message and "select.assignment" in message and "most_recent_first" in message
    assert "\n" not in message


def test_recipient_rule_an_assignment_cannot_honour_fails_loading(tmp_path):
    """A Non-Migratable snapshot has no event to take the supplier at: ECOSMIG-004 with
    responsible_supplier_at_event is a one-line error naming the file and recipient.rule."""
    folder = copy_ruleset(tmp_path)
    set_recipient_rule(folder, "ECOSMIG-004", AT_EVENT)
    with pytest.raises(UserError) as caught:
        ruleset.load(str(folder))
    message = str(caught.value)
    assert str(folder / "ECOSMIG-004.yaml") in message and "at recipient.rule" in message
    assert "non_migratable_snapshot" in message and AT_EVENT in message and "\n" not in message


def test_a_column_the_assignment_does_not_give_is_an_error(golden_log, tmp_path):
    """rules/engine.py _check_columns: a summary of window activity has one row per recipient and
    day, so a field citing an event's column (device_id) is bad input before anything is written,
    not a crash while writing."""
    folder = copy_ruleset(tmp_path)

    def cite_device_id(data: dict) -> None:
        data["detail"]["fields"][1]["source"] = {"column": "device_id"}

    edit_yaml(folder / "ECOSMIG-005.yaml", cite_device_id)
    out = tmp_path / "out"
    with pytest.raises(UserError) as caught:
        engine.report(golden_log, out, ruleset.load(str(folder)), progress=False)
    assert "ECOSMIG-005" in str(caught.value) and "'device_id'" in str(caught.value)
    assert "window_activity" in str(caught.value)
    assert not out.exists()


def test_event_type_enums_are_the_contract():
    """Issue 8 deliverable 4: the event types have one home, emrr/contract.py. A report may select,
    or count, any event type the event log of its regime holds (prevalidation_skip included), in
    its order: the schema's one event-type enum is the regimes' types, ECoS first (issue 10)."""
    schema = ruleset.schema()
    select = schema["$defs"]["report"]["properties"]["select"]["properties"]
    enum = tuple(schema["$defs"]["event_type"]["enum"])
    assert enum == tuple(t for regime in REGIMES.values() for t in regime.event_types)
    assert enum[:len(EVENT_TYPES)] == EVENT_TYPES
    assert select["event_types"]["items"] == {"$ref": "#/$defs/event_type"}
    assert select["counts"]["additionalProperties"] == {"$ref": "#/$defs/event_type"}


# --------------------------------------------------------------------------- recipient.rule honoured


def test_recipient_at_window_end_follows_a_change_of_supplier(golden_log, tmp_path):
    """docs/rulesets.md "recipient": responsible_supplier_at_window_end takes the supplier at the
    end of the reporting window. ESME 9's success at 10:00 on 2023-07-05, followed by premises 2's
    change of electricity supplier at 20:00 the same day, goes to the gaining supplier PSUP02
    instead of PSUP01 (review B2: the rule used to be ignored); ECOSMIG-001's other records stay
    where they were."""
    esme_9 = handlog.device_id(9)
    shipped = engine.report(golden_log, tmp_path / "shipped", ruleset.load(), progress=False)
    folder = copy_ruleset(tmp_path)
    set_recipient_rule(folder, "ECOSMIG-001", AT_WINDOW_END)
    changed = engine.report(golden_log, tmp_path / "changed", ruleset.load(str(folder)), progress=False)

    def holders(out: Path) -> set[str]:
        return {path.split("/")[0] for path, text in files_of(out, "ECOSMIG-001").items() if esme_9 in text}

    assert holders(tmp_path / "shipped") == {"PSUP01"}
    assert holders(tmp_path / "changed") == {"PSUP02"}
    assert changed.per_report["ECOSMIG-001"].records == shipped.per_report["ECOSMIG-001"].records
    for other in ("ECOSMIG-002", "ECOSMIG-003", "ECOSMIG-004", "ECOSMIG-005", "ECOSMIG-006"):
        assert files_of(tmp_path / "changed", other) == files_of(tmp_path / "shipped", other), other


def test_engine_writes_in_the_rulesets_folder(golden_log, tmp_path):
    """file_name.folder is read, not hard-coded: every file the engine writes sits at the path
    Ruleset.file_path gives, here with the folder made of recipient and report."""
    rs = dataclasses.replace(ruleset.load(), folder="{recipient}/{report_id}")
    engine.report(golden_log, tmp_path / "out", rs, progress=False)
    paths = [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.csv")]
    assert paths and all(p.split("/")[1] == p.split("/")[2].split("_")[0] for p in paths), paths


# --------------------------------------------------------------------------- a new report, a changed rule: data only


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``emrr`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def report_and_check(events: Path, rules: Path, out: Path) -> dict:
    """``emrr report --ruleset PATH`` then ``emrr check --ruleset PATH --events LOG`` (ground
    truth); both must succeed. Returns the check's JSON verdict."""
    status, _, stderr = run_cli("report", "--events", str(events), "--out", str(out), "--ruleset", str(rules),
                                "--no-progress")
    assert status == 0, stderr
    verdict = out.parent / f"{out.name}-verdict.json"
    status, stdout, stderr = run_cli("check", str(out), "--ruleset", str(rules), "--events", str(events),
                                     "--json", str(verdict))
    assert status == 0, stdout + stderr
    return json.loads(verdict.read_text(encoding="utf-8"))


def add_skipped_report(folder: Path) -> None:
    """ECOSMIG-007 (hypothetical, the review's experiment (a)): a daily detail report of the
    devices pre-validation skipped, made from ECOSMIG-001's file with an existing selection, and
    listed in ruleset.yaml; all of it edited as data."""
    data = yaml.safe_load((folder / "ECOSMIG-001.yaml").read_text(encoding="utf-8"))
    data.update(id="ECOSMIG-007", title="Detail Report: ECoS Migrations Skipped by Pre-validation",
                clause="Hypothetical: a new report written as data (issue 8)")
    data["select"].update(event_types=["prevalidation_skip"], clause="EMRR §3.1.6 (previously unreported)")
    data["detail"]["fields"][-1]["name"] = "Pre-validation Skip DateTime"
    (folder / "ECOSMIG-007.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                                             encoding="utf-8")
    edit_yaml(folder / "ruleset.yaml", lambda main: main["reports"].append("ECOSMIG-007"))


def test_a_new_report_is_an_edit_to_data_only(simulated, tmp_path):
    """Issue 8 deliverable 5: a report added to a copy of the ruleset, with an existing selection,
    is made by ``emrr report --ruleset PATH`` and passes ``emrr check --ruleset PATH --events LOG``
    without one finding; the other reports' files are those of the shipped ruleset."""
    log = simulated("demo").path
    skipped = sum(1 for t in simulated("demo").events.column("event_type").to_pylist() if t == "prevalidation_skip")
    assert skipped, "the demo scenario should log pre-validation skips"
    folder = copy_ruleset(tmp_path)
    add_skipped_report(folder)
    verdict = report_and_check(log, folder, tmp_path / "out")
    assert (verdict["errors"], verdict["warnings"], verdict["totals"]) == (0, 0, {})
    new = files_of(tmp_path / "out", "ECOSMIG-007")
    assert new and all("Detail Report: ECoS Migrations Skipped by Pre-validation" in text for text in new.values())
    engine.report(log, tmp_path / "shipped", ruleset.load(), progress=False)
    for report_id in ruleset.load().reports:
        assert files_of(tmp_path / "out", report_id) == files_of(tmp_path / "shipped", report_id), report_id


def test_a_changed_recipient_rule_is_an_edit_to_data_only(tmp_path):
    """Issue 8 deliverable 5 and docs/rulesets.md "recipient": ECOSMIG-006 set, as data, to the
    Responsible Supplier at the end of the month. On the golden log with one more change of supplier
    (premises 3's electricity, PSUP02 -> PSUP01 on 2023-07-25, after ESME 13's install on the 21st),
    ESME 13's install goes to PSUP01 instead of PSUP02, and the files pass the checks with the event
    log as ground truth without one finding."""
    data = yaml.safe_load(resources.files("emrr.conformance").joinpath("logs", "reference.yaml")
                          .read_text(encoding="utf-8"))
    data["supply_changes"]["rows"].append([3, "electricity", "PSUP02", "PSUP01", "2023-07-25T09:00:00Z"])
    log = handlog.build(handlog.parse(yaml.safe_dump(data, sort_keys=False), "switched.yaml"), tmp_path / "log")
    folder = copy_ruleset(tmp_path)
    set_recipient_rule(folder, "ECOSMIG-006", AT_WINDOW_END)
    verdict = report_and_check(log, folder, tmp_path / "out")
    assert (verdict["errors"], verdict["warnings"], verdict["totals"]) == (0, 0, {})
    engine.report(log, tmp_path / "shipped", ruleset.load(), progress=False)
    esme_13 = handlog.device_id(13)

    def holders(out: Path) -> set[str]:
        return {path.split("/")[0] for path, text in files_of(out, "ECOSMIG-006").items() if esme_13 in text}

    assert holders(tmp_path / "shipped") == {"PSUP02"}
    assert holders(tmp_path / "out") == {"PSUP01"}
