"""The run loop resumes a learning agent with audio exactly, from a mid-run checkpoint."""

from __future__ import annotations

import json

from bench.run import loop
from bench.run.ledger import Ledger
from bench.run.loop import execute
from bench.suite.expand import expand
from bench.suite.load import load_suite

SUITE = """
name: resume
games: [Assault]
seeds: [3]
variants:
  - name: der-tiny
    agent: value
    preset: der
    overrides: {hidden_dim: 32, width_scale: 0.25, batch_size: 4, replay_ratio: 0.5,
                learning_starts: 100, epsilon_decay_steps: 200}
axes:
  audio: [on]
budget: {env_steps: 600, eval_every: 300, eval_episodes: 1, final_eval_episodes: 2,
         checkpoint_every: 250}
protocol: {max_episode_steps: 200}
"""


def test_interrupted_run_resumes_exactly(write_suite, tmp_path):
    (spec,) = expand(load_suite(write_suite(SUITE)))
    clean, cut = Ledger(tmp_path / "clean"), Ledger(tmp_path / "cut")
    for ledger in (clean, cut):
        ledger.prepare([spec])
    assert execute(clean.run_dir(spec.run_id)) == "done"

    run_dir = cut.run_dir(spec.run_id)
    run = loop.start(spec, run_dir)  # killed right after the first checkpoint, at step 250:
    while run.state.step < 250:
        loop.advance(run)
    run.close()
    assert (run_dir / "checkpoint.pt").is_file()
    assert cut.evals(spec.run_id) == []
    assert execute(run_dir) == "done"
    assert "resumed from env step 250" in (run_dir / "run.log").read_text()

    assert cut.evals(spec.run_id) == clean.evals(spec.run_id)
    assert [e["env_step"] for e in cut.evals(spec.run_id)] == [300, 600]
    episodes = (run_dir / "episodes.csv").read_text()
    assert episodes == (clean.run_dir(spec.run_id) / "episodes.csv").read_text()
    assert len(episodes.splitlines()) >= 3  # episodes are capped at 200 steps


RANDOM_SUITE = """
name: eps
games: [Pong]
seeds: [0]
variants:
  - {name: random, agent: random}
budget: {env_steps: 10, eval_every: 0, eval_episodes: 1, final_eval_episodes: 1,
         checkpoint_every: 10, log_every: 0}
protocol: {max_episode_steps: 5, eval_epsilon: 0.37}
"""


def test_evaluation_acts_with_the_protocols_epsilon(write_suite, tmp_path):
    """The protocol's eval_epsilon (recorded with the run) is what evaluation acts with."""
    (spec,) = expand(load_suite(write_suite(RANDOM_SUITE)))
    ledger = Ledger(tmp_path / "ledger")
    ledger.prepare([spec])
    run = loop.start(spec, ledger.run_dir(spec.run_id))
    seen: list[float | None] = []
    act = run.agent.act

    def spy(obs, *, eval_mode, epsilon=None):
        seen.append(epsilon)
        return act(obs, eval_mode=eval_mode, epsilon=epsilon)

    run.agent.act = spy  # type: ignore[method-assign]
    loop.evaluate_now(run, final=False)
    run.close()
    assert seen and set(seen) == {0.37}


SAC_SUITE = """
name: resume-sac
games: [Breakout]
seeds: [1]
variants:
  - name: sac-tiny
    agent: sac
    preset: tiny
    protocol: {actions: continuous, clip_rewards: false}
axes:
  audio: [on]
budget: {env_steps: 240, eval_every: 120, eval_episodes: 1, final_eval_episodes: 2,
         checkpoint_every: 100, log_every: 50}
protocol: {max_episode_steps: 70}
"""


def test_interrupted_sac_run_with_continuous_actions_resumes_exactly(write_suite, tmp_path):
    (spec,) = expand(load_suite(write_suite(SAC_SUITE)))
    assert spec.protocol.actions == "continuous"
    clean, cut = Ledger(tmp_path / "clean"), Ledger(tmp_path / "cut")
    for ledger in (clean, cut):
        ledger.prepare([spec])
    assert execute(clean.run_dir(spec.run_id)) == "done"

    run_dir = cut.run_dir(spec.run_id)
    run = loop.start(spec, run_dir)  # killed right after the first checkpoint, at step 100:
    while run.state.step < 100:
        loop.advance(run)
    run.close()
    assert run.agent.metrics()["grad_steps"] > 50  # learning was under way
    assert execute(run_dir) == "done"
    assert "resumed from env step 100" in (run_dir / "run.log").read_text()

    assert cut.evals(spec.run_id) == clean.evals(spec.run_id)
    assert [e["env_step"] for e in cut.evals(spec.run_id)] == [120, 240]
    for name in ("episodes.csv", "metrics.jsonl"):
        mine, theirs = run_dir / name, clean.run_dir(spec.run_id) / name
        if name == "metrics.jsonl":  # steps_per_s is wall-clock
            strip = lambda p: [  # noqa: E731
                {k: v for k, v in json.loads(line).items() if k != "steps_per_s"}
                for line in p.read_text().splitlines()
            ]
            assert strip(mine) == strip(theirs)
        else:
            assert mine.read_text() == theirs.read_text()
