"""The evaluation protocol as a typed config; every field is recorded in each run's metadata.

Defaults are the Atari-100k protocol of the BBF reference code (Dopamine-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

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
