"""The simulator's fidelity: every calibrated figure, measured in the event log just written.

``measure(scenario, log)`` reads the event log (``docs/event-log.md``'s columns only, so it measures
any producer's log) and returns one row per figure: what it is, the published value and its source
(``../shared/FACTS.md``, the specification, or the realism targets of issue 11, which are our
assumptions where nothing is published), the scenario's setting that drives it, the value measured
and whether it falls within its tolerance. ``emrr simulate --calibration FILE`` writes the rows as
JSON; the summary JSON carries them too; ``docs/scenarios.md`` shows the national table.

Absolute figures (devices at go-live, attempts a day) are national ones: a smaller scenario reports
them outside their tolerance, as it should. Shapes and shares hold at any size.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from emrr.sim.scenario import Scenario

FACTS = "../shared/FACTS.md"
ISSUE = "issue 11 (realism target; our assumption)"


@dataclass(frozen=True)
class Figure:
    """One calibrated figure: ``measure(log)`` gives its value from the event log."""

    id: str
    figure: str
    published: str
    source: str
    setting: Callable[[dict], Any]
    measure: Callable[["Log"], float | None]
    low: float = -math.inf
    high: float = math.inf


Q2_2024_END = int(dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc).timestamp())
SOON = 14 * 86_400  # issue 11 target 8: a change of supplier within 14 days of an event
EVENT_COLUMNS = ["event_id", "event_type", "device_index", "device_type", "premise_index", "manufacturer", "model",
                 "firmware_version", "occurred_at", "duplicate", "attempt_number", "tries", "error_code",
                 "error_sub_code", "error_kind"]


class Log:
    """The event log, measured part file by part file (docs/event-log.md: the simulator keeps a premises,
    its devices, their events and its changes of supplier in the same part number). Each part is read
    once, with the columns the figures need, and reduced to sums and small tables: a national log
    (40 million event rows) is never held whole. For a log from another producer whose part files do
    not keep that locality, the figures that follow a device or a premises across rows (consecutive
    attempts, a hub's first attempts) count only what a part holds."""

    def __init__(self, path: Path, scenario: Scenario):
        self.path = Path(path)
        self.s = scenario
        self._parts: dict[str, Any] | None = None

    def table(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.path / f"{name}.parquet")

    @property
    def parts(self) -> dict[str, Any]:
        if self._parts is None:
            self._parts = self._read()
        return self._parts

    def _read(self) -> dict[str, Any]:
        switches = (pl.read_parquet(self.path / "supply_changes", columns=["premise_index", "fuel", "losing_supplier",
                                                                          "gaining_supplier", "occurred_at"])
                    .with_columns(pl.col(c).cast(pl.String) for c in ("fuel", "losing_supplier", "gaining_supplier"))
                    .with_columns(pl.col("occurred_at").dt.epoch("s").alias("t")))
        names = sorted(p.name for p in (self.path / "events").glob("*.parquet"))
        # One part at a time: two at once (threads; Polars releases the GIL) took no less CPU and peaked
        # at 2.7 GB instead of 1.6 GB on the national log. The parts' results are merged in part order.
        parts = [self._part(name, switches) for name in names]
        acc: dict[str, Any] = {"switches": switches, "sums": {}, "frames": {}, "gaps": []}
        for part in parts:
            for key, value in part["sums"].items():
                if key == "max_attempts":
                    acc["sums"][key] = max(acc["sums"].get(key, 0), value)
                else:
                    _add(acc, key, value)
            for key, frames in part["frames"].items():
                acc["frames"].setdefault(key, []).extend(frames)
            acc["gaps"].extend(part["gaps"])
        return acc

    def _part(self, name: str, switches: pl.DataFrame) -> dict[str, Any]:
        """One part file's reduction (``_reduce``)."""
        # Coded columns stay categorical (compared with literals); small results are cast to strings.
        events = (pl.read_parquet(self.path / "events" / name, columns=EVENT_COLUMNS).filter(~pl.col("duplicate"))
                  .with_columns(pl.col("occurred_at").dt.epoch("s").alias("t"))
                  .with_columns((pl.col("t") // 86_400).alias("day")))
        devices = pl.read_parquet(self.path / "devices" / name, columns=[
            "device_index", "device_type", "premise_index", "manufacturer", "device_id", "installed_at",
            "ecos_credentials_at_install"])
        premises = pl.read_parquet(self.path / "premises" / name, columns=[
            "premise_index", "mpan", "has_electricity", "electricity_supplier", "gas_supplier", "installed_at"])
        path = self.path / "supply_changes" / name
        acc: dict[str, Any] = {"sums": {}, "frames": {}, "gaps": []}
        acc["part_switches"] = (pl.read_parquet(path, columns=["premise_index", "occurred_at"]).select(
            "premise_index", pl.col("occurred_at").dt.epoch("s").alias("c")) if path.exists()
            else switches.select("premise_index", pl.col("t").alias("c")))
        _reduce(self, acc, events, devices, premises)
        return acc

    def sum(self, key: str) -> float:
        return self.parts["sums"].get(key, 0)

    def frame(self, key: str, by: list[str]) -> pl.DataFrame:
        """A small per-part table, summed over the parts by ``by``."""
        parts = self.parts["frames"].get(key, [])
        if not parts:
            return pl.DataFrame()
        whole = pl.concat(parts)
        return whole.group_by(by).agg(pl.exclude(by).sum()) if by else whole


def _add(acc: dict, key: str, value: float) -> None:
    acc["sums"][key] = acc["sums"].get(key, 0) + value


def _keep(acc: dict, key: str, frame: pl.DataFrame) -> None:
    """Keep a part's small table, its categorical columns as strings (parts' dictionaries may differ)."""
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c, dtype in frame.schema.items()
                               if dtype == pl.Categorical or isinstance(dtype, pl.Enum))
    acc["frames"].setdefault(key, []).append(frame)


def _reduce(log: Log, acc: dict, events: pl.DataFrame, devices: pl.DataFrame, premises: pl.DataFrame) -> None:
    """One part's contribution: counts, per-day and per-combination tables, and the pairs of rows that
    the shapes of issue 11 compare."""
    attempts = events.filter(pl.col("attempt_number").is_not_null()).with_columns(
        (pl.col("event_type") == "migration_success").alias("ok"))
    ok = attempts["ok"]
    n = attempts["attempt_number"]
    _add(acc, "attempted", int((n == 1).sum()))
    _add(acc, "migrated", int(ok.sum()))
    _add(acc, "failed_three", int((~ok & (n == 3)).sum()))
    _add(acc, "first_try", int((ok & (attempts["tries"] == 1)).sum()))
    _add(acc, "migrated_by_q2_2024", int((ok & (attempts["t"] < Q2_2024_END)).sum()))
    acc["sums"]["max_attempts"] = max(acc["sums"].get("max_attempts", 0), int(n.max() or 0))
    days = attempts["day"].to_numpy()
    if len(days):
        counts = np.bincount(days - days.min())
        _keep(acc, "daily", pl.DataFrame({"day": np.arange(len(counts), dtype=np.int64) + days.min(),
                                          "len": counts.astype(np.uint32)}).filter(pl.col("len") > 0))
    # Each failure and the device's next attempt (numbered one more).
    failures = attempts.filter(~pl.col("ok"))
    nxt = attempts.filter(pl.col("attempt_number") >= 2).select(
        "device_index", pl.col("attempt_number").alias("n"), pl.col("t").alias("next_t"), pl.col("ok").alias("next_ok"))
    pairs = failures.select("device_index", (pl.col("attempt_number") + 1).alias("n"), "t",
                            (pl.col("error_kind") == "permanent").alias("permanent"))
    pairs = pairs.join(nxt, on=["device_index", "n"])
    acc["gaps"].append((pairs["next_t"] - pairs["t"]).cast(pl.Int32))
    upgrades = events.filter(pl.col("event_type") == "firmware_upgrade").select("device_index", pl.col("t").alias("u"))
    perm = pairs.filter(pl.col("permanent"))
    between = (pl.col("u") > pl.col("t")) & (pl.col("u") <= pl.col("next_t"))
    fixed = perm.join(upgrades, on="device_index").filter(between).select("device_index", "t").unique()
    perm = perm.join(fixed, on=["device_index", "t"], how="anti")
    _add(acc, "permanent_pairs", perm.height)
    _add(acc, "permanent_next_ok", int(perm["next_ok"].sum()))
    # Failures per combination and error.
    _keep(acc, "failures", failures.group_by(
        "device_type", "manufacturer", "model", "firmware_version",
        pl.concat_str([pl.col("error_code").cast(pl.String), pl.col("error_sub_code").cast(pl.String)],
                      separator="/").alias("error")).len())
    # A hub's meters: first attempts the same day; a GSME failing on a day its ESME failed.
    first = attempts.filter(pl.col("attempt_number") == 1)
    e_first = first.filter(pl.col("device_type") == "ESME").select("premise_index", "day")
    g_first = first.filter(pl.col("device_type") == "GSME").select("premise_index", "day")
    e_day, g_day = _by_key(e_first["premise_index"].to_numpy(), g_first["premise_index"].to_numpy(),
                           e_first["day"].to_numpy(), g_first["day"].to_numpy())
    _add(acc, "hub_pairs", len(e_day))
    _add(acc, "hub_same_day", int((e_day == g_day).sum()))
    gas = attempts.filter(pl.col("device_type") == "GSME").select("premise_index", "day", "ok")
    esme_failed = failures.filter(pl.col("device_type") == "ESME").select("premise_index", "day").unique()
    along = gas.join(esme_failed, on=["premise_index", "day"], how="semi")
    _add(acc, "gsme_attempts", gas.height)
    _add(acc, "gsme_failures", int((~gas["ok"]).sum()))
    _add(acc, "gsme_along", along.height)
    _add(acc, "gsme_along_failures", int((~along["ok"]).sum()))
    # Installs (ECOSMIG-006 events): weekday and hour.
    installs = events.filter(pl.col("event_type") == "install")["occurred_at"]
    _add(acc, "installs", len(installs))
    _add(acc, "installs_sunday", int((installs.dt.weekday() == 7).sum()))
    _add(acc, "installs_07_19", int(((installs.dt.hour() >= 7) & (installs.dt.hour() < 19)).sum()))
    # A change of supplier at the premises within 14 days after a skip, after a success.
    switches = acc["part_switches"]  # the part's own changes of supplier (the whole table if it has no such part)
    # One sorted key per change, (premises, time); an event looks up the changes in (t, t + 14 days].
    base = int(min(switches["c"].min() or 0, events["t"].min() or 0)) - 1
    change_key = np.sort(switches["premise_index"].to_numpy().astype(np.int64) * (1 << 34)
                         + (switches["c"].to_numpy() - base))
    for kind in ("prevalidation_skip", "migration_success"):
        e = events.filter(pl.col("event_type") == kind).select("premise_index", "t")
        key = np.sort(e["premise_index"].to_numpy().astype(np.int64) * (1 << 34) + (e["t"].to_numpy() - base))
        near = np.searchsorted(change_key, key + SOON, side="right") - np.searchsorted(change_key, key, side="right")
        _add(acc, f"{kind}_events", e.height)
        _add(acc, f"{kind}_then_switch", int((near > 0).sum()))
    # Devices: at the start by type; installed during the period (TCoS or ECoS) by month; manufacturers' prefixes.
    at_start = devices.filter(pl.col("installed_at").is_null() & ~pl.col("ecos_credentials_at_install"))
    _keep(acc, "devices_at_start", at_start.group_by("device_type").len())
    new = devices.filter(pl.col("installed_at").is_not_null())
    _keep(acc, "installed", new.group_by(pl.col("installed_at").dt.truncate("1mo").alias("month"), "device_type").agg(
        pl.len().alias("n"), (~pl.col("ecos_credentials_at_install")).sum().alias("tcos")))
    cut = log.s.end - 60 * 86_400
    tcos = new.filter(~pl.col("ecos_credentials_at_install") & (pl.col("installed_at").dt.epoch("s") < cut))
    _add(acc, "tcos_installed", tcos.height)
    _add(acc, "tcos_attempted", tcos.join(first, on="device_index", how="semi").height)
    _keep(acc, "prefixes", devices.group_by("manufacturer", pl.col("device_id").str.slice(0, 8).alias("prefix")).len())
    fleet = at_start.filter(pl.col("device_type") == "ESME").join(
        premises.select("premise_index", pl.col("electricity_supplier").alias("supplier")), on="premise_index")
    _keep(acc, "fleet", fleet.group_by("supplier", "manufacturer").len())
    # Premises at the start: suppliers by fuel; distributor areas (the MPAN's first two digits).
    start = premises.filter(pl.col("installed_at").is_null())
    _keep(acc, "suppliers", start.group_by("electricity_supplier", "gas_supplier").len())
    _add(acc, "electricity_premises", int(premises["has_electricity"].sum()))
    _keep(acc, "distributors", premises.filter(pl.col("mpan").is_not_null())
          .group_by(pl.col("mpan").str.slice(0, 2).alias("d")).len())


def _by_key(a_key: np.ndarray, b_key: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of ``a`` and ``b`` whose keys are in both (keys unique on each side), paired by key."""
    common, ia, ib = np.intersect1d(a_key, b_key, assume_unique=True, return_indices=True)
    return a[ia], b[ib]


# ----------------------------------------------------------------------------- measures


def _count(log: Log, dtype: str | None = None) -> float:
    d = log.frame("devices_at_start", ["device_type"])
    return float(d["len"].sum() if dtype is None else d.filter(pl.col("device_type") == dtype)["len"].sum())


def _gas_meter_share(log: Log) -> float:
    return _count(log, "GSME") / max(1.0, _count(log, "GSME") + _count(log, "ESME"))


def _shares(log: Log, fuel: str) -> dict[str, float]:
    """Each supplier's share of the premises (at the start) with that fuel."""
    column = f"{fuel}_supplier"
    p = log.frame("suppliers", ["electricity_supplier", "gas_supplier"]).filter(pl.col(column).is_not_null())
    per = p.group_by(column).agg(pl.col("len").sum())
    total = max(1, int(per["len"].sum()))
    return {k: v / total for k, v in zip(per[column].to_list(), per["len"].to_list())}


def _elec_share(party: str) -> Callable[[Log], float]:
    return lambda log: _shares(log, "electricity").get(party, 0.0)


def _others_share(log: Log) -> float:
    large = {x.party_id for x in log.s.suppliers if x.group == "large"}
    return sum(v for k, v in _shares(log, "electricity").items() if k not in large)


def _dual_fuel_suppliers(log: Log) -> float:
    return float(len(_shares(log, "gas")))


def _switch_rate(log: Log) -> float:
    years = (log.s.end - log.s.start) / (365.25 * 86_400)
    changes = log.parts["switches"].filter(pl.col("fuel") == "electricity").height
    return changes / max(1, log.sum("electricity_premises")) / years


def _mix(src: str, dst: str) -> Callable[[Log], float]:
    def measure(log: Log) -> float:
        group = {x.party_id: x.group for x in log.s.suppliers}
        c = log.parts["switches"].with_columns(pl.col("losing_supplier").replace_strict(group).alias("a"),
                                               pl.col("gaining_supplier").replace_strict(group).alias("b"))
        return float(c.filter((pl.col("a") == src) & (pl.col("b") == dst)).height / max(1, c.height))
    return measure


def _migrated_by(log: Log) -> float:
    """Of the devices attempted, the share migrated by the end of Q2 2024."""
    return log.sum("migrated_by_q2_2024") / max(1, log.sum("attempted"))


def _daily(log: Log) -> pl.DataFrame:
    d = log.frame("daily", ["day"])
    if not d.height:
        return d
    return (d.sort("day").with_columns(pl.from_epoch(pl.col("day") * 86_400, time_unit="s").dt.date().alias("date"))
            .with_columns(pl.col("date").dt.weekday().alias("weekday")))


def _attempts_per_weekday(log: Log) -> float:
    """Mean attempts a working day (Monday to Friday) over the months at full pace (October, November,
    January to April)."""
    d = _daily(log)
    d = d.filter((pl.col("weekday") <= 5) & pl.col("date").dt.month().is_in([10, 11, 1, 2, 3, 4])) if d.height else d
    return float(d["len"].mean()) if d.height else 0.0


def _meters_installed_per_day(log: Log) -> float:
    d = log.frame("installed", ["month", "device_type"])
    n = d.filter(pl.col("device_type").is_in(["ESME", "GSME"]))["n"].sum() if d.height else 0
    return n / ((log.s.end - log.s.start) / 86_400)


def _max_attempts(log: Log) -> float:
    return float(log.sum("max_attempts"))


def _further_attempt_days(log: Log) -> float | None:
    """Median days between a failed attempt and the device's next attempt."""
    gaps = pl.concat(log.parts["gaps"]) if log.parts["gaps"] else pl.Series([], dtype=pl.Int32)
    return float(gaps.median() / 86_400) if len(gaps) else None


# -- issue 11's shapes


def _next_success_after_permanent(log: Log) -> float | None:
    """After a permanent error, the share of next attempts that succeed, when no firmware upgrade came between."""
    pairs = log.sum("permanent_pairs")
    return log.sum("permanent_next_ok") / pairs if pairs else None


def _not_migrated(log: Log) -> float:
    return 1.0 - log.sum("migrated") / max(1, log.sum("attempted"))


def _failed_three_times(log: Log) -> float:
    return log.sum("failed_three") / max(1, log.sum("attempted"))


def _first_try(log: Log) -> float | None:
    return log.sum("first_try") / log.sum("migrated") if log.sum("migrated") else None


def _ramp(log: Log) -> float | None:
    """Mean daily attempts of the first 14 days from the first attempt, over the busiest month's mean."""
    d = _daily(log)
    if not d.height:
        return None
    first = d["day"].min()
    early = d.filter(pl.col("day") < first + 14)["len"].sum() / 14
    month = (d.group_by(pl.col("date").dt.truncate("1mo")).agg(pl.col("len").sum())
             .with_columns(pl.col("date").dt.month_end().dt.day().alias("days")))
    busiest = (month["len"] / month["days"]).max()
    return float(early / busiest) if busiest else None


def _christmas(log: Log) -> float | None:
    """Attempts on 25 December over the mean of the ordinary December weekdays (1 to 21 December)."""
    d = _daily(log)
    if not d.height:
        return None
    dec = d.filter(pl.col("date").dt.month() == 12)
    ordinary = dec.filter((pl.col("date").dt.day() <= 21) & (pl.col("weekday") <= 5))
    if not ordinary.height:
        return None
    xmas = dec.filter(pl.col("date").dt.day() == 25)["len"].sum()
    return float(xmas / ordinary["len"].mean())


def _weekday_cv(log: Log) -> float | None:
    """Coefficient of variation of attempts on working days (Monday to Friday) at full pace (October,
    November, February to April: clear of the ramp-up, Christmas and the tail)."""
    d = _daily(log)
    if not d.height:
        return None
    d = d.filter((pl.col("weekday") <= 5) & pl.col("date").dt.month().is_in([10, 11, 2, 3, 4]))
    return float(d["len"].std() / d["len"].mean()) if d.height > 2 else None


KEYS = ["device_type", "manufacturer", "model", "firmware_version"]


def _signature(log: Log) -> float | None:
    """Of each Non-Migratable combination's failures, the share of its most frequent error; the least of them."""
    nm = log.table("non_migratable").select(KEYS)
    f = log.frame("failures", KEYS + ["error"])
    f = f.join(nm, on=KEYS, how="semi") if f.height else f
    if not f.height:
        return None
    per = f.group_by(KEYS).agg((pl.col("len").max() / pl.col("len").sum()).alias("top"))
    return float(per["top"].min())


def _error_distance(log: Log) -> float | None:
    """Total variation distance between the ESME and GSME error mixes."""
    f = log.frame("failures", KEYS + ["error"])
    if not f.height:
        return None
    f = f.filter(pl.col("device_type").is_in(["ESME", "GSME"])).group_by("device_type", "error").agg(
        pl.col("len").sum())
    mix = f.with_columns((pl.col("len") / pl.col("len").sum().over("device_type")).alias("p"))
    esme = mix.filter(pl.col("device_type") == "ESME").select("error", pl.col("p").alias("e"))
    gsme = mix.filter(pl.col("device_type") == "GSME").select("error", pl.col("p").alias("g"))
    if not esme.height or not gsme.height:
        return None
    both = esme.join(gsme, on="error", how="full", coalesce=True).fill_null(0.0)
    return float((both["e"] - both["g"]).abs().sum() / 2)


def _hub_same_day(log: Log) -> float | None:
    """Of the premises with both meters attempted, the share whose ESME and GSME first attempts fell the same day."""
    return log.sum("hub_same_day") / log.sum("hub_pairs") if log.sum("hub_pairs") else None


def _shared_failure(log: Log) -> float | None:
    """A GSME's failure rate on days its ESME failed, over its failure rate on all its attempts."""
    if not log.sum("gsme_along") or not log.sum("gsme_failures"):
        return None
    along = log.sum("gsme_along_failures") / log.sum("gsme_along")
    return along / (log.sum("gsme_failures") / log.sum("gsme_attempts"))


def _install_sundays(log: Log) -> float | None:
    return log.sum("installs_sunday") / log.sum("installs") if log.sum("installs") else None


def _install_hours(log: Log) -> float | None:
    return log.sum("installs_07_19") / log.sum("installs") if log.sum("installs") else None


def _gas_elec_share_gap(log: Log) -> float:
    """The largest difference, over suppliers, between a supplier's gas and electricity shares."""
    e, g = _shares(log, "electricity"), _shares(log, "gas")
    return max((abs(e.get(k, 0.0) - g.get(k, 0.0)) for k in set(e) | set(g)), default=0.0)


def _one_fuel_suppliers(log: Log) -> float:
    e, g = _shares(log, "electricity"), _shares(log, "gas")
    return float(len(set(e) ^ set(g)))


def _fleet_spread(log: Log) -> float | None:
    """Across the six largest electricity suppliers, max - min of their top ESME manufacturer's share."""
    d = log.frame("fleet", ["supplier", "manufacturer"])
    if not d.height:
        return None
    top6 = d.group_by("supplier").agg(pl.col("len").sum()).sort("len", "supplier", descending=True).head(6)["supplier"]
    d = d.filter(pl.col("supplier").is_in(top6.implode()))
    share = d.group_by("supplier").agg((pl.col("len").max() / pl.col("len").sum()).alias("top"))
    return float(share["top"].max() - share["top"].min()) if share.height >= 2 else None


def _skip_then_switch(log: Log) -> float | None:
    """P(a change of supplier at the premises within 14 days | pre-validation skip) over the same after a success."""
    rates = []
    for kind in ("prevalidation_skip", "migration_success"):
        total = log.sum(f"{kind}_events")
        if not total:
            return None
        rates.append(log.sum(f"{kind}_then_switch") / total)
    return rates[0] / rates[1] if rates[1] else None


def _distributor_ratio(log: Log) -> float | None:
    m = log.frame("distributors", ["d"])
    return float(m["len"].max() / m["len"].min()) if m.height else None


def _prefixes(log: Log) -> float:
    """Manufacturers whose devices all share one 3-octet EUI-64 prefix, of its own: their share of all manufacturers."""
    d = log.frame("prefixes", ["manufacturer", "prefix"])
    if not d.height:
        return 0.0
    per = d.group_by("manufacturer").agg(pl.col("prefix").n_unique().alias("n"), pl.col("prefix").first())
    own = per.filter((pl.col("n") == 1) & (pl.col("prefix").is_unique()))
    return own.height / max(1, per.height)


def _tcos(log: Log) -> pl.DataFrame:
    """Devices installed during the period per month: how many, and how many with TCoS credentials."""
    d = log.frame("installed", ["month", "device_type"])
    return d.group_by("month").agg(pl.col("n").sum(), pl.col("tcos").sum()).sort("month") if d.height else d


def _tcos_first_month(log: Log) -> float | None:
    t = _tcos(log)
    return float(t["tcos"][0] / t["n"][0]) if t.height else None


def _tcos_fall(log: Log) -> float | None:
    """The TCoS share of the first month's installs minus that of the last full month's."""
    t = _tcos(log)
    if t.height < 3:
        return None
    return float(t["tcos"][0] / t["n"][0] - t["tcos"][-2] / t["n"][-2])


def _tcos_attempted(log: Log) -> float | None:
    """Of the devices installed with TCoS credentials at least 60 days before the end, the share attempted."""
    n = log.sum("tcos_installed")
    return log.sum("tcos_attempted") / n if n else None


# ----------------------------------------------------------------------------- the table


def _get(path: str) -> Callable[[dict], Any]:
    """The scenario's setting at a dotted ``path`` (None when absent)."""
    def get(raw: dict) -> Any:
        node: Any = raw
        for key in path.split("."):
            if isinstance(node, list):
                node = next((x for x in node if isinstance(x, dict) and x.get("party_id") == key), None)
            elif isinstance(node, dict):
                node = node.get(key)
            if node is None:
                return None
        return node
    return get


def _range(low: float, high: float, widen: float = 0.1) -> dict[str, float]:
    """A published range, widened by ``widen`` either side (the audit's 'within 10%')."""
    return {"low": low * (1 - widen), "high": high * (1 + widen)}


SHARES = [("PLG001", 0.24), ("PLG002", 0.20), ("PLG003", 0.17), ("PLG004", 0.13), ("PLG005", 0.11), ("PLG006", 0.08)]
MIX = [("large", "large", 0.59), ("large", "other", 0.21), ("other", "large", 0.14), ("other", "other", 0.06)]

FIGURES: list[Figure] = [
    Figure("devices_at_go_live", "devices holding TCoS credentials at go-live", "27-30M (derived)",
           f"{FACTS} Population", _get("population.premises"), _count, **_range(27e6, 30e6)),
    Figure("esme_at_go_live", "ESME at go-live", "9-10M", f"{FACTS} Population",
           _get("population.electricity_share"), lambda log: _count(log, "ESME"), **_range(9e6, 10e6)),
    Figure("gsme_at_go_live", "GSME at go-live", "about 7M", f"{FACTS} Population",
           _get("population.gas_share"), lambda log: _count(log, "GSME"), **_range(7e6, 7e6)),
    Figure("gpf_at_go_live", "hubs (GPF) at go-live", "9-10M", f"{FACTS} Population",
           _get("population.premises"), lambda log: _count(log, "GPF"), **_range(9e6, 10e6)),
    Figure("gas_meter_share", "gas meters' share of meters", "0.42 (13.1M gas to 18.1M electricity)",
           f"{FACTS} Population", _get("population.gas_share"), _gas_meter_share, **_range(0.42, 0.42)),
    *[Figure(f"share_{party}", f"electricity share of {party}", f"{share:.2f}", f"{FACTS} Suppliers (Ofgem/Elexon)",
             _get(f"suppliers.{party}.share"), _elec_share(party), **_range(share, share))
      for party, share in SHARES],
    Figure("share_others", "electricity share of the other suppliers", "0.08-0.09", f"{FACTS} Suppliers",
           lambda raw: None, _others_share, **_range(0.08, 0.09)),
    Figure("dual_fuel_suppliers", "suppliers selling gas", "18 of 21", f"{FACTS} Suppliers (Ofgem)",
           lambda raw: None, _dual_fuel_suppliers, low=18, high=18),
    Figure("switch_rate", "electricity changes of supplier per premises a year", "0.08-0.09",
           f"{FACTS} Suppliers and switching (ElectraLink)", _get("change_of_supplier.electricity_rate_per_year"),
           _switch_rate, **_range(0.08, 0.09)),
    *[Figure(f"mix_{a}_{b}", f"switches {a} to {b}", f"{w:.2f}", f"{FACTS} Suppliers and switching (June 2024)",
             lambda raw, a=a, b=b: next((r["weight"] for r in (raw.get("change_of_supplier") or {}).get("mix", [])
                                         if r["from"] == a and r["to"] == b), None), _mix(a, b), **_range(w, w))
      for a, b, w in MIX],
    Figure("migrated_by_q2_2024", "attempted devices migrated by the end of Q2 2024", "migration complete in Q2 2024",
           f"{FACTS} Migration (smartdcc.co.uk)", _get("migration.capacity"), _migrated_by, low=0.95, high=1.0),
    Figure("attempts_per_working_day", "attempts a working day at full pace", "100k-250k devices a day (derived)",
           f"{FACTS} Migration", _get("migration.capacity.monday"), _attempts_per_weekday, **_range(100e3, 250e3)),
    Figure("meters_installed_per_day", "meters installed a day", "about 9,600 (3.5M in 2023)",
           f"{FACTS} Population (current-news.co.uk)", _get("installs.per_day"), _meters_installed_per_day,
           **_range(9_600, 9_600)),
    Figure("max_attempts", "most attempts of a device", "stop after at least five failed attempts (SMETS1)",
           f"{FACTS} Migration", _get("migration.max_attempts"), _max_attempts, low=5, high=5),
    Figure("further_attempt_days", "days between a device's attempts (median)", "about a month",
           "spec/003 §36", _get("migration.further_attempt_interval"), _further_attempt_days, low=25, high=35),
    # issue 11's shapes
    Figure("next_success_after_permanent", "next attempt succeeds after a permanent error, nothing fixed between",
           "at most 0.5", f"{ISSUE} 1; spec/003 §37", _get("migration.outcomes.faulty"), _next_success_after_permanent,
           high=0.5),
    Figure("not_migrated_at_end", "attempted devices not migrated at the end", "0.005-0.05", f"{ISSUE} 1",
           _get("migration.outcomes"), _not_migrated, low=0.005, high=0.05),
    Figure("failed_three_times", "attempted devices failing three times or more", "at least 0.001", f"{ISSUE} 1",
           _get("migration.outcomes"), _failed_three_times, low=0.001),
    Figure("first_try_successes", "successful sessions succeeding at the first try", "at least 0.8", f"{ISSUE} 2",
           _get("migration.session.first_try_share"), _first_try, low=0.8, high=1.0),
    Figure("ramp_up", "first two weeks' daily attempts over the busiest month's", "at most 0.5", f"{ISSUE} 3",
           _get("migration.ramp_up"), _ramp, high=0.5),
    Figure("christmas_day", "25 December's attempts over an ordinary December weekday's", "at most 0.2",
           f"{ISSUE} 3", _get("migration.calendar"), _christmas, high=0.2),
    Figure("weekday_variation", "coefficient of variation of working days' attempts", "at least 0.05", f"{ISSUE} 3",
           _get("migration.daily_variation"), _weekday_cv, low=0.05),
    Figure("non_migratable_signature", "a Non-Migratable combination's failures with its most frequent error",
           "at least 0.9", f"{ISSUE} 4", _get("migration.outcomes.faulty"), _signature, low=0.9, high=1.0),
    Figure("esme_gsme_error_distance", "total variation distance of the ESME and GSME error mixes", "at least 0.1",
           f"{ISSUE} 4", _get("migration.outcomes.han"), _error_distance, low=0.1),
    Figure("hub_same_day", "premises with both meters whose first attempts fell the same day", "at least 0.5",
           f"{ISSUE} 5", _get("migration.selection"), _hub_same_day, low=0.5),
    Figure("shared_communications_failure", "GSME failure rate when its ESME failed that day, over its rate",
           "at least 3", f"{ISSUE} 5", _get("migration.outcomes.wan"), _shared_failure, low=3.0),
    Figure("installs_on_sundays", "installs on Sundays", "at most 0.05", f"{ISSUE} 6",
           _get("installs.weekday_weights"), _install_sundays, high=0.05),
    Figure("installs_07_to_19", "installs between 07:00 and 19:00", "at least 0.85", f"{ISSUE} 6",
           _get("installs.working_hours"), _install_hours, low=0.85),
    Figure("gas_electricity_share_gap", "largest gap between a supplier's gas and electricity shares",
           "shares differ (above 0.01)", f"{ISSUE} 7", lambda raw: None, _gas_elec_share_gap, low=0.01),
    Figure("one_fuel_suppliers", "suppliers selling one fuel only", "at least 1 (21 suppliers, 18 dual fuel)",
           f"{ISSUE} 7; {FACTS} Suppliers", lambda raw: None, _one_fuel_suppliers, low=1),
    Figure("fleet_spread", "spread of the top ESME manufacturer's share across the six largest suppliers",
           "at least 0.15", f"{ISSUE} 7", lambda raw: None, _fleet_spread, low=0.15),
    Figure("skip_then_switch", "change of supplier within 14 days: after a skip over after a success",
           "at least 5", f"{ISSUE} 8; spec/003 §30 c", _get("migration.prevalidation_skip"), _skip_then_switch,
           low=5.0),
    Figure("distributor_ratio", "largest distributor area over the smallest (premises)", "at least 2", f"{ISSUE} 9",
           _get("population.distributor_shares"), _distributor_ratio, low=2.0),
    Figure("manufacturer_prefixes", "manufacturers whose Device IDs share their own EUI-64 prefix", "all (1.0)",
           f"{ISSUE} 9; {FACTS} Identifiers", _get("population.device_id_prefixes"), _prefixes, low=1.0, high=1.0),
    Figure("tcos_installs_first_month", "new installs holding TCoS credentials, first month", "above 0",
           f"{ISSUE} 10", _get("installs.tcos_share"), _tcos_first_month, low=0.01, high=1.0),
    Figure("tcos_installs_fall", "TCoS share of installs: first month minus the last full month", "above 0 (falls)",
           f"{ISSUE} 10", _get("installs.tcos_share"), _tcos_fall, low=0.01),
    Figure("tcos_installs_attempted", "devices installed with TCoS credentials (60+ days before the end) attempted",
           "they join the migration (at least 0.9)", f"{ISSUE} 10", _get("installs.tcos_share"), _tcos_attempted,
           low=0.9, high=1.0),
]


def _plain(value: Any) -> Any:
    """A setting as JSON can hold it (instants and durations stay as the scenario wrote them)."""
    if isinstance(value, float):
        return round(value, 6)
    return value


def measure(scenario: Scenario, log: str | Path) -> list[dict[str, Any]]:
    """The calibration table of the event log ``log``: one row per figure of FIGURES."""
    data = Log(Path(log), scenario)
    rows = []
    for f in FIGURES:
        value = f.measure(data)
        value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        rows.append({
            "id": f.id, "figure": f.figure, "published": f.published, "source": f.source,
            "setting": _plain(f.setting(scenario.raw)),
            "measured": None if value is None else round(value, 6),
            "tolerance": [None if math.isinf(f.low) else f.low, None if math.isinf(f.high) else f.high],
            "within": value is not None and f.low <= value <= f.high,
        })
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown (docs/scenarios.md shows the national one)."""
    def number(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"

    def setting(value: Any) -> str:
        if value is None:
            return "-"
        text = json.dumps(value, separators=(", ", ": "), default=str) if isinstance(value, dict | list) else str(value)
        return "`" + (text if len(text) <= 48 else text[:45] + "...") + "`"

    lines = ["| Figure | Published | Source | Setting | Measured | Tolerance | Within |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        low, high = r["tolerance"]
        tol = f"{number(low) if low is not None else ''} to {number(high) if high is not None else ''}".strip()
        lines.append(f"| {r['figure']} | {r['published']} | {r['source']} | {setting(r['setting'])} | "
                     f"{number(r['measured'])} | {tol} | {'yes' if r['within'] else '**no**'} |")
    return "\n".join(lines)
