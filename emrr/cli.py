"""The ``emrr`` command line.

Exit status: 0 done; 2 bad input (a one-line error on stderr, no traceback); 130 interrupted;
``check`` (and ``run``, which ends with a check) exits 1 when the check found an error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from emrr import __version__
from emrr.contract import ECOS
from emrr.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 with usage; keep it one line
        raise UserError(f"{self.prog}: {message}")


# ----------------------------------------------------------------------------- options
# One validation per option, shared by every command that takes it: a bad value is one line and
# exit 2 before anything is read or written (argparse reports "argument --seed: expected ...").


def _whole_number(text: str, least: int, most: int | None, what: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or value < least or (most is not None and value > most):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def seed_option(text: str) -> int:
    """--seed: a whole number from 0 to 2**64 - 1 (NumPy's seed range)."""
    return _whole_number(text, 0, 2**64 - 1, "a whole number from 0 to 2**64 - 1")


def workers_option(text: str) -> int:
    """--workers: a whole number of at least 1."""
    return _whole_number(text, 1, None, "a whole number of at least 1")


def count_option(text: str) -> int:
    """--max-examples: a whole number of at least 0."""
    return _whole_number(text, 0, None, "a whole number of at least 0")


def out_option(text: str) -> str:
    """--out: a directory to write, named by its last part (not '.', '..' or '/': outputs are
    written beside it under a temporary name and renamed), and not an existing file."""
    if Path(text).name in ("", ".."):
        raise argparse.ArgumentTypeError(
            f"expected a path ending in a directory name (not '.', '..' or '/'), got {text!r}")
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory; expected a directory to write")
    return text


RULESET_HELP = ("ruleset name (a folder of rules/) or path; default emrr-revised for ECoS, smets1-mrr-v3.0 for "
                "a SMETS1 log or scenario")
OLD_HELP = "the ruleset suppliers built on: a name (a folder of rules/) or a path"
NEW_HELP = "the changed ruleset: a name or a path"


def _add_seed_and_workers(p: argparse.ArgumentParser, workers_help: str) -> None:
    p.add_argument("--seed", type=seed_option, help="override the scenario's seed")
    p.add_argument("--workers", type=workers_option, default=1, help=workers_help)


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a scenario into a Parquet event log")
    p.add_argument("scenario", help="scenario YAML file (see docs/scenarios.md)")
    p.add_argument("--out", required=True, type=out_option, help="event log directory to write (replaced atomically)")
    _add_seed_and_workers(p, "worker processes (outputs do not depend on it)")
    p.add_argument("--summary-json", help="also write the summary as JSON to this file (with the calibration table)")
    p.add_argument("--calibration", metavar="FILE", help="also write the calibration table as JSON to this file: each "
                   "calibrated figure, published and measured in the event log (docs/scenarios.md, Realism)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_simulate)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="turn an event log into the EMRR report files")
    p.add_argument("--events", required=True, help="event log directory (docs/event-log.md)")
    p.add_argument("--out", required=True, type=out_option, help="report directory: OUT/<SEC Party ID>/<file name>")
    p.add_argument("--ruleset", default=None, help=RULESET_HELP)
    p.add_argument("--resume", action="store_true", help="continue a run that was stopped")
    p.add_argument("--workers", type=workers_option, default=1,
                   help="threads, each taking one report at a time (files do not depend on it; memory: the "
                        "steps in flight at once); default 1")
    p.add_argument("--summary-json", help="also write the summary as JSON to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_report)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="simulate a scenario and write its reports: OUT/events, OUT/reports")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", required=True, type=out_option, help="output directory")
    _add_seed_and_workers(p, "simulation worker processes, and report engine threads (outputs do not depend on it)")
    p.add_argument("--ruleset", default=None, help=RULESET_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-check", action="store_true",
                   help="do not end by checking the reports (emrr check OUT/reports --events OUT/events)")
    p.set_defaults(handler=_run)


def _add_check(sub) -> None:
    p = sub.add_parser("check", help="check a directory of report files against a ruleset (docs/checks.md)")
    p.add_argument("directory", help="directory of report files (read recursively: every *.csv)")
    p.add_argument("--ruleset", default=None, help=RULESET_HELP)
    p.add_argument("--json", help="also write every finding kept, and the totals, as JSON to this file "
                   "('-': standard output, the summary then goes to standard error)")
    p.add_argument("--junit", help="also write JUnit XML (one test case per check) to this file ('-': standard "
                   "output, the summary then goes to standard error)")
    p.add_argument("--select", help="comma-separated check ids or families (file, record, field, cross-file) to run")
    p.add_argument("--ignore", help="comma-separated check ids or families to skip")
    p.add_argument("--max-examples", type=count_option, default=1000,
                   help="findings kept per check (the total is always counted); 0 keeps all; default 1000")
    p.add_argument("--events", help="event log directory the files were made from, as ground truth: "
                                    "runs the gt-* checks (docs/checks.md)")
    p.add_argument("--expect", choices=("recipients", "reports"), default="recipients",
                   help="with --events, which files of the log the directory must hold: every file of each "
                        "recipient that has a file in it (default), or only of each (report, recipient) that has "
                        "one (a delivery split by report)")
    p.add_argument("--workers", type=workers_option, default=1,
                   help="with --events, the threads of the reference report engine it runs (as emrr report "
                        "--workers); default 1")
    p.set_defaults(handler=_check)


def _add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="write a parser corpus: valid and broken deliveries with their expected "
                                      "verdicts (docs/corpus.md)")
    p.add_argument("directory", help="directory to write: DIR/manifest.json and DIR/cases/<case-id>/ (new, empty, "
                                     "or an earlier corpus, which is replaced)")
    p.add_argument("--ruleset", default=None, help=RULESET_HELP + " (a SMETS1 ruleset: a SMETS1 corpus)")
    p.set_defaults(handler=_corpus)


def _add_diff(sub) -> None:
    p = sub.add_parser("diff", help="every difference between two rulesets, classified by its impact on a supplier "
                                    "built on OLD (docs/impact.md)")
    p.add_argument("old", help=OLD_HELP)
    p.add_argument("new", help=NEW_HELP)
    p.add_argument("--json", help="also write the changes as JSON to this file ('-': standard output)")
    p.add_argument("--markdown", help="also write the changes as Markdown for a consultation document")
    p.set_defaults(handler=_diff)


def _add_lint(sub) -> None:
    p = sub.add_parser("lint", help="contradictions inside one ruleset that its schema cannot see (docs/impact.md)")
    p.add_argument("ruleset", help="ruleset name (a folder of rules/) or path")
    p.add_argument("--json", help="also write the findings as JSON to this file ('-': standard output)")
    p.set_defaults(handler=_lint)


def _add_impact(sub) -> None:
    p = sub.add_parser("impact", help="both rulesets on one event log: files, records, latency and moved records "
                                      "per report and supplier, and what a parser built on OLD rejects "
                                      "(docs/impact.md)")
    p.add_argument("old", help=OLD_HELP)
    p.add_argument("new", help=NEW_HELP)
    p.add_argument("--events", required=True, help="event log directory (docs/event-log.md)")
    p.add_argument("--out", required=True, type=out_option,
                   help="directory to write (new or empty): impact.md, impact.json, old/ and new/ deliveries")
    p.add_argument("--json", help="also write the figures as JSON to this file ('-': standard output)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_impact)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="many seeds of a scenario as Dask tasks: DIR/kpis.parquet, DIR/sweep.html "
                                     "(docs/sweep.md)")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--seeds", required=True, type=workers_option, help="how many seeds (at least 1)")
    p.add_argument("--first-seed", type=seed_option, default=0, help="the first seed (default 0): seeds S to S+N-1")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=workers_option, default=None,
                       help="worker processes of a local Dask cluster (default: one per core)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--out", required=True, type=out_option,
                   help="directory to write (new, empty, or an earlier sweep to continue)")
    p.add_argument("--ruleset", default=None, help=RULESET_HELP)
    p.add_argument("--check", action="store_true", help="also check each seed's reports against its event log")
    p.add_argument("--keep", action="store_true", help="keep each seed's event log and reports in DIR/runs/seed-N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_sweep)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job, each option validated by its one type function."""
    parser = _Parser(prog="emrr", description="ECoS Migration Reporting Regime: simulator, reports, conformance.")
    parser.add_argument("--version", action="version", version=f"emrr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_simulate, _add_report, _add_run, _add_check, _add_corpus, _add_diff, _add_lint, _add_impact,
                _add_sweep):
        add(sub)
    return parser


def _write_text_output(path: str, text: str) -> None:
    """Write a result file: '-' is standard output; a path that is not a regular file (a
    terminal, /dev/stdout, a FIFO, a device) is written through and never replaced; a symbolic
    link is followed; a regular file (new or not) is written to a temporary name beside it and
    renamed, so nothing half-written is left behind."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        if target.exists() and not target.is_file():  # follows links: /dev/stdout, a FIFO, /dev/null
            if target.is_dir():
                raise UserError("is a directory; expected a file to write", file=path)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
            return
        target = target.resolve() if target.is_symlink() else target  # write where the link points
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror}", file=path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror}", file=path)


def _write_json_atomically(path: str, data: dict) -> None:
    _write_text_output(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# result files written when a command ends
RESULT_FILE_OPTIONS = ("summary_json", "json", "junit", "markdown", "calibration")


def _check_writable(path: str | None, option: str) -> None:
    """Refuse a result file that cannot be written before the command runs, not after a whole run
    (campaign L10): its folder must take the temporary file that ``_write_text_output`` renames into
    place. '-' (standard output) and an existing file that is not a regular one (a terminal, a FIFO)
    are written through and not tried."""
    if path is None or path == "-":
        return
    target = Path(path)
    try:
        if target.is_dir():
            raise UserError(f"is a directory; expected a file for --{option.replace('_', '-')} to write", file=path)
        if target.exists() and not target.is_file():
            return
        probe = target.resolve().with_name(f".{target.name}.tmp-{os.getpid()}")
        with open(probe, "x", encoding="utf-8"):
            pass
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror}; expected a file --{option.replace('_', '-')} can write "
                        "(checked before the run)", file=path)


def _simulate(args: argparse.Namespace) -> int:
    from emrr.sim import regime as simulator

    scen = simulator.load(args.scenario, seed=args.seed)  # the scenario's regime: ECoS or SMETS1
    summary = simulator.simulate(scen, args.out, workers=args.workers, progress=False if args.no_progress else None)
    print(summary.render())
    print(f"event log: {args.out}")
    table = _calibration(scen, args.out) if args.calibration or args.summary_json else None
    if args.calibration:
        _write_json_atomically(args.calibration, table)
    if args.calibration and args.calibration != "-":
        print(f"calibration: {sum(r['within'] for r in table['figures'])} of {len(table['figures'])} figures "
              f"within tolerance ({args.calibration})")
    if args.summary_json:
        _write_json_atomically(args.summary_json, {**summary.as_dict(), "calibration": table})
    return 0


def _calibration(scen, out: str) -> dict | None:
    """The calibration table of an ECoS scenario's event log (None for another regime)."""
    from emrr.sim import calibration, scenario

    if not isinstance(scen, scenario.Scenario):
        return None
    return {"format": "emrr-calibration", "scenario": scen.name, "seed": scen.seed, "event_log": str(out),
            "figures": calibration.measure(scen, out)}


def _report(args: argparse.Namespace) -> int:
    from emrr.rules import engine, ruleset
    from emrr.rules.eventlog import EventLog

    regime = EventLog.open(args.events).regime if args.ruleset is None else None
    rules = ruleset.load(args.ruleset or ruleset.DEFAULT_RULESETS[regime])
    summary = engine.report(args.events, args.out, rules, resume=args.resume,
                            progress=False if args.no_progress else None, workers=args.workers)
    print(summary.render())
    _summary_page(args.events, Path(args.out), rules, Path(args.out))
    if args.summary_json:
        _write_json_atomically(args.summary_json, summary.as_dict())
    return 0


def _summary_page(events, reports: Path, rules, folder: Path) -> None:
    """FOLDER/summary.html: the run's pictures (docs/pictures.md); the ECoS regime's for now."""
    if getattr(rules, "regime", ECOS) != ECOS:
        print(f"summary page: none for the {rules.regime} regime yet")
        return
    import time

    from emrr import pictures

    started = time.perf_counter()
    page = pictures.write_run_page(events, reports, rules, folder / pictures.PAGE)
    print(f"summary page: {page} ({page.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")


def _run(args: argparse.Namespace) -> int:
    from emrr.rules import engine, ruleset
    from emrr.sim import regime as simulator

    scen = simulator.load(args.scenario, seed=args.seed)  # the scenario's regime: ECoS or SMETS1
    regime = getattr(scen, "regime", ECOS)
    rules = ruleset.load(args.ruleset or ruleset.DEFAULT_RULESETS[regime])
    if rules.regime != regime:
        raise UserError(f"the scenario simulates the {regime} migration but ruleset {rules.name} reports on "
                        f"{rules.regime}; expected a ruleset of its regime (by default "
                        f"{ruleset.DEFAULT_RULESETS[regime]})", file=args.scenario)
    out = Path(args.out)
    if out.exists() and any(p.name not in ("events", "reports", "summary.html") for p in out.iterdir()):
        raise UserError("holds files other than events/, reports/ and summary.html of an earlier run; "
                        "expected an empty or new directory", file=str(out))
    reports = out / "reports"
    if reports.exists():  # decided before anything is replaced: a fresh event log, its reports made anew
        if not (reports / engine.STATE).is_file():
            raise UserError("holds files that are not a report run of ours", file=str(reports))
        engine.remove_run(reports)  # only the files an earlier run of ours wrote
    progress = False if args.no_progress else None
    summary = simulator.simulate(scen, out / "events", workers=args.workers, progress=progress)
    print(summary.render())
    result = engine.report(out / "events", reports, rules, progress=progress, workers=args.workers)
    print(result.render())
    print(f"event log: {out / 'events'}\nreports:   {reports}/<SEC Party ID>/  (manifest: {reports / engine.MANIFEST})")
    _summary_page(out / "events", reports, rules, out)
    if args.no_check:
        return 0
    import time

    from emrr.conformance import checker, output

    started = time.perf_counter()  # what was just written, against the event log it came from
    verdict = checker.check(reports, rules, events=out / "events", workers=args.workers)
    print(output.summary(verdict, str(reports), rules.name, seconds=time.perf_counter() - started))
    return 1 if verdict.errors else 0


def _check(args: argparse.Namespace) -> int:
    """Exit 0: no error (warnings allowed); 1: at least one error; 2: the check could not run."""
    import time

    from emrr import memory
    from emrr.conformance import checker, output
    from emrr.conformance.findings import enabled_checks, parse_selection
    from emrr.rules import ruleset

    selection = {}
    for option in ("select", "ignore"):
        try:
            selection[option] = parse_selection(getattr(args, option))
        except ValueError as exc:
            raise UserError(f"--{option}: {exc}")
    if args.json == "-" and args.junit == "-":
        raise UserError("--json - and --junit -: only one document can go to standard output")
    if args.events is not None and not Path(args.events).is_dir():
        raise UserError("not a directory; expected an event log directory", file=args.events)
    name = args.ruleset
    if name is None and args.events is not None:  # the ruleset of the log's regime
        from emrr.rules.eventlog import EventLog

        name = ruleset.DEFAULT_RULESETS[EventLog.open(args.events).regime]
    rules = ruleset.load(name)
    for warning in rules.warnings:  # what loads but is worth saying (an enum value longer than its field)
        print(f"emrr: warning: {warning}", file=sys.stderr)
    max_examples = args.max_examples or None
    memory.keep_freed_memory()
    started = time.perf_counter()
    verdict = checker.check(args.directory, rules, select=selection["select"] or None, ignore=selection["ignore"],
                            max_examples=max_examples, events=args.events, expect=args.expect,
                            workers=args.workers)
    seconds = time.perf_counter() - started
    # with --json - or --junit -, standard output carries only that document (campaign M9)
    print(output.summary(verdict, args.directory, rules.name, seconds=seconds),
          file=sys.stderr if "-" in (args.json, args.junit) else sys.stdout)
    if args.json:
        _write_json_atomically(args.json, output.as_json(verdict, args.directory, rules.name, max_examples))
    if args.junit:
        enabled = enabled_checks(selection["select"], selection["ignore"], args.events is not None)
        _write_text_output(args.junit, output.junit_xml(verdict, enabled, args.directory))
    if not verdict.checked:  # campaign L2: nothing read is not a pass
        return 2
    return 1 if verdict.errors else 0


def _corpus(args: argparse.Namespace) -> int:
    from emrr.conformance import corpus

    summary = corpus.write(args.directory, args.ruleset)
    print(summary.render())
    return 0


def _diff(args: argparse.Namespace) -> int:
    """Exit 0: nothing breaking; 1: a change breaks a parser built on OLD; 2: could not run."""
    from emrr.rules import diff

    if args.json == "-" and args.markdown == "-":
        raise UserError("--json - and --markdown -: only one document can go to standard output")
    verdict = diff.diff(args.old, args.new)
    # with --json - or --markdown -, standard output carries only that document (as emrr check, campaign M9)
    print(diff.render(verdict), end="", file=sys.stderr if "-" in (args.json, args.markdown) else sys.stdout)
    if args.json:
        _write_text_output(args.json, json.dumps(verdict.as_dict(), indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        _write_text_output(args.markdown, diff.markdown(verdict))
    return 1 if verdict.breaking else 0


def _lint(args: argparse.Namespace) -> int:
    """Exit 0: clean; 1: findings; 2: could not run (the ruleset does not load)."""
    from emrr.rules import lint

    verdict = lint.lint_path(args.ruleset)
    print(lint.render(verdict), end="", file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        _write_text_output(args.json, json.dumps(verdict.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return 1 if verdict.findings else 0


def _impact(args: argparse.Namespace) -> int:
    """Exit 0: it ran; 2: bad input (nothing written)."""
    from emrr.conformance import impact

    if args.json and args.json != "-" and not Path(args.json).resolve().parent.is_dir():
        raise UserError("no such directory to write the JSON in", file=args.json)
    result = impact.impact(args.old, args.new, args.events, args.out, progress=False if args.no_progress else None)
    print(result.render(), file=sys.stderr if args.json == "-" else sys.stdout)
    from emrr import pictures

    page = pictures.impact_page(args.out)  # old and new side by side (docs/pictures.md)
    print(f"summary page: {page}", file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        _write_json_atomically(args.json, result.data)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    """Exit 0: every seed finished; 1: a seed failed (the others are kept); 2: bad input."""
    from emrr import sweep
    from emrr.rules import ruleset

    rules = ruleset.load(args.ruleset)
    result = sweep.sweep(args.scenario, args.first_seed, args.seeds, args.out, rules, workers=args.workers,
                         scheduler=args.scheduler, check=args.check, keep=args.keep,
                         progress=False if args.no_progress else None)
    print(result.render())
    return 1 if result.failed else 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM (systemd, Kubernetes, a CI time-out), raised where the program is, so that it unwinds
    through the same clean-up as Ctrl-C; exit 143 (128 + SIGTERM) rather than 130, as a shell reports it."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop is enough: the clean-up is not interrupted again
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    from emrr import memory

    memory.keep_freed_polars_memory()  # before anything loads Polars (emrr/memory.py)
    on_main_thread = threading.current_thread() is threading.main_thread()  # only it may set a handler
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        args = build_parser().parse_args(argv)
        for option in RESULT_FILE_OPTIONS:
            _check_writable(getattr(args, option, None), option)
        return args.handler(args)
    except UserError as exc:
        print(f"emrr: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        print(f"emrr: {'terminated (SIGTERM)' if terminated else 'interrupted'}; nothing half-written was left "
              "behind", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `emrr check DIR | head`: the reader went away; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process ended by a broken pipe
    except OSError as exc:  # a full disk, a vanished folder: the system's words, one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"emrr: error: {UserError(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours: one line, and where to take it (EMRR_DEBUG=1 shows the traceback)
        if os.environ.get("EMRR_DEBUG"):
            raise
        what = UserError(f"{type(exc).__name__}: {exc}")  # one line, of bounded length
        print(f"emrr: internal error: {what}; this is a bug in emrr: please report it with the command line "
              "(run it again with EMRR_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    raise SystemExit(main())
