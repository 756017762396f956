"""Benchmark ``emrr sweep``: N seeds of a scenario on a LocalCluster of two workers, of one worker,
and the same seeds run one after another in one process without Dask (``emrr.sweep.run_seed`` in a
loop: the same work per seed, nothing else).

Issue 12's targets, for 20 seeds of ``scenarios/regional.yaml`` on the 2-core machine: two workers
at least 1.7 times as fast as one, and within 10% of the sequential run. Each sweep is the CLI run
as a subprocess from the repo root (``emrr sweep ... --no-progress``), wall time measured around it;
the sequential run is a child process of this script. The KPI tables of the two sweeps are compared
(timing columns excepted). The machine's load average (``os.getloadavg``) is recorded before and
after each step: the machine is shared, and a loaded machine slows every figure.

Usage::

    python benchmarks/bench_sweep.py [--scenario regional] [--seeds 20] [--first-seed 0]
        [--work DIR] [--out benchmarks/results/sweep.json] [--timeout SECONDS] [--quick]

``--quick``: the demo scenario, 2 seeds, figures to a temporary file (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks import _common as common
except ImportError:  # run as a script: this folder is sys.path[0]
    import _common as common  # type: ignore[no-redef]

TARGET_SCENARIO = "regional"
TARGET_SEEDS = 20
TARGET_SPEEDUP_MIN = 1.7  # two workers over one
TARGET_OVER_SEQUENTIAL_MAX = 1.10  # two workers' wall time over the sequential run's... per worker count


def load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen}


def run_cli(args: list[str], work: Path, name: str, timeout: float | None) -> dict[str, Any]:
    before = load()
    rc, wall, peak, samples, timed_out = common.poll(
        [sys.executable, "-m", "emrr", *args], work / f"{name}.out", work / f"{name}.err", timeout)
    result = {"command": ["emrr", *args], "returncode": rc, "wall_seconds": wall, "peak_tree_rss_bytes": peak,
              "load_before": before, "load_after": load()}
    if rc != 0 or timed_out:
        result["error"] = "timed out" if timed_out else f"exit {rc}"
        result["stderr_tail"] = common.tail(work / f"{name}.err")
    return result


def sequential_child(scenario: str, first: int, seeds: int) -> int:
    """In a child process: the seeds one after another, no Dask; prints the wall time as JSON."""
    from emrr.rules import ruleset
    from emrr.sweep import run_seed

    text = Path(scenario).read_text(encoding="utf-8")
    rules = ruleset.load(None)
    started = time.perf_counter()
    errors = {}
    for seed in range(first, first + seeds):
        result = run_seed(text, scenario, seed, rules, False, None)
        if result["error"]:
            errors[seed] = result["error"]
    print(json.dumps({"wall_seconds": time.perf_counter() - started, "errors": errors}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default=TARGET_SCENARIO)
    parser.add_argument("--seeds", type=int, default=TARGET_SEEDS)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sequential-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.scenario, args.seeds = "demo", 2
    scenario = str(common.REPO_ROOT / "scenarios" / f"{args.scenario}.yaml")
    if args.sequential_child:
        return sequential_child(scenario, args.first_seed, args.seeds)
    out = args.out or (Path(tempfile.mkdtemp()) / "sweep.json" if args.quick else
                       common.RESULTS_DIR / "sweep.json")
    work = (args.work or Path(tempfile.mkdtemp(prefix="emrr-bench-sweep-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    seeds = ["--seeds", str(args.seeds), "--first-seed", str(args.first_seed)]
    results: dict[str, Any] = {**common.provenance("sweep", args.quick), "scenario": args.scenario,
                               "seeds": args.seeds, "first_seed": args.first_seed,
                               "targets": {"scenario": TARGET_SCENARIO, "seeds": TARGET_SEEDS,
                                           "speedup_two_over_one_min": TARGET_SPEEDUP_MIN,
                                           "two_workers_over_sequential_ideal_max": TARGET_OVER_SEQUENTIAL_MAX}}
    try:
        for workers in (2, 1):
            print(f"sweep, {workers} worker(s) ...", file=sys.stderr, flush=True)
            results[f"workers_{workers}"] = run_cli(
                ["sweep", scenario, *seeds, "--workers", str(workers), "--out", str(work / f"w{workers}"),
                 "--no-progress"], work, f"w{workers}", args.timeout)
        print("the same seeds one after another, no Dask ...", file=sys.stderr, flush=True)
        before = load()
        rc, wall, peak, _, timed_out = common.poll(
            [sys.executable, __file__, "--sequential-child", "--scenario", args.scenario, *seeds],
            work / "seq.out", work / "seq.err", args.timeout)
        inner = json.loads((work / "seq.out").read_text().strip().splitlines()[-1]) if rc == 0 else {}
        # wall_seconds: the whole process, as the sweeps' (starting Python and importing included)
        results["sequential"] = {"returncode": rc, "wall_seconds": wall, "peak_tree_rss_bytes": peak,
                                 "seeds_loop_seconds": inner.get("wall_seconds"), "errors": inner.get("errors"),
                                 "load_before": before, "load_after": load(),
                                 "command": "emrr.sweep.run_seed(seed) for each seed, one process, no Dask"}
        import polars as pl

        from emrr.sweep import TIMING

        tables = [pl.read_parquet(work / f"w{w}" / "kpis.parquet").drop(TIMING) for w in (1, 2)]
        results["kpis_equal_across_worker_counts"] = tables[0].equals(tables[1])
        results["kpi_rows"] = tables[0].height
        one, two = results["workers_1"]["wall_seconds"], results["workers_2"]["wall_seconds"]
        seq = results["sequential"]["wall_seconds"]
        results["speedup_two_over_one"] = one / two
        # "within 10% of the same seeds run one after another": the sequential run spread over two
        # cores at best halves; two workers are compared with that ideal and with the sequential run
        results["two_workers_over_sequential"] = two / seq
        results["two_workers_over_ideal_half_of_sequential"] = two / (seq / 2)
        results["one_worker_over_sequential"] = one / seq
        results["target_checks"] = {
            "speedup": results["speedup_two_over_one"] >= TARGET_SPEEDUP_MIN,
            "one_worker_within_10pct_of_sequential":
                results["one_worker_over_sequential"] <= TARGET_OVER_SEQUENTIAL_MAX,
            "two_workers_within_10pct_of_half_sequential":
                results["two_workers_over_ideal_half_of_sequential"] <= TARGET_OVER_SEQUENTIAL_MAX}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    common.write_json_atomic(out, results)
    print(json.dumps({k: results.get(k) for k in ("speedup_two_over_one", "two_workers_over_sequential",
                                                  "one_worker_over_sequential", "kpis_equal_across_worker_counts",
                                                  "target_checks")}, indent=2))
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
