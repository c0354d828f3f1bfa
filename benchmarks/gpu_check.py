"""Every speed target of the fast path in one short script:
`python benchmarks/gpu_check.py [--out gpu_check.json] [--budget-s 540] [--tiny]`.

Each measurement is `bench perf agent ... --json` in its own process (a crash or a hang of
one is recorded and the next one runs), short and projected to a 100k-step run:

| item | what | target |
| --- | --- | --- |
| bbf-rr8 | BBF at replay ratio 8, fast path | at most 1.0 h per 100k-step run |
| bbf-rr2 | BBF at replay ratio 2 (BBF.gin), fast path | at most 20 min |
| packed | 4 BBF (RR 2) runs at once, one process each, one GPU | each at most 1.5x alone |
| der | DER (replay ratio 1), fast path | a full 100k run in under 10 min |
| check | fast vs plain path, same seed, a tiny BBF, fp32 (TF32 off) | within 1e-3 relative |
| bbf-rr8-plain | BBF RR 8, plain path (the reference for the speed-up) | none |

The fast path on a GPU uses CUDA graphs (compile_mode reduce-overhead), bf16 and
channels-last; when that mode fails, the item is measured again with compile_mode default
and says so. Compilation happens in the untimed warm-up (torch's caches make the later
items compile faster). Results go to the JSON file after every item, so a run cut short
keeps what it measured. ``--tiny``: the same items on the CPU with a tiny network and a
few steps (a test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (name, perf arguments, timeout s)
FULL = [
    ("bbf-rr8", ["--preset", "bbf-rr8", "--fast", "--steps", "150", "--warmup", "30"], 240),
    ("bbf-rr2", ["--preset", "bbf", "--fast", "--steps", "300", "--warmup", "40"], 180),
    (
        "packed",
        ["--preset", "bbf", "--fast", "--steps", "200", "--warmup", "40", "--packed", "4"],
        300,
    ),
    ("der", ["--preset", "der", "--fast", "--steps", "1500", "--warmup", "100"], 180),
    ("check", ["--check-fast"], 200),
    ("bbf-rr8-plain", ["--preset", "bbf-rr8", "--steps", "10"], 120),
]
TINY_SET = [
    "width_scale=0.25",
    "hidden_dim=32",
    "batch_size=4",
    "learning_starts=40",
    "replay_capacity=2000",
]
TARGETS = {  # item -> (value key, limit, unit)
    "bbf-rr8": ("projected_h", 1.0, "h"),
    "bbf-rr2": ("projected_h", 1 / 3, "h"),
    "packed": ("worst_ratio", 1.5, "x"),
    "der": ("projected_min", 10.0, "min"),
    "check": ("fp32_max_rel", 1e-3, ""),
}


def tiny_items() -> list[tuple[str, list[str], int]]:
    """The same items on the CPU, small enough to finish in a few minutes."""
    sets = [a for s in TINY_SET for a in ("--set", s)]
    out = []
    for name, args, _ in FULL:
        args = [a for a in args]
        if "--steps" in args:
            args[args.index("--steps") + 1] = "4"
        if "--warmup" in args:
            args[args.index("--warmup") + 1] = "2"
        if "--packed" in args:
            args[args.index("--packed") + 1] = "2"
        extra = ["--check-updates", "20"] if name == "check" else sets
        out.append((name, [*args, *extra, "--device", "cpu"], 600))
    return out


# `bench perf agent` through its own module only: the report stack and the emulator are not
# needed for a synthetic stream (and a GPU machine may lack them).
PERF = (
    "import argparse, sys; from bench.cli import agents; p = argparse.ArgumentParser(); "
    "agents.add_commands(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); "
    "sys.exit(a.func(a))"
)


def run_item(args: list[str], timeout: int) -> dict[str, Any]:
    """`bench perf agent ARGS --json`: its JSON output, or what went wrong."""
    cmd = [sys.executable, "-c", PERF, "perf", "agent", *args, "--json"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "seconds": timeout}
    seconds = time.perf_counter() - start
    text = proc.stdout
    try:
        data = json.loads(text[text.index("{") :])
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}", "seconds": seconds}
    data["seconds"] = seconds
    data["exit_code"] = proc.returncode
    return data


def summarize(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the table: rates, projections, memory, utilization, the GPU."""
    if "error" in data:
        return {"error": data["error"]}
    if name == "check":
        return {"fp32_max_rel": max(data["fp32"].values()), "bf16": data["bf16"], "ok": data["ok"]}
    single = data.get("single", data)
    out = {
        "updates_per_s": single["updates_per_s"],
        "env_steps_per_s": single["env_steps_per_s"],
        "projected_h": single["projected_hours_100k"],
        "projected_min": single["projected_hours_100k"] * 60,
        "peak_gpu_mb": single["peak_gpu_mb"],
        "gpu_util_pct": single["gpu_util_pct"],
        "gpu": single["gpu_name"],
        "warmup_s": single["warmup_s"],
        "device": single["device"],
    }
    if "packed" in data:
        ratios = [single["env_steps_per_s"] / r["env_steps_per_s"] for r in data["packed"]]
        out["runs"] = len(ratios)
        out["worst_ratio"] = max(ratios)
        out["packed_projected_h"] = max(r["projected_hours_100k"] for r in data["packed"])
        out["packed_peak_gpu_mb"] = max(r["peak_gpu_mb"] or 0 for r in data["packed"])
        out["gpu_util_pct"] = data.get("packed_gpu_util_pct")
    return out


def verdict(name: str, row: dict[str, Any]) -> str:
    if "error" in row:
        return "FAILED"
    if name not in TARGETS:
        return "-"
    key, limit, unit = TARGETS[name]
    ok = row[key] <= limit and (name != "packed" or row["runs"] >= 4)
    return f"{'met' if ok else 'MISSED'} ({row[key]:.3g}{unit} vs {limit:.3g}{unit})"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| item | mode | updates/s | env steps/s | projected 100k | warm-up s | GPU MB | util "
        "| target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in results.items():
        if "error" in row or name == "check":
            detail = row.get("error", f"fp32 max rel {row.get('fp32_max_rel', 0):.2e}")
            lines.append(f"| {name} | {row.get('mode', '')} | {detail} |  |  |  |  |  | "
                         f"{verdict(name, row)} |")  # fmt: skip
            continue
        mem = "n/a" if row["peak_gpu_mb"] is None else f"{row['peak_gpu_mb']:,.0f}"
        util = "n/a" if row["gpu_util_pct"] is None else f"{row['gpu_util_pct']:.0f}%"
        proj = f"{row['projected_h']:.2f} h ({row['projected_min']:.0f} min)"
        if name == "packed":
            proj = f"{row['packed_projected_h']:.2f} h x{row['runs']} (worst)"
        lines.append(
            f"| {name} | {row.get('mode', '')} | {row['updates_per_s']:.1f} | "
            f"{row['env_steps_per_s']:.1f} | {proj} | {row['warmup_s']:.0f} | {mem} | {util} | "
            f"{verdict(name, row)} |"
        )
    gpu = next((r["gpu"] for r in results.values() if r.get("gpu")), None)
    return "\n".join(lines) + f"\ndevice: {gpu or 'no GPU (CPU)'}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--budget-s", type=float, default=540, help="stop starting items after")
    p.add_argument("--tiny", action="store_true", help="on the CPU, tiny: tests the script")
    p.add_argument("--only", nargs="*", default=None, help="item names to run")
    args = p.parse_args(argv)
    items = tiny_items() if args.tiny else FULL
    start = time.perf_counter()
    raw: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, item_args, timeout in items:
        if args.only and name not in args.only:
            continue
        left = args.budget_s - (time.perf_counter() - start)
        if left < 30:
            results[name] = {"error": "not run: out of time"}
            continue
        data = run_item(item_args, int(min(timeout, left)))
        mode = "reduce-overhead" if "--fast" in item_args and not args.tiny else ""
        retry = "error" in data and "--fast" in item_args and not args.tiny
        if retry and args.budget_s - (time.perf_counter() - start) > 60:
            mode = "default (reduce-overhead failed)"
            fallback = [*item_args, "--set", "compile_mode=default"]
            data = {**run_item(fallback, int(min(timeout, left))), "first_error": data["error"]}
        raw[name] = data
        kind = "fast vs plain" if name == "check" else "fast" if "--fast" in item_args else "plain"
        results[name] = {"mode": mode or kind,
                         **summarize(name, data)}  # fmt: skip
        print(f"{name}: {json.dumps(results[name])}", flush=True)
        Path(args.out).write_text(json.dumps({"results": results, "raw": raw}, indent=2))
    print(table(results))
    print(f"total {time.perf_counter() - start:.0f} s; JSON in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
