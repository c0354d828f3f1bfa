"""``python -m bench.run.worker RUN_DIR [--tensorboard] [--wandb]``: run one run (what the
local executor starts)."""

from __future__ import annotations

import argparse
import sys

from bench.run.loop import execute
from bench.run.status import State
from bench.run.training_log import LogOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--tensorboard", action="store_true")
    parser.add_argument("--wandb", action="store_true")
    args = parser.parse_args(argv)
    state = execute(args.run_dir, LogOptions(tensorboard=args.tensorboard, wandb=args.wandb))
    return 0 if state in (State.DONE, State.RUNNING) else 1


if __name__ == "__main__":
    sys.exit(main())
