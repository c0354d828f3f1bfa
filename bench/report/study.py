"""The audio study: a decomposition of "does hearing the game help?" into paired comparisons.

"Audio on" is not one change: the agent hears the game, and it also has a bigger network. A
suite whose runs differ in the ``audio`` condition (``axes: audio: [off, on, silent,
shuffled]``) shares seeds across the conditions, so each row below is a paired comparison
B − A (``bench.stats.paired.compare``, the same statistics and random stream as
``--compare audio=A:audio=B``):

  on − off          total effect: sound and the added network together
  silent − off      capacity alone: the audio network fed silence
  on − silent       what the sound carries beyond the added capacity
  on − shuffled     whether timing matters: the same run's sound at random times

Rows whose conditions a suite lacks are left out. Labels are grouped by variant and their
condition items other than ``audio`` (``BBF [audio=on,replay_ratio=2]`` is compared with
``BBF [audio=off,replay_ratio=2]`` only). The headline statistic is IQM(B) − IQM(A) of the
human-normalized scores with its paired stratified-bootstrap CI; the summary says, per row,
whether that interval excludes 0, and never reads an interval that includes 0 as evidence
of no effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.core.errors import BenchError
from bench.report.compare import condition_items, paired_comparison, paired_matrices
from bench.report.options import LEVEL, ReportOptions
from bench.stats.estimates import Estimate
from bench.stats.paired import PairedComparison

AXIS = "audio"
HEADLINE = "iqm_difference"  # the statistic the summary reads (PAIRED_METRICS)


@dataclass(frozen=True)
class Effect:
    """One row of the decomposition: B − A, and what its interval would support."""

    key: str
    b: str  # audio condition of B
    a: str  # audio condition of A
    title: str
    above: str  # what an interval above 0 supports
    below: str  # what an interval below 0 supports
    unclear: str  # what an interval including 0 does not support ("no evidence that ...")


EFFECTS: tuple[Effect, ...] = (
    Effect(
        "total",
        "on",
        "off",
        "total effect",
        "the agent that hears the game scores higher than the video-only agent (the sound "
        "and the added network together)",
        "the agent that hears the game scores lower than the video-only agent",
        "adding audio (the sound and the added network together) changes the score",
    ),
    Effect(
        "capacity",
        "silent",
        "off",
        "capacity alone",
        "the audio network helps even when it hears only silence: part of a gain from audio "
        "is capacity, not sound",
        "the audio network fed silence makes the agent worse than the video-only agent",
        "the added audio network alone, fed silence, changes the score",
    ),
    Effect(
        "sound",
        "on",
        "silent",
        "what the sound carries",
        "the sound carries information beyond the added capacity",
        "the real sound makes the agent worse than silence through the same network",
        "the sound carries information beyond the added capacity",
    ),
    Effect(
        "timing",
        "on",
        "shuffled",
        "whether timing matters",
        "the timing of the sound matters: sound in step with the game beats the same run's "
        "sound at random times",
        "sound in step with the game does worse than the same run's sound at random times",
        "the timing of the sound matters (sound in step with the game against the same "
        "run's sound at random times)",
    ),
)


@dataclass(frozen=True)
class StudyRow:
    group: str  # the variant and its other condition items, e.g. "BBF [replay_ratio=2]"
    effect: Effect
    a: str  # label of A
    b: str  # label of B
    games: list[str]
    result: PairedComparison

    @property
    def headline(self) -> Estimate:
        return self.result.aggregates[HEADLINE]


@dataclass(frozen=True)
class Study:
    rows: tuple[StudyRow, ...]
    summary: tuple[str, ...]  # plain-language sentences, one per row, then the caveats


def audio_groups(labels: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Labels with an audio condition, by group: {group: {audio value: label}}.

    ``labels`` has algorithm, variant and condition (one row per label, report order).
    """
    groups: dict[str, dict[str, str]] = {}
    for row in labels.drop_duplicates("algorithm").itertuples():
        items = condition_items(row.condition)
        if AXIS not in items:
            continue
        rest = ",".join(f"{k}={v}" for k, v in sorted(items.items()) if k != AXIS)
        group = f"{row.variant} [{rest}]" if rest else str(row.variant)
        groups.setdefault(group, {})[items[AXIS]] = str(row.algorithm)
    return groups


def reading(e: Estimate) -> str:
    """Where the interval lies: "above 0", "below 0" or "includes 0"."""
    if e.low > 0:
        return "above 0"
    if e.high < 0:
        return "below 0"
    return "includes 0"


def _ci(e: Estimate) -> str:
    return f"{e.estimate:.3f} [{e.low:.3f}, {e.high:.3f}]"


def sentence(row: StudyRow) -> str:
    """What the row's headline interval supports, in plain language."""
    e, eff = row.headline, row.effect
    name = f"{eff.title} ({eff.b} − {eff.a}, IQM difference {_ci(e)})"
    where = reading(e)
    if row.result.n_pairs <= row.result.n_games and e.low == e.high != 0:
        # One pair per game: resampling within games can only redraw that pair, so the
        # "interval" is a point, whatever the noise between seeds.
        return (
            f"{row.group}: {name}: one (game, seed) pair per game, so no interval can be "
            f"formed: no evidence either way that {eff.unclear}; run more seeds."
        )
    if where == "above 0":
        return f"{row.group}: {name}: the interval excludes 0: {eff.above}."
    if where == "below 0":
        return f"{row.group}: {name}: the interval excludes 0, below it: {eff.below}."
    if e.low == e.high == 0:  # e.g. an agent that ignores its input (random) in both
        return (
            f"{row.group}: {name}: every pair scored alike in both conditions, so the interval "
            f"is the single point 0: no evidence that {eff.unclear} in these runs."
        )
    return (
        f"{row.group}: {name}: the interval includes 0: no evidence that {eff.unclear}; the "
        f"data are consistent with differences from {e.low:.3f} to {e.high:.3f}, so they do "
        "not show that there is no effect either."
    )


def joint_sentences(rows: Sequence[StudyRow]) -> list[str]:
    """What two rows say together: a total effect the sound row does not account for."""
    by_key = {r.effect.key: r for r in rows}
    total, sound = by_key.get("total"), by_key.get("sound")
    if total is None or sound is None or reading(total.headline) != "above 0":
        return []
    if reading(sound.headline) == "above 0":
        return [
            f"{total.group}: both the total effect and what the sound carries exclude 0: the "
            "gain is not explained by the added network alone."
        ]
    return [
        f"{total.group}: the total effect excludes 0 but what the sound carries does not: "
        "these runs do not show that the gain comes from the sound rather than from the added "
        "network."
    ]


def summary_of(rows: Sequence[StudyRow], options: ReportOptions) -> tuple[str, ...]:
    """One sentence per row, what rows say together, then how the intervals were made."""
    out = [sentence(r) for r in rows]
    for group in dict.fromkeys(r.group for r in rows):
        out += joint_sentences([r for r in rows if r.group == group])
    out.append(
        f"Intervals: {int(LEVEL * 100)}% {options.method} paired stratified bootstrap "
        f"({options.reps:,} replicates; (game, seed) pairs resampled within each game), one "
        f"interval per row, not adjusted for the {len(rows)} comparisons; "
        "P(B > A) compares runs across seeds as rliable defines it."
    )
    return tuple(out)


def audio_study(
    final: pd.DataFrame, labels: pd.DataFrame, games: Sequence[str], options: ReportOptions
) -> tuple[Study | None, list[str]]:
    """The decomposition of every group with two or more audio conditions, and notes.

    ``final``: one row per run with algorithm, game, seed, hns (``scores.final_scores``);
    ``labels``: algorithm, variant, condition; ``games``: the games compared (the report's
    common games). None when no group has a row.
    """
    rows, notes = [], []
    for group, by_audio in audio_groups(labels).items():
        for eff in EFFECTS:
            if eff.a not in by_audio or eff.b not in by_audio:
                continue
            a, b = by_audio[eff.a], by_audio[eff.b]
            try:
                ma, mb, kept = paired_matrices(final, a, b, games)
            except BenchError as e:
                notes.append(f"audio study, {group} {eff.b} − {eff.a}: left out: {e}")
                continue
            if not kept:
                notes.append(f"audio study, {group} {eff.b} − {eff.a}: no shared (game, seed)")
                continue
            result = paired_comparison(ma, mb, a, b, options)
            rows.append(StudyRow(group, eff, a, b, kept, result))
    if not rows:
        return None, notes
    return Study(tuple(rows), summary_of(rows, options)), notes
