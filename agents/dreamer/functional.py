"""Dreamer's pure functions: symlog, two-hot, categorical latents, KL balancing with free
bits, lambda-returns and the return normalization. Each is tested on hand-made inputs.

Shapes: N is any batch of rows; K the bins; S x C the stochastic latents (S categoricals of
C classes); H the imagination horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

BIN_LIMIT = 20.0  # bins span symlog values -20 .. 20 (DreamerV3's DiscDist low, high)


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|): compresses large magnitudes, the identity near 0."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """The inverse of symlog: sign(x) (exp(|x|) - 1)."""
    return torch.sign(x) * torch.expm1(x.abs())


def bins(count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(K,) bin locations, evenly spaced in symlog space from -20 to 20: symexp of them is
    DreamerV3's symexp-spaced grid of raw values."""
    return torch.linspace(-BIN_LIMIT, BIN_LIMIT, count, device=device)


def twohot(y: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(..., K) weights on the two bins of ``grid`` around each ``y`` (in the grid's space),
    inversely proportional to the distances, so ``(twohot(y) * grid).sum(-1) == y`` within
    the grid; values outside it go wholly to the end bin."""
    y = y.clamp(grid[0], grid[-1])
    above = torch.searchsorted(grid, y.contiguous(), right=True).clamp(1, len(grid) - 1)
    below = above - 1
    lo, hi = grid[below], grid[above]
    w_above = ((y - lo) / (hi - lo)).clamp(0.0, 1.0)
    out = torch.zeros(*y.shape, len(grid), device=y.device, dtype=y.dtype)
    out.scatter_(-1, below.unsqueeze(-1), (1 - w_above).unsqueeze(-1))
    out.scatter_add_(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))
    return out


def twohot_loss(logits: torch.Tensor, target: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (..., K) logits against the two-hot code of symlog(target): (...)."""
    return -(twohot(symlog(target), grid) * F.log_softmax(logits, -1)).sum(-1)


def twohot_mean(logits: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The prediction of (..., K) logits: symexp of the expected bin."""
    return symexp((F.softmax(logits, -1) * grid).sum(-1))


def value_loss(out: torch.Tensor, target: torch.Tensor, grid: torch.Tensor | None) -> torch.Tensor:
    """The loss of a reward or critic head: two-hot cross-entropy with a grid; else (no
    symlog, DreamerV2) the negative log-likelihood of a unit Gaussian, 0.5 (out - y)^2."""
    if grid is None:
        return 0.5 * (out.squeeze(-1) - target) ** 2
    return twohot_loss(out, target, grid)


def value_mean(out: torch.Tensor, grid: torch.Tensor | None) -> torch.Tensor:
    return out.squeeze(-1) if grid is None else twohot_mean(out, grid)


def unimix_logits(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Log-probabilities of (1 - unimix) softmax(logits) + unimix / C over the last axis:
    every class keeps at least unimix / C, so KL terms and log-probabilities stay finite."""
    probs = F.softmax(logits, -1)
    if unimix > 0:
        probs = (1 - unimix) * probs + unimix / logits.shape[-1]
    return torch.log(probs)


def sample_onehot(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A one-hot sample of (..., C) categoricals (Gumbel-max with ``generator``) with
    straight-through gradients to the probabilities."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    index = (logits - torch.log(-torch.log(u.clamp_min(1e-20)))).argmax(-1)
    sample = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
    probs = F.softmax(logits, -1)
    return sample + probs - probs.detach()


def categorical_kl(lhs: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """KL(lhs || rhs) of (..., S, C) log-probabilities, summed over the S latents: (...)."""
    return (lhs.exp() * (lhs - rhs)).sum((-2, -1))


def kl_losses(
    post: torch.Tensor, prior: torch.Tensor, free_nats: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DreamerV3's dynamics and representation losses of (..., S, C) log-probabilities:
    dyn = max(free, KL(sg(post) || prior)) trains the prior only, rep = max(free,
    KL(post || sg(prior))) the posterior only; below ``free_nats`` neither has a gradient.
    KL balancing is the weighting of the two (dyn_scale, rep_scale)."""
    dyn = categorical_kl(post.detach(), prior).clamp_min(free_nats)
    rep = categorical_kl(post, prior.detach()).clamp_min(free_nats)
    return dyn, rep


def lambda_returns(
    rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor, lam: float
) -> torch.Tensor:
    """(H, N) lambda-returns: R_t = r_t + d_t ((1 - lam) v_{t+1} + lam R_{t+1}), R_H = v_H.

    ``rewards`` (H, N): r_t, the reward of reaching state t + 1; ``values`` (H + 1, N);
    ``discounts`` (H, N): d_t = gamma * cont_{t+1}."""
    out = []
    last = values[-1]
    for t in reversed(range(len(rewards))):
        last = rewards[t] + discounts[t] * ((1 - lam) * values[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


def trajectory_weights(cont: torch.Tensor, gamma: float) -> torch.Tensor:
    """(H + 1, N) loss weights of imagined states: the discounted probability of reaching
    them alive, cumprod(gamma * cont) / gamma (the first state's weight is its own cont)."""
    return torch.cumprod(gamma * cont, 0) / gamma


@dataclass
class ReturnNorm:
    """DreamerV3's return normalization: EMAs of the batch's 5th and 95th return
    percentiles; returns are divided by max(1 / limit, high - low), so small returns are
    not scaled up (the offset cancels in the advantages)."""

    decay: float = 0.99
    low_pct: float = 5.0
    high_pct: float = 95.0
    limit: float = 1.0
    low: float = 0.0
    high: float = 0.0

    def update(self, returns: torch.Tensor) -> None:
        flat = returns.detach().float().flatten()
        q = torch.quantile(
            flat, torch.tensor([self.low_pct, self.high_pct], device=flat.device) / 100
        )
        m = self.decay
        self.low = m * self.low + (1 - m) * float(q[0])
        self.high = m * self.high + (1 - m) * float(q[1])

    @property
    def scale(self) -> float:
        return max(1.0 / self.limit, self.high - self.low)
