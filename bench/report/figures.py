"""Paper figures of a report, each saved as PDF (vector) and PNG (preview).

Sized for one column of a two-column paper (3.3 in wide) with 7-8 pt text, in a colour-blind
safe palette (Okabe & Ito 2008); every figure of a report gets its colours from one
``palette`` call, so an algorithm has the same colour everywhere. Uses rliable's plotting
functions where they fit (profiles, probability of improvement) and seaborn's ``FacetGrid``
for the small multiples drawn from long tables (per-game learning curves, training metrics).

Every figure is drawn inside ``paper_style()``: seaborn's "ticks" style and "paper" context
with ``STYLE`` on top. Importing this module changes no global setting (not even the
backend: the ``bench`` command picks Agg, the process's owner decides otherwise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rliable import plot_utils

from bench.stats.curves import Curve
from bench.stats.estimates import Estimate
from bench.stats.paired import PairedComparison

COLUMN_WIDTH = 3.3  # inches: one column of a two-column paper
PNG_DPI = 200  # previews in report.md; the PDFs are the vector originals for the paper
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
REFERENCE_GREYS = ("#8C8C8C", "#4D4D4D", "#BDBDBD")  # published baselines: context, not news
METRIC_TITLES = {
    "iqm": "IQM",
    "median": "Median",
    "mean": "Mean",
    "optimality_gap": "Optimality gap",
}

STYLE: dict[Any, Any] = {  # keys typed Any: matplotlib types them as a Literal of every rc key
    "font.size": 7,
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "ps.fonttype": 42,
    # constrained layout fits the labels; no "tight" bbox pass at save time (a full redraw)
    "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """The one theme of every figure; settings are restored when the block ends."""
    with sns.axes_style("ticks"), sns.plotting_context("paper"), plt.rc_context(STYLE):
        yield


def palette(labels: Sequence[str], references: Sequence[str] = ()) -> dict[str, str]:
    """One colour per label: Okabe-Ito for the report's own algorithms, greys for references.

    Beyond seven own algorithms colours repeat; figures then also differ by line style.
    """
    colors: dict[str, str] = {}
    own = [lb for lb in labels if lb not in references]
    for i, label in enumerate(own):
        colors[label] = OKABE_ITO[i % len(OKABE_ITO)]
    for i, label in enumerate(lb for lb in labels if lb in references):
        colors[label] = REFERENCE_GREYS[i % len(REFERENCE_GREYS)]
    return colors


def _save(fig: Figure, path: Path, *, tight: bool = False) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        target = path.with_suffix(f".{ext}")
        # Fixed metadata: the same report inputs give byte-identical PDFs.
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        # "tight" only where labels sit at hand-set positions the layout engine ignores.
        bbox = "tight" if tight else None
        fig.savefig(target, dpi=PNG_DPI, metadata=meta, bbox_inches=bbox, pad_inches=0.03)
        out.append(target)
    plt.close(fig)
    return out


def _tidy(ax: plt.Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def interval_estimates(
    estimates: Mapping[str, Mapping[str, Estimate]],
    colors: Mapping[str, str],
    path: Path,
    *,
    xlabel: str = "Human-normalized score",
) -> list[Path]:
    """Point estimates and CIs: one panel per metric, one row per algorithm (top = first)."""
    labels = list(estimates)
    metrics = list(METRIC_TITLES)
    height = 0.8 + 0.2 * len(labels)
    with paper_style():
        fig, axes = plt.subplots(
            1, 4, figsize=(2 * COLUMN_WIDTH, height), sharey=True, layout="constrained"
        )
        for ax, metric in zip(axes, metrics, strict=True):
            for row, label in enumerate(labels):
                e = estimates[label][metric]
                y = len(labels) - 1 - row
                ax.barh(y, e.high - e.low, left=e.low, height=0.6, color=colors[label], alpha=0.7)
                ax.vlines(e.estimate, y - 0.36, y + 0.36, color="k", linewidth=1.2)
            ax.set_title(METRIC_TITLES[metric])
            ax.xaxis.set_major_locator(plt.MaxNLocator(4))
            ax.grid(True, axis="x", alpha=0.25, linewidth=0.5)
            _tidy(ax)
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
        axes[0].set_yticks(range(len(labels)), labels[::-1])
        fig.supxlabel(xlabel, fontsize=7)
        return _save(fig, path)


def performance_profiles(
    taus: np.ndarray,
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    colors: Mapping[str, str],
    path: Path,
) -> list[Path]:
    """Score distributions: fraction of runs above tau, with pointwise CIs (shaded)."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.2), layout="constrained")
        plot_utils.plot_performance_profiles(
            {k: v[0] for k, v in profiles.items()},
            taus,
            performance_profile_cis={k: (v[1], v[2]) for k, v in profiles.items()},
            colors=dict(colors),
            ax=ax,
            xlabel=r"Human-normalized score ($\tau$)",
            ylabel=r"Fraction of runs with score $> \tau$",
            labelsize=7,
            ticklabelsize=6.5,
            wrect=4,
            hrect=4,
        )
        _thin_lines(fig, 1.2)
        ax.axvline(1.0, color="0.5", linewidth=0.5, linestyle=":")  # human level
        ax.legend(frameon=False, loc="upper right")
        return _save(fig, path)


def _thin_lines(fig: Figure, width: float) -> None:
    # rliable draws 2 pt spines and lines, made for full-page figures; a column needs thinner.
    for ax in fig.axes:
        for spine in ax.spines.values():
            spine.set_linewidth(0.6)
        for line in ax.get_lines():
            if line.get_linestyle() == "-":
                line.set_linewidth(width)


def probability_of_improvement(
    pairs: Sequence[tuple[str, str, Estimate]],
    colors: Mapping[str, str],
    path: Path,
) -> list[Path]:
    """P(X > Y) with CIs, one row per pair, coloured as X."""
    with paper_style():
        fig, ax = plt.subplots(
            figsize=(COLUMN_WIDTH, 0.5 + 0.22 * len(pairs)), layout="constrained"
        )
        plot_utils.plot_probability_of_improvement(
            {f"{x};{y}": e.estimate for x, y, e in pairs},
            {f"{x};{y}": np.array([e.low, e.high]) for x, y, e in pairs},
            pair_separator=";",
            ax=ax,
            colors=[colors[x] for x, _, _ in pairs],
            xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
            xlabel="P(X > Y)",
            left_ylabel="X",
            right_ylabel="Y",
            labelsize=7,
            ticklabelsize=6.5,
            ylabel_x_coordinate=0.08,
        )
        ax.set_xlim(0, 1)
        _thin_lines(fig, 1.2)
        ax.axvline(0.5, color="0.5", linewidth=0.5, linestyle=":")
        return _save(fig, path, tight=True)


def _series(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    band: tuple[np.ndarray, np.ndarray],
    *,
    color: str,
    label: str,
    markers: bool = False,
    lw: float | None = None,
) -> None:
    """A line with a shaded band; a single point (a line of one point draws nothing) as a
    marker with an error bar."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    low, high = (np.asarray(b, dtype=np.float64) for b in band)
    if len(x) == 1:
        err = np.array([y - low, high - y])
        ax.errorbar(x, y, yerr=err, fmt="o", ms=2.5, color=color, label=label, capsize=1.5)
        return
    ax.plot(x, y, color=color, label=label, marker="o" if markers else None, ms=2.5, lw=lw)
    ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)


def _facet_series(
    *, data: pd.DataFrame, color: str, label: str, markers: bool = False, **_: Any
) -> None:
    """``_series`` as ``FacetGrid.map_dataframe`` calls it: one hue level of one facet."""
    x = data["env_step"].to_numpy(dtype=np.float64) / 1000
    band = (data["mean"] - data["se"], data["mean"] + data["se"])
    ax = plt.gca()
    _series(ax, x, data["mean"], band, color=color, label=label, markers=markers, lw=0.9)


def _empty(ax: Axes, why: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def sample_efficiency(
    curves: Mapping[str, Curve],
    colors: Mapping[str, str],
    path: Path,
    *,
    ylabel: str = "IQM human-normalized score",
) -> list[Path]:
    """An aggregate against agent steps (thousands), with CIs (shaded)."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.2), layout="constrained")
        for label, c in curves.items():
            band = (c.low, c.high)
            x, color = c.steps / 1000, colors[label]
            _series(ax, x, c.estimate, band, color=color, label=label, markers=True)
        if not curves:
            _empty(ax, "no env step with an evaluation in every game")
        ax.set_xlabel("Agent steps (thousands)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.25, linewidth=0.5)
        _tidy(ax)
        if curves:  # above the axes: curves rise to the top right, where a legend would sit
            fig.legend(loc="outside upper center", ncol=min(2, len(curves)), frameon=False)
        return _save(fig, path)


def _facets(
    data: pd.DataFrame, facet: str, colors: Mapping[str, str], *, cols: int, markers: bool
) -> sns.FacetGrid:
    """A FacetGrid of ``facet`` panels (in table order), one line per algorithm label."""
    grid = sns.FacetGrid(
        data,
        col=facet,
        col_wrap=cols,
        col_order=list(pd.unique(data[facet])),
        hue="algorithm",
        hue_order=list(pd.unique(data["algorithm"])),
        palette=dict(colors),
        sharey=False,
        height=1.0,
    )
    grid.map_dataframe(_facet_series, markers=markers)
    grid.set_titles("{col_name}", size=6.5, pad=2)
    grid.set_axis_labels("", "")
    for ax in grid.axes.flat:  # every panel labels its ticks, as rows may be incomplete
        ax.tick_params(labelsize=5, length=2, pad=1, labelbottom=True)
        ax.xaxis.set_major_locator(plt.MaxNLocator(3))
        ax.yaxis.set_major_locator(plt.MaxNLocator(3))
        _tidy(ax)
    return grid


def _finish_grid(
    grid: sns.FacetGrid, colors: Mapping[str, str], *, cols: int, ylabel: str
) -> Figure:
    """Fixed margins (not a layout engine: laying out 26 panels costs seconds per save), a
    legend on top and the shared axis labels."""
    labels = list(pd.unique(grid.data["algorithm"]))
    rows = -(-len(grid.axes.flat) // cols)
    width, height = 2 * COLUMN_WIDTH, 0.75 + 0.95 * rows
    fig = grid.figure
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=0.45 / width,
        right=1 - 0.05 / width,
        bottom=0.4 / height,
        top=1 - 0.38 / height,
        wspace=0.38,
        hspace=0.55,
    )
    handles = [plt.Line2D([], [], color=colors[lb], label=lb) for lb in labels]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(4, len(labels)),
        frameon=False,
    )
    fig.supxlabel("Agent steps (thousands)", fontsize=7, y=0.02)
    fig.supylabel(ylabel, fontsize=7, x=0.01)
    return fig


def learning_curve_grid(table: pd.DataFrame, colors: Mapping[str, str], path: Path) -> list[Path]:
    """Per-game raw score against agent steps: mean over runs +- one standard error, a
    marker at each evaluation. ``table`` has game, algorithm, env_step, mean and se."""
    cols = min(6, table["game"].nunique())
    with paper_style():
        grid = _facets(table, "game", colors, cols=cols, markers=True)
        fig = _finish_grid(grid, colors, cols=cols, ylabel="Score (mean ± s.e. over runs)")
        return _save(fig, path)


def training_metrics(table: pd.DataFrame, colors: Mapping[str, str], path: Path) -> list[Path]:
    """One panel per training metric against agent steps: mean over an algorithm's runs +-
    one standard error. ``table`` has algorithm, metric, env_step, mean and se."""
    cols = min(4, table["metric"].nunique())
    with paper_style():
        grid = _facets(table, "metric", colors, cols=cols, markers=False)
        fig = _finish_grid(grid, colors, cols=cols, ylabel="Mean ± s.e. over runs")
        return _save(fig, path)


# The training metrics the held-out figure draws: the same loss on the two replay splits.
# The loss each agent family logs on its training split and on its held-out episodes: the
# value agents' TD loss, and the world model's image reconstruction loss (Dreamer).
HELDOUT_PAIRS: dict[str, tuple[str, str]] = {
    "TD loss": ("train_split_dqn_loss", "heldout_dqn_loss"),
    "world-model image loss": ("wm_train_image", "wm_heldout_image"),
}
HELDOUT_METRICS = {m for pair in HELDOUT_PAIRS.values() for m in pair}
HELD_OUT_SIDE = {heldout for _, heldout in HELDOUT_PAIRS.values()}  # only with a split


def heldout_losses(table: pd.DataFrame, colors: Mapping[str, str], path: Path) -> list[Path]:
    """Per algorithm, its loss on the training split (solid) and on the held-out episodes
    (dashed) against agent steps, mean over runs +- one standard error: the first of
    ``HELDOUT_PAIRS`` it logs. ``table`` has algorithm, metric, env_step, mean and se
    (``TRAINING_METRIC_COLUMNS``)."""
    rows = table[table["metric"].isin(HELDOUT_METRICS)]
    labels = list(pd.unique(rows["algorithm"]))
    cols = min(3, len(labels))
    n_rows = -(-len(labels) // cols)
    with paper_style():
        fig, axes = plt.subplots(
            n_rows,
            cols,
            figsize=(2 * COLUMN_WIDTH, 0.6 + 1.4 * n_rows),
            squeeze=False,
            layout="constrained",
        )
        for ax, label in zip(axes.flat, labels, strict=False):
            mine = rows[rows["algorithm"] == label]
            quantity, pair = next(
                (q, p) for q, p in HELDOUT_PAIRS.items() if mine["metric"].isin(p).any()
            )
            splits = zip(pair, ("training split", "held out"), ("-", "--"), strict=True)
            for metric, name, style in splits:
                data = mine[mine["metric"] == metric]
                if data.empty:
                    continue
                x = data["env_step"].to_numpy(dtype=np.float64) / 1000
                band = (data["mean"] - data["se"], data["mean"] + data["se"])
                _series(ax, x, data["mean"], band, color=colors[label], label=name, lw=0.9)
                ax.lines[-1].set_linestyle(style)
            ax.set_title(f"{label}\n{quantity}", fontsize=6.5)
            ax.legend(frameon=False, fontsize=5.5)
            ax.grid(True, alpha=0.25, linewidth=0.5)
            _tidy(ax)
        for ax in list(axes.flat)[len(labels) :]:
            ax.set_visible(False)
        fig.supxlabel("Agent steps (thousands)", fontsize=7)
        fig.supylabel("Loss (mean ± s.e. over runs)", fontsize=7)
        return _save(fig, path)


def _difference_axes(ax: plt.Axes, *, xlabel: str | None, title: str) -> None:
    """A forest plot's axes: a dotted line at 0, an x grid, row labels without ticks, no
    y spine; ``xlabel`` None leaves the x label to the figure."""
    ax.axvline(0, color="0.5", linewidth=0.6, linestyle=":")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=7)
    ax.grid(True, axis="x", alpha=0.25, linewidth=0.5)
    ax.tick_params(axis="y", length=0, labelsize=6)
    _tidy(ax)
    ax.spines["left"].set_visible(False)


def _game_row(ax: plt.Axes, y: float, e: Estimate, p_holm: float, color: str) -> None:
    """A game's difference with its CI; the dot filled when its Holm-adjusted p < 0.05."""
    ax.hlines(y, e.low, e.high, color=color, linewidth=1.0)
    face = color if p_holm < 0.05 else "white"
    ax.plot(e.estimate, y, "o", ms=3, mfc=face, mec=color, mew=0.8)


def _aggregate_row(ax: plt.Axes, e: Estimate) -> None:
    """The aggregate difference with its CI at y = 0, in black."""
    ax.hlines(0, e.low, e.high, color="k", linewidth=1.4)
    ax.plot(e.estimate, 0, "D", ms=3.5, color="k")


def _aggregate_first(ax: plt.Axes, labels: Sequence[str]) -> None:
    """Row labels of a forest with its aggregate at y = 0 (in bold), a blank row, then the
    games at y = 2, 3, ...: ``labels`` is the aggregate's label, then the games'."""
    ax.set_yticks([0, *range(2, len(labels) + 1)], labels)
    ax.get_yticklabels()[0].set_fontweight("bold")
    ax.set_ylim(-1, len(labels) + 1)


def ablation_forest(
    rows: Sequence[tuple[str, Estimate]], path: Path, *, title: str, color: str = OKABE_ITO[0]
) -> list[Path]:
    """Each ablation's IQM difference B - A (human-normalized) with its CI, one row each in
    the given order (the costliest first, at the top); ``rows``: (label, estimate)."""
    with paper_style():
        fig, ax = plt.subplots(
            figsize=(COLUMN_WIDTH, 0.6 + 0.16 * (len(rows) + 1)), layout="constrained"
        )
        for y, (_, e) in enumerate(reversed(rows)):
            ax.hlines(y, e.low, e.high, color=color, linewidth=1.0)
            ax.plot(e.estimate, y, "o", ms=3, color=color)
        ax.set_yticks(range(len(rows)), [lb for lb, _ in reversed(rows)])
        ax.set_ylim(-0.8, len(rows) - 0.2)
        _difference_axes(ax, xlabel="IQM(B) − IQM(A), human-normalized", title=title)
        return _save(fig, path)


def forest(
    comparison: PairedComparison,
    games: Sequence[str],
    path: Path,
    *,
    title: str,
    color: str = OKABE_ITO[0],
) -> list[Path]:
    """Per-game mean paired difference B - A with CIs, sorted, and the aggregate at the bottom.

    Games whose Holm-adjusted Wilcoxon p-value is below 0.05 are marked with a filled dot.
    """
    order = np.argsort([g.difference.estimate for g in comparison.per_game])
    rows = [
        (games[i], comparison.per_game[i].difference, comparison.per_game[i].p_holm) for i in order
    ]
    agg = comparison.aggregates["mean_difference"]
    with paper_style():
        fig, ax = plt.subplots(
            figsize=(COLUMN_WIDTH, 0.6 + 0.13 * (len(rows) + 2)), layout="constrained"
        )
        for y, (_, e, p) in enumerate(rows, start=2):
            _game_row(ax, y, e, p, color)
        _aggregate_row(ax, agg)
        _aggregate_first(ax, ["Mean over games"] + [g for g, _, _ in rows])
        _difference_axes(ax, xlabel="Paired difference B − A (human-normalized)", title=title)
        return _save(fig, path)


def reproduction_forest(
    table: pd.DataFrame, path: Path, *, title: str, color: str = OKABE_ITO[0]
) -> list[Path]:
    """A reproduction (``columns.REPRODUCTION_COLUMNS``): per-game mean difference ours -
    published (human-normalized) with CIs, sorted, and the IQM difference at the bottom.

    Filled markers: the verdict is "differs" (Holm-adjusted per game; the IQM test overall).
    """
    games = table[table["statistic"] == "mean"].sort_values("hns_difference", kind="stable")
    overall = table[table["statistic"] == "IQM"].iloc[0]
    with paper_style():
        fig, ax = plt.subplots(
            figsize=(COLUMN_WIDTH, 0.6 + 0.13 * (len(games) + 2)), layout="constrained"
        )
        rows = [(y, r) for y, r in enumerate(games.itertuples(), start=2)]
        for y, r in rows + [(0, overall)]:
            c = "k" if y == 0 else color
            ax.hlines(y, r.hns_ci_low, r.hns_ci_high, color=c, linewidth=1.4 if y == 0 else 1.0)
            face = c if r.verdict == "differs" else "white"
            ax.plot(r.hns_difference, y, "D" if y == 0 else "o", ms=3.5, mfc=face, mec=c, mew=0.8)
        _aggregate_first(ax, ["IQM"] + [r.game for _, r in rows])
        _difference_axes(ax, xlabel="Ours − published (human-normalized)", title=title)
        return _save(fig, path)


def game_audio(table: pd.DataFrame, path: Path) -> list[Path]:
    """Which games make informative sound (``game_audio.GAME_AUDIO_COLUMNS``): per game, the
    fraction of steps with sound, and the lift of a reward and of a life loss after an audio
    onset (1, dotted: the onset says nothing; none drawn where undefined). Games sorted by
    the reward lift."""
    order = table.assign(key=table["reward_lift"].fillna(0.0)).sort_values("key", kind="stable")
    y = np.arange(len(order))
    panels = (
        ("nonsilent_fraction", "Steps with sound", False),
        ("reward_lift", "Lift of a reward", True),
        ("life_loss_lift", "Lift of a life loss", True),
    )
    with paper_style():
        fig, axes = plt.subplots(
            1, 3, figsize=(2 * COLUMN_WIDTH, 0.6 + 0.13 * len(order)), sharey=True,
            layout="constrained",
        )  # fmt: skip
        for ax, (column, title, lift) in zip(axes, panels, strict=True):
            values = order[column].to_numpy(dtype=np.float64)
            if lift:  # linear: a lift of 0 (never followed) is a finding, log would drop it
                ok = np.isfinite(values)
                ax.plot(values[ok], y[ok], "o", ms=3, color=OKABE_ITO[0])
                ax.set_xlim(left=0)
                ax.axvline(1.0, color="0.5", linewidth=0.6, linestyle=":")
            else:
                ax.barh(y, values, height=0.6, color=OKABE_ITO[2], alpha=0.8)
                ax.set_xlim(0, 1)
            ax.set_title(title)
            ax.grid(True, axis="x", alpha=0.25, linewidth=0.5)
            ax.tick_params(axis="y", length=0, labelsize=6)
            _tidy(ax)
        axes[0].set_yticks(y, list(order["game"]))
        axes[0].set_ylim(-0.7, len(order) - 0.3)
        return _save(fig, path)


def study_forest(
    panels: Sequence[tuple[str, PairedComparison, Sequence[str]]],
    path: Path,
    *,
    title: str,
    color: str = OKABE_ITO[0],
) -> list[Path]:
    """The audio study of one variant: a panel per decomposition row (title, comparison,
    its games), the per-game mean paired difference B − A with CIs on a shared game axis
    (the union of the rows' games), and the IQM difference at the bottom in black."""
    games = list(dict.fromkeys(g for _, _, gs in panels for g in gs))
    with paper_style():
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(max(COLUMN_WIDTH, 1.45 * len(panels) + 0.8), 0.7 + 0.13 * (len(games) + 2)),
            sharex=True,  # one scale: the rows add up (on − off = silent − off + on − silent)
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
        for ax, (name, comparison, gs) in zip(axes[0], panels, strict=True):
            for g, p in zip(gs, comparison.per_game, strict=True):
                _game_row(ax, len(games) + 1 - games.index(g), p.difference, p.p_holm, color)
            _aggregate_row(ax, comparison.aggregates["iqm_difference"])
            _difference_axes(ax, xlabel=None, title=name)
            ax.xaxis.set_major_locator(plt.MaxNLocator(3))
        _aggregate_first(axes[0][0], ["IQM difference", *reversed(games)])
        fig.suptitle(title, fontsize=7)
        fig.supxlabel("Paired difference B − A (human-normalized)", fontsize=7)
        return _save(fig, path)
