"""Field checks, column by column: every record of a layout at once, as Polars expressions.

The frame holds ``fid`` (the file's index), ``line`` and the fields as strings ``c0``, ``c1``, ...
in layout order. Each check is one boolean expression over a column; a first pass asks only
whether any record fails it, and the failing records are picked out only for the checks that
did fail.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from conformance.findings import Collector
from conformance.formats import describe, valid_expr
from rules.ruleset import Field, Ruleset


def clip(value: str | None, width: int = 40) -> str:
    if value is None:
        return "None"
    return repr(value if len(value) <= width else value[:width] + "...")


def _masks(layout: tuple[Field, ...], rs: Ruleset, out: Collector, skip_first: bool) -> list[tuple]:
    """(check, field index, mask expression, message(value, row) -> str) for the enabled checks."""
    index = {f.name: i for i, f in enumerate(layout)}
    found = []
    for i, f in enumerate(layout):
        c = pl.col(f"c{i}")
        empty = c == ""
        if f.mandatory and out.wants("field-mandatory"):
            found.append(("field-mandatory", i, empty, lambda v, r: "mandatory field is empty"))
        if out.wants("field-length"):
            found.append(("field-length", i, c.str.len_chars() > f.max_length,
                          lambda v, r, m=f.max_length: f"{len(v)} characters; at most {m} allowed"))
        valid = valid_expr(c, f.type, rs.datetime_format, rs.date_format)
        if valid is not None and out.wants("field-type"):
            what = describe(f.type, rs.datetime_format if f.type == "datetime" else rs.date_format)
            found.append(("field-type", i, ~empty & ~valid, lambda v, r, w=what: f"{clip(v)} is not {w}"))
        if f.enum and out.wants("field-enum"):
            allowed = ", ".join(f.enum)
            found.append(("field-enum", i, ~empty & ~c.is_in(list(f.enum)),
                          lambda v, r, a=allowed: f"{clip(v)} is not one of {a}"))
        if f.source_kind == "constant" and not (i == 0 and skip_first) and out.wants("field-constant"):
            found.append(("field-constant", i, c != f.source,
                          lambda v, r, e=f.source: f"{clip(v)}; expected {e!r}"))
        if out.wants("field-condition"):
            if f.mandatory_when:
                name, value = f.mandatory_when
                other = pl.col(f"c{index[name]}")
                found.append(("field-condition", i, empty & (other == value),
                              lambda v, r, n=name, x=value: f"empty, but mandatory when {n} is {x!r}"))
            if f.empty_unless:
                name, value = f.empty_unless
                j = index[name]
                other = pl.col(f"c{j}")
                found.append(("field-condition", i, ~empty & (other != value),
                              lambda v, r, n=name, x=value, j=j: f"{clip(v)}, but must be empty unless {n} is "
                                                                 f"{x!r} (it is {clip(r[f'c{j}'])})"))
    return found


def check_fields(frame: pl.DataFrame, layout: tuple[Field, ...], rs: Ruleset, out: Collector,
                 rel_of: Callable[[int], str], skip_first: bool = True) -> None:
    """Every field check of ``layout`` over every record of ``frame``."""
    if frame.height == 0:
        return
    masks = _masks(layout, rs, out, skip_first)
    if not masks:
        return
    hits = frame.select([m.any().alias(str(k)) for k, (_, _, m, _) in enumerate(masks)]).row(0)
    for hit, (check, i, mask, message) in zip(hits, masks):
        if not hit:
            continue
        failing = frame.filter(mask)
        room = out.room(check)
        shown = failing if room is None else failing.head(room)
        name = layout[i].name
        rows = shown.to_dicts()
        out.add_many(check, name, [(rel_of(r["fid"]), r["line"], message(r[f"c{i}"], r)) for r in rows],
                     failing.height)
