"""The analysis of a report: from long tables of evaluations, runs and training metrics to one
``Report`` holding every number the tables, figures and report.md show. No file is read or
written here; ``bench.report.write`` renders a Report.

Inputs become one long table of evaluations (``columns.EVAL_COLUMNS``): the project's ledgers
(``load.load_results``), the bundled published baselines and external per-run CSV files.
Final scores are human-normalized and arranged per algorithm as (n_runs, n_games) matrices,
ragged where games have different numbers of runs; the statistics are the pure functions of
``bench.stats``, each bootstrap on its own named random stream.

Rules a paper relies on:
- a partial sweep still reports, with its missing runs listed and the report marked
  provisional;
- runs made under different protocols are never pooled under one algorithm label unless
  ``--allow-mixed-protocols`` says so;
- aggregates compare algorithms on the same games: games some algorithm lacks are left out
  of the aggregates (and listed), never silently averaged over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.env.games import games as game_table
from bench.report.ablations import ablation_pairs, sweep_consistency
from bench.report.baselines import BASELINES
from bench.report.columns import (
    AGGREGATE_COLUMNS,
    EVAL_COLUMNS,
    LEARNING_CURVE_COLUMNS,
    PER_GAME_COLUMNS,
    RUN_COLUMNS,
    SWEEP_COLUMNS,
    TRAINING_METRIC_COLUMNS,
    empty_frame,
)
from bench.report.compare import (
    Comparison,
    paired_comparison,
    paired_matrices,
    resolve_compare,
)
from bench.report.learning import (
    learning_curve_table,
    sample_efficiency_curves,
    training_metric_table,
)
from bench.report.options import LEVEL, Inputs, ReportOptions
from bench.report.protocols import check_protocols, protocol_configs, protocol_note
from bench.report.provenance import build_provenance
from bench.report.reproduction import Reproduction, reproduction_of, reproduction_record
from bench.report.scores import (
    Coverage,
    algorithm_order,
    coverage,
    curve_points,
    final_scores,
    missing_runs,
    score_matrix,
)
from bench.report.study import Study, audio_study
from bench.stats.curves import Curve
from bench.stats.estimates import (
    AggregateEstimates,
    Estimate,
    aggregate_estimates,
    game_mean_estimates,
    improvement_estimate,
    profile_estimates,
)

Profile = tuple[np.ndarray, np.ndarray, np.ndarray]  # (profile, low, high), each (n_taus,)


@dataclass(frozen=True)
class Report:
    """Everything a report shows. Tables are long frames with the ``columns`` lists."""

    labels: tuple[str, ...]  # algorithms with final scores, in report order
    references: tuple[str, ...]  # published baselines among them: context, drawn in grey
    games: Coverage  # the aggregates' games (``games.common``) and those left out
    estimates: dict[str, AggregateEstimates]  # per label, over the common games
    aggregates: pd.DataFrame  # AGGREGATE_COLUMNS
    per_game: pd.DataFrame  # PER_GAME_COLUMNS, every game a label has
    improvement: tuple[tuple[str, str, Estimate], ...]  # P(X > Y) of every pair x before y
    taus: np.ndarray  # (n_taus,) thresholds of the performance profiles
    profiles: dict[str, Profile]
    curves: dict[str, Curve]  # sample-efficiency IQM per label (labels with periodic data)
    learning_curves: pd.DataFrame  # LEARNING_CURVE_COLUMNS
    comparisons: tuple[Comparison, ...]
    training_metrics: pd.DataFrame  # TRAINING_METRIC_COLUMNS
    missing: pd.DataFrame  # expected runs without a final evaluation, with state and error
    provenance: dict[str, Any]  # the contents of provenance.json
    notes: tuple[str, ...]
    reproduction: Reproduction | None = None  # --reproduce: ours against a published set
    study: Study | None = None  # the audio decomposition, when labels differ in audio
    # --ablations (study.base): every variant against the base, smallest IQM difference first
    ablations: tuple[Comparison, ...] = ()
    # --sweep (study.sweep): the best value across games and regimes, SWEEP_COLUMNS
    sweep: pd.DataFrame = field(default_factory=lambda: empty_frame(SWEEP_COLUMNS))

    @property
    def provisional(self) -> bool:
        return not self.missing.empty


@dataclass(frozen=True)
class Finals:
    """The final scores and what the statistics take from them."""

    table: pd.DataFrame  # one row per run (``final_scores``), with ``hns``
    labels: list[str]  # algorithms with final scores, in report order
    games: Coverage
    matrices: dict[str, np.ndarray]  # label -> (n_runs, n_common_games), NaN-padded


def analyze(
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    options: ReportOptions,
    inputs: Inputs | None = None,
    metrics: pd.DataFrame | None = None,
) -> Report:
    """Every statistic of a report from its long tables (``columns``): evaluations, the
    ledgers' runs (may be empty) and their training metrics (None: not loaded). The
    bootstraps run in this order, each on its own named stream: aggregates ("label"),
    per-game means ("label/games"), P(X > Y) ("x>y"), profiles ("label/profile"), curves
    ("label/curve@step"), paired comparisons and the audio study ("a:b"), the reproduction
    ("ours~published")."""
    inputs = inputs or Inputs()
    evals, runs = prepare(evals, runs)
    protocols, notes = check_protocols(evals, runs, allow_mixed=options.allow_mixed_protocols)
    order = algorithm_order(evals, runs)
    finals, final_notes = finals_of(evals, order)
    reproduction = reproduction_of(finals.table, runs, options, protocols=protocols)
    estimates = {lb: aggregates_of(m, lb, options) for lb, m in finals.matrices.items()}
    per_game = per_game_table(finals, options)
    improvement = improvement_of(finals.matrices, options)
    taus, profiles = profiles_of(finals.matrices, options)
    curves, learning_curves, curve_notes = learning_data(evals, finals, options)
    training, training_notes = training_data(metrics, order, runs)
    compared, compare_notes = comparisons_of(evals, finals, runs, options, protocols)
    notes += final_notes + curve_notes + training_notes + compare_notes
    missing = missing_runs(runs, finals.table)
    provenance = build_provenance(
        evals=evals,
        runs=runs,
        final=finals.table,
        missing=missing,
        options=options,
        inputs=inputs,
        protocols=protocols,
        games=finals.games,
        notes=notes,
        reproduction=reproduction_record(reproduction),
    )
    return Report(
        labels=tuple(finals.labels),
        references=references(finals.labels, inputs),
        games=finals.games,
        estimates=estimates,
        aggregates=aggregates_table(estimates),
        per_game=per_game,
        improvement=improvement,
        taus=taus,
        profiles=profiles,
        curves=curves,
        learning_curves=learning_curves,
        training_metrics=training,
        missing=missing,
        provenance=provenance,
        notes=tuple(notes),
        reproduction=reproduction,
        **compared,
    )


# ---- the steps, each a pure function ----------------------------------------------------


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchError(
            f"{what} lacks column(s) {','.join(missing)}; expected {','.join(columns)}"
        )


def prepare(evals: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checked copies of the input tables, text columns without NaN, a fresh row index."""
    _check_columns(evals, EVAL_COLUMNS, "the evaluations table")
    if runs.empty:
        runs = empty_frame(RUN_COLUMNS)
    _check_columns(runs, RUN_COLUMNS, "the runs table")
    evals = evals.reset_index(drop=True)
    for column in ("condition", "protocol", "git_sha"):
        evals[column] = evals[column].fillna("").astype(str)
    return evals, runs


def finals_of(evals: pd.DataFrame, order: Sequence[str]) -> tuple[Finals, list[str]]:
    """The final scores of the labels in ``order`` that have any, and notes on the others
    and on games left out of the aggregates."""
    final = final_scores(evals)
    labels = [lb for lb in order if (final["algorithm"] == lb).any()]
    notes = [
        f"{lb}: no finished runs yet; left out of every statistic"
        for lb in order
        if lb not in labels
    ]
    if not labels:
        raise BenchError("no finished runs to report yet (no final evaluations)")
    games = coverage(final, labels)
    if not games.common:
        sets = "; ".join(f"{lb}: {','.join(sorted(games.games_of[lb]))}" for lb in labels)
        raise BenchError(f"the algorithms share no game, so nothing can be compared ({sets})")
    note = games.note()
    notes += [note] if note else []
    matrices = {lb: score_matrix(final, lb, games.common) for lb in labels}
    return Finals(final, labels, games, matrices), notes


def aggregates_of(matrix: np.ndarray, label: str, options: ReportOptions) -> AggregateEstimates:
    """IQM, median, mean and optimality gap of a (n_runs, n_games) matrix, with CIs."""
    return aggregate_estimates(
        matrix,
        reps=options.reps,
        seed=options.seed,
        stream=label,
        level=LEVEL,
        method=options.method,
    )


def aggregates_table(estimates: dict[str, AggregateEstimates]) -> pd.DataFrame:
    """``AGGREGATE_COLUMNS``: one row per (label, metric)."""
    rows = [
        (lb, m, e.estimate, e.low, e.high, est.n_runs, est.n_games)
        for lb, est in estimates.items()
        for m, e in est.aggregates.items()
    ]
    return pd.DataFrame(rows, columns=list(AGGREGATE_COLUMNS))


def per_game_table(finals: Finals, options: ReportOptions) -> pd.DataFrame:
    """``PER_GAME_COLUMNS``: every game of every label, raw and human-normalized, with CIs."""
    rows = []
    for lb in finals.labels:
        games = finals.games.games_of[lb]
        matrix = score_matrix(finals.table, lb, games)
        ests = game_mean_estimates(
            matrix, reps=options.profile_reps, seed=options.seed, stream=f"{lb}/games", level=LEVEL
        )
        for j, (g, e) in enumerate(zip(games, ests, strict=True)):
            rows.append(_game_row(lb, g, matrix[:, j][~np.isnan(matrix[:, j])], e))
    return pd.DataFrame(rows, columns=list(PER_GAME_COLUMNS))


def _game_row(label: str, game: str, hns: np.ndarray, mean: Estimate) -> dict[str, Any]:
    """One row of the per-game table from a game's human-normalized scores and their mean."""
    g = game_table()[game]
    span = g.human - g.random
    raw = g.random + hns * span  # back to raw scores
    several = len(hns) > 1
    return {
        "algorithm": label,
        "game": game,
        "n_runs": len(hns),
        "score_mean": float(raw.mean()),
        "score_std": float(raw.std(ddof=1)) if several else 0.0,
        "score_ci_low": g.random + mean.low * span,
        "score_ci_high": g.random + mean.high * span,
        "hns_mean": mean.estimate,
        "hns_std": float(hns.std(ddof=1)) if several else 0.0,
        "hns_ci_low": mean.low,
        "hns_ci_high": mean.high,
    }


def improvement_of(
    matrices: dict[str, np.ndarray], options: ReportOptions
) -> tuple[tuple[str, str, Estimate], ...]:
    """P(X > Y) with a CI for every pair of labels, X before Y in report order."""
    labels = list(matrices)
    return tuple(
        (
            x,
            y,
            improvement_estimate(
                matrices[x],
                matrices[y],
                reps=options.profile_reps,
                seed=options.seed,
                stream=f"{x}>{y}",
                level=LEVEL,
            ),
        )
        for i, x in enumerate(labels)
        for y in labels[i + 1 :]
    )


def profiles_of(
    matrices: dict[str, np.ndarray], options: ReportOptions
) -> tuple[np.ndarray, dict[str, Profile]]:
    """Performance profiles with CIs on 101 thresholds from 0 to past the pooled scores'
    95th percentile (at least 1, human level), rounded up to a half."""
    pooled = np.concatenate([m.ravel() for m in matrices.values()])
    pooled = pooled[~np.isnan(pooled)]
    tau_max = max(1.0, math.ceil(2 * float(np.quantile(pooled, 0.95))) / 2)
    taus = np.linspace(0.0, tau_max, 101)
    profiles = {
        lb: profile_estimates(
            m,
            taus,
            reps=options.profile_reps,
            seed=options.seed,
            stream=f"{lb}/profile",
            level=LEVEL,
        )
        for lb, m in matrices.items()
    }
    return taus, profiles


NO_PERIODIC = (
    "no periodic evaluations: sample-efficiency curves and the per-game "
    "learning-curve grid are skipped"
)


def learning_data(
    evals: pd.DataFrame, finals: Finals, options: ReportOptions
) -> tuple[dict[str, Curve], pd.DataFrame, list[str]]:
    """Sample-efficiency curves, the per-game learning-curve table and notes.

    Curves run through periodic and final evaluations (``curve_points``); with no periodic
    evaluation at all they would repeat the aggregates, and are skipped.
    """
    if not (~evals["final"].astype(bool)).any():
        return {}, empty_frame(LEARNING_CURVE_COLUMNS), [NO_PERIODIC]
    points = curve_points(evals)
    common = finals.games.common
    curves = sample_efficiency_curves(points, finals.labels, common, options)
    table = learning_curve_table(points, finals.labels, common)
    notes = [
        f"{lb}: no env step with an evaluation in every game; no sample-efficiency curve"
        for lb in finals.labels
        if lb not in curves
    ]
    return curves, table, notes


def training_data(
    metrics: pd.DataFrame | None, order: Sequence[str], runs: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """The training-metrics table, and a note when ledger runs logged none."""
    if metrics is None:
        table = empty_frame(TRAINING_METRIC_COLUMNS)
    else:
        table = training_metric_table(metrics, order)
    if table.empty and not runs.empty:
        return table, ["no run logged training metrics (metrics.jsonl): no training-metrics figure"]
    return table, []


def comparisons_of(
    evals: pd.DataFrame,
    finals: Finals,
    runs: pd.DataFrame,
    options: ReportOptions,
    protocols: dict[str, list[str]],
) -> tuple[dict[str, Any], list[str]]:
    """The Report's ``comparisons`` (--compare), audio ``study`` (``study.audio_study``: rows
    on the same streams as ``--compare``, so the two agree), ``ablations`` and ``sweep``, and
    notes."""
    labels, configs = reported_labels(evals, finals), protocol_configs(runs)
    comparisons, notes = paired_comparisons(labels, finals, configs, options, protocols)
    study, study_notes = audio_study(finals.table, labels, finals.games.common, options)
    ablations, ablation_notes = ablation_comparisons(labels, finals, configs, options, protocols)
    compared = {"comparisons": comparisons, "study": study, "ablations": ablations}
    compared["sweep"] = sweep_table(evals, labels, finals, options)
    return compared, notes + study_notes + ablation_notes


def paired_comparisons(
    labels: pd.DataFrame,
    finals: Finals,
    configs: dict[str, Any],
    options: ReportOptions,
    protocols: dict[str, list[str]],
) -> tuple[tuple[Comparison, ...], list[str]]:
    """The ``--compare`` comparisons over the common games, and notes on dropped games;
    ``labels``: ``reported_labels``; ``protocols``: each label's protocols, ``configs``
    theirs (``protocol_configs`` of the ledgers' runs)."""
    pairs = [
        (f"--compare {spec}", a, b)
        for spec in options.compare
        for a, b in resolve_compare(spec, labels)
    ]
    return _compared(pairs, finals, configs, options, protocols)


def reported_labels(evals: pd.DataFrame, finals: Finals) -> pd.DataFrame:
    """algorithm, variant and condition of each label with final scores (one row each)."""
    labels = evals.drop_duplicates("algorithm")[["algorithm", "variant", "condition"]]
    return labels[labels["algorithm"].isin(finals.labels)]


def _compared(
    pairs: Sequence[tuple[str, str, str]],
    finals: Finals,
    configs: dict[str, Any],
    options: ReportOptions,
    protocols: dict[str, list[str]],
) -> tuple[tuple[Comparison, ...], list[str]]:
    """Paired comparisons of (option, A, B) over the common games, and notes on dropped
    games; ``protocols``: each label's protocols, ``configs`` theirs."""
    common = finals.games.common
    out, notes = [], []
    for spec, a, b in pairs:
        ma, mb, games = paired_matrices(finals.table, a, b, common)
        if not games:
            raise BenchError(f"{spec}: {a!r} and {b!r} share no (game, seed) pair")
        dropped = [g for g in common if g not in games]
        if dropped:
            notes.append(f"{a} vs {b}: no shared seed on {', '.join(dropped)}")
        result = paired_comparison(ma, mb, a, b, options)
        note = protocol_note(protocols.get(a, [""]), protocols.get(b, [""]), configs)
        out.append(Comparison(a, b, games, result, note))
    return tuple(out), notes


def ablation_comparisons(
    labels: pd.DataFrame,
    finals: Finals,
    configs: dict[str, Any],
    options: ReportOptions,
    protocols: dict[str, list[str]],
) -> tuple[tuple[Comparison, ...], list[str]]:
    """``--ablations BASE``: every other variant against BASE in each of its conditions,
    ordered by the IQM difference B - A, smallest (the costliest removal) first."""
    if not options.ablations:
        return (), []
    where = f"--ablations {options.ablations}"
    pairs = ablation_pairs(labels, options.ablations)
    found, notes = _compared([(where, a, b) for a, b in pairs], finals, configs, options, protocols)
    order = sorted(found, key=lambda c: c.result.aggregates["iqm_difference"].estimate)
    return tuple(order), notes


def sweep_table(
    evals: pd.DataFrame, labels: pd.DataFrame, finals: Finals, options: ReportOptions
) -> pd.DataFrame:
    """``--sweep AXIS``: the consistency of the best value (``study.sweep_consistency``) over
    the aggregates' games, from the periodic and final evaluations; ``labels``:
    ``reported_labels``."""
    if not options.sweep:
        return empty_frame(SWEEP_COLUMNS)
    points = curve_points(evals)
    points = points[
        points["algorithm"].isin(finals.labels) & points["game"].isin(finals.games.common)
    ]
    return sweep_consistency(points, labels, options.sweep)


def references(labels: Sequence[str], inputs: Inputs) -> tuple[str, ...]:
    """The labels of published baselines: context in every figure, not news."""
    named = [BASELINES[n].label for n in inputs.baselines if n in BASELINES]
    return tuple(lb for lb in labels if lb in named or lb.endswith("(published)"))
