"""Contradictions inside one ruleset that its schema cannot see (docs/impact.md "emrr lint").

The schema checks each value alone and the loader (rules/ruleset.py) refuses what would crash or
misbehave (a constant longer than its field, a cron that never fires in 50 years, a delimiter
equal to the quote character, an unsafe file name pattern): lint never sees those. What is left
loads and runs, but cannot give the files the ruleset describes: a value longer than the field
that must hold it, windows that leave events unreported or report them twice, numbering that
runs out, a condition that can never hold, a summary that cannot match its detail reports.

Each finding has an id from the closed list ``LINTS``, the file and line, the YAML path and a
sentence. Runs are worked out over one calendar year (``YEAR``) with rules/schedule.py, the
engine's own run and window computation.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from emrr import yamlio
from emrr.rules import schedule
from emrr.rules.ruleset import Field, Report, Ruleset, load
from emrr.rules.selection import ASSIGNMENTS

YEAR = 2025  # the year of runs the schedule checks work out (a year without 29 February)
_SAMPLE = dt.datetime(2999, 12, 31, 23, 59, 59)  # every directive at its widest (no padding is shorter)

LINTS: dict[str, str] = {
    "value-too-long": "an enumeration value, a status the selection writes or the report identifier is longer than "
                      "the field that holds it",
    "format-too-long": "the date-time or date format writes more characters than a field of that type allows",
    "title-too-long": "a report title is longer than the header's Report Title allows",
    "window-gap": "consecutive runs' windows leave a gap: events in it are never reported",
    "window-overlap": "consecutive runs' windows overlap: a window report counts events twice (a rolling summary "
                      "declares it with schedule.window.rolling)",
    "rolling-no-overlap": "a window declared rolling does not overlap the next run's: the declaration says what the "
                          "schedule does not do",
    "schedule-never-fires": f"the schedule has no run in {YEAR}",
    "schedule-sparse": "the report runs less often than its window covers: events between windows are never reported",
    "sequence-overflow": "sequence numbers run past sequence.max within a year of runs, or have more digits than the "
                         "header's Report Sequence Number holds",
    "condition-impossible": "a mandatory_when or empty_unless condition asks for a value its field can never take",
    "status-outside-enum": "the selection writes a status (select.status, or a select.derive map's value) that is not "
                           "among its field's enumeration values",
    "summary-unreconcilable": "a summary's counts cannot reconcile with the detail reports they should match, or "
                              "count events the summary does not select",
    "mandatory-emptied": "a mandatory field is emptied by its own rules (empty_unless a condition, select.blank, or "
                         "hidden from some recipients by recipient.hide): a record where it is empty breaks M",
}


@dataclass(frozen=True)
class Finding:
    """One contradiction: its id (``LINTS``), where (file, line, YAML path), and a sentence."""

    id: str
    file: str
    line: int | None
    path: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """Every finding of one ruleset."""

    ruleset: str
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict:
        """{"ruleset", "findings": [{id, file, line, path, message}], "counts": {id: n}} (ids found, in LINTS order)."""
        counts = Counter(f.id for f in self.findings)
        return {"ruleset": self.ruleset, "findings": [asdict(f) for f in self.findings],
                "counts": {k: counts[k] for k in LINTS if counts[k]}}


class _Where:
    """Files of the ruleset with their line index, read once each, to name a finding's line."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lines: dict[str, dict] = {}

    def finding(self, lint: str, file: str, path: tuple, message: str) -> Finding:
        if lint not in LINTS:  # the list is closed: a new check is documented there first
            raise KeyError(f"unknown lint {lint!r}")
        if file not in self.lines:
            self.lines[file] = yamlio.load_file(self.folder / file, "a ruleset YAML file")[1]
        probe = path
        while probe and probe not in self.lines[file]:
            probe = probe[:-1]
        return Finding(lint, _shown(self.folder / file), self.lines[file].get(probe), yamlio.format_path(path),
                       message)


def _shown(path: Path) -> str:
    """A file as a user names it: relative to the working folder when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _layouts(rs: Ruleset) -> Iterator[tuple[str, tuple, tuple[Field, ...], Report | None]]:
    """Every record layout: (file, YAML path of its fields, fields, the report or None for ruleset.yaml's);
    a report's own header (docs/rulesets.md "Regimes other than the EMRR") is its report's."""
    yield "ruleset.yaml", ("header", "fields"), rs.header, None
    if rs.trailer:  # a regime without a trailer record (the MRR) has none
        yield "ruleset.yaml", ("trailer", "fields"), rs.trailer, None
    for report in rs.reports.values():
        if getattr(report, "header", None) is not None:
            yield f"{report.id}.yaml", ("header", "fields"), report.header, report
        yield f"{report.id}.yaml", ("detail", "fields"), report.detail, report


def _value_field(rs: Ruleset, value: str, report: Report | None = None) -> tuple[int, Field] | None:
    """The header field filled with ``value`` (title, report_id, sequence), if any: of ``report``'s own
    header when it has one, else of the ruleset's."""
    header = getattr(report, "header", None) if report is not None else None
    fields = rs.header if header is None else header
    return next(((i, f) for i, f in enumerate(fields) if f.source_kind == "value" and f.source == value), None)


def _status_field(report: Report) -> tuple[int, Field] | None:
    """The field that holds ``select.status``: the one filled from a text column its assignment derives."""
    derived = {c for c, kind in ASSIGNMENTS[report.assignment].derives.items() if kind == "str"}
    found = [(i, f) for i, f in enumerate(report.detail) if f.source_kind == "column" and f.source in derived]
    return found[0] if report.status and len(found) == 1 else None


def _lengths(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    fmt = {"datetime": rs.datetime_format, "date": rs.date_format}
    for file, base, fields, report in _layouts(rs):
        for i, f in enumerate(fields):
            for j, value in enumerate(f.enum or ()):
                if len(value) > f.max_length:
                    yield where.finding("value-too-long", file, (*base, i, "enum", j),
                                        f"{f.name} holds at most {f.max_length} characters but lists {value!r} "
                                        f"({len(value)}): a record holding it fails the field's length")
            if f.type in fmt:
                width = len(_SAMPLE.strftime(fmt[f.type]))
                if width > f.max_length:
                    yield where.finding("format-too-long", file, (*base, i, "max_length"),
                                        f"{f.name} holds at most {f.max_length} characters but formats.{f.type} "
                                        f"{fmt[f.type]!r} writes {width}")
        status = _status_field(report) if report and base[0] == "detail" else None
        if status:
            i, f = status
            for event, value in report.status.items():
                if len(value) > f.max_length and value not in (f.enum or ()):  # else found in the enum already
                    yield where.finding("value-too-long", file, ("select", "status", event),
                                        f"the selection writes {value!r} ({len(value)}) to {f.name}, which holds at "
                                        f"most {f.max_length} characters")
                if f.enum is not None and value not in f.enum:
                    yield where.finding("status-outside-enum", file, ("select", "status", event),
                                        f"the selection writes {value!r} to {f.name}, whose values are "
                                        f"{', '.join(f.enum)}")


def _header_values(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    for report in rs.reports.values():
        title = _value_field(rs, "title", report)
        ident = _value_field(rs, "report_id", report)
        file = f"{report.id}.yaml"
        if title:
            for k, text in enumerate(report.titles_accepted):
                if len(text) > title[1].max_length:
                    path = ("title",) if k == 0 else ("title_also", "titles", k - 1)
                    yield where.finding("title-too-long", file, path,
                                        f"the title has {len(text)} characters; the header's {title[1].name} holds "
                                        f"at most {title[1].max_length}")
        if ident and len(report.id) > ident[1].max_length:
            yield where.finding("value-too-long", file, ("id",),
                                f"{report.id} has {len(report.id)} characters; the header's {ident[1].name} holds "
                                f"at most {ident[1].max_length}")


def _year() -> tuple[int, int]:
    start = dt.datetime(YEAR, 1, 1, tzinfo=dt.timezone.utc)
    return int(start.timestamp()), int(start.replace(year=YEAR + 1).timestamp())


@functools.lru_cache(maxsize=256)
def runs_in_year(cron: str) -> tuple[int, ...]:
    """The run times of ``cron`` in YEAR (croniter is most of lint's time: 1,460 runs of ECOSMIG-002
    take about 0.2 s, so each cron is worked out once)."""
    return tuple(int(t) for t in schedule.run_times(cron, *_year()))


def _next_run(cron: str, after: int) -> int:
    """The first run at or after ``after`` (the loader checked that the cron fires)."""
    from croniter import croniter

    start = dt.datetime.fromtimestamp(after - 1, dt.timezone.utc)
    return int(croniter(cron, start).get_next(dt.datetime).timestamp())


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:g} h"


def _schedules(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    for report in rs.reports.values():
        file = f"{report.id}.yaml"
        times = runs_in_year(report.cron)
        if not times:
            yield where.finding("schedule-never-fires", file, ("schedule", "cron"),
                                f"{report.cron!r} has no run in {YEAR}: the report is never made that year")
            continue
        times = (*times, _next_run(report.cron, _year()[1]))  # and the year's last window against the next one
        windows = [schedule.window(report.window, t) for t in times]
        rolling = bool(report.raw["schedule"]["window"].get("rolling"))  # a rolling summary overlaps by design
        seen: dict[str, list[int]] = {}
        for i in range(len(times) - 1):
            gap = windows[i + 1][0] - (windows[i][1] + 1)
            covered = windows[i][1] - windows[i][0] + 1
            if gap > 0:
                lint = "schedule-sparse" if times[i + 1] - times[i] > covered else "window-gap"
            elif gap < 0 and rolling:
                continue
            elif gap < 0:
                lint = "window-overlap"
            else:
                continue
            seen.setdefault(lint, []).append(i)
        if rolling and not any(windows[i + 1][0] <= windows[i][1] for i in range(len(times) - 1)):
            yield where.finding("rolling-no-overlap", file, ("schedule", "window", "rolling"),
                                f"the window is declared rolling, but no run's window overlaps the next one's (the "
                                f"run at {_iso(times[0])} covers {_iso(windows[0][0])} to {_iso(windows[0][1])})")
        for lint, where_i in seen.items():
            i = where_i[0]
            (s0, e0), (s1, _) = windows[i], windows[i + 1]
            first = (f"the run at {_iso(times[i])} covers {_iso(s0)} to {_iso(e0)} and the next, at "
                     f"{_iso(times[i + 1])}, starts at {_iso(s1)}")
            if lint == "schedule-sparse":
                text = (f"runs are up to {_hours(max(times[j + 1] - times[j] for j in where_i))} apart but a window "
                        f"covers {_hours(e0 - s0 + 1)}: {first}")
            elif lint == "window-gap":
                text = f"{_hours(s1 - e0 - 1)} between windows is never reported: {first}"
            else:
                text = f"{_hours(e0 + 1 - s1)} of windows is covered twice: {first}"
            yield where.finding(lint, file, ("schedule", "window"),
                                f"{text} ({len(where_i)} of the {len(times) - 1} pairs of runs in a row from {YEAR})")


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _sequence(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    field = _value_field(rs, "sequence")
    if field and len(str(rs.sequence_max)) > field[1].max_length:
        yield where.finding("sequence-overflow", "ruleset.yaml", ("sequence", "max"),
                            f"sequence numbers up to {rs.sequence_max} have {len(str(rs.sequence_max))} digits; the "
                            f"header's {field[1].name} holds at most {field[1].max_length}")
    available = rs.sequence_max - rs.sequence_first + 1
    for report in rs.reports.values():
        runs = len(runs_in_year(report.cron))
        if runs > available:
            yield where.finding("sequence-overflow", "ruleset.yaml", ("sequence", "max"),
                                f"{report.id} runs {runs} times in {YEAR} but sequence numbers {rs.sequence_first} "
                                f"to {rs.sequence_max} number only {available} files of a recipient")


def _conditions(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    for file, base, fields, report in _layouts(rs):
        by_name = {f.name: (i, f) for i, f in enumerate(fields)}
        status = _status_field(report) if report and base[0] == "detail" else None
        for i, f in enumerate(fields):
            for key, cond in (("mandatory_when", f.mandatory_when), ("empty_unless", f.empty_unless)):
                if cond is None or cond[0] not in by_name:
                    continue
                j, other = by_name[cond[0]]
                why = _never(other, cond[1], report.status.values() if status and status[0] == j else None)
                if why:
                    yield where.finding("condition-impossible", file, (*base, i, key, "equals"),
                                        f"{f.name}'s {key} asks for {other.name} = {cond[1]!r}, {why}")


def _never(field: Field, value: str, written: object | None) -> str | None:
    """Why ``field`` can never hold ``value``, or None."""
    if field.source_kind == "constant" and value != field.source:
        return f"but it always holds the constant {field.source!r}"
    if field.enum is not None and value not in field.enum:
        return f"which is not among its values ({', '.join(field.enum)})"
    if written is not None and value not in written:
        return f"which the selection never writes (it writes {', '.join(written)})"
    if len(value) > field.max_length:
        return f"which is longer than its {field.max_length} characters"
    if field.type == "integer" and not value.isdigit():
        return "which is not an integer"
    return None


def _summaries(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    details = [r for r in rs.reports.values() if r.kind == "detail"]
    for report in rs.reports.values():
        if report.kind != "summary":
            continue
        file = f"{report.id}.yaml"
        counted = set(report.counts.values())
        for name, event in report.counts.items():
            path = ("select", "counts", name)
            if event not in report.event_types:
                yield where.finding("summary-unreconcilable", file, path,
                                    f"{name} counts {event} events, which the summary does not select: it is always 0")
                continue
            # the detail reports a count reconciles with carry the counted events and no other (a
            # report that also carries installs, as ECOSMIG-003 does, is a history, not a tally)
            matching = [r for r in details if event in r.event_types and set(r.event_types) <= counted]
            if not matching:
                yield where.finding("summary-unreconcilable", file, path,
                                    f"{name} counts {event} events, which no detail report carries on its own")
            elif not any(r.recipient_rule == report.recipient_rule for r in matching):
                yield where.finding("summary-unreconcilable", file, path,
                                    f"{name} counts {event} events by {report.recipient_rule}, but the detail "
                                    f"report(s) carrying them ({', '.join(r.id for r in matching)}) go by "
                                    f"{matching[0].recipient_rule}: each supplier's counts differ from its records")


def _measures(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    """An aggregate's measure that counts (or times) events its report does not select is always 0 or empty."""
    for report in rs.reports.values():
        for name, measure in (getattr(report, "measures", None) or {}).items():
            for key in ("count", "of"):
                for event in measure.get(key, ()):
                    if event not in report.event_types:
                        yield where.finding("summary-unreconcilable", f"{report.id}.yaml",
                                            ("select", "measures", name, key),
                                            f"{name} counts {event} events, which the report does not select: it "
                                            f"is always {'0' if key == 'count' else 'empty'}")


def _derived(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    """A ``select.derive`` map's values must fit the fields that hold the derived column (MRR v2.0's reason
    codes 'either Failure or Warning'): one outside the field's enumeration or longer than it allows."""
    for report in rs.reports.values():
        derive = report.raw["select"].get("derive", {})
        for f in report.detail:
            if f.source_kind != "column" or f.source not in derive:
                continue
            for key, value in derive[f.source]["map"].items():
                path = ("select", "derive", f.source, "map", key)
                if len(value) > f.max_length:
                    yield where.finding("value-too-long", f"{report.id}.yaml", path,
                                        f"the map writes {value!r} ({len(value)}) to {f.name}, which holds at most "
                                        f"{f.max_length} characters")
                if f.enum is not None and value not in f.enum:
                    yield where.finding("status-outside-enum", f"{report.id}.yaml", path,
                                        f"the map writes {value!r} to {f.name}, whose values are {', '.join(f.enum)}")


def _emptied(rs: Ruleset, where: _Where) -> Iterator[Finding]:
    """A mandatory field its own rules may empty: ``empty_unless`` a condition, or a column that
    ``recipient.hide`` empties for some recipients (MRR v2.0's S1MIG-003 Commissioning File DateTime is M
    though an Installation in 'Group File Received' has no Commissioning File yet, 002:L371)."""
    for file, base, fields, report in _layouts(rs):
        hidden = {c for h in (getattr(report, "hide", None) or ()) for c in h.columns} if report else set()
        blanked = {c: b["when_null"] for b in (report.raw["select"].get("blank", ()) if report else ())
                   for c in b["columns"]}
        for i, f in enumerate(fields):
            if not f.mandatory:
                continue
            if f.source_kind == "column" and f.source in blanked:
                yield where.finding("mandatory-emptied", file, (*base, i, "source"),
                                    f"{f.name} is mandatory but select.blank empties {f.source} where "
                                    f"{blanked[f.source]} is empty: those records break its M")
            if f.empty_unless is not None:
                yield where.finding("mandatory-emptied", file, (*base, i, "empty_unless"),
                                    f"{f.name} is mandatory but empty unless {f.empty_unless[0]} = "
                                    f"{f.empty_unless[1]!r}: every other record breaks its M")
            if f.source_kind == "column" and f.source in hidden:
                yield where.finding("mandatory-emptied", file, (*base, i, "source"),
                                    f"{f.name} is mandatory but recipient.hide empties {f.source} for recipients "
                                    "that are not its owner: their records break its M")


CHECKS = (_lengths, _header_values, _schedules, _sequence, _conditions, _summaries, _measures, _derived,
          _emptied)


def lint(rs: Ruleset) -> Verdict:
    """Every contradiction the ruleset holds, in the order of ``CHECKS``."""
    where = _Where(rs.path)
    return Verdict(rs.name, tuple(finding for check in CHECKS for finding in check(rs, where)))


def lint_path(name_or_path: str) -> Verdict:
    """Load a ruleset (by name or path) and lint it; a ruleset the loader refuses is a UserError."""
    return lint(load(name_or_path))


def render(verdict: Verdict) -> str:
    """One line a finding, then the count."""
    lines = [f"{f.file}{f':{f.line}' if f.line else ''}: at {f.path}: {f.id}: {f.message}" for f in verdict.findings]
    n = len(verdict.findings)
    lines.append(f"{verdict.ruleset}: {n} finding{'s' if n != 1 else ''}" if n else f"{verdict.ruleset}: clean")
    return "\n".join(lines) + "\n"
