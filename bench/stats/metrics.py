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

from bench.stats.bootstrap import Strata

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
    if _full(x) and _full(y) and x.shape[1] == y.shape[1]:
        return float(rly.probability_of_improvement(x, y))
    return float(np.mean(improvement_per_game(x, y)))


def improvement_per_game(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """P(X > Y) in each game: the Mann-Whitney U over runs / (n_x n_y), ties 1/2.

    ``scores_x`` (n_runs_x, n_games) and ``scores_y`` (n_runs_y, n_games) -> (n_games,).
    """
    x, y = _matrix(scores_x), _matrix(scores_y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"X has {x.shape[1]} games and Y has {y.shape[1]}")
    return np.array(
        [
            _improvement_matrix(a[~np.isnan(a)], b[~np.isnan(b)]).mean()
            for a, b in zip(x.T, y.T, strict=True)
        ]
    )


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of present run x game scores above each tau; (n_runs, n_games), (T,) -> (T,)."""
    values = np.sort(_matrix(scores)[~np.isnan(scores)])
    return 1.0 - np.searchsorted(values, np.asarray(taus), side="right") / len(values)


# ---- batched versions, used as bootstrap kernels ------------------------------------------


class AggregateKernel:
    """Bootstrap kernel for the four aggregates and the per-game means of one algorithm.

    Called with counts (B, n_values) of how often each of ``strata.values`` was drawn, and
    the layout's game sizes, returns (B, 4 + n_games): iqm, median, mean, optimality gap,
    then the per-game means.

    Every statistic comes from the counts, never from gathered floats: per-game sums and the
    optimality gap are dot products of the counts, and the IQM comes from the counts in
    sorted order (see ``_trimmed_means``). ``window`` overrides the width
    of the sorted windows that the IQM searches first (tests use it to force the fallback).
    """

    def __init__(self, strata: Strata, gamma: float = 1.0, *, window: int | None = None) -> None:
        self.values = strata.values
        self.n = len(strata.values)
        self.gamma = gamma
        self.order = np.argsort(strata.values, kind="stable")
        self.sorted = strata.values[self.order]
        self.groups = _equal_size_groups(strata.sizes)
        self.windows = _Windows.build(strata, self.order, window)
        # The count-weighted sums every replicate needs, as rows of one matrix so that one
        # call computes them all: the capped scores (optimality gap), then the windows' two.
        linear = [np.minimum(strata.values, gamma)]
        if self.windows is not None:
            linear += [self.windows.packed, self.windows.middle]
        self.linear = np.array(linear)

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (cx,), (sz,) = c, sizes
        return self.from_counts(cx, sz, int(sz.sum()))

    def from_counts(self, c: np.ndarray, sizes: np.ndarray, draws: int) -> np.ndarray:
        """Statistics of B replicates given as counts (B, n_values) of ``draws`` draws each."""
        rows = c.shape[0]
        out = np.empty((rows, 4 + len(sizes)))
        means = out[:, 4:]
        for (a, b), (g, h), n in self.groups:
            means[:, g:h] = dot(c[:, a:b].reshape(rows, h - g, n), self.values[a:b].reshape(-1, n))
        means /= sizes
        linear = dot(c[:, None, :], self.linear)
        out[:, 0] = self._trimmed_means(c, draws, linear[:, 1:])
        out[:, 1] = _median_of_rows(means)
        out[:, 2] = means.mean(axis=1)
        out[:, 3] = self.gamma - linear[:, 0] / draws
        return out

    def _trimmed_means(self, c: np.ndarray, draws: int, linear: np.ndarray) -> np.ndarray:
        """The 25% trimmed mean of each replicate, as scipy's ``trim_mean`` on its draws.

        With C_i the number of draws at sorted positions before i, the sum of the x smallest
        draws is F(x) = sum_i v_i clip(x - C_i, 0, c_i), and the trimmed mean is
        (F(hi) - F(lo)) / (hi - lo) with lo = int(draws / 4), hi = draws - lo. Only the
        positions where C crosses lo and hi need the running count C, and those lie, but for
        a fluctuation of ``WINDOW_SIGMAS`` standard deviations, in two fixed windows around
        lo and hi: F is computed there, plus a dot product for the fully kept positions
        between the windows (``linear``: the windows' two dot products, (B, 2)). The rare
        rows whose crossing falls outside a window take the exact full path, so the result
        never depends on the window.
        """
        lo = int(0.25 * draws)
        hi = draws - lo
        w = self.windows
        if w is None or draws != self.n:
            return _trimmed_full(c, self.order, self.sorted, lo, hi) / (hi - lo)
        # Both counts below the window starts come from one exact dot product: they are
        # integers below 2**w.shift, so packing them as low + high * 2**shift loses nothing.
        below_hi = np.floor(linear[:, 0] / 2.0**w.shift)
        below_lo = linear[:, 0] - below_hi * 2.0**w.shift
        drawn = c[:, w.cols]  # the lo window's positions, then the hi window's
        k = w.lo_size
        room = np.cumsum(drawn, axis=1)
        in_lo = room[:, k - 1].copy()  # room is overwritten below
        in_hi = room[:, -1] - in_lo
        ok = (below_lo <= lo) & (lo <= below_lo + in_lo)
        ok &= (below_hi <= hi) & (hi <= below_hi + in_hi)
        # room_i = x - (draws before position i): how many of position i's draws F(x) takes,
        # once clipped to [0, drawn_i].
        np.subtract(room, drawn, out=room)
        np.subtract((lo - below_lo)[:, None], room[:, :k], out=room[:, :k])
        np.subtract((hi - below_hi + in_lo)[:, None], room[:, k:], out=room[:, k:])
        np.maximum(room, 0.0, out=room)
        np.minimum(room, drawn, out=room)
        out = linear[:, 1] + dot(room, w.signed)
        bad = np.flatnonzero(~ok)
        if len(bad):
            out[bad] = _trimmed_full(c[bad], self.order, self.sorted, lo, hi)
        return out / (hi - lo)


# Half-width of the IQM's sorted windows, in standard deviations of the count of draws below
# a position: wider windows cost time in every replicate, narrower ones send more replicates
# to the exact full path (at 4.5, about one replicate in 70,000).
WINDOW_SIGMAS = 4.5


class _Windows:
    """Sorted positions around the IQM's cut points, for ``AggregateKernel._trimmed_means``."""

    def __init__(self, n: int, order: np.ndarray, values: np.ndarray, half: list[int]) -> None:
        lo = int(0.25 * n)
        hi = n - lo
        a1, b1 = max(0, lo - half[0]), min(n, lo + half[0])
        a2, b2 = max(0, hi - half[1]), min(n, hi + half[1])
        self.cols = np.concatenate([order[a1:b1], order[a2:b2]])
        self.lo_size = b1 - a1
        # F(hi) - F(lo): the lo window's part counts negatively.
        self.signed = values[self.cols] * np.where(np.arange(len(self.cols)) < b1 - a1, -1, 1)
        self.shift = int(n).bit_length()
        self.packed = np.zeros(n)
        self.packed[order[:a1]] += 1.0
        self.packed[order[:a2]] += 2.0**self.shift
        self.middle = np.zeros(n)
        self.middle[order[a1:a2]] = values[order[a1:a2]]

    @classmethod
    def build(cls, strata: Strata, order: np.ndarray, half: int | None) -> _Windows | None:
        """Windows of ``WINDOW_SIGMAS`` standard deviations, or None when they would cover
        much of the positions anyway (small matrices take the full path)."""
        n = len(strata.values)
        lo = int(0.25 * n)
        cuts = (lo, n - lo)
        if half is None:
            # The count of draws below sorted position p is a sum over games of binomials
            # (n_g, k_g(p) / n_g), k_g(p) being game g's runs among the first p positions:
            # its mean is p and its variance sum_g k_g (n_g - k_g) / n_g.
            game = np.repeat(np.arange(len(strata.sizes)), strata.sizes)[order]
            below = np.zeros((n + 1, len(strata.sizes)))
            below[np.arange(1, n + 1), game] = 1.0
            below = np.cumsum(below, axis=0)
            sd = np.sqrt((below * (strata.sizes - below) / strata.sizes).sum(axis=1))
            reach = int(np.ceil(WINDOW_SIGMAS * sd.max())) + 1
            halves = [
                int(np.ceil(WINDOW_SIGMAS * sd[max(0, x - reach) : x + reach + 1].max())) + 2
                for x in cuts
            ]
        else:
            halves = [half, half]
        # Past 2**26 values the packed counts would no longer be exact in float64.
        if 2 * sum(halves) >= n // 2 or n >= 2**26:
            return None
        return cls(n, order, strata.values, halves)


def _trimmed_full(
    c: np.ndarray, order: np.ndarray, sorted_values: np.ndarray, lo: int, hi: int
) -> np.ndarray:
    """Sum of the draws ranked lo..hi-1 of each row of counts c (B, n): F(hi) - F(lo)."""
    cs = np.take(c, order, axis=1)
    before = np.cumsum(cs, axis=1) - cs
    weight = np.clip(hi - before, 0.0, cs) - np.clip(lo - before, 0.0, cs)
    return dot(weight, sorted_values)


def _equal_size_groups(sizes: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int], int]]:
    """Runs of consecutive games with equal run counts: ((first, stop) pooled positions,
    (first, stop) games, runs per game); one run when the matrix is rectangular."""
    groups = []
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    g = 0
    while g < len(sizes):
        h = g + 1
        while h < len(sizes) and sizes[h] == sizes[g]:
            h += 1
        groups.append(((int(offsets[g]), int(offsets[h])), (g, h), int(sizes[g])))
        g = h
    return groups


def _median_of_rows(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=1)`` for (B, k) without NaNs; sorting short rows beats its
    partition."""
    k = x.shape[1]
    x = np.sort(x, axis=1)
    return (x[:, (k - 1) // 2] + x[:, k // 2]) / 2


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products over the last axis, broadcast over the others: (..., n), (..., n) -> (...).

    ``np.vecdot`` (numpy >= 2) calls the BLAS dot once per row: several times faster than
    ``einsum`` on count matrices, and each value depends on its row only.
    """
    if _vecdot is None:
        return np.einsum("...n,...n->...", a, b)
    return _vecdot(a, b)


_vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0


class ImprovementKernel:
    """Bootstrap kernel for P(X > Y) with X and Y resampled independently within each game.

    Uses per-game count vectors: U_g = c_x^T M_g c_y with M_g from ``_improvement_matrix``,
    so a replicate costs a small matrix product instead of a Mann-Whitney test. Counts are
    over the original positions, so any layout (a jackknife's) works. Returns (B, 1); the
    per-game values are ``per_game``.
    """

    def __init__(self, x: Strata, y: Strata) -> None:
        self.x, self.y = x, y
        self.m = [
            _improvement_matrix(x.values[a:b], y.values[c:d])
            for a, b, c, d in zip(
                x.offsets[:-1], x.offsets[1:], y.offsets[:-1], y.offsets[1:], strict=True
            )
        ]

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        return self.per_game(c, sizes).mean(axis=1, keepdims=True)

    def per_game(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        """P(X > Y) of each game in each replicate: (B, n_games)."""
        cx, cy = c
        out = np.empty((cx.shape[0], len(self.m)))
        for g, m in enumerate(self.m):
            a, b = self.x.offsets[g], self.x.offsets[g + 1]
            e, f = self.y.offsets[g], self.y.offsets[g + 1]
            u = ((cx[:, a:b] @ m) * cy[:, e:f]).sum(axis=1)
            out[:, g] = u / (sizes[0][g] * sizes[1][g])
        return out


class ProfileKernel:
    """Bootstrap kernel for a performance profile on a tau grid; returns (B, T)."""

    def __init__(self, strata: Strata, taus: np.ndarray) -> None:
        self.above = (strata.values[:, None] > np.asarray(taus)[None, :]).astype(np.float64)

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (cx,), (sz,) = c, sizes
        return cx @ self.above / sz.sum()
