"""The `spr` preset against SPR's own code (mila-iqia/spr at 0b9dd4e, over rlpyt): each
quirk is a field of ValueConfig whose other setting fails the test of it (agents/README.md,
"Fidelity", gives the reference file and line of each)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.networks import StreamProjection, renormalize
from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.replay import ReplayBuffer
from agents.value import PRESETS, ValueConfig, build_network, epsilon_at, importance_at
from bench.core.config import override
from bench.core.errors import BenchError
from tests.agents.conftest import TINY

SPEC = ObsSpec(num_actions=4)
SPR = PRESETS["spr"]


def tiny(**changes: object) -> ValueConfig:
    return override(SPR, {**TINY, **changes}, where="test")


def make(cfg: ValueConfig, seed: int = 0):
    return get_agent("value").make(cfg, obs_spec=SPEC, seed=seed)


def latent_of(agent, n: int = 8, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    image = torch.as_tensor(rng.integers(0, 256, (n, 4, 84, 84)), dtype=torch.float32) / 255
    return agent.online.encode(image)


# -- (a) the head: a hidden layer per stream, SPR's projection their concatenation --------
def test_head_streams_and_the_spr_projection():
    """SPR's dueling head has a 256 hidden layer per stream (models.py:607-629); its SPR
    projection (QL1Head with q_l1_type value advantage, models.py:656-687) concatenates the
    first layers of both, without noise or ReLU, and the predictor is 512 -> 512."""
    assert SPR.head_structure == "streams" and SPR.hidden_dim == 256
    agent = make(tiny(noisy=False))
    net = agent.online
    hidden = TINY["hidden_dim"]
    latent = latent_of(agent)
    x = latent.flatten(1)
    proj = net.projection
    assert isinstance(proj, StreamProjection)
    assert net.predictor.in_features == net.predictor.out_features == 2 * hidden
    expected = torch.cat([proj.value(x), proj.advantage(x)], 1)
    torch.testing.assert_close(net.project(latent), expected, rtol=0, atol=0)
    # logits: value = head.value(relu(value hidden)), advantage from its own stream
    value = net.head.value(F.relu(proj.value(x))).view(-1, 1, net.head.num_atoms)
    adv = net.head.advantage(F.relu(proj.advantage(x))).view(-1, 4, net.head.num_atoms)
    torch.testing.assert_close(net.logits(latent), value + adv - adv.mean(1, keepdim=True))
    with torch.device("meta"):
        full = build_network(SPR, ObsSpec(num_actions=6))
    shapes = {n: p.shape for n, p in full.named_parameters()}
    assert shapes["projection.value.weight"] == (256, 64 * 7 * 7)
    assert shapes["projection.advantage.weight"] == (256, 64 * 7 * 7)
    assert shapes["predictor.weight"] == (512, 512)
    # one shared hidden layer (BBF's structure) is SPR's projection itself: 1 x hidden
    shared = make(tiny(noisy=False, head_structure="shared"))
    assert not isinstance(shared.online.projection, StreamProjection)
    assert shared.online.project(latent_of(shared)).shape[1] == hidden


def test_streams_need_dueling():
    with pytest.raises(BenchError, match="head_structure"):
        tiny(dueling=False)


def test_head_scales_its_gradient_into_the_latent():
    """SPR's dueling head calls scale_grad(input, 2^-1/2) (models.py:602, 636): the RL
    loss's gradient into the encoder is scaled; the forward pass is unchanged."""
    assert SPR.head_grad_scale == pytest.approx(2**-0.5)
    grads, outs = {}, {}
    for s in (SPR.head_grad_scale, 1.0):
        agent = make(tiny(head_grad_scale=s, noisy=False))
        latent = latent_of(agent).detach().requires_grad_(True)
        out = agent.online.logits(latent)
        out.square().sum().backward()
        grads[s], outs[s] = latent.grad, out.detach()
    torch.testing.assert_close(outs[SPR.head_grad_scale], outs[1.0], rtol=0, atol=0)
    torch.testing.assert_close(grads[SPR.head_grad_scale], grads[1.0] * 2**-0.5)
    assert float(grads[1.0].abs().max()) > 0


# -- (b) the transition model: conv, ReLU, BN, conv, ReLU, renormalize --------------------
def test_transition_model_layer_order():
    """SPR's TransitionModel (models.py:927-934, 945-959): Conv2dSame, ReLU, BatchNorm,
    Conv2dSame, then ReLU and renormalize; one BatchNorm."""
    assert SPR.transition_norm_order == "conv_relu_bn" and SPR.transition_batchnorm
    outs = {}
    for order in ("conv_relu_bn", "conv_bn_relu"):
        agent = make(tiny(transition_norm_order=order))
        tm = agent.online.transition_model
        with torch.no_grad():  # non-trivial BatchNorm affine parameters
            tm.bn1.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
            tm.bn1.bias.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(2))
        latent = latent_of(agent).detach()
        action = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
        onehot = F.one_hot(action, 4).float()[:, :, None, None].expand(-1, -1, 7, 7)
        x = F.relu(tm.conv1(torch.cat([latent, onehot], 1)))
        outs[order] = (tm(latent, action), renormalize(F.relu(tm.conv2(tm.bn1(x)))))
        assert (tm.bn2 is None) == (order == "conv_relu_bn")
    torch.testing.assert_close(*outs["conv_relu_bn"])
    assert not torch.allclose(*outs["conv_bn_relu"], atol=1e-3)


# -- (c) noisy bias sigma and PyTorch's default init -------------------------------------
def test_noisy_bias_sigma():
    """SPR's NoisyLinear: weight sigma sigma0/sqrt(in), bias sigma sigma0/sqrt(out)
    (models.py:717-726); Dopamine's divides both by sqrt(in)."""
    assert SPR.noisy_bias_sigma == "fan_out"
    for fan in ("fan_out", "fan_in"):
        layer = make(tiny(noisy_bias_sigma=fan)).online.projection.value
        flat, hidden = layer.in_features, layer.out_features
        assert flat != hidden
        sigma = layer.weight_sigma.detach()
        torch.testing.assert_close(sigma, torch.full_like(sigma, 0.5 / math.sqrt(flat)))
        bias_fan = hidden if fan == "fan_out" else flat
        assert float(layer.bias_sigma.detach()[0]) == pytest.approx(0.5 / math.sqrt(bias_fan))


def test_spr_uses_pytorch_default_init():
    """No init function reaches SPR's convs, transition model or predictor (weights_init is
    applied only to non-noisy MLP heads, models.py:537-538, 576-577): PyTorch's defaults,
    weight and bias uniform in +-1/sqrt(fan_in); noisy mu the same (models.py:718-726)."""
    assert SPR.init == "torch_default"
    net = make(tiny()).online
    conv = net.encoder.convs[0].requires_grad_(False)
    bound = 1 / math.sqrt(conv.weight[0].numel())
    assert float(conv.weight.abs().max()) <= bound
    assert float(conv.weight.abs().max()) > 0.95 * bound  # Xavier's bound is wider here
    assert float(conv.bias.abs().min()) > 0  # Xavier (BBF's Flax init) zeroes biases
    xavier = make(tiny(init="xavier_uniform")).online.encoder.convs[0]
    assert float(xavier.bias.detach().abs().max()) == 0.0


# -- (d) rlpyt's prioritized replay ----------------------------------------------------
def test_new_items_enter_at_priority_one():
    """rlpyt's SumTree turns new items on at default_priority ** alpha = 1 (sum_tree.py
    reconstruct_advance; prioritized.py:65), not at the maximum priority so far."""
    assert SPR.new_priority == "one"
    for mode, expected in (("one", 1.0), ("max", 7.0)):
        buf = ReplayBuffer(16, image_shape=(4, 8, 8), new_priority=mode)
        frame = np.zeros((8, 8), np.uint8)
        buf.add(frame, 0, 0.0, terminal=False, episode_end=False)
        buf.update_priorities(np.array([0]), np.array([7.0]))
        buf.add(frame, 0, 0.0, terminal=False, episode_end=False)
        assert float(buf.tree.get(np.array([1]))[0]) == expected


def test_prioritized_sampling_is_not_stratified():
    """rlpyt's SumTree.sample draws n uniform values over the whole mass (sum_tree.py:107):
    with equal priorities a batch as large as the buffer repeats items; one draw per
    equal-mass stratum (Dopamine, BBF) takes each item exactly once."""
    assert SPR.priority_sampling == "independent"
    agent = make(tiny())
    assert agent.replay.stratified is False

    def distinct(stratified: bool) -> list[int]:
        buf = ReplayBuffer(64, image_shape=(4, 8, 8), stratified=stratified)
        for _ in range(64):
            buf.add(np.zeros((8, 8), np.uint8), 0, 0.0, terminal=False, episode_end=False)
        draws = [
            buf.sample_indices(64, np.random.default_rng(s), lookahead=0, n=1) for s in range(5)
        ]
        return [len(set(d.tolist())) for d in draws]

    assert distinct(True) == [64] * 5
    assert max(distinct(False)) < 64


def test_the_newest_seventeen_steps_are_never_sampled():
    """rlpyt's tree turns a sequence on 1 + n + batch_T steps behind its cursor
    (sequence/prioritized.py:58, sum_tree.py:74-82): 1 + 10 + 6 = 17 with SPR's settings."""
    assert SPR.replay_newest == "rlpyt"
    drawn = {}
    for mode in ("rlpyt", "needed"):
        agent = make(tiny(replay_newest=mode, learning_starts=10**6, batch_size=64))
        from agents.testing import drive

        drive(agent, SPEC, np.random.default_rng(0), 60)
        drawn[mode] = max(int(agent._draw(1).index.max()) for _ in range(20))
        assert agent._exclude_newest() == {"rlpyt": 17, "needed": 0}[mode]
    assert drawn["rlpyt"] == 60 - 18  # the newest allowed: count - 17 - 1, drawn at last
    assert drawn["needed"] > 60 - 18


def test_importance_exponent_is_annealed_from_learning_start():
    """rlpyt's update_itr_hyperparams (dqn.py:266-271): beta 0.4 until min_itr_learn
    (2,000), then linear to 1 at pri_beta_steps (100,000; SPR utils.py:40)."""
    assert SPR.importance_anneal_from == "learning_starts"
    assert importance_at(SPR, 2_000) == pytest.approx(0.4)
    assert importance_at(SPR, 51_000) == pytest.approx(0.7)
    assert importance_at(SPR, 100_000) == pytest.approx(1.0)
    from_zero = override(SPR, {"importance_anneal_from": "start"}, where="test")
    assert importance_at(from_zero, 2_000) == pytest.approx(0.412)


def test_priorities_are_the_square_root_of_the_kl():
    """rlpyt writes priorities ** alpha with alpha 0.5 (prioritized.py:113-115, SPR
    utils.py:39) of the KL divergence (algos.py:148, 252-256)."""
    assert SPR.priority_exponent == 0.5 and SPR.priority_signal == "kl"
    agent = make(tiny(learning_starts=10**6))
    writes = []
    agent.replay.update_priorities = lambda slots, p: writes.append(p)
    agent._update_priorities(np.arange(3), torch.tensor([0.25, 4.0, 1e-6]))
    np.testing.assert_allclose(writes[0], np.sqrt([0.25, 4.0, 1e-6] + np.float64(1e-10)))


# -- (e) gradient clipping in two groups --------------------------------------------------
@pytest.mark.parametrize("groups", ["stem_dynamics", "all"])
def test_gradient_clipping_groups(groups):
    """SPR clips stem_parameters() (encoder and head, whose first layers are its
    projection) and the dynamics model separately at 10, and the predictor not at all
    (algos.py:139-145, models.py:395-396)."""
    assert SPR.grad_clip_groups == "stem_dynamics" and SPR.grad_clip_norm == 10.0
    agent = make(tiny(grad_clip_groups=groups, learning_rate=1e-30))
    params = dict(agent.online.named_parameters())
    loss = sum((p * 1000.0).sum() for p in params.values())
    agent._apply_gradient(loss)

    def norm(prefixes: tuple[str, ...]) -> float:
        grads = [p.grad for n, p in params.items() if n.split(".")[0] in prefixes]
        return float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))

    stem = ("encoder", "projection", "head")
    if groups == "stem_dynamics":
        assert norm(stem) == pytest.approx(10.0, rel=1e-4)
        assert norm(("transition_model",)) == pytest.approx(10.0, rel=1e-4)
        assert float(params["predictor.weight"].grad.abs().min()) == pytest.approx(1000.0)
    else:
        assert norm(stem + ("transition_model", "predictor")) == pytest.approx(10.0, rel=1e-4)


# -- (f) epsilon and evaluation noise ------------------------------------------------------
def test_epsilon_drops_from_one_to_zero_at_once():
    """rlpyt's ramp runs from itr min_itr_learn (2,000) to eps_steps (2,001): epsilon 1
    through the first 2,000 steps, 0 from step 2,001 (epsilon_greedy.py:100-111, dqn.py:93-95;
    SPR run.py:124-127)."""
    assert epsilon_at(SPR, 2_000) == 1.0
    assert epsilon_at(SPR, 2_001) == 0.0
    linear = override(SPR, {"epsilon_decay_steps": 2_001}, where="test")
    assert epsilon_at(linear, 2_001) == pytest.approx(2_000 / 2_001)


def test_no_noise_at_evaluation():
    """eval_mode sets the head's sampling off (agent.py:53-58, models.py:744-752)."""
    assert SPR.noise_in_eval is False
    obs = {"image": np.random.default_rng(3).integers(0, 256, (64, 4, 84, 84), np.uint8)}
    agent = make(tiny())
    first = agent.act(obs, eval_mode=True, epsilon=0.0)
    assert (agent.act(obs, eval_mode=True, epsilon=0.0) == first).all()
    noisy = make(tiny(noise_in_eval=True, noisy_sigma0=50.0))
    a = noisy.act(obs, eval_mode=True, epsilon=0.0)
    assert (noisy.act(obs, eval_mode=True, epsilon=0.0) != a).any()


def test_spr_preset_trains():
    """The whole preset takes gradient steps and its losses are finite."""
    agent = make(tiny(learning_starts=12))
    from agents.testing import drive

    drive(agent, SPEC, np.random.default_rng(0), 30)
    assert agent.grad_steps > 0
    assert all(math.isfinite(agent.last[k]) for k in ("loss", "dqn_loss", "spr_loss"))
