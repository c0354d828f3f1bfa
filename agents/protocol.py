"""The agent protocol: the only thing the run loop knows about an agent.

Observations are dicts of uint8 arrays, batched along the first axis when acting:
  "image": (B, stack, 84, 84)          grayscale frame stack, newest last
  "audio": (B, stack, samples)         present only when the env has audio on;
                                       samples = 2048 (4 frames x 512) or 512 (sem3 mode)
A Transition carries one step of the single training environment, unbatched.

Actions follow ``ObsSpec.action_kind``: discrete actions are int64 indices (an int in a
Transition); continuous actions are float32 vectors of ``ObsSpec.action_dim`` within the
spec's bounds ((B, action_dim) when acting, one vector in a Transition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.core.spaces import ObsSpec

__all__ = ["Agent", "ObsSpec", "Transition", "single_action"]


@dataclass(frozen=True)
class Transition:
    """One training step as the learner sees it.

    ``reward`` and ``terminal`` are the learning signals chosen by the protocol (clipped
    reward; game over or, by default, a life loss). ``episode_end`` is true when the env
    episode itself ended (game over or the step cap): ``next_obs`` then belongs to the
    finished episode and the next ``act`` sees a fresh reset observation.
    """

    obs: dict[str, np.ndarray]
    action: int | np.ndarray  # an index, or a float32 vector with continuous actions
    reward: float
    terminal: bool
    episode_end: bool
    next_obs: dict[str, np.ndarray]


@runtime_checkable
class Agent(Protocol):
    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        """Actions for a batch of observations: int64 of shape (B,), or with continuous
        actions float32 of shape (B, action_dim) within the spec's bounds.

        Training mode explores with the agent's schedule; eval mode never changes training
        state (counters, RNGs used for training). ``epsilon`` is the protocol's evaluation
        epsilon (``ProtocolConfig.eval_epsilon``), which the harness passes in eval mode:
        the protocol is its one source, so the value recorded with a run (and compared
        before runs are pooled) is the one acted with. Agents that do not act
        epsilon-greedily may ignore it.
        """
        ...

    def observe(self, transition: Transition) -> None:
        """Record one training step and learn from replay as the agent's schedule says."""
        ...

    def metrics(self) -> dict[str, float]:
        """Scalars worth logging now (losses, epsilon, gradient steps, ...)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The complete state: networks, optimizer, replay, RNGs, counters.

        ``load_state_dict(state_dict())`` on a fresh agent of the same config continues
        training exactly as if it had never stopped.
        """
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def single_action(actions: np.ndarray) -> int | np.ndarray:
    """The action of a batch of one, as an env steps with it and a Transition holds it:
    an int, or a float32 vector (a copy) with continuous actions."""
    if np.issubdtype(actions.dtype, np.integer):
        return int(actions[0])
    return np.array(actions[0], dtype=np.float32)
