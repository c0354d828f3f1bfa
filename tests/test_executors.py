"""One executor interface: the CLI's choices are the registry, and any registered executor
gets the prepared ledger and the run ids, and returns run states."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import ClassVar

import pytest

from bench.cli import main as cli
from bench.run.executors import EXECUTORS, Outcome
from bench.run.executors.debug import DebugExecutor
from bench.run.ledger import Ledger
from bench.run.status import State
from bench.run.training_log import LogOptions

SUITE = """
name: tiny
games: [Pong]
seeds: 2
variants: [{name: rnd, agent: random}]
budget: {env_steps: 40, final_eval_episodes: 1, checkpoint_every: 20, log_every: 20}
protocol: {max_episode_steps: 30}
"""


class RecordingExecutor:
    """Runs in-process like ``debug`` and remembers what it was given."""

    name: ClassVar[str] = "recording"
    calls: ClassVar[list[tuple[Ledger, list[str], LogOptions, str]]] = []

    def __init__(self, tag: str) -> None:
        self.tag = tag

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--recording-tag", default="none")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RecordingExecutor:
        return cls(args.recording_tag)

    def run(self, ledger: Ledger, run_ids: Sequence[str], *, options: LogOptions) -> Outcome:
        self.calls.append((ledger, list(run_ids), options, self.tag))
        return DebugExecutor().run(ledger, run_ids, options=options)


def test_cli_choices_are_the_registry() -> None:
    parser = cli.build_parser()
    launch = parser._subparsers._group_actions[0].choices["launch"]  # type: ignore[union-attr]
    executor = next(a for a in launch._actions if a.dest == "executor")
    assert list(executor.choices) == list(EXECUTORS) == ["local", "debug", "slurm"]
    assert executor.default == "local"


def test_a_registered_executor_gets_the_ledger_and_run_ids(
    write_suite, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(EXECUTORS, "recording", RecordingExecutor)
    RecordingExecutor.calls.clear()
    out = tmp_path / "ledger"
    argv = [
        "launch",
        str(write_suite(SUITE)),
        "--out",
        str(out),
        "--executor",
        "recording",
        "--recording-tag",
        "t1",
        "--tensorboard",
    ]
    assert cli.main(argv) == 0
    ((ledger, run_ids, options, tag),) = RecordingExecutor.calls
    assert ledger.root == out and tag == "t1" and options == LogOptions(tensorboard=True)
    assert sorted(run_ids) == sorted(ledger.run_ids()) and len(run_ids) == 2
    assert all(ledger.status(r).state == State.DONE for r in run_ids)
    assert cli.main(argv) == 0  # everything done: the executor is not called again
    assert len(RecordingExecutor.calls) == 1


def test_outcome_lists_failed_runs() -> None:
    outcome = Outcome({"a": State.DONE, "b": State.FAILED, "c": State.FAILED}, waited=True)
    assert outcome.failed == ["b", "c"]


def test_negative_max_parallel_is_a_one_line_error(write_suite, tmp_path, capsys) -> None:
    argv = ["launch", str(write_suite(SUITE)), "--out", str(tmp_path / "l"), "--max-parallel", "-1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --max-parallel: must be 0 (automatic) or positive, got -1"
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize("name", list(EXECUTORS))
def test_every_executor_has_the_interface(name: str) -> None:
    cls = EXECUTORS[name]
    assert cls.name == name
    parser = argparse.ArgumentParser()
    cls.add_arguments(parser)
    executor = cls.from_args(parser.parse_args([]))
    assert callable(executor.run)
