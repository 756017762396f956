"""Monte Carlo sweeps: many seeds of one scenario as Dask tasks (``emrr sweep``).

Each seed's simulate, report (and, with ``check``, check) is one task, ``run_seed``, run on a
``distributed.LocalCluster`` by default or on an existing Dask scheduler given by address. A task
works in a temporary folder of its worker and leaves behind only its seed's key figures (its
files too with ``keep``): one row per report and recipient (files, records, bytes, the largest
file, the busiest day, latency p50/p95/max) with the run's own figures (completion dates, failure
rate, the checker's verdict), and the seed's day-by-day progress.

DIR holds ``sweep.json`` (what the sweep is: the scenario's text digest, the ruleset, --check),
``seeds/seed-N.json`` (each finished seed, written atomically as it arrives), and, at the end,
``kpis.parquet``, ``daily.parquet``, ``failures.json`` and ``sweep.html``. A rerun with the same DIR
skips the seeds already there. The tables hold every finished seed of DIR, sorted by seed, report
and recipient; they are the same bytes whatever the number of workers and wherever the tasks ran,
except the ``timing_*`` columns.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from emrr import pictures
from emrr.contract import ECOS
from emrr.errors import UserError
from emrr.rules.engine import lock_folder
from emrr.rules.eventlog import EventLog
from emrr.rules.ruleset import Ruleset

STATE = "sweep.json"
SEEDS = "seeds"
KPIS = "kpis.parquet"
DAILY = "daily.parquet"
FAILURES = "failures.json"
PAGE = "sweep.html"
SCRATCH = ".dask-scratch"  # the local cluster's workers' scratch space: inside DIR, removed at the end
FORMAT = "emrr-sweep"
MAX_SEED = 2**64 - 1
SHARES = {"half_migrated_date": 0.5, "completion_date": 0.95}  # of the devices holding TCoS credentials
CONNECT_SECONDS = 10  # to reach a scheduler, and for it to have a worker

KPI_SCHEMA = {
    "seed": pl.UInt64, "scenario": pl.String, "ruleset": pl.String, "report_id": pl.String, "recipient": pl.String,
    "files": pl.Int64, "records": pl.Int64, "bytes": pl.Int64, "largest_file_bytes": pl.Int64,
    "largest_file_records": pl.Int64, "busiest_day": pl.String, "busiest_day_records": pl.Int64,
    "busiest_day_files": pl.Int64, "latency_p50_hours": pl.Float64, "latency_p95_hours": pl.Float64,
    "latency_max_hours": pl.Float64, "report_latency_p50_hours": pl.Float64,
    "report_latency_p95_hours": pl.Float64, "report_latency_max_hours": pl.Float64,
    "devices_to_migrate": pl.Int64, "attempts": pl.Int64, "successes": pl.Int64, "failures": pl.Int64,
    "failure_rate": pl.Float64, "installs": pl.Int64, "half_migrated_date": pl.String, "completion_date": pl.String,
    "check": pl.String, "check_errors": pl.Int64, "check_warnings": pl.Int64,
    # where and how long: the only columns that differ between two sweeps of the same seeds
    "timing_simulate_seconds": pl.Float64, "timing_report_seconds": pl.Float64,
    "timing_check_seconds": pl.Float64, "timing_figures_seconds": pl.Float64, "timing_worker": pl.String,
}
DAILY_SCHEMA = {"seed": pl.UInt64, "day": pl.String, "attempts": pl.Int64, "successes": pl.Int64,
                "failures": pl.Int64, "migrated": pl.Int64}
TIMING = tuple(c for c in KPI_SCHEMA if c.startswith("timing_"))


# --------------------------------------------------------------------------- one seed (a Dask task)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def seed_figures(events: Path, reports: Path, rules: Ruleset) -> tuple[list[dict], list[dict], dict]:
    """A finished run's key figures: rows per report and recipient, rows per day, run figures."""
    log = EventLog.open(events)
    files = pictures.manifest_files(reports)
    lat = pictures.latency(log, rules, pictures.records_per_report(files))
    by_recipient: dict[tuple[str, str], dict] = {}
    by_report: dict[str, dict] = {}
    for rid, part in lat.items():
        by_report[rid] = pictures.latency_figures(part["seconds"].to_numpy())
        for (party,), mine in part.with_columns(pl.col("recipient").cast(pl.String)).partition_by(
                "recipient", as_dict=True, include_key=False).items():
            by_recipient[rid, party] = pictures.latency_figures(mine["seconds"].to_numpy())
    rows = []
    for (rid, party), mine in sorted(files.partition_by("report_id", "recipient", as_dict=True).items()):
        largest = mine.sort(["bytes", "path"], descending=[True, False]).row(0, named=True)
        busiest = (mine.group_by("day").agg(pl.col("records").sum(), pl.len().alias("files"))
                   .sort(["records", "day"], descending=[True, False]).row(0, named=True))
        lat_r = by_recipient.get((rid, party), {})
        lat_all = by_report.get(rid, {})
        rows.append({"report_id": rid, "recipient": party, "files": mine.height, "records": int(mine["records"].sum()),
                     "bytes": int(mine["bytes"].sum()), "largest_file_bytes": largest["bytes"],
                     "largest_file_records": largest["records"], "busiest_day": busiest["day"],
                     "busiest_day_records": int(busiest["records"]), "busiest_day_files": int(busiest["files"]),
                     **{f"latency_{k}": _rounded(lat_r.get(k)) for k in ("p50_hours", "p95_hours", "max_hours")},
                     **{f"report_latency_{k}": _rounded(lat_all.get(k)) for k in ("p50_hours", "p95_hours",
                                                                                   "max_hours")}})
    ev = pictures.event_figures(log)
    daily = ev["daily"]
    days = pl.DataFrame({"day": sorted(set(daily["day"]))}, schema={"day": pl.String})

    def count(event_type: str) -> pl.Expr:
        return pl.col("events").filter(pl.col("event_type") == event_type).sum().cast(pl.Int64)
    per_day = days.join(daily.group_by("day").agg(count("migration_success").alias("successes"),
                                                  count("migration_failure").alias("failures"),
                                                  count("install").alias("installs")), on="day", how="left")
    per_day = per_day.sort("day").with_columns((pl.col("successes") + pl.col("failures")).alias("attempts"),
                                               pl.col("successes").cum_sum().alias("migrated"))
    to_migrate = None  # devices with TCoS credentials: at the start or installed so (docs/event-log.md, devices)
    if "ecos_credentials_at_install" in log.tables["devices"].collect_schema():
        to_migrate = int(log.tables["devices"].filter(~pl.col("ecos_credentials_at_install")).select(pl.len())
                         .collect().item())
    successes, failures = int(per_day["successes"].sum()), int(per_day["failures"].sum())
    run = {"devices_to_migrate": to_migrate, "attempts": successes + failures, "successes": successes,
           "failures": failures, "failure_rate": _rounded(failures / (successes + failures))
           if successes + failures else None, "installs": int(per_day["installs"].sum())}
    migrated = per_day["migrated"].to_numpy()
    for name, share in SHARES.items():
        reached = np.flatnonzero(migrated >= share * to_migrate) if to_migrate else np.array([])
        run[name] = per_day["day"][int(reached[0])] if len(reached) else None
    daily_rows = per_day.select("day", "attempts", "successes", "failures", "migrated").to_dicts()
    return rows, daily_rows, run


def run_seed(scenario_text: str, where: str, seed: int, rules: Ruleset, check: bool, keep: str | None) -> dict:
    """One seed, start to end, in a temporary folder of the worker that runs it: its figures, or
    the error that stopped it (as data: a failed seed never loses the others)."""
    import socket

    from emrr.rules import engine
    from emrr.sim import run, scenario

    timings = {"timing_simulate_seconds": None, "timing_report_seconds": None, "timing_check_seconds": None,
               "timing_figures_seconds": None, "timing_worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        scen = scenario.loads(scenario_text, where, seed=seed)
        with tempfile.TemporaryDirectory(prefix=f"emrr-sweep-{seed}-") as tmp:
            events, reports = Path(tmp) / "events", Path(tmp) / "reports"
            t = time.perf_counter()
            run.simulate(scen, events, workers=1, progress=False)
            timings["timing_simulate_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            engine.report(events, reports, rules, progress=False)
            timings["timing_report_seconds"] = time.perf_counter() - t
            verdict = {"check": "not run", "check_errors": None, "check_warnings": None}
            if check:
                from emrr.conformance import checker

                t = time.perf_counter()
                found = checker.check(reports, rules, events=events)
                timings["timing_check_seconds"] = time.perf_counter() - t
                verdict = {"check": "fail" if found.errors else "pass", "check_errors": found.errors,
                           "check_warnings": found.warnings}
            t = time.perf_counter()
            rows, daily, figures = seed_figures(events, reports, rules)
            timings["timing_figures_seconds"] = time.perf_counter() - t
            if keep:
                target = Path(keep) / f"seed-{seed}"
                shutil.rmtree(target, ignore_errors=True)  # an earlier try's, never finished
                staged = Path(keep) / f".seed-{seed}.tmp-{os.getpid()}"
                shutil.copytree(tmp, staged)
                os.replace(staged, target)
    except UserError as exc:
        return {"seed": seed, "error": str(exc), **timings}
    except Exception as exc:  # noqa: BLE001 - a bug or a worker's trouble, reported as this seed's error
        return {"seed": seed, "error": f"{type(exc).__name__}: {exc}", **timings}
    common = {"seed": seed, "scenario": scen.name, "ruleset": rules.name, **figures, **verdict, **timings}
    return {"seed": seed, "error": None, "rows": [{**common, **r} for r in rows],
            "daily": [{"seed": seed, **d} for d in daily], **timings}


# --------------------------------------------------------------------------- the sweep


@dataclass
class Result:
    """What a sweep did: seeds run now, skipped (finished before), failed (with their errors)."""

    out: Path
    seeds: list[int]
    ran: list[int]
    skipped: list[int]
    failed: dict[int, str]
    wall_seconds: float
    where: str

    def render(self) -> str:
        lines = [f"sweep of {len(self.seeds):,} seed(s) ({self.seeds[0]} to {self.seeds[-1]}) on {self.where} -> "
                 f"{self.out}", f"  ran {len(self.ran):,}, skipped {len(self.skipped):,} finished before, failed "
                 f"{len(self.failed):,}; wall time {self.wall_seconds:.1f} s"]
        lines += [f"  seed {s}: error: {e}" for s, e in sorted(self.failed.items())]
        lines.append(f"  {self.out / KPIS}, {self.out / DAILY}, {self.out / PAGE}")
        return "\n".join(lines)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror or exc}", file=str(path))


def _state(scenario_text: str, rules: Ruleset, check: bool) -> dict:
    return {"format": FORMAT, "scenario_sha256": digest(scenario_text), "ruleset": rules.name,
            "ruleset_digest": rules.digest, "check": check}


def _check_out(out: Path, state: dict) -> None:
    """DIR: new, empty, or an earlier sweep of the same scenario, ruleset and --check."""
    if not out.exists():
        if not out.parent.is_dir():
            raise UserError("no such directory to create it in", file=str(out.parent))
        return
    if not out.is_dir():
        raise UserError("is not a directory; expected a directory to write", file=str(out))
    if not any(out.iterdir()):
        return
    path = out / STATE
    try:
        earlier = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise UserError("holds files that are not a sweep of ours; expected an empty or new directory, or an "
                        "earlier sweep's to continue", file=str(out))
    if earlier != state:
        what = [k for k in state if earlier.get(k) != state[k]] if isinstance(earlier, dict) else ["format"]
        raise UserError(f"holds a sweep of another {', '.join(what)}; expected the same scenario, ruleset and "
                        "--check to continue it, or an empty directory", file=str(out))


def connect(scheduler: str | None, workers: int, scratch: Path | None = None):
    """A Dask client: of the scheduler at ``scheduler``, or of a new LocalCluster of ``workers``
    one-thread worker processes whose scratch space is ``scratch`` (Dask's default is a folder in
    the system's temporary directory, left behind: nothing of a sweep goes outside DIR). A
    scheduler that cannot be reached, or has no worker, is one line."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is None:
        import dask

        # a seed's task runs the simulator and the engine in the worker itself (one process each)
        settings = {"distributed.worker.daemon": False}
        if scratch is not None:
            settings["temporary-directory"] = str(scratch)
        with dask.config.set(settings):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR,
                                   **({"local_directory": str(scratch)} if scratch is not None else {}))
        return Client(cluster), f"a local cluster of {workers} worker(s)"
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"cannot reach the Dask scheduler: {type(exc).__name__}: {exc}; expected the address of a "
                        "running scheduler, e.g. tcp://127.0.0.1:8786", file=scheduler)
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    except (TimeoutError, OSError) as exc:
        client.close()
        raise UserError(f"the Dask scheduler has no worker ({type(exc).__name__}); expected one at least",
                        file=scheduler)
    return client, f"the scheduler {scheduler} ({len(client.nthreads())} worker(s))"


def _lock(out: Path) -> int:
    """An exclusive lock on DIR for the whole sweep (the report engine's, rules/engine.py): two
    sweeps into one DIR would run the same seeds twice and race on the tables."""
    return lock_folder(out, "another emrr sweep is writing into this directory; expected it to have ended (a rerun "
                            "then continues it)")


def _finished(out: Path) -> dict[int, dict]:
    found = {}
    for path in sorted((out / SEEDS).glob("seed-*.json")):
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # cannot be: written atomically; run again
        if isinstance(data, dict) and data.get("error") is None and "rows" in data:
            found[int(data["seed"])] = data
    return found


def sweep(scenario_path: str, first: int, count: int, out: str | Path, rules: Ruleset, workers: int | None = None,
          scheduler: str | None = None, check: bool = False, keep: bool = False,
          progress: bool | None = None) -> Result:
    """Run seeds ``first`` .. ``first + count - 1`` of the scenario; write DIR (module docstring).
    Bad input (the scenario, the seed range, DIR, the scheduler) is a UserError before DIR is made."""
    from emrr import yamlio
    from emrr.sim import scenario

    started = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    if getattr(rules, "regime", ECOS) != ECOS:
        raise UserError(f"ruleset {rules.name} reports on the {rules.regime} regime; a sweep runs ECoS scenarios and "
                        "rulesets for now")
    if count < 1:
        raise UserError(f"--seeds {count}: expected a whole number of at least 1")
    last = first + count - 1
    if last > MAX_SEED:
        raise UserError(f"seeds {first} to {last}: the last is beyond {MAX_SEED} (2**64 - 1); expected a range that "
                        "ends within it")
    text = yamlio.read_text(scenario_path, "a scenario YAML file")
    scenario.loads(text, str(scenario_path), seed=first)  # a bad scenario is one line, before anything runs
    out = Path(out)
    state = _state(text, rules, check)
    _check_out(out, state)
    client, where = connect(scheduler, workers) if scheduler is not None else (None, "")
    lock = None
    try:
        try:
            out.mkdir(exist_ok=True)
            lock = _lock(out)
            (out / SEEDS).mkdir(exist_ok=True)
            if not (out / STATE).exists():
                _write_atomically(out / STATE, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())
            if client is None:  # a local cluster, its scratch space in DIR
                (out / SCRATCH).mkdir(exist_ok=True)
                client, where = connect(None, workers, out / SCRATCH)
            seeds = list(range(first, last + 1))
            done = _finished(out)
            skipped = [s for s in seeds if s in done]
            todo = [s for s in seeds if s not in done]
            failed: dict[int, str] = {}
            keep_dir = str((out / "runs").resolve()) if keep else None
            if keep_dir:
                Path(keep_dir).mkdir(exist_ok=True)
            _run(client, todo, text, str(scenario_path), rules, check, keep_dir, out, failed, progress, len(skipped))
        finally:
            if client is not None:
                client.close()
                cluster = getattr(client, "cluster", None)
                if scheduler is None and cluster is not None:
                    cluster.close()
            shutil.rmtree(out / SCRATCH, ignore_errors=True)
        finish(out)
    finally:
        if lock is not None:
            os.close(lock)
    return Result(out, seeds, [s for s in todo if s not in failed], skipped, failed,
                  time.perf_counter() - started, where)


def _run(client, todo: list[int], text: str, where: str, rules: Ruleset, check: bool, keep: str | None, out: Path,
         failed: dict[int, str], progress: bool | None, skipped: int) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    if not todo:
        return
    tag = digest(text)[:8]
    futures = [client.submit(run_seed, text, where, seed, rules, check, keep, key=f"emrr-seed-{seed}-{tag}",
                             pure=False) for seed in todo]
    seed_of = {f.key: s for f, s in zip(futures, todo)}
    failures = out / FAILURES
    with tqdm(total=len(todo) + skipped, initial=skipped, unit="seed", desc="sweep",
              disable=(not progress) if progress is not None else None) as bar:
        for future in as_completed(futures):
            seed = seed_of[future.key]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - the worker died, or the task could not be sent
                result = {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
            if result.get("error") is not None:
                failed[seed] = result["error"]
                bar.write(f"emrr: seed {seed} failed: {result['error']}")
            else:
                _write_atomically(out / SEEDS / f"seed-{seed}.json",
                                  (json.dumps(result, sort_keys=True) + "\n").encode())
            future.release()
            bar.update()
    _write_atomically(failures, (json.dumps({str(s): e for s, e in sorted(failed.items())}, indent=2)
                                 + "\n").encode())


def tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The KPI and daily tables of every finished seed of DIR, sorted."""
    done = _finished(out)
    rows = [r for s in sorted(done) for r in done[s]["rows"]]
    daily = [r for s in sorted(done) for r in done[s]["daily"]]
    kpis = pl.DataFrame(rows, schema=KPI_SCHEMA).sort("seed", "report_id", "recipient")
    return kpis, pl.DataFrame(daily, schema=DAILY_SCHEMA).sort("seed", "day")


def finish(out: Path) -> None:
    """DIR's tables and page from the seeds it holds, each written atomically."""
    kpis, daily = tables(out)
    for name, frame in ((KPIS, kpis), (DAILY, daily)):
        tmp = out / f".{name}.tmp-{os.getpid()}"
        try:
            frame.write_parquet(tmp, statistics=False)
            os.replace(tmp, out / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write: {exc.strerror or exc}", file=str(out / name))
    if not (out / FAILURES).exists():
        _write_atomically(out / FAILURES, b"{}\n")
    pictures.write_atomically(out / PAGE, pictures.sweep_page(kpis, daily, title=f"emrr sweep: {out.name}"))


__all__ = ["KPI_SCHEMA", "TIMING", "Result", "connect", "finish", "run_seed", "seed_figures", "sweep", "tables"]
