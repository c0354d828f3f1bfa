"""What training does, recorded every ``budget.log_every`` env steps: the agent's
``metrics()`` (losses, epsilon, n, gamma, gradient steps, resets, replay size, ...) and the
loop's own steps per second.

Sinks: ``metrics.jsonl`` in the run folder always (one JSON object a line, ``env_step``
first); TensorBoard event files in the same folder with ``--tensorboard`` (so
``tensorboard --logdir runs/<suite>`` shows every run); a Weights & Biases run with
``--wandb`` (offline unless ``WANDB_MODE`` says otherwise; its id is the run id, so a resumed
run continues the same W&B run).

A resumed run continues each series from its checkpoint: lines logged after the checkpoint
by the attempt that was killed are dropped from ``metrics.jsonl`` and purged from
TensorBoard's view, then logged again, identically, by the resumed attempt.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.core.errors import BenchError
from bench.run.ledger import atomic_write

METRICS_FILE = "metrics.jsonl"
WANDB_PROJECT = "atari100k-bench"


@dataclass(frozen=True)
class LogOptions:
    """Where training metrics go besides ``metrics.jsonl``; never part of a run's identity."""

    tensorboard: bool = False
    wandb: bool = False

    def check(self) -> None:
        """A one-line error, before anything is written, when a sink's package is missing."""
        for name in ("tensorboard", "wandb"):
            if getattr(self, name) and importlib.util.find_spec(name) is None:
                raise BenchError(
                    f"--{name}: the {name} package is not installed; "
                    f"install it with: pip install 'atari100k-bench[{name}]'"
                )

    def to_argv(self) -> list[str]:
        return [f"--{name}" for name in ("tensorboard", "wandb") if getattr(self, name)]


class Sink(Protocol):
    def write(self, env_step: int, values: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a torn last line (a kill mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise BenchError(f"{path}:{i + 1}: corrupt metrics line") from None
    return records


class JsonlSink:
    """``metrics.jsonl``: appended and flushed line by line."""

    def __init__(self, path: Path, *, resume_step: int) -> None:
        kept = [r for r in read_metrics(path) if r.get("env_step", math.inf) <= resume_step]
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(path, "a")  # noqa: SIM115 - held for the run, closed by close()

    def write(self, env_step: int, values: Mapping[str, float]) -> None:
        self._file.write(json.dumps({"env_step": env_step, **values}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalar event files in the run folder, one tag per metric."""

    def __init__(self, run_dir: Path, *, resume_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional: the tensorboard extra

        # purge_step hides, from TensorBoard's readers, what a killed attempt logged after
        # the checkpoint this attempt resumes from.
        purge = resume_step + 1 if resume_step > 0 else None
        self._writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge)

    def write(self, env_step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(name, value, global_step=env_step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """One W&B run per run id, resumed by id; offline by default (``WANDB_MODE`` decides)."""

    def __init__(self, run_dir: Path, *, run_id: str, config: Mapping[str, Any]) -> None:
        import wandb  # optional: the wandb extra

        self._run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
            id=run_id,
            name=run_id,
            group=str(config.get("suite", "")),
            job_type=str(config.get("algorithm", "")),
            config=dict(config),
            dir=str(run_dir),
            mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
            resume="allow",
        )

    def write(self, env_step: int, values: Mapping[str, float]) -> None:
        self._run.log(dict(values), step=env_step)

    def close(self) -> None:
        self._run.finish()


class TrainingLog:
    """Every sink of one run attempt."""

    def __init__(
        self,
        run_dir: Path,
        *,
        resume_step: int,
        options: LogOptions,
        config: Mapping[str, Any],
    ) -> None:
        self.sinks: list[Sink] = [JsonlSink(run_dir / METRICS_FILE, resume_step=resume_step)]
        if options.tensorboard:
            self.sinks.append(TensorBoardSink(run_dir, resume_step=resume_step))
        if options.wandb:
            self.sinks.append(WandbSink(run_dir, run_id=run_dir.name, config=config))

    def write(self, env_step: int, values: Mapping[str, float]) -> None:
        floats = {k: float(v) for k, v in values.items()}
        for sink in self.sinks:
            sink.write(env_step, floats)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
