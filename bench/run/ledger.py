"""The run ledger: one folder per run under ``OUT/runs/<run id>/``.

  config.json    the resolved RunSpec, protocol and code version (written once)
  status.json    state, attempts, last error line, job id, progress
  evals.json     every evaluation: env step, episode returns and lengths, final or periodic
  episodes.csv   training episodes: env step at the end, return, length
  checkpoint.pt  the complete run state for exact resume (removed when the run is done)
  run.log        the worker's log, tracebacks included
  lock           held (flock) by the process running the run

Every file is written atomically (temporary file, fsync, rename): a killed process leaves the
previous version or nothing, never a half-written file that reads as valid.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from bench.core.errors import BenchError
from bench.run.status import Status
from bench.suite.expand import RunSpec, protocol_id


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once, at import: os.umask can only be read by setting it


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only when the block completes without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; a lab's shared folder needs umask
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    with atomic_file(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(
            f"{path}: corrupt JSON ({e}); move it aside (keep it) and relaunch: a run with a "
            "final evaluation stays done, any other resumes from its checkpoint"
        ) from None


def code_version() -> dict[str, Any]:
    """Git SHA of the code (when it is a checkout) and the versions of the packages that matter."""
    here = Path(__file__).resolve().parent
    sha, dirty = "", False
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if sha:
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    packages = {}
    for name in ("atari100k-bench", "torch", "ale-py", "numpy", "gymnasium", "submitit"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    return {"git_sha": sha, "git_dirty": dirty, "packages": packages}


class Ledger:
    """The folder a suite is launched into."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def exists(self) -> bool:
        return self.runs_dir.is_dir()

    def check_writable(self) -> None:
        """A BenchError unless the folder is new, empty, or already a ledger: a launch never
        writes into a folder of other files (the user's own ``suite.yaml``, say)."""
        if self.root.exists() and not self.root.is_dir():
            raise BenchError(f"--out {self.root}: is a file; give a folder for the ledger")
        if self.root.is_dir() and not self.is_ledger() and any(self.root.iterdir()):
            raise BenchError(
                f"--out {self.root}: holds other files and is not a ledger (no index.json); "
                "give a new or empty folder"
            )

    def is_ledger(self) -> bool:
        return (self.root / "index.json").is_file() or self.runs_dir.is_dir()

    def prepare(self, specs: list[RunSpec], *, suite_text: str | None = None) -> None:
        """Create the folders of runs not yet in the ledger; existing runs are left alone.

        The suite is copied to ``suite.yaml``; a different earlier copy is kept as
        ``suites/<hash>.yaml`` rather than overwritten."""
        self.check_writable()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        ids = self.run_ids()
        if suite_text is not None:
            self._keep_suite(suite_text)
        code = None
        for spec in specs:
            d = self.run_dir(spec.run_id)
            if (d / "config.json").is_file():
                continue
            code = code or code_version()
            d.mkdir(parents=True, exist_ok=True)
            payload = spec.to_json() | {"protocol_id": protocol_id(spec.protocol), "code": code}
            write_json(d / "config.json", payload)
            if not (d / "status.json").is_file():
                self.write_status(spec.run_id, Status(env_steps=spec.budget.env_steps))
        # Earlier launches' runs stay indexed: a suite edited between launches loses nothing.
        ids += [s.run_id for s in specs if s.run_id not in ids]
        write_json(self.root / "index.json", {"runs": ids})

    def _keep_suite(self, text: str) -> None:
        path = self.root / "suite.yaml"
        if path.is_file():
            old = path.read_bytes()
            if old != text.encode():
                name = hashlib.sha256(old).hexdigest()[:12]
                atomic_write(self.root / "suites" / f"{name}.yaml", old)
        atomic_write(path, text)

    def run_ids(self) -> list[str]:
        """Every run in the ledger, in launch order where known."""
        index = self.root / "index.json"
        ids: list[str] = []
        if index.is_file():
            ids = [i for i in read_json(index)["runs"] if (self.runs_dir / i).is_dir()]
        if self.runs_dir.is_dir():
            extra = sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir())
            ids += [i for i in extra if i not in ids]
        return ids

    def spec(self, run_id: str) -> RunSpec:
        return RunSpec.from_json(read_json(self.run_dir(run_id) / "config.json"))

    def config(self, run_id: str) -> dict[str, Any]:
        return read_json(self.run_dir(run_id) / "config.json")

    def status(self, run_id: str) -> Status:
        path = self.run_dir(run_id) / "status.json"
        if not path.is_file():
            return Status()
        return Status.from_json(read_json(path))

    def write_status(self, run_id: str, status: Status) -> None:
        status.updated = time.time()
        write_json(self.run_dir(run_id) / "status.json", status.to_json())

    def is_locked(self, run_id: str) -> bool:
        """True while a process on this machine holds the run's lock."""
        path = self.run_dir(run_id) / "lock"
        if not path.exists():
            return False
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[bool]:
        """Hold the run's lock for the block; yields False when another process holds it."""
        path = self.run_dir(run_id) / "lock"
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def evals(self, run_id: str) -> list[dict[str, Any]]:
        path = self.run_dir(run_id) / "evals.json"
        return read_json(path)["evals"] if path.is_file() else []

    def has_final(self, run_id: str) -> bool:
        """True when the run's final evaluation is recorded: the run is done, whatever its
        status file says, and nothing may run it again."""
        return any(ev.get("final") for ev in self.evals(run_id))


def write_episodes(path: Path, rows: list[tuple[int, float, int]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["env_step", "return", "length"])
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def resolve_ledger(path: str | Path) -> Ledger:
    ledger = Ledger(path)
    if not ledger.exists():
        raise BenchError(f"{path}: not a launched suite folder (no runs/ inside)")
    return ledger
