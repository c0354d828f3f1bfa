"""Evaluation protocols of the runs: what each algorithm label was run under, and how two
protocols differ. Runs made under different protocols are never pooled silently, and
algorithms that acted in different action spaces (discrete joystick actions or CALE's
continuous ones) are never compared silently."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.core.errors import BenchError
from bench.env.protocol import ADDED_BEHAVIOUR

UNKNOWN = "unknown (published or external scores)"  # the protocol of rows that record none


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def protocol_configs(runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Protocol hash -> its resolved config (flattened keys), from the ledger's runs table."""
    out: dict[str, dict[str, Any]] = {}
    if "protocol_json" not in runs.columns:
        return out
    for proto, text in zip(runs["protocol"], runs["protocol_json"], strict=True):
        if proto and proto not in out and isinstance(text, str) and text:
            try:
                # Protocols recorded before the action space was a field were discrete, and
                # before the later behaviour fields, the env behaved as their defaults.
                before = {"actions": "discrete"} | ADDED_BEHAVIOUR
                out[proto] = before | flatten(json.loads(text))
            except json.JSONDecodeError:
                out[proto] = {}
    return out


def protocol_difference(a: str, b: str, configs: dict[str, dict[str, Any]]) -> str:
    """'eval_epsilon (0.001 vs 0.01), audio (off vs on)' or a plain statement of the hashes."""
    if a in configs and b in configs:
        ca, cb = configs[a], configs[b]
        keys = [k for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
        if keys:
            return ", ".join(f"{k} ({ca.get(k)} vs {cb.get(k)})" for k in keys)
    return f"{a or UNKNOWN} vs {b or UNKNOWN}"


def check_protocols(
    evals: pd.DataFrame, runs: pd.DataFrame, *, allow_mixed: bool
) -> tuple[dict[str, list[str]], list[str]]:
    """Protocols per algorithm label, and notes; a BenchError if one label mixes them or the
    labels acted in different action spaces (unless allowed)."""
    by_label = {
        label: sorted(set(group["protocol"].astype(str)))
        for label, group in evals.groupby("algorithm", sort=True)
    }
    mixed = {k: v for k, v in by_label.items() if len(v) > 1}
    if mixed and not allow_mixed:
        label, protos = next(iter(mixed.items()))
        rows = evals[evals["algorithm"] == label].drop_duplicates("run_id")
        counts = rows.groupby("protocol")["run_id"].count()
        parts = ", ".join(f"{p or 'unknown'} ({counts.get(p, 0)} runs)" for p in protos)
        differ = protocol_difference(protos[0], protos[1], protocol_configs(runs))
        others = f" (and {len(mixed) - 1} more algorithms)" if len(mixed) > 1 else ""
        raise BenchError(
            f"runs of {label!r}{others} were made under {len(protos)} protocols: {parts}; "
            f"they differ in {differ}; pass --allow-mixed-protocols to pool them"
        )
    return by_label, check_action_spaces(by_label, protocol_configs(runs), allow_mixed=allow_mixed)


def action_spaces(
    protocols: dict[str, list[str]], configs: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Per label, the action space of its runs' recorded protocols: "discrete",
    "continuous", both joined by "+" when pooled, "" when none recorded one (published or
    external scores)."""
    out = {}
    for label, protos in protocols.items():
        kinds = {configs[p].get("actions", "") for p in protos if p in configs} - {""}
        out[label] = "+".join(sorted(kinds))
    return out


def check_action_spaces(
    protocols: dict[str, list[str]], configs: dict[str, dict[str, Any]], *, allow_mixed: bool
) -> list[str]:
    """A note when the labels acted in different action spaces, or a BenchError unless
    allowed: a comparison across them compares controllers as much as agents."""
    spaces = action_spaces(protocols, configs)
    if len({k for v in spaces.values() for k in v.split("+") if k}) < 2:
        return []
    groups = "; ".join(f"{label}: {kind}" for label, kind in spaces.items() if kind)
    example = {
        configs[p].get("actions", "discrete"): p
        for v in protocols.values()
        for p in v
        if p in configs
    }
    differ = protocol_difference(example["discrete"], example["continuous"], configs)
    text = f"algorithms acted in different action spaces ({groups}); protocols differ in {differ}"
    if not allow_mixed:
        raise BenchError(f"{text}; pass --allow-mixed-protocols to compare them in one report")
    return [text]


def protocol_note(a: list[str], b: list[str], configs: dict[str, dict[str, Any]]) -> str:
    """How the single protocols of two compared labels differ; "" if they agree or mix."""
    if a != b and len(a) == 1 and len(b) == 1:
        return f"protocols differ in {protocol_difference(a[0], b[0], configs)}"
    return ""
