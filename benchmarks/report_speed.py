"""Time and peak memory of a full report on a synthetic sweep.

The sweep: 26 games x 10 seeds x 2 conditions (audio off / on) of one variant, evaluated
every 10k agent steps, with the paired comparison audio=off:audio=on, at the default
replicates (50,000 for aggregates and paired differences, 2,000 for the rest).

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
from bench.report.baselines import EVAL_COLUMNS
from bench.report.report_old import ReportOptions, write_report
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
                common = dict(source="sweep", run_id=run_id, algorithm=f"BBF [{cond}]",
                              variant="BBF", condition=cond, game=game.name, seed=seed,
                              protocol="p0", git_sha="0000000")  # fmt: skip
                runs.append({**common, "state": "done", "attempts": 1, "error": "",
                             "protocol_json": json.dumps({"audio": cond[6:]}),
                             "suite": "audio-sweep"})  # fmt: skip
                for k in range(1, steps + 1):
                    hns = final * k / steps + rng.normal(0, 0.02)
                    evals.append({**common, "env_step": 10_000 * k, "final": False,
                                  "score": game.random + hns * span})  # fmt: skip
                evals.append({**common, "env_step": 100_000, "final": True,
                              "score": game.random + final * span})  # fmt: skip
    return pd.DataFrame(evals)[list(EVAL_COLUMNS)], pd.DataFrame(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=AGGREGATE_REPS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    evals, runs = synthetic_sweep()
    print(f"sweep: {len(runs)} runs, {len(evals)} evaluation rows")
    options = ReportOptions(reps=args.reps, compare=("audio=off:audio=on",))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report"
        t, c = time.perf_counter(), time.process_time()
        summary = write_report(evals, runs, out, options)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        # A second run under tracemalloc (slower) for the peak of Python and numpy allocations.
        tracemalloc.start()
        write_report(evals, runs, Path(tmp) / "again", options)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(summary)
    print(f"report: {wall:.2f} s wall, {cpu:.2f} s CPU (all threads), {len(files)} files")
    print(f"peak traced allocations (tracemalloc): {peak / 2**20:.1f} MiB; max RSS: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
