"""Benchmark ``emrr check``: the national report output, and one large file beside frictionless.

1. **National.** ``python -m emrr check DIR --json WORK/check-national.json`` is run as a
   subprocess from the repo root on the report engine's national output (``--reports DIR``,
   default ``out/national-reports``: ``bench_report.py --keep`` or ``emrr report`` writes it),
   with the RSS of its process tree sampled with psutil every 0.2 s.  Recorded: files, detail
   records, findings per check (from the verdict JSON), the checker's own time (the seconds it
   prints), the process wall time, detail records/s over each, the polled peak tree RSS and the
   child's ``ru_maxrss``.
2. **One file, beside frictionless.**  The largest ECOSMIG-001 file of the output is checked
   alone by ``conformance.checker.check`` (in this process, the ruleset loaded beforehand; the
   file copied into a work folder under its recipient's folder), and its detail records are
   validated by frictionless (``frictionless>=5``: ``pip install -e '.[bench]'``) against an
   equivalent Table Schema built from the ruleset's ECOSMIG-001 layout: each field a string with
   its ``maxLength`` and ``required`` constraints (an enum for a constant or a closed list, a
   ``[0-9]+`` pattern for an Integer), a DateTime a ``datetime`` with the ruleset's format.
   frictionless cannot read the header/trailer layout, so the detail records are first written
   to a plain CSV with a header row of the field names (not timed).  Timed: our ``check()``
   call (reading the file included) and frictionless's ``Resource.validate()`` (reading the CSV
   included), each the best of ``--repeat`` runs after a warm-up; our process's malloc tuned as
   ``emrr check`` tunes it (``emrr/memory.py``: freed buffers kept for the next file). Ratio:
   our records/s over frictionless's (best against best; the medians' ratio is recorded too).

Results go to ``benchmarks/results/check.json`` (written atomically) with machine info, the load
average around each step (the machine may be shared), the git commit and the targets, and a
short table is printed.

Usage::

    python benchmarks/bench_check.py [--reports out/national-reports] [--repeat 15]
        [--work benchmarks/.work] [--out benchmarks/results/check.json]
        [--skip-national] [--skip-frictionless] [--timeout SECONDS] [--keep] [--quick]

``--quick`` is the smoke test (tests/test_benchmarks_smoke.py): the demo scenario's reports are
made first (``emrr run``) and go through the same two steps, in seconds, in a work folder of its
own; frictionless runs only if installed; the figures go to a temporary file.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.bench_check, or imported by the tests
    from benchmarks import _common as common
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import _common as common  # type: ignore[no-redef]

DEFAULT_REPORTS = common.REPO_ROOT / "out" / "national-reports"
DEFAULT_WORK = common.REPO_ROOT / "benchmarks" / ".work"
DEFAULT_OUT = common.RESULTS_DIR / "check.json"
REPORT_ID = "ECOSMIG-001"

#: Targets from the issue.  "3 GB" is read as 3 * 10**9 bytes (the stricter reading); records/s
#: is taken over the whole process wall time (interpreter start and ruleset load included).
TARGET_RECORDS_PER_SECOND = 1_000_000
TARGET_PEAK_RSS_BYTES = common.THREE_GB
TARGET_RATIO_VS_FRICTIONLESS = 40.0

DEFAULT_REPEAT = 15
QUICK_REPEAT = 3
QUICK_SCENARIO = "demo"

_SECONDS = re.compile(r"detail records in ([0-9.]+) s")


def load() -> dict[str, float]:
    """The 1, 5 and 15 minute load averages (the machine may be shared with other jobs)."""
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


# --------------------------------------------------------------------------- 1. the national output


def run_national(reports: Path, work: Path, timeout: float | None) -> dict[str, Any]:
    """``emrr check`` on ``reports`` as a subprocess, polled; figures from its verdict JSON."""
    verdict_path = work / "check-national.json"
    cmd = [sys.executable, "-m", "emrr", "check", str(reports), "--json", str(verdict_path)]
    result: dict[str, Any] = {"reports": str(reports), "load_before": load()}
    # exit status 1: errors were found, which is a verdict, not a failure
    result.update(common.run_polled(cmd, work, "check-national", timeout, ok_codes=(0, 1)))
    result.update(
        load_after=load(),
        # the largest child waited for so far: this one (before it only git ran)
        child_ru_maxrss_bytes=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    )
    if "error" in result:
        return result
    stdout_path = work / "check-national.stdout.txt"
    elapsed = result["process_wall_seconds"]
    try:
        verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        result["error"] = f"cannot read the verdict JSON: {exc}"
        return result
    stdout = stdout_path.read_text(encoding="utf-8", errors="replace")
    found = _SECONDS.search(stdout)
    records = verdict.get("records")
    result.update(
        files=verdict.get("files"),
        records=records,
        errors=verdict.get("errors"),
        warnings=verdict.get("warnings"),
        totals=verdict.get("totals"),
        checker_seconds=float(found.group(1)) if found else None,
        records_per_second=common.ratio(records, elapsed),
    )
    result["checker_records_per_second"] = common.ratio(records, result["checker_seconds"])
    result["peak_rss_bytes"] = max(result["peak_tree_rss_bytes"], result["child_ru_maxrss_bytes"])
    return result


# --------------------------------------------------------------------------- 2. one file, beside frictionless


def largest_file(reports: Path, report_id: str = REPORT_ID) -> Path | None:
    """The largest ``{report_id}_*.csv`` under ``reports`` (by size; ties by path)."""
    best: tuple[int, str] | None = None
    for folder, dirs, names in os.walk(reports):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.startswith(report_id + "_") and name.endswith(".csv"):
                path = os.path.join(folder, name)
                key = (os.path.getsize(path), path)
                if best is None or key > best:
                    best = key
    return Path(best[1]) if best else None


def table_schema(rs: Any, report_id: str = REPORT_ID) -> dict[str, Any]:
    """A Table Schema equivalent to the ruleset's detail layout of ``report_id``: the field
    checks of docs/checks.md (type, length, mandatory, allowed values, constants) as types and
    constraints."""
    fields = []
    for f in rs.reports[report_id].detail:
        constraints: dict[str, Any] = {}
        field: dict[str, Any] = {"name": f.name}
        if f.type in ("datetime", "date"):
            field["type"] = f.type
            field["format"] = rs.datetime_format if f.type == "datetime" else rs.date_format
        else:
            field["type"] = "string"
            constraints["maxLength"] = f.max_length
            if f.type == "integer":
                constraints["pattern"] = "[0-9]+"
        if f.mandatory:
            constraints["required"] = True
        if f.source_kind == "constant":
            constraints["enum"] = [f.source]
        elif f.enum:
            constraints["enum"] = list(f.enum)
        field["constraints"] = constraints
        fields.append(field)
    return {"fields": fields}


def plain_csv(source: Path, target: Path, names: list[str]) -> int:
    """The detail records of ``source`` (between its header and trailer) as a plain CSV with a
    header row of ``names``; returns the number of records written."""
    lines = source.read_bytes().split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    body = lines[1:-1]
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(names)
    with target.open("wb") as out:
        out.write(header.getvalue().encode())
        out.write(b"\r\n".join(body))
        out.write(b"\r\n")
    return len(body)


def _best(times: list[float]) -> dict[str, Any]:
    return {"runs_seconds": times, "best_seconds": min(times), "median_seconds": statistics.median(times)}


def run_ours(source: Path, work: Path, repeat: int) -> dict[str, Any]:
    """``check()`` on a folder holding ``source`` alone (under its recipient's folder)."""
    from emrr import memory
    from emrr.conformance.checker import check
    from emrr.rules import ruleset as rules

    tuned = memory.keep_freed_memory()  # as `emrr check` does (emrr/memory.py)
    folder = work / "one-file" / source.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / source.name)
    rs = rules.load(None)
    check(folder.parent, rs)  # warm-up: imports, caches
    times, verdict = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        verdict = check(folder.parent, rs)
        times.append(time.perf_counter() - started)
    result = _best(times)
    result.update(records=verdict.records, files=verdict.files, totals=verdict.totals, malloc_tuned=tuned,
                  records_per_second=common.ratio(verdict.records, result["best_seconds"]),
                  median_records_per_second=common.ratio(verdict.records, result["median_seconds"]))
    return result


def run_frictionless(source: Path, work: Path, repeat: int) -> dict[str, Any]:
    """frictionless validating ``source``'s detail records against the equivalent Table Schema."""
    try:
        import frictionless
        from frictionless import Resource, Schema
    except ImportError:
        return {"error": "frictionless is not installed: pip install -e '.[bench]' (frictionless>=5)"}
    from emrr.rules import ruleset as rules

    rs = rules.load(None)
    descriptor = table_schema(rs)
    plain = work / "frictionless-detail.csv"
    rows = plain_csv(source, plain, [f["name"] for f in descriptor["fields"]])
    schema = Schema.from_descriptor(descriptor)

    def validate():
        resource = Resource(path=plain.name, basepath=str(plain.parent), schema=schema, format="csv",
                            encoding="utf-8")
        return resource.validate()

    validate()  # warm-up
    times, report = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        report = validate()
        times.append(time.perf_counter() - started)
    result = _best(times)
    task = report.tasks[0] if report.tasks else None
    validated = task.stats.get("rows") if task is not None else None
    result.update(
        version=frictionless.__version__,
        schema=descriptor,
        csv=str(plain),
        records=rows,
        rows_validated=validated,
        valid=report.valid,
        errors=[e[:2] for e in report.flatten(["type", "note"])[:5]],
        records_per_second=common.ratio(rows, result["best_seconds"]),
        median_records_per_second=common.ratio(rows, result["median_seconds"]),
    )
    if validated is not None and validated != rows:
        result["warning"] = f"frictionless validated {validated} rows of {rows}"
    return result


def run_side_by_side(reports: Path, work: Path, repeat: int, skip_frictionless: bool) -> dict[str, Any]:
    source = largest_file(reports)
    if source is None:
        return {"error": f"no {REPORT_ID} file under {reports}"}
    result: dict[str, Any] = {"file": str(source), "bytes": source.stat().st_size, "repeat": repeat,
                              "load_before": load()}
    try:
        result["ours"] = run_ours(source, work, repeat)
    except Exception as exc:  # noqa: BLE001 - record it; the rest still gets written
        result["ours"] = {"error": repr(exc)}
    if not skip_frictionless:
        try:
            result["frictionless"] = run_frictionless(source, work, repeat)
        except Exception as exc:  # noqa: BLE001
            result["frictionless"] = {"error": repr(exc)}
        result["ratio"] = common.ratio((result["ours"]).get("records_per_second"),
                                 (result["frictionless"]).get("records_per_second"))
        result["median_ratio"] = common.ratio((result["ours"]).get("median_records_per_second"),
                                        (result["frictionless"]).get("median_records_per_second"))
    result["load_after"] = load()
    return result


# --------------------------------------------------------------------------- results


def evaluate_targets(results: dict[str, Any]) -> dict[str, bool | None]:
    national = results.get("national") or {}
    rate = common.number(national.get("records_per_second"))
    rss = common.number(national.get("peak_rss_bytes"))
    ratio = common.number((results.get("side_by_side") or {}).get("ratio"))
    return {
        "records_per_second_ge_1m": None if rate is None else rate >= TARGET_RECORDS_PER_SECOND,
        "peak_rss_le_3gb": None if rss is None else rss <= TARGET_PEAK_RSS_BYTES,
        "ratio_vs_frictionless_ge_40x": None if ratio is None else ratio >= TARGET_RATIO_VS_FRICTIONLESS,
    }


def print_table(results: dict[str, Any]) -> None:
    """Print a short human-readable table of the results."""
    fmt, mb = common.fmt, common.mb
    rows = []
    made = results.get("quick_reports")
    if made:
        rows.append([f"quick: {QUICK_SCENARIO} reports", "", "", fmt(made.get("process_wall_seconds"), ".2f"), "",
                     fmt(mb(made.get("peak_tree_rss_bytes")), ",.0f"), made.get("error") or "ok (emrr run)"])
    nat = results.get("national")
    if nat:
        rows.append(["national (process)", fmt(nat.get("files"), ",d"), fmt(nat.get("records"), ",d"),
                     fmt(nat.get("process_wall_seconds"), ".2f"), fmt(nat.get("records_per_second"), ",.0f"),
                     fmt(mb(nat.get("peak_rss_bytes")), ",.0f"), nat.get("error") or "ok"])
        rows.append(["national (checker)", "", "", fmt(nat.get("checker_seconds"), ".2f"),
                     fmt(nat.get("checker_records_per_second"), ",.0f")])
    side = results.get("side_by_side") or {}
    for key, label in (("ours", "one file: emrr check"), ("frictionless", "one file: frictionless")):
        run = side.get(key)
        if run:
            rows.append([label, "1", fmt(run.get("records"), ",d"), fmt(run.get("best_seconds"), ".4f"),
                         fmt(run.get("records_per_second"), ",.0f"), "",
                         run.get("error") or run.get("warning") or run.get("skipped") or "ok"])
    common.print_table([("run", "<22"), ("files", ">7"), ("records", ">12"), ("seconds", ">9"),
                        ("records/s", ">12"), ("peak RSS MB", ">11"), ("status", "")], rows)
    if results.get("frictionless_skipped"):
        print(f"frictionless skipped: {results['frictionless_skipped']}")
    if side:
        print(f"\nratio (our records/s / frictionless's, best of {side.get('repeat')}): "
              f"{fmt(side.get('ratio'), '.1f')}x (median {fmt(side.get('median_ratio'), '.1f')}x); "
              f"file {side.get('file')}")
    checks = results.get("target_checks") or {}
    print("targets: " + ", ".join(f"{k} {'-' if v is None else ('PASS' if v else 'MISS')}" for k, v in checks.items()))
    print(f"load average at start: {results.get('load_start')}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, default=None,
                        help="the report engine's national output (default out/national-reports)")
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"timed runs of the one-file comparison, best kept (default {DEFAULT_REPEAT}; "
                        f"--quick {QUICK_REPEAT})")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder (default benchmarks/.work: /tmp is slow on the reference machine; "
                        "--quick: a new folder in TMPDIR)")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/check.json")
    parser.add_argument("--timeout", type=float, default=None, help="kill the national check after this many seconds")
    parser.add_argument("--skip-national", action="store_true", help="only the one-file comparison")
    parser.add_argument("--skip-frictionless", action="store_true", help="no frictionless run")
    parser.add_argument("--keep", action="store_true", help="keep the work files (verdict JSON, logs, plain CSV)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test, in seconds: the reports of scenarios/{QUICK_SCENARIO}.yaml made first "
                        "(emrr run) and checked by the same steps; frictionless only if installed (default out "
                        "TMPDIR/emrr-bench-quick/check.json; never benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick and args.reports is not None:
        parser.error(f"--quick checks the reports of scenarios/{QUICK_SCENARIO}.yaml it makes; leave --reports out")
    if args.reports is None:
        args.reports = DEFAULT_REPORTS
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else DEFAULT_REPEAT
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.work is None:
        # a quick run's own folder (removed at the end unless --keep), apart from a national run's
        args.work = Path(tempfile.gettempdir()) / f"emrr-bench-check-quick-{os.getpid()}" if args.quick \
            else DEFAULT_WORK
    common.results_path(parser, args, "check", DEFAULT_OUT)
    return args


def make_quick_reports(work: Path, timeout: float | None) -> dict[str, Any]:
    """``emrr run scenarios/demo.yaml --out WORK/demo --no-check``: the reports a --quick run checks
    (in WORK/demo/reports), polled like the other steps."""
    out = work / QUICK_SCENARIO
    cmd = [sys.executable, "-m", "emrr", "run", f"scenarios/{QUICK_SCENARIO}.yaml", "--out", str(out),
           "--no-progress", "--no-check"]
    result: dict[str, Any] = {"scenario": QUICK_SCENARIO, "reports": str(out / "reports")}
    result.update(common.run_polled(cmd, work, "quick-run", timeout))
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON, print the table; 1 if any step failed, 2 if there are no reports."""
    args = parse_args(argv)
    reports: Path | None = args.reports if args.reports.is_absolute() else (Path.cwd() / args.reports)
    if not args.quick and not reports.is_dir():
        print(f"bench_check: {args.reports} does not exist; write the national reports first:\n"
              f"  .venv/bin/python benchmarks/bench_report.py --keep   (reports kept in benchmarks/.work/reports)\n"
              f"  or: emrr simulate scenarios/national.yaml --out out/national && "
              f"emrr report --events out/national --out out/national-reports\n"
              f"then pass --reports DIR if they are elsewhere", file=sys.stderr)
        return 2
    skip_frictionless = args.skip_frictionless
    if args.quick and not skip_frictionless and importlib.util.find_spec("frictionless") is None:
        skip_frictionless = True  # a smoke test runs without the bench extra; a full run reports it missing
    created_work = not args.work.exists()
    work = args.work / "check"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        **common.provenance("check", args.quick),
        "load_start": load(),
        "targets": {
            "national_records_per_second_min": TARGET_RECORDS_PER_SECOND,
            "national_peak_rss_bytes_max": TARGET_PEAK_RSS_BYTES,
            "ratio_vs_frictionless_min": TARGET_RATIO_VS_FRICTIONLESS,
        },
        "quick_reports": None,
        "frictionless_skipped": None if skip_frictionless == args.skip_frictionless
        else "frictionless is not installed (pip install -e '.[bench]')",
        "national": None,
        "side_by_side": None,
    }
    try:
        if args.quick:
            print(f"writing the reports of scenarios/{QUICK_SCENARIO}.yaml ...", file=sys.stderr, flush=True)
            results["quick_reports"] = made = make_quick_reports(work, args.timeout)
            reports = None if "error" in made else Path(made["reports"])  # recorded; nothing to check
        if reports is not None and not args.skip_national:
            print(f"checking {reports} ...", file=sys.stderr, flush=True)
            results["national"] = run_national(reports, work, args.timeout)
            if args.quick:
                results["national"]["note"] = "child_ru_maxrss_bytes covers the quick run's emrr run too"
        if reports is not None:
            print("one file: emrr check beside frictionless ...", file=sys.stderr, flush=True)
            results["side_by_side"] = run_side_by_side(reports, work, args.repeat, skip_frictionless)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if created_work:
                shutil.rmtree(args.work, ignore_errors=True)
    results["load_end"] = load()
    results["target_checks"] = evaluate_targets(results)
    common.write_json_atomic(args.out, results)
    print_table(results)
    print(f"\nresults written to {args.out}")
    parts = (results["quick_reports"], results["national"], results["side_by_side"])
    failed = [part for part in parts if part and "error" in part]
    side = results["side_by_side"] or {}
    failed += [run for run in (side.get("ours"), side.get("frictionless")) if run and "error" in run]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
