"""Agent steps per second of the Atari env on one core, against the usual alternatives.

  raw ale-py      the emulator with its own frame_skip=4, no preprocessing (the floor)
  bench off/on    bench.env.atari with audio off / on (4 x 512 samples per step) / sem3
  gymnasium       AtariPreprocessing(frame_skip=4, noop_max=30) + FrameStackObservation(4)
                  on ALE/<Game>-v5 with frameskip=1: what a user would otherwise write

Random actions from a fixed seed; each variant runs ``--steps`` agent steps per repeat,
variants interleaved, and the median over repeats is printed. Rates are per second of
this process's CPU time, not wall time, so that other load on a shared machine (which
preempts the process) does not count against a variant.

    python benchmarks/env_speed.py [--steps 3000] [--repeats 3] [--games Pong Assault]
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy and OpenCV load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import ale_py  # noqa: E402
import cv2  # noqa: E402
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from ale_py import roms  # noqa: E402
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation  # noqa: E402

from bench.env.atari import audio_samples, make_atari  # noqa: E402
from bench.env.games import get_game  # noqa: E402
from bench.env.protocol import ProtocolConfig  # noqa: E402

SEED = 0


def pin_to_one_core() -> str:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def actions_for(num_actions: int, steps: int) -> list[int]:
    return np.random.default_rng(SEED).integers(num_actions, size=steps).tolist()


def run_raw_ale(game: str, steps: int) -> float:
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", SEED)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 4)
    ale.loadROM(roms.get_rom_path(get_game(game).rom_id))
    action_set = ale.getMinimalActionSet()
    actions = [action_set[a] for a in actions_for(len(action_set), steps)]
    start = time.process_time()
    for a in actions:
        ale.act(a)
        if ale.game_over():
            ale.reset_game()
    return steps / (time.process_time() - start)


def run_bench(game: str, steps: int, audio: str) -> float:
    env = make_atari(game, seed=SEED, protocol=ProtocolConfig(audio=audio))  # type: ignore[arg-type]
    actions = actions_for(env.num_actions, steps)
    env.reset()
    return timed_steps(env, actions)


def timed_steps(env: gym.Env, actions: list[int]) -> float:
    """Agent steps per CPU second over ``actions``, resetting at every episode end."""
    start = time.process_time()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.process_time() - start)


def run_gymnasium(game: str, steps: int) -> float:
    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, terminal_on_life_loss=False)
    env = FrameStackObservation(env, 4)
    actions = actions_for(int(env.action_space.n), steps)  # type: ignore[attr-defined]
    env.reset(seed=SEED)
    return timed_steps(env, actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--games", nargs="+", default=["Pong", "Assault"])
    args = parser.parse_args()
    where = pin_to_one_core()
    print(f"agent steps per CPU second, one core ({where}); median of {args.repeats}")

    variants: dict[str, Callable[[str, int], float]] = {
        "raw ale-py frame_skip=4": run_raw_ale,
        "bench audio off": lambda g, n: run_bench(g, n, "off"),
        "bench audio on": lambda g, n: run_bench(g, n, "on"),
        "bench audio sem3": lambda g, n: run_bench(g, n, "sem3"),
        "gymnasium AtariPreprocessing+stack": run_gymnasium,
    }
    for game in args.games:
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                runs[name].append(fn(game, args.steps))
        sps = {name: statistics.median(v) for name, v in runs.items()}
        print(f"\n{game} ({args.steps} steps x {args.repeats})")
        for name, value in sps.items():
            print(f"  {name:38s} {value:8.0f} steps/s")
        gym_sps = sps["gymnasium AtariPreprocessing+stack"]
        off, on = sps["bench audio off"], sps["bench audio on"]
        print(f"  audio off / gymnasium   {off / gym_sps:.2f}  (target >= 0.90)")
        print(f"  audio on / audio off    {on / off:.2f}  (target >= 0.75)")

    print("\nbytes stored in replay per agent step (the newest entry of each stack)")
    image_bytes = ProtocolConfig().image_size ** 2
    for audio in ("off", "on", "sem3"):
        protocol = dataclasses.replace(ProtocolConfig(), audio=audio)
        samples = audio_samples(protocol)
        print(
            f"  audio {audio:5s} {image_bytes + samples:6d}"
            f"  ({image_bytes} image + {samples} audio)"
        )


if __name__ == "__main__":
    main()
