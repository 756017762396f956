"""The pytest plugin (conformance/pytest_plugin.py): ``pytest --emrr-dir DIR`` runs one test per
check of the catalogue in anyone's pytest run; without ``--emrr-dir`` it does nothing."""

from __future__ import annotations

import shutil
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import emrr.conformance.checker  # noqa: F401 - imported here, kept by pytester's in-process runs:
import emrr.conformance.groundtruth  # noqa: F401 - a native module (Polars) must not be imported twice
import emrr.rules.engine  # noqa: F401
from emrr.conformance.catalogue import CATALOGUE
from tests.golden import build

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "expected"
A = "PSUP01/ECOSMIG-001_PSUP01_1_20230704060000.csv"
F1 = "PSUP01/ECOSMIG-006_PSUP01_1_20230801060000.csv"
F2 = "PSUP02/ECOSMIG-006_PSUP02_1_20230801060000.csv"
GROUND = sorted(c for c, spec in CATALOGUE.items() if spec.family == "ground-truth")
OPT_IN = sorted(c for c, spec in CATALOGUE.items() if not spec.default)  # late-record: never selected here
# the installed package registers the plugin (pyproject's pytest11 entry point); a checkout that
# was not reinstalled since gets it explicitly
INSTALLED = any(e.name == "emrr" and e.value == "emrr.conformance.pytest_plugin"
                for e in entry_points(group="pytest11"))
LOAD = [] if INSTALLED else ["-p", "emrr.conformance.pytest_plugin"]


@pytest.fixture(scope="module")
def golden_log(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("plugin-log") / "log")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*LOAD, "-p", "no:cacheprovider", *args)


def test_entry_point_is_declared():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["entry-points"]["pytest11"] == {"emrr": "emrr.conformance.pytest_plugin"}


def test_without_emrr_dir_the_plugin_does_nothing(pytester):
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*collected 1 item"])
    assert "emrr::" not in result.stdout.str() and "emrr conformance" not in result.stdout.str()


def test_valid_directory_passes(pytester):
    result = run(pytester, "--emrr-dir", str(GOLDEN), "-v")
    result.assert_outcomes(passed=len(CATALOGUE) - len(GROUND) - len(OPT_IN), skipped=len(GROUND) + len(OPT_IN))
    out = result.stdout.str()
    for check_id in CATALOGUE:
        assert f"emrr::{check_id} " in out
    result.stdout.fnmatch_lines(["PASS: *: 17 files, 22 detail records; 0 error(s), 0 warning(s)"])
    assert result.ret == 0


def test_valid_directory_with_its_event_log_passes_every_check(pytester, golden_log):
    result = run(pytester, "--emrr-dir", str(GOLDEN), "--emrr-events", str(golden_log))
    result.assert_outcomes(passed=len(CATALOGUE) - len(OPT_IN), skipped=len(OPT_IN))


def test_broken_directory_fails_the_checks_that_found_errors(pytester, tmp_path, golden_log):
    root = tmp_path / "reports"
    shutil.copytree(GOLDEN, root)
    lines = (root / A).read_bytes().split(b"\r\n")
    parts = lines[1].split(b",")
    parts[2] = b"13123456789071"  # MPxN: 14 characters
    lines[1] = b",".join(parts)
    (root / A).write_bytes(b"\r\n".join(lines))
    first, second = (root / F1).read_bytes().split(b"\r\n"), (root / F2).read_bytes().split(b"\r\n")
    second.insert(2, first.pop(2))  # a device of PSUP01 delivered to PSUP02
    first[-2], second[-2] = b"99,1,DCC Controlled", b"99,2,DCC Controlled"
    (root / F1).write_bytes(b"\r\n".join(first))
    (root / F2).write_bytes(b"\r\n".join(second))

    result = run(pytester, "--emrr-dir", str(root), "--emrr-events", str(golden_log), "-rf")
    failed = ["field-length", "gt-field-mismatch", "gt-wrong-recipient"]
    result.assert_outcomes(failed=len(failed), passed=len(CATALOGUE) - len(failed) - len(OPT_IN), skipped=len(OPT_IN))
    result.stdout.fnmatch_lines([
        "*field-length: 1 error(s): Field length (EMRR App. A Max Length)",
        f"*{A}:2 [[]MPxN[]]: 14 characters; at most 13 allowed",
        f"*{F2}:3: the ECOSMIG-006 record of Device ID '00-00-00-00-00-00-00-0E'*delivered to PSUP02*",
        "FAIL: *22 detail records; 3 error(s), 0 warning(s)",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED

    result = run(pytester, "--emrr-dir", str(root), "-k", "field-length or gt-wrong-recipient")
    result.assert_outcomes(failed=1, skipped=1)  # no event log: the ground-truth check is skipped


def test_the_suite_runs_beside_a_projects_own_tests(pytester):
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    result = run(pytester, "--emrr-dir", str(GOLDEN), "-m", "emrr", "-q")
    result.assert_outcomes(passed=len(CATALOGUE) - len(GROUND) - len(OPT_IN), skipped=len(GROUND) + len(OPT_IN),
                           deselected=1)


@pytest.mark.parametrize("args, message", [
    (["--emrr-dir", "/no/such/dir"], "--emrr-dir: /no/such/dir: not a directory"),
    (["--emrr-dir", str(GOLDEN), "--emrr-ruleset", "no-such-ruleset"], "unknown ruleset"),
    (["--emrr-dir", str(GOLDEN), "--emrr-events", "/no/such/log"], "--emrr-events: /no/such/log: not a directory"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_an_event_log_that_cannot_be_read_fails_the_checks_with_the_reason(pytester, tmp_path):
    (tmp_path / "log").mkdir()
    result = run(pytester, "--emrr-dir", str(GOLDEN), "--emrr-events", str(tmp_path / "log"), "-k", "bom")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the check could not run: *missing table*"])


def test_a_check_that_cannot_run_is_one_failure_not_one_per_check(pytester, tmp_path):
    """protects campaign I1 (6.04, 6.05): when the check cannot run (here the event log has no
    tables), the first emrr item fails saying why and every other is skipped, instead of each
    check failing with the same reason."""
    (tmp_path / "log").mkdir()
    result = run(pytester, "--emrr-dir", str(GOLDEN), "--emrr-events", str(tmp_path / "log"))
    result.assert_outcomes(failed=1, skipped=len(CATALOGUE) - 1)
    assert result.stdout.str().count("the check could not run") >= 1
    result.stdout.fnmatch_lines(["*NOTHING CHECKED*missing table*"])


def test_a_crash_of_the_checker_is_one_failure_naming_it(pytester, monkeypatch):
    """protects campaign I1: an unexpected exception in the checker (H4's RecursionError was
    one) is one failure naming the exception as a bug, the other checks skipped."""
    def crash(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(emrr.conformance.checker, "check", crash)
    result = run(pytester, "--emrr-dir", str(GOLDEN))
    result.assert_outcomes(failed=1, skipped=len(CATALOGUE) - 1)
    result.stdout.fnmatch_lines(["*the check could not run: RecursionError: maximum recursion depth exceeded*bug*"])


def test_an_empty_directory_is_not_a_pass(pytester, tmp_path):
    """protects campaign L2 under the plugin: a directory with no report file fails once
    ("nothing was checked"), as emrr check exits 2."""
    result = run(pytester, "--emrr-dir", str(tmp_path))
    result.assert_outcomes(failed=1, skipped=len(CATALOGUE) - 1)
    result.stdout.fnmatch_lines(["*no report file found*nothing was checked*"])
