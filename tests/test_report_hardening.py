"""``emrr report`` on hostile input and a hostile system (issue 13; the reliability campaign,
../shared/reviews/reliability-campaign.md): nothing written outside --out (H1), no file written
twice in a run (H2), one run at a time in a folder (M4), a full disk one line that --resume
completes (M5), --resume checking each journaled file's SHA-256 (M6), damaged bookkeeping one line
or skipped with a count (L4), the user's own .tmp files kept (L5), periods the calendar cannot hold
refused (L8, M7), the wall time from the start (I3), the manifest's log path absolute (I4).

Fast: the golden event log (conformance/logs/reference.yaml), and the demo log only where a run
must last long enough to be overtaken.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emrr.errors import UserError
from emrr.rules import engine, ruleset
from tests.test_report_bad_input import assert_user_error, report, snapshot

ROOT = Path(__file__).resolve().parent.parent


def _tree(out: Path) -> dict[str, bytes]:
    """The outputs: every file under OUT but the run's journal and state."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (engine.STATE, engine.JOURNAL)}


@pytest.fixture(scope="module")
def reference(golden_log, tmp_path_factory) -> dict[str, bytes]:
    """An uninterrupted run of the golden log."""
    out = tmp_path_factory.mktemp("reference") / "out"
    status, _, stderr = report(golden_log, out)
    assert status == 0, stderr
    return _tree(out)


@pytest.fixture
def finished(golden_log, tmp_path) -> Path:
    out = tmp_path / "out"
    status, _, stderr = report(golden_log, out)
    assert status == 0, stderr
    return out


# --------------------------------------------------------------------------- containment (H1, H2)


def test_a_path_out_of_the_folder_is_refused_at_write_time(golden_log, tmp_path):
    """Campaign H1: a ruleset that escaped the load's check (made in code here) cannot write
    outside --out: one error naming file_name.pattern, and the folder around --out unchanged."""
    rs = dataclasses.replace(ruleset.load(), file_pattern="../{report_id}_{recipient}_{sequence}_{created:%Y}.csv")
    (tmp_path / "a").mkdir()
    with pytest.raises(UserError, match="at file_name.pattern: .*holds '/'"):
        engine.report(golden_log, tmp_path / "a" / "out", rs, progress=False)
    assert snapshot(tmp_path / "a") == {}


def test_a_link_out_of_the_folder_is_refused_at_write_time(golden_log, finished, tmp_path):
    """Campaign H1, second defence: a recipient folder replaced by a link to elsewhere; --resume
    resolves each path under --out and refuses rather than write through the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    recipient = sorted(p for p in finished.iterdir() if p.is_dir())[0]
    shutil.rmtree(recipient)
    recipient.symlink_to(elsewhere, target_is_directory=True)
    status, _, stderr = report(golden_log, finished, "--resume")
    assert_user_error(status, stderr, "is not a path inside the output folder", "which leads outside it")
    assert list(elsewhere.iterdir()) == []


def test_a_path_written_twice_is_refused_naming_both_runs(golden_log, tmp_path):
    """Campaign H2: names that collide (here the sequence number left out, made in code past the
    load's check) overwrote files silently with exit 0. The engine refuses the second write,
    naming both runs, and a fresh run leaves nothing."""
    rs = dataclasses.replace(ruleset.load(), file_pattern="{report_id}_{recipient}_1_{created:%Y}.csv")
    (tmp_path / "a").mkdir()
    with pytest.raises(UserError) as caught:
        engine.report(golden_log, tmp_path / "a" / "out", rs, progress=False)
    line = str(caught.value)
    assert "two files of this run have the same name" in line
    assert "sequence number 1 created" in line and "sequence number 2 created" in line, line
    assert snapshot(tmp_path / "a") == {}


# --------------------------------------------------------------------------- one run at a time (M4)


def test_a_locked_folder_is_refused_and_left_alone(golden_log, finished):
    """Campaign 2.03/2.04 (M4): while another run holds --out, a fresh run and a --resume are each
    refused in one line and change nothing."""
    before = snapshot(finished)
    fd = os.open(finished, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in ((), ("--resume",)):
            status, _, stderr = report(golden_log, finished, *extra)
            assert_user_error(status, stderr, "another emrr report run is writing into this directory")
            assert snapshot(finished) == before
    finally:
        os.close(fd)
    status, _, stderr = report(golden_log, finished, "--resume")  # released: it runs
    assert status == 0, stderr


def test_a_second_run_during_the_first_is_refused_and_the_first_unharmed(simulated, tmp_path):
    """Campaign 2.03 (M4): a --resume started into a running run's folder was accepted and the
    journal ended with 18,025 lines for 10,375 files. Now it is refused, and the first run ends
    with exit 0 and each file journaled once."""
    log = simulated("demo").path
    out = tmp_path / "out"
    args = ["report", "--events", str(log), "--out", str(out), "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "emrr", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        journal = out / engine.JOURNAL
        while first.poll() is None and not (journal.is_file() and journal.stat().st_size > 0):
            time.sleep(0.005)
        status, _, stderr = report(log, out, "--resume")
        running = first.poll() is None
        first.wait(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, first.stderr.read()
    if not running:
        pytest.skip("the first run ended before the second started")
    assert_user_error(status, stderr, "another emrr report run is writing into this directory")
    paths = [json.loads(line)["path"] for line in journal.read_text(encoding="utf-8").splitlines()]
    assert len(paths) == len(set(paths)) == len(list(out.rglob("*.csv")))


# --------------------------------------------------------------------------- --resume (M6, L4, L5)


def test_resume_rewrites_a_journaled_file_that_differs(golden_log, finished, reference):
    """Campaign 2.13 (M6): a journaled file emptied (what a power cut can leave) stayed empty and
    the manifest claimed the reference's SHA-256. --resume compares size and SHA-256 and rewrites
    it; a file of the right size with one byte changed too."""
    csvs = sorted(p for p in finished.rglob("*.csv"))
    csvs[0].write_bytes(b"")
    data = bytearray(csvs[1].read_bytes())
    data[5] ^= 1
    csvs[1].write_bytes(bytes(data))
    (finished / engine.MANIFEST).unlink()
    status, stdout, stderr = report(golden_log, finished, "--resume")
    assert status == 0, stderr
    assert _tree(finished) == reference
    assert f"({len(csvs) - 2:,} already written before --resume)" in stdout


def test_resume_skips_damaged_journal_lines_with_a_count(golden_log, finished, reference, tmp_path):
    """Campaign 2.14 and 2.16 (L4): a journal line that is JSON but not an object, bytes that are
    not UTF-8, and a line whose path leads out of the folder gave tracebacks (or could be
    trusted); each is skipped and counted, its file is written again, nothing is written outside."""
    journal = finished / engine.JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    escape = json.dumps({**json.loads(lines[2]), "path": "../escaped.csv"}).encode() + b"\n"
    journal.write_bytes(b"[1, 2]\n" + b"\xff\xfe\x00garbage\n" + escape + b"".join(lines[3:]))
    (finished / engine.MANIFEST).unlink()
    for name in lines[:3]:
        (finished / json.loads(name)["path"]).unlink()
    status, stdout, stderr = report(golden_log, finished, "--resume")
    assert status == 0, stderr
    assert "note: 3 unreadable line(s) of .emrr-journal.jsonl skipped" in stdout
    assert _tree(finished) == reference
    assert not (tmp_path / "escaped.csv").exists()


@pytest.mark.parametrize("state", [b"[]", b"\xff\xfe{}", b"{\"format\": "], ids=["a-list", "not-utf8", "cut-short"])
def test_a_damaged_state_is_one_line(golden_log, finished, state):
    """Campaign 2.15 (L4): a state file holding [] gave an AttributeError traceback."""
    (finished / engine.STATE).write_bytes(state)
    before = snapshot(finished)
    status, _, stderr = report(golden_log, finished, "--resume")
    assert_user_error(status, stderr, ".emrr-state.json is not readable JSON")
    assert snapshot(finished) == before


def test_resume_removes_only_its_own_temporary_files(golden_log, finished):
    """Campaign 2.12 (L5): --resume deleted every .*.tmp under OUT, the user's own included. It
    removes only the ones it names (.NAME.tmp-emrr)."""
    recipient = sorted(p for p in finished.iterdir() if p.is_dir())[0]
    mine = [finished / ".my-draft.tmp", recipient / ".todo.tmp"]
    for path in mine:
        path.write_text("mine\n", encoding="utf-8")
    ours = recipient / f".ECOSMIG-001_X.csv{engine.TMP_SUFFIX}"
    ours.write_bytes(b"half a fi")
    status, _, stderr = report(golden_log, finished, "--resume")
    assert status == 0, stderr
    assert all(path.read_text(encoding="utf-8") == "mine\n" for path in mine)
    assert not ours.exists()


# --------------------------------------------------------------------------- a full disk (M5)


class _FullDisk:
    """``open`` for the engine's module: the ``writes``-th file opened for writing ("wb") takes
    half its content, then the system says ENOSPC (as a 20 MB tmpfs did in campaign 1.21)."""

    def __init__(self, writes: int):
        self.left = writes

    def __call__(self, file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        if mode == "wb":
            self.left -= 1
            if self.left == 0:
                return _Failing(handle)
        return handle


class _Failing:
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("at", ["state", "file", "manifest"])
def test_a_full_disk_is_one_line_and_resume_completes(golden_log, reference, tmp_path, monkeypatch, at):
    """Campaign 1.21 and 1.23 (M5): a full disk mid-run or at the manifest gave a raw traceback
    and left a half-written .tmp. It is one line saying to free space and --resume, no temporary
    file is left, nothing is shown as complete, and --resume then gives the uninterrupted run's
    files."""
    files = sum(1 for name in reference if name.endswith(".csv"))
    writes = {"state": 1, "file": 1 + files // 2, "manifest": files + 2}[at]
    out = tmp_path / "out"
    monkeypatch.setattr(engine, "open", _FullDisk(writes), raising=False)
    status, _, stderr = report(golden_log, out)
    assert_user_error(status, stderr, "No space left on device", "run again with --resume")
    assert not list(out.rglob(f"*{engine.TMP_SUFFIX}")), "a temporary file was left"
    assert not (out / engine.MANIFEST).exists()
    monkeypatch.undo()
    status, _, stderr = report(golden_log, out, "--resume")
    assert status == 0, stderr
    assert _tree(out) == reference


# --------------------------------------------------------------------------- periods (L8, M7)


@pytest.mark.parametrize("start, end", [("1969-12-01T00:00:00Z", "1970-02-01T00:00:00Z"),
                                        ("9999-11-01T00:00:00Z", "9999-12-01T00:00:00Z")],
                         ids=["before-1970", "year-9999"])
def test_a_period_the_files_cannot_hold_is_refused(golden_log, tmp_path, start, end):
    """Campaign L8 (pre-1970: 18,167 errors from the engine's own checker) and M7 (year 9999:
    OverflowError): a log's period outside 1970 to 2999 is one line, nothing written."""
    log = tmp_path / "log"
    shutil.copytree(golden_log, log)
    manifest = json.loads((log / "manifest.json").read_text(encoding="utf-8"))
    manifest["period"] = {"start": start, "end": end}
    (log / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    status, _, stderr = report(log, tmp_path / "out")
    assert_user_error(status, stderr, "is outside the years report files can hold")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the summary and manifest (I3, I4)


def test_wall_time_counts_opening_the_log(golden_log, tmp_path, monkeypatch):
    """Campaign I3: the summary's wall time left out opening the log and building the runs."""
    real = engine.EventLog

    class Slow:
        @staticmethod
        def open(root):
            time.sleep(0.3)
            return real.open(root)

    monkeypatch.setattr(engine, "EventLog", Slow)
    summary = engine.report(golden_log, tmp_path / "out", ruleset.load(), progress=False)
    assert summary.wall_seconds >= 0.3


def test_manifest_names_the_log_by_its_absolute_path(golden_log, tmp_path, monkeypatch):
    """Campaign I4: the manifest recorded the log's path as typed; the same log from another
    working directory gave another manifest."""
    monkeypatch.chdir(golden_log.parent)
    engine.report(Path(golden_log.name), tmp_path / "out", ruleset.load(), progress=False)
    manifest = json.loads((tmp_path / "out" / engine.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["event_log"] == str(golden_log.resolve())


def test_events_no_run_of_the_period_carries_are_counted_not_silent(tmp_path):
    """Campaign 3.44: a log whose runs could not carry its events gave no file and said nothing.
    The golden log cut at 2023-07-21: ECOSMIG-006 (monthly, the 1st at 06:00) runs once in the
    period, on 1 July, for June; the golden log's three installs (20, 21 and 22 July) are in no
    file, and the summary says so. Every success and failure (3 to 12 July) has a run."""
    from emrr.conformance import handlog
    from emrr.rules import engine, ruleset

    text = (Path(handlog.__file__).parent / "logs" / "reference.yaml").read_text(encoding="utf-8")
    cut = text.replace('end: "2023-08-03T00:00:00Z"', 'end: "2023-07-21T00:00:00Z"', 1)
    assert cut != text
    log = handlog.build(handlog.parse(cut, "reference.yaml (cut)"), tmp_path / "log")
    summary = engine.report(log, tmp_path / "out", ruleset.load(None), progress=False)
    assert summary.beyond_last_run == {"ECOSMIG-006": 3}
    assert "ECOSMIG-006: 3 event(s) are in no file" in summary.render()
    assert summary.as_dict()["beyond_last_run"] == {"ECOSMIG-006": 3}
