import math

import numpy as np
import pytest
import torch
from torch import nn

from agents.networks import initialize
from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.testing import drive, same_state
from agents.value import (
    BBF,
    BBF_RR8,
    PRESETS,
    build_network,
    config_diff,
    ema_,
    epsilon_at,
    gamma_at,
    is_reset_step,
    n_step_at,
    parameter_counts,
    project_distribution,
    random_shift,
    shrink_perturb_,
)
from bench.core.config import override
from bench.core.errors import BenchError
from tests.agents.conftest import TINY

SPEC = ObsSpec(num_actions=4)


def tiny(preset, **changes):
    return override(PRESETS[preset], {**TINY, **changes}, where="test")


# -- C51 ---------------------------------------------------------------------------------
def test_c51_projection_by_hand():
    support = torch.tensor([-1.0, 0.0, 1.0])
    probs = torch.tensor([[0.2, 0.3, 0.5]])
    # r = 0.5, discount 0.5: atoms move to 0, 0.5, 1; the middle one splits in halves.
    out = project_distribution(support, probs, 0.5 + 0.5 * support[None])
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.35, 0.65]]))
    # r = 2, discount 1: everything lands beyond v_max and is clipped onto it.
    out = project_distribution(support, probs, 2.0 + support[None])
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 1.0]]))
    # terminal (discount 0), r = -0.25: all mass at -0.25 -> 0.25 on -1, 0.75 on 0.
    out = project_distribution(support, probs, torch.full((1, 3), -0.25))
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.75, 0.0]]))


# -- schedules ---------------------------------------------------------------------------
def test_n_and_gamma_schedules_of_bbf():
    assert [n_step_at(BBF, s) for s in (0, 5_000, 10_000, 20_000)] == [10, 5, 3, 3]
    assert gamma_at(BBF, 0) == pytest.approx(0.97)
    # 1 - gamma halfway, in log space: sqrt(0.03 * 0.003)
    assert gamma_at(BBF, 5_000) == pytest.approx(1 - math.sqrt(0.03 * 0.003))
    assert gamma_at(BBF, 10_000) == pytest.approx(0.997)
    # Fixed schedules (SR-SPR): the same value at every step.
    assert {n_step_at(PRESETS["sr-spr"], s) for s in (0, 5_000)} == {10}
    assert gamma_at(PRESETS["sr-spr"], 5_000) == pytest.approx(0.99)


def test_schedules_restart_at_a_reset():
    # Resets every 20 gradient steps = every 20 env steps at RR 1; n anneals over 10 steps.
    cfg = tiny(
        "bbf",
        anneal_steps=10,
        reset_interval=20,
        no_resets_after=10**9,
        spr_steps=1,
        replay_newest="needed",  # learning starts at env step 13 (tests/agents/conftest.py)
        replay_prefetch=0,  # a prefetched draw keeps the n and gamma of when it was drawn
    )
    agent = get_agent("value").make(cfg, obs_spec=SPEC, seed=0)
    drive(agent, SPEC, np.random.default_rng(0), 19)  # gradient steps at env steps 13..19
    assert agent.resets == 0 and agent.cycle_steps == 7
    assert agent.metrics()["n_step"] == n_step_at(cfg, 6) == 5
    drive(agent, SPEC, np.random.default_rng(1), 1)  # env step 20: update, then reset
    assert agent.resets == 1 and agent.cycle_steps == 0
    drive(agent, SPEC, np.random.default_rng(2), 1)
    assert agent.metrics()["n_step"] == 10.0
    assert agent.metrics()["gamma"] == pytest.approx(0.97)
    drive(agent, SPEC, np.random.default_rng(3), 10)
    assert agent.metrics()["n_step"] == 3.0
    assert agent.metrics()["gamma"] == pytest.approx(0.997)


def test_epsilon_schedule_of_bbf():
    assert epsilon_at(BBF, 0) == 1.0
    assert epsilon_at(BBF, 2_000) == 1.0
    assert epsilon_at(BBF, 3_000) == pytest.approx(1001 / 2001)
    assert epsilon_at(BBF, 4_001) == 0.0
    assert epsilon_at(PRESETS["der"], 10_000) == pytest.approx(0.01)


def test_reset_steps_are_gradient_steps_converted_at_the_replay_ratio():
    rr2 = [s for s in range(1, 100_001) if is_reset_step(BBF, s)]
    assert rr2 == [20_000, 40_000, 60_000, 80_000]
    rr8 = [s for s in range(1, 100_001) if is_reset_step(BBF_RR8, s)]
    assert rr8 == list(range(5_000, 100_000, 5_000))  # every 5k, none at 100k
    rr4 = override(BBF, {"replay_ratio": 4.0}, where="test")
    assert [s for s in range(1, 100_001) if is_reset_step(rr4, s)][:2] == [10_000, 20_000]
    assert not any(is_reset_step(PRESETS["spr"], s) for s in range(1, 100_001))


# -- building blocks ---------------------------------------------------------------------
def test_ema_update():
    target, online = nn.Linear(2, 2), nn.Linear(2, 2)
    nn.init.zeros_(target.weight), nn.init.zeros_(target.bias)
    nn.init.ones_(online.weight), nn.init.ones_(online.bias)
    ema_(target, online, 0.005)
    assert torch.allclose(target.weight, torch.full((2, 2), 0.005))
    ema_(target, online, 0.005)
    assert torch.allclose(target.bias, torch.full((2,), 0.005 + 0.995 * 0.005))
    ema_(target, online, 1.0)  # tau 1 copies
    assert torch.equal(target.weight, online.weight)


def test_shrink_and_perturb_arithmetic():
    class Net(nn.Module):
        def __init__(self, v):
            super().__init__()
            self.encoder = nn.Linear(2, 2)
            self.head = nn.Linear(2, 2)
            self.predictor = nn.Linear(2, 2)
            for p in self.parameters():
                nn.init.constant_(p, v)

    net, fresh = Net(2.0), Net(4.0)
    shrink_perturb_(
        net, fresh, shrink=0.8, perturb=0.2, shrink_groups=("encoder",), full_groups=("head",)
    )
    assert torch.allclose(net.encoder.weight, torch.full((2, 2), 0.8 * 2 + 0.2 * 4))
    assert torch.equal(net.head.weight, torch.full((2, 2), 4.0))
    assert torch.equal(net.predictor.bias, torch.full((2,), 2.0))  # neither: untouched


def test_edge_padded_random_shift():
    x = torch.arange(1, 1 + 2 * 2 * 6 * 6, dtype=torch.float32).view(2, 2, 6, 6)
    gen = torch.Generator().manual_seed(0)
    out = random_shift(x, 2, gen)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for b in range(2):
        crops = [
            (oy, ox)
            for oy in range(4)
            for ox in range(4)
            if torch.equal(out[b], padded[b, :, oy : oy + 6, ox : ox + 6])
        ]
        assert crops, "each sample is one crop of the edge-padded image, for all channels"
    assert (out > 0).all()  # edge replication: no zero (constant) padding leaks in
    # Offsets cover [0, 2*pad): all 16 offsets appear over many draws, never 2*pad.
    seen = set()
    for _ in range(200):
        o = random_shift(x[:1, :1], 2, gen)[0, 0]
        for oy in range(5):
            for ox in range(5):
                if torch.equal(o, padded[0, 0, oy : oy + 6, ox : ox + 6]):
                    seen.add((oy, ox))
    assert seen == {(oy, ox) for oy in range(4) for ox in range(4)}


# -- networks ----------------------------------------------------------------------------
def test_bbf_latent_is_11x11x128_and_valid_pooling_gives_9x9():
    spec = ObsSpec(num_actions=18)
    with torch.device("meta"):
        assert build_network(BBF, spec).latent_shape == (128, 11, 11)
        valid = override(BBF, {"padding": "valid"}, where="test")
        assert build_network(valid, spec).latent_shape == (128, 9, 9)
        # Quirk 3: BBF's transition model is two convs without BatchNorm; SPR's has it.
        tm = build_network(BBF, spec).transition_model
        assert tm.bn1 is None and tm.conv1.kernel_size == (3, 3)
        assert build_network(PRESETS["spr"], spec).transition_model.bn1 is not None
    net = build_network(tiny("bbf"), spec)
    initialize(net, torch.Generator().manual_seed(0), scheme="xavier_uniform")
    with torch.no_grad():
        lat = net.encode(torch.rand(2, 4, 84, 84))
    assert lat.shape == (2, 8, 11, 11)
    # Renormalized: every sample spans [0, 1].
    assert torch.allclose(lat.flatten(1).amin(1), torch.zeros(2))
    assert torch.allclose(lat.flatten(1).amax(1), torch.ones(2), atol=1e-4)


def test_bbf_parameter_counts_per_module():
    counts = parameter_counts(BBF, ObsSpec(num_actions=18))
    assert counts["encoder"] == 1_552_192
    assert counts["projection"] == 31_721_472  # (11*11*128 + 1) * 2048
    assert counts["transition_model"] == 315_904  # (146*9 + 1)*128 + (128*9 + 1)*128
    assert counts["predictor"] == 4_196_352  # 2049 * 2048
    # Dueling C51 head: (2048 + 1) * 18 * 51 + (2048 + 1) * 51. The reference's LinearHead
    # has exactly these two dense layers (no other parameters).
    assert counts["head"] == 2049 * 18 * 51 + 2049 * 51 == 1_985_481
    assert counts["total"] == 39_771_401


def test_audio_latent_is_concatenated_at_the_image_latent_size():
    spec = ObsSpec(num_actions=18, audio_shape=(4, 2048))
    with torch.device("meta"):
        net = build_network(BBF, spec)
    assert net.latent_shape == (130, 11, 11)
    counts = parameter_counts(BBF, spec)
    assert counts["transition_model"] == (148 * 9 + 1) * 130 + (130 * 9 + 1) * 130
    assert counts["projection"] == (130 * 121 + 1) * 2048
    # SEM3's encoder with VALID 1-D convs: 2048 -> 2046/2 -> 1021/2 -> 508/2 = 254 samples.
    convs = (4 * 3 + 1) * 8 + (8 * 3 + 1) * 16 + (16 * 3 + 1) * 16
    assert counts["audio_encoder"] == convs + (16 * 254 + 1) * 242


def test_xavier_init_zero_biases():
    net = build_network(tiny("der"), SPEC)
    initialize(net, torch.Generator().manual_seed(0), scheme="xavier_uniform")
    conv = net.encoder.convs[0]
    fan_in, fan_out = 4 * 64, 8 * 64
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    sigma = net.projection.weight_sigma
    assert torch.allclose(sigma, torch.full_like(sigma, 0.1 / math.sqrt(16 * 11 * 11)))


# -- presets and config ------------------------------------------------------------------
def test_presets_differ_from_bbf_only_where_the_science_does():
    diff = config_diff(BBF, PRESETS["sr-spr"])
    assert set(diff) == {
        "encoder", "width_scale", "hidden_dim", "n_step", "gamma", "gamma_start",
        "anneal_steps", "replay_ratio", "weight_decay", "reset_shrink", "reset_perturb",
        "batches_to_group",
    }  # fmt: skip
    assert config_diff(BBF, BBF_RR8) == {"replay_ratio": (2.0, 8.0)}


def test_config_overrides_are_checked():
    with pytest.raises(BenchError, match="replay_ratoi"):
        override(BBF, {"replay_ratoi": 4}, where="agent")
    assert override(BBF, {"replay_ratio": 4}, where="agent").replay_ratio == 4.0
    with pytest.raises(BenchError, match="unknown reset groups"):
        override(BBF, {"reset_full_groups": ["heads"]}, where="agent")
    with pytest.raises(BenchError, match="replay_ratio"):
        override(BBF, {"replay_ratio": -1}, where="agent")


# -- determinism and state ---------------------------------------------------------------
def _weights(agent):
    return {k: v.clone() for k, v in agent.online.state_dict().items()}


@pytest.mark.parametrize("preset", ["der", "bbf"])
def test_same_seed_gives_bit_identical_weights(preset):
    cfg = tiny(preset, spr_steps=2, reset_interval=10, no_resets_after=10**9)
    cfg = override(cfg, {"replay_newest": "needed"}, where="test")  # learning from step 13
    entry = get_agent("value")
    a, b = (entry.make(cfg, obs_spec=SPEC, seed=3) for _ in range(2))
    drive(a, SPEC, np.random.default_rng(5), 30)
    drive(b, SPEC, np.random.default_rng(5), 30)
    assert a.grad_steps == 18 and a.resets >= 1
    same_state(_weights(a), _weights(b))
    c = entry.make(cfg, obs_spec=SPEC, seed=4)
    drive(c, SPEC, np.random.default_rng(5), 30)
    assert not torch.equal(
        _weights(a)["head.advantage.weight"], _weights(c)["head.advantage.weight"]
    )


def test_save_load_mid_training_continues_identically():
    cfg = tiny("bbf", spr_steps=2, reset_interval=12, no_resets_after=10**9)
    cfg = override(cfg, {"replay_newest": "needed"}, where="test")  # learning from step 13
    entry = get_agent("value")
    straight = entry.make(cfg, obs_spec=SPEC, seed=1)
    interrupted = entry.make(cfg, obs_spec=SPEC, seed=1)
    stream = np.random.SeedSequence(9)
    rng1, rng2 = np.random.default_rng(stream), np.random.default_rng(stream)
    drive(straight, SPEC, rng1, 20)
    drive(interrupted, SPEC, rng2, 20)
    saved = interrupted.state_dict()
    drive(interrupted, SPEC, np.random.default_rng(0), 5)  # work that is then thrown away
    resumed = entry.make(cfg, obs_spec=SPEC, seed=99)
    resumed.load_state_dict(saved)
    drive(straight, SPEC, rng1, 15)
    drive(resumed, SPEC, rng2, 15)
    assert straight.grad_steps == resumed.grad_steps == 23 and straight.resets >= 1
    same_state(straight.state_dict(), resumed.state_dict())


def test_loading_a_state_of_another_config_fails():
    entry = get_agent("value")
    a = entry.make(tiny("der"), obs_spec=SPEC, seed=0)
    b = entry.make(tiny("der", learning_rate=3e-4), obs_spec=SPEC, seed=0)
    with pytest.raises(ValueError, match="different config"):
        b.load_state_dict(a.state_dict())


def test_reset_shrinks_and_perturbs_online_and_target_with_their_own_draws():
    cfg = tiny("bbf", spr_steps=2)
    agent = get_agent("value").make(cfg, obs_spec=SPEC, seed=0)
    drive(agent, SPEC, np.random.default_rng(0), 20)
    old_online, old_target = (
        _weights(agent),
        {k: v.clone() for k, v in agent.target.state_dict().items()},
    )
    state = agent.gen.get_state()
    fresh_online = agent._new_network().state_dict()
    fresh_target = agent._new_network().state_dict()
    agent.gen.set_state(state)
    agent._reset()
    new_online, new_target = agent.online.state_dict(), agent.target.state_dict()
    key = "encoder.stages.0.conv.weight"
    torch.testing.assert_close(new_online[key], 0.5 * old_online[key] + 0.5 * fresh_online[key])
    torch.testing.assert_close(new_target[key], 0.5 * old_target[key] + 0.5 * fresh_target[key])
    for key in ("head.advantage.weight", "projection.weight", "predictor.weight"):
        assert torch.equal(new_online[key], fresh_online[key])
        assert torch.equal(new_target[key], fresh_target[key])
    assert not torch.equal(fresh_online[key], fresh_target[key])
    assert agent.optimizer.state == {}  # the reference rebuilds the whole optimizer state
    assert agent.cycle_steps == 0 and agent.resets == 1


def test_torch_default_init_is_an_option():
    net = build_network(tiny("der", init="torch_default"), SPEC)
    initialize(net, torch.Generator().manual_seed(0), scheme="torch_default")
    assert net.encoder.convs[0].bias.abs().max() > 0


@pytest.mark.parametrize(("preset", "target_acts"), [("bbf", True), ("der", False)])
def test_which_network_acts(preset, target_acts):
    agent = get_agent("value").make(tiny(preset, noisy=False), obs_spec=SPEC, seed=0)
    obs = {"image": np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84), np.uint8)}
    before = agent.act(obs, eval_mode=True, epsilon=0.001)
    with torch.no_grad():  # the online network: action 3's mass all on v_max, everywhere
        agent.online.head.advantage.bias.view(4, -1)[3, -1] += 100.0
    agent.eval_rng = np.random.default_rng(1)  # epsilon 0.001: no random action here
    after = agent.act(obs, eval_mode=True, epsilon=0.001)
    if target_acts:
        assert after.tolist() == before.tolist()
    else:
        assert after.tolist() == [3] * 8
