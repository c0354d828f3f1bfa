"""The masked contrastive auxiliary objective (M-CURL, Zhu et al. 2020/2022).

A sequence of consecutive frames is encoded by the online encoder and projection; some
positions are replaced by a learned mask token; a small transformer over the sequence
reconstructs their features from the context, and each reconstruction (the query) is
trained by InfoNCE to match the momentum key encoder's feature of its own frame against
the keys of every other frame in the batch. At acting time the transformer is unused.

How this differs from the paper: similarities are cosine over a temperature (as MoCo's
InfoNCE), not CURL's bilinear product; the key encoder is a momentum copy of the whole
online network (encoder, projection, and this module's input embedding) fed the same
augmented frames as the queries (the mask is the only corruption); frames past a
terminal within the sequence (SPR's replay mask) are left out as queries, keys and
context. The defaults are this harness's, sized for Atari 100k, not the paper's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from agents.losses import info_nce

HEADS = 4


class MaskedSequenceModel(nn.Module):
    """(B, L, feature_dim) features -> (B, L, width) queries: embed to ``width``, mask,
    add learned positions, ``depth`` pre-norm transformer layers (4 heads, feed-forward
    4 x width, no dropout: a run is a function of its seed), then a dense output layer."""

    def __init__(self, feature_dim: int, *, seq_len: int, depth: int, width: int):
        super().__init__()
        self.embed = nn.Linear(feature_dim, width)
        self.mask_token = nn.Parameter(torch.empty(width))
        self.position = nn.Parameter(torch.empty(seq_len, width))
        layer = nn.TransformerEncoderLayer(
            width, HEADS, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out = nn.Linear(width, width)

    @torch.no_grad()
    def init_own_parameters(self, init: Callable[[torch.Tensor, torch.Tensor | None], None]):
        """The mask token starts at zero; the positions as a dense (L, width) kernel."""
        self.mask_token.zero_()
        init(self.position, None)

    def forward(
        self, features: torch.Tensor, masked: torch.Tensor, padding: torch.Tensor
    ) -> torch.Tensor:
        """``masked`` (B, L) bool: positions replaced by the mask token; ``padding``
        (B, L) bool: positions no other position attends to."""
        x = self.embed(features)
        x = torch.where(masked[..., None], self.mask_token.expand_as(x), x)
        x = x + self.position[None, : x.shape[1]]
        return self.out(self.transformer(x, src_key_padding_mask=padding))


def masked_contrastive_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    masked: torch.Tensor,
    valid: torch.Tensor,
    *,
    temperature: float,
) -> torch.Tensor:
    """Per-sample loss (B,): InfoNCE of each masked, valid query (B, L, D) against the keys
    (B, L, D) of every valid position of the batch, its own position's key the positive;
    averaged over the sample's masked positions (0 where none is masked)."""
    bsz, length = masked.shape
    key_index = torch.full((bsz, length), -1, dtype=torch.long, device=keys.device)
    key_index[valid] = torch.arange(int(valid.sum()), device=keys.device)
    chosen = masked & valid
    if not bool(chosen.any()):
        return queries.sum() * 0.0 + torch.zeros(bsz, device=queries.device)
    losses = info_nce(
        queries[chosen], keys[valid], temperature=temperature, positives=key_index[chosen]
    )
    per_sample = torch.zeros(bsz, device=queries.device).index_add(
        0, chosen.nonzero()[:, 0], losses
    )
    return per_sample / chosen.sum(1).clamp(min=1)
