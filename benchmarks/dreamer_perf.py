"""Dreamer's updates per second on this machine, and the time of a 100k run they imply.

One update is a world-model step on ``batch_size`` x ``seq_len`` replayed steps and an
actor-critic step on as many imagined rollouts of ``horizon`` steps. Replay is filled with
synthetic frames first (untimed); then ``--updates`` updates are timed.

    python benchmarks/dreamer_perf.py --preset dreamerv3-100k --updates 5 [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.registry import get_agent
from agents.testing import synthetic_obs
from bench.core.config import override
from bench.core.spaces import ObsSpec

ENV_STEPS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dreamerv3-100k")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-actions", type=int, default=18)
    args = parser.parse_args()
    torch.set_num_threads(1)
    entry = get_agent("dreamer")
    config = override(entry.preset(args.preset), {"device": args.device}, where="--preset")
    spec = ObsSpec(num_actions=args.num_actions)
    agent = entry.make(config, obs_spec=spec, seed=0, device=args.device)
    rng = np.random.default_rng(0)
    for i in range(config.seq_len + 8):
        frame = agent._small(synthetic_obs(rng, spec)["image"][-1])
        agent.replay.add(frame, float(rng.normal()), False, i == 0, False)
    agent._update()  # warm-up (lazy initialization), untimed
    start = time.perf_counter()
    for _ in range(args.updates):
        agent._update()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    per_update = (time.perf_counter() - start) / args.updates
    updates = entry.updates(config, ENV_STEPS)
    print(
        f"{args.preset} on {args.device}: {per_update:.3f} s per update "
        f"({1 / per_update:.3f} updates/s); a 100k run makes {updates:,} updates: "
        f"{updates * per_update / 3600:.1f} h of updates"
    )


if __name__ == "__main__":
    main()
