"""Bad input to ``emrr report``: each a one-line error, exit status 2, never a traceback, and
nothing half-written (the --out folder afterwards holds exactly what it held before; when it did
not exist, it still does not).

emrr/errors.py: "Errors a user can fix: one line each, exit status 2, never a traceback";
DESIGN.md "Dependencies" (jsonschema "with errors that name the YAML path"); rules/eventlog.py
("Missing tables or columns, and columns of the wrong type, are one-line errors naming the file
and the column"); rules/engine.py (a rule citing a column the log lacks "is an error before
anything is written"; the --out folder's state, --resume).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from emrr import cli
from emrr.rules import ruleset as ruleset_mod
from tests.conftest import merge, scenario_dict, simulate_dict

RULESET = ruleset_mod.RULES_DIR / ruleset_mod.DEFAULT_RULESET


# --------------------------------------------------------------------------- helpers


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``emrr`` in-process: (exit status, stdout, stderr). An exception that escapes main() is
    what the interpreter would print: a traceback, exit status 1."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:  # argparse --help/--version only
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported as the interpreter would
            err.write(traceback.format_exc())
            status = 1
    return status, out.getvalue(), err.getvalue()


def report(events: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("report", "--events", str(events), "--out", str(out), "--no-progress", *extra)


def snapshot(folder: Path) -> dict[str, str] | None:
    """Every file and folder under ``folder`` (hidden ones included) with its content digest."""
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def assert_user_error(status: int, stderr: str, *needles: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert status == 2, (status, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("emrr: error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def check_rejected(events: Path, out: Path, *extra: str, needles: tuple[str, ...] = ()) -> str:
    before = snapshot(out)
    status, _, stderr = report(events, out, *extra)
    line = assert_user_error(status, stderr, *needles)
    assert snapshot(out) == before, "the output folder changed"
    return line


@pytest.fixture(scope="module")
def demo_log(simulated) -> Path:
    """The demo scenario's event log (read only: tests that break a log copy it first)."""
    return simulated("demo").path


@pytest.fixture
def log_copy(demo_log, tmp_path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(demo_log, copy)
    return copy


@pytest.fixture
def rules_copy(tmp_path) -> Path:
    copy = tmp_path / "rules-copy"
    shutil.copytree(RULESET, copy)
    return copy


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    """A ruleset file edited as data: loaded, changed by ``change``, written back (comments go;
    what the YAML says stays)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _field(report: dict, name: str) -> dict:
    """A detail field of a report file's data, by name."""
    return next(f for f in report["detail"]["fields"] if f["name"] == name)


def _rewrite(part: Path, change) -> None:
    table = pq.read_table(part)
    pq.write_table(change(table), part)


def _occurred_as_string(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("occurred_at")
    return table.set_column(i, "occurred_at", table["occurred_at"].cast(pa.string()))


@pytest.fixture(scope="module")
def sharded_log(tmp_path_factory) -> Path:
    """The demo scenario in three shards (population.shard_premises 2,500): events/ holds
    part-00000 .. part-00002, as any log of more than one shard does (docs/event-log.md Layout)."""
    out = tmp_path_factory.mktemp("sharded") / "log"
    simulate_dict(merge(scenario_dict("demo"), {"population": {"shard_premises": 2500}}), out)
    assert len(list((out / "events").glob("part-*.parquet"))) >= 3
    return out


# --------------------------------------------------------------------------- rulesets


def test_unknown_ruleset_name(demo_log, tmp_path):
    """rules/ruleset.py resolve_path: an unknown ruleset name is a one-line error listing the
    known ones; --out is not created."""
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", "no-such-ruleset", needles=("no-such-ruleset", "emrr-revised"))
    assert not out.exists()


def test_ruleset_field_length_not_a_number(demo_log, rules_copy, tmp_path):
    """DESIGN.md "Rulesets" (validated by a JSON Schema) and "Dependencies" (errors name the YAML
    path): max_length "abc" is rejected naming the file, line and YAML path."""
    _edit(rules_copy / "ECOSMIG-001.yaml", lambda r: _field(r, "Device ID").update(max_length="abc"))
    check_rejected(demo_log, tmp_path / "out", "--ruleset", str(rules_copy),
                   needles=("ECOSMIG-001.yaml", "detail.fields[1].max_length", "abc"))
    assert not (tmp_path / "out").exists()


def test_ruleset_unknown_report_kind(demo_log, rules_copy, tmp_path):
    """DESIGN.md "Rulesets": a report of an unknown kind is rejected naming the file and `kind`."""
    _edit(rules_copy / "ECOSMIG-002.yaml", lambda r: r.update(kind="fancy"))
    check_rejected(demo_log, tmp_path / "out", "--ruleset", str(rules_copy),
                   needles=("ECOSMIG-002.yaml", "at kind", "fancy"))


def test_ruleset_main_file_broken(demo_log, rules_copy, tmp_path):
    """DESIGN.md "Rulesets": ruleset.yaml itself is validated too (a two-character delimiter)."""
    _edit(rules_copy / "ruleset.yaml", lambda r: r["csv"].update(delimiter=",;"))
    check_rejected(demo_log, tmp_path / "out", "--ruleset", str(rules_copy),
                   needles=("ruleset.yaml", "csv.delimiter"))


def test_ruleset_detail_column_missing_from_log(demo_log, rules_copy, tmp_path):
    """rules/engine.py _check_columns: a detail field citing a column the event log lacks is an
    error naming the report and the column, before anything is written."""
    _edit(rules_copy / "ECOSMIG-006.yaml", lambda r: _field(r, "MPxN").update(source={"column": "no_such_column"}))
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", str(rules_copy), needles=("ECOSMIG-006", "no_such_column"))
    assert not out.exists()


def test_ruleset_order_by_column_missing_from_log(demo_log, rules_copy, tmp_path):
    """A ruleset's select.order_by citing a column the event log lacks is bad input like a detail
    field citing one (rules/engine.py _check_columns): a one-line error naming the report and the
    column, nothing written."""
    _edit(rules_copy / "ECOSMIG-001.yaml", lambda r: r["select"]["order_by"].__setitem__(-1, "no_such"))
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", str(rules_copy), needles=("ECOSMIG-001", "no_such"))
    assert not out.exists()


def test_ruleset_field_type_does_not_fit_column(demo_log, rules_copy, tmp_path):
    """A detail field declared `datetime` whose column is text (Device Type) cannot be formatted:
    a one-line error naming the report and the column before anything is written."""
    _edit(rules_copy / "ECOSMIG-001.yaml", lambda r: _field(r, "Device Type").update(type="datetime"))
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", str(rules_copy), needles=("ECOSMIG-001", "device_type"))
    assert not out.exists()


def test_ruleset_bad_datetime_format(demo_log, rules_copy, tmp_path):
    """formats.datetime is a strftime pattern; one polars cannot apply is a one-line error naming
    ruleset.yaml, not a traceback."""
    _edit(rules_copy / "ruleset.yaml", lambda r: r["formats"].update(datetime="%Q"))
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", str(rules_copy), needles=("ruleset.yaml",))
    assert not out.exists()


def test_ruleset_sequence_max_exceeded_leaves_nothing(demo_log, rules_copy, tmp_path):
    """EMRR App. B / App. A header (Report Sequence Number, Integer 6); ruleset sequence.max: a
    log needing more files than the ruleset's maximum allows is a one-line error, and nothing is
    left half-written."""
    _edit(rules_copy / "ruleset.yaml", lambda r: r["sequence"].update(max=3))
    out = tmp_path / "out"
    check_rejected(demo_log, out, "--ruleset", str(rules_copy), needles=("sequence",))
    assert not out.exists()


# --------------------------------------------------------------------------- event logs


def test_event_log_without_events_table(log_copy, tmp_path):
    """docs/event-log.md Layout; rules/eventlog.py: a log without events/ is a one-line error."""
    shutil.rmtree(log_copy / "events")
    out = tmp_path / "out"
    check_rejected(log_copy, out, needles=(str(log_copy), "events"))
    assert not out.exists()


def test_event_log_not_a_directory(tmp_path):
    """rules/eventlog.py: --events that is not a folder."""
    check_rejected(tmp_path / "nothing-here", tmp_path / "out", needles=("nothing-here",))
    assert not (tmp_path / "out").exists()


def test_events_missing_column(log_copy, tmp_path):
    """docs/event-log.md events (mpxn is a documented column); rules/eventlog.py: a part without it
    is a one-line error naming the file and the column."""
    part = log_copy / "events" / "part-00000.parquet"
    _rewrite(part, lambda t: t.drop_columns(["mpxn"]))
    out = tmp_path / "out"
    check_rejected(log_copy, out, needles=("part-00000.parquet", "mpxn"))
    assert not out.exists()


def test_events_column_of_wrong_type(log_copy, tmp_path):
    """docs/event-log.md "Types": occurred_at is a UTC timestamp; written as text it is a one-line
    error naming the file and the column."""
    part = log_copy / "events" / "part-00000.parquet"
    _rewrite(part, _occurred_as_string)
    out = tmp_path / "out"
    check_rejected(log_copy, out, needles=("part-00000.parquet", "occurred_at"))
    assert not out.exists()


def test_sharded_log_reports(sharded_log, tmp_path):
    """The unbroken three-shard log is reported without error (the baseline of the two tests below)."""
    status, _, stderr = report(sharded_log, tmp_path / "out")
    assert status == 0, stderr


def test_events_later_part_missing_column(sharded_log, tmp_path):
    """docs/event-log.md Layout ("A table is the union of its part files"); rules/eventlog.py: any
    part lacking a column is a one-line error naming that file and the column."""
    log = tmp_path / "log"
    shutil.copytree(sharded_log, log)
    _rewrite(log / "events" / "part-00001.parquet", lambda t: t.drop_columns(["mpxn"]))
    out = tmp_path / "out"
    check_rejected(log, out, needles=("part-00001.parquet", "mpxn"))
    assert not out.exists()


def test_events_later_part_wrong_type(sharded_log, tmp_path):
    """As above, for a column of the wrong type in a part other than the first."""
    log = tmp_path / "log"
    shutil.copytree(sharded_log, log)
    _rewrite(log / "events" / "part-00002.parquet", _occurred_as_string)
    out = tmp_path / "out"
    check_rejected(log, out, needles=("part-00002.parquet", "occurred_at"))
    assert not out.exists()


def test_supplier_id_not_a_sec_party_id_leaves_nothing(log_copy, tmp_path):
    """docs/event-log.md suppliers/premises (SEC Party ID, 6 characters) and App. B (the Party ID
    names the file): a log whose supplier is 'PX-006' is a one-line error, nothing half-written."""
    part = log_copy / "premises" / "part-00000.parquet"

    def rename(table: pa.Table) -> pa.Table:
        for column in ("electricity_supplier", "gas_supplier"):
            i = table.schema.get_field_index(column)
            values = [None if v is None else ("PX-006" if v == "PXX006" else v)
                      for v in table[column].to_pylist()]
            table = table.set_column(i, column, pa.array(values, pa.string()))
        return table

    _rewrite(part, rename)
    changes = log_copy / "supply_changes" / "part-00000.parquet"

    def rename_changes(table: pa.Table) -> pa.Table:
        for column in ("losing_supplier", "gaining_supplier"):
            i = table.schema.get_field_index(column)
            values = [("PX-006" if v == "PXX006" else v) for v in table[column].to_pylist()]
            table = table.set_column(i, column, pa.array(values, pa.string()))
        return table

    _rewrite(changes, rename_changes)
    out = tmp_path / "out"
    check_rejected(log_copy, out, needles=("PX-006",))
    assert not out.exists()


# --------------------------------------------------------------------------- the output folder


def test_out_holding_another_logs_run(demo_log, simulated, tmp_path):
    """rules/engine.py Output: --out holding a run of another event log is refused, with or without
    --resume, and left as it was."""
    out = tmp_path / "out"
    status, _, stderr = report(demo_log, out)
    assert status == 0, stderr
    other = simulated("late_data").path
    check_rejected(other, out, needles=(str(out), "another run"))
    check_rejected(other, out, "--resume", needles=(str(out), "another run"))


def test_out_holding_same_run_without_resume(demo_log, tmp_path):
    """rules/engine.py Output: the same event log again into a finished run's folder, without
    --resume, is refused with an error telling to use --resume."""
    out = tmp_path / "out"
    status, _, stderr = report(demo_log, out)
    assert status == 0, stderr
    check_rejected(demo_log, out, needles=(str(out), "--resume"))


def test_out_holding_unrelated_files(demo_log, tmp_path):
    """rules/engine.py Output: a folder with files that are not a report run is refused."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    (out / "sub" / "ECOSMIG-001_PXX001_1_20230704060000.csv").write_text("00\r\n", encoding="utf-8")
    check_rejected(demo_log, out, needles=(str(out),))
    check_rejected(demo_log, out, "--resume", needles=(str(out),))


def test_out_is_a_file(demo_log, tmp_path):
    """--out naming an existing regular file is a one-line error; the file is untouched."""
    out = tmp_path / "out"
    out.write_text("precious\n", encoding="utf-8")
    status, _, stderr = report(demo_log, out)
    assert_user_error(status, stderr, str(out))
    assert out.read_text(encoding="utf-8") == "precious\n"


def test_out_holding_another_rulesets_run(demo_log, rules_copy, tmp_path):
    """rules/engine.py Output ("holds another run's files (another event log or ruleset)"); DESIGN.md
    user 1 edits a ruleset to see what a change does: --resume into a folder written with another
    ruleset, even one keeping the same name, is refused and the folder left as it was."""
    out = tmp_path / "out"
    status, _, stderr = report(demo_log, out)
    assert status == 0, stderr
    _edit(rules_copy / "ruleset.yaml", lambda r: r["reports"].pop())  # one report fewer
    check_rejected(demo_log, out, "--resume", "--ruleset", str(rules_copy), needles=(str(out), "another run"))


def test_out_holding_run_of_same_sized_log(demo_log, tmp_path):
    """docs/event-log.md (anyone's log, manifest.json optional for a reader); rules/engine.py Output:
    a different event log whose files have the same sizes is still another log: the error says
    the folder holds another run's files, not to use --resume."""
    a, b = tmp_path / "a", tmp_path / "b"
    for log in (a, b):
        shutil.copytree(demo_log, log)
        (log / "manifest.json").unlink()
    part = "events/part-00000.parquet"
    table = pq.read_table(demo_log / part)
    pq.write_table(table, a / part, compression="none")
    ids = table["device_id"].to_pylist()
    i = table["event_type"].to_pylist().index("migration_success")
    ids[i] = ids[i][:-1] + ("0" if ids[i][-1] != "0" else "1")
    changed = table.set_column(table.schema.get_field_index("device_id"), "device_id", pa.array(ids, pa.string()))
    pq.write_table(changed, b / part, compression="none")
    assert (a / part).stat().st_size == (b / part).stat().st_size  # the premise of the test
    assert (a / part).read_bytes() != (b / part).read_bytes()
    out = tmp_path / "out"
    status, _, stderr = report(a, out)
    assert status == 0, stderr
    check_rejected(b, out, needles=(str(out), "another run"))


def test_ruleset_of_another_regime(demo_log, tmp_path):
    """Issue 10 (bad input): the SMETS1 MRR ruleset over an ECoS event log is refused in one line
    naming the log and both regimes, and nothing is written (a ruleset names the regime it reports
    on; the log's manifest.json says which it holds)."""
    out = tmp_path / "out"
    status, _, stderr = report(demo_log, out, "--ruleset", "smets1-mrr-v3.0")
    line = assert_user_error(status, stderr, "regime 'ecos'", "smets1-mrr-v3.0", "'smets1'")
    assert str(demo_log) in line
    assert not out.exists()


def test_manifest_names_an_unknown_regime(log_copy, tmp_path):
    """Issue 10: a manifest.json naming a regime no ruleset reads is one line naming the file."""
    manifest = log_copy / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**data, "regime": "smets2"}), encoding="utf-8")
    status, _, stderr = report(log_copy, tmp_path / "out")
    assert_user_error(status, stderr, "manifest.json", "'smets2'", "ecos, smets1")
