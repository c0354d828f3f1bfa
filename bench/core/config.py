"""Typed, frozen config dataclasses built from plain mappings (YAML only at the boundary).

Loading rejects unknown keys with the key's path and the valid choices, and checks types,
so a typo in a suite never silently does nothing. Numbers are finite (no NaN or infinity)
and integers fit 64 bits; strings hold no control characters. Each config class checks its
own fields' domains in ``__post_init__`` (``require``, ``check_finite``), raising a
``FieldError`` that ``override`` prefixes with the key path.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from bench.core.errors import BenchError, FieldError, shown, unknown

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against ``hint``; lists become tuples and ints floats where typed so."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise BenchError(f"{where}: {shown(value)} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except BenchError as e:
                errors.append(str(e))
        raise BenchError(errors[0] if errors else f"{where}: invalid value {shown(value)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise BenchError(f"{where}: expected a list, got {shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise BenchError(f"{where}: expected a list of {len(args)} items, got {shown(value)}")
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True))
        )
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise BenchError(f"{where}: expected a mapping, got {shown(value)}")
        return dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_mapping(hint, value, where=where)
    if hint in (bool, int, float, str):
        return _scalar(value, hint, where)
    return value


INT64 = 2**63 - 1


def _scalar(value: Any, hint: type, where: str) -> Any:
    """A bool, int, float or str checked: no bool for a number, no NaN, no control chars."""
    if hint is bool:
        if not isinstance(value, bool):
            raise BenchError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise BenchError(f"{where}: expected a string, got {shown(value)}")
        if not value.isprintable():
            raise BenchError(f"{where}: {shown(value)} holds a control character; valid: text")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if hint is int else "a number"
        raise BenchError(f"{where}: expected {kind}, got {shown(value)}")
    if hint is int:
        if not isinstance(value, int):
            raise BenchError(f"{where}: expected an integer, got {shown(value)}")
        if abs(value) > INT64:
            raise BenchError(f"{where}: {shown(value)} is out of range; valid: |n| < 2**63")
        return value
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BenchError(f"{where}: {shown(value)} is not a finite number; valid: finite numbers")
    return number


def from_mapping(cls: type[T], data: Any, *, where: str) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise BenchError(f"{where}: expected a mapping, got {shown(data)}")
    return override(cls(), data, where=where)


def override(instance: T, changes: Mapping[str, Any], *, where: str) -> T:
    """``dataclasses.replace`` with key and type checking; ``where`` is the key path so far."""
    hints = typing.get_type_hints(type(instance))
    names = field_names(type(instance))
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in names:
            raise unknown("key", str(key), names, where=where)
        updates[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    try:
        return dataclasses.replace(instance, **updates)
    except FieldError as e:
        raise BenchError(f"{where}.{e.field}: {e.problem}" if where else str(e)) from None


def coerce_field(cls: type, name: str, value: Any, *, where: str) -> Any:
    """``value`` checked and converted for field ``name`` of dataclass ``cls``."""
    return _coerce(value, typing.get_type_hints(cls)[name], where)


def to_dict(instance: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return _jsonable(dataclasses.asdict(instance))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def require(ok: bool, field: str, value: Any, valid: str) -> None:
    """A config's own domain check: a ``FieldError`` unless ``ok`` (false for NaN too)."""
    if not ok:
        raise FieldError(field, f"{shown(value)} is out of range; valid: {valid}")


def check_finite(instance: Any) -> None:
    """A ``FieldError`` for the first float field of a dataclass that is NaN or infinite."""
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise FieldError(f.name, f"{value} is not a finite number; valid: finite numbers")
