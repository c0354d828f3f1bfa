"""Gradual magnitude pruning of the dense layers (Zhu & Gupta 2017), as "In value-based
deep RL, a pruned network is a good network" (Obando-Ceron et al. 2024) applies it.

Sparsity follows the cubic schedule s_t = s_f * (1 - (1 - (t - t0) / (t1 - t0))^3) from
t0 to t1 (the paper: 20% to 80% of training), updated every ``every`` steps: each dense
layer keeps its largest-magnitude weights (per layer, as Zhu & Gupta). The mask is applied
again after each optimizer step and after each reset, so pruned weights stay zero; a noisy
layer's sigma is masked with its mean weight. Masks are part of the agent's state.

How this differs from the paper: only the dense layers (projection, SPR predictor, head;
with a soft-MoE projection its final dense layer, not the experts) are pruned, the encoder
is not; the steps are env steps of the run (100k: 20k to 80k). The target network follows
the pruned online network by its EMA: its pruned weights decay towards zero, unmasked.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.networks import NoisyLinear, group_of

PRUNED_GROUPS = ("projection", "predictor", "head")


def sparsity_at(step: int, *, target: float, start: int, end: int) -> float:
    """The cubic schedule: 0 before ``start``, ``target`` from ``end`` on."""
    if step < start:
        return 0.0
    if step >= end or end <= start:
        return target
    return target * (1.0 - (1.0 - (step - start) / (end - start)) ** 3)


def is_prune_step(step: int, *, start: int, end: int, every: int) -> bool:
    """Masks are recomputed at start, start + every, ..., and at end."""
    return start <= step <= end and ((step - start) % every == 0 or step == end)


def prunable_weights(net: nn.Module) -> dict[str, list[torch.Tensor]]:
    """Dense kernels of the pruned groups by module name: [weight] or, for a noisy layer,
    [weight, weight_sigma] (one mask for both)."""
    out: dict[str, list[torch.Tensor]] = {}
    for name, module in net.named_modules():
        if group_of(name) not in PRUNED_GROUPS:
            continue
        if isinstance(module, nn.Linear):
            out[name] = [module.weight]
        elif isinstance(module, NoisyLinear):
            out[name] = [module.weight, module.weight_sigma]
    return out


class MagnitudePruner:
    """Masks (bool, shaped as each kernel) of the dense layers of one network; its kernels
    are found once (they are updated in place, never replaced)."""

    def __init__(self, net: nn.Module):
        self.weights = prunable_weights(net)
        self.masks = {
            name: torch.ones_like(ws[0], dtype=torch.bool) for name, ws in self.weights.items()
        }

    @torch.no_grad()
    def update(self, sparsity: float) -> None:
        """Each layer keeps its round((1 - sparsity) * size) largest magnitudes (ties go
        to the earlier index: a stable sort, so the masks are a function of the weights)."""
        for name, ws in self.weights.items():
            magnitude = (ws[0] * self.masks[name]).abs().flatten()
            drop = int(round(sparsity * magnitude.numel()))
            mask = torch.ones_like(magnitude, dtype=torch.bool)
            mask[torch.argsort(magnitude, stable=True)[:drop]] = False
            self.masks[name] = mask.view_as(ws[0])

    @torch.no_grad()
    def apply(self) -> None:
        for name, ws in self.weights.items():
            for w in ws:
                w.mul_(self.masks[name])

    def sparsity(self) -> float:
        """The fraction of pruned weights over all pruned layers."""
        total = sum(m.numel() for m in self.masks.values())
        kept = sum(int(m.sum()) for m in self.masks.values())
        return 1.0 - kept / max(total, 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: m.detach().to("cpu", copy=True) for name, m in self.masks.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.masks):
            raise ValueError("pruning masks of another network")
        device = next(iter(self.masks.values())).device if self.masks else None
        self.masks = {name: m.to(device) for name, m in state.items()}
