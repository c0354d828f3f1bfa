"""The ledger: atomic files, status round trips, locks, corrupt files named clearly."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from bench.core.errors import BenchError
from bench.run.ledger import Ledger, atomic_write, read_json
from bench.run.status import Status
from bench.suite.expand import expand
from bench.suite.load import load_suite

SUITE = """
name: s
games: [Pong]
seeds: 2
variants: [random]
budget: {env_steps: 100, final_eval_episodes: 1}
"""


def _writer(path: str) -> None:
    big = "x" * 5_000_000
    while True:
        atomic_write(Path(path), json.dumps({"payload": big}))


def _report_lock(root: str, run: str, q) -> None:  # noqa: ANN001
    q.put(Ledger(Path(root)).is_locked(run))


# "spawn", not "fork": a forked child of a process that has imported JAX (the reference
# tests) or started torch threads can deadlock.
def test_atomic_write_survives_a_kill(tmp_path):
    path = tmp_path / "f.json"
    atomic_write(path, json.dumps({"payload": "old"}))
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(path),))
    proc.start()
    deadline = time.monotonic() + 60  # the spawned child imports the project first
    while path.stat().st_size < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    data = json.loads(path.read_text())  # whole old or whole new file, never a torn one
    assert data["payload"] in ("old", "x" * 5_000_000)


def test_prepare_writes_config_and_status_once(write_suite, tmp_path):
    specs = expand(load_suite(write_suite(SUITE)))
    ledger = Ledger(tmp_path / "out")
    ledger.prepare(specs, suite_text="x")
    run = specs[0].run_id
    cfg = ledger.config(run)
    assert cfg["game"] == "Pong" and cfg["protocol"]["frame_skip"] == 4
    assert cfg["protocol_id"] and "packages" in cfg["code"] and "numpy" in cfg["code"]["packages"]
    assert ledger.spec(run) == specs[0]
    ledger.write_status(run, Status(state="done", attempts=1))
    ledger.prepare(specs)  # relaunch: nothing already there is touched
    assert ledger.status(run).state == "done"
    assert ledger.run_ids() == [s.run_id for s in specs]


def test_lock_is_exclusive_across_processes(write_suite, tmp_path):
    specs = expand(load_suite(write_suite(SUITE)))
    ledger = Ledger(tmp_path / "out")
    ledger.prepare(specs)
    run = specs[0].run_id
    assert not ledger.is_locked(run)
    with ledger.lock(run) as held:
        assert held
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_report_lock, args=(str(tmp_path / "out"), run, q))
        p.start()
        p.join()
        assert q.get() is True
    assert not ledger.is_locked(run)


def test_corrupt_json_is_named(tmp_path):
    path = tmp_path / "status.json"
    path.write_text('{"state": "do')
    with pytest.raises(BenchError, match="status.json: corrupt JSON"):
        read_json(path)
