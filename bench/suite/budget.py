"""What a run may spend: its env-step budget and evaluation schedule, and the resources of
the job that runs it. Recorded in every run's config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    env_steps: int = 100_000  # agent steps in the one training environment
    eval_every: int = 0  # periodic evaluation every N env steps (0: none), for learning curves
    eval_episodes: int = 10  # episodes per periodic evaluation
    final_eval_episodes: int = 100  # each on its own environment
    checkpoint_every: int = 10_000  # env steps between checkpoints (for exact resume)
    log_every: int = 1_000  # env steps between training-metrics records (0: none)


# Fields that change what is recorded about a run, never its results: left out of run ids.
RECORDING_FIELDS = ("log_every",)


@dataclass(frozen=True)
class Resources:
    cpus: int = 1
    gpus: int = 0
    mem_gb: float = 8.0
    time_min: int = 720
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
