"""What an environment gives an agent: the one type both the env and the agents know."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObsSpec:
    """What the environment gives an agent."""

    num_actions: int
    image_shape: tuple[int, ...] = (4, 84, 84)
    audio_shape: tuple[int, ...] | None = None  # (stack, samples) when audio is on
