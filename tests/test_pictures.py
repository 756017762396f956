"""summary.html (issue 12 deliverable 1; docs/pictures.md): every chart of the page of a run
against aggregates computed here independently, from the event log with pyarrow and from the
report files as written (never through emrr.pictures); the page self-contained, offline,
byte-reproducible; in headless Chromium where it is installed, every chart drawn."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from emrr import cli, pictures
from emrr.rules import ruleset

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo run as `emrr run` writes it: OUT/events, OUT/reports, OUT/summary.html."""
    out = tmp_path_factory.mktemp("pictures") / "demo"
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress",
                     "--no-check"]) == 0
    return out


@pytest.fixture(scope="module")
def page(demo) -> str:
    return (demo / "summary.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rules():
    return ruleset.load(None)


def chart(page: str, name: str) -> list[dict]:
    """The rows a chart of the page draws: its Vega-Lite specification's inline dataset."""
    found = re.search(rf'<script type="application/json" id="chart-{name}">(.*?)</script>', page, re.S)
    assert found, f"no chart {name} in the page"
    spec = json.loads(found.group(1))
    names = [v for k, v in _walk(spec) if k == "name" and v in spec.get("datasets", {})]
    assert len(set(names)) == 1, names
    return spec["datasets"][names[0]]


def _walk(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def table(page: str, heading: str) -> list[dict]:
    """An HTML table of the page, under its <h2>, as rows of text keyed by column."""
    block = page.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    heads = re.findall(r"<th>(.*?)</th>", block)
    rows = re.findall(r"<tr>(<td>.*?)</tr>", block)
    return [dict(zip(heads, re.findall(r"<td>(.*?)</td>", r))) for r in rows]


_ROWS: dict[Path, list[dict]] = {}


def events(log: Path, types: set[str]) -> list[dict]:
    """Each event of the types once (docs/event-log.md: a duplicated notification is one event)."""
    if log not in _ROWS:
        table = pq.read_table(log / "events", columns=["event_type", "occurred_at", "duplicate", "device_index",
                                                        "error_code", "error_sub_code", "model",
                                                        "responsible_supplier"])
        _ROWS[log] = table.filter(pc.invert(table["duplicate"])).to_pylist()
    return [r for r in _ROWS[log] if r["event_type"] in types]


def day(t: dt.datetime) -> str:
    return t.astimezone(UTC).date().isoformat()


def test_progress_is_the_cumulative_count_of_each_event_type(demo, page):
    """Migration progress: migrated, failed attempts and installs, cumulative by the day they happened."""
    rows = chart(page, "progress")
    drawn = collections.defaultdict(dict)
    for r in rows:
        drawn[r["series"]][r["day"]] = r["devices"]
    for event_type, series in (("migration_success", "migrated"), ("migration_failure", "failed attempts"),
                               ("install", "installed")):
        per_day = collections.Counter(day(e["occurred_at"]) for e in events(demo / "events", {event_type}))
        days = sorted(drawn[series])
        assert days[0] == "2023-07-01" and days[-1] == "2023-09-30" and len(days) == 92
        expected = np.cumsum([per_day.get(d, 0) for d in days])
        assert [drawn[series][d] for d in days] == expected.tolist(), series


def test_non_migratable_line_is_what_the_snapshot_report_counts(demo, page, rules):
    """Devices still Non-Migratable: ECOSMIG-004's Devices Count summed over recipients per window end
    (EMRR App. A ECOSMIG-004), read from the files with the csv module."""
    manifest = json.loads((demo / "reports" / "run-manifest.json").read_text())
    report = rules.reports["ECOSMIG-004"]
    at = [f.source for f in report.detail].index("devices_count")
    expected = collections.Counter()
    for entry in manifest["files"]:
        if entry["report_id"] != "ECOSMIG-004":
            continue
        with open(demo / "reports" / entry["path"], newline="", encoding="utf-8") as handle:
            records = list(csv.reader(handle))[1:-1]
        expected[entry["window_end"][:10]] += sum(int(r[at]) for r in records)
    drawn = {r["day"]: r["devices"] for r in chart(page, "progress") if r["series"] == "Non-Migratable (reported)"}
    assert drawn == dict(expected) and len(drawn) > 5 and max(drawn.values()) > 0


def test_daily_attempts_by_outcome(demo, page):
    expected = collections.Counter((day(e["occurred_at"]), e["event_type"])
                                   for e in events(demo / "events", {"migration_success", "migration_failure"}))
    outcome = {"migration_success": "succeeded", "migration_failure": "failed"}
    drawn = {(r["day"], r["outcome"]): r["attempts"] for r in chart(page, "daily_attempts")}
    assert drawn == {(d, outcome[t]): n for (d, t), n in expected.items()}


def test_failures_by_error_code_and_by_model(demo, page):
    failures = events(demo / "events", {"migration_failure"})
    by_error = collections.Counter(f"{e['error_code']}/{e['error_sub_code']}" for e in failures)
    by_model = collections.Counter(e["model"] for e in failures)
    assert {r["error"]: r["failures"] for r in chart(page, "failures_by_error")} == dict(by_error)
    assert {r["model"]: r["failures"] for r in chart(page, "failures_by_model")} == dict(by_model)
    assert sum(by_error.values()) == len(failures) > 1000


def test_attempts_per_device_counts_each_device_once(demo, page):
    """Devices by their number of attempts, grouped here by device (the page counts attempt numbers)."""
    attempts = collections.Counter(e["device_index"] for e in
                                   events(demo / "events", {"migration_success", "migration_failure"}))
    expected = collections.Counter(attempts.values())
    assert {r["attempts"]: r["devices"] for r in chart(page, "attempts_per_device")} == dict(expected)
    assert len(expected) >= 2


def test_files_and_records_per_report_per_day_and_busiest_days(demo, page):
    """Files a day and records a day per report, and records a day per supplier (its folder), from the
    files on disk: a file's day is the creation time in its name (EMRR App. B), its records the lines
    between header and trailer."""
    files = collections.Counter()
    records = collections.Counter()
    for path in (demo / "reports").rglob("*.csv"):
        lines = path.read_bytes().decode().split("\r\n")
        header = next(csv.reader([lines[0]]))
        report_id = header[1]
        created = dt.datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d%H%M%S").date().isoformat()
        files[report_id, created] += 1
        records[report_id, created] += len(lines) - 3  # header, trailer, the empty text after the last CRLF
    drawn = chart(page, "files_per_day")
    assert {(r["report_id"], r["day"]): r["files"] for r in drawn} == dict(files)
    assert {(r["report_id"], r["day"]): r["records"] for r in drawn} == dict(records)
    assert chart(page, "records_per_day") == drawn
    per_supplier = collections.Counter()
    for path in (demo / "reports").rglob("*.csv"):
        created = dt.datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d%H%M%S").date().isoformat()
        per_supplier[path.parent.name, created] += len(path.read_bytes().split(b"\r\n")) - 3
    assert {(r["recipient"], r["day"]): r["records"] for r in chart(page, "supplier_days")} == dict(per_supplier)
    busiest = table(page, "Busiest days per report (by records)")
    for report_id in {k[0] for k in files}:
        mine = sorted(((-n, d) for (rid, d), n in records.items() if rid == report_id))[:pictures.BUSIEST]
        listed = [(int(r["records"].replace(",", "")), r["day"]) for r in busiest if r["report_id"] == report_id]
        assert listed == [(-n, d) for n, d in mine], report_id


def _file_latencies(demo: Path, rules) -> dict[str, list[int]]:
    """Seconds from each record's event time (its occurred_at field) to its file's creation, read from
    the files (the way emrr impact reads them), per report that has such a field."""
    out = collections.defaultdict(list)
    for report_id, report in rules.reports.items():
        at = next((i for i, f in enumerate(report.detail) if f.source == "occurred_at"), None)
        if at is None or report.assignment != "previously_unreported":
            continue
        for path in (demo / "reports").rglob(f"{report_id}_*.csv"):
            created = dt.datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            with open(path, newline="", encoding="utf-8") as handle:
                for record in list(csv.reader(handle))[1:-1]:
                    when = dt.datetime.strptime(record[at], rules.datetime_format).replace(tzinfo=UTC)
                    out[report_id].append(int((created - when).total_seconds()))
    return out


def test_latency_equals_the_files(demo, page, rules):
    """Latency from the event to its report (EMRR §3.1.6): the page's histogram and p50/p95/max are
    the files' own, though the page works them out from the log with the engine's assignment."""
    latencies = _file_latencies(demo, rules)
    assert set(latencies) == {"ECOSMIG-001", "ECOSMIG-002", "ECOSMIG-006"}
    rows = table(page, "Latency per report (hours)")
    bars = chart(page, "latency")
    for report_id, seconds in latencies.items():
        seconds = np.array(seconds)
        row = next(r for r in rows if r["report_id"] == report_id)
        assert int(row["records"].replace(",", "")) == len(seconds)
        p50, p95 = np.percentile(seconds, [50, 95]) / 3600
        assert row["p50_hours"] == f"{p50:,.3f}" and row["p95_hours"] == f"{p95:,.3f}"
        assert row["max_hours"] == f"{seconds.max() / 3600:,.3f}"
        mine = [b for b in bars if b["report_id"] == report_id]
        assert sum(b["records"] for b in mine) == len(seconds)
        for b in mine:
            inside = ((seconds >= b["from_hours"] * 3600) & (seconds < b["to_hours"] * 3600)).sum()
            assert inside == b["records"], (report_id, b)


def test_supplier_table_counts_each_suppliers_files_and_events(demo, page):
    rows = {r["recipient"]: r for r in table(page, "Per supplier")}
    manifest = json.loads((demo / "reports" / "run-manifest.json").read_text())
    files = collections.Counter((e["recipient"], e["report_id"]) for e in manifest["files"])
    migrated = collections.Counter(e["responsible_supplier"] for e in events(demo / "events", {"migration_success"}))
    assert set(rows) == {r for r, _ in files}
    for (party, report_id), n in files.items():
        assert rows[party][f"{report_id} files"] == f"{n:,}"
    for party, n in migrated.items():
        if party is not None:
            assert rows[party]["migrated"] == f"{n:,}"


class _Remote(html.parser.HTMLParser):
    """Every attribute of the page that could make a browser fetch something."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action") or tag == "link":
                self.found.append((tag, name, value))


def test_page_is_self_contained_small_and_reproducible(demo, page, rules, tmp_path):
    """It opens offline: no element loads anything (scripts and styles inline), no spec names a URL;
    under 5 MB; the same run gives the same bytes (DESIGN.md determinism)."""
    parser = _Remote()
    parser.feed(page)
    assert parser.found == []
    for block in re.findall(r'<script type="application/json" id="chart-[a-z_]+">(.*?)</script>', page, re.S):
        assert "http" not in block and '"url"' not in block
    assert len(page.encode()) < 5_000_000
    again = pictures.write_run_page(demo / "events", demo / "reports", rules, tmp_path / "again.html")
    assert again.read_bytes() == (demo / "summary.html").read_bytes()


def test_run_twice_replaces_its_page(demo, tmp_path):
    """`emrr run` into an earlier run's folder (events/, reports/, summary.html) replaces all three."""
    out = tmp_path / "again"
    shutil.copytree(demo, out)
    before = (out / "summary.html").stat().st_mtime_ns
    assert cli.main(["run", str(ROOT / "scenarios" / "demo.yaml"), "--out", str(out), "--no-progress",
                     "--no-check"]) == 0
    assert (out / "summary.html").stat().st_mtime_ns != before
    assert (out / "summary.html").read_bytes() == (demo / "summary.html").read_bytes().replace(
        str(demo).encode(), str(out).encode())


def test_report_writes_the_page_beside_the_reports(demo, tmp_path, capsys):
    out = tmp_path / "reports"
    assert cli.main(["report", "--events", str(demo / "events"), "--out", str(out), "--no-progress"]) == 0
    assert (out / "summary.html").is_file() and "summary page:" in capsys.readouterr().out
    # the checker reads the report files only: the page beside them is not a finding
    assert cli.main(["check", str(out)]) == 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (README: apt-get install chromium)")
def test_every_chart_is_drawn_in_headless_chromium(demo, page, tmp_path):
    """Opened in a real browser (headless Chromium, no network needed), every chart's view holds an
    SVG with marks and no error; a screenshot is taken."""
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--virtual-time-budget=15000", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (demo / "summary.html").as_uri()
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    names = re.findall(r'id="chart-([a-z_]+)"', page)
    assert len(names) == 9
    for name in names:
        view = dom.split(f'id="view-{name}"', 1)[1].split('<script type="application/json"', 1)[0]
        assert "<svg" in view and 'class="mark-' in view and "chart error" not in view, name
    shot = tmp_path / "summary.png"
    subprocess.run([*common, "--window-size=1200,3000", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120)
    assert shot.stat().st_size > 50_000


def test_impact_page_shows_old_and_new_side_by_side(demo, tmp_path):
    """`emrr impact` writes DIR/summary.html: per report, both sides' files, records and latency as
    impact.json has them, and files a day per side from each side's delivery."""
    out = tmp_path / "impact"
    assert cli.main(["impact", "emrr-pre-revision", "emrr-revised", "--events", str(demo / "events"), "--out",
                     str(out), "--no-progress"]) == 0
    page = (out / "summary.html").read_text(encoding="utf-8")
    data = json.loads((out / "impact.json").read_text())
    rows = table(page, "Per report")
    for report_id, r in data["reports"].items():
        for side in ("old", "new"):
            row = next(x for x in rows if x["report_id"] == report_id and x["ruleset"] == f"{side}: {data[side]}")
            assert row["files"] == f"{r[side]['files']:,}" and row["records"] == f"{r[side]['records']:,}"
    drawn = collections.Counter()
    for r in chart(page, "files_per_day"):
        drawn[r["ruleset"].split(":")[0], r["report_id"]] += r["files"]
    for side in ("old", "new"):
        on_disk = collections.Counter(p.name.split("_")[0] for p in (out / side).rglob("*.csv"))
        assert {rid: n for (s, rid), n in drawn.items() if s == side} == dict(on_disk), side
    parser = _Remote()
    parser.feed(page)
    assert parser.found == []
