"""The parser corpus: valid and deliberately broken deliveries with their expected verdicts.

``write(DIR)`` (``emrr corpus DIR``) writes ``DIR/cases/<case-id>/<party>/<name>.csv`` and
``DIR/manifest.json``, which ``corpus.schema.json`` describes (docs/corpus.md). The deliveries are
the report engine's output for two event logs built by hand (conformance/logs/: ``reference``, the
log of the golden report files; ``edge``, values that trip naive parsers), so the corpus is the same, byte
for byte, every time. It holds:

- a valid case per report (its files of the reference delivery) and the whole delivery;
- valid edge cases: fields at their maximum length, empty optional fields (plain and quoted),
  fields quoted though they need not be, all three ECoS Status values, catch-up windows after an
  outage, late records, sequence numbers above 9;
- an invalid case per mutation operator (conformance/mutations.py), applied to the reference
  delivery.

Every case's verdict is confirmed by the checker as it is written: a valid case gives no error,
an invalid case exactly its expected error findings. A case that does not is a bug, and
``write`` raises ``CorpusMismatch`` rather than ship it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema

from emrr.conformance import handlog, mutations
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.handlog import HandLog
from emrr.conformance.mutations import Delivery
from emrr.contract import ECOS, SMETS1
from emrr.errors import UserError
from emrr.rules import engine
from emrr.rules import ruleset as rules
from emrr.rules.ruleset import Ruleset
from emrr.rules.schedule import window

FORMAT = "emrr-parser-corpus"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CorpusMismatch(AssertionError):
    """A case whose verdict the checker does not confirm: a bug in the corpus or the checker."""


# =========================================================================== hand-built event logs

# The hand-built logs (conformance/logs/*.yaml): ``reference`` is the golden log of tests/golden,
# ``edge`` holds values that trip naive parsers.
REFERENCE = handlog.load("reference")
EDGE = handlog.load("edge")
LOGS = {log.name: log for log in (REFERENCE, EDGE)}
# The hand-built log of each regime's corpus (emrr.contract.REGIMES): the ECoS logs above, and the
# SMETS1 log (conformance/logs/smets1.yaml, the golden log of the SMETS1 rulesets)
REGIME_LOGS = {ECOS: ("reference", "edge"), SMETS1: ("smets1",)}


def logs_for(rs: Ruleset) -> dict[str, HandLog]:
    """The hand-built logs a corpus of ``rs`` is made from, by name; the first is its reference."""
    names = REGIME_LOGS[rs.regime]
    try:
        return {name: LOGS[name] if name in LOGS else handlog.load(name) for name in names}
    except UserError as exc:
        raise UserError(f"a corpus of ruleset {rs.name} (regime {rs.regime}) needs the hand-built log "
                        f"conformance/logs/{names[0]}.yaml: {exc}") from None


def deliver(log: HandLog, work: str | Path, rs: Ruleset) -> Path:
    """The report engine's delivery for ``log`` (built under ``work``): ``work/reports``."""
    work = Path(work)
    out = work / "reports"
    engine.report(handlog.build(log, work / "events"), out, rs, progress=False)
    return out


# =========================================================================== cases


@dataclass
class Case:
    """One case of the corpus, as the manifest describes it."""

    id: str
    description: str
    kind: str  # report | edge | mutation
    valid: bool
    source: str  # the hand-built log whose delivery the case comes from
    operator: str | None = None
    defect: dict | None = None  # file and line of the defect (invalid cases)
    findings: list[dict] = field(default_factory=list)  # the error findings expected (invalid cases)
    files: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def expected_checks(self) -> list[str]:
        return sorted({f["check"] for f in self.findings})

    def as_dict(self) -> dict:
        out = {
            "id": self.id, "description": self.description, "kind": self.kind, "source": self.source,
            "path": f"cases/{self.id}", "files": self.files, "reports": self.reports, "valid": self.valid,
            "expected_checks": self.expected_checks, "expected_warnings": self.warnings,
        }
        if self.operator is not None:
            out["operator"] = self.operator
        if not self.valid:
            out["defect"] = self.defect
            out["findings"] = self.findings
        return out


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _copy_files(source: Path, target: Path, keep: Callable[[str], bool]) -> None:
    for rel in _files(source):
        if rel.endswith(".csv") and not rel.startswith(".") and keep(rel):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target / rel)


def _report_of(rel: str) -> str:
    return rel.rpartition("/")[2].split("_")[0]


def _field_text(value: str, quoting: int, rs: Ruleset) -> str:
    """One field as the csv module writes it (``quoting`` a csv.QUOTE_* constant)."""
    if value == "" and quoting == csv.QUOTE_MINIMAL:
        return ""  # the csv module writes a lone empty field as "" (to tell it from a blank line)
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=rs.delimiter, quotechar=rs.quote_char, lineterminator="",
               quoting=quoting).writerow([value])
    return buffer.getvalue()


def _rewrite(path: Path, rs: Ruleset, quote: Callable[[list[str], int], bool]) -> None:
    """Write the file's records again, quoting field ``i`` of ``row`` when ``quote(row, i)``."""
    text = path.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=rs.delimiter, quotechar=rs.quote_char))
    lines = [rs.delimiter.join(_field_text(v, csv.QUOTE_ALL if quote(row, i) else csv.QUOTE_MINIMAL, rs)
                               for i, v in enumerate(row)) for row in rows]
    path.write_bytes("".join(line + rs.line_terminator for line in lines).encode("utf-8"))


class Builder:
    """Writes the cases under ``root/cases`` from the deliveries, each confirmed by the checker."""

    def __init__(self, root: Path, deliveries: dict[str, Path], rs: Ruleset):
        self.root = root
        self.deliveries = deliveries
        self.rs = rs
        self.cases: list[Case] = []
        self.skipped: list[tuple[str, str]] = []  # (case id, why it is not in the corpus)

    def folder(self, case_id: str) -> Path:
        path = self.root / "cases" / case_id
        if path.exists():
            raise CorpusMismatch(f"case {case_id} written twice")
        path.mkdir(parents=True)
        return path

    def valid(self, case_id: str, description: str, kind: str, source: str, keep: Callable[[str], bool],
              edit: Callable[[Path], None] | None = None, confirm: Callable[[Delivery], str | None] | None = None
              ) -> None:
        """A valid case: the files of a delivery that ``keep`` selects, optionally edited."""
        path = self.folder(case_id)
        _copy_files(self.deliveries[source], path, keep)
        if edit is not None:
            edit(path)
        case = Case(case_id, description, kind, True, source)
        if confirm is not None:  # the case holds what it claims to
            problem = confirm(Delivery(path, self.rs))
            if problem:
                raise CorpusMismatch(f"case {case_id}: {problem}")
        self.finish(case, path)

    def mutation(self, op: mutations.Operator, source: str) -> None:
        case_id = f"invalid-{op.id}"
        path = self.folder(case_id)
        m = op.apply(self.deliveries[source], path, self.rs)
        case = Case(case_id, f"{op.description} ({m.description})", "mutation", False, source, operator=op.id,
                    defect={"file": m.file, "line": m.line},
                    findings=[{"file": e.file, "line": e.line, "check": e.check} for e in m.expected])
        self.finish(case, path)

    def finish(self, case: Case, path: Path) -> None:
        case.files = _files(path)
        if not case.files:
            raise CorpusMismatch(f"case {case.id} holds no file")
        case.reports = sorted({_report_of(rel) for rel in case.files} & set(self.rs.reports))
        verdict = check(path, self.rs, max_examples=None)
        errors = sorted({(f.file, -1 if f.line is None else f.line, f.check) for f in verdict
                         if f.severity == "error"})
        expected = sorted((f["file"], -1 if f["line"] is None else f["line"], f["check"]) for f in case.findings)
        if errors != expected:
            raise CorpusMismatch(f"case {case.id}: the checker reports {errors}, expected {expected}")
        case.warnings = sorted({f.check for f in verdict if f.severity == "warning"})
        self.cases.append(case)


# ------------------------------------------------------------------ what the edge cases must hold


def _holds_max_lengths(d: Delivery) -> str | None:
    names = ("Device ID", "MPxN", "Device Manufacturer", "Device Model", "Firmware Version", "Error Code",
             "Error Sub Code")
    at_max = set()
    for f in d.files.values():
        for _, row in d.details(f.rel):
            for i, fld in enumerate(f.report.detail):
                if fld.name in names and len(row[i]) == fld.max_length:
                    at_max.add(fld.name)
    missing = set(names) - at_max
    return f"no value at the maximum length of {sorted(missing)}" if missing else None


def _holds_statuses(*wanted: str) -> Callable[[Delivery], str | None]:
    def confirm(d: Delivery) -> str | None:
        seen = set()
        for f in d.of("ECOSMIG-003"):
            i = d.detail_index(f.report, "ECoS Status")
            seen |= {row[i] for _, row in d.details(f.rel)}
        return None if set(wanted) <= seen else f"ECoS Status values {sorted(seen)}; expected {sorted(wanted)}"
    return confirm


def _holds_empty_optional(d: Delivery) -> str | None:
    for f in d.files.values():
        optional = [i for i, fld in enumerate(f.report.detail) if not fld.mandatory]
        if any(row[i] == "" for _, row in d.details(f.rel) for i in optional):
            return None
    return "no empty optional field"


def _holds_catch_up(d: Delivery) -> str | None:
    for f in d.files.values():
        header = d.rows(f.rel)[0]
        got = (d.parse_time(header[d.header_index("window_start")]), d.parse_time(header[d.header_index("window_end")]))
        if got != window(f.report.window, f.created):
            return None
    return "no file with the window of an earlier run"


def _holds_high_sequence(d: Delivery) -> str | None:
    return None if any(f.sequence >= 10 for f in d.files.values()) else "no sequence number above 9"


def _short_title(path: Path, rs: Ruleset) -> None:
    """The first ECOSMIG-001 file's Report Title without its 'Detail Report: ' prefix."""
    d = Delivery(path, rs)
    f = d.first("successes")
    rows = d.rows(f.rel)
    rows[0][d.header_index("title")] = f.report.title.split(": ", 1)[-1]
    d.write_rows(f.rel, rows)


def _holds_other_title(d: Delivery) -> str | None:
    f = d.first("successes")
    title = d.rows(f.rel)[0][d.header_index("title")]
    return None if title not in f.report.titles_accepted else f"{f.rel} has Appendix A's title {title!r}"


def _all_quoted(path: Path, rs: Ruleset) -> None:
    for p in sorted(path.rglob("*.csv")):
        _rewrite(p, rs, lambda row, i: True)


def _empty_optional_quoted(path: Path, rs: Ruleset) -> None:
    for p in sorted(path.rglob("*.csv")):
        detail = rs.reports[_report_of(p.relative_to(path).as_posix())].detail
        _rewrite(p, rs, lambda row, i, detail=detail: row[0] == detail[0].source and len(row) == len(detail)
                 and row[i] == "" and not detail[i].mandatory)


def build_regime_cases(builder: Builder, log: HandLog) -> None:
    """The cases of a ruleset of a regime other than the EMRR's, from its reference log ``log``: a
    valid case per report and the whole delivery, then one invalid case per mutation operator that
    applies to the ruleset and finds a target (the others are listed as skipped, with the reason).
    The EMRR's edge cases (build_cases) name its reports and fields; this builder names none."""
    rs = builder.rs
    for rid, report in rs.reports.items():
        if rid not in log.reports:
            builder.skipped.append((f"report-{rid.lower()}", f"the {log.name} log (conformance/logs/{log.name}.yaml) "
                                    f"declares no file of {rid}"))
            continue
        builder.valid(f"report-{rid.lower()}", f"Valid: every {rid} file ({report.title}) of the {log.name} delivery.",
                      "report", log.name, lambda rel, rid=rid: _report_of(rel) == rid)
    builder.valid(f"valid-{log.name}-delivery", f"Valid: the whole {log.name} delivery (every report it declares, "
                  "every recipient).", "report", log.name, lambda rel: True)
    _mutation_cases(builder, log.name)


def _mutation_cases(builder: Builder, source: str) -> None:
    rs = builder.rs
    for op in mutations.OPERATORS.values():
        if not op.applies(rs):
            builder.skipped.append((f"invalid-{op.id}", f"operator {op.id} does not apply to ruleset {rs.name}"))
            continue
        try:
            builder.mutation(op, source)
        except mutations.NotApplicable as exc:
            shutil.rmtree(builder.root / "cases" / f"invalid-{op.id}", ignore_errors=True)
            builder.skipped.append((f"invalid-{op.id}", f"no target in the {source} delivery: {exc}"))


def build_cases(builder: Builder) -> None:
    rs = builder.rs
    if rs.regime != ECOS:
        build_regime_cases(builder, next(iter(logs_for(rs).values())))
        return
    for rid, report in rs.reports.items():
        if rid not in REFERENCE.reports:  # a report the ruleset adds: the hand-built log holds no event for it
            builder.skipped.append((f"report-{rid.lower()}", f"the reference log (conformance/logs/reference.yaml) "
                                    f"declares no file of {rid}"))
            continue
        builder.valid(f"report-{rid.lower()}", f"Valid: every {rid} file ({report.title}) of the reference delivery.",
                      "report", "reference", lambda rel, rid=rid: _report_of(rel) == rid)
    builder.valid("valid-reference-delivery", "Valid: the whole reference delivery (every report, two recipients; "
                  "late records are warnings).", "report", "reference", lambda rel: True)
    builder.valid("valid-edge-delivery", "Valid: the whole edge delivery (maximum lengths, all ECoS Status values, "
                  "sequence numbers above 9, two files made by one run).", "edge", "edge", lambda rel: True)
    builder.valid("valid-maximum-length-fields", "Valid: Device Manufacturer and Device Model of 30 characters, "
                  "Firmware Version of 8, MPAN of 13, Error Code of 5, Error Sub Code 999999: fields at their Max "
                  "Length (ECOSMIG-002 and ECOSMIG-004).", "edge", "edge",
                  lambda rel: _report_of(rel) in ("ECOSMIG-002", "ECOSMIG-004"), confirm=_holds_max_lengths)
    builder.valid("valid-all-ecos-statuses", "Valid: an ECOSMIG-003 with Installed (0 attempts), Success and Failure "
                  "records (Error Sub Code 0).", "edge", "edge", lambda rel: _report_of(rel) == "ECOSMIG-003",
                  confirm=_holds_statuses("Installed", "Success", "Failure"))
    builder.valid("valid-empty-optional-fields", "Valid: an ECOSMIG-003 Success record whose optional Error Code and "
                  "Error Sub Code are empty (two delimiters in a row).", "edge", "reference",
                  lambda rel: _report_of(rel) == "ECOSMIG-003", confirm=_holds_empty_optional)
    builder.valid("valid-quoted-empty-optional-fields", "Valid: the empty optional fields written as a quoted empty "
                  "string (\"\"), which RFC 4180 reads as empty.", "edge", "reference",
                  lambda rel: _report_of(rel) == "ECOSMIG-003", edit=lambda p: _empty_optional_quoted(p, rs),
                  confirm=_holds_empty_optional)
    builder.valid("valid-quoted-fields-not-needed", "Valid: every field of every record quoted though none needs it "
                  "(the engine quotes only where RFC 4180 must; a reader accepts any RFC 4180 quoting). No field of "
                  "the revised EMRR legitimately needs quoting: none holds a comma, a quote or a line break.",
                  "edge", "reference", lambda rel: _report_of(rel) in ("ECOSMIG-001", "ECOSMIG-003"),
                  edit=lambda p: _all_quoted(p, rs))
    builder.valid("valid-catch-up-window-after-outage", "Valid: ECOSMIG-005's run of 17 July fell in an outage; it was "
                  "made up on 24 July with its own window (10-16 July), beside the detail reports it reconciles with.",
                  "edge", "reference", lambda rel: _report_of(rel) in ("ECOSMIG-001", "ECOSMIG-002", "ECOSMIG-005"),
                  confirm=_holds_catch_up)
    builder.valid("valid-two-files-from-one-run", "Valid: ECOSMIG-004's run of 24 July fell in an outage; the run of "
                  "31 July made two files, the missed window (sequence 3) and its own (sequence 4).", "edge", "edge",
                  lambda rel: _report_of(rel) == "ECOSMIG-004", confirm=_holds_catch_up)
    builder.valid("valid-late-records", "Valid: a failure notified a day late and successes carried forward over an "
                  "ECOSMIG-001 outage sit in a later file than their window (late-record warnings, not errors).",
                  "edge", "reference", lambda rel: _report_of(rel) in ("ECOSMIG-001", "ECOSMIG-002"))
    builder.valid("valid-sequence-numbers-above-nine", "Valid: ECOSMIG-001 sequence numbers 1 to 13, unpadded, in file "
                  "names and headers (sorting names as text puts 10 before 2).", "edge", "edge",
                  lambda rel: _report_of(rel) == "ECOSMIG-001", confirm=_holds_high_sequence)
    builder.valid("valid-delivery-starting-part-way", "Valid: ECOSMIG-001 files from sequence number 3 on, as a "
                  "supplier holds them when it starts checking part-way (App. B's own example file is number 10): "
                  "a sequence-start warning, not an error; numbers missing between files would be.", "edge", "edge",
                  lambda rel: _report_of(rel) == "ECOSMIG-001" and int(rel.rsplit("/", 1)[-1].split("_")[2]) >= 3)
    builder.valid("valid-other-report-title", "Valid: an ECOSMIG-001 header whose Report Title is not Appendix A's "
                  "name ('ECoS Migrations Completed Successfully', without 'Detail Report: '): the EMRR fixes only "
                  "the title's type and length, so a report-title warning, not an error (DESIGN.md \"Report "
                  "Title\").", "edge", "reference", lambda rel: _report_of(rel) == "ECOSMIG-001",
                  edit=lambda p: _short_title(p, rs), confirm=_holds_other_title)
    _mutation_cases(builder, "reference")


# =========================================================================== writing the corpus


def schema() -> dict:
    return json.loads(resources.files("emrr.conformance").joinpath("corpus.schema.json").read_text(encoding="utf-8"))


def manifest(cases: list[Case], rs: Ruleset) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ruleset": rs.name,
        "description": ("EMRR" if rs.regime == ECOS else rs.title) + " report parser corpus: each case is a "
                       "delivery (cases/<id>/<party>/<name>.csv) that a parser must accept (valid) or reject (invalid, "
                       "with the checks of docs/checks.md that find the defect). See docs/corpus.md.",
        "checks": {c.id: {"family": c.family, "severity": c.severity, "title": c.title} for c in CATALOGUE.values()},
        "cases": [c.as_dict() for c in sorted(cases, key=lambda c: c.id)],
    }


@dataclass
class Summary:
    directory: str
    cases: int
    valid: int
    invalid: int
    files: int
    bytes: int
    skipped: tuple[tuple[str, str], ...] = ()  # (case id, why)

    def render(self) -> str:
        text = (f"parser corpus: {self.cases} cases ({self.valid} valid, {self.invalid} invalid), {self.files} files, "
                f"{self.bytes:,} bytes -> {self.directory} (manifest: {Path(self.directory) / MANIFEST})")
        return "\n".join([text, *(f"skipped {case}: {why}" for case, why in self.skipped)])


def confirm_reports(log: HandLog, delivery: Path, rs: Ruleset) -> None:
    """The log's delivery holds files of exactly the reports it declares (those of the ruleset)."""
    made = {_report_of(rel) for rel in _files(delivery) if rel.endswith(".csv")} & set(rs.reports)
    declared = set(log.reports) & set(rs.reports)
    if made != declared:
        raise CorpusMismatch(f"the {log.name} log declares files of {sorted(declared)}; its delivery holds "
                             f"{sorted(made)} (conformance/logs/{log.name}.yaml reports)")


def _is_corpus(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _target(directory: str | Path) -> Path:
    target = Path(directory)
    if target.name in ("", ".", ".."):
        raise UserError(f"expected a path ending in a directory name (not '.', '..' or '/'), got {str(directory)!r}")
    if target.exists():
        if not target.is_dir():
            raise UserError("not a directory; expected a new or empty directory, or an earlier corpus",
                            file=str(target))
        if any(target.iterdir()) and not _is_corpus(target):
            raise UserError("holds files that are not a parser corpus; expected a new or empty directory, or an "
                            "earlier corpus (replaced)", file=str(target))
    return target


def write(directory: str | Path, ruleset: str | Path | Ruleset | None = None) -> Summary:
    """Write the corpus of ``ruleset`` (default the revised EMRR; a SMETS1 ruleset makes a SMETS1
    corpus from its regime's hand-built log) to ``directory`` (new, empty, or an earlier corpus,
    which is replaced)."""
    rs = ruleset if isinstance(ruleset, Ruleset) else rules.load(None if ruleset is None else str(ruleset))
    logs = logs_for(rs)
    target = _target(directory)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the directory: {exc.strerror}", file=str(target.parent))
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="emrr-corpus-") as work:
            deliveries = {name: deliver(log, Path(work) / name, rs) for name, log in logs.items()}
            for name, log in logs.items():
                confirm_reports(log, deliveries[name], rs)
            staging.mkdir()
            builder = Builder(staging, deliveries, rs)
            build_cases(builder)
        data = manifest(builder.cases, rs)
        jsonschema.Draft202012Validator(schema()).validate(data)
        (staging / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except OSError as exc:
        raise UserError(f"cannot write the corpus: {exc.strerror or exc}", file=str(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in target.rglob("*") if p.is_file()]
    valid = sum(c.valid for c in builder.cases)
    return Summary(str(target), len(builder.cases), valid, len(builder.cases) - valid, len(files),
                   sum(p.stat().st_size for p in files), tuple(builder.skipped))
