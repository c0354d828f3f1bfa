"""Metrics and the stratified bootstrap, on hand-made matrices and on published data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from rliable import metrics as rly
from scipy import stats

from bench.env.games import human_normalized
from bench.report.baselines import load_baseline
from bench.stats import bootstrap, metrics
from bench.stats.bootstrap import Strata, block_rng, counts, draw_counts, draw_indices, jackknife
from bench.stats.estimates import aggregate_estimates, improvement_estimate, profile_estimates

DATA = Path(__file__).parent / "data"

# Hand-made: 2 runs x 3 games. Pooled sorted: 0, .2, .5, 1.5, 2, 4; IQM cuts int(6/4)=1 per end.
HAND = np.array([[0.0, 0.5, 2.0], [0.2, 1.5, 4.0]])
# Ragged: game 1 has 1 run, game 2 has 2, game 0 has 3. Pooled sorted: 0, .2, .4, .5, 2, 4.
RAGGED = np.array([[0.0, 0.5, 2.0], [0.2, np.nan, 4.0], [0.4, np.nan, np.nan]])


def test_hand_made_aggregates() -> None:
    assert metrics.iqm(HAND) == pytest.approx((0.2 + 0.5 + 1.5 + 2.0) / 4)
    assert metrics.median(HAND) == pytest.approx(1.0)
    assert metrics.mean(HAND) == pytest.approx((0.1 + 1.0 + 3.0) / 3)
    assert metrics.optimality_gap(HAND) == pytest.approx(1 - (0 + 0.5 + 1 + 0.2 + 1 + 1) / 6)


def test_ragged_aggregates_keep_every_run() -> None:
    assert metrics.iqm(RAGGED) == pytest.approx((0.2 + 0.4 + 0.5 + 2.0) / 4)
    assert metrics.median(RAGGED) == pytest.approx(0.5)
    assert metrics.mean(RAGGED) == pytest.approx((0.2 + 0.5 + 3.0) / 3)
    assert metrics.optimality_gap(RAGGED) == pytest.approx(1 - (0 + 0.2 + 0.4 + 0.5 + 1 + 1) / 6)
    with pytest.raises(ValueError, match="at least one run"):
        metrics.iqm(np.array([[1.0, np.nan]]))


def test_probability_of_improvement_hand_made() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 1.0], [3.0, 5.0]])
    # game 0: 1>0, 1<3, 3>0, 3=3 -> 2.5/4; game 1: 2>1, 2<5, 4>1, 4<5 -> 2/4
    assert metrics.probability_of_improvement(x, y) == pytest.approx((0.625 + 0.5) / 2)
    assert metrics.probability_of_improvement(x, x) == pytest.approx(0.5)
    ragged_y = np.array([[0.0, 1.0], [np.nan, 5.0]])  # game 0: 1>0, 3>0 -> 1
    assert metrics.probability_of_improvement(x, ragged_y) == pytest.approx((1.0 + 0.5) / 2)


def test_performance_profile_hand_made() -> None:
    taus = np.array([-1.0, 0.2, 1.0, 4.0])
    np.testing.assert_allclose(metrics.performance_profile(HAND, taus), [1, 4 / 6, 3 / 6, 0])
    np.testing.assert_allclose(metrics.performance_profile(RAGGED, taus), [1, 4 / 6, 2 / 6, 0])


def _ragged(rng: np.random.Generator, games: int, max_runs: int) -> np.ndarray:
    runs = rng.integers(1, max_runs + 1, size=games)
    scores = np.full((int(runs.max()), games), np.nan)
    for g, n in enumerate(runs):
        scores[:n, g] = np.round(rng.gamma(1.0, 0.5, size=n), 1)  # rounded: ties happen
    return scores


@pytest.mark.parametrize("case", range(12))
def test_aggregate_kernel_equals_direct_computation(case: int) -> None:
    """Every replicate's statistics equal the direct computation on its resampled runs."""
    rng = np.random.default_rng(100 + case)
    games, max_runs = [(1, 9), (3, 12), (6, 40), (12, 60)][case % 4]
    strata = Strata.from_matrix(_ragged(rng, games, max_runs))
    offsets = strata.offsets
    # window=None: the IQM's own windows (active on the larger cases); 1 and 3: windows so
    # narrow that many rows fall back to the full path, mixed with rows that do not.
    for window in (None, 1, 3):
        kernel = metrics.AggregateKernel(strata, window=window)
        idx = draw_indices(block_rng(case, "direct", 0), strata.sizes, 64).copy()
        got = kernel([counts(idx, strata.values.size)], [strata.sizes])
        for r, row in enumerate(idx):
            drawn = strata.values[row]
            per_game = [drawn[offsets[g] : offsets[g + 1]].mean() for g in range(games)]
            want = [
                stats.trim_mean(drawn, 0.25),
                np.median(per_game),
                np.mean(per_game),
                1.0 - np.mean(np.minimum(drawn, 1.0)),
                *per_game,
            ]
            np.testing.assert_allclose(got[r], want, rtol=0, atol=1e-12)
    assert metrics.AggregateKernel(strata, window=1).windows is not None or strata.sizes.sum() < 10


def test_iqm_windows_are_used_on_large_matrices() -> None:
    strata = Strata.from_matrix(_der())
    kernel = metrics.AggregateKernel(strata)
    assert kernel.windows is not None
    assert len(kernel.windows.cols) < strata.values.size // 4
    idx = draw_indices(block_rng(0, "large", 0), strata.sizes, 200).copy()
    got = kernel([counts(idx, strata.values.size)], [strata.sizes])[:, 0]
    want = [stats.trim_mean(strata.values[row], 0.25) for row in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_draw_indices_reject_the_biased_draws() -> None:
    """With n = 43691, 16-bit multiply-shift alone gives a third of the outcomes two of the
    2**16 inputs and the rest one; the rejected draws must make them equally likely."""
    n = 43691
    idx = draw_indices(block_rng(0, "lemire", 0), np.array([n]), 40).copy()
    assert idx.min() >= 0 and idx.max() < n
    freq = np.bincount(idx.ravel(), minlength=n)
    k = np.arange(n)
    preimages = np.ceil((k + 1) * 2**16 / n) - np.ceil(k * 2**16 / n)
    assert set(np.unique(preimages)) == {1, 2}
    ratio = freq[preimages == 2].mean() / freq[preimages == 1].mean()
    assert ratio == pytest.approx(1.0, abs=0.01)  # 2 without the rejection


def test_kernels_equal_rliable_on_identity_resample() -> None:
    rng = np.random.default_rng(1)
    scores = rng.gamma(1.0, 0.5, size=(7, 5))
    strata = Strata.from_matrix(scores)
    out = metrics.AggregateKernel(strata)([np.ones((1, strata.values.size))], [strata.sizes])[0]
    assert out[0] == pytest.approx(rly.aggregate_iqm(scores), abs=1e-12)
    assert out[1] == pytest.approx(rly.aggregate_median(scores), abs=1e-12)
    assert out[2] == pytest.approx(rly.aggregate_mean(scores), abs=1e-12)
    assert out[3] == pytest.approx(rly.aggregate_optimality_gap(scores), abs=1e-12)
    other = rng.gamma(1.0, 0.5, size=(4, 5))
    y = Strata.from_matrix(other)
    poi = metrics.ImprovementKernel(strata, y)(
        [np.ones((1, strata.values.size)), np.ones((1, y.values.size))], [strata.sizes, y.sizes]
    )
    assert poi[0, 0] == pytest.approx(rly.probability_of_improvement(scores, other), abs=1e-12)


def test_draw_indices_are_stratified_and_uniform() -> None:
    sizes = np.array([3, 3, 1, 5])
    idx = draw_indices(block_rng(0, "t", 0), sizes, 20_000).copy()
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for g in range(len(sizes)):
        block = idx[:, offsets[g] : offsets[g + 1]]
        assert block.min() == offsets[g] and block.max() == offsets[g + 1] - 1
        freq = np.bincount(block.ravel() - offsets[g]) / block.size
        np.testing.assert_allclose(freq, 1 / sizes[g], atol=0.01)


@pytest.mark.parametrize(
    "sizes", [[100] * 26, [3, 3, 1, 5], [43691], [7, 43691, 2], [1], [2**16, 3], [2**16 + 1, 2]]
)
def test_draw_counts_count_the_draws(sizes: list[int]) -> None:
    """The compiled counting loop gives the counts of draw_indices' draws, rejected and
    re-drawn ones included (43691 rejects a third of its 16-bit draws; past 2**16 runs a
    game takes the wide path)."""
    sizes = np.array(sizes)
    reps = max(1, min(300, 2**18 // int(sizes.sum())))
    for block in range(3):
        want = counts(draw_indices(block_rng(1, "c", block), sizes, reps).copy(), sizes.sum())
        got = draw_counts(block_rng(1, "c", block), sizes, reps)
        assert got.shape == want.shape == (reps, sizes.sum())
        np.testing.assert_array_equal(got, want)
        per_game = np.add.reduceat(got, np.concatenate([[0], np.cumsum(sizes)[:-1]]), axis=1)
        np.testing.assert_array_equal(per_game, np.broadcast_to(sizes, per_game.shape))


def test_count_draws_reports_rejections_beyond_its_room() -> None:
    """With too little room for the rejected positions, the loop still counts all of them, so
    draw_counts knows to count again with more room."""
    n = 43691
    size, threshold, start = bootstrap._columns((n,))
    raw = np.resize(np.arange(2**16, dtype=np.uint16), 3 * n)  # each input twice, 0 thrice
    out = np.empty((3, n))
    room = np.full(5, -1, dtype=np.int64)
    bad = bootstrap._count_draws(raw, size, threshold, start, out, room)
    # Lemire rejects exactly the inputs whose low half falls below 2**16 mod n.
    assert bad == np.count_nonzero((raw.astype(np.int64) * n) % 2**16 < 2**16 % n) == 2 * 21845 + 1
    assert (room >= 0).all() and (room[1:] > room[:-1]).all()
    assert out.sum() == 3 * n - bad


def _der() -> np.ndarray:
    rows = load_baseline("DER")
    rows = rows[rows["final"]]
    hns = [human_normalized(g, s) for g, s in zip(rows["game"], rows["score"], strict=True)]
    return rows.assign(hns=hns).pivot(index="seed", columns="game", values="hns").to_numpy()


def test_der_published_median_and_mean() -> None:
    scores = _der()
    assert scores.shape == (100, 26)
    assert metrics.median(scores) == pytest.approx(0.18936086395020874, abs=1e-9)
    assert metrics.mean(scores) == pytest.approx(0.35030497562763896, abs=1e-9)


def _bbf_first_50() -> np.ndarray:
    rows = load_baseline("BBF")
    rows = rows.assign(
        hns=[human_normalized(g, s) for g, s in zip(rows["game"], rows["score"], strict=True)]
    )
    rows = rows.assign(k=rows.groupby("game").cumcount())  # file order within each game
    rows = rows[rows["k"] < 50]
    return rows.pivot(index="k", columns="game", values="hns").to_numpy()


def _reference() -> list[dict[str, str]]:
    with open(DATA / "reference_aggregates.csv") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.parametrize("row", [0, 1, 2])
def test_intervals_match_rliable_reference(row: int) -> None:
    ref = _reference()[row]
    scores = {0: _der, 1: lambda: _der()[:10], 2: _bbf_first_50}[row]()
    got = aggregate_estimates(scores, reps=50_000, seed=0).aggregates
    short = {"iqm": "iqm", "median": "median", "mean": "mean", "optimality_gap": "og"}
    for metric, key in short.items():
        assert got[metric].estimate == pytest.approx(float(ref[metric]), abs=5e-5)
        assert got[metric].low == pytest.approx(float(ref[f"{key}_lo"]), abs=0.003)
        assert got[metric].high == pytest.approx(float(ref[f"{key}_hi"]), abs=0.003)


def test_same_seed_same_intervals_other_seed_other() -> None:
    scores = np.random.default_rng(2).gamma(1.0, 0.5, size=(10, 6))
    a = aggregate_estimates(scores, reps=3000, seed=7, stream="x")
    b = aggregate_estimates(scores, reps=3000, seed=7, stream="x")
    c = aggregate_estimates(scores, reps=3000, seed=8, stream="x")
    assert a == b
    assert a.aggregates["iqm"].low != c.aggregates["iqm"].low


def test_replicates_do_not_depend_on_the_thread_count(monkeypatch) -> None:
    """Blocks draw from their own streams, so one thread or four give the same replicates."""
    scores = np.random.default_rng(9).gamma(1.0, 0.5, size=(30, 40))
    scores[20:, :7] = np.nan  # ragged
    strata = Strata.from_matrix(scores)
    kernel = metrics.AggregateKernel(strata)
    runs = {}
    for workers in (1, 4):
        monkeypatch.setattr(bootstrap, "_workers", lambda w=workers: w)
        runs[workers] = bootstrap.replicates(
            kernel, [strata.sizes], reps=3000, seed=3, stream="threads"
        )
    assert runs[1].shape == (3000, 4 + 40)
    assert bootstrap.block_size([strata.sizes]) < 3000  # several blocks, so threads are used
    np.testing.assert_array_equal(runs[1], runs[4])


def test_ragged_matrix_intervals_use_every_run() -> None:
    rng = np.random.default_rng(3)
    scores = rng.gamma(1.0, 0.5, size=(8, 5))
    scores[5:, 0] = np.nan  # game 0: 5 runs
    scores[1:, 3] = np.nan  # game 3: a single run
    est = aggregate_estimates(scores, reps=4000, seed=0)
    assert est.n_runs == 8 * 5 - 3 - 7
    for name, e in est.aggregates.items():
        assert e.low <= e.estimate <= e.high, name
        assert e.low < e.high, name
    single = est.per_game[3]
    assert single.low == single.high == pytest.approx(scores[0, 3])
    assert est.per_game[0].estimate == pytest.approx(np.mean(scores[:5, 0]))


def test_bca_matches_scipy_on_one_game() -> None:
    x = np.random.default_rng(4).exponential(size=30)
    est = aggregate_estimates(x[:, None], reps=20_000, seed=0, method="bca").aggregates["mean"]
    ref = stats.bootstrap((x,), np.mean, n_resamples=20_000, method="BCa", random_state=0)
    assert est.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert est.high == pytest.approx(ref.confidence_interval.high, abs=0.02)
    pct = aggregate_estimates(x[:, None], reps=20_000, seed=0).aggregates["mean"]
    assert est.low > pct.low  # right-skewed data: BCa shifts the interval up


def test_jackknife_leaves_one_run_out() -> None:
    strata = Strata.from_matrix(HAND)
    jack = jackknife(metrics.AggregateKernel(strata), [strata.sizes])
    assert jack.shape == (6, 7)
    # leaving out run 0 of game 0 (score 0.0) leaves game 0's mean at 0.2
    assert jack[0, 4] == pytest.approx(0.2)


def test_improvement_interval() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(10, 4))
    est = improvement_estimate(x, x + 100, reps=2000, seed=0)
    assert (est.estimate, est.low, est.high) == (0.0, 0.0, 0.0)
    y = rng.normal(size=(12, 4))
    est = improvement_estimate(x, y, reps=2000, seed=0)
    assert est.low < est.estimate < est.high
    assert est.estimate == pytest.approx(rly.probability_of_improvement(x, y))


def test_profile_intervals() -> None:
    scores = np.random.default_rng(6).gamma(1.0, 0.5, size=(10, 5))
    taus = np.linspace(0, 2, 21)
    point, low, high = profile_estimates(scores, taus, reps=500, seed=0)
    np.testing.assert_allclose(point, [np.mean(scores > t) for t in taus])
    assert np.all(low <= point + 1e-12) and np.all(point <= high + 1e-12)
    assert np.all(np.diff(point) <= 0)
