"""The evaluation protocol as a typed config; every field is recorded in each run's metadata.

Defaults are the Atari-100k protocol of the BBF reference code (Dopamine-based). Every field
is checked against its range when a config is made, so a suite with an impossible protocol
is refused when it is loaded, never when a run starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from bench.core.config import check_finite, require

# What the agent hears: nothing, all 4 x 512 samples of a step, or the last 512 (SEM3's).
AudioMode = Literal["off", "on", "sem3"]
AUDIO_MODES: tuple[AudioMode, ...] = get_args(AudioMode)

# Upper bounds far past any published protocol, so that a typo never allocates a frame
# stack or a frame-skip loop that cannot fit in memory or time.
MAX_FRAME_SKIP = 64
MAX_IMAGE_SIZE = 512
MAX_FRAME_STACK = 64
MAX_NOOPS = 100_000
MAX_EPISODE_STEPS = 10_000_000


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

    def __post_init__(self) -> None:
        check_finite(self)
        rules = (
            ("sticky_actions", 0 <= self.sticky_actions <= 1, "0..1"),
            ("frame_skip", 1 <= self.frame_skip <= MAX_FRAME_SKIP, f"1..{MAX_FRAME_SKIP}"),
            (
                "max_pool_frames",
                1 <= self.max_pool_frames <= self.frame_skip,
                f"1..frame_skip ({self.frame_skip})",
            ),
            ("image_size", 1 <= self.image_size <= MAX_IMAGE_SIZE, f"1..{MAX_IMAGE_SIZE}"),
            ("frame_stack", 1 <= self.frame_stack <= MAX_FRAME_STACK, f"1..{MAX_FRAME_STACK}"),
            ("noop_max", 0 <= self.noop_max <= MAX_NOOPS, f"0..{MAX_NOOPS}"),
            ("noop_min", 0 <= self.noop_min <= self.noop_max, f"0..noop_max ({self.noop_max})"),
            (
                "max_episode_steps",
                1 <= self.max_episode_steps <= MAX_EPISODE_STEPS,
                f"1..{MAX_EPISODE_STEPS}",
            ),
            ("audio", self.audio in AUDIO_MODES, ", ".join(AUDIO_MODES)),
            ("eval_epsilon", 0 <= self.eval_epsilon <= 1, "0..1"),
        )
        for name, ok, valid in rules:
            require(ok, name, getattr(self, name), valid)
