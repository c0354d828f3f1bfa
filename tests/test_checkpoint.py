"""Checkpoints load no code, keep the last two, and fall back when the newest is damaged."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.core import safe_state
from bench.core.safe_state import (
    MAGIC,
    CorruptStateError,
    UnsafeStateError,
    read_state,
    to_safe,
    write_state,
)
from bench.run import checkpoint as checkpoints
from bench.run import loop
from bench.run.ledger import Ledger
from bench.suite.expand import expand
from bench.suite.load import load_suite
from tests.tiny import tiny_der_suite

SUITE = tiny_der_suite("ckpt", seed=2, eval_every=300)


class _Payload:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _write(path: Path, state) -> None:
    with path.open("wb") as f:
        write_state(f, state)


def test_round_trip_of_tensors_arrays_and_plain_data(tmp_path: Path) -> None:
    state = {
        "w": torch.randn(3, 4),
        "frames": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        "mask": np.array([True, False]),
        "prio": np.linspace(0, 1, 5, dtype=np.float32),
        "rng": np.random.default_rng(3).bit_generator.state,  # 128-bit ints inside
        "gen": torch.Generator().manual_seed(5).get_state(),
        "episodes": [(10, 1.5, 10), (20, -2.0, 10)],
        "log": b"\x00\x01\x02",
        "scalar": np.float32(0.25),
        3: None,
    }
    _write(tmp_path / "s.pt", state)
    back = read_state(tmp_path / "s.pt")
    assert torch.equal(back["w"], state["w"])
    for key in ("frames", "mask", "prio"):
        assert back[key].dtype == state[key].dtype and np.array_equal(back[key], state[key])
    assert back["rng"] == state["rng"] and back["episodes"] == state["episodes"]
    assert torch.equal(back["gen"], state["gen"])
    assert back["log"] == b"\x00\x01\x02" and back["scalar"] == 0.25 and back[3] is None


def test_saving_refuses_objects_and_says_where() -> None:
    with pytest.raises(UnsafeStateError, match=r"state\.agent\.buffers\[1\] is a .*Path"):
        to_safe({"agent": {"buffers": [1, Path("x")]}})
    with pytest.raises(UnsafeStateError, match="dtype object"):
        to_safe({"a": np.array([1, "x"], dtype=object)})


def test_a_crafted_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    plain = tmp_path / "plain.pt"
    torch.save({"x": _Payload(marker)}, plain)  # what a hostile ledger would hold
    with pytest.raises(CorruptStateError, match="not a state file"):
        read_state(plain)
    # The same pickle dressed as a state file with a correct checksum: torch refuses it.
    buf = io.BytesIO()
    torch.save({"x": _Payload(marker)}, buf)
    body = buf.getvalue()
    forged = tmp_path / "forged.pt"
    forged.write_bytes(
        MAGIC + body + b"sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n"
    )
    with pytest.raises(CorruptStateError, match="refused"):
        read_state(forged)
    assert not marker.exists()


@pytest.mark.parametrize("cut", [0, 10, 1000, -1])
def test_truncated_or_altered_files_are_detected(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "s.pt"
    _write(path, {"a": np.arange(1000)})
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:-100] + b"x" * 100)
    with pytest.raises(CorruptStateError):
        read_state(path)


def _spec(write_suite):
    (spec,) = expand(load_suite(write_suite(SUITE)))
    return spec


def _kill_at(spec, run_dir: Path, step: int) -> None:
    run = loop.start(spec, run_dir)
    while run.state.step < step:
        loop.advance(run)
    run.close()


@pytest.fixture
def clean(write_suite, tmp_path):
    spec = _spec(write_suite)
    ledger = Ledger(tmp_path / "clean")
    ledger.prepare([spec])
    assert loop.execute(ledger.run_dir(spec.run_id)) == "done"
    return spec, ledger.evals(spec.run_id)


def test_keeps_two_and_falls_back_to_the_previous_when_the_newest_is_truncated(clean, tmp_path):
    spec, expected = clean
    ledger = Ledger(tmp_path / "cut")
    ledger.prepare([spec])
    run_dir = ledger.run_dir(spec.run_id)
    _kill_at(spec, run_dir, 520)
    assert checkpoints.load(run_dir)["step"] == 500
    assert read_state(run_dir / "checkpoint.prev.pt")["step"] == 250
    newest = run_dir / "checkpoint.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    assert loop.execute(run_dir) == "done"
    log = (run_dir / "run.log").read_text()
    assert "checksum mismatch" in log or "truncated" in log
    assert "resumed from env step 250" in log
    assert (run_dir / "checkpoint.pt.corrupt").is_file()  # kept for inspection, not deleted
    assert not checkpoints.exists(run_dir)
    assert ledger.evals(spec.run_id) == expected


def test_no_valid_checkpoint_restarts_from_zero_and_ends_identical(clean, tmp_path):
    spec, expected = clean
    ledger = Ledger(tmp_path / "cut")
    ledger.prepare([spec])
    run_dir = ledger.run_dir(spec.run_id)
    _kill_at(spec, run_dir, 520)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run_dir / name).write_bytes(b"garbage")
    assert loop.execute(run_dir) == "done"
    assert "resumed" not in (run_dir / "run.log").read_text()
    assert ledger.evals(spec.run_id) == expected


def test_a_stop_signal_during_the_write_is_handled_once_the_checkpoint_is_whole(
    tmp_path, monkeypatch
):
    """submitit's USR2 handler requeues the job and calls sys.exit; raised inside torch.save's
    writes, that exit came out as a RuntimeError and the run was recorded as failed."""
    writes: list[int] = []
    write = safe_state._HashingWriter.write

    def signalled_write(self, data: bytes) -> int:
        if len(writes) == 1:  # in the middle of the file
            signal.raise_signal(signal.SIGUSR2)
        writes.append(len(data))
        return write(self, data)

    monkeypatch.setattr(safe_state._HashingWriter, "write", signalled_write)
    state = {"step": 7, "weights": torch.arange(50_000.0)}
    previous = signal.signal(signal.SIGUSR2, lambda *_: sys.exit(-1))
    try:
        with pytest.raises(SystemExit):
            checkpoints.save(tmp_path, state)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert len(writes) > 1
    loaded = checkpoints.load(tmp_path)
    assert loaded["step"] == 7
    assert np.array_equal(loaded["weights"], state["weights"].numpy())


def test_an_exit_a_library_turned_into_an_error_is_an_exit():
    try:
        try:
            sys.exit(-1)
        except SystemExit:
            raise RuntimeError("unexpected pos") from None
    except RuntimeError as e:
        assert isinstance(loop._exit_behind(e), SystemExit)
    assert loop._exit_behind(RuntimeError("a real error")) is None
