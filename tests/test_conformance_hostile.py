"""The checker on deliveries built to hurt it (issue 13; ../shared/reviews/reliability-campaign.md
section 5, findings H3, H4, H5, M1, L2): links out of the tree, deep folders, huge fields, sparse
files, FIFOs. Each tree is built by the ``hostile`` fixture and each test names the campaign row
it protects. What must hold: nothing outside the tree is read or quoted, no crash, memory
bounded, and a delivery of which nothing was read is not a PASS.

Memory is measured in a child process (its own peak RSS, VmHWM in /proc/self/status): the
import of the checker (Polars, NumPy) alone takes about 100 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emrr import cli
from emrr.conformance import checker
from emrr.conformance.checker import MAX_DEPTH, check
from emrr.rules import ruleset as rules
from tests import golden

RULES = rules.load(None)
NAME = "ECOSMIG-001_PXX001_1_20230704060000.csv"  # a name like a report's
SECRET = "root:x:0:0:SECRET-OUTSIDE-THE-TREE"
MB = 1 << 20
LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures VmHWM in /proc")


def _flatten(party: Path) -> None:
    """Shorten ``party/d/d/...`` one level at a time down to ``party/d`` (pytest's clean-up of
    old temporary folders, shutil.rmtree, recurses: 1,100 levels stopped it with RecursionError)."""
    d = party / "d"
    while (d / "d").is_dir():
        (d / "d").rename(party / "d-up")
        for child in d.iterdir():
            child.unlink()
        d.rmdir()
        (party / "d-up").rename(d)


@pytest.fixture
def hostile(tmp_path):
    """Builds a hostile tree by name under ``tmp_path/tree`` and returns its root; the files a
    link points at live in ``tmp_path/outside``."""
    outside = tmp_path / "outside"
    (outside / "PXX002").mkdir(parents=True)
    (outside / "secret.csv").write_text(f"{SECRET}\r\n", encoding="utf-8")
    shutil.copy(golden.EXPECTED / "PSUP01" / "ECOSMIG-001_PSUP01_1_20230704060000.csv",
                outside / "PXX002" / "ECOSMIG-001_PSUP01_1_20230704060000.csv")

    def build(kind: str) -> Path:
        root = tmp_path / "tree"
        party = root / "PXX001"
        party.mkdir(parents=True)
        if kind == "link-out":  # 5.01: a report-like name linking to a file outside
            (party / NAME).symlink_to(outside / "secret.csv")
        elif kind == "link-inside":  # a link to a real report of the same tree: not followed either
            shutil.copy(golden.EXPECTED / "PSUP01" / "ECOSMIG-001_PSUP01_1_20230704060000.csv", party / "real.csv")
            (party / NAME).symlink_to(party / "real.csv")
        elif kind == "folder-link":  # 5.02, 5.21: the only delivery folder is a link to one outside
            party.rmdir()
            party.symlink_to(outside / "PXX002", target_is_directory=True)
        elif kind == "links-broken":  # 5.03: dangling, a loop, a link to the tree itself and to its parent
            (party / NAME).symlink_to(party / "nowhere.csv")
            itself = party / "ECOSMIG-001_PXX001_2_20230705060000.csv"
            itself.symlink_to(itself)
            (party / "loop").symlink_to(root, target_is_directory=True)
            (party / "up").symlink_to(root.parent, target_is_directory=True)
        elif kind == "fifo":  # 5.04
            os.mkfifo(party / NAME)
        elif kind == "sparse":  # 5.05/5.06: 2 GB of NUL bytes that take no disk
            with open(party / NAME, "wb") as f:
                f.truncate(2 << 30)
        elif kind == "deep":  # 5.14: a report 1,100 folders deep (os.walk recursed: RecursionError)
            fd = os.open(party, os.O_RDONLY)
            for _ in range(1100):  # one level at a time (pathlib's mkdir(parents=True) recurses)
                os.mkdir("d", dir_fd=fd)
                fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
                os.close(parent)
            os.close(os.open(NAME, os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            os.close(fd)
        elif kind in ("quoted-25mb", "unclosed-25mb"):  # 5.16-5.19: one 25 MB quoted field
            close = '"' if kind == "quoted-25mb" else ""
            with open(party / NAME, "w", encoding="ascii", newline="") as f:
                f.write('00,"' + "a" * (25 * MB) + close + ',x\r\n')
        elif kind == "empty":  # 5.22
            pass
        else:
            raise ValueError(kind)
        return root

    yield build
    party = tmp_path / "tree" / "PXX001"
    if party.is_dir() and not party.is_symlink() and (party / "d").is_dir():
        _flatten(party)


def _run(root: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str, str]:
    """``emrr check ROOT --json --junit`` in this process: (exit, stdout, JSON text, XML text)."""
    js, xml = tmp_path / "v.json", tmp_path / "v.xml"
    status = cli.main(["check", str(root), "--json", str(js), "--junit", str(xml), *extra])
    return status, "", js.read_text(encoding="utf-8"), xml.read_text(encoding="utf-8")


def _peak_in_child(root: Path) -> tuple[int, int]:
    """``emrr check ROOT`` in a child process: (exit status, its peak RSS in MB)."""
    # VmHWM, the peak of the process's own memory: ru_maxrss keeps, across exec, the RSS of the
    # pytest process the child was forked from
    code = ("import re, sys\nfrom emrr import cli\nstatus = cli.main(['check', sys.argv[1]])\n"
            "status_file = open('/proc/self/status').read()\n"
            "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status_file).group(1)) // 1024, file=sys.stderr)\n"
            "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    return done.returncode, int(done.stderr.strip().splitlines()[-1])


def _keys(root: Path) -> list[tuple]:
    return check(root, RULES).tuples()


def test_link_to_a_file_outside_is_reported_not_read(hostile, tmp_path, capsys):
    """protects campaign 5.01 (H5): a report-like link to a file outside the tree is a
    file-unreadable finding; the file's content appears nowhere (terminal, JSON, JUnit)."""
    root = hostile("link-out")
    status, _, js, xml = _run(root, tmp_path)
    printed = capsys.readouterr()
    assert status == 2  # the delivery's only file could not be read: nothing was checked
    assert ("PXX001/" + NAME, None, None, "file-unreadable") in _keys(root)
    assert "symbolic link" in js
    for text in (printed.out, printed.err, js, xml):
        assert "SECRET" not in text


def test_link_to_a_report_inside_the_tree_is_reported_not_followed(hostile):
    """protects campaign H5's fix (the checker reads only the files of the tree, never through a
    link, wherever it points): the link is a finding, the real file is checked as itself."""
    root = hostile("link-inside")
    verdict = check(root, RULES)
    assert ("PXX001/" + NAME, None, None, "file-unreadable") in verdict.tuples()
    assert verdict.files == 2 and verdict.checked == 1


def test_a_delivery_folder_that_is_a_link_is_a_finding_and_not_a_pass(hostile, tmp_path):
    """protects campaign 5.02 and 5.21 (L2): a recipient folder that links outside is reported,
    not walked; a delivery whose only folder it is exits 2, not PASS."""
    root = hostile("folder-link")
    status, _, js, _ = _run(root, tmp_path)
    assert status == 2
    data = json.loads(js)
    assert data["passed"] is False and data["checked"] == 0
    assert [(f["file"], f["check"]) for f in data["findings"]] == [("PXX001", "file-unreadable")]


def test_broken_links_and_loops_are_findings(hostile):
    """protects campaign 5.03: a dangling link, a link to itself, links to the tree and to its
    parent: findings for the report-like names, no folder link followed, no crash."""
    root = hostile("links-broken")
    keys = _keys(root)
    assert ("PXX001/" + NAME, None, None, "file-unreadable") in keys
    assert ("PXX001/ECOSMIG-001_PXX001_2_20230705060000.csv", None, None, "file-unreadable") in keys
    assert {("PXX001/loop", None, None, "file-unreadable"), ("PXX001/up", None, None, "file-unreadable")} <= set(keys)
    assert not any(k[0].startswith(("PXX001/loop/", "PXX001/up/")) for k in keys)


def test_a_fifo_is_not_opened(hostile):
    """protects campaign 5.04: a FIFO named like a report is reported, never opened (it would block)."""
    root = hostile("fifo")
    started = time.perf_counter()
    assert _keys(root) == [("PXX001/" + NAME, None, None, "file-unreadable")]
    assert time.perf_counter() - started < 30


def test_deep_folders_are_a_finding_not_a_crash(hostile, tmp_path):
    """protects campaign 5.14 (H4): 1,100 nested folders (os.walk's recursion crashed at about
    1,000, exit 1 with no JSON): a finding at the first folder below MAX_DEPTH, the JSON written."""
    root = hostile("deep")
    status, _, js, _ = _run(root, tmp_path)
    too_deep = "PXX001/" + "/".join(["d"] * MAX_DEPTH)
    assert status == 2  # nothing above the limit to check
    assert [(f["file"], f["check"]) for f in json.loads(js)["findings"]] == [(too_deep, "file-unreadable")]


def test_more_entries_than_the_limit_stop_in_one_line(hostile, monkeypatch, capsys):
    """protects the bound on the walk (campaign 5.12, H4): more files and folders than
    MAX_ENTRIES is one line and exit 2, not a verdict on part of the delivery."""
    root = hostile("links-broken")
    monkeypatch.setattr(checker, "MAX_ENTRIES", 3)
    assert cli.main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert "more than 3 files and folders" in err and len(err.strip().splitlines()) == 1


def test_an_empty_directory_is_not_a_pass(hostile, tmp_path):
    """protects campaign 5.22 (L2): nothing to check is exit 2, the JSON does not pass and the
    JUnit XML holds a nothing-checked case in error."""
    status, _, js, xml = _run(hostile("empty"), tmp_path)
    assert status == 2 and json.loads(js)["passed"] is False
    assert '<testcase name="nothing-checked"' in xml and "<error " in xml  # JUnit alone does not pass either


@LINUX_PROC
def test_a_sparse_file_is_read_no_further_than_its_first_nul(hostile):
    """protects campaign 5.05/5.06 (M1): a 2 GB sparse file (all NUL) took 2.1 GB and 12 s; it
    is read to the end of its first chunk (16 MiB), reported binary once."""
    root = hostile("sparse")
    assert _keys(root) == [("PXX001/" + NAME, 1, None, "encoding")]
    status, peak = _peak_in_child(root)
    assert status == 1 and peak < 500, peak


@LINUX_PROC
@pytest.mark.parametrize("kind", ["quoted-25mb", "unclosed-25mb"])
def test_a_25_mb_quoted_field_in_bounded_memory(hostile, kind):
    """protects campaign 5.16-5.19 (H3): a 25 MB quoted field, closed or not, took 3.2 GB (the
    strict RFC 4180 re-read backtracked, about 130 bytes a byte); now about 250 MB, the import
    included (limit 600 MB)."""
    root = hostile(kind)
    status, peak = _peak_in_child(root)
    assert status == 1 and peak < 600, peak


def test_a_folder_swapped_for_a_link_during_the_check_is_not_followed(hostile):
    """protects campaign H5 against a race: the checker opens every file and folder one name
    at a time from the root (reading.open_within), so a recipient folder replaced by a link to
    a folder outside after the walk listed it is reported, never read through."""
    from emrr.conformance.findings import Collector, enabled_checks
    from emrr.conformance.reading import read_bytes

    root = hostile("folder-link")  # PXX001 is a link to outside/PXX002, which holds a report
    out = Collector(enabled_checks(None, (), False), None)
    assert read_bytes(root, "PXX001/ECOSMIG-001_PSUP01_1_20230704060000.csv", "shown", out) is None
    verdict = out.verdict()
    assert verdict.tuples() == [("shown", None, None, "file-unreadable")] and "symbolic link" in verdict[0].message
