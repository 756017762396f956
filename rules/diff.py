"""What a change of ruleset does to a supplier: every difference between two rulesets, each
classified by its impact on a supplier whose parser and pipeline were built on the old one
(DESIGN.md "Change impact"; docs/impact.md "emrr diff").

The classes, from the consumer's side:

- ``breaking``: a parser built on OLD rejects or misreads NEW files;
- ``behaviour``: files parse as before, but what they hold, how many there are, when they come
  or to whom changes;
- ``compatible``: OLD parsers read every NEW file as before;
- ``cosmetic``: nothing a file carries changes.

What is compared is driven by one table of comparison rules keyed by the schema's own paths
(``RULESET_RULES``, ``REPORT_RULES``, ``LAYOUT_RULES``, ``FIELD_RULES``); a key the table does
not know is an error, and tests/test_diff.py checks that every property the schema allows has a
rule, so a setting added to the schema is compared or a test fails.

Comments are compared too, as cosmetic changes at the YAML path each speaks of; a reports list
in another order is cosmetic.

Fields are matched by position (files have no column header row: position is meaning), aligned
with difflib over each field's (type, source) signature so that one field inserted is one
"field added at position N", not N renames.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emrr import yamlio
from emrr.rules.lint import YEAR, runs_in_year  # the year of runs lint works out
from emrr.rules.ruleset import Ruleset, load
from emrr.yamlio import format_path

BREAKING = "breaking"
BEHAVIOUR = "behaviour"
COMPATIBLE = "compatible"
COSMETIC = "cosmetic"
IMPACTS = (BREAKING, BEHAVIOUR, COMPATIBLE, COSMETIC)  # worst first: the order changes are listed in


@dataclass(frozen=True)
class Change:
    """One difference as a supplier meets it: where (report id or None for ruleset.yaml, and the
    YAML path in that file), the old and new values, its impact, why, and both clauses."""

    report: str | None
    path: str
    old: Any
    new: Any
    impact: str
    reason: str
    clause_old: str | None
    clause_new: str | None


@dataclass(frozen=True)
class Verdict:
    """Every change from OLD to NEW, worst first."""

    old: str
    new: str
    changes: tuple[Change, ...]

    @property
    def breaking(self) -> bool:
        return any(c.impact == BREAKING for c in self.changes)

    def counts(self) -> dict[str, int]:
        return {impact: sum(c.impact == impact for c in self.changes) for impact in IMPACTS}

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of issue 9: {"old", "new", "changes": [{report, path, old, new, impact, reason,
        clause_old, clause_new}]}."""
        return {"old": self.old, "new": self.new, "changes": [asdict(c) for c in self.changes]}


# ----------------------------------------------------------------------------- classifiers
# A classifier gets the old and new value at one path (None where the key is absent) and the
# context; it returns (impact, reason) or a list of Changes (for lists of fields).

Outcome = tuple[str, str]


def fixed(impact: str, reason: str) -> Callable[[Any, Any], Outcome]:
    """A rule whose impact does not depend on the values."""
    return lambda old, new: (impact, reason)


def _longer(old: Any, new: Any) -> Outcome:
    if old is not None and new is not None and new < old:
        return COMPATIBLE, "a shorter maximum length: every new value fits the old parser's field"
    return BREAKING, "a longer maximum length: a parser built on the old length rejects or cuts the longer values"


def _mandatory(old: Any, new: Any) -> Outcome:
    if new:
        return COMPATIBLE, "a field that becomes mandatory is always filled: old parsers read it as before"
    return BREAKING, "a mandatory field becomes optional: a parser that expects a value meets empty fields"


def _enum(old: Any, new: Any) -> Outcome:
    if new is None:
        return BREAKING, "the field's list of values is dropped: it may hold values an old parser does not know"
    added = [v for v in new if v not in (old or new)]
    if old is not None and added:
        return BREAKING, f"new value(s) {', '.join(map(repr, added))}: an old parser does not know them"
    if old is None:
        return COMPATIBLE, "the field is restricted to a list of values: old parsers read each of them"
    if list(old) != list(new) and set(old) == set(new):
        return COSMETIC, "the same values in another order: nothing a file carries changes"
    return COMPATIBLE, "value(s) withdrawn: old parsers read every value that remains"


def _minimum(old: Any, new: Any) -> Outcome:
    if new is not None and (old is None or new > old):
        return COMPATIBLE, "a higher least value: every new value is one an old parser accepts"
    return BREAKING, "a lower or no least value: a field may hold values an old parser rejects"


def _condition(old: Any, new: Any) -> Outcome:
    if old is None:
        return COMPATIBLE, "a new condition restricts when the field is filled: old parsers read every new record"
    return BREAKING, "a condition removed or changed: records may hold what an old parser's condition rejects"


def _source(old: Any, new: Any) -> Outcome:
    if "constant" in (old or {}) or "constant" in (new or {}):
        return BREAKING, "another constant: a parser that checks the old value rejects the new one"
    return BEHAVIOUR, "the field is filled from another source: files parse as before, with other content"


def _sequence_max(old: Any, new: Any) -> Outcome:
    if new > old:
        return BREAKING, "sequence numbers go higher before they wrap: numbers an old parser never expects"
    return BEHAVIOUR, "sequence numbers wrap sooner"


def _status(old: Any, new: Any) -> Outcome:
    known = set((old or {}).values())
    unknown = sorted(v for v in (new or {}).values() if v not in known)
    if unknown:
        return BREAKING, f"status value(s) {', '.join(map(repr, unknown))}: an old parser does not know them"
    return BEHAVIOUR, "records take other status values, each one an old parser knows"


def _cron(old: Any, new: Any) -> Outcome:
    before, after = len(runs_in_year(old)), len(runs_in_year(new))
    return BEHAVIOUR, (f"the report runs {after} times in {YEAR} instead of {before} ({after / 365:.2g} a day instead "
                       f"of {before / 365:.2g}): more or fewer files, at other times, each parsing as before")


CLAUSE = fixed(COSMETIC, "a clause changed: nothing a file carries changes")
DIALECT = fixed(BREAKING, "the CSV dialect changed: a parser built on the old one misreads every file")
FILE_NAME = fixed(BREAKING, "file names change: a pipeline that matches the old names misses or rejects the files")
FORMAT = fixed(BREAKING, "date-times are written in another format: an old parser rejects them")
WINDOW = fixed(BEHAVIOUR, "each run reports another span of time: records move to other runs' files, each "
                         "parsing as before")
SELECTION = fixed(BEHAVIOUR, "the files select other records: each parses as before, with other content")
RECIPIENTS = fixed(BEHAVIOUR, "records go to other recipients: files parse as before")

RULESET_RULES: dict[tuple, Any] = {
    ("name",): fixed(COSMETIC, "the ruleset's name: nothing a file carries"),
    ("title",): fixed(COSMETIC, "the ruleset's title: nothing a file carries"),
    ("source",): fixed(COSMETIC, "the document the ruleset follows: nothing a file carries"),
    ("regime",): fixed(BEHAVIOUR, "the ruleset reads another regime's event log: its files report on other events"),
    ("recipients", "clause"): CLAUSE,
    ("recipients", "pattern"): fixed(BREAKING, "recipients are identified otherwise: the header's recipient, the "
                                               "folders and the file names change"),
    ("recipients", "party"): fixed(BREAKING, "the SEC Party Signifier in names and folders comes from elsewhere: "
                                             "a pipeline that matches the old names misses the files"),
    ("reports",): "reports",  # compared report by report (added, removed, each one's rules)
    ("csv", "clause"): CLAUSE,
    ("csv", "delimiter"): DIALECT,
    ("csv", "quote_char"): DIALECT,
    ("csv", "quoting"): DIALECT,
    ("csv", "line_terminator"): DIALECT,
    ("csv", "encoding"): DIALECT,
    ("csv", "column_header_row"): DIALECT,
    ("formats", "clause"): CLAUSE,
    ("formats", "datetime"): FORMAT,
    ("formats", "date"): FORMAT,
    ("formats", "timezone"): FORMAT,
    ("file_name", "clause"): CLAUSE,
    ("file_name", "pattern"): FILE_NAME,
    ("file_name", "sequence_padding"): FILE_NAME,
    ("file_name", "folder"): FILE_NAME,
    ("sequence", "clause"): CLAUSE,
    ("sequence", "scope"): fixed(BEHAVIOUR, "files are numbered over another scope: each parses as before"),
    ("sequence", "first"): fixed(BEHAVIOUR, "sequence numbers start elsewhere: each file parses as before"),
    ("sequence", "max"): _sequence_max,
    ("empty_reports", "clause"): CLAUSE,
    ("empty_reports", "produce"): fixed(BEHAVIOUR, "empty reports are made or not: more or fewer files"),
    ("empty_reports", "consumes_sequence_number"): fixed(
        BEHAVIOUR, "an unmade empty report takes a sequence number or not: gaps in the numbering change"),
    ("outages", "clause"): CLAUSE,
    ("outages", "detail_reports"): fixed(BEHAVIOUR, "records of a run missed in an outage come another way"),
    ("outages", "summary_reports"): fixed(BEHAVIOUR, "summaries of a run missed in an outage come another way"),
    ("header",): "layout",
    ("trailer",): "layout",
}

REPORT_RULES: dict[tuple, Any] = {
    ("id",): fixed(COSMETIC, "the report's identifier, the same as its file's name"),  # never differs: matched on it
    ("title",): fixed(BREAKING, "the header's Report Title changes: a parser that checks the title rejects the files"),
    ("title_also",): fixed(COSMETIC, "other spellings the checker accepts: the engine writes the title"),
    ("clause",): CLAUSE,
    ("kind",): fixed(BEHAVIOUR, "the report becomes a summary or a detail report: records hold other things"),
    ("recipient", "rule"): fixed(BEHAVIOUR, "records go to another supplier: files parse as before"),
    ("recipient", "clause"): CLAUSE,
    ("recipient", "columns"): RECIPIENTS,
    ("recipient", "role"): RECIPIENTS,
    ("recipient", "hide"): fixed(BEHAVIOUR, "recipients see other fields of each other's records emptied: files "
                                            "parse as before, with other content"),
    ("schedule", "clause"): CLAUSE,
    ("schedule", "cron"): _cron,
    ("schedule", "window", "anchor"): WINDOW,
    ("schedule", "window", "end_offset"): WINDOW,
    ("schedule", "window", "length"): WINDOW,
    ("schedule", "window", "rolling"): fixed(COSMETIC, "the windows' overlap is declared intended or not: the runs "
                                                       "and windows are the same"),
    ("select", "clause"): CLAUSE,
    ("select", "event_types"): SELECTION,
    ("select", "assignment"): SELECTION,
    ("select", "status"): _status,
    ("select", "group_by"): SELECTION,
    ("select", "counts"): SELECTION,
    ("select", "order_by"): fixed(BEHAVIOUR, "records come in another order: each parses as before"),
    ("select", "where"): SELECTION,
    ("select", "explode"): SELECTION,
    ("select", "key"): fixed(BEHAVIOUR, "a snapshot follows another key: files parse as before, with other rows"),
    ("select", "period"): SELECTION,
    ("select", "measures"): fixed(BEHAVIOUR, "the figures are counted otherwise: files parse as before, with other "
                                             "values"),
    ("select", "calendar"): SELECTION,
    ("select", "derive"): fixed(BEHAVIOUR, "text columns are mapped from other values: files parse as before, with "
                                           "other content (emrr lint holds the mapped values to their fields)"),
    ("select", "blank"): fixed(BEHAVIOUR, "other fields are emptied where another is empty: files parse as before, "
                                          "with other content (emrr lint flags a mandatory one)"),
    ("select", "rank_by"): fixed(BEHAVIOUR, "other suppliers are ranked otherwise: files parse as before, with the "
                                            "rows in another order"),
    ("identity",): fixed(BEHAVIOUR, "records are identified by other fields: files parse as before; the checker "
                                    "tells repeats and matches records otherwise"),
    ("reconcile",): fixed(BEHAVIOUR, "another reconciliation between reports is declared: files parse as before; "
                                     "the checker pairs other records"),
    ("header",): "layout",  # the report's own header; compare() sets the ruleset's where only one side has one
    ("detail",): "layout",
}

LAYOUT_RULES: dict[tuple, Any] = {
    ("clause",): CLAUSE,
    ("fields",): "fields",
}

FIELD_RULES: dict[tuple, Any] = {
    ("name",): fixed(COSMETIC, "a field renamed in place: files have no column header row, so nothing changes"),
    ("source",): _source,
    ("type",): fixed(BREAKING, "another type: an old parser rejects or misreads the values"),
    ("max_length",): _longer,
    ("mandatory",): _mandatory,
    ("enum",): _enum,
    ("minimum",): _minimum,
    ("mandatory_when",): _condition,
    ("empty_unless",): _condition,
    ("clause",): CLAUSE,
}


# ----------------------------------------------------------------------------- comparison


class _Side:
    """One YAML file's data on one side, with its clauses found by path."""

    def __init__(self, data: dict | None, fallback: str | None):
        self.data = data
        self.fallback = fallback  # the clause when no enclosing mapping has one

    def get(self, path: tuple) -> Any:
        node = self.data
        for key in path:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                return None
        return node

    def clause(self, path: tuple) -> str | None:
        """The clause of the nearest mapping at or around ``path`` that has one."""
        if self.data is None:
            return None
        for cut in range(len(path), -1, -1):
            node = self.get(path[:cut])
            if isinstance(node, dict) and isinstance(node.get("clause"), str):
                return node["clause"]
        return self.fallback


class _Compare:
    """Walks two YAML documents by a rule table and collects the Changes."""

    def __init__(self, report: str | None, old: _Side, new: _Side):
        self.report = report
        self.subject = ""  # the field being compared, named in each reason
        self.old = old
        self.new = new
        self.changes: list[Change] = []

    def add(self, old_path: tuple, new_path: tuple, old: Any, new: Any, outcome: Outcome) -> None:
        impact, reason = outcome
        reason = f"{self.subject}: {reason}" if self.subject else reason
        self.changes.append(Change(self.report, format_path(new_path if new is not None else old_path), old, new,
                                   impact, reason, self.old.clause(old_path), self.new.clause(new_path)))

    def walk(self, rules: dict[tuple, Any], old_base: tuple, new_base: tuple) -> None:
        """Compare what ``rules`` covers under the two bases; a key present and uncovered is an error
        (a setting the comparison does not know must not pass unseen)."""
        self._uncovered(rules, old_base, self.old)
        self._uncovered(rules, new_base, self.new)
        for rel, rule in rules.items():
            op, np_ = old_base + rel, new_base + rel
            a, b = self.old.get(op), self.new.get(np_)
            if a == b or rule == "reports":
                continue
            if rule == "layout" and (a is None or b is None):
                what = "no longer written" if b is None else "added"
                self.add(op, np_, a, b, (BREAKING, f"a record {what}: an old parser rejects or misreads the files"))
            elif rule == "layout":
                self.walk(LAYOUT_RULES, op, np_)
            elif rule == "fields":
                self.fields(op, np_, a or [], b or [])
            else:
                self.add(op, np_, a, b, rule(a, b))

    def _uncovered(self, rules: dict[tuple, Any], base: tuple, side: _Side) -> None:
        covered = {rel[: i + 1] for rel in rules for i in range(len(rel))}

        def visit(rel: tuple) -> None:
            if rel in rules:
                return
            node = side.get(base + rel)
            if not isinstance(node, dict):
                raise KeyError(f"no comparison rule for {format_path(base + rel)}")
            for key in node:
                if rel + (key,) not in covered:
                    raise KeyError(f"no comparison rule for {format_path(base + rel + (key,))}")
                visit(rel + (key,))

        if side.get(base) is not None:  # a section only one side has (a layout added) is compared, not visited
            visit(())

    def fields(self, old_path: tuple, new_path: tuple, old: list[dict], new: list[dict]) -> None:
        """A record layout: fields aligned by their (type, source) signature, then compared in pairs.
        An unpaired field is added or removed at its position (breaking: every later field shifts);
        one removed and added elsewhere with the same signature is moved."""
        sig_old = [_signature(f) for f in old]
        sig_new = [_signature(f) for f in new]
        pairs, removed, added = [], [], []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sig_old, sig_new, autojunk=False).get_opcodes():
            n = min(i2 - i1, j2 - j1) if tag == "replace" else (i2 - i1 if tag == "equal" else 0)
            pairs += [(i1 + k, j1 + k) for k in range(n)]
            removed += range(i1 + n, i2)
            added += range(j1 + n, j2)
        for i in list(removed):
            j = next((j for j in added if sig_new[j] == sig_old[i]), None)
            if j is not None:
                removed.remove(i)
                added.remove(j)
                self.add(old_path + (i,), new_path + (j,), f"position {i + 1}", f"position {j + 1}",
                         (BREAKING, f"field {new[j]['name']!r} moved from position {i + 1} to {j + 1}: "
                                    "files have no column header row, so every field between is misread"))
                pairs.append((i, j))
        for i in removed:
            self.add(old_path + (i,), new_path + (i,), old[i], None,
                     (BREAKING, f"field {old[i]['name']!r} removed at position {i + 1}: every later field shifts "
                                "and an old parser misreads the record"))
        for j in added:
            self.add(old_path + (j,), new_path + (j,), None, new[j],
                     (BREAKING, f"field {new[j]['name']!r} added at position {j + 1}: an old parser rejects the "
                                "extra field or misreads every later one"))
        for i, j in sorted(pairs):
            if old[i] != new[j]:
                self.subject = f"field {j + 1} {old[i]['name']!r}"  # at its new position, by its old name
                self.walk(FIELD_RULES, old_path + (i,), new_path + (j,))
                self.subject = ""


def _signature(field: dict) -> tuple:
    (kind, source), = field["source"].items()
    return field["type"], kind, str(source)


def comments(text: str) -> list[tuple[int, bool, str]]:
    """The comments of a YAML text: (line, whether the comment is the whole line, its text). A '#'
    inside quotes, or not after a blank, is no comment (YAML 1.1); a quoted scalar is taken to end on
    its own line, as every one in the shipped rulesets does."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        quote = None
        for k, char in enumerate(line):
            if quote:
                if char == quote and not (quote == '"' and line[k - 1] == "\\"):
                    quote = None
            elif char in "'\"" and (k == 0 or line[k - 1] in " \t[{:,-"):
                quote = char
            elif char == "#" and (k == 0 or line[k - 1] in " \t"):
                out.append((number, not line[:k].strip(), line[k + 1:].strip()))
                break
    return out


def _comment_path(lines: dict, line: int, whole: bool) -> tuple:
    """The YAML path a comment speaks of: the outermost one on its line, or for a comment on a line
    of its own the outermost on the next line that has one (a comment above a key describes that key)."""
    on = [p for p, n in lines.items() if n == line]
    if not whole and on:
        return min(on, key=len)
    after = [(n, len(p), p) for p, n in lines.items() if n > line]
    return min(after)[2] if after else ()


def _compare_comments(report: str | None, old: tuple[Path, _Side], new: tuple[Path, _Side]) -> list[Change]:
    """The comments that differ between one file's two versions, as one cosmetic change at the path the
    first of them speaks of (one row a file: a file edited by a YAML dumper loses every comment, and
    that is still nothing a supplier's file carries)."""
    texts = [p.read_text(encoding="utf-8") for p, _ in (old, new)]
    found = [comments(t) for t in texts]
    words = [[c[2] for c in f] for f in found]
    if words[0] == words[1]:
        return []
    opcodes = [op for op in difflib.SequenceMatcher(None, *words, autojunk=False).get_opcodes() if op[0] != "equal"]
    _, i1, _, j1, j2 = opcodes[0]
    side, first = (1, found[1][j1]) if j2 > j1 else (0, found[0][i1])
    path = _comment_path(yamlio.line_index(texts[side], str((old, new)[side][0])), *first[:2])
    gone = [w for _, a, b, _, _ in opcodes for w in words[0][a:b]]
    came = [w for _, _, _, a, b in opcodes for w in words[1][a:b]]
    return [Change(report, format_path(path) or "(top level)", " / ".join(gone) or None, " / ".join(came) or None,
                   COSMETIC, f"{max(len(gone), len(came))} comment line(s) changed: nothing a file carries changes",
                   old[1].clause(path), new[1].clause(path))]


def compare(old: Ruleset, new: Ruleset) -> Verdict:
    """Every difference from ``old`` to ``new``, each classified from the side of a supplier whose
    parser and pipeline were built on ``old``."""
    changes: list[Change] = []
    top = _Compare(None, _Side(old.raw, old.raw.get("source")), _Side(new.raw, new.raw.get("source")))
    top.walk(RULESET_RULES, (), ())
    changes += top.changes
    if old.raw.get("reports") != new.raw.get("reports") and set(old.reports) == set(new.reports):
        changes.append(Change(None, "reports", old.raw["reports"], new.raw["reports"], COSMETIC,
                              "the reports listed in another order: nothing a file carries changes",
                              top.old.clause(("reports",)), top.new.clause(("reports",))))
    changes += _compare_comments(None, (old.path / "ruleset.yaml", top.old), (new.path / "ruleset.yaml", top.new))
    for report_id in [*old.reports, *(r for r in new.reports if r not in old.reports)]:
        a, b = old.reports.get(report_id), new.reports.get(report_id)
        if a is None or b is None:
            impact, reason = ((BEHAVIOUR, "the report is no longer made: its files stop coming") if b is None else
                              (BREAKING, "a new report: its files reach suppliers whose pipeline does not know it"))
            changes.append(Change(report_id, "reports", report_id if a else None, report_id if b else None, impact,
                                  reason, a.clause if a else None, b.clause if b else None))
            continue
        raw_a, raw_b = _report_pairs(old, new, report_id)
        walker = _Compare(report_id, _Side(raw_a, a.clause), _Side(raw_b, b.clause))
        walker.walk(REPORT_RULES, (), ())
        changes += walker.changes
        changes += _compare_comments(report_id, (old.path / f"{report_id}.yaml", walker.old),
                                     (new.path / f"{report_id}.yaml", walker.new))
    changes.sort(key=lambda c: IMPACTS.index(c.impact))  # stable: within a class, in file order
    return Verdict(old.name, new.name, tuple(changes))


def _own_header(report: dict, ruleset_raw: dict) -> dict:
    """A report's YAML as compared: a report that writes the ruleset's header is given it as its own, so
    that a header only one side's report declares is compared field by field with the header the other
    side's files carry (the MRR's per-report headers, docs/rulesets.md), not reported as a record added."""
    if "header" in report or "header" not in ruleset_raw:
        return report
    return {**report, "header": ruleset_raw["header"]}


def _report_pairs(old: Ruleset, new: Ruleset, report_id: str) -> tuple[dict, dict]:
    """The two sides of one report: each with the ruleset's header when it has none of its own, but only
    where the other side's report has one (else the ruleset-level header change is reported once)."""
    a, b = old.reports[report_id].raw, new.reports[report_id].raw
    if "header" in a or "header" in b:
        return _own_header(a, old.raw), _own_header(b, new.raw)
    return a, b


def diff(old: str, new: str) -> Verdict:
    """Load two rulesets (by name or path) and compare them."""
    return compare(load(old), load(new))


# ----------------------------------------------------------------------------- output


def _show(value: Any, width: int | None = None) -> str:
    """A value on one line: None as '-', a string as written (a line end shown as \\r\\n), else JSON."""
    if value is None:
        text = "-"
    elif isinstance(value, str):
        text = value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    else:
        text = json.dumps(value, ensure_ascii=False)
    if width and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def render(verdict: Verdict) -> str:
    """The terminal table: one line a change, worst first, and the totals."""
    if not verdict.changes:
        return f"{verdict.old} -> {verdict.new}: no change\n"
    rows = [(c.impact, c.report or "(ruleset)", c.path, f"{_show(c.old, 30)} -> {_show(c.new, 30)}", c.reason)
            for c in verdict.changes]
    heads = ("impact", "report", "path", "old -> new", "reason")
    widths = [max(len(r[k]) for r in [heads, *rows]) for k in range(4)]
    lines = [f"{verdict.old} -> {verdict.new}"]
    for row in [heads, *rows]:
        lines.append("  ".join(cell.ljust(widths[k]) for k, cell in enumerate(row[:4])) + "  " + row[4])
    counts = verdict.counts()
    lines.append(", ".join(f"{counts[i]} {i}" for i in IMPACTS) + (
        ": a parser built on the old ruleset breaks" if verdict.breaking else ": no parser built on the old ruleset "
                                                                               "breaks"))
    return "\n".join(lines) + "\n"


def _cell(value: Any, width: int | None = None) -> str:
    return _show(value, width).replace("|", "\\|").replace("\n", " ")


def markdown(verdict: Verdict) -> str:
    """The changes as Markdown for a consultation document: totals, then a table per impact."""
    counts = verdict.counts()
    out = [f"# Changes from {verdict.old} to {verdict.new}", ""]
    if not verdict.changes:
        return "\n".join(out + ["No change reaches a supplier: the two rulesets make the same files.", ""])
    out += ["Each change is judged for a supplier whose parser and pipeline were built on "
            f"`{verdict.old}`: " + ", ".join(f"{counts[i]} {i}" for i in IMPACTS) + ".", ""]
    for impact in IMPACTS:
        group = [c for c in verdict.changes if c.impact == impact]
        if not group:
            continue
        out += [f"## {impact.capitalize()} ({len(group)})", "",
                "| report | where | was | becomes | why | clause (old) | clause (new) |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        # values at most 160 characters in a document meant for people (the JSON has them whole)
        out += [f"| {c.report or 'all'} | `{c.path}` | {_cell(c.old, 160)} | {_cell(c.new, 160)} | {_cell(c.reason)} | "
                f"{_cell(c.clause_old)} | {_cell(c.clause_new)} |" for c in group]
        out.append("")
    return "\n".join(out)
