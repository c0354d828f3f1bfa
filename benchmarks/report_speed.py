"""Time and peak memory of a full report on a synthetic sweep.

The sweep: 26 games x 10 seeds x 2 conditions (audio off / on) of one variant, evaluated
every 10k agent steps and logging three training metrics every 1k, with the paired
comparison audio=off:audio=on, at the default replicates (50,000 for aggregates and paired
differences, 2,000 for the rest). Times the analysis and the writing apart.

    python benchmarks/report_speed.py [--reps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from bench.env.games import games
from bench.report.analysis import analyze
from bench.report.columns import EVAL_COLUMNS, METRIC_COLUMNS
from bench.report.options import ReportOptions
from bench.report.write import write_report
from bench.stats.estimates import AGGREGATE_REPS


def synthetic_sweep(seeds: int = 10, steps: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(evals, runs) frames shaped like the ledger's, all runs done; audio helps a little."""
    rng = np.random.default_rng(0)
    evals, runs = [], []
    for cond, effect in (("audio=off", 0.0), ("audio=on", 0.05)):
        for game in games().values():
            span = game.human - game.random
            for seed in range(seeds):
                run_id = f"{cond}-{game.name}-{seed}"
                final = rng.gamma(2.0, 0.2) + effect
                common = dict(
                    source="sweep",
                    run_id=run_id,
                    algorithm=f"BBF [{cond}]",
                    variant="BBF",
                    condition=cond,
                    game=game.name,
                    seed=seed,
                    protocol="p0",
                    git_sha="0000000",
                )
                runs.append(
                    common
                    | {
                        "state": "done",
                        "attempts": 1,
                        "error": "",
                        "protocol_json": json.dumps({"audio": cond[6:]}),
                        "suite": "audio-sweep",
                    }
                )
                for k in range(1, steps + 1):  # the last one shares the final's step: final wins
                    hns = final * k / steps + rng.normal(0, 0.02)
                    score = game.random + hns * span
                    evals.append(common | {"env_step": 10_000 * k, "final": False, "score": score})
                score = game.random + final * span
                evals.append(common | {"env_step": 100_000, "final": True, "score": score})
    return pd.DataFrame(evals)[list(EVAL_COLUMNS)], pd.DataFrame(runs)


def synthetic_metrics(runs: pd.DataFrame, every: int = 1_000) -> pd.DataFrame:
    """Training metrics of every run, as ``bench.report.load.load_metrics`` returns them."""
    rng = np.random.default_rng(1)
    steps = np.arange(every, 100_001, every)
    frames = []
    for run in runs.itertuples():
        for metric, values in (
            ("loss", np.exp(-steps / 30_000) + rng.normal(0, 0.05, len(steps))),
            ("epsilon", np.maximum(0.01, 1 - steps / 2_000)),
            ("steps_per_s", 300 + rng.normal(0, 20, len(steps))),
        ):
            frame = pd.DataFrame({"env_step": steps, "metric": metric, "value": values})
            frames.append(frame.assign(**{c: getattr(run, c) for c in METRIC_COLUMNS[:6]}))
    return pd.concat(frames, ignore_index=True)[list(METRIC_COLUMNS)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=AGGREGATE_REPS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    evals, runs = synthetic_sweep()
    metrics = synthetic_metrics(runs)
    print(f"sweep: {len(runs)} runs, {len(evals)} evaluation rows, {len(metrics)} metric rows")
    options = ReportOptions(reps=args.reps, compare=("audio=off:audio=on",))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report"
        t, c = time.perf_counter(), time.process_time()
        report = analyze(evals, runs, options, metrics=metrics)
        t_analysis = time.perf_counter() - t
        summary = write_report(report, out)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        # A second run under tracemalloc (slower) for the peak of Python and numpy allocations.
        tracemalloc.start()
        write_report(analyze(evals, runs, options, metrics=metrics), Path(tmp) / "again")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(summary)
    print(
        f"report: {wall:.2f} s wall ({t_analysis:.2f} s analysis, {wall - t_analysis:.2f} s "
        f"writing), {cpu:.2f} s CPU (all threads), {len(files)} files"
    )
    print(f"peak traced allocations (tracemalloc): {peak / 2**20:.1f} MiB; max RSS: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
