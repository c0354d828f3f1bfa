"""Replay: each frame stored once as uint8, stacks rebuilt from indices, prioritized sampling
with a vectorized sum tree, subsequences for SPR, n-step returns at sample time.

Indexing. Step ``i`` (an absolute, ever-growing counter) stores the newest frame of the
observation the agent acted on, the action, the learning reward, the terminal flag and a
"boundary" flag (terminal or env episode end). A stack for step ``i`` is the frames
``i-stack+1 .. i`` with every frame before the start of ``i``'s segment zeroed: a segment
starts after any boundary, or where the observation's older frames do not continue the
previous step, which reproduces the env's stack, zero-filled at reset and after a life
loss, newest last. Audio is stored the same way: each step's samples once.

Actions: one int32 per step, or with ``action_shape`` (continuous actions) one float32
vector per step, returned exactly as stored.

Held-out episodes (``heldout_fraction`` > 0): episodes (the steps between boundaries) are
numbered as they are stored, and ``agents.heldout.held_out`` picks the held-out ones. Their
steps are stored at priority 0 and never sampled for training, nor is any step whose n-step
window or subsequence reaches into one; ``split_indices`` draws them for diagnostics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.heldout import held_out


def lookahead(n: int, subseq: int, bootstrap: str) -> int:
    """Steps after t that a sample reads: its n-step window (to s_{t+n}, or s_{t+n-1} with
    the reference bootstrap) or its subsequence of ``subseq`` steps, whichever is longer."""
    return max(n if bootstrap == "fixed" else n - 1, subseq - 1)


class SumTree:
    """A binary sum tree over ``capacity`` leaves; every operation is vectorized."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 1
        while self.size < capacity:
            self.size *= 2
        self.tree = np.zeros(2 * self.size, dtype=np.float64)
        self.max_priority = 1.0

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.tree[self.size + np.asarray(slots)]

    def set(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if slots.size == 0:
            return
        # Last write wins for repeated slots, as a loop of single sets would.
        nodes = self.size + slots
        self.tree[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)
        if priorities.size:
            self.max_priority = max(self.max_priority, float(priorities.max()))

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf slots where the prefix sums reach ``values`` (each in [0, total))."""
        values = np.asarray(values, dtype=np.float64).copy()
        nodes = np.ones(values.shape, dtype=np.int64)
        while nodes[0] < self.size:
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = values >= left_sum
            values = np.where(go_right, values - left_sum, values)
            nodes = np.where(go_right, left + 1, left)
        slots = nodes - self.size
        # Float round-off can land on an empty leaf at the right edge: step back.
        return np.minimum(slots, self.capacity - 1)

    def stratified(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """One draw per equal-mass stratum (Schaul et al.), as the reference buffer does."""
        bounds = (np.arange(batch) + rng.random(batch)) / batch
        return self.find(bounds * self.total)

    def state_dict(self) -> dict[str, Any]:
        return {"tree": self.tree.copy(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tree[:] = state["tree"]
        self.max_priority = float(state["max_priority"])


@dataclass
class Batch:
    """A sampled batch; B = batch, T = subsequence length (1 + SPR steps)."""

    index: np.ndarray  # (B,) absolute step of each sample
    slots: np.ndarray  # (B,) replay slots (for priority updates)
    states: np.ndarray  # (B, T, stack, H, W) uint8: s_t .. s_{t+T-1}
    audio: np.ndarray | None  # (B, T, stack, S) uint8
    actions: np.ndarray  # (B, T) int64, or (B, T, *action_shape) float32: a_t .. a_{t+T-1}
    returns: np.ndarray  # (B,) float32 n-step discounted return
    discounts: np.ndarray  # (B,) float32 gamma^n, zero where the return hit a terminal
    next_states: np.ndarray  # (B, stack, H, W) uint8 bootstrap state
    next_audio: np.ndarray | None  # (B, stack, S)
    same_trajectory: np.ndarray  # (B, T) float32: 1 where s_{t+k} is usable for SPR
    priorities: np.ndarray  # (B,) float64 sum-tree priorities of the samples

    def rows(self, start: int, stop: int) -> Batch:
        """Samples ``start`` .. ``stop - 1`` (one batch of a group sampled together)."""
        sl = slice(start, stop)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = None if value is None else value[sl]
        return Batch(**values)


class ReplayBuffer:
    """A circular buffer of single frames (and audio), uniform or prioritized."""

    def __init__(
        self,
        capacity: int,
        *,
        image_shape: tuple[int, ...],
        audio_shape: tuple[int, ...] | None = None,
        prioritized: bool = True,
        action_shape: tuple[int, ...] = (),
        new_priority: str = "max",
        stratified: bool = True,
        heldout_fraction: float = 0.0,
        heldout_seed: int = 0,
    ):
        """``new_priority``: a new step's priority, the maximum so far ("max", Schaul et
        al.) or 1 ("one": rlpyt's default_priority ** alpha, SPR's code). ``stratified``:
        prioritized draws one per equal-mass stratum, or independent (rlpyt's)."""
        self.capacity = int(capacity)
        self.stack = int(image_shape[0])
        self.frame_shape = tuple(image_shape[1:])
        # np.zeros maps pages lazily: a 200k-slot buffer filled to 100k costs 100k frames.
        self.frames = np.zeros((self.capacity, *self.frame_shape), dtype=np.uint8)
        self.audio: np.ndarray | None = None
        if audio_shape is not None:
            self.audio = np.zeros((self.capacity, int(audio_shape[1])), dtype=np.uint8)
        # Discrete: int32 indices; continuous (a non-empty action_shape): float32 vectors.
        self.continuous = len(action_shape) > 0
        action_dtype = np.float32 if self.continuous else np.int32
        self.actions = np.zeros((self.capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminals = np.zeros(self.capacity, dtype=bool)
        self.boundaries = np.zeros(self.capacity, dtype=bool)  # terminal or episode end
        self.segment_start = np.zeros(self.capacity, dtype=np.int64)
        self.count = 0  # steps ever added
        self.prioritized = prioritized
        self.tree = SumTree(self.capacity) if prioritized else None
        self.new_priority = new_priority
        self.stratified = stratified
        self.heldout_fraction = float(heldout_fraction)
        self.heldout_seed = int(heldout_seed)
        self.heldout = np.zeros(self.capacity, dtype=bool)  # the step's episode is held out
        self.episodes = 0  # episodes begun (numbered 0, 1, ... for the held-out rule)

    # -- adding -------------------------------------------------------------------------
    def add(
        self,
        frame: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        *,
        terminal: bool,
        episode_end: bool,
        audio: np.ndarray | None = None,
        older: np.ndarray | None = None,
    ) -> None:
        """Store one step. ``older`` (optional) is the observation's stack without its
        newest frame: when it does not continue the stored previous step (an env that
        zero-fills its stack without a boundary, e.g. a life loss that is not a terminal),
        a new segment starts, so replay rebuilds exactly the stack the agent acted on."""
        i = self.count
        slot = i % self.capacity
        new_segment = i == 0 or bool(self.boundaries[(i - 1) % self.capacity])
        if not new_segment and older is not None and len(older):
            previous = self._stack(self.frames, np.array([i - 1]))[0, 1:]
            new_segment = not np.array_equal(previous, older)
        start = i if new_segment else int(self.segment_start[(i - 1) % self.capacity])
        held = self._episode_held_out(i)
        self.frames[slot] = frame
        if self.audio is not None:
            if audio is None:
                raise ValueError("this replay stores audio: pass the step's samples")
            self.audio[slot] = audio
        self.actions[slot] = action
        self.rewards[slot] = reward
        self.terminals[slot] = terminal
        self.boundaries[slot] = terminal or episode_end
        self.segment_start[slot] = start
        self.heldout[slot] = held
        if self.tree is not None:
            # New items at the maximum priority seen so far (Schaul et al.), or at 1; held-out
            # ones at 0, so that a prioritized draw never lands on them.
            new = self.tree.max_priority if self.new_priority == "max" else 1.0
            self.tree.set(np.array([slot]), np.array([0.0 if held else new]))
        self.count += 1

    def _episode_held_out(self, i: int) -> bool:
        """Whether step ``i`` (being added) belongs to a held-out episode; counts episodes."""
        if i == 0 or bool(self.boundaries[(i - 1) % self.capacity]):
            self.episodes += 1
            return held_out(self.heldout_seed, self.episodes - 1, self.heldout_fraction)
        return bool(self.heldout[(i - 1) % self.capacity])

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    # -- validity -----------------------------------------------------------------------
    def stack_intact(self, idx: np.ndarray) -> np.ndarray:
        """Whether the frame stacks of stored steps ``idx`` are whole: the oldest frames of a
        stack may be overwritten, unless its segment starts inside the buffer."""
        oldest = self.count - len(self)
        seg = self.segment_start[idx % self.capacity]
        return (idx - self.stack + 1 >= oldest) | (seg >= oldest)

    def _valid(
        self, idx: np.ndarray, lookahead: int, n: int, *, heldout: bool = False
    ) -> np.ndarray:
        """Whether absolute steps ``idx`` can be sampled: stored with their lookahead, not
        overwritten frames in their stack, and no truncation (episode end without a
        terminal) inside the n-step window, where nothing could be bootstrapped. With a
        held-out split: no held-out step from t to t + lookahead, so that no frame of a
        held-out episode enters a gradient step, not even as a bootstrap or SPR target;
        ``heldout``: the opposite split, steps of held-out episodes (for diagnostics)."""
        oldest = self.count - len(self)
        ok = (idx >= oldest) & (idx + lookahead < self.count) & self.stack_intact(idx)
        win = idx[:, None] + np.arange(n)[None, :]
        win_c = np.clip(win, 0, self.count - 1) % self.capacity
        trunc = self.boundaries[win_c] & ~self.terminals[win_c]
        # Only steps up to the first terminal matter: after it nothing is bootstrapped.
        before_term = np.cumprod(~self.terminals[win_c], axis=1)
        before_term = np.concatenate([np.ones((len(idx), 1), bool), before_term[:, :-1]], 1)
        ok &= ~(trunc & before_term.astype(bool)).any(axis=1)
        if heldout:
            ok &= self.heldout[idx % self.capacity]
        elif self.heldout_fraction > 0:
            window = (idx[:, None] + np.arange(lookahead + 1)[None, :]) % self.capacity
            ok &= ~self.heldout[window].any(axis=1)
        return ok

    def _slot_to_index(self, slots: np.ndarray) -> np.ndarray:
        newest = self.count - 1
        return newest - ((newest - slots) % self.capacity)

    def sample_indices(
        self,
        batch: int,
        rng: np.random.Generator,
        *,
        lookahead: int,
        n: int,
        exclude_newest: int = 0,
        max_attempts: int = 1000,
    ) -> np.ndarray:
        """Absolute steps to train on: stratified by priority, or uniform; invalid draws are
        redrawn one by one (not stratified), as in the reference buffer. The newest
        ``exclude_newest`` steps are never drawn (the reference buffers keep a window
        behind their cursor; 0: only what the lookahead needs). A buffer made with
        ``stratified=False`` draws ``batch`` independent values over the whole mass (rlpyt)."""
        oldest = self.count - len(self)
        if self.count - oldest <= max(lookahead + 1, exclude_newest):
            raise RuntimeError("not enough steps in replay to sample")

        def draw(k: int) -> np.ndarray:
            if self.tree is not None:
                if k == batch and self.stratified:
                    return self._slot_to_index(self.tree.stratified(k, rng))
                return self._slot_to_index(self.tree.find(rng.random(k) * self.tree.total))
            return rng.integers(oldest, self.count, size=k)

        idx = draw(batch)
        for _ in range(max_attempts):
            bad = ~self._valid(idx, lookahead, n) | (idx >= self.count - exclude_newest)
            if not bad.any():
                return idx
            idx[bad] = draw(int(bad.sum()))
        raise RuntimeError(f"could not sample {batch} valid steps in {max_attempts} attempts")

    def split_indices(
        self,
        batch: int,
        rng: np.random.Generator,
        *,
        lookahead: int,
        n: int,
        heldout: bool,
        exclude_newest: int = 0,
    ) -> np.ndarray:
        """``batch`` steps drawn uniformly, with replacement, from the held-out split
        (``heldout``) or from the steps training may sample; shape (batch,), or (0,) when
        the split has no valid step. For diagnostics: priorities play no part."""
        oldest = self.count - len(self)
        candidates = np.arange(oldest, max(oldest, self.count - exclude_newest))
        candidates = candidates[self._valid(candidates, lookahead, n, heldout=heldout)]
        if candidates.size == 0:
            return candidates
        return rng.choice(candidates, size=batch, replace=True)

    # -- reading ------------------------------------------------------------------------
    def _stack(self, store: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Stacks for absolute steps ``idx`` (any shape): (*idx.shape, stack, *item)."""
        offsets = np.arange(-self.stack + 1, 1)
        frames = idx[..., None] + offsets
        keep = frames >= self.segment_start[idx % self.capacity][..., None]
        out = store[frames % self.capacity]
        keep = keep.reshape(*keep.shape, *([1] * (out.ndim - keep.ndim)))
        return out * keep

    def sample(
        self,
        batch: int,
        rng: np.random.Generator | None,
        *,
        n: int,
        gamma: float,
        subseq: int = 1,
        bootstrap: str = "fixed",
        spr_mask: str = "fixed",
        exclude_newest: int = 0,
        indices: np.ndarray | None = None,
        priorities: np.ndarray | None = None,
    ) -> Batch:
        """A batch with n-step returns computed now with the current ``n`` and ``gamma``.

        ``bootstrap="fixed"``: R = sum_{k<n} gamma^k r_{t+k} (stopping at a terminal), then
        gamma^n Q(s_{t+n}) unless a terminal occurred in t..t+n-1.
        ``bootstrap="reference"``: the BBF reference buffer's off-by-one: the same n rewards
        and gamma^n, but the bootstrap state is s_{t+n-1} and only terminals in t..t+n-2
        stop the bootstrap (google-research issue #1851).

        ``spr_mask="fixed"``: s_{t+k} is usable when no boundary occurred in t..t+k-1.
        ``spr_mask="shifted"``: no boundary in t..t+k (one step early, as SPR's own code).
        ``spr_mask="reference"``: the reference's mask: no terminal in t..t+k (shifted by one;
        episode ends without a terminal are not seen), and none at all for the batch's first
        row (it zeroes row 0 where it meant time column 0).
        ``exclude_newest``: see :meth:`sample_indices`. ``indices``, ``priorities``: steps
        drawn earlier (tests, prefetched draws) and their priorities then (default: now).
        """
        if indices is not None:  # given absolute steps (tests, prefetched draws)
            idx = np.asarray(indices, dtype=np.int64)
        elif rng is None:
            raise ValueError("sampling needs a generator (or the indices)")
        else:
            reach = lookahead(n, subseq, bootstrap)
            idx = self.sample_indices(
                batch, rng, lookahead=reach, n=n, exclude_newest=exclude_newest
            )
        slots = idx % self.capacity
        returns, discounts, next_idx = self._n_step(idx, n=n, gamma=gamma, bootstrap=bootstrap)
        seq, same = self._subsequence(idx, subseq=subseq, spr_mask=spr_mask)
        audio, next_audio = self._audio_stacks(seq, next_idx)
        if priorities is None:
            priorities = self.tree.get(slots) if self.tree is not None else np.ones(len(idx))
        return Batch(
            index=idx,
            slots=slots,
            states=self._stack(self.frames, seq),
            audio=audio,
            actions=self._actions(seq),
            returns=returns.astype(np.float32),
            discounts=discounts.astype(np.float32),
            next_states=self._stack(self.frames, next_idx),
            next_audio=next_audio,
            same_trajectory=same,
            priorities=priorities,
        )

    def _audio_stacks(
        self, seq: np.ndarray, next_idx: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.audio is None:
            return None, None
        return self._stack(self.audio, seq), self._stack(self.audio, next_idx)

    def _actions(self, seq: np.ndarray) -> np.ndarray:
        """The actions of steps ``seq``: int64 indices, or float32 vectors as stored."""
        actions = self.actions[seq % self.capacity]
        return actions if self.continuous else actions.astype(np.int64)

    def _n_step(
        self, idx: np.ndarray, *, n: int, gamma: float, bootstrap: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The n-step returns (B,), discounts (B,) and bootstrap steps (B,) of steps ``idx``
        (float64; the modes are :meth:`sample`'s)."""
        win = (idx[:, None] + np.arange(n)[None, :]) % self.capacity  # (B, n)
        rewards = self.rewards[win].astype(np.float64)
        term = self.terminals[win]
        alive = np.concatenate(
            [np.ones((len(idx), 1), bool), np.cumprod(~term, axis=1)[:, :-1].astype(bool)],
            axis=1,
        )
        powers = gamma ** np.arange(n)
        returns = (rewards * powers * alive).sum(axis=1)
        if bootstrap == "fixed":
            done = term.any(axis=1)
            next_idx = idx + n
        elif bootstrap == "reference":
            done = term[:, : n - 1].any(axis=1)
            next_idx = idx + n - 1
        else:
            raise ValueError(f"unknown bootstrap mode {bootstrap!r}")
        discounts = np.where(done, 0.0, gamma**n)
        # A bootstrap state past a terminal is never used; clamp it to a stored step.
        return returns, discounts, np.where(done, idx, next_idx)

    def _subsequence(
        self, idx: np.ndarray, *, subseq: int, spr_mask: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The steps s_t .. s_{t+T-1} to read (B, T), masked ones replaced by t (any stored
        state), and SPR's mask (B, T) float32 (the modes are :meth:`sample`'s)."""
        seq = idx[:, None] + np.arange(subseq)[None, :]  # (B, T)
        seq_c = np.minimum(seq, self.count - 1)
        if spr_mask == "fixed":
            bounds = self.boundaries[seq_c % self.capacity]
            prior = np.concatenate([np.zeros((len(idx), 1), bool), bounds[:, :-1]], axis=1)
        elif spr_mask == "shifted":  # SPR's PyTorch code: 1 - sign(cumsum(done)), done at t on
            prior = self.boundaries[seq_c % self.capacity]
        elif spr_mask == "reference":
            # The reference zeroes batch row 0 where it meant time column 0, so for the
            # other rows its mask also counts the terminal at t (and t+k): one step early;
            # row 0 is never masked. It reads terminals only, not episode ends.
            prior = self.terminals[seq_c % self.capacity].copy()
            prior[0] = False
        else:
            raise ValueError(f"unknown SPR mask mode {spr_mask!r}")
        same = np.cumprod(~prior, axis=1).astype(np.float32)
        same[:, 0] = 1.0  # s_t itself is always used
        return np.where(same > 0, seq_c, idx[:, None]), same

    def update_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        if self.tree is not None:
            self.tree.set(slots, priorities)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Copies of the filled part only (a checkpoint must not change with training)."""
        n = len(self)
        state = {
            "count": self.count,
            "frames": self.frames[:n].copy(),
            "actions": self.actions[:n].copy(),
            "rewards": self.rewards[:n].copy(),
            "terminals": self.terminals[:n].copy(),
            "boundaries": self.boundaries[:n].copy(),
            "segment_start": self.segment_start[:n].copy(),
            "audio": None if self.audio is None else self.audio[:n].copy(),
            "tree": None if self.tree is None else self.tree.state_dict(),
            "heldout": self.heldout[:n].copy(),
            "episodes": self.episodes,
            "heldout_seed": self.heldout_seed,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(state["actions"])
        if n > self.capacity:
            raise ValueError(f"replay state holds {n} steps; capacity is {self.capacity}")
        if (state["audio"] is None) != (self.audio is None):
            raise ValueError("replay state and buffer disagree on audio")
        if state["actions"].shape[1:] != self.actions.shape[1:]:
            raise ValueError("replay state and buffer disagree on the action shape")
        self.count = int(state["count"])
        for name in ("frames", "actions", "rewards", "terminals", "boundaries", "segment_start"):
            getattr(self, name)[:n] = state[name]
        if self.audio is not None:
            self.audio[:n] = state["audio"]
        if self.tree is not None:
            self.tree.load_state_dict(state["tree"])
        # States saved before the held-out split existed held no episode out.
        self.heldout[:n] = state.get("heldout", np.zeros(n, dtype=bool))
        self.episodes = int(state.get("episodes", 0))
        self.heldout_seed = int(state.get("heldout_seed", self.heldout_seed))

    def nbytes(self) -> int:
        """Bytes of the storage arrays at full capacity."""
        arrays: list[np.ndarray] = [
            self.frames,
            self.actions,
            self.rewards,
            self.terminals,
            self.boundaries,
            self.segment_start,
            self.heldout,
        ]
        if self.audio is not None:
            arrays.append(self.audio)
        total = sum(a.nbytes for a in arrays)
        return total + (self.tree.tree.nbytes if self.tree is not None else 0)
