"""Scores as the statistics take them: human-normalized final scores, arranged per algorithm
as (n_runs, n_games) matrices, and the evaluation points of learning curves.

Every function is pure: frames in (the columns of ``bench.report.columns``), arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.env.games import games as game_table
from bench.env.games import get_game, human_normalized
from bench.run.status import State


def normalize(frame: pd.DataFrame) -> np.ndarray:
    """Human-normalized scores of a frame's ``game`` and ``score`` columns, shape (n_rows,)."""
    out = np.empty(len(frame))
    game = frame["game"].to_numpy()
    score = frame["score"].to_numpy(dtype=np.float64)
    for g in pd.unique(game):
        rows = game == g
        out[rows] = human_normalized(get_game(g, where="scores").name, score[rows])
    return out


def final_scores(evals: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its final evaluation (the last one if a run was evaluated again),
    with its human-normalized score in ``hns``."""
    final = evals[evals["final"].astype(bool)].sort_values(["run_id", "env_step"], kind="stable")
    final = final.drop_duplicates("run_id", keep="last").copy()
    final["hns"] = normalize(final)
    return final.reset_index(drop=True)


def source_kind(frame: pd.DataFrame) -> np.ndarray:
    """ "ledger", "external" or "baseline" per row, from the ``source`` column."""
    src = frame["source"].astype(str)
    return np.where(
        src.str.startswith("baseline:"),
        "baseline",
        np.where(src.str.startswith("external:"), "external", "ledger"),
    )


def algorithm_order(evals: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Ledger algorithms (sorted), then external files' (in order), then published baselines."""
    kind = source_kind(evals)
    ledger = sorted(set(runs["algorithm"]) | set(evals.loc[kind == "ledger", "algorithm"]))
    external = list(dict.fromkeys(evals.loc[kind == "external", "algorithm"]))
    baseline = list(dict.fromkeys(evals.loc[kind == "baseline", "algorithm"]))
    return list(dict.fromkeys(ledger + external + baseline))


def score_matrix(final: pd.DataFrame, label: str, games: Sequence[str]) -> np.ndarray:
    """(max runs, n_games) human-normalized matrix of one algorithm, NaN-padded (ragged)."""
    rows = final[final["algorithm"] == label]
    columns = [rows.loc[rows["game"] == g, "hns"].to_numpy() for g in games]
    out = np.full((max(len(c) for c in columns), len(games)), np.nan)
    for j, col in enumerate(columns):
        out[: len(col), j] = col
    return out


def missing_runs(runs: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Expanded runs of the ledgers that have no final evaluation (yet), with their state."""
    if runs.empty:
        return runs.assign(error="")
    out = runs[~runs["run_id"].isin(set(final["run_id"]))].copy()
    if "error" not in out.columns:
        out["error"] = ""
    out["state"] = np.where(out["state"] == State.DONE, "done, no final evaluation", out["state"])
    return out.sort_values(["algorithm", "game", "seed"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Coverage:
    """Which games each algorithm has, and the games shared by all (in the table's order)."""

    games_of: dict[str, list[str]]  # label -> its games, table order
    common: list[str]  # games every algorithm has: the aggregates' games
    excluded: dict[str, list[str]]  # game some algorithm lacks -> the labels lacking it

    def note(self) -> str | None:
        """A note listing the games left out of the aggregates, if any."""
        if not self.excluded:
            return None
        groups: dict[tuple[str, ...], list[str]] = {}
        for g, labels in self.excluded.items():
            groups.setdefault(tuple(labels), []).append(g)
        parts = [f"{', '.join(gs)} (missing for {', '.join(lbs)})" for lbs, gs in groups.items()]
        return (
            f"aggregates use the {len(self.common)} games every algorithm has; left out: "
            + "; ".join(parts)
        )


def coverage(final: pd.DataFrame, labels: Sequence[str]) -> Coverage:
    """The games of each label in ``final`` and the games they share."""
    have = {lb: set(final.loc[final["algorithm"] == lb, "game"]) for lb in labels}
    order = list(game_table())
    common = [g for g in order if all(g in have[lb] for lb in labels)]
    excluded = {
        g: [lb for lb in labels if g not in have[lb]]
        for g in order
        if g not in common and any(g in have[lb] for lb in labels)
    }
    games_of = {lb: [g for g in order if g in have[lb]] for lb in labels}
    return Coverage(games_of, common, excluded)


def curve_points(evals: pd.DataFrame) -> pd.DataFrame:
    """The points of learning curves: periodic and final evaluations, one per (run, env step),
    with their human-normalized score in ``hns``.

    Where a run has both at one env step (the bundled DER curves end at 100k, where its
    final-score file also has every run), the final evaluation wins: it is the score the
    aggregates use, so a curve ends where the aggregate tables are. Of several finals at one
    step, the last wins, as in ``final_scores``. Final scores of unknown step (external files
    without ``env_step`` give them step 0) are no point of a curve.
    """
    unknown = evals["final"].astype(bool) & (evals["env_step"] <= 0)
    points = evals[~unknown].sort_values("final", kind="stable", key=lambda s: s.astype(bool))
    points = points.drop_duplicates(["run_id", "env_step"], keep="last")
    points = points.sort_index().copy()
    points["hns"] = normalize(points)
    return points


def curve_array(rows: pd.DataFrame, games: Sequence[str], steps: np.ndarray) -> np.ndarray:
    """(n_runs, n_games, n_steps) human-normalized scores, NaN where a run has none."""
    step_index = {int(s): k for k, s in enumerate(steps)}
    per_game = {g: list(dict.fromkeys(rows.loc[rows["game"] == g, "run_id"])) for g in games}
    n_runs = max(1, max(len(v) for v in per_game.values()))
    out = np.full((n_runs, len(games), len(steps)), np.nan)
    run_index = {(g, r): i for g, ids in per_game.items() for i, r in enumerate(ids)}
    game_index = {g: j for j, g in enumerate(games)}
    for g, r, s, v in zip(rows["game"], rows["run_id"], rows["env_step"], rows["hns"], strict=True):
        out[run_index[(g, r)], game_index[g], step_index[int(s)]] = v
    return out
