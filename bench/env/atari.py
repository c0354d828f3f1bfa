"""The Atari-100k environment: ale-py with the protocol's preprocessing and optional audio.

Built directly on ``ale_py.ALEInterface`` with the emulator's own frame skip off
(``frame_skip=1``): the skip loop runs here so that the audio of every emulator frame can
be collected (stock ale-py returns only the last frame's 512 samples when it skips).

One agent step, with the default protocol:
  - the action is repeated for 4 emulator frames; the rewards of the frames are summed;
  - the new image is the pixel-wise max of the grayscale screens of the last 2 frames,
    resized to 84x84 with area interpolation (``cv2.INTER_AREA``; ``resize: linear``:
    bilinear, SPR's env);
  - with audio "on", the new audio entry is the concatenation of ``getAudio()`` after each
    of the 4 frames (4 x 512 = 2,048 uint8 samples, silence = 128); with "sem3", only the
    last frame's 512 samples (what SEM3's code fed its agent);
  - on a life loss the loop stops at the frame where the life was lost; the audio slots of
    the frames that were not emulated are silence. The image then depends on the protocol's
    ``terminal_frame``: "fresh" pools the screens the step fetched (those among the last 2
    positions, and the frame where the loop stopped); Dopamine's "fetch_then_break" and
    "break_then_fetch" keep two screen buffers across steps, as Dopamine does, and pool both,
    so positions the step did not reach hold the previous step's screens. With
    ``stop_at_life_loss: false`` (SPR's env) the loop plays all frames through a life loss;
    with ``life_reset_noop`` one more NOOP frame follows every reset and life loss (rlpyt's
    ``_life_reset``, its reward dropped), and a life-loss step's image is that frame's screen.

How the stacks are formed (an agent's replay can rebuild them from the newest entries):
  - ``obs["image"]`` is ``(frame_stack, 84, 84)`` and ``obs["audio"]`` is
    ``(frame_stack, samples)``, oldest first, newest last;
  - each step shifts both stacks by one and appends the step's new entry;
  - after a reset, and after a life loss (when the protocol treats life loss as a learning
    terminal), every entry but the newest is zero. Zero is padding, distinct from silence
    (128) in the audio stack;
  - the reset observation's newest audio entry is silence: ale-py synthesizes nothing on
    reset, and what ``getAudio()`` holds then is stale sound from before it (after no-ops
    taken as agent steps, it is the last no-op step's sound, like its image).
  A replay therefore stores each step's newest image (7,056 bytes) and newest audio entry
  (2,048 or 512 bytes) once, with the episode and life boundaries, and rebuilds a stack by
  taking the last ``frame_stack`` entries of the same episode and life, zero-filled before
  its first entry. The acting path and the replay path then see identical stacks.

The audio controls (``protocol.audio``; the same observation shapes as "on", so the same
network) are applied to each new stack entry as it is made, so that the agent, its replay
and a resumed run all hold what the agent heard:
  - "silent": the entry is silence (128); the zero padding of the stacks stays;
  - "shuffled": the entry is the true audio entry of another step of this env, drawn
    uniformly from the last ``SHUFFLE_WINDOW`` entries before it (all of them while there
    are fewer; the first entry after seeding, a reset's silence, has none and is silence).
    Each true entry is then heard about once (more often within the first window), at a
    random offset of up to ``SHUFFLE_WINDOW`` steps (about 70 s of game time): the sound's
    distribution over the run is kept, its timing with the game is not. A uniform draw from
    the whole past would instead hear the run's first steps far more often than its last.
    Draws come from a generator seeded from the env's seed; the window of true entries and
    the generator are part of the env's state. Each evaluation episode's env shuffles its
    own sound;
  - "image_off": the image stack is all zeros (every frame blank), the sound is "on"'s.

Continuous actions (``protocol.actions: continuous``, CALE): the agent's action is a
float32 vector (radius, angle, fire) within ``CALE_ACTION_LOW``/``CALE_ACTION_HIGH``. As
ale-py's own ``AtariEnv(continuous=True)`` does (0.12 and later), it becomes the joystick
action whose horizontal part is x = r cos(angle) beyond +-threshold, whose vertical part is
y = r sin(angle) beyond +-threshold, with fire when fire > threshold; every emulator frame
of the step is then ``act(joystick, r)`` (the radius is the paddle strength, which games
played with a joystick ignore). Frame skip, pooling, audio, life losses and the step cap
are the same as with discrete actions.

No-op starts: after every reset, a uniform number in [noop_min, noop_max] of NOOP starts,
drawn from a generator seeded from the env's seed. With ``noop_unit`` "agent_step" (BBF's
runner) each is an agent step of NOOP through the frame skip and pooling, a learning
terminal among them resets the game, and the reset observation is the last one's image.
With "frame" (Dopamine's DER runner, OpenAI Baselines, Gymnasium's AtariPreprocessing) each
is one emulator frame; the reset observation is the screen after them ("after") or, as
Dopamine's DER runner gives it, the screen of the reset before them ("before").

Observations returned by ``reset`` and ``step`` are fresh arrays, never views of the env's
buffers: callers may keep them.

Exact resume: ``get_state``/``set_state`` capture the emulator (with its RNG), the stacks,
the no-op generator, the episode counters and a log of the resets and actions since the
env was seeded (continuous actions in a log of their own), in a picklable dict. ale-py's
emulator snapshot does not include the audio synthesis state: restored from it, the sound
differs from an uninterrupted run for the rest of the episode and into the next (measured
in Assault: every step of the episode, then the first ~20 steps after the next reset).
``set_state`` therefore, by default when audio is on, rebuilds the env by replaying the log
on a freshly seeded emulator (as long as emulating those steps took) and checks the result
against the snapshot; the sound is then exact, wherever the checkpoint was taken.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from array import array
from typing import Any, NamedTuple

import ale_py
import cv2
import gymnasium as gym
import numpy as np
from ale_py import roms
from gymnasium import spaces

from bench.core.seeding import spawn
from bench.core.spaces import ObsSpec
from bench.env.games import get_game
from bench.env.protocol import (
    AUDIO_MODES,
    CALE_ACTION_HIGH,
    CALE_ACTION_LOW,
    CALE_MIN_ALE_PY,
    FULL_AUDIO_MODES,
    NOOP_OBSERVATIONS,
    NOOP_UNITS,
    RESIZES,
    TERMINAL_FRAMES,
    ProtocolConfig,
    protocol_identity,
)

AUDIO_FRAME_SAMPLES = 512  # ale-py synthesizes 512 samples per emulator frame (31,400 Hz)
SILENCE = 128  # uint8 audio: the zero of the waveform
# "shuffled" audio: the true audio entries drawn from, a ring of the last 1,024 (2 MB at
# 2,048 samples; the pages a short evaluation episode's env never fills are never touched).
SHUFFLE_WINDOW = 1024
# 2: the pooled screen buffers are part of the state. The continuous actions' log
# ("float_log") is optional within version 2: a state without it has none (discrete).
STATE_VERSION = 2
DEFAULT_PROTOCOL = ProtocolConfig()

# Extra rows in the stack ring buffers: the stacks are contiguous windows that slide along
# the ring; every RING_SLACK steps the newest frame_stack - 1 rows move back to the start.
# One small copy per RING_SLACK steps instead of a shift of the whole stack every step.
RING_SLACK = 32
RESET_MARK = -1  # in the replay log of resets and actions
StepResult = tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]
ActionInput = int | np.integer | np.ndarray  # an index, or a continuous action vector


def audio_samples(protocol: ProtocolConfig) -> int:
    """Samples in one audio stack entry: 0 (off), frame_skip x 512 (on and its controls),
    512 (sem3)."""
    if protocol.audio in FULL_AUDIO_MODES:
        return protocol.frame_skip * AUDIO_FRAME_SAMPLES
    if protocol.audio == "sem3":
        return AUDIO_FRAME_SAMPLES
    return 0


def derive_seeds(seed: int) -> tuple[int, np.random.SeedSequence, np.random.SeedSequence]:
    """The emulator's ``random_seed``, the no-op generator's seed and the "shuffled" audio
    control's seed, from an env seed."""
    ale_seq, noop_seq, shuffle_seq = spawn(seed, 3)
    # ALE takes a signed 32-bit int.
    return int(ale_seq.generate_state(1, np.uint32)[0] >> 1), noop_seq, shuffle_seq


class _Skip(NamedTuple):
    """What the frame-skip loop of one agent step saw."""

    reward: int  # raw, summed over the emulated frames
    emulated: int  # emulator frames run (fewer than frame_skip when the loop stopped early)
    fetched: int  # grayscale screens fetched for pooling
    life_loss: bool
    game_over: bool


def shuffle_step(window: np.ndarray, seen: int, entry: np.ndarray, rng: np.random.Generator) -> int:
    """Replace ``entry`` (in place) with one of the last ``min(seen, N)`` true entries,
    drawn uniformly (silence when there are none), then store its true value in the ring
    ``window`` (N, samples) of the last N, which holds ``seen`` entries so far. Returns
    ``seen + 1``."""
    true = entry.copy()
    kept = min(seen, len(window))
    if kept:
        entry[:] = window[int(rng.integers(kept))]
    else:
        entry.fill(SILENCE)
    window[seen % len(window)] = true
    return seen + 1


def version_tuple(version: str) -> tuple[int, int, int]:
    """ "0.12.1" -> (0, 12, 1); a pre-release ("0.12.0rc1") counts as its release."""
    numbers = []
    for part in version.split(".")[:3]:
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.group() != part:
            break
    major, minor, patch = (numbers + [0, 0, 0])[:3]
    return major, minor, patch


def check_cale_support(version: str = ale_py.__version__) -> None:
    """Continuous actions need ale-py >= 0.12.0, whose mapping of both axes is correct."""
    if version_tuple(version) < CALE_MIN_ALE_PY:
        need = ".".join(map(str, CALE_MIN_ALE_PY))
        raise RuntimeError(
            f"protocol.actions: continuous needs ale-py >= {need} (earlier versions map the "
            f"continuous actions' axes wrongly); this is ale-py {version}: pip install "
            f"'ale-py>={need}'"
        )


@functools.cache
def joystick_actions() -> dict[tuple[int, int, bool], ale_py.Action]:
    """(horizontal -1/0/1, vertical -1/0/1, fire) -> the joystick action of the full set."""
    table = {}
    for h, horizontal in ((-1, "LEFT"), (0, ""), (1, "RIGHT")):
        for v, vertical in ((-1, "DOWN"), (0, ""), (1, "UP")):
            for fire in (False, True):
                name = vertical + horizontal + ("FIRE" if fire else "")
                table[h, v, fire] = getattr(ale_py.Action, name or "NOOP")
    return table


def continuous_to_joystick(action: np.ndarray, threshold: float) -> ale_py.Action:
    """The joystick action of a CALE action (radius, angle, fire), float32 arithmetic as in
    ale-py's env: x = r cos(angle) and y = r sin(angle) against +-threshold, fire > threshold."""
    radius, angle, fire = action[0], action[1], action[2]
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    horizontal = int(x > threshold) - int(x < -threshold)
    vertical = int(y > threshold) - int(y < -threshold)
    return joystick_actions()[horizontal, vertical, bool(fire > threshold)]


def _check_protocol(protocol: ProtocolConfig) -> None:
    p = protocol
    if p.actions not in ("discrete", "continuous"):
        raise ValueError(f"actions must be discrete or continuous, got {p.actions!r}")
    if not 0.0 <= p.continuous_threshold <= 1.0:
        raise ValueError(f"continuous_threshold must be in [0, 1], got {p.continuous_threshold}")
    if p.actions == "continuous":
        check_cale_support()
    if p.audio not in AUDIO_MODES:
        raise ValueError(f"audio must be one of {AUDIO_MODES}, got {p.audio!r}")
    if p.frame_skip < 1:
        raise ValueError(f"frame_skip must be >= 1, got {p.frame_skip}")
    if not 1 <= p.max_pool_frames <= p.frame_skip:
        raise ValueError(f"max_pool_frames must be in [1, frame_skip], got {p.max_pool_frames}")
    if p.frame_stack < 1 or p.image_size < 1:
        raise ValueError("frame_stack and image_size must be >= 1")
    if not 0 <= p.noop_min <= p.noop_max:
        raise ValueError(f"need 0 <= noop_min <= noop_max, got [{p.noop_min}, {p.noop_max}]")
    if p.max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {p.max_episode_steps}")
    if not 0.0 <= p.sticky_actions <= 1.0:
        raise ValueError(f"sticky_actions must be in [0, 1], got {p.sticky_actions}")
    choices = (
        ("noop_unit", p.noop_unit, NOOP_UNITS),
        ("noop_observation", p.noop_observation, NOOP_OBSERVATIONS),
        ("terminal_frame", p.terminal_frame, TERMINAL_FRAMES),
        ("resize", p.resize, RESIZES),
    )
    for name, value, valid in choices:
        if value not in valid:
            raise ValueError(f"{name} must be one of {valid}, got {value!r}")
    if p.noop_unit == "agent_step" and p.noop_observation != "after":
        raise ValueError('noop_observation "before" needs noop_unit "frame"')


class AtariEnv(gym.Env[dict[str, np.ndarray], ActionInput]):
    """One Atari game under the protocol. Build it with :func:`make_atari`.

    ``step`` returns the RAW game reward (scores); the learning signals are in ``info``:
    ``learn_reward`` (clipped when the protocol clips) and ``learn_terminal`` (game over,
    or a life loss when the protocol says so). ``terminated`` is game over only;
    ``truncated`` is the protocol's step cap. Other keys: ``lives``, ``life_loss``,
    ``episode_step`` (agent steps), ``episode_frame_number`` (emulator frames, no-ops
    included), ``episode_return`` (raw), ``frames`` (emulated in this step).

    With continuous actions (CALE) ``step`` takes a float32 vector of 3 within the bounds
    of ``action_space``; ``num_actions`` is then 0.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, game: str, *, seed: int, protocol: ProtocolConfig = DEFAULT_PROTOCOL):
        _check_protocol(protocol)
        self.game = get_game(game).name
        self.protocol = protocol
        p = protocol
        self._skip = p.frame_skip
        self._pool = p.max_pool_frames
        self._stack = p.frame_stack
        self._size = p.image_size
        self._audio = p.audio
        self._samples = audio_samples(p)
        # Dopamine ties all of a life loss's effects to terminal_on_life_loss: with it off,
        # the skip loop runs on and the agent's stack is not reset.
        self._life_boundary = p.life_loss_terminal
        self._fresh_stop = p.terminal_frame == "fresh"
        self._break_first = p.terminal_frame == "break_then_fetch"
        self._stop_at_life_loss = self._life_boundary and p.stop_at_life_loss
        self._life_noop = p.life_reset_noop
        self._interpolation = cv2.INTER_LINEAR if p.resize == "linear" else cv2.INTER_AREA

        # The banner and ROM messages go to stderr on construction; keep only errors.
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        self._ale = ale_py.ALEInterface()
        rom = roms.get_rom_path(get_game(game).rom_id)
        if rom is None:
            raise ValueError(f"ale-py has no ROM for {self.game}")
        self._rom = rom
        self._noop_rng: np.random.Generator
        self._seed(seed)

        ale = self._ale
        actions = ale.getLegalActionSet() if p.full_action_space else ale.getMinimalActionSet()
        self._actions: list[ale_py.Action] = list(actions)
        self._continuous = p.actions == "continuous"
        self._threshold = p.continuous_threshold
        self.num_actions = 0 if self._continuous else len(self._actions)
        self.action_space = self._action_space()
        # gymnasium types Dict as Space[dict[str, Space]], though its samples are dicts of
        # the subspaces' samples (arrays here).
        self.observation_space = self._observation_space()  # type: ignore[assignment]
        self._allocate(*ale.getScreenDims())
        self._pos = 0  # the stacks are ring[pos : pos + stack]
        self._lives = 0
        self._t = 0
        self._return = 0.0
        self._noops = 0
        self._needs_reset = True

    def _action_space(self) -> spaces.Space[Any]:
        """The joystick actions' indices, or ale-py's continuous (radius, angle, fire) box."""
        if not self._continuous:
            return spaces.Discrete(self.num_actions)
        low = np.array(CALE_ACTION_LOW, np.float32)
        return spaces.Box(low, np.array(CALE_ACTION_HIGH, np.float32), (3,), np.float32)

    def _observation_space(self) -> spaces.Dict:
        """The uint8 image stack, and the audio stack when audio is on."""
        img_shape = (self._stack, self._size, self._size)
        obs_spaces: dict[str, spaces.Space[Any]] = {
            "image": spaces.Box(0, 255, img_shape, np.uint8)
        }
        if self._samples:
            obs_spaces["audio"] = spaces.Box(0, 255, (self._stack, self._samples), np.uint8)
        return spaces.Dict(obs_spaces)

    def _allocate(self, h: int, w: int) -> None:
        """The buffers ``step`` writes into, made once: screens of ``h`` x ``w`` pixels to
        pool, and the stack rings with their row views."""
        self._frames = np.zeros((self._pool, h, w), np.uint8)  # grayscale screens to pool
        self._pooled = np.zeros((h, w), np.uint8)
        rows = self._stack - 1 + RING_SLACK
        self._img_ring = np.zeros((rows, self._size, self._size), np.uint8)
        self._img_rows = list(self._img_ring)  # views, made once
        self._aud_ring = np.zeros((rows, max(self._samples, 1)), np.uint8)
        self._aud_rows = list(self._aud_ring)
        # Per row, the 512-sample slot of each emulator frame of a step (audio "on").
        self._aud_slots = [
            [
                row[i * AUDIO_FRAME_SAMPLES : (i + 1) * AUDIO_FRAME_SAMPLES]
                for i in range(self._skip)
            ]
            if self._audio in FULL_AUDIO_MODES
            else []
            for row in self._aud_rows
        ]

    # ----------------------------------------------------------------------------- seeding
    def _seed(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        ale_seed, noop_seq, shuffle_seq = derive_seeds(self.seed)
        ale = self._ale
        ale.setInt("random_seed", ale_seed)
        ale.setFloat("repeat_action_probability", float(self.protocol.sticky_actions))
        ale.setInt("frame_skip", 1)  # the skip loop is ours (audio after every frame)
        ale.setInt("max_num_frames_per_episode", 0)  # the step cap is ours, in agent steps
        ale.setBool("sound_obs", self._samples > 0)
        ale.loadROM(self._rom)  # applies the settings above
        self._noop_rng = np.random.default_rng(noop_seq)
        # Gymnasium's own RNG slot: the no-op generator is this env's only Python-side RNG.
        self._np_random = self._noop_rng
        self._np_random_seed = self.seed
        # Every reset (-1) and action since this seed: replaying it on a fresh env rebuilds
        # the emulator exactly, audio included (see set_state). Continuous actions log the
        # joystick action here and their 3 floats in a log of their own.
        self._log = array("b")
        self._float_log = array("f")
        # "shuffled": the window of true audio entries and its generator.
        self._shuffle_rng = np.random.default_rng(shuffle_seq)
        shuffled = self._audio == "shuffled"
        self._shuffle_pool = np.zeros((SHUFFLE_WINDOW if shuffled else 0, self._samples), np.uint8)
        self._shuffle_seen = 0

    # ------------------------------------------------------------------------------ spaces
    def obs_spec(self) -> ObsSpec:
        """What this env gives an agent."""
        audio_shape = (self._stack, self._samples) if self._samples else None
        image_shape = (self._stack, self._size, self._size)
        if self._continuous:
            return ObsSpec.for_continuous(
                CALE_ACTION_LOW, CALE_ACTION_HIGH, image_shape=image_shape, audio_shape=audio_shape
            )
        return ObsSpec(
            num_actions=self.num_actions, image_shape=image_shape, audio_shape=audio_shape
        )

    # --------------------------------------------------------------------------- the stack
    def _advance(self) -> int:
        """Slide the stack window by one; returns the ring row of the new newest entry."""
        pos = self._pos + 1
        if pos + self._stack > len(self._img_rows):
            keep = self._stack - 1
            self._img_ring[:keep] = self._img_ring[pos : pos + keep]
            if self._samples:
                self._aud_ring[:keep] = self._aud_ring[pos : pos + keep]
            pos = 0
        self._pos = pos
        return pos + self._stack - 1

    def _clear_older(self) -> None:
        """Zero every stack entry but the newest (after a reset or a life loss)."""
        pos, newest = self._pos, self._pos + self._stack - 1
        self._img_ring[pos:newest] = 0
        if self._samples:
            self._aud_ring[pos:newest] = 0

    def _control(self, row: int) -> None:
        """Apply the audio control ("silent", "shuffled") to the new entry in ``row``."""
        if self._audio == "silent":
            self._aud_rows[row].fill(SILENCE)
        elif self._audio == "shuffled":
            self._shuffle_seen = shuffle_step(
                self._shuffle_pool, self._shuffle_seen, self._aud_rows[row], self._shuffle_rng
            )

    def _obs(self) -> dict[str, np.ndarray]:
        window = slice(self._pos, self._pos + self._stack)
        if self._audio == "image_off":  # every frame blank; the sound is heard
            obs = {"image": np.zeros_like(self._img_ring[window])}
        else:
            obs = {"image": self._img_ring[window].copy()}
        if self._samples:
            obs["audio"] = self._aud_ring[window].copy()
        return obs

    def _resize_into(self, src: np.ndarray, row: int) -> None:
        size = (self._size, self._size)
        cv2.resize(src, size, dst=self._img_rows[row], interpolation=self._interpolation)

    # ------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new episode; ``seed`` (optional) reseeds the env as ``make_atari`` would."""
        if seed is not None:
            self._seed(seed)
        ale = self._ale
        p = self.protocol
        noops = int(self._noop_rng.integers(p.noop_min, p.noop_max + 1))
        self._log.append(RESET_MARK)
        self._start_game()
        if p.noop_unit == "agent_step":
            self._noop_steps(noops)
        else:
            self._noop_frames(noops)
        self._clear_older()
        self._noops = noops
        self._t = 0
        self._return = 0.0
        self._needs_reset = False
        info = {
            "lives": self._lives,
            "noops": noops,
            "episode_step": 0,
            "episode_frame_number": ale.getEpisodeFrameNumber(),
        }
        return self._obs(), info

    def _start_game(self) -> None:
        """Reset the game; the stack's newest entry is the screen (Dopamine's reset: the
        screen in the first pooling buffer, zeros in the others), with silence."""
        ale = self._ale
        ale.reset_game()
        if self._life_noop:  # rlpyt's _life_reset: one NOOP frame, its reward dropped
            ale.act(ale_py.Action.NOOP)
        self._lives = ale.lives()
        row = self._advance()
        ale.getScreenGrayscale(self._frames[0])
        self._frames[1:] = 0
        self._resize_into(self._frames[0], row)
        if self._samples:
            self._aud_rows[row].fill(SILENCE)  # what getAudio() holds now is stale
            self._control(row)

    def _noop_frames(self, noops: int) -> None:
        """``noops`` NOOP emulator frames; the newest entry becomes the screen after them,
        unless the protocol keeps the reset's screen (Dopamine's DER runner)."""
        ale = self._ale
        for _ in range(noops):
            ale.act(ale_py.Action.NOOP)
            if ale.game_over():
                ale.reset_game()
        self._lives = ale.lives()
        if noops and self.protocol.noop_observation == "after":
            row = self._pos + self._stack - 1
            ale.getScreenGrayscale(self._frames[0])
            self._resize_into(self._frames[0], row)

    def _noop_steps(self, noops: int) -> None:
        """``noops`` agent steps of NOOP, as BBF's runner takes them: a learning terminal
        (game over, or a life loss when it is one) resets the game and the no-ops go on."""
        noop = self._actions[0]  # the minimal action set starts with NOOP
        for _ in range(noops):
            row = self._advance()
            skip = self._emulate(noop, 1.0, row)
            self._resize_into(self._pooled_screen(skip.fetched), row)
            self._finish_audio(row, skip.emulated)
            self._control(row)
            if skip.game_over or (skip.life_loss and self._life_boundary):
                self._start_game()

    def step(self, action: ActionInput) -> StepResult:
        if self._needs_reset:
            raise RuntimeError("step() after the episode ended (or before reset()): reset first")
        a, strength = self._joystick(action)
        row = self._advance()
        skip = self._emulate(a, strength, row)
        if self._life_noop and skip.life_loss and not skip.game_over:
            skip = self._life_reset_noop(skip)
        self._resize_into(self._pooled_screen(skip.fetched), row)
        self._finish_audio(row, skip.emulated)
        self._control(row)
        if skip.life_loss and self._life_boundary and not skip.game_over:
            self._clear_older()
        return self._end_step(skip)

    def _life_reset_noop(self, skip: _Skip) -> _Skip:
        """rlpyt's _life_reset after a life loss (SPR's env): one NOOP frame, its reward
        dropped; its screen replaces the step's last fetched one, and when the life loss is
        a boundary the other pooled screens are zeroed (rlpyt's _reset_obs), so the image is
        that screen alone."""
        ale = self._ale
        ale.act(ale_py.Action.NOOP)
        last = max(skip.fetched, 1) - 1
        ale.getScreenGrayscale(self._frames[last])
        if self._life_boundary:
            self._frames[:last] = 0
        self._lives = ale.lives()
        return skip._replace(emulated=skip.emulated + 1, fetched=last + 1)

    def _joystick(self, action: ActionInput) -> tuple[ale_py.Action, float]:
        """The joystick action and paddle strength of ``action``, logged for replay."""
        if not self._continuous:
            index = int(action)
            self._log.append(index)
            return self._actions[index], 1.0
        vector = np.asarray(action, dtype=np.float32)
        if vector.shape != (3,):
            raise ValueError(f"a continuous action is 3 floats, got shape {vector.shape}")
        a = continuous_to_joystick(vector, self._threshold)
        self._log.append(a.value)
        self._float_log.extend(vector.tolist())
        return a, float(vector[0])

    def _emulate(self, a: ale_py.Action, strength: float, row: int) -> _Skip:
        """Repeat ``a`` (at paddle ``strength``) for frame_skip emulator frames, collecting
        each frame's audio into ``row`` (audio "on") and fetching the screens to pool; stops
        at the frame of a game over, or of a life loss when life loss is a boundary."""
        ale = self._ale
        slots = self._aud_slots[row]
        first_pooled = self._skip - self._pool
        reward = 0
        fetched = 0
        emulated = 0
        life_loss = False
        game_over = False
        lives = self._lives
        for i in range(self._skip):
            reward += ale.act(a, strength)
            emulated = i + 1
            if slots:
                ale.getAudio(slots[i])
            game_over = ale.game_over()
            new_lives = ale.lives()
            if new_lives < lives:
                life_loss = True
            lives = new_lives
            stop = game_over or (life_loss and self._stop_at_life_loss)
            if self._fresh_stop:
                if i >= first_pooled or stop:
                    ale.getScreenGrayscale(self._frames[fetched])
                    fetched += 1
            elif i >= first_pooled and not (stop and self._break_first):
                ale.getScreenGrayscale(self._frames[i - first_pooled])
            if stop:
                break
        self._lives = lives
        # Dopamine pools all its buffers, whether this step refreshed them or not.
        fetched = fetched if self._fresh_stop else self._pool
        return _Skip(reward, emulated, fetched, life_loss, game_over)

    def _pooled_screen(self, fetched: int) -> np.ndarray:
        """The pixel-wise max of the ``fetched`` screens (the screen itself when one)."""
        frames = self._frames
        if fetched == 1:
            return frames[0]
        src = self._pooled
        np.maximum(frames[0], frames[1], out=src)
        for k in range(2, fetched):
            np.maximum(src, frames[k], out=src)
        return src

    def _finish_audio(self, row: int, emulated: int) -> None:
        """Complete the step's audio entry: silence in the slots of frames not emulated
        (audio "on"), or the last emulated frame's samples (sem3)."""
        if self._aud_slots[row]:
            if emulated < self._skip:  # frames not emulated made no sound
                self._aud_rows[row][emulated * AUDIO_FRAME_SAMPLES :] = SILENCE
        elif self._samples:
            self._ale.getAudio(self._aud_rows[row])

    def _end_step(self, skip: _Skip) -> StepResult:
        """Count the step and build what ``step`` returns."""
        game_over = skip.game_over
        self._t += 1
        raw = float(skip.reward)
        self._return += raw
        truncated = not game_over and self._t >= self.protocol.max_episode_steps
        if game_over or truncated:
            self._needs_reset = True
        learn_reward = min(1.0, max(-1.0, raw)) if self.protocol.clip_rewards else raw
        info = {
            "learn_reward": learn_reward,
            "learn_terminal": game_over or (skip.life_loss and self.protocol.life_loss_terminal),
            "life_loss": skip.life_loss,
            "lives": self._lives,
            "episode_step": self._t,
            "episode_frame_number": self._ale.getEpisodeFrameNumber(),
            "episode_return": self._return,
            "frames": skip.emulated,
        }
        return self._obs(), raw, game_over, truncated, info

    # ------------------------------------------------------------------------ exact resume
    def get_state(self) -> dict[str, Any]:
        """A picklable snapshot of everything that determines the env's future.

        Holds the emulator (with its RNG), the stacks, the no-op generator, the episode
        counters, and the log of resets and actions since the env was seeded (one byte
        per step, and an array of the continuous actions), from which
        :meth:`set_state` can rebuild the audio exactly.
        """
        window = slice(self._pos, self._pos + self._stack)
        return {
            "version": STATE_VERSION,
            "game": self.game,
            "protocol": dataclasses.asdict(self.protocol),
            "seed": self.seed,
            "ale": self._ale.cloneState(include_rng=True).serialize(),
            "noop_rng": self._noop_rng.bit_generator.state,
            "image": self._img_ring[window].copy(),
            "audio": self._aud_ring[window].copy() if self._samples else None,
            "screens": self._frames.copy(),
            "lives": self._lives,
            "episode_step": self._t,
            "episode_return": self._return,
            "noops": self._noops,
            "needs_reset": self._needs_reset,
            "log": self._log.tobytes(),
            "float_log": np.frombuffer(self._float_log, np.float32).reshape(-1, 3).copy(),
            "shuffle": self._shuffle_state(),
        }

    def _shuffle_state(self) -> dict[str, Any] | None:
        """The "shuffled" control's window (its filled rows), count and generator."""
        if self._audio != "shuffled":
            return None
        return {
            "pool": self._shuffle_pool[: min(self._shuffle_seen, SHUFFLE_WINDOW)].copy(),
            "seen": self._shuffle_seen,
            "rng": self._shuffle_rng.bit_generator.state,
        }

    def _same_shuffle(self, saved: dict[str, Any] | None) -> bool:
        mine = self._shuffle_state()
        if mine is None or saved is None:
            return mine is saved
        return (
            mine["seen"] == saved["seen"]
            and mine["rng"] == saved["rng"]
            and np.array_equal(mine["pool"], saved["pool"])
        )

    def set_state(self, state: dict[str, Any], *, replay: bool | None = None) -> None:
        """Restore a snapshot from :meth:`get_state` of an env of the same game and protocol.

        Two ways, both exact for images, rewards and RNGs:
          - ``replay=False``: restore the emulator snapshot (fast). ale-py's snapshot lacks
            the audio synthesis state, so the sound that follows differs from an
            uninterrupted run, within the episode and into the next ones;
          - ``replay=True``: reseed and replay the logged resets and actions (about as
            long as emulating them took), then check the emulator against the snapshot.
            The sound then continues exactly as it would have.
        The default replays when audio is on.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported env state version {state.get('version')!r}")
        if state["game"] != self.game:
            raise ValueError(f"state is for {state['game']}, this env plays {self.game}")
        if protocol_identity(state["protocol"]) != protocol_identity(
            dataclasses.asdict(self.protocol)
        ):
            raise ValueError("state was saved under a different protocol")
        if replay is None:
            replay = self._samples > 0
        if replay:
            self._replay(state)
            return
        self.seed = int(state["seed"])
        self._np_random_seed = self.seed
        self._ale.restoreState(ale_py.ALEState(state["ale"]))
        self._noop_rng.bit_generator.state = state["noop_rng"]
        self._pos = 0
        self._img_ring[: self._stack] = state["image"]
        self._frames[:] = state["screens"]
        if self._samples:
            self._aud_ring[: self._stack] = state["audio"]
        self._lives = int(state["lives"])
        self._t = int(state["episode_step"])
        self._return = float(state["episode_return"])
        self._noops = int(state["noops"])
        self._needs_reset = bool(state["needs_reset"])
        self._log = array("b", state["log"])
        self._float_log = array("f", _float_actions(state).tobytes())
        shuffle = state.get("shuffle")
        if shuffle is not None:
            self._shuffle_pool[: len(shuffle["pool"])] = shuffle["pool"]
            self._shuffle_seen = int(shuffle["seen"])
            self._shuffle_rng.bit_generator.state = shuffle["rng"]

    def _replay(self, state: dict[str, Any]) -> None:
        self._seed(int(state["seed"]))
        self._needs_reset = True
        floats = _float_actions(state)
        steps = 0
        for entry in array("b", state["log"]):
            if entry == RESET_MARK:
                self.reset()
            elif self._continuous:
                self.step(floats[steps])
                steps += 1
            else:
                self.step(entry)
        window = slice(self._pos, self._pos + self._stack)
        same = (
            self._ale.cloneState(include_rng=True).serialize() == state["ale"]
            and np.array_equal(self._img_ring[window], state["image"])
            and np.array_equal(self._frames, state["screens"])
            and self._t == state["episode_step"]
            and self._noop_rng.bit_generator.state == state["noop_rng"]
            and self._same_shuffle(state.get("shuffle"))
        )
        if not same:
            raise RuntimeError("replaying the env's log did not reproduce its saved state")

    def current_obs(self) -> dict[str, np.ndarray]:
        """The observation of the current state (copies), e.g. after :meth:`set_state`."""
        return self._obs()

    @property
    def ale(self) -> ale_py.ALEInterface:
        """The emulator, for inspection; acting on it directly desynchronizes the stacks."""
        return self._ale


def _float_actions(state: dict[str, Any]) -> np.ndarray:
    """The logged continuous actions of a state, (steps, 3) float32 (none in older states)."""
    return np.asarray(state.get("float_log", np.zeros((0, 3))), np.float32).reshape(-1, 3)


def make_atari(game: str, *, seed: int, protocol: ProtocolConfig = DEFAULT_PROTOCOL) -> AtariEnv:
    """The protocol's environment for ``game`` (a table name or a ROM id).

    ``seed`` determines the emulator's RNG and the no-op starts: the same seed and the
    same actions give the same observations.
    """
    return AtariEnv(game, seed=seed, protocol=protocol)
