"""Scenario loading: YAML (safe_load) -> JSON Schema -> semantic checks -> a resolved ``Scenario``.

Every problem is one ``UserError`` naming the file, the line, the YAML path and what was
expected. Durations become integer seconds and instants integer seconds since the Unix epoch
(UTC), so that the model works in integers and stays deterministic.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from emrr import yamlio
from emrr.contract import DEVICE_TYPES, YEARS, parse_instant  # the event log's instants: one reading for both sides
from emrr.errors import UserError
from emrr.sim import streams
from emrr.sim.identifiers import DISTRIBUTORS, MPRN_SPACE, NEW_PREMISES_STRIDE

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NEVER = np.iinfo(np.int64).max  # "not classified" / "not installed"
SHARE_TOLERANCE = 1e-6
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = 36500 * 86400  # 100 years: keeps every instant well inside int64 milliseconds
MAX_SESSION_TRIES = 10_000
# Instants from 1971-01-01 to 2999-12-31 (UTC): inside the years of a report file's date-times that
# the checker accepts (emrr.contract.YEARS, 1970 to 2999). After 2999 the checker refuses the
# files' dates, and at year 9999 the engine's calendar arithmetic overflows. The first year is 1971,
# not 1970, because a report run covers the schedule interval before it (a week for ECOSMIG-004,
# up to a year for a yearly cron): a period from 1970-01-01 gives windows that start in 1969, which
# the checker cannot hold.
INSTANT_YEARS = (YEARS[0] + 1, YEARS[1])
# What one shard may cost: its premises times the period in years (at least one), at most this.
# A shard's memory grows with its premises and with the events of its period: the regional
# scenario's 250,000-premises shard over a year peaks at about 480 MB (benchmarks/results/
# simulate.json), so this bounds one worker at about 2 GB; national's shards are 675,000 for a year.
MAX_SHARD_PREMISES_YEARS = 1_000_000
# What one shard's batches may select: attempts plus pre-validation skips, each a row of the event
# log held in memory until the shard is written. 5,347,485 attempts in one shard peaked at 1.6 GB
# (2,000 premises, max_attempts 999, unbounded capacity), so this also bounds a process at about 2 GB.
# National's shards select about 2.3 million devices, regional's about 0.9 million.
MAX_SHARD_SELECTIONS = 5_000_000
# Each list of weights must add up to at most this, so that sums and products of them stay finite
# (1.5e308 + 1.5e308 is inf, and inf / inf gives NaN probabilities).
MAX_WEIGHT_TOTAL = 1e300


def schema() -> dict[str, Any]:
    """The scenario JSON Schema shipped with the package."""
    text = resources.files("emrr.sim").joinpath("scenario.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


# --------------------------------------------------------------------------- values


def parse_duration(text: str) -> int:
    """'5m' -> 300. The schema has already checked the form."""
    return int(round(float(text[:-1]) * _UNIT_SECONDS[text[-1]]))


def format_instant(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Delay:
    """A random delay in seconds: fixed, uniform [low, high] or exponential (mean ``low``)."""

    distribution: str
    low: int
    high: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, str] | None, default: "Delay") -> "Delay":
        if spec is None:
            return default
        kind = spec["distribution"]
        if kind == "fixed":
            return cls("fixed", parse_duration(spec["value"]))
        if kind == "uniform":
            return cls("uniform", parse_duration(spec["min"]), parse_duration(spec["max"]))
        return cls("exponential", parse_duration(spec["mean"]))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` delays as int64 seconds."""
        if self.distribution == "fixed" or n == 0:
            return np.full(n, self.low, dtype=np.int64)
        if self.distribution == "uniform":
            return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)
        return np.round(rng.exponential(self.low, size=n)).astype(np.int64)


# --------------------------------------------------------------------------- resolved scenario


@dataclass(frozen=True)
class Supplier:
    party_id: str
    name: str
    share: float
    group: str
    gas_share: float | None = None  # None: the same as share


# Causes of a failed attempt (migration.outcomes; errors[].cause).
CAUSES = ("wan", "han", "device", "other")
CAUSE_WAN, CAUSE_HAN, CAUSE_DEVICE, CAUSE_OTHER = range(4)


@dataclass(frozen=True)
class Outcomes:
    """migration.outcomes: conditions of hubs and devices, and what they do to attempts. The per-type
    shares are indexed by slot (DEVICE_TYPES order: GPF, ESME, GSME)."""

    wan_poor_share: float
    wan_poor_failure: float
    wan_failure: float
    wan_repair: float
    han_share: np.ndarray
    han_failure: float
    han_repair: float
    faulty_share: np.ndarray
    faulty_failure: float
    faulty_repair: float
    faulty_firmware_fix: float


@dataclass(frozen=True)
class Campaign:
    combo_from: int
    combo_to: int
    start: int
    duration: int
    coverage: float


@dataclass
class Scenario:
    """A validated scenario with every value resolved to numbers and index tables."""

    path: str
    raw: dict[str, Any]
    name: str
    seed: int
    start: int
    end: int
    suppliers: list[Supplier]
    # population
    premises: int
    gas_share: float
    electricity_share: float
    same_supplier_share: float
    shard_premises: int
    combos: list[tuple[str, str, str, str]]  # (device_type, manufacturer, model, firmware)
    combo_weights: dict[str, tuple[np.ndarray, np.ndarray]]  # type -> (combo idx, probability)
    nm_classified_at: np.ndarray  # per combo, NEVER when not Non-Migratable
    nm_success_before: np.ndarray  # per combo
    campaigns: list[Campaign]
    # migration
    migration_start: int
    capacity: tuple[int, ...]  # Monday..Sunday
    batch_times: tuple[int, ...]  # seconds after midnight
    batch_spread: int
    skip_probability: float
    reselect_after: int
    try_offsets: np.ndarray  # seconds after the session start of each try
    session_timeout: int
    confirmation_delay: Delay
    success_probability: np.ndarray  # per combo
    error_codes: list[str]
    error_sub_codes: np.ndarray
    error_weights: np.ndarray  # normalised
    error_permanent: np.ndarray  # bool
    further_attempt_interval: int
    further_attempt_jitter: int
    max_attempts: int
    # change of supplier
    cos_electricity_rate: float
    cos_gas_rate: float
    cos_correlation: float
    cos_gaining: np.ndarray  # [losing, gaining] conditional probabilities
    cos_leave_factor: np.ndarray  # per losing supplier: its customers' switching rate / the average
    # installs
    installs_per_day: float
    install_gas_share: float
    install_electricity_share: float
    gpf_on_network_delay: Delay
    commissioning_delay: Delay
    # notifications
    latency: Delay
    late_probability: float
    late_latency: Delay
    duplicate_probability: float
    duplicate_delay: Delay
    # outages
    outage_windows: list[tuple[str, int, int]]
    outage_random_per_year: float
    outage_random_duration: Delay
    outage_random_reports: tuple[str, ...]  # each random outage hits one, drawn uniformly in this order
    # realism (docs/scenarios.md "Realism"); every default keeps the plain model
    gas_shares: np.ndarray | None = None  # per supplier; None: the electricity shares
    fleet: np.ndarray | None = None  # [supplier, combo] weight of each meter combination in its fleet
    distributor_weights: np.ndarray | None = None  # per distributor id 10..23; None: uniform
    id_prefix: np.ndarray | None = None  # per combo: the manufacturer's 24-bit EUI-64 prefix; None: no prefix
    selection_by_hub: bool = False
    ramp_up: tuple[int, float] | None = None  # (duration seconds, initial fraction)
    calendar: list[tuple[int, int, float]] = field(default_factory=list)  # [start, end) and capacity factor
    daily_variation: float = 0.0
    outcomes: Outcomes | None = None
    error_cause: np.ndarray | None = None  # per error: CAUSE_*
    error_by_cause: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    error_signature: np.ndarray | None = None  # per combo: the error a faulty device on it gives
    first_try_share: float | None = None
    imminent_skip_probability: float = 0.0
    cos_notice: int = 0
    cos_gaining_gas: np.ndarray | None = None  # None: cos_gaining
    cos_leave_factor_gas: np.ndarray | None = None
    install_hours: tuple[int, int] | None = None  # [start, end) seconds after midnight
    install_weekday_weights: np.ndarray | None = None  # Monday..Sunday, mean 1
    tcos_share: tuple[float, float] | None = None  # at period.start, at period.end

    @property
    def party_ids(self) -> list[str]:
        return [s.party_id for s in self.suppliers]

    def combo_key(self, index: int) -> str:
        return "/".join(self.combos[index])


# --------------------------------------------------------------------------- loading


def load(path: str | Path, seed: int | None = None) -> Scenario:
    """Read, validate and resolve a scenario file; ``seed`` overrides the file's seed."""
    return loads(yamlio.read_text(path, "a scenario YAML file"), str(path), seed=seed)


def loads(text: str, where: str = "<scenario>", seed: int | None = None) -> Scenario:
    """Validate and resolve scenario YAML ``text``; ``where`` names it in errors."""
    data, lines = yamlio.loads(text, where)
    if not isinstance(data, dict):
        raise yamlio.error_at(where, lines, (), "expected a mapping at the top level of the scenario")
    _validate_schema(data, where, lines)
    yamlio.check_finite(data, where, lines)
    if seed is not None:
        data["seed"] = seed
    return _resolve(data, where, lines)



_FORMATS = jsonschema.FormatChecker(formats=())


@functools.lru_cache(maxsize=None)
def _form(name: str) -> re.Pattern:
    """The schema's pattern for ``$defs/name``."""
    return re.compile(schema()["$defs"][name]["pattern"])


@_FORMATS.checks("emrr-instant", raises=ValueError)
def _real_instant(value: object) -> bool:
    """A well-formed instant (the pattern's job) must also be a real date and time, within INSTANT_YEARS."""
    if isinstance(value, str) and _form("instant").match(value):
        try:
            parse_instant(value)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a real date or time: {exc}") from None
        if not INSTANT_YEARS[0] <= int(value[:4]) <= INSTANT_YEARS[1]:
            raise ValueError(f"outside the years {INSTANT_YEARS[0]} to {INSTANT_YEARS[1]} (the date-times a report "
                             "file may hold; see docs/scenarios.md)")
    return True


@_FORMATS.checks("emrr-duration", raises=ValueError)
def _bounded_duration(value: object) -> bool:
    """A well-formed duration must be at most MAX_DURATION (and so fit the model's integers)."""
    if isinstance(value, str) and _form("duration").match(value):
        if not float(value[:-1]) * _UNIT_SECONDS[value[-1]] <= MAX_DURATION:
            raise ValueError(f"longer than {MAX_DURATION // 86400}d (100 years)")
    return True


def _brief(value: Any, limit: int = 60) -> str:
    """repr(value), shortened: an error line quotes the value, not 400 digits of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _validate_schema(data: dict, where: str, lines: dict[tuple, int]) -> None:
    validate_schema(data, where, lines, jsonschema.Draft202012Validator(schema(), format_checker=_FORMATS))


def validate_schema(data: dict, where: str, lines: dict[tuple, int], validator: jsonschema.Validator) -> None:
    """The schema error a user should see first, as one line (file, line, YAML path, what was expected)."""
    error = yamlio.schema_error(validator, data)
    if error is None:
        return
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        if error.validator_value is False and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            path += tuple(k for k in error.instance if k not in allowed)[:1]  # point at the key
        message = f"{error.message}; see docs/scenarios.md for the allowed keys"
    elif error.validator == "format":
        message = f"{_brief(error.instance)} is {error.cause}"
    elif error.validator == "pattern":
        described = error.schema.get("description")
        message = f"{_brief(error.instance)} is not in the expected form" + (
            f" ({described})" if described else f" (pattern {error.validator_value})"
        )
    elif error.validator == "enum":
        message = f"{_brief(error.instance)} is not one of {error.validator_value}"
    elif error.validator == "maxItems":  # the limits that bound the work (docs/scenarios.md "Limits")
        message = f"{len(error.instance):,} items, at most {error.validator_value:,}; see docs/scenarios.md, Limits"
    elif error.validator == "maximum":
        message = f"{_brief(error.instance)} is greater than the maximum of {error.validator_value:,}"
    else:
        message = error.message
    raise yamlio.error_at(where, lines, path, f"expected {_expected(error)}: {message}")


def _expected(error: jsonschema.ValidationError) -> str:
    kind = error.validator
    if kind == "type":
        return f"a value of type {error.validator_value}"
    if kind == "required":
        return "every required key"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return "a number in range"
    if kind == "maxItems":
        return "a shorter list"
    if kind in ("minItems", "uniqueItems"):
        return "a valid list"
    return "a valid value"


# --------------------------------------------------------------------------- resolving, section by section
#
# The schema has checked every value's form; what follows are the checks it cannot express
# (docs/scenarios.md "Checks the schema cannot express"), one function per scenario section,
# each returning its part of the ``Scenario``'s fields.


@dataclass(frozen=True)
class _Source:
    """Where the scenario came from, so that every error names the file, the line and the YAML path."""

    where: str
    lines: dict[tuple, int]

    def fail(self, path: tuple, message: str) -> UserError:
        return yamlio.error_at(self.where, self.lines, path, message)

    def check_sum(self, values: list[float], path: tuple, what: str) -> None:
        total = math.fsum(values)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            # 10 significant digits: a sum that is off by more than the tolerance never prints as 1
            raise self.fail(path, f"expected {what} to add up to 1, they add up to {total:.10g}")

    def check_weights(self, values: list[float], path: tuple, what: str) -> None:
        """Relative weights must add up to a finite total of at most MAX_WEIGHT_TOTAL."""
        try:
            total = math.fsum(values)
        except OverflowError:  # fsum refuses a sum that overflows on the way
            total = math.inf
        if not total <= MAX_WEIGHT_TOTAL:
            raise self.fail(path, f"expected {what} to add up to at most {MAX_WEIGHT_TOTAL:g}, they add up to "
                            f"{total:.6g}")

    def delay(self, path: tuple, spec: dict | None, default: Delay) -> Delay:
        """The delay at ``path`` (``default`` when absent); a uniform one's max must be at least its min."""
        if spec and spec["distribution"] == "uniform" and parse_duration(spec["min"]) > parse_duration(spec["max"]):
            raise self.fail(path + ("max",), "expected max to be at least min")
        return Delay.from_spec(spec, default)


def _resolve(d: dict, where: str, lines: dict[tuple, int]) -> Scenario:
    """The semantic checks, section by section, then the resolved scenario."""
    src = _Source(where, lines)
    start, end = parse_instant(d["period"]["start"]), parse_instant(d["period"]["end"])
    if end <= start:
        raise src.fail(("period", "end"), f"expected a date-time after period.start ({d['period']['start']}), "
                       f"got {d['period']['end']}")
    if end - start > MAX_DURATION:
        raise src.fail(("period", "end"), f"expected a period of at most {MAX_DURATION // 86400}d (100 years), "
                       f"got {(end - start) / 86400:,.0f}d")
    suppliers = _suppliers(d, src)
    population = _population(d, src, end - start)
    return Scenario(
        path=where, raw=d, name=d["name"], seed=int(d["seed"]), start=start, end=end, suppliers=suppliers,
        **population,
        **_migration(d, src, start, end, population["combos"]),
        **_change_of_supplier(d.get("change_of_supplier"), src, suppliers),
        **_installs(d.get("installs") or {}, d["population"], src),
        **_notifications(d.get("notifications") or {}, src),
        **_outages(d.get("outages") or {}, src),
        **_realism(d, src, start, end, suppliers, population["combos"]),
    )


def _suppliers(d: dict, src: _Source) -> list[Supplier]:
    """Each supplier once, shares adding up to 1; a name made by Faker from the seed when none is given."""
    from faker import Faker

    faker = Faker("en_GB")
    faker.seed_instance(int(d["seed"]))
    seen: dict[str, int] = {}
    out = []
    for i, s in enumerate(d["suppliers"]):
        if s["party_id"] in seen:
            raise src.fail(("suppliers", i, "party_id"), f"expected a unique SEC Party ID; {s['party_id']} is "
                           f"also suppliers[{seen[s['party_id']]}]")
        seen[s["party_id"]] = i
        name = s.get("name") or f"{faker.company()} Energy"
        gas = s.get("gas_share")
        out.append(Supplier(s["party_id"], name, float(s["share"]), s.get("group", "other"),
                            None if gas is None else float(gas)))
    src.check_sum([s.share for s in out], ("suppliers",), "the suppliers' shares")
    if any(s.gas_share is not None for s in out):
        src.check_sum([s.share if s.gas_share is None else s.gas_share for s in out], ("suppliers",),
                      "the suppliers' gas shares (share where gas_share is omitted)")
    return out


# -- population


def _population(d: dict, src: _Source, span: int) -> dict[str, Any]:
    """The population section: numbering limits, the catalogue's combinations, Non-Migratable ones and
    firmware campaigns (which may add firmware versions to the combinations)."""
    pop = d["population"]
    _check_numbering(pop, d.get("installs") or {}, span, src)
    _check_shard_size(pop, d.get("installs") or {}, span, src)
    combos, combo_weights = _catalogue(pop["catalogue"], src)
    known = _Known(combos)
    nm_at, nm_p = _non_migratable(pop.get("non_migratable", []), known, src)
    campaigns = _campaigns(pop.get("firmware_campaigns", []), known, src)
    n = len(combos)
    for dtype, share in (("GSME", pop["gas_share"]), ("ESME", pop["electricity_share"])):
        if share > 0 and dtype not in combo_weights:
            share_key = "gas_share" if dtype == "GSME" else "electricity_share"
            raise src.fail(("population", "catalogue"), f"expected at least one {dtype} model, since {share_key} > 0")
    if "GPF" not in combo_weights:
        raise src.fail(("population", "catalogue"),
                       "expected at least one GPF model: every premises has a Communications Hub")
    return dict(
        premises=int(pop["premises"]), gas_share=float(pop["gas_share"]),
        electricity_share=float(pop["electricity_share"]),
        same_supplier_share=float(pop.get("same_supplier_share", 0.8)),
        shard_premises=int(pop.get("shard_premises", 250_000)),
        combos=combos, combo_weights=combo_weights,
        nm_classified_at=np.concatenate([nm_at, np.full(n - len(nm_at), NEVER, dtype=np.int64)]),
        nm_success_before=np.concatenate([nm_p, np.zeros(n - len(nm_p))]),
        campaigns=campaigns,
    )


def _check_numbering(pop: dict, inst: dict, span: int, src: _Source) -> None:
    """Premises are numbered so that MPRNs (8 digits + 2 check digits) and MPANs stay unique:
    the initial premises, then room for NEW_PREMISES_STRIDE installs per shard."""
    premises = int(pop["premises"])
    shard = min(int(pop.get("shard_premises", 250_000)), premises)
    shards = -(-premises // shard)
    if premises + shards * NEW_PREMISES_STRIDE > MPRN_SPACE:
        # the most premises p with p + ceil(p / shard) * stride <= space: k shards hold at most
        # min(k * shard, space - k * stride) premises; the best k is near space / (shard + stride)
        k0 = MPRN_SPACE // (shard + NEW_PREMISES_STRIDE)
        most = max(min(k * shard, MPRN_SPACE - k * NEW_PREMISES_STRIDE) for k in range(max(1, k0 - 1), k0 + 2))
        raise src.fail(("population", "premises"), f"expected at most about {max(most, 0):,} premises with "
                       f"shard_premises {shard:,} (10-digit MPRNs must stay unique), got {premises:,}")
    per_shard = float(inst.get("per_day", 0.0)) * (span / 86_400 + 1) * shard / premises
    if per_shard + 10 * per_shard ** 0.5 >= NEW_PREMISES_STRIDE:
        raise src.fail(("installs", "per_day"), f"expected fewer installs: about {per_shard:,.0f} new premises "
                       f"per shard over the period, at most {NEW_PREMISES_STRIDE:,} fit (lower per_day or "
                       "population.shard_premises)")


def _check_shard_size(pop: dict, inst: dict, span: int, src: _Source) -> None:
    """One shard's premises, those at the start and its expected new ones, times the period in years (at
    least one) stay within MAX_SHARD_PREMISES_YEARS: a shard is simulated in one process, so this is what
    bounds a process's memory (national: 675,000 + 91,750 new premises over a year)."""
    premises = int(pop["premises"])
    shard = min(int(pop.get("shard_premises", 250_000)), premises)
    new = float(inst.get("per_day", 0.0)) * (span / 86_400 + 1) * shard / premises  # as in _check_numbering
    years = max(1.0, span / (365.25 * 86_400))
    if (shard + new) * years > MAX_SHARD_PREMISES_YEARS:
        key = ("population", "shard_premises" if "shard_premises" in pop else "premises")
        raise src.fail(key if new < shard else ("installs", "per_day"),
                       f"expected at most {MAX_SHARD_PREMISES_YEARS:,} premises-years in a shard (its premises, "
                       f"with about {new:,.0f} installed, times the period in years, at least 1), got "
                       f"{shard + new:,.0f} x {years:.3g} years; lower population.shard_premises or "
                       "installs.per_day, or shorten the period")


def _catalogue(catalogue: list, src: _Source) -> tuple[list[tuple[str, str, str, str]],
                                                       dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every (device type, manufacturer, model, firmware) combination, and per device type the
    combinations' indices and probabilities (model share times firmware share)."""
    combos: list[tuple[str, str, str, str]] = []
    per_type: dict[str, list[tuple[int, float]]] = {}
    type_shares: dict[str, list[float]] = {}
    seen: set[tuple[str, str, str]] = set()
    for i, entry in enumerate(catalogue):
        path = ("population", "catalogue", i)
        key = (entry["device_type"], entry["manufacturer"], entry["model"])
        if key in seen:
            raise src.fail(path, f"expected each device type/manufacturer/model once; {'/'.join(key)} is repeated")
        seen.add(key)
        fw = entry["firmware"]
        src.check_sum([f["share"] for f in fw], path + ("firmware",), "firmware shares of a model")
        versions = [f["version"] for f in fw]
        if len(set(versions)) != len(versions):
            raise src.fail(path + ("firmware",), "expected each firmware version once per model")
        type_shares.setdefault(entry["device_type"], []).append(entry["share"])
        for f in fw:
            per_type.setdefault(entry["device_type"], []).append((len(combos), entry["share"] * f["share"]))
            combos.append(key + (f["version"],))
    for dtype, shares in type_shares.items():
        src.check_sum(shares, ("population", "catalogue"), f"the shares of the {dtype} models")
    weights = {}
    for dtype, pairs in per_type.items():
        idx = np.array([p[0] for p in pairs], dtype=np.int32)
        prob = np.array([p[1] for p in pairs], dtype=np.float64)
        weights[dtype] = (idx, prob / prob.sum())
    return combos, weights


class _Known:
    """The combinations (a list the scenario keeps), indexed: a look-up per entry stays O(1) when a
    scenario lists thousands of models and entries (a list scan made resolving quadratic)."""

    def __init__(self, combos: list[tuple[str, str, str, str]]):
        self.combos = combos
        self.index = {c: i for i, c in enumerate(combos)}
        self.models = {c[:3] for c in combos}

    def find(self, key: tuple, path: tuple, src: _Source, add: bool = False) -> int:
        """The index of combination ``key``; with ``add``, a new firmware version of a catalogue model is
        appended."""
        if key in self.index:
            return self.index[key]
        if key[:3] not in self.models:
            raise src.fail(path, f"expected a device type/manufacturer/model of the catalogue; {'/'.join(key[:3])} "
                           "is not in population.catalogue")
        if not add:
            raise src.fail(path, f"expected a firmware version of the catalogue; {'/'.join(key)} is not in "
                           "population.catalogue")
        self.index[key] = len(self.combos)
        self.combos.append(key)
        return self.index[key]


def _non_migratable(entries: list, known: _Known, src: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Per combination: when it was classified Non-Migratable (NEVER if not) and the success probability
    of an attempt before that; appends the combinations it names that the catalogue lacks."""
    at = np.full(len(known.combos), NEVER, dtype=np.int64)
    p = np.zeros(len(known.combos))
    for i, nm in enumerate(entries):
        key = (nm["device_type"], nm["manufacturer"], nm["model"], nm["firmware"])
        c = known.find(key, ("population", "non_migratable", i), src, add=True)
        if c >= len(at):
            at = np.concatenate([at, [NEVER]])
            p = np.concatenate([p, [0.0]])
        if at[c] != NEVER:
            raise src.fail(("population", "non_migratable", i), "expected each combination once")
        at[c] = parse_instant(nm["classified_at"])
        p[c] = float(nm.get("success_probability_before", 0.0))
    return at, p


def _campaigns(entries: list, known: _Known, src: _Source) -> list[Campaign]:
    """The firmware campaigns; appends the target firmware versions the catalogue lacks."""
    out = []
    for i, c in enumerate(entries):
        path = ("population", "firmware_campaigns", i)
        base = (c["device_type"], c["manufacturer"], c["model"])
        src_combo = known.find(base + (c["from_firmware"],), path + ("from_firmware",), src)
        if c["to_firmware"] == c["from_firmware"]:
            raise src.fail(path + ("to_firmware",), "expected a firmware version other than from_firmware")
        dst = known.find(base + (c["to_firmware"],), path + ("to_firmware",), src, add=True)
        duration = parse_duration(c["duration"])
        if duration <= 0:
            raise src.fail(path + ("duration",), "expected a positive duration")
        out.append(Campaign(src_combo, dst, parse_instant(c["start"]), duration, float(c["coverage"])))
    return out


# -- migration


def _migration(d: dict, src: _Source, start: int, end: int, combos: list) -> dict[str, Any]:
    """The migration section: capacity and batches, sessions, outcomes, further attempts."""
    mig = d["migration"]
    migration_start = parse_instant(mig["start"])
    if migration_start < start:
        raise src.fail(("migration", "start"), f"expected a date on or after period.start ({d['period']['start']})")
    _check_selections(d, src, max(end - migration_start, 0))
    offsets, timeout = _session(mig["session"], src)
    codes, subs, weights, permanent = _errors(mig["errors"], src)
    skip = mig.get("prevalidation_skip") or {}
    return dict(
        migration_start=migration_start,
        capacity=tuple(int(mig["capacity"][w]) for w in WEEKDAYS),
        batch_times=tuple(sorted(int(t[:2]) * 3600 + int(t[3:]) * 60 for t in mig["batch_start_times"])),
        batch_spread=parse_duration(mig.get("batch_spread", "0s")),
        skip_probability=float(skip.get("probability", 0.0)),
        reselect_after=parse_duration(skip.get("reselect_after", "7d")),
        try_offsets=offsets, session_timeout=timeout,
        confirmation_delay=src.delay(("migration", "session", "confirmation_delay"),
                                     mig["session"].get("confirmation_delay"), Delay("uniform", 10, 120)),
        success_probability=_success(mig["success_probability"], combos, src),
        error_codes=codes, error_sub_codes=subs, error_weights=weights, error_permanent=permanent,
        further_attempt_interval=parse_duration(mig["further_attempt_interval"]),
        further_attempt_jitter=parse_duration(mig.get("further_attempt_jitter", "0s")),
        max_attempts=int(mig["max_attempts"]),
    )


def _check_selections(d: dict, src: _Source, span: int) -> None:
    """A shard's expected selections (attempts and pre-validation skips) stay within MAX_SHARD_SELECTIONS.

    Attempts: at most max_attempts a device, and at most the shard's part of the capacity over the
    migration's days. A device is skipped p / (1 - p) times an attempt on average (p the skip
    probability), and selected at most once a batch.
    """
    pop, mig = d["population"], d["migration"]
    premises = int(pop["premises"])
    shard = min(int(pop.get("shard_premises", 250_000)), premises)
    devices = shard * (1 + float(pop["gas_share"]) + float(pop["electricity_share"]))  # a GPF, maybe an ESME, a GSME
    days = math.ceil(span / 86_400)
    capacity = math.fsum(float(mig["capacity"][w]) for w in WEEKDAYS) / 7 * days * shard / premises
    attempts = min(devices * int(mig["max_attempts"]), capacity)
    p = float((mig.get("prevalidation_skip") or {}).get("probability", 0.0))
    most = devices * days * len(mig["batch_start_times"])
    selections = most if p >= 1 else min(attempts / (1 - p), most)
    if selections > MAX_SHARD_SELECTIONS:
        raise src.fail(("migration",), f"expected at most {MAX_SHARD_SELECTIONS:,} selections of devices in a shard "
                       f"(attempts and pre-validation skips), got about {selections:,.0f} ({shard:,} premises a shard, "
                       f"max_attempts {mig['max_attempts']}, skip probability {p:g}); lower max_attempts, capacity, "
                       "prevalidation_skip.probability or population.shard_premises")


def _session(s: dict, src: _Source) -> tuple[np.ndarray, int]:
    """The offsets of a session's tries from its start, and its time-out (spec/003 §35)."""
    path = ("migration", "session")
    gaps = [parse_duration(g) for g in s["retry_intervals"]]
    for i in range(1, len(gaps)):
        if gaps[i] < gaps[i - 1]:
            raise src.fail(path + ("retry_intervals", i),
                           "expected retry intervals that do not decrease (spec/003 §35: increasing intervals)")
    if any(g <= 0 for g in gaps):
        raise src.fail(path + ("retry_intervals",), "expected positive intervals")
    timeout = parse_duration(s["timeout"])
    if timeout <= 0:
        raise src.fail(path + ("timeout",), "expected a positive duration")
    if len(gaps) + timeout // gaps[-1] > MAX_SESSION_TRIES:
        raise src.fail(path + ("timeout",),
                       f"expected at most {MAX_SESSION_TRIES:,} tries in a session; timeout {s['timeout']} "
                       f"with retries every {s['retry_intervals'][-1]} makes {len(gaps) + timeout // gaps[-1]:,}")
    offsets = [0]
    for g in gaps:
        if offsets[-1] + g >= timeout:
            break
        offsets.append(offsets[-1] + g)
    # The last gap repeats until the time-out: "increasing intervals" then steady.
    while offsets[-1] + gaps[-1] < timeout:
        offsets.append(offsets[-1] + gaps[-1])
    return np.array(offsets, dtype=np.int64), timeout


def _errors(table: list, src: _Source) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The error table: codes, sub-codes, normalised weights, and which errors are permanent."""
    seen = set()
    for i, e in enumerate(table):
        key = (e["code"], e["sub_code"])
        if key in seen:
            raise src.fail(("migration", "errors", i), f"expected each code/sub-code once; {key[0]}/{key[1]} "
                           "is repeated")
        seen.add(key)
    src.check_weights([float(e["weight"]) for e in table], ("migration", "errors"), "the error weights")
    weights = np.array([float(e["weight"]) for e in table])
    return ([e["code"] for e in table], np.array([e["sub_code"] for e in table], dtype=np.int32),
            weights / weights.sum(), np.array([e["kind"] == "permanent" for e in table]))


def _success(sp: dict, combos: list, src: _Source) -> np.ndarray:
    """Per combination, the probability that a session succeeds: by model, else by device type, else the default."""
    by_type = sp.get("by_device_type", {})
    by_model = sp.get("by_model", {})
    models = {f"{c[1]}/{c[2]}" for c in combos}
    for key in by_model:
        if key not in models:
            raise src.fail(("migration", "success_probability", "by_model", key),
                           "expected manufacturer/model of a catalogue model")
    out = np.empty(len(combos))
    for i, c in enumerate(combos):
        out[i] = by_model.get(f"{c[1]}/{c[2]}", by_type.get(c[0], sp["default"]))
    return out


# -- change of supplier, installs, notifications, outages


def _change_of_supplier(cos: dict | None, src: _Source, suppliers: list[Supplier]) -> dict[str, Any]:
    """The change-of-supplier section; none means no switches."""
    cos = cos or {"electricity_rate_per_year": 0.0, "gas_rate_per_year": 0.0,
                  "dual_fuel_correlation": 0.0, "mix": [{"from": "*", "to": "*", "weight": 1}]}
    gaining, leave = _mix(cos["mix"], suppliers, src)
    return dict(cos_electricity_rate=float(cos["electricity_rate_per_year"]),
                cos_gas_rate=float(cos["gas_rate_per_year"]),
                cos_correlation=float(cos["dual_fuel_correlation"]), cos_gaining=gaining, cos_leave_factor=leave)


def _mix(mix: list, suppliers: list[Supplier], src: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Conditional gaining-supplier probabilities P(gaining | losing) from the mix weights.

    A mix row ``from -> to: weight`` says that share of switches goes from the group (or
    supplier) ``from`` to ``to``; within a row, losing and gaining suppliers are taken in
    proportion to their market shares, a supplier never gaining from itself. Returns the
    conditional matrix and each supplier's leave factor (see the end of this function).
    """
    src.check_weights([float(row["weight"]) for row in mix], ("change_of_supplier", "mix"), "the mix weights")
    ids = [s.party_id for s in suppliers]
    share = np.array([s.share for s in suppliers])
    n = len(ids)
    joint = np.zeros((n, n))
    for i, row in enumerate(mix):
        path = ("change_of_supplier", "mix", i)
        f = _members(row["from"], suppliers, path + ("from",), src)
        t = _members(row["to"], suppliers, path + ("to",), src)
        w = share[:, None] * share[None, :] * f[:, None] * t[None, :]
        np.fill_diagonal(w, 0.0)
        if w.sum() > 0:
            joint += row["weight"] * w / w.sum()
    totals = joint.sum(axis=1)
    if n > 1:
        for i in range(n):
            if totals[i] == 0 and share[i] > 0:
                raise src.fail(("change_of_supplier", "mix"), f"expected a row that lets customers leave {ids[i]} "
                               f"(group {suppliers[i].group})")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(totals[:, None] > 0, joint / np.where(totals > 0, totals, 1)[:, None], 0.0)
        # Customers of a supplier leave in proportion to its part of all switches over its
        # market share, so the switches reproduce the mix (the average rate is unchanged).
        leave = np.where(share > 0, (totals / totals.sum()) / np.where(share > 0, share, 1), 0.0)
    return out, leave


def _members(name: str, suppliers: list[Supplier], path: tuple, src: _Source) -> np.ndarray:
    """Which suppliers a mix row's ``from`` or ``to`` names: a party_id, a group, or '*' (all)."""
    ids = [s.party_id for s in suppliers]
    groups = {s.group for s in suppliers}
    if name == "*":
        return np.ones(len(ids), dtype=bool)
    if name in ids:
        return np.array([i == name for i in ids])
    if name in groups:
        return np.array([s.group == name for s in suppliers])
    raise src.fail(path, f"expected a supplier party_id, a supplier group or '*'; {name!r} is neither "
                   f"(suppliers: {', '.join(ids)}; groups: {', '.join(sorted(groups))})")


def _installs(inst: dict, pop: dict, src: _Source) -> dict[str, Any]:
    """The installs section; none means no installs. Fuel shares default to the population's."""
    return dict(
        installs_per_day=float(inst.get("per_day", 0.0)),
        install_gas_share=float(inst.get("gas_share", pop["gas_share"])),
        install_electricity_share=float(inst.get("electricity_share", pop["electricity_share"])),
        gpf_on_network_delay=src.delay(("installs", "gpf_on_network_delay"), inst.get("gpf_on_network_delay"),
                                       Delay("fixed", 0)),
        commissioning_delay=src.delay(("installs", "commissioning_delay"), inst.get("commissioning_delay"),
                                      Delay("fixed", 0)),
    )


def _notifications(notif: dict, src: _Source) -> dict[str, Any]:
    """The notifications section; none means every event is known at once, and once."""
    path = ("notifications",)
    return dict(
        latency=src.delay(path + ("latency",), notif.get("latency"), Delay("fixed", 0)),
        late_probability=float(notif.get("late_probability", 0.0)),
        late_latency=src.delay(path + ("late_latency",), notif.get("late_latency"), Delay("fixed", 86400)),
        duplicate_probability=float(notif.get("duplicate_probability", 0.0)),
        duplicate_delay=src.delay(path + ("duplicate_delay",), notif.get("duplicate_delay"),
                                  Delay("uniform", 60, 3600)),
    )


def _outages(outages: dict, src: _Source) -> dict[str, Any]:
    """The outages section: explicit windows, and the random outages with the reports they may hit."""
    windows = []
    for i, w in enumerate(outages.get("windows", [])):
        ws, we = parse_instant(w["start"]), parse_instant(w["end"])
        if we <= ws:
            raise src.fail(("outages", "windows", i, "end"), "expected a date-time after the window's start")
        windows.append((w.get("report", "*"), ws, we))
    rnd = outages.get("random") or {"per_year": 0, "duration": None, "reports": []}
    return dict(
        outage_windows=windows,
        outage_random_per_year=float(rnd["per_year"]),
        outage_random_duration=src.delay(("outages", "random", "duration"), rnd.get("duration"),
                                         Delay("fixed", 6 * 3600)),
        outage_random_reports=tuple(rnd["reports"]),
    )


# -- realism (docs/scenarios.md "Realism"): optional settings, each absent meaning the plain model


def _realism(d: dict, src: _Source, start: int, end: int, suppliers: list[Supplier],
             combos: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """The settings that shape the history (issue 11): supplier fleets and gas shares, identifiers,
    pace, the conditions behind outcomes, pre-validation and installs."""
    pop, mig = d["population"], d["migration"]
    inst, cos = d.get("installs") or {}, d.get("change_of_supplier")
    out: dict[str, Any] = {}
    if any(s.gas_share is not None for s in suppliers) and cos:
        gas = [replace(s, share=s.share if s.gas_share is None else s.gas_share) for s in suppliers]
        out["gas_shares"] = np.array([s.share for s in gas])
        out["cos_gaining_gas"], out["cos_leave_factor_gas"] = _mix(cos["mix"], gas, src)
    elif any(s.gas_share is not None for s in suppliers):
        out["gas_shares"] = np.array([s.share if s.gas_share is None else s.gas_share for s in suppliers])
    out["fleet"] = _fleet(d["suppliers"], combos, src)
    out["distributor_weights"] = _distributors(pop.get("distributor_shares"), src)
    out["id_prefix"] = _id_prefixes(pop.get("device_id_prefixes"), combos, src)
    out["selection_by_hub"] = mig.get("selection", "random") == "by_hub"
    if "ramp_up" in mig:
        out["ramp_up"] = (parse_duration(mig["ramp_up"]["duration"]), float(mig["ramp_up"]["initial"]))
    calendar = []
    for i, c in enumerate(mig.get("calendar", [])):
        cs = parse_instant(c["start"])
        ce = parse_instant(c["end"]) if "end" in c else cs + 86_400
        if ce <= cs:
            raise src.fail(("migration", "calendar", i, "end"), "expected a date after the window's start")
        calendar.append((cs, ce, float(c["factor"])))
    out["calendar"] = calendar
    out["daily_variation"] = float(mig.get("daily_variation", 0.0))
    out.update(_outcomes(mig, src, int(d["seed"]), combos))
    if "first_try_share" in mig["session"]:
        out["first_try_share"] = float(mig["session"]["first_try_share"])
    out["imminent_skip_probability"] = float((mig.get("prevalidation_skip") or {}).get("imminent_change_probability",
                                                                                       0.0))
    out["cos_notice"] = parse_duration((cos or {}).get("notice", "0s"))
    if "working_hours" in inst:
        hours = [int(x[:2]) * 3600 + int(x[3:]) * 60 for x in (inst["working_hours"]["start"],
                                                              inst["working_hours"]["end"])]
        if hours[1] <= hours[0]:
            raise src.fail(("installs", "working_hours", "end"), "expected a time of day after start")
        out["install_hours"] = (hours[0], hours[1])
    if "weekday_weights" in inst:
        w = np.array([float(inst["weekday_weights"][k]) for k in WEEKDAYS])
        if not w.sum() > 0:
            raise src.fail(("installs", "weekday_weights"), "expected at least one weekday with a positive weight")
        out["install_weekday_weights"] = w / w.mean()
    if "tcos_share" in inst:
        out["tcos_share"] = (float(inst["tcos_share"]["start"]), float(inst["tcos_share"]["end"]))
    return out


def _fleet(entries: list, combos: list[tuple[str, str, str, str]], src: _Source) -> np.ndarray | None:
    """Per supplier and combination, the weight of a meter combination in the supplier's fleet."""
    if not any("fleet" in s for s in entries):
        return None
    manufacturers = {c[1] for c in combos}
    out = np.ones((len(entries), len(combos)))
    for i, s in enumerate(entries):
        for man, w in (s.get("fleet") or {}).items():
            if man not in manufacturers:
                raise src.fail(("suppliers", i, "fleet", man), f"expected a manufacturer of the catalogue; {man} is "
                               "not in population.catalogue")
            for c, combo in enumerate(combos):
                if combo[1] == man and combo[0] != "GPF":  # hubs come from the DCC, not from the supplier
                    out[i, c] = float(w)
    return out


def _distributors(shares: dict | None, src: _Source) -> np.ndarray | None:
    """Per distributor id 10..23 (DISTRIBUTORS), the share of premises in its area."""
    if shares is None:
        return None
    shares = {str(k): float(v) for k, v in shares.items()}  # an unquoted YAML key 10 is the number 10
    src.check_sum(list(shares.values()), ("population", "distributor_shares"), "the distributor shares")
    return np.array([shares.get(str(k), 0.0) for k in DISTRIBUTORS]) / math.fsum(shares.values())


def _id_prefixes(prefixes: dict | None, combos: list[tuple[str, str, str, str]], src: _Source) -> np.ndarray | None:
    """Per combination, its manufacturer's 24-bit EUI-64 prefix; every manufacturer needs its own."""
    if prefixes is None:
        return None
    path = ("population", "device_id_prefixes")
    missing = sorted({c[1] for c in combos} - set(prefixes))
    if missing:
        raise src.fail(path, f"expected a prefix for every manufacturer of the catalogue; {', '.join(missing)} "
                       "has none")
    seen: dict[str, str] = {}
    for man, prefix in prefixes.items():
        if prefix in seen:
            raise src.fail(path + (man,), f"expected each manufacturer's own prefix; {prefix} is also {seen[prefix]}'s")
        seen[prefix] = man
    value = {man: int(prefix.replace("-", ""), 16) for man, prefix in prefixes.items()}
    return np.array([value[c[1]] for c in combos], dtype=np.uint64)


def _outcomes(mig: dict, src: _Source, seed: int, combos: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """migration.outcomes and the errors' causes: which errors each cause gives, by device type, and the
    one error (the signature) that a faulty device, or a Non-Migratable combination, fails with."""
    spec = mig.get("outcomes")
    if spec is None:
        return {}
    table = mig["errors"]
    cause = np.array([CAUSES.index(e.get("cause", "other")) for e in table], dtype=np.int8)
    weights = np.array([float(e["weight"]) for e in table])
    allowed = np.array([[t in e.get("device_types", DEVICE_TYPES) for t in DEVICE_TYPES] for e in table])
    by_cause = {}
    for c in range(len(CAUSES)):
        for slot in range(len(DEVICE_TYPES)):
            pick = (cause == c) & allowed[:, slot]
            if not pick.any():  # no error of that cause for the type: any error of the type
                pick = allowed[:, slot] if allowed[:, slot].any() else np.ones(len(table), dtype=bool)
            idx = np.flatnonzero(pick)
            by_cause[(c, slot)] = (idx.astype(np.int32), weights[idx] / weights[idx].sum())
    rng = streams.for_run(seed, streams.SIGNATURES)
    signature = np.empty(len(combos), dtype=np.int32)
    for i, combo in enumerate(combos):
        idx, p = by_cause[(CAUSE_DEVICE, DEVICE_TYPES.index(combo[0]))]
        signature[i] = idx[rng.choice(len(idx), p=p)]

    def by_type(shares: dict) -> np.ndarray:
        return np.array([float(shares.get(t, 0.0)) for t in DEVICE_TYPES])

    wan, han, faulty = spec["wan"], spec["han"], spec["faulty"]
    outcomes = Outcomes(
        wan_poor_share=float(wan["poor_share"]), wan_poor_failure=float(wan["poor_failure_probability"]),
        wan_failure=float(wan["failure_probability"]), wan_repair=float(wan["repair_probability"]),
        han_share=by_type(han["poor_share"]), han_failure=float(han["failure_probability"]),
        han_repair=float(han["repair_probability"]),
        faulty_share=by_type(faulty["share"]), faulty_failure=float(faulty["failure_probability"]),
        faulty_repair=float(faulty["repair_probability"]),
        faulty_firmware_fix=float(faulty.get("firmware_fix_probability", 0.0)),
    )
    return dict(outcomes=outcomes, error_cause=cause, error_by_cause=by_cause, error_signature=signature)


# What the SMETS1 scenario (sim/smets1_scenario.py) shares with this one: the instant and duration
# formats, the error source, and the notifications and outages sections (one home each).
FORMATS = _FORMATS
Source = _Source
notifications_section = _notifications
outages_section = _outages

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_name(name: str) -> str:
    """Names that become file or folder names: letters, digits, '_', '.', '-' only."""
    if not _SAFE_NAME.match(name) or name in (".", ".."):
        raise UserError(f"expected a name of letters, digits, '_', '.', '-'; got {name!r}")
    return name
