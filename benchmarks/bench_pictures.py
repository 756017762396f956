"""Benchmark ``summary.html``: the page of a run written from its event log and report folder, as
``emrr run`` and ``emrr report`` write it (``emrr.pictures.write_run_page``), in a fresh process.

Issue 12's target, for the national run: written in under 10 s and under 5 MB. The event log and
the reports are given (``--events LOG --reports DIR``: ``emrr simulate scenarios/national.yaml``
then ``emrr report``; about 40 s + 105 s and 3 GB); each repetition is a child process, polled for
its tree's peak RSS, that prints the page's own time (from opening the log to the page renamed into
place) beside the process's wall time (which adds starting Python and importing the libraries).
The machine's load average is recorded before each repetition.

Usage::

    python benchmarks/bench_pictures.py --events LOG --reports DIR [--repeat 3]
        [--out benchmarks/results/pictures.json] [--quick]

``--quick``: the demo run, simulated and reported into a temporary folder (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks import _common as common
except ImportError:  # run as a script: this folder is sys.path[0]
    import _common as common  # type: ignore[no-redef]

TARGET_SECONDS_MAX = 10.0
TARGET_BYTES_MAX = 5_000_000


def child(events: str, reports: str, page: str) -> int:
    started = time.perf_counter()
    from emrr import pictures
    from emrr.rules import ruleset

    imported = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    written = pictures.write_run_page(events, reports, ruleset.load(None), page)
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds, all threads: what a loaded machine changes least (the wall time waits for the cores)
    print(json.dumps({"page_seconds": time.perf_counter() - imported, "import_seconds": imported - started,
                      "page_cpu_user_seconds": after.ru_utime - before.ru_utime,
                      "page_cpu_system_seconds": after.ru_stime - before.ru_stime,
                      "bytes": written.stat().st_size}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path)
    parser.add_argument("--reports", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    work = Path(tempfile.mkdtemp(prefix="emrr-bench-pictures-"))
    try:
        if args.quick:
            run = work / "demo"
            subprocess.run([sys.executable, "-m", "emrr", "run", "scenarios/demo.yaml", "--out", str(run),
                            "--no-progress", "--no-check"], cwd=common.REPO_ROOT, check=True, capture_output=True)
            args.events, args.reports, args.repeat = run / "events", run / "reports", 1
        if args.events is None or args.reports is None:
            parser.error("--events and --reports are needed (or --quick)")
        out = args.out or ((work.parent / "pictures.json") if args.quick else common.RESULTS_DIR / "pictures.json")
        manifest = json.loads((args.events / "manifest.json").read_text(encoding="utf-8"))
        results: dict[str, Any] = {**common.provenance("pictures", args.quick), "events": str(args.events),
                                   "reports": str(args.reports), "scenario": manifest.get("scenario"),
                                   "event_rows": manifest.get("counts", {}).get("event_rows"),
                                   "targets": {"scenario": "national", "seconds_max": TARGET_SECONDS_MAX,
                                               "bytes_max": TARGET_BYTES_MAX}, "runs": []}
        for i in range(args.repeat):
            load = dict(zip(("1min", "5min", "15min"), os.getloadavg()))
            cmd = [sys.executable, __file__, "--child", str(args.events.resolve()), str(args.reports.resolve()),
                   str(work / "summary.html")]
            rc, wall, peak, _, timed_out = common.poll(cmd, work / f"{i}.out", work / f"{i}.err", args.timeout)
            figures = json.loads((work / f"{i}.out").read_text().strip().splitlines()[-1]) if rc == 0 else {}
            results["runs"].append({"returncode": rc, "process_wall_seconds": wall, "peak_tree_rss_bytes": peak,
                                    "load_before": load, **figures})
            print(f"run {i + 1}: {results['runs'][-1]}", file=sys.stderr, flush=True)
        ok = [r for r in results["runs"] if r["returncode"] == 0]
        best = min(ok, key=lambda r: r["page_seconds"]) if ok else None
        results["best_page_seconds"] = best and best["page_seconds"]
        results["best_process_wall_seconds"] = min(r["process_wall_seconds"] for r in ok) if ok else None
        results["bytes"] = best and best["bytes"]
        results["target_checks"] = {"seconds": bool(best) and best["page_seconds"] < TARGET_SECONDS_MAX,
                                    "bytes": bool(best) and best["bytes"] < TARGET_BYTES_MAX}
        results["command"] = " ".join(["python benchmarks/bench_pictures.py", "--events", str(args.events),
                                       "--reports", str(args.reports), "--repeat", str(args.repeat)])
        common.write_json_atomic(out, results)
        print(json.dumps({k: results[k] for k in ("best_page_seconds", "best_process_wall_seconds", "bytes",
                                                  "target_checks")}, indent=2))
        print(f"figures: {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
