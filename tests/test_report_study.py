"""Study reports: ablations against a base as paired differences ordered by effect, the
consistency of a sweep's best value across games and regimes, the held-out loss figure, and
the suite's study section read from a ledger."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import report as cli
from bench.core.errors import BenchError
from bench.env.games import games
from bench.report.ablations import kendall_tau
from bench.report.analysis import analyze
from bench.report.columns import ABLATION_COLUMNS, EVAL_COLUMNS, SWEEP_COLUMNS
from bench.report.load import load_results, load_study
from bench.report.options import ReportOptions
from bench.report.write import write_report
from bench.run.ledger import Ledger, write_json
from bench.run.status import State, Status
from bench.suite.expand import expand
from bench.suite.load import load_suite
from tests.test_report import metrics_frame, no_runs

FAST = ReportOptions(reps=300, profile_reps=50, seed=3)
GAMES = ("Pong", "Assault", "Amidar")


def rows(variant: str, condition: str, hns: dict[str, list[float]], step: int = 100_000):
    """Evaluations of one label: ``hns[game][seed]`` human-normalized, final at 100k."""
    label = f"{variant} [{condition}]" if condition else variant
    out = []
    for g, values in hns.items():
        game = games()[g]
        for seed, v in enumerate(values):
            out.append(
                {
                    "source": "s",
                    "run_id": f"{label}-{g}-{seed}",
                    "algorithm": label,
                    "variant": variant,
                    "condition": condition,
                    "game": g,
                    "seed": seed,
                    "env_step": step,
                    "score": game.random + v * (game.human - game.random),
                    "final": step == 100_000,
                    "protocol": "",
                    "git_sha": "",
                }
            )
    return out


def luck(shift: float) -> dict[str, list[float]]:
    """Per-(game, seed) luck that every variant shares, plus ``shift``."""
    return {g: [0.3 * (k + 1) + 0.1 * s + shift for s in range(5)] for k, g in enumerate(GAMES)}


def test_kendall_tau_by_hand():
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # 2 of 3 pairs agree
    # tau-b with a tie in y: (C - D) / sqrt((C + D + Tx) (C + D + Ty)) = 2 / sqrt(2 * 3)
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / 6**0.5)
    assert kendall_tau([1, 1], [1, 2]) != kendall_tau([1, 1], [1, 2])  # NaN: no order


def test_ablations_are_paired_differences_ordered_by_effect():
    evals = pd.DataFrame(
        rows("bbf", "", luck(0.0))
        + rows("no-spr", "", luck(-0.5))
        + rows("no-resets", "", luck(0.1))
        + rows("width-1", "", luck(-0.2)),
        columns=list(EVAL_COLUMNS),
    )
    report = analyze(evals, no_runs(), dataclasses.replace(FAST, ablations="bbf"))
    assert [c.b for c in report.ablations] == ["no-spr", "width-1", "no-resets"]
    assert {c.a for c in report.ablations} == {"bbf"}
    for c, shift in zip(report.ablations, (-0.5, -0.2, 0.1), strict=True):
        e = c.result.aggregates["mean_difference"]
        assert e.estimate == pytest.approx(shift) and e.low == pytest.approx(shift)
        assert c.result.n_pairs == 15 and c.result.n_games == 3
    with pytest.raises(BenchError, match="--ablations bfb: no variant 'bfb'.*valid: bbf, no-spr"):
        analyze(evals, no_runs(), dataclasses.replace(FAST, ablations="bfb"))


def test_ablations_pair_within_each_condition():
    evals = pd.DataFrame(
        rows("bbf", "rr=2", luck(0.0))
        + rows("bbf", "rr=8", luck(0.3))
        + rows("no-spr", "rr=2", luck(-0.1))
        + rows("no-spr", "rr=8", luck(-0.4)),
        columns=list(EVAL_COLUMNS),
    )
    report = analyze(evals, no_runs(), dataclasses.replace(FAST, ablations="bbf"))
    pairs = [(c.a, c.b) for c in report.ablations]
    assert pairs == [("bbf [rr=8]", "no-spr [rr=8]"), ("bbf [rr=2]", "no-spr [rr=2]")]
    diffs = [c.result.aggregates["mean_difference"].estimate for c in report.ablations]
    assert diffs == pytest.approx([-0.7, -0.1])


def sweep_evals() -> pd.DataFrame:
    """rr 1, 2, 4 on three games. Final: rr=2 best on Pong and Assault, rr=4 on Amidar (and
    overall rr=2). At 50k rr=1 leads everywhere: an early regime that disagrees."""
    final = {
        "1": {"Pong": 0.1, "Assault": 0.2, "Amidar": 0.3},
        "2": {"Pong": 0.5, "Assault": 0.6, "Amidar": 0.4},
        "4": {"Pong": 0.3, "Assault": 0.4, "Amidar": 0.5},
    }
    early = {"1": 0.3, "2": 0.2, "4": 0.1}
    out = []
    for rr, by_game in final.items():
        out += rows("bbf", f"rr={rr}", {g: [v, v] for g, v in by_game.items()})
        out += rows("bbf", f"rr={rr}", {g: [early[rr]] * 2 for g in GAMES}, step=50_000)
    return pd.DataFrame(out, columns=list(EVAL_COLUMNS))


def test_sweep_consistency_across_games_and_regimes():
    report = analyze(sweep_evals(), no_runs(), dataclasses.replace(FAST, sweep="rr"))
    table = report.sweep
    assert list(table.columns) == list(SWEEP_COLUMNS)
    by = table.set_index(["scope", "where"])
    assert by.loc[("overall", "all games"), "best"] == "2"
    assert by.loc[("game", "Pong"), "best"] == "2" and by.loc[("game", "Amidar"), "best"] == "4"
    # Amidar ranks 4 > 2 > 1 against the overall 2 > 4 > 1: one of three pairs swapped.
    assert by.loc[("game", "Amidar"), "kendall_tau"] == pytest.approx(1 / 3)
    assert by.loc[("game", "Pong"), "kendall_tau"] == pytest.approx(1.0)
    assert by.loc[("regime", "50000 steps"), "best"] == "1"
    assert by.loc[("regime", "50000 steps"), "kendall_tau"] == pytest.approx(-1 / 3)
    games_row = table[table["scope"] == "games"].iloc[0]
    assert games_row["agrees"] == pytest.approx(2 / 3)
    # Pairwise tau between games: Pong-Assault 1, Pong-Amidar 1/3, Assault-Amidar 1/3.
    assert games_row["kendall_tau"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    regimes_row = table[table["scope"] == "regimes"].iloc[0]
    assert regimes_row["agrees"] == 0.0 and regimes_row["family"] == "bbf"
    with pytest.raises(BenchError, match="--sweep lr: no reported label has it"):
        analyze(sweep_evals(), no_runs(), dataclasses.replace(FAST, sweep="lr"))


def test_study_files_figures_and_sections(tmp_path: Path):
    evals = pd.DataFrame(
        rows("bbf", "", luck(0.0)) + rows("no-spr", "", luck(-0.5)),
        columns=list(EVAL_COLUMNS),
    )
    metric_rows = []
    for label in ("bbf", "no-spr"):
        for step in (1_000, 2_000):
            metric_rows += [
                (f"{label}-r", label, "Pong", step, "train_split_dqn_loss", 1.0 / step),
                (f"{label}-r", label, "Pong", step, "heldout_dqn_loss", 2.0 / step),
                (f"{label}-r", label, "Pong", step, "dormant/encoder.convs.0", 0.1),
            ]
    options = dataclasses.replace(FAST, ablations="bbf", sweep="variant")
    report = analyze(evals, no_runs(), options, metrics=metrics_frame(metric_rows))
    assert "dormant/encoder.convs.0" not in set(report.training_metrics["metric"])
    write_report(report, tmp_path)
    ablations = pd.read_csv(tmp_path / "ablations.csv")
    assert list(ablations.columns) == list(ABLATION_COLUMNS)
    iqm = ablations[ablations["metric"] == "iqm_difference"].iloc[0]
    assert (iqm["rank"], iqm["a"], iqm["b"]) == (1, "bbf", "no-spr")
    assert iqm["estimate"] == pytest.approx(-0.5)
    assert (tmp_path / "sweep_consistency.csv").is_file()
    for stem in ("heldout_losses", "ablations"):
        assert (tmp_path / f"figures/{stem}.pdf").is_file(), stem
    md = (tmp_path / "report.md").read_text()
    assert "## Ablations" in md and "| 1 | no-spr | bbf | -0.500" in md
    assert "## Sweep consistency: variant" in md and "Held-out vs training loss" in md
    # bbf is best in every game; no periodic evaluation: no regime
    assert "| variants | bbf | 100% of 3 games | 1.00 | – | – |" in md


def test_world_model_heldout_losses_are_drawn(tmp_path: Path):
    """Dreamer logs its world model's losses per split (wm_train_*, wm_heldout_*): the
    report draws them as it draws the value agents' TD losses; without a split, nothing."""
    evals = pd.DataFrame(rows("dreamer", "", luck(0.0)), columns=list(EVAL_COLUMNS))
    metric_rows = [
        ("d-r", "dreamer", "Pong", step, f"wm_{split}_{loss}", value / step)
        for step in (1_000, 2_000)
        for split, value in (("train", 1.0), ("heldout", 3.0))
        for loss in ("image", "reward")
    ]
    report = analyze(evals, no_runs(), FAST, metrics=metrics_frame(metric_rows))
    held = report.training_metrics[report.training_metrics["metric"] == "wm_heldout_image"]
    assert list(held["mean"]) == pytest.approx([3e-3, 1.5e-3])
    write_report(report, tmp_path / "with")
    assert (tmp_path / "with/figures/heldout_losses.pdf").is_file()
    no_split = metrics_frame([r for r in metric_rows if "heldout" not in r[4]])
    write_report(analyze(evals, no_runs(), FAST, metrics=no_split), tmp_path / "without")
    assert not (tmp_path / "without/figures/heldout_losses.pdf").exists()


STUDY_SUITE = """
name: study
games: [Pong, Breakout]
seeds: 2
variants: [random]
axes:
  grid: {protocol.noop_max: [10, 29]}
study: {sweep: protocol.noop_max}
budget: {env_steps: 2000, eval_every: 1000, final_eval_episodes: 2}
"""


def test_the_report_reads_the_suites_study_section(write_suite, tmp_path: Path, capsys):
    suite = load_suite(write_suite(STUDY_SUITE))
    ledger = Ledger(tmp_path / "study")
    ledger.prepare(expand(suite), suite_text=STUDY_SUITE)
    for i, spec in enumerate(expand(suite)):
        evals = [
            {"env_step": 1_000, "final": False, "returns": [float(i)], "lengths": [10]},
            {"env_step": 2_000, "final": True, "returns": [i, i + 2.0], "lengths": [9, 9]},
        ]
        write_json(ledger.run_dir(spec.run_id) / "evals.json", {"evals": evals})
        ledger.write_status(spec.run_id, Status(state=State.DONE, attempts=1))
    assert load_study([ledger.root]) == {"sweep": "protocol.noop_max"}
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)

    def options(*flags: str) -> ReportOptions:
        args = parser.parse_args([str(ledger.root), "-o", str(tmp_path / "r"), *flags])
        return cli.with_study(cli.options_of(args), args, [ledger.root])

    assert (options().sweep, options().ablations) == ("protocol.noop_max", "")
    assert options("--sweep", "").sweep == ""  # the flag wins, even to turn it off
    assert options("--ablations", "random").ablations == "random"
    evals, runs = load_results([ledger.root])
    report = analyze(evals, runs, dataclasses.replace(options(), reps=100, profile_reps=50))
    assert set(report.sweep["scope"]) == {"overall", "game", "regime", "games", "regimes"}
    assert set(report.sweep["sweep"]) == {"protocol.noop_max"}
    other = tmp_path / "other"
    other.mkdir()
    (other / "suite.yaml").write_text(STUDY_SUITE.replace("noop_max}", "noop_max, base: x}"))
    (other / "runs").mkdir()
    assert load_study([ledger.root, other]) == {"sweep": "protocol.noop_max", "base": "x"}
    (other / "suite.yaml").write_text(STUDY_SUITE.replace("sweep: protocol.noop_max", "sweep: y"))
    with pytest.raises(BenchError, match="study.sweep is 'y'.*choose with --sweep"):
        load_study([ledger.root, other])
