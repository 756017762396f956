"""The conformance checks as tests of anyone's pytest run (registered as the ``emrr`` pytest11
entry point of this package).

    pytest --emrr-dir DIR [--emrr-ruleset NAME|PATH] [--emrr-events LOG [--emrr-expect reports]]

adds one test item per check of the catalogue (docs/checks.md), ``emrr::<check id>``: it fails
with that check's findings when the check found an error, passes when it found nothing, and
passes with a line in the terminal summary (and the findings as a report section) when it found
only warnings. A check that does not run is skipped (``findings.enabled_checks``, as for ``emrr
check``): the ground-truth checks (``gt-*``) without ``--emrr-events``, and an opt-in check
(``late-record``), which the plugin does not select. The
directory is checked once, when the first item runs. ``-k`` selects among the items as among any
others (``-k emrr`` keeps only them).

Without ``--emrr-dir`` the plugin does nothing but declare its options: a pytest run that does
not ask for it (this project's own included) is not affected. Heavy imports wait until asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emrr.conformance.catalogue import CHECKS
from emrr.conformance.findings import enabled_checks, where

SHOWN = 50  # findings written out per failed check
_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("emrr", "EMRR conformance of a directory of report files (docs/checks.md)")
    group.addoption("--emrr-dir", metavar="DIR", default=None,
                    help="check the report files under DIR: one test per check of the catalogue")
    group.addoption("--emrr-ruleset", metavar="NAME|PATH", default=None,
                    help="ruleset to check against (a folder of rules/ or a path); default emrr-revised")
    group.addoption("--emrr-events", metavar="LOG", default=None,
                    help="the event log the files were made from, as ground truth (runs the gt-* checks)")
    group.addoption("--emrr-expect", choices=("recipients", "reports"), default="recipients",
                    help="with --emrr-events, which files of the log DIR must hold: every file of each recipient "
                         "with a file in DIR (default), or of each (report, recipient) with one")


def _wanted(config: pytest.Config) -> bool:
    return config.getoption("emrr_dir", None) is not None


def pytest_configure(config: pytest.Config) -> None:
    if not _wanted(config):
        return
    from emrr.errors import UserError
    from emrr.rules import ruleset

    directory = Path(config.getoption("emrr_dir"))
    events = config.getoption("emrr_events")
    if not directory.is_dir():
        raise pytest.UsageError(f"--emrr-dir: {directory}: not a directory; expected a directory of report files")
    if events is not None and not Path(events).is_dir():
        raise pytest.UsageError(f"--emrr-events: {events}: not a directory; expected an event log directory")
    try:
        rules = ruleset.load(config.getoption("emrr_ruleset"))
    except UserError as exc:
        raise pytest.UsageError(f"--emrr-ruleset: {exc}") from None
    config.addinivalue_line("markers", "emrr: a conformance check of the report files of --emrr-dir")
    config.stash[_STATE] = {"directory": directory, "events": events, "rules": rules, "verdict": None,
                            "error": None}


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """The suite is collected beside whatever the session collects (so its items are counted,
    selected with -k and -m, and reported like any others)."""
    report = yield
    if isinstance(collector, pytest.Session) and _wanted(collector.config) and report.passed:
        report.result = [*report.result, Suite.from_parent(collector, name="emrr", nodeid="emrr")]
    return report


class CheckFailed(Exception):
    """A check found errors: the text is the failure's report."""


class Suite(pytest.Collector):
    """The checks of the catalogue, in its order."""

    def collect(self):
        return [CheckItem.from_parent(self, name=spec.id, spec=spec) for spec in CHECKS]


class CheckNotRun(Exception):
    """The check could not run (or read nothing): said once, by the first item that asks."""


def _verdict(config: pytest.Config):
    """The directory's verdict, checked once for the whole session. When the check cannot run
    (a UserError, a crash, no report file read), the first item fails saying why and every
    other item is skipped: one failure, not one per check (campaign I1: a crash showed as 32
    failed checks, each with the same traceback)."""
    state = config.stash[_STATE]
    if state["verdict"] is None and state["error"] is None:
        from emrr.conformance.checker import check
        from emrr.errors import UserError

        try:
            verdict = check(state["directory"], state["rules"], events=state["events"],
                            expect=config.getoption("emrr_expect"))
        except UserError as exc:
            state["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: one failure naming it, not one per check
            state["error"] = f"{type(exc).__name__}: {str(exc)[:300]} (a bug in emrr: please report it)"
        else:
            state["verdict"] = verdict
            if not verdict.checked:  # campaign L2: nothing read is not a pass (emrr check exits 2)
                state["error"] = next((n for n in verdict.notes if "nothing was checked" in n),
                                      "no report file could be read")
        if state["error"] is not None:
            raise CheckNotRun(f"the check could not run: {state['error']}")
    if state["error"] is not None:
        pytest.skip("the check could not run (see the first emrr item's failure)")
    return state["verdict"]


def _lines(verdict, check_id: str, limit: int = SHOWN) -> list[str]:
    found = [f for f in verdict if f.check == check_id]
    total = verdict.totals.get(check_id, 0)
    lines = [f"  {where(f)}: {f.message}" for f in found[:limit]]
    if total > len(lines):
        lines.append(f"  ... and {total - len(lines):,} more")
    return lines


class CheckItem(pytest.Item):
    """One check of the catalogue over the whole directory."""

    def __init__(self, *, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.add_marker(pytest.mark.emrr)

    def runtest(self) -> None:
        spec = self.spec
        state = self.config.stash[_STATE]
        if spec.id not in enabled_checks(events=state["events"] is not None):
            if spec.family == "ground-truth":
                pytest.skip("a ground-truth check: it needs the event log (--emrr-events LOG)")
            pytest.skip("an opt-in check (off by default, docs/checks.md): not run")
        verdict = _verdict(self.config)
        total = verdict.totals.get(spec.id, 0)
        if not total:
            return
        head = f"{spec.id}: {total:,} {spec.severity}(s): {spec.title} ({spec.clause})"
        text = "\n".join([head, *_lines(verdict, spec.id)])
        if spec.severity == "error":
            raise CheckFailed(text)
        self.add_report_section("call", "emrr", text)
        self.user_properties.append(("emrr_warnings", total))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (CheckFailed, CheckNotRun)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"emrr::{self.spec.id}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """One line per check that found only warnings, and the verdict's totals."""
    if not _wanted(config):
        return
    state = config.stash.get(_STATE, None)
    if not state or state["verdict"] is None:
        if state and state["error"] is not None:
            terminalreporter.section("emrr conformance")
            terminalreporter.write_line(f"NOTHING CHECKED: {state['directory']}: {state['error']}")
        return
    verdict = state["verdict"]
    terminalreporter.section("emrr conformance")
    for spec in CHECKS:
        total = verdict.totals.get(spec.id, 0)
        if total and spec.severity == "warning":
            first = next((f for f in verdict if f.check == spec.id), None)
            terminalreporter.write_line(f"emrr::{spec.id} passed with {total:,} warning(s): {spec.title}"
                                        + (f" (first: {where(first)})" if first else ""))
    word = ("FAIL" if verdict.errors else "PASS") if verdict.checked else "NOTHING CHECKED"
    terminalreporter.write_line(f"{word}: {state['directory']} against {state['rules'].name}: {verdict.files:,} "
                                f"files, {verdict.records:,} detail records; {verdict.errors:,} error(s), "
                                f"{verdict.warnings:,} warning(s)")
    for note in verdict.notes:
        terminalreporter.write_line(f"note: {note.replace('(--events)', '(--emrr-events)')}")


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _wanted(config):
        return None
    state = config.stash[_STATE]
    return (f"emrr: checking {state['directory']} against {state['rules'].name}"
            + (f", ground truth {state['events']}" if state["events"] else " (no event log: gt-* skipped)"))
