"""The run loop: one RunSpec, one training environment, one agent, written to the ledger.

A run goes through named phases on a typed state:

  start       build the env and the agent; resume from ``checkpoint.pt`` when there is one
  train_step  one env step: act, step the env, let the agent observe (and learn)
  log         every ``budget.log_every`` steps, the agent's metrics to the training log
  evaluate    every ``budget.eval_every`` steps, protocol evaluation episodes
  checkpoint  every ``budget.checkpoint_every`` steps, the complete state for exact resume
  finish      the final evaluation; the checkpoint is removed

A run is a pure function of its config and seed (``bench.core.seeding``). Checkpoints hold
the complete state (agent, env, loop counters, logs), so a killed run resumes and finishes
exactly as if it had never stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.protocol import Agent, Transition, single_action
from agents.registry import get_agent
from bench.core.config import from_mapping
from bench.core.seeding import Stream, derive_seed
from bench.env.atari import AtariEnv, make_atari
from bench.env.evaluation import evaluate
from bench.run import checkpoint as checkpoints
from bench.run.ledger import Ledger, write_episodes, write_json
from bench.run.status import State
from bench.run.training_log import LogOptions, TrainingLog
from bench.suite.expand import RunSpec

log = logging.getLogger("bench.run")

PROGRESS_EVERY = 500  # env steps between progress updates in status.json
NO_SINKS = LogOptions()  # metrics.jsonl only


@dataclass
class TrainState:
    """What the loop keeps between steps; the agent and the env keep the rest."""

    step: int = 0  # env steps taken
    episode_return: float = 0.0  # raw return of the training episode under way
    episode_length: int = 0
    episodes: list[tuple[int, float, int]] = field(default_factory=list)  # (end step, ret, len)
    evals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> TrainState:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass
class Run:
    """A run in progress: its spec, folder, env, agent and loop state."""

    spec: RunSpec
    run_dir: Path
    env: AtariEnv
    agent: Agent
    obs: dict[str, np.ndarray]
    state: TrainState
    training_log: TrainingLog
    progress: Callable[[int], None] | None = None
    clock: tuple[int, float] = (0, 0.0)  # (step, monotonic time) of the last metrics record

    @property
    def training_done(self) -> bool:
        return self.state.step >= self.spec.budget.env_steps

    def due(self, every: int) -> bool:
        """True on every ``every``-th step before the last (the last step has ``finish``)."""
        return bool(every) and self.state.step % every == 0 and not self.training_done

    def close(self) -> None:
        self.training_log.close()


# ---------------------------------------------------------------- phases


def start(
    spec: RunSpec,
    run_dir: Path,
    *,
    options: LogOptions = NO_SINKS,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Build the run's env and agent, resuming from its checkpoint when there is one."""
    torch.set_num_threads(max(1, spec.resources.cpus))
    entry = get_agent(spec.agent)
    config: Any = from_mapping(
        entry.config_cls, spec.agent_config, where=f"{spec.run_id}.agent_config"
    )
    env = make_atari(spec.game, seed=derive_seed(spec.seed, Stream.ENV), protocol=spec.protocol)
    agent = entry.make(
        config, obs_spec=env.obs_spec(), seed=derive_seed(spec.seed, Stream.AGENT), device="auto"
    )
    saved = checkpoints.load(run_dir)
    if saved is None:
        obs, state = env.reset()[0], TrainState()
    else:
        agent.load_state_dict(saved["agent"])
        env.set_state(saved["env"])
        obs, state = saved["obs"], TrainState.from_checkpoint(saved)
        log.info("resumed from env step %d", state.step)
    training_log = TrainingLog(
        run_dir, resume_step=state.step, options=options, config=spec.to_json()
    )
    run = Run(
        spec=spec,
        run_dir=run_dir,
        env=env,
        agent=agent,
        obs=obs,
        state=state,
        training_log=training_log,
        progress=progress,
    )
    run.clock = (state.step, time.monotonic())
    return run


def train_step(run: Run) -> None:
    """One env step: act, step the env, record the transition; the agent learns inside."""
    obs, state = run.obs, run.state
    action = single_action(run.agent.act({k: v[None] for k, v in obs.items()}, eval_mode=False))
    next_obs, reward, terminated, truncated, info = run.env.step(action)
    episode_end = bool(terminated or truncated)
    run.agent.observe(
        Transition(
            obs=obs,
            action=action,
            reward=float(info["learn_reward"]),
            terminal=bool(info["learn_terminal"]),
            episode_end=episode_end,
            next_obs=next_obs,
        )
    )
    state.step += 1
    state.episode_return += float(reward)
    state.episode_length += 1
    if episode_end:
        state.episodes.append((state.step, state.episode_return, state.episode_length))
        state.episode_return, state.episode_length = 0.0, 0
        run.obs = run.env.reset()[0]
    else:
        run.obs = next_obs
    if run.progress is not None and state.step % PROGRESS_EVERY == 0:
        run.progress(state.step)


def log_metrics(run: Run) -> None:
    """The agent's metrics and the loop's speed since the last record."""
    step, now = run.state.step, time.monotonic()
    last_step, last_time = run.clock
    speed = (step - last_step) / max(now - last_time, 1e-9)
    run.training_log.write(step, {**run.agent.metrics(), "steps_per_s": speed})
    run.clock = (step, now)


def evaluate_now(run: Run, *, final: bool) -> None:
    """Protocol evaluation of the agent at the current step; the ledger's logs are updated."""
    budget, spec, step = run.spec.budget, run.spec, run.state.step
    episodes = budget.final_eval_episodes if final else budget.eval_episodes
    results = evaluate(
        lambda obs: run.agent.act(obs, eval_mode=True, epsilon=spec.protocol.eval_epsilon),
        spec.game,
        protocol=spec.protocol,
        episodes=episodes,
        seed=derive_seed(spec.seed, Stream.EVAL, step),
    )
    returns = [r.return_ for r in results]
    log.info("eval at %d: mean return %.2f over %d episodes", step, np.mean(returns), episodes)
    run.state.evals.append(
        {
            "env_step": step,
            "final": final,
            "returns": returns,
            "lengths": [r.length for r in results],
            "truncated": [r.truncated for r in results],
        }
    )
    _write_logs(run)


def checkpoint(run: Run) -> None:
    """The complete state, as a safe state file; the previous checkpoint is kept."""
    payload = asdict(run.state) | {
        "agent": run.agent.state_dict(),
        "env": run.env.get_state(),
        "obs": run.obs,
    }
    checkpoints.save(run.run_dir, payload)
    _write_logs(run)


def advance(run: Run) -> None:
    """One env step through every phase that falls due at it."""
    train_step(run)
    budget = run.spec.budget
    if run.due(budget.log_every):
        log_metrics(run)
    if run.due(budget.eval_every):
        evaluate_now(run, final=False)
    if run.due(budget.checkpoint_every):
        checkpoint(run)


def finish(run: Run) -> None:
    """The final evaluation and training record; the checkpoint is no longer needed."""
    if run.spec.budget.log_every:
        log_metrics(run)
    evaluate_now(run, final=True)
    checkpoints.remove(run.run_dir)


def train(
    spec: RunSpec,
    run_dir: Path,
    *,
    options: LogOptions = NO_SINKS,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Train and evaluate ``spec`` to the end, resuming from its checkpoint when present."""
    run = start(spec, run_dir, options=options, progress=progress)
    try:
        first, t0 = run.state.step, time.monotonic()
        while not run.training_done:
            advance(run)
        speed = (run.state.step - first) / max(time.monotonic() - t0, 1e-9)
        log.info("trained to env step %d (%.1f steps/s this attempt)", run.state.step, speed)
        finish(run)
    finally:
        run.close()


# ---------------------------------------------------------------- one run, recorded


def execute(run_dir: str | Path, options: LogOptions = NO_SINKS) -> State:
    """Run (or resume) the run in ``run_dir`` to the end; return its final state.

    Safe to call concurrently from any number of processes: only the holder of the run's
    lock works on it; the others return at once. Errors are recorded in the ledger.
    """
    run_dir = Path(run_dir)
    ledger, run_id = Ledger(run_dir.parent.parent), run_dir.name
    with ledger.lock(run_id) as held:
        if not held:
            return State.RUNNING
        status = ledger.status(run_id)
        if status.state == State.DONE or ledger.has_final(run_id):
            if status.state != State.DONE:  # killed between the final evaluation and here
                status.state, status.env_step = State.DONE, status.env_steps
                ledger.write_status(run_id, status)
            return State.DONE
        status.state, status.attempts, status.error = State.RUNNING, status.attempts + 1, ""
        status.host = socket.gethostname()
        status.job_id = _job_id() or status.job_id
        ledger.write_status(run_id, status)
        with _file_log(run_dir / "run.log"):
            try:
                spec = ledger.spec(run_id)
                log.info("run %s attempt %d on %s", run_id, status.attempts, status.host)

                def progress(step: int) -> None:
                    status.env_step = step
                    ledger.write_status(run_id, status)

                train(spec, run_dir, options=options, progress=progress)
                status.state, status.env_step = State.DONE, spec.budget.env_steps
                log.info("run %s done", run_id)
            except Exception as e:  # recorded in the ledger, never lost in a worker's stderr
                if (stop := _exit_behind(e)) is not None:
                    raise stop from e  # the process was told to stop: the run did not fail
                log.error("run %s failed:\n%s", run_id, traceback.format_exc())
                status.state = State.FAILED
                status.error = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        ledger.write_status(run_id, status)
        return status.state


def _exit_behind(error: BaseException) -> BaseException | None:
    """The SystemExit or KeyboardInterrupt that a library turned into ``error`` (a signal
    handler's exit raised inside C++ code that called back into Python), if any."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if not isinstance(cause, Exception):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _job_id() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


@contextmanager
def _file_log(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("bench")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def _write_logs(run: Run) -> None:
    write_json(run.run_dir / "evals.json", {"evals": run.state.evals})
    write_episodes(run.run_dir / "episodes.csv", run.state.episodes)
