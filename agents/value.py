"""One configurable value-based agent: DQN, DER, SPR, SR-SPR and BBF are presets of it.

Read top to bottom: the config (every hyperparameter), schedules, augmentation, the C51
projection, the agent (acting, observing, one gradient step, resets, state), then the
presets, each written as differences from ``BASE`` so that a diff shows the science.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from agents import diagnostics
from agents.audio import (
    AudioEncoderKind,
    AudioFusionKind,
    AudioNormalize,
    AudioOptions,
    normalize_audio,
)
from agents.contrastive import masked_contrastive_loss
from agents.losses import bin_centers, bin_edges, hl_gauss_targets
from agents.moe import MoESpec
from agents.networks import (
    MODULE_GROUPS,
    Noise,
    ValueNetwork,
    count_parameters,
    group_of,
    initialize,
)
from agents.protocol import ObsSpec, Transition
from agents.pruning import MagnitudePruner, is_prune_step, sparsity_at
from agents.registry import AgentEntry, register
from agents.replay import Batch, ReplayBuffer, lookahead
from bench.core.config import check_finite, override, require, to_dict
from bench.core.errors import FieldError
from bench.core.seeding import sequence, spawn


# ======================================================================================
# Config
# ======================================================================================
@dataclass(frozen=True)
class ValueConfig:
    """Every hyperparameter of the agent. Defaults are BBF at replay ratio 2 (``BBF.gin``)."""

    # -- network -----------------------------------------------------------------------
    encoder: Literal["impala", "nature"] = "impala"
    width_scale: float = 4.0  # Impala (16, 32, 32) x 4 = (64, 128, 128)
    padding: Literal["same", "valid"] = "same"  # conv/max-pool padding; valid gives 9x9 Impala
    hidden_dim: int = 2048  # the projection ("dense 2048")
    renormalize: bool = True  # per-sample min-max of the latent and transition outputs
    dueling: bool = True
    # "shared": one hidden layer (hidden_dim) feeds both streams and is SPR's projection;
    # "streams": SPR's code: a hidden layer of hidden_dim per stream (value, advantage), the
    # SPR projection their concatenation and the predictor 2 x hidden_dim wide.
    head_structure: Literal["shared", "streams"] = "shared"
    head_grad_scale: float = 1.0  # the head's gradient into the latent (SPR: 2^-1/2)
    distributional: bool = True  # C51; False gives scalar Q with dqn_loss
    dqn_loss: Literal["huber", "mse"] = "huber"  # scalar Q only
    num_atoms: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    noisy: bool = False  # noisy nets on the projection and head
    noisy_sigma0: float = 0.5
    noise_in_eval: bool = True  # the reference keeps the noise on at evaluation
    noisy_init: Literal["scheme", "fortunato"] = "scheme"  # noisy mu: as init, or U(+-1/sqrt(in))
    noisy_bias_sigma: Literal["fan_in", "fan_out"] = "fan_in"  # bias sigma0/sqrt(in or out)
    noise_draw: Literal["per_sample", "per_batch"] = "per_sample"  # per_batch: one draw a batch,
    # shared by the online and target networks in the target (Dopamine's full Rainbow)
    noise_keys: Literal["independent", "by_size"] = "independent"  # see sample_noise
    init: Literal["xavier_uniform", "torch_default"] = "xavier_uniform"
    audio_channels: int = 2  # SEM3 audio latent channels when the env has audio (0: ignore it)
    # How the agent hears (agents/audio.py); used only when the env gives audio.
    audio_encoder: AudioEncoderKind = "waveform"  # SEM3's 1-D CNN, or log-mel
    audio_fusion: AudioFusionKind = "channels"  # SEM3: channels
    audio_normalize: AudioNormalize = "silence"  # (x-128)/128; unit: SEM3's x/255
    audio_spr: bool = True  # SPR predicts the audio part of the latent too (SEM3 did)
    audio_reset: Literal["shrink_perturb", "keep"] = "shrink_perturb"  # keep: never reset it
    audio_n_fft: int = 512  # log-mel: STFT frame (60 Hz bins at 30,720 Hz)
    audio_hop: int = 128  # log-mel: STFT hop (13 frames per 2,048-sample step)
    audio_n_mels: int = 40
    audio_sample_rate: int = 30_720  # 512 samples per emulator frame at 60 frames/s
    audio_attention_dim: int = 64  # attention fusion: query/key/value width
    audio_attention_heads: int = 4
    # -- learning target ---------------------------------------------------------------
    double_dqn: bool = True
    n_step: int = 3  # final n
    n_step_start: int = 10  # n at gradient step 0 of each cycle (equal to n_step: fixed)
    gamma: float = 0.997  # final gamma
    gamma_start: float = 0.97  # gamma at step 0 of each cycle (equal to gamma: fixed)
    anneal_steps: int = 10_000  # gradient steps of the exponential n/gamma schedules
    nstep_bootstrap: Literal["reference", "fixed"] = "reference"  # quirk 1, see replay.py
    # -- replay ------------------------------------------------------------------------
    replay_capacity: int = 200_000
    prioritized: bool = True
    priority_exponent: float = 0.5  # alpha: priority = (loss + 1e-10)^alpha
    importance_start: float = 0.5  # beta at env step 0 (the reference: 0.5 fixed)
    importance_end: float = 0.5
    importance_anneal_steps: int = 100_000  # env steps of beta's linear schedule
    # BBF's reference writes back one priority per gradient step: the batch's mean loss, to
    # the first indices of the sampled group (set_priority zips 2 values with 64 indices);
    # the other sampled items keep their priority. per_sample: each item its own loss.
    priority_writeback: Literal["reference", "per_sample"] = "reference"
    priority_signal: Literal["cross_entropy", "kl"] = "cross_entropy"  # kl: SPR's code
    # One stratified draw (a value in each of B equal-mass strata, Dopamine's and BBF's
    # buffers), or B independent draws over the whole mass (rlpyt's SumTree, SPR's code).
    priority_sampling: Literal["stratified", "independent"] = "stratified"
    new_priority: Literal["max", "one"] = "max"  # new items: max priority so far, or 1 (rlpyt)
    # Where beta's linear schedule starts: env step 0, or learning_starts (rlpyt); it ends
    # at importance_anneal_steps either way.
    importance_anneal_from: Literal["start", "learning_starts"] = "start"
    batches_to_group: int = 2  # batches sampled together (one stratified draw), BBF.gin
    # Draws made ahead of their use: BBF's prefetch_to_device(sampler, 2) draws each group
    # two groups early (before the priorities of the groups between are written back, and
    # with the n and gamma of then). 0 draws each group when it is trained on.
    replay_prefetch: int = 2
    # The newest steps never sampled: "horizon_subsequence" (BBF's buffer: max n + the
    # subsequence length), "horizon" (Dopamine's buffer: max n), "needed" (only what the
    # n-step window and the subsequence need: a new step can be drawn at once), "rlpyt"
    # (SPR's buffer: max n + the subsequence length + 1).
    replay_newest: Literal["needed", "horizon", "horizon_subsequence", "rlpyt"] = (
        "horizon_subsequence"
    )
    learning_starts: int = 2_000  # env steps before the first gradient step
    batch_size: int = 32
    replay_ratio: float = 2.0  # gradient steps per env step (the suite's replay_ratio axis)
    # Episodes held out of training (agents/heldout.py), for the held-out losses: stored, never
    # sampled. Not in BBF; DreamerV2's update-ratio study held out 15%. 0: none (as before).
    heldout_fraction: float = 0.0
    # -- target network ----------------------------------------------------------------
    target_tau: float = 0.005  # EMA weight of the online network; 1 copies
    target_period: int = 1  # steps between target updates, in target_period_unit
    target_period_unit: Literal["gradient_steps", "env_steps"] = "gradient_steps"
    act_with_target: bool = True  # the target network acts, in training and evaluation
    # -- SPR ---------------------------------------------------------------------------
    spr_weight: float = 5.0  # 0 disables SPR (no transition model or predictor)
    spr_steps: int = 5
    transition_batchnorm: bool = False
    # With BatchNorm: after each conv, before its ReLU; or SPR's conv, ReLU, BN, conv, ReLU.
    transition_norm_order: Literal["conv_bn_relu", "conv_relu_bn"] = "conv_bn_relu"
    spr_mask: Literal["reference", "shifted", "fixed"] = "reference"  # quirk 2, see replay.py
    # -- augmentation (DrQ) ------------------------------------------------------------
    augmentation: bool = True
    shift_pad: int = 4
    intensity_scale: float = 0.05
    # -- optimizer ---------------------------------------------------------------------
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1.5e-4
    weight_decay: float = 0.1  # decoupled (AdamW); 0 is Adam
    decay_biases: bool = False  # the reference masks 1-D parameters out of the decay
    grad_clip_norm: float = 0.0  # 0: no clipping
    # "all": one norm over every parameter; "stem_dynamics": SPR's two clips, encoder and
    # projection and head together, the transition model alone, the predictor not at all.
    grad_clip_groups: Literal["all", "stem_dynamics"] = "all"
    # -- resets (shrink and perturb) ---------------------------------------------------
    reset_interval: int = 40_000  # GRADIENT steps; 0 disables resets
    reset_shrink: float = 0.5  # theta <- shrink * theta + perturb * theta_random
    reset_perturb: float = 0.5
    reset_shrink_groups: tuple[str, ...] = ("encoder", "audio_encoder", "transition_model")
    reset_full_groups: tuple[str, ...] = ("projection", "predictor", "head")
    reset_target: bool = True  # the target gets the same reset with its own random draw
    reset_optimizer: Literal["all", "reset_groups"] = "all"
    no_resets_after: int = 100_000  # env steps: no reset whose next interval ends past it
    # -- ablation axes (none of them on in a preset) -----------------------------------
    # The value loss: "auto" follows distributional and dqn_loss (what every preset does);
    # otherwise it overrides both: c51; hl_gauss (cross-entropy against the histogram of
    # N(TD target, sigma^2) over num_atoms bins spanning [v_min, v_max], Farebrother et al.
    # 2024); mse or huber (scalar Q).
    value_loss: Literal["auto", "c51", "hl_gauss", "mse", "huber"] = "auto"
    hl_gauss_sigma: float = 0.75  # sigma / bin width ("Stop Regressing": 0.75)
    impala_blocks: int = 2  # residual blocks per Impala stage (the encoder's depth)
    # Soft-MoE instead of the dense projection (agents/moe.py): 0 experts keeps the dense
    # layer of the flattened latent; N > 0 tokenizes the latent and mixes N experts.
    moe_experts: int = 0
    moe_tokens: Literal["per_position", "per_channel"] = "per_position"
    moe_expert_dim: int = 512  # hidden units of each expert (Dopamine's labs/moes)
    moe_single_expert: bool = False  # one expert of moe_experts x moe_expert_dim units
    # Masked contrastive auxiliary loss (M-CURL, agents/contrastive.py); with SPR on too,
    # both losses are added.
    mcr_weight: float = 0.0  # 0 disables it (no transformer, no key encoder)
    mcr_seq_len: int = 8  # consecutive frames per sequence
    mcr_mask_prob: float = 0.5  # probability that a position is masked
    mcr_depth: int = 2  # transformer layers
    mcr_width: int = 128  # transformer model width (a multiple of its 4 heads)
    mcr_temperature: float = 0.1  # InfoNCE temperature of the cosine similarities
    mcr_momentum: float = 0.95  # key encoder <- m * key + (1 - m) * online, per gradient step
    # Gradual magnitude pruning of the dense layers (agents/pruning.py): cubic schedule
    # from prune_start to prune_end (env steps; 20% and 80% of a 100k run).
    prune_sparsity: float = 0.0  # the final sparsity; 0 disables pruning
    prune_start: int = 20_000
    prune_end: int = 80_000
    prune_every: int = 1_000  # env steps between mask updates
    # -- exploration -------------------------------------------------------------------
    epsilon_start: float = 1.0
    epsilon_end: float = 0.0
    epsilon_decay_steps: int = 2_001  # env steps, linear, starting at learning_starts
    epsilon_schedule: Literal["linear", "constant"] = "linear"  # constant: epsilon_end always
    # No evaluation epsilon here: evaluation acts with the protocol's eval_epsilon (0.001),
    # which the harness passes to act(); the protocol is its one source.
    # -- diagnostics (agents/diagnostics.py; computed when metrics are logged) -----------
    diagnostic_batch: int = 256  # replay samples per diagnostic; 0: none. Never changes training
    # -- placement ---------------------------------------------------------------------
    device: str = "auto"  # "auto": CUDA when present, else CPU
    # -- speed (agents/fast.py): the same agent, the update captured on the device -------
    fast_path: bool = False  # replay gather, augmentation and update on the device
    compile_mode: Literal["off", "default", "reduce-overhead", "aot_eager"] = "off"
    amp: Literal["off", "bf16"] = "off"  # bf16 autocast of the networks (losses stay fp32)
    channels_last: bool = False  # NHWC convolutions

    def __post_init__(self) -> None:
        # Checks only: a config outside these ranges cannot train (or crashes at run time),
        # so it is refused when a suite is loaded. ``override`` adds the key path.
        check_finite(self)
        for name, ok, valid in _domain(self):
            require(ok, name, getattr(self, name), valid)
        if self.head_structure == "streams" and not self.dueling:
            raise FieldError("head_structure", 'separate streams ("streams") need dueling: true')
        if self.audio_reset == "shrink_perturb" and "audio_encoder" not in self.reset_shrink_groups:
            raise FieldError(
                "audio_reset",
                "shrink_perturb needs 'audio_encoder' in reset_shrink_groups; or set "
                "audio_reset: keep",
            )
        groups = set(self.reset_shrink_groups) | set(self.reset_full_groups)
        unknown_groups = groups - set(MODULE_GROUPS)
        if unknown_groups:
            raise FieldError(
                "reset_shrink_groups"
                if unknown_groups & set(self.reset_shrink_groups)
                else "reset_full_groups",
                f"unknown reset groups {sorted(unknown_groups)}; valid: {MODULE_GROUPS}",
            )


DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]{1,3})?")


def _domain(c: ValueConfig) -> list[tuple[str, bool, str]]:
    """(field, within its range, the range) for every checked field of a config."""
    unit = "0..1"
    histogram = value_loss_of(c) in ("c51", "hl_gauss")
    return [
        ("width_scale", 0 < c.width_scale <= 64, "more than 0, at most 64"),
        ("hidden_dim", 1 <= c.hidden_dim <= 1 << 16, "1..65536"),
        ("num_atoms", not histogram or 2 <= c.num_atoms <= 1024, "2..1024 (C51, HL-Gauss)"),
        ("v_max", not histogram or c.v_min < c.v_max, f"more than v_min ({c.v_min})"),
        ("noisy_sigma0", c.noisy_sigma0 >= 0, "at least 0"),
        ("head_grad_scale", 0 < c.head_grad_scale <= 1, "more than 0, at most 1"),
        ("audio_channels", 0 <= c.audio_channels <= 1024, "0..1024"),
        ("n_step", 1 <= c.n_step <= 1000, "1..1000"),
        ("n_step_start", 1 <= c.n_step_start <= 1000, "1..1000"),
        ("gamma", 0 < c.gamma < 1, "between 0 and 1, exclusive"),
        ("gamma_start", 0 < c.gamma_start < 1, "between 0 and 1, exclusive"),
        ("anneal_steps", c.anneal_steps >= 0, "at least 0"),
        ("replay_capacity", c.replay_capacity >= 1, "at least 1"),
        ("priority_exponent", c.priority_exponent >= 0, "at least 0"),
        ("importance_start", 0 <= c.importance_start <= 1, unit),
        ("importance_end", 0 <= c.importance_end <= 1, unit),
        ("importance_anneal_steps", c.importance_anneal_steps >= 0, "at least 0"),
        ("learning_starts", c.learning_starts >= 0, "at least 0"),
        ("batch_size", 1 <= c.batch_size <= 1 << 16, "1..65536"),
        ("replay_ratio", 0 <= c.replay_ratio <= 1024, "0..1024 gradient steps per env step"),
        ("heldout_fraction", 0 <= c.heldout_fraction < 1, "0 up to, not including, 1"),
        ("diagnostic_batch", 0 <= c.diagnostic_batch <= 1 << 16, "0..65536 (0: none)"),
        ("target_tau", 0 < c.target_tau <= 1, "more than 0, at most 1"),
        ("target_period", c.target_period >= 1, "at least 1"),
        ("spr_weight", c.spr_weight >= 0, "at least 0 (0 disables SPR)"),
        ("spr_steps", c.spr_weight == 0 or 1 <= c.spr_steps <= 100, "1..100 with SPR on"),
        ("shift_pad", 0 <= c.shift_pad <= 64, "0..64"),
        ("intensity_scale", c.intensity_scale >= 0, "at least 0"),
        ("learning_rate", c.learning_rate > 0, "more than 0"),
        ("adam_beta1", 0 <= c.adam_beta1 < 1, "0 up to, not including, 1"),
        ("adam_beta2", 0 <= c.adam_beta2 < 1, "0 up to, not including, 1"),
        ("adam_eps", c.adam_eps >= 0, "at least 0"),
        ("weight_decay", c.weight_decay >= 0, "at least 0"),
        ("grad_clip_norm", c.grad_clip_norm >= 0, "at least 0 (0: no clipping)"),
        ("reset_interval", c.reset_interval >= 0, "at least 0 (0: no resets)"),
        ("reset_shrink", 0 <= c.reset_shrink <= 1, unit),
        ("reset_perturb", 0 <= c.reset_perturb <= 1, unit),
        ("no_resets_after", c.no_resets_after >= 0, "at least 0"),
        ("epsilon_start", 0 <= c.epsilon_start <= 1, unit),
        ("epsilon_end", 0 <= c.epsilon_end <= 1, unit),
        ("epsilon_decay_steps", c.epsilon_decay_steps >= 0, "at least 0"),
        ("batches_to_group", c.batches_to_group >= 1, "at least 1"),
        ("replay_prefetch", c.replay_prefetch >= 0, "at least 0"),
        ("device", DEVICE.fullmatch(c.device) is not None, "auto, cpu, mps, cuda or cuda:N"),
        ("compile_mode", c.fast_path or c.compile_mode == "off", "off unless fast_path is true"),
        ("amp", c.fast_path or c.amp == "off", "off unless fast_path is true"),
        ("channels_last", c.fast_path or not c.channels_last, "false unless fast_path is true"),
        # The fast path computes the presets' losses (C51 or scalar, with SPR); the newer
        # ablation losses run on the plain path only.
        ("value_loss", not c.fast_path or c.value_loss == "auto", "auto with fast_path"),
        ("mcr_weight", not c.fast_path or c.mcr_weight == 0, "0 with fast_path"),
        *_axes_domain(c),
        *_audio_domain(c),
    ]


def _audio_domain(c: ValueConfig) -> list[tuple[str, bool, str]]:
    """The checked audio fields (agents/audio.py)."""
    return [
        ("audio_n_fft", 8 <= c.audio_n_fft <= 8192, "8..8192"),
        ("audio_hop", 1 <= c.audio_hop <= c.audio_n_fft, f"1..audio_n_fft ({c.audio_n_fft})"),
        ("audio_n_mels", 1 <= c.audio_n_mels <= c.audio_n_fft // 2 + 1, "1..audio_n_fft/2+1"),
        ("audio_sample_rate", 1_000 <= c.audio_sample_rate <= 1_000_000, "1000..1000000"),
        ("audio_attention_dim", 1 <= c.audio_attention_dim <= 4096, "1..4096"),
        (
            "audio_attention_heads",
            1 <= c.audio_attention_heads <= c.audio_attention_dim
            and c.audio_attention_dim % c.audio_attention_heads == 0,
            f"a divisor of audio_attention_dim ({c.audio_attention_dim})",
        ),
    ]


def _axes_domain(c: ValueConfig) -> list[tuple[str, bool, str]]:
    """The ranges of the ablation axes' fields."""
    mcr = c.mcr_weight > 0
    return [
        ("hl_gauss_sigma", c.hl_gauss_sigma > 0, "more than 0 (bin widths)"),
        ("impala_blocks", 0 <= c.impala_blocks <= 16, "0..16"),
        ("moe_experts", 0 <= c.moe_experts <= 1024, "0..1024 (0: dense projection)"),
        ("moe_expert_dim", 1 <= c.moe_expert_dim <= 1 << 16, "1..65536"),
        ("mcr_weight", c.mcr_weight >= 0, "at least 0 (0 disables it)"),
        ("mcr_seq_len", not mcr or 2 <= c.mcr_seq_len <= 64, "2..64 with mcr_weight > 0"),
        ("mcr_mask_prob", 0 < c.mcr_mask_prob <= 1, "more than 0, at most 1"),
        ("mcr_depth", 1 <= c.mcr_depth <= 16, "1..16"),
        (
            "mcr_width",
            4 <= c.mcr_width <= 4096 and c.mcr_width % 4 == 0,
            "4..4096, a multiple of 4",
        ),
        ("mcr_temperature", c.mcr_temperature > 0, "more than 0"),
        ("mcr_momentum", 0 <= c.mcr_momentum < 1, "0 up to, not including, 1"),
        ("prune_sparsity", 0 <= c.prune_sparsity < 1, "0 up to, not including, 1"),
        ("prune_start", c.prune_start >= 0, "at least 0"),
        ("prune_end", c.prune_end >= c.prune_start, f"at least prune_start ({c.prune_start})"),
        ("prune_every", c.prune_every >= 1, "at least 1"),
    ]


def value_loss_of(c: ValueConfig) -> str:
    """The value loss in use: c51, hl_gauss, mse or huber ("auto" reads distributional
    and dqn_loss, as the presets set them)."""
    if c.value_loss != "auto":
        return c.value_loss
    return "c51" if c.distributional else c.dqn_loss


# ======================================================================================
# Schedules (pure functions, tested)
# ======================================================================================
def exponential_schedule(step: int, *, start: float, end: float, steps: int) -> float:
    """Exponential interpolation from ``start`` to ``end`` over ``steps`` (then ``end``)."""
    if steps <= 0 or start == end:
        return end
    frac = min(max(step / steps, 0.0), 1.0)
    return math.exp((1 - frac) * math.log(start) + frac * math.log(end))


def n_step_at(cfg: ValueConfig, cycle_step: int) -> int:
    """BBF's n: n_max * (n_min/n_max)^frac, rounded (10 -> 3 over 10k gradient steps)."""
    ratio = exponential_schedule(
        cycle_step, start=1.0, end=cfg.n_step / cfg.n_step_start, steps=cfg.anneal_steps
    )
    return int(np.round(ratio * cfg.n_step_start))


def gamma_at(cfg: ValueConfig, cycle_step: int) -> float:
    """BBF's gamma: 1 - gamma interpolated exponentially (0.97 -> 0.997)."""
    return 1.0 - exponential_schedule(
        cycle_step, start=1.0 - cfg.gamma_start, end=1.0 - cfg.gamma, steps=cfg.anneal_steps
    )


def epsilon_at(cfg: ValueConfig, env_step: int) -> float:
    """Dopamine's linearly decaying epsilon: start until learning_starts, then linear; or
    epsilon_end throughout (Dopamine's full Rainbow with noisy nets, 2021)."""
    if cfg.epsilon_schedule == "constant":
        return cfg.epsilon_end
    left = cfg.epsilon_decay_steps + cfg.learning_starts - env_step
    frac = min(max(left / max(cfg.epsilon_decay_steps, 1), 0.0), 1.0)
    return cfg.epsilon_end + frac * (cfg.epsilon_start - cfg.epsilon_end)


def importance_at(cfg: ValueConfig, env_step: int) -> float:
    """PER's beta: linear from importance_start at env step 0 (or at learning_starts, as
    rlpyt's update_itr_hyperparams) to importance_end at importance_anneal_steps."""
    start = cfg.learning_starts if cfg.importance_anneal_from == "learning_starts" else 0
    frac = (env_step - start) / max(cfg.importance_anneal_steps - start, 1)
    frac = min(max(frac, 0.0), 1.0)
    return cfg.importance_start + frac * (cfg.importance_end - cfg.importance_start)


def reset_interval_env_steps(cfg: ValueConfig) -> int:
    """The reset interval in env steps: gradient steps / replay ratio (20k at RR 2, 5k at 8)."""
    if cfg.reset_interval <= 0 or cfg.replay_ratio <= 0:
        return 0
    return max(1, int(round(cfg.reset_interval / cfg.replay_ratio)))


def _reset_groups(cfg: ValueConfig, groups: tuple[str, ...]) -> tuple[str, ...]:
    """``groups`` without the audio encoder when ``audio_reset`` is "keep" (as SEM3's
    resets left it: its layer name was not in the reset list)."""
    if cfg.audio_reset == "keep":
        return tuple(g for g in groups if g != "audio_encoder")
    return groups


def shrink_groups(cfg: ValueConfig) -> tuple[str, ...]:
    """The groups a reset shrinks and perturbs (``reset_shrink_groups``)."""
    return _reset_groups(cfg, cfg.reset_shrink_groups)


def full_groups(cfg: ValueConfig) -> tuple[str, ...]:
    """The groups a reset re-initializes (``reset_full_groups``)."""
    return _reset_groups(cfg, cfg.reset_full_groups)


def is_reset_step(cfg: ValueConfig, env_step: int) -> bool:
    """Resets at multiples of the interval, skipped when the next interval would end past
    ``no_resets_after`` (so at RR 2: 20k, 40k, 60k, 80k; none at or after 100k)."""
    interval = reset_interval_env_steps(cfg)
    if interval == 0 or env_step == 0 or env_step % interval:
        return False
    return env_step + interval <= cfg.no_resets_after


# ======================================================================================
# Building blocks (pure, tested)
# ======================================================================================
def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ shift of (N, C, H, W): edge-replicate ``pad`` pixels, crop H x W at a random
    offset per sample (the same for its C stacked frames). Offsets are in [0, 2*pad) as in
    the reference's ``randint(0, 2*pad)`` (exclusive), not DrQ's [0, 2*pad]."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    oy = torch.randint(0, 2 * pad, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad, (n,), generator=generator).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def intensity(x: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """x * (1 + scale * clip(N(0, 1), -2, 2)), one draw per sample."""
    r = torch.randn(x.shape[0], generator=generator).clamp(-2.0, 2.0).to(x.device)
    return x * (1.0 + scale * r).view(-1, *([1] * (x.ndim - 1)))


def project_distribution(
    support: torch.Tensor, probs: torch.Tensor, target_support: torch.Tensor
) -> torch.Tensor:
    """C51's projection of ``probs`` on atoms ``target_support`` (B, K) onto the fixed,
    evenly spaced ``support`` (K,). Returns (B, K)."""
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.numel() - 1)
    z = target_support.clamp(v_min, v_max)
    # weight of source atom j on target atom i: max(0, 1 - |z_j - support_i| / delta)
    weights = (1 - (z[:, None, :] - support[None, :, None]).abs() / delta).clamp(min=0)
    return (weights * probs[:, None, :]).sum(-1)


def kl_priority(target: torch.Tensor, log_probs: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """SPR's priority signal (B,): KL(target || prediction) with the target clamped to
    [eps, 1] and the result to [eps, 1/eps], as its rl_loss computes it."""
    t = target.clamp(eps, 1.0)
    return (t * (t.log() - log_probs.detach())).sum(-1).clamp(eps, 1.0 / eps)


def ema_(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, for parameters and float buffers."""
    with torch.no_grad():
        t_state = target.state_dict()
        for name, value in online.state_dict().items():
            t = t_state[name]
            if t.dtype.is_floating_point:
                t.mul_(1 - tau).add_(value, alpha=tau)
            else:
                t.copy_(value)


def shrink_perturb_(
    net: torch.nn.Module,
    fresh: torch.nn.Module,
    *,
    shrink: float,
    perturb: float,
    shrink_groups: tuple[str, ...],
    full_groups: tuple[str, ...],
) -> None:
    """theta <- shrink*theta + perturb*theta_fresh on ``shrink_groups``; theta <- theta_fresh
    on ``full_groups``; other groups untouched. Buffers of reset groups are copied."""
    with torch.no_grad():
        fresh_state = fresh.state_dict()
        for name, value in net.state_dict().items():
            group = group_of(name)
            if group in full_groups or (
                group in shrink_groups and not value.dtype.is_floating_point
            ):
                value.copy_(fresh_state[name])
            elif group in shrink_groups:
                value.mul_(shrink).add_(fresh_state[name], alpha=perturb)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ======================================================================================
# The agent
# ======================================================================================
@dataclass(frozen=True)
class _Inputs:
    """A replay batch as tensors on the agent's device, images scaled to [0, 1] and
    augmented; B = batch, T = subsequence length (1 + SPR steps)."""

    rows: torch.Tensor  # (B,) 0 .. B-1, to pick each sample's action
    states: torch.Tensor  # (B, T, stack, H, W): s_t .. s_{t+T-1}
    audio: torch.Tensor | None  # (B, T, stack, S)
    next_states: torch.Tensor  # (B, stack, H, W): the bootstrap states
    next_audio: torch.Tensor | None  # (B, stack, S)
    actions: torch.Tensor  # (B, T) int64
    returns: torch.Tensor  # (B,) n-step returns
    discounts: torch.Tensor  # (B,) gamma^n, zero past a terminal
    same_trajectory: np.ndarray  # (B, T): 1 where s_{t+k} is usable for SPR


class ValueAgent:
    """Implements agents.protocol.Agent."""

    def __init__(self, cfg: ValueConfig, *, obs_spec: ObsSpec, seed: int, device: str):
        self.cfg = cfg
        self.obs_spec = obs_spec
        self.device = resolve_device(cfg.device if cfg.device != "auto" else device)
        self.use_audio = obs_spec.audio_shape is not None and cfg.audio_channels > 0
        self.spr = cfg.spr_weight > 0
        self.mcr = cfg.mcr_weight > 0  # the masked contrastive loss
        self.loss_kind = value_loss_of(cfg)
        self.seed = seed
        seeds = spawn(seed, 6)
        # Separate streams so that evaluation never moves the training randomness.
        self.sample_rng = np.random.default_rng(seeds[0])  # replay sampling
        self.act_rng = np.random.default_rng(seeds[1])  # training epsilon-greedy
        self.eval_rng = np.random.default_rng(seeds[2])  # evaluation epsilon-greedy
        self.gen = self._generator(seeds[3])  # init, resets, augmentation, training noise
        self.act_gen = self._generator(seeds[4])  # noise when acting in training
        self.eval_gen = self._generator(seeds[5])  # noise when acting in evaluation

        self.online = self._new_network()
        self.target = self._new_network()
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = self._new_optimizer()
        self.support = torch.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms, device=self.device)
        self.edges = bin_edges(cfg.v_min, cfg.v_max, cfg.num_atoms).to(self.device)
        if self.loss_kind == "hl_gauss":  # Q is the mean over the bins' centers
            self.support = bin_centers(cfg.v_min, cfg.v_max, cfg.num_atoms).to(self.device)
        # The momentum key encoder of the masked contrastive loss (a copy, no new draws).
        self.key_net = copy.deepcopy(self.online).requires_grad_(False) if self.mcr else None
        self.pruner = MagnitudePruner(self.online) if cfg.prune_sparsity > 0 else None
        self.replay = ReplayBuffer(
            cfg.replay_capacity,
            image_shape=obs_spec.image_shape,
            audio_shape=obs_spec.audio_shape if self.use_audio else None,
            prioritized=cfg.prioritized,
            new_priority=cfg.new_priority,
            stratified=cfg.priority_sampling == "stratified",
            heldout_fraction=cfg.heldout_fraction,
            heldout_seed=seed,
        )
        self.env_steps = 0  # transitions observed
        self.grad_steps = 0  # gradient steps since the start
        self.cycle_steps = 0  # gradient steps since the last reset (schedules restart)
        self.train_steps = 0  # env steps at which learning was allowed (for the ratio)
        self.resets = 0
        self.last: dict[str, float] = {}
        self.prefetched: collections.deque[dict[str, Any]] = collections.deque()

    # -- construction ------------------------------------------------------------------
    @staticmethod
    def _generator(seq: np.random.SeedSequence) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        return g

    def _new_network(self) -> ValueNetwork:
        cfg = self.cfg
        with torch.device("meta"):
            net = build_network(cfg, self.obs_spec)
        net = net.to_empty(device=self.device)
        for buf_name, buf in net.named_buffers():  # BatchNorm statistics
            buf.zero_()
            if buf_name.endswith("running_var"):
                buf.fill_(1.0)
        initialize(
            net,
            self.gen,
            scheme=cfg.init,
            noisy_init=cfg.noisy_init,
            noisy_bias_sigma=cfg.noisy_bias_sigma,
        )
        return net

    def _new_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for p in self.online.parameters():
            (decay if p.ndim > 1 or cfg.decay_biases else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(
            groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps
        )

    # -- inputs ------------------------------------------------------------------------
    def _image(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device).float().div_(255.0)

    def _audio(self, x: np.ndarray | None) -> torch.Tensor | None:
        if not self.use_audio or x is None:
            return None
        return normalize_audio(torch.as_tensor(x, device=self.device), self.cfg.audio_normalize)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.augmentation:
            return x
        return intensity(
            random_shift(x, self.cfg.shift_pad, self.gen), self.cfg.intensity_scale, self.gen
        )

    def _q(self, logits: torch.Tensor) -> torch.Tensor:
        if self.loss_kind in ("c51", "hl_gauss"):
            return (logits.softmax(-1) * self.support).sum(-1)
        return logits.squeeze(-1)

    # -- protocol: act -----------------------------------------------------------------
    def act(
        self, obs: dict[str, np.ndarray], *, eval_mode: bool, epsilon: float | None = None
    ) -> np.ndarray:
        """Epsilon-greedy actions: ``epsilon`` when given (in eval mode it must be: the
        protocol's eval_epsilon), else the training schedule."""
        image = obs["image"]
        batch = image.shape[0]
        rng, gen = (self.eval_rng, self.eval_gen) if eval_mode else (self.act_rng, self.act_gen)
        if epsilon is None and eval_mode:
            raise ValueError("evaluation acting needs the protocol's eval_epsilon: pass epsilon")
        eps = epsilon_at(self.cfg, self.env_steps) if epsilon is None else epsilon
        net = self.target if self.cfg.act_with_target else self.online
        with torch.no_grad():
            latent = net.encode(self._image(image), self._audio(obs.get("audio")))
            use_noise = self.cfg.noisy and (not eval_mode or self.cfg.noise_in_eval)
            noise = self._noise(net, batch, gen) if use_noise else None
            greedy = self._q(net.logits(latent, noise)).argmax(-1).cpu().numpy()
        explore = rng.random(batch) <= eps if eps > 0 else np.zeros(batch, bool)
        random_actions = rng.integers(0, self.obs_spec.num_actions, size=batch)
        return np.where(explore, random_actions, greedy).astype(np.int64)

    # -- protocol: observe -------------------------------------------------------------
    def observe(self, transition: Transition) -> None:
        cfg = self.cfg
        audio = transition.obs.get("audio")
        self.replay.add(
            transition.obs["image"][-1],
            int(transition.action),
            float(transition.reward),
            terminal=bool(transition.terminal),
            episode_end=bool(transition.episode_end),
            audio=None if audio is None or not self.use_audio else audio[-1],
            older=transition.obs["image"][:-1],
        )
        self.env_steps += 1
        # Replay must also hold one full n-step window and SPR subsequence (only matters
        # when learning_starts is tiny, as in tests).
        ready = len(self.replay) > max(cfg.n_step_start, cfg.n_step, cfg.spr_steps) + 1
        ready = ready and len(self.replay) > self._exclude_newest() + 1
        if cfg.heldout_fraction > 0:  # and enough steps outside the held-out episodes
            trainable = len(self.replay) - int(self.replay.heldout.sum())
            ready = ready and trainable > self._exclude_newest() + self._lookahead() + 1
        if self.env_steps > cfg.learning_starts and cfg.replay_ratio > 0 and ready:
            self.train_steps += 1
            due = int(math.floor(self.train_steps * cfg.replay_ratio + 1e-9))
            done = int(math.floor((self.train_steps - 1) * cfg.replay_ratio + 1e-9))
            self._train(due - done)
            if cfg.target_period_unit == "env_steps" and self.env_steps % cfg.target_period == 0:
                ema_(self.target, self.online, cfg.target_tau)
        if is_reset_step(cfg, self.env_steps):
            self._reset()
        if self.pruner is not None and is_prune_step(
            self.env_steps, start=cfg.prune_start, end=cfg.prune_end, every=cfg.prune_every
        ):
            target = cfg.prune_sparsity
            sparsity = sparsity_at(
                self.env_steps, target=target, start=cfg.prune_start, end=cfg.prune_end
            )
            self.pruner.update(sparsity)
            self.pruner.apply()

    # -- gradient steps ----------------------------------------------------------------
    def _train(self, steps: int) -> None:
        """``steps`` gradient steps, in groups of batches_to_group sampled together (the
        reference caps the group at the updates of an env step)."""
        group = max(1, min(self.cfg.batches_to_group, steps))
        for start in range(0, steps, group):
            self._update_group(min(group, steps - start))

    def _group_size(self) -> int:
        """The size of a prefetched group: batches_to_group, capped at the gradient steps of
        one env step (as BBFAgent.set_replay_settings caps it)."""
        return max(1, min(self.cfg.batches_to_group, int(self.cfg.replay_ratio)))

    def _draw(self, size: int) -> Batch:
        """One stratified draw of ``size`` batches, with the n and gamma of now."""
        cfg = self.cfg
        n = n_step_at(cfg, self.cycle_steps)
        gamma = gamma_at(cfg, self.cycle_steps)
        return self.replay.sample(
            cfg.batch_size * size,
            self.sample_rng,
            n=n,
            gamma=gamma,
            subseq=self._subseq(),
            bootstrap=cfg.nstep_bootstrap,
            spr_mask=cfg.spr_mask,
            exclude_newest=self._exclude_newest(),
        )

    def _next_group(self, size: int) -> tuple[Batch, int, float]:
        """The group to train on, with its n and gamma: drawn now, or the oldest of the
        prefetched draws (the first use draws replay_prefetch of them)."""
        cfg = self.cfg
        if not cfg.replay_prefetch or size != self._group_size():
            return (
                self._draw(size),
                n_step_at(cfg, self.cycle_steps),
                gamma_at(cfg, self.cycle_steps),
            )
        if not self.prefetched:
            self.prefetched.extend(self._prefetch(size) for _ in range(cfg.replay_prefetch))
        drawn = self.prefetched.popleft()
        group = self.replay.sample(
            len(drawn["index"]),
            None,
            n=drawn["n"],
            gamma=drawn["gamma"],
            subseq=self._subseq(),
            bootstrap=cfg.nstep_bootstrap,
            spr_mask=cfg.spr_mask,
            indices=drawn["index"],
            priorities=drawn["priorities"],
        )
        return group, drawn["n"], drawn["gamma"]

    def _prefetch(self, size: int) -> dict[str, Any]:
        """A draw kept for later: its steps, n, gamma and priorities (the stored steps do
        not change, so the batch is gathered when it is used)."""
        b = self._draw(size)
        cfg = self.cfg
        n, gamma = n_step_at(cfg, self.cycle_steps), gamma_at(cfg, self.cycle_steps)
        return {"index": b.index, "n": n, "gamma": gamma, "priorities": b.priorities}

    def _subseq(self) -> int:
        """Steps per sampled subsequence: s_t and SPR's future steps, or the masked
        contrastive loss's sequence, whichever is longer."""
        cfg = self.cfg
        return max(cfg.spr_steps + 1 if self.spr else 1, cfg.mcr_seq_len if self.mcr else 1)

    def _exclude_newest(self) -> int:
        """How many of the newest steps are never sampled (``replay_newest``)."""
        cfg = self.cfg
        horizon = max(cfg.n_step_start, cfg.n_step)
        subseq = self._subseq()
        return {
            "needed": 0,
            "horizon": horizon,
            "horizon_subsequence": horizon + subseq,
            "rlpyt": horizon + subseq + 1,
        }[cfg.replay_newest]

    def _update_group(self, size: int) -> None:
        """One stratified draw of ``size`` batches, then a gradient step on each; the
        importance weights are normalized over the draw, as the reference does."""
        cfg, bsz = self.cfg, self.cfg.batch_size
        group, n, gamma = self._next_group(size)
        weights = self._importance_weights(group)
        means = []
        for j in range(size):
            b = group.rows(j * bsz, (j + 1) * bsz)
            dqn_loss = self._update(b, weights[j * bsz : (j + 1) * bsz], n=n, gamma=gamma)
            if cfg.priority_writeback == "per_sample":
                self._update_priorities(b.slots, dqn_loss)
            means.append(dqn_loss.mean())
        if cfg.replay_prefetch and size == self._group_size():
            self.prefetched.append(self._prefetch(size))  # drawn before the write-back
        if cfg.priority_writeback == "reference":
            # set_priority(indices, priorities) zips the group's indices with one mean
            # per batch: only the first `size` sampled items get a new priority.
            self._update_priorities(group.slots[:size], torch.stack(means))

    def _update(self, b: Batch, weights: torch.Tensor, *, n: int, gamma: float) -> torch.Tensor:
        """One gradient step on batch ``b``; returns what the priorities are made of, per
        sample (detached): the DQN loss, or SPR's KL divergence."""
        cfg = self.cfg
        x = self._inputs(b)
        with torch.no_grad():
            target, spr_targets = self._targets(x)
        latent, dqn_loss, log_probs = self._dqn_loss(x, target)
        spr_loss = self._spr_loss(x, latent, spr_targets)
        aux = cfg.spr_weight * spr_loss
        mcr_loss = self._mcr_loss(x, latent) if self.mcr else None
        if mcr_loss is not None:
            aux = aux + cfg.mcr_weight * mcr_loss
        loss = ((dqn_loss + aux) * weights).mean()
        self._apply_gradient(loss)
        if self.key_net is not None:
            ema_(self.key_net, self.online, 1.0 - cfg.mcr_momentum)
        signal = dqn_loss
        if cfg.priority_signal == "kl" and log_probs is not None:
            signal = kl_priority(target, log_probs)

        self.grad_steps += 1
        self.cycle_steps += 1
        if cfg.target_period_unit == "gradient_steps" and self.grad_steps % cfg.target_period == 0:
            ema_(self.target, self.online, cfg.target_tau)
        self.last = {
            "loss": float(loss.detach()),
            "dqn_loss": float(dqn_loss.detach().mean()),
            "spr_loss": float(spr_loss.detach().mean()),
            "n_step": float(n),
            "gamma": float(gamma),
        }
        if mcr_loss is not None:
            self.last["mcr_loss"] = float(mcr_loss.detach().mean())
        return signal.detach()

    def _inputs(self, b: Batch) -> _Inputs:
        """The batch as tensors on the device. Augmentation draws for the states first, then
        for the bootstrap states."""
        bsz, subseq = b.states.shape[:2]
        states = self._augment(self._image(b.states.reshape(bsz * subseq, *b.states.shape[2:])))
        return _Inputs(
            rows=torch.arange(bsz, device=self.device),
            states=states.view(bsz, subseq, *states.shape[1:]),
            audio=self._audio(b.audio),
            next_states=self._augment(self._image(b.next_states)),
            next_audio=self._audio(b.next_audio),
            actions=torch.as_tensor(b.actions, device=self.device),
            returns=torch.as_tensor(b.returns, device=self.device),
            discounts=torch.as_tensor(b.discounts, device=self.device),
            same_trajectory=b.same_trajectory,
        )

    def _targets(self, x: _Inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The bootstrap target (a C51 distribution (B, K) or scalars (B,)) and SPR's target
        latents (B, spr_steps, hidden), None without SPR. Run under ``no_grad``."""
        cfg, bsz = self.cfg, len(x.rows)
        t_latent = self.target.encode(*self._target_encoder_inputs(x))
        t_noise = self._noise(self.target, bsz, self.gen)
        t_logits = self.target.logits(t_latent[:bsz], t_noise)
        chosen = t_logits[x.rows, self._next_actions(x, t_logits, t_noise)]
        if self.loss_kind == "c51":
            target_support = x.returns[:, None] + x.discounts[:, None] * self.support[None, :]
            target = project_distribution(self.support, chosen.softmax(-1), target_support)
        elif self.loss_kind == "hl_gauss":  # the scalar TD target, as a Gaussian histogram
            scalar = x.returns + x.discounts * self._q(chosen)
            width = (cfg.v_max - cfg.v_min) / cfg.num_atoms
            target = hl_gauss_targets(scalar, self.edges, cfg.hl_gauss_sigma * width)
        else:
            target = x.returns + x.discounts * chosen.squeeze(-1)
        if not self.spr:
            return target, None
        spr_targets = F.normalize(self.target.project(t_latent[bsz:]), dim=-1)
        return target, spr_targets.view(bsz, cfg.spr_steps, -1)

    def _target_encoder_inputs(self, x: _Inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One target encoder pass for the bootstrap states and the SPR future states
        (every sample is independent: no BatchNorm in encoders)."""
        if not self.spr:
            return x.next_states, x.next_audio
        future = len(x.rows) * self.cfg.spr_steps
        steps = slice(1, 1 + self.cfg.spr_steps)  # the sequence may be longer (mcr_seq_len)
        images = torch.cat([x.next_states, x.states[:, steps].reshape(future, *x.states.shape[2:])])
        audio = x.next_audio
        if x.audio is not None and x.next_audio is not None:
            future_audio = x.audio[:, steps].reshape(future, *x.audio.shape[2:])
            audio = torch.cat([x.next_audio, future_audio])
        return images, audio

    def _next_actions(
        self, x: _Inputs, t_logits: torch.Tensor, t_noise: Noise | None
    ) -> torch.Tensor:
        """Bootstrap actions: double DQN picks with the online network (the target network
        evaluates); plain DQN picks with the target network. With one noise draw per batch
        the online network uses the target's draw (Dopamine passes both the same key)."""
        if not self.cfg.double_dqn:
            return self._q(t_logits).argmax(-1)
        shared = self.cfg.noise_draw == "per_batch"
        noise = t_noise if shared else self._noise(self.online, len(x.rows), self.gen)
        o_logits = self.online.logits(self.online.encode(x.next_states, x.next_audio), noise)
        return self._q(o_logits).argmax(-1)

    def _noise(self, net: ValueNetwork, batch: int, gen: torch.Generator) -> Noise | None:
        """Noise for ``batch`` samples: a draw each, or one for all (``noise_draw``)."""
        rows = 1 if self.cfg.noise_draw == "per_batch" else batch
        return net.sample_noise(rows, gen, self.device, keys=self.cfg.noise_keys)

    def _dqn_loss(
        self, x: _Inputs, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The online latent of s_t, the per-sample loss (B,): cross-entropy to the C51
        target, or Huber/MSE to the scalar one, and the chosen log-probabilities (C51)."""
        latent = self.online.encode(x.states[:, 0], None if x.audio is None else x.audio[:, 0])
        noise = self._noise(self.online, len(x.rows), self.gen)
        chosen_logits = self.online.logits(latent, noise)[x.rows, x.actions[:, 0]]
        if self.loss_kind in ("c51", "hl_gauss"):  # cross-entropy to the target histogram
            log_probs = chosen_logits.log_softmax(-1)
            return latent, -(target * log_probs).sum(-1), log_probs
        q = chosen_logits.squeeze(-1)
        if self.loss_kind == "mse":  # Dopamine's mse_loss: (target - q)^2, no 1/2
            return latent, (target - q) ** 2, None
        return latent, F.huber_loss(q, target, reduction="none"), None

    def _spr_loss(
        self, x: _Inputs, latent: torch.Tensor, spr_targets: torch.Tensor | None
    ) -> torch.Tensor:
        """SPR's per-sample loss (B,): squared distance between the normalized predictions
        of the rolled-out latents and the targets, over the steps of the same trajectory,
        averaged over the steps (zeros without SPR)."""
        if spr_targets is None:
            return torch.zeros(len(x.rows), device=self.device)
        rolled = self.online.rollout(latent, x.actions[:, : self.cfg.spr_steps])
        preds = F.normalize(torch.stack([self.online.predict(p) for p in rolled], dim=1), dim=-1)
        steps = x.same_trajectory[:, 1 : 1 + self.cfg.spr_steps]
        mask = torch.as_tensor(steps, device=self.device)
        return (((preds - spr_targets) ** 2).sum(-1) * mask).mean(1)

    def _mcr_loss(self, x: _Inputs, latent: torch.Tensor) -> torch.Tensor:
        """The masked contrastive loss (B,) over s_t .. s_{t+L-1} (agents/contrastive.py):
        queries from the online encoder, projection and transformer; keys from the
        momentum key network's encoder, projection and embedding of the same frames."""
        cfg, bsz, length = self.cfg, len(x.rows), self.cfg.mcr_seq_len
        assert self.key_net is not None and self.online.sequence_model is not None

        def steps(t: torch.Tensor | None, first: int) -> torch.Tensor | None:
            return None if t is None else t[:, first:length].flatten(0, 1)

        rest = self.online.encode(x.states[:, 1:length].flatten(0, 1), steps(x.audio, 1))
        latents = torch.cat([latent[:, None], rest.view(bsz, length - 1, *latent.shape[1:])], 1)
        features = self.online.project(latents.flatten(0, 1)).view(bsz, length, -1)
        with torch.no_grad():
            key_model = self.key_net.sequence_model
            assert key_model is not None
            frames = self.key_net.encode(x.states[:, :length].flatten(0, 1), steps(x.audio, 0))
            keys = key_model.embed(self.key_net.project(frames))
        valid = torch.as_tensor(x.same_trajectory[:, :length], device=self.device) > 0
        draws = torch.rand(bsz, length, generator=self.gen).to(self.device)
        masked = (draws < cfg.mcr_mask_prob) & valid
        queries = self.online.sequence_model(features, masked, ~valid)
        return masked_contrastive_loss(
            queries, keys.view(bsz, length, -1), masked, valid, temperature=cfg.mcr_temperature
        )

    def _importance_weights(self, b: Batch) -> torch.Tensor:
        """PER's (priority + 1e-10)^-beta over the batch maximum (ones when uniform)."""
        if not self.cfg.prioritized:
            return torch.ones(len(b.priorities), device=self.device)
        w = np.power(b.priorities + 1e-10, -importance_at(self.cfg, self.env_steps))
        return torch.as_tensor(w / w.max(), dtype=torch.float32, device=self.device)

    def _apply_gradient(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip_norm > 0:
            for params in self._clip_groups():
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip_norm)
        self.optimizer.step()
        if self.pruner is not None:  # pruned weights stay zero
            self.pruner.apply()

    def _clip_groups(self) -> list[list[torch.nn.Parameter]]:
        """The parameter sets clipped separately (``grad_clip_groups``): all together, or
        SPR's stem_parameters() (encoder, projection, head: models.py:395-396) and its
        dynamics model (algos.py:139-145), leaving the predictor unclipped."""
        if self.cfg.grad_clip_groups == "all":
            return [list(self.online.parameters())]
        stem = ("encoder", "audio_encoder", "projection", "head")
        named = list(self.online.named_parameters())
        return [
            [p for n, p in named if group_of(n) in stem],
            [p for n, p in named if group_of(n) == "transition_model"],
        ]

    def _update_priorities(self, slots: np.ndarray, loss: torch.Tensor) -> None:
        """New priorities (loss + 1e-10)^alpha of replay ``slots``."""
        if not self.cfg.prioritized:
            return
        loss_np = loss.detach().cpu().numpy().astype(np.float64)
        self.replay.update_priorities(slots, np.power(loss_np + 1e-10, self.cfg.priority_exponent))

    # -- resets ------------------------------------------------------------------------
    def _reset(self) -> None:
        cfg = self.cfg
        self._shrink_perturb(self.online)
        if self.pruner is not None:  # a reset keeps the pruned connections pruned
            self.pruner.apply()
        if cfg.reset_target:
            self._shrink_perturb(self.target)
        if cfg.reset_optimizer == "all":
            # The reference rebuilds the whole optax state (its copy of the kept keys
            # never reaches the nested Adam moments), Adam's step counts included.
            self.optimizer.state.clear()
        else:
            reset = set(shrink_groups(cfg)) | set(full_groups(cfg))
            for name, p in self.online.named_parameters():
                if group_of(name) in reset:
                    self.optimizer.state.pop(p, None)
        self.cycle_steps = 0
        self.resets += 1

    def _shrink_perturb(self, net: ValueNetwork) -> None:
        """Shrink and perturb ``net`` towards a new network (a fresh draw for each call)."""
        cfg = self.cfg
        shrink_perturb_(
            net,
            self._new_network(),
            shrink=cfg.reset_shrink,
            perturb=cfg.reset_perturb,
            shrink_groups=shrink_groups(cfg),
            full_groups=full_groups(cfg),
        )

    # -- protocol: metrics and state ---------------------------------------------------
    def metrics(self) -> dict[str, float]:
        return {
            **self.last,
            "epsilon": float(epsilon_at(self.cfg, self.env_steps)),
            "env_steps": float(self.env_steps),
            "grad_steps": float(self.grad_steps),
            "resets": float(self.resets),
            "replay_size": float(len(self.replay)),
            **({} if self.pruner is None else {"prune_sparsity": self.pruner.sparsity()}),
            **self._diagnostics(),
        }

    # -- diagnostics (agents/diagnostics.py) -------------------------------------------
    # Computed when metrics are logged, on replay samples drawn from their own stream (the
    # seed and the env step), with augmentation and noise from a generator of that stream:
    # nothing here moves the training randomness or any state, so logging more or less
    # often never changes a run.
    def _diagnostics(self) -> dict[str, float]:
        if self.cfg.diagnostic_batch == 0 or len(self.replay) == 0:
            return {}
        rng = np.random.default_rng(sequence(self.seed, _DIAGNOSTICS_STREAM, self.env_steps))
        out = {**diagnostics.norms(self.online), **diagnostics.dense_sparsity(self.online)}
        with self._side_stream(rng):
            out.update(self._split_losses(rng, heldout=False))
            if self.cfg.heldout_fraction > 0:
                out.update(self._split_losses(rng, heldout=True))
            out.update(self._activation_diagnostics(rng))
            out.update(self._value_estimates(rng))
        return out

    @contextlib.contextmanager
    def _side_stream(self, rng: np.random.Generator) -> Iterator[None]:
        """Within the block ``self.gen`` (augmentation, noise) is a generator of ``rng``'s
        and no gradient is taken; the networks' buffers (BatchNorm statistics) are restored
        after it."""
        saved_gen = self.gen
        buffers = [(b, b.clone()) for net in (self.online, self.target) for b in net.buffers()]
        self.gen = torch.Generator()
        self.gen.manual_seed(int(rng.integers(2**62)))
        try:
            with torch.no_grad():
                yield
        finally:
            self.gen = saved_gen
            for b, value in buffers:
                b.copy_(value)

    def _lookahead(self) -> int:
        """Steps after t that a training sample reads (n-step window or SPR subsequence)."""
        cfg = self.cfg
        n = max(cfg.n_step_start, cfg.n_step)
        return lookahead(n, cfg.spr_steps + 1 if self.spr else 1, cfg.nstep_bootstrap)

    def _diagnostic_batch(self, rng: np.random.Generator, *, heldout: bool) -> Batch | None:
        """diagnostic_batch samples (rounded up to whole chunks) drawn uniformly from the
        held-out episodes or the training split, with the n and gamma of now."""
        cfg = self.cfg
        chunk = self._diagnostic_chunk()
        size = -(-cfg.diagnostic_batch // chunk) * chunk
        idx = self.replay.split_indices(
            size,
            rng,
            lookahead=self._lookahead(),
            n=max(cfg.n_step_start, cfg.n_step),
            heldout=heldout,
            exclude_newest=self._exclude_newest(),
        )
        if idx.size == 0:
            return None
        return self.replay.sample(
            size,
            None,
            n=n_step_at(cfg, self.cycle_steps),
            gamma=gamma_at(cfg, self.cycle_steps),
            subseq=cfg.spr_steps + 1 if self.spr else 1,
            bootstrap=cfg.nstep_bootstrap,
            spr_mask=cfg.spr_mask,
            indices=idx,
        )

    def _split_losses(self, rng: np.random.Generator, *, heldout: bool) -> dict[str, float]:
        """The training losses (augmentation, noise and targets as in a gradient step, no
        importance weights) on a uniform sample of the held-out episodes (``heldout_``) or
        of the training split (``train_split_``): their gap is the overfitting signal."""
        group = self._diagnostic_batch(rng, heldout=heldout)
        if group is None:
            return {}
        chunk, dqn, spr = self._diagnostic_chunk(), [], []
        for j in range(len(group.index) // chunk):
            x = self._inputs(group.rows(j * chunk, (j + 1) * chunk))
            target, spr_targets = self._targets(x)
            latent, dqn_loss, _ = self._dqn_loss(x, target)
            dqn.append(dqn_loss)
            spr.append(self._spr_loss(x, latent, spr_targets))
        dqn_mean, spr_mean = float(torch.cat(dqn).mean()), float(torch.cat(spr).mean())
        prefix = "heldout_" if heldout else "train_split_"
        return {
            f"{prefix}loss": dqn_mean + self.cfg.spr_weight * spr_mean,
            f"{prefix}dqn_loss": dqn_mean,
            f"{prefix}spr_loss": spr_mean,
        }

    def _diagnostic_chunk(self) -> int:
        """Samples per forward pass of the diagnostics: a bound on their memory."""
        return min(self.cfg.diagnostic_batch, _DIAGNOSTIC_CHUNK)

    def _activation_diagnostics(self, rng: np.random.Generator) -> dict[str, float]:
        """Dormant neurons per layer and the effective rank (srank) of the penultimate
        features (``srank``, Kumar et al.'s) and of the encoder's latent (``srank/latent``),
        on replay states of the training split as stored (not augmented), without noise."""
        group = self._diagnostic_batch(rng, heldout=False)
        if group is None:
            return {}
        size = self.cfg.diagnostic_batch
        image, audio = self._image(group.states[:size, 0]), None
        if group.audio is not None:
            audio = self._audio(group.audio[:size, 0])
        with diagnostics.recorded_activations(self.online) as acts:
            latent = self.online.encode(image, audio)
            self.online.logits(latent)
        out = diagnostics.dormant_fractions(acts)
        # The rectified projection (any structure: dense, per-stream, soft-MoE), unnoised.
        features = F.relu(self.online.project(latent))
        out["srank"] = float(diagnostics.srank(features))
        out["srank/latent"] = float(diagnostics.srank(latent.flatten(1)))
        return out

    def _value_estimates(self, rng: np.random.Generator) -> dict[str, float]:
        """Over- or under-estimation: the online network's mean Q(s_t, a_t) (no noise)
        against the mean discounted return that followed (clipped rewards, the gamma of
        now), over states of episodes that ended in replay (``q_bias`` = their difference)."""
        gamma = gamma_at(self.cfg, self.cycle_steps)
        steps, returns = diagnostics.realized_returns(self.replay, gamma)
        if steps.size == 0:
            return {}
        pick = rng.choice(steps.size, size=min(steps.size, self.cfg.diagnostic_batch))
        b = self.replay.sample(len(pick), None, n=1, gamma=gamma, indices=steps[pick])
        audio = None if b.audio is None else self._audio(b.audio[:, 0])
        logits = self.online.logits(self.online.encode(self._image(b.states[:, 0]), audio))
        actions = torch.as_tensor(b.actions[:, 0], device=self.device)
        q = self._q(logits)[torch.arange(len(pick), device=self.device), actions]
        q_mean, return_mean = float(q.mean()), float(returns[pick].mean())
        return {"q_mean": q_mean, "return_mean": return_mean, "q_bias": q_mean - return_mean}

    def state_dict(self) -> dict[str, Any]:
        """Copies on the CPU (a checkpoint must not change as training goes on, nor hold
        GPU memory). The replay copies its own filled part."""
        state = _cpu_copy(
            {
                "config": to_dict(self.cfg),
                "online": self.online.state_dict(),
                "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": {
                    "sample": self.sample_rng.bit_generator.state,
                    "act": self.act_rng.bit_generator.state,
                    "eval": self.eval_rng.bit_generator.state,
                    "gen": self.gen.get_state(),
                    "act_gen": self.act_gen.get_state(),
                    "eval_gen": self.eval_gen.get_state(),
                },
                "counters": {
                    "env_steps": self.env_steps,
                    "grad_steps": self.grad_steps,
                    "cycle_steps": self.cycle_steps,
                    "train_steps": self.train_steps,
                    "resets": self.resets,
                    "seed": self.seed,  # the diagnostics' stream
                },
                "last": dict(self.last),
                "prefetched": list(self.prefetched),
            }
        )
        state["replay"] = self.replay.state_dict()
        if self.key_net is not None:
            state["key_net"] = _cpu_copy(self.key_net.state_dict())
        if self.pruner is not None:
            state["pruning"] = self.pruner.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != to_dict(self.cfg):
            raise ValueError("agent state was saved with a different config")
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        rng = state["rng"]
        self.sample_rng.bit_generator.state = rng["sample"]
        self.act_rng.bit_generator.state = rng["act"]
        self.eval_rng.bit_generator.state = rng["eval"]
        self.gen.set_state(rng["gen"])
        self.act_gen.set_state(rng["act_gen"])
        self.eval_gen.set_state(rng["eval_gen"])
        for name, value in state["counters"].items():
            setattr(self, name, int(value))
        self.last = dict(state["last"])
        self.prefetched = collections.deque(dict(d) for d in state["prefetched"])
        if self.key_net is not None:
            self.key_net.load_state_dict(state["key_net"])
        if self.pruner is not None:
            self.pruner.load_state_dict(state["pruning"])


# The path below the agent's seed that diagnostics draw from (agents/heldout.py uses 7).
_DIAGNOSTICS_STREAM = 8
_DIAGNOSTIC_CHUNK = 64  # BBF: 64 x 7 stacks through Impala x4 at once, under 1 GB


def _cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor detached and copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        out: Any = type(obj)((k, _cpu_copy(v)) for k, v in obj.items())
        # Module state dicts carry layer versions in an attribute set on the OrderedDict.
        if hasattr(obj, "_metadata"):
            out._metadata = copy.deepcopy(obj._metadata)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def build_network(cfg: ValueConfig, obs_spec: ObsSpec) -> ValueNetwork:
    """The network of ``cfg`` for ``obs_spec`` (uninitialized: build under a meta device
    to count parameters without memory)."""
    audio_shape = obs_spec.audio_shape if cfg.audio_channels > 0 else None
    return ValueNetwork(
        num_actions=obs_spec.num_actions,
        image_shape=tuple(obs_spec.image_shape),
        audio_shape=None if audio_shape is None else tuple(audio_shape),
        encoder=cfg.encoder,
        width_scale=cfg.width_scale,
        padding=cfg.padding,
        hidden_dim=cfg.hidden_dim,
        renorm=cfg.renormalize,
        dueling=cfg.dueling,
        num_atoms=cfg.num_atoms if value_loss_of(cfg) in ("c51", "hl_gauss") else 1,
        noisy=cfg.noisy,
        sigma0=cfg.noisy_sigma0,
        spr=cfg.spr_weight > 0,
        transition_batchnorm=cfg.transition_batchnorm,
        audio_channels=0 if audio_shape is None else cfg.audio_channels,
        head_structure=cfg.head_structure,
        head_grad_scale=cfg.head_grad_scale,
        transition_norm_order=cfg.transition_norm_order,
        impala_blocks=cfg.impala_blocks,
        moe=None
        if cfg.moe_experts == 0
        else MoESpec(cfg.moe_tokens, cfg.moe_experts, cfg.moe_expert_dim, cfg.moe_single_expert),
        sequence_model=(
            (cfg.mcr_seq_len, cfg.mcr_depth, cfg.mcr_width) if cfg.mcr_weight > 0 else None
        ),
        audio=audio_options(cfg),
    )


def audio_options(cfg: ValueConfig) -> AudioOptions:
    """The network's audio options from the config's ``audio_*`` fields."""
    return AudioOptions(
        encoder=cfg.audio_encoder,
        fusion=cfg.audio_fusion,
        channels=cfg.audio_channels,
        spr=cfg.audio_spr,
        n_fft=cfg.audio_n_fft,
        hop=cfg.audio_hop,
        n_mels=cfg.audio_n_mels,
        sample_rate=cfg.audio_sample_rate,
        attention_dim=cfg.audio_attention_dim,
        attention_heads=cfg.audio_attention_heads,
    )


def parameter_counts(cfg: ValueConfig, obs_spec: ObsSpec) -> dict[str, int]:
    """Parameters per module group, counted on the meta device (no memory used)."""
    with torch.device("meta"):
        net = build_network(cfg, obs_spec)
    counts = count_parameters(net)
    counts["total"] = sum(counts.values())
    return counts


def planned_updates(cfg: ValueConfig, env_steps: int) -> int:
    """Gradient updates of a run: replay ratio times the env steps after learning starts."""
    return int(cfg.replay_ratio * max(env_steps - cfg.learning_starts, 0))


# The agent class per ``fast_path``. agents/fast.py builds on this module, so it adds its
# class here when imported (the registry imports it with the built-in agents).
AGENT_CLASSES: dict[bool, type[ValueAgent]] = {False: ValueAgent}


def factory(config: ValueConfig, *, obs_spec: ObsSpec, seed: int, device: str) -> ValueAgent:
    """The registry factory; ``device`` is used when ``config.device`` is "auto"."""
    if config.fast_path not in AGENT_CLASSES:
        raise RuntimeError("fast_path needs agents.fast imported (agents.registry loads it)")
    return AGENT_CLASSES[config.fast_path](config, obs_spec=obs_spec, seed=seed, device=device)


# ======================================================================================
# Presets: differences from BASE (= BBF at replay ratio 2, the shipped BBF.gin)
# ======================================================================================
BASE = ValueConfig()


def _preset(changes: dict[str, Any], where: str) -> ValueConfig:
    return override(BASE, changes, where=f"preset {where}")


BBF = _preset({}, "bbf")

# The paper's headline BBF: replay ratio 8. The reset interval stays 40k gradient steps,
# which is every 5k env steps at RR 8.
BBF_RR8 = _preset({"replay_ratio": 8.0}, "bbf-rr8")

SR_SPR = _preset(
    {
        "encoder": "nature",  # SR-SPR: Nature CNN 32-64-64 (instead of Impala x4)
        "width_scale": 1.0,
        "hidden_dim": 512,  # (instead of 2048)
        "n_step": 10,  # n 10, gamma 0.99 fixed (instead of annealed 10->3, 0.97->0.997)
        "n_step_start": 10,
        "gamma": 0.99,
        "gamma_start": 0.99,
        "anneal_steps": 0,
        "replay_ratio": 8.0,  # the paper's RR 8 (it scales to 16)
        "weight_decay": 0.0,  # Adam (instead of AdamW 0.1)
        "reset_shrink": 0.8,  # shrink 0.8 / perturb 0.2 (instead of 0.5 / 0.5)
        "reset_perturb": 0.2,
        "batches_to_group": 8,  # SR_SPR.gin: the 8 batches of an env step drawn together
        # SR-SPR's paper used noisy nets; the reference config (SR_SPR.gin) turns them off
        # as slower and worse, which this preset follows.
    },
    "sr-spr",
)

SPR = _preset(
    {
        "encoder": "nature",  # SPR: Nature CNN (instead of Impala x4)
        "width_scale": 1.0,
        "padding": "valid",  # SPR's PyTorch convs have no padding (7x7 latent)
        "hidden_dim": 256,  # the paper's 256 per stream (BBF's SPR.gin uses 512)
        "head_structure": "streams",  # a 256 hidden layer per stream; SPR's projection is
        # their concatenation (512) and its predictor 512 -> 512 (models.py:607-629, 656-687)
        "head_grad_scale": 2**-0.5,  # the dueling head's scale_grad (models.py:602, 636)
        "noisy": True,  # noisy nets sigma0 0.5 (instead of none), on all four head layers
        "noisy_sigma0": 0.5,
        "noisy_bias_sigma": "fan_out",  # bias sigma0/sqrt(out) (models.py:725)
        "init": "torch_default",  # PyTorch's own init: SPR's weights_init reaches only
        "noisy_init": "fortunato",  # non-noisy MLP heads (models.py:537-538, 576-577)
        "noise_draw": "per_batch",  # one reset_noise per batch (algos.py:266-267)
        "noise_in_eval": False,  # eval_mode sets the head's sampling off: no noise
        "n_step": 10,  # n 10, gamma 0.99 fixed
        "n_step_start": 10,
        "gamma": 0.99,
        "gamma_start": 0.99,
        "anneal_steps": 0,
        "nstep_bootstrap": "fixed",  # SPR's numbers come from its own PyTorch code: s_{t+n};
        "spr_mask": "shifted",  # its SPR mask is 1 - sign(cumsum(done)): shifted by one too
        "priority_signal": "kl",  # priorities from the KL divergence, not the cross-entropy
        "priority_sampling": "independent",  # rlpyt's SumTree.sample: n uniform values
        "new_priority": "one",  # rlpyt's default_priority 1 (instead of the max so far)
        "importance_start": 0.4,  # PER beta 0.4 -> 1 (instead of 0.5 fixed), from learning
        "importance_end": 1.0,  # start to env step 100k (rlpyt dqn.py:266-271)
        "importance_anneal_from": "learning_starts",
        "target_tau": 1.0,  # online = target (instead of EMA 0.005)
        "act_with_target": False,
        "transition_batchnorm": True,  # SPR's transition model has BatchNorm, one, after
        "transition_norm_order": "conv_relu_bn",  # the first ReLU (models.py:927-934)
        "weight_decay": 0.0,  # Adam (instead of AdamW 0.1)
        "grad_clip_norm": 10.0,  # SPR clips the gradient norm at 10, in two groups, the
        "grad_clip_groups": "stem_dynamics",  # predictor unclipped (algos.py:139-145)
        "reset_interval": 0,  # no resets
        "priority_writeback": "per_sample",  # SPR writes each sample's priority
        "batches_to_group": 1,
        "replay_prefetch": 0,
        "replay_newest": "rlpyt",  # the newest 1 + 10 + 6 steps are off in rlpyt's tree
        # (sequence/prioritized.py:58, sum_tree.py:74-82)
        # replay ratio 2 as BBF: SPR.gin's replay_ratio 64 samples = 2 batches of 32
        "epsilon_decay_steps": 1,  # 1 -> 0 at once after learning starts (rlpyt's ramp
        # from itr 2000 to eps_steps 2001: epsilon_greedy.py:100-111)
    },
    "spr",
)

# DER as Dopamine's labs/atari_100k ran it for the published 100 runs: DER.gin over
# JaxFullRainbowAgent and FullRainbowNetwork as of 2021-08 (agents/README.md, "Fidelity").
DER = _preset(
    {
        "encoder": "nature",  # DER: Nature CNN (SAME padding, as Flax's default)
        "width_scale": 1.0,
        "hidden_dim": 512,  # FullRainbowNetwork's hidden layer (the paper says 256)
        "renormalize": False,  # no latent renormalization (an SPR addition)
        "noisy": True,  # noisy nets sigma0 0.1
        "noisy_sigma0": 0.1,
        "noisy_init": "fortunato",  # mu uniform(+-1/sqrt(in)) (instead of Xavier, zero bias)
        "noise_draw": "per_batch",  # one draw a batch, online and target share the target's
        "noise_keys": "by_size",  # one JAX key for every layer, input and output factors
        "noise_in_eval": False,  # eval_mode turns the noise off
        "n_step": 10,  # the paper's 20; 10 as in SPR's and BBF's reproductions (DER.gin)
        "n_step_start": 10,
        "gamma": 0.99,
        "gamma_start": 0.99,
        "anneal_steps": 0,
        "nstep_bootstrap": "fixed",  # DER ran in Dopamine's buffer, which has no off-by-one
        "priority_writeback": "per_sample",  # set_priority with each sample's loss
        "batches_to_group": 1,
        "replay_prefetch": 0,  # sampled when trained on
        "replay_newest": "horizon",  # Dopamine's buffer never samples the newest n steps
        "learning_starts": 1_600,
        "replay_ratio": 1.0,  # one update per env step
        "target_tau": 1.0,  # hard copy every 8,000 agent steps (DER.gin until 2021-11;
        "target_period": 8_000,  # the paper's 2,000 updates came later)
        "target_period_unit": "env_steps",
        "act_with_target": False,
        "spr_weight": 0.0,  # no SPR, no augmentation
        "augmentation": False,
        "weight_decay": 0.0,  # Adam lr 1e-4, eps 1.5e-4
        "reset_interval": 0,
        "epsilon_schedule": "constant",  # noisy nets swap in identity_epsilon: 0.01 always
        "epsilon_end": 0.01,
        "epsilon_decay_steps": 2_000,  # (unused: the schedule is constant)
    },
    "der",
)

DQN = _preset(
    {
        "encoder": "nature",  # Nature DQN with Dopamine's JAX defaults (not tuned for 100k)
        "width_scale": 1.0,
        "hidden_dim": 512,
        "renormalize": False,
        "dueling": False,
        "distributional": False,  # scalar Q, with Dopamine JAX DQN's default MSE loss
        "dqn_loss": "mse",
        "double_dqn": False,
        "n_step": 1,
        "n_step_start": 1,
        "gamma": 0.99,
        "gamma_start": 0.99,
        "anneal_steps": 0,
        "nstep_bootstrap": "fixed",
        "replay_capacity": 100_000,
        "prioritized": False,
        "priority_writeback": "per_sample",
        "batches_to_group": 1,
        "replay_prefetch": 0,
        "replay_newest": "horizon",  # (n = 1: the same as "needed")
        "learning_starts": 20_000,
        "replay_ratio": 0.25,  # one update every 4 env steps
        "target_tau": 1.0,  # hard copy every 8,000 agent steps, counted from step 0
        "target_period": 8_000,
        "target_period_unit": "env_steps",
        "act_with_target": False,
        "spr_weight": 0.0,
        "augmentation": False,
        "learning_rate": 6.25e-5,
        "weight_decay": 0.0,
        "reset_interval": 0,
        "epsilon_end": 0.01,  # 1 -> 0.01 over 250k env steps
        "epsilon_decay_steps": 250_000,
    },
    "dqn",
)

# SEM3 (nwrousell/SEM3): BBF at replay ratio 2 with a raw-waveform audio encoder fused as
# latent channels. Kept where SEM3 chose (agents/README.md, "SEM3"): the 1-D CNN (8, 16, 16
# filters, kernel 3, VALID, ReLU, max-pool 2) over the stacked steps as channels, a dense
# layer with ReLU to 2 channels at the image latent's size, concatenated after the image
# latent's renormalization, SPR over the audio channels too, samples divided by 255. Fixed
# where SEM3 had a bug, by the base config and the protocol rather than by fields here: the
# 11x11 latent (SAME max-pool; SEM3's VALID gave 9x9), the minimal action set, resets of the
# head and the target (and of the audio encoder, whose layer name SEM3's reset list missed),
# the same audio stack when acting and from replay, and all 4 frames' sound of a step
# (protocol audio "on", not "sem3").
SEM3 = _preset(
    {
        "audio_encoder": "waveform",  # (as BASE) SEM3's 1-D CNN on the raw samples
        "audio_fusion": "channels",  # (as BASE) concatenated as 2 latent channels
        "audio_normalize": "unit",  # x / 255 as SEM3's process_inputs (instead of (x-128)/128)
    },
    "sem3",
)

PRESETS: dict[str, ValueConfig] = {
    "dqn": DQN,
    "der": DER,
    "spr": SPR,
    "sr-spr": SR_SPR,
    "bbf": BBF,
    "bbf-rr8": BBF_RR8,
    "sem3": SEM3,
}

ENTRY = register(
    AgentEntry(
        name="value",
        config_cls=ValueConfig,
        factory=factory,
        presets=PRESETS,
        default_preset="bbf",
        description="value-based agent: DQN, DER, SPR, SR-SPR, BBF, SEM3 as presets of one config",
        parameter_counts=parameter_counts,
        planned_updates=planned_updates,
    )
)


def config_diff(a: ValueConfig, b: ValueConfig) -> dict[str, tuple[Any, Any]]:
    """Fields where two configs differ: name -> (a's value, b's value)."""
    return {
        f.name: (getattr(a, f.name), getattr(b, f.name))
        for f in dataclasses.fields(a)
        if getattr(a, f.name) != getattr(b, f.name)
    }
