"""A ledger's files checked before ``bench status`` or a report reads them.

A ledger is written by ``bench launch`` and the run loop, but it is also a folder anyone can
edit, copy or truncate. Each file a reader uses is checked here against what the writers
write, so that a wrong one is one line naming the file, the key and what is valid, never a
traceback or a silently dropped value:

  index.json   {"runs": [run id, ...]}, run ids being names (never paths)
  config.json  the RunSpec's keys and types; a known game; protocol, budget and resources
               within their ranges (the same checks as a suite's)
  status.json  (optional) a known state; counts non-negative integers; texts strings
  evals.json   (optional) {"evals": [{env_step, final, returns, lengths}, ...]}; every
               return a finite number: a NaN score is refused, naming the run
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from bench.core.config import from_mapping
from bench.core.errors import BenchError, shown
from bench.core.names import NAME_RULE, is_name
from bench.env.games import get_game
from bench.env.protocol import ProtocolConfig
from bench.run.ledger import Ledger, read_json, resolve_ledger
from bench.run.status import State
from bench.suite.budget import Budget, Resources

CONFIG_TEXT = ("run_id", "suite", "game", "variant", "agent", "algorithm", "protocol_id")
CONFIG_MAPPINGS = ("condition", "agent_config", "protocol", "budget", "resources", "code")
STATUS_TEXT = ("error", "job_id", "host")
STATUS_COUNTS = ("attempts", "env_step", "env_steps")
JOB_ID = re.compile(r"[0-9]{1,20}([_+][0-9]{1,10})?")
MAX_SEED = 2**32 - 1


def checked_ledger(path: str | Path, *, evals: bool = True) -> Ledger:
    """The ledger at ``path`` once its index and every run's config and status (and, with
    ``evals``, evaluations) are checked; a BenchError naming the first bad file otherwise."""
    ledger = resolve_ledger(path)
    index = ledger.root / "index.json"
    if index.exists():
        _check_index(_read(index), str(index))
    for run_id in ledger.run_ids():
        run_dir = ledger.run_dir(run_id)
        check_config(_read(run_dir / "config.json"), str(run_dir / "config.json"))
        if (run_dir / "status.json").exists():
            check_status(_read(run_dir / "status.json"), str(run_dir / "status.json"))
        if (run_dir / "lock").exists() and not (run_dir / "lock").is_file():
            raise BenchError(f"{run_dir / 'lock'}: not a file; valid: a lock file or none")
        if evals and (run_dir / "evals.json").exists():
            check_evals(_read(run_dir / "evals.json"), str(run_dir / "evals.json"))
    return ledger


def check_for_launch(ledger: Ledger, run_ids: list[str]) -> None:
    """What a launch reads of an existing ledger before it writes: the index and the
    status of the runs it may start (a run folder without its config is rewritten)."""
    index = ledger.root / "index.json"
    if index.exists():
        _check_index(_read(index), str(index))
    for run_id in run_ids:
        path = ledger.run_dir(run_id) / "status.json"
        if path.exists():
            check_status(_read(path), str(path))


def _read(path: Path) -> Any:
    if not path.is_file():
        raise BenchError(
            f"{path}: missing or not a file; valid: a run folder as bench launch writes it "
            "(delete the folder to drop the run)"
        )
    try:
        return read_json(path)
    except OSError as e:
        raise BenchError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None


def _check_index(data: Any, where: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise BenchError(f'{where}: expected {{"runs": [run id, ...]}}, got {shown(data)}')
    for i, run_id in enumerate(data["runs"]):
        if not is_name(run_id):
            raise BenchError(
                f"{where}: runs[{i}]: {shown(run_id)} is not a run id; valid: {NAME_RULE}"
            )


def _need(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str, where: str
) -> Any:
    """``data[key]`` if it is of ``kind`` (never a bool for a number), else a BenchError."""
    if key not in data:
        raise BenchError(f"{where}: missing key {key!r}; valid: an object with {key} ({what})")
    value = data[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise BenchError(f"{where}: {key}: expected {what}, got {shown(value)}")
    if not isinstance(value, kind):
        raise BenchError(f"{where}: {key}: expected {what}, got {shown(value)}")
    return value


def check_config(data: Any, where: str) -> None:
    """A run's ``config.json``: the keys ``RunSpec.from_json`` and the readers use."""
    if not isinstance(data, dict):
        raise BenchError(f"{where}: expected a JSON object (a run's config), got {shown(data)}")
    for key in CONFIG_TEXT:
        _need(data, key, str, "text", where)
    for key in CONFIG_MAPPINGS:
        _need(data, key, dict, "a JSON object", where)
    _need(data, "preset", (str, type(None)), "text or null", where)
    seed = _need(data, "seed", int, f"an integer 0..{MAX_SEED}", where)
    if not 0 <= seed <= MAX_SEED:
        raise BenchError(f"{where}: seed: {shown(seed)} is out of range; valid: 0..{MAX_SEED}")
    get_game(data["game"], where=f"{where}: game")
    from_mapping(ProtocolConfig, data["protocol"], where=f"{where}: protocol")
    _need(data["budget"], "env_steps", int, "an integer", f"{where}: budget")
    from_mapping(Budget, data["budget"], where=f"{where}: budget")
    from_mapping(Resources, data["resources"], where=f"{where}: resources")
    if not isinstance(data["code"].get("git_sha", ""), str):
        raise BenchError(f"{where}: code.git_sha: expected text")


def check_status(data: Any, where: str) -> None:
    """A run's ``status.json``: every key optional (a missing one takes its default)."""
    if not isinstance(data, dict):
        raise BenchError(f"{where}: expected a JSON object (a run's status), got {shown(data)}")
    states = ", ".join(s.value for s in State)
    if "state" in data and data["state"] not in {s.value for s in State}:
        raise BenchError(f"{where}: state: {shown(data['state'])} is unknown; valid: {states}")
    for key in STATUS_TEXT:
        if key in data:
            _need(data, key, str, "text", where)
    for key in STATUS_COUNTS:
        if key in data and _need(data, key, int, "an integer >= 0", where) < 0:
            raise BenchError(f"{where}: {key}: {data[key]} is negative; valid: an integer >= 0")
    if "updated" in data:
        _need(data, "updated", (int, float), "a time in seconds", where)
    job = data.get("job_id", "")
    if job and not JOB_ID.fullmatch(job):
        raise BenchError(f"{where}: job_id: {shown(job)} is not a SLURM job id; valid: 123, 123_4")


def check_evals(data: Any, where: str) -> None:
    """A run's ``evals.json``: each evaluation's step, kind and finite episode returns."""
    if not isinstance(data, dict) or not isinstance(data.get("evals"), list):
        raise BenchError(f'{where}: expected {{"evals": [evaluation, ...]}}, got {shown(data)}')
    for i, ev in enumerate(data["evals"]):
        at = f"{where}: evals[{i}]"
        if not isinstance(ev, dict):
            raise BenchError(f"{at}: expected a JSON object, got {shown(ev)}")
        if _need(ev, "env_step", int, "an integer >= 0", at) < 0:
            raise BenchError(f"{at}: env_step: {ev['env_step']} is negative; valid: >= 0")
        _need(ev, "final", bool, "true or false", at)
        returns = _need(ev, "returns", list, "a non-empty list of numbers", at)
        if not returns:
            raise BenchError(f"{at}: returns: empty; valid: a non-empty list of numbers")
        for j, r in enumerate(returns):
            if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r):
                raise BenchError(
                    f"{at}: returns[{j}]: {shown(r)} is not a score; valid: finite numbers"
                )
        lengths = ev.get("lengths", [])
        if not isinstance(lengths, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths
        ):
            raise BenchError(f"{at}: lengths: expected a list of integers >= 0")
