"""Expansion: a pure function from a Suite to an ordered list of RunSpecs.

A run's id is derived from its resolved config (game, seed, agent, agent config, protocol,
budget), never from output paths, names or time, so the same suite always gives the same
ids and renaming a variant does not rerun it. Compared conditions share seeds, so every
comparison pairs by (game, seed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from agents.registry import get_agent
from bench.core.config import from_mapping, override, to_dict
from bench.core.errors import BenchError
from bench.env.protocol import ProtocolConfig, protocol_identity
from bench.suite.budget import RECORDING_FIELDS, Budget, Resources
from bench.suite.load import Suite, Variant, check_size


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    suite: str
    game: str
    seed: int
    variant: str
    condition: tuple[tuple[str, Any], ...]  # (axis label, value) in axis order
    agent: str
    preset: str | None
    agent_config: dict[str, Any]  # resolved, JSON-ready
    protocol: ProtocolConfig
    budget: Budget
    resources: Resources

    @property
    def condition_label(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.condition)

    @property
    def algorithm(self) -> str:
        """The label a report uses: variant, plus the condition when there is one."""
        cond = self.condition_label
        return f"{self.variant} [{cond}]" if cond else self.variant

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "suite": self.suite,
            "game": self.game,
            "seed": self.seed,
            "variant": self.variant,
            "condition": {k: v for k, v in self.condition},
            "algorithm": self.algorithm,
            "agent": self.agent,
            "preset": self.preset,
            "agent_config": self.agent_config,
            "protocol": to_dict(self.protocol),
            "budget": to_dict(self.budget),
            "resources": to_dict(self.resources),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            run_id=data["run_id"],
            suite=data["suite"],
            game=data["game"],
            seed=data["seed"],
            variant=data["variant"],
            condition=tuple(data["condition"].items()),
            agent=data["agent"],
            preset=data["preset"],
            agent_config=data["agent_config"],
            protocol=ProtocolConfig(**_tuples(data["protocol"])),
            budget=Budget(**data["budget"]),
            resources=Resources(**data["resources"]),
        )


def _fmt(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def config_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a JSON-ready dict (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Fields that change what the agent observes, not how it is scored: runs that differ only in
# these are comparable, so they share a protocol id (audio off vs on is the study itself).
OBSERVATION_FIELDS = ("audio",)


def protocol_id(protocol: ProtocolConfig | dict[str, Any]) -> str:
    """A short id of the scoring protocol: runs with different ids are never pooled silently.
    The action space (discrete or continuous, and the threshold) is part of it."""
    data = protocol_identity(protocol if isinstance(protocol, dict) else to_dict(protocol))
    return config_hash({k: v for k, v in data.items() if k not in OBSERVATION_FIELDS})[:10]


def expand(suite: Suite) -> list[RunSpec]:
    """The suite's runs, ordered game, variant, condition, seed.

    The runs are counted first: a suite past ``bench.suite.load.MAX_RUNS`` is refused before
    any is made. A combination of axis values that breaks a config's domain (each value was
    checked alone when the suite loaded) is a BenchError naming the condition.
    """
    check_size(suite)
    specs: list[RunSpec] = []
    seen: dict[str, RunSpec] = {}
    conditions = list(itertools.product(*(a.values for a in suite.axes)))
    for game in suite.games:
        for variant in suite.variants:
            for values in conditions:
                agent_cfg, protocol, budget = _configs(suite, variant, values)
                agent_dict = to_dict(agent_cfg)
                for seed in suite.seeds:
                    identity = {
                        "game": game,
                        "seed": seed,
                        "agent": variant.agent,
                        "agent_config": agent_dict,
                        "protocol": protocol_identity(to_dict(protocol)),
                        "budget": _identity_budget(budget),
                    }
                    run_id = f"{game}-s{seed}-{config_hash(identity)[:12]}"
                    spec = RunSpec(
                        run_id=run_id,
                        suite=suite.name,
                        game=game,
                        seed=seed,
                        variant=variant.name,
                        condition=tuple(
                            (a.label, v) for a, v in zip(suite.axes, values, strict=True)
                        ),
                        agent=variant.agent,
                        preset=variant.preset,
                        agent_config=agent_dict,
                        protocol=protocol,
                        budget=budget,
                        resources=suite.resources,
                    )
                    if run_id in seen:
                        other = seen[run_id]
                        raise BenchError(
                            f"{suite.source}: {other.algorithm!r} and {spec.algorithm!r} resolve "
                            f"to the same config for {game} seed {seed}; make them differ"
                        )
                    seen[run_id] = spec
                    specs.append(spec)
    return specs


def _configs(
    suite: Suite, variant: Variant, values: tuple[Any, ...]
) -> tuple[Any, ProtocolConfig, Budget]:
    """A variant's agent config, its protocol (the suite's with the variant's own fields)
    and the budget under one condition."""
    agent_cfg, protocol, budget = variant.config, variant.protocol, suite.budget
    label = ",".join(f"{a.label}={_fmt(v)}" for a, v in zip(suite.axes, values, strict=True))
    for axis, value in zip(suite.axes, values, strict=True):
        where = f"{suite.source}: condition {label}: {axis.section}"
        if axis.section == "agent":
            agent_cfg = override(agent_cfg, {axis.field: value}, where=where)
        elif axis.section == "protocol":
            protocol = override(protocol, {axis.field: value}, where=where)
        else:
            budget = override(budget, {axis.field: value}, where=where)
    return agent_cfg, protocol, budget


def _identity_budget(budget: Budget) -> dict[str, Any]:
    """The budget fields that can change a run's results (what its id is made of)."""
    return {k: v for k, v in to_dict(budget).items() if k not in RECORDING_FIELDS}


def plan_summary(specs: list[RunSpec]) -> dict[str, Any]:
    """Counts and cost estimates for ``bench plan``."""
    games = sorted({s.game for s in specs})
    seeds = sorted({s.seed for s in specs})
    variants = list(dict.fromkeys(s.variant for s in specs))
    conditions = list(dict.fromkeys(s.condition_label for s in specs))
    env_steps = sum(s.budget.env_steps for s in specs)
    updates = sum(estimated_updates(s) for s in specs)
    eval_episodes = sum(
        s.budget.final_eval_episodes
        + (s.budget.env_steps - 1) // s.budget.eval_every * s.budget.eval_episodes
        if s.budget.eval_every
        else s.budget.final_eval_episodes
        for s in specs
    )
    return {
        "runs": len(specs),
        "games": len(games),
        "seeds": len(seeds),
        "variants": variants,
        "conditions": [c for c in conditions if c] or [""],
        "env_steps": env_steps,
        "gradient_updates": updates,
        "eval_episodes": eval_episodes,
    }


def estimated_updates(spec: RunSpec) -> int:
    """Gradient updates of a run, as its agent plans them (0 for an agent that does not say)."""
    entry = get_agent(spec.agent)
    config: Any = from_mapping(
        entry.config_cls, spec.agent_config, where=f"{spec.run_id}.agent_config"
    )
    return entry.updates(config, spec.budget.env_steps)
