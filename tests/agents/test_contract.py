import numpy as np
import pytest

from agents.protocol import ObsSpec
from agents.random_agent import RandomAgent, RandomConfig
from agents.registry import AgentEntry, get_agent, registered
from agents.testing import check_agent
from bench.core.config import override
from bench.core.safe_state import UnsafeStateError
from tests.agents.conftest import TINY

AUDIO = ObsSpec(num_actions=6, image_shape=(4, 84, 84), audio_shape=(4, 2048))


def test_value_agent_is_registered_with_presets():
    entry = get_agent("value")
    assert set(entry.presets) >= {"dqn", "der", "spr", "sr-spr", "bbf"}
    assert entry.default_preset == "bbf"
    assert entry.preset(None).replay_ratio == 2.0


@pytest.mark.parametrize("name", sorted(registered()))
def test_every_registered_agent_meets_the_contract(name):
    entry = registered()[name]
    config = None
    if name == "value":
        config = override(entry.preset("der"), TINY, where="test")
    check_agent(entry, config=config, steps=30)


@pytest.mark.parametrize("preset", ["dqn", "der", "spr", "sr-spr", "bbf"])
def test_value_presets_meet_the_contract(preset):
    entry = get_agent("value")
    changes = dict(TINY)
    if preset in ("bbf", "sr-spr"):
        changes.update(reset_interval=15, no_resets_after=10**9, spr_steps=2)
    if preset == "spr":
        changes.update(spr_steps=2)
    config = override(entry.preset(preset), changes, where="test")
    check_agent(entry, config=config, steps=25)


@pytest.mark.parametrize("preset", ["der", "bbf"])
def test_value_agent_with_audio_meets_the_contract(preset):
    entry = get_agent("value")
    config = override(entry.preset(preset), {**TINY, "spr_steps": 2}, where="test")
    check_agent(entry, config=config, obs_spec=AUDIO, steps=25)


def test_audio_changes_the_action_values():
    entry = get_agent("value")
    config = override(entry.preset("bbf"), TINY, where="test")
    agent = entry.make(config, obs_spec=AUDIO, seed=0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 4, 84, 84), dtype=np.uint8)
    import torch

    with torch.no_grad():
        lat = [
            agent.online.encode(
                agent._image(image), agent._audio(np.full((1, 4, 2048), v, np.uint8))
            )
            for v in (0, 255)
        ]
    assert lat[0].shape == (1, 10, 11, 11)  # 8 image channels (32 x 0.25) + 2 audio
    assert not torch.equal(lat[0], lat[1])


class _PicklingAgent(RandomAgent):
    """Keeps an arbitrary object in its state: loading it would need unpickling code."""

    def state_dict(self):
        return super().state_dict() | {"helper": RandomConfig()}

    def load_state_dict(self, state):
        super().load_state_dict({k: v for k, v in state.items() if k != "helper"})


def test_the_contract_refuses_state_that_a_checkpoint_could_not_hold_safely():
    entry = AgentEntry(
        name="pickling",
        config_cls=RandomConfig,
        factory=lambda config, *, obs_spec, seed, device: _PicklingAgent(
            config, obs_spec=obs_spec, seed=seed
        ),
    )
    with pytest.raises(
        UnsafeStateError, match=r"state\.helper is a agents\.random_agent\.RandomConfig"
    ):
        check_agent(entry, steps=5)
