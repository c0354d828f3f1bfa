"""A third-party agent (``tests.failing_agent:ENTRY``) that fails while a flag file exists."""

from __future__ import annotations

import os
from pathlib import Path

from agents.protocol import ObsSpec, Transition
from agents.random_agent import RandomAgent, RandomConfig
from agents.registry import AgentEntry

FLAG = "BENCH_TEST_FAIL_FLAG"


class FailingAgent(RandomAgent):
    def observe(self, transition: Transition) -> None:
        super().observe(transition)
        flag = os.environ.get(FLAG)
        if self._steps == 50 and flag and Path(flag).exists():
            raise RuntimeError("boom at step 50\nsecond line never shown")


def _make(config: RandomConfig, *, obs_spec: ObsSpec, seed: int, device: str = "cpu"):
    return FailingAgent(config, obs_spec=obs_spec, seed=seed)


ENTRY = AgentEntry(name="failing", config_cls=RandomConfig, factory=_make)
