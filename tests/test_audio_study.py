"""The audio study of a report: the decomposition's arithmetic on hand-made tables with known
differences, which rows appear, the plain-language summary, and the files it adds."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.env.games import games
from bench.report.analysis import analyze
from bench.report.columns import EVAL_COLUMNS, RUN_COLUMNS, empty_frame
from bench.report.options import ReportOptions
from bench.report.study import EFFECTS, StudyRow, joint_sentences, sentence
from bench.report.write import write_report
from bench.stats.estimates import Estimate
from bench.stats.paired import PAIRED_METRICS, PairedComparison
from bench.suite.expand import expand
from bench.suite.load import load_suite

FAST = ReportOptions(reps=400, profile_reps=100, seed=3)
GAMES = ("Pong", "Assault", "Amidar")


def ledger(shift: dict[str, float], *, seeds: int = 5, variant: str = "BBF") -> pd.DataFrame:
    """Final evaluations: a run's human-normalized score is a (game, seed) luck shared by the
    conditions plus ``shift[audio]``, so every paired difference is a difference of shifts."""
    rng = np.random.default_rng(0)
    luck = {(g, s): float(rng.gamma(2.0, 0.3)) for g in GAMES for s in range(seeds)}
    rows = []
    for audio, delta in shift.items():
        cond = f"audio={audio}"
        for (g, s), base in luck.items():
            game = games()[g]
            rows.append(
                {
                    "source": "suite",
                    "run_id": f"{variant}-{audio}-{g}-{s}",
                    "algorithm": f"{variant} [{cond}]",
                    "variant": variant,
                    "condition": cond,
                    "game": g,
                    "seed": s,
                    "env_step": 100_000,
                    "score": game.random + (base + delta) * (game.human - game.random),
                    "final": True,
                    "protocol": "p0",
                    "git_sha": "abc1234",
                }
            )
    return pd.DataFrame(rows)[list(EVAL_COLUMNS)]


def no_runs() -> pd.DataFrame:
    return empty_frame(RUN_COLUMNS)


def test_decomposition_of_known_shifts() -> None:
    # on = off + 0.3, silent = off + 0.1, shuffled = off + 0.35 on every run: each row's
    # paired difference is one constant, so its IQM difference is exact and its CI degenerate.
    evals = ledger({"off": 0.0, "on": 0.3, "silent": 0.1, "shuffled": 0.35})
    study = analyze(evals, no_runs(), FAST).study
    assert study is not None
    rows = {r.effect.key: r for r in study.rows}
    assert list(rows) == ["total", "capacity", "sound", "timing"]
    expected = {"total": 0.3, "capacity": 0.1, "sound": 0.2, "timing": -0.05}
    for key, value in expected.items():
        r = rows[key]
        assert (
            r.group == "BBF" and r.result.n_pairs == 15 and r.games == ["Amidar", "Assault", "Pong"]
        )
        for stat in ("iqm_difference", "iqm_of_paired_differences", "mean_difference"):
            e = r.result.aggregates[stat]
            assert (e.estimate, e.low, e.high) == pytest.approx((value, value, value), abs=1e-9)
        assert r.result.aggregates["paired_win_rate"].estimate == (1.0 if value > 0 else 0.0)
        for game in r.result.per_game:
            assert game.difference.estimate == pytest.approx(value, abs=1e-9)
    assert (rows["total"].a, rows["total"].b) == ("BBF [audio=off]", "BBF [audio=on]")
    assert (rows["sound"].a, rows["sound"].b) == ("BBF [audio=silent]", "BBF [audio=on]")
    assert (rows["timing"].a, rows["timing"].b) == ("BBF [audio=shuffled]", "BBF [audio=on]")
    text = "\n".join(study.summary)
    assert "the sound carries information beyond the added capacity." in text
    assert "excludes 0, below it: sound in step with the game does worse" in text
    assert "gain is not explained by the added network alone" in text


def test_study_row_equals_the_compare_option() -> None:
    evals = ledger({"off": 0.0, "on": 0.0})
    noise = np.random.default_rng(1).normal(0, 0.2, len(evals) // 2)
    on = evals["condition"] == "audio=on"
    span = evals["game"].map(lambda g: games()[g].human - games()[g].random)
    evals.loc[on, "score"] += (noise + 0.05) * span[on]
    opts = ReportOptions(reps=400, profile_reps=100, seed=3, compare=("audio=off:audio=on",))
    report = analyze(evals, no_runs(), opts)
    assert report.study is not None and [r.effect.key for r in report.study.rows] == ["total"]
    (row,) = report.study.rows
    (comparison,) = report.comparisons
    assert row.result == comparison.result  # same statistics, same random stream
    e = row.headline
    assert e.low < e.estimate < e.high  # noisy pairs: a real interval


def test_rows_need_both_conditions_and_groups_stay_apart() -> None:
    both = pd.concat(
        [ledger({"off": 0.0, "silent": 0.2}), ledger({"on": 0.1, "shuffled": 0.0}, variant="DER")]
    )
    study = analyze(both, no_runs(), FAST).study
    assert study is not None
    assert [(r.group, r.effect.key) for r in study.rows] == [("BBF", "capacity"), ("DER", "timing")]
    # Labels without an audio condition: no study at all.
    plain = ledger({"off": 0.0}).assign(condition="", algorithm="BBF")
    assert analyze(plain, no_runs(), FAST).study is None
    # One audio condition alone: nothing to pair.
    assert analyze(ledger({"on": 0.0}), no_runs(), FAST).study is None


def _row(key: str, low: float, estimate: float, high: float) -> StudyRow:
    effect = next(e for e in EFFECTS if e.key == key)
    est = Estimate(estimate, low, high)
    result = PairedComparison({m: est for m in PAIRED_METRICS}, [], 10, 2)
    return StudyRow("BBF", effect, "a", "b", ["Pong", "Assault"], result)


def test_summary_wording() -> None:
    above = sentence(_row("sound", 0.01, 0.2, 0.4))
    assert "the interval excludes 0: the sound carries information beyond" in above
    unclear = sentence(_row("sound", -0.1, 0.2, 0.4))
    assert "includes 0: no evidence that the sound carries information beyond" in unclear
    assert "do not show that there is no effect" in unclear
    assert "-0.100 to 0.400" in unclear
    assert "no effect" not in unclear.replace("do not show that there is no effect", "")
    point = sentence(_row("total", 0.0, 0.0, 0.0))
    assert "every pair scored alike in both conditions" in point and "no evidence that" in point
    below = sentence(_row("capacity", -0.4, -0.2, -0.01))
    assert "excludes 0, below it: the audio network fed silence makes the agent worse" in below
    # One pair per game: a point, not an interval; nothing is claimed from it.
    single = _row("sound", 0.02, 0.02, 0.02)
    single = dataclasses.replace(single, result=dataclasses.replace(single.result, n_pairs=2))
    lone = sentence(single)
    assert "no interval can be formed" in lone and "excludes 0" not in lone
    assert "excludes 0" in sentence(_row("sound", 0.02, 0.02, 0.02))  # 10 pairs, 2 games
    # A total effect that the sound row does not account for is said to be unexplained.
    rows = [_row("total", 0.1, 0.3, 0.5), _row("sound", -0.1, 0.1, 0.3)]
    (joint,) = joint_sentences(rows)
    assert "do not show that the gain comes from the sound" in joint
    assert joint_sentences([_row("total", -0.1, 0.3, 0.5), rows[1]]) == []


def test_report_files_lead_with_the_study(tmp_path: Path) -> None:
    evals = ledger({"off": 0.0, "on": 0.3, "silent": 0.1}, seeds=3)
    write_report(analyze(evals, no_runs(), FAST), tmp_path)
    table = pd.read_csv(tmp_path / "audio_study.csv")
    iqm = table[table["metric"] == "iqm_difference"].set_index("effect")
    assert list(iqm.index) == ["total", "capacity", "sound"]
    assert iqm.loc["sound", "estimate"] == pytest.approx(0.2, abs=1e-9)
    assert iqm.loc["sound", "a"] == "BBF [audio=silent]" and iqm.loc["total", "n_pairs"] == 9
    per_game = pd.read_csv(tmp_path / "audio_study_per_game.csv")
    assert len(per_game) == 3 * 3 and per_game["difference"].round(9).isin([0.3, 0.1, 0.2]).all()
    assert (tmp_path / "figures/audio_study_1.png").is_file()
    tex = (tmp_path / "tables/audio_study.tex").read_text()
    assert r"what the sound carries (on $-$ silent) & 0.200 [0.200, 0.200]" in tex
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Does hearing the game help?") < md.index("## Provenance")
    assert "| BBF | what the sound carries | BBF [audio=on] − BBF [audio=silent] | 9 | 3 |" in md
    assert "![Audio study per game: BBF](figures/audio_study_1.png)" in md


def test_the_audio_suites_pair_four_conditions_on_shared_seeds() -> None:
    suites = Path(__file__).resolve().parent.parent / "suites"
    for name, n_games in (("sem3.yaml", 3), ("audio_atari100k.yaml", 26)):
        specs = expand(load_suite(suites / name))
        conditions = {s.condition_label for s in specs}
        assert conditions == {f"audio={a}" for a in ("off", "on", "silent", "shuffled")}
        assert all(s.protocol.audio == s.condition_label.split("=")[1] for s in specs)
        cells = Counter((s.game, s.seed) for s in specs)
        assert len({g for g, _ in cells}) == n_games and set(cells.values()) == {4}
        assert len({s for _, s in cells}) >= 5
    sem3 = {s.game for s in expand(load_suite(suites / "sem3.yaml"))}
    assert sem3 == {"Assault", "RoadRunner", "Amidar"}
