"""Throughput and memory of an agent: gradient updates and env steps per second, the
projected time of a 100k-step run, peak host and GPU memory, and the replay's footprint."""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing as mp
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.protocol import ObsSpec, Transition, single_action
from agents.registry import AgentEntry
from agents.replay import ReplayBuffer
from agents.testing import synthetic_obs
from bench.core.spaces import ActionKind
from bench.env.protocol import CALE_ACTION_HIGH, CALE_ACTION_LOW, AudioMode, ProtocolConfig


@dataclass(frozen=True)
class PerfResult:
    stream: str  # "synthetic" or "atari:<game>"
    device: str
    replay_ratio: float
    steps: int  # timed env steps (all after learning starts)
    grad_updates: int
    seconds: float
    updates_per_s: float
    env_steps_per_s: float
    projected_hours_100k: float
    peak_host_mb: float
    peak_gpu_mb: float | None
    gpu_name: str | None = None  # torch.cuda.get_device_name
    gpu_util_pct: float | None = None  # mean utilization while timed (the whole GPU)
    warmup_s: float = 0.0  # untimed steps after learning starts (compilation)


def peak_host_mb() -> float:
    """Peak resident memory of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024**2 if sys.platform == "darwin" else rss / 1024


def current_host_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1024**2
    except OSError:
        return peak_host_mb()


class _SyntheticStream:
    """Random observations of the right shapes, a life loss every 50 steps, an episode
    end every 400: the agent's work per step does not depend on pixel content."""

    def __init__(self, spec: ObsSpec, seed: int):
        self.spec = spec
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.obs = synthetic_obs(self.rng, spec)

    def step(self, action: int | np.ndarray) -> Transition:
        self.t += 1
        nxt = synthetic_obs(self.rng, self.spec)
        end = self.t % 400 == 0
        tr = Transition(
            self.obs, action, float(self.rng.random() < 0.05), end or self.t % 50 == 0, end, nxt
        )
        self.obs = synthetic_obs(self.rng, self.spec) if end else nxt
        return tr


class _AtariStream:
    """The real env, when ``bench.env.atari.make_atari`` is importable."""

    def __init__(self, game: str, seed: int, audio: AudioMode, actions: ActionKind):
        # Imported here: the synthetic stream needs no emulator (a GPU machine may lack it).
        from bench.env.atari import make_atari

        protocol = ProtocolConfig(audio=audio, actions=actions)
        self.env = make_atari(game, seed=seed, protocol=protocol)
        self.spec = self.env.obs_spec()
        self.obs, _ = self.env.reset()

    def step(self, action: int | np.ndarray) -> Transition:
        nxt, _, game_over, truncated, info = self.env.step(action)
        end = bool(game_over or truncated)
        tr = Transition(
            self.obs, action, float(info["learn_reward"]), bool(info["learn_terminal"]), end, nxt
        )
        self.obs = self.env.reset()[0] if end else nxt
        return tr


def make_stream(
    *,
    num_actions: int,
    audio_samples: int,
    game: str | None,
    seed: int,
    actions: ActionKind = "discrete",
):
    """(stream, description): the Atari env if asked and available, else synthetic; with
    continuous actions, CALE's action space."""
    if game:
        try:
            audio: AudioMode = "on" if audio_samples else "off"
            stream = _AtariStream(game, seed, audio, actions)
            return stream, f"atari:{game}"
        except Exception as e:  # noqa: BLE001 - any failure falls back, and says why
            print(f"real env unavailable ({type(e).__name__}: {e}); using a synthetic stream")
    audio_shape = (4, audio_samples) if audio_samples else None
    spec = ObsSpec(num_actions=num_actions, audio_shape=audio_shape)
    if actions == "continuous":
        spec = ObsSpec.for_continuous(CALE_ACTION_LOW, CALE_ACTION_HIGH, audio_shape=audio_shape)
    return _SyntheticStream(spec, seed), "synthetic"


def random_action(spec: ObsSpec, rng: np.random.Generator) -> int | np.ndarray:
    """A uniformly random action of the spec's kind."""
    if spec.continuous:
        return rng.uniform(spec.action_low, spec.action_high).astype(np.float32)
    return int(rng.integers(spec.num_actions))


def measure_agent(
    entry: AgentEntry,
    config: Any,
    *,
    steps: int,
    num_actions: int = 18,
    audio_samples: int = 0,
    game: str | None = None,
    device: str = "auto",
    seed: int = 0,
    warmup: int = 0,
    ready: Callable[[], Any] | None = None,
) -> PerfResult:
    """Fill replay to ``learning_starts`` without timing, run ``warmup`` untimed steps of
    acting and learning (compilation happens there), call ``ready`` (packed runs wait for
    each other), then time ``steps`` env steps of acting and learning. The projection for
    100k steps assumes the same speed throughout (the first ``learning_starts`` steps are
    counted as free)."""
    import torch

    stream, desc = make_stream(
        num_actions=num_actions,
        audio_samples=audio_samples,
        game=game,
        seed=seed,
        actions=entry.action_kinds[0],
    )
    agent = entry.make(config, obs_spec=stream.spec, seed=seed, device=device)
    dev = getattr(agent, "device", device)
    if str(dev).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    warm = int(getattr(config, "learning_starts", 0))
    rng = np.random.default_rng(seed)
    for _ in range(warm):  # random actions: no network work before learning starts
        agent.observe(stream.step(random_action(stream.spec, rng)))
    cuda = str(dev).startswith("cuda")
    warmup_s, _, _ = _timed(agent, stream, warmup, cuda)
    if ready is not None:
        ready()
    seconds, updates, util = _timed(agent, stream, steps, cuda)
    env_rate = steps / seconds
    gpu = torch.cuda.max_memory_allocated() / 1024**2 if cuda else None
    return PerfResult(
        stream=desc,
        device=str(dev),
        replay_ratio=float(getattr(config, "replay_ratio", 0.0)),
        steps=steps,
        grad_updates=updates,
        seconds=seconds,
        updates_per_s=updates / seconds,
        env_steps_per_s=env_rate,
        projected_hours_100k=(100_000 - warm) / env_rate / 3600,
        peak_host_mb=peak_host_mb(),
        peak_gpu_mb=gpu,
        gpu_name=torch.cuda.get_device_name() if cuda else None,
        gpu_util_pct=util,
        warmup_s=warmup_s,
    )


def _timed(agent: Any, stream: Any, steps: int, cuda: bool) -> tuple[float, int, float | None]:
    """Seconds, gradient updates and mean GPU utilization of ``steps`` env steps."""
    import torch

    before = agent.metrics().get("grad_steps", 0)
    start = time.perf_counter()
    with GpuSampler(cuda) as sampler:
        _act_and_learn(agent, stream, steps)
        if cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, int(agent.metrics().get("grad_steps", 0) - before), sampler.mean()


def _act_and_learn(agent: Any, stream: Any, steps: int) -> None:
    for _ in range(steps):
        obs = {k: v[None] for k, v in stream.obs.items()}
        action = single_action(agent.act(obs, eval_mode=False))
        agent.observe(stream.step(action))


class GpuSampler:
    """Samples the GPU's utilization (percent, the whole device) every ``period`` seconds
    while in its ``with`` block: ``torch.cuda.utilization()`` (pynvml), else nvidia-smi;
    ``mean()`` is None without a GPU or without either tool."""

    def __init__(self, enabled: bool, period: float = 0.25):
        self.enabled, self.period = enabled, period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            value = gpu_utilization()
            if value is None:
                return
            self.samples.append(value)

    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def gpu_utilization() -> float | None:
    """The current GPU's utilization in percent, or None where it cannot be read."""
    import torch

    try:
        return float(torch.cuda.utilization())
    except Exception:  # noqa: BLE001 - pynvml missing or no NVML: try nvidia-smi
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return float(out.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _packed_child(kwargs: dict[str, Any], barrier: Any, queue: Any) -> None:
    """One of N packed measurements (a spawned process): its result or its error."""
    from agents.registry import get_agent
    from bench.core.config import from_mapping

    try:
        entry = get_agent(kwargs.pop("agent"))
        config: Any = from_mapping(entry.config_cls, kwargs.pop("config"), where="packed")
        result = measure_agent(entry, config, ready=barrier.wait, **kwargs)
        queue.put(dataclasses.asdict(result))
    except Exception as e:  # noqa: BLE001 - reported by the parent, which fails
        barrier.abort()
        queue.put({"error": f"{type(e).__name__}: {e}"})


def measure_packed(
    entry: AgentEntry, config: Any, *, runs: int, timeout_s: float = 3600, **kwargs: Any
) -> tuple[list[PerfResult], float | None]:
    """``runs`` measurements at once, each in its own process (as packed runs share a GPU),
    timed together after every one has warmed up; and the GPU's mean utilization then."""
    from bench.core.config import to_dict

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(runs + 1), ctx.Queue()
    payload = {"agent": entry.name, "config": to_dict(config), **kwargs}
    procs = [
        ctx.Process(target=_packed_child, args=(dict(payload), barrier, queue)) for _ in range(runs)
    ]
    for proc in procs:
        proc.start()
    cuda = is_cuda(str(kwargs.get("device", "auto")))
    try:
        barrier.wait(timeout=timeout_s)
    except threading.BrokenBarrierError:
        pass
    with GpuSampler(cuda) as sampler:
        outs = [queue.get(timeout=timeout_s) for _ in range(runs)]
    for proc in procs:
        proc.join()
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise RuntimeError(f"a packed measurement failed: {errors[0]}")
    return [PerfResult(**o) for o in outs], sampler.mean()


def is_cuda(device: str) -> bool:
    """Whether ``device`` (auto, cpu, mps, cuda, cuda:N) is a CUDA GPU on this machine."""
    from agents.value import resolve_device  # torch loads only when a measurement runs

    return resolve_device(device).type == "cuda"


def replay_memory(
    *, steps: int = 100_000, capacity: int = 200_000, audio_samples: int = 2048, seed: int = 0
) -> dict[str, float]:
    """Resident memory added by a replay holding ``steps`` steps of 84x84 frames and
    ``audio_samples`` audio samples per step (each stored once)."""
    gc.collect()
    before = current_host_mb()
    buf = ReplayBuffer(
        capacity, image_shape=(4, 84, 84), audio_shape=(4, audio_samples) if audio_samples else None
    )
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (84, 84), dtype=np.uint8)
    audio = rng.integers(0, 256, audio_samples, dtype=np.uint8) if audio_samples else None
    for t in range(steps):
        buf.add(frame, t % 18, 0.0, terminal=t % 500 == 499, episode_end=False, audio=audio)
    after = current_host_mb()
    per_step = 84 * 84 + audio_samples
    return {
        "steps": float(steps),
        "capacity": float(capacity),
        "resident_mb": after - before,
        "payload_mb": steps * per_step / 1024**2,
        "allocated_mb_at_capacity": buf.nbytes() / 1024**2,
    }


# The tiny BBF of the fast-path check: SPR, prefetched groups, the reference write-back,
# n/gamma annealing and two resets within a few hundred updates.
CHECK_CONFIG = {
    "width_scale": 0.25,
    "hidden_dim": 32,
    "batch_size": 4,
    "learning_starts": 12,
    "replay_capacity": 500,
    "replay_ratio": 2.0,
    "spr_steps": 2,
    "anneal_steps": 60,
    "reset_interval": 120,
    "no_resets_after": 10**9,
    "epsilon_decay_steps": 20,
}
CHECK_RTOL = 1e-3  # fp32 on a GPU: fused kernels sum in other orders than the plain path's


def check_fast(*, device: str, updates: int = 200, compile_mode: str = "default") -> dict:
    """The fast path against the plain one on ``device`` for the same seed: the largest
    relative differences of the per-step losses, of the parameters (over the largest
    parameter) and of the priorities, in fp32 (``ok`` when all are within CHECK_RTOL) and
    with bf16 autocast (reported, not checked: bf16 rounds to 3 significant digits).
    TF32 is off for the check, so both paths compute in fp32."""
    import torch

    from agents.protocol import ObsSpec
    from agents.registry import get_agent
    from bench.core.config import override

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    entry = get_agent("value")
    spec = ObsSpec(num_actions=6, image_shape=(4, 44, 44))
    base = override(entry.preset("bbf"), CHECK_CONFIG, where="check")
    steps = int(CHECK_CONFIG["learning_starts"]) + updates // 2 + 4
    plain = _check_run(entry, base, spec, steps, device)
    out: dict[str, Any] = {"device": device, "updates": plain["updates"]}
    for label, changes in (
        ("fp32", {"fast_path": True, "compile_mode": compile_mode}),
        ("bf16", {"fast_path": True, "compile_mode": compile_mode, "amp": "bf16"}),
    ):
        fast = _check_run(entry, override(base, changes, where="check"), spec, steps, device)
        out[label] = _differences(plain, fast)
    out["ok"] = all(v <= CHECK_RTOL for v in out["fp32"].values())
    out["rtol"] = CHECK_RTOL
    return out


def _check_run(entry: AgentEntry, config: Any, spec: Any, steps: int, device: str) -> dict:
    agent: Any = entry.make(config, obs_spec=spec, seed=3, device=device)
    stream = _SyntheticStream(spec, seed=1)
    losses = []
    for _ in range(steps):
        _act_and_learn(agent, stream, 1)
        losses.append(agent.metrics().get("loss", 0.0))
    tree = agent.replay.tree
    return {
        "updates": agent.grad_steps,
        "loss": np.array(losses),
        "params": {k: v.detach().float().cpu() for k, v in agent.online.state_dict().items()},
        "priorities": None if tree is None else tree.tree.copy(),
    }


def _differences(a: dict, b: dict) -> dict[str, float]:
    if a["updates"] != b["updates"]:
        raise RuntimeError(f"the paths made {a['updates']} and {b['updates']} updates")
    loss = np.abs(a["loss"] - b["loss"]) / np.maximum(np.abs(a["loss"]), 1e-6)
    scale = max(float(v.abs().max()) for v in a["params"].values())
    params = max(float((a["params"][k] - b["params"][k]).abs().max()) for k in a["params"])
    out = {"loss_rel": float(loss.max()), "params_rel": params / scale}
    if a["priorities"] is not None:
        pa, pb = a["priorities"], b["priorities"]
        out["priorities_rel"] = float((np.abs(pa - pb) / np.maximum(np.abs(pa), 1e-6)).max())
    return out
