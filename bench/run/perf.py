"""Throughput and memory of an agent: gradient updates and env steps per second, the
projected time of a 100k-step run, peak host and GPU memory, and the replay's footprint."""

from __future__ import annotations

import gc
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.protocol import ObsSpec, Transition, single_action
from agents.registry import AgentEntry
from agents.replay import ReplayBuffer
from agents.testing import synthetic_obs
from bench.core.spaces import ActionKind
from bench.env.atari import make_atari
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
) -> PerfResult:
    """Fill replay to ``learning_starts`` without timing, then time ``steps`` env steps of
    acting and learning. The projection for 100k steps assumes the same speed throughout
    (the first ``learning_starts`` steps are counted as free)."""
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
    metrics0 = agent.metrics()
    start = time.perf_counter()
    for _ in range(steps):
        obs = {k: v[None] for k, v in stream.obs.items()}
        action = single_action(agent.act(obs, eval_mode=False))
        agent.observe(stream.step(action))
    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    updates = int(agent.metrics().get("grad_steps", 0) - metrics0.get("grad_steps", 0))
    env_rate = steps / seconds
    gpu = None
    if str(dev).startswith("cuda"):
        gpu = torch.cuda.max_memory_allocated() / 1024**2
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
    )


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
