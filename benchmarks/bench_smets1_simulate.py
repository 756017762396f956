"""Benchmark ``emrr simulate`` on the SMETS1 scenarios (issue 10's target: the national scenario simulated in
at most 120 s and 3 GB on a 2-core machine).

The simulator CLI runs as a subprocess from the repo root, timed around it, the peak RSS of its process
tree sampled every 0.2 s (``_common.run_polled``); its CPU time is that of the finished children
(``resource.RUSAGE_CHILDREN``), which does not grow when other work shares the cores as the wall time does
(the load averages before and after are recorded beside it); its summary JSON gives the counts. Results go
to ``benchmarks/results/smets1_simulate.json``.

Usage::

    python benchmarks/bench_smets1_simulate.py [--scenarios smets1_national] [--workers 2] [--out FILE] [--quick]

``--quick`` runs scenarios/smets1.yaml only, its figures to a temporary file (a smoke test, not a record).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.bench_smets1_simulate, or imported by the tests
    from benchmarks import _common as common
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import _common as common  # type: ignore[no-redef]

DEFAULT_OUT = common.RESULTS_DIR / "smets1_simulate.json"
TARGET_WALL_SECONDS = 120.0  # issue 10, "Targets"
TARGET_PEAK_RSS_BYTES = common.THREE_GB


def run_scenario(name: str, workers: int, timeout: float | None) -> dict[str, Any]:
    """Run ``emrr simulate`` on ``scenarios/{name}.yaml`` and collect its figures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"emrr-bench-{name}-"))
    summary_path = workdir / f"{name}.json"
    cmd = [sys.executable, "-m", "emrr", "simulate", f"scenarios/{name}.yaml", "--out", str(workdir / name),
           "--workers", str(workers), "--no-progress", "--summary-json", str(summary_path)]
    result: dict[str, Any] = {"scenario": name, "workers": workers}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]  # others sharing the cores
    try:
        result.update(common.run_polled(cmd, workdir, "simulate", timeout))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        result["cpu_user_seconds"] = round(after.ru_utime - before.ru_utime, 2)
        result["cpu_system_seconds"] = round(after.ru_stime - before.ru_stime, 2)
        if "error" in result:
            return result
        summary = common.read_summary(summary_path, result, ("installations", "event_rows", "wall_seconds"))
        if summary is None:
            return result
        for key in ("installations", "authorisations", "event_rows", "migration_completed", "wall_seconds",
                    "peak_rss_bytes", "shards"):
            result[key] = summary.get(key)
        wall = common.number(result.get("process_wall_seconds"))
        peak = common.number(result.get("peak_tree_rss_bytes"))
        result["within_targets"] = (wall is not None and wall <= TARGET_WALL_SECONDS
                                    and peak is not None and peak <= TARGET_PEAK_RSS_BYTES)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["smets1_national"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="scenarios/smets1.yaml only; figures to a temporary file")
    args = parser.parse_args(argv)
    common.results_path(parser, args, "smets1_simulate", DEFAULT_OUT)
    scenarios = ["smets1"] if args.quick else args.scenarios
    runs = [run_scenario(name, args.workers, args.timeout) for name in scenarios]
    data = {**common.provenance("smets1_simulate", args.quick),
            "targets": {"wall_seconds": TARGET_WALL_SECONDS, "peak_tree_rss_bytes": TARGET_PEAK_RSS_BYTES},
            "runs": runs}
    common.write_json_atomic(args.out, data)
    common.print_table(
        [("scenario", "<16"), ("installations", ">13"), ("event rows", ">12"), ("wall s", ">8"), ("CPU s", ">8"),
         ("peak MB", ">8"), ("targets", "")],
        [(r["scenario"], common.fmt(r.get("installations"), ",.0f"), common.fmt(r.get("event_rows"), ",.0f"),
          common.fmt(r.get("process_wall_seconds"), ".1f"),
          common.fmt((r.get("cpu_user_seconds") or 0) + (r.get("cpu_system_seconds") or 0), ".1f"),
          common.fmt(common.mb(r.get("peak_tree_rss_bytes")), ",.0f"),
          r.get("error") or ("met" if r.get("within_targets") else "missed")) for r in runs])
    print(f"results: {args.out}")
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
