"""Agent throughput and memory: `python benchmarks/agent_perf.py [--device D] [--steps N]`.

Times acting + learning after the warm-up of each preset (dqn, der, bbf at replay ratio 2
by default) on a synthetic stream of real shapes (4x84x84 uint8, 18 actions), then fills a
replay with 100k steps of frames and 2,048 audio samples per step and reports its resident
memory (the budget is 1.2 GB).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.registry import get_agent  # noqa: E402
from bench.cli.agents import format_perf  # noqa: E402
from bench.core.config import override  # noqa: E402
from bench.run.perf import measure_agent, replay_memory  # noqa: E402

REPLAY_BUDGET_MB = 1.2 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["dqn", "der", "bbf"])
    p.add_argument("--replay-ratio", type=float, default=None, help="override every preset")
    p.add_argument("--steps", type=int, default=20, help="timed env steps per preset")
    p.add_argument("--device", default="auto")
    p.add_argument("--audio-samples", type=int, default=0)
    p.add_argument("--skip-replay", action="store_true")
    args = p.parse_args(argv)

    entry = get_agent("value")
    for preset in args.presets:
        config = entry.preset(preset)
        if args.replay_ratio is not None:
            config = override(config, {"replay_ratio": args.replay_ratio}, where="--replay-ratio")
        result = measure_agent(
            entry, config, steps=args.steps, device=args.device, audio_samples=args.audio_samples
        )
        print(format_perf(preset, result), flush=True)

    if not args.skip_replay:
        mem = replay_memory(steps=100_000, capacity=200_000, audio_samples=2048)
        ok = mem["resident_mb"] <= REPLAY_BUDGET_MB
        print(
            f"replay, 100k steps with 2,048 audio samples per step (capacity 200k):\n"
            f"  resident {mem['resident_mb']:,.0f} MB (payload {mem['payload_mb']:,.0f} MB; "
            f"{mem['allocated_mb_at_capacity']:,.0f} MB mapped at full capacity, "
            f"touched only as filled) -> {'within' if ok else 'OVER'} the 1,229 MB budget"
        )
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
