"""Dreamer's replay: every step in order (a circular buffer), sampled as fixed-length
sequences in one of two ways:

- ``steps`` (DreamerV3): uniformly over every start, so a sequence may cross episode
  boundaries (``is_first`` restarts the RSSM there);
- ``episodes`` (DreamerV2, dreamerv2/common/replay.py:91-114 at 07d906e): a finished episode
  at least a sequence long, chosen uniformly, then a start within it; with
  ``prioritize_ends`` the start is drawn from ``total + 1`` places and clipped to the last,
  so the episode's final sequence is drawn ``seq_len + 1`` times as often as any other.

A stored step t holds the image seen at t, the reward and terminal flag of arriving there,
``is_first``, and the action taken at t (filled in when the next step arrives). Steps of
held-out episodes (``agents.heldout``) are stored with their flag: a training sequence
never contains one, a held-out sequence holds only them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SequenceReplay:
    def __init__(
        self,
        capacity: int,
        image_size: int,
        audio_samples: int | None = None,
        *,
        sampling: str = "steps",
        prioritize_ends: bool = False,
    ) -> None:
        self.capacity = capacity
        self.sampling, self.prioritize_ends = sampling, prioritize_ends
        self.image = np.zeros((capacity, image_size, image_size), np.uint8)
        # Each step's newest audio frame, when the agent reads audio.
        self.audio = (
            None if audio_samples is None else np.zeros((capacity, audio_samples), np.uint8)
        )
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.terminal = np.zeros(capacity, bool)
        self.is_first = np.zeros(capacity, bool)
        self.heldout = np.zeros(capacity, bool)
        self.count = 0  # steps ever stored; step i lives in slot i % capacity

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def add(  # noqa: PLR0917 (one field per stored array)
        self,
        image: np.ndarray,
        reward: float,
        terminal: bool,
        is_first: bool,
        heldout: bool,
        audio: np.ndarray | None = None,
    ) -> None:
        """Append a step (its action is set by ``set_action`` once taken)."""
        slot = self.count % self.capacity
        self.image[slot] = image
        if self.audio is not None and audio is not None:
            self.audio[slot] = audio
        self.action[slot] = 0
        self.reward[slot] = reward
        self.terminal[slot] = terminal
        self.is_first[slot] = is_first
        self.heldout[slot] = heldout
        self.count += 1

    def set_action(self, action: int) -> None:
        """The action taken at the newest step."""
        self.action[(self.count - 1) % self.capacity] = action

    def starts(self, length: int, heldout: bool) -> np.ndarray:
        """Step indices where a sequence of ``length`` steps, all with ``heldout`` flag
        equal to the argument, starts (oldest first)."""
        first = self.count - len(self)
        if self.count - first < length:
            return np.zeros(0, np.int64)
        order = np.arange(first, self.count)
        bad = self.heldout[order % self.capacity] != heldout
        bad_before = np.concatenate([[0], np.cumsum(bad)])
        begin = np.arange(0, len(order) - length + 1)
        ok = bad_before[begin + length] - bad_before[begin] == 0
        return order[begin[ok]]

    def episodes(self, heldout: bool) -> tuple[np.ndarray, np.ndarray]:
        """(first step, length) of each finished episode wholly in the buffer with this
        ``heldout`` flag, oldest first (an episode has finished once the next one began)."""
        order = np.arange(self.count - len(self), self.count)
        firsts = order[self.is_first[order % self.capacity]]
        begins, lengths = firsts[:-1], np.diff(firsts)
        keep = self.heldout[begins % self.capacity] == heldout
        return begins[keep], lengths[keep]

    def _episode_starts(
        self, batch: int, length: int, rng: np.random.Generator, heldout: bool
    ) -> np.ndarray:
        begins, totals = self.episodes(heldout)
        long_enough = totals >= length
        begins, totals = begins[long_enough], totals[long_enough]
        if len(begins) == 0:
            return np.zeros(0, np.int64)
        chosen = rng.integers(0, len(begins), batch)
        total = totals[chosen]
        upper = total - length + 1 + (length if self.prioritize_ends else 0)
        index = np.minimum(rng.integers(0, upper), total - length)
        return begins[chosen] + index

    def sample(
        self, batch: int, length: int, rng: np.random.Generator, *, heldout: bool = False
    ) -> dict[str, np.ndarray] | None:
        """``batch`` sequences drawn as ``sampling`` says (None when there are none): arrays
        (B, T, ...) of images, actions, rewards, terminals and is_first, with is_first set on
        each sequence's first step (it starts from the initial state)."""
        if self.sampling == "episodes":
            chosen = self._episode_starts(batch, length, rng, heldout)
            if len(chosen) == 0:
                return None
        else:
            starts = self.starts(length, heldout)
            if len(starts) == 0:
                return None
            chosen = starts[rng.integers(0, len(starts), batch)]
        slots = (chosen[:, None] + np.arange(length)[None]) % self.capacity
        is_first = self.is_first[slots].copy()
        is_first[:, 0] = True
        out = {} if self.audio is None else {"audio": self.audio[slots]}
        return out | {
            "image": self.image[slots],
            "action": self.action[slots],
            "reward": self.reward[slots],
            "terminal": self.terminal[slots],
            "is_first": is_first,
        }

    def _arrays(self) -> tuple[str, ...]:
        return _ARRAYS if self.audio is None else (*_ARRAYS, "audio")

    def state_dict(self) -> dict[str, Any]:
        n = len(self)
        return {
            "count": self.count,
            **{k: getattr(self, k)[:n].copy() for k in self._arrays()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        for k in self._arrays():
            values = state[k]
            getattr(self, k)[: len(values)] = values


_ARRAYS = ("image", "action", "reward", "terminal", "is_first", "heldout")
