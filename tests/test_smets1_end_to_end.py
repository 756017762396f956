"""End to end under the SMETS1 MRR v3.0 (issue 10, deliverable 4): scenarios/smets1.yaml simulated,
reported with smets1-mrr-v3.0 and checked (ground truth included) by `emrr run`, which ends with
the checker's PASS; the same delivery passes the v3.0 reconciliation of S1MIG-006's successes with
S1MIG-001 (spec/004 L115); and the delivery checked against the EMRR gives findings, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from emrr import cli
from emrr.conformance.checker import check
from emrr.conformance.crossfile import declared_reconciliations
from emrr.rules import ruleset as rules
from tests.test_smets1_checker import _load_v30

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smets1-e2e") / "run"
    code = cli.main(["run", str(ROOT / "scenarios" / "smets1.yaml"), "--ruleset", "smets1-mrr-v3.0", "--out", str(out),
                     "--no-progress"])
    assert code == 0  # the run ends with the checker's verdict: 0 is PASS (docs/checks.md)
    return out


def test_run_ends_with_pass_and_reconciles(run):
    """Every file and record of the run against the ruleset and its event log: no error, no
    warning; with the v3.0 reconciliation declared, S1MIG-006's Success records and S1MIG-001's
    records match for every recipient over the time both reports cover."""
    rs = _load_v30()
    assert declared_reconciliations(rs.reports["S1MIG-006"], rs)
    verdict = check(run / "reports", rs, events=run / "events")
    assert verdict.errors == 0 and verdict.warnings == 0, verdict[:5]
    assert verdict.files > 100 and verdict.records > 1000


def test_smets1_run_against_the_emrr_ruleset(run):
    """The SMETS1 delivery against the revised EMRR: findings (names, no trailer), never a crash."""
    verdict = check(run / "reports", rules.load(None))
    assert verdict.errors > 0 and {"file-name", "record-order"} <= {f.check for f in verdict}


def test_header_figures_against_the_event_log(run, tmp_path):
    """S1MIG-009's header carries the recipient's own figures (002:L632-651, `{own: COLUMN}`): with the
    event log as ground truth, a changed figure is gt-field-mismatch at the header, naming its field."""
    import shutil

    reports = tmp_path / "reports"
    shutil.copytree(run / "reports", reports)
    rs = _load_v30()
    path = sorted(reports.glob("*/S1MIG-009_*.csv"))[0]
    layout = rs.reports["S1MIG-009"].header_fields(rs)
    i = next(k for k, f in enumerate(layout) if f.source_kind == "own" and f.type == "integer")
    lines = path.read_bytes().split(b"\r\n")
    header = lines[0].decode().split(",")
    header[i] = str(int(header[i]) + 1)
    lines[0] = ",".join(header).encode()
    path.write_bytes(b"\r\n".join(lines))
    verdict = check(reports, rs, events=run / "events")
    rel = path.relative_to(reports).as_posix()
    assert [(f.file, f.line, f.field, f.check) for f in verdict if f.severity == "error"] == [
        (rel, 1, layout[i].name, "gt-field-mismatch")]


def test_record_in_another_supplier_s_file(run, tmp_path):
    """An S1MIG-001 record moved to another supplier's file of the same run: with the event log as ground
    truth it is gt-wrong-recipient there, the message naming the parties the row names (the ruleset's
    recipient.columns, listed_parties), and nothing else."""
    import shutil
    from collections import defaultdict

    from emrr.conformance.mutations import Delivery

    reports = tmp_path / "reports"
    shutil.copytree(run / "reports", reports)
    rs = rules.load("smets1-mrr-v3.0")
    d = Delivery(reports, rs)
    by_run = defaultdict(list)
    dnos = {f.recipient for f in d.of("S1MIG-005")} - {f.recipient for f in d.of("S1MIG-006")}  # 006: suppliers only
    for f in d.of("S1MIG-001", min_details=2):
        if f.recipient not in dnos:
            by_run[f.created].append(f)
    source, target = next(files[:2] for _, files in sorted(by_run.items()) if len(files) >= 2)
    line, _ = d.details(source.rel)[-1]
    d.move_line(source.rel, line, target.rel, len(d.rows(target.rel)) + 1)
    verdict = check(reports, rs, events=run / "events")
    found = [(f.file, f.line, f.check) for f in verdict if f.severity == "error"]
    moved_to = len(d.rows(target.rel))
    assert found == [(target.rel, moved_to, "gt-wrong-recipient")], found
    assert "the parties its row names (mpan_recipient_id" in next(f.message for f in verdict)
