"""SMETS1 scenario loading: YAML (emrr.yamlio) -> JSON Schema (``smets1.schema.json``) -> the reference
data's consistency checks -> a resolved ``Smets1Scenario``.

The schema shares its durations, instants, delays, notifications and outages with the ECoS scenario
(``scenario.schema.json``, referenced by ``$ref``), and this module resolves those sections with the
ECoS resolvers. Every problem is one ``UserError`` naming the file, the line, the YAML path and what
was expected (exit 2). Instants are integer seconds since the epoch (UTC), durations integer seconds.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import referencing

from emrr import yamlio
from emrr.contract import SMETS1, SMETS1_DEVICES, parse_instant
from emrr.sim import scenario as ecos
from emrr.sim.scenario import WEEKDAYS, Delay, parse_duration

DAY = 86_400
MAX_PERIOD = 3 * 366 * DAY  # a SMETS1 scenario covers at most three years (the programme ran 2019 to 2024)
OPTIONAL_DEVICES = ("PPMID", "IHD", "CAD")  # the others follow the Installation: CHF, GPF always; ESME, GSME per meter
DA_GROUP = "DA"  # the Group ID with pre-migration validation (002:L506, TMAD 16.9)
DA_MAX_BEFORE = 7 * DAY  # "up to 7 days in advance" (002:L506)
# A shard's Installations times its attempts at most: what one process holds (about 1 KB an attempt).
MAX_SHARD_ATTEMPTS = 6_000_000
MAX_COUNTER = 999_999  # MCF and Reporting Party Counters: Integer 6 (002 App. A)

# Synthetic reason codes where a scenario gives none (MEHRS is not public, spec/002 A42; FACTS.md:
# codes in the style of "MA110").
DEFAULT_REASONS = {
    "rejection": [("MA101", "MPxN not found for the Responsible Supplier", 3), ("MA110", "Not on the EPCL", 2),
                  ("MA120", "Organisation Certificate Serial Number invalid", 1)],
    "warning": [("MA201", "Migrate On Date outside the Migration Week", 1), ("MA202", "Duplicate MPxN line", 1)],
    "not_used": [("MA301", "MA expired", 3), ("MA302", "Migration could not be commenced", 1)],
    "da": [("DA01", "DA pre-migration validation failed: no WAN", 2), ("DA02", "DA pre-migration keys missing", 1)],
    "mcvf": [("MV01", "MCVF: Installation failed validation", 2), ("MV02", "MCVF: device model mismatch", 1)],
    "s1sp": [("S101", "S1SP: device testing failed", 2), ("S102", "S1SP: no WAN communications", 2),
             ("GT01", "S1SP: gas HAN error", 1)],
    "cof": [("CO01", "COF: commissioning failed", 2), ("CO02", "COF: SMS not commissioned", 1)],
}
REASON_KINDS = tuple(DEFAULT_REASONS)  # the reasons table's sections, in this order


def schema() -> dict[str, Any]:
    """The SMETS1 scenario JSON Schema shipped with the package."""
    return json.loads(resources.files("emrr.sim").joinpath("smets1.schema.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Validator:
    """A validator of the SMETS1 schema that resolves its references to the ECoS scenario schema."""
    ecos_schema = ecos.schema()
    registry = referencing.Registry().with_resource(
        ecos_schema["$id"], referencing.Resource.from_contents(ecos_schema))
    return jsonschema.Draft202012Validator(schema(), registry=registry, format_checker=ecos.FORMATS)


# --------------------------------------------------------------------------- resolved scenario


@dataclass(frozen=True)
class Party:
    """An organisation of the migration (002 2.1.4 (ii)): a row of ``parties``."""

    user_id: str
    party_signifier: str
    role: str  # emrr.contract.PARTY_ROLES
    name: str
    affiliate_group: str | None = None


@dataclass(frozen=True)
class Stage:
    """One step of an attempt that may fail: its probability, latency and file interval (0: none)."""

    failure: float
    latency: Delay
    interval: int
    by_model: tuple[tuple[str, int, float], ...] = ()  # (device type, model index, failure probability)


@dataclass
class Smets1Scenario:
    """A validated SMETS1 scenario with every value resolved to numbers and index tables.

    Parties are indexed in ``parties``; suppliers, DNOs, requesting parties and S1SPs by their
    position in it (``supplier_party`` etc.). Reasons are one table (``reason_codes``,
    ``reason_texts``), each kind a range of it with its probabilities (``reasons[kind]``).
    """

    path: str
    raw: dict[str, Any]
    name: str
    seed: int
    start: int
    end: int
    parties: list[Party]
    supplier_party: np.ndarray  # party index of each supplier
    supplier_affiliate: np.ndarray  # per supplier: affiliate group number, -1 when none
    fuel_weights: dict[str, np.ndarray]  # "electricity"/"gas" -> per supplier, normalised
    distributor_ids: list[str]  # every DNO's distributor ids, in order
    distributor_dno: np.ndarray  # party index of each distributor id's DNO
    distributor_weights: np.ndarray  # normalised
    dcc_party: int
    commissioning_party: int
    # groups (cohorts)
    group_ids: list[str]
    group_smso: list[str]
    group_rp: np.ndarray  # party index of the Requesting Party
    group_s1sp: np.ndarray  # party index of the S1SP
    group_weights: np.ndarray
    group_dcc_share: np.ndarray
    # population
    installations: int
    shard_installations: int
    electricity_share: float
    gas_share: float
    split_share: float
    dormant_share: float
    devices: dict[str, tuple[float, list[tuple[str, str, str]], np.ndarray]]  # type -> (presence, models, p)
    # commitments: per supplier and day of the period (day 0 = the period's first midnight)
    first_day: int  # the midnight on or before start
    commitments: np.ndarray  # int64 [supplier, day]
    # authorisations
    lead: Delay
    migrate_on_share: float
    priority_share: float
    validation_latency: Delay
    rejection: float
    warning: float
    not_used: float
    completion_latency: Delay
    # migration
    mcf_time: int  # seconds after midnight, the day before a Migration Day
    batch_times: np.ndarray  # seconds after midnight
    da_failure: float
    da_before: Delay
    mcvf: Stage
    s1sp: Stage
    cof: Stage
    max_attempts: int
    retry_interval: int
    retry_jitter: int
    reason_codes: list[str]
    reason_texts: list[str]
    reasons: dict[str, tuple[np.ndarray, np.ndarray]]  # kind -> (indices in reason_codes, probabilities)
    # notifications and outages: the ECoS sections' fields
    latency: Delay
    late_probability: float
    late_latency: Delay
    duplicate_probability: float
    duplicate_delay: Delay
    outage_windows: list[tuple[str, int, int]]
    outage_random_per_year: float
    outage_random_duration: Delay
    outage_random_reports: tuple[str, ...]
    regime: str = SMETS1

    @property
    def days(self) -> int:
        """Days of the period, from ``first_day``."""
        return -(-(self.end - self.first_day) // DAY)

    def party_ids(self, role: str) -> list[str]:
        return [p.user_id for p in self.parties if p.role == role]


# --------------------------------------------------------------------------- loading


def load(path: str, seed: int | None = None) -> Smets1Scenario:
    """Read, validate and resolve a SMETS1 scenario file; ``seed`` overrides the file's seed."""
    return loads(yamlio.read_text(path, "a scenario YAML file"), str(path), seed=seed)


def loads(text: str, where: str = "<scenario>", seed: int | None = None) -> Smets1Scenario:
    """Validate and resolve SMETS1 scenario YAML ``text``; ``where`` names it in errors."""
    data, lines = yamlio.loads(text, where)
    return from_data(data, lines, where, seed)


def from_data(data: Any, lines: yamlio.Lines, where: str, seed: int | None = None) -> Smets1Scenario:
    """Validate and resolve a parsed SMETS1 scenario (``lines`` its YAML line index)."""
    if not isinstance(data, dict):
        raise yamlio.error_at(where, lines, (), "expected a mapping at the top level of the scenario")
    ecos.validate_schema(data, where, lines, _validator())
    yamlio.check_finite(data, where, lines)
    if seed is not None:
        data["seed"] = seed
    return _resolve(data, ecos.Source(where, lines))


def _resolve(d: dict, src: ecos.Source) -> Smets1Scenario:
    start, end = parse_instant(d["period"]["start"]), parse_instant(d["period"]["end"])
    if end <= start:
        raise src.fail(("period", "end"), f"expected a date-time after period.start ({d['period']['start']})")
    if end - start > MAX_PERIOD:
        raise src.fail(("period", "end"), f"expected a period of at most {MAX_PERIOD // DAY} days, got "
                       f"{(end - start) / DAY:,.0f}")
    parties = _parties(d, src)
    first_day = start // DAY * DAY
    days = -(-(end - first_day) // DAY)
    reasons = _reasons(d, src)
    population = _population(d, src, parties)
    return Smets1Scenario(
        path=src.where, raw=d, name=d["name"], seed=int(d["seed"]), start=start, end=end, first_day=first_day,
        **parties, **_groups(d, src, parties["parties"]), **population,
        commitments=_commitments(d, src, parties, first_day, days, start),
        **_authorisations(d["authorisations"], src),
        **_migration(d["migration"], src, end - first_day, population["devices"]), **reasons,
        **ecos.notifications_section(d.get("notifications") or {}, src),
        **ecos.outages_section(d.get("outages") or {}, src),
    )


def _parties(d: dict, src: ecos.Source) -> dict[str, Any]:
    """Every organisation once: User IDs and Party Signifiers unique over all of them."""
    from faker import Faker

    faker = Faker("en_GB")
    faker.seed_instance(int(d["seed"]))
    p = d["parties"]
    parties: list[Party] = []
    seen_id: dict[str, tuple] = {}
    seen_sig: dict[str, tuple] = {}

    def add(entry: dict, role: str, path: tuple, affiliate: str | None = None) -> int:
        for key, seen in (("user_id", seen_id), ("party_signifier", seen_sig)):
            value = entry[key]
            if value in seen:
                raise src.fail(path + (key,), f"expected a unique {key.replace('_', ' ')}; {value} is also "
                               f"{yamlio.format_path(seen[value])}")
            seen[value] = path
        name = entry.get("name") or f"{faker.company()} {'Energy' if role == 'supplier' else 'Ltd'}"
        parties.append(Party(entry["user_id"], entry["party_signifier"], role, name, affiliate))
        return len(parties) - 1

    suppliers = [add(s, "supplier", ("parties", "suppliers", i), s.get("affiliate_group"))
                 for i, s in enumerate(p["suppliers"])]
    src.check_sum([float(s["share"]) for s in p["suppliers"]], ("parties", "suppliers"), "the suppliers' shares")
    groups = sorted({s["affiliate_group"] for s in p["suppliers"] if s.get("affiliate_group")})
    affiliate = np.array([groups.index(s["affiliate_group"]) if s.get("affiliate_group") else -1
                          for s in p["suppliers"]], dtype=np.int16)
    distributor_ids, distributor_dno, owner = [], [], {}
    for i, dno in enumerate(p["dnos"]):
        index = add(dno, "dno", ("parties", "dnos", i))
        for j, did in enumerate(dno["distributor_ids"]):
            if did in owner:
                raise src.fail(("parties", "dnos", i, "distributor_ids", j),
                               f"expected each MPAN Distributor ID under one DNO; {did} is also under "
                               f"{yamlio.format_path(owner[did])}")
            owner[did] = ("parties", "dnos", i)
            distributor_ids.append(did)
            distributor_dno.append(index)
    dcc = add(p["dcc"], "dcc", ("parties", "dcc"))
    for i, rp in enumerate(p["requesting_parties"]):
        add(rp, "requesting_party", ("parties", "requesting_parties", i))
    commissioning = add(p["commissioning_party"], "commissioning_party", ("parties", "commissioning_party"))
    for i, sp in enumerate(p["s1sps"]):
        add(sp, "s1sp", ("parties", "s1sps", i))
    return dict(parties=parties, supplier_party=np.array(suppliers, dtype=np.int16), supplier_affiliate=affiliate,
                distributor_ids=distributor_ids, distributor_dno=np.array(distributor_dno, dtype=np.int16),
                dcc_party=dcc, commissioning_party=commissioning)


def _groups(d: dict, src: ecos.Source, parties: list[Party]) -> dict[str, Any]:
    """The cohorts: each Group ID once, its Requesting Party and S1SP among the parties."""
    by_id = {p.user_id: i for i, p in enumerate(parties)}
    pop = d["population"]
    ids, smso, rp, s1sp, weights, dcc = [], [], [], [], [], []
    for i, g in enumerate(d["groups"]):
        path = ("groups", i)
        if g["group_id"] in ids:
            raise src.fail(path + ("group_id",), f"expected each Group ID once; {g['group_id']} is repeated")
        for key, role in (("requesting_party", "requesting_party"), ("s1sp", "s1sp")):
            index = by_id.get(g[key])
            if index is None or parties[index].role != role:
                raise src.fail(path + (key,), f"expected the User ID of one of parties.{role}s; {g[key]} is not")
        ids.append(g["group_id"])
        smso.append(g["smso_id"])
        rp.append(by_id[g["requesting_party"]])
        s1sp.append(by_id[g["s1sp"]])
        weights.append(float(g["share"]))
        dcc.append(float(g.get("dcc_commissioned_share", pop.get("dcc_commissioned_share", 0.0))))
    src.check_sum(weights, ("groups",), "the groups' shares")
    w = np.array(weights)
    return dict(group_ids=ids, group_smso=smso, group_rp=np.array(rp, dtype=np.int16),
                group_s1sp=np.array(s1sp, dtype=np.int16), group_weights=w / w.sum(), group_dcc_share=np.array(dcc))


def _population(d: dict, src: ecos.Source, parties: dict) -> dict[str, Any]:
    """The Installations: meters' suppliers (known suppliers only), distributors (each with a DNO), devices."""
    pop = d["population"]
    signifiers = [parties["parties"][i].party_signifier for i in parties["supplier_party"]]
    shares = np.array([float(s["share"]) for s in d["parties"]["suppliers"]])
    fuel_weights = {}
    for fuel in ("electricity", "gas"):
        given = (pop.get("fuel_suppliers") or {}).get(fuel)
        if given is None:
            w = shares
        else:
            w = np.zeros(len(signifiers))
            for key, weight in given.items():
                if key not in signifiers:
                    raise src.fail(("population", "fuel_suppliers", fuel, key),
                                   f"expected the Party Signifier of a supplier: the {fuel} meters of {key}, an "
                                   f"unknown supplier (suppliers: {', '.join(signifiers)})")
                w[signifiers.index(key)] = float(weight)
        if not w.sum() > 0:
            raise src.fail(("population", "fuel_suppliers", fuel), "expected a positive weight for some supplier")
        fuel_weights[fuel] = w / w.sum()
    ids = parties["distributor_ids"]
    given = pop.get("distributors")
    if given is None:
        dw = np.ones(len(ids))
    else:
        dw = np.zeros(len(ids))
        for key, weight in given.items():
            if key not in ids:
                raise src.fail(("population", "distributors", key),
                               f"expected an MPAN Distributor ID of a DNO in parties.dnos; {key!r} has no DNO "
                               f"(known: {', '.join(ids)})")
            dw[ids.index(key)] = float(weight)
    if not dw.sum() > 0:
        raise src.fail(("population", "distributors"), "expected a positive weight for some distributor")
    devices = {}
    for dtype in SMETS1_DEVICES:
        entry = pop["devices"][dtype]
        path = ("population", "devices", dtype)
        if "presence" in entry and dtype not in OPTIONAL_DEVICES:
            raise src.fail(path + ("presence",), f"expected presence only for {', '.join(OPTIONAL_DEVICES)}: every "
                           "Installation has a CHF and a GPF, and an ESME or GSME per meter")
        src.check_sum([float(m["share"]) for m in entry["models"]], path + ("models",), f"the {dtype} models' shares")
        models = [(m["manufacturer"], m["model"], m["firmware"]) for m in entry["models"]]
        if len(set(models)) != len(models):
            raise src.fail(path + ("models",), "expected each manufacturer/model/firmware once")
        p = np.array([float(m["share"]) for m in entry["models"]])
        devices[dtype] = (float(entry.get("presence", 1.0)), models, p / p.sum())
    shard = min(int(pop.get("shard_installations", 250_000)), int(pop["installations"]))
    attempts = shard * int(d["migration"]["retries"]["max_attempts"])
    if attempts > MAX_SHARD_ATTEMPTS:
        raise src.fail(("population", "shard_installations"), f"expected at most {MAX_SHARD_ATTEMPTS:,} attempts in a "
                       f"shard (installations x max_attempts), got {attempts:,}; lower shard_installations")
    return dict(fuel_weights=fuel_weights, distributor_weights=dw / dw.sum(),
                installations=int(pop["installations"]), shard_installations=shard,
                electricity_share=float(pop["electricity_share"]), gas_share=float(pop["gas_share"]),
                split_share=float(pop.get("split_supplier_share", 0.0)),
                dormant_share=float(pop.get("dormant_share", 0.0)), devices=devices)


def _commitments(d: dict, src: ecos.Source, parties: dict, first_day: int, days: int, start: int) -> np.ndarray:
    """The Demand Commitments per supplier and day, from the weekly plans; a plan's supplier must be known,
    and every supplier with meters must have some commitment (its Installations' Migration Days follow it)."""
    signifiers = [parties["parties"][i].party_signifier for i in parties["supplier_party"]]
    shares = np.array([float(s["share"]) for s in d["parties"]["suppliers"]])
    out = np.zeros((len(signifiers), days), dtype=np.int64)
    day_start = first_day + np.arange(days, dtype=np.int64) * DAY
    weekday = ((day_start // DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    for i, plan in enumerate(d["commitments"]):
        path = ("commitments", i)
        ps, pe = parse_instant(plan["start"]), parse_instant(plan["end"])
        if pe <= ps:
            raise src.fail(path + ("end",), "expected a date after the plan's start")
        weekly = np.array([int(plan["weekly"][w]) for w in WEEKDAYS], dtype=np.int64)
        inside = (day_start >= ps) & (day_start < pe)
        if plan["supplier"] == "*":
            out[:, inside] += np.round(shares[:, None] * weekly[weekday[inside]][None, :]).astype(np.int64)
        elif plan["supplier"] in signifiers:
            out[signifiers.index(plan["supplier"]), inside] += weekly[weekday[inside]]
        else:
            raise src.fail(path + ("supplier",), f"expected the Party Signifier of a supplier or '*'; commitments "
                           f"for {plan['supplier']}, an unknown supplier (suppliers: {', '.join(signifiers)})")
    # Migration Days start two days into the period: the MA and the Migration Common File come first.
    usable = day_start >= start + 2 * DAY
    if not usable.any():
        raise src.fail(("period", "end"), "expected a period of at least three days: Migration Days start on the "
                       "period's third day (the MA, its validation and the Migration Common File come first)")
    for s, signifier in enumerate(signifiers):
        meters = shares[s] > 0 or any(
            float(w) > 0 for fuel in ((d["population"].get("fuel_suppliers") or {}).values())
            for k, w in fuel.items() if k == signifier)
        if meters and not (out[s] * usable).sum() > 0:
            raise src.fail(("commitments",), f"expected commitments for supplier {signifier} on some Migration Day "
                           "from the period's third day: its Installations' Migration Days follow them")
    return out


def _authorisations(a: dict, src: ecos.Source) -> dict[str, Any]:
    path = ("authorisations",)
    return dict(
        lead=src.delay(path + ("lead",), a["lead"], Delay("fixed", 7 * DAY)),
        migrate_on_share=float(a.get("migrate_on_share", 0.0)), priority_share=float(a.get("priority_share", 0.0)),
        validation_latency=src.delay(path + ("validation_latency",), a["validation_latency"], Delay("fixed", 0)),
        rejection=float(a["rejection_probability"]), warning=float(a.get("warning_probability", 0.0)),
        not_used=float(a.get("not_used_probability", 0.0)),
        completion_latency=src.delay(path + ("completion_latency",), a["completion_latency"], Delay("fixed", 0)),
    )


def _time_of_day(text: str) -> int:
    return int(text[:2]) * 3600 + int(text[3:]) * 60


def _stage(s: dict, path: tuple, src: ecos.Source, default_interval: str, span: int,
           devices: dict[str, tuple[float, list[tuple[str, str, str]], np.ndarray]]) -> Stage:
    """A stage of an attempt; its files' counters (one per file interval from the period's first
    midnight) must fit the MRR's 6 digits (002: 'Reporting Party Counter', Integer 6)."""
    interval = parse_duration(s.get("file_interval", default_interval))
    if "file_interval" in s and not 60 <= interval <= DAY:
        raise src.fail(path + ("file_interval",), "expected a file interval from 1m to 1d")
    if interval and span // interval + 1 > MAX_COUNTER:
        raise src.fail(path + ("file_interval",), f"expected at most {MAX_COUNTER:,} files over the period (a "
                       f"6-digit counter), got {span // interval + 1:,}; lengthen the interval")
    by_model = []
    for i, entry in enumerate(s.get("by_model", [])):
        models = devices[entry["device_type"]][1]
        found = [j for j, m in enumerate(models) if m[:2] == (entry["manufacturer"], entry["model"])]
        if not found:
            raise src.fail(path + ("by_model", i), f"expected a {entry['device_type']} manufacturer and model of "
                           f"population.devices; {entry['manufacturer']}/{entry['model']} is not one")
        by_model += [(entry["device_type"], j, float(entry["failure_probability"])) for j in found]
    return Stage(float(s["failure_probability"]), src.delay(path + ("latency",), s["latency"], Delay("fixed", 0)),
                 interval, tuple(by_model))


def _migration(m: dict, src: ecos.Source, span: int, devices: dict) -> dict[str, Any]:
    path = ("migration",)
    da = m.get("da_prevalidation") or {"failure_probability": 0.0, "before": {"distribution": "fixed", "value": "2d"}}
    before = src.delay(path + ("da_prevalidation", "before"), da["before"], Delay("fixed", 2 * DAY))
    if before.distribution != "exponential" and max(before.low, before.high) > DA_MAX_BEFORE:
        raise src.fail(path + ("da_prevalidation", "before"),
                       "expected at most 7d: DA pre-migration validation is up to 7 days in advance (002:L506)")
    retries = m["retries"]
    return dict(
        mcf_time=_time_of_day(m["mcf_time"]),
        batch_times=np.array(sorted(_time_of_day(t) for t in m["batch_times"]), dtype=np.int64),
        da_failure=float(da["failure_probability"]), da_before=before,
        mcvf=_stage(m["mcvf"], path + ("mcvf",), src, "0s", span, devices),
        s1sp=_stage(m["s1sp"], path + ("s1sp",), src, "1h", span, devices),
        cof=_stage(m["cof"], path + ("cof",), src, "1h", span, devices),
        max_attempts=int(retries["max_attempts"]), retry_interval=parse_duration(retries["interval"]),
        retry_jitter=parse_duration(retries.get("jitter", "0s")),
    )


def _reasons(d: dict, src: ecos.Source) -> dict[str, Any]:
    """One table of reason codes; each kind its rows and probabilities (a code means one text)."""
    a, m = d["authorisations"], d["migration"]
    given = {"rejection": a.get("rejection_reasons"), "warning": a.get("warning_reasons"),
             "not_used": a.get("not_used_reasons"), "da": (m.get("da_prevalidation") or {}).get("reasons"),
             "mcvf": m["mcvf"].get("reasons"), "s1sp": m["s1sp"].get("reasons"), "cof": m["cof"].get("reasons")}
    where = {"rejection": ("authorisations", "rejection_reasons"), "warning": ("authorisations", "warning_reasons"),
             "not_used": ("authorisations", "not_used_reasons"),
             "da": ("migration", "da_prevalidation", "reasons")}
    codes: list[str] = []
    texts: list[str] = []
    out = {}
    for kind in REASON_KINDS:
        rows = given[kind]
        entries = ([(r["code"], r["text"], float(r["weight"])) for r in rows] if rows
                   else DEFAULT_REASONS[kind])
        path = where.get(kind, ("migration", kind, "reasons"))
        idx, w = [], []
        for j, (code, text, weight) in enumerate(entries):
            if code in codes:
                if texts[codes.index(code)] != text:
                    raise src.fail(path + (j, "text"), f"expected one text per reason code; {code} has another")
            else:
                codes.append(code)
                texts.append(text)
            idx.append(codes.index(code))
            w.append(weight)
        if not sum(w) > 0:
            raise src.fail(path, "expected a positive weight for some reason")
        out[kind] = (np.array(idx, dtype=np.int16), np.array(w) / sum(w))
    return dict(reason_codes=codes, reason_texts=texts, reasons=out)
