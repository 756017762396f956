"""Smoke tests of the national benchmark scripts (benchmarks/README.md), so that a benchmark cannot
rot unseen (issue 8, deliverable 10; review B8: bench_report.py had been broken for 26 commits).

Each script's ``--quick`` mode runs the demo scenario end to end through the same code as the
national run, as the README runs it (``python benchmarks/bench_X.py`` from the repo root), with
TMPDIR set to the test's folder: the figures file must hold the keys the README describes, the
work folders must be gone afterwards, and a --quick run must never write into benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emrr.rules import ruleset as rules

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
PROVENANCE = {"benchmark", "timestamp_utc", "git_commit", "git_dirty", "machine", "quick"}


def run_quick(script: str, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """Run ``benchmarks/SCRIPT --quick`` from the repo root with TMPDIR in ``tmp_path``; its figures."""
    out = tmp_path / "figures.json"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out), "--timeout", "300",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script} --quick failed:\n{done.stdout}\n{done.stderr}"
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert PROVENANCE <= figures.keys() and figures["quick"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json"], "a --quick run left its work behind"
    return done, figures


def test_simulate_quick(tmp_path: Path) -> None:
    """bench_simulate.py --quick: the demo scenario and the SimPy baseline, and the speed-up between them."""
    _, figures = run_quick("bench_simulate.py", tmp_path)
    assert figures["benchmark"] == "simulate"
    [demo] = figures["scenarios"]
    assert demo["scenario"] == "demo" and "error" not in demo, demo
    assert demo["devices"] > 0 and demo["attempts"] > 0 and demo["devices_per_second"] > 0
    assert demo["peak_rss_bytes"] > 0 and demo["speedup_vs_baseline"] > 0
    assert set(demo["targets"]) == {"speedup_ge_20x"}  # the national targets only apply to national
    assert figures["baseline"]["devices"] == 20_000 and figures["baseline"]["devices_per_second"] > 0


def test_report_quick(tmp_path: Path) -> None:
    """bench_report.py --quick: the demo log simulated, every report of the ruleset written, and the
    csv.writer baseline writing as many ECOSMIG-001 records as the engine did."""
    _, figures = run_quick("bench_report.py", tmp_path)
    assert figures["benchmark"] == "report"
    assert "error" not in figures["simulate"] and figures["event_log"]["scenario"] == "demo"
    engine = figures["engine"]
    assert "error" not in engine, engine
    assert set(engine["per_report"]) == set(rules.load(None).reports)
    assert engine["records"] > 0 and engine["process_records_per_second"] > 0
    assert figures["baseline"]["records"] == engine["ecosmig001_records"] > 0
    assert figures["speedup_vs_baseline"]["ecosmig001"] > 0
    assert figures["targets_apply"] is False and set(figures["target_checks"]) == {"wall_le_120s", "peak_rss_le_3gb"}


def test_check_quick(tmp_path: Path) -> None:
    """bench_check.py --quick: the demo's reports made, checked as a whole by `emrr check` and one
    ECOSMIG-001 file by check() in the benchmark's process."""
    _, figures = run_quick("bench_check.py", tmp_path)
    assert figures["benchmark"] == "check"
    assert "error" not in figures["quick_reports"], figures["quick_reports"]
    national = figures["national"]
    assert "error" not in national, national
    assert national["files"] > 0 and national["records"] > 0 and national["records_per_second"] > 0
    assert national["peak_rss_bytes"] > 0 and isinstance(national["errors"], int)
    ours = figures["side_by_side"]["ours"]
    assert "error" not in ours, ours
    assert ours["files"] == 1 and ours["records"] > 0 and ours["records_per_second"] > 0
    assert set(figures["target_checks"]) == {"records_per_second_ge_1m", "peak_rss_le_3gb",
                                             "ratio_vs_frictionless_ge_40x"}


def test_check_one_synthetic_file() -> None:
    """bench_check_one.py (moved out of the library): a small synthetic ECOSMIG-001 file checks clean."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_check_one.py"), "--records", "1000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1,000 detail records" in done.stdout and "findings {}" in done.stdout


@pytest.mark.parametrize("script", ["bench_simulate.py", "bench_report.py", "bench_check.py"])
def test_quick_never_writes_into_results(script: str) -> None:
    """Smoke-test figures say nothing about national scale: --quick refuses an --out in
    benchmarks/results/, before running anything (exit 2, nothing written)."""
    target = BENCHMARKS / "results" / "smoke-guard.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    written = target.exists()
    target.unlink(missing_ok=True)
    assert done.returncode == 2 and "--quick does not write into benchmarks/results/" in done.stderr, done.stderr
    assert not written


def test_smets1_quick(tmp_path: Path) -> None:
    """bench_smets1.py --quick: scenarios/smets1.yaml simulated, reported under smets1-mrr-v3.0 and
    checked (the files against the ruleset, then with ground truth), each step timed with its peak
    memory; both verdicts are PASS."""
    _, figures = run_quick("bench_smets1.py", tmp_path)
    steps = {s["step"]: s for s in figures["steps"]}
    assert list(steps) == ["simulate", "report", "check", "ground_truth"]
    assert all("error" not in s and s["process_wall_seconds"] > 0 and s["peak_tree_rss_bytes"] > 0
               for s in steps.values()), steps
    assert steps["simulate"]["installations"] == 3000 and steps["report"]["files"] > 0
    assert steps["check"]["verdict"] == "PASS" and steps["ground_truth"]["verdict"] == "PASS"


def test_sweep_quick(tmp_path: Path) -> None:
    """bench_sweep.py --quick: the demo scenario's seeds swept with two Dask workers, one, and one
    after another without Dask; the KPI tables agree whatever the number of workers."""
    _, figures = run_quick("bench_sweep.py", tmp_path)
    assert figures["kpis_equal_across_worker_counts"] is True and figures["kpi_rows"] > 0
    assert all(figures[k] for k in ("workers_2", "workers_1", "sequential"))


def test_pictures_quick(tmp_path: Path) -> None:
    """bench_pictures.py --quick: the demo run's summary.html written and timed, with its size."""
    _, figures = run_quick("bench_pictures.py", tmp_path)
    assert figures["bytes"] > 0 and figures["best_page_seconds"] > 0


def test_profile_report_quick(tmp_path: Path) -> None:
    """profile_report.py --quick: the SMETS1 scenario's reports timed report by report (rows and
    files, CPU and wall), every report there with its records, its work folder removed."""
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "profile_report.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert PROVENANCE <= figures.keys() and figures["ruleset"] == "smets1-mrr-v3.0"
    per = figures["per_report"]
    assert len(per) == 10 and sum(r["records"] for r in per.values()) > 10_000
    assert all(r["rows_cpu"] >= 0 and r["emit_cpu"] >= 0 for r in per.values()) and figures["cpu_seconds"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json"]
