"""Dreamer (DreamerV3 by default, DreamerV2's differences as a preset): a world model with
categorical latents, an actor and a critic trained in its imagination. Importing this
package registers the ``dreamer`` agent.

Modules: ``config`` (the config and presets), ``functional`` (symlog, two-hot, KL
balancing, lambda-returns, return normalization), ``networks``, ``replay`` (sequences, the
held-out split), ``agent``.
"""

from __future__ import annotations

from agents.dreamer.agent import DreamerAgent
from agents.dreamer.config import PRESETS, DreamerConfig
from agents.dreamer.networks import ActorCritic, WorldModel
from agents.protocol import ObsSpec
from agents.registry import AgentEntry, register

__all__ = ["ENTRY", "DreamerAgent", "DreamerConfig", "PRESETS"]


def parameter_counts(cfg: DreamerConfig, obs_spec: ObsSpec) -> dict[str, int]:
    modules = {
        **dict(WorldModel(cfg, obs_spec.num_actions, _samples(obs_spec)).named_children()),
        **dict(ActorCritic(cfg, obs_spec.num_actions).named_children()),
    }
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
    counts["total"] = sum(counts.values())
    return counts


def _samples(spec: ObsSpec) -> int | None:
    return None if spec.audio_shape is None else int(spec.audio_shape[-1])


def planned_updates(cfg: DreamerConfig, env_steps: int) -> int:
    """One update every ``train_every`` env steps after the prefill."""
    return max(env_steps - cfg.prefill, 0) // cfg.train_every


def factory(config: DreamerConfig, *, obs_spec: ObsSpec, seed: int, device: str) -> DreamerAgent:
    return DreamerAgent(config, obs_spec=obs_spec, seed=seed, device=device)


ENTRY = register(
    AgentEntry(
        name="dreamer",
        config_cls=DreamerConfig,
        factory=factory,
        presets=PRESETS,
        default_preset="dreamerv3-100k",
        description="DreamerV3 (world model, actor-critic in imagination); dreamerv2 preset",
        parameter_counts=parameter_counts,
        planned_updates=planned_updates,
        action_kinds=("discrete",),
    )
)
