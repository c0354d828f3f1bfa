"""End to end: a small DER-like preset learns a tiny deterministic task on CPU."""

import numpy as np

from agents.protocol import ObsSpec, Transition
from agents.registry import get_agent
from bench.core.config import override

LENGTH = 6  # states 0..5; reward 1 and a terminal on reaching state 5
CAP = 15  # env steps before truncation (an episode end that is not a terminal)


class Chain:
    """Action 1 moves right, action 0 moves left (clamped at 0). The image shows the
    state as a bright vertical band; frames are stacked newest last, zero-filled at reset."""

    def __init__(self):
        self.stack = np.zeros((4, 84, 84), np.uint8)

    def frame(self):
        f = np.zeros((84, 84), np.uint8)
        f[:, self.state * 14 : self.state * 14 + 14] = 255
        return f

    def reset(self):
        self.state, self.t = 0, 0
        self.stack[:] = 0
        self.stack[-1] = self.frame()
        return {"image": self.stack.copy()}

    def step(self, action):
        self.state = min(self.state + 1, LENGTH - 1) if action == 1 else max(self.state - 1, 0)
        self.t += 1
        self.stack = np.roll(self.stack, -1, axis=0)
        self.stack[-1] = self.frame()
        terminal = self.state == LENGTH - 1
        return {"image": self.stack.copy()}, float(terminal), terminal, terminal or self.t >= CAP


def greedy_return(agent, env):
    obs, total = env.reset(), 0.0
    for _ in range(CAP):
        action = int(agent.act({"image": obs["image"][None]}, eval_mode=True, epsilon=0.001)[0])
        obs, reward, _, end = env.step(action)
        total += reward
        if end:
            return total, env.t
    return total, env.t


def test_small_der_learns_a_chain():
    entry = get_agent("value")
    cfg = override(
        entry.preset("der"),
        {
            "width_scale": 0.25,
            "hidden_dim": 32,
            "batch_size": 16,
            "learning_starts": 200,
            "n_step": 3,
            "n_step_start": 3,
            "target_period": 100,
            "epsilon_decay_steps": 300,
            "epsilon_end": 0.05,
            "learning_rate": 1e-3,
            "replay_capacity": 5_000,
        },
        where="test",
    )
    spec = ObsSpec(num_actions=2)
    agent = entry.make(cfg, obs_spec=spec, seed=0)
    env, eval_env = Chain(), Chain()
    untrained = greedy_return(agent, eval_env)
    obs = env.reset()
    solved_at = None
    for step in range(1, 2_001):
        action = int(agent.act({"image": obs["image"][None]}, eval_mode=False)[0])
        nxt, reward, terminal, end = env.step(action)
        agent.observe(Transition(obs, action, reward, terminal, end, nxt))
        obs = env.reset() if end else nxt
        if step % 100 == 0 and step > 200 and greedy_return(agent, eval_env) == (1.0, 5):
            solved_at = step
            break
    assert untrained != (1.0, 5)
    assert solved_at is not None, f"not solved in 2,000 steps ({agent.metrics()})"
