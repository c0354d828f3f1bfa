"""A state file that loads no code: tensors, arrays and plain data only, with a checksum.

A checkpoint found in a ledger may come from anywhere (a shared cluster folder, a colleague's
copy), so loading one must never run code. ``torch.load(weights_only=True)`` reads only
tensors and plain containers; numpy arrays travel as tensors tagged ``{"__ndarray__": t}``
and come back as arrays (sharing memory, no copy). Saving refuses anything else, naming
where it sits in the state, so an agent whose state holds other objects fails when it
saves, not when someone resumes it.

File layout: ``MAGIC``, the ``torch.save`` bytes, then ``sha256:<64 hex digits>\\n`` of
those bytes: a truncated or altered file is detected before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

MAGIC = b"atari100k-bench state v1\n"
TRAILER = len(b"sha256:") + 64 + 1
ARRAY_TAG = "__ndarray__"
PLAIN = (type(None), bool, int, float, str, bytes)


class UnsafeStateError(TypeError):
    """The state holds something a safe state file cannot: says what, and where."""


class CorruptStateError(ValueError):
    """A state file that is truncated, altered, or not a state file at all."""


def to_safe(obj: Any, where: str = "state") -> Any:
    """``obj`` with numpy arrays as tagged tensors; UnsafeStateError on any other object."""
    if isinstance(obj, PLAIN) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject or not obj.dtype.isnative:
            raise UnsafeStateError(f"{where}: an array of dtype {obj.dtype} cannot be saved")
        return {ARRAY_TAG: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, dict):
        if ARRAY_TAG in obj:
            raise UnsafeStateError(f"{where}: the key {ARRAY_TAG!r} is reserved")
        for key in obj:
            if not isinstance(key, str | int):
                raise UnsafeStateError(f"{where}: key {key!r} is a {type(key).__name__}")
        return {k: to_safe(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise UnsafeStateError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; state files hold "
        "tensors, numpy arrays, and dicts, lists, tuples of numbers, strings and bytes only"
    )


def from_safe(obj: Any) -> Any:
    """The inverse of ``to_safe``: tagged tensors become numpy arrays again."""
    if isinstance(obj, dict):
        if len(obj) == 1 and ARRAY_TAG in obj:
            return obj[ARRAY_TAG].numpy()
        return {k: from_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_safe(v) for v in obj)
    return obj


class _HashingWriter:
    """Writes through to a file and hashes what passes (torch.save needs write and flush)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.hash = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def write_state(f: IO[bytes], state: Any) -> None:
    """``state`` as a safe state file into the binary file ``f``."""
    safe = to_safe(state)
    f.write(MAGIC)
    writer = _HashingWriter(f)
    torch.save(safe, writer)  # type: ignore[arg-type]  # torch only calls write and flush
    f.write(b"sha256:" + writer.hash.hexdigest().encode() + b"\n")


def read_state(path: Path) -> Any:
    """The state in a safe state file; CorruptStateError when it is not whole and unaltered."""
    return decode(path.read_bytes(), where=str(path))


def round_trip(state: Any) -> Any:
    """``state`` written and read back as a state file (the contract test of an agent)."""
    buf = io.BytesIO()
    write_state(buf, state)
    return decode(buf.getvalue(), where="state")


def decode(data: bytes, *, where: str) -> Any:
    """The state in the bytes of a state file (``where`` names it in errors)."""
    path = where
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + TRAILER:
        raise CorruptStateError(f"{path}: not a state file, or truncated")
    body, trailer = memoryview(data)[len(MAGIC) : -TRAILER], data[-TRAILER:]
    expected = b"sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n"
    if trailer != expected:
        raise CorruptStateError(f"{path}: checksum mismatch (truncated or altered)")
    try:
        safe = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # the checksum held, so this is a file made to look valid
        raise CorruptStateError(f"{path}: refused ({type(e).__name__}: {e})") from None
    return from_safe(safe)
