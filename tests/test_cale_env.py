"""Continuous actions (CALE) against ale-py's own ``AtariEnv(continuous=True)``."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import pytest

from bench.core.safe_state import round_trip
from bench.env.atari import (
    AtariEnv,
    check_cale_support,
    continuous_to_joystick,
    make_atari,
    version_tuple,
)
from bench.env.evaluation import evaluate
from bench.env.games import get_game
from bench.env.protocol import CALE_ACTION_HIGH, CALE_ACTION_LOW, ProtocolConfig

gym.register_envs(ale_py)
CALE = ProtocolConfig(actions="continuous")
# No-ops as emulator frames (the default before noop_unit existed): the mid-game states the
# emulator comparison below starts from, where the action grid reaches 18 outcomes.
CALE_FRAME_NOOPS = ProtocolConfig(actions="continuous", noop_unit="frame")


class Recorder:
    """Stands in for an ALEInterface: records every ``act`` and passes every call on."""

    def __init__(self, ale: ale_py.ALEInterface) -> None:
        self.ale = ale
        self.calls: list[tuple[int, float]] = []

    def act(self, action: ale_py.Action, strength: float = 1.0) -> int:
        self.calls.append((int(action.value), float(strength)))
        return self.ale.act(action, strength)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ale, name)


def ale_py_env(game: str, threshold: float = 0.5) -> gym.Env:
    env = gym.make(
        f"ALE/{get_game(game).name}-v5",
        continuous=True,
        continuous_action_threshold=threshold,
        frameskip=1,
        repeat_action_probability=0.0,
    )
    env.reset(seed=0)
    return env


def action_grid() -> list[np.ndarray]:
    """Radii, angles and fire values around the thresholds, the axes and the diagonals."""
    radii = (0.0, 0.3, 0.5, 0.50001, 0.6, 0.7072, 0.75, 1.0)
    angles = np.concatenate(
        [np.linspace(-np.pi, np.pi, 25), np.pi / 4 * np.array([-3, -1, 1, 3]) + 1e-4]
    )
    fires = (0.0, 0.3, 0.5, 0.51, 1.0)
    return [np.array([r, a, f], np.float32) for r in radii for a in angles for f in fires]


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_joystick_and_strength_are_ale_py_s_for_a_grid_of_actions(threshold: float) -> None:
    """Every act() our env makes equals the one ale-py's env makes for the same action."""
    # One emulator frame per step and no no-op starts: one act() per step in both envs.
    protocol = dataclasses.replace(
        CALE, continuous_threshold=threshold, frame_skip=1, max_pool_frames=1, noop_max=0
    )
    ours = make_atari("Breakout", seed=0, protocol=protocol)
    ours.reset()
    theirs = ale_py_env("Breakout", threshold)
    ours._ale = mine = Recorder(ours.ale)  # type: ignore[assignment]
    theirs.unwrapped.ale = ref = Recorder(theirs.unwrapped.ale)  # type: ignore[attr-defined]
    grid = action_grid()
    for action in grid:
        ours.step(action)
        theirs.step(action)
        if ours._needs_reset:
            ours.reset()
    assert len(ref.calls) == len(grid)
    assert mine.calls == ref.calls
    assert len({c[0] for c in ref.calls}) == 18  # the grid reaches every joystick action


@pytest.mark.parametrize("game", ["Frostbite", "Boxing", "Breakout"])
def test_a_step_leaves_the_emulator_as_ale_py_s_env_does(game: str) -> None:
    """From the same mid-game state, one agent step of ours and frame_skip steps of ale-py's
    frameskip-1 env give the same RAM and screen, for every action of the grid."""
    ours = make_atari(game, seed=1, protocol=CALE_FRAME_NOOPS)
    ours.reset()
    rng = np.random.default_rng(0)
    for _ in range(100):
        ours.step(rng.uniform(CALE_ACTION_LOW, CALE_ACTION_HIGH).astype(np.float32))
        if ours._needs_reset:
            ours.reset()
    start = ours.ale.cloneState(include_rng=True)
    theirs = ale_py_env(game).unwrapped
    outcomes = set()
    for action in action_grid()[::3]:
        ours.ale.restoreState(start)
        _, _, _, _, info = ours.step(action)
        theirs.ale.restoreState(start)
        for _ in range(info["frames"]):
            theirs.step(action)
        ram = ours.ale.getRAM()
        np.testing.assert_array_equal(ram, theirs.ale.getRAM())
        np.testing.assert_array_equal(ours.ale.getScreenRGB(), theirs.ale.getScreenRGB())
        outcomes.add(ram.tobytes())
    # The check can fail: the actions lead to many different emulator states (joystick
    # directions in Frostbite and Boxing, paddle strengths in Breakout).
    assert len(outcomes) >= (18 if game != "Breakout" else 5)


def test_action_space_and_spec_are_ale_py_s() -> None:
    env = make_atari("Pong", seed=0, protocol=CALE)
    box = ale_py_env("Pong").action_space
    assert env.action_space == box
    spec = env.obs_spec()
    assert spec.continuous and spec.num_actions == 0 and spec.action_dim == 3
    np.testing.assert_array_equal(np.array(spec.action_low, np.float32), box.low)
    np.testing.assert_array_equal(np.array(spec.action_high, np.float32), box.high)
    default = gym.make("ALE/Pong-v5", continuous=True).unwrapped
    assert ProtocolConfig().continuous_threshold == default.continuous_action_threshold


def test_bad_continuous_actions_are_refused() -> None:
    env = make_atari("Pong", seed=0, protocol=CALE)
    env.reset()
    with pytest.raises(ValueError, match="3 floats"):
        env.step(np.zeros(2, np.float32))


def test_passes_gymnasium_env_checker() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(make_atari("Pong", seed=0, protocol=CALE), skip_render_check=True)


@pytest.mark.parametrize("replay", [False, True])
def test_state_round_trip_resumes_exactly(replay: bool) -> None:
    """The continuous action log rebuilds the env (audio included) by replay."""
    protocol = dataclasses.replace(CALE, audio="on", max_episode_steps=60)
    rng = np.random.default_rng(6)
    actions = rng.uniform(CALE_ACTION_LOW, CALE_ACTION_HIGH, (140, 3)).astype(np.float32)
    env = make_atari("Assault", seed=2, protocol=protocol)
    env.reset()
    for a in actions[:40]:
        env.step(a)
    state = pickle.loads(pickle.dumps(env.get_state()))
    assert state["float_log"].shape == (40, 3)
    np.testing.assert_array_equal(state["float_log"], actions[:40])
    state = round_trip(state)  # through the checkpoint format

    def rest(e: AtariEnv) -> list[dict[str, np.ndarray]]:
        out = []
        for a in actions[40:]:
            obs, _, terminated, truncated, _ = e.step(a)
            out.append(obs)
            if terminated or truncated:
                out.append(e.reset()[0])
        return out

    expected = rest(env)
    fresh = make_atari("Assault", seed=9, protocol=protocol)
    fresh.set_state(state, replay=replay)
    for x, y in zip(expected, rest(fresh), strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
        if replay:
            np.testing.assert_array_equal(x["audio"], y["audio"])


def test_a_discrete_state_does_not_load_into_a_continuous_env() -> None:
    env = make_atari("Pong", seed=0)
    env.reset()
    env.step(1)
    state = round_trip(env.get_state())  # a checkpoint can hold it (no continuous actions)
    with pytest.raises(ValueError, match="protocol"):
        make_atari("Pong", seed=0, protocol=CALE).set_state(state)
    make_atari("Pong", seed=0).set_state(state)


def test_ale_py_before_0_12_is_refused_for_continuous_runs() -> None:
    assert version_tuple("0.12.1") == (0, 12, 1)
    assert version_tuple("0.12.0rc1") == (0, 12, 0)
    assert version_tuple("1.0") == (1, 0, 0)
    check_cale_support("0.12.0")
    with pytest.raises(RuntimeError, match=r"needs ale-py >= 0\.12\.0.*this is ale-py 0\.11\.2"):
        check_cale_support("0.11.2")


def test_evaluation_acts_in_float32_batches() -> None:
    protocol = dataclasses.replace(CALE, max_episode_steps=30)
    shapes = []

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        shapes.append(obs["image"].shape[0])
        return np.tile(np.array([1.0, np.pi, 1.0], np.float32), (shapes[-1], 1))

    results = evaluate(act, "Breakout", protocol=protocol, episodes=3, seed=0)
    assert [r.length for r in results] == [30, 30, 30] and shapes[0] == 3
    with pytest.raises(ValueError, match=r"expected float32 of shape \(2, 3\)"):
        evaluate(lambda o: np.zeros(2, np.int64), "Breakout", protocol=protocol, episodes=2, seed=0)


def test_continuous_to_joystick_directions() -> None:
    names = {
        (1.0, 0.0): "RIGHT",
        (1.0, np.pi / 2): "UP",
        (1.0, -np.pi / 2): "DOWN",
        (1.0, np.pi): "LEFT",
        (1.0, -3 * np.pi / 4): "DOWNLEFT",
        (1.0, 3 * np.pi / 4): "UPLEFT",
        (0.4, np.pi): "NOOP",
    }
    for (r, angle), name in names.items():
        action = continuous_to_joystick(np.array([r, angle, 0.0], np.float32), 0.5)
        assert action.name == name, (r, angle)
    fire = continuous_to_joystick(np.array([1.0, -3 * np.pi / 4, 0.9], np.float32), 0.5)
    assert fire.name == "DOWNLEFTFIRE"
