"""What an environment gives an agent: the one type both the env and the agents know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# How an agent acts: one of ``num_actions`` joystick actions (int64), or a vector of
# ``action_dim`` floats within [action_low, action_high] (float32), as ale-py's CALE takes.
ActionKind = Literal["discrete", "continuous"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)


@dataclass(frozen=True)
class ObsSpec:
    """What the environment gives an agent, and the actions it takes back."""

    num_actions: int  # discrete: actions to choose from; continuous: 0
    image_shape: tuple[int, ...] = (4, 84, 84)
    audio_shape: tuple[int, ...] | None = None  # (stack, samples) when audio is on
    action_kind: ActionKind = "discrete"
    action_low: tuple[float, ...] = ()  # continuous: the lower bound of each dimension
    action_high: tuple[float, ...] = ()  # continuous: the upper bound of each dimension

    def __post_init__(self) -> None:
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f"action_kind must be one of {ACTION_KINDS}, got {self.action_kind!r}")
        if self.action_kind == "continuous":
            low, high = self.action_low, self.action_high
            ordered = len(low) == len(high) and all(a < b for a, b in zip(low, high, strict=True))
            if not low or not ordered:
                raise ValueError(f"continuous actions need bounds low < high, got {low}, {high}")
        elif self.action_low or self.action_high:
            raise ValueError("discrete actions have no bounds")

    @property
    def continuous(self) -> bool:
        return self.action_kind == "continuous"

    @property
    def action_dim(self) -> int:
        """Floats per continuous action; 0 for discrete actions."""
        return len(self.action_low)

    @classmethod
    def for_continuous(
        cls,
        low: tuple[float, ...],
        high: tuple[float, ...],
        *,
        image_shape: tuple[int, ...] = (4, 84, 84),
        audio_shape: tuple[int, ...] | None = None,
    ) -> ObsSpec:
        """The spec of an env that takes continuous actions bounded by ``low``, ``high``."""
        return cls(
            num_actions=0,
            image_shape=image_shape,
            audio_shape=audio_shape,
            action_kind="continuous",
            action_low=tuple(float(x) for x in low),
            action_high=tuple(float(x) for x in high),
        )
