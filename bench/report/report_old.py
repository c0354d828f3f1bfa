"""``bench report``: statistics, tables and figures from ledgers, baselines and score files.

Inputs become one long table of evaluations (the ledger's columns, ``EVAL_COLUMNS``): the
project's ledgers (``bench.report.load.load_results``), the bundled published baselines and
external per-run CSV files. Final scores are human-normalized and arranged per algorithm as
(n_runs, n_games) matrices, ragged where games have different numbers of runs; the
statistics are the pure functions of ``bench.stats``.

Rules a paper relies on:
- a partial sweep still reports, with its missing runs listed and the report marked
  provisional;
- runs made under different protocols are never pooled under one algorithm label unless
  ``--allow-mixed-protocols`` says so;
- aggregates compare algorithms on the same games: games some algorithm lacks are left out
  of the aggregates (and listed), never silently averaged over.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import __version__
from bench.core.errors import BenchError
from bench.env.games import games as game_table
from bench.env.games import get_game
from bench.report import figures as fig
from bench.report.baselines import (
    BASELINES,
    EVAL_COLUMNS,
    baseline_source,
    load_baseline,
    load_external,
    parse_baselines,
)
from bench.stats import metrics
from bench.stats.curves import Curve, sample_efficiency
from bench.stats.estimates import (
    AGGREGATE_REPS,
    PROFILE_REPS,
    Estimate,
    aggregate_estimates,
    game_mean_estimates,
    improvement_estimate,
    profile_estimates,
)
from bench.stats.paired import PAIRED_METRICS, PairedComparison, compare

RUN_COLUMNS = ("run_id", "algorithm", "variant", "condition", "game", "seed", "state")
AGGREGATE_COLUMNS = ("algorithm", "metric", "estimate", "ci_low", "ci_high", "n_runs", "n_games")
LEVEL = 0.95


@dataclass(frozen=True)
class ReportOptions:
    reps: int = AGGREGATE_REPS  # aggregates and paired comparisons
    profile_reps: int = PROFILE_REPS  # profiles, probability of improvement, curves, per game
    seed: int = 0
    bca: bool = False
    allow_mixed_protocols: bool = False
    compare: tuple[str, ...] = ()


@dataclass
class Inputs:
    """What a report was made from, for its provenance."""

    dirs: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    externals: list[str] = field(default_factory=list)


# ---- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bench report``."""
    parser.add_argument("dirs", nargs="*", metavar="DIR", help="ledger folders (suite outputs)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="report folder")
    parser.add_argument(
        "--baselines",
        default="",
        metavar="NAMES",
        help=f"published baselines to include, comma-separated: {','.join(BASELINES)}",
    )
    parser.add_argument(
        "--external",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="per-run scores as CSV algorithm,game,run,score[,env_step] (repeatable)",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="A:B",
        help="paired comparison of B against A, e.g. audio=off:audio=on or two labels",
    )
    parser.add_argument(
        "--reps", type=int, default=AGGREGATE_REPS, help="bootstrap replicates for aggregates"
    )
    parser.add_argument(
        "--profile-reps",
        type=int,
        default=PROFILE_REPS,
        help="replicates for profiles, P(X>Y), curves and per-game CIs",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--allow-mixed-protocols",
        action="store_true",
        help="pool runs of one algorithm made under different protocols",
    )
    parser.add_argument("--bca", action="store_true", help="BCa intervals instead of percentile")


def main(args: argparse.Namespace) -> int:
    """Run ``bench report``; returns the exit status."""
    for name in ("reps", "profile_reps"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    frames: list[pd.DataFrame] = []
    runs = empty_runs()
    dirs = [Path(d) for d in args.dirs]
    if dirs:
        from bench.report.load import load_results

        evals, runs = load_results(dirs)
        frames.append(evals)
    names = parse_baselines(args.baselines) if args.baselines else []
    frames += [load_baseline(n) for n in names]
    frames += [load_external(p) for p in args.external]
    if not frames:
        raise BenchError("nothing to report: give ledger folders, --baselines or --external")
    options = ReportOptions(
        reps=args.reps,
        profile_reps=args.profile_reps,
        seed=args.seed,
        bca=args.bca,
        allow_mixed_protocols=args.allow_mixed_protocols,
        compare=tuple(args.compare),
    )
    inputs = Inputs([str(d) for d in dirs], names, [str(p) for p in args.external])
    summary = write_report(pd.concat(frames, ignore_index=True), runs, args.out, options, inputs)
    print(summary)
    return 0


def empty_runs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})


# ---- tables of scores --------------------------------------------------------------------


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchError(
            f"{what} lacks column(s) {','.join(missing)}; expected {','.join(columns)}"
        )


def normalize(frame: pd.DataFrame) -> np.ndarray:
    """Human-normalized scores of a frame's ``game`` and ``score`` columns, shape (n_rows,)."""
    table = game_table()
    names = {g: get_game(g, where="scores").name for g in frame["game"].unique()}
    random = frame["game"].map(lambda g: table[names[g]].random).to_numpy(dtype=np.float64)
    human = frame["game"].map(lambda g: table[names[g]].human).to_numpy(dtype=np.float64)
    return (frame["score"].to_numpy(dtype=np.float64) - random) / (human - random)


def final_scores(evals: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its final evaluation (the last one if a run was evaluated again)."""
    final = evals[evals["final"].astype(bool)].sort_values(["run_id", "env_step"], kind="stable")
    final = final.drop_duplicates("run_id", keep="last").copy()
    final["hns"] = normalize(final)
    return final.reset_index(drop=True)


def algorithm_order(evals: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Ledger algorithms (sorted), then external files' (in order), then published baselines."""
    ledger = sorted(set(runs["algorithm"]) | set(evals.loc[_kind(evals) == "ledger", "algorithm"]))
    external = list(dict.fromkeys(evals.loc[_kind(evals) == "external", "algorithm"]))
    baseline = list(dict.fromkeys(evals.loc[_kind(evals) == "baseline", "algorithm"]))
    return list(dict.fromkeys(ledger + external + baseline))


def _kind(frame: pd.DataFrame) -> pd.Series:
    src = frame["source"].astype(str)
    return np.where(
        src.str.startswith("baseline:"),
        "baseline",
        np.where(src.str.startswith("external:"), "external", "ledger"),
    )


def score_matrix(final: pd.DataFrame, label: str, games: Sequence[str]) -> np.ndarray:
    """(max runs, n_games) human-normalized matrix of one algorithm, NaN-padded (ragged)."""
    rows = final[final["algorithm"] == label]
    columns = [rows.loc[rows["game"] == g, "hns"].to_numpy() for g in games]
    out = np.full((max(len(c) for c in columns), len(games)), np.nan)
    for j, col in enumerate(columns):
        out[: len(col), j] = col
    return out


def missing_runs(runs: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Expanded runs of the ledgers that have no final evaluation (yet), with their state."""
    if runs.empty:
        return runs.assign(error="")
    out = runs[~runs["run_id"].isin(set(final["run_id"]))].copy()
    if "error" not in out.columns:
        out["error"] = ""
    out["state"] = np.where(out["state"] == "done", "done, no final evaluation", out["state"])
    return out.sort_values(["algorithm", "game", "seed"], kind="stable").reset_index(drop=True)


# ---- protocols ---------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def protocol_configs(runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Protocol hash -> its resolved config (flattened keys), from the ledger's runs table."""
    out: dict[str, dict[str, Any]] = {}
    if "protocol_json" not in runs.columns:
        return out
    for proto, text in zip(runs["protocol"], runs["protocol_json"], strict=True):
        if proto and proto not in out and isinstance(text, str) and text:
            try:
                out[proto] = _flatten(json.loads(text))
            except json.JSONDecodeError:
                out[proto] = {}
    return out


def protocol_difference(a: str, b: str, configs: dict[str, dict[str, Any]]) -> str:
    """'eval_epsilon (0.001 vs 0.01), audio (off vs on)' or a plain statement of the hashes."""
    name = {"": "unknown (published or external scores)"}
    if a in configs and b in configs:
        ca, cb = configs[a], configs[b]
        keys = [k for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
        if keys:
            return ", ".join(f"{k} ({ca.get(k)} vs {cb.get(k)})" for k in keys)
    return f"{name.get(a, a)} vs {name.get(b, b)}"


def check_protocols(
    evals: pd.DataFrame, runs: pd.DataFrame, *, allow_mixed: bool
) -> dict[str, list[str]]:
    """Protocols per algorithm label; a BenchError if one label mixes them (unless allowed)."""
    by_label = {
        label: sorted(set(group["protocol"].astype(str)))
        for label, group in evals.groupby("algorithm", sort=True)
    }
    mixed = {k: v for k, v in by_label.items() if len(v) > 1}
    if mixed and not allow_mixed:
        label, protos = next(iter(mixed.items()))
        rows = evals[evals["algorithm"] == label].drop_duplicates("run_id")
        counts = rows.groupby("protocol")["run_id"].count()
        parts = ", ".join(f"{p or 'unknown'} ({counts.get(p, 0)} runs)" for p in protos)
        differ = protocol_difference(protos[0], protos[1], protocol_configs(runs))
        others = f" (and {len(mixed) - 1} more algorithms)" if len(mixed) > 1 else ""
        raise BenchError(
            f"runs of {label!r}{others} were made under {len(protos)} protocols: {parts}; "
            f"they differ in {differ}; pass --allow-mixed-protocols to pool them"
        )
    return by_label


# ---- paired comparisons ------------------------------------------------------------------


def _condition_items(condition: str) -> dict[str, str]:
    items = {}
    for part in str(condition).split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
    return items


def _match(side: str, labels: pd.DataFrame) -> tuple[list[str], set[str]]:
    """Labels a --compare side names (a full label, or key=value items of the condition)."""
    if side in set(labels["algorithm"]):
        return [side], set()
    wanted = _condition_items(side)
    if not wanted:
        return [], set()
    hits = [
        row.algorithm
        for row in labels.itertuples()
        if all(_condition_items(row.condition).get(k) == v for k, v in wanted.items())
    ]
    return hits, set(wanted)


def _identity(info: pd.DataFrame, label: str, keys: set[str]) -> tuple[str, tuple]:
    """A label's variant and its condition items other than ``keys``: what pairs must share."""
    items = _condition_items(info.loc[label, "condition"])
    return info.loc[label, "variant"], tuple(
        sorted((k, v) for k, v in items.items() if k not in keys)
    )


def resolve_compare(spec: str, labels: pd.DataFrame) -> list[tuple[str, str]]:
    """``A:B`` -> [(label_a, label_b), ...]; ``labels`` has algorithm, variant, condition.

    Condition sides pair labels of the same variant whose other condition items agree, e.g.
    ``audio=off:audio=on`` pairs ``BBF [audio=off,rr=2]`` with ``BBF [audio=on,rr=2]``.
    """
    where = f"--compare {spec}"
    splits = [i for i, ch in enumerate(spec) if ch == ":"]
    if not splits:
        raise BenchError(f"{where}: expected A:B, e.g. audio=off:audio=on or two labels")
    all_labels = sorted(set(labels["algorithm"]))
    conditions = sorted({c for c in labels["condition"] if c})
    choices = f"labels: {'; '.join(all_labels)}" + (
        f"; conditions: {'; '.join(conditions)}" if conditions else ""
    )
    for i in splits:
        a, b = spec[:i].strip(), spec[i + 1 :].strip()
        (la, ka), (lb, kb) = _match(a, labels), _match(b, labels)
        if not la or not lb:
            continue
        if len(la) == 1 and len(lb) == 1:
            return [(la[0], lb[0])]
        keys = ka | kb
        info = labels.drop_duplicates("algorithm").set_index("algorithm")
        rest = {x: _identity(info, x, keys) for x in la + lb}
        pairs = [(x, y) for x in la for y in lb if x != y and rest[x] == rest[y]]
        if pairs:
            return pairs
        raise BenchError(
            f"{where}: no pairs of the same variant and other conditions; {a!r} matches "
            f"{'; '.join(la)}, {b!r} matches {'; '.join(lb)}"
        )
    side = spec.split(":")
    bad = next((s for s in side if not _match(s.strip(), labels)[0]), spec)
    raise BenchError(f"{where}: {bad.strip()!r} names no algorithm or condition; {choices}")


def paired_matrices(
    final: pd.DataFrame, a: str, b: str, games: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(seeds, games) matrices of A and B aligned by seed; games with no shared seed dropped."""
    for label in (a, b):
        rows = final[final["algorithm"] == label]
        dup = rows.duplicated(["game", "seed"])
        if dup.any():
            r = rows[dup].iloc[0]
            raise BenchError(
                f"--compare: {label!r} has several runs of {r['game']} seed {r['seed']} "
                "(pairs need one run per game and seed)"
            )
    pa = final[final["algorithm"] == a].pivot(index="seed", columns="game", values="hns")
    pb = final[final["algorithm"] == b].pivot(index="seed", columns="game", values="hns")
    shared = [g for g in games if g in pa.columns and g in pb.columns]
    seeds = sorted(set(pa.index) | set(pb.index))
    ma = pa.reindex(index=seeds, columns=shared).to_numpy(dtype=np.float64)
    mb = pb.reindex(index=seeds, columns=shared).to_numpy(dtype=np.float64)
    has_pair = (~np.isnan(ma) & ~np.isnan(mb)).any(axis=0)
    kept = [g for g, ok in zip(shared, has_pair, strict=True) if ok]
    return ma[:, has_pair], mb[:, has_pair], kept


# ---- the report --------------------------------------------------------------------------


@dataclass
class Comparison:
    a: str
    b: str
    games: list[str]
    result: PairedComparison
    protocol_note: str


def write_report(
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    out: Path,
    options: ReportOptions,
    inputs: Inputs | None = None,
) -> str:
    """Compute everything and write the report folder; returns a one-line summary."""
    inputs = inputs or Inputs()
    _check_columns(evals, EVAL_COLUMNS, "the evaluations table")
    if runs.empty:
        runs = empty_runs()
    _check_columns(runs, RUN_COLUMNS, "the runs table")
    evals = evals.copy()
    evals["condition"] = evals["condition"].fillna("").astype(str)
    evals["protocol"] = evals["protocol"].fillna("").astype(str)
    evals["git_sha"] = evals["git_sha"].fillna("").astype(str)
    protocols = check_protocols(evals, runs, allow_mixed=options.allow_mixed_protocols)
    final = final_scores(evals)
    order = [lb for lb in algorithm_order(evals, runs)]
    missing = missing_runs(runs, final)
    notes: list[str] = []

    with_scores = [lb for lb in order if (final["algorithm"] == lb).any()]
    for lb in order:
        if lb not in with_scores:
            notes.append(f"{lb}: no finished runs yet; left out of every statistic")
    if not with_scores:
        raise BenchError("no finished runs to report yet (no final evaluations)")
    games_of = {lb: set(final.loc[final["algorithm"] == lb, "game"]) for lb in with_scores}
    table_order = list(game_table())
    common = [g for g in table_order if all(g in games_of[lb] for lb in with_scores)]
    excluded = {
        g: [lb for lb in with_scores if g not in games_of[lb]]
        for g in table_order
        if g not in common and any(g in games_of[lb] for lb in with_scores)
    }
    if not common:
        sets = "; ".join(f"{lb}: {','.join(sorted(games_of[lb]))}" for lb in with_scores)
        raise BenchError(f"the algorithms share no game, so nothing can be compared ({sets})")
    if excluded:
        groups: dict[tuple[str, ...], list[str]] = {}
        for g, lbs in excluded.items():
            groups.setdefault(tuple(lbs), []).append(g)
        notes.append(
            f"aggregates use the {len(common)} games every algorithm has; left out: "
            + "; ".join(
                f"{', '.join(gs)} (missing for {', '.join(lbs)})" for lbs, gs in groups.items()
            )
        )

    method = "bca" if options.bca else "percentile"
    seed = options.seed
    references = [BASELINES[n].label for n in inputs.baselines if n in BASELINES]
    references += [lb for lb in with_scores if lb.endswith("(published)")]
    colors = fig.palette(with_scores, references=references)

    # Aggregates over the common games.
    agg = {}
    for lb in with_scores:
        agg[lb] = aggregate_estimates(
            score_matrix(final, lb, common),
            reps=options.reps,
            seed=seed,
            stream=lb,
            level=LEVEL,
            method=method,
        )
    aggregates = pd.DataFrame(
        [
            (lb, m, e.estimate, e.low, e.high, agg[lb].n_runs, agg[lb].n_games)
            for lb in with_scores
            for m, e in agg[lb].aggregates.items()
        ],
        columns=list(AGGREGATE_COLUMNS),
    )

    # Per game, every game an algorithm has.
    per_game_rows = []
    table = game_table()
    for lb in with_scores:
        games = [g for g in table_order if g in games_of[lb]]
        matrix = score_matrix(final, lb, games)
        ests = game_mean_estimates(
            matrix, reps=options.profile_reps, seed=seed, stream=f"{lb}/games", level=LEVEL
        )
        for j, (g, e) in enumerate(zip(games, ests, strict=True)):
            col = matrix[:, j][~np.isnan(matrix[:, j])]
            span = table[g].human - table[g].random
            raw = table[g].random + col * span
            per_game_rows.append(
                {
                    "algorithm": lb,
                    "game": g,
                    "n_runs": len(col),
                    "score_mean": float(raw.mean()),
                    "score_std": float(raw.std(ddof=1)) if len(col) > 1 else 0.0,
                    "score_ci_low": table[g].random + e.low * span,
                    "score_ci_high": table[g].random + e.high * span,
                    "hns_mean": e.estimate,
                    "hns_std": float(col.std(ddof=1)) if len(col) > 1 else 0.0,
                    "hns_ci_low": e.low,
                    "hns_ci_high": e.high,
                }
            )
    per_game = pd.DataFrame(per_game_rows)

    # Probability of improvement, every pair, over the common games.
    poi: list[tuple[str, str, Estimate]] = []
    for i, x in enumerate(with_scores):
        for y in with_scores[i + 1 :]:
            poi.append(
                (
                    x,
                    y,
                    improvement_estimate(
                        score_matrix(final, x, common),
                        score_matrix(final, y, common),
                        reps=options.profile_reps,
                        seed=seed,
                        stream=f"{x}>{y}",
                        level=LEVEL,
                    ),
                )
            )

    # Performance profiles.
    pooled = np.concatenate([score_matrix(final, lb, common).ravel() for lb in with_scores])
    pooled = pooled[~np.isnan(pooled)]
    tau_max = max(1.0, math.ceil(2 * float(np.quantile(pooled, 0.95))) / 2)
    taus = np.linspace(0.0, tau_max, 101)
    profiles = {
        lb: profile_estimates(
            score_matrix(final, lb, common),
            taus,
            reps=options.profile_reps,
            seed=seed,
            stream=f"{lb}/profile",
            level=LEVEL,
        )
        for lb in with_scores
    }

    # Sample-efficiency curves and the per-game grid, from periodic evaluations.
    periodic = evals[~evals["final"].astype(bool)].copy()
    curves: dict[str, Curve] = {}
    grid: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    if not periodic.empty:
        periodic["hns"] = normalize(periodic)
        for lb in with_scores:
            rows = periodic[(periodic["algorithm"] == lb) & periodic["game"].isin(common)]
            if rows.empty:
                continue
            steps = np.array(sorted(rows["env_step"].unique()))
            curve = sample_efficiency(
                curve_array(rows, common, steps),
                steps,
                reps=options.profile_reps,
                seed=seed,
                stream=f"{lb}/curve",
                level=LEVEL,
            )
            if len(curve.steps):
                curves[lb] = curve
        for g in common:  # games outside the aggregates would only show a baseline
            rows = periodic[periodic["game"] == g]
            for lb in with_scores:
                sub = rows[rows["algorithm"] == lb]
                if sub.empty:
                    continue
                stat = sub.groupby("env_step")["score"].agg(["mean", "std", "count"])
                se = (stat["std"].fillna(0.0) / np.sqrt(stat["count"])).to_numpy()
                grid.setdefault(g, {})[lb] = (
                    stat.index.to_numpy(dtype=np.float64),
                    stat["mean"].to_numpy(),
                    se,
                )
    if not curves:
        notes.append(
            "no periodic evaluations: sample-efficiency curves and the per-game "
            "learning-curve grid are skipped"
        )

    # Paired comparisons.
    comparisons: list[Comparison] = []
    labels = evals.drop_duplicates("algorithm")[["algorithm", "variant", "condition"]]
    labels = labels[labels["algorithm"].isin(with_scores)]
    configs = protocol_configs(runs)
    for spec in options.compare:
        for a, b in resolve_compare(spec, labels):
            ma, mb, games = paired_matrices(final, a, b, common)
            if not games:
                raise BenchError(f"--compare {spec}: {a!r} and {b!r} share no (game, seed) pair")
            dropped = [g for g in common if g not in games]
            if dropped:
                notes.append(f"{a} vs {b}: no shared seed on {', '.join(dropped)}")
            pa, pb = protocols.get(a, [""]), protocols.get(b, [""])
            pnote = ""
            if pa != pb and len(pa) == 1 and len(pb) == 1:
                pnote = f"protocols differ in {protocol_difference(pa[0], pb[0], configs)}"
            result = compare(
                ma,
                mb,
                reps=options.reps,
                seed=seed,
                stream=f"{a}:{b}",
                level=LEVEL,
                method=method,
            )
            comparisons.append(Comparison(a, b, games, result, pnote))

    provisional = not missing.empty
    provenance = build_provenance(
        evals,
        runs,
        final,
        missing,
        options,
        inputs,
        protocols,
        common,
        excluded,
        notes,
        provisional,
    )

    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    aggregates.to_csv(out / "aggregates.csv", index=False)
    per_game.to_csv(out / "per_game.csv", index=False)
    if poi:
        pd.DataFrame(
            [(x, y, e.estimate, e.low, e.high, len(common)) for x, y, e in poi],
            columns=["algorithm_x", "algorithm_y", "estimate", "ci_low", "ci_high", "n_games"],
        ).to_csv(out / "probability_of_improvement.csv", index=False)
    if comparisons:
        paired_tables(comparisons)[0].to_csv(out / "paired_aggregates.csv", index=False)
        paired_tables(comparisons)[1].to_csv(out / "paired_per_game.csv", index=False)
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")

    figure_files: dict[str, str] = {}
    est = {lb: agg[lb].aggregates for lb in with_scores}
    figure_files["Aggregate metrics with 95% CIs"] = "figures/interval_estimates"
    fig.interval_estimates(est, colors, out / "figures/interval_estimates")
    figure_files["Performance profiles"] = "figures/performance_profiles"
    fig.performance_profiles(taus, profiles, colors, out / "figures/performance_profiles")
    if poi:
        figure_files["Probability of improvement"] = "figures/probability_of_improvement"
        fig.probability_of_improvement(poi, colors, out / "figures/probability_of_improvement")
    if curves:
        figure_files["Sample efficiency (IQM)"] = "figures/sample_efficiency"
        fig.sample_efficiency(curves, colors, out / "figures/sample_efficiency")
    if grid:
        figure_files["Learning curves per game"] = "figures/learning_curves"
        fig.learning_curve_grid(grid, colors, out / "figures/learning_curves")
    for k, c in enumerate(comparisons, start=1):
        name = f"figures/forest_{k}"
        figure_files[f"Paired differences: {c.b} − {c.a}"] = name
        fig.forest(
            c.result,
            c.games,
            out / name,
            title=f"B = {c.b}\nA = {c.a}",
            color=colors.get(c.b, fig.OKABE_ITO[0]),
        )

    (out / "tables/aggregates.tex").write_text(latex_aggregates(agg, with_scores))
    (out / "tables/per_game.tex").write_text(latex_per_game(per_game, with_scores))
    if comparisons:
        (out / "tables/paired.tex").write_text(latex_paired(comparisons))
    (out / "report.md").write_text(
        markdown_report(
            provenance,
            aggregates,
            per_game,
            poi,
            comparisons,
            figure_files,
            with_scores,
            missing,
        )
    )
    state = f"provisional: {len(missing)} runs missing" if provisional else "complete"
    return f"wrote {out}: {len(with_scores)} algorithms, {len(common)} games in aggregates, {state}"


def curve_array(rows: pd.DataFrame, games: Sequence[str], steps: np.ndarray) -> np.ndarray:
    """(n_runs, n_games, n_steps) human-normalized periodic scores, NaN where absent."""
    step_index = {int(s): k for k, s in enumerate(steps)}
    per_game = {g: list(dict.fromkeys(rows.loc[rows["game"] == g, "run_id"])) for g in games}
    n_runs = max(1, max(len(v) for v in per_game.values()))
    out = np.full((n_runs, len(games), len(steps)), np.nan)
    run_index = {(g, r): i for g, ids in per_game.items() for i, r in enumerate(ids)}
    game_index = {g: j for j, g in enumerate(games)}
    for g, r, s, v in zip(rows["game"], rows["run_id"], rows["env_step"], rows["hns"], strict=True):
        out[run_index[(g, r)], game_index[g], step_index[int(s)]] = v
    return out


# ---- provenance and tables ---------------------------------------------------------------


def build_provenance(
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    final: pd.DataFrame,
    missing: pd.DataFrame,
    options: ReportOptions,
    inputs: Inputs,
    protocols: dict[str, list[str]],
    common: list[str],
    excluded: dict[str, list[str]],
    notes: list[str],
    provisional: bool,
) -> dict[str, Any]:
    configs = protocol_configs(runs)
    algorithms = {}
    for lb, group in final.groupby("algorithm", sort=False):
        per_game = group.groupby("game")["run_id"].count()
        expected = runs[runs["algorithm"] == lb]
        algorithms[lb] = {
            "sources": sorted(set(group["source"].astype(str))),
            "protocols": protocols.get(lb, []),
            "git_shas": sorted({s for s in group["git_sha"] if s}),
            "runs": int(len(group)),
            "games": int(group["game"].nunique()),
            "runs_per_game": {g: int(n) for g, n in per_game.items()},
            "expected_runs": int(len(expected)) if len(expected) else int(len(group)),
            "missing_runs": int((missing["algorithm"] == lb).sum()) if len(missing) else 0,
            "failed_runs": int((expected["state"] == "failed").sum()) if len(expected) else 0,
        }
    failed = runs[runs["state"] == "failed"] if len(runs) else runs
    suites = sorted(
        {s for s in runs.get("suite", pd.Series(dtype=str)) if isinstance(s, str) and s}
    )
    baseline_sources = {n: baseline_source(n) for n in inputs.baselines}

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        cols = [
            c
            for c in ("run_id", "algorithm", "game", "seed", "state", "attempts", "error", "source")
            if c in frame.columns
        ]
        return json.loads(frame[cols].to_json(orient="records")) if len(frame) else []

    return {
        "bench_version": __version__,
        "provisional": provisional,
        "inputs": asdict(inputs),
        "baseline_sources": baseline_sources,
        "suites": suites,
        "git_shas": sorted(
            {s for s in evals["git_sha"] if s}
            | {s for s in runs.get("git_sha", pd.Series(dtype=str)) if isinstance(s, str) and s}
        ),
        "protocols": {
            p: configs.get(p, {}) for p in sorted({p for v in protocols.values() for p in v if p})
        },
        "algorithms": algorithms,
        "games_in_aggregates": common,
        "games_left_out_of_aggregates": excluded,
        "bootstrap": {
            "method": "bca" if options.bca else "percentile",
            "level": LEVEL,
            "reps": options.reps,
            "profile_reps": options.profile_reps,
            "seed": options.seed,
            "resampling": "stratified: runs with replacement within each game",
        },
        "pooled_mixed_protocols": options.allow_mixed_protocols
        and any(len(v) > 1 for v in protocols.values()),
        "missing_runs": records(missing),
        "failed_runs": records(failed),
        "notes": notes,
    }


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _ci(e: Estimate | pd.Series, digits: int = 3) -> str:
    if isinstance(e, Estimate):
        return f"{_fmt(e.estimate, digits)} [{_fmt(e.low, digits)}, {_fmt(e.high, digits)}]"
    return (
        f"{_fmt(e['estimate'], digits)} [{_fmt(e['ci_low'], digits)}, {_fmt(e['ci_high'], digits)}]"
    )


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


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


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def latex_aggregates(agg: dict[str, Any], labels: list[str]) -> str:
    """Booktabs table: one row per algorithm, point estimate and 95% CI per metric."""
    best = {}
    for m in metrics.AGGREGATES:
        values = [agg[lb].aggregates[m].estimate for lb in labels]
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
            e = agg[lb].aggregates[m]
            point = _fmt(e.estimate)
            if len(labels) > 1 and e.estimate == best[m]:
                point = rf"\textbf{{{point}}}"
            cells.append(rf"{point} {{\scriptsize [{_fmt(e.low)}, {_fmt(e.high)}]}}")
        lines.append(_tex(lb) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def latex_per_game(per_game: pd.DataFrame, labels: list[str]) -> str:
    """Booktabs table of mean raw scores: games as rows, Random, Human, then algorithms."""
    table = game_table()
    games = [g for g in table if g in set(per_game["game"])]
    means = per_game.pivot(index="game", columns="algorithm", values="score_mean")
    lines = [
        "% Generated by bench report; mean raw score over runs, best per game in bold.",
        r"\begin{tabular}{lrr" + "r" * len(labels) + "}",
        r"\toprule",
        "Game & Random & Human & " + " & ".join(_tex(lb) for lb in labels) + r" \\",
        r"\midrule",
    ]
    for g in games:
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


def paired_tables(comparisons: list[Comparison]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(aggregates, per game) tables of the paired comparisons."""
    agg_rows, game_rows = [], []
    for c in comparisons:
        name = f"{c.b} vs {c.a}"
        for m, e in c.result.aggregates.items():
            agg_rows.append(
                (name, c.a, c.b, m, e.estimate, e.low, e.high, c.result.n_pairs, c.result.n_games)
            )
        for g, r in zip(c.games, c.result.per_game, strict=True):
            game_rows.append(
                (
                    name,
                    g,
                    r.n_pairs,
                    r.mean_a,
                    r.mean_b,
                    r.difference.estimate,
                    r.difference.low,
                    r.difference.high,
                    r.wilcoxon_statistic,
                    r.p_value,
                    r.p_holm,
                )
            )
    return (
        pd.DataFrame(
            agg_rows,
            columns=[
                "comparison",
                "a",
                "b",
                "metric",
                "estimate",
                "ci_low",
                "ci_high",
                "n_pairs",
                "n_games",
            ],
        ),
        pd.DataFrame(
            game_rows,
            columns=[
                "comparison",
                "game",
                "n_pairs",
                "hns_mean_a",
                "hns_mean_b",
                "difference",
                "ci_low",
                "ci_high",
                "wilcoxon_statistic",
                "p_value",
                "p_holm",
            ],
        ),
    )


PAIRED_TITLES = {
    "iqm_difference": "IQM(B) − IQM(A)",
    "median_difference": "Median(B) − Median(A)",
    "mean_difference": "Mean(B) − Mean(A)",
    "optimality_gap_difference": "Optimality gap(B) − Optimality gap(A)",
    "iqm_of_paired_differences": "IQM of paired differences B − A",
    "paired_win_rate": "Fraction of seeds where B > A",
    "probability_of_improvement": "P(B > A)",
}


def latex_paired(comparisons: list[Comparison]) -> str:
    lines = ["% Generated by bench report; paired bootstrap 95% CIs in brackets."]
    for c in comparisons:
        lines += [
            rf"% B = {_tex(c.b)}, A = {_tex(c.a)}",
            r"\begin{tabular}{lc}",
            r"\toprule",
            r"Statistic & Estimate [95\% CI] \\",
            r"\midrule",
        ]
        for m in PAIRED_METRICS:
            e = c.result.aggregates[m]
            lines.append(f"{_tex(PAIRED_TITLES[m])} & {_ci(e)}" + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact signed-rank test can give with n nonzero pairs."""
    return 2.0 / 2**n if n > 0 else 1.0


def markdown_report(
    prov: dict[str, Any],
    aggregates: pd.DataFrame,
    per_game: pd.DataFrame,
    poi: list[tuple[str, str, Estimate]],
    comparisons: list[Comparison],
    figure_files: dict[str, str],
    labels: list[str],
    missing: pd.DataFrame,
) -> str:
    b = prov["bootstrap"]
    out = ["# Benchmark report", ""]
    if prov["provisional"]:
        out += [
            f"> **Provisional**: {len(missing)} expected run(s) have no final evaluation yet "
            "(listed below); every number here may change.",
            "",
        ]
    out += ["## Provenance", ""]
    out.append(f"- bench {prov['bench_version']}")
    if prov["suites"]:
        out.append(f"- suites: {', '.join(prov['suites'])}")
    if prov["inputs"]["dirs"]:
        out.append(f"- ledgers: {', '.join(prov['inputs']['dirs'])}")
    for n, src in prov["baseline_sources"].items():
        out.append(f"- baseline {n}: {src}")
    if prov["inputs"]["externals"]:
        out.append(f"- external scores: {', '.join(prov['inputs']['externals'])}")
    out.append(f"- git SHAs: {', '.join(prov['git_shas']) or 'none recorded'}")
    for p, cfg in prov["protocols"].items():
        shown = ", ".join(f"{k}={v}" for k, v in cfg.items()) or "config not recorded"
        out.append(f"- protocol `{p}`: {shown}")
    if prov["pooled_mixed_protocols"]:
        out.append("- **runs made under different protocols are pooled** (--allow-mixed-protocols)")
    out.append(
        f"- statistics: {b['method']} {int(b['level'] * 100)}% CIs from a stratified bootstrap "
        f"(runs resampled within each game), {b['reps']:,} replicates for aggregates and paired "
        f"comparisons, {b['profile_reps']:,} for profiles, P(X > Y), curves and per-game CIs; "
        f"seed {b['seed']}"
    )
    out.append(
        f"- human-normalized scores; aggregates over {len(prov['games_in_aggregates'])} games"
    )
    out.append("")
    rows = []
    for lb in labels:
        a = prov["algorithms"][lb]
        counts = list(a["runs_per_game"].values())
        span = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"
        rows.append(
            [
                lb,
                str(a["games"]),
                span,
                str(a["runs"]),
                str(a["expected_runs"]),
                str(a["missing_runs"]),
                str(a["failed_runs"]),
                ", ".join(a["protocols"]) or "unknown",
            ]
        )
    out.append(
        _md_table(
            [
                "Algorithm",
                "Games",
                "Runs per game",
                "Runs",
                "Expected",
                "Missing",
                "Failed",
                "Protocol",
            ],
            rows,
        )
    )
    if prov["notes"]:
        out += ["**Notes**", ""] + [f"- {n}" for n in prov["notes"]] + [""]

    out += [
        "## Aggregate metrics",
        "",
        "Point estimate [95% CI]; IQM, median and mean: higher is better; optimality gap: "
        "lower is better. `n_runs` counts runs (one game, one seed each).",
        "",
    ]
    rows = []
    for lb in labels:
        sub = aggregates[aggregates["algorithm"] == lb].set_index("metric")
        rows.append(
            [lb]
            + [_ci(sub.loc[m]) for m in metrics.AGGREGATES]
            + [str(int(sub["n_runs"].iloc[0])), str(int(sub["n_games"].iloc[0]))]
        )
    out.append(
        _md_table(
            ["Algorithm", "IQM", "Median", "Mean", "Optimality gap", "n_runs", "n_games"], rows
        )
    )
    if poi:
        out += ["## Probability of improvement", ""]
        out.append(_md_table(["X", "Y", "P(X > Y) [95% CI]"], [[x, y, _ci(e)] for x, y, e in poi]))
    for c in comparisons:
        out += [f"## Paired comparison: B = {c.b} vs A = {c.a}", ""]
        out.append(
            f"{c.result.n_pairs} (game, seed) pairs over {c.result.n_games} games; paired "
            "bootstrap (pairs resampled within each game)."
            + (f" Note: {c.protocol_note}." if c.protocol_note else "")
        )
        out.append("")
        out.append(
            _md_table(
                ["Statistic", "Estimate [95% CI]"],
                [[PAIRED_TITLES[m], _ci(e)] for m, e in c.result.aggregates.items()],
            )
        )
        n_min = min(g.n_pairs for g in c.result.per_game)
        alpha = 0.05 / len(c.games)
        if min_wilcoxon_p(n_min) > alpha:
            out.append(
                f"With {n_min} pairs in a game the exact Wilcoxon test cannot go below "
                f"p = {min_wilcoxon_p(n_min):.4f}, above Holm's first threshold "
                f"0.05/{len(c.games)} = {alpha:.4f}: per-game tests cannot be significant "
                "after correction; read the aggregate intervals instead.\n"
            )
        out.append(
            _md_table(
                ["Game", "Pairs", "Mean A", "Mean B", "B − A [95% CI]", "Wilcoxon p", "Holm p"],
                [
                    [
                        g,
                        str(r.n_pairs),
                        _fmt(r.mean_a),
                        _fmt(r.mean_b),
                        _ci(r.difference),
                        f"{r.p_value:.3g}",
                        f"{r.p_holm:.3g}",
                    ]
                    for g, r in zip(c.games, c.result.per_game, strict=True)
                ],
            )
        )
    out += ["## Per game", "", "Mean raw score over runs [95% CI]; runs in parentheses.", ""]
    table = game_table()
    games = [g for g in table if g in set(per_game["game"])]
    rows = []
    for g in games:
        row = [g, f"{table[g].random:.1f}", f"{table[g].human:.1f}"]
        for lb in labels:
            hit = per_game[(per_game["algorithm"] == lb) & (per_game["game"] == g)]
            if hit.empty:
                row.append("–")
            else:
                r = hit.iloc[0]
                row.append(
                    f"{r['score_mean']:.1f} [{r['score_ci_low']:.1f}, "
                    f"{r['score_ci_high']:.1f}] ({int(r['n_runs'])})"
                )
        rows.append(row)
    out.append(_md_table(["Game", "Random", "Human"] + labels, rows))
    out += ["## Figures", ""]
    for title, stem in figure_files.items():
        out.append(f"- {title}: [{stem}.pdf]({stem}.pdf)")
        out.append(f"  ![{title}]({stem}.png)")
    out.append("")
    out += [
        "Tables for LaTeX (booktabs): `tables/aggregates.tex`, `tables/per_game.tex`"
        + (", `tables/paired.tex`" if comparisons else "")
        + ".",
        "",
    ]
    if len(missing):
        out += ["## Missing runs", ""]
        shown = missing.head(100)
        out.append(
            _md_table(
                ["Algorithm", "Game", "Seed", "State", "Error"],
                [
                    [
                        str(r.algorithm),
                        str(r.game),
                        str(r.seed),
                        str(r.state),
                        str(getattr(r, "error", "") or "")[:120],
                    ]
                    for r in shown.itertuples()
                ],
            )
        )
        if len(missing) > len(shown):
            out.append(f"… and {len(missing) - len(shown)} more (see provenance.json).\n")
    return "\n".join(out)
