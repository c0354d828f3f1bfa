"""The ``debug`` executor: every run in this process, one after another (tests, debugging)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import ClassVar

from bench.run.executors.base import Outcome
from bench.run.ledger import Ledger
from bench.run.training_log import LogOptions


class DebugExecutor:
    name: ClassVar[str] = "debug"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        pass

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DebugExecutor:
        return cls()

    def run(self, ledger: Ledger, run_ids: Sequence[str], *, options: LogOptions) -> Outcome:
        from bench.run import loop  # torch and the emulator load when a run starts

        states = {r: loop.execute(ledger.run_dir(r), options) for r in run_ids}
        return Outcome(states, waited=True)
