"""The evaluation protocol as a typed config; every field is recorded in each run's metadata.

Defaults are the Atari-100k protocol of the BBF reference code (Dopamine-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from bench.core.spaces import ActionKind

# What the agent hears: nothing, all 4 x 512 samples of a step, or the last 512 (SEM3's).
AudioMode = Literal["off", "on", "sem3"]
AUDIO_MODES: tuple[AudioMode, ...] = get_args(AudioMode)


@dataclass(frozen=True)
class ProtocolConfig:
    sticky_actions: float = 0.0  # repeat_action_probability; 0.25 is the newer-papers option
    full_action_space: bool = False  # minimal action set by default
    frame_skip: int = 4
    max_pool_frames: int = 2  # pixel-wise max over the last N frames of each skip
    image_size: int = 84  # square, area interpolation
    frame_stack: int = 4
    noop_min: int = 0  # no-op starts: uniform in [noop_min, noop_max] after every reset
    noop_max: int = 29  # SPR's code uses 1..30
    life_loss_terminal: bool = True  # terminal for learning only; the episode goes on
    clip_rewards: bool = True  # learning reward only; scores always use raw rewards
    max_episode_steps: int = 27_000  # agent steps (108,000 frames); truncation, not terminal
    audio: AudioMode = "off"  # on: 4 x 512 samples per step; sem3: last 512
    eval_epsilon: float = 0.001
    # How the agent acts: the minimal (or full) joystick action set, or CALE, ale-py's
    # continuous actions (radius, angle, fire) mapped onto the joystick on the same emulator.
    actions: ActionKind = "discrete"
    continuous_threshold: float = 0.5  # ale-py's continuous_action_threshold default


# ale-py's continuous action space (``AtariEnv(continuous=True).action_space``): radius in
# [0, 1], angle in [-pi, pi], fire in [0, 1], float32 bounds given here as Python floats.
CALE_ACTION_LOW: tuple[float, ...] = (0.0, -3.1415927410125732, 0.0)
CALE_ACTION_HIGH: tuple[float, ...] = (1.0, 3.1415927410125732, 1.0)
# ale-py 0.12.0 fixed the continuous mapping of both axes (down-left took a wrong action
# before): continuous results of earlier versions are not comparable.
CALE_MIN_ALE_PY = (0, 12, 0)

# Fields added after runs were first recorded, and what they were until then.
_ADDED_DEFAULTS = {"actions": "discrete", "continuous_threshold": 0.5}


def protocol_identity(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a protocol (as a dict) that define a run, for its run id and protocol id.

    The action-space fields count only with continuous actions: discrete runs keep the ids
    they had before the fields existed, and the threshold means nothing to them.
    """
    if data.get("actions", "discrete") == "continuous":
        return {**_ADDED_DEFAULTS, **data}
    return {k: v for k, v in data.items() if k not in _ADDED_DEFAULTS}
