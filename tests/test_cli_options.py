"""Bad options and broken rulesets on every command: one line, exit 2, nothing left behind.

Protects the command line's contract (emrr/cli.py docstring; README "Bad input"): an option is
validated once, for every command that takes it, before anything is read or written; a ruleset is
read by the one hardened YAML loader (emrr.yamlio), so a value PyYAML cannot construct is a
one-line error with file and line, never a traceback with exit 1 (which ``check`` reserves for
"errors found").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emrr.cli import main
from emrr.rules.ruleset import RULES_DIR

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "scenarios" / "demo.yaml")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emrr: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def commands(out: Path, events: Path) -> dict[str, list[str]]:
    """Every command that writes, with its options, ready to take one bad value."""
    return {
        "simulate": ["simulate", DEMO, "--out", str(out)],
        "run": ["run", DEMO, "--out", str(out), "--no-check"],
        "report": ["report", "--events", str(events), "--out", str(out)],
    }


BAD_OPTIONS = [
    # (option, value, commands that take it, what the message names)
    ("--seed", "-1", ("simulate", "run"), "--seed"),
    ("--seed", "abc", ("simulate", "run"), "--seed"),
    ("--seed", str(2**64), ("simulate", "run"), "--seed"),
    ("--workers", "0", ("simulate", "run"), "--workers"),
    ("--workers", "two", ("simulate", "run"), "--workers"),
]


@pytest.mark.parametrize("option,value,takers,needle", BAD_OPTIONS, ids=lambda v: str(v)[:12])
@pytest.mark.parametrize("command", ["simulate", "run"])
def test_bad_option_is_one_line_and_leaves_nothing(tmp_path, capsys, command, option, value, takers, needle):
    """emrr run --seed -1 used to give a NumPy traceback, exit 1 and an empty folder (review B3)."""
    out = tmp_path / "out"
    argv = commands(out, tmp_path / "events")[command] + [option, value]
    status, _, err = run_cli(argv, capsys)
    assert_one_line_error(status, err, needle)
    assert not out.exists()


@pytest.mark.parametrize("command", ["simulate", "run", "report"])
@pytest.mark.parametrize("bad_out", [".", "..", "/", "a-file"])
def test_bad_out_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, command, bad_out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    argv = commands(Path(bad_out), tmp_path / "events")[command]
    status, _, err = run_cli(argv, capsys)
    assert_one_line_error(status, err, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_max_examples_below_zero_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(["check", str(tmp_path), "--max-examples", "-1"], capsys)
    assert_one_line_error(status, err, "--max-examples")


def broken_ruleset(tmp_path: Path, edit) -> Path:
    """A copy of the revised EMRR with ``edit`` applied to ECOSMIG-001.yaml's text."""
    folder = tmp_path / "broken"
    shutil.copytree(RULES_DIR / "emrr-revised", folder)
    path = folder / "ECOSMIG-001.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


BROKEN_YAML = {
    # What PyYAML's safe loader crashes on (a traceback before emrr.yamlio).
    "int-tag": (lambda t: t.replace("max_length: 23", "max_length: !!int abc", 1), "cannot read int value"),
    "bool-tag": (lambda t: t.replace("mandatory: true", "mandatory: !!bool maybe", 1), "cannot read bool value"),
    "syntax": (lambda t: t + "\n  : [unclosed\n", "invalid YAML"),
    "repeated-key": (lambda t: t + "\nkind: detail\n", "repeated"),
    "unknown-key": (lambda t: t + "\nbomb: 1\n", "bomb"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_YAML))
@pytest.mark.parametrize("command", ["check", "report", "run"])
def test_broken_ruleset_yaml_is_one_line_on_every_command(tmp_path, capsys, case, command):
    edit, needle = BROKEN_YAML[case]
    folder = broken_ruleset(tmp_path, edit)
    out = tmp_path / "out"
    argv = {
        "check": ["check", str(tmp_path), "--ruleset", str(folder)],
        "report": ["report", "--events", str(tmp_path), "--out", str(out), "--ruleset", str(folder)],
        "run": ["run", DEMO, "--out", str(out), "--ruleset", str(folder), "--no-check"],
    }[command]
    status, _, err = run_cli(argv, capsys)
    assert_one_line_error(status, err, "ECOSMIG-001.yaml")
    assert needle in err
    assert not out.exists()


def test_alias_bomb_in_a_ruleset_is_refused(tmp_path, capsys):
    """A "billion laughs" document is refused by size, not expanded (emrr.yamlio.MAX_VALUES)."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, " \
                f"*{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    folder = broken_ruleset(tmp_path, lambda t: t + "\nx-bomb:\n" + "".join("  " + line + "\n"
                                                                          for line in bomb.splitlines()))
    status, _, err = run_cli(["check", str(tmp_path), "--ruleset", str(folder)], capsys)
    assert_one_line_error(status, err, "values once YAML aliases are expanded")


def test_a_bug_is_one_line_and_exit_2(monkeypatch, capsys):
    """An unexpected exception is one line naming it a bug, exit 2, no traceback (issue 13 deliverable 3);
    EMRR_DEBUG=1 lets the traceback through for whoever fixes it."""
    import emrr.cli

    def broken(args):
        raise ValueError("y" * 5000)

    parser = emrr.cli.build_parser()
    monkeypatch.setattr(emrr.cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["corpus"].set_defaults(handler=broken)
    monkeypatch.delenv("EMRR_DEBUG", raising=False)
    status, _, err = run_cli(["corpus", "x"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("emrr: internal error: ValueError: ") and "bug in emrr" in err and len(err) < 800
    monkeypatch.setenv("EMRR_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["corpus", "x"])


def test_a_system_error_is_one_line(monkeypatch, capsys):
    """A full disk (ENOSPC) or another OSError gives the system's words in one line, exit 2."""
    import errno

    import emrr.cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/some/file")

    parser = emrr.cli.build_parser()
    monkeypatch.setattr(emrr.cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["corpus"].set_defaults(handler=full)
    status, _, err = run_cli(["corpus", "x"], capsys)
    assert status == 2 and err.strip() == "emrr: error: /some/file: No space left on device"


def test_run_again_replaces_only_its_own_reports(tmp_path, capsys):
    """emrr run into the folder of an earlier run makes its reports anew, removing only the files
    that run wrote; a file of someone else's in reports/ is refused in one line and kept (campaign L6)."""
    out = tmp_path / "out"
    assert run_cli(["run", DEMO, "--out", str(out), "--no-check", "--no-progress"], capsys)[0] == 0
    first = sorted(p.relative_to(out).as_posix() for p in (out / "reports").rglob("*"))
    assert run_cli(["run", DEMO, "--out", str(out), "--no-check", "--no-progress"], capsys)[0] == 0
    assert sorted(p.relative_to(out).as_posix() for p in (out / "reports").rglob("*")) == first
    mine = out / "reports" / "PXX001" / "my-notes.txt"
    mine.parent.mkdir(exist_ok=True)
    mine.write_text("keep me")
    status, _, err = run_cli(["run", DEMO, "--out", str(out), "--no-check", "--no-progress"], capsys)
    assert_one_line_error(status, err, "my-notes.txt")
    assert mine.read_text() == "keep me"


def test_check_says_the_rulesets_warnings(tmp_path, capsys):
    """The consultation draft loads with a warning (ECoS Status of 7 characters cannot hold its own
    enumeration value 'Installed', campaign R03): emrr check says it on stderr, as emrr report does."""
    main(["check", str(tmp_path), "--ruleset", "emrr-consultation-draft"])
    err = capsys.readouterr().err
    assert "emrr: warning: " in err and "Installed" in err
