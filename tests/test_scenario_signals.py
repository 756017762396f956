"""Stopping ``emrr simulate``: SIGTERM and SIGINT end the run cleanly, workers included.

Protects issue 13 deliverable 4 and the reliability campaign's L3 (SIGTERM ended simulate silently;
Ctrl-C on ``--workers 2`` printed a worker's 23-line traceback) and I2 (the temporary
``.NAME.partial-PID`` folder beside ``--out`` must not outlive the run). Whoever the signal reaches,
the parent or one worker, the run ends with one line on stderr, no traceback, no ``--out`` and no
temporary folder, and no worker left running. Exit status: 143 for SIGTERM and 130 for SIGINT
(128 + the signal, as a shell reports a process the signal ended, so a supervisor sees what
stopped it); a worker killed outright (SIGKILL, as the kernel's out-of-memory killer does) is
exit 2 with a line saying so.

Each case runs a real ``python -m emrr simulate`` of a scenario made slow enough (two shards of
150,000 premises over a year, a few seconds) and signals it once its workers are simulating.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def slow_scenario(tmp_path_factory) -> Path:
    """demo.yaml with 300,000 premises in two shards over a year: about 4 s in all with two workers."""
    data = yaml.safe_load((ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8"))
    data["population"].update(premises=300_000, shard_premises=150_000)
    data["period"]["end"] = "2024-07-01"
    path = tmp_path_factory.mktemp("slow") / "slow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _wait(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("workers, target, signum, status, says", [
    (2, "parent", signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (2, "worker", signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (2, "group", signal.SIGINT, 130, "interrupted"),  # Ctrl-C in a terminal reaches the whole process group
    (2, "worker", signal.SIGKILL, 2, "a worker process ended without finishing its shard"),
    (1, "parent", signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (1, "parent", signal.SIGINT, 130, "interrupted"),
], ids=["sigterm-parent", "sigterm-one-worker", "sigint-group", "sigkill-one-worker", "sigterm-no-workers",
        "sigint-no-workers"])
def test_a_signal_stops_simulate_cleanly(workers, target, signum, status, says, slow_scenario, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "emrr", "simulate", str(slow_scenario), "--out", str(out),
                             "--workers", str(workers), "--no-progress"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        parent = psutil.Process(proc.pid)
        _wait(lambda: any(tmp_path.glob(".out.partial-*")), "the run's temporary folder")
        if workers > 1:
            _wait(lambda: len(parent.children()) >= workers, "the worker processes")
        time.sleep(0.3)  # the shards are being simulated
        assert proc.poll() is None, "the run ended before it was signalled: make the scenario slower"
        children = parent.children(recursive=True)
        if target == "parent":
            os.kill(proc.pid, signum)
        elif target == "worker":
            os.kill(children[0].pid, signum)
        else:
            os.killpg(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    assert stderr.startswith("emrr: ") and says in stderr, stderr
    assert not out.exists(), "an event log was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "something was left beside --out (I2)"
    _wait(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children),
          "the workers to end", timeout=10)
