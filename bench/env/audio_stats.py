"""What a game sounds like under a fixed random policy: per-step loudness, rewards, life losses.

``record_random_policy`` plays a game with uniformly random actions from its action set (one
seeded generator; the env seeded as ``make_atari`` seeds it) and keeps, per agent step, the
loudness of the step's sound and what happened. ``bench games --audio`` turns these
recordings into its table with ``bench.stats.events``.

Loudness is the root mean square of the step's samples around silence (``SILENCE`` = 128:
ale-py's uint8 audio of a silent frame is exactly 128 in every sample), so 0 is exact
silence and the scale is that of the uint8 waveform (at most 128).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bench.env.atari import SILENCE, make_atari
from bench.env.protocol import ProtocolConfig


@dataclass(frozen=True)
class AudioTrace:
    """One game's recording; every array has shape (n_steps,), one entry per agent step."""

    game: str
    seed: int
    loudness: np.ndarray  # float64 RMS of the step's samples minus 128; 0 is silence
    reward: np.ndarray  # float64 raw game reward of the step
    life_loss: np.ndarray  # bool: a life was lost in the step
    start: np.ndarray  # bool: the step is the first of an episode

    @property
    def steps(self) -> int:
        return len(self.loudness)


def loudness(audio: np.ndarray) -> np.ndarray:
    """RMS around silence of uint8 audio entries: (..., samples) -> (...) float64."""
    centred = np.asarray(audio, dtype=np.float64) - SILENCE
    return np.sqrt(np.mean(centred * centred, axis=-1))


def record_random_policy(
    game: str, *, steps: int, seed: int, protocol: ProtocolConfig | None = None
) -> AudioTrace:
    """``steps`` agent steps of ``game`` under uniformly random actions (audio "on").

    The env is seeded with ``seed`` and the actions drawn from ``default_rng(seed)``, so a
    recording is a function of (game, steps, seed, protocol). Episodes that end (game over
    or the protocol's step cap) are followed by a reset; the step after a reset starts an
    episode.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    protocol = dataclasses.replace(protocol or ProtocolConfig(), audio="on")
    env = make_atari(game, seed=seed, protocol=protocol)
    rng = np.random.default_rng(seed)
    loud = np.empty(steps)
    reward = np.empty(steps)
    life_loss = np.zeros(steps, dtype=bool)
    start = np.zeros(steps, dtype=bool)
    env.reset()
    start[0] = True
    for t in range(steps):
        obs, r, terminated, truncated, info = env.step(int(rng.integers(env.num_actions)))
        loud[t] = loudness(obs["audio"][-1])
        reward[t] = r
        life_loss[t] = info["life_loss"]
        if (terminated or truncated) and t + 1 < steps:
            env.reset()
            start[t + 1] = True
    return AudioTrace(env.game, seed, loud, reward, life_loss, start)
