"""Event logs built by hand, held as data: ``conformance/logs/<name>.yaml``.

A hand log is a small event log (docs/event-log.md) written out row by row, so that the report
files the engine makes from it can be written out by hand too. Each file is one log, described
by ``handlog.schema.json``: its period, the reports its delivery holds files of, named device
models, and one table per table of the event log (``columns`` then ``rows``). Times are UTC
(``...Z``); a device's Device ID is made from its index (``device_id``).

- ``reference``: the golden log. tests/golden/expected holds the engine's answer to it, byte for
  byte, and the parser corpus's valid reference delivery is that answer.
- ``edge``: values that trip naive parsers (maximum lengths, every ECoS Status, sequence numbers
  above 9, two files made by one run), for the corpus's edge cases.

- ``smets1``: the golden log of the SMETS1 rulesets (``regime: smets1``, docs/event-log.md "The
  SMETS1 event log"). tests/golden/smets1-mrr-v3.0 holds the report files written by hand from the
  MRR (spec/002) for it. Its tables are those of ``emrr.contract.SMETS1_TABLES`` (the one home of
  their columns and kinds): a table names the columns it gives, the others are written null.

``build(load("reference"), ROOT)`` writes the log as an event-log folder of Parquet files, the
one writer the tests and the corpus share.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq

from emrr import yamlio
from emrr.contract import DEVICE_BLOCK, ECOS, EVENT_TYPES, REGIMES, SMETS1, SMETS1_DEVICES
from emrr.errors import UserError

TS = pa.timestamp("s", tz="UTC")

# The Arrow type of every column a hand log writes (docs/event-log.md). ``device_model`` in the
# data names a model of ``device_models``, written as its three columns.
_MODEL = (("manufacturer", pa.string()), ("model", pa.string()), ("firmware_version", pa.string()))
SCHEMAS: dict[str, pa.Schema] = {
    "events": pa.schema([
        ("event_id", pa.int64()), ("event_type", pa.string()), ("device_index", pa.int64()),
        ("device_id", pa.string()), ("device_type", pa.string()), ("premise_index", pa.int64()),
        ("mpxn", pa.string()), *_MODEL, ("occurred_at", TS), ("notified_at", TS), ("attempt_number", pa.int32()),
        ("error_code", pa.string()), ("error_sub_code", pa.int32()),
    ]),
    "devices": pa.schema([
        ("device_index", pa.int64()), ("device_id", pa.string()), ("device_type", pa.string()),
        ("premise_index", pa.int64()), ("mpxn", pa.string()), *_MODEL, ("installed_at", TS),
    ]),
    "premises": pa.schema([
        ("premise_index", pa.int64()), ("has_electricity", pa.bool_()), ("has_gas", pa.bool_()),
        ("electricity_supplier", pa.string()), ("gas_supplier", pa.string()), ("installed_at", TS),
    ]),
    "supply_changes": pa.schema([
        ("premise_index", pa.int64()), ("fuel", pa.string()), ("losing_supplier", pa.string()),
        ("gaining_supplier", pa.string()), ("occurred_at", TS),
    ]),
    "non_migratable": pa.schema([("device_type", pa.string()), *_MODEL, ("classified_at", TS)]),
    "outages": pa.schema([("report_id", pa.string()), ("start", TS), ("end", TS)]),
    "suppliers": pa.schema([("party_id", pa.string()), ("name", pa.string())]),
}
PARTITIONED = ("events", "devices", "premises", "supply_changes")  # a folder of parts; the others one file

# A regime's tables other than the ECoS ones (above): the Arrow type of each column from its kind in
# emrr.contract.REGIMES, the one home of the SMETS1 log's columns.
KINDS: dict[str, pa.DataType] = {"int": pa.int64(), "str": pa.string(), "time": TS, "bool": pa.bool_()}
REGIME_PARTITIONED = {SMETS1: ("events", "installations", "authorisations")}


def regime_schemas(regime: str) -> dict[str, pa.Schema]:
    """The Arrow schema of every table of ``regime``'s log (its outages included), as handlog writes them."""
    spec = REGIMES[regime]
    return {table: pa.schema([(c, KINDS[kind]) for c, kind in columns.items()])
            for table, columns in {**spec.tables, **spec.optional}.items()}


def device_guid(installation_index: int, device: str) -> str:
    """A device's GUID (8 octets, EUI-64 style) made from its Installation's index and its place in the
    MRR's list of devices (CHF 1 ... CAD 7): the CHF's is the Installation ID (CHF ID, 002:L243)."""
    return f"00-00-00-00-00-{installation_index:02X}-00-{SMETS1_DEVICES.index(device) + 1:02X}"


def device_id(index: int) -> str:
    """A device's Device ID (8 octets, EUI-64 style) made from its index."""
    return "00-00-00-00-00-00-" + f"{index >> 8:02X}-{index & 0xFF:02X}"


@dataclass(frozen=True)
class HandLog:
    """An event log as plain data: each table a list of rows keyed by column."""

    name: str
    description: str
    period: tuple[str, str]  # ISO 8601, UTC ("...Z")
    reports: tuple[str, ...]  # the reports the engine's delivery for this log holds files of
    models: dict[str, dict[str, str]]
    tables: dict[str, list[dict]]
    regime: str = ECOS  # the event log's regime (emrr.contract.REGIMES): "regime" in the file, ecos when absent

    def rows(self, table: str) -> list[dict]:
        return self.tables[table]


def schema() -> dict:
    """handlog.schema.json: the shape of a hand log file."""
    text = resources.files("emrr.conformance").joinpath("handlog.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def names() -> list[str]:
    """The hand logs shipped with the package."""
    folder = resources.files("emrr.conformance").joinpath("logs")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name: str) -> HandLog:
    """The shipped hand log ``name`` (conformance/logs/<name>.yaml), validated."""
    text = resources.files("emrr.conformance").joinpath("logs", f"{name}.yaml").read_text(encoding="utf-8")
    return parse(text, f"logs/{name}.yaml")


def parse(text: str, where: str) -> HandLog:
    """A hand log from its YAML text, read by the one YAML loader (emrr.yamlio) and checked by
    handlog.schema.json; ``where`` names it in errors (``UserError``: file, line, YAML path)."""
    data, lines = yamlio.loads(text, where)
    error = yamlio.schema_error(jsonschema.Draft202012Validator(schema()), data)
    if error is not None:
        raise yamlio.error_at(where, lines, error.absolute_path, error.message)
    tables = {name: [dict(zip(table["columns"], row)) for row in table["rows"]]
              for name, table in data.items() if isinstance(table, dict) and "columns" in table}
    models = data["device_models"]
    if data.get("regime", ECOS) != ECOS:
        _check_regime_tables(data, where, lines)
        return HandLog(data["name"], data["description"], (data["period"]["start"], data["period"]["end"]),
                       tuple(data["reports"]), models, tables, data["regime"])
    for row in tables["events"]:
        if row["event_type"] not in EVENT_TYPES:
            raise UserError(f"event {row['event_id']}: unknown event type {row['event_type']!r}", file=where)
    devices = {row["device_index"] for row in tables["devices"]}
    unknown = ({r["device_index"] for r in tables["events"]} - devices) | {
        r["device_model"] for r in tables["devices"] + tables["non_migratable"] if r["device_model"] not in models}
    if unknown:
        raise UserError(f"unknown devices or device models {sorted(map(str, unknown))}", file=where)
    return HandLog(data["name"], data["description"], (data["period"]["start"], data["period"]["end"]),
                   tuple(data["reports"]), models, tables)


def _kind_error(kind: str, value) -> str | None:
    """Why ``value`` (from YAML) is not of ``kind`` (emrr.contract), or None; null is every kind's."""
    if value is None:
        return None
    if kind == "time":
        if not isinstance(value, str) or not value.endswith("Z"):
            return f"expected a UTC time as a string ending Z (quoted, or YAML reads a date-time), got {value!r}"
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return f"expected an ISO 8601 UTC time, got {value!r}"
        return None
    expected = {"int": int, "str": str, "bool": bool}[kind]
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        return f"expected {kind}, got {value!r}"
    return None


def _check_regime_tables(data: dict, where: str, lines: dict) -> None:
    """A regime's tables against emrr.contract: known columns, one value a column in every row, each of
    the column's kind, known event types, devices and device models (one line: file, line, YAML path)."""
    regime = data["regime"]
    columns_of = {**REGIMES[regime].tables, **REGIMES[regime].optional}
    extra = {"installations": {"devices"}}  # the hand log's shorthand for the device block
    for table, known in columns_of.items():
        given = data[table]["columns"]
        for i, column in enumerate(given):
            if column not in known and column not in extra.get(table, ()):
                raise yamlio.error_at(where, lines, (table, "columns", i), f"expected a column of the {regime} "
                                      f"log's {table} table ({', '.join(known)}), got {column!r}")
        for r, row in enumerate(data[table]["rows"]):
            if len(row) != len(given):
                raise yamlio.error_at(where, lines, (table, "rows", r), f"expected {len(given)} values, one a "
                                      f"column, got {len(row)}")
            for c, (column, value) in enumerate(zip(given, row)):
                if column == "devices":
                    bad = [d for d in value or () if d not in SMETS1_DEVICES or d not in data["device_models"]]
                    problem = f"expected device names of device_models, got {bad}" if bad or not isinstance(
                        value, list) else None
                else:
                    problem = _kind_error(known[column], value)
                if column == "event_type" and problem is None and value not in REGIMES[regime].event_types:
                    problem = f"unknown event type {value!r}; expected one of {', '.join(REGIMES[regime].event_types)}"
                if problem:
                    raise yamlio.error_at(where, lines, (table, "rows", r, c), problem)


def _regime_columns(log: HandLog) -> dict[str, dict[str, list]]:
    """A regime's tables as columns: every column of the contract, null where the log gives none; an
    Installation's ``devices`` expanded into its device block (GUID, manufacturer, model, type,
    firmware of each device it has) and its installation_id, the CHF's GUID, unless given."""
    out = {}
    for table, schema in regime_schemas(log.regime).items():
        rows = []
        for row in log.tables.get(table, []):
            row = dict(row)
            if "devices" in row:
                index = row["installation_index"]
                for device in row.pop("devices") or ():
                    model = log.models[device]
                    values = {"guid": device_guid(index, device), "manufacturer": model["manufacturer"],
                              "model": model["model"], "device_type": device,
                              "firmware_version": model["firmware_version"]}
                    row.update({f"{device.lower()}_{part}": values[part] for part in DEVICE_BLOCK})
                row.setdefault("installation_id", device_guid(index, "CHF"))
            rows.append(row)
        out[table] = {c: [r.get(c) for r in rows] for c in schema.names}
    return out


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _columns(log: HandLog) -> dict[str, dict[str, list]]:
    """Every table as columns, with the values the data leaves implicit filled in."""
    devices = {d["device_index"]: d for d in log.rows("devices")}

    def expand(row: dict) -> dict:
        out = dict(row)
        if "device_model" in out:
            out.update(log.models[out.pop("device_model")])
        return out

    rows = {
        "events": [{**expand(devices[e["device_index"]]), **e, "device_id": device_id(e["device_index"])}
                   for e in log.rows("events")],
        "devices": [{**expand(d), "device_id": device_id(d["device_index"])}
                    for d in sorted(log.rows("devices"), key=lambda d: d["device_index"])],
        **{name: [expand(r) for r in log.rows(name)]
           for name in ("premises", "supply_changes", "non_migratable", "outages", "suppliers")},
    }
    return {name: {c: [r.get(c) for r in table] for c in SCHEMAS[name].names} for name, table in rows.items()}


def build(log: HandLog, root: str | Path) -> Path:
    """Write ``log`` as an event log folder (docs/event-log.md) at ``root``; return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ecos = log.regime == ECOS
    schemas = SCHEMAS if ecos else regime_schemas(log.regime)
    partitioned = PARTITIONED if ecos else REGIME_PARTITIONED[log.regime]
    for name, columns in (_columns(log) if ecos else _regime_columns(log)).items():
        arrays = [pa.array([_time(v) for v in columns[f.name]] if f.type == TS else columns[f.name], f.type)
                  for f in schemas[name]]
        table = pa.Table.from_arrays(arrays, schema=schemas[name])
        if name in partitioned:
            (root / name).mkdir(exist_ok=True)
            pq.write_table(table, root / name / "part-00000.parquet")
        else:
            pq.write_table(table, root / f"{name}.parquet")
    manifest = {"format": "emrr-event-log", "period": {"start": log.period[0], "end": log.period[1]}}
    if not ecos:
        manifest["regime"] = log.regime  # docs/event-log.md: a log without the key is of regime ecos
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root
