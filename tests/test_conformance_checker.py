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

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrr import cli
from emrr.conformance import catalogue, mutations
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.mutations import Delivery
from emrr.rules import ruleset as rules
from emrr.rules import schedule
from tests import cases, golden

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = golden.EXPECTED
RULES = rules.load(None)

CASES = cases.load("checker")  # tests/cases/checker.json: the hand-broken files, as data

A = golden.file("ECOSMIG-001", "PSUP01", 1)
A2 = golden.file("ECOSMIG-001", "PSUP01", 2)
S2 = golden.file("ECOSMIG-001", "PSUP02", 2)
SEQ = "Report Sequence Number"
A_DETAIL = "10,00-00-00-00-00-00-00-05,1312345678907,ESME,1057,54342152,00123402,20230703T011000"

# The golden files are the engine's answer to a hand-built log with two late notifications
# (conformance/logs/reference.yaml): a late record is allowed, and reported as a warning.
ALL = set(CATALOGUE)  # every check, the opt-in late-record included
BASELINE = {cases.key(f) for f in CASES["baseline"]}


def golden_copy(tmp: Path) -> Path:
    root = tmp / "reports"
    shutil.copytree(GOLDEN, root)
    return root


def found(root: Path) -> list[tuple]:
    verdict = check(root, RULES, select=ALL)
    return sorted((k for k in verdict.tuples() if k not in BASELINE), key=cases.order)


# --------------------------------------------------------------------------- the broken files


def test_case_file_is_valid_and_names_every_edit_of_delivery():
    """protects the case files' format (tests/cases/cases.schema.json): the schema is a valid
    schema, its edits are exactly mutations.EDITS, and it rejects a case it should not accept."""
    validator = cases.validator()
    jsonschema.Draft202012Validator.check_schema(cases.schema())
    named = {e["properties"]["op"]["const"] for e in cases.schema()["$defs"]["edit"]["oneOf"][1:]}
    assert named == set(mutations.EDITS)
    case = CASES["cases"][0]
    for broken in ({**case, "edits": [{"op": "explode", "file": A}]}, {**case, "findings": [{"file": A}]},
                   {**case, "edits": [{"operator": "bom", "file": A}]}, {k: v for k, v in case.items() if k != "id"}):
        assert not validator.is_valid({**CASES, "cases": [broken]}), broken
    assert all(step["operator"] in mutations.OPERATORS for c in CASES["cases"] for step in c["edits"]
               if "operator" in step)


def test_golden_files_give_no_finding_and_when_selected_only_their_two_late_records():
    """The engine's answer for the hand-built log conforms: no finding at all by default; the
    opt-in late-record warning, when selected, shows exactly its two late notifications."""
    verdict = check(GOLDEN, RULES)
    assert verdict.errors == 0 and set(verdict.tuples()) == set()
    assert verdict.files == 17 and verdict.records == 22
    assert set(check(GOLDEN, RULES, select=ALL).tuples()) == BASELINE


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_broken_file_gives_exactly_its_findings(tmp_path, case):
    """Each case of tests/cases/checker.json: exactly its findings (file, line, field, check)."""
    cases.prepare(CASES, case, tmp_path / "reports", RULES)
    assert found(tmp_path / "reports") == [cases.key(f) for f in case["findings"]]


def test_every_check_of_the_catalogue_has_a_broken_file():
    from tests.test_smets1_checker import COVERED as SMETS1  # the SMETS1 MRR's own checks, on its own files

    covered = {f["check"] for case in CASES["cases"] for f in case["findings"]} | {k[3] for k in BASELINE} | SMETS1
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
        start = int(dt.datetime.fromisoformat(entry["window_start"]).timestamp())
        made_up += schedule.window(report.window, created)[0] != start
    assert made_up > 0  # the scenario does exercise catch-up windows
    verdict = check(out / "reports", RULES)
    assert verdict.errors == 0, verdict[:5]


def test_the_demo_broken_in_three_places(demo_reports, tmp_path):
    """A report tree of the engine with one summary count changed, one file removed and one
    record repeated: exactly those problems (and what they imply) are found."""
    shutil.copytree(demo_reports, tmp_path / "reports")
    d = Delivery(tmp_path / "reports", RULES)
    series = d.series("ECOSMIG-001")[0]  # the first recipient's, by sequence number
    d.delete(series[2].rel)  # sequence 3
    rel = series[4].rel
    d.insert_line(rel, 3, d.lines(rel)[1])
    trailer = len(d.lines(rel)) - 1  # the file ends with a line terminator
    d.set_field(rel, trailer, 1, b"X" + d.lines(rel)[trailer - 1].split(b",")[1])  # Rows Count no longer a count
    verdict = check(d.root, RULES)
    keys = verdict.tuples()
    assert (series[3].rel, 1, SEQ, "sequence-gap") in keys
    assert (rel, 3, None, "duplicate-record") in keys
    assert (rel, trailer, "Rows Count", "field-type") in keys
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
    Delivery(root, RULES).set_field(A, 2, 2, "13123456789071")
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
    d = Delivery(golden_copy(tmp_path), RULES)
    for rel in (A, A2, S2):
        d.replace(rel, "\r\n", "\n")
    root = d.root
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
    """protects the outputs of emrr check: '--json -' is standard output (campaign M9: and only the
    document; '--junit -' too; not both); a symbolic link is
    written through (the link stays a link); a path that is not a regular file (/dev/null here,
    /dev/stdout or a FIFO in use) is written to, never replaced by a regular file."""
    assert cli.main(["check", str(GOLDEN), "--json", "-"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["passed"] is True  # campaign M9: only the document on stdout
    assert "PASS" in printed.err  # the summary on stderr
    assert cli.main(["check", str(GOLDEN), "--junit", "-"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("<?xml") and "PASS" in printed.err
    assert cli.main(["check", str(GOLDEN), "--json", "-", "--junit", "-"]) == 2
    assert "only one document" in capsys.readouterr().err
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
    """protects report-title: App. A spells ECOSMIG-004's and -006's names two ways (table of
    reports, section heading); the ruleset's title_also lists the other, and the checker accepts
    either; any other title is a warning, not an error (DESIGN.md "Report Title": the EMRR fixes
    only its type and length)."""
    d = Delivery(golden_copy(tmp_path), RULES)
    root = d.root
    rel = d.of(report_id)[0].rel
    d.set_field(rel, 1, 4, title)
    assert found(root) == []
    d.set_field(rel, 1, 4, title.upper())
    assert found(root) == [(rel, 1, "Report Title", "report-title")]
    assert CATALOGUE["report-title"].severity == "warning" and check(root, RULES).errors == 0


def test_an_empty_delivery_is_not_a_pass(tmp_path, capsys):
    """protects campaign L2 (5.21, 5.22): a folder with no report file has nothing wrong in it,
    but nothing was checked: the summary says so instead of PASS, the JSON does not pass, and
    emrr check exits 2 (a CI pointed at the wrong folder fails)."""
    verdict = check(tmp_path, RULES)
    assert verdict.errors == 0 and verdict.files == 0 and verdict.checked == 0
    assert any("no report file found" in note for note in verdict.notes)
    assert cli.main(["check", str(tmp_path), "--json", "-"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is False
    assert "NOTHING CHECKED" in captured.err and "PASS" not in captured.err
