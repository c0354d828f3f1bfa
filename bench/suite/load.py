"""Suites: YAML at the boundary, validated into a typed, frozen ``Suite``.

Every error is one line naming the file, the key path and the valid choices; nothing is
launched or written before a suite validates and expands completely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.registry import get_agent
from bench.core.config import coerce_field, field_names, from_mapping, override
from bench.core.errors import BenchError, unknown
from bench.env.games import resolve_games
from bench.env.protocol import ProtocolConfig
from bench.suite.budget import Budget, Resources

SUITE_KEYS = (
    "name",
    "description",
    "games",
    "seeds",
    "variants",
    "axes",
    "budget",
    "protocol",
    "resources",
)
VARIANT_KEYS = ("name", "agent", "preset", "overrides", "protocol")
AXIS_KEYS = ("audio", "replay_ratio", "grid")
GRID_SECTIONS = ("agent", "protocol", "budget")


@dataclass(frozen=True)
class Variant:
    name: str
    agent: str  # registry name or module:attr
    preset: str | None
    config: Any  # the agent's resolved config dataclass (preset + overrides)
    # The suite's protocol with the variant's own fields over it (e.g. the action space of
    # an agent that acts only in one); axes apply over this.
    protocol: ProtocolConfig = ProtocolConfig()
    protocol_fields: tuple[str, ...] = ()  # the fields the variant sets itself


@dataclass(frozen=True)
class Axis:
    """One compared dimension: ``label`` names it in conditions, ``section.field`` sets it."""

    label: str
    section: str  # "agent" | "protocol" | "budget"
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    games: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    axes: tuple[Axis, ...]
    budget: Budget
    protocol: ProtocolConfig
    resources: Resources
    source: str  # the file it came from (for error messages and provenance)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: suite file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BenchError(f"{path}: not valid YAML{at}: {problem}") from None
    return parse_suite(data, source=str(path), default_name=path.stem)


def parse_suite(data: Any, *, source: str, default_name: str = "suite") -> Suite:
    """Validate a suite given as plain data (what YAML loading gives)."""
    if not isinstance(data, Mapping):
        raise BenchError(f"{source}: a suite must be a mapping with keys {', '.join(SUITE_KEYS)}")
    for key in data:
        if key not in SUITE_KEYS:
            raise unknown("key", str(key), SUITE_KEYS, where=source)
    for key in ("games", "seeds", "variants"):
        if key not in data:
            raise BenchError(f"{source}: missing required key {key!r}")

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise BenchError(f"{source}: name: expected a non-empty string, got {name!r}")
    games = tuple(resolve_games(_games_value(data["games"], source), where=f"{source}: games"))
    seeds = _seeds(data["seeds"], source)
    protocol = from_mapping(ProtocolConfig, data.get("protocol"), where=f"{source}: protocol")
    budget = from_mapping(Budget, data.get("budget"), where=f"{source}: budget")
    resources = from_mapping(Resources, data.get("resources"), where=f"{source}: resources")
    _check_budget(budget, source)
    variants = _variants(data["variants"], source, protocol)
    axes = _axes(data.get("axes") or {}, source, variants)
    _check_action_kinds(variants, axes, source)
    return Suite(
        name=name,
        description=str(data.get("description", "")),
        games=games,
        seeds=seeds,
        variants=variants,
        axes=axes,
        budget=budget,
        protocol=protocol,
        resources=resources,
        source=source,
    )


def _games_value(value: Any, source: str) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return value
    raise BenchError(f"{source}: games: expected a subset name or a non-empty list of games")


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    where = f"{source}: seeds"
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise BenchError(f"{where}: expected a count or a list of integers, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise BenchError(f"{where}: the count must be at least 1, got {value}")
        return tuple(range(value))
    if not value:
        raise BenchError(f"{where}: the list is empty")
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise BenchError(f"{where}[{i}]: expected a non-negative integer, got {s!r}")
    if len(set(value)) != len(value):
        raise BenchError(f"{where}: duplicate seeds in {value}")
    return tuple(value)


def _check_budget(budget: Budget, source: str) -> None:
    for name in ("env_steps", "final_eval_episodes", "checkpoint_every"):
        if getattr(budget, name) < 1:
            raise BenchError(f"{source}: budget.{name}: must be at least 1")
    if budget.eval_every < 0 or (budget.eval_every and budget.eval_episodes < 1):
        raise BenchError(f"{source}: budget.eval_every/eval_episodes: must be positive")
    if budget.log_every < 0:
        raise BenchError(f"{source}: budget.log_every: must be 0 (no metrics) or positive")


def _variants(value: Any, source: str, protocol: ProtocolConfig) -> tuple[Variant, ...]:
    if not isinstance(value, list) or not value:
        raise BenchError(f"{source}: variants: expected a non-empty list of variants")
    variants: list[Variant] = []
    for i, item in enumerate(value):
        where = f"{source}: variants[{i}]"
        if isinstance(item, str):
            item = {"name": item, "agent": item}
        if not isinstance(item, Mapping):
            raise BenchError(f"{where}: expected a mapping with keys {', '.join(VARIANT_KEYS)}")
        for key in item:
            if key not in VARIANT_KEYS:
                raise unknown("key", str(key), VARIANT_KEYS, where=where)
        if "agent" not in item:
            raise BenchError(f"{where}: missing required key 'agent'")
        agent = item["agent"]
        if not isinstance(agent, str):
            raise BenchError(f"{where}.agent: expected a string, got {agent!r}")
        entry = get_agent(agent, where=f"{where}.agent")
        preset = item.get("preset")
        if preset is not None and not isinstance(preset, str):
            raise BenchError(f"{where}.preset: expected a string, got {preset!r}")
        config = entry.preset(preset, where=f"{where}.preset")
        overrides = item.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise BenchError(f"{where}.overrides: expected a mapping of config field -> value")
        config = override(config, overrides, where=f"{where}.overrides")
        name = item.get("name", preset or agent)
        if not isinstance(name, str) or not name:
            raise BenchError(f"{where}.name: expected a non-empty string, got {name!r}")
        if any(v.name == name for v in variants):
            raise BenchError(f"{where}.name: duplicate variant name {name!r}")
        own = _mapping(item.get("protocol"), f"{where}.protocol")
        variants.append(
            Variant(
                name=name,
                agent=agent,
                preset=preset,
                config=config,
                protocol=override(protocol, own, where=f"{where}.protocol"),
                protocol_fields=tuple(str(k) for k in own),
            )
        )
    return tuple(variants)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BenchError(f"{where}: expected a mapping of protocol field -> value")
    return value


def _check_action_kinds(variants: tuple[Variant, ...], axes: tuple[Axis, ...], source: str) -> None:
    """Every variant's agent can act in every action space the suite gives it (its protocol's,
    or each value of an axis over ``protocol.actions``)."""
    axis = next((a for a in axes if (a.section, a.field) == ("protocol", "actions")), None)
    for i, v in enumerate(variants):
        entry = get_agent(v.agent)
        if axis is not None:
            kinds, where = axis.values, f"{source}: axes.grid.{axis.label}"
        elif "actions" in v.protocol_fields:
            kinds, where = (v.protocol.actions,), f"{source}: variants[{i}].protocol.actions"
        else:
            kinds, where = (v.protocol.actions,), f"{source}: protocol.actions"
        for kind in kinds:
            entry.check_action_kind(kind, where=where)


def _axes(value: Any, source: str, variants: tuple[Variant, ...]) -> tuple[Axis, ...]:
    where = f"{source}: axes"
    if not isinstance(value, Mapping):
        raise BenchError(f"{where}: expected a mapping with keys {', '.join(AXIS_KEYS)}")
    axes: list[Axis] = []
    for key, values in value.items():
        if key not in AXIS_KEYS:
            raise unknown("axis", str(key), AXIS_KEYS, where=where)
        if key == "grid":
            axes.extend(_grid(values, f"{where}.grid", variants))
            continue
        values = _axis_values(values, f"{where}.{key}")
        if key == "audio":
            # YAML 1.1 reads bare off/on as booleans.
            values = tuple({False: "off", True: "on"}.get(v, v) for v in values)
            axes.append(_checked_axis("audio", "protocol", "audio", values, f"{where}.audio"))
        else:
            axes.append(
                _checked_axis(key, "agent", "replay_ratio", values, f"{where}.{key}", variants)
            )
    labels = [a.label for a in axes]
    targets = [(a.section, a.field) for a in axes]
    if len(set(targets)) != len(targets):
        raise BenchError(f"{where}: two axes set the same field: {labels}")
    return tuple(axes)


def _grid(value: Any, where: str, variants: tuple[Variant, ...]) -> list[Axis]:
    if not isinstance(value, Mapping) or not value:
        raise BenchError(f"{where}: expected a non-empty mapping of config field -> values")
    axes = []
    for key, values in value.items():
        key = str(key)
        section, _, field = key.rpartition(".")
        section = section or "agent"  # a bare field name is an agent config field
        if section not in GRID_SECTIONS:
            raise unknown("grid section", section, GRID_SECTIONS, where=f"{where}.{key}")
        values = _axis_values(values, f"{where}.{key}")
        axes.append(_checked_axis(key, section, field, values, f"{where}.{key}", variants))
    return axes


def _axis_values(values: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(values, list):
        raise BenchError(f"{where}: expected a list of values, got {values!r}")
    if not values:
        raise BenchError(f"{where}: empty list of values")
    if len({repr(v) for v in values}) != len(values):
        raise BenchError(f"{where}: duplicate values in {values}")
    return tuple(values)


def _checked_axis(
    label: str,
    section: str,
    field: str,
    values: tuple[Any, ...],
    where: str,
    variants: tuple[Variant, ...] = (),
) -> Axis:
    """An axis whose every value type-checks against every config it applies to."""
    if section == "agent":
        for v in variants:
            names = field_names(type(v.config))
            if field not in names:
                raise unknown(f"config field of variant {v.name!r}", field, names, where=where)
            values = tuple(coerce_field(type(v.config), field, x, where=where) for x in values)
    else:
        cls = ProtocolConfig if section == "protocol" else Budget
        if field not in field_names(cls):
            raise unknown(f"{section} field", field, field_names(cls), where=where)
        values = tuple(coerce_field(cls, field, x, where=where) for x in values)
    return Axis(label=label, section=section, field=field, values=values)
