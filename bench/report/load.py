"""Loading a report's inputs from launched suites: every evaluation and every run of the
ledgers, as the long tables the analysis reads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.run.ledger import resolve_ledger
from bench.run.monitor import states
from bench.suite.expand import RunSpec


def load_results(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every evaluation and every run of the launched suites in ``dirs``.

    Returns (evals, runs):
      evals: one row per (run, evaluation): source, run_id, algorithm, variant, condition,
             game, seed, env_step, score (mean raw return of the evaluation's episodes),
             n_episodes, final, protocol, git_sha
      runs:  one row per expanded run, also pending or failed ones: source, run_id,
             algorithm, variant, condition, game, seed, state, attempts, error, protocol,
             protocol_json, git_sha, suite
    """
    eval_rows, run_rows = [], []
    for d in dirs:
        ledger = resolve_ledger(d)
        source = Path(d).resolve().name
        ids = ledger.run_ids()
        st = states(ledger, ids)
        for run_id in ids:
            cfg = ledger.config(run_id)
            condition = RunSpec.from_json(cfg).condition_label
            common = {
                "source": source,
                "run_id": run_id,
                "algorithm": cfg["algorithm"],
                "variant": cfg["variant"],
                "condition": condition,
                "game": cfg["game"],
                "seed": int(cfg["seed"]),
                "protocol": cfg["protocol_id"],
                "git_sha": cfg["code"].get("git_sha", ""),
            }
            state, status = st[run_id]
            run_rows.append(
                common
                | {
                    "state": state,
                    "attempts": status.attempts,
                    "error": status.error,
                    "protocol_json": json.dumps(cfg["protocol"], sort_keys=True),
                    "suite": cfg["suite"],
                }
            )
            for ev in ledger.evals(run_id):
                returns = ev["returns"]
                eval_rows.append(
                    common
                    | {
                        "env_step": int(ev["env_step"]),
                        "score": float(sum(returns) / len(returns)),
                        "n_episodes": len(returns),
                        "final": bool(ev["final"]),
                    }
                )
    eval_cols = ["source", "run_id", "algorithm", "variant", "condition", "game", "seed",
                 "env_step", "score", "n_episodes", "final", "protocol", "git_sha"]  # fmt: skip
    run_cols = ["source", "run_id", "algorithm", "variant", "condition", "game", "seed", "state",
                "attempts", "error", "protocol", "protocol_json", "git_sha", "suite"]  # fmt: skip
    return pd.DataFrame(eval_rows, columns=eval_cols), pd.DataFrame(run_rows, columns=run_cols)
