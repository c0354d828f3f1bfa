"""Diagnostics of a value-based agent: what explains why an ingredient helps or an agent breaks.

Pure functions over arrays and networks, computed once per logging interval (the agent's
``metrics()``), never inside a gradient step:

- ``dormant_fractions``: the fraction of tau-dormant neurons per layer (Sokar et al. 2023,
  "The Dormant Neuron Phenomenon in Deep RL"): neuron i of a layer is tau-dormant when its
  mean absolute activation over a batch (and over positions, for a conv channel), divided
  by the layer's average of that mean, is at most tau;
- ``srank``: the effective rank of a feature matrix as Kumar et al. (2021, "Implicit
  Under-Parameterization") define it: the fewest singular values that make up a 1 - delta
  share of their sum, delta = 0.01 (not Roy & Vetterli's entropy-based effective rank);
- ``norms``: parameter and gradient norms, global and per module group;
- ``dense_sparsity``: the fraction of exactly-zero weights of the dense layers (a pruned
  weight stays zero, so this is the sparsity a pruning schedule reached, masks or not);
- ``discounted_returns`` and ``realized_returns``: the discounted return each stored step
  went on to get, for the over- or under-estimation of Q.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.networks import MODULE_GROUPS, NoisyLinear, group_of

# Sokar et al.'s threshold for value-based agents on Atari (tau = 0 counts dead units only).
DORMANT_TAU = 0.025
SRANK_DELTA = 0.01  # Kumar et al.'s delta
# The groups whose layers are neurons of the value path (the head's outputs are Q-values).
NEURON_GROUPS = ("encoder", "audio_encoder", "projection")


def dormant_scores(activation: torch.Tensor) -> torch.Tensor:
    """Each neuron's mean |activation| over the batch (and positions) divided by the layer's
    average of those means. ``activation``: (N, units) or (N, units, *positions); returns
    (units,). A layer whose every activation is 0 scores 0 everywhere."""
    per_unit = activation.detach().abs().transpose(0, 1).reshape(activation.shape[1], -1)
    means = per_unit.mean(dim=1)
    average = means.mean()
    return means / average if average > 0 else torch.zeros_like(means)


def dormant_fractions(
    activations: dict[str, torch.Tensor], tau: float = DORMANT_TAU
) -> dict[str, float]:
    """``{"dormant": share of all neurons, "dormant/<layer>": share of the layer's}`` of the
    tau-dormant neurons (score <= tau) of every layer in ``activations`` (name -> (N, units,
    ...))."""
    out: dict[str, float] = {}
    dormant = total = 0
    for name, act in activations.items():
        scores = dormant_scores(act)
        count = int((scores <= tau).sum())
        out[f"dormant/{name}"] = count / scores.numel()
        dormant += count
        total += scores.numel()
    if total:
        out["dormant"] = dormant / total
    return out


def srank(features: torch.Tensor | np.ndarray, delta: float = SRANK_DELTA) -> int:
    """Kumar et al.'s effective rank of ``features`` (N, d): the smallest k with
    sum_{i<=k} sigma_i >= (1 - delta) * sum_i sigma_i, singular values sigma descending.
    At most min(N, d); 0 for an all-zero matrix."""
    matrix = torch.as_tensor(features, dtype=torch.float64).reshape(len(features), -1)
    sigma = torch.linalg.svdvals(matrix)
    total = sigma.sum()
    if total <= 0:
        return 0
    cumulative = torch.cumsum(sigma, 0) / total
    return int((cumulative < 1.0 - delta).sum()) + 1


@contextlib.contextmanager
def recorded_activations(
    net: nn.Module, groups: tuple[str, ...] = NEURON_GROUPS
) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, the post-ReLU output of every conv and dense layer of ``groups``
    of each forward pass, by module name (the ReLU is applied here, as a forward hook sees
    the layer's output before the network's functional ReLU). In Impala's residual blocks
    the second conv's output joins the skip connection before its ReLU: there the unit is
    the conv's own rectified output, as ReDo-style counts take it."""
    acts: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in net.named_modules():
        if group_of(name) not in groups or not isinstance(
            module, nn.Conv1d | nn.Conv2d | nn.Linear | NoisyLinear
        ):
            continue

        def hook(_m: nn.Module, _i: Any, output: torch.Tensor, name: str = name) -> None:
            acts[name] = F.relu(output.detach())

        handles.append(module.register_forward_hook(hook))
    try:
        yield acts
    finally:
        for h in handles:
            h.remove()


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.stack([(t.detach().double() ** 2).sum() for t in tensors]).sum().sqrt())


def norms(net: nn.Module) -> dict[str, float]:
    """``param_norm`` and ``grad_norm`` (L2 over every parameter, and ``/<group>`` per module
    group). The gradient is the one the parameters hold: the last gradient step's, after
    clipping; no gradient norm before the first step."""
    params: dict[str, list[torch.Tensor]] = {}
    grads: dict[str, list[torch.Tensor]] = {}
    for name, p in net.named_parameters():
        params.setdefault(group_of(name), []).append(p)
        if p.grad is not None:
            grads.setdefault(group_of(name), []).append(p.grad)
    out: dict[str, float] = {}
    for key, by_group in (("param_norm", params), ("grad_norm", grads)):
        if not by_group:
            continue
        out[key] = _norm([t for ts in by_group.values() for t in ts])
        for group in MODULE_GROUPS:
            if group in by_group:
                out[f"{key}/{group}"] = _norm(by_group[group])
    return out


def dense_sparsity(net: nn.Module) -> dict[str, float]:
    """``sparsity``: the fraction of exactly-zero weights over the dense layers' weight
    matrices (noise scales and biases left out); ``sparsity/<group>`` per module group."""
    zeros: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear | NoisyLinear):
            g = group_of(name)
            zeros[g] = zeros.get(g, 0) + int((module.weight.detach() == 0).sum())
            sizes[g] = sizes.get(g, 0) + module.weight.numel()
    if not sizes:
        return {}
    out = {"sparsity": sum(zeros.values()) / sum(sizes.values())}
    out.update({f"sparsity/{g}": zeros[g] / sizes[g] for g in MODULE_GROUPS if g in sizes})
    return out


def discounted_returns(
    rewards: np.ndarray, terminals: np.ndarray, boundaries: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The discounted return G_t = r_t + gamma r_{t+1} + ... to the end of t's episode, for
    consecutive steps (T,), and whether it is complete: the episode ended in a terminal
    within the steps (a truncated or unfinished one would only give a partial sum).
    Returns (returns (T,) float64, complete (T,) bool)."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    complete = np.zeros(len(rewards), dtype=bool)
    g, done = 0.0, False
    for t in range(len(rewards) - 1, -1, -1):
        if boundaries[t]:
            g, done = 0.0, bool(terminals[t])
        g = float(rewards[t]) + gamma * g
        returns[t], complete[t] = g, done
    return returns, complete


def realized_returns(replay: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """The stored steps of a ``ReplayBuffer`` whose episodes ended in a terminal in replay,
    with their stack intact, and their discounted (learning) returns: (steps (M,) absolute,
    returns (M,)). A life loss that is a terminal for learning ends an episode here too."""
    oldest = replay.count - len(replay)
    steps = np.arange(oldest, replay.count)
    slots = steps % replay.capacity
    returns, complete = discounted_returns(
        replay.rewards[slots], replay.terminals[slots], replay.boundaries[slots], gamma
    )
    keep = complete & replay.stack_intact(steps)
    return steps[keep], returns[keep]
