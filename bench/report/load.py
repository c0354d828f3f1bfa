"""Loading a report's inputs from launched suites: every evaluation, every run and every
training metric of the ledgers, as the long tables the analysis reads (``columns``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import BenchError, shown
from bench.report.columns import (
    LEDGER_EVAL_COLUMNS,
    LEDGER_RUN_COLUMNS,
    METRIC_COLUMNS,
    empty_frame,
)
from bench.report.ledger_check import checked_ledger
from bench.run.ledger import resolve_ledger
from bench.run.monitor import states
from bench.suite.expand import RunSpec
from bench.suite.reading import load_yaml, read_text

METRICS_FILE = "metrics.jsonl"  # in each run's folder, written by the run loop


def _identity(cfg: dict[str, Any], run_id: str, source: str) -> dict[str, Any]:
    """What every table says of a run (from its ``config.json``): its origin and what it ran."""
    return {
        "source": source,
        "run_id": run_id,
        "algorithm": cfg["algorithm"],
        "variant": cfg["variant"],
        "condition": RunSpec.from_json(cfg).condition_label,
        "game": cfg["game"],
        "seed": int(cfg["seed"]),
        "protocol": cfg["protocol_id"],
        "git_sha": cfg["code"].get("git_sha", ""),
    }


def load_results(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every evaluation and every run of the launched suites in ``dirs``.

    Every file read is checked first (``ledger_check``): a malformed one, or a NaN score,
    is a one-line BenchError naming the file and the run.

    Returns (evals, runs):
      evals: one row per (run, evaluation), ``LEDGER_EVAL_COLUMNS``; score is the mean raw
             return of the evaluation's episodes
      runs:  one row per expanded run, also pending or failed ones, ``LEDGER_RUN_COLUMNS``
    """
    eval_rows, run_rows = [], []
    for d in dirs:
        ledger = checked_ledger(d)  # every file it reads, NaN scores refused
        ids = ledger.run_ids()
        st = states(ledger, ids)
        for run_id in ids:
            cfg = ledger.config(run_id)
            common = _identity(cfg, run_id, Path(d).resolve().name)
            state, status = st[run_id]
            run_rows.append(
                common
                | {
                    "state": state,
                    "attempts": status.attempts,
                    "error": status.error,
                    "protocol_json": json.dumps(cfg["protocol"], sort_keys=True),
                    "suite": cfg["suite"],
                }
            )
            for ev in ledger.evals(run_id):
                returns = ev["returns"]
                eval_rows.append(
                    common
                    | {
                        "env_step": int(ev["env_step"]),
                        "score": float(sum(returns) / len(returns)),
                        "n_episodes": len(returns),
                        "final": bool(ev["final"]),
                    }
                )
    evals = pd.DataFrame(eval_rows, columns=list(LEDGER_EVAL_COLUMNS))
    return evals, pd.DataFrame(run_rows, columns=list(LEDGER_RUN_COLUMNS))


def load_study(dirs: list[Path]) -> dict[str, str]:
    """The ``study`` section (base, sweep) the ledgers' suites (``suite.yaml``) agree on:
    {} when none has one; a BenchError when two set one key differently. The suite was
    validated when it was launched; here only the section is read, so a ledger reports even
    where today's code would refuse another part of its suite."""
    found: dict[str, tuple[str, Path]] = {}
    for d in dirs:
        path = Path(d) / "suite.yaml"  # a ledger's copy of its suite
        if not path.is_file():
            continue
        data = load_yaml(read_text(path), source=str(path))
        study = data.get("study") if isinstance(data, dict) else None
        for key, value in (study or {}).items() if isinstance(study, dict) else ():
            value = str(value)
            if key in found and found[key][0] != value:
                flag = "--ablations" if key == "base" else "--sweep"
                raise BenchError(
                    f"{path}: study.{key} is {value!r}, {found[key][1]} has {found[key][0]!r}; "
                    f"valid: one value, or choose with {flag}"
                )
            found.setdefault(str(key), (value, path))
    return {k: v for k, (v, _) in found.items()}


def load_metrics(dirs: list[Path]) -> pd.DataFrame:
    """Every training metric the runs of ``dirs`` logged, one value per row (``METRIC_COLUMNS``).

    A run logs to ``<ledger>/runs/<run id>/metrics.jsonl`` one JSON object per line:
    ``{"env_step": 1000, "loss": 0.53, "epsilon": 0.01, ...}``, the env step an integer and
    every other key a metric (a number; NaN allowed). A missing or empty file contributes
    nothing; a line that is not such an object is a one-line BenchError naming file and line.
    """
    frames = []
    for d in dirs:
        ledger = resolve_ledger(d)
        for run_id in ledger.run_ids():
            path = ledger.run_dir(run_id) / METRICS_FILE
            rows = read_metrics(path) if path.is_file() else []
            if rows:
                frame = pd.DataFrame(rows, columns=["env_step", "metric", "value"])
                identity = _identity(ledger.config(run_id), run_id, "")
                frames.append(frame.assign(**{c: identity[c] for c in METRIC_COLUMNS[:6]}))
    if not frames:
        return empty_frame(METRIC_COLUMNS)
    return pd.concat(frames, ignore_index=True)[list(METRIC_COLUMNS)]


def read_metrics(path: Path) -> list[tuple[int, str, float]]:
    """(env_step, metric, value) of every metric of a ``metrics.jsonl`` file, in file order."""
    out: list[tuple[int, str, float]] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: cannot read ({e}); valid: UTF-8 JSON lines") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise BenchError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        step = obj.pop("env_step", None)
        if not _is_number(step) or not math.isfinite(step) or step != int(step):
            raise BenchError(f"{where}: env_step {shown(step)} is not an integer")
        for name, value in obj.items():
            if not _is_number(value):
                raise BenchError(f"{where}: metric {name!r} is {shown(value)}, not a number")
            out.append((int(step), str(name), float(value)))
    return out


def _is_number(value: Any) -> bool:
    """A JSON number a float can hold (an integer past 64 bits is refused, not overflowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or abs(value) < 2**63
