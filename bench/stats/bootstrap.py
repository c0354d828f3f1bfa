"""A seeded, vectorized stratified bootstrap over ragged runs x games score matrices.

Resampling is stratified by game: each replicate draws, for every game, as many runs as that
game has, with replacement, from that game's runs only (the scheme of Agarwal et al. 2021
and rliable's ``StratifiedBootstrap``). Games may have different numbers of runs.

Reproducibility: replicates are drawn in fixed blocks, and block ``b`` of a bootstrap named
``stream`` uses the random stream ``SeedSequence(seed, spawn_key=(crc32(stream), b))``. So the
same (data, seed, stream) gives the same intervals whatever the thread count, and adding an
algorithm to a report does not change the intervals of the others.

Memory is bounded: one block holds about ``BLOCK_ELEMENTS`` resampled indices per sample.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

# Indices per block and sample: 2**17 int64 indices = 1 MiB, so a block's arrays stay in cache.
BLOCK_ELEMENTS = 2**17

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


# A kernel maps, for each sample, a (B, n_total) array of indices into that sample's pooled
# values plus the sample's game sizes, to B replicates of K statistics: shape (B, K).
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
    """Stratified resampling indices, shape (reps, n_total), into the pooled layout.

    Column j belongs to game g(j) and holds a uniform draw from that game's positions
    (``Generator.integers`` is exact: no modulo bias). The array is a per-thread buffer,
    valid until the thread's next call with the same ``slot``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = buffer(f"indices{slot}", (reps, int(offsets[-1])), np.intp)
    # One call per run of consecutive games with equal run counts (one call when rectangular).
    start = 0
    while start < len(sizes):
        n = int(sizes[start])
        stop = start + 1
        while stop < len(sizes) and sizes[stop] == n:
            stop += 1
        a, b = int(offsets[start]), int(offsets[stop])
        # 16-bit draws need a quarter of the random words of 64-bit ones.
        dtype = np.uint16 if n <= 2**16 else np.int64
        draws = rng.integers(0, n, size=(reps, b - a), dtype=dtype)
        np.add(draws, np.repeat(offsets[start:stop], n), out=out[:, a:b])
        start = stop
    return out


_local = threading.local()


def buffer(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A per-thread scratch array, reused across blocks (fresh memory costs page faults)."""
    cache = _local.__dict__.setdefault("buffers", {})
    key = (name, np.dtype(dtype).str)
    buf = cache.get(key)
    size = int(np.prod(shape))
    if buf is None or buf.size < size:
        buf = cache[key] = np.empty(size, dtype=dtype)
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
        return kernel([draw_indices(rng, s, count, slot=k) for k, s in enumerate(sizes)], sizes)

    workers = _workers()
    if n_blocks == 1 or workers == 1:
        return np.concatenate([run(b) for b in range(n_blocks)], axis=0)
    # numpy releases the GIL in the heavy calls (random words, take, partition, reductions).
    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(run, range(n_blocks))), axis=0)


def jackknife(kernel: Kernel, sizes: Sequence[np.ndarray]) -> np.ndarray:
    """Leave-one-run-out values of ``kernel``'s statistics, shape (n_units, K).

    One unit is one run of one game of one sample (n_units = total runs over samples).
    """
    sizes = [np.asarray(s, dtype=np.int64) for s in sizes]
    full = [np.broadcast_to(np.arange(int(s.sum())), (1, int(s.sum()))) for s in sizes]
    out = []
    for k, s in enumerate(sizes):
        offsets = np.concatenate([[0], np.cumsum(s)])
        for g in range(len(s)):
            if s[g] < 2:
                continue  # leaving out a game's only run would remove the game
            n = int(s[g])
            keep = np.ones((n, int(s.sum())), dtype=bool)
            keep[np.arange(n), offsets[g] + np.arange(n)] = False
            idx_k = np.nonzero(keep)[1].reshape(n, -1)
            loo_sizes = s.copy()
            loo_sizes[g] -= 1
            idx = [np.repeat(f, n, axis=0) for f in full]
            idx[k] = idx_k
            layout = list(sizes)
            layout[k] = loo_sizes
            out.append(kernel(idx, layout))
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
