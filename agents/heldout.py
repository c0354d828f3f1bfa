"""The held-out split of replay episodes, shared by every agent that keeps one.

A fraction of the episodes an agent stores is never trained on: its losses on them, next to
the training losses, show when the agent starts to fit its replay rather than the game (the
update-ratio study of DreamerV2 held out 15% of replay episodes for exactly this). Which
episodes are held out is a function of the agent's seed and the episode's index alone, so it
is the same after a resume and the same for two agents that see the same episodes.
"""

from __future__ import annotations

import numpy as np

# The path below the agent's seed that this split draws from (other paths are other streams).
_HELD_OUT_STREAM = 7


def held_out(seed: int, episode: int, fraction: float) -> bool:
    """Whether episode number ``episode`` (0, 1, ... in the order stored) is held out.

    Each episode is held out with probability ``fraction``, independently of the others.
    """
    if fraction <= 0.0:
        return False
    if fraction >= 1.0:
        return True
    u = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, _HELD_OUT_STREAM, episode]))
    )
    return bool(u.random() < fraction)


def held_out_mask(seed: int, episodes: int, fraction: float) -> np.ndarray:
    """``held_out`` for episodes ``0 .. episodes - 1``; bool array of shape (episodes,)."""
    return np.array([held_out(seed, e, fraction) for e in range(episodes)], dtype=bool)
