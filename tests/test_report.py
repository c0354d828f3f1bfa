"""``bench report`` end to end on synthetic ledger frames, baselines and external files."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.env.games import games
from bench.report import report_old as report
from bench.report.baselines import EVAL_COLUMNS, load_external, parse_baselines
from bench.stats import metrics
from bench.stats.estimates import aggregate_estimates

FAST = report.ReportOptions(reps=400, profile_reps=100, seed=3)


def synthetic_ledger(
    *,
    game_names: tuple[str, ...] = ("Pong", "Assault", "Amidar"),
    seeds: int = 5,
    conditions: tuple[str, ...] = ("audio=off", "audio=on"),
    effect: float = 0.2,
    periodic: tuple[int, ...] = (50_000, 100_000),
    protocols: dict[str, str] | None = None,
    not_done: dict[tuple[str, str, int], str] | None = None,
    rng_seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(evals, runs) frames as ``bench.run.ledger.load_results`` returns them.

    Scores: human-normalized luck per (game, seed) shared by the conditions, plus ``effect``
    times the condition's index. ``not_done`` maps (condition, game, seed) to a run state.
    """
    rng = np.random.default_rng(rng_seed)
    table = games()
    protocols = protocols or {}
    not_done = not_done or {}
    evals, runs = [], []
    luck = {(g, s): rng.gamma(2.0, 0.3) for g in game_names for s in range(seeds)}
    for k, cond in enumerate(conditions):
        label = f"BBF [{cond}]"
        proto = protocols.get(cond, "p0")
        proto_json = json.dumps({"eval_epsilon": 0.001, "audio": cond.split("=")[1]})
        for g in game_names:
            for s in range(seeds):
                run_id = f"{cond}-{g}-{s}"
                state = not_done.get((cond, g, s), "done")
                runs.append(
                    dict(source="suite-a", run_id=run_id, algorithm=label, variant="BBF",
                         condition=cond, game=g, seed=s, state=state,
                         attempts=1 if state != "pending" else 0,
                         error="CUDA out of memory" if state == "failed" else "",
                         protocol=proto, protocol_json=proto_json, git_sha="abc1234",
                         suite="audio-ablation")
                )  # fmt: skip
                if state != "done":
                    continue
                hns = luck[(g, s)] + effect * k + rng.normal(0, 0.05)
                base = dict(source="suite-a", run_id=run_id, algorithm=label, variant="BBF",
                            condition=cond, game=g, seed=s, protocol=proto,
                            git_sha="abc1234")  # fmt: skip
                span = table[g].human - table[g].random
                for step in periodic:
                    frac = step / max(periodic)
                    evals.append({**base, "env_step": step, "final": False,
                                  "score": table[g].random + frac * hns * span})  # fmt: skip
                evals.append({**base, "env_step": 100_000, "final": True,
                              "score": table[g].random + hns * span})  # fmt: skip
    return pd.DataFrame(evals)[list(EVAL_COLUMNS)], pd.DataFrame(runs)


def _matrix(evals: pd.DataFrame, label: str, game_names: list[str]) -> np.ndarray:
    final = report.final_scores(evals)
    return report.score_matrix(final, label, game_names)


def test_end_to_end_files_and_values(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(not_done={("audio=on", "Amidar", 4): "failed",
                                             ("audio=off", "Pong", 2): "pending"})  # fmt: skip
    opts = report.ReportOptions(reps=400, profile_reps=100, seed=3, compare=("audio=off:audio=on",))
    summary = report.write_report(evals, runs, tmp_path, opts)
    assert "provisional: 2 runs missing" in summary
    for name in [
        "aggregates.csv",
        "per_game.csv",
        "probability_of_improvement.csv",
        "report.md",
        "provenance.json",
        "paired_aggregates.csv",
        "paired_per_game.csv",
        "tables/aggregates.tex",
        "tables/per_game.tex",
        "tables/paired.tex",
    ] + [
        f"figures/{f}.{ext}"
        for f in (
            "interval_estimates",
            "performance_profiles",
            "probability_of_improvement",
            "sample_efficiency",
            "learning_curves",
            "forest_1",
        )
        for ext in ("png", "pdf")
    ]:
        assert (tmp_path / name).is_file(), name  # fmt: skip

    agg = pd.read_csv(tmp_path / "aggregates.csv")
    assert list(agg.columns) == list(report.AGGREGATE_COLUMNS)
    order = ["Pong", "Assault", "Amidar"]  # table order: Amidar, Assault, Pong
    table_order = [g for g in games() if g in order]
    for label in ("BBF [audio=off]", "BBF [audio=on]"):
        m = _matrix(evals, label, table_order)
        direct = aggregate_estimates(m, reps=400, seed=3, stream=label)
        rows = agg[agg["algorithm"] == label].set_index("metric")
        for metric, e in direct.aggregates.items():
            assert rows.loc[metric, "estimate"] == e.estimate
            assert rows.loc[metric, "ci_low"] == e.low
            assert rows.loc[metric, "ci_high"] == e.high
        assert rows.loc["iqm", "estimate"] == pytest.approx(metrics.iqm(m))
        assert rows["n_runs"].iloc[0] == 14 and rows["n_games"].iloc[0] == 3  # ragged: 14 runs

    per_game = pd.read_csv(tmp_path / "per_game.csv")
    row = per_game[(per_game["algorithm"] == "BBF [audio=on]") & (per_game["game"] == "Amidar")]
    final = report.final_scores(evals)
    raw = final[(final["algorithm"] == "BBF [audio=on]") & (final["game"] == "Amidar")]["score"]
    assert int(row["n_runs"].iloc[0]) == 4
    assert row["score_mean"].iloc[0] == pytest.approx(raw.mean())
    assert row["score_ci_low"].iloc[0] <= raw.mean() <= row["score_ci_high"].iloc[0]

    paired = pd.read_csv(tmp_path / "paired_aggregates.csv").set_index("metric")
    assert paired.loc["mean_difference", "ci_low"] > 0  # the synthetic effect is 0.2
    assert int(paired.loc["mean_difference", "n_pairs"]) == 13  # 15 seeds x games - 2 unpaired

    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["provisional"] is True
    assert prov["suites"] == ["audio-ablation"]
    assert prov["git_shas"] == ["abc1234"]
    assert {r["state"] for r in prov["missing_runs"]} == {"failed", "pending"}
    assert prov["failed_runs"][0]["error"] == "CUDA out of memory"
    assert prov["algorithms"]["BBF [audio=on]"]["runs_per_game"] == {
        "Amidar": 4, "Assault": 5, "Pong": 5}  # fmt: skip
    md = (tmp_path / "report.md").read_text()
    assert "**Provisional**" in md and "## Missing runs" in md and "CUDA out of memory" in md
    assert "protocols differ" not in md  # same protocol hash for both conditions
    tex = (tmp_path / "tables/aggregates.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex


def test_reports_are_reproducible(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=())
    report.write_report(evals, runs, tmp_path / "a", FAST)
    report.write_report(evals, runs, tmp_path / "b", FAST)
    for name in ("aggregates.csv", "per_game.csv", "report.md", "provenance.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_no_periodic_evaluations_skips_curves(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=())
    report.write_report(evals, runs, tmp_path, FAST)
    assert not (tmp_path / "figures/sample_efficiency.png").exists()
    assert not (tmp_path / "figures/learning_curves.png").exists()
    md = (tmp_path / "report.md").read_text()
    assert "no periodic evaluations" in md
    assert "Provisional" not in md


def test_mixed_protocols_refused_unless_allowed(tmp_path: Path) -> None:
    a_evals, a_runs = synthetic_ledger(seeds=3, conditions=("audio=on",), periodic=())
    b_evals, b_runs = synthetic_ledger(seeds=3, conditions=("audio=on",), periodic=(),
                                       protocols={"audio=on": "p1"})  # fmt: skip
    b_evals["run_id"] = "other-" + b_evals["run_id"]
    b_runs["run_id"] = "other-" + b_runs["run_id"]
    b_runs["protocol_json"] = json.dumps({"eval_epsilon": 0.01, "audio": "on"})
    evals = pd.concat([a_evals, b_evals], ignore_index=True)
    runs = pd.concat([a_runs, b_runs], ignore_index=True)
    with pytest.raises(BenchError) as err:
        report.write_report(evals, runs, tmp_path, FAST)
    msg = str(err.value)
    assert "\n" not in msg
    assert "'BBF [audio=on]'" in msg and "p0 (9 runs)" in msg and "p1 (9 runs)" in msg
    assert "eval_epsilon (0.001 vs 0.01)" in msg and "--allow-mixed-protocols" in msg
    mixed = report.ReportOptions(reps=400, profile_reps=100, allow_mixed_protocols=True)
    report.write_report(evals, runs, tmp_path, mixed)
    agg = pd.read_csv(tmp_path / "aggregates.csv")
    assert agg["n_runs"].iloc[0] == 18
    assert "pooled" in (tmp_path / "report.md").read_text()


def test_compare_resolution() -> None:
    labels = pd.DataFrame(
        {
            "algorithm": ["BBF [audio=off]", "BBF [audio=on]", "DER [audio=off]",
                          "DER [audio=on]", "SPR"],
            "variant": ["BBF", "BBF", "DER", "DER", "SPR"],
            "condition": ["audio=off", "audio=on", "audio=off", "audio=on", ""],
        }
    )  # fmt: skip
    assert report.resolve_compare("audio=off:audio=on", labels) == [
        ("BBF [audio=off]", "BBF [audio=on]"),
        ("DER [audio=off]", "DER [audio=on]"),
    ]
    assert report.resolve_compare("SPR:BBF [audio=on]", labels) == [("SPR", "BBF [audio=on]")]
    with pytest.raises(BenchError, match="'audio=loud' names no algorithm or condition.*labels"):
        report.resolve_compare("audio=off:audio=loud", labels)
    with pytest.raises(BenchError, match="expected A:B"):
        report.resolve_compare("audio=off", labels)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_malformed_external_files(tmp_path: Path) -> None:
    cases = {
        "missing.csv": None,
        "cols.csv": "algorithm,game,score\nX,Pong,1\n",
        "extra.csv": "algorithm,game,run,score,seed\nX,Pong,0,1,0\n",
        "game.csv": "algorithm,game,run,score\nX,Pongg,0,1\n",
        "score.csv": "algorithm,game,run,score\nX,Pong,0,1\nX,Pong,1,abc\n",
        "dup.csv": "algorithm,game,run,score\nX,Pong,0,1\nX,Pong,0,2\n",
        "empty.csv": "",
    }
    expected = {
        "missing.csv": "no such file",
        "cols.csv": "missing column(s) run; expected columns algorithm,game,run,score "
        "(optional: env_step)",
        "extra.csv": "unknown column(s) seed",
        "game.csv": "line 2: unknown game 'Pongg'; did you mean Pong",
        "score.csv": "line 3: score 'abc' is not a number",
        "dup.csv": "line 3: duplicate row",
        "empty.csv": "not a valid CSV",
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            _write(path, text)
        with pytest.raises(BenchError) as err:
            load_external(path)
        msg = str(err.value)
        assert msg.startswith(str(path)) and "\n" not in msg, msg
        assert expected[name] in msg, msg
    with pytest.raises(BenchError, match="unknown baseline 'DQN'.*valid: BBF, DER"):
        parse_baselines("DER,DQN")


def test_external_curves_give_final_scores(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mine.csv",
        "algorithm,game,run,env_step,score\n"
        "Mine,pong,0,50000,-20\nMine,pong,0,100000,-10\nMine,Pong,1,100000,-12\n",
    )
    rows = load_external(path)
    final = rows[rows["final"]]
    assert sorted(final["score"]) == [-12, -10] and set(rows["game"]) == {"Pong"}
    assert (~rows["final"]).sum() == 3


def test_main_with_ledger_baselines_and_external(tmp_path: Path, monkeypatch) -> None:
    evals, runs = synthetic_ledger(game_names=("Pong", "Assault"), seeds=3, periodic=(100_000,))
    ledger = types.ModuleType("bench.report.load")
    seen = {}

    def load_results(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
        seen["dirs"] = dirs
        return evals, runs

    ledger.load_results = load_results  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.report.load", ledger)
    ext = _write(tmp_path / "ext.csv", "algorithm,game,run,score\n"
                 + "".join(f"Theirs,{g},{r},{10 * r}\n" for g in ("Pong", "Assault", "Alien")
                           for r in range(3)))  # fmt: skip
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    args = parser.parse_args(
        [str(tmp_path / "suite"), "-o", str(tmp_path / "out"), "--baselines", "der",
         "--external", str(ext), "--reps", "300", "--profile-reps", "100",
         "--compare", "BBF [audio=off]:BBF [audio=on]"]
    )  # fmt: skip
    assert report.main(args) == 0
    assert seen["dirs"] == [tmp_path / "suite"]
    agg = pd.read_csv(tmp_path / "out/aggregates.csv")
    assert list(dict.fromkeys(agg["algorithm"])) == [
        "BBF [audio=off]", "BBF [audio=on]", "Theirs", "DER (published)"]  # fmt: skip
    assert set(agg["n_games"]) == {2}  # only the games every algorithm has
    der = agg[(agg["algorithm"] == "DER (published)")]
    assert set(der["n_runs"]) == {200}
    md = (tmp_path / "out/report.md").read_text()
    assert "left out: Alien" in md and "baseline DER:" in md
    # the published DER curves exist, so the curve figure is drawn (for DER only here)
    assert (tmp_path / "out/figures/sample_efficiency.pdf").is_file()


def test_baselines_only(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    args = parser.parse_args(["-o", str(tmp_path), "--baselines", "DER,BBF", "--reps", "200",
                              "--profile-reps", "50"])  # fmt: skip
    assert report.main(args) == 0
    agg = pd.read_csv(tmp_path / "aggregates.csv").set_index(["algorithm", "metric"])
    assert agg.loc[("DER (published)", "median"), "estimate"] == pytest.approx(
        0.18936086395020874, abs=1e-9
    )
    assert agg.loc[("BBF (published)", "iqm"), "n_runs"] == 1508
    with pytest.raises(BenchError, match="nothing to report"):
        report.main(parser.parse_args(["-o", str(tmp_path)]))
