"""Protocol evaluation on real ALE: determinism, batching, episode count, the step cap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.env.evaluation import EpisodeResult, episode_seed, evaluate
from bench.env.protocol import ProtocolConfig

# Breakout with a short cap keeps episodes short; the cap ends some, game over others.
# No-ops as emulator frames: with BBF's agent-step no-ops this coarse pixel policy scores the
# same in every episode, and the tests below need outcomes that depend on the seed.
PROTOCOL = ProtocolConfig(max_episode_steps=150, noop_unit="frame", terminal_frame="fresh")


class PixelPolicy:
    """Deterministic, row-independent actions from the pixels; records each batch size."""

    def __init__(self, num_actions: int = 4) -> None:
        self.num_actions = num_actions
        self.batch_sizes: list[int] = []

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        image = obs["image"]
        assert image.ndim == 4 and image.shape[1:] == (4, 84, 84) and image.dtype == np.uint8
        self.batch_sizes.append(image.shape[0])
        total = image[:, -1].astype(np.int64).sum(axis=(1, 2))
        return (total // 3 + len(self.batch_sizes)) % self.num_actions


def test_deterministic_and_independent_of_parallelism() -> None:
    first = evaluate(PixelPolicy(), "Breakout", protocol=PROTOCOL, episodes=3, seed=3)
    again = evaluate(PixelPolicy(), "Breakout", protocol=PROTOCOL, episodes=3, seed=3)
    assert len(first) == 3 and all(isinstance(r, EpisodeResult) for r in first)
    assert first == again
    other = evaluate(PixelPolicy(), "Breakout", protocol=PROTOCOL, episodes=3, seed=4)
    assert other != first
    assert len({(r.return_, r.length) for r in first}) > 1  # episodes differ from each other


def test_one_act_call_per_step_over_the_live_envs() -> None:
    policy = PixelPolicy()
    results = evaluate(policy, "Breakout", protocol=PROTOCOL, episodes=4, seed=0)
    lengths = [r.length for r in results]
    # At step t the batch holds exactly the episodes longer than t.
    expected = [sum(length > t for length in lengths) for t in range(max(lengths))]
    assert policy.batch_sizes == expected
    assert policy.batch_sizes[0] == 4


def test_max_parallel_bounds_the_batch_and_keeps_episode_order() -> None:
    # A policy that ignores the step index, so that results do not depend on scheduling.
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        sizes.append(obs["image"].shape[0])
        return obs["image"][:, -1].astype(np.int64).sum(axis=(1, 2)) // 5 % 4

    sizes: list[int] = []
    bounded = evaluate(act, "Breakout", protocol=PROTOCOL, episodes=5, seed=1, max_parallel=2)
    assert max(sizes) == 2 and len(bounded) == 5
    sizes.clear()
    unbounded = evaluate(act, "Breakout", protocol=PROTOCOL, episodes=5, seed=1)
    assert max(sizes) == 5
    assert bounded == unbounded


def test_episodes_are_capped_and_marked_truncated() -> None:
    protocol = dataclasses.replace(PROTOCOL, max_episode_steps=30)

    def noop(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(obs["image"].shape[0], np.int64)

    results = evaluate(noop, "Pong", protocol=protocol, episodes=3, seed=0)
    assert results == [EpisodeResult(return_=0.0, length=30, truncated=True)] * 3


def test_episodes_run_through_life_losses_to_game_over() -> None:
    protocol = dataclasses.replace(PROTOCOL, max_episode_steps=27_000)
    results = evaluate(PixelPolicy(), "Breakout", protocol=protocol, episodes=2, seed=2)
    for r in results:
        assert not r.truncated
        assert r.length > 100  # five lives, not one


def test_audio_observations_are_batched() -> None:
    protocol = dataclasses.replace(PROTOCOL, audio="on", max_episode_steps=5)
    shapes: list[tuple[int, ...]] = []

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        shapes.append(obs["audio"].shape)
        return np.zeros(obs["audio"].shape[0], np.int64)

    evaluate(act, "Assault", protocol=protocol, episodes=2, seed=0)
    assert shapes == [(2, 4, 2048)] * 5


def test_bad_actions_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda obs: np.zeros(1, np.int64), "Pong", protocol=PROTOCOL, episodes=2, seed=0)


def test_episode_seeds_are_distinct_and_stable() -> None:
    seeds = [episode_seed(0, i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert seeds == [episode_seed(0, i) for i in range(100)]
    assert episode_seed(1, 0) != seeds[0]
