"""What a run may spend: its env-step budget and evaluation schedule, and the resources of
the job that runs it. Recorded in every run's config.

Both check their fields when made (so a suite is refused when it is loaded):

* ``env_steps`` 1..10^9; ``eval_every`` 0 (none) or less than ``env_steps`` (a periodic
  evaluation falls due before the last step, which has the final one: a larger value would
  silently give no learning curve); ``eval_episodes`` at least 1 when there are periodic
  evaluations; ``final_eval_episodes`` 1..10,000 (each is its own environment).
* ``checkpoint_every`` (at least 1) and ``log_every`` (0: none) may exceed ``env_steps``, as
  small test budgets do: then the run never checkpoints (a killed run starts over) and
  records its training metrics once, at its end.
* resources: 1..1024 cpus, 0..64 gpus, 1..64 runs_per_gpu (above 1 only with gpus),
  memory in (0, 10^6] GB, 1..525,600 minutes (a year); partition, account and qos are
  names (``bench.core.names``; several comma-separated), since they reach ``sbatch``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.config import check_finite, require
from bench.core.names import NAME_RULE, is_name

MAX_ENV_STEPS = 10**9
MAX_EPISODES = 10_000


@dataclass(frozen=True)
class Budget:
    env_steps: int = 100_000  # agent steps in the one training environment
    eval_every: int = 0  # periodic evaluation every N env steps (0: none), for learning curves
    eval_episodes: int = 10  # episodes per periodic evaluation
    final_eval_episodes: int = 100  # each on its own environment
    checkpoint_every: int = 10_000  # env steps between checkpoints (for exact resume)
    log_every: int = 1_000  # env steps between training-metrics records (0: none)

    def __post_init__(self) -> None:
        least = 1 if self.eval_every else 0
        rules = (
            ("env_steps", 1 <= self.env_steps <= MAX_ENV_STEPS, f"1..{MAX_ENV_STEPS}"),
            (
                "eval_every",
                0 <= self.eval_every < self.env_steps,
                f"0 (none) or 1..env_steps-1 ({self.env_steps - 1})",
            ),
            (
                "eval_episodes",
                least <= self.eval_episodes <= MAX_EPISODES,
                f"{least}..{MAX_EPISODES}" + (" with eval_every set" if least else ""),
            ),
            (
                "final_eval_episodes",
                1 <= self.final_eval_episodes <= MAX_EPISODES,
                f"1..{MAX_EPISODES}",
            ),
            (
                "checkpoint_every",
                1 <= self.checkpoint_every <= MAX_ENV_STEPS,
                f"1..{MAX_ENV_STEPS}",
            ),
            (
                "log_every",
                0 <= self.log_every <= MAX_ENV_STEPS,
                f"0 (no metrics) or 1..{MAX_ENV_STEPS}",
            ),
        )
        for name, ok, valid in rules:
            require(ok, name, getattr(self, name), valid)


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
    # Runs sharing each GPU (bench/run/executors/packing.py): a SLURM array task holds
    # gpus x runs_per_gpu runs, which share its cpus and memory; not part of a run's id.
    runs_per_gpu: int = 1

    def __post_init__(self) -> None:
        check_finite(self)
        rules = (
            ("cpus", 1 <= self.cpus <= 1024, "1..1024"),
            ("gpus", 0 <= self.gpus <= 64, "0..64"),
            (
                "runs_per_gpu",
                1 <= self.runs_per_gpu <= 64 and (self.gpus >= 1 or self.runs_per_gpu == 1),
                "1..64 (more than 1 needs gpus of at least 1)",
            ),
            ("mem_gb", 0 < self.mem_gb <= 1e6, "more than 0, at most 1e6"),
            ("time_min", 1 <= self.time_min <= 525_600, "1..525600"),
            *(
                (name, _slurm_names(getattr(self, name)), f"names ({NAME_RULE}), comma-separated")
                for name in ("partition", "account", "qos")
            ),
        )
        for name, ok, valid in rules:
            require(ok, name, getattr(self, name), valid)


def _slurm_names(value: str | None) -> bool:
    """None, or SLURM names as ``sbatch`` takes them (``gpu,cpu``): nothing else reaches it."""
    return value is None or all(is_name(part) for part in value.split(","))
