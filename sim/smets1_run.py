"""Run a SMETS1 scenario: shards (in worker processes or not) with the ECoS runner's machinery
(``emrr.sim.run``: worker pool, temporary folder and rename, manifest with sha256), a summary."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from emrr.contract import SMETS1, SMETS1_EVENT_TYPES
from emrr.sim import eventlog, run, smets1_actors, smets1_eventlog
from emrr.sim.smets1_model import Shard, shard_bounds
from emrr.sim.smets1_scenario import Smets1Scenario

# Rows per row group of the tables the report engine looks up by key (installations, authorisations):
# a fortnight's outcomes are a few runs of keys in each part (smets1_eventlog.ShardWriter._keys), and
# a row group read for a few of them is decoded whole
LOOKUP_ROWS = 8 * 1024
COUNTED = ("installations", "authorisations", *SMETS1_EVENT_TYPES, "ma_success", "ma_failed", "ma_warning",
           "late_notifications", "duplicated_notifications", "event_rows")


@dataclass
class Smets1Summary:
    """What a SMETS1 run produced; the counts go in manifest.json, the rest is this run's."""

    scenario: str
    seed: int
    shards: int
    regime: str = SMETS1
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    outages: int = 0
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_rss_parent_bytes: int = 0
    peak_rss_worker_bytes: int = 0
    workers: int = 1

    def add(self, part: dict) -> None:
        for key in COUNTED:
            self.counts[key] += part[key]

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "counts"}
        return {**d, **self.counts}

    def render(self) -> str:
        c, mib = self.counts, 1 << 20
        lines = [f"scenario {self.scenario} (seed {self.seed}, regime smets1): {self.shards} shard(s), "
                 f"{self.workers} worker(s)",
                 f"  installations        {c['installations']:>12,}   authorisations {c['authorisations']:,}"]
        lines += [f"  {name:<24} {c[name]:>8,}" for name in SMETS1_EVENT_TYPES]
        lines += [
            f"  MAs completed        {c['ma_success']:>12,} Success, {c['ma_failed']:,} Failed, "
            f"{c['ma_warning']:,} Warning",
            f"  late notifications   {c['late_notifications']:>12,}   duplicated {c['duplicated_notifications']:,}",
            f"  report-run outages   {self.outages:>12,}",
            f"  event rows           {c['event_rows']:>12,}",
            f"  wall time            {self.wall_seconds:>12.2f} s   "
            f"({c['installations'] / max(self.wall_seconds, 1e-9):,.0f} installations/s)",
            f"  peak memory          {self.peak_rss_bytes / mib:>12,.0f} MiB (largest process"
            + (f"; parent {self.peak_rss_parent_bytes / mib:,.0f} MiB, largest worker "
               f"{self.peak_rss_worker_bytes / mib:,.0f} MiB)" if self.peak_rss_worker_bytes else ")"),
        ]
        return "\n".join(lines)


def simulate_shard(scenario: Smets1Scenario, index: int, bounds: tuple[int, int], out: str) -> dict:
    """Simulate one shard and write its part of each sharded table; return its counts."""
    shard = Shard(scenario, index, bounds)
    smets1_actors.run(shard)
    writer = smets1_eventlog.ShardWriter(shard)
    name = f"part-{index:05d}.parquet"
    root = Path(out)
    events = writer.events()
    files = {"events": eventlog.write_table(events, root / "events" / name)}
    installations = writer.installations()
    files["installations"] = eventlog.write_table(installations, root / "installations" / name, LOOKUP_ROWS)
    authorisations = writer.authorisations()
    files["authorisations"] = eventlog.write_table(authorisations, root / "authorisations" / name, LOOKUP_ROWS)
    return {"index": index, "files": files, "installations": installations.num_rows,
            "authorisations": authorisations.num_rows, "event_rows": events.num_rows, **writer.counts,
            "peak_rss_bytes": run.peak_rss(resource.RUSAGE_SELF)}


def simulate(scenario: Smets1Scenario, out: str | Path, workers: int = 1,
             progress: bool | None = None) -> Smets1Summary:
    """Simulate the SMETS1 ``scenario`` into the event log folder ``out``; return the run's summary."""
    started = time.perf_counter()
    out = Path(out)
    bounds = shard_bounds(scenario)
    summary = Smets1Summary(scenario=scenario.name, seed=scenario.seed, shards=len(bounds), workers=workers)
    tmp = run.prepare_output(out)
    try:
        jobs = [(scenario, i, b, str(tmp)) for i, b in enumerate(bounds)]
        results = run.map_shards(simulate_shard, jobs, out, workers, progress, desc=f"simulating {scenario.name}")
        for r in results:
            summary.add(r)
        outages = run.report_outages(scenario)
        summary.outages = len(outages)
        tables = {
            "parties": eventlog.write_table(smets1_eventlog.parties_table(scenario), tmp / "parties.parquet"),
            "distributors": eventlog.write_table(smets1_eventlog.distributors_table(scenario),
                                                 tmp / "distributors.parquet"),
            "commitments": eventlog.write_table(smets1_eventlog.commitments_table(scenario),
                                                tmp / "commitments.parquet"),
            "outages": eventlog.write_table(eventlog.outages_table(outages), tmp / "outages.parquet"),
        }
        run.write_manifest(tmp, scenario, results, tables, {**summary.counts, "outages": summary.outages},
                           regime=SMETS1)
        run.commit_output(tmp, out)
    except BaseException:
        run.discard_output(tmp)
        raise
    summary.wall_seconds = time.perf_counter() - started
    summary.peak_rss_parent_bytes = run.peak_rss(resource.RUSAGE_SELF)
    in_workers = workers > 1 and len(results) > 1
    summary.peak_rss_worker_bytes = max([r["peak_rss_bytes"] for r in results]) if in_workers else 0
    summary.peak_rss_bytes = max(summary.peak_rss_parent_bytes, summary.peak_rss_worker_bytes)
    return summary
