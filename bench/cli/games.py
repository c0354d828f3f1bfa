"""``bench games``: the Atari-100k games, and with ``--audio`` which of them make informative
sound.

``bench games --audio`` plays each game under a fixed random policy
(``bench.env.audio_stats``), summarizes the recordings (``bench.report.game_audio``) and
prints the table as Markdown (``--csv``: CSV); with ``-o DIR`` it also writes
``game_audio.csv``, ``game_audio.md`` and ``figures/game_audio.{png,pdf}`` there. The table
is a property of the games and the protocol, not of any run, so it stands on its own rather
than inside a run report: measure it once, before spending GPU hours on a study.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

from bench.core.errors import BenchError
from bench.env.audio_stats import record_random_policy
from bench.env.games import games, resolve_games, subsets
from bench.report import figures
from bench.report.game_audio import (
    GAME_AUDIO_COLUMNS,
    GameAudioOptions,
    game_audio_markdown,
    game_audio_row,
)

MAX_STEPS = 1_000_000
MAX_WITHIN = 10_000
MAX_SEED = 2**31 - 1  # ALE and numpy both take it


def add_commands(sub: Any) -> None:
    p = sub.add_parser("games", help="the Atari-100k games; --audio: which make informative sound")
    p.add_argument("--audio", action="store_true", help="measure each game's sound")
    p.add_argument("--games", default="atari100k", help="a subset or comma-separated game names")
    p.add_argument("--steps", type=int, default=5000, help="random-policy agent steps per game")
    p.add_argument("--seed", type=int, default=0, help="seed of the env and the policy")
    p.add_argument(
        "--within", type=int, default=GameAudioOptions.within, help="agent steps after an onset"
    )
    p.add_argument(
        "--onset-ratio",
        type=float,
        default=GameAudioOptions.onset_ratio,
        help="loudness rise over the step before that makes an onset",
    )
    p.add_argument("--csv", action="store_true", help="print CSV instead of Markdown")
    p.add_argument("-o", "--out", type=Path, default=None, help="folder for table and figure")
    p.set_defaults(func=cmd_games)


def _checked(args: argparse.Namespace) -> tuple[list[str], GameAudioOptions]:
    """The games and options, or a BenchError naming the option and its valid range."""
    for flag, value, top in (
        ("--steps", args.steps, MAX_STEPS),
        ("--within", args.within, MAX_WITHIN),
    ):
        if not 1 <= value <= top:
            raise BenchError(f"{flag}: {value} is out of range; valid: 1..{top:,}")
    if not 0 <= args.seed <= MAX_SEED:
        raise BenchError(f"--seed: {args.seed} is out of range; valid: 0..{MAX_SEED}")
    if not 1.0 <= args.onset_ratio <= 1e6:
        raise BenchError(f"--onset-ratio: {args.onset_ratio} is out of range; valid: 1..1e6")
    names = [s.strip() for s in args.games.split(",") if s.strip()]
    chosen = resolve_games(names, where="--games")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise BenchError(f"-o {args.out}: not a folder; valid: a new or existing folder")
    return chosen, GameAudioOptions(within=args.within, onset_ratio=args.onset_ratio)


def audio_table(names: list[str], options: GameAudioOptions, *, steps: int, seed: int) -> Any:
    """``GAME_AUDIO_COLUMNS`` rows, one per game in ``names`` (progress on stderr)."""
    rows = []
    for k, name in enumerate(names, start=1):
        print(f"[{k}/{len(names)}] {name}", file=sys.stderr, flush=True)
        trace = record_random_policy(name, steps=steps, seed=seed)
        recording = {
            "loudness": trace.loudness,
            "reward": trace.reward,
            "life_loss": trace.life_loss,
            "start": trace.start,
        }
        rows.append(game_audio_row(name, recording, options))
    return pd.DataFrame(rows, columns=list(GAME_AUDIO_COLUMNS))


def cmd_games(args: argparse.Namespace) -> int:
    names, options = _checked(args)
    if not args.audio:
        table = games()
        for name in names:
            print(f"{name:16s} random {table[name].random:10.1f}   human {table[name].human:10.1f}")
        print("subsets: " + ", ".join(subsets()))
        return 0
    table = audio_table(names, options, steps=args.steps, seed=args.seed)
    text = game_audio_markdown(table, options, seed=args.seed)
    print(table.to_csv(index=False), end="") if args.csv else print(text, end="")
    if args.out is not None:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "game_audio.csv", index=False)
        (out / "game_audio.md").write_text(text)
        matplotlib.use("Agg")  # files only, never a display: this command owns the process
        figures.game_audio(table, out / "figures/game_audio")
        print(f"wrote {out}", file=sys.stderr)
    return 0
