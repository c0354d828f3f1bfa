"""Tokenization of the encoder output and a soft mixture-of-experts projection.

"Mixtures of Experts Unlock Parameter Scaling for Deep RL" (Obando-Ceron et al. 2024) and
"Don't flatten, tokenize!" (Sokar et al. 2025) replace the penultimate dense layer of a
value network by a soft-MoE (Puigcerver et al.) over tokens of the encoder output: one
token per spatial position (dimension = channels, Dopamine's ``PER_PIXEL``) or one per
channel (dimension = positions, ``PER_FEATUREMAP``). Each expert is the reference's
``ExpertModel``: dense to ``expert_dim`` units, ReLU, dense back to the token size; slots
per expert = ceil(tokens / experts) (capacity factor 1). The output tokens are flattened.

How this differs from the reference (google/dopamine ``labs/moes``): the flattened tokens
go through one more dense layer to ``hidden_dim`` (the reference's
``use_extra_linear_layer`` option, off by default there), so that the head and SPR's
predictor keep their sizes whatever the tokenization; the input and phi are not
L2-normalized (the reference's default ``normalization=False``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (weight viewed as (out, in), bias or None) -> None: initializes them in place.
InitFn = Callable[[torch.Tensor, torch.Tensor | None], None]


@dataclass(frozen=True)
class MoESpec:
    """What replaces the dense projection: the tokenization and the experts."""

    tokens: str  # "per_position" | "per_channel"
    experts: int
    expert_dim: int  # hidden units of each expert
    single_expert: bool  # one expert of experts x expert_dim units instead


def token_shape(channels: int, height: int, width: int, tokens: str) -> tuple[int, int]:
    """(number of tokens, token dimension) of a (channels, height, width) latent."""
    if tokens == "per_position":
        return height * width, channels
    if tokens == "per_channel":
        return channels, height * width
    raise ValueError(f"unknown tokenization {tokens!r}: per_position or per_channel")


def tokenize(latent: torch.Tensor, tokens: str) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C) (``per_position``) or (B, C, h*w) (``per_channel``)."""
    flat = latent.flatten(2)
    return flat.transpose(1, 2) if tokens == "per_position" else flat


def soft_moe_parameters(
    num_tokens: int, token_dim: int, *, experts: int, expert_dim: int, out_dim: int
) -> int:
    """Parameters of ``SoftMoEProjection``: phi (token_dim x experts x slots), each
    expert's two dense layers with biases, and the dense layer of the flattened tokens."""
    slots = math.ceil(num_tokens / experts)
    phi = token_dim * experts * slots
    expert = token_dim * expert_dim + expert_dim + expert_dim * token_dim + token_dim
    return phi + experts * expert + num_tokens * token_dim * out_dim + out_dim


class SoftMoEProjection(nn.Module):
    """Soft-MoE over the tokens of a (C, h, w) latent, then flattened and projected to
    ``out_dim``. Input: the flattened latent (B, C*h*w), as the dense projection takes it.

    ``single_expert``: one expert with ``experts * expert_dim`` hidden units (the same
    expert parameters up to the biases of the second layer; phi keeps ``tokens`` slots):
    the control that separates the mixture from the tokenization and the size.
    """

    def __init__(
        self,
        latent_shape: tuple[int, int, int],
        *,
        tokens: str,
        experts: int,
        expert_dim: int,
        single_expert: bool,
        out_dim: int,
    ):
        super().__init__()
        self.latent_shape = latent_shape
        self.tokens = tokens
        self.num_tokens, self.token_dim = token_shape(*latent_shape, tokens)
        self.experts = 1 if single_expert else experts
        self.expert_dim = expert_dim * experts if single_expert else expert_dim
        self.slots = math.ceil(self.num_tokens / self.experts)
        n, d, h = self.experts, self.token_dim, self.expert_dim
        self.phi = nn.Parameter(torch.empty(d, n, self.slots))
        self.w1 = nn.Parameter(torch.empty(n, d, h))
        self.b1 = nn.Parameter(torch.empty(n, h))
        self.w2 = nn.Parameter(torch.empty(n, h, d))
        self.b2 = nn.Parameter(torch.empty(n, d))
        self.out = nn.Linear(self.num_tokens * d, out_dim)

    @torch.no_grad()
    def init_own_parameters(self, init: InitFn) -> None:
        """phi and the experts' layers, each as a dense (out, in) kernel; ``out`` is a
        child nn.Linear that ``initialize`` covers."""
        n, d = self.experts, self.token_dim
        init(self.phi.view(d, n * self.slots).T, None)
        for i in range(n):
            init(self.w1[i].T, self.b1[i])
            init(self.w2[i].T, self.b2[i])

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        """(B, C*h*w) -> (B, out_dim)."""
        x = tokenize(flat.view(-1, *self.latent_shape), self.tokens)  # (B, T, d)
        logits = torch.einsum("btd,dnp->btnp", x, self.phi)
        dispatch = logits.softmax(dim=1)  # over tokens: each slot mixes tokens
        combine = logits.flatten(2).softmax(-1).view_as(logits)  # over slots, per token
        slots = torch.einsum("btd,btnp->bnpd", x, dispatch)
        hidden = F.relu(torch.einsum("bnpd,ndh->bnph", slots, self.w1) + self.b1[:, None])
        expert_out = torch.einsum("bnph,nhd->bnpd", hidden, self.w2) + self.b2[:, None]
        out_tokens = torch.einsum("bnpd,btnp->btd", expert_out, combine)
        return self.out(out_tokens.flatten(1))
