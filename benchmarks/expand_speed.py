"""Time suite validation + expansion of a 1,040-run suite (26 games x 10 seeds x 2 x 2).

python benchmarks/expand_speed.py [--agent value --preset bbf]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.suite.expand import expand
from bench.suite.load import parse_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", default="value")
    parser.add_argument("--preset", default="bbf")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = {
        "name": "bench-expand",
        "games": "atari100k",
        "seeds": 10,
        "variants": [{"name": "v", "agent": args.agent, "preset": args.preset}],
        "axes": {"audio": ["off", "on"], "replay_ratio": [2, 8]},
    }
    times, n = [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        specs = expand(parse_suite(data, source="<bench>"))
        times.append(time.perf_counter() - t0)
        n = len(specs)
    print(
        f"expanded {n} runs ({args.agent}/{args.preset}): median {statistics.median(times):.3f} s,"
        f" min {min(times):.3f} s over {args.repeat} repeats"
    )


if __name__ == "__main__":
    main()
