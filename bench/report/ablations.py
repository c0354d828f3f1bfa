"""What a study suite asks besides the aggregates (its ``study`` section, or ``--ablations``
and ``--sweep``): which pairs an ablation study compares, and whether a sweep's best value
holds across games and across data regimes.

Ablations: every variant against the base variant, condition by condition (same games and
seeds: a paired comparison), ordered by effect. Sweeps: the values of one axis (or the
variants themselves) within each family of labels that differ only in it. Per game and per
evaluation step (a "regime": the agent after 20k, 40k, ... env steps, the final one last),
the best value and a ranking of the values by mean human-normalized score; agreement is
with the overall best (the final evaluations, mean over games of the per-game means).
Ranks are compared with Kendall's tau-b (1: the same order, -1: reversed), in the spirit of
the tuning-consistency analysis of Obando-Ceron et al. (2024, "On the consistency of
hyper-parameter selection in value-based deep RL"), which asks whether a value tuned on
some games or some data budget stays best on others.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.report.columns import SWEEP_COLUMNS
from bench.report.compare import condition_items

SUMMARY_SCOPES = {"game": "games", "regime": "regimes"}


def ablation_pairs(labels: pd.DataFrame, base: str) -> list[tuple[str, str]]:
    """(base label, other label) for every other variant in each condition of the base;
    ``labels`` has algorithm, variant and condition (one row per label)."""
    variants = list(dict.fromkeys(labels["variant"]))
    if base not in variants:
        raise BenchError(
            f"--ablations {base}: no variant {base!r} among the reported runs; "
            f"valid: {', '.join(variants)}"
        )
    pairs = []
    for row in labels[labels["variant"] == base].itertuples():
        same = labels[(labels["condition"] == row.condition) & (labels["variant"] != base)]
        pairs += [(str(row.algorithm), str(b)) for b in same["algorithm"]]
    if not pairs:
        raise BenchError(f"--ablations {base}: no other variant shares a condition with it")
    return pairs


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two score vectors over the same items (ties counted as tau-b
    does); NaN when either has no two distinct values."""
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    n = concordant + discordant
    denominator = np.sqrt((n + ties_x) * (n + ties_y))
    return float((concordant - discordant) / denominator) if denominator > 0 else float("nan")


def sweep_values(labels: pd.DataFrame, sweep: str) -> pd.DataFrame:
    """``labels`` (algorithm, variant, condition) with the swept ``value`` of each label and
    its ``family`` (what the labels compared with it share); labels without the axis dropped."""
    rows = []
    for r in labels.itertuples():
        items = condition_items(r.condition)
        if sweep == "variant":
            value, family = r.variant, r.condition or "variants"
        elif sweep in items:
            value = items.pop(sweep)
            rest = ",".join(f"{k}={v}" for k, v in items.items())
            family = f"{r.variant} [{rest}]" if rest else str(r.variant)
        else:
            continue
        rows.append((r.algorithm, str(value), family))
    if not rows:
        raise BenchError(
            f"--sweep {sweep}: no reported label has it; valid: variant or an axis of "
            "the conditions"
        )
    return pd.DataFrame(rows, columns=["algorithm", "value", "family"])


def _value_means(points: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Mean hns per (family, value, game, env_step) of the points of the swept labels."""
    rows = points.merge(values, on="algorithm")
    return rows.groupby(["family", "value", "game", "env_step"], sort=False)["hns"].mean()


def _best_and_tau(scores: pd.Series, overall: pd.Series) -> tuple[str, float]:
    """The best value of ``scores`` (value -> score) and tau against ``overall``'s order."""
    common = [v for v in overall.index if v in scores.index]
    tau = kendall_tau([scores[v] for v in common], [overall[v] for v in common])
    return str(scores.idxmax()), tau


def _family_rows(sweep: str, family: str, means: pd.Series, final_step: int) -> list[tuple]:
    """The consistency rows of one family: overall, per game, per regime, and summaries.
    ``means``: (value, game, env_step) -> mean hns, with the final evaluations at
    ``final_step``."""
    final = means.xs(final_step, level="env_step").unstack("game")  # values x games
    final = final.dropna(axis=1)  # games where every value has a final evaluation
    if final.shape[0] < 2 or final.shape[1] == 0:
        return []
    overall = final.mean(axis=1)
    best = str(overall.idxmax())
    rows = [(sweep, family, "overall", "all games", best, True, 1.0, len(overall))]
    for game in final.columns:
        b, tau = _best_and_tau(final[game], overall)
        rows.append((sweep, family, "game", game, b, b == best, tau, len(overall)))
    steps = means.unstack(["game"])[list(final.columns)].dropna().reset_index()
    for step, at in steps.groupby("env_step"):
        if int(step) == final_step or at["value"].nunique() < len(overall):
            continue
        b, tau = _best_and_tau(at.set_index("value").mean(axis=1), overall)
        where = f"{int(step)} steps"
        rows.append((sweep, family, "regime", where, b, b == best, tau, len(overall)))
    return rows + _summaries(sweep, family, rows, final)


def _summaries(sweep: str, family: str, rows: list[tuple], final: pd.DataFrame) -> list[tuple]:
    """Per scope: the fraction agreeing with the overall best, and the mean tau: between
    every two games' rankings (games), against the final ranking (regimes)."""
    out = []
    for scope, name in SUMMARY_SCOPES.items():
        mine = [r for r in rows if r[2] == scope]
        if not mine:
            continue
        agree = float(np.mean([r[5] for r in mine]))
        if scope == "game":
            taus = [
                kendall_tau(final[a].tolist(), final[b].tolist())
                for a, b in itertools.combinations(final.columns, 2)
            ]
        else:
            taus = [r[6] for r in mine]
        tau = float(np.nanmean(taus)) if taus and not np.isnan(taus).all() else float("nan")
        out.append((sweep, family, name, f"{len(mine)} {name}", rows[0][4], agree, tau, rows[0][7]))
    return out


def sweep_consistency(points: pd.DataFrame, labels: pd.DataFrame, sweep: str) -> pd.DataFrame:
    """``SWEEP_COLUMNS``: per family of the swept labels, the overall best value, the best per
    game and per regime, whether it agrees with the overall best and Kendall's tau of its
    ranking against the overall one; then a summary per scope ("games": fraction of games
    agreeing and mean tau between every two games' rankings; "regimes": fraction of earlier
    evaluations agreeing and mean tau against the final ranking).

    ``points``: ``curve_points`` (periodic and final evaluations with ``hns``); ``labels``:
    algorithm, variant, condition of the reported labels."""
    values = sweep_values(labels, sweep)
    means = _value_means(points, values)
    final_step = int(points.loc[points["final"].astype(bool), "env_step"].max())
    rows: list[tuple] = []
    for family in dict.fromkeys(values["family"]):
        rows += _family_rows(sweep, family, means.xs(family, level="family"), final_step)
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
