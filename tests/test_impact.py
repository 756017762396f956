"""``emrr impact`` (conformance/impact.py, issue 9 deliverable 3): the figures of a change, on the
golden log where every one of them is worked out by hand, the shared work that makes it fast,
and bad input.

The change measured is the revision of ECOSMIG-002 (spec/001 l.84, 279, 281, 285): daily at
06:00 for the previous day (emrr-pre-revision) against every 6 hours, for the period ending one
hour before the run (emrr-revised). The golden log (conformance/logs/reference.yaml) has three
failed attempts:

====  ================  ==========  =====================  ==========================
event occurred (UTC)    recipient   revised: file created  pre-revision: file created
====  ================  ==========  =====================  ==========================
2     07-03 05:00       PSUP02      07-03 12:00 (7 h)      07-04 06:00 (25 h)
4     07-04 13:00       PSUP01      07-04 18:00 (5 h)      07-05 06:00 (17 h)
6     07-10 03:00       PSUP02      07-11 12:00 (33 h)     07-12 06:00 (51 h): notified
                                                           07-11 09:30, after the 06:00 run
====  ================  ==========  =====================  ==========================

(the revised files are tests/golden/expected's). p95 is linear between the nearest records:
revised 7 + 0.9 x (33 - 7) = 30.4 h; pre-revision 25 + 0.9 x (51 - 25) = 48.4 h.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from emrr.cli import main
from emrr.conformance import impact
from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.rules.ruleset import RULES_DIR
from tests.golden import EXPECTED

OTHERS = ["ECOSMIG-001", "ECOSMIG-003", "ECOSMIG-004", "ECOSMIG-005", "ECOSMIG-006"]


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.csv"))}


@pytest.fixture(scope="module")
def golden_impact(golden_log, tmp_path_factory):
    out = tmp_path_factory.mktemp("impact") / "out"
    return impact.impact("emrr-pre-revision", "emrr-revised", golden_log, out)


def test_ecosmig_002_figures_on_the_golden_log_are_the_hand_worked_ones(golden_impact):
    """protects the figures a supplier reads (issue 9: files, records, latency p50/p95/max,
    moved records): each equal to the table of the module docstring."""
    r = golden_impact.data["reports"]["ECOSMIG-002"]
    old, new = r["old"], r["new"]
    assert (old["files"], old["records"], new["files"], new["records"]) == (3, 3, 3, 3)
    assert new["latency_hours"] == {"p50": 7.0, "p95": 30.4, "max": 33.0}
    assert old["latency_hours"] == {"p50": 25.0, "p95": 48.4, "max": 51.0}
    # every record is in both, each in a run made at another time: moved, none appears or disappears
    assert (r["moved_records"], r["appeared_records"], r["disappeared_records"]) == (3, 0, 0)
    assert r["identical"] is False and r["shared"] is False
    # the period is 2023-07-01 to 2023-08-03: 33 days
    assert golden_impact.data["period"]["days"] == 33
    assert (old["files_per_day"], new["files_per_day"]) == (round(3 / 33, 3), round(3 / 33, 3))
    # ties between days of one record each: the earliest day
    assert old["busiest_day"] == {"date": "2023-07-04", "records": 1, "files": 1}
    assert new["busiest_day"] == {"date": "2023-07-03", "records": 1, "files": 1}


def test_per_recipient_figures(golden_impact):
    """protects the per-supplier view: PSUP02 has events 2 and 6 (25 and 51 h before, 7 and 33 h
    after: medians 38 and 20 h), PSUP01 event 4 (17 h before, 5 h after)."""
    psup01 = golden_impact.data["recipients"]["PSUP01"]["ECOSMIG-002"]
    psup02 = golden_impact.data["recipients"]["PSUP02"]["ECOSMIG-002"]
    assert psup02["old"]["latency_hours"] == {"p50": 38.0, "p95": 49.7, "max": 51.0}
    assert psup02["new"]["latency_hours"] == {"p50": 20.0, "p95": 31.7, "max": 33.0}
    assert (psup02["old"]["files"], psup02["new"]["files"], psup02["moved_records"]) == (2, 2, 2)
    assert psup01["old"]["latency_hours"]["p50"] == 17.0 and psup01["new"]["latency_hours"]["p50"] == 5.0
    assert (psup01["old"]["files"], psup01["new"]["files"], psup01["moved_records"]) == (1, 1, 1)
    # PSUP03 has no file at all (reference.yaml): no entry
    assert set(golden_impact.data["recipients"]) == {"PSUP01", "PSUP02"}
    text = golden_impact.markdown
    assert ("- PSUP02: ECOSMIG-002 2 files as before; median time from a failed attempt to its report 20.0 h "
            "instead of 38.0 h, 95th percentile 31.7 h instead of 49.7 h, longest 33.0 h instead of 51.0 h; "
            "2 records in another run or to another recipient.") in text


def test_unchanged_reports_are_made_once_and_identical(golden_impact):
    """protects the shared work (issue 9 target): the five reports whose definition is the same
    are made once; their files are identical on both sides, nothing moves."""
    data = golden_impact.data
    assert data["plan"]["shared"] == OTHERS and data["plan"]["made_under_each"] == ["ECOSMIG-002"]
    for rid in OTHERS:
        r = data["reports"][rid]
        assert r["shared"] and r["identical"] and r["old"] == r["new"]
        assert (r["moved_records"], r["appeared_records"], r["disappeared_records"]) == (0, 0, 0)
    made_by_new = sorted(p.name.split("_")[0] for p in (golden_impact.out / "runs" / "new").rglob("*.csv"))
    assert made_by_new == ["ECOSMIG-002"] * 3


def test_summary_reports_have_no_latency_and_say_so(golden_impact):
    """protects the latency's source: the field whose source is occurred_at (Field.source), so a
    summary report (ECOSMIG-004, -005) has none, and the output says why."""
    for rid in ("ECOSMIG-004", "ECOSMIG-005"):
        r = golden_impact.data["reports"][rid]
        assert r["old"]["latency_hours"] is None and "summary report" in r["latency_note"]
        assert f"{rid} is a summary report" in golden_impact.markdown
    assert golden_impact.data["reports"]["ECOSMIG-001"]["old"]["latency_hours"] is not None


def test_deliveries_are_the_full_runs_byte_for_byte(golden_impact, golden_log, tmp_path):
    """protects the sharing's premise (sequence numbers per report and recipient, selection per
    report): old/ is what a run of the whole pre-revision ruleset makes, new/ the golden files."""
    assert _digests(golden_impact.out / "new") == _digests(EXPECTED)
    engine.report(golden_log, tmp_path / "pre", rules.load("emrr-pre-revision"), progress=False)
    assert _digests(golden_impact.out / "old") == _digests(tmp_path / "pre")


def test_an_old_parser_rejects_every_new_ecosmig_002_file(golden_impact):
    """protects the old parser's view: the three revised ECOSMIG-002 files, made at 12:00 and
    18:00, are not at a run time of the daily 06:00 schedule."""
    rej = golden_impact.data["old_parser_rejects"]
    assert rej["checked_reports"] == ["ECOSMIG-002"]
    assert (rej["files_checked"], rej["files_rejected"]) == (3, 3)
    assert rej["by_check"] == {"run-time-schedule": 3}
    # the files parse as before (emrr diff: behaviour): only when they come is rejected
    assert rej["files_rejected_for_form_or_content"] == 0


def test_outputs_on_disk(golden_impact):
    """protects the promised outputs: DIR/impact.md and DIR/impact.json with the issue's keys."""
    data = json.loads((golden_impact.out / "impact.json").read_text())
    assert {"old", "new", "reports", "recipients", "old_parser_rejects"} <= set(data)
    r = data["reports"]["ECOSMIG-002"]
    assert {"old", "new", "identical", "moved_records"} <= set(r)
    assert {"files", "records", "bytes", "latency_hours"} <= set(r["new"])
    assert (golden_impact.out / "impact.md").read_text() == golden_impact.markdown
    assert not list(golden_impact.out.parent.glob(".*tmp-impact*"))


# --------------------------------------------------------------------------- what is shared


def _edited(tmp_path: Path, edit) -> rules.Ruleset:
    """A copy of emrr-revised with ``edit(files)`` applied to its YAML (file name -> data)."""
    folder = tmp_path / "edited"
    shutil.copytree(RULES_DIR / "emrr-revised", folder)
    data = {p.name: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    edit(data)
    for name, value in data.items():
        (folder / name).write_text(yaml.safe_dump(value, sort_keys=False))
    return rules.load(str(folder))


REVISED = rules.load("emrr-revised")


def test_a_ruleset_against_itself_shares_everything():
    """protects 'identical rulesets give no change': every report made once, nothing to check."""
    p = impact.plan(REVISED, REVISED)
    assert p.shared == tuple(REVISED.reports) and p.old == p.new == () and p.contract_changed == ()


ALL = tuple(REVISED.reports)


@pytest.mark.parametrize("edit, made_twice, checked", [
    # a clause reaches no file: shared, nothing for a parser to read differently
    (lambda d: d["ECOSMIG-002.yaml"]["schedule"].update(clause="another clause"), (), ()),
    # a longer ECoS Status: the engine writes the same bytes (shared), an old parser may reject them
    (lambda d: d["ECOSMIG-003.yaml"]["detail"]["fields"][7].update(max_length=12), (), ("ECOSMIG-003",)),
    # the schedule reaches files: made under each
    (lambda d: d["ECOSMIG-002.yaml"]["schedule"].update(cron="0 6 * * *"), ("ECOSMIG-002",), ("ECOSMIG-002",)),
    # a ruleset-wide setting that reaches files (the line end): every report made under each
    (lambda d: d["ruleset.yaml"]["csv"].update(line_terminator="\n"), ALL, ALL),
], ids=["clause", "max_length", "cron", "line_terminator"])
def test_what_is_shared(tmp_path, edit, made_twice, checked):
    """protects how sharing is decided (conformance/impact.py file_definition, file_settings):
    the typed Report less what reaches no file, and the ruleset-wide settings that reach files."""
    p = impact.plan(REVISED, _edited(tmp_path, edit))
    assert p.old == p.new == made_twice
    assert p.shared == tuple(r for r in ALL if r not in made_twice)
    assert p.contract_changed == checked


# --------------------------------------------------------------------------- bad input


def _cli(capsys, *args: str) -> tuple[int, str]:
    status = main(["impact", *args])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("case", ["unknown ruleset", "invalid ruleset", "no event log", "not an event log",
                                  "out not empty"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, capsys, golden_log, tmp_path):
    """protects issue 9 "Bad input": one line, exit 2, nothing half-written (no OUT, no temporary
    folder beside it; an OUT that was not empty keeps exactly what it held)."""
    old, events, out = "emrr-pre-revision", str(golden_log), tmp_path / "out"
    if case == "unknown ruleset":
        old = "no-such-ruleset"
    elif case == "invalid ruleset":
        shutil.copytree(RULES_DIR / "emrr-pre-revision", tmp_path / "broken")
        (tmp_path / "broken" / "ECOSMIG-002.yaml").write_text("id: ECOSMIG-002\nkind: [not, a, kind]\n")
        old = str(tmp_path / "broken")
    elif case == "no event log":
        events = str(tmp_path / "missing")
    elif case == "not an event log":
        (tmp_path / "notlog").mkdir()
        (tmp_path / "notlog" / "events.csv").write_text("a,b\n")
        events = str(tmp_path / "notlog")
    else:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    status, err = _cli(capsys, old, "emrr-revised", "--events", events, "--out", str(out))
    assert status == 2 and err.count("\n") == 1 and err.startswith("emrr: error: ")
    if case == "out not empty":
        assert [p.name for p in out.iterdir()] == ["keep.txt"] and "not empty" in err
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "tmp-impact" in p.name] == []


def test_the_command_line_writes_the_json(capsys, golden_log, tmp_path):
    """protects --json FILE and exit 0 when it ran."""
    status = main(["impact", "emrr-pre-revision", "emrr-revised", "--events", str(golden_log),
                   "--out", str(tmp_path / "out"), "--json", str(tmp_path / "impact.json"), "--no-progress"])
    assert status == 0
    data = json.loads((tmp_path / "impact.json").read_text())
    assert data["reports"]["ECOSMIG-002"]["moved_records"] == 3
    assert "ECOSMIG-002" in capsys.readouterr().out


def test_a_longer_field_is_made_once_and_its_files_checked(simulated, tmp_path):
    """protects the old parser's view of a change that reaches no byte (issue 9: "Nothing spots that
    the consultation draft's ECoS Status (7 characters) cannot hold its own value 'Installed'"):
    draft -> revised makes every report once (the files are identical), and checks the files of
    the two reports whose definition a parser reads differently: every ECOSMIG-003 file holding
    "Installed" is rejected for its form (field-length)."""
    result = impact.impact("emrr-consultation-draft", "emrr-revised", simulated("demo").path, tmp_path / "out")
    data = result.data
    assert data["plan"]["shared"] == ["ECOSMIG-00" + str(n) for n in range(1, 7)]
    assert all(r["identical"] and r["moved_records"] == 0 for r in data["reports"].values())
    installed = [p for p in (tmp_path / "out" / "new").rglob("ECOSMIG-003_*.csv") if b",Installed," in p.read_bytes()]
    rej = data["old_parser_rejects"]
    assert rej["checked_reports"] == ["ECOSMIG-003", "ECOSMIG-005"] and len(installed) > 0
    assert rej["by_check"] == {"field-length": len(installed)}
    assert rej["files_rejected"] == rej["files_rejected_for_form_or_content"] == len(installed)
