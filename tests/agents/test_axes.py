"""The ablation axes of the value agent: each field changes what it claims (value losses,
soft-MoE and tokenization, encoder depth, the masked contrastive loss, pruning, replay
ratio and resets), the contract holds with them on, and a run with them resumes exactly."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.contrastive import masked_contrastive_loss
from agents.losses import bin_centers, bin_edges, hl_gauss_loss, hl_gauss_targets, info_nce
from agents.moe import SoftMoEProjection, soft_moe_parameters, token_shape
from agents.protocol import ObsSpec
from agents.pruning import MagnitudePruner, is_prune_step, prunable_weights, sparsity_at
from agents.registry import get_agent
from agents.testing import check_agent, drive, same_state
from agents.value import PRESETS, ValueConfig, parameter_counts, planned_updates
from bench.core.config import override
from bench.core.errors import BenchError
from tests.agents.conftest import TINY

SPEC = ObsSpec(num_actions=4)


def tiny(preset: str, **changes: object) -> ValueConfig:
    return override(PRESETS[preset], {**TINY, **changes}, where="test")


def make(cfg: ValueConfig, seed: int = 0):
    return get_agent("value").make(cfg, obs_spec=SPEC, seed=seed)


def a_batch(agent):
    """A real replay batch of a filled agent, as the tensors a gradient step sees."""
    b = agent.replay.sample(
        agent.cfg.batch_size,
        np.random.default_rng(0),
        n=3,
        gamma=0.99,
        subseq=agent._subseq(),
        bootstrap="fixed",
        spr_mask="fixed",
    )
    return agent._inputs(b)


# -- HL-Gauss ---------------------------------------------------------------------------
def test_hl_gauss_targets_sum_to_one_and_center_on_the_return():
    edges = bin_edges(-10.0, 10.0, 51)
    centers = bin_centers(-10.0, 10.0, 51)
    width = 20.0 / 51
    returns = torch.tensor([0.0, 1.3, -4.2, 7.77, 25.0])
    probs = hl_gauss_targets(returns, edges, 0.75 * width)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))
    assert (probs >= 0).all()
    mean = (probs * centers).sum(-1)
    assert abs(mean[0]) < 1e-6  # symmetric bins around 0
    torch.testing.assert_close(mean[1:4], returns[1:4], atol=1e-3 * width, rtol=0)
    assert 10 - width < mean[4] < 10  # clipped to the support, cut at its edge
    # The mass of bin i is the Gaussian's mass between its edges: the bin of 1.3 and its
    # neighbours hold Phi(+-0.5/0.75)-style masses, the same on both sides when centred.
    centred = hl_gauss_targets(centers[30:31], edges, 0.75 * width)[0]
    assert centred.argmax() == 30
    torch.testing.assert_close(centred[29], centred[31])
    expected = math.erf(0.5 / 0.75 / math.sqrt(2))  # P(|z| < 0.5 / 0.75)
    assert float(centred[30]) == pytest.approx(expected, abs=1e-5)


def test_hl_gauss_loss_is_the_cross_entropy_to_the_targets():
    torch.manual_seed(0)
    target = hl_gauss_targets(torch.tensor([0.4, -2.0]), bin_edges(-5.0, 5.0, 21), 0.3)
    logits = torch.randn(2, 21)
    torch.testing.assert_close(
        hl_gauss_loss(logits, target), F.cross_entropy(logits, target, reduction="none")
    )
    log_target = target.clamp(min=1e-30).log()
    best = hl_gauss_loss(log_target, target)  # the minimum: the entropy of the targets
    torch.testing.assert_close(best, -(target * log_target).sum(-1))
    assert (best < hl_gauss_loss(logits, target)).all()


@pytest.fixture(scope="module")
def filled_bbf():
    """Tiny BBF agents (learning off) with replay filled, per value loss."""

    def build(**changes):
        agent = make(tiny("bbf", spr_steps=2, learning_starts=10**6, **changes))
        drive(agent, SPEC, np.random.default_rng(1), 30)
        return agent

    return build


def test_hl_gauss_value_loss_trains_the_head_on_the_histogram_of_the_td_target(filled_bbf):
    agent = filled_bbf(value_loss="hl_gauss", hl_gauss_sigma=1.5)
    centers = bin_centers(-10.0, 10.0, 51)
    torch.testing.assert_close(agent.support, centers)  # Q is the histogram's mean
    x = a_batch(agent)
    returns = torch.tensor([0.3, -1.7, 4.0, 9.0])
    x = dataclasses.replace(x, returns=returns, discounts=torch.zeros(4))  # target = return
    with torch.no_grad():
        target, _ = agent._targets(x)
    expected = hl_gauss_targets(returns, bin_edges(-10.0, 10.0, 51), 1.5 * 20 / 51)
    torch.testing.assert_close(target, expected)
    latent, loss, log_probs = agent._dqn_loss(x, target)
    logits = agent.online.logits(latent)[x.rows, x.actions[:, 0]]
    torch.testing.assert_close(loss, hl_gauss_loss(logits, expected))
    assert log_probs is not None


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_scalar_value_losses_override_the_distributional_preset(filled_bbf, kind):
    agent = filled_bbf(value_loss=kind)
    assert agent.online.head.num_atoms == 1  # a scalar head on BBF
    x = a_batch(agent)
    target = torch.tensor([3.0, -2.0, 0.5, 0.0])
    latent, loss, _ = agent._dqn_loss(x, target)
    q = agent.online.logits(latent)[x.rows, x.actions[:, 0]].squeeze(-1)
    expected = (target - q) ** 2 if kind == "mse" else F.huber_loss(q, target, reduction="none")
    torch.testing.assert_close(loss, expected)


def test_auto_value_loss_keeps_every_preset():
    for name, cfg in PRESETS.items():
        assert cfg.value_loss == "auto", name
    dqn = make(tiny("dqn"))
    assert dqn.loss_kind == "mse" and make(tiny("der")).loss_kind == "c51"


# -- masked contrastive -----------------------------------------------------------------
def test_masked_contrastive_loss_is_minimal_when_queries_equal_keys():
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(4, 6, 16, generator=gen)
    masked = torch.rand(4, 6, generator=gen) < 0.5
    masked[:, 0] = True
    valid = torch.ones(4, 6, dtype=torch.bool)
    same = masked_contrastive_loss(keys, keys, masked, valid, temperature=0.1)
    shuffled = keys.flatten(0, 1)[torch.randperm(24, generator=gen)].view_as(keys)
    worse = masked_contrastive_loss(shuffled, keys, masked, valid, temperature=0.1)
    noisy = keys + 0.5 * torch.randn(keys.shape, generator=gen)
    nearer = masked_contrastive_loss(noisy, keys, masked, valid, temperature=0.1)
    assert (same < nearer).all() and nearer.mean() < worse.mean()
    assert float(same.max()) < 0.05  # each query picks its own key out of 24
    # A position past a terminal is neither a query nor a negative key.
    valid[1, 3:] = False
    cut = masked_contrastive_loss(keys, keys, masked, valid, temperature=0.1)
    moved = keys.clone()
    moved[1, 3:] = keys[2, 0]  # an invalid key equal to a valid one: no effect
    torch.testing.assert_close(
        cut, masked_contrastive_loss(keys, moved, masked, valid, temperature=0.1)
    )
    none = masked_contrastive_loss(keys, keys, torch.zeros_like(masked), valid, temperature=0.1)
    assert torch.equal(none, torch.zeros(4))


def test_info_nce_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # cosine: the norm does not count
    loss = info_nce(q, k, temperature=0.5)
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    torch.testing.assert_close(loss, torch.full((2,), expected))


def test_sequence_model_hides_masked_frames_and_ignores_padding():
    from agents.contrastive import MaskedSequenceModel
    from agents.networks import initialize

    torch.manual_seed(0)
    model = MaskedSequenceModel(12, seq_len=5, depth=2, width=8)
    initialize(model, torch.Generator().manual_seed(0), scheme="xavier_uniform")
    with torch.no_grad():
        model.mask_token.normal_()
    features = torch.randn(2, 5, 12)
    masked = torch.tensor([[False, True, False, True, False], [True, False, False, False, False]])
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    out = model(features, masked, padding)
    changed = features.clone()
    changed[masked] = torch.randn(3, 12)  # what is masked is never seen
    changed[1, 3:] = torch.randn(2, 12)  # nor what is padded (past a terminal)
    again = model(changed, masked, padding)
    torch.testing.assert_close(again[0], out[0])
    torch.testing.assert_close(again[1, :3], out[1, :3])
    unmasked = model(features, torch.zeros_like(masked), padding)
    assert not torch.allclose(unmasked[0], out[0])  # the mask token does replace them
    # Depth: each layer adds attention (q, k, v, out: 4 w^2 + 4 w), feed-forward
    # (8 w^2 + 5 w) and two LayerNorms (4 w); w = 8.
    deeper = MaskedSequenceModel(12, seq_len=5, depth=3, width=8)
    extra = sum(p.numel() for p in deeper.parameters()) - sum(p.numel() for p in model.parameters())
    assert extra == 4 * 64 + 4 * 8 + 8 * 64 + 5 * 8 + 4 * 8


MCR = {"mcr_weight": 1.0, "mcr_seq_len": 4, "mcr_depth": 1, "mcr_width": 8}


def test_masked_contrastive_adds_its_module_loss_and_momentum_key_encoder():
    cfg = tiny("der", **MCR, prioritized=False)  # uniform weights: the loss is a plain mean
    counts = parameter_counts(cfg, SPEC)
    agent = make(cfg)
    module = agent.online.sequence_model
    assert counts["sequence_model"] == sum(p.numel() for p in module.parameters())
    assert "sequence_model" not in parameter_counts(tiny("der"), SPEC)
    assert agent._subseq() == 4  # DER has no SPR: the sequence sets the subsequence
    drive(agent, SPEC, np.random.default_rng(0), 14)  # learning starts at 13
    key_before = {k: v.clone() for k, v in agent.key_net.state_dict().items()}
    agent._train(1)
    online = agent.online.state_dict()
    name = "encoder.convs.0.weight"
    torch.testing.assert_close(
        agent.key_net.state_dict()[name], 0.95 * key_before[name] + 0.05 * online[name]
    )
    last = agent.metrics()
    assert last["mcr_loss"] > 0
    assert last["loss"] == pytest.approx(last["dqn_loss"] + last["mcr_loss"], rel=1e-4)


# -- soft-MoE and tokenization ----------------------------------------------------------
def test_soft_moe_parameter_counts_by_hand():
    def count(**kw):
        moe = SoftMoEProjection((8, 3, 3), tokens="per_position", out_dim=32, **kw)
        return sum(p.numel() for p in moe.parameters()), moe

    n4, moe4 = count(experts=4, expert_dim=16, single_expert=False)
    # phi 8 x 4 x 3 slots; 4 experts of 8->16->8 with biases; 9 tokens x 8 -> 32
    assert n4 == 96 + 4 * (128 + 16 + 128 + 8) + (72 * 32 + 32) == 3552
    assert n4 == soft_moe_parameters(9, 8, experts=4, expert_dim=16, out_dim=32)
    n1, moe1 = count(experts=4, expert_dim=16, single_expert=True)  # one expert, 64 units
    assert (moe1.experts, moe1.expert_dim, moe1.slots) == (1, 64, 9)
    assert n1 == 72 + (512 + 64 + 512 + 8) + 2336 == 3504
    assert n1 == soft_moe_parameters(9, 8, experts=1, expert_dim=64, out_dim=32)
    experts = [m.w1.numel() + m.b1.numel() + m.w2.numel() for m in (moe4, moe1)]
    assert experts[0] == experts[1]  # the same expert capacity, spread or single
    assert token_shape(8, 3, 3, "per_channel") == (8, 9)


def test_soft_moe_replaces_the_projection_per_tokenization():
    dense = parameter_counts(tiny("der"), SPEC)
    c, h, w = make(tiny("der")).online.latent_shape
    for tokens in ("per_position", "per_channel"):
        cfg = tiny("der", moe_experts=2, moe_expert_dim=8, moe_tokens=tokens)
        counts = parameter_counts(cfg, SPEC)
        n_tok, dim = token_shape(c, h, w, tokens)
        assert counts["projection"] == soft_moe_parameters(
            n_tok, dim, experts=2, expert_dim=8, out_dim=32
        )
        assert counts["head"] == dense["head"] and counts["encoder"] == dense["encoder"]
    agent = make(tiny("der", noisy=False, moe_experts=2, moe_expert_dim=8))
    latent = torch.rand(3, c, h, w)
    out = agent.online.logits(latent)
    assert out.shape == (3, 4, 51) and torch.isfinite(out).all()
    # Soft-MoE mixes tokens: permuting the positions of the latent permutes the tokens,
    # which the flattening after the experts sees: the output changes.
    permuted = latent.flatten(2)[:, :, torch.randperm(h * w)].view_as(latent)
    assert not torch.allclose(agent.online.logits(permuted), out)


def test_impala_blocks_set_the_encoder_depth():
    counts = {
        b: parameter_counts(tiny("bbf", impala_blocks=b), SPEC)["encoder"] for b in (0, 1, 2, 3)
    }
    dims = (4, 8, 8)  # (16, 32, 32) x 0.25
    block = sum(2 * (9 * d * d + d) for d in dims)  # two 3x3 convs per block and stage
    assert counts[1] - counts[0] == counts[2] - counts[1] == counts[3] - counts[2] == block
    assert len(make(tiny("bbf", impala_blocks=3)).online.encoder.stages[0].blocks) == 3


# -- pruning ----------------------------------------------------------------------------
def test_cubic_sparsity_schedule():
    s = [sparsity_at(t, target=0.9, start=20, end=80) for t in (0, 19, 20, 50, 80, 500)]
    assert s == [0.0, 0.0, 0.0, pytest.approx(0.9 * (1 - 0.5**3)), 0.9, 0.9]
    steps = [t for t in range(100) if is_prune_step(t, start=20, end=80, every=25)]
    assert steps == [20, 45, 70, 80]


def test_pruner_keeps_the_largest_weights_and_they_stay_zero_through_adam():
    layer = torch.nn.Linear(10, 10)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(100.0).view(10, 10) - 49.5)
    net = torch.nn.ModuleDict({"head": layer})
    pruner = MagnitudePruner(net)
    pruner.update(0.6)
    pruner.apply()
    kept = layer.weight.abs() > 0
    assert int(kept.sum()) == 40 and layer.weight.abs()[kept].min() >= 20
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.ones(2, 10)).pow(2).sum().backward()
        opt.step()
        pruner.apply()
    assert torch.equal(layer.weight.abs() > 0, kept)  # pruned stay zero, the others moved
    assert pruner.sparsity() == pytest.approx(0.6)


def test_agent_prunes_dense_layers_on_schedule():
    cfg = tiny(
        "bbf",
        spr_steps=2,
        prune_sparsity=0.8,
        prune_start=14,
        prune_end=24,
        prune_every=2,
        reset_interval=20,
        no_resets_after=10**6,
    )
    agent = make(cfg)
    rng = np.random.default_rng(0)
    reached = []
    for step in range(1, 31):
        drive(agent, SPEC, rng, 1)
        reached.append(agent.metrics()["prune_sparsity"])
        expect = sparsity_at(step - step % 2 if step <= 24 else 24, target=0.8, start=14, end=24)
        assert reached[-1] == pytest.approx(expect, abs=0.01), step
    assert agent.grad_steps > 10 and agent.resets >= 1  # masks held through steps and resets
    for name, ws in prunable_weights(agent.online).items():
        mask = agent.pruner.masks[name]
        assert all(torch.equal(w[~mask], torch.zeros_like(w[~mask])) for w in ws), name
        assert (ws[0][mask] != 0).float().mean() > 0.99
    assert {n.split(".")[0] for n in agent.pruner.masks} == {"projection", "predictor", "head"}


# -- replay ratio and resets ------------------------------------------------------------
@pytest.mark.parametrize(("ratio", "interval"), [(0.25, 2), (16.0, 32)])
def test_replay_ratio_and_resets_in_gradient_steps(ratio, interval):
    cfg = tiny("der", replay_ratio=ratio, reset_interval=interval, no_resets_after=10**6)
    agent = make(cfg)
    rng = np.random.default_rng(0)
    grads, at_reset = [], []
    steps = 36 if ratio < 1 else 17
    for _ in range(steps):
        resets = agent.resets
        drive(agent, SPEC, rng, 1)
        grads.append(agent.grad_steps)
        if agent.resets > resets and agent.grad_steps > 0:  # (before learning: no-ops)
            at_reset.append(agent.grad_steps)
    assert agent.grad_steps == planned_updates(cfg, steps) == int(ratio * (steps - 12))
    per_env_step = np.diff([0, *grads])
    if ratio < 1:  # learning from env step 13: one step every 4 env steps, at fixed steps
        assert (np.flatnonzero(per_env_step) + 1).tolist() == [16, 20, 24, 28, 32, 36]
        assert set(per_env_step[per_env_step > 0].tolist()) == {1}
    else:
        assert per_env_step[12:].tolist() == [16] * (steps - 12)
    # Resets every `interval` gradient steps: every 8 env steps at RR 0.25, 2 at RR 16.
    assert len(at_reset) >= 2 and set(np.diff(at_reset).tolist()) == {interval}


# -- the contract and exact resume with the options on ----------------------------------
ALL_ON = {
    "spr_weight": 1.0,
    "spr_steps": 2,
    "value_loss": "hl_gauss",
    "moe_experts": 2,
    "moe_expert_dim": 8,
    "prune_sparsity": 0.5,
    "prune_start": 14,
    "prune_end": 40,
    "prune_every": 3,
    **MCR,
}


@pytest.mark.parametrize(
    "changes",
    [
        ALL_ON,
        {
            "value_loss": "huber",
            "moe_experts": 3,
            "moe_expert_dim": 4,
            "moe_tokens": "per_channel",
            "moe_single_expert": True,
        },
    ],
    ids=["hl_gauss+moe+mcr+pruning", "huber+per_channel+single_expert"],
)
def test_contract_with_the_axes_on(changes):
    check_agent(get_agent("value"), config=tiny("der", **changes), obs_spec=SPEC, steps=25)


def test_resume_with_pruning_and_masked_contrastive_is_exact():
    cfg = tiny("der", **ALL_ON, reset_interval=12, no_resets_after=10**9)
    straight, interrupted = make(cfg, 1), make(cfg, 1)
    stream = np.random.SeedSequence(9)
    rng1, rng2 = np.random.default_rng(stream), np.random.default_rng(stream)
    drive(straight, SPEC, rng1, 20)
    drive(interrupted, SPEC, rng2, 20)
    saved = interrupted.state_dict()
    assert set(saved) >= {"key_net", "pruning"}
    drive(interrupted, SPEC, np.random.default_rng(0), 5)  # thrown away
    resumed = make(cfg, 99)
    resumed.load_state_dict(saved)
    drive(straight, SPEC, rng1, 12)
    drive(resumed, SPEC, rng2, 12)
    assert straight.resets >= 1 and 0 < straight.metrics()["prune_sparsity"] < 0.5
    same_state(straight.state_dict(), resumed.state_dict())


def test_axis_fields_are_checked():
    for changes, name in [
        ({"value_loss": "l1"}, "value_loss"),
        ({"hl_gauss_sigma": 0}, "hl_gauss_sigma"),
        ({"mcr_weight": 1.0, "mcr_seq_len": 1}, "mcr_seq_len"),
        ({"mcr_width": 6}, "mcr_width"),
        ({"prune_sparsity": 1.0}, "prune_sparsity"),
        ({"prune_start": 50, "prune_end": 10}, "prune_end"),
        ({"moe_tokens": "per_patch"}, "moe_tokens"),
    ]:
        with pytest.raises(BenchError, match=name):
            override(PRESETS["bbf"], changes, where="agent")
