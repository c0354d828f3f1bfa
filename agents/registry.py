"""The agent registry: name -> (config class, factory, presets).

Third-party agents plug in as ``module:attr`` (an ``AgentEntry``) or through the entry-point
group ``atari100k_bench.agents``. No other module looks at concrete agent classes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from agents.protocol import Agent, ObsSpec
from bench.core.errors import BenchError, unknown
from bench.core.spaces import ActionKind

ENTRY_POINT_GROUP = "atari100k_bench.agents"
BUILTIN_MODULES = (
    "agents.random_agent",
    "agents.value",
    "agents.fast",
    "agents.sac",
    "agents.dreamer",
)

Factory = Callable[..., Agent]  # factory(config, *, obs_spec: ObsSpec, seed: int, device: str)
ParameterCounts = Callable[[Any, ObsSpec], dict[str, int]]  # (config, obs spec) -> per module
PlannedUpdates = Callable[[Any, int], int]  # (config, env steps) -> gradient updates


@dataclass(frozen=True)
class AgentEntry:
    name: str
    config_cls: type
    factory: Factory
    presets: Mapping[str, Any] = field(default_factory=dict)  # preset name -> config instance
    default_preset: str | None = None
    description: str = ""
    # What the harness reports about an agent without running it (``bench agents describe``,
    # ``bench plan``); an agent without them shows no parameter counts and plans 0 updates.
    parameter_counts: ParameterCounts | None = None
    planned_updates: PlannedUpdates | None = None
    # The action spaces the agent can act in (``protocol.actions``); a suite that gives it
    # another is refused when it loads.
    action_kinds: tuple[ActionKind, ...] = ("discrete",)

    def preset(self, name: str | None, *, where: str = "") -> Any:
        """The config of preset ``name`` (the default preset, or defaults, when None)."""
        name = name or self.default_preset
        if name is None:
            return self.config_cls()
        if name not in self.presets:
            raise unknown(f"preset of agent {self.name!r}", name, self.presets, where=where)
        return self.presets[name]

    def check_action_kind(self, kind: str, *, where: str) -> None:
        """A one-line error naming ``where`` when the agent cannot act with ``kind`` actions."""
        if kind not in self.action_kinds:
            kinds = ", ".join(self.action_kinds)
            only = " and ".join(self.action_kinds)
            raise BenchError(
                f"{where}: agent {self.name!r} supports {only} actions only; valid: {kinds}"
            )

    def make(self, config: Any, *, obs_spec: ObsSpec, seed: int, device: str = "cpu") -> Agent:
        self.check_action_kind(obs_spec.action_kind, where="obs_spec.action_kind")
        return self.factory(config, obs_spec=obs_spec, seed=seed, device=device)

    def count_parameters(self, config: Any, obs_spec: ObsSpec) -> dict[str, int] | None:
        """Parameters per module (with a "total"), or None when the agent does not say."""
        return None if self.parameter_counts is None else self.parameter_counts(config, obs_spec)

    def updates(self, config: Any, env_steps: int) -> int:
        """Gradient updates a run of ``env_steps`` makes (0 when the agent does not say)."""
        return 0 if self.planned_updates is None else int(self.planned_updates(config, env_steps))


_REGISTRY: dict[str, AgentEntry] = {}


def register(entry: AgentEntry) -> AgentEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"agent {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def _load_builtin() -> None:
    # Importing the modules registers their agents.
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def registered() -> dict[str, AgentEntry]:
    """Built-in and entry-point agents by name."""
    _load_builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            obj = ep.load()
            if not isinstance(obj, AgentEntry):
                raise BenchError(f"entry point {ep.name!r} ({ep.value}) is not an AgentEntry")
            _REGISTRY[ep.name] = obj
    return dict(_REGISTRY)


def get_agent(name: str, *, where: str = "") -> AgentEntry:
    """A registered agent, or a third-party one given as ``module:attr``."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            prefix = f"{where}: " if where else ""
            raise BenchError(f"{prefix}cannot load agent {name!r}: {e}") from None
        if not isinstance(obj, AgentEntry):
            raise BenchError(f"{where}: {name!r} is not an agents.registry.AgentEntry")
        return obj
    agents = registered()
    if name not in agents:
        raise unknown("agent", name, list(agents) + ["<module:attr>"], where=where)
    return agents[name]
