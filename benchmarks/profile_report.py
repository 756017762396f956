"""Where the report engine's time goes, report by report: CPU and wall seconds of selecting the rows
(``Engine.rows``) and of writing the files (``Engine.emit``), summed over every step of a run, with one
thread, in the engine's own order (half a month at a time, every report).

Usage::

    python benchmarks/profile_report.py --events LOG [--ruleset NAME] [--out FILE] [--quick]

The reports go to a temporary folder, removed at the end. Results: ``benchmarks/results/report_profile.json``
(``--quick``: the SMETS1 scenario simulated to a temporary folder, figures to a temporary file). CPU time is
the process's (``time.process_time``: Polars' threads included), so it adds up whatever the load; wall time
does not.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:  # python -m benchmarks.profile_report, or imported by the tests
    from benchmarks import _common as common
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import _common as common  # type: ignore[no-redef]

DEFAULT_OUT = common.RESULTS_DIR / "report_profile.json"


def profile(events: Path, ruleset_name: str | None, work: Path) -> dict:
    from emrr.rules import engine, ruleset
    from emrr.rules.eventlog import EventLog

    log = EventLog.open(events)
    rs = ruleset.load(ruleset_name or ruleset.DEFAULT_RULESETS[log.regime])
    e = engine.Engine(rs, log, work / "reports", progress=False)
    output = engine.Output(e.out_path, log.fingerprint, rs, False)
    summary = engine.Summary(rs.name, str(events), str(e.out_path))
    spent = {rid: {"rows_cpu": 0.0, "emit_cpu": 0.0, "rows_wall": 0.0, "emit_wall": 0.0} for rid in rs.reports}
    started = time.perf_counter()
    try:
        for m0, m1 in e.months():
            for rid, report in rs.reports.items():
                runs = e.runs[rid]
                a, b = np.searchsorted(runs.times, [m0, m1], side="left")
                if b <= a:
                    continue
                c0, w0 = time.process_time(), time.perf_counter()
                rows = e.rows(report, runs, int(a), int(b))
                c1, w1 = time.process_time(), time.perf_counter()
                e.emit(report, runs, rows, output, summary)
                c2, w2 = time.process_time(), time.perf_counter()
                s = spent[rid]
                s["rows_cpu"] += c1 - c0
                s["emit_cpu"] += c2 - c1
                s["rows_wall"] += w1 - w0
                s["emit_wall"] += w2 - w1
    finally:
        output.close()
    per_report = {rid: {**{k: round(v, 2) for k, v in s.items()},
                        "files": summary.per_report.get(rid, engine.ReportSummary()).files,
                        "records": summary.per_report.get(rid, engine.ReportSummary()).records}
                  for rid, s in spent.items()}
    return {"ruleset": rs.name, "events": str(events), "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(sum(s["rows_cpu"] + s["emit_cpu"] for s in spent.values()), 2),
            "per_report": per_report}


def main(argv: list[str] | None = None) -> int:
    from emrr import memory

    memory.keep_freed_polars_memory()  # as `emrr report` does, before Polars loads (emrr/memory.py)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, help="event log (required unless --quick)")
    parser.add_argument("--ruleset", default=None, help="default: the log's regime's default ruleset")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="the SMETS1 scenario; figures to a temporary file")
    args = parser.parse_args(argv)
    common.results_path(parser, args, "report_profile", DEFAULT_OUT)
    if args.events is None and not args.quick:
        parser.error("--events is required (or --quick)")
    work = Path(tempfile.mkdtemp(prefix="emrr-profile-report-"))
    try:
        events = args.events
        if events is None:
            from emrr.sim import regime

            events = work / "events"
            regime.simulate(regime.load(common.REPO_ROOT / "scenarios" / "smets1.yaml"), events, progress=False)
        data = {**common.provenance("report_profile", args.quick), **profile(events, args.ruleset, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    common.write_json_atomic(args.out, data)
    common.print_table(
        [("report", "<12"), ("records", ">12"), ("rows CPU s", ">11"), ("emit CPU s", ">11"), ("wall s", ">8")],
        [(rid, f"{r['records']:,}", common.fmt(r["rows_cpu"], ".1f"), common.fmt(r["emit_cpu"], ".1f"),
          common.fmt(r["rows_wall"] + r["emit_wall"], ".1f")) for rid, r in data["per_report"].items()])
    print(f"total CPU {data['cpu_seconds']:.1f} s, wall {data['wall_seconds']:.1f} s; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
