"""The pre-revision ruleset (rules/emrr-pre-revision): spec/001 with its tracked changes rejected,
the OLD side of ``emrr impact emrr-pre-revision emrr-revised`` (issue 9 deliverable 4). It differs
from the revision in ECOSMIG-002's schedule only: daily at 06:00 for the previous day (spec/001
l.84, 279, 281, 285) instead of every 6 hours for the period ending an hour before the run. l.564's
rejected 7 for ECoS Status is not applied (it cannot hold "Installed"; the consultation draft
ruleset carries that contradiction)."""

from __future__ import annotations

import datetime as dt
import json

from emrr.conformance.checker import check
from emrr.conformance.impact import file_definition, file_settings
from emrr.rules import engine
from emrr.rules import ruleset as rules

REVISED = rules.load("emrr-revised")
PRE = rules.load("emrr-pre-revision")


def test_the_pre_revision_differs_from_the_revision_in_ecosmig_002_schedule_only():
    """protects the ruleset's fidelity to spec/001 with the changes rejected: the same reports,
    layouts, header, trailer and file settings; ECOSMIG-002's cron and window those of a daily
    report (as ECOSMIG-001's, §3.1.3), each cited with its line of spec/001."""
    assert PRE.name == "emrr-pre-revision" and "001_" in PRE.raw["source"]
    assert list(PRE.reports) == list(REVISED.reports)
    assert (PRE.header, PRE.trailer) == (REVISED.header, REVISED.trailer)
    assert file_settings(PRE) == file_settings(REVISED)
    changed = [rid for rid in PRE.reports if file_definition(PRE.reports[rid]) != file_definition(REVISED.reports[rid])]
    assert changed == ["ECOSMIG-002"]
    for rid in PRE.reports:  # not even a checker-only attribute differs elsewhere (ECoS Status stays 9)
        assert PRE.reports[rid].detail == REVISED.reports[rid].detail
    pre, daily = PRE.reports["ECOSMIG-002"], PRE.reports["ECOSMIG-001"]
    assert (pre.cron, pre.window) == (daily.cron, daily.window) == ("0 6 * * *", rules.Window("day", -1, 86400, 0))
    assert (pre.assignment, pre.event_types) == (REVISED.reports["ECOSMIG-002"].assignment, ("migration_failure",))
    for line in ("l.84", "l.279", "l.281", "l.285"):
        assert line in pre.raw["schedule"]["clause"]


def test_the_demo_under_the_pre_revision_checks_clean(simulated, tmp_path):
    """protects "it must load, the engine must run it, and the checker must give its own output no
    finding": the demo's files under the pre-revision pass every check, the ground truth included;
    every ECOSMIG-002 file is made at 06:00 for the whole previous day."""
    log = simulated("demo")
    summary = engine.report(log.path, tmp_path / "pre", PRE, progress=False)
    assert summary.per_report["ECOSMIG-002"].files > 0 and summary.too_long == {} and summary.warnings == []
    verdict = check(tmp_path / "pre", PRE, events=log.path)
    assert verdict.totals == {} and verdict.files == sum(s.files for s in summary.per_report.values())
    manifest = json.loads((tmp_path / "pre" / engine.MANIFEST).read_text())
    for entry in (e for e in manifest["files"] if e["report_id"] == "ECOSMIG-002"):
        created = dt.datetime.fromisoformat(entry["created"])
        start, end = (dt.datetime.fromisoformat(entry[k]) for k in ("window_start", "window_end"))
        assert (created.hour, created.minute) == (6, 0)
        assert start == (created - dt.timedelta(days=1)).replace(hour=0) and end == created.replace(hour=0) - \
            dt.timedelta(seconds=1)
