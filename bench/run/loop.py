"""The run loop: one RunSpec, one training environment, one agent, written to the ledger.

A run is a pure function of its config and seed: the env, the agent and every evaluation
draw their seeds from the run's seed through numpy's SeedSequence, never from the clock.
Checkpoints hold the complete state (agent, env, counters, logs), so a killed run resumes
and finishes exactly as if it had never stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.protocol import Transition
from agents.registry import get_agent
from bench.core.config import from_mapping
from bench.run.ledger import Ledger, atomic_file, write_episodes, write_json
from bench.suite.expand import RunSpec

log = logging.getLogger("bench.run")

PROGRESS_EVERY = 500  # env steps between progress updates in status.json


def derive_seed(seed: int, *path: int) -> int:
    """A 32-bit seed for one consumer of randomness (env, agent, an evaluation) of a run."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


ENV_STREAM, AGENT_STREAM, EVAL_STREAM = 0, 1, 2


def execute(run_dir: str | Path) -> str:
    """Run (or resume) the run in ``run_dir`` to the end; return its final state.

    Safe to call concurrently from any number of processes: only the holder of the run's
    lock works on it; the others return at once. Errors are recorded in the ledger.
    """
    run_dir = Path(run_dir)
    ledger, run_id = Ledger(run_dir.parent.parent), run_dir.name
    with ledger.lock(run_id) as held:
        if not held:
            return "running"
        status = ledger.status(run_id)
        if status.state == "done":
            return "done"
        status.state, status.attempts, status.error = "running", status.attempts + 1, ""
        status.host = socket.gethostname()
        status.job_id = _job_id() or status.job_id
        ledger.write_status(run_id, status)
        handler = _file_log(run_dir / "run.log")
        try:
            spec = ledger.spec(run_id)
            log.info("run %s attempt %d on %s", run_id, status.attempts, status.host)

            def progress(step: int) -> None:
                status.env_step = step
                ledger.write_status(run_id, status)

            train(spec, run_dir, progress=progress)
            status.state, status.env_step = "done", spec.budget.env_steps
            log.info("run %s done", run_id)
        except Exception as e:  # recorded in the ledger, never lost in a worker's stderr
            log.error("run %s failed:\n%s", run_id, traceback.format_exc())
            status.state = "failed"
            status.error = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        finally:
            logging.getLogger("bench").removeHandler(handler)
            handler.close()
        ledger.write_status(run_id, status)
        return status.state


def _job_id() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


def _file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("bench")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def _batch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[None] for k, v in obs.items()}


def train(
    spec: RunSpec,
    run_dir: Path,
    *,
    progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
) -> None:
    """Train and evaluate ``spec``, resuming from ``run_dir/checkpoint.pt`` when present.

    ``stop_after`` ends the loop early after that env step (tests use it to simulate a kill
    right after a checkpoint).
    """
    import torch

    from bench.env.atari import make_atari

    torch.set_num_threads(max(1, spec.resources.cpus))
    entry = get_agent(spec.agent)
    config = from_mapping(entry.config_cls, spec.agent_config, where=f"{spec.run_id}.agent_config")
    env = make_atari(spec.game, seed=derive_seed(spec.seed, ENV_STREAM), protocol=spec.protocol)
    agent = entry.make(
        config, obs_spec=env.obs_spec(), seed=derive_seed(spec.seed, AGENT_STREAM), device="auto"
    )
    budget = spec.budget
    ckpt_path = run_dir / "checkpoint.pt"

    state: dict[str, Any]
    if ckpt_path.is_file():
        try:
            state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as e:  # torch raises several types for a damaged file
            raise RuntimeError(
                f"{ckpt_path} is unreadable ({type(e).__name__}); delete it to restart this run"
            ) from e
        agent.load_state_dict(state["agent"])
        env.set_state(state["env"])
        obs = state["obs"]
        log.info("resumed from env step %d", state["step"])
    else:
        obs, _ = env.reset()
        state = {"step": 0, "episode_return": 0.0, "episode_length": 0, "episodes": [],
                 "evals": []}  # fmt: skip

    step = state["step"]
    t0 = time.monotonic()
    while step < budget.env_steps:
        action = int(agent.act(_batch(obs), eval_mode=False)[0])
        next_obs, reward, terminated, truncated, info = env.step(action)
        episode_end = terminated or truncated
        agent.observe(
            Transition(
                obs=obs,
                action=action,
                reward=float(info["learn_reward"]),
                terminal=bool(info["learn_terminal"]),
                episode_end=episode_end,
                next_obs=next_obs,
            )
        )
        step += 1
        state["episode_return"] += float(reward)
        state["episode_length"] += 1
        if episode_end:
            state["episodes"].append((step, state["episode_return"], state["episode_length"]))
            state["episode_return"], state["episode_length"] = 0.0, 0
            obs, _ = env.reset()
        else:
            obs = next_obs

        if budget.eval_every and step % budget.eval_every == 0 and step < budget.env_steps:
            state["evals"].append(
                _evaluate(agent, spec, step, episodes=budget.eval_episodes, final=False)
            )
            _write_logs(run_dir, state)
        if progress is not None and step % PROGRESS_EVERY == 0:
            progress(step)
        if step % budget.checkpoint_every == 0 and step < budget.env_steps:
            state["step"] = step
            _checkpoint(ckpt_path, state, agent, env, obs)
            _write_logs(run_dir, state)
            if stop_after is not None and step >= stop_after:
                return
    elapsed = time.monotonic() - t0
    log.info("trained to env step %d (%.1f steps/s this attempt)", step, step / max(elapsed, 1e-9))
    state["step"] = step
    state["evals"].append(
        _evaluate(agent, spec, step, episodes=budget.final_eval_episodes, final=True)
    )
    _write_logs(run_dir, state)
    if ckpt_path.is_file():
        ckpt_path.unlink()


def _evaluate(agent: Any, spec: RunSpec, step: int, *, episodes: int, final: bool) -> dict:
    from bench.env.evaluation import evaluate

    results = evaluate(
        lambda obs: agent.act(obs, eval_mode=True),
        spec.game,
        protocol=spec.protocol,
        episodes=episodes,
        seed=derive_seed(spec.seed, EVAL_STREAM, step),
    )
    returns = [r.return_ for r in results]
    log.info("eval at %d: mean return %.2f over %d episodes", step, np.mean(returns), episodes)
    return {
        "env_step": step,
        "final": final,
        "returns": returns,
        "lengths": [r.length for r in results],
        "truncated": [r.truncated for r in results],
    }


def _checkpoint(path: Path, state: dict, agent: Any, env: Any, obs: dict) -> None:
    import torch

    with atomic_file(path) as f:
        torch.save(state | {"agent": agent.state_dict(), "env": env.get_state(), "obs": obs}, f)


def _write_logs(run_dir: Path, state: dict) -> None:
    write_json(run_dir / "evals.json", {"evals": state["evals"]})
    write_episodes(run_dir / "episodes.csv", state["episodes"])
