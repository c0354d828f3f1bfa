"""A seeded, vectorized stratified bootstrap over ragged runs x games score matrices.

Resampling is stratified by game: each replicate draws, for every game, as many runs as that
game has, with replacement, from that game's runs only (the scheme of Agarwal et al. 2021
and rliable's ``StratifiedBootstrap``). Games may have different numbers of runs.

Reproducibility: replicates are drawn in fixed blocks, and block ``b`` of a bootstrap named
``stream`` uses the random stream ``SeedSequence(seed, spawn_key=(crc32(stream), b))``. So the
same (data, seed, stream) gives the same intervals whatever the thread count, and adding an
algorithm to a report does not change the intervals of the others.

A replicate is a multiset of the original runs, so the kernels see it as counts: how often
each run was drawn. ``draw_indices`` defines the draws; ``draw_counts`` gives their counts
from the same random numbers without writing the draws out (a compiled loop, see there).

Memory is bounded: one block holds about ``BLOCK_ELEMENTS`` counts per sample.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
from scipy import special

# Draws per block and sample: 2**19 (4 MiB of float64 counts): measured about 10% faster than
# 2**17 on the DER benchmark, because a block's fixed costs (its generator, the pool, many
# small numpy calls) are paid 4 times less often.
BLOCK_ELEMENTS = 2**19

Method = Literal["percentile", "bca"]


@dataclass(frozen=True)
class Strata:
    """Scores of one algorithm in pooled layout: the runs of game 0, then of game 1, ...

    ``values`` has shape (n_total,), ``sizes`` has shape (n_games,) and sums to n_total.
    """

    values: np.ndarray
    sizes: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """Start of each game's runs in ``values``, shape (n_games + 1,)."""
        return np.concatenate([[0], np.cumsum(self.sizes)])

    @classmethod
    def from_matrix(cls, scores: np.ndarray) -> Strata:
        """From a (n_runs, n_games) matrix where NaN marks a missing run (ragged seed counts).

        Every game needs at least one run; no finite run is dropped.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(f"expected a (runs, games) matrix, got shape {scores.shape}")
        columns = [col[~np.isnan(col)] for col in scores.T]
        sizes = np.array([len(c) for c in columns], dtype=np.int64)
        if len(sizes) == 0 or (sizes == 0).any():
            raise ValueError("every game needs at least one run")
        return cls(np.concatenate(columns), sizes)

    def to_matrix(self) -> np.ndarray:
        """Back to a (max_runs, n_games) matrix padded with NaN."""
        out = np.full((int(self.sizes.max()), len(self.sizes)), np.nan)
        for g, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:], strict=True)):
            out[: b - a, g] = self.values[a:b]
        return out


# A kernel maps, for each sample, a (B, n_total) float64 array of counts (how often each of
# the sample's pooled values was drawn; each game's counts sum to its size in the layout)
# plus the sample's game sizes, to B replicates of K statistics: shape (B, K).
Kernel = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], np.ndarray]


def block_size(sizes: Sequence[np.ndarray]) -> int:
    """Replicates per block; a function of the data only, so results never depend on memory."""
    n = max(int(np.sum(s)) for s in sizes)
    return max(1, min(1024, BLOCK_ELEMENTS // max(n, 1)))


def block_rng(seed: int, stream: str, block: int) -> np.random.Generator:
    """The random generator of one block of one named bootstrap."""
    key = zlib.crc32(stream.encode())
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key, block)))
    )


def draw_indices(
    rng: np.random.Generator, sizes: np.ndarray, reps: int, *, slot: int = 0
) -> np.ndarray:
    """Stratified resampling indices, shape (reps, n_total) uint32, into the pooled layout.

    Column j belongs to game g(j) and holds a uniform draw from that game's positions. The
    array is a per-thread buffer, valid until the thread's next call with the same ``slot``.

    Each draw takes 16 random bits through Lemire's multiply-shift: x * n >> 16 for x uniform
    in [0, 2**16). The draws whose low half (x * n) mod 2**16 falls below 2**16 mod n are the
    ones that would make some outcomes more likely; like Lemire's rejection loop, they are
    drawn again (with ``Generator.integers``), so every draw is exactly uniform. This costs a
    quarter of a 64-bit random word and a few 32-bit array operations per draw, about half
    the time of ``Generator.integers`` on the same block.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_total = int(sizes.sum())
    out = buffer(f"indices{slot}", (reps, n_total), np.uint32)
    if reps == 0 or n_total == 0:
        return out
    if sizes.max() > 2**16:
        return _draw_wide(rng, sizes, out)
    size, threshold, start, raw = _block_words(rng, sizes, reps)
    np.copyto(out, raw.reshape(reps, n_total))
    # x * n < 2**32: its high 16 bits are the draw, its low 16 bits decide the rejection.
    np.multiply(out, size, out=out)
    low = buffer("low", out.shape, np.uint16)
    np.copyto(low, out, casting="unsafe")  # keeps the low 16 bits
    reject = buffer("reject", out.shape, np.bool_)
    np.less(low, threshold, out=reject)
    np.right_shift(out, 16, out=out)
    np.add(out, start, out=out)
    if reject.any():
        again = np.flatnonzero(reject)
        out.reshape(-1)[again] = _redraw(rng, again, size, start)
    return out


def _block_words(
    rng: np.random.Generator, sizes: np.ndarray, reps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A block's per-column constants (``_columns``) and its reps * n_total random 16-bit
    inputs, in draw order. ``draw_indices`` and ``draw_counts`` both take the generator's
    words here and re-draw with ``_redraw``, so they make the same draws."""
    size, threshold, start = _columns(tuple(sizes.tolist()))
    count = reps * len(size)
    raw = rng.bit_generator.random_raw(-(-count // 4)).view(np.uint16)[:count]
    return size, threshold, start, raw


def _redraw(
    rng: np.random.Generator, flat: np.ndarray, size: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Pooled positions that replace the rejected draws at ``flat`` (positions in the
    (reps, n_total) block, ascending): one ``Generator.integers`` call, in draw order."""
    col = flat % len(size)
    return rng.integers(0, size[col]) + start[col]


@functools.lru_cache(maxsize=64)
def _columns(sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of a layout: its game's run count n (uint32), Lemire's threshold 2**16 mod n
    (uint16) and the game's first pooled position (uint32), shape (n_total,) each. Cached:
    every block of a bootstrap needs the same."""
    n = np.array(sizes, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    columns = (
        np.repeat(n, n).astype(np.uint32),
        np.repeat(2**16 % n, n).astype(np.uint16),
        np.repeat(start, n).astype(np.uint32),
    )
    for a in columns:
        a.flags.writeable = False
    return columns


def _draw_wide(rng: np.random.Generator, sizes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``draw_indices`` for layouts with a game of more than 2**16 runs (16 bits are too few)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for g, n in enumerate(sizes.tolist()):
        a, b = int(offsets[g]), int(offsets[g + 1])
        out[:, a:b] = rng.integers(0, n, size=(out.shape[0], b - a), dtype=np.int64) + a
    return out


def draw_counts(
    rng: np.random.Generator, sizes: np.ndarray, reps: int, *, slot: int = 0
) -> np.ndarray:
    """How often each pooled position is drawn in each replicate: shape (reps, n_total)
    float64, equal to ``counts(draw_indices(rng, sizes, reps), n_total)`` for the same
    generator state, but the draws are counted as they are made instead of written out.

    The array is a per-thread buffer, valid until the thread's next call with the same
    ``slot``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_total = int(sizes.sum())
    out = buffer(f"counts{slot}", (reps, n_total), np.float64)
    if reps == 0 or n_total == 0:
        return out
    if sizes.max() > 2**16:
        return counts(_draw_wide(rng, sizes, np.empty((reps, n_total), np.uint32)), n_total)
    size, threshold, start, raw = _block_words(rng, sizes, reps)
    # Room for the rejected draws: 1.5 times their expected number, plus some.
    room = int(len(raw) * int(threshold.max()) / 2**16 * 1.5) + 1024
    rejected = buffer("rejected", (room,), np.int64)
    bad = _count_draws(raw, size, threshold, start, out, rejected)
    if bad > room:  # rare: count again with room for all of them
        rejected = buffer("rejected", (bad,), np.int64)
        bad = _count_draws(raw, size, threshold, start, out, rejected)
    if bad:
        pos = rejected[:bad]
        np.add.at(out, (pos // n_total, _redraw(rng, pos, size, start)), 1.0)
    return out


@numba.njit(nogil=True, cache=True)
def _count_draws(
    raw: np.ndarray,
    size: np.ndarray,
    threshold: np.ndarray,
    start: np.ndarray,
    out: np.ndarray,
    rejected: np.ndarray,
) -> int:
    """``draw_indices``' multiply-shift, counted into ``out`` (reps, n_total) as it goes.

    Writes the flat positions of the rejected draws to ``rejected`` (as many as fit) and
    returns how many there were. One pass, with no array of draws in between: about a
    third of the time of drawing with numpy and counting with ``bincount``. A row is
    counted in integers and then copied out (an integer increment has less latency than a
    float one when the same run is drawn twice in a row).
    """
    reps, n = out.shape
    row = np.zeros(n, np.int32)
    bad = 0
    for r in range(reps):
        for j in range(n):
            x = np.uint32(raw[r * n + j]) * size[j]
            if np.uint16(x) < threshold[j]:
                if bad < len(rejected):
                    rejected[bad] = r * n + j
                bad += 1
            else:
                row[start[j] + (x >> 16)] += 1
        for j in range(n):
            out[r, j] = row[j]
            row[j] = 0
    return bad


def counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of n items was drawn in each row: (B, k) indices -> (B, n) float64."""
    out = np.zeros((idx.shape[0], n))
    _count_indices(np.ascontiguousarray(idx), out)
    return out


@numba.njit(nogil=True, cache=True)
def _count_indices(idx: np.ndarray, out: np.ndarray) -> None:
    for r in range(idx.shape[0]):
        row = out[r]
        for j in range(idx.shape[1]):
            row[idx[r, j]] += 1.0


_local = threading.local()


def buffer(
    name: str, shape: tuple[int, ...], dtype: type, *, fill: float | None = None
) -> np.ndarray:
    """A per-thread scratch array, reused across blocks (fresh memory costs page faults).

    With ``fill``, the array holds that value, and its users must not write to it.
    """
    cache = _local.__dict__.setdefault("buffers", {})
    key = (name, dtype)
    buf = cache.get(key)
    size = math.prod(shape)
    if buf is None or buf.size < size:
        buf = cache[key] = np.empty(size, dtype=dtype)
        if fill is not None:
            buf.fill(fill)
    return buf[:size].reshape(shape)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def replicates(
    kernel: Kernel,
    sizes: Sequence[np.ndarray],
    *,
    reps: int,
    seed: int,
    stream: str,
) -> np.ndarray:
    """Bootstrap replicates of ``kernel``'s K statistics, shape (reps, K).

    ``sizes`` holds one (n_games,) array per independently resampled sample (one for a
    single algorithm or a paired comparison, two for an unpaired two-sample statistic).
    """
    if reps < 1:
        raise ValueError("reps must be at least 1")
    sizes = [np.asarray(s, dtype=np.int64) for s in sizes]
    per_block = block_size(sizes)
    n_blocks = -(-reps // per_block)

    def run(b: int) -> np.ndarray:
        rng = block_rng(seed, stream, b)
        count = min(per_block, reps - b * per_block)
        return kernel([draw_counts(rng, s, count, slot=k) for k, s in enumerate(sizes)], sizes)

    workers = _workers()
    if n_blocks == 1 or workers == 1:
        return np.concatenate([run(b) for b in range(n_blocks)], axis=0)
    # The counting loop and numpy's heavy calls (random words, dot products, sorts) release
    # the GIL.
    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(run, range(n_blocks))), axis=0)


def jackknife(kernel: Kernel, sizes: Sequence[np.ndarray]) -> np.ndarray:
    """Leave-one-run-out values of ``kernel``'s statistics, shape (n_units, K).

    One unit is one run of one game of one sample (n_units = total runs over samples).
    """
    sizes = [np.asarray(s, dtype=np.int64) for s in sizes]
    out = []
    for k, s in enumerate(sizes):
        offsets = np.concatenate([[0], np.cumsum(s)])
        for g in range(len(s)):
            if s[g] < 2:
                continue  # leaving out a game's only run would remove the game
            n = int(s[g])
            # Row i draws every run once, except run i of game g, which it leaves out.
            left_out = np.ones((n, int(s.sum())))
            left_out[np.arange(n), offsets[g] + np.arange(n)] = 0.0
            loo_sizes = s.copy()
            loo_sizes[g] -= 1
            c = [np.ones((n, int(t.sum()))) for t in sizes]
            c[k] = left_out
            layout = list(sizes)
            layout[k] = loo_sizes
            out.append(kernel(c, layout))
    return np.concatenate(out, axis=0)


def percentile_interval(reps: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval from replicates of shape (R, K): (low, high), each shape (K,)."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(reps, [tail, 100 - tail], axis=0)
    return low, high


def bca_interval(
    reps: np.ndarray, point: np.ndarray, jack: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated interval (Efron 1987).

    ``reps`` (R, K), ``point`` (K,), ``jack`` (n_units, K) leave-one-out values.
    Returns (low, high), each shape (K,).
    """
    z0 = special.ndtri(np.clip((reps < point).mean(0), 1 / len(reps), 1 - 1 / len(reps)))
    d = jack.mean(0) - jack
    den = 6 * np.sum(d**2, axis=0) ** 1.5
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(den > 0, np.sum(d**3, axis=0) / den, 0.0)
    low, high = np.empty(reps.shape[1]), np.empty(reps.shape[1])
    for j, tail in ((0, (1 - level) / 2), (1, (1 + level) / 2)):
        z = special.ndtri(tail)
        q = special.ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
        for k in range(reps.shape[1]):
            value = np.percentile(reps[:, k], 100 * q[k])
            (low if j == 0 else high)[k] = value
    return low, high


def interval(
    kernel: Kernel,
    sizes: Sequence[np.ndarray],
    point: np.ndarray,
    *,
    reps: int,
    seed: int,
    stream: str,
    level: float = 0.95,
    method: Method = "percentile",
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence intervals of ``kernel``'s K statistics: (low, high), each shape (K,)."""
    boot = replicates(kernel, sizes, reps=reps, seed=seed, stream=stream)
    if method == "percentile":
        return percentile_interval(boot, level)
    if method == "bca":
        return bca_interval(
            boot, np.asarray(point, dtype=np.float64), jackknife(kernel, sizes), level
        )
    raise ValueError(f"unknown interval method {method!r}; valid: percentile, bca")
