"""``python -m bench.run.worker RUN_DIR``: run one run (what the local executor starts)."""

from __future__ import annotations

import sys

from bench.run.loop import execute


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m bench.run.worker RUN_DIR", file=sys.stderr)
        return 2
    state = execute(sys.argv[1])
    return 0 if state in ("done", "running") else 1


if __name__ == "__main__":
    sys.exit(main())
