"""Field checks: the field rules a ruleset's ``Field`` may carry, described once (``FIELD_RULES``),
and their backends.

A field rule is one object: its name, the catalogue check that reports it and the ``Field``
attributes it reads. Three backends judge records by these rules, and each declares which rules it
implements; a field carrying a rule a backend does not implement makes that backend give way
(``supports``), so a rule added to ``Field`` is never silently skipped:

- Polars masks (``field_masks``, the authority: it implements every rule and says what is wrong):
  every record of a layout at once. The frame holds ``fid`` (the file's index), ``line`` and the
  fields as strings ``c0``, ``c1``, ... in layout order. Each check is one boolean expression over
  a column; a first pass asks only whether any record may fail it (all checks in one pass, a cheap
  probe where there is one), and the failing records are picked out only for the checks that did
  fail;
- plain Python on one record (``plainly_valid``), for headers and trailers: it only ever says
  "nothing to find", else the Polars masks run;
- the byte fast path (``conformance/fastpath.py``, ``fastpath.IMPLEMENTS``) for clean batches of
  detail records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import NamedTuple

import polars as pl

from emrr.conformance.findings import Collector
from emrr.conformance.formats import BOOLEAN, INTEGER, describe, parse_one, valid_expr
from emrr.rules.ruleset import Field, Ruleset


def clip(value: str | None, width: int = 40) -> str:
    if value is None:
        return "None"
    return repr(value if len(value) <= width else value[:width] + "...")


@dataclasses.dataclass(frozen=True)
class FieldRule:
    """One rule a ``Field`` may carry: the catalogue check reporting it, the ``Field`` attributes
    it reads, and whether a field carries it (a non-default attribute)."""

    name: str
    check: str  # a catalogue id
    reads: tuple[str, ...]  # attributes of emrr.rules.ruleset.Field
    carried: Callable[[Field], bool]


FIELD_RULES: dict[str, FieldRule] = {r.name: r for r in (  # in the order the checks are asked
    FieldRule("mandatory", "field-mandatory", ("mandatory",), lambda f: bool(f.mandatory)),
    FieldRule("length", "field-length", ("max_length",), lambda f: True),
    FieldRule("type", "field-type", ("type",), lambda f: f.type != "text"),
    FieldRule("minimum", "field-range", ("minimum",), lambda f: f.minimum is not None),
    FieldRule("enum", "field-enum", ("enum",), lambda f: bool(f.enum)),
    FieldRule("constant", "field-constant", ("source_kind", "source"), lambda f: f.source_kind == "constant"),
    FieldRule("mandatory_when", "field-condition", ("mandatory_when",), lambda f: f.mandatory_when is not None),
    FieldRule("empty_unless", "field-condition", ("empty_unless",), lambda f: f.empty_unless is not None),
)}
# the attributes of Field that are no rule (a test compares these and FIELD_RULES with Field)
NOT_RULES = {"name": "the data element's name: where a finding is"}
_REGISTERED = {a for r in FIELD_RULES.values() for a in r.reads} | set(NOT_RULES)


@cache
def carried(f: Field) -> frozenset[str]:
    """The rules ``f`` carries, and (as ``"?attribute"``) any attribute the registry does not
    know that is not at its default: a backend can implement no such rule."""
    found = {r.name for r in FIELD_RULES.values() if r.carried(f)}
    for attr in dataclasses.fields(f):
        if attr.name not in _REGISTERED and (attr.default is dataclasses.MISSING
                                             or getattr(f, attr.name) != attr.default):
            found.add(f"?{attr.name}")
    return frozenset(found)


def supports(layout: Iterable[Field], implemented: frozenset[str]) -> bool:
    """Whether a backend implementing the rules ``implemented`` can judge every field of ``layout``
    (False: it gives way to the Polars masks)."""
    return all(carried(f) <= implemented for f in layout)


class Mask(NamedTuple):
    """One field check: ``probe`` is cheap and true wherever ``mask`` is (so a column whose
    probe is false nowhere fails nowhere); ``mask`` picks the failing records exactly; ``values``
    gives a failing record's slot values for the check's message (from the value and the row)."""

    check: str
    index: int
    probe: pl.Expr
    mask: pl.Expr
    values: Callable[[str, dict], dict]


class _Column(NamedTuple):
    """What a rule's Polars mask is built from: the field, its index and column, and the layout."""

    f: Field
    i: int
    c: pl.Expr
    empty: pl.Expr
    index: dict[str, int]
    rs: Ruleset
    typed: frozenset[int]
    skip_first: bool


def _mandatory(k: _Column):
    yield k.empty, lambda v, r: {}, None


def _length(k: _Column):  # characters are never more than bytes: bytes first, cheaper
    m = k.f.max_length
    yield k.c.str.len_chars() > m, lambda v, r: {"length": len(v), "max_length": m}, k.c.str.len_bytes() > m


def _type(k: _Column):
    f, rs = k.f, k.rs
    valid = pl.col(f"t{k.i}").is_not_null() if k.i in k.typed \
        else valid_expr(k.c, f.type, rs.datetime_format, rs.date_format)
    what = describe(f.type, rs.datetime_format if f.type == "datetime" else rs.date_format)
    yield ~k.empty & ~valid, lambda v, r: {"value": clip(v), "expected": what}, None


def _minimum(k: _Column):
    m = k.f.minimum
    if k.f.type == "integer":
        yield (~k.empty & k.c.str.contains(INTEGER) & (k.c.str.to_integer(base=10, strict=False) < m).fill_null(False),
               lambda v, r: {"value": clip(v), "minimum": m}, None)


def _enum(k: _Column):
    allowed = ", ".join(k.f.enum)
    yield ~k.empty & ~k.c.is_in(list(k.f.enum)), lambda v, r: {"value": clip(v), "allowed": allowed}, None


def _constant(k: _Column):
    if not (k.i == 0 and k.skip_first):  # a detail record's type: a record-type finding, not this
        e = k.f.source
        yield k.c != e, lambda v, r: {"value": clip(v), "expected": e}, None


def _mandatory_when(k: _Column):
    name, value = k.f.mandatory_when
    other = pl.col(f"c{k.index[name]}")
    yield k.empty & (other == value), lambda v, r: {"other": name, "when": value}, None


def _empty_unless(k: _Column):
    name, value = k.f.empty_unless
    j = k.index[name]
    yield (~k.empty & (pl.col(f"c{j}") != value), lambda v, r: {
        "form": "empty-unless", "value": clip(v), "other": name, "when": value, "other_value": clip(r[f"c{j}"])}, None)


# the Polars mask of each rule of FIELD_RULES (every one: this backend is the authority)
_POLARS = {"mandatory": _mandatory, "length": _length, "type": _type, "minimum": _minimum, "enum": _enum,
           "constant": _constant, "mandatory_when": _mandatory_when, "empty_unless": _empty_unless}
POLARS_IMPLEMENTS = frozenset(_POLARS)


def field_masks(layout: tuple[Field, ...], rs: Ruleset, out: Collector, skip_first: bool = True,
                typed: frozenset[int] = frozenset()) -> list[Mask]:
    """The enabled field checks of ``layout``. ``typed``: the indices of DateTime and Date fields
    whose seconds since the epoch the frame already holds as ``t{i}`` (null when unreadable), so
    that a date-time is parsed once. Build once per layout and reuse: the expressions are
    immutable."""
    index = {f.name: i for i, f in enumerate(layout)}
    found = []
    for i, f in enumerate(layout):
        unknown = carried(f) - POLARS_IMPLEMENTS
        if unknown:  # the authority cannot give way: a rule without a mask is a bug
            raise AssertionError(f"field {f.name!r} carries {sorted(unknown)}, which fields.FIELD_RULES has "
                                 "no Polars mask for")
        c = pl.col(f"c{i}")
        column = _Column(f, i, c, c == "", index, rs, typed, skip_first)
        for rule in FIELD_RULES.values():
            if rule.carried(f) and out.wants(rule.check):
                for mask, values, probe in _POLARS[rule.name](column):
                    found.append(Mask(rule.check, i, mask if probe is None else probe, mask, values))
    return found


def check_fields(frame: pl.DataFrame, layout: tuple[Field, ...], rs: Ruleset, out: Collector,
                 rel_of: Callable[[int], str], skip_first: bool = True, masks: list[Mask] | None = None,
                 also: Sequence[pl.Expr] = ()) -> list[bool]:
    """Every field check of ``layout`` (``masks``, else built here) over every record of
    ``frame``, in one pass over the columns; ``also``: more boolean expressions asked in the same
    pass, whether any record makes them true is returned (in order)."""
    if frame.height == 0:
        return [False] * len(also)
    if masks is None:
        masks = field_masks(layout, rs, out, skip_first)
    if not masks and not also:
        return []
    hits = frame.select([m.probe.any().alias(f"m{k}") for k, m in enumerate(masks)]
                        + [e.any().alias(f"a{k}") for k, e in enumerate(also)]).row(0)
    for hit, (check, i, _, mask, values) in zip(hits, masks):
        if not hit:
            continue
        failing = frame.filter(mask)
        if failing.height == 0:
            continue
        room = out.room(check)
        shown = failing if room is None else failing.head(room)
        name = layout[i].name
        rows = shown.to_dicts()
        out.add_many(check, name, [(rel_of(r["fid"]), r["line"], values(r[f"c{i}"], r)) for r in rows],
                     failing.height)
    return [bool(h) for h in hits[len(masks):]]


# ---------------------------------------------------------------------- plain Python, one record


def _plain_type(f: Field, v: str, values: dict[str, str], rs: Ruleset) -> bool:
    if f.type == "integer":
        return v.isascii() and v.isdigit()
    if f.type == "boolean":
        return v in BOOLEAN
    if f.type in ("datetime", "date"):  # parse_one also refuses years outside formats.YEARS: stricter
        return parse_one(v, f.type, rs.datetime_format, rs.date_format) is not None
    return False  # a type this backend does not know: give way


def _plain_minimum(f: Field, v: str, values: dict[str, str], rs: Ruleset) -> bool:
    return f.type != "integer" or not (v.isascii() and v.isdigit()) or int(v) >= f.minimum


# each rule as a test of one non-empty value (an empty one fails only mandatory and mandatory_when)
_PLAIN: dict[str, Callable[[Field, str, dict[str, str], Ruleset], bool]] = {
    "mandatory": lambda f, v, values, rs: True,
    "length": lambda f, v, values, rs: len(v) <= f.max_length,
    "type": _plain_type,
    "minimum": _plain_minimum,
    "enum": lambda f, v, values, rs: v in f.enum,
    "constant": lambda f, v, values, rs: v == f.source,
    "mandatory_when": lambda f, v, values, rs: True,
    "empty_unless": lambda f, v, values, rs: values.get(f.empty_unless[0]) == f.empty_unless[1],
}
PLAIN_IMPLEMENTS = frozenset(_PLAIN)


def plainly_valid(row: list[str], layout: tuple[Field, ...], rs: Ruleset) -> bool:
    """True when no field check of ``layout`` can fail on ``row`` (a record of the layout's
    width), tested in Python on one record: worth it for a few records (headers, trailers), where
    building a frame costs more than the checks. It only ever says "no finding" when each test
    is at least as strict as ``field_masks``' (a constant is compared in the first field too);
    on False the caller runs ``check_fields``."""
    if len(row) != len(layout) or not supports(layout, PLAIN_IMPLEMENTS):
        return False
    values = {f.name: v for f, v in zip(layout, row)}
    for f, v in zip(layout, row):
        rules = [FIELD_RULES[name] for name in carried(f)]
        if not v:
            if f.mandatory or (f.mandatory_when and values.get(f.mandatory_when[0]) == f.mandatory_when[1]) \
                    or (f.source_kind == "constant" and f.source != ""):
                return False
        elif not all(_PLAIN[r.name](f, v, values, rs) for r in rules):
            return False
    return True
