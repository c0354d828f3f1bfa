"""Point estimates with stratified-bootstrap confidence intervals.

Every function takes human-normalized score matrices of shape (n_runs, n_games) with NaN for
missing runs, and a ``seed`` and ``stream`` name that fix the random numbers (see
``bench.stats.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.stats import metrics
from bench.stats.bootstrap import Method, Strata, interval

AGGREGATE_REPS = 50_000  # as Agarwal et al. 2021 for aggregate metrics
PROFILE_REPS = 2_000  # as rliable's performance profiles


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class AggregateEstimates:
    """The four aggregates of one algorithm, and its per-game mean scores, each with a CI."""

    aggregates: dict[str, Estimate]  # keyed as metrics.AGGREGATES
    per_game: list[Estimate]  # one per game column, the mean over that game's runs
    n_runs: int  # present run x game scores
    n_games: int


def aggregate_estimates(
    scores: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> AggregateEstimates:
    """IQM, median, mean, optimality gap and per-game means of a (n_runs, n_games) matrix.

    One set of stratified-bootstrap replicates serves all statistics (their intervals are
    marginal, so sharing replicates changes none of them in distribution).
    """
    strata = Strata.from_matrix(scores)
    point = np.array(
        [metrics.aggregates(scores)[m] for m in metrics.AGGREGATES]
        + list(metrics.game_means(scores))
    )
    kernel = metrics.AggregateKernel(strata)
    low, high = interval(
        kernel,
        [strata.sizes],
        point,
        reps=reps,
        seed=seed,
        stream=stream,
        level=level,
        method=method,
    )
    ests = [
        Estimate(float(p), float(lo), float(hi)) for p, lo, hi in zip(point, low, high, strict=True)
    ]
    k = len(metrics.AGGREGATES)
    return AggregateEstimates(
        aggregates=dict(zip(metrics.AGGREGATES, ests[:k], strict=True)),
        per_game=ests[k:],
        n_runs=int(strata.sizes.sum()),
        n_games=len(strata.sizes),
    )


class GameMeansKernel:
    """Bootstrap kernel for the per-game means only; returns (B, n_games)."""

    def __init__(self, strata: Strata) -> None:
        self.values = strata.values
        self.starts = strata.offsets[:-1]

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (cx,), (sz,) = c, sizes
        return np.add.reduceat(cx * self.values, self.starts, axis=1) / sz


def game_mean_estimates(
    scores: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> list[Estimate]:
    """Mean over runs of each game of a (n_runs, n_games) matrix, with CIs; one per game."""
    strata = Strata.from_matrix(scores)
    point = metrics.game_means(scores)
    low, high = interval(
        GameMeansKernel(strata),
        [strata.sizes],
        point,
        reps=reps,
        seed=seed,
        stream=stream,
        level=level,
        method=method,
    )
    return [
        Estimate(float(p), float(lo), float(hi)) for p, lo, hi in zip(point, low, high, strict=True)
    ]


def mean_estimates(
    scores: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> Estimate:
    """Mean over games of the per-game means of a (n_runs, n_games) matrix, with a CI."""
    strata = Strata.from_matrix(scores)
    point = np.array([metrics.mean(scores)])
    low, high = interval(
        MeanKernel(strata),
        [strata.sizes],
        point,
        reps=reps,
        seed=seed,
        stream=stream,
        level=level,
        method=method,
    )
    return Estimate(float(point[0]), float(low[0]), float(high[0]))


class MeanKernel(GameMeansKernel):
    """Bootstrap kernel for the mean over games of the per-game means; returns (B, 1)."""

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        return super().__call__(c, sizes).mean(axis=1, keepdims=True)


def improvement_estimate(
    scores_x: np.ndarray,
    scores_y: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> Estimate:
    """P(X > Y) with a CI; X and Y resampled independently within each game.

    ``scores_x`` (n_runs_x, n_games) and ``scores_y`` (n_runs_y, n_games), same game columns.
    """
    x, y = Strata.from_matrix(scores_x), Strata.from_matrix(scores_y)
    point = metrics.probability_of_improvement(scores_x, scores_y)
    low, high = interval(
        metrics.ImprovementKernel(x, y),
        [x.sizes, y.sizes],
        np.array([point]),
        reps=reps,
        seed=seed,
        stream=stream,
        level=level,
        method=method,
    )
    return Estimate(point, float(low[0]), float(high[0]))


def profile_estimates(
    scores: np.ndarray,
    taus: np.ndarray,
    *,
    reps: int = PROFILE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Performance profile on ``taus`` (T,) with pointwise CIs: (profile, low, high), each (T,)."""
    strata = Strata.from_matrix(scores)
    point = metrics.performance_profile(scores, taus)
    low, high = interval(
        metrics.ProfileKernel(strata, taus),
        [strata.sizes],
        point,
        reps=reps,
        seed=seed,
        stream=stream,
        level=level,
    )
    return point, low, high
