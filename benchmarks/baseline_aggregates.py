"""The aggregates each bundled published per-run set gives, next to the figures its paper
prints: which files reproduce their paper.

For every baseline of ``bench.report.baselines.BASELINES``: IQM, median, mean and optimality
gap with 95% stratified-bootstrap CIs (the project's bootstrap), and the paper's figures from
the registry (``Baseline.paper``). A paper figure printed with d decimals ("0.183") or as a
range ("1.03-1.05") is matched when the file's point estimate lies within half a unit of the
last printed decimal of it. A set with ragged run counts per game also gets a row with the
first N runs of every game (N the smallest count), the rectangular matrix rliable needs.

    python benchmarks/baseline_aggregates.py [--reps 50000] [--seed 0]

Prints a Markdown table (the one in bench/data/baselines/SOURCES.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.env.games import games
from bench.report.baselines import BASELINES, load_baseline
from bench.report.scores import final_scores, score_matrix
from bench.stats.estimates import AGGREGATE_REPS, AggregateEstimates, aggregate_estimates
from bench.stats.metrics import AGGREGATES

SHOWN = ("iqm", "median", "mean", "optimality_gap")


def printed_range(figure: str) -> tuple[float, float]:
    """The values a printed figure stands for: "0.183" -> (0.1825, 0.1835);
    "1.03-1.05" -> (1.025, 1.055)."""
    ends = figure.split("-")
    decimals = max(len(e.partition(".")[2]) for e in ends)
    half = 0.5 * 10.0**-decimals
    return float(ends[0]) - half, float(ends[-1]) + half


def paper_cells(name: str, est: AggregateEstimates) -> tuple[str, str]:
    """("IQM 0.183", "yes") for the paper's figures of a baseline, and whether ours match."""
    paper = BASELINES[name].paper
    figures, matches = [], []
    for metric, figure in paper.items():
        lo, hi = printed_range(figure)
        ours = est.aggregates[metric].estimate
        figures.append(f"{metric.upper() if metric == 'iqm' else metric} {figure}")
        matches.append("yes" if lo <= ours <= hi else f"no ({metric} {ours:.3f})")
    return "; ".join(figures) or "–", "; ".join(matches) or "–"


def rows(reps: int, seed: int) -> list[list[str]]:
    out = []
    for name, base in BASELINES.items():
        final = final_scores(load_baseline(name))
        matrix = score_matrix(final, base.label, list(games()))
        counts = (~np.isnan(matrix)).sum(axis=0)
        variants = [(name, matrix)]
        if counts.min() != counts.max():  # ragged: also the first N runs of every game
            variants.append((f"{name}, first {counts.min()} runs per game", matrix[: counts.min()]))
        for title, m in variants:
            est = aggregate_estimates(m, reps=reps, seed=seed, stream=title)
            n = (~np.isnan(m)).sum(axis=0)
            span = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
            cells = [_ci(est, metric) for metric in SHOWN]
            out.append([title, str(int(n.sum())), span, *cells, *paper_cells(name, est)])
    return out


def _ci(est: AggregateEstimates, metric: str) -> str:
    e = est.aggregates[metric]
    return f"{e.estimate:.3f} [{e.low:.3f}, {e.high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=AGGREGATE_REPS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    assert set(SHOWN) == set(AGGREGATES)
    header = ["Baseline", "Runs", "Runs per game", "IQM", "Median", "Mean", "Optimality gap"]
    header += ["Paper", "Matches"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows(args.reps, args.seed):
        print("| " + " | ".join(row) + " |")
    print(f"\n95% percentile stratified-bootstrap CIs, {args.reps:,} replicates, seed {args.seed}.")


if __name__ == "__main__":
    main()
