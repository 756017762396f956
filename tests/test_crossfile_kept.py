"""What the checker keeps of every detail record for the checks across files (issue 10: the
national SMETS1 delivery, 26.8M records, must be checked within 3 GB).

Every record of a delivery keeps, until the checks across files are made, the columns those checks
read (``crossfile.kept_plan``), and no other, in compact types: a date-time as seconds, a whole
number as a number, a text compared across files as a Device ID's 64-bit number or a Categorical.
A column kept for no check (S1MIG-010's dates, S1MIG-006's three other dates: 0.3 GB at national
volume) or kept as strings fails here. The declared reconciliation (spec/004 L115) compares typed
keys; they must compare exactly as the strings of ``crossfile._value_expr`` did."""

from __future__ import annotations

import dataclasses
import itertools

import polars as pl
import pytest

from emrr.conformance import crossfile
from emrr.conformance.checker import Checker
from emrr.conformance.findings import Collector, enabled_checks
from emrr.rules import ruleset as rules

# The columns kept per report (beside fid and line), and the checks that read them
# (crossfile.Roles.kept): duplicate-record (identity and times, or the group / device), the
# single success and failure reports (device, event time, attempts), ECOSMIG-005's reconciliation
# (day and counts) and the declared reconciliation (S1MIG-006 Completion Date, Completion Status
# and CHF GUID against S1MIG-001's).
KEPT = {
    "smets1-mrr-v3.0": {
        "S1MIG-001": ["t2", "k8", "x8", "k18", "x18", "t53"],
        "S1MIG-002": ["t2", "k8", "x8", "t53"],
        "S1MIG-003": ["k8", "x8"],
        "S1MIG-004": ["k1", "x1", "k2", "x2", "k3", "x3", "t4"],
        "S1MIG-005": ["k1", "x1", "k2", "x2", "k3", "x3"],
        "S1MIG-006": ["t10", "k11", "x11", "k14", "x14"],
        "S1MIG-007": ["k1", "x1", "t2"],
        "S1MIG-008": ["k1", "x1", "t2"],
        "S1MIG-009": [],
        "S1MIG-010": [],
    },
    "emrr-revised": {
        "ECOSMIG-001": ["k1", "x1", "t7"],
        "ECOSMIG-002": ["k1", "x1", "t9", "n10"],
        "ECOSMIG-003": ["k1", "x1"],
        "ECOSMIG-004": ["k1", "x1", "k2", "x2", "k3", "x3", "k4", "x4"],
        "ECOSMIG-005": ["t1", "n2", "n3"],
        "ECOSMIG-006": ["k1", "x1", "t3"],
    },
}
COMPACT = {pl.Int32, pl.Int64, pl.UInt64, pl.Categorical}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_kept_plan_is_what_the_checks_read(name):
    rs = rules.load(name)
    got = {rid: [f"{kind}{i}" for kind, i in crossfile.kept_plan(report, rs)] for rid, report in rs.reports.items()}
    assert got == KEPT[name]


def test_kept_frames_are_compact(smets1_reports):
    """The frames a real SMETS1 delivery keeps: exactly the planned columns, none of them strings."""
    rs = rules.load("smets1-mrr-v3.0")
    checker = Checker(smets1_reports("smets1-mrr-v3.0"), rs, Collector(enabled_checks(None, (), False), 1000))
    for rel in checker.discover():
        checker.check_file(rel)
    for rid in list(checker.pending):
        checker.flush(rid)
    assert checker.kept, "nothing kept: the delivery has no detail record"
    for rid, parts in checker.kept.items():
        for frame in parts:
            assert frame.columns == ["fid", "line", *KEPT["smets1-mrr-v3.0"][rid]], rid
            assert {frame.schema[c].base_type() for c in frame.columns} <= COMPACT, (rid, frame.schema)


# --------------------------------------------------------------------------- typed keys, exactly as strings

ID = "00-11-22-33-44-55-66-77"
NUMBER = 0x0011223344556677


def _kept(texts: list[str | None]) -> pl.DataFrame:
    """A kept frame of one text field (k0, x0) made as the checker makes it (text_key_exprs)."""
    return pl.DataFrame({"c0": texts}, schema={"c0": pl.String}).select(crossfile.text_key_exprs(0))


@pytest.mark.parametrize("kind, values", [
    ("text", [ID, "00-11-22-33-44-55-66-78", f"#{NUMBER}", f"#0{NUMBER}", "#18446744073709551616", "#1", "",
              "Success", "success", None]),
    ("time", [0, 86399, 86400, None]),
    ("integer", [0, 7, None]),
])
def test_typed_components_compare_as_the_strings(kind, values):
    """Two records' typed key components are equal (nulls equal, as the join takes them) exactly
    when their ``_value_expr`` strings are, a text written like a number's string ("#N") included."""
    field = {"text": "text", "time": "datetime", "integer": "integer"}[kind]
    report = _report(field)
    if kind == "text":
        frame = _kept(values)
    else:
        name = "t0" if kind == "time" else "n0"
        frame = pl.DataFrame({name: values}, schema={name: pl.Int64})
    parts = crossfile._components(frame, report, 0, kind, "p0")
    typed = frame.select(parts).rows()
    shown = frame.select(crossfile._value_expr(report, 0, False)).to_series().to_list()
    for a, b in itertools.combinations_with_replacement(range(len(values)), 2):
        if shown[a] is None or shown[b] is None:
            continue  # not compared: the record has no key (crossfile.present)
        assert (typed[a] == typed[b]) == (shown[a] == shown[b]), (values[a], values[b])


def _report(field_type: str):
    """A report whose detail field 0 is of ``field_type`` (only ``detail[0].type`` is read)."""
    rs = rules.load("emrr-revised")
    report = rs.reports["ECOSMIG-001"]
    index = {"text": 1, "datetime": 7}.get(field_type)
    if index is None:
        index = next(i for i, f in enumerate(rs.reports["ECOSMIG-002"].detail) if f.type == "integer")
        report = rs.reports["ECOSMIG-002"]
    return dataclasses.replace(report, detail=(report.detail[index],))


def test_hashes_made_in_slices_are_the_whole_frames(monkeypatch):
    """duplicate-record hashes its keys a slice of rows at a time (``crossfile.hashes``): a key must
    hash the same in any slice, or two equal records in two slices would not be candidates."""
    frame = _kept([ID, "DA", ID, None, "DA", "", ID]).with_columns(
        pl.Series("t0", [1, 2, 1, None, 2, 3, 1], dtype=pl.Int64), pl.Series("recipient", [0, 1, 0, 0, 1, 1, 0],
                                                                              dtype=pl.Int32))
    columns = ["k0", "x0", "t0", "recipient"]
    whole = frame.select(pl.struct(columns).hash()).to_series().to_numpy()
    monkeypatch.setattr(crossfile, "HASH_ROWS", 3)
    assert (crossfile.hashes(frame, columns) == whole).all()
    assert crossfile.repeated(crossfile.hashes(frame, columns)).tolist() == [True, True, True, False, True, False, True]
