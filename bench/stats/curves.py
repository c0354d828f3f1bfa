"""Sample-efficiency curves: an aggregate metric against environment steps, with CIs.

Input: periodic evaluations as a (n_runs, n_games, n_steps) array of human-normalized scores
on a shared step grid, NaN where a run has no evaluation at a step (a run still going, or
evaluated on another grid). Each step is bootstrapped on its own (stratified by game), from
its own random stream; marginal intervals are what the curve shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.stats import metrics
from bench.stats.bootstrap import Strata, interval

CURVE_REPS = 2_000  # per step; a curve has many points, each less critical than a final one


@dataclass(frozen=True)
class Curve:
    """A metric per step: each array has shape (n_kept_steps,)."""

    steps: np.ndarray  # the steps kept: every game has at least one run there
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_runs: np.ndarray  # present run x game scores at each kept step


def sample_efficiency(
    scores: np.ndarray,
    steps: np.ndarray,
    *,
    metric: str = "iqm",
    reps: int = CURVE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
) -> Curve:
    """``metric`` (one of metrics.AGGREGATES) per step of (n_runs, n_games, n_steps) scores.

    Steps where some game has no run are skipped: an aggregate over a changing set of games
    would move for reasons other than learning.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3 or scores.shape[2] != len(steps):
        raise ValueError(f"expected (runs, games, {len(steps)}) scores, got {scores.shape}")
    if metric not in metrics.AGGREGATES:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(metrics.AGGREGATES)}")
    k = metrics.AGGREGATES.index(metric)
    kept, est, low, high, runs = [], [], [], [], []
    for t, step in enumerate(steps):
        matrix = scores[:, :, t]
        if np.isnan(matrix).all(axis=0).any():
            continue
        strata = Strata.from_matrix(matrix)
        point = np.array([metrics.aggregates(matrix)[m] for m in metrics.AGGREGATES])
        lo, hi = interval(
            metrics.AggregateKernel(strata),
            [strata.sizes],
            point,
            reps=reps,
            seed=seed,
            stream=f"{stream}@{int(step)}",
            level=level,
        )
        kept.append(step)
        est.append(point[k])
        low.append(lo[k])
        high.append(hi[k])
        runs.append(int(strata.sizes.sum()))
    return Curve(np.array(kept), np.array(est), np.array(low), np.array(high), np.array(runs))
