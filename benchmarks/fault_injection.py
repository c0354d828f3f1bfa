"""Fault injection: a short CPU run SIGKILLed at random moments, relaunched each time, and
compared with an uninterrupted run; after some of the kills the newest checkpoint is also
truncated. Then the cost of checkpointing: time and bytes per checkpoint of the small
preset (measured) and of BBF with a full replay (computed from its sizes and the measured
write speed).

    python benchmarks/fault_injection.py [--kills 20] [--truncate-from 10] [--seed 0]

Prints faults injected, runs completed, whether the results are identical, data lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.registry import get_agent  # noqa: E402
from agents.replay import ReplayBuffer  # noqa: E402
from bench.core.spaces import ObsSpec  # noqa: E402
from bench.run import checkpoint as checkpoints  # noqa: E402
from bench.run import loop  # noqa: E402
from bench.run.ledger import Ledger  # noqa: E402
from bench.suite.expand import RunSpec, expand  # noqa: E402
from bench.suite.load import load_suite  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUITE = """
name: faults
games: [Breakout]
seeds: [4]
variants:
  - name: der-tiny
    agent: value
    preset: der
    overrides: {hidden_dim: 32, width_scale: 0.25, batch_size: 8, replay_ratio: 0.5,
                learning_starts: 200, epsilon_decay_steps: 400}
budget: {env_steps: 3000, eval_every: 1000, eval_episodes: 1, final_eval_episodes: 2,
         checkpoint_every: 100, log_every: 100}
protocol: {max_episode_steps: 400}
"""


def worker(run_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.run.worker", str(run_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def results(run_dir: Path) -> dict[str, object]:
    metrics = [
        {k: v for k, v in json.loads(line).items() if k != "steps_per_s"}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    return {
        "evals": json.loads((run_dir / "evals.json").read_text()),
        "episodes": (run_dir / "episodes.csv").read_text(),
        "metrics": metrics,
        "state": json.loads((run_dir / "status.json").read_text())["state"],
    }


def inject(run_dir: Path, *, kills: int, truncate_from: int, rng: np.random.Generator) -> dict:
    """Kill the run's worker ``kills`` times at random moments, then let it finish."""
    counts = {"kills": 0, "truncated": 0, "attempts": 0, "finished_early": 0}
    while counts["kills"] < kills:
        proc = worker(run_dir)
        counts["attempts"] += 1
        try:
            proc.wait(timeout=float(rng.uniform(2.0, 6.0)))  # startup is about 2 s
            counts["finished_early"] += 1
            break
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            counts["kills"] += 1
        newest = run_dir / checkpoints.CHECKPOINT_FILE
        if counts["kills"] >= truncate_from and newest.is_file():
            newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
            counts["truncated"] += 1
    proc = worker(run_dir)
    counts["attempts"] += 1
    proc.wait()
    return counts


def checkpoint_cost(spec: RunSpec, root: Path) -> tuple[float, int]:
    """Seconds and bytes of one checkpoint of ``spec`` after 1,000 steps (median of 3)."""
    ledger = Ledger(root)
    ledger.prepare([spec])
    run = loop.start(spec, ledger.run_dir(spec.run_id))
    while run.state.step < 1000:
        loop.train_step(run)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        loop.checkpoint(run)
        times.append(time.perf_counter() - t0)
    run.close()
    size = (ledger.run_dir(spec.run_id) / checkpoints.CHECKPOINT_FILE).stat().st_size
    return float(np.median(times)), size


def write_speed(root: Path, mib: int = 256) -> float:
    """Bytes per second of writing a checkpoint holding one ``mib`` MiB array (as a replay)."""
    frames = np.random.default_rng(0).integers(0, 256, size=mib * 2**20, dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    checkpoints.save(root, {"replay": frames})
    return frames.nbytes / (time.perf_counter() - t0)


def bbf_full_bytes(num_actions: int = 18) -> int:
    """Bytes of a BBF checkpoint at 100k steps: the replay's filled part (100k steps; the
    replay saves no more than it holds), and the online network, target network and Adam's
    two moments in float32."""
    entry = get_agent("value")
    config = entry.preset("bbf")
    spec = ObsSpec(num_actions=num_actions)
    params = (entry.count_parameters(config, spec) or {"total": 0})["total"]
    filled = min(config.replay_capacity, 100_000)
    replay = ReplayBuffer(filled, image_shape=spec.image_shape).nbytes()
    return int(replay + 4 * 4 * params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--truncate-from", type=int, default=10, help="truncate after kill N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills must be at least 1, got {args.kills}")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.yaml"
        path.write_text(SUITE)
        (spec,) = expand(load_suite(path))
        clean, faulty = Ledger(Path(tmp) / "clean"), Ledger(Path(tmp) / "faulty")
        for ledger in (clean, faulty):
            ledger.prepare([spec])
        t0 = time.perf_counter()
        worker(clean.run_dir(spec.run_id)).wait()
        clean_s = time.perf_counter() - t0
        counts = inject(
            faulty.run_dir(spec.run_id), kills=args.kills, truncate_from=args.truncate_from, rng=rng
        )
        expected, got = results(clean.run_dir(spec.run_id)), results(faulty.run_dir(spec.run_id))
        seconds, size = checkpoint_cost(spec, Path(tmp) / "cost")
        speed = write_speed(Path(tmp) / "speed")
    identical = expected == got
    lost = "none" if got["state"] == "done" and got["evals"] == expected["evals"] else "YES"
    bbf = bbf_full_bytes()
    print(
        f"run: {spec.run_id}, {spec.budget.env_steps} env steps, checkpoint every "
        f"{spec.budget.checkpoint_every}; uninterrupted in {clean_s:.1f} s"
    )
    print(
        f"faults injected:     {counts['kills']} SIGKILLs, {counts['truncated']} of them "
        "followed by truncating the newest checkpoint"
    )
    print(
        f"attempts:            {counts['attempts']} (finished before a kill: "
        f"{counts['finished_early']})"
    )
    print(f"runs completed:      {1 if got['state'] == 'done' else 0} of 1")
    print(f"results identical:   {'yes' if identical else 'no'} (evals, episodes, metrics)")
    print(f"data lost:           {lost}")
    print(
        f"checkpoint cost:     {seconds * 1000:.1f} ms and {size / 2**20:.2f} MiB each "
        "(small preset at 1,000 steps)"
    )
    print(
        f"BBF, full replay:    {bbf / 2**20:,.0f} MiB each, about {bbf / speed:.1f} s at the "
        f"{speed / 2**20:.0f} MiB/s measured writing a 256 MiB state (computed)"
    )
    return 0 if identical and lost == "none" else 1


if __name__ == "__main__":
    sys.exit(main())
