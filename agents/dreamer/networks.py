"""Dreamer's networks: the image encoder and decoder, the RSSM with categorical latents,
and the MLP heads (reward, continuation, actor, critic).

Shapes: N rows; images (N, 1, S, S) in [0, 1] with S = ``image_size``; E the encoder's
output (8 depth x 4 x 4); D = ``deter``; Z = ``stoch * classes``; F = D + Z the features.
As DreamerV3: LayerNorm and SiLU after every hidden layer, 4x4 stride-2 convolutions down
to 4x4, the decoder mirroring them; the image's mean is 0.5 (inputs shifted by -0.5).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from agents.audio import WaveformEncoder
from agents.dreamer.config import DreamerConfig
from agents.dreamer.functional import sample_onehot, unimix_logits

STAGES = 4  # stride-2 stages: 64 -> 4 (DreamerV3's minres 4)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W) maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Encoder(nn.Module):
    def __init__(self, cfg: DreamerConfig) -> None:
        super().__init__()
        chans = [1] + [cfg.cnn_depth * 2**i for i in range(STAGES)]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans, chans[1:], strict=False)
        )
        self.norms = nn.ModuleList(ChannelNorm(c) for c in chans[1:])
        self.out_dim = chans[-1] * (cfg.image_size // 2**STAGES) ** 2

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) in [0, 1] -> (N, E)."""
        x = image - 0.5
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.silu(norm(conv(x)))
        return x.flatten(1)


class Decoder(nn.Module):
    def __init__(self, cfg: DreamerConfig, features: int) -> None:
        super().__init__()
        chans = [cfg.cnn_depth * 2**i for i in reversed(range(STAGES))] + [1]
        self.low = cfg.image_size // 2**STAGES
        self.inp = nn.Linear(features, chans[0] * self.low**2)
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in zip(chans, chans[1:], strict=False)
        )
        self.norms = nn.ModuleList(ChannelNorm(c) for c in chans[1:-1])
        self.first = chans[0]

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N, 1, S, S), the predicted image (mean of a unit Gaussian per pixel)."""
        x = self.inp(feat).view(-1, self.first, self.low, self.low)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.norms):
                x = F.silu(self.norms[i](x))
        return x + 0.5


def mlp(inputs: int, units: int, layers: int, outputs: int) -> nn.Sequential:
    """``layers`` hidden layers of Linear, LayerNorm, SiLU, then a Linear output."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(inputs if i == 0 else units, units), nn.LayerNorm(units), nn.SiLU()]
    modules.append(nn.Linear(units if layers else inputs, outputs))
    return nn.Sequential(*modules)


def _dense(inputs: int, units: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, units), nn.LayerNorm(units), nn.SiLU())


class State(NamedTuple):
    """An RSSM state of N rows."""

    deter: torch.Tensor  # (N, D)
    stoch: torch.Tensor  # (N, Z) one-hot samples, flattened
    logits: torch.Tensor  # (N, S, C) log-probabilities (with unimix) the sample came from

    @property
    def feat(self) -> torch.Tensor:
        return torch.cat([self.deter, self.stoch], -1)


class RSSM(nn.Module):
    """DreamerV3's recurrent state-space model: a GRU (LayerNorm on its gates, update gate
    biased by -1) carries the deterministic state; the prior reads it, the posterior reads
    it and the image embedding; both are S categoricals of C classes with unimix."""

    def __init__(self, cfg: DreamerConfig, num_actions: int, embed: int) -> None:
        super().__init__()
        self.cfg = cfg
        z = cfg.stoch * cfg.classes
        self.img_in = _dense(z + num_actions, cfg.units)
        self.gru = nn.Linear(cfg.units + cfg.deter, 3 * cfg.deter, bias=False)
        self.gru_norm = nn.LayerNorm(3 * cfg.deter)
        self.img_out = _dense(cfg.deter, cfg.units)
        self.img_stats = nn.Linear(cfg.units, z)
        self.obs_out = _dense(cfg.deter + embed, cfg.units)
        self.obs_stats = nn.Linear(cfg.units, z)
        self.initial_deter = nn.Parameter(torch.zeros(cfg.deter))  # learned (tanh of it)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.cfg.stoch, self.cfg.classes)
        return unimix_logits(x.view(shape), self.cfg.unimix)

    def initial(self, n: int) -> State:
        """The learned initial state: tanh of a parameter, and the prior's mode there."""
        deter = torch.tanh(self.initial_deter).expand(n, -1)
        logits = self._logits(self.img_stats(self.img_out(deter)))
        stoch = F.one_hot(logits.argmax(-1), self.cfg.classes).to(deter.dtype).flatten(-2)
        return State(deter, stoch, logits)

    def img_step(self, prev: State, action: torch.Tensor, gen: torch.Generator) -> State:
        """The prior of the next step from ``prev`` and the (N, A) one-hot ``action``."""
        x = self.img_in(torch.cat([prev.stoch, action], -1))
        parts = self.gru_norm(self.gru(torch.cat([x, prev.deter], -1)))
        reset, cand, update = parts.chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1)
        deter = update * cand + (1 - update) * prev.deter
        logits = self._logits(self.img_stats(self.img_out(deter)))
        return State(deter, sample_onehot(logits, gen).flatten(-2), logits)

    def obs_step(  # noqa: PLR0917 (the RSSM's own signature, as the papers write it)
        self,
        prev: State,
        action: torch.Tensor,
        embed: torch.Tensor,
        is_first: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[State, State]:
        """(posterior, prior) of a step; rows with ``is_first`` (N,) start from the initial
        state with a zero previous action."""
        keep = (1.0 - is_first.float()).unsqueeze(-1)
        init = self.initial(len(is_first))
        prev = State(
            keep * prev.deter + (1 - keep) * init.deter,
            keep * prev.stoch + (1 - keep) * init.stoch,
            prev.logits,
        )
        prior = self.img_step(prev, keep * action, gen)
        logits = self._logits(self.obs_stats(self.obs_out(torch.cat([prior.deter, embed], -1))))
        post = State(prior.deter, sample_onehot(logits, gen).flatten(-2), logits)
        return post, prior

    def observe(
        self,
        embeds: torch.Tensor,
        actions: torch.Tensor,
        is_first: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[State, State]:
        """Filter (B, T, E) embeddings with the previous actions (B, T, A) from the initial
        state: (posteriors, priors), each field (B, T, ...)."""
        state = self.initial(len(embeds))
        posts, priors = [], []
        for t in range(embeds.shape[1]):
            state, prior = self.obs_step(state, actions[:, t], embeds[:, t], is_first[:, t], gen)
            posts.append(state)
            priors.append(prior)
        return _stack(posts), _stack(priors)


def _stack(states: list[State]) -> State:
    return State(*(torch.stack(parts, 1) for parts in zip(*states, strict=True)))


class AudioEmbed(nn.Module):
    """SEM3's waveform CNN (agents/audio.py) on one step's audio frame, then a dense layer
    with ReLU to ``size`` features: (B, 1, samples) in [0, 1] -> (B, size)."""

    def __init__(self, samples: int, size: int) -> None:
        super().__init__()
        self.wave = WaveformEncoder(1, samples)
        self.dense = nn.Linear(math.prod(self.wave.token_shape), size)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return F.relu(self.dense(self.wave(a).flatten(1)))


class WorldModel(nn.Module):
    """Encoder (and audio encoder), RSSM, decoder, reward and continuation heads.
    ``audio_samples``: samples of one step's audio frame, None without audio."""

    def __init__(self, cfg: DreamerConfig, num_actions: int, audio_samples: int | None) -> None:
        super().__init__()
        self.encoder = Encoder(cfg)
        embed = self.encoder.out_dim
        self.audio: AudioEmbed | None = None
        if audio_samples and cfg.audio_embed:
            self.audio = AudioEmbed(audio_samples, cfg.audio_embed)
            embed += cfg.audio_embed
        self.rssm = RSSM(cfg, num_actions, embed)
        feat = cfg.deter + cfg.stoch * cfg.classes
        self.decoder = Decoder(cfg, feat)
        self.reward = mlp(feat, cfg.units, cfg.mlp_layers, cfg.bins if cfg.symlog_twohot else 1)
        self.cont = mlp(feat, cfg.units, cfg.mlp_layers, 1)

    def embed(self, images: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        """(B, T, S, S) images and (B, T, samples) audio, both in [0, 1] -> (B, T, E)."""
        b, t = images.shape[:2]
        out = self.encoder(images.reshape(b * t, 1, *images.shape[2:]))
        if self.audio is not None and audio is not None:
            sound = self.audio(audio.reshape(b * t, 1, audio.shape[-1])).flatten(1)
            out = torch.cat([out, sound], -1)
        return out.view(b, t, -1)


class ActorCritic(nn.Module):
    """The actor (logits over actions) and the critic; the slow critic is a copy."""

    def __init__(self, cfg: DreamerConfig, num_actions: int) -> None:
        super().__init__()
        feat = cfg.deter + cfg.stoch * cfg.classes
        self.actor = mlp(feat, cfg.units, cfg.mlp_layers, num_actions)
        self.critic = mlp(feat, cfg.units, cfg.mlp_layers, cfg.bins if cfg.symlog_twohot else 1)


@torch.no_grad()
def initialize(module: nn.Module, generator: torch.Generator, zero_out: tuple[str, ...]) -> None:
    """DreamerV3's ``winit: normal, fan: avg``: truncated normal weights with variance
    1 / fan_avg, zero biases; the output layers named in ``zero_out`` start at zero
    (``outscale: 0`` of the reward and critic heads)."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
    for name in zero_out:
        head = module.get_submodule(name)
        assert isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear)
        head[-1].weight.zero_()
        head[-1].bias.zero_()
