"""Launching runs on an executor: ``debug`` (in-process), ``local`` (subprocesses under a
concurrency cap) or ``slurm`` (submitit job arrays). Executors know nothing of RL: they hand
run folders to ``bench.run.loop.execute``, and the ledger is the single source of truth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from bench.core.errors import BenchError
from bench.run.ledger import Ledger
from bench.run.status import Status
from bench.suite.expand import RunSpec

log = logging.getLogger("bench.run.executors.launch_old")

EXECUTORS = ("local", "debug", "slurm")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("bench", "agents")


# ---------------------------------------------------------------- debug


def run_debug(ledger: Ledger, run_ids: list[str]) -> dict[str, str]:
    """Run every run in this process, one after another (tests, debugging)."""
    from bench.run.loop import execute

    return {r: execute(ledger.run_dir(r)) for r in run_ids}


# ---------------------------------------------------------------- local


def _worker_env(cpus: int) -> dict[str, str]:
    env = dict(os.environ)
    # Subprocesses import this very code, installed or not.
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(max(1, cpus))
    return env


def run_local(
    ledger: Ledger,
    specs: dict[str, RunSpec],
    run_ids: list[str],
    *,
    max_parallel: int,
    stream: TextIO | None = None,
    poll_s: float = 0.5,
) -> dict[str, str]:
    """Run ``run_ids`` as subprocesses, at most ``max_parallel`` at once.

    submitit's LocalExecutor starts every job at once; a 50-run suite on a laptop needs a cap.
    Progress bars on a terminal, plain log lines otherwise.
    """
    stream = stream or sys.stderr
    queue = list(run_ids)
    active: dict[str, subprocess.Popen] = {}
    results: dict[str, str] = {}
    view = _Progress(stream, total=len(run_ids), specs=specs)
    try:
        while queue or active:
            while queue and len(active) < max_parallel:
                run_id = queue.pop(0)
                cpus = specs[run_id].resources.cpus
                with open(ledger.run_dir(run_id) / "worker.err", "ab") as err:
                    active[run_id] = subprocess.Popen(
                        [sys.executable, "-m", "bench.run.worker", str(ledger.run_dir(run_id))],
                        env=_worker_env(cpus),
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                view.started(run_id)
            time.sleep(poll_s)
            for run_id, proc in list(active.items()):
                status = ledger.status(run_id)
                if proc.poll() is None:
                    view.update(run_id, status.env_step)
                    continue
                del active[run_id]
                if proc.returncode != 0 and status.state not in ("done", "failed"):
                    # Killed or crashed outside the run loop's own error handling.
                    status.state = "failed"
                    status.error = _last_line(ledger.run_dir(run_id) / "worker.err") or (
                        f"worker exited with code {proc.returncode}"
                    )
                    ledger.write_status(run_id, status)
                results[run_id] = status.state
                view.finished(run_id, status)
    finally:
        for proc in active.values():
            proc.terminate()
        view.close()
    return results


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:500] if lines else ""


class _Progress:
    """tqdm bars on a terminal (overall runs + one bar per active run), log lines otherwise."""

    def __init__(self, stream: TextIO, *, total: int, specs: dict[str, RunSpec]) -> None:
        self.stream, self.specs, self.total = stream, specs, total
        self.tty = stream.isatty()
        self.done = 0
        self.bars: dict = {}
        if self.tty:
            from tqdm import tqdm

            self.tqdm = tqdm
            self.overall = tqdm(total=total, desc="runs", unit="run", position=0, file=stream)

    def _line(self, text: str) -> None:
        print(f"[{self.done}/{self.total}] {text}", file=self.stream, flush=True)

    def started(self, run_id: str) -> None:
        spec = self.specs[run_id]
        if self.tty:
            free = next(i for i in range(1, len(self.bars) + 2)
                        if i not in {b.pos for b in self.bars.values()})  # fmt: skip
            self.bars[run_id] = self.tqdm(
                total=spec.budget.env_steps, desc=f"{spec.game} s{spec.seed} {spec.algorithm}",
                unit="step", position=free, leave=False, file=self.stream,
            )  # fmt: skip
        else:
            self._line(f"start {run_id} ({spec.algorithm})")

    def update(self, run_id: str, env_step: int) -> None:
        if self.tty and run_id in self.bars:
            bar = self.bars[run_id]
            bar.update(max(0, env_step - bar.n))

    def finished(self, run_id: str, status: Status) -> None:
        self.done += 1
        if self.tty:
            self.bars.pop(run_id).close()
            self.overall.update(1)
            if status.state == "failed":
                self.overall.write(f"failed {run_id}: {status.error}")
        else:
            extra = f": {status.error}" if status.state == "failed" else ""
            self._line(f"{status.state} {run_id}{extra}")

    def close(self) -> None:
        if self.tty:
            for bar in self.bars.values():
                bar.close()
            self.overall.close()


# ---------------------------------------------------------------- slurm


class _RunJob:
    """A checkpointable job: on preemption or timeout submitit requeues it, and the run
    resumes from its last checkpoint."""

    def __call__(self, run_dir: str) -> str:
        from bench.run.loop import execute

        return execute(run_dir)

    def checkpoint(self, run_dir: str):  # noqa: ANN201 - submitit's protocol
        import submitit

        return submitit.helpers.DelayedSubmission(_RunJob(), run_dir)


def max_array_size() -> int:
    """The cluster's MaxArraySize (job arrays hold at most this many tasks)."""
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            return int(value.strip())
    return 1001  # SLURM's default


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


def submit_slurm(
    ledger: Ledger,
    specs: dict[str, RunSpec],
    run_ids: list[str],
    *,
    array_parallelism: int,
    array_size: int | None = None,
) -> list[str]:
    """Submit ``run_ids`` as job arrays (one per resource shape, split to MaxArraySize);
    returns the array job ids. Returns right after submission."""
    import submitit

    if shutil.which("sbatch") is None:
        raise BenchError("executor 'slurm': sbatch not found; valid executors here: local, debug")
    size = min(array_size or max_array_size(), max_array_size())
    groups: dict[tuple, list[str]] = {}
    for run_id in run_ids:
        groups.setdefault(tuple(sorted(vars(specs[run_id].resources).items())), []).append(run_id)
    code_dir = snapshot_code(ledger.root)
    submitted: list[str] = []
    cwd = os.getcwd()
    os.chdir(code_dir)
    try:
        for resources_key, ids in groups.items():
            res = dict(resources_key)
            executor = submitit.AutoExecutor(folder=ledger.root / "slurm" / "%j", cluster="slurm")
            params: dict = {
                "slurm_array_parallelism": array_parallelism,
                "cpus_per_task": res["cpus"],
                "mem_gb": res["mem_gb"],
                "timeout_min": res["time_min"],
                "slurm_job_name": f"bench-{specs[ids[0]].suite}",
            }
            if res["gpus"]:
                params["gpus_per_node"] = res["gpus"]
            for key in ("partition", "account", "qos"):
                if res[key]:
                    params[f"slurm_{key}"] = res[key]
            executor.update_parameters(**params)
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                jobs = executor.map_array(
                    _RunJob(), [str(ledger.run_dir(r).resolve()) for r in chunk]
                )
                for run_id, job in zip(chunk, jobs, strict=True):
                    status = ledger.status(run_id)
                    status.state, status.job_id, status.error = "queued", str(job.job_id), ""
                    ledger.write_status(run_id, status)
                submitted.append(str(jobs[0].job_id).split("_")[0])
    finally:
        os.chdir(cwd)
    return submitted
