"""The evaluation protocol as a typed config; every field is recorded in each run's metadata.

Defaults are the Atari-100k protocol of the BBF reference code (Dopamine 4.0.5 under BBF's
runner). ``PROTOCOLS`` names the protocol behind each published agent's numbers; where
they differ from the default, the fields say how (see agents/README.md, "Fidelity").
Every field is checked against its range when a config is made, so a suite with an
impossible protocol is refused when it is loaded, never when a run starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from bench.core.config import check_finite, require
from bench.core.spaces import ACTION_KINDS, ActionKind

# What the agent hears: nothing, all 4 x 512 samples of a step, or the last 512 (SEM3's);
# or one of the controls of "on", which give the agent the same observation shapes (and so
# the same network) as "on": "silent" (every step's audio is silence), "shuffled" (every
# step's audio is that of another step of the same env, drawn uniformly from the 1,024
# before it), and
# "image_off" (the sound of "on", every frame blank). bench/env/atari.py applies them where
# the observation is made, so the replay stores what the agent heard.
AudioMode = Literal["off", "on", "sem3", "silent", "shuffled", "image_off"]
AUDIO_MODES: tuple[AudioMode, ...] = get_args(AudioMode)
# The modes whose audio entry is all frame_skip x 512 samples of a step.
FULL_AUDIO_MODES: tuple[AudioMode, ...] = ("on", "silent", "shuffled", "image_off")

# Upper bounds far past any published protocol, so that a typo never allocates a frame
# stack or a frame-skip loop that cannot fit in memory or time.
MAX_FRAME_SKIP = 64
MAX_IMAGE_SIZE = 512
MAX_FRAME_STACK = 64
MAX_NOOPS = 100_000
MAX_EPISODE_STEPS = 10_000_000
# What one no-op start is: an emulator frame (Dopamine's DER runner calls ale.act(0)), or an
# agent step of NOOP through the frame skip and pooling (BBF's runner calls env.step(0)).
NoopUnit = Literal["frame", "agent_step"]
NOOP_UNITS: tuple[NoopUnit, ...] = get_args(NoopUnit)
# The first observation after frame no-ops: the screen after them, or the screen of the reset
# before them (Dopamine's DER runner pools its screen buffers, last filled at the reset).
NoopObservation = Literal["after", "before"]
NOOP_OBSERVATIONS: tuple[NoopObservation, ...] = get_args(NoopObservation)
# The image of a step that stops early (life loss or game over inside the frame skip):
#   fresh             the screen of the frame where it stopped, pooled with the step's
#                     other fetched screens (no stale pixels);
#   fetch_then_break  Dopamine >= 4.0.4: screens are fetched at the pooled positions only,
#                     then the loop breaks; positions not reached keep the previous step's
#                     screens (at a stop in the first 2 of 4 frames: the previous image);
#   break_then_fetch  Dopamine <= 4.0.3 (2021): the loop breaks before fetching, so the
#                     frame where it stopped is never seen.
TerminalFrame = Literal["fresh", "fetch_then_break", "break_then_fetch"]
TERMINAL_FRAMES: tuple[TerminalFrame, ...] = get_args(TerminalFrame)
# OpenCV's interpolation to image_size: area (Dopamine) or bilinear (SPR's rlpyt env).
Resize = Literal["area", "linear"]
RESIZES: tuple[Resize, ...] = get_args(Resize)


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
    noop_unit: NoopUnit = "agent_step"  # BBF: up to 29 x 4 frames; DER's runner: frames
    noop_observation: NoopObservation = "after"  # "before": DER runner's stale reset screen
    life_loss_terminal: bool = True  # terminal for learning only; the episode goes on
    terminal_frame: TerminalFrame = "fetch_then_break"  # the image at an early stop, above
    resize: Resize = "area"  # "linear": SPR's env
    # Whether a life loss (when it is a learning terminal) ends the frame skip at its frame;
    # SPR's env plays all frame_skip frames (a game over ends the skip either way).
    stop_at_life_loss: bool = True
    # rlpyt's _life_reset (SPR's env): one more NOOP emulator frame after every reset,
    # before the no-op starts, and after every life loss, whose reward is dropped; the image
    # of a life-loss step is then that frame's screen alone when the stack is cleared.
    life_reset_noop: bool = False
    clip_rewards: bool = True  # learning reward only; scores always use raw rewards
    max_episode_steps: int = 27_000  # agent steps (108,000 frames); truncation, not terminal
    audio: AudioMode = "off"  # on: 4 x 512 samples per step; sem3: last 512; or a control
    eval_epsilon: float = 0.001
    # How the agent acts: the minimal (or full) joystick action set, or CALE, ale-py's
    # continuous actions (radius, angle, fire) mapped onto the joystick on the same emulator.
    actions: ActionKind = "discrete"
    continuous_threshold: float = 0.5  # ale-py's continuous_action_threshold default

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
            ("noop_unit", self.noop_unit in NOOP_UNITS, ", ".join(NOOP_UNITS)),
            (
                "noop_observation",
                self.noop_observation in NOOP_OBSERVATIONS,
                ", ".join(NOOP_OBSERVATIONS),
            ),
            ("terminal_frame", self.terminal_frame in TERMINAL_FRAMES, ", ".join(TERMINAL_FRAMES)),
            ("resize", self.resize in RESIZES, ", ".join(RESIZES)),
            ("actions", self.actions in ACTION_KINDS, ", ".join(ACTION_KINDS)),
            ("continuous_threshold", 0 <= self.continuous_threshold <= 1, "0..1"),
        )
        for name, ok, valid in rules:
            require(ok, name, getattr(self, name), valid)


# The protocol behind each published agent's numbers (agents/README.md, "Fidelity").
PROTOCOLS: dict[str, ProtocolConfig] = {
    # BBF and SR-SPR: BBF's DataEfficientAtariRunner over Dopamine 4.0.5's preprocessing.
    "bbf": ProtocolConfig(),
    # DER (100 runs): Dopamine's labs/atari_100k MaxEpisodeEvalRunner (2021-08-24, 88ca537):
    # no-ops are raw emulator frames and the first image is the reset screen; its
    # preprocessing broke out of the frame skip before fetching the screen.
    "der": ProtocolConfig(
        noop_unit="frame", noop_observation="before", terminal_frame="break_then_fetch"
    ),
    # SPR (the published runs): SPR's own rlpyt AtariEnv (mila-iqia/spr 0b9dd4e,
    # src/rlpyt_atari_env.py): 1 + (1..30) NOOP frames at a reset (lines 133-138, 214-216);
    # every frame of the skip played through a life loss, then one NOOP frame (146-152);
    # frames 3 and 4 pooled (148, 186-188); a bilinear resize (189).
    "spr": ProtocolConfig(
        noop_min=1,
        noop_max=30,
        noop_unit="frame",
        terminal_frame="fresh",
        resize="linear",
        stop_at_life_loss=False,
        life_reset_noop=True,
        max_episode_steps=27_001,  # `step_counter >= horizon` before counting (155-158)
    ),
}


# ale-py's continuous action space (``AtariEnv(continuous=True).action_space``): radius in
# [0, 1], angle in [-pi, pi], fire in [0, 1], float32 bounds given here as Python floats.
CALE_ACTION_LOW: tuple[float, ...] = (0.0, -3.1415927410125732, 0.0)
CALE_ACTION_HIGH: tuple[float, ...] = (1.0, 3.1415927410125732, 1.0)
# ale-py 0.12.0 fixed the continuous mapping of both axes (down-left took a wrong action
# before): continuous results of earlier versions are not comparable.
CALE_MIN_ALE_PY = (0, 12, 0)

# Fields added after runs were first recorded, and what they were until then.
_ADDED_DEFAULTS = {"actions": "discrete", "continuous_threshold": 0.5}
# Fields added later still, which count in an identity only when they differ from what the
# env did before they existed: runs recorded before them keep their ids.
ADDED_BEHAVIOUR = {"resize": "area", "stop_at_life_loss": True, "life_reset_noop": False}


def protocol_identity(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a protocol (as a dict) that define a run, for its run id and protocol id.

    The action-space fields count only with continuous actions: discrete runs keep the ids
    they had before the fields existed, and the threshold means nothing to them. The fields
    of ``ADDED_BEHAVIOUR`` count only where they differ from the behaviour before them.
    """
    if data.get("actions", "discrete") == "continuous":
        out = {**_ADDED_DEFAULTS, **data}
    else:
        out = {k: v for k, v in data.items() if k not in _ADDED_DEFAULTS}
    return {k: v for k, v in out.items() if k not in ADDED_BEHAVIOUR or v != ADDED_BEHAVIOUR[k]}
