"""The checker's fast path (conformance/fastpath.py) never changes a verdict: a batch of detail
records it calls clean is one the general way (Polars on strings) finds nothing in, and what it
keeps for the checks across files is the general way's frame, column for column.

Each test runs the checker twice on the same files, once as it runs and once with the fast path
switched off, and compares every finding (file, line, field, check, message), the totals, the
record count and the frames kept for the checks across files. Hand-made cases pin the edges (a
Device ID in lower case, a 30 February, an empty optional field, a value of more bytes than
characters); every field rule of the registry (``fields.FIELD_RULES``) is broken on every field
that carries it, in detail records (fast path against Polars) and in headers and trailers (plain
Python against Polars); Hypothesis then breaks detail records of the golden files at random.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from emrr.conformance import crossfile, fastpath, fields
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import Checker, check
from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.rules.ruleset import Field

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden" / "expected"
RS = rules.load(None)
EVERY_CHECK = set(CATALOGUE)  # the opt-in late-record included
GOLDEN = {p.relative_to(GOLDEN_DIR).as_posix(): p.read_bytes() for p in sorted(GOLDEN_DIR.rglob("*.csv"))}


def _run(directory: Path, fast: bool, select: set[str] | None = None):
    """(findings as dicts, totals, records, kept frames by report, batches the fast path took);
    the fast path is tried on a batch of any size (``fastpath.MAX_ROWS`` lifted)."""
    frames: dict = {}
    taken = []
    real_init = crossfile.CrossFile.__init__
    real_fast = Checker.fast_flush

    def spy_init(self, rs, out, files, kept):
        frames.update(kept)
        real_init(self, rs, out, files, kept)

    def spy_fast(self, report, batch):
        done = real_fast(self, report, batch) if fast else False
        taken.append(done)
        return done

    with mock.patch.object(crossfile.CrossFile, "__init__", spy_init), \
            mock.patch.object(Checker, "fast_flush", spy_fast), mock.patch.object(fastpath, "MAX_ROWS", 1 << 62):
        verdict = check(directory, RS, select=select)
    return [f.as_dict() for f in verdict], verdict.totals, verdict.records, frames, sum(taken)


def assert_same(directory: Path, select: set[str] | None = None) -> int:
    """Both ways agree on ``directory``; returns how many batches the fast path took."""
    fast = _run(directory, True, select)
    slow = _run(directory, False, select)
    assert fast[0] == slow[0]
    assert fast[1:3] == slow[1:3]
    assert fast[3].keys() == slow[3].keys()
    for rid in fast[3]:
        assert_frame_equal(fast[3][rid], slow[3][rid], check_column_order=True, check_dtypes=True)
    return fast[4]


def _write(root: Path, files: dict[str, bytes]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _edit(rel: str, line: int, field: int, value: str) -> dict[str, bytes]:
    """The golden tree with one field of one line of one file replaced."""
    files = dict(GOLDEN)
    lines = files[rel].split(b"\r\n")
    fields = lines[line - 1].split(b",")
    fields[field] = value.encode()
    lines[line - 1] = b",".join(fields)
    files[rel] = b"\r\n".join(lines)
    return files


# --------------------------------------------------------------------------- hand-made cases


def test_fast_path_keeps_the_general_frame_for_the_golden_delivery(tmp_path):
    """protects the checks across files: on the clean golden files (every report) the fast path
    is taken, and it keeps exactly the frames the general way keeps."""
    directory = _write(tmp_path / "d", GOLDEN)
    assert assert_same(directory) == 5  # ECOSMIG-001, -002, -003, -005 and -006 read on their bytes
    # with late-record on, the two files holding a late record go the general way, which says so
    assert assert_same(directory, EVERY_CHECK) == 3


def test_fast_path_keeps_the_general_frame_for_the_demo_scenario(tmp_path_factory, simulated):
    """protects the verdict at scale: the engine's demo output, both ways, same findings (none)
    and the same kept frames."""
    out = tmp_path_factory.mktemp("fastpath-demo") / "reports"
    engine.report(simulated("demo").path, out, RS, progress=False)
    assert assert_same(out) >= 5


F001 = "PSUP01/ECOSMIG-001_PSUP01_1_20230704060000.csv"
F002 = "PSUP02/ECOSMIG-002_PSUP02_1_20230703120000.csv"
F003 = "PSUP02/ECOSMIG-003_PSUP02_1_20230802080000.csv"
F005 = "PSUP01/ECOSMIG-005_PSUP01_1_20230710060000.csv"


@pytest.mark.parametrize("rel, field, value", [
    (F001, 1, "00-00-00-00-00-00-00-0a"),  # lower-case hex: kept as text, not as a number
    (F001, 1, "00-00-00-00-00-00-00-0"),  # a Device ID one character short
    (F001, 1, "00:00:00:00:00:00:00:05"),
    (F001, 7, "20230230T011000"),  # 30 February: not a real date
    (F001, 7, "20230703T241000"),  # hour 24
    (F001, 7, "20230703 011000"),
    (F001, 7, "19691231T235959"),  # before 1970: the general way decides
    (F001, 7, "20230705T011000"),  # after the window
    (F001, 7, ""),
    (F001, 0, "11"),
    (F001, 3, "ÜÜÜÜ"),  # 8 bytes, 4 characters: at most 6 characters allowed
    (F001, 3, "ÜÜÜÜÜÜÜ"),  # 7 characters
    (F001, 2, ""),
    (F002, 8, "1a"),  # Error Sub Code not an Integer
    (F002, 10, "0000000000000000001"),  # 19 digits: too long, and not kept as a number
    (F002, 10, "000001"),
    (F003, 7, "Pending"),  # not an ECoS Status
    (F003, 8, ""),  # empty Error Code on a Failure line, or an empty optional field
    (F005, 1, "20230631"),
    (F005, 2, "-1"),
])
def test_fast_path_gives_way_on_every_kind_of_defect(tmp_path, rel, field, value):
    """protects every field and window check: one field broken on every detail line of a file
    gives the same findings with and without the fast path."""
    files = dict(GOLDEN)
    lines = files[rel].split(b"\r\n")
    for n in range(1, len(lines) - 2):
        fields = lines[n].split(b",")
        if field < len(fields):
            fields[field] = value.encode()
        lines[n] = b",".join(fields)
    files[rel] = b"\r\n".join(lines)
    assert_same(_write(tmp_path / "d", files), EVERY_CHECK)


def test_device_numbers_and_times_read_on_bytes_match_python(tmp_path):
    """protects the kept columns: Device IDs as 64-bit numbers and date-times as seconds since
    the epoch, computed on bytes, equal Python's own reading, over many random values (leap
    years, month ends, the largest Device ID)."""
    import datetime as dt

    from emrr.conformance.formats import parse_one

    rnd = random.Random(7)
    ids = [rnd.getrandbits(64) for _ in range(500)] + [0, 2**64 - 1]
    times = [dt.datetime(1970, 1, 1) + dt.timedelta(seconds=rnd.randrange(0, 1029 * 365 * 86400))
             for _ in range(len(ids) - 2)] + [dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(2999, 12, 31)]
    rows = [f"10,{'-'.join(f'{b:02X}' for b in i.to_bytes(8, 'big'))},{t:%Y%m%dT%H%M%S}" for i, t in zip(ids, times)]
    body = "\r\n".join(rows).encode() + b"\r"
    fields = fastpath.split(body, len(rows), 3, ord(","))
    assert fields is not None
    assert fastpath._device_numbers(fields, 1).tolist() == ids
    fmt = fastpath.TimeFormat.of("%Y%m%dT%H%M%S")
    seconds, present = fastpath._times(fields, 2, fmt, True)
    assert present.all()
    assert seconds.tolist() == [int(t.replace(tzinfo=dt.UTC).timestamp()) for t in times]
    # the checker's one reading of a date-time (formats.parse_one, epoch_expr's twin) agrees
    assert seconds.tolist() == [parse_one(f"{t:%Y%m%dT%H%M%S}", "datetime", "%Y%m%dT%H%M%S", "%Y%m%d") for t in times]


def test_split_refuses_lines_of_another_width():
    """protects field-count: a line with a field too many or too few is never split as if it
    fitted (the totals of delimiters could otherwise balance out)."""
    assert fastpath.split(b"10,a,b\n10,c,d\r", 2, 3, ord(",")) is not None
    assert fastpath.split(b"10,a,b,x\n10,c", 2, 3, ord(",")) is None
    assert fastpath.split(b"10,a\n10,c,d,e", 2, 3, ord(",")) is None
    assert fastpath.split(b"\n10,a,b,c,d", 2, 3, ord(",")) is None


# --------------------------------------------------------------------------- the field rules, once


def breaking(f: Field, rule: str) -> list[str]:
    """Values that break (or, for a value of more bytes than characters, come near to breaking)
    ``rule`` on field ``f``; every rule of ``fields.FIELD_RULES`` has some."""
    return {
        "mandatory": [""],
        "length": ["9" * (f.max_length + 1), "Ü" * f.max_length, "Ü" * (f.max_length + 1)],
        "type": {"integer": ["1a", "-1", "+1"], "datetime": ["20230230T011000", "20230703 011000", "19691231T235959"],
                 "date": ["20230631", "2023-07-03"], "text": []}[f.type],
        "minimum": [str((f.minimum or 0) - 1), "0" * f.max_length],
        "enum": [(f.enum or ("x",))[0].lower(), "Pending"],
        "constant": [f.source + "x", f.source.lower(), ""],
        "mandatory_when": [""],
        "empty_unless": ["1"],
    }[rule]


def test_field_rules_name_every_attribute_of_field():
    """protects deliverable 1 of issue 8 (review B1): every attribute of ``Field`` is read by a
    rule of ``fields.FIELD_RULES`` or declared no rule, so a new attribute cannot be missed; each
    rule is reported by a field check of the catalogue."""
    read = {a for r in fields.FIELD_RULES.values() for a in r.reads}
    assert read.isdisjoint(fields.NOT_RULES)
    assert {a.name for a in dataclasses.fields(Field)} == read | set(fields.NOT_RULES)
    for rule in fields.FIELD_RULES.values():
        assert CATALOGUE[rule.check].family == "field", rule
        assert breaking(RS.header[1], rule.name) is not None  # every rule is broken by the tests below


def test_every_backend_declares_the_rules_it_implements():
    """protects fail-closed backends (review B1): the Polars masks implement every rule; the
    header/trailer Python path and the byte fast path declare a subset of the registry."""
    assert fields.POLARS_IMPLEMENTS == set(fields.FIELD_RULES)
    assert fields.PLAIN_IMPLEMENTS <= set(fields.FIELD_RULES)
    assert fastpath.IMPLEMENTS <= set(fields.FIELD_RULES)


@dataclasses.dataclass(frozen=True)
class PatternedField(Field):
    """A Field with an attribute the registry does not know (as a rule added the obvious way)."""

    pattern: str | None = None


def test_a_rule_a_backend_does_not_implement_makes_it_give_way(monkeypatch):
    """protects review B1's defect: a field carrying a rule a backend does not implement (an
    attribute outside the registry, or a registered rule outside the backend's list) makes the
    fast path and the header/trailer path give way, and the Polars masks refuse it loudly."""
    report = RS.reports["ECOSMIG-003"]
    assert fastpath.Layout.of(report, RS, "10", False) is not None
    monkeypatch.setattr(fastpath, "IMPLEMENTS", fastpath.IMPLEMENTS - {"enum"})
    assert fastpath.Layout.of(report, RS, "10", False) is None  # ECoS Status has an enum
    assert fastpath.Layout.of(RS.reports["ECOSMIG-001"], RS, "10", False) is not None
    monkeypatch.undo()
    patterned = PatternedField(**dataclasses.asdict(report.detail[2]), pattern="^[0-9]{13}$")
    detail = (*report.detail[:2], patterned, *report.detail[3:])
    assert "?pattern" in fields.carried(patterned)
    assert fastpath.Layout.of(dataclasses.replace(report, detail=detail), RS, "10", False) is None
    header = (*RS.header[:2], PatternedField(**dataclasses.asdict(RS.header[2]), pattern="^P"), *RS.header[3:])
    row = next(iter(HEADERS)).split(",")
    assert fields.plainly_valid(row, RS.header, RS) and not fields.plainly_valid(row, header, RS)
    from emrr.conformance.findings import Collector

    with pytest.raises(AssertionError, match="pattern"):
        fields.field_masks(detail, RS, Collector(EVERY_CHECK))


def _largest(report_id: str) -> str:
    return max((rel for rel in GOLDEN if rel.rsplit("/", 1)[-1].startswith(report_id + "_")),
               key=lambda rel: (GOLDEN[rel].count(b"\r\n"), rel))


def _has_file(report_id: str) -> bool:
    return any(rel.rsplit("/", 1)[-1].startswith(report_id + "_") for rel in GOLDEN)


# field 0, the Record type, broken makes the line another record (record-type): not a field case;
# a report the golden log gives no file (one a ruleset adds) has no record to break: not a case
RULE_CASES = [(rid, i, rule) for rid, report in RS.reports.items() if _has_file(rid)
              for i, f in enumerate(report.detail) for rule in sorted(fields.carried(f)) if i > 0]


@pytest.mark.parametrize("report_id, index, rule", RULE_CASES)
def test_every_field_rule_broken_gives_the_same_findings_both_ways(tmp_path, report_id, index, rule):
    """protects deliverable 1 of issue 8: each rule a detail field carries, broken on every
    detail record of a file, is found by the general way (the break is real) and the fast path
    gives the same findings, totals and kept frames."""
    rel = _largest(report_id)
    f = RS.reports[report_id].detail[index]
    found = set()
    for k, value in enumerate(breaking(f, rule)):
        lines = GOLDEN[rel].split(b"\r\n")
        for n in range(1, len(lines) - 2):
            row = lines[n].split(b",")
            row[index] = value.encode()
            lines[n] = b",".join(row)
        directory = _write(tmp_path / f"d{k}", {rel: b"\r\n".join(lines)})
        assert_same(directory, EVERY_CHECK)
        found |= {(x.field, x.check) for x in check(directory, RS, select=EVERY_CHECK)}
    assert (f.name, fields.FIELD_RULES[rule].check) in found


HEADERS = sorted({data.split(b"\r\n")[0].decode() for data in GOLDEN.values()})
TRAILERS = sorted({data.split(b"\r\n")[-2].decode() for data in GOLDEN.values()})


def _polars_findings(row: list[str], layout: tuple[Field, ...]) -> dict[str, int]:
    import polars as pl

    from emrr.conformance.findings import Collector

    out = Collector(EVERY_CHECK)
    frame = pl.DataFrame({"fid": [0], "line": [1], **{f"c{i}": [v] for i, v in enumerate(row)}},
                         schema={"fid": pl.Int32, "line": pl.Int64, **{f"c{i}": pl.String for i in range(len(row))}})
    fields.check_fields(frame, layout, RS, out, lambda fid: "f.csv")
    return out.verdict().totals


@pytest.mark.parametrize("kind", ["header", "trailer"])
def test_every_field_rule_broken_in_headers_and_trailers_is_never_hidden(kind):
    """protects deliverable 1 of issue 8: each rule a header or trailer field carries, broken,
    is found by the Polars masks, and the plain Python path never calls that record valid."""
    layout, record = (RS.header, HEADERS[0]) if kind == "header" else (RS.trailer, TRAILERS[0])
    for i, f in enumerate(layout):
        for rule in sorted(fields.carried(f)):
            if rule == "constant" and i == 0:
                continue  # the record type: record-type's, not a field check
            found = set()
            for value in breaking(f, rule):
                row = record.split(",")
                row[i] = value
                totals = _polars_findings(row, layout)
                found |= set(totals)
                if totals:
                    assert not fields.plainly_valid(row, layout, RS), (f.name, rule, value)
            assert fields.FIELD_RULES[rule].check in found, (f.name, rule)


def test_parse_one_reads_as_epoch_expr_within_the_years():
    """protects one date reading (review B1): ``formats.parse_one`` (one value, for headers and
    names) gives what ``formats.epoch_expr`` (Polars, for detail fields) gives, within
    ``formats.YEARS``, on generated values of several formats."""
    import polars as pl

    from emrr.conformance import formats

    rnd = random.Random(11)
    for field_type, fmt in (("datetime", "%Y%m%dT%H%M%S"), ("date", "%Y%m%d"), ("datetime", "%Y%m%d%H%M%S"),
                            ("datetime", "%Y-%m-%d %H:%M:%S"), ("date", "%d/%m/%Y")):
        values = []
        for _ in range(1500):
            year = rnd.choice([0, 1, 1969, 1970, 2000, 2024, 2100, 2999, 3000, 9999, rnd.randrange(10000)])
            value = fmt
            for d, number in (("Y", year), ("m", rnd.randrange(14)), ("d", rnd.randrange(33)), ("H", rnd.randrange(25)),
                              ("M", rnd.randrange(61)), ("S", rnd.randrange(61))):
                value = value.replace(f"%{d}", f"{number:0{4 if d == 'Y' else 2}d}")
            values.append(rnd.choice([value, value, value, value[:-1], value + "0", " " + value]))
        polars = pl.select(formats.epoch_expr(pl.Series(values, dtype=pl.String), field_type, fmt, fmt)).to_series()
        low, high = formats.SANE
        expected = [t if t is not None and low <= t < high else None for t in polars.to_list()]
        assert [formats.parse_one(v, field_type, fmt, fmt) for v in values] == expected, fmt


# --------------------------------------------------------------------------- generated cases

VALUES = ["", " ", "0", "1", "01", "10", "99", "000001", "999999999", "1000000000", "0000000000000000001", "1a",
          "-1", "+1", "Success", "Failure", "Installed", "success", "ESME", "GSME", "ÜÜÜ", "ÜÜÜÜÜÜÜÜÜÜÜÜÜÜÜÜ",
          "é" * 31, "x" * 31, "20230703", "20230631", "20230229", "20240229", "20230703T011000",
          "20230230T011000", "20230703T240000", "20230703T235960", "19700101T000000", "30000101T000000",
          "00-00-00-00-00-00-00-05", "00-00-00-00-00-00-00-0a", "FF-FF-FF-FF-FF-FF-FF-FF", "00-00-00-00-00-00-00-0G",
          "00-00-00-00-00-00-00", "0000-00-00-00-00-00-00-05", "1312345678907", "\u00a0", "DCC Controlled", "E1", "E12"]


@st.composite
def broken_delivery(draw):
    """The golden tree with a few detail fields replaced (by values of every kind, and by values
    breaking each rule of the field, ``breaking``), lines duplicated or dropped."""
    files = dict(GOLDEN)
    detail_files = [rel for rel, data in GOLDEN.items() if data.count(b"\r\n") > 2]
    for _ in range(draw(st.integers(1, 4))):
        rel = draw(st.sampled_from(detail_files))
        lines = files[rel].split(b"\r\n")
        n = draw(st.integers(1, len(lines) - 3))
        action = draw(st.sampled_from(["field", "field", "field", "copy", "drop"]))
        if action == "field":
            row = lines[n].split(b",")
            k = draw(st.integers(0, len(row) - 1))
            layout = RS.reports[rel.rsplit("/", 1)[-1].split("_")[0]].detail
            near = [v for rule in sorted(fields.carried(layout[k])) for v in breaking(layout[k], rule)] \
                if k < len(layout) else []
            row[k] = draw(st.sampled_from(VALUES + near)).encode()  # any value, or one breaking the field's rules
            lines[n] = b",".join(row)
        elif action == "copy":
            lines.insert(n, lines[n])
        elif len(lines) > 4:
            del lines[n]
        files[rel] = b"\r\n".join(lines)
    return files


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(broken_delivery(), st.sampled_from([None, EVERY_CHECK]))
def test_fast_path_never_changes_a_verdict(files, select):
    """protects every detail check: whatever fields are broken, the findings, totals and kept
    frames are the same with and without the fast path."""
    with tempfile.TemporaryDirectory(dir=ROOT / "tests") as tmp:
        assert_same(_write(Path(tmp) / "d", files), select)


def test_timeformat_reads_only_fixed_digit_formats():
    """protects the reach of the fast path: only formats of %Y %m %d (%H %M %S) and literals are
    read on bytes; anything else goes the general way."""
    assert fastpath.TimeFormat.of("%Y%m%dT%H%M%S").width == 15
    assert fastpath.TimeFormat.of("%Y-%m-%d").width == 10
    assert fastpath.TimeFormat.of("%Y%m%d%H") is None
    assert fastpath.TimeFormat.of("%y%m%d") is None
    assert fastpath.TimeFormat.of("%Y%m%dT%H%M%S.%f") is None
    assert np.array_equal(fastpath._month_days(np.array([2023, 2024, 2100, 2000]), np.array([2, 2, 2, 2])),
                          [28, 29, 28, 29])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(HEADERS + TRAILERS), st.lists(st.tuples(st.integers(0, 8), st.sampled_from(VALUES)),
                                                      max_size=3))
def test_plainly_valid_never_hides_a_header_or_trailer_finding(record, edits):
    """protects the header and trailer field checks: a record ``fields.plainly_valid`` passes is
    one ``check_fields`` (Polars) finds nothing in."""
    import polars as pl

    from emrr.conformance.fields import check_fields, plainly_valid
    from emrr.conformance.findings import Collector

    row = record.split(",")
    for k, value in edits:
        if k < len(row):
            row[k] = value
    layout = RS.header if row[0] == "00" else RS.trailer
    if len(row) != len(layout):
        assert not plainly_valid(row, layout, RS)
        return
    out = Collector(EVERY_CHECK)
    frame = pl.DataFrame({"fid": [0], "line": [1], **{f"c{i}": [v] for i, v in enumerate(row)}},
                         schema={"fid": pl.Int32, "line": pl.Int64, **{f"c{i}": pl.String for i in range(len(row))}})
    check_fields(frame, layout, RS, out, lambda fid: "f.csv")
    if plainly_valid(row, layout, RS):
        assert out.verdict().totals == {}, row
