"""Benchmark ``emrr simulate`` against the one-process-per-device SimPy baseline.

For each scenario the simulator CLI is run as a subprocess from the repo root;
wall time is measured around it and the peak RSS of the whole process tree is
sampled with psutil every 0.2 s.  The simulator's own summary JSON supplies the
device and attempt counts, its wall time and its peak RSS.  The naive baseline
(``baseline_simpy.py``) is then run in this process, and each scenario's
devices/second is divided by the baseline's.  Results go to a JSON file.

Usage::

    python benchmarks/bench_simulate.py [--scenarios regional national]
        [--baseline-devices 200000] [--workers 2]
        [--out benchmarks/results/simulate.json] [--quick]

``--quick`` is the smoke test (tests/test_benchmarks_smoke.py): the demo scenario and a small
baseline, through the same code, in seconds; its figures go to a temporary file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.bench_simulate, or imported by the tests
    from benchmarks import _common as common
    from benchmarks.baseline_simpy import run_baseline
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import _common as common  # type: ignore[no-redef]
    from baseline_simpy import run_baseline  # type: ignore[no-redef]

DEFAULT_OUT = common.RESULTS_DIR / "simulate.json"
QUICK_SCENARIOS = ["demo"]
QUICK_BASELINE_DEVICES = 20_000

#: Targets from the issue.
TARGET_NATIONAL_WALL_SECONDS = 90.0
TARGET_NATIONAL_PEAK_RSS_BYTES = common.THREE_GB
TARGET_SPEEDUP_VS_BASELINE = 20.0


def run_scenario(name: str, workers: int, timeout: float | None) -> dict[str, Any]:
    """Run ``emrr simulate`` on ``scenarios/{name}.yaml`` and collect its figures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"emrr-bench-{name}-"))
    summary_path = workdir / f"{name}.json"
    cmd = [sys.executable, "-m", "emrr", "simulate", f"scenarios/{name}.yaml", "--out", str(workdir / name),
           "--workers", str(workers), "--no-progress", "--summary-json", str(summary_path)]
    result: dict[str, Any] = {"scenario": name, "workers": workers}
    try:
        result.update(common.run_polled(cmd, workdir, "simulate", timeout))
        if "error" in result:
            return result
        summary = common.read_summary(summary_path, result, ("devices", "attempts", "wall_seconds", "peak_rss_bytes"))
        if summary is None:
            result["stderr_tail"] = common.tail(workdir / "simulate.stderr.txt")
            return result
        result.update(
            devices=summary.get("devices"),
            attempts=summary.get("attempts"),
            wall_seconds=summary.get("wall_seconds"),
            devices_per_second=common.ratio(summary.get("devices"), summary.get("wall_seconds")),
            peak_rss_bytes=summary.get("peak_rss_bytes"),
            summary=summary,
        )
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def evaluate_targets(scenario: dict[str, Any]) -> dict[str, bool | None]:
    """Check a scenario's figures against the issue's targets (None: no figure)."""
    checks: dict[str, bool | None] = {}
    speedup = scenario.get("speedup_vs_baseline")
    checks["speedup_ge_20x"] = None if speedup is None else speedup >= TARGET_SPEEDUP_VS_BASELINE
    if scenario["scenario"] == "national":
        wall = common.number(scenario.get("wall_seconds"))
        checks["wall_le_90s"] = None if wall is None else wall <= TARGET_NATIONAL_WALL_SECONDS
        rss = [v for v in (common.number(scenario.get("peak_rss_bytes")),
                           common.number(scenario.get("peak_tree_rss_bytes"))) if v]
        checks["peak_rss_le_3gb"] = None if not rss else max(rss) <= TARGET_NATIONAL_PEAK_RSS_BYTES
        checks["workers_le_2"] = scenario.get("workers", 0) <= 2
    return checks


def print_table(results: dict[str, Any]) -> None:
    """Print a short human-readable table of the results."""
    fmt, mb = common.fmt, common.mb
    rows = []
    for sc in results["scenarios"]:
        failed = [k for k, ok in sc.get("targets", {}).items() if ok is False]
        status = sc.get("error") or ("MISSES " + ", ".join(failed) if failed else "ok")
        rows.append([sc["scenario"], fmt(sc.get("devices"), ",d"), fmt(sc.get("attempts"), ",d"),
                     fmt(sc.get("wall_seconds"), ".1f"), fmt(sc.get("devices_per_second"), ",.0f"),
                     fmt(mb(sc.get("peak_rss_bytes")), ",.0f"), fmt(mb(sc.get("peak_tree_rss_bytes")), ",.0f"),
                     fmt(sc.get("speedup_vs_baseline"), ".1f"), status])
    base = results.get("baseline")
    if base:
        rows.append(["baseline", fmt(base.get("devices"), ",d"), fmt(base.get("attempts"), ",d"),
                     fmt(base.get("wall_seconds"), ".1f"), fmt(base.get("devices_per_second"), ",.0f"),
                     fmt(mb(base.get("peak_rss_bytes")), ",.0f"), "-", "1.0", base.get("error") or "ok"])
    common.print_table([("run", "<12"), ("devices", ">11"), ("attempts", ">11"), ("wall s", ">8"), ("dev/s", ">11"),
                        ("peak RSS MB", ">11"), ("tree RSS MB", ">11"), ("speedup", ">8"), ("status", "")], rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["regional", "national"])
    parser.add_argument(
        "--baseline-devices",
        type=int,
        default=200_000,
        help="devices for the SimPy baseline (0 skips it)",
    )
    parser.add_argument("--baseline-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--timeout", type=float, default=None, help="kill a scenario after this many seconds"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/simulate.json"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test, in seconds: scenarios/demo.yaml and a 20,000-device baseline "
        "(default out TMPDIR/emrr-bench-quick/simulate.json; never benchmarks/results/)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios = QUICK_SCENARIOS
        args.baseline_devices = QUICK_BASELINE_DEVICES
    common.results_path(parser, args, "simulate", DEFAULT_OUT)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the JSON, print the table; 1 if any run failed."""
    args = parse_args(argv)
    results: dict[str, Any] = {
        **common.provenance("simulate", args.quick),
        "targets": {
            "national_wall_seconds_max": TARGET_NATIONAL_WALL_SECONDS,
            "national_peak_rss_bytes_max": TARGET_NATIONAL_PEAK_RSS_BYTES,
            "national_workers_max": 2,
            "speedup_vs_baseline_min": TARGET_SPEEDUP_VS_BASELINE,
        },
        "scenarios": [],
        "baseline": None,
    }
    for name in args.scenarios:
        print(f"running scenario {name} ...", file=sys.stderr, flush=True)
        results["scenarios"].append(run_scenario(name, args.workers, args.timeout))

    if args.baseline_devices > 0:
        print(
            f"running SimPy baseline ({args.baseline_devices:,} devices) ...",
            file=sys.stderr,
            flush=True,
        )
        try:
            results["baseline"] = run_baseline(
                n_devices=args.baseline_devices, seed=args.baseline_seed
            )
        except Exception as exc:  # noqa: BLE001 - record it; the scenarios still get written
            results["baseline"] = {"devices": args.baseline_devices, "error": repr(exc)}

    base_rate = (results["baseline"] or {}).get("devices_per_second")
    for sc in results["scenarios"]:
        sc["speedup_vs_baseline"] = common.ratio(sc.get("devices_per_second"), base_rate)
        sc["targets"] = evaluate_targets(sc)

    common.write_json_atomic(args.out, results)
    print_table(results)
    print(f"\nresults written to {args.out}")
    failed = any("error" in sc for sc in results["scenarios"]) or bool(
        results["baseline"] and "error" in results["baseline"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
