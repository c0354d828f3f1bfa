"""The value agent's fast path (``fast_path: true``): the same agent, faster on a GPU.

What changes against the plain path (``agents/value.py``), and what does not:

* Replay storage is mirrored on the device (``DeviceReplay``; on the CPU it is the host
  arrays themselves): each step's frame is copied once, when the next group is drawn;
  stacks, SPR subsequences, n-step returns and discounts are gathered there. The draw of
  the indices stays on the host: the sum tree and the validity checks with the agent's
  numpy generator, exactly as the plain path draws them, so both paths train on the same
  samples (64 indices and their priorities go to the device per group; no image crosses
  the bus).
* Augmentation and noise are drawn from the agent's CPU generator in the plain path's
  order (a few hundred bytes per update) and applied on the device inside the captured
  step: the same draws, the same shifts.
* The update's forward pass (target, bootstrap, DQN and SPR losses) is one function,
  captured by ``torch.compile`` (``compile_mode``) with the backward pass through
  AOTAutograd; the optimizer is AdamW with ``fused=True`` on CUDA (one multi-tensor
  kernel). Schedules never enter the captured function: n and gamma act in the gather
  (as 0-d tensors, with a fixed window of the largest n), importance weights arrive as a
  tensor, epsilon stays on the host; resets change parameters in place and only clear the
  optimizer state. So schedule changes and resets cause no recompile
  (``tests/agents/test_fast.py`` counts them).
* No host round trip per batch: metrics stay tensors until read (``metrics()``), and with
  BBF's reference write-back (one priority per batch, a group drawn ahead) the group's
  priorities are copied to the host asynchronously and written to the tree after the next
  group's work has been queued, always before the next draw that reads them and before the
  env step ends (new steps enter at the tree's maximum priority), so the draws are the
  plain path's.
* ``amp: bf16``: the networks' convolutions and matmuls run under bf16 autocast. In fp32
  stay: the parameters and Adam's moments (bf16 would round away updates of 1e-4 x lr);
  the C51 softmax, log-softmax and projection onto the support (probabilities of 51
  atoms: bf16's 8-bit mantissa loses mass at 1/delta = 2.5); the SPR cosine distances
  (differences of near-equal unit vectors); n-step returns (float64, as the host), losses,
  their batch reduction and the priorities (they order the sum tree).
* ``channels_last``: convolution weights and inputs in NHWC, cuDNN's fast layout for bf16.

With ``compile_mode: off``, ``amp: off`` and ``channels_last: false`` on the CPU the fast
path is the plain path's arithmetic (``tests/agents/test_fast.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.audio import normalize_audio
from agents.networks import Noise, ValueNetwork
from agents.protocol import ObsSpec
from agents.replay import ReplayBuffer, lookahead
from agents.value import (
    AGENT_CLASSES,
    ValueAgent,
    ValueConfig,
    epsilon_at,
    gamma_at,
    importance_at,
    kl_priority,
    n_step_at,
    project_distribution,
)


# ======================================================================================
# Replay on the device
# ======================================================================================
class DeviceReplay:
    """A device copy of a ``ReplayBuffer``'s storage (frames, audio, actions, rewards,
    terminals, boundaries, segment starts), kept up to date with ``sync()``; the host
    buffer stays the source of truth (sampling, priorities, checkpoints)."""

    def __init__(self, replay: ReplayBuffer, device: torch.device):
        self.replay = replay
        self.device = device
        names = ["frames", "actions", "rewards", "terminals", "boundaries", "segment_start"]
        if replay.audio is not None:
            names.append("audio")
        self.names = tuple(names)
        # On the CPU the host arrays themselves (no copy, nothing to sync); elsewhere a
        # device array of the same dtype each.
        self.shared = device.type == "cpu"
        self.store: dict[str, torch.Tensor] = {}
        for name in self.names:
            host = torch.from_numpy(getattr(replay, name))
            self.store[name] = host if self.shared else torch.zeros_like(host, device=device)
        self.synced = 0  # steps (absolute) copied so far

    def invalidate(self) -> None:
        """Copy everything again at the next sync (after the host buffer was loaded)."""
        self.synced = -1

    def sync(self) -> None:
        """Copy the steps added since the last sync (normally one per env step)."""
        r = self.replay
        oldest = r.count - len(r)
        start = oldest if self.synced < oldest else self.synced
        if self.shared or start >= r.count:
            return
        host_slots = np.arange(start, r.count) % r.capacity
        slots = torch.as_tensor(host_slots, device=self.device)
        for name in self.names:
            src = torch.from_numpy(getattr(r, name)[host_slots])
            self.store[name][slots] = src.to(self.device, non_blocking=True)
        self.synced = r.count

    def stacks(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        """Stacks of absolute steps ``idx`` (any shape): (*idx.shape, stack, *item), frames
        before each step's segment start zeroed (``ReplayBuffer._stack``)."""
        r = self.replay
        frames = idx[..., None] + torch.arange(-r.stack + 1, 1, device=self.device)
        keep = frames >= self.store["segment_start"][idx % r.capacity][..., None]
        out = self.store[name][frames % r.capacity]
        keep = keep.reshape(*keep.shape, *([1] * (out.ndim - keep.ndim)))
        return out * keep

    def gather(
        self,
        idx: torch.Tensor,
        *,
        n: torch.Tensor,
        gamma: torch.Tensor,
        layout: ReplayLayout,
    ) -> dict[str, torch.Tensor]:
        """The batch of absolute steps ``idx`` (B,) as ``ReplayBuffer.sample`` makes it,
        with ``n`` (0-d int64) and ``gamma`` (0-d float64) as tensors: returns and
        discounts (B,) float32, bootstrap states (B, stack, H, W) uint8, states
        (B, T, stack, H, W) uint8, actions (B, T) int64, SPR mask (B, T) float32."""
        cap = self.replay.capacity
        k = torch.arange(layout.n_max, device=self.device)
        win = (idx[:, None] + k) % cap
        term = self.store["terminals"][win]
        inside = k[None, :] < n
        alive = torch.cat(
            [torch.ones_like(term[:, :1]), torch.cumprod(~term, dim=1)[:, :-1].bool()], dim=1
        )
        rewards = self.store["rewards"][win].double()
        returns = (rewards * gamma**k * (alive & inside)).sum(1)
        if layout.bootstrap == "fixed":
            done, next_idx = (term & inside).any(1), idx + n
        else:  # the reference buffer's s_{t+n-1} (ReplayBuffer._n_step)
            done, next_idx = (term & (k[None, :] < n - 1)).any(1), idx + n - 1
        discounts = torch.where(done, torch.zeros_like(returns), gamma**n)
        next_idx = torch.where(done, idx, next_idx)
        seq, same = self._subsequence(idx, layout)
        out = {
            "returns": returns.float(),
            "discounts": discounts.float(),
            "next_states": self.stacks("frames", next_idx),
            "states": self.stacks("frames", seq),
            "actions": self.store["actions"][seq % cap].long(),
            "same": same,
        }
        if "audio" in self.store:
            out["audio"] = self.stacks("audio", seq)
            out["next_audio"] = self.stacks("audio", next_idx)
        return out

    def _subsequence(
        self, idx: torch.Tensor, layout: ReplayLayout
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ReplayBuffer._subsequence`` on the device: steps (B, T) and SPR's mask."""
        r = self.replay
        seq = idx[:, None] + torch.arange(layout.subseq, device=self.device)
        seq_c = torch.clamp(seq, max=r.count - 1)
        slots = seq_c % r.capacity
        if layout.spr_mask == "fixed":
            bounds = self.store["boundaries"][slots]
            prior = torch.cat([torch.zeros_like(bounds[:, :1]), bounds[:, :-1]], dim=1)
        elif layout.spr_mask == "shifted":
            prior = self.store["boundaries"][slots]
        else:  # reference: terminals only, batch row 0 never masked
            prior = self.store["terminals"][slots].clone()
            prior[0] = False
        same = torch.cumprod((~prior).float(), dim=1)
        same[:, 0] = 1.0
        return torch.where(same > 0, seq_c, idx[:, None]), same


class ReplayLayout:
    """What a gather needs from the config: the largest n, the subsequence length, and the
    bootstrap and SPR-mask modes (constants of a run)."""

    def __init__(self, cfg: ValueConfig, *, spr: bool):
        self.n_max = max(cfg.n_step_start, cfg.n_step)
        self.subseq = cfg.spr_steps + 1 if spr else 1
        self.bootstrap = cfg.nstep_bootstrap
        self.spr_mask = cfg.spr_mask


# ======================================================================================
# The captured step: augmentation, targets, losses (pure given its inputs)
# ======================================================================================
def shift_with(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, pad: int) -> torch.Tensor:
    """``agents.value.random_shift`` with its offsets (N,) given: (N, C, H, W)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = (oy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


class Draws:
    """The randomness of one update, drawn on the host in the plain path's order: the
    augmentation of the states then of the bootstrap states (row offsets, column offsets,
    intensity factors each), then the noise of the target, of the online network's
    bootstrap pick, and of the online network's loss."""

    def __init__(self, agent: ValueAgent, rows_states: int):
        cfg, gen, bsz = agent.cfg, agent.gen, agent.cfg.batch_size
        self.aug: list[torch.Tensor] = []
        if cfg.augmentation:
            for rows in (rows_states, bsz):
                oy = torch.randint(0, 2 * cfg.shift_pad, (rows,), generator=gen)
                ox = torch.randint(0, 2 * cfg.shift_pad, (rows,), generator=gen)
                r = torch.randn(rows, generator=gen).clamp(-2.0, 2.0)
                self.aug += [t.to(agent.device, non_blocking=True) for t in (oy, ox, r)]
        self.t_noise = agent._noise(agent.target, bsz, gen)
        self.o_noise: Noise | None = None
        if cfg.double_dqn and cfg.noise_draw != "per_batch":
            self.o_noise = agent._noise(agent.online, bsz, gen)
        self.noise = agent._noise(agent.online, bsz, gen)


class UpdateStep:
    """The update's forward pass as one function of tensors (and noise dicts), the same
    arithmetic as ``ValueAgent._update``'s forward: ``forward(batch, weights, aug,
    t_noise, o_noise, noise)`` -> (loss, DQN loss (B,), SPR loss (B,), priority signal
    (B,)). ``batch`` is a ``DeviceReplay.gather`` slice."""

    def __init__(self, agent: FastValueAgent):
        self.cfg, self.bsz, self.spr = agent.cfg, agent.cfg.batch_size, agent.spr
        self.online, self.target, self.support = agent.online, agent.target, agent.support
        self.amp = agent.cfg.amp == "bf16"
        self.device_type = agent.device.type
        self.fmt = torch.channels_last if agent.cfg.channels_last else torch.contiguous_format

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.amp)

    def images(self, u8: torch.Tensor, aug: list[torch.Tensor]) -> torch.Tensor:
        """uint8 (N, C, H, W) -> floats in [0, 1], shifted and scaled by the given draws."""
        x = u8.float().div(255.0)
        if aug:
            x = shift_with(x, aug[0], aug[1], self.cfg.shift_pad)
            x = x * (1.0 + self.cfg.intensity_scale * aug[2]).view(-1, 1, 1, 1)
        return x.contiguous(memory_format=self.fmt)

    def q(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg.distributional:
            return (logits.float().softmax(-1) * self.support).sum(-1)
        return logits.float().squeeze(-1)

    def inputs(
        self, b: dict[str, torch.Tensor], aug: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """States (B, T, stack, H, W), bootstrap states, and their audio (or None)."""
        u8 = b["states"]
        states = self.images(u8.reshape(self.bsz * u8.shape[1], *u8.shape[2:]), aug[:3])
        states = states.view(self.bsz, u8.shape[1], *states.shape[1:])
        audio, next_audio = b.get("audio"), b.get("next_audio")
        return (
            states,
            self.images(b["next_states"], aug[3:]),
            None if audio is None else normalize_audio(audio, self.cfg.audio_normalize),
            None if next_audio is None else normalize_audio(next_audio, self.cfg.audio_normalize),
        )

    def targets(
        self, b: dict[str, torch.Tensor], x: tuple[Any, ...], noises: tuple[Any, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ValueAgent._targets``: the bootstrap target and SPR's target latents."""
        cfg, bsz, support = self.cfg, self.bsz, self.support
        states, next_states, audio, next_audio = x
        t_noise, o_noise = noises
        with torch.no_grad(), self.autocast():
            t_in, t_audio = next_states, next_audio
            if self.spr:
                future = bsz * cfg.spr_steps
                t_in = torch.cat([next_states, states[:, 1:].reshape(future, *states.shape[2:])])
                if audio is not None and next_audio is not None:
                    t_audio = torch.cat(
                        [next_audio, audio[:, 1:].reshape(future, *audio.shape[2:])]
                    )
            t_latent = self.target.encode(t_in, t_audio)
            t_logits = self.target.logits(t_latent[:bsz], t_noise).float()
            if cfg.double_dqn:  # the online network picks; per-batch noise is shared
                shared = t_noise if cfg.noise_draw == "per_batch" else o_noise
                o_latent = self.online.encode(next_states, next_audio)
                picker = self.q(self.online.logits(o_latent, shared))
            else:
                picker = self.q(t_logits)
            chosen = t_logits[torch.arange(bsz, device=t_logits.device), picker.argmax(-1)]
            if cfg.distributional:
                t_support = b["returns"][:, None] + b["discounts"][:, None] * support[None, :]
                target = project_distribution(support, chosen.softmax(-1), t_support)
            else:
                target = b["returns"] + b["discounts"] * chosen.squeeze(-1)
            if not self.spr:
                return target, None
            spr_targets = F.normalize(self.target.project(t_latent[bsz:]).float(), dim=-1)
        return target, spr_targets.view(bsz, cfg.spr_steps, -1)

    def dqn_loss(
        self, x: tuple[Any, ...], actions: torch.Tensor, target: torch.Tensor, noise: Noise | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``ValueAgent._dqn_loss``: the online latent, the per-sample loss (B,) and the
        chosen log-probabilities (C51)."""
        states, audio = x[0], x[2]
        with self.autocast():
            latent = self.online.encode(states[:, 0], None if audio is None else audio[:, 0])
            logits = self.online.logits(latent, noise).float()
        chosen = logits[torch.arange(self.bsz, device=logits.device), actions[:, 0]]
        if self.cfg.distributional:
            log_probs = chosen.log_softmax(-1)
            return latent, -(target * log_probs).sum(-1), log_probs
        if self.cfg.dqn_loss == "mse":
            return latent, (target - chosen.squeeze(-1)) ** 2, None
        return latent, F.huber_loss(chosen.squeeze(-1), target, reduction="none"), None

    def spr_loss(
        self, latent: torch.Tensor, b: dict[str, torch.Tensor], spr_targets: torch.Tensor | None
    ) -> torch.Tensor:
        """``ValueAgent._spr_loss``: per sample (B,), zeros without SPR."""
        if spr_targets is None:
            return torch.zeros(self.bsz, device=latent.device)
        with self.autocast():
            rolled = self.online.rollout(latent, b["actions"][:, : self.cfg.spr_steps])
            preds = torch.stack([self.online.predict(p) for p in rolled], dim=1)
        preds = F.normalize(preds.float(), dim=-1)
        return (((preds - spr_targets) ** 2).sum(-1) * b["same"][:, 1:]).mean(1)

    def forward(
        self,
        b: dict[str, torch.Tensor],
        weights: torch.Tensor,
        aug: list[torch.Tensor],
        t_noise: Noise | None,
        o_noise: Noise | None,
        noise: Noise | None,
    ) -> tuple[torch.Tensor, ...]:
        x = self.inputs(b, aug)
        target, spr_targets = self.targets(b, x, (t_noise, o_noise))
        latent, dqn_loss, log_probs = self.dqn_loss(x, b["actions"], target, noise)
        spr_loss = self.spr_loss(latent, b, spr_targets)
        loss = ((dqn_loss + self.cfg.spr_weight * spr_loss) * weights).mean()
        signal = dqn_loss
        if self.cfg.priority_signal == "kl" and log_probs is not None:
            signal = kl_priority(target, log_probs)
        return loss, dqn_loss.detach(), spr_loss.detach(), signal.detach()


def make_greedy(agent: FastValueAgent) -> Callable[..., torch.Tensor]:
    """Greedy actions (B,) of a network for uint8 images (B, stack, H, W)."""
    cfg, support = agent.cfg, agent.support
    amp = torch.autocast(agent.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def greedy(
        net: ValueNetwork, image: torch.Tensor, audio: torch.Tensor | None, noise: Noise | None
    ) -> torch.Tensor:
        x = image.float().div(255.0).contiguous(memory_format=fmt)
        a = None if audio is None else normalize_audio(audio, cfg.audio_normalize)
        with torch.no_grad(), amp:
            logits = net.logits(net.encode(x, a), noise).float()
        if cfg.distributional:
            return (logits.softmax(-1) * support).sum(-1).argmax(-1)
        return logits.squeeze(-1).argmax(-1)

    return greedy


def captured(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``fn`` under torch.compile (``mode``: default, reduce-overhead = CUDA graphs, or
    aot_eager: the same graph capture without code generation, for tests on CPU)."""
    if mode == "off":
        return fn
    if mode == "aot_eager":
        return torch.compile(fn, backend="aot_eager", dynamic=False)
    return torch.compile(fn, mode=mode, dynamic=False)


# ======================================================================================
# The agent
# ======================================================================================
class FastValueAgent(ValueAgent):
    """``ValueAgent`` with the update, the replay gather and training actions on the
    device (see the module docstring); the same protocol, state and draws."""

    def __init__(self, cfg: ValueConfig, *, obs_spec: ObsSpec, seed: int, device: str):
        super().__init__(cfg, obs_spec=obs_spec, seed=seed, device=device)
        self.device_replay = DeviceReplay(self.replay, self.device)
        self.layout = ReplayLayout(cfg, spr=self.spr)
        self._step = captured(UpdateStep(self).forward, cfg.compile_mode)
        self._greedy = captured(make_greedy(self), cfg.compile_mode)
        self._graphs = cfg.compile_mode == "reduce-overhead"
        self._last_t: dict[str, torch.Tensor] = {}
        self._pending: tuple[np.ndarray, torch.Tensor, Any] | None = None
        self._ema_pairs = self._pairs()

    # -- construction ------------------------------------------------------------------
    def _new_network(self) -> ValueNetwork:
        net = super()._new_network()
        if self.cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return net

    def _new_optimizer(self) -> torch.optim.Optimizer:
        opt = super()._new_optimizer()
        if self.device.type != "cuda":
            return opt  # the plain path's optimizer: the same arithmetic on the CPU
        cfg = self.cfg
        groups = [
            {"params": g["params"], "weight_decay": g["weight_decay"]} for g in opt.param_groups
        ]
        return torch.optim.AdamW(  # one fused kernel for all parameters
            groups,
            lr=cfg.learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps,
            fused=True,
        )

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[Any, Any]]]:
        """(target floats, online floats, integer pairs) of the two state dicts, for a
        multi-tensor EMA (the tensors are updated in place: resets keep them)."""
        t_state, o_state = self.target.state_dict(), self.online.state_dict()
        tf, of, ints = [], [], []
        for name, value in o_state.items():
            if value.dtype.is_floating_point:
                tf.append(t_state[name])
                of.append(value)
            else:
                ints.append((t_state[name], value))
        return tf, of, ints

    def _ema(self) -> None:
        """``agents.value.ema_`` as two multi-tensor kernels: the same arithmetic."""
        tau = self.cfg.target_tau
        tf, of, ints = self._ema_pairs
        with torch.no_grad():
            torch._foreach_mul_(tf, 1 - tau)
            torch._foreach_add_(tf, of, alpha=tau)
            for t, o in ints:
                t.copy_(o)

    # -- acting --------------------------------------------------------------------------
    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        """Training actions (one env) through the captured network; evaluation (many envs,
        other batch sizes) through the plain path, which would otherwise recompile."""
        image = obs["image"]
        if eval_mode or image.shape[0] != 1:
            return super().act(obs, eval_mode=eval_mode, epsilon=epsilon)
        eps = epsilon_at(self.cfg, self.env_steps) if epsilon is None else epsilon
        net = self.target if self.cfg.act_with_target else self.online
        noise = self._noise(net, 1, self.act_gen) if self.cfg.noisy else None
        audio = obs.get("audio") if self.use_audio else None
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()
        greedy = self._greedy(
            net,
            torch.as_tensor(image, device=self.device),
            None if audio is None else torch.as_tensor(audio, device=self.device),
            noise,
        )
        greedy = greedy.cpu().numpy()
        rng = self.act_rng
        explore = rng.random(1) <= eps if eps > 0 else np.zeros(1, bool)
        random_actions = rng.integers(0, self.obs_spec.num_actions, size=1)
        return np.where(explore, random_actions, greedy).astype(np.int64)

    # -- gradient steps ----------------------------------------------------------------
    def _train(self, steps: int) -> None:
        super()._train(steps)
        self._flush()  # the next env step adds at the tree's maximum priority

    def _draw_indices(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``ValueAgent._draw`` without the host gather: indices and their priorities."""
        cfg, r = self.cfg, self.replay
        n = n_step_at(cfg, self.cycle_steps)
        idx = r.sample_indices(
            cfg.batch_size * size,
            self.sample_rng,
            lookahead=lookahead(n, self.layout.subseq, cfg.nstep_bootstrap),
            n=n,
            exclude_newest=self._exclude_newest(),
        )
        prio = r.tree.get(idx % r.capacity) if r.tree is not None else np.ones(len(idx))
        return idx, prio

    def _prefetch(self, size: int) -> dict[str, Any]:
        idx, prio = self._draw_indices(size)
        n, gamma = n_step_at(self.cfg, self.cycle_steps), gamma_at(self.cfg, self.cycle_steps)
        return {"index": idx, "n": n, "gamma": gamma, "priorities": prio}

    def _next_indices(self, size: int) -> dict[str, Any]:
        """``ValueAgent._next_group``'s choice: a draw now, or the oldest prefetched one."""
        if not self.cfg.replay_prefetch or size != self._group_size():
            self._flush()
            return self._prefetch(size)
        if not self.prefetched:
            self.prefetched.extend(self._prefetch(size) for _ in range(self.cfg.replay_prefetch))
        return self.prefetched.popleft()

    def _update_group(self, size: int) -> None:
        cfg, bsz = self.cfg, self.cfg.batch_size
        drawn = self._next_indices(size)
        idx, n, gamma = drawn["index"], drawn["n"], drawn["gamma"]
        w = np.ones(len(idx))
        if cfg.prioritized:
            w = np.power(drawn["priorities"] + 1e-10, -importance_at(cfg, self.env_steps))
            w = w / w.max()
        weights = torch.as_tensor(w, dtype=torch.float32).to(self.device, non_blocking=True)
        self.device_replay.sync()
        group = self.device_replay.gather(
            torch.as_tensor(idx, device=self.device),
            n=torch.tensor(n, device=self.device),
            gamma=torch.tensor(gamma, dtype=torch.float64, device=self.device),
            layout=self.layout,
        )
        slots = idx % self.replay.capacity
        means = []
        for j in range(size):
            rows = slice(j * bsz, (j + 1) * bsz)
            batch = {k: v[rows] for k, v in group.items()}
            signal = self._fast_update(batch, weights[rows], n=n, gamma=gamma)
            if cfg.priority_writeback == "per_sample":
                self._write(slots[rows], signal)
            means.append(signal.mean())
        self._flush()  # the previous group's priorities, read by the draw below
        if cfg.replay_prefetch and size == self._group_size():
            self.prefetched.append(self._prefetch(size))
        if cfg.priority_writeback == "reference" and cfg.prioritized:
            self._pending = (slots[:size], *_to_host(torch.stack(means)))

    def _fast_update(
        self, b: dict[str, torch.Tensor], weights: torch.Tensor, *, n: int, gamma: float
    ) -> torch.Tensor:
        """One gradient step (``ValueAgent._update``) without a host synchronization."""
        cfg = self.cfg
        draws = Draws(self, b["states"].shape[0] * b["states"].shape[1])
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss, dqn_loss, spr_loss, signal = self._step(
            b, weights, draws.aug, draws.t_noise, draws.o_noise, draws.noise
        )
        self._apply_gradient(loss)
        self.grad_steps += 1
        self.cycle_steps += 1
        if cfg.target_period_unit == "gradient_steps" and self.grad_steps % cfg.target_period == 0:
            self._ema()
        # Clones: a CUDA graph's outputs are overwritten by its next replay.
        self._last_t = {
            "loss": loss.detach().clone(),
            "dqn_loss": dqn_loss.mean(),
            "spr_loss": spr_loss.mean(),
        }
        self.last = {"n_step": float(n), "gamma": float(gamma)}
        return signal.clone()

    def _write(self, slots: np.ndarray, signal: torch.Tensor) -> None:
        if self.cfg.prioritized:
            self._update_priorities(slots, signal)

    def _flush(self) -> None:
        """Write the pending group's priorities to the tree (waits for their copy only)."""
        if self._pending is None:
            return
        slots, host, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        loss_np = host.numpy().astype(np.float64)
        self.replay.update_priorities(slots, np.power(loss_np + 1e-10, self.cfg.priority_exponent))

    # -- protocol: metrics and state ---------------------------------------------------
    def _materialize(self) -> None:
        if self._last_t:
            values = torch.stack(list(self._last_t.values())).tolist()
            self.last = {**dict(zip(self._last_t, values, strict=True)), **self.last}
            self._last_t = {}

    def metrics(self) -> dict[str, float]:
        self._materialize()
        return super().metrics()

    def state_dict(self) -> dict[str, Any]:
        self._flush()
        self._materialize()
        return super().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._last_t, self._pending = {}, None
        self.device_replay.invalidate()


def _to_host(values: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """An asynchronous copy of ``values`` to (pinned) host memory and the event that says
    it has arrived; on the CPU the values themselves and no event."""
    if values.device.type != "cuda":
        return values.detach().clone(), None
    host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
    host.copy_(values.detach(), non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


AGENT_CLASSES[True] = FastValueAgent
