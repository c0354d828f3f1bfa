"""Protocol evaluation: episodes on their own environments, acted in lockstep batches.

Each episode ``i`` plays on its own environment seeded from ``(seed, i)``, so an episode's
outcome does not depend on how many episodes run or how many run at once (given an ``act``
that treats batch rows independently). All live environments advance together: one
batched ``act`` call per step over the environments still playing. An episode ends at game
over (a life loss does not end it) or at the protocol's step cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.core.seeding import derive_seed
from bench.env.atari import AtariEnv, make_atari
from bench.env.protocol import ProtocolConfig

ActFn = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class EpisodeResult:
    return_: float  # raw game score (unclipped rewards)
    length: int  # agent steps
    truncated: bool  # ended by the step cap rather than by game over


def episode_seed(seed: int, index: int) -> int:
    """The environment seed of evaluation episode ``index``: from ``(seed, index)``."""
    return derive_seed(seed, index, bits=64)


@dataclass
class _Live:
    index: int
    env: AtariEnv
    obs: dict[str, np.ndarray]
    ret: float = 0.0


def evaluate(
    act: ActFn,
    game: str,
    *,
    protocol: ProtocolConfig,
    episodes: int,
    seed: int,
    max_parallel: int | None = None,
) -> list[EpisodeResult]:
    """Play ``episodes`` episodes of ``game``; results in episode-index order.

    ``act`` gets a batch of observations (each array with a leading axis of size B, the
    number of environments still playing) and returns B integer actions, or with
    continuous actions (``protocol.actions``) a float32 array of shape (B, 3). ``max_parallel``
    bounds how many environments exist at once (memory); a finished episode's place goes to
    the next episode index. Deterministic given ``seed`` and a deterministic ``act``.
    """
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
    width = episodes if max_parallel is None else min(max_parallel, episodes)
    results: list[EpisodeResult | None] = [None] * episodes
    live: list[_Live] = []
    next_index = 0
    while next_index < episodes or live:
        while len(live) < width and next_index < episodes:
            env = make_atari(game, seed=episode_seed(seed, next_index), protocol=protocol)
            obs, _ = env.reset()
            live.append(_Live(next_index, env, obs))
            next_index += 1
        batch = {key: np.stack([s.obs[key] for s in live]) for key in live[0].obs}
        actions = _checked(act(batch), len(live), protocol)
        still: list[_Live] = []
        for slot, action in zip(live, actions, strict=True):
            obs, reward, terminated, truncated, info = slot.env.step(action)
            slot.ret += reward
            if terminated or truncated:
                results[slot.index] = EpisodeResult(slot.ret, info["episode_step"], truncated)
            else:
                slot.obs = obs
                still.append(slot)
        live = still
    return [r for r in results if r is not None]


def _checked(actions: np.ndarray, batch: int, protocol: ProtocolConfig) -> list[Any]:
    """One action per live env: ints, or float32 rows of 3 with continuous actions."""
    actions = np.asarray(actions)
    if protocol.actions == "continuous":
        if actions.shape != (batch, 3) or actions.dtype != np.float32:
            raise ValueError(
                f"act returned {actions.dtype} actions of shape {actions.shape}; "
                f"expected float32 of shape ({batch}, 3) (protocol.actions: continuous)"
            )
        return list(actions)
    if actions.shape != (batch,) or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(
            f"act returned {actions.dtype} actions of shape {actions.shape}; "
            f"expected integers of shape ({batch},)"
        )
    return actions.tolist()
