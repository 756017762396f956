"""Ground truth reads the reference engine's files with the checker's own reader (issue 8
deliverable 8; review B7: ``Comparison`` split the reference's bodies again, a copy of
``reading.details_frame`` and its csv path)."""

from __future__ import annotations

import csv
import io

import polars as pl
from polars.testing import assert_frame_equal

from emrr.conformance.findings import Collector
from emrr.conformance.groundtruth import GroundTruth, MonthlyRecords
from emrr.rules import ruleset

RS = ruleset.load(None)


def test_reference_records_read_alike_quoted_or_not(golden_log):
    """protects the ground-truth matching: the reference's detail records, read by the checker's
    reader, are the same frame (rfid, rline, fields as text) whether the files are written plainly
    or with every field quoted (RFC 4180, the csv path)."""
    gt = GroundTruth(golden_log, RS, Collector())
    try:
        for report in RS.reports.values():
            comparison = MonthlyRecords(gt, report)
            files = sorted((r for r in gt.ref_files if r.report == report.id), key=lambda r: r.rfid)
            if not files:  # a report the golden log gives no file (one a ruleset adds): nothing to read
                continue
            plain = comparison.records_of(files)
            assert plain.height == sum(r.records for r in files) and plain.columns[:2] == ["rfid", "rline"]
            for r in files:  # every field of every record quoted
                path = gt.ref_root / r.rel
                rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
                out = io.StringIO(newline="")
                csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
                path.write_text(out.getvalue(), encoding="utf-8", newline="")
            quoted = comparison.records_of(files)
            assert_frame_equal(quoted, plain)
            assert plain.select(pl.col("rline").min()).item() == 2  # the header is line 1
    finally:
        gt.close()
