"""Golden files of the SMETS1 MRR v3.0 (issue 10 deliverable 5): the hand-built SMETS1 log
(conformance/logs/smets1.yaml) and every report file the ruleset smets1-mrr-v3.0 must make from it,
written out by hand from spec/002 (as concluded by spec/004) under the readings the ruleset declares
(docs/smets1.md), compared byte for byte.

What the log exercises, report by report (tests/golden/smets1-mrr-v3.0/<Party Signifier>/):
- S1MIG-001 (every 6 h, the window ending an hour before the run, 002:L212, A8): a success learned a
  day late goes in the first run after it was learned (Installation 1); a split-supplier Installation
  seen by each supplier without the other's meter and by the DNO whole (002:L264, Installation 2);
  an Affiliates' joint MA reported to its submitter only (002:L73, Installation 3); a completion
  notified twice reported once (Installation 4).
- S1MIG-002: a failure at the S1SP Commissioning File (Installation 3's first attempt), to its
  supplier and DNO; the MCVF failure and the DA pre-validation failure are in no S1MIG-002 (002:L506).
- S1MIG-003: 'Group File Received' and 'Commissioning Pending' at 23:59:59, as known at 06:00.
- S1MIG-004: 28-day cohorts by commencement day, durations, a second attempt (rolling: three runs).
- S1MIG-005: the day's activity per supplier, DNO and Group ID, to suppliers and the DNO.
- S1MIG-006: one record per MA completed (Success, Failed for a rejection, an MCVF failure and a DA
  pre-validation failure, Warning for an expired MA); no device block without an MCF (002:L557-561);
  v2.8's 'In Progress' events are not selected (spec/004 §4.5).
- S1MIG-007: Active commencements against the Demand Commitments, a committed day with none.
- S1MIG-008: MAs by the Migration Week they are for, against the week's commitment, four weeks.
- S1MIG-009: every supplier, its own figures in the header, the others anonymised and ranked; a
  supplier with no MA (S3) gets zeros.
- S1MIG-010: Thursday's validation responses, Active MAs only, the Dormant-meter indicator.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from emrr.conformance import handlog
from emrr.errors import UserError
from emrr.rules import engine, ruleset

EXPECTED = Path(__file__).parent / "golden" / "smets1-mrr-v3.0"
LOG_FILE = Path(handlog.__file__).parent / "logs" / "smets1.yaml"


def produced(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.csv"))}


@pytest.fixture(scope="module")
def delivery(tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("smets1-golden")
    log = handlog.build(handlog.load("smets1"), work / "log")
    engine.report(log, work / "out", ruleset.load("smets1-mrr-v3.0"), progress=False)
    return produced(work / "out")


def test_every_report_has_a_golden_file():
    """Issue 10: golden files for every S1MIG report, each declared by the log."""
    names = [p.name for p in EXPECTED.rglob("*.csv")]
    reports = sorted({name.split("_")[0] for name in names})
    assert reports == sorted(ruleset.load("smets1-mrr-v3.0").reports) == sorted(handlog.load("smets1").reports)


def test_golden_files_follow_appendix_b():
    """The hand-written files themselves: MRR App. B names (002:L741-751: Report ID, 6-character Signifier,
    23-character User ID, 6-digit sequence from 000001, UTC DateTime), in the Party's folder (002:L737),
    records '00' then '10' only (no trailer), CRLF, and each (report, recipient)'s sequence numbers 1, 2, ...
    in the order of their runs."""
    pattern = re.compile(r"^(S1MIG-0(?:0[1-9]|10))_([A-Z0-9]{6})_((?:[0-9A-F]{2}-){7}[0-9A-F]{2})_([0-9]{6})_"
                         r"([0-9]{8}T[0-9]{6})\.csv$")
    runs: dict[tuple, list] = {}
    for path in EXPECTED.rglob("*.csv"):
        match = pattern.match(path.name)
        assert match, path.name
        report, party, user, sequence, created = match.groups()
        assert path.parent.name == party
        lines = path.read_bytes().split(b"\r\n")
        assert lines[-1] == b"" and all(b"\n" not in line for line in lines)
        header = lines[0].decode().split(",")
        assert header[:4] == ["00", report, user, str(int(sequence))] and header[5] == created
        assert all(line.startswith(b"10,") for line in lines[1:-1]) and len(lines) > 2
        runs.setdefault((report, user), []).append((created, int(sequence)))
    for key, seen in runs.items():
        assert [s for _, s in sorted(seen)] == list(range(1, len(seen) + 1)), key


def test_every_report_file_is_byte_for_byte_the_hand_written_one(delivery):
    """The engine's delivery for the golden SMETS1 log under smets1-mrr-v3.0 is exactly the hand-written
    files: the same names, and each file's bytes."""
    expected = produced(EXPECTED)
    assert sorted(delivery) == sorted(expected)
    for name in expected:
        assert delivery[name] == expected[name], name


# ----------------------------------------------------------------------------- the hand log as data


def test_smets1_hand_log_is_data_checked_against_the_contract():
    """conformance/logs/smets1.yaml loads as a SMETS1 log; its tables are emrr.contract.SMETS1_TABLES'
    (every column written, null where the log gives none); a column the contract lacks, a value of the
    wrong kind, a row short of a value, an unknown event type or device is one error naming the file and
    where in it (file:line: at YAML path)."""
    log = handlog.load("smets1")
    assert log.regime == "smets1"
    data = yaml.safe_load(LOG_FILE.read_text(encoding="utf-8"))
    assert handlog.parse(yaml.safe_dump(data, sort_keys=False), "x.yaml") == log

    def broken(edit) -> str:
        changed = copy.deepcopy(data)
        edit(changed)
        with pytest.raises(UserError) as caught:
            handlog.parse(yaml.safe_dump(changed, sort_keys=False), "x.yaml")
        return str(caught.value)

    assert re.match(r"x\.yaml:\d+: at events\.columns\[1\]: .*'kind'",
                    broken(lambda d: d["events"]["columns"].__setitem__(1, "kind")))
    assert re.match(r"x\.yaml:\d+: at events\.rows\[0\]\[4\]: ",
                    broken(lambda d: d["events"]["rows"][0].__setitem__(4, "3 July")))
    assert re.match(r"x\.yaml:\d+: at installations\.rows\[0\]: expected 18 values",
                    broken(lambda d: d["installations"]["rows"][0].pop()))
    assert "unknown event type 'migrated'" in broken(lambda d: d["events"]["rows"][0].__setitem__(1, "migrated"))
    assert "['HUB']" in broken(lambda d: d["installations"]["rows"][0][-1].append("HUB"))
    assert re.match(r"x\.yaml:\d+: at installations\.rows\[0\]\[3\]: expected bool",
                    broken(lambda d: d["installations"]["rows"][0].__setitem__(3, "no")))


def test_smets1_hand_log_builds_the_regime_s_tables(tmp_path):
    """handlog.build writes a SMETS1 log the report engine opens: manifest.json names the regime, every
    table and column of the contract is there, and an Installation's device block and ID come from its
    devices (the Installation ID is the CHF's GUID, 002:L243)."""
    import json

    import pyarrow.parquet as pq

    from emrr import contract

    root = handlog.build(handlog.load("smets1"), tmp_path / "log")
    assert json.loads((root / "manifest.json").read_text(encoding="utf-8"))["regime"] == "smets1"
    for table, columns in contract.SMETS1_TABLES.items():
        files = list(root.glob(f"{table}/*.parquet")) or [root / f"{table}.parquet"]
        assert pq.read_schema(files[0]).names == list(columns), table
    rows = pq.read_table(root / "installations").to_pylist()
    second = next(r for r in rows if r["installation_index"] == 2)
    assert second["installation_id"] == second["chf_guid"] == handlog.device_guid(2, "CHF") == "00-00-00-00-00-02-00-01"
    first = next(r for r in rows if r["installation_index"] == 1)
    assert second["cad_device_type"] == "CAD" and first["cad_guid"] is None  # Installation 1 has no CAD


# ----------------------------------------------------------------------------- v2.8 against v3.0

S1, S2 = "70-B3-D5-1F-30-00-A0-01", "70-B3-D5-1F-30-00-A0-02"
MA_S1, MA_S2 = f"MA_SM1_{S1}_20230703_080000", f"MA_SM1_{S2}_20230703_090000"
# Installation 2's device block as each supplier of the split sees it (002:L556): all but the other's meter
I2_CHF_GPF = ("00-00-00-00-00-02-00-01,1234,CHF-A1,CHF,01010101,00-00-00-00-00-02-00-02,1234,GPF-A1,GPF,01010102")
I2_ESME = "00-00-00-00-00-02-00-03,5678,ESME-B2,ESME,02020202"
I2_GSME = "00-00-00-00-00-02-00-04,5678,GSME-C3,GSME,03030303"
I2_REST = ("00-00-00-00-00-02-00-05,9ABC,PPMID-D4,PPMID,0404,00-00-00-00-00-02-00-06,9ABC,IHD-E5,IHD,0505,"
           "00-00-00-00-00-02-00-07,DEF0,CAD-F6,CAD,0606")
IN_PROGRESS = {  # v2.8's 'In Progress' records of Installation 2's MAs, S1MIG-006 of 5 Jul (002:L504, L540)
    S1: f"10,{S1},{MA_S1},1400000000022,,,20230703,0,20230703,,20230704,In Progress,,MCF-000004,"
        f"{I2_CHF_GPF},{I2_ESME},,,,,,{I2_REST}",
    S2: f"10,{S2},{MA_S2},,1000002,,20230703,0,20230703,,20230704,In Progress,,MCF-000004,"
        f"{I2_CHF_GPF},,,,,,{I2_GSME},{I2_REST}",
}


def _renumbered(name: str, data: bytes, sequence: int) -> tuple[str, bytes]:
    """A golden file as the same report's file numbered ``sequence`` (its name and its header)."""
    parts = name.split("_")
    parts[-2] = f"{sequence:06d}"
    lines = data.split(b"\r\n")
    header = lines[0].split(b",")
    header[3] = str(sequence).encode()
    return "_".join(parts), b"\r\n".join([b",".join(header), *lines[1:]])


def test_v2_8_reports_in_progress_that_v3_0_withdrew(tmp_path):
    """spec/004 §4.5 as files: on the golden log, smets1-mrr-v2.8 makes v3.0's files and, in S1MIG-006 of
    5 July, the 'In Progress' record of each MA of Installation 2 (S1SP Commissioning File 4 July 22:00, COF
    awaited, 004:L123): S1's file of that day gains it after the MCVF failure; S2 gains a file that day, and
    its later S1MIG-006 files are numbered one higher. Nothing else differs."""
    log = handlog.build(handlog.load("smets1"), tmp_path / "log")
    engine.report(log, tmp_path / "out", ruleset.load("smets1-mrr-v2.8"), progress=False)
    got = produced(tmp_path / "out")
    expected = produced(EXPECTED)
    s1_first = f"SUPA01/S1MIG-006_SUPA01_{S1}_000001_20230705T060000.csv"
    expected[s1_first] += IN_PROGRESS[S1].encode() + b"\r\n"
    later = sorted(n for n in expected if n.startswith(f"SUPB02/S1MIG-006_SUPB02_{S2}_") and "_000001_" not in n)
    for name in reversed(later):
        new_name, data = _renumbered(name, expected.pop(name), int(name.split("_")[-2]) + 1)
        expected[new_name] = data
    header = ("00,S1MIG-006," + S2 + ",2,Detail Report: Migration Authorisation Outcomes for the Previous Migration "
              "Day,20230705T060000,20230704")
    expected[f"SUPB02/S1MIG-006_SUPB02_{S2}_000002_20230705T060000.csv"] = (
        f"{header}\r\n{IN_PROGRESS[S2]}\r\n".encode())
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name
