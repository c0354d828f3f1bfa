"""Executors by name: the one registry that ``bench launch`` and its ``--executor`` choices
use. Each is an implementation of ``bench.run.executors.base.Executor``."""

from __future__ import annotations

from bench.run.executors.base import Executor, Outcome
from bench.run.executors.debug import DebugExecutor
from bench.run.executors.local import LocalExecutor
from bench.run.executors.slurm import SlurmExecutor

EXECUTORS: dict[str, type[Executor]] = {
    e.name: e for e in (LocalExecutor, DebugExecutor, SlurmExecutor)
}
DEFAULT_EXECUTOR = LocalExecutor.name

__all__ = ["DEFAULT_EXECUTOR", "EXECUTORS", "Executor", "Outcome"]
