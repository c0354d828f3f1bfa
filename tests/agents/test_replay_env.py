"""With the real env (when bench.env.atari is there): replay rebuilds exactly the image and
audio stacks the agent acted on, across life losses and episode ends."""

import numpy as np
import pytest

from agents.replay import ReplayBuffer

atari = pytest.importorskip("bench.env.atari")


def test_replay_stacks_match_the_env_stacks():
    from bench.env.protocol import ProtocolConfig

    env = atari.make_atari("Breakout", seed=0, protocol=ProtocolConfig(audio="on"))
    spec = env.obs_spec()
    buf = ReplayBuffer(
        2_000, image_shape=spec.image_shape, audio_shape=spec.audio_shape, prioritized=False
    )
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    seen, life_losses = [], 0
    for _ in range(1_000):
        action = int(rng.integers(spec.num_actions))
        nxt, _, game_over, truncated, info = env.step(action)
        end = game_over or truncated
        buf.add(
            obs["image"][-1],
            action,
            info["learn_reward"],
            terminal=info["learn_terminal"],
            episode_end=end,
            audio=obs["audio"][-1],
            older=obs["image"][:-1],
        )
        seen.append(obs)
        life_losses += info["life_loss"]
        obs = env.reset()[0] if end else nxt
    assert life_losses > 5
    for i, o in enumerate(seen):
        np.testing.assert_array_equal(buf._stack(buf.frames, np.array([i]))[0], o["image"])
        np.testing.assert_array_equal(buf._stack(buf.audio, np.array([i]))[0], o["audio"])
