"""``PROTOCOLS["spr"]``: SPR's own environment (mila-iqia/spr at 0b9dd4e,
src/rlpyt_atari_env.py), against that env's loop written out here on ale-py (real ALE)."""

from __future__ import annotations

import dataclasses

import ale_py
import cv2
import numpy as np
from ale_py import roms

from bench.env.atari import derive_seeds, make_atari
from bench.env.games import get_game
from bench.env.protocol import PROTOCOLS, ProtocolConfig, protocol_identity
from bench.suite.expand import protocol_id

SPR = PROTOCOLS["spr"]


class RlpytLoop:
    """rlpyt_atari_env.AtariEnv in training (episodic_lives): reset_game, a NOOP frame
    (_life_reset), 1..30 NOOP frames; a step plays all 4 frames, grabbing the screen after
    the 3rd and the 4th; a life loss then plays one NOOP frame and zeroes the stack and the
    3rd frame's screen; the image is the bilinear resize of the max of the two screens."""

    def __init__(self, game: str, seed: int) -> None:
        ale_seed, noop_seq, _ = derive_seeds(seed)  # the project's seeding, rlpyt's structure
        self.noop_rng = np.random.default_rng(noop_seq)
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale = ale_py.ALEInterface()
        self.ale.setInt("random_seed", ale_seed)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("frame_skip", 1)
        self.ale.loadROM(roms.get_rom_path(get_game(game).rom_id))
        self.actions = self.ale.getMinimalActionSet()
        self.obs = np.zeros((4, 84, 84), np.uint8)
        self.raw1 = np.zeros((210, 160), np.uint8)

    def _life_reset(self) -> None:
        self.ale.act(ale_py.Action.NOOP)
        self.lives = self.ale.lives()

    def _update_obs(self) -> np.ndarray:
        screen = np.maximum(self.raw1, self.ale.getScreenGrayscale())
        image = cv2.resize(screen, (84, 84), interpolation=cv2.INTER_LINEAR)
        self.obs = np.concatenate([self.obs[1:], image[None]])
        return self.obs.copy()

    def reset(self) -> tuple[np.ndarray, int]:
        self.ale.reset_game()
        self.obs[:] = 0
        self.raw1[:] = 0
        self._life_reset()
        noops = int(self.noop_rng.integers(1, 31))
        for _ in range(noops):
            self.ale.act(ale_py.Action.NOOP)
        return self._update_obs(), noops

    def step(self, a: int) -> tuple[np.ndarray, float, bool, bool]:
        reward = 0.0
        for _ in range(3):
            reward += self.ale.act(self.actions[a])
        self.raw1 = self.ale.getScreenGrayscale()
        reward += self.ale.act(self.actions[a])
        lives = self.ale.lives()
        lost_life = lives < self.lives and lives > 0
        if lost_life:
            self._life_reset()
            self.obs[:] = 0
            self.raw1[:] = 0
        return self._update_obs(), reward, self.ale.game_over(), lost_life


def test_spr_protocol_is_spr_s_env_loop() -> None:
    env = make_atari("Breakout", seed=3, protocol=SPR)
    ref = RlpytLoop("Breakout", 3)
    obs, info = env.reset()
    ref_obs, noops = ref.reset()
    assert info["noops"] == noops and 1 <= noops <= 30
    assert info["episode_frame_number"] == noops + 1  # the _life_reset NOOP frame
    np.testing.assert_array_equal(obs["image"], ref_obs)
    life_losses = resets = 0
    for step, a in enumerate(np.random.default_rng(1).integers(4, size=700).tolist()):
        obs, reward, terminated, _, info = env.step(a)
        ref_obs, ref_reward, game_over, lost_life = ref.step(a)
        np.testing.assert_array_equal(obs["image"], ref_obs, err_msg=f"step {step}")
        assert (reward, terminated) == (ref_reward, game_over)
        assert info["learn_terminal"] == (game_over or lost_life)
        if lost_life:
            life_losses += 1
            assert info["frames"] == 5  # all 4 frames of the skip, then the NOOP frame
            assert (obs["image"][:3] == 0).all()
        if terminated:
            resets += 1
            obs, info = env.reset()
            ref_obs, noops = ref.reset()
            np.testing.assert_array_equal(obs["image"], ref_obs)
    assert life_losses >= 4 and resets >= 1


def test_each_spr_field_changes_what_the_agent_sees() -> None:
    """resize, stop_at_life_loss and life_reset_noop, each against its other setting on the
    same seed and actions."""
    actions = np.random.default_rng(1).integers(4, size=300).tolist()

    def run(protocol: ProtocolConfig) -> tuple[list[np.ndarray], list[int], int]:
        env = make_atari("Breakout", seed=3, protocol=protocol)
        obs, info = env.reset()
        images, frames = [obs["image"][-1]], []
        first_frame = info["episode_frame_number"] - info["noops"]
        for a in actions:
            obs, _, terminated, _, info = env.step(a)
            images.append(obs["image"][-1])
            if info["life_loss"] and not terminated:
                frames.append(info["frames"])
            if terminated:
                break
        return images, frames, first_frame

    spr_images, spr_frames, spr_first = run(SPR)
    assert spr_first == 1 and set(spr_frames) == {5} and len(spr_frames) >= 2
    area, _, _ = run(dataclasses.replace(SPR, resize="area"))
    assert not np.array_equal(spr_images[0], area[0])
    stopping = run(dataclasses.replace(SPR, stop_at_life_loss=True))[1]
    assert min(stopping) < 5  # some life loss ends the skip before its 4th frame
    no_noop = run(dataclasses.replace(SPR, life_reset_noop=False))
    assert no_noop[2] == 0 and set(no_noop[1]) == {4}
    env = make_atari("Breakout", seed=3, protocol=SPR)
    obs, _ = env.reset()
    screen = env.ale.getScreenGrayscale()
    linear = cv2.resize(screen, (84, 84), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(obs["image"][-1], linear)
    assert not np.array_equal(linear, cv2.resize(screen, (84, 84), interpolation=cv2.INTER_AREA))


def test_new_fields_keep_existing_ids() -> None:
    """The fields count in a protocol's identity only away from the behaviour before them."""
    default = ProtocolConfig()
    identity = protocol_identity(dataclasses.asdict(default))
    assert not {"resize", "stop_at_life_loss", "life_reset_noop"} & set(identity)
    assert protocol_id(default) == "190cf9d9ac"  # as recorded before the fields existed
    for change in ({"resize": "linear"}, {"stop_at_life_loss": False}, {"life_reset_noop": True}):
        assert protocol_id(dataclasses.replace(default, **change)) != "190cf9d9ac"
    assert protocol_identity(dataclasses.asdict(SPR))["resize"] == "linear"
