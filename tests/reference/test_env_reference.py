"""The environment against Dopamine's own preprocessing (installed dopamine-rl).

The same ROM and actions go through ``dopamine.discrete_domains.atari_lib``'s
``AtariPreprocessing`` (frame skip, 2-frame max-pool, INTER_AREA resize, life loss as a
terminal) and through ``bench.env.atari``; observations (the Dopamine agent's zero-filled
4-frame stack included), raw rewards, learning terminals and game overs must be identical.
No-ops are taken as each reference runner takes them: BBF's runner steps the preprocessing
with action 0 and resets on a terminal; Dopamine's DER runner (``MaxEpisodeEvalRunner.
_run_no_ops``, called here) acts raw emulator frames and pools its stale reset buffers.

The installed Dopamine (4.1.2) fetches the pooled screens before it breaks out of the frame
skip (``terminal_frame="fetch_then_break"``, as Dopamine 4.0.5 under BBF). The 2021 order of
the DER runs ("break_then_fetch") is not installable beside it and is checked against the
plain loop in tests/test_atari.py only.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from bench.env.atari import make_atari
from bench.env.protocol import PROTOCOLS, ProtocolConfig

STEPS = 1500


def reference_env(atari_lib: types.ModuleType, game: str) -> object:
    env = atari_lib.create_atari_environment(game_name=game, sticky_actions=False)
    return atari_lib.AtariPreprocessing(env.environment, terminal_on_life_loss=True)


def bbf_noops(ref: object, n: int) -> np.ndarray:
    """BBF's DataEfficientAtariRunner._initialize_episode: n steps of action 0."""
    obs = ref.reset()  # type: ignore[attr-defined]
    for _ in range(n):
        obs, _, terminal, _ = ref.step(0)  # type: ignore[attr-defined]
        if terminal:
            obs = ref.reset()  # type: ignore[attr-defined]
    return obs


def der_noops(ref: object, key: int) -> tuple[np.ndarray, int]:
    """Dopamine's MaxEpisodeEvalRunner._run_no_ops itself, on a stand-in runner; returns the
    observation and the number of no-ops it drew from the agent's key."""
    import jax
    from dopamine.labs.atari_100k.eval_run_experiment import MaxEpisodeEvalRunner

    agent = types.SimpleNamespace(_rng=jax.random.PRNGKey(key))
    _, draw = jax.random.split(agent._rng)
    n = int(jax.random.randint(draw, shape=(), minval=0, maxval=30))
    ref.reset()  # type: ignore[attr-defined]
    # It reaches the emulator as environment.ale, which legacy gym forwarded and gymnasium's
    # wrappers no longer do: hand it the unwrapped env, and the preprocessing's own methods.
    environment = types.SimpleNamespace(
        environment=ref.environment.unwrapped,  # type: ignore[attr-defined]
        reset=ref.reset,  # type: ignore[attr-defined]
        _pool_and_resize=ref._pool_and_resize,  # type: ignore[attr-defined]
    )
    runner = types.SimpleNamespace(_agent=agent, _environment=environment, _max_noops=30)
    return MaxEpisodeEvalRunner._run_no_ops(runner), n  # type: ignore[arg-type]


class Stack:
    """The Dopamine agent's state: the last 4 frames, zero-filled at a terminal."""

    def __init__(self) -> None:
        self.frames = np.zeros((4, 84, 84), np.uint8)

    def reset(self, obs: np.ndarray) -> np.ndarray:
        self.frames[:] = 0
        return self.push(obs)

    def push(self, obs: np.ndarray) -> np.ndarray:
        self.frames = np.roll(self.frames, -1, axis=0)
        self.frames[-1] = obs[..., 0]
        return self.frames.copy()


def compare(atari_lib: types.ModuleType, game: str, protocol: ProtocolConfig, runner: str) -> dict:
    """Play STEPS random actions on both; return counts of what was exercised."""
    ref = reference_env(atari_lib, game)
    stack = Stack()
    rng = np.random.default_rng(0)
    seen = {"resets": 0, "life_losses": 0, "early": 0, "stale": 0, "noops": set()}

    def start(episode: int) -> tuple[object, dict]:
        if runner == "bbf":
            n = [0, 7, 29, 13][episode % 4]
            ref_obs = bbf_noops(ref, n)
        else:
            ref_obs, n = der_noops(ref, episode)
        p = dataclasses.replace(protocol, noop_min=n, noop_max=n)
        env = make_atari(game, seed=episode, protocol=p)
        obs, info = env.reset()
        np.testing.assert_array_equal(obs["image"], stack.reset(ref_obs), err_msg="reset")
        frame = ref.environment.env.ale.getEpisodeFrameNumber()  # type: ignore[attr-defined]
        assert info["episode_frame_number"] == frame
        seen["noops"].add(n)
        return env, obs

    env, obs = start(0)
    for t in range(STEPS):
        a = int(rng.integers(env.num_actions))  # type: ignore[attr-defined]
        ref_obs, ref_reward, ref_terminal, _ = ref.step(a)  # type: ignore[attr-defined]
        previous = obs["image"][-1]
        obs, reward, game_over, _, info = env.step(a)  # type: ignore[attr-defined]
        expected = stack.push(ref_obs)
        assert (reward, info["learn_terminal"], game_over) == (
            ref_reward,
            ref_terminal,
            ref.game_over,  # type: ignore[attr-defined]
        ), f"step {t}"
        if ref_terminal and not game_over:
            seen["life_losses"] += 1
            seen["early"] += info["frames"] < 4
            seen["stale"] += bool(np.array_equal(obs["image"][-1], previous))
            expected = stack.reset(ref_obs)
        np.testing.assert_array_equal(obs["image"], expected, err_msg=f"step {t}")
        if game_over:
            seen["resets"] += 1
            env, obs = start(seen["resets"])
    return seen


@pytest.mark.parametrize("game", ["Breakout", "Pong"])
def test_bbf_protocol_matches_dopamine_preprocessing(atari_lib, game: str) -> None:
    seen = compare(atari_lib, game, PROTOCOLS["bbf"], runner="bbf")
    if game == "Breakout":  # life losses inside the frame skip: stale images
        assert seen["resets"] >= 2 and seen["life_losses"] >= 8
        assert seen["early"] >= 8 and seen["stale"] >= 3


def test_der_noops_match_dopamines_der_runner(atari_lib) -> None:
    """DER's no-op starts (raw frames, the stale reset screen), with the installed
    preprocessing's frame order."""
    protocol = dataclasses.replace(PROTOCOLS["der"], terminal_frame="fetch_then_break")
    seen = compare(atari_lib, "Pong", protocol, runner="der")
    assert len(seen["noops"]) >= 2 and max(seen["noops"]) > 0


def test_fresh_frame_differs_from_dopamine(atari_lib) -> None:
    """The corrected option is one field away, and Dopamine is not it."""
    fresh = dataclasses.replace(PROTOCOLS["bbf"], terminal_frame="fresh")
    with pytest.raises(AssertionError):
        compare(atari_lib, "Breakout", fresh, runner="bbf")
