"""Run a scenario: shards (in worker processes or not), the event log written atomically, a summary."""

from __future__ import annotations

import ctypes
import gc
import json
import multiprocessing
import os
import resource
import shutil
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import simpy
from tqdm import tqdm

from emrr.errors import UserError
from emrr.sim import actors, eventlog, streams
from emrr.sim.model import Shard, shard_bounds
from emrr.sim.scenario import Scenario, format_instant


@dataclass
class Summary:
    """What a run produced; ``deterministic()`` is the part that must not change between runs."""

    scenario: str
    seed: int
    shards: int
    devices: int = 0
    premises: int = 0
    attempts: int = 0
    successes: int = 0
    failures: int = 0
    failures_by_error: Counter = field(default_factory=Counter)
    prevalidation_skips: int = 0
    changes_of_supplier: int = 0
    installs: int = 0
    firmware_upgrades: int = 0
    duplicated_notifications: int = 0
    late_notifications: int = 0
    outages: int = 0
    event_rows: int = 0
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_rss_parent_bytes: int = 0
    peak_rss_worker_bytes: int = 0
    workers: int = 1

    def add(self, part: dict) -> None:
        for key in ("devices", "premises", "attempts", "successes", "failures", "prevalidation_skips",
                    "changes_of_supplier", "installs", "firmware_upgrades", "duplicated_notifications",
                    "late_notifications", "event_rows"):
            setattr(self, key, getattr(self, key) + part[key])
        self.failures_by_error.update(part["failures_by_error"])

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["failures_by_error"] = dict(sorted(self.failures_by_error.items()))
        return d

    def render(self) -> str:
        mib = 1 << 20
        lines = [
            f"scenario {self.scenario} (seed {self.seed}): {self.shards} shard(s), {self.workers} worker(s)",
            f"  devices              {self.devices:>12,}   premises {self.premises:,}",
            f"  attempts             {self.attempts:>12,}",
            f"  successes            {self.successes:>12,}",
            f"  failures             {self.failures:>12,}",
        ]
        for code, count in sorted(self.failures_by_error.items()):
            lines.append(f"    {code:<18} {count:>12,}")
        lines += [
            f"  pre-validation skips {self.prevalidation_skips:>12,}   (not attempts)",
            f"  changes of supplier  {self.changes_of_supplier:>12,}",
            f"  installs (ECoS)      {self.installs:>12,}",
            f"  firmware upgrades    {self.firmware_upgrades:>12,}",
            f"  late notifications   {self.late_notifications:>12,}   duplicated {self.duplicated_notifications:,}",
            f"  report-run outages   {self.outages:>12,}",
            f"  event rows           {self.event_rows:>12,}",
            f"  wall time            {self.wall_seconds:>12.2f} s   "
            f"({self.devices / max(self.wall_seconds, 1e-9):,.0f} devices/s)",
            f"  peak memory          {self.peak_rss_bytes / mib:>12,.0f} MiB (largest process"
            + (f"; parent {self.peak_rss_parent_bytes / mib:,.0f} MiB, largest worker "
               f"{self.peak_rss_worker_bytes / mib:,.0f} MiB)" if self.peak_rss_worker_bytes else ")"),
        ]
        return "\n".join(lines)


def peak_rss(who: int) -> int:
    return resource.getrusage(who).ru_maxrss * 1024  # Linux reports KiB


# ----------------------------------------------------------------------------- shards


def simulate_shard(scenario: Scenario, index: int, bounds: tuple[int, int], out: str) -> dict:
    """Simulate one shard and write its part of each table; return its counts."""
    shard = Shard(scenario, index, bounds, scenario.premises)
    actors.run(shard)
    writer = eventlog.ShardWriter(shard)
    name = f"part-{index:05d}.parquet"
    root = Path(out)
    files = {}
    events = writer.events()
    files["events"] = eventlog.write_table(events, root / "events" / name)
    files["devices"] = eventlog.write_table(writer.devices(), root / "devices" / name)
    files["premises"] = eventlog.write_table(writer.premises(), root / "premises" / name)
    files["supply_changes"] = eventlog.write_table(writer.supply_changes(), root / "supply_changes" / name)
    return {
        "index": index,
        "files": files,
        "devices": int(len(shard.population.dev_global)),
        "premises": int(len(shard.population.premise_global)),
        **writer.counts,
        "failures_by_error": Counter(writer.counts["failures_by_error"]),
        "changes_of_supplier": int(len(shard.supply.columns()["premise"])),
        "event_rows": int(events.num_rows),
        "peak_rss_bytes": peak_rss(resource.RUSAGE_SELF),
    }


def _shard_job(job: tuple) -> dict:
    """Run one shard's job ``(function, args)`` in this process, then give its memory back."""
    function, args = job
    try:
        return function(*args)
    finally:
        release_memory()


def _worker_signals(parent: int) -> None:
    """A worker leaves stopping to the parent, which cleans up and ends the workers itself:

    - SIGINT (Ctrl-C reaches the whole process group) is ignored here, so no worker prints a
      KeyboardInterrupt traceback;
    - SIGTERM from outside (sent to a worker alone) is passed on to the parent, which then stops
      the run as if it had been sent SIGTERM itself; SIGTERM from the parent's pool (which ends the
      other workers when one died, e.g. killed for want of memory) just ends the worker, so that
      the parent reports the death, not a SIGTERM. Only ``sigwaitinfo`` tells the sender, hence
      SIGTERM blocked and waited for in a thread.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the thread below inherits the mask

    def wait_for_sigterm() -> None:
        sender = signal.sigwaitinfo({signal.SIGTERM}).si_pid
        if sender != parent and os.getppid() == parent:  # never signal a process that took the parent's place
            os.kill(parent, signal.SIGTERM)
        else:
            os._exit(128 + signal.SIGTERM)

    threading.Thread(target=wait_for_sigterm, name="sigterm", daemon=True).start()


def _stop_workers() -> None:
    """End this process's worker processes at once: their shards are discarded with the run."""
    for child in multiprocessing.active_children():
        child.kill()  # not SIGTERM: a worker passes that on to us
        child.join()


def release_memory() -> None:
    """Give freed memory back to the system between shards, so a long-lived worker stays flat."""
    gc.collect()  # a Shard and its SimPy environment refer to each other: free the cycle now
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc; elsewhere memory is simply not trimmed
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only
    except OSError:
        return None


_LIBC = _load_libc()


# ----------------------------------------------------------------------------- outages


def report_outages(scenario: Scenario) -> list[tuple[str, int, int]]:
    """Scheduled report runs that do not happen: the scenario's windows plus random ones.

    Random outages arrive as a Poisson process (a SimPy process) and hit one report each, drawn
    uniformly from the scenario's ``outages.random.reports``: the simulator knows no report ids.
    """
    windows = list(scenario.outage_windows)
    if scenario.outage_random_per_year > 0:
        rng = streams.for_run(scenario.seed, streams.OUTAGES)
        env = simpy.Environment(initial_time=scenario.start)
        mean_gap = 365 * 86_400 / scenario.outage_random_per_year
        reports = scenario.outage_random_reports

        def outage_arrivals():
            while True:
                yield env.timeout(int(rng.exponential(mean_gap)) + 1)
                length = int(scenario.outage_random_duration.sample(rng, 1)[0])
                report = reports[int(rng.integers(0, len(reports)))]
                windows.append((report, int(env.now), int(env.now) + max(length, 1)))

        env.process(outage_arrivals())
        env.run(until=scenario.end)
    return sorted(windows, key=lambda w: (w[1], w[2], w[0]))


# ----------------------------------------------------------------------------- output directory


def prepare_output(out: Path) -> Path:
    """A fresh sibling folder to write into; the real one is replaced only when all is written."""
    try:
        if out.exists():
            if not out.is_dir():
                raise UserError("exists and is not a directory; expected a directory for the event log", file=str(out))
            entries = [p.name for p in out.iterdir()]
            if entries and not _is_event_log(out):
                raise UserError("holds files that are not an event log of ours; expected an empty or new directory",
                                file=str(out))
            foreign = _foreign_entry(out) if entries else None
            if foreign is not None:  # replacing the folder would delete it (campaign L6)
                raise UserError(f"holds {foreign!r}, which is not part of its event log; expected an event log "
                                "alone, or an empty or new directory", file=str(out))
    except OSError as exc:
        raise UserError(f"cannot read the output directory: {exc.strerror}", file=str(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(out)
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise UserError(f"cannot create the output directory: {exc.strerror}", file=str(out))
    return tmp


def _remove_stale_partials(out: Path) -> None:
    """Remove what a killed run (kill -9, power loss) left beside ``out``: its process is gone."""
    for stale in [*out.parent.glob(f".{out.name}.partial-*"), *out.parent.glob(f".{out.name}.old-*")]:
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_event_log(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return manifest.get("format") == eventlog.FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _foreign_entry(folder: Path) -> str | None:
    """The first file or folder under the event log ``folder`` that its manifest does not list, if any."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        ours = {"manifest.json", "scenario.json"} | {str(f["path"]) for f in manifest.get("files", [])}
    except (ValueError, TypeError, KeyError, AttributeError):  # a manifest edited by hand: not ours to replace
        return "manifest.json"
    folders = {str(Path(p).parent) for p in ours} - {"."}
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs) + sorted(files):
            relative = (Path(root) / name).relative_to(folder).as_posix()
            if relative not in (folders if name in dirs else ours):
                return relative
    return None


def commit_output(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp``. SIGINT and SIGTERM wait until both renames are done: stopped between
    them, the previous event log would be left under its temporary name and ``out`` missing."""
    old = None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        try:
            tmp.rename(out)
        except OSError as exc:
            if old is not None:
                old.rename(out)  # put the previous event log back
            raise UserError(f"cannot move the new event log into place: {exc.strerror}", file=str(out))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- run


def map_shards(function, jobs: list[tuple], out: Path, workers: int = 1, progress: bool | None = None,
               desc: str = "simulating") -> list[dict]:
    """``function(*args)`` for each ``args`` of ``jobs``, in worker processes when ``workers`` > 1; the
    results in the order of ``jobs`` (so the output does not depend on the number of workers). A worker
    that dies, or a stop (SIGINT, SIGTERM), ends the other workers; ``out`` names the run in errors."""
    results: list[dict] = []
    calls = [(function, args) for args in jobs]
    bar = tqdm(total=len(jobs), unit="shard", desc=desc, disable=(not progress) if progress is not None else None,
               leave=False)
    with bar:
        if workers <= 1 or len(jobs) == 1:
            for call in calls:
                results.append(_shard_job(call))
                bar.update()
        else:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_signals,
                                     initargs=(os.getpid(),)) as pool:
                try:
                    for result in pool.map(_shard_job, calls):
                        results.append(result)
                        bar.update()
                except BrokenProcessPool:
                    _stop_workers()
                    raise UserError("a worker process ended without finishing its shard (killed, or out of "
                                    "memory?); nothing was written", file=str(out)) from None
                except BaseException:  # stopped (SIGINT, SIGTERM) or failed: end the workers before cleaning up
                    _stop_workers()
                    raise
    return results


def discard_output(tmp: Path) -> None:
    """Remove the temporary folder of a run that failed or was stopped."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # a second Ctrl-C
    shutil.rmtree(tmp, ignore_errors=True)  # must not leave the folder half-removed
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def simulate(scenario: Scenario, out: str | Path, workers: int = 1, progress: bool | None = None) -> Summary:
    """Simulate ``scenario`` into the event log folder ``out``; return the run's summary."""
    started = time.perf_counter()
    out = Path(out)
    bounds = shard_bounds(scenario)
    summary = Summary(scenario=scenario.name, seed=scenario.seed, shards=len(bounds), workers=workers)
    tmp = prepare_output(out)
    try:
        jobs = [(scenario, i, b, str(tmp)) for i, b in enumerate(bounds)]
        results = map_shards(simulate_shard, jobs, out, workers, progress, desc=f"simulating {scenario.name}")
        for r in results:
            summary.add(r)
        outages = report_outages(scenario)
        summary.outages = len(outages)
        tables = {
            "suppliers": eventlog.write_table(eventlog.suppliers_table(scenario), tmp / "suppliers.parquet"),
            "non_migratable": eventlog.write_table(eventlog.non_migratable_table(scenario),
                                                   tmp / "non_migratable.parquet"),
            "outages": eventlog.write_table(eventlog.outages_table(outages), tmp / "outages.parquet"),
        }
        write_manifest(tmp, scenario, results, tables, summary.as_dict())
        commit_output(tmp, out)
    except BaseException:
        discard_output(tmp)
        raise
    summary.wall_seconds = time.perf_counter() - started
    summary.peak_rss_parent_bytes = peak_rss(resource.RUSAGE_SELF)
    in_workers = workers > 1 and len(results) > 1
    summary.peak_rss_worker_bytes = max([r["peak_rss_bytes"] for r in results]) if in_workers else 0
    summary.peak_rss_bytes = max(summary.peak_rss_parent_bytes, summary.peak_rss_worker_bytes)
    return summary


VOLATILE = ("wall_seconds", "peak_rss_bytes", "peak_rss_parent_bytes", "peak_rss_worker_bytes", "workers")


def write_manifest(tmp: Path, scenario, results: list[dict], tables: dict, counts: dict,
                   regime: str | None = None) -> None:
    """manifest.json (every file with its rows, bytes and sha256; the counts but their ``VOLATILE`` ones)
    and scenario.json; ``regime`` written when not ECoS (a manifest without it is of regime ecos)."""
    files = []
    for r in results:
        for table, entry in r["files"].items():
            files.append({"table": table, "path": f"{table}/part-{r['index']:05d}.parquet", **entry})
    for table, entry in tables.items():
        files.append({"table": table, "path": f"{table}.parquet", **entry})
    files.sort(key=lambda f: f["path"])
    counts = {k: v for k, v in counts.items() if k not in VOLATILE}
    manifest = {
        "format": eventlog.FORMAT,
        "format_version": eventlog.FORMAT_VERSION,
        **({"regime": regime} if regime else {}),
        "scenario": scenario.name,
        "seed": scenario.seed,
        "period": {"start": format_instant(scenario.start), "end": format_instant(scenario.end)},
        "counts": counts,
        "files": files,
    }
    (tmp / "scenario.json").write_text(json.dumps(scenario.raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
