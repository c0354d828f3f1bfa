"""Shared fixtures of the agent tests: tiny configs so the whole suite runs in minutes."""

import pytest
import torch

# Small configs make thread start-up dominate; one thread keeps timings steady on 2 cores.
torch.set_num_threads(1)

TINY = {
    "width_scale": 0.25,
    "hidden_dim": 32,
    "batch_size": 4,
    "learning_starts": 12,
    "replay_capacity": 500,
    "replay_ratio": 1.0,
    "epsilon_decay_steps": 20,
    "diagnostic_batch": 8,  # the diagnostics' forward passes, at every metrics() call
}


@pytest.fixture
def tiny():
    return dict(TINY)
