"""Field checks, column by column: every record of a layout at once, as Polars expressions.

The frame holds ``fid`` (the file's index), ``line`` and the fields as strings ``c0``, ``c1``, ...
in layout order. Each check is one boolean expression over a column; a first pass asks only
whether any record may fail it (all checks in one pass, a cheap probe where there is one), and
the failing records are picked out only for the checks that did fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import polars as pl
from emrr.conformance.findings import Collector
from emrr.conformance.formats import INTEGER, describe, parse_one, valid_expr
from emrr.rules.ruleset import Field, Ruleset


def clip(value: str | None, width: int = 40) -> str:
    if value is None:
        return "None"
    return repr(value if len(value) <= width else value[:width] + "...")


class Mask(NamedTuple):
    """One field check: ``probe`` is cheap and true wherever ``mask`` is (so a column whose
    probe is false nowhere fails nowhere); ``mask`` picks the failing records exactly."""

    check: str
    index: int
    probe: pl.Expr
    mask: pl.Expr
    message: Callable


def field_masks(layout: tuple[Field, ...], rs: Ruleset, out: Collector, skip_first: bool = True,
                typed: frozenset[int] = frozenset()) -> list[Mask]:
    """The enabled field checks of ``layout``. ``typed``: the indices of DateTime and Date fields
    whose seconds since the epoch the frame already holds as ``t{i}`` (null when unreadable), so
    that a date-time is parsed once. Build once per layout and reuse: the expressions are
    immutable."""
    index = {f.name: i for i, f in enumerate(layout)}
    found = []

    def add(check, i, mask, message, probe=None):
        found.append(Mask(check, i, mask if probe is None else probe, mask, message))

    for i, f in enumerate(layout):
        c = pl.col(f"c{i}")
        empty = c == ""
        if f.mandatory and out.wants("field-mandatory"):
            add("field-mandatory", i, empty, lambda v, r: "mandatory field is empty")
        if out.wants("field-length"):  # characters are never more than bytes: bytes first, cheaper
            add("field-length", i, c.str.len_chars() > f.max_length,
                lambda v, r, m=f.max_length: f"{len(v)} characters; at most {m} allowed",
                probe=c.str.len_bytes() > f.max_length)
        if i in typed:
            valid = pl.col(f"t{i}").is_not_null()
        else:
            valid = valid_expr(c, f.type, rs.datetime_format, rs.date_format)
        if valid is not None and out.wants("field-type"):
            what = describe(f.type, rs.datetime_format if f.type == "datetime" else rs.date_format)
            add("field-type", i, ~empty & ~valid, lambda v, r, w=what: f"{clip(v)} is not {w}")
        if f.type == "integer" and f.minimum is not None and out.wants("field-range"):
            add("field-range", i, ~empty & c.str.contains(INTEGER)
                & (c.str.to_integer(base=10, strict=False) < f.minimum).fill_null(False),
                lambda v, r, m=f.minimum: f"{clip(v)} is below the least value, {m}")
        if f.enum and out.wants("field-enum"):
            allowed = ", ".join(f.enum)
            add("field-enum", i, ~empty & ~c.is_in(list(f.enum)),
                lambda v, r, a=allowed: f"{clip(v)} is not one of {a}")
        if f.source_kind == "constant" and not (i == 0 and skip_first) and out.wants("field-constant"):
            add("field-constant", i, c != f.source, lambda v, r, e=f.source: f"{clip(v)}; expected {e!r}")
        if out.wants("field-condition"):
            if f.mandatory_when:
                name, value = f.mandatory_when
                other = pl.col(f"c{index[name]}")
                add("field-condition", i, empty & (other == value),
                    lambda v, r, n=name, x=value: f"empty, but mandatory when {n} is {x!r}")
            if f.empty_unless:
                name, value = f.empty_unless
                j = index[name]
                other = pl.col(f"c{j}")
                add("field-condition", i, ~empty & (other != value),
                    lambda v, r, n=name, x=value, j=j: f"{clip(v)}, but must be empty unless {n} is "
                                                       f"{x!r} (it is {clip(r[f'c{j}'])})")
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
    for hit, (check, i, _, mask, message) in zip(hits, masks):
        if not hit:
            continue
        failing = frame.filter(mask)
        if failing.height == 0:
            continue
        room = out.room(check)
        shown = failing if room is None else failing.head(room)
        name = layout[i].name
        rows = shown.to_dicts()
        out.add_many(check, name, [(rel_of(r["fid"]), r["line"], message(r[f"c{i}"], r)) for r in rows],
                     failing.height)
    return [bool(h) for h in hits[len(masks):]]


def plainly_valid(row: list[str], layout: tuple[Field, ...], rs: Ruleset) -> bool:
    """True when no field check of ``layout`` can fail on ``row`` (a record of the layout's
    width), tested in Python on one record: worth it for a few records (headers, trailers), where
    building a frame costs more than the checks. It only ever says "no finding" when each test
    is at least as strict as ``field_masks``' (a date-time is read by ``formats.parse_one``,
    which also refuses years outside 1970-2999); on False the caller runs ``check_fields``."""
    if len(row) != len(layout):
        return False
    values = {f.name: v for f, v in zip(layout, row)}
    for f, v in zip(layout, row):
        if not v:
            if f.mandatory or (f.mandatory_when and values.get(f.mandatory_when[0]) == f.mandatory_when[1]):
                return False
        elif len(v) > f.max_length or (f.enum and v not in f.enum) \
                or (f.empty_unless and values.get(f.empty_unless[0]) != f.empty_unless[1]):
            return False
        elif f.type == "integer" and not (v.isascii() and v.isdigit()):
            return False
        elif f.type == "integer" and f.minimum is not None and int(v) < f.minimum:
            return False
        elif f.type in ("datetime", "date") and parse_one(v, f.type, rs.datetime_format, rs.date_format) is None:
            return False
        if f.source_kind == "constant" and v != f.source:
            return False
    return True
