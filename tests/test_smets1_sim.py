"""The SMETS1 simulator (issue 10, deliverable 1): the scenario's reference data checked in one line,
byte-identical logs whatever the workers, the event log's contract (docs/event-log.md "The SMETS1 event
log", emrr.contract.SMETS1_TABLES), and the invariants of spec/002 §2.1.2's file flows on
scenarios/smets1.yaml."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mpan
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from emrr import cli
from emrr.contract import SMETS1, SMETS1_DEVICES, SMETS1_EVENT_TYPES, SMETS1_TABLES, parse_instant
from emrr.sim import identifiers, regime
from tests.conftest import ROOT, merge

SCENARIO = ROOT / "scenarios" / "smets1.yaml"


def scenario_text(overrides: dict | None = None, drop: tuple = ()) -> str:
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    data = merge(data, overrides or {})
    for path in drop:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return yaml.safe_dump(data, sort_keys=False)


def simulate(text: str, out: Path, workers: int = 1, name: str = "s.yaml") -> int:
    path = out.parent / name
    path.write_text(text, encoding="utf-8")
    return cli.main(["simulate", str(path), "--out", str(out), "--workers", str(workers), "--no-progress"])


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """scenarios/smets1.yaml simulated once for this module."""
    out = tmp_path_factory.mktemp("smets1") / "log"
    summary = regime.simulate(regime.load(SCENARIO), out, progress=False)
    assert summary.counts["installations"] == 3000
    return out


@pytest.fixture(scope="module")
def events(log) -> pl.DataFrame:
    frame = pl.read_parquet(log / "events" / "*.parquet")
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


@pytest.fixture(scope="module")
def originals(events) -> pl.DataFrame:
    return events.filter(~pl.col("duplicate"))


DELAY = {"distribution": "uniform", "min": "1h", "max": "20h"}
HARSH = {  # every failure kind frequent, many retries, much late and duplicated data
    "name": "smets1-harsh",
    "population": {"installations": 1500, "shard_installations": 1000, "dormant_share": 0.2,
                   "split_supplier_share": 0.4},
    "authorisations": {"rejection_probability": 0.15, "not_used_probability": 0.1, "warning_probability": 0.2},
    "migration": {"da_prevalidation": {"failure_probability": 0.3},
                  "mcvf": {"failure_probability": 0.1, "latency": DELAY},
                  "s1sp": {"failure_probability": 0.35, "latency": DELAY},
                  "cof": {"failure_probability": 0.35, "latency": DELAY},
                  "retries": {"max_attempts": 4, "interval": "3d", "jitter": "1d"}},
    "notifications": {"late_probability": 0.2, "duplicate_probability": 0.05},
}


@pytest.fixture(scope="module", params=["shipped", "harsh"])
def flow(request, log, tmp_path_factory) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    """(log, original events, all events) of scenarios/smets1.yaml and of a harsh variant of it: the
    invariants of the file flows hold in both."""
    if request.param == "harsh":
        out = tmp_path_factory.mktemp("harsh") / "log"
        assert simulate(scenario_text(HARSH), out) == 0
    else:
        out = log
    frame = pl.read_parquet(out / "events" / "*.parquet").with_columns(pl.col(pl.Categorical).cast(pl.String))
    return out, frame.filter(~pl.col("duplicate")), frame


# ---------------------------------------------------------------------------- bad reference data


def suppliers(*edits: dict) -> list[dict]:
    rows = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["parties"]["suppliers"]
    for i, edit in enumerate(edits):
        rows[i] = {**rows[i], **edit}
    return rows


BAD = {
    # a meter of an unknown supplier (the population's per-fuel suppliers)
    "unknown meter supplier": ({"population": {"fuel_suppliers": {"gas": {"SUPA01": 1, "NOSUCH": 1}}}},
                               "population.fuel_suppliers.gas.NOSUCH", "unknown supplier"),
    # an MPAN whose distributor has no DNO
    "distributor without DNO": ({"population": {"distributors": {"10": 1, "24": 1}}},
                                "population.distributors.24", "has no DNO"),
    "commitments for unknown supplier": (
        {"commitments": [{"supplier": "ZZZ999", "start": "2021-03-01", "end": "2021-04-01",
                          "weekly": dict.fromkeys(["monday", "tuesday", "wednesday", "thursday", "friday",
                                                   "saturday", "sunday"], 5)}]},
        "commitments[0].supplier", "unknown supplier"),
    "duplicate user id": ({"parties": {"suppliers": suppliers({}, {"user_id": "70-B3-D5-1F-30-00-A0-01"})}},
                          "parties.suppliers[1].user_id", "unique user id"),
    "duplicate signifier": ({"parties": {"suppliers": suppliers({}, {"party_signifier": "SUPA01"})}},
                            "parties.suppliers[1].party_signifier", "unique party signifier"),
    "user id not EUI-64": ({"parties": {"suppliers": suppliers({"user_id": "70B3D51F3000A001"})}},
                           "parties.suppliers[0].user_id", "EUI-64"),
    "distributor under two DNOs": (
        {"parties": {"dnos": [{"user_id": "70-B3-D5-1F-30-00-B0-01", "party_signifier": "DNOUKP",
                               "distributor_ids": ["10", "12"]},
                              {"user_id": "70-B3-D5-1F-30-00-B0-02", "party_signifier": "DNOWPD",
                               "distributor_ids": ["11", "12"]}]}},
        "parties.dnos[1].distributor_ids[1]", "one DNO"),
    "group s1sp not an s1sp": ({"groups": [{"group_id": "IO", "smso_id": "IOC", "share": 1.0,
                                            "requesting_party": "70-B3-D5-1F-30-00-C0-02",
                                            "s1sp": "70-B3-D5-1F-30-00-A0-01"}]},
                               "groups[0].s1sp", "s1sps"),
    "supplier without commitments": (
        {"commitments": [{"supplier": "SUPA01", "start": "2021-03-01", "end": "2021-04-01",
                          "weekly": dict.fromkeys(["monday", "tuesday", "wednesday", "thursday", "friday",
                                                   "saturday", "sunday"], 5)}]},
        "commitments", "supplier SUPB02"),
    "DA validation more than 7 days ahead": (
        {"migration": {"da_prevalidation": {"failure_probability": 0.1,
                                            "before": {"distribution": "fixed", "value": "8d"}}}},
        "migration.da_prevalidation.before", "7d"),
    "unknown regime": ({"regime": "smets2"}, "regime", "expected one of ecos, smets1"),
    "failure by an unknown model": (
        {"migration": {"cof": {"failure_probability": 0.1, "latency": {"distribution": "fixed", "value": "1h"},
                               "by_model": [{"device_type": "ESME", "manufacturer": "Acme", "model": "X1",
                                             "failure_probability": 0.5}]}}},
        "migration.cof.by_model[0]", "Acme/X1 is not one"),
    "unknown key": ({"population": {"meters": 3}}, "population.meters", "allowed keys"),
    "period without a Migration Day": ({"period": {"start": "2021-03-01", "end": "2021-03-03"}}, "period.end",
                                       "at least three days"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_inconsistent_reference_data_is_one_line_exit_2(case, tmp_path, capsys):
    """Issue 10 "Bad input": inconsistent reference data gets one line naming the file, its line and
    the YAML path, exit 2, and nothing written."""
    overrides, path, words = BAD[case]
    status = simulate(scenario_text(overrides), tmp_path / "out")
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "s.yaml:" in err and f"at {path}:" in err and words in err, err
    assert not (tmp_path / "out").exists()


def test_a_missing_section_names_it(tmp_path, capsys):
    status = simulate(scenario_text(drop=(("commitments",),)), tmp_path / "out")
    err = capsys.readouterr().err
    assert status == 2 and "commitments" in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------- determinism


def digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_and_two_workers_give_byte_identical_logs(tmp_path, log):
    """DESIGN.md "Making national volume possible": same scenario and seed, byte-identical event logs,
    whatever the number of worker processes (3 shards here)."""
    assert simulate(SCENARIO.read_text(encoding="utf-8"), tmp_path / "w2", workers=2) == 0
    one, two = digest_tree(log), digest_tree(tmp_path / "w2")
    assert len(one) == 3 * 3 + 4 + 2  # 3 sharded tables x 3 parts, 4 global tables, manifest, scenario
    assert one == two


def test_another_seed_gives_another_history(tmp_path, log):
    assert simulate(scenario_text({"seed": 7}), tmp_path / "s7") == 0
    assert digest_tree(log)["events/part-00000.parquet"] != digest_tree(tmp_path / "s7")["events/part-00000.parquet"]


# ---------------------------------------------------------------------------- the contract


KINDS = {
    "int": pa.types.is_integer,
    "str": lambda t: pa.types.is_string(t) or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type)),
    "time": lambda t: pa.types.is_timestamp(t) and t.tz == "UTC",
    "bool": pa.types.is_boolean,
}


@pytest.mark.parametrize("table", sorted(SMETS1_TABLES))
def test_every_contract_column_is_written_with_its_kind(table, log):
    """emrr.contract.SMETS1_TABLES (docs/event-log.md "The SMETS1 event log"): the report engine reads
    exactly these tables and columns."""
    path = log / table if (log / table).is_dir() else log / f"{table}.parquet"
    schema = pq.read_schema(next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path)
    for column, kind in SMETS1_TABLES[table].items():
        assert column in schema.names, f"{table}.{column} missing"
        assert KINDS[kind](schema.field(column).type), f"{table}.{column}: {schema.field(column).type} is not {kind}"
    assert set(schema.names) == set(SMETS1_TABLES[table]), "a column the contract does not document"


def test_manifest_says_the_regime_and_counts(log):
    manifest = json.loads((log / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["regime"] == SMETS1
    assert manifest["counts"]["installations"] == 3000
    assert manifest["counts"]["migration_completed"] > 0
    for entry in manifest["files"]:
        assert hashlib.sha256((log / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def test_identifiers_have_their_forms(log):
    """User IDs and GUIDs are hyphenated EUI-64 (23), MPANs carry a valid check digit and start with a
    distributor of a DNO, Device Types name their device (002:L257)."""
    inst = pl.read_parquet(log / "installations" / "*.parquet").with_columns(pl.col(pl.Categorical).cast(pl.String))
    dist = pl.read_parquet(log / "distributors.parquet")
    assert inst["installation_id"].equals(inst["chf_guid"], check_names=False)
    assert inst["installation_id"].str.contains(r"^[0-9A-F]{2}(-[0-9A-F]{2}){7}$").all()
    guids = pl.concat([inst[f"{d.lower()}_guid"].drop_nulls() for d in SMETS1_DEVICES])
    assert guids.n_unique() == len(guids)
    mpans = inst["import_mpan"].drop_nulls().to_list()
    assert all(mpan.is_valid(m) for m in mpans)  # the mpan package: an oracle independent of ours
    assert {m[:2] for m in mpans} <= set(dist["distributor_id"])
    assert all(identifiers.mprn_is_valid(m) for m in inst["mprn"].drop_nulls().to_list())
    for d in SMETS1_DEVICES:
        types = inst[f"{d.lower()}_device_type"].drop_nulls().unique().to_list()
        assert types in ([d], [])
    assert (inst["esme_guid"].is_null() == inst["import_mpan"].is_null()).all()
    assert (inst["gsme_guid"].is_null() == inst["mprn"].is_null()).all()
    joined = inst.filter(pl.col("import_mpan").is_not_null()).join(
        dist, left_on="mpan_distributor_id", right_on="distributor_id")
    assert (joined["dno_user_id"] == joined["dno_user_id_right"]).all()


# ---------------------------------------------------------------------------- invariants


def test_migration_completed_and_ma_success_share_the_instant(flow):
    """004:L115 (v3.0: S1MIG-006's successes reconcile with S1MIG-001): an Installation's
    migration_completed and its MAs' ma_completed Success share occurred_at, one Success per MA."""
    log, originals, events = flow
    done = originals.filter(pl.col("event_type") == "migration_completed").select("installation_index", "occurred_at")
    success = originals.filter((pl.col("event_type") == "ma_completed") & (pl.col("completion_status") == "Success"))
    mas = pl.read_parquet(log / "authorisations" / "*.parquet").group_by("installation_index").agg(
        pl.len().alias("mas"))
    per = success.group_by("installation_index").agg(pl.col("occurred_at").unique().alias("at"), pl.len().alias("n"))
    joined = done.join(per, on="installation_index", how="full", coalesce=True).join(mas, on="installation_index")
    assert len(done) > 500
    assert joined["occurred_at"].null_count() == 0 and joined["at"].null_count() == 0  # neither without the other
    assert (joined["at"].list.len() == 1).all()
    assert (joined["at"].list.first() == joined["occurred_at"]).all()
    assert (joined["n"] == joined["mas"]).all()


def test_every_completed_migration_has_exactly_one_migration_completed(flow):
    log, originals, events = flow
    done = originals.filter(pl.col("event_type") == "migration_completed")
    assert done["installation_index"].n_unique() == len(done)
    after = originals.join(done.select("installation_index", pl.col("occurred_at").alias("done_at")),
                           on="installation_index").filter(pl.col("attempt_number").is_not_null()
                                                           & (pl.col("occurred_at") > pl.col("done_at")))
    assert after.is_empty(), "an attempt's event after the migration completed"


def test_attempt_numbers_are_consecutive_per_installation(flow):
    """A32: the attempt number counts an Installation's attempts, this one included: 1, 2, ... with no gap;
    each attempt has one MCF, and its later events carry its number."""
    log, originals, events = flow
    mcf = originals.filter(pl.col("event_type") == "mcf_generated").sort("occurred_at")
    per = mcf.group_by("installation_index").agg(pl.col("attempt_number"))
    assert per["attempt_number"].list.len().max() > 1  # retries happen
    for numbers in per["attempt_number"].to_list():
        assert numbers == list(range(1, len(numbers) + 1))
    attempts = originals.filter(pl.col("attempt_number").is_not_null())
    known = mcf.select("installation_index", "attempt_number", pl.col("mcf_counter").alias("mcf"))
    joined = attempts.join(known, on=["installation_index", "attempt_number"], how="left")
    assert joined["mcf"].null_count() == 0 and (joined["mcf"] == joined["mcf_counter"]).all()


def test_counters_increase_with_file_time(flow):
    """MCF Counter per Requesting Party and Reporting Party Counter per reporting party (the
    Commissioning Party's per supplier too, 004:L153) increase with their files' times."""
    log, originals, events = flow
    mcf = originals.filter(pl.col("event_type") == "mcf_generated")
    outcome = originals.filter(pl.col("reporting_party_counter").is_not_null()
                               & pl.col("event_type").is_in(["s1sp_commissioned", "migration_completed",
                                                             "migration_failed"]))
    for frame, party, counter in ((mcf, "requesting_party_id", "mcf_counter"),
                                  (outcome, "reporting_party_id", "reporting_party_counter")):
        assert not frame.is_empty()
        files = frame.group_by(party, counter).agg(pl.col("occurred_at").n_unique().alias("times"),
                                                   pl.col("occurred_at").first())
        assert (files["times"] == 1).all(), "one file, one time"
        for _, group in files.group_by(party):
            ordered = group.sort("occurred_at")[counter]
            assert (ordered.diff().drop_nulls() > 0).all()
            assert ordered.min() >= 1 and ordered.max() <= 999_999


def test_cof_counters_increase_per_supplier(flow):
    """004:L153: a split, non-affiliated Installation's COFs are one per supplier with separate counters:
    each supplier's COF counter increases with the COF's time."""
    log, originals, events = flow
    parties = pl.read_parquet(log / "parties.parquet")
    commissioning = parties.filter(pl.col("role") == "commissioning_party")["user_id"][0]
    inst = pl.read_parquet(log / "installations" / "*.parquet").with_columns(pl.col(pl.Categorical).cast(pl.String))
    cof = originals.filter(pl.col("reporting_party_id") == commissioning).join(inst, on="installation_index")
    assert cof.filter(pl.col("split_supplier")).height > 0
    per_supplier = pl.concat([cof.select(pl.col(f"{m}_supplier_id").alias("supplier"), "reporting_party_counter",
                                         "occurred_at").drop_nulls("supplier") for m in ("mpan", "mprn")])
    for _, group in per_supplier.unique().group_by("supplier"):
        ordered = group.sort("occurred_at", "reporting_party_counter")["reporting_party_counter"]
        assert (ordered.diff().drop_nulls() >= 0).all()
        assert group.group_by("reporting_party_counter").agg(pl.col("occurred_at").n_unique())["occurred_at"].max() == 1


def test_da_prevalidation_failures_never_become_failed_migrations(flow):
    """002:L506: a DA pre-migration validation failure stops processing and is not a failed migration
    anywhere but S1MIG-006 (its MAs complete Failed)."""
    log, originals, events = flow
    da = originals.filter(pl.col("event_type") == "da_prevalidation_failed")
    assert not da.is_empty()
    inst = pl.read_parquet(log / "installations" / "*.parquet").with_columns(pl.col("group_id").cast(pl.String))
    assert set(da.join(inst, on="installation_index")["group_id"]) == {"DA"}
    later = originals.join(da.select("installation_index").unique(), on="installation_index").filter(
        pl.col("attempt_number").is_not_null())
    assert later.is_empty()
    completed = originals.join(da.select("installation_index", "ma_index"), on=["installation_index", "ma_index"]) \
        .filter(pl.col("event_type") == "ma_completed")
    assert set(completed["completion_status"]) == {"Failed"}


def test_times_inside_the_period_and_notified_after(flow):
    log, originals, events = flow
    start, end = (parse_instant(t) for t in ("2021-03-01", "2021-04-12"))
    occurred = events["occurred_at"].dt.epoch("s")
    assert occurred.min() >= start and occurred.max() < end
    assert (events["notified_at"] >= events["occurred_at"]).all()
    late = (events["notified_at"].dt.epoch("s") - occurred) > 3600
    assert late.sum() > 0 and events["duplicate"].sum() > 0


def test_every_flow_and_failure_kind_is_exercised(originals, log):
    """scenarios/smets1.yaml feeds every S1MIG report: each event type, each completion status, split
    Installations with and without Affiliates, Dormant meters, DCC-commissioned ones, an outage."""
    assert set(originals["event_type"]) == set(SMETS1_EVENT_TYPES)
    done = originals.filter(pl.col("event_type") == "ma_completed")
    assert set(done["completion_status"]) == {"Success", "Failed", "Warning"}
    inst = pl.read_parquet(log / "installations" / "*.parquet").with_columns(pl.col(pl.Categorical).cast(pl.String))
    split = inst.filter(pl.col("split_supplier"))
    joint = split.filter(pl.col("mpan_recipient_id") == pl.col("mprn_recipient_id"))  # Affiliates' joint MA
    assert len(joint) > 0 and len(split) > len(joint)
    assert inst["includes_dormant"].sum() > 0 and inst["to_be_commissioned_by_dcc"].sum() > 0
    mas = pl.read_parquet(log / "authorisations" / "*.parquet")
    assert (~mas["ma_active"]).sum() > 0 and mas["priority"].sum() > 0 and mas["migrate_on"].null_count() > 0
    assert pq.read_table(log / "outages.parquet").num_rows > 0
    assert pq.read_table(log / "commitments.parquet")["quantity"].to_numpy().sum() > 0


def test_mcf_reference_names_the_attempts_file(flow):
    """The Migration Common File Reference (S1MIG-006, <= 40 characters) names the Requesting Party's MCF
    of the attempt; an MA completed after an MCF carries its last attempt's, an unused or rejected one none
    (002:L557-561: no MCF, no devices)."""
    log, originals, events = flow
    parties = pl.read_parquet(log / "parties.parquet").select(pl.col("user_id").alias("requesting_party_id"),
                                                              "party_signifier")
    attempts = originals.filter(pl.col("attempt_number").is_not_null()).join(parties, on="requesting_party_id")
    expected = ("MCF_" + attempts["party_signifier"] + "_"
                + attempts["mcf_counter"].cast(pl.String).str.zfill(6))
    assert (attempts["mcf_reference"] == expected).all() and attempts["mcf_reference"].str.len_chars().max() <= 40
    done = originals.filter(pl.col("event_type") == "ma_completed")
    success = done.filter(pl.col("completion_status") == "Success")
    assert success["mcf_reference"].null_count() == 0
    last = attempts.group_by("installation_index").agg(pl.col("mcf_reference").sort_by("attempt_number").last())
    joined = success.join(last, on="installation_index", suffix="_last")
    assert (joined["mcf_reference"] == joined["mcf_reference_last"]).all()
    assert done.filter(pl.col("completion_status") == "Warning")["mcf_reference"].null_count() == len(
        done.filter(pl.col("completion_status") == "Warning"))


def test_the_regime_key_dispatches(tmp_path):
    """A scenario says its regime (absent or ecos: the ECoS format; smets1: this one)."""
    ecos = (ROOT / "scenarios" / "demo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "ecos.yaml"
    path.write_text("regime: ecos\n" + ecos, encoding="utf-8")
    assert type(regime.load(path)).__name__ == "Scenario"
    assert type(regime.load(ROOT / "scenarios" / "demo.yaml")).__name__ == "Scenario"
    assert regime.load(SCENARIO).regime == SMETS1


def test_a_model_that_fails_more_fails_more(originals, log):
    """migration.s1sp.by_model: Installations with the listed hub model fail at the S1SP Commissioning File
    more often (S1MIG-002 reports failures by device model, 002 2.2.1 (ii))."""
    inst = pl.read_parquet(log / "installations" / "*.parquet").with_columns(pl.col(pl.Categorical).cast(pl.String))
    commenced = originals.filter(pl.col("event_type") == "migration_commenced").join(inst, on="installation_index")
    s1sp = set(pl.read_parquet(log / "parties.parquet").filter(pl.col("role") == "s1sp")["user_id"])
    failed = originals.filter((pl.col("event_type") == "migration_failed") & pl.col("reporting_party_id").is_in(s1sp))
    keys = ["installation_index", "attempt_number"]
    rate = commenced.join(failed.select(keys).with_columns(pl.lit(True).alias("failed")), on=keys, how="left") \
        .group_by(pl.col("chf_model") == "SMETS1 CH GPRS").agg(pl.col("failed").fill_null(False).mean())
    by = dict(zip(rate["chf_model"], rate["failed"]))
    assert by[True] > 1.5 * by[False], by


ATTEMPT = {"mcf_generated", "mcvf_failed", "migration_commenced", "s1sp_commissioned", "migration_completed",
           "migration_failed"}
MA = {"ma_received", "ma_validated", "ma_rejected", "da_prevalidation_failed", "ma_in_progress", "ma_completed"}
OUTCOME = {"s1sp_commissioned", "migration_completed", "migration_failed"}
# docs/event-log.md "events (SMETS1)", column "Null": the event types whose rows carry each column
CARRIED_BY = {
    "ma_index": MA, "attempt_number": ATTEMPT, "commenced_at": {"migration_commenced"} | OUTCOME,
    "requesting_party_id": ATTEMPT, "mcf_counter": ATTEMPT, "commissioning_file_at": OUTCOME,
    "reporting_party_id": OUTCOME, "reporting_party_counter": OUTCOME,
    "validated_at": {"ma_validated", "ma_rejected", "ma_in_progress", "ma_completed"},
    "comments": {"ma_rejected"}, "completion_status": {"ma_in_progress", "ma_completed"},
}


@pytest.mark.parametrize("column", sorted(CARRIED_BY))
def test_each_column_is_carried_by_the_documented_event_types(column, events):
    """docs/event-log.md (SMETS1 events, "Null"): a column is set on exactly the event types it names."""
    carried = set(events.filter(pl.col(column).is_not_null())["event_type"])
    assert carried == CARRIED_BY[column]
    assert events.filter(pl.col("event_type").is_in(list(CARRIED_BY[column])) & pl.col(column).is_null()).is_empty()


def test_reason_codes_and_references_only_where_documented(events):
    carries = lambda column: set(events.filter(pl.col(column).is_not_null())["event_type"])  # noqa: E731
    assert carries("mcf_reference") == ATTEMPT | {"ma_in_progress", "ma_completed"}
    assert carries("validation_reason_code") <= {"ma_validated", "ma_rejected", "ma_in_progress", "ma_completed"}
    rejected = events.filter(pl.col("event_type") == "ma_rejected")
    assert rejected["validation_reason_code"].null_count() == 0
    explained = events.filter(pl.col("completion_reason_code").is_not_null())
    assert set(explained["event_type"]) == {"ma_completed"}
    assert set(explained["completion_status"]) == {"Failed", "Warning"}
    unexplained = events.filter((pl.col("event_type") == "ma_completed") & pl.col("completion_reason_code").is_null())
    assert set(unexplained["completion_status"]) == {"Success"}


def test_the_schema_is_valid_json_schema():
    """sim/smets1.schema.json is itself a valid Draft 2020-12 schema (as scenario.schema.json is)."""
    import jsonschema

    from emrr.sim import smets1_scenario

    jsonschema.Draft202012Validator.check_schema(smets1_scenario.schema())


def test_an_ma_file_is_validated_at_once(flow):
    """002:L78: the SMSO accepts or rejects what an MA file holds in its Validation Response: the MAs of one
    file (their ma_file_id) share their validated_at, whichever shard holds them."""
    log, originals, events = flow
    mas = pl.read_parquet(log / "authorisations" / "*.parquet").with_columns(pl.col("ma_file_id").cast(pl.String))
    answered = originals.filter(pl.col("event_type").is_in(["ma_validated", "ma_rejected"])).join(mas, on="ma_index")
    files = answered.group_by("ma_file_id").agg(pl.col("validated_at").n_unique().alias("times"), pl.len())
    assert files["len"].max() > 1 and (files["times"] == 1).all()
    assert (answered["validated_at"] > answered["received_at"]).all()
