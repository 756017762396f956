"""Crash safety of ``emrr report``: a run stopped at any point (kill -9) and resumed with
--resume gives exactly the files of an uninterrupted run: no file twice, no sequence number
skipped or reused, no record lost (the issue's acceptance criterion; rules/engine.py module
docstring: "a run stopped at any point (kill -9) resumes with --resume to exactly the files of an
uninterrupted run").

The demo scenario's event log is reported once without interruption (the reference). Each test
then starts ``python -m emrr report`` as a subprocess, sends SIGKILL at a kill point (a number of
lines in OUT/.emrr-journal.jsonl, a random time, or, through a small driver that wraps the
engine's os.replace, exactly before or after the rename of the N-th file it writes), resumes with
--resume, and compares the whole tree with the reference.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JOURNAL = ".emrr-journal.jsonl"
MANIFEST = "run-manifest.json"
RUN_FILES = {".emrr-state.json", JOURNAL, MANIFEST, "summary.html"}  # the page emrr report ends with (docs/pictures.md)

# Runs the CLI with the engine's os.replace wrapped: SIGKILL just before ("before-rename") or
# just after ("after-rename") the N-th rename, i.e. with the N-th file written under its
# temporary name only, or renamed but not yet journalled. Rename 1 is the run state, then one
# per report file, then the run manifest.
DRIVER = r"""
import os, signal, sys
from emrr.rules import engine
phase, n = sys.argv[1], int(sys.argv[2])
real = os.replace
calls = 0
class _Os:
    def __getattr__(self, name):
        return getattr(os, name)
    @staticmethod
    def replace(src, dst):
        global calls
        calls += 1
        if calls == n and phase == "before-rename":
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)
        if calls == n and phase == "after-rename":
            os.kill(os.getpid(), signal.SIGKILL)
engine.os = _Os()
from emrr.cli import main
raise SystemExit(main(sys.argv[3:]))
"""


def _args(log: Path, out: Path, resume: bool = False) -> list[str]:
    return ["report", "--events", str(log), "--out", str(out), "--no-progress"] + (["--resume"] if resume else [])


def _start(log: Path, out: Path, resume: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emrr", *_args(log, out, resume)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _journal_lines(out: Path) -> int:
    try:
        return (out / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run(log: Path, out: Path, resume: bool = False) -> None:
    p = subprocess.run([sys.executable, "-m", "emrr", *_args(log, out, resume)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr


def _kill_at_lines(log: Path, out: Path, lines: int, resume: bool = False) -> int | None:
    """Start a run and SIGKILL it once its journal has ``lines`` lines; the lines at the kill, or
    None when the run finished first."""
    p = _start(log, out, resume)
    try:
        while p.poll() is None:
            if _journal_lines(out) >= lines:
                p.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005)
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode == 0:
        return None
    assert p.returncode == -signal.SIGKILL, p.stderr.read().decode() if p.stderr else p.returncode
    return _journal_lines(out)


def _kill_after(log: Path, out: Path, seconds: float) -> bool:
    """Start a run and SIGKILL it after ``seconds``; False when it finished first."""
    p = _start(log, out)
    try:
        p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=120)
        return True
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, p.stderr.read().decode()
    return False


def _kill_in_write(log: Path, out: Path, phase: str, n: int) -> None:
    p = subprocess.run([sys.executable, "-c", DRIVER, phase, str(n), *_args(log, out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)


def _tree(out: Path) -> dict[str, bytes]:
    """Every file under OUT except the run's own state and journal (which are not outputs)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (".emrr-state.json", JOURNAL)}


def _csvs(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in _tree(out).items() if k.endswith(".csv")}


@pytest.fixture(scope="module")
def demo_log(simulated) -> Path:
    return simulated("demo").path


@pytest.fixture(scope="module")
def reference(demo_log, tmp_path_factory) -> dict:
    """An uninterrupted run of the demo log: its CSV files, manifest entries and wall time."""
    out = tmp_path_factory.mktemp("reference") / "out"
    started = time.perf_counter()
    _run(demo_log, out)
    seconds = time.perf_counter() - started
    csvs = _csvs(out)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert len(csvs) > 1000, "the demo should give enough files to kill a run in the middle"
    return {"csvs": csvs, "files": manifest["files"], "seconds": seconds, "lines": _journal_lines(out)}


def _assert_partial_is_prefix(out: Path, reference: dict) -> None:
    """After a kill, every report file under its final name is whole and equal to the reference's
    (files are written under a temporary name and renamed)."""
    for name, content in _csvs(out).items():
        assert name in reference["csvs"], f"{name}: a file the uninterrupted run does not write"
        assert content == reference["csvs"][name], f"{name}: differs from the uninterrupted run's"


def _assert_same_as_reference(out: Path, reference: dict) -> None:
    csvs = _csvs(out)
    assert sorted(csvs) == sorted(reference["csvs"]), (
        f"files missing: {sorted(set(reference['csvs']) - set(csvs))[:5]}, "
        f"extra: {sorted(set(csvs) - set(reference['csvs']))[:5]}")
    differing = [name for name in csvs if csvs[name] != reference["csvs"][name]]
    assert not differing, f"{len(differing)} files differ, e.g. {differing[:5]}"
    leftovers = [p.relative_to(out).as_posix() for p in out.rglob(".*.tmp")]
    assert not leftovers, f"temporary files left: {leftovers[:5]}"
    others = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - set(csvs) - RUN_FILES
    assert not others, f"unexpected files: {sorted(others)[:5]}"
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["files"] == reference["files"]


# --------------------------------------------------------------------------- kill points


@pytest.mark.parametrize("lines", [1, 200, 800])
def test_kill_at_journal_line_then_resume(demo_log, reference, tmp_path, lines):
    """Issue acceptance: kill -9 once the journal has 1 / 200 / 800 lines, then --resume: the same
    CSV files, byte for byte, as the uninterrupted run; no temporary file left; the run manifest
    lists the same files."""
    out = tmp_path / "out"
    at = _kill_at_lines(demo_log, out, lines)
    if at is None:
        pytest.skip(f"the run finished before its journal reached {lines} lines")
    _assert_partial_is_prefix(out, reference)
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)


def test_kill_at_random_time_then_resume(demo_log, reference, tmp_path):
    """Issue acceptance: kill -9 at a random moment of the run (from start-up to its end), then
    --resume: the same files as the uninterrupted run."""
    seed = random.SystemRandom().randrange(2**32)
    delay = random.Random(seed).uniform(0.05, reference["seconds"])
    out = tmp_path / "out"
    if not _kill_after(demo_log, out, delay):
        pytest.skip(f"the run finished within {delay:.3f} s (seed {seed})")
    _assert_partial_is_prefix(out, reference)
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)


def test_killed_twice_then_resumed_once(demo_log, reference, tmp_path):
    """Issue acceptance: kill -9, start again with --resume and kill -9 again, then --resume to the
    end: the same files as the uninterrupted run (no file twice, no sequence number reused)."""
    out = tmp_path / "out"
    first = _kill_at_lines(demo_log, out, 300)
    if first is None:
        pytest.skip("the first run finished before its journal reached 300 lines")
    second = _kill_at_lines(demo_log, out, 900, resume=True)
    if second is None:
        pytest.skip("the resumed run finished before its journal reached 900 lines")
    assert first <= second
    _assert_partial_is_prefix(out, reference)
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)
    entries = [json.loads(line) for line in (out / JOURNAL).read_text(encoding="utf-8").splitlines()]
    paths = [e["path"] for e in entries]
    assert len(paths) == len(set(paths)) == len(reference["csvs"]), "a file journalled twice or not at all"


def _in_write_points():
    # rename 1: the run state; 2 .. files+1: the report files; files+2: the run manifest.
    points = [
        pytest.param("before-rename", 1, id="state-file-written-not-renamed"),
        pytest.param("after-rename", 1, id="state-file-renamed"),
        pytest.param("before-rename", 2, id="first-file-not-renamed"),
        pytest.param("after-rename", 2, id="first-file-renamed-not-journalled"),
        pytest.param("before-rename", 700, id="file-699-not-renamed"),
        pytest.param("after-rename", 700, id="file-699-renamed-not-journalled"),
        pytest.param("before-rename", -1, id="manifest-not-renamed"),
        pytest.param("after-rename", -2, id="last-file-renamed-not-journalled"),
    ]
    return points


@pytest.mark.parametrize("phase, n", _in_write_points())
def test_kill_inside_a_file_write_then_resume(demo_log, reference, tmp_path, phase, n):
    """"A run can be stopped at any point": the kill points inside one file's write that polling
    cannot aim at: before the temporary file is renamed (a .tmp left behind), and after the rename
    but before the journal line (a file on disk that the journal lacks). --resume gives the
    reference's files."""
    total = len(reference["csvs"]) + 2  # state + files + manifest
    n = n if n > 0 else total + 1 + n
    out = tmp_path / "out"
    _kill_in_write(demo_log, out, phase, n)
    _assert_partial_is_prefix(out, reference)
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)


def test_torn_last_journal_line_then_killed_again(demo_log, reference, tmp_path):
    """rules/engine.py _load_journal ("a line cut short by a kill: that file is written again"):
    with the journal's last line cut in half, --resume, another kill and a last --resume still give
    the reference's files."""
    out = tmp_path / "out"
    if _kill_at_lines(demo_log, out, 250) is None:
        pytest.skip("the run finished before its journal reached 250 lines")
    journal = out / JOURNAL
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[: last + (len(data) - last) // 2])
    if _kill_at_lines(demo_log, out, 700, resume=True) is None:
        pytest.skip("the resumed run finished before its journal reached 700 lines")
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)


def test_resume_of_a_finished_run_changes_nothing(demo_log, reference, tmp_path):
    """--resume of a run that had finished writes no file again and gives the same tree."""
    out = tmp_path / "out"
    _run(demo_log, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")}
    _run(demo_log, out, resume=True)
    _assert_same_as_reference(out, reference)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")} == before
