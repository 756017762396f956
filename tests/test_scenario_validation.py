"""Scenario input validation: every bad input is one line on stderr, exit status 2, no traceback.

Protects the issue's requirement: an unreadable file, invalid YAML, a value of the wrong type,
shares that do not add up, an unknown supplier in a transition mix, a date range that ends
before it starts (and the other cases below) each give ``emrr: error: FILE[:LINE]: [at PATH: ]
what was expected``, exit status 2, no traceback, and no output directory, whole or half-written.
YAML is read safely (a ``!!python`` tag is invalid YAML, never executed) and names that become
file names are validated.

Most cases run ``emrr.cli.main`` in-process (fast); the ones in ``SUBPROCESS_CASES`` also run
as a real ``python -m emrr`` subprocess, to check the exit status and stderr as a user sees them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emrr import cli
from emrr.errors import UserError
from emrr.sim import regime, scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DEMO = SCENARIOS / "demo.yaml"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def demo_text() -> str:
    """The text of scenarios/demo.yaml, the base every bad case mutates."""
    return DEMO.read_text(encoding="utf-8")


def mutate(text: str, edit: Callable[[dict], None]) -> str:
    """Parse ``text``, let ``edit`` change the dict in place, dump it back as block YAML."""
    data = yaml.safe_load(text)
    edit(data)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def replace(text: str, old: str, new: str) -> str:
    """Text replacement (for broken YAML); ``old`` must occur exactly once."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in demo.yaml"
    return text.replace(old, new)


def write(tmp_path: Path, text: str | bytes, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def leftovers(out: Path) -> list[str]:
    """Half-written siblings of ``out`` (``.out.partial-*``, ``.out.old-*``)."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """``emrr.cli.main`` in-process; any exception escaping it would be a traceback for the user."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse --help/--version only; not expected here
        status = exc.code
    except BaseException as exc:  # pragma: no cover - a failure is the point
        pytest.fail(f"emrr.cli.main raised {type(exc).__name__}: {exc} (a traceback for the user)")
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_subprocess(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "emrr", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, proc.stdout, proc.stderr


# --------------------------------------------------------------------------- bad cases

FILE, YAML, CONTENT, ARG = "file", "yaml", "content", "arg"


@dataclass
class Case:
    """One bad input.

    ``make(tmp_path, demo_text)`` returns the scenario path (and may create files);
    ``kind``: FILE (the file itself is the problem: name it), YAML (syntax: name file and
    line), CONTENT (name file, line and YAML path ``at``), ARG (a command-line argument);
    ``expect``: a fragment of the message saying what was expected / what is wrong;
    ``line_has``: text the reported line of the file must contain (the line is the right one).
    """

    id: str
    kind: str
    make: Callable[[Path, str], Path]
    expect: str
    at: str | None = None
    line_has: str | None = None
    args: tuple = ()


def _edit(fn: Callable[[dict], None]) -> Callable[[Path, str], Path]:
    return lambda tmp, text: write(tmp, mutate(text, fn))


def _text(old: str, new: str) -> Callable[[Path, str], Path]:
    return lambda tmp, text: write(tmp, replace(text, old, new))


def _set(*path_and_value) -> Callable[[Path, str], Path]:
    *path, value = path_and_value

    def fn(d: dict) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return _edit(fn)


def _unreadable(tmp: Path, text: str) -> Path:
    path = write(tmp, text)
    path.chmod(0)
    if os.access(path, os.R_OK):
        path.chmod(0o644)
        pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not make the file unreadable")
    return path


def _python_tag(tmp: Path, text: str) -> Path:
    pwned = tmp / "pwned"
    return write(tmp, replace(text, "seed: 20230701", f'seed: !!python/object/apply:os.system ["touch {pwned}"]'))


def _alias_bomb(tmp: Path, text: str) -> Path:
    """A "billion laughs" document: 9**9 leaves once expanded; must be rejected quickly."""
    lines = ["lol0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return write(tmp, text + "\n".join(lines) + "\n")


CASES = [
    # ---- the file itself
    Case("missing-file", FILE, lambda tmp, text: tmp / "no-such.yaml", "file not found"),
    Case("directory-not-file", FILE, lambda tmp, text: (tmp / "adir.yaml").mkdir() or tmp / "adir.yaml",
         "is a directory"),
    Case("unreadable-file", FILE, _unreadable, "cannot read"),
    Case("not-utf8", FILE, lambda tmp, text: write(tmp, text.encode() + b"\n# caf\xe9 \xff\xfe\n"), "not UTF-8"),
    Case("empty-file", FILE, lambda tmp, text: write(tmp, ""), "expected a mapping"),
    # ---- YAML syntax
    Case("invalid-yaml-syntax", YAML, _text("  start: 2023-07-01\n", "  start: [2023-07-01\n"), "invalid YAML"),
    Case("python-object-tag", YAML, _python_tag, "invalid YAML"),
    Case("bad-explicit-int-tag", YAML, _text("seed: 20230701", "seed: !!int twenty"), "invalid YAML"),
    Case("bad-explicit-bool-tag", YAML, _text("seed: 20230701", "seed: !!bool perhaps"), "invalid YAML"),
    Case("integer-of-5000-digits", YAML, _text("seed: 20230701", "seed: " + "9" * 5000), "invalid YAML"),
    # the parser gives up (RecursionError) without a position, so only the file is named
    Case("nested-too-deeply", FILE, lambda tmp, text: write(tmp, text + "deep: " + "[" * 20000 + "]" * 20000 + "\n"),
         "exceeded maximum nesting depth"),
    Case("duplicate-key", CONTENT, _text("name: demo\n", "name: demo\nname: other\n"), "once",
         at="name", line_has="name: other"),
    # ---- structure and types (schema)
    Case("top-level-list", CONTENT, lambda tmp, text: write(tmp, "- name: demo\n- seed: 1\n"),
         "expected a mapping", at="(top level)", line_has="name: demo"),
    Case("seed-wrong-type", CONTENT, _set("seed", "abc"), "type integer", at="seed", line_has="seed"),
    Case("seed-above-uint64", CONTENT, _set("seed", 2**64), "maximum", at="seed", line_has="seed"),
    Case("capacity-negative", CONTENT, _set("migration", "capacity", "monday", -1), "in range",
         at="migration.capacity.monday", line_has="monday"),
    Case("party-id-5-chars", CONTENT, _set("suppliers", 0, "party_id", "PXX01"), "expected form",
         at="suppliers[0].party_id", line_has="PXX01"),
    Case("unknown-top-level-key", CONTENT, lambda tmp, text: write(tmp, text + "colour: blue\n"),
         "allowed keys", at="colour", line_has="colour"),
    Case("unknown-nested-key", CONTENT, _set("migration", "session", "tmeout", "3h"), "allowed keys",
         at="migration.session.tmeout", line_has="tmeout"),
    Case("name-with-slash", CONTENT, _set("name", "../evil"), "expected form", at="name", line_has="../evil"),
    Case("name-dot-dot", CONTENT, _set("name", ".."), "expected", at="name", line_has="name"),
    Case("share-nan", CONTENT, _text("share: 0.30", "share: .nan"), "finite number",
         at="suppliers[0].share", line_has=".nan"),
    Case("per-day-inf", CONTENT, _text("per_day: 3 ", "per_day: .inf "), "finite number",
         at="installs.per_day", line_has="per_day"),
    Case("invalid-calendar-date-unquoted", CONTENT, _text("end: 2023-10-01", "end: 2023-02-30"), "real date",
         at="period.end", line_has="2023-02-30"),
    Case("invalid-calendar-date-quoted", CONTENT,
         _set("population", "non_migratable", 0, "classified_at", "2023-13-01"),
         "real date", at="population.non_migratable[0].classified_at", line_has="classified_at"),
    Case("hour-25", CONTENT, _set("outages", "windows", 0, "end", "2023-08-10T25:00:00Z"), "real date",
         at="outages.windows[0].end", line_has="end"),
    Case("duration-of-400-digits", CONTENT, _set("migration", "session", "timeout", "9" * 400 + "d"), "36500d",
         at="migration.session.timeout", line_has="timeout"),
    Case("duration-over-100-years", CONTENT, _set("migration", "batch_spread", "99999999d"), "36500d",
         at="migration.batch_spread", line_has="batch_spread"),
    Case("yaml-alias-bomb", FILE, _alias_bomb, "values once YAML aliases are expanded"),
    # ---- semantic checks (resolver)
    Case("supplier-shares-sum-0.9", CONTENT, _set("suppliers", 0, "share", 0.2), "add up to 1",
         at="suppliers", line_has="suppliers"),
    Case("duplicate-party-id", CONTENT, _set("suppliers", 1, "party_id", "PXX001"), "unique",
         at="suppliers[1].party_id", line_has="PXX001"),
    Case("mix-from-unknown-supplier", CONTENT, _set("change_of_supplier", "mix", 0, "from", "PZZ999"),
         "party_id", at="change_of_supplier.mix[0].from", line_has="PZZ999"),
    Case("mix-to-unknown-group", CONTENT, _set("change_of_supplier", "mix", 1, "to", "tiny"),
         "supplier group", at="change_of_supplier.mix[1].to", line_has="tiny"),
    Case("period-end-before-start", CONTENT, _set("period", "end", "2023-06-01"), "after period.start",
         at="period.end", line_has="end"),
    Case("period-end-equals-start", CONTENT, _set("period", "end", "2023-07-01"), "after period.start",
         at="period.end", line_has="end"),
    Case("migration-start-before-period", CONTENT, _set("migration", "start", "2023-06-30"), "period.start",
         at="migration.start", line_has="start"),
    Case("retry-intervals-decreasing", CONTENT, _set("migration", "session", "retry_intervals", ["5m", "20m", "10m"]),
         "do not decrease", at="migration.session.retry_intervals[2]", line_has="10m"),
    Case("session-with-too-many-tries", CONTENT, _edit(lambda d: d["migration"]["session"].update(
        retry_intervals=["1s"], timeout="36500d")), "tries", at="migration.session.timeout", line_has="timeout"),
    Case("catalogue-type-shares", CONTENT, _set("population", "catalogue", 0, "share", 0.5), "ESME models",
         at="population.catalogue", line_has="catalogue"),
    Case("firmware-shares", CONTENT, _set("population", "catalogue", 0, "firmware", 1, "share", 0.1),
         "firmware shares", at="population.catalogue[0].firmware", line_has="firmware"),
    Case("non-migratable-unknown-model", CONTENT, _set("population", "non_migratable", 0, "model", "99999999"),
         "not in population.catalogue", at="population.non_migratable[0]", line_has="device_type"),
    Case("campaign-from-firmware-unknown", CONTENT,
         _set("population", "firmware_campaigns", 0, "from_firmware", "0000FFFF"), "firmware version",
         at="population.firmware_campaigns[0].from_firmware", line_has="0000FFFF"),
    Case("by-model-unknown-model", CONTENT,
         _set("migration", "success_probability", "by_model", {"FFFF/00000000": 0.5}), "catalogue model",
         at="migration.success_probability.by_model.FFFF/00000000", line_has="FFFF/00000000"),
    Case("uniform-delay-min-above-max", CONTENT,
         _set("notifications", "latency", {"distribution": "uniform", "min": "10m", "max": "5s"}), "at least min",
         at="notifications.latency.max", line_has="max"),
    Case("uniform-outage-duration-min-above-max", CONTENT,
         _set("outages", "random", "duration", {"distribution": "uniform", "min": "13h", "max": "12h"}),
         "at least min", at="outages.random.duration.max", line_has="max"),
    Case("uniform-install-delay-min-above-max", CONTENT,
         _set("installs", "commissioning_delay", {"distribution": "uniform", "min": "3d", "max": "1d"}),
         "at least min", at="installs.commissioning_delay.max", line_has="max"),
    Case("outage-window-ends-before-start", CONTENT, _set("outages", "windows", 0, "end", "2023-08-10T10:00:00Z"),
         "after the window's start", at="outages.windows[0].end", line_has="end"),
    # ---- outages name their reports: the simulator knows no report ids (issue 8 deliverable 4)
    Case("random-outages-without-reports", CONTENT, _edit(lambda d: d["outages"]["random"].pop("reports")),
         "'reports' is a required property", at="outages.random", line_has="random"),
    Case("random-outage-report-not-a-report-id", CONTENT, _set("outages", "random", "reports", ["ECOSMIG-1"]),
         "'ECOSMIG-1' is not in the expected form", at="outages.random.reports[0]", line_has="ECOSMIG-1"),
    Case("outage-window-report-not-a-report-id", CONTENT, _set("outages", "windows", 0, "report", "all"),
         "'all' is not in the expected form", at="outages.windows[0].report", line_has="report"),
    # ---- command-line arguments
    Case("workers-0", ARG, lambda tmp, text: write(tmp, text), "--workers", args=("--workers", "0")),
    Case("seed-negative", ARG, lambda tmp, text: write(tmp, text), "--seed", args=("--seed", "-1")),
    Case("seed-above-uint64-arg", ARG, lambda tmp, text: write(tmp, text), "--seed", args=("--seed", str(2**64))),
    Case("seed-not-a-number", ARG, lambda tmp, text: write(tmp, text), "--seed", args=("--seed", "abc")),
]



# ---- hostile scenarios held as data (tests/cases/scenarios.json, shape scenarios.schema.json): scenarios that
# validated and then ran without bound, crashed or did nothing (reliability campaign, section 3, M7, M8, L7, L8)
HOSTILE = ROOT / "tests" / "cases" / "scenarios.json"


def _hostile_cases() -> list[Case]:
    manifest = json.loads(HOSTILE.read_text(encoding="utf-8"))
    jsonschema.validate(manifest, json.loads((HOSTILE.parent / "scenarios.schema.json").read_text(encoding="utf-8")))
    assert manifest["base"] == str(DEMO.relative_to(ROOT)), "the cases edit the demo text given to Case.make"

    def apply(edits: list[dict]) -> Callable[[dict], None]:
        def fn(d: dict) -> None:
            for edit in edits:
                *parents, last = edit["set"]
                target = d
                for key in parents:
                    target = target[key]
                value = edit["value"]
                target[last] = [copy.deepcopy(value) for _ in range(edit["copies"])] if "copies" in edit else value
        return fn

    return [Case(c["id"], CONTENT, _edit(apply(c["edits"])), c["expect"], at=c["at"], line_has=c.get("line_has"))
            for c in manifest["cases"]]


CASES += _hostile_cases()

SUBPROCESS_CASES = {"missing-file", "invalid-yaml-syntax", "python-object-tag", "seed-wrong-type",
                    "mix-from-unknown-supplier", "workers-0", "invalid-calendar-date-unquoted"}


def check_error(case: Case, path: Path, out: Path, status: int, stdout: str, stderr: str) -> None:
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert status == 2, f"exit status {status}, stderr: {stderr!r}"
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    line = stderr.rstrip("\n")
    assert line.startswith("emrr: error: "), line
    assert case.expect in line, f"{case.expect!r} not in {line!r}"
    if case.kind != ARG:
        assert str(path) in line, f"file {path} not named in {line!r}"
    if case.kind in (YAML, CONTENT):
        m = re.search(re.escape(str(path)) + r":(\d+): ", line)
        assert m, f"no FILE:LINE: in {line!r}"
        if case.line_has:
            reported = path.read_text(encoding="utf-8").splitlines()[int(m.group(1)) - 1]
            assert case.line_has in reported, \
                f"line {m.group(1)} is {reported!r}, expected it to hold {case.line_has!r}"
    if case.kind == CONTENT:
        assert f": at {case.at}: " in line, f"YAML path {case.at!r} not named in {line!r}"
    assert not out.exists(), f"{out} was created"
    assert leftovers(out) == [], f"half-written output left: {leftovers(out)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_no_output(case: Case, tmp_path: Path, demo_text: str, capsys):
    """Each bad input: exit 2, one `emrr: error:` line naming file/line/YAML path, no output dir."""
    path = case.make(tmp_path, demo_text)
    out = tmp_path / "out"
    started = time.perf_counter()
    status, stdout, stderr = run_main(["simulate", path, "--out", out, "--no-progress", *case.args], capsys)
    assert time.perf_counter() - started < 5, "validation took too long"
    check_error(case, path, out, status, stdout, stderr)
    if case.id == "python-object-tag":
        assert not (tmp_path / "pwned").exists(), "the !!python tag was executed"


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SUBPROCESS_CASES],
                         ids=[c.id for c in CASES if c.id in SUBPROCESS_CASES])
def test_bad_input_real_process(case: Case, tmp_path: Path, demo_text: str):
    """The same checks on a real `python -m emrr` process: exit status 2 and no traceback on stderr."""
    path = case.make(tmp_path, demo_text)
    out = tmp_path / "out"
    status, stdout, stderr = run_subprocess(["simulate", path, "--out", out, *case.args], cwd=tmp_path)
    check_error(case, path, out, status, stdout, stderr)
    if case.id == "python-object-tag":
        assert not (tmp_path / "pwned").exists(), "the !!python tag was executed"


def test_unreadable_file_even_as_root(tmp_path: Path, demo_text: str, monkeypatch, capsys):
    """The unreadable-file branch, exercised even as root: a PermissionError on read is one line, exit 2."""
    path = write(tmp_path, demo_text)
    real_open = Path.open

    def open_(self, *args, **kwargs):
        if self == Path(path):
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    out = tmp_path / "out"
    status, stdout, stderr = run_main(["simulate", path, "--out", out, "--no-progress"], capsys)
    check_error(Case("unreadable", FILE, None, "cannot read: Permission denied"), path, out, status, stdout, stderr)


def test_case_list_covers_the_issue():
    """Guard against the case list shrinking below the issue's required set."""
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- output directory


def small_demo(tmp_path: Path, demo_text: str) -> Path:
    return write(tmp_path, mutate(demo_text, lambda d: d["population"].update(premises=300)), "small.yaml")


def test_out_is_non_empty_foreign_directory(tmp_path: Path, demo_text: str, capsys):
    """--out at a non-empty directory that is not an event log: exit 2, its files untouched."""
    path = small_demo(tmp_path, demo_text)
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("four years of work\n")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("a,b\n1,2\n")
    before = {p.relative_to(out): p.read_bytes() if p.is_file() else None for p in out.rglob("*")}
    status, stdout, stderr = run_main(["simulate", path, "--out", out, "--no-progress"], capsys)
    assert status == 2 and stderr.count("\n") == 1 and stderr.startswith("emrr: error: "), stderr
    assert str(out) in stderr and "not an event log" in stderr
    after = {p.relative_to(out): p.read_bytes() if p.is_file() else None for p in out.rglob("*")}
    assert after == before
    assert leftovers(out) == []


def test_out_is_an_existing_file(tmp_path: Path, demo_text: str, capsys):
    """--out at an existing regular file: exit 2 and the file is left as it was."""
    path = small_demo(tmp_path, demo_text)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"not a directory")
    status, stdout, stderr = run_main(["simulate", path, "--out", out, "--no-progress"], capsys)
    assert status == 2 and stderr.count("\n") == 1 and stderr.startswith("emrr: error: "), stderr
    assert str(out) in stderr and "not a directory" in stderr
    assert out.read_bytes() == b"not a directory"
    assert leftovers(out) == []


def test_out_is_an_unreadable_directory(tmp_path: Path, demo_text: str, monkeypatch, capsys):
    """--out at a directory we may not list (mode 0300, other owner): should be exit 2, one line."""
    path = small_demo(tmp_path, demo_text)
    out = tmp_path / "locked"
    out.mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == out:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    status = cli.main(["simulate", str(path), "--out", str(out), "--no-progress"])  # not run_main: let it raise
    stderr = capsys.readouterr().err
    assert status == 2 and stderr.count("\n") == 1 and stderr.startswith("emrr: error: "), stderr


@pytest.mark.parametrize("out", [".", "..", "/"])
def test_out_without_a_directory_name(out: str, tmp_path: Path, demo_text: str, monkeypatch, capsys):
    """--out '.' (even an empty cwd), '..' or '/': exit 2, one line (was an OSError traceback on rename)."""
    path = small_demo(tmp_path, demo_text)
    here = tmp_path / "empty"
    here.mkdir()
    monkeypatch.chdir(here)
    status, stdout, stderr = run_main(["simulate", path, "--out", out, "--no-progress"], capsys)
    assert status == 2 and stderr.count("\n") == 1 and stderr.startswith("emrr: error: "), stderr
    assert "argument --out: " in stderr
    assert list(here.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "small.yaml"]


def test_rerun_replaces_previous_event_log(tmp_path: Path, demo_text: str):
    """Re-running into a folder holding an earlier event log replaces it wholesale (exit 0, fresh manifest).
    A folder holding anything besides the event log is refused instead (tests/test_scenario_outputs.py, L6)."""
    path = small_demo(tmp_path, demo_text)
    out = tmp_path / "log"
    status, stdout, stderr = run_subprocess(["simulate", path, "--out", out, "--no-progress"], cwd=tmp_path)
    assert status == 0, stderr
    assert "Traceback" not in stderr
    first = json.loads((out / "manifest.json").read_text())
    first_inode = (out / "manifest.json").stat().st_ino

    status, stdout, stderr = run_subprocess(["simulate", path, "--out", out, "--seed", "7", "--no-progress"],
                                            cwd=tmp_path)
    assert status == 0, stderr
    second = json.loads((out / "manifest.json").read_text())
    assert second["format"] == first["format"]
    assert first["seed"] == 20230701 and second["seed"] == 7, "the manifest is not the second run's"
    assert (out / "manifest.json").stat().st_ino != first_inode
    assert leftovers(out) == []


def test_bad_scenario_leaves_existing_event_log_alone(tmp_path: Path, demo_text: str, capsys):
    """A scenario that fails validation must not touch an event log already at --out."""
    good = small_demo(tmp_path, demo_text)
    out = tmp_path / "log"
    assert run_main(["simulate", good, "--out", out, "--no-progress"], capsys)[0] == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = write(tmp_path, mutate(demo_text, lambda d: d["period"].update(end="2023-06-01")), "bad.yaml")
    status, _, stderr = run_main(["simulate", bad, "--out", out, "--no-progress"], capsys)
    assert status == 2 and "at period.end" in stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert leftovers(out) == []


# --------------------------------------------------------------------------- good cases


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path):
    """Every scenarios/*.yaml passes validation (the checks above must not reject real scenarios), through
    the loader of its regime (sim/regime.py)."""
    loaded = regime.load(path)
    assert loaded.name == yaml.safe_load(path.read_text(encoding="utf-8"))["name"]
    assert scenario.check_name(loaded.name) == loaded.name


def test_schema_is_valid_json_schema():
    """scenario.schema.json is itself a valid Draft 2020-12 schema."""
    jsonschema.Draft202012Validator.check_schema(scenario.schema())


def test_an_outage_names_a_report_in_the_rulesets_form():
    """Outages name their reports as a ruleset does (issue 8 deliverable 4: the simulator knows no report
    ids): the scenario schema's report is the ruleset schema's report_id, or '*' for every report."""
    from importlib import resources

    rules = json.loads(resources.files("emrr.rules").joinpath("ruleset.schema.json").read_text(encoding="utf-8"))
    report_id = rules["$defs"]["report_id"]["pattern"]
    assert report_id.startswith("^") and report_id.endswith("$")
    assert scenario.schema()["$defs"]["report"]["pattern"] == f"^({report_id[1:-1]}|\\*)$"


def test_yaml_anchors_and_merge_keys_still_work(demo_text: str):
    """Alias handling (alias-bomb guard, duplicate-key check) keeps ordinary anchors/merges working."""
    text = replace(demo_text, "  latency: {distribution: uniform, min: 5s, max: 10m}",
                   "  latency: &lat {distribution: uniform, min: 5s, max: 10m}")
    merged = replace(text, "  late_latency: {distribution: exponential, mean: 1d}",
                     "  late_latency: {<<: *lat, min: 1m}")
    assert scenario.loads(merged, "anchors.yaml").late_latency == scenario.Delay("uniform", 60, 600)
    broken = replace(text, "  late_latency: {distribution: exponential, mean: 1d}",
                     "  late_latency: {<<: *lat, min: 1h}")
    with pytest.raises(UserError, match=r"^anchors\.yaml:\d+: at notifications\.late_latency\.max: expected max"):
        scenario.loads(broken, "anchors.yaml")


# --------------------------------------------------------------------------- never crash (Hypothesis)

DEMO_DICT = yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def _leaves(value, path=()):
    """Every (path, leaf) of a parsed YAML document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, path + (i,))
    else:
        yield path, value


LEAF_PATHS = [p for p, _ in _leaves(DEMO_DICT)]
CONTAINER_PATHS = sorted({p[:i] for p in LEAF_PATHS for i in range(1, len(p))}, key=repr)

_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(timezones=st.sampled_from([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=1))])),
    # well-formed by the schema's patterns, but maybe no real date / absurdly long
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?Z?)?\Z"),
    st.from_regex(r"\A[0-9]{1,25}(\.[0-9]{1,3})?[smhd]\Z"),
    st.sampled_from(["PXX001", "large", "other", "*", "ESME", "GPF", "1057", "54342152", "00123402", "uniform",
                     "fixed", "exponential", "ECOSMIG-002", "-1", "0", "1e308", ".nan", "../x", ""]),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _get(d, path):
    for key in path:
        d = d[key]
    return d


def _assert_scenario_or_user_error(text: str) -> None:
    try:
        result = scenario.loads(text, "fuzz.yaml")
    except UserError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml") and "\n" not in message, message
    else:
        assert isinstance(result, scenario.Scenario)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([(("period", "end"), "2023-02-30")])  # was a ValueError from datetime
@example([(("migration", "session", "timeout"), "9" * 400 + "d")])  # was an OverflowError
@example([(("suppliers", 0, "share"), math.nan)])  # NaN passed every schema bound
@given(st.lists(st.tuples(st.sampled_from(LEAF_PATHS + CONTAINER_PATHS), _values), min_size=1, max_size=3))
def test_mutated_demo_gives_scenario_or_user_error(edits):
    """Replacing demo leaves/branches with random values never raises anything but UserError."""
    data = copy.deepcopy(DEMO_DICT)
    for path, value in edits:
        try:
            parent = _get(data, path[:-1])
            parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed this path
    _assert_scenario_or_user_error(yaml.safe_dump(data, sort_keys=False))


YAML_ALPHABET = st.sampled_from(list(":-[]{}!&*#|>'\"\n\t %@`,.?0123456789abcxyz_\\") +
                                ["!!int ", "!!float ", "!!bool ", "!!timestamp ", "!!binary ",
                                 "!!python/name:os.system", "&a ", "*a", "<<: ", "name: ", "seed: ",
                                 "period:\n  start: ", "2023-02-30", "\x00",
                                 "\ufeff", ".nan", ".inf", "- ", "\n  "])


@settings(max_examples=100, deadline=None)
@example("!!int")  # was an IndexError inside PyYAML
@example("seed: !!bool perhaps")  # was a KeyError inside PyYAML
@example("a: !!timestamp x")  # was an AttributeError inside PyYAML
@example("end: 2023-02-30")  # was a ValueError inside PyYAML
@example("x: " + "[" * 5000)  # was a RecursionError
@given(st.one_of(st.text(max_size=200), st.lists(YAML_ALPHABET, max_size=60).map("".join),
                 st.tuples(st.integers(0, len(DEMO.read_text(encoding="utf-8"))), st.text(max_size=30))
                 .map(lambda t: DEMO.read_text(encoding="utf-8")[:t[0]] + t[1]
                      + DEMO.read_text(encoding="utf-8")[t[0]:])))
def test_random_yaml_text_gives_scenario_or_user_error(text):
    """Random YAML-ish text (and demo.yaml with random text spliced in) never raises anything but UserError."""
    _assert_scenario_or_user_error(text)


@pytest.mark.parametrize("section, key, value, path", [
    ("population", "premises", 80_000_000, "at population.premises"),
    ("installs", "per_day", 10_000_000, "at installs.per_day"),
])
def test_populations_too_large_for_unique_identifiers(section, key, value, path, demo_text, tmp_path, capsys):
    """Unique MPRNs (10 digits) bound the premises and installs a scenario may have: a one-line error."""
    data = yaml.safe_load(demo_text)
    data[section][key] = value
    scenario_file = tmp_path / "big.yaml"
    scenario_file.write_text(yaml.safe_dump(data))
    status = cli.main(["simulate", str(scenario_file), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and path in err and str(scenario_file) in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the calendar's bounds (issue 13, M7, L8)


def test_instant_years_are_inside_the_checkers():
    """Scenario instants are bounded by the years the checker accepts in a report file's date-times
    (campaign 3.08, 3.09): the simulator may not import the checker, so the constants are held together here.
    The first year is one later: a report run's window reaches back a schedule interval (up to a year)."""
    from emrr.conformance import formats

    assert scenario.INSTANT_YEARS == (formats.YEARS[0] + 1, formats.YEARS[1])


def _at_calendar_edge(d: dict, start: str, end: str) -> None:
    """demo.yaml moved to [start, end) with a small population: every instant inside the period."""
    d["population"]["premises"] = 300
    d["period"] = {"start": start, "end": end}
    d["migration"]["start"] = start
    d["population"]["non_migratable"][0]["classified_at"] = start
    d["population"]["firmware_campaigns"][0]["start"] = start
    d["outages"]["windows"][0].update(start=start, end=f"{start}T06:00:00Z")


@pytest.mark.parametrize("start, end", [("1971-01-01", "1971-02-01"), ("2999-12-01", "2999-12-31T23:59:59")],
                         ids=["first-days-1971", "last-days-2999"])
def test_periods_at_the_calendar_bounds_run_through_every_command(start, end, tmp_path, demo_text, capsys):
    """A period at either end of the accepted years runs through simulate, report and check with no
    finding: the bound refused is the one every command can hold (campaign 3.08, 3.09, 3.39-3.42)."""
    path = write(tmp_path, mutate(demo_text, lambda d: _at_calendar_edge(d, start, end)))
    status = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS: 0 error(s), 0 warning(s)" in out
