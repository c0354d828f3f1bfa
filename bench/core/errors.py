"""User-facing errors: one line, naming what is wrong and the valid choices."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any


class BenchError(Exception):
    """An error caused by the user's input. The CLI prints it on one line and exits 2."""

    exit_code = 2


class FieldError(BenchError, ValueError):
    """A config field whose value is outside its domain, raised by a config's own checks.

    ``bench.core.config.override`` puts the key path in front, so a suite's error reads
    ``suite.yaml: protocol.frame_skip: 0 is out of range; valid: 1..64``. It is also a
    ValueError, as for any invalid value given to a constructor in code.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# Values shown in messages are cut short: a hostile input never makes a long message.
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlong = 30
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3


def shown(value: Any) -> str:
    """A short ``repr`` of a value for an error message (long values are elided)."""
    return _SHORT.repr(value)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: one line to print."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest names to ``name`` among ``choices`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown(kind: str, name: str, choices: Iterable[str], *, where: str = "") -> BenchError:
    """A BenchError for an unknown name, suggesting the closest valid ones."""
    choices = sorted(choices)
    near = closest(name[:100], choices)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    prefix = f"{where}: " if where else ""
    return BenchError(f"{prefix}unknown {kind} {shown(name)}; {hint}valid: {', '.join(choices)}")
