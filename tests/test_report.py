"""``bench report``: the analysis's values on hand-made tables (no disk), the files it writes,
loading ledgers and training metrics, baselines and external files, and the command."""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from bench.cli import report as cli
from bench.core.errors import BenchError
from bench.env.games import games
from bench.report import figures
from bench.report.analysis import Report, analyze
from bench.report.baselines import load_baseline, load_external, parse_baselines
from bench.report.columns import (
    AGGREGATE_COLUMNS,
    EVAL_COLUMNS,
    LEARNING_CURVE_COLUMNS,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    TRAINING_METRIC_COLUMNS,
    empty_frame,
)
from bench.report.compare import resolve_compare
from bench.report.load import load_metrics, load_results
from bench.report.options import Inputs, ReportOptions
from bench.report.scores import curve_points, final_scores, score_matrix
from bench.report.write import write_report
from bench.run.ledger import Ledger, write_json
from bench.run.status import State, Status
from bench.stats import metrics
from bench.stats.estimates import aggregate_estimates
from bench.suite.expand import expand
from bench.suite.load import load_suite

FAST = ReportOptions(reps=400, profile_reps=100, seed=3)


def synthetic_ledger(
    *,
    game_names: tuple[str, ...] = ("Pong", "Assault", "Amidar"),
    seeds: int = 5,
    conditions: tuple[str, ...] = ("audio=off", "audio=on"),
    effect: float = 0.2,
    periodic: tuple[int, ...] = (50_000,),
    protocols: dict[str, str] | None = None,
    not_done: dict[tuple[str, str, int], str] | None = None,
    rng_seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(evals, runs) frames as ``bench.report.load.load_results`` returns them.

    Scores: human-normalized luck per (game, seed) shared by the conditions, plus ``effect``
    times the condition's index; periodic evaluations rise linearly to the final one at 100k.
    ``not_done`` maps (condition, game, seed) to a run state.
    """
    rng = np.random.default_rng(rng_seed)
    table = games()
    protocols = protocols or {}
    not_done = not_done or {}
    evals, runs = [], []
    luck = {(g, s): rng.gamma(2.0, 0.3) for g in game_names for s in range(seeds)}
    for k, cond in enumerate(conditions):
        proto = protocols.get(cond, "p0")
        proto_json = json.dumps({"eval_epsilon": 0.001, "audio": cond.split("=")[1]})
        for g in game_names:
            for s in range(seeds):
                base = {
                    "source": "suite-a",
                    "run_id": f"{cond}-{g}-{s}",
                    "algorithm": f"BBF [{cond}]",
                    "variant": "BBF",
                    "condition": cond,
                    "game": g,
                    "seed": s,
                    "protocol": proto,
                    "git_sha": "abc1234",
                }
                state = not_done.get((cond, g, s), State.DONE)
                runs.append(
                    base
                    | {
                        "state": state,
                        "attempts": 1 if state != State.PENDING else 0,
                        "error": "CUDA out of memory" if state == State.FAILED else "",
                        "protocol_json": proto_json,
                        "suite": "audio-ablation",
                    }
                )
                if state != State.DONE:
                    continue
                hns = luck[(g, s)] + effect * k + rng.normal(0, 0.05)
                span = table[g].human - table[g].random
                for step in (*periodic, 100_000):
                    score = table[g].random + step / 100_000 * hns * span
                    evals.append(
                        base | {"env_step": step, "final": step == 100_000, "score": score}
                    )
    return pd.DataFrame(evals)[list(EVAL_COLUMNS)], pd.DataFrame(runs)


def hand_made(hns: dict[str, list[float]], *, label: str = "X", step: int = 100_000) -> list[dict]:
    """Final evaluations of one label whose human-normalized scores are ``hns[game]``."""
    rows = []
    for g, values in hns.items():
        game = games()[g]
        for seed, v in enumerate(values):
            score = game.random + v * (game.human - game.random)
            rows.append(
                {
                    "source": "s",
                    "run_id": f"{label}-{g}-{seed}",
                    "algorithm": label,
                    "variant": label,
                    "condition": "",
                    "game": g,
                    "seed": seed,
                    "env_step": step,
                    "score": score,
                    "final": True,
                    "protocol": "",
                    "git_sha": "",
                }
            )
    return rows


def no_runs() -> pd.DataFrame:
    return empty_frame(RUN_COLUMNS)


def metrics_frame(rows: list[tuple[str, str, str, int, str, float]]) -> pd.DataFrame:
    """Training metrics from (run_id, algorithm, game, env_step, metric, value) rows."""
    frame = pd.DataFrame(
        rows, columns=["run_id", "algorithm", "game", "env_step", "metric", "value"]
    )
    frame = frame.assign(variant=frame["algorithm"], condition="", seed=0)
    return frame[list(METRIC_COLUMNS)]


# ---- the analysis's values, without touching disk ----------------------------------------


@pytest.fixture
def no_disk(monkeypatch):
    """Any file read or written in the block fails the test, but for code: the libraries'
    files, compiled-code caches and installed packages' metadata (numba reads all three when
    it first compiles; an editable install keeps its metadata in the checkout)."""
    games()  # the game table is read once and cached, before the block
    libraries = (sys.prefix, sys.base_prefix)
    for target, name in (
        (builtins, "open"),
        (Path, "open"),
        (Path, "read_text"),
        (Path, "write_text"),
        (Path, "mkdir"),
    ):
        original = getattr(target, name)

        def guard(*args, _original=original, **kwargs):
            path = str(args[0])
            code = ("__pycache__", ".egg-info", ".dist-info")
            if not path.startswith(libraries) and not any(c in path for c in code):
                raise AssertionError(f"the analysis touched the disk: {path}")
            return _original(*args, **kwargs)

        monkeypatch.setattr(target, name, guard)


def test_aggregates_of_a_hand_made_matrix(no_disk) -> None:
    # Pong's column 0, 2, 4, 6 and Boxing's 1, 3, 5, 7: eight runs x game scores.
    evals = pd.DataFrame(hand_made({"Pong": [0, 2, 4, 6], "Boxing": [1, 3, 5, 7]}))
    report = analyze(evals, no_runs(), FAST)
    assert isinstance(report, Report)
    agg = report.aggregates.set_index("metric")
    assert list(report.aggregates.columns) == list(AGGREGATE_COLUMNS)
    assert agg.loc["iqm", "estimate"] == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert agg.loc["median", "estimate"] == pytest.approx(3.5)  # of the game means 3 and 4
    assert agg.loc["mean", "estimate"] == pytest.approx(3.5)
    assert agg.loc["optimality_gap", "estimate"] == pytest.approx(1 / 8)  # only 0 is below 1
    assert agg.loc["iqm", "n_runs"] == 8 and agg.loc["iqm", "n_games"] == 2
    assert report.games.common == ["Boxing", "Pong"]  # the game table's order
    per_game = report.per_game.set_index("game")
    assert per_game.loc["Pong", "hns_mean"] == pytest.approx(3.0)
    assert per_game.loc["Pong", "score_mean"] == pytest.approx(-20.7 + 3 * (14.6 + 20.7))
    assert report.improvement == () and report.comparisons == ()
    assert report.notes == (
        "no periodic evaluations: sample-efficiency curves and the "
        "per-game learning-curve grid are skipped",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.notes = ()  # type: ignore[misc]
    with pytest.raises(AssertionError, match="touched the disk"):
        Path("report.md").read_text()  # the guard itself works


def test_learning_curves_end_at_the_final_evaluation(no_disk) -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=(50_000,))
    report = analyze(evals, runs, FAST)
    final = final_scores(evals)
    for label in report.labels:
        curve = report.curves[label]
        assert list(curve.steps) == [50_000, 100_000]
        iqm = report.estimates[label].aggregates["iqm"].estimate
        assert curve.estimate[-1] == pytest.approx(iqm)  # the last point is the aggregate's
    table = report.learning_curves
    assert list(table.columns) == list(LEARNING_CURVE_COLUMNS)
    last = table[(table["game"] == "Pong") & (table["algorithm"] == "BBF [audio=on]")].iloc[-1]
    raw = final[(final["game"] == "Pong") & (final["algorithm"] == "BBF [audio=on]")]["score"]
    assert last["env_step"] == 100_000 and last["n_runs"] == 3
    assert last["mean"] == pytest.approx(raw.mean())
    assert last["se"] == pytest.approx(raw.std(ddof=1) / np.sqrt(3))
    assert list(table["game"].drop_duplicates()) == ["Amidar", "Assault", "Pong"]


def test_the_final_evaluation_wins_a_shared_step(no_disk) -> None:
    # A published curve's last point and the final-score file's, at one step: final wins.
    final = hand_made({"Pong": [1.0, 2.0]})
    periodic = [r | {"final": False, "score": r["score"] + 5.0} for r in final]
    early = [r | {"final": False, "env_step": 50_000} for r in final]
    points = curve_points(pd.DataFrame(early + periodic + final))
    assert len(points) == 4 and points.duplicated(["run_id", "env_step"]).sum() == 0
    at_end = points[points["env_step"] == 100_000]
    assert at_end["final"].all() and list(at_end["score"]) == [r["score"] for r in final]
    # Final-only rows of unknown step (external files without env_step) make no curve point.
    assert curve_points(pd.DataFrame(hand_made({"Pong": [1.0]}, step=0))).empty
    with_curves = analyze(pd.DataFrame(early + periodic + final), no_runs(), FAST)
    without = analyze(pd.DataFrame(final), no_runs(), FAST)
    pd.testing.assert_frame_equal(with_curves.aggregates, without.aggregates)


def test_training_metrics_table(no_disk) -> None:
    frame = metrics_frame(
        [
            ("a", "X", "Pong", 1_000, "loss", 1.0),
            ("a", "X", "Pong", 2_000, "loss", 3.0),
            ("b", "X", "Pong", 1_000, "loss", 0.5),
            ("b", "X", "Pong", 2_000, "loss", 1.0),
            ("b", "X", "Pong", 2_000, "loss", 1.5),  # logged again after a resume: last counts
            ("a", "X", "Pong", 1_000, "epsilon", 0.5),
            ("a", "X", "Pong", 1_000, "env_steps", 1_000.0),
            ("a", "X", "Pong", 1_000, "spr_loss", 0.2),
            ("c", "Y", "Pong", 1_000, "steps_per_s", 300.0),
        ]
    )
    evals = pd.DataFrame(hand_made({"Pong": [0.1, 0.2]}, label="Y") + hand_made({"Pong": [0.3]}))
    table = analyze(evals, no_runs(), FAST, metrics=frame).training_metrics
    assert list(table.columns) == list(TRAINING_METRIC_COLUMNS)
    assert list(table["metric"].drop_duplicates()) == ["loss", "spr_loss", "epsilon", "steps_per_s"]
    assert "env_steps" not in set(table["metric"])  # bookkeeping: the x axis already
    loss = table[table["metric"] == "loss"].set_index("env_step")
    assert list(loss["mean"]) == [0.75, 2.25] and list(loss["n_runs"]) == [2, 2]
    assert loss.loc[2_000, "se"] == pytest.approx(np.std([3.0, 1.5], ddof=1) / np.sqrt(2))
    assert list(table["algorithm"].drop_duplicates()) == ["X", "Y"]  # report order
    assert table.loc[table["metric"] == "epsilon", "se"].iloc[0] == 0.0  # one run


def test_a_ledger_without_metrics_gets_a_note(no_disk) -> None:
    evals, runs = synthetic_ledger(seeds=2, periodic=())
    empty = empty_frame(METRIC_COLUMNS)
    for metrics_frame in (None, empty):
        report = analyze(evals, runs, FAST, metrics=metrics_frame)
        assert report.training_metrics.empty
        assert any("no run logged training metrics" in n for n in report.notes)
    baselines_only = analyze(pd.DataFrame(hand_made({"Pong": [1.0]})), no_runs(), FAST)
    assert not any("training metrics" in n for n in baselines_only.notes)


# ---- the files of a report ---------------------------------------------------------------


def _matrix(evals: pd.DataFrame, label: str, game_names: list[str]) -> np.ndarray:
    return score_matrix(final_scores(evals), label, game_names)


def test_end_to_end_files_and_values(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(
        not_done={("audio=on", "Amidar", 4): State.FAILED, ("audio=off", "Pong", 2): State.PENDING}
    )
    opts = ReportOptions(reps=400, profile_reps=100, seed=3, compare=("audio=off:audio=on",))
    summary = write_report(analyze(evals, runs, opts), tmp_path)
    assert "provisional: 2 runs missing" in summary
    csv = [
        "aggregates",
        "per_game",
        "probability_of_improvement",
        "paired_aggregates",
        "paired_per_game",
    ]
    figs = [
        "interval_estimates",
        "performance_profiles",
        "probability_of_improvement",
        "sample_efficiency",
        "learning_curves",
        "forest_1",
    ]
    names = ["report.md", "provenance.json"] + [f"{n}.csv" for n in csv]
    names += [f"tables/{n}.tex" for n in ("aggregates", "per_game", "paired")]
    names += [f"figures/{f}.{ext}" for f in figs for ext in ("png", "pdf")]
    for name in names:
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "figures/training_metrics.png").exists()

    agg = pd.read_csv(tmp_path / "aggregates.csv")
    assert list(agg.columns) == list(AGGREGATE_COLUMNS)
    table_order = [g for g in games() if g in ("Pong", "Assault", "Amidar")]
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
    final = final_scores(evals)
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
    runs_per_game = {"Amidar": 4, "Assault": 5, "Pong": 5}
    assert prov["algorithms"]["BBF [audio=on]"]["runs_per_game"] == runs_per_game
    md = (tmp_path / "report.md").read_text()
    assert "**Provisional**" in md and "## Missing runs" in md and "CUDA out of memory" in md
    assert "protocols differ" not in md  # same protocol hash for both conditions
    tex = (tmp_path / "tables/aggregates.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex


def test_training_metrics_figure_is_written_and_listed(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(seeds=2, periodic=())
    frame = metrics_frame(
        [
            (r.run_id, r.algorithm, r.game, step, m, v)
            for r in runs.itertuples()
            for step in (1_000, 2_000)
            for m, v in (("loss", 1 / step), ("epsilon", 0.01))
        ]
    )
    write_report(analyze(evals, runs, FAST, metrics=frame), tmp_path)
    assert (tmp_path / "figures/training_metrics.png").is_file()
    md = (tmp_path / "report.md").read_text()
    assert "![Training metrics](figures/training_metrics.png)" in md


def test_reports_are_reproducible(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=())
    write_report(analyze(evals, runs, FAST), tmp_path / "a")
    write_report(analyze(evals, runs, FAST), tmp_path / "b")
    for name in ("aggregates.csv", "per_game.csv", "report.md", "provenance.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_no_periodic_evaluations_skips_curves(tmp_path: Path) -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=())
    write_report(analyze(evals, runs, FAST), tmp_path)
    assert not (tmp_path / "figures/sample_efficiency.png").exists()
    assert not (tmp_path / "figures/learning_curves.png").exists()
    md = (tmp_path / "report.md").read_text()
    assert "no periodic evaluations" in md
    assert "Provisional" not in md


def test_mixed_protocols_refused_unless_allowed(tmp_path: Path) -> None:
    a_evals, a_runs = synthetic_ledger(seeds=3, conditions=("audio=on",), periodic=())
    b_evals, b_runs = synthetic_ledger(
        seeds=3, conditions=("audio=on",), periodic=(), protocols={"audio=on": "p1"}
    )
    b_evals["run_id"] = "other-" + b_evals["run_id"]
    b_runs["run_id"] = "other-" + b_runs["run_id"]
    b_runs["protocol_json"] = json.dumps({"eval_epsilon": 0.01, "audio": "on"})
    evals = pd.concat([a_evals, b_evals], ignore_index=True)
    runs = pd.concat([a_runs, b_runs], ignore_index=True)
    with pytest.raises(BenchError) as err:
        analyze(evals, runs, FAST)
    msg = str(err.value)
    assert "\n" not in msg
    assert "'BBF [audio=on]'" in msg and "p0 (9 runs)" in msg and "p1 (9 runs)" in msg
    assert "eval_epsilon (0.001 vs 0.01)" in msg and "--allow-mixed-protocols" in msg
    mixed = ReportOptions(reps=400, profile_reps=100, allow_mixed_protocols=True)
    write_report(analyze(evals, runs, mixed), tmp_path)
    agg = pd.read_csv(tmp_path / "aggregates.csv")
    assert agg["n_runs"].iloc[0] == 18
    assert "pooled" in (tmp_path / "report.md").read_text()


def test_compare_resolution() -> None:
    labels = pd.DataFrame(
        {
            "algorithm": [
                "BBF [audio=off]",
                "BBF [audio=on]",
                "DER [audio=off]",
                "DER [audio=on]",
                "SPR",
            ],
            "variant": ["BBF", "BBF", "DER", "DER", "SPR"],
            "condition": ["audio=off", "audio=on", "audio=off", "audio=on", ""],
        }
    )
    assert resolve_compare("audio=off:audio=on", labels) == [
        ("BBF [audio=off]", "BBF [audio=on]"),
        ("DER [audio=off]", "DER [audio=on]"),
    ]
    assert resolve_compare("SPR:BBF [audio=on]", labels) == [("SPR", "BBF [audio=on]")]
    with pytest.raises(BenchError, match="'audio=loud' names no algorithm or condition.*labels"):
        resolve_compare("audio=off:audio=loud", labels)
    with pytest.raises(BenchError, match="expected A:B"):
        resolve_compare("audio=off", labels)


# ---- figures -----------------------------------------------------------------------------


def test_paper_style_leaves_no_global_setting_behind(tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    with figures.paper_style():
        assert matplotlib.rcParams["font.size"] == figures.STYLE["font.size"]
    figures.sample_efficiency({}, {}, tmp_path / "empty")  # an empty panel says why
    assert (tmp_path / "empty.png").is_file()
    assert dict(matplotlib.rcParams) == before
    code = (
        "import matplotlib; before = dict(matplotlib.rcParams); backend = matplotlib.rcParams"
        "._get_backend_or_none(); import bench.report.figures, bench.report.write; "
        "assert dict(matplotlib.rcParams) == before; "
        "assert matplotlib.rcParams._get_backend_or_none() == backend"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# ---- loading -----------------------------------------------------------------------------

SUITE = """
name: tiny
games: [Pong, Breakout]
seeds: 2
variants: [random]
budget: {env_steps: 2000, eval_every: 1000, final_eval_episodes: 2}
"""


def launched(write_suite, tmp_path: Path) -> Ledger:
    """A ledger whose runs are all done: a periodic and a final evaluation each."""
    specs = expand(load_suite(write_suite(SUITE)))
    ledger = Ledger(tmp_path / "tiny")
    ledger.prepare(specs)
    for i, spec in enumerate(specs):
        evals = [
            {"env_step": 1_000, "final": False, "returns": [float(i)], "lengths": [10]},
            {"env_step": 2_000, "final": True, "returns": [i, i + 2.0], "lengths": [9, 9]},
        ]
        write_json(ledger.run_dir(spec.run_id) / "evals.json", {"evals": evals})
        ledger.write_status(spec.run_id, Status(state=State.DONE, attempts=1))
    return ledger


def test_load_metrics_from_a_ledger(write_suite, tmp_path: Path) -> None:
    ledger = launched(write_suite, tmp_path)
    first, second, third, _ = ledger.run_ids()
    lines = [
        {"env_step": 1000, "env_steps": 1000.0, "loss": 0.5},
        {"env_step": 2000, "env_steps": 2000.0, "loss": 0.25, "epsilon": 0.01},
    ]
    (ledger.run_dir(first) / "metrics.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines)
    )
    (ledger.run_dir(second) / "metrics.jsonl").write_text("")  # empty: nothing
    table = load_metrics([ledger.root])  # the third and fourth have no file: nothing
    assert list(table.columns) == list(METRIC_COLUMNS)
    assert len(table) == 5 and set(table["run_id"]) == {first}
    assert list(table["metric"]) == ["env_steps", "loss", "env_steps", "loss", "epsilon"]
    assert table["algorithm"].iloc[0] == "random" and table["game"].iloc[0] in ("Pong", "Breakout")
    path = ledger.run_dir(third) / "metrics.jsonl"
    torn = '{"env_step": 1000, "loss": 0.5}\n{"env_step": 2000, "loss": 0.2'
    for text, expected in (
        (torn, "line 2: not valid JSON"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ('{"loss": 0.5}\n', "line 1: env_step None is not an integer"),
        ('{"env_step": 10, "loss": "high"}\n', "line 1: metric 'loss' is 'high', not a number"),
    ):
        path.write_text(text)
        with pytest.raises(BenchError) as err:
            load_metrics([ledger.root])
        msg = str(err.value)
        assert msg.startswith(str(path)) and expected in msg and "\n" not in msg, msg


def test_command_on_a_ledger_with_metrics(write_suite, tmp_path: Path, capsys) -> None:
    ledger = launched(write_suite, tmp_path)
    for run_id in ledger.run_ids():
        rows = [{"env_step": s, "env_steps": float(s), "steps_per_s": 300.0} for s in (500, 1000)]
        (ledger.run_dir(run_id) / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)))
    evals, runs = load_results([ledger.root])
    assert len(evals) == 8 and set(runs["state"]) == {State.DONE}
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "report"
    args = parser.parse_args(
        [str(ledger.root), "-o", str(out), "--reps", "200", "--profile-reps", "50"]
    )
    assert cli.main(args) == 0
    assert "1 algorithms, 2 games in aggregates, complete" in capsys.readouterr().out
    assert (out / "figures/training_metrics.pdf").is_file()
    assert (out / "figures/learning_curves.pdf").is_file()
    md = (out / "report.md").read_text()
    assert "Training metrics" in md and "no run logged training metrics" not in md


# ---- baselines and external files ---------------------------------------------------------


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
    with pytest.raises(
        BenchError, match="unknown baseline 'DQN'.*valid: BBF, BBF-RR2, DER, DIAMOND, SPR, TWM"
    ):
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


def test_der_curves_end_at_its_final_scores() -> None:
    der = load_baseline("DER")
    points = curve_points(der)
    assert len(points) == 26 * 100 * 10  # 10k .. 100k, the 100k point once per run
    finals = der[der["final"]].set_index("run_id")["score"]
    at_end = points[points["env_step"] == 100_000].set_index("run_id")["score"]
    assert at_end.sort_index().equals(finals.sort_index())


def test_main_with_ledger_baselines_and_external(tmp_path: Path, monkeypatch) -> None:
    evals, runs = synthetic_ledger(game_names=("Pong", "Assault"), seeds=3, periodic=())
    seen = {}

    def fake_results(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
        seen["dirs"] = dirs
        return evals, runs

    monkeypatch.setattr(cli, "load_results", fake_results)
    monkeypatch.setattr(cli, "load_metrics", lambda dirs: empty_frame(METRIC_COLUMNS))
    lines = [f"Theirs,{g},{r},{10 * r}\n" for g in ("Pong", "Assault", "Alien") for r in range(3)]
    ext = _write(tmp_path / "ext.csv", "algorithm,game,run,score\n" + "".join(lines))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            str(tmp_path / "suite"),
            "-o",
            str(tmp_path / "out"),
            "--baselines",
            "der",
            "--external",
            str(ext),
            "--reps",
            "300",
            "--profile-reps",
            "100",
            "--compare",
            "BBF [audio=off]:BBF [audio=on]",
        ]
    )
    assert cli.main(args) == 0
    assert seen["dirs"] == [tmp_path / "suite"]
    agg = pd.read_csv(tmp_path / "out/aggregates.csv")
    assert list(dict.fromkeys(agg["algorithm"])) == [
        "BBF [audio=off]",
        "BBF [audio=on]",
        "Theirs",
        "DER (published)",
    ]
    assert set(agg["n_games"]) == {2}  # only the games every algorithm has
    der = agg[(agg["algorithm"] == "DER (published)")]
    assert set(der["n_runs"]) == {200}
    md = (tmp_path / "out/report.md").read_text()
    assert "left out: Alien" in md and "baseline DER:" in md
    # the published DER curves exist, so the curve figure is drawn: DER's curve, and the
    # ledger's labels as single points at 100k; Theirs has no step (final scores only)
    assert (tmp_path / "out/figures/sample_efficiency.pdf").is_file()
    assert "Theirs: no env step with an evaluation in every game" in md


def test_baselines_only(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["-o", str(tmp_path), "--baselines", "DER,BBF", "--reps", "200", "--profile-reps", "50"]
    )
    assert cli.main(args) == 0
    agg = pd.read_csv(tmp_path / "aggregates.csv").set_index(["algorithm", "metric"])
    assert agg.loc[("DER (published)", "median"), "estimate"] == pytest.approx(
        0.18936086395020874, abs=1e-9
    )
    assert agg.loc[("BBF (published)", "iqm"), "n_runs"] == 1508
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["inputs"]["baselines"] == ["DER", "BBF"]
    assert prov["baseline_sources"]["DER"].startswith("Source: DER per-run final scores")
    with pytest.raises(BenchError, match="nothing to report"):
        cli.main(parser.parse_args(["-o", str(tmp_path)]))


def test_inputs_record_what_a_report_was_made_from() -> None:
    inputs = Inputs(dirs=("runs/a",), baselines=("DER",), baseline_sources={"DER": "x"})
    assert inputs.to_json() == {"dirs": ["runs/a"], "baselines": ["DER"], "externals": []}


def test_action_spaces_are_never_compared_silently(tmp_path: Path) -> None:
    """Labels that acted in different action spaces need --allow-mixed-protocols; the
    report then states the difference in its provenance and in a paired comparison."""
    evals, runs = synthetic_ledger(seeds=3, periodic=(), protocols={"audio=on": "p1"})
    on = runs["condition"] == "audio=on"
    runs.loc[on, "protocol_json"] = json.dumps(
        {"eval_epsilon": 0.001, "audio": "on", "actions": "continuous", "clip_rewards": False}
    )
    runs.loc[~on, "protocol_json"] = json.dumps(
        {"eval_epsilon": 0.001, "audio": "off", "clip_rewards": True}  # recorded before the field
    )
    with pytest.raises(BenchError) as err:
        analyze(evals, runs, FAST)
    msg = str(err.value)
    assert "\n" not in msg
    assert "BBF [audio=off]: discrete; BBF [audio=on]: continuous" in msg
    assert "actions (discrete vs continuous)" in msg and "clip_rewards (True vs False)" in msg
    assert "--allow-mixed-protocols" in msg

    allowed = dataclasses.replace(FAST, allow_mixed_protocols=True, compare=("audio=off:audio=on",))
    report = analyze(evals, runs, allowed)
    assert any("different action spaces" in n for n in report.notes)
    prov = report.provenance
    assert prov["mixed_action_spaces"] and not prov["pooled_mixed_protocols"]
    assert prov["algorithms"]["BBF [audio=on]"]["action_space"] == "continuous"
    assert "actions (discrete vs continuous)" in report.comparisons[0].protocol_note
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**algorithms acted in different action spaces**" in md
    assert "p1 (continuous)" in md and "p0 (discrete)" in md


def test_one_action_space_needs_no_flag() -> None:
    evals, runs = synthetic_ledger(seeds=3, periodic=())
    runs["protocol_json"] = json.dumps({"actions": "continuous", "audio": "off"})
    report = analyze(evals, runs, FAST)
    assert not report.provenance["mixed_action_spaces"]
    assert not any("action spaces" in n for n in report.notes)
