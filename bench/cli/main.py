"""The ``bench`` command: plan, launch, status, report, agents, perf."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.core.errors import BenchError


def _load(path: str) -> tuple:
    from bench.suite.expand import expand
    from bench.suite.load import load_suite

    suite = load_suite(path)
    return suite, expand(suite)


# ---------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace) -> int:
    from bench.suite.expand import plan_summary

    suite, specs = _load(args.suite)
    summary = plan_summary(specs)
    if args.json:
        payload = {"suite": suite.name, "summary": summary, "runs": [s.to_json() for s in specs]}
        json.dump(payload, sys.stdout, indent=1)
        print()
        return 0
    n_cond = len(summary["conditions"])
    print(f"suite {suite.name} ({suite.source}): {summary['runs']} runs")
    print(
        f"  {summary['games']} games x {summary['seeds']} seeds x "
        f"{len(summary['variants'])} variants x {n_cond} conditions"
    )
    print(f"  variants:         {', '.join(summary['variants'])}")
    print(f"  conditions:       {', '.join(c or '(none)' for c in summary['conditions'])}")
    print(f"  env steps:        {summary['env_steps']:,} (training)")
    print(f"  gradient updates: {summary['gradient_updates']:,} (estimated)")
    print(f"  eval episodes:    {summary['eval_episodes']:,}")
    r = suite.resources
    print(f"  per run:          {r.cpus} cpu, {r.gpus} gpu, {r.mem_gb:g} GB, {r.time_min} min")
    return 0


# ---------------------------------------------------------------- launch


def cmd_launch(args: argparse.Namespace) -> int:
    from bench.run import monitor
    from bench.run.executors import launch_old as launch
    from bench.run.ledger import Ledger

    suite, specs = _load(args.suite)  # validates everything before anything is written
    out = Path(args.out or Path("runs") / suite.name)
    ledger = Ledger(out)
    by_id = {s.run_id: s for s in specs}
    sel = monitor.select(ledger, specs, retry_failed=args.retry_failed)
    print(
        f"{suite.name}: {len(specs)} runs: {len(sel.done)} done, {len(sel.active)} active, "
        f"{len(sel.failed_skipped)} failed (skipped; --retry-failed reruns them), "
        f"{len(sel.to_run)} to run -> {out}"
    )
    if args.dry_run:
        for run_id in sel.to_run:
            print(f"  would run {run_id}  {by_id[run_id].algorithm}")
        return 0
    ledger.prepare(specs, suite_text=Path(args.suite).read_text())
    if not sel.to_run:
        return 0
    if args.executor == "debug":
        results = launch.run_debug(ledger, sel.to_run)
    elif args.executor == "local":
        cpus = max(s.resources.cpus for s in specs)
        cap = args.max_parallel or max(1, (os.cpu_count() or 1) // cpus)
        results = launch.run_local(ledger, by_id, sel.to_run, max_parallel=cap)
    else:
        arrays = launch.submit_slurm(
            ledger, by_id, sel.to_run,
            array_parallelism=args.array_parallelism, array_size=args.array_size,
        )  # fmt: skip
        print(f"submitted {len(sel.to_run)} runs as job arrays {', '.join(arrays)}")
        print(f"follow with: bench status {out}")
        return 0
    failed = [r for r, s in results.items() if s == "failed"]
    print(f"{len(results) - len(failed)} finished, {len(failed)} failed")
    for run_id in failed:
        print(f"  failed {run_id}: {ledger.status(run_id).error}")
    return 1 if failed else 0


# ---------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    from bench.run import monitor
    from bench.run.ledger import resolve_ledger

    ledger = resolve_ledger(args.dir)
    ids = ledger.run_ids()
    st = monitor.states(ledger, ids)
    rows = []
    for run_id in ids:
        state, status = st[run_id]
        cfg = ledger.config(run_id)
        rows.append({
            "run_id": run_id, "game": cfg["game"], "seed": cfg["seed"],
            "algorithm": cfg["algorithm"], "state": state, "env_step": status.env_step,
            "env_steps": cfg["budget"]["env_steps"], "attempts": status.attempts,
            "job_id": status.job_id, "error": status.error,
        })  # fmt: skip
    if args.json:
        json.dump({"dir": str(args.dir), "runs": rows}, sys.stdout, indent=1)
        print()
        return 0
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    print(f"{args.dir}: {len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    width = max((len(r["run_id"]) for r in rows), default=6)
    print(f"{'run':<{width}}  {'state':<11} {'steps':>15} {'att':>3} {'job':<10} algorithm")
    for r in rows:
        steps = f"{r['env_step']:,}/{r['env_steps']:,}"
        print(
            f"{r['run_id']:<{width}}  {r['state']:<11} {steps:>15} {r['attempts']:>3} "
            f"{r['job_id'] or '-':<10} {r['algorithm']}"
        )
        if r["state"] == "failed" and r["error"]:
            print(f"{'':<{width}}  error: {r['error']}")
    return 0


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description="Benchmark and ablation harness for sample-efficient Atari RL"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="show the runs a suite expands to")
    p.add_argument("suite", help="suite YAML file")
    p.add_argument("--json", action="store_true", help="print every run spec as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("launch", help="run a suite (skips runs that are done or running)")
    p.add_argument("suite", help="suite YAML file")
    p.add_argument("--out", help="ledger folder (default runs/<suite name>)")
    p.add_argument("--executor", choices=("local", "debug", "slurm"), default="local")
    p.add_argument("--max-parallel", type=int, default=0,
                   help="local: runs at once (default: cores / cpus per run)")  # fmt: skip
    p.add_argument("--retry-failed", action="store_true", help="rerun failed runs")
    p.add_argument("--dry-run", action="store_true", help="show what would run; write nothing")
    p.add_argument("--array-parallelism", type=int, default=64,
                   help="slurm: tasks of one array running at once")  # fmt: skip
    p.add_argument("--array-size", type=int, default=0,
                   help="slurm: split arrays to at most this many tasks "
                        "(always within the cluster's MaxArraySize)")  # fmt: skip
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("status", help="state of every run of a launched suite")
    p.add_argument("dir", help="ledger folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    from bench.cli import report
    from bench.cli.agents import add_commands

    p = sub.add_parser("report", help="statistics, tables and figures from ledgers and baselines")
    report.add_arguments(p)
    p.set_defaults(func=report.main)
    add_commands(sub)  # agents, perf
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; relaunch to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
