"""The SPR-family loss against Dopamine's Atari-100k SPR (installed dopamine-rl).

Dopamine's ``labs/atari_100k`` SPR network (``SPRNetwork``: Nature CNN with SAME padding,
renormalized 11x11x64 latent, a 512 projection, a 512 predictor, a convolutional transition
model without BatchNorm) is the structure of the ``sr-spr`` preset's network. With our
weights transplanted into it and the same batch (no augmentation, no noise: the reference
augments before ``train`` and SR-SPR has no noisy nets), ``spr_agent.train`` and
``ValueAgent._update`` must give the same per-sample DQN and SPR losses, the same weighted
total and the same gradient (an SGD step of 1), within 1e-5. BBF's own train function is in
google-research, which no package installs: this is the nearest installable reference of
its SPR loss (normalized L2 of predictions and target projections, masked, averaged over
the 5 steps, weight 5).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.replay import Batch
from agents.value import PRESETS
from bench.core.config import override

pytest.importorskip(
    "dopamine", reason="dopamine-rl is not installed: pip install -e '.[reference]'"
)
jax = pytest.importorskip("jax")
jnp = jax.numpy
optax = pytest.importorskip("optax")
from dopamine.labs.atari_100k import spr_agent, spr_networks  # noqa: E402

A, B, K, ATOMS = 6, 32, 5, 51
TOL = 1e-5
MAX_DIFF: dict[str, float] = {}


def close(name: str, ours, ref, tol: float = TOL) -> None:
    ours = np.asarray(ours.detach() if isinstance(ours, torch.Tensor) else ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    diff = float(np.abs(ours - ref).max())
    MAX_DIFF[name] = max(diff, MAX_DIFF.get(name, 0.0))
    assert diff <= tol * max(1.0, float(np.abs(ref).max())), f"{name}: max |diff| {diff:.3g}"


def dense(p: dict, name: str) -> dict:
    return {"kernel": p[f"{name}.weight"].T, "bias": p[f"{name}.bias"]}


def conv(p: dict, name: str) -> dict:
    return {"kernel": p[f"{name}.weight"].transpose(2, 3, 1, 0), "bias": p[f"{name}.bias"]}


def flax_params(net: torch.nn.Module, template) -> dict:
    """Our weights in SPRNetwork's layout (HWIO convs, (h, w, c) flattening, (in, out))."""
    p = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    proj = dense(p, "projection")
    kernel = proj["kernel"].T.reshape(512, 64, 11, 11).transpose(0, 2, 3, 1)
    proj["kernel"] = kernel.reshape(512, -1).T
    tree = {
        "Dense_0": dense(p, "head.advantage"),
        "Dense_1": dense(p, "head.value"),
        "encoder": {f"Conv_{i}": conv(p, f"encoder.convs.{i}") for i in range(3)},
        "predictor": dense(p, "predictor"),
        "projection": proj,
        "transition_model": {
            "ScanConvTMCell_0": {
                "Conv_0": conv(p, "transition_model.conv1"),
                "Conv_1": conv(p, "transition_model.conv2"),
            }
        },
    }
    tree = {"params": jax.tree_util.tree_map(jnp.asarray, tree)}
    same = jax.tree_util.tree_map(lambda x: x.shape, tree)
    assert same == jax.tree_util.tree_map(lambda x: x.shape, template), "layouts differ"
    return tree


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    cfg = override(
        PRESETS["sr-spr"],
        {"augmentation": False, "replay_prefetch": 0, "batches_to_group": 1},
        where="test",
    )
    agent = get_agent("value").make(cfg, obs_spec=ObsSpec(num_actions=A), seed=0, device="cpu")
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    states = rng.integers(0, 256, (B, K + 1, 4, 84, 84), np.uint8)
    next_states = rng.integers(0, 256, (B, 4, 84, 84), np.uint8)
    actions = rng.integers(0, A, (B, K + 1))
    returns = rng.normal(0, 3, B).astype(np.float32)
    terminals = (rng.random(B) < 0.2).astype(np.float32)
    ends = rng.integers(1, K + 2, B)  # the first masked step (K + 1: none)
    mask = (np.arange(K + 1)[None] < ends[:, None]).astype(np.float32)
    gamma_n = np.float32(0.99**10)
    batch = Batch(
        index=np.arange(B),
        slots=np.arange(B),
        states=states,
        audio=None,
        actions=actions,
        returns=returns,
        discounts=(gamma_n * (1 - terminals)).astype(np.float32),
        next_states=next_states,
        next_audio=None,
        same_trajectory=mask,
        priorities=rng.uniform(0.1, 2.0, B),
    )
    net_def = spr_networks.SPRNetwork(
        num_actions=A, num_atoms=ATOMS, noisy=False, dueling=True, distributional=True
    )
    support = jnp.linspace(-10.0, 10.0, ATOMS)
    template = net_def.init(
        {"params": jax.random.PRNGKey(0)},
        x=jnp.zeros((84, 84, 4)),
        support=support,
        actions=jnp.zeros((K,), jnp.int32),
        do_rollout=True,
        key=jax.random.PRNGKey(1),
    )
    ref = {
        "net_def": net_def,
        "support": support,
        "online": flax_params(agent.online, template),
        "target": flax_params(agent.target, template),
        "states": jnp.asarray(states.transpose(0, 1, 3, 4, 2), jnp.float32) / 255.0,
        "next_states": jnp.asarray(next_states.transpose(0, 2, 3, 1), jnp.float32) / 255.0,
        "actions": jnp.asarray(actions),
        "returns": jnp.asarray(returns),
        "terminals": jnp.asarray(terminals),
        "mask": jnp.asarray(mask[:, 1:]),
        "gamma_n": float(gamma_n),
    }
    return agent, batch, ref


def test_spr_and_dqn_losses_and_gradient(setup):
    agent, batch, ref = setup
    weights = agent._importance_weights(batch)
    _, new_params, mean_loss, dqn_loss, spr_loss, _ = spr_agent.train(
        ref["net_def"], ref["online"], ref["target"], optax.sgd(1.0),
        optax.sgd(1.0).init(ref["online"]), ref["states"], ref["actions"],
        ref["next_states"], ref["returns"], ref["terminals"], ref["mask"],
        jnp.asarray(weights.numpy()), ref["support"], ref["gamma_n"], True, True,
        jax.random.PRNGKey(0), 5.0,
    )  # fmt: skip
    ref_grad = jax.tree_util.tree_map(lambda a, b: a - b, ref["online"], new_params)

    before = copy.deepcopy(agent.online.state_dict())
    optimizer, agent.optimizer = agent.optimizer, torch.optim.SGD(agent.online.parameters(), 1.0)
    spr_seen = []
    spr_fn = agent._spr_loss
    agent._spr_loss = lambda *a: spr_seen.append(spr_fn(*a)) or spr_seen[-1]
    try:
        ours_dqn = agent._update(batch, weights, n=10, gamma=0.99)
        grads = copy.deepcopy(agent.online)
        with torch.no_grad():
            for name, p in grads.named_parameters():
                p.copy_(before[name] - p)
    finally:
        del agent._spr_loss
        agent.optimizer = optimizer
        agent.online.load_state_dict(before)
    close("DQN loss (per sample)", ours_dqn, dqn_loss)
    close("SPR loss (per sample)", spr_seen[0], spr_loss)
    close("weighted total loss", agent.last["loss"], mean_loss)
    ours = flax_params(grads, ref["online"])
    scale = max(float(jnp.abs(g).max()) for g in jax.tree_util.tree_leaves(ref_grad))
    MAX_DIFF["largest gradient entry (scale)"] = scale
    for path, value in jax.tree_util.tree_leaves_with_path(ref_grad):
        leaf = ours
        for key in path:
            leaf = leaf[key.key]
        close("gradient", leaf, value, tol=TOL * scale)


def test_report_max_differences(setup, capsys):
    with capsys.disabled():
        for name, diff in sorted(MAX_DIFF.items()):
            print(f"max |ours - dopamine SPR| {name}: {diff:.3g}")
