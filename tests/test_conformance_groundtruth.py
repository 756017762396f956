"""Ground-truth checks (conformance/groundtruth.py, ``emrr check DIR --events LOG``): the engine's
own output gives no ground-truth finding; each hand-made defect gives exactly its ground-truth
findings (file, line, field, check); nothing in the files crashes it; ``emrr run`` ends with the
verdict."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrr import cli
from emrr.conformance import groundtruth
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.findings import Finding, Verdict
from emrr.conformance.mutations import Delivery
from emrr.rules import engine
from emrr.rules import ruleset as rules
from tests import cases, golden

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = golden.EXPECTED
RULES = rules.load(None)

CASES = cases.load("groundtruth")  # tests/cases/groundtruth.json: the hand-made defects, as data

A1 = golden.file("ECOSMIG-001", "PSUP01", 1)
A2 = golden.file("ECOSMIG-001", "PSUP01", 2)
S2 = golden.file("ECOSMIG-001", "PSUP02", 2)
D1 = golden.file("ECOSMIG-002", "PSUP02", 1)
B = golden.file("ECOSMIG-003", "PSUP02", 1)
F1 = golden.file("ECOSMIG-006", "PSUP01", 1)
F2 = golden.file("ECOSMIG-006", "PSUP02", 1)


def gt_keys(verdict) -> list[tuple]:
    return sorted((k for k in verdict.tuples() if k[3].startswith("gt-")), key=cases.order)


def golden_copy(tmp: Path) -> Delivery:
    """A copy of the golden delivery to edit (mutations.Delivery)."""
    shutil.copytree(GOLDEN, tmp / "reports")
    return Delivery(tmp / "reports", RULES)


def test_golden_files_give_no_ground_truth_finding(golden_log):
    verdict = check(GOLDEN, RULES, events=golden_log)
    assert verdict.errors == 0 and gt_keys(verdict) == []
    assert set(verdict.totals) <= {"late-record"}
    assert any("22 record(s) of the directory matched one" in n for n in verdict.notes)


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_hand_made_defect_gives_exactly_its_ground_truth_findings(tmp_path, golden_log, case):
    """Each case of tests/cases/groundtruth.json: exactly its ground-truth findings."""
    assert CASES["events"] == "reference"  # the golden log
    d = cases.prepare(CASES, case, tmp_path / "reports", RULES)
    verdict = check(d.root, RULES, events=golden_log)
    assert gt_keys(verdict) == [cases.key(f) for f in case["findings"]]
    assert all(f.severity == "error" for f in verdict if f.check.startswith("gt-"))


def test_every_ground_truth_check_has_a_defect():
    assert {f["check"] for case in CASES["cases"] for f in case["findings"]} == groundtruth.GT_CHECKS


def test_findings_explain_themselves(tmp_path, golden_log):
    d = golden_copy(tmp_path)
    d.move_line(A1, 2, S2, 3)
    d.delete_line(F1, 3, recount=True)
    d.set_field(D1, 2, 2, "3938424404")
    d.delete(B)
    by_check = {f.check: f.message for f in check(d.root, RULES, events=golden_log) if f.check.startswith("gt-")}
    assert re.search(r"Device ID '00-00-00-00-00-00-00-05'.*delivered to PSUP02; the event log gives PSUP01 .*"
                     + re.escape(A1), by_check["gt-wrong-recipient"])
    assert "the run created 20230715T060000" in by_check["gt-wrong-run"]
    assert "the run created 20230704T060000" in by_check["gt-wrong-run"] and A1 in by_check["gt-wrong-run"]
    assert "'3938424404'; the event log gives '3938424403'" == by_check["gt-field-mismatch"]
    assert "00-00-00-00-00-00-00-0E" in by_check["gt-missing-record"]
    assert "20230722T110000" in by_check["gt-missing-record"]
    assert "ECOSMIG-003 for PSUP02" in by_check["gt-missing-file"] and "2 record(s)" in by_check["gt-missing-file"]


def test_a_file_moved_to_another_folder_is_still_its_file(tmp_path, golden_log):
    """Files are paired by what they are (report, recipient, run), not by path: a file kept in
    the wrong folder is a file-name finding, not a ground-truth one."""
    d = golden_copy(tmp_path)
    d.move(A1, "elsewhere/" + Path(A1).name)
    verdict = check(d.root, RULES, events=golden_log)
    assert gt_keys(verdict) == []
    assert ("elsewhere/" + Path(A1).name, None, None, "file-name") in verdict.tuples()


def test_a_suppliers_own_folder_against_the_whole_event_log(tmp_path, golden_log):
    """A supplier checks the files it received: another supplier's files are not missing, but
    another supplier's record among its own is found."""
    root = tmp_path / "received"
    shutil.copytree(GOLDEN / "PSUP02", root)
    verdict = check(root, RULES, events=golden_log)
    assert gt_keys(verdict) == [] and verdict.errors == 0
    assert any("the files of 1 recipient(s) with no file in the directory (PSUP01) were not expected here" in n
               for n in verdict.notes)
    d = Delivery(root, RULES)
    d.insert_line(F2.rpartition("/")[2], 3, Delivery(GOLDEN, RULES).lines(F1)[2], recount=True)  # PSUP01's device
    verdict = check(root, RULES, events=golden_log)
    assert gt_keys(verdict) == [("ECOSMIG-006_PSUP02_1_20230801060000.csv", 3, None, "gt-wrong-recipient")]
    message = next(f.message for f in verdict if f.check == "gt-wrong-recipient")
    assert "the event log gives PSUP01" in message and "PSUP01 has no file in this directory" in message


def test_a_delivery_split_by_report_with_expect_reports(tmp_path, golden_log):
    """protects gt-missing-file's scope: by default every file of a recipient present is expected
    (the other reports' files are missing); with expect="reports" only each (report, recipient)
    present is, so a pipeline that splits its files by report checks each part alone; a file of
    a present pair still goes missing."""
    root = tmp_path / "only-001"
    for path in sorted(GOLDEN.rglob("ECOSMIG-001_*.csv")):
        target = root / path.relative_to(GOLDEN)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    assert "gt-missing-file" in check(root, RULES, events=golden_log).totals
    verdict = check(root, RULES, events=golden_log, expect="reports")
    assert verdict.totals == {}
    assert any("--expect reports" in n for n in verdict.notes)
    (root / A2).unlink()
    assert gt_keys(check(root, RULES, events=golden_log, expect="reports")) == [(A2, None, None, "gt-missing-file")]
    assert cli.main(["check", str(root), "--events", str(golden_log), "--expect", "reports"]) == 1
    assert cli.main(["check", str(root), "--events", str(golden_log), "--expect", "files"]) == 2


def test_a_run_the_outages_cancelled_is_said_to_have_not_happened(tmp_path, golden_log):
    """protects the explanation of gt-unexpected-file and gt-wrong-run: a file made for a run that
    the event log's outages cancelled (ECOSMIG-001 on 14 July) says the run did not happen, not
    that the event could not be reported yet."""
    d = golden_copy(tmp_path)
    moved = "PSUP02/ECOSMIG-001_PSUP02_2_20230714060000.csv"
    d.replace(S2, "20230715T060000,20230714T000000,20230714T235959", "20230714T060000,20230713T000000,20230713T235959")
    d.move(S2, moved)
    verdict = check(d.root, RULES, events=golden_log)
    assert gt_keys(verdict) == [(moved, None, None, "gt-unexpected-file"), (moved, 2, None, "gt-wrong-run"),
                                (S2, None, None, "gt-missing-file")]
    for check_id in ("gt-unexpected-file", "gt-wrong-run"):
        message = next(f.message for f in verdict if f.check == check_id)
        assert "outage of ECOSMIG-001 from 20230713T000000 to 20230715T000000: this run did not happen" in message


def test_a_missing_file_whose_records_all_went_elsewhere(tmp_path, golden_log):
    d = golden_copy(tmp_path)
    d.insert_line(A2, 2, d.lines(A1)[1], recount=True)
    d.delete(A1)
    verdict = check(d.root, RULES, events=golden_log)
    assert gt_keys(verdict) == [(A1, None, None, "gt-missing-file"), (A2, 2, None, "gt-wrong-run")]
    assert "1 of its records are in other files" in next(f.message for f in verdict if f.check == "gt-missing-file")


def test_selection_and_no_event_log(tmp_path, golden_log):
    d = golden_copy(tmp_path)
    d.delete_line(F1, 3, recount=True)
    root = d.root
    assert gt_keys(check(root, RULES)) == []  # without the event log: not run
    assert "need the event log" in " ".join(check(root, RULES).notes)
    assert gt_keys(check(root, RULES, events=golden_log, ignore={"gt-missing-record"})) == []
    assert check(root, RULES, events=golden_log, select={"gt-missing-record"}).tuples() == [
        (F1, None, None, "gt-missing-record")]


def test_the_temporary_reference_is_removed(tmp_path, golden_log, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    check(GOLDEN, RULES, events=golden_log)
    assert not list(tmp_path.glob("emrr-groundtruth-*"))


# --------------------------------------------------------------------------- the engine's own output


@pytest.mark.parametrize("name", ["demo", "regional", "late_data", "outages", "heavy_switching"])
def test_engine_output_gives_no_finding_with_or_without_ground_truth(simulated, tmp_path, name):
    """protects the reference itself (issue: the engine's output for the demo and regional
    scenarios gives zero findings, with and without ground truth): not one finding, error or
    warning, and every record of the directory matched to an event."""
    log = simulated(name)
    summary = engine.report(log.path, tmp_path / "reports", RULES, progress=False)
    records = sum(s.records for s in summary.per_report.values())
    alone = check(tmp_path / "reports", RULES)
    assert alone.totals == {} and alone.records == records, alone[:5]
    verdict = check(tmp_path / "reports", RULES, events=log.path)
    assert verdict.totals == {}, verdict[:5]
    assert any(f"{records:,} record(s) of the directory matched one" in n for n in verdict.notes)


def test_the_demo_broken_by_hand(simulated, tmp_path):
    """A realistic tree: one record moved to another supplier's file of the same run, one to a
    later run, one changed, one deleted, one invented; exactly those ground-truth findings."""
    log = simulated("demo")
    root = tmp_path / "reports"
    engine.report(log.path, root, RULES, progress=False)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("ECOSMIG-001_*.csv"))
    by_run: dict[str, list[str]] = {}
    for rel in files:
        by_run.setdefault(rel.rsplit("_", 1)[1], []).append(rel)
    lines = Delivery(root, RULES).lines
    run, (a, b, *_) = next((k, v) for k, v in sorted(by_run.items())
                           if len(v) >= 2 and len(lines(v[0])) > 7 and len(lines(v[1])) > 3)
    party = a.split("/")[0]
    later = next(r for r in files if r.startswith(party + "/") and r.rsplit("_", 1)[1] > run)
    d = Delivery(root, RULES)
    d.move_line(a, 2, b, 2)  # another supplier, same run
    d.move_line(a, 2, later, 2)  # same supplier, a later run
    d.set_field(a, 2, 4, "ZZZZ")  # Device Manufacturer
    record = d.delete_line(a, len(d.lines(a)) - 2, recount=True)  # the last detail record (then the trailer, b"")
    d.insert_line(a, 2, b"10,FF-FF-FF-FF-FF-FF-FF-FF" + record[record.index(b",", 3):], recount=True)  # nobody's
    verdict = check(root, RULES, events=log.path)
    assert gt_keys(verdict) == sorted([
        (b, 2, None, "gt-wrong-recipient"), (later, 2, None, "gt-wrong-run"),
        (a, 3, "Device Manufacturer", "gt-field-mismatch"), (a, None, None, "gt-missing-record"),
        (a, 2, None, "gt-unexpected-record")], key=cases.order)


# --------------------------------------------------------------------------- never crashes


def _mutate(data: bytes, ops: list[tuple]) -> bytes:
    for op, a, b in ops:
        if not data:
            data = bytes([a % 256])
        i = a % (len(data) + 1)
        if op == "flip":
            data = data[:i] + bytes([b]) + data[i + 1:]
        elif op == "truncate":
            data = data[:i]
        elif op == "insert":
            data = data[:i] + [b",", b'"', b"\r\n", b"\x00", b"\xff", b"10,", b"99,1,", b"00-00"][b % 8] + data[i:]
        elif op == "duplicate":
            lines = data.split(b"\r\n")
            lines.insert(a % len(lines), lines[b % len(lines)])
            data = b"\r\n".join(lines)
    return data


GOLDEN_FILES = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.csv"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(targets=st.lists(st.sampled_from(GOLDEN_FILES), min_size=1, max_size=3, unique=True),
       ops=st.lists(st.tuples(st.sampled_from(["flip", "truncate", "insert", "duplicate"]),
                              st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=5),
       rename=st.none() | st.from_regex(r"ECOSMIG-00[1-6]_PSUP0[1-3]_[0-9]{1,2}_2023070[1-9]0[0-9]0000\.csv",
                                        fullmatch=True))
def test_random_garbage_never_crashes_the_ground_truth(golden_log, targets, ops, rename):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "reports"
        shutil.copytree(GOLDEN, root)
        for rel in targets:
            (root / rel).write_bytes(_mutate((root / rel).read_bytes(), ops))
        if rename:
            (root / targets[0]).rename(root / targets[0].split("/")[0] / rename)
        verdict = check(root, RULES, events=golden_log, max_examples=5)
        assert all(f.check in CATALOGUE and f.severity == CATALOGUE[f.check].severity for f in verdict)


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02", b"\xff\xfe" * 50, b'"' * 7, b"10," * 5000,
                                  b"00,ECOSMIG-001,PSUP01,3\r\n10,a,b\r\n99,1\r\n"])
def test_odd_files_with_ground_truth(tmp_path, golden_log, data):
    d = golden_copy(tmp_path)
    d.write(A1, data)
    verdict = check(d.root, RULES, events=golden_log)
    assert verdict.errors > 0
    assert (A1, None, None, "gt-missing-record") in verdict.tuples()  # its one record could not be read


# --------------------------------------------------------------------------- the command line


def test_cli_check_with_events(tmp_path, golden_log, capsys):
    from xml.etree import ElementTree

    assert cli.main(["check", str(GOLDEN), "--events", str(golden_log)]) == 0
    assert "ground truth" in capsys.readouterr().out
    d = golden_copy(tmp_path)
    d.move_line(F1, 3, F2, 3)
    root = d.root
    x = tmp_path / "v.xml"
    assert cli.main(["check", str(root), "--events", str(golden_log), "--junit", str(x)]) == 1
    out = capsys.readouterr().out
    assert "gt-wrong-recipient" in out and "FAIL" in out
    cases = {c.get("name"): c for c in ElementTree.parse(x).getroot().findall(".//testcase")}
    assert cases["gt-wrong-recipient"].find("failure") is not None
    assert cases["gt-missing-record"].find("failure") is None and cases["gt-missing-record"].find("skipped") is None
    assert cli.main(["check", str(root), "--events", str(golden_log), "--select", "ground-truth"]) == 1
    assert cli.main(["check", str(root), "--events", str(golden_log), "--ignore", "ground-truth"]) == 0
    assert cli.main(["check", str(root), "--junit", str(x)]) == 0  # without the event log: skipped
    cases = {c.get("name"): c for c in ElementTree.parse(x).getroot().findall(".//testcase")}
    assert all(cases[c].find("skipped") is not None for c in groundtruth.GT_CHECKS)


def test_cli_check_with_a_bad_event_log_cannot_run(tmp_path, capsys):
    (tmp_path / "log").mkdir()
    assert cli.main(["check", str(GOLDEN), "--events", str(tmp_path / "log")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emrr: error: ") and "\n" not in err


def test_emrr_run_ends_with_the_verdict(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    tail = text[text.index("checked "):]
    assert f"checked {out / 'reports'} against emrr-revised" in tail
    assert "ground truth: the event log" in tail and "gt-" not in tail
    assert tail.rstrip().splitlines()[-1].startswith("PASS: 0 error(s)")


def test_emrr_run_exits_1_when_its_check_finds_an_error(tmp_path, capsys, monkeypatch):
    from emrr.conformance import checker

    seen = {}

    def broken(directory, rs, **kwargs):
        seen.update(kwargs, directory=Path(directory))
        finding = Finding("PXX001/x.csv", 2, "MPxN", "gt-field-mismatch", "error", "'1'; the event log gives '2'")
        return Verdict([finding], {"gt-field-mismatch": 1}, files=1, records=1)

    monkeypatch.setattr(checker, "check", broken)
    out = tmp_path / "demo"
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress"]) == 1
    assert seen["directory"] == out / "reports" and Path(seen["events"]) == out / "events"
    assert "FAIL: 1 error(s)" in capsys.readouterr().out
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress",
                     "--no-check"]) == 0
