"""What a report selects: the selection strategies a ruleset names in ``select.assignment``.

Each ``Assignment`` is one way of turning the event log into a report's detail rows for a span
of runs: its row function, the columns it derives beside the event log's, and the recipient
rules (the moment at which the Responsible Supplier is taken) it can honour. They are registered
by name in ``ASSIGNMENTS``; the ruleset schema's enum is tested against it, a name it lacks is an
error, and so is a ``recipient.rule`` the report's assignment does not support (docs/rulesets.md).

Every row function returns the rows of runs ``a..b-1`` with ``run_idx`` (the run whose window
they belong to), ``created`` (the time of the run that produces the file) and ``recipient``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from emrr.contract import ECOS
from emrr.rules.eventlog import EventLog, collect, ts
from emrr.rules.nonmigratable import KEYS, Candidates
from emrr.rules.recipients import SupplyIndex, device_fuel, with_recipient
from emrr.rules.strategies import aggregate, latest_state

if TYPE_CHECKING:  # annotations only: the ruleset loader imports this module to validate against it
    from emrr.rules.ruleset import Report, Ruleset
    from emrr.rules.schedule import Runs

# Recipient rules: the moment at which a record's Responsible Supplier is taken.
AT_EVENT = "responsible_supplier_at_event"
AT_WINDOW_END = "responsible_supplier_at_window_end"
LISTED = "listed_parties"
ALL_PARTIES = "all_parties"
RECIPIENT_RULES: dict[str, str] = {
    AT_EVENT: "when the event happened (its occurred_at)",
    AT_WINDOW_END: "at the end of the reporting window of the run whose file holds the record",
    LISTED: "every distinct value of the row's recipient.columns (hiding recipient.hide's columns from the others)",
    ALL_PARTIES: "every party of the log's parties table with recipient.role",
}
# the rules that read the ECoS log's premises and changes of supplier (rules/recipients.py)
SUPPLY_RULES = frozenset({AT_EVENT, AT_WINDOW_END})
ANY_RULE = frozenset(RECIPIENT_RULES)
# fan_out's bookkeeping (rules/engine.py formats the records of rows alike in both once)
SOURCE, VARIANT = "_fan_source", "_fan_variant"
# Columns every assignment gives its rows (a layout may cite them).
COMMON = {"recipient": "str", "created": "time", "run_idx": "int"}


class Selection:
    """What the row functions share in one engine run: the ruleset, the event log and who
    supplies whom; the Non-Migratable candidates are read once, when first needed."""

    def __init__(self, ruleset: Ruleset, log: EventLog, supply: SupplyIndex | None = None):
        self.rs = ruleset
        self.log = log
        self._supply = supply
        self._candidates: Candidates | None = None
        self._parties: dict[str, list[str]] | None = None
        self.cache: dict = {}  # what a strategy works out once per engine run (by strategy, then report)

    def forget(self, report_id: str) -> None:
        """Drop what the strategies hold for a report whose last step is done (its memory)."""
        for held in list(self.cache.values()):  # another thread may add a strategy meanwhile
            if isinstance(held, dict):
                held.pop(report_id, None)

    @property
    def supply(self) -> SupplyIndex:
        """Who supplies whom (ECoS logs only: the supply rules need premises), read once when first needed."""
        if self._supply is None:
            self._supply = SupplyIndex(self.log)
        return self._supply

    def parties(self, role: str) -> list[str]:
        """The user IDs of the log's parties of ``role``, sorted."""
        if self._parties is None:
            table = collect(self.log.tables["parties"].select("user_id", "role"))
            self._parties = {r: sorted(part["user_id"].to_list())
                             for (r,), part in table.group_by(["role"], maintain_order=True)}
        return self._parties.get(role, [])

    def where(self, frame, report: Report):
        """``frame`` (lazy or not) with only the rows meeting every condition of ``select.where``."""
        return frame.filter(condition(report.where)) if report.where else frame

    @property
    def candidates(self) -> Candidates:
        if self._candidates is None:
            self._candidates = Candidates.read(self.log)
        return self._candidates

    def made(self, runs: Runs, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The file creation time of each windowed run ``idx`` under the ruleset's outage policy."""
        return runs.made(idx, catch_up=self.rs.summary_outages == "catch_up")

    def add_recipient(self, frame: pl.DataFrame, report: Report, runs: Runs) -> pl.DataFrame:
        """``frame`` with ``recipient``: for the supply rules (with ``run_idx``, ``premise_index``,
        ``device_type``, ``occurred_at``), the Responsible Supplier at the moment the rule names;
        for ``listed_parties`` one row per recipient listed in the row, with what it may not see
        emptied; for ``all_parties`` one row per party of the role."""
        if report.recipient_rule == LISTED:
            return fan_out(frame, report)
        if report.recipient_rule == ALL_PARTIES:
            who = pl.DataFrame({"recipient": self.parties(report.recipient_role)}, schema={"recipient": pl.String})
            return frame.join(who, how="cross")
        if report.recipient_rule == AT_EVENT:
            return with_recipient(frame, self.supply, "occurred_at")
        frame = frame.with_columns(pl.Series("recipient_at", runs.window_end[frame["run_idx"].to_numpy()],
                                             dtype=pl.Int64))
        return with_recipient(frame, self.supply, "recipient_at").drop("recipient_at")


def recipient_columns(report: Report) -> set[str]:
    """The columns a report's recipient rule reads from its rows."""
    if report.recipient_rule == LISTED:
        return set(report.recipient_columns) | {c for h in report.hide for c in (h.owner, *h.except_from)}
    if report.recipient_rule in SUPPLY_RULES:
        return {"premise_index", "device_type", "occurred_at"}
    return set()


def condition(conditions) -> pl.Expr:
    """The Polars predicate of ``select.where`` conditions (all must hold; a null never meets
    equals, in, at_least; not_in keeps a null)."""
    expr = pl.lit(True)
    for c in conditions:
        col = pl.col(c.column)
        if c.op == "equals":
            term = col == c.value
        elif c.op == "in":
            term = col.is_in(list(c.value))
        elif c.op == "not_in":
            term = col.is_null() | ~col.is_in(list(c.value))
        elif c.op == "is_null":
            term = col.is_null() if c.value else col.is_not_null()
        else:  # at_least
            term = col >= c.value
        expr = expr & term.fill_null(False)
    return expr


def listed(frame: pl.DataFrame, columns, into: str) -> pl.DataFrame:
    """(``_row``, ``into``) pairs: each row's distinct non-empty values of ``columns``, by row and
    then in the order of the columns (a value is kept from the first column holding it). Column by
    column, without a hash of every pair: a value is dropped where an earlier column of its row
    holds it."""
    values = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
                          *[pl.col(c).cast(pl.String) for c in columns])
    parts = []
    for k, c in enumerate(columns):
        keep = pl.col(c).is_not_null()
        for earlier in columns[:k]:
            keep = keep & pl.col(earlier).ne_missing(pl.col(c))
        parts.append(values.filter(keep).select("_row", pl.col(c).alias(into), pl.lit(k, dtype=pl.UInt8).alias("_k")))
    return pl.concat(parts).sort(["_row", "_k"]).drop("_k")


def explode(frame: pl.DataFrame, report: Report) -> pl.DataFrame:
    """``select.explode``: one row per distinct non-empty value of its ``from`` columns, in ``into``."""
    if report.explode is None:
        return frame
    into, sources = report.explode
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(into))
    pairs = listed(frame, sources, into)
    return frame.select(pl.all().gather(pairs["_row"])).with_columns(pairs[into])


def fan_out(frame: pl.DataFrame, report: Report) -> pl.DataFrame:
    """``listed_parties``: one row per distinct non-empty recipient among ``recipient.columns``;
    in a recipient's row, each ``hide`` rule's columns are empty unless the recipient is the row's
    owner or one of its ``except_from`` (MRR 002:L264: "the report sent to each Supplier will show
    only that Supplier's own ... The DNO will receive information relating to both Suppliers")."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("recipient"))
    # (row, recipient) pairs first, from the recipient columns alone; then the rows, gathered once
    pairs = listed(frame, report.recipient_columns, "recipient")
    out = frame.select(pl.all().gather(pairs["_row"])).with_columns(pairs["recipient"])
    # SOURCE and VARIANT: the row a recipient's row was made from, and which hide rules emptied
    # columns in it; rows alike in both are alike in every column but the recipient (the engine
    # formats such records once: a DNO's record and its supplier's are mostly the same bytes)
    variant = pl.lit(0, dtype=pl.UInt32)
    for k, h in enumerate(report.hide):
        sees = pl.col("recipient") == pl.col(h.owner).cast(pl.String)
        for c in h.except_from:
            sees = sees | (pl.col("recipient") == pl.col(c).cast(pl.String))
        sees = sees.fill_null(False)
        variant = variant + pl.when(sees).then(0).otherwise(1 << k).cast(pl.UInt32)
        # where a value is hidden: few rows (the other supplier's of a split Installation)
        out = emptied(out, out.select(~sees & pl.any_horizontal([pl.col(c).is_not_null() for c in h.columns]))
                      .to_series(), h.columns)
    return out.with_columns(pairs["_row"].alias(SOURCE), variant.alias(VARIANT))


def emptied(frame: pl.DataFrame, where: pl.Series, columns) -> pl.DataFrame:
    """``frame`` with ``columns`` null in the rows ``where`` is true (``hide``, ``blank``): only those
    rows are set, not every row of every column chosen again."""
    rows = np.flatnonzero(where.fill_null(False).to_numpy())
    return frame.with_columns([frame[c].scatter(rows, None) for c in columns]) if len(rows) else frame


RowFunction = Callable[[Selection, "Report", "Runs", int, int], pl.DataFrame]


@dataclass(frozen=True)
class Assignment:
    """One selection strategy: how a report's rows are found, what it derives, whom it can address."""

    name: str
    rows: RowFunction
    derives: Mapping[str, str]  # column -> kind (int, str, time) of the columns it makes
    recipient_rules: frozenset[str]  # the recipient rules it honours
    event_columns: bool = True  # whether the event log's columns reach the rows (else only what it derives)
    counts: bool = False  # whether each name of select.counts is a derived integer column
    requires: tuple[str, ...] = ()  # the select keys it cannot do without
    group_columns: bool = False  # whether its group_by columns reach the rows (aggregates)

    def columns(self, report: Report) -> dict[str, str]:
        """The columns (beyond the event log's, when ``event_columns``) a layout may cite."""
        measured = {m: "int" for m in report.measures} if report.measures else {}
        calendar = {m: "int" for m in (report.calendar or {}).get("measures", {})}
        return {**COMMON, **self.derives, **({c: "int" for c in report.counts} if self.counts else {}),
                **measured, **calendar}


def previously_unreported(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """Each event once, in the first run that happens whose window ends at or after it and which
    runs at or after the reporting system learned of it (EMRR §3.1.6)."""
    happening = np.flatnonzero(runs.happens)
    inside = happening[(happening >= a) & (happening < b)]
    if len(inside) == 0:
        return pl.DataFrame()
    before = happening[happening < a]
    predicate = pl.col("occurred_at") <= ts(runs.window_end[b - 1])
    if len(before):
        p = before[-1]
        predicate &= (pl.col("occurred_at") > ts(runs.window_end[p])) | (pl.col("notified_at") > ts(runs.times[p]))
    needed = sorted(set(report.columns) | {"occurred_at", "notified_at"} | recipient_columns(report)
                    | set(report.order_by) | {c for h in report.hide for c in h.columns}
                    | {c for w, cs in report.blank for c in (w, *cs)} | {c.column for c in report.where}
                    | ({"device_id"} if sel.log.regime == ECOS else set()))
    frame = sel.where(sel.log.rows(report.event_types, needed, predicate), report).select(needed)
    idx = runs.assign(frame["occurred_at"].to_numpy(), frame["notified_at"].to_numpy())
    frame = frame.with_columns(pl.Series("run_idx", idx)).filter(
        (pl.col("run_idx") >= a) & (pl.col("run_idx") < b))
    frame = frame.with_columns(pl.Series("created", runs.times[frame["run_idx"].to_numpy()]))
    return sel.add_recipient(frame, report, runs)


def window_activity(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """One row per recipient and day of the window with events, counted by ``select.counts``
    (events known at the run; ECOSMIG-005)."""
    lo, hi = int(runs.window_start[a]), int(runs.window_end[b - 1])
    frame = collect(sel.log.events(report.event_types)
                    .filter(pl.col("occurred_at").is_between(ts(lo), ts(hi)))
                    .select("event_type", "occurred_at", "notified_at", "premise_index", "device_type"))
    occ = frame["occurred_at"].to_numpy()
    idx = np.searchsorted(runs.window_end, occ, side="left")
    in_range = (idx >= a) & (idx < b)
    idx = np.where(in_range, idx, a)
    created, ok = sel.made(runs, idx)
    keep = in_range & ok & (runs.window_start[idx] <= occ) & (frame["notified_at"].to_numpy() <= created)
    frame = frame.with_columns(pl.Series("run_idx", idx), pl.Series("created", created)).filter(pl.Series(keep))
    frame = sel.add_recipient(frame, report, runs).filter(pl.col("recipient").is_not_null())
    counts = [pl.col("event_type").eq(t).sum().alias(name) for name, t in report.counts.items()]
    return (frame.with_columns((pl.col("occurred_at") // 86400 * 86400).alias("activity_date"))
            .group_by(["run_idx", "created", "recipient", "activity_date"]).agg(counts))


def non_migratable_snapshot(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """Per run: the Non-Migratable snapshot at its window end (rules/nonmigratable.py; ECOSMIG-004)."""
    parts = []
    for i in range(a, b):
        created, ok = sel.made(runs, np.array([i]))
        if not ok[0]:
            continue
        counted = sel.candidates.snapshot(sel.supply, int(runs.window_end[i]), int(created[0]))
        if counted is None:
            continue
        parts.append(counted.with_columns(pl.lit(i, dtype=pl.Int64).alias("run_idx"),
                                          pl.lit(int(created[0]), dtype=pl.Int64).alias("created")))
    return pl.concat(parts) if parts else pl.DataFrame()


def gaining_devices(log: EventLog, ws: int, we: int) -> pl.DataFrame:
    """Devices whose premises changed supplier for the device's fuel in [ws, we] (ECOSMIG-003)."""
    changed = collect(log.tables["supply_changes"].filter(pl.col("occurred_at").is_between(ts(ws), ts(we)))
                      .select("premise_index", "fuel").unique())
    if changed.height == 0:
        return pl.DataFrame({"device_index": []}, schema={"device_index": pl.Int64})
    premises = collect(log.tables["premises"].select("premise_index", "has_gas", "has_electricity")
                       .filter(pl.col("premise_index").is_in(changed["premise_index"].unique().implode())))
    return (collect(log.tables["devices"].select("device_index", "premise_index", "device_type")
                    .filter(pl.col("premise_index").is_in(changed["premise_index"].unique().implode())))
            .join(premises, on="premise_index", how="left")
            .with_columns(device_fuel().alias("fuel"))
            .join(changed, on=["premise_index", "fuel"], how="semi")
            .select(pl.col("device_index").cast(pl.Int64)))


def gaining_supplier_history(sel: Selection, report: Report, runs: Runs, a: int, b: int) -> pl.DataFrame:
    """Per run: each gaining device's latest event at the window end (known at the run), with its
    ``ecos_status`` by ``select.status`` (ECOSMIG-003; §2.2.5)."""
    needed = sorted(set(report.columns) - {"ecos_status"} | {"device_index", "event_id", "event_type",
                    "occurred_at", "notified_at", "premise_index", "device_type", "attempt_number"})
    parts = []
    for i in range(a, b):
        created, ok = sel.made(runs, np.array([i]))
        if not ok[0]:
            continue
        ws, we, made = int(runs.window_start[i]), int(runs.window_end[i]), int(created[0])
        gaining = gaining_devices(sel.log, ws, we)
        if gaining.height == 0:
            continue
        history = collect(sel.log.events(report.event_types)
                          .filter(pl.col("device_index").is_in(gaining["device_index"].implode())
                                  & (pl.col("occurred_at") <= ts(we)) & (pl.col("notified_at") <= ts(made)))
                          .select(needed))
        latest = (history.sort(["occurred_at", "event_id"])
                  .group_by("device_index", maintain_order=True).last())
        if latest.height == 0:
            continue
        status = pl.col("event_type").replace_strict(report.status, default=None)
        latest = latest.with_columns(
            status.alias("ecos_status"),
            pl.col("attempt_number").fill_null(0),
            pl.lit(i, dtype=pl.Int64).alias("run_idx"),
            pl.lit(made, dtype=pl.Int64).alias("created"),
        )
        parts.append(sel.add_recipient(latest, report, runs))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


ASSIGNMENTS: dict[str, Assignment] = {a.name: a for a in (
    Assignment("previously_unreported", previously_unreported, {}, ANY_RULE),
    Assignment("window_activity", window_activity, {"activity_date": "time"}, frozenset({AT_EVENT, AT_WINDOW_END}),
               event_columns=False, counts=True),
    # a snapshot has no event: its moment is the window end
    Assignment("non_migratable_snapshot", non_migratable_snapshot,
               {**{k: "str" for k in KEYS}, "classified_at": "time", "devices_count": "int"},
               frozenset({AT_WINDOW_END}), event_columns=False),
    # the Gaining Supplier is who supplies the premises after its change of supplier: at the window end
    Assignment("gaining_supplier_history", gaining_supplier_history, {"ecos_status": "str"},
               frozenset({AT_WINDOW_END})),
    # SMETS1 MRR (rules/strategies/): a snapshot of states, counts by group, a ranking against peers
    Assignment("latest_state", latest_state.latest_state, latest_state.DERIVES,
               frozenset({LISTED, ALL_PARTIES}), requires=("key", "status")),
    Assignment("aggregate", aggregate.aggregate, {"period": "time"}, frozenset({LISTED, ALL_PARTIES}),
               event_columns=False, requires=("measures",), group_columns=True),
    Assignment("peer_ranking", aggregate.peer_ranking, {"period": "time", "ordinal": "int"},
               frozenset({ALL_PARTIES}), event_columns=False, requires=("measures", "group_by", "rank_by"),
               group_columns=True),
)}
