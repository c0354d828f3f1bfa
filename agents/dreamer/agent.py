"""The Dreamer agent: a world model learned from replayed sequences, an actor and a critic
learned in its imagination (DreamerV3, Hafner et al. 2023; DreamerV2's differences are the
``dreamerv2`` preset). Read top to bottom: construction, acting, observing, one update
(the world model, then the actor and critic in imagination), metrics, state.

One update, as DreamerV3's ``WorldModel.loss`` and ``ImagActorCritic`` make it:
  world model  sum over B x T of image + reward + cont + dyn_scale dyn + rep_scale rep:
               image the squared error summed over pixels, reward the two-hot
               cross-entropy of symlog(r), cont the Bernoulli log-loss of 1 - terminal,
               dyn / rep the KL terms with free bits (``functional.kl_losses``)
  imagination  from every posterior state of the batch (detached), ``horizon`` steps of
               the prior with actions sampled from the actor
  critic       two-hot cross-entropy to the lambda-returns, plus ``slow_reg`` times the
               cross-entropy to the slow critic's prediction, weighted by the discounted
               probability of being alive; the slow critic is an EMA of the critic
  actor        REINFORCE on the advantages (R - v) / max(1, P95 - P5) minus
               ``actor_entropy`` times the entropy, with the same weights

Acting: training carries the RSSM state along the training env's stream (the agent sees
every step, so it knows the previous action and where episodes start). The protocol's
evaluation batches carry no identity from one call to the next (rows are independent and
leave as their episodes end), so evaluation filters each observation's frame stack (4
frames) from the initial state with zero previous actions. With ``audio_embed`` > 0 and
audio on, each step's newest audio frame is encoded and joins the image embedding.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.dreamer.config import DreamerConfig
from agents.dreamer.functional import (
    ReturnNorm,
    bins,
    categorical_kl,
    kl_losses,
    lambda_returns,
    trajectory_weights,
    unimix_logits,
    value_loss,
    value_mean,
)
from agents.dreamer.networks import ActorCritic, State, WorldModel, initialize
from agents.dreamer.replay import SequenceReplay
from agents.heldout import held_out
from agents.protocol import ObsSpec, Transition
from agents.sac import _cpu_copy
from agents.value import ema_, resolve_device
from bench.core.config import to_dict
from bench.core.errors import BenchError
from bench.core.seeding import spawn

LOSS_NAMES = ("image", "reward", "cont", "dyn", "rep")
_HELDOUT_EVAL_STREAM = 11  # the held-out diagnostics' batches: seed, stream, env step
RECENT_EPISODES = 10  # episodes in the real-return average


def sample_index(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Indices (N,) drawn from (N, A) log-probabilities by Gumbel-max with ``gen``."""
    u = torch.rand(logits.shape, generator=gen, device=logits.device).clamp_min(1e-20)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


class DreamerAgent:
    """Implements agents.protocol.Agent for discrete actions."""

    def __init__(self, cfg: DreamerConfig, *, obs_spec: ObsSpec, seed: int, device: str) -> None:
        if obs_spec.continuous:
            raise BenchError("dreamer agent: needs discrete actions")
        self.cfg, self.obs_spec, self.seed = cfg, obs_spec, seed
        self.device = resolve_device(cfg.device if cfg.device != "auto" else device)
        self.num_actions = obs_spec.num_actions
        seeds = spawn(seed, 6)
        # Separate streams, so that evaluation never moves the training randomness.
        self.sample_rng = np.random.default_rng(seeds[0])  # replay sequences
        self.act_rng = np.random.default_rng(seeds[1])  # prefill's random actions
        init_gen = _generator(seeds[2], torch.device("cpu"))
        self.train_gen = _generator(seeds[3], self.device)  # latents and imagined actions
        self.act_gen = _generator(seeds[4], self.device)  # training acts
        self.eval_gen = _generator(seeds[5], self.device)  # evaluation acts

        audio = obs_spec.audio_shape
        self.audio_samples = None if audio is None or not cfg.audio_embed else int(audio[-1])
        self.wm = WorldModel(cfg, self.num_actions, self.audio_samples)
        initialize(self.wm, init_gen, ("reward",))
        self.ac = ActorCritic(cfg, self.num_actions)
        initialize(self.ac, init_gen, ("critic",))
        self.wm.to(self.device)
        self.ac.to(self.device)
        self.slow_critic = copy.deepcopy(self.ac.critic).requires_grad_(False)
        adam = torch.optim.Adam
        self.model_opt = adam(self.wm.parameters(), lr=cfg.model_lr, eps=cfg.model_eps)
        self.actor_opt = adam(self.ac.actor.parameters(), lr=cfg.actor_lr, eps=cfg.ac_eps)
        self.critic_opt = adam(self.ac.critic.parameters(), lr=cfg.critic_lr, eps=cfg.ac_eps)
        self.grid = bins(cfg.bins, self.device) if cfg.symlog_twohot else None
        self.retnorm = ReturnNorm(
            cfg.return_decay, cfg.return_low, cfg.return_high, cfg.return_limit
        )
        self.replay = SequenceReplay(
            cfg.replay_capacity,
            cfg.image_size,
            self.audio_samples,
            sampling=cfg.replay_sampling,
            prioritize_ends=cfg.prioritize_ends,
        )
        self.env_steps = 0
        self.updates = 0
        self.episodes = 0  # env episodes begun in replay (the held-out split's index)
        self.need_first = True  # the next observe starts an episode in replay
        self.episode_heldout = False
        self.episode_return = 0.0
        self.recent_returns: list[float] = []
        # The training stream's RSSM state and the action taken from it.
        self.policy_state: State | None = None
        self.prev_action = 0
        self.fresh = True  # the next training act starts an episode
        self.last: dict[str, float] = {}

    # -- inputs --------------------------------------------------------------------------
    def _small(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W) -> uint8 (..., S, S) by area interpolation, as replay keeps
        them (acting reads the same rounded values)."""
        x = torch.as_tensor(frames).float()
        lead = x.shape[:-2]
        x = x.reshape(-1, 1, *x.shape[-2:])
        size = self.cfg.image_size
        x = F.interpolate(x, size=(size, size), mode="area").round().clamp(0, 255)
        return x.to(torch.uint8).reshape(*lead, size, size).numpy()

    def _float(self, images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(images, device=self.device).float().div_(255.0)

    def _audio(self, obs: dict[str, np.ndarray]) -> torch.Tensor | None:
        """(B, stack, samples) in [0, 1] when the agent reads audio, else None."""
        return None if self.audio_samples is None else self._float(obs["audio"])

    def _newest_audio(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        return None if self.audio_samples is None else obs["audio"][-1]

    def _onehot(self, actions: torch.Tensor) -> torch.Tensor:
        return F.one_hot(actions, self.num_actions).float()

    # -- protocol: act ---------------------------------------------------------------------
    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        """A sample of the actor (DreamerV3 samples at evaluation too: ``actor_eval_sample``;
        with ``eval_sample`` off, evaluation takes its most likely action); uniform random
        actions through the prefill. ``epsilon`` is ignored: the actor's own
        entropy (and unimix) explores."""
        frames = self._float(self._small(obs["image"]))
        audio = self._audio(obs)
        batch = len(frames)
        with torch.no_grad():
            gen = self.eval_gen if eval_mode else self.act_gen
            if eval_mode or batch != 1:
                state = self._filter_stack(frames, audio, gen)
            else:
                state = self._carry(frames[:, -1:], None if audio is None else audio[:, -1:])
                self.policy_state = state
            logits = unimix_logits(self.ac.actor(state.feat), self.cfg.unimix)
            greedy = eval_mode and not self.cfg.eval_sample
            actions = logits.argmax(-1) if greedy else sample_index(logits, gen)
        out = actions.cpu().numpy().astype(np.int64)
        if not eval_mode and self.env_steps < self.cfg.prefill:
            out = self.act_rng.integers(0, self.num_actions, batch).astype(np.int64)
        return out

    def _carry(self, frame: torch.Tensor, audio: torch.Tensor | None) -> State:
        """The posterior of the training stream's newest (1, 1, S, S) frame (and its
        (1, 1, samples) audio)."""
        embed = self.wm.embed(frame, audio)[:, 0]
        first = self.fresh or self.policy_state is None
        prev = self.wm.rssm.initial(1) if first else self.policy_state
        assert prev is not None
        action = self._onehot(torch.tensor([self.prev_action], device=self.device))
        is_first = torch.tensor([1.0 if first else 0.0], device=self.device)
        post, _ = self.wm.rssm.obs_step(prev, action, embed, is_first, self.act_gen)
        return post

    def _filter_stack(
        self, frames: torch.Tensor, audio: torch.Tensor | None, gen: torch.Generator
    ) -> State:
        """The posterior after filtering each row's (K, S, S) frame stack (and (K, samples)
        audio) from the initial state, with zero previous actions."""
        b, k = frames.shape[:2]
        actions = torch.zeros(b, k, self.num_actions, device=self.device)
        is_first = torch.zeros(b, k, device=self.device)
        is_first[:, 0] = 1.0
        post, _ = self.wm.rssm.observe(self.wm.embed(frames, audio), actions, is_first, gen)
        return State(*(x[:, -1] for x in post))

    # -- protocol: observe -----------------------------------------------------------------
    def observe(self, transition: Transition) -> None:
        cfg = self.cfg
        if self.need_first:
            self.episode_heldout = held_out(self.seed, self.episodes, cfg.heldout_fraction)
            first = self._small(transition.obs["image"][-1])
            heldout = self.episode_heldout
            self.replay.add(first, 0.0, False, True, heldout, self._newest_audio(transition.obs))
            self.need_first = False
        action = int(transition.action)
        self.replay.set_action(action)
        reward = float(transition.reward)
        image = self._small(transition.next_obs["image"][-1])
        terminal, sound = bool(transition.terminal), self._newest_audio(transition.next_obs)
        self.replay.add(image, reward, terminal, False, self.episode_heldout, sound)
        self.env_steps += 1
        self.episode_return += reward
        self.prev_action = action
        self.fresh = bool(transition.episode_end)
        if transition.episode_end:
            self.need_first = True
            self.episodes += 1
            self.recent_returns = [*self.recent_returns, self.episode_return][-RECENT_EPISODES:]
            self.episode_return = 0.0
        after = self.env_steps - cfg.prefill
        if after > 0 and after % cfg.train_every == 0:
            self._update()

    # -- one update ------------------------------------------------------------------------
    def world_model_losses(
        self, data: dict[str, np.ndarray], gen: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], State]:
        """The world model's losses (B, T) on a replay batch (``LOSS_NAMES``, and ``kl``,
        the unclipped KL) and its posteriors."""
        cfg = self.cfg
        images = self._float(data["image"])
        actions = self._onehot(torch.as_tensor(data["action"], device=self.device))
        prev = torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], 1)
        is_first = torch.as_tensor(data["is_first"], device=self.device).float()
        audio = self._float(data["audio"]) if "audio" in data else None
        post, prior = self.wm.rssm.observe(self.wm.embed(images, audio), prev, is_first, gen)
        feat = post.feat
        b, t = images.shape[:2]
        recon = self.wm.decoder(feat.flatten(0, 1)).view(b, t, *images.shape[2:])
        rewards = torch.as_tensor(data["reward"], device=self.device)
        if cfg.reward_transform == "tanh":
            rewards = torch.tanh(rewards)
        cont = 1.0 - torch.as_tensor(data["terminal"], device=self.device).float()
        dyn, rep = kl_losses(post.logits, prior.logits, cfg.free_nats)
        cont_logit = self.wm.cont(feat).squeeze(-1)
        losses = {
            "image": ((recon - images) ** 2).sum((-2, -1)),
            "reward": value_loss(self.wm.reward(feat), rewards, self.grid),
            "cont": F.binary_cross_entropy_with_logits(cont_logit, cont, reduction="none"),
            "dyn": dyn,
            "rep": rep,
            # The KL itself, below the free bits too (a diagnostic: not in the loss).
            "kl": categorical_kl(post.logits, prior.logits).detach(),
        }
        return losses, post

    def _update(self) -> None:
        cfg = self.cfg
        data = self.replay.sample(cfg.batch_size, cfg.seq_len, self.sample_rng)
        if data is None:
            return
        losses, post = self.world_model_losses(data, self.train_gen)
        total = self.model_loss(losses)
        _step(self.model_opt, total, self.wm.parameters(), cfg.model_clip, cfg.weight_decay)
        start = State(*(x.detach().flatten(0, 1) for x in post))
        cont0 = 1.0 - torch.as_tensor(data["terminal"], device=self.device).float().flatten()
        stats = self._actor_critic(start, cont0)
        self.updates += 1
        if self.updates % cfg.slow_critic_every == 0:
            ema_(self.slow_critic, self.ac.critic, cfg.slow_critic_fraction)
        self.last = {
            **{f"loss_{k}": float(v.detach().mean()) for k, v in losses.items()},
            "loss_model": float(total.detach()),
            **stats,
        }

    def model_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The world model's objective: its losses' means, weighted."""
        cfg = self.cfg
        scales = {"dyn": cfg.dyn_scale, "rep": cfg.rep_scale, "cont": cfg.cont_scale}
        return torch.stack([scales.get(k, 1.0) * losses[k].mean() for k in LOSS_NAMES]).sum()

    def imagine(self, start: State, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``horizon`` prior steps from each start state (N rows) with actions sampled
        from the actor: features (H + 1, N, F) and the actions taken there (H + 1, N)."""
        state = start
        feats, actions = [], []
        for t in range(self.cfg.horizon + 1):
            feats.append(state.feat)
            logits = unimix_logits(self.ac.actor(state.feat), self.cfg.unimix)
            actions.append(sample_index(logits, gen))
            if t < self.cfg.horizon:
                state = self.wm.rssm.img_step(state, self._onehot(actions[-1]), gen)
        return torch.stack(feats), torch.stack(actions)

    def _actor_critic(self, start: State, cont0: torch.Tensor) -> dict[str, float]:
        cfg, grid = self.cfg, self.grid
        with torch.no_grad():
            feats, actions = self.imagine(start, self.train_gen)
            rewards = value_mean(self.wm.reward(feats[1:]), grid)
            cont_next = (self.wm.cont(feats[1:]).squeeze(-1) > 0).float()
            cont = torch.cat([cont0[None], cont_next])
            weight = trajectory_weights(cont, cfg.gamma)[:-1]
            critic = self.slow_critic if cfg.return_critic == "slow" else self.ac.critic
            values = value_mean(critic(feats), grid)
            returns = lambda_returns(rewards, values, cfg.gamma * cont[1:], cfg.return_lambda)
            scale = 1.0
            if cfg.return_norm == "percentile":
                self.retnorm.update(returns)
                scale = self.retnorm.scale
            advantage = (returns - values[:-1]) / scale
            slow = value_mean(self.slow_critic(feats[:-1]), grid)
        logits = unimix_logits(self.ac.actor(feats[:-1]), cfg.unimix)
        log_pi = logits.gather(-1, actions[:-1, :, None]).squeeze(-1)
        entropy = -(logits.exp() * logits).sum(-1)
        actor_loss = (weight * (-log_pi * advantage - cfg.actor_entropy * entropy)).mean()
        out = self.ac.critic(feats[:-1])
        critic_loss = value_loss(out, returns, grid) + cfg.slow_reg * value_loss(out, slow, grid)
        critic_loss = (weight * critic_loss).mean()
        decay = cfg.weight_decay
        _step(self.actor_opt, actor_loss, self.ac.actor.parameters(), cfg.ac_clip, decay)
        _step(self.critic_opt, critic_loss, self.ac.critic.parameters(), cfg.ac_clip, decay)
        return {
            "actor_loss": float(actor_loss.detach()),
            "critic_loss": float(critic_loss.detach()),
            "actor_entropy": float(entropy.detach().mean()),
            "imag_return": float(returns[0].mean()),
            "imag_reward": float(rewards.mean()),
            "return_scale": float(scale),
        }

    # -- protocol: metrics and state -------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """The last update's losses, the imagined return (the lambda-return at the start
        states) next to the real one (the mean learning return of the last 10 training
        episodes), counters and, with a held-out split, the world model's losses on a
        training and a held-out batch drawn now (no gradients; the batches are a function
        of the seed and the env step, so logging never moves training)."""
        out = {
            **self.last,
            "env_steps": float(self.env_steps),
            "grad_steps": float(self.updates),
            "replay_size": float(len(self.replay)),
            "episodes": float(self.episodes),
        }
        if self.recent_returns:
            out["real_return"] = float(np.mean(self.recent_returns))
        if self.cfg.heldout_fraction > 0:
            out.update(self.split_losses())
        return out

    def split_losses(self) -> dict[str, float]:
        """``wm_train_<loss>`` and ``wm_heldout_<loss>``: means over one batch of each split
        (a split with no full sequence yet is left out)."""
        seq = np.random.SeedSequence([self.seed, _HELDOUT_EVAL_STREAM, self.env_steps])
        rng = np.random.default_rng(seq)
        gen = _generator(seq, self.device)
        out: dict[str, float] = {}
        for name, heldout in (("train", False), ("heldout", True)):
            data = self.replay.sample(self.cfg.batch_size, self.cfg.seq_len, rng, heldout=heldout)
            if data is None:
                continue
            with torch.no_grad():
                losses, _ = self.world_model_losses(data, gen)
            out |= {f"wm_{name}_{k}": float(v.mean()) for k, v in losses.items()}
        return out

    def state_dict(self) -> dict[str, Any]:
        """Copies on the CPU; tensors, arrays and plain data only (the replay included)."""
        state = _cpu_copy(
            {
                "config": to_dict(self.cfg),
                "wm": self.wm.state_dict(),
                "ac": self.ac.state_dict(),
                "slow_critic": self.slow_critic.state_dict(),
                "model_opt": self.model_opt.state_dict(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(),
                "retnorm": [self.retnorm.low, self.retnorm.high],
                "rng": {
                    "sample": self.sample_rng.bit_generator.state,
                    "act": self.act_rng.bit_generator.state,
                    "train_gen": self.train_gen.get_state(),
                    "act_gen": self.act_gen.get_state(),
                    "eval_gen": self.eval_gen.get_state(),
                },
                "counters": {
                    "seed": self.seed,  # the held-out split's and diagnostics' seed
                    "env_steps": self.env_steps,
                    "updates": self.updates,
                    "episodes": self.episodes,
                    "need_first": self.need_first,
                    "episode_heldout": self.episode_heldout,
                    "episode_return": self.episode_return,
                    "prev_action": self.prev_action,
                    "fresh": self.fresh,
                },
                "recent_returns": list(self.recent_returns),
                "policy_state": None if self.policy_state is None else list(self.policy_state),
                "last": dict(self.last),
            }
        )
        state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != to_dict(self.cfg):
            raise ValueError("agent state was saved with a different config")
        self.wm.load_state_dict(state["wm"])
        self.ac.load_state_dict(state["ac"])
        self.slow_critic.load_state_dict(state["slow_critic"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.retnorm.low, self.retnorm.high = (float(x) for x in state["retnorm"])
        rng = state["rng"]
        self.sample_rng.bit_generator.state = rng["sample"]
        self.act_rng.bit_generator.state = rng["act"]
        self.train_gen.set_state(rng["train_gen"])
        self.act_gen.set_state(rng["act_gen"])
        self.eval_gen.set_state(rng["eval_gen"])
        for name, value in state["counters"].items():
            setattr(self, name, type(getattr(self, name))(value))
        self.recent_returns = [float(x) for x in state["recent_returns"]]
        policy = state["policy_state"]
        self.policy_state = None if policy is None else State(*(x.to(self.device) for x in policy))
        self.last = dict(state["last"])
        self.replay.load_state_dict(state["replay"])


def _step(
    opt: torch.optim.Optimizer, loss: torch.Tensor, params: Any, clip: float, decay: float
) -> None:
    """Gradients of ``loss``, clipped by global norm; weights decayed (DreamerV2 multiplies
    them by 1 - decay before the step); the optimizer's step."""
    params = list(params)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    if decay:
        with torch.no_grad():
            for p in params:
                p.mul_(1.0 - decay)
    opt.step()


def _generator(seq: np.random.SeedSequence, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return g
