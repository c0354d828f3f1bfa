"""Paired comparisons of two conditions run on the same (game, seed) pairs.

"Does audio help?" is answered on pairs: condition A and condition B share the game and the
seed, so the seed's luck cancels in the difference d = B - A. The bootstrap resamples pairs
within each game (the same pair for both conditions), which keeps that pairing.

Matrices have shape (n_seeds, n_games): row i of A and row i of B are the same seed; NaN
marks a missing run, and a pair with either side missing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy import stats

from bench.stats import metrics
from bench.stats.bootstrap import Method, Strata, interval
from bench.stats.estimates import (
    AGGREGATE_REPS,
    Estimate,
    improvement_estimate,
    mean_estimates,
)

PAIRED_METRICS = (
    "iqm_difference",  # IQM(B) - IQM(A)
    "median_difference",
    "mean_difference",
    "optimality_gap_difference",  # OG(B) - OG(A): negative means B is better
    "iqm_of_paired_differences",  # IQM over all pairs of B - A
    "paired_win_rate",  # fraction of pairs with B > A (ties 1/2), mean over games
    "probability_of_improvement",  # P(B > A), Mann-Whitney per game, mean over games
)


class _Options(TypedDict):
    """The bootstrap options every interval of one comparison shares."""

    reps: int
    seed: int
    level: float
    method: Method


@dataclass(frozen=True)
class GameComparison:
    """One game: the mean paired difference B - A with a bootstrap CI, and Wilcoxon's test."""

    n_pairs: int
    mean_a: float
    mean_b: float
    difference: Estimate
    wilcoxon_statistic: float
    p_value: float  # two-sided Wilcoxon signed-rank on the paired differences
    p_holm: float  # Holm-adjusted over the games of the comparison


@dataclass(frozen=True)
class PairedComparison:
    aggregates: dict[str, Estimate]  # keyed as PAIRED_METRICS
    per_game: list[GameComparison]  # one per game column
    n_pairs: int
    n_games: int


def paired_arrays(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop pairs with a missing side: (n_seeds, n_games) x 2 -> same shapes, NaN where dropped."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"A and B need the same (seeds, games) shape, got {a.shape} and {b.shape}")
    missing = np.isnan(a) | np.isnan(b)
    a, b = a.copy(), b.copy()
    a[missing] = np.nan
    b[missing] = np.nan
    return a, b


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of m p-values (controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def wilcoxon(differences: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of (n,) paired differences: (statistic, p-value).

    Zero differences are dropped (Wilcoxon's convention); with none left there is no
    evidence either way, so p = 1.
    """
    d = np.asarray(differences, dtype=np.float64)
    if np.count_nonzero(d) == 0:
        return 0.0, 1.0
    res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


class PairedKernel:
    """Bootstrap kernel: the same resampled pairs for A and B; returns (B, 5 + n_games).

    Columns: the four aggregate differences, the IQM of the paired differences, then the
    per-game mean differences.
    """

    def __init__(self, a: Strata, b: Strata) -> None:
        self.a = metrics.AggregateKernel(a)
        self.b = metrics.AggregateKernel(b)
        self.d = metrics.AggregateKernel(Strata(b.values - a.values, a.sizes))

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        # The three share the pairs' layout, so the counts of the drawn pairs serve them all.
        (cx,), (sz,) = c, sizes
        ka, kb, kd = (k.from_counts(cx, sz, int(sz.sum())) for k in (self.a, self.b, self.d))
        out = np.empty((ka.shape[0], 5 + ka.shape[1] - 4))
        out[:, :4] = kb[:, :4] - ka[:, :4]
        out[:, 4] = kd[:, 0]
        out[:, 5:] = kd[:, 4:]
        return out


def _wins(d: np.ndarray) -> np.ndarray:
    return (d > 0) + 0.5 * (d == 0)


def compare(
    a: np.ndarray,
    b: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> PairedComparison:
    """Paired comparison of B against A, both (n_seeds, n_games) with rows paired by seed."""
    a, b = paired_arrays(a, b)
    sa, sb = Strata.from_matrix(a), Strata.from_matrix(b)
    d = b - a
    point = np.array(
        [
            metrics.iqm(b) - metrics.iqm(a),
            metrics.median(b) - metrics.median(a),
            metrics.mean(b) - metrics.mean(a),
            metrics.optimality_gap(b) - metrics.optimality_gap(a),
            metrics.iqm(d),
            *metrics.game_means(d),
        ]
    )
    options = _Options(reps=reps, seed=seed, level=level, method=method)
    low, high = interval(PairedKernel(sa, sb), [sa.sizes], point, stream=stream, **options)
    ests = [
        Estimate(float(p), float(lo), float(hi)) for p, lo, hi in zip(point, low, high, strict=True)
    ]
    wins = mean_estimates(
        np.where(np.isnan(d), np.nan, _wins(d)), stream=f"{stream}/wins", **options
    )
    # P(B > A) compares runs of B with runs of A from any seed, as rliable defines it; its
    # interval resamples A and B independently: resampling pairs would weigh each seed's
    # own pair twice as much as in the estimate, and bias the interval upwards.
    poi = improvement_estimate(b, a, stream=f"{stream}/poi", **options)
    ests = ests[:5] + [wins, poi] + ests[5:]
    k = len(PAIRED_METRICS)
    tests = [wilcoxon(col[~np.isnan(col)]) for col in d.T]
    adjusted = holm([p for _, p in tests])
    per_game = [
        GameComparison(
            n_pairs=int(np.count_nonzero(~np.isnan(col))),
            mean_a=float(np.nanmean(ca)),
            mean_b=float(np.nanmean(cb)),
            difference=ests[k + g],
            wilcoxon_statistic=tests[g][0],
            p_value=tests[g][1],
            p_holm=float(adjusted[g]),
        )
        for g, (col, ca, cb) in enumerate(zip(d.T, a.T, b.T, strict=True))
    ]
    return PairedComparison(
        aggregates=dict(zip(PAIRED_METRICS, ests[:k], strict=True)),
        per_game=per_game,
        n_pairs=int(sa.sizes.sum()),
        n_games=len(sa.sizes),
    )
