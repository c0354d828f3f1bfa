"""The state a person should see of each run: the ledger's record, checked against the
run's lock and, for SLURM runs, one call to the scheduler; and which runs a launch starts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from bench.run.ledger import Ledger
from bench.run.status import ACTIVE, State, Status
from bench.suite.expand import RunSpec


def live_slurm_jobs(job_ids: Iterable[str]) -> dict[str, str] | None:
    """Scheduler state of the given jobs, in ONE squeue call; None when there is no squeue.

    Keys are array task ids ("123_4") or plain job ids; jobs the scheduler no longer lists
    have ended.
    """
    arrays = sorted({j.split("_")[0] for j in job_ids if j})
    if not arrays or shutil.which("squeue") is None:
        return None if not arrays else {}
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    jobs: dict[str, str] = {}
    for line in out.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            jobs[job] = state
    return jobs


def effective_state(
    ledger: Ledger, run_id: str, status: Status, jobs: dict[str, str] | None
) -> State:
    """The state a person should see: stale "running" or "queued" become "interrupted", and
    a run whose final evaluation is recorded is done whatever its status file says."""
    if ledger.is_locked(run_id):
        return State.RUNNING
    if status.state != State.DONE and ledger.has_final(run_id):
        return State.DONE
    if status.state not in ACTIVE:
        return status.state
    if status.job_id and jobs is not None and status.job_id in jobs:
        return State.RUNNING if jobs[status.job_id] == "RUNNING" else State.QUEUED
    if status.job_id and jobs is None:
        return status.state  # no scheduler reachable from here: trust the ledger
    return State.INTERRUPTED


def states(ledger: Ledger, run_ids: list[str]) -> dict[str, tuple[State, Status]]:
    """Effective state and status of every run, polling the scheduler at most once."""
    statuses = {r: ledger.status(r) for r in run_ids}
    pending_jobs = [s.job_id for s in statuses.values() if s.state in ACTIVE]
    jobs = live_slurm_jobs(pending_jobs)
    return {r: (effective_state(ledger, r, s, jobs), s) for r, s in statuses.items()}


@dataclass(frozen=True)
class Selection:
    to_run: list[str]
    done: list[str]
    active: list[str]
    failed_skipped: list[str]


def select(ledger: Ledger, specs: list[RunSpec], *, retry_failed: bool) -> Selection:
    """Which runs a launch starts: never done or active ones; failed ones only on request."""
    st = states(ledger, [s.run_id for s in specs])
    to_run, done, active, failed = [], [], [], []
    for spec in specs:
        state, _ = st.get(spec.run_id, (State.PENDING, Status()))
        if state == State.DONE:
            done.append(spec.run_id)
        elif state in ACTIVE:
            active.append(spec.run_id)
        elif state == State.FAILED and not retry_failed:
            failed.append(spec.run_id)
        else:
            to_run.append(spec.run_id)
    return Selection(to_run, done, active, failed)
