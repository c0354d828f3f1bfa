"""Names that become folder names or labels: a suite's name (its ledger folder), variant
names, run ids, SLURM partitions. A name is a name, never a path: no ``/``, no ``..``, no
control characters, not absolute, at most 64 characters."""

from __future__ import annotations

import re
from typing import Any

from bench.core.errors import BenchError, shown

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"

# An agent: a registered name, or ``package.module:attr`` of a third-party AgentEntry.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
AGENT_REF = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}|{_IDENT}(\.{_IDENT})*:{_IDENT}")
AGENT_RULE = "a registered agent name or package.module:attribute"


def is_name(value: Any) -> bool:
    """True for a string that is a safe folder name."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def check_name(value: Any, *, where: str, what: str = "name") -> str:
    """``value`` if it is a safe folder name, else a BenchError naming ``where``."""
    if not isinstance(value, str):
        raise BenchError(
            f"{where}: expected a {what} (a string), got {shown(value)}; valid: {NAME_RULE}"
        )
    if not is_name(value):
        raise BenchError(f"{where}: {shown(value)} is not a safe {what}; valid: {NAME_RULE}")
    return value


def check_agent_ref(value: Any, *, where: str) -> str:
    """``value`` if it can name an agent (before looking it up), else a BenchError."""
    if not isinstance(value, str):
        raise BenchError(f"{where}: expected an agent name (a string), got {shown(value)}")
    if len(value) > 200 or AGENT_REF.fullmatch(value) is None:
        raise BenchError(f"{where}: {shown(value)} cannot name an agent; valid: {AGENT_RULE}")
    return value
