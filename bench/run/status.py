"""A run's state and its ``status.json`` record: the one definition every module uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Where a run stands. ``status.json`` stores the value; a State equals its string."""

    PENDING = "pending"  # in the ledger, never started
    QUEUED = "queued"  # submitted to a scheduler, not started yet
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # recorded as running or queued, but nothing holds it any more
    DONE = "done"
    FAILED = "failed"


ACTIVE = frozenset({State.RUNNING, State.QUEUED})  # a launch never starts these again
FINISHED = frozenset({State.DONE, State.FAILED})  # a worker that ends leaves one of these


@dataclass
class Status:
    """The contents of a run's ``status.json``."""

    state: State = State.PENDING
    attempts: int = 0
    error: str = ""
    job_id: str = ""
    env_step: int = 0
    env_steps: int = 0
    host: str = ""
    updated: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Status:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["state"] = State(fields.get("state", State.PENDING))
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"state": str(self.state)}
