"""``report.md``: a report's provenance, statistics, figures and missing runs, for a reader,
read from a ``Report``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.env.games import games as game_table
from bench.report.analysis import Report
from bench.report.compare import Comparison
from bench.report.reproduction import METHOD, Reproduction
from bench.report.study import Study, reading
from bench.report.tables import PAIRED_TITLES, ci, fmt
from bench.stats import metrics

# The paired statistics the audio study's table shows (all of them are in audio_study.csv).
STUDY_SHOWN = ("iqm_difference", "iqm_of_paired_differences", "probability_of_improvement")
MISSING_SHOWN = 100  # rows of the missing-runs table; provenance.json lists them all


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact signed-rank test can give with n nonzero pairs."""
    return 2.0 / 2**n if n > 0 else 1.0


def markdown_report(report: Report, figures: Sequence[tuple[str, str]]) -> str:
    """The text of report.md; ``figures`` are (title, file stem) of the figures written."""
    out = ["# Benchmark report", ""]
    if report.provisional:
        out += [
            f"> **Provisional**: {len(report.missing)} expected run(s) have no final evaluation "
            "yet (listed below); every number here may change.",
            "",
        ]
    if report.study is not None:  # the question a suite with audio conditions asks comes first
        out += study_section(report.study)
    out += provenance_section(report.provenance)
    out += algorithms_section(report)
    out += aggregates_section(report)
    if report.improvement:
        rows = [[x, y, ci(e)] for x, y, e in report.improvement]
        out += [
            "## Probability of improvement",
            "",
            md_table(["X", "Y", "P(X > Y) [95% CI]"], rows),
        ]
    for c in report.comparisons:
        out += comparison_section(c)
    if report.reproduction is not None:
        out += reproduction_section(report.reproduction)
    out += per_game_section(report)
    out += figures_section(figures, tables=bool(report.comparisons))
    out += missing_section(report)
    return "\n".join(out)


def provenance_section(prov: dict[str, Any]) -> list[str]:
    b = prov["bootstrap"]
    out = ["## Provenance", "", f"- bench {prov['bench_version']}"]
    if prov["suites"]:
        out.append(f"- suites: {', '.join(prov['suites'])}")
    if prov["inputs"]["dirs"]:
        out.append(f"- ledgers: {', '.join(prov['inputs']['dirs'])}")
    for n, src in prov["baseline_sources"].items():
        note = prov["baseline_protocols"].get(n, {}).get("note", "")
        out.append(f"- baseline {n}: {src}" + (f"; protocol: {note}" if note else ""))
    if prov["inputs"]["externals"]:
        out.append(f"- external scores: {', '.join(prov['inputs']['externals'])}")
    out.append(f"- git SHAs: {', '.join(prov['git_shas']) or 'none recorded'}")
    for p, cfg in prov["protocols"].items():
        shown = ", ".join(f"{k}={v}" for k, v in cfg.items()) or "config not recorded"
        out.append(f"- protocol `{p}`: {shown}")
    if prov["pooled_mixed_protocols"]:
        out.append("- **runs made under different protocols are pooled** (--allow-mixed-protocols)")
    if prov.get("mixed_action_spaces"):
        spaces = "; ".join(
            f"{lb}: {a['action_space']}"
            for lb, a in prov["algorithms"].items()
            if a["action_space"]
        )
        out.append(
            f"- **algorithms acted in different action spaces** ({spaces}; "
            "--allow-mixed-protocols): the comparison is of agent and controller together"
        )
    out.append(
        f"- statistics: {b['method']} {int(b['level'] * 100)}% CIs from a stratified bootstrap "
        f"(runs resampled within each game), {b['reps']:,} replicates for aggregates and paired "
        f"comparisons, {b['profile_reps']:,} for profiles, P(X > Y), curves and per-game CIs; "
        f"seed {b['seed']}"
    )
    n_games = len(prov["games_in_aggregates"])
    return out + [f"- human-normalized scores; aggregates over {n_games} games", ""]


def algorithms_section(report: Report) -> list[str]:
    """Runs behind each algorithm, then the notes."""
    rows = []
    for lb in report.labels:
        a = report.provenance["algorithms"][lb]
        lo, hi = min(a["runs_per_game"].values()), max(a["runs_per_game"].values())
        counts = [a["runs"], a["expected_runs"], a["missing_runs"], a["failed_runs"]]
        protocol = ", ".join(a["protocols"]) or "unknown"
        protocol += f" ({a['action_space']})" if a.get("action_space") else ""
        span = f"{lo}" if lo == hi else f"{lo}–{hi}"
        rows.append([lb, str(a["games"]), span, *map(str, counts), protocol])
    header = ["Algorithm", "Games", "Runs per game", "Runs", "Expected", "Missing", "Failed"]
    out = [md_table([*header, "Protocol"], rows)]
    if report.notes:
        out += ["**Notes**", ""] + [f"- {n}" for n in report.notes] + [""]
    return out


def aggregates_section(report: Report) -> list[str]:
    rows = []
    for lb in report.labels:
        sub = report.aggregates[report.aggregates["algorithm"] == lb].set_index("metric")
        counts = [str(int(sub["n_runs"].iloc[0])), str(int(sub["n_games"].iloc[0]))]
        rows.append([lb] + [ci(sub.loc[m]) for m in metrics.AGGREGATES] + counts)
    header = ["Algorithm", "IQM", "Median", "Mean", "Optimality gap", "n_runs", "n_games"]
    return [
        "## Aggregate metrics",
        "",
        "Point estimate [95% CI]; IQM, median and mean: higher is better; optimality gap: "
        "lower is better. `n_runs` counts runs (one game, one seed each).",
        "",
        md_table(header, rows),
    ]


def comparison_section(c: Comparison) -> list[str]:
    r = c.result
    out = [
        f"## Paired comparison: B = {c.b} vs A = {c.a}",
        "",
        f"{r.n_pairs} (game, seed) pairs over {r.n_games} games; paired "
        "bootstrap (pairs resampled within each game)."
        + (f" Note: {c.protocol_note}." if c.protocol_note else ""),
        "",
        md_table(
            ["Statistic", "Estimate [95% CI]"],
            [[PAIRED_TITLES[m], ci(e)] for m, e in r.aggregates.items()],
        ),
    ]
    n_min = min(g.n_pairs for g in r.per_game)
    alpha = 0.05 / len(c.games)
    if min_wilcoxon_p(n_min) > alpha:
        out.append(
            f"With {n_min} pairs in a game the exact Wilcoxon test cannot go below "
            f"p = {min_wilcoxon_p(n_min):.4f}, above Holm's first threshold "
            f"0.05/{len(c.games)} = {alpha:.4f}: per-game tests cannot be significant "
            "after correction; read the aggregate intervals instead.\n"
        )
    rows = [
        [g, str(p.n_pairs), fmt(p.mean_a), fmt(p.mean_b), ci(p.difference)]
        + [f"{p.p_value:.3g}", f"{p.p_holm:.3g}"]
        for g, p in zip(c.games, r.per_game, strict=True)
    ]
    header = ["Game", "Pairs", "Mean A", "Mean B", "B − A [95% CI]", "Wilcoxon p", "Holm p"]
    return out + [md_table(header, rows)]


def study_section(study: Study) -> list[str]:
    """The audio decomposition: one row per paired comparison, what the intervals support,
    and the per-game mean differences."""
    rows = [
        [r.group, r.effect.title, f"{r.b} − {r.a}"]
        + [str(r.result.n_pairs), str(r.result.n_games)]
        + [ci(r.result.aggregates[m]) for m in STUDY_SHOWN]
        + [reading(r.headline)]
        for r in study.rows
    ]
    header = ["Variant", "Effect", "B − A", "Pairs", "Games"]
    header += [PAIRED_TITLES[m] + " [95% CI]" for m in STUDY_SHOWN] + ["IQM interval"]
    out = [
        "## Does hearing the game help? (audio study)",
        "",
        "Each row pairs two audio conditions of one variant on shared (game, seed) pairs; "
        "human-normalized scores. on − off is the total effect, silent − off the added "
        "network alone, on − silent what the sound carries beyond it, on − shuffled whether "
        "its timing matters; rows whose conditions these runs lack are left out.",
        "",
        md_table(header, rows),
        "**What the intervals support**",
        "",
        *[f"- {s}" for s in study.summary],
        "",
    ]
    for group in dict.fromkeys(r.group for r in study.rows):
        group_rows = [r for r in study.rows if r.group == group]
        games = list(dict.fromkeys(g for r in group_rows for g in r.games))
        cells = {
            (r.effect.key, g): ci(p.difference) for r in group_rows
            for g, p in zip(r.games, r.result.per_game, strict=True)
        }  # fmt: skip
        table = [[g] + [cells.get((r.effect.key, g), "–") for r in group_rows] for g in games]
        head = ["Game"] + [f"{r.effect.b} − {r.effect.a}" for r in group_rows]
        out += [
            f"Per game, {group}: mean paired difference [95% CI] (human-normalized).",
            "",
            md_table(head, table),
        ]
    files = "`audio_study.csv`, `audio_study_per_game.csv`, `tables/audio_study.tex`"
    return out + [f"Files: {files}; per-game forest plots under Figures.", ""]


def reproduction_section(rep: Reproduction) -> list[str]:
    """The verdicts, how they were reached, the protocol caveats and the per-game table."""
    t = rep.table.set_index("game")
    overall = t.loc["overall"]
    differing = ", ".join(rep.games_differing) or "none"
    out = [
        f"## Reproduction: {rep.ours} vs {rep.published}",
        "",
        f"Overall: **{rep.verdict}** at level {rep.alpha:g}. IQM {fmt(overall['hns_ours'])} "
        f"(ours) vs {fmt(overall['hns_published'])} (published), difference "
        f"{_ci_of(overall, 'hns')}; P(ours > published) {_ci_of(overall, 'p_improvement')}; "
        f"permutation p = {overall['p_value']:.3g}. Games that differ: {differing} "
        f"(of {len(rep.games)}).",
        "",
        f"Verdicts: {METHOD}; {rep.result.permutations:,} permutations. Intervals: 95% "
        "stratified bootstrap, ours and the published runs resampled independently; with few "
        "runs per game they are narrower than the tests, and the verdicts come from the "
        "tests. Differences are ours − published.",
        "",
        f"Protocol of the published runs: {rep.protocol_note}.",
        "",
    ]
    if rep.protocol_differences:
        out += [
            "**The protocols differ** (compared anyway, --allow-mixed-protocols): "
            + "; ".join(rep.protocol_differences)
            + ".",
            "",
        ]
    if rep.unverified:
        out += ["Not checked (recorded on one side only): " + "; ".join(rep.unverified) + ".", ""]
    rows = [
        [g, f"{int(r.n_ours)} / {int(r.n_published)}", f"{r.score_ours:.1f}"]
        + [f"{r.score_published:.1f}", _ci_of(r, "score", 1), _ci_of(r, "hns")]
        + [_ci_of(r, "p_improvement", 2), f"{r.p_value:.3g}", f"{r.p_adjusted:.3g}", r.verdict]
        for g, r in t.drop(index="overall").iterrows()
    ]
    header = ["Game", "Runs (ours / published)", "Mean ours", "Mean published"]
    header += ["Difference [95% CI]", "HNS difference [95% CI]", "P(ours > published)"]
    return out + [md_table(header + ["p", "Holm p", "Verdict"], rows)]


def _ci_of(row: Any, prefix: str, digits: int = 3) -> str:
    """ "0.012 [-0.006, 0.032]" from a reproduction row's <prefix>_difference (or
    <prefix> for P(ours > published)) and its <prefix>_ci_low / _ci_high."""
    point = row[prefix] if prefix == "p_improvement" else row[f"{prefix}_difference"]
    return (
        f"{point:.{digits}f} [{row[f'{prefix}_ci_low']:.{digits}f}, "
        f"{row[f'{prefix}_ci_high']:.{digits}f}]"
    )


def per_game_section(report: Report) -> list[str]:
    table, per_game, labels = game_table(), report.per_game, list(report.labels)
    cells = {
        (r.algorithm, r.game): f"{r.score_mean:.1f} [{r.score_ci_low:.1f}, "
        f"{r.score_ci_high:.1f}] ({int(r.n_runs)})"
        for r in per_game.itertuples()
    }
    rows = [
        [g, f"{table[g].random:.1f}", f"{table[g].human:.1f}"]
        + [cells.get((lb, g), "–") for lb in labels]
        for g in table
        if g in set(per_game["game"])
    ]
    return [
        "## Per game",
        "",
        "Mean raw score over runs [95% CI]; runs in parentheses.",
        "",
        md_table(["Game", "Random", "Human"] + labels, rows),
    ]


def figures_section(figures: Sequence[tuple[str, str]], *, tables: bool) -> list[str]:
    out = ["## Figures", ""]
    for title, stem in figures:
        out += [f"- {title}: [{stem}.pdf]({stem}.pdf)", f"  ![{title}]({stem}.png)"]
    paired = ", `tables/paired.tex`" if tables else ""
    return out + [
        "",
        f"Tables for LaTeX (booktabs): `tables/aggregates.tex`, `tables/per_game.tex`{paired}.",
        "",
    ]


def missing_section(report: Report) -> list[str]:
    missing = report.missing
    if not len(missing):
        return []
    shown = missing.head(MISSING_SHOWN)
    rows = [
        [str(r.algorithm), str(r.game), str(r.seed), str(r.state)]
        + [str(getattr(r, "error", "") or "")[:120]]
        for r in shown.itertuples()
    ]
    out = ["## Missing runs", "", md_table(["Algorithm", "Game", "Seed", "State", "Error"], rows)]
    if len(missing) > len(shown):
        out.append(f"… and {len(missing) - len(shown)} more (see provenance.json).\n")
    return out
