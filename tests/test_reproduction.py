"""Reproduction reports (``--reproduce``): the verdicts on runs resampled from (and shifted
off) the published DER runs, the protocol checks, which runs are compared, the files and the
command."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import report as cli
from bench.cli.main import main
from bench.core.errors import BenchError
from bench.env.games import games
from bench.env.protocol import PROTOCOLS, ProtocolConfig
from bench.report.analysis import analyze
from bench.report.baselines import load_baseline
from bench.report.columns import EVAL_COLUMNS, REPRODUCTION_COLUMNS
from bench.report.options import ReportOptions
from bench.stats import metrics
from tests.test_stats_twosample import GAMES, der_matrix, resample

FAST = ReportOptions(reps=300, profile_reps=50, seed=3, permutations=2000, reproduce="DER")


def ledger_rows(
    hns: np.ndarray,
    *,
    label: str = "DER [ours]",
    protocol: dict | None = None,
    env_step: int = 100_000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(evals, runs) of a ledger whose final human-normalized scores are ``hns`` (runs, games)."""
    table = games()
    proto = json.dumps(protocol if protocol is not None else {"eval_epsilon": 0.001})
    evals, runs = [], []
    for (seed, j), v in zip(
        itertools.product(range(len(hns)), range(26)), hns.ravel(), strict=True
    ):
        g = table[GAMES[j]]
        base = {
            "source": "suite",
            "run_id": f"{label}-{g.name}-{seed}",
            "algorithm": label,
            "variant": "der",
            "condition": "",
            "game": g.name,
            "seed": seed,
            "protocol": "p0",
            "git_sha": "abc",
        }
        runs.append(base | {"state": "done", "protocol_json": proto})
        score = g.random + v * (g.human - g.random)
        evals.append(base | {"env_step": env_step, "score": score, "final": True})
    return pd.DataFrame(evals)[list(EVAL_COLUMNS)], pd.DataFrame(runs)


def with_der(evals: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([evals, load_baseline("DER")], ignore_index=True)


# ---- the report ----------------------------------------------------------------------------


def test_resampled_published_runs_are_consistent() -> None:
    x = resample(der_matrix(), 10, np.random.default_rng(11))
    evals, runs = ledger_rows(x)
    report = analyze(with_der(evals), runs, FAST)
    rep = report.reproduction
    assert rep is not None and rep.ours == "DER [ours]" and rep.published == "DER (published)"
    assert rep.verdict == "consistent" and rep.games_differing == []
    assert list(rep.table.columns) == list(REPRODUCTION_COLUMNS)
    assert list(rep.table["game"]) == GAMES + ["overall"]
    overall = rep.table.iloc[-1]
    assert overall["hns_difference"] == pytest.approx(
        metrics.iqm(x) - metrics.iqm(der_matrix()), abs=1e-9
    )
    assert overall["hns_ci_low"] < 0 < overall["hns_ci_high"]
    # raw differences are the human-normalized ones in game units
    alien = rep.table.iloc[0]
    span = games()["Alien"].human - games()["Alien"].random
    assert alien["score_difference"] == pytest.approx(alien["hns_difference"] * span)
    assert alien["score_ours"] - alien["score_published"] == pytest.approx(
        alien["score_difference"]
    )
    assert rep.protocol_differences == ()
    assert any(u.startswith("noop_unit (published: frame") for u in rep.unverified)
    assert report.provenance["reproduction"]["verdict"] == "consistent"


@pytest.mark.parametrize("shift", ["+0.3 human-normalized", "x1.5 raw score"])
def test_shifted_runs_differ(shift: str) -> None:
    x = resample(der_matrix(), 10, np.random.default_rng(12))
    if shift.startswith("+"):
        hns = x + 0.3
    else:
        table = games()
        random = np.array([table[g].random for g in GAMES])
        span = np.array([table[g].human - table[g].random for g in GAMES])
        hns = ((random + x * span) * 1.5 - random) / span
    evals, runs = ledger_rows(hns)
    rep = analyze(with_der(evals), runs, FAST).reproduction
    assert rep is not None and rep.verdict == "differs"
    assert rep.table.iloc[-1]["hns_ci_low"] > 0
    assert len(rep.games_differing) >= 10, rep.games_differing


def test_protocols_must_match_unless_allowed() -> None:
    x = resample(der_matrix(), 3, np.random.default_rng(13))
    proto = {"eval_epsilon": 0.01, "noop_max": 29, "life_loss_terminal": True}
    evals, runs = ledger_rows(x, protocol=proto)
    with pytest.raises(BenchError) as err:
        analyze(with_der(evals), runs, FAST)
    msg = str(err.value)
    assert "\n" not in msg and "--reproduce DER" in msg and "'DER [ours]'" in msg
    assert "eval_epsilon (0.01 vs 0.001)" in msg and "--allow-mixed-protocols" in msg
    assert "noop_max" not in msg  # recorded by both and equal
    allowed = ReportOptions(**(FAST.__dict__ | {"allow_mixed_protocols": True}))
    rep = analyze(with_der(evals), runs, allowed).reproduction
    assert rep is not None and rep.protocol_differences == ("eval_epsilon (0.01 vs 0.001)",)
    # the budget is part of the protocol: a final evaluation at 50k is not DER's at 100k
    evals, runs = ledger_rows(x, env_step=50_000)
    with pytest.raises(BenchError, match=r"final evaluation env step \(50,000 vs 100,000\)"):
        analyze(with_der(evals), runs, FAST)


def test_the_project_default_protocol_is_not_spr_s() -> None:
    # SPR's env starts episodes with 1-30 no-op frames; the project's default is 0-29.
    x = resample(der_matrix(), 3, np.random.default_rng(16))
    evals, runs = ledger_rows(x, protocol=dataclasses.asdict(ProtocolConfig()))
    evals = pd.concat([evals, load_baseline("SPR")], ignore_index=True)
    spr = ReportOptions(**(FAST.__dict__ | {"reproduce": "SPR"}))
    with pytest.raises(BenchError, match=r"noop_max \(29 vs 30\); noop_min \(0 vs 1\)"):
        analyze(evals, runs, spr)
    # SPR's no-op starts alone are not its env: the resize, the skip through a life loss,
    # the NOOP frame after one and the step cap are protocol fields too.
    almost = ProtocolConfig(noop_min=1, noop_max=30, noop_unit="frame", terminal_frame="fresh")
    evals, runs = ledger_rows(x, protocol=dataclasses.asdict(almost))
    evals = pd.concat([evals, load_baseline("SPR")], ignore_index=True)
    with pytest.raises(BenchError, match=r"resize \(area vs linear\); stop_at_life_loss"):
        analyze(evals, runs, spr)
    evals, runs = ledger_rows(x, protocol=dataclasses.asdict(PROTOCOLS["spr"]))
    evals = pd.concat([evals, load_baseline("SPR")], ignore_index=True)
    rep = analyze(evals, runs, spr).reproduction
    assert rep is not None and rep.protocol_differences == ()
    assert not any(u.startswith("resize") for u in rep.unverified)


def test_which_runs_are_compared() -> None:
    x = resample(der_matrix(), 3, np.random.default_rng(14))
    a_evals, a_runs = ledger_rows(x, label="A")
    b_evals, b_runs = ledger_rows(x + 0.3, label="B")
    evals = with_der(pd.concat([a_evals, b_evals], ignore_index=True))
    runs = pd.concat([a_runs, b_runs], ignore_index=True)
    with pytest.raises(BenchError, match=r"say --reproduce DER=LABEL; labels: A; B"):
        analyze(evals, runs, FAST)
    with pytest.raises(BenchError, match=r"no runs of 'C'; labels: A; B"):
        analyze(evals, runs, ReportOptions(**(FAST.__dict__ | {"reproduce": "der=C"})))
    rep = analyze(evals, runs, ReportOptions(**(FAST.__dict__ | {"reproduce": "DER=B"})))
    assert rep.reproduction is not None and rep.reproduction.ours == "B"
    with pytest.raises(BenchError, match="the published DER runs are not loaded"):
        analyze(pd.concat([a_evals], ignore_index=True), a_runs, FAST)
    with pytest.raises(BenchError, match="unknown baseline 'XYZ'"):
        analyze(evals, runs, ReportOptions(**(FAST.__dict__ | {"reproduce": "XYZ=A"})))


def test_command_writes_the_reproduction(tmp_path: Path) -> None:
    x = resample(der_matrix(), 5, np.random.default_rng(15))
    table = games()
    lines = ["algorithm,game,run,score"] + [
        f"Mine,{g},{r},{float(table[g].random + x[r, j] * (table[g].human - table[g].random))!r}"
        for j, g in enumerate(GAMES)
        for r in range(5)
    ]
    ext = tmp_path / "mine.csv"
    ext.write_text("\n".join(lines) + "\n")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = ["--external", str(ext), "--reproduce", "DER", "--reps", "200"]
    args += ["--profile-reps", "50", "--permutations", "1000", "-o", str(tmp_path / "out")]
    assert cli.main(parser.parse_args(args)) == 0
    out = tmp_path / "out"
    rep = pd.read_csv(out / "reproduction.csv")
    assert len(rep) == 27 and rep["verdict"].iloc[-1] == "consistent"
    assert (out / "figures/reproduction.png").is_file()
    assert (out / "figures/reproduction.pdf").is_file()
    md = (out / "report.md").read_text()
    assert "## Reproduction: Mine vs DER (published)" in md and "Overall: **consistent**" in md
    assert "the runs record no protocol" in md
    assert "baseline DER: Source: DER per-run" in md and "protocol: Dopamine's Atari-100k" in md
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"]["baselines"] == ["DER"]  # loaded for the reproduction
    assert prov["baseline_protocols"]["DER"]["config"]["noop_unit"] == "frame"
    assert prov["reproduction"]["games_differing"] == []


def test_command_refuses_with_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    ext = tmp_path / "two.csv"
    ext.write_text("algorithm,game,run,score\nA,Pong,0,1\nB,Pong,0,2\n")
    args = ["report", "--external", str(ext), "--reproduce", "SPR", "-o", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "--reproduce SPR: which runs reproduce SPR?" in err
