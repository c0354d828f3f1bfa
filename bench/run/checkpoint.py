"""A run's checkpoints: the last two, each a safe state file (``bench.core.safe_state``).

Saving moves the newest to ``checkpoint.prev.pt`` and writes the new one atomically, so a
kill at any moment leaves at least one whole checkpoint. A signal whose handler stops the
process (submitit's USR2 handler on a time limit or a preemption, Ctrl-C) is handled once
the checkpoint is written: raised in the middle of ``torch.save``, its exit would come out
as a write error, failing a run that was only meant to be requeued.

Loading takes the newest valid one: a corrupt or truncated newest is reported, kept aside as
``<name>.corrupt`` for inspection, and the previous one is used; with none valid, the run
starts again from step 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.core.safe_state import CorruptStateError, read_state, write_state
from bench.run.ledger import atomic_file

CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_FILE = "checkpoint.prev.pt"

log = logging.getLogger("bench.run")


# The signals a job is told to stop with, when Python code handles them.
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Python signal handlers called when the block ends instead of inside it (only the main
    thread can set handlers; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    handlers = {s: h for s in DEFERRED_SIGNALS if callable(h := signal.getsignal(s))}
    for signum in handlers:
        signal.signal(signum, lambda n, _frame: pending.append(n))
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for number in pending:
            handlers[signal.Signals(number)](number, None)


def save(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as the newest checkpoint; the one before becomes the previous."""
    newest = run_dir / CHECKPOINT_FILE
    with signals_deferred():
        if newest.is_file():
            os.replace(newest, run_dir / PREVIOUS_FILE)
        with atomic_file(newest) as f:
            write_state(f, state)


def load(run_dir: Path) -> dict[str, Any] | None:
    """The newest valid checkpoint, or None when there is none (the run starts over)."""
    for name in (CHECKPOINT_FILE, PREVIOUS_FILE):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            state: dict[str, Any] = read_state(path)
        except CorruptStateError as e:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            log.warning("%s; kept as %s, trying an older checkpoint", e, aside.name)
            continue
        if name == PREVIOUS_FILE:
            log.warning("resuming from the previous checkpoint, %s", name)
        return state
    return None


def remove(run_dir: Path) -> None:
    """Both checkpoints (a finished run needs neither)."""
    for name in (CHECKPOINT_FILE, PREVIOUS_FILE):
        (run_dir / name).unlink(missing_ok=True)


def exists(run_dir: Path) -> bool:
    return any((run_dir / name).is_file() for name in (CHECKPOINT_FILE, PREVIOUS_FILE))
