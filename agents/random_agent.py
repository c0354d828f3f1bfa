"""A uniformly random agent: the floor of every comparison, and a cheap driver for tests.

Discrete: each action index equally likely. Continuous: each dimension uniform within its
bounds (as ale-py's ``action_space.sample()`` and Dopamine's warm-up actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.protocol import ObsSpec, Transition
from agents.registry import AgentEntry, register
from bench.core.seeding import sequence


@dataclass(frozen=True)
class RandomConfig:
    replay_ratio: float = 0.0  # learns nothing; present so replay-ratio sweeps accept it


class RandomAgent:
    def __init__(self, config: RandomConfig, *, obs_spec: ObsSpec, seed: int) -> None:
        self.config = config
        self.spec = obs_spec
        self._rng = np.random.default_rng(sequence(seed))
        self._eval_rng = np.random.default_rng(sequence(seed, 1))
        self._steps = 0

    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        rng = self._eval_rng if eval_mode else self._rng
        batch = len(obs["image"])
        if self.spec.continuous:
            low, high = self.spec.action_low, self.spec.action_high
            return rng.uniform(low, high, (batch, len(low))).astype(np.float32)
        return rng.integers(self.spec.num_actions, size=batch, dtype=np.int64)

    def observe(self, transition: Transition) -> None:
        self._steps += 1

    def metrics(self) -> dict[str, float]:
        return {"env_steps": float(self._steps)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self._rng.bit_generator.state,
            "eval_rng": self._eval_rng.bit_generator.state,
            "steps": self._steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._eval_rng.bit_generator.state = state["eval_rng"]
        self._steps = state["steps"]


def _make(
    config: RandomConfig, *, obs_spec: ObsSpec, seed: int, device: str = "cpu"
) -> RandomAgent:
    return RandomAgent(config, obs_spec=obs_spec, seed=seed)


ENTRY = register(
    AgentEntry(
        name="random",
        config_cls=RandomConfig,
        factory=_make,
        presets={"random": RandomConfig()},
        default_preset="random",
        description="uniformly random actions",
        action_kinds=("discrete", "continuous"),
    )
)
