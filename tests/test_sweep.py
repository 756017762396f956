"""emrr sweep (issue 12 deliverable 2; docs/sweep.md): seeds as Dask tasks. The KPI table is the same
whatever the number of workers and wherever the tasks run (timing columns excepted); its figures are
the run's own (manifest, files); a failed seed is reported and loses no other; a rerun skips the
finished seeds; bad input is one line, exit 2, and leaves nothing in DIR. Every cluster a test makes
is closed by it, every process it starts is ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from emrr import cli, sweep
from emrr.rules import ruleset

ROOT = Path(__file__).resolve().parents[1]
SEEDS = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The demo scenario made smaller as data (1,200 premises, two months): a seed in about a second."""
    data = yaml.safe_load((ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8"))
    data["name"] = "tiny"
    data["population"]["premises"] = 1200
    data["period"]["end"] = "2023-09-01"
    data["population"]["firmware_campaigns"][0]["start"] = "2023-08-01"
    data["migration"]["capacity"] = {day: n // 4 for day, n in data["migration"]["capacity"].items()}
    path = tmp_path_factory.mktemp("sweep") / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_sweep(args: list[str]) -> int:
    return cli.main(["sweep", *args, "--no-progress"])


@pytest.fixture(scope="module")
def one_worker(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "sweep"
    assert run_sweep([str(tiny), "--seeds", str(SEEDS), "--first-seed", "7", "--workers", "1", "--out", str(out),
                      "--keep", "--check"]) == 0
    return out


def kpis(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "kpis.parquet")


def test_two_workers_give_the_table_of_one(one_worker, tiny, tmp_path):
    """A LocalCluster of two workers: the same KPI and daily tables as one worker, byte for byte in
    every column but the timing_* ones."""
    out = tmp_path / "two"
    assert run_sweep([str(tiny), "--seeds", str(SEEDS), "--first-seed", "7", "--workers", "2", "--out", str(out),
                      "--check"]) == 0
    a, b = kpis(one_worker), kpis(out)
    assert a.height > 0 and a["seed"].unique().sort().to_list() == [7, 8]
    assert a.drop(sweep.TIMING).equals(b.drop(sweep.TIMING))
    assert pl.read_parquet(one_worker / "daily.parquet").equals(pl.read_parquet(out / "daily.parquet"))
    assert set(sweep.TIMING) == {c for c in a.columns if c.startswith("timing_")}
    assert a["check"].unique().to_list() == ["pass"]
    # the seeds differ: one history each
    assert a.group_by("seed").agg(pl.col("records").sum())["records"].n_unique() == SEEDS


def test_figures_are_the_runs_own(one_worker):
    """Each row's files, records, bytes, largest file and busiest day are those of the seed's kept run
    (--keep: DIR/runs/seed-N), from its manifest and the files on disk."""
    table = kpis(one_worker)
    for seed in (7, 8):
        reports = one_worker / "runs" / f"seed-{seed}" / "reports"
        manifest = json.loads((reports / "run-manifest.json").read_text())
        for (rid, party), rows in pl.DataFrame(manifest["files"]).group_by("report_id", "recipient"):
            row = table.filter((pl.col("seed") == seed) & (pl.col("report_id") == rid)
                               & (pl.col("recipient") == party)).row(0, named=True)
            sizes = {e["path"]: (reports / e["path"]).stat().st_size for e in rows.to_dicts()}
            assert row["files"] == rows.height and row["records"] == rows["records"].sum()
            assert row["bytes"] == sum(sizes.values()) and row["largest_file_bytes"] == max(sizes.values())
            per_day = rows.with_columns(pl.col("created").str.slice(0, 10).alias("day")).group_by("day").agg(
                pl.col("records").sum()).sort(["records", "day"], descending=[True, False])
            assert (row["busiest_day"], row["busiest_day_records"]) == per_day.row(0)
        assert (one_worker / "runs" / f"seed-{seed}" / "events" / "manifest.json").is_file()
    latency = table.filter(pl.col("report_id") == "ECOSMIG-002")
    assert latency["latency_p50_hours"].null_count() == 0 and latency["latency_max_hours"].min() > 0
    assert table.filter(pl.col("report_id") == "ECOSMIG-004")["latency_p50_hours"].null_count() == table.filter(
        pl.col("report_id") == "ECOSMIG-004").height  # a summary report has no per-event latency


def test_sweep_page_has_bands_across_seeds(one_worker):
    page = (one_worker / "sweep.html").read_text(encoding="utf-8")
    daily = pl.read_parquet(one_worker / "daily.parquet")
    spec = json.loads(page.split('id="chart-migrated">', 1)[1].split("</script>", 1)[0])
    rows = next(iter(spec["datasets"].values()))
    last = max(rows, key=lambda r: r["day"])
    final = daily.filter(pl.col("day") == last["day"])["migrated"]
    assert (last["min"], last["max"], last["seeds"]) == (final.min(), final.max(), SEEDS)
    assert "<script src" not in page and "<link" not in page


def test_against_a_scheduler_and_worker_on_loopback(one_worker, tiny, tmp_path):
    """A scheduler and a worker started here (their own processes, on 127.0.0.1): the same table."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    started = []
    try:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        started.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True))
        out = tmp_path / "remote"
        assert run_sweep([str(tiny), "--seeds", str(SEEDS), "--first-seed", "7", "--scheduler", address,
                          "--out", str(out), "--check"]) == 0
        assert kpis(out).drop(sweep.TIMING).equals(kpis(one_worker).drop(sweep.TIMING))
    finally:
        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture()
def in_process(monkeypatch):
    """The sweep's tasks on a cluster inside this process (threads): what a seed does can be changed."""
    from distributed import Client, LocalCluster

    clients = []

    def connect(scheduler, workers, scratch=None):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                               local_directory=str(scratch) if scratch else None)
        clients.append(Client(cluster))
        return clients[-1], "an in-process cluster"
    monkeypatch.setattr(sweep, "connect", connect)
    yield
    for client in clients:
        assert client.status == "closed"


def test_a_failed_seed_is_reported_and_loses_no_other(tiny, tmp_path, monkeypatch, in_process, capsys):
    """Seed 8 fails: its error is said and kept in failures.json, seeds 7 and 9 are in the table; exit 1;
    a rerun runs seed 8 only (the finished seeds are skipped, their files untouched)."""
    real = sweep.run_seed

    def failing(text, where, seed, rules, check, keep):
        if seed == 8:
            raise RuntimeError("the worker lost its disk")
        return real(text, where, seed, rules, check, keep)
    monkeypatch.setattr(sweep, "run_seed", failing)
    out = tmp_path / "failing"
    assert run_sweep([str(tiny), "--seeds", "3", "--first-seed", "7", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "seed 8" in captured.out + captured.err and "the worker lost its disk" in captured.out + captured.err
    assert json.loads((out / "failures.json").read_text()) == {"8": "RuntimeError: the worker lost its disk"}
    assert kpis(out)["seed"].unique().sort().to_list() == [7, 9]
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "seeds").iterdir()}
    monkeypatch.setattr(sweep, "run_seed", real)
    result = sweep.sweep(str(tiny), 7, 3, out, ruleset.load(None))
    assert (result.skipped, result.ran, result.failed) == ([7, 9], [8], {})
    assert {p.name: p.stat().st_mtime_ns for p in (out / "seeds").iterdir() if p.name in finished} == finished
    assert kpis(out)["seed"].unique().sort().to_list() == [7, 8, 9]
    assert json.loads((out / "failures.json").read_text()) == {}


@pytest.mark.parametrize("args, words", [
    (["--seeds", "2", "--first-seed", str(2**64 - 1)], "beyond 18446744073709551615"),
    (["--seeds", "0"], "--seeds: expected a whole number of at least 1"),
    (["--seeds", "2", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    (["--seeds", "2", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "not allowed with argument"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tiny, tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.setattr(sweep, "CONNECT_SECONDS", 2)  # nothing listens on port 9: no need to wait 10 s
    out = tmp_path / "out"
    assert run_sweep([str(tiny), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_scenario_and_foreign_folder(tmp_path, capsys, tiny):
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(tiny.read_text())
    data["population"]["premises"] = "many"
    bad.write_text(yaml.safe_dump(data))
    assert run_sweep([str(bad), "--seeds", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "population.premises" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert run_sweep([str(tiny), "--seeds", "2", "--out", str(other)]) == 2
    assert "not a sweep of ours" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_page_of_a_large_sweep(one_worker):
    """A thousand seeds make more than Altair's 5,000 default rows in one chart (seeds x reports x
    recipients): the page holds them all (the national page's supplier grid failed so)."""
    from emrr import pictures

    table, daily = kpis(one_worker), pl.read_parquet(one_worker / "daily.parquet")
    many = pl.concat([table.with_columns(pl.col("seed") + 1000 * i) for i in range(100)])
    days = pl.concat([daily.with_columns(pl.col("seed") + 1000 * i) for i in range(100)])
    assert many.height > 5000
    page = pictures.sweep_page(many, days, title="many seeds")
    spec = json.loads(page.split('id="chart-busiest_day">', 1)[1].split("</script>", 1)[0])
    assert len(next(iter(spec["datasets"].values()))) == many.height


def test_one_sweep_at_a_time_in_a_folder(one_worker, tiny, capsys):
    """A second sweep into a DIR that a sweep is writing is refused in one line (it would run the same
    seeds again and race on the tables); the first's files are untouched."""
    import fcntl

    before = {p.name: p.stat().st_mtime_ns for p in one_worker.iterdir()}
    fd = os.open(one_worker, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
        assert run_sweep([str(tiny), "--seeds", str(SEEDS), "--first-seed", "7", "--workers", "1", "--out",
                          str(one_worker), "--keep", "--check"]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert "another emrr sweep is writing into this directory" in err and err.count("\n") == 1
    assert {p.name: p.stat().st_mtime_ns for p in one_worker.iterdir()} == before
