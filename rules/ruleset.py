"""Rulesets: folders of YAML (safe_load) validated by ``rules/ruleset.schema.json``.

A ruleset is named (a folder under ``rules/``, e.g. ``emrr-revised``) or given as a path. The
report engine and the conformance suite both read it, so a layout is declared once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from emrr import yamlio
from emrr.contract import ECOS, REGIMES, SMETS1, YEARS
from emrr.errors import UserError
from emrr.rules.selection import ASSIGNMENTS, SUPPLY_RULES

DEFAULT_RULESET = "emrr-revised"
# the ruleset a command takes for a log or scenario of each regime when none is named
DEFAULT_RULESETS = {ECOS: DEFAULT_RULESET, SMETS1: "smets1-mrr-v3.0"}
RULES_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_STRFTIME = re.compile(r"^(?:%[YmdHMS]|[^%])+$")
_DURATION = re.compile(r"^(-?)([0-9]+)(s|m|h|d|mo)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def schema() -> dict[str, Any]:
    return json.loads(resources.files("emrr.rules").joinpath("ruleset.schema.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Field:
    name: str
    source_kind: str  # constant | column | value | own (a header's value from the recipient's own row)
    source: str
    type: str
    max_length: int
    mandatory: bool
    enum: tuple[str, ...] | None = None
    mandatory_when: tuple[str, str] | None = None
    empty_unless: tuple[str, str] | None = None
    minimum: int | None = None  # an Integer's least value


@dataclass(frozen=True)
class Window:
    anchor: str  # hour | day | month
    end_offset: int  # seconds (window end, inclusive = anchor(run) + end_offset)
    length_seconds: int  # 0 when length is in months
    length_months: int


@dataclass(frozen=True)
class Hide:
    """listed_parties: in the file of a recipient that is neither the row's ``owner`` value nor the
    value of one of its ``except_from`` columns, ``columns`` are empty (MRR 002:L264)."""

    owner: str
    except_from: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Reconcile:
    """``reconcile``: the records of a report meeting ``where`` (field, value) have a partner in
    report ``other``'s files of the same recipient, matched by ``match`` ((field here, field
    there) names); e.g. S1MIG-006's successes and S1MIG-001 (spec/004 §4.4, 004:L115)."""

    other: str
    clause: str
    where: tuple[str, str] | None
    match: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Condition:
    """One condition of ``select.where``: ``column`` ``op`` ``value`` (op: equals, in, not_in,
    is_null, at_least)."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class Report:
    id: str
    title: str
    clause: str
    kind: str
    recipient_rule: str
    cron: str
    window: Window
    assignment: str
    event_types: tuple[str, ...]
    status: dict[str, str]
    group_by: tuple[str, ...]
    counts: dict[str, str]
    order_by: tuple[str, ...]
    detail: tuple[Field, ...]
    raw: dict[str, Any]
    titles_accepted: tuple[str, ...] = ()  # the title and the other spellings the spec gives
    warnings: tuple[str, ...] = ()  # what loads but is worth saying (Ruleset.warnings)
    header: tuple[Field, ...] | None = None  # the report's own header record, else the ruleset's
    recipient_columns: tuple[str, ...] = ()  # listed_parties: the row columns whose values receive the row
    recipient_role: str | None = None  # all_parties: the role in the log's parties table
    hide: tuple[Hide, ...] = ()  # listed_parties: what a recipient does not see of another's row
    where: tuple[Condition, ...] = ()  # conditions every selected row meets
    explode: tuple[str, tuple[str, ...]] | None = None  # (into, from columns)
    key: str | None = None  # latest_state: the column that identifies what a snapshot follows
    period: tuple[str, str] | None = None  # aggregate: (time column, day | week)
    measures: dict[str, dict] = field(default_factory=dict)  # aggregate: derived integer columns
    calendar: dict | None = None  # aggregate: a reference table's rows (commitments)
    rank_by: str | None = None  # peer_ranking: the measure that orders the others
    blank: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (when_null, columns): emptied where when_null is empty
    rolling: bool = False  # schedule.window.rolling: successive windows overlap by design (emrr lint)
    derive: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # name -> (from column, value map)
    identity: tuple[str, ...] = ()  # the detail columns that identify what a record is about (the checker)
    reconcile: tuple[Reconcile, ...] = ()  # records that must have a partner in another report (the checker)

    def header_fields(self, ruleset: "Ruleset") -> tuple[Field, ...]:
        """The header record of this report's files: its own, else the ruleset's."""
        return self.header if self.header is not None else ruleset.header

    @property
    def columns(self) -> list[str]:
        """The event-log or assignment-derived columns the detail record reads (a ``select.derive``
        column is replaced by the column it maps)."""
        return list(dict.fromkeys(self.derive[f.source][0] if f.source in self.derive else f.source
                                  for f in self.detail if f.source_kind == "column"))


@dataclass(frozen=True)
class Ruleset:
    digest: str  # SHA-256 over the folder's YAML files: a resumed run must use the same rules
    name: str
    path: Path
    title: str
    raw: dict[str, Any]
    reports: dict[str, Report]
    header: tuple[Field, ...]
    trailer: tuple[Field, ...]
    datetime_format: str
    date_format: str
    file_pattern: str
    sequence_padding: int
    sequence_first: int
    sequence_max: int
    produce_empty: bool
    summary_outages: str
    delimiter: str
    quote_char: str
    line_terminator: str
    encoding: str  # csv.encoding: how the files' bytes are text
    folder: str  # file_name.folder: the folder of a recipient's files, e.g. "{recipient}"
    regime: str = "ecos"  # the event log it reads (emrr.contract.REGIMES)
    recipient_pattern: str = r"^[A-Z0-9]{6}$"  # recipients.pattern: what every recipient identifier matches
    recipient_party: str = "self"  # recipients.party: self (the identifier is the Party Signifier) | parties
    # what loads but is worth saying (an enum value longer than its field allows): the report summary prints them
    warnings: tuple[str, ...] = ()

    def file_name(self, report_id: str, recipient: str, sequence: int, created, party: str | None = None) -> str:
        seq = str(sequence).zfill(self.sequence_padding) if self.sequence_padding else str(sequence)
        return self.file_pattern.format(report_id=report_id, recipient=recipient, sequence=seq, created=created,
                                        party=recipient if party is None else party)

    def file_path(self, report_id: str, recipient: str, sequence: int, created, party: str | None = None) -> str:
        """A file's path in a delivery: ``folder``/``file_name``, the folder formatted like the name;
        ``party`` is the recipient's SEC Party Signifier (the recipient itself when None)."""
        name = self.file_name(report_id, recipient, sequence, created, party)
        folder = self.folder.format(recipient=recipient, report_id=report_id,
                                    party=recipient if party is None else party)
        for part in [*(folder.split("/") if folder else ()), name]:
            problem = name_problem(part)
            if problem:  # the load checked the pattern with sample values; this holds for every real one
                raise UserError(f"file_name gives the name {part!r}, {problem}", file=str(self.path / "ruleset.yaml"),
                                path="file_name.pattern")
        return f"{folder}/{name}" if folder else name


# The names a file name pattern may use, each once and as a plain field (no attribute or index:
# "{created.__class__}" would put Python's internals in a name, campaign L9).
NAME_FIELDS = ("report_id", "recipient", "sequence", "created")
OPTIONAL_NAME_FIELDS = ("party",)  # the recipient's SEC Party Signifier (MRR App. B, 002:L741)
MAX_NAME_BYTES = 255  # a file name's limit on the file systems reports go to (ext4, XFS, tmpfs)
_NOT_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not one file or folder name inside the output folder (campaign H1: a '/'
    or '..' wrote report files anywhere), or None."""
    if name in ("", ".", ".."):
        return "which is empty, '.' or '..'; expected a file name"
    bad = _NOT_IN_NAME.search(name)
    if bad and bad.group() in "/\\\0":
        return "which holds '/', '\\' or NUL; expected one file name that stays in the output folder"
    if bad:
        return "which holds a control character (a line break, a tab); expected a file name"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"which is longer than {MAX_NAME_BYTES} bytes; expected a file name"
    return None


# Instants a file name's {created:...} is tried with at load: the first and last second the
# checker accepts (emrr.contract.YEARS), and one with every directive's value different
SAMPLE_TIMES = (dt.datetime(YEARS[0], 1, 1, tzinfo=dt.timezone.utc),
                dt.datetime(YEARS[1], 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc),
                dt.datetime(2023, 7, 4, 6, 5, 9, tzinfo=dt.timezone.utc))
# Recipient identifiers a pattern is tried with at load, with their Party Signifiers: SEC Party IDs
# (the EMRR's recipients) and User IDs (the MRR's, 002:L741); the ruleset's recipients.pattern
# must admit those of one kind, and refuse every name that is not one file name
SAMPLE_RECIPIENTS = {"self": (("PXX001", "PXX001"), ("ZZZZZZ", "ZZZZZZ")),
                     "parties": (("70-B3-D5-1F-30-00-A0-01", "PXX999"), ("FF-FF-FF-FF-FF-FF-FF-FE", "ZZZZZZ"))}
_NOT_RECIPIENTS = ("", ".", "..", "a/b", "../x", "x\\y", "a\x00b", "a\nb", "x" * 300)

def _check_csv(csv: dict, path: Path, lines: dict) -> None:
    """A dialect whose files can be read back (campaign L1: a delimiter equal to the quote
    character, or a line break, wrote files no reader can split)."""
    if csv["delimiter"] == csv["quote_char"]:
        raise yamlio.error_at(str(path), lines, ("csv", "delimiter"), f"expected a delimiter other than the quote "
                              f"character, got {csv['delimiter']!r} for both")
    for key in ("delimiter", "quote_char"):
        if csv[key] in ("\r", "\n"):
            raise yamlio.error_at(str(path), lines, ("csv", key), f"expected a character other than a line break, "
                                  f"got {csv[key]!r}")


def _check_file_name(data: dict, report_ids: tuple[str, ...], path: Path, lines: dict) -> None:
    """file_name.pattern holds each of NAME_FIELDS once as a real field ("{{sequence}}" is the
    literal text "{sequence}": every file of a report and recipient then had one name and
    overwrote the one before, campaign H2), plain (no attribute, index, conversion; a spec only on
    created, of the date-time directives), and gives, formatted with sample values, names that
    stay in the output folder (campaign H1: "../" or a "/" inside the strftime wrote outside it).

    With the sequence number in the name, unchanged, two files of one report and recipient never
    share a name whatever the created format (seconds or not); the engine still refuses any path
    written twice in a run (rules/engine.py Output.write), which is the guarantee."""
    pattern = data["file_name"]["pattern"]
    where = ("file_name", "pattern")

    def refuse(message: str) -> UserError:
        return yamlio.error_at(str(path), lines, where, message)

    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise refuse(f"expected a format pattern: {exc}")
    seen: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in NAME_FIELDS + OPTIONAL_NAME_FIELDS:
            raise refuse(f"expected fields among {', '.join(NAME_FIELDS + OPTIONAL_NAME_FIELDS)}, without attribute or "
                         f"index, got {{{name}}}")
        if name in seen:
            raise refuse(f"expected each field once, got {{{name}}} twice")
        seen.append(name)
        if conversion is not None or "{" in spec or "}" in spec:
            raise refuse(f"expected a plain {{{name}}} field, got a conversion or nested field")
        if name == "created" and not _STRFTIME.match(spec):
            raise refuse(f"expected {{created:FORMAT}} with FORMAT of %Y %m %d %H %M %S and literal characters, "
                         f"got {spec!r}")
        if name != "created" and spec:
            raise refuse(f"expected {{{name}}} without a format spec (one could cut the value and give two files "
                         f"one name), got {{{name}:{spec}}}")
    missing = [name for name in NAME_FIELDS if name not in seen]
    if missing:
        raise refuse(f"expected the fields {', '.join('{' + n + '}' for n in missing)} in the pattern (escaped "
                     "'{{sequence}}' is literal text, not a field)")
    first, most = int(data["sequence"]["first"]), int(data["sequence"]["max"])
    padding = int(data["file_name"]["sequence_padding"])
    samples = recipient_samples(data, path, lines)
    for created in SAMPLE_TIMES:
        names: dict[str, tuple] = {}
        for report_id in report_ids:
            for recipient, party in samples:
                for sequence in sorted({first, first + 1, most}):
                    seq = str(sequence).zfill(padding) if padding else str(sequence)
                    name = pattern.format(report_id=report_id, recipient=recipient, sequence=seq, created=created,
                                          party=party)
                    problem = name_problem(name)
                    if problem:
                        raise refuse(f"expected a file name, got {name!r} (for {report_id}, {recipient}, "
                                     f"{sequence}, {created:%Y-%m-%d %H:%M:%S}), {problem}")
                    other = names.setdefault(name, (report_id, recipient, sequence))
                    if other != (report_id, recipient, sequence):
                        raise refuse(f"expected a name for each file, got {name!r} for both {other} and "
                                     f"{(report_id, recipient, sequence)}")


def recipient_samples(data: dict, path: Path, lines: dict) -> list[tuple[str, str]]:
    """The sample (recipient, party) pairs a ruleset's names are tried with: those of its kind of
    identifier that ``recipients.pattern`` admits. The pattern must admit them and refuse anything
    that is not one plain name (it becomes a folder and a file name: campaign H1)."""
    spec = data.get("recipients") or {"pattern": Ruleset.recipient_pattern, "party": "self"}
    where = ("recipients", "pattern")
    try:
        pattern = re.compile(spec["pattern"])
    except re.error as exc:
        raise yamlio.error_at(str(path), lines, where, f"expected a regular expression: {exc}")
    for bad in _NOT_RECIPIENTS:
        if pattern.fullmatch(bad):
            raise yamlio.error_at(str(path), lines, where, f"expected a pattern that admits only plain names, but it "
                                  f"admits {bad[:20]!r}")
    samples = [(r, p) for r, p in SAMPLE_RECIPIENTS[spec["party"]] if pattern.fullmatch(r)]
    if not samples:
        kind = "SEC Party IDs such as PXX001" if spec["party"] == "self" else "User IDs such as 70-B3-D5-1F-30-00-A0-01"
        raise yamlio.error_at(str(path), lines, where, f"expected a pattern that admits {kind} (recipients.party "
                              f"{spec['party']}), got {spec['pattern']!r}")
    return samples


def parse_duration(text: str) -> tuple[int, int]:
    """'-1s' -> (-1, 0); '1mo' -> (0, 1): (seconds, months)."""
    sign, number, unit = _DURATION.match(text).groups()
    value = int(number) * (-1 if sign else 1)
    return (0, value) if unit == "mo" else (value * _UNIT[unit], 0)


def resolve_path(name_or_path: str | None) -> Path:
    """A ruleset name (a folder under rules/) or a path to a ruleset folder."""
    name_or_path = name_or_path or DEFAULT_RULESET
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    if _NAME.match(name_or_path) and (RULES_DIR / name_or_path).is_dir():
        return RULES_DIR / name_or_path
    known = sorted(p.name for p in RULES_DIR.iterdir() if (p / "ruleset.yaml").is_file())
    raise UserError(f"unknown ruleset {name_or_path!r}; expected one of {', '.join(known)} "
                    "or a path to a ruleset folder")


def _read_yaml(path: Path) -> tuple[Any, dict]:
    """A ruleset file through the one hardened loader (emrr.yamlio), refused unless a mapping."""
    data, lines = yamlio.load_file(path, "a ruleset YAML file")
    if not isinstance(data, dict):
        raise UserError("expected a mapping at the top level", file=str(path), path="")
    return data, lines


@functools.lru_cache(maxsize=None)
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema(), "$ref": f"#/$defs/{definition}"})


def _validate(data: Any, definition: str, path: Path, lines: dict) -> None:
    error = yamlio.schema_error(_validator(definition), data)
    if error is not None:
        raise yamlio.error_at(str(path), lines, tuple(error.absolute_path),
                              f"expected a valid {definition} rule: {error.message}")
    yamlio.check_finite(data, str(path), lines)


def _fields(items: list[dict]) -> tuple[Field, ...]:
    out = []
    for f in items:
        (kind, source), = f["source"].items()
        when = f.get("mandatory_when")
        unless = f.get("empty_unless")
        out.append(Field(
            name=f["name"], source_kind=kind, source=str(source), type=f["type"],
            max_length=int(f["max_length"]), mandatory=bool(f["mandatory"]),
            enum=tuple(f["enum"]) if "enum" in f else None,
            mandatory_when=(when["field"], when["equals"]) if when else None,
            empty_unless=(unless["field"], unless["equals"]) if unless else None,
            minimum=int(f["minimum"]) if "minimum" in f else None,
        ))
    return tuple(out)


def _check_selection(assignment: str, rule: str, path: Path) -> None:
    """The assignment is a registered selection strategy, and it honours the recipient rule."""
    if assignment not in ASSIGNMENTS:
        raise UserError(f"expected one of {', '.join(ASSIGNMENTS)}, got {assignment!r}", file=str(path),
                        path="select.assignment")
    supported = ASSIGNMENTS[assignment].recipient_rules
    if rule not in supported:
        raise UserError(f"expected a recipient rule that assignment {assignment} supports "
                        f"({', '.join(sorted(supported))}), got {rule!r}", file=str(path), path="recipient.rule")


def _check_cron(cron: str, path: Path, lines: dict) -> None:
    """A standard five-field cron expression (minutes at the finest) that fires at least once:
    croniter also takes a sixth field of seconds (campaign L1: "* * * * * *" made 7.9 million runs
    of a demo period) and expressions that never fire ("0 0 31 2 *", campaign M3: they crashed
    report and check when asked for a run)."""
    from croniter import CroniterBadDateError, croniter

    where = ("schedule", "cron")
    if len(cron.split()) != 5:
        raise yamlio.error_at(str(path), lines, where, f"expected a cron expression of five fields (minute hour "
                              f"day-of-month month day-of-week), got {cron!r}")
    try:
        croniter(cron, SAMPLE_TIMES[0]).get_next(dt.datetime)
    except CroniterBadDateError:
        raise yamlio.error_at(str(path), lines, where, f"expected a cron expression that fires, got {cron!r}, "
                              "which matches no date (croniter found none in 50 years)")
    except (ValueError, KeyError) as exc:
        raise yamlio.error_at(str(path), lines, where, f"expected a cron expression: {exc}")


def _check_lengths(fields: list[dict], path: Path, lines: dict, where: tuple) -> list[str]:
    """A constant longer than its field's max_length is an error (every record would break the
    field's length); an enum value longer than it is a warning (campaign L1, R03): the value may
    never occur, and the consultation draft's ECoS Status of 7 characters lists 'Installed' on
    purpose (rules/emrr-consultation-draft/ruleset.yaml), so that a draft can be checked."""
    warnings = []
    for i, f in enumerate(fields):
        limit = int(f["max_length"])
        constant = f["source"].get("constant")
        if constant is not None and len(constant) > limit:
            raise yamlio.error_at(str(path), lines, (*where, i, "source", "constant"),
                                  f"expected a constant of at most max_length {limit} characters, got {constant!r} "
                                  f"({len(constant)})")
        for j, value in enumerate(f.get("enum", ())):
            if len(value) > limit:
                line = yamlio.error_at(str(path), lines, (*where, i, "enum", j), "").file
                warnings.append(f"{line}: at {yamlio.format_path((*where, i, 'enum', j))}: enum value {value!r} is "
                                f"longer than max_length {limit}; a record holding it fails the checker's field-length")
    return warnings


def _check_regime(raw: dict, regime: str, path: Path, lines: dict) -> None:
    """Every event type a report names is one of its regime's event log (emrr.contract.REGIMES),
    and its recipient rule reads what that log holds."""
    known = REGIMES[regime].event_types
    sel = raw["select"]
    named = [(("select", "event_types", i), t) for i, t in enumerate(sel.get("event_types", ()))]
    named += [(("select", "counts", k), t) for k, t in sel.get("counts", {}).items()]
    for name, m in sel.get("measures", {}).items():
        for key in ("count", "of"):
            named += [(("select", "measures", name, key, i), t) for i, t in enumerate(m.get(key, ()))]
    for where, event_type in named:
        if event_type not in known:
            raise yamlio.error_at(str(path), lines, where, f"expected an event type of the {regime} event log "
                                  f"({', '.join(known)}), got {event_type!r}")
    rule = raw["recipient"]["rule"]
    if rule in SUPPLY_RULES and regime != ECOS:
        raise yamlio.error_at(str(path), lines, ("recipient", "rule"), f"expected a recipient rule of the {regime} "
                              f"regime (listed_parties, all_parties), got {rule!r}, which reads ECoS premises")
    needs = {"listed_parties": "columns", "all_parties": "role"}.get(rule)
    if needs and needs not in raw["recipient"]:
        raise yamlio.error_at(str(path), lines, ("recipient",), f"expected recipient.{needs} for rule {rule}")


def parse_conditions(items: list[dict]) -> tuple[Condition, ...]:
    out = []
    for item in items:
        (op, value), = ((k, v) for k, v in item.items() if k != "column")
        out.append(Condition(item["column"], op, tuple(value) if isinstance(value, list) else value))
    return tuple(out)


def _report(path: Path, report_id: str, regime: str = ECOS) -> Report:
    """One report file of a ruleset, validated; every error names the file and YAML path."""
    raw, rlines = _read_yaml(path)
    _validate(raw, "report", path, rlines)
    _check_regime(raw, regime, path, rlines)
    if raw["id"] != report_id:
        raise UserError(f"expected id {report_id} (the file's name), got {raw['id']}", file=str(path), path="id")
    names = [f["name"] for f in raw["detail"]["fields"]]
    for i, f in enumerate(raw["detail"]["fields"]):
        for key in ("mandatory_when", "empty_unless"):
            if key in f and f[key]["field"] not in names:
                raise UserError(f"expected the name of a field of this record, got {f[key]['field']!r}",
                                file=str(path), path=f"detail.fields[{i}].{key}.field")
    sched = raw["schedule"]
    _check_cron(sched["cron"], path, rlines)
    end_s, end_m = parse_duration(sched["window"]["end_offset"])
    len_s, len_m = parse_duration(sched["window"]["length"])
    if end_m:
        raise UserError("expected an end_offset in s, m, h or d", file=str(path), path="schedule.window.end_offset")
    if len_s <= 0 and len_m <= 0:
        raise UserError("expected a positive length", file=str(path), path="schedule.window.length")
    sel = raw["select"]
    _check_selection(sel["assignment"], raw["recipient"]["rule"], path)
    for key in ASSIGNMENTS[sel["assignment"]].requires:
        if key not in sel:
            raise yamlio.error_at(str(path), rlines, ("select",), f"expected select.{key}: assignment "
                                  f"{sel['assignment']} needs it")
    header_warnings: list[str] = []
    if "header" in raw:
        header_warnings = _check_lengths(raw["header"]["fields"], path, rlines, ("header", "fields"))
    recipient = raw["recipient"]
    explode = sel.get("explode")
    return Report(
        id=raw["id"], title=raw["title"], clause=raw["clause"], kind=raw["kind"],
        titles_accepted=(raw["title"], *raw.get("title_also", {}).get("titles", ())),
        recipient_rule=raw["recipient"]["rule"], cron=sched["cron"],
        window=Window(sched["window"]["anchor"], end_s, len_s, len_m),
        assignment=sel["assignment"], event_types=tuple(sel.get("event_types", ())),
        status=dict(sel.get("status", {})), group_by=tuple(sel.get("group_by", ())),
        counts=dict(sel.get("counts", {})), order_by=tuple(sel.get("order_by", ())),
        detail=_fields(raw["detail"]["fields"]), raw=raw,
        warnings=tuple(_check_lengths(raw["detail"]["fields"], path, rlines, ("detail", "fields")) + header_warnings),
        header=_fields(raw["header"]["fields"]) if "header" in raw else None,
        recipient_columns=tuple(recipient.get("columns", ())), recipient_role=recipient.get("role"),
        hide=tuple(Hide(h["owner"], tuple(h.get("except_from", ())), tuple(h["columns"]))
                   for h in recipient.get("hide", ())),
        where=parse_conditions(sel.get("where", ())),
        explode=(explode["into"], tuple(explode["from"])) if explode else None,
        key=sel.get("key"), period=(sel["period"]["column"], sel["period"]["unit"]) if "period" in sel else None,
        measures=dict(sel.get("measures", {})), calendar=sel.get("calendar"), rank_by=sel.get("rank_by"),
        blank=tuple((b["when_null"], tuple(b["columns"])) for b in sel.get("blank", ())),
        rolling=bool(sched["window"].get("rolling", False)),
        derive={name: (d["from"], dict(d["map"])) for name, d in sel.get("derive", {}).items()},
        identity=tuple(raw.get("identity", {}).get("columns", ())),
        reconcile=tuple(Reconcile(r["with"], r["clause"], (r["where"]["field"], r["where"]["equals"])
                                  if "where" in r else None, tuple((m["field"], m["other"]) for m in r["match"]))
                        for r in raw.get("reconcile", ())),
    )


def _check_cross_references(reports: dict[str, Report], folder: Path) -> None:
    """A report's identity names columns of its layout, and a reconciliation a report of the ruleset
    and fields of both layouts: a checker cannot make a check of names that do not exist."""
    for report in reports.values():
        path = folder / f"{report.id}.yaml"
        columns = {f.source for f in report.detail if f.source_kind == "column"}
        for c in report.identity:
            if c not in columns:
                raise UserError(f"expected a column of the detail layout, got {c!r}", file=str(path),
                                path="identity.columns")
        names = {f.name for f in report.detail}
        for i, r in enumerate(report.reconcile):
            other = reports.get(r.other)
            if other is None or other.id == report.id:
                raise UserError(f"expected another report of the ruleset, got {r.other!r}", file=str(path),
                                path=f"reconcile[{i}].with")
            theirs = {f.name for f in other.detail}
            for j, (here, there) in enumerate(r.match):
                if here not in names or there not in theirs:
                    raise UserError(f"expected a field of {report.id} and one of {r.other}, got {here!r} and "
                                    f"{there!r}", file=str(path), path=f"reconcile[{i}].match[{j}]")
            if r.where and r.where[0] not in names:
                raise UserError(f"expected a field of {report.id}, got {r.where[0]!r}", file=str(path),
                                path=f"reconcile[{i}].where.field")


def load(name_or_path: str | None = None) -> Ruleset:
    """Load and validate a ruleset; every error names the file, line and YAML path."""
    folder = resolve_path(name_or_path)
    main_path = folder / "ruleset.yaml"
    data, lines = _read_yaml(main_path)
    _validate(data, "ruleset", main_path, lines)
    regime = data.get("regime", ECOS)
    reports = {report_id: _report(folder / f"{report_id}.yaml", report_id, regime) for report_id in data["reports"]}
    _check_cross_references(reports, folder)
    for key in ("datetime", "date"):
        fmt = data["formats"][key]
        if not _STRFTIME.match(fmt):
            raise UserError(f"expected a date-time pattern of %Y %m %d %H %M %S and literal characters, got {fmt!r}",
                            file=str(main_path), path=f"formats.{key}")
    _check_csv(data["csv"], main_path, lines)
    _check_file_name(data, tuple(reports), main_path, lines)
    warnings = _check_lengths(data["header"]["fields"], main_path, lines, ("header", "fields"))
    if "trailer" in data:
        warnings += _check_lengths(data["trailer"]["fields"], main_path, lines, ("trailer", "fields"))
    for report in reports.values():
        warnings += report.warnings
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    csv = data["csv"]
    return Ruleset(
        digest=digest.hexdigest(),
        name=data["name"], path=folder, title=data["title"], raw=data, reports=reports,
        header=_fields(data["header"]["fields"]),
        trailer=_fields(data["trailer"]["fields"]) if "trailer" in data else (),
        datetime_format=data["formats"]["datetime"], date_format=data["formats"]["date"],
        file_pattern=data["file_name"]["pattern"], sequence_padding=int(data["file_name"]["sequence_padding"]),
        sequence_first=int(data["sequence"]["first"]), sequence_max=int(data["sequence"]["max"]),
        produce_empty=bool(data["empty_reports"]["produce"]), summary_outages=data["outages"]["summary_reports"],
        delimiter=csv["delimiter"], quote_char=csv["quote_char"], line_terminator=csv["line_terminator"],
        encoding=csv["encoding"], folder=data["file_name"]["folder"], warnings=tuple(warnings),
        regime=regime, **({"recipient_pattern": data["recipients"]["pattern"],
                           "recipient_party": data["recipients"]["party"]} if "recipients" in data else {}),
    )
