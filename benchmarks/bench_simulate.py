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
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import psutil

try:  # run as a script: benchmarks/ is on sys.path
    from baseline_simpy import run_baseline
except ImportError:  # imported as benchmarks.bench_simulate
    from benchmarks.baseline_simpy import run_baseline

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "simulate.json"
QUICK_OUT = REPO_ROOT / "benchmarks" / "results" / "simulate-quick.json"
POLL_SECONDS = 0.2
STDERR_TAIL_LINES = 20

#: Targets from the issue.  "3 GB" is read as 3 * 10**9 bytes (the stricter reading).
TARGET_NATIONAL_WALL_SECONDS = 90.0
TARGET_NATIONAL_PEAK_RSS_BYTES = 3 * 10**9
TARGET_SPEEDUP_VS_BASELINE = 20.0


def tree_rss_bytes(proc: psutil.Process) -> int:
    """Sum of the RSS of ``proc`` and all its live descendants (0 if it has gone)."""
    try:
        members = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


def kill_tree(proc: psutil.Process) -> None:
    """Kill ``proc`` and its descendants (used only on timeout)."""
    try:
        members = [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()


def run_polled(cmd: list[str], stdout_path: Path, stderr_path: Path,
               timeout: float | None) -> tuple[int, float, int, int, bool]:
    """Run ``cmd`` from the repo root, output to files, sampling the RSS of its process tree.

    Returns (return code, wall seconds, peak tree RSS bytes, samples, timed out); on a time-out
    the whole tree is killed. OSError (e.g. no interpreter) reaches the caller.
    """
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        popen = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=err)
        try:
            proc: psutil.Process | None = psutil.Process(popen.pid)
        except psutil.NoSuchProcess:  # exited before we could look at it
            proc = None
        peak = 0
        samples = 0
        timed_out = False
        while popen.poll() is None:
            if proc is not None:
                peak = max(peak, tree_rss_bytes(proc))
                samples += 1
            if timeout is not None and time.perf_counter() - started > timeout:
                timed_out = True
                if proc is not None:
                    kill_tree(proc)
                popen.kill()
                popen.wait()
                break
            time.sleep(POLL_SECONDS)
        returncode = popen.wait()
        return returncode, time.perf_counter() - started, peak, samples, timed_out


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> list[str]:
    """Last ``lines`` lines of a text file (empty if it cannot be read)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except OSError:
        return []


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def run_scenario(name: str, workers: int, timeout: float | None) -> dict[str, Any]:
    """Run ``emrr simulate`` on ``scenarios/{name}.yaml`` and collect its figures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"emrr-bench-{name}-"))
    summary_path = workdir / f"{name}.json"
    cmd = [
        sys.executable,
        "-m",
        "emrr",
        "simulate",
        f"scenarios/{name}.yaml",
        "--out",
        str(workdir / name),
        "--workers",
        str(workers),
        "--summary-json",
        str(summary_path),
    ]
    result: dict[str, Any] = {"scenario": name, "command": cmd, "workers": workers}
    stdout_path = workdir / "stdout.txt"
    stderr_path = workdir / "stderr.txt"
    try:
        returncode, elapsed, peak, samples, timed_out = run_polled(cmd, stdout_path, stderr_path, timeout)
        result.update(
            returncode=returncode,
            process_wall_seconds=elapsed,
            peak_tree_rss_bytes=peak,
            rss_samples=samples,
        )
        if timed_out:
            result["error"] = f"timed out after {timeout} s"
        elif returncode != 0:
            result["error"] = f"exit code {returncode}"
        if returncode != 0 or timed_out:
            result["stderr_tail"] = tail(stderr_path)
            return result
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result["error"] = f"cannot read summary JSON: {exc}"
            result["stderr_tail"] = tail(stderr_path)
            return result
        if not isinstance(summary, dict):
            result["error"] = "summary JSON is not an object"
            return result
        devices = _number(summary.get("devices"))
        wall = _number(summary.get("wall_seconds"))
        result.update(
            devices=summary.get("devices"),
            attempts=summary.get("attempts"),
            wall_seconds=summary.get("wall_seconds"),
            devices_per_second=devices / wall if devices is not None and wall else None,
            peak_rss_bytes=summary.get("peak_rss_bytes"),
            summary=summary,
        )
        missing = [
            k for k in ("devices", "attempts", "wall_seconds", "peak_rss_bytes") if k not in summary
        ]
        if missing:
            result["warning"] = f"summary JSON lacks: {', '.join(missing)}"
        return result
    except OSError as exc:  # e.g. the interpreter cannot be started
        result.update(returncode=None, error=f"cannot run simulator: {exc}")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repo, or None if it cannot be had."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def git_dirty() -> bool | None:
    """Whether the work tree has uncommitted changes, or None if unknown."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(done.stdout.strip())


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU and memory of this machine."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpus_usable": affinity,
        "total_memory_bytes": psutil.virtual_memory().total,
    }


def evaluate_targets(scenario: dict[str, Any]) -> dict[str, bool | None]:
    """Check a scenario's figures against the issue's targets (None: no figure)."""
    checks: dict[str, bool | None] = {}
    speedup = scenario.get("speedup_vs_baseline")
    checks["speedup_ge_20x"] = None if speedup is None else speedup >= TARGET_SPEEDUP_VS_BASELINE
    if scenario["scenario"] == "national":
        wall = _number(scenario.get("wall_seconds"))
        checks["wall_le_90s"] = None if wall is None else wall <= TARGET_NATIONAL_WALL_SECONDS
        rss = [
            v
            for v in (
                _number(scenario.get("peak_rss_bytes")),
                _number(scenario.get("peak_tree_rss_bytes")),
            )
            if v
        ]
        checks["peak_rss_le_3gb"] = None if not rss else max(rss) <= TARGET_NATIONAL_PEAK_RSS_BYTES
        checks["workers_le_2"] = scenario.get("workers", 0) <= 2
    return checks


def _fmt(value: Any, spec: str) -> str:
    """Format a number for the table, or '-' if absent."""
    return "-" if value is None else format(value, spec)


def print_table(results: dict[str, Any]) -> None:
    """Print a short human-readable table of the results."""
    header = (
        f"{'run':<12} {'devices':>11} {'attempts':>11} {'wall s':>8} "
        f"{'dev/s':>11} {'peak RSS MB':>11} {'tree RSS MB':>11} {'speedup':>8}  status"
    )
    print(header)
    print("-" * len(header))
    for sc in results["scenarios"]:
        rss = _number(sc.get("peak_rss_bytes"))
        tree = _number(sc.get("peak_tree_rss_bytes"))
        checks = sc.get("targets", {})
        failed = [k for k, ok in checks.items() if ok is False]
        status = sc.get("error") or ("MISSES " + ", ".join(failed) if failed else "ok")
        print(
            f"{sc['scenario']:<12} {_fmt(sc.get('devices'), ',d'):>11} "
            f"{_fmt(sc.get('attempts'), ',d'):>11} {_fmt(sc.get('wall_seconds'), '.1f'):>8} "
            f"{_fmt(sc.get('devices_per_second'), ',.0f'):>11} "
            f"{_fmt(rss and rss / 1e6, ',.0f'):>11} {_fmt(tree and tree / 1e6, ',.0f'):>11} "
            f"{_fmt(sc.get('speedup_vs_baseline'), '.1f'):>8}  {status}"
        )
    base = results.get("baseline")
    if base:
        rss = _number(base.get("peak_rss_bytes"))
        print(
            f"{'baseline':<12} {_fmt(base.get('devices'), ',d'):>11} "
            f"{_fmt(base.get('attempts'), ',d'):>11} {_fmt(base.get('wall_seconds'), '.1f'):>8} "
            f"{_fmt(base.get('devices_per_second'), ',.0f'):>11} "
            f"{_fmt(rss and rss / 1e6, ',.0f'):>11} {'-':>11} {'1.0':>8}  "
            f"{base.get('error') or 'ok'}"
        )


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temp file and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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
        help="smoke test: scenarios/demo.yaml and a 20,000-device baseline "
        "(default out benchmarks/results/simulate-quick.json)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios = ["demo"]
        args.baseline_devices = 20_000
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the JSON, print the table; 1 if any run failed."""
    args = parse_args(argv)
    results: dict[str, Any] = {
        "benchmark": "simulate",
        "timestamp_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "machine": machine_info(),
        "quick": args.quick,
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

    base_rate = _number((results["baseline"] or {}).get("devices_per_second"))
    for sc in results["scenarios"]:
        rate = _number(sc.get("devices_per_second"))
        sc["speedup_vs_baseline"] = rate / base_rate if rate and base_rate else None
        sc["targets"] = evaluate_targets(sc)

    write_json_atomic(args.out, results)
    print_table(results)
    print(f"\nresults written to {args.out}")
    failed = any("error" in sc for sc in results["scenarios"]) or bool(
        results["baseline"] and "error" in results["baseline"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
