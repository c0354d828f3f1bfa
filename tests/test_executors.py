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


# -- several runs per GPU (resources.runs_per_gpu) ---------------------------------------
def test_packing_functions() -> None:
    from bench.run.executors.packing import assign, pick_gpu, task_groups

    runs = [f"r{i}" for i in range(7)]
    assert task_groups(runs, per_task=4) == [runs[:4], runs[4:]]
    assert task_groups(runs, per_task=1) == [[r] for r in runs]
    # spread over the GPUs before stacking, at most runs_per_gpu each
    got = assign(runs[:8], gpus=["0", "1", "2", "3"], runs_per_gpu=2)
    assert got == {"r0": "0", "r1": "1", "r2": "2", "r3": "3", "r4": "0", "r5": "1", "r6": "2"}
    assert assign(runs[:4], gpus=["5"], runs_per_gpu=4) == dict.fromkeys(runs[:4], "5")
    with pytest.raises(ValueError, match="5 runs do not fit 1 GPUs x 4"):
        assign(runs[:5], gpus=["0"], runs_per_gpu=4)
    assert pick_gpu({"0": 2, "1": 1, "2": 1}, runs_per_gpu=3) == "1"  # least loaded, first
    assert pick_gpu({"0": 3, "1": 3}, runs_per_gpu=3) is None


def test_runs_per_gpu_is_checked_and_not_part_of_the_run_id(write_suite, capsys) -> None:
    from bench.suite.budget import Resources
    from bench.suite.expand import expand
    from bench.suite.load import load_suite

    assert Resources(gpus=1, runs_per_gpu=4).runs_per_gpu == 4
    packed = write_suite(SUITE + "resources: {gpus: 1, runs_per_gpu: 4}\n")
    single = write_suite(SUITE + "resources: {gpus: 1}\n")
    ids = [s.run_id for s in expand(load_suite(packed))]
    assert ids == [s.run_id for s in expand(load_suite(single))]
    bad = write_suite(SUITE + "resources: {runs_per_gpu: 2}\n")
    assert cli.main(["plan", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "runs_per_gpu" in err and "more than 1 needs gpus of at least 1" in err
    assert len(err.splitlines()) == 1


def test_a_slurm_array_task_holds_runs_per_gpu_runs(write_suite, tmp_path) -> None:
    """The arguments of the job array: 2 tasks of 2 run folders for 4 runs at 2 per GPU;
    one task run here (no cluster, no GPU) finishes both of its runs as 2 processes."""
    import pickle

    from bench.run.executors.packing import task_groups
    from bench.run.executors.slurm import _PackedJob, array_arguments, runs_per_task
    from bench.suite.expand import expand
    from bench.suite.load import load_suite

    suite = load_suite(write_suite(SUITE.replace("seeds: 2", "seeds: 4") + _PACKED))
    ledger = Ledger(tmp_path / "ledger")
    ledger.prepare(expand(suite))
    ids = ledger.run_ids()
    resources = ledger.spec(ids[0]).resources
    tasks = task_groups(ids, per_task=runs_per_task(resources))
    job, arguments = array_arguments(ledger, tasks, resources, LogOptions())
    assert isinstance(job, _PackedJob) and (job.runs_per_gpu, job.cpus) == (2, 2)
    assert arguments == [[str(ledger.run_dir(r).resolve()) for r in t] for t in tasks]
    assert [len(a) for a in arguments] == [2, 2]
    restored = pickle.loads(pickle.dumps(job))  # submitit pickles the job for each task
    assert restored(arguments[0]) == [State.DONE, State.DONE]
    done = {r for r in ids if ledger.status(r).state == State.DONE}
    assert done == set(tasks[0])
    requeued = job.checkpoint(arguments[1])  # a requeue resumes the same runs
    assert requeued.args == (arguments[1],)


_PACKED = "resources: {cpus: 2, gpus: 1, runs_per_gpu: 2}\n"
