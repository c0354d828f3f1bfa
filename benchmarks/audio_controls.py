"""What each audio condition feeds the agent: `python benchmarks/audio_controls.py [--steps N]`.

Plays the same seeded random actions under protocol audio on, silent, shuffled and
image_off for SEM3's games (Assault, RoadRunner, Amidar) and prints, per game and mode: the
share of steps whose newest audio entry is not silence, the mean |sample - 128| of the
entries, the share of non-zero image pixels, and for "shuffled" the share of entries equal
to an earlier true entry of the same run ("on" with the same seed and actions) and to the
true entry of their own step. Then the parameter counts of the sem3 preset (18 actions) per
encoder and fusion, equal across on/silent/shuffled/image_off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.audio import AUDIO_ENCODERS, AUDIO_FUSIONS  # noqa: E402
from agents.protocol import ObsSpec  # noqa: E402
from agents.value import SEM3, parameter_counts  # noqa: E402
from bench.core.config import override  # noqa: E402
from bench.env.atari import SILENCE, make_atari  # noqa: E402
from bench.env.protocol import FULL_AUDIO_MODES, ProtocolConfig  # noqa: E402

GAMES = ("Assault", "RoadRunner", "Amidar")


def play(game: str, mode: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Newest audio entries (steps + resets, S) and images of a seeded random-action run."""
    protocol = ProtocolConfig(audio=mode, noop_max=0, max_episode_steps=500)
    env = make_atari(game, seed=11, protocol=protocol)
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    audio, images = [obs["audio"][-1]], [obs["image"][-1]]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.num_actions)))
        audio.append(obs["audio"][-1])
        images.append(obs["image"][-1])
        if terminated or truncated:
            obs, _ = env.reset()
            audio.append(obs["audio"][-1])
            images.append(obs["image"][-1])
    return np.stack(audio), np.stack(images)


def shuffled_origin(true: np.ndarray, shuffled: np.ndarray) -> tuple[float, float]:
    """(share of shuffled entries equal to an earlier true entry or, first, silence; share
    equal to their own step's true entry)."""
    earlier = own = 0
    for t, entry in enumerate(shuffled):
        past = true[:t] if t else np.full((1, true.shape[1]), SILENCE, np.uint8)
        earlier += bool((past == entry).all(axis=1).any())
        own += bool(np.array_equal(entry, true[t]))
    return earlier / len(true), own / len(true)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    print(
        "| game | mode | non-silent steps | mean abs(x-128) | non-zero pixels "
        "| shuffled: earlier true / own step |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for game in GAMES:
        runs = {m: play(game, m, args.steps) for m in FULL_AUDIO_MODES}
        for mode, (audio, images) in runs.items():
            level = np.abs(audio.astype(float) - SILENCE).mean()
            loud = (audio != SILENCE).any(axis=1).mean()
            origin = ""
            if mode == "shuffled":
                origin = "{:.3f} / {:.3f}".format(*shuffled_origin(runs["on"][0], audio))
            pixels = (images > 0).mean()
            print(f"| {game} | {mode} | {loud:.3f} | {level:.2f} | {pixels:.3f} | {origin} |")
    print()
    specs = {
        m: make_atari("RoadRunner", seed=0, protocol=ProtocolConfig(audio=m)).obs_spec()
        for m in FULL_AUDIO_MODES
    }
    spec = specs["on"]
    assert all(s == spec for s in specs.values())
    print(
        "| sem3 preset, RoadRunner (18 actions) | audio_encoder | projection | predictor "
        "| head | total |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    v = parameter_counts(SEM3, ObsSpec(num_actions=spec.num_actions))
    print(
        f"| audio off (video only) | 0 | {v['projection']:,} | {v['predictor']:,} "
        f"| {v['head']:,} | {v['total']:,} |"
    )
    for encoder in AUDIO_ENCODERS:
        for fusion in AUDIO_FUSIONS:
            config = override(
                SEM3, {"audio_encoder": encoder, "audio_fusion": fusion}, where="benchmark"
            )
            counts = {m: parameter_counts(config, s) for m, s in specs.items()}
            assert all(c == counts["on"] for c in counts.values())
            c = counts["on"]
            print(
                f"| {encoder} / {fusion} (on = silent = shuffled = image_off) "
                f"| {c['audio_encoder']:,} | {c['projection']:,} | {c['predictor']:,} "
                f"| {c['head']:,} | {c['total']:,} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
