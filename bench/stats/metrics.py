"""Aggregate metrics of Agarwal et al. 2021 over ragged runs x games score matrices.

A score matrix has shape (n_runs, n_games) and holds human-normalized final scores; NaN marks
a missing run, so games may have different numbers of runs (ragged seed counts). On a full
matrix every metric equals rliable's (``rliable.metrics``); on a ragged one:

- median and mean are over the per-game means (each game counts once);
- IQM and optimality gap are over all present run x game scores, pooled (a game with more
  runs carries more scores, as in rliable's definition over the flattened matrix).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rliable import metrics as rly
from scipy import stats

from bench.stats.bootstrap import Strata, buffer

AGGREGATES = ("iqm", "median", "mean", "optimality_gap")


def _matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"expected a (runs, games) matrix, got shape {scores.shape}")
    if scores.shape[1] == 0 or np.isnan(scores).all(axis=0).any():
        raise ValueError("every game needs at least one run")
    return scores


def _full(scores: np.ndarray) -> bool:
    return not np.isnan(scores).any()


def game_means(scores: np.ndarray) -> np.ndarray:
    """Per-game mean over present runs: (n_runs, n_games) -> (n_games,)."""
    return np.nanmean(_matrix(scores), axis=0)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the 25% trimmed mean of all present scores; (n_runs, n_games) -> ()."""
    scores = _matrix(scores)
    if _full(scores):
        return float(rly.aggregate_iqm(scores))
    return float(stats.trim_mean(scores[~np.isnan(scores)], 0.25))


def median(scores: np.ndarray) -> float:
    """Median over games of the per-game mean score; (n_runs, n_games) -> ()."""
    scores = _matrix(scores)
    if _full(scores):
        return float(rly.aggregate_median(scores))
    return float(np.median(game_means(scores)))


def mean(scores: np.ndarray) -> float:
    """Mean over games of the per-game mean score; (n_runs, n_games) -> ()."""
    scores = _matrix(scores)
    if _full(scores):
        return float(rly.aggregate_mean(scores))
    return float(np.mean(game_means(scores)))


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> float:
    """gamma - mean(min(score, gamma)) over all present scores; (n_runs, n_games) -> ()."""
    scores = _matrix(scores)
    if _full(scores):
        return float(rly.aggregate_optimality_gap(scores, gamma))
    return float(gamma - np.mean(np.minimum(scores[~np.isnan(scores)], gamma)))


def aggregates(scores: np.ndarray) -> dict[str, float]:
    """All four aggregates of a (n_runs, n_games) matrix, keyed as in ``AGGREGATES``."""
    return {
        "iqm": iqm(scores),
        "median": median(scores),
        "mean": mean(scores),
        "optimality_gap": optimality_gap(scores),
    }


def _improvement_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n_x,), (n_y,) -> (n_x, n_y): 1 where x_i > y_j, 1/2 on ties, else 0."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y): per game the Mann-Whitney U over runs / (n_x n_y), ties 1/2, mean over games.

    ``scores_x`` (n_runs_x, n_games) and ``scores_y`` (n_runs_y, n_games), same games in the
    same column order; run counts may differ, and NaN marks a missing run.
    """
    x, y = _matrix(scores_x), _matrix(scores_y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"X has {x.shape[1]} games and Y has {y.shape[1]}")
    if _full(x) and _full(y):
        return float(rly.probability_of_improvement(x, y))
    per_game = [
        _improvement_matrix(a[~np.isnan(a)], b[~np.isnan(b)]).mean()
        for a, b in zip(x.T, y.T, strict=True)
    ]
    return float(np.mean(per_game))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of present run x game scores above each tau; (n_runs, n_games), (T,) -> (T,)."""
    values = np.sort(_matrix(scores)[~np.isnan(scores)])
    return 1.0 - np.searchsorted(values, np.asarray(taus), side="right") / len(values)


# ---- batched versions, used as bootstrap kernels ------------------------------------------


class AggregateKernel:
    """Bootstrap kernel for the four aggregates and the per-game means of one algorithm.

    Called with indices (B, n_total) into ``strata.values`` and the layout's game sizes,
    returns (B, 4 + n_games): iqm, median, mean, optimality gap, then the per-game means.
    The IQM selects on 16-bit ranks (two single-kth partitions) instead of on the values:
    about 4x less work than partitioning float64 rows.
    """

    def __init__(self, strata: Strata, gamma: float = 1.0) -> None:
        self.values = strata.values
        self.gamma = gamma
        order = np.argsort(strata.values, kind="stable")
        rank_dtype = np.int16 if len(order) < 2**15 else np.int32
        self.rank = np.empty(len(order), dtype=rank_dtype)
        self.rank[order] = np.arange(len(order), dtype=rank_dtype)
        self.sorted = strata.values[order]

    def __call__(self, idx: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (ix,), (sz,) = idx, sizes
        starts = np.concatenate([[0], np.cumsum(sz)[:-1]])
        out = np.empty((ix.shape[0], 4 + len(sz)))
        # mode="clip" skips the bounds check (indices are valid by construction) and lets
        # take write straight into the per-thread buffer.
        s = np.take(self.values, ix, out=buffer("values", ix.shape, np.float64), mode="clip")
        means = np.add.reduceat(s, starts, axis=1) / sz
        out[:, 3] = self.gamma - np.minimum(s, self.gamma, out=s).mean(axis=1)
        ranks = np.take(self.rank, ix, out=buffer("ranks", ix.shape, self.rank.dtype), mode="clip")
        out[:, 0] = trimmed_mean_of_ranks(ranks, self.sorted)
        out[:, 1] = np.median(means, axis=1)
        out[:, 2] = means.mean(axis=1)
        out[:, 4:] = means
        return out


def trimmed_mean_of_ranks(ranks: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """25% trimmed mean per row, as scipy's ``trim_mean`` (cuts int(0.25 n) at each end).

    ``ranks`` (B, n) are positions into ``sorted_values`` (ascending); returns (B,).
    """
    n = ranks.shape[1]
    lo = int(0.25 * n)
    hi = n - lo
    upper = np.partition(ranks, lo, axis=1)[:, lo:] if lo > 0 else ranks
    middle = np.partition(upper, hi - lo - 1, axis=1)[:, : hi - lo] if hi < n else upper
    return np.take(sorted_values, middle).sum(axis=1) / (hi - lo)


class ImprovementKernel:
    """Bootstrap kernel for P(X > Y) with X and Y resampled independently within each game.

    Uses per-game count vectors: U_g = c_x^T M_g c_y with M_g from ``_improvement_matrix``,
    so a replicate costs a small matrix product instead of a Mann-Whitney test.
    Returns (B, 1).
    """

    def __init__(self, x: Strata, y: Strata) -> None:
        self.x, self.y = x, y
        self.m = [
            _improvement_matrix(x.values[a:b], y.values[c:d])
            for a, b, c, d in zip(
                x.offsets[:-1], x.offsets[1:], y.offsets[:-1], y.offsets[1:], strict=True
            )
        ]

    def __call__(self, idx: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        ix, iy = idx
        # Counts are over the original positions, so any layout (a jackknife's) works.
        cx, cy = counts(ix, int(self.x.sizes.sum())), counts(iy, int(self.y.sizes.sum()))
        total = np.zeros(ix.shape[0])
        for g, m in enumerate(self.m):
            a, b = self.x.offsets[g], self.x.offsets[g + 1]
            c, d = self.y.offsets[g], self.y.offsets[g + 1]
            u = ((cx[:, a:b] @ m) * cy[:, c:d]).sum(axis=1)
            total += u / (sizes[0][g] * sizes[1][g])
        return (total / len(self.m))[:, None]


def counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of n items was drawn in each row: (B, k) indices -> (B, n) float64."""
    rows = idx.shape[0]
    flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


class ProfileKernel:
    """Bootstrap kernel for a performance profile on a tau grid; returns (B, T)."""

    def __init__(self, strata: Strata, taus: np.ndarray) -> None:
        self.above = (strata.values[:, None] > np.asarray(taus)[None, :]).astype(np.float64)
        self.n = len(strata.values)

    def __call__(self, idx: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (ix,) = idx
        return counts(ix, self.n) @ self.above / ix.shape[1]
