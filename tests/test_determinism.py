"""Determinism (DESIGN.md "Making national volume possible"): same scenario and seed, byte-identical
event logs, whatever the number of worker processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, merge, scenario_dict, simulate_dict


def digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def small_sharded() -> dict:
    """demo, cut to 3,000 premises in 3 shards so that workers have something to split."""
    return merge(scenario_dict("demo"), {"name": "sharded", "population": {"premises": 3000, "shard_premises": 1000}})


def test_two_runs_with_one_seed_are_byte_identical(tmp_path):
    a = simulate_dict(small_sharded(), tmp_path / "a")
    simulate_dict(small_sharded(), tmp_path / "b")
    assert a.shards == 3
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")


def test_one_and_two_workers_give_byte_identical_files(tmp_path):
    simulate_dict(small_sharded(), tmp_path / "w1", workers=1)
    simulate_dict(small_sharded(), tmp_path / "w2", workers=2)
    tree = digest_tree(tmp_path / "w1")
    assert len(tree) >= 3 * 4 + 5  # 4 sharded tables x 3 parts, 3 global tables, manifest, scenario
    assert tree == digest_tree(tmp_path / "w2")


def test_another_seed_gives_another_history(tmp_path):
    simulate_dict(small_sharded(), tmp_path / "a")
    simulate_dict(merge(small_sharded(), {"seed": 99}), tmp_path / "b")
    a, b = digest_tree(tmp_path / "a"), digest_tree(tmp_path / "b")
    assert a["events/part-00000.parquet"] != b["events/part-00000.parquet"]


def test_the_demo_command_twice_is_byte_identical(tmp_path):
    """The check the issue names: `emrr simulate scenarios/demo.yaml` twice, compared byte for byte."""
    for out in ("x", "y"):
        done = subprocess.run([sys.executable, "-m", "emrr", "simulate", "scenarios/demo.yaml",
                               "--out", str(tmp_path / out), "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "attempts" in done.stdout
    assert digest_tree(tmp_path / "x") == digest_tree(tmp_path / "y")


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    import json

    simulate_dict(small_sharded(), tmp_path / "log")
    manifest = json.loads((tmp_path / "log" / "manifest.json").read_text())
    tree = digest_tree(tmp_path / "log")
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed == {k: v for k, v in tree.items() if k not in ("manifest.json", "scenario.json")}


def test_report_threads_give_byte_identical_files(simulated, smets1_reports, smets1_log, tmp_path):
    """Engine.run with workers: the report engine's threads (emrr report --workers) write the same
    files, bytes and manifest as one thread, on an ECoS log (demo) and a SMETS1 log; each report's
    sequence numbers stay its own (EMRR App. B; MRR 002 App. B)."""
    from emrr.rules import engine, ruleset

    demo = simulated("demo").path
    for events, rules, one in ((demo, ruleset.load("emrr-revised"), None), (smets1_log, ruleset.load("smets1-mrr-v3.0"),
                                                                            smets1_reports("smets1-mrr-v3.0"))):
        if one is None:
            one = tmp_path / f"{rules.name}-1"
            engine.report(events, one, rules, progress=False)
        for workers in (2, 3):
            many = tmp_path / f"{rules.name}-{workers}"
            summary = engine.report(events, many, rules, progress=False, workers=workers)
            files = {k: v for k, v in digest_tree(many).items() if not k.startswith(".emrr-")}
            assert files == {k: v for k, v in digest_tree(one).items() if not k.startswith(".emrr-")}
            assert sum(s.files for s in summary.per_report.values()) == len(files) - 1  # and the manifest


def test_report_threads_stop_on_bad_input_and_leave_nothing(simulated, tmp_path):
    """A recipient that cannot be a folder name, met by one thread, stops the others and nothing
    half-written is left (campaign L6), as with one thread."""
    import dataclasses

    import pytest

    from emrr.errors import UserError
    from emrr.rules import engine, ruleset

    rules = ruleset.load("emrr-revised")
    rules = dataclasses.replace(rules, recipient_pattern="^NEVER$")
    out = tmp_path / "reports"
    with pytest.raises(UserError, match="recipients.pattern"):
        engine.report(simulated("demo").path, out, rules, progress=False, workers=2)
    assert not out.exists() or not any(out.rglob("*"))
