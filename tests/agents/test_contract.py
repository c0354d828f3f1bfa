import numpy as np
import pytest

from agents.protocol import ObsSpec
from agents.random_agent import RandomAgent, RandomConfig
from agents.registry import AgentEntry, get_agent, registered
from agents.testing import SPECS, check_agent
from bench.core.config import override
from bench.core.safe_state import UnsafeStateError
from tests.agents.conftest import TINY

AUDIO = ObsSpec(num_actions=6, image_shape=(4, 84, 84), audio_shape=(4, 2048))


def test_value_agent_is_registered_with_presets():
    entry = get_agent("value")
    assert set(entry.presets) >= {"dqn", "der", "spr", "sr-spr", "bbf"}
    assert entry.default_preset == "bbf"
    assert entry.preset(None).replay_ratio == 2.0


AGENT_KINDS = [(name, kind) for name, e in sorted(registered().items()) for kind in e.action_kinds]


@pytest.mark.parametrize(("name", "kind"), AGENT_KINDS)
def test_every_registered_agent_meets_the_contract_in_each_action_space(name, kind):
    entry = registered()[name]
    config = None
    if name == "value":
        config = override(entry.preset("der"), TINY, where="test")
    if name in ("sac", "dreamer"):
        config = entry.preset("tiny")
    check_agent(entry, config=config, obs_spec=SPECS[kind], steps=30)


def test_both_action_spaces_are_covered():
    assert {kind for _, kind in AGENT_KINDS} == {"discrete", "continuous"}


class _Float64Agent(RandomAgent):
    """Continuous actions of the wrong dtype."""

    def act(self, obs, *, eval_mode, epsilon=None):
        return super().act(obs, eval_mode=eval_mode, epsilon=epsilon).astype(np.float64)


class _OutOfBoundsAgent(RandomAgent):
    def act(self, obs, *, eval_mode, epsilon=None):
        return super().act(obs, eval_mode=eval_mode, epsilon=epsilon) + np.float32(2.0)


@pytest.mark.parametrize(
    ("cls", "message"), [(_Float64Agent, "float64"), (_OutOfBoundsAgent, r"\[\[")]
)
def test_the_contract_catches_bad_continuous_actions(cls, message):
    entry = AgentEntry(
        name="bad",
        config_cls=RandomConfig,
        factory=lambda config, *, obs_spec, seed, device: cls(config, obs_spec=obs_spec, seed=seed),
        action_kinds=("continuous",),
    )
    with pytest.raises(AssertionError, match=message):
        check_agent(entry, steps=5)


def test_an_agent_is_not_made_for_an_action_space_it_does_not_support():
    from bench.core.errors import BenchError

    with pytest.raises(BenchError, match="agent 'value' supports discrete actions only"):
        get_agent("value").make(
            override(get_agent("value").preset("der"), TINY, where="test"),
            obs_spec=SPECS["continuous"],
            seed=0,
        )


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
