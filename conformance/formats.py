"""Field types as vectorised tests: a strftime pattern becomes an anchored regex (the shape) and a
Polars ``strptime`` (a real date), both applied to a whole column at once."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache, lru_cache

import polars as pl

from emrr import contract

_DIRECTIVES = {
    "Y": "[0-9]{4}", "m": "(?:0[1-9]|1[0-2])", "d": "(?:0[1-9]|[12][0-9]|3[01])",
    "H": "(?:[01][0-9]|2[0-3])", "M": "[0-5][0-9]", "S": "[0-5][0-9]", "y": "[0-9]{2}",
    "j": "[0-9]{3}", "f": "[0-9]{6}", "%": "%",
}
INTEGER = "^[0-9]+$"
_META = set("\\.+*?()|[]{}^$#&-~")  # escaped alike by Python's re and Rust's regex
UTC = dt.UTC


@cache
def strftime_regex(fmt: str, anchored: bool = True) -> str:
    """'%Y%m%dT%H%M%S' -> '^[0-9]{4}(?:0[1-9]|1[0-2])...T...$' (ASCII digits only)."""
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            directive = fmt[i + 1]
            if directive not in _DIRECTIVES:
                raise ValueError(f"unsupported strftime directive %{directive} in {fmt!r}")
            out.append(_DIRECTIVES[directive])
            i += 2
        else:
            out.append("\\" + ch if ch in _META else ch)
            i += 1
    body = "".join(out)
    return f"^{body}$" if anchored else body


def whole_number(text: str | None) -> int | None:
    """'42' -> 42; None for anything but 1 to 18 ASCII digits (no sign, no huge numbers)."""
    if text and len(text) <= 18 and text.isascii() and text.isdigit():
        return int(text)
    return None


BOOLEAN = ("1", "0")  # "Boolean (1 for true; 0 for false)" (SMETS1 MRR App. A, 002:L248)


def describe(field_type: str, fmt: str) -> str:
    if field_type == "integer":
        return "an Integer (digits only)"
    if field_type == "boolean":
        return "a Boolean (1 for true, 0 for false)"
    shape = fmt.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD").replace("%H", "hh") \
        .replace("%M", "mm").replace("%S", "ss")
    kind, real = ("DateTime", "date-time") if field_type == "datetime" else ("Date", "date")
    return f"a {kind} ({shape}, a real {real})"


def valid_expr(col: pl.Expr, field_type: str, datetime_format: str, date_format: str) -> pl.Expr | None:
    """An expression true where a (non-empty) value has the type; None for free text."""
    if field_type == "integer":
        return col.str.contains(INTEGER)
    if field_type == "boolean":
        return col.is_in(BOOLEAN)
    if field_type in ("datetime", "date"):
        return epoch_expr(col, field_type, datetime_format, date_format).is_not_null()
    return None


def epoch_expr(col: pl.Expr, field_type: str, datetime_format: str, date_format: str) -> pl.Expr:
    """Seconds since the epoch (UTC) of a DateTime or Date value; null when it is not one."""
    fmt = datetime_format if field_type == "datetime" else date_format
    shaped = col.str.contains(strftime_regex(fmt))
    if field_type == "datetime":
        parsed = col.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.epoch("s")
    else:
        parsed = col.str.strptime(pl.Date, fmt, strict=False).cast(pl.Int64) * 86400
    return pl.when(shaped).then(parsed).otherwise(None)


# The years of the date-times the checker does calendar arithmetic on (a header's, a file name's,
# and those the fast path reads on bytes); one outside them is unreadable there (the Polars reading
# of a detail field, ``epoch_expr``, has no such bound and decides alone).
YEARS = contract.YEARS
SANE = (int(dt.datetime(YEARS[0], 1, 1, tzinfo=UTC).timestamp()),
        int(dt.datetime(YEARS[1] + 1, 1, 1, tzinfo=UTC).timestamp()))  # YEARS as [start, end) seconds


@lru_cache(maxsize=65536)
def parse_one(value: str | None, field_type: str, datetime_format: str, date_format: str) -> int | None:
    """The same reading as ``epoch_expr`` for one value (a header or a file name), within YEARS.
    Its twin in Python, not ``epoch_expr`` on a one-value frame: that costs about 190 us a value
    against 10 us, and the regional scenario's check reads 5,833 distinct values (about 1.1 s).
    tests/test_conformance_fastpath.py compares the two on generated values."""
    if value is None:
        return None
    fmt = datetime_format if field_type == "datetime" else date_format
    if not re.fullmatch(strftime_regex(fmt, anchored=False), value):
        return None
    try:
        seconds = int(dt.datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None
    return seconds if SANE[0] <= seconds < SANE[1] else None


def show(seconds: int | None, datetime_format: str) -> str:
    if seconds is None:
        return "?"
    return dt.datetime.fromtimestamp(int(seconds), UTC).strftime(datetime_format)


def duration(seconds: int) -> str:
    """86400 -> '1 day, 0:00:00'."""
    return str(dt.timedelta(seconds=int(seconds)))
