"""Diagnostics (agents/diagnostics.py) on hand-built inputs with known answers, the held-out
split of replay, and the value agent's diagnostics leaving training alone."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from agents.diagnostics import (
    dense_sparsity,
    discounted_returns,
    dormant_fractions,
    dormant_scores,
    norms,
    realized_returns,
    recorded_activations,
    srank,
)
from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.replay import ReplayBuffer
from agents.testing import drive, same_state
from bench.core.config import override
from tests.agents.conftest import TINY
from tests.test_training_log import AGENT_METRICS

SPEC = ObsSpec(num_actions=4)


# -- dormant neurons ---------------------------------------------------------------------
def test_dormant_fraction_of_a_hand_built_layer():
    # Mean |activation| per unit: 1, 1, 2, 0, 0.02 -> layer average 0.804.
    act = torch.tensor([[1.0, -1.0, 2.0, 0.0, 0.04], [-1.0, 1.0, -2.0, 0.0, 0.0]])
    scores = dormant_scores(act)
    torch.testing.assert_close(scores, torch.tensor([1.0, 1.0, 2.0, 0.0, 0.02]) / 0.804)
    # tau 0.025: the dead unit and the one at 0.02 / 0.804 = 0.0249; tau 0: the dead one.
    assert dormant_fractions({"a": act})["dormant/a"] == pytest.approx(2 / 5)
    assert dormant_fractions({"a": act}, tau=0.0)["dormant/a"] == pytest.approx(1 / 5)
    # A conv layer: a channel is a neuron, averaged over the batch and its positions.
    conv = torch.zeros(2, 3, 4, 4)
    conv[:, 0] = 1.0
    conv[0, 1, 0, 0] = 5.0  # channel 1: mean 5 / 32 = 0.156; channel 2 dead
    out = dormant_fractions({"c": conv, "a": act}, tau=0.2)
    assert out["dormant/c"] == pytest.approx(1 / 3)  # 0.156 / 0.385 = 0.41 > 0.2
    assert out["dormant"] == pytest.approx((1 + 2) / (3 + 5))


def test_recorded_activations_are_the_rectified_layer_outputs():
    net = nn.Sequential()
    net.add_module("encoder", nn.Linear(2, 3))
    net.add_module("head", nn.Linear(3, 1))
    with torch.no_grad():
        net.encoder.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
        net.encoder.bias.zero_()
    with recorded_activations(net) as acts:
        net(torch.tensor([[2.0, 3.0]]))
    assert list(acts) == ["encoder"]  # the head's outputs are Q-values, not neurons
    torch.testing.assert_close(acts["encoder"], torch.tensor([[2.0, 0.0, 3.0]]))
    assert not net.encoder._forward_hooks  # hooks removed after the block


# -- effective rank ----------------------------------------------------------------------
def test_srank_of_matrices_of_known_rank():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    v, _ = np.linalg.qr(rng.normal(size=(30, 30)))

    def with_singular_values(sigma):
        s = np.zeros((40, 30))
        s[: len(sigma), : len(sigma)] = np.diag(sigma)
        return u @ s @ v.T

    assert srank(with_singular_values([3.0, 3.0, 3.0])) == 3
    # A tail below delta = 1% of the sum is not counted: 2 / 2.001 >= 0.99.
    assert srank(with_singular_values([1.0, 1.0, 0.001])) == 2
    assert srank(with_singular_values([1.0, 1.0, 0.1])) == 3
    assert srank(rng.normal(size=(8, 30))) == 8  # full row rank
    assert srank(np.zeros((5, 4))) == 0


# -- norms and sparsity ------------------------------------------------------------------
def test_parameter_and_gradient_norms_per_group_and_sparsity():
    net = nn.Sequential()
    net.add_module("encoder", nn.Linear(2, 2, bias=False))
    net.add_module("head", nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net.encoder.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        net.head.weight.copy_(torch.tensor([[0.0, 12.0]]))
    out = norms(net)
    assert "grad_norm" not in out  # no gradient step yet
    assert out["param_norm/encoder"] == pytest.approx(5.0)
    assert out["param_norm/head"] == pytest.approx(12.0)
    assert out["param_norm"] == pytest.approx(13.0)
    net(torch.tensor([[1.0, 1.0]])).sum().backward()
    # d/dW_head = encoder output (3, 4); d/dW_enc = head weight^T x input = [[0, 0], [12, 12]]
    out = norms(net)
    assert out["grad_norm/head"] == pytest.approx(5.0)
    assert out["grad_norm/encoder"] == pytest.approx(math.sqrt(288))
    assert out["grad_norm"] == pytest.approx(math.sqrt(313))
    sparsity = dense_sparsity(net)
    assert sparsity["sparsity/encoder"] == pytest.approx(0.5)
    assert sparsity["sparsity/head"] == pytest.approx(0.5)
    assert sparsity["sparsity"] == pytest.approx(3 / 6)


# -- realized returns --------------------------------------------------------------------
def test_discounted_returns_run_to_the_terminal_and_truncations_are_incomplete():
    rewards = np.array([1.0, 2.0, 4.0, 1.0, 1.0, 5.0, 7.0])
    terminals = np.array([0, 0, 1, 0, 0, 0, 0], bool)
    boundaries = np.array([0, 0, 1, 0, 1, 0, 0], bool)  # step 4: truncation; 5-6: unfinished
    returns, complete = discounted_returns(rewards, terminals, boundaries, 0.5)
    np.testing.assert_allclose(returns[:3], [1 + 1 + 1, 2 + 2, 4])
    assert complete.tolist() == [True, True, True, False, False, False, False]
    np.testing.assert_allclose(returns[3:5], [1.5, 1.0])  # partial sums, flagged incomplete


def test_realized_returns_of_replay_steps():
    buf = ReplayBuffer(8, image_shape=(2, 1, 1), prioritized=False)
    for i, r in enumerate([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]):
        buf.add(np.zeros((1, 1), np.uint8), 0, r, terminal=i in (2, 4), episode_end=False)
    steps, returns = realized_returns(buf, 0.5)
    assert steps.tolist() == [0, 1, 2, 3, 4]  # step 5's episode has not ended
    np.testing.assert_allclose(returns, [1.75, 1.5, 1.0, 3.0, 2.0])


# -- the held-out split in replay --------------------------------------------------------
def fill(buf, steps, start=0, episode_length=7):
    """Steps ``start`` .. ``steps - 1`` of episodes of 7 steps, every other one truncated."""
    for i in range(start, steps):
        end = i % episode_length == episode_length - 1
        buf.add(
            np.full((3, 3), i % 251, np.uint8),
            i % 3,
            1.0,
            terminal=end and i % 2 == 0,
            episode_end=end,
        )


def episode_of(steps, episode_length=7):
    return np.asarray(steps) // episode_length


@pytest.mark.parametrize("prioritized", [True, False])
def test_held_out_episodes_are_never_sampled_for_training(prioritized):
    from agents.heldout import held_out_mask

    buf = ReplayBuffer(
        300, image_shape=(4, 3, 3), prioritized=prioritized, heldout_fraction=0.4, heldout_seed=5
    )
    fill(buf, 420)  # 60 episodes; the buffer wraps around
    held = held_out_mask(5, 60, 0.4)
    assert 10 < held.sum() < 40 and buf.episodes == 60
    rng = np.random.default_rng(1)
    drawn = np.concatenate(
        [buf.sample_indices(32, rng, lookahead=3, n=3, exclude_newest=2) for _ in range(300)]
    )
    # No sampled step, nor any step of its lookahead window, lies in a held-out episode.
    window = drawn[:, None] + np.arange(4)[None, :]
    assert not held[episode_of(window)].any()
    # ... and every step training may sample is drawn (9,600 draws over about 90).
    stored = np.arange(120, 420 - 2)
    trainable = stored[buf._valid(stored, 3, 3)]
    assert np.unique(drawn).tolist() == trainable.tolist() and len(trainable) > 50
    if prioritized:
        assert (buf.tree.get(np.flatnonzero(buf.heldout)) == 0).all()
    probe = buf.split_indices(500, rng, lookahead=3, n=3, heldout=True)
    assert held[episode_of(probe)].all() and len(np.unique(probe)) > 50
    train = buf.split_indices(500, rng, lookahead=3, n=3, heldout=False)
    assert not held[episode_of(train[:, None] + np.arange(4))].any()


def test_without_a_held_out_split_sampling_is_unchanged():
    plain = ReplayBuffer(64, image_shape=(4, 3, 3))
    zero = ReplayBuffer(64, image_shape=(4, 3, 3), heldout_fraction=0.0, heldout_seed=5)
    fill(plain, 100)
    fill(zero, 100)
    a = plain.sample_indices(32, np.random.default_rng(3), lookahead=3, n=3)
    b = zero.sample_indices(32, np.random.default_rng(3), lookahead=3, n=3)
    np.testing.assert_array_equal(a, b)
    assert not zero.heldout.any()


def test_the_split_survives_a_state_round_trip():
    from bench.core.safe_state import round_trip

    whole = ReplayBuffer(64, image_shape=(4, 3, 3), heldout_fraction=0.5, heldout_seed=2)
    fill(whole, 90)
    half = ReplayBuffer(64, image_shape=(4, 3, 3), heldout_fraction=0.5, heldout_seed=2)
    fill(half, 40)
    resumed = ReplayBuffer(64, image_shape=(4, 3, 3), heldout_fraction=0.5, heldout_seed=2)
    resumed.load_state_dict(round_trip(half.state_dict()))
    fill(resumed, 90, start=40)
    assert resumed.episodes == whole.episodes
    np.testing.assert_array_equal(resumed.heldout, whole.heldout)
    np.testing.assert_array_equal(resumed.tree.tree, whole.tree.tree)


# -- the agent ---------------------------------------------------------------------------
def tiny(preset, **changes):
    return override(get_agent("value").preset(preset), {**TINY, **changes}, where="test")


def test_diagnostics_leave_training_alone_and_report_the_held_out_losses():
    """Calling metrics() (the diagnostics) at every step changes nothing of training; the
    held-out and training-split losses, dormant fractions, srank, norms and Q estimates are
    reported, finite."""
    cfg = tiny(
        "bbf", spr_steps=1, heldout_fraction=0.3, transition_batchnorm=True, replay_newest="needed"
    )
    entry = get_agent("value")
    logged = entry.make(cfg, obs_spec=SPEC, seed=2)  # episodes 0, 3 and 5 held out
    quiet = entry.make(cfg, obs_spec=SPEC, seed=2)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(3):
        drive(logged, SPEC, rng_a, 12)
        metrics = logged.metrics()
        drive(quiet, SPEC, rng_b, 12)
    same_state(logged.state_dict(), quiet.state_dict(), "state with and without diagnostics")
    for key in (
        "heldout_dqn_loss",
        "heldout_spr_loss",
        "train_split_dqn_loss",
        "dormant",
        "srank",
        "srank/latent",
        "grad_norm",
        "param_norm/encoder",
        "sparsity",
        "q_mean",
        "return_mean",
        "q_bias",
    ):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert metrics["heldout_dqn_loss"] > 0 and metrics["train_split_dqn_loss"] > 0
    assert 1 <= metrics["srank"] <= cfg.diagnostic_batch
    assert metrics == logged.metrics()  # a function of the state: the same when asked again
    assert logged.replay.heldout.any() and not logged.replay.heldout.all()


def test_no_diagnostics_when_the_batch_is_zero():
    agent = get_agent("value").make(tiny("der", diagnostic_batch=0), obs_spec=SPEC, seed=0)
    drive(agent, SPEC, np.random.default_rng(0), 20)
    assert set(agent.metrics()) == AGENT_METRICS  # the training metrics alone


def test_an_agent_with_a_held_out_split_meets_the_contract():
    """Its state round trip (the held-out mask and episode count included) continues
    identically, and evaluation acting leaves training and the metrics alone."""
    from agents.testing import check_agent

    check_agent(get_agent("value"), config=tiny("der", heldout_fraction=0.3), steps=30)
