"""Measure the checker on one synthetic file: ``python benchmarks/bench_check_one.py [--records N] [--demo DIR]``.

Writes one synthetic, valid ECOSMIG-001 file of N detail records (default 999,999, the most
Rows Count can hold) with the ruleset's own layout, checks it in this process (the ruleset loaded
beforehand), and prints records per second; with ``--demo DIR`` also checks a report tree (e.g.
the output of ``emrr run scenarios/demo.yaml``).  Nothing is written to benchmarks/results/:
``bench_check.py`` records the checker's figures on the national output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from emrr.conformance.checker import check
from emrr.rules import ruleset as rules

UTC = dt.UTC


def synthetic_001(folder: Path, records: int, recipient: str = "PXX001", seed: int = 1) -> Path:
    """A valid ECOSMIG-001 file of ``records`` successes on 2023-07-03 (created 07-04 06:00)."""
    rs = rules.load(None)
    report = rs.reports["ECOSMIG-001"]
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(2023, 7, 3, tzinfo=UTC).timestamp())
    times = np.sort(rng.integers(start, start + 86400, records))
    ids = np.arange(records, dtype=np.uint64) + np.uint64(0x00_1A_2B_00_00_00_00_00)
    hexes = [f"{v:016X}" for v in ids.tolist()]
    device_ids = ["-".join((h[0:2], h[2:4], h[4:6], h[6:8], h[8:10], h[10:12], h[12:14], h[14:16])) for h in hexes]
    frame = pl.DataFrame({"id": device_ids, "t": times}).select(
        pl.lit("10").alias("Record type"), pl.col("id").alias("Device ID"),
        pl.lit("1312345678907").alias("MPxN"), pl.lit("ESME").alias("Device Type"),
        pl.lit("1057").alias("Manufacturer"),
        pl.lit("54342152").alias("Model"), pl.lit("00123402").alias("Firmware"),
        pl.from_epoch("t", time_unit="s").dt.strftime(rs.datetime_format).alias("Completion"),
    )
    assert frame.width == len(report.detail)
    created = dt.datetime(2023, 7, 4, 6, tzinfo=UTC)
    values = {"report_id": report.id, "recipient": recipient, "sequence": "1", "title": report.title,
              "created": created.strftime(rs.datetime_format), "window_start": "20230703T000000",
              "window_end": "20230703T235959", "rows_count": str(records)}
    header = ",".join(f.source if f.source_kind == "constant" else values[f.source] for f in rs.header)
    trailer = ",".join(f.source if f.source_kind == "constant" else values[f.source] for f in rs.trailer)
    target = folder / recipient / rs.file_name(report.id, recipient, 1, created)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        out.write(header.encode() + b"\r\n")
        frame.write_csv(out, include_header=False, line_terminator="\r\n", quote_style="necessary")
        out.write(trailer.encode() + b"\r\n")
    return target


def measure(directory: Path) -> tuple[float, int, dict]:
    """Seconds to check ``directory`` (the ruleset loaded beforehand), detail records, totals."""
    rs = rules.load(None)
    started = time.perf_counter()
    verdict = check(directory, rs, max_examples=100)
    return time.perf_counter() - started, verdict.records, verdict.totals


def main(argv: list[str] | None = None) -> None:
    """Check the synthetic file (and ``--demo DIR``) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=999_999,
                        help="detail records (a file holds at most 999,999: Rows Count is Integer(6))")
    parser.add_argument("--demo", help="also check this report tree")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    if args.demo:
        seconds, records, totals = measure(Path(args.demo))
        print(f"{args.demo}: {records:,} detail records in {seconds:.2f} s = {records / seconds:,.0f} records/s; "
              f"findings {totals}")
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic_001(Path(tmp), args.records)
        size = path.stat().st_size
        seconds, records, totals = measure(Path(tmp))
        print(f"synthetic ECOSMIG-001 ({size / 1e6:,.0f} MB): {records:,} detail records in {seconds:.2f} s = "
              f"{records / seconds:,.0f} records/s; findings {totals}")


if __name__ == "__main__":
    main()
