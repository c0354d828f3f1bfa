"""Evaluation protocols of the runs: what each algorithm label was run under, and how two
protocols differ. Runs made under different protocols are never pooled silently."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.core.errors import BenchError

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
                out[proto] = flatten(json.loads(text))
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
) -> dict[str, list[str]]:
    """Protocols per algorithm label; a BenchError if one label mixes them (unless allowed)."""
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
    return by_label


def protocol_note(a: list[str], b: list[str], configs: dict[str, dict[str, Any]]) -> str:
    """How the single protocols of two compared labels differ; "" if they agree or mix."""
    if a != b and len(a) == 1 and len(b) == 1:
        return f"protocols differ in {protocol_difference(a[0], b[0], configs)}"
    return ""
