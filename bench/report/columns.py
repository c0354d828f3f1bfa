"""The columns of every table a report reads or writes: each list is defined here only.

Input tables (long, one row per item):
  evaluations      one row per (run, evaluation), from ledgers, baselines and external files
  runs             one row per expanded run of the ledgers, also pending or failed ones
  training metrics one row per (run, env step, metric), from the runs' ``metrics.jsonl``
Output tables are the report's CSV files and the long tables its figures draw.
"""

from __future__ import annotations

import pandas as pd

# Evaluations: what the analysis needs, and what baselines and external files provide.
EVAL_COLUMNS = (
    "source", "run_id", "algorithm", "variant", "condition", "game", "seed", "env_step",
    "score", "final", "protocol", "git_sha",
)  # fmt: skip
# A ledger also records how many episodes each evaluation averaged.
LEDGER_EVAL_COLUMNS = (*EVAL_COLUMNS, "n_episodes")

# Runs: what the analysis needs of each expanded run ...
RUN_COLUMNS = ("run_id", "algorithm", "variant", "condition", "game", "seed", "state")
# ... and everything a ledger records of it (for provenance).
LEDGER_RUN_COLUMNS = (
    "source", *RUN_COLUMNS, "attempts", "error", "protocol", "protocol_json", "git_sha", "suite",
)  # fmt: skip
# Runs listed in provenance.json (missing and failed runs), where the table has them.
RUN_RECORD_COLUMNS = ("run_id", "algorithm", "game", "seed", "state", "attempts", "error", "source")

# Training metrics of the runs, one metric value per row.
METRIC_COLUMNS = (
    "run_id", "algorithm", "variant", "condition", "game", "seed", "env_step", "metric", "value",
)  # fmt: skip

# Output tables.
AGGREGATE_COLUMNS = ("algorithm", "metric", "estimate", "ci_low", "ci_high", "n_runs", "n_games")
PER_GAME_COLUMNS = (
    "algorithm", "game", "n_runs", "score_mean", "score_std", "score_ci_low", "score_ci_high",
    "hns_mean", "hns_std", "hns_ci_low", "hns_ci_high",
)  # fmt: skip
IMPROVEMENT_COLUMNS = ("algorithm_x", "algorithm_y", "estimate", "ci_low", "ci_high", "n_games")
PAIRED_AGGREGATE_COLUMNS = (
    "comparison", "a", "b", "metric", "estimate", "ci_low", "ci_high", "n_pairs", "n_games",
)  # fmt: skip
PAIRED_GAME_COLUMNS = (
    "comparison", "game", "n_pairs", "hns_mean_a", "hns_mean_b", "difference", "ci_low",
    "ci_high", "wilcoxon_statistic", "p_value", "p_holm",
)  # fmt: skip
# The audio study (``study.audio_study``): each decomposition row's paired statistics, and
# its per-game mean differences; ``effect`` is the row's key (total, capacity, sound, timing).
STUDY_AGGREGATE_COLUMNS = (
    "group", "effect", "a", "b", "metric", "estimate", "ci_low", "ci_high", "n_pairs", "n_games",
)  # fmt: skip
STUDY_GAME_COLUMNS = (
    "group", "effect", "game", "n_pairs", "hns_mean_a", "hns_mean_b", "difference", "ci_low",
    "ci_high", "wilcoxon_statistic", "p_value", "p_holm",
)  # fmt: skip
# A reproduction (``--reproduce``): ours against a published per-run set, one row per game
# (statistic "mean": means over runs) and an overall row (statistic "IQM"); raw-score columns
# are empty on the overall row. p_adjusted is Holm's over the games; the overall test is the
# primary one and is not adjusted.
REPRODUCTION_COLUMNS = (
    "baseline", "algorithm", "game", "statistic", "n_ours", "n_published", "score_ours",
    "score_published", "score_difference", "score_ci_low", "score_ci_high", "hns_ours",
    "hns_published", "hns_difference", "hns_ci_low", "hns_ci_high", "p_improvement",
    "p_improvement_ci_low", "p_improvement_ci_high", "p_value", "p_adjusted", "verdict",
)  # fmt: skip
# Per-game learning curves: raw score, mean and standard error over runs at each env step.
LEARNING_CURVE_COLUMNS = ("game", "algorithm", "env_step", "mean", "se", "n_runs")
# Training metrics per algorithm: mean and standard error over runs at each env step.
TRAINING_METRIC_COLUMNS = ("algorithm", "metric", "env_step", "mean", "se", "n_runs")


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """A table with these columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
