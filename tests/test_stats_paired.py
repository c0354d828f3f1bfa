"""Paired comparisons and sample-efficiency curves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench.stats import metrics
from bench.stats.curves import sample_efficiency
from bench.stats.paired import compare, holm, wilcoxon


def _pairs(rng: np.random.Generator, effect: float, seeds: int = 10, games: int = 26):
    """Seed luck shared by both conditions (large), plus small independent noise."""
    luck = rng.gamma(2.0, 0.5, size=(seeds, games))
    a = luck + rng.normal(0, 0.1, size=luck.shape)
    b = luck + effect + rng.normal(0, 0.1, size=luck.shape)
    return a, b


def test_holm_hand_made() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm([0.02, 0.02]), [0.04, 0.04])


def test_wilcoxon_matches_scipy_and_handles_all_zero() -> None:
    d = np.array([0.5, -0.2, 0.3, 0.9, 0.1, 0.4])
    assert wilcoxon(d) == pytest.approx(tuple(stats.wilcoxon(d)))
    assert wilcoxon(np.zeros(5)) == (0.0, 1.0)


def test_known_effect_is_found() -> None:
    a, b = _pairs(np.random.default_rng(0), effect=0.2, seeds=20)
    res = compare(a, b, reps=2000, seed=0)
    for name in ("mean_difference", "iqm_of_paired_differences"):
        e = res.aggregates[name]
        assert 0 < e.low < e.estimate < e.high, name
    assert res.aggregates["mean_difference"].estimate == pytest.approx(np.mean(b - a))
    assert res.aggregates["iqm_of_paired_differences"].estimate == pytest.approx(
        stats.trim_mean((b - a).ravel(), 0.25)
    )
    assert res.aggregates["probability_of_improvement"].estimate == pytest.approx(
        metrics.probability_of_improvement(b, a)
    )
    # 20 pairs per game, effect 1.4 sd of the differences: nearly all games significant
    assert sum(g.p_holm < 0.05 for g in res.per_game) >= 20
    # With 10 pairs the exact test's smallest p (2 / 2**10) is above 0.05 / 26: Holm over
    # 26 games can never reject, however large the effect.
    res10 = compare(a[:10], b[:10] + 10, reps=200, seed=0)
    assert min(g.p_value for g in res10.per_game) == pytest.approx(2 / 2**10)
    assert all(g.p_holm > 0.05 for g in res10.per_game)
    # pairing matters: unpaired, seed luck (sd ~0.7) would swamp the effect
    assert res.aggregates["mean_difference"].high - res.aggregates["mean_difference"].low < 0.05


def test_no_effect_rejects_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    n_sets, seeds = 400, 10
    d = rng.normal(size=(n_sets, 26, seeds))
    p = stats.wilcoxon(d, axis=2).pvalue  # the same test as ``wilcoxon``, vectorized
    rate = np.mean(p < 0.05)
    assert 0.03 < rate < 0.07  # exact test, n=10: attains 0.049 at most
    family = np.mean([np.any(holm(row) < 0.05) for row in p])
    assert family <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_sets)


def test_no_effect_bootstrap_covers_zero() -> None:
    rng = np.random.default_rng(2)
    misses = 0
    for i in range(60):
        a, b = _pairs(rng, effect=0.0, seeds=5, games=6)
        e = compare(a, b, reps=400, seed=i).aggregates["mean_difference"]
        misses += not (e.low <= 0 <= e.high)
    assert misses <= 8  # 5% nominal: expected 3, P(> 8) < 1%


def test_ragged_pairs_drop_only_missing_pairs() -> None:
    a, b = _pairs(np.random.default_rng(3), effect=0.5, seeds=6, games=3)
    a[0, 0] = np.nan
    b[1, 1] = np.nan
    res = compare(a, b, reps=500, seed=0)
    assert [g.n_pairs for g in res.per_game] == [5, 5, 6]
    assert res.n_pairs == 16
    want = np.nanmean(np.where(np.isnan(a) | np.isnan(b), np.nan, b - a)[:, 0])
    assert res.per_game[0].difference.estimate == pytest.approx(want)


def test_same_seed_same_comparison() -> None:
    a, b = _pairs(np.random.default_rng(4), effect=0.2, seeds=5, games=4)
    assert compare(a, b, reps=300, seed=3) == compare(a, b, reps=300, seed=3)


def test_sample_efficiency_curve() -> None:
    rng = np.random.default_rng(5)
    steps = np.array([10, 20, 30])
    scores = rng.gamma(2.0, 0.2, size=(6, 4, 3)) * np.array([1, 2, 3])
    scores[:, 2, 0] = np.nan  # no run of game 2 at step 10: that step is skipped
    scores[4:, 1, 2] = np.nan  # ragged at step 30: kept
    curve = sample_efficiency(scores, steps, reps=300, seed=0)
    assert list(curve.steps) == [20, 30]
    assert curve.estimate[0] == pytest.approx(metrics.iqm(scores[:, :, 1]))
    assert list(curve.n_runs) == [24, 22]
    assert np.all(curve.low <= curve.estimate) and np.all(curve.estimate <= curve.high)
