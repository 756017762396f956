"""The one YAML loader (emrr.yamlio), shared by scenarios and rulesets: what it refuses, and how.

Protects README "Bad input" (one line naming the file, the line and the YAML path, exit 2) for
inputs found by the reliability campaign (shared/reviews/reliability-campaign.md M2, M3, M8, L7):
files that never end or would block, files too large to be a ruleset or scenario, alias bombs,
deep nesting, values PyYAML's safe loader cannot construct, and error lines of megabytes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from emrr import yamlio
from emrr.cli import main
from emrr.errors import MAX_LINE, UserError
from emrr.rules.ruleset import RULES_DIR

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(argv: list[str], capsys) -> str:
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def ruleset_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "rs"
    shutil.copytree(RULES_DIR / "emrr-revised", folder)
    (folder / "ECOSMIG-001.yaml").write_text(text, encoding="utf-8")
    return folder


def test_fifo_and_device_are_refused_without_reading(tmp_path, capsys):
    """A FIFO with no writer would block for ever; /dev/zero never ends (campaign 3.31-3.33)."""
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        err = one_line_error(["simulate", str(path), "--out", str(tmp_path / "out")], capsys)
        assert "not a regular file" in err


def command_loading(loader: str, text: str, tmp_path: Path) -> list[str]:
    """A command that reads ``text`` as a scenario (emrr simulate) or as a report of a ruleset (emrr check)."""
    if loader == "scenario":
        path = tmp_path / "given.yaml"
        path.write_text(text, encoding="utf-8")
        return ["simulate", str(path), "--out", str(tmp_path / "out")]
    return ["check", str(tmp_path), "--ruleset", str(ruleset_with(tmp_path, text))]


@pytest.mark.parametrize("loader", ["scenario", "ruleset"])
def test_a_50_mb_file_is_refused_within_2_seconds(tmp_path, capsys, loader):
    """Issue 13's target: each loader rejects a 50 MB file within 2 s (campaign 3.18: 180 s, 3.3 GiB)."""
    argv = command_loading(loader, "x: [" + "1, " * ((50 << 20) // 3) + "1]\n", tmp_path)
    started = time.perf_counter()
    err = one_line_error(argv, capsys)
    assert time.perf_counter() - started < 2
    assert f"larger than {yamlio.MAX_BYTES >> 20} MB" in err


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 10)}]\n" for c in "bcdefghi")


@pytest.mark.parametrize("loader", ["scenario", "ruleset"])
def test_alias_bomb_is_refused_by_size(tmp_path, capsys, loader):
    """A 2 KB "billion laughs" took more than 4.9 GiB in the ruleset loader (campaign M2)."""
    argv = command_loading(loader, BOMB, tmp_path)
    assert "values once YAML aliases are expanded" in one_line_error(argv, capsys)


def test_deep_nesting_in_a_ruleset_is_one_line(tmp_path, capsys):
    """50,000 nested '[' gave a 204 KB RecursionError traceback (campaign 4.14)."""
    folder = ruleset_with(tmp_path, "id: ECOSMIG-001\nsource: " + "[" * 50_000 + "\n")
    assert "invalid YAML" in one_line_error(["check", str(tmp_path), "--ruleset", str(folder)], capsys)


def test_error_lines_stay_short_whatever_the_value(tmp_path, capsys):
    """A 2 MB string where a number belongs gave one error line of 2,000,123 bytes (campaign 3.14)."""
    path = tmp_path / "long.yaml"
    text = (ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("seed:", f"seed: '{'9' * 2_000_000}'\nx-seed:", 1), encoding="utf-8")
    err = one_line_error(["simulate", str(path), "--out", str(tmp_path / "out")], capsys)
    assert len(err) <= MAX_LINE + len("emrr: error: ")


def test_user_error_is_one_line_of_bounded_length():
    error = UserError("expected x\nbut got " + "y" * 10_000, file="a.yaml:3", path="a.b")
    text = str(error)
    assert "\n" not in text and len(text) <= MAX_LINE and text.startswith("a.yaml:3: at a.b: expected x\\nbut")


def test_line_index_and_paths():
    """Errors point at the line of the nearest YAML path that exists."""
    data, lines = yamlio.loads("a:\n  b:\n    - 1\n    - {c: 2}\n", "f.yaml")
    assert data == {"a": {"b": [1, {"c": 2}]}}
    assert lines[("a", "b", 1, "c")] == 4
    error = yamlio.error_at("f.yaml", lines, ("a", "b", 1, "c", "missing"), "expected something")
    assert str(error) == "f.yaml:4: at a.b[1].c.missing: expected something"


def test_repeated_key_is_refused():
    with pytest.raises(UserError, match="repeated"):
        yamlio.loads("a: 1\na: 2\n", "f.yaml")
