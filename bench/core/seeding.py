"""Seeds, derived in one place. A run is a function of its config and seed: every consumer
of randomness (the training env, the agent, each evaluation, each evaluation episode, the
emulator and its no-op starts) draws its own seed from the run's seed through numpy's
SeedSequence, never from the clock."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

import numpy as np


class Stream(IntEnum):
    """The first path element of a run's seeds: one stream per consumer."""

    ENV = 0
    AGENT = 1
    EVAL = 2


def derive_seed(seed: int, *path: int, bits: Literal[32, 64] = 32) -> int:
    """An unsigned ``bits``-bit seed for the consumer at ``path`` below ``seed``."""
    dtype = np.uint32 if bits == 32 else np.uint64
    return int(np.random.SeedSequence([seed, *path]).generate_state(1, dtype)[0])


def sequence(seed: int, *path: int) -> np.random.SeedSequence:
    """The seed sequence at ``path`` below ``seed`` (``sequence(s)`` is ``SeedSequence(s)``)."""
    return np.random.SeedSequence([seed, *path])


def spawn(seed: int, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child sequences of ``seed`` (for a component with several streams)."""
    return sequence(seed).spawn(n)
