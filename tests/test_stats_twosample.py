"""Two independent sets of runs (``bench.stats.twosample``): permutation masks and trimmed
means against a direct computation, exact p-values of a hand-made game, point estimates, and
the false-"differs" rate of reproductions resampled from the published DER runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench.env.games import games
from bench.report.baselines import load_baseline
from bench.report.scores import final_scores, score_matrix
from bench.stats import metrics
from bench.stats.paired import holm
from bench.stats.twosample import _columns, _Permuter, permutation_test, two_sample

GAMES = list(games())


def der_matrix() -> np.ndarray:
    """The published DER runs, human-normalized: (100, 26)."""
    final = final_scores(load_baseline("DER"))
    return score_matrix(final, "DER (published)", GAMES)


def resample(y: np.ndarray, runs: int, rng: np.random.Generator) -> np.ndarray:
    """``runs`` runs per game drawn with replacement from the runs of ``y``: (runs, n_games)."""
    return np.stack([rng.choice(col[~np.isnan(col)], runs) for col in y.T], axis=1)


def test_permuted_masks_and_trimmed_means_match_direct_computation() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.gamma(2.0, size=(9, 3))
    x[3, 1] = np.nan  # ragged
    perm = _Permuter(_columns(x), _columns(y))
    mask = perm.masks(np.random.default_rng(1), 4000)
    assert (np.add.reduceat(mask, perm.offsets[:-1], axis=1) == perm.n_x).all()
    # every position of a game is drawn into X equally often: n_x / n
    freq = mask[:, :13].mean(axis=0)
    assert np.allclose(freq, 4 / 13, atol=4 * np.sqrt(4 / 13 * 9 / 13 / 4000))
    iqm, means = perm.iqm_differences(mask[:20]), perm.mean_differences(mask[:20])
    for r in range(20):
        parts = [
            (perm.values[a:b][mask[r, a:b]], perm.values[a:b][~mask[r, a:b]])
            for a, b in zip(perm.offsets[:-1], perm.offsets[1:], strict=True)
        ]
        px, py = np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts])
        direct = stats.trim_mean(px, 0.25) - stats.trim_mean(py, 0.25)
        assert iqm[r] == pytest.approx(direct, abs=1e-12)
        assert means[r] == pytest.approx([p.mean() - q.mean() for p, q in parts], abs=1e-12)


def test_permutation_p_values_of_a_hand_made_game() -> None:
    # One game, X = [3], Y = [0, 1, 2]: |mean X - mean Y| = 2; of the 4 equally likely
    # splits, X = 3 and X = 0 reach 2, so the exact p-value is 1/2. A second game with X
    # and Y all equal can never differ: p = 1.
    x = np.array([[3.0, 5.0]])
    y = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]])
    p, p_iqm = permutation_test(x, y, permutations=4000, seed=1)
    assert p[0] == pytest.approx(0.5, abs=0.03)
    assert p[1] == 1.0
    assert 0 < p_iqm <= 1
    again, _ = permutation_test(x, y, permutations=4000, seed=1)
    assert np.array_equal(p, again)  # seeded


def test_two_sample_point_estimates() -> None:
    rng = np.random.default_rng(2)
    y = rng.gamma(2.0, 0.5, size=(30, 5))
    x = y[:8] + 0.1
    x[7, 2] = np.nan
    res = two_sample(x, y, reps=300, permutations=500, seed=0)
    agg = res.aggregates
    assert agg["iqm_difference"].estimate == pytest.approx(metrics.iqm(x) - metrics.iqm(y))
    assert agg["mean_difference"].estimate == pytest.approx(metrics.mean(x) - metrics.mean(y))
    assert agg["probability_of_improvement"].estimate == pytest.approx(
        metrics.probability_of_improvement(x, y)
    )
    for j, d in enumerate(res.per_game):
        col = x[:, j][~np.isnan(x[:, j])]
        assert (d.n_x, d.n_y) == (len(col), 30)
        assert d.difference.estimate == pytest.approx(col.mean() - y[:, j].mean())
        assert d.difference.low <= d.difference.estimate <= d.difference.high
        assert d.improvement.estimate == pytest.approx(
            metrics.probability_of_improvement(col[:, None], y[:, j : j + 1])
        )
    assert [d.p_holm for d in res.per_game] == pytest.approx(
        list(holm([d.p_value for d in res.per_game]))
    )


def test_false_differs_rate_is_at_most_nominal() -> None:
    """200 reproductions of 10 runs per game, each resampled (with replacement, seeded) from
    the published DER runs and tested against them. Under this null every verdict of
    "differs" is false. Bound: the 99.9% quantile of Binomial(n, 0.05), so the test fails
    by chance once in a thousand runs at most, if the level were exactly 5%."""
    y, rng, sims = der_matrix(), np.random.default_rng(7), 200
    p_games, p_iqm = [], []
    for k in range(sims):
        p, q = permutation_test(resample(y, 10, rng), y, permutations=1000, seed=k)
        p_games.append(p)
        p_iqm.append(q)
    p_games, p_iqm = np.array(p_games), np.array(p_iqm)
    per_game = int((p_games < 0.05).sum())  # unadjusted: each game's test at its level
    family = int(sum((holm(list(p)) < 0.05).any() for p in p_games))  # any game "differs"
    overall = int((p_iqm < 0.05).sum())
    assert per_game <= stats.binom.ppf(0.999, sims * 26, 0.05), per_game / (sims * 26)
    assert family <= stats.binom.ppf(0.999, sims, 0.05), family / sims
    assert overall <= stats.binom.ppf(0.999, sims, 0.05), overall / sims
