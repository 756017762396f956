"""The report engine's view of an event log (docs/event-log.md): lazy Polars frames, checked.

Anyone's event log in the documented columns can be read: each table a folder of Parquet files
(or one ``NAME.parquet``). Missing tables or columns, and columns of the wrong type, are one-line
errors naming the file and the column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from emrr.contract import ECOS, REGIMES, YEARS, parse_instant
from emrr.errors import UserError

# table -> {column: kind} of each regime (emrr.contract.REGIMES; kinds: int, str, time, bool)
REQUIRED = REGIMES[ECOS].tables
OPTIONAL = REGIMES[ECOS].optional
# The instants a period may span: the years report files can name and date (emrr.contract.YEARS,
# 1970 to 2999). Outside them the engine crashed (year 10000) or wrote files its own
# checker rejects (before 1970), campaign M7 and L8.
EARLIEST = int(dt.datetime(YEARS[0], 1, 1, tzinfo=dt.timezone.utc).timestamp())
LATEST = int(dt.datetime(YEARS[1] + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp())


def ts(seconds: int) -> pl.Expr:
    """A UTC instant as a literal to compare time columns with (keeps predicates pushed down to
    the Parquet scan, so row groups outside the range are skipped)."""
    return pl.lit(dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc))


def collect(frame: pl.LazyFrame) -> pl.DataFrame:
    """Collect, then normalise: times to Int64 seconds since the epoch, categoricals to strings."""
    df = frame.collect()
    casts = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            casts.append(pl.col(name).dt.epoch("s").alias(name))
        elif isinstance(dtype, (pl.Categorical, pl.Enum)):
            casts.append(pl.col(name).cast(pl.String))
    return df.with_columns(casts) if casts else df


def _normal_type(dtype: pl.DataType) -> pl.DataType:
    """The type ``collect`` gives a column of ``dtype``."""
    if isinstance(dtype, pl.Datetime):
        return pl.Int64
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return pl.String
    return dtype


def kind_of(dtype: pl.DataType) -> str:
    """The kind (int, str, time, bool, null) of a Polars or Parquet column type, as REQUIRED names them."""
    if dtype.is_integer():
        return "int"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "str"
    if isinstance(dtype, pl.Datetime):
        return "time"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Null:
        return "null"
    return str(dtype)


def key_ranges(column: str, keys, most: int = 64) -> pl.Expr:
    """A predicate true on every key of ``keys`` (sorted, unique integers): an OR of at most
    ``most`` ranges, cut at the widest gaps between consecutive keys, so that a scan can skip the
    row groups between them by their statistics."""
    import numpy as np

    keys = np.asarray(keys, dtype=np.int64)
    cuts = np.sort(np.argsort(np.diff(keys))[::-1][:most - 1]) if len(keys) > 1 else np.array([], dtype=np.int64)
    starts = np.concatenate([[0], cuts + 1])
    ends = np.concatenate([cuts, [len(keys) - 1]])
    expr = pl.lit(False)
    for s, e in zip(starts, ends):
        expr = expr | pl.col(column).is_between(int(keys[s]), int(keys[e]))
    return expr


def keys_in(column: str, keys: pl.Series) -> pl.Expr:
    """A predicate true exactly on ``keys`` (sorted, unique integers of the column's type): their
    ranges first (``key_ranges``: a scan skips the row groups between them by their statistics),
    then the keys themselves."""
    return key_ranges(column, keys.to_numpy()) & pl.col(column).is_in(keys.implode())


def _files(root: Path, table: str) -> list[Path]:
    folder, single = root / table, root / f"{table}.parquet"
    if folder.is_dir():
        return sorted(folder.glob("*.parquet"))
    if single.is_file():
        return [single]
    return []


def _manifest(root: Path) -> dict:
    """manifest.json as a mapping, or {} when there is none or it is not readable JSON."""
    try:
        m = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def _period(root: Path, events: pl.LazyFrame) -> tuple[int, int]:
    """The log's period [start, end): manifest.json's, else the whole UTC days from the first
    event to the last notification."""
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            return parse_instant(m["period"]["start"]), parse_instant(m["period"]["end"])
        except (ValueError, KeyError, TypeError):
            pass  # no usable period: worked out from the events as for anyone's log
    span = collect(events.select(pl.col("occurred_at").min().alias("a"), pl.col("notified_at").max().alias("b")))
    a, b = span["a"][0], span["b"][0]
    if a is None:
        raise UserError("the events table is empty and there is no manifest.json with a period", file=str(root))
    return int(a) - int(a) % 86400, int(b) - int(b) % 86400 + 86400


def _check_period(root: Path, period: tuple[int, int]) -> None:
    """A period within the years report files can hold (EARLIEST, LATEST), one line otherwise."""
    start, end = period
    if start < EARLIEST or end > LATEST:
        def shown(t: int) -> str:
            try:
                return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            except (OverflowError, OSError, ValueError):
                return f"{t} s from 1970"
        raise UserError(f"the log's period {shown(start)} to {shown(end)} is outside the years report files can hold; "
                        f"expected a period from {YEARS[0]}-01-01T00:00:00Z to {YEARS[1] + 1}-01-01T00:00:00Z",
                        file=str(root))


@dataclass
class EventLog:
    """Checked lazy frames of an event log, times as Int64 seconds since the epoch (UTC)."""

    root: Path
    tables: dict[str, pl.LazyFrame]
    period: tuple[int, int]
    fingerprint: str
    has_duplicate_flag: bool
    regime: str = ECOS  # manifest.json's "regime" (emrr.contract.REGIMES)

    @classmethod
    def open(cls, root: str | Path) -> "EventLog":
        root = Path(root)
        if not root.is_dir():
            raise UserError("not a directory; expected an event log folder (docs/event-log.md)", file=str(root))
        tables: dict[str, pl.LazyFrame] = {}
        digest = hashlib.sha256()
        all_files: list[Path] = []
        events_schema: dict = {}
        regime = _manifest(root).get("regime", ECOS)
        if regime not in REGIMES:
            raise UserError(f"manifest.json names regime {regime!r}; expected one of {', '.join(REGIMES)}",
                            file=str(root / "manifest.json"))
        spec = REGIMES[regime]
        for table, columns in {**spec.tables, **spec.optional}.items():
            files = _files(root, table)
            if not files:
                if table in spec.optional:
                    continue
                raise UserError(f"missing table {table!r}; expected {table}/*.parquet or {table}.parquet",
                                file=str(root))
            for f in files:  # every part: a later one may differ from the first
                digest.update(f"{f.relative_to(root)}\n".encode())
                try:
                    schema = pl.read_parquet_schema(f)
                except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
                    raise UserError(f"not a readable Parquet file ({exc.__class__.__name__})", file=str(f))
                for column, kind in columns.items():
                    if column not in schema:
                        raise UserError(f"missing column {column!r} of table {table}; expected {kind}", file=str(f))
                    got = kind_of(schema[column])
                    if got != kind and got != "null":
                        raise UserError(f"column {column!r} has type {schema[column]}; expected {kind}", file=str(f))
                if table == "events":
                    events_schema = schema
            all_files.extend(files)
            tables[table] = pl.scan_parquet([str(f) for f in files])
        manifest = root / "manifest.json"
        if manifest.is_file():  # the simulator's manifest holds every file's SHA-256
            digest.update(manifest.read_bytes())
        else:  # anyone else's log: its content decides whether a run may be resumed
            for f in all_files:
                with open(f, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        period = _period(root, tables["events"])
        _check_period(root, period)
        return cls(root, tables, period, digest.hexdigest(), "duplicate" in events_schema, regime)

    def columns(self) -> dict[str, pl.DataType]:
        """Every column a report may read from an event row: the events table's and those of the
        tables its regime joins to them (installations and authorisations for SMETS1)."""
        schema = dict(self.tables["events"].collect_schema())
        for table, _key in REGIMES[self.regime].joins:
            schema.update({k: v for k, v in self.tables[table].collect_schema().items() if k not in schema})
        return schema

    def events(self, types: tuple[str, ...] | list[str]) -> pl.LazyFrame:
        """Events of the given types, each once: a duplicated notification (same event_id) counts
        from its first notification (DESIGN.md faults). The events table's columns only: ``rows``
        adds those of the tables the regime joins."""
        frame = self.tables["events"].filter(pl.col("event_type").is_in(list(types)))
        if self.has_duplicate_flag:
            return frame.filter(~pl.col("duplicate"))
        return (frame.sort(["event_id", "notified_at"])
                .unique(subset=["event_id"], keep="first", maintain_order=True))

    def rows(self, types, columns, predicate: pl.Expr | None = None) -> pl.DataFrame:
        """The events of ``types`` meeting ``predicate`` (on the events table's columns), with
        ``columns``: the events table's, then those of the tables the regime joins (``attach``)."""
        own = self.tables["events"].collect_schema().names()
        wanted = set(columns)
        keys = {key for table, key in REGIMES[self.regime].joins
                if wanted & set(self.tables[table].collect_schema().names()) - set(own)}
        lazy = self.events(types)
        if predicate is not None:
            lazy = lazy.filter(predicate)
        frame = collect(lazy.select([c for c in own if c in wanted | keys]))
        frame = self.attach(frame, columns)
        return frame.select([c for c in columns if c in frame.columns])

    def attach(self, frame: pl.DataFrame, columns) -> pl.DataFrame:
        """``frame`` (events with their keys) with ``columns`` of the tables the regime joins to
        its events, looked up by key. Only the rows of those keys are read: the table is scanned
        with a predicate on the ranges the keys fall in (Parquet statistics skip the rest when a
        log keeps related rows together, as the simulator does by Migration Day), then exactly."""
        for table, key in REGIMES[self.regime].joins:
            schema = self.tables[table].collect_schema()
            names = [c for c in schema.names() if c in set(columns) and c not in frame.columns and c != key]
            if not names:
                continue
            keys = frame[key].drop_nulls().unique().sort()
            if keys.len() == 0:  # as collect gives them: times in seconds, categoricals as text
                frame = frame.with_columns([pl.lit(None, dtype=_normal_type(schema[c])).alias(c) for c in names])
                continue
            part = collect(self.tables[table].filter(keys_in(key, keys)).select(key, *names))
            frame = frame.join(part, on=key, how="left", maintain_order="left")
        return frame

    def outages(self) -> list[tuple[str, int, int]]:
        if "outages" not in self.tables:
            return []
        df = collect(self.tables["outages"])
        return [(r, int(s), int(e)) for r, s, e in zip(df["report_id"], df["start"], df["end"])]
