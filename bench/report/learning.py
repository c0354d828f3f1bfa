"""Learning over training: sample-efficiency curves (an aggregate against env steps, with
CIs), per-game learning curves and the agents' training metrics, as the figures draw them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.report.columns import LEARNING_CURVE_COLUMNS, TRAINING_METRIC_COLUMNS, empty_frame
from bench.report.options import LEVEL, ReportOptions
from bench.report.scores import curve_array
from bench.stats.curves import Curve, sample_efficiency

# Metrics that are bookkeeping, not learning: the env step is already every figure's x axis.
SKIPPED_METRICS = frozenset({"env_steps"})


def sample_efficiency_curves(
    points: pd.DataFrame, labels: Sequence[str], games: Sequence[str], options: ReportOptions
) -> dict[str, Curve]:
    """IQM against env steps per label, over ``games``; ``points`` as ``curve_points`` gives.

    A label gets no curve when no step has an evaluation in every game.
    """
    curves: dict[str, Curve] = {}
    for label in labels:
        rows = points[(points["algorithm"] == label) & points["game"].isin(games)]
        if rows.empty:
            continue
        steps = np.array(sorted(rows["env_step"].unique()))
        curve = sample_efficiency(
            curve_array(rows, games, steps),
            steps,
            reps=options.profile_reps,
            seed=options.seed,
            stream=f"{label}/curve",
            level=LEVEL,
        )
        if len(curve.steps):
            curves[label] = curve
    return curves


def _mean_and_se(rows: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Mean, standard error and count of ``column`` per group of ``by`` (s.e. 0 for one row)."""
    stat = rows.groupby(by, sort=False)[column].agg(["mean", "std", "count"]).reset_index()
    stat["se"] = stat["std"].fillna(0.0) / np.sqrt(stat["count"])
    return stat.rename(columns={"count": "n_runs"})


def learning_curve_table(
    points: pd.DataFrame, labels: Sequence[str], games: Sequence[str]
) -> pd.DataFrame:
    """Raw score per (game, label, env step): mean and standard error over runs.

    ``LEARNING_CURVE_COLUMNS``, games in ``games`` order, labels in ``labels`` order, steps
    ascending; only the games in the aggregates (others would show a baseline alone).
    """
    rows = points[points["game"].isin(games) & points["algorithm"].isin(labels)]
    stat = _mean_and_se(rows, ["game", "algorithm", "env_step"], "score")
    stat = _ordered(stat, game=list(games), algorithm=list(labels))
    return stat[list(LEARNING_CURVE_COLUMNS)]


def metric_order(names: Sequence[str]) -> list[str]:
    """Losses first (every metric whose name has "loss"), then the rest; each alphabetical."""
    return sorted(set(names), key=lambda m: ("loss" not in m, m))


def training_metric_table(metrics: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Each training metric per (label, env step): mean and standard error over runs.

    ``metrics`` has ``METRIC_COLUMNS``. Labels in ``labels`` order, then any others sorted;
    metrics in ``metric_order``; ``SKIPPED_METRICS`` and per-part metrics (``group/part``,
    e.g. ``dormant/encoder.convs.0``: TensorBoard's sections keep them) left out. A run that
    logged one step twice (resumed from a checkpoint) counts once, with its last value.
    """
    rows = metrics[~metrics["metric"].isin(SKIPPED_METRICS)]
    rows = rows[~rows["metric"].astype(str).str.contains("/", regex=False)]
    rows = rows.drop_duplicates(["run_id", "metric", "env_step"], keep="last")
    if rows.empty:
        return empty_frame(TRAINING_METRIC_COLUMNS)
    rows = rows.assign(value=rows["value"].astype(np.float64))
    stat = _mean_and_se(rows, ["algorithm", "metric", "env_step"], "value")
    present = set(stat["algorithm"])
    order = [lb for lb in labels if lb in present] + sorted(present - set(labels))
    stat = _ordered(stat, algorithm=order, metric=metric_order(stat["metric"]))
    return stat[list(TRAINING_METRIC_COLUMNS)]


def _ordered(frame: pd.DataFrame, **orders: list[str]) -> pd.DataFrame:
    """Rows sorted by the given columns in the given orders of their values, then env step."""
    keys = {c: frame[c].map({v: i for i, v in enumerate(order)}) for c, order in orders.items()}
    frame = frame.assign(**{f"_{c}": k for c, k in keys.items()})
    frame = frame.sort_values([f"_{c}" for c in orders] + ["env_step"], kind="stable")
    return frame.drop(columns=[f"_{c}" for c in orders]).reset_index(drop=True)
