"""The ``local`` executor: each run in its own subprocess, at most ``--max-parallel`` at once.

submitit's LocalExecutor starts every job at once; a 50-run suite on a laptop needs a cap.
Runs that ask for a GPU (``resources.gpus``) on a machine with GPUs get one each through
``CUDA_VISIBLE_DEVICES``, at most ``resources.runs_per_gpu`` runs per GPU at once
(``packing.pick_gpu``). Progress bars on a terminal, plain log lines otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO

from tqdm import tqdm

from bench.core.errors import BenchError
from bench.run.executors.base import Outcome
from bench.run.executors.packing import pick_gpu, visible_gpus
from bench.run.ledger import Ledger
from bench.run.status import FINISHED, State, Status
from bench.run.training_log import LogOptions
from bench.suite.expand import RunSpec

PROJECT_ROOT = Path(__file__).resolve().parents[3]
POLL_S = 0.5


def worker_env(cpus: int, gpu: str | None = None) -> dict[str, str]:
    """The environment of a worker process: this very code importable, ``cpus`` threads,
    and only ``gpu`` visible when one is given."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    paths = [str(PROJECT_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(max(1, cpus))
    return env


def start_worker(
    run_dir: Path, options: LogOptions, *, cpus: int, gpu: str | None = None
) -> subprocess.Popen:
    """``python -m bench.run.worker`` on ``run_dir`` (``worker_env``), its stderr appended to
    the run's ``worker.err``."""
    with open(run_dir / "worker.err", "ab") as err:  # the process keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "bench.run.worker", str(run_dir), *options.to_argv()],
            env=worker_env(cpus, gpu),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


class LocalExecutor:
    name: ClassVar[str] = "local"

    def __init__(self, *, max_parallel: int = 0, stream: TextIO | None = None) -> None:
        if max_parallel < 0:
            raise BenchError(
                f"--max-parallel: must be 0 (automatic) or positive, got {max_parallel}"
            )
        self.max_parallel = max_parallel
        self.stream = stream

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-parallel",
            type=int,
            default=0,
            help="local: runs at once (default: cores / cpus per run)",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LocalExecutor:
        return cls(max_parallel=args.max_parallel)

    def run(self, ledger: Ledger, run_ids: Sequence[str], *, options: LogOptions) -> Outcome:
        specs = {r: ledger.spec(r) for r in run_ids}
        cpus = max((s.resources.cpus for s in specs.values()), default=1)
        cap = self.max_parallel or max(1, (os.cpu_count() or 1) // cpus)
        gpus = visible_gpus() if any(s.resources.gpus for s in specs.values()) else []
        per_gpu = max((s.resources.runs_per_gpu for s in specs.values()), default=1)
        if gpus:  # a run per GPU slot
            cap = min(cap, len(gpus) * per_gpu) if self.max_parallel else len(gpus) * per_gpu
        pool = _Pool(ledger, specs, options=options, stream=self.stream or sys.stderr)
        pool.gpu_load = dict.fromkeys(gpus, 0)
        try:
            states = pool.run(list(run_ids), cap=cap)
        finally:
            pool.close()
        return Outcome(states, waited=True)


class _Pool:
    """Worker subprocesses under a cap; the ledger says how each run ended."""

    def __init__(
        self, ledger: Ledger, specs: dict[str, RunSpec], *, options: LogOptions, stream: TextIO
    ) -> None:
        self.ledger, self.specs, self.options = ledger, specs, options
        self.active: dict[str, subprocess.Popen[bytes]] = {}
        self.view = _Progress(stream, total=len(specs), specs=specs)
        self.gpu_load: dict[str, int] = {}  # runs on each GPU now (none: no GPUs)
        self.gpu_of: dict[str, str] = {}

    def run(self, queue: list[str], *, cap: int) -> dict[str, State]:
        results: dict[str, State] = {}
        while queue or self.active:
            while queue and len(self.active) < cap:
                self.start(queue.pop(0))
            time.sleep(POLL_S)
            for run_id, proc in list(self.active.items()):
                status = self.ledger.status(run_id)
                if proc.poll() is None:
                    self.view.update(run_id, status.env_step)
                    continue
                del self.active[run_id]
                if run_id in self.gpu_of:
                    self.gpu_load[self.gpu_of.pop(run_id)] -= 1
                results[run_id] = self.ended(run_id, proc.returncode, status)
        return results

    def start(self, run_id: str) -> None:
        run_dir = self.ledger.run_dir(run_id)
        resources = self.specs[run_id].resources
        gpu = None
        if resources.gpus and self.gpu_load:
            gpu = pick_gpu(self.gpu_load, runs_per_gpu=resources.runs_per_gpu)
            gpu = gpu if gpu is not None else min(self.gpu_load, key=self.gpu_load.__getitem__)
            self.gpu_load[gpu] += 1
            self.gpu_of[run_id] = gpu
        self.active[run_id] = start_worker(run_dir, self.options, cpus=resources.cpus, gpu=gpu)
        self.view.started(run_id)

    def ended(self, run_id: str, returncode: int, status: Status) -> State:
        if returncode != 0 and status.state not in FINISHED:
            # Killed or crashed outside the run loop's own error handling.
            status.state = State.FAILED
            status.error = _last_line(self.ledger.run_dir(run_id) / "worker.err") or (
                f"worker exited with code {returncode}"
            )
            self.ledger.write_status(run_id, status)
        self.view.finished(run_id, status)
        return status.state

    def close(self) -> None:
        for proc in self.active.values():
            proc.terminate()
        self.view.close()


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
        self.bars: dict[str, Any] = {}
        if self.tty:
            self.overall = tqdm(total=total, desc="runs", unit="run", position=0, file=stream)

    def _line(self, text: str) -> None:
        print(f"[{self.done}/{self.total}] {text}", file=self.stream, flush=True)

    def started(self, run_id: str) -> None:
        spec = self.specs[run_id]
        if not self.tty:
            self._line(f"start {run_id} ({spec.algorithm})")
            return
        taken = {b.pos for b in self.bars.values()}
        free = next(i for i in range(1, len(self.bars) + 2) if i not in taken)
        self.bars[run_id] = tqdm(
            total=spec.budget.env_steps,
            desc=f"{spec.game} s{spec.seed} {spec.algorithm}",
            unit="step",
            position=free,
            leave=False,
            file=self.stream,
        )

    def update(self, run_id: str, env_step: int) -> None:
        if self.tty and run_id in self.bars:
            bar = self.bars[run_id]
            bar.update(max(0, env_step - bar.n))

    def finished(self, run_id: str, status: Status) -> None:
        self.done += 1
        if self.tty:
            self.bars.pop(run_id).close()
            self.overall.update(1)
            if status.state == State.FAILED:
                self.overall.write(f"failed {run_id}: {status.error}")
        else:
            extra = f": {status.error}" if status.state == State.FAILED else ""
            self._line(f"{status.state} {run_id}{extra}")

    def close(self) -> None:
        if self.tty:
            for bar in self.bars.values():
                bar.close()
            self.overall.close()
