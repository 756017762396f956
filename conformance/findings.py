"""Findings: what the checker reports, and the collector that keeps them (capped per check)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass

from emrr.conformance.catalogue import CATALOGUE, FAMILIES


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: a check of the catalogue, where it was seen, and a plain sentence."""

    file: str  # relative to the checked directory, '/'-separated
    line: int | None  # 1-based physical line; None for the whole file
    field: str | None  # the EMRR data element; None when no single field is at fault
    check: str  # a catalogue id
    severity: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def key(self) -> tuple:
        """(file, line, field, check): what the tests compare."""
        return (self.file, self.line, self.field, self.check)


class Verdict(list):
    """The findings kept (a list of Finding, sorted) with the total found per check.

    ``totals`` counts every finding, kept or not; ``notes`` are remarks that are not findings;
    ``files`` the report files found, ``unread`` those of them that could not be read at all
    (a link, a permission, an I/O error).
    """

    def __init__(self, findings: Iterable[Finding] = (), totals: dict[str, int] | None = None,
                 files: int = 0, records: int = 0, notes: list[str] | None = None, unread: int = 0):
        super().__init__(findings)
        self.totals = dict(totals or {})
        self.files = files
        self.records = records
        self.notes = list(notes or [])
        self.unread = unread

    @property
    def checked(self) -> int:
        """The report files that were read (campaign L2: a delivery of none is not a PASS)."""
        return self.files - self.unread

    @property
    def errors(self) -> int:
        return sum(n for c, n in self.totals.items() if CATALOGUE[c].severity == "error")

    @property
    def warnings(self) -> int:
        return sum(n for c, n in self.totals.items() if CATALOGUE[c].severity == "warning")

    def tuples(self) -> list[tuple]:
        return [f.key() for f in self]


def where(f: Finding) -> str:
    """Where a finding is, as the terminal, JUnit and pytest show it: ``file:line [field]``."""
    at = f.file + (f":{f.line}" if f.line is not None else "")
    return at + (f" [{f.field}]" if f.field else "")


def enabled_checks(select: Collection[str] | None = None, ignore: Collection[str] = (),
                   events: bool = False) -> set[str]:
    """The checks that run: those of ``select`` (when empty or None, every check whose
    ``Check.default`` is true: an opt-in check such as ``late-record`` runs only when selected),
    less those of ``ignore``; the ground-truth family only with an event log (``events``). The
    checker, its JUnit XML and the pytest plugin all ask this one function."""
    chosen = set(select) if select else {c.id for c in CATALOGUE.values() if c.default}
    chosen -= set(ignore)
    if not events:
        chosen = {c for c in chosen if CATALOGUE[c].family != "ground-truth"}
    return chosen


def parse_selection(text: str | None) -> set[str]:
    """'file-name,bom' or a family name ('field') -> a set of check ids; ValueError if unknown."""
    out: set[str] = set()
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item in FAMILIES:
            out |= {c.id for c in CATALOGUE.values() if c.family == item}
        elif item in CATALOGUE:
            out.add(item)
        else:
            raise ValueError(f"unknown check {item!r}; expected check ids of docs/checks.md "
                             f"or a family ({', '.join(FAMILIES)})")
    return out


class Collector:
    """Receives findings from the checks; keeps the first ``max_examples`` per check (None: all)
    and counts them all. Checks not enabled are neither kept nor counted."""

    def __init__(self, enabled: set[str] | None = None, max_examples: int | None = 1000):
        self.enabled = set(CATALOGUE) if enabled is None else set(enabled)
        self.max_examples = max_examples
        self.kept: list[Finding] = []
        self.totals: Counter[str] = Counter()

    def wants(self, check: str) -> bool:
        return check in self.enabled

    def room(self, check: str) -> int | None:
        """How many more findings of ``check`` would be kept (None: no limit)."""
        if self.max_examples is None:
            return None
        return max(0, self.max_examples - self.totals[check])

    def add(self, check: str, file: str, line: int | None, field: str | None, form: str | None = None, /,
            **values: object) -> None:
        """One finding of ``check``: its message is the catalogue's template (or its form named
        ``form``) filled with ``values`` (any slot name, ``file`` and ``field`` included)."""
        spec = CATALOGUE[check]  # an id not in the catalogue is a bug: KeyError
        if check not in self.enabled:
            return
        room = self.room(check)
        self.totals[check] += 1
        if room is None or room > 0:
            self.kept.append(Finding(file, line, field, check, spec.severity, spec.message(form, **values)))

    def add_many(self, check: str, field: str | None, shown: list[tuple[str, int | None, dict]],
                 total: int, form: str | None = None) -> None:
        """Bulk findings from a vectorised check: ``total`` found, ``shown`` the (file, line, slot
        values) of the first ones (at least ``room(check)`` of them when there are that many); a
        ``form`` among a row's values chooses that row's template (else ``form``)."""
        spec = CATALOGUE[check]
        if check not in self.enabled or total == 0:
            return
        room = self.room(check)
        for file, line, values in shown if room is None else shown[:room]:
            message = spec.message(values.get("form", form), **{k: v for k, v in values.items() if k != "form"})
            self.kept.append(Finding(file, None if line is None else int(line), field, check, spec.severity, message))
        self.totals[check] += total

    def verdict(self, files: int = 0, records: int = 0, notes: list[str] | None = None, unread: int = 0) -> Verdict:
        kept = sorted(self.kept, key=lambda f: (f.file, -1 if f.line is None else f.line, f.field or "", f.check,
                                                f.message))
        return Verdict(kept, {c: n for c, n in sorted(self.totals.items()) if n}, files, records, notes, unread)
