"""Fuzzing the conformance checker: whatever a delivery holds, ``check()`` returns its findings
(a list) and never raises, and every finding's check is one of the catalogue (docs/checks.md:
"Nothing in a file, however broken, stops the checker").

Each Hypothesis example is one small delivery: a few files written into a fresh temporary folder
and checked at once, with one ruleset loaded once for the whole module. The files are random
bytes, random text in other encodings (UTF-16, Latin-1, cp1252, UTF-8 with a BOM), the golden
files (tests/golden/expected) with random byte flips, insertions, deletions and truncations, line
shuffles, duplicated or moved lines, fields replaced, quotes added, line endings changed (CR only,
LF only, mixed) or re-encoded, random CSV rows with random field counts, huge lines and huge
fields; under random file names, odd ones included (any Unicode, control characters, bytes that
are not UTF-8, wrong case, hidden files, wrong folders), beside directories, empty files and
dangling symbolic links named like report files. Some deliveries are checked with checks
ignored or selected at random.

What counts is files, not examples: to keep the run short, several files share a delivery (so
the checks across files see them together). Each test checks ``max_examples`` deliveries
(``EXAMPLES``) of ``FILES`` (10) files, the huge-line test of ``HUGE_FILES`` (3): 1,080
examples carrying 10,520 generated or mutated files (a name drawn twice goes one folder down; a
name the file system cannot hold is skipped and not counted, nor are the untouched golden files
put beside the mutated ones).
``test_fuzz_file_count`` (last in this module) asserts that the files actually written and
checked number at least ``TOTAL_FILES`` (10,000) when every fuzz test ran. About 35-40 s on the
2-core reference machine.
"""

from __future__ import annotations

import codecs
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrr.conformance.catalogue import CATALOGUE, FAMILIES
from emrr.conformance.checker import check
from emrr.conformance.mutations import join_lines, split_lines
from emrr.rules import ruleset as rules

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden" / "expected"
RS = rules.load(None)  # one ruleset for every example
GOLDEN: dict[str, bytes] = {p.relative_to(GOLDEN_DIR).as_posix(): p.read_bytes()
                            for p in sorted(GOLDEN_DIR.rglob("*.csv"))}
GOLDEN_NAMES = sorted(GOLDEN)
REPORT_IDS = sorted(RS.reports)
EVERY_CHECK = set(CATALOGUE)  # opt-in checks (late-record) included; the ground-truth ones only note
# that they need an event log

FILES = 10  # files per delivery
TOTAL_FILES = 10_000
# test name -> deliveries; FILES files each (the huge-line test: HUGE_FILES)
EXAMPLES = {
    "test_fuzz_mutated_golden": 380,
    "test_fuzz_random_content": 250,
    "test_fuzz_random_csv": 250,
    "test_fuzz_names_and_entries": 160,
    "test_fuzz_huge_lines": 40,
}
HUGE_FILES = 3
WRITTEN: dict[str, int] = {}  # test name -> files written and checked
assert sum(n * (HUGE_FILES if t == "test_fuzz_huge_lines" else FILES) for t, n in EXAMPLES.items()) >= TOTAL_FILES


def fuzz_settings(name: str):
    return settings(max_examples=EXAMPLES[name], deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


# --------------------------------------------------------------------------- pieces

TOKENS = [b'"', b",", b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", codecs.BOM_UTF8,
          b"10,", b"00,", b"99,", b'""', b'"a,b"', b",,,,", b"\t", b" ", b"\x1f", b"\xed\xa0\x80",
          "é€日本".encode(), b"20230230T250000", b"99999999999999999999"]
VALUES = ["", " ", "0", "1", "-1", "01", "000001", "999999", "1000000", "99999999999999999999", "1e3", "١٢",
          "x" * 41, "y" * 300, "20230703T011000", "20230230T120000", "20231301T000000", "2023-07-03T01:10:00",
          "20230703", "20230230", "00-00-00-00-00-00-00-05", "00-00-00-00-00-00-00-0c", "00-00-00-00-00-00-00-0C",
          "00-00-00-00-00-00-00-06", "00-00-00-00-00-00-00-06 ", "FF-FF-FF-FF-FF-FF-FF-FF", "00-00-00",
          "10", "00", "99", "ECOSMIG-001", "ECOSMIG-009", "PSUP01", "PSUP03", "Success", "Failure", "success",
          "EC101", "DCC Controlled", '"', '"quoted"', '"a,b"', 'a"b', "é", "€", "\x00", "\r", "\n", "日本語"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "cp1252", "utf-32"]
TERMINATORS = ["\r\n", "\n", "\r"]
# the devices and times of the golden files, and a few near them: an "event" mutation makes
# repeats, attempts out of order and failures after a success across files
DEVICES = ["00-00-00-00-00-00-00-05", "00-00-00-00-00-00-00-06", "00-00-00-00-00-00-00-08",
           "00-00-00-00-00-00-00-09", "00-00-00-00-00-00-00-0C", "00-00-00-00-00-00-00-0c", "0c", "",
           "00-00-00-00-00-00-00-06 ", "FF-FF-FF-FF-FF-FF-FF-FF"]
TIMES = ["20230703T011000", "20230703T050000", "20230704T130000", "20230705T100000", "20230710T030000",
         "20230712T140000", "20230713T000000", "20230720T080000", "20230801T000000", "20230230T000000", ""]

# a position anywhere (Hypothesis favours small numbers: spread them over the file, reproducibly)
positions = st.integers(min_value=0, max_value=(1 << 32) - 1).map(lambda x: (x * 2654435761) % (1 << 32))
values = st.sampled_from(VALUES) | st.text(max_size=12)


RECORD_OPS = ["event", "event", "event", "field", "dup_line", "del_line", "swap_lines", "copy_line"]
ANY_OPS = ["flip", "set", "insert", "delete", "truncate", "dup_line", "del_line", "swap_lines", "shuffle", "field",
           "add_field", "drop_field", "endings", "bom", "copy_line", "quote", "reencode", "nul", "event", "event"]


@st.composite
def mutation(draw, kinds=tuple(ANY_OPS)):
    kind = draw(st.sampled_from(kinds))
    if kind == "flip":
        return kind, draw(positions), draw(st.integers(0, 7))
    if kind == "set":
        return kind, draw(positions), draw(st.integers(0, 255))
    if kind == "insert":
        return kind, draw(positions), draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
    if kind == "delete":
        return kind, draw(positions), draw(st.integers(1, 64))
    if kind in ("truncate", "dup_line", "del_line", "nul"):
        return kind, draw(positions)
    if kind == "swap_lines":
        return kind, draw(positions), draw(positions)
    if kind == "shuffle":
        return kind, draw(st.integers(0, 1 << 30))
    if kind in ("field", "add_field"):
        return kind, draw(positions), draw(positions), draw(values)
    if kind == "drop_field":
        return kind, draw(positions), draw(positions)
    if kind == "endings":
        return kind, draw(st.sampled_from(["\n", "\r", "mixed", "none"]))
    if kind == "bom":
        return kind, draw(st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE,
                                           codecs.BOM_UTF8 + codecs.BOM_UTF8]))
    if kind == "copy_line":
        return kind, draw(st.sampled_from(GOLDEN_NAMES)), draw(positions), draw(positions)
    if kind == "quote":
        return kind, draw(positions), draw(positions)
    if kind == "event":
        return kind, draw(positions), draw(st.sampled_from(DEVICES)), draw(st.sampled_from(TIMES)), \
            draw(st.sampled_from(["1", "2", "3", "10", "0", "x", ""]))
    return kind, draw(st.sampled_from(ENCODINGS))  # reencode


def _lines(data: bytes) -> list[bytes]:
    return split_lines(data)


# Byte mutations: a file's bytes, however broken; records are not read.


def _at(data: bytes, position: int, extra: int = 0) -> int:
    return position % (len(data) + extra) if data or extra else 0


def _endings(data: bytes, style: str) -> bytes:
    if style == "mixed":
        return b"".join(line + (b"\r\n", b"\n", b"\r")[k % 3] for k, line in enumerate(_lines(data)))
    if style == "none":
        return data.rstrip(b"\r\n")
    return data.replace(b"\r\n", style.encode())


BYTE_OPS = {
    "flip": lambda data, i, bit: data[:_at(data, i)] + bytes([data[_at(data, i)] ^ (1 << bit)])
    + data[_at(data, i) + 1:] if data else data,
    "set": lambda data, i, byte: data[:_at(data, i)] + bytes([byte]) + data[_at(data, i) + 1:] if data else data,
    "insert": lambda data, i, token: data[:_at(data, i, 1)] + token + data[_at(data, i, 1):],
    "delete": lambda data, i, n: data[:_at(data, i, 1)] + data[_at(data, i, 1) + n:],
    "truncate": lambda data, i: data[:_at(data, i, 1)],
    "nul": lambda data, i: data[:_at(data, i, 1)] + b"\x00" + data[_at(data, i, 1):],
    "bom": lambda data, bom: bom + data,
    "reencode": lambda data, encoding: data.decode("utf-8", "replace").encode(encoding, "replace"),
    "endings": _endings,
}


# Record mutations: on the file's lines and fields (split as mutations.Delivery's raw edits
# split them), in place.


def _swap(lines: list[bytes], i: int, j: int) -> None:
    i, j = i % len(lines), j % len(lines)
    lines[i], lines[j] = lines[j], lines[i]


def _fields(lines: list[bytes], i: int, edit) -> None:
    """``edit(parts, ...)`` on the fields of line ``i`` (modulo the line count)."""
    i %= len(lines)
    parts = lines[i].split(b",")
    edit(parts)
    lines[i] = b",".join(parts)


def _drop(parts: list[bytes], j: int) -> None:
    if len(parts) > 1:
        del parts[j % len(parts)]


def _quote(parts: list[bytes], j: int) -> None:
    k = j % len(parts)
    parts[k] = b'"' + parts[k] + (b'"' if j % 3 else b"")  # sometimes left open


def _event(lines: list[bytes], i: int, device: str, stamp: str, attempts: str) -> None:
    """A detail record's device, last date-time and Number of Attempts."""
    i = 1 + i % max(1, len(lines) - 3)  # between the header and the trailer
    if i >= len(lines):
        return
    parts = lines[i].split(b",")
    if len(parts) > 1:
        parts[1] = device.encode()
    stamps = [k for k, v in enumerate(parts) if len(v) == 15 and v[8:9] == b"T"]
    if stamps:
        parts[stamps[-1]] = stamp.encode()
    if len(parts) == 11:  # ECOSMIG-002
        parts[8] = attempts.encode()
    if len(parts) == 12:  # ECOSMIG-003: the status, which decides whether Error Code may be empty
        parts[7] = ("Success", "Failure", "Installed")[len(attempts) % 3].encode()
    lines[i] = b",".join(parts)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


LINE_OPS = {
    "dup_line": lambda lines, i: lines.insert(i % len(lines), lines[i % len(lines)]),
    "del_line": lambda lines, i: lines.pop(i % len(lines)),
    "swap_lines": _swap,
    "shuffle": lambda lines, seed: random.Random(seed).shuffle(lines),
    "field": lambda lines, i, j, value: _fields(lines, i, lambda p: p.__setitem__(j % len(p), _text(value))),
    "add_field": lambda lines, i, j, value: _fields(lines, i, lambda p: p.insert(j % len(p), _text(value))),
    "drop_field": lambda lines, i, j: _fields(lines, i, lambda p: _drop(p, j)),
    "quote": lambda lines, i, j: _fields(lines, i, lambda p: _quote(p, j)),
    "event": _event,
    "copy_line": lambda lines, rel, i, j: lines.insert(i % (len(lines) + 1),
                                                       _lines(GOLDEN[rel])[j % len(_lines(GOLDEN[rel]))]),
}


def apply(data: bytes, op: tuple) -> bytes:
    """One mutation of a file's bytes."""
    kind, *args = op
    if kind in BYTE_OPS:
        return BYTE_OPS[kind](data, *args)
    lines = _lines(data)
    LINE_OPS[kind](lines, *args)
    return join_lines(lines)


@st.composite
def mutated_golden(draw):
    """A golden file with 1 to 6 mutations of any kind, or (one time in three) of its records only
    (events moved to other devices and times, fields replaced, lines repeated, dropped, swapped
    or copied from another file), which keeps it readable for the checks across files."""
    rel = draw(st.sampled_from(GOLDEN_NAMES))
    data = GOLDEN[rel]
    kinds = tuple(RECORD_OPS) if draw(st.integers(0, 2)) == 0 else tuple(ANY_OPS)
    for op in draw(st.lists(mutation(kinds), min_size=1, max_size=6)):
        data = apply(data, op)
    return data


HEX = "0123456789ABCDEFabcdef"


def _field(rnd: random.Random) -> str:
    """One random field: a value of VALUES, a Device ID (right or nearly), digits, or text."""
    kind = rnd.random()
    if kind < 0.4:
        return rnd.choice(VALUES)
    if kind < 0.6:
        return "-".join("".join(rnd.choice(HEX[:16] if rnd.random() < 0.95 else HEX) for _ in range(2))
                        for _ in range(8))
    if kind < 0.8:
        return "".join(rnd.choice("0123456789") for _ in range(rnd.choice([1, 4, 6, 8, 13, 15, 19])))
    return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0, 0x3000)]))
                   for _ in range(rnd.randrange(12)))


@st.composite
def random_csv(draw):
    """Rows of random field counts (the fields from a drawn seed) between a header and a trailer
    (either may be missing or wrong), any terminator, fields quoted when they need it (or never,
    or always), in UTF-8 mostly, else another encoding."""
    rel = draw(st.sampled_from(GOLDEN_NAMES))
    golden = _lines(GOLDEN[rel])
    rnd = random.Random(draw(st.integers(0, 1 << 32)))
    widths = draw(st.lists(st.integers(0, 14) | st.sampled_from([4, 8, 11, 12]), max_size=12))
    rows = [[_field(rnd) for _ in range(w)] for w in widths]
    quote = draw(st.sampled_from(["needed", "never", "always"]))

    def cell(v: str) -> str:
        if quote == "always" or (quote == "needed" and any(c in v for c in ',"\r\n')):
            return '"' + v.replace('"', '""') + '"'
        return v
    text_rows = [",".join(cell(v) for v in row) for row in rows]
    if draw(st.booleans()):
        text_rows = [golden[0].decode()] + text_rows
    if draw(st.booleans()):
        text_rows.append(draw(st.sampled_from([golden[-2].decode(), f"99,{len(rows)},DCC Controlled", "99", "99,x,y"])))
    terminator = draw(st.sampled_from(TERMINATORS))
    text = terminator.join(text_rows) + (terminator if draw(st.booleans()) else "")
    return text.encode(draw(st.sampled_from(ENCODINGS[:1] * 6 + ENCODINGS)), "replace")


random_text = st.builds(lambda t, enc: t.encode(enc, "replace"), st.text(max_size=400), st.sampled_from(ENCODINGS))
random_bytes = st.binary(max_size=600)
contents = st.one_of(mutated_golden(), random_csv(), random_text, random_bytes, st.just(b""),
                     st.sampled_from(list(GOLDEN.values())))


# --------------------------------------------------------------------------- names

NAME_CHARS = st.characters(exclude_characters="/\x00", exclude_categories=("Cs",))
SURROGATE_ESCAPES = [chr(0xDC00 + b) for b in (0x80, 0xC3, 0xFE, 0xFF)]  # bytes that are not UTF-8
FOLDERS = ["", "PSUP01/", "PSUP02/", "PSUP03/", "other/", "a/b/c/", ".hidden/", "PSUP01/PSUP02/", "psup01/",
           "PSUP01/.x/", "\udcff/", "sp ace/"]


@st.composite
def pattern_name(draw):
    rid = draw(st.sampled_from(REPORT_IDS + ["ECOSMIG-007", "ecosmig-001", "", "ECOSMIG_001"]))
    recipient = draw(st.sampled_from(["PSUP01", "PSUP02", "PSUP03", ""]) | st.text(NAME_CHARS, max_size=8))
    seq = draw(st.integers(-3, 10**7).map(str) | st.sampled_from(["01", "0", "", "1e3", "١", " 1", "1_0"]))
    created = draw(st.sampled_from(["20230704060000", "20230706060000", "20230230060000", "2023070406000",
                                    "20230704T060000", "99999999999999", ""])
                   | st.from_regex(r"20[0-9]{12}", fullmatch=True))
    suffix = draw(st.sampled_from([".csv"] * 6 + [".CSV", ".Csv", "", ".txt", ".csv.bak"]))
    return f"{rid}_{recipient}_{seq}_{created}{suffix}"


@st.composite
def odd_name(draw):
    base = draw(st.text(NAME_CHARS, min_size=1, max_size=40))
    if draw(st.booleans()):
        base += draw(st.sampled_from(SURROGATE_ESCAPES))
    return base + draw(st.sampled_from([".csv", ".csv", ".CSV", "", ".csv\n"]))


names = st.one_of(st.sampled_from(GOLDEN_NAMES),
                  st.tuples(st.sampled_from(FOLDERS), pattern_name()).map("".join),
                  st.tuples(st.sampled_from(FOLDERS), odd_name()).map("".join),
                  st.sampled_from([".hidden.csv", "x.csv", "X.CSV", " .csv", ".csv", "..csv", "a" * 200 + ".csv",
                                   "é.csv", "\r\n.csv", "\t.csv", "\udcff\udcfe.csv", "PSUP01/" + "b" * 250]))


def _fits(rel: str) -> bool:
    """A path this file system can hold: every part at most 255 bytes, no '.' or '..' part."""
    parts = rel.split("/")
    return all(p not in ("", ".", "..") and len(os.fsencode(p)) <= 255 for p in parts)


# --------------------------------------------------------------------------- writing and checking

def write_delivery(root: Path, files: list[tuple[str, bytes]], extras: list[str] = (),
                   untouched: list[tuple[str, bytes]] = ()) -> int:
    """Write ``files`` (relative name, bytes) under ``root``; return how many were written. A name
    already taken goes one folder down (``again/``: still the recipient's folder for a golden
    name); a name that cannot be made (a part over 255 bytes, a file where a folder is) is
    skipped."""
    written = 0
    seen: set[str] = set()
    for rel, data in files:
        while rel in seen:
            rel = "again/" + rel
        if not _fits(rel):
            continue
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError:
            continue
        seen.add(rel)
        written += 1
    for rel, data in untouched:  # not counted
        if rel not in seen:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    for extra in extras:
        try:
            if extra == "dir":
                (root / "ECOSMIG-001_PSUP01_9_20230704060000.csv").mkdir(exist_ok=True)
            elif extra == "dangling":
                os.symlink(root / "nowhere", root / "ECOSMIG-001_PSUP01_8_20230704060000.csv")
            elif extra == "loop":
                os.symlink(root / "loop.csv", root / "loop.csv")
            elif extra == "dir_link":
                os.symlink(root, root / "self.csv")
            elif extra == "file_link" and seen:
                os.symlink(root / sorted(seen)[0], root / "ECOSMIG-001_PSUP01_7_20230704060000.csv")
            elif extra == "empty":
                (root / "PSUP02").mkdir(exist_ok=True)
                (root / "PSUP02" / "ECOSMIG-002_PSUP02_9_20230703120000.csv").write_bytes(b"")
        except OSError:
            continue
    return written


def check_delivery(base: Path, files: list[tuple[str, bytes]], test: str, extras: list[str] = (),
                   select: set[str] | None = None, ignore: set[str] | None = None,
                   max_examples: int | None = None, untouched: list[tuple[str, bytes]] = ()) -> None:
    root = Path(tempfile.mkdtemp(dir=base))
    if select is None and ignore is None:
        select = EVERY_CHECK
    try:
        WRITTEN[test] = WRITTEN.get(test, 0) + write_delivery(root, files, extras, untouched)
        verdict = check(root, RS, select=select, ignore=ignore, max_examples=max_examples)
        assert isinstance(verdict, list)
        for finding in verdict:
            assert finding.check in CATALOGUE, finding
            assert finding.severity == CATALOGUE[finding.check].severity
            assert isinstance(finding.message, str) and finding.message
            assert finding.line is None or (isinstance(finding.line, int) and finding.line >= 1)
        assert set(verdict.totals) <= set(CATALOGUE)
        kept: dict[str, int] = {}
        for finding in verdict:
            kept[finding.check] = kept.get(finding.check, 0) + 1
        for check_id, n in kept.items():
            assert verdict.totals[check_id] >= n
            if max_examples is not None:
                assert n <= max_examples
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


selections = st.one_of(
    st.just((None, None)),
    st.tuples(st.none(), st.sets(st.sampled_from(sorted(CATALOGUE)), max_size=6)),
    st.tuples(st.sets(st.sampled_from(sorted(CATALOGUE) + list(FAMILIES)), min_size=1, max_size=4), st.none()),
)


def _expand(ids: set[str] | None) -> set[str] | None:
    if ids is None:
        return None
    out = set()
    for i in ids:
        out |= {c.id for c in CATALOGUE.values() if c.family == i} if i in FAMILIES else {i}
    return out


# --------------------------------------------------------------------------- the fuzz tests

@fuzz_settings("test_fuzz_mutated_golden")
@given(st.lists(st.tuples(st.sampled_from(GOLDEN_NAMES) | names, mutated_golden()), min_size=FILES, max_size=FILES),
       st.sets(st.sampled_from(GOLDEN_NAMES), max_size=6))
def test_fuzz_mutated_golden(base, files, untouched):
    """Golden files mutated, most under golden names, beside a few untouched golden files (not
    counted) so that the checks across files have something to compare with."""
    check_delivery(base, files, "test_fuzz_mutated_golden",
                   untouched=[(rel, GOLDEN[rel]) for rel in sorted(untouched)])


@fuzz_settings("test_fuzz_random_content")
@given(st.lists(st.tuples(names, contents), min_size=FILES, max_size=FILES), selections,
       st.sampled_from([None, None, 0, 1, 3]))
def test_fuzz_random_content(base, files, selection, max_examples):
    select, ignore = selection
    check_delivery(base, files, "test_fuzz_random_content", select=_expand(select), ignore=ignore,
                   max_examples=max_examples)


@fuzz_settings("test_fuzz_random_csv")
@given(st.lists(st.tuples(st.sampled_from(GOLDEN_NAMES) | names, random_csv()), min_size=FILES, max_size=FILES))
def test_fuzz_random_csv(base, files):
    check_delivery(base, files, "test_fuzz_random_csv")


@fuzz_settings("test_fuzz_names_and_entries")
@given(st.lists(st.tuples(names, st.sampled_from(list(GOLDEN.values())) | mutated_golden() | random_bytes),
                min_size=FILES, max_size=FILES),
       st.lists(st.sampled_from(["dir", "dangling", "loop", "dir_link", "file_link", "empty"]), max_size=3))
def test_fuzz_names_and_entries(base, files, extras):
    check_delivery(base, files, "test_fuzz_names_and_entries", extras=extras)


@st.composite
def huge_file(draw):
    """A golden file with a huge line or field: a detail record of one huge field, a huge quoted
    field with line breaks, a huge line of commas, or one huge line without any terminator."""
    rel = draw(st.sampled_from(GOLDEN_NAMES))
    lines = _lines(GOLDEN[rel])
    size = draw(st.sampled_from([5_000, 70_000, 300_000, 1_200_000]))
    kind = draw(st.sampled_from(["field", "quoted", "commas", "one_line", "many_lines"]))
    if kind == "field":
        lines.insert(1, b"10," + b"A" * size + b",x")
    elif kind == "quoted":
        lines.insert(1, b'10,"' + (b"a\r\nb," * (size // 5)) + b'",x')
    elif kind == "commas":
        lines.insert(1, b"10" + b"," * size)
    elif kind == "one_line":
        return rel, b"10," * (size // 3)
    else:  # many short detail lines: a big body read by the fast path
        detail = lines[1] if len(lines) > 2 else b"10,x"
        lines[1:1] = [detail] * (size // 100)
    return rel, b"\r\n".join(lines)


@fuzz_settings("test_fuzz_huge_lines")
@given(st.lists(huge_file(), min_size=HUGE_FILES, max_size=HUGE_FILES))
def test_fuzz_huge_lines(base, files):
    check_delivery(base, files, "test_fuzz_huge_lines")


def test_fuzz_file_count():
    """The fuzz tests above, when they all ran, checked at least TOTAL_FILES files (the untouched
    golden files beside them not counted)."""
    ran = [t for t in EXAMPLES if t in WRITTEN]
    if len(ran) < len(EXAMPLES):
        pytest.skip(f"only {ran} of the fuzz tests ran")
    counted = sum(WRITTEN[t] for t in EXAMPLES)
    assert counted >= TOTAL_FILES, WRITTEN

