"""The ``bench`` command: plan, launch, status, report, agents, perf, games."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from bench.cli import agents, games, report, runs
from bench.core.errors import BenchError, one_line


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a bad option is a BenchError: one ``error:`` line, exit 2
    (argparse itself prints its usage first). Subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise BenchError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench", description="Benchmark and ablation harness for sample-efficient Atari RL"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    runs.add_commands(sub)  # plan, launch, status
    p = sub.add_parser("report", help="statistics, tables and figures from ledgers and baselines")
    report.add_arguments(p)
    p.set_defaults(func=report.main)
    agents.add_commands(sub)  # agents, perf
    games.add_commands(sub)  # games, games --audio
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; a BenchError (bad input) is one ``error:`` line and exit code 2."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except BenchError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; relaunch to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
