"""Time the stratified bootstrap against rliable 1.2.0 on the published DER scores.

Both compute 95% percentile intervals of IQM, median, mean and optimality gap for DER's
100 runs x 26 games at 50,000 replicates, as the rliable colab does (one call, all four
metrics). rliable's bootstrap needs pandas < 3 and arch < 8, so it runs in a subprocess of
another Python given by --rliable-python or $RLIABLE_PYTHON; without one it is skipped.

    python benchmarks/bootstrap_speed.py --rliable-python /path/to/old/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report.baselines import load_baseline
from bench.report.scores import normalize
from bench.stats.estimates import aggregate_estimates

METRICS = ("median", "iqm", "mean", "optimality_gap")  # rliable colab's order

RLIABLE = """
import json, sys, time
import numpy as np
from rliable import library as rly, metrics
scores = np.load(sys.argv[1])
reps, repeats = int(sys.argv[2]), int(sys.argv[3])
f = lambda x: np.array([metrics.aggregate_median(x), metrics.aggregate_iqm(x),
                        metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x)])
walls, cpus = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    point, ci = rly.get_interval_estimates({"DER": scores}, f, reps=reps)
    walls.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
print(json.dumps({"wall": walls, "cpu": cpus, "low": ci["DER"][0].tolist(),
                  "high": ci["DER"][1].tolist()}))
"""


def der_matrix() -> np.ndarray:
    rows = load_baseline("DER")
    rows = rows[rows["final"]].assign(hns=lambda f: normalize(f))
    return rows.pivot(index="seed", columns="game", values="hns").to_numpy()


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds) + " s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rliable-python", default=os.environ.get("RLIABLE_PYTHON", ""))
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    scores = der_matrix()
    print(f"DER: {scores.shape[0]} runs x {scores.shape[1]} games, {args.reps:,} replicates")

    aggregate_estimates(scores[:, :2], reps=100)  # warm-up: imports, compiling, caches
    walls, cpus = [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        ours = aggregate_estimates(scores, reps=args.reps, seed=0).aggregates
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    wall, cpu = float(np.median(walls)), float(np.median(cpus))
    print(f"bench.stats: {wall:.2f} s wall, {cpu:.2f} s CPU, median of {_runs(walls)}")
    for m in METRICS:
        e = ours[m]
        print(f"  {m:15s} {e.estimate:.4f} [{e.low:.4f}, {e.high:.4f}]")

    if not args.rliable_python:
        print("rliable: skipped (give --rliable-python or $RLIABLE_PYTHON: pandas<3, arch<8)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "der.npy"
        np.save(path, scores)
        proc = subprocess.run(
            [args.rliable_python, "-c", RLIABLE, str(path), str(args.reps), str(args.repeats)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        print(f"rliable: failed ({tail})")
        return 1
    ref = json.loads(proc.stdout.strip().splitlines()[-1])
    ref_wall, ref_cpu = float(np.median(ref["wall"])), float(np.median(ref["cpu"]))
    print(
        f"rliable 1.2.0: {ref_wall:.2f} s wall, {ref_cpu:.2f} s CPU, median of {_runs(ref['wall'])}"
    )
    diffs = []
    for k, m in enumerate(METRICS):
        lo, hi = ref["low"][k], ref["high"][k]
        diffs += [abs(ours[m].low - lo), abs(ours[m].high - hi)]
        print(f"  {m:15s} [{lo:.4f}, {hi:.4f}]")
    print(f"speed-up: {ref_wall / wall:.1f}x wall, {ref_cpu / cpu:.1f}x CPU")
    print(f"max |difference| of CI bounds: {max(diffs):.4f} (Monte-Carlo error of both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
