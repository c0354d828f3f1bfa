"""How strongly one kind of event in a step sequence precedes another: onsets, lift, mutual
information. Pure numpy over per-step arrays of one recording.

Used by ``bench games --audio`` to ask whether a game's sound announces its rewards and life
losses, but nothing here knows of audio: a recording is a few (n_steps,) arrays, where
``starts`` marks the first step of each episode (a window never reaches past an episode's
end: a reward of the next episode was not announced by this one's sound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _bool(x: np.ndarray, n: int | None = None, what: str = "events") -> np.ndarray:
    x = np.asarray(x, dtype=bool)
    if x.ndim != 1 or (n is not None and len(x) != n):
        want = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"{what} must have shape {want}, got {x.shape}")
    return x


def _segments(n: int, starts: np.ndarray | None) -> np.ndarray:
    """(n,) episode index of each step; one episode when ``starts`` is None."""
    if starts is None:
        return np.zeros(n, dtype=np.int64)
    return np.cumsum(_bool(starts, n, "starts"))


def onsets(
    loudness: np.ndarray, *, ratio: float = 2.0, starts: np.ndarray | None = None
) -> np.ndarray:
    """Steps whose sound is an onset: (n,) loudness -> (n,) bool.

    A step is an onset when it is loud (> 0) and at least ``ratio`` times as loud as the step
    before it; the step before an episode's first is silence, and so is any silent step, so
    every start of a sound after silence is an onset, and so is a jump in level of a game that
    never falls silent (2: 6 dB for an amplitude measure).
    """
    e = np.asarray(loudness, dtype=np.float64)
    if e.ndim != 1 or (e < 0).any() or not np.isfinite(e).all():
        raise ValueError("loudness must be a finite, non-negative (n,) array")
    if ratio < 1:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    before = np.concatenate([[0.0], e[:-1]])
    if starts is not None:
        before[_bool(starts, len(e), "starts")] = 0.0
    return (e > 0) & (e >= ratio * before)


def followed_within(
    events: np.ndarray, within: int, *, starts: np.ndarray | None = None
) -> np.ndarray:
    """(n,) bool: an event happens at one of the ``within`` steps after t (t+1 .. t+within),
    in t's episode. The event of step t itself does not count: it came with t's sound."""
    ev = _bool(events)
    n = len(ev)
    if within < 1:
        raise ValueError(f"within must be >= 1, got {within}")
    seg = _segments(n, starts)
    idx = np.where(ev, np.arange(n), n)
    # next event at or after each step, then strictly after: shift by one
    at_or_after = np.minimum.accumulate(idx[::-1])[::-1]
    after = np.concatenate([at_or_after[1:], [n]])
    seg_of_next = np.concatenate([seg, [-1]])[after]
    return (after - np.arange(n) <= within) & (seg_of_next == seg)


def mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """Plug-in mutual information in bits of two (n,) binary sequences, as paired samples.

    The plug-in estimate is biased upwards by about 1 / (2 n ln 2) bits for independent
    sequences (Miller-Madow): 1.4e-4 bits at n = 5,000.
    """
    x, y = _bool(x), _bool(y, len(np.asarray(x)), "y")
    n = len(x)
    if n == 0:
        return 0.0
    joint = np.array(
        [[np.count_nonzero(~x & ~y), np.count_nonzero(~x & y)],
         [np.count_nonzero(x & ~y), np.count_nonzero(x & y)]],
        dtype=np.float64,
    ) / n  # fmt: skip
    px, py = joint.sum(axis=1), joint.sum(axis=0)
    outer = np.outer(px, py)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log2(joint[nz] / outer[nz])))


@dataclass(frozen=True)
class Precedence:
    """How strongly onsets precede events within ``within`` steps, over the steps counted."""

    steps: int  # steps counted: all but the last ``within`` (whose windows are cut short)
    onsets: int
    p_event: float  # P(an event within the window)
    p_event_given_onset: float  # NaN without onsets
    lift: float  # P(event within | onset) / P(event within); NaN without onsets or events
    mutual_information: float  # bits, between "onset at t" and "event within the window"
    # P(event at t | onset at t) / P(event at t): the sound marks the event rather than
    # announcing it (a reward's own sound); NaN without onsets or events
    same_step_lift: float


def precedence(
    onset: np.ndarray,
    events: np.ndarray,
    within: int,
    *,
    starts: np.ndarray | None = None,
) -> Precedence:
    """Lift and mutual information of (n,) onsets over (n,) events ``within`` steps later.

    Steps whose window reaches past the recording's end are left out (their future is
    unknown); windows that reach past an episode's end are not cut short, the episode is over.
    """
    o = _bool(onset, what="onset")
    ev = _bool(events, len(o))
    y = followed_within(ev, within, starts=starts)
    keep = max(0, len(o) - within)
    o, y, ev = o[:keep], y[:keep], ev[:keep]
    n_on = int(np.count_nonzero(o))
    p = float(y.mean()) if keep else float("nan")
    p_on = float(y[o].mean()) if n_on else float("nan")
    lift = p_on / p if n_on and p > 0 else float("nan")
    p_now = float(ev.mean()) if keep else float("nan")
    same = float(ev[o].mean()) / p_now if n_on and p_now > 0 else float("nan")
    return Precedence(keep, n_on, p, p_on, lift, mutual_information(o, y), same)
