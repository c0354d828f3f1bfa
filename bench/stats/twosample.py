"""Two independent sets of runs on the same games: is X (a reproduction) consistent with Y
(published runs)?

Nothing pairs a run of X with a run of Y (they share games, not seeds), so the bootstrap
resamples X and Y independently, each stratified by game, and the tests permute the X/Y labels
within each game. Matrices have shape (n_runs, n_games), NaN for a missing run; X and Y may
have different numbers of runs per game.

The tests are permutation tests: under the null hypothesis that, in every game, X's runs and
Y's runs come from one distribution, the labels are exchangeable within a game, so the
p-values ``(1 + #{|T*| >= |T|}) / (1 + permutations)`` are valid at any sample size (a
percentile bootstrap interval is too narrow with a handful of runs per game; the intervals
here describe the size of a difference, the permutation p-values decide it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from bench.stats import metrics
from bench.stats.bootstrap import Method, Strata, block_rng, interval
from bench.stats.estimates import AGGREGATE_REPS, Estimate
from bench.stats.paired import holm

PERMUTATIONS = 10_000  # smallest p-value 1e-4, well below Holm's 0.05 / 26 for 26 games
# Permutation masks held at once per block: 2**20 values of X and Y together.
PERMUTATION_BLOCK = 2**20

TWO_SAMPLE_METRICS = (
    "iqm_difference",  # IQM(X) - IQM(Y)
    "median_difference",
    "mean_difference",
    "optimality_gap_difference",  # OG(X) - OG(Y): negative means X is better
    "probability_of_improvement",  # P(X > Y), Mann-Whitney per game, mean over games
)


@dataclass(frozen=True)
class GameDifference:
    """One game: mean X - mean Y and P(X > Y) with bootstrap CIs, and the permutation test."""

    n_x: int
    n_y: int
    mean_x: float
    mean_y: float
    difference: Estimate  # mean X - mean Y
    improvement: Estimate  # P(X > Y) in this game
    p_value: float  # two-sided permutation test of the difference of means
    p_holm: float  # Holm-adjusted over the games of the comparison


@dataclass(frozen=True)
class TwoSampleComparison:
    aggregates: dict[str, Estimate]  # keyed as TWO_SAMPLE_METRICS
    iqm_p_value: float  # two-sided permutation test of the IQM difference
    per_game: list[GameDifference]  # one per game column
    permutations: int


class TwoSampleKernel:
    """Bootstrap kernel over two independently resampled samples; returns (B, 5 + 2 G):
    the four aggregate differences X - Y, P(X > Y) over games, then the G per-game mean
    differences and the G per-game P(X > Y)."""

    def __init__(self, x: Strata, y: Strata) -> None:
        self.x = metrics.AggregateKernel(x)
        self.y = metrics.AggregateKernel(y)
        self.improvement = metrics.ImprovementKernel(x, y)

    def __call__(self, c: Sequence[np.ndarray], sizes: Sequence[np.ndarray]) -> np.ndarray:
        (cx, cy), (sx, sy) = c, sizes
        kx = self.x.from_counts(cx, sx, int(sx.sum()))
        ky = self.y.from_counts(cy, sy, int(sy.sum()))
        games = self.improvement.per_game(c, sizes)
        return np.concatenate(
            [
                kx[:, :4] - ky[:, :4],
                games.mean(axis=1, keepdims=True),
                kx[:, 4:] - ky[:, 4:],
                games,
            ],
            axis=1,
        )


def _columns(scores: np.ndarray) -> list[np.ndarray]:
    """The present runs of each game: (n_runs, n_games) -> n_games arrays."""
    return [col[~np.isnan(col)] for col in np.asarray(scores, dtype=np.float64).T]


def _exceed(t: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """|t| >= |observed|, with a tolerance for sums taken in another order: (B, K) -> (B, K)."""
    ref = np.abs(observed)
    return np.abs(t) >= ref - 1e-12 * (1.0 + ref)


class _Permuter:
    """Draws label permutations within games and evaluates the tests' statistics on them.

    X and Y of each game are pooled (layout: game 0's X runs then its Y runs, then game 1's
    ...); a permutation is a mask over the pooled values, True where a value goes to X, with
    as many per game as X has runs there. The trimmed means walk the values once in sorted
    order, counting each side's ranks (``_trimmed_differences``): no replicate is sorted.
    """

    def __init__(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        self.n_x = np.array([len(a) for a in xs], dtype=np.int64)
        self.n = self.n_x + np.array([len(b) for b in ys], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n)])
        self.values = np.concatenate([np.concatenate([a, b]) for a, b in zip(xs, ys, strict=True)])
        self.totals = np.add.reduceat(self.values, self.offsets[:-1])
        self.order = np.argsort(self.values, kind="stable")
        self.sorted = self.values[self.order]

    def masks(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """(rows, n_values) bool: each game's X positions, uniform among its subsets."""
        uniforms = rng.random((rows, int(self.n_x.sum())))
        out = np.zeros((rows, len(self.values)), dtype=np.bool_)
        _choose(uniforms, self.n_x, self.offsets, out)
        return out

    def mean_differences(self, mask: np.ndarray) -> np.ndarray:
        """Per-game mean X - mean Y of each permutation: (rows, n_games)."""
        sum_x = np.add.reduceat(mask * self.values, self.offsets[:-1], axis=1)
        return sum_x / self.n_x - (self.totals - sum_x) / (self.n - self.n_x)

    def iqm_differences(self, mask: np.ndarray) -> np.ndarray:
        """IQM(X) - IQM(Y) of each permutation, as scipy's ``trim_mean(., 0.25)``: (rows,)."""
        out = np.empty(mask.shape[0])
        _trimmed_differences(mask, self.order, self.sorted, int(self.n_x.sum()), out)
        return out


@numba.njit(nogil=True, cache=True)
def _choose(uniforms: np.ndarray, n_x: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Mark n_x[g] positions of each game g in each row of ``out``: a partial Fisher-Yates
    shuffle of the game's positions driven by ``uniforms`` (rows, sum(n_x))."""
    scratch = np.empty(int(np.max(offsets[1:] - offsets[:-1])), np.int64)
    for r in range(out.shape[0]):
        used = 0
        for g in range(len(n_x)):
            a, n = offsets[g], offsets[g + 1] - offsets[g]
            for i in range(n):
                scratch[i] = i
            for i in range(n_x[g]):
                j = i + int(uniforms[r, used + i] * (n - i))
                scratch[i], scratch[j] = scratch[j], scratch[i]
                out[r, a + scratch[i]] = True
            used += n_x[g]


@numba.njit(nogil=True, cache=True)
def _trimmed_differences(
    mask: np.ndarray, order: np.ndarray, sorted_values: np.ndarray, n_x: int, out: np.ndarray
) -> None:
    """25% trimmed mean of the X values minus that of the Y values, for each row of ``mask``
    (rows, n) over values given in sorted order (``order``, ``sorted_values``)."""
    n = len(order)
    lo_x, lo_y = n_x // 4, (n - n_x) // 4
    hi_x, hi_y = n_x - lo_x, n - n_x - lo_y
    for r in range(mask.shape[0]):
        cx, cy, sx, sy = 0, 0, 0.0, 0.0
        for i in range(n):
            if mask[r, order[i]]:
                if lo_x <= cx < hi_x:
                    sx += sorted_values[i]
                cx += 1
            else:
                if lo_y <= cy < hi_y:
                    sy += sorted_values[i]
                cy += 1
        out[r] = sx / (hi_x - lo_x) - sy / (hi_y - lo_y)


def permutation_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    stream: str = "",
) -> tuple[np.ndarray, float]:
    """Two-sided permutation tests of X against Y, labels permuted within each game.

    Returns the p-values of the per-game differences of means, shape (n_games,), and the
    p-value of the IQM difference (one statistic over all games). Every test uses the same
    permutations, drawn in blocks from the streams ``stream/permutation``.
    """
    xs, ys = _columns(x), _columns(y)
    if len(xs) != len(ys) or any(len(a) == 0 or len(b) == 0 for a, b in zip(xs, ys, strict=False)):
        raise ValueError("X and Y need the same games, each with at least one run in both")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    perm = _Permuter(xs, ys)
    observed = np.array([a.mean() - b.mean() for a, b in zip(xs, ys, strict=True)])
    observed_iqm = np.array([metrics.iqm(x) - metrics.iqm(y)])
    per_block = max(1, PERMUTATION_BLOCK // len(perm.values))
    hits, hits_iqm, done, block = np.zeros(len(xs)), 0, 0, 0
    while done < permutations:
        rows = min(per_block, permutations - done)
        mask = perm.masks(block_rng(seed, f"{stream}/permutation", block), rows)
        hits += _exceed(perm.mean_differences(mask), observed).sum(axis=0)
        hits_iqm += int(_exceed(perm.iqm_differences(mask)[:, None], observed_iqm).sum())
        done, block = done + rows, block + 1
    return (1.0 + hits) / (1.0 + permutations), (1.0 + hits_iqm) / (1.0 + permutations)


def two_sample(
    x: np.ndarray,
    y: np.ndarray,
    *,
    reps: int = AGGREGATE_REPS,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    stream: str = "",
    level: float = 0.95,
    method: Method = "percentile",
) -> TwoSampleComparison:
    """X against Y, both (n_runs, n_games) with the same game columns: the aggregate and
    per-game differences with stratified-bootstrap CIs (X and Y resampled independently),
    and permutation p-values, Holm-adjusted over the games."""
    sx, sy = Strata.from_matrix(x), Strata.from_matrix(y)
    per_game_poi = metrics.improvement_per_game(x, y)
    point = np.array(
        [metrics.aggregates(x)[m] - metrics.aggregates(y)[m] for m in metrics.AGGREGATES]
        + [float(per_game_poi.mean())]
        + list(metrics.game_means(x) - metrics.game_means(y))
        + list(per_game_poi)
    )
    low, high = interval(
        TwoSampleKernel(sx, sy),
        [sx.sizes, sy.sizes],
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
    p_games, p_iqm = permutation_test(x, y, permutations=permutations, seed=seed, stream=stream)
    k, g = len(TWO_SAMPLE_METRICS), len(sx.sizes)
    adjusted = holm(p_games.tolist())
    means_x, means_y = metrics.game_means(x), metrics.game_means(y)
    per_game = [
        GameDifference(
            n_x=int(sx.sizes[j]),
            n_y=int(sy.sizes[j]),
            mean_x=float(means_x[j]),
            mean_y=float(means_y[j]),
            difference=ests[k + j],
            improvement=ests[k + g + j],
            p_value=float(p_games[j]),
            p_holm=float(adjusted[j]),
        )
        for j in range(g)
    ]
    return TwoSampleComparison(
        aggregates=dict(zip(TWO_SAMPLE_METRICS, ests[:k], strict=True)),
        iqm_p_value=float(p_iqm),
        per_game=per_game,
        permutations=permutations,
    )
