"""Commands about agents: ``bench agents`` and ``bench perf agent``.

``add_commands(subparsers)`` adds them to the project's parser; each handler is stored as
``func`` in the parsed namespace and returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import yaml

from agents.protocol import ObsSpec
from agents.registry import AgentEntry, get_agent, registered
from bench.core.config import override, to_dict
from bench.core.errors import BenchError
from bench.core.names import check_agent_ref
from bench.env.games import get_game
from bench.env.protocol import CALE_ACTION_HIGH, CALE_ACTION_LOW
from bench.run.perf import PerfResult, check_fast, is_cuda, measure_agent, measure_packed


def add_commands(subparsers: Any) -> None:
    agents = subparsers.add_parser("agents", help="list agents and presets, or describe one")
    agents.set_defaults(func=cmd_agents_list)
    sub = agents.add_subparsers(dest="agents_command")
    desc = sub.add_parser("describe", help="a preset's resolved config and parameter counts")
    desc.add_argument("preset", help="preset name, e.g. bbf")
    desc.add_argument("--agent", default="value", help="registered agent (default: value)")
    desc.add_argument(
        "--num-actions", type=int, default=None, help="discrete actions (continuous: CALE's)"
    )
    desc.add_argument(
        "--audio-samples",
        type=int,
        default=0,
        help="audio samples per step (2048 or 512; 0: no audio)",
    )
    desc.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field (YAML value), e.g. --set moe_experts=4; repeatable",
    )
    desc.add_argument("--json", action="store_true", help="machine-readable output")
    desc.set_defaults(func=cmd_agents_describe)

    _add_perf_agent(subparsers)


def _add_perf_agent(subparsers: Any) -> None:
    """`bench perf agent`, under `perf` (joining it when another module made it)."""
    # Another module may own `perf` already (e.g. `perf env`): join it rather than clash.
    perf = subparsers.choices.get("perf")
    if perf is None:
        perf = subparsers.add_parser("perf", help="throughput and memory measurements")
        perf_sub = perf.add_subparsers(dest="perf_command", required=True)
    else:
        perf_sub = next(a for a in perf._actions if isinstance(a, argparse._SubParsersAction))
    agent = perf_sub.add_parser("agent", help="updates/s, env steps/s, projected hours, memory")
    agent.add_argument("--agent", default="value")
    agent.add_argument("--preset", default=None)
    agent.add_argument("--replay-ratio", type=float, default=None)
    agent.add_argument("--steps", type=int, default=200, help="timed env steps")
    agent.add_argument("--device", default="auto")
    agent.add_argument("--num-actions", type=int, default=18)
    agent.add_argument("--audio-samples", type=int, default=0)
    agent.add_argument(
        "--game",
        default=None,
        help="use the real env (bench.env.atari) instead of a synthetic stream",
    )
    agent.add_argument("--json", action="store_true")
    agent.add_argument(
        "--fast",
        action="store_true",
        help="the fast path; on a GPU with torch.compile (CUDA graphs), bf16, channels-last",
    )
    agent.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config override"
    )
    agent.add_argument("--warmup", type=int, default=None, help="untimed steps (compilation)")
    agent.add_argument(
        "--packed", type=int, default=0, help="also N runs at once, one process each"
    )
    agent.add_argument(
        "--check-fast",
        action="store_true",
        help="only compare the fast path with the plain one on the device (exit 1 if off)",
    )
    agent.add_argument("--check-updates", type=int, default=200, help="updates of the check")
    agent.set_defaults(func=cmd_perf_agent)


def cmd_agents_list(args: argparse.Namespace) -> int:
    for name, entry in sorted(registered().items()):
        presets = ", ".join(f"{p}*" if p == entry.default_preset else p for p in entry.presets)
        print(f"{name:10s} {entry.description}")
        if presets:
            print(f"{'':10s} presets: {presets}   (* default)")
    return 0


MAX_ACTIONS = 1024  # ALE's full action set has 18
AUDIO_FRAME = 512  # samples of one emulator frame
MAX_AUDIO = 64 * AUDIO_FRAME  # frame_skip at most 64
MAX_STEPS = 10_000_000
DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]{1,3})?")


def check_obs_options(num_actions: int | None, audio_samples: int) -> None:
    """``--num-actions`` and ``--audio-samples`` within what an Atari env can give
    (``num_actions`` None: not checked, for continuous actions)."""
    if num_actions is not None and not 1 <= num_actions <= MAX_ACTIONS:
        raise BenchError(
            f"--num-actions must be positive, got {num_actions}; valid: 1..{MAX_ACTIONS}"
        )
    if audio_samples and not (
        AUDIO_FRAME <= audio_samples <= MAX_AUDIO and audio_samples % AUDIO_FRAME == 0
    ):
        raise BenchError(
            f"--audio-samples: {audio_samples} is not a whole number of frames; valid: 0 (no "
            f"audio) or a multiple of {AUDIO_FRAME} up to {MAX_AUDIO}"
        )


def _spec(entry: AgentEntry, num_actions: int | None, audio_samples: int) -> ObsSpec:
    """The agent's first action space: ``num_actions`` discrete actions, or CALE's."""
    audio_shape = (4, audio_samples) if audio_samples else None
    if entry.action_kinds[0] == "continuous":
        check_obs_options(None, audio_samples)
        return ObsSpec.for_continuous(CALE_ACTION_LOW, CALE_ACTION_HIGH, audio_shape=audio_shape)
    if num_actions is None:  # optional on the command line: continuous agents need none
        raise BenchError(
            f"the following arguments are required: --num-actions (agent {entry.name} acts "
            f"in discrete actions; valid: 1..{MAX_ACTIONS})"
        )
    check_obs_options(num_actions, audio_samples)
    return ObsSpec(num_actions=num_actions, audio_shape=audio_shape)


def _entry(agent: str) -> AgentEntry:
    return get_agent(check_agent_ref(agent, where="--agent"), where="--agent")


def describe(
    agent: str,
    preset: str,
    *,
    num_actions: int | None,
    audio_samples: int = 0,
    changes: list[str] | None = None,
) -> dict:
    """The resolved config of a preset (with ``changes``, "field=value" strings whose values
    are read as YAML) and its parameter counts per module."""
    entry = _entry(agent)
    config = entry.preset(preset, where="preset")
    if changes:
        config = override(config, _parse_changes(changes), where="--set")
    out: dict[str, Any] = {"agent": entry.name, "preset": preset, "config": to_dict(config)}
    counts = entry.count_parameters(config, _spec(entry, num_actions, audio_samples))
    if counts is not None:
        out["parameters"] = counts
    return out


def _parse_changes(changes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--set: {item!r} is not FIELD=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise BenchError(f"--set: the value of {key!r} is not a YAML value") from None
    return out


def cmd_agents_describe(args: argparse.Namespace) -> int:
    info = describe(
        args.agent,
        args.preset,
        num_actions=args.num_actions,
        audio_samples=args.audio_samples,
        changes=args.set,
    )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['agent']} / {info['preset']}")
    for key, value in info["config"].items():
        print(f"  {key:24s} {value}")
    if "parameters" in info:
        space = "continuous actions" if args.num_actions is None else f"{args.num_actions} actions"
        print(f"parameters ({space}):")
        for group, n in info["parameters"].items():
            print(f"  {group:24s} {n:>12,}")
    return 0


# The fast path's settings on a GPU (agents/fast.py); on a CPU only fast_path.
FAST_GPU: dict[str, Any] = {
    "fast_path": True,
    "compile_mode": "reduce-overhead",
    "amp": "bf16",
    "channels_last": True,
}


def _perf_config(entry: AgentEntry, args: argparse.Namespace, cuda: bool) -> Any:
    config = entry.preset(args.preset, where="--preset")
    if args.replay_ratio is not None:
        try:
            config = override(config, {"replay_ratio": args.replay_ratio}, where="")
        except BenchError as e:
            raise BenchError(f"--replay-ratio: {e}") from None
    changes: dict[str, Any] = {}
    if args.fast:
        if not hasattr(config, "fast_path"):
            raise BenchError(f"--fast: agent {entry.name} has no fast path; valid: value")
        changes.update(FAST_GPU if cuda else {"fast_path": True})
    changes.update(_parse_changes(args.set))
    try:
        return override(config, changes, where="")
    except BenchError as e:
        raise BenchError(f"--set: {e}") from None


def _check_perf_args(args: argparse.Namespace) -> None:
    check_obs_options(args.num_actions, args.audio_samples)
    if not 1 <= args.steps <= MAX_STEPS:
        raise BenchError(f"--steps: {args.steps} is out of range; valid: 1..{MAX_STEPS}")
    if not DEVICE.fullmatch(args.device):
        raise BenchError(
            f"--device: {args.device!r} is not a device; valid: auto, cpu, mps, cuda, cuda:N"
        )
    if not 1 <= args.check_updates <= 100_000:
        raise BenchError(f"--check-updates: {args.check_updates} is out of range; valid: 1..100000")
    if not 0 <= args.packed <= 64:
        raise BenchError(f"--packed: {args.packed} is out of range; valid: 0..64")
    if args.warmup is not None and not 0 <= args.warmup <= MAX_STEPS:
        raise BenchError(f"--warmup: {args.warmup} is out of range; valid: 0..{MAX_STEPS}")
    if args.game is not None:
        get_game(args.game, where="--game")


def cmd_perf_agent(args: argparse.Namespace) -> int:
    entry = _entry(args.agent)
    _check_perf_args(args)
    cuda = is_cuda(args.device)
    if args.check_fast:
        device = "cuda" if cuda else "cpu"
        mode = "default" if cuda else "off"
        check = check_fast(device=device, updates=args.check_updates, compile_mode=mode)
        print(json.dumps(check, indent=2) if args.json else format_check(check))
        return 0 if check["ok"] else 1
    config = _perf_config(entry, args, cuda)
    warmup = args.warmup if args.warmup is not None else (100 if args.fast else 0)
    kwargs = {
        "steps": args.steps,
        "num_actions": args.num_actions,
        "audio_samples": args.audio_samples,
        "game": args.game,
        "device": args.device,
        "warmup": warmup,
    }
    label = args.preset or entry.default_preset or entry.name
    if not args.packed:
        result = measure_agent(entry, config, **kwargs)
        print(json.dumps(result.__dict__, indent=2) if args.json else format_perf(label, result))
        return 0
    (single,), _ = measure_packed(entry, config, runs=1, **kwargs)
    packed, util = measure_packed(entry, config, runs=args.packed, **kwargs)
    if args.json:
        out = {"single": single.__dict__, "packed": [r.__dict__ for r in packed]}
        print(json.dumps({**out, "packed_gpu_util_pct": util}, indent=2))
        return 0
    print(format_perf(label, single))
    print(format_packed(single, packed, util))
    return 0


def format_check(r: dict) -> str:
    lines = [f"fast path vs plain on {r['device']}, {r['updates']} updates (same seed):"]
    for label in ("fp32", "bf16"):
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in r[label].items())
        lines.append(f"  {label}: {diffs}")
    verdict = "within" if r["ok"] else "OUTSIDE"
    lines.append(f"  fp32 {verdict} the tolerance {r['rtol']:g} (bf16 reported, not checked)")
    return "\n".join(lines)


def format_packed(single: PerfResult, packed: list[PerfResult], util: float | None) -> str:
    """N packed runs against one alone: each run's time per env step over the single's."""
    ratios = [single.env_steps_per_s / r.env_steps_per_s for r in packed]
    rates = ", ".join(f"{r.updates_per_s:.1f}" for r in packed)
    return (
        f"{len(packed)} packed runs (one process each, one device):\n"
        f"  gradient updates/s per run  {rates}\n"
        f"  time per run / single run   {max(ratios):.2f}x at worst, "
        f"{sum(ratios) / len(ratios):.2f}x on average\n"
        f"  projected 100k run          {max(r.projected_hours_100k for r in packed):.2f} h "
        f"at worst\n"
        f"  GPU utilization (all runs)  {_pct(util)}"
    )


def format_perf(label: str, r: PerfResult) -> str:
    gpu = "n/a (no GPU)" if r.peak_gpu_mb is None else f"{r.peak_gpu_mb:,.0f} MB"
    return (
        f"{label} RR {r.replay_ratio:g} on {r.device} ({r.stream} stream), {r.steps} env "
        f"steps, {r.grad_updates} updates in {r.seconds:.1f} s\n"
        f"  gradient updates/s   {r.updates_per_s:10.2f}\n"
        f"  env steps/s          {r.env_steps_per_s:10.2f}\n"
        f"  projected 100k run   {r.projected_hours_100k:10.2f} h\n"
        f"  peak host memory     {r.peak_host_mb:10,.0f} MB\n"
        f"  peak GPU memory      {gpu:>10s}\n"
        f"  GPU                  {r.gpu_name or 'none'}, utilization "
        f"{_pct(r.gpu_util_pct)}"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"
