"""What ``emrr simulate`` (and the other commands) may write, and when they find out they cannot.

Protects issue 13 deliverable 3 and the reliability campaign's L10 (an unwritable ``--summary-json``
failed only after the whole run had been written) and L6 (simulating into an event-log folder that
also held other files replaced the whole folder: 3,254 report files in it were deleted).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from emrr import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_scenario(tmp_path_factory) -> Path:
    """demo.yaml with 300 premises: a run of well under a second."""
    data = yaml.safe_load((ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8"))
    data["population"]["premises"] = 300
    path = tmp_path_factory.mktemp("small") / "small.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _main(argv: list, capsys) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --------------------------------------------------------------------------- L10: result files checked first


def _unwritable(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "a-directory"
    folder.mkdir()
    return {"missing-folder": tmp_path / "no-such-folder" / "result.json", "a-directory": folder}


@pytest.mark.parametrize("where", ["missing-folder", "a-directory"])
@pytest.mark.parametrize("command", ["simulate", "simulate-calibration", "report", "check-json", "check-junit"])
def test_an_unwritable_result_file_is_refused_before_the_run(command, where, small_scenario, tmp_path, capsys):
    """--summary-json, --json and --junit naming a file that cannot be written: exit 2 and one line naming
    it, before anything is read or written (the output folder is not created)."""
    target = _unwritable(tmp_path)[where]
    out = tmp_path / "out"
    argv = {
        "simulate": ["simulate", small_scenario, "--out", out, "--no-progress", "--summary-json", target],
        "simulate-calibration": ["simulate", small_scenario, "--out", out, "--no-progress", "--calibration", target],
        "report": ["report", "--events", tmp_path / "no-events", "--out", out, "--no-progress",
                   "--summary-json", target],
        "check-json": ["check", tmp_path / "no-reports", "--json", target],
        "check-junit": ["check", tmp_path / "no-reports", "--junit", target],
    }[command]
    status, stdout, stderr = _main(argv, capsys)
    assert status == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("emrr: error: ") and str(target) in stderr, stderr
    assert "checked before the run" in stderr or "is a directory" in stderr, stderr
    assert not out.exists() and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory"], "nothing else may be written"


def test_a_writable_result_file_is_written_and_the_probe_is_gone(small_scenario, tmp_path, capsys):
    """The check tries the folder with a temporary file and removes it; the summary is then written."""
    summary = tmp_path / "summary.json"
    status, _, stderr = _main(["simulate", small_scenario, "--out", tmp_path / "out", "--no-progress",
                               "--summary-json", summary], capsys)
    assert status == 0, stderr
    assert json.loads(summary.read_text(encoding="utf-8"))["scenario"] == "demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "summary.json"]


def test_the_calibration_table_is_written_and_carried_by_the_summary(small_scenario, tmp_path, capsys):
    """Issue 11 item 12: --calibration FILE writes the table of calibrated figures (published value,
    source, setting, measured, tolerance, within); --summary-json carries the same table."""
    table, summary = tmp_path / "cal.json", tmp_path / "summary.json"
    status, stdout, stderr = _main(["simulate", small_scenario, "--out", tmp_path / "out", "--no-progress",
                                    "--calibration", table, "--summary-json", summary], capsys)
    assert status == 0, stderr
    written = json.loads(table.read_text(encoding="utf-8"))
    assert written["format"] == "emrr-calibration" and written["scenario"] == "demo"
    assert json.loads(summary.read_text(encoding="utf-8"))["calibration"] == written
    rows = {r["id"]: r for r in written["figures"]}
    assert set(rows["max_attempts"]) == {"id", "figure", "published", "source", "setting", "measured", "tolerance",
                                         "within"}
    assert rows["max_attempts"]["setting"] == 5 and rows["max_attempts"]["measured"] <= 5
    assert "figures within tolerance" in stdout


# --------------------------------------------------------------------------- L6: only our own files are replaced


def test_an_event_log_folder_holding_other_files_is_refused(small_scenario, tmp_path, capsys):
    """An event log with a reports/ folder (or any file it did not write) in it is not replaced: exit 2,
    one line naming what is foreign, and every file left as it was (campaign L6)."""
    out = tmp_path / "ev"
    assert _main(["simulate", small_scenario, "--out", out, "--no-progress"], capsys)[0] == 0
    (out / "reports").mkdir()
    (out / "reports" / "mine.csv").write_text("a report\n", encoding="utf-8")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    status, _, stderr = _main(["simulate", small_scenario, "--out", out, "--no-progress"], capsys)
    assert status == 2 and stderr.count("\n") == 1 and "reports" in stderr, stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert (out / "reports" / "mine.csv").read_text(encoding="utf-8") == "a report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"], "nothing half-written beside --out"


def test_an_event_log_of_ours_alone_is_replaced(small_scenario, tmp_path, capsys):
    """The folder of an earlier event log, holding only what it wrote, is replaced by the new run."""
    out = tmp_path / "ev"
    assert _main(["simulate", small_scenario, "--out", out, "--no-progress"], capsys)[0] == 0
    first = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    status, _, stderr = _main(["simulate", small_scenario, "--out", out, "--no-progress", "--seed", "7"], capsys)
    assert status == 0, stderr
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["seed"] == 7 != first["seed"]
