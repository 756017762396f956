"""Properties of the SMETS1 reports on a simulated history (issue 10 deliverable 5): the reference
engine's files for scenarios/smets1.yaml under the MRR rulesets hold every completed and failed
migration once in each right recipient's files, S1MIG-006 reconciles with S1MIG-001 under v3.0,
and file names and sequence numbers read as the MRR's Appendix B says.

Events near the end of the period may sit beyond the period's last run (the engine's summary says
how many): the record-for-record properties are asserted on the events that happened at least two
days before the period's end and were known a day before it, on both sides.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pytest

from emrr.rules import ruleset

UTC = dt.timezone.utc
NAME = re.compile(r"^(S1MIG-0(?:0[1-9]|10))_([A-Z0-9]{6})_((?:[0-9A-F]{2}-){7}[0-9A-F]{2})_([0-9]{6})_"
                  r"([0-9]{8}T[0-9]{6})\.csv$")


def table(log: Path, name: str) -> pl.DataFrame:
    path = log / name if (log / name).is_dir() else log / f"{name}.parquet"
    frame = pl.read_parquet(path / "*.parquet" if path.is_dir() else path)
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def period(log: Path) -> tuple[dt.datetime, dt.datetime]:
    p = json.loads((log / "manifest.json").read_text(encoding="utf-8"))["period"]
    return tuple(dt.datetime.fromisoformat(p[k].replace("Z", "+00:00")) for k in ("start", "end"))


def read_files(reports: Path, report_id: str) -> list[dict]:
    """Every file of a report: its path, name parts, header and detail rows (as dicts by field name)."""
    rs = ruleset.load("smets1-mrr-v3.0")
    report = rs.reports[report_id]
    names = [f.name for f in report.detail]
    header_names = [f.name for f in report.header_fields(rs)]
    out = []
    for path in sorted(reports.glob(f"*/{report_id}_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        out.append({"path": path, "name": NAME.match(path.name), "header": dict(zip(header_names, rows[0])),
                    "records": [dict(zip(names, row)) for row in rows[1:]]})
    return out


def t(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def log(smets1_log) -> Path:
    return smets1_log


@pytest.fixture(scope="module")
def v30(smets1_reports) -> Path:
    return smets1_reports("smets1-mrr-v3.0")


@pytest.fixture(scope="module")
def outcomes(log) -> pl.DataFrame:
    """Each outcome event once (first notification), with its Installation's ID and recipients."""
    events = table(log, "events").filter(~pl.col("duplicate"))
    inst = table(log, "installations").select("installation_index", "installation_id", "mpan_recipient_id",
                                              "mprn_recipient_id", "dno_user_id")
    return (events.filter(pl.col("event_type").is_in(["migration_completed", "migration_failed"]))
            .join(inst, on="installation_index", how="left"))


def settled(log: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """The events the properties are asserted on: happened two days before the period's end and known a day before."""
    _, end = period(log)
    return frame.filter((pl.col("occurred_at") <= end - dt.timedelta(days=2))
                        & (pl.col("notified_at") <= end - dt.timedelta(days=1)))


@pytest.mark.parametrize("report_id, event_type, when", [
    ("S1MIG-001", "migration_completed", "Migration Completion DateTime"),
    ("S1MIG-002", "migration_failed", "Migration Failure DateTime"),
])
def test_every_outcome_once_in_each_right_recipients_files(log, v30, outcomes, report_id, event_type, when):
    """MRR S1MIG-001 (002:L228: one record for each successful COF / S1SP Commissioning File record)
    and S1MIG-002 (002:L304: each failed one), delivered to "Responsible Supplier; Distribution
    Network Operator" (002:L210, L286): each outcome of the log is exactly one record in the files
    of each of its recipients (each meter's supplier, or the submitter of an Affiliates' joint MA,
    002:L73; and the MPAN's DNO), and in nobody else's."""
    mine = settled(log, outcomes.filter(pl.col("event_type") == event_type))
    assert mine.height > 50, "the scenario exercises this report"
    expected: Counter = Counter()
    keys = set()
    for row in mine.iter_rows(named=True):
        key = (row["installation_id"], row["occurred_at"].replace(microsecond=0))
        keys.add(key)
        for who in {row["mpan_recipient_id"], row["mprn_recipient_id"], row["dno_user_id"]} - {None}:
            expected[(who, *key)] += 1
    actual: Counter = Counter()
    for f in read_files(v30, report_id):
        recipient = f["header"]["Report Recipient User ID"]
        for r in f["records"]:
            key = (r["Installation ID (CHF ID)"], t(r[when]))
            if key in keys:
                actual[(recipient, *key)] += 1
    assert actual == expected


def test_s1mig006_successes_reconcile_with_s1mig001_under_v30(log, v30):
    """spec/004 §4.4 (004:L115): 'the Installation records reported as successfully completed in
    S1MIG-006 should match the corresponding installation records in S1MIG-001': for each supplier,
    the Installations of its S1MIG-006 'Success' records (found by their MPAN or MPRN) are the
    Installations of its S1MIG-001 records, over the settled part of the period."""
    _, end = period(log)
    cutoff = end - dt.timedelta(days=2)
    inst = table(log, "installations")
    by_mpxn = {m: i for m, i in zip(inst["import_mpan"], inst["installation_id"]) if m}
    by_mpxn |= {m: i for m, i in zip(inst["mprn"], inst["installation_id"]) if m}
    suppliers = set(table(log, "parties").filter(pl.col("role") == "supplier")["user_id"])
    success: dict[str, set] = defaultdict(set)
    for f in read_files(v30, "S1MIG-006"):
        for r in f["records"]:
            if r["Completion Status"] == "Success" and dt.datetime.strptime(r["Completion Date"], "%Y%m%d").replace(
                    tzinfo=UTC) < cutoff - dt.timedelta(days=1):
                mpxn = r["Import MPAN"] or r["MPRN"]
                success[f["header"]["Report Recipient User ID"]].add(by_mpxn[mpxn])
    completed: dict[str, set] = defaultdict(set)
    for f in read_files(v30, "S1MIG-001"):
        recipient = f["header"]["Report Recipient User ID"]
        if recipient not in suppliers:
            continue  # a DNO receives S1MIG-001 but no S1MIG-006
        for r in f["records"]:
            if t(r["Migration Completion DateTime"]) < cutoff - dt.timedelta(days=1):
                completed[recipient].add(r["Installation ID (CHF ID)"])
    assert sum(len(v) for v in completed.values()) > 100
    assert dict(success) == dict(completed)


def test_file_names_and_sequence_numbers(log, v30):
    """MRR App. B (002:L741-751): '<ReportID>_<6 character SEC Party Signifier>_<23 character User
    ID>_<Report Sequence Number>_<Report DateTime>', the Signifier that of the User ID's SEC Party
    (the parties table), in the Party's folder (002:L737); the sequence number 'set at 000001 for
    the report generated in respect of the Report ID and User ID combination, and then incremented
    by 1 for each successive issue', six digits in the name and the same number in the header."""
    parties = dict(zip(*table(log, "parties").select("user_id", "party_signifier").to_dict(as_series=False).values()))
    for report_id in ruleset.load("smets1-mrr-v3.0").reports:
        numbers: dict[str, list] = defaultdict(list)
        files = read_files(v30, report_id)
        assert files, f"{report_id}: the scenario exercises every report"
        for f in files:
            m = f["name"]
            assert m, f["path"].name
            rid, signifier, user, sequence, created = m.groups()
            assert rid == report_id and parties[user] == signifier and f["path"].parent.name == signifier
            assert f["header"]["Report Recipient User ID"] == user
            assert int(f["header"]["Report Sequence Number"]) == int(sequence)
            assert f["header"]["Report Creation DateTime"] == created
            numbers[user].append((created, int(sequence)))
        for user, seen in numbers.items():
            assert [s for _, s in sorted(seen)] == list(range(1, len(seen) + 1)), (report_id, user)
