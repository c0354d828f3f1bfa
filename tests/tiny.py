"""Small suites shared by the tests that train a real agent for a few hundred steps."""

from __future__ import annotations


def tiny_der_suite(name: str, *, seed: int, eval_every: int, final_episodes: int = 2) -> str:
    """A DER agent shrunk to train 600 Breakout steps in seconds, logging every 100 steps and
    checkpointing every 250."""
    return f"""
name: {name}
games: [Breakout]
seeds: [{seed}]
variants:
  - name: der-tiny
    agent: value
    preset: der
    overrides: {{hidden_dim: 32, width_scale: 0.25, batch_size: 4, replay_ratio: 0.5,
                learning_starts: 100, epsilon_decay_steps: 200}}
budget: {{env_steps: 600, eval_every: {eval_every}, eval_episodes: 1,
         final_eval_episodes: {final_episodes}, checkpoint_every: 250, log_every: 100}}
protocol: {{max_episode_steps: 200}}
"""
