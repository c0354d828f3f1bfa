"""``bench plan``, ``bench launch`` and ``bench status``: a suite's runs, before, during
and after they run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.core.errors import BenchError
from bench.report.ledger_check import check_for_launch, checked_ledger
from bench.run import monitor
from bench.run.executors import DEFAULT_EXECUTOR, EXECUTORS
from bench.run.ledger import Ledger
from bench.run.status import State
from bench.run.training_log import LogOptions
from bench.suite.expand import RunSpec, expand, plan_summary
from bench.suite.load import Suite, load_suite


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``plan``, ``launch`` and ``status`` on the ``bench`` parser's subcommands."""
    p = sub.add_parser("plan", help="show the runs a suite expands to")
    p.add_argument("suite", help="suite YAML file")
    p.add_argument("--json", action="store_true", help="print every run spec as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("launch", help="run a suite (skips runs that are done or running)")
    p.add_argument("suite", help="suite YAML file")
    p.add_argument("--out", help="ledger folder (default runs/<suite name>)")
    p.add_argument("--executor", choices=list(EXECUTORS), default=DEFAULT_EXECUTOR)
    p.add_argument("--retry-failed", action="store_true", help="rerun failed runs")
    p.add_argument("--dry-run", action="store_true", help="show what would run; write nothing")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write training metrics as TensorBoard event files in each run folder",
    )
    p.add_argument(
        "--wandb",
        action="store_true",
        help="also log training metrics to Weights & Biases (offline unless WANDB_MODE says)",
    )
    for executor in EXECUTORS.values():
        executor.add_arguments(p)
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("status", help="state of every run of a launched suite")
    p.add_argument("dir", help="ledger folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def _load(path: str) -> tuple[Suite, list[RunSpec]]:
    suite = load_suite(path)
    return suite, expand(suite)


# ---------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace) -> int:
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
    suite, specs = _load(args.suite)  # validates everything before anything is written
    options = LogOptions(tensorboard=args.tensorboard, wandb=args.wandb)
    options.check()
    executor = EXECUTORS[args.executor].from_args(args)
    out = ledger_folder(Path(args.out) if args.out else Path("runs") / suite.name)
    ledger = Ledger(out)
    check_for_launch(ledger, [s.run_id for s in specs])
    sel = monitor.select(ledger, specs, retry_failed=args.retry_failed)
    print(
        f"{suite.name}: {len(specs)} runs: {len(sel.done)} done, {len(sel.active)} active, "
        f"{len(sel.failed_skipped)} failed (skipped; --retry-failed reruns them), "
        f"{len(sel.to_run)} to run -> {out}"
    )
    if args.dry_run:
        by_id = {s.run_id: s for s in specs}
        for run_id in sel.to_run:
            print(f"  would run {run_id}  {by_id[run_id].algorithm}")
        return 0
    ledger.prepare(specs, suite_text=Path(args.suite).read_text())
    if not sel.to_run:
        return 0
    outcome = executor.run(ledger, sel.to_run, options=options)
    for line in outcome.lines:
        print(line)
    if not outcome.waited:
        return 0
    elsewhere = [r for r, st in outcome.states.items() if st == State.RUNNING]
    finished = len(outcome.states) - len(outcome.failed) - len(elsewhere)
    line = f"{finished} finished, {len(outcome.failed)} failed"
    if elsewhere:  # another launch took them between our look and our start
        line += f", {len(elsewhere)} still running in another launch"
    print(line)
    for run_id in outcome.failed:
        print(f"  failed {run_id}: {ledger.status(run_id).error}")
    return 1 if outcome.failed else 0


def ledger_folder(out: Path) -> Path:
    """``out`` if a launch may write its ledger there: a new folder, an empty one or a
    ledger; never a file, a path through a file, or a folder holding other things."""
    for p in (out, *out.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise BenchError(
                    f"--out {out}: {p} is not a folder; valid: a new folder, an empty one or "
                    "a ledger"
                )
            break
    if out.is_dir() and not Ledger(out).exists() and any(out.iterdir()):
        raise BenchError(
            f"--out {out}: a folder with other files and no runs/ inside; valid: a new "
            "folder, an empty one or a ledger"
        )
    return out


# ---------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    ledger = checked_ledger(args.dir, evals=False)
    ids = ledger.run_ids()
    st = monitor.states(ledger, ids)
    rows = []
    for run_id in ids:
        state, status = st[run_id]
        cfg = ledger.config(run_id)
        rows.append(
            {
                "run_id": run_id,
                "game": cfg["game"],
                "seed": cfg["seed"],
                "algorithm": cfg["algorithm"],
                "state": str(state),
                "env_step": status.env_step,
                "env_steps": cfg["budget"]["env_steps"],
                "attempts": status.attempts,
                "job_id": status.job_id,
                "error": status.error,
            }
        )
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
        if r["state"] == State.FAILED and r["error"]:
            print(f"{'':<{width}}  error: {r['error']}")
    return 0
