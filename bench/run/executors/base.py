"""The executor interface: the ledger and run ids in, run states out.

Shaped like submitit's executors. An executor knows nothing of RL: it hands run folders to
``bench.run.loop.execute`` (in-process, in a subprocess, or in a cluster job), and the
ledger is the single source of truth about every run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from bench.run.ledger import Ledger
from bench.run.status import State
from bench.run.training_log import LogOptions


@dataclass(frozen=True)
class Outcome:
    """What an executor did: each run's state when it returned, and lines for the user."""

    states: dict[str, State]
    waited: bool  # True: the runs have ended; False: they were submitted and may be queued
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r for r, s in self.states.items() if s == State.FAILED]


class Executor(Protocol):
    """Runs the runs of a prepared ledger."""

    name: ClassVar[str]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The executor's own options of ``bench launch``."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Executor:
        """An executor configured from the parsed options of ``bench launch``."""
        ...

    def run(self, ledger: Ledger, run_ids: Sequence[str], *, options: LogOptions) -> Outcome:
        """Run ``run_ids`` (their folders exist in ``ledger``)."""
        ...
