"""The verdict written out: a terminal summary grouped by check, JSON with every finding kept, and
JUnit XML (one test case per check of the catalogue) through the junit-xml library."""

from __future__ import annotations

from collections import defaultdict

from emrr.conformance.catalogue import CATALOGUE, CHECKS
from emrr.conformance.findings import Finding, Verdict, where


def summary(verdict: Verdict, directory: str, ruleset: str, examples: int = 3, seconds: float | None = None) -> str:
    """The terminal summary: per check (errors first), its count and its first examples."""
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in verdict:
        by_check[f.check].append(f)
    lines = [f"checked {directory} against {ruleset}: {verdict.files:,} files, {verdict.records:,} detail records"
             + (f" in {seconds:.2f} s" if seconds is not None else "")]
    order = sorted(verdict.totals, key=lambda c: (CATALOGUE[c].severity != "error", list(CATALOGUE).index(c)))
    width = max((len(c) for c in order), default=0)
    for check in order:
        spec = CATALOGUE[check]
        lines.append(f"  {check:<{width}}  {spec.severity:<7}  {verdict.totals[check]:>9,}  {spec.title}")
        for f in by_check[check][:examples]:
            lines.append(f"      {where(f)}: {f.message}")
        if verdict.totals[check] > examples:
            lines.append(f"      ... and {verdict.totals[check] - min(examples, len(by_check[check])):,} more")
    for note in verdict.notes:
        lines.append(f"  note: {note}")
    verdict_word = "FAIL" if verdict.errors else "PASS"
    if not verdict.checked:  # campaign L2: nothing read is not a PASS (emrr check exits 2)
        verdict_word = "NOTHING CHECKED"
    lines.append(f"{verdict_word}: {verdict.errors:,} error(s), {verdict.warnings:,} warning(s)")
    return "\n".join(lines)


def as_json(verdict: Verdict, directory: str, ruleset: str, max_examples: int | None) -> dict:
    kept: dict[str, int] = defaultdict(int)
    for f in verdict:
        kept[f.check] += 1
    return {
        "format": "emrr-conformance-verdict",
        "directory": directory,
        "ruleset": ruleset,
        "files": verdict.files,
        "records": verdict.records,
        "errors": verdict.errors,
        "warnings": verdict.warnings,
        "checked": verdict.checked,
        "passed": verdict.errors == 0 and verdict.checked > 0,
        "totals": verdict.totals,
        "max_examples_per_check": max_examples,
        "truncated": {c: n - kept[c] for c, n in verdict.totals.items() if n > kept[c]},
        "notes": verdict.notes,
        "findings": [f.as_dict() for f in verdict],
    }


def junit_xml(verdict: Verdict, enabled: set[str], directory: str) -> str:
    """One test case per check of the catalogue: failed when it found an error, passed with the
    warnings as its output when it found only warnings, skipped when it did not run (``enabled``:
    ``findings.enabled_checks``, as the checker ran it: an opt-in check not selected, or a
    ground-truth check without the event log, is skipped, never passed). When no report file
    could be read, one more case, ``nothing-checked``, is in error."""
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in verdict:
        by_check[f.check].append(f)
    cases = []
    for spec in CHECKS:
        case = TestCase(spec.id, classname=f"emrr.conformance.{spec.family}", file=directory)
        found = by_check.get(spec.id, [])
        total = verdict.totals.get(spec.id, 0)
        text = "\n".join(f"{where(f)}: {f.message}" for f in found)
        if total > len(found):
            text += f"\n... and {total - len(found):,} more"
        if spec.id not in enabled:
            case.add_skipped_info("not selected")
        elif total and spec.severity == "error":
            case.add_failure_info(message=f"{total} finding(s): {spec.title} ({spec.clause})", output=text,
                                  failure_type=spec.id)
        elif total:
            case.stdout = f"{total} warning(s): {spec.title} ({spec.clause})\n{text}"
        cases.append(case)
    if not verdict.checked:  # campaign L2: a CI reading only this file must not see a pass
        case = TestCase("nothing-checked", classname="emrr.conformance", file=directory)
        case.add_error_info(message="no report file could be read: nothing was checked",
                            output="\n".join(verdict.notes))
        cases.append(case)
    suite = TestSuite("emrr conformance", cases, properties={"directory": directory, "files": verdict.files,
                                                             "records": verdict.records})
    return to_xml_report_string([suite], prettyprint=True)
