"""Soft Actor-Critic for continuous actions (CALE): the agent of Dopamine's ``labs/cale``.

Written from the SAC papers (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and
Applications": twin critics, a tanh-squashed Gaussian policy, a learned temperature) and
checked against Dopamine's ``sac_cale_100k.gin`` (the fidelity table is in
``agents/README.md``). Read top to bottom: the config, the schedules, the networks, the
losses (pure functions, tested on hand-made batches), the agent, the presets.

One gradient step, as Dopamine's ``sac_agent.train`` makes it:
  y        = reward_scale * R_n + gamma^n (1 - done) (min(Q1', Q2')(s', a'_Q) - alpha log pi'(a'))
             where the primes are the target network (encoder, actor and critics, an EMA of
             the online ones), a' is sampled from the target actor and a'_Q is the target
             actor's mean action (``target_action: mean``, Dopamine's) or a' (``sample``);
  critic   = mean over the batch of (Q1(s, a) - y)^2 + (Q2(s, a) - y)^2
  policy   = mean of alpha log pi(a~|s) - min(Q1, Q2)(s, a~), a~ sampled with the
             reparameterization; the critics' parameters get no gradient from it
  alpha    = mean of log_alpha * (-log pi(a~|s) - target_entropy), on its own optimizer
  one Adam step on 0.5 * critic + policy for every network parameter; the convolutions
  learn from the critic only (the actor reads them through a stop-gradient).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.networks import SameConv2d
from agents.protocol import ObsSpec, Transition
from agents.registry import AgentEntry, register
from agents.replay import Batch, ReplayBuffer
from agents.value import ema_, resolve_device
from bench.core.config import override, to_dict
from bench.core.errors import BenchError
from bench.core.seeding import spawn


# ======================================================================================
# Config
# ======================================================================================
@dataclass(frozen=True)
class SACConfig:
    """Every hyperparameter. Defaults are Dopamine's ``sac_cale_100k.gin``."""

    # -- network (SACCALEConvNetwork, encoder "SAC": SAC-AE / DrQ's encoder) -------------
    conv_channels: int = 32
    conv_layers: int = 4  # 3x3 convolutions, the first with stride 2, SAME padding
    latent_dim: int = 50  # the critic's and the actor's own projection (+ LayerNorm, tanh)
    hidden_dim: int = 512  # hidden units of the actor and of each critic
    hidden_layers: int = 1
    # -- learning target -----------------------------------------------------------------
    gamma: float = 0.99
    n_step: int = 10  # DrQ's (instead of 3)
    reward_scale: float = 0.1  # on the n-step return; the 100k config does not clip rewards
    target_action: Literal["mean", "sample"] = "mean"  # what the target critics evaluate
    # -- replay --------------------------------------------------------------------------
    replay_capacity: int = 1_000_000
    batch_size: int = 32
    learning_starts: int = 1_600  # env steps before the first update
    replay_ratio: float = 1.0  # gradient steps per env step (Dopamine's update_period 1)
    # -- target network ------------------------------------------------------------------
    target_tau: float = 0.005  # EMA weight of the online network, after every update
    # -- optimizers (one Adam for the networks, one for log alpha) -----------------------
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1.5e-4
    critic_weight: float = 0.5  # the critic loss's weight in the networks' loss
    # -- entropy -------------------------------------------------------------------------
    target_entropy: float | None = None  # None: -action_dim / 2 (Dopamine's default)
    initial_log_alpha: float = 0.0
    # -- exploration (Dopamine's "eps_greedy" strategy for 100k) -------------------------
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    epsilon_decay_steps: int = 5_000  # env steps, linear, starting at learning_starts
    epsilon_eval: float = 0.05  # evaluation (the protocol's eval_epsilon is not used: act)
    # -- placement -----------------------------------------------------------------------
    device: str = "auto"  # "auto": CUDA when present, else CPU

    def __post_init__(self) -> None:
        problems = [
            ("n_step must be >= 1", self.n_step < 1),
            ("gamma must be in (0, 1)", not 0 < self.gamma < 1),
            (
                "batch_size and replay_capacity must be >= 1",
                min(self.batch_size, self.replay_capacity) < 1,
            ),
            (
                "conv_layers, channels, latent and hidden sizes must be >= 1",
                min(self.conv_layers, self.conv_channels, self.latent_dim, self.hidden_dim) < 1,
            ),
            ("hidden_layers must be >= 0", self.hidden_layers < 0),
            ("target_tau must be in (0, 1]", not 0 < self.target_tau <= 1),
            ("replay_ratio must be >= 0", self.replay_ratio < 0),
        ]
        for message, bad in problems:
            if bad:
                raise BenchError(f"sac agent config: {message}")


# ======================================================================================
# Schedules
# ======================================================================================
def epsilon_at(cfg: SACConfig, step: int) -> float:
    """Dopamine's linearly decaying epsilon: ``epsilon_start`` until ``learning_starts``,
    then linear to ``epsilon_end`` over ``epsilon_decay_steps``."""
    left = cfg.epsilon_decay_steps + cfg.learning_starts - step
    frac = min(max(left / max(cfg.epsilon_decay_steps, 1), 0.0), 1.0)
    return cfg.epsilon_end + frac * (cfg.epsilon_start - cfg.epsilon_end)


def target_entropy(cfg: SACConfig, action_dim: int) -> float:
    return -0.5 * action_dim if cfg.target_entropy is None else cfg.target_entropy


# ======================================================================================
# Networks
# ======================================================================================
class ActorOutput(NamedTuple):
    mean: torch.Tensor  # (B, A) the squashed mean action (the mode), within the bounds
    sample: torch.Tensor  # (B, A) a squashed sample, within the bounds
    log_prob: torch.Tensor  # (B,) log density of ``sample`` in action space


class SACNetwork(nn.Module):
    """Encoder (shared convolutions), the critic's and the actor's projections, the actor
    and two critics. Modules are the parameter-count groups."""

    action_mean: torch.Tensor  # buffers: the middle and the half-width of the action box
    action_scale: torch.Tensor

    def __init__(self, cfg: SACConfig, spec: ObsSpec) -> None:
        super().__init__()
        stack, size = spec.image_shape[0], spec.image_shape[-1]
        channels, dim = cfg.conv_channels, spec.action_dim
        layers = [SameConv2d(stack, channels, 3, 2, padding="same")]
        layers += [
            SameConv2d(channels, channels, 3, 1, padding="same") for _ in range(cfg.conv_layers - 1)
        ]
        self.encoder = nn.ModuleList(layers)
        features = channels * math.ceil(size / 2) ** 2
        self.critic_projection = _projection(features, cfg.latent_dim)
        self.actor_projection = _projection(features, cfg.latent_dim)
        self.actor = _mlp(cfg.latent_dim, cfg.hidden_dim, cfg.hidden_layers, 2 * dim)
        self.critic1 = _mlp(cfg.latent_dim + dim, cfg.hidden_dim, cfg.hidden_layers, 1)
        self.critic2 = _mlp(cfg.latent_dim + dim, cfg.hidden_dim, cfg.hidden_layers, 1)
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
        self.register_buffer("action_mean", (low + high) / 2)
        self.register_buffer("action_scale", (high - low) / 2)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, stack, H, W) uint8-valued floats in [0, 1] -> flat conv features (B, F)."""
        x = images
        for conv in self.encoder:
            x = F.relu(conv(x))
        return x.flatten(1)

    def critics(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q1, Q2 (B,) of the critic latent ``z`` and ``action``."""
        x = torch.cat([z, action], dim=1)
        return self.critic1(x).squeeze(-1), self.critic2(x).squeeze(-1)

    def policy(self, z: torch.Tensor, noise: torch.Tensor) -> ActorOutput:
        """The actor at the actor latent ``z``, with standard normal ``noise`` (B, A)."""
        loc, log_scale = self.actor(z).chunk(2, dim=-1)
        return squashed_gaussian(loc, log_scale, noise, self.action_mean, self.action_scale)


def _projection(features: int, latent: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(features, latent), nn.LayerNorm(latent, eps=1e-6), nn.Tanh())


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.ReLU()]
    modules.append(nn.Linear(hidden if layers else inputs, outputs))
    return nn.Sequential(*modules)


def squashed_gaussian(
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    noise: torch.Tensor,
    mean: torch.Tensor,
    scale: torch.Tensor,
) -> ActorOutput:
    """A diagonal Gaussian (scale = exp(log_scale), unbounded as Dopamine's) squashed by tanh
    into [mean - scale, mean + scale]. The log density includes both Jacobians:
    log N(u) - sum log(1 - tanh(u)^2) - sum log(scale), the tanh term in its stable form
    2 (log 2 - u - softplus(-2u))."""
    u = loc + log_scale.exp() * noise
    normal = -0.5 * noise.pow(2) - log_scale - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    log_prob = (normal - log_det - scale.log()).sum(-1)
    return ActorOutput(mean + scale * torch.tanh(loc), mean + scale * torch.tanh(u), log_prob)


@torch.no_grad()
def initialize(net: SACNetwork, generator: torch.Generator) -> None:
    """Dopamine's initializers: orthogonal for the encoder's convolutions and projections,
    Glorot uniform for the actor and the critics, zero biases, LayerNorm scale 1."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            weight = torch.empty(module.weight.shape)
            if name.split(".")[0] in ("encoder", "critic_projection", "actor_projection"):
                nn.init.orthogonal_(weight, generator=generator)
            else:
                nn.init.xavier_uniform_(weight, generator=generator)
            module.weight.copy_(weight)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.reset_parameters()


# ======================================================================================
# Losses (pure: the tests check them on hand-made batches)
# ======================================================================================
class Losses(NamedTuple):
    critic: torch.Tensor  # mean of (Q1 - y)^2 + (Q2 - y)^2
    policy: torch.Tensor  # mean of alpha log pi - min Q
    alpha: torch.Tensor  # mean of log_alpha (-log pi - target entropy)
    target: torch.Tensor  # y (B,)
    entropy: torch.Tensor  # mean of -log pi


def critic_target(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    next_q: tuple[torch.Tensor, torch.Tensor],
    next_log_prob: torch.Tensor,
    *,
    alpha: torch.Tensor,
    reward_scale: float,
) -> torch.Tensor:
    """y = reward_scale * R + discount * (min(Q1', Q2') - alpha * log pi'): the soft
    Bellman target with the entropy term; ``discounts`` are gamma^n, 0 past a terminal."""
    soft_value = torch.minimum(*next_q) - alpha * next_log_prob
    return reward_scale * returns + discounts * soft_value


def sac_losses(
    q: tuple[torch.Tensor, torch.Tensor],
    target: torch.Tensor,
    policy_q: tuple[torch.Tensor, torch.Tensor],
    log_prob: torch.Tensor,
    log_alpha: torch.Tensor,
    entropy_target: float,
) -> Losses:
    """The three losses of one batch: ``q`` the critics at (s, a), ``policy_q`` the
    critics at (s, a~) for the policy's sample a~ with log density ``log_prob``."""
    target = target.detach()
    critic = ((q[0] - target) ** 2 + (q[1] - target) ** 2).mean()
    alpha = log_alpha.detach().exp()
    policy = (alpha * log_prob - torch.minimum(*policy_q)).mean()
    alpha_loss = (log_alpha * (-log_prob.detach() - entropy_target)).mean()
    return Losses(critic, policy, alpha_loss, target, -log_prob.detach().mean())


# ======================================================================================
# The agent
# ======================================================================================
class SACAgent:
    """Implements agents.protocol.Agent for continuous actions."""

    def __init__(self, cfg: SACConfig, *, obs_spec: ObsSpec, seed: int, device: str) -> None:
        if not obs_spec.continuous:
            raise BenchError("sac agent: needs continuous actions (protocol.actions: continuous)")
        self.cfg = cfg
        self.obs_spec = obs_spec
        self.device = resolve_device(cfg.device if cfg.device != "auto" else device)
        self.entropy_target = target_entropy(cfg, obs_spec.action_dim)
        seeds = spawn(seed, 5)
        # Separate streams so that evaluation never moves the training randomness.
        self.sample_rng = np.random.default_rng(seeds[0])  # replay sampling
        self.act_rng = np.random.default_rng(seeds[1])  # training epsilon and random actions
        self.eval_rng = np.random.default_rng(seeds[2])  # evaluation epsilon
        self.gen = _generator(seeds[3])  # initialization and the updates' policy noise
        self.act_gen = _generator(seeds[4])  # the policy's noise when acting in training

        self.online = self._new_network()
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = self._adam(self.online.parameters())
        self.log_alpha = torch.full((1,), cfg.initial_log_alpha, device=self.device)
        self.log_alpha.requires_grad_(True)
        self.alpha_optimizer = self._adam([self.log_alpha])
        self.replay = ReplayBuffer(
            cfg.replay_capacity,
            image_shape=obs_spec.image_shape,
            prioritized=False,
            action_shape=(obs_spec.action_dim,),
        )
        self.low = np.array(obs_spec.action_low, np.float32)
        self.high = np.array(obs_spec.action_high, np.float32)
        self.env_steps = 0  # transitions observed
        self.grad_steps = 0
        self.train_steps = 0  # env steps at which learning was allowed (for the ratio)
        self.last: dict[str, float] = {}

    # -- construction ------------------------------------------------------------------
    def _new_network(self) -> SACNetwork:
        net = SACNetwork(self.cfg, self.obs_spec)
        initialize(net, self.gen)
        return net.to(self.device)

    def _adam(self, params: Any) -> torch.optim.Adam:
        cfg = self.cfg
        betas = (cfg.adam_beta1, cfg.adam_beta2)
        return torch.optim.Adam(params, lr=cfg.learning_rate, betas=betas, eps=cfg.adam_eps)

    def _image(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device).float().div_(255.0)

    def _noise(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        shape = (batch, self.obs_spec.action_dim)
        return torch.randn(shape, generator=generator).to(self.device)

    # -- protocol: act -----------------------------------------------------------------
    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        """Evaluation: the policy's mean action; training: a sample. Either is replaced by
        a uniform random action with probability epsilon (Dopamine's "eps_greedy"; its
        step count is the env steps including the one being acted for).

        ``epsilon`` (the protocol's ``eval_epsilon``, which the run loop passes in eval
        mode) is accepted and ignored: it is the epsilon of epsilon-greedy acting over
        discrete actions, while this agent's evaluation exploration is a uniform random
        continuous action with probability ``epsilon_eval`` of its own config (Dopamine's
        labs/cale value), recorded with the agent config."""
        batch = len(obs["image"])
        rng = self.eval_rng if eval_mode else self.act_rng
        eps = self.cfg.epsilon_eval if eval_mode else epsilon_at(self.cfg, self.env_steps + 1)
        with torch.no_grad():
            z = self.online.actor_projection(self.online.features(self._image(obs["image"])))
            noise = torch.zeros(batch, self.obs_spec.action_dim, device=self.device)
            if not eval_mode:
                noise = self._noise(batch, self.act_gen)
            out = self.online.policy(z, noise)
            chosen = (out.mean if eval_mode else out.sample).cpu().numpy()
        explore = rng.random(batch) <= eps
        random_actions = rng.uniform(self.low, self.high, (batch, len(self.low)))
        actions = np.where(explore[:, None], random_actions, chosen).astype(np.float32)
        return np.clip(actions, self.low, self.high)

    # -- protocol: observe -------------------------------------------------------------
    def observe(self, transition: Transition) -> None:
        cfg = self.cfg
        self.replay.add(
            transition.obs["image"][-1],
            np.asarray(transition.action, np.float32),
            float(transition.reward),
            terminal=bool(transition.terminal),
            episode_end=bool(transition.episode_end),
            older=transition.obs["image"][:-1],
        )
        self.env_steps += 1
        ready = len(self.replay) > cfg.n_step + 1
        if self.env_steps > cfg.learning_starts and cfg.replay_ratio > 0 and ready:
            self.train_steps += 1
            due = int(math.floor(self.train_steps * cfg.replay_ratio + 1e-9))
            done = int(math.floor((self.train_steps - 1) * cfg.replay_ratio + 1e-9))
            for _ in range(due - done):
                self._update()

    # -- one gradient step -------------------------------------------------------------
    def _update(self) -> None:
        cfg = self.cfg
        b = self.replay.sample(cfg.batch_size, self.sample_rng, n=cfg.n_step, gamma=cfg.gamma)
        losses = self.losses(b)
        self.optimizer.zero_grad(set_to_none=True)
        (cfg.critic_weight * losses.critic + losses.policy).backward()
        self.optimizer.step()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        losses.alpha.backward()
        self.alpha_optimizer.step()
        ema_(self.target, self.online, cfg.target_tau)
        self.grad_steps += 1
        self.last = {
            "critic_loss": float(losses.critic.detach()),
            "policy_loss": float(losses.policy.detach()),
            "alpha_loss": float(losses.alpha.detach()),
            "alpha": float(self.log_alpha.detach().exp()),
            "entropy": float(losses.entropy),
            "target_q": float(losses.target.mean()),
        }

    def losses(self, b: Batch) -> Losses:
        """The losses of a replay batch, with gradients for the online network and log alpha."""
        states, actions = (
            self._image(b.states[:, 0]),
            torch.as_tensor(b.actions[:, 0], device=self.device),
        )
        batch = len(states)
        with torch.no_grad():
            t_features = self.target.features(self._image(b.next_states))
            t_policy = self.target.policy(
                self.target.actor_projection(t_features), self._noise(batch, self.gen)
            )
            t_action = t_policy.mean if self.cfg.target_action == "mean" else t_policy.sample
            next_q = self.target.critics(self.target.critic_projection(t_features), t_action)
            target = critic_target(
                torch.as_tensor(b.returns, device=self.device),
                torch.as_tensor(b.discounts, device=self.device),
                next_q,
                t_policy.log_prob,
                alpha=self.log_alpha.exp(),
                reward_scale=self.cfg.reward_scale,
            )
        features = self.online.features(states)
        critic_z = self.online.critic_projection(features)
        policy = self.online.policy(
            self.online.actor_projection(features.detach()), self._noise(batch, self.gen)
        )
        policy_q = self._frozen_critics(critic_z.detach(), policy.sample)
        return sac_losses(
            self.online.critics(critic_z, actions),
            target,
            policy_q,
            policy.log_prob,
            self.log_alpha,
            self.entropy_target,
        )

    def _frozen_critics(
        self, z: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The online critics with their parameters held fixed: gradients reach ``action``
        (the actor), never the critics (Dopamine's ``frozen_params``)."""
        x = torch.cat([z, action], dim=1)
        q = []
        for critic in (self.online.critic1, self.online.critic2):
            params = {name: p.detach() for name, p in critic.named_parameters()}
            q.append(torch.func.functional_call(critic, params, (x,)).squeeze(-1))
        return q[0], q[1]

    # -- protocol: metrics and state ---------------------------------------------------
    def metrics(self) -> dict[str, float]:
        return {
            **self.last,
            "epsilon": float(epsilon_at(self.cfg, self.env_steps + 1)),
            "env_steps": float(self.env_steps),
            "grad_steps": float(self.grad_steps),
            "replay_size": float(len(self.replay)),
        }

    def state_dict(self) -> dict[str, Any]:
        """Copies on the CPU; tensors, arrays and plain data only."""
        state = _cpu_copy(
            {
                "config": to_dict(self.cfg),
                "online": self.online.state_dict(),
                "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(),
                "log_alpha": self.log_alpha.detach(),
                "rng": {
                    "sample": self.sample_rng.bit_generator.state,
                    "act": self.act_rng.bit_generator.state,
                    "eval": self.eval_rng.bit_generator.state,
                    "gen": self.gen.get_state(),
                    "act_gen": self.act_gen.get_state(),
                },
                "counters": {
                    "env_steps": self.env_steps,
                    "grad_steps": self.grad_steps,
                    "train_steps": self.train_steps,
                },
                "last": dict(self.last),
            }
        )
        state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != to_dict(self.cfg):
            raise ValueError("agent state was saved with a different config")
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.replay.load_state_dict(state["replay"])
        rng = state["rng"]
        self.sample_rng.bit_generator.state = rng["sample"]
        self.act_rng.bit_generator.state = rng["act"]
        self.eval_rng.bit_generator.state = rng["eval"]
        self.gen.set_state(rng["gen"])
        self.act_gen.set_state(rng["act_gen"])
        for name, value in state["counters"].items():
            setattr(self, name, int(value))
        self.last = dict(state["last"])


def _generator(seq: np.random.SeedSequence) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return g


def _cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor detached and copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        out: Any = type(obj)((k, _cpu_copy(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # module state dicts carry layer versions
            out._metadata = copy.deepcopy(obj._metadata)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


# ======================================================================================
# Registry hooks and presets
# ======================================================================================
def parameter_counts(cfg: SACConfig, obs_spec: ObsSpec) -> dict[str, int]:
    net = SACNetwork(cfg, obs_spec)
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in net.named_children()}
    counts["total"] = sum(counts.values())
    return counts


def planned_updates(cfg: SACConfig, env_steps: int) -> int:
    return int(cfg.replay_ratio * max(env_steps - cfg.learning_starts, 0))


def factory(config: SACConfig, *, obs_spec: ObsSpec, seed: int, device: str) -> SACAgent:
    return SACAgent(config, obs_spec=obs_spec, seed=seed, device=device)


SAC_CALE_100K = SACConfig()

# A few-second model for CPU tests: the same algorithm, small sizes and a short warm-up.
TINY = override(
    SAC_CALE_100K,
    {
        "conv_channels": 4,
        "conv_layers": 2,
        "latent_dim": 8,
        "hidden_dim": 16,
        "n_step": 3,
        "replay_capacity": 2_000,
        "batch_size": 8,
        "learning_starts": 16,
        "epsilon_decay_steps": 32,
    },
    where="preset tiny",
)

PRESETS: dict[str, SACConfig] = {"sac-cale-100k": SAC_CALE_100K, "tiny": TINY}

ENTRY = register(
    AgentEntry(
        name="sac",
        config_cls=SACConfig,
        factory=factory,
        presets=PRESETS,
        default_preset="sac-cale-100k",
        description="Soft Actor-Critic for continuous actions (CALE), Dopamine's labs/cale 100k",
        parameter_counts=parameter_counts,
        planned_updates=planned_updates,
        action_kinds=("continuous",),
    )
)
