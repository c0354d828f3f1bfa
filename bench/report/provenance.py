"""A report's provenance (``provenance.json``): inputs, code versions, protocols, the runs
behind each algorithm, the bootstrap's settings, and what is missing."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench import __version__
from bench.report.baselines import BASELINES
from bench.report.columns import RUN_RECORD_COLUMNS
from bench.report.options import LEVEL, Inputs, ReportOptions
from bench.report.protocols import action_spaces, protocol_configs
from bench.report.scores import Coverage
from bench.run.status import State


def _strings(column: pd.Series | None) -> set[str]:
    """The non-empty strings of an optional column."""
    return set() if column is None else {s for s in column if isinstance(s, str) and s}


def algorithm_records(
    final: pd.DataFrame,
    runs: pd.DataFrame,
    missing: pd.DataFrame,
    protocols: dict[str, list[str]],
    spaces: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Per algorithm label (in order of first final score): its sources, protocols, action
    space, code versions and runs: found, expected, missing and failed."""
    out = {}
    for label, group in final.groupby("algorithm", sort=False):
        per_game = group.groupby("game")["run_id"].count()
        expected = runs[runs["algorithm"] == label]
        out[str(label)] = {
            "sources": sorted(set(group["source"].astype(str))),
            "protocols": protocols.get(str(label), []),
            "action_space": spaces.get(str(label), ""),
            "git_shas": sorted({s for s in group["git_sha"] if s}),
            "runs": int(len(group)),
            "games": int(group["game"].nunique()),
            "runs_per_game": {g: int(n) for g, n in per_game.items()},
            "expected_runs": int(len(expected)) if len(expected) else int(len(group)),
            "missing_runs": int((missing["algorithm"] == label).sum()) if len(missing) else 0,
            "failed_runs": int((expected["state"] == State.FAILED).sum()) if len(expected) else 0,
        }
    return out


def run_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The runs of a frame as JSON records of the ``RUN_RECORD_COLUMNS`` it has."""
    cols = [c for c in RUN_RECORD_COLUMNS if c in frame.columns]
    return json.loads(frame[cols].to_json(orient="records")) if len(frame) else []


def bootstrap_settings(options: ReportOptions) -> dict[str, Any]:
    return {
        "method": options.method,
        "level": LEVEL,
        "reps": options.reps,
        "profile_reps": options.profile_reps,
        "seed": options.seed,
        "resampling": "stratified: runs with replacement within each game",
    }


def build_provenance(
    *,
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    final: pd.DataFrame,
    missing: pd.DataFrame,
    options: ReportOptions,
    inputs: Inputs,
    protocols: dict[str, list[str]],
    games: Coverage,
    notes: list[str],
    reproduction: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The contents of ``provenance.json``; ``reproduction`` is the ``--reproduce`` record."""
    configs = protocol_configs(runs)
    spaces = action_spaces(protocols, configs)
    failed = runs[runs["state"] == State.FAILED] if len(runs) else runs
    used = sorted({p for v in protocols.values() for p in v if p})
    return {
        "bench_version": __version__,
        "provisional": not missing.empty,
        "inputs": inputs.to_json(),
        "baseline_sources": {n: inputs.baseline_sources.get(n, "") for n in inputs.baselines},
        "baseline_protocols": {n: baseline_protocol(n) for n in inputs.baselines if n in BASELINES},
        "suites": sorted(_strings(runs.get("suite"))),
        "git_shas": sorted({s for s in evals["git_sha"] if s} | _strings(runs.get("git_sha"))),
        "protocols": {p: configs.get(p, {}) for p in used},
        "algorithms": algorithm_records(final, runs, missing, protocols, spaces),
        "games_in_aggregates": games.common,
        "games_left_out_of_aggregates": games.excluded,
        "bootstrap": bootstrap_settings(options),
        "pooled_mixed_protocols": options.allow_mixed_protocols
        and any(len(v) > 1 for v in protocols.values()),
        "mixed_action_spaces": len({k for v in spaces.values() for k in v.split("+") if k}) > 1,
        "missing_runs": run_records(missing),
        "failed_runs": run_records(failed),
        "notes": notes,
        "reproduction": reproduction,
    }


def baseline_protocol(name: str) -> dict[str, Any]:
    """What provenance.json says of a bundled baseline: its protocol, license and source."""
    base = BASELINES[name]
    return {
        "note": base.protocol_note,
        "config": dict(base.protocol),
        "final_step": base.final_step,
        "eval_episodes": base.eval_episodes,
        "source": base.source,
        "license": base.license,
    }
