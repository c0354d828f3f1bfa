"""The fidelity options: each preset matches the reference code behind its published runs,
and each quirk is a field whose other setting makes these tests fail (agents/README.md,
"Fidelity", lists the reference file and line of each)."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch

from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.value import PRESETS, ValueConfig, epsilon_at
from bench.core.config import override
from tests.agents.conftest import TINY

SPEC = ObsSpec(num_actions=4)


def tiny(preset: str, **changes: object) -> ValueConfig:
    return override(PRESETS[preset], {**TINY, **changes}, where="test")


def images(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(seed).integers(0, 256, (n, 4, 84, 84), np.uint8)}


# -- evaluation epsilon: the protocol's, passed by the harness ----------------------------
def test_evaluation_acts_with_the_epsilon_it_is_given():
    agent = get_agent("value").make(tiny("bbf"), obs_spec=SPEC, seed=0)
    obs = images(64)
    greedy = agent.act(obs, eval_mode=True, epsilon=0.0)
    assert (agent.act(obs, eval_mode=True, epsilon=0.0) == greedy).all()
    random = agent.act(obs, eval_mode=True, epsilon=1.0)
    assert (random != greedy).mean() > 0.5
    with pytest.raises(ValueError, match="eval_epsilon"):
        agent.act(obs, eval_mode=True)
    assert "epsilon_eval" not in {f.name for f in dataclasses.fields(ValueConfig)}


def make(cfg: ValueConfig, seed: int = 0):
    return get_agent("value").make(cfg, obs_spec=SPEC, seed=seed)


def fill(agent, steps: int = 40, seed: int = 0) -> None:
    """Observe ``steps`` synthetic transitions without learning (learning_starts is high)."""
    from agents.testing import drive

    drive(agent, SPEC, np.random.default_rng(seed), steps)


# -- 1. priority write-back (BBF, SR-SPR) ---------------------------------------------
@pytest.mark.parametrize("mode", ["reference", "per_sample"])
def test_priority_writeback(mode):
    """BBF's set_priority(indices, priorities) zips the group's 64 indices with the 2 batch
    means: only the first 2 sampled items get a new priority, each a batch mean; the
    others keep their insertion priority. per_sample writes each item's own loss."""
    cfg = tiny("bbf", learning_starts=10**6, spr_steps=1, priority_writeback=mode)
    agent = make(cfg)
    fill(agent)
    groups, writes = [], []
    sample, update = agent.replay.sample, agent.replay.update_priorities
    agent.replay.sample = lambda *a, **k: groups.append(sample(*a, **k)) or groups[-1]
    agent.replay.update_priorities = lambda s, p: writes.append((s.copy(), p)) or update(s, p)
    before = agent.replay.tree.get(np.arange(40)).copy()
    agent._train(2)  # replay ratio 2: one env step's gradient steps, one group of 2 batches
    (group,) = groups
    assert len(group.slots) == 2 * cfg.batch_size
    after = agent.replay.tree.get(np.arange(40))
    changed = set(np.flatnonzero(after != before).tolist())
    if mode == "reference":
        ((slots, priorities),) = writes
        assert slots.tolist() == group.slots[:2].tolist() and len(priorities) == 2
        assert priorities[1] == pytest.approx(np.sqrt(agent.last["dqn_loss"] + 1e-10), rel=1e-5)
        assert changed == set(group.slots[:2].tolist())
    else:
        assert [len(s) for s, _ in writes] == [cfg.batch_size] * 2
        assert changed == set(group.slots.tolist())


@pytest.mark.parametrize("prefetch", [2, 0])
def test_prefetched_draws_lag_two_groups(prefetch):
    """BBF trains on a group drawn two groups earlier (prefetch_to_device(sampler, 2)): it
    is drawn before the priorities of the group trained just before it are written back,
    and keeps the n of its draw across a reset. replay_prefetch 0 draws it when used."""
    cfg = tiny(
        "bbf", learning_starts=10**6, spr_steps=1, replay_ratio=2.0, replay_prefetch=prefetch
    )
    agent = make(cfg)
    fill(agent)
    events = []
    sample, update = agent.replay.sample, agent.replay.update_priorities

    def spy_sample(*a, **k):
        events.append("gather" if k.get("indices") is not None else "draw")
        return sample(*a, **k)

    agent.replay.sample = spy_sample
    agent.replay.update_priorities = lambda s, p: events.append("write") or update(s, p)
    agent._train(2)
    agent._train(2)
    if prefetch:
        assert events == ["draw", "draw", "gather", "draw", "write", "gather", "draw", "write"]
        assert len(agent.prefetched) == 2
    else:
        assert events == ["draw", "write", "draw", "write"]


def test_presets_group_batches_as_their_gin_files():
    assert PRESETS["bbf"].batches_to_group == 2  # BBF.gin: replay_ratio 64, batches_to_group 2
    assert PRESETS["sr-spr"].batches_to_group == 8  # SR_SPR.gin: 256 and 8
    for preset in ("bbf", "bbf-rr8", "sr-spr"):
        assert PRESETS[preset].priority_writeback == "reference"
    for preset in ("der", "spr", "dqn"):
        assert PRESETS[preset].priority_writeback == "per_sample"
        assert PRESETS[preset].batches_to_group == 1
        assert PRESETS[preset].replay_prefetch == 0
    assert PRESETS["bbf"].replay_prefetch == PRESETS["sr-spr"].replay_prefetch == 2


# -- 5. the replay's sampling window ----------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "mode", "excluded"),
    [("bbf", "horizon_subsequence", 16), ("bbf", "needed", 0), ("der", "horizon", 10)],
)
def test_newest_steps_never_sampled(preset, mode, excluded):
    """BBF's buffer never samples the newest max n + subsequence (10 + 6) steps, Dopamine's
    the newest n; "needed" can draw a step right after inserting it at max priority."""
    cfg = tiny(preset, learning_starts=10**6, replay_newest=mode, spr_steps=5)
    agent = make(cfg)
    fill(agent, 60)
    assert agent._exclude_newest() == excluded
    rng = np.random.default_rng(0)
    drawn = np.concatenate(
        [
            agent.replay.sample_indices(32, rng, lookahead=9, n=10, exclude_newest=excluded)
            for _ in range(200)
        ]
    )
    newest_allowed = agent.replay.count - 1 - max(excluded, 9)  # lookahead 9: n 10, BBF
    assert drawn.max() == newest_allowed


# -- 2. DER as Dopamine's labs/atari_100k ran it ------------------------------------------
def test_der_network_hidden_width_is_full_rainbows_512():
    from agents.value import parameter_counts

    assert PRESETS["der"].hidden_dim == 512
    counts = parameter_counts(PRESETS["der"], ObsSpec(num_actions=6))
    # Noisy projection 11*11*64 -> 512: mu and sigma weights and biases.
    assert counts["projection"] == 2 * (7744 * 512 + 512)


def test_der_importance_exponent_is_fixed_at_half():
    """Dopamine weights by 1/sqrt(priority), normalized by the batch maximum, all run long
    (beta 0.5 fixed, not 0.4 -> 1)."""
    agent = make(tiny("der"))
    agent.env_steps = 50_000
    b = types.SimpleNamespace(priorities=np.array([1.0, 4.0, 0.25, 1.0]))
    w = agent._importance_weights(b).numpy()
    np.testing.assert_allclose(w, [0.5, 0.25, 1.0, 0.5], rtol=1e-6)


def test_der_epsilon_is_constant_with_noisy_nets():
    """Dopamine's full Rainbow swaps in identity_epsilon when noisy: epsilon_train (0.01)
    from the first step, no decay from 1."""
    for step in (0, 1_000, 1_600, 5_000, 100_000):
        assert epsilon_at(PRESETS["der"], step) == 0.01
    linear = dataclasses.replace(PRESETS["der"], epsilon_schedule="linear", epsilon_start=1.0)
    assert epsilon_at(linear, 0) == 1.0


@pytest.mark.parametrize("preset", ["der", "spr"])
def test_noise_is_off_at_evaluation(preset):
    """Dopamine's eval_mode zeroes the noise; SPR's eval_mode turns the head's sampling off."""
    assert not PRESETS[preset].noise_in_eval
    agent = make(tiny(preset))
    obs = images(16)
    first = agent.act(obs, eval_mode=True, epsilon=0.0)
    agent.eval_gen.manual_seed(123)
    assert (agent.act(obs, eval_mode=True, epsilon=0.0) == first).all()
    with torch.no_grad():
        net = agent.target if agent.cfg.act_with_target else agent.online
        latent = net.encode(agent._image(obs["image"]))
        mean = agent._q(net.logits(latent, None)).argmax(-1).numpy()
    assert (first == mean).all()


def test_der_noisy_layers_start_as_fortunato_and_dopamine():
    agent = make(tiny("der"))
    for layer in agent.online.noisy_layers().values():
        bound = 1 / np.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() > 0
        assert layer.bias.abs().max() <= bound
        sigma = 0.1 / np.sqrt(layer.in_features)
        assert torch.allclose(layer.weight_sigma, torch.full_like(layer.weight_sigma, sigma))
        assert torch.allclose(layer.bias_sigma, torch.full_like(layer.bias_sigma, sigma))


def test_der_one_noise_draw_per_batch_shared_by_online_and_target():
    """Dopamine vmaps its networks over the batch with one key, and passes the target
    network and the online network (double DQN) the same key in the target."""
    agent = make(tiny("der", learning_starts=10**6))
    fill(agent)
    seen = {"online": [], "target": []}
    for name in seen:
        net = getattr(agent, name)
        logits = net.logits
        net.logits = lambda latent, noise, _f=logits, _n=name: (
            seen[_n].append(noise) or _f(latent, noise)
        )
    agent._train(1)
    (t_noise,) = seen["target"]
    o_next, o_loss = seen["online"]
    assert o_next is t_noise and o_loss is not t_noise
    assert all(f.shape[0] == 1 for pair in t_noise.values() for f in pair)


def test_der_noise_keys_by_size():
    """Every Dopamine noisy layer got the same key, input and output factors from it: the
    head layers' input factors equal each other and the hidden layer's output factor."""
    net = make(tiny("der", hidden_dim=32)).online
    noise = net.sample_noise(
        1, torch.Generator().manual_seed(0), torch.device("cpu"), keys="by_size"
    )
    assert noise["head.advantage"][0] is noise["head.value"][0] is noise["projection"][1]
    other = net.sample_noise(1, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert not torch.equal(other["head.advantage"][0], other["head.value"][0])


def test_der_target_copies_every_8000_agent_steps():
    """DER.gin's target_update_period counts agent steps (training_steps), from step 0."""
    assert (PRESETS["der"].target_period, PRESETS["der"].target_period_unit) == (8000, "env_steps")
    cfg = tiny("der", target_period=5, target_period_unit="env_steps")
    agent = make(cfg)
    fill(agent, 25)  # learning from env step 13; the target copies at 15, 20, 25
    online = agent.online.state_dict()
    assert all(torch.equal(v, agent.target.state_dict()[k]) for k, v in online.items())
    fill(agent, 1, seed=1)
    online = agent.online.state_dict()
    assert not all(torch.equal(v, agent.target.state_dict()[k]) for k, v in online.items())


# -- 8. DQN's loss ------------------------------------------------------------------------
@pytest.mark.parametrize(("loss", "expected"), [("mse", 9.0), ("huber", 2.5)])
def test_dqn_loss(loss, expected):
    """Dopamine's JAX DQN defaults to loss_type 'mse': (target - q)^2, no 1/2."""
    assert PRESETS["dqn"].dqn_loss == "mse"
    agent = make(tiny("dqn", dqn_loss=loss, learning_starts=10**6))
    fill(agent)
    b = agent.replay.sample(4, np.random.default_rng(0), n=1, gamma=0.99)
    x = agent._inputs(b)
    with torch.no_grad():
        latent = agent.online.encode(x.states[:, 0])
        q = agent.online.logits(latent)[x.rows, x.actions[:, 0]].squeeze(-1)
        _, out, _ = agent._dqn_loss(x, q + 3.0)
    torch.testing.assert_close(out, torch.full_like(out, expected))


# -- 3. SPR as its own code ran it ----------------------------------------------------------
def test_spr_mask_is_shifted_as_in_spr_code():
    """SPR masks step k with 1 - sign(cumsum(done)) over t..t+k: like BBF's reference one
    step early, but with no unmasked first row and with every episode end."""
    from agents.replay import ReplayBuffer

    assert PRESETS["spr"].spr_mask == "shifted"
    buf = ReplayBuffer(64, image_shape=(4, 3, 3), prioritized=False)
    for i in range(12):
        buf.add(np.zeros((3, 3), np.uint8), 0, 0.0, terminal=i == 4, episode_end=i == 8)
    kw = {"n": 1, "gamma": 0.9, "subseq": 4, "indices": np.array([2, 2, 6])}
    masks = {m: buf.sample(3, None, spr_mask=m, **kw).same_trajectory for m in ("shifted", "fixed")}
    assert masks["shifted"].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert masks["fixed"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0]]


def test_spr_priorities_are_the_kl_divergence():
    """SPR's rl_loss returns KL(target || prediction) for the priorities; the cross-entropy
    adds the target's entropy."""
    from agents.value import kl_priority

    assert PRESETS["spr"].priority_signal == "kl"
    target = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    log_probs = torch.log(torch.tensor([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]]))
    kl = kl_priority(target, log_probs)
    ce = -(target * log_probs).sum(-1)
    entropy = torch.tensor([np.log(2.0), 0.0])
    # (the clamp of empty target atoms to 1e-6 moves it by about 1e-5)
    torch.testing.assert_close(kl, (ce - entropy).float(), atol=1e-4, rtol=0)
    agent = make(tiny("spr", learning_starts=10**6))
    fill(agent)
    writes = []
    agent.replay.update_priorities = lambda s, p: writes.append(p)
    agent._train(1)
    kl_value = writes[0]
    agent2 = make(tiny("spr", learning_starts=10**6, priority_signal="cross_entropy"))
    fill(agent2)
    writes.clear()
    agent2.replay.update_priorities = lambda s, p: writes.append(p)
    agent2._train(1)
    assert (kl_value < writes[0]).all()  # the same batch: CE = KL + entropy > KL


# -- the fidelity table in agents/README.md ---------------------------------------------
def _cell(value: object) -> str:
    if isinstance(value, tuple):
        return "+".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_fidelity_table_lists_every_field_with_the_presets_values():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "agents" / "README.md").read_text()
    header = "| field | bbf | bbf-rr8 | sr-spr | spr | der | dqn | source | known quirks |"
    lines = text[text.index(header) :].splitlines()[2:]
    rows = {}
    for line in lines:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:7]
    fields = [f.name for f in dataclasses.fields(ValueConfig)]
    assert list(rows) == fields
    names = ["bbf", "bbf-rr8", "sr-spr", "spr", "der", "dqn"]
    for name in fields:
        assert rows[name] == [_cell(getattr(PRESETS[p], name)) for p in names], name
