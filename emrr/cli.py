"""The ``emrr`` command line.

Exit status: 0 done; 2 bad input (a one-line error on stderr, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from emrr import __version__
from emrr.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 with usage; keep it one line
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emrr", description="ECoS Migration Reporting Regime: simulator, reports, conformance.")
    parser.add_argument("--version", action="version", version=f"emrr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = sub.add_parser("simulate", help="simulate a scenario into a Parquet event log")
    sim.add_argument("scenario", help="scenario YAML file (see docs/scenarios.md)")
    sim.add_argument("--out", required=True, help="event log directory to write (replaced atomically)")
    sim.add_argument("--seed", type=int, help="override the scenario's seed")
    sim.add_argument("--workers", type=int, default=1, help="worker processes (outputs do not depend on it)")
    sim.add_argument("--summary-json", help="also write the summary as JSON to this file")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    sim.set_defaults(handler=_simulate)
    return parser


def _write_json_atomically(path: str, data: dict) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror}", file=path)


def _simulate(args: argparse.Namespace) -> int:
    from sim import run, scenario

    if args.workers < 1:
        raise UserError(f"--workers: expected a whole number of at least 1, got {args.workers}")
    if args.seed is not None and not 0 <= args.seed < 2**64:
        raise UserError(f"--seed: expected a whole number from 0 to 2**64 - 1, got {args.seed}")
    scen = scenario.load(args.scenario, seed=args.seed)
    summary = run.simulate(scen, args.out, workers=args.workers, progress=False if args.no_progress else None)
    print(summary.render())
    print(f"event log: {args.out}")
    if args.summary_json:
        _write_json_atomically(args.summary_json, summary.as_dict())
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UserError as exc:
        print(f"emrr: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("emrr: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
