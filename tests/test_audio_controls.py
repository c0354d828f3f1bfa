"""The audio controls of the protocol (silent, shuffled, image_off) on the real ALE: they feed
what they claim, keep the network of "on", resume exactly, and the agent's audio input from
replay equals the one it acted on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from agents.protocol import Transition
from agents.registry import get_agent
from agents.value import BBF, parameter_counts
from bench.core.config import override
from bench.core.safe_state import round_trip
from bench.env.atari import SILENCE, make_atari, shuffle_step
from bench.env.protocol import FULL_AUDIO_MODES, ProtocolConfig
from tests.agents.conftest import TINY

# Short episodes: resets and padding are covered. No no-op starts, so that every entry the
# env makes is one the test sees (no-op steps feed the shuffled window too).
P = ProtocolConfig(max_episode_steps=80, noop_max=0)
GAME = "Assault"  # sound on most steps


def play(mode: str, steps: int, *, seed: int = 4) -> tuple[list[dict[str, np.ndarray]], object]:
    """The observations of ``steps`` random-action steps (resets included) and the env."""
    env = make_atari(GAME, seed=seed, protocol=dataclasses.replace(P, audio=mode))
    rng = np.random.default_rng(1)
    obs, _ = env.reset()
    out = [obs]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.num_actions)))
        out.append(obs)
        if terminated or truncated:
            out.append(env.reset()[0])
    return out, env


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict[str, np.ndarray]]]:
    """300 steps of each mode from the same seed and actions (the emulator runs the same)."""
    return {mode: play(mode, 300)[0] for mode in FULL_AUDIO_MODES}


def test_controls_have_the_network_of_on():
    specs = {
        m: make_atari(GAME, seed=0, protocol=dataclasses.replace(P, audio=m)).obs_spec()
        for m in FULL_AUDIO_MODES
    }
    assert len(set(specs.values())) == 1 and specs["on"].audio_shape == (4, 2048)
    counts = {m: parameter_counts(BBF, s) for m, s in specs.items()}
    assert all(c == counts["on"] for c in counts.values())
    assert counts["on"]["audio_encoder"] > 0


def test_silent_is_silence(runs):
    on, silent = runs["on"], runs["silent"]
    assert np.mean([(o["audio"][-1] != SILENCE).any() for o in on]) > 0.5  # "on" has sound
    for o, s in zip(on, silent, strict=True):
        assert (s["audio"][-1] == SILENCE).all()
        np.testing.assert_array_equal(s["audio"][:-1] == 0, o["audio"][:-1] == 0)  # padding
        np.testing.assert_array_equal(s["image"], o["image"])


def test_shuffled_is_earlier_true_audio_of_the_same_run(runs):
    """Every shuffled entry is the true entry of an earlier step (silence before any), and
    rarely the one of its own step; over the run it has the true audio's mean level."""
    true = np.stack([o["audio"][-1] for o in runs["on"]])
    shuffled = np.stack([o["audio"][-1] for o in runs["shuffled"]])
    own = 0
    for t, entry in enumerate(shuffled):
        earlier = true[:t] if t else np.full((1, true.shape[1]), SILENCE, np.uint8)
        assert (earlier == entry).all(axis=1).any(), t
        own += np.array_equal(entry, true[t])
    assert own < 0.2 * len(true)
    assert abs(shuffled.astype(float).mean() - true.astype(float).mean()) < 3.0
    for o, s in zip(runs["on"], runs["shuffled"], strict=True):
        np.testing.assert_array_equal(s["image"], o["image"])
        np.testing.assert_array_equal(s["audio"][:-1] == 0, o["audio"][:-1] == 0)


def test_image_off_sees_no_frame_and_hears_on(runs):
    for o, i in zip(runs["on"], runs["image_off"], strict=True):
        assert not i["image"].any()
        np.testing.assert_array_equal(i["audio"], o["audio"])


def test_shuffle_hears_each_entry_of_the_window_about_once():
    """With a window of 8: each entry is heard by a uniform draw among the 8 before it, so
    once the window is full every true entry is heard about once (Poisson-like counts),
    never at its own step, and never more than 8 steps later."""
    rng = np.random.default_rng(0)
    window, seen, heard = np.zeros((8, 2), np.uint8), 0, []
    for t in range(4000):
        entry = np.array([t % 256, t // 256], np.uint8)
        seen = shuffle_step(window, seen, entry, rng)
        heard.append(int(entry[0]) + 256 * int(entry[1]))
    lags = np.arange(1, 4000) - np.array(heard[1:])
    assert lags.min() >= 1 and lags[8:].max() <= 8
    assert np.bincount(lags[8:], minlength=9)[1:].min() > 0.85 * len(lags[8:]) / 8
    uses = np.bincount(np.array(heard[1:]), minlength=4000)[100:3900]
    assert abs(uses.mean() - 1.0) < 0.03
    assert (uses == 0).mean() == pytest.approx((7 / 8) ** 8, abs=0.04)  # about e^-1


@pytest.mark.parametrize("replay", [True, False])
def test_shuffled_resumes_exactly(replay):
    """A checkpoint of the env (through the safe state format) continues the shuffled
    stream exactly: by replaying its log (the default with audio), the sound and the draws
    are those of an uninterrupted run; from the emulator snapshot, the window and its
    generator are restored as they were."""
    protocol = dataclasses.replace(P, audio="shuffled")
    env = make_atari(GAME, seed=7, protocol=protocol)
    rng = np.random.default_rng(2)
    actions = rng.integers(env.num_actions, size=220)
    env.reset()
    for a in actions[:120]:
        if env.step(int(a))[2:4] != (False, False):
            env.reset()
    state = round_trip(env.get_state())
    resumed = make_atari(GAME, seed=99, protocol=protocol)
    resumed.reset()
    resumed.set_state(state, replay=replay)
    assert resumed.get_state()["shuffle"]["seen"] == state["shuffle"]["seen"] > 100
    np.testing.assert_array_equal(resumed.get_state()["shuffle"]["pool"], state["shuffle"]["pool"])
    if not replay:
        return  # ale-py's snapshot does not restore the sound synthesis (bench/env/atari.py)
    for a in actions[120:]:
        expected, *_ = env.step(int(a))
        got, _, terminated, truncated, _ = resumed.step(int(a))
        np.testing.assert_array_equal(got["audio"], expected["audio"])
        np.testing.assert_array_equal(got["image"], expected["image"])
        if terminated or truncated:
            np.testing.assert_array_equal(resumed.reset()[0]["audio"], env.reset()[0]["audio"])


def test_agent_audio_from_replay_equals_the_audio_it_acted_on():
    """A real ALE run (shuffled audio) through the value agent: the normalized audio stack
    (and the audio encoder's output) of every stored step, sampled back from replay, equal
    those built from the observation the agent acted on."""
    env = make_atari(GAME, seed=3, protocol=dataclasses.replace(P, audio="shuffled"))
    config = override(BBF, {**TINY, "learning_starts": 10**6, "spr_weight": 0.0}, where="t")
    agent = get_agent("value").make(config, obs_spec=env.obs_spec(), seed=0)
    obs, _ = env.reset()
    acted = []
    for _ in range(300):
        action = int(agent.act({k: v[None] for k, v in obs.items()}, eval_mode=False)[0])
        acted.append(agent._audio(obs["audio"][None])[0])
        nxt, _, terminated, truncated, info = env.step(action)
        end = terminated or truncated
        agent.observe(
            Transition(obs, action, info["learn_reward"], info["learn_terminal"], end, nxt)
        )
        obs = env.reset()[0] if end else nxt
    index = np.arange(len(acted) - 12)
    batch = agent.replay.sample(len(index), None, n=1, gamma=0.99, indices=index)
    from_replay = agent._inputs(batch).audio[:, 0]
    torch.testing.assert_close(from_replay, torch.stack(acted[: len(index)]), rtol=0, atol=0)
    net = agent.online
    with torch.no_grad():
        latent = torch.zeros(len(index), *net.latent_shape)[:, : net.image_channels]
        a = net.audio_encoder(latent, from_replay)
        b = net.audio_encoder(latent, torch.stack(acted[: len(index)]))
    assert torch.equal(a, b) and a.abs().sum() > 0
