"""Golden files: a tiny hand-built event log (conformance/logs/reference.yaml) and every report file it
must give, written out by hand from the EMRR (spec/001 App. A, App. B) and DESIGN.md, compared
byte for byte.

What the log exercises, file by file (tests/golden/expected/):
- ECOSMIG-001: daily 06:00 for the previous day (App. A); a GPF reported to the gas supplier
  (spec/003 §25a, PSUP02_1); a change of supplier between the event and its report goes to the
  supplier at the event (PSUP01_2: 2023-07-05 10:00 success, switch 20:00, report next 06:00);
  an outage of the 13th and 14th runs: the record waits for the next run (PSUP02_2, §3.1.6).
- ECOSMIG-002: every 6 hours, window ending an hour before the run; an event at 05:00:00 just
  misses the 06:00 run; a duplicated notification is reported once; a late notification
  (occurred 10th 03:00, learned 11th 09:30) goes in the first run after it was learned.
- ECOSMIG-003: the gaining supplier's history of the devices whose supplier changed in July:
  latest Failure (with code) and Success (codes empty) at the end of the month.
- ECOSMIG-004: a Non-Migratable combination classified on the 5th, counted each Monday after.
- ECOSMIG-005: counts by the day the events happened; a missed Monday run made up at the next.
- ECOSMIG-006: installs with ECoS credentials, GPF by its gas supplier.
- PSUP03 has no activity: no file; empty reports are not produced and take no sequence number.
"""

from __future__ import annotations

from pathlib import Path

from emrr.rules import engine, ruleset
from tests.golden import EXPECTED, build


def produced(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))}


def test_every_report_file_is_byte_for_byte_the_hand_written_one(tmp_path):
    log = build(tmp_path / "log")
    engine.report(log, tmp_path / "out", ruleset.load(), progress=False)
    expected = {str(p.relative_to(EXPECTED)): p.read_bytes() for p in sorted(EXPECTED.rglob("*.csv"))}
    got = produced(tmp_path / "out")
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name


def test_a_supplier_with_no_activity_gets_no_folder(tmp_path):
    log = build(tmp_path / "log")
    engine.report(log, tmp_path / "out", ruleset.load(), progress=False)
    assert not (tmp_path / "out" / "PSUP03").exists()


def test_files_are_crlf_utf8_without_bom(tmp_path):
    log = build(tmp_path / "log")
    engine.report(log, tmp_path / "out", ruleset.load(), progress=False)
    for name, data in produced(tmp_path / "out").items():
        assert not data.startswith(b"\xef\xbb\xbf"), name
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b""), name
        data.decode("utf-8")
