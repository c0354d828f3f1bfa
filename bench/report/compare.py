"""Paired comparisons (``--compare A:B``): which labels a spec names, and their score matrices
aligned by seed, so that a seed's luck cancels in the difference B - A."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.report.options import LEVEL, ReportOptions
from bench.stats.paired import PairedComparison, compare


@dataclass(frozen=True)
class Comparison:
    """B against A on the games where they share a (game, seed) pair."""

    a: str
    b: str
    games: list[str]
    result: PairedComparison
    protocol_note: str  # how their protocols differ, "" if they do not


def condition_items(condition: str) -> dict[str, str]:
    """ "audio=on,rr=2" -> {"audio": "on", "rr": "2"}."""
    items = {}
    for part in str(condition).split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
    return items


def _match(side: str, labels: pd.DataFrame) -> tuple[list[str], set[str]]:
    """Labels a --compare side names (a full label, or key=value items of the condition)."""
    if side in set(labels["algorithm"]):
        return [side], set()
    wanted = condition_items(side)
    if not wanted:
        return [], set()
    hits = [
        row.algorithm
        for row in labels.itertuples()
        if all(condition_items(row.condition).get(k) == v for k, v in wanted.items())
    ]
    return hits, set(wanted)


def _identity(info: pd.DataFrame, label: str, keys: set[str]) -> tuple[str, tuple]:
    """A label's variant and its condition items other than ``keys``: what pairs must share."""
    items = condition_items(info.loc[label, "condition"])
    rest = tuple(sorted((k, v) for k, v in items.items() if k not in keys))
    return info.loc[label, "variant"], rest


def _pairs(la: list[str], lb: list[str], keys: set[str], labels: pd.DataFrame) -> list:
    """Pairs of a label of ``la`` and one of ``lb`` that differ only in ``keys``."""
    info = labels.drop_duplicates("algorithm").set_index("algorithm")
    rest = {x: _identity(info, x, keys) for x in la + lb}
    return [(x, y) for x in la for y in lb if x != y and rest[x] == rest[y]]


def resolve_compare(spec: str, labels: pd.DataFrame) -> list[tuple[str, str]]:
    """``A:B`` -> [(label_a, label_b), ...]; ``labels`` has algorithm, variant, condition.

    Condition sides pair labels of the same variant whose other condition items agree, e.g.
    ``audio=off:audio=on`` pairs ``BBF [audio=off,rr=2]`` with ``BBF [audio=on,rr=2]``.
    """
    where = f"--compare {spec}"
    splits = [i for i, ch in enumerate(spec) if ch == ":"]
    if not splits:
        raise BenchError(f"{where}: expected A:B, e.g. audio=off:audio=on or two labels")
    for i in splits:
        a, b = spec[:i].strip(), spec[i + 1 :].strip()
        (la, ka), (lb, kb) = _match(a, labels), _match(b, labels)
        if not la or not lb:
            continue
        if a == b or la == lb:
            raise BenchError(
                f"{where}: both sides name {'; '.join(la)}; valid: A:B naming different "
                "labels or conditions"
            )
        if len(la) == 1 and len(lb) == 1:
            return [(la[0], lb[0])]
        pairs = _pairs(la, lb, ka | kb, labels)
        if pairs:
            return pairs
        raise BenchError(
            f"{where}: no pairs of the same variant and other conditions; {a!r} matches "
            f"{'; '.join(la)}, {b!r} matches {'; '.join(lb)}"
        )
    all_labels = sorted(set(labels["algorithm"]))
    conditions = sorted({c for c in labels["condition"] if c})
    choices = f"labels: {'; '.join(all_labels)}" + (
        f"; conditions: {'; '.join(conditions)}" if conditions else ""
    )
    bad = next((s for s in spec.split(":") if not _match(s.strip(), labels)[0]), spec)
    raise BenchError(f"{where}: {bad.strip()!r} names no algorithm or condition; {choices}")


def paired_matrices(
    final: pd.DataFrame, a: str, b: str, games: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(seeds, games) matrices of A and B aligned by seed; games with no shared seed dropped."""
    for label in (a, b):
        rows = final[final["algorithm"] == label]
        dup = rows.duplicated(["game", "seed"])
        if dup.any():
            r = rows[dup].iloc[0]
            raise BenchError(
                f"--compare: {label!r} has several runs of {r['game']} seed {r['seed']} "
                "(pairs need one run per game and seed)"
            )
    pa = final[final["algorithm"] == a].pivot(index="seed", columns="game", values="hns")
    pb = final[final["algorithm"] == b].pivot(index="seed", columns="game", values="hns")
    shared = [g for g in games if g in pa.columns and g in pb.columns]
    seeds = sorted(set(pa.index) | set(pb.index))
    ma = pa.reindex(index=seeds, columns=shared).to_numpy(dtype=np.float64)
    mb = pb.reindex(index=seeds, columns=shared).to_numpy(dtype=np.float64)
    has_pair = (~np.isnan(ma) & ~np.isnan(mb)).any(axis=0)
    kept = [g for g, ok in zip(shared, has_pair, strict=True) if ok]
    return ma[:, has_pair], mb[:, has_pair], kept


def paired_comparison(
    ma: np.ndarray, mb: np.ndarray, a: str, b: str, options: ReportOptions
) -> PairedComparison:
    """B − A on aligned matrices (``paired_matrices``), its random stream named "A:B": every
    part of a report that compares A with B (``--compare``, the audio study) agrees exactly."""
    return compare(
        ma,
        mb,
        reps=options.reps,
        seed=options.seed,
        stream=f"{a}:{b}",
        level=LEVEL,
        method=options.method,
    )
