"""``bench games --audio``: the event statistics on hand-made sequences with known answers, a
real recording of one game, and the command's table and files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli.main import main
from bench.env.atari import SILENCE
from bench.env.audio_stats import loudness, record_random_policy
from bench.report.game_audio import GAME_AUDIO_COLUMNS, game_audio_row
from bench.stats.events import followed_within, mutual_information, onsets, precedence


def test_onsets_start_sounds_and_jumps_in_level() -> None:
    loud = np.array([0, 3, 3, 0, 0, 2, 5, 4, 9, 9, 1.0])
    expected = [0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0]
    assert onsets(loud, ratio=2.0).astype(int).tolist() == expected
    # An episode's first step follows silence, whatever the step before it sounded like.
    starts = np.zeros(11, dtype=bool)
    starts[2] = True
    assert onsets(loud, ratio=2.0, starts=starts)[2]
    assert not onsets(np.zeros(5)).any()


def test_followed_within_counts_only_later_steps_of_the_episode() -> None:
    events = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert followed_within(events, 2).astype(int).tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    starts = np.array([1, 0, 0, 0, 0, 1, 0, 0], dtype=bool)  # step 6's event: next episode
    assert followed_within(events, 2, starts=starts).astype(int).tolist() == [
        1,
        1,
        0,
        0,
        0,
        1,
        0,
        0,
    ]


def test_lift_when_every_onset_is_followed_by_a_reward() -> None:
    n, k = 100, 3
    onset = np.zeros(n, dtype=bool)
    onset[::10] = True  # 0, 10, ..., 90
    reward = np.zeros(n, dtype=bool)
    reward[2::10] = True  # two steps after each onset: 2, 12, ..., 92
    p = precedence(onset, reward, k)
    # Steps 0..96 count (97 = n - k). "A reward in t+1..t+3" holds for t in {r-3, r-2, r-1}
    # of each reward r: 2 steps for r = 2 (t >= 0), 3 for each of the other 9: 29 of 97.
    assert p.steps == 97 and p.onsets == 10
    assert p.p_event == pytest.approx(29 / 97)
    assert p.p_event_given_onset == 1.0
    assert p.lift == pytest.approx(97 / 29)
    assert p.same_step_lift == 0.0  # no reward in an onset's own step
    # The same rewards in the onsets' own steps: marked, not announced.
    same = precedence(onset, onset, k)
    assert same.p_event_given_onset == 0.0 and same.lift == 0.0
    assert same.same_step_lift == pytest.approx(97 / 10)
    # No onsets: the lift is undefined, and the information is zero.
    none = precedence(np.zeros(n, dtype=bool), reward, k)
    assert math.isnan(none.lift) and none.mutual_information == 0.0


def test_mutual_information_of_known_pairs() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(200_000) < 0.5
    assert mutual_information(x, x) == pytest.approx(1.0, abs=1e-4)  # a fair coin with itself
    assert mutual_information(x, ~x) == pytest.approx(1.0, abs=1e-4)
    y = rng.random(200_000) < 0.2
    assert 0.0 <= mutual_information(x, y) < 1e-4  # independent: only the plug-in bias
    # x = (a, b) and y = a: 1 bit of 2.
    a, b = rng.random(200_000) < 0.5, rng.random(200_000) < 0.5
    assert mutual_information(a & b, a) == pytest.approx(0.3113, abs=2e-3)


def test_a_real_recording_is_reproducible_and_in_range() -> None:
    # Breakout sounds only when the ball hits something: about 1 step in 8 under a random
    # policy; Assault's engine sounds on every step.
    breakout = record_random_policy("Breakout", steps=300, seed=1)
    again = record_random_policy("Breakout", steps=300, seed=1)
    other = record_random_policy("Breakout", steps=300, seed=2)
    assert np.array_equal(breakout.loudness, again.loudness)
    assert np.array_equal(breakout.reward, again.reward)
    assert not np.array_equal(breakout.loudness, other.loudness)
    silent = np.mean(breakout.loudness == 0)
    assert 0.5 < silent < 1.0 and breakout.start[0] and breakout.steps == 300
    assert (breakout.loudness <= 128).all()
    assault = record_random_policy("Assault", steps=100, seed=1)
    assert (assault.loudness > 0).all()
    fields = ("loudness", "reward", "life_loss", "start")
    row = game_audio_row("Breakout", {f: getattr(breakout, f) for f in fields})
    assert row["nonsilent_fraction"] == pytest.approx(1 - silent)
    assert 0 < row["onset_rate"] <= row["nonsilent_fraction"]
    assert row["reward_steps"] == np.count_nonzero(breakout.reward)
    assert row["life_losses"] == np.count_nonzero(breakout.life_loss) > 0


def test_loudness_is_zero_only_at_silence() -> None:
    audio = np.full((3, 2048), SILENCE, dtype=np.uint8)
    audio[1, 5] = SILENCE + 64
    audio[2, :] = SILENCE - 10
    assert loudness(audio).tolist() == [0.0, pytest.approx(64 / np.sqrt(2048)), 10.0]


def test_command_writes_table_and_figure(tmp_path: Path, capsys) -> None:
    out = tmp_path / "g"
    rc = main(["games", "--audio", "--games", "Pong", "--steps", "150", "-o", str(out), "--csv"])
    assert rc == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "game_audio.csv")
    assert list(table.columns) == list(GAME_AUDIO_COLUMNS)
    assert table["game"].tolist() == ["Pong"] and table["steps"].tolist() == [150]
    assert printed.splitlines()[0] == ",".join(GAME_AUDIO_COLUMNS)
    assert "| Pong | 150 |" in (out / "game_audio.md").read_text()
    assert (out / "figures/game_audio.png").is_file()
