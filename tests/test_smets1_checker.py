"""The conformance checker on SMETS1 MRR files (issue 10, deliverable 3), from the ruleset alone:
file names with a SEC Party Signifier and a 23-character User ID (MRR App. B, 002:L737-757),
six-digit sequence numbers (002:L749), no trailer record, per-report headers (002 App. A), the
declared S1MIG-006/S1MIG-001 reconciliation (spec/004 L115), and a delivery checked against the
other regime's ruleset (findings, never a crash).

The files are written here by hand, field by field, from the ruleset's layouts (each value cited),
until the engine writes SMETS1 files; the end-to-end test (simulate, report, check) is in
tests/test_smets1_end_to_end.py once all parts have landed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from emrr.conformance import mutations
from emrr.conformance.checker import check
from emrr.conformance.mutations import Delivery
from emrr.rules import ruleset as rules
from tests import golden

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]
SUPPLIER = "70-B3-D5-1F-30-00-A0-01"  # App. B's example User ID (002:L756-757)
PARTY = "PXX999"  # App. B's example SEC Party Signifier
OTHER = "70-B3-D5-1F-30-00-A0-02"  # a second supplier
OTHER_PARTY = "PXX998"
X = "00-11-22-33-44-55-66-77"  # an Installation (CHF) ID, EUI-64 hyphenated (Text 23, 002:L243)
Y = "00-11-22-33-44-55-66-88"
Z = "00-11-22-33-44-55-66-99"

# The reconciliation v3.0 declares (the key proposed for the ruleset schema: reconcile), as data
RECONCILE = [{"with": "S1MIG-001", "clause": "spec/004 §4.4.2 (004:L115)",
              "where": {"field": "Completion Status", "equals": "Success"},
              "match": [{"field": "CHF GUID", "other": "CHF GUID"},
                        {"field": "Completion Date", "other": "Migration Completion DateTime"}]}]

# The checks this module gives a broken file for (tests/test_conformance_checker.py's guard counts them)
COVERED = {"report-reconciliation", "recipient-party", "file-name", "header-file-name", "record-type", "field-count",
           "window", "empty-report"}


def _load_v30() -> rules.Ruleset:
    """smets1-mrr-v3.0, which declares the reconciliation of S1MIG-006 with S1MIG-001 (reconcile)."""
    rs = rules.load("smets1-mrr-v3.0")
    assert rs.reports["S1MIG-006"].raw["reconcile"] == RECONCILE
    return rs


@pytest.fixture(scope="module")
def rs() -> rules.Ruleset:
    return _load_v30()


# --------------------------------------------------------------------------- files by hand


def _row(report, values: dict[str, str]) -> list[str]:
    """A detail record of ``report``: the named values, '10' first, every other field empty."""
    row = []
    for f in report.detail:
        row.append(f.source if f.source_kind == "constant" else values.get(f.name, ""))
    unknown = set(values) - {f.name for f in report.detail}
    assert not unknown, unknown
    return row


def _success(chf: str, completed: str, commissioned: str) -> dict[str, str]:
    """An S1MIG-001 record (002:L226-258): an Installation not commissioned by the DCC, its S1SP
    Commissioning File the completion (A28 reading A), one electricity meter of the supplier."""
    return {"SMSO ID": "S01", "Commissioning File DateTime": commissioned, "Party ID": OTHER.replace("02", "10"),
            "MCF Counter": "1", "Group ID": "G1", "Reporting Party ID": "70-B3-D5-1F-30-00-A0-20",
            "Reporting Party Counter": "7", "Installation ID (CHF ID)": chf,
            "Split Supplier Installation Indicator": "0",
            "Import MPAN": "1312345678907", "MPAN Distributor ID": "13", "MPAN Active Indicator": "1",
            "ToBeCommissionedByDCC Indicator": "0", "CHF GUID": chf, "Migration Completion DateTime": completed}


def _outcome(chf: str, completed: str, status: str = "Success") -> dict[str, str]:
    """An S1MIG-006 record (002:L522-551) of an MA completed on ``completed`` (YYYYMMDD)."""
    return {"Responsible Supplier ID": SUPPLIER, "Migration Authorisation File ID (Name)":
            f"MA_S01_{SUPPLIER}_20230626_090000", "Import MPAN": "1312345678907",
            "Migration Week Start Date": "20230703",
            "Includes Dormant Status": "0", "Validation Response Date": "20230627", "Completion Date": completed,
            "Completion Status": status, "CHF GUID": chf}


def _write(root: Path, rs, report_id: str, sequence: int, created: str, rows: list[dict], applicable: str = "",
           recipient: str = SUPPLIER, party: str = PARTY, name: str | None = None) -> str:
    """One file as the MRR names and lays it out: ``<party>/<id>_<party>_<User ID>_<NNNNNN>_<created>.csv``,
    its report's own header (Report Applicable Date where it has one), its details, no trailer."""
    report = rs.reports[report_id]
    header = []
    for f in report.header_fields(rs):
        header.append({"report_id": report_id, "recipient": recipient, "sequence": str(sequence),
                       "title": report.title, "created": created, "window_end": applicable,
                       "window_start": applicable}.get(f.source, f.source))
    name = name or f"{party}/{report_id}_{party}_{recipient}_{sequence:06d}_{created}.csv"
    lines = [header] + [_row(report, r) for r in rows]
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes("".join(",".join(line) + "\r\n" for line in lines).encode())
    return name


def delivery(root: Path, rs) -> dict[str, str]:
    """A supplier's delivery of S1MIG-001 and S1MIG-006 files that reconcile: X completed 3 July
    01:10 (in S1MIG-001 of 3 July 06:00, window 2 July 23:00 - 3 July 04:59:59) and its MA's
    Success in S1MIG-006 of 4 July (for 3 July); files before it and a week after it on both sides
    (crossfile.ReportReconciliation.SLACK)."""
    return {
        "a1": _write(root, rs, "S1MIG-001", 1, "20230702T180000", [_success(Y, "20230702T101500", "20230702T101500")]),
        "a2": _write(root, rs, "S1MIG-001", 2, "20230703T060000", [_success(X, "20230703T011000", "20230703T011000")]),
        "a3": _write(root, rs, "S1MIG-001", 3, "20230711T060000", [_success(Z, "20230710T220000", "20230710T220000")]),
        "b0": _write(root, rs, "S1MIG-006", 1, "20230702T060000", [_outcome(Z, "20230701", "Failed")], "20230701"),
        "b1": _write(root, rs, "S1MIG-006", 2, "20230703T060000", [_outcome(Y, "20230702")], "20230702"),
        "b2": _write(root, rs, "S1MIG-006", 3, "20230704T060000", [_outcome(X, "20230703")], "20230703"),
        "b3": _write(root, rs, "S1MIG-006", 4, "20230711T060000", [_outcome(Z, "20230710")], "20230710"),
    }


def errors(root: Path, rs) -> list[tuple]:
    verdict = check(root, rs, max_examples=None)
    return sorted({(f.file, f.line, f.field, f.check) for f in verdict if f.severity == "error"},
                  key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2] or "", k[3]))


# --------------------------------------------------------------------------- valid files


def test_hand_built_delivery_passes(tmp_path, rs):
    """MRR App. B names (party, 23-character User ID, six-digit sequence numbers, the Party folder),
    headers of each report's own layout (S1MIG-006's Report Applicable Date, 002:L511-520; none in
    S1MIG-001's, 002:L214-224), no trailer: no finding at all, and each record read."""
    delivery(tmp_path, rs)
    verdict = check(tmp_path, rs)
    assert verdict.errors == 0 and list(verdict.tuples()) == [], verdict[:5]
    assert verdict.files == 7 and verdict.records == 7


# --------------------------------------------------------------------------- names (App. B)


def test_names_user_id_padding_party_and_folder(tmp_path, rs):
    """002:L741-749: a User ID that is not 23 characters of hex pairs, a sequence number not padded to
    six digits, a Party Signifier that is not 6 characters, a file outside its Party folder: each a
    file-name finding naming what is wrong; the header's recipient is compared with the name's."""
    files = delivery(tmp_path, rs)
    lower = SUPPLIER.lower()
    bad_user = f"{PARTY}/S1MIG-001_{PARTY}_{lower}_000003_20230711T060000.csv"
    (tmp_path / files["a3"]).rename(tmp_path / bad_user)
    unpadded = f"{PARTY}/S1MIG-006_{PARTY}_{SUPPLIER}_4_20230711T060000.csv"
    (tmp_path / files["b3"]).rename(tmp_path / unpadded)
    folder = f"{OTHER_PARTY}/S1MIG-001_{PARTY}_{SUPPLIER}_000001_20230702T180000.csv"
    (tmp_path / folder).parent.mkdir()
    (tmp_path / files["a1"]).rename(tmp_path / folder)
    verdict = check(tmp_path, rs, max_examples=None)
    found = {(f.file, f.check): f.message for f in verdict if f.severity == "error"}
    assert "does not match" in found[(bad_user, "file-name")]
    assert (bad_user, "header-file-name") in found  # header: the upper-case User ID
    assert "expected '000004'" in found[(unpadded, "file-name")]
    assert f"expected the recipient's folder '{PARTY}'" in found[(folder, "file-name")]


def test_one_party_per_user_id(tmp_path, rs):
    """A User ID belongs to one SEC Party (002:L745): a file naming another Party Signifier for the
    same User ID (in that party's folder) is recipient-party, at that file."""
    files = delivery(tmp_path, rs)
    moved = f"{OTHER_PARTY}/S1MIG-006_{OTHER_PARTY}_{SUPPLIER}_000004_20230711T060000.csv"
    (tmp_path / moved).parent.mkdir()
    (tmp_path / files["b3"]).rename(tmp_path / moved)
    assert errors(tmp_path, rs) == [(moved, None, None, "recipient-party")]


# --------------------------------------------------------------------------- records: no trailer, own headers


def test_no_trailer_and_a_report_s_own_header(tmp_path, rs):
    """No trailer in the MRR: a '99' record is not a record type there; the header has its report's
    width (S1MIG-006: 7 fields, 002:L511-520), and its Report Applicable Date is the run's window
    (a day late is a window finding at that field)."""
    files = delivery(tmp_path, rs)
    path = tmp_path / files["b2"]
    lines = path.read_bytes().split(b"\r\n")
    lines.insert(2, b"99,1,DCC Controlled")
    path.write_bytes(b"\r\n".join(lines))
    path = tmp_path / files["a2"]
    lines = path.read_bytes().split(b"\r\n")
    lines[0] += b",20230702"  # the header of S1MIG-001 has no applicable date: one field too many
    path.write_bytes(b"\r\n".join(lines))
    path = tmp_path / files["b3"]
    path.write_bytes(path.read_bytes().replace(b",20230710\r\n", b",20230711\r\n", 1))
    assert errors(tmp_path, rs) == [
        (files["a2"], 1, None, "field-count"),
        (files["b2"], 3, "Record type", "record-type"),
        (files["b3"], 1, "Report Applicable Date", "window"),
    ]


def test_empty_report_without_trailer(tmp_path, rs):
    """A header and no detail record is an empty report (002:L190), with no trailer to count."""
    files = delivery(tmp_path, rs)
    path = tmp_path / files["a3"]
    path.write_bytes(path.read_bytes().split(b"\r\n")[0] + b"\r\n")
    assert errors(tmp_path, rs) == [(files["a3"], None, None, "empty-report")]


# --------------------------------------------------------------------------- the declared reconciliation


def test_reconciliation_with_s1mig_001(tmp_path, rs):
    """spec/004 L115 (v3.0): S1MIG-006's Success records match S1MIG-001's. X's success taken out of
    S1MIG-001: its S1MIG-006 Success has no counterpart (report-reconciliation at that record);
    Failed records take no part; without the declaration (v2.8) nothing is reconciled."""
    files = delivery(tmp_path, rs)
    _write(tmp_path, rs, "S1MIG-001", 2, "20230703T060000", [_success(Y, "20230703T011000", "20230703T011000")])
    _write(tmp_path, rs, "S1MIG-006", 2, "20230703T060000",
           [_outcome(Y, "20230702"), _outcome(Z, "20230702", "Failed")], "20230702")
    found = errors(tmp_path, rs)
    assert found == [(files["a2"], 2, None, "report-reconciliation"),  # Y on 3 July: no Success for it
                     (files["b2"], 2, None, "report-reconciliation")]  # X's Success: no S1MIG-001 record
    plain = dataclasses.replace(rs, reports={**rs.reports, "S1MIG-006": dataclasses.replace(
        rs.reports["S1MIG-006"], reconcile=())})
    assert errors(tmp_path, plain) == []


def test_reconciliation_needs_the_other_side_covered(tmp_path, rs):
    """A record whose day the other report's files do not cover (they end less than a week past it)
    is not reconciled: the counterpart may be in a file not collected, or not made yet (a late
    notification)."""
    files = delivery(tmp_path, rs)
    (tmp_path / files["a3"]).unlink()
    (tmp_path / files["b3"]).unlink()
    _write(tmp_path, rs, "S1MIG-001", 2, "20230703T060000", [_success(Y, "20230703T011000", "20230703T011000")])
    assert errors(tmp_path, rs) == []


# --------------------------------------------------------------------------- mutation operators


@pytest.mark.parametrize("op_id", ["party-differs", "sequence-unpadded", "sequence-zero-padded",
                                   "reconciliation-broken", "wrong-recipient-folder"])
def test_smets1_operators_give_their_declared_errors(tmp_path, rs, op_id):
    """The operators of the MRR's own rules (a Party Signifier, six-digit padding, the Party folder,
    the v3.0 reconciliation) apply to a SMETS1 delivery and give exactly their findings."""
    delivery(tmp_path / "source", rs)
    op = mutations.OPERATORS[op_id]
    assert op.applies(rs)
    m = op.apply(tmp_path / "source", tmp_path / "mutated", rs)
    found = sorted({(f.file, f.line, f.check) for f in check(tmp_path / "mutated", rs, max_examples=None)
                    if f.severity == "error"}, key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2]))
    assert found == [(e.file, e.line, e.check) for e in m.expected], m.description


def test_emrr_operators_without_a_target_are_not_applicable(tmp_path, rs):
    """An operator of the EMRR's trailer (Rows Count) or of its fields (Number of Attempts) has no target in a
    SMETS1 delivery: NotApplicable, never a crash or a wrong expectation."""
    delivery(tmp_path / "source", rs)
    for op_id in ("no-trailer", "rows-count-off-by-one", "attempts-zero", "dcc-classification-wrong",
                  "truncated-mid-record"):
        with pytest.raises(mutations.NotApplicable):
            mutations.OPERATORS[op_id].apply(tmp_path / "source", tmp_path / op_id, rs)
    assert not mutations.OPERATORS["sequence-unpadded"].applies(rules.load(None))


# --------------------------------------------------------------------------- the other regime


def test_smets1_delivery_against_the_emrr_ruleset(tmp_path, rs):
    """A SMETS1 delivery checked against the revised EMRR: clear findings (names, record order: no
    trailer), no crash."""
    delivery(tmp_path, rs)
    verdict = check(tmp_path, rules.load(None), max_examples=None)
    checks = {f.check for f in verdict if f.severity == "error"}
    assert verdict.files == 7 and {"file-name", "record-order"} <= checks


def test_emrr_delivery_against_the_smets1_ruleset(tmp_path, rs):
    """The golden EMRR delivery checked against smets1-mrr-v3.0: file-name findings for every file
    (an ECOSMIG report is not one of the ruleset's, a Party ID is not a User ID), no crash."""
    verdict = check(golden.EXPECTED, rs, max_examples=None)
    files = {f.file for f in verdict if f.check == "file-name"}
    assert verdict.errors > 0 and len(files) == verdict.files == 17


def test_delivery_edits_keep_no_trailer(tmp_path, rs):
    """mutations.Delivery reads the last record of a file without a trailer as a detail record."""
    files = delivery(tmp_path, rs)
    d = Delivery(tmp_path, rs)
    assert [line for line, _ in d.details(files["a2"])] == [2]
    assert yaml.safe_load(yaml.safe_dump(RECONCILE)) == RECONCILE  # the proposed declaration is plain YAML


# --------------------------------------------------------------------------- the SMETS1 corpus


def test_corpus_of_a_smets1_ruleset(tmp_path):
    """`emrr corpus --ruleset smets1-mrr-v3.0` writes a SMETS1 corpus from the SMETS1 hand-built log
    (conformance/logs/smets1.yaml): a valid case per report it declares, invalid cases of the MRR's own
    rules (six-digit padding, one Party Signifier per User ID), each confirmed by the checker as it is
    written; the EMRR's trailer operators are skipped with their reason, never shipped wrong."""
    from emrr import cli
    from emrr.conformance import corpus

    out = tmp_path / "corpus"
    assert cli.main(["corpus", str(out), "--ruleset", "smets1-mrr-v3.0"]) == 0
    manifest = corpus.json.loads((out / corpus.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["ruleset"] == "smets1-mrr-v3.0"
    cases = {c["id"]: c for c in manifest["cases"]}
    assert {"invalid-sequence-unpadded", "invalid-party-differs", "valid-smets1-delivery"} <= set(cases)
    assert not {"invalid-no-trailer", "invalid-rows-count-off-by-one"} & set(cases)
    assert {c["expected_checks"][0] for c in cases.values() if c.get("operator") == "party-differs"} == \
        {"recipient-party"}
    names = [f for c in cases.values() for f in c["files"]]
    assert names and all(f.split("/")[-1].startswith("S1MIG-") for f in names)


# --------------------------------------------------------------------------- in a supplier's own pytest run


def test_pytest_plugin_with_a_smets1_ruleset(pytester, tmp_path, rs):
    """`pytest --emrr-dir DIR --emrr-ruleset smets1-mrr-v3.0` (conformance/pytest_plugin.py): one test
    per check; a User ID named with two Party Signifiers fails emrr::recipient-party alone."""
    from emrr.conformance.catalogue import CATALOGUE
    from tests.test_conformance_plugin import GROUND, LOAD, OPT_IN

    files = delivery(tmp_path / "reports", rs)
    moved = f"{OTHER_PARTY}/S1MIG-006_{OTHER_PARTY}_{SUPPLIER}_000004_20230711T060000.csv"
    (tmp_path / "reports" / moved).parent.mkdir()
    (tmp_path / "reports" / files["b3"]).rename(tmp_path / "reports" / moved)
    result = pytester.runpytest_inprocess(*LOAD, "-p", "no:cacheprovider", "--emrr-dir", str(tmp_path / "reports"),
                                          "--emrr-ruleset", "smets1-mrr-v3.0", "-v")
    skipped = len(GROUND) + len(OPT_IN)  # the ground-truth checks (no --emrr-events) and late-record (opt-in)
    result.assert_outcomes(failed=1, passed=len(CATALOGUE) - skipped - 1, skipped=skipped)
    result.stdout.fnmatch_lines(["*emrr::recipient-party FAILED*"])


def test_sequence_numbers_per_report_and_user_id(tmp_path, rs):
    """002:L749: numbers per (Report ID, User ID) from '000001', one more per issue: S1MIG-001's
    second file missing is a sequence-gap at the third, read from the padded names; another User ID's
    series is its own (a first file numbered 1 for the second supplier, no finding)."""
    files = delivery(tmp_path, rs)
    (tmp_path / files["a2"]).unlink()
    _write(tmp_path, rs, "S1MIG-006", 3, "20230704T060000", [_outcome(X, "20230703", "Failed")], "20230703")
    _write(tmp_path, rs, "S1MIG-001", 1, "20230703T060000", [_success(X, "20230703T011000", "20230703T011000")],
           recipient=OTHER, party=OTHER_PARTY)
    verdict = check(tmp_path, rs, max_examples=None)
    assert [(f.file, f.line, f.field, f.check) for f in verdict if f.severity == "error"] == [
        (files["a3"], 1, "Report Sequence Number", "sequence-gap")]
    assert "number(s) 2 missing" in next(f.message for f in verdict if f.check == "sequence-gap")
