"""Suites: YAML at the boundary, validated into a typed, frozen ``Suite``.

Every error is one line naming the file, the key path and the valid choices; nothing is
launched or written before a suite validates and expands completely. The file itself is
read by ``bench.suite.reading`` (size, encoding, aliases, nesting, duplicate keys); names
are safe folder names (``bench.core.names``); every config field is checked against its
range by its config class, axis values included; games and seeds appear once each; and a
suite expands to at most ``MAX_RUNS`` runs, counted before anything is expanded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.registry import get_agent
from bench.core.config import coerce_field, field_names, from_mapping, override
from bench.core.errors import BenchError, FieldError, shown, unknown
from bench.core.names import NAME_RULE, check_agent_ref, check_name, is_name
from bench.env.games import get_game, resolve_games, subsets
from bench.env.protocol import ProtocolConfig
from bench.suite.budget import Budget, Resources
from bench.suite.reading import load_yaml, read_text

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
    "study",
)
STUDY_KEYS = ("base", "sweep")
VARIANT_KEYS = ("name", "agent", "preset", "overrides", "protocol")
AXIS_KEYS = ("audio", "replay_ratio", "grid")
GRID_SECTIONS = ("agent", "protocol", "budget")
MAX_RUNS = 100_000  # games x seeds x variants x conditions, counted before expanding
MAX_SEED = 2**32 - 1  # seeds feed numpy's SeedSequence and the emulator's 32-bit seed


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
class Study:
    """What a study's report shows besides the aggregates: every other variant against the
    ``base`` variant as paired differences (an ablation study), and whether the best value
    of the ``sweep`` axis (an axis label, or "variant") holds across games and regimes."""

    base: str = ""
    sweep: str = ""


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
    study: Study = Study()


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: suite file not found")
    data = load_yaml(read_text(path), source=str(path))
    return parse_suite(data, source=str(path), default_name=path.stem)


def parse_suite(data: Any, *, source: str, default_name: str = "suite") -> Suite:
    """Validate a suite given as plain data (what YAML loading gives)."""
    keys = ", ".join(SUITE_KEYS)
    if data is None:
        raise BenchError(f"{source}: the file holds no suite (it is empty); valid: keys {keys}")
    if not isinstance(data, Mapping):
        raise BenchError(
            f"{source}: a suite must be a mapping with keys {keys}; got {type(data).__name__}"
        )
    for key in data:
        if key not in SUITE_KEYS:
            raise unknown("key", str(key), SUITE_KEYS, where=source)
    for key in ("games", "seeds", "variants"):
        if key not in data:
            raise BenchError(f"{source}: missing required key {key!r}")

    name = _suite_name(data, source, default_name)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise BenchError(f"{source}: description: expected text, got {shown(description)}")
    games = _games(data["games"], source)
    seeds = _seeds(data["seeds"], source)
    protocol = from_mapping(ProtocolConfig, data.get("protocol"), where=f"{source}: protocol")
    budget = from_mapping(Budget, data.get("budget"), where=f"{source}: budget")
    resources = from_mapping(Resources, data.get("resources"), where=f"{source}: resources")
    variants = _variants(data["variants"], source, protocol)
    bases = _Bases(variants, protocol, budget)
    axes = _axes(data.get("axes") or {}, source, bases)
    _check_action_kinds(variants, axes, source)
    study = parse_study(data.get("study"), f"{source}: study", variants, axes)
    suite = Suite(
        name=name,
        description=description or "",
        games=games,
        seeds=seeds,
        variants=variants,
        axes=axes,
        budget=budget,
        protocol=protocol,
        resources=resources,
        source=source,
        study=study,
    )
    check_size(suite)
    return suite


def run_count(suite: Suite) -> int:
    """Runs a suite expands to: games x seeds x variants x conditions."""
    conditions = math.prod(len(a.values) for a in suite.axes)
    return len(suite.games) * len(suite.seeds) * len(suite.variants) * conditions


def check_size(suite: Suite) -> None:
    """A BenchError when a suite would expand to more than ``MAX_RUNS`` runs."""
    n = run_count(suite)
    if n > MAX_RUNS:
        conditions = math.prod(len(a.values) for a in suite.axes)
        raise BenchError(
            f"{suite.source}: {n:,} runs ({len(suite.games)} games x {len(suite.seeds)} seeds "
            f"x {len(suite.variants)} variants x {conditions} conditions); "
            f"valid: at most {MAX_RUNS:,} runs per suite"
        )


def _suite_name(data: Mapping[str, Any], source: str, default_name: str) -> str:
    """The suite's name (its ledger folder by default): a safe folder name."""
    if "name" in data:
        return check_name(data["name"], where=f"{source}: name", what="suite name")
    if not is_name(default_name):
        raise BenchError(
            f"{source}: name: the file's name {shown(default_name)} is not a safe suite name; "
            f"add a name key; valid: {NAME_RULE}"
        )
    return default_name


def _games(value: Any, source: str) -> tuple[str, ...]:
    """Game names of a subset name or a list of games and subsets; a game named twice (in
    any spelling) is refused, a game that a listed subset also has is not."""
    where = f"{source}: games"
    if not isinstance(value, str) and not (isinstance(value, list) and value):
        raise BenchError(
            f"{where}: expected a subset name or a non-empty list of games, got {shown(value)}"
        )
    seen: dict[str, int] = {}
    for i, item in enumerate([value] if isinstance(value, str) else value):
        if not isinstance(item, str):
            raise BenchError(f"{where}[{i}]: expected a game or subset name, got {shown(item)}")
        key = item
        if item not in subsets():
            try:
                key = get_game(item).name
            except BenchError:
                resolve_games([item], where=where)  # names it with the closest choices
                raise
        if key in seen:
            raise BenchError(
                f"{where}[{i}]: {item!r} repeats games[{seen[key]}] ({key}); valid: each game once"
            )
        seen[key] = i
    return tuple(resolve_games(value, where=where))


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    where = f"{source}: seeds"
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise BenchError(f"{where}: expected a count or a list of integers, got {shown(value)}")
    if isinstance(value, int):
        if value < 1:
            raise BenchError(f"{where}: the count must be at least 1, got {value}")
        if value > MAX_RUNS:
            raise BenchError(
                f"{where}: a count of {shown(value)} seeds is too many; valid: 1..{MAX_RUNS}"
            )
        return tuple(range(value))
    if not value:
        raise BenchError(f"{where}: the list is empty")
    first: dict[int, int] = {}
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise BenchError(f"{where}[{i}]: {shown(s)} is not a seed; valid: 0..{MAX_SEED}")
        if s in first:
            raise BenchError(
                f"{where}: duplicate seeds: {s} at seeds[{first[s]}] and seeds[{i}]; "
                "valid: each seed once"
            )
        first[s] = i
    return tuple(value)


def _variants(value: Any, source: str, protocol: ProtocolConfig) -> tuple[Variant, ...]:
    if not isinstance(value, list) or not value:
        raise BenchError(f"{source}: variants: expected a non-empty list of variants")
    variants: list[Variant] = []
    for i, item in enumerate(value):
        variant = _variant(item, f"{source}: variants[{i}]", protocol)
        if any(v.name == variant.name for v in variants):
            raise BenchError(
                f"{source}: variants[{i}].name: duplicate variant name {variant.name!r}"
            )
        variants.append(variant)
    return tuple(variants)


def _variant(item: Any, where: str, protocol: ProtocolConfig) -> Variant:
    if isinstance(item, str):
        item = {"name": item, "agent": item}
    if not isinstance(item, Mapping):
        raise BenchError(f"{where}: expected a mapping with keys {', '.join(VARIANT_KEYS)}")
    for key in item:
        if key not in VARIANT_KEYS:
            raise unknown("key", str(key), VARIANT_KEYS, where=where)
    if "agent" not in item:
        raise BenchError(f"{where}: missing required key 'agent'")
    agent = check_agent_ref(item["agent"], where=f"{where}.agent")
    entry = get_agent(agent, where=f"{where}.agent")
    preset = item.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise BenchError(f"{where}.preset: expected a string, got {shown(preset)}")
    config = entry.preset(preset, where=f"{where}.preset")
    overrides = item.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise BenchError(f"{where}.overrides: expected a mapping of config field -> value")
    config = override(config, overrides, where=f"{where}.overrides")
    if "name" in item:
        name = check_name(item["name"], where=f"{where}.name", what="variant name")
    elif not is_name(preset or agent):
        raise BenchError(
            f"{where}.name: the default name {shown(preset or agent)} is not a safe variant "
            f"name; add a name key; valid: {NAME_RULE}"
        )
    else:
        name = preset or agent
    own = _mapping(item.get("protocol"), f"{where}.protocol")
    return Variant(
        name=name,
        agent=agent,
        preset=preset,
        config=config,
        protocol=override(protocol, own, where=f"{where}.protocol"),
        protocol_fields=tuple(str(k) for k in own),
    )


def parse_study(
    value: Any, where: str, variants: tuple[Variant, ...], axes: tuple[Axis, ...]
) -> Study:
    """A suite's ``study``: ``base`` names one of its variants, ``sweep`` one of its axes
    (or "variant"), each with at least one other variant or two values to compare."""
    if value is None:
        return Study()
    if not isinstance(value, Mapping):
        raise BenchError(f"{where}: expected a mapping with keys {', '.join(STUDY_KEYS)}")
    for key in value:
        if key not in STUDY_KEYS:
            raise unknown("key", str(key), STUDY_KEYS, where=where)
    names = [v.name for v in variants]
    base, sweep = str(value.get("base", "")), str(value.get("sweep", ""))
    if base != "" and base not in names:
        raise unknown("variant", base, names, where=f"{where}.base")
    if base != "" and len(names) < 2:
        raise BenchError(f"{where}.base: the suite has no other variant to compare with {base}")
    sweeps = {a.label: len(a.values) for a in axes} | {"variant": len(variants)}
    if sweep != "" and sweep not in sweeps:
        raise unknown("axis", sweep, list(sweeps), where=f"{where}.sweep")
    if sweep != "" and sweeps[sweep] < 2:
        raise BenchError(f"{where}.sweep: {sweep} has one value; a sweep needs at least 2")
    return Study(base=base, sweep=sweep)


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


@dataclass(frozen=True)
class _Bases:
    """What axis values are checked against: each variant's config and protocol (the
    suite's with the variant's own fields), the suite's protocol and budget (an axis value
    is refused at load when it breaks any of them)."""

    variants: tuple[Variant, ...]
    protocol: ProtocolConfig
    budget: Budget


def _axes(value: Any, source: str, bases: _Bases) -> tuple[Axis, ...]:
    where = f"{source}: axes"
    if not isinstance(value, Mapping):
        raise BenchError(f"{where}: expected a mapping with keys {', '.join(AXIS_KEYS)}")
    axes: list[Axis] = []
    for key, values in value.items():
        if key not in AXIS_KEYS:
            raise unknown("axis", str(key), AXIS_KEYS, where=where)
        if key == "grid":
            axes.extend(_grid(values, f"{where}.grid", bases))
            continue
        values = _axis_values(values, f"{where}.{key}")
        if key == "audio":
            # YAML 1.1 reads bare off/on as booleans.
            values = tuple("on" if v is True else "off" if v is False else v for v in values)
            axes.append(
                _checked_axis("audio", "protocol", "audio", values, f"{where}.audio", bases)
            )
        else:
            axes.append(
                _checked_axis(key, "agent", "replay_ratio", values, f"{where}.{key}", bases)
            )
    labels = [a.label for a in axes]
    targets = [(a.section, a.field) for a in axes]
    if len(set(targets)) != len(targets):
        raise BenchError(f"{where}: two axes set the same field: {labels}")
    return tuple(axes)


def _grid(value: Any, where: str, bases: _Bases) -> list[Axis]:
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
        axes.append(_checked_axis(key, section, field, values, f"{where}.{key}", bases))
    return axes


def _axis_values(values: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(values, list):
        raise BenchError(f"{where}: expected a list of values, got {shown(values)}")
    if not values:
        raise BenchError(f"{where}: empty list of values")
    if len({repr(v) for v in values}) != len(values):
        raise BenchError(f"{where}: duplicate values in {shown(values)}")
    return tuple(values)


def _checked_axis(
    label: str,
    section: str,
    field: str,
    values: tuple[Any, ...],
    where: str,
    bases: _Bases,
) -> Axis:
    """An axis whose every value type-checks against every config it applies to, and keeps
    each within its domain (with the rest of that config as the suite sets it)."""
    if section == "agent":
        for v in bases.variants:
            names = field_names(type(v.config))
            if field not in names:
                raise unknown(f"config field of variant {v.name!r}", field, names, where=where)
            at = f"{where}: for variant {v.name!r}" if len(bases.variants) > 1 else where
            values = tuple(_applied(v.config, field, x, where=at) for x in values)
    else:
        base = bases.protocol if section == "protocol" else bases.budget
        if field not in field_names(type(base)):
            raise unknown(f"{section} field", field, field_names(type(base)), where=where)
        values = tuple(_applied(base, field, x, where=where) for x in values)
        if section == "protocol":  # each variant's own protocol, where it sets fields
            for v in bases.variants:
                if v.protocol_fields:
                    at = f"{where}: for variant {v.name!r}"
                    values = tuple(_applied(v.protocol, field, x, where=at) for x in values)
    return Axis(label=label, section=section, field=field, values=values)


def _applied(base: Any, field: str, value: Any, *, where: str) -> Any:
    """``value`` coerced for ``field`` of ``base``'s config class, refused when ``base``
    with it is out of its domain."""
    value = coerce_field(type(base), field, value, where=where)
    try:
        dataclasses.replace(base, **{field: value})
    except FieldError as e:
        other = "" if e.field == field else f"{e.field}: "  # a relation to another field
        raise BenchError(f"{where}: {other}{e.problem}") from None
    return value
