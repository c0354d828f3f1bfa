"""The agent contract as a reusable check: ``check_agent(entry)`` passes for any agent the
run loop can drive, in each action space it supports. Third-party agents call it from their
own tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.protocol import Agent, ObsSpec, Transition, single_action
from agents.registry import AgentEntry
from bench.core.safe_state import round_trip

EVAL_EPSILON = 0.001  # what the harness passes in eval mode (the protocol's eval_epsilon)
# Specs of each action space for the contract: 5 discrete actions, or 3 bounded floats
# shaped like CALE's (radius, angle, fire).
DISCRETE_SPEC = ObsSpec(num_actions=5)
CONTINUOUS_SPEC = ObsSpec.for_continuous((0.0, -math.pi, 0.0), (1.0, math.pi, 1.0))
SPECS = {"discrete": DISCRETE_SPEC, "continuous": CONTINUOUS_SPEC}


def synthetic_obs(
    rng: np.random.Generator, spec: ObsSpec, batch: int | None = None
) -> dict[str, np.ndarray]:
    """Random uint8 observations of ``spec``'s shapes (batched when ``batch`` is given)."""
    lead = () if batch is None else (batch,)
    obs = {"image": rng.integers(0, 256, lead + tuple(spec.image_shape), dtype=np.uint8)}
    if spec.audio_shape is not None:
        obs["audio"] = rng.integers(0, 256, lead + tuple(spec.audio_shape), dtype=np.uint8)
    return obs


def same_state(a: Any, b: Any, path: str = "state") -> None:
    """Raise AssertionError naming the first place where two states differ."""
    import torch

    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys differ"
        for k in a:
            same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, f"{path}: shapes differ"
        assert torch.equal(a.cpu(), b.cpu()), f"{path}: values differ"
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape, f"{path}: shapes differ"
        assert np.array_equal(a, b), f"{path}: values differ"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def drive(
    agent: Agent,
    spec: ObsSpec,
    rng: np.random.Generator,
    steps: int,
    *,
    episode_len: int = 23,
    life_every: int = 7,
    eval_every: int = 0,
) -> list[Any]:
    """Run ``steps`` training steps on a synthetic stream with life-loss terminals and
    episode ends (and an evaluation act every ``eval_every`` steps, on observations drawn
    from their own stream); returns the training actions taken (ints, or tuples of floats
    with continuous actions)."""
    actions: list[Any] = []
    obs = synthetic_obs(rng, spec)
    eval_rng = np.random.default_rng(12345)
    for t in range(steps):
        if eval_every and t % eval_every == 0:
            agent.act(synthetic_obs(eval_rng, spec, 2), eval_mode=True, epsilon=EVAL_EPSILON)
        action = single_action(agent.act({k: v[None] for k, v in obs.items()}, eval_mode=False))
        actions.append(tuple(action.tolist()) if isinstance(action, np.ndarray) else action)
        nxt = synthetic_obs(rng, spec)
        episode_end = (t + 1) % episode_len == 0
        terminal = episode_end or (t + 1) % life_every == 0
        agent.observe(
            Transition(
                obs=obs,
                action=action,
                reward=float(rng.normal()),
                terminal=terminal,
                episode_end=episode_end,
                next_obs=nxt,
            )
        )
        obs = synthetic_obs(rng, spec) if episode_end else nxt
    return actions


def check_agent(
    entry: AgentEntry,
    *,
    config: Any = None,
    obs_spec: ObsSpec | None = None,
    steps: int = 40,
    seed: int = 0,
) -> None:
    """The contract: act shapes, dtypes and ranges in both modes, eval acting leaves the
    state alone, observe, float metrics, and a state round trip through the checkpoint
    format that continues identically. ``obs_spec`` picks the action space (by default the
    first the agent supports: ``DISCRETE_SPEC`` or ``CONTINUOUS_SPEC``)."""
    spec = obs_spec or SPECS[entry.action_kinds[0]]
    config = entry.preset(None) if config is None else config
    agent = entry.make(config, obs_spec=spec, seed=seed, device="cpu")
    rng = np.random.default_rng(seed)
    for eval_mode in (False, True):
        for batch in (1, 3):
            eps = EVAL_EPSILON if eval_mode else None
            acts = agent.act(synthetic_obs(rng, spec, batch), eval_mode=eval_mode, epsilon=eps)
            check_actions(acts, spec)

    # Evaluation acting must not move training: same actions and metrics with and without.
    twin = entry.make(config, obs_spec=spec, seed=seed, device="cpu")
    twin.load_state_dict(agent.state_dict())
    stream = np.random.SeedSequence(seed + 3)
    plain = drive(agent, spec, np.random.default_rng(stream), steps)
    mixed = drive(twin, spec, np.random.default_rng(stream), steps, eval_every=3)
    assert plain == mixed, "evaluation acts changed the training actions"
    assert agent.metrics() == twin.metrics(), "evaluation acts changed the training metrics"

    metrics = agent.metrics()
    assert isinstance(metrics, dict)
    for k, v in metrics.items():
        assert isinstance(k, str) and type(v) is float and math.isfinite(v), (k, v)

    other = entry.make(config, obs_spec=spec, seed=seed + 1, device="cpu")
    # Through the checkpoint format: tensors, arrays and plain data only (no code on load).
    other.load_state_dict(round_trip(agent.state_dict()))
    same_state(agent.state_dict(), other.state_dict(), "state after load")
    stream = np.random.SeedSequence(seed + 7)
    a1 = drive(agent, spec, np.random.default_rng(stream), steps)
    a2 = drive(other, spec, np.random.default_rng(stream), steps)
    assert a1 == a2, "actions diverged after a state round trip"
    same_state(agent.state_dict(), other.state_dict(), "state after continuing")


def check_actions(acts: Any, spec: ObsSpec) -> None:
    """A batch of actions of the spec's kind: int64 indices below ``num_actions``, or
    float32 rows of ``action_dim`` within the bounds."""
    assert isinstance(acts, np.ndarray), f"act returned {type(acts)}"
    batch = len(acts)
    if spec.continuous:
        shape = (batch, spec.action_dim)
        assert acts.shape == shape and acts.dtype == np.float32, (acts.shape, acts.dtype)
        low = np.array(spec.action_low, np.float32)
        high = np.array(spec.action_high, np.float32)
        assert ((acts >= low) & (acts <= high)).all(), acts
    else:
        assert acts.shape == (batch,) and acts.dtype == np.int64, (acts.shape, acts.dtype)
        assert ((acts >= 0) & (acts < spec.num_actions)).all(), acts
