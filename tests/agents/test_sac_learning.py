"""End to end: a small SAC learns Asterix through CALE's continuous actions and beats the
random agent on the same evaluation episodes (CPU, a few thousand steps, fixed seeds)."""

import numpy as np
import pytest

from agents.protocol import Transition, single_action
from agents.registry import get_agent
from bench.core.config import override
from bench.env.atari import make_atari
from bench.env.evaluation import evaluate
from bench.env.protocol import ProtocolConfig

GAME = "Asterix"  # the game of Dopamine's CALE configs; rewards come often even at random
STEPS = 3_000
PROTOCOL = ProtocolConfig(actions="continuous", max_episode_steps=1_000)
# The preset's algorithm at a CPU size. It learns faster than the 100k preset allows: clipped
# rewards at scale 1 (instead of raw x 0.1), alpha from 0.01 (instead of 1), a 1e-3 learning
# rate, a 400-step warm-up and tau 0.01.
SMALL = {
    "conv_channels": 16,
    "conv_layers": 2,
    "latent_dim": 32,
    "hidden_dim": 256,
    "n_step": 3,
    "replay_capacity": 10_000,
    "learning_starts": 400,
    "epsilon_decay_steps": 600,
    "reward_scale": 1.0,
    "learning_rate": 1e-3,
    "initial_log_alpha": -4.6,
    "target_tau": 0.01,
}


def mean_return(agent, episodes: int = 16) -> float:
    results = evaluate(
        lambda obs: agent.act(obs, eval_mode=True),
        GAME,
        protocol=PROTOCOL,
        episodes=episodes,
        seed=123,
    )
    return float(np.mean([r.return_ for r in results]))


@pytest.mark.slow
def test_small_sac_beats_random_on_asterix():
    entry = get_agent("sac")
    config = override(entry.preset("sac-cale-100k"), SMALL, where="test")
    env = make_atari(GAME, seed=0, protocol=PROTOCOL)
    agent = entry.make(config, obs_spec=env.obs_spec(), seed=0)
    obs, _ = env.reset()
    for _ in range(STEPS):
        action = single_action(agent.act({k: v[None] for k, v in obs.items()}, eval_mode=False))
        nxt, _, terminated, truncated, info = env.step(action)
        end = terminated or truncated
        agent.observe(
            Transition(obs, action, info["learn_reward"], info["learn_terminal"], end, nxt)
        )
        obs = env.reset()[0] if end else nxt
    random = get_agent("random")
    floor = random.make(random.preset(None), obs_spec=env.obs_spec(), seed=0)
    trained, chance = mean_return(agent), mean_return(floor)
    assert agent.metrics()["grad_steps"] == STEPS - SMALL["learning_starts"]
    assert trained > 1.3 * chance, (trained, chance)
