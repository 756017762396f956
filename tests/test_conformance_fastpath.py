"""The checker's fast path (conformance/fastpath.py) never changes a verdict: a batch of detail
records it calls clean is one the general way (Polars on strings) finds nothing in, and what it
keeps for the checks across files is the general way's frame, column for column.

Each test runs the checker twice on the same files, once as it runs and once with the fast path
switched off, and compares every finding (file, line, field, check, message), the totals, the
record count and the frames kept for the checks across files. Hand-made cases pin the edges (a
Device ID in lower case, a 30 February, an empty optional field, a value of more bytes than
characters); Hypothesis then breaks detail records of the golden files at random.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from emrr.conformance import crossfile, fastpath
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import Checker, check
from emrr.rules import engine
from emrr.rules import ruleset as rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden" / "expected"
RS = rules.load(None)
EVERY_CHECK = set(CATALOGUE)  # the opt-in late-record included
GOLDEN = {p.relative_to(GOLDEN_DIR).as_posix(): p.read_bytes() for p in sorted(GOLDEN_DIR.rglob("*.csv"))}


def _run(directory: Path, fast: bool, select: set[str] | None = None):
    """(findings as dicts, totals, records, kept frames by report, batches the fast path took)."""
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
            mock.patch.object(Checker, "fast_flush", spy_fast):
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


def test_split_refuses_lines_of_another_width():
    """protects field-count: a line with a field too many or too few is never split as if it
    fitted (the totals of delimiters could otherwise balance out)."""
    assert fastpath.split(b"10,a,b\n10,c,d\r", 2, 3, ord(",")) is not None
    assert fastpath.split(b"10,a,b,x\n10,c", 2, 3, ord(",")) is None
    assert fastpath.split(b"10,a\n10,c,d,e", 2, 3, ord(",")) is None
    assert fastpath.split(b"\n10,a,b,c,d", 2, 3, ord(",")) is None


# --------------------------------------------------------------------------- generated cases

VALUES = ["", " ", "0", "1", "01", "10", "99", "000001", "999999999", "1000000000", "0000000000000000001", "1a",
          "-1", "+1", "Success", "Failure", "Installed", "success", "ESME", "GSME", "ÜÜÜ", "ÜÜÜÜÜÜÜÜÜÜÜÜÜÜÜÜ",
          "é" * 31, "x" * 31, "20230703", "20230631", "20230229", "20240229", "20230703T011000",
          "20230230T011000", "20230703T240000", "20230703T235960", "19700101T000000", "30000101T000000",
          "00-00-00-00-00-00-00-05", "00-00-00-00-00-00-00-0a", "FF-FF-FF-FF-FF-FF-FF-FF", "00-00-00-00-00-00-00-0G",
          "00-00-00-00-00-00-00", "0000-00-00-00-00-00-00-05", "1312345678907", "\u00a0", "DCC Controlled", "E1", "E12"]


@st.composite
def broken_delivery(draw):
    """The golden tree with a few detail fields replaced, lines duplicated or dropped."""
    files = dict(GOLDEN)
    detail_files = [rel for rel, data in GOLDEN.items() if data.count(b"\r\n") > 2]
    for _ in range(draw(st.integers(1, 4))):
        rel = draw(st.sampled_from(detail_files))
        lines = files[rel].split(b"\r\n")
        n = draw(st.integers(1, len(lines) - 3))
        action = draw(st.sampled_from(["field", "field", "field", "copy", "drop"]))
        if action == "field":
            fields = lines[n].split(b",")
            k = draw(st.integers(0, len(fields) - 1))
            fields[k] = draw(st.sampled_from(VALUES)).encode()
            lines[n] = b",".join(fields)
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


HEADERS = sorted({data.split(b"\r\n")[0].decode() for data in GOLDEN.values()})
TRAILERS = sorted({data.split(b"\r\n")[-2].decode() for data in GOLDEN.values()})


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
