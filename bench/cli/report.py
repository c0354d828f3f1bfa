"""``bench report``: statistics, tables and figures from ledgers, baselines and score files.

Loads the inputs (``bench.report.load``, ``bench.report.baselines``), analyzes them
(``bench.report.analysis.analyze``) and writes the report (``bench.report.write``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import matplotlib
import pandas as pd

from bench.core.errors import BenchError
from bench.report.analysis import analyze
from bench.report.baselines import (
    BASELINES,
    baseline_source,
    load_baseline,
    load_external,
    parse_baselines,
)
from bench.report.columns import RUN_COLUMNS, empty_frame
from bench.report.load import load_metrics, load_results, load_study
from bench.report.options import Inputs, ReportOptions
from bench.report.reproduction import parse_reproduce
from bench.report.write import write_report
from bench.stats.estimates import AGGREGATE_REPS, PROFILE_REPS
from bench.stats.twosample import PERMUTATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bench report``."""
    parser.add_argument("dirs", nargs="*", metavar="DIR", help="ledger folders (suite outputs)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="report folder")
    parser.add_argument(
        "--baselines",
        default="",
        metavar="NAMES",
        help=f"published baselines to include, comma-separated: {','.join(BASELINES)}",
    )
    parser.add_argument(
        "--external",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="per-run scores as CSV algorithm,game,run,score[,env_step] (repeatable)",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="A:B",
        help="paired comparison of B against A, e.g. audio=off:audio=on or two labels",
    )
    parser.add_argument(
        "--reproduce",
        default="",
        metavar="NAME[=LABEL]",
        help="compare one algorithm's runs (LABEL, if the ledgers hold several) with the "
        f"bundled published runs NAME ({','.join(BASELINES)}): per-game and IQM differences, "
        "permutation tests, a verdict",
    )
    add_study_arguments(parser)
    parser.add_argument(
        "--permutations",
        type=int,
        default=PERMUTATIONS,
        help="permutations of the reproduction's tests",
    )
    parser.add_argument(
        "--reps", type=int, default=AGGREGATE_REPS, help="bootstrap replicates for aggregates"
    )
    parser.add_argument(
        "--profile-reps",
        type=int,
        default=PROFILE_REPS,
        help="replicates for profiles, P(X>Y), curves and per-game CIs",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--allow-mixed-protocols",
        action="store_true",
        help="pool runs of one algorithm made under different protocols",
    )
    parser.add_argument("--bca", action="store_true", help="BCa intervals instead of percentile")


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """--ablations and --sweep: by default what the ledgers' suites name in ``study``."""
    parser.add_argument(
        "--ablations",
        default=None,
        metavar="BASE",
        help="every other variant against variant BASE, paired, ordered by effect (default: "
        "the suites' study.base); '' for none",
    )
    parser.add_argument(
        "--sweep",
        default=None,
        metavar="AXIS",
        help="is the best value of AXIS (a condition's axis, or 'variant') the same across "
        "games and evaluation steps? (default: the suites' study.sweep); '' for none",
    )


MAX_REPS = 1_000_000  # 20x the default; past it the bootstrap only costs memory and time
MAX_SEED = 2**32 - 1


def options_of(args: argparse.Namespace) -> ReportOptions:
    """The report's options; a BenchError for replicate counts or a seed out of range, or a
    comparison of a side with itself."""
    for name in ("reps", "profile_reps", "permutations"):
        value = getattr(args, name)
        if value < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1; valid: 1..{MAX_REPS}")
        if value > MAX_REPS:
            raise BenchError(
                f"--{name.replace('_', '-')}: {value} is too many; valid: 1..{MAX_REPS}"
            )
    if not 0 <= args.seed <= MAX_SEED:
        raise BenchError(f"--seed: {args.seed} is out of range; valid: 0..{MAX_SEED}")
    for spec in args.compare:
        a, sep, b = spec.partition(":")
        if sep and ":" not in b and a.strip() == b.strip():
            raise BenchError(
                f"--compare {spec}: both sides are {a.strip()!r}; valid: A:B with A and B "
                "different labels or conditions"
            )
    return ReportOptions(
        reps=args.reps,
        profile_reps=args.profile_reps,
        seed=args.seed,
        bca=args.bca,
        allow_mixed_protocols=args.allow_mixed_protocols,
        compare=tuple(args.compare),
        reproduce=args.reproduce,
        permutations=args.permutations,
        ablations=args.ablations or "",
        sweep=args.sweep or "",
    )


def with_study(options: ReportOptions, args: argparse.Namespace, dirs: list[Path]) -> ReportOptions:
    """``options`` with the ablations' base and the sweep the ledgers' suites name in their
    ``study`` section, where ``--ablations`` and ``--sweep`` do not say otherwise."""
    if not dirs or (args.ablations is not None and args.sweep is not None):
        return options
    study = load_study(dirs)
    return dataclasses.replace(
        options,
        ablations=study.get("base", "") if args.ablations is None else args.ablations,
        sweep=study.get("sweep", "") if args.sweep is None else args.sweep,
    )


def check_paths(args: argparse.Namespace) -> None:
    """The report folder is a folder (or can be made one); no input is given twice."""
    out = Path(args.out)
    for p in (out, *out.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise BenchError(f"-o {out}: {p} is not a folder; valid: a new or existing folder")
            break
    for flag, paths in (("DIR", args.dirs), ("--external", args.external)):
        seen: dict[Path, str] = {}
        for p in paths:
            key = Path(p).resolve()
            if key in seen:
                raise BenchError(
                    f"{flag} {p}: given twice (as {seen[key]}); valid: each input once"
                )
            seen[key] = str(p)


def main(args: argparse.Namespace) -> int:
    """Run ``bench report``; returns the exit status."""
    options = options_of(args)
    check_paths(args)
    dirs = [Path(d) for d in args.dirs]
    options = with_study(options, args, dirs)
    names = parse_baselines(args.baselines) if args.baselines else []
    if args.reproduce:  # the published runs it compares with are loaded, asked for or not
        name, _ = parse_reproduce(args.reproduce)
        names += [name] if name not in names else []
    frames, runs, metrics = [], empty_frame(RUN_COLUMNS), None
    if dirs:
        evals, runs = load_results(dirs)
        metrics = load_metrics(dirs)
        frames.append(evals)
    frames += [load_baseline(n) for n in names]
    frames += [load_external(p) for p in args.external]
    if not frames:
        raise BenchError("nothing to report: give ledger folders, --baselines or --external")
    inputs = Inputs(
        dirs=tuple(str(d) for d in dirs),
        baselines=tuple(names),
        externals=tuple(str(p) for p in args.external),
        baseline_sources={n: baseline_source(n) for n in names},
    )
    evals = pd.concat(frames, ignore_index=True)
    report = analyze(evals, runs, options, inputs, metrics)
    matplotlib.use("Agg")  # files only, never a display: this command owns the process
    print(write_report(report, args.out))
    return 0
