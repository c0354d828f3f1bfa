"""Published baselines bundled with the project, and external per-run score files.

Both use one long CSV format: ``algorithm,game,run,score`` with an optional ``env_step``;
``score`` is a run's raw return averaged over its evaluation episodes. A file without
``env_step`` holds final scores; a file with it holds periodic evaluations, and each run's
evaluation at its largest ``env_step`` is also its final score.

The bundled DER learning curves end at 100k agent steps, where the final-score file also has
a point for every run (equal to 1e-10: two roundings of one number). Learning curves keep one
point per (run, env step), and the final evaluation wins (``bench.report.scores.curve_points``),
so a curve ends exactly at the score the aggregates use.

Loaded rows use the columns of the ledger's evaluation table (``EVAL_COLUMNS``), so reports
treat ledger runs, baselines and external files alike.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchError, shown, unknown
from bench.env.games import get_game
from bench.env.protocol import PROTOCOLS, ProtocolConfig
from bench.report.columns import EVAL_COLUMNS

REQUIRED = ("algorithm", "game", "run", "score")
MAX_BYTES = 100_000_000  # of an external score file (the bundled DER curves are 1.5 MB)
OPTIONAL = ("env_step",)


# The protocol each published set was produced under, in the fields of
# ``bench.env.protocol.ProtocolConfig`` (``PROTOCOLS``: "der", "bbf", "spr"), which
# ``--reproduce`` compares with a ledger's recorded protocol. The reference-code details
# among them (noop_unit, noop_observation, terminal_frame, resize, stop_at_life_loss,
# life_reset_noop) are explained in bench/env/protocol.py; a ledger recorded before a field
# existed is listed as unverified for it. Where each value comes from (file, line, commit):
# bench/data/baselines/SOURCES.md.
DOPAMINE_2021: dict[str, Any] = dataclasses.asdict(PROTOCOLS["der"])
BBF_RUNNER: dict[str, Any] = dataclasses.asdict(PROTOCOLS["bbf"])  # dopamine-rl 4.0.5
SPR_ENV: dict[str, Any] = dataclasses.asdict(PROTOCOLS["spr"])

# The model-based sets: Gymnasium's AtariPreprocessing (1-30 NOOP frames at a reset, the
# frame skip stops only at game over, area resize) at 64 x 64, read from each repository.
_ATARI_100K: dict[str, Any] = dataclasses.asdict(ProtocolConfig())
_GYMNASIUM_64 = _ATARI_100K | {
    "image_size": 64,  # RGB (the protocol's frames are grayscale: not recorded)
    "noop_min": 1,
    "noop_max": 30,
    "noop_unit": "frame",
    "noop_observation": "after",
    "terminal_frame": "fresh",
    "eval_epsilon": 0.0,  # actions sampled from the policy, no epsilon
    "resize": "area",
    "stop_at_life_loss": False,
}
DIAMOND_ENV = _GYMNASIUM_64 | {"frame_stack": 1}  # single frames (its actor is recurrent)
TWM_ENV = _GYMNASIUM_64 | {"clip_rewards": False}  # tanh of the reward to learn, not its sign


@dataclass(frozen=True)
class Baseline:
    label: str  # the algorithm label in reports; distinct from the project's own variants
    final: str  # file in bench/data/baselines with final scores
    curves: str | None  # file with periodic evaluations, if published
    final_step: int  # env step (agent steps) of the final evaluation
    source: str = ""  # where the per-run numbers come from
    license: str = ""  # of the source
    protocol: Mapping[str, Any] = field(default_factory=dict)  # see DOPAMINE_2021 above
    protocol_note: str = ""  # the protocol in a sentence, for a report's provenance
    eval_episodes: int = 100  # evaluation episodes averaged into a run's score
    # The aggregates its paper (or the colab that published the runs) prints, as printed:
    # "0.183", or a range "1.03-1.05"; ``benchmarks/baseline_aggregates.py`` checks them.
    paper: Mapping[str, str] = field(default_factory=dict)
    paper_source: str = ""


_RLIABLE = (
    "the rliable authors' per-run data (Agarwal et al. 2021), mirrored in RLE-Foundation/rllte"
)
_RLIABLE_LICENSE = (
    "rliable (which publishes and reads the data) Apache-2.0; the bucket states no license; "
    "the mirror MIT"
)
_BBF = "google-research/google-research bigger_better_faster/scores"

BASELINES: dict[str, Baseline] = {
    "DER": Baseline(
        "DER (published)",
        "der_final_scores.csv",
        "der_learning_curves.csv",
        100_000,
        source=f"{_RLIABLE} (hsuanwu/evaluation/atari_100k/DER.json)",
        license=_RLIABLE_LICENSE,
        protocol=DOPAMINE_2021,
        protocol_note=(
            "Dopamine's Atari-100k runner (2021): 0-29 no-op starts as emulator frames, the "
            "first observation the reset frame; the frame skip stops at a life loss and that "
            "step keeps the previous frames; area resize; eval epsilon 0.001; 100 episodes "
            "after 100k agent steps"
        ),
        paper={"iqm": "0.183", "median": "0.189", "mean": "0.350"},
        paper_source="Agarwal et al. 2021 (IQM); the rliable colab prints median and mean",
    ),
    "BBF": Baseline(
        "BBF (published)",
        "bbf_rr8_final_scores.csv",
        None,
        100_000,
        source=f"{_BBF}/RR8_BBF.csv",
        license="Apache-2.0",
        protocol=BBF_RUNNER,
        protocol_note=(
            "the BBF runner over Dopamine 4.0.2's preprocessing: 0-29 no-op starts as agent "
            "steps (up to 29 x 4 frames); the frame skip stops at a life loss and that step "
            "keeps the previous frames; area resize; eval epsilon 0.001; 100 episodes after "
            "100k agent steps; replay ratio 8"
        ),
        paper={"iqm": "1.03-1.05"},
        paper_source="Schwarzer et al. 2023 (BBF), replay ratio 8",
    ),
    "BBF-RR2": Baseline(
        "BBF RR2 (published)",
        "bbf_rr2_final_scores.csv",
        None,
        100_000,
        source=f"{_BBF}/RR2_BBF.csv",
        license="Apache-2.0",
        protocol=BBF_RUNNER,
        protocol_note=(
            "the BBF runner over Dopamine 4.0.2's preprocessing, as BBF; replay ratio 2 "
            "(the shipped BBF.gin)"
        ),
        paper={"iqm": "0.94"},
        paper_source="BBF reference code, replay ratio 2 (spec/agents.md: IQM about 0.94)",
    ),
    "SPR": Baseline(
        "SPR (published)",
        "spr_final_scores.csv",
        None,
        100_000,
        source=f"{_RLIABLE} (hsuanwu/evaluation/atari_100k/SPR.json)",
        license=_RLIABLE_LICENSE,
        protocol=SPR_ENV,
        protocol_note=(
            "SPR's own env (mila-iqia/spr src/rlpyt_atari_env.py; PROTOCOLS['spr']): a NOOP "
            "frame, then 1-30 no-op starts as emulator frames; linear resize; the frame skip "
            "runs all 4 frames through a life loss, then one more NOOP frame; a 27,001-step "
            "cap; eval epsilon 0.001; 100 episodes after 100k agent steps"
        ),
        paper={"iqm": "0.337"},
        paper_source="Agarwal et al. 2021",
    ),
    "DIAMOND": Baseline(
        "DIAMOND (published)",
        "diamond_final_scores.csv",
        None,
        100_000,
        source="eloialonso/diamond results/data/DIAMOND.json",
        license="MIT",
        protocol=DIAMOND_ENV,
        protocol_note=(
            "DIAMOND's env (eloialonso/diamond src/envs/env.py, atari_preprocessing.py): "
            "Gymnasium NoFrameskip-v4 (no sticky actions), 1-30 no-op frames, frame skip 4 "
            "with a 2-frame max that stops only at game over, 64 x 64 RGB single frames, "
            "life loss terminal in training only; actions sampled, no epsilon; 100 episodes "
            "after 100k agent steps"
        ),
        paper={"iqm": "0.641", "median": "0.373", "mean": "1.459"},
        paper_source="Alonso et al. 2024 (DIAMOND), Table 1",
    ),
    "TWM": Baseline(
        "TWM (published)",
        "twm_final_scores.csv",
        None,
        100_000,
        source="jrobine/twm results/scores.json",
        license="MIT",
        protocol=TWM_ENV,
        protocol_note=(
            "TWM's env (jrobine/twm twm/utils.py create_atari_env): no sticky actions, 1-30 "
            "no-op frames (after FIRE in games with FIRE, which it also presses after every "
            "life loss), frame skip 4 with a 2-frame max that stops only at game over, 64 x "
            "64 grayscale, a stack of 4, life loss terminal in training, tanh of the reward "
            "for learning, a 27,000-step cap; 100 episodes after 100k agent steps"
        ),
        paper={"median": "0.505", "mean": "0.956"},
        paper_source="Robine et al. 2023 (TWM), Table 1",
    ),
}


def parse_baselines(spec: str) -> list[str]:
    """``"DER,BBF"`` -> ["DER", "BBF"]; unknown names raise a BenchError with the choices."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    upper = {k.upper(): k for k in BASELINES}
    out = []
    for name in names:
        if name.upper() not in upper:
            raise unknown("baseline", name, BASELINES, where="--baselines")
        if upper[name.upper()] not in out:
            out.append(upper[name.upper()])
    return out


def source_line(text: str) -> str:
    """The first comment line of a bundled file (its source), without the ``#``."""
    first = text.splitlines()[0] if text else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def _bundled(name: str) -> str:
    return resources.files("bench").joinpath(f"data/baselines/{name}").read_text()


def baseline_source(name: str) -> str:
    """Where a bundled baseline's numbers come from (the file's first comment line)."""
    return source_line(_bundled(BASELINES[name].final))


def load_baseline(name: str) -> pd.DataFrame:
    """Rows of a bundled baseline in ``EVAL_COLUMNS``: final scores and, if published, curves."""
    base = BASELINES[name]
    final = read_scores(_bundled(base.final), where=f"bundled {base.final}")
    final = final.assign(env_step=base.final_step, final=True)
    frames = [final]
    if base.curves:
        curves = read_scores(_bundled(base.curves), where=f"bundled {base.curves}")
        frames.append(curves.assign(final=False))
    out = pd.concat(frames, ignore_index=True)
    out["algorithm"] = base.label
    return _as_evals(out, source=f"baseline:{name}")


def load_external(path: Path) -> pd.DataFrame:
    """Rows of an external per-run score file in ``EVAL_COLUMNS``."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such file; expected a CSV with columns {_columns_hint()}")
    if path.stat().st_size > MAX_BYTES:
        raise BenchError(f"{path}: file too large; valid: at most {MAX_BYTES:,} bytes")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: cannot read ({e}); expected a CSV with {_columns_hint()}") from e
    rows = read_scores(text, where=str(path))
    if "env_step" in rows.columns:
        last = rows.groupby(["algorithm", "game", "run"])["env_step"].transform("max")
        finals = rows[rows["env_step"] == last].assign(final=True)
        rows = pd.concat([rows.assign(final=False), finals], ignore_index=True)
    else:
        rows = rows.assign(env_step=0, final=True)
    return _as_evals(rows, source=f"external:{path.name}")


def _columns_hint() -> str:
    return f"columns {','.join(REQUIRED)} (optional: {','.join(OPTIONAL)})"


def read_scores(text: str, *, where: str) -> pd.DataFrame:
    """Parse and validate a long score CSV (a first ``#`` line is a comment).

    Returns columns algorithm, game (table name), run (int), score (float) and env_step (int)
    when present. Every problem is a one-line BenchError naming ``where``.
    """
    lines = text.splitlines()
    skip = 1 if lines and lines[0].startswith("#") else 0
    try:
        df = pd.read_csv(io.StringIO(text), skiprows=skip, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise BenchError(f"{where}: not a valid CSV ({detail}); expected {_columns_hint()}") from e
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    extra = [c for c in df.columns if c not in REQUIRED + OPTIONAL]
    if missing or extra:
        what = []
        if missing:
            what.append(f"missing column(s) {','.join(missing)}")
        if extra:
            what.append(f"unknown column(s) {','.join(extra)}")
        raise BenchError(
            f"{where}: {'; '.join(what)}; expected {_columns_hint()}, found {','.join(df.columns)}"
        )
    if df.empty:
        raise BenchError(f"{where}: no rows; expected {_columns_hint()}")
    first_line = skip + 2  # header line, 1-based
    out = pd.DataFrame({"algorithm": df["algorithm"].str.strip()})
    empty = out["algorithm"] == ""
    if empty.any():
        raise BenchError(f"{where}: line {first_line + int(np.argmax(empty))}: empty algorithm")
    unprintable = ~out["algorithm"].map(str.isprintable)
    if unprintable.any():
        i = int(np.argmax(unprintable))
        raise BenchError(
            f"{where}: line {first_line + i}: algorithm {out['algorithm'].iloc[i]!r} holds a "
            "control character; valid: printable text"
        )
    names: dict[str, str] = {}
    for i, game in enumerate(df["game"].str.strip()):
        if game not in names:
            names[game] = get_game(game, where=f"{where}: line {first_line + i}").name
    out["game"] = df["game"].str.strip().map(names)
    _numeric_columns(df, out, where=where, first_line=first_line)
    keys = ["algorithm", "game", "run"] + (["env_step"] if "env_step" in out.columns else [])
    dup = out.duplicated(keys)
    if dup.any():
        i = int(np.argmax(dup))
        key = ", ".join(f"{k}={out[k].iloc[i]}" for k in keys)
        raise BenchError(f"{where}: line {first_line + i}: duplicate row for {key}")
    return out


def _numeric_columns(df: pd.DataFrame, out: pd.DataFrame, *, where: str, first_line: int) -> None:
    """``out``'s run, score and env_step from ``df``'s text: runs and steps integers in
    range, scores finite (NaN, empty and infinite are refused, naming the line)."""
    numeric = {"run": "an integer", "score": "a number", "env_step": "an integer"}
    valid = {"run": "0..4294967295", "score": "finite numbers", "env_step": "0..10^12"}
    highest = {"run": 2**32 - 1, "env_step": 10**12}
    for col in [c for c in ("run", "score", "env_step") if c in df.columns]:
        values = pd.to_numeric(df[col].str.strip(), errors="coerce").astype(np.float64)
        bad = values.isna() | ~np.isfinite(values)
        if col != "score":
            bad |= (values != values.round()) | (values < 0) | (values > highest[col])
        if bad.any():
            i = int(np.argmax(bad))
            raise BenchError(
                f"{where}: line {first_line + i}: {col} {shown(df[col].iloc[i])} is not "
                f"{numeric[col]}; valid: {valid[col]}"
            )
        out[col] = values.astype(np.float64 if col == "score" else np.int64)


def _as_evals(rows: pd.DataFrame, *, source: str) -> pd.DataFrame:
    run_ids = source + "/" + rows["algorithm"] + "/" + rows["game"] + "/" + rows["run"].astype(str)
    out = pd.DataFrame(
        {
            "source": source,
            "run_id": run_ids,
            "algorithm": rows["algorithm"],
            "variant": rows["algorithm"],
            "condition": "",
            "game": rows["game"],
            "seed": rows["run"].astype(np.int64),
            "env_step": rows["env_step"].astype(np.int64),
            "score": rows["score"].astype(np.float64),
            "final": rows["final"].astype(bool),
            "protocol": "",
            "git_sha": "",
        }
    )
    return out[list(EVAL_COLUMNS)]
