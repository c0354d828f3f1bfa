"""Writing a ``Report`` to its folder: CSV and LaTeX tables, figures, provenance.json and
report.md.

    aggregates.csv, per_game.csv, probability_of_improvement.csv, paired_*.csv,
    audio_study.csv, audio_study_per_game.csv, reproduction.csv
    provenance.json, report.md
    tables/{aggregates,per_game,paired}.tex
    figures/<name>.{pdf,png}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from bench.report import figures as fig
from bench.report.analysis import Report
from bench.report.markdown import markdown_report
from bench.report.tables import write_tables


@dataclass(frozen=True)
class FigureFile:
    title: str  # as report.md lists it
    stem: str  # path in the report folder, without the extension
    draw: Callable[[Path], list[Path]]  # draws to a stem, returns the files written


def colors_of(report: Report) -> dict[str, str]:
    """One colour per label for every figure: the report's labels first, then labels that
    have only training metrics (runs still going), so the first keep their colours."""
    extra = map(str, pd.unique(report.training_metrics["algorithm"]))
    labels = list(dict.fromkeys([*report.labels, *extra]))
    return fig.palette(labels, references=report.references)


def study_figures(report: Report) -> list[FigureFile]:
    """The audio study's per-game forest plots: one figure per variant, a panel per row."""
    if report.study is None:
        return []
    rows = report.study.rows
    out = []
    for k, group in enumerate(dict.fromkeys(r.group for r in rows), start=1):
        panels = [
            (f"{r.effect.b} − {r.effect.a}\n{r.effect.title}", r.result, r.games)
            for r in rows
            if r.group == group
        ]
        draw = partial(fig.study_forest, panels, title=f"Audio study: {group}")
        out.append(FigureFile(f"Audio study per game: {group}", f"figures/audio_study_{k}", draw))
    return out


def figure_plan(report: Report, colors: dict[str, str]) -> list[FigureFile]:
    """The figures a report has, in report.md's order, each with how to draw it."""
    estimates = {lb: e.aggregates for lb, e in report.estimates.items()}
    plan = [
        FigureFile(
            "Aggregate metrics with 95% CIs",
            "figures/interval_estimates",
            partial(fig.interval_estimates, estimates, colors),
        ),
        FigureFile(
            "Performance profiles",
            "figures/performance_profiles",
            partial(fig.performance_profiles, report.taus, report.profiles, colors),
        ),
    ]
    if report.improvement:
        draw = partial(fig.probability_of_improvement, report.improvement, colors)
        plan.append(
            FigureFile("Probability of improvement", "figures/probability_of_improvement", draw)
        )
    if not report.learning_curves.empty:
        draw = partial(fig.sample_efficiency, report.curves, colors)
        plan.append(FigureFile("Sample efficiency (IQM)", "figures/sample_efficiency", draw))
        draw = partial(fig.learning_curve_grid, report.learning_curves, colors)
        plan.append(FigureFile("Learning curves per game", "figures/learning_curves", draw))
    if not report.training_metrics.empty:
        draw = partial(fig.training_metrics, report.training_metrics, colors)
        plan.append(FigureFile("Training metrics", "figures/training_metrics", draw))
    plan += study_figures(report)
    if report.training_metrics["metric"].isin(fig.HELD_OUT_SIDE).any():  # a held-out split
        draw = partial(fig.heldout_losses, report.training_metrics, colors)
        plan.append(FigureFile("Held-out vs training loss", "figures/heldout_losses", draw))
    if report.ablations:
        rows = [(c.b, c.result.aggregates["iqm_difference"]) for c in report.ablations]
        title = f"B = each variant, A = {report.ablations[0].a}"
        draw = partial(fig.ablation_forest, rows, title=title)
        plan.append(FigureFile("Ablations (IQM differences)", "figures/ablations", draw))
    for k, c in enumerate(report.comparisons, start=1):
        color = colors.get(c.b, fig.OKABE_ITO[0])
        title = f"B = {c.b}\nA = {c.a}"
        draw = partial(fig.forest, c.result, c.games, title=title, color=color)
        plan.append(FigureFile(f"Paired differences: {c.b} − {c.a}", f"figures/forest_{k}", draw))
    rep = report.reproduction
    if rep is not None:
        title = f"{rep.ours} − {rep.published}"
        color = colors.get(rep.ours, fig.OKABE_ITO[0])
        draw = partial(fig.reproduction_forest, rep.table, title=title, color=color)
        plan.append(FigureFile(f"Reproduction: {title}", "figures/reproduction", draw))
    return plan


def write_report(report: Report, out: Path) -> str:
    """Write every file of ``report`` into ``out``; returns a one-line summary."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    write_tables(report, out)
    (out / "provenance.json").write_text(json.dumps(report.provenance, indent=2) + "\n")
    plan = figure_plan(report, colors_of(report))
    for figure in plan:
        figure.draw(out / figure.stem)
    (out / "report.md").write_text(markdown_report(report, [(f.title, f.stem) for f in plan]))
    state = f"provisional: {len(report.missing)} runs missing" if report.provisional else "complete"
    n_labels, n_games = len(report.labels), len(report.games.common)
    return f"wrote {out}: {n_labels} algorithms, {n_games} games in aggregates, {state}"
