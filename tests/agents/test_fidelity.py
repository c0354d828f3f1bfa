"""The fidelity options: each preset matches the reference code behind its published runs,
and each quirk is a field whose other setting makes these tests fail (agents/README.md,
"Fidelity", lists the reference file and line of each)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.protocol import ObsSpec
from agents.registry import get_agent
from agents.value import PRESETS, ValueConfig
from bench.core.config import override
from tests.agents.conftest import TINY

SPEC = ObsSpec(num_actions=4)


def tiny(preset: str, **changes: object) -> ValueConfig:
    return override(PRESETS[preset], {**TINY, **changes}, where="test")


def images(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(seed).integers(0, 256, (n, 4, 84, 84), np.uint8)}


# -- evaluation epsilon: the protocol's, passed by the harness ----------------------------
def test_evaluation_acts_with_the_epsilon_it_is_given():
    agent = get_agent("value").make(tiny("bbf"), obs_spec=SPEC, seed=0)
    obs = images(64)
    greedy = agent.act(obs, eval_mode=True, epsilon=0.0)
    assert (agent.act(obs, eval_mode=True, epsilon=0.0) == greedy).all()
    random = agent.act(obs, eval_mode=True, epsilon=1.0)
    assert (random != greedy).mean() > 0.5
    with pytest.raises(ValueError, match="eval_epsilon"):
        agent.act(obs, eval_mode=True)
    assert "epsilon_eval" not in {f.name for f in dataclasses.fields(ValueConfig)}
