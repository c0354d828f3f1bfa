"""Launching end to end on real ALE: idempotence, failures, kill + resume, racing launches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.cli.main import main
from bench.run.ledger import Ledger
from bench.suite.expand import expand
from bench.suite.load import load_suite

REPO = Path(__file__).resolve().parent.parent

SUITE = """
name: tiny
games: [Pong, Breakout]
seeds: 2
variants:
  - {name: rnd, agent: random}
budget: {env_steps: 400, final_eval_episodes: 2, eval_every: 200, eval_episodes: 1,
         checkpoint_every: 100}
protocol: {max_episode_steps: 150}
"""


def _evals(out: Path) -> dict[str, list]:
    ledger = Ledger(out)
    return {r: ledger.evals(r) for r in ledger.run_ids()}


def test_debug_launch_is_idempotent(write_suite, tmp_path, capsys):
    path, out = write_suite(SUITE), tmp_path / "out"
    assert main(["launch", str(path), "--out", str(out), "--executor", "debug"]) == 0
    ledger = Ledger(out)
    ids = ledger.run_ids()
    assert len(ids) == 4
    for run_id in ids:
        status = ledger.status(run_id)
        assert (status.state, status.attempts) == ("done", 1)
        evals = ledger.evals(run_id)
        assert [e["env_step"] for e in evals] == [200, 400]
        assert [e["final"] for e in evals] == [False, True]
        assert len(evals[1]["returns"]) == 2 and all(n <= 150 for n in evals[1]["lengths"])
        assert not (ledger.run_dir(run_id) / "checkpoint.pt").exists()
        episodes = (ledger.run_dir(run_id) / "episodes.csv").read_text().splitlines()
        assert episodes[0] == "env_step,return,length" and len(episodes) >= 3  # 150-step cap
    first = _evals(out)
    capsys.readouterr()
    assert main(["launch", str(path), "--out", str(out), "--executor", "debug"]) == 0
    assert "4 done, 0 active, 0 failed (skipped; --retry-failed reruns them), 0 to run" in (
        capsys.readouterr().out
    )
    assert all(ledger.status(r).attempts == 1 for r in ids)
    assert _evals(out) == first

    # The same suite in another folder gives the same numbers: a run is a function of
    # its config and seed.
    other = tmp_path / "again"
    assert main(["launch", str(path), "--out", str(other), "--executor", "debug"]) == 0
    assert _evals(other) == first


def test_failed_runs_are_recorded_and_retried(write_suite, tmp_path, capsys, monkeypatch):
    flag = tmp_path / "fail"
    flag.write_text("")
    monkeypatch.setenv("BENCH_TEST_FAIL_FLAG", str(flag))
    path = write_suite(SUITE.replace("agent: random", "agent: 'tests.failing_agent:ENTRY'"))
    out = tmp_path / "out"
    assert main(["launch", str(path), "--out", str(out), "--executor", "debug"]) == 1
    ledger = Ledger(out)
    states = [ledger.status(r) for r in ledger.run_ids()]
    assert {s.state for s in states} == {"failed"}
    assert states[0].error == "RuntimeError: boom at step 50"
    assert "Traceback" in (ledger.run_dir(ledger.run_ids()[0]) / "run.log").read_text()

    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 runs: 4 failed" in text and "error: RuntimeError: boom at step 50" in text

    flag.unlink()
    assert main(["launch", str(path), "--out", str(out), "--executor", "debug"]) == 0
    assert {ledger.status(r).state for r in ledger.run_ids()} == {"failed"}  # not retried
    assert (
        main(["launch", str(path), "--out", str(out), "--executor", "debug", "--retry-failed"]) == 0
    )
    assert {(ledger.status(r).state, ledger.status(r).attempts) for r in ledger.run_ids()} == {
        ("done", 2)
    }


def _launch(path: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "launch", str(path), "--out", str(out), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


LONG = (
    SUITE.replace("env_steps: 400", "env_steps: 3000")
    .replace("eval_every: 200", "eval_every: 1000")
    .replace("checkpoint_every: 100", "checkpoint_every: 500")
)


def test_killed_local_launch_resumes_exactly(write_suite, tmp_path):
    path = write_suite(LONG)
    out = tmp_path / "out"
    proc = _launch(path, out, "--max-parallel", "2")
    ledger = Ledger(out)
    deadline = time.monotonic() + 120
    # Kill the whole launch (the launcher and its workers) once some run has checkpointed.
    while time.monotonic() < deadline:
        if ledger.exists() and any(
            (ledger.run_dir(r) / "checkpoint.pt").exists() for r in ledger.run_ids()
        ):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    ids = ledger.run_ids()
    assert len(ids) == 4
    resumed = [r for r in ids if (ledger.run_dir(r) / "checkpoint.pt").exists()]
    assert resumed, "the kill came too late to test resuming"
    assert (
        "interrupted"
        in subprocess.run(
            [sys.executable, "-m", "bench", "status", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout
    )

    second = _launch(path, out, "--max-parallel", "2")
    log, _ = second.communicate(timeout=300)
    assert second.returncode == 0, log
    assert all(ledger.status(r).state == "done" for r in ids)
    assert all(ledger.status(r).attempts == 2 for r in resumed)
    assert "resumed from env step" in (ledger.run_dir(resumed[0]) / "run.log").read_text()

    clean = tmp_path / "clean"
    assert main(["launch", str(path), "--out", str(clean), "--executor", "debug"]) == 0
    assert _evals(out) == _evals(clean)  # resuming changed nothing


def test_racing_launches_run_each_run_once(write_suite, tmp_path):
    path = write_suite(SUITE)
    out = tmp_path / "out"
    a, b = _launch(path, out), _launch(path, out)
    for proc in (a, b):
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log
    ledger = Ledger(out)
    assert [ledger.status(r).attempts for r in ledger.run_ids()] == [1, 1, 1, 1]
    assert all(ledger.status(r).state == "done" for r in ledger.run_ids())


def test_plan_json_lists_every_run(write_suite, capsys):
    path = write_suite(SUITE)
    assert main(["plan", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["runs"]] == [s.run_id for s in expand(load_suite(path))]
    assert data["summary"]["runs"] == 4


def test_dry_run_writes_nothing(write_suite, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["launch", str(write_suite(SUITE)), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would run") == 4
    assert not out.exists()
