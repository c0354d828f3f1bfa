"""The bundled published per-run scores: what each file holds, the aggregate it gives, and
the provenance recorded for it (source, license, protocol, its paper's figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.env.games import games
from bench.env.protocol import ProtocolConfig
from bench.report.analysis import analyze
from bench.report.baselines import BASELINES, baseline_source, load_baseline
from bench.report.columns import RUN_COLUMNS, empty_frame
from bench.report.markdown import provenance_section
from bench.report.options import Inputs, ReportOptions
from bench.report.scores import final_scores, score_matrix
from bench.stats import metrics

GAMES = list(games())
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "rows", "runs_per_game", "iqm"),
    [
        ("DER", 2600, 100, 0.1832),
        ("BBF", 1508, None, 1.0232),
        ("BBF-RR2", 364, 14, 0.9403),
        ("SPR", 2600, 100, 0.3366),
        # the model-based sets: 5 runs per game; their papers print IQM 0.641 (DIAMOND)
        ("DIAMOND", 130, 5, 0.6408),
        ("TWM", 130, 5, 0.4592),
    ],
)
def test_bundled_baselines(name: str, rows: int, runs_per_game: int | None, iqm: float) -> None:
    base = BASELINES[name]
    final = final_scores(load_baseline(name))
    assert len(final) == rows and set(final["game"]) == set(GAMES)
    if runs_per_game:
        assert set(final.groupby("game").size()) == {runs_per_game}
    assert metrics.iqm(score_matrix(final, base.label, GAMES)) == pytest.approx(iqm, abs=1e-4)
    assert baseline_source(name).startswith("Source: ")
    assert base.source and base.license and base.protocol_note and base.paper
    # every protocol field the project records is recorded for the published runs
    assert set(ProtocolConfig.__dataclass_fields__) <= set(base.protocol)
    sources = (REPO / "bench/data/baselines/SOURCES.md").read_text()
    assert f"`{base.final}`" in sources and f"`{name}`" in sources


def test_a_report_shows_each_baseline_s_protocol() -> None:
    inputs = Inputs(baselines=("SPR",), baseline_sources={"SPR": baseline_source("SPR")})
    options = ReportOptions(reps=100, profile_reps=20)
    report = analyze(load_baseline("SPR"), empty_frame(RUN_COLUMNS), options, inputs)
    recorded = report.provenance["baseline_protocols"]["SPR"]
    assert recorded["config"]["noop_min"] == 1 and recorded["config"]["noop_max"] == 30
    assert recorded["license"] and recorded["source"].endswith("SPR.json)")
    line = next(x for x in provenance_section(report.provenance) if "baseline SPR" in x)
    assert line.startswith("- baseline SPR: Source: SPR per-run final scores")
    assert "; protocol: SPR's own env" in line


@pytest.mark.parametrize("name", ["DIAMOND", "TWM"])
def test_model_based_baselines_give_their_papers_figures(name: str) -> None:
    """Median and mean of the per-game mean human-normalized scores, as printed (DIAMOND
    Table 1: IQM 0.641, median 0.373, mean 1.459; TWM Table 1: median 0.505, mean 0.956)."""
    base = BASELINES[name]
    matrix = score_matrix(final_scores(load_baseline(name)), base.label, GAMES)
    ours = {
        "iqm": metrics.iqm(matrix),
        "median": float(np.median(matrix.mean(axis=0))),
        "mean": float(matrix.mean()),
    }
    for metric, printed in base.paper.items():
        assert ours[metric] == pytest.approx(float(printed), abs=0.0005), metric
    assert base.license == "MIT" and base.protocol["sticky_actions"] == 0.0
