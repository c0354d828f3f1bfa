"""Nothing computed is lost: a run whose final evaluation exists is done, whatever its
status file says; a launch never writes into a folder of other files; an edited suite's
earlier copy is kept; ledger files follow the user's umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from bench.cli.main import main
from bench.run.ledger import Ledger
from bench.run.status import State, Status

REPO = Path(__file__).resolve().parent.parent
SUITE = """
name: kept
games: [Pong]
seeds: 2
variants: [{name: rnd, agent: random}]
budget: {env_steps: 60, final_eval_episodes: 1, checkpoint_every: 30, log_every: 30}
protocol: {max_episode_steps: 40}
"""


def _launch(suite: Path, out: Path) -> int:
    return main(["launch", str(suite), "--out", str(out), "--executor", "debug"])


def _snapshot(ledger: Ledger) -> dict[str, tuple[bytes, int]]:
    return {
        r: (
            (ledger.run_dir(r) / "evals.json").read_bytes(),
            (ledger.run_dir(r) / "evals.json").stat().st_mtime_ns,
        )
        for r in ledger.run_ids()
    }


def test_a_final_evaluation_means_done_whatever_the_status_file_says(write_suite, tmp_path):
    suite, out = write_suite(SUITE), tmp_path / "ledger"
    assert _launch(suite, out) == 0
    ledger = Ledger(out)
    first, second = ledger.run_ids()
    before = _snapshot(ledger)
    # Killed between the final evaluation and the status write: status still "running".
    ledger.write_status(first, Status(state=State.RUNNING, attempts=1, env_steps=60))
    # Status file deleted (as a corrupt one's advice says): the run reads as pending.
    (ledger.run_dir(second) / "status.json").unlink()
    assert _launch(suite, out) == 0
    assert _snapshot(ledger) == before  # nothing ran again, nothing was rewritten
    assert ledger.status(first).attempts == 1  # not started again
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bench", "status", str(out), "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [r["state"] for r in status["runs"]] == ["done", "done"]


def test_retry_failed_never_reruns_a_run_with_a_final_evaluation(write_suite, tmp_path):
    suite, out = write_suite(SUITE), tmp_path / "ledger"
    assert _launch(suite, out) == 0
    ledger = Ledger(out)
    run_id = ledger.run_ids()[0]
    ledger.write_status(run_id, Status(state=State.FAILED, attempts=1, error="x", env_steps=60))
    before = _snapshot(ledger)
    argv = ["launch", str(suite), "--out", str(out), "--executor", "debug", "--retry-failed"]
    assert main(argv) == 0
    assert _snapshot(ledger) == before


def test_launch_refuses_a_folder_of_other_files(write_suite, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "suite.yaml").write_text("my own notes\n")
    assert _launch(write_suite(SUITE), out) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: --out ") and "a folder with other files" in err and "\n" not in err
    )
    assert (out / "suite.yaml").read_text() == "my own notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["suite.yaml"]


def test_an_edited_suite_keeps_its_earlier_copy(write_suite, tmp_path):
    out = tmp_path / "ledger"
    first = write_suite(SUITE)
    assert _launch(first, out) == 0
    edited = write_suite(SUITE.replace("seeds: 2", "seeds: 3"), "edited.yaml")
    assert _launch(edited, out) == 0
    assert (out / "suite.yaml").read_text() == edited.read_text()
    (kept,) = (out / "suites").iterdir()
    assert kept.read_text() == first.read_text()
    assert len(Ledger(out).run_ids()) == 3


def test_ledger_files_follow_the_umask(write_suite, tmp_path):
    out = tmp_path / "ledger"
    code = (
        "import os, sys; os.umask(0o022); from bench.cli.main import main; "
        f"sys.exit(main(['launch', {str(write_suite(SUITE))!r}, '--out', {str(out)!r}, "
        "'--executor', 'debug']))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "lock"]
    assert {"config.json", "status.json", "evals.json", "index.json", "suite.yaml"} <= {
        p.name for p in files
    }
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}
    assert os.access(out / "index.json", os.R_OK)
