"""Benchmark the SMETS1 regime end to end: ``emrr simulate``, ``emrr report`` and ``emrr check`` of one
scenario (issue 10's targets: ``scenarios/smets1_national.yaml`` simulated, reported and checked, each step
in at most 120 s and 3 GB on a 2-core machine).

Each step runs as a subprocess from the repo root (``_common.run_polled``: wall time around it, the peak
RSS of its process tree sampled every 0.2 s, its CPU time from ``RUSAGE_CHILDREN``), one after the other
on the same event log and reports, in a work folder removed at the end (``--keep`` keeps it). The
summaries of simulate and report give the counts; the check's verdict is its exit code (0: no error).
Results go to ``benchmarks/results/smets1.json``.

Usage::

    python benchmarks/bench_smets1.py [--scenario smets1_national] [--ruleset smets1-mrr-v3.0] [--workers 2]
        [--work DIR] [--keep] [--out FILE] [--timeout SECONDS] [--quick] [--ground-truth]

``--workers`` is the simulator's processes and the report engine's threads (``emrr report --workers``, and
the reference engine's of ``emrr check --events --workers``).

``--quick`` runs scenarios/smets1.yaml, its figures to a temporary file (the smoke test, not a record).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.bench_smets1, or imported by the tests
    from benchmarks import _common as common
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import _common as common  # type: ignore[no-redef]

DEFAULT_OUT = common.RESULTS_DIR / "smets1.json"
TARGET_WALL_SECONDS = 120.0  # issue 10, "Targets": each step
TARGET_PEAK_RSS_BYTES = common.THREE_GB


def steps(scenario: str, ruleset: str, workers: int, work: Path,
          ground_truth: bool = False) -> list[tuple[str, list[str], tuple[int, ...]]]:
    """(name, command, exit codes that are not a failure of the step) of each step: the check is the
    conformance check of the files against the ruleset (the issue's "checked"); ``ground_truth`` adds
    ``emrr check --events``, which runs the report engine again as its oracle and matches every record
    (its time is the report's and the check's together, and more)."""
    log, reports = work / "events", work / "reports"
    emrr = [sys.executable, "-m", "emrr"]
    return [
        ("simulate", [*emrr, "simulate", f"scenarios/{scenario}.yaml", "--out", str(log), "--workers", str(workers),
                      "--no-progress", "--summary-json", str(work / "simulate.json")], (0,)),
        ("report", [*emrr, "report", "--events", str(log), "--out", str(reports), "--ruleset", ruleset,
                    "--workers", str(workers), "--no-progress", "--summary-json", str(work / "report.json")], (0,)),
        # exit 1 is a verdict (errors found), not a failure to run: recorded as such
        ("check", [*emrr, "check", str(reports), "--ruleset", ruleset], (0, 1)),
    ] + ([("ground_truth", [*emrr, "check", str(reports), "--events", str(log), "--ruleset", ruleset,
                             "--workers", str(workers)], (0, 1))] if ground_truth else [])


def run(scenario: str, ruleset: str, workers: int, work: Path, timeout: float | None,
        ground_truth: bool = False) -> list[dict[str, Any]]:
    results = []
    for name, cmd, ok in steps(scenario, ruleset, workers, work, ground_truth):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = {"step": name, **common.run_polled(cmd, work / "logs", name, timeout, ok_codes=ok)}
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # what the step cost, whatever else ran beside it
        result["cpu_user_seconds"] = round(after.ru_utime - before.ru_utime, 2)
        result["cpu_system_seconds"] = round(after.ru_stime - before.ru_stime, 2)
        wall, peak = common.number(result.get("process_wall_seconds")), common.number(result.get("peak_tree_rss_bytes"))
        result["within_targets"] = (wall is not None and wall <= TARGET_WALL_SECONDS
                                    and peak is not None and peak <= TARGET_PEAK_RSS_BYTES)
        if name in ("simulate", "report") and "error" not in result:
            summary = common.read_summary(work / f"{name}.json", result, ())
            if summary is not None:
                keys = ("installations", "event_rows") if name == "simulate" else ("files", "records")
                result.update({k: summary.get(k) for k in keys})
        if name in ("check", "ground_truth") and "error" not in result:
            result["verdict"] = "PASS" if result["returncode"] == 0 else "FAIL"
        results.append(result)
        if "error" in result:
            break  # the next step has nothing to read
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="smets1_national")
    parser.add_argument("--ruleset", default="smets1-mrr-v3.0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="scenarios/smets1.yaml; figures to a temporary file "
                        "(with the ground-truth check)")
    parser.add_argument("--ground-truth", action="store_true", help="also time emrr check --events (ground truth)")
    args = parser.parse_args(argv)
    common.results_path(parser, args, "smets1", DEFAULT_OUT)
    scenario = "smets1" if args.quick else args.scenario
    work = args.work or Path(tempfile.mkdtemp(prefix=f"emrr-bench-{scenario}-"))
    try:
        results = run(scenario, args.ruleset, args.workers, work, args.timeout, args.ground_truth or args.quick)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    data = {**common.provenance("smets1", args.quick), "scenario": scenario, "ruleset": args.ruleset,
            "workers": args.workers,
            "targets": {"wall_seconds_per_step": TARGET_WALL_SECONDS, "peak_tree_rss_bytes": TARGET_PEAK_RSS_BYTES},
            "steps": results}
    common.write_json_atomic(args.out, data)
    common.print_table(
        [("step", "<12"), ("wall s", ">8"), ("CPU s", ">8"), ("peak MB", ">8"), ("what", "<40"), ("targets", "")],
        [(r["step"], common.fmt(r.get("process_wall_seconds"), ".1f"),
          common.fmt((r.get("cpu_user_seconds") or 0) + (r.get("cpu_system_seconds") or 0), ".1f"),
          common.fmt(common.mb(r.get("peak_tree_rss_bytes")), ",.0f"),
          (f"{r.get('installations') or 0:,} installations, {r.get('event_rows') or 0:,} event rows"
           if r["step"] == "simulate" else f"{r.get('files') or 0:,} files, {r.get('records') or 0:,} records"
           if r["step"] == "report" else r.get("verdict", "")),
          r.get("error") or ("met" if r.get("within_targets") else "missed")) for r in results])
    print(f"results: {args.out}")
    return 1 if any("error" in r for r in results) or len(results) < 3 else 0


if __name__ == "__main__":
    raise SystemExit(main())
