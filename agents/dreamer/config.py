"""The Dreamer agent's config: every hyperparameter, with range checks, and the presets.

Defaults are DreamerV3's Atari-100k setting as the 2023 code ran it (danijar/dreamerv3 at
84ecf19, ``dreamerv3/configs.yaml``: the ``defaults`` block with the ``atari100k`` block on
top). The fidelity table in ``agents/README.md`` gives each field's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bench.core.config import check_finite, override, require

DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]{1,3})?")


@dataclass(frozen=True)
class DreamerConfig:
    """Every hyperparameter. Sizes are DreamerV3's Atari-100k model (``rssm.deter 512``,
    ``cnn_depth 32``, 2 layers of 512 units)."""

    # -- inputs --------------------------------------------------------------------------
    image_size: int = 64  # the newest frame of the stack, area-resized to this square
    # Audio (when the env gives it): SEM3's waveform encoder (agents.audio.WaveformEncoder) on
    # each step's newest audio frame, its output of this width concatenated to the image
    # embedding; an input only (not reconstructed). 0 ignores audio (DreamerV3 has none).
    audio_embed: int = 0
    # -- world model ---------------------------------------------------------------------
    cnn_depth: int = 32  # channels of the first conv; x2 per stage (4 stages: 64 -> 4)
    deter: int = 512  # GRU state
    stoch: int = 32  # categorical latents ...
    classes: int = 32  # ... of this many classes each
    units: int = 512  # hidden units of the RSSM's layers and of every MLP head
    mlp_layers: int = 2  # hidden layers of the reward, continuation, actor and critic MLPs
    unimix: float = 0.01  # uniform mixture of the latents' and the actor's categoricals
    free_nats: float = 1.0  # free bits: each KL term is clipped below at this (per step)
    dyn_scale: float = 0.5  # KL(sg(post) || prior): trains the prior
    rep_scale: float = 0.1  # KL(post || sg(prior)): trains the representation
    symlog_twohot: bool = True  # reward and critic: two-hot over symexp-spaced bins; else MSE
    # The reward head's target: the reward itself, or tanh of it (DreamerV2's clip_rewards).
    reward_transform: Literal["none", "tanh"] = "none"
    cont_scale: float = 1.0  # weight of the continuation loss (DreamerV2 Atari: 5)
    bins: int = 255
    model_lr: float = 1e-4
    model_eps: float = 1e-8
    model_clip: float = 1000.0  # global gradient-norm clip
    # Every weight times (1 - weight_decay) before each optimizer step, for the world model,
    # actor and critic alike (DreamerV2: 1e-6, not scaled by the learning rate).
    weight_decay: float = 0.0
    # -- actor and critic (trained in imagination) ---------------------------------------
    horizon: int = 15  # imagined steps from every replayed state
    gamma: float = 0.997  # 1 - 1/333 (DreamerV3's ``horizon: 333``)
    return_lambda: float = 0.95
    actor_entropy: float = 3e-4  # on normalized returns
    # Evaluation acts by sampling the actor (DreamerV3's actor_eval_sample) or by its most
    # likely action (DreamerV2's actor.mode()).
    eval_sample: bool = True
    return_norm: Literal["percentile", "none"] = "percentile"
    return_decay: float = 0.99  # EMA of the 5th and 95th percentiles
    return_low: float = 5.0
    return_high: float = 95.0
    return_limit: float = 1.0  # scale = max(1 / limit ... i.e. max(1, P95 - P5) at limit 1
    slow_critic_fraction: float = 0.02  # EMA weight of the critic in the slow critic
    slow_critic_every: int = 1  # updates between slow-critic updates
    slow_reg: float = 1.0  # weight of the slow critic's prediction as a second target
    return_critic: Literal["online", "slow"] = "online"  # the values in the lambda-returns
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    ac_eps: float = 1e-5
    ac_clip: float = 100.0
    # -- training recipe -----------------------------------------------------------------
    batch_size: int = 16
    seq_len: int = 64
    train_every: int = 1  # env steps per update (DreamerV3 100k: train ratio 1024 = 16 x 64)
    prefill: int = 1024  # random-action env steps before the first update
    replay_capacity: int = 200_000  # steps (a 100k run keeps every step)
    # Sequences drawn uniformly over every start ("steps", DreamerV3) or from a uniformly
    # chosen finished episode ("episodes", DreamerV2; agents/dreamer/replay.py), whose final
    # sequence is favoured with ``prioritize_ends``.
    replay_sampling: Literal["steps", "episodes"] = "steps"
    prioritize_ends: bool = False
    heldout_fraction: float = 0.0  # episodes stored but never trained on (agents.heldout)
    # -- placement -----------------------------------------------------------------------
    device: str = "auto"

    def __post_init__(self) -> None:
        check_finite(self)
        for name, ok, valid in _domain(self):
            require(ok, name, getattr(self, name), valid)


def _domain(c: DreamerConfig) -> list[tuple[str, bool, str]]:
    """(field, within its range, the range) for every checked field."""
    unit = "0..1"
    return [
        ("image_size", c.image_size in (32, 64, 128), "32, 64 or 128 (4 stride-2 stages)"),
        ("audio_embed", 0 <= c.audio_embed <= 4096, "0..4096"),
        ("cnn_depth", 1 <= c.cnn_depth <= 1024, "1..1024"),
        ("deter", 1 <= c.deter <= 65536, "1..65536"),
        ("stoch", 1 <= c.stoch <= 1024, "1..1024"),
        ("classes", 2 <= c.classes <= 1024, "2..1024"),
        ("units", 1 <= c.units <= 65536, "1..65536"),
        ("mlp_layers", 0 <= c.mlp_layers <= 16, "0..16"),
        ("unimix", 0 <= c.unimix < 1, "at least 0, less than 1"),
        ("free_nats", c.free_nats >= 0, "at least 0"),
        ("dyn_scale", c.dyn_scale >= 0, "at least 0"),
        ("rep_scale", c.rep_scale >= 0, "at least 0"),
        ("bins", 3 <= c.bins <= 4096, "3..4096"),
        ("model_lr", c.model_lr > 0, "more than 0"),
        ("model_eps", c.model_eps > 0, "more than 0"),
        ("model_clip", c.model_clip > 0, "more than 0"),
        ("cont_scale", c.cont_scale >= 0, "at least 0"),
        ("weight_decay", 0 <= c.weight_decay < 1, "at least 0, less than 1"),
        ("horizon", 1 <= c.horizon <= 1000, "1..1000"),
        ("gamma", 0 < c.gamma < 1, "between 0 and 1, exclusive"),
        ("return_lambda", 0 <= c.return_lambda <= 1, unit),
        ("actor_entropy", c.actor_entropy >= 0, "at least 0"),
        ("return_decay", 0 <= c.return_decay < 1, "at least 0, less than 1"),
        ("return_low", 0 <= c.return_low < c.return_high, f"0..return_high ({c.return_high})"),
        ("return_high", c.return_high <= 100, "at most 100"),
        ("return_limit", c.return_limit > 0, "more than 0"),
        ("slow_critic_fraction", 0 < c.slow_critic_fraction <= 1, "more than 0, at most 1"),
        ("slow_critic_every", c.slow_critic_every >= 1, "at least 1"),
        ("slow_reg", c.slow_reg >= 0, "at least 0"),
        ("actor_lr", c.actor_lr > 0, "more than 0"),
        ("critic_lr", c.critic_lr > 0, "more than 0"),
        ("ac_eps", c.ac_eps > 0, "more than 0"),
        ("ac_clip", c.ac_clip > 0, "more than 0"),
        ("batch_size", 1 <= c.batch_size <= 4096, "1..4096"),
        ("seq_len", 2 <= c.seq_len <= 4096, "2..4096"),
        ("train_every", 1 <= c.train_every <= 100_000, "1..100000"),
        ("prefill", c.prefill >= 0, "at least 0"),
        ("replay_capacity", c.replay_capacity >= c.seq_len, f"at least seq_len ({c.seq_len})"),
        ("heldout_fraction", 0 <= c.heldout_fraction < 1, "at least 0, less than 1"),
        (
            "prioritize_ends",
            not c.prioritize_ends or c.replay_sampling == "episodes",
            "false unless replay_sampling is episodes",
        ),
        ("device", DEVICE.fullmatch(c.device) is not None, "auto, cpu, mps, cuda, cuda:N"),
    ]


# ======================================================================================
# Presets (differences from DreamerV3's Atari-100k setting)
# ======================================================================================
DREAMERV3_100K = DreamerConfig()

# The DreamerV2 differences the update-ratio study's recipe carries, as danijar/dreamerv2 at
# 07d906e runs Atari (dreamerv2/configs.yaml: ``defaults`` with the ``atari`` block on top):
# KL balancing 0.8 at KL scale 0.1 (dyn 0.08, rep 0.02) and no free bits; MSE reward and
# critic (no symlog, no two-hot) with rewards through tanh, continuation loss x5; no return
# normalization, actor entropy 1e-3; lambda-returns and the actor's baseline from a slow
# critic copied every 100 updates, no slow-critic regularizer; discount 0.999; no unimix;
# learning rates 2e-4 (model), 4e-5 (actor), 1e-4 (critic), eps 1e-5, clip 100, weight
# decay 1e-6; greedy evaluation; sequences of 50 from whole finished episodes, favouring
# their ends; 16 env steps per update; GRU 600, 4 MLP
# layers of 400, CNN depth 48 (its RSSM's hidden layer of 600 is 400 here: one ``units``
# field serves both). agents/README.md lists what is not built.
DREAMERV2 = override(
    DREAMERV3_100K,
    {
        "free_nats": 0.0,
        "dyn_scale": 0.08,
        "rep_scale": 0.02,
        "symlog_twohot": False,
        "reward_transform": "tanh",
        "cont_scale": 5.0,
        "weight_decay": 1e-6,
        "eval_sample": False,
        "replay_sampling": "episodes",
        "prioritize_ends": True,
        "return_norm": "none",
        "actor_entropy": 1e-3,
        "return_critic": "slow",
        "slow_critic_fraction": 1.0,
        "slow_critic_every": 100,
        "slow_reg": 0.0,
        "gamma": 0.999,
        "unimix": 0.0,
        "model_lr": 2e-4,
        "model_eps": 1e-5,
        "model_clip": 100.0,
        "actor_lr": 4e-5,
        "critic_lr": 1e-4,
        "seq_len": 50,
        "train_every": 16,
        "deter": 600,
        "units": 400,
        "mlp_layers": 4,
        "cnn_depth": 48,
    },
    where="preset dreamerv2",
)

# Small enough for CPU tests and reduced-budget studies: the same algorithm.
TINY = override(
    DREAMERV3_100K,
    {
        "image_size": 32,
        "cnn_depth": 4,
        "deter": 32,
        "stoch": 4,
        "classes": 4,
        "units": 32,
        "mlp_layers": 1,
        "batch_size": 4,
        "seq_len": 8,
        "horizon": 5,
        "prefill": 16,
        "train_every": 2,
        "replay_capacity": 5_000,
        "model_lr": 1e-3,
        "actor_lr": 3e-4,
        "critic_lr": 3e-4,
    },
    where="preset tiny",
)

PRESETS: dict[str, DreamerConfig] = {
    "dreamerv3-100k": DREAMERV3_100K,
    "dreamerv2": DREAMERV2,
    "tiny": TINY,
}
