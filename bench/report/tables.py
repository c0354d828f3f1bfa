"""A report's tables: CSV files for analysis and booktabs LaTeX tables for the paper, all
read from a ``Report``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.env.games import games as game_table
from bench.report.analysis import Report
from bench.report.columns import (
    ABLATION_COLUMNS,
    IMPROVEMENT_COLUMNS,
    PAIRED_AGGREGATE_COLUMNS,
    PAIRED_GAME_COLUMNS,
    STUDY_AGGREGATE_COLUMNS,
    STUDY_GAME_COLUMNS,
)
from bench.stats import metrics
from bench.stats.estimates import Estimate
from bench.stats.paired import PAIRED_METRICS

PAIRED_TITLES = {
    "iqm_difference": "IQM(B) − IQM(A)",
    "median_difference": "Median(B) − Median(A)",
    "mean_difference": "Mean(B) − Mean(A)",
    "optimality_gap_difference": "Optimality gap(B) − Optimality gap(A)",
    "iqm_of_paired_differences": "IQM of paired differences B − A",
    "paired_win_rate": "Fraction of seeds where B > A",
    "probability_of_improvement": "P(B > A)",
}


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def ci(e: Estimate | pd.Series, digits: int = 3) -> str:
    """ "0.123 [0.100, 0.150]": an Estimate, or a row with estimate, ci_low and ci_high."""
    if isinstance(e, Estimate):
        return f"{fmt(e.estimate, digits)} [{fmt(e.low, digits)}, {fmt(e.high, digits)}]"
    return f"{fmt(e['estimate'], digits)} [{fmt(e['ci_low'], digits)}, {fmt(e['ci_high'], digits)}]"


# ---- CSV ---------------------------------------------------------------------------------


def improvement_table(report: Report) -> pd.DataFrame:
    """``IMPROVEMENT_COLUMNS``: P(X > Y) per pair, over the aggregates' games."""
    n_games = len(report.games.common)
    rows = [(x, y, e.estimate, e.low, e.high, n_games) for x, y, e in report.improvement]
    return pd.DataFrame(rows, columns=list(IMPROVEMENT_COLUMNS))


def paired_aggregate_table(report: Report) -> pd.DataFrame:
    """``PAIRED_AGGREGATE_COLUMNS``: each paired statistic of each comparison."""
    rows = [
        (f"{c.b} vs {c.a}", c.a, c.b, m, e.estimate, e.low, e.high)
        + (c.result.n_pairs, c.result.n_games)
        for c in report.comparisons
        for m, e in c.result.aggregates.items()
    ]
    return pd.DataFrame(rows, columns=list(PAIRED_AGGREGATE_COLUMNS))


def ablation_table(report: Report) -> pd.DataFrame:
    """``ABLATION_COLUMNS``: each paired statistic of each ablation, in effect order."""
    rows = [
        (rank, c.a, c.b, m, e.estimate, e.low, e.high, c.result.n_pairs, c.result.n_games)
        for rank, c in enumerate(report.ablations, start=1)
        for m, e in c.result.aggregates.items()
    ]
    return pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))


def paired_game_table(report: Report) -> pd.DataFrame:
    """``PAIRED_GAME_COLUMNS``: each game of each comparison, with its Wilcoxon test."""
    rows = [
        (f"{c.b} vs {c.a}", g, r.n_pairs, r.mean_a, r.mean_b)
        + (r.difference.estimate, r.difference.low, r.difference.high)
        + (r.wilcoxon_statistic, r.p_value, r.p_holm)
        for c in report.comparisons
        for g, r in zip(c.games, c.result.per_game, strict=True)
    ]
    return pd.DataFrame(rows, columns=list(PAIRED_GAME_COLUMNS))


def study_aggregate_table(report: Report) -> pd.DataFrame:
    """``STUDY_AGGREGATE_COLUMNS``: each paired statistic of each row of the audio study."""
    rows = [
        (r.group, r.effect.key, r.a, r.b, m, e.estimate, e.low, e.high)
        + (r.result.n_pairs, r.result.n_games)
        for r in (report.study.rows if report.study else ())
        for m, e in r.result.aggregates.items()
    ]
    return pd.DataFrame(rows, columns=list(STUDY_AGGREGATE_COLUMNS))


def study_game_table(report: Report) -> pd.DataFrame:
    """``STUDY_GAME_COLUMNS``: each game of each row of the audio study."""
    rows = [
        (r.group, r.effect.key, g, p.n_pairs, p.mean_a, p.mean_b)
        + (p.difference.estimate, p.difference.low, p.difference.high)
        + (p.wilcoxon_statistic, p.p_value, p.p_holm)
        for r in (report.study.rows if report.study else ())
        for g, p in zip(r.games, r.result.per_game, strict=True)
    ]
    return pd.DataFrame(rows, columns=list(STUDY_GAME_COLUMNS))


# ---- LaTeX -------------------------------------------------------------------------------

_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"$<$",
    ">": r"$>$",  # text-mode < and > print as other glyphs in LaTeX's default font encoding
    "−": r"$-$",
}


def tex(s: str) -> str:
    """Text with LaTeX's special characters escaped."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def latex_aggregates(report: Report) -> str:
    """Booktabs table: one row per algorithm, point estimate and 95% CI per metric."""
    labels = report.labels
    best = {}
    for m in metrics.AGGREGATES:
        values = [report.estimates[lb].aggregates[m].estimate for lb in labels]
        best[m] = min(values) if m == "optimality_gap" else max(values)
    lines = [
        "% Generated by bench report; 95% stratified-bootstrap CIs in brackets.",
        r"\begin{tabular}{l" + "c" * len(metrics.AGGREGATES) + "}",
        r"\toprule",
        r"Algorithm & IQM $\uparrow$ & Median $\uparrow$ & Mean $\uparrow$ & "
        r"Optimality gap $\downarrow$ \\",
        r"\midrule",
    ]
    for lb in labels:
        cells = []
        for m in metrics.AGGREGATES:
            e = report.estimates[lb].aggregates[m]
            point = fmt(e.estimate)
            if len(labels) > 1 and e.estimate == best[m]:
                point = rf"\textbf{{{point}}}"
            cells.append(rf"{point} {{\scriptsize [{fmt(e.low)}, {fmt(e.high)}]}}")
        lines.append(tex(lb) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def latex_per_game(report: Report) -> str:
    """Booktabs table of mean raw scores: games as rows, Random, Human, then algorithms."""
    labels, per_game = list(report.labels), report.per_game
    table = game_table()
    means = per_game.pivot(index="game", columns="algorithm", values="score_mean")
    lines = [
        "% Generated by bench report; mean raw score over runs, best per game in bold.",
        r"\begin{tabular}{lrr" + "r" * len(labels) + "}",
        r"\toprule",
        "Game & Random & Human & " + " & ".join(tex(lb) for lb in labels) + r" \\",
        r"\midrule",
    ]
    for g in [g for g in table if g in set(per_game["game"])]:
        row = means.loc[g].reindex(labels)
        top = row.max()
        cells = []
        for v in row:
            if pd.isna(v):
                cells.append("--")
            else:
                s = f"{v:.1f}"
                cells.append(rf"\textbf{{{s}}}" if len(labels) > 1 and v == top else s)
        lines.append(
            f"{g} & {table[g].random:.1f} & {table[g].human:.1f} & " + " & ".join(cells) + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def latex_paired(report: Report) -> str:
    """One booktabs table per paired comparison: each statistic with its 95% CI."""
    lines = ["% Generated by bench report; paired bootstrap 95% CIs in brackets."]
    for c in report.comparisons:
        lines += [
            rf"% B = {tex(c.b)}, A = {tex(c.a)}",
            r"\begin{tabular}{lc}",
            r"\toprule",
            r"Statistic & Estimate [95\% CI] \\",
            r"\midrule",
        ]
        for m in PAIRED_METRICS:
            lines.append(f"{tex(PAIRED_TITLES[m])} & {ci(c.result.aggregates[m])}" + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def latex_study(report: Report) -> str:
    """Booktabs table of the audio study: a row per decomposition row, the IQM difference
    and P(B > A) with their 95% CIs."""
    lines = [
        "% Generated by bench report; paired bootstrap 95% CIs in brackets.",
        r"\begin{tabular}{llcc}",
        r"\toprule",
        r"Variant & Effect ($B - A$) & IQM($B$) $-$ IQM($A$) & P($B > A$) \\",
        r"\midrule",
    ]
    for r in report.study.rows if report.study else ():
        effect = f"{r.effect.title} ({r.effect.b} − {r.effect.a})"
        cells = [tex(r.group), tex(effect), ci(r.headline)]
        cells.append(ci(r.result.aggregates["probability_of_improvement"]))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_tables(report: Report, out: Path) -> None:
    """The CSV files in ``out`` and the LaTeX tables in ``out/tables``."""
    (out / "tables").mkdir(parents=True, exist_ok=True)
    report.aggregates.to_csv(out / "aggregates.csv", index=False)
    report.per_game.to_csv(out / "per_game.csv", index=False)
    if report.improvement:
        improvement_table(report).to_csv(out / "probability_of_improvement.csv", index=False)
    if report.reproduction is not None:
        report.reproduction.table.to_csv(out / "reproduction.csv", index=False)
    if report.study is not None:
        study_aggregate_table(report).to_csv(out / "audio_study.csv", index=False)
        study_game_table(report).to_csv(out / "audio_study_per_game.csv", index=False)
        (out / "tables/audio_study.tex").write_text(latex_study(report))
    if report.comparisons:
        paired_aggregate_table(report).to_csv(out / "paired_aggregates.csv", index=False)
        paired_game_table(report).to_csv(out / "paired_per_game.csv", index=False)
        (out / "tables/paired.tex").write_text(latex_paired(report))
    if report.ablations:
        ablation_table(report).to_csv(out / "ablations.csv", index=False)
    if not report.sweep.empty:
        report.sweep.to_csv(out / "sweep_consistency.csv", index=False)
    (out / "tables/aggregates.tex").write_text(latex_aggregates(report))
    (out / "tables/per_game.tex").write_text(latex_per_game(report))
