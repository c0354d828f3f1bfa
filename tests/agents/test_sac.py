"""Soft Actor-Critic: losses on hand-made batches, the temperature, gradients' reach, the
preset against Dopamine's config, and exact resume through the run loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.protocol import Transition
from agents.registry import get_agent
from agents.sac import (
    SAC_CALE_100K,
    TINY,
    critic_target,
    epsilon_at,
    sac_losses,
    squashed_gaussian,
    target_entropy,
)
from agents.testing import CONTINUOUS_SPEC, drive, synthetic_obs
from bench.core.config import override


def test_the_critic_target_with_the_entropy_term_is_the_hand_computation():
    y = critic_target(
        torch.tensor([1.0, 2.0, -3.0]),
        torch.tensor([0.9**3, 0.0, 0.5]),
        (torch.tensor([1.0, 3.0, 4.0]), torch.tensor([2.0, 0.5, -1.0])),
        torch.tensor([-1.5, 0.2, 0.4]),
        alpha=torch.tensor(0.5),
        reward_scale=0.1,
    )
    # 0.1 R + discount (min(Q1', Q2') - alpha log pi')
    expected = [
        0.1 * 1.0 + 0.729 * (1.0 - 0.5 * -1.5),  # 1.37575
        0.1 * 2.0,  # a terminal: no bootstrap
        0.1 * -3.0 + 0.5 * (-1.0 - 0.5 * 0.4),  # -0.9
    ]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)


def test_the_losses_are_the_hand_computation():
    log_alpha = torch.tensor([math.log(0.5)], requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5], requires_grad=True)
    losses = sac_losses(
        (torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0])),
        torch.tensor([1.0, 1.0]),
        (torch.tensor([2.0, 1.0]), torch.tensor([3.0, 0.0])),
        log_prob,
        log_alpha,
        -1.5,
    )
    assert losses.critic.item() == pytest.approx((0 + 1 + 1 + 1) / 2)  # mean of both errors²
    assert losses.policy.item() == pytest.approx(((0.5 * -1 - 2) + (0.5 * 0.5 - 0)) / 2)
    assert losses.alpha.item() == pytest.approx(math.log(0.5) * (2.5 + 1.0) / 2)
    assert losses.entropy.item() == pytest.approx(0.25)
    # The temperature learns only from its own loss; the policy's alpha is a constant.
    (grad,) = torch.autograd.grad(losses.policy, log_alpha, allow_unused=True)
    assert grad is None or grad.abs().item() == 0
    (grad,) = torch.autograd.grad(losses.alpha, log_prob, allow_unused=True)
    assert grad is None or grad.abs().sum().item() == 0


@pytest.mark.parametrize(("entropy_target", "direction"), [(10.0, 1), (-10.0, -1)])
def test_the_temperature_moves_toward_the_target_entropy(entropy_target, direction):
    """Entropy below the target raises alpha (more exploration); above it lowers alpha."""
    cfg = override(TINY, {"target_entropy": entropy_target, "learning_rate": 1e-2}, where="test")
    agent = get_agent("sac").make(cfg, obs_spec=CONTINUOUS_SPEC, seed=0)
    drive(agent, CONTINUOUS_SPEC, np.random.default_rng(0), 60)
    alphas = [agent.metrics()["alpha"]]
    drive(agent, CONTINUOUS_SPEC, np.random.default_rng(1), 20)
    alphas.append(agent.metrics()["alpha"])
    assert agent.metrics()["grad_steps"] > 40
    assert (alphas[1] - alphas[0]) * direction > 0
    assert (alphas[0] - 1.0) * direction > 0  # from alpha = exp(0) = 1


def test_the_squashed_gaussian_density_is_the_change_of_variables():
    from torch.distributions import Normal, TransformedDistribution
    from torch.distributions.transforms import AffineTransform, TanhTransform

    gen = torch.Generator().manual_seed(0)
    loc, log_scale = torch.randn(64, 3, generator=gen), torch.randn(64, 3, generator=gen) * 0.5
    noise = torch.randn(64, 3, generator=gen)
    mean, scale = torch.tensor([0.5, 0.0, 0.5]), torch.tensor([0.5, math.pi, 0.5])
    out = squashed_gaussian(loc, log_scale, noise, mean, scale)
    reference = TransformedDistribution(
        Normal(loc.double(), log_scale.exp().double()),
        [TanhTransform(), AffineTransform(mean.double(), scale.double())],
    )
    expected = reference.log_prob(out.sample.double()).sum(-1)
    np.testing.assert_allclose(out.log_prob.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    low, high = (mean - scale).numpy(), (mean + scale).numpy()
    assert ((out.sample.numpy() >= low) & (out.sample.numpy() <= high)).all()
    np.testing.assert_allclose(out.mean.numpy(), (mean + scale * torch.tanh(loc)).numpy())


def _filled_agent(cfg=TINY):
    agent = get_agent("sac").make(cfg, obs_spec=CONTINUOUS_SPEC, seed=0)
    drive(agent, CONTINUOUS_SPEC, np.random.default_rng(0), 40)
    return agent


def _grads(agent, loss):
    agent.online.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {
        group: any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
        for group, module in agent.online.named_children()
    }


def test_the_actor_never_trains_the_critics_nor_the_convolutions():
    agent = _filled_agent()
    batch = agent.replay.sample(8, np.random.default_rng(0), n=3, gamma=0.99)
    losses = agent.losses(batch)
    assert _grads(agent, losses.policy) == {
        "encoder": False,  # the actor reads the convolutions through a stop-gradient
        "critic_projection": False,
        "actor_projection": True,
        "actor": True,
        "critic1": False,
        "critic2": False,
    }
    assert _grads(agent, losses.critic) == {
        "encoder": True,
        "critic_projection": True,
        "actor_projection": False,
        "actor": False,
        "critic1": True,
        "critic2": True,
    }


def test_the_target_critics_evaluate_the_target_actor_s_mean_action_by_default():
    """Dopamine's quirk: min Q'(s', mean) - alpha log pi'(sample); ``sample`` is standard SAC."""
    targets = {}
    for mode in ("mean", "sample"):
        agent = _filled_agent(override(TINY, {"target_action": mode}, where="test"))
        batch = agent.replay.sample(8, np.random.default_rng(0), n=3, gamma=0.99)
        agent.gen.manual_seed(5)
        targets[mode] = agent.losses(batch).target
    assert not torch.allclose(targets["mean"], targets["sample"])


def test_the_preset_is_dopamine_s_sac_cale_100k():
    c = SAC_CALE_100K
    assert (c.conv_channels, c.conv_layers, c.latent_dim) == (32, 4, 50)  # SACEncoderNetwork
    assert (c.hidden_dim, c.hidden_layers) == (512, 1)
    assert (c.gamma, c.n_step, c.reward_scale) == (0.99, 10, 0.1)
    assert (c.batch_size, c.learning_starts, c.replay_ratio, c.replay_capacity) == (
        32,
        1_600,
        1.0,
        1_000_000,
    )
    assert (c.target_tau, c.learning_rate, c.adam_eps) == (0.005, 1e-4, 1.5e-4)
    assert target_entropy(c, 3) == -1.5
    assert (c.epsilon_end, c.epsilon_decay_steps, c.epsilon_eval) == (0.1, 5_000, 0.05)
    # Dopamine's schedule: 1 through the warm-up, then linear to 0.1 over 5,000 steps.
    assert [epsilon_at(c, s) for s in (1, 1_600, 4_100, 6_600, 50_000)] == pytest.approx(
        [1.0, 1.0, 0.55, 0.1, 0.1]
    )
    counts = get_agent("sac").count_parameters(c, CONTINUOUS_SPEC)
    assert counts["encoder"] == 4 * 32 * 9 + 32 + 3 * (32 * 32 * 9 + 32)
    assert counts["critic_projection"] == 42 * 42 * 32 * 50 + 50 + 2 * 50  # SAME: 84 -> 42


def test_acting_keeps_within_the_bounds_and_evaluation_is_deterministic():
    agent = _filled_agent(override(TINY, {"epsilon_eval": 0.0}, where="test"))
    obs = synthetic_obs(np.random.default_rng(3), CONTINUOUS_SPEC, 5)
    a, b = agent.act(obs, eval_mode=True), agent.act(obs, eval_mode=True)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (5, 3)


def test_a_transition_s_action_is_stored_exactly():
    agent = get_agent("sac").make(TINY, obs_spec=CONTINUOUS_SPEC, seed=0)
    rng = np.random.default_rng(0)
    action = np.array([0.123456789, -3.0, 0.99], np.float32)
    obs = synthetic_obs(rng, CONTINUOUS_SPEC)
    agent.observe(Transition(obs, action, 1.0, False, False, synthetic_obs(rng, CONTINUOUS_SPEC)))
    assert agent.replay.actions[0].tobytes() == action.tobytes()
