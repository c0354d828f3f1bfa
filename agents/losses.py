"""Losses of the ablation axes, as pure functions: HL-Gauss classification of returns and
the InfoNCE loss of the masked contrastive objective.

HL-Gauss ("Stop Regressing", Farebrother et al. 2024): the scalar TD target y becomes the
histogram of a Gaussian N(y, sigma^2) over fixed bins, and the value head is trained by
cross-entropy against it; Q is the mean of the predicted histogram (its bin centers
weighted by the softmax). sigma is given relative to the bin width (the paper's 0.75).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bin_edges(v_min: float, v_max: float, bins: int) -> torch.Tensor:
    """(bins + 1,) evenly spaced edges of the histogram over [v_min, v_max]."""
    return torch.linspace(v_min, v_max, bins + 1)


def bin_centers(v_min: float, v_max: float, bins: int) -> torch.Tensor:
    """(bins,) the midpoints of ``bin_edges``: the values the histogram's mean is made of."""
    edges = bin_edges(v_min, v_max, bins)
    return (edges[:-1] + edges[1:]) / 2


def hl_gauss_targets(returns: torch.Tensor, edges: torch.Tensor, sigma: float) -> torch.Tensor:
    """The HL-Gauss target histogram (B, K) of scalar targets ``returns`` (B,) over bins
    with ``edges`` (K + 1,): the probability mass of N(y, sigma^2) in each bin, renormalized
    over [edges[0], edges[-1]] (the mass outside the support is dropped, so each row sums
    to 1; a target outside the support is clipped to it first)."""
    y = returns.clamp(float(edges[0]), float(edges[-1]))[:, None]
    cdf = torch.erf((edges[None, :].to(y) - y) / (math.sqrt(2.0) * sigma))
    mass = cdf[:, 1:] - cdf[:, :-1]
    return mass / (cdf[:, -1:] - cdf[:, :1]).clamp(min=1e-12)


def hl_gauss_loss(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (B,) of predicted histogram ``logits`` (B, K) against target
    histograms (B, K)."""
    return -(target_probs * logits.log_softmax(-1)).sum(-1)


def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    *,
    temperature: float,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE (M,) of ``queries`` (M, D) against ``keys`` (N, D): the cross-entropy of
    each query's cosine similarities to all keys (divided by ``temperature``), with its
    positive key at index ``positives`` (M,) (by default query i's positive is key i);
    the other keys are its negatives. Minimal (for a given temperature) when each query
    points exactly at its own key and away from the others."""
    q = F.normalize(queries, dim=-1)
    k = F.normalize(keys, dim=-1)
    logits = q @ k.T / temperature
    if positives is None:
        positives = torch.arange(len(q), device=q.device)
    return F.cross_entropy(logits, positives, reduction="none")
