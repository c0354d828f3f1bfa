"""A catalogue of bad inputs, each tried against the command a hostile user would run.

Every case must end the same way: exit code 2, exactly one line on stderr that starts with
``error:`` and names the problem (a distinctive substring per case), no traceback, and
nothing written anywhere (the test's whole folder, where every output would go, is
unchanged). Cases are grouped by category; ``CATEGORIES`` lists them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.run.ledger import Ledger, write_json
from bench.run.status import State, Status
from bench.suite.expand import expand
from bench.suite.load import load_suite

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
name: bad-inputs
games: [Pong, Breakout]
seeds: 2
variants:
  - {name: rnd, agent: random}
  - {name: der, agent: value, preset: der}
budget: {env_steps: 100, final_eval_episodes: 2}
"""

LEDGER_SUITE = """\
name: tiny
games: [Pong, Breakout]
seeds: 2
variants: [random]
budget: {env_steps: 200, eval_every: 100, final_eval_episodes: 2}
"""

FAST = ["--reps", "50", "--profile-reps", "20"]


@dataclass(frozen=True)
class Case:
    category: str
    id: str
    make: Callable[[Path], list[str]]  # writes the inputs under a folder, returns argv
    expected: str  # a substring of the one error line


CASES: list[Case] = []


def case(category: str, id: str, expected: str) -> Callable:
    def register(make: Callable[[Path], list[str]]) -> Callable:
        CASES.append(Case(category, id, make, expected))
        return make

    return register


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write(root: Path, name: str, data: str | bytes) -> Path:
    path = root / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def suite_case(
    category: str, id: str, text: str | bytes, expected: str, *, command: str = "launch"
) -> None:
    """A suite file given to ``bench launch --out OUT`` (or ``bench plan``)."""

    def make(root: Path) -> list[str]:
        path = write(root, f"{id}.yaml", text)
        if command == "plan":
            return ["plan", str(path)]
        return ["launch", str(path), "--out", str(root / "out")]

    CASES.append(Case(category, id, make, expected))


# ---- suite files: what the YAML reader refuses -------------------------------------------

BOMB = "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" if i else "l0: &l0 [x, x, x, x, x]\n"
    for i in range(9)
)
suite_case("suite-file", "binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file (NUL")
suite_case("suite-file", "latin-1", "name: caf\xe9\n".encode("latin-1"), "not UTF-8 text")
suite_case("suite-file", "empty", "", "the file holds no suite (it is empty)")
suite_case("suite-file", "only-comments", "# nothing\n", "it is empty", command="plan")
suite_case("suite-file", "top-list", "[1, 2]\n", "a suite must be a mapping with keys name")
suite_case("suite-file", "top-scalar", "hello\n", "got str", command="plan")
suite_case(
    "suite-file",
    "alias-bomb",
    "description:\n  " + BOMB.replace("\n", "\n  ") + "\n" + GOOD,
    "values once aliases expand (an alias bomb?)",
)
suite_case(
    "suite-file",
    "deep-list",
    GOOD + "description: " + "[" * 3000 + "]" * 3000 + "\n",
    "nested more than 40 levels deep",
)
suite_case(
    "suite-file",
    "deep-map",
    GOOD + "description: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n",
    "nested more than 40 levels deep",
    command="plan",
)
# An alias 30 levels deep used 15 levels down: 48 levels once expanded.
ALIAS_DEPTH = f"description: {{a: &a {'[' * 30}{']' * 30}, b: {'[' * 15}*a{']' * 15}}}\n"
suite_case(
    "suite-file",
    "alias-depth",
    GOOD + ALIAS_DEPTH,
    "nested more than 40 levels deep once aliases expand",
)
suite_case("suite-file", "recursive-alias", GOOD + "description: &d [*d]\n", "a recursive alias")
suite_case("suite-file", "duplicate-key", GOOD + "seeds: 3\n", "duplicate key 'seeds' (first at")
suite_case(
    "suite-file",
    "duplicate-nested-key",
    edit("env_steps: 100,", "env_steps: 100, env_steps: 200,"),
    "duplicate key 'env_steps'",
)
suite_case("suite-file", "too-large", GOOD + "#" + "x" * 1_100_000 + "\n", "file too large")
suite_case("suite-file", "two-documents", GOOD + "---\nname: b\n", "but found another document")
suite_case("suite-file", "tab-syntax", "name: s\n\tgames: [Pong]\n", "not valid YAML (line 2)")
suite_case("suite-file", "unhashable-key", GOOD + "? [a, b]\n: 1\n", "unhashable key")
suite_case(
    "suite-file",
    "python-tag",
    GOOD + "description: !!python/name:os.system\n",
    "could not determine a constructor",
)


@case("suite-file", "missing-file", "suite file not found")
def _(root: Path) -> list[str]:
    return ["plan", str(root / "nope.yaml")]


@case("suite-file", "a-folder", "suite file not found")
def _(root: Path) -> list[str]:
    return ["launch", str(root), "--out", str(root / "out")]


# ---- names are names --------------------------------------------------------------------

suite_case("names", "name-dotdot", edit("name: bad-inputs", "name: ../../escape"), "not a safe")
suite_case("names", "name-slash", edit("name: bad-inputs", "name: a/b"), "'a/b' is not a safe")
suite_case("names", "name-nul", edit("name: bad-inputs", 'name: "a\\0b"'), "'a\\x00b'")
suite_case("names", "name-newline", edit("name: bad-inputs", 'name: "a\\nb"'), "'a\\nb'")
suite_case("names", "name-long", edit("name: bad-inputs", "name: " + "n" * 65), "suite name")
suite_case("names", "name-number", edit("name: bad-inputs", "name: 5"), "got 5")
suite_case("names", "name-empty", edit("name: bad-inputs", "name: ''"), "'' is not a safe")
suite_case("names", "name-dot", edit("name: bad-inputs", "name: '..'"), "'..' is not a safe")
suite_case("names", "variant-slash", edit("name: rnd,", "name: a/b,"), "variants[0].name")
suite_case("names", "variant-colon", edit("name: rnd,", "name: 'a:b',"), "safe variant name")
suite_case("names", "variant-space", edit("name: rnd,", "name: 'a b',"), "'a b' is not a safe")
suite_case(
    "names",
    "variant-default-from-module",
    edit("- {name: rnd, agent: random}", "- {agent: 'tests.failing_agent:ENTRY'}"),
    "the default name 'tests.failing_agent:ENTRY'",
)


@case("names", "name-absolute", "is not a safe suite name")
def _(root: Path) -> list[str]:
    path = write(root, "abs.yaml", edit("name: bad-inputs", f"name: {root}/abs"))
    return ["launch", str(path)]  # the default ledger folder would be the name itself


@case("names", "name-from-file", "the file's name 'my suite' is not a safe suite name")
def _(root: Path) -> list[str]:
    path = write(root, "my suite.yaml", edit("name: bad-inputs\n", ""))
    return ["launch", str(path)]


# ---- field domains, checked at load ------------------------------------------------------


def der(overrides: str) -> str:
    return edit("preset: der}", f"preset: der, overrides: {{{overrides}}}}}")


for id_, text, expected in [
    ("lr-zero", der("learning_rate: 0"), "overrides.learning_rate: 0.0 is out of range"),
    ("lr-negative", der("learning_rate: -1.0e-4"), "learning_rate: -0.0001 is out of range"),
    ("lr-nan", der("learning_rate: .nan"), "learning_rate: nan is not a finite number"),
    ("lr-inf", der("learning_rate: .inf"), "learning_rate: inf is not a finite number"),
    ("rr-nan", der("replay_ratio: .nan"), "replay_ratio: nan is not a finite number"),
    ("rr-negative", der("replay_ratio: -1"), "replay_ratio: -1.0 is out of range; valid: 0.."),
    ("rr-overflow", der("replay_ratio: 1.0e+400"), "replay_ratio: inf is not a finite"),
    ("rr-huge-int", der("replay_ratio: 1" + "0" * 400), "is not a finite number"),
    ("gamma-one", der("gamma: 1"), "overrides.gamma: 1.0 is out of range"),
    ("device-typo", der("device: gpu"), "device: 'gpu' is out of range"),
    ("hidden-zero", der("hidden_dim: 0"), "hidden_dim: 0 is out of range"),
    ("bool-as-number", der("batch_size: yes"), "batch_size: expected an integer, got True"),
    ("capacity-past-64-bits", der("replay_capacity: 1" + "0" * 25), "valid: |n| < 2**63"),
    ("rr-axis-nan", GOOD + "axes: {replay_ratio: [2, .nan]}\n", "axes.replay_ratio: for variant"),
    ("rr-axis-negative", GOOD + "axes: {replay_ratio: [-2]}\n", "-2.0 is out of range"),
    ("rr-axis-yes", GOOD + "axes: {replay_ratio: [1, yes]}\n", "expected a number, got True"),
    ("cpus-zero", GOOD + "resources: {cpus: 0}\n", "resources.cpus: 0 is out of range"),
    ("gpus-negative", GOOD + "resources: {gpus: -1}\n", "resources.gpus: -1 is out of range"),
    ("mem-nan", GOOD + "resources: {mem_gb: .nan}\n", "resources.mem_gb: nan is not a finite"),
    ("mem-zero", GOOD + "resources: {mem_gb: 0}\n", "resources.mem_gb: 0.0 is out of range"),
    ("time-zero", GOOD + "resources: {time_min: 0}\n", "resources.time_min: 0 is out of range"),
    (
        "partition-injection",
        GOOD + 'resources: {partition: "gpu\\n#SBATCH --wrap=x"}\n',
        "holds a control character",
    ),
    ("partition-path", GOOD + "resources: {partition: ../x}\n", "resources.partition"),
    ("frame-skip-zero", GOOD + "protocol: {frame_skip: 0}\n", "protocol.frame_skip: 0 is out"),
    ("pool-past-skip", GOOD + "protocol: {max_pool_frames: 5}\n", "valid: 1..frame_skip (4)"),
    ("image-size-zero", GOOD + "protocol: {image_size: 0}\n", "protocol.image_size: 0 is out"),
    ("frame-stack-zero", GOOD + "protocol: {frame_stack: 0}\n", "protocol.frame_stack: 0"),
    ("noops-reversed", GOOD + "protocol: {noop_min: 10, noop_max: 5}\n", "0..noop_max (5)"),
    ("sticky-two", GOOD + "protocol: {sticky_actions: 2}\n", "sticky_actions: 2.0 is out"),
    ("eval-epsilon", GOOD + "protocol: {eval_epsilon: 1.5}\n", "eval_epsilon: 1.5 is out"),
    ("episode-steps-zero", GOOD + "protocol: {max_episode_steps: 0}\n", "max_episode_steps"),
    (
        "grid-frame-skip-zero",
        GOOD + "axes: {grid: {protocol.frame_skip: [4, 0]}}\n",
        "axes.grid.protocol.frame_skip: 0 is out of range",
    ),
    (
        "grid-combination",
        GOOD + "axes: {grid: {protocol.frame_skip: [2, 4], protocol.max_pool_frames: [3]}}\n",
        "condition protocol.frame_skip=2,protocol.max_pool_frames=3: protocol.max_pool_frames",
    ),
    ("eval-past-steps", edit("env_steps: 100,", "env_steps: 100, eval_every: 500,"), "eval_every"),
    ("steps-zero", edit("env_steps: 100,", "env_steps: 0,"), "budget.env_steps: 0 is out"),
    ("steps-yes", edit("env_steps: 100,", "env_steps: yes,"), "expected an integer, got True"),
    (
        "final-episodes-huge",
        edit("final_eval_episodes: 2", "final_eval_episodes: 10000000"),
        "1..10000",
    ),
    ("games-twice", edit("[Pong, Breakout]", "[Pong, Pong]"), "games[1]: 'Pong' repeats games[0]"),
    ("games-twice-case", edit("[Pong, Breakout]", "[Pong, pong]"), "'pong' repeats games[0]"),
    ("games-unknown", edit("[Pong, Breakout]", "[Pong, Breakot]"), "unknown game 'Breakot'"),
    ("games-number", edit("[Pong, Breakout]", "[Pong, 7]"), "games[1]: expected a game"),
    ("seeds-twice", edit("seeds: 2", "seeds: [3, 3]"), "duplicate seeds: 3 at seeds[0] and"),
    ("seeds-negative", edit("seeds: 2", "seeds: [-1]"), "seeds[0]: -1 is not a seed"),
    ("seeds-past-32-bits", edit("seeds: 2", "seeds: [4294967296]"), "valid: 0..4294967295"),
    ("seeds-count-enormous", edit("seeds: 2", "seeds: 1000000000000"), "seeds is too many"),
    ("seeds-yes", edit("seeds: 2", "seeds: yes"), "seeds: expected a count"),
    ("too-many-runs", edit("seeds: 2", "seeds: 60000"), "240,000 runs"),
    ("description-mapping", GOOD + "description: {a: 1}\n", "description: expected text"),
    ("agent-empty-module", edit("agent: random}", "agent: ':x'}"), "cannot name an agent"),
    ("agent-relative", edit("agent: random}", "agent: '.x:y'}"), "'.x:y' cannot name an agent"),
    ("audio-nested", GOOD + "axes: {audio: [[on]]}\n", "axes.audio: [True] is not one of"),
]:
    suite_case("fields", id_, text, expected, command="plan" if "seeds" in id_ else "launch")


# ---- command-line options ----------------------------------------------------------------


def good_suite(root: Path) -> Path:
    return write(root, "good.yaml", GOOD)


def option_case(id: str, expected: str, argv: Callable[[Path], list[str]]) -> None:
    CASES.append(Case("options", id, argv, expected))


option_case(
    "max-parallel-negative",
    "--max-parallel: must be 0 (automatic) or positive, got -1",
    lambda r: ["launch", str(good_suite(r)), "--out", str(r / "o"), "--max-parallel", "-1"],
)
option_case(
    "max-parallel-text",
    "argument --max-parallel: invalid int value: 'many'",
    lambda r: ["launch", str(good_suite(r)), "--out", str(r / "o"), "--max-parallel", "many"],
)
option_case(
    "array-parallelism-negative",
    "--array-parallelism: must not be negative",
    lambda r: [
        "launch",
        str(good_suite(r)),
        "--out",
        str(r / "o"),
        "--executor",
        "slurm",
        "--array-parallelism",
        "-1",
    ],  # fmt: skip
)
option_case(
    "array-size-negative",
    "--array-size: must not be negative",
    lambda r: [
        "launch",
        str(good_suite(r)),
        "--out",
        str(r / "o"),
        "--executor",
        "slurm",
        "--array-size",
        "-5",
    ],  # fmt: skip
)
option_case(
    "executor-unknown",
    "argument --executor: invalid choice: 'cloud'",
    lambda r: ["launch", str(good_suite(r)), "--executor", "cloud"],
)
option_case(
    "out-is-a-file",
    "is not a folder; valid: a new folder",
    lambda r: ["launch", str(good_suite(r)), "--out", str(write(r, "file", "x"))],
)
option_case(
    "out-under-a-file",
    "is not a folder",
    lambda r: ["launch", str(good_suite(r)), "--out", str(write(r, "file", "x") / "sub")],
)


def _busy_folder(root: Path) -> Path:
    folder = root / "papers"
    folder.mkdir()
    write(folder, "suite.yaml", "mine")
    return folder


option_case(
    "out-not-a-ledger",
    "a folder with other files and no runs/ inside",
    lambda r: ["launch", str(good_suite(r)), "--out", str(_busy_folder(r))],
)
option_case("missing-suite-argument", "the following arguments are required", lambda r: ["plan"])
option_case("unknown-command", "invalid choice: 'lanch'", lambda r: ["lanch", "x"])


# ---- ledgers read by bench status and bench report ---------------------------------------


def make_ledger(root: Path) -> Ledger:
    """A launched two-game, two-seed ledger whose runs are done, with evaluations."""
    specs = expand(load_suite(write(root, "ledger-suite.yaml", LEDGER_SUITE)))
    ledger = Ledger(root / "ledger")
    ledger.prepare(specs)
    for i, spec in enumerate(specs):
        evals = [
            {"env_step": 100, "final": False, "returns": [float(i)], "lengths": [9]},
            {"env_step": 200, "final": True, "returns": [i, i + 1.0], "lengths": [9, 9]},
        ]
        write_json(ledger.run_dir(spec.run_id) / "evals.json", {"evals": evals})
        ledger.write_status(spec.run_id, Status(state=State.DONE, attempts=1))
    return ledger


def ledger_case(
    id: str, expected: str, name: str, text: str | None, *, command: str = "status"
) -> None:
    """A ledger whose first run's file ``name`` is replaced by ``text`` (None: removed)."""

    def make(root: Path) -> list[str]:
        ledger = make_ledger(root)
        run_dir = ledger.run_dir(ledger.run_ids()[0])
        path = ledger.root / name if name == "index.json" else run_dir / name
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
        if command == "status":
            return ["status", str(ledger.root)]
        return ["report", str(ledger.root), "-o", str(root / "report"), *FAST]

    CASES.append(Case("ledger", id, make, expected))


EVAL = '{"evals": [{"env_step": 200, "final": true, "returns": %s, "lengths": [9]}]}'
ledger_case("status-is-a-list", "expected a JSON object (a run's status)", "status.json", "[1]")
ledger_case("status-bad-types", "attempts: expected an integer", "status.json", '{"attempts": "2"}')
ledger_case(
    "status-bad-state", "state: 'exploded' is unknown", "status.json", '{"state": "exploded"}'
)
ledger_case("status-negative", "env_step: -5 is negative", "status.json", '{"env_step": -5}')
ledger_case("status-job-id", "not a SLURM job id", "status.json", '{"job_id": "1; rm -rf"}')
ledger_case(
    "status-list-in-report",
    "status.json: expected a JSON object",
    "status.json",
    "[1]",
    command="report",
)
ledger_case("config-not-json", "config.json: corrupt JSON", "config.json", "{not json")
ledger_case("config-no-keys", "missing key 'run_id'", "config.json", "{}")
ledger_case(
    "config-no-keys-report", "missing key 'run_id'", "config.json", '{"game": "Pong"}',
    command="report",
)  # fmt: skip
ledger_case("config-missing", "config.json: missing or not a file", "config.json", None)
ledger_case(
    "evals-nan", "returns[0]: nan is not a score", "evals.json", EVAL % "[NaN]", command="report"
)
ledger_case(
    "evals-text", "returns[0]: 'a' is not a score", "evals.json", EVAL % '["a"]', command="report"
)
ledger_case(
    "evals-infinite",
    "returns[1]: inf is not a score",
    "evals.json",
    EVAL % "[1, Infinity]",
    command="report",
)
ledger_case("evals-empty", "returns: empty", "evals.json", EVAL % "[]", command="report")
ledger_case(
    "evals-list", 'expected {"evals": [evaluation, ...]}', "evals.json", "[1]", command="report"
)
ledger_case("evals-not-json", "evals.json: corrupt JSON", "evals.json", "{", command="report")
ledger_case("index-is-a-list", 'expected {"runs": [run id, ...]}', "index.json", "[1]")
ledger_case(
    "index-escapes", "runs[0]: '../../..' is not a run id", "index.json", '{"runs": ["../../.."]}'
)


@case("ledger", "metrics-binary", "metrics.jsonl: cannot read")
def _(root: Path) -> list[str]:
    ledger = make_ledger(root)
    (ledger.run_dir(ledger.run_ids()[0]) / "metrics.jsonl").write_bytes(b"\xff\xfe{")
    return ["report", str(ledger.root), "-o", str(root / "report"), *FAST]


def _edit_config(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        ledger = make_ledger(root)
        path = ledger.run_dir(ledger.run_ids()[0]) / "config.json"
        cfg = json.loads(path.read_text())
        change(cfg)
        path.write_text(json.dumps(cfg))
        return ["report", str(ledger.root), "-o", str(root / "report"), *FAST]

    return make


CASES += [
    Case(
        "ledger",
        "config-unknown-game",
        _edit_config(lambda c: c.update(game="Pongg")),
        "game: unknown game 'Pongg'",
    ),
    Case(
        "ledger",
        "config-protocol-range",
        _edit_config(lambda c: c["protocol"].update(frame_skip=0)),
        "protocol.frame_skip: 0 is out of range",
    ),
    Case(
        "ledger",
        "config-negative-seed",
        _edit_config(lambda c: c.update(seed=-3)),
        "seed: -3 is out of range",
    ),
]


@case("ledger", "stray-run-folder", "config.json: missing or not a file")
def _(root: Path) -> list[str]:
    ledger = make_ledger(root)
    (ledger.runs_dir / "notes").mkdir()
    return ["status", str(ledger.root)]


@case("ledger", "report-on-a-plain-folder", "not a launched suite folder (no runs/ inside)")
def _(root: Path) -> list[str]:
    (root / "plain").mkdir()
    return ["report", str(root / "plain"), "-o", str(root / "report")]


@case("ledger", "status-on-a-file", "not a launched suite folder")
def _(root: Path) -> list[str]:
    return ["status", str(write(root, "file.txt", "x"))]


# ---- bench report options ----------------------------------------------------------------


def report_case(id: str, expected: str, extra: list[str]) -> None:
    def make(root: Path) -> list[str]:
        ledger = make_ledger(root)
        return ["report", str(ledger.root), "-o", str(root / "report"), *FAST, *extra]

    CASES.append(Case("report-options", id, make, expected))


report_case("seed-negative", "--seed: -1 is out of range", ["--seed", "-1"])
report_case("seed-past-32-bits", "--seed: 4294967296 is out of range", ["--seed", str(2**32)])
report_case("reps-zero", "--reps must be at least 1", ["--reps", "0"])
report_case("profile-reps-zero", "--profile-reps must be at least 1", ["--profile-reps", "0"])
report_case("reps-enormous", "--reps: 100000000000 is too many", ["--reps", "100000000000"])
report_case(
    "compare-same-side", "--compare random:random: both sides", ["--compare", "random:random"]
)
report_case("compare-unknown", "'nobody' names no algorithm", ["--compare", "random:nobody"])
report_case("compare-no-colon", "expected A:B", ["--compare", "random"])
report_case("baselines-unknown", "unknown baseline 'DQN'", ["--baselines", "DER,DQN"])
report_case("reps-text", "argument --reps: invalid int value", ["--reps", "lots"])


@case("report-options", "o-is-a-file", "is not a folder; valid: a new or existing folder")
def _(root: Path) -> list[str]:
    ledger = make_ledger(root)
    return ["report", str(ledger.root), "-o", str(write(root, "taken", "x")), *FAST]


@case("report-options", "ledger-twice", "given twice")
def _(root: Path) -> list[str]:
    ledger = make_ledger(root)
    return ["report", str(ledger.root), str(ledger.root), "-o", str(root / "report"), *FAST]


@case("report-options", "nothing-to-report", "nothing to report")
def _(root: Path) -> list[str]:
    return ["report", "-o", str(root / "report")]


# ---- external score files ----------------------------------------------------------------

HEADER = "algorithm,game,run,score\n"


def score_case(id: str, text: str | bytes, expected: str) -> None:
    def make(root: Path) -> list[str]:
        path = write(root, f"{id}.csv", text)
        return ["report", "--external", str(path), "-o", str(root / "report"), *FAST]

    CASES.append(Case("scores", id, make, expected))


score_case("score-nan", HEADER + "X,Pong,0,nan\n", "line 2: score 'nan' is not a number")
score_case("score-empty", HEADER + "X,Pong,0,1\nX,Pong,1,\n", "line 3: score '' is not a number")
score_case("score-text", HEADER + "X,Pong,0,high\n", "score 'high' is not a number")
score_case("score-infinite", HEADER + "X,Pong,0,inf\n", "score 'inf' is not a number")
score_case("game-unknown", HEADER + "X,Pongg,0,1\n", "line 2: unknown game 'Pongg'")
score_case("column-missing", "algorithm,game,score\nX,Pong,1\n", "missing column(s) run")
score_case("column-unknown", HEADER.strip() + ",seed\nX,Pong,0,1,0\n", "unknown column(s) seed")
score_case("run-enormous", HEADER + "X,Pong,1e30,1\n", "run '1e30' is not an integer")
score_case("run-negative", HEADER + "X,Pong,-1,1\n", "run '-1' is not an integer")
score_case("run-fraction", HEADER + "X,Pong,0.5,1\n", "run '0.5' is not an integer")
score_case("algorithm-newline", HEADER + '"X\nY",Pong,0,1\n', "holds a control character")
score_case("algorithm-empty", HEADER + ",Pong,0,1\n", "empty algorithm")
score_case("not-utf8", (HEADER + "X\xe9,Pong,0,1\n").encode("latin-1"), "cannot read")
score_case("duplicate-row", HEADER + "X,Pong,0,1\nX,Pong,0,2\n", "line 3: duplicate row")
score_case("empty-file", "", "not a valid CSV")


@case("scores", "no-such-file", "no such file")
def _(root: Path) -> list[str]:
    return ["report", "--external", str(root / "gone.csv"), "-o", str(root / "report")]


# ---- bench agents describe and bench perf agent ------------------------------------------


def agents_case(id: str, expected: str, argv: list[str]) -> None:
    CASES.append(Case("agents", id, lambda root: list(argv), expected))


DESCRIBE = ["agents", "describe"]
PERF = ["perf", "agent", "--preset", "der"]
agents_case(
    "describe-unknown-preset",
    "unknown preset of agent 'value' 'bff'",
    [*DESCRIBE, "bff", "--num-actions", "4"],
)
agents_case(
    "describe-no-actions",
    "--num-actions must be positive, got 0",
    [*DESCRIBE, "der", "--num-actions", "0"],
)
agents_case(
    "describe-many-actions", "valid: 1..1024", [*DESCRIBE, "der", "--num-actions", "1000000000"]
)
agents_case(
    "describe-audio-negative",
    "--audio-samples: -3",
    [*DESCRIBE, "der", "--num-actions", "4", "--audio-samples", "-3"],
)
agents_case(
    "describe-audio-odd",
    "--audio-samples: 100 is not",
    [*DESCRIBE, "der", "--num-actions", "4", "--audio-samples", "100"],
)
agents_case(
    "describe-agent-syntax",
    "--agent: ':' cannot name an agent",
    [*DESCRIBE, "der", "--agent", ":", "--num-actions", "4"],
)
agents_case(
    "describe-agent-unknown",
    "unknown agent 'valu'",
    [*DESCRIBE, "der", "--agent", "valu", "--num-actions", "4"],
)
agents_case("describe-actions-missing", "required: --num-actions", [*DESCRIBE, "der"])
agents_case("perf-steps-zero", "--steps: 0 is out of range", [*PERF, "--steps", "0"])
agents_case(
    "perf-rr-nan",
    "--replay-ratio: replay_ratio: nan is not a finite number",
    [*PERF, "--replay-ratio", "nan"],
)
agents_case(
    "perf-rr-negative", "replay_ratio: -1.0 is out of range", [*PERF, "--replay-ratio", "-1"]
)
agents_case(
    "perf-preset-unknown", "--preset: unknown preset", ["perf", "agent", "--preset", "nope"]
)
agents_case("perf-no-actions", "--num-actions must be positive", [*PERF, "--num-actions", "0"])
agents_case("perf-device", "--device: 'gpu0' is not a device", [*PERF, "--device", "gpu0"])
agents_case("perf-game", "--game: unknown game 'Pongg'", [*PERF, "--game", "Pongg"])
agents_case(
    "perf-agent-syntax", "--agent: 'a b' cannot name an agent", ["perf", "agent", "--agent", "a b"]
)


# ---- bench games --audio -----------------------------------------------------------------


def games_case(id: str, expected: str, argv: list[str]) -> None:
    CASES.append(Case("games", id, lambda root: ["games", "--audio", *argv], expected))


games_case("games-steps-zero", "--steps: 0 is out of range; valid: 1..", ["--steps", "0"])
games_case("games-within-negative", "--within: -2 is out of range", ["--within", "-2"])
games_case(
    "audio-game-unknown", "--games: unknown game 'Pongg'; did you mean Pong", ["--games", "Pongg"]
)
games_case("games-onset-ratio", "--onset-ratio: 0.5 is out of range", ["--onset-ratio", "0.5"])
games_case("games-seed", "--seed: -1 is out of range", ["--seed", "-1"])


@case("games", "games-out-is-a-file", "not a folder; valid: a new or existing folder")
def _(root: Path) -> list[str]:
    return ["games", "--audio", "--games", "Pong", "-o", str(write(root, "taken", "x"))]


CATEGORIES = list(dict.fromkeys(c.category for c in CASES))
SUBPROCESS_IDS = ("alias-bomb", "status-is-a-list", "evals-nan", "perf-rr-nan", "max-parallel-text")


# ---- the tests ---------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a hash of its bytes ("dir" for folders)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def prepared(case: Case, tmp_path: Path, monkeypatch) -> list[str]:
    """The case's inputs under ``tmp_path``, run from a folder inside it (so that even a
    relative default output would land inside the snapshot)."""
    cwd = tmp_path / "cwd" / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return case.make(tmp_path)


def test_the_catalogue_covers_every_command() -> None:
    counts = Counter(c.category for c in CASES)
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    commands = {c.make(Path("/nonexistent"))[0] for c in CASES if c.category == "agents"}
    assert {"agents", "perf"} <= commands
    assert set(counts) == {
        "suite-file", "names", "fields", "options", "ledger", "report-options", "scores", "agents",
        "games",
    }  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}:{c.id}" for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case: Case, tmp_path, monkeypatch, capsys):
    argv = prepared(case, tmp_path, monkeypatch)
    capsys.readouterr()
    before = snapshot(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert rc == 2, (rc, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert case.expected in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # nothing written, anywhere


@pytest.mark.parametrize("case_id", SUBPROCESS_IDS)
def test_no_traceback_reaches_the_terminal(case_id: str, tmp_path, monkeypatch) -> None:
    case = next(c for c in CASES if c.id == case_id)
    argv = prepared(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and case.expected in lines[0]
    assert snapshot(tmp_path) == before
