"""User-facing errors: one line, naming what is wrong and the valid choices."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """An error caused by the user's input. The CLI prints it on one line and exits 2."""

    exit_code = 2


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest names to ``name`` among ``choices`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown(kind: str, name: str, choices: Iterable[str], *, where: str = "") -> BenchError:
    """A BenchError for an unknown name, suggesting the closest valid ones."""
    choices = sorted(choices)
    near = closest(name, choices)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    prefix = f"{where}: " if where else ""
    return BenchError(f"{prefix}unknown {kind} {name!r}; {hint}valid: {', '.join(choices)}")
