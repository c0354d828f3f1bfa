"""Training is recorded: metrics.jsonl one line per logging interval, TensorBoard event files
that TensorBoard's own reader loads, and a killed run that resumes its series without
duplicates or gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bench.cli.main import main
from bench.core.errors import BenchError
from bench.run import loop
from bench.run.ledger import Ledger
from bench.run.training_log import JsonlSink, LogOptions, read_metrics
from bench.suite.expand import expand
from bench.suite.load import load_suite
from tests.tiny import tiny_der_suite

SUITE = tiny_der_suite("logged", seed=1, eval_every=0, final_episodes=1)
STEPS = [100, 200, 300, 400, 500, 600]  # every 100 steps, the last at the end of training
AGENT_METRICS = {
    "loss",
    "dqn_loss",
    "spr_loss",
    "n_step",
    "gamma",
    "epsilon",
    "env_steps",
    "grad_steps",
    "resets",
    "replay_size",
}


def _series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of a run folder, as TensorBoard's reader loads it."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _without_speed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in records]


def test_launch_with_tensorboard_writes_metrics_and_event_files(write_suite, tmp_path):
    out = tmp_path / "ledger"
    code = main(
        [
            "launch",
            str(write_suite(SUITE)),
            "--out",
            str(out),
            "--executor",
            "debug",
            "--tensorboard",
        ]
    )
    assert code == 0
    (run_dir,) = (out / "runs").iterdir()
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["env_step"] for r in records] == STEPS
    assert AGENT_METRICS | {"steps_per_s"} <= set(records[-1])
    assert records[-1]["env_steps"] == 600.0
    assert records[-1]["grad_steps"] == pytest.approx(0.5 * (600 - 100), abs=1)
    assert records[0]["grad_steps"] == 0.0 and "loss" not in records[0]  # before learning
    series = _series(run_dir)
    assert [s for s, _ in series["loss"]] == STEPS[1:]  # the first update comes after step 100
    assert [v for _, v in series["loss"]] == pytest.approx([r["loss"] for r in records[1:]])
    assert [s for s, _ in series["epsilon"]] == STEPS


def test_a_killed_run_resumes_its_series_without_duplicates_or_gaps(write_suite, tmp_path):
    (spec,) = expand(load_suite(write_suite(SUITE)))
    clean, cut = Ledger(tmp_path / "clean"), Ledger(tmp_path / "cut")
    for ledger in (clean, cut):
        ledger.prepare([spec])
    options = LogOptions(tensorboard=True)
    assert loop.execute(clean.run_dir(spec.run_id), options) == "done"

    run_dir = cut.run_dir(spec.run_id)
    run = loop.start(spec, run_dir, options=options)
    while run.state.step < 420:  # killed at step 420: checkpoint at 250, records at 300, 400
        loop.advance(run)
    run.close()
    assert [r["env_step"] for r in read_metrics(run_dir / "metrics.jsonl")] == STEPS[:4]
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"env_step": 5')  # and torn mid-write
    assert loop.execute(run_dir, options) == "done"

    resumed = read_metrics(run_dir / "metrics.jsonl")
    expected = read_metrics(clean.run_dir(spec.run_id) / "metrics.jsonl")
    assert [r["env_step"] for r in resumed] == STEPS
    assert _without_speed(resumed) == _without_speed(expected)
    series, reference = _series(run_dir), _series(clean.run_dir(spec.run_id))
    for tag in ("loss", "epsilon", "grad_steps", "replay_size"):
        assert series[tag] == reference[tag], tag  # purged and relogged: no duplicate steps


def test_a_torn_line_inside_the_file_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"env_step": 100}\n{"env_st\n{"env_step": 300}\n')
    with pytest.raises(BenchError, match=r"metrics.jsonl:2: corrupt metrics line"):
        read_metrics(path)


def test_resume_keeps_the_records_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"env_step": s, "loss": s / 100}) + "\n" for s in STEPS))
    sink = JsonlSink(path, resume_step=250)
    sink.write(300, {"loss": 9.0})
    sink.close()
    assert read_metrics(path) == [
        {"env_step": 100, "loss": 1.0},
        {"env_step": 200, "loss": 2.0},
        {"env_step": 300, "loss": 9.0},
    ]


def test_no_records_when_log_every_is_zero(write_suite, tmp_path):
    suite = """
    name: quiet
    games: [Breakout]
    seeds: [1]
    variants: [{name: rnd, agent: random}]
    budget: {env_steps: 300, final_eval_episodes: 1, checkpoint_every: 100, log_every: 0}
    protocol: {max_episode_steps: 100}
    """
    (spec,) = expand(load_suite(write_suite(suite)))
    ledger = Ledger(tmp_path / "l")
    ledger.prepare([spec])
    assert loop.execute(ledger.run_dir(spec.run_id)) == "done"
    assert read_metrics(ledger.run_dir(spec.run_id) / "metrics.jsonl") == []
    assert ledger.evals(spec.run_id)[-1]["env_step"] == 300


def test_log_every_is_not_part_of_the_run_id(write_suite):
    (a,) = expand(load_suite(write_suite(SUITE, "a.yaml")))
    (b,) = expand(
        load_suite(write_suite(SUITE.replace("log_every: 100", "log_every: 7"), "b.yaml"))
    )
    (c,) = expand(
        load_suite(write_suite(SUITE.replace("env_steps: 600", "env_steps: 700"), "c.yaml"))
    )
    assert a.run_id == b.run_id != c.run_id
    assert b.budget.log_every == 7


def test_wandb_offline_run_per_run_id_continued_on_resume(write_suite, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    (spec,) = expand(load_suite(write_suite(SUITE)))
    ledger = Ledger(tmp_path / "l")
    ledger.prepare([spec])
    run_dir = ledger.run_dir(spec.run_id)
    options = LogOptions(wandb=True)
    run = loop.start(spec, run_dir, options=options)
    while run.state.step < 300:
        loop.advance(run)
    run.close()
    assert loop.execute(run_dir, options) == "done"
    attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2  # two attempts, one W&B run id: `wandb sync` joins them
    assert all(p.name.endswith(f"-{spec.run_id}") for p in attempts)
    for attempt in attempts:
        (data,) = attempt.glob("*.wandb")
        assert data.name == f"run-{spec.run_id}.wandb"
        assert b"dqn_loss" in data.read_bytes()  # the history reached the run's file
