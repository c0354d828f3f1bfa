"""The ``slurm`` executor: submitit job arrays, one per resource shape, split to the
cluster's MaxArraySize; returns right after submission. Jobs are checkpointable: on
preemption or timeout submitit requeues them, and each run resumes from its checkpoint.
With ``resources.runs_per_gpu`` above 1 an array task holds gpus x runs_per_gpu runs and
runs them as that many processes on its GPUs (``_PackedJob``)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import submitit

from bench.core.errors import BenchError
from bench.run.executors.base import Outcome
from bench.run.executors.local import PROJECT_ROOT, start_worker
from bench.run.executors.packing import assign, task_groups, visible_gpus
from bench.run.ledger import Ledger
from bench.run.status import FINISHED, State
from bench.run.training_log import LogOptions
from bench.suite.budget import Resources

PACKAGES = ("bench", "agents")


class _RunJob:
    """A checkpointable job: on preemption or timeout submitit requeues it, and the run
    resumes from its last checkpoint.

    submitit calls ``checkpoint`` from its USR2 handler, wherever the run is; nothing needs
    saving then, because the run loop writes a checkpoint every ``budget.checkpoint_every``
    steps (the steps since are done again, identically). A job requeued by SLURM itself
    (``scontrol requeue``, preemption with requeue) is killed and simply starts again.
    """

    def __init__(self, options: LogOptions) -> None:
        self.options = options

    def __call__(self, run_dir: str) -> State:
        from bench.run import loop  # torch and the emulator load when the job starts

        return loop.execute(run_dir, self.options)

    def checkpoint(self, run_dir: str) -> submitit.helpers.DelayedSubmission:
        return submitit.helpers.DelayedSubmission(_RunJob(self.options), run_dir)


class _PackedJob:
    """A checkpointable job of several runs sharing the task's GPUs: one worker process per
    run, ``runs_per_gpu`` on each GPU, the task's cpus split between them. On a requeue
    every run of the task resumes from its own checkpoint (finished ones return at once)."""

    def __init__(self, options: LogOptions, *, runs_per_gpu: int, cpus: int) -> None:
        self.options, self.runs_per_gpu, self.cpus = options, runs_per_gpu, cpus

    def __call__(self, run_dirs: list[str]) -> list[State]:
        return run_packed(
            run_dirs, options=self.options, runs_per_gpu=self.runs_per_gpu, cpus=self.cpus
        )

    def checkpoint(self, run_dirs: list[str]) -> submitit.helpers.DelayedSubmission:
        job = _PackedJob(self.options, runs_per_gpu=self.runs_per_gpu, cpus=self.cpus)
        return submitit.helpers.DelayedSubmission(job, run_dirs)


def run_packed(
    run_dirs: Sequence[str], *, options: LogOptions, runs_per_gpu: int, cpus: int
) -> list[State]:
    """Run ``run_dirs`` at once as worker processes on this task's GPUs (each sees only
    its own); return their final states, a worker that died outside the run loop failed."""
    gpus = visible_gpus()
    where = assign(run_dirs, gpus=gpus, runs_per_gpu=runs_per_gpu) if gpus else {}
    threads = max(1, cpus // max(1, len(run_dirs)))
    procs = [start_worker(Path(d), options, cpus=threads, gpu=where.get(d)) for d in run_dirs]
    states = []
    for run_dir, proc in zip(run_dirs, procs, strict=True):
        code = proc.wait()
        path = Path(run_dir)
        ledger, run_id = Ledger(path.parent.parent), path.name
        status = ledger.status(run_id)
        if code != 0 and status.state not in FINISHED:
            status.state, status.error = State.FAILED, f"worker exited with code {code}"
            ledger.write_status(run_id, status)
        states.append(status.state)
    return states


def cluster_config() -> dict[str, str]:
    """The cluster's settings as ``scontrol show config`` prints them (empty when it fails)."""
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60)
    config = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def max_array_size() -> int:
    """The cluster's MaxArraySize (job arrays hold at most this many tasks)."""
    return int(cluster_config().get("MaxArraySize", 1001))  # 1001: SLURM's default


def snapshot_code(root: Path) -> Path:
    """Copy the project's packages into ``root/code/<content hash>`` and return that folder.

    Jobs start with that folder as working directory, so they import the code as it was at
    submission even if it is edited while they wait. (submitit's RsyncSnapshot needs a git
    checkout and rsync; an installed package has neither.)
    """
    files = sorted(
        p for pkg in PACKAGES for p in (PROJECT_ROOT / pkg).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )  # fmt: skip
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(PROJECT_ROOT)).encode())
        digest.update(p.read_bytes())
    dest = root / "code" / digest.hexdigest()[:12]
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for p in files:
            target = tmp / p.relative_to(PROJECT_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
        tmp.rename(dest)
    return dest


# Every attempt resumes from the run's last checkpoint, so a run longer than its time limit
# goes on over several jobs: up to this many timeouts (submitit's default is 3) before the
# run is recorded as failed ("timed-out too many times"; --retry-failed resumes it).
MAX_TIMEOUTS = 10

# submitit asks SLURM for USR2 this long before the time limit. SLURM checks limits every 30 s
# and signals up to 30 s earlier than asked, so a limit shorter than the delay would signal a
# job as soon as it starts: short limits get a sixth of their length instead.
SIGNAL_DELAY_S = 90


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which a job is told to checkpoint and requeue."""
    return min(SIGNAL_DELAY_S, max(1, time_min * 60 // 6))


def slurm_parameters(resources: Resources, *, suite: str, array_parallelism: int) -> dict[str, Any]:
    """submitit's parameters for a job array of runs that need ``resources``."""
    params: dict[str, Any] = {
        "slurm_array_parallelism": array_parallelism,
        "cpus_per_task": resources.cpus,
        "mem_gb": resources.mem_gb,
        "timeout_min": resources.time_min,
        "slurm_signal_delay_s": signal_delay_s(resources.time_min),
        "slurm_job_name": f"bench-{suite}",
    }
    if resources.gpus:
        params["gpus_per_node"] = resources.gpus
    for key in ("partition", "account", "qos"):
        if getattr(resources, key):
            params[f"slurm_{key}"] = getattr(resources, key)
    return params


class SlurmExecutor:
    name: ClassVar[str] = "slurm"

    def __init__(self, *, array_parallelism: int = 64, array_size: int = 0) -> None:
        for flag, value in (
            ("--array-parallelism", array_parallelism),
            ("--array-size", array_size),
        ):
            if value < 0:
                raise BenchError(f"{flag}: must not be negative, got {value}")
        self.array_parallelism = array_parallelism or 64
        self.array_size = array_size

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--array-parallelism",
            type=int,
            default=64,
            help="slurm: tasks of one array running at once",
        )
        parser.add_argument(
            "--array-size",
            type=int,
            default=0,
            help="slurm: split arrays to at most this many tasks "
            "(always within the cluster's MaxArraySize)",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SlurmExecutor:
        return cls(array_parallelism=args.array_parallelism, array_size=args.array_size)

    def run(self, ledger: Ledger, run_ids: Sequence[str], *, options: LogOptions) -> Outcome:
        """Submit ``run_ids`` as job arrays and return at once; their states are "queued"."""
        if shutil.which("sbatch") is None:
            raise BenchError(
                "executor 'slurm': sbatch not found; valid executors here: local, debug"
            )
        limit = max_array_size()
        size = min(self.array_size or limit, limit)
        groups: dict[Resources, list[str]] = {}
        for run_id in run_ids:
            groups.setdefault(ledger.spec(run_id).resources, []).append(run_id)
        code_dir = snapshot_code(ledger.root)
        arrays: list[str] = []
        cwd = os.getcwd()
        os.chdir(code_dir)  # jobs import the code as it was at submission
        try:
            for resources, ids in groups.items():
                executor = submitit.AutoExecutor(
                    folder=ledger.root / "slurm" / "%j",
                    cluster="slurm",
                    slurm_max_num_timeout=MAX_TIMEOUTS,
                )
                suite = ledger.spec(ids[0]).suite
                executor.update_parameters(
                    **slurm_parameters(
                        resources, suite=suite, array_parallelism=self.array_parallelism
                    )
                )
                tasks = task_groups(ids, per_task=runs_per_task(resources))
                for start in range(0, len(tasks), size):
                    batch = tasks[start : start + size]
                    arrays.append(_submit_array(executor, ledger, batch, resources, options))
        finally:
            os.chdir(cwd)
        return Outcome(
            {r: State.QUEUED for r in run_ids},
            waited=False,
            lines=[
                f"submitted {len(run_ids)} runs as job arrays {', '.join(arrays)}",
                f"follow with: bench status {ledger.root}",
            ],
        )


def runs_per_task(resources: Resources) -> int:
    """Runs in one array task: 1, or gpus x runs_per_gpu when runs are packed."""
    if resources.runs_per_gpu == 1:
        return 1
    return resources.gpus * resources.runs_per_gpu  # packing needs gpus (Resources)


def array_arguments(
    ledger: Ledger, tasks: list[list[str]], resources: Resources, options: LogOptions
) -> tuple[_RunJob | _PackedJob, list[str] | list[list[str]]]:
    """The job and one argument per array task of runs that need ``resources``: a run
    folder each, or with runs packed on GPUs (``runs_per_gpu`` above 1) the list of a
    task's run folders."""
    dirs = [[str(ledger.run_dir(r).resolve()) for r in task] for task in tasks]
    if resources.runs_per_gpu == 1:
        return _RunJob(options), [d for task in dirs for d in task]
    job = _PackedJob(options, runs_per_gpu=resources.runs_per_gpu, cpus=resources.cpus)
    return job, dirs


def _submit_array(
    executor: submitit.AutoExecutor,
    ledger: Ledger,
    tasks: list[list[str]],
    resources: Resources,
    options: LogOptions,
) -> str:
    """One job array of ``tasks`` (run ids per array task), recorded as queued in the
    ledger; returns its job id."""
    job, arguments = array_arguments(ledger, tasks, resources, options)
    jobs = executor.map_array(job, arguments)
    for task, submitted in zip(tasks, jobs, strict=True):
        for run_id in task:
            status = ledger.status(run_id)
            status.state, status.job_id, status.error = State.QUEUED, str(submitted.job_id), ""
            ledger.write_status(run_id, status)
    return str(jobs[0].job_id).split("_")[0]
