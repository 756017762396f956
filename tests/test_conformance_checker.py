"""The conformance checker (conformance/, docs/checks.md): valid trees give no error, each
hand-broken file gives exactly its (file, line, field, check) tuples, and no input crashes it."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from emrr.conformance import catalogue
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.rules import ruleset as rules
from emrr.rules import schedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrr import cli

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "expected"
RULES = rules.load(None)

A = "PSUP01/ECOSMIG-001_PSUP01_1_20230704060000.csv"
A2 = "PSUP01/ECOSMIG-001_PSUP01_2_20230706060000.csv"
B = "PSUP02/ECOSMIG-003_PSUP02_1_20230802080000.csv"
C = "PSUP01/ECOSMIG-005_PSUP01_1_20230710060000.csv"
C2 = "PSUP02/ECOSMIG-005_PSUP02_2_20230724060000.csv"
D = "PSUP02/ECOSMIG-002_PSUP02_1_20230703120000.csv"
D2 = "PSUP02/ECOSMIG-002_PSUP02_2_20230711120000.csv"
E2 = "PSUP01/ECOSMIG-004_PSUP01_2_20230717060000.csv"
E3 = "PSUP01/ECOSMIG-004_PSUP01_3_20230724060000.csv"
E4 = "PSUP01/ECOSMIG-004_PSUP01_4_20230731060000.csv"
F6 = "PSUP02/ECOSMIG-006_PSUP02_1_20230801060000.csv"
F601 = "PSUP01/ECOSMIG-006_PSUP01_1_20230801060000.csv"
S1 = "PSUP02/ECOSMIG-001_PSUP02_2_20230715060000.csv"
SEQ = "Report Sequence Number"
SUCC = "Quantity of Migrations Successfully Completed"
FAIL = "Quantity of Failed Migration Attempts"

# The golden files are the engine's answer to a hand-built log with two late notifications
# (conformance/logs/reference.yaml): a late record is allowed, and reported as a warning.
ALL = set(CATALOGUE)  # every check, the opt-in late-record included
BASELINE = {(S1, 2, "Migration Completion DateTime", "late-record"), (D2, 2, "Migration Failed DateTime", "late-record")}

HEADER_002 = ("00,ECOSMIG-002,PSUP02,3,Detail Report: ECoS Migrations Completed Unsuccessfully,20230713T000000,"
              "20230712T170000,20230712T225959,DCC Controlled")
HEADER_001 = ("00,ECOSMIG-001,PSUP01,3,Detail Report: ECoS Migrations Completed Successfully,20230707T060000,"
              "20230706T000000,20230706T235959,DCC Controlled")
A_DETAIL = "10,00-00-00-00-00-00-00-05,1312345678907,ESME,1057,54342152,00123402,20230703T011000"


# --------------------------------------------------------------------------- editing a copy of the golden tree


def _lines(root: Path, rel: str) -> list[bytes]:
    return (root / rel).read_bytes().split(b"\r\n")


def _put(root: Path, rel: str, lines: list[bytes]) -> None:
    (root / rel).write_bytes(b"\r\n".join(lines))


def apply(root: Path, edit: tuple) -> None:
    """One edit, as data: (kind, file, ...)."""
    kind, rel, *args = edit
    path = root / rel
    if kind == "field":  # ("field", file, line, index, value)
        line, index, value = args
        lines = _lines(root, rel)
        parts = lines[line - 1].split(b",")
        parts[index] = value if isinstance(value, bytes) else value.encode()
        lines[line - 1] = b",".join(parts)
        _put(root, rel, lines)
    elif kind == "line":  # ("line", file, line, text or None to delete)
        line, text = args
        lines = _lines(root, rel)
        if text is None:
            del lines[line - 1]
        else:
            lines[line - 1] = text.encode()
        _put(root, rel, lines)
    elif kind == "insert":  # ("insert", file, before line, text)
        line, text = args
        lines = _lines(root, rel)
        lines.insert(line - 1, text.encode())
        _put(root, rel, lines)
    elif kind == "write":  # ("write", file, bytes or str)
        (data,) = args
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    elif kind == "replace":  # ("replace", file, old bytes, new bytes)
        old, new = args
        path.write_bytes(path.read_bytes().replace(old, new))
    elif kind == "prefix":
        (data,) = args
        path.write_bytes(data + path.read_bytes())
    elif kind == "rename":  # ("rename", file, new file)
        (new,) = args
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        path.rename(root / new)
    elif kind == "delete":
        path.unlink()
    elif kind == "symlink":
        path.symlink_to(root / "nowhere" / "at-all.csv")
    else:
        raise ValueError(kind)


def golden_copy(tmp: Path) -> Path:
    root = tmp / "reports"
    shutil.copytree(GOLDEN, root)
    return root


def found(root: Path) -> list[tuple]:
    verdict = check(root, RULES, select=ALL)
    return sorted((k for k in verdict.tuples() if k not in BASELINE), key=_order)


def _order(key: tuple) -> tuple:
    file, line, field, check_id = key
    return (file, -1 if line is None else line, field or "", check_id)


# --------------------------------------------------------------------------- the broken files

CASES = [
    # (id, edits, expected (file, line, field, check) beyond the golden baseline)
    ("datetime-format", [("field", A, 2, 7, "2023-07-03T0110")],
     [(A, 2, "Migration Completion DateTime", "field-type")]),
    ("integer-type", [("field", D, 2, 8, "1x")], [(D, 2, "Error Sub Code", "field-type")]),
    ("field-too-long", [("field", A, 2, 2, "13123456789071")], [(A, 2, "MPxN", "field-length")]),
    ("huge-field", [("field", A, 2, 5, "x" * 3_000_000)], [(A, 2, "Device Model", "field-length")]),
    ("missing-mandatory", [("field", A, 2, 5, "")], [(A, 2, "Device Model", "field-mandatory")]),
    ("bad-enum", [("field", B, 3, 7, "Succes")], [(B, 3, "ECoS Status", "field-enum")]),
    ("conditions", [("field", B, 2, 8, ""), ("field", B, 3, 8, "EC101")],
     [(B, 2, "Error Code", "field-condition"), (B, 3, "Error Code", "field-condition")]),
    ("wrong-title", [("field", A, 1, 4, "Detail Report: ECoS Migrations")], [(A, 1, "Report Title", "field-constant")]),
    ("wrong-classification", [("field", A, 3, 2, "DCC controlled")], [(A, 3, "DCC Classification", "field-constant")]),
    ("unknown-report-in-header", [("field", A, 1, 1, "ECOSMIG-009")],
     [(A, 1, "Report Identifier", "field-enum"), (A, 1, "Report Identifier", "header-file-name")]),
    ("trailer-count-wrong", [("field", A, 3, 1, "2")], [(A, 3, "Rows Count", "trailer-rows-count")]),
    ("lf-line-ends", [("replace", A, b"\r\n", b"\n")], [(A, 1, None, "line-ending")]),
    ("bom", [("prefix", A, b"\xef\xbb\xbf")], [(A, 1, None, "bom")]),
    ("not-utf8", [("field", A, 2, 4, b"10\xff7")], [(A, 2, None, "encoding")]),
    ("header-recipient-not-file-name", [("field", A, 1, 2, "PSUP02")],
     [(A, 1, "Report Recipient", "header-file-name")]),
    ("sequence-padded-in-name", [("rename", A, "PSUP01/ECOSMIG-001_PSUP01_01_20230704060000.csv")],
     [("PSUP01/ECOSMIG-001_PSUP01_01_20230704060000.csv", None, None, "file-name")]),
    ("wrong-folder", [("rename", A, "PSUP02/ECOSMIG-001_PSUP01_1_20230704060000.csv")],
     [("PSUP02/ECOSMIG-001_PSUP01_1_20230704060000.csv", None, None, "file-name")]),
    ("not-a-report", [("write", "notes.csv", "hello\r\n")],
     [("notes.csv", None, None, "file-name"), ("notes.csv", 1, None, "record-order"),
      ("notes.csv", 1, None, "record-order"), ("notes.csv", 1, "Record type", "record-type")]),
    ("dangling-symlink", [("symlink", "PSUP01/broken.csv")],
     [("PSUP01/broken.csv", None, None, "file-name"), ("PSUP01/broken.csv", None, None, "file-unreadable")]),
    ("sequence-gap", [("rename", A2, "PSUP01/ECOSMIG-001_PSUP01_3_20230706060000.csv"),
                      ("field", "PSUP01/ECOSMIG-001_PSUP01_3_20230706060000.csv", 1, 3, "3")],
     [("PSUP01/ECOSMIG-001_PSUP01_3_20230706060000.csv", 1, SEQ, "sequence-gap")]),
    # a blank line after the trailer: one finding, not a cascade of record-order findings
    ("trailing-blank-lines", [("write", A, (GOLDEN / A).read_bytes() + b"\r\n\r\n")],
     [(A, 4, None, "record-type"), (A, 5, None, "record-type")]),
    # the delivery begins part-way through the history (as App. B's example, number 10): a warning
    ("sequence-start", [("delete", "PSUP01/ECOSMIG-004_PSUP01_1_20230710060000.csv")],
     [("PSUP01/ECOSMIG-004_PSUP01_2_20230717060000.csv", 1, SEQ, "sequence-start")]),
    ("report-without-extension", [("rename", A2, "PSUP01/ECOSMIG-001_PSUP01_2_20230706060000")],
     [("PSUP01/ECOSMIG-001_PSUP01_2_20230706060000", None, None, "file-name")]),
    ("report-extension-upper-case", [("rename", A2, "PSUP01/ECOSMIG-001_PSUP01_2_20230706060000.CSV")],
     [("PSUP01/ECOSMIG-001_PSUP01_2_20230706060000.CSV", None, None, "file-name")]),
    ("sequence-repeat", [("rename", E3, "PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv"),
                         ("field", "PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv", 1, 3, "2")],
     [("PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv", 1, SEQ, "sequence-repeat"), (E4, 1, SEQ, "sequence-gap")]),
    ("sequence-order", [("rename", E2, "PSUP01/ECOSMIG-004_PSUP01_3_20230717060000.csv"),
                        ("field", "PSUP01/ECOSMIG-004_PSUP01_3_20230717060000.csv", 1, 3, "3"),
                        ("rename", E3, "PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv"),
                        ("field", "PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv", 1, 3, "2")],
     [("PSUP01/ECOSMIG-004_PSUP01_2_20230724060000.csv", 1, SEQ, "sequence-order")]),
    ("empty-report", [("line", E4, 2, None), ("field", E4, 2, 1, "0")], [(E4, None, None, "empty-report")]),
    ("zero-bytes", [("write", "PSUP01/ECOSMIG-006_PSUP01_2_20230901060000.csv", b"")],
     [("PSUP01/ECOSMIG-006_PSUP01_2_20230901060000.csv", None, None, "empty-report")]),
    ("binary-garbage", [("write", "PSUP01/ECOSMIG-001_PSUP01_3_20230707060000.csv",
                         b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))],
     [("PSUP01/ECOSMIG-001_PSUP01_3_20230707060000.csv", 3, None, "encoding")]),
    ("duplicate-success", [("write", "PSUP01/ECOSMIG-001_PSUP01_3_20230707060000.csv",
                            f"{HEADER_001}\r\n{A_DETAIL}\r\n99,1,DCC Controlled\r\n")],
     [("PSUP01/ECOSMIG-001_PSUP01_3_20230707060000.csv", 2, None, "duplicate-record"),
      ("PSUP01/ECOSMIG-001_PSUP01_3_20230707060000.csv", 2, "Migration Completion DateTime", "late-record")]),
    ("duplicate-day-in-summary", [("insert", C, 3, "10,20230703,1,0"), ("field", C, 6, 1, "4")],
     [(C, 3, None, "duplicate-record")]),
    ("duplicate-model-in-snapshot", [("insert", E4, 3, "10,GSME,10A5,21010101,01000007,20230705T000000,1"),
                                     ("field", E4, 4, 1, "2")],
     [(E4, 3, None, "duplicate-record")]),
    ("failure-after-success", [("write", "PSUP02/ECOSMIG-002_PSUP02_3_20230713000000.csv",
                                (f"{HEADER_002}\r\n10,00-00-00-00-00-00-00-06,3938424403,GSME,1057,64341152,"
                                 "00223402,EC101,3,20230712T180000,3\r\n99,1,DCC Controlled\r\n"))],
     [(C2, 3, FAIL, "summary-reconciliation"),
      ("PSUP02/ECOSMIG-002_PSUP02_3_20230713000000.csv", 2, None, "failure-after-success")]),
    ("attempts-not-increasing", [("field", D, 2, 10, "3")], [(D2, 2, "Number of Attempts", "attempt-order")]),
    ("attempts-zero", [("field", D2, 2, 10, "0")],
     [(D2, 2, "Number of Attempts", "field-range"), (D2, 2, "Number of Attempts", "attempt-order")]),
    ("csv-syntax-in-header", [("field", A, 1, 4, '"Detail Report: ECoS Migrations Completed Successfully"x')],
     [(A, 1, None, "csv-syntax")]),  # the unreadable header is not also "missing"
    ("unterminated-quote", [("field", A, 3, 2, '"DCC Controlled')],
     [(A, 3, None, "csv-syntax")]),  # nor the unreadable trailer
    # a quote left open in a detail record: that line is the finding, the records after it are read
    ("unterminated-quote-in-a-detail", [("field", F601, 2, 2, '"1234567810')],
     [(F601, 2, None, "csv-syntax")]),  # and the Rows Count is not compared: the count is unknown
    # RFC 4180 read strictly where Python's csv module is lenient (§2.5), and no cascade after it
    ("bare-quote-in-unquoted-field", [("line", A, 2, A_DETAIL.replace("ESME", 'ES"ME'))], [(A, 2, None, "csv-syntax")]),
    ("space-after-closing-quote", [("line", A, 2, A_DETAIL.replace("ESME", '"ESME" '))], [(A, 2, None, "csv-syntax")]),
    # a line break inside a quoted field is data, not a record's end; a record's own end is checked
    ("line-feed-inside-quoted-field", [("line", A, 2, A_DETAIL.replace(",1057,", ',"10\n57",'))], []),
    ("carriage-return-inside-quoted-field", [("line", A, 2, A_DETAIL.replace(",1057,", ',"10\r57",'))], []),
    ("record-ending-lf-in-quoted-file", [("line", A, 2, A_DETAIL.replace(",1057,", ',"1057",')),
                                         ("replace", A, b"T011000\r\n", b"T011000\n")],
     [(A, 2, None, "line-ending")]),
    ("quoted-fields-are-fine", [("line", A, 2, ",".join(f'"{v}"' for v in A_DETAIL.split(",")))], []),
    ("ragged-row", [("line", A, 2, A_DETAIL.rsplit(",", 1)[0])], [(A, 2, None, "field-count")]),
    ("unknown-record-type", [("insert", A, 3, "20,foo")], [(A, 3, "Record type", "record-type")]),
    ("blank-line", [("insert", A, 3, "")], [(A, 3, None, "record-type")]),
    ("no-trailer", [("line", A, 3, None)], [(A, 2, None, "record-order")]),
    ("off-schedule", [("rename", A, "PSUP01/ECOSMIG-001_PSUP01_1_20230704070000.csv"),
                      ("field", "PSUP01/ECOSMIG-001_PSUP01_1_20230704070000.csv", 1, 5, "20230704T070000")],
     [("PSUP01/ECOSMIG-001_PSUP01_1_20230704070000.csv", 1, "Report Creation DateTime", "run-time-schedule")]),
    ("wrong-window", [("field", A, 1, 6, "20230702T000000")], [(A, 1, "Report Applicable Start DateTime", "window")]),
    ("after-window", [("field", F6, 2, 3, "20230801T000000")], [(F6, 2, "Device Status DateTime", "detail-time-window")]),
    ("summary-does-not-reconcile", [("field", C, 2, 2, "2")], [(C, 2, SUCC, "summary-reconciliation")]),
    ("summary-detail-files-missing", [("field", C, 4, 2, "2"), ("delete", S1)],
     [(C, 4, SUCC, "summary-reconciliation-incomplete"), (C2, 3, SUCC, "summary-reconciliation-incomplete")]),
]


def test_golden_files_give_no_finding_and_when_selected_only_their_two_late_records():
    """The engine's answer for the hand-built log conforms: no finding at all by default; the
    opt-in late-record warning, when selected, shows exactly its two late notifications."""
    verdict = check(GOLDEN, RULES)
    assert verdict.errors == 0 and set(verdict.tuples()) == set()
    assert verdict.files == 17 and verdict.records == 22
    assert set(check(GOLDEN, RULES, select=ALL).tuples()) == BASELINE


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_file_gives_exactly_its_findings(tmp_path, case):
    _, edits, expected = case
    root = golden_copy(tmp_path)
    for edit in edits:
        apply(root, edit)
    assert found(root) == sorted(expected, key=_order)


def test_every_check_of_the_catalogue_has_a_broken_file():
    covered = {key[3] for case in CASES for key in case[2]} | {k[3] for k in BASELINE}
    # the ground-truth checks need an event log: tests/test_conformance_groundtruth.py
    assert covered == {c for c, spec in CATALOGUE.items() if spec.family != "ground-truth"}


# --------------------------------------------------------------------------- the engine's own output


@pytest.fixture(scope="session")
def demo_reports(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo-check") / "run"
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress"]) == 0
    return out / "reports"


def test_demo_output_gives_no_error(demo_reports):
    verdict = check(demo_reports, RULES)
    manifest = json.loads((demo_reports / "run-manifest.json").read_text())
    assert verdict.errors == 0, verdict[:5]
    assert set(verdict.totals) <= {"late-record"}  # late notifications of the demo: allowed (EMRR §3.1.6)
    assert verdict.files == len(manifest["files"])
    assert verdict.records == sum(f["records"] for f in manifest["files"])


def test_outage_output_with_catch_up_windows_gives_no_error(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", str(ROOT / "scenarios" / "outages.yaml"), "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / "reports" / "run-manifest.json").read_text())
    made_up = 0
    for entry in manifest["files"]:
        report = RULES.reports[entry["report_id"]]
        created = int(dt.datetime.fromisoformat(entry["created"]).timestamp())
        if schedule.window(report.window, created)[0] != int(dt.datetime.fromisoformat(entry["window_start"]).timestamp()):
            made_up += 1
    assert made_up > 0  # the scenario does exercise catch-up windows
    verdict = check(out / "reports", RULES)
    assert verdict.errors == 0, verdict[:5]


def test_the_demo_broken_in_three_places(demo_reports, tmp_path):
    """A report tree of the engine with one summary count changed, one file removed and one
    record repeated: exactly those problems (and what they imply) are found."""
    root = tmp_path / "reports"
    shutil.copytree(demo_reports, root)
    party = min(p.name for p in root.iterdir() if p.is_dir())
    names = sorted((root / party).glob("ECOSMIG-001_*.csv"), key=lambda p: int(p.name.split("_")[2]))
    names[2].unlink()  # sequence 3
    target = names[4]
    lines = target.read_bytes().split(b"\r\n")
    lines.insert(2, lines[1])
    lines[-2] = lines[-2].replace(b"99,", b"99,X", 1)  # the trailer no longer counts: a type error
    target.write_bytes(b"\r\n".join(lines))
    verdict = check(root, RULES)
    keys = verdict.tuples()
    rel = f"{party}/{target.name}"
    assert (f"{party}/{names[3].name}", 1, SEQ, "sequence-gap") in keys
    assert (rel, 3, None, "duplicate-record") in keys
    assert (rel, len(lines) - 1, "Rows Count", "field-type") in keys
    assert {"sequence-gap", "duplicate-record", "field-type"} <= set(verdict.totals)


# --------------------------------------------------------------------------- never crashes

ODD_FILES = {
    "only-cr": b"\r",
    "only-newlines": b"\n\n\n",
    "only-bom": b"\xef\xbb\xbf",
    "one-quote": b'"',
    "quotes": b'""""\r\n"a""b",c\r\n',
    "huge-line-no-newline": b"10," + b"y" * 2_000_000,
    "header-only": b"00,ECOSMIG-001,PSUP01,1,x,20230704T060000,20230703T000000,20230703T235959,DCC Controlled\r\n",
    "utf16": "00,ECOSMIG-001\r\n".encode("utf-16"),
    "cr-only-lines": A_DETAIL.encode().replace(b",", b",\r", 3),
    "control-chars": b"00,\x1f\x1e\x0b\x0c,\x85\r\n99,\x7f\r\n",
    "many-delimiters": b"," * 100_000 + b"\r\n",
    "nul": b"\x00",
    "year-1": b"00,ECOSMIG-001,PSUP01,3,x,00010101T000000,00010101T000000,00010101T000000,DCC Controlled\r\n"
              b"99,0,DCC Controlled\r\n",
    "year-9999": b"00,ECOSMIG-001,PSUP01,3,x,99991231T235959,99991231T000000,99991231T235959,DCC Controlled\r\n"
                 b"99,0,DCC Controlled\r\n",
    "huge-numbers": b"00,ECOSMIG-001,PSUP01," + b"9" * 5000 + b",x,1,2,3,DCC Controlled\r\n99," + b"9" * 5000
                    + b",DCC Controlled\r\n",
}


@pytest.mark.parametrize("name", sorted(ODD_FILES))
def test_odd_files_become_findings(tmp_path, name):
    root = golden_copy(tmp_path)
    (root / "PSUP01" / "ECOSMIG-001_PSUP01_3_20230707060000.csv").write_bytes(ODD_FILES[name])
    verdict = check(root, RULES)
    assert verdict.errors > 0
    assert all(f.check in CATALOGUE for f in verdict)


def _mutate(data: bytes, ops: list[tuple], seed: int) -> bytes:
    rnd = random.Random(seed)
    for op, a, b in ops:
        if not data:
            data = bytes([a % 256])
        if op == "flip":
            i = a % len(data)
            data = data[:i] + bytes([b % 256]) + data[i + 1:]
        elif op == "truncate":
            data = data[: a % (len(data) + 1)]
        elif op == "insert":
            i = a % (len(data) + 1)
            data = data[:i] + rnd.choice([b",", b'"', b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"10,", b"99,1,"]) * (
                1 + b % 3) + data[i:]
        elif op == "shuffle":
            lines = data.split(b"\r\n")
            rnd.shuffle(lines)
            data = b"\r\n".join(lines)
        elif op == "duplicate":
            lines = data.split(b"\r\n")
            i = a % len(lines)
            lines.insert(i, lines[i])
            data = b"\r\n".join(lines)
    return data


GOLDEN_FILES = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.csv"))
OPS = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "insert", "shuffle", "duplicate"]),
                         st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets=st.lists(st.sampled_from(GOLDEN_FILES), min_size=1, max_size=3, unique=True),
       ops=OPS, seed=st.integers(0, 2**32 - 1),
       rename=st.none() | st.from_regex(r"[A-Za-z0-9_.-]{1,40}\.csv", fullmatch=True))
def test_random_mutations_never_crash(targets, ops, seed, rename):
    with tempfile.TemporaryDirectory() as tmp:
        root = golden_copy(Path(tmp))
        for k, rel in enumerate(targets):
            path = root / rel
            path.write_bytes(_mutate(path.read_bytes(), ops, seed + k))
        if rename:
            (root / targets[0]).rename(root / targets[0].split("/")[0] / rename)
        verdict = check(root, RULES, max_examples=5)
        assert all(f.check in CATALOGUE and f.severity == CATALOGUE[f.check].severity for f in verdict)
        assert sum(verdict.totals.values()) >= len(verdict)


# --------------------------------------------------------------------------- the command line


def test_cli_exit_status_json_and_junit(tmp_path, capsys):
    from xml.etree import ElementTree

    assert cli.main(["check", str(GOLDEN), "--select", "late-record"]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "late-record" in out and "PASS" in out
    root = golden_copy(tmp_path)
    apply(root, ("field", A, 2, 2, "13123456789071"))
    j, x = tmp_path / "v.json", tmp_path / "v.xml"
    assert cli.main(["check", str(root), "--json", str(j), "--junit", str(x)]) == 1
    data = json.loads(j.read_text())
    assert data["errors"] == 1 and data["totals"]["field-length"] == 1
    assert {(f["file"], f["line"], f["field"], f["check"]) for f in data["findings"]} == {
        (A, 2, "MPxN", "field-length")}
    suite = ElementTree.parse(x).getroot()
    cases = suite.findall(".//testcase")
    assert [c.get("name") for c in cases] == list(CATALOGUE)
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["field-length"]
    assert cli.main(["check", str(root), "--ignore", "field-length"]) == 0
    assert cli.main(["check", str(root), "--select", "cross-file"]) == 0
    assert cli.main(["check", str(root), "--select", "field"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["check", "/no/such/dir"], "not a directory"),
    (["check", str(GOLDEN), "--ruleset", "no-such-ruleset"], "unknown ruleset"),
    (["check", str(GOLDEN), "--select", "no-such-check"], "unknown check"),
    (["check", str(GOLDEN), "--max-examples", "-1"], "--max-examples"),
    (["check"], "arguments are required"),
])
def test_cli_cannot_run_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emrr: error: ") and message in err and "\n" not in err


def test_cli_events_that_is_not_an_event_log_cannot_run(tmp_path, capsys):
    # an empty directory is no event log (ground truth: tests/test_conformance_groundtruth.py)
    assert cli.main(["check", str(GOLDEN), "--events", str(tmp_path)]) == 2
    assert "emrr: error: " in capsys.readouterr().err


def test_names_that_are_not_utf8_or_printable_are_escaped(tmp_path, capsys):
    root = golden_copy(tmp_path)
    (root / "PSUP01" / "a\x01b\udce9.csv").write_bytes(b"x\r\n")  # a byte 0xE9 alone in the name
    verdict = check(root, RULES)
    assert ("PSUP01/a\\x01b\\xe9.csv", None, None, "file-name") in verdict.tuples()
    assert cli.main(["check", str(root), "--junit", str(tmp_path / "v.xml"), "--json", str(tmp_path / "v.json")]) == 1
    assert "a\\x01b\\xe9.csv" in capsys.readouterr().out


def test_max_examples_keeps_the_total(tmp_path):
    root = golden_copy(tmp_path)
    for rel in (A, A2, S1):
        apply(root, ("replace", rel, b"\r\n", b"\n"))
    verdict = check(root, RULES, max_examples=1)
    assert verdict.totals["line-ending"] == 3 and sum(f.check == "line-ending" for f in verdict) == 1


# --------------------------------------------------------------------------- the catalogue and its document


def test_checks_doc_is_generated_from_the_catalogue():
    assert (ROOT / "docs" / "checks.md").read_text(encoding="utf-8") == catalogue.render_markdown(), \
        "docs/checks.md is stale: python -m emrr.conformance.catalogue > docs/checks.md"


def test_catalogue_is_closed():
    ids = list(CATALOGUE)
    assert all(re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", i) for i in ids)
    assert all(c.severity in ("error", "warning") and c.clause and c.description for c in CATALOGUE.values())
    used = set()
    for path in (ROOT / "conformance").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'(?:add|add_many|wants|room)\(\s*"([a-z-]+)"', text))
        used |= set(re.findall(r'append\(\(\s*"([a-z-]+)"', text))
    assert used and used <= set(ids), used - set(ids)


def test_checker_does_not_write_into_the_directory(tmp_path):
    root = golden_copy(tmp_path)
    before = sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*"))
    check(root, RULES)
    assert sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*")) == before


# --------------------------------------------------------------------------- reading: line-ending counts


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([2, 4, 8, 1 << 24]))
def test_line_ending_counts_equal_bytes_count_at_every_step_boundary(data, step):
    """protects line-ending: the NumPy counts of LF, CR and CRLF (16-bit words at even and odd
    offsets, in steps) equal the plain ``bytes.count``, whatever the bytes and wherever a CRLF
    straddles a step."""
    from emrr.conformance import reading

    saved = reading._STEP
    reading._STEP = step
    try:
        assert reading._breaks(data) == (data.count(b"\n"), data.count(b"\r"), data.count(b"\r\n"))
    finally:
        reading._STEP = saved


def test_cli_results_go_to_stdout_links_and_devices_without_replacing_them(tmp_path, capsys):
    """protects the outputs of emrr check: '--json -' is standard output; a symbolic link is
    written through (the link stays a link); a path that is not a regular file (/dev/null here,
    /dev/stdout or a FIFO in use) is written to, never replaced by a regular file."""
    assert cli.main(["check", str(GOLDEN), "--json", "-"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["passed"] is True
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert cli.main(["check", str(GOLDEN), "--json", str(link), "--junit", "/dev/null"]) == 0
    assert link.is_symlink() and json.loads(real.read_text())["passed"] is True
    assert Path("/dev/null").is_char_device()
    assert cli.main(["check", str(GOLDEN), "--json", str(tmp_path)]) == 2  # a directory: said, not replaced
    assert tmp_path.is_dir()


@pytest.mark.parametrize("report_id, title", [
    ("ECOSMIG-004", "Summary Report: Devices Count by Non Migratable Device Model"),  # the section heading
    ("ECOSMIG-006", "Detail Report: Newly Installed ECoS Devices"),
])
def test_report_title_as_spelled_in_the_section_heading_is_accepted(tmp_path, report_id, title):
    """protects field-constant on the Report Title: App. A spells ECOSMIG-004's and -006's names
    two ways (table of reports, section heading); the ruleset's title_also lists the other, and
    the checker accepts either, but nothing else."""
    root = golden_copy(tmp_path)
    rel = next(p for p in sorted(root.rglob(f"{report_id}_*.csv"))).relative_to(root).as_posix()
    apply(root, ("field", rel, 1, 4, title))
    assert found(root) == []
    apply(root, ("field", rel, 1, 4, title.upper()))
    assert found(root) == [(rel, 1, "Report Title", "field-constant")]


def test_an_empty_delivery_passes_with_a_note(tmp_path):
    """protects the verdict's honesty: a folder with no report file has nothing wrong in it, but
    the summary says nothing was checked (a CI pointed at the wrong folder shows it)."""
    verdict = check(tmp_path, RULES)
    assert verdict.errors == 0 and verdict.files == 0
    assert any("no report file found" in note for note in verdict.notes)
