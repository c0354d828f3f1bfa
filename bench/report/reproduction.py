"""A reproduction report (``--reproduce NAME[=LABEL]``): the runs of one algorithm label
against a bundled published per-run set (``baselines.BASELINES[NAME]``) made under the same
protocol.

Per game: the difference of means, ours - published, in raw score and human-normalized,
with a stratified-bootstrap CI, and P(ours > published); overall: the IQM difference with a
stratified-bootstrap CI (ours and the published runs resampled independently). The verdicts
come from permutation tests (``bench.stats.twosample``): per game, a two-sided test of the
difference of means, Holm-adjusted over the games (family-wise error rate at most ALPHA);
overall, one two-sided test of the IQM difference at level ALPHA, the primary question.
"consistent" means no evidence at that level that our runs come from another distribution
than the published ones; "differs" means there is.

Protocols: every item that both the runs and the baseline record must agree (and the final
evaluation's env step and episode count), or the report is refused, unless
``--allow-mixed-protocols``; items only one side records are listed as unverified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.env.games import games as game_table
from bench.report.baselines import BASELINES, Baseline, parse_baselines
from bench.report.columns import REPRODUCTION_COLUMNS
from bench.report.options import LEVEL, ReportOptions
from bench.report.protocols import protocol_configs
from bench.report.scores import score_matrix, source_kind
from bench.stats import metrics
from bench.stats.twosample import TwoSampleComparison, two_sample

ALPHA = 0.05  # of every verdict
CONSISTENT, DIFFERS = "consistent", "differs"
METHOD = (
    "permutation tests (labels permuted within each game): per game, the difference of "
    "means, Holm-adjusted over the games; overall, the IQM difference, unadjusted (the "
    "primary test)"
)


@dataclass(frozen=True)
class Reproduction:
    """Our runs of one label against a published per-run set, over the games we ran."""

    baseline: str  # the registry name, "DER"
    ours: str  # our algorithm label
    published: str  # the baseline's label, "DER (published)"
    games: list[str]
    result: TwoSampleComparison
    table: pd.DataFrame  # REPRODUCTION_COLUMNS: one row per game, then the overall row
    protocol_differences: tuple[str, ...]  # "item (ours vs published)"; only when allowed
    unverified: tuple[str, ...]  # items only one side records
    protocol_note: str  # the baseline's protocol in a sentence
    alpha: float = ALPHA

    @property
    def verdict(self) -> str:
        return DIFFERS if self.result.iqm_p_value < self.alpha else CONSISTENT

    @property
    def games_differing(self) -> list[str]:
        return [
            g
            for g, d in zip(self.games, self.result.per_game, strict=True)
            if d.p_holm < self.alpha
        ]


def parse_reproduce(spec: str) -> tuple[str, str]:
    """``"DER"`` -> ("DER", ""); ``"der=BBF [audio=off]"`` -> ("DER", "BBF [audio=off]")."""
    name, _, label = spec.partition("=")
    names = parse_baselines(name)
    if len(names) != 1:
        raise BenchError(f"--reproduce {spec}: expected one baseline name, e.g. DER or DER=LABEL")
    return names[0], label.strip()


def _ours(label: str, final: pd.DataFrame, name: str) -> str:
    """The label whose runs are compared: the one given, or the only non-baseline label."""
    own = list(dict.fromkeys(final.loc[source_kind(final) != "baseline", "algorithm"]))
    if label and label in own:
        return label
    choices = "; ".join(own) or "none (give ledger folders or --external files)"
    if label:
        raise BenchError(f"--reproduce {name}={label}: no runs of {label!r}; labels: {choices}")
    if len(own) != 1:
        raise BenchError(
            f"--reproduce {name}: which runs reproduce {name}? say --reproduce {name}=LABEL; "
            f"labels: {choices}"
        )
    return own[0]


def _same(a: Any, b: Any) -> bool:
    """Equal protocol values: 0 and 0.0 are; True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def protocol_items(
    recorded: Sequence[dict[str, Any]], runs: pd.DataFrame, base: Baseline
) -> tuple[list[str], list[str]]:
    """(differences, unverified) between the runs' protocols and the baseline's.

    ``recorded``: the runs' protocol configs (flattened keys; empty when not recorded);
    ``runs``: their final evaluations (``env_step``, and ``n_episodes`` where known).
    """
    diffs: list[str] = []
    unverified: set[str] = set()
    if not any(recorded):
        unverified.add("the runs record no protocol: none of the published runs' items")
    for cfg in [c for c in recorded if c]:
        for key in sorted(set(cfg) | set(base.protocol)):
            if key in cfg and key in base.protocol:
                if not _same(cfg[key], base.protocol[key]):
                    diffs.append(f"{key} ({cfg[key]} vs {base.protocol[key]})")
            elif key in base.protocol:
                unverified.add(f"{key} (published: {base.protocol[key]}; not recorded by the runs)")
            else:
                unverified.add(f"{key} (runs: {cfg[key]}; not recorded for the published runs)")
    steps = sorted({int(s) for s in runs["env_step"] if s > 0})
    if any(s != base.final_step for s in steps):
        shown = ", ".join(f"{s:,}" for s in steps)
        diffs.append(f"final evaluation env step ({shown} vs {base.final_step:,})")
    if not steps:
        unverified.add(f"final evaluation env step (published: {base.final_step:,})")
    episodes = sorted({int(n) for n in runs.get("n_episodes", pd.Series(dtype=float)).dropna()})
    if episodes and episodes != [base.eval_episodes]:
        shown = ", ".join(map(str, episodes))
        diffs.append(f"evaluation episodes ({shown} vs {base.eval_episodes})")
    return list(dict.fromkeys(diffs)), sorted(unverified)


def reproduction_of(
    final: pd.DataFrame,
    runs: pd.DataFrame,
    options: ReportOptions,
    *,
    protocols: dict[str, list[str]],
) -> Reproduction | None:
    """The ``--reproduce`` comparison of ``options`` (None without one), from the final scores
    (``scores.final_scores``, with ``hns``), the ledgers' runs and each label's protocols."""
    if not options.reproduce:
        return None
    name, label = parse_reproduce(options.reproduce)
    base = BASELINES[name]
    if not (final["algorithm"] == base.label).any():
        raise BenchError(f"--reproduce {name}: the published {name} runs are not loaded")
    ours = _ours(label, final, name)
    configs = protocol_configs(runs)
    recorded = [configs.get(p, {}) for p in protocols.get(ours, []) if p]
    diffs, unverified = protocol_items(recorded, final[final["algorithm"] == ours], base)
    if diffs and not options.allow_mixed_protocols:
        raise BenchError(
            f"--reproduce {name}: the runs of {ours!r} and the published {name} runs were made "
            f"under different protocols: {'; '.join(diffs)}; pass --allow-mixed-protocols to "
            "compare them anyway"
        )
    ran = {lb: set(final.loc[final["algorithm"] == lb, "game"]) for lb in (ours, base.label)}
    games = [g for g in game_table() if g in ran[ours] and g in ran[base.label]]
    if not games:
        raise BenchError(f"--reproduce {name}: {ours!r} shares no game with the published runs")
    x, y = score_matrix(final, ours, games), score_matrix(final, base.label, games)
    result = two_sample(
        x,
        y,
        reps=options.reps,
        permutations=options.permutations,
        seed=options.seed,
        stream=f"{ours}~{base.label}",
        level=LEVEL,
        method=options.method,
    )
    table = reproduction_table(name, ours, games, result, (x, y))
    return Reproduction(
        baseline=name,
        ours=ours,
        published=base.label,
        games=games,
        result=result,
        table=table,
        protocol_differences=tuple(diffs),
        unverified=tuple(unverified),
        protocol_note=base.protocol_note,
    )


def reproduction_record(rep: Reproduction | None) -> dict[str, Any] | None:
    """What provenance.json says of a reproduction: what was compared, how, and the verdict."""
    if rep is None:
        return None
    return {
        "baseline": rep.baseline,
        "ours": rep.ours,
        "published": rep.published,
        "games": rep.games,
        "verdict": rep.verdict,
        "games_differing": rep.games_differing,
        "alpha": rep.alpha,
        "method": METHOD,
        "permutations": rep.result.permutations,
        "protocol_differences": list(rep.protocol_differences),
        "unverified_protocol_items": list(rep.unverified),
    }


def _verdict(p: float) -> str:
    return DIFFERS if p < ALPHA else CONSISTENT


def reproduction_table(
    name: str,
    ours: str,
    games: Sequence[str],
    result: TwoSampleComparison,
    matrices: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """``REPRODUCTION_COLUMNS``: a row per game (raw scores from the human-normalized ones),
    then the overall IQM row."""
    table = game_table()
    rows = []
    for g, d in zip(games, result.per_game, strict=True):
        span, random = table[g].human - table[g].random, table[g].random
        e, poi = d.difference, d.improvement
        rows.append(
            [name, ours, g, "mean", d.n_x, d.n_y, random + d.mean_x * span]
            + [random + d.mean_y * span, e.estimate * span, e.low * span, e.high * span]
            + [d.mean_x, d.mean_y, e.estimate, e.low, e.high, poi.estimate, poi.low, poi.high]
            + [d.p_value, d.p_holm, _verdict(d.p_holm)]
        )
    x, y = matrices
    e, poi = result.aggregates["iqm_difference"], result.aggregates["probability_of_improvement"]
    n_x, n_y = int(np.count_nonzero(~np.isnan(x))), int(np.count_nonzero(~np.isnan(y)))
    rows.append(
        [name, ours, "overall", "IQM", n_x, n_y] + [np.nan] * 5
        + [metrics.iqm(x), metrics.iqm(y), e.estimate, e.low, e.high, poi.estimate, poi.low]
        + [poi.high, result.iqm_p_value, result.iqm_p_value, _verdict(result.iqm_p_value)]
    )  # fmt: skip
    return pd.DataFrame(rows, columns=list(REPRODUCTION_COLUMNS))
