"""DER against Dopamine's full Rainbow (installed dopamine-rl), weights transplanted.

Our torch network's weights go into Dopamine's Flax ``FullRainbowNetwork`` (4.1.2; the
network is unchanged since the 2021 DER runs but for how its noise keys are split); the
same batch then goes through both:

  - Q distributions: the online network's logits and probabilities, with the noise that
    Dopamine's ``NoisyNetwork`` draws from a key (computed here with JAX the way it draws
    it, and handed to ours), and without noise (evaluation);
  - the C51 target: ``full_rainbow_agent.target_output`` (double DQN, the target network's
    distribution, ``rainbow_agent.project_distribution``) against ``ValueAgent._targets``;
  - the projection alone, on random distributions and supports beyond [v_min, v_max];
  - the per-sample loss, the weighted mean loss, the priorities and the gradient:
    ``full_rainbow_agent.train`` with an SGD step of 1 (new params = params - gradient)
    against ``ValueAgent._update`` with the same SGD step;
  - the importance weights, from the sampling probabilities as Atari100kRainbowAgent
    computes them.
``MAX_DIFF`` records the largest absolute difference of each quantity (printed with -s).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.replay import Batch
from agents.value import PRESETS, project_distribution

pytest.importorskip(
    "dopamine", reason="dopamine-rl is not installed: pip install -e '.[reference]'"
)

jax = pytest.importorskip("jax")
jnp = jax.numpy
from dopamine.jax import networks  # noqa: E402
from dopamine.jax.agents.full_rainbow import full_rainbow_agent  # noqa: E402
from dopamine.jax.agents.rainbow import rainbow_agent  # noqa: E402

A, B, ATOMS = 6, 32, 51  # B: DER's batch size
TOL = 1e-5
MAX_DIFF: dict[str, float] = {}


def close(name: str, ours, ref, tol: float = TOL) -> None:
    ours = np.asarray(ours.detach() if isinstance(ours, torch.Tensor) else ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    diff = float(np.abs(ours - ref).max())
    MAX_DIFF[name] = max(diff, MAX_DIFF.get(name, 0.0))
    scale = max(1.0, float(np.abs(ref).max()))
    assert diff <= tol * scale, f"{name}: max |diff| {diff:.3g} (scale {scale:.3g})"


def close_gradient(ours, ref, scale: float) -> None:
    """The gradient relative to its largest entry (its entries are far below 1)."""
    close("gradient", ours, ref, tol=TOL * scale)


# -- transplanting --------------------------------------------------------------------
def flax_params(net: torch.nn.Module, template) -> dict:
    """Our network's weights in Dopamine's layout: convs HWIO, the flattened latent in
    (h, w, c) order instead of (c, h, w), dense kernels (in, out)."""
    p = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    out = {}
    for i in range(3):
        out[f"Conv_{i}"] = {
            "kernel": p[f"encoder.convs.{i}.weight"].transpose(2, 3, 1, 0),
            "bias": p[f"encoder.convs.{i}.bias"],
        }
    c, h, w = 64, 11, 11
    for i, name in enumerate(("projection", "head.advantage", "head.value")):
        mu, sigma = p[f"{name}.weight"], p[f"{name}.weight_sigma"]
        if name == "projection":  # (out, c*h*w) -> (out, h*w*c)
            mu = mu.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(mu.shape[0], -1)
            sigma = sigma.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(mu.shape[0], -1)
        out[f"NoisyNetwork_{i}"] = {
            "kernel_mu": mu.T,
            "kernel_sigma": sigma.T,
            "bias_mu": p[f"{name}.bias"],
            "bias_sigma": p[f"{name}.bias_sigma"],
        }
    tree = {"params": jax.tree_util.tree_map(jnp.asarray, out)}
    shapes = jax.tree_util.tree_map(lambda x: x.shape, tree)
    assert shapes == jax.tree_util.tree_map(lambda x: x.shape, template), "layouts differ"
    return tree


def dopamine_noise(key) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The factors Dopamine's NoisyNetwork draws from ``key`` (every layer gets the same
    key; rng_p, rng_q = split(key); p ~ N(key_p, [in, 1]), q ~ N(key_q, [1, out])), as
    (f(p), f(q)) rows for ours; the projection's input factor permuted to (c, h, w)."""
    f = networks.NoisyNetwork.f
    rng_p, rng_q = jax.random.split(key, num=2)
    noise = {}
    for name, (n_in, n_out) in {
        "projection": (7744, 512),
        "head.advantage": (512, A * ATOMS),
        "head.value": (512, ATOMS),
    }.items():
        p = np.asarray(f(networks.NoisyNetwork.sample_noise(rng_p, [n_in, 1])))[:, 0]
        q = np.asarray(f(networks.NoisyNetwork.sample_noise(rng_q, [1, n_out])))[0]
        if name == "projection":  # (h, w, c) -> (c, h, w)
            p = p.reshape(11, 11, 64).transpose(2, 0, 1).reshape(-1)
        noise[name] = (torch.tensor(p)[None], torch.tensor(q)[None])
    return noise


# -- the fixture: one agent, one batch, both networks ---------------------------------
@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    cfg = PRESETS["der"]
    agent = get_agent("value").make(cfg, obs_spec=ObsSpec(num_actions=A), seed=0, device="cpu")
    with torch.no_grad():  # a target network that differs from the online one
        for p in agent.target.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    states = rng.integers(0, 256, (B, 4, 84, 84), np.uint8)
    next_states = rng.integers(0, 256, (B, 4, 84, 84), np.uint8)
    actions = rng.integers(0, A, B)
    returns = rng.normal(0, 3, B).astype(np.float32)
    terminals = (rng.random(B) < 0.2).astype(np.float32)
    gamma_n = np.float32(0.99**10)
    priorities = rng.uniform(0.1, 2.0, B)
    batch = Batch(
        index=np.arange(B),
        slots=np.arange(B),
        states=states[:, None],
        audio=None,
        actions=actions[:, None],
        returns=returns,
        discounts=(gamma_n * (1 - terminals)).astype(np.float32),
        next_states=next_states,
        next_audio=None,
        same_trajectory=np.ones((B, 1), np.float32),
        priorities=priorities,
    )
    net_def = networks.FullRainbowNetwork(
        num_actions=A, num_atoms=ATOMS, noisy=True, dueling=True, distributional=True,
        inputs_preprocessed=True,
    )  # fmt: skip
    support = jnp.linspace(-10.0, 10.0, ATOMS)
    template = net_def.init(jax.random.PRNGKey(0), x=jnp.zeros((84, 84, 4)), support=support)
    ref = {
        "net_def": net_def,
        "support": support,
        "online": flax_params(agent.online, template),
        "target": flax_params(agent.target, template),
        "states": jnp.asarray(states.transpose(0, 2, 3, 1), jnp.float32) / 255.0,
        "next_states": jnp.asarray(next_states.transpose(0, 2, 3, 1), jnp.float32) / 255.0,
        "actions": jnp.asarray(actions),
        "returns": jnp.asarray(returns),
        "terminals": jnp.asarray(terminals),
        "gamma_n": float(gamma_n),
    }
    return agent, batch, ref


def apply(ref, params: str, states, key, eval_mode=False):
    fn = jax.vmap(
        lambda s: ref["net_def"].apply(
            ref[params], s, support=ref["support"], key=key, eval_mode=eval_mode
        ),
    )
    return fn(states)


# -- the comparisons ------------------------------------------------------------------
@pytest.mark.parametrize("eval_mode", [False, True])
def test_q_distributions(setup, eval_mode):
    agent, batch, ref = setup
    key = jax.random.PRNGKey(7)
    out = apply(ref, "online", ref["states"], key, eval_mode)
    noise = None if eval_mode else dopamine_noise(key)
    with torch.no_grad():
        latent = agent.online.encode(agent._image(batch.states[:, 0]))
        logits = agent.online.logits(latent, noise)
    tag = "eval" if eval_mode else "noisy"
    close(f"logits ({tag})", logits, out.logits)
    close(f"probabilities ({tag})", logits.softmax(-1), out.probabilities)
    close(f"q_values ({tag})", agent._q(logits), out.q_values)


def test_c51_projection():
    rng = np.random.default_rng(1)
    support = np.linspace(-10, 10, ATOMS).astype(np.float32)
    probs = rng.dirichlet(np.ones(ATOMS), 16).astype(np.float32)
    target_support = (rng.normal(0, 4, (16, 1)) + rng.uniform(0, 1.2, (16, 1)) * support).astype(
        np.float32
    )
    ours = project_distribution(
        torch.tensor(support), torch.tensor(probs), torch.tensor(target_support)
    )
    ref = jax.vmap(rainbow_agent.project_distribution, in_axes=(0, 0, None))(
        jnp.asarray(target_support), jnp.asarray(probs), jnp.asarray(support)
    )
    close("C51 projection", ours, ref)


def noise_in_order(*draws):
    it = iter(draws)
    return lambda net, batch, gen: next(it)


def test_target_distribution(setup):
    agent, batch, ref = setup
    key = jax.random.PRNGKey(11)
    noise = dopamine_noise(key)
    expected = full_rainbow_agent.target_output(
        lambda s, key: ref["net_def"].apply(ref["online"], s, key=key, support=ref["support"]),
        lambda s, key: ref["net_def"].apply(ref["target"], s, key=key, support=ref["support"]),
        ref["next_states"], ref["returns"], ref["terminals"], ref["support"],
        ref["gamma_n"], True, True, key,
    )  # fmt: skip
    agent._noise = noise_in_order(noise)  # one draw, shared by the target and the online
    with torch.no_grad():
        target, _ = agent._targets(agent._inputs(batch))
    del agent._noise
    close("C51 target distribution", target, expected)


def test_loss_priorities_and_gradient(setup):
    import optax

    agent, batch, ref = setup
    rng = jax.random.PRNGKey(3)
    loss_key, target_key, _ = jax.random.split(rng, num=3)  # train()'s own split
    # Atari100kRainbowAgent's importance weights, from the sampling probabilities.
    probs = jnp.asarray(batch.priorities / batch.priorities.sum())
    weights = 1.0 / jnp.sqrt(probs + 1e-10)
    weights = weights / jnp.max(weights)
    _, new_params, loss, mean_loss, _ = full_rainbow_agent.train(
        ref["net_def"], ref["online"], ref["target"], optax.sgd(1.0),
        optax.sgd(1.0).init(ref["online"]), ref["states"], ref["actions"],
        ref["next_states"], ref["returns"], ref["terminals"], weights, ref["support"],
        ref["gamma_n"], True, True, False, rng,
    )  # fmt: skip
    ref_grad = jax.tree_util.tree_map(lambda a, b: a - b, ref["online"], new_params)

    ours_weights = agent._importance_weights(batch)
    close("importance weights", ours_weights, weights)
    grads, dqn_loss = torch_gradients(agent, batch, ours_weights, target_key, loss_key)
    close("per-sample loss", dqn_loss, loss)
    close("weighted mean loss", agent.last["loss"], mean_loss)
    agent.replay.tree.set(np.arange(B), np.ones(B))
    agent._update_priorities(batch.slots, dqn_loss)
    close("priorities", agent.replay.tree.get(np.arange(B)), jnp.sqrt(loss + 1e-10))
    ours = flax_params(grads, ref["online"])
    scale = max(float(jnp.abs(g).max()) for g in jax.tree_util.tree_leaves(ref_grad))
    MAX_DIFF["largest gradient entry (scale)"] = scale
    for path, value in jax.tree_util.tree_leaves_with_path(ref_grad):
        close_gradient(_get(ours, path), value, scale)


def _get(tree, path):
    for p in path:
        tree = tree[p.key]
    return tree


def torch_gradients(agent, batch, weights, target_key, loss_key):
    """``ValueAgent._update`` with an SGD step of 1 and Dopamine's noise: a copy of the
    online network holding the gradient (before - after), and the per-sample loss. The
    agent is left as it was."""
    import copy

    before = copy.deepcopy(agent.online.state_dict())
    optimizer, agent.optimizer = agent.optimizer, torch.optim.SGD(agent.online.parameters(), 1.0)
    agent._noise = noise_in_order(dopamine_noise(target_key), dopamine_noise(loss_key))
    try:
        dqn_loss = agent._update(batch, weights, n=10, gamma=0.99)
        grads = copy.deepcopy(agent.online)
        with torch.no_grad():
            for name, p in grads.named_parameters():
                p.copy_(before[name] - p)
    finally:
        del agent._noise
        agent.optimizer = optimizer
        agent.online.load_state_dict(before)
    return grads, dqn_loss


def test_report_max_differences(setup, capsys):
    with capsys.disabled():
        for name, diff in sorted(MAX_DIFF.items()):
            print(f"max |ours - dopamine| {name}: {diff:.3g}")
